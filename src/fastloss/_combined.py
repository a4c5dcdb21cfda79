"""Weighted sums of losses with one gradient buffer: ``CombinedLoss`` and
``combined_loss``.

Every term is a fastloss loss object of the same ``(input, target)``.  The
gradient of the sum is written into **one** buffer of input's shape:

- a term on the pointwise driver (``_PointwiseLoss``: MSE, Huber, BCE with
  logits without pos_weight, the regression catalogue, ...) is run by that
  driver in its accumulate mode: the kernel adds ``w * grad`` (and
  ``w * hess``) into the buffer in its own pass, with no temporary;
- a segmentation overlap term (Dice, Jaccard, Tversky, BCE+Dice, CE+Dice)
  is run by the set-overlap driver in its accumulate mode: its gradient
  pass adds ``w * grad`` into the buffer (the weight rides in the
  gradient's coefficients);
- a binary cross-entropy with logits (mean, no weights) and a Dice, Jaccard
  or Tversky term from logits (binary or multilabel, no ignore_index, not
  per image) of the same input and target share **one** kernel: the
  overlap driver's fused BCE+Dice, which sums the BCE in its first pass and
  adds ``w_bce (p - t) / n`` in its gradient pass.  Likewise a
  ``CrossEntropyLoss`` (mean, no weight, no label smoothing) and a
  multiclass overlap term on integer labels share the fused CE+Dice kernel.
  The two terms' values are still reported separately;
- the other drivers (row-over-classes, row over features, sequence, the
  Lovasz losses) have no accumulate mode: the first such term writes its
  gradient straight into the buffer (``out=``, then scaled in place by its
  weight unless that is 1), and any further one gets a temporary that is
  added (one NumPy pass).  So the terms are run in that order: the
  non-accumulating ones first, then the others, each adding in.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from . import _check
from . import _validate as V
from ._alloc import empty
from ._config import _threads
from ._pointwise_api import GRAD, GRAD_HESS, VALUE, _PointwiseLoss
from ._pointwise_api import run as pw_run

__all__ = ["combined_loss", "CombinedLoss"]


def _terms(terms, op):
    if isinstance(terms, (str, bytes)) or not hasattr(terms, "__iter__"):
        raise TypeError(f"{op}: terms must be a list of (weight, loss) pairs, got {type(terms).__name__}")
    out = []
    for k, t in enumerate(terms):
        if not (isinstance(t, tuple) and len(t) == 2):
            raise TypeError(f"{op}: terms[{k}] must be a (weight, loss) pair, got {t!r}")
        w, loss = t
        wv = V.real(w, f"terms[{k}] weight", op)
        if not math.isfinite(wv):
            raise ValueError(f"{op}: terms[{k}] weight must be finite, got {w!r}")
        if isinstance(loss, type) or not hasattr(loss, "value_and_grad"):
            raise TypeError(f"{op}: terms[{k}] must hold a fastloss loss object (e.g. fl.MSELoss()), got {loss!r}")
        if getattr(loss, "reduction", "mean") == "none":
            raise ValueError(f"{op}: terms[{k}] has reduction='none'; a sum of losses needs scalar terms "
                             f"('mean' or 'sum')")
        out.append((wv, loss))
    if not out:
        raise ValueError(f"{op}: terms must hold at least one (weight, loss) pair")
    return out


def _fused(loss) -> bool:
    """A term the pointwise driver can run in its accumulate mode."""
    if not isinstance(loss, _PointwiseLoss):
        return False
    vg = type(loss).value_and_grad
    if vg is _PointwiseLoss.value_and_grad:
        return True
    return type(loss).__name__ == "BCEWithLogitsLoss" and getattr(loss, "pos_weight", None) is None


def _total(terms, vals):
    """sum w_k v_k in term order (a plain float sum: inf and NaN terms propagate)."""
    t = 0.0
    for (w, _), v in zip(terms, vals):
        t += w * v
    return t


_SEG_TVERSKY = {"dice_loss": (0.5, 0.5), "jaccard_loss": (1.0, 1.0)}
_SEG_NAMES = ("dice_loss", "jaccard_loss", "tversky_loss", "bce_dice_loss", "ce_dice_loss")


def _seg_kwargs(loss):
    """``fastloss._overlap_api.run_seg``'s arguments for a segmentation overlap
    term (Dice, Jaccard, Tversky, BCE+Dice, CE+Dice), or None for any other loss."""
    fn = getattr(type(loss), "_fn", None)  # the _SegLoss classes (_segmentation_losses) keep their function
    name = getattr(fn, "__name__", None)
    if name not in _SEG_NAMES or not hasattr(loss, "_opts"):
        return None
    o = loss._opts
    kw = dict(op=name, mode=o.get("mode", "multiclass"), smooth=o["smooth"], ignore_index=o["ignore_index"],
              eps=o["eps"], per_image=o["per_image"], weight=loss.weight, reduction=loss.reduction)
    if name in _SEG_TVERSKY or name == "tversky_loss":
        a, b = _SEG_TVERSKY.get(name, (o.get("alpha"), o.get("beta")))
        kw.update(classes=o["classes"], log_loss=o["log_loss"], from_logits=o["from_logits"], alpha=a, beta=b,
                  gamma=o.get("gamma", 1.0))
    elif name == "bce_dice_loss":
        kw.update(overlap_w=o["dice_weight"], ce_w=o["bce_weight"])
    elif name == "ce_dice_loss":
        kw.update(classes=o["classes"], overlap_w=o["dice_weight"], ce_w=o["ce_weight"])
    return kw


def _ce_kind(loss) -> Optional[str]:
    """"bce" or "ce" for a cross-entropy the fused overlap kernels compute exactly, else None."""
    name = type(loss).__name__
    if getattr(loss, "reduction", None) != "mean" or getattr(loss, "weight", None) is not None:
        return None
    if name == "BCEWithLogitsLoss" and isinstance(loss, _PointwiseLoss) and loss.pos_weight is None:
        return "bce"
    if name == "CrossEntropyLoss" and type(loss).__module__ == "fastloss._class_losses" \
            and loss.label_smoothing == 0.0:
        return "ce"
    return None


def _can_pair(kind, kw, x, target) -> bool:
    """Whether a cross-entropy of this kind and the overlap term kw can share the fused kernel on (x, target)."""
    if kw is None or "ce_w" in kw or not kw["from_logits"] or kw["ignore_index"] is not None or kw["per_image"]:
        return False
    if x.size == 0:  # the fused kernel's mean cross-entropy of no element is 0; PyTorch's (and the term's) is NaN
        return False
    shape = np.shape(target)
    if kind == "bce":
        return kw["mode"] in ("binary", "multilabel") and shape == x.shape
    dt = getattr(target, "dtype", None) if isinstance(target, np.ndarray) else np.asarray(target).dtype
    return (kw["mode"] == "multiclass" and x.ndim >= 2 and shape == x.shape[:1] + x.shape[2:]
            and dt is not None and dt.kind in "iu")


def _units(terms, x, target):
    """The calls to make: ("pair", i_ce, j_overlap, kw), ("seg", k, kw), ("pw", k) or ("other", k).
    A cross-entropy is paired with the first compatible overlap term not yet paired."""
    kws = [_seg_kwargs(l) for _, l in terms]
    paired = {}
    used = set()
    kinds = [_ce_kind(l) for _, l in terms] if any(kw is not None for kw in kws) else ()
    for i, kind in enumerate(kinds):
        if kind is None:
            continue
        for j, kw in enumerate(kws):
            if j not in used and j != i and _can_pair(kind, kw, x, target):
                paired[i] = j
                used.add(j)
                break
    units = []
    for k, (_, l) in enumerate(terms):
        if k in used:
            continue
        if k in paired:
            units.append(("pair", k, paired[k], kws[paired[k]]))
        elif kws[k] is not None:
            units.append(("seg", k, kws[k]))
        elif _fused(l):
            units.append(("pw", k))
        else:
            units.append(("other", k))
    return units


def _run_pair(terms, u, x, target, vals, g, written, n_threads):
    from ._overlap_api import run_seg

    _, i, j, kw = u
    (wi, li), (wj, lj) = terms[i], terms[j]
    tl = []
    nt = lj.n_threads if n_threads is None else n_threads
    run_seg(input=x, target=target, **kw, overlap_w=wj, ce_w=wi, return_grad=g is not None, out=g,
            n_threads=nt, terms=tl, accumulate=written)
    vals[j], vals[i] = tl


def _run(terms, input, target, mode, out, n_threads, op, term_values, check=False):
    nt = n_threads
    if nt is not None:
        _threads(nt, op)
    if check:   # each term's own checks, with its options
        _check.check_call("combined_loss", input, target, n_threads=nt, terms=terms)
    if mode == VALUE:
        x = V.as_input(input, "input", op)
        vals = [0.0] * len(terms)
        for u in _units(terms, x, target):
            if u[0] == "pair":
                _run_pair(terms, u, x, target, vals, None, False, n_threads)
            else:
                vals[u[1]] = terms[u[1]][1](x, target)
        value = _total(terms, vals)
        if term_values is not None:
            term_values[:] = vals
        return value
    x = V.as_input(input, "input", op)
    g_out, h_out = (out, None) if mode == GRAD else ((None, None) if out is None else out)
    g = empty(x.shape, x.dtype) if g_out is None else V.check_out(g_out, "out", op, x.dtype, x.shape)
    h = None
    if mode == GRAD_HESS:
        h = empty(x.shape, x.dtype) if h_out is None else V.check_out(h_out, "hess_out", op, x.dtype, x.shape)
    if g_out is not None or h_out is not None:
        V.check_no_overlap(g, "out", op, x, target if isinstance(target, np.ndarray) else None, h)
    units = _units(terms, x, target) if mode == GRAD else [("pw" if _fused(l) else "other", k)
                                                           for k, (_, l) in enumerate(terms)]
    units = [u for u in units if u[0] == "other"] + [u for u in units if u[0] != "other"]
    vals = [0.0] * len(terms)
    written = False
    for u in units:
        if u[0] == "pair":
            _run_pair(terms, u, x, target, vals, g, written, n_threads)
            written = True
            continue
        k = u[1]
        w, loss = terms[k]
        if u[0] == "seg":
            from ._overlap_api import run_seg

            vals[k], _ = run_seg(input=x, target=target, **u[2], return_grad=True, out=g,
                                 n_threads=loss.n_threads if n_threads is None else n_threads,
                                 accumulate=written, gscale=w)
        elif u[0] == "pw":
            res = pw_run(loss._spec, x, target, getattr(loss, "weight", None), loss.reduction, mode, loss._params,
                         loss.n_threads if n_threads is None else n_threads, out=g, hess_out=h, scale=w,
                         accumulate=written)
            vals[k] = res[0] / w if mode == GRAD and w else (loss(x, target) if mode == GRAD_HESS or not w
                                                            else res[0])
        elif mode == GRAD:
            if not written:
                vals[k], _ = loss.value_and_grad(x, target, out=g)
                if w != 1.0:
                    g *= g.dtype.type(w)
            else:
                vals[k], t = loss.value_and_grad(x, target)
                t *= t.dtype.type(w)
                g += t
        else:
            if not hasattr(loss, "grad_hess"):
                raise ValueError(f"{op}: terms[{k}] ({type(loss).__name__}) has no grad_hess (no diagonal Hessian)")
            tg, th = loss.grad_hess(x, target)
            vals[k] = loss(x, target)
            if written:
                g += tg * w
                h += th * w
            else:
                np.multiply(tg, w, out=g)
                np.multiply(th, w, out=h)
        written = True
    if term_values is not None:
        term_values[:] = vals
    value = _total(terms, vals)
    return (value, g) if mode == GRAD else (g, h)


def combined_loss(input, target, terms, *, term_values=None, weight=None, reduction="mean", return_grad=False,
                  out=None, n_threads=None, check=False):
    """A weighted sum of losses of one ``(input, target)``: ``sum_k w_k L_k``.

    The value is ``sum_k w_k L_k(input, target)`` and the gradient
    ``sum_k w_k grad L_k``, accumulated in one buffer: pointwise and
    segmentation-overlap terms add into it from their own kernel pass (the
    drivers' accumulate modes); a binary cross-entropy with logits (or a
    cross-entropy) and a Dice-family term of the same input share one pass
    of the fused overlap kernel; terms of other drivers write the buffer
    (the first) or add a temporary (see ``fastloss._combined``).  Each term keeps its own options
    (reduction "mean" or "sum", weights given to its constructor).

    Parameters
    ----------
    input, target : array_like
        As every term takes them.
    terms : list of (float, loss object)
        E.g. ``[(1.0, fl.BCEWithLogitsLoss()), (0.5, fl.DiceLoss("binary"))]``.
    term_values : list, optional
        Receives the terms' values (unweighted), in the order of terms.
    weight : None
        Reserved (per-element weights belong to each term's constructor); must be None.
    reduction : {"mean"}
        Each term's own reduction applies; only "mean" (the default) is accepted here.
    return_grad : bool
        Also return the gradient with respect to input.
    out : ndarray, optional
        The gradient's buffer.
    n_threads : int, optional
        For every term (default: each term's own).
    check : bool
        Run :func:`fastloss.diagnose`'s checks on the operands first and warn
        each finding as a :class:`fastloss.LossWarning` (the default False
        costs one test).

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> x, t = np.array([0.5, -1.0]), np.array([1.0, 0.0])
    >>> vals = []
    >>> value, grad = fl.combined_loss(x, t, [(1.0, fl.MSELoss()), (2.0, fl.L1Loss())], term_values=vals,
    ...                                return_grad=True)
    >>> value, vals, grad
    (2.125, [0.625, 0.75], array([-1.5, -2. ]))
    """
    op = "combined_loss"
    ts = _terms(terms, op)
    if weight is not None:
        raise ValueError(f"{op}: weight must be None (give per-element weights to each term's constructor), "
                         f"got {type(weight).__name__}")
    V.check_reduction(reduction, op, ("mean",))
    if term_values is not None and not isinstance(term_values, list):
        raise TypeError(f"{op}: term_values must be None or a list to fill, got {type(term_values).__name__}")
    if out is not None and not return_grad:
        raise ValueError(f"{op}: out= is the gradient's buffer; pass return_grad=True with it")
    return _run(ts, input, target, GRAD if return_grad else VALUE, out, n_threads, op, term_values, check=check)


combined_loss._class_axis = None
combined_loss._unsplittable = ("its value is one driver call per term, and a term (Dice, a trimmed mean) may "
                               "itself not be a sum of aligned blocks")


class CombinedLoss:
    """The object form of :func:`fastloss.combined_loss`: a weighted sum of fastloss losses, one gradient buffer.

    ``loss(input, target)`` gives ``sum_k w_k L_k``; ``value_and_grad``
    the value and the gradient (accumulated in one buffer); ``grad_hess``
    the gradient and diagonal Hessian when every term has ``grad_hess``.
    ``loss.values`` holds the terms' (unweighted) values of the last call,
    for logging.

    Parameters
    ----------
    terms : list of (float, loss object)
    reduction : {"mean"}
        Each term's own reduction applies; only "mean" is accepted here.
    n_threads : int, optional

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> loss = fl.CombinedLoss([(1.0, fl.BCEWithLogitsLoss()), (1.0, fl.DiceLoss("binary"))])
    >>> x, t = np.array([[2.0, -1.0, 0.5]]), np.array([[1.0, 0.0, 1.0]])
    >>> value, grad = loss.value_and_grad(x, t)
    >>> round(value, 12) == round(sum(loss.values), 12), grad.shape
    (True, (1, 3))
    """

    _class_axis = None
    _reductions = ("mean",)

    def __init__(self, terms, reduction="mean", *, n_threads: Optional[int] = None):
        op = "CombinedLoss"
        self.terms = _terms(terms, op)
        self.reduction = V.check_reduction(reduction, op, ("mean",))
        if n_threads is not None:
            _threads(n_threads, op)
        self.n_threads = n_threads
        self.values: list = []

    def __call__(self, input, target, *, check=False):
        return _run(self.terms, input, target, VALUE, None, self.n_threads, "CombinedLoss", self.values, check=check)

    def value_and_grad(self, input, target, out=None, *, check=False):
        return _run(self.terms, input, target, GRAD, out, self.n_threads, "CombinedLoss", self.values, check=check)

    def grad_hess(self, input, target, out=None, *, check=False):
        if out is not None and not (isinstance(out, tuple) and len(out) == 2):
            raise ValueError(f"CombinedLoss: out must be a pair (grad_out, hess_out), got {type(out).__name__}")
        return _run(self.terms, input, target, GRAD_HESS, out, self.n_threads, "CombinedLoss", self.values, check=check)

    def __repr__(self):
        return f"CombinedLoss([{', '.join(f'({w!r}, {l!r})' for w, l in self.terms)}])"


def _declare_examples():
    from . import _examples as E
    from ._pointwise_losses import BCEWithLogitsLoss, HuberLoss, MSELoss

    def gen(rng, dtype, size):
        s = E.shape_nd(rng, size)
        pick = int(rng.integers(0, 2))
        terms = ([(1.0, MSELoss()), (0.5, HuberLoss(delta=0.5, reduction="sum"))] if pick
                 else [(1.0, BCEWithLogitsLoss()), (2.0, MSELoss())])
        return E.Example({"input": E.values(rng, "normal", s, dtype),
                          "target": E.values(rng, "unit" if not pick else "normal", s, dtype), "terms": terms})

    E.declare(gen, combined_loss, CombinedLoss)


_declare_examples()
