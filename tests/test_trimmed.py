"""fastloss.Trimmed / fastloss.trimmed: the trimmed reduction of a pointwise loss.

* the selection: the kept set is exactly that of a stable argsort of the
  per-element losses (ties by index, -0 == 0, NaN last), checked on the
  kernel's own per-element losses (so near-ties are ranked on the same
  numbers), with heavy ties, both boundaries inside one tie group, negative
  and infinite losses, every shape around the blocks, both dtypes;
* the value and gradient against fastloss.reference.trimmed (float64,
  well-separated losses) and scipy.stats.trim_mean;
* trim=0 is bit-identical to the loss itself; thread counts give the same
  bits; NaN is never masked; out=/loss_out= buffers; losses that are not
  plain kernels (BCELoss with its weight, BCEWithLogitsLoss with pos_weight).
"""
import math
import zlib

import numpy as np
import pytest

import fastloss as fl
from fastloss import _pointwise, _trim
from fastloss.reference import regression as RR

F32, F64 = np.float32, np.float64
DTYPES = [F32, F64]


@pytest.fixture
def parallel_trim():
    """Every call on the parallel paths (kernel and selection), for small inputs too."""
    old_pw, old_tr = _pointwise.set_parallel_threshold(0), _trim.set_parallel_threshold(0)
    yield
    _pointwise.set_parallel_threshold(old_pw)
    _trim.set_parallel_threshold(old_tr)


def _expected(loss, x, t, trim, tails, w, reduction):
    """The trimmed result from the loss's own per-element values and gradients, by a stable argsort."""
    none = type(loss)(**{k: getattr(loss, k) for k in _params(loss)}, reduction="none")
    l, g = none.value_and_grad(x, t)
    gh, h = none.grad_hess(x, t)  # grad_hess's own gradient (its loop variant may differ by an ulp)
    n = l.size
    k = int(trim * n)
    order = np.argsort(l.ravel(), kind="stable")
    keep = np.zeros(n, bool)
    keep[order[(k if tails == "both" else 0):n - k]] = True
    keep = keep.reshape(l.shape)
    wb = np.ones(l.shape) if w is None else np.broadcast_to(np.asarray(w, np.float64), l.shape)
    m = int(keep.sum())
    if w is not None and isinstance(loss, _WMEAN):  # PyTorch's weighted mean: over the summed (kept) weights
        m = math.fsum(np.where(keep, wb, 0.0).ravel())
    wl = np.where(keep, wb * l, 0.0)
    scale = 1.0 / m if (reduction == "mean" and m) else 1.0
    if reduction == "none":
        value = wl
    else:
        value = math.fsum(wl.ravel()) * scale if (m or reduction == "sum") else float("nan")
    absum = math.fsum(np.abs(wl).ravel()) * scale
    return value, (np.where(keep, wb * g * scale, 0.0), np.where(keep, wb * gh * scale, 0.0)), \
        np.where(keep, wb * h * scale, 0.0), keep, absum


_WMEAN = (fl.MSELoss, fl.L1Loss)


def _params(loss):
    return {"HuberLoss": ["delta"], "TweedieLoss": ["power"], "CauchyLoss": ["c"], "ExpectileLoss": ["tau"]}.get(
        type(loss).__name__, [])


def _data(kind, shape, dtype, rng):
    if kind == "continuous":
        x, t = rng.normal(0, 2, shape), rng.normal(0, 2, shape)
    elif kind == "ties":  # integer residuals: many equal losses, -0/+0 included
        x = rng.integers(-3, 4, shape).astype(np.float64)
        t = np.where(rng.random(shape) < 0.5, -0.0, 0.0)
    elif kind == "all_equal":
        x, t = np.ones(shape), np.zeros(shape)
    elif kind == "deviance":  # negative losses (the Gamma NLL drops its constant)
        x = rng.normal(0, 1, shape)
        t = rng.gamma(2.0, 1.0, shape)
    else:
        raise AssertionError(kind)
    return np.asarray(x, dtype), np.asarray(t, dtype)


LOSSES = {
    "continuous": [fl.MSELoss(), fl.HuberLoss(delta=0.7), fl.CauchyLoss(c=1.0)],
    "ties": [fl.L1Loss(), fl.MSELoss()],
    "all_equal": [fl.L1Loss()],
    "deviance": [fl.GammaNLLLoss(), fl.TweedieLoss(power=1.5)],
}
SHAPES = [(), (1,), (5,), (2, 3, 5), (0,), (8191,), (8193,), (3, 8192 + 5)]


def _check(loss, x, t, trim, tails, w, reduction, n_threads=None):
    dt = x.dtype.type
    tag = f"{type(loss).__name__} {np.dtype(dt).name} {x.shape} trim={trim} {tails} {reduction} w={w is not None}"
    ev, eg, eh, keep, absum = _expected(loss, x, t, trim, tails, w, reduction)
    obj = fl.Trimmed(loss, trim, tails, reduction, n_threads=n_threads)
    v = obj(x, t, weight=w)
    v2, g = obj.value_and_grad(x, t, weight=w)
    g2, h = obj.grad_hess(x, t, weight=w)
    eps = np.finfo(dt).eps
    if w is not None and reduction == "mean" and isinstance(loss, _WMEAN) and keep.any():
        # the divisor, the kept weights' sum, is the total less the dropped ones: its rounding is
        # relative to the total
        wb = np.broadcast_to(np.asarray(w, np.float64), x.shape)
        eps = eps * (1 + float(wb.sum() / wb[keep].sum()))
    if reduction == "none":
        for got in (v, v2):
            assert got.dtype == dt and got.shape == x.shape
            np.testing.assert_allclose(got, ev, rtol=2 * eps, atol=0, err_msg=tag)
    else:
        assert isinstance(v, float) and (v == v2 or (math.isnan(v) and math.isnan(v2))), tag
        if math.isnan(ev):
            assert math.isnan(v), tag
        else:  # summed in float32 chunks for float32 data, as the losses' own reductions
            rt = {F32: 2e-6, F64: 1e-14}[dt] * float(eps / np.finfo(dt).eps)
            assert abs(v - ev) <= rt * absum + 1e-300, f"{tag}: {v!r} != {ev!r}"
    for got, exp_, nm in ((g, eg[0], "grad"), (g2, eg[1], "grad (grad_hess)"), (h, eh, "hess")):
        assert got.dtype == dt and got.shape == x.shape, tag
        assert np.all(got[~keep] == 0), f"{tag}: {nm} not zero on a dropped element"
        np.testing.assert_allclose(got, exp_, rtol=4 * eps, atol=0, err_msg=f"{tag}: {nm}")


def _cases():
    out = []
    for kind, losses in LOSSES.items():
        for loss in losses:
            for shape in SHAPES:
                if kind != "continuous" and len(shape) > 1 and shape[0] == 3:
                    continue
                out.append(pytest.param(kind, loss, shape, id=f"{kind}-{type(loss).__name__}-"
                                                              f"{'x'.join(map(str, shape)) or '0d'}"))
    return out


@pytest.mark.parametrize("kind, loss, shape", _cases())
def test_kept_set_is_a_stable_argsorts(kind, loss, shape):
    rng = np.random.default_rng(zlib.crc32(repr((kind, type(loss).__name__, shape)).encode()))
    for dt in DTYPES:
        x, t = _data(kind, shape, dt, rng)
        w = np.asarray(rng.uniform(0.1, 2.0, shape), dt)
        for trim, tails in ((0.1, "both"), (0.25, "upper"), (0.49, "both"), (0.0, "both")):
            for reduction in ("mean", "sum", "none"):
                _check(loss, x, t, trim, tails, w if reduction != "sum" else None, reduction)


def test_against_the_reference_and_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    x, t = rng.normal(0, 2, 1001), rng.normal(0, 2, 1001)
    w = rng.uniform(0.5, 2, 1001)
    for name, loss, params in (("huber_loss", fl.HuberLoss(delta=0.5), {"delta": 0.5}),
                               ("gamma_nll_loss", fl.GammaNLLLoss(), {}),
                               ("fair_loss", fl.FairLoss(c=1.0), {"c": 1.0})):
        tt = np.abs(t) + 0.1 if name == "gamma_nll_loss" else t
        for tails in ("both", "upper"):
            for reduction in ("mean", "sum", "none"):
                v, g = fl.trimmed(x, tt, loss, 0.1, tails=tails, weight=w, reduction=reduction, return_grad=True)
                rv, rg = RR.trimmed(name, x, tt, 0.1, tails, w, reduction, **params)
                h = fl.Trimmed(loss, 0.1, tails, reduction).grad_hess(x, tt, weight=w)[1]
                np.testing.assert_allclose(v, rv, rtol=1e-12)
                np.testing.assert_allclose(g, rg, rtol=1e-12, atol=1e-300)
                np.testing.assert_allclose(h, RR.trimmed_hess(name, x, tt, 0.1, tails, w, reduction, **params),
                                           rtol=1e-12, atol=1e-300)
        per = loss.__class__(**params, reduction="none")(x, tt)
        for trim in (0.0, 0.05, 0.1, 0.3, 0.49):
            assert fl.Trimmed(loss, trim)(x, tt) == pytest.approx(scipy_stats.trim_mean(per, trim), rel=1e-13)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_trim_zero_is_the_loss_itself(dtype):
    """The same gradients and Hessians bit for bit; the same value to rounding (the loss's kernel may sum
    its chunks in wider vector lanes than the trimmed pass)."""
    rng = np.random.default_rng(5)
    x, t = rng.normal(size=(3, 8200)).astype(dtype), rng.normal(size=(3, 8200)).astype(dtype)
    w = rng.uniform(0.2, 2, (3, 8200)).astype(dtype)
    for loss_cls in (fl.MSELoss, fl.HuberLoss, fl.PseudoHuberLoss):
        for reduction in ("mean", "sum", "none"):
            loss, tr = loss_cls(reduction=reduction), fl.Trimmed(loss_cls(), trim=0.0, reduction=reduction)
            for a, b in ((loss(x, t, weight=w), tr(x, t, weight=w)),
                         (loss.value_and_grad(x, t, weight=w)[1], tr.value_and_grad(x, t, weight=w)[1]),
                         (loss.grad_hess(x, t, weight=w)[1], tr.grad_hess(x, t, weight=w)[1])):
                if isinstance(a, float):
                    assert b == pytest.approx(a, rel=float(8 * np.finfo(dtype).eps)), (loss_cls, reduction)
                else:
                    assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), (loss_cls, reduction)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_same_bits_for_any_thread_count(dtype, parallel_trim):
    rng = np.random.default_rng(9)
    x = rng.integers(-20, 20, 100_003).astype(dtype) * dtype(0.5)  # ties across blocks
    t = rng.normal(size=100_003).astype(dtype) * dtype(0.01)
    t[::3] = 0
    w = rng.uniform(0.1, 2, 100_003).astype(dtype)
    for tails in ("both", "upper"):
        base = None
        for nt in (1, 2, 3):
            obj = fl.Trimmed(fl.L1Loss(), 0.2, tails, n_threads=nt)
            got = (obj(x, t, weight=w),) + obj.value_and_grad(x, t, weight=w) + obj.grad_hess(x, t, weight=w)
            if base is None:
                base = got
                continue
            assert got[0] == base[0] and got[1] == base[1]
            for a, b in zip(got[2:], base[2:]):
                assert a.tobytes() == b.tobytes(), (tails, nt)
        _check(fl.L1Loss(), x, t, 0.2, tails, w, "mean", n_threads=2)


def test_keys_order_values():
    vals = [-np.inf, -1e300, -1.0, -5e-324, -0.0, 0.0, 5e-324, 1e-300, 1.0, 1e300, np.inf, np.nan]
    k64 = [_trim.key(v, True) for v in vals]
    assert k64 == sorted(k64) and k64[4] == k64[5] and len(set(k64)) == len(vals) - 1
    assert _trim.key(-np.nan, True) == _trim.key(np.nan, True) == 2 ** 64 - 1
    vals32 = [-np.inf, -3e38, -1.0, -1e-45, -0.0, 0.0, 1e-45, 1.0, 3e38, np.inf, np.nan]
    k32 = [_trim.key(float(np.float32(v)), False) for v in vals32]
    assert k32 == sorted(k32) and k32[4] == k32[5] and k32[-1] == 2 ** 32 - 1


def test_negative_zero_ties_with_zero():
    x = np.array([0.0, -0.0, 0.0, -0.0, 1.0, 2.0])
    v, g = fl.trimmed(x, np.zeros(6), fl.L1Loss(), 0.34, tails="upper", reduction="none", return_grad=True)
    # the two largest (2 then 1) are dropped; the four zeros (of either sign) are kept
    np.testing.assert_array_equal(v, [0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(g, [0, 0, 0, 0, 0, 0])
    _, g = fl.trimmed(np.array([1.0, -1.0, 1.0, 3.0]), np.zeros(4), fl.MSELoss(), 0.25, return_grad=True)
    # losses 1, 1, 1, 9: stable ranks 0, 1, 2, 3; drop rank 0 (the first 1) and rank 3 (the 9)
    np.testing.assert_array_equal(g, [0.0, -1.0, 1.0, 0.0])


def test_nan_is_never_masked():
    x = np.array([0.0, 1.0, np.nan, 2.0, 3.0])
    t = np.zeros(5)
    for tails in ("both", "upper"):
        obj = fl.Trimmed(fl.MSELoss(), 0.2, tails)  # the NaN ranks last: it is the dropped one
        assert math.isnan(obj(x, t))
        v, g = obj.value_and_grad(x, t)
        assert math.isnan(v) and math.isnan(g[2])
        none = fl.Trimmed(fl.MSELoss(), 0.2, tails, reduction="none")(x, t)
        assert math.isnan(none[2])
    w = np.array([1.0, np.nan, 1.0, 1.0, 1.0])
    x = np.array([0.0, 5.0, 1.0, 2.0, 3.0])  # the NaN weight sits on the largest loss, which is dropped
    assert math.isnan(fl.trimmed(x, t, fl.MSELoss(), 0.2, tails="upper", weight=w))
    assert fl.trimmed(x, t, fl.MSELoss(), 0.2, tails="upper", weight=np.ones(5)) == pytest.approx(14 / 4)


def test_infinite_and_negative_losses_rank():
    x = np.array([np.inf, 1.0, -2.0, 0.5, -np.inf])
    t = np.zeros(5)
    v, g = fl.trimmed(np.array([-3.0, 0.0, 1.0, 2.0, 50.0]), np.ones(5), fl.GammaNLLLoss(), 0.2,
                      reduction="none", return_grad=True)
    ref = np.array([-3.0, 0.0, 1.0, 2.0, 50.0]) + np.exp(-np.array([-3.0, 0.0, 1.0, 2.0, 50.0]))
    keep = np.zeros(5, bool)
    keep[np.argsort(ref, kind="stable")[1:4]] = True
    np.testing.assert_allclose(v, np.where(keep, ref, 0), rtol=1e-15)
    v = fl.trimmed(x, t, fl.L1Loss(), 0.2, reduction="none")
    # losses inf, 1, 2, 0.5, inf: 0.5 is the lowest rank, and of the two infs the later one the highest
    np.testing.assert_array_equal(v, [np.inf, 1.0, 2.0, 0.0, 0.0])


def test_out_and_loss_out_buffers():
    rng = np.random.default_rng(1)
    x, t = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    obj = fl.Trimmed(fl.HuberLoss(), 0.1, reduction="none")
    g_out, l_out = np.full((4, 5), np.nan), np.full((4, 5), np.nan)
    v, g = obj.value_and_grad(x, t, out=g_out, loss_out=l_out)
    assert v is l_out and g is g_out
    v2, g2 = obj.value_and_grad(x, t)
    np.testing.assert_array_equal(v, v2)
    np.testing.assert_array_equal(g, g2)
    h_out = np.full((4, 5), np.nan)
    g3, h3 = obj.grad_hess(x, t, out=(g_out, h_out))
    assert g3 is g_out and h3 is h_out
    v4, g4 = fl.trimmed(x, t, fl.HuberLoss(), 0.1, return_grad=True, out=np.empty((4, 5)))
    assert v4 == pytest.approx(fl.Trimmed(fl.HuberLoss(), 0.1)(x, t), rel=1e-15)


def test_losses_with_their_own_operands():
    """BCELoss(weight=...) and BCEWithLogitsLoss(pos_weight=...) run their own call path (two passes for
    grad_hess); the result is the same rule on their per-element values."""
    rng = np.random.default_rng(2)
    for dt in DTYPES:
        x = rng.normal(0, 3, (40, 3)).astype(dt)
        t = (rng.random((40, 3)) < 0.5).astype(dt)
        cw = np.array([1.0, 2.0, 0.5], dt)
        for loss in (fl.BCEWithLogitsLoss(pos_weight=cw), fl.BCEWithLogitsLoss(weight=cw),
                     fl.BCELoss(weight=cw)):
            xx = 1 / (1 + np.exp(-x)) if isinstance(loss, fl.BCELoss) else x
            none = type(loss)(**({"pos_weight": loss.pos_weight} if hasattr(loss, "pos_weight") else {}),
                              weight=loss.weight, reduction="none")
            l, g = none.value_and_grad(xx, t)
            _, h = none.grad_hess(xx, t)
            k = int(0.2 * l.size)
            keep = np.zeros(l.size, bool)
            keep[np.argsort(l.ravel(), kind="stable")[k:l.size - k]] = True
            keep = keep.reshape(l.shape)
            m = keep.sum()
            obj = fl.Trimmed(loss, 0.2)
            v, gg = obj.value_and_grad(xx, t)
            g2, hh = obj.grad_hess(xx, t)
            eps = np.finfo(dt).eps
            assert v == pytest.approx(float(l[keep].astype(np.float64).sum() / m), rel=float(100 * eps))
            np.testing.assert_allclose(gg, np.where(keep, g / dt(m), 0), rtol=4 * eps, atol=0)
            np.testing.assert_allclose(hh, np.where(keep, h / dt(m), 0), rtol=4 * eps, atol=0)
            np.testing.assert_array_equal(g2, gg)


def test_class_attributes_and_repr():
    obj = fl.Trimmed(fl.HuberLoss(delta=2.0), trim=0.1, tails="upper", reduction="sum", n_threads=1)
    assert (obj.trim, obj.tails, obj.reduction, obj.n_threads) == (0.1, "upper", "sum", 1)
    assert repr(obj) == ("Trimmed(loss=HuberLoss(reduction='mean', delta=2.0), trim=0.1, tails='upper', "
                         "reduction='sum')")
    loss = fl.HuberLoss(delta=2.0, reduction="sum")
    fl.Trimmed(loss, 0.1).value_and_grad(np.ones(3), np.zeros(3))
    assert loss.reduction == "sum"  # the wrapped object is not modified


def test_empty_and_tiny_inputs():
    for dt in DTYPES:
        e = np.zeros((2, 0), dt)
        v, g = fl.trimmed(e, e, fl.MSELoss(), 0.2, return_grad=True)
        assert math.isnan(v) and g.shape == (2, 0) and g.dtype == dt
        assert fl.trimmed(e, e, fl.MSELoss(), 0.2, reduction="sum") == 0.0
        one = np.array([2.0], dt)
        assert fl.trimmed(one, np.zeros(1, dt), fl.MSELoss(), 0.49) == 4.0  # int(0.49) = 0: nothing dropped
        assert fl.trimmed(dt(2.0), dt(0.0), fl.MSELoss(), 0.3) == 4.0  # 0-d


hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 30000), levels=st.sampled_from([2, 5, 50, 0]), trim=st.floats(0, 0.499),
       tails=st.sampled_from(["both", "upper"]), dtype=st.sampled_from(DTYPES), parallel=st.booleans(),
       weighted=st.booleans(), seed=st.integers(0, 2 ** 32 - 1))
def test_property_selection(n, levels, trim, tails, dtype, parallel, weighted, seed):
    rng = np.random.default_rng(seed)
    x = (rng.integers(0, levels, n) if levels else rng.normal(size=n)).astype(dtype)
    t = np.zeros(n, dtype)
    w = rng.uniform(0.1, 2, n).astype(dtype) if weighted else None
    old_pw, old_tr = _pointwise.set_parallel_threshold(0 if parallel else 65536), \
        _trim.set_parallel_threshold(0 if parallel else 65536)
    try:
        _check(fl.L1Loss(), x, t, trim, tails, w, "mean", n_threads=2 if parallel else 1)
    finally:
        _pointwise.set_parallel_threshold(old_pw)
        _trim.set_parallel_threshold(old_tr)


# ------------------------------------------------------------------ Winsorized

def _winsor_expected(loss, x, t, limit, tails, w, reduction):
    """The winsorized result from the loss's own per-element values, by a stable argsort."""
    none = type(loss)(**{k: getattr(loss, k) for k in _params(loss)}, reduction="none")
    l, g = none.value_and_grad(x, t)
    gh, h = none.grad_hess(x, t)
    n = l.size
    k = int(limit * n)
    lf, order = l.ravel().astype(np.float64), np.argsort(l.ravel(), kind="stable")
    wb = np.ones(n) if w is None else np.broadcast_to(np.asarray(w, np.float64), l.shape).ravel()
    c, coef = lf.copy(), wb.copy()
    for idx, b in (((order[:k] if tails == "both" else order[:0]), k), (order[n - k:] if k else order[:0], n - 1 - k)):
        if idx.size:
            c[idx] = lf[order[b]]
            coef[order[b]] += wb[idx].sum()
            coef[idx] = 0.0
    div = math.fsum(wb) if (w is not None and isinstance(loss, _WMEAN)) else n
    scale = 1.0 / div if (reduction == "mean" and div) else 1.0
    wc = (wb * c).reshape(l.shape)
    value = (coef * lf).reshape(l.shape) if reduction == "none" else \
        (math.fsum(wc.ravel()) * scale if (n or reduction == "sum") else np.nan)
    cg = (coef * scale).reshape(l.shape)
    return value, cg * g, cg * gh, cg * h, math.fsum(np.abs(wc).ravel()) * scale


@pytest.mark.parametrize("kind, loss, shape", [p for p in _cases() if p.values[2] in ((5,), (2, 3, 5), (8193,), ())])
def test_winsorized_matches_a_stable_argsort(kind, loss, shape):
    rng = np.random.default_rng(zlib.crc32(repr(("w", kind, type(loss).__name__, shape)).encode()))
    for dt in DTYPES:
        x, t = _data(kind, shape, dt, rng)
        w = np.asarray(rng.uniform(0.1, 2.0, shape), dt)
        eps = np.finfo(dt).eps
        for limit, tails in ((0.1, "both"), (0.25, "upper"), (0.49, "both"), (0.0, "both")):
            for reduction in ("mean", "sum", "none"):
                ww = w if reduction != "sum" else None
                ev, eg, egh, eh, absum = _winsor_expected(loss, x, t, limit, tails, ww, reduction)
                obj = fl.Winsorized(loss, limit, tails, reduction)
                v = obj(x, t, weight=ww)
                v2, g = obj.value_and_grad(x, t, weight=ww)
                g2, h = obj.grad_hess(x, t, weight=ww)
                tag = f"{kind} {type(loss).__name__} {np.dtype(dt).name} {shape} {limit} {tails} {reduction}"
                if reduction == "none":  # a boundary element's share: a sum of weights times its loss
                    np.testing.assert_allclose(v, ev, rtol=16 * eps, atol=16 * eps * float(np.abs(ev).max(initial=0)),
                                               err_msg=tag)
                    np.testing.assert_array_equal(v, v2)
                elif math.isnan(ev):
                    assert math.isnan(v) and math.isnan(v2), tag
                else:
                    assert abs(v - ev) <= {F32: 2e-6, F64: 1e-14}[dt] * absum + 1e-300 and v == v2, (tag, v, ev)
                # a boundary element's gradient is a sum of weights times its own: a few roundings
                for got, e_ in ((g, eg), (g2, egh), (h, eh)):
                    np.testing.assert_allclose(got, e_, rtol=16 * eps, atol=16 * eps * float(np.abs(e_).max(initial=0)),
                                               err_msg=tag)


def test_winsorized_against_scipy_and_reference():
    mstats = pytest.importorskip("scipy.stats.mstats")
    rng = np.random.default_rng(12)
    x, t = rng.normal(0, 2, 1001), rng.normal(0, 2, 1001)
    w = rng.uniform(0.5, 2, 1001)
    per = fl.HuberLoss(delta=0.5, reduction="none")(x, t)
    for limit in (0.0, 0.05, 0.2, 0.49):
        exp_ = float(mstats.winsorize(per, limits=(limit, limit)).mean())
        assert fl.Winsorized(fl.HuberLoss(delta=0.5), limit)(x, t) == pytest.approx(exp_, rel=1e-13)
        exp_ = float(mstats.winsorize(per, limits=(0, limit)).mean())
        assert fl.winsorized(x, t, fl.HuberLoss(delta=0.5), limit, tails="upper") == pytest.approx(exp_, rel=1e-13)
    for tails in ("both", "upper"):
        for reduction in ("mean", "sum", "none"):
            v, g = fl.winsorized(x, t, fl.HuberLoss(delta=0.5), 0.1, tails=tails, weight=w, reduction=reduction,
                                 return_grad=True)
            rv, rg = RR.winsorized("huber_loss", x, t, 0.1, tails, w, reduction, delta=0.5)
            np.testing.assert_allclose(v, rv, rtol=1e-12)
            np.testing.assert_allclose(g, rg, rtol=1e-12, atol=1e-300)
            h = fl.Winsorized(fl.HuberLoss(delta=0.5), 0.1, tails, reduction).grad_hess(x, t, weight=w)[1]
            np.testing.assert_allclose(h, RR.winsorized_hess("huber_loss", x, t, 0.1, tails, w, reduction, delta=0.5),
                                       rtol=1e-12, atol=1e-300)


def test_winsorized_reference_gradient_is_the_derivative():
    """Central differences of the reference's winsorized mean (losses well apart: the ranks do not move)."""
    rng = np.random.default_rng(0)
    d = (rng.permutation(40) * 0.37 + 0.2) * np.where(rng.random(40) < 0.5, -1, 1)
    x = rng.normal(size=40)
    t, w = x - d, rng.uniform(0.5, 2, 40)
    for tails in ("both", "upper"):
        _, g = RR.winsorized("fair_loss", x, t, 0.15, tails, w, c=1.0)
        h = RR.winsorized_hess("fair_loss", x, t, 0.15, tails, w, c=1.0)
        e = 1e-6
        for i in range(40):
            xp, xm = x.copy(), x.copy()
            xp[i] += e
            xm[i] -= e
            vp = RR.winsorized("fair_loss", xp, t, 0.15, tails, w, c=1.0)
            vm = RR.winsorized("fair_loss", xm, t, 0.15, tails, w, c=1.0)
            assert (vp[0] - vm[0]) / (2 * e) == pytest.approx(g[i], rel=1e-6, abs=1e-9)
            assert (vp[1][i] - vm[1][i]) / (2 * e) == pytest.approx(h[i], rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_winsorized_same_bits_for_any_thread_count(dtype, parallel_trim):
    rng = np.random.default_rng(19)
    x = rng.integers(-20, 20, 100_003).astype(dtype) * dtype(0.5)
    t = np.zeros(100_003, dtype)
    w = rng.uniform(0.1, 2, 100_003).astype(dtype)
    for tails in ("both", "upper"):
        base = None
        for nt in (1, 2, 3):
            obj = fl.Winsorized(fl.MSELoss(), 0.2, tails, n_threads=nt)
            got = (obj(x, t, weight=w),) + obj.value_and_grad(x, t, weight=w) + obj.grad_hess(x, t, weight=w)
            if base is None:
                base = got
                continue
            assert got[0] == base[0] and got[1] == base[1]
            for a, b in zip(got[2:], base[2:]):
                assert a.tobytes() == b.tobytes(), (tails, nt)


def test_winsorized_errors_nan_and_repr():
    x = np.ones(4)
    with pytest.raises(ValueError, match=r"Winsorized: limit must be in \[0, 0\.5\), got 0\.5"):
        fl.Winsorized(fl.MSELoss(), limit=0.5)
    with pytest.raises(ValueError, match=r"winsorized: limit must be in \[0, 0\.5\), got -1"):
        fl.winsorized(x, x, fl.MSELoss(), limit=-1)
    with pytest.raises(TypeError, match=r"Winsorized: loss must be a fastloss pointwise loss object"):
        fl.Winsorized(fl.MSELoss)
    with pytest.raises(ValueError, match=r"Winsorized: tails must be one of"):
        fl.Winsorized(fl.MSELoss(), tails="lower")
    with pytest.raises(ValueError, match=r"Winsorized: target must have the same shape"):
        fl.Winsorized(fl.MSELoss())(x, np.ones(3))
    obj = fl.Winsorized(fl.MSELoss(), 0.2, reduction="sum")
    assert repr(obj) == "Winsorized(loss=MSELoss(reduction='mean'), limit=0.2, tails='both', reduction='sum')"
    xn = np.array([0.0, 1.0, np.nan, 2.0, 3.0])
    assert math.isnan(obj(xn, np.zeros(5)))
    v, g = fl.Winsorized(fl.MSELoss(), 0.2, reduction="none").value_and_grad(xn, np.zeros(5))
    assert math.isnan(v[2]) and math.isnan(g[2])
