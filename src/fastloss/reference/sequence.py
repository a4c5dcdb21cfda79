"""Reference sequence losses: plain NumPy, float64, from the definitions.

CTC (Graves et al., ICML 2006; Graves, *Supervised Sequence Labelling*,
2012, ch. 7) by the textbook forward-backward recursion in log space over
the extended label sequence ``l' = (blank, l_1, blank, l_2, ..., l_S,
blank)`` of ``2 S + 1`` states:

    alpha_t(s) = y_t(l'_s) * (alpha_{t-1}(s) + alpha_{t-1}(s-1) [+ alpha_{t-1}(s-2)])
    beta_t(s)  = sum over s' in {s, s+1 [, s+2]} of y_{t+1}(l'_{s'}) beta_{t+1}(s')
    p(l | x)   = alpha_{T-1}(2S) + alpha_{T-1}(2S-1)

with ``y_t(k) = exp(log_probs[t, k])``; the skip term (from ``s - 2``) is
allowed when ``l'_s`` is a label that differs from ``l'_{s-2}``.  ``beta``
here excludes the emission at ``t`` (the book's convention), so
``alpha_t(s) beta_t(s)`` is the total probability of the alignments that
are in state ``s`` at time ``t``, and

    d(-log p) / d log_probs[t, k] = -sum over s with l'_s = k of alpha_t(s) beta_t(s) / p

(the exact gradient with respect to the log-probabilities: zero on classes
the target does not use).  Every table is kept whole, every sum is
``np.logaddexp``: slow and obvious on purpose.  Nothing here is shared with
the kernels.
"""
from __future__ import annotations

import numpy as np

__all__ = ["ctc_loss"]

NEG = -np.inf


def _lse(*terms):
    """log(sum(exp(terms))): -inf for no terms or all -inf, NaN if any is NaN."""
    out = NEG
    for v in terms:
        out = np.logaddexp(out, v)
    return out


def _one(lp, labels, blank):
    """(-log p, d(-log p)/d lp) of one sequence; lp is (T_n, C) float64."""
    Tn, C = lp.shape
    ext = [blank]
    for k in labels:
        ext += [int(k), blank]
    L = len(ext)
    grad = np.zeros_like(lp)
    if Tn == 0:
        return (0.0 if L == 1 else np.inf), grad

    def skip(s):
        return s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]

    alpha = np.full((Tn, L), NEG)
    alpha[0, 0] = lp[0, ext[0]]
    if L > 1:
        alpha[0, 1] = lp[0, ext[1]]
    for t in range(1, Tn):
        for s in range(L):
            prev = [alpha[t - 1, s]]
            if s >= 1:
                prev.append(alpha[t - 1, s - 1])
            if skip(s):
                prev.append(alpha[t - 1, s - 2])
            alpha[t, s] = lp[t, ext[s]] + _lse(*prev)

    beta = np.full((Tn, L), NEG)
    beta[Tn - 1, L - 1] = 0.0
    if L > 1:
        beta[Tn - 1, L - 2] = 0.0
    for t in range(Tn - 2, -1, -1):
        for s in range(L):
            nxt = [lp[t + 1, ext[s]] + beta[t + 1, s]]
            if s + 1 < L:
                nxt.append(lp[t + 1, ext[s + 1]] + beta[t + 1, s + 1])
            if s + 2 < L and skip(s + 2):
                nxt.append(lp[t + 1, ext[s + 2]] + beta[t + 1, s + 2])
            beta[t, s] = _lse(*nxt)

    logp = _lse(alpha[Tn - 1, L - 1], *([alpha[Tn - 1, L - 2]] if L > 1 else []))
    if logp == NEG:
        return np.inf, grad          # no alignment: the gradient is taken as 0
    for t in range(Tn):
        for s in range(L):
            grad[t, ext[s]] -= np.exp(alpha[t, s] + beta[t, s] - logp)
    return -logp, grad


def _split_targets(targets, target_lengths, N):
    t = np.asarray(targets)
    tl = [int(v) for v in np.asarray(target_lengths).reshape(-1)]
    if t.ndim == 2:
        return [t[n, :tl[n]] for n in range(N)], tl
    out, pos = [], 0
    for n in range(N):
        out.append(t[pos:pos + tl[n]])
        pos += tl[n]
    return out, tl


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False, *, weight=None, from_logits=False, batch_first=False):
    """Connectionist temporal classification loss and its exact gradient.

    ``log_probs`` is ``(T, N, C)`` (``(N, T, C)`` with ``batch_first``) or
    ``(T, C)``; with ``from_logits`` it holds logits and the loss is that of
    their log_softmax over C (the gradient then with respect to the logits).
    ``weight`` (N,) multiplies each sample's loss; the weighted mean
    divides by ``sum(weight)``.
    ``targets`` is ``(N, S)`` padded or the concatenation of the targets.
    Returns ``(value, grad)``: ``reduction="none"`` gives the per-sample
    losses (a 0-d array for unbatched input) and the gradient of their sum;
    ``"mean"`` divides each loss by its target length (at least 1) and
    averages over the batch; ``"sum"`` adds them.  An infeasible target
    gives ``inf`` (0 with ``zero_infinity``) and a zero gradient.
    """
    x = np.array(log_probs, dtype=np.float64)
    unbatched = x.ndim == 2
    if unbatched:
        x = x[:, None, :]
        targets = np.asarray(targets).reshape(1, -1)
    elif batch_first:
        x = x.transpose(1, 0, 2)
    T, N, C = x.shape
    il = [int(v) for v in np.asarray(input_lengths).reshape(-1)]
    labels, tl = _split_targets(targets, target_lengths, N)
    if from_logits:
        m = np.max(x, axis=2, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)
        lp = x - (m + np.log(np.sum(np.exp(x - m), axis=2, keepdims=True)))
    else:
        lp = x
    losses = np.zeros(N)
    grad = np.zeros_like(x)
    for n in range(N):
        v, g = _one(lp[:il[n], n, :], labels[n], blank)
        if zero_infinity and v == np.inf:
            v, g = 0.0, np.zeros_like(g)
        losses[n] = v
        grad[:il[n], n, :] = g
    w = np.ones(N) if weight is None else np.asarray(weight, dtype=np.float64).reshape(N)
    for n in range(N):
        if w[n] == 0:
            losses[n], grad[:, n, :] = 0.0, 0.0    # weight 0: no contribution, even from inf
        else:
            losses[n] *= w[n]
            grad[:, n, :] *= w[n]
    if reduction == "mean":
        div = np.maximum(np.asarray(tl, dtype=np.float64), 1.0)
        value = float(np.sum(losses / div) / np.sum(w)) if N else float("nan")
        grad = grad / (div * np.sum(w))[None, :, None]
    elif reduction == "sum":
        value = float(np.sum(losses))
    else:
        value = losses[0].copy().reshape(()) if unbatched else losses
    if from_logits:
        sm = np.exp(lp)
        live = (np.arange(T)[:, None] < np.asarray(il)[None, :])[:, :, None]
        grad = np.where(live, grad - sm * grad.sum(axis=2, keepdims=True), 0.0)
    if unbatched:
        grad = grad[:, 0, :]
    elif batch_first:
        grad = grad.transpose(1, 0, 2)
    return value, grad
