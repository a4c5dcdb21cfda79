"""The small-call fast paths of the row driver give what the general path gives.

The mean's division is done in Python floats instead of NumPy scalars
under np.errstate (2 us a call): it must be NumPy's float64 division,
signed zeros, infinities and NaN included; the (N, C) shape and int64
label fast paths must keep every check of the general path.
"""
import itertools
import math

import numpy as np
import pytest

import fastloss as fl
from fastloss._rows_api import _fdiv

SPECIAL = [0.0, -0.0, 1.5, -2.5, math.inf, -math.inf, math.nan, 1e-300, 5e-324, 1e308, -7e-310]


@pytest.mark.parametrize("a,b", list(itertools.product(SPECIAL, SPECIAL)))
def test_fdiv_is_numpy_float64_division(a, b):
    with np.errstate(all="ignore"):
        want = float(np.float64(a) / np.float64(b))
    got = _fdiv(a, b)
    if want != want:
        assert got != got
    else:
        assert got == want and math.copysign(1, got) == math.copysign(1, want)


def test_mean_over_zero_weights_is_numpys_division():
    x = np.array([[1.0, 2.0], [0.5, -1.0]], np.float32)
    y = np.array([0, 1])
    w = np.array([0.0, 0.0], np.float32)
    assert math.isnan(fl.cross_entropy(x, y, weight=w))                  # 0 / 0
    assert math.isnan(fl.cross_entropy(x, np.array([-100, -100])))      # every label ignored
    wpm = np.array([1.0, -1.0], np.float32)                             # weights summing to 0
    total = fl.cross_entropy(x, y, weight=wpm, reduction="sum")
    with np.errstate(all="ignore"):
        want = float(np.float64(total) / np.float64(0.0))
    assert math.isinf(want) and fl.cross_entropy(x, y, weight=wpm) == want


def test_fast_paths_keep_the_checks():
    x = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="out of bounds"):
        fl.cross_entropy(x, np.array([0, 1, 3, 2]))
    with pytest.raises(ValueError, match="expected target of shape"):
        fl.cross_entropy(x, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="at least one class"):
        fl.cross_entropy(np.zeros((4, 0), np.float32), np.zeros(4, np.int64))
    y = np.array([0, 1, 2, 1, 0, 2, 1, 1])[::2]                      # int64, not contiguous: copied
    v, g = fl.cross_entropy(x, y, return_grad=True)
    assert v == pytest.approx(math.log(3)) and g.dtype == np.float32
    with pytest.raises(ValueError, match="n_threads"):
        fl.cross_entropy(x, y[:4].copy(), n_threads=0)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("red", ["mean", "sum"])
def test_row_fast_path_equals_general_path(dt, red):
    # int64 labels and a fresh gradient take the fast path; int32 labels and out= the general one
    rng = np.random.default_rng(7)
    x = rng.standard_normal((37, 5)).astype(dt)
    y = rng.integers(0, 5, 37)
    y[3] = -100
    yi = np.where(y == -100, 2, y)
    for kw, y in (({}, y), ({"ignore_index": 2}, yi), ({"label_smoothing": 0.1}, y)):
        v, g = fl.cross_entropy(x, y, reduction=red, return_grad=True, **kw)
        out = np.empty_like(x)
        v2, g2 = fl.cross_entropy(x, y.astype(np.int32), reduction=red, return_grad=True, out=out, **kw)
        assert v == v2 and type(v) is type(v2)
        np.testing.assert_array_equal(g, g2)
    with pytest.raises(ValueError, match=r"Target 5 is out of bounds \(target\[4\] = 5"):
        fl.cross_entropy(x, np.where(np.arange(37) == 4, 5, yi), return_grad=True)
    assert math.isnan(fl.cross_entropy(x, np.full(37, -100), reduction=red, return_grad=True)[0]) == (red == "mean")


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_row_fast_path_divides_by_zero_as_the_general_path(dt):
    # every label ignored, or class weights summing to 0 (with a zero or a
    # nonzero total): the value's bits, NaN's sign included, are the general
    # path's (int32 labels take it); a C 0.0 / 0.0 gave -NaN on the fast path
    # (found by tests/fuzz/harness.py, cross_entropy torch seed 998)
    x = np.array([[1.0, 2.0, 0.5], [0.5, -1.0, 3.0], [0.0, 0.0, 0.0]], dt)
    cases = [(np.full(3, -100), {}), (np.array([0, 1, 2]), {"weight": np.zeros(3, dt)}),
             (np.array([0, 1, 2]), {"weight": np.array([1.0, -1.0, 0.0], dt)})]
    for y, kw in cases:
        v, g = fl.cross_entropy(x, y, return_grad=True, **kw)
        v2, g2 = fl.cross_entropy(x, y.astype(np.int32), return_grad=True, **kw)
        assert (v == v2 or (v != v and v2 != v2)) and math.copysign(1, v) == math.copysign(1, v2), (kw, v, v2)
        np.testing.assert_array_equal(g, g2)
        np.testing.assert_array_equal(np.signbit(g), np.signbit(g2))


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("red", ["mean", "sum"])
def test_pointwise_fast_path_equals_general_path(dt, red):
    rng = np.random.default_rng(8)
    x = rng.standard_normal(1001).astype(dt)
    t = rng.standard_normal(1001).astype(dt)
    for name in ("mse_loss", "huber_loss", "binary_cross_entropy_with_logits"):
        f = getattr(fl, name)
        tt = (t > 0).astype(dt) if "logits" in name else t
        v, g = f(x, tt, reduction=red, return_grad=True)
        v2, g2 = f(x, tt, reduction=red, return_grad=True, out=np.empty_like(x))
        assert v == v2 and type(v) is type(v2)
        np.testing.assert_array_equal(g, g2)
    with pytest.raises(ValueError, match="binary_cross_entropy"):
        fl.binary_cross_entropy(x, t, return_grad=True)      # outside [0, 1]: on_bad's message


def _misaligned(shape, dt):
    b = np.zeros(int(np.prod(shape)) * np.dtype(dt).itemsize + 1, np.uint8)
    return np.frombuffer(b, dt, count=int(np.prod(shape)), offset=1).reshape(shape)


class _Sub(np.ndarray):
    pass


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("red", ["mean", "sum"])
@pytest.mark.parametrize("which", ["cross_entropy", "mse_loss"])
def test_out_fast_path_equals_the_default_call(dt, red, which):
    # out= buffers take the C-checked fast path (_rows.grad_fast, _pointwise.grad_fast): the same
    # value and gradient bits as a fresh gradient, written into the buffer given
    rng = np.random.default_rng(11)
    x = rng.standard_normal((53, 7)).astype(dt)
    y = rng.integers(0, 7, 53) if which == "cross_entropy" else rng.standard_normal((53, 7)).astype(dt)
    f = getattr(fl, which)
    v, g = f(x, y, reduction=red, return_grad=True)
    out = np.full_like(x, np.nan)
    v2, g2 = f(x, y, reduction=red, return_grad=True, out=out)
    assert g2 is out and v == v2 and type(v) is type(v2)
    np.testing.assert_array_equal(g, out)


@pytest.mark.parametrize("which", ["cross_entropy", "mse_loss"])
def test_out_fast_path_keeps_the_checks(which):
    x = np.random.default_rng(12).standard_normal((6, 4)).astype(np.float32)
    y = np.array([0, 1, 2, 3, 0, 1]) if which == "cross_entropy" else x * 0.5
    f = getattr(fl, which)
    ro = np.empty_like(x)
    ro.flags.writeable = False
    cases = [
        (np.empty_like(x, dtype=np.float64), "must have dtype float32"),
        (np.empty((6, 5), np.float32), "must have shape"),
        (np.empty((4, 6), np.float32).T, "must be C-contiguous"),
        (_misaligned(x.shape, np.float32), "must be aligned"),
        (ro, "must be writeable"),
        (x, "must not share memory"),
        (np.empty_like(x).view(_Sub), "must be a numpy.ndarray"),
        ([[0.0] * 4] * 6, "must be a numpy.ndarray"),
    ]
    if which == "mse_loss":
        cases.append((y, "must not share memory"))
    for out, msg in cases:
        with pytest.raises(ValueError, match=msg):
            f(x, y, return_grad=True, out=out)
    if which == "cross_entropy":
        out = np.full_like(x, 7.0)
        with pytest.raises(ValueError, match=r"Target 4 is out of bounds \(target\[2\] = 4"):
            f(x, np.array([0, 1, 4, 3, 0, 1]), return_grad=True, out=out)
        assert (out == 7.0).all()   # a bad label is found before anything is written
