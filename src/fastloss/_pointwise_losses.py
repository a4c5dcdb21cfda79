"""Pointwise losses: regression and binary classification.

Each loss is a function named as in ``torch.nn.functional`` and a class
named as in ``torch.nn``; both run the same fused kernel (value, gradient
and diagonal Hessian in one pass).  See ``fastloss._pointwise_api`` for the
shared call path and ``src/fastloss/_src/fl_pointwise_math.h`` for each
loss's scalar math.
"""
from __future__ import annotations

import numpy as np

from . import _validate as V
from ._alloc import empty
from ._pointwise_api import (
    GRAD,
    GRAD_HESS,
    VALUE,
    _NO_PARAMS,
    _pair,
    _PointwiseLoss,
    _wrt,
    grad_request,
    run,
    spec,
)

__all__ = [
    "mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "log_cosh_loss",
    "quantile_loss", "poisson_nll_loss", "gaussian_nll_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "sigmoid_focal_loss", "hinge_loss", "squared_hinge_loss", "soft_margin_loss", "kl_div",
    "MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss", "LogCoshLoss", "QuantileLoss",
    "PoissonNLLLoss", "GaussianNLLLoss", "BCELoss", "BCEWithLogitsLoss",
    "SigmoidFocalLoss", "HingeLoss", "SquaredHingeLoss", "SoftMarginLoss", "KLDivLoss",
]

_COMMON = """weight : array_like, optional
        Per-element weights, broadcast to input's shape (one copy if their
        shape differs).  The loss of element i is multiplied by weight[i];
        %(wmean)s
    reduction : {"mean", "sum", "none"}
        "mean" (the default) divides the sum by the number of elements (NaN
        for an empty input, as PyTorch); "none" returns the per-element losses.
    size_average, reduce : bool, optional
        PyTorch's deprecated arguments, where PyTorch has them: given, they
        set reduction as PyTorch does, with PyTorch's warning.
    return_grad : bool or tuple of str
        True: also return the gradient with respect to input (and var for
        gaussian_nll_loss), in the same pass.  A tuple of operand names,
        e.g. ``("input", "target")``, returns those gradients in that order;
        "target" is available where PyTorch differentiates the target.
    out : ndarray or tuple of ndarray, optional
        Buffer for the gradient (input's shape and dtype, C-contiguous,
        aligned, writeable, not overlapping the inputs), or one buffer (or
        None) per gradient returned.  A value outside the loss's domain (a
        probability outside [0, 1], a target other than -1/1, a negative
        var) is found in the kernel's own pass: after that ValueError the
        contents of out are unspecified.
    n_threads : int, optional
        Threads for this call (default :func:`fastloss.get_num_threads`;
        at most ``max(64, 4 x os.cpu_count())``).
    check : bool
        Run :func:`fastloss.diagnose`'s checks on input and target first and warn each
        finding as a :class:`fastloss.LossWarning` (one summary pass over
        each; the default False costs one test).

    Returns
    -------
    value : float, or ndarray of input's shape for reduction="none"
    grad : ndarray of input's shape and dtype, with return_grad=True
        The gradient of the returned value: the reduction's 1/n and the
        weights are in it; for reduction="none" it is that of the sum.

    Notes
    -----
    input fixes the dtype: float32 and float64 are kept (float32 in, float32
    out), float16 becomes float32, integers and bools become float64;
    target and weight are converted to input's dtype.  target must have
    exactly input's shape.  Non-contiguous arrays are copied once.
    Sums are accumulated in float64, block by block in a fixed order, so
    the value is bit-identical for any thread count."""


_NMEAN = """with reduction="mean" the sum is divided by the number of
        elements, as PyTorch's huber_loss and binary cross-entropies do."""
_WMEAN = dict.fromkeys(("mse_loss", "l1_loss"), """with reduction="mean" the weighted sum
        is divided by the summed weights, as PyTorch 2.13's does (NaN if
        they sum to 0).""")


def _doc(fn):
    fn.__doc__ = fn.__doc__.replace("%(common)s", _COMMON).replace("%(wmean)s", _WMEAN.get(fn.__name__, _NMEAN))
    return fn


def _req(fn, return_grad):
    """(mode, gradient names) of a function's return_grad argument."""
    if return_grad is False:
        return VALUE, ()
    if return_grad is True and fn._grad_args == ("input",):
        return GRAD, ("input",)
    return grad_request(return_grad, fn.__name__, fn._grad_args, fn._optional_grad_args)


def _first_bad(mask, shape, name, arr):
    idx = V.first_index(mask, shape)
    return f"{V.fmt_index(name, idx)} = {arr.reshape(shape)[idx] if idx else arr.reshape(())[()]}"


def _bad_probability(x, y, e):
    m = ((x < 0) | (x > 1)).ravel()
    raise ValueError(
        "binary_cross_entropy: all elements of input should be between 0 and 1, got "
        + _first_bad(m, x.shape, "input", x)
    )


def _bad_sign(op):
    def on_bad(x, y, e):
        m = ((y == y) & (y != 1) & (y != -1)).ravel()
        raise ValueError(f"{op}: target must contain only -1 and 1, got " + _first_bad(m, y.shape, "target", y))
    return on_bad


def _bad_var(x, y, e):
    m = (e < 0).ravel()
    raise ValueError("gaussian_nll_loss: var has negative entries, got " + _first_bad(m, e.shape, "var", e))


_MSE = spec("mse_loss", "mse", wmean=True)
_L1 = spec("l1_loss", "l1", wmean=True)
_HUBER = spec("huber_loss", "huber")
_SMOOTH_L1 = spec("smooth_l1_loss", "smooth_l1")
_LOG_COSH = spec("log_cosh_loss", "log_cosh")
_QUANTILE = spec("quantile_loss", "quantile")
_POISSON_LOG = spec("poisson_nll_loss", "poisson_log")
_POISSON = spec("poisson_nll_loss", "poisson")
_POISSON_LOG_FULL = spec("poisson_nll_loss", "poisson_log_full")
_POISSON_FULL = spec("poisson_nll_loss", "poisson_full")
_GAUSSIAN = spec("gaussian_nll_loss", "gaussian_nll", _bad_var, "var")
_BCE = spec("binary_cross_entropy", "bce", _bad_probability)
_BCE_LOGITS = spec("binary_cross_entropy_with_logits", "bce_logits", None, "pos_weight")
_FOCAL = spec("sigmoid_focal_loss", "sigmoid_focal")
_FOCAL_G2 = spec("sigmoid_focal_loss", "sigmoid_focal_g2")  # gamma == 2: no exp/log for the power
_HINGE = spec("hinge_loss", "hinge", _bad_sign("hinge_loss"))
_SQ_HINGE = spec("squared_hinge_loss", "squared_hinge", _bad_sign("squared_hinge_loss"))
_SOFT_MARGIN = spec("soft_margin_loss", "soft_margin")
_KL = spec("kl_div", "kl_div", batchmean=True)
_KL_LOG = spec("kl_div", "kl_div_log", batchmean=True)


# ------------------------------------------------------------------ params

def _p_huber(delta, op):
    return (V.positive(delta, "delta", op), 0.0, 0.0, 0, 0)


def _p_smooth_l1(beta, op):
    return (V.nonneg(beta, "beta", op), 0.0, 0.0, 0, 0)


def _p_quantile(quantile, op):
    q = V.real(quantile, "quantile", op)
    if not 0 < q < 1:
        raise ValueError(f"{op}: quantile must be in the open interval (0, 1), got {quantile!r}")
    return (q, 0.0, 0.0, 0, 0)


def _p_poisson(log_input, full, eps, op):
    log_input = V.boolean(log_input, "log_input", op)
    full = V.boolean(full, "full", op)
    sp = (_POISSON_LOG_FULL if full else _POISSON_LOG) if log_input else (_POISSON_FULL if full else _POISSON)
    return sp, (V.positive(eps, "eps", op), 0.0, 0.0, 0, int(full))


def _p_gaussian(full, eps, op):
    return (V.positive(eps, "eps", op), 0.0, 0.0, int(V.boolean(full, "full", op)), 0)


def _p_focal(alpha, gamma, op):
    a = V.real(alpha, "alpha", op)
    if a > 1:
        raise ValueError(f"{op}: alpha must be in [0, 1], or negative to disable it, got {alpha!r}")
    return (a, V.nonneg(gamma, "gamma", op), 0.0, 0, 0)


# ------------------------------------------------------------------ regression

@_doc
def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None, *, return_grad=False,
             out=None, n_threads=None, check=False):
    """Mean squared error, as ``torch.nn.functional.mse_loss``.

    ``l_i = (input_i - target_i)^2``; gradient ``2 (input_i - target_i)``;
    Hessian 2.

    Parameters
    ----------
    input, target : array_like, same shape
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> x = np.array([0.0, 2.0, -1.0]); y = np.array([0.5, 0.0, -1.0])
    >>> fl.mse_loss(x, y)
    1.4166666666666667
    >>> value, grad = fl.mse_loss(x, y, return_grad=True)
    >>> grad
    array([-0.33333333,  1.33333333,  0.        ])
    """
    if size_average is not None or reduce is not None:
        reduction = V.legacy_reduction(size_average, reduce, reduction, "mse_loss")
    mode, grads = _req(mse_loss, return_grad)
    return run(_MSE, input, target, weight, reduction, mode, _NO_PARAMS, n_threads, out=out, grads=grads, check=check)


@_doc
def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None, *, return_grad=False,
            out=None, n_threads=None, check=False):
    """Mean absolute error, as ``torch.nn.functional.l1_loss``.

    ``l_i = |input_i - target_i|``; gradient ``sign(input_i - target_i)``
    with ``sign(0) = 0`` as PyTorch.  The second derivative is 0 wherever
    it exists, and ``grad_hess`` returns 0 everywhere (gradient-boosting
    users usually substitute a constant Hessian, as LightGBM does).

    Parameters
    ----------
    input, target : array_like, same shape
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> fl.l1_loss(np.array([0.0, 2.0, -1.0]), np.array([0.5, 0.0, -1.0]))
    0.8333333333333334
    """
    if size_average is not None or reduce is not None:
        reduction = V.legacy_reduction(size_average, reduce, reduction, "l1_loss")
    mode, grads = _req(l1_loss, return_grad)
    return run(_L1, input, target, weight, reduction, mode, _NO_PARAMS, n_threads, out=out, grads=grads, check=check)


@_doc
def huber_loss(input, target, reduction="mean", delta=1.0, weight=None, *, return_grad=False, out=None,
               n_threads=None, check=False):
    """Huber loss, as ``torch.nn.functional.huber_loss``.

    With ``d = input - target``: ``0.5 d^2`` where ``|d| <= delta``, else
    ``delta (|d| - 0.5 delta)``.  Gradient ``clip(d, -delta, delta)``;
    Hessian 1 inside ``|d| <= delta`` and 0 outside.

    Parameters
    ----------
    input, target : array_like, same shape
    delta : float > 0
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> fl.huber_loss(np.array([0.0, 3.0]), np.array([0.5, 0.0]), delta=1.0)
    1.3125
    """
    mode, grads = _req(huber_loss, return_grad)
    p = _p_huber(delta, "huber_loss")
    return run(_HUBER, input, target, weight, reduction, mode, p, n_threads, out=out, grads=grads, check=check)


@_doc
def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0, *, weight=None,
                   return_grad=False, out=None, n_threads=None, check=False):
    """Smooth L1 loss, as ``torch.nn.functional.smooth_l1_loss``.

    With ``d = input - target``: ``0.5 d^2 / beta`` where ``|d| < beta``,
    else ``|d| - 0.5 beta``; ``beta = 0`` is the L1 loss.  Hessian
    ``1/beta`` inside, 0 outside.

    Parameters
    ----------
    input, target : array_like, same shape
    beta : float >= 0
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> fl.smooth_l1_loss(np.array([0.0, 3.0]), np.array([0.5, 0.0]), beta=1.0)
    1.3125
    """
    if size_average is not None or reduce is not None:
        reduction = V.legacy_reduction(size_average, reduce, reduction, "smooth_l1_loss")
    mode, grads = _req(smooth_l1_loss, return_grad)
    p = _p_smooth_l1(beta, "smooth_l1_loss")
    return run(_SMOOTH_L1, input, target, weight, reduction, mode, p, n_threads, out=out, grads=grads, check=check)


@_doc
def log_cosh_loss(input, target, *, weight=None, reduction="mean", return_grad=False, out=None,
                  n_threads=None, check=False):
    """Log-cosh loss ``log(cosh(input - target))`` (Keras's ``log_cosh``;
    PyTorch has none).

    Gradient ``tanh(d)``, Hessian ``1 / cosh(d)^2``.  Computed without
    cancellation for small ``d`` (a series below ``|d| = 0.5``) and without
    overflow for large ``d``.

    Parameters
    ----------
    input, target : array_like, same shape
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> round(fl.log_cosh_loss(np.array([0.0, 2.0]), np.array([0.0, 0.0]), reduction="sum"), 12)
    1.325002747358
    """
    mode, grads = _req(log_cosh_loss, return_grad)
    return run(_LOG_COSH, input, target, weight, reduction, mode, _NO_PARAMS, n_threads, out=out, grads=grads,
               check=check)


@_doc
def quantile_loss(input, target, quantile=0.5, *, weight=None, reduction="mean", return_grad=False, out=None,
                  n_threads=None, check=False):
    """Pinball (quantile) loss, as scikit-learn's ``mean_pinball_loss``.

    With ``r = target - input``: ``quantile * r`` for ``r >= 0`` and
    ``(quantile - 1) * r`` otherwise.  The gradient with respect to input is
    ``-quantile`` for ``r >= 0`` (scikit-learn's choice at ``r = 0``) and
    ``1 - quantile`` otherwise.  The second derivative is 0 wherever it
    exists, and ``grad_hess`` returns 0 everywhere.

    Parameters
    ----------
    input, target : array_like, same shape
    quantile : float in (0, 1)
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> fl.quantile_loss(np.array([1.0, 3.0]), np.array([2.0, 2.0]), quantile=0.9)
    0.5
    """
    mode, grads = _req(quantile_loss, return_grad)
    p = _p_quantile(quantile, "quantile_loss")
    return run(_QUANTILE, input, target, weight, reduction, mode, p, n_threads, out=out, grads=grads, check=check)


@_doc
def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                     reduction="mean", *, weight=None, return_grad=False, out=None, n_threads=None, check=False):
    """Poisson negative log-likelihood, as ``torch.nn.functional.poisson_nll_loss``.

    ``log_input=True``: ``exp(input) - target * input``;
    ``log_input=False``: ``input - target * log(input + eps)``.
    ``full=True`` adds Stirling's term ``t log t - t + 0.5 log(2 pi t)``
    for targets ``t > 1``.

    Parameters
    ----------
    input, target : array_like, same shape
    log_input, full : bool
    eps : float > 0
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> round(fl.poisson_nll_loss(np.array([0.0, 1.0]), np.array([1.0, 2.0])), 12)
    0.85914091423
    """
    if size_average is not None or reduce is not None:
        reduction = V.legacy_reduction(size_average, reduce, reduction, "poisson_nll_loss")
    mode, grads = _req(poisson_nll_loss, return_grad)
    sp, p = _p_poisson(log_input, full, eps, "poisson_nll_loss")
    return run(sp, input, target, weight, reduction, mode, p, n_threads, out=out, grads=grads, check=check)


def _gaussian_var(var, x, op):
    """var as an array of input's shape, and how to sum its gradient back."""
    v = V.asarray(var, "var", op)
    V._float_dtype(v.dtype, "var", op)
    vshape = v.shape
    if v.shape == x.shape:
        return V.as_operand(v, "var", op, x.dtype, x.shape), vshape, None
    if x.ndim >= 1 and v.ndim == x.ndim - 1 and v.shape == x.shape[:-1]:
        v = v[..., None]  # PyTorch: var with one dimension fewer is unsqueezed
    try:
        full = V.contiguous(np.broadcast_to(v, x.shape), x.dtype)
    except ValueError:
        raise ValueError(f"{op}: var of shape {vshape} cannot be broadcast to the input's shape {x.shape}") from None
    return full, vshape, v.shape


def _sum_to(g, bshape, vshape):
    """Sum a gradient of the broadcast var back to var's own shape."""
    if bshape is None:
        return g
    lead = g.ndim - len(bshape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(bshape) if s == 1 and g.shape[i + lead] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(vshape) if axes else g.reshape(vshape)


def _gaussian_run(input, target, var, full, eps, weight, reduction, mode, n_threads, out=None,
                  hess_out=None, loss_out=None, op="gaussian_nll_loss", grads=("input", "var"), check=False):
    p = _p_gaussian(full, eps, op)
    x = V.as_input(input, "input", op)
    e, vshape, bshape = _gaussian_var(var, x, op)
    tshape = np.shape(target)
    if tshape != x.shape:  # a target that broadcasts to the input, as PyTorch's (N, 1) (one copy)
        target = V.as_broadcast(target, "target", op, x.dtype, x.shape)
    if mode == GRAD and bshape is not None and "var" in grads and isinstance(out, tuple) and len(out) == len(grads) \
            and out[grads.index("var")] is not None:
        raise ValueError(f"{op}: an out= buffer for var's gradient needs var of input's shape {x.shape}, "
                         f"got var of shape {vshape}")
    res = run(_GAUSSIAN, x, target, weight, reduction, mode, p, n_threads, out=out, hess_out=hess_out,
              loss_out=loss_out, extra=e, extra_period=x.size, grads=grads, check=check)
    if mode == GRAD and "var" in grads:
        k = 1 + grads.index("var")
        res = res[:k] + (_sum_to(res[k], bshape, vshape),) + res[k + 1:]
    if mode == GRAD and "target" in grads and tshape != x.shape:
        k = 1 + grads.index("target")
        res = res[:k] + (_sum_to(res[k], tshape, tshape),) + res[k + 1:]
    return res


@_doc
def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean", *, weight=None,
                      return_grad=False, out=None, n_threads=None, check=False):
    """Gaussian negative log-likelihood, as ``torch.nn.functional.gaussian_nll_loss``.

    ``0.5 (log(v) + (input - target)^2 / v)`` with ``v = max(var, eps)``,
    plus ``0.5 log(2 pi)`` if ``full``.  As in PyTorch the clamp is not
    differentiated: the gradient with respect to var is taken at the
    clamped value.  A negative var is an error.

    Parameters
    ----------
    input : array_like
    target : array_like
        Same shape as input, or broadcastable to it (e.g. ``(N, 1)``, as
        PyTorch allows; one copy).
    var : array_like
        Same shape as input, one dimension fewer (PyTorch's convention for a
        variance per sample), or broadcastable to input (one copy).
    full : bool
    eps : float > 0
    %(common)s
    grad_var : ndarray of var's shape, with return_grad=True
        Returned third: ``(value, grad_input, grad_var)``.

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> round(fl.gaussian_nll_loss(np.array([1.0, 2.0]), np.array([1.0, 0.0]), np.array([1.0, 4.0])), 12)
    0.59657359028
    """
    mode, grads = _req(gaussian_nll_loss, return_grad)
    return _gaussian_run(input, target, var, full, eps, weight, reduction, mode, n_threads,
                         out=out, grads=grads, check=check)


# The arguments that the gradients returned by return_grad=True and
# value_and_grad belong to, in order (adapters such as fastloss.torch read
# this; the default is ("input",)).
gaussian_nll_loss._grad_args = ("input", "var")
# var may hold one value per row: the input's shape without its last axis
# (PyTorch's rule); adapters that split the input along axis 0 split it too
gaussian_nll_loss._per_item_args = {"var": -1}


# ------------------------------------------------------------------ binary

@_doc
def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean", *,
                         return_grad=False, out=None, n_threads=None, check=False):
    """Binary cross-entropy on probabilities, as ``torch.nn.functional.binary_cross_entropy``.

    ``-(t log(p) + (1 - t) log(1 - p))`` with each log clamped at -100, as
    PyTorch.  An input outside [0, 1] is a ValueError.  The gradient is the
    exact derivative of that value (a clamped log contributes 0); PyTorch's
    backward clamps ``p (1 - p)`` at 1e-12 instead, so the two differ only
    where ``p`` or ``1 - p`` is below 1e-12.  The target's gradient
    (``return_grad=("input", "target")``) is ``log(1 - p) - log(p)`` of the
    same clamped logs (PyTorch's is ``-logit(p)``, unclamped: they differ
    only where a log is below -100).  Prefer
    :func:`binary_cross_entropy_with_logits` for numerical stability.

    Parameters
    ----------
    input : array_like of probabilities in [0, 1]
    target : array_like, same shape
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> round(fl.binary_cross_entropy(np.array([0.9, 0.2]), np.array([1.0, 0.0])), 12)
    0.164252033486
    """
    if size_average is not None or reduce is not None:
        reduction = V.legacy_reduction(size_average, reduce, reduction, "binary_cross_entropy")
    mode, grads = _req(binary_cross_entropy, return_grad)
    return run(_BCE, input, target, weight, reduction, mode, _NO_PARAMS, n_threads, out=out, grads=grads, check=check)


def _pos_weight(pos_weight, x, op):
    """pos_weight as a periodic operand over the last axis: (array, period)."""
    pw = V.asarray(pos_weight, "pos_weight", op)
    V._float_dtype(pw.dtype, "pos_weight", op)
    c = x.shape[-1] if x.ndim else 1
    if x.size == 0:  # nothing to read; keep the period positive
        return np.ones(1, x.dtype), 1
    if pw.ndim <= 1 and pw.size in (1, c):
        pw = V.contiguous(pw.reshape(-1), x.dtype)
        p = pw.size
        if p < 256:  # tile a short period so the kernel's runs stay long (a copy of < 512 values)
            pw = np.tile(pw, -(-256 // p))
        return pw, pw.size
    try:
        full = V.contiguous(np.broadcast_to(pw, x.shape), x.dtype)
    except ValueError:
        raise ValueError(f"{op}: pos_weight of shape {pw.shape} cannot be broadcast to the input's shape "
                         f"{x.shape}; it is usually of shape (C,) for C = input.shape[-1] = {c}") from None
    return full, max(full.size, 1)


def _bce_logits_run(input, target, weight, pos_weight, reduction, mode, n_threads, out=None, hess_out=None,
                    loss_out=None, op="binary_cross_entropy_with_logits", grads=("input",), check=False):
    if pos_weight is None:
        return run(_BCE_LOGITS, input, target, weight, reduction, mode, _NO_PARAMS, n_threads, out=out,
                   hess_out=hess_out, loss_out=loss_out, grads=grads, check=check)
    x = V.as_input(input, "input", op)
    pw, period = _pos_weight(pos_weight, x, op)
    return run(_BCE_LOGITS, x, target, weight, reduction, mode, _NO_PARAMS, n_threads, out=out,
               hess_out=hess_out, loss_out=loss_out, extra=pw, extra_period=period, grads=grads, check=check)


@_doc
def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None, *, return_grad=False, out=None, n_threads=None, check=False):
    """Binary cross-entropy on logits, as ``torch.nn.functional.binary_cross_entropy_with_logits``.

    ``p_c t softplus(-x) + (1 - t) softplus(x)`` for logit x, target t and
    positive-class weight ``p_c`` (1 without pos_weight).  Each softplus is
    computed without cancellation, so logits of +-1e4 and +-inf give finite,
    correct values and gradients.  Gradient ``(1 - t) s - p_c t (1 - s)``
    with ``s = sigmoid(x)``; Hessian ``(p_c t + 1 - t) s (1 - s)``.

    Parameters
    ----------
    input : array_like of logits
    target : array_like, same shape (0/1 labels or probabilities)
    pos_weight : array_like, optional
        Weight of the positive class per entry of the last axis (shape
        ``(C,)`` for ``C = input.shape[-1]``, or one value), read in place
        without broadcasting; any other broadcastable shape is copied once.
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> round(fl.binary_cross_entropy_with_logits(np.array([2.0, -1.0]), np.array([1.0, 0.0])), 12)
    0.220094849281
    """
    if size_average is not None or reduce is not None:
        reduction = V.legacy_reduction(size_average, reduce, reduction, "binary_cross_entropy_with_logits")
    mode, grads = _req(binary_cross_entropy_with_logits, return_grad)
    return _bce_logits_run(input, target, weight, pos_weight, reduction, mode, n_threads, out=out, grads=grads,
                           check=check)


@_doc
def sigmoid_focal_loss(input, target, alpha=0.25, gamma=2.0, *, weight=None, reduction="mean",
                       return_grad=False, out=None, n_threads=None, check=False):
    """Sigmoid focal loss (Lin et al. 2017), as ``torchvision.ops.sigmoid_focal_loss``.

    ``a_t (1 - p_t)^gamma ce`` with ``ce`` the BCE with logits,
    ``p = sigmoid(input)``, ``p_t = p t + (1 - p)(1 - t)`` and
    ``a_t = alpha t + (1 - alpha)(1 - t)`` (``a_t = 1`` when alpha < 0, as
    torchvision).  The gradient and Hessian are closed forms that stay
    finite for every gamma >= 0, including gamma < 1 where the textbook
    derivative divides by zero.  Note: torchvision's function defaults to
    reduction="none"; fastloss defaults to "mean" like every other loss.

    Parameters
    ----------
    input : array_like of logits
    target : array_like, same shape (0/1 labels or probabilities)
    alpha : float <= 1 (negative: no alpha weighting)
    gamma : float >= 0
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> round(fl.sigmoid_focal_loss(np.array([2.0, -1.0]), np.array([1.0, 0.0])), 12)
    0.00872221692
    """
    mode, grads = _req(sigmoid_focal_loss, return_grad)
    p = _p_focal(alpha, gamma, "sigmoid_focal_loss")
    return run(_FOCAL_G2 if p[1] == 2.0 else _FOCAL, input, target, weight, reduction, mode, p,
               n_threads, out=out, grads=grads, check=check)


@_doc
def hinge_loss(input, target, *, weight=None, reduction="mean", return_grad=False, out=None, n_threads=None,
               check=False):
    """Hinge loss ``max(0, 1 - target * input)`` for targets in {-1, 1}
    (scikit-learn's ``hinge_loss``; PyTorch has none for scores).

    The gradient is ``-target`` where the margin ``1 - t x > 0`` and 0
    elsewhere (at the kink, 0).  The second derivative is 0 wherever it
    exists and ``grad_hess`` returns 0.  A target other than -1 or 1 is a
    ValueError.

    Parameters
    ----------
    input : array_like of scores
    target : array_like of -1 and 1, same shape
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> fl.hinge_loss(np.array([0.5, -2.0]), np.array([1.0, 1.0]))
    1.75
    """
    mode, grads = _req(hinge_loss, return_grad)
    return run(_HINGE, input, target, weight, reduction, mode, _NO_PARAMS, n_threads, out=out, grads=grads, check=check)


@_doc
def squared_hinge_loss(input, target, *, weight=None, reduction="mean", return_grad=False, out=None,
                       n_threads=None, check=False):
    """Squared hinge loss ``max(0, 1 - target * input)^2`` for targets in
    {-1, 1} (Keras's ``squared_hinge``).

    Gradient ``-2 t max(0, 1 - t x)``; Hessian 2 where the margin is
    positive, 0 elsewhere.  A target other than -1 or 1 is a ValueError.

    Parameters
    ----------
    input : array_like of scores
    target : array_like of -1 and 1, same shape
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> fl.squared_hinge_loss(np.array([0.5, -2.0]), np.array([1.0, 1.0]))
    4.625
    """
    mode, grads = _req(squared_hinge_loss, return_grad)
    return run(_SQ_HINGE, input, target, weight, reduction, mode, _NO_PARAMS, n_threads, out=out, grads=grads,
               check=check)


@_doc
def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean", *, weight=None,
                     return_grad=False, out=None, n_threads=None, check=False):
    """Soft margin loss ``log(1 + exp(-target * input))``, as
    ``torch.nn.functional.soft_margin_loss`` (targets usually -1 and 1).

    Gradient ``-t sigmoid(-t x)``; Hessian ``t^2 s (1 - s)``.  Stable for
    any magnitude of ``t x``.

    Parameters
    ----------
    input, target : array_like, same shape
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> round(fl.soft_margin_loss(np.array([0.5, -2.0]), np.array([1.0, 1.0])), 12)
    1.300502497612
    """
    if size_average is not None or reduce is not None:
        reduction = V.legacy_reduction(size_average, reduce, reduction, "soft_margin_loss")
    mode, grads = _req(soft_margin_loss, return_grad)
    return run(_SOFT_MARGIN, input, target, weight, reduction, mode, _NO_PARAMS, n_threads,
               out=out, grads=grads, check=check)


# ------------------------------------------------------------------ distributions

@_doc
def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False, *, weight=None,
           return_grad=False, out=None, n_threads=None, check=False):
    """Kullback-Leibler divergence, as ``torch.nn.functional.kl_div``.

    ``input`` holds log-probabilities ``log q``; ``target`` holds
    probabilities ``p`` (or ``log p`` with ``log_target=True``).  Pointwise
    ``p (log p - input)`` with ``0 log 0 = 0``; gradient ``-p``; Hessian 0
    (the loss is linear in input).  ``reduction="batchmean"`` divides the
    sum by ``input.shape[0]`` and is the true KL divergence per sample;
    "mean" divides by the number of elements, as PyTorch does (PyTorch warns
    that this is not the KL divergence).  The target's gradient
    (``return_grad=("input", "target")``) is ``log t + 1 - input``
    (``exp(t) (t - input + 1)`` with log_target); at ``t = 0`` it is -inf,
    the limit from above, where PyTorch's autograd gives NaN.

    Parameters
    ----------
    input : array_like of log-probabilities
    target : array_like, same shape
    log_target : bool
    %(common)s
    Also accepts reduction="batchmean".

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> p = np.array([[0.5, 0.5]]); q = np.array([[0.25, 0.75]])
    >>> round(fl.kl_div(np.log(q), p, reduction="batchmean"), 12)
    0.143841036226
    """
    if size_average is not None or reduce is not None:
        reduction = V.legacy_reduction(size_average, reduce, reduction, "kl_div")
    mode, grads = _req(kl_div, return_grad)
    sp = _KL_LOG if V.boolean(log_target, "log_target", "kl_div") else _KL
    return run(sp, input, target, weight, reduction, mode, _NO_PARAMS, n_threads, out=out, grads=grads, check=check)


# ------------------------------------------------------------------ classes

def _class_doc(fn_name, extra=""):
    return f"""The object form of :func:`fastloss.{fn_name}`, named as in ``torch.nn``.

    ``loss(input, target, weight=None)`` gives the value;
    ``loss.value_and_grad(input, target, weight=None, out=None, loss_out=None)``
    the value and gradient in one pass; ``loss.grad_hess(input, target,
    weight=None, out=None)`` the gradient and diagonal Hessian.  See
    :func:`fastloss.{fn_name}` for the formula, shapes and dtypes.{extra}
    """


class MSELoss(_PointwiseLoss):
    __doc__ = _class_doc("mse_loss", """

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> loss = fl.MSELoss(reduction="sum")
    >>> grad, hess = loss.grad_hess(np.array([1.0, 2.0]), np.array([0.0, 0.0]))
    >>> grad, hess
    (array([2., 4.]), array([2., 2.]))
    """)
    _spec = _MSE

    def __init__(self, size_average=None, reduce=None, reduction="mean", *, n_threads=None):
        super().__init__(V.legacy_reduction(size_average, reduce, reduction, "MSELoss"), n_threads=n_threads)


class L1Loss(_PointwiseLoss):
    __doc__ = _class_doc("l1_loss", """

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> fl.L1Loss()(np.array([1.0, -2.0]), np.array([0.0, 0.0]))
    1.5
    """)
    _spec = _L1

    def __init__(self, size_average=None, reduce=None, reduction="mean", *, n_threads=None):
        super().__init__(V.legacy_reduction(size_average, reduce, reduction, "L1Loss"), n_threads=n_threads)


class HuberLoss(_PointwiseLoss):
    __doc__ = _class_doc("huber_loss", """

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> fl.HuberLoss("mean", 1.0)(np.array([0.0, 3.0]), np.array([0.5, 0.0]))   # torch.nn's order
    1.3125
    """)
    _spec = _HUBER

    def __init__(self, reduction="mean", delta=1.0, *, n_threads=None):
        super().__init__(reduction, n_threads=n_threads)
        self._params = _p_huber(delta, "HuberLoss")
        self.delta = delta

    def _repr_args(self):
        return [("reduction", self.reduction), ("delta", self.delta)]


class SmoothL1Loss(_PointwiseLoss):
    __doc__ = _class_doc("smooth_l1_loss", """

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> fl.SmoothL1Loss(beta=1.0)(np.array([0.0, 3.0]), np.array([0.5, 0.0]))
    1.3125
    """)
    _spec = _SMOOTH_L1

    def __init__(self, size_average=None, reduce=None, reduction="mean", beta=1.0, *, n_threads=None):
        super().__init__(V.legacy_reduction(size_average, reduce, reduction, "SmoothL1Loss"), n_threads=n_threads)
        self._params = _p_smooth_l1(beta, "SmoothL1Loss")
        self.beta = beta

    def _repr_args(self):
        return [("reduction", self.reduction), ("beta", self.beta)]


class LogCoshLoss(_PointwiseLoss):
    __doc__ = _class_doc("log_cosh_loss", """

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> round(fl.LogCoshLoss(reduction="sum")(np.array([0.0, 2.0]), np.array([0.0, 0.0])), 12)
    1.325002747358
    """)
    _spec = _LOG_COSH


class QuantileLoss(_PointwiseLoss):
    __doc__ = _class_doc("quantile_loss", """

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> fl.QuantileLoss(quantile=0.9)(np.array([1.0, 3.0]), np.array([2.0, 2.0]))
    0.5
    """)
    _spec = _QUANTILE

    def __init__(self, quantile=0.5, reduction="mean", *, n_threads=None):
        super().__init__(reduction, n_threads=n_threads)
        self._params = _p_quantile(quantile, "QuantileLoss")
        self.quantile = quantile

    def _repr_args(self):
        return [("quantile", self.quantile), ("reduction", self.reduction)]


class PoissonNLLLoss(_PointwiseLoss):
    _spec = _POISSON_LOG
    __doc__ = _class_doc("poisson_nll_loss", """

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> round(fl.PoissonNLLLoss()(np.array([0.0, 1.0]), np.array([1.0, 2.0])), 12)
    0.85914091423
    """)

    def __init__(self, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None, reduction="mean", *,
                 n_threads=None):
        super().__init__(V.legacy_reduction(size_average, reduce, reduction, "PoissonNLLLoss"), n_threads=n_threads)
        self._spec, self._params = _p_poisson(log_input, full, eps, "PoissonNLLLoss")
        self.log_input, self.full, self.eps = log_input, full, eps

    def _repr_args(self):
        return [("log_input", self.log_input), ("full", self.full), ("eps", self.eps),
                ("reduction", self.reduction)]


class GaussianNLLLoss(_PointwiseLoss):
    """The object form of :func:`fastloss.gaussian_nll_loss`, named as in ``torch.nn``.

    ``loss(input, target, var, weight=None)`` gives the value;
    ``loss.value_and_grad(input, target, var, ...)`` returns
    ``(value, grad_input, grad_var)``; ``loss.grad_hess(input, target, var)``
    the gradient and diagonal Hessian with respect to input.

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> loss = fl.GaussianNLLLoss()
    >>> value, g_in, g_var = loss.value_and_grad(np.array([1.0, 2.0]), np.array([1.0, 0.0]), np.array([1.0, 4.0]))
    >>> g_in, g_var
    (array([0.  , 0.25]), array([0.25, 0.  ]))
    """

    _spec = _GAUSSIAN
    _grad_args = ("input", "var")
    _per_item_args = {"var": -1}

    def __init__(self, *, full=False, eps=1e-6, reduction="mean", n_threads=None):
        super().__init__(reduction, n_threads=n_threads)
        _p_gaussian(full, eps, "GaussianNLLLoss")
        self.full, self.eps = full, eps

    def __call__(self, input, target, var, weight=None, *, check=False):
        return _gaussian_run(input, target, var, self.full, self.eps, weight, self.reduction, VALUE,
                             self.n_threads, op="GaussianNLLLoss", check=check)

    def value_and_grad(self, input, target, var, weight=None, out=None, loss_out=None, *, wrt=None, check=False):
        return _gaussian_run(input, target, var, self.full, self.eps, weight, self.reduction, GRAD,
                             self.n_threads, out=out, loss_out=loss_out, op="GaussianNLLLoss",
                             grads=self._grad_args if wrt is None else _wrt(self, wrt), check=check)

    def grad_hess(self, input, target, var, weight=None, out=None, *, check=False):
        g, h = (None, None) if out is None else _pair(out, "GaussianNLLLoss")
        return _gaussian_run(input, target, var, self.full, self.eps, weight, self.reduction, GRAD_HESS,
                             self.n_threads, out=g, hess_out=h, op="GaussianNLLLoss", check=check)

    def _repr_args(self):
        return [("full", self.full), ("eps", self.eps), ("reduction", self.reduction)]


class BCELoss(_PointwiseLoss):
    __doc__ = _class_doc("binary_cross_entropy", """
    ``weight`` given to the constructor is used when a call gives none.

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> round(fl.BCELoss()(np.array([0.9, 0.2]), np.array([1.0, 0.0])), 12)
    0.164252033486
    """)
    _spec = _BCE

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean", *, n_threads=None):
        super().__init__(V.legacy_reduction(size_average, reduce, reduction, "BCELoss"), n_threads=n_threads)
        self.weight = weight

    def __call__(self, input, target, weight=None, *, check=False):
        return super().__call__(input, target, self.weight if weight is None else weight, check=check)

    def value_and_grad(self, input, target, weight=None, out=None, loss_out=None, *, wrt=None, check=False):
        return super().value_and_grad(input, target, self.weight if weight is None else weight, out, loss_out,
                                      wrt=wrt, check=check)

    def grad_hess(self, input, target, weight=None, out=None, *, check=False):
        return super().grad_hess(input, target, self.weight if weight is None else weight, out, check=check)


class BCEWithLogitsLoss(_PointwiseLoss):
    __doc__ = _class_doc("binary_cross_entropy_with_logits", """
    ``weight`` given to the constructor is used when a call gives none;
    ``pos_weight`` is fixed at construction, as in ``torch.nn``.

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> loss = fl.BCEWithLogitsLoss(pos_weight=np.array([2.0, 1.0]))
    >>> round(loss(np.array([2.0, -1.0]), np.array([1.0, 0.0])), 12)
    0.283558854802
    """)
    _spec = _BCE_LOGITS

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean", pos_weight=None, *,
                 n_threads=None):
        super().__init__(V.legacy_reduction(size_average, reduce, reduction, "BCEWithLogitsLoss"),
                         n_threads=n_threads)
        self.weight, self.pos_weight = weight, pos_weight

    def __call__(self, input, target, weight=None, *, check=False):
        return _bce_logits_run(input, target, self.weight if weight is None else weight, self.pos_weight,
                               self.reduction, VALUE, self.n_threads, op="BCEWithLogitsLoss", check=check)

    def value_and_grad(self, input, target, weight=None, out=None, loss_out=None, *, wrt=None, check=False):
        return _bce_logits_run(input, target, self.weight if weight is None else weight, self.pos_weight,
                               self.reduction, GRAD, self.n_threads, out=out, loss_out=loss_out,
                               op="BCEWithLogitsLoss", grads=("input",) if wrt is None else _wrt(self, wrt),
                               check=check)

    def grad_hess(self, input, target, weight=None, out=None, *, check=False):
        g, h = (None, None) if out is None else _pair(out, "BCEWithLogitsLoss")
        return _bce_logits_run(input, target, self.weight if weight is None else weight, self.pos_weight,
                               self.reduction, GRAD_HESS, self.n_threads, out=g, hess_out=h,
                               op="BCEWithLogitsLoss", check=check)


class SigmoidFocalLoss(_PointwiseLoss):
    __doc__ = _class_doc("sigmoid_focal_loss", """

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> round(fl.SigmoidFocalLoss(alpha=0.25, gamma=2.0)(np.array([2.0, -1.0]), np.array([1.0, 0.0])), 12)
    0.00872221692
    """)
    _spec = _FOCAL

    def __init__(self, alpha=0.25, gamma=2.0, reduction="mean", *, n_threads=None):
        super().__init__(reduction, n_threads=n_threads)
        self._params = _p_focal(alpha, gamma, "SigmoidFocalLoss")
        self._spec = _FOCAL_G2 if self._params[1] == 2.0 else _FOCAL
        self.alpha, self.gamma = alpha, gamma

    def _repr_args(self):
        return [("alpha", self.alpha), ("gamma", self.gamma), ("reduction", self.reduction)]


class HingeLoss(_PointwiseLoss):
    __doc__ = _class_doc("hinge_loss", """

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> fl.HingeLoss()(np.array([0.5, -2.0]), np.array([1.0, 1.0]))
    1.75
    """)
    _spec = _HINGE


class SquaredHingeLoss(_PointwiseLoss):
    __doc__ = _class_doc("squared_hinge_loss", """

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> fl.SquaredHingeLoss()(np.array([0.5, -2.0]), np.array([1.0, 1.0]))
    4.625
    """)
    _spec = _SQ_HINGE


class SoftMarginLoss(_PointwiseLoss):
    __doc__ = _class_doc("soft_margin_loss", """

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> round(fl.SoftMarginLoss()(np.array([0.5, -2.0]), np.array([1.0, 1.0])), 12)
    1.300502497612
    """)
    _spec = _SOFT_MARGIN

    def __init__(self, size_average=None, reduce=None, reduction="mean", *, n_threads=None):
        super().__init__(V.legacy_reduction(size_average, reduce, reduction, "SoftMarginLoss"), n_threads=n_threads)


class KLDivLoss(_PointwiseLoss):
    __doc__ = _class_doc("kl_div", """

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> loss = fl.KLDivLoss(reduction="batchmean")
    >>> round(loss(np.log(np.array([[0.25, 0.75]])), np.array([[0.5, 0.5]])), 12)
    0.143841036226
    """)
    _spec = _KL

    def __init__(self, size_average=None, reduce=None, reduction="mean", log_target=False, *, n_threads=None):
        super().__init__(V.legacy_reduction(size_average, reduce, reduction, "KLDivLoss"), n_threads=n_threads)
        self.log_target = V.boolean(log_target, "log_target", "KLDivLoss")
        self._spec = _KL_LOG if self.log_target else _KL

    def _repr_args(self):
        return [("reduction", self.reduction), ("log_target", self.log_target)]


# ------------------------------------------------------------------ examples
# Valid calls of every loss, from which the fuzz harness derives its hostile
# variants (fastloss._examples; docs/reliability.md).

def _declare_examples():
    from . import _examples as E

    def r(lo, hi):
        return lambda rng: float(rng.uniform(lo, hi))

    def pick(*vals):
        return lambda rng: vals[int(rng.integers(0, len(vals)))]

    pw = E.pointwise
    for gen, fn, cls in [
        (pw(), mse_loss, MSELoss), (pw(), l1_loss, L1Loss), (pw(), log_cosh_loss, LogCoshLoss),
        (pw(delta=r(0.1, 3)), huber_loss, HuberLoss), (pw(beta=r(0, 2)), smooth_l1_loss, SmoothL1Loss),
        (pw(quantile=r(0.05, 0.95)), quantile_loss, QuantileLoss),
        (pw("prob", "unit"), binary_cross_entropy, BCELoss),
        (pw(target="unit", alpha=pick(0.25, -1.0, 0.8), gamma=pick(2.0, 0.0, 0.5, 3.0)), sigmoid_focal_loss,
         SigmoidFocalLoss),
        (pw(target="sign"), hinge_loss, HingeLoss), (pw(target="sign"), squared_hinge_loss, SquaredHingeLoss),
        (pw(target="sign"), soft_margin_loss, SoftMarginLoss),
    ]:
        E.declare(gen, fn, cls)

    def gen_poisson(rng, dtype, size):
        log_input = bool(rng.random() < 0.5)
        ex = pw("normal" if log_input else "positive", "count", log_input=log_input,
                full=bool(rng.random() < 0.5), eps=r(1e-8, 1e-2))(rng, dtype, size)
        return ex

    def gen_gaussian(rng, dtype, size):
        ex = pw(full=pick(False, True), eps=pick(1e-6, 1e-3))(rng, dtype, size)
        shape = ex.args["input"].shape
        vshape = shape[:-1] if shape and rng.random() < 0.3 else E.broadcast_shape(rng, shape)
        ex.args["var"] = E.values(rng, "positive", vshape, dtype)
        return ex

    def gen_bce_logits(rng, dtype, size):
        ex = pw(target="unit")(rng, dtype, size)
        shape = ex.args["input"].shape
        if rng.random() < 0.5:
            ex.args["pos_weight"] = E.values(rng, "positive", shape[-1:] if shape else (), dtype)
        return ex

    def gen_kl(rng, dtype, size):
        log_target = bool(rng.random() < 0.5)
        return pw("logprob", "logprob" if log_target else "unit", ("mean", "sum", "none", "batchmean"),
                  log_target=log_target)(rng, dtype, size)

    E.declare(gen_poisson, poisson_nll_loss, PoissonNLLLoss)
    E.declare(gen_gaussian, gaussian_nll_loss, GaussianNLLLoss)
    E.declare(gen_bce_logits, binary_cross_entropy_with_logits, BCEWithLogitsLoss)
    E.declare(gen_kl, kl_div, KLDivLoss)


_declare_examples()
# Gradients computed only when asked for (return_grad=("input", "target"),
# value_and_grad(..., wrt=...)): the target's, where the kernel has it
# (the losses PyTorch differentiates with respect to target, and the
# symmetric log_cosh and quantile losses).  Adapters read both attributes.
_TARGET_GRAD = {"mse_loss": _MSE, "l1_loss": _L1, "huber_loss": _HUBER, "smooth_l1_loss": _SMOOTH_L1,
                "log_cosh_loss": _LOG_COSH, "quantile_loss": _QUANTILE, "poisson_nll_loss": _POISSON,
                "gaussian_nll_loss": _GAUSSIAN, "binary_cross_entropy": _BCE,
                "binary_cross_entropy_with_logits": _BCE_LOGITS, "kl_div": _KL}
for _name in __all__:
    _obj = globals()[_name]
    _obj._grad_args = getattr(_obj, "_grad_args", ("input",))
    _obj._optional_grad_args = ()
for _fn_name, _sp in _TARGET_GRAD.items():
    assert _sp.target_grad, _fn_name
    globals()[_fn_name]._optional_grad_args = ("target",)
for _cls, _fn_name in ((MSELoss, "mse_loss"), (L1Loss, "l1_loss"), (HuberLoss, "huber_loss"),
                       (SmoothL1Loss, "smooth_l1_loss"), (LogCoshLoss, "log_cosh_loss"),
                       (QuantileLoss, "quantile_loss"), (PoissonNLLLoss, "poisson_nll_loss"),
                       (GaussianNLLLoss, "gaussian_nll_loss"), (BCELoss, "binary_cross_entropy"),
                       (BCEWithLogitsLoss, "binary_cross_entropy_with_logits"), (KLDivLoss, "kl_div")):
    _cls._optional_grad_args = ("target",)
del _name, _obj, _fn_name, _sp, _cls
