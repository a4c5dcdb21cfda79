"""The hook through which an adapter runs a loss on pieces of a larger array.

fastloss.dask evaluates a loss over an array split into chunks and must
give the same bits as one call over the whole array.  A driver reduces in
fixed blocks added in block order, so that is possible when every chunk
starts on a block boundary: each chunk hands out its blocks' float64
partial sums, and the sums of all chunks, added in order, are the whole
array's.  The mean's divisor (and with it the gradient's scale) must be
the whole array's too.

The public loss functions keep their signatures: the adapter sets a
:class:`Request` for the current context (:func:`active`) and calls the
function as any user would.  Each driver's call path (``_pointwise_api.run``,
``_rows_api.run``) reads it with :func:`current`:

- ``phase="plan"``: validate the arguments as usual, then store the
  reduction's structure in ``request.plan`` (see :func:`make_plan`) and
  raise :class:`Planned` before any kernel runs.  The adapter calls the
  function on a thin slice of the operands to learn it.
- ``phase="main"``: run the kernel with ``request.div``, the whole array's
  divisor of the mean, in place of the chunk's own, and store the main
  pass's per-block partial sums in ``request.parts``.  ``request.offset``
  (the chunk's first index along axis 0) shifts the indices that error
  messages name (:func:`index_offset`), so they point into the whole array.

A driver that has no such path leaves ``request.plan`` unset, and the
adapter refuses the loss by name.  Outside an adapter the request is None
and the call path is the ordinary one (one context-variable read).
"""
from __future__ import annotations

import contextlib
import contextvars
import math
from typing import Callable, NamedTuple, Optional

_REQUEST: contextvars.ContextVar = contextvars.ContextVar("fastloss_chunk_request", default=None)


class Planned(Exception):
    """Raised by a driver's call path once the plan is recorded (phase "plan")."""


class Denominator(NamedTuple):
    """The extra pass a mean needs when its divisor is not known from the
    shapes (a weighted mean, labels that may be ignored)."""
    block: int            # units (elements or items) per block of this pass
    args: tuple           # the loss's arguments the pass reads, e.g. ("weight",)
    run: Callable         # run(*those arguments' chunks, shape=, offset=) -> float64 parts


class Plan(NamedTuple):
    """How a driver reduces one call, for an adapter that splits the input
    along its axis 0.  The units are elements (pointwise) or items (rows)."""
    driver: str
    dtype: object                 # the working dtype (the outputs' dtype)
    split: bool                   # axis 0 may be chunked at all
    per_index: int                # units per index of axis 0
    block: int                    # units per block: chunk offsets must be multiples
    value_drop: Optional[int]     # axis of input a reduction="none" value lacks (None: none)
    div: Optional[Callable]       # div(global input shape) -> the mean's divisor; None if
    #                               there is no mean or it needs `denom`
    denom: Optional[Denominator]  # the extra pass of a mean whose divisor it sums
    finish: Callable              # finish(total, div) -> the value, as the driver computes it
    reduced: bool                 # reduction is "mean"/"sum"/"batchmean" (a scalar value)


class Request:
    """What an adapter asks of one call (see the module docstring)."""

    __slots__ = ("phase", "div", "offset", "plan", "parts")

    def __init__(self, phase: str, div=None, offset: int = 0):
        self.phase = phase
        self.div = div
        self.offset = offset
        self.plan = None
        self.parts = None


def current() -> Optional[Request]:
    return _REQUEST.get()


@contextlib.contextmanager
def active(request: Request):
    token = _REQUEST.set(request)
    try:
        yield request
    finally:
        _REQUEST.reset(token)


def index_offset() -> int:
    """The chunk's first index along axis 0 (0 outside an adapter)."""
    r = _REQUEST.get()
    return 0 if r is None else r.offset


def alignment(per_index: int, block: int) -> int:
    """The smallest number of axis-0 indices whose units fill whole blocks."""
    if per_index <= 0:
        return 1
    return block // math.gcd(block, per_index)
