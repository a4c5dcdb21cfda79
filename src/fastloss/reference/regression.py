"""Textbook NumPy float64 versions of the regression catalogue (the test
oracle of ``fastloss._regression_losses`` and ``fastloss.Trimmed``).

Written from the definitions (scikit-learn's HalfGammaLoss and
HalfTweedieLoss, XGBoost's reg:pseudohubererror, LightGBM's fair, scipy's
least_squares Cauchy loss, Tukey's biweight, Newey and Powell's expectile,
Keras's MAPE and MSLE); nothing is imported from the kernels or from
fastloss's wrappers.  For each loss ``NAME``:

* ``NAME(input, target, <params>, weight=None, reduction="mean")`` returns
  ``(value, grad)``, the gradient with respect to input (of the sum for
  "none"), weights and the mean's ``1/n`` included;
* ``NAME_hess(...)`` the diagonal Hessian, scaled like the gradient.

``trimmed(name, input, target, trim, tails, weight, reduction, **params)``
is the trimmed reduction of any loss of this module or of
``reference.pointwise``, ranked by ``np.argsort(kind="stable")``.
``REGRESSION`` maps each name to its functions and default parameters.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = [
    "gamma_nll_loss", "gamma_nll_loss_hess",
    "tweedie_loss", "tweedie_loss_hess",
    "pseudo_huber_loss", "pseudo_huber_loss_hess",
    "fair_loss", "fair_loss_hess",
    "cauchy_loss", "cauchy_loss_hess",
    "tukey_biweight_loss", "tukey_biweight_loss_hess",
    "expectile_loss", "expectile_loss_hess",
    "mean_absolute_percentage_error", "mean_absolute_percentage_error_hess",
    "mean_squared_logarithmic_error", "mean_squared_logarithmic_error_hess",
    "trimmed", "trimmed_hess", "winsorized", "winsorized_hess", "REGRESSION",
]

KERAS_EPSILON = 1e-7


# ------------------------------------------------------------------ helpers

def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _fsum(a):
    a = np.ravel(a)
    try:
        return math.fsum(a)
    except (OverflowError, ValueError):  # inf - inf, or an intermediate overflow
        return float(np.sum(a))


def _reduce(shape, l, g, h, weight, reduction):
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    w = np.ones(shape) if weight is None else np.broadcast_to(_f64(weight), shape)
    n = int(np.prod(shape))
    wl = w * l
    if reduction == "none":
        value, scale = wl.reshape(shape), 1.0
    elif reduction == "sum":
        value, scale = _fsum(wl), 1.0
    else:
        value, scale = (_fsum(wl) / n if n else float("nan")), (1.0 / n if n else 1.0)
    return value, (w * g * scale).reshape(shape), (w * h * scale).reshape(shape)


def _run(elem, input, target, weight, reduction, *params):
    x, t = _f64(input), _f64(target)
    if x.shape != t.shape:
        raise ValueError(f"target must have input's shape, got input: {x.shape} and target: {t.shape}")
    with np.errstate(all="ignore"):
        l, g, h = elem(x, t, *params)
        return _reduce(x.shape, l, g, h, weight, reduction)


# ------------------------------------------------------------------ per-element math
# each returns (loss, d loss / d x, d2 loss / d x2), unweighted

def _gamma(x, t):
    if np.any(t <= 0):
        raise ValueError("gamma_nll_loss: target must be > 0")
    r = t * np.exp(-x)            # y / mu
    return x + r, 1.0 - r, r


def _tweedie(x, t, p):
    if 0 < p < 1:
        raise ValueError("tweedie_loss: power must be <= 0 or >= 1")
    if (p >= 1 and np.any(t < 0)) or (p >= 2 and np.any(t <= 0)):
        raise ValueError("tweedie_loss: target outside the power's domain")
    mu = np.exp(x)
    if p == 0:   # half squared error of the mean
        return 0.5 * (mu - t) ** 2, mu * (mu - t), mu * (2.0 * mu - t)
    if p == 1:   # Poisson
        return mu - t * x, mu - t, mu
    if p == 2:
        return _gamma(x, t)
    a, b = 1.0 - p, 2.0 - p
    ea, eb = np.exp(a * x), np.exp(b * x)     # mu^(1-p), mu^(2-p)
    return eb / b - t * ea / a, eb - t * ea, b * eb - a * t * ea


def _pseudo_huber(x, t, delta):
    z = x - t
    s = np.hypot(1.0, z / delta)              # sqrt(1 + (z/delta)^2) without overflow
    # delta^2 (s - 1) = z^2 / (s + 1), without cancellation for small z
    return z * z / (s + 1.0), z / s, 1.0 / s ** 3


def _fair(x, t, c):
    z = x - t
    a = np.abs(z) / c
    return c * c * (a - np.log1p(a)), z / (1.0 + a), 1.0 / (1.0 + a) ** 2


def _cauchy(x, t, c):
    z = x - t
    s = (z / c) ** 2
    return 0.5 * c * c * np.log1p(s), z / (1.0 + s), (1.0 - s) / (1.0 + s) ** 2


def _tukey(x, t, c):
    z = x - t
    inside = np.abs(z) <= c
    u = 1.0 - (z / c) ** 2
    l = np.where(inside, c * c / 6.0 * (1.0 - u ** 3), c * c / 6.0)
    return l, np.where(inside, z * u * u, 0.0), np.where(inside, u * (1.0 - 5.0 * (z / c) ** 2), 0.0)


def _expectile(x, t, tau):
    r = t - x
    w = np.where(r >= 0, tau, 1.0 - tau)
    return w * r * r, -2.0 * w * r, 2.0 * w


def _mape(x, t):
    m = np.maximum(np.abs(t), KERAS_EPSILON)
    return 100.0 * np.abs(t - x) / m, 100.0 * np.sign(x - t) / m, np.zeros_like(x)


def _msle(x, t):
    xm = np.maximum(x, KERAS_EPSILON)
    d = np.log1p(xm) - np.log1p(np.maximum(t, KERAS_EPSILON))
    live = x >= KERAS_EPSILON                 # where the clamp passes the gradient
    return d * d, np.where(live, 2.0 * d / (1.0 + xm), 0.0), np.where(live, 2.0 * (1.0 - d) / (1.0 + xm) ** 2, 0.0)


# ------------------------------------------------------------------ public

def gamma_nll_loss(input, target, weight=None, reduction="mean"):
    return _run(_gamma, input, target, weight, reduction)[:2]


def gamma_nll_loss_hess(input, target, weight=None, reduction="mean"):
    return _run(_gamma, input, target, weight, reduction)[2]


def tweedie_loss(input, target, power=1.5, weight=None, reduction="mean"):
    return _run(_tweedie, input, target, weight, reduction, power)[:2]


def tweedie_loss_hess(input, target, power=1.5, weight=None, reduction="mean"):
    return _run(_tweedie, input, target, weight, reduction, power)[2]


def pseudo_huber_loss(input, target, delta=1.0, weight=None, reduction="mean"):
    return _run(_pseudo_huber, input, target, weight, reduction, delta)[:2]


def pseudo_huber_loss_hess(input, target, delta=1.0, weight=None, reduction="mean"):
    return _run(_pseudo_huber, input, target, weight, reduction, delta)[2]


def fair_loss(input, target, c=1.0, weight=None, reduction="mean"):
    return _run(_fair, input, target, weight, reduction, c)[:2]


def fair_loss_hess(input, target, c=1.0, weight=None, reduction="mean"):
    return _run(_fair, input, target, weight, reduction, c)[2]


def cauchy_loss(input, target, c=1.0, weight=None, reduction="mean"):
    return _run(_cauchy, input, target, weight, reduction, c)[:2]


def cauchy_loss_hess(input, target, c=1.0, weight=None, reduction="mean"):
    return _run(_cauchy, input, target, weight, reduction, c)[2]


def tukey_biweight_loss(input, target, c=4.685, weight=None, reduction="mean"):
    return _run(_tukey, input, target, weight, reduction, c)[:2]


def tukey_biweight_loss_hess(input, target, c=4.685, weight=None, reduction="mean"):
    return _run(_tukey, input, target, weight, reduction, c)[2]


def expectile_loss(input, target, tau=0.5, weight=None, reduction="mean"):
    return _run(_expectile, input, target, weight, reduction, tau)[:2]


def expectile_loss_hess(input, target, tau=0.5, weight=None, reduction="mean"):
    return _run(_expectile, input, target, weight, reduction, tau)[2]


def mean_absolute_percentage_error(input, target, weight=None, reduction="mean"):
    return _run(_mape, input, target, weight, reduction)[:2]


def mean_absolute_percentage_error_hess(input, target, weight=None, reduction="mean"):
    return _run(_mape, input, target, weight, reduction)[2]


def mean_squared_logarithmic_error(input, target, weight=None, reduction="mean"):
    return _run(_msle, input, target, weight, reduction)[:2]


def mean_squared_logarithmic_error_hess(input, target, weight=None, reduction="mean"):
    return _run(_msle, input, target, weight, reduction)[2]


# ------------------------------------------------------------------ trimmed

# losses whose weighted mean divides by the summed weights (as PyTorch's mse_loss and l1_loss)
_WEIGHT_MEAN = ("mse_loss", "l1_loss")


def _loss_functions(name):
    from . import pointwise

    mod = globals() if name in REGRESSION else vars(pointwise)
    return mod[name], mod[name + "_hess"]


def _trimmed(name, input, target, trim, tails, weight, reduction, params):
    fn, hess = _loss_functions(name)
    x = _f64(input)
    l, g = fn(x, _f64(target), **params, reduction="none")
    h = hess(x, _f64(target), **params, reduction="none")
    n = l.size
    k = int(trim * n)
    order = np.argsort(l.ravel(), kind="stable")   # ties by index; NaN last
    keep = np.zeros(n, bool)
    keep[order[(k if tails == "both" else 0):n - k]] = True
    keep = keep.reshape(l.shape)
    w = np.ones(l.shape) if weight is None else np.broadcast_to(_f64(weight), l.shape)
    m = int(keep.sum())
    if weight is not None and name in _WEIGHT_MEAN:  # their weighted mean divides by the summed weights
        m = _fsum(np.where(keep, w, 0.0))
    wl = np.where(keep, w * l, 0.0)
    if reduction == "none":
        value, scale = wl, 1.0
    elif reduction == "sum":
        value, scale = _fsum(wl), 1.0
    else:
        value, scale = (_fsum(wl) / m if m else float("nan")), (1.0 / m if m else 1.0)
    if reduction != "none" and (np.isnan(l).any() or np.isnan(w).any()):
        value = float("nan")
    return value, np.where(keep, w * g * scale, 0.0), np.where(keep, w * h * scale, 0.0)


def trimmed(name, input, target, trim=0.05, tails="both", weight=None, reduction="mean", **params):
    """(value, grad) of the trimmed reduction of loss ``name``: the ``int(trim
    * n)`` lowest (tails="both") and highest ranks of a stable sort of the
    per-element losses dropped."""
    return _trimmed(name, input, target, trim, tails, weight, reduction, params)[:2]


def trimmed_hess(name, input, target, trim=0.05, tails="both", weight=None, reduction="mean", **params):
    return _trimmed(name, input, target, trim, tails, weight, reduction, params)[2]


def _winsorized(name, input, target, limit, tails, weight, reduction, params):
    fn, hess = _loss_functions(name)
    x = _f64(input)
    l, g = fn(x, _f64(target), **params, reduction="none")
    h = hess(x, _f64(target), **params, reduction="none")
    shape, n = l.shape, l.size
    l, g, h = l.ravel(), g.ravel(), h.ravel()
    k = int(limit * n)
    order = np.argsort(l, kind="stable")
    w = np.ones(n) if weight is None else np.broadcast_to(_f64(weight), shape).ravel()
    c, coef = l.copy(), w.copy()           # the clipped losses; each element's weight in the value
    low = order[:k] if tails == "both" else order[:0]
    high = order[n - k:] if k else order[:0]
    if low.size:
        b = order[k]
        c[low] = l[b]
        coef[b] += w[low].sum()
        coef[low] = 0.0
    if high.size:
        b = order[n - 1 - k]
        c[high] = l[b]
        coef[b] += w[high].sum()
        coef[high] = 0.0
    wc = w * c
    div = _fsum(w) if (weight is not None and name in _WEIGHT_MEAN) else n
    scale = 1.0 / div if (reduction == "mean" and div) else 1.0
    if reduction == "none":  # each element's share, as a function of its own loss
        value = (coef * l).reshape(shape)
    else:
        value = _fsum(wc) * scale if (n or reduction == "sum") else float("nan")
        if np.isnan(l).any() or np.isnan(w).any():
            value = float("nan")
    return value, (coef * g * scale).reshape(shape), (coef * h * scale).reshape(shape)


def winsorized(name, input, target, limit=0.05, tails="both", weight=None, reduction="mean", **params):
    """(value, grad) of the winsorized reduction of loss ``name``: the ``int(limit * n)`` lowest
    (tails="both") and highest ranks of a stable sort of the per-element losses replaced by the
    loss at the nearest kept rank; the boundary element carries the weights of those it replaces."""
    return _winsorized(name, input, target, limit, tails, weight, reduction, params)[:2]


def winsorized_hess(name, input, target, limit=0.05, tails="both", weight=None, reduction="mean", **params):
    return _winsorized(name, input, target, limit, tails, weight, reduction, params)[2]


# ------------------------------------------------------------------ table

class RefLoss(NamedTuple):
    name: str
    fn: object
    hess: object
    params: dict


REGRESSION = {
    name: RefLoss(name, globals()[name], globals()[name + "_hess"], params)
    for name, params in [
        ("gamma_nll_loss", {}),
        ("tweedie_loss", {"power": 1.5}),
        ("pseudo_huber_loss", {"delta": 1.0}),
        ("fair_loss", {"c": 1.0}),
        ("cauchy_loss", {"c": 1.0}),
        ("tukey_biweight_loss", {"c": 4.685}),
        ("expectile_loss", {"tau": 0.5}),
        ("mean_absolute_percentage_error", {}),
        ("mean_squared_logarithmic_error", {}),
    ]
}
