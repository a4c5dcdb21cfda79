"""Every error of the embedding losses: the operation, what was expected,
what was received; ValueError for bad values and shapes, TypeError for bad
types.  Nothing is computed (or written) before the arguments are known to
be good, except a bad target, which the kernel finds in its own pass."""
import re

import numpy as np
import pytest

import fastloss as fl

X = np.zeros((4, 3))
T3 = (X, X + 1, X + 2)


def _raises(exc, msg, fn, *args, **kw):
    with pytest.raises(exc, match=msg):
        fn(*args, **kw)


# ------------------------------------------------------------------ shapes and arrays

@pytest.mark.parametrize("fn,ops,kw", [
    (fl.triplet_margin_loss, 3, {}),
    (fl.triplet_margin_with_distance_loss, 3, {}),
    (fl.cosine_distance_loss, 2, {}),
], ids=["triplet", "twd", "cosine_distance"])
def test_row_shapes(fn, ops, kw):
    op = fn.__name__
    first = {3: "anchor", 2: "input"}[ops]
    second = {3: "positive", 2: "target"}[ops]
    _raises(ValueError, f"^{op}: {first} must have at least 1 dimension \\(the features\\), got a 0-d array",
            fn, *[np.float64(1.0)] * ops, **kw)
    _raises(ValueError, rf"^{op}: {first} must have at least one feature \(last axis\), got shape \(4, 0\)",
            fn, *[np.zeros((4, 0))] * ops, **kw)
    args = [X] * ops
    args[1] = np.zeros((4, 2))
    _raises(ValueError, rf"^{op}: {second} must have the same shape as {first}, got {first}: \(4, 3\) and "
            rf"{second}: \(4, 2\)", fn, *args, **kw)
    _raises(TypeError, f"^{op}: {first} must be a real", fn, *[X.astype(complex)] * ops, **kw)
    _raises(ValueError, rf"^{op}: weight of shape \(3,\) cannot be broadcast to the input's shape \(4,\)",
            fn, *[X] * ops, weight=np.ones(3), **kw)
    _raises(ValueError, f"^{op}: reduction must be one of 'mean', 'sum', 'none', got 'avg'",
            fn, *[X] * ops, reduction="avg", **kw)
    _raises(ValueError, f"^{op}: n_threads must be a positive integer or None, got 0", fn, *[X] * ops,
            n_threads=0, **kw)


def test_cosine_embedding_shapes_and_target():
    op = "cosine_embedding_loss"
    t = np.ones(4)
    _raises(ValueError, rf"^{op}: input1 must have shape \(D,\) or \(N, D\), got \(2, 4, 3\)",
            fl.cosine_embedding_loss, np.zeros((2, 4, 3)), np.zeros((2, 4, 3)), np.ones((2, 4)))
    _raises(ValueError, rf"^{op}: target must have shape \(4,\) \(one value per row\), got \(4, 1\)",
            fl.cosine_embedding_loss, X, X, np.ones((4, 1)))
    _raises(ValueError, rf"^{op}: target must have shape \(\) \(one value per row\), got \(1,\)",
            fl.cosine_embedding_loss, X[0], X[0], np.ones(1))
    bad = t.copy()
    bad[2] = 0.0
    _raises(ValueError, rf"^{op}: target must contain only -1 and 1, got target\[2\] = 0.0",
            fl.cosine_embedding_loss, X + 1, X + 2, bad)
    _raises(ValueError, rf"^{op}: target must contain only -1 and 1, got target = 2.0",
            fl.cosine_embedding_loss, X[0] + 1, X[0], np.array(2))


def test_contrastive_target_and_params():
    op = "contrastive_loss"
    t = np.array([0, 1, 1, -1])
    _raises(ValueError, rf"^{op}: target must contain only 0 and 1, got target\[3\] = -1.0",
            fl.contrastive_loss, X, X + 1, t)
    _raises(ValueError, rf"^{op}: similar_label must be 1 or 0 \(the target value of a similar pair\), got 2",
            fl.contrastive_loss, X, X, np.ones(4), similar_label=2)
    _raises(ValueError, rf"^{op}: similar_label must be 1 or 0 .*, got True",
            fl.contrastive_loss, X, X, np.ones(4), similar_label=True)
    _raises(ValueError, f"^{op}: margin must be >= 0, got -1", fl.contrastive_loss, X, X, np.ones(4), margin=-1)
    _raises(ValueError, f"^{op}: p must be a finite number >= 1, got 0.5", fl.contrastive_loss, X, X, np.ones(4),
            p=0.5)
    _raises(ValueError, rf"^ContrastiveLoss: similar_label must be 1 or 0", fl.ContrastiveLoss, similar_label=-1)


@pytest.mark.parametrize("p", [0.5, 0, -2, float("inf")])
def test_triplet_p(p):
    _raises(ValueError, f"^triplet_margin_loss: p must be a finite number >= 1, got {re.escape(str(p))}",
            fl.triplet_margin_loss, *T3, p=p)
    _raises(ValueError, f"^TripletMarginLoss: p must be a finite number >= 1", fl.TripletMarginLoss, p=p)


def test_triplet_params():
    op = "triplet_margin_loss"
    for m in (0, -1.0):
        _raises(ValueError, f"^{op}: margin must be greater than 0, got {m}", fl.triplet_margin_loss, *T3, margin=m)
        _raises(ValueError, f"^triplet_margin_with_distance_loss: margin must be greater than 0, got {m}",
                fl.triplet_margin_with_distance_loss, *T3, margin=m)
    _raises(ValueError, f"^{op}: margin must not be NaN", fl.triplet_margin_loss, *T3, margin=float("nan"))
    _raises(TypeError, f"^{op}: margin must be a real number, got str", fl.triplet_margin_loss, *T3, margin="1")
    _raises(ValueError, f"^{op}: eps must be finite, got inf", fl.triplet_margin_loss, *T3, eps=float("inf"))
    _raises(TypeError, f"^{op}: swap must be True or False, got 1", fl.triplet_margin_loss, *T3, swap=1)
    _raises(TypeError, f"^{op}: size_average must be True, False or None, got 1", fl.triplet_margin_loss, *T3,
            size_average=1)
    _raises(ValueError, "^TripletMarginLoss: margin must be greater than 0, got 0", fl.TripletMarginLoss, 0)
    _raises(ValueError, "^TripletMarginLoss: reduction must be one of", fl.TripletMarginLoss, reduction="max")
    _raises(ValueError, "^TripletMarginLoss: n_threads must be a positive integer", fl.TripletMarginLoss,
            n_threads=-1)


def test_triplet_with_distance_names():
    op = "triplet_margin_with_distance_loss"
    _raises(TypeError, f"^{op}: distance_function must be None or the name of a distance .*cannot call a Python "
            f"function, got <function", fl.triplet_margin_with_distance_loss, *T3,
            distance_function=lambda x, y: x)
    _raises(ValueError, f"^{op}: distance must be one of 'euclidean', 'squared_euclidean', 'cosine', got "
            f"'manhattan'", fl.triplet_margin_with_distance_loss, *T3, distance="manhattan")
    _raises(ValueError, f"^{op}: distance must be one of .*, got 'l1'", fl.triplet_margin_with_distance_loss, *T3,
            distance_function="l1")
    _raises(ValueError, f"^{op}: distance_function='cosine' and distance='squared_euclidean' disagree",
            fl.triplet_margin_with_distance_loss, *T3, distance_function="cosine", distance="squared_euclidean")
    _raises(TypeError, "^TripletMarginWithDistanceLoss: distance_function must be None",
            fl.TripletMarginWithDistanceLoss, distance_function=abs)


def test_cosine_distance_eps():
    _raises(ValueError, "^cosine_distance_loss: eps must be >= 0, got -1", fl.cosine_distance_loss, X, X, -1)
    _raises(ValueError, "^CosineDistanceLoss: eps must be >= 0, got -1", fl.CosineDistanceLoss, -1)


# ------------------------------------------------------------------ out=

def test_row_out_buffers():
    op = "triplet_margin_loss"
    g = [np.empty((4, 3)) for _ in range(3)]
    _raises(ValueError, f"^{op}: out= is the gradients' buffers; pass return_grad=True with it",
            fl.triplet_margin_loss, *T3, out=tuple(g))
    _raises(ValueError, rf"^{op}: out must be a tuple of 3 arrays, the gradients' buffers \(anchor, positive, "
            rf"negative\), got ndarray", fl.triplet_margin_loss, *T3, return_grad=True, out=g[0])
    _raises(ValueError, rf"^{op}: out must be a tuple of 3 arrays.*got tuple of length 2",
            fl.triplet_margin_loss, *T3, return_grad=True, out=(g[0], g[1]))
    _raises(ValueError, rf"^{op}: out\[1\] must have dtype float64 \(the input's\), got float32",
            fl.triplet_margin_loss, *T3, return_grad=True, out=(g[0], g[1].astype(np.float32), g[2]))
    _raises(ValueError, rf"^{op}: out\[2\] must have shape \(4, 3\) \(the input's\), got \(3, 4\)",
            fl.triplet_margin_loss, *T3, return_grad=True, out=(g[0], g[1], g[2].reshape(3, 4)))
    ro = g[0].copy()
    ro.flags.writeable = False
    _raises(ValueError, rf"^{op}: out\[0\] must be writeable", fl.triplet_margin_loss, *T3, return_grad=True,
            out=(ro, g[1], g[2]))
    _raises(ValueError, rf"^{op}: out\[0\] must be C-contiguous", fl.triplet_margin_loss, *T3, return_grad=True,
            out=(np.empty((3, 4)).T, g[1], g[2]))
    _raises(ValueError, rf"^{op}: out\[0\] must not share memory with the inputs or the other outputs",
            fl.triplet_margin_loss, *T3, return_grad=True, out=(g[0], g[0], g[2]))
    a = X + 1.0
    _raises(ValueError, rf"^{op}: out\[1\] must not share memory", fl.triplet_margin_loss, a, X + 2, X + 3,
            return_grad=True, out=(g[0], a, g[2]))


def test_elementwise_pairs():
    op = "margin_ranking_loss"
    x, t = np.zeros(5), np.ones(5)
    _raises(ValueError, rf"^{op}: input2 must have the same shape as input1, got input1: \(5,\) and input2: \(4,\)",
            fl.margin_ranking_loss, x, np.zeros(4), t)
    _raises(ValueError, rf"^{op}: target must have the same shape as input", fl.margin_ranking_loss, x, x,
            np.ones(4))
    bad = t.copy()
    bad[1] = 0.5
    _raises(ValueError, rf"^{op}: target must contain only -1 and 1, got target\[1\] = 0.5",
            fl.margin_ranking_loss, x, x, bad)
    _raises(ValueError, f"^{op}: out= is the gradients' buffers; pass return_grad=True with it",
            fl.margin_ranking_loss, x, x, t, out=(x.copy(), x.copy()))
    _raises(ValueError, rf"^{op}: out must be a tuple of 2 arrays", fl.margin_ranking_loss, x, x, t,
            return_grad=True, out=x.copy())
    g = np.empty(5)
    _raises(ValueError, rf"^{op}: out\[1\] must not share memory", fl.margin_ranking_loss, x, x + 1, t,
            return_grad=True, out=(g, g))
    _raises(ValueError, rf"^{op}: out\[1\] must have dtype float64", fl.margin_ranking_loss, x, x, t,
            return_grad=True, out=(g, g.astype(np.float32)))
    op = "hinge_embedding_loss"
    _raises(ValueError, rf"^{op}: target must contain only -1 and 1, got target\[1\] = 0.5",
            fl.hinge_embedding_loss, x, bad)
    _raises(ValueError, rf"^{op}: out must be an array or a tuple of 1 array, got a tuple of length 2",
            fl.hinge_embedding_loss, x, t, return_grad=True, out=(g, g))
    _raises(ValueError, f"^{op}: out= is the gradient's buffer; pass return_grad=True with it",
            fl.hinge_embedding_loss, x, t, out=g)
    _raises(TypeError, f"^{op}: margin must be a real number, got NoneType", fl.hinge_embedding_loss, x, t, None)
    _raises(TypeError, "^MarginRankingLoss: margin must be a real number", fl.MarginRankingLoss, "0")
    _raises(ValueError, "^MarginRankingLoss: loss_out is the buffer of the per-element losses of "
            "reduction='none', got reduction='mean'", fl.MarginRankingLoss().value_and_grad, x, x, t,
            loss_out=np.empty(5))
    _raises(ValueError, "^HingeEmbeddingLoss: loss_out is the buffer", fl.HingeEmbeddingLoss().value_and_grad,
            x, t, loss_out=np.empty(5))
    lo = np.empty(5)
    _raises(ValueError, r"^MarginRankingLoss: out\[1\] must not share memory",
            fl.MarginRankingLoss(reduction="none").value_and_grad, x, x + 1, t, out=(g, lo), loss_out=lo)
    _raises(ValueError, r"^TripletMarginLoss: loss_out must have shape \(4,\)",
            fl.TripletMarginLoss(reduction="none").value_and_grad, *T3, loss_out=np.empty(5))


# ------------------------------------------------------------------ in-batch

BATCH = [(fl.batch_hard_triplet_loss, fl.BatchHardTripletLoss), (fl.batch_all_triplet_loss, fl.BatchAllTripletLoss),
         (fl.nt_xent_loss, fl.NTXentLoss)]
E = np.random.default_rng(0).normal(size=(6, 3))
LAB = np.array([0, 0, 1, 1, 2, 2])


@pytest.mark.parametrize("fn,cls", BATCH, ids=lambda f: getattr(f, "__name__", ""))
def test_batch_arrays(fn, cls):
    op = fn.__name__
    _raises(ValueError, rf"^{op}: embeddings must have shape \(N, D\), got \(6,\)", fn, E[:, 0], LAB)
    _raises(ValueError, rf"^{op}: embeddings must have shape \(N, D\), got \(1, 6, 3\)", fn, E[None], LAB)
    _raises(ValueError, rf"^{op}: embeddings must have at least one feature, got shape \(6, 0\)", fn,
            np.zeros((6, 0)), LAB)
    _raises(TypeError, rf"^{op}: labels must hold integer class labels, got dtype float64", fn, E, LAB * 1.0)
    _raises(TypeError, rf"^{op}: labels must hold integer class labels, got dtype bool", fn, E, LAB > 0)
    _raises(ValueError, rf"^{op}: labels must have shape \(6,\) \(one label per row of embeddings\), got \(5,\)",
            fn, E, LAB[:5])
    _raises(ValueError, rf"^{op}: reduction must be one of 'mean', 'sum', got 'none'", fn, E, LAB,
            reduction="none")
    _raises(ValueError, rf"^{cls.__name__}: reduction must be one of 'mean', 'sum', got 'none'", cls,
            reduction="none")
    _raises(ValueError, rf"^{op}: weight of shape \(5,\) cannot be broadcast to the input's shape \(6,\)", fn, E,
            LAB, weight=np.ones(5))
    _raises(ValueError, f"^{op}: out= is the gradient's buffer; pass return_grad=True with it", fn, E, LAB,
            out=np.empty_like(E))
    _raises(ValueError, rf"^{op}: out must have shape \(6, 3\) \(the input's\), got \(3, 6\)", fn, E, LAB,
            return_grad=True, out=np.empty((3, 6)))
    _raises(ValueError, f"^{op}: out must not share memory", fn, E, LAB, return_grad=True, out=E)
    _raises(ValueError, f"^{op}: n_threads must be a positive integer or None", fn, E, LAB, n_threads=0)


@pytest.mark.parametrize("fn", [fl.batch_hard_triplet_loss, fl.batch_all_triplet_loss])
def test_batch_triplets_need_a_valid_anchor(fn):
    op = fn.__name__
    msg = (rf"^{op}: no anchor has both a positive \(another row with its label\) and a negative \(a row with "
           rf"another label\) in the batch; labels take {{}} distinct value\(s\)")
    _raises(ValueError, msg.format(6), fn, E, np.arange(6))
    _raises(ValueError, msg.format(1), fn, E, np.zeros(6, dtype=int))
    _raises(TypeError, rf"^{op}: labels must be an array of N integer class labels, got None", fn, E, None)
    _raises(ValueError, f"^{op}: margin must be >= 0, got -0.5", fn, E, LAB, -0.5)
    _raises(ValueError, f"^{op}: distance must be one of 'euclidean', 'squared_euclidean', 'cosine', got 'dot'",
            fn, E, LAB, 1.0, "dot")


def test_batch_hard_soft_and_ntxent_params():
    _raises(TypeError, "^batch_hard_triplet_loss: soft must be True or False, got 'yes'", fl.batch_hard_triplet_loss,
            E, LAB, soft="yes")
    op = "nt_xent_loss"
    _raises(ValueError, rf"^{op}: no positive pair in the batch \(no two rows share a label\)", fl.nt_xent_loss, E,
            np.arange(6))
    _raises(ValueError, rf"^{op}: labels=None pairs row i with row i \+ N/2 and needs an even N, got N = 5",
            fl.nt_xent_loss, E[:5])
    for t in (0, -1.0):
        _raises(ValueError, f"^{op}: temperature must be > 0, got {t}", fl.nt_xent_loss, E, LAB, t)
    _raises(ValueError, "^NTXentLoss: temperature must be > 0, got 0", fl.NTXentLoss, 0)
    _raises(ValueError, "^BatchHardTripletLoss: distance must be one of", fl.BatchHardTripletLoss, distance="l2")


def test_bad_target_leaves_no_value_behind():
    """A bad target is found in the kernel's pass and raises; the error names
    the first bad row."""
    t = np.array([1.0, -1.0, 3.0, 7.0])
    with pytest.raises(ValueError, match=r"target\[2\] = 3.0"):
        fl.cosine_embedding_loss(X + 1, X + 2, t, return_grad=True)
