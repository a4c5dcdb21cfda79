"""The row-over-features kernels against the NumPy reference, and the
driver's contract: float64 to ~1e-12, float32 to its precision; values
bit-identical for any thread count; out= buffers used in place; dtypes
kept; non-contiguous inputs; empty batches; long rows (D = 20000, several
chunks); NaN propagation; scale extremes.  The in-batch losses are also
compared with their published formulas written out in the test (PyTorch
and NumPy), with optax's ntxent, and with the SimCLR pairing; hypothesis
checks reference equality and the invariances (translation, permutation)
over random shapes.
"""
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastloss as fl
from fastloss import _features
from fastloss import reference as R

F32, F64 = np.float32, np.float64


@pytest.fixture
def parallel_always():
    old = _features.set_parallel_threshold(0)
    yield
    _features.set_parallel_threshold(old)


def _tol(dt):
    return (1e-12, 1e-13) if dt == F64 else (2e-5, 2e-6)


def _close(a, e, dt, what):
    a = np.asarray(a, np.float64)
    e = np.asarray(e, np.float64)
    rtol, atol = _tol(dt)
    scale = max(float(np.max(np.abs(e[np.isfinite(e)]))) if np.isfinite(e).any() else 1.0, 1.0)
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol * scale, err_msg=what, equal_nan=True)


def _same(res, ref, dt, what):
    assert len(res) == len(ref), what
    for k, (a, e) in enumerate(zip(res, ref)):
        if isinstance(a, np.ndarray):
            assert a.dtype == dt, f"{what}: result {k} has dtype {a.dtype}"
        _close(a, e, dt, f"{what} [{k}]")


def _rows(rng, shape, n, dt):
    return [rng.normal(0, 1, shape).astype(dt) for _ in range(n)]


# (id, fastloss function, reference function, data(rng, dt, shape) -> (args, kwargs))
def _triplet(p, swap):
    return (f"triplet-p{p}-swap{int(swap)}", fl.triplet_margin_loss, R.triplet_margin_loss,
            lambda rng, dt, sh: (_rows(rng, sh, 3, dt), dict(margin=1.2, p=p, swap=swap)))


def _twd(d):
    return (f"twd-{d}", fl.triplet_margin_with_distance_loss,
            lambda *a, **k: R.triplet_margin_with_distance_loss(*a, distance=k.pop("distance"), **k),
            lambda rng, dt, sh: (_rows(rng, sh, 3, dt), dict(distance=d, margin=0.7, swap=True)))


def _cemb(rng, dt, sh):
    x1, x2 = _rows(rng, sh, 2, dt)
    return [x1, x2, np.where(rng.random(sh[:-1]) < 0.5, -1.0, 1.0).astype(dt)], dict(margin=0.2)


def _con(p, sl):
    def data(rng, dt, sh):
        x1, x2 = _rows(rng, sh, 2, dt)
        return [x1, x2, rng.integers(0, 2, sh[:-1]).astype(dt)], dict(margin=2.5, p=p, similar_label=sl)
    return (f"contrastive-p{p}-sl{sl}", fl.contrastive_loss, R.contrastive_loss, data)


ROW_CASES = [_triplet(2, False), _triplet(2, True), _triplet(1, True), _triplet(3, False), _triplet(1.7, True),
             _twd("euclidean"), _twd("squared_euclidean"), _twd("cosine"),
             ("cosine_embedding", fl.cosine_embedding_loss, R.cosine_embedding_loss, _cemb),
             _con(2, 1), _con(1, 0), _con(3, 1),
             ("cosine_distance", fl.cosine_distance_loss, R.cosine_distance_loss,
              lambda rng, dt, sh: (_rows(rng, sh, 2, dt), {}))]


def _ref(ref_fn, args, kw, weight, reduction):
    args64 = [np.asarray(a, np.float64) for a in args]
    w = None if weight is None else np.asarray(weight, np.float64)
    return ref_fn(*args64, weight=w, reduction=reduction, **kw)


@pytest.mark.parametrize("dt", [F32, F64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(37, 9), (5, 3, 16), (6,), (4, 1)], ids=str)
@pytest.mark.parametrize("case", ROW_CASES, ids=lambda c: c[0])
def test_rows_match_reference(case, shape, reduction, dt):
    name, fn, ref_fn, data = case
    if name == "cosine_embedding" and len(shape) > 2:
        pytest.skip("cosine_embedding_loss takes (N, D) or (D,), as PyTorch")
    if "cos" in name and shape[-1] == 1 and dt == F32:
        pytest.skip("D = 1: cos is +-1 and its gradient, 0, is a float32 difference of terms of size 1/|x|")
    rng = np.random.default_rng(zlib.crc32(repr((name, shape)).encode()))
    args, kw = data(rng, dt, shape)
    w = rng.uniform(0.2, 2.0, shape[:-1]).astype(dt) if shape[:-1] else None
    res = fn(*args, **kw, weight=w, reduction=reduction, return_grad=True)
    _same(res, _ref(ref_fn, args, kw, w, reduction), dt, f"{name} {shape} {reduction}")
    # the value-only call: the same sums (FMA contraction of the per-row
    # scalars may differ between the two inlined variants by an ulp)
    v = fn(*args, **kw, weight=w, reduction=reduction)
    np.testing.assert_allclose(v, res[0], rtol=4 * np.finfo(dt).eps,
                               atol=4 * np.finfo(dt).eps * max(1.0, float(np.max(np.abs(res[0]), initial=0))))


@pytest.mark.parametrize("dt", [F32, F64])
@pytest.mark.parametrize("case", ROW_CASES, ids=lambda c: c[0])
def test_rows_long_features(case, dt):
    """D = 20000: many chunks of float lanes per row, no per-row temporaries."""
    name, fn, ref_fn, data = case
    rng = np.random.default_rng(11)
    args, kw = data(rng, dt, (3, 20000))
    _same(fn(*args, **kw, return_grad=True), _ref(ref_fn, args, kw, None, "mean"), dt, name)


@pytest.mark.parametrize("case", ROW_CASES, ids=lambda c: c[0])
def test_rows_threads_bit_identical(case, parallel_always):
    name, fn, _, data = case
    rng = np.random.default_rng(12)
    args, kw = data(rng, F32, (3001, 37))  # 442 rows per block: 7 blocks
    runs = [fn(*args, **kw, return_grad=True, n_threads=nt) for nt in (1, 2, 3)]
    for r in runs[1:]:
        for a, b in zip(runs[0], r):
            np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("case", ROW_CASES, ids=lambda c: c[0])
def test_rows_out_buffers(case):
    name, fn, _, data = case
    rng = np.random.default_rng(13)
    args, kw = data(rng, F64, (8, 5))
    fresh = fn(*args, **kw, return_grad=True)
    bufs = tuple(np.full((8, 5), np.nan) for _ in fresh[1:])
    res = fn(*args, **kw, return_grad=True, out=bufs)
    assert all(r is b for r, b in zip(res[1:], bufs))
    for a, b in zip(res, fresh):
        np.testing.assert_array_equal(a, b)


_CLASSES = {"triplet": lambda kw: fl.TripletMarginLoss(kw["margin"], kw["p"], swap=kw["swap"], reduction="none"),
            "twd": lambda kw: fl.TripletMarginWithDistanceLoss(distance_function=kw["distance"], margin=kw["margin"],
                                                               swap=kw["swap"], reduction="none"),
            "cosine_embedding": lambda kw: fl.CosineEmbeddingLoss(**kw, reduction="none"),
            "contrastive": lambda kw: fl.ContrastiveLoss(**kw, reduction="none"),
            "cosine_distance": lambda kw: fl.CosineDistanceLoss(**kw, reduction="none")}


@pytest.mark.parametrize("case", ROW_CASES, ids=lambda c: c[0])
def test_rows_class_loss_out(case):
    """The classes' value_and_grad takes loss_out= for reduction="none" (and
    refuses it for another reduction), as the other drivers' classes do."""
    name, fn, _, data = case
    rng = np.random.default_rng(26)
    args, kw = data(rng, F64, (8, 5))
    loss = _CLASSES[name.split("-")[0]](kw)
    lo = np.full(8, np.nan)
    res = loss.value_and_grad(*args, loss_out=lo)
    assert res[0] is lo
    ref = fn(*args, **kw, reduction="none", return_grad=True)
    for a, b in zip(res, ref):
        np.testing.assert_array_equal(a, b)
    loss.reduction = "sum"
    with pytest.raises(ValueError, match=r"loss_out is the buffer of the per-row losses of reduction='none', "
                                         r"got reduction='sum'"):
        loss.value_and_grad(*args, loss_out=lo)


def test_rows_dtypes_and_layouts():
    rng = np.random.default_rng(14)
    a, p, n = _rows(rng, (6, 8), 3, F64)
    ref = fl.triplet_margin_loss(a, p, n, return_grad=True)
    # non-contiguous operands are copied once; the result is the same
    res = fl.triplet_margin_loss(np.asfortranarray(a), p[:, ::1], np.ascontiguousarray(n.T).T, return_grad=True)
    for x, y in zip(res, ref):
        np.testing.assert_array_equal(x, y)
    # float16 becomes float32, integers float64; the first operand fixes the dtype
    r16 = fl.triplet_margin_loss(a.astype(np.float16), p, n, return_grad=True)
    assert all(g.dtype == F32 for g in r16[1:])
    ri = fl.cosine_distance_loss(np.arange(6).reshape(2, 3) + 1, p[:2, :3], return_grad=True)
    assert all(g.dtype == F64 for g in ri[1:])
    # a C-contiguous operand of the working dtype is not copied: the
    # gradient buffers may be any C-contiguous arrays, also reused
    r32 = fl.triplet_margin_loss(a.astype(F32), p.astype(F32), n.astype(F32), return_grad=True)
    assert all(g.dtype == F32 for g in r32[1:])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_rows_empty_batch(reduction):
    a = np.zeros((0, 4))
    res = fl.triplet_margin_loss(a, a, a, reduction=reduction, return_grad=True)
    if reduction == "mean":
        assert np.isnan(res[0])
    elif reduction == "sum":
        assert res[0] == 0.0
    else:
        assert res[0].shape == (0,)
    assert all(g.shape == (0, 4) for g in res[1:])


@pytest.mark.parametrize("case", ROW_CASES, ids=lambda c: c[0])
def test_rows_nan_propagates(case):
    name, fn, _, data = case
    rng = np.random.default_rng(15)
    args, kw = data(rng, F64, (5, 4))
    args[0][2, 1] = np.nan
    v = fn(*args, **kw, reduction="none", return_grad=True)
    assert np.isnan(v[0][2]) and np.isfinite(np.delete(v[0], 2)).all(), name
    assert np.isnan(fn(*args, **kw))
    assert np.isnan(v[1][2]).any()


@pytest.mark.parametrize("scale", [1e-20, 1e15])
@pytest.mark.parametrize("case", [c for c in ROW_CASES if "cos" in c[0] or "swap1" in c[0]], ids=lambda c: c[0])
def test_rows_scale_extremes(case, scale):
    """Tiny and huge rows (float64): the cosine losses are scale-free, the
    p-norm triplets with their eps still match the reference."""
    name, fn, ref_fn, data = case
    rng = np.random.default_rng(16)
    args, kw = data(rng, F64, (6, 5))
    n_ops = len(args) - (1 if name.startswith(("cosine_emb", "contrastive")) else 0)
    args = [a * scale if i < n_ops else a for i, a in enumerate(args)]
    res = fn(*args, **kw, return_grad=True)
    assert all(np.isfinite(r).all() for r in res)
    _same(res, _ref(ref_fn, args, kw, None, "mean"), F64, f"{name} x{scale}")


@pytest.mark.parametrize("dt", [F32, F64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_elementwise_pair_losses(dt, reduction):
    rng = np.random.default_rng(17)
    x1, x2 = _rows(rng, (7, 3), 2, dt)
    t = np.where(rng.random((7, 3)) < 0.5, -1.0, 1.0).astype(dt)
    w = rng.uniform(0.5, 2, (7, 3)).astype(dt)
    _same(fl.margin_ranking_loss(x1, x2, t, 0.3, weight=w, reduction=reduction, return_grad=True),
          R.margin_ranking_loss(x1.astype(F64), x2.astype(F64), t.astype(F64), 0.3, weight=w.astype(F64),
                                reduction=reduction), dt, "margin_ranking")
    _same(fl.hinge_embedding_loss(np.abs(x1), t, 0.8, weight=w, reduction=reduction, return_grad=True),
          R.hinge_embedding_loss(np.abs(x1).astype(F64), t.astype(F64), 0.8, weight=w.astype(F64),
                                 reduction=reduction), dt, "hinge_embedding")
    bufs = (np.empty_like(x1), np.empty_like(x1))
    res = fl.margin_ranking_loss(x1, x2, t, 0.3, return_grad=True, out=bufs)
    assert res[1] is bufs[0] and res[2] is bufs[1]
    g = np.empty_like(x1)
    assert fl.hinge_embedding_loss(x1, t, return_grad=True, out=g)[1] is g
    assert fl.hinge_embedding_loss(x1, t, return_grad=True, out=(g,))[1] is g


# ------------------------------------------------------------------ in-batch

def _batch(rng, N, D, K, dt):
    return rng.normal(0, 1, (N, D)).astype(dt), rng.permutation(np.arange(N) % K)


BATCH = [
    ("hard-euclidean", fl.batch_hard_triplet_loss, R.batch_hard_triplet_loss, dict(margin=0.5)),
    ("hard-sq", fl.batch_hard_triplet_loss, R.batch_hard_triplet_loss, dict(margin=2.0, distance="squared_euclidean")),
    ("hard-cosine-soft", fl.batch_hard_triplet_loss, R.batch_hard_triplet_loss, dict(distance="cosine", soft=True)),
    ("all-euclidean", fl.batch_all_triplet_loss, R.batch_all_triplet_loss, dict(margin=0.5)),
    ("all-sq", fl.batch_all_triplet_loss, R.batch_all_triplet_loss, dict(margin=1.0, distance="squared_euclidean")),
    ("all-cosine", fl.batch_all_triplet_loss, R.batch_all_triplet_loss, dict(margin=0.3, distance="cosine")),
    ("ntxent", fl.nt_xent_loss, R.nt_xent_loss, dict(temperature=0.2)),
]


@pytest.mark.parametrize("dt", [F32, F64])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("case", BATCH, ids=lambda c: c[0])
def test_batch_match_reference(case, reduction, dt):
    name, fn, ref_fn, kw = case
    rng = np.random.default_rng(zlib.crc32(repr(name).encode()))
    E, lab = _batch(rng, 66, 6, 11, dt)  # N = 66: two tiles of the symmetric pass, one partial
    w = rng.uniform(0.5, 2, 66).astype(dt)
    res = fn(E, lab, **kw, weight=w, reduction=reduction, return_grad=True)
    ref = ref_fn(E.astype(F64), lab, **kw, weight=w.astype(F64), reduction=reduction)
    rtol = 1e-11 if dt == F64 else 1e-4  # distances from the Gram matrix
    np.testing.assert_allclose(res[0], ref[0], rtol=rtol, err_msg=name)
    assert res[1].dtype == dt
    np.testing.assert_allclose(res[1], ref[1], rtol=rtol, atol=rtol * np.abs(ref[1]).max(), err_msg=name)
    assert fn(E, lab, **kw, weight=w, reduction=reduction) == res[0]


@pytest.mark.parametrize("case", BATCH, ids=lambda c: c[0])
def test_batch_threads_bit_identical(case, parallel_always):
    name, fn, _, kw = case
    rng = np.random.default_rng(18)
    E, lab = _batch(rng, 300, 40, 30, F32)
    runs = [fn(E, lab, **kw, return_grad=True, n_threads=nt) for nt in (1, 2, 3)]
    for r in runs[1:]:
        assert r[0] == runs[0][0], name
        np.testing.assert_array_equal(r[1], runs[0][1], err_msg=name)


@pytest.mark.parametrize("case", BATCH, ids=lambda c: c[0])
def test_batch_out_and_permutation(case):
    """out= is used in place (an array or a tuple of one); permuting the
    batch permutes the gradient and keeps the value."""
    name, fn, _, kw = case
    rng = np.random.default_rng(19)
    E, lab = _batch(rng, 40, 5, 5, F64)
    v, g = fn(E, lab, **kw, return_grad=True)
    buf = np.full_like(E, np.nan)
    v2, g2 = fn(E, lab, **kw, return_grad=True, out=buf)
    assert g2 is buf and v2 == v
    np.testing.assert_array_equal(g2, g)
    assert fn(E, lab, **kw, return_grad=True, out=(buf,))[1] is buf
    perm = rng.permutation(40)
    vp, gp = fn(E[perm], lab[perm], **kw, return_grad=True)
    np.testing.assert_allclose(vp, v, rtol=1e-12)
    np.testing.assert_allclose(gp, g[perm], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("case", BATCH, ids=lambda c: c[0])
def test_batch_nan_propagates(case):
    name, fn, _, kw = case
    rng = np.random.default_rng(20)
    E, lab = _batch(rng, 20, 4, 4, F64)
    E[3, 2] = np.nan
    v, g = fn(E, lab, **kw, return_grad=True)
    assert np.isnan(v), name
    assert np.isnan(g).any(), name


def test_batch_label_dtypes_and_values():
    """Labels of any integer dtype and any values (negative, huge) are classes."""
    rng = np.random.default_rng(21)
    E = rng.normal(0, 1, (12, 3))
    base = np.arange(12) % 4
    ref = fl.batch_hard_triplet_loss(E, base, return_grad=True)
    for lab in (base.astype(np.uint8), base.astype(np.int16), (base - 2) * 10**15, base.astype(np.uint64) * 2**62):
        res = fl.batch_hard_triplet_loss(E, lab, return_grad=True)
        assert res[0] == ref[0]
        np.testing.assert_array_equal(res[1], ref[1])


def test_batch_all_without_active_triplet_is_zero():
    E = np.array([[0.0, 0.0], [0.0, 0.1], [5.0, 0.0], [5.0, 0.1]])
    lab = np.array([0, 0, 1, 1])
    for reduction in ("mean", "sum"):
        v, g = fl.batch_all_triplet_loss(E, lab, margin=0.5, reduction=reduction, return_grad=True)
        assert v == 0.0 and not g.any()


# --- the published formulas, written out in the test

torch = None


def _torch():
    global torch
    torch = pytest.importorskip("torch")
    return torch


def _cdist_sq(E):
    """Squared distances by the Gram matrix, as the usual implementations write them."""
    n = (E * E).sum(1)
    return (n[:, None] + n[None, :] - 2 * E @ E.T).clamp_min(0)


def hermans_batch_hard(E, y, margin):
    """Hermans et al. (2017), batch hard, written with torch ops from the
    paper's formula: L = mean over anchors of [m + max_p D(a, p) - min_n D(a, n)]_+."""
    t = _torch()
    D = _cdist_sq(E).clamp_min(1e-30).sqrt()
    same = y[:, None] == y[None, :]
    eye = t.eye(len(y), dtype=t.bool)
    hardest_p = D.masked_fill(~same | eye, -float("inf")).max(1).values
    hardest_n = D.masked_fill(same, float("inf")).min(1).values
    return (margin + hardest_p - hardest_n).clamp_min(0).mean()


def pml_batch_all(E, y, margin):
    """pytorch-metric-learning's TripletMarginLoss (all triplets, LpDistance
    on the embeddings as given) with AvgNonZeroReducer, written with torch ops."""
    t = _torch()
    D = _cdist_sq(E).clamp_min(1e-30).sqrt()
    same = y[:, None] == y[None, :]
    valid = (same & ~t.eye(len(y), dtype=t.bool))[:, :, None] & ~same[:, None, :]
    loss = (D[:, :, None] - D[:, None, :] + margin).clamp_min(0) * valid
    n = (loss > 0).sum()
    return loss.sum() / n


def pml_ntxent(E, y, tau):
    """pytorch-metric-learning's NTXentLoss (CosineSimilarity, MeanReducer over
    positive pairs), written with torch ops."""
    t = _torch()
    U = t.nn.functional.normalize(E, dim=1)
    S = U @ U.T / tau
    same = y[:, None] == y[None, :]
    pos = same & ~t.eye(len(y), dtype=t.bool)
    neg_lse = t.logsumexp(S.masked_fill(same, -float("inf")), dim=1)  # over each anchor's negatives
    lse = t.logaddexp(S, neg_lse[:, None])                              # with the positive itself
    return (lse - S)[pos].mean()


@pytest.mark.parametrize("dt", [F32, F64])
@pytest.mark.parametrize("which", ["hard", "all", "ntxent"])
def test_batch_vs_formulas_in_torch(which, dt):
    t = _torch()
    rng = np.random.default_rng(22)
    E, lab = _batch(rng, 64, 16, 8, dt)
    Et = t.tensor(E.astype(F64), requires_grad=True)
    yt = t.from_numpy(lab)
    if which == "hard":
        ref = hermans_batch_hard(Et, yt, 0.7)
        v, g = fl.batch_hard_triplet_loss(E, lab, 0.7, return_grad=True)
    elif which == "all":
        ref = pml_batch_all(Et, yt, 0.7)
        v, g = fl.batch_all_triplet_loss(E, lab, 0.7, return_grad=True)
    else:
        ref = pml_ntxent(Et, yt, 0.1)
        v, g = fl.nt_xent_loss(E, lab, 0.1, return_grad=True)
    ref.backward()
    rtol = 1e-10 if dt == F64 else 2e-4
    np.testing.assert_allclose(v, ref.item(), rtol=rtol)
    np.testing.assert_allclose(g, Et.grad.numpy(), rtol=rtol, atol=rtol * Et.grad.abs().max().item())


@pytest.mark.parametrize("dt", [F64])  # float32 is compared with the formula in torch above
def test_ntxent_matches_optax(dt):
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    rng = np.random.default_rng(23)
    E, lab = _batch(rng, 48, 12, 6, dt)
    v, g = fl.nt_xent_loss(E, lab, 0.07, return_grad=True)
    jv, jg = jax.value_and_grad(lambda e: optax.losses.ntxent(e, jnp.asarray(lab), 0.07))(jnp.asarray(E))
    rtol = 1e-10 if dt == F64 else 2e-4
    np.testing.assert_allclose(v, float(jv), rtol=rtol)
    np.testing.assert_allclose(g, np.asarray(jg), rtol=rtol, atol=rtol * np.abs(np.asarray(jg)).max())


def test_ntxent_simclr_pairs():
    rng = np.random.default_rng(24)
    E = rng.normal(0, 1, (10, 4))
    res = fl.nt_xent_loss(E, None, 0.5, return_grad=True)
    lab = np.concatenate([np.arange(5), np.arange(5)])
    ref = fl.nt_xent_loss(E, lab, 0.5, return_grad=True)
    assert res[0] == ref[0]
    np.testing.assert_array_equal(res[1], ref[1])


@pytest.mark.parametrize("N", [2, 3, 63, 64, 65, 129])
def test_batch_sizes_around_the_tile(N):
    """N around FL_BT_TILE = 64 and tiny N: the tile-pair pass and its row
    sums cover every element once."""
    rng = np.random.default_rng(N)
    E = rng.normal(0, 1, (N, 3))
    lab = np.arange(N) % max(2, N // 2) if N > 3 else np.array([0, 0, 1][:N]) if N == 3 else np.array([0, 0])
    if N > 2:
        ref = R.batch_all_triplet_loss(E, lab, 2.0)
        res = fl.batch_all_triplet_loss(E, lab, 2.0, return_grad=True)
        np.testing.assert_allclose(res[0], ref[0], rtol=1e-11)
        np.testing.assert_allclose(res[1], ref[1], rtol=1e-10, atol=1e-13)
    ref = R.nt_xent_loss(E, lab, 0.5)
    res = fl.nt_xent_loss(E, lab, 0.5, return_grad=True)
    np.testing.assert_allclose(res[0], ref[0], rtol=1e-11)
    np.testing.assert_allclose(res[1], ref[1], rtol=1e-10, atol=1e-13)


# ------------------------------------------------------------------ properties

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(R_=st.integers(0, 40), D=st.integers(1, 70), p=st.sampled_from([1.0, 2.0, 3.0]), swap=st.booleans(),
       f32=st.booleans(), seed=st.integers(0, 2**31), reduction=st.sampled_from(["mean", "sum", "none"]))
def test_property_triplet(R_, D, p, swap, f32, seed, reduction):
    """Reference equality over random shapes; value >= 0; gradients of a
    translation-invariant loss sum to 0 over the three operands."""
    dt = F32 if f32 else F64
    rng = np.random.default_rng(seed)
    a, pos, neg = (rng.normal(0, 2, (R_, D)).astype(dt) for _ in range(3))
    res = fl.triplet_margin_loss(a, pos, neg, 1.0, p, 1e-6, swap, reduction=reduction, return_grad=True)
    ref = R.triplet_margin_loss(a.astype(F64), pos.astype(F64), neg.astype(F64), 1.0, p, 1e-6, swap,
                                reduction=reduction)
    _same(res, ref, dt, "property")
    assert np.all(np.asarray(res[0])[~np.isnan(res[0])] >= 0)
    total = res[1].astype(F64) + res[2] + res[3]
    np.testing.assert_allclose(total, 0, atol=1e-5 if f32 else 1e-12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(N=st.integers(4, 50), D=st.integers(1, 9), K=st.integers(2, 6), seed=st.integers(0, 2**31),
       which=st.sampled_from([0, 1, 2]))
def test_property_batch(N, D, K, seed, which):
    rng = np.random.default_rng(seed)
    E = rng.normal(0, 1, (N, D))
    lab = np.arange(N) % min(K, N // 2)
    fn, ref_fn, kw = [(fl.batch_hard_triplet_loss, R.batch_hard_triplet_loss, dict(margin=0.4)),
                      (fl.batch_all_triplet_loss, R.batch_all_triplet_loss, dict(margin=0.4)),
                      (fl.nt_xent_loss, R.nt_xent_loss, dict(temperature=0.3))][which]
    v, g = fn(E, lab, **kw, return_grad=True)
    rv, rg = ref_fn(E, lab, **kw)
    np.testing.assert_allclose(v, rv, rtol=1e-9, atol=1e-12)
    atol = 1e-11
    if which == 1:
        # batch-all's distances all come from the Gram matrix, whose relative
        # error is ~ eps (|e_i|^2 + |e_j|^2) / d^2 (see its docstring): the
        # closest pair bounds the gradient's error (1e-5 at d = 6e-6, D = 1)
        sq = (E * E).sum(1)
        d2 = ((E[:, None, :] - E[None, :, :]) ** 2).sum(-1)
        np.fill_diagonal(d2, np.inf)
        atol += 4 * np.finfo(float).eps * 2 * sq.max() / max(d2.min(), 1e-300) * np.abs(rg).max()
    np.testing.assert_allclose(g, rg, rtol=1e-8, atol=atol)
    if which < 2:  # distances are translation invariant: the gradient sums to 0
        np.testing.assert_allclose(g.sum(axis=0), 0, atol=1e-10)


def test_batch_all_near_coincident_embeddings_within_the_gram_bound():
    """The case hypothesis found (N=31, D=1, two embeddings 6e-6 apart):
    the Gram distance's error stays within its bound."""
    test_property_batch.hypothesis.inner_test(N=31, D=1, K=2, seed=2, which=1)


def test_batch_hard_blocks_of_rows(monkeypatch):
    """Batch-hard computes and mines S a block of rows at a time: any block
    size gives the same bits."""
    from fastloss import _features_api

    rng = np.random.default_rng(25)
    E, lab = _batch(rng, 150, 7, 9, F32)
    ref = fl.batch_hard_triplet_loss(E, lab, 0.5, return_grad=True)
    for nbytes in (1, 4 * 150 * 7, 4 * 150 * 64):  # 1, 7 and 64 rows a block
        monkeypatch.setattr(_features_api, "_HARD_BLOCK_BYTES", nbytes)
        res = fl.batch_hard_triplet_loss(E, lab, 0.5, return_grad=True, n_threads=1)
        assert res[0] == ref[0]
        np.testing.assert_array_equal(res[1], ref[1])
