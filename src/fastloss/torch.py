"""PyTorch modules and functions whose forward and backward run fastloss.

For every fastloss loss there is an ``nn.Module`` with the ``torch.nn``
name and options (``fastloss.torch.HuberLoss(delta=1.0)``) and a
functional form with the ``torch.nn.functional`` name
(``fastloss.torch.huber_loss(input, target, delta=1.0)``).  Both are
generated from fastloss's own loss table, so a loss added to fastloss is
available here with no new adapter code.

Behind each is one ``torch.autograd.Function``: its forward hands the CPU
tensors to the fused kernel through NumPy (no copy for contiguous tensors)
and keeps the gradient the kernel computed in the same pass; its backward
multiplies that gradient by ``grad_output``.  There is no second pass over
the data.

Gradients flow to ``input`` and, where the loss has one, to its other
differentiable operand (``var`` of ``gaussian_nll_loss``).  Targets and
weights are constants: a target that requires grad is an error.

Only CPU tensors of dtype float32 or float64 are accepted as ``input``; a
CUDA tensor or another dtype raises a ``TypeError`` naming the tensor (no
silent fallback: move the tensor with ``.cpu()``/``.float()``, or use
``torch.nn``'s loss on the GPU).  Under ``torch.compile`` the loss is a
graph break and runs eagerly.

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

import numpy as np
import torch

import fastloss as _fl

__all__: list[str] = []

_FLOAT = (torch.float32, torch.float64)


def _grad_args(obj) -> tuple:
    return getattr(obj, "_grad_args", ("input",))


def _as_array(t, name: str, op: str, differentiable: bool):
    """A CPU tensor as a NumPy array sharing its memory; other values pass."""
    if not isinstance(t, torch.Tensor):
        return t
    if t.device.type != "cpu":
        raise TypeError(
            f"fastloss.torch.{op}: {name} is on {t.device}; fastloss runs on the CPU "
            f"(move it with .cpu(), or use torch.nn's loss on that device)"
        )
    if differentiable and t.dtype not in _FLOAT:
        raise TypeError(
            f"fastloss.torch.{op}: {name} must be float32 or float64, got {t.dtype}"
        )
    if not differentiable and t.requires_grad:
        raise ValueError(
            f"fastloss.torch.{op}: {name} requires grad, but fastloss gives gradients only "
            f"with respect to {', '.join(_GRAD_NOTE)}; detach it"
        )
    return t.detach().numpy()


_GRAD_NOTE = ("input", "var (gaussian_nll_loss)")


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
        arrays, sum_shapes = [], {}
        for i, (t, name) in enumerate(zip(tensors, names)):
            a = _as_array(t, name, op, i in grad_slots)
            if i and i in grad_slots and isinstance(a, np.ndarray) and a.shape != arrays[0].shape:
                # another differentiable operand (var): broadcast it to the
                # input's shape, so the kernel's gradient is per element and
                # backward can weight it by grad_output before summing back
                if a.ndim == arrays[0].ndim - 1 and a.shape == arrays[0].shape[:-1]:
                    a = a[..., None]  # PyTorch's convention: one dimension fewer
                sum_shapes[i] = a.shape
                a = np.broadcast_to(a, arrays[0].shape)
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
            if go.dim() and go.shape != g.shape:
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


@torch.compiler.disable
def _apply(call, meta, *tensors):
    # A graph break under torch.compile: dynamo need not trace into the
    # NumPy and Cython code; the loss runs eagerly.
    return _FusedLoss.apply(call, meta, *tensors)


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

    def wrapper(*args, **kwargs):
        bound = sig.bind(*args, **kwargs)
        ops = [bound.arguments.pop(n) for n in operand_names]
        for k in ("return_grad", "out"):
            if k in bound.arguments:
                raise TypeError(f"fastloss.torch.{op}: {k}= is not an argument of the torch form")
        rest = {k: _as_array(v, k, op, False) for k, v in bound.arguments.items()}
        names = tuple(operand_names)
        slots = tuple(i for i, n in enumerate(names) if n in grad_names)

        def call(*arrays):
            kw = dict(zip(names, arrays))
            kw.update(rest)
            return fn(**kw, return_grad=True)

        return _apply(call, (op, names, slots, _axes(class_axis, rest)), *ops)

    wrapper.__name__ = wrapper.__qualname__ = op
    wrapper.__doc__ = (
        f"PyTorch form of :func:`fastloss.{op}`: tensors in, a tensor out, "
        f"differentiable with respect to {', '.join(grad_names)}.\n\n"
        f"Signature as :func:`fastloss.{op}` without ``return_grad`` and ``out``.\n"
    )
    wrapper.__signature__ = sig.replace(
        parameters=[p for p in sig.parameters.values() if p.name not in ("return_grad", "out")]
    )
    return wrapper


def _make_module(cls):
    name = cls.__name__
    grad_names = _grad_args(cls)
    class_axis = getattr(cls, "_class_axis", 1)
    call_sig = inspect.signature(cls.value_and_grad)
    operand_names = [p.name for p in list(call_sig.parameters.values())[1:]
                     if p.name not in ("weight", "out", "loss_out")]
    has_weight = "weight" in call_sig.parameters
    P = inspect.Parameter
    fwd_sig = inspect.Signature(
        [P("self", P.POSITIONAL_OR_KEYWORD)]
        + [P(n, P.POSITIONAL_OR_KEYWORD) for n in operand_names]
        + ([P("weight", P.KEYWORD_ONLY, default=None)] if has_weight else [])
    )

    def __init__(self, *args, **kwargs):
        torch.nn.Module.__init__(self)
        args = [_as_array(a, "argument", name, False) for a in args]
        kwargs = {k: _as_array(v, k, name, False) for k, v in kwargs.items()}
        self.loss = cls(*args, **kwargs)

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
        kw = {"weight": _as_array(bound.arguments.get("weight"), "weight", name, False)} if has_weight else {}
        names = tuple(operand_names)
        slots = tuple(i for i, n in enumerate(names) if n in grad_names)
        loss = self.loss

        def call(*arrays):
            return loss.value_and_grad(*arrays, **kw)

        return _apply(call, (name, names, slots, _axes(class_axis, vars(loss))), *ops)

    forward.__signature__ = fwd_sig

    def extra_repr(self):
        args = getattr(self.loss, "_repr_args", None)
        if args is None:
            return repr(self.loss)
        return ", ".join(f"{k}={v!r}" for k, v in args())

    reduction = property(lambda self: self.loss.reduction, doc="the loss's reduction")

    doc = (
        f"``torch.nn`` module of :class:`fastloss.{name}`: same constructor "
        f"arguments; ``forward({', '.join(operand_names)}, weight=None)``; "
        f"differentiable with respect to {', '.join(grad_names)}.\n"
    )
    return type(name, (torch.nn.Module,), {
        "__init__": __init__, "forward": forward, "extra_repr": extra_repr,
        "reduction": reduction, "__doc__": doc, "__module__": __name__,
    })


def _axes(class_axis, options):
    """A loss's ``_class_axis``: an int, a tuple of the gradient's axes
    that reduction="none"'s value lacks, or a function of the call's
    options (the function's keyword arguments, the object's attributes)
    returning one of those."""
    return class_axis(options) if callable(class_axis) else class_axis


def _is_loss_class(obj) -> bool:
    return inspect.isclass(obj) and hasattr(obj, "value_and_grad")


def _is_loss_function(name: str, obj) -> bool:
    if not inspect.isfunction(obj) or name.startswith("_"):
        return False
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return False
    return "return_grad" in params and _grad_args(obj)[0] in params


def _populate():
    for name in _fl.__all__:
        obj = getattr(_fl, name, None)
        if _is_loss_class(obj):
            globals()[name] = _make_module(obj)
            __all__.append(name)
        elif _is_loss_function(name, obj):
            globals()[name] = _make_function(obj)
            __all__.append(name)


_populate()
