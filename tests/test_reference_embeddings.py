"""The reference embedding losses (fastloss.reference.embeddings) against
central finite differences: the gradient each returns is the derivative of
the value it returns, for every operand, reduction and option.  Data are
drawn away from the kinks (hinges at 0, mining ties) so that a step of 1e-6
does not cross one."""
import numpy as np
import pytest

from fastloss import reference as R
from _numdiff import central_diff  # tests/_numdiff.py (pytest puts tests/ on sys.path)


_fd = central_diff


def _check(loss, arrays, n_grad, kw, rtol=1e-6, atol=1e-8):
    res = loss(*arrays, **kw)
    red = kw.get("reduction", "mean")

    def scalar(*a):
        v = loss(*a, **kw)[0]
        return float(np.sum(v)) if red == "none" else v

    for k in range(n_grad):
        np.testing.assert_allclose(res[1 + k], _fd(scalar, [a.copy() if isinstance(a, np.ndarray) else a
                                                          for a in arrays], k),
                                   rtol=rtol, atol=atol, err_msg=f"{loss.__name__} grad {k} {kw}")


def _away(rng, shape, n):
    return [rng.normal(0, 1, shape) for _ in range(n)]


RED = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", RED)
@pytest.mark.parametrize("p,swap", [(2, False), (2, True), (1, False), (3, True), (1.5, False)])
def test_triplet(reduction, p, swap):
    rng = np.random.default_rng(1)
    a, pos, neg = _away(rng, (5, 4), 3)
    w = rng.uniform(0.5, 2, 5)
    _check(R.triplet_margin_loss, [a, pos, neg], 3,
           dict(margin=1.5, p=p, swap=swap, weight=w, reduction=reduction))


@pytest.mark.parametrize("reduction", RED)
@pytest.mark.parametrize("distance", ["euclidean", "squared_euclidean", "cosine"])
def test_triplet_distance(reduction, distance):
    rng = np.random.default_rng(2)
    a, pos, neg = _away(rng, (6, 3), 3)
    _check(R.triplet_margin_with_distance_loss, [a, pos, neg], 3,
           dict(distance=distance, margin=1.0, swap=True, reduction=reduction))


def test_triplet_unbatched():
    rng = np.random.default_rng(3)
    a, pos, neg = _away(rng, (4,), 3)
    _check(R.triplet_margin_loss, [a, pos, neg], 3, dict(margin=3.0, reduction="none"))


@pytest.mark.parametrize("reduction", RED)
def test_cosine_embedding(reduction):
    rng = np.random.default_rng(4)
    x, y = _away(rng, (8, 3), 2)
    t = np.array([1, -1] * 4, dtype=float)
    _check(R.cosine_embedding_loss, [x, y, t], 2, dict(margin=-0.9, reduction=reduction))


@pytest.mark.parametrize("reduction", RED)
def test_margin_ranking_and_hinge_embedding(reduction):
    rng = np.random.default_rng(5)
    x1, x2 = _away(rng, (7,), 2)
    x2 = x1 + np.where(rng.random(7) < 0.5, -1, 1) * rng.uniform(0.3, 1, 7)  # away from the kink
    t = np.where(rng.random(7) < 0.5, -1.0, 1.0)
    _check(R.margin_ranking_loss, [x1, x2, t], 2, dict(margin=0.1, reduction=reduction))
    x = np.array([0.2, 2.0, 0.5, -1.0, 3.0])
    _check(R.hinge_embedding_loss, [x, np.array([1.0, -1, -1, -1, 1])], 1, dict(margin=1.0, reduction=reduction))


@pytest.mark.parametrize("reduction", RED)
@pytest.mark.parametrize("p", [2, 1, 3])
@pytest.mark.parametrize("similar_label", [1, 0])
def test_contrastive(reduction, p, similar_label):
    rng = np.random.default_rng(6)
    x, y = _away(rng, (8, 3), 2)
    t = np.array([1, 0] * 4, dtype=float)
    _check(R.contrastive_loss, [x, y, t], 2,
           dict(margin=3.0, p=p, similar_label=similar_label, reduction=reduction))


@pytest.mark.parametrize("reduction", RED)
def test_cosine_distance(reduction):
    rng = np.random.default_rng(7)
    x, y = _away(rng, (5, 4), 2)
    _check(R.cosine_distance_loss, [x, y], 2, dict(reduction=reduction))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("distance", ["euclidean", "squared_euclidean", "cosine"])
@pytest.mark.parametrize("loss,kw", [
    (R.batch_hard_triplet_loss, {"margin": 1.0}),
    (R.batch_hard_triplet_loss, {"soft": True}),
    (R.batch_all_triplet_loss, {"margin": 1.0}),
], ids=["hard", "hard-soft", "all"])
def test_batch_triplets(reduction, distance, loss, kw):
    rng = np.random.default_rng(8)
    E = rng.normal(0, 1, (9, 3))
    lab = np.array([0, 1, 2] * 3)
    w = rng.uniform(0.5, 2, 9)
    _check(loss, [E, lab], 1, dict(distance=distance, weight=w, reduction=reduction, **kw))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("labels", ["given", None])
def test_nt_xent(reduction, labels):
    rng = np.random.default_rng(9)
    E = rng.normal(0, 1, (8, 3))
    lab = np.array([0, 0, 1, 1, 2, 2, 2, 3]) if labels else None
    _check(R.nt_xent_loss, [E, lab], 1, dict(temperature=0.3, weight=rng.uniform(0.5, 2, 8), reduction=reduction))
