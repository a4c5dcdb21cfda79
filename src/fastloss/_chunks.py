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
  reduction's structure in ``request.plan`` (a :class:`Plan`) and
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
import functools
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
    run: Callable         # run(*those arguments' chunks, shape=, offset=, whole=) -> float64 parts
    #                       (shape: the chunk's input shape; whole: the whole input's)


class Plan(NamedTuple):
    """How a driver reduces one call, for an adapter that splits the input
    along its axis 0.  The units are elements (pointwise) or items (rows,
    boxes).  ``op`` is the loss the driver ran as: an adapter checks it is
    the function it called (a loss built on another loss's call path, as a
    trimmed mean, would otherwise pass its inner call's plan off as its own)."""
    op: str
    driver: str
    dtype: object                 # the working dtype (the outputs' dtype)
    split: bool                   # axis 0 may be chunked at all
    per_index: int                # units per index of axis 0
    block: int                    # units per block: chunk offsets must be multiples
    value_drop: Optional[int]     # axis of input a reduction="none" value lacks (None: none)
    div: Optional[Callable]       # div(global input shape) -> what every chunk's call needs of
    #                               the whole array (the mean's divisor); None if nothing or `denom`
    denom: Optional[Denominator]  # the extra pass whose parts, added in order, are that
    finish: Callable              # finish(list of every chunk's parts, div) -> the value
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


def ordered_sum(parts_list):
    """Every chunk's block sums added in block order, one after the other
    from 0.0, as a driver adds its blocks.  A part that is an array of
    rows (per-class sums of a block) is added row by row."""
    total = 0.0
    for p in parts_list:
        for v in (p.tolist() if p.ndim == 1 else p):
            total = total + v
    return total


def _summed(finish, parts_list, div):
    return finish(ordered_sum(parts_list), div)


def summed(finish: Callable) -> Callable:
    """A Plan.finish from finish(total, div): the parts added in order first."""
    return functools.partial(_summed, finish)
