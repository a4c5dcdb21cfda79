"""The Python side of the pointwise driver: one call path for every loss
``f(input_i, target_i)``, and the base class of their ``nn``-style objects.

A loss adds a ``_Spec`` (its kernel, name and domain check) and a thin
function that checks its own parameters; everything else — array
conversion, shapes, weights, reductions, ``out=`` buffers, threads — is
here, once.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import numpy as np

from . import _pointwise
from ._config import _threads
from ._validate import (
    F32,
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


def spec(op: str, kernel: str, on_bad=None, extra: str = "", batchmean: bool = False) -> _Spec:
    return _Spec(op, _pointwise.LOSS_IDS[kernel], on_bad, extra, batchmean)


def run(sp: _Spec, input, target, weight, reduction, mode, params, n_threads,
        out=None, hess_out=None, loss_out=None, extra=None, extra_period=0,
        extra_out=None):
    """Validate, run the fused kernel once, and shape the result.

    mode VALUE      -> value
    mode GRAD       -> (value, grad)            (+ grad of extra, if any)
    mode GRAD_HESS  -> (grad, hess)
    value is a float for "mean"/"sum" and an array of input's shape for
    "none"; the gradient is that of the returned value (of the sum for
    "none").
    """
    op = sp.op
    if reduction != "mean" and reduction != "sum" and reduction != "none":
        check_reduction(reduction, op, REDUCTIONS_KL if sp.batchmean else REDUCTIONS)
    nt = _threads(n_threads, op)
    if loss_out is not None and reduction != "none":
        raise ValueError(f"{op}: loss_out is the buffer of the per-element losses of reduction='none', "
                         f"got reduction={reduction!r}")
    x = as_input(input, "input", op)
    dt, shape = x.dtype, x.shape
    y = as_operand(target, "target", op, dt, shape)
    w = None if weight is None else as_broadcast(weight, "weight", op, dt, shape)
    n = x.size

    g = h = lo = g2 = None
    if mode != VALUE:
        g = np.empty(shape, dt) if out is None else check_out(out, "out", op, dt, shape)
        if mode == GRAD_HESS:
            h = np.empty(shape, dt) if hess_out is None else check_out(hess_out, "hess_out", op, dt, shape)
        if extra_out is not None:
            g2 = extra_out
    if reduction == "none":
        lo = np.empty(shape, dt) if loss_out is None else check_out(loss_out, "loss_out", op, dt, shape)
    if out is not None or hess_out is not None or loss_out is not None:
        if mode == VALUE and out is not None:
            raise ValueError(f"{op}: out= is the gradient's buffer; pass return_grad=True with it")
        bufs = ((out, "out"), (hess_out, "hess_out"), (loss_out, "loss_out"))
        for i, (buf, nm) in enumerate(bufs):
            if buf is not None:
                others = [b for j, (b, _) in enumerate(bufs) if j > i]
                check_no_overlap(buf, nm, op, x, y, w, extra, *others)

    # the mean's divisor: elements, or the batch size for "batchmean"
    div = n if reduction == "mean" else (shape[0] if shape else 1) if reduction == "batchmean" else 0
    gscale = 1.0 / div if div else 1.0
    pa, pb, pc, i0, i1 = params
    total, bad = _pointwise.run(sp.kid, dt is not F32, x, y, w, extra, extra_period,
                                g, h, lo, g2, pa, pb, pc, i0, i1, mode, gscale, nt)
    if bad:
        sp.on_bad(x, y, extra)

    if reduction == "none":
        value = lo
    elif reduction == "sum":
        value = total
    else:
        value = total / div if div else float("nan")
    if mode == VALUE:
        return value
    if mode == GRAD:
        return (value, g) if g2 is None else (value, g, g2)
    return g, h


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

    def __init__(self, reduction: str = "mean", n_threads: Optional[int] = None):
        op = type(self).__name__
        self.reduction = check_reduction(reduction, op, REDUCTIONS_KL if self._spec.batchmean else REDUCTIONS)
        if n_threads is not None:
            _threads(n_threads, op)
        self.n_threads = n_threads

    def _extra(self, *args):
        return None, 0

    def __call__(self, input, target, weight=None):
        """The loss value: a float, or an array of input's shape for reduction="none"."""
        return run(self._spec, input, target, weight, self.reduction, VALUE,
                   self._params, self.n_threads)

    def value_and_grad(self, input, target, weight=None, out=None, loss_out=None):
        """``(value, grad)`` in one pass; ``out`` and ``loss_out`` are optional
        buffers (input's shape and dtype, C-contiguous, aligned) for the
        gradient and, with reduction="none" only, the per-element loss.
        After a ValueError for a value outside the loss's domain their
        contents are unspecified."""
        return run(self._spec, input, target, weight, self.reduction, GRAD,
                   self._params, self.n_threads, out=out, loss_out=loss_out)

    def grad_hess(self, input, target, weight=None, out=None):
        """``(grad, hess)``: the gradient and diagonal Hessian of the value.
        ``out`` may be a pair of buffers ``(grad_out, hess_out)``."""
        g_out, h_out = (None, None) if out is None else _pair(out, type(self).__name__)
        return run(self._spec, input, target, weight, self.reduction, GRAD_HESS,
                   self._params, self.n_threads, out=g_out, hess_out=h_out)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._repr_args())
        return f"{type(self).__name__}({args})"

    def _repr_args(self):
        return [("reduction", self.reduction)]


def _pair(out, op):
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ValueError(f"{op}: out must be a pair (grad_out, hess_out), got {type(out).__name__}")
    return out
