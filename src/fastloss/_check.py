"""``check=True`` on every loss call: the checks of :func:`fastloss.diagnose`
run before the kernel, each finding warned as a :class:`fastloss.LossWarning`.

The keyword is added to every public loss function and to the ``__call__``,
``value_and_grad`` and ``grad_hess`` methods of every loss class, from the
metadata of ``fastloss._diagnose.EXPECT`` (which losses there are), at
import, by :func:`install` -- no loss carries code for it.

It must cost nothing when False, so it is not a wrapper (a Python wrapper
adds a call and the re-packing of the arguments, about 0.3-0.6 us on a
3-5 us call).  Instead the function's own definition is compiled again from
its source with one more keyword-only parameter, ``check=False``, and one
more first statement, ``if check: <run the checks>``: the default call pays
one test of a local variable.  The new function keeps the original's
defaults, docstring, attributes (``_grad_args``, ...), file and line
numbers; a method's ``super()`` keeps working (its ``__class__`` cell is
passed in); the check function is imported inside the ``if``, so the
default path has no closure or global lookup more than the original.  A function this cannot rewrite (no source, ``**kwargs``, a
parameter already named ``check``, a private name that a class body would
mangle) gets a plain wrapper instead, and ``rewritten`` records which is
which (a test asserts that every public loss got the rewrite).

With ``check=True`` the call costs one summary pass over input and one over
target (label counts for integer labels) on top of the loss.
"""
from __future__ import annotations

import ast
import functools
import inspect
import sys
import textwrap
import warnings

from ._diagnose import EXPECT, LossWarning, figures, resolve, run_checks

METHODS = ("__call__", "value_and_grad", "grad_hess")
_PARAMS = ("weight", "ignore_index", "log_target", "log_input", "pos_weight")

#: qualified name -> "rewrite" or "wrapper", for every callable given check=
rewritten: dict = {}


def check_call(op, input, target, scope) -> None:
    """Run diagnose's checks for a call of ``op`` (the function's name, or a
    loss object as ``scope["self"]``) and warn each finding at the caller's
    line."""
    obj = scope.get("self")
    if obj is not None:
        name, e, p = resolve(obj)
    else:
        name, e, p = op, EXPECT[op], {}
    for k in _PARAMS:
        if scope.get(k) is not None:
            p[k] = scope[k]
    f = figures(name, e, input, target, p, n_threads=scope.get("n_threads") or getattr(obj, "n_threads", None))
    for finding in run_checks(name, e, f, p):
        warnings.warn(LossWarning(finding), stacklevel=3)


def _mangled_names(node) -> bool:
    for n in ast.walk(node):
        name = n.attr if isinstance(n, ast.Attribute) else n.id if isinstance(n, ast.Name) else None
        if name and name.startswith("__") and not name.endswith("__"):
            return True
    return False


def _rewrite(fn, op):
    """``fn`` compiled again with ``*, check=False`` and ``if check: ...`` first."""
    src = textwrap.dedent(inspect.getsource(fn))
    tree = ast.parse(src)
    fdef = tree.body[0]
    if not isinstance(fdef, ast.FunctionDef) or fdef.name != fn.__name__:
        raise ValueError("not a plain def")
    a = fdef.args
    if a.kwarg is not None or any(p.arg == "check" for p in a.posonlyargs + a.args + a.kwonlyargs):
        raise ValueError("has **kwargs or a check parameter")
    if "." in fn.__qualname__ and _mangled_names(fdef):
        raise ValueError("uses a name a class body would mangle")
    fdef.decorator_list = []
    a.kwonlyargs.append(ast.arg(arg="check"))
    a.kw_defaults.append(ast.Constant(value=False))
    stmt = ast.parse(f"if check:\n    from fastloss._check import check_call as __fl_check_call\n"
                     f"    __fl_check_call({op!r}, input, target, locals())").body[0]
    body = fdef.body
    at = 1 if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
        and isinstance(body[0].value.value, str) else 0
    ast.copy_location(stmt, body[at] if at < len(body) else fdef)
    for n in ast.walk(stmt):
        ast.copy_location(n, stmt)
    body.insert(at, stmt)
    # compiled in the module's namespace; a function with free variables (a
    # method's __class__ cell, for super()) inside a factory that supplies them
    free = fn.__code__.co_freevars
    if free:
        factory = ast.FunctionDef(
            name="__fl_factory",
            args=ast.arguments(posonlyargs=[], args=[ast.arg(arg=v) for v in free], kwonlyargs=[], kw_defaults=[],
                               defaults=[]),
            body=[fdef, ast.Return(value=ast.Name(id=fdef.name, ctx=ast.Load()))], decorator_list=[], returns=None,
            **({"type_params": []} if sys.version_info >= (3, 12) else {}))
        for n in (factory, *ast.walk(factory.args), factory.body[1], factory.body[1].value):
            ast.copy_location(n, fdef)
        top = factory
    else:
        top = fdef
    module = ast.Module(body=[top], type_ignores=[])
    ast.fix_missing_locations(module)
    ast.increment_lineno(module, fn.__code__.co_firstlineno - 1)
    code = compile(module, inspect.getsourcefile(fn) or "<fastloss>", "exec")
    ns: dict = {}
    exec(code, fn.__globals__, ns)      # defines the function in ns, not in the module
    if free:
        new = ns["__fl_factory"](*[c.cell_contents for c in fn.__closure__])
    else:
        new = ns[fdef.name]
    new.__doc__ = fn.__doc__
    new.__dict__.update(fn.__dict__)
    new.__qualname__ = fn.__qualname__
    new.__module__ = fn.__module__
    return new


def _wrapper(fn, op):
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def with_check(*args, check=False, **kwargs):
        if check:
            b = sig.bind(*args, **kwargs)
            b.apply_defaults()
            sys.modules[__name__].check_call(op, b.arguments["input"], b.arguments["target"], dict(b.arguments))
        return fn(*args, **kwargs)

    params = list(sig.parameters.values())
    at = len(params) - (params and params[-1].kind is inspect.Parameter.VAR_KEYWORD)
    params.insert(at, inspect.Parameter("check", inspect.Parameter.KEYWORD_ONLY, default=False))
    with_check.__signature__ = sig.replace(parameters=params)
    return with_check


def with_check(fn, op):
    """``fn`` with a keyword-only ``check=False`` (see the module's docstring)."""
    try:
        new = _rewrite(fn, op)
        rewritten[fn.__qualname__] = "rewrite"
    except (OSError, TypeError, ValueError, SyntaxError):
        new = _wrapper(fn, op)
        rewritten[fn.__qualname__] = "wrapper"
    return new


def install(namespace: dict) -> None:
    """Give every public loss function and loss class in ``namespace`` (the
    fastloss package's) a ``check=`` keyword; the functions are replaced in
    their own modules too."""
    done = set()
    for name, e in EXPECT.items():
        fn = namespace.get(name)
        if fn is not None and "check" not in inspect.signature(fn).parameters:
            new = with_check(fn, name)
            namespace[name] = new
            mod = sys.modules.get(fn.__module__)
            if mod is not None and getattr(mod, name, None) is fn:
                setattr(mod, name, new)
        cls = namespace.get(e.cls)
        if cls is None:
            continue
        for klass in cls.__mro__:
            if klass is object or not klass.__module__.startswith("fastloss") or klass in done:
                continue
            done.add(klass)
            for m in METHODS:
                meth = klass.__dict__.get(m)
                if inspect.isfunction(meth) and "check" not in inspect.signature(meth).parameters:
                    setattr(klass, m, with_check(meth, name))
