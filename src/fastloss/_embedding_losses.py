"""Embedding losses: triplets, pairs, ranking and in-batch metric learning.

Each loss is a function named as in ``torch.nn.functional`` (where PyTorch
has it) and a class named as in ``torch.nn``.  The row losses run the
row-over-features driver (``fastloss._features_api``, kernels in
``src/fastloss/_src/fl_features_math.h``): one pass per row computes the
distances, the loss and the gradient of every operand.  The in-batch
losses take one N x N matrix from NumPy's matmul and fuse mining, masking,
softmax and gradient in kernels (``fl_features_batch.h``).  The two
elementwise ones (margin ranking, hinge embedding) run the pointwise
driver.

``return_grad=True`` returns ``(value, grad_1, ..., grad_k)``, one gradient
per differentiable operand in argument order (each function's and class's
``_grad_args`` names them); ``out=`` is a tuple of buffers in that order.
"""
from __future__ import annotations

import math

import numpy as np

from . import _validate as V
from ._alloc import empty
from ._features_api import (
    BATCH_REDUCTIONS,
    GRAD,
    VALUE,
    _FeatureLoss,
    check_distance,
    out_tuple,
    run_batch,
    run_rows,
    spec,
)
from ._pointwise_api import run as pw_run
from ._pointwise_api import spec as pw_spec

__all__ = [
    "triplet_margin_loss", "triplet_margin_with_distance_loss", "cosine_embedding_loss",
    "margin_ranking_loss", "hinge_embedding_loss", "contrastive_loss", "cosine_distance_loss",
    "batch_hard_triplet_loss", "batch_all_triplet_loss", "nt_xent_loss",
    "TripletMarginLoss", "TripletMarginWithDistanceLoss", "CosineEmbeddingLoss", "MarginRankingLoss",
    "HingeEmbeddingLoss", "ContrastiveLoss", "CosineDistanceLoss", "BatchHardTripletLoss",
    "BatchAllTripletLoss", "NTXentLoss",
]

_TRIPLET = ("anchor", "positive", "negative")
_PAIR = ("input1", "input2")
_IT = ("input", "target")
_DISTANCES = ("euclidean", "squared_euclidean", "cosine")

_COMMON = """weight : array_like, optional
        Per-row weights, of the rows' shape (the operands' shape without
        the last axis; broadcast to it, one copy if it differs).  Row r's
        loss is multiplied by weight[r]; the mean still divides by the
        number of rows, as PyTorch's unweighted mean does.
    return_grad : bool
        Also return the gradient of every operand, in the same pass.
    out : tuple of ndarray, optional
        Buffers for the gradients, one per operand in argument order (the
        operands' shape and dtype, C-contiguous, writeable, not overlapping
        the inputs or each other).  Only with ``return_grad=True``.
    n_threads : int, optional
        Threads for this call (default :func:`fastloss.get_num_threads`).
    check : bool
        Run :func:`fastloss.diagnose`'s checks on the operands first and
        warn each finding as a :class:`fastloss.LossWarning` (one summary
        pass over each; the default False costs one test).

    Returns
    -------
    value : float, or ndarray of the rows' shape for reduction="none"
    grads : ndarrays of the operands' shape and dtype, with return_grad=True
        The gradient of the returned value with respect to each operand:
        the reduction's 1/N and the weights are in it; for
        reduction="none" it is that of the sum.

    Notes
    -----
    The operands have one shape ``(..., D)``: the last axis holds the D
    features, the others index rows; ``(D,)`` is one unbatched row (the
    value of reduction="none" is then 0-d).  The first operand fixes the
    dtype (float32 and float64 are kept, float16 becomes float32, integers
    and bools float64); the others, the target and weight are converted to
    it.  Non-contiguous arrays are copied once.  Row sums are accumulated
    in float64 and added block by block in a fixed order, so the value is
    bit-identical for any thread count."""

_BATCH_COMMON = """weight : array_like of shape (N,), optional
        Per-anchor weights: every term of anchor i is multiplied by
        weight[i]; the mean's divisor is the unweighted count.
    reduction : {"mean", "sum"}
    return_grad : bool
        Also return the gradient with respect to the embeddings.
    out : ndarray, optional
        Buffer for the gradient ((N, D), the embeddings' dtype).  Only with
        ``return_grad=True``.
    n_threads : int, optional
        Threads for fastloss's own passes.  The two matrix products (E E^T,
        and for the gradient one N x N by N x D) run on NumPy's BLAS with
        its own thread setting (``threadpoolctl.threadpool_limits`` sets it).
    check : bool
        Run :func:`fastloss.diagnose`'s checks on embeddings and labels
        first (a batch without positives or negatives, collapsed
        embeddings) and warn each finding as a :class:`fastloss.LossWarning`.

    Returns
    -------
    value : float
    grad : ndarray of shape (N, D), with return_grad=True

    Notes
    -----
    embeddings has shape (N, D), float32 or float64 (kept); labels has
    shape (N,) of any integer dtype.  The similarities and distances come
    from the Gram matrix E E^T, a NumPy matmul: batch-all and NT-Xent keep
    one N x N matrix of the embeddings' dtype (overwritten in place by the
    gradient's coefficients, which one more matmul turns into the
    gradient); batch-hard needs no second matmul, and on one thread it
    computes and mines S a block of rows at a time (about 4 MB; on more
    threads in one matmul, as BLAS's threads and fastloss's do not
    alternate well).  Besides, O(N + N D).  The
    value does not depend on the thread count; near-ties in the mining may
    resolve differently than a difference-based computation would."""


def _doc(fn):
    fn.__doc__ = fn.__doc__.replace("%(common)s", _COMMON).replace("%(batch)s", _BATCH_COMMON)
    return fn


def _grads(fn, names, class_axis=-1):
    fn._grad_args = names
    fn._class_axis = class_axis
    return fn


def _mode(return_grad):
    return GRAD if return_grad else VALUE


# ------------------------------------------------------------------ parameters

def _margin_pos(margin, op):
    m = V.real(margin, "margin", op)
    if not m > 0:
        raise ValueError(f"{op}: margin must be greater than 0, got {margin}")
    return m


def _p_norm(p, op):
    v = V.real(p, "p", op)
    if not (math.isfinite(v) and v >= 1):
        raise ValueError(f"{op}: p must be a finite number >= 1, got {p}")
    return v


def _eps(eps, op):
    v = V.real(eps, "eps", op)
    if not math.isfinite(v):
        raise ValueError(f"{op}: eps must be finite, got {eps}")
    return v


def _pkernel(prefix, p):
    return f"{prefix}_p2" if p == 2 else f"{prefix}_p1" if p == 1 else f"{prefix}_pn"


_TRIPLET_SPECS = {}
for _k in ("triplet_p2", "triplet_p1", "triplet_pn", "triplet_cos", "triplet_sq"):
    _TRIPLET_SPECS[_k] = {op: spec(op, _k, _TRIPLET) for op in ("triplet_margin_loss",
                                                                  "triplet_margin_with_distance_loss")}
_CONTRASTIVE = {k: spec("contrastive_loss", k, _PAIR, target="binary")
                for k in ("contrastive_p2", "contrastive_p1", "contrastive_pn")}
_COSINE_EMBEDDING = spec("cosine_embedding_loss", "cosine_embedding", _PAIR, target="sign", max_ndim=2)
_COSINE_DISTANCE = spec("cosine_distance_loss", "cosine_distance", _IT)


def _bad_sign(op):
    def on_bad(x, y, e):
        m = ((y == y) & (y != 1) & (y != -1)).ravel()
        idx = V.first_index(m, y.shape)
        val = y.reshape(y.shape)[idx] if idx else y.reshape(())[()]
        raise ValueError(f"{op}: target must contain only -1 and 1, got {V.fmt_index('target', idx)} = {val}")
    return on_bad


_MARGIN_RANKING = pw_spec("margin_ranking_loss", "margin_ranking", _bad_sign("margin_ranking_loss"), "input2")
_HINGE_EMBEDDING = pw_spec("hinge_embedding_loss", "hinge_embedding", _bad_sign("hinge_embedding_loss"))


def _triplet_params(margin, p, eps, swap, op):
    m = _margin_pos(margin, op)
    p = _p_norm(p, op)
    e = _eps(eps, op)
    sw = V.boolean(swap, "swap", op)
    return _pkernel("triplet", p), (m, e, p, int(sw), 0)


_NAMED = {"euclidean": ("triplet_p2", 1e-6), "squared_euclidean": ("triplet_sq", 0.0), "cosine": ("triplet_cos", 1e-8)}


def _distance_params(distance_function, distance, margin, swap, op):
    if distance_function is not None:
        if not isinstance(distance_function, str):
            raise TypeError(
                f"{op}: distance_function must be None or the name of a distance ({', '.join(map(repr, _DISTANCES))}); "
                f"fastloss fuses named distances in its kernel and cannot call a Python function, "
                f"got {distance_function!r}")
        df = check_distance(distance_function, op)
        if distance is not None and distance != df:
            raise ValueError(f"{op}: distance_function={df!r} and distance={distance!r} disagree; give one of them")
        distance = df
    distance = check_distance("euclidean" if distance is None else distance, op)
    m = _margin_pos(margin, op)
    sw = V.boolean(swap, "swap", op)
    kernel, eps = _NAMED[distance]
    return kernel, (m, eps, 2.0, int(sw), 0), distance


def _pair_buffers(out, names, op, mode):
    if out is not None and mode == VALUE:
        raise ValueError(f"{op}: out= is the gradients' buffers; pass return_grad=True with it")
    return out_tuple(out, names, op)


# ------------------------------------------------------------------ triplets

@_doc
def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-06, swap=False, size_average=None,
                        reduce=None, reduction="mean", *, weight=None, return_grad=False, out=None,
                        n_threads=None, check=False):
    """Triplet margin loss, as ``torch.nn.functional.triplet_margin_loss``.

    ``l = max(0, margin + d(a, p) - d(a, n))`` per row with PyTorch's
    ``d(x, y) = |x - y + eps|_p`` (``pairwise_distance``: eps is added to
    the difference, so coincident points have distance ``eps D^(1/p)`` and
    a finite gradient, ``1/sqrt(D)`` per coordinate for p = 2).  With
    ``swap`` (Balntas et al. 2016) ``d(a, n)`` becomes ``min(d(a, n),
    d(p, n))``; where the two tie, the gradient is split in halves as
    ``torch.minimum``'s backward does.  At ``margin + d_p - d_n = 0`` the
    gradient is passed, as ``clamp_min``'s.

    Parameters
    ----------
    anchor, positive, negative : array_like, same shape (..., D)
    margin : float > 0
    p : float >= 1 (finite)
        The norm: p = 1 and 2 have their own loops, other p use exp/log.
    eps : float
    swap : bool
    size_average, reduce : deprecated, as PyTorch (use reduction)
    reduction : {"mean", "sum", "none"}
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> a = np.array([[0.0, 0.0], [1.0, 1.0]]); p = np.array([[0.0, 1.0], [1.0, 1.5]])
    >>> n = np.array([[3.0, 0.0], [1.0, 0.0]])
    >>> round(fl.triplet_margin_loss(a, p, n), 6)
    0.249999
    >>> value, g_a, g_p, g_n = fl.triplet_margin_loss(a, p, n, return_grad=True)
    >>> np.round(g_n[1], 3)
    array([0. , 0.5])
    """
    op = "triplet_margin_loss"
    reduction = V.legacy_reduction(size_average, reduce, reduction, op)
    kernel, params = _triplet_params(margin, p, eps, swap, op)
    return run_rows(_TRIPLET_SPECS[kernel][op], (anchor, positive, negative), weight=weight, params=params,
                    reduction=reduction, mode=_mode(return_grad), out=out, n_threads=n_threads, check=check)


_grads(triplet_margin_loss, _TRIPLET)


@_doc
def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None, margin=1.0,
                                      swap=False, reduction="mean", distance=None, weight=None,
                                      return_grad=False, out=None, n_threads=None, check=False):
    """Triplet loss over a named distance, as
    ``torch.nn.functional.triplet_margin_with_distance_loss``.

    ``l = max(0, margin + d(a, p) - d(a, n))`` (swap as in
    :func:`triplet_margin_loss`), with ``distance``:

    - ``"euclidean"`` (default): ``|x - y + 1e-6|_2``, PyTorch's default
      ``distance_function=None`` (``torch.pairwise_distance``);
    - ``"squared_euclidean"``: ``|x - y|^2``;
    - ``"cosine"``: ``1 - F.cosine_similarity(x, y)``, i.e.
      ``1 - x.y / (max(|x|, 1e-8) max(|y|, 1e-8))`` with PyTorch's gradient
      (the clamp is not differentiated, the norm is; a zero vector gives a
      large but finite gradient).

    PyTorch's ``distance_function`` is a Python callable; fastloss fuses
    the distance into its kernel, so it takes a name instead:
    ``distance_function`` accepts None (the default euclidean distance,
    as PyTorch's None) or one of the names, and so does ``distance=``
    (keyword-only, a shorthand; give one of them).  A callable is a
    TypeError.  The class takes the name through ``distance_function=``
    only (its constructor is ``torch.nn``'s).  margin must be > 0, as
    PyTorch checks.

    Parameters
    ----------
    anchor, positive, negative : array_like, same shape (..., D)
    distance_function : None or {"euclidean", "squared_euclidean", "cosine"}
    margin : float > 0
    swap : bool
    reduction : {"mean", "sum", "none"}
    distance : None or {"euclidean", "squared_euclidean", "cosine"}
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> a = np.array([1.0, 0.0]); p = np.array([1.0, 1.0]); n = np.array([0.0, 1.0])
    >>> round(fl.triplet_margin_with_distance_loss(a, p, n, distance="cosine", margin=1.0), 6)
    0.292893
    """
    op = "triplet_margin_with_distance_loss"
    kernel, params, _ = _distance_params(distance_function, distance, margin, swap, op)
    return run_rows(_TRIPLET_SPECS[kernel][op], (anchor, positive, negative), weight=weight, params=params,
                    reduction=reduction, mode=_mode(return_grad), out=out, n_threads=n_threads, check=check)


_grads(triplet_margin_with_distance_loss, _TRIPLET)


# ------------------------------------------------------------------ pairs

@_doc
def cosine_embedding_loss(input1, input2, target, margin=0, size_average=None, reduce=None, reduction="mean", *,
                          weight=None, return_grad=False, out=None, n_threads=None, check=False):
    """Cosine embedding loss, as ``torch.nn.functional.cosine_embedding_loss``.

    ``l = 1 - cos`` for target 1, ``max(0, cos - margin)`` for target -1,
    with PyTorch's ``cos = x1.x2 / sqrt((|x1|^2 + 1e-12)(|x2|^2 + 1e-12))``
    (the 1e-12, a float32 constant in PyTorch and here, keeps a zero vector
    finite).  A
    target other than -1 or 1 is a ValueError (PyTorch gives such rows a
    loss of 0); a NaN target gives NaN.

    Parameters
    ----------
    input1, input2 : array_like, same shape, (N, D) or (D,)
    target : array_like of -1 and 1, shape (N,) or ()
    margin : float
    size_average, reduce : deprecated, as PyTorch (use reduction)
    reduction : {"mean", "sum", "none"}
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> x1 = np.array([[1.0, 0.0], [1.0, 1.0]]); x2 = np.array([[0.0, 1.0], [1.0, 1.0]])
    >>> round(fl.cosine_embedding_loss(x1, x2, np.array([1.0, -1.0]), margin=0.5), 6)
    0.75
    """
    op = "cosine_embedding_loss"
    reduction = V.legacy_reduction(size_average, reduce, reduction, op)
    m = V.real(margin, "margin", op)
    return run_rows(_COSINE_EMBEDDING, (input1, input2), target, weight, (m, 0.0, 0.0, 0, 0), reduction,
                    _mode(return_grad), out, n_threads, check=check)


_grads(cosine_embedding_loss, _PAIR)


def _no_loss_out(loss_out, reduction, op):
    if loss_out is not None and reduction != "none":
        raise ValueError(f"{op}: loss_out is the buffer of the per-element losses of reduction='none', "
                         f"got reduction={reduction!r}")


def _elementwise_pair(input1, input2, target, params, weight, reduction, mode, out, n_threads, op, loss_out=None,
                      check=False):
    _no_loss_out(loss_out, reduction, op)
    bufs = _pair_buffers(out, _PAIR, op, mode)
    x = V.as_input(input1, "input1", op)
    s2 = input2.shape if isinstance(input2, np.ndarray) else np.shape(input2)
    if s2 != x.shape:
        raise ValueError(f"{op}: input2 must have the same shape as input1, got input1: {x.shape} and "
                         f"input2: {s2}")
    e = V.as_operand(input2, "input2", op, x.dtype, x.shape)
    g2 = None
    if mode == GRAD:
        g2 = empty(x.shape, x.dtype) if bufs is None else V.check_out(bufs[1], "out[1]", op, x.dtype, x.shape)
    g1 = None if bufs is None else V.check_out(bufs[0], "out[0]", op, x.dtype, x.shape)
    if bufs is not None:
        V.check_no_overlap(g2, "out[1]", op, x, e, target if isinstance(target, np.ndarray) else None,
                           weight if isinstance(weight, np.ndarray) else None, g1,
                           loss_out if isinstance(loss_out, np.ndarray) else None)
    if mode == GRAD:  # both buffers given: the pointwise driver writes input2's gradient as its extra's
        out = (empty(x.shape, x.dtype) if g1 is None else g1, g2)
        return pw_run(_MARGIN_RANKING, x, target, weight, reduction, mode, params, n_threads, out=out, extra=e,
                      extra_period=max(x.size, 1), loss_out=loss_out, grads=("input", "input2"), check=check)
    return pw_run(_MARGIN_RANKING, x, target, weight, reduction, mode, params, n_threads, extra=e,
                  extra_period=max(x.size, 1), loss_out=loss_out, check=check)


@_doc
def margin_ranking_loss(input1, input2, target, margin=0, size_average=None, reduce=None, reduction="mean", *,
                        weight=None, return_grad=False, out=None, n_threads=None, check=False):
    """Margin ranking loss, as ``torch.nn.functional.margin_ranking_loss``.

    Elementwise ``l = max(0, -target (input1 - input2) + margin)``; the
    gradient is ``-target`` for input1 and ``target`` for input2 where the
    term is >= 0 (PyTorch's clamp_min passes it at 0).  A target other than
    -1 or 1 is a ValueError.  All three arrays have one shape (no
    broadcasting); the value of reduction="none" has that shape.

    Parameters
    ----------
    input1, input2 : array_like, same shape
    target : array_like of -1 and 1, same shape
    margin : float
    size_average, reduce : deprecated, as PyTorch (use reduction)
    reduction : {"mean", "sum", "none"}
    weight : array_like, optional
        Per-element weights (broadcast to the inputs' shape).
    return_grad, out, n_threads, check
        As :func:`triplet_margin_loss`; ``out`` is a pair of buffers.

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> value, g1, g2 = fl.margin_ranking_loss(np.array([1.0, 0.2]), np.array([0.5, 0.4]),
    ...                                        np.array([1.0, 1.0]), margin=0.6, return_grad=True)
    >>> round(value, 6), g1, g2
    (0.45, array([-0.5, -0.5]), array([0.5, 0.5]))
    """
    op = "margin_ranking_loss"
    reduction = V.legacy_reduction(size_average, reduce, reduction, op)
    m = V.real(margin, "margin", op)
    return _elementwise_pair(input1, input2, target, (m, 0.0, 0.0, 0, 0), weight, reduction,
                             _mode(return_grad), out, n_threads, op, check=check)


_grads(margin_ranking_loss, _PAIR, class_axis=0)


def _single_out(out, op, mode):
    if out is not None and mode == VALUE:
        raise ValueError(f"{op}: out= is the gradient's buffer; pass return_grad=True with it")
    if isinstance(out, tuple):
        if len(out) != 1:
            raise ValueError(f"{op}: out must be an array or a tuple of 1 array, got a tuple of length {len(out)}")
        return out[0]
    return out


@_doc
def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None, reduction="mean", *,
                         weight=None, return_grad=False, out=None, n_threads=None, check=False):
    """Hinge embedding loss, as ``torch.nn.functional.hinge_embedding_loss``.

    Elementwise ``l = input`` for target 1 and ``max(0, margin - input)``
    for target -1 (input is usually a distance); gradient 1, or -1 where
    ``margin - input >= 0``.  A target other than -1 or 1 is a ValueError
    (PyTorch sums both branches for such targets).

    Parameters
    ----------
    input : array_like
    target : array_like of -1 and 1, same shape
    margin : float
    size_average, reduce : deprecated, as PyTorch (use reduction)
    reduction : {"mean", "sum", "none"}
    weight : array_like, optional
        Per-element weights (broadcast to input's shape).
    return_grad, out, n_threads, check
        As :func:`triplet_margin_loss`; ``out`` is one buffer (or a tuple of one).

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> fl.hinge_embedding_loss(np.array([0.3, 2.0, 0.5]), np.array([1.0, -1.0, -1.0]))
    0.26666666666666666
    """
    op = "hinge_embedding_loss"
    reduction = V.legacy_reduction(size_average, reduce, reduction, op)
    m = V.real(margin, "margin", op)
    mode = _mode(return_grad)
    return pw_run(_HINGE_EMBEDDING, input, target, weight, reduction, mode, (m, 0.0, 0.0, 0, 0), n_threads,
                  out=_single_out(out, op, mode), check=check)


_grads(hinge_embedding_loss, ("input",), class_axis=0)


def _contrastive_params(margin, p, eps, similar_label, op):
    m = V.nonneg(margin, "margin", op)
    p = _p_norm(p, op)
    e = _eps(eps, op)
    if isinstance(similar_label, (bool, np.bool_)) or similar_label not in (0, 1):
        raise ValueError(f"{op}: similar_label must be 1 or 0 (the target value of a similar pair), "
                         f"got {similar_label!r}")
    return _pkernel("contrastive", p), (m, e, p, int(similar_label), 0)


@_doc
def contrastive_loss(input1, input2, target, margin=1.0, p=2, eps=1e-6, similar_label=1, *, weight=None,
                     reduction="mean", return_grad=False, out=None, n_threads=None, check=False):
    """Contrastive pair loss of Hadsell, Chopra and LeCun (CVPR 2006).

    ``l = 1/2 y d^2 + 1/2 (1 - y) max(0, margin - d)^2`` per row, with
    ``d = |x1 - x2 + eps|_p`` (PyTorch's ``pairwise_distance``, as a
    PyTorch user would write it) and ``y = 1`` for a similar pair, 0 for a
    dissimilar one.

    Label convention: by default target 1 marks a similar pair and 0 a
    dissimilar one (``y = target``).  The paper itself writes it the other
    way round (Y = 0 for similar, 1 for dissimilar); ``similar_label=0``
    takes that convention (``y = 1 - target``).  A target other than 0 or 1
    is a ValueError.  PyTorch has no such loss.

    Parameters
    ----------
    input1, input2 : array_like, same shape (..., D)
    target : array_like of 0 and 1, the rows' shape
    margin : float >= 0
    p : float >= 1 (finite)
    eps : float
    similar_label : {1, 0}
        The target value of a similar pair.
    reduction : {"mean", "sum", "none"}
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> x1 = np.array([[0.0, 0.0], [0.0, 0.0]]); x2 = np.array([[0.6, 0.8], [0.3, 0.4]])
    >>> round(fl.contrastive_loss(x1, x2, np.array([1, 0]), eps=0.0), 6)
    0.3125
    """
    op = "contrastive_loss"
    kernel, params = _contrastive_params(margin, p, eps, similar_label, op)
    return run_rows(_CONTRASTIVE[kernel], (input1, input2), target, weight, params, reduction, _mode(return_grad),
                    out, n_threads, check=check)


_grads(contrastive_loss, _PAIR)


@_doc
def cosine_distance_loss(input, target, eps=1e-8, *, weight=None, reduction="mean", return_grad=False, out=None,
                         n_threads=None, check=False):
    """Cosine distance ``1 - cos(input, target)`` per row, as optax's
    ``cosine_distance`` (embedding regression, distillation).

    ``cos = x.y / (max(|x|, eps) max(|y|, eps))``: the same value as optax's
    ``cosine_distance(x, y, epsilon=eps**2)`` (optax clamps the squared
    norm) and as ``1 - F.cosine_similarity(x, y, eps=eps)``; the gradient
    is PyTorch's (a zero vector gets the finite gradient ``-y / (eps
    max(|y|, eps))``).  eps = 0 is optax's default, where a zero vector
    gives NaN.  PyTorch has no such loss; the gradient is returned for both
    operands.

    Parameters
    ----------
    input, target : array_like, same shape (..., D)
    eps : float >= 0
    reduction : {"mean", "sum", "none"}
    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> fl.cosine_distance_loss(np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[0.0, 2.0], [3.0, 3.0]]))
    0.5
    """
    op = "cosine_distance_loss"
    e = V.nonneg(eps, "eps", op)
    return run_rows(_COSINE_DISTANCE, (input, target), None, weight, (0.0, e, 0.0, 0, 0), reduction,
                    _mode(return_grad), out, n_threads, check=check)


_grads(cosine_distance_loss, _IT)


# ------------------------------------------------------------------ in-batch

def _batch_out(out, op, mode):
    if out is not None and mode == VALUE:
        raise ValueError(f"{op}: out= is the gradient's buffer; pass return_grad=True with it")
    return out


def _batch_margin(margin, op):
    return V.nonneg(margin, "margin", op)


@_doc
def batch_hard_triplet_loss(embeddings, labels, margin=1.0, distance="euclidean", soft=False, *, weight=None,
                            reduction="mean", return_grad=False, out=None, n_threads=None, check=False):
    """Batch-hard triplet loss (Hermans, Beyer and Leibe, "In Defense of the
    Triplet Loss for Person Re-Identification", 2017).

    For every anchor i of the batch, the hardest positive (the row with
    i's label, other than i, at the largest distance) and the hardest
    negative (a row with another label at the smallest distance; the first
    index wins a tie):

    ``l_i = max(0, margin + d(e_i, e_p) - d(e_i, e_n))``, or with
    ``soft=True`` the paper's soft margin ``log(1 + exp(d_p - d_n))``
    (margin unused).

    The paper sums over the anchors; "mean" averages over the anchors that
    have both a positive and a negative (as common implementations do).
    The gradient flows through the mined pairs only.  Distances:
    ``"euclidean"`` ``|e_i - e_j|`` (the paper's choice; gradient 0 where it
    is 0), ``"squared_euclidean"``, or ``"cosine"`` ``1 - u_i.u_j`` with
    ``u = e / max(|e|, 1e-12)`` (F.normalize).  The hardest pairs are found
    from the Gram matrix; their distances are then recomputed exactly from
    the rows.  No anchor with both a positive and a negative is a
    ValueError.

    Parameters
    ----------
    embeddings : array_like, (N, D)
    labels : array_like of int, (N,)
    margin : float >= 0
    distance : {"euclidean", "squared_euclidean", "cosine"}
    soft : bool
    %(batch)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> e = np.array([[0.0, 0.0], [0.0, 1.0], [3.0, 0.0], [3.0, 0.5]])
    >>> round(fl.batch_hard_triplet_loss(e, np.array([0, 0, 1, 1]), margin=2.0), 6)
    0.0
    >>> round(fl.batch_hard_triplet_loss(e, np.array([0, 1, 0, 1]), margin=1.0), 6)
    3.270691
    """
    op = "batch_hard_triplet_loss"
    m = _batch_margin(margin, op)
    d = check_distance(distance, op)
    s = V.boolean(soft, "soft", op)
    return run_batch("hard", embeddings, labels, margin=m, distance=d, soft=s, weight=weight, reduction=reduction,
                     mode=_mode(return_grad), out=_batch_out(out, op, _mode(return_grad)), n_threads=n_threads,
                     op=op, check=check)


_grads(batch_hard_triplet_loss, ("embeddings",))


@_doc
def batch_all_triplet_loss(embeddings, labels, margin=1.0, distance="euclidean", *, weight=None,
                           reduction="mean", return_grad=False, out=None, n_threads=None, check=False):
    """Batch-all triplet loss: every valid triplet of the batch, averaged
    over those with a positive loss.

    For every anchor i, positive p (label of i, p != i) and negative n
    (another label): ``l_ipn = max(0, d(e_i, e_p) - d(e_i, e_n) + margin)``.
    "mean" divides the sum by the number of triplets whose loss is > 0, as
    pytorch-metric-learning's ``TripletMarginLoss`` with its default
    ``AvgNonZeroReducer`` (and is 0 when no triplet has a positive loss);
    "sum" is the plain sum.  Distances as
    :func:`batch_hard_triplet_loss` (here all from the Gram matrix;
    pytorch-metric-learning normalizes the embeddings by default: pass
    normalized rows for its default).  A distance from the Gram matrix,
    ``sqrt(|e_i|^2 + |e_j|^2 - 2 e_i.e_j)``, loses relative accuracy of
    about ``eps (|e_i|^2 + |e_j|^2) / d^2`` for two embeddings at distance
    d (eps the float64 epsilon: 1e-5 at d = 1e-5 |e|), as PyTorch's
    ``cdist`` on its matrix-product path.  Cost O(N^2 D) for the matrix
    products plus O(N (N + P N)) for P positives per anchor.  No anchor
    with both a positive and a negative is a ValueError.

    Parameters
    ----------
    embeddings : array_like, (N, D)
    labels : array_like of int, (N,)
    margin : float >= 0
    distance : {"euclidean", "squared_euclidean", "cosine"}
    %(batch)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> e = np.array([[0.0, 0.0], [0.0, 1.0], [3.0, 0.0], [3.0, 0.5]])
    >>> round(fl.batch_all_triplet_loss(e, np.array([0, 1, 0, 1]), margin=1.0), 6)
    2.094776
    """
    op = "batch_all_triplet_loss"
    m = _batch_margin(margin, op)
    d = check_distance(distance, op)
    return run_batch("all", embeddings, labels, margin=m, distance=d, weight=weight, reduction=reduction,
                     mode=_mode(return_grad), out=_batch_out(out, op, _mode(return_grad)), n_threads=n_threads,
                     op=op, check=check)


_grads(batch_all_triplet_loss, ("embeddings",))


@_doc
def nt_xent_loss(embeddings, labels=None, temperature=0.07, *, weight=None, reduction="mean", return_grad=False,
                 out=None, n_threads=None, check=False):
    """NT-Xent (normalized temperature-scaled cross-entropy; SimCLR, Chen
    et al. 2020), as pytorch-metric-learning's ``NTXentLoss`` and optax's
    ``ntxent`` define it.

    With ``s_ij = u_i.u_j / temperature`` (``u = e / max(|e|, 1e-12)``,
    cosine similarities), for every positive pair (i, p) -- same label,
    p != i -- and N_i the rows with another label:

    ``l_ip = -log(exp(s_ip) / (exp(s_ip) + sum_{n in N_i} exp(s_in)))``

    "mean" averages over the positive pairs (both libraries' reduction).
    The self-similarity is masked out, and so are the anchor's other
    positives from each pair's denominator (SupCon's loss keeps them: it is
    not this one).  ``labels=None`` is SimCLR's layout: N = 2B rows where
    row i and row i + B are the two views of one sample.  (optax clamps
    the squared norm at float eps and pytorch-metric-learning adds a tiny
    constant inside the log; both only matter for degenerate rows.)  A
    batch without a positive pair is a ValueError.

    Parameters
    ----------
    embeddings : array_like, (N, D)
    labels : array_like of int, (N,), or None
    temperature : float > 0
    %(batch)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> e = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [0.1, 1.0]])
    >>> round(fl.nt_xent_loss(e, temperature=0.5), 6)
    0.289878
    """
    op = "nt_xent_loss"
    t = V.positive(temperature, "temperature", op)
    return run_batch("ntxent", embeddings, labels, temperature=t, weight=weight, reduction=reduction,
                     mode=_mode(return_grad), out=_batch_out(out, op, _mode(return_grad)), n_threads=n_threads,
                     op=op, check=check)


_grads(nt_xent_loss, ("embeddings",))


# ------------------------------------------------------------------ classes

def _class_doc(fn_name, call, extra=""):
    return f"""The object form of :func:`fastloss.{fn_name}`, named as in ``torch.nn``.

    ``loss({call}, weight=None)`` gives the value;
    ``loss.value_and_grad({call}, weight=None, out=None, loss_out=None)``
    the value and the gradients of {', '.join(getattr(globals()[fn_name], '_grad_args'))} in one pass.
    See :func:`fastloss.{fn_name}` for the formula, shapes and dtypes.{extra}
    """


class TripletMarginLoss(_FeatureLoss):
    __doc__ = _class_doc("triplet_margin_loss", "anchor, positive, negative", """

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> loss = fl.TripletMarginLoss(margin=0.5, p=1, swap=True)
    >>> a, p, n = np.zeros((2, 3)), np.ones((2, 3)), np.full((2, 3), 2.0)
    >>> value, g_a, g_p, g_n = loss.value_and_grad(a, p, n)
    >>> round(value, 6)
    0.5
    """)
    _grad_args = _TRIPLET
    _class_axis = -1

    def __init__(self, margin=1.0, p=2.0, eps=1e-6, swap=False, size_average=None, reduce=None,
                 reduction="mean", *, n_threads=None):
        op = type(self).__name__
        super().__init__(V.legacy_reduction(size_average, reduce, reduction, op), n_threads)
        self._kernel, self._params = _triplet_params(margin, p, eps, swap, op)
        self.margin, self.p, self.eps, self.swap = margin, p, eps, swap

    def _run(self, anchor, positive, negative, weight, mode, out=None, loss_out=None, check=False):
        op = type(self).__name__
        return run_rows(_TRIPLET_SPECS[self._kernel]["triplet_margin_loss"], (anchor, positive, negative),
                        weight=weight, params=self._params, reduction=self.reduction, mode=mode, out=out,
                        n_threads=self.n_threads, op=op, loss_out=loss_out, check=check)

    def __call__(self, anchor, positive, negative, weight=None, *, check=False):
        return self._run(anchor, positive, negative, weight, VALUE, check=check)

    def value_and_grad(self, anchor, positive, negative, weight=None, out=None, loss_out=None, *, check=False):
        return self._run(anchor, positive, negative, weight, GRAD, out, loss_out, check=check)

    def _repr_args(self):
        return [("margin", self.margin), ("p", self.p), ("eps", self.eps), ("swap", self.swap),
                ("reduction", self.reduction)]


class TripletMarginWithDistanceLoss(_FeatureLoss):
    __doc__ = _class_doc("triplet_margin_with_distance_loss", "anchor, positive, negative", """

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> loss = fl.TripletMarginWithDistanceLoss(distance_function="squared_euclidean", margin=1.0)
    >>> loss(np.array([0.0, 0.0]), np.array([1.0, 0.0]), np.array([0.0, 1.5]))
    0.0
    """)
    _grad_args = _TRIPLET
    _class_axis = -1

    def __init__(self, *, distance_function=None, margin=1.0, swap=False, reduction="mean", n_threads=None):
        op = type(self).__name__
        super().__init__(reduction, n_threads)
        self._kernel, self._params, self.distance = _distance_params(distance_function, None, margin, swap, op)
        self.distance_function = distance_function
        self.margin, self.swap = margin, swap

    def _run(self, anchor, positive, negative, weight, mode, out=None, loss_out=None, check=False):
        return run_rows(_TRIPLET_SPECS[self._kernel]["triplet_margin_with_distance_loss"],
                        (anchor, positive, negative), weight=weight, params=self._params,
                        reduction=self.reduction, mode=mode, out=out, n_threads=self.n_threads,
                        op=type(self).__name__, loss_out=loss_out, check=check)

    def __call__(self, anchor, positive, negative, weight=None, *, check=False):
        return self._run(anchor, positive, negative, weight, VALUE, check=check)

    def value_and_grad(self, anchor, positive, negative, weight=None, out=None, loss_out=None, *, check=False):
        return self._run(anchor, positive, negative, weight, GRAD, out, loss_out, check=check)

    def _repr_args(self):
        return [("distance", self.distance), ("margin", self.margin), ("swap", self.swap),
                ("reduction", self.reduction)]


class CosineEmbeddingLoss(_FeatureLoss):
    __doc__ = _class_doc("cosine_embedding_loss", "input1, input2, target", """

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> fl.CosineEmbeddingLoss()(np.array([[1.0, 0.0]]), np.array([[1.0, 1.0]]), np.array([1]))  # doctest: +ELLIPSIS
    0.29289321...
    """)
    _grad_args = _PAIR
    _class_axis = -1

    def __init__(self, margin=0.0, size_average=None, reduce=None, reduction="mean", *, n_threads=None):
        op = type(self).__name__
        super().__init__(V.legacy_reduction(size_average, reduce, reduction, op), n_threads)
        self.margin = V.real(margin, "margin", op)

    def _run(self, input1, input2, target, weight, mode, out=None, loss_out=None, check=False):
        return run_rows(_COSINE_EMBEDDING, (input1, input2), target, weight, (self.margin, 0.0, 0.0, 0, 0),
                        self.reduction, mode, out, self.n_threads, op=type(self).__name__, loss_out=loss_out,
                        check=check)

    def __call__(self, input1, input2, target, weight=None, *, check=False):
        return self._run(input1, input2, target, weight, VALUE, check=check)

    def value_and_grad(self, input1, input2, target, weight=None, out=None, loss_out=None, *, check=False):
        return self._run(input1, input2, target, weight, GRAD, out, loss_out, check=check)

    def _repr_args(self):
        return [("margin", self.margin), ("reduction", self.reduction)]


class MarginRankingLoss(_FeatureLoss):
    __doc__ = _class_doc("margin_ranking_loss", "input1, input2, target", """

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> fl.MarginRankingLoss(margin=1.0)(np.array([2.0, 0.0]), np.array([1.0, 0.5]), np.array([1, -1]))
    0.25
    """)
    _grad_args = _PAIR
    _class_axis = 0

    def __init__(self, margin=0.0, size_average=None, reduce=None, reduction="mean", *, n_threads=None):
        op = type(self).__name__
        super().__init__(V.legacy_reduction(size_average, reduce, reduction, op), n_threads)
        self.margin = V.real(margin, "margin", op)

    def __call__(self, input1, input2, target, weight=None, *, check=False):
        return _elementwise_pair(input1, input2, target, (self.margin, 0.0, 0.0, 0, 0), weight, self.reduction,
                                 VALUE, None, self.n_threads, type(self).__name__, check=check)

    def value_and_grad(self, input1, input2, target, weight=None, out=None, loss_out=None, *, check=False):
        return _elementwise_pair(input1, input2, target, (self.margin, 0.0, 0.0, 0, 0), weight, self.reduction,
                                 GRAD, out, self.n_threads, type(self).__name__, loss_out=loss_out, check=check)

    def _repr_args(self):
        return [("margin", self.margin), ("reduction", self.reduction)]


class HingeEmbeddingLoss(_FeatureLoss):
    __doc__ = _class_doc("hinge_embedding_loss", "input, target", """

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> fl.HingeEmbeddingLoss(margin=2.0, reduction="sum")(np.array([0.5, 1.0]), np.array([-1, 1]))
    2.5
    """)
    _grad_args = ("input",)
    _class_axis = 0

    def __init__(self, margin=1.0, size_average=None, reduce=None, reduction="mean", *, n_threads=None):
        op = type(self).__name__
        super().__init__(V.legacy_reduction(size_average, reduce, reduction, op), n_threads)
        self.margin = V.real(margin, "margin", op)

    def __call__(self, input, target, weight=None, *, check=False):
        return pw_run(_HINGE_EMBEDDING, input, target, weight, self.reduction, VALUE, (self.margin, 0.0, 0.0, 0, 0),
                      self.n_threads, check=check)

    def value_and_grad(self, input, target, weight=None, out=None, loss_out=None, *, check=False):
        op = type(self).__name__
        _no_loss_out(loss_out, self.reduction, op)
        return pw_run(_HINGE_EMBEDDING, input, target, weight, self.reduction, GRAD, (self.margin, 0.0, 0.0, 0, 0),
                      self.n_threads, out=_single_out(out, op, GRAD), loss_out=loss_out, check=check)

    def _repr_args(self):
        return [("margin", self.margin), ("reduction", self.reduction)]


class ContrastiveLoss(_FeatureLoss):
    __doc__ = _class_doc("contrastive_loss", "input1, input2, target", """

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> loss = fl.ContrastiveLoss(margin=2.0, similar_label=0)   # target 1: a dissimilar pair
    >>> round(loss(np.zeros((1, 2)), np.ones((1, 2)), np.array([1])), 4)   # (2 - sqrt(2))^2 / 2
    0.1716
    """)
    _grad_args = _PAIR
    _class_axis = -1

    def __init__(self, margin=1.0, p=2.0, eps=1e-6, similar_label=1, reduction="mean", *, n_threads=None):
        op = type(self).__name__
        super().__init__(reduction, n_threads)
        self._kernel, self._params = _contrastive_params(margin, p, eps, similar_label, op)
        self.margin, self.p, self.eps, self.similar_label = margin, p, eps, similar_label

    def _run(self, input1, input2, target, weight, mode, out=None, loss_out=None, check=False):
        return run_rows(_CONTRASTIVE[self._kernel], (input1, input2), target, weight, self._params, self.reduction,
                        mode, out, self.n_threads, op=type(self).__name__, loss_out=loss_out, check=check)

    def __call__(self, input1, input2, target, weight=None, *, check=False):
        return self._run(input1, input2, target, weight, VALUE, check=check)

    def value_and_grad(self, input1, input2, target, weight=None, out=None, loss_out=None, *, check=False):
        return self._run(input1, input2, target, weight, GRAD, out, loss_out, check=check)

    def _repr_args(self):
        return [("margin", self.margin), ("p", self.p), ("eps", self.eps), ("similar_label", self.similar_label),
                ("reduction", self.reduction)]


class CosineDistanceLoss(_FeatureLoss):
    __doc__ = _class_doc("cosine_distance_loss", "input, target", """

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> fl.CosineDistanceLoss(reduction="sum")(np.array([[1.0, 0.0]]), np.array([[-2.0, 0.0]]))
    2.0
    """)
    _grad_args = _IT
    _class_axis = -1

    def __init__(self, eps=1e-8, reduction="mean", *, n_threads=None):
        op = type(self).__name__
        super().__init__(reduction, n_threads)
        self.eps = V.nonneg(eps, "eps", op)

    def _run(self, input, target, weight, mode, out=None, loss_out=None, check=False):
        return run_rows(_COSINE_DISTANCE, (input, target), None, weight, (0.0, self.eps, 0.0, 0, 0),
                        self.reduction, mode, out, self.n_threads, op=type(self).__name__, loss_out=loss_out,
                        check=check)

    def __call__(self, input, target, weight=None, *, check=False):
        return self._run(input, target, weight, VALUE, check=check)

    def value_and_grad(self, input, target, weight=None, out=None, loss_out=None, *, check=False):
        return self._run(input, target, weight, GRAD, out, loss_out, check=check)

    def _repr_args(self):
        return [("eps", self.eps), ("reduction", self.reduction)]


class _BatchLoss(_FeatureLoss):
    _grad_args = ("embeddings",)
    _reductions = BATCH_REDUCTIONS
    _kind = ""

    def _kw(self):  # pragma: no cover - abstract
        raise TypeError(f"{type(self).__name__} is abstract")

    def _run(self, embeddings, labels, weight, mode, out=None, check=False):
        return run_batch(self._kind, embeddings, labels, weight=weight, reduction=self.reduction, mode=mode,
                         out=_batch_out(out, type(self).__name__, mode), n_threads=self.n_threads,
                         op=type(self).__name__, **self._kw(), check=check)


class BatchHardTripletLoss(_BatchLoss):
    __doc__ = _class_doc("batch_hard_triplet_loss", "embeddings, labels", """

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> loss = fl.BatchHardTripletLoss(margin=0.2, distance="cosine")
    >>> e = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
    >>> value, grad = loss.value_and_grad(e, np.array([0, 0, 1, 1]))
    >>> round(value, 6), grad.shape
    (0.18, (4, 2))
    """)
    _kind = "hard"

    def __init__(self, margin=1.0, distance="euclidean", soft=False, reduction="mean", *, n_threads=None):
        op = type(self).__name__
        super().__init__(reduction, n_threads)
        self.margin = _batch_margin(margin, op)
        self.distance = check_distance(distance, op)
        self.soft = V.boolean(soft, "soft", op)

    def _kw(self):
        return {"margin": self.margin, "distance": self.distance, "soft": self.soft}

    def __call__(self, embeddings, labels, weight=None, *, check=False):
        return self._run(embeddings, labels, weight, VALUE, check=check)

    def value_and_grad(self, embeddings, labels, weight=None, out=None, *, check=False):
        return self._run(embeddings, labels, weight, GRAD, out, check=check)

    def _repr_args(self):
        return [("margin", self.margin), ("distance", self.distance), ("soft", self.soft),
                ("reduction", self.reduction)]


class BatchAllTripletLoss(_BatchLoss):
    __doc__ = _class_doc("batch_all_triplet_loss", "embeddings, labels", """

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> e = np.array([[0.0, 0.0], [0.0, 1.0], [3.0, 0.0], [3.0, 0.5]])
    >>> fl.BatchAllTripletLoss(margin=1.0, reduction="sum")(e, np.array([0, 0, 1, 1]))
    0.0
    """)
    _kind = "all"

    def __init__(self, margin=1.0, distance="euclidean", reduction="mean", *, n_threads=None):
        op = type(self).__name__
        super().__init__(reduction, n_threads)
        self.margin = _batch_margin(margin, op)
        self.distance = check_distance(distance, op)

    def _kw(self):
        return {"margin": self.margin, "distance": self.distance}

    def __call__(self, embeddings, labels, weight=None, *, check=False):
        return self._run(embeddings, labels, weight, VALUE, check=check)

    def value_and_grad(self, embeddings, labels, weight=None, out=None, *, check=False):
        return self._run(embeddings, labels, weight, GRAD, out, check=check)

    def _repr_args(self):
        return [("margin", self.margin), ("distance", self.distance), ("reduction", self.reduction)]


class NTXentLoss(_BatchLoss):
    __doc__ = _class_doc("nt_xent_loss", "embeddings, labels", """

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> e = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [0.1, 1.0]])
    >>> round(fl.NTXentLoss(temperature=0.5)(e, np.array([0, 1, 0, 1])), 6)
    0.289878
    """)
    _kind = "ntxent"

    def __init__(self, temperature=0.07, reduction="mean", *, n_threads=None):
        op = type(self).__name__
        super().__init__(reduction, n_threads)
        self.temperature = V.positive(temperature, "temperature", op)

    def _kw(self):
        return {"temperature": self.temperature}

    def __call__(self, embeddings, labels=None, weight=None, *, check=False):
        return self._run(embeddings, labels, weight, VALUE, check=check)

    def value_and_grad(self, embeddings, labels=None, weight=None, out=None, *, check=False):
        return self._run(embeddings, labels, weight, GRAD, out, check=check)

    def _repr_args(self):
        return [("temperature", self.temperature), ("reduction", self.reduction)]


# ------------------------------------------------------------------ fuzz examples

def _declare_examples():
    """One valid call of each loss, for the fuzz harness (docs/reliability.md)."""
    from . import _examples as X

    red3 = ("mean", "sum", "none")

    def pick(rng, options):
        return options[int(rng.integers(0, len(options)))]

    def rows(rng, dtype, size, n, batched=True):
        """n operands of one shape (size, D), (D,) or (if batched) (2, size / 2, D)."""
        D = int(rng.integers(1, 9)) if rng.random() < 0.9 else int(rng.integers(60, 200))
        r = rng.random()
        shape = (D,) if r < 0.15 else (2, max(1, size // 2), D) if r > 0.85 and batched else (size, D)
        return [X.values(rng, "normal", shape, dtype) for _ in range(n)], shape

    def row_weight(rng, args, shape, dtype):
        if rng.random() < 0.3:
            args["weight"] = X.values(rng, "positive", shape[:-1], dtype)

    def gen_triplet(rng, dtype, size):
        (a, p, n), shape = rows(rng, dtype, size, 3)
        args = {"anchor": a, "positive": p, "negative": n, "margin": float(rng.uniform(0.1, 2)),
                "p": pick(rng, (1, 2, 3, 1.5)), "eps": pick(rng, (1e-6, 0.0, 1e-3)),
                "swap": bool(rng.random() < 0.5), "reduction": pick(rng, red3)}
        row_weight(rng, args, shape, dtype)
        return X.Example(args)

    def gen_twd(rng, dtype, size):
        (a, p, n), shape = rows(rng, dtype, size, 3)
        args = {"anchor": a, "positive": p, "negative": n,
                "distance_function": pick(rng, (None, "euclidean", "squared_euclidean", "cosine")),
                "margin": float(rng.uniform(0.1, 2)), "swap": bool(rng.random() < 0.5),
                "reduction": pick(rng, red3)}
        row_weight(rng, args, shape, dtype)
        return X.Example(args)

    def gen_cosine_embedding(rng, dtype, size):
        (x1, x2), shape = rows(rng, dtype, size, 2, batched=False)  # ((D,) or (N, D), as PyTorch)
        args = {"input1": x1, "input2": x2, "target": X.values(rng, "sign", shape[:-1], dtype),
                "margin": float(rng.uniform(-1, 1)), "reduction": pick(rng, red3)}
        row_weight(rng, args, shape, dtype)
        return X.Example(args)

    def gen_contrastive(rng, dtype, size):
        (x1, x2), shape = rows(rng, dtype, size, 2)
        sim = pick(rng, (0, 1))
        args = {"input1": x1, "input2": x2, "target": X.values(rng, "binary", shape[:-1], dtype),
                "margin": float(rng.uniform(0, 3)), "p": pick(rng, (1, 2, 3)), "eps": 1e-6,
                "similar_label": sim, "reduction": pick(rng, red3)}
        row_weight(rng, args, shape, dtype)
        return X.Example(args)

    def gen_cosine_distance(rng, dtype, size):
        (x, y), shape = rows(rng, dtype, size, 2)
        args = {"input": x, "target": y, "eps": pick(rng, (1e-8, 1e-3)), "reduction": pick(rng, red3)}
        row_weight(rng, args, shape, dtype)
        return X.Example(args)

    def gen_margin_ranking(rng, dtype, size):
        shape = X.shape_nd(rng, size)
        args = {"input1": X.values(rng, "normal", shape, dtype), "input2": X.values(rng, "normal", shape, dtype),
                "target": X.values(rng, "sign", shape, dtype), "margin": float(rng.uniform(0, 1)),
                "reduction": pick(rng, red3)}
        return X.Example(args)

    def gen_hinge_embedding(rng, dtype, size):
        shape = X.shape_nd(rng, size)
        args = {"input": X.values(rng, "positive", shape, dtype), "target": X.values(rng, "sign", shape, dtype),
                "margin": float(rng.uniform(0, 2)), "reduction": pick(rng, red3)}
        return X.Example(args)

    def batch(rng, dtype, size):
        """(N, D) embeddings and N labels with at least one positive pair and two labels."""
        N = max(4, 2 * size)
        D = int(rng.integers(1, 9)) if rng.random() < 0.9 else int(rng.integers(60, 200))
        E = X.values(rng, "normal", (N, D), dtype)
        k = int(rng.integers(2, N // 2 + 1))
        labels = rng.permutation(np.arange(N) % k) * pick(rng, (1, 3, 1000)) - pick(rng, (0, 1))
        return E, labels.astype(pick(rng, (np.int64, np.int32, np.int16)))

    def gen_batch_hard(rng, dtype, size):
        E, lab = batch(rng, dtype, size)
        args = {"embeddings": E, "labels": lab, "margin": float(rng.uniform(0, 2)),
                "distance": pick(rng, _DISTANCES), "soft": bool(rng.random() < 0.3),
                "reduction": pick(rng, BATCH_REDUCTIONS)}
        if rng.random() < 0.3:
            args["weight"] = X.values(rng, "positive", (E.shape[0],), dtype)
        return X.Example(args)

    def gen_batch_all(rng, dtype, size):
        E, lab = batch(rng, dtype, size)
        args = {"embeddings": E, "labels": lab, "margin": float(rng.uniform(0, 2)),
                "distance": pick(rng, _DISTANCES), "reduction": pick(rng, BATCH_REDUCTIONS)}
        if rng.random() < 0.3:
            args["weight"] = X.values(rng, "positive", (E.shape[0],), dtype)
        return X.Example(args)

    def gen_nt_xent(rng, dtype, size):
        E, lab = batch(rng, dtype, size)
        args = {"embeddings": E, "labels": lab if rng.random() < 0.7 else None,
                "temperature": float(rng.uniform(0.05, 1)), "reduction": pick(rng, BATCH_REDUCTIONS)}
        if rng.random() < 0.3:
            args["weight"] = X.values(rng, "positive", (E.shape[0],), dtype)
        return X.Example(args)

    X.declare(gen_triplet, triplet_margin_loss, TripletMarginLoss)
    X.declare(gen_twd, triplet_margin_with_distance_loss, TripletMarginWithDistanceLoss)
    X.declare(gen_cosine_embedding, cosine_embedding_loss, CosineEmbeddingLoss)
    X.declare(gen_contrastive, contrastive_loss, ContrastiveLoss)
    X.declare(gen_cosine_distance, cosine_distance_loss, CosineDistanceLoss)
    X.declare(gen_margin_ranking, margin_ranking_loss, MarginRankingLoss)
    X.declare(gen_hinge_embedding, hinge_embedding_loss, HingeEmbeddingLoss)
    X.declare(gen_batch_hard, batch_hard_triplet_loss, BatchHardTripletLoss)
    X.declare(gen_batch_all, batch_all_triplet_loss, BatchAllTripletLoss)
    X.declare(gen_nt_xent, nt_xent_loss, NTXentLoss)


_declare_examples()

# Metadata for adapters that split the operands along axis 0 (fastloss.dask,
# docs/conventions.md): per-row targets and weights lack the features axis
# and are split with the rows; the in-batch losses cannot be split.
for _f in (triplet_margin_loss, triplet_margin_with_distance_loss, cosine_embedding_loss, contrastive_loss,
           cosine_distance_loss):
    _f._per_item_args = {"target": -1, "weight": -1}
for _f in (batch_hard_triplet_loss, batch_all_triplet_loss, nt_xent_loss):
    _f._unsplittable = ("each row's loss depends on every other row of the batch (its N x N similarities), "
                        "so the batch cannot be split")
del _f
