"""The embedding losses against PyTorch's own calls: ``torch.nn.functional``
and ``torch.nn`` (positional arguments included), every option PyTorch has
(p = 1, 2, 3; swap; margins; reductions; the legacy size_average/reduce;
unbatched rows), float32 and float64, value and every operand's gradient.

The reference is PyTorch in float64 on the same (dtype-rounded) numbers, so
a float32 comparison measures fastloss's rounding only.  fastloss's
per-row weights are compared with PyTorch's reduction="none" times the
weights.  Degenerate points: coincident anchor and positive (PyTorch's eps
gives a finite gradient), ties under swap, zero vectors in the cosine
losses (large, finite gradients that must match, never NaN).
"""
import warnings
import zlib

import numpy as np
import pytest

import fastloss as fl

torch = pytest.importorskip("torch")
F = torch.nn.functional
nn = torch.nn

pytestmark = pytest.mark.torch

TOL = {np.float32: (3e-5, 3e-6), np.float64: (1e-11, 1e-13)}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _close(a, e, dt, what):
    a = np.asarray(a, dtype=np.float64)
    e = np.asarray(e, dtype=np.float64)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != torch's {e.shape}"
    rtol, atol = TOL[dt]
    scale = max(float(np.max(np.abs(e))) if e.size else 1.0, 1.0)
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol * scale, err_msg=what)


def _torch_run(fn, arrays, n_grad, reduction):
    """PyTorch's value and gradients (float64) of fn(*tensors); for "none"
    the gradients of the sum, as fastloss returns them."""
    ts = [torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=i < n_grad) for i, a in enumerate(arrays)]
    v = fn(*ts)
    (v.sum() if reduction == "none" else v).backward()
    return v.detach().numpy(), [t.grad.numpy() for t in ts[:n_grad]]


def _compare(fl_res, torch_res, dt, what):
    value, grads = torch_res
    _close(fl_res[0], value, dt, what + " value")
    assert len(fl_res) == 1 + len(grads)
    for k, (g, e) in enumerate(zip(fl_res[1:], grads)):
        assert g.dtype == dt, f"{what}: grad {k} dtype {g.dtype}"
        _close(g, e, dt, f"{what} grad {k}")


def _data(rng, shape, n, dt):
    return [rng.normal(0, 1, shape).astype(dt) for _ in range(n)]


DTS = [np.float32, np.float64]
REDS = ["mean", "sum", "none"]


# ------------------------------------------------------------------ triplets

@pytest.mark.parametrize("dt", DTS)
@pytest.mark.parametrize("reduction", REDS)
@pytest.mark.parametrize("p", [1, 2, 3])
@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("margin", [0.5, 2.0])
def test_triplet_functional_and_module(dt, reduction, p, swap, margin):
    rng = np.random.default_rng(zlib.crc32(repr((p, swap, margin, reduction)).encode()))
    arrs = _data(rng, (17, 9), 3, dt)
    ref = _torch_run(lambda a, b, c: F.triplet_margin_loss(a, b, c, margin, p, 1e-6, swap, reduction=reduction),
                     arrs, 3, reduction)
    what = f"triplet p={p} swap={swap} margin={margin} {reduction}"
    _compare(fl.triplet_margin_loss(*arrs, margin, p, 1e-6, swap, reduction=reduction, return_grad=True),
             ref, dt, what)
    ref_m = _torch_run(lambda a, b, c: nn.TripletMarginLoss(margin, p, 1e-6, swap, reduction=reduction)(a, b, c),
                       arrs, 3, reduction)
    _compare(fl.TripletMarginLoss(margin, p, 1e-6, swap, reduction=reduction).value_and_grad(*arrs),
             ref_m, dt, what + " (module)")
    assert fl.triplet_margin_loss(*arrs, margin, p, 1e-6, swap, reduction=reduction) == pytest.approx(
        fl.TripletMarginLoss(margin, p, 1e-6, swap, reduction=reduction)(*arrs)) if reduction != "none" else True


@pytest.mark.parametrize("dt", DTS)
@pytest.mark.parametrize("shape", [(7,), (3, 4, 5), (1, 1)], ids=str)
@pytest.mark.parametrize("reduction", REDS)
def test_triplet_shapes(dt, shape, reduction):
    rng = np.random.default_rng(3)
    arrs = _data(rng, shape, 3, dt)
    ref = _torch_run(lambda a, b, c: F.triplet_margin_loss(a, b, c, 3.0, reduction=reduction), arrs, 3, reduction)
    _compare(fl.triplet_margin_loss(*arrs, 3.0, reduction=reduction, return_grad=True), ref, dt, str(shape))


@pytest.mark.parametrize("dt", DTS)
@pytest.mark.parametrize("eps", [0.0, 1e-3, -0.25])
def test_triplet_eps(dt, eps):
    rng = np.random.default_rng(4)
    arrs = _data(rng, (11, 6), 3, dt)
    ref = _torch_run(lambda a, b, c: F.triplet_margin_loss(a, b, c, 1.0, 2, eps, True), arrs, 3, "mean")
    _compare(fl.triplet_margin_loss(*arrs, 1.0, 2, eps, True, return_grad=True), ref, dt, f"eps={eps}")


@pytest.mark.parametrize("reduction", REDS)
def test_triplet_weights(reduction):
    rng = np.random.default_rng(5)
    arrs = _data(rng, (10, 4), 3, np.float64)
    w = rng.uniform(0, 3, 10)

    def weighted(a, b, c):
        v = F.triplet_margin_loss(a, b, c, 1.5, reduction="none") * torch.from_numpy(w)
        return {"mean": v.mean, "sum": v.sum}.get(reduction, lambda: v)()

    _compare(fl.triplet_margin_loss(*arrs, 1.5, weight=w, reduction=reduction, return_grad=True),
             _torch_run(weighted, arrs, 3, reduction), np.float64, "weighted")


@pytest.mark.parametrize("size_average,reduce", [(False, None), (None, False), (True, True), (False, True)])
def test_triplet_legacy_reduction(size_average, reduce):
    rng = np.random.default_rng(6)
    arrs = _data(rng, (6, 3), 3, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        e = F.triplet_margin_loss(*map(torch.from_numpy, arrs), 2.0, 2, 1e-6, False, size_average, reduce)
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        v = fl.triplet_margin_loss(*arrs, 2.0, 2, 1e-6, False, size_average, reduce)
    _close(v, e.numpy(), np.float64, "legacy")
    with pytest.warns(UserWarning):
        m = fl.TripletMarginLoss(2.0, 2, 1e-6, False, size_average, reduce)
    _close(m(*arrs), e.numpy(), np.float64, "legacy module")


@pytest.mark.parametrize("dt", DTS)
@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("p", [1, 2, 3])
def test_triplet_coincident_points(dt, swap, p):
    """anchor == positive (and == negative): PyTorch's eps gives d = eps
    D^(1/p) and a finite gradient (1/sqrt(D) per coordinate for p = 2); with
    swap, d(a, n) and d(p, n) tie and the gradient is split in halves."""
    rng = np.random.default_rng(7)
    a = rng.normal(0, 1, (5, 4)).astype(dt)
    for pos, neg in ((a.copy(), rng.normal(0, 1, (5, 4)).astype(dt)), (a.copy(), a.copy())):
        arrs = [a, pos, neg]
        ref = _torch_run(lambda x, y, z: F.triplet_margin_loss(x, y, z, 1.0, p, 1e-6, swap), arrs, 3, "mean")
        res = fl.triplet_margin_loss(*arrs, 1.0, p, 1e-6, swap, return_grad=True)
        assert all(np.isfinite(r).all() for r in res[1:])
        _compare(res, ref, dt, f"coincident p={p} swap={swap}")


@pytest.mark.parametrize("dt", DTS)
@pytest.mark.parametrize("reduction", REDS)
@pytest.mark.parametrize("swap", [False, True])
def test_triplet_with_distance(dt, reduction, swap):
    rng = np.random.default_rng(8)
    arrs = _data(rng, (13, 5), 3, dt)
    arrs[2][0] = 0  # a zero vector in the cosine distance: large, finite gradients
    torch_fns = {
        "euclidean": None,
        "cosine": lambda x, y: 1.0 - F.cosine_similarity(x, y),
        "squared_euclidean": lambda x, y: (x - y).pow(2).sum(-1),
    }
    for name, dfn in torch_fns.items():
        ref = _torch_run(lambda a, b, c: F.triplet_margin_with_distance_loss(
            a, b, c, distance_function=dfn, margin=0.8, swap=swap, reduction=reduction), arrs, 3, reduction)
        res = fl.triplet_margin_with_distance_loss(*arrs, distance=name, margin=0.8, swap=swap, reduction=reduction,
                                                   return_grad=True)
        _compare(res, ref, dt, f"{name} swap={swap} {reduction}")
        ref_m = _torch_run(lambda a, b, c: nn.TripletMarginWithDistanceLoss(
            distance_function=dfn, margin=0.8, swap=swap, reduction=reduction)(a, b, c), arrs, 3, reduction)
        _compare(fl.TripletMarginWithDistanceLoss(distance_function=name, margin=0.8, swap=swap,
                                                  reduction=reduction).value_and_grad(*arrs), ref_m, dt, name)
    # torch's keyword for the named distances, and its default
    _close(fl.triplet_margin_with_distance_loss(*arrs, distance_function="cosine"),
           fl.triplet_margin_with_distance_loss(*arrs, distance="cosine"), dt, "distance_function=")
    _close(fl.triplet_margin_with_distance_loss(*arrs, distance_function=None), fl.triplet_margin_loss(*arrs),
           dt, "default distance")


# ------------------------------------------------------------------ pairs

@pytest.mark.parametrize("dt", DTS)
@pytest.mark.parametrize("reduction", REDS)
@pytest.mark.parametrize("margin", [0.0, 0.3, -0.5])
def test_cosine_embedding(dt, reduction, margin):
    rng = np.random.default_rng(9)
    x1, x2 = _data(rng, (16, 7), 2, dt)
    x1[3] = 0  # zero vectors: PyTorch's 1e-12 keeps them finite
    x2[5] = 0
    t = np.where(rng.random(16) < 0.5, -1.0, 1.0).astype(dt)
    ref = _torch_run(lambda a, b, c: F.cosine_embedding_loss(a, b, c, margin, reduction=reduction),
                     [x1, x2, t], 2, reduction)
    res = fl.cosine_embedding_loss(x1, x2, t, margin, reduction=reduction, return_grad=True)
    assert all(np.isfinite(r).all() for r in res[1:])
    _compare(res, ref, dt, f"cosine_embedding m={margin}")
    ref_m = _torch_run(lambda a, b, c: nn.CosineEmbeddingLoss(margin, reduction=reduction)(a, b, c),
                       [x1, x2, t], 2, reduction)
    _compare(fl.CosineEmbeddingLoss(margin, reduction=reduction).value_and_grad(x1, x2, t), ref_m, dt, "module")


@pytest.mark.parametrize("dt", DTS)
def test_cosine_embedding_unbatched_and_int_target(dt):
    rng = np.random.default_rng(10)
    x1, x2 = _data(rng, (6,), 2, dt)
    for t in (1, -1):
        ref = _torch_run(lambda a, b: F.cosine_embedding_loss(a, b, torch.tensor(t), 0.1), [x1, x2], 2, "mean")
        _compare(fl.cosine_embedding_loss(x1, x2, np.array(t), 0.1, return_grad=True), ref, dt, "unbatched")
    x1, x2 = _data(rng, (5, 3), 2, dt)
    t = np.array([1, -1, 1, -1, -1])  # int64 target, as PyTorch takes
    ref = _torch_run(lambda a, b: F.cosine_embedding_loss(a, b, torch.from_numpy(t), -0.2), [x1, x2], 2, "mean")
    _compare(fl.cosine_embedding_loss(x1, x2, t, -0.2, return_grad=True), ref, dt, "int target")


@pytest.mark.parametrize("dt", DTS)
@pytest.mark.parametrize("reduction", REDS)
@pytest.mark.parametrize("shape", [(13,), (4, 6), ()], ids=str)
def test_margin_ranking(dt, reduction, shape):
    rng = np.random.default_rng(11)
    x1, x2 = _data(rng, shape, 2, dt)
    t = np.where(rng.random(shape) < 0.5, -1.0, 1.0).astype(dt)
    ref = _torch_run(lambda a, b, c: F.margin_ranking_loss(a, b, c, 0.2, reduction=reduction), [x1, x2, t], 2,
                     reduction)
    _compare(fl.margin_ranking_loss(x1, x2, t, 0.2, reduction=reduction, return_grad=True), ref, dt, "mrl")
    ref_m = _torch_run(lambda a, b, c: nn.MarginRankingLoss(0.2, reduction=reduction)(a, b, c), [x1, x2, t], 2,
                       reduction)
    _compare(fl.MarginRankingLoss(0.2, reduction=reduction).value_and_grad(x1, x2, t), ref_m, dt, "mrl module")


def test_margin_ranking_at_the_kink():
    """-t (x1 - x2) + margin = 0: PyTorch's clamp_min passes the gradient."""
    x1, x2, t = np.array([1.0, 2.0]), np.array([1.0, 1.5]), np.array([1.0, 1.0])
    ref = _torch_run(lambda a, b, c: F.margin_ranking_loss(a, b, c, 0.5, reduction="sum"), [x1, x2, t], 2, "sum")
    _compare(fl.margin_ranking_loss(x1, x2, t, 0.5, reduction="sum", return_grad=True), ref, np.float64, "kink")


@pytest.mark.parametrize("dt", DTS)
@pytest.mark.parametrize("reduction", REDS)
@pytest.mark.parametrize("margin", [1.0, 0.0, -0.5, 2.0])
def test_hinge_embedding(dt, reduction, margin):
    rng = np.random.default_rng(12)
    x = np.abs(rng.normal(0, 1.5, (5, 8))).astype(dt)
    x.reshape(-1)[:3] = margin  # at the kink: PyTorch passes the gradient
    t = np.where(rng.random((5, 8)) < 0.5, -1.0, 1.0).astype(dt)
    ref = _torch_run(lambda a, c: F.hinge_embedding_loss(a, c, margin, reduction=reduction), [x, t], 1, reduction)
    _compare(fl.hinge_embedding_loss(x, t, margin, reduction=reduction, return_grad=True), ref, dt, "hinge_emb")
    ref_m = _torch_run(lambda a, c: nn.HingeEmbeddingLoss(margin, reduction=reduction)(a, c), [x, t], 1, reduction)
    _compare(fl.HingeEmbeddingLoss(margin, reduction=reduction).value_and_grad(x, t), ref_m, dt, "module")


@pytest.mark.parametrize("dt", DTS)
@pytest.mark.parametrize("eps", [1e-8, 1e-3])
def test_cosine_distance_is_one_minus_cosine_similarity(dt, eps):
    """cosine_distance_loss = 1 - F.cosine_similarity(x, y, eps=eps), with
    PyTorch's gradient, also for zero and tiny rows."""
    rng = np.random.default_rng(13)
    x, y = _data(rng, (9, 4), 2, dt)
    x[0] = 0
    y[1] = 0
    x[2] = 1e-5 * x[2]  # below eps=1e-3: the clamp is a constant, the norm differentiates
    for reduction in REDS:
        ref = _torch_run(lambda a, b: {"mean": torch.mean, "sum": torch.sum}.get(reduction, lambda v: v)(
            1.0 - F.cosine_similarity(a, b, eps=eps)), [x, y], 2, reduction)
        res = fl.cosine_distance_loss(x, y, eps, reduction=reduction, return_grad=True)
        assert all(np.isfinite(r).all() for r in res[1:])
        _compare(res, ref, dt, f"cosine_distance eps={eps} {reduction}")
