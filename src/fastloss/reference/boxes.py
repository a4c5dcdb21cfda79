"""Plain NumPy float64 versions of the box IoU losses (torchvision.ops's
formulas) with their gradients for both box arrays, written out term by
term.  Each function returns ``(value, g_boxes1, g_boxes2)``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["box_iou_loss", "generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss"]


def _dmax(a, b):
    """d max(a, b) / da with a tie split in halves (PyTorch's autograd)."""
    return np.where(a > b, 1.0, np.where(a < b, 0.0, 0.5))


def _angle(w, h):
    """atan(w / h) and its partial derivatives; atan(+-w/0) = +-pi/2, 0 for a point."""
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where((w == 0) & (h == 0), 0.0, np.arctan(w / h))
        r2 = w * w + h * h
        inv = np.where(r2 > 0, 1 / np.where(r2 > 0, r2, 1), 0.0)
    return q, h * inv, -w * inv


def _loss(kind, boxes1, boxes2, reduction, eps):
    b = np.asarray(boxes1, np.float64)
    q = np.asarray(boxes2, np.float64)
    x1, y1, x2, y2 = (b[..., k] for k in range(4))
    X1, Y1, X2, Y2 = (q[..., k] for k in range(4))
    e_iou = 1e-7 if kind == "ciou" else eps
    # intersection and union
    ix1, iy1, ix2, iy2 = np.maximum(x1, X1), np.maximum(y1, Y1), np.minimum(x2, X2), np.minimum(y2, Y2)
    ov = (ix2 > ix1) & (iy2 > iy1)
    iw, ih = ix2 - ix1, iy2 - iy1
    inter = np.where(ov, iw * ih, 0.0)
    w1, h1, w2, h2 = x2 - x1, y2 - y1, X2 - X1, Y2 - Y1
    union = w1 * h1 + w2 * h2 - inter
    iou = inter / (union + e_iou)
    loss = 1 - iou
    # d loss / d inter (inter also inside union) and d loss / d area (either box)
    d_area = inter / (union + e_iou) ** 2
    d_inter = -1 / (union + e_iou) - d_area
    d_cw = d_ch = 0.0
    d_rho = 0.0
    cx1, cy1, cx2, cy2 = np.minimum(x1, X1), np.minimum(y1, Y1), np.maximum(x2, X2), np.maximum(y2, Y2)
    cw, ch = cx2 - cx1, cy2 - cy1
    dxc = (x1 + x2) / 2 - (X1 + X2) / 2
    dyc = (y1 + y2) / 2 - (Y1 + Y2) / 2
    if kind == "giou":
        area_c = cw * ch
        loss = loss + (area_c - union) / (area_c + eps)
        d_ac = (union + eps) / (area_c + eps) ** 2
        d_u = -1 / (area_c + eps)
        d_area = d_area + d_u
        d_inter = d_inter - d_u
        d_cw, d_ch = d_ac * ch, d_ac * cw
    if kind in ("diou", "ciou"):
        c2 = cw ** 2 + ch ** 2 + e_iou
        rho2 = dxc ** 2 + dyc ** 2
        loss = loss + rho2 / c2
        d_rho = 1 / c2
        d_cw, d_ch = -rho2 / c2 ** 2 * 2 * cw, -rho2 / c2 ** 2 * 2 * ch
    dq1 = dq2 = 0.0
    a1w = a1h = a2w = a2h = 0.0
    if kind == "ciou":
        q1, a1w, a1h = _angle(w1, h1)
        q2, a2w, a2h = _angle(w2, h2)
        v = 4 / np.pi ** 2 * (q2 - q1) ** 2
        alpha = v / (1 - iou + v + eps)
        loss = loss + alpha * v
        dq2 = alpha * 8 / np.pi ** 2 * (q2 - q1)
        dq1 = -dq2
    d_iw = np.where(ov, d_inter * ih, 0.0)
    d_ih = np.where(ov, d_inter * iw, 0.0)
    g1 = np.zeros(b.shape)
    g2 = np.zeros(b.shape)
    # x1: -iw via max(x1, X1); -h1 via area; -cw via min(x1, X1); rho; -w1 in the angle
    g1[..., 0] = -d_iw * _dmax(x1, X1) - d_area * h1 - d_cw * _dmax(X1, x1) + d_rho * dxc - dq1 * a1w
    g1[..., 2] = d_iw * _dmax(X2, x2) + d_area * h1 + d_cw * _dmax(x2, X2) + d_rho * dxc + dq1 * a1w
    g1[..., 1] = -d_ih * _dmax(y1, Y1) - d_area * w1 - d_ch * _dmax(Y1, y1) + d_rho * dyc - dq1 * a1h
    g1[..., 3] = d_ih * _dmax(Y2, y2) + d_area * w1 + d_ch * _dmax(y2, Y2) + d_rho * dyc + dq1 * a1h
    g2[..., 0] = -d_iw * _dmax(X1, x1) - d_area * h2 - d_cw * _dmax(x1, X1) - d_rho * dxc - dq2 * a2w
    g2[..., 2] = d_iw * _dmax(x2, X2) + d_area * h2 + d_cw * _dmax(X2, x2) - d_rho * dxc + dq2 * a2w
    g2[..., 1] = -d_ih * _dmax(Y1, y1) - d_area * w2 - d_ch * _dmax(y1, Y1) - d_rho * dyc - dq2 * a2h
    g2[..., 3] = d_ih * _dmax(y2, Y2) + d_area * w2 + d_ch * _dmax(Y2, y2) - d_rho * dyc + dq2 * a2h
    n = loss.size
    if reduction == "mean":
        return (float(loss.mean()) if n else 0.0), g1 / max(n, 1), g2 / max(n, 1)
    if reduction == "sum":
        return float(loss.sum()), g1, g2
    return loss, g1, g2


def box_iou_loss(boxes1, boxes2, reduction="none", eps=1e-7):
    return _loss("iou", boxes1, boxes2, reduction, eps)


def generalized_box_iou_loss(boxes1, boxes2, reduction="none", eps=1e-7):
    return _loss("giou", boxes1, boxes2, reduction, eps)


def distance_box_iou_loss(boxes1, boxes2, reduction="none", eps=1e-7):
    return _loss("diou", boxes1, boxes2, reduction, eps)


def complete_box_iou_loss(boxes1, boxes2, reduction="none", eps=1e-7):
    return _loss("ciou", boxes1, boxes2, reduction, eps)
