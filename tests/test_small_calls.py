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
