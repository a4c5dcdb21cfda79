"""Segmentation losses of the set-overlap shape: Dice, Jaccard (soft IoU),
Tversky and focal Tversky, the fused BCE+Dice and CE+Dice, and the Lovasz
hinge and Lovasz-softmax losses.

PyTorch has none of these.  The definitions, defaults and options follow
segmentation_models_pytorch (smp.losses ``DiceLoss``, ``JaccardLoss``,
``TverskyLoss``, ``LovaszLoss``; the source of its 0.5 line, the newest
there is to read), with the differences each docstring lists where smp
has a defect.  Every loss is one function (value, and its gradient with
``return_grad=True``) and one class; both run the fused kernels of
``src/fastloss/_src/fl_overlap*.h`` through ``fastloss._overlap_api``.
"""
from __future__ import annotations

import functools

from . import _validate as V
from ._overlap_api import _OverlapLoss, check_mode, run_lovasz, run_seg

__all__ = [
    "dice_loss", "jaccard_loss", "tversky_loss", "bce_dice_loss", "ce_dice_loss",
    "lovasz_hinge_loss", "lovasz_softmax_loss",
    "DiceLoss", "JaccardLoss", "TverskyLoss", "BCEDiceLoss", "CEDiceLoss", "LovaszHingeLoss",
    "LovaszSoftmaxLoss",
]

_SHAPES = """input : array_like
        Logits (or probabilities with ``from_logits=False``): ``(N, C, d1,
        ..., dk)`` with the classes on axis 1 for "multiclass" and
        "multilabel"; ``(N, d1, ..., dk)`` or ``(N, 1, d1, ..., dk)`` for
        "binary".
    target : array_like
        "multiclass": integer labels ``(N, d1, ..., dk)`` (int64, int32 or
        uint8 read in place); "binary" and "multilabel": a mask or
        probabilities in [0, 1] of the input's shape (a binary input
        ``(N, 1, ...)`` also takes ``(N, ...)``)."""

_OVERLAP_PARAMS = """mode : {"binary", "multiclass", "multilabel"}
        "binary": one sigmoid channel; "multiclass": a softmax over the C
        classes and integer labels; "multilabel": C independent sigmoid
        channels.
    classes : sequence of int, optional
        Only these classes count in the mean over classes (not with
        "binary"); the others still shape the softmax.
    log_loss : bool
        ``-log(max(score, eps))`` instead of ``1 - score``.
    from_logits : bool
        True: input holds logits, and the sigmoid / softmax is fused into
        both passes.  False: input holds probabilities.
    smooth : float >= 0
        Added to the numerator and denominator of each score.
    ignore_index : int, optional
        Target values equal to it contribute nothing (multiclass: the
        whole pixel; otherwise the element), and get a zero gradient.
    eps : float > 0
        The score's denominator is at least eps (smp's clamp_min)."""

_COMMON = """per_image : bool
        False: the sums run over the whole batch (smp); True: over each
        image, and the loss is the mean (sum, or the array) of the images'
        losses, so an image's loss does not depend on what it is batched
        with.
    weight : array_like of shape (C,), optional
        Per-class weights of the mean over classes (smp's class_weights):
        ``sum_c w_c l_c / sum_c w_c``.
    reduction : {"mean", "sum", "none"}
        Over the sets: with ``per_image=True``, "none" returns the (N,)
        losses of the images; with ``per_image=False`` the batch is one
        set ("mean" and "sum" agree; "none" returns it as a 0-d array).
    return_grad : bool
        Also return the gradient with respect to input, in the same call.
    out : ndarray, optional
        Buffer for the gradient (input's shape and dtype, C-contiguous);
        only with return_grad=True.
    n_threads : int, optional
        Threads for this call (default :func:`fastloss.get_num_threads`).
    check : bool
        Run :func:`fastloss.diagnose`'s checks on input and target first and warn each
        finding as a :class:`fastloss.LossWarning` (one summary pass over
        each; the default False costs one test).

    Returns
    -------
    value : float, or ndarray for reduction="none"
    grad : ndarray of input's shape and dtype, with return_grad=True
        The gradient of the returned value (of the sum for "none").

    Notes
    -----
    Two passes over the input: the per-class sums (float64, added block by
    block in a fixed order, so the value is bit-identical for any thread
    count), then the gradient, with the sigmoid or softmax recomputed
    rather than stored: the only arrays allocated are the gradient and
    O(C) sums (O(N C) with per_image).  The soft intersection is
    ``sum min(p, t)``, smp's ``(sum p + sum t - |p - t|_1) / 2``, which is
    ``sum p t`` for hard targets and stays a proper overlap for soft ones.

    Differences from segmentation_models_pytorch: smp zeroes the loss of
    every class without target pixels; here that happens only when
    ``smooth == 0`` (where the score of such a class is 0 whatever the
    prediction).  With ``smooth > 0`` an empty class counts, ``1 -
    smooth / (alpha sum p + smooth)``, so an all-background batch is not a
    silent loss 0 with a zero gradient.  ``per_image=True`` is new (smp
    sums over the batch only).  Dropped classes still count in the mean's
    divisor, as in smp."""


def _doc(fn):
    fn.__doc__ = (fn.__doc__.replace("%(shapes)s", _SHAPES).replace("%(overlap)s", _OVERLAP_PARAMS)
                  .replace("%(common)s", _COMMON))
    return fn


def _p_tversky(alpha, beta, gamma, op):
    a = V.nonneg(alpha, "alpha", op)
    b = V.nonneg(beta, "beta", op)
    g = V.positive(gamma, "gamma", op)
    return a, b, g


def _p_weights(a, b, na, nb, op):
    return V.nonneg(a, na, op), V.nonneg(b, nb, op)


# ------------------------------------------------------------------ functions

@_doc
def dice_loss(input, target, mode="binary", classes=None, log_loss=False, from_logits=True, smooth=0.0,
              ignore_index=None, eps=1e-7, per_image=False, *, weight=None, reduction="mean",
              return_grad=False, out=None, n_threads=None, check=False):
    """Soft Dice loss, as segmentation_models_pytorch's ``DiceLoss``.

    With ``p`` the probabilities and ``t`` the target of one class over
    the set (the batch, or an image): ``I = sum min(p, t)``, score
    ``s = (2 I + 2 smooth) / max(sum p + sum t + 2 smooth, 2 eps)`` --
    smp's Tversky form with alpha = beta = 1/2 -- and the loss of the set
    is the mean over classes of ``1 - s``.

    Parameters
    ----------
    %(shapes)s
    %(overlap)s
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> x = np.array([[[2.0, -1.0], [0.5, -3.0]]])      # (N=1, H=2, W=2) logits
    >>> t = np.array([[[1.0, 0.0], [1.0, 0.0]]])
    >>> round(fl.dice_loss(x, t), 6)
    0.212877
    >>> value, grad = fl.dice_loss(x, t, return_grad=True)
    >>> grad.shape
    (1, 2, 2)
    """
    return run_seg("dice_loss", input, target, mode=mode, classes=classes, log_loss=log_loss,
                   from_logits=from_logits, smooth=smooth, ignore_index=ignore_index, eps=eps,
                   per_image=per_image, weight=weight, reduction=reduction, return_grad=return_grad, out=out,
                   n_threads=n_threads, alpha=0.5, beta=0.5, check=check)


@_doc
def jaccard_loss(input, target, mode="binary", classes=None, log_loss=False, from_logits=True, smooth=0.0,
                 ignore_index=None, eps=1e-7, per_image=False, *, weight=None, reduction="mean",
                 return_grad=False, out=None, n_threads=None, check=False):
    """Soft Jaccard (IoU) loss, as segmentation_models_pytorch's ``JaccardLoss``.

    Per class over the set: ``I = sum min(p, t)``, score ``s = (I + smooth)
    / max(sum p + sum t - I + smooth, eps)``; the loss is the mean over
    classes of ``1 - s``.

    Parameters
    ----------
    %(shapes)s
    %(overlap)s
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> x = np.array([[[2.0, -1.0], [0.5, -3.0]]])
    >>> t = np.array([[[1.0, 0.0], [1.0, 0.0]]])
    >>> round(fl.jaccard_loss(x, t), 6)
    0.351028
    """
    return run_seg("jaccard_loss", input, target, mode=mode, classes=classes, log_loss=log_loss,
                   from_logits=from_logits, smooth=smooth, ignore_index=ignore_index, eps=eps,
                   per_image=per_image, weight=weight, reduction=reduction, return_grad=return_grad, out=out,
                   n_threads=n_threads, alpha=1.0, beta=1.0, check=check)


@_doc
def tversky_loss(input, target, mode="binary", classes=None, log_loss=False, from_logits=True, smooth=0.0,
                 ignore_index=None, eps=1e-7, alpha=0.5, beta=0.5, gamma=1.0, per_image=False, *, weight=None,
                 reduction="mean", return_grad=False, out=None, n_threads=None, check=False):
    """Tversky and focal Tversky loss, as segmentation_models_pytorch's ``TverskyLoss``.

    Per class over the set: ``I = sum min(p, t)``, ``FP = sum p - I``,
    ``FN = sum t - I``, score ``s = (I + smooth) / max(I + alpha FP + beta
    FN + smooth, eps)``.  The loss of the set is ``(mean_c (1 - s_c))^gamma``
    (smp raises the aggregated loss to gamma; gamma != 1 is the focal
    Tversky loss of Abraham and Khan, 2019).  alpha = beta = 1/2 is Dice,
    alpha = beta = 1 Jaccard.  Where the aggregated loss is 0 its
    derivative is taken as 0 for gamma != 1 (a minimum; PyTorch gives NaN
    for gamma < 1 there).

    Parameters
    ----------
    %(shapes)s
    %(overlap)s
    alpha, beta : float >= 0
        Weights of the false positives and false negatives.
    gamma : float > 0
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> x = np.array([[[2.0, -1.0], [0.5, -3.0]]])
    >>> t = np.array([[[1.0, 0.0], [1.0, 0.0]]])
    >>> round(fl.tversky_loss(x, t, alpha=0.3, beta=0.7, gamma=4 / 3), 6)
    0.138856
    """
    a, b, g = _p_tversky(alpha, beta, gamma, "tversky_loss")
    return run_seg("tversky_loss", input, target, mode=mode, classes=classes, log_loss=log_loss,
                   from_logits=from_logits, smooth=smooth, ignore_index=ignore_index, eps=eps,
                   per_image=per_image, weight=weight, reduction=reduction, return_grad=return_grad, out=out,
                   n_threads=n_threads, alpha=a, beta=b, gamma=g, check=check)


@_doc
def bce_dice_loss(input, target, bce_weight=1.0, dice_weight=1.0, mode="binary", smooth=0.0, ignore_index=None,
                  eps=1e-7, per_image=False, *, weight=None, reduction="mean", return_grad=False, out=None,
                  n_threads=None, check=False):
    """Binary cross-entropy plus Dice, fused: the logits are read once per pass.

    ``bce_weight * BCE + dice_weight * Dice`` over each set, with BCE the
    mean of ``torch.nn.functional.binary_cross_entropy_with_logits`` over
    the set's elements that are not ignored (0 if there are none), and
    Dice :func:`dice_loss` from logits.  One gradient buffer holds the
    gradient of the sum.  The usual segmentation default of the losses'
    guides; there is no such loss in PyTorch or smp (their sum is the
    definition followed).

    Parameters
    ----------
    %(shapes)s
    bce_weight, dice_weight : float >= 0
    mode : {"binary", "multilabel"}
    smooth, ignore_index, eps
        As :func:`dice_loss`.
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> x = np.array([[[2.0, -1.0], [0.5, -3.0]]])
    >>> t = np.array([[[1.0, 0.0], [1.0, 0.0]]])
    >>> round(fl.bce_dice_loss(x, t), 6)
    0.453591
    """
    op = "bce_dice_loss"
    mode = check_mode(mode, op, ("binary", "multilabel"))
    bw, dw = _p_weights(bce_weight, dice_weight, "bce_weight", "dice_weight", op)
    return run_seg(op, input, target, mode=mode, smooth=smooth, ignore_index=ignore_index, eps=eps,
                   per_image=per_image, weight=weight, reduction=reduction, return_grad=return_grad, out=out,
                   n_threads=n_threads, alpha=0.5, beta=0.5, overlap_w=dw, ce_w=bw, check=check)


@_doc
def ce_dice_loss(input, target, ce_weight=1.0, dice_weight=1.0, classes=None, smooth=0.0, ignore_index=None,
                 eps=1e-7, per_image=False, *, weight=None, reduction="mean", return_grad=False, out=None,
                 n_threads=None, check=False):
    """Cross-entropy plus multiclass Dice, fused: one softmax per pass.

    ``ce_weight * CE + dice_weight * Dice`` over each set, with CE the mean
    of ``torch.nn.functional.cross_entropy`` over the pixels that are not
    ignored (unweighted; 0 if there are none, where PyTorch gives NaN) and
    Dice :func:`dice_loss` with mode="multiclass" from logits (``weight``
    weighs its classes).  One gradient buffer holds the gradient of the
    sum.

    Parameters
    ----------
    input : array_like of logits ``(N, C, d1, ..., dk)``
    target : array_like of integer labels ``(N, d1, ..., dk)``
    ce_weight, dice_weight : float >= 0
    classes, smooth, ignore_index, eps
        As :func:`dice_loss`.
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> x = np.array([[[[2.0, -1.0]], [[0.5, 1.0]], [[-1.0, 0.0]]]])   # (N=1, C=3, 1, 2)
    >>> y = np.array([[[0, 1]]])
    >>> round(fl.ce_dice_loss(x, y), 6)
    0.470936
    """
    op = "ce_dice_loss"
    cw, dw = _p_weights(ce_weight, dice_weight, "ce_weight", "dice_weight", op)
    return run_seg(op, input, target, mode="multiclass", classes=classes, smooth=smooth,
                   ignore_index=ignore_index, eps=eps, per_image=per_image, weight=weight, reduction=reduction,
                   return_grad=return_grad, out=out, n_threads=n_threads, alpha=0.5, beta=0.5, overlap_w=dw,
                   ce_w=cw, check=check)


_LOVASZ_COMMON = """reduction : {"mean", "sum", "none"}
        Over the sets, as :func:`dice_loss` (smp: the mean).
    return_grad : bool
        Also return the subgradient with respect to input.
    out : ndarray, optional
        Buffer for the gradient (input's shape and dtype); only with
        return_grad=True.
    n_threads : int, optional
        Threads for this call: the sorts of the sets (and classes) run in
        parallel.
    check : bool
        Run :func:`fastloss.diagnose`'s checks on input and target first and warn each
        finding as a :class:`fastloss.LossWarning` (one summary pass over
        each; the default False costs one test).

    Returns
    -------
    value : float, or ndarray for reduction="none"
    grad : ndarray of input's shape and dtype, with return_grad=True
        A subgradient of the returned value: the paper's ``lovasz_grad``
        weights of the sorted errors, put back at each pixel.

    Notes
    -----
    The errors of each set are sorted in C by a stable radix sort (ties
    keep the pixels' order, as a stable argsort does), in parallel over the
    sets and classes; each thread keeps 16 bytes per element of a set
    (float32; 32 for float64) of scratch for the keys with their positions
    and the sort's second buffer.  Inputs have fewer than 2**31 elements."""


def _ldoc(fn):
    fn.__doc__ = fn.__doc__.replace("%(common)s", _LOVASZ_COMMON)
    return fn


@_ldoc
def lovasz_hinge_loss(input, target, per_image=False, ignore_index=None, *, weight=None, reduction="mean",
                      return_grad=False, out=None, n_threads=None, check=False):
    """Lovasz hinge loss (Berman et al., 2018), as segmentation_models_pytorch's
    ``LovaszLoss(mode="binary")``.

    For each set (the batch, or an image with ``per_image=True``) of
    logits ``x`` and labels ``y`` in {0, 1}: hinge errors ``e = 1 - x (2 y
    - 1)``, sorted decreasingly, and the loss ``sum_r relu(e_(r)) w_r``
    with ``w`` the ``lovasz_grad`` of the sorted labels (the increments of
    the Jaccard loss along the sorted errors).  A set whose pixels are all
    ignored has loss 0.  The input are scores (logits): the hinge has no
    probability form.

    Parameters
    ----------
    input : array_like of logits ``(N, d1, ..., dk)``
        Any shape with the batch first; each image's elements form one set
        (smp's ``mode="multilabel"`` is this on ``(N, C, H, W)``).
    target : array_like of 0 and 1, the input's shape
    per_image : bool
        smp's default is False (the whole batch is one set).
    ignore_index : int, optional
    weight : None
        Per-class weights do not apply to the hinge's one class: only None
        is accepted (the parameter is there for the common signature).
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> x = np.array([[[2.0, -1.0], [0.5, -3.0]]])
    >>> t = np.array([[[1.0, 0.0], [1.0, 0.0]]])
    >>> round(fl.lovasz_hinge_loss(x, t), 6)
    0.25
    """
    return run_lovasz("lovasz_hinge_loss", input, target, softmax=False, per_image=per_image,
                      ignore_index=ignore_index, weight=weight, reduction=reduction, return_grad=return_grad,
                      out=out, n_threads=n_threads, check=check)


@_ldoc
def lovasz_softmax_loss(input, target, classes="present", per_image=False, ignore_index=None, from_logits=True,
                        *, weight=None, reduction="mean", return_grad=False, out=None, n_threads=None, check=False):
    """Lovasz-softmax loss (Berman et al., 2018), as segmentation_models_pytorch's
    ``LovaszLoss(mode="multiclass")``.

    For each set and class c: errors ``e = |[y = c] - p_c|`` over the
    pixels that are not ignored, sorted decreasingly, and the class's loss
    ``sum_r e_(r) w_r`` (``w`` the ``lovasz_grad`` of the sorted
    foreground flags); the set's loss is the mean over the classes that
    count (0 if none does), weighted by ``weight`` if given.

    Difference from segmentation_models_pytorch: smp always applies a
    softmax; here ``from_logits=False`` takes probabilities as they are.

    A gradient call parks the probabilities in the gradient buffer (which
    it returns); a value-only call stores none and recomputes each pixel's
    softmax for every class (C times the exponentials), so that it
    allocates nothing of the input's size and gives the same bits.

    Parameters
    ----------
    input : array_like ``(N, C, d1, ..., dk)``
        Logits, or probabilities with ``from_logits=False``.
    target : array_like of integer labels ``(N, d1, ..., dk)``
    classes : "present", "all" or a sequence of class indices
        "present" (smp's, the default): the classes present in the set's
        labels; "all": every class; a list: those classes, present or not.
    per_image : bool
    ignore_index : int, optional
    from_logits : bool
    weight : array_like of shape (C,), optional
        Per-class weights of the mean over the classes that count:
        ``sum_c w_c l_c / sum_c w_c`` (not in smp).
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> x = np.array([[[[2.0, -1.0]], [[0.5, 1.0]], [[-1.0, 0.0]]]])   # (N=1, C=3, 1, 2)
    >>> y = np.array([[[0, 1]]])
    >>> round(fl.lovasz_softmax_loss(x, y), 6)
    0.274581
    """
    return run_lovasz("lovasz_softmax_loss", input, target, softmax=True, per_image=per_image,
                      ignore_index=ignore_index, classes=classes, from_logits=from_logits, weight=weight,
                      reduction=reduction, return_grad=return_grad, out=out, n_threads=n_threads, check=check)


for _f in (dice_loss, jaccard_loss, tversky_loss, bce_dice_loss, ce_dice_loss, lovasz_hinge_loss,
           lovasz_softmax_loss):
    _f._grad_args = ("input",)
    _f._class_axis = None  # reduction="none" values index the leading (image) axis of the gradient
# Why an adapter that splits the input into chunks (fastloss.dask) cannot
# give these losses exactly: see docs/conventions.md.
for _f in (lovasz_hinge_loss, lovasz_softmax_loss):
    _f._unsplittable = ("its gradient sorts the errors of each set (the whole batch, or each image with "
                        "per_image=True) and the driver sorts a whole set at once")
    # with per_image=True every set is one image: split along the images (fastloss.dask)
    _f._chunk_path = "sets"
    _f._split_when = {"per_image": True}
# The others split along the images: each chunk's first pass hands out its
# groups' sums, the value and the gradient's coefficients come from the whole
# batch's sums, then a second pass per chunk (_overlap_api.SetsPlan).
for _f in (dice_loss, jaccard_loss, tversky_loss, bce_dice_loss, ce_dice_loss):
    _f._chunk_path = "sets"


# ------------------------------------------------------------------ classes

class _SegLoss(_OverlapLoss):
    _grad_args = ("input",)
    _class_axis = None
    _fn = None
    _names: tuple = ()

    def __init__(self, *args, weight=None, reduction="mean", n_threads=None, **kw):
        super().__init__(reduction, n_threads)
        import inspect

        sig = inspect.signature(type(self)._fn)
        names = [p.name for p in list(sig.parameters.values())[2:] if p.kind is p.POSITIONAL_OR_KEYWORD]
        bound = dict(zip(names, args))
        for k, v in kw.items():
            if k not in names:
                raise TypeError(f"{type(self).__name__}: unexpected argument {k!r}")
            bound[k] = v
        self._opts = {n: bound.get(n, sig.parameters[n].default) for n in names}
        self.weight = weight
        _check_opts(self._opts, type(self).__name__)
        for k, v in self._opts.items():
            setattr(self, k, v)

    def _run(self, input, target, weight, return_grad, out, check=False):
        w = self.weight if weight is None else weight
        kw = {"weight": w} if "weight" in _kwonly(type(self)._fn) else {}
        return type(self)._fn(input, target, **self._opts, **kw, reduction=self.reduction,
                              return_grad=return_grad, out=out, n_threads=self.n_threads, check=check)

    def _repr_args(self):
        return list(self._opts.items()) + [("reduction", self.reduction)]


def _check_opts(opts, op):
    """The constructor's options, checked as a call would check them."""
    from ._overlap_api import check_ignore

    checks = {
        "mode": lambda v: check_mode(v, op, ("binary", "multilabel") if "bce_weight" in opts else
                                     ("binary", "multiclass", "multilabel")),
        "smooth": lambda v: V.nonneg(v, "smooth", op), "eps": lambda v: V.positive(v, "eps", op),
        "alpha": lambda v: V.nonneg(v, "alpha", op), "beta": lambda v: V.nonneg(v, "beta", op),
        "gamma": lambda v: V.positive(v, "gamma", op), "ignore_index": lambda v: check_ignore(v, op),
        "bce_weight": lambda v: V.nonneg(v, "bce_weight", op), "ce_weight": lambda v: V.nonneg(v, "ce_weight", op),
        "dice_weight": lambda v: V.nonneg(v, "dice_weight", op),
    }
    for k in ("log_loss", "from_logits", "per_image"):
        checks[k] = (lambda name: lambda v: V.boolean(v, name, op))(k)
    for k, v in opts.items():
        if k in checks:
            checks[k](v)


@functools.lru_cache(maxsize=None)
def _kwonly(fn):
    """The keyword-only parameters of fn (cached: inspect.signature cost ~100 us on every call of a class)."""
    import inspect

    return tuple(p.name for p in inspect.signature(fn).parameters.values() if p.kind is p.KEYWORD_ONLY)


def _init_signature(fn, has_weight):
    """``(self, <fn's parameters after input, target>, [weight=None,] reduction="mean", *, n_threads=None)``."""
    import inspect

    P = inspect.Parameter
    sig = inspect.signature(fn)
    params = [P("self", P.POSITIONAL_OR_KEYWORD)]
    params += [p for p in list(sig.parameters.values())[2:] if p.kind is P.POSITIONAL_OR_KEYWORD]
    if has_weight:
        params.append(P("weight", P.POSITIONAL_OR_KEYWORD, default=None))
    params += [P("reduction", P.POSITIONAL_OR_KEYWORD, default="mean"), P("n_threads", P.KEYWORD_ONLY, default=None)]
    return inspect.Signature(params)


def _with_init(cls, fn, has_weight):
    sig = _init_signature(fn, has_weight)

    def __init__(self, *args, **kw):
        try:
            bound = sig.bind(self, *args, **kw)
        except TypeError as exc:
            raise TypeError(f"{cls.__name__}: {exc}") from None
        opts = dict(bound.arguments)
        del opts["self"]
        _SegLoss.__init__(self, **opts)

    __init__.__signature__ = sig
    __init__.__doc__ = f"Options as :func:`{fn.__name__}`."
    cls.__init__ = __init__
    return cls


def _seg_class(name, fn, doc):
    def __call__(self, input, target, weight=None, *, check=False):
        """The loss value: a float, or an array for reduction="none".
        ``check=True`` runs :func:`fastloss.diagnose`'s checks first."""
        return self._run(input, target, weight, False, None, check)

    def value_and_grad(self, input, target, weight=None, out=None, *, check=False):
        """``(value, grad)`` in one call; ``out`` is an optional gradient buffer."""
        return self._run(input, target, weight, True, out, check)

    return _with_init(type(name, (_SegLoss,), {"_fn": staticmethod(fn), "__call__": __call__,
                                               "value_and_grad": value_and_grad, "__doc__": doc,
                                               "__module__": __name__}), fn, True)


def _cdoc(fn, extra=""):
    return (f"The object form of :func:`{fn.__name__}`: the constructor takes its parameters "
            f"(positionally in the same order, or by name){extra}, then ``reduction`` and keyword-only "
            f"``n_threads``.\n\n    ``loss(input, target)`` gives the value, ``loss.value_and_grad(input, "
            f"target, out=None)`` the value and gradient.\n\n"
            f"    Examples\n    --------\n    >>> import numpy as np, fastloss as fl\n"
            f"    >>> x = np.array([[[2.0, -1.0], [0.5, -3.0]]]); t = np.array([[[1.0, 0.0], [1.0, 0.0]]])\n"
            f"    >>> loss = fl.{_CLASS_NAMES[fn.__name__]}()\n"
            f"    >>> value, grad = loss.value_and_grad(x, t)\n"
            f"    >>> grad.shape\n    (1, 2, 2)\n")


_CLASS_NAMES = {"dice_loss": "DiceLoss", "jaccard_loss": "JaccardLoss", "tversky_loss": "TverskyLoss",
                "bce_dice_loss": "BCEDiceLoss", "ce_dice_loss": "CEDiceLoss",
                "lovasz_hinge_loss": "LovaszHingeLoss", "lovasz_softmax_loss": "LovaszSoftmaxLoss"}
_W = ", ``weight`` (per-class weights, replaced by a call's ``weight=``)"

DiceLoss = _seg_class("DiceLoss", dice_loss, _cdoc(dice_loss, _W))
JaccardLoss = _seg_class("JaccardLoss", jaccard_loss, _cdoc(jaccard_loss, _W))
TverskyLoss = _seg_class("TverskyLoss", tversky_loss, _cdoc(tversky_loss, _W))
BCEDiceLoss = _seg_class("BCEDiceLoss", bce_dice_loss, _cdoc(bce_dice_loss, _W))
CEDiceLoss = _seg_class("CEDiceLoss", ce_dice_loss, _cdoc(ce_dice_loss, _W).replace(
    "x = np.array([[[2.0, -1.0], [0.5, -3.0]]]); t = np.array([[[1.0, 0.0], [1.0, 0.0]]])",
    "x = np.zeros((1, 3, 2, 2)); t = np.array([[[0, 1], [2, 1]]])").replace("(1, 2, 2)", "(1, 3, 2, 2)"))
LovaszHingeLoss = _seg_class("LovaszHingeLoss", lovasz_hinge_loss, _cdoc(lovasz_hinge_loss))
LovaszSoftmaxLoss = _seg_class("LovaszSoftmaxLoss", lovasz_softmax_loss, _cdoc(lovasz_softmax_loss, _W).replace(
    "x = np.array([[[2.0, -1.0], [0.5, -3.0]]]); t = np.array([[[1.0, 0.0], [1.0, 0.0]]])",
    "x = np.zeros((1, 3, 2, 2)); t = np.array([[[0, 1], [2, 1]]])").replace("(1, 2, 2)", "(1, 3, 2, 2)"))


# ------------------------------------------------------------------ examples
# Valid calls of every loss, from which the fuzz harness derives its hostile
# variants (fastloss._examples; docs/reliability.md).

def _declare_examples():
    import numpy as np

    from . import _examples as E

    def red(rng):
        return ("mean", "sum", "none")[int(rng.integers(0, 3))]

    def spatial(rng, size):
        N = max(1, size // 4) if size else 0
        return (N,) + tuple(int(rng.integers(1, 5)) for _ in range(int(rng.integers(1, 3))))

    def make(rng, dtype, size, mode):
        sp = spatial(rng, size)
        C = int(rng.integers(2, 6))
        if mode == "binary":
            x = E.values(rng, "normal", sp, dtype)
            return {"input": x, "target": E.values(rng, "binary", sp, dtype)}, {}
        shape = sp[:1] + (C,) + sp[1:]
        x = E.values(rng, "normal", shape, dtype)
        if mode == "multilabel":
            return {"input": x, "target": E.values(rng, "binary", shape, dtype)}, {}
        return {"input": x, "target": rng.integers(0, C, sp).astype(np.int64)}, {"target": C}

    def overlap(extra=None, modes=("binary", "multiclass", "multilabel")):
        def gen(rng, dtype, size):
            mode = modes[int(rng.integers(0, len(modes)))]
            args, lab = make(rng, dtype, size, mode)
            args.update(mode=mode, reduction=red(rng), per_image=bool(rng.random() < 0.3))
            if rng.random() < 0.3:
                args["smooth"] = float(rng.uniform(0, 1))
            if extra:
                extra(rng, args)
            return E.Example(args, lab)
        return gen

    def tv(rng, args):
        args.update(alpha=float(rng.uniform(0, 1)), beta=float(rng.uniform(0, 1)), gamma=float(rng.uniform(0.5, 2)))

    def multiclass_only(fn_extra=None):
        def gen(rng, dtype, size):
            args, lab = make(rng, dtype, size, "multiclass")
            args.update(reduction=red(rng), per_image=bool(rng.random() < 0.3))
            return E.Example(args, lab)
        return gen

    def gen_bce_dice(rng, dtype, size):
        ex = overlap(modes=("binary", "multilabel"))(rng, dtype, size)
        ex.args.update(bce_weight=float(rng.uniform(0, 2)), dice_weight=float(rng.uniform(0, 2)))
        return ex

    def gen_ce_dice(rng, dtype, size):
        ex = multiclass_only()(rng, dtype, size)
        ex.args.update(ce_weight=float(rng.uniform(0, 2)), dice_weight=float(rng.uniform(0, 2)))
        return ex

    def gen_lovasz_hinge(rng, dtype, size):
        args, lab = make(rng, dtype, size, "binary")
        args.update(reduction=red(rng), per_image=bool(rng.random() < 0.3))
        return E.Example(args, lab)

    E.declare(overlap(), dice_loss, DiceLoss)
    E.declare(overlap(), jaccard_loss, JaccardLoss)
    E.declare(overlap(tv), tversky_loss, TverskyLoss)
    E.declare(gen_bce_dice, bce_dice_loss, BCEDiceLoss)
    E.declare(gen_ce_dice, ce_dice_loss, CEDiceLoss)
    E.declare(gen_lovasz_hinge, lovasz_hinge_loss, LovaszHingeLoss)
    E.declare(multiclass_only(), lovasz_softmax_loss, LovaszSoftmaxLoss)


_declare_examples()
