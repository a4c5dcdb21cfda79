"""The reinforcement-learning objectives: REINFORCE, PPO's clipped
surrogate, the (clipped) value loss and the TD(0) loss.

All are pointwise (kernels ``policy_gradient``, ``ppo_clip`` and
``value_clip`` in ``_src/fl_pointwise_generative_math.h``).  PyTorch,
optax, Keras and scikit-learn ship none of them; the docstrings name the
definitions followed.  Their references are ``fastloss.reference.rl``.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from . import _validate as V
from ._generative_losses import _bufs, _buf, _kind, _like, _Objective, _class_doc, _request, _weight
from ._pointwise_api import run as pw_run
from ._pointwise_api import spec as pw_spec

__all__ = ["policy_gradient_loss", "ppo_clip_loss", "value_loss", "td_loss",
           "PolicyGradientLoss", "PPOClipLoss", "ValueLoss", "TDLoss"]

_REDUCTIONS = ("mean", "sum", "none")
_PG = pw_spec("policy_gradient_loss", "policy_gradient")
_PPO = pw_spec("ppo_clip_loss", "ppo_clip")
_VL = pw_spec("value_loss", "value_clip")
_TD = pw_spec("td_loss", "value_clip")


def _out1(bufs, name, op, x):
    return _buf(bufs, name, op, x.dtype, x.shape, "out")


def policy_gradient_loss(log_probs, advantages, *, weight=None, reduction="mean", return_grad=False, out=None,
                         n_threads=None):
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
    return pw_run(_PG, x, a, _weight(weight, "weight", op, x), red, mode, (0.0, 0.0, 0.0, 0, 0), n_threads, out=_out1(bufs, "log_probs", op, x))


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
                  reduction="mean", return_grad=False, out=None, n_threads=None):
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
    "Approximating KL divergence").  They are computed by a second,
    read-only NumPy pass (one temporary), not by the kernel's pass.

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
    res = pw_run(_PPO, x, y, _weight(weight, "weight", op, x), red, mode, (eps, c, 0.0, 0, 0), n_threads, out=_out1(bufs, "log_probs", op, x),
                 extra=a, extra_period=max(x.size, 1))
    if stats is not None:
        lr = np.subtract(x, y, dtype=np.float64)
        r = np.exp(lr)
        n = max(x.size, 1)
        stats["clip_fraction"] = float(np.count_nonzero(np.abs(r - 1) > eps)) / n if x.size else float("nan")
        stats["approx_kl"] = float(np.sum((r - 1) - lr)) / n if x.size else float("nan")
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
               reduction="mean", return_grad=False, out=None, n_threads=None):
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
    return_grad, out, n_threads
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
    return pw_run(_VL, x, y, _weight(weight, "weight", op, x), red, mode, (eps, pb, 0.0, 0, 0), n_threads, out=_out1(bufs, "values", op, x),
                  extra=e, extra_period=max(x.size, 1))


value_loss._grad_args = ("values",)
value_loss._class_axis = None


def td_loss(values, rewards, next_values, dones, gamma=0.99, kind="mse", delta=1.0, *, weight=None,
            reduction="mean", return_grad=False, out=None, n_threads=None):
    """The TD(0) loss: ``f(values - (rewards + gamma (1 - dones) next_values))``.

    The target ``rewards + gamma (1 - dones) next_values`` (Sutton and
    Barto, eq. 6.2; DQN's target with ``next_values`` the target network's
    max) is a constant: no gradient flows through it, as
    ``target.detach()`` in PyTorch code.  ``f`` as :func:`value_loss`
    (``d^2 / 2`` or Huber's, DQN's choice).  The target is formed by one
    NumPy expression (a temporary of values' shape); the loss and its
    gradient with respect to ``values`` by the fused kernel.  PyTorch has
    no such function.

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
    return_grad, out, n_threads
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
    target = nv * (1 - d)
    target *= x.dtype.type(g)
    target += r
    return pw_run(_TD, x, target, _weight(weight, "weight", op, x), red, mode, (math.inf, pb, 0.0, 0, 0), n_threads,
                  out=_out1(bufs, "values", op, x), extra=x, extra_period=max(x.size, 1))


td_loss._grad_args = ("values",)
td_loss._class_axis = None


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

    def __call__(self, log_probs, advantages, weight=None):
        return policy_gradient_loss(log_probs, advantages, weight=weight, **self._kw(), n_threads=self.n_threads)

    def value_and_grad(self, log_probs, advantages, weight=None, out=None, *, wrt=None):
        return policy_gradient_loss(log_probs, advantages, weight=weight, **self._kw(),
                                    return_grad=True if wrt is None else tuple(wrt), out=out, n_threads=self.n_threads)


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

    def __call__(self, log_probs, old_log_probs, advantages, weight=None):
        return ppo_clip_loss(log_probs, old_log_probs, advantages, weight=weight, **self._kw(), stats=self.stats,
                             n_threads=self.n_threads)

    def value_and_grad(self, log_probs, old_log_probs, advantages, weight=None, out=None, *, wrt=None):
        return ppo_clip_loss(log_probs, old_log_probs, advantages, weight=weight, **self._kw(), stats=self.stats,
                             return_grad=True if wrt is None else tuple(wrt), out=out, n_threads=self.n_threads)


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

    def __call__(self, values, returns, old_values=None, weight=None):
        return value_loss(values, returns, old_values, weight=weight, **self._kw(), n_threads=self.n_threads)

    def value_and_grad(self, values, returns, old_values=None, weight=None, out=None, *, wrt=None):
        return value_loss(values, returns, old_values, weight=weight, **self._kw(), return_grad=True if wrt is None else tuple(wrt),
                          out=out, n_threads=self.n_threads)


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

    def __call__(self, values, rewards, next_values, dones, weight=None):
        return td_loss(values, rewards, next_values, dones, weight=weight, **self._kw(), n_threads=self.n_threads)

    def value_and_grad(self, values, rewards, next_values, dones, weight=None, out=None, *, wrt=None):
        return td_loss(values, rewards, next_values, dones, weight=weight, **self._kw(),
                       return_grad=True if wrt is None else tuple(wrt), out=out, n_threads=self.n_threads)


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

    E.declare(gen_pg, policy_gradient_loss, PolicyGradientLoss)
    E.declare(gen_ppo, ppo_clip_loss, PPOClipLoss)
    E.declare(gen_value, value_loss, ValueLoss)
    E.declare(gen_td, td_loss, TDLoss)


_declare_examples()
