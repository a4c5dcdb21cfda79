"""What the adapters read of a loss.

``fastloss.torch``, ``fastloss.dask`` and ``fastloss.jax`` generate their
functions (and torch its modules) from the public losses, with no per-loss
code: which operands a loss differentiates (``_grad_args``, and the
gradients it gives only when asked, ``_optional_grad_args``) and which
public names are losses.  One definition here, so the three adapters
agree on both.
"""
from __future__ import annotations

import inspect


def grad_args(obj) -> tuple:
    """The operands whose gradients ``return_grad=True`` returns, in order."""
    return getattr(obj, "_grad_args", ("input",))


def optional_grad_args(obj) -> tuple:
    """Gradients the loss computes only when asked (the target's)."""
    return getattr(obj, "_optional_grad_args", ())


def is_loss_class(obj) -> bool:
    """A loss class: it has value_and_grad (grad_hess only where a diagonal
    Hessian is defined: not for the set-overlap losses)."""
    return inspect.isclass(obj) and hasattr(obj, "value_and_grad")


def is_loss_function(name: str, obj) -> bool:
    """A public loss function: it takes return_grad= and its differentiated
    operands (``input``, or the names in ``_grad_args``)."""
    if not inspect.isfunction(obj) or name.startswith("_"):
        return False
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False
    return "return_grad" in params and ("input" in params or all(a in params for a in grad_args(obj)))


def populate(namespace: dict, names: list, make_function, make_class=None) -> None:
    """Add an adapter's form of every public loss of fastloss to the
    module ``namespace`` and its ``names`` (``__all__``): functions through
    ``make_function``, classes through ``make_class`` when given."""
    import fastloss
    for name in fastloss.__all__:
        obj = getattr(fastloss, name, None)
        if make_class is not None and is_loss_class(obj):
            namespace[name] = make_class(obj)
            names.append(name)
        elif is_loss_function(name, obj):
            namespace[name] = make_function(obj)
            names.append(name)
