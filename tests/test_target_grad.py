"""The gradient with respect to ``target`` (``return_grad=("input", "target")``)
in the NumPy API, without PyTorch.

For every loss that declares it (``_optional_grad_args``): it equals
central finite differences of the value in float64 (every reduction,
with weights), float32 agrees with float64 to float32 precision, the value
and the input's gradient are the same bits as without it, and it is
bit-identical for any thread count.  (Against PyTorch's own autograd and
gradcheck: tests/test_torch_dropin.py.)
"""
import numpy as np
import pytest

import fastloss as fl
from fastloss import _pointwise, _rows


def _softmax(z, axis):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _data(name, rng, shape=(6, 5)):
    """(input, target, kwargs) away from kinks and domain edges."""
    x = rng.normal(0, 1.5, shape)
    if name in ("mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "log_cosh_loss", "quantile_loss",
                "gaussian_nll_loss"):
        t = x - rng.uniform(0.3, 1.5, shape) * rng.choice([-1, 1], shape)
        kw = {"var": rng.uniform(0.5, 2, shape)} if name == "gaussian_nll_loss" else {}
        return x, t, kw
    if name == "poisson_nll_loss":
        return x, rng.uniform(0.2, 4, shape), {"full": True}
    if name == "binary_cross_entropy":
        return rng.uniform(0.05, 0.95, shape), rng.uniform(0, 1, shape), {}
    if name == "binary_cross_entropy_with_logits":
        return x, rng.uniform(0, 1, shape), {"pos_weight": rng.uniform(0.5, 2, shape[-1])}
    if name == "kl_div":
        return np.log(_softmax(x, 1)), _softmax(rng.normal(size=shape), 1), {}
    if name in ("cross_entropy", "poly1_cross_entropy"):
        kw = {"label_smoothing": 0.1, "weight": rng.uniform(0.5, 2, shape[1])}
        return x, _softmax(rng.normal(size=shape), 1), kw
    if name == "multilabel_soft_margin_loss":
        return x, rng.uniform(0, 1, shape), {"weight": rng.uniform(0.5, 2, shape[1])}
    raise AssertionError(name)


NAMES = [n for n in fl.__all__ if n[0].islower() and "target" in getattr(getattr(fl, n), "_optional_grad_args", ())]


def test_the_losses_with_a_target_gradient():
    assert set(NAMES) == {"mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "log_cosh_loss", "quantile_loss",
                          "poisson_nll_loss", "gaussian_nll_loss", "binary_cross_entropy",
                          "binary_cross_entropy_with_logits", "kl_div", "cross_entropy", "poly1_cross_entropy",
                          "multilabel_soft_margin_loss"}


def _call(name, x, t, kw, **more):
    fn = getattr(fl, name)
    kw = dict(kw)
    if name == "gaussian_nll_loss":
        return fn(x, t, kw.pop("var"), **kw, **more)
    return fn(x, t, **kw, **more)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", NAMES)
def test_target_gradient_matches_finite_differences(name, reduction):
    rng = np.random.default_rng(sum(map(ord, name + reduction)))
    x, t, kw = _data(name, rng)
    v, gx, gt = _call(name, x, t, kw, reduction=reduction, return_grad=("input", "target"))
    v0, gx0 = _call(name, x, t, kw, reduction=reduction, return_grad=True)[:2]
    np.testing.assert_array_equal(v, v0)
    np.testing.assert_array_equal(gx, gx0)

    def total(tt):
        return float(np.sum(_call(name, x, tt, kw, reduction=reduction)))

    h = 1e-6
    fd = np.empty_like(t)
    for i in np.ndindex(t.shape):
        tp, tm = t.copy(), t.copy()
        tp[i] += h
        tm[i] -= h
        fd[i] = (total(tp) - total(tm)) / (2 * h)
    np.testing.assert_allclose(gt, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_target_gradient_float32_and_threads(name):
    rng = np.random.default_rng(7)
    x, t, kw = _data(name, rng, (300, 70))
    kw32 = {k: (v.astype(np.float32) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    g64 = _call(name, x, t, kw, return_grad=("target",))[1]
    x32, t32 = x.astype(np.float32), t.astype(np.float32)
    old, old_rows = _pointwise.set_parallel_threshold(0), _rows.set_parallel_threshold(0)
    try:
        one = _call(name, x32, t32, kw32, return_grad=("input", "target"), n_threads=1)
        two = _call(name, x32, t32, kw32, return_grad=("input", "target"), n_threads=2)
    finally:
        _pointwise.set_parallel_threshold(old)
        _rows.set_parallel_threshold(old_rows)
    assert one[2].dtype == np.float32
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    scale = np.abs(g64).max()
    np.testing.assert_allclose(one[2], g64, rtol=2e-4, atol=2e-5 * scale)
