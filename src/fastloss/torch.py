"""PyTorch modules and functions whose forward and backward run fastloss.

For every fastloss loss there is an ``nn.Module`` with the ``torch.nn``
name and options (``fastloss.torch.HuberLoss("sum", 0.5)``, as
``torch.nn.HuberLoss``) and a functional form with the
``torch.nn.functional`` name and signature
(``fastloss.torch.huber_loss(input, target, "mean", 0.5)``), including
PyTorch's deprecated ``size_average``/``reduce`` (with PyTorch's warning).
Both are generated from fastloss's own loss table, so a loss added to
fastloss is available here with no new adapter code.

A module registers its tensor options (``weight``, ``pos_weight``, a
tensor ``alpha``) as buffers, as ``torch.nn`` does: they are in
``state_dict()`` and follow ``.to()``/``.double()``; its other options
are plain attributes (``m.reduction``, ``m.delta``), read at each call.

Behind each is one ``torch.autograd.Function``: its forward hands the CPU
tensors to the fused kernel through NumPy (no copy for contiguous tensors)
and keeps the gradient the kernel computed in the same pass; its backward
multiplies that gradient by ``grad_output``.  There is no second pass over
the data.

Gradients flow to ``input``, to the loss's other differentiable operand
(``var`` of ``gaussian_nll_loss``) and, when it requires grad, to
``target`` where PyTorch differentiates the target too (the regression
losses, the Poisson and Gaussian NLL, both binary cross-entropies,
``kl_div``, ``cross_entropy`` with class probabilities,
``multilabel_soft_margin_loss``): the target's gradient is computed in the
same fused pass, and only when the target requires grad.  A target of a
loss without that gradient, and a weight, that requires grad is an error.

Only CPU tensors of dtype float32 or float64 are accepted as ``input``; a
CUDA tensor or another dtype raises a ``TypeError`` naming the tensor (no
silent fallback: move the tensor with ``.cpu()``/``.float()``, or use
``torch.nn``'s loss on the GPU).  NumPy arrays are refused by name (they
belong to the NumPy API, :mod:`fastloss`).  Under ``torch.compile`` the
loss is a graph break and runs eagerly; ``torch.compiler.disable``, which
imports ``torch._dynamo``, is applied at the first call, not at import.

Examples
--------
>>> import torch, fastloss.torch as flt
>>> x = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
>>> t = torch.tensor([1.0, 0.0, 1.0])
>>> loss = flt.BCEWithLogitsLoss()(x, t)
>>> loss.backward()
>>> torch.allclose(x.grad, (torch.sigmoid(x) - t) / 3)
True
"""
from __future__ import annotations

import inspect
import sys

import numpy as np
import torch

import fastloss as _fl
from fastloss._validate import legacy_reduction
from fastloss import _adapt
from fastloss._adapt import grad_args as _grad_args, optional_grad_args as _optional_grad_args

__all__: list[str] = []

_FLOAT = (torch.float32, torch.float64)




def _refuse_array(v, name: str, op: str) -> None:
    """fastloss.torch takes tensors: a NumPy array is an error, before any work."""
    if isinstance(v, np.ndarray):
        raise TypeError(
            f"fastloss.torch.{op}: {name} must be a torch.Tensor, got a numpy.ndarray (fastloss.torch "
            f"takes tensors; the NumPy API is fastloss.{op})"
        )


def _detached(ops):
    """Under no_grad nothing is differentiated: operands that require grad
    are taken as constants (as torch.nn's losses take them)."""
    return [o.detach() if isinstance(o, torch.Tensor) and o.requires_grad else o for o in ops]


def _wants_target_grad(loss, target) -> bool:
    return ("target" in _optional_grad_args(loss) and isinstance(target, torch.Tensor)
            and target.requires_grad and torch.is_grad_enabled())


def _as_array(t, name: str, op: str, differentiable: bool):
    """A CPU tensor as a NumPy array sharing its memory; other values pass.

    Floating dtypes NumPy lacks (bfloat16, float8) of a non-differentiable
    operand become float32 (exactly), as PyTorch promotes them against a
    float32 input; sparse, quantized and other non-strided tensors are a
    TypeError naming the tensor."""
    if not isinstance(t, torch.Tensor):
        return t
    if t.device.type != "cpu":
        raise TypeError(
            f"fastloss.torch.{op}: {name} is on {t.device}; fastloss runs on the CPU "
            f"(move it with .cpu(), or use torch.nn's loss on that device)"
        )
    if t.layout is not torch.strided or t.is_nested:
        raise TypeError(
            f"fastloss.torch.{op}: {name} is a {'nested' if t.is_nested else 'sparse'} tensor "
            f"(layout {t.layout}); fastloss takes dense tensors (call .to_dense())"
        )
    if t.is_quantized:
        raise TypeError(f"fastloss.torch.{op}: {name} is a quantized tensor ({t.dtype}); dequantize it first")
    if differentiable and t.dtype not in _FLOAT:
        raise TypeError(
            f"fastloss.torch.{op}: {name} must be float32 or float64, got {t.dtype}"
        )
    if not differentiable and t.requires_grad:
        raise ValueError(
            f"fastloss.torch.{op}: {name} requires grad, but fastloss gives gradients only "
            f"with respect to {', '.join(_GRAD_NOTE)}; detach it"
        )
    t = t.detach()
    if t.is_floating_point() and t.dtype not in _FLOAT and t.dtype is not torch.float16:
        t = t.to(torch.float32)  # bfloat16, float8: NumPy has no such dtype
    try:
        return t.numpy()
    except (TypeError, RuntimeError) as exc:
        raise TypeError(f"fastloss.torch.{op}: {name} of dtype {t.dtype} cannot be read by NumPy ({exc})") from None


def _check_operands(tensors, names, op):
    """The input must be a tensor (it fixes the result's dtype and carries
    the graph); the other operands a tensor or a Python number (as
    ``var: Tensor | float`` of gaussian_nll_loss), not a list or an array."""
    for i, (t, name) in enumerate(zip(tensors, names)):
        if isinstance(t, torch.Tensor):
            continue
        if i and isinstance(t, (int, float)) and not isinstance(t, bool):
            continue
        raise TypeError(f"fastloss.torch.{op}: {name} must be a torch.Tensor"
                        f"{'' if i == 0 else ' or a number'}, got {type(t).__name__}")


_GRAD_NOTE = ("input", "var (gaussian_nll_loss)", "target where PyTorch differentiates it")


class _NoDoubleBackward(torch.autograd.Function):
    """Identity on a returned gradient; differentiating it again raises.

    fastloss's backward is a product with a saved gradient, so the
    gradient has no graph of its own.  Under ``create_graph=True`` it is
    routed through this function, so that a second derivative fails loudly
    instead of being silently zero."""

    @staticmethod
    def forward(ctx, g, anchor):
        return g.clone()

    @staticmethod
    def backward(ctx, _):
        raise RuntimeError(
            "fastloss.torch: second derivatives are not supported (the fused kernels "
            "give first derivatives); use torch.nn's loss for double backward"
        )


class _FusedLoss(torch.autograd.Function):
    """forward: one fused kernel call; backward: saved gradient × grad_output.

    ``meta`` is (op, operand names, grad slots, class axis); the operands
    follow.  The gradient of slot k is the k-th gradient the loss returns.
    """

    @staticmethod
    def forward(ctx, call, meta, *tensors):
        op, names, grad_slots, class_axis = meta
        _check_operands(tensors, names, op)
        arrays, sum_shapes = [], {}
        for i, (t, name) in enumerate(zip(tensors, names)):
            a = _as_array(t, name, op, i in grad_slots)
            if i and i in grad_slots and isinstance(a, np.ndarray) and a.shape != arrays[0].shape \
                    and not getattr(call, "_own_shapes", False):
                # another differentiable operand (var, a broadcast target):
                # broadcast it to the input's shape, so the kernel's gradient
                # is per element and backward can weight it by grad_output
                # before summing back
                if name != "target" and a.ndim == arrays[0].ndim - 1 and a.shape == arrays[0].shape[:-1]:
                    a = a[..., None]  # PyTorch's convention for var: one dimension fewer
                sum_shapes[i] = a.shape
                try:
                    a = np.broadcast_to(a, arrays[0].shape)
                except ValueError:
                    raise ValueError(
                        f"fastloss.torch.{op}: {name} of shape {tuple(t.shape)} cannot be broadcast to the "
                        f"input's shape {tuple(arrays[0].shape)}") from None
            arrays.append(a)
        res = call(*arrays)
        value, grads = res[0], res[1:]
        ctx.meta = meta
        ctx.n_operands = len(tensors)
        ctx.shapes = [
            (tensors[i].shape, sum_shapes.get(i, tensors[i].shape)) if isinstance(tensors[i], torch.Tensor)
            else None
            for i in grad_slots
        ]
        ctx.save_for_backward(tensors[0], *(torch.from_numpy(np.asarray(g)) for g in grads))
        if isinstance(value, np.ndarray):
            return torch.from_numpy(value)
        return torch.tensor(value, dtype=tensors[0].dtype)

    @staticmethod
    def backward(ctx, grad_out):
        anchor, *grads = ctx.saved_tensors
        _, _, grad_slots, class_axis = ctx.meta
        result = [None] * (2 + ctx.n_operands)
        if isinstance(class_axis, tuple):  # axes to insert, in order
            class_axis = tuple(sorted(class_axis))
        for slot, g, shapes in zip(grad_slots, grads, ctx.shapes):
            if shapes is None or not ctx.needs_input_grad[2 + slot]:
                continue
            shape, sum_shape = shapes
            go = grad_out
            if class_axis is None and go.dim() < g.dim():
                # one value per leading index (an image of a set-overlap
                # loss): broadcast over the trailing axes
                go = go.reshape(go.shape + (1,) * (g.dim() - go.dim()))
            elif go.dim() and go.shape != g.shape:
                # reduction="none" of a row loss: one value per row, the
                # gradient over the classes too: broadcast along the class
                # axis (1 as PyTorch's (N, C, ...), or the last axis); a
                # loss may name several axes (a sequence loss: time and class)
                if isinstance(class_axis, tuple):
                    for ax in class_axis:
                        go = go.unsqueeze(ax)
                else:
                    go = go.unsqueeze(class_axis if class_axis >= 0 else go.dim() + 1 + class_axis)
            r = g * go
            if r.shape != shape:
                r = r.sum_to_size(sum_shape).reshape(shape)
            if torch.is_grad_enabled():
                r = _NoDoubleBackward.apply(r, anchor)
            result[2 + slot] = r
        return tuple(result)


def _apply_eager(call, meta, *tensors):
    return _FusedLoss.apply(call, meta, *tensors)


_disabled_apply = None


def _apply(call, meta, *tensors):
    """The autograd Function, run with torch.compile's tracing disabled.

    Under torch.compile the loss is a graph break: dynamo need not trace
    into the NumPy and Cython code, and the loss runs eagerly.
    ``torch.compiler.disable`` imports ``torch._dynamo`` (seconds), so it is
    applied at the first call made once dynamo is loaded, not at import;
    before then nothing can be compiling, and the Function runs as it is.
    """
    f = _disabled_apply
    if f is None:
        if "torch._dynamo" not in sys.modules:
            return _FusedLoss.apply(call, meta, *tensors)
        f = _disable()
    return f(call, meta, *tensors)


def _disable():
    global _disabled_apply
    _disabled_apply = torch.compiler.disable(_apply_eager)
    return _disabled_apply


def _positional(sig: inspect.Signature) -> list:
    """Names of the parameters that can be given positionally."""
    names = []
    for p in sig.parameters.values():
        if p.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD:
            break
        names.append(p.name)
    return names


def _make_function(fn):
    op = fn.__name__
    sig = inspect.signature(fn)
    grad_names = _grad_args(fn)
    positional = _positional(sig)
    operand_names = [n for n in positional if n in ("input", "target") or n in grad_names]
    class_axis = getattr(fn, "_class_axis", 1)
    legacy = "size_average" in sig.parameters and "reduce" in sig.parameters

    def wrapper(*args, **kwargs):
        bound = sig.bind(*args, **kwargs)
        given = bound.arguments
        for k in ("return_grad", "out"):
            if k in given:
                raise TypeError(f"fastloss.torch.{op}: {k}= is not an argument of the torch form")
        for k, v in given.items():
            _refuse_array(v, k, op)
        if legacy and (given.get("size_average") is not None or given.get("reduce") is not None):
            # PyTorch's legacy arguments, resolved here so that the warning
            # points at the caller
            given["reduction"] = legacy_reduction(given.pop("size_average", None), given.pop("reduce", None),
                                                  given.get("reduction", "mean"), op)
        ops = [given.pop(n) for n in operand_names]
        if not torch.is_grad_enabled():
            ops = _detached(ops)
        rest = {k: _as_array(v, k, op, False) for k, v in given.items()}
        names = tuple(operand_names)
        grads = grad_names
        if _wants_target_grad(fn, ops[names.index("target")] if "target" in names else None):
            # in operand order: backward pairs the k-th gradient with the k-th slot
            grads = tuple(n for n in names if n in grad_names or n == "target")
        slots = tuple(i for i, n in enumerate(names) if n in grads)
        want = True if grads == grad_names else grads

        def call(*arrays):
            kw = dict(zip(names, arrays))
            kw.update(rest)
            return fn(**kw, return_grad=want)

        call._own_shapes = getattr(fn, "_own_shapes", False)  # operands of their own shapes (vae_loss)
        return _apply(call, (op, names, slots, _axes(class_axis, rest)), *ops)

    wrapper.__name__ = wrapper.__qualname__ = op
    wrapper.__doc__ = (
        f"PyTorch form of :func:`fastloss.{op}`: tensors in, a tensor out, "
        f"differentiable with respect to {', '.join(grad_names + _optional_grad_args(fn))}.\n\n"
        f"Signature as :func:`fastloss.{op}` without ``return_grad`` and ``out``.\n"
    )
    wrapper.__signature__ = sig.replace(
        parameters=[p for p in sig.parameters.values() if p.name not in ("return_grad", "out")]
    )
    return wrapper


# constructor options that torch.nn registers as buffers even when None
_BUFFER_NAMES = ("weight", "pos_weight")


def _make_module(cls):
    name = cls.__name__
    grad_names = _grad_args(cls)
    class_axis = getattr(cls, "_class_axis", 1)
    init_sig = inspect.signature(cls.__init__)
    options = [p for p in list(init_sig.parameters.values())[1:]
               if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    legacy = "size_average" in init_sig.parameters and "reduce" in init_sig.parameters
    kept = [p for p in options if not (legacy and p.name in ("size_average", "reduce"))]
    call_sig = inspect.signature(cls.value_and_grad)
    operand_names = [p.name for p in list(call_sig.parameters.values())[1:]
                     if p.name not in ("weight", "out", "loss_out", "wrt", "check")]
    has_weight = "weight" in call_sig.parameters
    P = inspect.Parameter
    fwd_sig = inspect.Signature(
        [P("self", P.POSITIONAL_OR_KEYWORD)]
        + [P(n, P.POSITIONAL_OR_KEYWORD) for n in operand_names]
        + ([P("weight", P.KEYWORD_ONLY, default=None)] if has_weight else [])
    )

    def __init__(self, *args, **kwargs):
        torch.nn.Module.__init__(self)
        bound = init_sig.bind(None, *args, **kwargs)
        bound.apply_defaults()
        given = dict(bound.arguments)
        given.pop(next(iter(init_sig.parameters)))
        if legacy:
            sa, rd = given.pop("size_average"), given.pop("reduce")
            if sa is not None or rd is not None:
                given["reduction"] = legacy_reduction(sa, rd, given["reduction"], name)
        for k, v in given.items():
            _refuse_array(v, k, name)
            if isinstance(v, torch.Tensor):
                _as_array(v, k, name, False)  # a CPU tensor that does not require grad
                self.register_buffer(k, v)
            elif v is None and k in _BUFFER_NAMES:
                self.register_buffer(k, None)
            else:
                setattr(self, k, v)
        self._fl_cache = None
        self._fl_loss()  # the options are checked now, as fastloss's constructor checks them

    def _fl_loss(self):
        """The fastloss loss object for the current options (rebuilt when an
        option, a buffer or its contents changed)."""
        values = [getattr(self, p.name) for p in kept]
        versions = [v._version if isinstance(v, torch.Tensor) else None for v in values]
        c = self._fl_cache
        if c is not None and c[1] == versions and all(a is b for a, b in zip(c[0], values)):
            return c[2]
        kw = {p.name: _as_array(v, p.name, name, False) for p, v in zip(kept, values)}
        loss = cls(**kw)
        self._fl_cache = (values, versions, loss)
        return loss

    def forward(self, *operands, **kw):
        try:
            bound = fwd_sig.bind(self, *operands, **kw)
        except TypeError:
            given = len(operands) + len([k for k in kw if k != "weight"])
            raise TypeError(
                f"fastloss.torch.{name}: forward takes ({', '.join(operand_names)}), got {given} "
                f"tensors" + (" (and weight= as a keyword)" if has_weight else "")
            ) from None
        ops = [bound.arguments[n] for n in operand_names]
        for n, o in zip(operand_names, ops):
            _refuse_array(o, n, name)
        if not torch.is_grad_enabled():
            ops = _detached(ops)
        _refuse_array(bound.arguments.get("weight"), "weight", name)
        w = _as_array(bound.arguments.get("weight"), "weight", name, False)
        names = tuple(operand_names)
        loss = self._fl_loss()
        grads = grad_names
        if "target" in names and _wants_target_grad(loss, ops[names.index("target")]):
            grads = tuple(n for n in names if n in grad_names or n == "target")  # in operand order
        slots = tuple(i for i, n in enumerate(names) if n in grads)

        wkw = {"weight": w} if has_weight else {}
        if grads == grad_names:
            def call(*arrays):
                return loss.value_and_grad(*arrays, **wkw)
        else:
            def call(*arrays):
                return loss.value_and_grad(*arrays, **wkw, wrt=grads)

        call._own_shapes = getattr(cls, "_own_shapes", False)
        return _apply(call, (name, names, slots, _axes(class_axis, vars(loss))), *ops)

    forward.__signature__ = fwd_sig

    def extra_repr(self):
        """The options that differ from their defaults (tensors are buffers: see state_dict())."""
        out = []
        for p in kept:
            v = getattr(self, p.name)
            if isinstance(v, torch.Tensor) or v is None and p.name in _BUFFER_NAMES:
                continue
            if p.default is P.empty or type(v) is not type(p.default) or v != p.default:
                out.append(f"{p.name}={v!r}")
        return ", ".join(out)

    doc = (
        f"``torch.nn`` module of :class:`fastloss.{name}`: the same constructor "
        f"arguments, in ``torch.nn``'s order; ``forward({', '.join(operand_names)}, weight=None)``; "
        f"differentiable with respect to {', '.join(grad_names + _optional_grad_args(cls))}.\n"
    )
    mod = type(name, (torch.nn.Module,), {
        "__init__": __init__, "forward": forward, "extra_repr": extra_repr, "_fl_loss": _fl_loss,
        "__doc__": doc, "__module__": __name__,
    })
    mod.__init__.__signature__ = init_sig
    mod.__init__.__qualname__ = f"{name}.__init__"
    return mod


def _axes(class_axis, options):
    """A loss's ``_class_axis``: an int, a tuple of the gradient's axes
    that reduction="none"'s value lacks, or a function of the call's
    options (the function's keyword arguments, the object's attributes)
    returning one of those."""
    return class_axis(options) if callable(class_axis) else class_axis


_adapt.populate(globals(), __all__, _make_function, _make_module)
