"""The trimmed and winsorized reductions of a pointwise loss:
:class:`Trimmed` / :func:`trimmed`, :class:`Winsorized` / :func:`winsorized`.

One fused kernel pass gives every element's loss and gradient (and
Hessian); ``fastloss._trim`` then finds the elements to drop with an O(N)
radix selection on the loss values (no sort) and, in one more pass, sums
the kept ones and zeroes the gradient of the dropped ones.
"""
from __future__ import annotations

import copy
import functools
import math
import inspect

import numpy as np

from . import _check, _pointwise, _trim
from . import _validate as V
from ._alloc import empty
from ._config import _threads
from ._pointwise_api import GRAD, GRAD_HESS, VALUE, _pair, _PointwiseLoss, run

__all__ = ["Trimmed", "trimmed", "Winsorized", "winsorized"]

TAILS = ("both", "upper")
REDUCTIONS = ("mean", "sum", "none")


def _check_trim(trim, op, name="trim") -> float:
    t = V.real(trim, name, op)
    if not 0 <= t < 0.5:
        raise ValueError(f"{op}: {name} must be in [0, 0.5), got {trim!r}")
    return t


def _check_tails(tails, op) -> str:
    if isinstance(tails, str) and tails in TAILS:
        return tails
    raise ValueError(f"{op}: tails must be one of {', '.join(repr(t) for t in TAILS)}, got {tails!r}")


@functools.lru_cache(maxsize=None)
def _extra_operands(cls) -> tuple:
    """Operands a loss class's value_and_grad needs besides input and target."""
    return tuple(p.name for p in list(inspect.signature(cls.value_and_grad).parameters.values())[3:]
                 if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def _check_loss(loss, op):
    """What the trimmed reduction calls: the loss itself when it is a plain
    kernel (its spec and parameters are run with reduction="none"), else a
    copy of it with reduction="none" (its per-element values and the
    gradient of their sum)."""
    if isinstance(loss, type) or not isinstance(loss, _PointwiseLoss):
        raise TypeError(f"{op}: loss must be a fastloss pointwise loss object (such as "
                        f"fastloss.HuberLoss(delta=1.0)), got {loss!r}")
    extra = _extra_operands(type(loss))
    if extra:
        raise TypeError(f"{op}: {type(loss).__name__} needs {', '.join(extra)} besides input and target; "
                        f"only losses of (input, target) can be trimmed")
    if _plain(loss):
        return loss
    from ._boosting import with_reduction

    none = with_reduction(loss, "none")
    return copy.copy(loss) if none is loss else none  # a copy of our own: its n_threads is set per call


def _plain(loss) -> bool:
    """Whether the loss runs the pointwise driver as the base class does
    (then one kernel pass gives the loss, gradient and Hessian at once)."""
    cls = type(loss)
    return (cls.__call__ is _PointwiseLoss.__call__ and cls.value_and_grad is _PointwiseLoss.value_and_grad
            and cls.grad_hess is _PointwiseLoss.grad_hess and not loss._spec.extra)


def _trimmed_run(none_loss, trim, tails, input, target, weight, reduction, mode, n_threads, op,
                 out=None, hess_out=None, loss_out=None, winsor=False, check=False):
    nt = _threads(n_threads, op)
    if check:   # the checks of the loss trimmed
        _check.check_call("winsorized" if winsor else "trimmed", input, target, loss=none_loss, weight=weight,
                          n_threads=nt)
    x = V.as_input(input, "input", op)
    dt, shape, n = x.dtype, x.shape, x.size
    y = V.as_operand(target, "target", op, dt, shape)
    w = None if weight is None else V.as_broadcast(weight, "weight", op, dt, shape)
    if out is not None and mode == VALUE:
        raise ValueError(f"{op}: out= is the gradient's buffer; pass return_grad=True with it")
    for buf, nm in ((out, "out"), (hess_out, "hess_out"), (loss_out, "loss_out")):
        if buf is not None:
            V.check_out(buf, nm, op, dt, shape)
            V.check_no_overlap(buf, nm, op, x, y, w, *(b for b, m in ((out, "out"), (hess_out, "hess_out"),
                                                                   (loss_out, "loss_out")) if b is not buf))
    if loss_out is not None and reduction != "none":
        raise ValueError(f"{op}: loss_out= is for reduction='none', got reduction={reduction!r}")
    # the per-element loss: the caller's buffer for "none" (trimmed in place), else a temporary
    lo = empty(shape, dt) if loss_out is None else loss_out
    g = h = None
    plain = _plain(none_loss)
    # mse and l1 divide a weighted mean by the summed weights (PyTorch's): then by the kept ones'
    wdiv = reduction == "mean" and plain and none_loss._spec.wmean and w is not None
    if plain:
        res = run(none_loss._spec, x, y, None, "none", mode, none_loss._params, nt, out=out,
                  hess_out=hess_out, loss_out=lo)
        if mode == GRAD:
            g = res[1]
        elif mode == GRAD_HESS:
            g, h = res
    else:
        none_loss.n_threads = nt
        if mode == VALUE:
            lo[...] = none_loss(x, y)
        else:
            _, g = none_loss.value_and_grad(x, y, out=out, loss_out=lo)
            if mode == GRAD_HESS:  # a second pass: these losses' grad_hess does not return the loss
                g, h = none_loss.grad_hess(x, y, out=(g, hess_out if hess_out is not None
                                                           else empty(shape, dt)))
    k = int(trim * n)  # as scipy.stats.trim_mean
    k_lo = k if tails == "both" else 0
    kept = n if winsor else n - k_lo - k  # winsorizing keeps every element's place
    div = kept if reduction == "mean" else 0
    total, nan, wd = _trim.trim(lo, g, h, w, lo if reduction == "none" else None, k_lo, k,
                                1.0 / div if div else 1.0, nt, winsor,
                                _pointwise.block_sum(w, dt is not V.F32, nt) if wdiv else None)
    if reduction == "none":
        value = lo
    elif nan:
        value = float("nan")
    elif reduction == "sum":
        value = total
    elif wdiv:  # as the loss's own weighted mean: inf/NaN over weights summing to 0
        value = total / wd if wd else (float("nan") if total == 0 or total != total
                                        else math.copysign(math.inf, total))
    else:
        value = total / div if div else float("nan")
    if mode == VALUE:
        return value
    if mode == GRAD:
        return value, g
    return g, h


_FORMULA = """With the per-element losses ``l_i`` of ``loss`` (its own reduction is
    ignored), ``k = int(trim * n)`` (``n`` the number of elements, as
    ``scipy.stats.trim_mean``), and the elements ranked by ``l_i`` as a
    stable sort ranks them (``np.argsort(l, kind="stable")``: ties by
    index, so among equal losses the later elements count as larger; -0
    equals 0; NaN is the largest), the ``k`` lowest and the ``k``
    highest ranks are dropped (``tails="both"``, the trimmed mean of
    statistics), or only the ``k`` highest (``tails="upper"``: least
    trimmed squares, loss truncation for noisy labels).  With ``m`` the
    number kept and ``w`` the weights (applied after the ranking, which is
    by the unweighted loss):

    * "mean": ``sum_kept w_i l_i / m`` (for ``MSELoss`` and ``L1Loss``,
      whose weighted mean divides by the summed weights as PyTorch's, by
      ``sum_kept w_i`` instead); "sum": ``sum_kept w_i l_i``;
    * "none": ``w_i l_i`` where kept, 0 where dropped.

    The gradient (and the diagonal Hessian) is the loss's own on the kept
    elements, scaled as the value (``w_i / m`` for the mean), and exactly
    0 on the dropped ones: the derivative of the trimmed mean wherever the
    ranking is not tied.  A NaN loss or weight anywhere makes the value
    NaN, even on a dropped element: NaN is never masked (a dropped element
    with a NaN loss or weight gets NaN, not 0, in "none" and the gradient).  The selection
    is an O(n) radix selection on the losses' bits in C (no sort); it and
    the sum are independent of the thread count, bit for bit.  With
    ``trim=0`` the gradient and Hessian are the loss's own bit for bit, and
    the value is its own to rounding."""


def _doc(obj):
    obj.__doc__ = obj.__doc__.replace("%(formula)s", _FORMULA)
    return obj


@_doc
class Trimmed:
    """The trimmed mean (or sum) of a pointwise loss.

    The object form of :func:`fastloss.trimmed`.
    ``fl.Trimmed(fl.HuberLoss(delta=1.0), trim=0.05)`` is a loss object
    like the others: ``loss(input, target, weight=None)`` gives the value,
    ``value_and_grad`` the value and gradient, ``grad_hess`` the gradient
    and diagonal Hessian; it also works with fastloss.torch,
    fastloss.xgboost and fastloss.lightgbm.

    %(formula)s

    Parameters
    ----------
    loss : fastloss pointwise loss object
        A loss of ``(input, target)`` (not ``GaussianNLLLoss``, which needs
        ``var``, nor a row loss such as ``CrossEntropyLoss``).
    trim : float in [0, 0.5)
        The fraction of elements dropped at each trimmed tail.
    tails : {"both", "upper"}
    reduction : {"mean", "sum", "none"}
    n_threads : int, optional

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> x = np.array([0.0, 0.0, 0.0, 0.0, 0.0]); y = np.array([1.0, -2.0, 0.5, 10.0, 3.0])
    >>> loss = fl.Trimmed(fl.MSELoss(), trim=0.2)   # drops the smallest and the largest loss
    >>> value, grad = loss.value_and_grad(x, y)
    >>> value, grad                                  # (1 + 4 + 9) / 3
    (4.666666666666667, array([-0.66666667,  1.33333333,  0.        ,  0.        , -2.        ]))
    """

    _grad_args = ("input",)

    def __init__(self, loss, trim=0.05, tails="both", reduction="mean", *, n_threads=None):
        op = "Trimmed"
        self._none = _check_loss(loss, op)
        self._trim = _check_trim(trim, op)
        self._tails = _check_tails(tails, op)
        self.reduction = V.check_reduction(reduction, op, REDUCTIONS)
        if n_threads is not None:
            _threads(n_threads, op)
        self.loss, self.trim, self.tails, self.n_threads = loss, trim, tails, n_threads

    def _run(self, input, target, weight, mode, **bufs):
        return _trimmed_run(self._none, self._trim, self._tails, input, target, weight, self.reduction, mode,
                            self.n_threads, "Trimmed", **bufs)

    def __call__(self, input, target, weight=None, *, check=False):
        """The trimmed value: a float, or an array of input's shape for reduction="none".
        ``check=True`` runs :func:`fastloss.diagnose`'s checks of the loss trimmed first."""
        return self._run(input, target, weight, VALUE, check=check)

    def value_and_grad(self, input, target, weight=None, out=None, loss_out=None, *, check=False):
        """``(value, grad)``; ``out`` and ``loss_out`` (reduction="none") are
        optional buffers of input's shape and dtype."""
        return self._run(input, target, weight, GRAD, out=out, loss_out=loss_out, check=check)

    def grad_hess(self, input, target, weight=None, out=None, *, check=False):
        """``(grad, hess)``: the gradient and diagonal Hessian of the trimmed
        value; ``out`` may be a pair of buffers ``(grad_out, hess_out)``."""
        g, h = (None, None) if out is None else _pair(out, "Trimmed")
        return self._run(input, target, weight, GRAD_HESS, out=g, hess_out=h, check=check)

    def _repr_args(self):
        return [("loss", self.loss), ("trim", self.trim), ("tails", self.tails), ("reduction", self.reduction)]

    def __repr__(self):
        return f"Trimmed({', '.join(f'{k}={v!r}' for k, v in self._repr_args())})"


@_doc
def trimmed(input, target, loss, trim=0.05, *, tails="both", weight=None, reduction="mean", return_grad=False,
            out=None, n_threads=None, check=False):
    """The trimmed mean (or sum) of a pointwise loss's per-element values.

    %(formula)s

    Parameters
    ----------
    input, target : array_like, same shape
    loss : fastloss pointwise loss object
        A loss of ``(input, target)``, e.g. ``fastloss.HuberLoss(delta=1.0)``
        (its ``reduction`` is ignored).
    trim : float in [0, 0.5)
    tails : {"both", "upper"}
    weight : array_like, optional
        Broadcast to input's shape; multiplies each kept element's loss.
    reduction : {"mean", "sum", "none"}
    return_grad : bool
    out : ndarray, optional
        The gradient's buffer (with return_grad=True).
    n_threads : int, optional
    check : bool
        Run :func:`fastloss.diagnose`'s checks of the wrapped loss on input
        and target first and warn each finding as a
        :class:`fastloss.LossWarning` (one summary pass over each; the
        default False costs one test).

    Returns
    -------
    value : float, or ndarray for reduction="none"
    grad : ndarray of input's shape and dtype, with return_grad=True

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> x = np.zeros(5); y = np.array([1.0, -2.0, 0.5, 10.0, 3.0])
    >>> fl.trimmed(x, y, fl.L1Loss(), trim=0.2, tails="upper")   # the outlier 10 dropped
    1.625
    """
    op = "trimmed"
    none = _check_loss(loss, op)
    t = _check_trim(trim, op)
    tl = _check_tails(tails, op)
    reduction = V.check_reduction(reduction, op, REDUCTIONS)
    return _trimmed_run(none, t, tl, input, target, weight, reduction, GRAD if return_grad else VALUE,
                        n_threads, op, out=out, check=check)


_WINSOR_FORMULA = """With the per-element losses ``l_i`` of ``loss`` (its own reduction is
    ignored), ``k = int(limit * n)`` and the ranks of a stable sort of the
    losses (as :class:`Trimmed`: ties by index, -0 equals 0, NaN the
    largest), each element of the ``k`` lowest ranks counts as the loss at
    rank ``k`` (``l_lo``) and each of the ``k`` highest as the loss at rank
    ``n - 1 - k`` (``l_hi``), as ``scipy.stats.mstats.winsorize(l,
    limits=(limit, limit))`` (``tails="upper"``: only the highest, ``limits=(0,
    limit)``).  With ``c_i`` these clipped losses and ``w`` the weights
    (applied after the ranking):

    * "mean": ``sum_i w_i c_i / n`` (every element keeps its place; for
      ``MSELoss`` and ``L1Loss`` over ``sum_i w_i``, as their own mean);
      "sum": ``sum_i w_i c_i``.
    * "none": each element's share of that sum as a function of its own
      loss: ``W_i l_i`` with ``W_i = w_i`` for the unclipped elements, 0
      for the clipped ones, and for each boundary element ``b`` (the one at
      rank ``k``, or ``n - 1 - k``) its own weight plus the summed weights
      of the elements clipped to it (whose value it supplies).  The shares
      add up to the "sum", and each depends on its own input only, so the
      per-element gradient is an elementwise one (as fastloss.torch needs).

    The gradient is the derivative of the value: ``W_i g_i`` (over ``n``
    for the mean), the loss's own gradient times those weights; the
    diagonal Hessian likewise.  NaN is never masked (a NaN loss or weight
    makes the value NaN and its element's outputs NaN).  The selection is
    the same O(n) radix selection as :class:`Trimmed`'s; the results do not
    depend on the thread count."""


def _wdoc(obj):
    obj.__doc__ = obj.__doc__.replace("%(formula)s", _WINSOR_FORMULA)
    return obj


@_wdoc
class Winsorized(Trimmed):
    """The winsorized mean (or sum) of a pointwise loss.

    The object form of :func:`fastloss.winsorized`.
    ``fl.Winsorized(fl.MSELoss(), limit=0.05)`` is a loss object like the
    others (``__call__``, ``value_and_grad``, ``grad_hess``; fastloss.torch,
    fastloss.xgboost and fastloss.lightgbm take it).

    %(formula)s

    Parameters
    ----------
    loss : fastloss pointwise loss object
        A loss of ``(input, target)``.
    limit : float in [0, 0.5)
        The fraction of elements clipped at each winsorized tail.
    tails : {"both", "upper"}
    reduction : {"mean", "sum", "none"}
    n_threads : int, optional

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> x = np.zeros(5); y = np.array([1.0, -2.0, 0.5, 10.0, 3.0])
    >>> value, grad = fl.Winsorized(fl.MSELoss(), limit=0.2).value_and_grad(x, y)
    >>> value                      # losses 1, 4, 0.25, 100, 9 -> 1, 4, 1, 9, 9
    4.8
    >>> grad                       # 0.25 clipped to 1 (rank 1), 100 clipped to 9 (rank 3)
    array([-0.8,  0.8,  0. ,  0. , -2.4])
    """

    def __init__(self, loss, limit=0.05, tails="both", reduction="mean", *, n_threads=None):
        op = "Winsorized"
        self._none = _check_loss(loss, op)
        self._trim = _check_trim(limit, op, "limit")
        self._tails = _check_tails(tails, op)
        self.reduction = V.check_reduction(reduction, op, REDUCTIONS)
        if n_threads is not None:
            _threads(n_threads, op)
        self.loss, self.limit, self.tails, self.n_threads = loss, limit, tails, n_threads

    def _run(self, input, target, weight, mode, **bufs):
        return _trimmed_run(self._none, self._trim, self._tails, input, target, weight, self.reduction, mode,
                            self.n_threads, "Winsorized", winsor=True, **bufs)

    def grad_hess(self, input, target, weight=None, out=None, *, check=False):
        """``(grad, hess)``: the gradient and diagonal Hessian of the winsorized
        value; ``out`` may be a pair of buffers ``(grad_out, hess_out)``."""
        g, h = (None, None) if out is None else _pair(out, "Winsorized")
        return self._run(input, target, weight, GRAD_HESS, out=g, hess_out=h, check=check)

    def _repr_args(self):
        return [("loss", self.loss), ("limit", self.limit), ("tails", self.tails), ("reduction", self.reduction)]

    def __repr__(self):
        return f"Winsorized({', '.join(f'{k}={v!r}' for k, v in self._repr_args())})"


@_wdoc
def winsorized(input, target, loss, limit=0.05, *, tails="both", weight=None, reduction="mean",
               return_grad=False, out=None, n_threads=None, check=False):
    """The winsorized mean (or sum) of a pointwise loss's per-element values.

    %(formula)s

    Parameters
    ----------
    input, target : array_like, same shape
    loss : fastloss pointwise loss object
        A loss of ``(input, target)``, e.g. ``fastloss.HuberLoss(delta=1.0)``
        (its ``reduction`` is ignored).
    limit : float in [0, 0.5)
    tails : {"both", "upper"}
    weight : array_like, optional
    reduction : {"mean", "sum", "none"}
    return_grad : bool
    out : ndarray, optional
        The gradient's buffer (with return_grad=True).
    n_threads : int, optional
    check : bool
        Run :func:`fastloss.diagnose`'s checks of the wrapped loss on input
        and target first and warn each finding as a
        :class:`fastloss.LossWarning` (one summary pass over each; the
        default False costs one test).

    Returns
    -------
    value : float, or ndarray for reduction="none"
    grad : ndarray of input's shape and dtype, with return_grad=True

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> x = np.zeros(5); y = np.array([1.0, -2.0, 0.5, 10.0, 3.0])
    >>> fl.winsorized(x, y, fl.L1Loss(), limit=0.2, tails="upper")   # |10| counts as 3
    1.9
    """
    op = "winsorized"
    none = _check_loss(loss, op)
    t = _check_trim(limit, op, "limit")
    tl = _check_tails(tails, op)
    reduction = V.check_reduction(reduction, op, REDUCTIONS)
    return _trimmed_run(none, t, tl, input, target, weight, reduction, GRAD if return_grad else VALUE,
                        n_threads, op, out=out, winsor=True, check=check)


# Why an adapter that splits the input into chunks (fastloss.dask) cannot
# give these losses exactly: see docs/conventions.md.
trimmed._unsplittable = winsorized._unsplittable = Trimmed._unsplittable = (
    "its value drops or clips the largest losses of the whole array, an order statistic of all the "
    "elements, not a sum of blocks")
