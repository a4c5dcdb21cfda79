"""The row losses equal PyTorch (2.13) where PyTorch has them.

``F.cross_entropy`` in every option combination -- class weights,
ignore_index, label_smoothing (including together with ignore_index and
weight, which PyTorch once got wrong: pytorch#73205), integer and
probability targets, the three reductions, shapes (C,), (N, C), (N, C, L)
and (N, C, H, W) -- then ``F.nll_loss``, ``F.multi_margin_loss`` and
``F.multilabel_soft_margin_loss``.  Values and gradients (autograd's, of
the sum for reduction="none"); the diagonal Hessian and the
Hessian-vector product against double backward; the focal and Poly-1
losses against their published formulas written in torch; extreme logits.

Tolerances: float64 1e-12 relative to the largest magnitude compared,
float32 2e-5 (PyTorch computes float32 in float too, in another order).
"""
import itertools
import zlib

import numpy as np
import pytest

import fastloss as fl

torch = pytest.importorskip("torch")
F = torch.nn.functional

pytestmark = pytest.mark.torch

F32, F64 = np.float32, np.float64
RTOL = {F32: 2e-5, F64: 1e-12}
REDUCTIONS = ["mean", "sum", "none"]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def close(a, b, dt, what=""):
    a = np.asarray(a, dtype=F64)
    b = np.asarray(b, dtype=F64)
    fin = np.isfinite(b)
    scale = float(np.max(np.abs(b[fin]))) if fin.any() else 1.0
    np.testing.assert_allclose(a, b, rtol=RTOL[dt], atol=RTOL[dt] * max(scale, 1e-30), equal_nan=True,
                               err_msg=what)


def torch_value_grad(fn, x, *args, reduction="mean", **kw):
    xt = torch.tensor(x, requires_grad=True)
    out = fn(xt, *args, reduction=reduction, **kw)
    out.sum().backward()
    return out.detach().numpy(), xt.grad.numpy()


def items_of(shape):
    return () if len(shape) == 1 else (shape[0],) + tuple(shape[2:])


def labels(rng, shape, C, ignore_index=-100):
    y = rng.integers(0, C, size=items_of(shape))
    if y.ndim and y.size > 2:
        y.reshape(-1)[rng.uniform(size=y.size) < 0.25] = ignore_index
    return y


def probs(rng, shape, C):
    it = items_of(shape)
    t = rng.dirichlet(np.ones(C), size=int(np.prod(it)) if it else 1)
    t[::3] = np.eye(C)[rng.integers(0, C, t[::3].shape[0])]
    return t.reshape(C) if not it else np.moveaxis(t.reshape(it + (C,)), -1, 1)


SHAPES = [(5,), (8, 5), (4, 5, 7), (2, 5, 3, 4)]


# ------------------------------------------------------------------ cross_entropy

CE_GRID = [
    (shape, weighted, ii, ls, soft)
    for shape, weighted, ii, ls, soft in itertools.product(SHAPES, [False, True], [-100, 1], [0.0, 0.1, 1.0],
                                                           [False, True])
    if not (soft and ii != -100)
]


@pytest.mark.parametrize("shape,weighted,ignore_index,ls,soft", CE_GRID,
                         ids=[f"{s}-w{int(w)}-ii{i}-ls{l}-{'soft' if so else 'lab'}" for s, w, i, l, so in CE_GRID])
def test_cross_entropy(shape, weighted, ignore_index, ls, soft):
    rng = np.random.default_rng(zlib.crc32(repr((shape, weighted, ignore_index, ls, soft)).encode()))
    C = shape[0] if len(shape) == 1 else shape[1]
    x64 = rng.normal(size=shape) * 2
    t64 = probs(rng, shape, C) if soft else labels(rng, shape, C, ignore_index)
    w64 = rng.uniform(0.2, 2.0, C) if weighted else None
    for dt in (F32, F64):
        x = x64.astype(dt)
        t = t64.astype(dt) if soft else t64
        w = None if w64 is None else w64.astype(dt)
        tt = torch.tensor(t)
        wt = None if w is None else torch.tensor(w)
        for red in REDUCTIONS:
            v, g = fl.cross_entropy(x, t, weight=w, ignore_index=ignore_index, label_smoothing=ls, reduction=red,
                                    return_grad=True)
            vt, gt = torch_value_grad(F.cross_entropy, x, tt, weight=wt, ignore_index=ignore_index,
                                      label_smoothing=ls, reduction=red)
            close(v, vt, dt, f"value {dt.__name__} {red}")
            close(g, gt, dt, f"grad {dt.__name__} {red}")


def test_label_smoothing_with_ignore_index_and_weight_pytorch_73205():
    """The weighted mean with smoothing divides both terms by the summed weights of the
    non-ignored targets; PyTorch < 1.12 divided the smoothing term differently."""
    rng = np.random.default_rng(73205)
    x = rng.normal(size=(7, 4))
    y = np.array([0, 3, -100, 2, 2, -100, 1])
    w = np.array([0.3, 1.0, 2.5, 0.7])
    eps = 0.2
    keep = y != -100
    lp = x - np.log(np.exp(x).sum(1, keepdims=True))
    nll = -(w[y[keep]] * lp[keep, y[keep]]).sum()
    smooth = -(lp[keep] * w).sum()
    want = ((1 - eps) * nll + eps / 4 * smooth) / w[y[keep]].sum()
    got = fl.cross_entropy(x, y, weight=w, ignore_index=-100, label_smoothing=eps)
    assert got == pytest.approx(want, rel=1e-13)
    vt = F.cross_entropy(torch.tensor(x), torch.tensor(y), weight=torch.tensor(w), label_smoothing=eps)
    assert got == pytest.approx(vt.item(), rel=1e-13)


@pytest.mark.parametrize("dt", [F32, F64], ids=["f32", "f64"])
def test_cross_entropy_uint8_and_int32_labels_like_torch(dt):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 5, 5)).astype(dt)
    y = rng.integers(0, 6, (2, 5, 5))
    y[0, :2] = 255
    want = F.cross_entropy(torch.tensor(x), torch.tensor(y), ignore_index=255).item()
    for ldt in (np.uint8, np.int32, np.int64):
        close(fl.cross_entropy(x, y.astype(ldt), ignore_index=255), want, dt)


@pytest.mark.parametrize("dt", [F32, F64], ids=["f32", "f64"])
def test_cross_entropy_extremes(dt):
    x = np.array([[1e4, -1e4, 0.0, 3.0], [-1e4, 1e4, -np.inf, 0.0], [2.0, -np.inf, 0.5, -np.inf]], dt)
    y = np.array([0, 0, 2])
    for red in REDUCTIONS:
        v, g = fl.cross_entropy(x, y, reduction=red, return_grad=True)
        vt, gt = torch_value_grad(F.cross_entropy, x, torch.tensor(y), reduction=red)
        close(v, vt, dt, red)
        close(g, gt, dt, red)
    # soft targets with exact zeros where the logit is finite
    t = np.array([[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.0, 0.5], [0.5, 0.0, 0.5, 0.0]], dt)
    xf = np.where(np.isinf(x), dt(-50.0), x)
    v, g = fl.cross_entropy(xf, t, reduction="none", return_grad=True)
    vt, gt = torch_value_grad(F.cross_entropy, xf, torch.tensor(t), reduction="none")
    close(v, vt, dt)
    close(g, gt, dt)


def test_cross_entropy_hessian_and_hvp_equal_double_backward():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 4, 5)) * 2
    y = np.array([[0, 3, 1, -100, 2], [1, 1, 0, 3, 2], [2, -100, 3, 0, 1]])
    w = rng.uniform(0.3, 2, 4)
    v = rng.normal(size=x.shape)
    xt = torch.tensor(x, requires_grad=True)
    loss = F.cross_entropy(xt, torch.tensor(y), weight=torch.tensor(w), label_smoothing=0.15)
    (g,) = torch.autograd.grad(loss, xt, create_graph=True)
    (hv,) = torch.autograd.grad((g * torch.tensor(v)).sum(), xt, retain_graph=True)
    kw = dict(weight=w, label_smoothing=0.15)
    np.testing.assert_allclose(fl.cross_entropy_hvp(x, y, v, **kw), hv.numpy(), rtol=1e-12, atol=1e-14)
    # the diagonal, one class at a time
    h = fl.CrossEntropyLoss(**kw).grad_hess(x, y)[1]
    for c in range(4):
        e = torch.zeros_like(xt)
        e[:, c] = 1
        (hc,) = torch.autograd.grad((g * e).sum(), xt, retain_graph=True)
        np.testing.assert_allclose(h[:, c], hc.numpy()[:, c], rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------ nll_loss

@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [-100, 2])
def test_nll_loss(shape, weighted, ignore_index):
    rng = np.random.default_rng(5)
    C = shape[0] if len(shape) == 1 else shape[1]
    ax = 0 if len(shape) == 1 else 1
    x64 = rng.normal(size=shape)
    x64 = x64 - np.log(np.exp(x64).sum(axis=ax, keepdims=True))
    y = labels(rng, shape, C, ignore_index)
    w64 = rng.uniform(0.2, 2, C) if weighted else None
    for dt in (F32, F64):
        x = x64.astype(dt)
        w = None if w64 is None else w64.astype(dt)
        for red in REDUCTIONS:
            v, g = fl.nll_loss(x, y, weight=w, ignore_index=ignore_index, reduction=red, return_grad=True)
            vt, gt = torch_value_grad(F.nll_loss, x, torch.tensor(y), weight=None if w is None else torch.tensor(w),
                                      ignore_index=ignore_index, reduction=red)
            close(v, vt, dt, red)
            close(g, gt, dt, red)


# ------------------------------------------------------------------ multi_margin_loss

@pytest.mark.parametrize("shape", [(6,), (9, 6)], ids=str)
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("margin", [1.0, 0.4, -0.2])
@pytest.mark.parametrize("weighted", [False, True])
def test_multi_margin_loss(shape, p, margin, weighted):
    rng = np.random.default_rng(9)
    C = shape[-1]
    x64 = rng.normal(size=shape)
    y = rng.integers(0, C, size=shape[:-1])
    w64 = rng.uniform(0.2, 2, C) if weighted else None
    for dt in (F32, F64):
        x = x64.astype(dt)
        w = None if w64 is None else w64.astype(dt)
        for red in REDUCTIONS:
            v, g = fl.multi_margin_loss(x, y, p, margin, weight=w, reduction=red, return_grad=True)
            vt, gt = torch_value_grad(F.multi_margin_loss, x, torch.tensor(y), p=p, margin=margin,
                                      weight=None if w is None else torch.tensor(w), reduction=red)
            close(v, vt, dt, red)
            close(g, gt, dt, red)


# ------------------------------------------------------------------ multilabel_soft_margin_loss

@pytest.mark.parametrize("shape", [(7, 5), (1, 3), (6, 40)], ids=str)
@pytest.mark.parametrize("weighted", [False, True])
def test_multilabel_soft_margin_loss(shape, weighted):
    rng = np.random.default_rng(4)
    C = shape[-1]
    x64 = rng.normal(size=shape) * 3
    y64 = (rng.uniform(size=shape) < 0.4).astype(F64)
    w64 = rng.uniform(0.2, 2, C) if weighted else None
    for dt in (F32, F64):
        x, y = x64.astype(dt), y64.astype(dt)
        w = None if w64 is None else w64.astype(dt)
        for red in REDUCTIONS:
            v, g = fl.multilabel_soft_margin_loss(x, y, weight=w, reduction=red, return_grad=True)
            vt, gt = torch_value_grad(F.multilabel_soft_margin_loss, x, torch.tensor(y),
                                      weight=None if w is None else torch.tensor(w), reduction=red)
            close(v, vt, dt, red)
            close(g, gt, dt, red)


# ------------------------------------------------------------------ published formulas in torch

def torch_softmax_focal(x, y, alpha, gamma, ignore_index=-100):
    """-alpha_y (1 - p_y)^gamma log p_y, mean over the targets that are not ignored."""
    logp = F.log_softmax(x, dim=1)
    keep = y != ignore_index
    yk = torch.where(keep, y, torch.zeros_like(y))
    lpt = logp.gather(1, yk.unsqueeze(1)).squeeze(1)
    a = torch.ones_like(lpt) if alpha is None else torch.as_tensor(alpha, dtype=x.dtype)[yk] \
        if np.ndim(alpha) else torch.full_like(lpt, alpha)
    loss = -a * (1 - lpt.exp()) ** gamma * lpt
    return torch.where(keep, loss, torch.zeros_like(loss)).sum() / keep.sum()


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 3.0])
@pytest.mark.parametrize("alpha", [None, 0.25, "w"])
@pytest.mark.parametrize("shape", [(9, 5), (2, 5, 3, 4)], ids=str)
def test_softmax_focal_loss_formula(gamma, alpha, shape):
    rng = np.random.default_rng(6)
    C = shape[1]
    x = rng.normal(size=shape) * 2
    y = labels(rng, shape, C)
    a = rng.uniform(0.2, 1, C) if alpha == "w" else alpha
    xt = torch.tensor(x, requires_grad=True)
    lt = torch_softmax_focal(xt, torch.tensor(y), a, gamma)
    (gt,) = torch.autograd.grad(lt, xt, create_graph=True)
    v, g = fl.softmax_focal_loss(x, y, alpha=a, gamma=gamma, return_grad=True)
    assert v == pytest.approx(lt.item(), rel=1e-12)
    np.testing.assert_allclose(g, gt.detach().numpy(), rtol=1e-11, atol=1e-14)
    # the diagonal Hessian, one class at a time (double backward)
    h = fl.SoftmaxFocalLoss(alpha=a, gamma=gamma).grad_hess(x, y)[1]
    for c in range(C):
        e = torch.zeros_like(xt)
        e[:, c] = 1
        (hc,) = torch.autograd.grad((gt * e).sum(), xt, retain_graph=True)
        np.testing.assert_allclose(h[:, c], hc.numpy()[:, c], rtol=1e-9, atol=1e-12)


def test_poly1_cross_entropy_formula():
    """optax.poly_loss_cross_entropy: CE + epsilon * sum(labels * (1 - softmax)), per row."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(8, 6)) * 2
    t = probs(rng, (8, 6), 6)
    xt = torch.tensor(x, requires_grad=True)
    tt = torch.tensor(t)
    lt = (F.cross_entropy(xt, tt, reduction="none") + 2.0 * (tt * (1 - xt.softmax(1))).sum(1)).mean()
    (gt,) = torch.autograd.grad(lt, xt)
    v, g = fl.poly1_cross_entropy(x, t, epsilon=2.0, return_grad=True)
    assert v == pytest.approx(lt.item(), rel=1e-13)
    np.testing.assert_allclose(g, gt.numpy(), rtol=1e-12, atol=1e-15)
    y = rng.integers(0, 6, 8)
    xt = torch.tensor(x, requires_grad=True)
    pt = xt.softmax(1).gather(1, torch.tensor(y)[:, None]).squeeze(1)
    lt = (F.cross_entropy(xt, torch.tensor(y), reduction="none") + 1.0 * (1 - pt)).sum()
    (gt,) = torch.autograd.grad(lt, xt)
    v, g = fl.poly1_cross_entropy(x, y, epsilon=1.0, reduction="sum", return_grad=True)
    assert v == pytest.approx(lt.item(), rel=1e-13)
    np.testing.assert_allclose(g, gt.numpy(), rtol=1e-12, atol=1e-15)
