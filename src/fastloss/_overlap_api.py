"""The Python side of the set-overlap driver: one call path for the
segmentation overlap losses, one for the Lovasz losses, one for the box
losses, and the base class of their ``nn``-style objects.

Every check happens here, before any kernel runs: shapes and modes, target
dtypes, classes, per-class weights, parameters, ``out=`` buffers, threads.
The kernels then check the target values in their own first pass (labels
in [0, C), masks in [0, 1]) and this module turns a bad one into a message
naming its position and value.

Shapes.  Segmentation inputs are ``(N, C, d1, ..., dk)`` with the classes on
axis 1 (multiclass, multilabel) or ``(N, d1, ..., dk)`` / ``(N, 1, d1,
..., dk)`` (binary); multiclass targets are integer labels ``(N, d1, ...,
dk)``, the other modes take a target of the input's shape (a mask or
probabilities).  Boxes are ``(..., 4)`` as ``(x1, y1, x2, y2)``.
"""
from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple, Optional

import numpy as np

from . import _check, _overlap
from ._alloc import empty
from ._chunks import _REQUEST, Plan, Planned, index_offset, summed
from ._config import _threads
from ._validate import (
    F32,
    REDUCTIONS,
    as_input,
    as_operand,
    boolean,
    check_no_overlap,
    check_out,
    check_reduction,
    nonneg,
    positive,
)

MODES = ("binary", "multiclass", "multilabel")
_TCODES = {np.dtype(k): v for k, v in _overlap.TARGET_CODES.items()}
_MAX_LOVASZ = 2 ** 31  # 31-bit positions in the sort (fl_overlap_lovasz_math.h)


# ------------------------------------------------------------------ checks

def check_mode(mode, op: str, allowed=MODES) -> str:
    if type(mode) is str and mode in allowed:
        return mode
    raise ValueError(f"{op}: mode must be one of {', '.join(repr(m) for m in allowed)}, got {mode!r}")


def check_ignore(ignore_index, op: str):
    """None (nothing ignored) or an int64 label value."""
    if ignore_index is None:
        return None
    if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"{op}: ignore_index must be an integer or None, got {ignore_index!r}")
    v = int(ignore_index)
    if not -(2 ** 63) <= v < 2 ** 63:
        raise ValueError(f"{op}: ignore_index must fit in int64, got {v}")
    return v


def _labels(t, op: str, shape: tuple, items: tuple) -> np.ndarray:
    """Integer class labels of exactly ``items``, read in place when int64/int32/uint8."""
    if t.shape != items:
        raise ValueError(f"{op}: mode='multiclass' expects target of shape {items} (class labels) for input "
                         f"of shape {shape}, got target of shape {t.shape}")
    if t.dtype.kind not in "iub":
        raise TypeError(f"{op}: mode='multiclass' needs integer class labels of shape {items} as target, "
                        f"got dtype {t.dtype}")
    if t.dtype.kind == "b":
        t = t.view(np.uint8)
    if t.dtype.kind == "u" and t.dtype.itemsize == 8 and t.size and int(t.max()) >= 2 ** 63:
        i = int(np.argmax(t.reshape(-1) >= 2 ** 63))  # beyond int64: refused with its real value
        raise ValueError(f"{op}: Target {int(t.reshape(-1)[i])} is out of bounds ({_where(t.shape, i)} = "
                         f"{int(t.reshape(-1)[i])}, n_classes = {shape[1]})")
    t = np.ascontiguousarray(t) if t.dtype in _TCODES else np.ascontiguousarray(t, dtype=np.int64)
    if not t.flags.aligned:  # a misaligned buffer (np.frombuffer at an odd offset): one copy
        t = t.copy()
    return t


def _dense_target(t, op: str, dt, shape: tuple, mode: str) -> np.ndarray:
    """A mask or probabilities of the input's shape (a binary input (N, 1, ...)
    also takes a target (N, ...)), as a C-contiguous array of dtype dt."""
    if isinstance(t, np.ndarray) and t.dtype.kind not in "biuf":
        raise TypeError(f"{op}: target must be a real array (a mask or probabilities), got dtype {t.dtype}")
    a = t if type(t) is np.ndarray else np.asarray(t)
    if a.shape != shape:
        if mode == "binary" and len(shape) >= 2 and shape[1] == 1 and a.shape == shape[:1] + shape[2:]:
            a = a.reshape(shape)
        else:
            want = f"{shape}" + (f" or {shape[:1] + shape[2:]}" if mode == "binary" and len(shape) >= 2
                                 and shape[1] == 1 else "")
            raise ValueError(f"{op}: mode={mode!r} expects a target of shape {want} (the input's), got "
                             f"target of shape {a.shape}")
    return as_operand(a, "target", op, dt, shape)


def check_classes(classes, op: str, C: int) -> Optional[np.ndarray]:
    """A (C,) uint8 selection from a list of class indices (None: all)."""
    if classes is None:
        return None
    try:
        idx = np.asarray(classes)
    except Exception:
        idx = None
    if idx is None or idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
        raise TypeError(f"{op}: classes must be a sequence of class indices, got {classes!r}")
    bad = [int(c) for c in idx if not 0 <= int(c) < C]
    if bad:
        raise ValueError(f"{op}: classes must be in [0, {C}) (n_classes = {C}), got {bad[0]}")
    if idx.size == 0:
        raise ValueError(f"{op}: classes must name at least one class, got an empty list")
    sel = np.zeros(C, np.uint8)
    sel[idx.astype(np.int64)] = 1
    return sel


def class_weights(weight, op: str, C: int) -> Optional[np.ndarray]:
    if weight is None:
        return None
    w = np.asarray(weight)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"{op}: weight must be a real array of per-class weights, got dtype {w.dtype}")
    if w.shape != (C,):
        raise ValueError(f"{op}: weight must be a 1-D array of n_classes = {C} elements, got shape {w.shape}")
    w = np.ascontiguousarray(w, dtype=np.float64)
    if not (w >= 0).all():
        i = int(np.flatnonzero(~(w >= 0))[0])
        raise ValueError(f"{op}: weight must be >= 0, got weight[{i}] = {w[i]}")
    return w


def _grad_out(out, op, dt, shape, return_grad, extra=()):
    if out is not None and not return_grad:
        raise ValueError(f"{op}: out= is the gradient's buffer; pass return_grad=True with it")
    if not return_grad:
        return None
    if out is None:
        return empty(shape, dt)
    g = check_out(out, "out", op, dt, shape)
    check_no_overlap(g, "out", op, *extra)
    return g


def _where(shape, flat) -> str:
    idx = np.unravel_index(int(flat), shape) if shape else ()
    if idx and index_offset():  # a chunk of a larger batch (fastloss.dask): the index in the whole batch
        idx = (int(idx[0]) + index_offset(),) + tuple(idx[1:])
    return f"target[{', '.join(str(int(i)) for i in idx)}]" if idx else "target"


def _reduce(losses: np.ndarray, reduction: str, per_image: bool, dt):
    """The sets' float64 losses (added in order) as the returned value."""
    if reduction == "none":
        return losses.astype(dt) if per_image else np.asarray(losses[0], dt)
    total = 0.0
    for v in losses.tolist():
        total += v
    if reduction == "sum" or len(losses) == 0:
        return total if len(losses) else (float("nan") if reduction == "mean" else 0.0)
    return total / len(losses)


# ------------------------------------------------------------------ segmentation

def seg_shape(x: np.ndarray, op: str, mode: str):
    """(N, C, S) of a segmentation input for a mode."""
    shape = x.shape
    if mode == "binary":
        if x.ndim < 1:
            raise ValueError(f"{op}: mode='binary' needs input of shape (N, ...) (a batch), got a 0-d array")
        return shape[0], 1, math.prod(shape[1:])
    if x.ndim < 2:
        raise ValueError(f"{op}: mode={mode!r} needs input of shape (N, C, ...) (classes on axis 1), "
                         f"got shape {shape}")
    if shape[1] < 1:
        raise ValueError(f"{op}: input must have at least one class, got shape {shape}")
    return shape[0], shape[1], math.prod(shape[2:])


def run_seg(op, input, target, *, mode, from_logits=True, smooth=0.0, eps=1e-7, alpha=0.5, beta=0.5,
            gamma=1.0, log_loss=False, ignore_index=None, classes=None, weight=None, per_image=False,
            reduction="mean", return_grad=False, out=None, n_threads=None, overlap_w=1.0, ce_w=0.0, check=False,
            terms=None, accumulate=False, gscale=1.0):
    """Validate, run both passes, shape the result: value, or (value, grad).
    check=True runs fastloss.diagnose's checks first (fastloss._check).

    For fastloss.CombinedLoss: ``terms``, a list, receives the two terms
    unweighted ``[overlap loss, mean cross-entropy]`` (per_image=False; the
    cross-entropy is summed in pass 1 even when ce_w is 0); ``accumulate``
    adds the gradient into ``out`` (given) instead of writing it;
    ``gscale`` multiplies the gradient (not the value)."""
    if reduction != "mean" and reduction != "sum" and reduction != "none":
        check_reduction(reduction, op, REDUCTIONS)
    mode = check_mode(mode, op)
    nt = _threads(n_threads, op)
    if check:
        _check.check_call(op, input, target, weight=weight, ignore_index=ignore_index, mode=mode,
                          from_logits=from_logits, n_threads=nt)
    from_logits = boolean(from_logits, "from_logits", op)
    per_image = boolean(per_image, "per_image", op)
    log_loss = boolean(log_loss, "log_loss", op)
    smooth = nonneg(smooth, "smooth", op)
    eps = positive(eps, "eps", op)
    ii = check_ignore(ignore_index, op)
    x = as_input(input, "input", op)
    dt, shape = x.dtype, x.shape
    N, C, S = seg_shape(x, op, mode)
    if mode == "binary" and classes is not None:
        raise ValueError(f"{op}: classes is not supported with mode='binary' (one class)")
    if mode == "binary" and weight is not None:
        raise ValueError(f"{op}: weight (per-class weights) is not supported with mode='binary' (one class)")
    sel = check_classes(classes, op, C)
    w = class_weights(weight, op, C)
    t = target if type(target) is np.ndarray else np.asarray(target)
    if mode == "multiclass":
        t = _labels(t, op, shape, shape[:1] + shape[2:])
        tcode = _TCODES[t.dtype]
    else:
        t = _dense_target(t, op, dt, shape, mode)
        tcode = _overlap.DENSE
    req = _REQUEST.get()
    if req is not None and req.phase.startswith("sets_"):  # a chunk of images of a larger batch (fastloss.dask)
        return _seg_chunk(req, op, x, t, tcode, mode, N, C, S, from_logits, ii, per_image, ce_w, w, sel,
                          (alpha, beta, gamma, smooth, eps, log_loss, overlap_w, ce_w), reduction,
                          return_grad, nt)
    g = _grad_out(out, op, dt, shape, return_grad, (x, t))
    tv = None if terms is None else np.zeros((N if per_image else 1, 2), np.float64)
    losses, bad = _overlap.seg(dt is not F32, x, t, tcode, g, N, C, S, mode == "multiclass", from_logits,
                               ii is not None, ii if ii is not None else 0, per_image,
                               ce_w != 0.0 or terms is not None, w, sel, alpha, beta, gamma, smooth, eps, log_loss,
                               overlap_w, ce_w, reduction == "mean", nt, terms=tv,
                               accumulate=accumulate and g is not None, gscale=gscale)
    if bad >= 0:
        _bad_target(op, t, bad, mode, C)
    if terms is not None:
        terms[:] = [_reduce(tv[:, 0].copy(), reduction, per_image, dt), _reduce(tv[:, 1].copy(), reduction,
                                                                                 per_image, dt)]
    value = _reduce(losses, reduction, per_image, dt)
    return (value, g) if return_grad else value


class SetsPlan(NamedTuple):
    """How a set-overlap loss splits along its images (fastloss.dask; see
    fastloss._chunks): the first pass of every chunk of images gives its
    groups' float64 sums; ``finish`` adds them in group order (per image
    with per_image) and computes the value and the coefficients of the
    gradient pass on the whole batch's sums."""
    op: str
    dtype: object
    groups: Callable       # groups(whole input shape) -> what every chunk's call needs of the whole batch:
    #                        blocks per group (the overlap sums), the number of images (Lovasz)
    finish: Callable       # finish(every chunk's parts, whole input shape) -> (value, coef)
    per_image: bool        # one value per image for reduction="none" (and coef rows per image)
    one_pass: bool = False  # Lovasz with per_image: each chunk's call gives its sets' losses and gradient


def _seg_dims(mode, shape):
    if mode == "binary":
        return shape[0], 1, math.prod(shape[1:])
    return shape[0], shape[1], math.prod(shape[2:])


def _seg_groups(mode, shape):
    return _overlap.seg_groups(*_seg_dims(mode, shape))


def _seg_finish(C, w, sel, params, per_image, reduction, dt, mode, parts_list, shape):
    N = shape[0]
    parts = np.concatenate(parts_list, axis=0) if parts_list else np.zeros((0, C, _overlap.K))
    nsets = N if per_image else 1
    if per_image:  # consecutive groups per image: add them image by image, in group order
        gpi = parts.shape[0] // N if N else 0
        sums = np.zeros((N, C, parts.shape[2]))
        by_image = parts.reshape(N, gpi, C, parts.shape[2])
        for j in range(gpi):
            sums += by_image[:, j]
    else:  # every group into one set, in order, from 0.0, as the driver's loop: a running sum
        # (np.cumsum adds in order) equals it but for the sign of a zero, which + 0.0 makes the same
        sums = np.zeros((1, C, parts.shape[2]))
        if parts.shape[0]:
            sums[0] = np.cumsum(parts, axis=0)[-1] + 0.0
    alpha, beta, gamma, smooth, eps, log_loss, overlap_w, ce_w = params
    set_scale = 1.0 / nsets if (reduction == "mean" and nsets > 0) else 1.0
    losses, coef = _overlap.seg_coefs(sums, C, w, sel, alpha, beta, gamma, smooth, eps, log_loss, overlap_w,
                                      ce_w, set_scale)
    value = _reduce(losses, reduction, per_image, dt)
    return (np.float64(value) if reduction != "none" else value), coef


def _seg_chunk(req, op, x, t, tcode, mode, N, C, S, from_logits, ii, per_image, ce_w, w, sel, params, reduction,
               return_grad, nt):
    """One chunk of images: the plan, the first pass's group sums, or the
    gradient pass with the whole batch's coefficients (see SetsPlan)."""
    dt = x.dtype
    if req.phase == "sets_plan":
        req.plan = SetsPlan(op, dt, functools.partial(_seg_groups, mode),
                            functools.partial(_seg_finish, C, w, sel, params, per_image, reduction, dt, mode),
                            per_image)
        raise Planned
    alpha, beta, gamma, smooth, eps, log_loss, overlap_w, ce_w = params
    common = (dt is not F32, x, t, tcode)
    rest = (N, C, S, mode == "multiclass", from_logits, ii is not None, ii if ii is not None else 0, per_image,
            ce_w != 0.0, w, sel, alpha, beta, gamma, smooth, eps, log_loss, overlap_w, ce_w, reduction == "mean",
            nt)
    if req.phase == "sets_sums":
        parts, bad = _overlap.seg(*common, None, *rest, groups=req.div, sums_only=True)
        if bad >= 0:
            _bad_target(op, t, bad, mode, C)
        req.parts = parts
        return None
    if req.phase == "sets_grad":
        coef = req.div[req.offset:req.offset + N] if per_image else req.div
        g = empty(x.shape, dt)
        _overlap.seg(*common, g, *rest, coef_in=coef)
        return None, g
    raise ValueError(f"{op}: unknown chunk phase {req.phase!r}")  # pragma: no cover


def _bad_target(op, t, bad, mode, C):
    val = t.reshape(-1)[int(bad)].item()
    where = _where(t.shape, bad)
    if mode == "multiclass":
        raise ValueError(f"{op}: Target {int(val)} is out of bounds ({where} = {int(val)}, n_classes = {C})")
    raise ValueError(f"{op}: target must be in [0, 1] (a mask or probabilities) or equal ignore_index, "
                     f"got {where} = {val!r}")


# ------------------------------------------------------------------ Lovasz

def run_lovasz(op, input, target, *, softmax, per_image=False, ignore_index=None, classes="present",
               from_logits=True, weight=None, reduction="mean", return_grad=False, out=None, n_threads=None,
               check=False):
    if reduction != "mean" and reduction != "sum" and reduction != "none":
        check_reduction(reduction, op, REDUCTIONS)
    nt = _threads(n_threads, op)
    if check:
        _check.check_call(op, input, target, weight=weight, ignore_index=ignore_index, from_logits=from_logits,
                          n_threads=nt)
    per_image = boolean(per_image, "per_image", op)
    from_logits = boolean(from_logits, "from_logits", op)
    ii = check_ignore(ignore_index, op)
    x = as_input(input, "input", op)
    dt, shape = x.dtype, x.shape
    t = target if type(target) is np.ndarray else np.asarray(target)
    if softmax:
        N, C, S = seg_shape(x, op, "multiclass")
        if isinstance(classes, str) and classes in ("present", "all"):
            cmode, sel = (0 if classes == "present" else 1), None
        elif isinstance(classes, str):
            raise ValueError(f"{op}: classes must be 'present', 'all' or a list of class indices, got {classes!r}")
        else:
            cmode, sel = 2, check_classes(classes, op, C)
        t = _labels(t, op, shape, shape[:1] + shape[2:])
        tcode = _TCODES[t.dtype]
        w = class_weights(weight, op, C)
    else:
        if weight is not None:
            raise ValueError(f"{op}: weight (per-class weights) is not supported by the binary Lovasz hinge "
                             f"(one class)")
        w = None
        N, C, S = seg_shape(x, op, "binary")
        cmode, sel = 1, None
        t = _dense_target(t, op, dt, shape, "binary")
        tcode = _overlap.DENSE
    if N * C * S >= _MAX_LOVASZ:
        raise ValueError(f"{op}: input has {N * C * S} elements; the Lovasz sort indexes at most 2**31 - 1")
    req = _REQUEST.get()
    nsets_all = 0
    if req is not None and req.phase.startswith("sets_"):  # a chunk of images (fastloss.dask)
        if req.phase == "sets_plan":
            if not per_image:
                return None  # one sort over the whole batch: no split (the adapter gathers it)
            req.plan = SetsPlan(op, dt, _images, functools.partial(_lovasz_finish, reduction, dt), True, True)
            raise Planned
        nsets_all = req.div
    g = _grad_out(out, op, dt, shape, return_grad, (x, t))
    losses, bad = _overlap.lovasz(softmax, dt is not F32, x, t, tcode, g, N, C, S, from_logits,
                                  ii is not None, ii if ii is not None else 0, per_image, cmode, sel, w,
                                  reduction == "mean", nt, nsets_all)
    if bad >= 0:
        if softmax:
            _bad_target(op, t, bad, "multiclass", C)
        val = t.reshape(-1)[int(bad)].item()
        raise ValueError(f"{op}: target must hold 0 and 1 (a binary mask) or ignore_index, got "
                         f"{_where(t.shape, bad)} = {val!r}")
    if nsets_all:
        req.parts = losses  # this chunk's images' float64 losses: the value is the whole batch's
    value = _reduce(losses, reduction, per_image, dt)
    return (value, g) if return_grad else value


def _images(shape):
    return shape[0]


def _lovasz_finish(reduction, dt, parts_list, shape):
    losses = np.concatenate(parts_list) if parts_list else np.zeros(0)
    value = _reduce(losses, reduction, True, dt)
    return (np.float64(value) if reduction != "none" else value), None


# ------------------------------------------------------------------ boxes

def run_boxes(op, kind, boxes1, boxes2, reduction="none", eps=1e-7, return_grad=False, out=None,
              n_threads=None, loss_out=None, check=False):
    """value, or (value, g_boxes1, g_boxes2)."""
    if reduction != "mean" and reduction != "sum" and reduction != "none":
        check_reduction(reduction, op, REDUCTIONS)
    nt = _threads(n_threads, op)
    if check:
        _check.check_call(op, boxes1, boxes2, n_threads=nt)
    eps = nonneg(eps, "eps", op)
    b1 = as_input(boxes1, "boxes1", op)
    dt, shape = b1.dtype, b1.shape
    if b1.ndim < 1 or shape[-1] != 4:
        raise ValueError(f"{op}: boxes1 must have shape (N, 4) or (4,) as (x1, y1, x2, y2), got {shape}")
    b2 = boxes2 if type(boxes2) is np.ndarray else np.asarray(boxes2)
    if b2.shape != shape:
        if b2.ndim < 1 or b2.shape[-1] != 4:
            raise ValueError(f"{op}: boxes2 must have shape (N, 4) or (4,) as (x1, y1, x2, y2), got {b2.shape}")
        raise ValueError(f"{op}: boxes1 and boxes2 must have the same shape (boxes are paired elementwise), "
                         f"got boxes1: {shape} and boxes2: {b2.shape}")
    b2 = as_operand(b2, "boxes2", op, dt, shape)
    n = math.prod(shape[:-1])
    g1 = g2 = None
    if out is not None and not return_grad:
        raise ValueError(f"{op}: out= is the gradients' buffers; pass return_grad=True with it")
    if return_grad:
        if out is None:
            g1, g2 = empty(shape, dt), empty(shape, dt)
        else:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise ValueError(f"{op}: out must be a pair (g_boxes1_out, g_boxes2_out), got {type(out).__name__}")
            g1 = check_out(out[0], "out[0]", op, dt, shape)
            g2 = check_out(out[1], "out[1]", op, dt, shape)
            check_no_overlap(g1, "out[0]", op, b1, b2, g2)
            check_no_overlap(g2, "out[1]", op, b1, b2)
    if loss_out is not None and reduction != "none":
        raise ValueError(f"{op}: loss_out is the buffer of the per-pair losses of reduction='none', "
                         f"got reduction={reduction!r}")
    lo = None
    if reduction == "none":
        if loss_out is None:
            lo = empty(shape[:-1], dt)
        else:
            lo = check_out(loss_out, "loss_out", op, dt, shape[:-1])
            check_no_overlap(lo, "loss_out", op, b1, b2, g1, g2)
    req = _REQUEST.get()
    parts = None
    if req is not None:  # a chunk of a larger array (fastloss.dask, see _chunks)
        if req.phase == "plan":
            req.plan = Plan(op, "boxes", dt, len(shape) >= 2, math.prod(shape[1:-1]), _overlap.BOX_BLOCK,
                            len(shape) - 1, _box_count if reduction == "mean" else None, None,
                            summed(functools.partial(box_finish, reduction)), reduction != "none")
            raise Planned
        parts = np.empty((n + _overlap.BOX_BLOCK - 1) // _overlap.BOX_BLOCK, np.float64)
        req.parts = parts
        if reduction == "mean":
            n = req.div
    gscale = 1.0 / n if (reduction == "mean" and n) else 1.0
    total = _overlap.boxes(_overlap.BOX_KINDS[kind], dt is not F32, b1, b2, g1, g2, lo, math.prod(shape[:-1]),
                           eps, gscale, nt, parts)
    value = lo if reduction == "none" else box_finish(reduction, total, n)
    return (value, g1, g2) if return_grad else value


def box_finish(reduction, total, n):
    """The value of a reduced box loss from its float64 sum and the number of pairs."""
    if reduction == "sum":
        return total
    return total / n if n else 0.0


def _box_count(shape):
    return math.prod(shape[:-1])


# ------------------------------------------------------------------ classes

class _OverlapLoss:
    """Base of the ``nn``-style set-overlap loss objects.

    A subclass implements ``_run(input, target, weight, return_grad, out)``
    with its stored options.  Calling the object gives the value;
    ``value_and_grad`` the value and its gradient (no diagonal Hessian:
    these losses couple every element of a set).
    """

    def __init__(self, reduction: str = "mean", n_threads: Optional[int] = None):
        op = type(self).__name__
        self.reduction = check_reduction(reduction, op, REDUCTIONS)
        if n_threads is not None:
            _threads(n_threads, op)
        self.n_threads = n_threads

    def _run(self, input, target, weight, return_grad, out):  # pragma: no cover - abstract
        raise TypeError(f"{type(self).__name__} is the abstract base of the overlap losses; use a concrete class")

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._repr_args())
        return f"{type(self).__name__}({args})"

    def _repr_args(self):
        return [("reduction", self.reduction)]
