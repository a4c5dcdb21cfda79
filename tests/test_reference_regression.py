"""The regression catalogue's reference against finite differences, and the
kernels against scikit-learn's own loss classes.

* fastloss.reference.regression: gradient and Hessian equal fourth-order
  central differences of its value and gradient (away from kinks);
* the deviances equal scikit-learn's ``sklearn._loss.loss.HalfGammaLoss``
  and ``HalfTweedieLoss(power)`` (their ``loss``, ``gradient`` and
  ``gradient_hessian``, with and without sample weights): fastloss's
  per-element value IS scikit-learn's ``loss`` (which drops the constant
  terms), with no factor between them; adding scikit-learn's
  ``constant_to_optimal_zero`` gives half the deviance of
  ``sklearn.metrics.mean_tweedie_deviance`` / ``mean_gamma_deviance``
  (checked exactly);
* spot values from the definitions' sources (Keras's documented examples).
"""
import numpy as np
import pytest

import fastloss as fl
from fastloss.reference import regression as R

SEEDS = [0, 1]
POWERS = [0.0, 1.0, 1.2, 1.5, 1.8, 2.0, 3.0, -0.5]


def _problem(name, params, rng, n=12):
    x = rng.normal(0, 1.2, n)
    if name == "gamma_nll_loss" or (name == "tweedie_loss" and params["power"] >= 2):
        t = rng.gamma(2.0, 1.0, n)
    elif name == "tweedie_loss" and params["power"] > 0:
        t = np.where(rng.random(n) < 0.3, 0.0, rng.gamma(2.0, 1.0, n))
    elif name == "mean_squared_logarithmic_error":
        x, t = rng.uniform(0.2, 4.0, n), rng.uniform(-0.5, 4.0, n)
    else:
        c = params.get("c", params.get("delta", 1.0))
        d = rng.uniform(0.05, 3.0 * c, n) * np.where(rng.random(n) < 0.5, -1, 1)
        if name == "tukey_biweight_loss":  # away from |z| = c, where the Hessian jumps
            d = np.where(np.abs(np.abs(d) - c) < 0.05, d * 0.8, d)
        t = x - d
    return x, t


CASES = [("gamma_nll_loss", {})] + [("tweedie_loss", {"power": p}) for p in POWERS] + [
    ("pseudo_huber_loss", {"delta": 0.7}), ("fair_loss", {"c": 1.3}), ("cauchy_loss", {"c": 0.8}),
    ("tukey_biweight_loss", {"c": 2.0}), ("expectile_loss", {"tau": 0.8}),
    ("mean_absolute_percentage_error", {}), ("mean_squared_logarithmic_error", {}),
]


def test_table_covers_every_loss():
    assert {n for n, _ in CASES} == set(R.REGRESSION)
    for n in R.REGRESSION:
        assert hasattr(fl, n), n


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name, params", CASES, ids=[f"{n}-{p}" for n, p in CASES])
def test_gradient_and_hessian_match_finite_differences(name, params, seed):
    rng = np.random.default_rng(seed)
    x, t = _problem(name, params, rng)
    w = rng.uniform(0.5, 2.0, x.shape)
    fn, hess = getattr(R, name), getattr(R, name + "_hess")
    for reduction in ("sum", "mean"):
        _, g = fn(x, t, **params, weight=w, reduction=reduction)
        h = hess(x, t, **params, weight=w, reduction=reduction)
        eps = 1e-4 * np.maximum(1.0, np.abs(x))
        fd_g, fd_h = np.empty_like(x), np.empty_like(x)
        for i in range(x.size):
            def f(dx, k=i):
                xx = x.copy()
                xx[k] += dx
                return fn(xx, t, **params, weight=w, reduction=reduction)
            e = eps[i]
            v = [f(s * e)[0] for s in (-2, -1, 1, 2)]
            gg = [f(s * e)[1][i] for s in (-2, -1, 1, 2)]
            fd_g[i] = (v[0] - 8 * v[1] + 8 * v[2] - v[3]) / (12 * e)
            fd_h[i] = (gg[0] - 8 * gg[1] + 8 * gg[2] - gg[3]) / (12 * e)
        scale = np.abs(g).max() + 1e-12
        np.testing.assert_allclose(g, fd_g, rtol=1e-6, atol=1e-7 * scale, err_msg=f"{name} grad {reduction}")
        # (MAPE's Hessian is 0: the differences of its piecewise-constant gradient are rounding noise)
        np.testing.assert_allclose(h, fd_h, rtol=1e-5, atol=1e-6 * (np.abs(h).max() + 1e-2 * np.abs(g).max()),
                                   err_msg=f"{name} hess {reduction}")


# ------------------------------------------------------------------ scikit-learn

def _sk():
    return pytest.importorskip("sklearn._loss.loss")


def _sk_loss(power):
    sk = _sk()
    return sk.HalfGammaLoss() if power is None else sk.HalfTweedieLoss(power=power)


def _fl_call(power, x, t, **kw):
    return fl.gamma_nll_loss(x, t, **kw) if power is None else fl.tweedie_loss(x, t, power=power, **kw)


def _fl_obj(power, **kw):
    return fl.GammaNLLLoss(**kw) if power is None else fl.TweedieLoss(power=power, **kw)


def _hess_terms(power, x, t, w):
    """The magnitudes of the Hessian's terms (it cancels for power < 0 or > 2)."""
    w = 1.0 if w is None else w
    if power is None or power == 2:
        return w * t * np.exp(-x)
    mu = np.exp(x)
    if power == 0:
        return w * mu * (2 * mu + np.abs(t))
    if power == 1:
        return w * mu
    a, b = 1 - power, 2 - power
    return w * (abs(b) * np.exp(b * x) + abs(a) * np.abs(t) * np.exp(a * x))


def _deviance_data(power, rng, n=2000):
    x = rng.normal(0.2, 1.5, n)
    x[:4] = [50.0, -50.0, 30.0, -30.0]                  # raw predictions of +-50
    if power is None or power >= 2:
        t = rng.gamma(2.0, np.exp(np.clip(x, -20, 20)) / 2.0)
        t = np.where(t > 0, t, 1e-3)
    elif power > 0:
        t = np.where(rng.random(n) < 0.3, 0.0, rng.gamma(2.0, np.exp(np.clip(x, -20, 20)) / 2.0))
        t[:2] = 0.0                                      # zero targets at +-50
    else:
        t = np.exp(np.clip(x, -20, 20)) + rng.normal(0, 1, n)
    if power is not None and (power < 1 or power > 2):   # keep exp((2-p) x) and exp((1-p) x) finite in float64
        x = np.clip(x, -100, 100)
    return x, t


@pytest.mark.parametrize("power", [None] + POWERS, ids=["gamma"] + [f"tweedie-{p}" for p in POWERS])
@pytest.mark.parametrize("weighted", [False, True])
def test_deviances_equal_sklearn_loss_classes(power, weighted):
    rng = np.random.default_rng(11)
    x, t = _deviance_data(power, rng)
    w = rng.uniform(0.2, 3.0, x.size) if weighted else None
    sk = _sk_loss(power)
    # scikit-learn: per-sample loss (times the sample weight), gradient and Hessian of that
    sl = sk.loss(y_true=t, raw_prediction=x, sample_weight=w)
    sg, sh = sk.gradient_hessian(y_true=t, raw_prediction=x, sample_weight=w)
    sl2, sg2 = sk.loss_gradient(y_true=t, raw_prediction=x, sample_weight=w)
    v = _fl_call(power, x, t, weight=w, reduction="none")
    _, g = _fl_call(power, x, t, weight=w, reduction="sum", return_grad=True)
    g2, h = _fl_obj(power, reduction="sum").grad_hess(x, t, weight=w)
    # the dropped constants make the value cancel near its minimum: errors are measured against the terms
    scale = (np.abs(x) + np.abs(sl) / (1 if w is None else w)) * (1 if w is None else w)
    assert np.all(np.abs(v - sl) <= 1e-12 * scale + 1e-300), np.max(np.abs(v - sl) / scale)
    np.testing.assert_allclose(sl2, sl, rtol=1e-15)
    gscale = 1.0 + np.abs(sg) + np.abs(sh)
    for ours, theirs in ((g, sg), (g, sg2), (g2, sg)):
        assert np.all(np.abs(ours - theirs) <= 1e-12 * gscale), np.max(np.abs(ours - theirs) / gscale)
    assert np.all(np.abs(h - sh) <= 1e-12 * _hess_terms(power, x, t, w) + 1e-300)
    # the mean: scikit-learn's __call__ is the (weighted) average
    if not weighted:
        assert _fl_call(power, x, t) == pytest.approx(sk(t, x), rel=1e-11, abs=1e-12 * float(np.mean(scale)))


@pytest.mark.parametrize("power", [None] + POWERS, ids=["gamma"] + [f"tweedie-{p}" for p in POWERS])
def test_plus_sklearn_constant_is_half_the_deviance(power):
    """fastloss's value + scikit-learn's constant_to_optimal_zero = half the Tweedie deviance of the mean
    exp(input) (sklearn.metrics.mean_tweedie_deviance, mean_gamma_deviance)."""
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(4)
    x, t = _deviance_data(power, rng, 500)
    x = np.clip(x, -20, 20)  # the deviance metric works on exp(x)
    v = _fl_call(power, x, t, reduction="none")
    const = _sk_loss(power).constant_to_optimal_zero(t)
    half_dev = v + const
    p = 2.0 if power is None else power
    dev = metrics.mean_tweedie_deviance(t, np.exp(x), power=p)
    assert 2 * np.mean(half_dev) == pytest.approx(dev, rel=1e-9)
    if power is None:
        assert 2 * np.mean(half_dev) == pytest.approx(metrics.mean_gamma_deviance(t, np.exp(x)), rel=1e-9)
    # and each element's half deviance is >= 0, 0 where the mean equals the target
    assert np.all(half_dev >= -1e-9 * (np.abs(v) + np.abs(const)))
    tt = t[(t > 0) & (t < 100)][:50]  # exp(log(y)) is y to within |log y| ulp
    vt, ct = _fl_call(power, np.log(tt), tt, reduction="none"), _sk_loss(power).constant_to_optimal_zero(tt)
    assert np.all(np.abs(vt + ct) <= 1e-14 * (np.abs(vt) + np.abs(ct) + np.abs(np.log(tt))))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_against_sklearn(dtype):
    """scikit-learn computes in double and writes float32 outputs; fastloss computes float32 data in float32."""
    sk = _sk()
    rng = np.random.default_rng(8)
    x = rng.normal(0, 1.5, 5000).astype(dtype)
    t = rng.gamma(2.0, 1.0, 5000).astype(dtype)
    for loss, ours in ((sk.HalfGammaLoss(), fl.GammaNLLLoss(reduction="sum")),
                       (sk.HalfTweedieLoss(power=1.5), fl.TweedieLoss(power=1.5, reduction="sum"))):
        g_out, h_out = np.empty_like(x), np.empty_like(x)
        sg, sh = loss.gradient_hessian(y_true=t, raw_prediction=x, gradient_out=g_out, hessian_out=h_out)
        g, h = ours.grad_hess(x, t)
        assert g.dtype == dtype and h.dtype == dtype
        rt = 4e-6 if dtype == np.float32 else 1e-12
        scale = 1 + np.abs(t.astype(np.float64)) * np.exp(np.abs(x.astype(np.float64)))
        np.testing.assert_array_less(np.abs(g.astype(np.float64) - sg), rt * scale)
        np.testing.assert_allclose(h, sh, rtol=rt)


# ------------------------------------------------------------------ spot values

def test_keras_documented_examples():
    """keras.losses.MeanAbsolutePercentageError / MeanSquaredLogarithmicError docstrings (Keras 3):
    y_true = [[2., 1.], [2., 3.]], y_pred = [[1., 1.], [1., 0.]] -> 50.0 (MAPE);
    y_true = [[0., 1.], [0., 0.]], y_pred = [[1., 1.], [1., 0.]] -> 0.240 (MSLE), 0.120 with
    sample_weight=[0.7, 0.3] (the weighted per-sample means, summed over the batch, / 2)."""
    yp = np.array([[1.0, 1.0], [1.0, 0.0]])
    assert fl.mean_absolute_percentage_error(yp, np.array([[2.0, 1.0], [2.0, 3.0]])) == pytest.approx(50.0)
    yt = np.array([[0.0, 1.0], [0.0, 0.0]])
    assert round(fl.mean_squared_logarithmic_error(yp, yt), 3) == 0.240
    w = np.array([[0.7], [0.3]])
    assert round(fl.mean_squared_logarithmic_error(yp, yt, weight=w), 3) == 0.120


def test_spot_values_from_the_definitions():
    # pseudo-Huber (XGBoost): delta^2 (sqrt(1 + (z/delta)^2) - 1); z = 3, delta = 2: 4 (sqrt(13/4) - 1)
    assert fl.pseudo_huber_loss(np.array([3.0]), np.array([0.0]), delta=2.0) == pytest.approx(
        4 * (np.sqrt(13 / 4) - 1), rel=1e-15)
    # fair (LightGBM): c^2 (|z|/c - log(1 + |z|/c)); z = 2, c = 1: 2 - log 3
    assert fl.fair_loss(np.array([2.0]), np.array([0.0])) == pytest.approx(2 - np.log(3), rel=1e-15)
    # Cauchy (scipy least_squares, f_scale = 1): 0.5 log(1 + z^2); z = 2: 0.5 log 5
    assert fl.cauchy_loss(np.array([2.0]), np.array([0.0])) == pytest.approx(0.5 * np.log(5), rel=1e-15)
    # Tukey: c^2/6 (1 - (1 - (z/c)^2)^3); z = 1, c = 2: 4/6 (1 - 27/64)
    assert fl.tukey_biweight_loss(np.array([1.0]), np.array([0.0]), c=2.0) == pytest.approx(
        4 / 6 * (1 - 27 / 64), rel=1e-15)
    # expectile: tau r^2 / (1 - tau) r^2
    assert fl.expectile_loss(np.array([0.0, 0.0]), np.array([2.0, -2.0]), tau=0.8, reduction="none").tolist() \
        == pytest.approx([3.2, 0.8])
