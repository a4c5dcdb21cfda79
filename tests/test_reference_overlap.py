"""The NumPy reference of the overlap losses against central finite
differences (away from the kinks: no p = t ties, no box edges at a tie),
and the Lovasz gradients against the paper's lovasz_grad construction
(the Lovasz losses are piecewise linear in the errors: their gradient is a
subgradient, so finite differences apply only where no two errors tie;
the construction is checked directly).
"""
import numpy as np
import pytest

import fastloss as fl
import fastloss.reference as R


def fd(f, x, h=1e-6):
    g = np.zeros_like(x)
    flat, gf = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = f(x)
        flat[i] = old - h
        dn = f(x)
        flat[i] = old
        gf[i] = (up - dn) / (2 * h)
    return g


def total(v):
    return float(np.sum(v))


CASES = [
    ("dice mc", R.dice_loss, {"mode": "multiclass", "smooth": 0.5}),
    ("dice mc log classes", R.dice_loss, {"mode": "multiclass", "log_loss": True, "classes": [0, 2],
                                          "weight": [1.0, 3.0, 2.0]}),
    ("jaccard ml", R.jaccard_loss, {"mode": "multilabel"}),
    ("tversky bin focal", R.tversky_loss, {"mode": "binary", "alpha": 0.2, "beta": 0.8, "gamma": 1.7}),
    ("tversky mc per image", R.tversky_loss, {"mode": "multiclass", "alpha": 0.7, "beta": 0.3, "gamma": 0.75,
                                              "per_image": True, "reduction": "none"}),
    ("bce dice", R.bce_dice_loss, {"mode": "multilabel", "bce_weight": 0.7, "smooth": 1.0}),
    ("ce dice", R.ce_dice_loss, {"ce_weight": 0.4, "per_image": True, "reduction": "sum"}),
]


@pytest.mark.parametrize("name,ref,kw", CASES, ids=[c[0] for c in CASES])
def test_reference_gradient_is_finite_difference(name, ref, kw):
    rng = np.random.default_rng(7)
    kw = dict(kw)
    mode = kw.get("mode", "multiclass")
    if mode == "multiclass":
        x = rng.standard_normal((2, 3, 4, 3))
        t = rng.integers(0, 3, (2, 4, 3))
    else:
        x = rng.standard_normal((2, 3, 4, 3))
        t = rng.random(x.shape) if "bce" in name else (rng.random(x.shape) > 0.5).astype(float)
        if mode == "binary":
            x, t = x[:, 0], t[:, 0]
    v, g = ref(x, t, **kw)
    num = fd(lambda z: total(ref(z, t, **kw)[0]), x.copy())
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)


def test_reference_from_probabilities_is_finite_difference():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.95, (2, 3, 5))
    t = rng.integers(0, 3, (2, 5))
    v, g = R.dice_loss(p, t, "multiclass", from_logits=False)
    num = fd(lambda z: R.dice_loss(z, t, "multiclass", from_logits=False)[0], p.copy())
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", ["box_iou_loss", "generalized_box_iou_loss", "distance_box_iou_loss"])
def test_reference_box_gradient_is_finite_difference(name):
    rng = np.random.default_rng(1)
    b1 = rng.uniform(0, 4, (6, 4))
    b1[:, 2:] += b1[:, :2] + 0.5
    b2 = b1 + rng.normal(0, 0.8, (6, 4))
    b2[:, 2:] = np.maximum(b2[:, 2:], b2[:, :2] + 0.3)
    b2[3] += 10  # disjoint
    ref = getattr(R, name)
    v, g1, g2 = ref(b1, b2, "sum")
    n1 = fd(lambda z: ref(z, b2, "sum")[0], b1.copy())
    n2 = fd(lambda z: ref(b1, z, "sum")[0], b2.copy())
    np.testing.assert_allclose(g1, n1, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(g2, n2, rtol=1e-6, atol=1e-8)


def test_reference_ciou_gradient_holds_alpha_constant():
    """torchvision's CIoU differentiates with alpha fixed: finite differences
    of the loss with alpha frozen at its value match the gradient."""
    rng = np.random.default_rng(2)
    b1 = rng.uniform(0, 4, (5, 4))
    b1[:, 2:] += b1[:, :2] + 0.5
    b2 = b1 + rng.normal(0, 0.8, (5, 4))
    b2[:, 2:] = np.maximum(b2[:, 2:], b2[:, :2] + 0.3)

    def parts(a, b):
        d, _, _ = R.distance_box_iou_loss(a, b, "none", 1e-7)
        w1, h1 = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
        w2, h2 = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        v = 4 / np.pi ** 2 * (np.arctan(w2 / h2) - np.arctan(w1 / h1)) ** 2
        return d, v

    d0, v0 = parts(b1, b2)
    iou0 = 1 - R.box_iou_loss(b1, b2, "none", 1e-7)[0]
    alpha = v0 / (1 - iou0 + v0 + 1e-7)
    val, g1, g2 = R.complete_box_iou_loss(b1, b2, "sum")
    assert val == pytest.approx(float(np.sum(d0 + alpha * v0)), rel=1e-12)
    frozen = lambda a, b: float(np.sum(parts(a, b)[0] + alpha * parts(a, b)[1]))  # noqa: E731
    np.testing.assert_allclose(g1, fd(lambda z: frozen(z, b2), b1.copy()), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(g2, fd(lambda z: frozen(b1, z), b2.copy()), rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------------ Lovasz

def test_lovasz_grad_is_algorithm_1():
    # Berman et al.'s Algorithm 1 on a small case, by hand: gt sorted = 1, 0, 1, 0
    # J_i = 1 - (gts - cumfg) / (gts + cumbg): 1 - 1/2, 1 - 1/3, 1 - 0/3, 1 - 0/4
    w = R.lovasz_grad([1, 0, 1, 0])
    J = np.array([0.5, 2 / 3, 1.0, 1.0])
    np.testing.assert_allclose(w, np.diff(np.concatenate([[0.0], J])))
    assert w.sum() == pytest.approx(1.0)  # the Jaccard loss of all errors


def test_lovasz_hinge_kernel_gradient_is_the_construction():
    """The kernel's gradient: at the pixel of the r-th largest error, w_r
    de/dx with w = lovasz_grad of the sorted labels (relu' = [e > 0])."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal(40) * 2
    t = (rng.random(40) > 0.4).astype(float)
    v, g = fl.lovasz_hinge_loss(x[None], t[None], return_grad=True)
    s = 2 * t - 1
    e = 1 - x * s
    order = np.argsort(-e, kind="stable")
    w = R.lovasz_grad(t[order])
    expect = np.zeros(40)
    expect[order] = w * (e[order] > 0) * -s[order]
    np.testing.assert_allclose(g[0], expect, rtol=1e-14, atol=1e-15)
    assert v == pytest.approx(float(np.dot(np.maximum(e[order], 0), w)), rel=1e-14)
    # piecewise linear: away from ties, finite differences agree
    num = fd(lambda z: fl.lovasz_hinge_loss(z[None], t[None]), x.copy(), h=1e-7)
    np.testing.assert_allclose(g[0], num, rtol=1e-5, atol=1e-7)


def test_lovasz_softmax_kernel_gradient_is_the_construction():
    rng = np.random.default_rng(12)
    p = rng.dirichlet(np.ones(3), size=30).T[None]  # (1, 3, 30) probabilities
    y = rng.integers(0, 3, (1, 30))
    v, g = fl.lovasz_softmax_loss(p, y, from_logits=False, return_grad=True)
    present = [c for c in range(3) if (y == c).any()]
    expect = np.zeros_like(p)
    vals = []
    for c in present:
        fg = (y[0] == c).astype(float)
        err = np.abs(fg - p[0, c])
        order = np.argsort(-err, kind="stable")
        w = R.lovasz_grad(fg[order])
        vals.append(np.dot(err[order], w))
        expect[0, c, order] = w * np.sign(p[0, c] - fg)[order] / len(present)
    assert v == pytest.approx(float(np.mean(vals)), rel=1e-14)
    np.testing.assert_allclose(g, expect, rtol=1e-13, atol=1e-16)


def test_lovasz_ties_keep_the_pixel_order():
    # equal errors: the stable order (pixel order) decides the subgradient
    x = np.zeros((1, 6))
    t = np.array([[1.0, 0, 1, 0, 1, 0]])
    v, g = fl.lovasz_hinge_loss(x, t, return_grad=True)
    w = R.lovasz_grad(t[0])
    np.testing.assert_allclose(g[0], w * -(2 * t[0] - 1))
    assert v == pytest.approx(1.0)
