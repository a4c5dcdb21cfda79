"""Reference row-over-classes losses: plain NumPy, float64, from the definitions.

Every function moves the class axis (axis 1; axis 0 of an unbatched
``(C,)`` input; the last axis for the multilabel loss) to the end, works on
a ``(rows, C)`` matrix with textbook formulas -- softmax, one-hot targets,
explicit Jacobians -- and moves it back.  Nothing here is shared with the
kernels; slow and obvious on purpose.

Each loss ``f`` returns ``(value, grad)``; ``f_hess`` returns the diagonal
of the Hessian of the value, ``cross_entropy_hvp`` the Hessian times a
vector.  Conventions follow PyTorch: ``reduction="mean"`` of integer-label
cross-entropy and NLL divides by the summed weights of the targets that are
not ``ignore_index``; soft-target cross-entropy, multi-margin and
multilabel soft margin divide by the number of rows; the focal loss divides
by the number of targets that are not ignored.  A term whose target weight
is 0 contributes 0 (never 0 * inf).
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "cross_entropy", "cross_entropy_hess", "cross_entropy_hvp",
    "nll_loss", "nll_loss_hess",
    "softmax_focal_loss", "softmax_focal_loss_hess",
    "multi_margin_loss", "multi_margin_loss_hess",
    "multilabel_soft_margin_loss", "multilabel_soft_margin_loss_hess",
    "poly1_cross_entropy", "poly1_cross_entropy_hess",
]


# ------------------------------------------------------------------ layout

def _rows(x):
    """(R, C) rows of a (C,), (N, C) or (N, C, d1, ...) array, and how to undo it."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        return x[None, :], x.shape, lambda r: r.reshape(x.shape)
    moved = np.moveaxis(x, 1, -1)
    mshape = moved.shape

    def back(r):
        return np.moveaxis(r.reshape(mshape), -1, 1)
    return moved.reshape(-1, x.shape[1]), x.shape, back


def _item_shape(shape):
    return () if len(shape) == 1 else (shape[0],) + tuple(shape[2:])


def _sum_others(a):
    """sum_{j != k} a_j for every k, for non-negative rows a: total - a_k,
    except at the row's argmax, where the others are summed directly (so a
    dominant entry does not cancel its own digits away)."""
    R = a.shape[0]
    j = np.argmax(a, axis=1)
    masked = a.copy()
    masked[np.arange(R), j] = 0.0
    rest = masked.sum(axis=1)
    out = a.sum(axis=1, keepdims=True) - a
    out[np.arange(R), j] = rest
    return out


def _softmax_parts(z):
    """p = softmax(z), 1 - p and log p per row, without cancellation.

    With m the row max, e = exp(z - m) and rest = sum of e over the classes
    other than the (first) argmax, s = 1 + rest: log p = (z - m) -
    log1p(rest) and 1 - p = (sum of the other e) / s.
    """
    m = np.max(z, axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        e = np.exp(z - m)
    others = _sum_others(e)
    rest = others[np.arange(z.shape[0]), np.argmax(z, axis=1)][:, None] if z.shape[0] else others[:, :1]
    s = 1.0 + rest
    with np.errstate(invalid="ignore"):
        logp = (z - m) - np.log1p(rest)
    return e / s, others / s, logp


def _softmax(z):
    return _softmax_parts(z)[0]


def _log_softmax(z):
    return _softmax_parts(z)[2]


def _reduce(per_row, grad_rows, hess_rows, denom, reduction, item_shape):
    """Apply the reduction to the per-row losses and scale the derivatives."""
    if reduction == "none":
        return per_row.reshape(item_shape), grad_rows, hess_rows
    total = float(per_row.sum())
    if reduction == "sum":
        return total, grad_rows, hess_rows
    with np.errstate(divide="ignore", invalid="ignore"):
        value = float(np.float64(total) / np.float64(denom))
        scale = np.float64(1.0) / np.float64(denom)

        def scaled(d):
            # entries that are exactly 0 (ignored targets) stay 0 when the
            # denominator is 0, as PyTorch's gradient of an all-ignored mean
            return None if d is None else np.where(d == 0, 0.0, d * scale)
        return value, scaled(grad_rows), scaled(hess_rows)


def _xlogy(q, logp):
    """q * logp with 0 where q == 0."""
    with np.errstate(invalid="ignore"):
        return np.where(q == 0, 0.0, q * logp)


def _targets(target, shape, n_rows, C, weight, ignore_index, label_smoothing):
    """Target weights q (rows x C), row mask of used rows, and the weighted-mean
    denominator, for integer labels or class probabilities."""
    w = np.ones(C) if weight is None else np.asarray(weight, dtype=np.float64)
    t = np.asarray(target)
    eps = float(label_smoothing)
    if t.shape == tuple(shape):  # class probabilities
        tr, _, _ = _rows(t)
        q = w[None, :] * ((1 - eps) * tr + eps / C)
        return q, np.ones(n_rows, bool), float(n_rows), None
    y = t.reshape(-1).astype(np.int64)
    used = y != ignore_index
    if np.any((y[used] < 0) | (y[used] >= C)):
        raise ValueError("reference: label out of range")
    onehot = np.zeros((n_rows, C))
    onehot[np.arange(n_rows)[used], y[used]] = 1.0
    q = w[None, :] * ((1 - eps) * onehot + eps / C)
    q[~used] = 0.0
    denom = float(w[y[used]].sum())
    return q, used, denom, y


# ------------------------------------------------------------------ cross-entropy

def _ce_parts(input, target, weight, ignore_index, label_smoothing):
    z, shape, back = _rows(input)
    R, C = z.shape
    q, used, denom, _ = _targets(target, shape, R, C, weight, ignore_index, label_smoothing)
    return z, shape, back, q, used, denom


def cross_entropy(input, target, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
    """-sum_c q_c log softmax(z)_c per row, q = w * ((1 - eps) onehot + eps / C)."""
    z, shape, back, q, used, denom = _ce_parts(input, target, weight, ignore_index, label_smoothing)
    p, omp, logp = _softmax_parts(z)
    loss = -_xlogy(q, logp).sum(axis=1)
    grad = _sum_others(q) * p - q * omp            # = M p - q, M = sum_c q_c
    value, grad, _ = _reduce(loss, grad, None, denom, reduction, _item_shape(shape))
    return value, back(grad)


def _ce_hessian(M, p, omp):
    """M (diag p - p p^T), with the diagonal written p (1 - p)."""
    H = -M * np.outer(p, p)
    H[np.diag_indices(len(p))] = M * p * omp
    return H


def cross_entropy_hess(input, target, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
    """Diagonal of sum_c q_c * Hessian(logsumexp) = M (diag p - p p^T)."""
    z, shape, back, q, used, denom = _ce_parts(input, target, weight, ignore_index, label_smoothing)
    p, omp, _ = _softmax_parts(z)
    M = q.sum(axis=1)
    hess = np.stack([np.diag(_ce_hessian(M[r], p[r], omp[r])) for r in range(len(p))]) \
        if len(p) else np.zeros_like(p)
    _, _, hess = _reduce(np.zeros(len(p)), hess, hess, denom, reduction, _item_shape(shape))
    return back(hess)


def cross_entropy_hvp(input, target, v, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
    """H v with the full per-row Hessian M (diag p - p p^T)."""
    z, shape, back, q, used, denom = _ce_parts(input, target, weight, ignore_index, label_smoothing)
    vr, _, _ = _rows(v)
    p, omp, _ = _softmax_parts(z)
    M = q.sum(axis=1)
    out = np.zeros_like(z)
    for r in range(len(p)):
        out[r] = _ce_hessian(M[r], p[r], omp[r]) @ vr[r]
    _, _, out = _reduce(np.zeros(len(p)), out, out, denom, reduction, _item_shape(shape))
    return back(out)


# ------------------------------------------------------------------ Poly-1

def _poly_parts(input, target, weight, ignore_index, label_smoothing):
    return _ce_parts(input, target, weight, ignore_index, label_smoothing)


def poly1_cross_entropy(input, target, epsilon=2.0, weight=None, ignore_index=-100, label_smoothing=0.0,
                        reduction="mean"):
    """Cross-entropy + epsilon * sum_c q_c (1 - p_c) (Leng et al. 2022; optax's poly_loss_cross_entropy)."""
    z, shape, back, q, used, denom = _poly_parts(input, target, weight, ignore_index, label_smoothing)
    p, omp, logp = _softmax_parts(z)
    loss = -_xlogy(q, logp).sum(axis=1) + epsilon * (q * omp).sum(axis=1)
    grad = _sum_others(q) * p - q * omp            # = M p - q
    # d/dz_k sum_c q_c (1 - p_c) = -(J^T q)_k, J[c, k] = d p_c / d z_k = p_c (delta_ck - p_k),
    # (J^T q)_k = p_k (q_k - q.p) = p_k (q_k (1 - p_k) - sum_{j != k} q_j p_j)
    grad += -epsilon * p * (q * omp - _sum_others(q * p))
    value, grad, _ = _reduce(loss, grad, None, denom, reduction, _item_shape(shape))
    return value, back(grad)


def poly1_cross_entropy_hess(input, target, epsilon=2.0, weight=None, ignore_index=-100, label_smoothing=0.0,
                             reduction="mean"):
    """Diagonal Hessian: M p (1 - p) - epsilon sum_c q_c d^2 p_c / d z_k^2,
    d^2 p_c / d z_k^2 = p_c ((delta_ck - p_k)^2 - p_k (1 - p_k))."""
    z, shape, back, q, used, denom = _poly_parts(input, target, weight, ignore_index, label_smoothing)
    p, omp, _ = _softmax_parts(z)
    R, C = p.shape
    M = q.sum(axis=1, keepdims=True)
    hess = M * p * omp
    eye = np.eye(C)
    for r in range(R):
        diff = eye - p[r][None, :]                 # delta_ck - p_k, with 1 - p_k on the diagonal
        diff[np.diag_indices(C)] = omp[r]
        d2 = p[r][:, None] * (diff ** 2 - (p[r] * omp[r])[None, :])  # [c, k]
        hess[r] += -epsilon * (q[r] @ d2)
    _, _, hess = _reduce(np.zeros(R), hess, hess, denom, reduction, _item_shape(shape))
    return back(hess)


# ------------------------------------------------------------------ NLL

def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """-w_y input_y per row (input holds log-probabilities)."""
    z, shape, back = _rows(input)
    R, C = z.shape
    w = np.ones(C) if weight is None else np.asarray(weight, dtype=np.float64)
    y = np.asarray(target).reshape(-1).astype(np.int64)
    used = y != ignore_index
    loss = np.zeros(R)
    grad = np.zeros_like(z)
    for r in np.flatnonzero(used):
        loss[r] = -w[y[r]] * z[r, y[r]] if w[y[r]] != 0 else 0.0
        grad[r, y[r]] = -w[y[r]]
    denom = float(w[y[used]].sum())
    value, grad, _ = _reduce(loss, grad, None, denom, reduction, _item_shape(shape))
    return value, back(grad)


def nll_loss_hess(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """NLL is linear in input: the Hessian is 0."""
    return np.zeros(np.shape(input))


# ------------------------------------------------------------------ focal

def _focal_parts(input, target, alpha, ignore_index):
    z, shape, back = _rows(input)
    R, C = z.shape
    y = np.asarray(target).reshape(-1).astype(np.int64)
    used = y != ignore_index
    if alpha is None:
        a = np.ones(C)
    else:
        a = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (C,))
    return z, shape, back, y, used, a


def softmax_focal_loss(input, target, alpha=None, gamma=2.0, ignore_index=-100, reduction="mean"):
    """-alpha_y (1 - p_y)^gamma log p_y per row (Lin et al. 2017, multi-class form);
    the mean divides by the number of targets that are not ignored."""
    z, shape, back, y, used, a = _focal_parts(input, target, alpha, ignore_index)
    p, omp, logp = _softmax_parts(z)
    loss = np.zeros(len(z))
    grad = np.zeros_like(z)
    for r in np.flatnonzero(used):
        k = y[r]
        pk, u = p[r, k], omp[r, k]
        loss[r] = -a[k] * u ** gamma * logp[r, k]
        # dF/dp for F(p) = -(1 - p)^gamma log p, and dp_y/dz = p_y (e_y - p)
        dF = gamma * u ** (gamma - 1) * logp[r, k] - u ** gamma / pk if gamma != 0 else -1 / pk
        ek_p = -p[r]
        ek_p[k] = u                                  # e_y - p, with 1 - p_y exact
        grad[r] = a[k] * dF * pk * ek_p
    value, grad, _ = _reduce(loss, grad, None, float(used.sum()), reduction, _item_shape(shape))
    return value, back(grad)


def softmax_focal_loss_hess(input, target, alpha=None, gamma=2.0, ignore_index=-100, reduction="mean",
                            return_scale=False):
    """alpha [F''(p) (dp/dz_k)^2 + F'(p) d^2 p / dz_k^2] with p = p_y.

    The two terms cancel where the Hessian crosses 0 (and for small p);
    ``return_scale=True`` also returns alpha [|F''| (dp/dz)^2 + |F'| |d^2 p/dz^2|],
    the size of the terms, which is what a rounding error is relative to."""
    z, shape, back, y, used, a = _focal_parts(input, target, alpha, ignore_index)
    p, omp, logp = _softmax_parts(z)
    R, C = z.shape
    hess = np.zeros_like(z)
    scale = np.zeros_like(z)
    for r in np.flatnonzero(used):
        k = y[r]
        pk, u = p[r, k], omp[r, k]
        lg = logp[r, k]
        F1 = (gamma * u ** (gamma - 1) * lg if gamma != 0 else 0.0) - u ** gamma / pk
        F2 = (-gamma * (gamma - 1) * u ** (gamma - 2) * lg if gamma not in (0, 1) else 0.0) \
            + (2 * gamma * u ** (gamma - 1) / pk if gamma != 0 else 0.0) + u ** gamma / pk ** 2
        ek_p = -p[r]
        ek_p[k] = u                                         # e_y - p, with 1 - p_y exact
        dp = pk * ek_p                                      # d p_y / d z_j
        d2p = pk * (ek_p ** 2 - p[r] * omp[r])              # d^2 p_y / d z_j^2
        hess[r] = a[k] * (F2 * dp ** 2 + F1 * d2p)
        scale[r] = abs(a[k]) * (abs(F2) * dp ** 2 + abs(F1 * d2p))
    _, _, hess = _reduce(np.zeros(R), hess, hess, float(used.sum()), reduction, _item_shape(shape))
    if return_scale:
        _, _, scale = _reduce(np.zeros(R), scale, scale, float(used.sum()), reduction, _item_shape(shape))
        return back(hess), back(scale)
    return back(hess)


# ------------------------------------------------------------------ multi-margin

def _mm(input, target, p, margin, weight):
    z, shape, back = _rows(input)
    R, C = z.shape
    w = np.ones(C) if weight is None else np.asarray(weight, dtype=np.float64)
    y = np.asarray(target).reshape(-1).astype(np.int64)
    loss = np.zeros(R)
    grad = np.zeros_like(z)
    hess = np.zeros_like(z)
    for r in range(R):
        k = y[r]
        for c in range(C):
            if c == k:
                continue
            h = margin - z[r, k] + z[r, c]
            if h > 0:
                loss[r] += w[k] * h ** p / C
                d = w[k] * p * h ** (p - 1) / C
                grad[r, c] += d
                grad[r, k] -= d
                if p == 2:
                    hess[r, c] += 2 * w[k] / C
                    hess[r, k] += 2 * w[k] / C
    return loss, grad, hess, shape, back, R


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, reduction="mean"):
    """w_y / C sum_{c != y} max(0, margin - z_y + z_c)^p (PyTorch); mean over rows."""
    loss, grad, _, shape, back, R = _mm(input, target, p, margin, weight)
    value, grad, _ = _reduce(loss, grad, None, float(R), reduction, _item_shape(shape))
    return value, back(grad)


def multi_margin_loss_hess(input, target, p=1, margin=1.0, weight=None, reduction="mean"):
    loss, _, hess, shape, back, R = _mm(input, target, p, margin, weight)
    _, _, hess = _reduce(loss, hess, hess, float(R), reduction, _item_shape(shape))
    return back(hess)


# ------------------------------------------------------------------ multilabel soft margin

def _mlsm(input, target, weight):
    x = np.asarray(input, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    C = x.shape[-1]
    w = np.ones(C) if weight is None else np.asarray(weight, dtype=np.float64)
    sig = 1 / (1 + np.exp(-x))
    # -(y log sigmoid(x) + (1 - y) log sigmoid(-x)) = y softplus(-x) + (1 - y) softplus(x)
    with np.errstate(invalid="ignore"):
        term = np.where(y == 0, 0.0, y * np.logaddexp(0, -x)) + np.where(y == 1, 0.0, (1 - y) * np.logaddexp(0, x))
    loss = (w * term).sum(axis=-1) / C
    grad = w * (sig - y) / C
    hess = w * sig * (1 - sig) / C
    return loss, grad, hess, x


def multilabel_soft_margin_loss(input, target, weight=None, reduction="mean"):
    """1/C sum_c w_c [-y_c log sigmoid(x_c) - (1 - y_c) log sigmoid(-x_c)] per row (PyTorch)."""
    loss, grad, _, x = _mlsm(input, target, weight)
    n = loss.size
    value, grad, _ = _reduce(loss.reshape(-1), grad, None, float(n), reduction, loss.shape)
    return value, grad


def multilabel_soft_margin_loss_hess(input, target, weight=None, reduction="mean"):
    loss, _, hess, x = _mlsm(input, target, weight)
    _, _, hess = _reduce(loss.reshape(-1), hess, hess, float(loss.size), reduction, loss.shape)
    return hess
