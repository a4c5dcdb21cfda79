"""Plain NumPy float64 versions of the segmentation overlap losses (Dice,
Jaccard, Tversky, BCE+Dice, CE+Dice) and the Lovasz losses, with their
gradients.  Written from the definitions (segmentation_models_pytorch's
soft_tversky_score; Berman et al.'s Algorithm 1 for lovasz_grad), loops
over sets and classes in Python, sharing no code with the kernels.

Each function returns ``(value, grad)``; arguments as the fastloss
functions (without ``out``/``n_threads``).
"""
from __future__ import annotations

import numpy as np

__all__ = ["dice_loss", "jaccard_loss", "tversky_loss", "bce_dice_loss", "ce_dice_loss",
           "lovasz_grad", "lovasz_hinge_loss", "lovasz_softmax_loss"]


def _layout(x, target, mode, ignore_index):
    """x as (N, C, S); the dense target t and the validity mask v, (N, C, S)."""
    x = np.asarray(x, np.float64)
    N = x.shape[0]
    if mode == "binary":
        X = x.reshape(N, 1, -1)
        T = np.asarray(target, np.float64).reshape(X.shape)
        V = np.ones_like(T) if ignore_index is None else (T != ignore_index).astype(np.float64)
        T = np.where(V > 0, T, 0.0)
    elif mode == "multilabel":
        X = x.reshape(N, x.shape[1], -1)
        T = np.asarray(target, np.float64).reshape(X.shape)
        V = np.ones_like(T) if ignore_index is None else (T != ignore_index).astype(np.float64)
        T = np.where(V > 0, T, 0.0)
    else:
        C = x.shape[1]
        X = x.reshape(N, C, -1)
        y = np.asarray(target).reshape(N, -1)
        ok = np.ones(y.shape, bool) if ignore_index is None else y != ignore_index
        T = np.zeros(X.shape)
        for c in range(C):
            T[:, c, :] = (y == c) & ok
        V = np.broadcast_to(ok[:, None, :], X.shape).astype(np.float64)
    return x.shape, X, T, V


def _sigmoid(x):
    return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _overlap(input, target, mode, alpha, beta, gamma, classes, log_loss, from_logits, smooth, ignore_index,
             eps, per_image, weight, reduction, overlap_w=1.0, ce_w=0.0):
    shape, X, T, V = _layout(input, target, mode, ignore_index)
    N, C, S = X.shape
    if from_logits:
        P = _softmax(X) if mode == "multiclass" else _sigmoid(X)
    else:
        P = X.copy()
    w = np.ones(C) if weight is None else np.asarray(weight, np.float64)
    sel = np.ones(C, bool)
    if classes is not None:
        sel = np.zeros(C, bool)
        sel[list(classes)] = True
    sets = [[n] for n in range(N)] if per_image else [list(range(N))]
    losses = []
    dLdP = np.zeros_like(X)          # gradient of the value with respect to p (overlap term)
    ce_grad_coef = np.zeros(N)       # per image: scale of the CE gradient
    scale = 1.0 / len(sets) if reduction == "mean" else 1.0
    for members in sets:
        Pm, Tm, Vm = P[members], T[members], V[members]
        ls, dl_dSp, dl_dI = np.zeros(C), np.zeros(C), np.zeros(C)
        for c in range(C):
            p, t, v = Pm[:, c], Tm[:, c], Vm[:, c]
            Sp = float((p * v).sum())
            St = float((t * v).sum())
            I = float((np.minimum(p, t) * v).sum())
            D = I + alpha * (Sp - I) + beta * (St - I) + smooth
            Dc = max(D, eps)
            s = (I + smooth) / Dc
            ds_dI = 1 / Dc - ((I + smooth) * (1 - alpha - beta) / Dc ** 2 if D >= eps else 0.0)
            ds_dSp = -(I + smooth) * alpha / Dc ** 2 if D >= eps else 0.0
            if log_loss:
                l, dl_ds = -np.log(max(s, eps)), (-1 / s if s >= eps else 0.0)
            else:
                l, dl_ds = 1 - s, -1.0
            if smooth == 0 and St == 0:   # a class without target mass drops out (smp)
                l, dl_ds = 0.0, 0.0
            ls[c], dl_dSp[c], dl_dI[c] = l, dl_ds * ds_dSp, dl_ds * ds_dI
        ws = np.where(sel, w, 0.0)
        agg = float((ws * ls).sum() / ws.sum())
        L, dagg = agg, 1.0
        if gamma != 1:
            L = agg ** gamma
            dagg = 0.0 if agg == 0 else gamma * agg ** (gamma - 1)
        ce_sum, cnt = 0.0, 0.0
        if ce_w:
            for n in members:
                if mode == "multiclass":
                    lse = X[n].max(axis=0) + np.log(np.exp(X[n] - X[n].max(axis=0)).sum(axis=0))
                    ce_pix = lse - (X[n] * T[n]).sum(axis=0)
                    ok = V[n, 0]
                    ce_sum += float((ce_pix * ok).sum())
                    cnt += float(ok.sum())
                else:
                    xb = X[n]
                    bce = np.maximum(xb, 0) - xb * T[n] + np.log1p(np.exp(-np.abs(xb)))
                    ce_sum += float((bce * V[n]).sum())
                    cnt += float(V[n].sum())
        ce_mean = ce_sum / cnt if cnt > 0 else 0.0
        losses.append(overlap_w * L + ce_w * ce_mean)
        f = scale * overlap_w * dagg / ws.sum()
        for n in members:
            for c in range(C):
                dI = np.where(P[n, c] < T[n, c], 1.0, np.where(P[n, c] > T[n, c], 0.0, 0.5))
                dLdP[n, c] = f * ws[c] * (dl_dSp[c] + dl_dI[c] * dI) * V[n, c]
            ce_grad_coef[n] = scale * ce_w / cnt if cnt > 0 else 0.0
    # back to x
    if not from_logits:
        G = dLdP
    elif mode == "multiclass":
        G = P * (dLdP - (P * dLdP).sum(axis=1, keepdims=True))
        G = G + ce_grad_coef[:, None, None] * (P - T) * V
    else:
        G = dLdP * P * (1 - P) + ce_grad_coef[:, None, None] * (P - T) * V
    G = G * V
    losses = np.asarray(losses)
    if reduction == "none":
        value = losses if per_image else losses[0]
    elif reduction == "sum":
        value = float(losses.sum())
    else:
        value = float(losses.mean())
    return value, G.reshape(shape)


def dice_loss(input, target, mode="binary", classes=None, log_loss=False, from_logits=True, smooth=0.0,
              ignore_index=None, eps=1e-7, per_image=False, *, weight=None, reduction="mean"):
    return _overlap(input, target, mode, 0.5, 0.5, 1.0, classes, log_loss, from_logits, smooth, ignore_index,
                    eps, per_image, weight, reduction)


def jaccard_loss(input, target, mode="binary", classes=None, log_loss=False, from_logits=True, smooth=0.0,
                 ignore_index=None, eps=1e-7, per_image=False, *, weight=None, reduction="mean"):
    return _overlap(input, target, mode, 1.0, 1.0, 1.0, classes, log_loss, from_logits, smooth, ignore_index,
                    eps, per_image, weight, reduction)


def tversky_loss(input, target, mode="binary", classes=None, log_loss=False, from_logits=True, smooth=0.0,
                 ignore_index=None, eps=1e-7, alpha=0.5, beta=0.5, gamma=1.0, per_image=False, *, weight=None,
                 reduction="mean"):
    return _overlap(input, target, mode, alpha, beta, gamma, classes, log_loss, from_logits, smooth,
                    ignore_index, eps, per_image, weight, reduction)


def bce_dice_loss(input, target, bce_weight=1.0, dice_weight=1.0, mode="binary", smooth=0.0, ignore_index=None,
                  eps=1e-7, per_image=False, *, weight=None, reduction="mean"):
    return _overlap(input, target, mode, 0.5, 0.5, 1.0, None, False, True, smooth, ignore_index, eps, per_image,
                    weight, reduction, overlap_w=dice_weight, ce_w=bce_weight)


def ce_dice_loss(input, target, ce_weight=1.0, dice_weight=1.0, classes=None, smooth=0.0, ignore_index=None,
                 eps=1e-7, per_image=False, *, weight=None, reduction="mean"):
    return _overlap(input, target, "multiclass", 0.5, 0.5, 1.0, classes, False, True, smooth, ignore_index, eps,
                    per_image, weight, reduction, overlap_w=dice_weight, ce_w=ce_weight)


# ------------------------------------------------------------------ Lovasz

def lovasz_grad(gt_sorted):
    """Berman et al.'s Algorithm 1: the gradient of the Lovasz extension of
    the Jaccard loss with respect to the errors sorted decreasingly, given
    the foreground flags in that order."""
    gt = np.asarray(gt_sorted, np.float64)
    gts = gt.sum()
    inter = gts - np.cumsum(gt)
    union = gts + np.cumsum(1 - gt)
    jac = 1.0 - inter / union
    if len(gt) > 1:
        jac[1:] = jac[1:] - jac[:-1]
    return jac


def _reduce_sets(losses, reduction, per_image):
    losses = np.asarray(losses, np.float64)
    if reduction == "none":
        return losses if per_image else losses[0]
    return float(losses.sum()) if reduction == "sum" else float(losses.mean())


def lovasz_hinge_loss(input, target, per_image=False, ignore_index=None, *, weight=None, reduction="mean"):
    x = np.asarray(input, np.float64)
    N = x.shape[0]
    X = x.reshape(N, -1)
    T = np.asarray(target, np.float64).reshape(N, -1)
    G = np.zeros_like(X)
    sets = [[n] for n in range(N)] if per_image else [list(range(N))]
    scale = 1.0 / len(sets) if reduction == "mean" else 1.0
    losses = []
    for members in sets:
        xs, ts = X[members].reshape(-1), T[members].reshape(-1)
        pos = np.arange(X.size).reshape(N, -1)[members].reshape(-1)
        ok = np.ones(ts.shape, bool) if ignore_index is None else ts != ignore_index
        xs, ts, pos = xs[ok], ts[ok], pos[ok]
        if len(ts) == 0:
            losses.append(0.0)
            continue
        signs = 2 * ts - 1
        err = 1 - xs * signs
        order = np.argsort(-err, kind="stable")
        w = lovasz_grad(ts[order])
        e_sorted = err[order]
        losses.append(float(np.dot(np.maximum(e_sorted, 0), w)))
        g = np.zeros(len(err))
        g[order] = w * (e_sorted > 0)          # d loss / d e
        G.reshape(-1)[pos] = scale * g * -signs
    return _reduce_sets(losses, reduction, per_image), G.reshape(x.shape)


def lovasz_softmax_loss(input, target, classes="present", per_image=False, ignore_index=None, from_logits=True,
                        *, weight=None, reduction="mean"):
    x = np.asarray(input, np.float64)
    N, C = x.shape[:2]
    X = x.reshape(N, C, -1)
    P = _softmax(X) if from_logits else X.copy()
    Y = np.asarray(target).reshape(N, -1)
    dLdP = np.zeros_like(X)
    sets = [[n] for n in range(N)] if per_image else [list(range(N))]
    scale = 1.0 / len(sets) if reduction == "mean" else 1.0
    losses = []
    for members in sets:
        y = Y[members].reshape(-1)
        ok = np.ones(y.shape, bool) if ignore_index is None else y != ignore_index
        Pm = P[members].transpose(1, 0, 2).reshape(C, -1)       # (C, pixels of the set)
        nidx = np.repeat(members, X.shape[2])
        sidx = np.tile(np.arange(X.shape[2]), len(members))
        cl = range(C) if isinstance(classes, str) else list(classes)
        per_class, grads = [], []
        for c in cl:
            fg = (y[ok] == c).astype(np.float64)
            if classes == "present" and fg.sum() == 0:
                continue
            p = Pm[c][ok]
            err = np.abs(fg - p)
            order = np.argsort(-err, kind="stable")
            w = lovasz_grad(fg[order])
            per_class.append(float(np.dot(err[order], w)))
            g = np.zeros(len(err))
            g[order] = w
            grads.append((c, g * np.sign(p - fg)))
        if not per_class:
            losses.append(0.0)
            continue
        wc = np.ones(C) if weight is None else np.asarray(weight, np.float64)
        counted = [c for c, _ in grads]
        wsum = float(sum(wc[c] for c in counted))
        losses.append(float(sum(wc[c] * l for c, l in zip(counted, per_class)) / wsum))
        for c, g in grads:
            dLdP[nidx[ok], c, sidx[ok]] = scale * g * wc[c] / wsum
    if from_logits:
        G = P * (dLdP - (P * dLdP).sum(axis=1, keepdims=True))
    else:
        G = dLdP
    if ignore_index is not None:
        G = G * (Y != ignore_index)[:, None, :]
    return _reduce_sets(losses, reduction, per_image), G.reshape(x.shape)
