"""Row-over-classes losses: cross-entropy and its relatives.

Each loss is a function named as in ``torch.nn.functional`` and a class
named as in ``torch.nn``; both run the same fused row kernel (value,
gradient and diagonal Hessian in one pass per row).  See
``fastloss._rows_api`` for the shared call path and
``src/fastloss/_src/fl_rows_math.h`` for the math.
"""
from __future__ import annotations

import numpy as np

from . import _rows
from . import _validate as V
from ._pointwise_api import GRAD, VALUE
from ._rows_api import (
    HVP,
    _RowLoss,
    check_ignore_index,
    check_label_smoothing,
    run,
    spec,
)
from ._pointwise_api import grad_request

__all__ = [
    "cross_entropy", "cross_entropy_hvp", "nll_loss", "softmax_focal_loss", "multi_margin_loss",
    "multilabel_soft_margin_loss", "poly1_cross_entropy",
    "CrossEntropyLoss", "NLLLoss", "SoftmaxFocalLoss", "MultiMarginLoss", "MultiLabelSoftMarginLoss",
    "Poly1CrossEntropyLoss",
]

_CE = spec("cross_entropy", "ce", "ce_soft", hvp=True)
_NLL = spec("nll_loss", "nll")
_FOCAL = spec("softmax_focal_loss", "focal", denom=_rows.DENOM_COUNT)
_MM = spec("multi_margin_loss", "multi_margin", spatial=False, denom=_rows.DENOM_NONE)
_MLSM = spec("multilabel_soft_margin_loss", soft="multilabel_soft_margin", soft_float=False, last_axis=True,
             denom=_rows.DENOM_NONE, elem_weight=True)
_POLY = spec("poly1_cross_entropy", "ce", "ce_soft")

_SHAPES = """Shapes: the class axis is axis 1, as in PyTorch.  input is (C,)
    (one sample), (N, C), or (N, C, d1, ..., dk) (segmentation maps,
    sequences); integer labels are (), (N,) or (N, d1, ..., dk)"""

_COMMON = """reduction : {"mean", "sum", "none"}
        "none" returns the per-item losses, of input's shape without the
        class axis.
    size_average, reduce : bool, optional
        PyTorch's deprecated arguments, where PyTorch has them: given, they
        set reduction as PyTorch does, with PyTorch's warning.
    return_grad : bool or tuple of str
        True: also return the gradient with respect to input, in the same
        pass.  ``("input", "target")`` also returns the gradient with respect
        to a target of input's shape (class probabilities; cross_entropy,
        multilabel_soft_margin_loss, poly1_cross_entropy), in that order.
    out : ndarray or tuple of ndarray, optional
        Buffer for the gradient (input's shape and dtype, C-contiguous,
        aligned, writeable, not overlapping the inputs), or one per gradient
        returned.  Every label is checked before anything is written: after
        a ValueError for a bad label, out is untouched.
    n_threads : int, optional
        Threads for this call (default :func:`fastloss.get_num_threads`;
        at most ``max(64, 4 x os.cpu_count())``).
    check : bool
        Run :func:`fastloss.diagnose`'s checks on input and target first and warn each
        finding as a :class:`fastloss.LossWarning` (one summary pass over
        each; the default False costs one test).

    Returns
    -------
    value : float, or ndarray of the items' shape for reduction="none"
    grad : ndarray of input's shape and dtype, with return_grad=True
        The gradient of the returned value: the mean's denominator and the
        weights are in it; for reduction="none" it is that of the sum.

    Raises
    ------
    ValueError
        For a label outside [0, C) that is not ignore_index, naming its
        position and value (uint64 labels beyond int64 included); for
        shapes that do not match.
    TypeError
        For float labels where integers are expected and the reverse.

    Notes
    -----
    input fixes the dtype: float32 and float64 are kept (float32 in, float32
    out), float16 becomes float32, integers become float64.  Integer labels
    of dtype int64, int32 or uint8 are read in place, without a copy (other
    integer dtypes are converted once); every label is checked in the
    kernel's own pass.  Per-row sums are accumulated in float64 and the
    rows are added block by block in a fixed order, so the value is
    bit-identical for any thread count."""


def _doc(fn):
    fn.__doc__ = fn.__doc__.replace("%(common)s", _COMMON).replace("%(shapes)s", _SHAPES)
    return fn


def _req(fn, return_grad):
    """(mode, gradient names) of a function's return_grad argument."""
    if return_grad is False:
        return VALUE, ()
    if return_grad is True:
        return GRAD, ("input",)
    return grad_request(return_grad, fn.__name__, fn._grad_args, fn._optional_grad_args)


def _p_ce(ignore_index, label_smoothing, op, epsilon=0.0):
    ii = check_ignore_index(ignore_index, op)
    ls = check_label_smoothing(label_smoothing, op)
    return ii, (ls, epsilon, 0.0, 0, 0)


def _p_poly(epsilon, op):
    return V.real(epsilon, "epsilon", op)


def _p_focal(alpha, gamma, op):
    """(per-class alpha array or None, kernel params)."""
    g = V.nonneg(gamma, "gamma", op)
    if alpha is None:
        return None, (g, 1.0, 0.0, 0, 0)
    if np.ndim(alpha) == 0 and not isinstance(alpha, np.ndarray):
        return None, (g, V.nonneg(alpha, "alpha", op), 0.0, 0, 0)
    if isinstance(alpha, np.ndarray) and alpha.ndim == 0:
        return None, (g, V.nonneg(alpha, "alpha", op), 0.0, 0, 0)
    return alpha, (g, 1.0, 0.0, 0, 0)


def _mm_run(input, target, out, call, op="multi_margin_loss"):
    """multi_margin_loss on the shapes PyTorch also takes: a 0-d input (one
    class) and a (1,) target for a (C,) input, run as (1, C) and reshaped
    back (the gradient to input's shape; reduction="none" to target's)."""
    if np.ndim(input) > 1 or (np.ndim(input) == 1 and np.shape(target) != (1,)):
        return call(input, target, out)
    x = V.as_input(input, "input", op)
    t = V.asarray(target, "target", op)
    shape = x.shape
    if x.ndim == 0:
        x = x.reshape(1)
    if t.shape == (1,):
        x = x.reshape(1, -1)
    o = out
    if type(out) is np.ndarray and out.shape == shape and out.flags.c_contiguous:
        o = out.reshape(x.shape)
    res = call(x, t, o)
    if isinstance(res, tuple):  # gradients (and Hessians) have input's shape
        return tuple(r.reshape(shape) if isinstance(r, np.ndarray) and r.size == x.size and r.shape == x.shape
                     else r for r in res)
    return res


def _p_margin(p, margin, op):
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, np.integer, float, np.floating)) or p not in (1, 2):
        raise ValueError(f"{op}: only p == 1 and p == 2 supported, got {p!r}")
    return (V.real(margin, "margin", op), 0.0, 0.0, int(p), 0)


# ------------------------------------------------------------------ functions

@_doc
def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0, *, return_grad=False, out=None, n_threads=None, check=False):
    """Cross-entropy of logits, as ``torch.nn.functional.cross_entropy``.

    With ``p = softmax(input)`` over the class axis and a row of target
    weights ``q``, the loss of an item is ``-sum_c q_c log p_c`` with
    ``q_c = w_c ((1 - eps) t_c + eps / C)``: ``t`` is the one-hot label (or
    the class probabilities), ``w`` the class weights (1 without), ``eps``
    the label smoothing.  For integer labels this is PyTorch's
    ``(1 - eps) * nll + eps / C * sum_c w_c (-log p_c)``, including its
    treatment of weights in the smoothing term (pytorch#73205).
    Gradient ``M p - q`` with ``M = sum_c q_c``; the diagonal Hessian
    (``CrossEntropyLoss.grad_hess``) is ``M p (1 - p)``, the full one
    ``M (diag p - p p^T)`` (:func:`cross_entropy_hvp`).

    The mean divides by the summed weights ``w[target]`` of the targets that
    are not ignored (their count without weights; NaN if all are ignored),
    as PyTorch; with class-probability targets it divides by the number of
    items (rows times positions).

    Parameters
    ----------
    input : array_like of logits
        %(shapes)s; class probabilities have input's shape (floating point).
    target : array_like
        Integer class labels, or class probabilities of input's shape.
    weight : array_like of shape (C,), optional
        Per-class weights.
    ignore_index : int
        Labels equal to it contribute nothing (loss and gradient 0) and
        leave the mean's denominator; not allowed (>= 0) with probabilities.
    label_smoothing : float in [0, 1]
    %(common)s
    A target weight of 0 skips its term, so a -inf logit of a class with
    no target weight gives a finite loss (PyTorch gives NaN with
    probability targets there).  float32 losses are exact to about 1e-7
    absolute per row (log of a float sum), as PyTorch's.

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> x = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 0.0]])
    >>> y = np.array([0, 2])
    >>> round(fl.cross_entropy(x, y), 12)
    0.896378005295
    >>> value, grad = fl.cross_entropy(x, y, return_grad=True)
    >>> grad.round(6)
    array([[-0.107201,  0.087645,  0.019556],
           [ 0.105971,  0.288058, -0.394029]])
    """
    if size_average is not None or reduce is not None:
        reduction = V.legacy_reduction(size_average, reduce, reduction, "cross_entropy")
    if (return_grad is True and type(ignore_index) is int and -(2 ** 63) <= ignore_index < 2 ** 63
            and type(label_smoothing) is float and 0.0 <= label_smoothing <= 1.0):
        # the common call: _req's and _p_ce's answers for these arguments, without their calls
        return run(_CE, input, target, weight=weight, ignore_index=ignore_index,
                   params=(label_smoothing, 0.0, 0.0, 0, 0), reduction=reduction, mode=GRAD,
                   n_threads=n_threads, out=out, check=check)
    mode, grads = _req(cross_entropy, return_grad)
    ii, p = _p_ce(ignore_index, label_smoothing, "cross_entropy")
    return run(_CE, input, target, weight=weight, ignore_index=ii, params=p, reduction=reduction,
               mode=mode, n_threads=n_threads, out=out, grads=grads, check=check)


def cross_entropy_hvp(input, target, v, *, weight=None, ignore_index=-100, label_smoothing=0.0,
                      reduction="mean", out=None, n_threads=None):
    """The exact Hessian-vector product of :func:`cross_entropy` with respect
    to input, for Newton-CG and trust-region methods.

    Per item, ``H = M (diag p - p p^T)`` with ``p = softmax(input)`` and
    ``M = sum_c q_c`` (the item's total target weight, see
    :func:`cross_entropy`), so ``(H v)_c = M p_c (v_c - p . v)``; the
    reduction's scaling is included (the Hessian of the returned value).
    One fused pass, no C x C matrix.

    Parameters
    ----------
    input, target, weight, ignore_index, label_smoothing, reduction, n_threads
        As :func:`cross_entropy`.
    v : array_like of input's shape
        The direction.
    out : ndarray, optional
        Buffer for the product (input's shape and dtype).

    Returns
    -------
    ndarray of input's shape and dtype

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> x = np.array([[2.0, 0.5, -1.0]]); y = np.array([0])
    >>> fl.cross_entropy_hvp(x, y, np.array([[1.0, 0.0, 0.0]])).round(6)
    array([[ 0.168434, -0.137708, -0.030727]])
    """
    ii, p = _p_ce(ignore_index, label_smoothing, "cross_entropy_hvp")
    return run(_CE, input, target, weight=weight, ignore_index=ii, params=p, reduction=reduction,
               mode=HVP, n_threads=n_threads, out=out, v=v, op="cross_entropy_hvp")


@_doc
def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean", *,
             return_grad=False, out=None, n_threads=None, check=False):
    """Negative log-likelihood, as ``torch.nn.functional.nll_loss``.

    input holds log-probabilities; the loss of an item with label ``y`` is
    ``-w_y input_y``.  Gradient ``-w_y`` at the label and 0 elsewhere;
    Hessian 0.  The mean divides by the summed weights of the targets that
    are not ignored (NaN if all are ignored).

    Parameters
    ----------
    input : array_like of log-probabilities
        %(shapes)s.
    target : array_like of integer class labels
    weight : array_like of shape (C,), optional
    ignore_index : int
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> logp = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]))
    >>> round(fl.nll_loss(logp, np.array([0, 2])), 12)
    0.289909247626
    """
    if size_average is not None or reduce is not None:
        reduction = V.legacy_reduction(size_average, reduce, reduction, "nll_loss")
    mode, grads = _req(nll_loss, return_grad)
    ii = check_ignore_index(ignore_index, "nll_loss")
    return run(_NLL, input, target, weight=weight, ignore_index=ii, reduction=reduction,
               mode=mode, n_threads=n_threads, out=out, grads=grads, check=check)


@_doc
def softmax_focal_loss(input, target, alpha=None, gamma=2.0, *, ignore_index=-100, reduction="mean",
                       return_grad=False, out=None, n_threads=None, check=False):
    """Multi-class (softmax) focal loss (Lin et al., 2017).

    With ``p = softmax(input)_y`` for label ``y``: ``-alpha_y (1 - p)^gamma
    log p``.  ``gamma = 0`` is ``alpha_y`` times cross-entropy.  ``1 - p``
    is summed from the other classes, so confident rows keep their digits.
    PyTorch has no such loss; this is the common multi-class form (as in
    the ``FocalLoss`` modules built on ``nll_loss``).  The mean divides by
    the number of targets that are not ignored (not by the summed alpha).

    Parameters
    ----------
    input : array_like of logits
        %(shapes)s.
    target : array_like of integer class labels
    alpha : None, float >= 0, or array_like of shape (C,)
        Per-class (or one) weight; None is 1.
    gamma : float >= 0
        Focusing parameter.
    ignore_index : int
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> x = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 0.0]])
    >>> round(fl.softmax_focal_loss(x, np.array([0, 2]), gamma=2.0), 12)
    0.487297968978
    """
    mode, grads = _req(softmax_focal_loss, return_grad)
    alpha_w, p = _p_focal(alpha, gamma, "softmax_focal_loss")
    ii = check_ignore_index(ignore_index, "softmax_focal_loss")
    return run(_FOCAL, input, target, weight=alpha_w, ignore_index=ii, params=p, reduction=reduction,
               mode=mode, n_threads=n_threads, out=out, w_name="alpha", grads=grads, check=check)


@_doc
def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None,
                      reduction="mean", *, return_grad=False, out=None, n_threads=None, check=False):
    """Multi-class hinge loss, as ``torch.nn.functional.multi_margin_loss``.

    For label ``y``: ``w_y / C * sum_{c != y} max(0, margin - x_y + x_c)^p``
    with ``p`` 1 or 2.  The mean divides by the number of rows (not by the
    weights), as PyTorch.  The Hessian is 0 for p = 1 and, for p = 2, ``2
    w_y / C`` at each active class and ``2 w_y / C`` times their number at
    the label.

    Parameters
    ----------
    input : array_like of shape (C,) or (N, C)
        (or 0-d: one class, as PyTorch takes it)
    target : array_like of integer class labels, shape () or (N,)
        (or (1,) for a (C,) input, as PyTorch)
    p : {1, 2}
    margin : float
    weight : array_like of shape (C,), optional
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> x = np.array([[0.1, 0.2, 0.4, 0.8]])
    >>> round(fl.multi_margin_loss(x, np.array([3])), 12)
    0.325
    """
    if size_average is not None or reduce is not None:
        reduction = V.legacy_reduction(size_average, reduce, reduction, "multi_margin_loss")
    mode, grads = _req(multi_margin_loss, return_grad)
    prm = _p_margin(p, margin, "multi_margin_loss")
    return _mm_run(input, target, out, lambda x, t, o: run(
        _MM, x, t, weight=weight, params=prm, reduction=reduction, mode=mode, n_threads=n_threads, out=o,
        grads=grads, check=check))


@_doc
def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None, reduction="mean", *,
                                return_grad=False, out=None, n_threads=None, check=False):
    """Multi-label one-versus-all logistic loss, as
    ``torch.nn.functional.multilabel_soft_margin_loss``.

    Classes are on the last axis (PyTorch's convention for this loss):
    input and target (0/1, or any value in [0, 1]) of shape (C,) or
    (..., C); an item's loss is ``1/C sum_c w_c [y_c softplus(-x_c) + (1 -
    y_c) softplus(x_c)]``.  Gradient ``w_c (sigmoid(x_c) - y_c) / C``,
    Hessian ``w_c s (1 - s) / C``.  The mean divides by the number of rows.
    target may be of any real dtype (converted to input's).

    Parameters
    ----------
    input : array_like of logits, (C,) or (N, C)
    target : array_like of input's shape
    weight : array_like of shape (C,), optional
        Per class; any other shape that broadcasts to input's (such as
        ``(N, C)``, as PyTorch accepts) weights each element (one copy).
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> x = np.array([[2.0, -1.0, 0.5]]); y = np.array([[1.0, 0.0, 1.0]])
    >>> round(fl.multilabel_soft_margin_loss(x, y), 12)
    0.304755560914
    """
    if size_average is not None or reduce is not None:
        reduction = V.legacy_reduction(size_average, reduce, reduction, "multilabel_soft_margin_loss")
    mode, grads = _req(multilabel_soft_margin_loss, return_grad)
    return run(_MLSM, input, target, weight=weight, reduction=reduction, mode=mode,
               n_threads=n_threads, out=out, grads=grads, check=check)


@_doc
def poly1_cross_entropy(input, target, epsilon=2.0, *, weight=None, ignore_index=-100, label_smoothing=0.0,
                        reduction="mean", return_grad=False, out=None, n_threads=None, check=False):
    """Poly-1 cross-entropy (Leng et al., 2022), as optax's ``poly_loss_cross_entropy``.

    ``cross_entropy + epsilon * sum_c q_c (1 - p_c)`` with the target
    weights ``q`` of :func:`cross_entropy` (one-hot label or probabilities,
    class weights, label smoothing); for a plain label this is ``CE +
    epsilon (1 - p_y)``.  Gradient ``(M + epsilon q.p) p - q (1 + epsilon
    p)``; diagonal Hessian ``M p (1 - p) + epsilon p (q.p - q) (1 - 2 p)``
    (which can be negative: the loss is not convex for epsilon > 0).
    Reductions as :func:`cross_entropy`.

    Parameters
    ----------
    input : array_like of logits
        %(shapes)s.
    target : array_like
        Integer class labels, or class probabilities of input's shape.
    epsilon : float
        optax's default 2.0; the paper recommends 1.0 for ImageNet.
    weight, ignore_index, label_smoothing
        As :func:`cross_entropy`.
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> x = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 0.0]])
    >>> round(fl.poly1_cross_entropy(x, np.array([0, 2]), epsilon=1.0), 12)
    1.397608709191
    """
    mode, grads = _req(poly1_cross_entropy, return_grad)
    e = _p_poly(epsilon, "poly1_cross_entropy")
    ii, p = _p_ce(ignore_index, label_smoothing, "poly1_cross_entropy", e)
    return run(_POLY, input, target, weight=weight, ignore_index=ii, params=p, reduction=reduction,
               mode=mode, n_threads=n_threads, out=out, grads=grads, check=check)


# ------------------------------------------------------------------ classes

def _class_doc(fn_name, extra=""):
    return f"""The object form of :func:`fastloss.{fn_name}`, named as in ``torch.nn``.

    ``loss(input, target, weight=None)`` gives the value;
    ``loss.value_and_grad(input, target, weight=None, out=None, loss_out=None)``
    the value and gradient in one pass; ``loss.grad_hess(input, target,
    weight=None, out=None)`` the gradient and diagonal Hessian.  A
    ``weight`` given to a call replaces the constructor's.  See
    :func:`fastloss.{fn_name}` for the formula, shapes and dtypes.{extra}
    """


class CrossEntropyLoss(_RowLoss):
    __doc__ = _class_doc("cross_entropy", """
    ``loss.hvp(input, target, v, weight=None, out=None)`` gives the exact
    Hessian-vector product (:func:`fastloss.cross_entropy_hvp`).

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> loss = fl.CrossEntropyLoss(label_smoothing=0.1)
    >>> x = np.array([[2.0, 0.5, -1.0]]); y = np.array([0])
    >>> grad, hess = loss.grad_hess(x, y)
    >>> hess.round(6)
    array([[0.168434, 0.144564, 0.037583]])
    """)
    _spec = _CE

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                 label_smoothing=0.0, *, n_threads=None):
        op = type(self).__name__
        super().__init__(V.legacy_reduction(size_average, reduce, reduction, op), n_threads=n_threads)
        self._ii, self._params = _p_ce(ignore_index, label_smoothing, op)
        self.weight, self.ignore_index, self.label_smoothing = weight, ignore_index, label_smoothing

    def _run(self, input, target, weight, mode, out=None, hess_out=None, loss_out=None, v=None,
             grads=("input",), check=False):
        return run(self._spec, input, target, weight=self.weight if weight is None else weight,
                   ignore_index=self._ii, params=self._params, reduction=self.reduction, mode=mode,
                   n_threads=self.n_threads, out=out, hess_out=hess_out, loss_out=loss_out, v=v, grads=grads,
                   check=check)

    def hvp(self, input, target, v, weight=None, out=None):
        """The Hessian of the value (input's shape) times ``v`` (input's shape)."""
        return self._run(input, target, weight, HVP, out=out, v=v)

    def _repr_args(self):
        return [("weight", self.weight), ("ignore_index", self.ignore_index), ("reduction", self.reduction),
                ("label_smoothing", self.label_smoothing)]


class NLLLoss(_RowLoss):
    __doc__ = _class_doc("nll_loss", """

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> logp = np.log(np.array([[0.7, 0.2, 0.1]]))
    >>> round(fl.NLLLoss(reduction="sum")(logp, np.array([0])), 12)
    0.356674943939
    """)

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean", *,
                 n_threads=None):
        super().__init__(V.legacy_reduction(size_average, reduce, reduction, "NLLLoss"), n_threads=n_threads)
        self._ii = check_ignore_index(ignore_index, type(self).__name__)
        self.weight, self.ignore_index = weight, ignore_index

    def _run(self, input, target, weight, mode, out=None, hess_out=None, loss_out=None, check=False):
        return run(_NLL, input, target, weight=self.weight if weight is None else weight, ignore_index=self._ii,
                   reduction=self.reduction, mode=mode, n_threads=self.n_threads, out=out, hess_out=hess_out,
                   loss_out=loss_out, check=check)

    def _repr_args(self):
        return [("weight", self.weight), ("ignore_index", self.ignore_index), ("reduction", self.reduction)]


class SoftmaxFocalLoss(_RowLoss):
    __doc__ = _class_doc("softmax_focal_loss", """
    The per-class weight is ``alpha`` (a call's ``weight`` replaces it).

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> loss = fl.SoftmaxFocalLoss(alpha=np.array([0.5, 1.0, 1.0]), gamma=2.0)
    >>> x = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 0.0]])
    >>> round(loss(x, np.array([0, 2])), 12)
    0.484524781456
    """)

    def __init__(self, alpha=None, gamma=2.0, ignore_index=-100, reduction="mean", *, n_threads=None):
        super().__init__(reduction, n_threads=n_threads)
        op = type(self).__name__
        self._alpha_w, self._params = _p_focal(alpha, gamma, op)
        self._ii = check_ignore_index(ignore_index, op)
        self.alpha, self.gamma, self.ignore_index = alpha, gamma, ignore_index

    def _run(self, input, target, weight, mode, out=None, hess_out=None, loss_out=None, check=False):
        w, prm = self._alpha_w, self._params
        if weight is not None:
            w, prm = _p_focal(weight, prm[0], type(self).__name__)
        return run(_FOCAL, input, target, weight=w, ignore_index=self._ii, params=prm,
                   reduction=self.reduction, mode=mode, n_threads=self.n_threads, out=out, hess_out=hess_out,
                   loss_out=loss_out, w_name="alpha", check=check)

    def _repr_args(self):
        return [("alpha", self.alpha), ("gamma", self.gamma), ("ignore_index", self.ignore_index),
                ("reduction", self.reduction)]


class MultiMarginLoss(_RowLoss):
    __doc__ = _class_doc("multi_margin_loss", """

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> loss = fl.MultiMarginLoss(p=2, margin=1.0)
    >>> round(loss(np.array([[0.1, 0.2, 0.4, 0.8]]), np.array([3])), 12)
    0.1525
    """)

    def __init__(self, p=1, margin=1.0, weight=None, size_average=None, reduce=None, reduction="mean", *,
                 n_threads=None):
        super().__init__(V.legacy_reduction(size_average, reduce, reduction, "MultiMarginLoss"),
                         n_threads=n_threads)
        self._params = _p_margin(p, margin, type(self).__name__)
        self.p, self.margin, self.weight = p, margin, weight

    def _run(self, input, target, weight, mode, out=None, hess_out=None, loss_out=None, check=False):
        return _mm_run(input, target, out, lambda x, t, o: run(
            _MM, x, t, weight=self.weight if weight is None else weight, params=self._params,
            reduction=self.reduction, mode=mode, n_threads=self.n_threads, out=o, hess_out=hess_out,
            loss_out=loss_out, check=check), op=type(self).__name__)

    def _repr_args(self):
        return [("p", self.p), ("margin", self.margin), ("weight", self.weight), ("reduction", self.reduction)]


class MultiLabelSoftMarginLoss(_RowLoss):
    __doc__ = _class_doc("multilabel_soft_margin_loss", """

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> loss = fl.MultiLabelSoftMarginLoss(reduction="sum")
    >>> round(loss(np.array([[2.0, -1.0, 0.5]]), np.array([[1.0, 0.0, 1.0]])), 12)
    0.304755560914
    """)

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean", *, n_threads=None):
        super().__init__(V.legacy_reduction(size_average, reduce, reduction, "MultiLabelSoftMarginLoss"),
                         n_threads=n_threads)
        self.weight = weight

    def _run(self, input, target, weight, mode, out=None, hess_out=None, loss_out=None, grads=("input",),
             check=False):
        return run(_MLSM, input, target, weight=self.weight if weight is None else weight,
                   reduction=self.reduction, mode=mode, n_threads=self.n_threads, out=out, hess_out=hess_out,
                   loss_out=loss_out, grads=grads, check=check)

    def _repr_args(self):
        return [("weight", self.weight), ("reduction", self.reduction)]


class Poly1CrossEntropyLoss(_RowLoss):
    __doc__ = _class_doc("poly1_cross_entropy", """

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> loss = fl.Poly1CrossEntropyLoss(epsilon=1.0)
    >>> round(loss(np.array([[2.0, 0.5, -1.0]]), np.array([0])), 12)
    0.455714262068
    """)

    def __init__(self, epsilon=2.0, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0, *,
                 n_threads=None):
        super().__init__(reduction, n_threads=n_threads)
        op = type(self).__name__
        self._ii, self._params = _p_ce(ignore_index, label_smoothing, op, _p_poly(epsilon, op))
        self.epsilon, self.weight, self.ignore_index, self.label_smoothing = (
            epsilon, weight, ignore_index, label_smoothing)

    def _run(self, input, target, weight, mode, out=None, hess_out=None, loss_out=None, grads=("input",),
             check=False):
        return run(_POLY, input, target, weight=self.weight if weight is None else weight,
                   ignore_index=self._ii, params=self._params, reduction=self.reduction, mode=mode,
                   n_threads=self.n_threads, out=out, hess_out=hess_out, loss_out=loss_out, grads=grads,
                   check=check)

    def _repr_args(self):
        return [("epsilon", self.epsilon), ("weight", self.weight), ("ignore_index", self.ignore_index),
                ("reduction", self.reduction), ("label_smoothing", self.label_smoothing)]


# Metadata for adapters (fastloss.torch, fastloss.xgboost/lightgbm):
# the axis that holds the classes (PyTorch's axis 1 unless said here), and
# whether the target holds class labels or per-class values.
multilabel_soft_margin_loss._class_axis = MultiLabelSoftMarginLoss._class_axis = -1
for _cls in (CrossEntropyLoss, NLLLoss, SoftmaxFocalLoss, MultiMarginLoss, Poly1CrossEntropyLoss):
    _cls._target_kind = "labels"
MultiLabelSoftMarginLoss._target_kind = "values"
del _cls


# ------------------------------------------------------------------ examples
# Valid calls of every loss, from which the fuzz harness derives its hostile
# variants (fastloss._examples; docs/reliability.md).

def _declare_examples():
    from . import _examples as E

    def red(rng):
        return ("mean", "sum", "none")[int(rng.integers(0, 3))]

    def base(rng, dtype, size, spatial=True, kind="normal", soft=False, ignore=True):
        shape = E.rows_shape(rng, size, spatial)
        C = shape[0] if len(shape) == 1 else shape[1]
        args = {"input": E.values(rng, kind, shape, dtype), "reduction": red(rng)}
        lab = {}
        if soft and rng.random() < 0.3:  # class probabilities, along the class axis
            last = shape if len(shape) < 3 else shape[:1] + shape[2:] + shape[1:2]
            t = E.values(rng, "simplex", last, dtype)
            args["target"] = t if len(shape) < 3 else np.ascontiguousarray(np.moveaxis(t, -1, 1))
        else:
            ii = int(rng.choice([-100, -1, 0])) if ignore and rng.random() < 0.5 else None
            args["target"] = E.labels(rng, shape, C, ii)
            lab["target"] = C
            if ignore:
                args["ignore_index"] = -100 if ii is None else ii
        return args, lab, C, dtype

    def class_weight(rng, args, C, dtype, name="weight"):
        if rng.random() < 0.4:
            args[name] = E.values(rng, "positive", (C,), dtype)

    def gen_ce(rng, dtype, size, soft=True):
        args, lab, C, dt = base(rng, dtype, size, soft=soft)
        class_weight(rng, args, C, dt)
        if rng.random() < 0.4:
            args["label_smoothing"] = float(rng.uniform(0, 1))
        return E.Example(args, lab)

    def gen_hvp(rng, dtype, size):
        ex = gen_ce(rng, dtype, size)
        ex.args["v"] = E.values(rng, "normal", ex.args["input"].shape, dtype)
        return ex

    def gen_poly(rng, dtype, size):
        ex = gen_ce(rng, dtype, size)
        ex.args["epsilon"] = float(rng.uniform(-1, 3))
        return ex

    def gen_nll(rng, dtype, size):
        args, lab, C, dt = base(rng, dtype, size, kind="logprob")
        class_weight(rng, args, C, dt)
        return E.Example(args, lab)

    def gen_focal(rng, dtype, size):
        args, lab, C, dt = base(rng, dtype, size)
        a = rng.random()
        if a < 0.3:
            args["alpha"] = E.values(rng, "positive", (C,), dt)
        elif a < 0.6:
            args["alpha"] = float(rng.uniform(0, 1))
        args["gamma"] = float(rng.choice([0.0, 0.5, 2.0, 3.0]))
        return E.Example(args, lab)

    def gen_mm(rng, dtype, size):
        args, lab, C, dt = base(rng, dtype, size, spatial=False, ignore=False)
        class_weight(rng, args, C, dt)
        args["p"] = int(rng.choice([1, 2]))
        args["margin"] = float(rng.uniform(0, 2))
        return E.Example(args, lab)

    def gen_mlsm(rng, dtype, size):
        shape = E.rows_shape(rng, size, spatial=False)
        args = {"input": E.values(rng, "normal", shape, dtype), "target": E.values(rng, "binary", shape, dtype),
                "reduction": red(rng)}
        class_weight(rng, args, shape[-1], dtype)
        return E.Example(args)

    E.declare(gen_ce, cross_entropy, CrossEntropyLoss)
    E.declare(gen_hvp, cross_entropy_hvp)
    E.declare(gen_poly, poly1_cross_entropy, Poly1CrossEntropyLoss)
    E.declare(gen_nll, nll_loss, NLLLoss)
    E.declare(gen_focal, softmax_focal_loss, SoftmaxFocalLoss)
    E.declare(gen_mm, multi_margin_loss, MultiMarginLoss)
    E.declare(gen_mlsm, multilabel_soft_margin_loss, MultiLabelSoftMarginLoss)


_declare_examples()
# Gradients returned by return_grad=True (``_grad_args``) and those computed
# only when asked for (``_optional_grad_args``: the target's, for targets of
# the input's shape); adapters such as fastloss.torch read both.
for _name in __all__:
    _obj = globals()[_name]
    _obj._grad_args = ("input",)
    _obj._optional_grad_args = ()
for _obj in (cross_entropy, multilabel_soft_margin_loss, poly1_cross_entropy, CrossEntropyLoss,
             MultiLabelSoftMarginLoss, Poly1CrossEntropyLoss):
    _obj._optional_grad_args = ("target",)

# Arguments holding one value per item: the input's shape without the axis
# given here (class labels lack the class axis).  An adapter that splits
# the input along its axis 0 (fastloss.dask) splits them along their own
# axis 0 with it; other arguments follow NumPy's broadcasting against the
# input.  See docs/conventions.md.
for _obj in (cross_entropy, nll_loss, softmax_focal_loss, multi_margin_loss, poly1_cross_entropy,
             CrossEntropyLoss, NLLLoss, SoftmaxFocalLoss, MultiMarginLoss, Poly1CrossEntropyLoss):
    _obj._per_item_args = {"target": 1}
del _name, _obj
