"""The Python side of the pointwise driver: one call path for every loss
``f(input_i, target_i)``, and the base class of their ``nn``-style objects.

A loss adds a ``_Spec`` (its kernel, name and domain check) and a thin
function that checks its own parameters; everything else — array
conversion, shapes, weights, reductions, ``out=`` buffers, threads — is
here, once.
"""
from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple, Optional

import numpy as np

from . import _check, _pointwise
from ._alloc import empty
from ._chunks import _REQUEST, Denominator, Plan, Planned, summed
from ._config import _threads
from ._validate import (
    F32,
    F64,
    REDUCTIONS,
    as_broadcast,
    as_input,
    as_operand,
    check_no_overlap,
    check_out,
    check_reduction,
)

VALUE, GRAD, GRAD_HESS = 0, 1, 2
REDUCTIONS_KL = ("mean", "sum", "none", "batchmean")
_NO_PARAMS = (0.0, 0.0, 0.0, 0, 0)


class _Spec(NamedTuple):
    op: str                       # the public name, used in every message
    kid: int                      # kernel id in _pointwise.LOSS_IDS
    on_bad: Optional[Callable] = None  # raises the domain error, given (x, y, e)
    extra: str = ""               # name of the extra operand ("var", "pos_weight")
    batchmean: bool = False       # accepts reduction="batchmean" (kl_div)
    wmean: bool = False           # a weighted mean divides by the summed weights (mse, l1)
    target_grad: bool = False     # the kernel gives the gradient with respect to target
    target_kind: str = ""         # the target's kind for check=True where the parameters decide it
    #                               (a Tweedie power's support); "" for the loss's row in _diagnose.EXPECT


def spec(op: str, kernel: str, on_bad=None, extra: str = "", batchmean: bool = False,
         wmean: bool = False, target_kind: str = "") -> _Spec:
    return _Spec(op, _pointwise.LOSS_IDS[kernel], on_bad, extra, batchmean, wmean,
                 kernel in _pointwise.TARGET_GRAD, target_kind)


def grad_request(return_grad, op: str, grad_args=("input",), optional=()):
    """``(mode, names)`` of a ``return_grad`` argument.

    ``False`` gives the value only; ``True`` the gradients of
    ``grad_args`` (the loss's ``_grad_args``, returned in that order); a
    tuple or list of operand names the gradients of those, in the order
    given, from ``grad_args`` and the loss's ``_optional_grad_args``
    (gradients that are computed only when asked, such as the target's).
    """
    if return_grad is False or return_grad is True:
        return (GRAD, tuple(grad_args)) if return_grad else (VALUE, ())
    if isinstance(return_grad, (tuple, list)) and return_grad:
        allowed = tuple(grad_args) + tuple(optional)
        names = tuple(return_grad)
        for n in names:
            if n not in allowed or names.count(n) > 1:
                raise ValueError(
                    f"{op}: return_grad names the operands to differentiate, each once, from "
                    f"{', '.join(repr(a) for a in allowed)}; got {return_grad!r}")
        return GRAD, names
    if isinstance(return_grad, (bool, np.bool_)):
        return mode_of(bool(return_grad)), (tuple(grad_args) if return_grad else ())
    raise TypeError(f"{op}: return_grad must be True, False or a tuple of operand names, got {return_grad!r}")


def grad_buffers(out, names, op: str) -> dict:
    """``out=`` as {operand: buffer}: one array is the first gradient's
    buffer; a tuple gives one buffer (or None) per gradient returned."""
    if out is None:
        return {}
    if isinstance(out, tuple):
        if len(out) != len(names):
            raise ValueError(f"{op}: out must be one buffer or a tuple of {len(names)} (one per gradient "
                             f"returned: {', '.join(names)}), got a tuple of {len(out)}")
        return {n: b for n, b in zip(names, out) if b is not None}
    return {names[0] if names else "input": out}


def run(sp: _Spec, input, target, weight, reduction, mode, params, n_threads,
        out=None, hess_out=None, loss_out=None, extra=None, extra_period=0,
        grads=("input",), check=False, scale=1.0, accumulate=False, extra2=None, xsums=None):
    """Validate, run the fused kernel once, and shape the result.

    mode VALUE      -> value
    mode GRAD       -> (value, *the gradients named by grads, in that order)
    mode GRAD_HESS  -> (grad, hess)
    value is a float for "mean"/"sum" and an array of input's shape for
    "none"; the gradient is that of the returned value (of the sum for
    "none").  grads names "input", the extra operand (sp.extra, whose
    gradient the kernel writes in GRAD mode) and "target" (computed only
    when named).  out is a buffer or a tuple of buffers (see grad_buffers).
    check=True runs fastloss.diagnose's checks first (fastloss._check).
    scale multiplies a "mean"/"sum" value and its gradients (a weighted term
    of a sum of losses; not for "none").  accumulate adds the gradient
    (and Hessian) into the given out (and hess_out) buffers instead of
    writing them (a term of fastloss.CombinedLoss).
    extra2 (a second elementwise operand, validated by the caller) and
    xsums (float64, the kernel's extra block sums) are passed to the
    kernels that read them (ppo_stats, td: fl_pointwise_rl.h).
    """
    if (mode == GRAD and weight is None and extra is None and hess_out is None
            and loss_out is None and not check and grads == ("input",) and not sp.extra
            and scale == 1.0 and not accumulate and (reduction == "mean" or reduction == "sum")
            and _REQUEST.get() is None):    # not a chunk of fastloss.dask (see _chunks)
        # the common small call (value and gradient of two arrays of the working dtype, mean or
        # sum, a fresh gradient or an out= buffer that the checks below accept as it is): those
        # checks in C (_pointwise.grad_fast), which returns None for any other call, so that
        # the general path below converts or raises
        nt = _threads(n_threads, sp.op)
        r = _pointwise.grad_fast(sp.kid, input, target, out, *params, reduction == "mean", nt)
        if r is not None:
            if r is False:
                sp.on_bad(input, target, None)
            return r
    op = sp.op
    if reduction != "mean" and reduction != "sum" and reduction != "none":
        check_reduction(reduction, op, REDUCTIONS_KL if sp.batchmean else REDUCTIONS)
    nt = _threads(n_threads, op)
    if loss_out is not None and reduction != "none":
        raise ValueError(f"{op}: loss_out is the buffer of the per-element losses of reduction='none', "
                         f"got reduction={reduction!r}")
    if check:   # an extra operand of input's size (var, input2) is counted for NaN
        _check.check_call(op, input, target, weight=weight, n_threads=nt, target_kind=sp.target_kind,
                          others={sp.extra: extra} if extra is not None and extra_period == np.size(input) else None)
    x = as_input(input, "input", op)
    dt, shape = x.dtype, x.shape
    y = as_operand(target, "target", op, dt, shape)
    w = None if weight is None else as_broadcast(weight, "weight", op, dt, shape)
    n = x.size

    g = h = lo = g2 = gt = None
    if mode == GRAD and (out is None or type(out) is np.ndarray) and grads == ("input",):
        pass  # the common case
    elif mode == GRAD:
        bufs = grad_buffers(out, grads, op)
        out = bufs.get("input")
        if "target" in grads:
            if not sp.target_grad:
                raise ValueError(f"{op}: the gradient with respect to target is not available for this loss")
            t_out = bufs.get("target")
            gt = empty(shape, dt) if t_out is None else check_out(t_out, "out (target)", op, dt, shape)
        if sp.extra and sp.extra in bufs:
            g2 = check_out(bufs[sp.extra], f"out ({sp.extra})", op, dt, shape)
    if mode != VALUE:
        g = empty(shape, dt) if out is None else check_out(out, "out", op, dt, shape)
        if mode == GRAD_HESS:
            h = empty(shape, dt) if hess_out is None else check_out(hess_out, "hess_out", op, dt, shape)
        elif sp.extra == "var" and g2 is None:
            g2 = empty(shape, dt)
    if reduction == "none":
        lo = empty(shape, dt) if loss_out is None else check_out(loss_out, "loss_out", op, dt, shape)
    if out is not None or hess_out is not None or loss_out is not None:
        if mode == VALUE and out is not None:
            raise ValueError(f"{op}: out= is the gradient's buffer; pass return_grad=True with it")
        bufs = ((out, "out"), (hess_out, "hess_out"), (loss_out, "loss_out"))
        for i, (buf, nm) in enumerate(bufs):
            if buf is not None:
                others = [b for j, (b, _) in enumerate(bufs) if j > i]
                check_no_overlap(buf, nm, op, x, y, w, extra, extra2, *others)
    if gt is not None or (g2 is not None and sp.extra in grads):
        for buf, nm in ((gt, "out (target)"), (g2, f"out ({sp.extra})")):
            if buf is not None:
                check_no_overlap(buf, nm, op, x, y, w, extra, g, lo, *(b for b in (gt, g2) if b is not buf))

    # the mean's divisor: elements, the summed weights (mse, l1, in blocks
    # added in order, see _pointwise.block_sum), or the batch size for
    # "batchmean"
    wdiv = reduction == "mean" and sp.wmean and w is not None
    req = _REQUEST.get()
    parts = None
    if req is not None:  # a chunk of a larger array (fastloss.dask, see _chunks)
        if req.phase == "plan":
            req.plan = _plan(sp, shape, dt, reduction, wdiv, extra, nt, scale)
            raise Planned
        div = req.div if reduction == "mean" or reduction == "batchmean" else 0
        parts = np.empty((n + _pointwise.BLOCK - 1) // _pointwise.BLOCK, np.float64)
        req.parts = parts
    elif wdiv:
        div = _pointwise.block_sum(w, dt is not F32, nt)
    elif reduction == "mean":
        div = n
    else:
        div = (shape[0] if shape else 1) if reduction == "batchmean" else 0
    # summed weights of 0 divide as PyTorch's sum(w l) / sum(w) does: inf/NaN
    gscale = 1.0 / div if div else (math.inf if wdiv else 1.0)
    if scale != 1.0:
        gscale *= scale
    pa, pb, pc, i0, i1 = params
    total, bad = _pointwise.run(sp.kid, dt is not F32, x, y, w, extra, extra_period,
                                g, h, lo, g2, pa, pb, pc, i0, i1, mode, gscale, nt, gt, parts, accumulate,
                                extra2, xsums)
    if bad:
        sp.on_bad(x, y, extra)

    value = lo if reduction == "none" else finish(reduction, wdiv, total, div)
    if scale != 1.0 and reduction != "none":
        value = value * scale
    if mode == VALUE:
        return value
    if mode == GRAD:
        if grads == ("input",):
            return value, g
        named = {"input": g, "target": gt, sp.extra: g2}
        return (value,) + tuple(named[k] for k in grads)
    return g, h


def finish(reduction, wdiv, total, div):
    """The value of a reduced call from the float64 sum of the blocks and
    the mean's divisor (0 for "sum")."""
    if reduction == "sum":
        return total
    if div:
        return total / div
    return float("nan") if not wdiv or total == 0 or total != total else math.copysign(math.inf, total)


def _elements(shape):
    return math.prod(shape)


def _rows(shape):
    return shape[0] if shape else 1


def _weight_parts(op, dt, nt, weight, *, shape, offset=0, whole=None):
    """The denominator pass of a weighted mean over one chunk: the weights
    broadcast to the chunk's shape, summed per block (see block_sum)."""
    dt = F32 if dt == F32 else F64  # the canonical dtype object (a pickled one is another)
    w = as_broadcast(weight, "weight", op, dt, shape)
    parts = np.empty((w.size + _pointwise.BLOCK - 1) // _pointwise.BLOCK, np.float64)
    _pointwise.block_sum(w, dt is not F32, nt, parts)
    return parts


def _scaled_finish(reduction, wdiv, scale, total, div):
    value = finish(reduction, wdiv, total, div)
    return value * scale if scale != 1.0 else value  # as run() scales a reduced value


def _plan(sp, shape, dt, reduction, wdiv, extra, nt, scale=1.0):
    """How this call reduces (see fastloss._chunks.Plan): blocks of BLOCK
    elements of the flattened input; a periodic extra operand (pos_weight
    of the last axis) also needs chunks that start on its period."""
    block = _pointwise.BLOCK
    if extra is not None and extra.shape != shape:  # read as e[i % period]
        block = math.lcm(block, extra.size)
    div = denom = None
    if wdiv:
        denom = Denominator(_pointwise.BLOCK, ("weight",), functools.partial(_weight_parts, sp.op, dt, nt))
    elif reduction == "mean":
        div = _elements
    elif reduction == "batchmean":
        div = _rows
    return Plan(sp.op, "pointwise", dt, len(shape) >= 1, math.prod(shape[1:]), block, None, div, denom,
                summed(functools.partial(_scaled_finish, reduction, wdiv, scale)), reduction != "none")


def mode_of(return_grad) -> int:
    return GRAD if return_grad else VALUE


class _PointwiseLoss:
    """Base of the ``nn``-style loss objects.

    A subclass sets ``_spec`` and, in ``__init__``, ``self._params`` (the
    kernel's parameter tuple).  Calling the object gives the value;
    ``value_and_grad`` the value and its gradient; ``grad_hess`` the
    gradient and the diagonal Hessian (for Newton and gradient-boosting
    users).  The gradient always includes the reduction's scaling and the
    weights.
    """

    _spec: _Spec
    _params = _NO_PARAMS

    def __init__(self, reduction: str = "mean", *, n_threads: Optional[int] = None):
        op = type(self).__name__
        self.reduction = check_reduction(reduction, op, REDUCTIONS_KL if self._spec.batchmean else REDUCTIONS)
        if n_threads is not None:
            _threads(n_threads, op)
        self.n_threads = n_threads

    def _extra(self, *args):
        return None, 0

    def __call__(self, input, target, weight=None, *, check=False):
        """The loss value: a float, or an array of input's shape for reduction="none".
        ``check=True`` runs :func:`fastloss.diagnose`'s checks first."""
        return run(self._spec, input, target, weight, self.reduction, VALUE,
                   self._params, self.n_threads, check=check)

    def value_and_grad(self, input, target, weight=None, out=None, loss_out=None, *, wrt=None, check=False):
        """``(value, grad)`` in one pass; ``out`` and ``loss_out`` are optional
        buffers (input's shape and dtype, C-contiguous, aligned) for the
        gradient and, with reduction="none" only, the per-element loss.
        After a ValueError for a value outside the loss's domain their
        contents are unspecified.  ``wrt``, a tuple of operand names (e.g.
        ``("input", "target")``), asks for those gradients instead, returned
        in that order (``out`` then a tuple)."""
        grads = ("input",) if wrt is None else _wrt(self, wrt)
        return run(self._spec, input, target, weight, self.reduction, GRAD,
                   self._params, self.n_threads, out=out, loss_out=loss_out, grads=grads, check=check)

    def grad_hess(self, input, target, weight=None, out=None, *, check=False):
        """``(grad, hess)``: the gradient and diagonal Hessian of the value.
        ``out`` may be a pair of buffers ``(grad_out, hess_out)``."""
        g_out, h_out = (None, None) if out is None else _pair(out, type(self).__name__)
        return run(self._spec, input, target, weight, self.reduction, GRAD_HESS,
                   self._params, self.n_threads, out=g_out, hess_out=h_out, check=check)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._repr_args())
        return f"{type(self).__name__}({args})"

    def _repr_args(self):
        return [("reduction", self.reduction)]


def _wrt(loss, wrt):
    """The gradient names of a ``wrt=`` argument of ``value_and_grad``."""
    return grad_request(tuple(wrt) if isinstance(wrt, (list, tuple)) else wrt, type(loss).__name__,
                        getattr(loss, "_grad_args", ("input",)), getattr(loss, "_optional_grad_args", ()))[1]


def _pair(out, op):
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ValueError(f"{op}: out must be a pair (grad_out, hess_out), got {type(out).__name__}")
    return out
