"""The hand-vectorized x86-64-v3 float32 loops of the pointwise driver
(``_src/fl_pointwise_v3.h``): the GAN's logistic terms (kernel ``gan_sp``)
and BCE with logits without pos_weight.  Each must give the same gradient
and per-element losses, bit for bit, as the generated kernel of the same
scalar math (``gan_softplus``; ``bce_logits`` with weights, which take the
generated loop), agree with the float64 reference to float32 precision, be
bit-identical for any thread count, keep NaN, and stay finite at extreme
logits; the baseline path (no AVX2) gives the same losses to float32
precision."""
import math

import numpy as np
import pytest

import fastloss as fl
from fastloss import _pointwise as P
from fastloss import reference as R
from _close import on_both_paths  # tests/_close.py

EPS32 = 2.0 ** -23


def _logits(n, seed, scale=6.0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * scale).astype(np.float32)
    # zeros of both signs, infinities, saturated and underflowing logits, the exp's cut at -87.3
    x[:14] = [0.0, -0.0, np.inf, -np.inf, 1e4, -1e4, 87.0, -87.0, -87.5, 88.7, -90.0, 20.0, -20.0, 1e-30]
    return x


def _run(name, x, y, pa, pb, mode, w=None, n_threads=1, gscale=None):
    n = x.size
    g = np.full(n, 7, np.float32) if mode else None
    l = np.full(n, 7, np.float32)
    tot, bad = P.run(P.LOSS_IDS[name], False, x, y, w, None, 0, g, None, l, None, pa, pb, 0.0, 0, 0, mode,
                     1.0 / n if gscale is None else gscale, n_threads)
    assert not bad
    return tot, g, l


@pytest.mark.parametrize("n", [100003, 8, 13])
@pytest.mark.parametrize("pa, pb", [(1.0, 1.0), (1.0, -1.0), (-1.0, 1.0), (-1.0, -1.0)])
def test_gan_sp_same_bits_as_generated_kernel(n, pa, pb):
    x = _logits(max(n, 14), 1)[:n]
    for mode in (0, 1):
        t1, g1, l1 = _run("gan_sp", x, x, pa, pb, mode)
        t2, g2, l2 = _run("gan_softplus", x, x, pa, pb, mode)
        np.testing.assert_array_equal(l1, l2)
        if mode:
            np.testing.assert_array_equal(g1, g2)
        assert t1 == pytest.approx(t2, rel=1e-6)


@pytest.mark.parametrize("n", [100003, 8, 13])
def test_bce_logits_fast_loop_same_bits_as_generated_loop(n):
    rng = np.random.default_rng(2)
    x = _logits(max(n, 14), 3)[:n]
    y = rng.random(n).astype(np.float32)
    y[: min(n, 40):3] = 1.0
    y[1: min(n, 40):3] = 0.0
    ones = np.ones(n, np.float32)     # weights of 1 take the generated loop; the products by 1 are exact
    for mode in (0, 1):
        t1, g1, l1 = _run("bce_logits", x, y, 0.0, 0.0, mode)
        t2, g2, l2 = _run("bce_logits", x, y, 0.0, 0.0, mode, w=ones)
        np.testing.assert_array_equal(l1, l2)
        if mode:
            np.testing.assert_array_equal(g1, g2)
        assert t1 == pytest.approx(t2, rel=1e-6)


def test_nan_propagates():
    x = _logits(1000, 4)
    x[500] = np.nan
    for name, y, pa, pb in [("gan_sp", x, 1.0, -1.0), ("gan_sp", x, -1.0, 1.0),
                            ("bce_logits", np.full(1000, 0.25, np.float32), 0.0, 0.0)]:
        t, g, l = _run(name, x, y, pa, pb, 1)
        assert math.isnan(t) and np.isnan(g[500]) and np.isnan(l[500])
        assert np.isfinite(np.delete(g, 500)).all()
    y = np.full(1000, 0.25, np.float32)
    y[7] = np.nan
    t, g, l = _run("bce_logits", _logits(1000, 5), y, 0.0, 0.0, 1)
    assert math.isnan(t) and np.isnan(g[7]) and np.isnan(l[7])


def _sp64(z):
    return np.logaddexp(0.0, z)


def _sig64(z):
    return np.exp(-np.logaddexp(0.0, -z))


@pytest.mark.parametrize("pb", [1.0, -1.0])
def test_gan_sp_error_bound(pb):
    """Per element, against float64: softplus within 3 eps32 relative (log1p01's 2.3 ulp: measured 2.56e-7 =
    2.1 eps32) and the sigmoid within 2 eps32 (measured 1.6) on 1.2e5 logits of |x| < 80 (gradient scale 1,
    so that every result is a normal float); exactly 0 where the sigmoid is below 2^-126."""
    x = np.concatenate([_logits(100003, 6)[14:], np.linspace(-80, 80, 20001, dtype=np.float32)])
    t, g, l = _run("gan_sp", x, x, 1.0, pb, 1, gscale=1.0)
    z = pb * x.astype(np.float64)
    np.testing.assert_allclose(l, _sp64(z), rtol=3 * EPS32, atol=0)
    np.testing.assert_allclose(pb * g.astype(np.float64), _sig64(z), rtol=2 * EPS32, atol=0)
    far = _run("gan_sp", np.array([-1e4, -90.0, 1e4, -np.inf, np.inf], np.float32), np.zeros(5, np.float32),
               1.0, 1.0, 1)
    np.testing.assert_array_equal(far[1], np.float32([0.0, 0.0, 0.2, 0.0, 0.2]))   # 1 / n, n = 5
    np.testing.assert_array_equal(far[2], [0.0, 0.0, 1e4, 0.0, np.inf])


@pytest.mark.parametrize("kind", ["minimax", "nonsaturating"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gan_losses_vs_reference(kind, reduction):
    xr = _logits(20011, 7, 3.0)[14:]
    xf = _logits(9001, 8, 3.0)[14:]
    got = fl.gan_generator_loss(xf, kind, reduction=reduction, return_grad=True)
    want = R.gan_generator_loss(xf, kind, reduction=reduction)
    for a, b in zip(got, want):
        np.testing.assert_allclose(np.asarray(a, np.float64), b, rtol=4 * EPS32, atol=0)
    if reduction != "none":
        got = fl.gan_discriminator_loss(xr, xf, kind, reduction=reduction, return_grad=True)
        want = R.gan_discriminator_loss(xr, xf, kind, reduction=reduction)
        for a, b in zip(got, want):
            np.testing.assert_allclose(np.asarray(a, np.float64), b, rtol=4 * EPS32, atol=0)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_vs_reference(reduction):
    rng = np.random.default_rng(9)
    x = _logits(30011, 10, 3.0)[14:]
    y = rng.random(x.size).astype(np.float32)
    got = fl.binary_cross_entropy_with_logits(x, y, reduction=reduction, return_grad=True)
    want = R.binary_cross_entropy_with_logits(x, y, reduction=reduction)
    np.testing.assert_allclose(np.asarray(got[0], np.float64), want[0], rtol=1e-5, atol=1e-6)
    # the gradient s - y cancels where s ~ y: its error is a few eps32 of s and y, not of s - y
    scale = 1.0 / x.size if reduction == "mean" else 1.0
    np.testing.assert_allclose(got[1], want[1], rtol=4 * EPS32, atol=4 * EPS32 * scale)


def test_thread_count_bit_identical(parallel_always):
    rng = np.random.default_rng(11)
    x = _logits(70001, 12)
    y = rng.random(x.size).astype(np.float32)
    calls = [lambda nt: fl.gan_generator_loss(x, "nonsaturating", return_grad=True, n_threads=nt),
             lambda nt: fl.gan_generator_loss(x, "minimax", reduction="none", return_grad=True, n_threads=nt),
             lambda nt: fl.gan_discriminator_loss(x, x[:50001], return_grad=True, n_threads=nt),
             lambda nt: fl.binary_cross_entropy_with_logits(x, y, return_grad=True, n_threads=nt),
             lambda nt: fl.binary_cross_entropy_with_logits(x, y, reduction="none", return_grad=True, n_threads=nt)]
    for c in calls:
        a, b = c(1), c(2)
        for u, w in zip(a, b):
            np.testing.assert_array_equal(u, w)


def test_value_only_call_equals_value_of_grad_call():
    rng = np.random.default_rng(13)
    x = _logits(40001, 14)
    y = rng.random(x.size).astype(np.float32)
    assert fl.gan_generator_loss(x) == fl.gan_generator_loss(x, return_grad=True)[0]
    assert fl.gan_discriminator_loss(x, x[::-1]) == fl.gan_discriminator_loss(x, x[::-1], return_grad=True)[0]
    assert fl.binary_cross_entropy_with_logits(x, y) == fl.binary_cross_entropy_with_logits(x, y, return_grad=True)[0]


def test_baseline_path_agrees():
    """The generated kernels on the baseline path (no AVX2) give the same losses to float32 precision."""
    rng = np.random.default_rng(15)
    x = _logits(20011, 16, 3.0)[14:]
    y = rng.random(x.size).astype(np.float32)
    calls = [lambda: fl.gan_generator_loss(x, "nonsaturating", reduction="none", return_grad=True),
             lambda: fl.gan_discriminator_loss(x, x[::-1], "minimax", return_grad=True),
             lambda: fl.binary_cross_entropy_with_logits(x, y, reduction="none", return_grad=True)]
    fast, base = on_both_paths(calls)
    for a, b in zip(fast, base):
        for u, w in zip(a, b):   # atol: the BCE gradient s - y cancels (the terms are of order 1)
            np.testing.assert_allclose(np.asarray(u, np.float64), np.asarray(w, np.float64), rtol=8 * EPS32,
                                       atol=8 * EPS32)


def _run_sum(name, x, y, pa, pb, mode, n_threads=1):
    """The sum-only call (no per-element losses): the loops' compensated log-sum (fl_logsum_v3.h)."""
    g = np.full(x.size, 7, np.float32) if mode else None
    tot, bad = P.run(P.LOSS_IDS[name], False, x, y, None, None, 0, g, None, None, None, pa, pb, 0.0, 0, 0, mode,
                     1.0, n_threads)
    assert not bad
    return tot, g


def _sum_cases():
    rng = np.random.default_rng(21)
    x = _logits(100003, 22)[14:]
    x = x[np.isfinite(x)]
    return [("random", x),
            ("saturated", np.float32([30.0, 40.0, 17.0, 60.0, 86.9, 87.2, 95.0, 1e4] * 1001)),  # tiny tails
            ("mid", (rng.random(50001) * 8 + 8).astype(np.float32)),   # e in [3e-7, 3e-4]: 1 + e rounds
            ("near0", (rng.standard_normal(30011) * 1e-3).astype(np.float32)),
            ("lengths", _logits(8 * 37 + 5, 23)[14:])]


@pytest.mark.parametrize("pb", [1.0, -1.0])
def test_gan_sp_sum_matches_float64(pb):
    """The value's sum without per-element losses (a log-sum by compensated products, not e P(e) per
    element) against float64 softplus: to 1e-6 relative of the sum of |terms|, also where every tail
    is tiny (logits of 17 to 95 and 1e4, where the sum is that of exp(-|x|)), where 1 + e rounds, and
    near 0; the gradient is the same bits as the per-element call's."""
    for label, x in _sum_cases():
        for xs in (x, -x):
            z = pb * xs.astype(np.float64)
            want = float(_sp64(z).sum())
            for mode in (0, 1):
                got, g = _run_sum("gan_sp", xs, xs, 1.0, pb, mode)
                assert got == pytest.approx(want, rel=1e-6, abs=0), (label, mode)
                if mode:
                    _, g_ref, _ = _run("gan_sp", xs, xs, 1.0, pb, 1, gscale=1.0)
                    np.testing.assert_array_equal(g, g_ref)
            got, _ = _run_sum("gan_sp", xs, xs, -1.0, pb, 0)
            assert got == pytest.approx(-want, rel=1e-6, abs=0), label


def test_bce_logits_sum_matches_float64():
    rng = np.random.default_rng(24)
    for label, x in _sum_cases():
        for y in (np.float32(x > 0), np.float32(x < 0), rng.random(x.size).astype(np.float32)):
            xd, yd = x.astype(np.float64), y.astype(np.float64)
            want = float((np.maximum(xd, 0) - xd * yd + np.log1p(np.exp(-np.abs(xd)))).sum())
            for mode in (0, 1):
                got, g = _run_sum("bce_logits", x, y, 0.0, 0.0, mode)
                # the terms max(x, 0) - x y are rounded in float32 as before: 1e-6 of their absolute sum
                scale = float((np.abs(xd) + np.log1p(np.exp(-np.abs(xd)))).sum())
                assert abs(got - want) <= 1e-6 * scale + 1e-6 * abs(want), (label, mode, got, want)
                if y[0] == (x[0] > 0) and label == "saturated":
                    assert got == pytest.approx(want, rel=1e-6)   # all tails, exactly as in float64
                if mode:
                    _, g_ref, _ = _run("bce_logits", x, y, 0.0, 0.0, 1, gscale=1.0)
                    np.testing.assert_array_equal(g, g_ref)


def test_sum_path_nan_and_infinities():
    x = _logits(1000, 25)
    x[2:4] = 0.0   # the infinities are 2, 3 in _logits
    x[777] = np.nan
    for name, y, pa, pb in [("gan_sp", x, 1.0, -1.0), ("gan_sp", x, 1.0, 1.0),
                            ("bce_logits", np.full(1000, 0.25, np.float32), 0.0, 0.0)]:
        for mode in (0, 1):
            assert math.isnan(_run_sum(name, x, y, pa, pb, mode)[0])
    for v, want in ((np.inf, np.inf), (-np.inf, 0.0)):
        x = np.zeros(37, np.float32)
        x[5] = v
        got = _run_sum("gan_sp", x, x, 1.0, 1.0, 0)[0]
        assert got == pytest.approx(want + 36 * math.log(2), rel=1e-7)
