"""Overlap losses against PyTorch.

PyTorch has none of these losses, and neither segmentation_models_pytorch
nor torchvision imports beside torch 2.13 here, so their definitions are
written out below in torch ops, from their source (smp.losses
``soft_tversky_score`` / ``DiceLoss`` / ``JaccardLoss`` / ``TverskyLoss`` /
``LovaszLoss``; torchvision.ops ``_loss_inter_union``,
``generalized_box_iou_loss``, ``_diou_iou_loss``, ``complete_box_iou_loss``),
and PyTorch's autograd of them is the reference gradient.  The cross-
entropy terms are PyTorch's own calls (``F.cross_entropy``,
``F.binary_cross_entropy_with_logits``).  Then ``fastloss.torch``: the
generated modules and functions end to end with autograd, and gradcheck.
"""
import numpy as np
import pytest

import fastloss as fl

torch = pytest.importorskip("torch")
import fastloss.torch as flt  # noqa: E402

F = torch.nn.functional
pytestmark = pytest.mark.torch


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# ------------------------------------------------------------------ smp, in torch ops

def smp_overlap(x, y, mode, alpha, beta, gamma=1.0, classes=None, log_loss=False, from_logits=True, smooth=0.0,
                ignore_index=None, eps=1e-7, class_weights=None):
    """segmentation_models_pytorch's Dice/Jaccard/Tversky forward."""
    p = x
    if from_logits:
        p = x.log_softmax(dim=1).exp() if mode == "multiclass" else F.logsigmoid(x).exp()
    bs = y.shape[0]
    if mode == "binary":
        t, p = y.reshape(bs, 1, -1), p.reshape(bs, 1, -1)
        if ignore_index is not None:
            keep = t != ignore_index
            p, t = p * keep, t * keep
    elif mode == "multiclass":
        C = p.shape[1]
        lab, p = y.reshape(bs, -1), p.reshape(bs, C, -1)
        if ignore_index is not None:
            keep = lab != ignore_index
            p = p * keep.unsqueeze(1)
            t = F.one_hot((lab * keep).long(), C).permute(0, 2, 1) * keep.unsqueeze(1)
        else:
            t = F.one_hot(lab, C).permute(0, 2, 1)
    else:
        C = p.shape[1]
        t, p = y.reshape(bs, C, -1), p.reshape(bs, C, -1)
        if ignore_index is not None:
            keep = t != ignore_index
            p, t = p * keep, t * keep
    t = t.to(p.dtype)
    dims = (0, 2)
    sp, st = p.sum(dims), t.sum(dims)
    l1 = torch.linalg.vector_norm(p - t, ord=1, dim=dims)
    inter = (sp + st - l1) / 2
    score = (inter + smooth) / (inter + alpha * (sp - inter) + beta * (st - inter) + smooth).clamp_min(eps)
    loss = -torch.log(score.clamp_min(eps)) if log_loss else 1.0 - score
    loss = loss * (st > 0).to(loss.dtype)
    w = None if class_weights is None else torch.as_tensor(class_weights, dtype=loss.dtype)
    if classes is not None:
        loss = loss[classes]
        w = None if w is None else w[classes]
    agg = loss.mean() if w is None else (loss * w).sum() / w.sum()
    return agg ** gamma


def _lovasz_weights(fg_sorted):
    gts = fg_sorted.sum()
    inter = gts - fg_sorted.cumsum(0)
    union = gts + (1 - fg_sorted).cumsum(0)
    jac = 1.0 - inter / union
    if len(fg_sorted) > 1:
        jac = torch.cat([jac[:1], jac[1:] - jac[:-1]])
    return jac


def smp_lovasz_hinge(x, y, per_image=False, ignore=None):
    def flat(xs, ys):
        xs, ys = xs.reshape(-1), ys.reshape(-1)
        if ignore is not None:
            keep = ys != ignore
            xs, ys = xs[keep], ys[keep]
        if len(ys) == 0:
            return xs.sum() * 0.0
        err = 1.0 - xs * (2.0 * ys - 1.0)
        err_sorted, perm = torch.sort(err, descending=True)
        return torch.dot(F.relu(err_sorted), _lovasz_weights(ys[perm]))
    if per_image:
        return torch.stack([flat(a, b) for a, b in zip(x, y)]).mean()
    return flat(x, y)


def smp_lovasz_softmax(p, y, classes="present", per_image=False, ignore=None):
    def flat(ps, ys):
        C = ps.shape[0]
        ps = torch.movedim(ps, 0, -1).reshape(-1, C)
        ys = ys.reshape(-1)
        if ignore is not None:
            keep = ys != ignore
            ps, ys = ps[keep], ys[keep]
        if ps.numel() == 0:
            return ps.sum() * 0.0
        out = []
        for c in (range(C) if isinstance(classes, str) else classes):
            fg = (ys == c).to(ps.dtype)
            if classes == "present" and fg.sum() == 0:
                continue
            err = (fg - ps[:, c]).abs()
            err_sorted, perm = torch.sort(err, descending=True)
            out.append(torch.dot(err_sorted, _lovasz_weights(fg[perm])))
        return torch.stack(out).mean() if out else ps.sum() * 0.0
    if per_image:
        return torch.stack([flat(a, b) for a, b in zip(p, y)]).mean()
    return flat(p[0] if p.shape[0] == 1 else torch.movedim(p, 1, 0), y)


# ------------------------------------------------------------------ torchvision, in torch ops

def tv_inter_union(b1, b2):
    x1, y1, x2, y2 = b1.unbind(-1)
    X1, Y1, X2, Y2 = b2.unbind(-1)
    xk1, yk1, xk2, yk2 = torch.max(x1, X1), torch.max(y1, Y1), torch.min(x2, X2), torch.min(y2, Y2)
    inter = torch.zeros_like(x1)
    m = (yk2 > yk1) & (xk2 > xk1)
    inter[m] = (xk2[m] - xk1[m]) * (yk2[m] - yk1[m])
    union = (x2 - x1) * (y2 - y1) + (X2 - X1) * (Y2 - Y1) - inter
    return inter, union


def tv_box_loss(kind, b1, b2, eps=1e-7):
    if kind in ("iou", "giou"):
        inter, union = tv_inter_union(b1, b2)
        iou = inter / (union + eps)
        if kind == "iou":
            return 1 - iou
        x1, y1, x2, y2 = b1.unbind(-1)
        X1, Y1, X2, Y2 = b2.unbind(-1)
        area_c = (torch.max(x2, X2) - torch.min(x1, X1)) * (torch.max(y2, Y2) - torch.min(y1, Y1))
        return 1 - (iou - (area_c - union) / (area_c + eps))

    def diou(e):
        inter, union = tv_inter_union(b1, b2)
        iou = inter / (union + e)
        x1, y1, x2, y2 = b1.unbind(-1)
        X1, Y1, X2, Y2 = b2.unbind(-1)
        diag = (torch.max(x2, X2) - torch.min(x1, X1)) ** 2 + (torch.max(y2, Y2) - torch.min(y1, Y1)) ** 2 + e
        dist = ((x2 + x1) / 2 - (X1 + X2) / 2) ** 2 + ((y2 + y1) / 2 - (Y1 + Y2) / 2) ** 2
        return 1 - iou + dist / diag, iou

    if kind == "diou":
        return diou(eps)[0]
    loss, iou = diou(1e-7)  # torchvision's CIoU: its DIoU at the default eps
    x1, y1, x2, y2 = b1.unbind(-1)
    X1, Y1, X2, Y2 = b2.unbind(-1)
    v = (4 / torch.pi ** 2) * torch.pow(torch.atan((X2 - X1) / (Y2 - Y1)) - torch.atan((x2 - x1) / (y2 - y1)), 2)
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return loss + alpha * v


# ------------------------------------------------------------------ comparisons

def _close(a, b, dtype, what):
    a = np.asarray(a, np.float64)
    b = b.detach().double().numpy() if isinstance(b, torch.Tensor) else np.asarray(b, np.float64)
    rtol, atol = (1e-10, 1e-13) if dtype == np.float64 else (3e-5, 3e-6)
    scale = max(float(np.abs(b).max()) if b.size else 1.0, 1e-30)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol * scale, err_msg=what)


def _seg(mode, dtype, seed=0, ignore=None, soft=False, shape=(3, 4, 6, 5)):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 1.5).astype(dtype)
    if mode == "multiclass":
        y = rng.integers(0, shape[1], (shape[0],) + shape[2:])
        if ignore is not None:
            y[rng.random(y.shape) < 0.2] = ignore
        return x, y
    if mode == "binary":
        x = x[:, :1]
    t = rng.random(x.shape) if soft else (rng.random(x.shape) > 0.5).astype(np.float64)
    if ignore is not None:
        t[rng.random(t.shape) < 0.2] = ignore
    return x, t.astype(dtype)


def _torch_ref(fn, x, t, float_target=True):
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)  # the reference runs in float64
    tt = torch.tensor(t.astype(np.float64)) if float_target else torch.tensor(t)
    v = fn(xt, tt)
    v.backward()
    return v, xt.grad


SMP = {"dice": (fl.dice_loss, 0.5, 0.5, {}), "jaccard": (fl.jaccard_loss, 1.0, 1.0, {}),
       "tversky": (fl.tversky_loss, 0.3, 0.7, {"alpha": 0.3, "beta": 0.7, "gamma": 4 / 3})}
OPTS = [
    ("binary", {}),
    ("binary", {"ignore_index": 255, "log_loss": True}),
    ("binary", {"soft": True, "smooth": 1.0}),
    ("multilabel", {"classes": [0, 3], "weight": [1.0, 2.0, 3.0, 0.5]}),
    ("multilabel", {"ignore_index": -1, "from_logits": False}),
    ("multiclass", {}),
    ("multiclass", {"ignore_index": 255, "smooth": 0.5, "weight": [2.0, 1.0, 1.0, 3.0]}),
    ("multiclass", {"classes": [1, 2], "log_loss": True, "eps": 1e-4}),
    ("multiclass", {"from_logits": False}),
]


@pytest.mark.parametrize("name", list(SMP))
@pytest.mark.parametrize("mode,opts", OPTS, ids=[f"{m}-{'-'.join(o)}" for m, o in OPTS])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_seg_vs_smp_in_torch(name, mode, opts, dtype):
    fn, a, b, extra = SMP[name]
    opts = dict(opts)
    soft = opts.pop("soft", False)
    x, t = _seg(mode, dtype, ignore=opts.get("ignore_index"), soft=soft)
    if not opts.get("from_logits", True):
        x = np.random.default_rng(4).random(x.shape).astype(dtype)
    v, g = fn(x, t, mode, return_grad=True, **opts, **extra)
    w = opts.pop("weight", None)

    def ref(xt, tt):
        return smp_overlap(xt, tt, mode, a, b, extra.get("gamma", 1.0), class_weights=w, **opts)

    rv, rg = _torch_ref(ref, x.astype(dtype), t, mode != "multiclass")
    _close(v, rv, dtype, "value")
    _close(g, rg, dtype, "grad")


def test_smooth_empty_class_differs_from_smp_as_documented():
    x, y = _seg("multiclass", np.float64)
    y[y == 3] = 0  # class 3 absent
    v = fl.dice_loss(x, y, "multiclass", smooth=1.0)
    ref = smp_overlap(torch.tensor(x), torch.tensor(y), "multiclass", 0.5, 0.5, smooth=1.0)
    # smp drops class 3 (loss 0); fastloss counts 1 - smooth / (sum p / 2 + smooth) for it
    p3 = torch.softmax(torch.tensor(x), 1)[:, 3].sum().item()
    assert v == pytest.approx(ref.item() + (1 - 1.0 / (0.5 * p3 + 1.0)) / 4, rel=1e-12)
    # with smooth = 0 they agree
    assert fl.dice_loss(x, y, "multiclass") == pytest.approx(
        smp_overlap(torch.tensor(x), torch.tensor(y), "multiclass", 0.5, 0.5).item(), rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_per_image_is_smp_per_image(dtype):
    x, y = _seg("multiclass", dtype)
    v, g = fl.dice_loss(x, y, "multiclass", per_image=True, return_grad=True)

    def ref(xt, yt):
        return torch.stack([smp_overlap(xt[n:n + 1], yt[n:n + 1], "multiclass", 0.5, 0.5)
                            for n in range(xt.shape[0])]).mean()

    rv, rg = _torch_ref(ref, x, y, False)
    _close(v, rv, dtype, "value")
    _close(g, rg, dtype, "grad")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("per_image", [False, True])
def test_bce_dice_vs_torch(dtype, per_image):
    x, t = _seg("multilabel", dtype, soft=True)
    v, g = fl.bce_dice_loss(x, t, 0.7, 1.3, "multilabel", smooth=0.0, per_image=per_image, return_grad=True)

    def one(xt, tt):
        return 0.7 * F.binary_cross_entropy_with_logits(xt, tt) + 1.3 * smp_overlap(xt, tt, "multilabel", 0.5, 0.5)

    def ref(xt, tt):
        if per_image:
            return torch.stack([one(xt[n:n + 1], tt[n:n + 1]) for n in range(xt.shape[0])]).mean()
        return one(xt, tt)

    rv, rg = _torch_ref(ref, x, t)
    _close(v, rv, dtype, "value")
    _close(g, rg, dtype, "grad")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ce_dice_vs_torch(dtype):
    x, y = _seg("multiclass", dtype, ignore=255)
    v, g = fl.ce_dice_loss(x, y, 0.5, 2.0, ignore_index=255, return_grad=True)

    def ref(xt, yt):
        return (0.5 * F.cross_entropy(xt, yt, ignore_index=255)
                + 2.0 * smp_overlap(xt, yt, "multiclass", 0.5, 0.5, ignore_index=255))

    rv, rg = _torch_ref(ref, x, y, False)
    _close(v, rv, dtype, "value")
    _close(g, rg, dtype, "grad")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("per_image", [False, True])
def test_lovasz_vs_smp_in_torch(dtype, per_image):
    x, t = _seg("binary", dtype, ignore=255)
    x, t = x[:, 0], t[:, 0]
    v, g = fl.lovasz_hinge_loss(x, t, per_image, 255, return_grad=True)
    rv, rg = _torch_ref(lambda a, b: smp_lovasz_hinge(a, b, per_image, 255), x, t)
    _close(v, rv, dtype, "hinge value")
    _close(g, rg, dtype, "hinge grad")
    x, y = _seg("multiclass", dtype, ignore=255)
    for classes in ("present", "all", [0, 2]):
        v, g = fl.lovasz_softmax_loss(x, y, classes, per_image, 255, return_grad=True)
        rv, rg = _torch_ref(lambda a, b: smp_lovasz_softmax(a.softmax(1), b, classes, per_image, 255), x, y, False)
        _close(v, rv, dtype, f"softmax value {classes}")
        _close(g, rg, dtype, f"softmax grad {classes}")


BOXES = {"iou": fl.box_iou_loss, "giou": fl.generalized_box_iou_loss, "diou": fl.distance_box_iou_loss,
         "ciou": fl.complete_box_iou_loss}


def _boxes(n=200, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    b1 = rng.uniform(0, 10, (n, 4))
    b1[:, 2:] = b1[:, :2] + rng.uniform(0.1, 4, (n, 2))
    b2 = b1 + rng.normal(0, 1.5, (n, 4))
    b2[:, 2:] = np.maximum(b2[:, 2:], b2[:, :2] + 0.05)
    b2[0] = b1[0]                      # identical boxes: every min/max at a tie
    b2[1] = b1[1] + 30                 # disjoint
    b2[2, 0] = b1[2, 2]                # touching edges
    b1[3] = b1[3, [2, 3, 0, 1]]        # inverted
    return b1.astype(dtype), b2.astype(dtype)


@pytest.mark.parametrize("kind", list(BOXES))
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_boxes_vs_torchvision_in_torch(kind, reduction, dtype):
    b1, b2 = _boxes(dtype=dtype)
    for eps in (1e-7, 0.01):
        v, g1, g2 = BOXES[kind](b1, b2, reduction, eps, return_grad=True)
        t1 = torch.tensor(b1.astype(np.float64), requires_grad=True)
        t2 = torch.tensor(b2.astype(np.float64), requires_grad=True)
        loss = tv_box_loss(kind, t1, t2, eps)
        rv = {"mean": loss.mean, "sum": loss.sum}.get(reduction, lambda: loss)()
        rv.sum().backward()
        _close(v, rv, dtype, "value")
        _close(g1, t1.grad, dtype, "g_boxes1")
        _close(g2, t2.grad, dtype, "g_boxes2")


def test_ciou_where_torchvision_is_nan():
    b1 = torch.tensor([[0.0, 1.0, 2.0, 1.0], [1.0, 1.0, 1.0, 1.0]], dtype=torch.float64, requires_grad=True)
    b2 = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0]], dtype=torch.float64)
    loss = tv_box_loss("ciou", b1, b2)
    loss.sum().backward()
    assert torch.isnan(b1.grad[0]).any() and torch.isnan(loss[1])
    v, g1, g2 = fl.complete_box_iou_loss(b1.detach().numpy(), b2.numpy(), return_grad=True)
    assert np.isfinite(v).all() and np.isfinite(g1).all() and np.isfinite(g2).all()
    assert v[0] == pytest.approx(loss[0].item(), rel=1e-12)  # the value was finite there


# ------------------------------------------------------------------ fastloss.torch end to end

def _x(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64, requires_grad=True)


ADAPTED = [
    ("dice_loss", "DiceLoss", {"mode": "multiclass"}, "labels"),
    ("jaccard_loss", "JaccardLoss", {"mode": "multilabel", "smooth": 1.0}, "mask"),
    ("tversky_loss", "TverskyLoss", {"mode": "multiclass", "alpha": 0.3, "beta": 0.7, "gamma": 1.5}, "labels"),
    ("bce_dice_loss", "BCEDiceLoss", {"mode": "multilabel"}, "mask"),
    ("ce_dice_loss", "CEDiceLoss", {}, "labels"),
    ("lovasz_hinge_loss", "LovaszHingeLoss", {}, "binary"),
    ("lovasz_softmax_loss", "LovaszSoftmaxLoss", {}, "labels"),
]


def _operands(kind):
    x = _x((2, 3, 4, 5))
    g = torch.Generator().manual_seed(1)
    if kind == "labels":
        return x, torch.randint(0, 3, (2, 4, 5), generator=g)
    if kind == "binary":
        x = _x((2, 4, 5))
        return x, (torch.rand((2, 4, 5), generator=g) > 0.5).double()
    return x, (torch.rand((2, 3, 4, 5), generator=g) > 0.5).double()


@pytest.mark.parametrize("fname,cname,kw,kind", ADAPTED, ids=[a[0] for a in ADAPTED])
@pytest.mark.parametrize("per_image,reduction", [(False, "mean"), (True, "none"), (True, "sum")])
def test_adapter_end_to_end(fname, cname, kw, kind, per_image, reduction):
    x, t = _operands(kind)
    for out in (getattr(flt, fname)(x, t, per_image=per_image, reduction=reduction, **kw),
                getattr(flt, cname)(per_image=per_image, reduction=reduction, **kw)(x, t)):
        v, g = getattr(fl, fname)(x.detach().numpy(), t.numpy(), per_image=per_image, reduction=reduction,
                                  return_grad=True, **kw)
        np.testing.assert_allclose(out.detach().numpy(), v, rtol=1e-15)
        go = torch.rand(out.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
        x.grad = None
        out.backward(go)
        gn = go.numpy().reshape(go.shape + (1,) * (x.dim() - go.dim())) * g
        np.testing.assert_allclose(x.grad.numpy(), gn, rtol=1e-14, atol=1e-17)
    assert torch.autograd.gradcheck(
        lambda z: getattr(flt, fname)(z, t, per_image=per_image, reduction=reduction, **kw), (x,))


@pytest.mark.parametrize("kind", ["iou", "giou", "diou"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_adapter_boxes_gradcheck(kind, reduction):
    b1, b2 = _boxes(6)
    t1 = torch.tensor(b1[4:], requires_grad=True)
    t2 = torch.tensor(b2[4:], requires_grad=True)
    fname = BOXES[kind].__name__
    cls = {"iou": flt.BoxIoULoss, "giou": flt.GeneralizedBoxIoULoss, "diou": flt.DistanceBoxIoULoss}[kind]
    assert torch.autograd.gradcheck(lambda a, b: getattr(flt, fname)(a, b, reduction), (t1, t2))
    assert torch.autograd.gradcheck(lambda a, b: cls(reduction)(a, b), (t1, t2))


def test_adapter_ciou_matches_torchvision_autograd():
    # CIoU's gradient holds alpha constant (torchvision's no_grad), so it is
    # compared with torchvision's autograd rather than gradcheck
    b1, b2 = _boxes(50)
    t1 = torch.tensor(b1, requires_grad=True)
    t2 = torch.tensor(b2, requires_grad=True)
    out = flt.CompleteBoxIoULoss()(t1, t2)
    go = torch.rand(out.shape, dtype=torch.float64)
    out.backward(go)
    r1 = t1.detach().clone().requires_grad_(True)
    r2 = t2.detach().clone().requires_grad_(True)
    ref = tv_box_loss("ciou", r1, r2)
    ref.backward(go)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(t1.grad.numpy(), r1.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(t2.grad.numpy(), r2.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_adapter_signatures_and_weight():
    assert "weight" not in str(__import__("inspect").signature(flt.BoxIoULoss.forward))
    assert "weight" in str(__import__("inspect").signature(flt.LovaszSoftmaxLoss.forward))
    x, t = _operands("labels")
    w = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    a = flt.DiceLoss("multiclass")(x, t, weight=w)
    b = flt.dice_loss(x, t, "multiclass", weight=w)
    assert a.item() == b.item() == fl.dice_loss(x.detach().numpy(), t.numpy(), "multiclass", weight=w.numpy())


def test_adapter_float32():
    x, t = _operands("labels")
    x32 = x.detach().float().requires_grad_(True)
    out = flt.CEDiceLoss()(x32, t)
    assert out.dtype == torch.float32
    out.backward()
    assert x32.grad.dtype == torch.float32
    v, g = fl.ce_dice_loss(x32.detach().numpy(), t.numpy(), return_grad=True)
    assert out.item() == pytest.approx(v, rel=1e-7)
    np.testing.assert_array_equal(x32.grad.numpy(), g)
    b1, b2 = _boxes(8, dtype=np.float32)
    t1, t2 = torch.tensor(b1, requires_grad=True), torch.tensor(b2, requires_grad=True)
    flt.generalized_box_iou_loss(t1, t2, "sum").backward()
    _, g1, g2 = fl.generalized_box_iou_loss(b1, b2, "sum", return_grad=True)
    np.testing.assert_array_equal(t1.grad.numpy(), g1)
    np.testing.assert_array_equal(t2.grad.numpy(), g2)
