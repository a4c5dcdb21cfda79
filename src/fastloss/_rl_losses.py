"""The reinforcement-learning objectives: REINFORCE, PPO's clipped
surrogate, the (clipped) value loss and the TD(0) loss.

All are pointwise (kernels ``policy_gradient``, ``ppo_clip`` and
``value_clip`` in ``_src/fl_pointwise_generative_math.h``).  PyTorch,
optax, Keras and scikit-learn ship none of them; the docstrings name the
definitions followed.  Their references are ``fastloss.reference.rl``.
"""
from __future__ import annotations

import functools
import math
from typing import Optional

import numpy as np

from . import _pointwise, _rows, _rows_api
from . import _check
from . import _validate as V
from ._alloc import empty as _alloc_empty
from ._chunks import _REQUEST, Plan, Planned, index_offset, summed
from ._config import _threads
from ._generative_losses import _bufs, _buf, _kind, _like, _Objective, _class_doc, _request, _weight
from ._pointwise_api import run as pw_run
from ._pointwise_api import spec as pw_spec
from ._pointwise_api import GRAD
from ._pointwise_api import GRAD_HESS, _pair

__all__ = ["policy_gradient_loss", "ppo_clip_loss", "value_loss", "td_loss",
           "PolicyGradientLoss", "PPOClipLoss", "ValueLoss", "TDLoss",
           "policy_gradient_loss_from_logits", "ppo_clip_loss_from_logits",
           "PolicyGradientLossFromLogits", "PPOClipLossFromLogits"]

_REDUCTIONS = ("mean", "sum", "none")
_PG = pw_spec("policy_gradient_loss", "policy_gradient")
_PPO = pw_spec("ppo_clip_loss", "ppo_clip")
_VL = pw_spec("value_loss", "value_clip")
_PPO_STATS = pw_spec("ppo_clip_loss", "ppo_stats")
_TD = pw_spec("td_loss", "td")


def _out1(bufs, name, op, x):
    return _buf(bufs, name, op, x.dtype, x.shape, "out")


def policy_gradient_loss(log_probs, advantages, *, weight=None, reduction="mean", return_grad=False, out=None,
                         n_threads=None, check=False):
    """REINFORCE's policy-gradient loss: ``-E[log pi(a|s) A]``.

    Elementwise ``-log_probs * advantages`` (Williams 1992; the advantages
    are constants: no gradient flows to them), whose gradient with respect
    to ``log_probs`` is ``-advantages`` (divided by N for the mean).
    PyTorch has no such function.

    Parameters
    ----------
    log_probs : array_like
        ``log pi(a_t | s_t)`` of the actions taken.
    advantages : array_like, same shape
    weight : array_like, optional
        Per-element weights (broadcast); the mean still divides by the count.
    reduction : {"mean", "sum", "none"}
    return_grad : bool
        Also return the gradient with respect to log_probs.
    out : ndarray, optional
    n_threads : int, optional
    check : bool
        Run :func:`fastloss.diagnose`'s checks on the operands first and warn
        each finding as a :class:`fastloss.LossWarning` (the default False
        costs one test).

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> value, grad = fl.policy_gradient_loss(np.log([0.5, 0.25]), np.array([1.0, -2.0]), return_grad=True)
    >>> round(value, 12), grad
    (-1.03972077084, array([-0.5,  1. ]))
    """
    op = "policy_gradient_loss"
    mode, names = _request(policy_gradient_loss, return_grad, op)
    red = V.check_reduction(reduction, op, _REDUCTIONS)
    bufs = _bufs(out, mode, names, op)
    x = V.as_input(log_probs, "log_probs", op)
    a = _like(advantages, "advantages", op, x, "log_probs")
    return pw_run(_PG, x, a, _weight(weight, "weight", op, x), red, mode, (0.0, 0.0, 0.0, 0, 0), n_threads, out=_out1(bufs, "log_probs", op, x),
                  check=check)


policy_gradient_loss._grad_args = ("log_probs",)
policy_gradient_loss._class_axis = None


def _clip_eps(clip_eps, op):
    c = V.real(clip_eps, "clip_eps", op)
    if not c > 0:
        raise ValueError(f"{op}: clip_eps must be > 0, got {clip_eps!r}")
    return c


def _dual(dual_clip, op):
    if dual_clip is None:
        return 0.0
    c = V.real(dual_clip, "dual_clip", op)
    if not c > 1:
        raise ValueError(f"{op}: dual_clip must be None or a number > 1, got {dual_clip!r}")
    return c


def ppo_clip_loss(log_probs, old_log_probs, advantages, clip_eps=0.2, dual_clip=None, *, weight=None, stats=None,
                  reduction="mean", return_grad=False, out=None, n_threads=None, check=False):
    """PPO's clipped surrogate objective, as a loss to minimize.

    With ``r = exp(log_probs - old_log_probs)`` (the ratio, from the
    difference of log-probabilities: no ratio of small probabilities) and
    ``A`` the advantages, elementwise
    ``-min(r A, clip(r, 1 - clip_eps, 1 + clip_eps) A)`` (Schulman et al.
    2017, eq. 7).  With ``dual_clip = c > 1`` (Ye et al. 2020) the
    objective of a negative advantage is also bounded below by ``c A``:
    ``-max(min(r A, clip(r) A), c A)`` for ``A < 0``.  The gradient, with
    respect to ``log_probs`` only, is ``-r A`` where the unclipped term is
    the one taken (ties included) and 0 elsewhere.  PyTorch has no such
    function.

    ``stats``, a dict, receives what PPO implementations log every step:
    ``"clip_fraction"``, the fraction of elements with ``|r - 1| >
    clip_eps``, and ``"approx_kl"``, ``mean((r - 1) - log r)`` (the
    unbiased, non-negative estimator of KL(old || new) of Schulman's
    "Approximating KL divergence"), both unweighted.  They come from the
    kernel's own pass, as float64 block sums beside the value's.

    Parameters
    ----------
    log_probs, old_log_probs, advantages : array_like, one shape
    clip_eps : float > 0
    dual_clip : float > 1, optional
    weight : array_like, optional
        Per-element weights of the loss (not of the stats); the mean still
        divides by the count.
    reduction : {"mean", "sum", "none"}
    stats : dict, optional
    return_grad : bool
        Also return the gradient with respect to log_probs.
    out : ndarray, optional
    n_threads : int, optional
    check : bool
        Run :func:`fastloss.diagnose`'s checks on the operands first and warn
        each finding as a :class:`fastloss.LossWarning` (the default False
        costs one test).

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> lp, old, adv = np.log([1.5, 1.0]), np.zeros(2), np.array([1.0, -1.0])
    >>> st = {}
    >>> value, grad = fl.ppo_clip_loss(lp, old, adv, clip_eps=0.2, stats=st, return_grad=True)
    >>> round(value, 12), grad                  # (-1.2 + 1.0) / 2; element 0 clipped
    (-0.1, array([0. , 0.5]))
    >>> st["clip_fraction"]
    0.5
    """
    op = "ppo_clip_loss"
    mode, names = _request(ppo_clip_loss, return_grad, op)
    eps = _clip_eps(clip_eps, op)
    c = _dual(dual_clip, op)
    red = V.check_reduction(reduction, op, _REDUCTIONS)
    if stats is not None and not isinstance(stats, dict):
        raise TypeError(f"{op}: stats must be None or a dict to fill, got {type(stats).__name__}")
    bufs = _bufs(out, mode, names, op)
    x = V.as_input(log_probs, "log_probs", op)
    y = _like(old_log_probs, "old_log_probs", op, x, "log_probs")
    a = _like(advantages, "advantages", op, x, "log_probs")
    if check:   # the driver sees advantages as an unnamed extra operand: the checks here
        _check.check_call(op, x, y, others={"advantages": a}, weight=weight, n_threads=n_threads)
    if stats is None:
        return pw_run(_PPO, x, y, _weight(weight, "weight", op, x), red, mode, (eps, c, 0.0, 0, 0), n_threads,
                      out=_out1(bufs, "log_probs", op, x), extra=a, extra_period=max(x.size, 1))
    # the same pass, with the blocks' sums of the clipped elements and of the approximate KL
    xs = np.zeros(2 * ((x.size + _pointwise.BLOCK - 1) // _pointwise.BLOCK), np.float64)
    res = pw_run(_PPO_STATS, x, y, _weight(weight, "weight", op, x), red, mode, (eps, c, 0.0, 0, 0), n_threads,
                 out=_out1(bufs, "log_probs", op, x), extra=a, extra_period=max(x.size, 1), xsums=xs)
    clipped = kl = 0.0
    for cb, kb in xs.reshape(-1, 2).tolist():     # the blocks' sums in block order
        clipped += cb
        kl += kb
    n = x.size
    stats["clip_fraction"] = clipped / n if n else float("nan")
    stats["approx_kl"] = kl / n if n else float("nan")
    return res


ppo_clip_loss._grad_args = ("log_probs",)
ppo_clip_loss._class_axis = None


def _value_kind(kind, delta, op):
    k = _kind(kind, op, ("mse", "huber"))
    d = V.real(delta, "delta", op)
    if not (d > 0 and math.isfinite(d)):
        raise ValueError(f"{op}: delta must be a finite number > 0, got {delta!r}")
    return 0.0 if k == "mse" else d


def value_loss(values, returns, old_values=None, clip_eps=None, kind="mse", delta=1.0, *, weight=None,
               reduction="mean", return_grad=False, out=None, n_threads=None, check=False):
    """The critic's value loss, with PPO's value clipping as OpenAI baselines defines it.

    Elementwise ``f(values - returns)`` with ``f(d) = d^2 / 2``
    (``kind="mse"``) or Huber's loss with ``delta`` (``kind="huber"``:
    ``d^2 / 2`` for ``|d| <= delta``, ``delta (|d| - delta / 2)``
    beyond).  With ``old_values`` and ``clip_eps`` (both or neither), the
    clipped form of OpenAI baselines' ``ppo2`` (and CleanRL's):
    ``max(f(values - returns), f(v_clip - returns))`` with ``v_clip =
    old_values + clip(values - old_values, -clip_eps, clip_eps)``; the
    unclipped term wins ties.  The gradient is with respect to ``values``
    (0 where the clipped term is taken and clipping is active).  PyTorch
    has no such function.

    Parameters
    ----------
    values, returns : array_like, one shape
    old_values : array_like, optional
        The values at collection time (same shape).
    clip_eps : float > 0, optional
    kind : {"mse", "huber"}
    delta : float > 0
        Huber's threshold.
    weight : array_like, optional
        Per-element weights (broadcast); the mean still divides by the count.
    reduction : {"mean", "sum", "none"}
    return_grad, out, n_threads, check
        As :func:`policy_gradient_loss` (the gradient with respect to values).

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> fl.value_loss(np.array([1.0, 3.0]), np.array([0.0, 0.0]))      # (1 + 9) / 2 / 2
    2.5
    >>> fl.value_loss(np.array([1.0]), np.array([0.0]), old_values=np.array([0.5]), clip_eps=0.2)
    0.5
    """
    op = "value_loss"
    mode, names = _request(value_loss, return_grad, op)
    pb = _value_kind(kind, delta, op)
    if (old_values is None) != (clip_eps is None):
        raise ValueError(f"{op}: old_values and clip_eps are given together (PPO's value clipping) or not at all, "
                         f"got old_values={'None' if old_values is None else 'an array'} and clip_eps={clip_eps!r}")
    eps = math.inf if clip_eps is None else _clip_eps(clip_eps, op)
    red = V.check_reduction(reduction, op, _REDUCTIONS)
    bufs = _bufs(out, mode, names, op)
    x = V.as_input(values, "values", op)
    y = _like(returns, "returns", op, x, "values")
    e = x if old_values is None else _like(old_values, "old_values", op, x, "values")
    if check:
        _check.check_call(op, x, y, others={"old_values": old_values}, weight=weight, n_threads=n_threads)
    return pw_run(_VL, x, y, _weight(weight, "weight", op, x), red, mode, (eps, pb, 0.0, 0, 0), n_threads, out=_out1(bufs, "values", op, x),
                  extra=e, extra_period=max(x.size, 1))


value_loss._grad_args = ("values",)
value_loss._class_axis = None


def td_loss(values, rewards, next_values, dones, gamma=0.99, kind="mse", delta=1.0, *, weight=None,
            reduction="mean", return_grad=False, out=None, n_threads=None, check=False):
    """The TD(0) loss: ``f(values - (rewards + gamma (1 - dones) next_values))``.

    The target ``rewards + gamma (1 - dones) next_values`` (Sutton and
    Barto, eq. 6.2; DQN's target with ``next_values`` the target network's
    max) is a constant: no gradient flows through it, as
    ``target.detach()`` in PyTorch code.  ``f`` as :func:`value_loss`
    (``d^2 / 2`` or Huber's, DQN's choice).  The target is formed
    element by element inside the fused kernel's pass (in the working
    dtype, no temporary array), with the loss and its gradient with
    respect to ``values``.  PyTorch has no such function.

    Parameters
    ----------
    values, rewards, next_values, dones : array_like, one shape
        dones is 1 where the episode ended at the step (0 or 1; any value
        in [0, 1] weights the bootstrap).
    gamma : float in [0, 1]
    kind : {"mse", "huber"}
    delta : float > 0
    weight : array_like, optional
        Per-element weights (importance weights of a prioritized replay).
    reduction : {"mean", "sum", "none"}
    return_grad, out, n_threads, check
        As :func:`value_loss`.

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> v, r, nv, d = np.array([1.0, 0.0]), np.array([1.0, 1.0]), np.array([2.0, 5.0]), np.array([0.0, 1.0])
    >>> value, grad = fl.td_loss(v, r, nv, d, gamma=0.5, return_grad=True)   # targets 2 and 1
    >>> value, grad
    (0.5, array([-0.5, -0.5]))
    """
    op = "td_loss"
    mode, names = _request(td_loss, return_grad, op)
    g = V.real(gamma, "gamma", op)
    if not 0 <= g <= 1:
        raise ValueError(f"{op}: gamma must be in [0, 1], got {gamma!r}")
    pb = _value_kind(kind, delta, op)
    red = V.check_reduction(reduction, op, _REDUCTIONS)
    bufs = _bufs(out, mode, names, op)
    x = V.as_input(values, "values", op)
    r = _like(rewards, "rewards", op, x, "values")
    nv = _like(next_values, "next_values", op, x, "values")
    d = _like(dones, "dones", op, x, "values")
    if check:   # next_values and dones are extra operands of the driver: the checks here
        _check.check_call(op, x, r, others={"next_values": nv, "dones": d}, weight=weight, n_threads=n_threads)
    return pw_run(_TD, x, r, _weight(weight, "weight", op, x), red, mode, (g, pb, 0.0, 0, 0), n_threads,
                  out=_out1(bufs, "values", op, x), extra=nv, extra_period=max(x.size, 1), extra2=d)


td_loss._grad_args = ("values",)
td_loss._class_axis = None


# ------------------------------------------------------------------ from logits and actions
#
# Separate names (``*_from_logits``), not an ``actions=`` keyword that would
# change what the first argument means: the first operand is another
# quantity with another shape ((N, A) logits, not (N,) log-probabilities),
# its gradient has that shape, and the adapters (fastloss.torch, .jax,
# .dask) read static metadata per name (``_grad_args = ("logits",)``,
# ``_class_axis = 1``), as PyTorch splits binary_cross_entropy from
# binary_cross_entropy_with_logits.

_I64_MAX = 2 ** 63 - 1


def _actions(actions, op, N, A, shape):
    """Integer actions of shape (N,), int64/int32/uint8 read in place."""
    t = V.asarray(actions, "actions", op)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: actions must hold integer action indices, got dtype {t.dtype}")
    if t.shape != (N,):
        raise ValueError(f"{op}: actions must have shape ({N},) (one action per row of logits of shape {shape}), "
                         f"got {t.shape}")
    if t.dtype in _rows_api._LABEL_CODES:
        return t if V.behaved(t) else V.contiguous(t, t.dtype)
    if t.dtype.kind == "u" and t.dtype.itemsize == 8 and t.size and t.max() > _I64_MAX:
        i = int(np.flatnonzero(t > _I64_MAX)[0])
        raise ValueError(f"{op}: actions[{i}] = {int(t[i])} is out of range for {A} actions")
    return V.contiguous(t, np.int64)


def _per_row(a, name, op, x):
    """A per-row operand: x's dtype, shape (N,)."""
    s = a.shape if isinstance(a, np.ndarray) else np.shape(V.asarray(a, name, op))
    if s != x.shape[:1]:
        raise ValueError(f"{op}: {name} must have shape ({x.shape[0]},) (one value per row of logits of shape "
                         f"{x.shape}), got {s}")
    return V.as_operand(a, name, op, x.dtype, x.shape[:1])


def _entropy_coef(entropy_coef, op):
    c = V.real(entropy_coef, "entropy_coef", op)
    if not (c >= 0 and math.isfinite(c)):
        raise ValueError(f"{op}: entropy_coef must be a finite number >= 0 (the weight of the entropy bonus), "
                         f"got {entropy_coef!r}")
    return c


def _logits_run(op, kernel, logits, actions, adv, old, weight, params, reduction, mode, names, out, n_threads,
                stats, check=False):
    """One pass of the row driver's RL kernel over (N, A) logits."""
    red = V.check_reduction(reduction, op, _REDUCTIONS)
    if stats is not None and not isinstance(stats, dict):
        raise TypeError(f"{op}: stats must be None or a dict to fill, got {type(stats).__name__}")
    bufs = _bufs(out, mode, names, op)
    nt = _threads(n_threads, op)
    x = V.as_input(logits, "logits", op)
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(f"{op}: logits must have shape (N, A) (a row of A >= 1 action logits per sample), "
                         f"got {x.shape}")
    N, A = x.shape
    t = _actions(actions, op, N, A, x.shape)
    ra = _per_row(adv, "advantages", op, x)
    rb = None if old is None else _per_row(old, "old_log_probs", op, x)
    rw = None if weight is None else _per_row(weight, "weight", op, x)
    if check:
        _check.check_call(op, x, t, others={"advantages": ra, "old_log_probs": rb}, n_threads=nt)
    g = lo = None
    if mode == GRAD:
        o = bufs.get("logits")
        g = _alloc_empty(x.shape, x.dtype) if o is None else V.check_out(o, "out", op, x.dtype, x.shape)
    if red == "none":
        lo = _alloc_empty((N,), x.dtype)
    if mode == GRAD and bufs.get("logits") is not None:
        V.check_no_overlap(g, "out", op, x, t, ra, rb, rw)
    per = _rows.block_items(A, 1)
    n_div, parts = N, None
    req = _REQUEST.get()
    if req is not None and stats is None:  # a chunk of a larger array (fastloss.dask, see _chunks)
        if req.phase == "plan":  # rows split along axis 0 on blocks of block_items(A, 1) rows, as cross_entropy
            req.plan = Plan(op, "rows", x.dtype, True, 1, per, 1,
                            functools.partial(_rows_api._items_of, 1) if red == "mean" else None, None,
                            summed(functools.partial(_rows_api.finish, red, False)), red != "none")
            raise Planned
        if red == "mean":
            n_div = req.div  # the whole array's rows: the gradient's scale and the mean's divisor
        parts = req.parts = np.empty((N + per - 1) // per, np.float64)
    xs = np.zeros(3 * ((N + per - 1) // per), np.float64) if stats is not None else None
    pa, pb, pc = params
    total, _, bad = _rows.run(_rows.LOSS_IDS[kernel], x.dtype != np.float32, x, t, _rows_api._LABEL_CODES[t.dtype],
                              None, None, g, None, lo, A, 1, 0, False, pa, pb, pc, 0, 0, float(A), mode,
                              1.0 / n_div if red == "mean" and n_div else 1.0, _rows.DENOM_NONE,
                              _rows_api.CHECK_LABELS_FIRST, nt, None, parts, None, ra, rb, rw, xs)
    if bad >= 0:
        val = int(t[bad])
        raise ValueError(f"{op}: actions[{bad + index_offset()}] = {val} is out of range for {A} actions "
                         f"(logits of shape {x.shape})")
    if stats is not None:
        sums = [0.0, 0.0, 0.0]
        for h, c, k in xs.reshape(-1, 3).tolist():     # the blocks' sums in block order
            sums[0] += h
            sums[1] += c
            sums[2] += k
        stats["entropy"] = sums[0] / N if N else float("nan")
        if kernel == "ppo_logits":
            stats["clip_fraction"] = sums[1] / N if N else float("nan")
            stats["approx_kl"] = sums[2] / N if N else float("nan")
    if red == "none":
        value = lo
    elif red == "sum":
        value = total
    else:
        value = total / n_div if n_div else float("nan")
    return (value, g) if mode == GRAD else value


def policy_gradient_loss_from_logits(logits, actions, advantages, entropy_coef=0.0, *, weight=None, stats=None,
                                     reduction="mean", return_grad=False, out=None, n_threads=None, check=False):
    """REINFORCE from action logits: ``-E[log softmax(z)_a A] - entropy_coef E[H(softmax(z))]``.

    Per row ``i`` of the logits ``z`` (``(N, A)``, one row of ``A``
    action logits per sample), the action taken ``a_i`` and its advantage
    ``A_i`` (a constant: no gradient flows to it),
    ``l_i = -A_i log p_i[a_i] - entropy_coef H(p_i)`` with ``p_i =
    softmax(z_i)`` and ``H(p) = -sum_c p_c log p_c`` (Williams 1992; the
    entropy bonus of Mnih et al. 2016, A3C).  The log-softmax and the
    entropy come from one pass over each row (the log-sum-exp with the max
    taken out: logits of +-1e4 are fine); the gradient with respect to the
    logits is exact, the entropy's included:
    ``dl_i/dz_c = -A_i (1[c = a_i] - p_c) + entropy_coef p_c (log p_c + H)``.
    A row whose advantage is 0 adds nothing, even where ``p[a] = 0``.
    PyTorch has no such function.

    This is :func:`policy_gradient_loss` of ``log_softmax(logits)[a]``,
    under its own name rather than an ``actions=`` keyword: the first
    operand is another array (``(N, A)`` logits, not ``(N,)``
    log-probabilities) with a gradient of its shape, and the adapters read
    one fixed signature per name (as PyTorch's
    ``binary_cross_entropy_with_logits`` stands beside
    ``binary_cross_entropy``).

    Parameters
    ----------
    logits : array_like, shape (N, A)
        float32 or float64 (other dtypes are converted once).
    actions : array_like of int, shape (N,)
        The action taken in each row, in ``[0, A)`` (int64, int32 and uint8
        are read in place).
    advantages : array_like, shape (N,)
    entropy_coef : float >= 0
        The weight of the entropy bonus (0: none, and the entropy is not
        computed unless ``stats`` asks for it).
    weight : array_like, shape (N,), optional
        Per-row weights; the mean still divides by N.
    stats : dict, optional
        Receives ``"entropy"``, the mean entropy of the rows (unweighted),
        from the same pass.
    reduction : {"mean", "sum", "none"}
        "none" gives the (N,) per-row losses.
    return_grad : bool
        Also return the gradient with respect to logits, shape (N, A).
    out : ndarray, optional
        The gradient's buffer (logits' shape and dtype).
    n_threads : int, optional
    check : bool
        Run :func:`fastloss.diagnose`'s checks on the operands first and warn
        each finding as a :class:`fastloss.LossWarning` (the default False
        costs one test).

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> z = np.log(np.array([[0.5, 0.5], [0.25, 0.75]]))
    >>> value, grad = fl.policy_gradient_loss_from_logits(z, np.array([0, 1]), np.array([1.0, -2.0]), return_grad=True)
    >>> round(value, 12)                         # (-log 0.5 + 2 log 0.75) / 2
    0.058891517828
    >>> grad
    array([[-0.25,  0.25],
           [-0.25,  0.25]])
    >>> st = {}
    >>> round(fl.policy_gradient_loss_from_logits(z, np.array([0, 1]), np.ones(2), entropy_coef=0.01, stats=st), 6)
    0.484137
    >>> round(st["entropy"], 6)                  # (log 2 + H(0.25, 0.75)) / 2
    0.627741
    """
    op = "policy_gradient_loss_from_logits"
    mode, names = _request(policy_gradient_loss_from_logits, return_grad, op)
    beta = _entropy_coef(entropy_coef, op)
    return _logits_run(op, "pg_logits", logits, actions, advantages, None, weight, (0.0, 0.0, beta), reduction,
                       mode, names, out, n_threads, stats, check=check)


policy_gradient_loss_from_logits._grad_args = ("logits",)
policy_gradient_loss_from_logits._class_axis = 1
# one value per row: the logits' shape without the action axis (the adapters slice them with the rows)
policy_gradient_loss_from_logits._per_item_args = {"actions": 1, "advantages": 1, "weight": 1}
# fastloss.dask splits it along the rows as cross_entropy; a call with stats= runs gathered (the
# stats are filled into the caller's dict, which a chunked graph does not hand back)
policy_gradient_loss_from_logits._gathered_with = {
    "stats": "stats= fills the caller's dict from the one call's block sums; the split path does not hand them back"}


def ppo_clip_loss_from_logits(logits, actions, old_log_probs, advantages, clip_eps=0.2, dual_clip=None,
                              entropy_coef=0.0, *, weight=None, stats=None, reduction="mean", return_grad=False,
                              out=None, n_threads=None, check=False):
    """PPO's clipped surrogate from action logits, with an entropy bonus.

    Per row ``i``: ``lp_i = log softmax(z_i)[a_i]``, ``r_i = exp(lp_i -
    old_log_probs_i)`` and the loss ``-min(r A, clip(r, 1 - clip_eps, 1 +
    clip_eps) A) - entropy_coef H(softmax(z_i))`` (Schulman et al. 2017,
    eq. 7 and 9, as a loss to minimize; ``dual_clip = c > 1`` bounds the
    objective of a negative advantage below by ``c A``, Ye et al. 2020),
    exactly :func:`ppo_clip_loss` of ``lp`` minus the entropy bonus.  The
    log-softmax, the ratio, the clipping and the entropy come from one
    pass over each row; the gradient with respect to the logits is exact:
    ``k_i (1[c = a_i] - p_c) + entropy_coef p_c (log p_c + H)`` with
    ``k_i = -r_i A_i`` where the unclipped term is taken (ties included)
    and 0 elsewhere.  PyTorch has no such function.

    ``stats``, a dict, receives from the same pass (the kernel's float64
    block sums, unweighted): ``"clip_fraction"`` (rows with ``|r - 1| >
    clip_eps``), ``"approx_kl"`` (``mean((r - 1) - log r)``, Schulman's
    non-negative estimator of KL(old || new)) and ``"entropy"`` (the mean
    entropy).  Named apart from :func:`ppo_clip_loss` for the reasons
    given in :func:`policy_gradient_loss_from_logits`.

    Parameters
    ----------
    logits : array_like, shape (N, A)
    actions : array_like of int, shape (N,)
    old_log_probs, advantages : array_like, shape (N,)
        ``log pi_old(a_i | s_i)`` at collection time, and the advantages.
    clip_eps : float > 0
    dual_clip : float > 1, optional
    entropy_coef : float >= 0
    weight : array_like, shape (N,), optional
        Per-row weights of the loss (not of the stats); the mean divides by N.
    stats : dict, optional
    reduction : {"mean", "sum", "none"}
    return_grad : bool
        Also return the gradient with respect to logits.
    out : ndarray, optional
    n_threads : int, optional
    check : bool
        Run :func:`fastloss.diagnose`'s checks on the operands first and warn
        each finding as a :class:`fastloss.LossWarning` (the default False
        costs one test).

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> z = np.log(np.array([[0.6, 0.4], [0.5, 0.5]]))
    >>> old = np.log(np.array([0.4, 0.5]))
    >>> st = {}
    >>> value, grad = fl.ppo_clip_loss_from_logits(z, np.array([0, 1]), old, np.array([1.0, 1.0]), 0.2,
    ...                                            stats=st, return_grad=True)
    >>> round(value, 12), grad                 # row 0: r = 1.5, clipped to 1.2 (no gradient)
    (-1.1, array([[ 0.  ,  0.  ],
           [ 0.25, -0.25]]))
    >>> st["clip_fraction"], round(st["approx_kl"], 6)   # (0.5 - log 1.5) / 2
    (0.5, 0.047267)
    """
    op = "ppo_clip_loss_from_logits"
    mode, names = _request(ppo_clip_loss_from_logits, return_grad, op)
    eps = _clip_eps(clip_eps, op)
    c = _dual(dual_clip, op)
    beta = _entropy_coef(entropy_coef, op)
    if old_log_probs is None:
        raise TypeError(f"{op}: old_log_probs must be an array of shape (N,), got None")
    return _logits_run(op, "ppo_logits", logits, actions, advantages, old_log_probs, weight, (eps, c, beta),
                       reduction, mode, names, out, n_threads, stats, check=check)


ppo_clip_loss_from_logits._grad_args = ("logits",)
ppo_clip_loss_from_logits._class_axis = 1
ppo_clip_loss_from_logits._per_item_args = {"actions": 1, "old_log_probs": 1, "advantages": 1, "weight": 1}
ppo_clip_loss_from_logits._gathered_with = policy_gradient_loss_from_logits._gathered_with


# ------------------------------------------------------------------ classes

class PolicyGradientLoss(_Objective):
    __doc__ = _class_doc(policy_gradient_loss, "log_probs, advantages") + """
    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> fl.PolicyGradientLoss(reduction="sum")(np.array([-1.0, -2.0]), np.array([1.0, 1.0]))
    3.0
    """
    _grad_args = policy_gradient_loss._grad_args
    _reductions = _REDUCTIONS
    _class_axis = None
    _options = ("reduction",)

    def __init__(self, reduction="mean", *, n_threads: Optional[int] = None):
        super().__init__(reduction=V.check_reduction(reduction, "PolicyGradientLoss", _REDUCTIONS),
                         n_threads=n_threads)

    def __call__(self, log_probs, advantages, weight=None, *, check=False):
        return policy_gradient_loss(log_probs, advantages, weight=weight, **self._kw(), n_threads=self.n_threads,
                                    check=check)

    def value_and_grad(self, log_probs, advantages, weight=None, out=None, *, wrt=None, check=False):
        return policy_gradient_loss(log_probs, advantages, weight=weight, **self._kw(),
                                    return_grad=True if wrt is None else tuple(wrt), out=out, n_threads=self.n_threads,
                                    check=check)

    def grad_hess(self, log_probs, advantages, weight=None, out=None, *, check=False):
        """``(grad, hess)`` with respect to log_probs: ``-advantages`` (times
        the weights, over N for the mean) and the diagonal Hessian, 0 (the
        loss is linear in log_probs); ``out`` may be a pair ``(grad_out, hess_out)``."""
        op = "PolicyGradientLoss"
        g_out, h_out = (None, None) if out is None else _pair(out, op)
        x = V.as_input(log_probs, "log_probs", op)
        a = _like(advantages, "advantages", op, x, "log_probs")
        return pw_run(_PG, x, a, _weight(weight, "weight", op, x), self.reduction, GRAD_HESS, (0.0, 0.0, 0.0, 0, 0),
                      self.n_threads, out=g_out, hess_out=h_out, check=check)


class PPOClipLoss(_Objective):
    __doc__ = _class_doc(ppo_clip_loss, "log_probs, old_log_probs, advantages") + """
    ``loss.stats`` holds the clip fraction and approximate KL of the last call.

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> loss = fl.PPOClipLoss(clip_eps=0.1)
    >>> round(loss(np.log([2.0]), np.zeros(1), np.array([1.0])), 12)
    -1.1
    >>> loss.stats["clip_fraction"]
    1.0
    """
    _grad_args = ppo_clip_loss._grad_args
    _reductions = _REDUCTIONS
    _class_axis = None
    _options = ("clip_eps", "dual_clip", "reduction")

    def __init__(self, clip_eps=0.2, dual_clip=None, reduction="mean", *, n_threads: Optional[int] = None):
        op = "PPOClipLoss"
        _dual(dual_clip, op)
        super().__init__(clip_eps=_clip_eps(clip_eps, op), dual_clip=dual_clip,
                         reduction=V.check_reduction(reduction, op, _REDUCTIONS), n_threads=n_threads)
        self.stats = {}

    def __call__(self, log_probs, old_log_probs, advantages, weight=None, *, check=False):
        return ppo_clip_loss(log_probs, old_log_probs, advantages, weight=weight, **self._kw(), stats=self.stats,
                             n_threads=self.n_threads, check=check)

    def value_and_grad(self, log_probs, old_log_probs, advantages, weight=None, out=None, *, wrt=None, check=False):
        return ppo_clip_loss(log_probs, old_log_probs, advantages, weight=weight, **self._kw(), stats=self.stats,
                             return_grad=True if wrt is None else tuple(wrt), out=out, n_threads=self.n_threads,
                             check=check)


class ValueLoss(_Objective):
    __doc__ = _class_doc(value_loss, "values, returns, old_values=None") + """
    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> fl.ValueLoss(kind="huber")(np.array([3.0]), np.array([0.0]))
    2.5
    """
    _grad_args = value_loss._grad_args
    _reductions = _REDUCTIONS
    _class_axis = None
    _options = ("clip_eps", "kind", "delta", "reduction")

    def __init__(self, clip_eps=None, kind="mse", delta=1.0, reduction="mean", *, n_threads: Optional[int] = None):
        op = "ValueLoss"
        _value_kind(kind, delta, op)
        super().__init__(clip_eps=None if clip_eps is None else _clip_eps(clip_eps, op), kind=kind, delta=delta,
                         reduction=V.check_reduction(reduction, op, _REDUCTIONS), n_threads=n_threads)

    def __call__(self, values, returns, old_values=None, weight=None, *, check=False):
        return value_loss(values, returns, old_values, weight=weight, **self._kw(), n_threads=self.n_threads,
                          check=check)

    def value_and_grad(self, values, returns, old_values=None, weight=None, out=None, *, wrt=None, check=False):
        return value_loss(values, returns, old_values, weight=weight, **self._kw(), return_grad=True if wrt is None else tuple(wrt),
                          out=out, n_threads=self.n_threads, check=check)


class TDLoss(_Objective):
    __doc__ = _class_doc(td_loss, "values, rewards, next_values, dones") + """
    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> fl.TDLoss(gamma=1.0)(np.array([0.0]), np.array([1.0]), np.array([1.0]), np.array([0.0]))
    2.0
    """
    _grad_args = td_loss._grad_args
    _reductions = _REDUCTIONS
    _class_axis = None
    _options = ("gamma", "kind", "delta", "reduction")

    def __init__(self, gamma=0.99, kind="mse", delta=1.0, reduction="mean", *, n_threads: Optional[int] = None):
        op = "TDLoss"
        g = V.real(gamma, "gamma", op)
        if not 0 <= g <= 1:
            raise ValueError(f"{op}: gamma must be in [0, 1], got {gamma!r}")
        _value_kind(kind, delta, op)
        super().__init__(gamma=g, kind=kind, delta=delta, reduction=V.check_reduction(reduction, op, _REDUCTIONS),
                         n_threads=n_threads)

    def __call__(self, values, rewards, next_values, dones, weight=None, *, check=False):
        return td_loss(values, rewards, next_values, dones, weight=weight, **self._kw(), n_threads=self.n_threads,
                       check=check)

    def value_and_grad(self, values, rewards, next_values, dones, weight=None, out=None, *, wrt=None, check=False):
        return td_loss(values, rewards, next_values, dones, weight=weight, **self._kw(),
                       return_grad=True if wrt is None else tuple(wrt), out=out, n_threads=self.n_threads, check=check)


class PolicyGradientLossFromLogits(_Objective):
    __doc__ = _class_doc(policy_gradient_loss_from_logits, "logits, actions, advantages") + """
    ``loss.stats`` holds the mean entropy of the last call.

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> loss = fl.PolicyGradientLossFromLogits(entropy_coef=0.0, reduction="sum")
    >>> round(loss(np.zeros((2, 4)), np.array([0, 3]), np.array([1.0, 1.0])), 12)     # 2 log 4
    2.77258872224
    >>> round(loss.stats["entropy"], 12)
    1.38629436112
    """
    _grad_args = policy_gradient_loss_from_logits._grad_args
    _reductions = _REDUCTIONS
    _class_axis = 1
    _gathered_with = policy_gradient_loss_from_logits._gathered_with
    _per_item_args = policy_gradient_loss_from_logits._per_item_args
    _options = ("entropy_coef", "reduction")

    def __init__(self, entropy_coef=0.0, reduction="mean", *, n_threads: Optional[int] = None):
        op = "PolicyGradientLossFromLogits"
        super().__init__(entropy_coef=_entropy_coef(entropy_coef, op),
                         reduction=V.check_reduction(reduction, op, _REDUCTIONS), n_threads=n_threads)
        self.stats = {}

    def __call__(self, logits, actions, advantages, weight=None, *, check=False):
        return policy_gradient_loss_from_logits(logits, actions, advantages, weight=weight, **self._kw(),
                                                stats=self.stats, n_threads=self.n_threads, check=check)

    def value_and_grad(self, logits, actions, advantages, weight=None, out=None, *, wrt=None, check=False):
        return policy_gradient_loss_from_logits(logits, actions, advantages, weight=weight, **self._kw(),
                                                stats=self.stats, return_grad=True if wrt is None else tuple(wrt),
                                                out=out, n_threads=self.n_threads, check=check)


class PPOClipLossFromLogits(_Objective):
    __doc__ = _class_doc(ppo_clip_loss_from_logits, "logits, actions, old_log_probs, advantages") + """
    ``loss.stats`` holds the clip fraction, approximate KL and mean entropy of the last call.

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> loss = fl.PPOClipLossFromLogits(clip_eps=0.1, entropy_coef=0.01)
    >>> v = loss(np.log([[0.5, 0.5]]), np.array([0]), np.log([0.25]), np.array([1.0]))
    >>> round(v, 12), loss.stats["clip_fraction"]        # -1.1 - 0.01 log 2
    (-1.106931471806, 1.0)
    """
    _grad_args = ppo_clip_loss_from_logits._grad_args
    _reductions = _REDUCTIONS
    _class_axis = 1
    _gathered_with = ppo_clip_loss_from_logits._gathered_with
    _per_item_args = ppo_clip_loss_from_logits._per_item_args
    _options = ("clip_eps", "dual_clip", "entropy_coef", "reduction")

    def __init__(self, clip_eps=0.2, dual_clip=None, entropy_coef=0.0, reduction="mean", *,
                 n_threads: Optional[int] = None):
        op = "PPOClipLossFromLogits"
        _dual(dual_clip, op)
        super().__init__(clip_eps=_clip_eps(clip_eps, op), dual_clip=dual_clip,
                         entropy_coef=_entropy_coef(entropy_coef, op),
                         reduction=V.check_reduction(reduction, op, _REDUCTIONS), n_threads=n_threads)
        self.stats = {}

    def __call__(self, logits, actions, old_log_probs, advantages, weight=None, *, check=False):
        return ppo_clip_loss_from_logits(logits, actions, old_log_probs, advantages, weight=weight, **self._kw(),
                                         stats=self.stats, n_threads=self.n_threads, check=check)

    def value_and_grad(self, logits, actions, old_log_probs, advantages, weight=None, out=None, *, wrt=None,
                       check=False):
        return ppo_clip_loss_from_logits(logits, actions, old_log_probs, advantages, weight=weight, **self._kw(),
                                         stats=self.stats, return_grad=True if wrt is None else tuple(wrt),
                                         out=out, n_threads=self.n_threads, check=check)


# ------------------------------------------------------------------ example calls (the fuzz harness)

def _declare_examples():
    from . import _examples as E

    def pick(rng, seq):
        return seq[int(rng.integers(0, len(seq)))]

    def gen_pg(rng, dtype, size):
        s = E.shape_nd(rng, size)
        return E.Example({"log_probs": E.values(rng, "logprob", s, dtype), "advantages": E.values(rng, "normal", s, dtype),
                          "reduction": pick(rng, _REDUCTIONS)})

    def gen_ppo(rng, dtype, size):
        s = E.shape_nd(rng, size)
        return E.Example({"log_probs": E.values(rng, "logprob", s, dtype),
                          "old_log_probs": E.values(rng, "logprob", s, dtype),
                          "advantages": E.values(rng, "normal", s, dtype), "clip_eps": float(rng.uniform(0.05, 0.4)),
                          "dual_clip": pick(rng, (None, 3.0)), "reduction": pick(rng, _REDUCTIONS)})

    def gen_value(rng, dtype, size):
        s = E.shape_nd(rng, size)
        args = {"values": E.values(rng, "normal", s, dtype), "returns": E.values(rng, "normal", s, dtype),
                "kind": pick(rng, ("mse", "huber")), "delta": 1.0, "reduction": pick(rng, _REDUCTIONS)}
        if rng.random() < 0.6:
            args["old_values"] = E.values(rng, "normal", s, dtype)
            args["clip_eps"] = float(rng.uniform(0.1, 1.0))
        return E.Example(args)

    def gen_td(rng, dtype, size):
        s = E.shape_nd(rng, size)
        return E.Example({"values": E.values(rng, "normal", s, dtype), "rewards": E.values(rng, "normal", s, dtype),
                          "next_values": E.values(rng, "normal", s, dtype), "dones": E.values(rng, "binary", s, dtype),
                          "gamma": float(rng.uniform(0.5, 1.0)), "kind": pick(rng, ("mse", "huber")), "delta": 1.0,
                          "reduction": pick(rng, _REDUCTIONS)})

    def gen_logits(rng, size):
        A = int(rng.integers(1, 9)) if rng.random() < 0.8 else int(rng.integers(60, 300))
        N = size if rng.random() < 0.9 else 0
        return N, A

    def gen_pg_logits(rng, dtype, size):
        N, A = gen_logits(rng, size)
        args = {"logits": E.values(rng, "normal", (N, A), dtype), "actions": rng.integers(0, A, N).astype(np.int64),
                "advantages": E.values(rng, "normal", (N,), dtype), "entropy_coef": pick(rng, (0.0, 0.01)),
                "reduction": pick(rng, _REDUCTIONS)}
        if rng.random() < 0.3:
            args["weight"] = E.values(rng, "positive", (N,), dtype)
        return E.Example(args, labels={"actions": A})

    def gen_ppo_logits(rng, dtype, size):
        N, A = gen_logits(rng, size)
        args = {"logits": E.values(rng, "normal", (N, A), dtype), "actions": rng.integers(0, A, N).astype(np.int64),
                "old_log_probs": E.values(rng, "logprob", (N,), dtype) - np.asarray(math.log(A), dtype),
                "advantages": E.values(rng, "normal", (N,), dtype), "clip_eps": float(rng.uniform(0.05, 0.4)),
                "dual_clip": pick(rng, (None, 3.0)), "entropy_coef": pick(rng, (0.0, 0.01)),
                "reduction": pick(rng, _REDUCTIONS)}
        if rng.random() < 0.3:
            args["weight"] = E.values(rng, "positive", (N,), dtype)
        return E.Example(args, labels={"actions": A})

    E.declare(gen_pg_logits, policy_gradient_loss_from_logits, PolicyGradientLossFromLogits)
    E.declare(gen_ppo_logits, ppo_clip_loss_from_logits, PPOClipLossFromLogits)
    E.declare(gen_pg, policy_gradient_loss, PolicyGradientLoss)
    E.declare(gen_ppo, ppo_clip_loss, PPOClipLoss)
    E.declare(gen_value, value_loss, ValueLoss)
    E.declare(gen_td, td_loss, TDLoss)


_declare_examples()
