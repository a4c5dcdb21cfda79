"""The API contract: dtypes, no hidden copies, layouts, degenerate shapes,
classes == functions, threads, the GIL, show_config and the floating-point
environment of the process.
"""
import concurrent.futures
import functools
import io
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastloss as fl

F32, F64 = np.float32, np.float64

_GAUSS_GH_PROBE = ("import numpy as np, fastloss as fl\n"
                   "print(fl.GaussianNLLLoss().grad_hess(np.ones(3), np.zeros(3), np.ones(3))[1])\n")


@functools.lru_cache(maxsize=None)
def _gaussian_grad_hess_crashes():
    """Whether GaussianNLLLoss.grad_hess kills the process (probed once, in a subprocess),
    so that one crash does not take the whole test session with it."""
    p = subprocess.run([sys.executable, "-c", _GAUSS_GH_PROBE], capture_output=True, text=True, timeout=60)
    return p.returncode != 0


def test_gaussian_grad_hess_does_not_crash():
    p = subprocess.run([sys.executable, "-c", _GAUSS_GH_PROBE], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, (
        f"GaussianNLLLoss().grad_hess(...) killed the interpreter (return code {p.returncode}): {p.stderr[-500:]}")


class Case:
    """One loss with non-default parameters, and how to call it."""

    def __init__(self, cid, fn, cls, params=None, kind="reg"):
        self.cid, self.fn, self.cls, self.params, self.kind = cid, fn, cls, params or {}, kind

    def __repr__(self):
        return self.cid

    # data ----------------------------------------------------------
    def data(self, shape, dtype=F64, seed=0):
        """(input, target, extras) where extras holds var / pos_weight."""
        rng = np.random.default_rng(seed)
        x = rng.standard_normal(shape) * 1.5
        y = rng.standard_normal(shape)
        ex = {}
        if self.kind == "prob":
            x = rng.uniform(0.02, 0.98, shape)
            y = rng.uniform(0.0, 1.0, shape)
        elif self.kind == "logit":
            y = rng.uniform(0.0, 1.0, shape)
        elif self.kind == "sign":
            y = rng.choice([-1.0, 1.0], shape)
        elif self.kind == "count":
            y = rng.poisson(2.0, shape).astype(F64)
            if not self.params.get("log_input", True):
                x = rng.uniform(0.1, 3.0, shape)
        if self.cid == "gaussian_nll_loss":
            ex["var"] = np.asarray(rng.uniform(0.2, 2.0, shape), dtype)
        if self.cid == "binary_cross_entropy_with_logits":
            ex["pos_weight"] = np.asarray(rng.uniform(0.5, 2.0, shape[-1]) if len(shape) else 1.7, dtype)
        return np.asarray(x, dtype), np.asarray(y, dtype), ex

    # calls ---------------------------------------------------------
    def f(self, x, y, ex, **kw):
        """Function form; with return_grad=True returns (value, grad) (grad_var dropped)."""
        kw = {**self.params, **kw}
        if self.cid == "gaussian_nll_loss":
            r = self.fn(x, y, ex["var"], **kw)
            return r[:2] if kw.get("return_grad") else r
        if self.cid == "binary_cross_entropy_with_logits":
            return self.fn(x, y, pos_weight=ex.get("pos_weight"), **kw)
        return self.fn(x, y, **kw)

    def obj(self, ex, **kw):
        if self.cid == "binary_cross_entropy_with_logits":
            return self.cls(pos_weight=ex.get("pos_weight"), **kw)
        return self.cls(**self.params, **kw)

    def m(self, method, x, y, ex, ctor=None, **kw):
        """Class method form; value_and_grad returns (value, grad) (grad_var dropped)."""
        o = self.obj(ex, **(ctor or {}))
        fn = getattr(o, method)
        if self.cid == "gaussian_nll_loss" and method == "grad_hess" and _gaussian_grad_hess_crashes():
            pytest.fail("GaussianNLLLoss.grad_hess crashes the interpreter (see "
                        "test_gaussian_grad_hess_does_not_crash); not called here")
        if self.cid == "gaussian_nll_loss":
            r = fn(x, y, ex["var"], **kw)
            return r[:2] if method == "value_and_grad" else r
        return fn(x, y, **kw)


CASES = [
    Case("mse_loss", fl.mse_loss, fl.MSELoss),
    Case("l1_loss", fl.l1_loss, fl.L1Loss),
    Case("huber_loss", fl.huber_loss, fl.HuberLoss, {"delta": 0.7}),
    Case("smooth_l1_loss", fl.smooth_l1_loss, fl.SmoothL1Loss, {"beta": 0.6}),
    Case("log_cosh_loss", fl.log_cosh_loss, fl.LogCoshLoss),
    Case("quantile_loss", fl.quantile_loss, fl.QuantileLoss, {"quantile": 0.3}),
    Case("poisson_nll_loss", fl.poisson_nll_loss, fl.PoissonNLLLoss, {"log_input": True, "full": True},
         "count"),
    Case("poisson_nll_loss", fl.poisson_nll_loss, fl.PoissonNLLLoss,
         {"log_input": False, "full": False, "eps": 1e-6}, "count"),
    Case("gaussian_nll_loss", fl.gaussian_nll_loss, fl.GaussianNLLLoss, {"full": True, "eps": 1e-3}),
    Case("binary_cross_entropy", fl.binary_cross_entropy, fl.BCELoss, {}, "prob"),
    Case("binary_cross_entropy_with_logits", fl.binary_cross_entropy_with_logits, fl.BCEWithLogitsLoss, {},
         "logit"),
    Case("sigmoid_focal_loss", fl.sigmoid_focal_loss, fl.SigmoidFocalLoss, {"alpha": 0.3, "gamma": 1.5},
         "logit"),
    Case("hinge_loss", fl.hinge_loss, fl.HingeLoss, {}, "sign"),
    Case("squared_hinge_loss", fl.squared_hinge_loss, fl.SquaredHingeLoss, {}, "sign"),
    Case("soft_margin_loss", fl.soft_margin_loss, fl.SoftMarginLoss, {}, "sign"),
]
IDS = [c.cid + ("-lin" if c.params.get("log_input") is False else "") for c in CASES]


def same(a, b):
    """Bit-identical floats / arrays (NaN == NaN), same dtype and shape."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), (type(a), type(b))
        assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)
        np.testing.assert_array_equal(a, b)
    else:
        assert type(a) is type(b), (type(a), type(b))
        assert (a == b) or (a != a and b != b), (a, b)


# ---------------------------------------------------------------- dtypes

@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("kind", ["int64", "int32", "uint8", "bool"])
def test_int_and_bool_input_become_float64(case, kind):
    x, y, ex = case.data((3, 5))
    rng = np.random.default_rng(1)
    if kind == "bool" or case.kind == "prob":
        xi = rng.integers(0, 2, x.shape).astype(kind)
    elif case.kind == "count" and not case.params.get("log_input", True):
        xi = rng.integers(1, 4, x.shape).astype(kind)
    else:
        xi = rng.integers(0 if kind == "uint8" else -3, 4, x.shape).astype(kind)
    xf = xi.astype(F64)
    v = case.f(xi, y, ex)
    assert type(v) is float
    same(v, case.f(xf, y, ex))
    vn, g = case.f(xi, y, ex, reduction="none", return_grad=True)
    assert vn.dtype == F64 and g.dtype == F64
    vn2, g2 = case.f(xf, y, ex, reduction="none", return_grad=True)
    same(vn, vn2)
    same(g, g2)
    gh, hh = case.m("grad_hess", xi, y, ex)
    assert gh.dtype == F64 and hh.dtype == F64


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_int_target_converted_to_input_dtype(case):
    x, y, ex = case.data((4, 3), F32)
    yi = np.rint(y).astype(np.int64)
    if case.kind == "sign":
        yi = np.where(y > 0, 1, -1)
    v, g = case.f(x, yi, ex, reduction="none", return_grad=True)
    assert v.dtype == F32 and g.dtype == F32
    v2, g2 = case.f(x, yi.astype(F32), ex, reduction="none", return_grad=True)
    same(v, v2)
    same(g, g2)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float16_input_becomes_float32(case):
    x, y, ex = case.data((4, 3))
    x16 = x.astype(np.float16)
    vn, g = case.f(x16, y, ex, reduction="none", return_grad=True)
    assert vn.dtype == F32 and g.dtype == F32
    vn2, g2 = case.f(x16.astype(F32), y, ex, reduction="none", return_grad=True)
    same(vn, vn2)
    same(g, g2)
    gh, hh = case.m("grad_hess", x16, y, ex)
    assert gh.dtype == F32 and hh.dtype == F32
    v = case.f(x16, y, ex)
    assert type(v) is float


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32_in_float32_out(case):
    x, y, ex = case.data((5, 4), F32)
    for red in ("mean", "sum"):
        v, g = case.f(x, y, ex, reduction=red, return_grad=True)
        assert type(v) is float
        assert g.dtype == F32 and g.shape == x.shape
    vn, g = case.f(x, y, ex, reduction="none", return_grad=True)
    assert vn.dtype == F32 and g.dtype == F32 and vn.shape == x.shape
    gh, hh = case.m("grad_hess", x, y, ex)
    assert gh.dtype == F32 and hh.dtype == F32
    vn, g = case.m("value_and_grad", x, y, ex, ctor={"reduction": "none"})
    assert vn.dtype == F32 and g.dtype == F32
    # float64 in, float64 out
    x64, y64, ex64 = case.data((5, 4), F64)
    vn, g = case.f(x64, y64, ex64, reduction="none", return_grad=True)
    assert vn.dtype == F64 and g.dtype == F64


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("xdt,ydt", [(F32, F64), (F64, F32), (F32, np.float16), (F64, np.int32)])
def test_target_and_weight_converted_to_input_dtype(case, xdt, ydt):
    x, y, ex = case.data((6, 2), xdt)
    y_other = y.astype(ydt)
    w = np.linspace(0.5, 2.0, x.size).reshape(x.shape)
    if ydt == np.int32:
        y_other = (np.where(y > 0, 1, -1) if case.kind == "sign" else np.rint(y)).astype(ydt)
    vn, g = case.f(x, y_other, ex, weight=w.astype(ydt), reduction="none", return_grad=True)
    assert vn.dtype == xdt and g.dtype == xdt
    vn2, g2 = case.f(x, y_other.astype(xdt), ex, weight=w.astype(ydt).astype(xdt), reduction="none",
                     return_grad=True)
    same(vn, vn2)
    same(g, g2)


def test_gaussian_var_and_pos_weight_converted_to_input_dtype():
    x = np.linspace(-1, 1, 6, dtype=F32)
    y = np.zeros(6, F32)
    v, g, gv = fl.gaussian_nll_loss(x, y, np.full(6, 0.5), reduction="none", return_grad=True)
    assert v.dtype == F32 and g.dtype == F32 and gv.dtype == F32
    v2, g2, gv2 = fl.gaussian_nll_loss(x, y, np.full(6, 0.5, F32), reduction="none", return_grad=True)
    same(v, v2)
    same(gv, gv2)
    v, g = fl.binary_cross_entropy_with_logits(x, y + 1, pos_weight=np.array([2.0]), reduction="none",
                                               return_grad=True)
    assert v.dtype == F32 and g.dtype == F32


# ---------------------------------------------------------------- no hidden copies

@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [F32, F64])
def test_out_buffers_are_returned(case, dtype):
    x, y, ex = case.data((7, 3), dtype)
    buf = np.empty(x.shape, dtype)
    v, g = case.f(x, y, ex, return_grad=True, out=buf)
    assert g is buf
    v_ref, g_ref = case.f(x, y, ex, return_grad=True)
    same(v, v_ref)
    same(g, g_ref)

    gbuf, lbuf = np.empty(x.shape, dtype), np.empty(x.shape, dtype)
    vn, g = case.m("value_and_grad", x, y, ex, ctor={"reduction": "none"}, out=gbuf, loss_out=lbuf)
    assert g is gbuf and vn is lbuf
    vn_ref, g_ref = case.f(x, y, ex, reduction="none", return_grad=True)
    same(vn, vn_ref)
    same(g, g_ref)

    gbuf, hbuf = np.empty(x.shape, dtype), np.empty(x.shape, dtype)
    pair = (gbuf, hbuf)
    res = case.m("grad_hess", x, y, ex, out=pair)
    assert res[0] is gbuf and res[1] is hbuf
    res_ref = case.m("grad_hess", x, y, ex)
    same(res[0], res_ref[0])
    same(res[1], res_ref[1])


def test_gaussian_class_value_and_grad_out_is_returned():
    x, y = np.linspace(-1, 1, 8), np.zeros(8)
    var = np.full(8, 0.7)
    gb, lb = np.empty(8), np.empty(8)
    v, g, gv = fl.GaussianNLLLoss(reduction="none").value_and_grad(x, y, var, out=gb, loss_out=lb)
    assert g is gb and v is lb and gv.shape == var.shape


def test_out_buffer_reused_across_calls():
    x = np.linspace(-2, 2, 11)
    buf = np.full(11, np.nan)
    for y in (np.zeros(11), np.ones(11)):
        v, g = fl.mse_loss(x, y, return_grad=True, out=buf, reduction="sum")
        assert g is buf
        np.testing.assert_array_equal(buf, 2 * (x - y))


# ---------------------------------------------------------------- layouts and flags

def _layouts(x):
    """(name, array equal to x but with another layout) for a 2-D x."""
    big = np.empty((x.shape[0], 2 * x.shape[1]), x.dtype)
    big[:, ::2] = x
    return [
        ("strided", big[:, ::2]),
        ("transposed", np.ascontiguousarray(x.T).T),
        ("fortran", np.asfortranarray(x)),
        ("reversed", x[::-1][::-1]),
    ]


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [F32, F64])
def test_non_contiguous_inputs_equal_contiguous(case, dtype):
    x, y, ex = case.data((6, 5), dtype)
    w = np.linspace(0.5, 1.5, 30).reshape(6, 5).astype(dtype)
    ref_v, ref_g = case.f(x, y, ex, weight=w, reduction="none", return_grad=True)
    ref_s = case.f(x, y, ex, weight=w, reduction="sum")
    ref_gh = case.m("grad_hess", x, y, ex, weight=w)
    lx, ly, lw = _layouts(x), _layouts(y), _layouts(w)
    for (name, xs), (_, ys), (_, ws) in zip(lx, ly, lw):
        assert not xs.flags.c_contiguous or name == "reversed"
        ex2 = dict(ex)
        if "var" in ex:
            ex2["var"] = dict(_layouts(ex["var"]))[name]
        v, g = case.f(xs, ys, ex2, weight=ws, reduction="none", return_grad=True)
        same(v, ref_v)
        same(g, ref_g)
        assert g.flags.c_contiguous
        same(case.f(xs, ys, ex2, weight=ws, reduction="sum"), ref_s)
        gh = case.m("grad_hess", xs, ys, ex2, weight=ws)
        same(gh[0], ref_gh[0])
        same(gh[1], ref_gh[1])
        # only one operand non-contiguous
        v, g = case.f(xs, y, ex, weight=w, reduction="none", return_grad=True)
        same(v, ref_v)
        v, g = case.f(x, ys, ex, weight=ws, reduction="none", return_grad=True)
        same(v, ref_v)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_read_only_inputs(case):
    x, y, ex = case.data((4, 6))
    w = np.linspace(0.5, 1.5, 24).reshape(4, 6)
    ref = case.f(x, y, ex, weight=w, reduction="none", return_grad=True)
    ref_gh = case.m("grad_hess", x, y, ex, weight=w)
    for a in (x, y, w, *ex.values()):
        a.flags.writeable = False
    res = case.f(x, y, ex, weight=w, reduction="none", return_grad=True)
    same(res[0], ref[0])
    same(res[1], ref[1])
    assert res[0].flags.writeable and res[1].flags.writeable
    gh = case.m("grad_hess", x, y, ex, weight=w)
    same(gh[0], ref_gh[0])
    same(gh[1], ref_gh[1])
    case.m("__call__", x, y, ex, weight=w)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_memmap_inputs(case, tmp_path):
    x, y, ex = case.data((5, 4))
    ref = case.f(x, y, ex, reduction="none", return_grad=True)
    maps = {}
    for nm, a in (("x", x), ("y", y), *ex.items()):
        path = tmp_path / f"{nm}.bin"
        mm = np.memmap(path, dtype=a.dtype, mode="w+", shape=a.shape)
        mm[...] = a
        mm.flush()
        del mm
        maps[nm] = np.memmap(path, dtype=a.dtype, mode="r", shape=a.shape)  # read-only mapping
    ex_m = {k: v for k, v in maps.items() if k not in ("x", "y")}
    res = case.f(maps["x"], maps["y"], ex_m, reduction="none", return_grad=True)
    for r, rr in zip(res, ref):
        assert type(r) is np.ndarray
        np.testing.assert_array_equal(r, rr)
    same(case.f(maps["x"], maps["y"], ex_m, reduction="sum"), case.f(x, y, ex, reduction="sum"))
    gh = case.m("grad_hess", maps["x"], maps["y"], ex_m)
    np.testing.assert_array_equal(gh[0], case.m("grad_hess", x, y, ex)[0])


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [F32, F64, np.float16, np.int64])
def test_inputs_not_modified(case, dtype):
    x, y, ex = case.data((6, 3), F64)
    if dtype == np.int64:
        x = np.rint(x) if case.kind != "prob" else np.rint(x)
        if case.kind == "count" and not case.params.get("log_input", True):
            x = np.maximum(x, 1)
    x = x.astype(dtype)
    w = np.linspace(0.1, 2.0, 18).reshape(6, 3)
    snap = [a.copy() for a in (x, y, w, *ex.values())]
    for red in ("mean", "sum", "none"):
        case.f(x, y, ex, weight=w, reduction=red)
        case.f(x, y, ex, weight=w, reduction=red, return_grad=True)
        out_dt = F32 if dtype in (F32, np.float16) else F64
        case.f(x, y, ex, weight=w, reduction=red, return_grad=True, out=np.empty(x.shape, out_dt))
        case.m("__call__", x, y, ex, ctor={"reduction": red}, weight=w)
        case.m("value_and_grad", x, y, ex, ctor={"reduction": red}, weight=w)
        case.m("grad_hess", x, y, ex, ctor={"reduction": red}, weight=w)
    for a, s in zip((x, y, w, *ex.values()), snap):
        np.testing.assert_array_equal(a, s)
        assert a.dtype == s.dtype


# ---------------------------------------------------------------- degenerate shapes

@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [F32, F64])
def test_zero_dim_inputs(case, dtype):
    x, y, ex = case.data((), dtype)
    assert x.ndim == 0
    for red in ("mean", "sum"):
        v = case.f(x, y, ex, reduction=red)
        assert type(v) is float and np.isfinite(v)
        v, g = case.f(x, y, ex, reduction=red, return_grad=True)
        assert type(v) is float
        assert isinstance(g, np.ndarray) and g.shape == () and g.dtype == dtype
    vn = case.f(x, y, ex, reduction="none")
    assert isinstance(vn, np.ndarray) and vn.shape == () and vn.dtype == dtype
    assert vn[()] == pytest.approx(case.f(x, y, ex, reduction="sum"), rel=1e-6)
    g, h = case.m("grad_hess", x, y, ex)
    assert g.shape == () and h.shape == ()


_ZERO_D = {
    "python_float": lambda v: float(v),
    "python_int": lambda v: int(round(v)),
    "np_float64_scalar": lambda v: np.float64(v),
    "np_float32_scalar": lambda v: np.float32(v),
    "0d_int_array": lambda v: np.array(int(round(v))),
    "0d_float16_array": lambda v: np.array(v, np.float16),
    "0d_bool_array": lambda v: np.array(bool(v)),
    "0d_float32_noncontig_view": lambda v: np.array([v, v], np.float32)[1:][0:1].reshape(()),
}


@pytest.mark.parametrize("kind", list(_ZERO_D))
@pytest.mark.parametrize("name", ["mse_loss", "huber_loss", "binary_cross_entropy_with_logits"])
def test_zero_dim_inputs_that_need_conversion(name, kind):
    """0-d inputs of any real dtype (and Python/NumPy scalars) stay 0-d."""
    fn = getattr(fl, name)
    x = _ZERO_D[kind](1.0)
    t = _ZERO_D[kind](0.0)
    v, g = fn(x, t, return_grad=True)
    assert type(v) is float
    assert isinstance(g, np.ndarray) and g.shape == ()
    vn = fn(x, t, reduction="none")
    assert isinstance(vn, np.ndarray) and vn.shape == ()
    # the target alone needing conversion
    v2 = fn(np.array(1.0), t)
    assert v2 == fn(np.array(1.0), np.array(float(t)))


def test_python_scalars_are_zero_dim():
    v, g = fl.mse_loss(3.0, 1.0, return_grad=True)
    assert v == 4.0 and type(v) is float
    assert g.shape == () and g.dtype == F64 and g[()] == 4.0
    vn = fl.huber_loss(3.0, 1.0, reduction="none")
    assert vn.shape == () and vn[()] == 1.5


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("shape", [(0,), (0, 3), (2, 0)])
@pytest.mark.parametrize("dtype", [F32, F64])
def test_empty_inputs(case, shape, dtype):
    x, y, ex = case.data(shape, dtype)
    w = np.ones(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            v = case.f(x, y, ex)
            assert type(v) is float and np.isnan(v)
            v, g = case.f(x, y, ex, weight=w, return_grad=True)
            assert type(v) is float and np.isnan(v)
            assert g.shape == shape and g.dtype == dtype
            v = case.f(x, y, ex, reduction="sum")
            assert type(v) is float and v == 0.0
            v, g = case.f(x, y, ex, reduction="sum", return_grad=True)
            assert v == 0.0 and g.shape == shape
            vn, g = case.f(x, y, ex, reduction="none", return_grad=True)
            assert isinstance(vn, np.ndarray) and vn.shape == shape and vn.dtype == dtype
            assert g.shape == shape
            g, h = case.m("grad_hess", x, y, ex)
            assert g.shape == shape and h.shape == shape
            v = case.m("__call__", x, y, ex)
            assert np.isnan(v)


# ---------------------------------------------------------------- classes == functions

@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("red", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [F32, F64])
def test_classes_equal_functions(case, red, dtype):
    x, y, ex = case.data((9, 4), dtype, seed=3)
    w = np.linspace(0.2, 1.8, 4).astype(dtype)
    for weight in (None, w):
        same(case.m("__call__", x, y, ex, ctor={"reduction": red}, weight=weight),
             case.f(x, y, ex, weight=weight, reduction=red))
        v1, g1 = case.m("value_and_grad", x, y, ex, ctor={"reduction": red}, weight=weight)
        v2, g2 = case.f(x, y, ex, weight=weight, reduction=red, return_grad=True)
        same(v1, v2)
        same(g1, g2)
        gh, hh = case.m("grad_hess", x, y, ex, ctor={"reduction": red}, weight=weight)
        # another specialised loop: the same gradient to rounding, not necessarily to the bit
        assert gh.dtype == g2.dtype and gh.shape == g2.shape
        tol = 1e-6 if dtype == F32 else 1e-14
        np.testing.assert_allclose(gh, g2, rtol=tol, atol=tol * np.abs(g2).max())
        assert hh.shape == x.shape and hh.dtype == x.dtype


def test_gaussian_class_grad_var_equals_function():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    for var in (rng.uniform(0.1, 1, (5, 3)), rng.uniform(0.1, 1, 5), rng.uniform(0.1, 1, (1, 3))):
        for red in ("mean", "sum", "none"):
            a = fl.GaussianNLLLoss(full=True, eps=1e-3, reduction=red).value_and_grad(x, y, var)
            b = fl.gaussian_nll_loss(x, y, var, full=True, eps=1e-3, reduction=red, return_grad=True)
            for p, q in zip(a, b):
                same(p, q)


def test_class_constructor_weight_used_when_call_gives_none():
    x = np.array([[0.3, 0.6], [0.2, 0.9]])
    y = np.array([[0.0, 1.0], [1.0, 0.0]])
    w = np.array([2.0, 0.5])
    same(fl.BCELoss(weight=w)(x, y), fl.binary_cross_entropy(x, y, weight=w))
    same(fl.BCEWithLogitsLoss(weight=w)(x, y), fl.binary_cross_entropy_with_logits(x, y, weight=w))


_REPRS = [
    (fl.HuberLoss(delta=2.5, reduction="sum"), ["HuberLoss(", "delta=2.5", "reduction='sum'"]),
    (fl.SmoothL1Loss(beta=0.25), ["SmoothL1Loss(", "beta=0.25", "reduction='mean'"]),
    (fl.QuantileLoss(quantile=0.9, reduction="none"), ["QuantileLoss(", "quantile=0.9", "reduction='none'"]),
    (fl.PoissonNLLLoss(log_input=False, full=True, eps=1e-5),
     ["PoissonNLLLoss(", "log_input=False", "full=True", "eps=1e-05"]),
    (fl.GaussianNLLLoss(full=True, eps=0.001), ["GaussianNLLLoss(", "full=True", "eps=0.001"]),
    (fl.SigmoidFocalLoss(alpha=0.5, gamma=3.0), ["SigmoidFocalLoss(", "alpha=0.5", "gamma=3.0"]),
    (fl.MSELoss(reduction="sum"), ["MSELoss(", "reduction='sum'"]),
    (fl.L1Loss(), ["L1Loss(", "reduction='mean'"]),
    (fl.LogCoshLoss(), ["LogCoshLoss(", "reduction="]),
    (fl.BCELoss(reduction="none"), ["BCELoss(", "reduction='none'"]),
    (fl.BCEWithLogitsLoss(reduction="sum"), ["BCEWithLogitsLoss(", "reduction='sum'"]),
    (fl.HingeLoss(), ["HingeLoss(", "reduction="]),
    (fl.SquaredHingeLoss(), ["SquaredHingeLoss(", "reduction="]),
    (fl.SoftMarginLoss(), ["SoftMarginLoss(", "reduction="]),
]


@pytest.mark.parametrize("obj,parts", _REPRS, ids=[type(o).__name__ for o, _ in _REPRS])
def test_class_repr_shows_params(obj, parts):
    r = repr(obj)
    assert r.endswith(")")
    for p in parts:
        assert p in r, (p, r)


def test_class_attributes_keep_params():
    h = fl.HuberLoss(delta=2.5, reduction="sum", n_threads=2)
    assert h.delta == 2.5 and h.reduction == "sum" and h.n_threads == 2


# ---------------------------------------------------------------- threads

@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_n_threads_per_call_bit_identical(case, parallel_always):
    x, y, ex = case.data((3000, 7), F32, seed=5)
    before = fl.get_num_threads()
    r1 = case.f(x, y, ex, return_grad=True, n_threads=1)
    r2 = case.f(x, y, ex, return_grad=True, n_threads=2)
    r3 = case.f(x, y, ex, return_grad=True, n_threads=3)
    for a, b, c in zip(r1, r2, r3):
        same(a, b)
        same(a, c)
    assert fl.get_num_threads() == before
    o1 = case.obj(ex, n_threads=1)
    o2 = case.obj(ex, n_threads=2)
    if case.cid == "gaussian_nll_loss":
        same(o1(x, y, ex["var"]), o2(x, y, ex["var"]))
    else:
        same(o1(x, y), o2(x, y))
    assert fl.get_num_threads() == before


def test_set_num_threads_and_restore(parallel_always):
    x = np.linspace(-3, 3, 200_001).astype(F32)
    y = np.zeros_like(x)
    default = fl.get_num_threads()
    ref = fl.huber_loss(x, y, return_grad=True, n_threads=2)
    try:
        fl.set_num_threads(1)
        assert fl.get_num_threads() == 1
        r = fl.huber_loss(x, y, return_grad=True)
        same(r[0], ref[0])
        same(r[1], ref[1])
        fl.set_num_threads(2)
        assert fl.get_num_threads() == 2
        r = fl.huber_loss(x, y, return_grad=True, n_threads=1)  # per call wins
        same(r[0], ref[0])
        assert fl.get_num_threads() == 2
        fl.set_num_threads(np.int64(3))
        assert fl.get_num_threads() == 3
    finally:
        fl.set_num_threads(None)
    assert fl.get_num_threads() == default
    assert fl.show_config(file=False)["num_threads"] == default


def test_threadpoolctl_limits(parallel_always):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    x = np.random.default_rng(0).standard_normal(300_000).astype(F32)
    y = np.zeros_like(x)
    ref = fl.binary_cross_entropy_with_logits(x, y, return_grad=True, n_threads=2)
    ref_h = fl.HuberLoss().grad_hess(x, y, out=None)
    default = fl.get_num_threads()
    with threadpoolctl.threadpool_limits(1):
        assert fl.get_num_threads() == 1
        r = fl.binary_cross_entropy_with_logits(x, y, return_grad=True)
        r2 = fl.binary_cross_entropy_with_logits(x, y, return_grad=True, n_threads=2)
        gh = fl.HuberLoss().grad_hess(x, y)
    same(r[0], ref[0])
    same(r[1], ref[1])
    same(r2[0], ref[0])
    same(gh[0], ref_h[0])
    assert fl.get_num_threads() == default


def test_gil_released_concurrent_python_threads():
    n = 2_000_000
    rng = np.random.default_rng(11)
    xs = [rng.standard_normal(n).astype(F32) for _ in range(2)]
    ys = [rng.standard_normal(n).astype(F32) for _ in range(2)]
    serial = [fl.MSELoss().value_and_grad(x, y, out=None) for x, y in zip(xs, ys)]

    loss = fl.MSELoss()

    def work(i):
        out = []
        for _ in range(3):
            out.append(loss.value_and_grad(xs[i], ys[i]))
        return out

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futs = [pool.submit(work, i) for i in (0, 1, 0, 1)]
        results = [f.result(timeout=60) for f in futs]
    for i, res in zip((0, 1, 0, 1), results):
        for v, g in res:
            same(v, serial[i][0])
            same(g, serial[i][1])
        d = xs[i].astype(F64) - ys[i].astype(F64)
        assert res[0][0] == pytest.approx(np.mean(d * d), rel=1e-6)
        np.testing.assert_allclose(res[0][1], (2.0 / n) * d, rtol=1e-5, atol=1e-12)


# ---------------------------------------------------------------- show_config

def test_show_config_dict(capsys):
    cfg = fl.show_config(file=False)
    assert capsys.readouterr().out == ""
    for k in ("version", "openmp", "num_threads", "simd_path", "cflags"):
        assert k in cfg, k
    assert cfg["version"] == fl.__version__
    assert cfg["openmp"] is True
    assert isinstance(cfg["num_threads"], int) and cfg["num_threads"] >= 1
    assert cfg["num_threads"] == fl.get_num_threads()
    assert isinstance(cfg["simd_path"], str) and cfg["simd_path"]
    assert "-ffast-math" not in cfg["cflags"]
    assert "-ffast-math" not in str(cfg.get("ldflags", ""))
    assert "-Ofast" not in cfg["cflags"]


def test_show_config_prints_to_file_and_stdout(capsys):
    """Printing returns None (a REPL would echo a returned dict after the
    table); file=False returns the dict and prints nothing."""
    buf = io.StringIO()
    assert fl.show_config(file=buf) is None
    assert capsys.readouterr().out == ""
    cfg = fl.show_config(file=False)
    assert capsys.readouterr().out == ""
    text = buf.getvalue()
    assert cfg["version"] in text and "openmp" in text and "simd_path" in text and str(cfg["simd_path"]) in text
    assert fl.show_config() is None
    out = capsys.readouterr().out
    assert cfg["version"] in out and "simd_path" in out


def _run_py(code, **env):
    e = dict(os.environ)
    e.update(env)
    return subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, timeout=60)


def test_force_baseline_subprocess():
    code = ("import fastloss as fl, numpy as np; c = fl.show_config(file=False); print(c['simd_path']);"
            "print(fl.mse_loss(np.arange(5.0), np.zeros(5)))")
    p = _run_py(code, FASTLOSS_FORCE_BASELINE="1")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split("\n")
    assert lines[0] == "baseline"
    assert float(lines[1]) == 6.0
    p = _run_py(code, FASTLOSS_FORCE_BASELINE="0")
    assert p.returncode == 0, p.stderr
    unforced = p.stdout.split("\n")[0]
    assert unforced and float(p.stdout.split("\n")[1]) == 6.0
    if not fl.show_config(file=False).get("force_baseline"):
        assert unforced == fl.show_config(file=False)["simd_path"]


# ---------------------------------------------------------------- floating-point environment

def _denormals_alive():
    a = np.float64(1e-310) * 1
    b = np.float32(1e-39) * np.float32(1)
    c = np.array([1e-310]) * np.array([1.0])
    d = np.array([1e-39], F32) * np.array([1.0], F32)
    return a != 0 and b != 0 and c[0] != 0 and d[0] != 0 and np.float32(1e-39) != 0


def test_denormals_not_flushed_in_process():
    fl.mse_loss(np.ones(3), np.zeros(3))  # the compiled module is loaded and has run
    assert np.float64(1e-310) * 1 != 0
    assert np.float32(1e-39) != 0
    assert np.float32(1e-39) * np.float32(1) != 0
    assert _denormals_alive()


def test_denormals_not_flushed_fresh_process():
    code = ("import numpy as np\n"
            "import fastloss as fl\n"
            "fl.binary_cross_entropy_with_logits(np.ones(100000, np.float32), np.zeros(100000, np.float32),"
            " n_threads=2)\n"
            "a = np.float64(1e-310) * 1\n"
            "b = np.float32(1e-39) * np.float32(1)\n"
            "print(a != 0, b != 0, np.float32(1e-39) != 0)\n")
    p = _run_py(code)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["True", "True", "True"]


def test_denormal_inputs_give_denormal_gradients():
    x = np.array([3e-310, 0.0])
    v, g = fl.mse_loss(x, np.zeros(2), reduction="sum", return_grad=True)
    assert g[0] == 6e-310 and g[0] != 0
    x32 = np.array([2e-39, 0.0], F32)
    v, g = fl.l1_loss(x32, np.array([1e-39, 0.0], F32), reduction="sum", return_grad=True)
    assert g[0] == 1.0
