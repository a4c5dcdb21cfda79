"""Textbook NumPy float64 versions of the pointwise losses (the test oracle).

Written from the definitions alone; nothing here is imported from the
kernels or from fastloss's wrappers.  For each loss ``NAME``:

* ``NAME(input, target, <params>, weight=None, reduction="mean")`` returns
  ``(value, grad)``: the value (a float for "mean"/"sum", an array of
  input's shape for "none") and its gradient with respect to input (of the
  sum for "none"), weights and the mean's divisor included (the number of
  elements; for mse_loss and l1_loss with weights, the summed weights, as
  PyTorch 2.13; for kl_div's "batchmean", the batch size).
  ``gaussian_nll_loss`` returns ``(value, grad_input, grad_var)``, with
  ``grad_var`` summed back to var's shape.
* ``NAME_hess(...)`` (same arguments) returns the diagonal Hessian with
  respect to input, scaled like the gradient.

Sums are exactly rounded (``math.fsum``).  ``POINTWISE`` maps each name to
its two functions and its default parameters.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = [
    "mse_loss", "mse_loss_hess",
    "l1_loss", "l1_loss_hess",
    "huber_loss", "huber_loss_hess",
    "smooth_l1_loss", "smooth_l1_loss_hess",
    "log_cosh_loss", "log_cosh_loss_hess",
    "quantile_loss", "quantile_loss_hess",
    "poisson_nll_loss", "poisson_nll_loss_hess",
    "gaussian_nll_loss", "gaussian_nll_loss_hess",
    "binary_cross_entropy", "binary_cross_entropy_hess",
    "binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits_hess",
    "sigmoid_focal_loss", "sigmoid_focal_loss_hess",
    "hinge_loss", "hinge_loss_hess",
    "squared_hinge_loss", "squared_hinge_loss_hess",
    "soft_margin_loss", "soft_margin_loss_hess",
    "kl_div", "kl_div_hess",
    "RefLoss", "POINTWISE",
]

_LOG_2PI = math.log(2.0 * math.pi)
_LN2 = math.log(2.0)


# ------------------------------------------------------------------ helpers

def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _sigmoid(z):
    """1 / (1 + exp(-z)) without overflow; exact 0 and 1 at -inf and +inf."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softplus(z):
    """log(1 + exp(z))."""
    return np.logaddexp(0.0, z)


def _times(c, v):
    """c * v, with 0 * inf taken as 0 (a term whose coefficient is zero)."""
    return np.where(c == 0, 0.0, c * v)


def _sign(d):
    return np.sign(d)  # sign(0) = 0


def _fsum(a):
    a = np.ravel(a)
    try:
        return math.fsum(a)
    except (OverflowError, ValueError):  # inf - inf, or an intermediate overflow
        return float(np.sum(a))


def _reduce(shape, l, g, h, weight, reduction, gv=None, wmean=False):
    """Apply weights and the reduction to per-element (loss, grad, hess[, grad_var]).

    The mean divides by the number of elements, or by the summed weights
    when ``wmean`` and weights are given; "batchmean" by shape[0]."""
    if reduction not in ("mean", "sum", "none", "batchmean"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    w = np.ones(shape) if weight is None else np.broadcast_to(_f64(weight), shape)
    n = int(np.prod(shape))
    if reduction == "batchmean":
        reduction, n = "mean", (shape[0] if shape else 1)
    elif wmean and weight is not None and reduction == "mean":
        n = _fsum(w)
    wl = w * l
    if reduction == "none":
        value, scale = wl.reshape(shape), 1.0
    elif reduction == "sum":
        value, scale = _fsum(wl), 1.0
    else:
        value, scale = (_fsum(wl) / n if n else float("nan")), (1.0 / n if n else 1.0)
    grad = (w * g * scale).reshape(shape)
    hess = (w * h * scale).reshape(shape)
    gvar = None if gv is None else (w * gv * scale).reshape(shape)
    return value, grad, hess, gvar


def _run(elem, input, target, weight, reduction, *params, wmean=False):
    x, t = _f64(input), _f64(target)
    if x.shape != t.shape:
        raise ValueError(f"target must have input's shape, got input: {x.shape} and target: {t.shape}")
    with np.errstate(all="ignore"):
        l, g, h = elem(x, t, *params)
        return _reduce(x.shape, l, g, h, weight, reduction, wmean=wmean)[:3]


# ------------------------------------------------------------------ per-element math
# each returns (loss, d loss / d x, d2 loss / d x2), unweighted

def _mse(x, t):
    d = x - t
    return d * d, 2.0 * d, np.full_like(d, 2.0)


def _l1(x, t):
    d = x - t
    return np.abs(d), _sign(d), np.zeros_like(d)


def _huber(x, t, delta):
    d = x - t
    a = np.abs(d)
    inside = a <= delta
    l = np.where(inside, 0.5 * d * d, delta * (a - 0.5 * delta))
    g = np.where(inside, d, delta * _sign(d))
    return l, g, np.where(inside, 1.0, 0.0)


def _smooth_l1(x, t, beta):
    d = x - t
    a = np.abs(d)
    if beta == 0:
        return _l1(x, t)
    inside = a < beta
    l = np.where(inside, 0.5 * d * d / beta, a - 0.5 * beta)
    g = np.where(inside, d / beta, _sign(d))
    return l, g, np.where(inside, 1.0 / beta, 0.0)


def _log_cosh(x, t):
    d = x - t
    a = np.abs(d)
    e = np.exp(-2.0 * a)
    # log cosh d = log1p(2 sinh(d/2)^2) (no cancellation for small d)
    #            = |d| - log 2 + log1p(exp(-2|d|)) (no overflow for large d)
    small = np.log1p(2.0 * np.sinh(0.5 * d) ** 2)
    large = a - _LN2 + np.log1p(e)
    l = np.where(a < 1.0, small, large)
    h = 4.0 * e / (1.0 + e) ** 2  # 1 / cosh(d)^2
    return l, np.tanh(d), h


def _quantile(x, t, q):
    r = t - x
    pos = r >= 0
    l = np.where(pos, q * r, (q - 1.0) * r)
    g = np.where(pos, -q, 1.0 - q)
    return l, g, np.zeros_like(r)


def _stirling(t):
    """t log t - t + 0.5 log(2 pi t) where t > 1, else 0 (torch's full=True term)."""
    big = t > 1
    ts = np.where(big, t, 2.0)
    return np.where(big, ts * np.log(ts) - ts + 0.5 * np.log(2.0 * math.pi * ts), 0.0)


def _poisson(x, t, log_input, full, eps):
    if log_input:
        ex = np.exp(x)
        l, g, h = ex - t * x, ex - t, ex
    else:
        xe = x + eps
        l = x - t * np.log(xe)
        g = 1.0 - t / xe
        h = t / (xe * xe)
    if full:
        l = l + _stirling(t)
    return l, g, h


def _bce(x, t):
    logx = np.log(x)
    log1mx = np.log1p(-x)
    lx = np.maximum(logx, -100.0)
    l1x = np.maximum(log1mx, -100.0)
    l = -(_times(t, lx) + _times(1.0 - t, l1x))
    live_x = logx > -100.0     # a clamped log is constant: it has no derivative
    live_1x = log1mx > -100.0
    g = np.where(live_x, -_times(t, 1.0 / x), 0.0) + np.where(live_1x, _times(1.0 - t, 1.0 / (1.0 - x)), 0.0)
    h = np.where(live_x, _times(t, 1.0 / (x * x)), 0.0) + np.where(
        live_1x, _times(1.0 - t, 1.0 / ((1.0 - x) * (1.0 - x))), 0.0)
    return l, g, h


def _bce_logits(x, t, pw):
    p, q = _sigmoid(x), _sigmoid(-x)          # q = 1 - p, without cancellation
    a = pw * t                                  # weight of the positive term
    l = _times(a, _softplus(-x)) + _times(1.0 - t, _softplus(x))
    g = (1.0 - t) * p - a * q
    h = (a + 1.0 - t) * p * q
    return l, g, h


def _focal(x, t, alpha, gamma):
    """torchvision's sigmoid_focal_loss: at * ce * m**gamma, m = 1 - p_t.

    With p = sigmoid(x), q = 1 - p, s = p q = p':
      ce = t softplus(-x) + (1 - t) softplus(x),  ce' = p - t,  ce'' = s
      m  = p (1 - t) + q t,                       m'  = (1 - 2t) s,  m'' = (1 - 2t) s (q - p)
      M  = m**gamma
      M' = gamma m**(gamma-1) m'              = gamma M r (1 - 2t),  r = s / m
      M''= gamma (gamma-1) m**(gamma-2) m'^2 + gamma m**(gamma-1) m''
         = gamma (gamma-1) M r^2 (1-2t)^2 + gamma M r (1-2t)(q-p)
      L  = at ce M,  L' = at (ce' M + ce M'),  L'' = at (ce'' M + 2 ce' M' + ce M'')
    Writing m**(gamma-k) s**k as M r**k keeps every term finite for gamma < 2.
    """
    p, q = _sigmoid(x), _sigmoid(-x)
    s = p * q
    ce = _times(t, _softplus(-x)) + _times(1.0 - t, _softplus(x))
    m = p * (1.0 - t) + q * t
    M = m ** gamma
    r = np.where(m > 0, s / np.where(m > 0, m, 1.0), 0.0)
    u = 1.0 - 2.0 * t
    Mp = gamma * M * r * u
    Mpp = gamma * (gamma - 1.0) * M * r * r * u * u + gamma * M * r * u * (q - p)
    at = alpha * t + (1.0 - alpha) * (1.0 - t) if alpha >= 0 else np.ones_like(t)
    l = at * _times(M, ce)
    g = at * ((p - t) * M + _times(Mp, ce))
    h = at * (s * M + 2.0 * (p - t) * Mp + _times(Mpp, ce))
    return l, g, h


def _check_sign(t, op):
    bad = (t == t) & (t != 1) & (t != -1)
    if np.any(bad):
        raise ValueError(f"{op}: target must contain only -1 and 1")


def _hinge(x, t):
    _check_sign(t, "hinge_loss")
    margin = 1.0 - t * x
    pos = margin > 0
    return np.maximum(margin, 0.0), np.where(pos, -t, 0.0), np.zeros_like(margin)


def _squared_hinge(x, t):
    _check_sign(t, "squared_hinge_loss")
    margin = 1.0 - t * x
    pos = margin > 0
    mp = np.maximum(margin, 0.0)
    return mp * mp, -2.0 * t * mp, np.where(pos, 2.0, 0.0)


def _soft_margin(x, t):
    z = -t * x
    sz, snz = _sigmoid(z), _sigmoid(-z)
    return _softplus(z), -t * sz, t * t * sz * snz


# ------------------------------------------------------------------ public functions

def mse_loss(input, target, weight=None, reduction="mean"):
    """Squared error (x - t)^2."""
    return _run(_mse, input, target, weight, reduction, wmean=True)[:2]


def mse_loss_hess(input, target, weight=None, reduction="mean"):
    return _run(_mse, input, target, weight, reduction, wmean=True)[2]


def l1_loss(input, target, weight=None, reduction="mean"):
    """Absolute error |x - t|; gradient sign(x - t) with sign(0) = 0."""
    return _run(_l1, input, target, weight, reduction, wmean=True)[:2]


def l1_loss_hess(input, target, weight=None, reduction="mean"):
    return _run(_l1, input, target, weight, reduction, wmean=True)[2]


def huber_loss(input, target, delta=1.0, weight=None, reduction="mean"):
    """0.5 d^2 for |d| <= delta, else delta (|d| - 0.5 delta)."""
    return _run(_huber, input, target, weight, reduction, float(delta))[:2]


def huber_loss_hess(input, target, delta=1.0, weight=None, reduction="mean"):
    return _run(_huber, input, target, weight, reduction, float(delta))[2]


def smooth_l1_loss(input, target, beta=1.0, weight=None, reduction="mean"):
    """0.5 d^2 / beta for |d| < beta, else |d| - 0.5 beta; beta = 0 is L1."""
    return _run(_smooth_l1, input, target, weight, reduction, float(beta))[:2]


def smooth_l1_loss_hess(input, target, beta=1.0, weight=None, reduction="mean"):
    return _run(_smooth_l1, input, target, weight, reduction, float(beta))[2]


def log_cosh_loss(input, target, weight=None, reduction="mean"):
    """log(cosh(x - t))."""
    return _run(_log_cosh, input, target, weight, reduction)[:2]


def log_cosh_loss_hess(input, target, weight=None, reduction="mean"):
    return _run(_log_cosh, input, target, weight, reduction)[2]


def quantile_loss(input, target, quantile=0.5, weight=None, reduction="mean"):
    """Pinball loss of r = t - x: q r for r >= 0, (q - 1) r otherwise."""
    return _run(_quantile, input, target, weight, reduction, float(quantile))[:2]


def quantile_loss_hess(input, target, quantile=0.5, weight=None, reduction="mean"):
    return _run(_quantile, input, target, weight, reduction, float(quantile))[2]


def poisson_nll_loss(input, target, log_input=True, full=False, eps=1e-8, weight=None, reduction="mean"):
    """exp(x) - t x (log_input) or x - t log(x + eps); full adds Stirling's term for t > 1."""
    return _run(_poisson, input, target, weight, reduction, bool(log_input), bool(full), float(eps))[:2]


def poisson_nll_loss_hess(input, target, log_input=True, full=False, eps=1e-8, weight=None, reduction="mean"):
    return _run(_poisson, input, target, weight, reduction, bool(log_input), bool(full), float(eps))[2]


def _gaussian(input, target, var, full, eps, weight, reduction):
    x, t, v0 = _f64(input), _f64(target), _f64(var)
    if x.shape != t.shape:
        raise ValueError(f"target must have input's shape, got input: {x.shape} and target: {t.shape}")
    if np.any(v0 < 0):
        raise ValueError("gaussian_nll_loss: var has negative entries")
    vb = v0
    if v0.shape != x.shape and x.ndim >= 1 and v0.shape == x.shape[:-1]:
        vb = v0[..., None]  # torch: a var with one dimension fewer is unsqueezed at the end
    vfull = np.broadcast_to(vb, x.shape)
    with np.errstate(all="ignore"):
        v = np.maximum(vfull, eps)
        d = x - t
        l = 0.5 * (np.log(v) + d * d / v)
        if full:
            l = l + 0.5 * _LOG_2PI
        gv = 0.5 * (1.0 / v - d * d / (v * v))  # at the clamped v; the clamp is not differentiated
        value, g, h, gvar = _reduce(x.shape, l, d / v, 1.0 / v, weight, reduction, gv)
    # sum the gradient of the broadcast var back to vb's shape, then to var's
    lead = x.ndim - vb.ndim
    gvar = gvar.sum(axis=tuple(range(lead))) if lead else gvar
    axes = tuple(i for i in range(vb.ndim) if vb.shape[i] == 1 and x.shape[lead + i] != 1)
    if axes:
        gvar = gvar.sum(axis=axes, keepdims=True)
    return value, g, h, gvar.reshape(v0.shape)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, weight=None, reduction="mean"):
    """0.5 (log v + (x - t)^2 / v) (+ 0.5 log 2 pi), v = max(var, eps).

    Returns ``(value, grad_input, grad_var)``."""
    value, g, _, gvar = _gaussian(input, target, var, full, eps, weight, reduction)
    return value, g, gvar


def gaussian_nll_loss_hess(input, target, var, full=False, eps=1e-6, weight=None, reduction="mean"):
    return _gaussian(input, target, var, full, eps, weight, reduction)[2]


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """-(t log x + (1 - t) log(1 - x)), each log clamped at >= -100 (torch)."""
    if np.any((_f64(input) < 0) | (_f64(input) > 1)):
        raise ValueError("binary_cross_entropy: all elements of input should be between 0 and 1")
    return _run(_bce, input, target, weight, reduction)[:2]


def binary_cross_entropy_hess(input, target, weight=None, reduction="mean"):
    return _run(_bce, input, target, weight, reduction)[2]


def _pos_weight(pos_weight, input):
    shape = np.shape(input)
    if pos_weight is None:
        return np.ones(shape)
    pw = _f64(pos_weight)
    extra = pw.ndim - len(shape)
    if extra > 0 and all(s == 1 for s in pw.shape[:extra]):
        pw = pw.reshape(pw.shape[extra:])  # e.g. shape (1,) against a 0-d input
    return np.broadcast_to(pw, shape)


def binary_cross_entropy_with_logits(input, target, pos_weight=None, weight=None, reduction="mean"):
    """pw t softplus(-x) + (1 - t) softplus(x); pos_weight broadcasts against input (last axis)."""
    pw = _pos_weight(pos_weight, input)
    return _run(_bce_logits, input, target, weight, reduction, pw)[:2]


def binary_cross_entropy_with_logits_hess(input, target, pos_weight=None, weight=None, reduction="mean"):
    pw = _pos_weight(pos_weight, input)
    return _run(_bce_logits, input, target, weight, reduction, pw)[2]


def sigmoid_focal_loss(input, target, alpha=0.25, gamma=2.0, weight=None, reduction="mean"):
    """torchvision's focal loss: at (1 - p_t)^gamma ce (at = 1 for alpha < 0)."""
    return _run(_focal, input, target, weight, reduction, float(alpha), float(gamma))[:2]


def sigmoid_focal_loss_hess(input, target, alpha=0.25, gamma=2.0, weight=None, reduction="mean"):
    return _run(_focal, input, target, weight, reduction, float(alpha), float(gamma))[2]


def hinge_loss(input, target, weight=None, reduction="mean"):
    """max(0, 1 - t x) for t in {-1, 1}; gradient -t where 1 - t x > 0, else 0."""
    return _run(_hinge, input, target, weight, reduction)[:2]


def hinge_loss_hess(input, target, weight=None, reduction="mean"):
    return _run(_hinge, input, target, weight, reduction)[2]


def squared_hinge_loss(input, target, weight=None, reduction="mean"):
    """max(0, 1 - t x)^2 for t in {-1, 1}."""
    return _run(_squared_hinge, input, target, weight, reduction)[:2]


def squared_hinge_loss_hess(input, target, weight=None, reduction="mean"):
    return _run(_squared_hinge, input, target, weight, reduction)[2]


def soft_margin_loss(input, target, weight=None, reduction="mean"):
    """log(1 + exp(-t x))."""
    return _run(_soft_margin, input, target, weight, reduction)[:2]


def soft_margin_loss_hess(input, target, weight=None, reduction="mean"):
    return _run(_soft_margin, input, target, weight, reduction)[2]


# ------------------------------------------------------------------ table

def _kl(x, t, log_target):
    if log_target:
        p = np.exp(t)
        return p * (t - x), -p, np.zeros_like(x)
    return np.where(t == 0, 0.0, t * np.log(np.where(t > 0, t, 1.0))) - t * x, -t, np.zeros_like(x)


def kl_div(input, target, log_target=False, weight=None, reduction="mean"):
    """KL divergence with input = log q: t (log t - x) (0 log 0 = 0), or
    exp(t) (t - x) with log_target; "batchmean" divides by input.shape[0]."""
    return _run(_kl, input, target, weight, reduction, bool(log_target))[:2]


def kl_div_hess(input, target, log_target=False, weight=None, reduction="mean"):
    return _run(_kl, input, target, weight, reduction, bool(log_target))[2]


class RefLoss(NamedTuple):
    """A loss of the table: value-and-grad function, Hessian function, default parameters."""
    name: str
    fn: object
    hess: object
    params: dict


POINTWISE = {
    name: RefLoss(name, globals()[name], globals()[name + "_hess"], params)
    for name, params in [
        ("mse_loss", {}),
        ("l1_loss", {}),
        ("huber_loss", {"delta": 1.0}),
        ("smooth_l1_loss", {"beta": 1.0}),
        ("log_cosh_loss", {}),
        ("quantile_loss", {"quantile": 0.5}),
        ("poisson_nll_loss", {"log_input": True, "full": False, "eps": 1e-8}),
        ("gaussian_nll_loss", {"full": False, "eps": 1e-6}),
        ("binary_cross_entropy", {}),
        ("binary_cross_entropy_with_logits", {"pos_weight": None}),
        ("sigmoid_focal_loss", {"alpha": 0.25, "gamma": 2.0}),
        ("hinge_loss", {}),
        ("squared_hinge_loss", {}),
        ("soft_margin_loss", {}),
        ("kl_div", {"log_target": False}),
    ]
}
