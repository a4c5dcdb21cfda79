"""fastloss over Dask arrays: lazy values and gradients, exact global reductions.

For every fastloss loss function there is one here with the same name and
signature (without ``out=``, with a keyword-only ``rechunk=False``):
``fastloss.dask.mse_loss(input, target, ..., return_grad=True)`` takes
``dask.array`` operands (NumPy arrays are wrapped) and returns a lazy
value -- a 0-d float64 dask array for ``reduction="mean"``/``"sum"``, a
dask array of per-item losses for ``"none"`` -- and lazy gradients
chunked like their operands.  Nothing runs until ``.compute()`` (or
``dask.compute(value, grad)``, which runs the fused kernel once per chunk
for both).

**The same bits as one call on one machine.**  A fastloss kernel sums a
loss in fixed blocks (8192 elements for the pointwise losses,
``16384 // C`` rows for the row losses) added in block order.  This
adapter moves the chunk boundaries along axis 0 onto block boundaries
(a rechunk, only where they are not already there), has each chunk hand
out its blocks' float64 partial sums, adds them in block order on one
worker, and divides by the global count.  Where the count is not known
from the shapes -- a weighted mean of ``mse_loss``/``l1_loss``, the class
weights and ``ignore_index`` of ``cross_entropy`` and its relatives -- one
extra pass reads only the weights or the labels (never the input) and sums
the divisor in the driver's own blocks, before the fused pass.  The value
is then bit-identical to ``fastloss.<loss>`` on the whole array, for any
chunking; so is the gradient (it is elementwise with the global scale).
The gradient of an operand given whole to every chunk (a ``var`` or
``target`` that broadcasts along axis 0) is summed over the chunks in
order: equal to the one-machine gradient to rounding, not bit for bit.

**Losses that are not sums of blocks.**  The set-overlap losses (Dice,
Jaccard, Tversky, BCE+Dice, CE+Dice) split along the images: each chunk's
first pass hands out its groups' per-class sums, one task adds them in the
driver's order and computes the value and the gradient's coefficients, a
second pass per chunk writes the gradient.  ``ctc_loss`` splits along its
samples (axis 1 of ``(T, N, C)``): each chunk's float64 per-sample losses,
reduced by one task as one call does.  ``vae_loss`` and
``gan_discriminator_loss`` split term by term, the Lovász losses with
``per_image=True`` along the images.  The losses that need every element
at once (trimmed and winsorized means, the Lovász losses over the whole
batch, the in-batch losses, ``combined_loss``) run gathered: their
operands as one chunk, the single-machine call on one worker
(:func:`strategy`).  All give the single-machine bits.

**Chunking.**  Losses are split along axis 0 only (CTC: its batch axis).
A pointwise loss whose input is also chunked along other axes is
rechunked to whole rows (its result does not depend on it).  A row loss
(classes or features on an axis of their own), a set-overlap loss and CTC
refuse a chunking that splits any axis but the
batch axis, with an error naming the axis, unless ``rechunk=True``.  A chunk
size along axis 0 that is a multiple of :func:`alignment` avoids every
rechunk.  Each chunk runs with ``n_threads`` (default: the worker's
fastloss default); on a worker with several Dask threads, ``n_threads=1``
avoids oversubscribing its cores.

Errors that depend on the data (a label out of range, a probability
outside [0, 1]) are raised when the graph runs, with the index counted
from the start of the whole array; errors in the arguments are raised
when the graph is built.

Examples
--------
>>> import numpy as np, dask.array as da, fastloss as fl, fastloss.dask as fld
>>> rng = np.random.default_rng(0)
>>> x = rng.standard_normal(100_000).astype(np.float32)
>>> t = rng.standard_normal(100_000).astype(np.float32)
>>> X, T = da.from_array(x, chunks=30_000), da.from_array(t, chunks=30_000)
>>> value, grad = fld.huber_loss(X, T, return_grad=True)
>>> v, g = da.compute(value, grad, scheduler="threads")
>>> v == fl.huber_loss(x, t), bool((g == fl.huber_loss(x, t, return_grad=True)[1]).all())
(np.True_, True)
"""
from __future__ import annotations

import inspect

import numpy as np

try:
    import dask
    import dask.array as da
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "fastloss.dask needs Dask: install the extra with  pip install \"fastloss[dask]\"  "
        f"(importing dask failed: {exc})"
    ) from exc

import fastloss as _fl
from fastloss import _chunks
from fastloss._validate import legacy_reduction
from fastloss import _adapt
from fastloss._adapt import grad_args as _grad_args, optional_grad_args as _optional_grad_args

__all__: list[str] = ["alignment", "strategy"]

_PARAMS = ("return_grad", "n_threads", "reduction", "size_average", "reduce")




def _is_array(v) -> bool:
    return isinstance(v, (da.Array, np.ndarray))


def _numeric(v) -> bool:
    """A list or tuple that is an array of numbers (not a list of loss terms)."""
    try:
        return np.asarray(v).dtype.kind in "biuf"
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------- tasks

def _main_task(fn, kwargs, names, div, offset, *arrays):
    """One chunk: the loss on it, with the global divisor; (parts, result)."""
    kw = dict(kwargs)
    kw.update(zip(names, arrays))
    req = _chunks.Request("main", div=div, offset=offset)
    with _chunks.active(req):
        res = fn(**kw)
    return req.parts, res


def _denom_task(run, offset, shape, whole, *arrays):
    with _chunks.active(_chunks.Request("denom", offset=offset)):
        return run(*arrays, shape=shape, offset=offset, whole=whole)


def _finish_task(finish, div, parts_list):
    return np.float64(finish(parts_list, div))


def _pick(res, k):
    return res[1] if k is None else res[1][k]


def _sum_in_order(arrays):
    out = np.array(arrays[0], copy=True)
    for a in arrays[1:]:
        out += a
    return out


# ---------------------------------------------------------------- chunking

def alignment(loss, input, *args, **kwargs):
    """The chunk size unit along axis 0 of ``input`` that needs no rechunk.

    ``fastloss.dask.alignment("cross_entropy", x, y)`` (the loss's name or
    function, then its arguments as for the call) is the number of indices
    of axis 0 whose elements fill whole reduction blocks: chunks along
    axis 0 whose sizes are multiples of it (the last may be shorter) are
    used as they are.

    Examples
    --------
    >>> import numpy as np, fastloss.dask as fld
    >>> fld.alignment("mse_loss", np.zeros((10, 3)), np.zeros((10, 3)))
    8192
    >>> fld.alignment("cross_entropy", np.zeros((10, 1000)), np.zeros(10, np.int64))
    16
    """
    fn = getattr(_fl, loss) if isinstance(loss, str) else getattr(_fl, loss.__name__)
    op = fn.__name__
    if strategy(fn, **kwargs) == "gathered":
        why = getattr(fn, "_unsplittable", None) or "; ".join(
            r for k, r in getattr(fn, "_gathered_with", {}).items() if kwargs.get(k) is not None)
        raise TypeError(f"fastloss.dask.alignment: {op} runs gathered, as one chunk ({why}): "
                        f"it has no chunk alignment")
    if getattr(fn, "_terms", None) is not None:
        raise TypeError(f"fastloss.dask.alignment: {op} is split term by term, each term on its own operands' "
                        f"chunks: it has no one alignment")
    if getattr(fn, "_chunk_path", None) is not None:
        return 1  # any boundary between images or samples
    call = _Call(fn, (input,) + args, kwargs)
    plan = call.plan()
    return _chunks.alignment(plan.per_index, plan.block)


def strategy(loss, /, **options) -> str:
    """How ``fastloss.dask`` runs a loss: ``"split"`` or ``"gathered"``.

    ``options``: the call's options where they decide (the Lovász losses
    split along the images with ``per_image=True``, and are gathered
    without it: one sort over the whole batch).

    ``"split"``: every chunk runs the fused kernel on its part and hands
    out float64 partial sums (per block, per set, or per sample) that one
    small task adds in the single-machine call's order.  ``"gathered"``:
    the loss needs all its elements at once (an order statistic, a sort,
    an N x N similarity, a composite of driver calls), so its operands are
    rechunked to one chunk and the single-machine call runs in one task on
    one worker, which must hold the whole operands and the gradients
    (the reason is the loss's ``_unsplittable``).  Both give the bits of
    the single-machine call.  (``ctc_loss`` with concatenated 1-D targets
    or unbatched input also runs gathered: splitting those depends on the
    lengths' values; so do ``policy_gradient_loss_from_logits`` and
    ``ppo_clip_loss_from_logits`` called with ``stats=``, a dict the one
    call fills: they split along the rows without it.)

    Examples
    --------
    >>> import fastloss.dask as fld
    >>> fld.strategy("dice_loss"), fld.strategy("trimmed")
    ('split', 'gathered')
    >>> fld.strategy("lovasz_hinge_loss"), fld.strategy("lovasz_hinge_loss", per_image=True)
    ('gathered', 'split')
    >>> fld.strategy("ppo_clip_loss_from_logits"), fld.strategy("ppo_clip_loss_from_logits", stats={})
    ('split', 'gathered')
    """
    fn = getattr(_fl, loss) if isinstance(loss, str) else getattr(_fl, loss.__name__)
    when = getattr(fn, "_split_when", None)
    if when and all(options.get(k, None) == v for k, v in when.items()):
        return "split"
    if any(options.get(k) is not None for k in getattr(fn, "_gathered_with", {})):
        return "gathered"  # an option the split path does not serve (the RL logits losses' stats=)
    return "gathered" if getattr(fn, "_unsplittable", None) else "split"


def _aligned(chunks0, n, unit):
    """Axis-0 chunk sizes with every boundary on a multiple of ``unit``
    (each of the given boundaries moved to the nearest multiple)."""
    if unit <= 1:
        return tuple(chunks0)
    bounds, pos = [], 0
    for c in chunks0[:-1]:
        pos += c
        b = min(n, max(0, int(round(pos / unit)) * unit))
        if b and b < n and (not bounds or b > bounds[-1]):
            bounds.append(b)
    sizes, prev = [], 0
    for b in bounds + [n]:
        sizes.append(b - prev)
        prev = b
    return tuple(sizes) if sizes else (n,)


class _Call:
    """One call of a loss over dask operands: the bound arguments, the
    operands and how each is split, and the driver's plan."""

    def __init__(self, fn, args, kwargs, opname=None):
        self.fn = fn
        self.op = opname or fn.__name__
        sig = inspect.signature(fn)
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"fastloss.dask.{self.op}: {exc}") from None
        given = dict(bound.arguments)
        if "size_average" in given or "reduce" in given:
            sa, rd = given.pop("size_average", None), given.pop("reduce", None)
            if sa is not None or rd is not None:
                given["reduction"] = legacy_reduction(sa, rd, given.get("reduction", "mean"), self.op)
        first = _grad_args(fn)[0]
        self.first = first
        x = given[first]
        if not _is_array(x):
            try:
                x = np.asarray(x)
            except Exception as exc:
                raise TypeError(f"fastloss.dask.{self.op}: {first} must be array-like, got {type(x).__name__}") \
                    from exc
        self.x = da.asarray(x) if isinstance(x, np.ndarray) else x
        self.shape = tuple(self.x.shape)
        self.operands, self.static = {first: self.x}, {}
        for k, v in given.items():
            if k == first:
                continue
            if k not in _PARAMS and k not in getattr(fn, "_static_args", ()) and \
                    (_is_array(v) or (isinstance(v, (list, tuple)) and _numeric(v))):
                self.operands[k] = v if _is_array(v) else np.asarray(v)
            else:
                self.static[k] = v
        # a gathered loss reads every operand whole: operands of their own lengths (a GAN's real and
        # fake batches) are not matched against the input's axis 0
        strict = not (getattr(fn, "_unsplittable", None) or getattr(fn, "_terms", None))
        self.axes = {k: self._split_axis(k, v, strict) for k, v in self.operands.items()}
        self._plan = None

    def _split_axis(self, name, a, strict=True):
        """0 if ``a`` runs along the input's axis 0 (and is split with it),
        None if every chunk reads it whole."""
        if name == self.first:
            return 0 if self.shape else None
        xs, s = self.shape, tuple(a.shape)
        if name in getattr(self.fn, "_per_sample_args", ()) and s == xs[:1]:
            return 0  # one value per index of axis 0 (a composite term's per-sample weight)
        per_item = getattr(self.fn, "_per_item_args", {})
        if name in per_item and len(xs) >= 2 and len(s) == len(xs) - 1:
            k = per_item[name] % len(xs)
            if k and s == xs[:k] + xs[k + 1:]:
                return 0
        if len(s) == len(xs) and len(s) >= 1 and s[0] != 1:
            if s[0] != xs[0] and not strict:
                return None
            if s[0] != xs[0]:
                raise ValueError(
                    f"fastloss.dask.{self.op}: {name} of shape {s} does not match the {self.first}'s "
                    f"{xs[0]} along axis 0 ({self.first} of shape {xs})")
            return 0
        return None

    def plan(self) -> _chunks.Plan:
        """Ask the driver how it reduces: the loss on a slice of one index
        along axis 0 (zeros; no kernel runs).  A loss that cannot be split
        along axis 0 (a row loss on one sample) is asked again with the
        whole shapes (zeros that are never written)."""
        if self._plan is None:
            plan = self._ask(slab=True)
            self._plan = plan if plan.split else self._ask(slab=False)
        return self._plan

    def _ask(self, slab):
        kw = dict(self.static)
        if kw.get("check"):
            kw["check"] = False  # check= looks at the data: the chunks' calls do, not this one on zeros
        for k, a in self.operands.items():
            shape = tuple(a.shape)
            if self.axes[k] == 0 and slab:
                shape = (min(shape[0], 1),) + shape[1:]
                kw[k] = np.zeros(shape, a.dtype)
            else:
                kw[k] = a if isinstance(a, np.ndarray) else np.zeros(shape, a.dtype)
        req = _chunks.Request("plan")
        try:
            with _chunks.active(req):
                self.fn(**kw)
        except _chunks.Planned:
            pass
        except (TypeError, ValueError) as exc:
            msg = str(exc)
            if "shape" in msg and self.shape and self.shape[0] > 1:
                msg += (f" (fastloss.dask checks the shapes on a slice of one index along axis 0 of "
                        f"{self.first}, whose shape is {self.shape})")
            raise type(exc)(msg) from None
        if req.plan is None or req.plan.op != self.op:
            raise TypeError(
                f"fastloss.dask.{self.op}: this loss's driver does not hand out per-block sums, so its "
                f"reduction cannot be split into chunks; call fastloss.{self.op} on a NumPy array")
        return req.plan


def _dask_operand(a, axis, chunks0, name):
    """``a`` as a dask array: split along axis 0 with ``chunks0``, or whole."""
    if axis == 0:
        shape = tuple(a.shape)
        chunks = (chunks0,) + tuple((s,) for s in shape[1:])
        if isinstance(a, np.ndarray):
            return da.from_array(a, chunks=chunks, name=False)
        return a.rechunk(chunks)
    if isinstance(a, np.ndarray):
        return a
    return a.rechunk(tuple((s,) for s in a.shape) if a.ndim else ())


def _pieces(a, axis):
    """The per-chunk pieces of an operand, as task arguments."""
    if axis == 0:
        return list(a.to_delayed().ravel())
    if isinstance(a, np.ndarray):
        return dask.delayed(a, pure=True)
    return a.to_delayed().ravel()[0]


def _whole(a):
    """A dask operand as one chunk (a NumPy operand as it is)."""
    if isinstance(a, da.Array):
        return a.rechunk(tuple((s,) for s in a.shape) if a.ndim else ())
    return a


def _working_dtype(x):
    return np.dtype(np.float32) if x.dtype == np.float32 else np.dtype(np.float64)


def _grad_names(call):
    from fastloss._pointwise_api import grad_request  # the names return_grad asks for
    return grad_request(call.static.get("return_grad", False), call.op, _grad_args(call.fn),
                        _optional_grad_args(call.fn))[1]


def _as_grad(g, src, dtype):
    """A gradient from one task, chunked like its operand."""
    if isinstance(src, da.Array) and src.ndim and g.chunks != src.chunks:
        g = g.rechunk(src.chunks)
    return g


def _plan_on_slab(fn, kw, phase, where, shape):
    """Run ``fn(**kw)`` (operands of one image or sample) under a planning
    request of ``phase`` and return the plan its driver hands out (None if
    it hands out none); an argument error names what was checked."""
    req = _chunks.Request(phase)
    try:
        with _chunks.active(req):
            fn(**kw)
    except _chunks.Planned:
        pass
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{exc} (fastloss.dask checks the arguments on {where}, whose shape is {shape})") from None
    return req.plan


# ---------------------------------------------------------------- gathered

def _gathered_task(fn, kwargs, names, *arrays):
    kw = dict(kwargs)
    kw.update(zip(names, arrays))
    res = fn(**kw)
    return res if isinstance(res, tuple) else (res,)


def _gathered_value(res, reduced):
    v = res[0]
    return np.float64(v) if reduced else np.asarray(v)


def _none_shape(call):
    """The shape of a reduction="none" value of a gathered loss: from a
    call on zeros of one or two indices along axis 0 (the value is per
    element, per item along axis 0, or one value)."""
    k = min(call.shape[0], 2) if call.shape else 0
    kw = dict(call.static, return_grad=False)
    kw.pop("check", None)
    for name, a in call.operands.items():
        sh = tuple(a.shape)
        if sh and (call.axes[name] == 0 or (name == "target" and sh[0] == call.shape[0])):
            sh = (k,) + sh[1:]
        kw[name] = np.zeros(sh, a.dtype)
    vs = np.shape(call.fn(**kw))
    if vs and call.shape and vs[0] == k:
        return (call.shape[0],) + vs[1:]
    return vs


def _run_gathered(call: _Call, none_shape=None):
    """A loss whose value needs every element at once (``_unsplittable``):
    the operands as one chunk each, the single-machine call on one worker,
    the gradients rechunked like their operands."""
    fn, x = call.fn, call.x
    names = list(call.operands)
    reduced = call.static.get("reduction", inspect.signature(fn).parameters["reduction"].default) != "none"
    gnames = _grad_names(call)
    vshape = () if reduced else (none_shape if none_shape is not None else _none_shape(call))
    dt = _working_dtype(x)
    args = [_pieces(_whole(call.operands[k]), None) for k in names]
    task = dask.delayed(_gathered_task, pure=True)(fn, call.static, names, *args)
    value = da.from_delayed(dask.delayed(_gathered_value, pure=True)(task, reduced), shape=vshape,
                            dtype=np.float64 if reduced else dt)
    if not reduced and none_shape is None and vshape and call.shape and vshape[0] == call.shape[0] \
            and len(x.chunks[0]) > 1:
        value = value.rechunk({0: x.chunks[0]})
    if not gnames:
        return value
    grads = []
    for j, k in enumerate(gnames):
        src = call.operands[k]
        g = da.from_delayed(dask.delayed(_pick_all, pure=True)(task, j + 1), shape=tuple(src.shape),
                            dtype=_working_dtype(src) if k != call.first else dt)
        grads.append(_as_grad(g, src, dt))
    return (value, *grads)


def _pick_all(res, k):
    return res[k]


# ---------------------------------------------------------------- split along the images (set-overlap losses)

def _sets_task(phase, fn, kwargs, names, div, offset, *arrays):
    kw = dict(kwargs)
    kw.update(zip(names, arrays))
    req = _chunks.Request(phase, div=div, offset=offset)
    with _chunks.active(req):
        res = fn(**kw)
    return req.parts if phase == "sets_sums" else res[1]


def _sets_finish(finish, shape, parts_list):
    return finish(parts_list, shape)


def _run_sets(call: _Call, rechunk: bool):
    """A set-overlap loss (Dice, Jaccard, Tversky, BCE+Dice, CE+Dice) split
    along its images: the first pass per chunk gives its groups' float64
    sums, one task adds them in the driver's order and computes the value
    and the gradient's coefficients, a second pass per chunk writes the
    gradient (fastloss._overlap_api.SetsPlan)."""
    fn, op, x, shape = call.fn, call.op, call.x, call.shape
    if not shape:
        raise ValueError(f"fastloss.dask.{op}: input must have a batch axis (N, ...), got a 0-d array")
    split_names = [k for k in call.operands if k in (call.first, "target")
                   and np.ndim(call.operands[k]) >= 1 and call.operands[k].shape[0] == shape[0]]
    # the plan, from a call on the first image (zeros)
    kw = dict(call.static)
    kw.pop("check", None)
    for k, a in call.operands.items():
        sh = tuple(a.shape)
        if k in split_names:
            kw[k] = np.zeros((min(sh[0], 1),) + sh[1:], a.dtype)
        else:  # given whole to every chunk (a per-class weight)
            kw[k] = a if isinstance(a, np.ndarray) else np.zeros(sh, a.dtype)
    plan = _plan_on_slab(fn, kw, "sets_plan", f"the first image of {call.first}", shape)
    if plan is None or plan.op != op:  # one set over the whole batch (Lovasz without per_image)
        return _run_gathered(call)
    other = []
    for k in split_names:
        a = call.operands[k]
        if isinstance(a, da.Array):
            other += [(k, ax) for ax in range(1, a.ndim) if len(a.chunks[ax]) > 1]
    if other and not rechunk:
        k, ax = other[0]
        raise ValueError(
            f"fastloss.dask.{op}: {k} is chunked along axis {ax}; this loss reads whole images (its sums or "
            f"sorts run over each image's pixels) and is split along the images (axis 0) only: rechunk it "
            f"({{{', '.join(str(a) + ': -1' for a in sorted({a for _, a in other}))}}}) or pass rechunk=True")
    n0 = shape[0]
    chunks0 = x.chunks[0]  # any image boundary is a boundary of the driver's groups: no alignment
    offs = np.concatenate([[0], np.cumsum(chunks0)[:-1]]).astype(int).tolist()
    names = list(call.operands)
    pieces = {}
    for k in names:
        a = call.operands[k]
        if k in split_names:
            pieces[k] = _pieces(_dask_operand(a, 0, chunks0, k), 0)
        else:
            pieces[k] = _pieces(_whole(a), None)

    def args_of(i):
        return [pieces[k][i] if k in split_names else pieces[k] for k in names]

    static = dict(call.static)
    G = plan.groups(shape)
    gnames = _grad_names(call)
    reduced = call.static.get("reduction", "mean") != "none"
    vshape = () if reduced or not plan.per_image else (n0,)
    if plan.one_pass:  # every set within a chunk: its losses and its gradient in one call
        tasks = [dask.delayed(_samples_task, pure=True)(fn, static, names, G, off, *args_of(i), phase="sets_one")
                 for i, off in enumerate(offs)]
        fin = dask.delayed(_sets_finish, pure=True)(plan.finish, shape, [t[0] for t in tasks])
        value = da.from_delayed(dask.delayed(_pick_all, pure=True)(fin, 0), shape=vshape,
                                dtype=np.float64 if reduced else plan.dtype)
        if vshape and len(chunks0) > 1:
            value = value.rechunk({0: chunks0})
        if not gnames:
            return value
        gp = [da.from_delayed(dask.delayed(_pick, pure=True)(t, 1), shape=(size,) + shape[1:], dtype=plan.dtype)
              for t, size in zip(tasks, chunks0)]
        g = gp[0] if len(gp) == 1 else da.concatenate(gp, axis=0)
        return value, _as_grad(g, x, plan.dtype)
    sums = [dask.delayed(_sets_task, pure=True)("sets_sums", fn, static, names, G, off, *args_of(i))
            for i, off in enumerate(offs)]
    fin = dask.delayed(_sets_finish, pure=True)(plan.finish, shape, sums)
    value = da.from_delayed(dask.delayed(_pick_all, pure=True)(fin, 0), shape=vshape,
                            dtype=np.float64 if reduced else plan.dtype)
    if vshape and len(chunks0) > 1:
        value = value.rechunk({0: chunks0})
    if not gnames:
        return value
    coef = dask.delayed(_pick_all, pure=True)(fin, 1)
    gp = [da.from_delayed(dask.delayed(_sets_task, pure=True)("sets_grad", fn, static, names, coef, off,
                                                              *args_of(i)),
                          shape=(size,) + shape[1:], dtype=plan.dtype)
          for i, (size, off) in enumerate(zip(chunks0, offs))]
    g = gp[0] if len(gp) == 1 else da.concatenate(gp, axis=0)
    return value, _as_grad(g, x, plan.dtype)


# ---------------------------------------------------------------- split along the samples (CTC)

def _samples_task(fn, kwargs, names, wsum, offset, *arrays, phase="samples"):
    kw = dict(kwargs)
    kw.update(zip(names, arrays))
    req = _chunks.Request(phase, div=wsum, offset=offset)
    with _chunks.active(req):
        res = fn(**kw)
    return req.parts, res


def _samples_wsum(wsum, weight, n):
    return wsum(weight, n)


def _run_samples(call: _Call, rechunk: bool):
    """CTC split along its samples (axis 1 of (T, N, C) log_probs, axis 0
    batch-first), with the padded targets, the lengths and the per-sample
    weights: each chunk runs the kernel with the whole batch's divisor and
    hands out its float64 per-sample losses; one task reduces them as one
    call does (fastloss._sequence_api.SamplesPlan).  Unbatched input and
    concatenated 1-D targets (whose split depends on the lengths' values)
    run gathered."""
    fn, op, x, shape = call.fn, call.op, call.x, call.shape
    targets = call.operands.get("targets")
    batch_first = bool(call.static.get("batch_first", False))
    if len(shape) != 3 or targets is None or np.ndim(targets) != 2:
        # unbatched, or concatenated targets (split by the lengths' values): one value per sample
        return _run_gathered(call, () if len(shape) != 3 else (shape[0 if batch_first else 1],))
    kw = dict(call.static)
    kw.pop("check", None)
    batch_first = bool(call.static.get("batch_first", False))
    b = 0 if batch_first else 1
    per_sample = [k for k, a in call.operands.items() if k != call.first and len(shape) == 3
                  and np.ndim(a) >= 1 and a.shape[0] == shape[b]]
    for k, a in call.operands.items():
        sh = tuple(a.shape)
        if k == call.first and len(sh) == 3:
            sh = sh[:b] + (min(sh[b], 1),) + sh[b + 1:]
        elif k in per_sample:
            sh = (min(sh[0], 1),) + sh[1:]
        if isinstance(a, np.ndarray) and sh == a.shape:
            kw[k] = a
        else:
            kw[k] = np.zeros(sh, a.dtype)
    plan = _plan_on_slab(fn, kw, "samples_plan", f"the first sample of {call.first}", shape)
    if plan is None or plan.op != op:  # unbatched, or concatenated targets
        return _run_gathered(call)
    other = [ax for ax in range(3) if ax != b and len(x.chunks[ax]) > 1]
    for k in per_sample:
        a = call.operands[k]
        if isinstance(a, da.Array):
            other += [ax for ax in range(1, a.ndim) if len(a.chunks[ax]) > 1]
    if other and not rechunk:
        raise ValueError(
            f"fastloss.dask.{op}: {call.first} or an operand split with it is chunked along axis {other[0]}; "
            f"this loss reads each sample's whole sequence and is split along the samples (axis {b} of "
            f"{call.first}) only: rechunk it or pass rechunk=True")
    chunks_b = x.chunks[b]
    n = shape[b]
    offs = np.concatenate([[0], np.cumsum(chunks_b)[:-1]]).astype(int).tolist()
    xc = x.rechunk(tuple(chunks_b if ax == b else (s,) for ax, s in enumerate(shape)))
    xp = list(np.moveaxis(xc.to_delayed(), b, 0).ravel())
    names = list(call.operands)
    pieces = {call.first: xp}
    for k in names:
        if k in per_sample:
            pieces[k] = _pieces(_dask_operand(call.operands[k], 0, chunks_b, k), 0)
        elif k != call.first:
            pieces[k] = _pieces(_whole(call.operands[k]), None)
    w = call.operands.get("weight")
    wsum = dask.delayed(_samples_wsum, pure=True)(
        plan.wsum, None if w is None else _pieces(_whole(w), None), n)
    static = dict(call.static)
    tasks = [dask.delayed(_samples_task, pure=True)(
        fn, static, names, wsum, off, *[pieces[k][i] if (k in per_sample or k == call.first) else pieces[k]
                                        for k in names])
        for i, off in enumerate(offs)]
    reduced = call.static.get("reduction", "mean") != "none"
    gnames = _grad_names(call)
    if reduced:
        value = da.from_delayed(dask.delayed(plan.finish, pure=True)([t[0] for t in tasks], wsum), shape=(),
                                dtype=np.float64)
    else:
        vk = 0 if gnames else None
        vp = [da.from_delayed(dask.delayed(_pick, pure=True)(t, vk), shape=(size,), dtype=plan.dtype)
              for t, size in zip(tasks, chunks_b)]
        value = vp[0] if len(vp) == 1 else da.concatenate(vp)
    if not gnames:
        return value
    gp = [da.from_delayed(dask.delayed(_pick, pure=True)(t, 1),
                          shape=tuple(size if ax == b else s for ax, s in enumerate(shape)), dtype=plan.dtype)
          for t, size in zip(tasks, chunks_b)]
    g = gp[0] if len(gp) == 1 else da.concatenate(gp, axis=b)
    return value, _as_grad(g, x, plan.dtype)


# ---------------------------------------------------------------- composite losses (a sum of driver calls)

def _add_in_order(values):
    total = values[0]
    for v in values[1:]:
        total = total + v
    return np.float64(total)


def _run_terms(call: _Call, rechunk: bool):
    """A loss whose value is a sum of pointwise driver calls over operands
    of their own shapes (``vae_loss``: the reconstruction and the KL;
    ``gan_discriminator_loss``: the real and the fake batch): each term is
    split as a pointwise loss, on its own operands' chunks, and the values
    are added in the loss's order (see _generative_losses.DaskTerm)."""
    fn, op = call.fn, call.op
    sig = inspect.signature(fn)
    given = dict(call.static)
    given.update(call.operands)
    for k, v in list(given.items()):
        if isinstance(v, np.ndarray) and k in call.operands and v.ndim:
            given[k] = da.from_array(v, chunks=v.shape)
    given = {k: v for k, v in given.items() if k in sig.parameters}
    gnames = _grad_names(call)
    terms = fn._terms(**{k: v for k, v in given.items() if k != "return_grad"})
    values, grads = [], {}
    for t in terms:
        want = [tn for tn, pn in t.grads.items() if pn in gnames]
        sub = _Call(t.fn, (), dict(t.args, return_grad=True if want else False), opname=op)
        res = _run(sub, rechunk)
        if want:
            values.append(res[0])
            for tn, g in zip(_grad_args(t.fn), res[1:]):
                grads[t.grads[tn]] = g
        else:
            values.append(res)
    value = da.from_delayed(dask.delayed(_add_in_order, pure=True)(values), shape=(), dtype=np.float64)
    if not gnames:
        return value
    return (value, *(grads[k] for k in gnames))


def _run(call: _Call, rechunk: bool):
    fn, op, x = call.fn, call.op, call.x
    if getattr(fn, "_terms", None) is not None:
        return _run_terms(call, rechunk)
    if getattr(fn, "_chunk_path", None) == "sets":
        return _run_sets(call, rechunk)
    if getattr(fn, "_chunk_path", None) == "samples":
        return _run_samples(call, rechunk)
    if getattr(fn, "_unsplittable", None) or any(call.static.get(k) is not None
                                                 for k in getattr(fn, "_gathered_with", {})):
        return _run_gathered(call)
    plan = call.plan()
    shape = call.shape
    n0 = shape[0] if shape else 1
    rows_like = plan.value_drop is not None
    if len(shape) > 1:
        split = [ax for ax in range(1, len(shape)) if len(x.chunks[ax]) > 1]
        for k, a in call.operands.items():
            if isinstance(a, da.Array) and call.axes[k] == 0 and a.ndim > 1:
                split += [ax for ax in range(1, a.ndim) if len(a.chunks[ax]) > 1 and ax not in split]
        if split and rows_like and not rechunk:
            raise ValueError(
                f"fastloss.dask.{op}: {call.first} or an operand split with it is chunked along axis "
                f"{split[0]}; this loss reads whole rows "
                f"(axis {plan.value_drop} holds the classes or features) and is split along axis 0 only: "
                f"rechunk it ({{{', '.join(f'{a}: -1' for a in split)}}}) or pass rechunk=True")
    static, names = call.static, list(call.operands)
    reduced = plan.reduced
    if not plan.split:
        work0 = (n0,) if shape else ()
        unit = n0 or 1
    else:
        # aligned for every reduction: a kernel's vector loop and its scalar
        # tail may round an element differently, so even per-element
        # results keep their bits only at the same offsets within a block
        unit = _chunks.alignment(plan.per_index, plan.block)
        work0 = _aligned(x.chunks[0], n0, unit)
    if not shape:
        chunks_list = [((), 0)]
    else:
        offs = np.concatenate([[0], np.cumsum(work0)[:-1]]).astype(int).tolist()
        chunks_list = list(zip(work0, offs))

    # the divisor of the mean: from the shapes, or one pass over the weights/labels
    div = 0
    if reduced and plan.denom is not None:
        den = plan.denom
        ud = _chunks.alignment(plan.per_index, den.block) if plan.split else (n0 or 1)
        dchunks0 = _aligned(x.chunks[0], n0, ud) if plan.split else work0
        doffs = np.concatenate([[0], np.cumsum(dchunks0)[:-1]]).astype(int).tolist() if shape else [0]
        dpieces = []
        for name in den.args:
            a = call.operands.get(name)
            if a is None:
                dpieces.append(None)
                continue
            ax = call.axes[name] if plan.split else None
            dpieces.append((_pieces(_dask_operand(a, ax, dchunks0, name), ax), ax, a))
        dtasks = []
        for i, (size, off) in enumerate(zip(dchunks0, doffs)):
            cshape = (size,) + shape[1:] if shape else ()
            args = []
            for p in dpieces:
                if p is None:
                    args.append(None)
                else:
                    pieces, ax, a = p
                    args.append(pieces[i] if ax == 0 else pieces)
            dtasks.append(dask.delayed(_denom_task, pure=True)(den.run, off, cshape, shape, *args))
        div = dask.delayed(_chunks.ordered_sum, pure=True)(dtasks)
    elif reduced and plan.div is not None:
        div = plan.div(shape)

    ops = {k: _dask_operand(a, call.axes[k] if plan.split else None, work0, k)
           for k, a in call.operands.items()}
    pieces = {k: _pieces(ops[k], call.axes[k] if plan.split else None) for k in names}
    tasks = []
    for i, (size, off) in enumerate(chunks_list):
        args = []
        for k in names:
            p = pieces[k]
            if plan.split and call.axes[k] == 0:
                args.append(p[i])
            else:
                args.append(p)
        tasks.append(dask.delayed(_main_task, pure=True)(fn, static, names, div, off, *args))

    from fastloss._pointwise_api import grad_request  # the names return_grad asks for
    mode, gnames = grad_request(static.get("return_grad", False), op, _grad_args(fn), _optional_grad_args(fn))
    want_grad = bool(gnames)

    def chunk_shape(k, size):
        s = tuple(call.operands[k].shape)
        if plan.split and call.axes[k] == 0:
            return (size,) + s[1:]
        return s

    def value_shape(size):
        s = (size,) + shape[1:] if shape else ()
        if plan.value_drop is None:
            return s
        return s[:plan.value_drop] + s[plan.value_drop + 1:]

    if reduced:
        value = da.from_delayed(dask.delayed(_finish_task, pure=True)(plan.finish, div, [t[0] for t in tasks]),
                                shape=(), dtype=np.float64)
    else:
        vk = 0 if want_grad else None
        parts = [da.from_delayed(dask.delayed(_pick, pure=True)(t, vk), shape=value_shape(size), dtype=plan.dtype)
                 for t, (size, _) in zip(tasks, chunks_list)]
        value = parts[0] if len(parts) == 1 else da.concatenate(parts, axis=0)
        if plan.split and value.chunks[0] != x.chunks[0]:  # back to the input's rows
            value = value.rechunk({0: x.chunks[0]})
    if not want_grad:
        return value
    grads = []
    for j, k in enumerate(gnames):
        src = call.operands[k]
        gdt = plan.dtype
        if plan.split and call.axes[k] == 0:
            gp = [da.from_delayed(dask.delayed(_pick, pure=True)(t, j + 1), shape=chunk_shape(k, size), dtype=gdt)
                  for t, (size, _) in zip(tasks, chunks_list)]
            g = gp[0] if len(gp) == 1 else da.concatenate(gp, axis=0)
            target_chunks = src.chunks if isinstance(src, da.Array) else \
                (x.chunks[0],) + tuple((s,) for s in src.shape[1:])
            if g.chunks != target_chunks:
                g = g.rechunk(target_chunks)
        else:
            gs = [dask.delayed(_pick, pure=True)(t, j + 1) for t in tasks]
            one = gs[0] if len(gs) == 1 else dask.delayed(_sum_in_order, pure=True)(gs)
            g = da.from_delayed(one, shape=tuple(src.shape), dtype=gdt)
            if isinstance(src, da.Array) and src.ndim and g.chunks != src.chunks:
                g = g.rechunk(src.chunks)
        grads.append(g)
    return (value, *grads)


# ---------------------------------------------------------------- generation

def _make_function(fn):
    op = fn.__name__
    sig = inspect.signature(fn)
    params = [p for p in sig.parameters.values() if p.name != "out"]
    params.append(inspect.Parameter("rechunk", inspect.Parameter.KEYWORD_ONLY, default=False))
    new_sig = sig.replace(parameters=params)

    def wrapper(*args, rechunk=False, **kwargs):
        if "out" in kwargs:
            raise TypeError(f"fastloss.dask.{op}: out= is not an argument of the Dask form (the results are "
                            f"new dask arrays)")
        if not isinstance(rechunk, (bool, np.bool_)):
            raise TypeError(f"fastloss.dask.{op}: rechunk must be True or False, got {rechunk!r}")
        return _run(_Call(fn, args, kwargs, op), bool(rechunk))

    wrapper.__name__ = wrapper.__qualname__ = op
    wrapper.__module__ = __name__
    wrapper.__signature__ = new_sig
    grads = ", ".join(_grad_args(fn) + _optional_grad_args(fn))
    wrapper.__doc__ = (
        f"Dask form of :func:`fastloss.{op}`: dask arrays in, lazy results out.\n\n"
        f"Signature as :func:`fastloss.{op}` without ``out``, plus ``rechunk=False`` (see\n"
        f":mod:`fastloss.dask`).  Returns a 0-d float64 dask array for a reduced value (the\n"
        f"same bits as :func:`fastloss.{op}` on the whole array), a dask array for\n"
        f"reduction=\"none\", and with ``return_grad`` the gradients ({grads}) as dask arrays\n"
        f"chunked like their operands.\n"
    )
    return wrapper


_adapt.populate(globals(), __all__, _make_function)
