"""Reference embedding losses: plain NumPy, float64, from the definitions.

Rows of features are the last axis; every function works on ``(R, D)``
matrices of rows and reshapes back.  Distances and their gradients are
written out per pair, the in-batch losses loop over anchors with explicit
positive and negative sets (and, for batch-all, explicit triplets).
Nothing here is shared with the kernels; slow and obvious on purpose.

Each loss returns ``(value, grad_1, ..., grad_k)``: one gradient per
differentiable operand, of the returned value (of the sum for
``reduction="none"``).  ``reduction="mean"`` divides by the number of rows
(the in-batch losses: by their own counts, see each function).  A per-row
``weight`` multiplies each row's loss.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "triplet_margin_loss", "triplet_margin_with_distance_loss", "cosine_embedding_loss",
    "margin_ranking_loss", "hinge_embedding_loss", "contrastive_loss", "cosine_distance_loss",
    "batch_hard_triplet_loss", "batch_all_triplet_loss", "nt_xent_loss",
]


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _rows(*arrays):
    a0 = _f64(arrays[0])
    shape = a0.shape
    return [_f64(a).reshape(-1, shape[-1]) for a in arrays], shape


def _reduce(shape, l, grads, weight, reduction):
    """Weights, reduction and the gradients' scale; l and grads are per row."""
    rows = shape[:-1]
    R = l.shape[0]
    w = np.ones(R) if weight is None else np.broadcast_to(_f64(weight), rows).reshape(-1)
    l = w * l
    grads = [w[:, None] * g for g in grads]
    if reduction == "mean":
        value = float(np.sum(l) / R) if R else float("nan")
        grads = [g / R for g in grads] if R else grads
    elif reduction == "sum":
        value = float(np.sum(l))
    else:
        value = l.reshape(rows)
    return (value,) + tuple(g.reshape(shape) for g in grads)


def _pnorm(x, y, p, eps):
    """d = |x - y + eps|_p per row and dd/dx (dd/dy = -dd/dx), 0 at d = 0."""
    v = x - y + eps
    a = np.abs(v)
    if p == 1:
        d = a.sum(axis=1)
        return d, np.sign(v)
    d = np.sum(a ** p, axis=1) ** (1.0 / p)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.sign(v) * a ** (p - 1) / d[:, None] ** (p - 1)
    g[d == 0] = 0.0
    return d, g


def _sqeuclid(x, y):
    v = x - y
    return np.sum(v * v, axis=1), 2 * v, -2 * v


def _cosdist(x, y, eps):
    """1 - x.y / (max(|x|, eps) max(|y|, eps)) and its gradients as
    PyTorch's autograd of F.cosine_similarity gives them (the clamp is not
    differentiated, the norm is: d|x|/dx = x / |x|, 0 at x = 0)."""
    nx, ny = np.linalg.norm(x, axis=1), np.linalg.norm(y, axis=1)
    cx, cy = np.maximum(nx, eps), np.maximum(ny, eps)
    dot = np.sum(x * y, axis=1)
    cos = dot / (cx * cy)
    ux = np.divide(x, nx[:, None], out=np.zeros_like(x), where=nx[:, None] > 0)
    uy = np.divide(y, ny[:, None], out=np.zeros_like(y), where=ny[:, None] > 0)
    # d cos / dx = y / (cx cy) - dot / (cx^2 cy) * dcx/dx, dcx/dx = x / |x|
    gx = y / (cx * cy)[:, None] - (dot / (cx ** 2 * cy))[:, None] * ux
    gy = x / (cx * cy)[:, None] - (dot / (cx * cy ** 2))[:, None] * uy
    return 1.0 - cos, -gx, -gy


def _pair_distance(x, y, distance, p=2, eps=1e-6):
    """(d, dd/dx, dd/dy) for a named distance."""
    if distance == "euclidean":
        d, g = _pnorm(x, y, p, eps)
        return d, g, -g
    if distance == "squared_euclidean":
        return _sqeuclid(x, y)
    return _cosdist(x, y, 1e-8)


def _triplet(anchor, positive, negative, margin, swap, weight, reduction, dist):
    (a, pos, neg), shape = _rows(anchor, positive, negative)
    dap, gap_a, gap_p = dist(a, pos)
    dan, gan_a, gan_n = dist(a, neg)
    san = np.ones_like(dap)
    spn = np.zeros_like(dap)
    gpn_p = gpn_n = np.zeros_like(a)
    dneg = dan
    if swap:
        dpn, gpn_p, gpn_n = dist(pos, neg)
        dneg = np.minimum(dan, dpn)
        san = np.where(dan < dpn, 1.0, np.where(dan == dpn, 0.5, 0.0))  # torch.minimum: ties split
        spn = 1.0 - san
    z = margin + dap - dneg
    l = np.maximum(z, 0.0)
    k = (z >= 0).astype(float)[:, None]  # clamp_min passes the gradient at 0
    ga = k * (gap_a - san[:, None] * gan_a)
    gp = k * (gap_p - spn[:, None] * gpn_p)
    gn = -k * (san[:, None] * gan_n + spn[:, None] * gpn_n)
    return _reduce(shape, l, [ga, gp, gn], weight, reduction)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, weight=None,
                        reduction="mean"):
    """max(0, margin + d(a, p) - d(a, n)), d(x, y) = |x - y + eps|_p (PyTorch);
    with swap, d(a, n) -> min(d(a, n), d(p, n)).  Returns (value, g_a, g_p, g_n)."""
    return _triplet(anchor, positive, negative, margin, swap, weight, reduction,
                    lambda x, y: _pair_distance(x, y, "euclidean", p, eps))


def triplet_margin_with_distance_loss(anchor, positive, negative, distance="euclidean", margin=1.0, swap=False,
                                      weight=None, reduction="mean"):
    """The triplet loss over a named distance: "euclidean" (|x - y + 1e-6|_2,
    torch.pairwise_distance), "squared_euclidean" (|x - y|^2) or "cosine"
    (1 - F.cosine_similarity(x, y))."""
    return _triplet(anchor, positive, negative, margin, swap, weight, reduction,
                    lambda x, y: _pair_distance(x, y, distance))


def _check_target(t, allowed, op):
    ok = np.isnan(t)
    for v in allowed:
        ok |= t == v
    if not ok.all():
        raise ValueError(f"{op}: target must contain only {' and '.join(str(v) for v in allowed)}")


def cosine_embedding_loss(input1, input2, target, margin=0.0, weight=None, reduction="mean"):
    """1 - cos for t = 1, max(0, cos - margin) for t = -1, with PyTorch's
    cos = x.y / sqrt((|x|^2 + 1e-12)(|y|^2 + 1e-12)), 1e-12 rounded to float32."""
    (x, y), shape = _rows(input1, input2)
    t = _f64(target).reshape(-1)
    _check_target(t, (-1, 1), "cosine_embedding_loss")
    e12 = float(np.float32(1e-12))  # PyTorch's EPSILON is a float
    m1 = np.sum(x * x, axis=1) + e12
    m2 = np.sum(y * y, axis=1) + e12
    den = np.sqrt(m1 * m2)
    cos = np.sum(x * y, axis=1) / den
    dcos_x = y / den[:, None] - (cos / m1)[:, None] * x
    dcos_y = x / den[:, None] - (cos / m2)[:, None] * y
    z = cos - margin
    l = np.where(t == 1, 1.0 - cos, np.maximum(z, 0.0))
    dl = np.where(t == 1, -1.0, (z >= 0).astype(float))[:, None]
    return _reduce(shape, l, [dl * dcos_x, dl * dcos_y], weight, reduction)


def margin_ranking_loss(input1, input2, target, margin=0.0, weight=None, reduction="mean"):
    """max(0, -t (x1 - x2) + margin), elementwise."""
    x1, x2, t = _f64(input1), _f64(input2), _f64(target)
    _check_target(t.reshape(-1), (-1, 1), "margin_ranking_loss")
    z = -t * (x1 - x2) + margin
    l = np.maximum(z, 0.0)
    k = (z >= 0).astype(float)
    g1, g2 = -t * k, t * k
    return _elementwise(l, [g1, g2], weight, reduction)


def hinge_embedding_loss(input, target, margin=1.0, weight=None, reduction="mean"):
    """x for t = 1, max(0, margin - x) for t = -1, elementwise."""
    x, t = _f64(input), _f64(target)
    _check_target(t.reshape(-1), (-1, 1), "hinge_embedding_loss")
    z = margin - x
    l = np.where(t == 1, x, np.maximum(z, 0.0))
    g = np.where(t == 1, 1.0, -(z >= 0).astype(float))
    return _elementwise(l, [g], weight, reduction)


def _elementwise(l, grads, weight, reduction):
    w = np.ones_like(l) if weight is None else np.broadcast_to(_f64(weight), l.shape)
    l = w * l
    grads = [w * g for g in grads]
    n = l.size
    if reduction == "mean":
        return (float(l.sum() / n) if n else float("nan"),) + tuple(g / n if n else g for g in grads)
    if reduction == "sum":
        return (float(l.sum()),) + tuple(grads)
    return (l,) + tuple(grads)


def contrastive_loss(input1, input2, target, margin=1.0, p=2, eps=1e-6, similar_label=1, weight=None,
                     reduction="mean"):
    """Hadsell, Chopra and LeCun (2006): 1/2 y d^2 + 1/2 (1 - y) max(0, margin - d)^2,
    d = |x1 - x2 + eps|_p, y = 1 for a similar pair (target == similar_label)."""
    (x, y), shape = _rows(input1, input2)
    t = _f64(target).reshape(-1)
    _check_target(t, (0, 1), "contrastive_loss")
    sim = t if similar_label == 1 else 1.0 - t
    d, gd = _pnorm(x, y, p, eps)
    h = np.maximum(margin - d, 0.0)
    l = 0.5 * sim * d * d + 0.5 * (1 - sim) * h * h
    dl = (sim * d - (1 - sim) * h)[:, None]
    return _reduce(shape, l, [dl * gd, -dl * gd], weight, reduction)


def cosine_distance_loss(input, target, eps=1e-8, weight=None, reduction="mean"):
    """1 - x.y / (max(|x|, eps) max(|y|, eps)) per row (optax's cosine_distance)."""
    (x, y), shape = _rows(input, target)
    l, gx, gy = _cosdist(x, y, eps)
    return _reduce(shape, l, [gx, gy], weight, reduction)


# ------------------------------------------------------------------ in-batch

def _labels(labels, N):
    if labels is None:
        return np.arange(N) % (N // 2)
    return np.asarray(labels).reshape(-1)


def _batch_reduce(total, count, g, reduction):
    if reduction == "sum":
        return float(total), g
    if count == 0:
        return 0.0, g * 0.0
    return float(total / count), g / count


def _dist_grad(E, i, j, distance):
    """d(e_i, e_j) and its gradients with respect to e_i and e_j, written out:
    euclidean |e_i - e_j| (gradient 0 at 0), squared, or cosine 1 - u_i.u_j
    with u = e / max(|e|, 1e-12) (F.normalize: the clamp is a constant)."""
    x, y = E[i], E[j]
    if distance == "euclidean":
        v = x - y
        d = np.sqrt(v @ v)
        g = v / d if d > 0 else np.zeros_like(v)
        return d, g, -g
    if distance == "squared_euclidean":
        v = x - y
        return v @ v, 2 * v, -2 * v
    eps = 1e-12
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    cx, cy = max(nx, eps), max(ny, eps)
    ux, uy = x / cx, y / cy
    c = ux @ uy
    # du/de = (I - u u^T) / |e| when not clamped, I / eps when clamped
    jx = (uy - c * ux) / cx if nx > eps else uy / cx
    jy = (ux - c * uy) / cy if ny > eps else ux / cy
    return 1.0 - c, -jx, -jy


def _all_distances(E, distance):
    N = E.shape[0]
    d = np.zeros((N, N))
    for i in range(N):
        for j in range(N):
            d[i, j] = _dist_grad(E, i, j, distance)[0]
    return d


def batch_hard_triplet_loss(embeddings, labels, margin=1.0, distance="euclidean", soft=False, weight=None,
                            reduction="mean"):
    """Hermans, Beyer and Leibe (2017), batch hard: for each anchor the
    positive at the largest distance and the negative at the smallest (the
    first index on a tie), loss max(0, margin + d_ap - d_an), or
    log(1 + exp(d_ap - d_an)) with soft; the mean is over the anchors that
    have both.  Returns (value, grad)."""
    E = _f64(embeddings)
    N = E.shape[0]
    y = _labels(labels, N)
    w = np.ones(N) if weight is None else np.broadcast_to(_f64(weight), (N,))
    D = _all_distances(E, distance)
    g = np.zeros_like(E)
    total = count = 0.0
    for a in range(N):
        pos = [j for j in range(N) if y[j] == y[a] and j != a]
        neg = [j for j in range(N) if y[j] != y[a]]
        if not pos or not neg:
            continue
        p = max(pos, key=lambda j: (D[a, j], -j))
        n = min(neg, key=lambda j: (D[a, j], j))
        dp, gpa, gpp = _dist_grad(E, a, p, distance)
        dn, gna, gnn = _dist_grad(E, a, n, distance)
        z = dp - dn
        if soft:
            v, dv = np.logaddexp(0.0, z), 1.0 / (1.0 + np.exp(-z))
        else:
            v, dv = max(margin + z, 0.0), float(margin + z >= 0)
        total += w[a] * v
        count += 1
        k = w[a] * dv
        g[a] += k * (gpa - gna)
        g[p] += k * gpp
        g[n] -= k * gnn
    return _batch_reduce(total, count, g, reduction)


def batch_all_triplet_loss(embeddings, labels, margin=1.0, distance="euclidean", weight=None, reduction="mean"):
    """Every triplet (a, p, n) of the batch with y_p = y_a (p != a) and
    y_n != y_a: max(0, d_ap - d_an + margin), averaged over the triplets
    whose loss is > 0 (pytorch-metric-learning's TripletMarginLoss with its
    default AvgNonZeroReducer; 0 when there is none).  Returns (value, grad)."""
    E = _f64(embeddings)
    N = E.shape[0]
    y = _labels(labels, N)
    w = np.ones(N) if weight is None else np.broadcast_to(_f64(weight), (N,))
    g = np.zeros_like(E)
    total = count = 0.0
    for a in range(N):
        for p in range(N):
            if p == a or y[p] != y[a]:
                continue
            dp, gpa, gpp = _dist_grad(E, a, p, distance)
            for n in range(N):
                if y[n] == y[a]:
                    continue
                dn, gna, gnn = _dist_grad(E, a, n, distance)
                z = dp - dn + margin
                if z > 0:
                    total += w[a] * z
                    count += 1
                    g[a] += w[a] * (gpa - gna)
                    g[p] += w[a] * gpp
                    g[n] -= w[a] * gnn
    return _batch_reduce(total, count, g, reduction)


def nt_xent_loss(embeddings, labels=None, temperature=0.07, weight=None, reduction="mean"):
    """NT-Xent as pytorch-metric-learning's NTXentLoss and optax's ntxent:
    s_ij = u_i.u_j / temperature (u = e / max(|e|, 1e-12)); for each
    positive pair (a, p) (same label, p != a)
        l_ap = -log(exp(s_ap) / (exp(s_ap) + sum over negatives n of exp(s_an))),
    averaged over the positive pairs.  labels=None pairs row i with row
    i + N/2.  Returns (value, grad)."""
    E = _f64(embeddings)
    N = E.shape[0]
    y = _labels(labels, N)
    w = np.ones(N) if weight is None else np.broadcast_to(_f64(weight), (N,))
    eps = 1e-12
    n = np.linalg.norm(E, axis=1)
    c = np.maximum(n, eps)
    U = E / c[:, None]
    S = U @ U.T / temperature
    gS = np.zeros((N, N))  # dL/dS
    total = count = 0.0
    for a in range(N):
        neg = [j for j in range(N) if y[j] != y[a]]
        for p in range(N):
            if p == a or y[p] != y[a]:
                continue
            logits = np.concatenate(([S[a, p]], S[a, neg]))
            m = logits.max()
            lse = m + np.log(np.sum(np.exp(logits - m)))
            total += w[a] * (lse - S[a, p])
            count += 1
            soft = np.exp(logits - lse)
            gS[a, p] += w[a] * (soft[0] - 1.0)
            gS[a, neg] += w[a] * soft[1:]
    # S = U U^T / tau: dL/dU = (gS + gS^T) U / tau; U = E / c
    gU = (gS + gS.T) @ U / temperature
    g = np.zeros_like(E)
    for i in range(N):
        if n[i] > eps:
            g[i] = (gU[i] - (U[i] @ gU[i]) * U[i]) / c[i]
        else:
            g[i] = gU[i] / c[i]
    return _batch_reduce(total, count, g, reduction)
