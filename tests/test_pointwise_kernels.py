"""The pointwise kernels equal the NumPy reference.

Every loss and parameter setting, float32 and float64, the three
reductions, no/elementwise/broadcast weights, 0-d, empty and 1-d/3-d
shapes around the 8192-element blocks: value, gradient (``return_grad``
and ``value_and_grad``), ``grad_hess`` against the reference Hessian, the
classes against the functions.  Then thread-count determinism, extreme
inputs, NaN propagation and hypothesis property tests.

Tolerances: each element's error is measured against a scale ``S`` of the
terms the loss adds up (e.g. ``exp(x) + |t x|`` for the Poisson loss, so
an exact cancellation is not held to a relative error); float64 must be
within 1e-12 of that scale, float32 within 2e-5.  A sum is held to the sum
of its elements' tolerances.
"""
import math
import zlib
from typing import NamedTuple, Optional

import numpy as np
import pytest

import fastloss as fl
from fastloss import _pointwise
from fastloss.reference import pointwise as R

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

F32, F64 = np.float32, np.float64
DTYPES = [F32, F64]
RTOL = {F32: 2e-5, F64: 1e-12}
TINY = {F32: 1e-37, F64: 1e-300}
REDUCTIONS = ["mean", "sum", "none"]

CLASSES = {
    "mse_loss": fl.MSELoss, "l1_loss": fl.L1Loss, "huber_loss": fl.HuberLoss,
    "smooth_l1_loss": fl.SmoothL1Loss, "log_cosh_loss": fl.LogCoshLoss, "quantile_loss": fl.QuantileLoss,
    "poisson_nll_loss": fl.PoissonNLLLoss, "gaussian_nll_loss": fl.GaussianNLLLoss,
    "binary_cross_entropy": fl.BCELoss, "binary_cross_entropy_with_logits": fl.BCEWithLogitsLoss,
    "sigmoid_focal_loss": fl.SigmoidFocalLoss, "hinge_loss": fl.HingeLoss,
    "squared_hinge_loss": fl.SquaredHingeLoss, "soft_margin_loss": fl.SoftMarginLoss,
}


class Cfg(NamedTuple):
    id: str
    name: str
    params: dict
    var: Optional[str] = None      # gaussian: "same", "fewer", "bcast", "scalar"
    pw: Optional[str] = None       # bce_logits pos_weight: None, "C", "scalar", "one", "full"
    targets: str = "default"
    primary: bool = False          # run on every shape


CONFIGS = [
    Cfg("mse", "mse_loss", {}, primary=True),
    Cfg("l1", "l1_loss", {}, primary=True),
    Cfg("huber-1", "huber_loss", {"delta": 1.0}, primary=True),
    Cfg("huber-0.3", "huber_loss", {"delta": 0.3}),
    Cfg("huber-2.5", "huber_loss", {"delta": 2.5}),
    Cfg("smooth_l1-1", "smooth_l1_loss", {"beta": 1.0}, primary=True),
    Cfg("smooth_l1-0", "smooth_l1_loss", {"beta": 0.0}),
    Cfg("smooth_l1-0.4", "smooth_l1_loss", {"beta": 0.4}),
    Cfg("log_cosh", "log_cosh_loss", {}, primary=True),
    Cfg("quantile-0.5", "quantile_loss", {"quantile": 0.5}, primary=True),
    Cfg("quantile-0.1", "quantile_loss", {"quantile": 0.1}),
    Cfg("quantile-0.9", "quantile_loss", {"quantile": 0.9}),
    Cfg("poisson-log", "poisson_nll_loss", {"log_input": True, "full": False, "eps": 1e-8}, primary=True),
    Cfg("poisson-log-full", "poisson_nll_loss", {"log_input": True, "full": True, "eps": 1e-8}),
    Cfg("poisson", "poisson_nll_loss", {"log_input": False, "full": False, "eps": 1e-8}, primary=True),
    Cfg("poisson-full-eps", "poisson_nll_loss", {"log_input": False, "full": True, "eps": 1e-3}),
    Cfg("gaussian-same", "gaussian_nll_loss", {"full": False, "eps": 1e-6}, var="same", primary=True),
    Cfg("gaussian-fewer-full", "gaussian_nll_loss", {"full": True, "eps": 1e-6}, var="fewer", primary=True),
    Cfg("gaussian-bcast-eps", "gaussian_nll_loss", {"full": False, "eps": 0.1}, var="bcast"),
    Cfg("gaussian-scalar", "gaussian_nll_loss", {"full": True, "eps": 1e-6}, var="scalar"),
    Cfg("bce", "binary_cross_entropy", {}, primary=True),
    Cfg("bce_logits", "binary_cross_entropy_with_logits", {}, primary=True),
    Cfg("bce_logits-pwC", "binary_cross_entropy_with_logits", {}, pw="C", primary=True),
    Cfg("bce_logits-pw-scalar", "binary_cross_entropy_with_logits", {}, pw="scalar"),
    Cfg("bce_logits-pw-one", "binary_cross_entropy_with_logits", {}, pw="one"),
    Cfg("bce_logits-pw-full", "binary_cross_entropy_with_logits", {}, pw="full"),
] + [
    Cfg(f"focal-a{a}-g{g}", "sigmoid_focal_loss", {"alpha": a, "gamma": g}, primary=(a, g) == (0.25, 2.0))
    for a, g in [(0.25, 0.0), (0.25, 0.5), (0.25, 1.0), (0.25, 2.0), (0.25, 3.5),
                 (-1.0, 2.0), (-0.5, 0.5), (0.0, 1.0), (1.0, 3.5), (0.75, 0.5)]
] + [
    Cfg("hinge", "hinge_loss", {}, primary=True),
    Cfg("squared_hinge", "squared_hinge_loss", {}, primary=True),
    Cfg("soft_margin", "soft_margin_loss", {}, primary=True),
    Cfg("soft_margin-general", "soft_margin_loss", {}, targets="general"),
]
PRIMARY = [c for c in CONFIGS if c.primary]

SHAPES_ALL = [(), (1,), (7,), (2, 3, 5), (0,), (3, 0, 4), (8191,), (8192,), (8193,), (3 * 8192 + 5,),
              (4, 5, 411)]
SHAPES_FEW = [(), (7,), (2, 3, 5), (0,), (8193,)]


def _seed(*parts):
    return zlib.crc32(repr(parts).encode())


# ------------------------------------------------------------------ data

def _bin_or_frac(rng, shape):
    t = rng.uniform(0.0, 1.0, shape)
    return np.where(rng.random(shape) < 0.5, np.round(t), t)


def _pm1(rng, shape):
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0)


def make_data(cfg, shape, dtype, rng, wkind=None):
    """(x, t, extra, w) in dtype; extra holds var or pos_weight."""
    name, extra = cfg.name, {}
    tie = rng.random(shape) < 0.1
    if name in ("mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "log_cosh_loss", "quantile_loss"):
        x = rng.normal(0.0, 2.0, shape)
        t = np.where(tie, x, rng.normal(0.0, 2.0, shape))
    elif name == "poisson_nll_loss":
        t = rng.poisson(3.0, shape).astype(np.float64)
        t = np.where(rng.random(shape) < 0.2, t + rng.uniform(0.0, 1.0, shape), t)
        if cfg.params["log_input"]:
            x = np.clip(rng.normal(0.5, 1.5, shape), -6, 6)
        else:
            x = rng.uniform(0.01, 6.0, shape)
    elif name == "gaussian_nll_loss":
        x, t = rng.normal(0.0, 1.5, shape), rng.normal(0.0, 1.5, shape)
        kind = cfg.var
        if len(shape) == 0 and kind in ("fewer", "bcast"):
            kind = "same"
        vshape = {"same": shape, "fewer": shape[:-1], "scalar": (),
                  "bcast": (1,) * (len(shape) - 1) + shape[-1:] if len(shape) else ()}[kind]
        var = rng.uniform(0.05, 3.0, vshape)
        if cfg.params["eps"] >= 0.01:  # some variances below eps, some exactly 0
            low = rng.random(vshape) < 0.3
            var = np.where(low, np.where(rng.random(vshape) < 0.3, 0.0, rng.uniform(0, 0.1, vshape)), var)
        extra["var"] = np.asarray(var, dtype=dtype)
    elif name == "binary_cross_entropy":
        x = rng.uniform(0.002, 0.998, shape)
        t = _bin_or_frac(rng, shape)
    elif name in ("binary_cross_entropy_with_logits", "sigmoid_focal_loss"):
        x = rng.normal(0.0, 4.0, shape)
        t = _bin_or_frac(rng, shape)
        if cfg.pw is not None:
            c = shape[-1] if shape else 1
            pshape = {"C": (c,), "scalar": (), "one": (1,), "full": shape}[cfg.pw]
            extra["pos_weight"] = np.asarray(rng.uniform(0.3, 3.0, pshape), dtype=dtype)
    elif name in ("hinge_loss", "squared_hinge_loss"):
        t = _pm1(rng, shape)
        x = np.where(tie, t, rng.normal(0.0, 1.5, shape))  # ties: margin exactly 0
    elif name == "soft_margin_loss":
        t = rng.normal(0.0, 1.5, shape) if cfg.targets == "general" else _pm1(rng, shape)
        x = rng.normal(0.0, 4.0, shape)
    else:
        raise AssertionError(name)
    w = None
    if wkind == "full":
        w = np.asarray(rng.uniform(0.1, 2.0, shape), dtype=dtype)
    elif wkind == "bcast":
        w = np.asarray(rng.uniform(0.1, 2.0, shape[-1:]), dtype=dtype)
    return np.asarray(x, dtype=dtype), np.asarray(t, dtype=dtype), extra, w


# ------------------------------------------------------------------ calls

def _args(cfg, x, t, extra):
    return (x, t, extra["var"]) if cfg.name == "gaussian_nll_loss" else (x, t)


def call_fn(cfg, x, t, extra, w, reduction, return_grad=False, n_threads=None):
    kw = dict(cfg.params)
    if "pos_weight" in extra:
        kw["pos_weight"] = extra["pos_weight"]
    return getattr(fl, cfg.name)(*_args(cfg, x, t, extra), **kw, weight=w, reduction=reduction,
                                 return_grad=return_grad, n_threads=n_threads)


def make_obj(cfg, extra, reduction, n_threads=None):
    kw = dict(cfg.params)
    if "pos_weight" in extra:
        kw["pos_weight"] = extra["pos_weight"]
    return CLASSES[cfg.name](**kw, reduction=reduction, n_threads=n_threads)


def call_ref(cfg, x, t, extra, w, reduction):
    ref = R.POINTWISE[cfg.name]
    kw = dict(cfg.params)
    if "pos_weight" in extra:
        kw["pos_weight"] = extra["pos_weight"]
    f64 = {k: (np.asarray(v, dtype=np.float64) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    args = tuple(np.asarray(a, dtype=np.float64) for a in _args(cfg, x, t, extra))
    wf = None if w is None else np.asarray(w, dtype=np.float64)
    out = ref.fn(*args, **f64, weight=wf, reduction=reduction)
    hess = ref.hess(*args, **f64, weight=wf, reduction=reduction)
    return out, hess


# ------------------------------------------------------------------ tolerances

def _sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _stir(t):
    """Magnitudes of the terms of Stirling's t log t - t + 0.5 log(2 pi t), for t > 1."""
    ts = np.where(t > 1, t, 2.0)
    return np.where(t > 1, ts * np.log(ts) + ts + 0.5 * np.log(2 * np.pi * ts), 0.0)


def scales(cfg, x, t, extra):
    """Per-element magnitudes (S_loss, S_grad, S_hess, S_gradvar) of the unweighted terms."""
    x, t = np.asarray(x, np.float64), np.asarray(t, np.float64)
    name, p = cfg.name, cfg.params
    one = np.ones_like(x)
    (l, g, *_), h = call_ref(cfg, x, t, extra, None, "none")
    l, g, h = np.abs(l), np.abs(g), np.abs(h)
    with np.errstate(all="ignore"):
        if name == "poisson_nll_loss":
            st_ = _stir(t) if p["full"] else 0.0
            if p["log_input"]:
                ex = np.exp(x)
                return ex + np.abs(t * x) + st_, ex + t, ex, None
            xe = x + p["eps"]
            return np.abs(x) + np.abs(t * np.log(xe)) + st_, 1 + t / xe, t / xe ** 2, None
        if name == "gaussian_nll_loss":
            var = np.asarray(extra["var"], np.float64)
            if var.shape != x.shape and x.ndim and var.shape == x.shape[:-1]:
                var = var[..., None]
            v = np.maximum(np.broadcast_to(var, x.shape), p["eps"])
            d2 = (x - t) ** 2
            return np.abs(np.log(v)) + d2 / v + 1.0, np.sqrt(d2) / v, 1 / v, 1 / v + d2 / v ** 2
        if name == "binary_cross_entropy":
            return l, t / x + (1 - t) / (1 - x), h, None
        if name in ("binary_cross_entropy_with_logits", "sigmoid_focal_loss", "soft_margin_loss"):
            if name == "soft_margin_loss":   # softplus(-t x): a logistic loss of z = t x, label 1
                z, y, pw = t * x, one, one
            else:
                z, y = x, t
                pw = np.asarray(extra.get("pos_weight", 1.0), np.float64)
                pw = np.broadcast_to(pw.reshape(()) if x.ndim == 0 else pw, x.shape)
            pp, qq = _sigmoid(z), _sigmoid(-z)
            ce = np.where(y == 0, 0, pw * y * np.logaddexp(0, -z)) + np.where(y == 1, 0, (1 - y) * np.logaddexp(0, z))
            if name != "sigmoid_focal_loss":  # the terms (1 - y) p and pw y q of the gradient
                c = (1 - y) * pp + pw * y * qq
                return l, c * np.abs(t) if name == "soft_margin_loss" else c, h, None
            a, gm = p["alpha"], p["gamma"]
            at = np.abs(a * t + (1 - a) * (1 - t)) if a >= 0 else one
            m = pp * (1 - t) + qq * t
            M = m ** gm
            r = np.where(m > 0, pp * qq / np.where(m > 0, m, 1), 0)
            u = np.abs(1 - 2 * t)
            mp = gm * M * r * u
            mpp = gm * abs(gm - 1) * M * r * r * u * u + gm * M * r * u
            sg = at * ((pp + t) * M + np.where(mp == 0, 0, ce * mp))
            sh = at * (pp * qq * M + 2 * (pp + t) * mp + np.where(mpp == 0, 0, ce * mpp))
            return l, sg, sh, None
        if name in ("l1_loss", "quantile_loss", "hinge_loss"):
            return l, one, one, None
        if name == "smooth_l1_loss" and p["beta"] > 0:
            return l, g, one / p["beta"], None
        if name == "squared_hinge_loss":
            return l, g, 2 * one, None
        if name == "mse_loss":
            return l, g, 2 * one, None
        return l, g, np.maximum(h, 1.0) if name == "huber_loss" else h, None  # log_cosh: relative


def _sum_to(a, xshape, vshape):
    """Sum an array of input's shape back to var's (broadcast) shape."""
    vb = vshape
    if vshape != xshape and len(xshape) and vshape == xshape[:-1]:
        vb = vshape + (1,)
    lead = len(xshape) - len(vb)
    a = a.sum(axis=tuple(range(lead))) if lead else a
    axes = tuple(i for i in range(len(vb)) if vb[i] == 1 and xshape[lead + i] != 1)
    if axes:
        a = a.sum(axis=axes, keepdims=True)
    return a.reshape(vshape)


def assert_close(got, ref, tol, what):
    """Elementwise |got - ref| <= tol, with NaN and inf where the reference has them."""
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
    """Reference results and tolerances for one (cfg, data, weight, reduction)."""

    def __init__(self, cfg, x, t, extra, w, reduction, S=None):
        dt = x.dtype.type
        self.dtype, self.reduction = dt, reduction
        (out, self.hess) = call_ref(cfg, x, t, extra, w, reduction)
        self.value, self.grad = _in_range(out[0], dt), _in_range(out[1], dt)
        self.hess = _in_range(self.hess, dt)
        self.gvar = _in_range(out[2], dt) if len(out) > 2 else None
        sl, sg, sh, sv = scales(cfg, x, t, extra) if S is None else S
        n = x.size
        wabs = np.ones(x.shape) if w is None else np.abs(np.broadcast_to(np.asarray(w, np.float64), x.shape))
        scale = 1.0 / n if (reduction == "mean" and n) else 1.0
        rt, tiny = RTOL[dt], TINY[dt]
        el = rt * wabs * sl
        self.tol_value = el + tiny if reduction == "none" else (el.sum() + tiny) * scale
        self.tol_grad = rt * wabs * sg * scale + tiny
        self.tol_hess = rt * wabs * sh * scale + tiny
        if sv is not None:
            self.tol_gvar = _sum_to(rt * wabs * sv * scale, x.shape, np.shape(extra["var"])) + tiny

    def check_value(self, v, what):
        if self.reduction == "none":
            assert isinstance(v, np.ndarray) and v.dtype == self.dtype, f"{what}: {type(v)} {getattr(v, 'dtype', '')}"
        else:
            assert isinstance(v, float), f"{what}: value is {type(v).__name__}, not float"
        assert_close(v, self.value, self.tol_value, what)

    def check_grad(self, g, what):
        assert isinstance(g, np.ndarray) and g.dtype == self.dtype, f"{what}: grad dtype {g.dtype}"
        assert_close(g, self.grad, self.tol_grad, what)

    def check_hess(self, h, what):
        assert isinstance(h, np.ndarray) and h.dtype == self.dtype, f"{what}: hess dtype {h.dtype}"
        assert_close(h, self.hess, self.tol_hess, what)

    def check_gvar(self, gv, what):
        assert isinstance(gv, np.ndarray) and gv.dtype == self.dtype, f"{what}: grad_var dtype {gv.dtype}"
        assert_close(gv, self.gvar, self.tol_gvar, what)


def _same(a, b, what):
    """Bit-identical results (value float or array)."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape, what
        assert a.tobytes() == b.tobytes(), what
    else:
        assert isinstance(b, float), what
        assert (math.isnan(a) and math.isnan(b)) or a == b, f"{what}: {a!r} != {b!r}"


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


def _check_all(cfg, x, t, extra, w, reduction, n_threads=None, classes=True, S=None):
    tag = f"{cfg.id} {x.dtype} {x.shape} w={'no' if w is None else w.shape} {reduction}"
    e = Expect(cfg, x, t, extra, w, reduction, S)
    v0 = call_fn(cfg, x, t, extra, w, reduction, n_threads=n_threads)
    e.check_value(v0, f"{tag}: value")
    res = call_fn(cfg, x, t, extra, w, reduction, return_grad=True, n_threads=n_threads)
    e.check_value(res[0], f"{tag}: value (return_grad)")
    e.check_grad(res[1], f"{tag}: grad (return_grad)")
    if e.gvar is not None:
        assert len(res) == 3
        e.check_gvar(res[2], f"{tag}: grad_var (return_grad)")
    if not classes:
        return e, v0, res
    obj = make_obj(cfg, extra, reduction, n_threads)
    args = _args(cfg, x, t, extra)
    _same(obj(*args, weight=w), v0, f"{tag}: class value == function value")
    res2 = obj.value_and_grad(*args, weight=w)
    assert len(res2) == len(res)
    for a, b, nm in zip(res2, res, ["value", "grad", "grad_var"]):
        _same(a, b, f"{tag}: class value_and_grad {nm} == function")
    g, h = obj.grad_hess(*args, weight=w)
    e.check_grad(g, f"{tag}: grad (grad_hess)")
    e.check_hess(h, f"{tag}: hess (grad_hess)")
    return e, v0, res


@pytest.mark.parametrize("cfg, dtype, shape, wkind", _matrix())
def test_kernel_matches_reference(cfg, dtype, shape, wkind):
    rng = np.random.default_rng(_seed(cfg.id, shape, wkind))
    x, t, extra, w = make_data(cfg, shape, dtype, rng, wkind)
    S = scales(cfg, x, t, extra)
    for reduction in REDUCTIONS:
        _check_all(cfg, x, t, extra, w, reduction, S=S)


@pytest.mark.parametrize("cfg", PRIMARY, ids=[c.id for c in PRIMARY])
def test_empty_input(cfg):
    for dt in DTYPES:
        x, t, extra, w = make_data(cfg, (3, 0), dt, np.random.default_rng(0), "full")
        v, g, *_ = call_fn(cfg, x, t, extra, w, "mean", return_grad=True)
        assert isinstance(v, float) and math.isnan(v)
        assert g.shape == (3, 0) and g.dtype == dt
        assert call_fn(cfg, x, t, extra, w, "sum") == 0.0
        none = call_fn(cfg, x, t, extra, w, "none")
        assert none.shape == (3, 0) and none.dtype == dt


# ------------------------------------------------------------------ kinks: exact conventions

def test_kink_conventions():
    for dt in DTYPES:
        a = lambda *v: np.array(v, dtype=dt)  # noqa: E731
        # l1: sign(0) = 0
        v, g = fl.l1_loss(a(1.5, -2.0), a(1.5, -2.0), reduction="sum", return_grad=True)
        assert v == 0.0 and np.all(g == 0)
        # huber: |d| == delta is the quadratic branch (h = 1); smooth_l1: |d| == beta is linear (h = 0)
        g, h = fl.HuberLoss(delta=1.0, reduction="sum").grad_hess(a(1.5, -0.5), a(0.5, 0.5))
        np.testing.assert_array_equal(g, [1.0, -1.0]); np.testing.assert_array_equal(h, [1.0, 1.0])
        g, h = fl.SmoothL1Loss(beta=0.5, reduction="sum").grad_hess(a(1.0, -0.5), a(0.5, 0.0))
        np.testing.assert_array_equal(g, [1.0, -1.0]); np.testing.assert_array_equal(h, [0.0, 0.0])
        assert fl.huber_loss(a(1.5), a(0.5), delta=1.0, reduction="sum") == 0.5
        assert fl.smooth_l1_loss(a(1.0), a(0.5), beta=0.5, reduction="sum") == 0.25
        # quantile: r = 0 takes the r >= 0 branch (g = -q)
        v, g = fl.quantile_loss(a(2.0), a(2.0), quantile=0.25, reduction="sum", return_grad=True)
        assert v == 0.0 and g[0] == dt(-0.25)
        # hinge / squared hinge at margin exactly 0: g = 0, h = 0
        for loss in (fl.HingeLoss(reduction="sum"), fl.SquaredHingeLoss(reduction="sum")):
            g, h = loss.grad_hess(a(1.0, -1.0), a(1.0, -1.0))
            assert np.all(g == 0) and np.all(h == 0)
            assert loss(a(1.0, -1.0), a(1.0, -1.0)) == 0.0
        for cfg in CONFIGS:
            if cfg.name in ("mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "quantile_loss"):
                _check_all(cfg, a(1.0, -1.0, 0.5, 1.5, -0.5), a(1.0, -1.0, 0.5, 0.5, 0.5), {}, None, "sum")
            elif cfg.name in ("hinge_loss", "squared_hinge_loss"):
                _check_all(cfg, a(1.0, -1.0, 0.5), a(1.0, -1.0, 1.0), {}, None, "sum")


# ------------------------------------------------------------------ threads

DET_CONFIGS = PRIMARY + [c for c in CONFIGS if c.id in ("focal-a0.25-g0.5", "gaussian-bcast-eps", "bce_logits-pw-full")]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("cfg", DET_CONFIGS, ids=[c.id for c in DET_CONFIGS])
def test_deterministic_across_threads(cfg, dtype, parallel_always):
    rng = np.random.default_rng(_seed("det", cfg.id))
    x, t, extra, w = make_data(cfg, (50, 1001), dtype, rng, "full")
    args = _args(cfg, x, t, extra)
    for reduction in ("sum", "none"):  # "mean" divides the same block sum as "sum"
        base = None
        for nt in (1, 2, 3, 8):
            res = call_fn(cfg, x, t, extra, w, reduction, return_grad=True, n_threads=nt)
            v = call_fn(cfg, x, t, extra, w, reduction, n_threads=nt)
            gh = make_obj(cfg, extra, reduction, nt).grad_hess(*args, weight=w) if reduction == "sum" else ()
            got = (v,) + tuple(res) + tuple(gh)
            if base is None:
                base = got
                continue
            for a, b in zip(got, base):
                _same(a, b, f"{cfg.id} {np.dtype(dtype).name} {reduction}: n_threads={nt} vs 1")
    # and the parallel result is right
    _check_all(cfg, x, t, extra, w, "sum", n_threads=2, classes=False)


# ------------------------------------------------------------------ extremes

def _ext(dt, x, t):
    return np.array(x, dtype=dt), np.array(t, dtype=dt)


LOGITS = [1e4, -1e4, np.inf, -np.inf, 1e4, -1e4, np.inf, -np.inf]
LABELS = [1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0]


def _check_exact(v, g, h, ev, eg, eh, tag, dt):
    rt = 4 * np.finfo(dt).eps
    for got, exp_, nm in ((v, ev, "value"), (g, eg, "grad"), (h, eh, "hess")):
        assert got.dtype == dt, f"{tag}: {nm} dtype {got.dtype}"
        exp_ = np.asarray(exp_, np.float64)
        assert_close(got, exp_, rt * np.abs(np.where(np.isfinite(exp_), exp_, 0)) + 1e-30, f"{tag}: {nm}")


def test_logistic_prepass_alignment():
    """The float64 logistic losses compute exp(-|z|) over a chunk in a pass of its own (PW_SIG_LOGISTIC):
    each element's loss and gradient are the same bits whatever its offset in the chunk or the block
    (slices of one array at offsets 0..300), and equal the reference.  (Not with pos_weight: its
    chunks are cut into runs of the period, and an element in a run's scalar tail may differ in its
    last bit from the same element in the vector body, in float32 and float64, before the pre-pass
    as after; the thread count never moves those cuts.)"""
    dtype = F64
    rng = np.random.default_rng(zlib.crc32(b"prepass"))
    n = 3 * 256 + 301
    x = (rng.standard_normal(n) * 4).astype(dtype)
    x[::37] = np.resize([np.inf, -np.inf, 40.0, -40.0, 0.0, -0.0, 750.0, -750.0, 1e4], x[::37].size)
    t01 = (rng.random(n) < 0.4).astype(dtype)
    pm = (2 * t01 - 1).astype(dtype)
    m = n - 301
    calls = {
        "bce": lambda a, b, k: fl.binary_cross_entropy_with_logits(a, b, reduction="none", return_grad=True),
        "focal": lambda a, b, k: fl.sigmoid_focal_loss(a, b, reduction="none", return_grad=True),
        "focal_g1.5": lambda a, b, k: fl.sigmoid_focal_loss(a, b, gamma=1.5, reduction="none", return_grad=True),
        "soft": lambda a, b, k: fl.soft_margin_loss(a, b, reduction="none", return_grad=True),
    }
    for name, f in calls.items():
        tt = pm if name == "soft" else t01
        v0, g0 = f(x[:m], tt[:m], 0)
        for k in (1, 3, 4, 7, 255, 256, 257, 300):
            v, g = f(x[k:k + m], tt[k:k + m], k)
            np.testing.assert_array_equal(v[:m - 301], v0[k:k + m - 301], err_msg=f"{name} k={k}")
            np.testing.assert_array_equal(g[:m - 301], g0[k:k + m - 301], err_msg=f"{name} k={k}")
    ref_v, ref_g = R.binary_cross_entropy_with_logits(x, t01, reduction="none")
    v, g = fl.binary_cross_entropy_with_logits(x, t01, reduction="none", return_grad=True)
    fin = np.isfinite(ref_v)
    np.testing.assert_allclose(v[fin], ref_v[fin], rtol=RTOL[dtype], atol=TINY[dtype])
    np.testing.assert_allclose(g, ref_g, rtol=RTOL[dtype], atol=TINY[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_extreme_logits_bce_with_logits(dtype):
    x, t = _ext(dtype, LOGITS, LABELS)
    for pw in (None, 2.0):
        p = 1.0 if pw is None else pw
        ev = [0, 0, 0, 0, 1e4, p * 1e4, np.inf, np.inf]
        eg = [0, 0, 0, 0, 1.0, -p, 1.0, -p]
        loss = fl.BCEWithLogitsLoss(reduction="none", pos_weight=None if pw is None else np.array([pw]))
        v, g = loss.value_and_grad(x, t)
        _, h = loss.grad_hess(x, t)
        _check_exact(v, g, h, ev, eg, [0.0] * 8, f"bce_logits pw={pw} {np.dtype(dtype)}", dtype)
        # the finite part sums correctly; its gradient of the mean too
        s, gs = fl.binary_cross_entropy_with_logits(x[:6], t[:6], reduction="mean", return_grad=True,
                                                    pos_weight=pw)
        assert s == pytest.approx((1 + p) * 1e4 / 6, rel=1e-6)
        np.testing.assert_allclose(gs, np.array(eg[:6]) / 6, rtol=1e-6)


@pytest.mark.parametrize("big", [1e4, np.inf], ids=["1e4", "inf"])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 3.5])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_extreme_logits_sigmoid_focal(dtype, gamma, big):
    # at x = +-big: a matching label gives loss, grad and hess 0; a wrong one gives loss a_t |x|, grad
    # a_t (p - t) = +-a_t (the limit of the gradient, finite even at x = +-inf, as for bce_with_logits)
    x, t = _ext(dtype, [big, -big, big, -big], [1.0, 0.0, 0.0, 1.0])
    for alpha in (0.25, -1.0):
        a1, a0 = (alpha, 1 - alpha) if alpha >= 0 else (1.0, 1.0)   # weight of t = 1, t = 0
        ev = [0, 0, a0 * big, a1 * big]
        eg = [0, 0, a0, -a1]
        loss = fl.SigmoidFocalLoss(alpha=alpha, gamma=gamma, reduction="none")
        v, g = loss.value_and_grad(x, t)
        _, h = loss.grad_hess(x, t)
        _check_exact(v, g, h, ev, eg, [0.0] * 4, f"focal x=+-{big} alpha={alpha} gamma={gamma} "
                     f"{np.dtype(dtype)}", dtype)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 3.5])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_large_logits_sigmoid_focal(dtype, gamma):
    # large but finite logits, confident and wrong, against the reference
    cfg = Cfg("focal", "sigmoid_focal_loss", {"alpha": 0.25, "gamma": gamma})
    xs, ts = _ext(dtype, [30, -30, 80, -80, 15, -15, 30, -30, 0.0], [1, 0, 1, 0, 0, 1, 0, 1, 0.3])
    _check_all(cfg, xs, ts, {}, None, "none")


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_extreme_logits_soft_margin(dtype):
    x, t = _ext(dtype, LOGITS, [1.0, -1.0, 1.0, -1.0, -1.0, 1.0, -1.0, 1.0])
    loss = fl.SoftMarginLoss(reduction="none")
    v, g = loss.value_and_grad(x, t)
    _, h = loss.grad_hess(x, t)
    _check_exact(v, g, h, [0, 0, 0, 0, 1e4, 1e4, np.inf, np.inf], [0, 0, 0, 0, 1.0, -1.0, 1.0, -1.0], [0.0] * 8,
                 f"soft_margin {np.dtype(dtype)}", dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_extreme_probabilities_bce(dtype):
    x, t = _ext(dtype, [0, 0, 1, 1, 0, 1], [0, 1, 0, 1, 0.5, 0.25])
    loss = fl.BCELoss(reduction="none")
    v, g = loss.value_and_grad(x, t)
    _, h = loss.grad_hess(x, t)
    _check_exact(v, g, h, [0, 100, 100, 0, 50, 75], [1, 0, 0, -1, 0.5, -0.25], [1, 0, 0, 1, 0.5, 0.25],
                 f"bce {np.dtype(dtype)}", dtype)
    s = fl.binary_cross_entropy(x, t, reduction="sum")
    assert s == pytest.approx(325.0, rel=1e-6)
    # near 0 and 1, against the reference
    cfg = Cfg("bce", "binary_cross_entropy", {})
    xs = np.array([1e-30, 1e-7, 0.5, 1 - 2 ** -20, 2 ** -20, 1e-3], dtype=dtype)
    ts = np.array([1, 0, 1, 1, 0.5, 1], dtype=dtype)
    _check_all(cfg, xs, ts, {}, None, "none")


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_extreme_residuals(dtype):
    big = 1e30
    tiny = np.float64(dtype(1e-30))
    x, t = _ext(dtype, [big, 0.0, 1e-30, 0.0], [0.0, big, 0.0, 1e-30])
    d = np.array([big, -big, tiny, -tiny])
    tag = np.dtype(dtype).name
    rt = 4 * np.finfo(dtype).eps

    def check(name, ev, eg, eh, **kw):
        v, g = getattr(fl, name)(x, t, reduction="none", return_grad=True, **kw)
        h = fl.__dict__[{"l1_loss": "L1Loss", "huber_loss": "HuberLoss", "log_cosh_loss": "LogCoshLoss",
                         "mse_loss": "MSELoss"}[name]](reduction="none", **kw).grad_hess(x, t)[1]
        for got, e_, nm in ((v, ev, "value"), (g, eg, "grad"), (h, eh, "hess")):
            e_ = np.asarray(e_, dtype=dtype).astype(np.float64)  # what the dtype can hold (0 on underflow)
            assert np.asarray(got).dtype == dtype
            assert_close(got, e_, rt * np.abs(e_) + 2 * np.finfo(dtype).smallest_subnormal,
                         f"{name} {tag}: {nm}")

    check("l1_loss", np.abs(d), np.sign(d), [0, 0, 0, 0])
    check("huber_loss", [big - 0.5, big - 0.5, 0.5 * tiny ** 2, 0.5 * tiny ** 2], [1, -1, tiny, -tiny], [0, 0, 1, 1])
    check("log_cosh_loss", [big - math.log(2), big - math.log(2), 0.5 * tiny ** 2, 0.5 * tiny ** 2],
          [1, -1, tiny, -tiny], [0, 0, 1, 1])
    if dtype == F64:
        check("mse_loss", d ** 2, 2 * d, [2, 2, 2, 2])
        assert fl.mse_loss(x, t, reduction="sum") == pytest.approx(2e60, rel=1e-15)
    else:  # 1e60 is not a float32: overflow to inf; check a huge residual float32 can square
        xb, tb = _ext(dtype, [1e18, 0.0], [0.0, 1e18])
        v, g = fl.mse_loss(xb, tb, reduction="none", return_grad=True)
        np.testing.assert_allclose(v, [1e36, 1e36], rtol=1e-6)
        np.testing.assert_allclose(g, [2e18, -2e18], rtol=1e-6)
        assert fl.mse_loss(xb, tb, reduction="sum") == pytest.approx(2e36, rel=1e-6)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_log_cosh_small_and_large(dtype):
    x, t = _ext(dtype, [1e-5, -1e-5, 1000.0, -1000.0, 3e-3, 25.0], [0.0] * 6)
    d = x.astype(np.float64)
    small = d[:2] ** 2 / 2 - d[:2] ** 4 / 12
    small3 = d[4] ** 2 / 2 - d[4] ** 4 / 12 + d[4] ** 6 / 45 - 17 * d[4] ** 8 / 2520
    ev = np.array([small[0], small[1], 1000 - math.log(2), 1000 - math.log(2), small3,
                   25 - math.log(2) + math.log1p(math.exp(-50))])
    v, g = fl.log_cosh_loss(x, t, reduction="none", return_grad=True)
    rt = {F32: 2e-6, F64: 4e-16}[dtype]
    assert_close(v, ev, rt * ev, f"log_cosh {np.dtype(dtype).name}: value")
    assert_close(g, np.tanh(d), rt * np.abs(np.tanh(d)), f"log_cosh {np.dtype(dtype).name}: grad")
    assert fl.log_cosh_loss(x[:1], t[:1], reduction="sum") == pytest.approx(ev[0], rel=rt)


# ------------------------------------------------------------------ NaN

@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("cfg", PRIMARY, ids=[c.id for c in PRIMARY])
def test_nan_input_propagates(cfg, dtype):
    rng = np.random.default_rng(_seed("nan", cfg.id))
    x, t, extra, w = make_data(cfg, (3, 4), dtype, rng, "full")
    x = x.copy()
    x[1, 2] = np.nan
    for reduction in ("mean", "sum"):
        v = call_fn(cfg, x, t, extra, w, reduction)
        assert math.isnan(v), f"{cfg.id} {reduction}: {v}"
        v, *_ = call_fn(cfg, x, t, extra, w, reduction, return_grad=True)
        assert math.isnan(v), f"{cfg.id} {reduction} (return_grad): {v}"
    v = call_fn(cfg, x, t, extra, w, "none")
    assert np.isnan(v[1, 2])
    mask = np.ones(x.shape, bool)
    mask[1, 2] = False
    assert np.all(np.isfinite(v[mask]))
    e = Expect(cfg, x, t, extra, w, "none")
    assert_close(v[mask], e.value[mask], e.tol_value[mask], f"{cfg.id}: the other elements")


# ------------------------------------------------------------------ properties

@st.composite
def _problems(draw):
    cfg = draw(st.sampled_from(CONFIGS))
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(st.one_of(
        st.lists(st.integers(0, 6), min_size=0, max_size=3).map(tuple),
        st.integers(1, 20000).map(lambda n: (n,)),
    ))
    wkind = draw(st.sampled_from([None, "full"] + (["bcast"] if len(shape) >= 1 else [])))
    reduction = draw(st.sampled_from(REDUCTIONS))
    nt = draw(st.sampled_from([None, 1, 2, 3]))
    parallel = draw(st.booleans())
    seed = draw(st.integers(0, 2 ** 32 - 1))
    return cfg, dtype, shape, wkind, reduction, nt, parallel, seed


@settings(max_examples=40, deadline=None)
@given(_problems())
def test_property_kernel_matches_reference(problem):
    cfg, dtype, shape, wkind, reduction, nt, parallel, seed = problem
    x, t, extra, w = make_data(cfg, shape, dtype, np.random.default_rng(seed), wkind)
    old = _pointwise.set_parallel_threshold(0 if parallel else 65536)
    try:
        _check_all(cfg, x, t, extra, w, reduction, n_threads=nt)
    finally:
        _pointwise.set_parallel_threshold(old)


@settings(max_examples=40, deadline=None)
@given(_problems())
def test_property_reductions_agree(problem):
    cfg, dtype, shape, wkind, _, nt, parallel, seed = problem
    x, t, extra, w = make_data(cfg, shape, dtype, np.random.default_rng(seed), wkind)
    n = x.size
    old = _pointwise.set_parallel_threshold(0 if parallel else 65536)
    try:
        vs, gs, *_ = call_fn(cfg, x, t, extra, w, "sum", return_grad=True, n_threads=nt)
        vm, gm, *_ = call_fn(cfg, x, t, extra, w, "mean", return_grad=True, n_threads=nt)
        vn, gn, *_ = call_fn(cfg, x, t, extra, w, "none", return_grad=True, n_threads=nt)
    finally:
        _pointwise.set_parallel_threshold(old)
    none64 = vn.astype(np.float64).ravel()
    e = Expect(cfg, x, t, extra, w, "sum")
    assert_close(vs, math.fsum(none64), e.tol_value + RTOL[dtype] * np.abs(none64).sum(), "sum == sum of none")
    if cfg.name in ("mse_loss", "l1_loss") and w is not None:
        # PyTorch's weighted mean of these two: the summed weights divide
        # (added as the kernel adds them: float64 blocks in order; NumPy's
        # pairwise np.sum can differ in the last bits, and a few ulp of the
        # divisor showed up as 4.2 eps in a gradient, hypothesis, n = 3229)
        wb = np.ascontiguousarray(np.broadcast_to(w, x.shape), dtype=dtype)
        div = _pointwise.block_sum(wb, dtype == np.float64, 1)
        assert div == pytest.approx(float(np.sum(wb, dtype=np.float64)), rel=1e-13)
        if n and div:
            np.testing.assert_allclose(vm, vs / div, rtol=1e-15)
            np.testing.assert_allclose(gm, gs / dtype(div), rtol=4 * np.finfo(dtype).eps, atol=0)
    elif n:
        assert vm == vs / n, f"mean {vm!r} != sum / n {vs / n!r}"
        np.testing.assert_allclose(gm, gs / dtype(n), rtol=4 * np.finfo(dtype).eps, atol=0)
    else:
        assert math.isnan(vm) and vs == 0.0
    # "none" and "sum" run differently specialised loops (one also stores the
    # per-element loss), and GCC may contract a*b+c into an FMA in one and
    # not the other: the gradients agree to a few ulp, not always to the bit.
    # (-ffp-contract=off would make them identical at a 30-50 % cost on the
    # logistic losses; bit-identity is promised across thread counts.)
    np.testing.assert_allclose(gn, gs, rtol=4 * np.finfo(dtype).eps, atol=0,
                               err_msg="grad of none == grad of sum")
