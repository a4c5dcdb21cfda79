"""Set-overlap kernels (segmentation Dice / Jaccard / Tversky / BCE+Dice /
CE+Dice, Lovasz hinge and softmax, box IoU losses) against the NumPy
reference: every mode and option, both dtypes, every reduction, per_image;
bit-identity for any thread count; out= buffers; empty masks, ignored
pixels, absent classes, degenerate and inverted boxes; NaN propagation;
hypothesis properties.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastloss as fl
import fastloss.reference as R
from fastloss import _overlap

F32, F64 = np.float32, np.float64
REDS = ["mean", "sum", "none"]


@pytest.fixture
def overlap_parallel():
    old = _overlap.set_parallel_threshold(0)
    yield
    _overlap.set_parallel_threshold(old)


def close(a, b, dtype, what, rtol=None, atol=None):
    a, b = np.asarray(a, F64), np.asarray(b, F64)
    assert a.shape == b.shape, (what, a.shape, b.shape)
    if rtol is None:
        rtol, atol = (1e-12, 1e-14) if dtype == F64 else (2e-5, 2e-6)
    scale = max(float(np.max(np.abs(b))) if b.size else 1.0, 1e-30)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol * scale, err_msg=what)


def seg_data(mode, shape=(3, 4, 5, 6), seed=0, dtype=F64, ignore=None, soft=False):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 1.5).astype(dtype)
    if mode == "multiclass":
        y = rng.integers(0, shape[1], (shape[0],) + shape[2:])
        if ignore is not None:
            y[rng.random(y.shape) < 0.2] = ignore
        return x, y
    if mode == "binary":
        x = x[:, 0]
    t = rng.random(x.shape) if soft else (rng.random(x.shape) > 0.5).astype(F64)
    if ignore is not None:
        t[rng.random(t.shape) < 0.2] = ignore
    return x, t.astype(dtype)


SEG = {
    "dice": (fl.dice_loss, R.dice_loss, {}),
    "jaccard": (fl.jaccard_loss, R.jaccard_loss, {}),
    "tversky": (fl.tversky_loss, R.tversky_loss, {"alpha": 0.3, "beta": 0.7, "gamma": 4 / 3}),
}


def both(fn, ref, x, t, dtype, **kw):
    v, g = fn(x, t, return_grad=True, **kw)
    rv, rg = ref(x.astype(F64), t, **kw)
    close(v, rv, dtype, f"value {kw}")
    close(g, rg, dtype, f"grad {kw}")
    assert g.dtype == x.dtype and g.shape == x.shape
    assert fn(x, t, **kw) == v if not isinstance(v, np.ndarray) else np.array_equal(fn(x, t, **kw), v)
    return v, g


@pytest.mark.parametrize("name", list(SEG))
@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("reduction", REDS)
def test_seg_vs_reference(name, mode, dtype, per_image, reduction):
    fn, ref, kw = SEG[name]
    x, t = seg_data(mode, dtype=dtype)
    both(fn, ref, x, t, dtype, mode=mode, per_image=per_image, reduction=reduction, **kw)


@pytest.mark.parametrize("name", list(SEG))
@pytest.mark.parametrize("opts", [
    {"mode": "multiclass", "ignore_index": 255, "smooth": 1.0},
    {"mode": "multiclass", "classes": [0, 2], "weight": [1.0, 2.0, 0.5, 3.0], "log_loss": True},
    {"mode": "multiclass", "from_logits": False},
    {"mode": "multilabel", "ignore_index": -1, "log_loss": True, "smooth": 0.5},
    {"mode": "multilabel", "soft": True, "weight": [0.5, 1.0, 2.0, 1.0], "classes": [1, 3]},
    {"mode": "binary", "soft": True, "smooth": 2.0, "eps": 1e-3},
    {"mode": "binary", "from_logits": False, "ignore_index": 7},
])
@pytest.mark.parametrize("dtype", [F64, F32])
def test_seg_options_vs_reference(name, opts, dtype):
    fn, ref, kw = SEG[name]
    opts = dict(opts)
    soft = opts.pop("soft", False)
    x, t = seg_data(opts["mode"], dtype=dtype, ignore=opts.get("ignore_index"), soft=soft)
    if not opts.get("from_logits", True):
        x = (np.random.default_rng(1).random(x.shape)).astype(dtype)
        if opts["mode"] == "multiclass":
            x = (x / x.sum(axis=1, keepdims=True)).astype(dtype)
    for per_image in (False, True):
        both(fn, ref, x, t, dtype, per_image=per_image, **opts, **kw)


@pytest.mark.parametrize("mode", ["binary", "multilabel"])
@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("per_image", [False, True])
def test_bce_dice_vs_reference(mode, dtype, per_image):
    x, t = seg_data(mode, dtype=dtype, soft=True)
    for kw in ({}, {"bce_weight": 0.3, "dice_weight": 2.0, "smooth": 1.0}):
        for red in REDS:
            both(fl.bce_dice_loss, R.bce_dice_loss, x, t, dtype, mode=mode, per_image=per_image, reduction=red,
                 **kw)
    x, t = seg_data(mode, dtype=dtype, ignore=255)
    both(fl.bce_dice_loss, R.bce_dice_loss, x, t, dtype, mode=mode, per_image=per_image, ignore_index=255)


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("per_image", [False, True])
def test_ce_dice_vs_reference(dtype, per_image):
    x, y = seg_data("multiclass", dtype=dtype, ignore=255)
    for kw in ({}, {"ce_weight": 0.5, "dice_weight": 2.0, "weight": [1, 2, 3, 4.0], "classes": [0, 1, 3]}):
        for red in REDS:
            both(fl.ce_dice_loss, R.ce_dice_loss, x, y, dtype, per_image=per_image, reduction=red,
                 ignore_index=255, **kw)


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("reduction", REDS)
def test_lovasz_vs_reference(dtype, per_image, reduction):
    x, t = seg_data("binary", dtype=dtype, ignore=255)
    both(fl.lovasz_hinge_loss, R.lovasz_hinge_loss, x, t, dtype, per_image=per_image, reduction=reduction,
         ignore_index=255)
    x, y = seg_data("multiclass", dtype=dtype, ignore=255)
    for classes in ("present", "all", [1, 3]):
        both(fl.lovasz_softmax_loss, R.lovasz_softmax_loss, x, y, dtype, per_image=per_image, reduction=reduction,
             ignore_index=255, classes=classes)
    both(fl.lovasz_softmax_loss, R.lovasz_softmax_loss, x, y, dtype, per_image=per_image, reduction=reduction,
         ignore_index=255, weight=[0.5, 2.0, 1.0, 3.0])
    p = np.random.default_rng(3).dirichlet(np.ones(4), size=(3, 5, 6)).transpose(0, 3, 1, 2).astype(dtype)
    both(fl.lovasz_softmax_loss, R.lovasz_softmax_loss, p, y, dtype, per_image=per_image, reduction=reduction,
         ignore_index=255, from_logits=False)


BOX = ["box_iou_loss", "generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss"]


def box_data(n=300, seed=0, dtype=F64):
    rng = np.random.default_rng(seed)
    b1 = rng.uniform(0, 10, (n, 4))
    b1[:, 2:] = b1[:, :2] + rng.uniform(0.1, 4, (n, 2))
    b2 = b1 + rng.normal(0, 1.5, (n, 4))
    b2[:, 2:] = np.maximum(b2[:, 2:], b2[:, :2] + 0.05)
    # identical, touching, disjoint, zero-height, point and inverted boxes
    b2[0] = b1[0]
    b2[1] = [b1[1, 2], b1[1, 1], b1[1, 2] + 1, b1[1, 3]]
    b2[2] = b1[2] + 20
    b1[3, 3] = b1[3, 1]
    b1[4, 2:] = b1[4, :2]
    b1[5] = b1[5, [2, 3, 0, 1]]
    return b1.astype(dtype), b2.astype(dtype)


@pytest.mark.parametrize("name", BOX)
@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("reduction", REDS)
def test_boxes_vs_reference(name, dtype, reduction):
    b1, b2 = box_data(dtype=dtype)
    v, g1, g2 = getattr(fl, name)(b1, b2, reduction, return_grad=True)
    rv, rg1, rg2 = getattr(R, name)(b1.astype(F64), b2.astype(F64), reduction)
    tol = {} if dtype == F64 else {"rtol": 5e-5, "atol": 5e-6}
    close(v, rv, dtype, "value", **tol)
    close(g1, rg1, dtype, "g_boxes1", **tol)
    close(g2, rg2, dtype, "g_boxes2", **tol)
    assert np.all(np.isfinite(g1)) and np.all(np.isfinite(g2)) and np.all(np.isfinite(v))
    assert g1.dtype == dtype and g2.dtype == dtype


@pytest.mark.parametrize("name", BOX)
def test_boxes_shapes_and_eps(name):
    f = getattr(fl, name)
    b1, b2 = box_data(8)
    v = f(b1[0], b2[0])
    assert isinstance(v, np.ndarray) and v.shape == ()
    assert f(b1.reshape(2, 4, 4), b2.reshape(2, 4, 4)).shape == (2, 4)
    np.testing.assert_array_equal(f(b1.reshape(2, 4, 4), b2.reshape(2, 4, 4)).ravel(), f(b1, b2))
    assert f(np.zeros((0, 4)), np.zeros((0, 4)), "mean") == 0.0
    assert f(np.zeros((0, 4)), np.zeros((0, 4)), "sum") == 0.0
    for eps in (0.0, 1e-3):
        v, g1, g2 = f(b1, b2, "sum", eps, return_grad=True)
        rv, rg1, rg2 = getattr(R, name)(b1, b2, "sum", eps)
        close(v, rv, F64, "value")
        close(g1, rg1, F64, "g1", rtol=1e-9, atol=1e-12)


def test_ciou_degenerate_boxes_are_finite():
    # zero height and a point box: torchvision gives NaN, fastloss a finite loss and gradient
    b1 = np.array([[0.0, 1.0, 2.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    b2 = np.array([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0]])
    v, g1, g2 = fl.complete_box_iou_loss(b1, b2, return_grad=True)
    assert np.all(np.isfinite(v)) and np.all(np.isfinite(g1)) and np.all(np.isfinite(g2))
    # atan(2 / 0) = pi/2 against atan(1): v = 4/pi^2 (pi/4)^2 = 1/4
    iou, rho = 0.0, 0.0
    c2 = 4.0 + 4.0 + 1e-7
    v0 = 0.25
    alpha = v0 / (1 - iou + v0 + 1e-7)
    assert v[0] == pytest.approx(1 - iou + rho / c2 + alpha * v0, rel=1e-12)


# ------------------------------------------------------------------ threads, out=, dtype

def _calls():
    xm, ym = seg_data("multiclass", (4, 5, 40, 50), ignore=255)
    xb, tb = seg_data("binary", (4, 3, 40, 50), soft=True)
    b1, b2 = box_data(20000)
    return [
        ("dice mc", lambda **k: fl.dice_loss(xm, ym, "multiclass", ignore_index=255, **k)),
        ("tversky ml", lambda **k: fl.tversky_loss(xb[:, None], tb[:, None], "multilabel", gamma=2.0, **k)),
        ("bce_dice", lambda **k: fl.bce_dice_loss(xb, tb, per_image=True, **k)),
        ("ce_dice", lambda **k: fl.ce_dice_loss(xm, ym, ignore_index=255, **k)),
        ("lovasz hinge", lambda **k: fl.lovasz_hinge_loss(xb, (tb > 0.5).astype(F64), per_image=True, **k)),
        ("lovasz softmax", lambda **k: fl.lovasz_softmax_loss(xm, ym, ignore_index=255, **k)),
        ("lovasz softmax img", lambda **k: fl.lovasz_softmax_loss(xm, ym, per_image=True, ignore_index=255, **k)),
        ("giou", lambda **k: fl.generalized_box_iou_loss(b1, b2, "mean", **k)),
        ("ciou", lambda **k: fl.complete_box_iou_loss(b1.astype(F32), b2.astype(F32), "sum", **k)),
    ]


@pytest.mark.parametrize("i", range(9))
def test_bit_identical_for_any_thread_count(i, overlap_parallel):
    name, call = _calls()[i]
    ref = call(return_grad=True, n_threads=1)
    for nt in (2, 3, 4):
        r = call(return_grad=True, n_threads=nt)
        for a, b in zip(ref, r):
            np.testing.assert_array_equal(a, b, err_msg=f"{name}, {nt} threads")
        v = call(n_threads=nt)
        np.testing.assert_array_equal(v, ref[0])


def test_out_buffers_are_used():
    x, y = seg_data("multiclass", ignore=255)
    buf = np.full(x.shape, np.nan)
    v, g = fl.dice_loss(x, y, "multiclass", ignore_index=255, return_grad=True, out=buf)
    assert g is buf
    v2, g2 = fl.dice_loss(x, y, "multiclass", ignore_index=255, return_grad=True)
    assert v == v2 and np.array_equal(g, g2)
    buf = np.full(x.shape, np.nan)
    v, g = fl.lovasz_softmax_loss(x, y, ignore_index=255, return_grad=True, out=buf)
    assert g is buf and np.array_equal(g, fl.lovasz_softmax_loss(x, y, ignore_index=255, return_grad=True)[1])
    b1, b2 = box_data(10)
    o1, o2 = np.empty_like(b1), np.empty_like(b2)
    v, g1, g2 = fl.complete_box_iou_loss(b1, b2, return_grad=True, out=(o1, o2))
    assert g1 is o1 and g2 is o2
    lo = np.empty(10)
    v, g1, g2 = fl.CompleteBoxIoULoss().value_and_grad(b1, b2, loss_out=lo)
    assert v is lo


def test_float32_in_float32_out_and_no_copies():
    x, y = seg_data("multiclass", dtype=F32)
    v, g = fl.dice_loss(x, y.astype(np.int32), "multiclass", return_grad=True)
    assert g.dtype == F32 and isinstance(v, float)
    v2, g2 = fl.dice_loss(x, y.astype(np.uint8), "multiclass", return_grad=True)
    assert v == v2 and np.array_equal(g, g2)
    v3 = fl.dice_loss(x, y.astype(np.int16), "multiclass")
    assert v3 == v
    vn = fl.dice_loss(x, y, "multiclass", per_image=True, reduction="none")
    assert vn.dtype == F32 and vn.shape == (3,)
    vb = fl.box_iou_loss(*box_data(8, dtype=F32))
    assert vb.dtype == F32
    # the value in float32 is accurate to float32's precision, not rounded per element
    v64 = fl.dice_loss(x.astype(F64), y, "multiclass")
    assert abs(v - v64) < 1e-6


def test_integer_and_float16_input():
    x, t = seg_data("binary")
    xi = np.rint(x).astype(np.int32)
    assert fl.dice_loss(xi, t) == fl.dice_loss(xi.astype(F64), t)
    v, g = fl.dice_loss(x.astype(np.float16), t, return_grad=True)
    assert g.dtype == F32


# ------------------------------------------------------------------ edge cases

def test_empty_target_with_smooth_is_not_zero():
    x = np.random.default_rng(0).standard_normal((2, 8, 8))
    t = np.zeros((2, 8, 8))
    # smp's defect: loss 0 with zero gradient; here smooth > 0 penalizes the predicted mass
    v, g = fl.dice_loss(x, t, smooth=1.0, return_grad=True)
    assert v > 0.5 and np.all(g > 0)
    rv, rg = R.dice_loss(x, t, smooth=1.0)
    close(v, rv, F64, "value")
    close(g, rg, F64, "grad")
    # with smooth = 0 the empty class drops out (score 0 whatever the prediction), as smp
    v, g = fl.dice_loss(x, t, return_grad=True)
    assert v == 0.0 and np.all(g == 0)


def test_absent_class_and_all_ignored():
    x, y = seg_data("multiclass", ignore=255)
    y[y == 2] = 1          # class 2 absent
    both(fl.dice_loss, R.dice_loss, x, y, F64, mode="multiclass", ignore_index=255)
    both(fl.lovasz_softmax_loss, R.lovasz_softmax_loss, x, y, F64, ignore_index=255, classes="all")
    y[:] = 255
    for fn in (fl.dice_loss, fl.jaccard_loss):
        v, g = fn(x, y, "multiclass", ignore_index=255, return_grad=True)
        assert v == 0.0 and np.all(g == 0)
    v, g = fl.ce_dice_loss(x, y, ignore_index=255, return_grad=True)
    assert v == 0.0 and np.all(g == 0)
    v, g = fl.lovasz_softmax_loss(x, y, ignore_index=255, return_grad=True, per_image=True, reduction="none")
    assert np.all(v == 0) and np.all(g == 0)
    xb, tb = seg_data("binary", ignore=255)
    tb[0] = 255
    v, g = fl.lovasz_hinge_loss(xb, tb, ignore_index=255, per_image=True, reduction="none", return_grad=True)
    assert v[0] == 0 and np.all(g[0] == 0) and v[1] > 0


def test_per_image_is_independent_of_the_batch():
    x, y = seg_data("multiclass", (4, 3, 6, 7))
    for fn, kw in ((fl.dice_loss, {"mode": "multiclass", "smooth": 1.0}), (fl.ce_dice_loss, {}),
                   (fl.lovasz_softmax_loss, {})):
        v = fn(x, y, per_image=True, reduction="none", **kw)
        for n in range(4):
            alone = fn(x[n:n + 1], y[n:n + 1], per_image=True, reduction="none", **kw)
            assert alone[0] == pytest.approx(v[n], rel=1e-14, abs=1e-15)
        assert fn(x, y, per_image=True, **kw) == pytest.approx(float(np.mean(v)), rel=1e-14)
        assert fn(x, y, per_image=True, reduction="sum", **kw) == pytest.approx(float(np.sum(v)), rel=1e-14)


def test_nan_propagates():
    x, t = seg_data("binary")
    x[1, 2, 3] = np.nan
    assert np.isnan(fl.dice_loss(x, t))
    assert np.isnan(fl.bce_dice_loss(x, t))
    assert np.isnan(fl.lovasz_hinge_loss(x, t))
    xm, ym = seg_data("multiclass")
    xm[0, 1, 2, 2] = np.nan
    assert np.isnan(fl.dice_loss(xm, ym, "multiclass"))
    assert np.isnan(fl.lovasz_softmax_loss(xm, ym))
    b1, b2 = box_data(8)
    b1[2, 0] = np.nan
    for name in BOX:
        v = getattr(fl, name)(b1, b2)
        assert np.isnan(v[2]) and not np.isnan(v[1])
    # an ignored element's NaN does not reach the value
    x, t = seg_data("binary", ignore=255)
    t[0, 0, 0] = 255
    x[0, 0, 0] = np.nan
    assert np.isfinite(fl.dice_loss(x, t, ignore_index=255))


def test_extreme_logits_are_finite():
    x = np.array([[[1e4, -1e4], [3.0, -2.0]]])
    t = np.array([[[1.0, 0.0], [1.0, 0.0]]])
    for fn in (fl.dice_loss, fl.bce_dice_loss, fl.lovasz_hinge_loss, fl.tversky_loss):
        v, g = fn(x, t, return_grad=True)
        assert np.isfinite(v) and np.all(np.isfinite(g))
    xm = np.array([[[[1e4]], [[-1e4]], [[0.0]]]])
    ym = np.array([[[0]]])
    for fn in (fl.ce_dice_loss, fl.lovasz_softmax_loss):
        v, g = fn(xm, ym, return_grad=True)
        assert np.isfinite(v) and np.all(np.isfinite(g))


def test_classes_api():
    x, t = seg_data("multiclass")
    loss = fl.TverskyLoss("multiclass", None, False, True, 0.0, None, 1e-7, 0.3, 0.7, 1.5, per_image=True)
    v, g = loss.value_and_grad(x, t)
    v2, g2 = fl.tversky_loss(x, t, "multiclass", alpha=0.3, beta=0.7, gamma=1.5, per_image=True, return_grad=True)
    assert v == v2 and np.array_equal(g, g2)
    assert loss(x, t) == v
    w = [1.0, 2.0, 3.0, 4.0]
    assert fl.DiceLoss("multiclass", weight=w)(x, t) == fl.dice_loss(x, t, "multiclass", weight=w)
    assert fl.DiceLoss("multiclass")(x, t, weight=w) == fl.dice_loss(x, t, "multiclass", weight=w)
    assert "TverskyLoss(mode='multiclass'" in repr(loss)
    # positional weight and reduction after the options, as the signature says
    pos = fl.DiceLoss("multiclass", None, False, True, 0.0, None, 1e-7, True, w, "sum")
    assert pos(x, t) == fl.dice_loss(x, t, "multiclass", per_image=True, weight=w, reduction="sum")
    assert fl.LovaszSoftmaxLoss(per_image=True)(x, t) == fl.lovasz_softmax_loss(x, t, per_image=True)
    assert fl.LovaszSoftmaxLoss(weight=w)(x, t) == fl.lovasz_softmax_loss(x, t, weight=w)
    assert fl.LovaszSoftmaxLoss()(x, t, weight=w) == fl.lovasz_softmax_loss(x, t, weight=w)
    b1, b2 = box_data(6)
    assert np.array_equal(fl.GeneralizedBoxIoULoss()(b1, b2), fl.generalized_box_iou_loss(b1, b2))
    assert "eps=1e-07" in repr(fl.CompleteBoxIoULoss())


# ------------------------------------------------------------------ hypothesis

@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 9), st.integers(0, 2 ** 31 - 1),
       st.sampled_from(["dice", "jaccard", "tversky"]), st.booleans(), st.floats(0, 2))
def test_hypothesis_seg(N, C, S, seed, name, per_image, smooth):
    fn, ref, kw = SEG[name]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, S)) * 3
    y = rng.integers(0, C, (N, S))
    v, g = fn(x, y, "multiclass", smooth=smooth, per_image=per_image, return_grad=True, **kw)
    rv, rg = ref(x, y, "multiclass", smooth=smooth, per_image=per_image, **kw)
    close(v, rv, F64, "value", rtol=1e-11, atol=1e-13)
    close(g, rg, F64, "grad", rtol=1e-9, atol=1e-12)
    assert -1e-12 <= v <= 1 + 1e-12


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 40), st.integers(0, 2 ** 31 - 1), st.booleans())
def test_hypothesis_lovasz(N, S, seed, per_image):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, S)) * 2
    t = (rng.random((N, S)) > 0.5).astype(F64)
    v, g = fl.lovasz_hinge_loss(x, t, per_image=per_image, return_grad=True)
    rv, rg = R.lovasz_hinge_loss(x, t, per_image=per_image)
    close(v, rv, F64, "value")
    close(g, rg, F64, "grad")
    assert v >= 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-50, 50, allow_nan=False, width=32), min_size=8, max_size=8),
       st.sampled_from(BOX))
def test_hypothesis_boxes(coords, name):
    b = np.asarray(coords, F64).reshape(2, 4)
    v, g1, g2 = getattr(fl, name)(b[:1], b[1:], return_grad=True)
    rv, rg1, rg2 = getattr(R, name)(b[:1], b[1:])
    np.testing.assert_allclose(v, rv, rtol=1e-10, atol=1e-13)  # 1 - iou may cancel: absolute
    # the gradient's terms grow like 1 / (area + eps) for degenerate boxes
    # (up to 1e7 here) and may cancel: allow their rounding, 1e-15 of them
    (x1, y1, x2, y2), (X1, Y1, X2, Y2) = b
    union = abs((x2 - x1) * (y2 - y1)) + abs((X2 - X1) * (Y2 - Y1))
    enclosing = (max(x2, X2) - min(x1, X1)) * (max(y2, Y2) - min(y1, Y1))
    big = max(1.0, max(abs(c) for c in coords)) ** 2 / max(min(union, abs(enclosing)) + 1e-7, 1e-7)
    for g, rg in ((g1, rg1), (g2, rg2)):
        np.testing.assert_allclose(g, rg, rtol=1e-7, atol=1e-15 * big)
    assert np.all(np.isfinite(g1)) and np.all(np.isfinite(g2))


def test_degenerate_shapes():
    for fn in (fl.dice_loss, fl.bce_dice_loss, fl.lovasz_hinge_loss):
        v, g = fn(np.zeros((0, 3)), np.zeros((0, 3)), return_grad=True)
        assert v == 0.0 and g.shape == (0, 3)
        v = fn(np.zeros((0, 3)), np.zeros((0, 3)), per_image=True)
        assert np.isnan(v)  # the mean of no images, as PyTorch's mean of an empty tensor
        assert fn(np.zeros((0, 3)), np.zeros((0, 3)), per_image=True, reduction="none").shape == (0,)
    v, g = fl.dice_loss(np.zeros((2, 3, 0)), np.zeros((2, 0), int), "multiclass", return_grad=True)
    assert v == 0.0 and g.shape == (2, 3, 0)
    v, g = fl.lovasz_softmax_loss(np.zeros((2, 1, 5)), np.zeros((2, 5), int), return_grad=True)
    assert v == 0.0 and np.all(g == 0)  # one class: p = 1 everywhere, no error
    both(fl.dice_loss, R.dice_loss, np.linspace(-2, 2, 5), np.array([1, 0, 1, 0, 1.0]), F64)


def test_layouts_and_read_only_inputs():
    x, y = seg_data("multiclass", (3, 4, 6, 5))
    xf = np.asfortranarray(x)
    yv = np.ascontiguousarray(y.transpose(0, 2, 1)).transpose(0, 2, 1)   # a strided view
    ro = x.copy()
    ro.flags.writeable = False
    ref = fl.dice_loss(x, y, "multiclass", return_grad=True)
    for a, b in ((xf, y), (x, yv), (ro, y), (x[:, ::-1][:, ::-1], y)):
        v, g = fl.dice_loss(a, b, "multiclass", return_grad=True)
        assert v == ref[0] and np.array_equal(g, ref[1])
    b1, b2 = box_data(12)
    ref = fl.complete_box_iou_loss(b1, b2, return_grad=True)
    r = fl.complete_box_iou_loss(np.asfortranarray(b1), b2[::-1][::-1], return_grad=True)
    for a, b in zip(ref, r):
        np.testing.assert_array_equal(a, b)
    lv = fl.lovasz_softmax_loss(xf, yv, return_grad=True)
    assert lv[0] == fl.lovasz_softmax_loss(x, y)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 12), st.integers(0, 2 ** 31 - 1), st.booleans(),
       st.sampled_from(["present", "all", [0]]), st.booleans(), st.booleans())
def test_hypothesis_lovasz_softmax(N, C, S, seed, per_image, classes, ignore, from_logits):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, S)) * 2
    if not from_logits:
        x = rng.dirichlet(np.ones(C), size=(N, S)).transpose(0, 2, 1)
    y = rng.integers(0, C, (N, S))
    kw = {"per_image": per_image, "classes": classes, "from_logits": from_logits}
    if ignore:
        y[rng.random(y.shape) < 0.3] = 99
        kw["ignore_index"] = 99
    v, g = fl.lovasz_softmax_loss(x, y, return_grad=True, **kw)
    rv, rg = R.lovasz_softmax_loss(x, y, **kw)
    close(v, rv, F64, "value")
    close(g, rg, F64, "grad", rtol=1e-10, atol=1e-13)
    assert fl.lovasz_softmax_loss(x, y, **kw) == v


@pytest.mark.parametrize("max_groups", [1, 3, 7])
def test_grouped_partial_sums(max_groups, overlap_parallel):
    """Blocks summed in groups (the partials stay small for many classes):
    still the reference's value, and the same bits for any thread count."""
    old = _overlap.set_max_groups(max_groups)
    try:
        rng = np.random.default_rng(5)
        x = rng.standard_normal((3, 40, 30, 31))     # 40 classes: blocks of 512 pixels, 2 per image
        y = rng.integers(0, 40, (3, 30, 31))
        for per_image in (False, True):
            kw = dict(mode="multiclass", per_image=per_image, smooth=0.5)
            v, g = fl.dice_loss(x, y, return_grad=True, n_threads=1, **kw)
            rv, rg = R.dice_loss(x, y, **kw)
            close(v, rv, F64, "value")
            close(g, rg, F64, "grad")
            for nt in (2, 3):
                v2, g2 = fl.dice_loss(x, y, return_grad=True, n_threads=nt, **kw)
                assert v2 == v and np.array_equal(g2, g)
            y2 = y.copy()
            y2[2, 29, 30] = 40
            with pytest.raises(ValueError, match=r"target\[2, 29, 30\] = 40"):
                fl.dice_loss(x, y2, **kw)
    finally:
        _overlap.set_max_groups(old)


def _fused_bce_dice(x, t):
    loss = fl.CombinedLoss([(1.0, fl.BCEWithLogitsLoss()), (1.0, fl.DiceLoss("binary"))])
    v, g = loss.value_and_grad(x, t)
    return v, g, list(loss.values)


def _v3_cases():
    rng = np.random.default_rng(31)
    shape = (2, 1, 7, 41)   # 287 pixels an image: whole vectors, a chunk of 256 and a tail of 7
    t = (rng.random(shape) < 0.4).astype(F32)
    pos = np.where(t > 0, 1.0, -1.0)
    return t, [("random", (rng.standard_normal(shape) * 3).astype(F32)),
               ("confident", (pos * rng.uniform(17, 95, shape)).astype(F32)),    # every tail exp(-|x|) < 4e-8
               ("mid", (pos * rng.uniform(8, 16, shape)).astype(F32)),           # 1 + exp(-|x|) rounds
               ("near0", (rng.standard_normal(shape) * 1e-3).astype(F32)),
               ("soft", (rng.standard_normal(shape) * 2).astype(F32))]


def test_fused_bce_dice_float32_sums_match_float64():
    """The float32 first pass (AVX2 on x86-64-v3: the BCE's log(1 + exp(-|x|)) summed by compensated
    products, not per element) against the float64 reference: the BCE term to 1e-6 relative even where
    every element is confidently right (the loss is the sum of exp(-|x|), ~1e-16 an element), the Dice
    term and the gradient to float32 precision; the baseline path agrees."""
    t, cases = _v3_cases()
    rng = np.random.default_rng(32)
    for label, x in cases:
        tt = rng.random(x.shape).astype(F32) if label == "soft" else t
        v, g, (vb, vd) = _fused_bce_dice(x, tt)
        x64, t64 = x.astype(F64), tt.astype(F64)
        want_b = R.binary_cross_entropy_with_logits(x64, t64)[0]
        want_d, gd = R.dice_loss(x64, t64, mode="binary")
        assert vb == pytest.approx(want_b, rel=1e-6, abs=0), label
        assert vd == pytest.approx(want_d, rel=1e-5, abs=1e-7), label
        gb = R.binary_cross_entropy_with_logits(x64, t64)[1]
        # the gradient's p - t cancels where p ~ t: a few eps32 of p and t, over n (pass 2, unchanged)
        close(g, gb + gd, F32, label, rtol=2e-5, atol=4 * 2.0 ** -23 / x.size / np.max(np.abs(gb + gd)))
        before = _overlap.isa_name()
        try:
            _overlap.select_isa(True)
            vb0 = _fused_bce_dice(x, tt)[2][0]
        finally:
            _overlap.select_isa(before == "baseline")
        assert vb0 == pytest.approx(want_b, rel=1e-5, abs=0), label


def test_fused_bce_dice_float32_nan_and_bad_targets():
    t, cases = _v3_cases()
    x = cases[0][1].copy()
    x[1, 0, 3, 40] = np.nan     # in the tail of image 1
    x2 = cases[0][1].copy()
    x2[0, 0, 2, 5] = np.nan     # in a whole vector
    for xx in (x, x2):
        v, g, vals = _fused_bce_dice(xx, t)
        assert np.isnan(v) and np.isnan(vals).all()
    tn = t.copy()
    tn[0, 0, 0, 9] = np.nan     # a NaN target is not a bad one: it propagates
    assert np.isnan(_fused_bce_dice(cases[0][1], tn)[0])
    tz = t.copy()
    tz[tz == 0] = -0.0          # -0 is in [0, 1]
    assert _fused_bce_dice(cases[0][1], tz)[0] == _fused_bce_dice(cases[0][1], t)[0]
    for bad, at in ((1.5, (0, 0, 1, 2)), (-0.25, (1, 0, 6, 40)), (np.inf, (1, 0, 0, 0))):
        tb = t.copy()
        tb[at] = bad
        with pytest.raises(ValueError, match="target"):
            _fused_bce_dice(cases[0][1], tb)
        with pytest.raises(ValueError, match="target"):
            fl.dice_loss(cases[0][1], tb, mode="binary")
