"""fastloss.CombinedLoss / combined_loss: the weighted sum of losses, its
gradient accumulated in one buffer (the pointwise driver's accumulate mode,
or the first term's out= for other drivers), equals the terms' separate
calls added; per-term values; grad_hess; threads; errors."""
import numpy as np
import pytest

import fastloss as fl
from fastloss import _pointwise_api as PA


def _sep(terms, x, t):
    v, g = 0.0, np.zeros(x.shape)
    for w, loss in terms:
        a, b = loss.value_and_grad(x, t)
        v += w * a
        g += w * b
    return v, g


def _cases(dt):
    rng = np.random.default_rng(7)
    x = rng.normal(0, 2, (6, 5, 4)).astype(dt)
    tb = (rng.random((6, 5, 4)) < 0.4).astype(dt)
    tr = rng.normal(0, 1, (6, 5, 4)).astype(dt)
    labels = rng.integers(0, 5, (6, 4))
    return [
        ([(1.0, fl.MSELoss()), (0.5, fl.HuberLoss(delta=0.7, reduction="sum"))], x, tr),
        ([(1.0, fl.BCEWithLogitsLoss()), (1.0, fl.DiceLoss("multilabel"))], x, tb),
        ([(0.3, fl.BCEWithLogitsLoss()), (2.0, fl.DiceLoss("multilabel")), (1.5, fl.JaccardLoss("multilabel"))], x, tb),
        ([(1.0, fl.CrossEntropyLoss()), (0.7, fl.DiceLoss("multiclass"))], x, labels),
        ([(2.0, fl.SmoothL1Loss()), (0.0, fl.L1Loss()), (-1.0, fl.LogCoshLoss())], x, tr),
    ]


@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("k", range(5))
def test_equals_separate_calls(dt, k):
    terms, x, t = _cases(dt)[k]
    loss = fl.CombinedLoss(terms)
    v, g = loss.value_and_grad(x, t)
    ev, eg = _sep(terms, x, t)
    tol = dict(rtol=1e-12, atol=1e-14) if dt == np.float64 else dict(rtol=2e-6, atol=1e-7)
    assert g.dtype == dt and g.shape == x.shape
    np.testing.assert_allclose(v, ev, **tol)
    np.testing.assert_allclose(g, eg, **tol)
    assert loss(x, t) == pytest.approx(v, rel=1e-6 if dt == np.float32 else 1e-14)
    # the per-term values, unweighted, in the order of terms
    for val, (w, l) in zip(loss.values, terms):
        assert val == pytest.approx(l(x, t), rel=1e-6 if dt == np.float32 else 1e-13)
    fv = []
    v2, g2 = fl.combined_loss(x, t, terms, term_values=fv, return_grad=True)
    assert v2 == v and fv == loss.values
    np.testing.assert_array_equal(g2, g)


def test_one_buffer_out_and_accumulate_mode():
    terms, x, t = _cases(np.float64)[1]
    buf = np.full(x.shape, np.nan)
    v, g = fl.CombinedLoss(terms).value_and_grad(x, t, out=buf)
    assert g is buf and np.isfinite(buf).all()
    # the driver's accumulate mode adds w * grad into the buffer in place
    y = np.random.default_rng(1).normal(size=x.shape)
    base = np.random.default_rng(2).normal(size=x.shape)
    acc = base.copy()
    mse = fl.MSELoss()
    val, _ = PA.run(mse._spec, x, y, None, "mean", PA.GRAD, mse._params, 1, out=acc, scale=0.25, accumulate=True)
    np.testing.assert_allclose(acc, base + 0.25 * 2 * (x - y) / x.size, rtol=1e-14, atol=1e-16)
    assert val == pytest.approx(0.25 * fl.mse_loss(x, y), rel=1e-14)
    h0 = np.ones(x.shape)
    g0 = base.copy()
    PA.run(mse._spec, x, y, None, "sum", PA.GRAD_HESS, mse._params, 1, out=g0, hess_out=h0, scale=2.0,
           accumulate=True)
    np.testing.assert_allclose(h0, 1 + 4.0, rtol=0)
    np.testing.assert_allclose(g0, base + 4 * (x - y), rtol=1e-14)


def test_grad_hess_of_pointwise_terms():
    terms, x, t = _cases(np.float64)[0]
    g, h = fl.CombinedLoss(terms).grad_hess(x, t)
    eg = sum(w * l.grad_hess(x, t)[0] for w, l in terms)
    eh = sum(w * l.grad_hess(x, t)[1] for w, l in terms)
    np.testing.assert_allclose(g, eg, rtol=1e-13)
    np.testing.assert_allclose(h, eh, rtol=1e-13)


def test_thread_count_bit_identical(parallel_always):
    x = np.random.default_rng(3).normal(size=(40, 1000)).astype(np.float32)
    t = (x > 0.3).astype(np.float32)
    terms = [(1.0, fl.BCEWithLogitsLoss()), (1.0, fl.DiceLoss("binary")), (0.5, fl.MSELoss())]
    a = fl.combined_loss(x, t, terms, return_grad=True, n_threads=1)
    b = fl.combined_loss(x, t, terms, return_grad=True, n_threads=2)
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])


ERRORS = [
    (lambda: fl.CombinedLoss([]), r"CombinedLoss: terms must hold at least one \(weight, loss\) pair"),
    (lambda: fl.CombinedLoss("mse"), r"CombinedLoss: terms must be a list of \(weight, loss\) pairs, got str"),
    (lambda: fl.CombinedLoss([fl.MSELoss()]), r"CombinedLoss: terms\[0\] must be a \(weight, loss\) pair"),
    (lambda: fl.CombinedLoss([(1.0, fl.MSELoss)]), r"CombinedLoss: terms\[0\] must hold a fastloss loss object"),
    (lambda: fl.CombinedLoss([(float("inf"), fl.MSELoss())]), r"CombinedLoss: terms\[0\] weight must be finite"),
    (lambda: fl.CombinedLoss([(1.0, fl.MSELoss(reduction="none"))]), r"CombinedLoss: terms\[0\] has reduction='none'"),
    (lambda: fl.CombinedLoss([(1.0, fl.MSELoss())], reduction="sum"), r"CombinedLoss: reduction must be one of 'mean'"),
    (lambda: fl.combined_loss(np.zeros(2), np.zeros(2), [(1.0, fl.MSELoss())], weight=np.ones(2)),
     r"combined_loss: weight must be None"),
    (lambda: fl.combined_loss(np.zeros(2), np.zeros(2), [(1.0, fl.MSELoss())], term_values={}),
     r"combined_loss: term_values must be None or a list"),
    (lambda: fl.combined_loss(np.zeros(2), np.zeros(2), [(1.0, fl.MSELoss())], out=np.zeros(2)),
     r"combined_loss: out= is the gradient's buffer"),
    (lambda: fl.CombinedLoss([(1.0, fl.DiceLoss("binary"))]).grad_hess(np.zeros((1, 2)), np.zeros((1, 2))),
     r"CombinedLoss: terms\[0\] \(DiceLoss\) has no grad_hess"),
    (lambda: fl.CombinedLoss([(1.0, fl.MSELoss())]).value_and_grad(np.zeros(2), np.zeros(2), out=np.zeros(3)),
     r"CombinedLoss: out"),
]


@pytest.mark.parametrize("call,msg", ERRORS, ids=[m[:40] for _, m in ERRORS])
def test_errors(call, msg):
    with pytest.raises((ValueError, TypeError), match=msg):
        call()


def test_bench_generative_runs(capsys):
    pytest.importorskip("torch")
    from fastloss import bench_generative

    assert bench_generative.main(["--n", "4096", "--cases", "ppo_clip,gan_discriminator,policy_gradient,gradient_penalty",
                                  "--threads", "1", "--repeat", "1", "--no-combined"]) == 0
    out = capsys.readouterr().out
    assert "ppo_clip" in out and "gan_discriminator" in out and "torch/fl" in out
    # the two streaming objectives print their memory floor
    assert out.count("memory floor") == 2 and "np.multiply(grads, 2.0, out=g)" in out


# ------------------------------------------------------------ fused pairs and the overlap accumulate mode

from fastloss import _combined as CB  # noqa: E402
from fastloss import _overlap  # noqa: E402
from fastloss import _overlap_api as OA  # noqa: E402


@pytest.fixture
def overlap_parallel():
    """Every overlap call on the parallel path, with many partial-sum groups."""
    old, oldg = _overlap.set_parallel_threshold(0), _overlap.set_max_groups(3)
    yield
    _overlap.set_parallel_threshold(old)
    _overlap.set_max_groups(oldg)


def _seg_data(dt, mode, seed=11, shape=(3, 4, 5, 7)):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 2.5, shape).astype(dt)
    if mode == "multiclass":
        return x, rng.integers(0, shape[1], shape[:1] + shape[2:])
    if mode == "binary":
        x = x[:, :1]
    return x, (rng.random(x.shape) < 0.35).astype(dt)


PAIRS = [  # (terms, mode): each pair must be fused (one kernel), the values equal to the separate calls
    ([(1.0, fl.BCEWithLogitsLoss()), (1.0, fl.DiceLoss("binary"))], "binary"),
    ([(0.3, fl.DiceLoss("multilabel", smooth=1.0, log_loss=True)), (2.5, fl.BCEWithLogitsLoss())], "multilabel"),
    ([(1.0, fl.BCEWithLogitsLoss()), (-0.5, fl.TverskyLoss("multilabel", alpha=0.3, beta=0.7, gamma=1.5)),
      (0.7, fl.MSELoss())], "multilabel"),
    ([(0.0, fl.BCEWithLogitsLoss()), (1.5, fl.JaccardLoss("multilabel", weight=np.array([1.0, 2.0, 0.0, 0.5])))],
     "multilabel"),
    ([(1.2, fl.CrossEntropyLoss()), (0.8, fl.DiceLoss("multiclass", classes=[0, 2]))], "multiclass"),
    ([(1.0, fl.DiceLoss("multiclass", smooth=0.5)), (1.0, fl.CrossEntropyLoss()),
      (0.5, fl.JaccardLoss("multiclass"))], "multiclass"),
]


@pytest.mark.parametrize("k", range(len(PAIRS)))
def test_fused_pair_dispatch_equals_unfused(k):
    terms, mode = PAIRS[k]
    x, t = _seg_data(np.float64, mode)
    units = CB._units(CB._terms(terms, "t"), x, t)
    assert [u[0] for u in units].count("pair") == 1
    loss = fl.CombinedLoss(terms)
    v, g = loss.value_and_grad(x, t)
    ev, eg = _sep(terms, x, t)
    np.testing.assert_allclose(v, ev, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g, eg, rtol=1e-12, atol=1e-15)
    for val, (w, l) in zip(loss.values, terms):  # per-term values, unweighted
        assert val == pytest.approx(l(x, t), rel=1e-12, abs=1e-15)
    # the value-only call shares the pass too and gives the same value and per-term values
    vals = list(loss.values)
    assert loss(x, t) == pytest.approx(v, rel=1e-14) and loss.values == pytest.approx(vals, rel=1e-14)


@pytest.mark.parametrize("k", [0, 4])
def test_fused_pair_float32_and_out(k):
    terms, mode = PAIRS[k]
    x, t = _seg_data(np.float32, mode, shape=(4, 3, 16, 16))
    buf = np.full(x.shape, np.nan, np.float32)
    v, g = fl.CombinedLoss(terms).value_and_grad(x, t, out=buf)
    ev, eg = _sep(terms, x, t)
    assert g is buf and g.dtype == np.float32
    np.testing.assert_allclose(v, ev, rtol=2e-6)
    np.testing.assert_allclose(g, eg, rtol=2e-5, atol=1e-9)


def test_unfusable_pairs_fall_back():
    x, t = _seg_data(np.float64, "multilabel")
    cases = [
        [(1.0, fl.BCEWithLogitsLoss(pos_weight=np.full((1, 4, 1, 1), 2.0))), (1.0, fl.DiceLoss("multilabel"))],
        [(1.0, fl.BCEWithLogitsLoss(reduction="sum")), (1.0, fl.DiceLoss("multilabel"))],
        [(1.0, fl.BCEWithLogitsLoss()), (1.0, fl.DiceLoss("multilabel", per_image=True))],
        [(1.0, fl.BCEWithLogitsLoss()), (1.0, fl.DiceLoss("multilabel", ignore_index=0))],
        [(1.0, fl.BCEWithLogitsLoss()), (1.0, fl.DiceLoss("multilabel", from_logits=False))],
    ]
    for terms in cases:
        units = CB._units(CB._terms(terms, "t"), x, np.clip(t, 0, 1))
        assert "pair" not in [u[0] for u in units], terms
    xc, y = _seg_data(np.float64, "multiclass")
    for terms in ([(1.0, fl.CrossEntropyLoss(label_smoothing=0.1)), (1.0, fl.DiceLoss("multiclass"))],
                  [(1.0, fl.CrossEntropyLoss(weight=np.ones(4))), (1.0, fl.DiceLoss("multiclass"))]):
        units = CB._units(CB._terms(terms, "t"), xc, y)
        assert "pair" not in [u[0] for u in units]
        v, g = fl.CombinedLoss(terms).value_and_grad(xc, y)
        ev, eg = _sep(terms, xc, y)
        np.testing.assert_allclose(g, eg, rtol=1e-12, atol=1e-15)
        assert v == pytest.approx(ev, rel=1e-12)
    # a Lovasz term has no accumulate mode: it writes the buffer first, the others add in
    terms = [(1.0, fl.BCEWithLogitsLoss()), (0.5, fl.LovaszHingeLoss()), (2.0, fl.DiceLoss("multilabel"))]
    assert [u[0] for u in CB._units(CB._terms(terms, "t"), x, t)] == ["pair", "other"]
    v, g = fl.CombinedLoss(terms).value_and_grad(x, t)
    ev, eg = _sep(terms, x, t)
    np.testing.assert_allclose(g, eg, rtol=1e-12, atol=1e-15)
    assert v == pytest.approx(ev, rel=1e-12)
    # per_image Dice is not fused but accumulates; the sum is still right
    terms = cases[2]
    v, g = fl.CombinedLoss(terms).value_and_grad(x, t)
    ev, eg = _sep(terms, x, t)
    np.testing.assert_allclose(g, eg, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("name,mode,extra", [
    ("dice_loss", "binary", {}), ("tversky_loss", "multilabel", dict(alpha=0.2, beta=0.9, gamma=1.3)),
    ("dice_loss", "multiclass", dict(ignore_index=1)), ("ce_dice_loss", "multiclass", dict(overlap_w=0.5, ce_w=2.0)),
    ("jaccard_loss", "multilabel", dict(from_logits=False, per_image=True)),
])
def test_overlap_accumulate_mode(dt, name, mode, extra):
    """run_seg(accumulate=True, gscale=w) adds w * grad into out; the value is the unweighted one."""
    x, t = _seg_data(dt, mode)
    if not extra.get("from_logits", True):
        x = np.abs(np.tanh(x)).astype(dt)
    v0, g0 = OA.run_seg(name, x, t, mode=mode, return_grad=True, **extra)
    base = np.random.default_rng(5).normal(size=x.shape).astype(dt)
    acc = base.copy()
    v1, g1 = OA.run_seg(name, x, t, mode=mode, return_grad=True, out=acc, accumulate=True, gscale=0.375, **extra)
    assert g1 is acc and v1 == v0
    tol = dict(rtol=1e-13, atol=1e-16) if dt == np.float64 else dict(rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(acc, base + 0.375 * g0.astype(np.float64), **tol)


def test_fused_and_accumulating_bit_identical_across_threads(overlap_parallel, parallel_always):
    rng = np.random.default_rng(9)
    x = rng.normal(0, 2, (6, 3, 40, 50)).astype(np.float32)
    t = (rng.random(x.shape) < 0.3).astype(np.float32)
    y = rng.integers(0, 3, (6, 40, 50))
    for terms, tt in (([(1.0, fl.BCEWithLogitsLoss()), (0.5, fl.DiceLoss("multilabel")),
                        (0.25, fl.JaccardLoss("multilabel", per_image=True)), (0.1, fl.MSELoss())], t),
                      ([(1.0, fl.CrossEntropyLoss()), (1.0, fl.DiceLoss("multiclass")),
                        (2.0, fl.TverskyLoss("multiclass", alpha=0.3, beta=0.7))], y)):
        vals1, vals2 = [], []
        a = fl.combined_loss(x, tt, terms, return_grad=True, n_threads=1, term_values=vals1)
        b = fl.combined_loss(x, tt, terms, return_grad=True, n_threads=2, term_values=vals2)
        assert a[0] == b[0] and vals1 == vals2
        np.testing.assert_array_equal(a[1], b[1])


def test_bench_generative_combined_rows_agree():
    """The benchmark's combined variants compute the same gradient (one call each, 16x1x256x256 float32)."""
    from fastloss import bench_generative

    fns = bench_generative._combined(1, np.float32)
    assert {"combined", "combined_out", "bce+dice+add", "bce+dice+add_out", "bce alone_out", "dice alone_out"} <= set(fns)
    g_comb = fns["combined"]()[1].copy()
    g_out = fns["combined_out"]()[1].copy()
    np.testing.assert_array_equal(g_comb, g_out)
    np.testing.assert_allclose(g_comb, fns["bce+dice+add"](), rtol=1e-4, atol=1e-10)
    np.testing.assert_allclose(g_comb, fns["bce+dice+add_out"](), rtol=1e-4, atol=1e-10)


def test_empty_input_not_fused_mean_of_nothing_is_nan():
    x = np.zeros((0, 1, 4), np.float32)
    terms = [(1.0, fl.BCEWithLogitsLoss()), (1.0, fl.DiceLoss("binary"))]
    assert "pair" not in [u[0] for u in CB._units(CB._terms(terms, "t"), x, x)]
    loss = fl.CombinedLoss(terms)
    v, g = loss.value_and_grad(x, x)
    assert np.isnan(v) and np.isnan(loss.values[0]) and loss.values[1] == fl.dice_loss(x, x) and g.shape == x.shape
