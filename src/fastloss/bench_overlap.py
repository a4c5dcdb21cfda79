"""Set-overlap losses: fastloss value+gradient vs PyTorch forward+backward
of segmentation_models_pytorch's and torchvision's formulas, side by side.

Segmentation: Dice, Tversky (focal, gamma = 4/3), BCE+Dice and
Lovasz-softmax on (16, 4, 256, 256) float32 logits (labels or masks);
boxes: IoU, GIoU, DIoU and CIoU losses on 1e6 pairs.  One thread and all
threads.  Neither smp nor torchvision imports beside torch 2.13, so their
formulas are written below in torch ops, as their sources compute them
(smp's soft_tversky_score with the L1-norm intersection, its LovaszLoss;
torchvision's _loss_inter_union and the IoU-family losses).

    python -m fastloss bench --family overlap
    python -m fastloss.bench_overlap --threads 1,2 --repeat 7

Each configuration times its implementations round by round (so a busy
moment on a shared machine hits them alike) and prints each rival's time
divided by fastloss's.  What is timed, per call:
  fastloss       fl.<loss>(..., return_grad=True, n_threads=T): value + a fresh gradient
  fastloss_out   the same with out= preallocated gradient buffer(s)
  torch          x.grad = None; loss(x, ...).backward() with torch.set_num_threads(T)
No speed is asserted here.
"""
import os
import sys
import time

import numpy as np

import fastloss as fl
from fastloss import bench as B

SEG_SHAPE = (16, 4, 256, 256)
N_BOXES = 10 ** 6
IMPLS = ["fastloss", "fastloss_out", "torch"]


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a test extra
        return None
    return torch


# ------------------------------------------------------------------ torch versions

def _smp_score(torch, p, t, alpha, beta, smooth=0.0, eps=1e-7):
    dims = (0, 2)
    sp, st = p.sum(dims), t.sum(dims)
    inter = (sp + st - torch.linalg.vector_norm(p - t, ord=1, dim=dims)) / 2
    return (inter + smooth) / (inter + alpha * (sp - inter) + beta * (st - inter) + smooth).clamp_min(eps)


def _smp_multiclass(torch, x, y, alpha, beta, gamma=1.0):
    F = torch.nn.functional
    N, C = x.shape[:2]
    p = x.log_softmax(dim=1).exp().reshape(N, C, -1)
    t = F.one_hot(y.reshape(N, -1), C).permute(0, 2, 1).to(p.dtype)
    loss = (1.0 - _smp_score(torch, p, t, alpha, beta)) * (t.sum((0, 2)) > 0).to(p.dtype)
    return loss.mean() ** gamma


def _smp_multilabel_bce_dice(torch, x, t):
    F = torch.nn.functional
    N, C = x.shape[:2]
    p = F.logsigmoid(x).exp().reshape(N, C, -1)
    tt = t.reshape(N, C, -1)
    dice = ((1.0 - _smp_score(torch, p, tt, 0.5, 0.5)) * (tt.sum((0, 2)) > 0).to(p.dtype)).mean()
    return F.binary_cross_entropy_with_logits(x, t) + dice


def _lovasz_weights(fg_sorted):
    gts = fg_sorted.sum()
    jac = 1.0 - (gts - fg_sorted.cumsum(0)) / (gts + (1 - fg_sorted).cumsum(0))
    jac[1:] = jac[1:] - jac[:-1].clone()
    return jac


def _smp_lovasz_softmax(torch, x, y):
    p = x.softmax(dim=1)
    C = p.shape[1]
    p = torch.movedim(p, 1, -1).reshape(-1, C)
    lab = y.reshape(-1)
    losses = []
    for c in range(C):
        fg = (lab == c).to(p.dtype)
        if fg.sum() == 0:
            continue
        err = (fg - p[:, c]).abs()
        err_sorted, perm = torch.sort(err, 0, descending=True)
        losses.append(torch.dot(err_sorted, _lovasz_weights(fg[perm])))
    return sum(losses) / len(losses)


def _tv_boxes(torch, kind, b1, b2, eps=1e-7):
    x1, y1, x2, y2 = b1.unbind(-1)
    X1, Y1, X2, Y2 = b2.unbind(-1)
    xk1, yk1, xk2, yk2 = torch.max(x1, X1), torch.max(y1, Y1), torch.min(x2, X2), torch.min(y2, Y2)
    inter = torch.zeros_like(x1)
    m = (yk2 > yk1) & (xk2 > xk1)
    inter[m] = (xk2[m] - xk1[m]) * (yk2[m] - yk1[m])
    union = (x2 - x1) * (y2 - y1) + (X2 - X1) * (Y2 - Y1) - inter
    e = 1e-7 if kind == "ciou" else eps
    iou = inter / (union + e)
    if kind == "iou":
        return (1 - iou).mean()
    xc1, yc1, xc2, yc2 = torch.min(x1, X1), torch.min(y1, Y1), torch.max(x2, X2), torch.max(y2, Y2)
    if kind == "giou":
        area_c = (xc2 - xc1) * (yc2 - yc1)
        return (1 - iou + (area_c - union) / (area_c + eps)).mean()
    diag = (xc2 - xc1) ** 2 + (yc2 - yc1) ** 2 + e
    dist = ((x2 + x1) / 2 - (X1 + X2) / 2) ** 2 + ((y2 + y1) / 2 - (Y1 + Y2) / 2) ** 2
    loss = 1 - iou + dist / diag
    if kind == "ciou":
        v = (4 / torch.pi ** 2) * torch.pow(torch.atan((X2 - X1) / (Y2 - Y1)) - torch.atan((x2 - x1) / (y2 - y1)), 2)
        with torch.no_grad():
            alpha = v / (1 - iou + v + eps)
        loss = loss + alpha * v
    return loss.mean()


# ------------------------------------------------------------------ cases

def seg_data(seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(SEG_SHAPE, dtype=np.float32) * 2).astype(np.float32)
    y = rng.integers(0, SEG_SHAPE[1], SEG_SHAPE[:1] + SEG_SHAPE[2:])
    m = (rng.random(SEG_SHAPE, dtype=np.float32) > 0.5).astype(np.float32)
    return x, y, m


def box_data(n=None, seed=0):
    n = N_BOXES if n is None else n
    rng = np.random.default_rng(seed)
    b1 = rng.uniform(0, 100, (n, 4)).astype(np.float32)
    b1[:, 2:] = b1[:, :2] + rng.uniform(1, 30, (n, 2))
    b2 = (b1 + rng.normal(0, 5, (n, 4))).astype(np.float32)
    b2[:, 2:] = np.maximum(b2[:, 2:], b2[:, :2] + 0.5)
    return b1, b2


SEG_CASES = {
    "dice_loss": (lambda x, y, m, **k: fl.dice_loss(x, y, "multiclass", **k),
                  lambda torch, x, y, m: _smp_multiclass(torch, x, y, 0.5, 0.5), "labels"),
    "tversky_loss": (lambda x, y, m, **k: fl.tversky_loss(x, y, "multiclass", alpha=0.3, beta=0.7, gamma=4 / 3, **k),
                     lambda torch, x, y, m: _smp_multiclass(torch, x, y, 0.3, 0.7, 4 / 3), "labels"),
    "bce_dice_loss": (lambda x, y, m, **k: fl.bce_dice_loss(x, m, mode="multilabel", **k),
                      lambda torch, x, y, m: _smp_multilabel_bce_dice(torch, x, m), "mask"),
    "lovasz_softmax_loss": (lambda x, y, m, **k: fl.lovasz_softmax_loss(x, y, **k),
                            lambda torch, x, y, m: _smp_lovasz_softmax(torch, x, y), "labels"),
}
BOX_CASES = {"box_iou_loss": "iou", "generalized_box_iou_loss": "giou", "distance_box_iou_loss": "diou",
             "complete_box_iou_loss": "ciou"}


def prepare_seg(name, impl, data, nt):
    fn, tfn, _ = SEG_CASES[name]
    x, y, m = data
    if impl == "fastloss":
        return lambda: fn(x, y, m, return_grad=True, n_threads=nt)
    if impl == "fastloss_out":
        g = np.empty_like(x)
        return lambda: fn(x, y, m, return_grad=True, out=g, n_threads=nt)
    torch = _torch()
    if torch is None:
        return None
    xt = torch.from_numpy(x).requires_grad_(True)
    yt, mt = torch.from_numpy(y), torch.from_numpy(m)

    def call():
        torch.set_num_threads(nt)
        xt.grad = None
        tfn(torch, xt, yt, mt).backward()
        return xt.grad
    return call


def prepare_box(name, impl, data, nt):
    b1, b2 = data
    fn = getattr(fl, name)
    if impl == "fastloss":
        return lambda: fn(b1, b2, "mean", return_grad=True, n_threads=nt)
    if impl == "fastloss_out":
        o = (np.empty_like(b1), np.empty_like(b2))
        return lambda: fn(b1, b2, "mean", return_grad=True, out=o, n_threads=nt)
    torch = _torch()
    if torch is None:
        return None
    t1 = torch.from_numpy(b1).requires_grad_(True)
    t2 = torch.from_numpy(b2).requires_grad_(True)
    kind = BOX_CASES[name]

    def call():
        torch.set_num_threads(nt)
        t1.grad = t2.grad = None
        _tv_boxes(torch, kind, t1, t2).backward()
        return t1.grad
    return call




def main(argv=None):
    import argparse
    import gc

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    allt = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
    p.add_argument("--threads", default=",".join(map(str, sorted({1, allt}))))
    p.add_argument("--losses", default=",".join(list(SEG_CASES) + list(BOX_CASES)))
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--min-time", type=float, default=0.05, help="each repeat lasts at least this many seconds")
    a = p.parse_args(argv)
    losses = [s.strip() for s in a.losses.split(",") if s.strip()]
    unknown = [s for s in losses if s not in SEG_CASES and s not in BOX_CASES]
    if unknown:
        print(f"bench_overlap: unknown loss(es) {', '.join(unknown)}; available: "
              f"{', '.join(list(SEG_CASES) + list(BOX_CASES))}", file=sys.stderr)
        return 2
    torch = _torch()
    print(f"fastloss {fl.__version__} simd={fl.show_config(file=False)['simd_path']}; "
          f"torch {torch.__version__ if torch else '-'}; load average {os.getloadavg()[0]:.2f} at start")
    print(f"segmentation {SEG_SHAPE} float32; boxes {N_BOXES} pairs float32; torch = the smp / torchvision "
          f"formulas in torch ops, forward + backward")
    print(f"{'loss':22} {'thr':>3} | {'fl fresh':>9} {'fl out=':>9} {'torch':>9} | {'torch/fl':>8} {'torch/out':>9}")
    gc.disable()
    try:
        seg = seg_data() if any(s in SEG_CASES for s in losses) else None
        box = box_data() if any(s in BOX_CASES for s in losses) else None
        for name in losses:
            for nt in (int(t) for t in a.threads.split(",")):
                if name in SEG_CASES:
                    fns = {k: f for k in IMPLS if (f := prepare_seg(name, k, seg, nt)) is not None}
                else:
                    fns = {k: f for k in IMPLS if (f := prepare_box(name, k, box, nt)) is not None}
                t = B.interleaved(fns, a.repeat, a.min_time)
                ms = {k: t.get(k, float("nan")) * 1e3 for k in IMPLS}
                print(f"{name:22} {nt:>3} | {ms['fastloss']:9.2f} {ms['fastloss_out']:9.2f} {ms['torch']:9.2f} | "
                      f"{ms['torch'] / ms['fastloss']:8.2f} {ms['torch'] / ms['fastloss_out']:9.2f}", flush=True)
                del fns
    finally:
        gc.enable()
    print(f"times in ms (best of {a.repeat} interleaved rounds); load average {os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
