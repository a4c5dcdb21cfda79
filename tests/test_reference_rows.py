"""The row-loss reference is right: its gradient equals fourth-order central
finite differences of its value, its diagonal Hessian equals finite
differences of its gradient, and the cross-entropy Hessian-vector product
equals the directional derivative of the gradient.

Float64 throughout, small shapes (the reference loops over rows), every
loss in its main option combinations: weights, ignore_index, label
smoothing, soft targets, the three reductions, spatial inputs.  Inputs of
the margin loss are kept away from its kinks.
"""
import zlib

import numpy as np
import pytest

from fastloss.reference import rows as R
from _numdiff import central_diff4  # tests/_numdiff.py (pytest puts tests/ on sys.path)

H = 1e-3


def fd_grad(f, x, h=H):
    """Fourth-order central differences of the scalar f at x."""
    return central_diff4(f, x, h)


def fd_diag(grad, x, h=H):
    """d grad_i / d x_i by fourth-order central differences."""
    d = np.zeros_like(x)
    flat, df = x.reshape(-1), d.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        vals = []
        for k in (2, 1, -1, -2):
            flat[i] = old + k * h
            vals.append(grad(x).reshape(-1)[i])
        flat[i] = old
        df[i] = (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * h)
    return d


def fd_dir(grad, x, v, h=H):
    """d grad(x + s v) / ds at s = 0."""
    vals = [grad(x + k * h * v) for k in (2, 1, -1, -2)]
    return (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * h)


def scalar(fn, red):
    """The value as a scalar (sum of the per-item losses for reduction="none")."""
    def f(x):
        v = fn(x)[0]
        return float(np.sum(v)) if red == "none" else v
    return f


SHAPES = [(5,), (4, 5), (2, 3, 2, 2)]


def _labels(rng, shape, C, ignore=True):
    items = () if len(shape) == 1 else (shape[0],) + shape[2:]
    y = rng.integers(0, C, size=items)
    if ignore and y.ndim and y.size > 2:
        y.reshape(-1)[1] = -100
    return y


def _soft(rng, shape, C):
    t = rng.dirichlet(np.ones(C), size=int(np.prod(shape)) // C)
    if len(shape) == 1:
        return t.reshape(shape)
    items = (shape[0],) + shape[2:]
    t[::3] = 0.0
    t[::3, 0] = 1.0                                  # a one-hot row among the soft ones
    return np.moveaxis(t.reshape(items + (C,)), -1, 1)


# ------------------------------------------------------------------ cross-entropy and Poly-1

CE_CASES = [
    dict(),
    dict(weight="w"),
    dict(label_smoothing=0.2),
    dict(weight="w", label_smoothing=0.35),
]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("opts", CE_CASES, ids=lambda o: "-".join(f"{k}" for k in o) or "plain")
@pytest.mark.parametrize("red", ["mean", "sum", "none"])
@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft"])
def test_cross_entropy_grad_hess_hvp(shape, opts, red, soft):
    rng = np.random.default_rng(zlib.crc32(repr((shape, red, soft)).encode()))
    C = shape[0] if len(shape) == 1 else shape[1]
    x = rng.normal(size=shape) * 2
    t = _soft(rng, shape, C) if soft else _labels(rng, shape, C)
    kw = dict(opts, reduction=red)
    if kw.get("weight") == "w":
        kw["weight"] = rng.uniform(0.3, 2.0, C)
    f = scalar(lambda z: R.cross_entropy(z, t, **kw), red)
    val, g = R.cross_entropy(x, t, **kw)
    np.testing.assert_allclose(g, fd_grad(f, x.copy()), rtol=1e-8, atol=1e-9)
    grad = lambda z: R.cross_entropy(z, t, **kw)[1]  # noqa: E731
    np.testing.assert_allclose(R.cross_entropy_hess(x, t, **kw), fd_diag(grad, x.copy()), rtol=1e-7, atol=1e-9)
    v = rng.normal(size=shape)
    np.testing.assert_allclose(R.cross_entropy_hvp(x, t, v, **kw), fd_dir(grad, x, v), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("opts", CE_CASES[::3], ids=["plain", "w-ls"])
@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft"])
@pytest.mark.parametrize("epsilon", [1.0, -0.5])
def test_poly1_grad_hess(shape, opts, soft, epsilon):
    rng = np.random.default_rng(7)
    C = shape[0] if len(shape) == 1 else shape[1]
    x = rng.normal(size=shape) * 2
    t = _soft(rng, shape, C) if soft else _labels(rng, shape, C)
    kw = dict(opts, reduction="mean")
    if kw.get("weight") == "w":
        kw["weight"] = rng.uniform(0.3, 2.0, C)
    f = scalar(lambda z: R.poly1_cross_entropy(z, t, epsilon, **kw), "mean")
    np.testing.assert_allclose(R.poly1_cross_entropy(x, t, epsilon, **kw)[1], fd_grad(f, x.copy()),
                               rtol=1e-8, atol=1e-9)
    grad = lambda z: R.poly1_cross_entropy(z, t, epsilon, **kw)[1]  # noqa: E731
    np.testing.assert_allclose(R.poly1_cross_entropy_hess(x, t, epsilon, **kw), fd_diag(grad, x.copy()),
                               rtol=1e-7, atol=1e-9)


def test_poly1_is_ce_plus_epsilon_one_minus_pt():
    """optax: poly_loss_cross_entropy = CE + epsilon * (1 - p_t), per row."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 4))
    y = rng.integers(0, 4, 6)
    p = np.exp(x) / np.exp(x).sum(1, keepdims=True)
    ce = R.cross_entropy(x, y, reduction="none")[0]
    want = ce + 2.0 * (1 - p[np.arange(6), y])
    np.testing.assert_allclose(R.poly1_cross_entropy(x, y, 2.0, reduction="none")[0], want, rtol=1e-13)


# ------------------------------------------------------------------ NLL

@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("red", ["mean", "sum", "none"])
def test_nll_grad(shape, weighted, red):
    rng = np.random.default_rng(11)
    C = shape[0] if len(shape) == 1 else shape[1]
    x = rng.normal(size=shape)
    y = _labels(rng, shape, C)
    kw = dict(weight=rng.uniform(0.3, 2, C) if weighted else None, reduction=red)
    f = scalar(lambda z: R.nll_loss(z, y, **kw), red)
    np.testing.assert_allclose(R.nll_loss(x, y, **kw)[1], fd_grad(f, x.copy()), rtol=1e-8, atol=1e-9)


# ------------------------------------------------------------------ focal

@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 3.5])
@pytest.mark.parametrize("alpha", [None, 0.25, "per-class"])
def test_focal_grad_hess(shape, gamma, alpha):
    rng = np.random.default_rng(5)
    C = shape[0] if len(shape) == 1 else shape[1]
    x = rng.normal(size=shape) * 1.5
    y = _labels(rng, shape, C)
    a = rng.uniform(0.2, 1.0, C) if alpha == "per-class" else alpha
    kw = dict(alpha=a, gamma=gamma, reduction="mean")
    f = scalar(lambda z: R.softmax_focal_loss(z, y, **kw), "mean")
    np.testing.assert_allclose(R.softmax_focal_loss(x, y, **kw)[1], fd_grad(f, x.copy()), rtol=1e-7, atol=1e-9)
    grad = lambda z: R.softmax_focal_loss(z, y, **kw)[1]  # noqa: E731
    np.testing.assert_allclose(R.softmax_focal_loss_hess(x, y, **kw), fd_diag(grad, x.copy()),
                               rtol=1e-6, atol=1e-8)


def test_focal_gamma0_is_cross_entropy():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 4))
    y = rng.integers(0, 4, 5)
    a, b = R.softmax_focal_loss(x, y, gamma=0.0), R.cross_entropy(x, y)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-14)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-13, atol=1e-15)


# ------------------------------------------------------------------ margins

def _away_from_kinks(rng, shape, margin):
    C = shape[-1]
    while True:
        x = rng.normal(size=shape)
        y = rng.integers(0, C, shape[0] if len(shape) == 2 else ())
        xr = x.reshape(-1, C)
        yr = np.atleast_1d(y)
        m = margin - xr[np.arange(len(yr)), yr][:, None] + xr
        m[np.arange(len(yr)), yr] = 1.0
        if np.all(np.abs(m) > 0.05):
            return x, y


@pytest.mark.parametrize("shape", [(5,), (6, 4)], ids=str)
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("margin", [1.0, 0.3])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("red", ["mean", "sum", "none"])
def test_multi_margin_grad_hess(shape, p, margin, weighted, red):
    rng = np.random.default_rng(13)
    x, y = _away_from_kinks(rng, shape, margin)
    kw = dict(p=p, margin=margin, weight=rng.uniform(0.3, 2, shape[-1]) if weighted else None, reduction=red)
    f = scalar(lambda z: R.multi_margin_loss(z, y, **kw), red)
    np.testing.assert_allclose(R.multi_margin_loss(x, y, **kw)[1], fd_grad(f, x.copy(), h=1e-4),
                               rtol=1e-7, atol=1e-9)
    grad = lambda z: R.multi_margin_loss(z, y, **kw)[1]  # noqa: E731
    np.testing.assert_allclose(R.multi_margin_loss_hess(x, y, **kw), fd_diag(grad, x.copy(), h=1e-4),
                               rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("shape", [(5,), (4, 3), (2, 3, 4)], ids=str)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("red", ["mean", "sum", "none"])
def test_multilabel_soft_margin_grad_hess(shape, weighted, red):
    rng = np.random.default_rng(17)
    x = rng.normal(size=shape) * 2
    y = rng.uniform(size=shape)
    y[..., 0] = 1.0
    y[..., -1] = 0.0
    kw = dict(weight=rng.uniform(0.3, 2, shape[-1]) if weighted else None, reduction=red)
    f = scalar(lambda z: R.multilabel_soft_margin_loss(z, y, **kw), red)
    np.testing.assert_allclose(R.multilabel_soft_margin_loss(x, y, **kw)[1], fd_grad(f, x.copy()),
                               rtol=1e-8, atol=1e-10)
    grad = lambda z: R.multilabel_soft_margin_loss(z, y, **kw)[1]  # noqa: E731
    np.testing.assert_allclose(R.multilabel_soft_margin_loss_hess(x, y, **kw), fd_diag(grad, x.copy()),
                               rtol=1e-7, atol=1e-9)


# ------------------------------------------------------------------ reductions

def test_mean_denominators():
    """Weighted CE/NLL mean: summed weights of the non-ignored targets; soft CE and margins: rows;
    focal: count of the non-ignored targets; all ignored: NaN."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 3))
    y = np.array([0, 2, -100, 1, 2])
    w = np.array([0.5, 2.0, 3.0])
    s = R.cross_entropy(x, y, weight=w, reduction="sum")[0]
    assert R.cross_entropy(x, y, weight=w)[0] == pytest.approx(s / (0.5 + 3 + 2 + 3), rel=1e-14)
    s = R.softmax_focal_loss(x, y, alpha=w, reduction="sum")[0]
    assert R.softmax_focal_loss(x, y, alpha=w)[0] == pytest.approx(s / 4, rel=1e-14)
    t = np.full((5, 3), 1 / 3)
    s = R.cross_entropy(x, t, weight=w, reduction="sum")[0]
    assert R.cross_entropy(x, t, weight=w)[0] == pytest.approx(s / 5, rel=1e-14)
    assert np.isnan(R.cross_entropy(x, np.full(5, -100))[0])
