"""The VAE's Gaussian KL term on the x86-64-v3 float32 path
(``_src/fl_pointwise_v3_kl.h``, hand-vectorized) and the VAE's one-pass
call (``_pointwise.run_pair``: the reconstruction and the KL in one
parallel pass).  The loop must give the same per-element terms and
gradients, bit for bit, as the generated kernel of the same scalar math
(``gaussian_kl`` with weights, which take the generated loop), including
chunk tails, extremes and NaN; its float32 ``exp(t) - 1 - t`` must be
within a few eps32 of float64; ``run_pair`` must give each call's own bits;
all bit-identical for any thread count; the baseline path (no AVX2) agrees
to float32 precision."""
import math

import numpy as np
import pytest

import fastloss as fl
from fastloss import _pointwise as P
from fastloss import reference as R
from _close import on_both_paths  # tests/_close.py

EPS32 = 2.0 ** -23
KL = P.LOSS_IDS["gaussian_kl"]
# the exp's cuts (-100, -87.3, k = -126, k = 0 at |t| = 0.3466, k = 128 at 88.38, overflow at 88.72, the 89 clamp),
# zeros of both signs, tiny, huge and infinite logvar
EXTREMES = [0.0, -0.0, 1e-30, -1e-30, 1e-20, 0.3466, -0.3466, 0.34658, -0.34658, 0.5, -0.5, 1.0, -1.0, 17.3, 40.0,
            87.0, -87.0, -87.3, -87.7, -88.0, 88.0, 88.3, 88.4, 88.72, 88.73, 89.0, 90.0, -100.0, -101.0, -200.0,
            -1e30, 1e30, np.inf, -np.inf]


def _operands(n, seed, nan=False):
    rng = np.random.default_rng(seed)
    mu = (rng.standard_normal(n) * 2).astype(np.float32)
    lv = (rng.standard_normal(n) * 3).astype(np.float32)
    ex = np.float32(EXTREMES)
    for at in (0, n // 2, n - ex.size):     # in the vector body and in a chunk's tail
        if at >= 0 and at + ex.size <= n:
            lv[at:at + ex.size] = ex
    if nan:
        lv[n // 3] = np.nan
    if nan and n > 40:
        lv[3], mu[n // 2 + 1], lv[-1] = np.nan, np.nan, np.nan
    return mu, lv


def _run(mu, lv, mode, w=None, gt=True, n_threads=1):
    n = mu.size
    g = np.full(n, 7, np.float32) if mode else None
    gtb = np.full(n, 7, np.float32) if mode and gt else None
    lo = np.full(n, 7, np.float32)
    tot, bad = P.run(KL, False, mu, lv, w, None, 0, g, None, lo, None, 0.0, 0.0, 0.0, 0, 0, mode, 1.0 / n, n_threads,
                     gtb)
    assert not bad
    return tot, g, gtb, lo


@pytest.mark.parametrize("n", [100003, 8, 13, 1, 263])
@pytest.mark.parametrize("nan", [False, True])
def test_kl_fast_loop_same_bits_as_generated_loop(n, nan):
    mu, lv = _operands(n, n, nan)
    ones = np.ones(n, np.float32)     # weights of 1 take the generated loop; the products by 1 are exact
    for mode, gt in ((0, False), (1, False), (1, True)):
        t1, g1, gt1, l1 = _run(mu, lv, mode, gt=gt)
        t2, g2, gt2, l2 = _run(mu, lv, mode, w=ones, gt=gt)
        np.testing.assert_array_equal(l1, l2)
        if mode:
            np.testing.assert_array_equal(g1, g2)
        if gt:
            np.testing.assert_array_equal(gt1, gt2)
        if nan:
            assert math.isnan(t1) and math.isnan(t2)
        else:
            assert t1 == pytest.approx(t2, rel=1e-6)


def test_kl_fast_loop_nan_propagates_and_stays_put():
    mu, lv = _operands(1000, 3, nan=True)
    t, g, gt, l = _run(mu, lv, 1)
    assert math.isnan(t)
    assert np.isnan(l[[3, 333, 501, 999]]).all() and np.isnan(gt[[3, 333, 999]]).all() and np.isnan(g[501])
    ok = np.ones(1000, bool)
    ok[[3, 333, 501, 999]] = False
    ok &= np.abs(lv) < 88.7                 # the overflowing and infinite logvars
    assert np.isfinite(l[ok]).all() and np.isfinite(gt[ok]).all() and np.isfinite(np.delete(g, 501)).all()


def _em1mx64(t):
    """exp(t) - 1 - t in float64 without cancellation (the series below 1e-3)."""
    t = np.asarray(t, np.float64)
    with np.errstate(over="ignore"):
        big = np.expm1(t) - t
    small = t * t * (0.5 + t / 6 + t * t / 24 + t ** 3 / 120)
    return np.where(np.abs(t) < 1e-3, small, big)


def test_kl_error_bound():
    """Per element against float64, gradient scale 1: the term 0.5 (exp(t) - 1 - t) (mu = 0) within 6 eps32
    relative (measured 5.1, at t = 0.347) and d/dlogvar = 0.5 expm1(t) within 3 eps32 relative, on logvar of |t| < 88 (dense near the
    reduction's switches at +-0.3466); mu^2 / 2 + the term within 2 eps32 more."""
    rng = np.random.default_rng(5)
    lv = np.concatenate([np.linspace(-88, 88, 200001), np.linspace(-1, 1, 100001), rng.uniform(-1e-3, 1e-3, 1000),
                         np.float32([1e-8, -3e-6, 0.3466, -0.3466, 0.34658, -0.34658])]).astype(np.float32)
    gtb, lo = np.empty_like(lv), np.empty_like(lv)
    P.run(KL, False, np.zeros_like(lv), lv, None, None, 0, np.empty_like(lv), None, lo, None, 0.0, 0.0, 0.0, 0, 0,
          1, 1.0, 1, gtb)
    want = 0.5 * _em1mx64(lv)
    np.testing.assert_allclose(lo, want, rtol=6 * EPS32, atol=0)
    np.testing.assert_allclose(gtb, 0.5 * np.expm1(lv.astype(np.float64)), rtol=3 * EPS32, atol=0)
    mu = rng.normal(0, 2, lv.size).astype(np.float32)
    P.run(KL, False, mu, lv, None, None, 0, None, None, lo, None, 0.0, 0.0, 0.0, 0, 0, 0, 1.0, 1)
    np.testing.assert_allclose(lo, 0.5 * mu.astype(np.float64) ** 2 + want, rtol=8 * EPS32, atol=0)


def test_kl_far_logvar():
    lv = np.float32([-200.0, -1e30, -np.inf, 88.72, 88.73, 89.0, 90.0, 1e30, np.inf])
    _, g, gt, l = _run(np.zeros_like(lv), lv, 1)
    n = np.float32(lv.size)
    np.testing.assert_array_equal(l[:3], np.float32([99.5, 5e29, np.inf]))   # 0.5 (-1 - t): exp(t) is 0
    np.testing.assert_array_equal(gt[:3], np.float32([-0.5] * 3) / n)       # 0.5 expm1(t)
    assert np.isfinite(l[3]) and np.isfinite(gt[3:6]).all()                  # 0.5 e^t < 2.3e38 up to t = 89
    np.testing.assert_array_equal(l[4:], np.float32([np.inf] * 5))         # exp(t) overflows float32
    np.testing.assert_array_equal(gt[6:], np.float32([np.inf] * 3))        # 0.5 exp(t) overflows


# ------------------------------------------------------------------ the VAE's one pass (run_pair)

def _pair_vs_runs(n1, n2, mode, n_threads, kid1="bce_logits", f64=False):
    rng = np.random.default_rng(n1 + n2)
    dt = np.float64 if f64 else np.float32
    x, t = (rng.standard_normal(n1) * 2).astype(dt), rng.random(n1).astype(dt)
    mu, lv = _operands(n2, 7)
    mu, lv = mu.astype(dt), lv.astype(dt)
    k1 = P.LOSS_IDS[kid1]

    def bufs(n):
        return np.full(n, 7, dt) if mode else None

    g1, g2, g3 = bufs(n1), bufs(n2), bufs(n2)
    tr, br, tk, bk = P.run_pair(k1, KL, f64, x, t, g1, None, None, 1 / 3, mu, lv, g2, g3, None, 0.7 / 3, mode,
                                n_threads)
    h1, h2, h3 = bufs(n1), bufs(n2), bufs(n2)
    ur, _ = P.run(k1, f64, x, t, None, None, 0, h1, None, None, None, 0.0, 0.0, 0.0, 0, 0, mode, 1 / 3, 1)
    uk, _ = P.run(KL, f64, mu, lv, None, None, 0, h2, None, None, None, 0.0, 0.0, 0.0, 0, 0, mode, 0.7 / 3, 1, h3)
    assert not br and not bk
    # the same bits, not just close (NaN where float64's exp(t) - 1 - t is inf - inf, t = inf)
    assert np.float64(tr).tobytes() == np.float64(ur).tobytes() and np.float64(tk).tobytes() == np.float64(uk).tobytes()
    if mode:
        for a, b in ((g1, h1), (g2, h2), (g3, h3)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n1, n2", [(4096 * 256, 4096 * 64), (70001, 123457), (300, 50), (8192 * 3, 1), (0, 9000),
                                    (40000, 0), (8192 * 9 + 5, 8192 * 2 + 77)])
@pytest.mark.parametrize("mode", [0, 1])
def test_run_pair_same_bits_as_two_runs(n1, n2, mode, parallel_always):
    for nt in (1, 2, 3):
        _pair_vs_runs(n1, n2, mode, nt)


def test_run_pair_other_kernels_and_float64(parallel_always):
    _pair_vs_runs(50000, 20000, 1, 2, kid1="mse")
    _pair_vs_runs(50000, 20000, 1, 2, f64=True)
    _pair_vs_runs(20000, 50000, 0, 2, f64=True)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("recon", ["bce", "mse"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_vae_one_pass_equals_its_terms(dt, recon, reduction, parallel_always):
    """vae_loss (one pass) gives the bits of its two terms computed apart (fastloss.dask's terms), the same
    for any thread count, in the default call and into out= buffers."""
    from fastloss._generative_losses import _vae_kl, _vae_recon
    rng = np.random.default_rng(21)
    x = (rng.standard_normal((300, 96)) * 2).astype(dt)
    t = rng.random((300, 96)).astype(dt)
    mu, lv = rng.normal(0, 1, (300, 24)).astype(dt), rng.normal(0, 2, (300, 24)).astype(dt)
    got = fl.vae_loss(x, t, mu, lv, 0.3, recon, reduction=reduction, return_grad=True, n_threads=1)
    vr, gi = _vae_recon(x, t, recon=recon, reduction=reduction, return_grad=True, n_threads=1)
    vk, gm, gl = _vae_kl(mu, lv, dtype=dt, beta=0.3, reduction=reduction, return_grad=True, n_threads=1)
    assert got[0] == vr + vk
    for a, b in zip(got[1:], (gi, gm, gl)):
        np.testing.assert_array_equal(a, b)
    assert fl.vae_loss(x, t, mu, lv, 0.3, recon, reduction=reduction, n_threads=2) == got[0]
    outs = (np.empty_like(x), np.empty_like(mu), np.empty_like(lv))
    res = fl.vae_loss(x, t, mu, lv, 0.3, recon, reduction=reduction, return_grad=True, out=outs, n_threads=2)
    assert res[0] == got[0] and all(r is o for r, o in zip(res[1:], outs))
    for a, b in zip(res[1:], got[1:]):
        np.testing.assert_array_equal(a, b)
    v2, g2 = fl.vae_loss(x, t, mu, lv, 0.3, recon, reduction=reduction, return_grad=("logvar",), n_threads=2)
    assert v2 == got[0]
    np.testing.assert_array_equal(g2, gl)


def test_vae_one_pass_out_overlap_and_empty_batch():
    x = np.zeros((4, 8), np.float32)
    mu = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match=r"vae_loss: out must not share memory"):
        fl.vae_loss(x, x.copy(), mu, mu.copy(), return_grad=True, out=(x, None, None))
    with pytest.raises(ValueError, match=r"vae_loss: out must not share memory"):
        fl.vae_loss(x, x.copy(), mu, mu.copy(), return_grad=True, out=(None, mu, None))
    lvb = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match=r"vae_loss: out \(target\) must not share memory"):
        fl.vae_loss(x, x.copy(), mu, lvb, return_grad=True, out=(None, None, lvb))
    e = np.zeros((0, 8), np.float32)
    assert math.isnan(fl.vae_loss(e, e, np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)))
    assert fl.vae_loss(e, e, np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32), reduction="sum") == 0.0


def test_vae_kl_thread_count_bit_identical(parallel_always):
    rng = np.random.default_rng(23)
    mu, lv = _operands(300 * 64, 23)
    mu, lv = mu.reshape(300, 64), lv.reshape(300, 64) / 10
    x, t = rng.normal(0, 2, (300, 300)).astype(np.float32), rng.random((300, 300)).astype(np.float32)
    calls = [lambda nt: fl.gaussian_kl_loss(mu, lv, return_grad=True, n_threads=nt),
             lambda nt: fl.gaussian_kl_loss(mu, lv, reduction="none", return_grad=True, n_threads=nt),
             lambda nt: fl.vae_loss(x, t, mu, lv, 0.5, return_grad=True, n_threads=nt)]
    for c in calls:
        a, b = c(1), c(2)
        for u, w in zip(a, b):
            np.testing.assert_array_equal(u, w)


def test_baseline_path_agrees():
    """The generated kernels on the baseline path (no AVX2, no fused multiply-add) give the KL and the VAE to
    float32 precision."""
    mu, lv = _operands(20011, 25)
    keep = np.abs(lv) < 80
    mu, lv = mu[keep][:19800].reshape(396, 50), lv[keep][:19800].reshape(396, 50)
    rng = np.random.default_rng(26)
    x, t = rng.normal(0, 2, (396, 100)).astype(np.float32), rng.random((396, 100)).astype(np.float32)
    calls = [lambda: fl.gaussian_kl_loss(mu, lv, reduction="none", return_grad=True),
             lambda: fl.vae_loss(x, t, mu, lv, 0.5, return_grad=True)]
    fast, base = on_both_paths(calls)
    for a, b in zip(fast, base):
        for u, w in zip(a, b):
            np.testing.assert_allclose(np.asarray(u, np.float64), np.asarray(w, np.float64), rtol=8 * EPS32,
                                       atol=8 * EPS32 * 1e-2)
    want = R.gaussian_kl_loss(mu.astype(np.float64), lv.astype(np.float64), None, "none")
    for u, w in zip(base[0], want):
        np.testing.assert_allclose(np.asarray(u, np.float64), w, rtol=8 * EPS32, atol=1e-7)
