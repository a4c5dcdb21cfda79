"""The Python side of the row-over-classes driver: one call path for every
loss that reads a row of C class scores per item, and the base class of
their ``nn``-style objects.

A loss adds a ``_RowSpec`` (its kernels, name, class axis and mean) and a
thin function that checks its own parameters; everything else -- array
conversion, the class axis and spatial shapes, label dtypes, class
weights, ``ignore_index``, reductions, ``out=`` buffers, threads, the
out-of-range label message -- is here, once.

Shapes.  The class axis is axis 1, as in PyTorch: input (C,) (one
unbatched sample), (N, C) or (N, C, d1, ..., dk); integer labels then have
shape (), (N,) or (N, d1, ..., dk), soft targets the input's shape.  (The
multilabel loss keeps PyTorch's classes-on-the-last-axis instead.)
Labels of dtype int64, int32 or uint8 are read in place (when aligned and
C-contiguous); other integer dtypes are converted to int64 once (uint64
labels beyond int64's range are refused, with their value).

Bad labels.  Every integer label is checked against [0, C) (and
``ignore_index``) by a first pass over the labels before anything is
written, so a ValueError for a bad label leaves ``out=`` and ``loss_out=``
untouched.  There is no in-band "no ignore_index" value: ``ignore_index=
None`` (the drivers' default) ignores nothing, and every int64, -2**63
included, is a legal ignore_index.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple, Optional

import numpy as np

from . import _check, _rows
from ._alloc import empty
from ._chunks import _REQUEST, Denominator, Plan, Planned, summed
from ._config import _threads
from ._pointwise_api import GRAD, GRAD_HESS, VALUE, _pair, _wrt, grad_buffers
from ._validate import (
    F32,
    F64,
    REDUCTIONS,
    fmt_index,
    as_broadcast,
    as_input,
    as_operand,
    asarray,
    behaved,
    check_no_overlap,
    check_out,
    check_reduction,
    contiguous,
    fmt_index,
    real,
)

HVP = 3
# Check every label in a pass of its own before the kernel writes (see the
# module's docstring); the cost measured is in docs/reliability.md.
CHECK_LABELS_FIRST = True
_I64_MAX = 2 ** 63 - 1
_LABEL_CODES = {np.dtype(k): v for k, v in _rows.LABEL_CODES.items()}
_NO_PARAMS = (0.0, 0.0, 0.0, 0, 0)
_I64 = np.dtype(np.int64)
_TC_I64 = _LABEL_CODES[_I64]


def _fdiv(a: float, b: float) -> float:
    """a / b as NumPy's float64 division (IEEE: b = +-0 gives +-inf, or NaN
    for a = 0 or NaN), without np.errstate's cost (2 us a call)."""
    if b != 0:
        return a / b
    if a != a or a == 0:
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


class _RowSpec(NamedTuple):
    op: str                   # the public name, used in every message
    labels: int = -1          # kernel id for integer labels (-1: not accepted)
    soft: int = -1            # kernel id for targets of input's shape (-1: not accepted)
    soft_float: bool = True   # a target of input's shape must be floating point
    spatial: bool = True      # accepts (N, C, d1, ..., dk); else (C,) and (N, C) only
    last_axis: bool = False   # classes on the last axis (multilabel)
    denom: int = _rows.DENOM_WEIGHT  # the mean of integer labels: summed weights, count, or rows
    hvp: bool = False         # has a Hessian-vector product
    elem_weight: bool = False  # a weight that is not (C,) is broadcast to input's shape (multilabel)


def spec(op: str, labels: str = "", soft: str = "", **kw) -> _RowSpec:
    ids = _rows.LOSS_IDS
    return _RowSpec(op, ids[labels] if labels else -1, ids[soft] if soft else -1, **kw)


def _shape_of(x: np.ndarray, sp: _RowSpec):
    """(C, S, item_shape) of an input, or raise for a shape the loss does not take."""
    op, shape = sp.op, x.shape
    if len(shape) == 2 and not sp.last_axis and shape[1] >= 1:   # (N, C), the common case
        return shape[1], 1, (shape[0],)
    if x.ndim == 0:
        raise ValueError(f"{op}: input must have at least 1 dimension (the classes), got a 0-d array")
    if sp.last_axis:
        C, S, items = shape[-1], 1, shape[:-1]
    else:
        if x.ndim > 2 and not sp.spatial:
            raise ValueError(f"{op}: input must have shape (C,) or (N, C), got {shape}")
        C = shape[0] if x.ndim == 1 else shape[1]
        S = math.prod(shape[2:])
        items = () if x.ndim == 1 else (shape[0],) + shape[2:]
    if C < 1:
        raise ValueError(f"{op}: input must have at least one class, got shape {shape}")
    return C, S, items


def _labels(t: np.ndarray, sp: _RowSpec, items: tuple, shape: tuple) -> np.ndarray:
    """Integer labels of exactly the items' shape, in place when possible."""
    if t.dtype is _I64 and t.shape == items and behaved(t):   # int64 labels in place, the common case
        return t
    op = sp.op
    k = t.dtype.kind
    if k not in "iu":
        if k == "f" and t.shape == items:
            raise TypeError(
                f"{op}: target holds class labels (shape {items}) and must have an integer dtype, "
                f"got {t.dtype}" + ("" if sp.soft < 0 else "; class probabilities need the input's shape"))
        if k not in "f":
            raise TypeError(f"{op}: target must hold integer class labels, got dtype {t.dtype}")
    if t.shape != items:
        soft = f" or {shape} (class probabilities)" if sp.soft >= 0 else ""
        raise ValueError(
            f"{op}: expected target of shape {items} (class labels){soft} for input of shape {shape}, "
            f"got target of shape {t.shape}")
    if k not in "iu":
        raise TypeError(f"{op}: target must hold integer class labels, got dtype {t.dtype}")
    if t.dtype in _LABEL_CODES:
        return t if behaved(t) else contiguous(t, t.dtype)
    if t.dtype.kind == "u" and t.dtype.itemsize == 8 and t.size and t.max() > _I64_MAX:
        # uint64 beyond int64: would wrap to a negative label (even to ignore_index)
        bad = int(np.flatnonzero(t.reshape(-1) > _I64_MAX)[0])
        val = int(t.reshape(-1)[bad])
        idx = np.unravel_index(bad, items) if items else ()
        raise ValueError(f"{op}: Target {val} is out of bounds ({fmt_index('target', idx)} = {val} "
                         f"does not fit in int64)")
    return contiguous(t, np.int64)


def class_weight(w, name: str, op: str, dt: np.dtype, C: int) -> Optional[np.ndarray]:
    """A per-class weight as a C-contiguous (C,) array of the working dtype."""
    if w is None:
        return None
    if type(w) is np.ndarray and w.dtype is dt and w.shape == (C,) and behaved(w):
        return w
    a = asarray(w, name, op)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{op}: {name} must be a real array, got dtype {a.dtype}")
    if a.shape != (C,):
        raise ValueError(f"{op}: {name} must be a 1-D array of n_classes = {C} elements, got shape {a.shape}")
    return contiguous(a, dt)


def check_ignore_index(ignore_index, op: str) -> int:
    if type(ignore_index) is int and -(2 ** 63) <= ignore_index < 2 ** 63:
        return ignore_index
    if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"{op}: ignore_index must be an integer, got {ignore_index!r}")
    v = int(ignore_index)
    if not -(2 ** 63) <= v < 2 ** 63:
        raise ValueError(f"{op}: ignore_index must fit in int64, got {v}")
    return v


def check_label_smoothing(ls, op: str) -> float:
    if type(ls) is float and 0.0 <= ls <= 1.0:
        return ls
    v = real(ls, "label_smoothing", op)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be between 0.0 and 1.0. Got: {ls}")
    return v


def _check_loss_out(buf, op, dt, items):
    if type(buf) is np.ndarray and buf.dtype == dt and buf.shape != items:
        raise ValueError(f"{op}: loss_out must have shape {items} (input's shape without the class axis), "
                         f"got {buf.shape}")
    return check_out(buf, "loss_out", op, dt, items)


def _bad_label(op, t, bad, items, C):
    idx = np.unravel_index(int(bad), items) if items else ()
    val = int(t.reshape(-1)[bad])
    where = fmt_index("target", idx)
    raise ValueError(f"{op}: Target {val} is out of bounds ({where} = {val}, n_classes = {C})")


def run(sp: _RowSpec, input, target, *, weight=None, ignore_index=None, params=_NO_PARAMS,
        reduction="mean", mode=VALUE, n_threads=None, out=None, hess_out=None, loss_out=None,
        v=None, w_name="weight", op=None, grads=("input",), check=False):
    """Validate, run the fused row kernel once, and shape the result.

    mode VALUE      -> value
    mode GRAD       -> (value, grad)
    mode GRAD_HESS  -> (grad, hess)
    mode HVP        -> H v (the Hessian of the returned value times v)
    value is a float for "mean"/"sum" and an array of the items' shape
    (input's shape without the class axis) for "none"; the gradient is
    that of the returned value (of the sum for "none").
    params = (pa, pb, pc, i0, i1) of the kernel (see fl_rows.h); op, if
    given, names the operation in messages instead of the spec's name;
    ignore_index None ignores no label.
    grads names the gradients mode GRAD returns: "input", and "target"
    for a target of input's shape (computed in the same pass); out is a
    buffer or a tuple of buffers, one per name.  check=True runs
    fastloss.diagnose's checks first (fastloss._check).
    """
    if (mode == GRAD and weight is None and hess_out is None and loss_out is None and not check
            and grads == ("input",) and sp.labels >= 0 and not sp.last_axis and CHECK_LABELS_FIRST
            and (reduction == "mean" or reduction == "sum") and _REQUEST.get() is None):
        # the common small call (value and gradient of (N, C) logits of the working dtype and
        # int64 labels (N,), mean or sum, a fresh gradient or an out= buffer that the checks
        # below accept as it is): those checks in C (_rows.grad_fast), which returns None for
        # any other call, so that the general path below converts or raises
        nt = _threads(n_threads, op or sp.op)
        r = _rows.grad_fast(sp.labels, input, target, out, 0 if ignore_index is None else ignore_index,
                            ignore_index is not None, *params, sp.denom, reduction == "mean", nt)
        if r is not None:
            if type(r) is tuple:
                return r
            _bad_label(op or sp.op, target, r, target.shape, input.shape[1])
    op = op or sp.op
    if reduction != "mean" and reduction != "sum" and reduction != "none":
        check_reduction(reduction, op, REDUCTIONS)
    nt = _threads(n_threads, op)
    if mode == VALUE and out is not None:
        raise ValueError(f"{op}: out= is the gradient's buffer; pass return_grad=True with it")
    if loss_out is not None and (reduction != "none" or mode == HVP):
        raise ValueError(f"{op}: loss_out is the buffer of the per-item losses of reduction='none', "
                         f"got reduction={reduction!r}")
    if check:
        _check.check_call(sp.op, input, target, weight=weight, n_threads=nt,
                          ignore_index=ignore_index)
    x = as_input(input, "input", op)
    dt, shape = x.dtype, x.shape
    C, S, items = _shape_of(x, sp)

    t = asarray(target, "target", op)
    soft = sp.soft >= 0 and t.shape == shape
    if soft:
        if sp.soft_float and t.dtype.kind != "f":
            raise TypeError(
                f"{op}: a target of the input's shape {shape} holds class probabilities and must be "
                f"floating point, got {t.dtype}" + ("; class labels need shape " + str(items) if sp.labels >= 0 else ""))
        t = as_operand(t, "target", op, dt, shape)
        kid, tcode = sp.soft, 0
        if ignore_index is not None and ignore_index >= 0:
            raise ValueError(f"{op}: ignore_index is not supported for class-probability targets")
    elif sp.labels >= 0:
        t = _labels(t, sp, items, shape)
        kid, tcode = sp.labels, _LABEL_CODES[t.dtype]
    else:
        as_operand(t, "target", op, dt, shape)  # raises the shape message
        raise AssertionError("unreachable")  # pragma: no cover
    if sp.elem_weight and weight is not None and np.shape(weight) != (C,):
        # a weight per element (PyTorch multiplies the (..., C) losses by a
        # weight that broadcasts to them): the kernel reads it like x
        w = as_broadcast(weight, w_name, op, dt, shape)
        params = params[:4] + (1,)
    else:
        w = class_weight(weight, w_name, op, dt, C)
    wsum = float(np.sum(w, dtype=np.float64)) if w is not None else float(C)

    g = h = lo = vv = gt = None
    if mode == GRAD and grads != ("input",):
        bufs = grad_buffers(out, grads, op)
        out = bufs.get("input")
        if "target" in grads:
            if not soft:
                raise ValueError(f"{op}: the gradient with respect to target exists only for a target of "
                                 f"input's shape {shape} (class probabilities or multilabel targets), "
                                 f"got target of shape {t.shape}")
            t_out = bufs.get("target")
            gt = empty(shape, dt) if t_out is None else check_out(t_out, "out (target)", op, dt, shape)
            if t_out is not None:
                check_no_overlap(gt, "out (target)", op, x, t, w, *(b for b in (out, loss_out) if b is not None))
    if mode != VALUE:
        g = empty(shape, dt) if out is None else check_out(out, "out", op, dt, shape)
        if mode == GRAD_HESS:
            h = empty(shape, dt) if hess_out is None else check_out(hess_out, "hess_out", op, dt, shape)
        if mode == HVP:
            vv = as_operand(v, "v", op, dt, shape)
    if reduction == "none" and mode != HVP:
        lo = empty(items, dt) if loss_out is None else _check_loss_out(loss_out, op, dt, items)
    if out is not None or hess_out is not None or loss_out is not None:
        bufs = ((g if out is not None else None, "out"), (h if hess_out is not None else None, "hess_out"),
                (lo if loss_out is not None else None, "loss_out"))
        for i, (buf, nm) in enumerate(bufs):
            if buf is not None:
                check_no_overlap(buf, nm, op, x, t, w, vv, *(b for b, _ in bufs[i + 1:]))

    n_items = math.prod(items)
    denom, gscale = _rows.DENOM_NONE, 1.0
    if reduction == "mean":
        if not soft and sp.denom != _rows.DENOM_NONE:
            denom = sp.denom
        elif n_items:
            gscale = 1.0 / n_items
    req = _REQUEST.get()
    parts = den_given = None
    if req is not None:  # a chunk of a larger array (fastloss.dask, see _chunks)
        if req.phase == "plan":
            req.plan = _plan(sp, op, shape, items, dt, C, S, w, ignore_index, denom, reduction, mode, nt)
            raise Planned
        if reduction == "mean":
            if denom != _rows.DENOM_NONE:
                den_given = float(req.div)
            else:
                n_items = req.div
                gscale = 1.0 / n_items if n_items else 1.0
        per, n_loc = _rows.block_items(C, S), x.size // C
        parts = np.empty((n_loc + per - 1) // per, np.float64)
        req.parts = parts
    pa, pb, pc, i0, i1 = params
    has_ignore = ignore_index is not None
    total, den, bad = _rows.run(kid, dt is not F32, x, t, tcode, w, vv, g, h, lo, C, S,
                                ignore_index if has_ignore else 0, has_ignore,
                                pa, pb, pc, i0, i1, wsum, mode, gscale, denom,
                                CHECK_LABELS_FIRST and not soft, nt, gt, parts, den_given)
    if bad >= 0:
        _bad_label(op, t, bad, items, C)

    if mode == HVP:
        return g
    value = lo if reduction == "none" else finish(reduction, denom != _rows.DENOM_NONE, total,
                                                    den if denom != _rows.DENOM_NONE else n_items)
    if mode == VALUE:
        return value
    if mode == GRAD:
        if grads == ("input",):
            return value, g
        return (value,) + tuple(g if k == "input" else gt for k in grads)
    return g, h


def finish(reduction, by_den, total, div):
    """The value of a reduced call from the float64 sum of the blocks and
    the mean's divisor (the denominator pass's sum, or the items)."""
    if reduction == "sum":
        return total
    if by_den:
        return _fdiv(total, div)
    return total / div if div else float("nan")


def _items_of(axis, shape):
    return math.prod(shape[:axis] + shape[axis + 1:]) if shape else 1


def _denom_parts(sp, op, dt, C, w, ignore_index, denom, nt, target, *, shape, offset=0, whole=None):
    """The labels pass over one chunk of labels: the blocks' sums of
    w[label] (or their count), and the first bad label's error."""
    dt = F32 if dt == F32 else F64  # the canonical dtype object (a pickled one is another)
    t = target if type(target) is np.ndarray else asarray(target, "target", op)
    t = _labels(t, sp, t.shape, shape)
    per = _rows.block_items(1, 1)
    parts = np.empty((t.size + per - 1) // per, np.float64)
    has_ignore = ignore_index is not None
    _, bad = _rows.denominator(dt is not F32, t, _LABEL_CODES[t.dtype], w, C,
                               ignore_index if has_ignore else 0, has_ignore, denom, nt, parts)
    if bad >= 0:
        _bad_label(op, t, bad, t.shape, C)
    return parts


def _plan(sp, op, shape, items, dt, C, S, w, ignore_index, denom, reduction, mode, nt):
    """How this call reduces (see fastloss._chunks.Plan): blocks of
    block_items(C, S) items, items numbered sample by sample; axis 0 (the
    samples) may be split when the input has one, and a mean over labels
    sums their weights (or counts them) in blocks of block_items(1, 1)."""
    ndim = len(shape)
    drop = (ndim - 1 if sp.last_axis else (0 if ndim == 1 else 1)) if ndim else None
    div = dnm = None
    if reduction == "mean":
        if denom != _rows.DENOM_NONE:
            dnm = Denominator(_rows.block_items(1, 1), ("target",),
                              functools.partial(_denom_parts, sp, op, dt, C, w, ignore_index, denom, nt))
        else:
            div = functools.partial(_items_of, drop)
    split = ndim >= 2 and mode != HVP
    return Plan(op, "rows", dt, split, math.prod(items[1:]) if split else 0, _rows.block_items(C, S), drop, div, dnm,
                summed(functools.partial(finish, reduction, denom != _rows.DENOM_NONE)), reduction != "none")


def mode_of(return_grad) -> int:
    return GRAD if return_grad else VALUE


class _RowLoss:
    """Base of the ``nn``-style row-loss objects.

    A subclass implements ``_run(input, target, weight, mode, **buffers)``
    with its stored options.  Calling the object gives the value;
    ``value_and_grad`` the value and its gradient; ``grad_hess`` the
    gradient and the diagonal Hessian.  The gradient always includes the
    reduction's scaling and the weights.  ``weight`` (per class) given to
    a call replaces the one given to the constructor.
    """

    def __init__(self, reduction: str = "mean", *, n_threads: Optional[int] = None):
        op = type(self).__name__
        self.reduction = check_reduction(reduction, op, REDUCTIONS)
        if n_threads is not None:
            _threads(n_threads, op)
        self.n_threads = n_threads

    def _run(self, input, target, weight, mode, **buffers):  # pragma: no cover - abstract
        # every concrete loss class defines _run (its spec and stored options)
        raise TypeError(f"{type(self).__name__} is the abstract base of the row losses; use a concrete loss class")

    def __call__(self, input, target, weight=None, *, check=False):
        """The loss value: a float, or an array of the items' shape for reduction="none".
        ``check=True`` runs :func:`fastloss.diagnose`'s checks first."""
        return self._run(input, target, weight, VALUE, check=check)

    def value_and_grad(self, input, target, weight=None, out=None, loss_out=None, *, wrt=None, check=False):
        """``(value, grad)`` in one pass; ``out`` and ``loss_out`` are optional
        buffers for the gradient (input's shape and dtype) and, with
        reduction="none" only, the per-item loss (input's shape without the
        class axis).  Labels are checked before anything is written.
        ``wrt=("input", "target")`` also returns the gradient with respect to
        a target of input's shape (class probabilities)."""
        if wrt is None:
            return self._run(input, target, weight, GRAD, out=out, loss_out=loss_out, check=check)
        return self._run(input, target, weight, GRAD, out=out, loss_out=loss_out, grads=_wrt(self, wrt),
                         check=check)

    def grad_hess(self, input, target, weight=None, out=None, *, check=False):
        """``(grad, hess)``: the gradient and diagonal Hessian of the value.
        ``out`` may be a pair of buffers ``(grad_out, hess_out)``."""
        g_out, h_out = (None, None) if out is None else _pair(out, type(self).__name__)
        return self._run(input, target, weight, GRAD_HESS, out=g_out, hess_out=h_out, check=check)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._repr_args())
        return f"{type(self).__name__}({args})"

    def _repr_args(self):
        return [("reduction", self.reduction)]
