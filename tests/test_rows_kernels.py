"""The row-over-classes kernels equal the NumPy reference.

Every row loss in its option combinations (class weights, ignore_index,
label smoothing, soft targets, Poly-1 epsilon, focal alpha/gamma, margin
p), float32 and float64, the three reductions, shapes (C,), (N, C) and
(N, C, d1, ...) around the tile and block sizes: value, gradient,
diagonal Hessian, the Hessian-vector product, classes against functions.
Then label dtypes read in place, out= buffers, thread-count bit identity,
the spatial path against the row path, extreme logits, NaN, huge C, and
hypothesis property tests.

Tolerances: float64 within 1e-12 of the reference, relative to the largest
magnitude of the compared array; float32 within 2e-5 of it.
"""
import zlib

import numpy as np
import pytest

import fastloss as fl
from fastloss import _rows, _rows_api
from fastloss.reference import rows as R

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

F32, F64 = np.float32, np.float64
DTYPES = [F32, F64]
RTOL = {F32: 2e-5, F64: 1e-12}
REDUCTIONS = ["mean", "sum", "none"]
TILE = _rows.TILE


@pytest.fixture
def rows_parallel_always():
    """Every row call takes the parallel path, so small inputs exercise threads."""
    old = _rows.set_parallel_threshold(0)
    yield
    _rows.set_parallel_threshold(old)


def close(a, b, dt, what="", floor=0.0):
    """a equals b within RTOL[dt] of the largest magnitude of b (or of
    ``floor``, the size of the terms that make b, when b may cancel to 0)."""
    a = np.asarray(a, dtype=F64)
    b = np.asarray(b, dtype=F64)
    fin = np.isfinite(b)
    scale = max(float(np.max(np.abs(b[fin]))) if fin.any() else 1.0, floor)
    tol = RTOL[dt]
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(scale, 1e-30), equal_nan=True, err_msg=what)


def seed_of(*key):
    """A seed from the test's parameters, the same in every process (``hash`` of a str is not);
    FL_TEST_SEED_SALT varies it, to run the matrix on other data."""
    import os
    return zlib.crc32((repr(key) + os.environ.get("FL_TEST_SEED_SALT", "")).encode())


def n_classes(shape, last=False):
    return shape[-1] if last else (shape[0] if len(shape) == 1 else shape[1])


def items_of(shape):
    return () if len(shape) == 1 else (shape[0],) + tuple(shape[2:])


def labels(rng, shape, C, ignore=-100, frac=0.2):
    y = rng.integers(0, C, size=items_of(shape))
    if y.ndim and y.size > 1 and frac:
        y.reshape(-1)[rng.uniform(size=y.size) < frac] = ignore
    return y


def soft_targets(rng, shape, C):
    it = items_of(shape)
    t = rng.dirichlet(np.ones(C) * 0.7, size=int(np.prod(it)) if it else 1)
    t[::4] = np.eye(C)[rng.integers(0, C, t[::4].shape[0])]     # some one-hot rows, exact zeros
    if not it:
        return t.reshape(C)
    return np.moveaxis(t.reshape(it + (C,)), -1, 1)


# ------------------------------------------------------------------ the loss table

class Loss:
    def __init__(self, name, fn, cls, ref, ref_hess, target="labels", last=False, spatial=True):
        self.name, self.fn, self.cls, self.ref, self.ref_hess = name, fn, cls, ref, ref_hess
        self.target, self.last, self.spatial = target, last, spatial

    def __repr__(self):
        return self.name


CE = Loss("cross_entropy", fl.cross_entropy, fl.CrossEntropyLoss, R.cross_entropy, R.cross_entropy_hess)
POLY = Loss("poly1_cross_entropy", fl.poly1_cross_entropy, fl.Poly1CrossEntropyLoss, R.poly1_cross_entropy,
            R.poly1_cross_entropy_hess)
NLL = Loss("nll_loss", fl.nll_loss, fl.NLLLoss, R.nll_loss, R.nll_loss_hess, target="logp")
FOCAL = Loss("softmax_focal_loss", fl.softmax_focal_loss, fl.SoftmaxFocalLoss, R.softmax_focal_loss,
             R.softmax_focal_loss_hess)
MM = Loss("multi_margin_loss", fl.multi_margin_loss, fl.MultiMarginLoss, R.multi_margin_loss,
          R.multi_margin_loss_hess, target="margin", spatial=False)
MLSM = Loss("multilabel_soft_margin_loss", fl.multilabel_soft_margin_loss, fl.MultiLabelSoftMarginLoss,
            R.multilabel_soft_margin_loss, R.multilabel_soft_margin_loss_hess, target="multilabel", last=True)

# (loss, options); "w" means a random class-weight vector, "soft" probability targets
CASES = [
    (CE, {}), (CE, {"weight": "w"}), (CE, {"label_smoothing": 0.1}),
    (CE, {"weight": "w", "label_smoothing": 0.3, "ignore_index": 1}),
    (CE, {"soft": True}), (CE, {"soft": True, "weight": "w", "label_smoothing": 0.2}),
    (POLY, {"epsilon": 1.0}), (POLY, {"epsilon": 2.0, "weight": "w", "label_smoothing": 0.2}),
    (POLY, {"epsilon": -0.5, "soft": True, "weight": "w"}),
    (NLL, {}), (NLL, {"weight": "w", "ignore_index": 2}),
    (FOCAL, {"gamma": 2.0}), (FOCAL, {"gamma": 0.0, "alpha": 0.25}), (FOCAL, {"gamma": 0.5, "alpha": "w"}),
    (FOCAL, {"gamma": 3.0, "alpha": "w"}),
    (MM, {"p": 1}), (MM, {"p": 2, "margin": 0.5, "weight": "w"}), (MM, {"p": 1, "margin": -0.3, "weight": "w"}),
    (MLSM, {}), (MLSM, {"weight": "w"}),
]
CASE_IDS = [f"{l.name}-" + "-".join(f"{k}={v}" for k, v in o.items()) for l, o in CASES]


def make(loss, opts, shape, dt, rng):
    """(input, target, keyword options) for one case."""
    C = n_classes(shape, loss.last)
    x = (rng.normal(size=shape) * 2.5).astype(dt)
    kw = {k: v for k, v in opts.items() if k != "soft"}
    for k in ("weight", "alpha"):
        if kw.get(k) == "w":
            kw[k] = rng.uniform(0.2, 2.0, C).astype(dt)
    ii = kw.get("ignore_index", -100)
    if loss.target == "multilabel":
        t = (rng.uniform(size=shape) < 0.4).astype(dt)
        t.reshape(-1)[::7] = 0.3
    elif opts.get("soft"):
        t = soft_targets(rng, shape, C).astype(dt)
    elif loss.target == "margin":
        t = labels(rng, shape, C, frac=0)
    else:
        t = labels(rng, shape, C, ignore=ii if ii >= 0 else -100)
        if ii >= 0 and t.ndim:
            t.reshape(-1)[::5] = ii
    if loss.target == "logp":
        ax = 0 if x.ndim == 1 else 1
        x = (x - np.log(np.sum(np.exp(x.astype(F64)), axis=ax, keepdims=True))).astype(dt)
    return x, t, kw


def ref_hess(loss, xr, tr, red, kwr):
    """(reference Hessian, floor): the focal Hessian is held to the size of its terms."""
    if loss is FOCAL:
        h, scale = loss.ref_hess(xr, tr, reduction=red, return_scale=True, **kwr)
        return h, float(np.max(scale, initial=0.0))
    return loss.ref_hess(xr, tr, reduction=red, **kwr), 0.0


SHAPES = [(6,), (1, 5), (7, 4), (33, 3), (3, 5, 4), (2, 4, 3, 50), (2, 3, TILE + 17)]
MARGIN_SHAPES = [(6,), (1, 5), (7, 4), (33, 3), (5, 17)]
MLSM_SHAPES = [(6,), (7, 4), (3, 5, 4)]


def shapes_for(loss):
    return MARGIN_SHAPES if not loss.spatial and not loss.last else (MLSM_SHAPES if loss.last else SHAPES)


MATRIX = [(l, o, s) for (l, o), cid in zip(CASES, CASE_IDS) for s in shapes_for(l)]


@pytest.mark.parametrize("dt", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("loss,opts,shape", MATRIX,
                         ids=[f"{l.name}-{'-'.join(f'{k}={v}' for k, v in o.items())}-{s}" for l, o, s in MATRIX])
def test_kernel_equals_reference(loss, opts, shape, dt):
    rng = np.random.default_rng(seed_of(loss.name, opts, shape))
    x, t, kw = make(loss, opts, shape, dt, rng)
    xr = x.astype(F64)
    tr = t.astype(F64) if t.dtype.kind == "f" else t
    kwr = {k: (v.astype(F64) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    for red in REDUCTIONS:
        v, g = loss.fn(x, t, reduction=red, return_grad=True, **kw)
        vr, gr = loss.ref(xr, tr, reduction=red, **kwr)
        assert g.dtype == dt and g.shape == x.shape
        if red == "none":
            assert isinstance(v, np.ndarray) and v.dtype == dt
            assert v.shape == (x.shape[:-1] if loss.last else items_of(x.shape))
        else:
            assert type(v) is float
        close(v, vr, dt, f"value {red}")
        close(g, gr, dt, f"grad {red}")
        # the value-only call agrees with the fused one to a few ulp (bit-identity is promised
        # across thread counts; the two calls may differ in a libm-vs-libmvec exp in a tail)
        np.testing.assert_allclose(np.asarray(loss.fn(x, t, reduction=red, **kw)), np.asarray(v),
                                   rtol=4 * np.finfo(dt).eps, atol=0)
        obj = loss.cls(reduction=red, **kw)
        g2, h2 = obj.grad_hess(x, t)
        close(g2, gr, dt, f"grad_hess grad {red}")
        hr, floor = ref_hess(loss, xr, tr, red, kwr)
        close(h2, hr, dt, f"hess {red}", floor=floor)
        v3, g3 = obj.value_and_grad(x, t)
        np.testing.assert_array_equal(g3, g)
        np.testing.assert_array_equal(np.asarray(v3), np.asarray(v))


@pytest.mark.parametrize("dt", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(6,), (9, 4), (2, 5, 3, 3), (2, 3, TILE + 5)], ids=str)
@pytest.mark.parametrize("opts", [{}, {"weight": "w", "label_smoothing": 0.25, "ignore_index": 0}, {"soft": True},
                                  {"soft": True, "weight": "w", "label_smoothing": 0.1}],
                         ids=["plain", "w-ls-ii", "soft", "soft-w-ls"])
def test_hvp_equals_reference(shape, opts, dt):
    rng = np.random.default_rng(4)
    x, t, kw = make(CE, opts, shape, dt, rng)
    v = rng.normal(size=shape).astype(dt)
    tr = t.astype(F64) if t.dtype.kind == "f" else t
    kwr = {k: (a.astype(F64) if isinstance(a, np.ndarray) else a) for k, a in kw.items()}
    for red in REDUCTIONS:
        hv = fl.cross_entropy_hvp(x, t, v, reduction=red, **kw)
        assert hv.dtype == dt and hv.shape == x.shape
        close(hv, R.cross_entropy_hvp(x.astype(F64), tr, v.astype(F64), reduction=red, **kwr), dt, red)
        np.testing.assert_array_equal(fl.CrossEntropyLoss(reduction=red, **kw).hvp(x, t, v), hv)


def test_grad_hess_diag_equals_hvp_with_unit_vectors():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(3, 4))
    y = np.array([0, 3, 1])
    loss = fl.CrossEntropyLoss(weight=np.array([1.0, 2.0, 0.5, 1.5]), label_smoothing=0.2)
    _, h = loss.grad_hess(x, y)
    for j in range(4):
        e = np.zeros_like(x)
        e[:, j] = 1
        np.testing.assert_allclose(loss.hvp(x, y, e)[:, j], h[:, j], rtol=1e-13)


# ------------------------------------------------------------------ spatial == rows

@pytest.mark.parametrize("dt", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", ["ce", "ce-w-ls", "soft", "poly", "focal", "focal-w", "nll"])
@pytest.mark.parametrize("shape", [(3, 5, 7), (2, 4, 3, TILE + 3), (1, 6, 1000)], ids=str)
def test_spatial_path_equals_row_path(name, shape, dt):
    """(N, C, d...) through the tiles equals the same rows moved to (N*S, C), through the row path."""
    rng = np.random.default_rng(21)
    C = shape[1]
    x = (rng.normal(size=shape) * 3).astype(dt)
    y = labels(rng, shape, C)
    kw = {}
    fn = fl.cross_entropy
    if name == "ce-w-ls":
        kw = dict(weight=rng.uniform(0.2, 2, C), label_smoothing=0.3)
    elif name == "soft":
        y = soft_targets(rng, shape, C).astype(dt)
    elif name == "poly":
        fn, kw = fl.poly1_cross_entropy, dict(epsilon=1.5, label_smoothing=0.1)
    elif name.startswith("focal"):
        fn, kw = fl.softmax_focal_loss, dict(gamma=1.5, alpha=rng.uniform(0.2, 1, C) if name == "focal-w" else None)
    elif name == "nll":
        fn = fl.nll_loss
    xr = np.ascontiguousarray(np.moveaxis(x, 1, -1).reshape(-1, C))
    yr = np.ascontiguousarray(np.moveaxis(y, 1, -1).reshape(-1, C)) if y.dtype.kind == "f" else y.reshape(-1)
    tol = dict(rtol=1e-5, atol=1e-6) if dt == F32 else dict(rtol=1e-13, atol=1e-15)
    for red in ("sum", "none"):
        v, g = fn(x, y, reduction=red, return_grad=True, **kw)
        vr, gr = fn(xr, yr, reduction=red, return_grad=True, **kw)
        np.testing.assert_allclose(np.ravel(v), np.ravel(vr), **tol)
        np.testing.assert_allclose(np.moveaxis(g, 1, -1).reshape(-1, C), gr, **tol)
    cls = {"ce": fl.CrossEntropyLoss, "ce-w-ls": fl.CrossEntropyLoss, "soft": fl.CrossEntropyLoss,
           "poly": fl.Poly1CrossEntropyLoss, "focal": fl.SoftmaxFocalLoss, "focal-w": fl.SoftmaxFocalLoss,
           "nll": fl.NLLLoss}[name]
    h = cls(reduction="sum", **kw).grad_hess(x, y)[1]
    hr = cls(reduction="sum", **kw).grad_hess(xr, yr)[1]
    np.testing.assert_allclose(np.moveaxis(h, 1, -1).reshape(-1, C), hr, **tol)


# ------------------------------------------------------------------ labels in place

@pytest.mark.parametrize("ldt", [np.int64, np.int32, np.uint8])
def test_label_dtypes_are_read_in_place(ldt):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6))
    y = rng.integers(0, 6, 40).astype(ldt)
    spec = fl._class_losses._CE
    assert _rows_api._labels(y, spec, (40,), x.shape) is y       # no copy
    ref = fl.cross_entropy(x, y.astype(np.int64), return_grad=True)
    got = fl.cross_entropy(x, y, return_grad=True)
    assert got[0] == ref[0]
    np.testing.assert_array_equal(got[1], ref[1])
    # spatial too
    xs = rng.normal(size=(2, 6, 9))
    ys = rng.integers(0, 6, (2, 9)).astype(ldt)
    assert fl.cross_entropy(xs, ys) == fl.cross_entropy(xs, ys.astype(np.int64))


@pytest.mark.parametrize("ldt", [np.int8, np.int16, np.uint16, np.uint32, np.uint64])
def test_other_integer_labels_are_converted(ldt):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 6))
    y = rng.integers(0, 6, 10)
    assert fl.nll_loss(x, y.astype(ldt)) == fl.nll_loss(x, y)


def test_strided_labels_and_input():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 10))
    y = rng.integers(0, 6, 20)[::2]
    assert not y.flags.c_contiguous
    v = fl.cross_entropy(x.T, y, return_grad=True)
    w = fl.cross_entropy(np.ascontiguousarray(x.T), np.ascontiguousarray(y), return_grad=True)
    assert v[0] == w[0]
    np.testing.assert_array_equal(v[1], w[1])


def test_uint8_labels_with_ignore_index_255():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 4, 4)).astype(F32)
    y = rng.integers(0, 5, (2, 4, 4)).astype(np.uint8)
    y[0, 0, :] = 255
    v, g = fl.cross_entropy(x, y, ignore_index=255, return_grad=True)
    y64 = y.astype(np.int64)
    vr, gr = R.cross_entropy(x.astype(F64), y64, ignore_index=255)
    close(v, vr, F32)
    close(g, gr, F32)
    assert np.all(g[0, :, 0, :] == 0)


# ------------------------------------------------------------------ dtypes, shapes, degenerate

def test_dtype_policy():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 5)
    for xdt, want in [(np.float16, F32), (F32, F32), (F64, F64), (np.int32, F64), (np.bool_, F64)]:
        x = (rng.normal(size=(5, 4)) * 2).astype(xdt)
        v, g = fl.cross_entropy(x, y, return_grad=True)
        assert g.dtype == want
        assert fl.cross_entropy(x, y, reduction="none").dtype == want
    # soft targets follow input's dtype
    t = np.full((5, 4), 0.25)
    assert fl.cross_entropy(np.zeros((5, 4), F32), t, return_grad=True)[1].dtype == F32


def test_unbatched_and_empty():
    x = np.array([1.0, 2.0, 0.5])
    v = fl.cross_entropy(x, 1, reduction="none")
    assert isinstance(v, np.ndarray) and v.shape == ()
    assert float(v) == pytest.approx(R.cross_entropy(x, 1, reduction="none")[0], rel=1e-14)
    assert fl.cross_entropy(x, np.int64(1)) == pytest.approx(float(v), rel=1e-15)
    for fn in (fl.cross_entropy, fl.nll_loss, fl.softmax_focal_loss, fl.multi_margin_loss):
        assert np.isnan(fn(np.zeros((0, 4)), np.zeros(0, np.int64)))
        assert fn(np.zeros((0, 4)), np.zeros(0, np.int64), reduction="sum") == 0.0
        v, g = fn(np.zeros((0, 4)), np.zeros(0, np.int64), reduction="none", return_grad=True)
        assert v.shape == (0,) and g.shape == (0, 4)
    assert np.isnan(fl.cross_entropy(np.zeros((2, 4, 0)), np.zeros((2, 0), np.int64)))
    assert np.isnan(fl.multilabel_soft_margin_loss(np.zeros((0, 3)), np.zeros((0, 3))))


def test_all_ignored_mean_is_nan_and_grad_zero():
    x = np.random.default_rng(0).normal(size=(4, 3))
    y = np.full(4, -100)
    v, g = fl.cross_entropy(x, y, return_grad=True, label_smoothing=0.2)
    assert np.isnan(v)
    assert np.all(g == 0)
    assert fl.cross_entropy(x, y, reduction="sum") == 0.0
    assert np.isnan(fl.nll_loss(x, y))
    assert np.isnan(fl.softmax_focal_loss(x, y))


def test_weighted_mean_uses_non_ignored_weights():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 3))
    y = np.array([0, 1, 2, -100, 2, 2])
    w = np.array([1.0, 3.0, 0.5])
    s = fl.cross_entropy(x, y, weight=w, label_smoothing=0.2, reduction="sum")
    assert fl.cross_entropy(x, y, weight=w, label_smoothing=0.2) == pytest.approx(s / (1 + 3 + 0.5 * 3), rel=1e-14)
    s = fl.softmax_focal_loss(x, y, alpha=w, reduction="sum")
    assert fl.softmax_focal_loss(x, y, alpha=w) == pytest.approx(s / 5, rel=1e-14)


# ------------------------------------------------------------------ out= buffers

def test_out_buffers_are_used():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 3, 4)).astype(F32)
    y = rng.integers(0, 3, (5, 4))
    g = np.empty_like(x)
    v, g2 = fl.cross_entropy(x, y, return_grad=True, out=g)
    assert g2 is g
    loss = fl.CrossEntropyLoss(reduction="none")
    lo = np.empty((5, 4), F32)
    v, g3 = loss.value_and_grad(x, y, out=g, loss_out=lo)
    assert v is lo and g3 is g
    gb, hb = np.empty_like(x), np.empty_like(x)
    g4, h4 = loss.grad_hess(x, y, out=(gb, hb))
    assert g4 is gb and h4 is hb
    hv = np.empty_like(x)
    assert loss.hvp(x, y, np.ones_like(x), out=hv) is hv
    assert fl.cross_entropy_hvp(x, y, np.ones_like(x), out=hv) is hv
    np.testing.assert_allclose(hv, 0, atol=1e-6)        # H 1 = 0: softmax is shift-invariant


def test_inputs_are_not_modified():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 5))
    y = rng.integers(0, 5, 4)
    t = soft_targets(rng, (4, 5), 5)
    w = rng.uniform(size=5)
    copies = [a.copy() for a in (x, y, t, w)]
    fl.CrossEntropyLoss(weight=w, label_smoothing=0.1).grad_hess(x, y)
    fl.CrossEntropyLoss(weight=w).grad_hess(x, t)
    fl.cross_entropy_hvp(x, y, x)
    for a, b in zip((x, y, t, w), copies):
        np.testing.assert_array_equal(a, b)


def test_read_only_inputs():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 5)).astype(F32)
    y = rng.integers(0, 5, 4).astype(np.int32)
    x.flags.writeable = False
    y.flags.writeable = False
    v, g = fl.cross_entropy(x, y, return_grad=True)
    assert np.isfinite(v) and g.flags.writeable


# ------------------------------------------------------------------ threads

THREAD_CASES = [
    ("ce", (3000, 7), {}), ("ce", (40, 1000), {"label_smoothing": 0.1, "weight": "w"}), ("ce", (70, 1003), {}),
    ("ce", (3, 5, 60, 61), {"weight": "w"}), ("soft", (700, 40), {}), ("soft", (2, 6, 1500), {}),
    ("poly", (500, 33), {"epsilon": 1.0}), ("focal", (4, 6, 700), {"gamma": 2.0}), ("focal", (900, 20), {}), ("focal", (60, 300), {"gamma": 2.0}),
    ("nll", (2, 5, 3000), {}), ("mm", (2000, 9), {"p": 2}), ("mlsm", (1500, 11), {}),
]


@pytest.mark.parametrize("dt", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name,shape,opts", THREAD_CASES, ids=[f"{n}-{s}" for n, s, _ in THREAD_CASES])
def test_bit_identical_for_any_thread_count(name, shape, opts, dt, rows_parallel_always):
    rng = np.random.default_rng(5)
    loss = {"ce": CE, "soft": CE, "poly": POLY, "focal": FOCAL, "nll": NLL, "mm": MM, "mlsm": MLSM}[name]
    x, t, kw = make(loss, dict(opts, soft=True) if name == "soft" else opts, shape, dt, rng)
    results = []
    for nt in (1, 2, 3, 4):
        obj = loss.cls(reduction="mean", n_threads=nt, **kw)
        v, g = obj.value_and_grad(x, t)
        _, h = obj.grad_hess(x, t)
        lo = loss.cls(reduction="none", n_threads=nt, **kw)(x, t)
        results.append((v, g, h, lo))
    for v, g, h, lo in results[1:]:
        assert v == results[0][0] or (np.isnan(v) and np.isnan(results[0][0]))
        np.testing.assert_array_equal(g, results[0][1])
        np.testing.assert_array_equal(h, results[0][2])
        np.testing.assert_array_equal(lo, results[0][3])


def test_threads_release_the_gil_and_agree():
    import concurrent.futures
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 50)).astype(F32)
    y = rng.integers(0, 50, 3000)
    want = fl.cross_entropy(x, y, return_grad=True, n_threads=1)
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        got = list(ex.map(lambda _: fl.cross_entropy(x, y, return_grad=True, n_threads=1), range(8)))
    for v, g in got:
        assert v == want[0]
        np.testing.assert_array_equal(g, want[1])


# ------------------------------------------------------------------ extremes

@pytest.mark.parametrize("dt", DTYPES, ids=["f32", "f64"])
def test_huge_logits(dt):
    x = np.array([[1e4, -1e4, 0.0], [1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]], dt)
    y = np.array([0, 1, 2])
    v, g = fl.cross_entropy(x, y, reduction="none", return_grad=True)
    np.testing.assert_allclose(v, [0.0, 2e4, 0.0], rtol=1e-6)
    np.testing.assert_allclose(g, [[0, 0, 0], [1, -1, 0], [0, 0, 0]], atol=1e-30)
    _, h = fl.CrossEntropyLoss(reduction="sum").grad_hess(x, y)
    assert np.all(h == 0)
    for gm in (0.0, 0.5, 2.0):
        fv, fg = fl.softmax_focal_loss(x, y, gamma=gm, reduction="none", return_grad=True)
        assert np.all(np.isfinite(fv)) and np.all(np.isfinite(fg))
        np.testing.assert_allclose(fv[[0, 2]], 0.0, atol=1e-30)
        np.testing.assert_allclose(fv[1], 2e4, rtol=1e-6)
        fh = fl.SoftmaxFocalLoss(gamma=gm, reduction="sum").grad_hess(x, y)[1]
        assert np.all(np.isfinite(fh))
    assert np.isfinite(fl.poly1_cross_entropy(x, y))
    assert np.isfinite(fl.multi_margin_loss(x, y, p=2))
    xm = np.array([[1e4, -1e4], [-1e4, 1e4]], dt)
    mv, mg = fl.multilabel_soft_margin_loss(xm, (xm > 0).astype(dt), return_grad=True)
    assert mv == 0.0 and np.all(mg == 0)
    mv = fl.multilabel_soft_margin_loss(xm, (xm < 0).astype(dt), reduction="none")
    np.testing.assert_allclose(mv, [1e4, 1e4], rtol=1e-6)


@pytest.mark.parametrize("dt", DTYPES, ids=["f32", "f64"])
def test_minus_inf_on_a_non_target_class(dt):
    x = np.array([[2.0, -np.inf, 0.5], [-np.inf, 1.0, 1.0]], dt)
    y = np.array([0, 2])
    v, g = fl.cross_entropy(x, y, reduction="none", return_grad=True)
    vr, gr = R.cross_entropy(x.astype(F64), y, reduction="none")
    close(v, vr, dt)
    close(g, gr, dt)
    assert g[0, 1] == 0 and g[1, 0] == 0
    _, h = fl.CrossEntropyLoss().grad_hess(x, y)
    assert np.all(np.isfinite(h))
    # label smoothing puts target mass on the -inf class: the loss is +inf (as PyTorch)
    assert fl.cross_entropy(x, y, label_smoothing=0.1) == np.inf
    # ... unless that class has weight 0
    w = np.array([1.0, 0.0, 1.0])
    assert np.isfinite(fl.cross_entropy(x[:1], y[:1], label_smoothing=0.1, weight=w))
    # soft targets with an exact 0 on the -inf class: finite (the 0 log 0 = 0 limit)
    t = np.array([[0.7, 0.0, 0.3], [0.0, 0.5, 0.5]], dt)
    v, g = fl.cross_entropy(x, t, return_grad=True)
    vr, gr = R.cross_entropy(x.astype(F64), t.astype(F64))
    close(v, vr, dt)
    close(g, gr, dt)
    assert np.isfinite(fl.softmax_focal_loss(x, y))
    assert np.all(np.isfinite(fl.SoftmaxFocalLoss().grad_hess(x, y)[1]))


def test_probabilities_with_exact_zeros_and_ones():
    x = np.array([[3.0, 1.0, -2.0], [0.0, 0.0, 0.0]])
    t = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(fl.cross_entropy(x, t, reduction="none"),
                               fl.cross_entropy(x, np.array([0, 2]), reduction="none"), rtol=1e-15)


@pytest.mark.parametrize("dt", DTYPES, ids=["f32", "f64"])
def test_nan_propagates_to_its_row_only(dt):
    x = np.random.default_rng(0).normal(size=(4, 5)).astype(dt)
    x[1, 3] = np.nan
    y = np.array([0, 1, 2, 3])
    v, g = fl.cross_entropy(x, y, reduction="none", return_grad=True)
    assert np.isnan(v[1]) and np.all(np.isfinite(v[[0, 2, 3]]))
    assert np.all(np.isnan(g[1])) and np.all(np.isfinite(g[[0, 2, 3]]))
    assert np.isnan(fl.cross_entropy(x, y))
    assert np.isfinite(fl.cross_entropy(x, np.array([0, -100, 2, 3])))   # ignored rows are not read
    for fn in (fl.nll_loss, fl.softmax_focal_loss, fl.multi_margin_loss, fl.poly1_cross_entropy):
        assert np.isnan(fn(x, np.array([0, 1, 2, 3]) if fn is not fl.nll_loss else np.array([0, 3, 2, 3])))
    assert np.isnan(fl.multilabel_soft_margin_loss(x, np.zeros_like(x)))


@pytest.mark.parametrize("dt", DTYPES, ids=["f32", "f64"])
def test_language_model_vocabulary(dt):
    """C = 50000: per-row sums over many chunks; nothing grows with C."""
    rng = np.random.default_rng(9)
    x = (rng.normal(size=(3, 50000)) * 4).astype(dt)
    y = np.array([5, 49999, 123])
    x[0, 5] = 30.0
    for opts in ({}, {"label_smoothing": 0.1}):
        v, g = fl.cross_entropy(x, y, return_grad=True, **opts)
        vr, gr = R.cross_entropy(x.astype(F64), y, **opts)
        close(v, vr, dt)
        close(g, gr, dt)


def test_float32_confident_rows_keep_focal_digits():
    """1 - p_y is summed from the other classes: a focal loss of ~1e-21 has float digits."""
    x = np.array([[12.0, 0.0, -1.0, 0.5]], F32)
    y = np.array([0])
    v = fl.softmax_focal_loss(x, y, gamma=2.0, reduction="sum")
    vr = R.softmax_focal_loss(x.astype(F64), y, gamma=2.0, reduction="sum")[0]
    assert v == pytest.approx(vr, rel=1e-5)


# ------------------------------------------------------------------ properties

@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 9), C=st.integers(1, 9), spatial=st.sampled_from([(), (3,), (2, 5)]),
    dt=st.sampled_from(DTYPES), red=st.sampled_from(REDUCTIONS), weighted=st.booleans(),
    ls=st.sampled_from([0.0, 0.15, 1.0]), soft=st.booleans(), nt=st.integers(1, 3),
    scale=st.sampled_from([0.1, 3.0, 50.0]), seed=st.integers(0, 2 ** 16),
)
def test_property_cross_entropy(n, C, spatial, dt, red, weighted, ls, soft, nt, scale, seed):
    rng = np.random.default_rng(seed)
    shape = (n, C) + spatial
    x = (rng.normal(size=shape) * scale).astype(dt)
    t = soft_targets(rng, shape, C).astype(dt) if soft and n else labels(rng, shape, C)
    w = rng.uniform(0.1, 3, C) if weighted else None
    v, g = fl.cross_entropy(x, t, weight=w, label_smoothing=ls, reduction=red, return_grad=True, n_threads=nt)
    tr = t.astype(F64) if t.dtype.kind == "f" else t
    vr, gr = R.cross_entropy(x.astype(F64), tr, weight=w, label_smoothing=ls, reduction=red)
    # the gradient M p - q may cancel to 0: hold it to the size of its terms, gs * M
    q, _, denom, _ = R._targets(tr, shape, int(np.prod(items_of(shape))), C, w, -100, ls)
    terms = float(q.sum(axis=1).max(initial=0.0)) / (denom if red == "mean" and denom else 1.0)
    close(v, vr, dt)
    close(g, gr, dt, floor=terms)
    h = fl.CrossEntropyLoss(weight=w, label_smoothing=ls, reduction=red).grad_hess(x, t)[1]
    close(h, R.cross_entropy_hess(x.astype(F64), tr, weight=w, label_smoothing=ls, reduction=red), dt)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 6), C=st.integers(2, 7), spatial=st.sampled_from([(), (4,)]),
       gamma=st.sampled_from([0.0, 0.5, 1.0, 2.0, 4.0]), alpha=st.sampled_from([None, 0.3, "w"]),
       dt=st.sampled_from(DTYPES), seed=st.integers(0, 2 ** 16))
def test_property_focal(n, C, spatial, gamma, alpha, dt, seed):
    rng = np.random.default_rng(seed)
    shape = (n, C) + spatial
    x = (rng.normal(size=shape) * 3).astype(dt)
    y = labels(rng, shape, C)
    a = rng.uniform(0.1, 1, C) if alpha == "w" else alpha
    v, g = fl.softmax_focal_loss(x, y, alpha=a, gamma=gamma, return_grad=True)
    vr, gr = R.softmax_focal_loss(x.astype(F64), y, alpha=a, gamma=gamma)
    close(v, vr, dt)
    close(g, gr, dt)
    h = fl.SoftmaxFocalLoss(alpha=a, gamma=gamma).grad_hess(x, y)[1]
    hr, scale = R.softmax_focal_loss_hess(x.astype(F64), y, alpha=a, gamma=gamma, return_scale=True)
    close(h, hr, dt, floor=float(np.max(scale, initial=0.0)))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 8), C=st.integers(1, 6), p=st.sampled_from([1, 2]), margin=st.floats(-1, 2),
       weighted=st.booleans(), dt=st.sampled_from(DTYPES), seed=st.integers(0, 2 ** 16))
def test_property_multi_margin(n, C, p, margin, weighted, dt, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, C)).astype(dt)
    y = rng.integers(0, C, n)
    w = rng.uniform(0.1, 3, C) if weighted else None
    v, g = fl.multi_margin_loss(x, y, p, margin, weight=w, return_grad=True)
    vr, gr = R.multi_margin_loss(x.astype(F64), y, p, margin, weight=w)
    # the hinge margin - x_y + x_c cancels: hold the value to the size of its terms
    terms = (abs(margin) + 2 * float(np.max(np.abs(x)))) ** p * (1.0 if w is None else float(w.max()))
    close(v, vr, dt, floor=terms)
    close(g, gr, dt)


# ------------------------------------------------------------------ instruction-set paths

_ISA_PROBE = """
import numpy as np, fastloss as fl
from fastloss import _rows
rng = np.random.default_rng(3)
out = {"isa": _rows.isa_name()}
for dt in (np.float32, np.float64):
    x = (rng.normal(size=(50, 37)) * 4).astype(dt)
    y = rng.integers(0, 37, 50)
    xs = (rng.normal(size=(3, 7, 150)) * 4).astype(dt)
    ys = rng.integers(0, 7, (3, 150))
    for name, (a, b) in {"rows": (x, y), "tiles": (xs, ys)}.items():
        v, g = fl.cross_entropy(a, b, return_grad=True, label_smoothing=0.1)
        h = fl.SoftmaxFocalLoss(gamma=2.0).grad_hess(a, b)[1]
        out[f"{name}-{np.dtype(dt).name}"] = (v, g.tolist(), h.tolist())
import json, sys
json.dump(out, sys.stdout)
"""


def test_baseline_and_avx2_paths_agree():
    """FASTLOSS_FORCE_BASELINE=1 selects the baseline kernels; both paths give the same
    results to the dtype's precision (the code is the same, the vector widths differ)."""
    import json
    import os
    import subprocess
    import sys

    def probe(force):
        env = dict(os.environ, FASTLOSS_FORCE_BASELINE="1" if force else "0")
        p = subprocess.run([sys.executable, "-c", _ISA_PROBE], capture_output=True, text=True, env=env,
                           timeout=120)
        assert p.returncode == 0, p.stderr[-2000:]
        return json.loads(p.stdout)

    base, best = probe(True), probe(False)
    assert base["isa"] == "baseline"
    for key in base:
        if key == "isa":
            continue
        dt = F32 if key.endswith("float32") else F64
        for a, b in zip(base[key], best[key]):
            close(a, b, dt, key)


@pytest.mark.parametrize("dt", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("C", [1, 3, 5, 7, 15, 17, 19, 65, 67, 1003])
def test_row_max_found_anywhere(C, dt):
    # The row max (r_max; float64 on x86-64-v3 by 16 classes a step, then 4, then the last 4
    # again or one by one) must see every class: softmax is shift-invariant, so a max that missed
    # a class would go unnoticed, except that a logit far above the rest (800 in float64, 100 in
    # float32) then makes exp(z - m) overflow.
    rng = np.random.default_rng(C)
    for pos in sorted({0, C // 2, C - 4 if C >= 4 else 0, C - 1}):
        x = rng.standard_normal((3, C)).astype(dt)
        x[:, pos] = 800 if dt == np.float64 else 100
        y = np.array([pos, 0, C - 1])
        for opts in ({}, {"label_smoothing": 0.1}):
            v, g = fl.cross_entropy(x, y, reduction="none", return_grad=True, **opts)
            rv, rg = R.cross_entropy(x.astype(np.float64), y, reduction="none", **opts)
            assert np.all(np.isfinite(v)) and np.all(np.isfinite(g)), (pos, opts)
            np.testing.assert_allclose(v, rv, rtol=1e-5 if dt == np.float32 else 1e-12, atol=1e-30)
            np.testing.assert_allclose(g, rg, rtol=0, atol=1e-5 if dt == np.float32 else 1e-12)


@pytest.mark.parametrize("dt", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("C", [1, 2, 7, 8, 9, 37, 64, 65, 200, 257, 260, 263, 1003])
def test_small_and_large_class_paths(C, dt):
    # rows_ce_plain exponentiates a group of rows in one flat loop for C <= 64 (RW_SMALL_C) and
    # parks then sums each row for larger C (float64 on x86-64-v3: one pass, sumexp_park_d4, whose
    # sums must be the value-only call's RW_SUM2 bits); both sides of the switch, the tails of the
    # lane sums (C not a multiple of 8, C < 8, a last chunk of 256 classes shorter than 8: C = 257,
    # 260, 263), ignored rows (their gradient must be zeroed, even in a
    # NaN-filled out= buffer), a confident row, -inf on a non-target class and a NaN row
    rng = np.random.default_rng(C)
    n = 29
    x = (rng.standard_normal((n, C)) * 3).astype(dt)
    y = rng.integers(0, C, n)
    y[::6] = -100
    if C > 2:
        y[1] = 1
        x[1, 0] = -np.inf
        x[3, y[3]] += 40
    tol = 1e-5 if dt == np.float32 else 1e-12
    out = np.full_like(x, np.nan)
    v, g = fl.cross_entropy(x, y, return_grad=True, out=out)
    assert g is out
    assert v == fl.cross_entropy(x, y)                 # value-only: the same bits
    rv, rg = R.cross_entropy(x.astype(np.float64), y)
    assert abs(v - rv) <= tol * abs(rv)
    np.testing.assert_allclose(g, rg, rtol=0, atol=tol)
    assert np.all(g[::6] == 0)
    vn = fl.cross_entropy(x, y, reduction="none")
    rvn, _ = R.cross_entropy(x.astype(np.float64), y, reduction="none")
    np.testing.assert_allclose(vn, rvn, rtol=tol, atol=1e-30)  # per row, relative: the confident row too
    xn = x.copy()
    xn[4, 0] = np.nan
    vn, gn = fl.cross_entropy(xn, y, reduction="none", return_grad=True)
    assert np.isnan(vn[4]) and np.isnan(gn[4]).all()
    assert not np.isnan(np.delete(vn, 4)).any() and not np.isnan(np.delete(gn, 4, axis=0)).any()


@pytest.mark.parametrize("C", [1, 3, 8, 13, 16, 31, 32, 33, 64])
def test_eight_row_groups_agree_with_single_rows(C):
    # On the x86-64-v3 path, float32 rows_ce_plain runs whole groups of 8 rows with the rows in
    # AVX2 lanes (8 x 8 transposes); a row alone (or in a group cut short at the end of a call)
    # takes the flat path.  Both must give the same bits per row: loss, gradient and Hessian,
    # with weights, ignored rows, a NaN row, +-inf and huge logits among the rows.
    rng = np.random.default_rng(100 + C)
    n = 24
    x = (rng.standard_normal((n, C)) * 3).astype(F32)
    y = rng.integers(0, C, n)
    y[2] = y[13] = -100
    x[5, :] = -np.inf
    x[6, 0] = np.nan
    x[7, C - 1] = np.inf
    x[9] = 1e30
    x[10, ::2] = -1e30
    x[11, :] = 0
    w = rng.random(C).astype(F32) + 0.5
    loss = fl.CrossEntropyLoss(weight=w, reduction="none")
    lo = fl.cross_entropy(x, y, weight=w, reduction="none")
    vs, g = fl.cross_entropy(x, y, weight=w, reduction="sum", return_grad=True)
    gg, hh = loss.grad_hess(x, y)
    for i in range(n):
        li = fl.cross_entropy(x[i:i + 1], y[i:i + 1], weight=w, reduction="none")
        _, gi = fl.cross_entropy(x[i:i + 1], y[i:i + 1], weight=w, reduction="sum", return_grad=True)
        gh_i = loss.grad_hess(x[i:i + 1], y[i:i + 1])
        np.testing.assert_array_equal(lo[i:i + 1], li)
        np.testing.assert_array_equal(g[i:i + 1], gi)
        np.testing.assert_array_equal(gg[i:i + 1], gh_i[0])
        np.testing.assert_array_equal(hh[i:i + 1], gh_i[1])
    assert np.isnan(vs)                                # the NaN row's loss is in the sum


@pytest.mark.parametrize("C", [13, 32, 64])
def test_eight_row_groups_exp_grid_label_types(C):
    # The 8-row groups' exponential (exp8_v3, fl_vmath_v3.h: two operations fewer than exp_np,
    # the same values) against the flat path's exp_np, over differences z - max that cover
    # [-90, 0] densely: the cut at -87.3, e = 1 within an ulp of 0, subnormal-range logits.
    # Rows in calls of 7 take the flat path only.  The labels read in vectors (int64) and in
    # a loop (int32, uint8), and an ignore_index inside [0, C), give the same bits.
    rng = np.random.default_rng(C)
    n = 1024
    grid = np.concatenate([np.linspace(-90.0, 0.0, n * (C - 1) - 64),
                           -87.3 + np.arange(-16, 16) * 4e-6, -np.ldexp(1.0, -np.arange(20, 52))])
    x = np.zeros((n, C), F32)
    x[:, 1:] = rng.permutation(grid.astype(F32)).reshape(n, C - 1)
    x[::3] += rng.standard_normal((len(x[::3]), 1)).astype(F32) * 20   # a row-wise shift keeps z - max
    y = rng.integers(0, C, n)
    y[::5] = 0
    w = (rng.random(C) + 0.5).astype(F32)
    lo, g = fl.cross_entropy(x, y, weight=w, reduction="none", return_grad=True)
    for a in range(0, n, 7):
        la, ga = fl.cross_entropy(x[a:a + 7], y[a:a + 7], weight=w, reduction="none", return_grad=True)
        np.testing.assert_array_equal(lo[a:a + 7], la)
        np.testing.assert_array_equal(g[a:a + 7], ga)
    for dt in (np.int32, np.uint8):
        l2, g2 = fl.cross_entropy(x, y.astype(dt), weight=w, reduction="none", return_grad=True)
        np.testing.assert_array_equal(l2, lo)
        np.testing.assert_array_equal(g2, g)
    for dt in (np.int64, np.int32, np.uint8):
        l0, g0 = fl.cross_entropy(x, y.astype(dt), weight=w, ignore_index=0, reduction="none", return_grad=True)
        keep = y != 0
        assert np.all(l0[~keep] == 0) and np.all(g0[~keep] == 0)
        np.testing.assert_array_equal(l0[keep], lo[keep])
        np.testing.assert_array_equal(g0[keep], g[keep])
    rv, rg = R.cross_entropy(x.astype(F64), y, weight=w.astype(F64), reduction="none")
    np.testing.assert_allclose(lo, rv, rtol=2e-5, atol=1e-30)
    np.testing.assert_allclose(g, rg, rtol=0, atol=2e-6)
