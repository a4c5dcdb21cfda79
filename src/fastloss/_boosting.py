"""The library-independent core of :mod:`fastloss.xgboost` and
:mod:`fastloss.lightgbm`.

Nothing here knows a particular loss or a particular boosting library.  A
:class:`LossAdapter` turns any fastloss loss object (one with a
``grad_hess(input, target, weight=None)`` method) into the two things a
gradient-boosting library asks of a custom objective:

* ``grad_hess(preds, labels, weight, n, order)``: the gradient and Hessian
  of the *summed* loss with respect to the raw margin, in the layout the
  library gave the margin (``(n,)``, or ``(n, C)`` for several outputs);
* ``mean_value(...)``: the loss averaged per sample (by the summed sample
  weights when there are weights), for the evaluation metric.

The rules, once for every loss:

Loss resolution
    An instance is used as it is (rebuilt with ``reduction="sum"`` if it has
    another reduction, from its constructor parameters, which fastloss
    classes keep as attributes of the same names); a class is constructed
    with ``**params``; a string or a function names a class: ``"HuberLoss"``,
    ``"huber_loss"``, ``"huber"`` and ``fastloss.huber_loss`` are one loss.
    The function-to-class table is read from the classes' docstrings ("The
    object form of :func:`fastloss.NAME`") and from the names themselves,
    so a loss added later resolves with no table to edit.

Targets
    Labels of the margin's shape (or its size) are passed as they are.  A
    1-D label vector against an ``(n, C)`` margin holds class indices: a
    loss that takes class labels (a row loss such as ``CrossEntropyLoss``;
    see :func:`target_kind`) gets them as int64, any other loss gets them
    one-hot (one-versus-rest).

Sample weights
    ``w_i`` multiplies sample ``i``'s gradient and Hessian (all its columns).
    Pointwise losses without a weight of their own get ``w`` fused into the
    kernel call; otherwise (a row loss, whose ``weight`` means per-class
    weights, or a loss built with its own ``weight``) the rows are scaled
    after the call.

Hessian floor
    Newton boosting divides the summed gradient by the summed Hessian, so
    the Hessian must be positive.  Each sample's Hessian is raised to at
    least ``min_hessian`` (times its weight).  NaN propagates.
"""
from __future__ import annotations

import copy
import inspect
import math
import re
from typing import Optional

import numpy as np

DEFAULT_MIN_HESSIAN = 1e-6

_OBJECT_FORM = re.compile(r"object form of :func:`fastloss\.(\w+)`")


# ------------------------------------------------------------------ loss resolution

def _norm(name: str) -> str:
    k = name.lower().replace("_", "")
    return k[:-4] if k.endswith("loss") and len(k) > 4 else k


def _loss_classes() -> dict:
    """{normalized name: class} for every fastloss class with ``grad_hess``."""
    import fastloss as fl

    table, clash = {}, set()
    for name in fl.__all__:
        obj = getattr(fl, name, None)
        if not (isinstance(obj, type) and callable(getattr(obj, "grad_hess", None))):
            continue
        keys = {_norm(name)}
        m = _OBJECT_FORM.search(obj.__doc__ or "")
        if m:
            keys.add(_norm(m.group(1)))
        for k in keys:
            if k in table and table[k] is not obj:
                clash.add(k)
            table[k] = obj
    for k in clash:  # an ambiguous short name resolves to nothing
        del table[k]
    return table


def resolve_class(name, op: str) -> type:
    """The fastloss loss class a name (``"HuberLoss"``, ``"huber_loss"``,
    ``"huber"``) or a fastloss function (``fl.huber_loss``) stands for."""
    key = name if isinstance(name, str) else getattr(name, "__name__", None)
    if not isinstance(key, str):
        raise TypeError(f"{op}: expected a fastloss loss object, class or name, got {name!r}")
    table = _loss_classes()
    cls = table.get(_norm(key))
    if cls is None:
        known = sorted({c.__name__ for c in table.values()})
        raise ValueError(f"{op}: unknown fastloss loss {key!r}; known losses: {', '.join(known)}")
    return cls


def with_reduction(loss, reduction: str):
    """``loss`` itself if it already has ``reduction``, else a copy that has it.

    The copy is built from the constructor's parameters, read back from the
    attributes of the same names; a loss without them is shallow-copied and
    its ``reduction`` attribute replaced."""
    if getattr(loss, "reduction", None) == reduction:
        return loss
    cls = type(loss)
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):  # pragma: no cover - builtin constructors
        params = None
    if params is not None:
        kw, ok = {}, True
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name == "reduction":
                continue
            if hasattr(loss, p.name):
                kw[p.name] = getattr(loss, p.name)
            elif p.default is p.empty:
                ok = False
        if ok and "reduction" in {p.name for p in params}:
            try:
                return cls(**kw, reduction=reduction)
            except (TypeError, ValueError):
                pass
    c = copy.copy(loss)
    c.reduction = reduction
    return c


def resolve_loss(loss, params: dict, op: str):
    """A fastloss loss object with ``reduction="sum"`` from an instance, a
    class (constructed with ``params``), a name or a fastloss function."""
    if "reduction" in params:
        raise TypeError(f"{op}: the objective always uses the summed loss; do not pass reduction=")
    if isinstance(loss, type) or isinstance(loss, str) or (
            callable(loss) and not hasattr(loss, "grad_hess")):
        cls = loss if isinstance(loss, type) else resolve_class(loss, op)
        obj = cls(**params, reduction="sum")
    else:
        if params:
            raise TypeError(f"{op}: loss parameters ({', '.join(params)}) go with a class or a name, "
                            f"not with a loss object ({loss!r})")
        if not callable(getattr(loss, "grad_hess", None)):
            raise TypeError(f"{op}: {loss!r} has no grad_hess method; it is not a fastloss loss")
        obj = with_reduction(loss, "sum")
    gh = getattr(obj, "grad_hess", None)
    if not callable(gh):
        raise TypeError(f"{op}: {obj!r} has no grad_hess method; it is not a fastloss loss")
    extra = [p.name for p in list(inspect.signature(gh).parameters.values())[2:]
             if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if extra:
        raise TypeError(f"{op}: {type(obj).__name__}.grad_hess needs {', '.join(extra)} besides the "
                        f"margin and the labels; it cannot be a boosting objective")
    return obj


def target_kind(loss) -> str:
    """``"labels"`` if a 1-D label vector against an (n, C) margin should be
    passed to ``loss`` as int64 class indices, ``"values"`` if it should be
    one-hot encoded.

    A loss may say so itself with a class attribute ``_target_kind``;
    otherwise every row loss (``fastloss._rows_api._RowLoss``) takes class
    labels and every other loss targets of the margin's shape."""
    kind = getattr(loss, "_target_kind", None)
    if kind is not None:
        return kind
    from ._rows_api import _RowLoss

    return "labels" if isinstance(loss, _RowLoss) else "values"


def check_min_hessian(v, op: str) -> float:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"{op}: min_hessian must be a real number, got {v!r}")
    v = float(v)
    if not (v >= 0.0 and math.isfinite(v)):
        raise ValueError(f"{op}: min_hessian must be finite and >= 0, got {v}")
    return v


# ------------------------------------------------------------------ layouts

def as_margin(preds, n: Optional[int], order: str):
    """``(margin, flat)``: the margin as (n,) or (n, C); ``flat`` says that it
    came flattened (size n*C, as XGBoost < 2.1 and LightGBM < 4 passed
    several outputs) and the gradient must go back flattened in ``order``."""
    m = np.asarray(preds)
    if m.ndim == 1 and n and m.size != n and m.size % n == 0:
        return m.reshape((n, m.size // n), order=order), True
    return m, False


def class_labels(y: np.ndarray, n_classes: int, op: str, check_range: bool) -> np.ndarray:
    lab = y.astype(np.int64)
    if not np.array_equal(lab, y):
        raise ValueError(f"{op}: labels for {n_classes} classes must be integer class indices, "
                         f"got {y[lab != y][:3]}")
    if check_range and lab.size and (lab.min() < 0 or lab.max() >= n_classes):
        bad = int(np.flatnonzero((lab < 0) | (lab >= n_classes))[0])
        raise ValueError(f"{op}: label {int(lab[bad])} of sample {bad} is out of range for "
                         f"{n_classes} classes")
    return lab


def as_target(labels, m: np.ndarray, kind: str, order: str, op: str) -> np.ndarray:
    """The labels as the loss's target for margin ``m``."""
    y = np.asarray(labels)
    if y.shape == m.shape:
        return y
    if m.ndim == 2 and y.ndim == 1 and y.size == m.shape[0] and m.shape[1] > 1:
        n, C = m.shape
        if kind == "labels":
            return class_labels(y, C, op, check_range=False)  # the loss checks the range
        lab = class_labels(y, C, op, check_range=True)
        t = np.zeros(m.shape, dtype=m.dtype if m.dtype.kind == "f" else np.float64)
        t[np.arange(n), lab] = 1
        return t
    if y.size == m.size:
        return y.reshape(m.shape, order=order)
    raise ValueError(f"{op}: labels of shape {y.shape} do not fit predictions of shape {m.shape}")


def as_weight(weight, n: int, op: str) -> Optional[np.ndarray]:
    """Sample weights as a 1-D array of n, or None (None or empty: no weights)."""
    if weight is None:
        return None
    w = np.asarray(weight)
    if w.size == 0:
        return None
    w = w.reshape(-1)
    if w.size != n:
        raise ValueError(f"{op}: {w.size} sample weights for {n} samples")
    return w


def _per_sample(w: np.ndarray, m: np.ndarray) -> np.ndarray:
    """w shaped to broadcast against the margin's samples (axis 0)."""
    return w if m.ndim <= 1 else w.reshape((-1,) + (1,) * (m.ndim - 1))


# ------------------------------------------------------------------ the adapter

class LossAdapter:
    """A fastloss loss as a boosting objective and metric (library-independent).

    Parameters
    ----------
    loss : fastloss loss object, class, name or function
    params : dict
        Constructor parameters, with a class or a name.
    min_hessian : float >= 0
        Floor of each sample's Hessian (times its weight).
    op : str
        Name used in error messages.
    """

    def __init__(self, loss, params: dict, min_hessian: float = DEFAULT_MIN_HESSIAN, op: str = "fastloss"):
        self.op = op
        self.loss = resolve_loss(loss, dict(params), op)
        self.kind = target_kind(self.loss)
        self.min_hessian = check_min_hessian(min_hessian, op)
        # weights go into the kernel call for losses whose ``weight`` is per
        # element and not already set by the user
        self.fuse_weight = self.kind == "values" and getattr(self.loss, "weight", None) is None
        self._none = None

    @property
    def name(self) -> str:
        return type(self.loss).__name__

    def _inputs(self, preds, labels, weight, n, order):
        m, flat = as_margin(preds, n, order)
        t = as_target(labels, m, self.kind, order, self.op)
        w = as_weight(weight, m.shape[0] if m.ndim else 1, self.op)
        return m, flat, t, w

    def grad_hess(self, preds, labels, weight=None, n: Optional[int] = None, order: str = "C"):
        """Gradient and Hessian of the summed (sample-weighted) loss with
        respect to ``preds``, in ``preds``'s layout."""
        m, flat, t, w = self._inputs(preds, labels, weight, n, order)
        floor = self.min_hessian
        if w is not None and self.fuse_weight:
            wb = _per_sample(w, m)
            g, h = self.loss.grad_hess(m, t, weight=wb)
            if floor > 0:
                np.maximum(h, np.multiply(wb, floor, dtype=h.dtype), out=h)
        else:
            g, h = self.loss.grad_hess(m, t)
            if floor > 0:
                np.maximum(h, floor, out=h)
            if w is not None:
                wb = _per_sample(w, m)
                np.multiply(g, wb, out=g, casting="unsafe")
                np.multiply(h, wb, out=h, casting="unsafe")
        if flat:
            return g.ravel(order=order), h.ravel(order=order)
        return g, h

    def mean_value(self, preds, labels, weight=None, n: Optional[int] = None, order: str = "C") -> float:
        """The summed loss divided by the number of samples, or, with sample
        weights, ``sum_i w_i L_i / sum_i w_i`` (``L_i``: sample i's loss,
        summed over its outputs)."""
        m, _, t, w = self._inputs(preds, labels, weight, n, order)
        n_samples = m.shape[0] if m.ndim else 1
        if w is None:
            total, denom = float(self.loss(m, t)), float(n_samples)
        else:
            denom = float(np.sum(w, dtype=np.float64))
            if self.fuse_weight:
                total = float(self.loss(m, t, weight=_per_sample(w, m)))
            else:
                if self._none is None:
                    self._none = with_reduction(self.loss, "none")
                per = np.asarray(self._none(m, t), dtype=np.float64)
                total = float(np.sum(per * _per_sample(w, per)))
        if denom == 0.0:
            return float("nan")
        return total / denom
