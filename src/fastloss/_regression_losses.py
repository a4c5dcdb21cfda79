"""Regression losses beyond PyTorch's: deviances with a log link, robust
losses, expectiles and Keras's percentage and log losses.

PyTorch has none of these, so each follows the best-known definition (named
in its docstring: scikit-learn, XGBoost, LightGBM, scipy, Keras) and the
signature of fastloss's own losses: ``(input, target, <parameters>, *,
weight=None, reduction="mean", return_grad=False, out=None,
n_threads=None)``.  They run on the pointwise driver (``_pointwise_api``);
their scalar math is in ``_src/fl_pointwise_regression_math.h``.  The
trimmed reduction of any pointwise loss is :class:`fastloss.Trimmed`.
"""
from __future__ import annotations

import math

from . import _validate as V
from ._pointwise_api import _NO_PARAMS, _PointwiseLoss, mode_of, run, spec
from ._trim_api import Trimmed, Winsorized, trimmed, winsorized  # noqa: F401 (exported)

__all__ = [
    "gamma_nll_loss", "tweedie_loss", "pseudo_huber_loss", "fair_loss", "cauchy_loss",
    "tukey_biweight_loss", "expectile_loss", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "trimmed", "winsorized",
    "GammaNLLLoss", "TweedieLoss", "PseudoHuberLoss", "FairLoss", "CauchyLoss", "TukeyBiweightLoss",
    "ExpectileLoss", "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "Trimmed", "Winsorized",
]

#: Keras's backend.epsilon(), used by its percentage and log losses
KERAS_EPSILON = 1e-7

_COMMON = """weight : array_like, optional
        Per-element weights, broadcast to input's shape (one copy if their
        shape differs).  The loss of element i is multiplied by weight[i];
        the mean still divides by the number of elements.
    reduction : {"mean", "sum", "none"}
        "mean" (the default) divides the sum by the number of elements (NaN
        for an empty input); "none" returns the per-element losses.
    return_grad : bool
        Also return the gradient with respect to input, in the same pass.
    out : ndarray, optional
        Buffer for the gradient (input's shape and dtype, C-contiguous,
        writeable, not overlapping the inputs); only with return_grad=True.
    n_threads : int, optional
        Threads for this call (default :func:`fastloss.get_num_threads`).
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
    target and weight are converted to input's dtype; target must have
    exactly input's shape.  Sums are accumulated in float64, block by block
    in a fixed order, so the value is bit-identical for any thread count.
    The classes' ``grad_hess`` gives the diagonal Hessian."""


def _doc(fn):
    fn.__doc__ = fn.__doc__.replace("%(common)s", _COMMON)
    return fn


def _first_bad(mask, arr):
    idx = V.first_index(mask.ravel(), arr.shape)
    return f"{V.fmt_index('target', idx)} = {arr[idx] if idx else arr.reshape(())[()]}"


def _bad_target(op, what, test):
    """on_bad for a target domain: ``test(y)`` is the mask of bad targets."""
    def on_bad(x, y, e):
        raise ValueError(f"{op}: target must be {what}, got " + _first_bad(test(y), y))
    return on_bad


def _positive_target(y):
    return y <= 0


def _negative_target(y):
    return y < 0


_GAMMA = spec("gamma_nll_loss", "gamma_nll",
              _bad_target("gamma_nll_loss", "> 0 (the Gamma distribution's support)", _positive_target))
# target_kind: the support that fastloss.diagnose (check=True) expects for the power
_TWEEDIE_NONNEG = spec("tweedie_loss", "tweedie",
                       _bad_target("tweedie_loss", ">= 0 for 1 <= power < 2", _negative_target), target_kind="nonneg")
_TWEEDIE_POS = spec("tweedie_loss", "tweedie", _bad_target("tweedie_loss", "> 0 for power >= 2", _positive_target),
                    target_kind="positive")
_TWEEDIE_ANY = spec("tweedie_loss", "tweedie", target_kind="real")  # power < 0: any real target
_TWEEDIE0 = spec("tweedie_loss", "tweedie0", target_kind="real")
_TWEEDIE1 = spec("tweedie_loss", "tweedie1", _bad_target("tweedie_loss", ">= 0 for 1 <= power < 2", _negative_target),
                 target_kind="nonneg")
_TWEEDIE2 = spec("tweedie_loss", "gamma_nll", _bad_target("tweedie_loss", "> 0 for power >= 2", _positive_target),
                 target_kind="positive")
_PSEUDO_HUBER = spec("pseudo_huber_loss", "pseudo_huber")
_FAIR = spec("fair_loss", "fair")
_CAUCHY = spec("cauchy_loss", "cauchy")
_TUKEY = spec("tukey_biweight_loss", "tukey_biweight")
_EXPECTILE = spec("expectile_loss", "expectile")
_MAPE = spec("mean_absolute_percentage_error", "mape")
_MSLE = spec("mean_squared_logarithmic_error", "msle")


# ------------------------------------------------------------------ params

def _p_tweedie(power, op):
    """(spec, kernel parameters) for a Tweedie power."""
    p = V.real(power, "power", op)
    if not math.isfinite(p) or 0 < p < 1:
        raise ValueError(f"{op}: power must be finite and <= 0 or >= 1 (no Tweedie distribution has "
                         f"0 < power < 1), got {power!r}")
    if p == 0:
        return _TWEEDIE0, _NO_PARAMS
    if p == 1:
        return _TWEEDIE1, _NO_PARAMS
    if p == 2:
        return _TWEEDIE2, _NO_PARAMS
    sp = _TWEEDIE_ANY if p < 0 else _TWEEDIE_NONNEG if p < 2 else _TWEEDIE_POS
    return sp, (1.0 - p, 2.0 - p, 0.0, int(p > 0), int(p > 2))


def _p_scale(value, name, op):
    v = V.positive(value, name, op)
    if not math.isfinite(v):
        raise ValueError(f"{op}: {name} must be finite, got {value!r}")
    return (v, 0.0, 0.0, 0, 0)


def _p_tau(tau, op):
    t = V.real(tau, "tau", op)
    if not 0 < t < 1:
        raise ValueError(f"{op}: tau must be in the open interval (0, 1), got {tau!r}")
    return (t, 0.0, 0.0, 0, 0)


# ------------------------------------------------------------------ deviances

@_doc
def gamma_nll_loss(input, target, *, weight=None, reduction="mean", return_grad=False, out=None,
                   n_threads=None, check=False):
    """Gamma negative log-likelihood with a log link (input is the raw
    prediction, the log of the mean), as scikit-learn's ``HalfGammaLoss``
    and XGBoost's ``reg:gamma``.

    ``l_i = input_i + target_i exp(-input_i)``: the negative log-likelihood
    of the exponential distribution (the Gamma of unit shape) of mean
    ``exp(input_i)``, and half the Gamma deviance
    ``2 (log(mu / y) + y / mu - 1)`` less its constant ``log(y) + 1``:
    exactly scikit-learn's ``HalfGammaLoss().loss`` (its
    ``constant_to_optimal_zero`` added gives half the deviance).  Gradient
    ``1 - target exp(-input)`` and Hessian ``target exp(-input)``, the same
    as scikit-learn's and as XGBoost's ``reg:gamma`` (no factor 2 between
    them).  Finite for raw predictions of +-50 in float32 and float64.
    A target <= 0 is a ValueError.

    Parameters
    ----------
    input : array_like of raw predictions (log of the mean)
    target : array_like of positive values, same shape
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> value, grad = fl.gamma_nll_loss(np.array([0.0, 1.0]), np.array([1.0, 2.0]), return_grad=True)
    >>> round(value, 12), grad
    (1.367879441171, array([0.        , 0.13212056]))
    """
    return run(_GAMMA, input, target, weight, reduction, mode_of(return_grad), _NO_PARAMS, n_threads, out=out,
               check=check)


@_doc
def tweedie_loss(input, target, power=1.5, *, weight=None, reduction="mean", return_grad=False, out=None,
                 n_threads=None, check=False):
    """Tweedie deviance with a log link (input is the raw prediction, the
    log of the mean ``mu = exp(input)``), as scikit-learn's
    ``HalfTweedieLoss(power)`` and XGBoost's ``reg:tweedie``.

    For power ``p`` not 0, 1 or 2::

        l = exp((2 - p) x) / (2 - p) - y exp((1 - p) x) / (1 - p)
        g = exp((2 - p) x) - y exp((1 - p) x)
        h = (2 - p) exp((2 - p) x) - (1 - p) y exp((1 - p) x)

    half the Tweedie deviance less its constant
    ``y^(2 - p) / ((1 - p)(2 - p))``, exactly scikit-learn's
    ``HalfTweedieLoss(power).loss``; g and h are XGBoost's ``reg:tweedie``
    gradient and Hessian.  As scikit-learn, the edge powers dispatch to
    their own losses with their own constants: p = 0 is half the squared
    error of the mean, ``(mu - y)^2 / 2``; p = 1 the Poisson loss
    ``mu - y x`` (``poisson_nll_loss``); p = 2 :func:`gamma_nll_loss`.
    So the value is not continuous in ``power`` at 0, 1 and 2 (the
    gradient is).  Finite for raw predictions of +-50 with 1 <= p <= 2 in
    both dtypes; zero targets are allowed for p < 2.  The two terms are
    computed in the input's dtype, so for other powers in float32 a term
    such as ``y exp((1 - p) x)`` can overflow to inf before the difference
    is taken (p = 3: for x below about -44).

    Parameters
    ----------
    input : array_like of raw predictions (log of the mean)
    target : array_like, same shape: any real for power <= 0, >= 0 for
        1 <= power < 2, > 0 for power >= 2 (a ValueError otherwise)
    power : float, <= 0 or >= 1
        The Tweedie variance power (no Tweedie distribution has
        0 < power < 1): 1 < power < 2 is the compound Poisson-Gamma.
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> round(fl.tweedie_loss(np.array([0.0, 1.0]), np.array([0.0, 3.0]), power=1.5), 12)
    4.468313249838
    """
    sp, p = _p_tweedie(power, "tweedie_loss")
    return run(sp, input, target, weight, reduction, mode_of(return_grad), p, n_threads, out=out, check=check)


# ------------------------------------------------------------------ robust

@_doc
def pseudo_huber_loss(input, target, delta=1.0, *, weight=None, reduction="mean", return_grad=False,
                      out=None, n_threads=None, check=False):
    """Pseudo-Huber loss, as XGBoost's ``reg:pseudohubererror``
    (``huber_slope = delta``).

    With ``z = input - target`` and ``s = sqrt(1 + (z / delta)^2)``:
    ``l = delta^2 (s - 1)``, gradient ``z / s``, Hessian ``1 / s^3``
    (XGBoost's ``delta^2 / (delta^2 + z^2) / s``).  Quadratic ``z^2 / 2``
    near 0, linear ``delta |z|`` far out.  Computed without cancellation
    for tiny residuals and without overflow for huge ones (finite gradient
    ``+-delta`` even at an infinite residual).

    Parameters
    ----------
    input, target : array_like, same shape
    delta : float > 0
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> round(fl.pseudo_huber_loss(np.array([0.0, 3.0]), np.array([0.0, 0.0]), reduction="sum"), 12)
    2.162277660168
    """
    p = _p_scale(delta, "delta", "pseudo_huber_loss")
    return run(_PSEUDO_HUBER, input, target, weight, reduction, mode_of(return_grad), p, n_threads, out=out,
               check=check)


@_doc
def fair_loss(input, target, c=1.0, *, weight=None, reduction="mean", return_grad=False, out=None,
              n_threads=None, check=False):
    """Fair loss, as LightGBM's ``fair`` objective (``fair_c = c``).

    With ``z = input - target`` and ``a = |z| / c``:
    ``l = c^2 (a - log(1 + a))``, gradient ``c z / (|z| + c)``, Hessian
    ``c^2 / (|z| + c)^2`` (LightGBM's).  Quadratic near 0, linear far
    out; computed without cancellation for tiny residuals (a series below
    ``a = 0.5``).

    Parameters
    ----------
    input, target : array_like, same shape
    c : float > 0
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> round(fl.fair_loss(np.array([0.0, 3.0]), np.array([0.0, 0.0]), reduction="sum"), 12)
    1.61370563888
    """
    p = _p_scale(c, "c", "fair_loss")
    return run(_FAIR, input, target, weight, reduction, mode_of(return_grad), p, n_threads, out=out, check=check)


@_doc
def cauchy_loss(input, target, c=1.0, *, weight=None, reduction="mean", return_grad=False, out=None,
                n_threads=None, check=False):
    """Cauchy (Lorentzian) loss, as ``scipy.optimize.least_squares``'
    ``loss="cauchy"`` with ``f_scale = c`` (and Ceres' ``CauchyLoss``).

    With ``z = input - target`` and ``s = (z / c)^2``:
    ``l = c^2 / 2 log(1 + s)``, gradient ``z / (1 + s)``, Hessian
    ``(1 - s) / (1 + s)^2`` (negative beyond ``|z| = c``: the loss is not
    convex).  ``z^2 / 2`` near 0, logarithmic far out: the gradient of a
    huge residual goes to 0.

    Parameters
    ----------
    input, target : array_like, same shape
    c : float > 0
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> round(fl.cauchy_loss(np.array([0.0, 3.0]), np.array([0.0, 0.0]), reduction="sum"), 12)
    1.151292546497
    """
    p = _p_scale(c, "c", "cauchy_loss")
    return run(_CAUCHY, input, target, weight, reduction, mode_of(return_grad), p, n_threads, out=out, check=check)


@_doc
def tukey_biweight_loss(input, target, c=4.685, *, weight=None, reduction="mean", return_grad=False,
                        out=None, n_threads=None, check=False):
    """Tukey's biweight (bisquare) loss, as statsmodels' ``TukeyBiweight``
    norm (default ``c = 4.685``, 95 % efficiency at the normal).

    With ``z = input - target`` and ``u = 1 - (z / c)^2``: for ``|z| <= c``,
    ``l = c^2 / 6 (1 - u^3)``, gradient ``z u^2``, Hessian
    ``u (1 - 5 (z / c)^2)``; beyond ``c`` the loss is the constant
    ``c^2 / 6`` and the gradient and Hessian are 0 (outliers are ignored).
    The Hessian is negative for ``c / sqrt(5) < |z| < c``.

    Parameters
    ----------
    input, target : array_like, same shape
    c : float > 0
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> round(fl.tukey_biweight_loss(np.array([0.0, 3.0]), np.array([1.0, 0.0]), c=2.0, reduction="sum"), 12)
    1.052083333333
    """
    p = _p_scale(c, "c", "tukey_biweight_loss")
    return run(_TUKEY, input, target, weight, reduction, mode_of(return_grad), p, n_threads, out=out, check=check)


@_doc
def expectile_loss(input, target, tau=0.5, *, weight=None, reduction="mean", return_grad=False, out=None,
                   n_threads=None, check=False):
    """Expectile loss (asymmetric squared error, Newey and Powell 1987).

    With ``r = target - input``: ``l = tau r^2`` for ``r >= 0`` and
    ``(1 - tau) r^2`` otherwise; gradient ``-2 w r`` and Hessian ``2 w``
    with ``w`` the weight of the side (at ``r = 0``, ``tau``, as
    :func:`quantile_loss`).  ``tau = 0.5`` is half the squared error; the
    minimizer is the tau-expectile of the target.

    Parameters
    ----------
    input, target : array_like, same shape
    tau : float in (0, 1)
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> fl.expectile_loss(np.array([1.0, 3.0]), np.array([2.0, 2.0]), tau=0.9, reduction="sum")
    1.0
    """
    p = _p_tau(tau, "expectile_loss")
    return run(_EXPECTILE, input, target, weight, reduction, mode_of(return_grad), p, n_threads, out=out, check=check)


# ------------------------------------------------------------------ Keras

@_doc
def mean_absolute_percentage_error(input, target, *, weight=None, reduction="mean", return_grad=False,
                                   out=None, n_threads=None, check=False):
    """Mean absolute percentage error, as Keras's
    ``keras.losses.mean_absolute_percentage_error``.

    ``l_i = 100 |target_i - input_i| / max(|target_i|, eps)`` with Keras's
    ``eps = 1e-7`` (``backend.epsilon()``); gradient
    ``100 sign(input - target) / max(|target|, eps)`` with ``sign(0) = 0``;
    Hessian 0.  Note the argument order: fastloss's ``(input, target)``
    is Keras's ``(y_pred, y_true)`` swapped.  Keras averages over the
    last axis and then over the batch, which for a full batch is the mean
    over all elements, the "mean" here.

    Parameters
    ----------
    input, target : array_like, same shape
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> fl.mean_absolute_percentage_error(np.array([[1.0, 1.0], [1.0, 0.0]]),
    ...                                   np.array([[2.0, 1.0], [2.0, 3.0]]))   # Keras's example
    50.0
    """
    return run(_MAPE, input, target, weight, reduction, mode_of(return_grad), _NO_PARAMS, n_threads, out=out,
               check=check)


@_doc
def mean_squared_logarithmic_error(input, target, *, weight=None, reduction="mean", return_grad=False,
                                   out=None, n_threads=None, check=False):
    """Mean squared logarithmic error, as Keras's
    ``keras.losses.mean_squared_logarithmic_error``.

    ``l_i = (log(1 + max(input_i, eps)) - log(1 + max(target_i, eps)))^2``
    with Keras's ``eps = 1e-7``: inputs and targets below eps are clamped
    to eps.  Gradient ``2 d / (1 + input)`` and Hessian
    ``2 (1 - d) / (1 + input)^2`` (d the difference of the logs) where
    ``input >= eps``; 0 where the input is clamped (at ``input == eps`` the
    gradient passes, as ``tf.maximum``'s).  The logs are ``log1p``, exact
    where Keras's ``log(m + 1)`` rounds.  Argument order as
    :func:`mean_absolute_percentage_error`.

    Parameters
    ----------
    input, target : array_like, same shape
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> round(fl.mean_squared_logarithmic_error(np.array([[1.0, 1.0], [1.0, 0.0]]),
    ...                                         np.array([[0.0, 1.0], [0.0, 0.0]])), 3)   # Keras's example
    0.24
    """
    return run(_MSLE, input, target, weight, reduction, mode_of(return_grad), _NO_PARAMS, n_threads, out=out,
               check=check)


# ------------------------------------------------------------------ classes

def _class_doc(fn_name, example):
    return f"""The object form of :func:`fastloss.{fn_name}`.

    ``loss(input, target, weight=None)`` gives the value;
    ``loss.value_and_grad(input, target, weight=None, out=None, loss_out=None)``
    the value and gradient in one pass; ``loss.grad_hess(input, target,
    weight=None, out=None)`` the gradient and diagonal Hessian.  See
    :func:`fastloss.{fn_name}` for the formula, shapes and dtypes.

    Examples
    --------
{example}
    """


class _ScaleLoss(_PointwiseLoss):
    """A loss with one positive scale parameter, stored as ``_param``."""

    _param = "c"

    def __init__(self, value, reduction="mean", *, n_threads=None):
        super().__init__(reduction, n_threads=n_threads)
        self._params = _p_scale(value, self._param, type(self).__name__)
        setattr(self, self._param, value)

    def _repr_args(self):
        return [(self._param, getattr(self, self._param)), ("reduction", self.reduction)]


class GammaNLLLoss(_PointwiseLoss):
    __doc__ = _class_doc("gamma_nll_loss", """    >>> import numpy as np, fastloss as fl
    >>> grad, hess = fl.GammaNLLLoss(reduction="sum").grad_hess(np.array([0.0, 1.0]), np.array([1.0, 2.0]))
    >>> hess
    array([1.        , 0.73575888])""")
    _spec = _GAMMA

    def __init__(self, reduction="mean", *, n_threads=None):
        super().__init__(reduction, n_threads=n_threads)


class TweedieLoss(_PointwiseLoss):
    __doc__ = _class_doc("tweedie_loss", """    >>> import numpy as np, fastloss as fl
    >>> round(fl.TweedieLoss(power=1.5)(np.array([0.0, 1.0]), np.array([0.0, 3.0])), 12)
    4.468313249838""")
    _spec = _TWEEDIE_NONNEG

    def __init__(self, power=1.5, reduction="mean", *, n_threads=None):
        super().__init__(reduction, n_threads=n_threads)
        self._spec, self._params = _p_tweedie(power, "TweedieLoss")
        self.power = power

    def _repr_args(self):
        return [("power", self.power), ("reduction", self.reduction)]


class PseudoHuberLoss(_ScaleLoss):
    __doc__ = _class_doc("pseudo_huber_loss", """    >>> import numpy as np, fastloss as fl
    >>> round(fl.PseudoHuberLoss(delta=1.0, reduction="sum")(np.array([0.0, 3.0]), np.array([0.0, 0.0])), 12)
    2.162277660168""")
    _spec = _PSEUDO_HUBER
    _param = "delta"

    def __init__(self, delta=1.0, reduction="mean", *, n_threads=None):
        super().__init__(delta, reduction, n_threads=n_threads)


class FairLoss(_ScaleLoss):
    __doc__ = _class_doc("fair_loss", """    >>> import numpy as np, fastloss as fl
    >>> grad, hess = fl.FairLoss(c=1.0, reduction="sum").grad_hess(np.array([0.0, 3.0]), np.array([1.0, 0.0]))
    >>> grad, hess
    (array([-0.5 ,  0.75]), array([0.25  , 0.0625]))""")
    _spec = _FAIR

    def __init__(self, c=1.0, reduction="mean", *, n_threads=None):
        super().__init__(c, reduction, n_threads=n_threads)


class CauchyLoss(_ScaleLoss):
    __doc__ = _class_doc("cauchy_loss", """    >>> import numpy as np, fastloss as fl
    >>> round(fl.CauchyLoss(c=1.0, reduction="sum")(np.array([0.0, 3.0]), np.array([0.0, 0.0])), 12)
    1.151292546497""")
    _spec = _CAUCHY

    def __init__(self, c=1.0, reduction="mean", *, n_threads=None):
        super().__init__(c, reduction, n_threads=n_threads)


class TukeyBiweightLoss(_ScaleLoss):
    __doc__ = _class_doc("tukey_biweight_loss", """    >>> import numpy as np, fastloss as fl
    >>> grad, hess = fl.TukeyBiweightLoss(c=2.0, reduction="sum").grad_hess(np.array([1.0, 3.0]), np.array([0.0, 0.0]))
    >>> grad, hess
    (array([0.5625, 0.    ]), array([-0.1875,  0.    ]))""")
    _spec = _TUKEY

    def __init__(self, c=4.685, reduction="mean", *, n_threads=None):
        super().__init__(c, reduction, n_threads=n_threads)


class ExpectileLoss(_PointwiseLoss):
    __doc__ = _class_doc("expectile_loss", """    >>> import numpy as np, fastloss as fl
    >>> fl.ExpectileLoss(tau=0.9, reduction="sum")(np.array([1.0, 3.0]), np.array([2.0, 2.0]))
    1.0""")
    _spec = _EXPECTILE

    def __init__(self, tau=0.5, reduction="mean", *, n_threads=None):
        super().__init__(reduction, n_threads=n_threads)
        self._params = _p_tau(tau, "ExpectileLoss")
        self.tau = tau

    def _repr_args(self):
        return [("tau", self.tau), ("reduction", self.reduction)]


class MeanAbsolutePercentageError(_PointwiseLoss):
    __doc__ = _class_doc("mean_absolute_percentage_error", """    >>> import numpy as np, fastloss as fl
    >>> fl.MeanAbsolutePercentageError()(np.array([1.0, 1.0]), np.array([2.0, 1.0]))
    25.0""")
    _spec = _MAPE

    def __init__(self, reduction="mean", *, n_threads=None):
        super().__init__(reduction, n_threads=n_threads)


class MeanSquaredLogarithmicError(_PointwiseLoss):
    __doc__ = _class_doc("mean_squared_logarithmic_error", """    >>> import numpy as np, fastloss as fl
    >>> round(fl.MeanSquaredLogarithmicError(reduction="sum")(np.array([1.0]), np.array([0.0])), 12)
    0.480452875289""")
    _spec = _MSLE

    def __init__(self, reduction="mean", *, n_threads=None):
        super().__init__(reduction, n_threads=n_threads)


# ------------------------------------------------------------------ examples
# Valid calls of every loss, from which the fuzz harness derives its hostile
# variants (fastloss._examples; docs/reliability.md).

def _declare_examples():
    from . import _examples as E
    from ._pointwise_losses import HuberLoss, MSELoss

    def r(lo, hi):
        return lambda rng: float(rng.uniform(lo, hi))

    pw = E.pointwise
    for gen, fn, cls in [
        (pw("normal", "positive"), gamma_nll_loss, GammaNLLLoss),
        (pw("normal", "count", power=lambda rng: float(rng.choice([0.0, 1.0, 1.5, 1.8]))), tweedie_loss, TweedieLoss),
        (pw(delta=r(0.1, 3)), pseudo_huber_loss, PseudoHuberLoss), (pw(c=r(0.1, 3)), fair_loss, FairLoss),
        (pw(c=r(0.1, 3)), cauchy_loss, CauchyLoss), (pw(c=r(0.5, 6)), tukey_biweight_loss, TukeyBiweightLoss),
        (pw(tau=r(0.05, 0.95)), expectile_loss, ExpectileLoss),
        (pw("normal", "positive"), mean_absolute_percentage_error, MeanAbsolutePercentageError),
        (pw("positive", "positive"), mean_squared_logarithmic_error, MeanSquaredLogarithmicError),
    ]:
        E.declare(gen, fn, cls)

    def wrap(key, lo, hi):
        def gen(rng, dtype, size):
            ex = pw()(rng, dtype, size)
            ex.args["loss"] = MSELoss() if rng.random() < 0.5 else HuberLoss(delta=0.5)
            ex.args[key] = float(rng.uniform(lo, hi))
            if rng.random() < 0.3:
                ex.args["tails"] = "upper"
            return ex
        return gen

    E.declare(wrap("trim", 0.0, 0.45), trimmed, Trimmed)
    E.declare(wrap("limit", 0.0, 0.45), winsorized, Winsorized)


_declare_examples()
