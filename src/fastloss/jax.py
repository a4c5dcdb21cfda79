"""fastloss losses as JAX functions: ``jax.jit``, ``jax.grad``, ``jax.vmap``.

For every fastloss loss function there is one here with the same name
and signature (without ``return_grad`` and ``out``):
``fastloss.jax.huber_loss(input, target, reduction="mean", delta=1.0)``
takes JAX (or NumPy) arrays and returns a JAX array, usable under
``jax.jit``, ``jax.grad``, ``jax.value_and_grad`` and ``jax.vmap``.

Behind each is a ``jax.custom_vjp`` whose primal and forward rule call the
fused CPU kernel through ``jax.pure_callback``.  The forward rule keeps the
gradients the kernel computed in the same pass, of exactly the operands
being differentiated (``input``, ``var`` of ``gaussian_nll_loss``, and the
target where fastloss gives its gradient); the backward rule multiplies
them by the cotangent.  There is no second pass, and a call that is not
differentiated computes no gradient.  Generated from fastloss's loss table:
a loss added to fastloss is here with no new code.

Arrays are float32 or float64 on the CPU (JAX's default float32, or
float64 with 64-bit mode on); labels are integers.  For float64, turn
64-bit mode on for the process (``jax.config.update("jax_enable_x64",
True)`` or ``JAX_ENABLE_X64=1``): the ``jax.enable_x64`` context manager
is thread-local, and where XLA runs the callback on another thread JAX
hands it the operands converted to float32, which fastloss.jax refuses
with a ``TypeError`` (inside a ``JaxRuntimeError``) rather than compute
in float32.  An input on
another device or of another dtype (bfloat16, float16) raises a
``TypeError``: use a JAX-native loss (``optax.losses``) there.  The loss's
options (``reduction``, ``delta``, ``ignore_index``, ...) are Python
values fixed when the function is traced.  Differentiating with respect
to an operand fastloss gives no gradient for (class labels, a weight, an
option passed as an array) raises instead of returning zeros; second
derivatives raise too.

Errors in the arguments are raised when the function is called (or
traced); an error in the data (a label out of range) is raised by the
kernel inside the callback, and JAX reports it as a ``JaxRuntimeError``
whose message ends with fastloss's.

``jax.vmap`` works: the callback runs once per batch element
(``vmap_method="sequential"``), so a batch of B small losses costs B
kernel calls.  A loss of the whole batch in one call (a ``reduction``
over all of it) is cheaper where that is what you want.

Examples
--------
>>> import numpy as np, jax, jax.numpy as jnp, fastloss.jax as flj
>>> x = jnp.array([0.5, -1.0, 2.0]); t = jnp.array([1.0, 0.0, 1.0])
>>> value, grad = jax.jit(jax.value_and_grad(flj.binary_cross_entropy_with_logits))(x, t)
>>> bool(jnp.allclose(grad, (jax.nn.sigmoid(x) - t) / 3))
True
"""
from __future__ import annotations

import functools
import inspect

import numpy as np

try:
    import jax
    import jax.numpy as jnp
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "fastloss.jax needs JAX: install the extra with  pip install \"fastloss[jax]\"  "
        f"(importing jax failed: {exc})"
    ) from exc

import fastloss as _fl
from fastloss import _chunks
from fastloss._validate import legacy_reduction
from fastloss import _adapt
from fastloss._adapt import grad_args as _grad_args, optional_grad_args as _optional_grad_args

__all__: list[str] = []

_PARAMS = ("n_threads", "reduction", "size_average", "reduce")
_FLOAT = (np.dtype(np.float32), np.dtype(np.float64))




def _is_array(v) -> bool:
    return isinstance(v, (jax.Array, np.ndarray, np.generic)) or hasattr(v, "aval")


def _on_cpu(a, name, op):
    """A concrete array must live on the CPU; inside jit, the default backend."""
    try:
        devices = a.devices()
    except Exception:  # a tracer: no placement yet
        platform = jax.default_backend()
    else:
        platform = next(iter(devices)).platform if devices else "cpu"
    if platform != "cpu":
        raise TypeError(
            f"fastloss.jax.{op}: {name} is on {platform}; fastloss runs on the CPU: move it with "
            f"jax.device_put(..., jax.devices('cpu')[0]), or use a JAX-native loss (optax.losses) there")


# ---------------------------------------------------------------- host side

def _broadcast_operand(a, name, x_shape, per_item):
    """An operand differentiated per element: broadcast to the input's shape
    (one copy), so that the kernel's gradient can be weighted by the
    cotangent before it is summed back."""
    s = a.shape
    if s == x_shape:
        return a
    k = per_item.get(name)
    if k is not None and len(x_shape) >= 2 and len(s) == len(x_shape) - 1:
        k %= len(x_shape)
        if k and s == x_shape[:k] + x_shape[k + 1:]:
            a = np.expand_dims(a, k)
    return np.ascontiguousarray(np.broadcast_to(a, x_shape))


def _host(fn, names, static, want, value_dtype, expand, *arrays):
    """The kernel call: (value,) or (value, *gradients of `want`)."""
    kw = dict(static)
    kw.update(zip(names, (np.asarray(a) for a in arrays)))
    x0 = kw[names[0]]
    if x0.dtype != value_dtype:
        raise TypeError(
            f"fastloss.jax.{fn.__name__}: the callback received {names[0]} as {x0.dtype}, traced as "
            f"{np.dtype(value_dtype)}: JAX's 64-bit mode is off in the thread that runs the callback "
            f"(jax.enable_x64 as a context manager is thread-local, and XLA may run a callback on "
            f"another thread); enable it for the process: jax.config.update('jax_enable_x64', True) "
            f"or JAX_ENABLE_X64=1")
    x_shape = x0.shape
    per_item = getattr(fn, "_per_item_args", {})
    for n in expand:
        kw[n] = _broadcast_operand(kw[n], n, x_shape, per_item)
    if not want:
        return np.asarray(fn(**kw), dtype=value_dtype)
    res = fn(**kw, return_grad=want)
    return (np.asarray(res[0], dtype=value_dtype),) + tuple(np.asarray(g) for g in res[1:])


def _value_shape(fn, names, static, arrays, op):
    """The value's shape and the axis of the input it lacks (or None): ()
    for a reduced value; for reduction="none", from the driver's plan, or
    else from a call on zeros of the operands' shapes.  Either way the
    arguments are checked now, when the function is called or traced."""
    reduced = static.get("reduction", _default(fn, "reduction")) != "none"
    kw = dict(static)
    if kw.get("check"):
        kw["check"] = False  # check= looks at the data: the callback's call does, not this one on zeros
    kw.update({n: np.zeros(a.shape, a.dtype) for n, a in zip(names, arrays)})
    req = _chunks.Request("plan")
    shape = tuple(arrays[0].shape)
    try:
        with _chunks.active(req):
            out = fn(**kw)  # a driver without a plan runs on the zeros
    except _chunks.Planned:
        plan = req.plan
        if reduced:
            return (), None
        if plan.op == op:
            d = plan.value_drop
            return (shape, None) if d is None else (shape[:d] + shape[d + 1:], d)
        out = _call(fn, kw, op)  # a loss built on another loss's call path: its own result
    except (TypeError, ValueError) as exc:
        if reduced and (getattr(fn, "_unsplittable", None) or getattr(fn, "_chunk_path", None)
                        or getattr(fn, "_terms", None)):
            # a driver without a plan (docs/conventions.md) ran its kernel on the zeros, whose
            # values it may refuse (an in-batch loss's labels): the real call checks them
            return (), None
        raise type(exc)(f"fastloss.jax.{op}: {exc}") from None
    if reduced:
        return (), None
    vs = np.shape(out[0] if isinstance(out, tuple) else out)
    return vs, (_lacking_axes(fn, static, shape, vs) if vs != shape else None)


def _lacking_axes(fn, static, shape, vs):
    """The axes of the gradient a reduction="none" value lacks: the loss's
    ``_class_axis`` (an axis, a tuple of axes, or a function of the
    options: docs/conventions.md) where it fits the shapes, else the one
    axis whose removal gives the value's shape (None: the value indexes
    the gradient's leading axes)."""
    ca = getattr(fn, "_class_axis", 1)
    if callable(ca):
        ca = ca(static)
    if ca is not None and shape:
        axes = tuple(sorted(a % len(shape) for a in (ca if isinstance(ca, tuple) else (ca,))))
        if tuple(s for i, s in enumerate(shape) if i not in axes) == vs:
            return axes[0] if len(axes) == 1 else axes
    return next((i for i in range(len(shape)) if shape[:i] + shape[i + 1:] == vs), None)


def _call(fn, kw, op):
    try:
        return fn(**kw)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"fastloss.jax.{op}: {exc}") from None


def _default(fn, name):
    p = inspect.signature(fn).parameters.get(name)
    return None if p is None else p.default


# ---------------------------------------------------------------- the custom_vjp

@jax.custom_jvp
def _first_order(a):
    """Identity; differentiating through it (a second derivative of a
    fastloss loss) raises a clear error instead of JAX's callback message."""
    return a


@_first_order.defjvp
def _first_order_jvp(primals, tangents):
    raise TypeError(
        "fastloss.jax: second derivatives are not supported (the fused kernels give first derivatives); "
        "use a JAX-native loss (optax.losses) for Hessians and higher derivatives")


def _build(fn, op, names, static, arrays):
    """A custom_vjp function of the operands for this call's options."""
    x = arrays[0]
    dt = np.dtype(x.dtype)
    vshape, drop = _value_shape(fn, names, static, arrays, op)
    value_sds = jax.ShapeDtypeStruct(vshape, dt)
    diff = set(_grad_args(fn)) | set(_optional_grad_args(fn))
    x_shape = tuple(x.shape)
    kinds = [np.dtype(a.dtype) for a in arrays]

    host_value = functools.partial(_host, fn, names, static, (), dt, ())
    host_grads = {}  # (want, expand) -> the callback: the same objects at every call, so that JAX's
    #                  caches of compiled callbacks hit in eager mode too

    def primal(*ops):
        return jax.pure_callback(host_value, value_sds, *ops, vmap_method="sequential")

    f = jax.custom_vjp(primal)

    def fwd(*prims):
        vals = [_first_order(p.value) for p in prims]
        want = []
        for n, p, k in zip(names, prims, kinds):
            if not p.perturbed:
                continue
            if n not in diff or k.kind != "f":
                raise TypeError(
                    f"fastloss.jax.{op}: cannot differentiate with respect to {n}; fastloss gives gradients "
                    f"with respect to {', '.join(a for a in names if a in diff)} only")
            want.append(n)
        want = tuple(want)
        if not want:
            return primal(*vals), (None,) * len(names)
        # an operand broadcast against the input (a var per row, a target of shape (N, 1)):
        # fastloss sums its gradient back to its shape, which a scalar cotangent may scale;
        # a cotangent per element ("none") must weight it first, so it is broadcast
        expand = tuple(n for n in want if n != names[0] and tuple(vals[names.index(n)].shape) != x_shape) \
            if vshape != () else ()
        gshape = {n: (x_shape if n in expand else tuple(vals[names.index(n)].shape)) for n in want}
        sds = (value_sds,) + tuple(jax.ShapeDtypeStruct(gshape[n], dt) for n in want)
        host = host_grads.get((want, expand))
        if host is None:
            host = host_grads[(want, expand)] = functools.partial(_host, fn, names, static, want, dt, expand)
        res = jax.pure_callback(host, sds, *vals, vmap_method="sequential")
        got = dict(zip(want, res[1:]))
        return res[0], tuple(got.get(n) for n in names)  # one residual per operand (None: not wanted)

    def bwd(grads, ct):
        out = []
        for i, (n, g) in enumerate(zip(names, grads)):
            if g is None:
                out.append(None)
                continue
            c = ct
            if 0 < jnp.ndim(c) < g.ndim:  # reduction="none" with one value per row, box or image
                c = jnp.expand_dims(c, drop) if drop is not None else c.reshape(c.shape + (1,) * (g.ndim - c.ndim))
            r = g * c.astype(g.dtype)
            if r.shape != shapes[i]:
                r = _sum_to(r, shapes[i], n, fn)
            out.append(r.astype(kinds[i]))
        return tuple(out)

    shapes = [tuple(a.shape) for a in arrays]
    f.defvjp(fwd, bwd, symbolic_zeros=True)
    return f


def _sum_to(r, shape, name, fn):
    """Sum a per-element gradient back to an operand's own shape (NumPy's
    broadcasting, or a per-item operand that lacks one axis)."""
    x_shape = r.shape
    per_item = getattr(fn, "_per_item_args", {})
    k = per_item.get(name)
    if k is not None and len(x_shape) >= 2 and len(shape) == len(x_shape) - 1:
        k %= len(x_shape)
        if k and shape == x_shape[:k] + x_shape[k + 1:]:
            return r.sum(axis=k)
    lead = r.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and r.shape[lead + i] != 1)
    return r.sum(axis=axes, keepdims=True).reshape(shape) if axes else r.reshape(shape)


# ---------------------------------------------------------------- generation

_BUILT: dict = {}  # the custom_vjp of a call's options and shapes, for the calls that repeat


def _key(fn, names, static, arrays):
    """A hashable key of a call's options, operand names, shapes and dtypes
    (None when an option is not hashable: that call is built afresh)."""
    try:
        key = (fn, tuple(names), tuple(sorted((k, type(v), v) for k, v in static.items())),
               tuple((tuple(a.shape), str(a.dtype)) for a in arrays))
        hash(key)
    except TypeError:
        return None
    return key

def _make_function(fn):
    op = fn.__name__
    sig = inspect.signature(fn)
    new_sig = sig.replace(parameters=[p for p in sig.parameters.values() if p.name not in ("return_grad", "out")])
    first = _grad_args(fn)[0]

    def wrapper(*args, **kwargs):
        for k in ("return_grad", "out"):
            if k in kwargs:
                raise TypeError(f"fastloss.jax.{op}: {k}= is not an argument of the JAX form (use jax.grad)")
        try:
            bound = new_sig.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"fastloss.jax.{op}: {exc}") from None
        given = dict(bound.arguments)
        if "size_average" in given or "reduce" in given:
            sa, rd = given.pop("size_average", None), given.pop("reduce", None)
            if sa is not None or rd is not None:
                given["reduction"] = legacy_reduction(sa, rd, given.get("reduction", "mean"), op)
        x = given[first]
        if not _is_array(x):
            x = given[first] = jnp.asarray(x)
        if np.dtype(x.dtype) not in _FLOAT:
            raise TypeError(
                f"fastloss.jax.{op}: {first} must be float32 or float64, got {x.dtype}; use a JAX-native loss "
                f"(optax.losses) for other dtypes")
        names = [first] + [k for k, v in given.items() if k != first and k not in _PARAMS and _is_array(v)]
        for n in names:
            _on_cpu(given[n], n, op)
        static = {k: v for k, v in given.items() if k not in names}
        arrays = [given[n] for n in names]
        key = _key(fn, names, static, arrays)
        f = _BUILT.get(key) if key is not None else None
        if f is None:
            f = _build(fn, op, tuple(names), static, arrays)
            if key is not None:
                if len(_BUILT) >= 256:
                    _BUILT.pop(next(iter(_BUILT)))
                _BUILT[key] = f
        return f(*arrays)

    wrapper.__name__ = wrapper.__qualname__ = op
    wrapper.__module__ = __name__
    wrapper.__signature__ = new_sig
    grads = ", ".join(_grad_args(fn) + _optional_grad_args(fn))
    wrapper.__doc__ = (
        f"JAX form of :func:`fastloss.{op}`: arrays in, a JAX array out, under jit, grad and vmap;\n"
        f"differentiable with respect to {grads}.\n\n"
        f"Signature as :func:`fastloss.{op}` without ``return_grad`` and ``out``.\n"
    )
    return wrapper


_adapt.populate(globals(), __all__, _make_function)
