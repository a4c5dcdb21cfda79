"""Accuracy of the kernels' inline vector math (fl_vmath.h, fl_pointwise_math.h).

The logistic and softmax kernels call an inline ``exp`` (x <= 0) and, for
the softplus tail, ``log1p`` on [0, 1]; both are polynomials evaluated in
the vector lanes of the dtype.  Checked here on dense grids, on the
instruction-set path in use, against NumPy's extended precision
(``np.longdouble``, 64-bit mantissa on x86) and spot-checked with mpmath:
float64 within 2 ulp, float32 within its documented bounds.
"""
import numpy as np
import pytest

from fastloss import _pointwise
from _close import on_both_paths

LD = np.longdouble
# exp (float64): 0.93 ulp at most with FMA (x86-64-v3), 1.03 without (the baseline path)
EXP_ULP = 1.0 if _pointwise.isa_name() != "baseline" else 1.1
EXACT_LD = np.finfo(LD).nmant >= 63   # x87 extended: a reference finer than double


def _ulps(got, ref):
    """|got - ref| in units of the last place of ref (rounded to got's dtype)."""
    ref_t = ref.astype(got.dtype)
    sp = np.spacing(np.abs(ref_t)).astype(LD)
    return np.abs((got.astype(LD) - ref) / sp).astype(np.float64)


@pytest.mark.skipif(not EXACT_LD, reason="needs an extended-precision long double as the reference")
def test_exp_float64_within_one_ulp_on_a_dense_grid():
    x = np.concatenate([-np.linspace(0.0, 708.0, 2_000_001), -np.geomspace(1e-300, 1.0, 50_001),
                        -np.random.default_rng(0).uniform(0.0, 708.0, 200_000)])
    got = _pointwise.vmath("exp", x)
    err = _ulps(got, np.exp(x.astype(LD)))
    assert err.max() <= EXP_ULP, (err.max(), x[err.argmax()])
    assert _pointwise.vmath("exp", np.array([0.0]))[0] == 1.0   # exactly (the max-split sums need it)


def test_exp_float64_edges():
    x = np.array([-708.0, -708.5, -745.2, -800.0, -np.inf, np.nan, -1e-320, -0.0])
    got = _pointwise.vmath("exp", x)
    assert got[0] == pytest.approx(np.exp(-708.0), rel=1e-15)
    assert (got[1:5] == 0).all()             # below -708: flushed to 0 (< 3.3e-308)
    assert np.isnan(got[5])
    assert got[6] == 1.0 and got[7] == 1.0


@pytest.mark.skipif(not EXACT_LD, reason="needs an extended-precision long double as the reference")
def test_log1p01_float64_within_two_ulp_on_a_dense_grid():
    e = np.concatenate([np.linspace(0.0, 1.0, 2_000_001), np.geomspace(1e-300, 1.0, 100_001),
                        np.random.default_rng(1).random(200_000)])
    got = _pointwise.vmath("log1p01", e)
    err = _ulps(got, np.log1p(e.astype(LD)))
    assert err.max() <= 2.0, (err.max(), e[err.argmax()])
    assert err.mean() < 0.5


@pytest.mark.skipif(not EXACT_LD, reason="needs an extended-precision long double as the reference")
def test_log1p_pos_within_two_ulp_on_dense_grids_both_paths():
    """log1p_pos_d (fl_vmath.h): the softmax rows' log s = log1p((k - 1) + rest) in double, inline
    (it replaced a libmvec log): both sides of its split at t = sqrt(2) - 1, tiny and huge t, on
    the x86-64-v3 path and the baseline path."""
    rng = np.random.default_rng(3)
    t = np.concatenate([np.linspace(0.0, 2.0, 2_000_001), np.linspace(0.40, 0.43, 200_001),
                        np.linspace(2.0, 70.0, 1_000_001), np.geomspace(1e-300, 1e6, 200_001),
                        rng.uniform(0, 64, 200_000), [np.sqrt(2) - 1, 2.0 ** 53, 1e300]])
    ref = np.log1p(t.astype(LD))
    for got in on_both_paths([lambda: _pointwise.vmath("log1p_pos", t)]):
        err = _ulps(got[0], ref)
        assert err.max() <= 2.0, (err.max(), t[err.argmax()])
        assert err.mean() < 0.5
    got = _pointwise.vmath("log1p_pos", np.array([0.0, np.nan, 1e-310]))
    assert got[0] == 0 and np.isnan(got[1]) and got[2] == pytest.approx(1e-310, rel=1e-9)  # subnormal t


def test_exp_float64_far_below_is_zero_and_never_subnormal():
    """exp_np (float64) does not clamp x: a lane below -708 computes whatever k and r it gets and
    is masked to 0.  Its scale is 0, inf or a normal 2^j and 2 exp(r) >= 1.41, so no lane can make
    a subnormal (an assist each) -- checked through the outputs: exactly 0 below -708 (masked
    logits such as -1e9 or the float minimum included), never subnormal above, NaN of either sign
    kept, exactly 1 at 0."""
    far = np.concatenate([-np.linspace(708.0001, 4000.0, 400_001), -np.geomspace(4000.0, 1.7e308, 20_001),
                          [-1e9, -1e30, -3.4028234663852886e38, -1.7976931348623157e308, -np.inf]])
    got = _pointwise.vmath("exp", far)
    assert (got == 0).all() and not np.signbit(got).any()
    near = -np.linspace(0.0, 708.0, 700_001)
    got = _pointwise.vmath("exp", near)
    assert (got >= np.finfo(np.float64).tiny).all()            # normal, never subnormal
    nan = np.array([np.nan, -np.nan, np.copysign(np.nan, -1.0)])
    assert np.isnan(_pointwise.vmath("exp", nan)).all()
    assert _pointwise.vmath("exp", np.array([0.0, -0.0])).tolist() == [1.0, 1.0]


def test_log1p01_float64_tiny_and_special():
    # (its inputs are exp(-|x|) from exp_np: 0 or at least 3.3e-308, never subnormal)
    e = np.array([0.0, 2.3e-308, 1e-300, 2.0 ** -55, 2.0 ** -53, np.nan])
    got = _pointwise.vmath("log1p01", e)
    np.testing.assert_array_equal(got[:4], e[:4])          # log1p(e) rounds to e below 2^-54
    assert got[4] == np.log1p(2.0 ** -53)
    assert np.isnan(got[5])


def test_float64_against_mpmath():
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 40
    rng = np.random.default_rng(2)
    x = -np.concatenate([rng.uniform(0, 708, 300), rng.uniform(0, 1, 300), 10.0 ** rng.uniform(-20, 0, 300)])
    e = np.concatenate([rng.random(300), 10.0 ** rng.uniform(-20, 0, 300)])
    for name, pts, f in (("exp", x, mp.exp), ("log1p01", e, mp.log1p)):
        got = _pointwise.vmath(name, pts)
        for p, g in zip(pts, got):
            ref = f(mp.mpf(float(p)))
            ulp = float(np.spacing(abs(float(ref))))
            assert abs(mp.mpf(float(g)) - ref) <= (EXP_ULP if name == "exp" else 2.0) * ulp, (name, p)


@pytest.mark.skipif(not EXACT_LD, reason="needs an extended-precision long double as the reference")
def test_float32_exp_and_log1p01_bounds():
    x = -np.linspace(0.0, 87.3, 1_000_001).astype(np.float32)
    err = _ulps(_pointwise.vmath("exp", x), np.exp(x.astype(LD)))
    assert err.max() <= 1.1, err.max()
    e = np.linspace(0.0, 1.0, 1_000_001).astype(np.float32)
    err = _ulps(_pointwise.vmath("log1p01", e), np.log1p(e.astype(LD)))
    assert err.max() <= 3.2, err.max()   # float's degree-8 fit (see fl_pointwise_math.h)


def test_vmath_rejects_bad_arguments():
    with pytest.raises(ValueError, match="vmath: x must be a C-contiguous float32 or float64 array"):
        _pointwise.vmath("exp", np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="vmath: unknown function 'sin'"):
        _pointwise.vmath("sin", np.zeros(3))


def test_float32_exp_any_within_one_ulp_and_edges():
    """exp_any (the KL's exp(logvar)): float32 inline, any x; within 1 ulp on [-87, 88.72]."""
    x = np.linspace(-87.0, 88.72, 2_000_001, dtype=np.float32)
    got = _pointwise.vmath("exp_any", x)
    err = _ulps(got, np.exp(x.astype(LD)))
    assert err.max() <= 1.05, (err.max(), x[err.argmax()])
    e = np.array([88.72283, 88.72284, 1e4, np.inf, -np.inf, np.nan, -87.4, -1e4, 0.0, -0.0], np.float32)
    got = _pointwise.vmath("exp_any", e)
    assert np.isfinite(got[0]) and got[0] == pytest.approx(np.exp(np.float64(e[0])), rel=2e-7)
    assert np.isinf(got[1:4]).all() and (got[4] == 0) and np.isnan(got[5])
    assert (got[6:8] == 0).all() and (got[8:] == 1).all()
    d = np.array([-1000.0, -1.5, 0.0, 3.0, 709.0])
    np.testing.assert_allclose(_pointwise.vmath("exp_any", d), np.exp(d), rtol=1e-15)
