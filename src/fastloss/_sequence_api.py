"""The Python side of the sequence driver: the one call path of CTC.

Everything a sequence loss checks is here, once: the input's layout
((T, N, C), batch-first (N, T, C), or unbatched (T, C)), the targets
(padded (N, S) or PyTorch's concatenated 1-D form, int64 and int32 read in
place), the lengths (arrays or sequences of integers, each within its
bound), ``blank``, the reduction, ``out=`` and threads.  Target labels are
checked by the driver before anything is written.  The kernels' float64
per-sample losses are reduced here in sample order.
"""
from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import numpy as np

from . import _check, _sequence
from ._chunks import _REQUEST, Planned, index_offset
from ._alloc import empty
from ._config import _threads
from ._validate import (
    F32,
    REDUCTIONS,
    as_input,
    boolean,
    check_no_overlap,
    check_out,
    check_reduction,
)

I64 = np.dtype(np.int64)
I32 = np.dtype(np.int32)


def _int_scalar(v, name: str, op: str) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{op}: {name} must be an integer, got {v!r}")
    return int(v)


def _lengths(v, name: str, op: str, N: int, unbatched: bool) -> np.ndarray:
    """Lengths as an int64 (N,) array: from an array, a sequence or (unbatched) an int."""
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must hold integers, got {v!r}")
    try:
        a = v if type(v) is np.ndarray else np.asarray(v)
    except Exception as exc:
        raise TypeError(f"{op}: {name} must be an integer array or a sequence of integers, "
                        f"got {type(v).__name__}") from exc
    if a.dtype.kind not in "iu":
        if a.size == 0 and a.dtype.kind in "fb":
            a = a.astype(I64)  # an empty list (NumPy makes it float64): no value to misread
        else:
            raise TypeError(f"{op}: {name} must hold integers, got dtype {a.dtype}")
    want = (1,) if unbatched else (N,)
    if unbatched and a.shape == ():
        a = a.reshape(1)
    if a.shape != want:
        exp = "() or (1,)" if unbatched else f"({N},) (one per sample)"
        raise ValueError(f"{op}: {name} must have shape {exp}, got shape {a.shape}")
    if a.dtype.kind == "u" and a.size and int(a.max()) > 2 ** 62:
        raise ValueError(f"{op}: {name} holds {int(a.max())}, too large for a length")
    if a.dtype is not I64 or not a.flags.c_contiguous or not a.flags.aligned:
        a = _copy(a, I64)
    return a


def _copy(a: np.ndarray, dtype) -> np.ndarray:
    """An aligned C-contiguous copy (np.ascontiguousarray would return a
    misaligned array as it is, and the kernels must not read one)."""
    return np.array(a, dtype=dtype, order="C", copy=True)


def _targets(tg, op: str, N: int, unbatched: bool, tl: np.ndarray):
    """(labels, offsets, is_int64): labels int64/int32 in place, offsets of each sample's first label."""
    if isinstance(tg, np.ndarray):
        t = tg
    else:
        try:
            t = np.asarray(tg)
        except Exception as exc:
            raise TypeError(f"{op}: targets must be an integer array, got {type(tg).__name__}") from exc
    if t.size == 0 and t.dtype.kind in "fb":
        t = t.astype(I64)  # an empty list (NumPy makes it float64): no label to misread
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: targets must hold integer class labels, got dtype {t.dtype}")
    if unbatched:
        if t.ndim != 1:
            raise ValueError(f"{op}: targets of an unbatched (T, C) input must be 1-D (S,), got shape {t.shape}")
        if tl[0] > t.shape[0]:
            raise ValueError(f"{op}: target_lengths = {int(tl[0])} is longer than targets "
                             f"(shape {t.shape})")
        off = np.zeros(1, I64)
    elif t.ndim == 2:
        if t.shape[0] != N:
            raise ValueError(f"{op}: padded targets must have shape (N, S) = ({N}, S), got {t.shape}")
        S = t.shape[1]
        over = tl > S
        if over.any():
            n = int(np.flatnonzero(over)[0])
            raise ValueError(f"{op}: target_lengths[{n + index_offset()}] = {int(tl[n])} is longer than the padded "
                             f"targets' S = {S}")
        off = np.arange(N, dtype=I64) * S
    elif t.ndim == 1:
        over = tl > t.shape[0]
        if over.any():  # (before the sum: huge lengths must not wrap it around to a plausible total)
            n = int(np.flatnonzero(over)[0])
            raise ValueError(f"{op}: target_lengths[{n}] = {int(tl[n])} is longer than the concatenated "
                             f"targets ({t.shape[0]} labels)")
        total = int(tl.sum())
        if t.shape[0] != total:
            raise ValueError(f"{op}: concatenated 1-D targets must have sum(target_lengths) = {total} "
                             f"labels, got {t.shape[0]}")
        off = np.zeros(N, I64)
        if N > 1:
            np.cumsum(tl[:-1], out=off[1:])
    else:
        raise ValueError(f"{op}: targets must be (N, S) padded or 1-D concatenated, got shape {t.shape}")
    if t.dtype is I64 or t.dtype is I32 or t.dtype == I64 or t.dtype == I32:
        if not (t.flags.c_contiguous and t.flags.aligned):
            t = _copy(t, t.dtype)
    else:
        if t.dtype.kind == "u" and t.size and int(t.max()) > 2 ** 63 - 1:
            i = int(np.argmax(t.reshape(-1) > 2 ** 63 - 1))
            raise ValueError(f"{op}: targets hold {int(t.reshape(-1)[i])}, not a class label")
        t = _copy(t, I64)
    return t, off, t.dtype == I64


def _weight(weight, op: str, N: int, unbatched: bool, dt) -> np.ndarray:
    """Per-sample weights as an (N,) array of the working dtype."""
    try:
        a = np.asarray(weight)
    except Exception as exc:
        raise TypeError(f"{op}: weight must be a real array, got {type(weight).__name__}") from exc
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{op}: weight must be a real array, got dtype {a.dtype}")
    if unbatched and a.shape == ():
        a = a.reshape(1)
    if a.shape != (N,):
        exp = "() or (1,)" if unbatched else f"({N},) (one per sample)"
        raise ValueError(f"{op}: weight must have shape {exp}, got shape {a.shape}")
    return _copy(a, dt) if (a.dtype != dt or not (a.flags.c_contiguous and a.flags.aligned)) else a


def _bad_label(op, t, bad, off, padded, C, blank):
    n, j, v = bad
    if padded:
        where = f"targets[{n + index_offset()}, {j}]"
    elif t.ndim == 1 and len(off) > 1:
        where = f"targets[{int(off[n]) + j}] (sample {n}, position {j})"
    else:
        where = f"targets[{j}]"
    if v == blank:
        raise ValueError(f"{op}: {where} = {v} is the blank label (blank = {blank}); "
                         f"targets must not contain it")
    raise ValueError(f"{op}: {where} = {v} is out of bounds: labels must be in [0, {C}) (n_classes = {C})")


def ctc(op, log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
        zero_infinity=False, from_logits=False, batch_first=False, return_grad=False, out=None,
        n_threads=None, loss_out=None, weight=None, check=False):
    """Validate, run the CTC kernel once, and reduce.

    Returns the value (a float; for reduction="none" an array of the
    per-sample losses, 0-d for unbatched input, written into ``loss_out``
    when given) or ``(value, grad)``.  check=True runs fastloss.diagnose's
    checks first (fastloss._check).
    """
    if reduction != "mean" and reduction != "sum" and reduction != "none":
        check_reduction(reduction, op, REDUCTIONS)
    nt = _threads(n_threads, op)
    zero_infinity = boolean(zero_infinity, "zero_infinity", op)
    from_logits = boolean(from_logits, "from_logits", op)
    batch_first = boolean(batch_first, "batch_first", op)
    return_grad = bool(return_grad)
    if out is not None and not return_grad:
        raise ValueError(f"{op}: out= is the gradient's buffer; pass return_grad=True with it")
    if loss_out is not None and reduction != "none":
        raise ValueError(f"{op}: loss_out= is the per-sample losses' buffer and needs reduction='none', "
                         f"got reduction={reduction!r}")
    x = as_input(log_probs, "log_probs", op)
    dt, shape = x.dtype, x.shape
    if x.ndim == 2:
        unbatched = True
        T, C = shape
        N, st, sn = 1, C, 0
    elif x.ndim == 3:
        unbatched = False
        if batch_first:
            N, T, C = shape
            st, sn = C, T * C
        else:
            T, N, C = shape
            st, sn = N * C, C
    else:
        lay = "(N, T, C)" if batch_first else "(T, N, C)"
        raise ValueError(f"{op}: log_probs must have shape {lay} or (T, C), got shape {shape}")
    if C < 1:
        raise ValueError(f"{op}: log_probs must have at least one class (the blank), got shape {shape}")
    if check:
        _check.check_call("ctc_loss", x, targets, n_threads=nt, from_logits=from_logits,
                          others={"input_lengths": input_lengths, "target_lengths": target_lengths})
    blank = _int_scalar(blank, "blank", op)
    if not 0 <= blank < C:
        raise ValueError(f"{op}: blank must be in label range [0, {C}), got {blank}")
    il = _lengths(input_lengths, "input_lengths", op, N, unbatched)
    tl = _lengths(target_lengths, "target_lengths", op, N, unbatched)
    for name, a in (("input_lengths", il), ("target_lengths", tl)):
        neg = a < 0
        if neg.any():
            n = int(np.flatnonzero(neg)[0])
            where = name if unbatched else f"{name}[{n + index_offset()}]"
            raise ValueError(f"{op}: {where} = {int(a[n])} is negative")
    over = il > T
    if over.any():
        n = int(np.flatnonzero(over)[0])
        where = "input_lengths" if unbatched else f"input_lengths[{n + index_offset()}]"
        raise ValueError(f"{op}: {where} = {int(il[n])} is longer than the input's T = {T}")
    t, off, t64 = _targets(targets, op, N, unbatched, tl)

    g = None
    if return_grad:
        g = empty(shape, dt) if out is None else check_out(out, "out", op, dt, shape)
        if out is not None:
            check_no_overlap(g, "out", op, x, t)
    if loss_out is not None:
        loss_out = check_out(loss_out, "loss_out", op, dt, () if unbatched else (N,))
        check_no_overlap(loss_out, "loss_out", op, x, t, g if out is not None else None)
    div = np.maximum(tl, 1).astype(np.float64)
    w = None
    if weight is not None:
        w = _weight(weight, op, N, unbatched, dt)
        if loss_out is not None:
            check_no_overlap(loss_out, "loss_out", op, w)
    wd = np.ones(N) if w is None else w.astype(np.float64)
    wsum = float(N) if w is None else float(np.sum(wd))
    req = _REQUEST.get()
    if req is not None and req.phase.startswith("samples"):  # a chunk of samples (fastloss.dask)
        if req.phase == "samples_plan":
            if unbatched or t.ndim != 2:
                return None  # no plan: one sample, or concatenated targets (split by data-dependent lengths)
            req.plan = SamplesPlan(op, dt, 0 if batch_first else 1, functools.partial(_ctc_wsum, op, dt),
                                   functools.partial(_ctc_finish, reduction))
            raise Planned
        wsum = req.div  # the whole batch's (summed weights, or N)
    if reduction == "mean":
        gs = wd / (div * wsum) if N else wd
    else:
        gs = wd.copy()
    nll = np.empty(N)
    Tmax = int(il.max()) if N else 0
    Smax = int(tl.max()) if N else 0
    work = int(np.dot(il, 2 * tl + 1)) if N else 0
    bad = _sequence.ctc(dt is not F32, x, g, T, N, C, st, sn, t, t64, off, il, tl, blank, from_logits,
                        gs, nll, Tmax, Smax, work, nt)
    if bad is not None:
        _bad_label(op, t, bad, off, t.ndim == 2, C, blank)
    if zero_infinity:
        nll[nll == np.inf] = 0.0
    if w is not None:
        nll = wd * np.where(wd == 0, 0.0, nll)  # a sample of weight 0 contributes 0, never 0 * inf
    if req is not None and req.phase == "samples":
        req.parts = (nll, div)  # the chunk's per-sample losses and divisors: the sums are the whole batch's
    if reduction == "none":
        if loss_out is not None:
            loss_out[...] = nll.reshape(loss_out.shape)
            value = loss_out
        else:
            value = nll.astype(dt).reshape(()) if unbatched else nll.astype(dt)
    elif reduction == "sum":
        value = float(np.sum(nll))
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            value = float(np.sum(nll / div) / wsum) if N else float("nan")
    if return_grad:
        return value, g
    return value


class SamplesPlan(NamedTuple):
    """How CTC splits along its samples (fastloss.dask; see fastloss._chunks):
    each chunk of samples runs the kernel with the whole batch's ``wsum``
    (the mean's divisor: N, or the summed weights) and hands out its
    float64 per-sample losses and divisors; ``finish`` reduces their
    concatenation exactly as one call does (np.sum over the batch)."""
    op: str
    dtype: object
    batch_axis: int         # of log_probs: 1 for (T, N, C), 0 for batch-first (N, T, C)
    wsum: Callable          # wsum(weight or None, N) -> the mean's divisor of the whole batch
    finish: Callable        # finish(every chunk's (nll, div), wsum) -> the value


def _ctc_wsum(op, dt, weight, N):
    if weight is None:
        return float(N)
    return float(np.sum(_weight(weight, op, N, False, dt).astype(np.float64)))


def _ctc_finish(reduction, parts_list, wsum):
    nll = np.concatenate([p[0] for p in parts_list]) if parts_list else np.empty(0)
    div = np.concatenate([p[1] for p in parts_list]) if parts_list else np.empty(0)
    if reduction == "sum":
        return np.float64(float(np.sum(nll)))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.float64(float(np.sum(nll / div) / wsum) if len(nll) else float("nan"))
