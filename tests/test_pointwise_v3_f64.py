"""The hand-vectorized x86-64-v3 float64 loops of BCE with logits (without
pos_weight) and soft margin (``_src/fl_pointwise_v3_f64.h``), and the
float64 logistic losses' log1p (``log1p01_r1`` in ``fl_pointwise_math.h``).

Each loop must give the same gradient and per-element losses, bit for bit,
as the generated kernel of the same scalar math (the calls with weights of
1 take the generated loop; a product by 1 is exact), on the chunk tails too;
keep NaN; stay exact at extreme logits; and be bit-identical for any thread
count.  log1p01_r1 is checked within 2 ulp on a dense grid against an
extended-precision reference, as fl_vmath.h's log1p01 is (test_vmath.py).
On the baseline path the same calls run the generated kernel, so the
comparisons hold there trivially."""
import math

import numpy as np
import pytest

import fastloss as fl
from fastloss import _pointwise as P

LD = np.longdouble
EXACT_LD = np.finfo(LD).nmant >= 63


def _logits(n, seed, scale=6.0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(max(n, 18)) * scale
    # zeros of both signs, infinities, saturated logits, the exp's cut at -708, huge and tiny
    x[:18] = [0.0, -0.0, np.inf, -np.inf, 1e4, -1e4, 708.0, -708.0, -708.5, 709.0, -745.0, 20.0, -20.0,
              1e-300, 1e30, -1e30, 37.0, -37.0]
    return x[:n]


def _targets(name, n, seed):
    rng = np.random.default_rng(seed)
    if name == "bce_logits":
        y = rng.random(n)
        y[:min(n, 40):3] = 1.0
        y[1:min(n, 40):3] = 0.0
    else:
        y = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        y[:min(n, 40):4] = 0.5      # soft margin takes any y
    return y


def _run(name, x, y, mode, w=None, gscale=None, n_threads=1, with_l=True):
    n = x.size
    g = np.full(n, 7.0) if mode else None
    l = np.full(n, 7.0) if with_l else None
    tot, bad = P.run(P.LOSS_IDS[name], True, x, y, w, None, 0, g, None, l, None, 0.0, 0.0, 0.0, 0, 0, mode,
                     1.0 / n if gscale is None else gscale, n_threads)
    assert not bad
    return tot, g, l


@pytest.mark.parametrize("name", ["bce_logits", "soft_margin"])
@pytest.mark.parametrize("n", [100003, 8195, 13, 3])
def test_fast_loop_same_bits_as_generated_loop(name, n):
    x = _logits(n, 1)
    y = _targets(name, n, 2)
    ones = np.ones(n)
    for mode in (0, 1):
        for with_l in (True, False):
            t1, g1, l1 = _run(name, x, y, mode, with_l=with_l)
            t2, g2, l2 = _run(name, x, y, mode, w=ones, with_l=with_l)
            if with_l:
                np.testing.assert_array_equal(l1, l2)
            if mode:
                np.testing.assert_array_equal(g1, g2)
            assert t1 == pytest.approx(t2, rel=1e-14)


def test_bce_logits_extremes_exact():
    """log1p(exp(-|x|)) vanishes below -708 (exp_np's flush), and a zero c skips c |x|: x = +-inf and
    +-1e30 give 0 with the matching hard label, |x| (or inf) with the other, and the gradient s - y
    exactly."""
    x = np.array([np.inf, -np.inf, 1e30, -1e30, np.inf, -np.inf, 1e30, -1e30, 800.0, -800.0])
    y = np.array([1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0])
    t, g, l = _run("bce_logits", x, y, 1, gscale=1.0)
    np.testing.assert_array_equal(l, [0.0, 0.0, 0.0, 0.0, np.inf, np.inf, 1e30, 1e30, 0.0, 800.0])
    np.testing.assert_array_equal(g, [0.0, 0.0, 0.0, 0.0, 1.0, -1.0, 1.0, -1.0, 0.0, -1.0])
    t, g, l = _run("soft_margin", x, np.where(y > 0, 1.0, -1.0), 1, gscale=1.0)
    np.testing.assert_array_equal(l, [0.0, 0.0, 0.0, 0.0, np.inf, np.inf, 1e30, 1e30, 0.0, 800.0])
    np.testing.assert_array_equal(g, [-0.0, 0.0, -0.0, 0.0, 1.0, -1.0, 1.0, -1.0, -0.0, -1.0])


@pytest.mark.parametrize("name", ["bce_logits", "soft_margin"])
def test_nan_propagates(name):
    n = 1003
    x = _logits(n, 4)
    y = _targets(name, n, 5)
    x[500] = np.nan
    y[7] = np.nan
    t, g, l = _run(name, x, y, 1)
    assert math.isnan(t)
    bad = [7, 500]
    assert np.isnan(g[bad]).all() and np.isnan(l[bad]).all()
    assert not np.isnan(np.delete(g, bad)).any() and not np.isnan(np.delete(l, bad)).any()


def _sigmoid(z):
    ez = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + ez), ez / (1 + ez))


def test_against_float64_formulas():
    """Per element against softplus / sigmoid in NumPy on |x| < 40 (no cancellation in s - y for
    hard labels): both within 1e-15 relative (a few ulp of the kernel and of NumPy together)."""
    x = np.concatenate([np.linspace(-40, 40, 40001), _logits(20000, 6)[18:]])
    y = (np.random.default_rng(7).random(x.size) < 0.5).astype(np.float64)
    t, g, l = _run("bce_logits", x, y, 1, gscale=1.0)
    z = np.where(y == 1, -x, x)                 # the loss is softplus(z), the gradient s - y
    want_l = np.logaddexp(0.0, z)
    want_g = np.where(y == 1, -1.0, 1.0) * _sigmoid(z)
    np.testing.assert_allclose(l, want_l, rtol=1e-15, atol=0)
    np.testing.assert_allclose(g, want_g, rtol=1e-15, atol=0)
    pm = 2 * y - 1
    t, g, l = _run("soft_margin", x, pm, 1, gscale=1.0)
    np.testing.assert_allclose(l, np.logaddexp(0.0, -pm * x), rtol=1e-15, atol=0)
    np.testing.assert_allclose(g, -pm * _sigmoid(-pm * x), rtol=1e-15, atol=0)


def test_thread_count_bit_identical(parallel_always):
    x = _logits(70001, 8)
    y = (np.random.default_rng(9).random(x.size) < 0.5).astype(np.float64)
    pm = 2 * y - 1
    calls = [lambda nt: fl.binary_cross_entropy_with_logits(x, y, return_grad=True, n_threads=nt),
             lambda nt: fl.binary_cross_entropy_with_logits(x, y, reduction="none", return_grad=True, n_threads=nt),
             lambda nt: fl.soft_margin_loss(x, pm, return_grad=True, n_threads=nt),
             lambda nt: fl.soft_margin_loss(x, pm, reduction="sum", return_grad=True, n_threads=nt)]
    for c in calls:
        a, b = c(1), c(2)
        for u, w in zip(a, b):
            np.testing.assert_array_equal(u, w)


@pytest.mark.skipif(not EXACT_LD, reason="needs an extended-precision long double as the reference")
def test_log1p01_r1_float64_within_two_ulp_on_a_dense_grid():
    e = np.concatenate([np.linspace(0.0, 1.0, 2_000_001), np.geomspace(1e-300, 1.0, 100_001),
                        np.random.default_rng(1).random(200_000)])
    got = P.vmath("log1p01_r1", e)
    ref = np.log1p(e.astype(LD))
    sp = np.spacing(np.abs(ref.astype(np.float64))).astype(LD)
    err = np.abs((got.astype(LD) - ref) / sp).astype(np.float64)
    assert err.max() <= 2.0, (err.max(), e[err.argmax()])
    assert err.mean() < 0.5


def test_log1p01_r1_mpmath_spot_check():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.prec = 120
    e = np.concatenate([np.geomspace(2.0 ** -60, 1.0, 3001), [0.0, 2.0 ** -53, 2.0 ** -52, 0.5, 1.0]])
    got = P.vmath("log1p01_r1", e)
    for gi, ei in zip(got, e):
        ref = mpmath.log1p(mpmath.mpf(float(ei)))
        assert abs(mpmath.mpf(float(gi)) - ref) <= 2 * np.spacing(float(ref)) + 0.0, (ei, gi)


def test_log1p01_r1_tiny_and_special():
    e = np.array([0.0, 2.3e-308, 1e-300, 2.0 ** -55, np.nan])
    got = P.vmath("log1p01_r1", e)
    np.testing.assert_array_equal(got[:4], e[:4])          # log1p(e) rounds to e below 2^-54
    assert np.isnan(got[4])
