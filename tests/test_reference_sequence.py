"""The CTC reference is right.

1. Against brute force: for tiny T and C every one of the C^T paths is
   enumerated, collapsed (repeats merged, blanks dropped) and its
   probability summed -- no recursion at all.  Value and gradient (the
   gradient of -log p with respect to log_probs[t, k] is minus the share of
   p carried by the paths with pi_t = k).
2. Its gradient equals fourth-order central finite differences of its
   value, for log-probabilities and logits, every reduction, batch-first.
3. Hand-counted cases.
"""
import itertools

import numpy as np
import pytest

from fastloss.reference import sequence as R
from _numdiff import central_diff4  # tests/_numdiff.py (pytest puts tests/ on sys.path)

H = 1e-3


def _collapse(path, blank):
    out, prev = [], None
    for k in path:
        if k != prev and k != blank:
            out.append(k)
        prev = k
    return out


def brute(lp, labels, blank):
    """(-log p, gradient) of one (T, C) sequence by enumerating every path."""
    T, C = lp.shape
    p = 0.0
    occ = np.zeros_like(lp)
    for path in itertools.product(range(C), repeat=T):
        if _collapse(path, blank) == list(labels):
            w = np.exp(sum(lp[t, k] for t, k in enumerate(path)))
            p += w
            for t, k in enumerate(path):
                occ[t, k] += w
    if p == 0:
        return np.inf, np.zeros_like(lp)
    return -np.log(p), -occ / p


CASES = [
    # (T, C, labels, blank)
    (4, 3, [1, 2], 0),
    (5, 3, [1, 1], 0),          # a repeat needs a blank between
    (3, 3, [1, 1], 0),          # exactly the minimum length
    (4, 3, [], 0),              # empty target: all blanks
    (3, 3, [2, 1, 2], 0),       # T = S
    (5, 4, [0, 2, 0], 3),       # blank != 0, label 0 used
    (2, 3, [1, 1], 0),          # infeasible: inf
    (1, 2, [1], 0),
]


@pytest.mark.parametrize("T,C,labels,blank", CASES, ids=[str(c) for c in CASES])
def test_reference_equals_brute_force(T, C, labels, blank):
    rng = np.random.default_rng(T * 100 + C)
    z = rng.normal(0, 1.5, (T, C))
    lp = z - np.log(np.exp(z).sum(1, keepdims=True))
    v_b, g_b = brute(lp, labels, blank)
    v, g = R.ctc_loss(lp, np.array(labels, dtype=np.int64), T, len(labels), blank=blank, reduction="sum")
    if np.isinf(v_b):
        assert v == np.inf and np.all(g == 0)
    else:
        assert v == pytest.approx(v_b, rel=1e-12)
        np.testing.assert_allclose(g, g_b, rtol=1e-10, atol=1e-14)


def test_uniform_count():
    """(1/3)^4 uniform: 15 paths of length 4 collapse to (1, 2)."""
    lp = np.log(np.full((4, 3), 1 / 3))
    v, _ = R.ctc_loss(lp, np.array([1, 2]), 4, 2, reduction="sum")
    assert v == pytest.approx(np.log(81 / 15), rel=1e-14)


def test_neg_inf_on_unused_class_is_finite():
    rng = np.random.default_rng(3)
    z = rng.normal(0, 1, (5, 4))
    z[:, 3] = -np.inf
    lp = z - np.log(np.exp(z).sum(1, keepdims=True))
    v, g = R.ctc_loss(lp, np.array([1, 2]), 5, 2, reduction="sum")
    assert np.isfinite(v) and np.all(np.isfinite(g)) and np.all(g[:, 3] == 0)


def fd_grad(f, x, h=H):
    return central_diff4(f, x, h)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("from_logits", [False, True], ids=["logp", "logits"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["TNC", "NTC"])
def test_reference_gradient_is_finite_differences(reduction, from_logits, batch_first):
    rng = np.random.default_rng(7)
    T, N, C = 6, 3, 4
    x = rng.normal(0, 1, (T, N, C))
    if not from_logits:
        x = x - np.log(np.exp(x).sum(2, keepdims=True))
    if batch_first:
        x = np.ascontiguousarray(x.transpose(1, 0, 2))
    tg = np.array([[1, 1, 2], [3, 0, 0], [2, 3, 1]])
    il, tl = np.array([6, 4, 5]), np.array([3, 1, 2])
    kw = dict(reduction=reduction, from_logits=from_logits, batch_first=batch_first, blank=0,
              weight=np.array([0.5, 2.0, 1.0]) if batch_first else None)

    def f(a):
        v = R.ctc_loss(a, tg, il, tl, **kw)[0]
        return float(np.sum(v))

    _, g = R.ctc_loss(x, tg, il, tl, **kw)
    np.testing.assert_allclose(g, fd_grad(f, x.copy()), rtol=1e-7, atol=1e-9)


def test_reference_concatenated_equals_padded():
    rng = np.random.default_rng(11)
    x = rng.normal(0, 1, (7, 3, 5))
    tg = np.array([[1, 2, 3], [4, 0, 0], [2, 2, 0]])
    tl = np.array([3, 1, 2])
    cat = np.concatenate([tg[n, :tl[n]] for n in range(3)])
    a = R.ctc_loss(x, tg, [7, 6, 5], tl, reduction="none", from_logits=True)
    b = R.ctc_loss(x, cat, [7, 6, 5], tl, reduction="none", from_logits=True)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
