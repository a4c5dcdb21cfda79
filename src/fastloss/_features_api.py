"""The Python side of the row-over-features driver: one call path for the
losses over rows of D features (triplets and pairs), one for the in-batch
losses, and the base class of their ``nn``-style objects.

A row loss adds a ``_FeatSpec`` (its kernel, name, operand names and the
target it takes) and a thin function that checks its own parameters;
everything else -- array conversion, shapes, per-row targets and weights,
reductions, the tuple of ``out=`` buffers, threads, the bad-target
message -- is here, once.

Shapes.  The operands have one shape, (..., D): the last axis holds the D
features, every other axis indexes rows (``(D,)`` is one unbatched row, as
in PyTorch).  A per-row target or weight has the shape of the rows (the
operand's shape without the last axis).
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple, Optional

import numpy as np

from . import _check, _features
from ._alloc import empty
from ._chunks import _REQUEST, Plan, Planned, summed
from ._config import _threads
from ._validate import (
    F32,
    as_broadcast,
    as_input,
    as_operand,
    check_no_overlap,
    check_out,
    check_reduction,
    fmt_index,
)

VALUE, GRAD = 0, 1
REDUCTIONS = ("mean", "sum", "none")
BATCH_REDUCTIONS = ("mean", "sum")
#: the eps of the cosine normalisation in the in-batch losses (F.normalize's)
NORMALIZE_EPS = 1e-12
#: bytes of S that batch-hard computes and mines at a time: blocks of 256
#: rows at N = 4096 float32 (64-row blocks made the BLAS 35 % slower)
_HARD_BLOCK_BYTES = 1 << 22
_IDS = _features.LOSS_IDS
_PASS = _features.PASS_IDS


class _FeatSpec(NamedTuple):
    op: str                   # the public name, used in every message
    kid: int                  # kernel id in _features.LOSS_IDS
    names: tuple              # the operands' argument names, in order
    target: str = ""          # "" none, "sign" (+-1), "binary" (0/1)
    max_ndim: int = 0         # 0: (..., D); else the most dimensions an operand may have


def spec(op: str, kernel: str, names: tuple, target: str = "", max_ndim: int = 0) -> _FeatSpec:
    return _FeatSpec(op, _IDS[kernel], names, target, max_ndim)


def out_tuple(out, names: tuple, op: str):
    """``out=`` as a tuple of one buffer per gradient, or None."""
    if out is None:
        return None
    if not (isinstance(out, tuple) and len(out) == len(names)):
        raise ValueError(f"{op}: out must be a tuple of {len(names)} arrays, the gradients' buffers "
                         f"({', '.join(names)}), got {type(out).__name__}"
                         + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""))
    return out


def _no_out_without_grad(out, mode, op):
    if out is not None and mode == VALUE:
        raise ValueError(f"{op}: out= is the gradients' buffers; pass return_grad=True with it")


def _operands(sp: _FeatSpec, arrays, op):
    """The operands as C-contiguous arrays of one dtype and shape."""
    names = sp.names
    x0 = as_input(arrays[0], names[0], op)
    dt, shape = x0.dtype, x0.shape
    if x0.ndim == 0:
        raise ValueError(f"{op}: {names[0]} must have at least 1 dimension (the features), got a 0-d array")
    if sp.max_ndim and x0.ndim > sp.max_ndim:
        raise ValueError(f"{op}: {names[0]} must have shape (D,) or (N, D), got {shape}")
    if shape[-1] == 0:
        raise ValueError(f"{op}: {names[0]} must have at least one feature (last axis), got shape {shape}")
    out = [x0]
    for a, nm in zip(arrays[1:], names[1:]):
        s = np.shape(a) if not isinstance(a, np.ndarray) else a.shape
        if s != shape:
            raise ValueError(f"{op}: {nm} must have the same shape as {names[0]}, got "
                             f"{names[0]}: {shape} and {nm}: {s}")
        out.append(as_operand(a, nm, op, dt, shape))
    return out, dt, shape


def _per_row(a, name, op, dt, rows):
    """A per-row target: exactly the rows' shape, converted to dt."""
    s = np.shape(a) if not isinstance(a, np.ndarray) else a.shape
    if s != rows:
        raise ValueError(f"{op}: {name} must have shape {rows} (one value per row), got {s}")
    return as_operand(a, name, op, dt, rows)


def _bad_target(sp, t, bad, rows):
    idx = np.unravel_index(int(bad), rows) if rows else ()
    val = t.reshape(-1)[int(bad)]
    where = fmt_index("target", idx)
    want = "-1 and 1" if sp.target == "sign" else "0 and 1"
    raise ValueError(f"{sp.op}: target must contain only {want}, got {where} = {val}")


def run_rows(sp: _FeatSpec, arrays, target=None, weight=None, params=(0.0, 0.0, 0.0, 0, 0),
             reduction="mean", mode=VALUE, out=None, n_threads=None, op=None, loss_out=None, check=False):
    """Validate, run the fused row kernel once, and shape the result.

    mode VALUE -> value; mode GRAD -> (value, g_1, ..., g_k), one gradient
    per operand in argument order.  value is a float for "mean"/"sum" and
    an array of the rows' shape for "none" (in ``loss_out`` if given);
    the gradient is that of the returned value (of the sum for "none").
    check=True runs fastloss.diagnose's checks first (fastloss._check).
    """
    op = op or sp.op
    if reduction != "mean" and reduction != "sum" and reduction != "none":
        check_reduction(reduction, op, REDUCTIONS)
    _no_out_without_grad(out, mode, op)
    if loss_out is not None and reduction != "none":
        raise ValueError(f"{op}: loss_out is the buffer of the per-row losses of reduction='none', "
                         f"got reduction={reduction!r}")
    nt = _threads(n_threads, op)
    if check:   # the first operand as the input, the target (else the second operand) as the target
        k = 1 if sp.target else 2
        _check.check_call(sp.op, arrays[0], target if sp.target else arrays[1], weight=weight, n_threads=nt,
                          others=dict(zip(sp.names[k:], arrays[k:])))
    xs, dt, shape = _operands(sp, arrays, op)
    rows = shape[:-1]
    D = shape[-1]
    R = math.prod(rows)
    t = _per_row(target, "target", op, dt, rows) if sp.target else None
    w = None if weight is None else as_broadcast(weight, "weight", op, dt, rows)
    grads = [None, None, None]
    if mode == GRAD:
        bufs = out_tuple(out, sp.names, op)
        for i, nm in enumerate(sp.names):
            if bufs is None:
                grads[i] = empty(shape, dt)
            else:
                grads[i] = check_out(bufs[i], f"out[{i}]", op, dt, shape)
        if bufs is not None:
            for i in range(len(xs)):
                check_no_overlap(grads[i], f"out[{i}]", op, *xs, t, w, *grads[i + 1:len(xs)])
    lo = None
    if reduction == "none":
        if loss_out is None:
            lo = empty(rows, dt)
        else:
            lo = check_out(loss_out, "loss_out", op, dt, rows)
            check_no_overlap(lo, "loss_out", op, *xs, t, w, *grads[:len(xs)])
    n_rows = R
    req = _REQUEST.get()
    parts = None
    if req is not None:  # a chunk of a larger array (fastloss.dask, see _chunks)
        if req.phase == "plan":
            req.plan = Plan(op, "features", dt, len(shape) >= 2, math.prod(rows[1:]), _features.block_rows(D),
                            len(shape) - 1, _rows_of if reduction == "mean" else None, None,
                            summed(functools.partial(finish, reduction)), reduction != "none")
            raise Planned
        per = _features.block_rows(D)
        parts = np.empty((R + per - 1) // per, np.float64)
        req.parts = parts
        if reduction == "mean":
            n_rows = req.div
    gscale = 1.0 / n_rows if reduction == "mean" and n_rows else 1.0
    pa, pb, pc, i0, i1 = params
    xa, xb = xs[0], xs[1] if len(xs) > 1 else xs[0]  # a one-operand kernel does not read b
    xc = xs[2] if len(xs) > 2 else None
    total, bad = _features.run(sp.kid, dt is not F32, xa, xb, xc, t, w, grads[0], grads[1], grads[2], lo,
                               R, D, pa, pb, pc, i0, i1, mode, gscale, nt, parts)
    if bad >= 0:
        _bad_target(sp, t, bad, rows)
    value = lo if reduction == "none" else finish(reduction, total, n_rows)
    if mode == VALUE:
        return value
    return (value,) + tuple(grads[:len(xs)])


def finish(reduction, total, n_rows):
    """The value of a reduced row loss from its float64 sum and the rows."""
    if reduction == "sum":
        return total
    return total / n_rows if n_rows else float("nan")


def _rows_of(shape):
    return math.prod(shape[:-1])


# ------------------------------------------------------------ in-batch losses

def check_distance(distance, op: str, names=("euclidean", "squared_euclidean", "cosine")) -> str:
    if isinstance(distance, str) and distance in names:
        return distance
    raise ValueError(f"{op}: distance must be one of {', '.join(repr(n) for n in names)}, got {distance!r}")


def _label_codes(labels, N, op, allow_none=False):
    """Labels as int32 codes 0 .. K-1 (np.unique's inverse) and the count of each."""
    if labels is None:
        if not allow_none:
            raise TypeError(f"{op}: labels must be an array of N integer class labels, got None")
        if N % 2:
            raise ValueError(f"{op}: labels=None pairs row i with row i + N/2 and needs an even N, got N = {N}")
        codes = (np.arange(N, dtype=np.int32) % (N // 2)).astype(np.int32)
        return codes, np.full(N // 2, 2, dtype=np.int64)
    lab = labels if isinstance(labels, np.ndarray) else np.asarray(labels)
    if lab.dtype.kind not in "iu":
        raise TypeError(f"{op}: labels must hold integer class labels, got dtype {lab.dtype}")
    if lab.shape != (N,):
        raise ValueError(f"{op}: labels must have shape ({N},) (one label per row of embeddings), got {lab.shape}")
    uniq, inv = np.unique(lab, return_inverse=True)
    return np.ascontiguousarray(inv, dtype=np.int32), np.bincount(inv, minlength=len(uniq))


def gram(E: np.ndarray) -> np.ndarray:
    """E E^T through NumPy's matmul (BLAS gemm).  The right operand is a
    transposed copy of E: with E itself NumPy takes its syrk path, whose
    mirror copy made it 3-6x slower than gemm here (N = 4096, D = 128)."""
    N = E.shape[0]
    S = np.empty((N, N), E.dtype)
    np.matmul(E, E.copy().T, out=S)
    return S


_BATCH_OPS = {"hard": "batch_hard_triplet_loss", "all": "batch_all_triplet_loss", "ntxent": "nt_xent_loss"}


def run_batch(kind: str, embeddings, labels, *, margin=0.0, temperature=1.0, distance="euclidean",
              soft=False, weight=None, reduction="mean", mode=VALUE, out=None, n_threads=None, op="", check=False):
    """The in-batch losses: kind "hard" (batch-hard triplets), "all"
    (batch-all triplets) or "ntxent".  Returns the value, or (value, grad).
    check=True runs fastloss.diagnose's checks first (fastloss._check)."""
    if reduction != "mean" and reduction != "sum":
        check_reduction(reduction, op, BATCH_REDUCTIONS)
    _no_out_without_grad(out, mode, op)
    nt = _threads(n_threads, op)
    if check:
        _check.check_call(_BATCH_OPS[kind], embeddings, labels, weight=weight, n_threads=nt)
    E = as_input(embeddings, "embeddings", op)
    dt = E.dtype
    if E.ndim != 2:
        raise ValueError(f"{op}: embeddings must have shape (N, D), got {E.shape}")
    N, D = E.shape
    if D == 0:
        raise ValueError(f"{op}: embeddings must have at least one feature, got shape {E.shape}")
    codes, counts = _label_codes(labels, N, op, allow_none=(kind == "ntxent"))
    if kind == "ntxent":
        if not (counts >= 2).any():
            raise ValueError(f"{op}: no positive pair in the batch (no two rows share a label)")
    elif not ((counts >= 2).any() and len(counts) >= 2):
        raise ValueError(f"{op}: no anchor has both a positive (another row with its label) and a "
                         f"negative (a row with another label) in the batch; labels take "
                         f"{len(counts)} distinct value(s)")
    w = None if weight is None else as_broadcast(weight, "weight", op, dt, (N,))
    g = None
    if mode == GRAD:
        if out is not None:
            buf = out[0] if isinstance(out, tuple) and len(out) == 1 else out
            g = check_out(buf, "out", op, dt, (N, D))
            check_no_overlap(g, "out", op, E, w)
        else:
            g = empty((N, D), dt)
    f64 = dt is not F32
    kd = _features.DISTANCES["cosine"] if kind == "ntxent" else _features.DISTANCES[distance]
    pa = temperature if kind == "ntxent" else margin
    sq = np.empty(N)
    inv = np.empty(N)
    ntv = np.empty(2 * N, dt)
    loss = np.empty(N)
    cnt = np.empty(N)
    # the rows of each class, ascending: the positives of an anchor without a scan
    cmem = np.argsort(codes, kind="stable").astype(np.int64)
    cstart = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=cstart[1:])
    # batch-hard mines S block by block of rows while the block is in
    # cache; the others need all of S (it becomes the gradient's matrix)
    S = gram(E) if kind != "hard" else None

    def bt(name, s=None, r0=0, r1=-1, **kw):
        a = dict(pidx=None, nidx=None, coef=None, part=None)
        a.update(kw)
        _features.batch(_PASS[name], f64, E, S if s is None else s, codes, w, sq, inv, ntv, cstart, cmem, loss,
                        cnt, a["pidx"], a["nidx"], a["coef"], a["part"], g, N, D, pa, NORMALIZE_EPS, kd,
                        int(soft), kw.get("gscale", 1.0), mode, kw.get("threads", nt), r0, r1)

    bt("norms")
    pidx = nidx = coef = None
    if kind == "hard":
        pidx = np.empty(N, np.int64)
        nidx = np.empty(N, np.int64)
        coef = np.empty(8 * N) if mode == GRAD else None
        # On one thread, blocks of rows of S mined while in cache.  On more,
        # one matmul: BLAS's threads spin for a while after each call, and
        # alternating them block by block with fastloss's OpenMP team made
        # the call several times slower on 2 cores.
        B = max(1, min(N, _HARD_BLOCK_BYTES // (N * E.itemsize))) if nt == 1 else N
        Sb = np.empty((B, N), dt)
        Et = E.copy().T
        for r0 in range(0, N, B):
            r1 = min(N, r0 + B)
            np.matmul(E[r0:r1], Et, out=Sb[:r1 - r0])
            bt("hard_mine", s=Sb, r0=r0, r1=r1, pidx=pidx, nidx=nidx, coef=coef)
    else:
        bt("all_rows" if kind == "all" else "ntxent_rows")
    total = float(loss.sum())
    count = float(cnt.sum())
    if reduction == "sum":
        value, gscale = total, 1.0
    elif count:
        value, gscale = total / count, 1.0 / count
    else:  # batch-all with no triplet of positive loss: 0 (pytorch-metric-learning's reducer)
        value, gscale = (total if total != total else 0.0), 0.0
    if mode == VALUE:
        return value
    if kind == "hard":
        bt("hard_scatter", pidx=pidx, nidx=nidx, coef=coef, gscale=gscale)
    else:
        nb = (N + _features.TILE - 1) // _features.TILE
        part = None if kd == _features.DISTANCES["cosine"] else np.empty(nb * (nb + 1) * _features.TILE)
        bt("sym", part=part)
        np.matmul(S, E, out=g)
        bt("final", part=part, gscale=gscale)
    return value, g


# ------------------------------------------------------------ base class

class _FeatureLoss:
    """Base of the ``nn``-style objects of the row-over-features losses.

    A subclass implements ``_run(*operands, weight, mode, out)`` with its
    stored options and declares ``_grad_args`` (the operands that get a
    gradient, in order).  Calling the object gives the value;
    ``value_and_grad`` the value and one gradient per differentiable
    operand.  The gradient includes the reduction's scaling and the
    weights.
    """

    _grad_args: tuple = ()
    _reductions = REDUCTIONS

    def __init__(self, reduction: str = "mean", n_threads: Optional[int] = None):
        op = type(self).__name__
        self.reduction = check_reduction(reduction, op, self._reductions)
        if n_threads is not None:
            _threads(n_threads, op)
        self.n_threads = n_threads

    def _run(self, *args, weight=None, mode=VALUE, out=None):  # pragma: no cover - abstract
        raise TypeError(f"{type(self).__name__} is the abstract base of the feature losses; "
                        f"use a concrete loss class")

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._repr_args())
        return f"{type(self).__name__}({args})"

    def _repr_args(self):
        return [("reduction", self.reduction)]
