"""Example inputs of every loss: the declaration the fuzz harness reads.

Every public loss (function and class) declares, next to its definition, a
generator of *valid* calls.  The fuzz harness (``tests/fuzz/harness.py``)
enumerates the losses from ``fastloss.__all__`` and this declaration, never
from a hand-written list, and derives every hostile variant from the valid
call: memory layouts, NaN/inf, hostile parameters, thread counts, labels,
``out=`` buffers.  A loss without a declaration fails
``tests/test_fuzz.py::test_every_loss_declares_examples``.

How a loss (or a new driver) joins::

    from ._examples import Example, declare

    def _gen_my_loss(rng, dtype, size):
        x = rng.standard_normal((size, 3)).astype(dtype)
        return Example(args={"input": x, "target": ..., "margin": 1.0, "reduction": "mean"})

    declare(_gen_my_loss, my_loss, MyLoss)

``gen(rng, dtype, size) -> Example``: ``rng`` is a ``numpy.random.Generator``,
``dtype`` float32 or float64 (the input's), ``size`` a small item count
(0 included: empty batches are a case too).  ``Example.args`` is one valid
call of the *function*, every argument by keyword (its name in the
function's signature); the harness maps it onto the class (the arguments
the class's ``__init__`` takes go to the constructor, the others to the
call).  Arrays in ``args`` are operands: every floating array gets the
layout and NaN/inf variants.  ``Example.labels`` names the integer
class-label arrays and their number of classes (``{"target": C}``), so
that out-of-range, uint64 and narrow-dtype labels can be derived.
``Example.lengths`` names the integer operands that are bounded counts
(CTC's ``input_lengths``, ``target_lengths``): -1, 2**31, 2**63-1,
-2**63 and uint64 beyond int64 in one of them must be a ValueError naming
it.  Every integer array that is not a class-label array (lengths,
in-batch group ids) also gets every integer dtype its values fit (the
same result as the declared dtype).  Scalar
real parameters (float or int, not bool) get the hostile values
(NaN, inf, 2**31, 2**70, 10**400, ...), which must give a result or a
ValueError/TypeError naming the parameter.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np


class Example(NamedTuple):
    args: dict                  # one valid call of the function, by keyword
    labels: dict = {}           # {name of an integer class-label array: n_classes}
    lengths: tuple = ()         # names of integer operands that are bounded counts (lengths)


def declare(gen: Callable, *losses) -> None:
    """Register ``gen`` as the example generator of the given function(s)
    and class(es) (attribute ``_examples``)."""
    for obj in losses:
        obj._examples = gen


# ------------------------------------------------------------------ helpers
# Shared by the declarations of the existing losses; a new driver may use
# them or write its own generator.

def shape_nd(rng, size: int, max_ndim: int = 3) -> tuple:
    """A random shape of about ``size`` elements and 0 to max_ndim axes."""
    nd = int(rng.integers(0, max_ndim + 1))
    if nd == 0:
        return ()
    if size == 0:
        s = [int(rng.integers(1, 4)) for _ in range(nd)]
        s[int(rng.integers(0, nd))] = 0
        return tuple(s)
    dims = [1] * nd
    for _ in range(int(np.log2(size)) + 1):
        dims[int(rng.integers(0, nd))] *= 2
    dims = [max(1, min(d, size)) for d in dims]
    return tuple(dims)


def broadcast_shape(rng, shape: tuple):
    """A shape broadcastable to ``shape`` (for per-element weights)."""
    k = int(rng.integers(0, len(shape) + 1))
    sub = list(shape[len(shape) - k:])
    for i in range(len(sub)):
        if rng.random() < 0.3:
            sub[i] = 1
    return tuple(sub)


def values(rng, kind: str, shape: tuple, dtype) -> np.ndarray:
    """Random values of a kind: normal, prob (0, 1), unit [0, 1], positive,
    binary {0, 1}, sign {-1, 1}, count (Poisson), logprob (log of a
    probability), simplex (probabilities along the last axis)."""
    if kind == "normal":
        a = rng.standard_normal(shape) * 2
    elif kind == "prob":
        a = rng.uniform(0.02, 0.98, shape)
    elif kind == "unit":
        a = rng.uniform(0.0, 1.0, shape)
    elif kind == "positive":
        a = rng.uniform(0.1, 3.0, shape)
    elif kind == "binary":
        a = (rng.random(shape) < 0.5).astype(np.float64)
    elif kind == "sign":
        a = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    elif kind == "count":
        a = rng.poisson(2.0, shape).astype(np.float64)
    elif kind == "logprob":
        a = np.log(rng.uniform(0.02, 1.0, shape))
    elif kind == "simplex":
        e = rng.uniform(0.05, 1.0, shape)
        a = e / e.sum(axis=-1, keepdims=True) if e.ndim else np.ones(shape)
    else:  # pragma: no cover - a declaration's typo
        raise ValueError(f"unknown kind of values {kind!r}")
    return np.asarray(a, dtype=dtype)


def pointwise(input: str = "normal", target: str = "normal", reductions=("mean", "sum", "none"),
              weight: bool = True, **params) -> Callable:
    """The generator of a pointwise loss ``f(input, target, **params)``:
    input and target of one random shape, an optional broadcastable
    per-element weight, a random reduction.  A parameter given as a
    callable ``f(rng)`` is drawn per example."""

    def gen(rng, dtype, size):
        shape = shape_nd(rng, size)
        args = {"input": values(rng, input, shape, dtype), "target": values(rng, target, shape, dtype),
                "reduction": reductions[int(rng.integers(0, len(reductions)))]}
        if weight and rng.random() < 0.4:
            args["weight"] = values(rng, "positive", broadcast_shape(rng, shape), dtype)
        for k, v in params.items():
            args[k] = v(rng) if callable(v) else v
        return Example(args)

    return gen


def rows_shape(rng, size: int, spatial: bool) -> tuple:
    """(N, C), (C,) or, if spatial, (N, C, d1[, d2]) with C >= 1."""
    C = int(rng.integers(1, 9)) if rng.random() < 0.8 else int(rng.integers(60, 300))
    r = rng.random()
    if r < 0.15:
        return (C,)
    N = size if rng.random() < 0.9 else 0
    if spatial and r > 0.7:
        d = tuple(int(rng.integers(1, 5)) for _ in range(int(rng.integers(1, 3))))
        return (max(1, N // 4) if N else 0, C) + d
    return (N, C)


def items_of(shape: tuple) -> tuple:
    """The labels' shape of a (C,) / (N, C, ...) input."""
    return () if len(shape) == 1 else (shape[0],) + shape[2:]


def labels(rng, shape: tuple, C: int, ignore=None) -> np.ndarray:
    """Integer labels in [0, C) for a row input, a few set to ``ignore``."""
    y = rng.integers(0, C, items_of(shape)).astype(np.int64)
    if ignore is not None and y.size:
        y[rng.random(y.shape) < 0.2] = ignore
    return y
