"""The regression catalogue's kernels equal the NumPy reference.

Gamma and Tweedie deviances, pseudo-Huber, fair, Cauchy, Tukey's biweight,
expectile, Keras's MAPE and MSLE: float32 and float64, the three
reductions, no/elementwise/broadcast weights, 0-d, empty and 1-d/3-d shapes
around the 8192-element blocks; value, gradient (function and class),
``grad_hess`` against the reference Hessian.  Then thread-count
determinism, raw predictions of +-50, zero targets, huge and infinite
residuals, tiny residuals against mpmath, NaN propagation and hypothesis
properties.

Tolerances: each element's error is measured against a scale ``S`` of the
terms the loss adds up (e.g. ``|x| + y exp(-x)`` for the Gamma loss, whose
dropped constant makes the value cancel at its minimum); float64 within
1e-12 of it, float32 within 2e-5.
"""
import math
import zlib
from typing import NamedTuple

import numpy as np
import pytest

import fastloss as fl
from fastloss import _pointwise
from fastloss.reference import regression as R

F32, F64 = np.float32, np.float64
DTYPES = [F32, F64]
RTOL = {F32: 2e-5, F64: 1e-12}
TINY = {F32: 1e-37, F64: 1e-300}
REDUCTIONS = ["mean", "sum", "none"]
EPS = 1e-7  # Keras's

CLASSES = {
    "gamma_nll_loss": fl.GammaNLLLoss, "tweedie_loss": fl.TweedieLoss, "pseudo_huber_loss": fl.PseudoHuberLoss,
    "fair_loss": fl.FairLoss, "cauchy_loss": fl.CauchyLoss, "tukey_biweight_loss": fl.TukeyBiweightLoss,
    "expectile_loss": fl.ExpectileLoss, "mean_absolute_percentage_error": fl.MeanAbsolutePercentageError,
    "mean_squared_logarithmic_error": fl.MeanSquaredLogarithmicError,
}


class Cfg(NamedTuple):
    id: str
    name: str
    params: dict
    primary: bool = False


CONFIGS = [
    Cfg("gamma", "gamma_nll_loss", {}, True),
    Cfg("tweedie-1.5", "tweedie_loss", {"power": 1.5}, True),
    Cfg("tweedie-1.2", "tweedie_loss", {"power": 1.2}),
    Cfg("tweedie-1.9", "tweedie_loss", {"power": 1.9}),
    Cfg("tweedie-0", "tweedie_loss", {"power": 0.0}, True),
    Cfg("tweedie-1", "tweedie_loss", {"power": 1.0}, True),
    Cfg("tweedie-2", "tweedie_loss", {"power": 2.0}),
    Cfg("tweedie-3", "tweedie_loss", {"power": 3.0}),
    Cfg("tweedie--0.5", "tweedie_loss", {"power": -0.5}),
    Cfg("pseudo_huber-1", "pseudo_huber_loss", {"delta": 1.0}, True),
    Cfg("pseudo_huber-0.3", "pseudo_huber_loss", {"delta": 0.3}),
    Cfg("fair-1", "fair_loss", {"c": 1.0}, True),
    Cfg("fair-2.5", "fair_loss", {"c": 2.5}),
    Cfg("cauchy-1", "cauchy_loss", {"c": 1.0}, True),
    Cfg("cauchy-0.4", "cauchy_loss", {"c": 0.4}),
    Cfg("tukey-4.685", "tukey_biweight_loss", {"c": 4.685}, True),
    Cfg("tukey-1.5", "tukey_biweight_loss", {"c": 1.5}),
    Cfg("expectile-0.5", "expectile_loss", {"tau": 0.5}, True),
    Cfg("expectile-0.9", "expectile_loss", {"tau": 0.9}),
    Cfg("expectile-0.1", "expectile_loss", {"tau": 0.1}),
    Cfg("mape", "mean_absolute_percentage_error", {}, True),
    Cfg("msle", "mean_squared_logarithmic_error", {}, True),
]
PRIMARY = [c for c in CONFIGS if c.primary]

SHAPES_ALL = [(), (1,), (7,), (2, 3, 5), (0,), (3, 0, 4), (8191,), (8193,), (3 * 8192 + 5,)]
SHAPES_FEW = [(), (7,), (2, 3, 5), (0,), (8193,)]


def _seed(*parts):
    return zlib.crc32(repr(parts).encode())


# ------------------------------------------------------------------ data

def make_data(cfg, shape, dtype, rng, wkind=None):
    name, p = cfg.name, cfg.params
    tie = rng.random(shape) < 0.1
    if name == "gamma_nll_loss" or (name == "tweedie_loss" and p["power"] >= 2):
        x = np.clip(rng.normal(0.3, 1.5, shape), -8, 8)
        t = rng.gamma(2.0, np.exp(x) / 2.0)
        t = np.where(t > 0, t, 1e-3)
    elif name == "tweedie_loss":
        x = np.clip(rng.normal(0.3, 1.5, shape), -8, 8)
        if p["power"] > 0:  # compound Poisson-Gamma: exact zeros and positive amounts
            t = np.where(rng.random(shape) < 0.3, 0.0, rng.gamma(1.5, np.exp(x) / 1.5))
        else:
            t = np.exp(x) + rng.normal(0.0, 1.0, shape)
    elif name == "mean_absolute_percentage_error":
        t = rng.normal(0.0, 5.0, shape)
        t = np.where(rng.random(shape) < 0.1, 0.0, np.where(rng.random(shape) < 0.05, 3e-8, t))
        x = np.where(tie, t, t + rng.normal(0.0, 2.0, shape))
    elif name == "mean_squared_logarithmic_error":
        x = rng.uniform(-0.5, 10.0, shape)
        t = rng.uniform(-0.5, 10.0, shape)
        x = np.where(rng.random(shape) < 0.05, EPS, x)  # exactly at the clamp
    else:
        x = rng.normal(0.0, 2.0, shape)
        scale = p.get("c", p.get("delta", 1.0))
        d = rng.normal(0.0, 1.5 * scale, shape) * np.where(rng.random(shape) < 0.1, 20.0, 1.0)  # outliers
        t = np.where(tie, x, x - d)
    w = None
    if wkind == "full":
        w = np.asarray(rng.uniform(0.1, 2.0, shape), dtype=dtype)
    elif wkind == "bcast":
        w = np.asarray(rng.uniform(0.1, 2.0, shape[-1:]), dtype=dtype)
    return np.asarray(x, dtype=dtype), np.asarray(t, dtype=dtype), w


def call_fn(cfg, x, t, w, reduction, return_grad=False, n_threads=None):
    return getattr(fl, cfg.name)(x, t, **cfg.params, weight=w, reduction=reduction, return_grad=return_grad,
                                 n_threads=n_threads)


def make_obj(cfg, reduction, n_threads=None):
    return CLASSES[cfg.name](**cfg.params, reduction=reduction, n_threads=n_threads)


def call_ref(cfg, x, t, w, reduction):
    ref = R.REGRESSION[cfg.name]
    x64, t64 = np.asarray(x, np.float64), np.asarray(t, np.float64)
    wf = None if w is None else np.asarray(w, np.float64)
    return ref.fn(x64, t64, **cfg.params, weight=wf, reduction=reduction), \
        ref.hess(x64, t64, **cfg.params, weight=wf, reduction=reduction)


def scales(cfg, x, t):
    """Per-element magnitudes (S_loss, S_grad, S_hess) of the unweighted terms."""
    x, t = np.asarray(x, np.float64), np.asarray(t, np.float64)
    name, p = cfg.name, cfg.params
    (l, g), h = call_ref(cfg, x, t, None, "none")
    l, g, h = np.abs(l), np.abs(g), np.abs(h)
    one = np.ones_like(x)
    with np.errstate(all="ignore"):
        if name == "gamma_nll_loss" or (name == "tweedie_loss" and p["power"] == 2):
            r = t * np.exp(-x)
            return np.abs(x) + r, 1 + r, r
        if name == "tweedie_loss":
            pw, mu = p["power"], np.exp(x)
            if pw == 0:
                return (mu + np.abs(t)) ** 2, mu * (mu + np.abs(t)), mu * (2 * mu + np.abs(t))
            if pw == 1:
                return mu + np.abs(t * x), mu + t, mu
            a, b = 1 - pw, 2 - pw
            e1, e2 = np.exp(a * x), np.exp(b * x)
            return e2 / abs(b) + np.abs(t) * e1 / abs(a), e2 + np.abs(t) * e1, abs(b) * e2 + abs(a) * np.abs(t) * e1
        if name == "mean_absolute_percentage_error":
            return l, 100 / np.maximum(np.abs(t), EPS), one
        if name == "mean_squared_logarithmic_error":
            L = np.abs(np.log1p(np.maximum(x, EPS))) + np.abs(np.log1p(np.maximum(t, EPS)))
            r = 1 / (1 + np.maximum(x, EPS))
            return L * L, 2 * L * r, 2 * (1 + L) * r * r
        c = p.get("c", p.get("delta", 1.0))
        if name == "fair_loss":  # the reference's a - log1p(a) cancels for tiny a
            return l + 1e-4 * c * np.abs(x - t), g, h
        if name == "tukey_biweight_loss":  # the reference's 1 - u^3 cancels for tiny z
            return l + 1e-4 * c * c, g + np.abs(x - t), np.maximum(h, 1.0)
        if name == "cauchy_loss":
            return l, g, np.maximum(h, 1.0)
        return l, g, h


def assert_close(got, ref, tol, what):
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    nan_r, nan_g = np.isnan(ref), np.isnan(got)
    if not np.array_equal(nan_r, nan_g):
        i = np.flatnonzero(nan_r.ravel() != nan_g.ravel())[0]
        raise AssertionError(f"{what}: NaN mismatch at flat index {i}: got {got.ravel()[i]!r}, "
                             f"expected {ref.ravel()[i]!r}")
    inf_r = np.isinf(ref)
    if inf_r.any() or np.isinf(got).any():
        np.testing.assert_array_equal(got[inf_r | np.isinf(got)], ref[inf_r | np.isinf(got)], err_msg=what)
    ok = nan_r | inf_r
    with np.errstate(invalid="ignore"):
        err = np.where(ok, 0.0, np.abs(got - ref))
        bad = err > np.broadcast_to(tol, err.shape)
    if bad.any():
        i = np.flatnonzero(bad.ravel())[0]
        tt = np.broadcast_to(tol, err.shape).ravel()[i]
        raise AssertionError(f"{what}: {bad.sum()} of {bad.size} elements off; first at flat index {i}: "
                             f"got {got.ravel()[i]!r}, expected {ref.ravel()[i]!r}, |err| = {err.ravel()[i]:.3g}"
                             f" > tol {tt:.3g}")


def _in_range(ref, dt):
    """The reference, with values beyond dt's range as the +-inf that dt rounds them to."""
    if not isinstance(ref, np.ndarray) or dt == F64:
        return ref
    with np.errstate(over="ignore"):
        big = np.isinf(ref.astype(dt)) & np.isfinite(ref)
    return np.where(big, np.copysign(np.inf, ref), ref)


class Expect:
    def __init__(self, cfg, x, t, w, reduction, S=None):
        dt = x.dtype.type
        self.dtype, self.reduction = dt, reduction
        (v, g), h = call_ref(cfg, x, t, w, reduction)
        self.value, self.grad, self.hess = _in_range(v, dt), _in_range(g, dt), _in_range(h, dt)
        sl, sg, sh = scales(cfg, x, t) if S is None else S
        n = x.size
        wabs = np.ones(x.shape) if w is None else np.abs(np.broadcast_to(np.asarray(w, np.float64), x.shape))
        scale = 1.0 / n if (reduction == "mean" and n) else 1.0
        rt, tiny = RTOL[dt], TINY[dt]
        el = rt * wabs * sl
        self.tol_value = el + tiny if reduction == "none" else (el.sum() + tiny) * scale
        self.tol_grad = rt * wabs * sg * scale + tiny
        self.tol_hess = rt * wabs * sh * scale + tiny

    def check_value(self, v, what):
        if self.reduction == "none":
            assert isinstance(v, np.ndarray) and v.dtype == self.dtype, f"{what}: {type(v)}"
        else:
            assert isinstance(v, float), f"{what}: value is {type(v).__name__}, not float"
        assert_close(v, self.value, self.tol_value, what)

    def check_grad(self, g, what):
        assert isinstance(g, np.ndarray) and g.dtype == self.dtype, f"{what}: grad dtype {g.dtype}"
        assert_close(g, self.grad, self.tol_grad, what)

    def check_hess(self, h, what):
        assert isinstance(h, np.ndarray) and h.dtype == self.dtype, f"{what}: hess dtype {h.dtype}"
        assert_close(h, self.hess, self.tol_hess, what)


def _same(a, b, what):
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape, what
        assert a.tobytes() == b.tobytes(), what
    else:
        assert isinstance(b, float), what
        assert (math.isnan(a) and math.isnan(b)) or a == b, f"{what}: {a!r} != {b!r}"


def _check_all(cfg, x, t, w, reduction, n_threads=None, classes=True, S=None):
    tag = f"{cfg.id} {x.dtype} {x.shape} w={'no' if w is None else w.shape} {reduction}"
    e = Expect(cfg, x, t, w, reduction, S)
    v0 = call_fn(cfg, x, t, w, reduction, n_threads=n_threads)
    e.check_value(v0, f"{tag}: value")
    v1, g1 = call_fn(cfg, x, t, w, reduction, return_grad=True, n_threads=n_threads)
    e.check_value(v1, f"{tag}: value (return_grad)")
    e.check_grad(g1, f"{tag}: grad (return_grad)")
    if not classes:
        return
    obj = make_obj(cfg, reduction, n_threads)
    _same(obj(x, t, weight=w), v0, f"{tag}: class value == function value")
    v2, g2 = obj.value_and_grad(x, t, weight=w)
    _same(v2, v1, f"{tag}: class value_and_grad value")
    _same(g2, g1, f"{tag}: class value_and_grad grad")
    g, h = obj.grad_hess(x, t, weight=w)
    e.check_grad(g, f"{tag}: grad (grad_hess)")
    e.check_hess(h, f"{tag}: hess (grad_hess)")


def _matrix():
    out = []
    for cfg in CONFIGS:
        for shape in (SHAPES_ALL if cfg.primary else SHAPES_FEW):
            for wkind in [None, "full"] + (["bcast"] if len(shape) >= 2 else []):
                for dt in DTYPES:
                    out.append(pytest.param(cfg, dt, shape, wkind,
                                            id=f"{cfg.id}-{np.dtype(dt).name}-{'x'.join(map(str, shape)) or '0d'}"
                                               f"-w{wkind}"))
    return out


@pytest.mark.parametrize("cfg, dtype, shape, wkind", _matrix())
def test_kernel_matches_reference(cfg, dtype, shape, wkind):
    rng = np.random.default_rng(_seed(cfg.id, shape, wkind))
    x, t, w = make_data(cfg, shape, dtype, rng, wkind)
    S = scales(cfg, x, t)
    for reduction in REDUCTIONS:
        _check_all(cfg, x, t, w, reduction, S=S)


@pytest.mark.parametrize("cfg", PRIMARY, ids=[c.id for c in PRIMARY])
def test_empty_input(cfg):
    for dt in DTYPES:
        x, t, w = make_data(cfg, (3, 0), dt, np.random.default_rng(0), "full")
        v, g = call_fn(cfg, x, t, w, "mean", return_grad=True)
        assert isinstance(v, float) and math.isnan(v)
        assert g.shape == (3, 0) and g.dtype == dt
        assert call_fn(cfg, x, t, w, "sum") == 0.0


# ------------------------------------------------------------------ threads

@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("cfg", PRIMARY, ids=[c.id for c in PRIMARY])
def test_deterministic_across_threads(cfg, dtype, parallel_always):
    rng = np.random.default_rng(_seed("det", cfg.id))
    x, t, w = make_data(cfg, (50, 1001), dtype, rng, "full")
    for reduction in ("sum", "none"):
        base = None
        for nt in (1, 2, 3):
            v = call_fn(cfg, x, t, w, reduction, n_threads=nt)
            res = call_fn(cfg, x, t, w, reduction, return_grad=True, n_threads=nt)
            gh = make_obj(cfg, reduction, nt).grad_hess(x, t, weight=w) if reduction == "sum" else ()
            got = (v,) + tuple(res) + tuple(gh)
            if base is None:
                base = got
                continue
            for a, b in zip(got, base):
                _same(a, b, f"{cfg.id} {np.dtype(dtype).name} {reduction}: n_threads={nt} vs 1")
    _check_all(cfg, x, t, w, "sum", n_threads=2, classes=False)


# ------------------------------------------------------------------ extremes

@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("cfg", [c for c in CONFIGS if c.name in ("gamma_nll_loss", "tweedie_loss")],
                         ids=lambda c: c.id)
def test_raw_predictions_of_50(cfg, dtype):
    """Raw predictions of +-50 (exp(50) = 5e21), with zero targets where the power allows them."""
    p = cfg.params.get("power", 2.0)
    xs = [50.0, -50.0, 50.0, -50.0, 30.0, -30.0, 0.0]
    ts = [1.0, 1.0, 3e21, 2e-22, 1e13, 1e-13, 1.0]
    if 0 < p < 2 or p <= 0:
        xs += [50.0, -50.0, 0.0]
        ts += [0.0, 0.0, 0.0]
    if dtype == F32 and not 1 <= p <= 2:
        # outside [1, 2] one of exp((1-p) x), exp((2-p) x) overflows float32 at +-50 before its product
        # with the target: the loss is computed as float32 terms (documented); +-30 stays in range
        xs = [0.6 * v for v in xs]
    x, t = np.array(xs, dtype), np.array(ts, dtype)
    v, g = call_fn(cfg, x, t, None, "none", return_grad=True)
    _, h = make_obj(cfg, "none").grad_hess(x, t)
    if (1 <= p <= 2) or dtype == F64:  # p = 0, 3, -0.5 in float32: exp(2 x) or exp(-2 x) beyond float32
        assert np.all(np.isfinite(v)) and np.all(np.isfinite(g)) and np.all(np.isfinite(h)), (v, g, h)
    _check_all(cfg, x, t, None, "none")


def test_tweedie_and_poisson_zero_targets_exact():
    """y = 0: Tweedie is exp((2-p) x)/(2-p) with gradient exp((2-p) x); p = 1 is exp(x)."""
    for dt in DTYPES:
        x = np.array([-50.0, -1.0, 0.0, 2.0, 50.0], dt)
        z = np.zeros(5, dt)
        for p in (1.0, 1.3, 1.5, 1.99):
            v, g = fl.tweedie_loss(x, z, power=p, reduction="none", return_grad=True)
            e = np.exp((2 - p) * x.astype(np.float64))
            np.testing.assert_allclose(v, e / (2 - p), rtol=4 * np.finfo(dt).eps * 50)
            np.testing.assert_allclose(g, e, rtol=4 * np.finfo(dt).eps * 50)
        v, g = fl.poisson_nll_loss(x, z, reduction="none", return_grad=True)
        v2, g2 = fl.tweedie_loss(x, z, power=1.0, reduction="none", return_grad=True)
        # the same formula; exp may come from a vector or a scalar path (1 ulp)
        np.testing.assert_allclose(v2, v, rtol=2 * np.finfo(dt).eps, atol=0)
        np.testing.assert_allclose(g2, g, rtol=2 * np.finfo(dt).eps, atol=0)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_huge_and_infinite_residuals(dtype):
    """Robust losses at |z| = 1e30 and inf: the asymptotic value (or inf) and finite limiting gradients."""
    big = 1e30
    x = np.array([big, -big, np.inf, -np.inf], dtype)
    t = np.zeros(4, dtype)
    rt = 8 * np.finfo(dtype).eps
    tag = np.dtype(dtype).name

    def check(loss, ev, eg, eh):
        v, g = loss.value_and_grad(x, t)
        _, h = loss.grad_hess(x, t)
        for got, e_, nm in ((v, ev, "value"), (g, eg, "grad"), (h, eh, "hess")):
            e_ = np.asarray(e_, np.float64)
            with np.errstate(over="ignore", under="ignore"):
                e_ = e_.astype(dtype).astype(np.float64)  # what the dtype holds: inf on overflow, 0 on underflow
            assert_close(got, e_, rt * np.abs(np.where(np.isfinite(e_), e_, 0)) + 1e-300,
                         f"{type(loss).__name__} {tag}: {nm}")

    inf = np.inf
    for d in (1.0, 0.5):
        # pseudo-Huber: delta |z| - delta^2 (to rounding), gradient +-delta, Hessian ~ 0
        check(fl.PseudoHuberLoss(delta=d, reduction="none"), [d * big - d * d, d * big - d * d, inf, inf],
              [d, -d, d, -d], [(d / big) ** 3, (d / big) ** 3, 0, 0])
        # fair: c |z| - c^2 log(1 + |z|/c), gradient +-c
        fv = d * big - d * d * math.log1p(big / d)
        check(fl.FairLoss(c=d, reduction="none"), [fv, fv, inf, inf], [d, -d, d, -d],
              [(d / big) ** 2, (d / big) ** 2, 0, 0])
        # Cauchy: c^2 log(|z|/c), gradient c^2 / z, Hessian -c^2/z^2 (0 in float32 and float64 at 1e30... -1e-60)
        cv = d * d * math.log(big / d)
        check(fl.CauchyLoss(c=d, reduction="none"), [cv, cv, inf, inf], [d * d / big, -d * d / big, 0, 0],
              [-(d / big) ** 2, -(d / big) ** 2, 0, 0])
        # Tukey: the constant c^2/6 and zero gradient beyond c
        check(fl.TukeyBiweightLoss(c=d, reduction="none"), [d * d / 6] * 4, [0] * 4, [0] * 4)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_tiny_residuals_against_mpmath(dtype):
    """Where the textbook formulas cancel (delta^2 (sqrt(1 + a^2) - 1), a - log1p(a), 1 - (1 - s)^3),
    the kernels keep their relative precision: against mpmath at 50 digits."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 200  # 1 + 1e-60 must not round
    z = np.array([1e-30, 3e-12, 1e-6, 2e-3, 0.1, 0.49, 0.51, 0.9, 1.7, 3.0], dtype)
    zero = np.zeros_like(z)
    c = 1.3
    exact = {
        "pseudo_huber": lambda a: c * c * (mp.sqrt(1 + (a / c) ** 2) - 1),
        "fair": lambda a: c * c * (a / c - mp.log(1 + a / c)),
        "cauchy": lambda a: c * c / 2 * mp.log(1 + (a / c) ** 2),
        "tukey": lambda a: c * c / 6 * (1 - (1 - (a / c) ** 2) ** 3) if a <= c else mp.mpf(c * c / 6),
    }
    losses = {"pseudo_huber": fl.PseudoHuberLoss(delta=c, reduction="none"),
              "fair": fl.FairLoss(c=c, reduction="none"), "cauchy": fl.CauchyLoss(c=c, reduction="none"),
              "tukey": fl.TukeyBiweightLoss(c=c, reduction="none")}
    rt = {F32: 8 * 2.0 ** -24, F64: 16 * 2.0 ** -53}[dtype]
    for name, loss in losses.items():
        v = loss(z, zero)
        ev = np.array([float(exact[name](mp.mpf(float(a)))) for a in z])
        ev = ev.astype(dtype).astype(np.float64)  # what the dtype can hold (0 where it underflows)
        assert_close(v, ev, rt * np.abs(ev) + 2 * np.finfo(dtype).smallest_subnormal, f"{name} {dtype.__name__}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_msle_clamp_and_small_values(dtype):
    x = np.array([-3.0, 0.0, EPS, 1e-5, 0.5, 1e30], dtype)
    t = np.array([0.0, 2.0, 3.0, 1e-5, 0.5, 1e30], dtype)
    v, g = fl.mean_squared_logarithmic_error(x, t, reduction="none", return_grad=True)
    assert g[0] == 0 and g[1] == 0           # clamped inputs: no gradient
    assert g[2] != 0                          # at the clamp, the gradient passes
    assert v[0] == 0 and v[3] == 0 and v[4] == 0
    e = float(np.log1p(np.float64(dtype(EPS))) - np.log1p(2.0)) ** 2
    assert v[1] == pytest.approx(e, rel=1e-6)
    assert np.isfinite(v[5]) and v[5] == 0


def test_mape_keras_conventions():
    for dt in DTYPES:
        x = np.array([1.0, 5.0, 2.0, 0.0], dt)
        t = np.array([0.0, 5.0, -4.0, 1e-9], dt)
        v, g = fl.mean_absolute_percentage_error(x, t, reduction="none", return_grad=True)
        m = np.maximum(np.abs(t.astype(np.float64)), np.float64(dt(EPS)))
        np.testing.assert_allclose(v, 100 * np.abs(t - x.astype(np.float64)) / m, rtol=4 * np.finfo(dt).eps)
        assert g[1] == 0   # sign(0) = 0
        np.testing.assert_allclose(g[[0, 2, 3]], (100 * np.sign(x - t) / m)[[0, 2, 3]], rtol=4 * np.finfo(dt).eps)


# ------------------------------------------------------------------ NaN

@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("cfg", PRIMARY, ids=[c.id for c in PRIMARY])
def test_nan_propagates(cfg, dtype):
    rng = np.random.default_rng(_seed("nan", cfg.id))
    x, t, w = make_data(cfg, (3, 4), dtype, rng, "full")
    for which in ("input", "target"):
        xx, tt = x.copy(), t.copy()
        (xx if which == "input" else tt)[1, 2] = np.nan
        for reduction in ("mean", "sum"):
            assert math.isnan(call_fn(cfg, xx, tt, w, reduction)), f"{cfg.id} {which} {reduction}"
            v, g = call_fn(cfg, xx, tt, w, reduction, return_grad=True)
            assert math.isnan(v)
        v = call_fn(cfg, xx, tt, w, "none")
        assert np.isnan(v[1, 2])
        mask = np.ones(x.shape, bool)
        mask[1, 2] = False
        assert np.all(np.isfinite(v[mask]))
        if which == "input":
            _, g = call_fn(cfg, xx, tt, w, "none", return_grad=True)
            assert np.isnan(g[1, 2]), f"{cfg.id}: NaN input must reach the gradient"


# ------------------------------------------------------------------ properties

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402


@st.composite
def _problems(draw):
    cfg = draw(st.sampled_from(CONFIGS))
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(st.one_of(st.lists(st.integers(0, 6), min_size=0, max_size=3).map(tuple),
                           st.integers(1, 20000).map(lambda n: (n,))))
    wkind = draw(st.sampled_from([None, "full"] + (["bcast"] if len(shape) >= 1 else [])))
    reduction = draw(st.sampled_from(REDUCTIONS))
    nt = draw(st.sampled_from([None, 1, 2]))
    parallel = draw(st.booleans())
    seed = draw(st.integers(0, 2 ** 32 - 1))
    return cfg, dtype, shape, wkind, reduction, nt, parallel, seed


@settings(max_examples=30, deadline=None)
@given(_problems())
def test_property_kernel_matches_reference(problem):
    cfg, dtype, shape, wkind, reduction, nt, parallel, seed = problem
    x, t, w = make_data(cfg, shape, dtype, np.random.default_rng(seed), wkind)
    old = _pointwise.set_parallel_threshold(0 if parallel else 65536)
    try:
        _check_all(cfg, x, t, w, reduction, n_threads=nt)
    finally:
        _pointwise.set_parallel_threshold(old)


# ------------------------------------------------------------------ the array contract

@pytest.mark.parametrize("cfg", PRIMARY, ids=[c.id for c in PRIMARY])
def test_array_contract(cfg):
    """The driver's rules hold for the new losses too: dtype policy, no hidden copies, out= is returned,
    non-contiguous and read-only inputs, inputs never modified."""
    rng = np.random.default_rng(_seed("contract", cfg.id))
    x, t, _ = make_data(cfg, (6, 8), F64, rng)
    ref_v, ref_g = call_fn(cfg, x, t, None, "sum", return_grad=True)
    # integers become float64; float16 becomes float32 (and float32 stays float32)
    xi = np.round(x).astype(np.int64)
    _, g = call_fn(cfg, xi, t, None, "sum", return_grad=True)
    assert g.dtype == F64
    _, g = call_fn(cfg, x.astype(np.float16), t, None, "sum", return_grad=True)
    assert g.dtype == F32
    # out= is the returned gradient; float32 in, float32 out
    x32, t32 = x.astype(F32), t.astype(F32)
    out = np.full(x.shape, np.nan, F32)
    v, g = getattr(fl, cfg.name)(x32, t32, **cfg.params, return_grad=True, out=out)
    assert g is out and isinstance(v, float)
    # non-contiguous and read-only inputs give the contiguous results; nothing is modified
    xs, ts = np.asfortranarray(x), t[:, ::1].copy()
    xs.flags.writeable = False
    ts.flags.writeable = False
    xc, tc = x.copy(), t.copy()
    v2, g2 = call_fn(cfg, xs, ts, None, "sum", return_grad=True)
    assert v2 == pytest.approx(ref_v, rel=1e-15, abs=1e-300) and np.array_equal(g2, ref_g)
    v3, g3 = call_fn(cfg, x[:, ::2], t[:, ::2], None, "none", return_grad=True)
    v4, g4 = call_fn(cfg, np.ascontiguousarray(x[:, ::2]), np.ascontiguousarray(t[:, ::2]), None, "none",
                     return_grad=True)
    assert np.array_equal(v3, v4) and np.array_equal(g3, g4)
    assert np.array_equal(x, xc) and np.array_equal(t, tc)
    # the class keeps its parameters and shows them
    obj = make_obj(cfg, "sum")
    for k, val in cfg.params.items():
        assert getattr(obj, k) == val and f"{k}={val!r}" in repr(obj)
