"""Side-by-side timings of fastloss against NumPy, PyTorch and scikit-learn.

Run it as ``python -m fastloss bench`` (``--help`` for the options).  For
every loss in the registry, every size, dtype and thread count it times, in
one process:

* fastloss's fused value-and-gradient call (``return_grad=True``) three
  ways: the default call with fastloss's block cache switched off, so each
  call maps a new gradient ("fresh": what every call cost before the cache,
  and costs with ``FASTLOSS_CACHE_BYTES=0``); the same default call with
  the cache on ("cached": what a user's call costs, the gradient's memory
  reused once the previous one is dropped); and writing into a
  preallocated ``out=`` buffer (what a backend does);
* the NumPy reference, ``fastloss.reference.<name>`` (float64, textbook);
* PyTorch forward + backward, when torch is installed;
* scikit-learn's private ``sklearn._loss`` module, where it has the loss.

Each figure is the minimum over repeats of the mean time per call, after a
warmup, with the inner loop count scaled so one repeat takes at least
``min_time`` seconds (as ``timeit`` does).  The memory bandwidth of the
machine is measured in the same run with a STREAM-style add, and each loss
at large N is set against it.

The registry (:func:`pointwise_cases`) is a list of :class:`Case`: a name, a
``setup(n, dtype, rng)`` that builds realistic inputs, and one *preparer*
per implementation.  A preparer takes ``(data, n_threads)`` and returns a
zero-argument callable that performs one timed call (buffers, tensors and
loss objects are made outside the timing), or ``None`` when that
implementation does not have the loss.  Another loss family (row over
classes, sequences, ...) adds its own cases with its own setup and
preparers; the runner and the report do not change.
"""
from __future__ import annotations

import datetime
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

import fastloss as fl

__all__ = ["Case", "pointwise_cases", "measure", "stream_bandwidth", "run_benchmark", "main_bench"]

IMPLS = ("fastloss", "fastloss_cached", "fastloss_out", "numpy", "torch", "sklearn")
IMPL_LABEL = {
    "fastloss": "fastloss fresh",
    "fastloss_cached": "fastloss cached",
    "fastloss_out": "fastloss out=",
    "numpy": "numpy",
    "torch": "torch",
    "sklearn": "sklearn",
}

# A preparer: (data, n_threads) -> zero-argument callable doing one timed call, or None.
Preparer = Callable[[dict, int], Optional[Callable[[], Any]]]


@dataclass(frozen=True)
class Case:
    """One benchmarked loss.

    name      : the fastloss function's name (also the table's row label)
    family    : loss family ("pointwise", ...), for grouping
    setup     : (n, dtype, rng) -> data dict; by convention data["args"] is the
                tuple of positional arrays (input first) and data["params"] the
                loss parameters as keywords
    impls     : implementation name -> preparer (see the module docstring);
                a missing key means the implementation lacks the loss
    arrays_moved : arrays of N elements the fused value+gradient call must
                read or write (input, target and grad = 3), for the bandwidth
                figures
    notes     : implementation name -> short note printed under the table
                (e.g. "composed from torch ops")
    """

    name: str
    family: str
    setup: Callable[[int, np.dtype, np.random.Generator], dict]
    impls: dict = field(default_factory=dict)
    arrays_moved: int = 3
    notes: dict = field(default_factory=dict)

    def prepare(self, impl: str, data: dict, n_threads: int):
        """The timed callable for ``impl``, or None if it lacks this loss."""
        p = self.impls.get(impl)
        return None if p is None else p(data, n_threads)


# ----------------------------------------------------------------- optional libraries

_torch_mod: Any = False  # False: not looked up yet; None: not installed
_sklearn_mod: Any = False
_reference_mod: Any = False


def _torch():
    global _torch_mod
    if _torch_mod is False:
        try:
            import torch

            _torch_mod = torch
        except Exception:  # ImportError, or a broken install
            _torch_mod = None
    return _torch_mod


def _sklearn_loss():
    global _sklearn_mod
    if _sklearn_mod is False:
        try:
            from sklearn._loss import loss as sk_loss

            _sklearn_mod = sk_loss
        except Exception:
            _sklearn_mod = None
    return _sklearn_mod


def _reference():
    global _reference_mod
    if _reference_mod is False:
        try:
            from fastloss import reference

            _reference_mod = reference
        except Exception:
            _reference_mod = None
    return _reference_mod


# ----------------------------------------------------------------- inputs

def _regression(n, dtype, rng):
    x = rng.standard_normal(n).astype(dtype)
    t = (x + rng.standard_normal(n)).astype(dtype)  # errors ~ N(0, 1): both Huber branches taken
    return {"args": (x, t)}


def _poisson(n, dtype, rng):
    x = (0.5 * rng.standard_normal(n)).astype(dtype)  # log rate
    t = rng.poisson(np.exp(x.astype(np.float64))).astype(dtype)  # counts
    return {"args": (x, t)}


def _gaussian(n, dtype, rng):
    x = rng.standard_normal(n).astype(dtype)
    t = (x + rng.standard_normal(n)).astype(dtype)
    var = rng.uniform(0.1, 2.0, n).astype(dtype)
    return {"args": (x, t, var)}


def _probabilities(n, dtype, rng):
    x = rng.uniform(0.01, 0.99, n).astype(dtype)
    t = (rng.random(n) < 0.5).astype(dtype)
    return {"args": (x, t)}


def _logits01(n, dtype, rng):
    x = rng.normal(0.0, 2.0, n).astype(dtype)
    t = (rng.random(n) < 0.5).astype(dtype)
    return {"args": (x, t)}


def _logits_pm1(n, dtype, rng):
    x = rng.normal(0.0, 2.0, n).astype(dtype)
    t = np.where(rng.random(n) < 0.5, -1.0, 1.0).astype(dtype)
    return {"args": (x, t)}


def _log_probabilities(n, dtype, rng):
    x = np.log(rng.uniform(0.01, 0.99, n)).astype(dtype)  # log q
    t = rng.uniform(0.0, 1.0, n).astype(dtype)  # p
    return {"args": (x, t)}


# ----------------------------------------------------------------- generic preparers

class _CacheOff:
    """Context of a "fresh" timing: fastloss's block cache off (limit 0),
    so every call gets new memory from the system, as before the cache."""

    def __enter__(self):
        self.old = fl.set_cache_limit(0)

    def __exit__(self, *exc):
        fl.set_cache_limit(self.old)


def fresh_outputs(call):
    """Mark a timed callable as "fresh": :func:`measure` runs it with the
    block cache off."""
    call.around = _CacheOff
    return call


def _fastloss_preparer(name: str, out: bool, cached: bool = True) -> Preparer:
    def prepare(data, n_threads):
        fn = getattr(fl, name, None)
        if fn is None:
            return None
        args, params = data["args"], data.get("params", {})
        if out:
            buf = np.empty_like(args[0])
            return lambda: fn(*args, **params, return_grad=True, out=buf, n_threads=n_threads)
        call = lambda: fn(*args, **params, return_grad=True, n_threads=n_threads)  # noqa: E731
        return call if cached else fresh_outputs(call)

    return prepare


def _numpy_preparer(name: str) -> Preparer:
    def prepare(data, n_threads):
        ref = _reference()
        fn = None if ref is None else getattr(ref, name, None)
        if fn is None:
            return None
        args, params = data["args"], data.get("params", {})
        return lambda: fn(*args, **params)

    return prepare


def _torch_preparer(loss: Callable, grad_args: tuple = (0,)) -> Preparer:
    """``loss(torch, F, *tensors, **params) -> scalar tensor``; the arguments at
    positions ``grad_args`` are leaves that require grad (input, and var for
    the Gaussian NLL).  One timed call: clear the grads (as ``zero_grad(
    set_to_none=True)``), forward, backward, take the gradients as arrays."""

    def prepare(data, n_threads):
        torch = _torch()
        if torch is None:
            return None
        import torch.nn.functional as F

        torch.set_num_threads(n_threads)
        warnings.filterwarnings("ignore", message=".*reduction: 'mean'", category=UserWarning)
        params = data.get("params", {})
        ts = [torch.from_numpy(a) for a in data["args"]]
        leaves = [ts[i].requires_grad_(True) for i in grad_args]

        def call():
            for leaf in leaves:
                leaf.grad = None
            value = loss(torch, F, *ts, **params)
            value.backward()
            return value.item(), [leaf.grad.numpy() for leaf in leaves]

        return call

    return prepare


def _sklearn_preparer(make: Callable) -> Preparer:
    """``make(sk_loss_module, **params) -> BaseLoss``; times
    ``loss_gradient(y_true=target, raw_prediction=input, ...)`` with
    preallocated outputs of the input's dtype."""

    def prepare(data, n_threads):
        sk = _sklearn_loss()
        if sk is None:
            return None
        x, t = data["args"][:2]
        obj = make(sk, **data.get("params", {}))
        loss_out, grad_out = np.empty_like(x), np.empty_like(x)

        def call():
            return obj.loss_gradient(y_true=t, raw_prediction=x, loss_out=loss_out,
                                     gradient_out=grad_out, n_threads=n_threads)

        return call

    return prepare


def pointwise_case(name, setup, params=None, torch=None, torch_grad_args=(0,), torch_composed=False,
                   sklearn=None, sklearn_note=None, arrays_moved=3) -> Case:
    """A pointwise Case from the fastloss name, its inputs and its rivals."""
    params = dict(params or {})

    def setup_with_params(n, dtype, rng):
        d = setup(n, dtype, rng)
        d.setdefault("params", dict(params))
        return d

    impls = {
        "fastloss": _fastloss_preparer(name, out=False, cached=False),
        "fastloss_cached": _fastloss_preparer(name, out=False),
        "fastloss_out": _fastloss_preparer(name, out=True),
        "numpy": _numpy_preparer(name),
    }
    notes = {}
    if torch is not None:
        impls["torch"] = _torch_preparer(torch, torch_grad_args)
        if torch_composed:
            notes["torch"] = "composed from torch ops (torch has no such loss)"
    if sklearn is not None:
        impls["sklearn"] = _sklearn_preparer(sklearn)
        if sklearn_note:
            notes["sklearn"] = sklearn_note
    return Case(name, "pointwise", setup_with_params, impls, arrays_moved, notes)


# ----------------------------------------------------------------- torch formulas

def _t_log_cosh(torch, F, x, t):
    d = x - t
    return (d + F.softplus(-2.0 * d) - math.log(2.0)).mean()  # log cosh d, overflow-safe


def _t_quantile(torch, F, x, t, quantile):
    r = t - x
    return torch.maximum(quantile * r, (quantile - 1.0) * r).mean()


def _t_focal(torch, F, x, t, alpha, gamma):
    # torchvision.ops.sigmoid_focal_loss, written out (torchvision won't import here)
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return loss.mean()


def _t_hinge(torch, F, x, t):
    return torch.clamp(1.0 - t * x, min=0.0).mean()


def _t_squared_hinge(torch, F, x, t):
    return torch.clamp(1.0 - t * x, min=0.0).square().mean()


# ----------------------------------------------------------------- the regression catalogue

def _gamma_data(n, dtype, rng):
    x = (0.5 * rng.standard_normal(n)).astype(dtype)  # raw prediction: log of the mean
    t = rng.gamma(2.0, np.exp(x.astype(np.float64)) / 2.0).astype(dtype)
    t = np.maximum(t, np.finfo(dtype).tiny)  # > 0 after rounding
    return {"args": (x, t)}


def _tweedie_data(n, dtype, rng):
    x = (0.5 * rng.standard_normal(n)).astype(dtype)
    t = np.where(rng.random(n) < 0.3, 0.0, rng.gamma(2.0, np.exp(x.astype(np.float64)) / 2.0)).astype(dtype)
    return {"args": (x, t)}  # compound Poisson-Gamma: exact zeros and positive amounts


def _positive_targets(n, dtype, rng):
    t = rng.uniform(1.0, 10.0, n)
    x = (t + rng.standard_normal(n)).astype(dtype)
    return {"args": (x, t.astype(dtype))}


def _grad_hess_case(fn_name, cls_name, setup, params, sklearn, sklearn_note) -> Case:
    """``cls_name.grad_hess`` (the Newton / gradient-boosting call), the row
    ``fn_name.grad_hess``, against scikit-learn's ``gradient_hessian`` with
    preallocated outputs."""
    params = dict(params)

    def setup_with_params(n, dtype, rng):
        d = setup(n, dtype, rng)
        d.setdefault("params", dict(params))
        return d

    def fastloss_prep(out):
        def prepare(data, n_threads):
            cls = getattr(fl, cls_name, None)
            if cls is None:
                return None
            obj = cls(**data["params"], reduction="sum", n_threads=n_threads)
            x, t = data["args"]
            if out:
                bufs = (np.empty_like(x), np.empty_like(x))
                return lambda: obj.grad_hess(x, t, out=bufs)
            return lambda: obj.grad_hess(x, t)
        return prepare

    def sklearn_prep(data, n_threads):
        sk = _sklearn_loss()
        if sk is None:
            return None
        x, t = data["args"]
        obj = sklearn(sk, **data["params"])
        g, h = np.empty_like(x), np.empty_like(x)
        return lambda: obj.gradient_hessian(y_true=t, raw_prediction=x, gradient_out=g, hessian_out=h,
                                            n_threads=n_threads)

    impls = {"fastloss": fastloss_prep(False), "fastloss_out": fastloss_prep(True), "sklearn": sklearn_prep}
    return Case(f"{fn_name}.grad_hess", "pointwise", setup_with_params, impls, 4,
                {"sklearn": f"{sklearn_note}.gradient_hessian"})


def _trimmed_case() -> Case:
    """fl.trimmed(x, t, HuberLoss(), trim=0.05): the fused kernel, the O(N) selection and the masked sum."""

    def setup(n, dtype, rng):
        d = _regression(n, dtype, rng)
        d["params"] = {"trim": 0.05}
        return d

    def fastloss_prep(out):
        def prepare(data, n_threads):
            if not hasattr(fl, "trimmed"):
                return None
            loss, (x, t) = fl.HuberLoss(delta=1.0), data["args"]
            if out:
                buf = np.empty_like(x)
                return lambda: fl.trimmed(x, t, loss, 0.05, return_grad=True, out=buf, n_threads=n_threads)
            return lambda: fl.trimmed(x, t, loss, 0.05, return_grad=True, n_threads=n_threads)
        return prepare

    def torch_trimmed(torch, F, x, t, trim):
        l = F.huber_loss(x, t, reduction="none")
        k = int(trim * l.numel())
        return torch.sort(l).values[k:l.numel() - k].mean()  # the trimmed mean by a full sort

    impls = {"fastloss": fastloss_prep(False), "fastloss_out": fastloss_prep(True),
             "torch": _torch_preparer(torch_trimmed)}
    return Case("trimmed", "pointwise", setup, impls, 3,
                {"torch": "trimmed Huber written with torch.sort (torch has no trimmed reduction)"})


def _t_gamma(torch, F, x, t):
    return (x + t * torch.exp(-x)).mean()


def _t_tweedie(torch, F, x, t, power):
    p = power
    return (torch.exp((2 - p) * x) / (2 - p) - t * torch.exp((1 - p) * x) / (1 - p)).mean()


def _t_pseudo_huber(torch, F, x, t, delta):
    return (delta * delta * (torch.sqrt(1 + ((x - t) / delta) ** 2) - 1)).mean()


def _t_fair(torch, F, x, t, c):
    a = (x - t).abs() / c
    return (c * c * (a - torch.log1p(a))).mean()


def _t_cauchy(torch, F, x, t, c):
    return (0.5 * c * c * torch.log1p(((x - t) / c) ** 2)).mean()


def _t_tukey(torch, F, x, t, c):
    z = x - t
    return torch.where(z.abs() <= c, c * c / 6 * (1 - (1 - (z / c) ** 2) ** 3), c * c / 6).mean()


def _t_expectile(torch, F, x, t, tau):
    r = t - x
    return (torch.where(r >= 0, tau, 1 - tau) * r * r).mean()


def _t_mape(torch, F, x, t):
    return (100 * (t - x).abs() / torch.clamp(t.abs(), min=1e-7)).mean()


def _t_msle(torch, F, x, t):
    return ((torch.log1p(torch.clamp(x, min=1e-7)) - torch.log1p(torch.clamp(t, min=1e-7))) ** 2).mean()


def _regression_cases() -> list:
    """The regression catalogue (fastloss._regression_losses) and the trimmed reduction."""
    return [
        pointwise_case("gamma_nll_loss", _gamma_data, torch=_t_gamma, torch_composed=True,
                       sklearn=lambda sk: sk.HalfGammaLoss(), sklearn_note="HalfGammaLoss"),
        _grad_hess_case("gamma_nll_loss", "GammaNLLLoss", _gamma_data, {}, lambda sk: sk.HalfGammaLoss(),
                        "HalfGammaLoss"),
        pointwise_case("tweedie_loss", _tweedie_data, {"power": 1.5}, torch=_t_tweedie, torch_composed=True,
                       sklearn=lambda sk, power: sk.HalfTweedieLoss(power=power),
                       sklearn_note="HalfTweedieLoss(power=1.5)"),
        _grad_hess_case("tweedie_loss", "TweedieLoss", _tweedie_data, {"power": 1.5},
                        lambda sk, power: sk.HalfTweedieLoss(power=power), "HalfTweedieLoss(power=1.5)"),
        pointwise_case("pseudo_huber_loss", _regression, {"delta": 1.0}, torch=_t_pseudo_huber, torch_composed=True),
        pointwise_case("fair_loss", _regression, {"c": 1.0}, torch=_t_fair, torch_composed=True),
        pointwise_case("cauchy_loss", _regression, {"c": 1.0}, torch=_t_cauchy, torch_composed=True),
        pointwise_case("tukey_biweight_loss", _regression, {"c": 4.685}, torch=_t_tukey, torch_composed=True),
        pointwise_case("expectile_loss", _regression, {"tau": 0.9}, torch=_t_expectile, torch_composed=True),
        pointwise_case("mean_absolute_percentage_error", _positive_targets, torch=_t_mape, torch_composed=True),
        pointwise_case("mean_squared_logarithmic_error", _positive_targets, torch=_t_msle, torch_composed=True),
        _trimmed_case(),
    ]


def pointwise_cases() -> list:
    """The registry of pointwise losses, in the order of the tables."""
    cases = [
        pointwise_case("mse_loss", _regression,
                       torch=lambda torch, F, x, t: F.mse_loss(x, t),
                       sklearn=lambda sk: sk.HalfSquaredError(),
                       sklearn_note="HalfSquaredError"),
        pointwise_case("l1_loss", _regression,
                       torch=lambda torch, F, x, t: F.l1_loss(x, t),
                       sklearn=lambda sk: sk.AbsoluteError()),
        pointwise_case("huber_loss", _regression, {"delta": 1.0},
                       torch=lambda torch, F, x, t, delta: F.huber_loss(x, t, delta=delta),
                       sklearn=lambda sk, delta: sk.HuberLoss(delta=delta)),
        pointwise_case("smooth_l1_loss", _regression, {"beta": 1.0},
                       torch=lambda torch, F, x, t, beta: F.smooth_l1_loss(x, t, beta=beta)),
        pointwise_case("log_cosh_loss", _regression, torch=_t_log_cosh, torch_composed=True),
        pointwise_case("quantile_loss", _regression, {"quantile": 0.9},
                       torch=_t_quantile, torch_composed=True,
                       sklearn=lambda sk, quantile: sk.PinballLoss(quantile=quantile)),
        pointwise_case("poisson_nll_loss", _poisson, {"log_input": True},
                       torch=lambda torch, F, x, t, log_input: F.poisson_nll_loss(x, t, log_input=log_input),
                       sklearn=lambda sk, log_input: sk.HalfPoissonLoss(),
                       sklearn_note="HalfPoissonLoss (log link)"),
        pointwise_case("gaussian_nll_loss", _gaussian,
                       torch=lambda torch, F, x, t, v: F.gaussian_nll_loss(x, t, v),
                       torch_grad_args=(0, 2), arrays_moved=5),
        pointwise_case("binary_cross_entropy", _probabilities,
                       torch=lambda torch, F, x, t: F.binary_cross_entropy(x, t)),
        pointwise_case("binary_cross_entropy_with_logits", _logits01,
                       torch=lambda torch, F, x, t: F.binary_cross_entropy_with_logits(x, t),
                       sklearn=lambda sk: sk.HalfBinomialLoss()),
        pointwise_case("sigmoid_focal_loss", _logits01, {"alpha": 0.25, "gamma": 2.0},
                       torch=_t_focal, torch_composed=True),
        pointwise_case("hinge_loss", _logits_pm1, torch=_t_hinge, torch_composed=True),
        pointwise_case("squared_hinge_loss", _logits_pm1, torch=_t_squared_hinge, torch_composed=True),
        pointwise_case("soft_margin_loss", _logits_pm1,
                       torch=lambda torch, F, x, t: F.soft_margin_loss(x, t)),
        pointwise_case("kl_div", _log_probabilities,
                       torch=lambda torch, F, x, t: F.kl_div(x, t, reduction="mean")),
    ]
    cases += _regression_cases()
    # Losses this build of fastloss does not have (yet) are left out ("fn.grad_hess" rows by their function).
    return [c for c in cases if hasattr(fl, c.name.split(".")[0])]


# ----------------------------------------------------------------- timing

def interleaved(fns: dict, repeat: int, min_time: float = 0.05, clock: Callable = time.perf_counter) -> dict:
    """Best mean time per call of each fn in ``fns`` (name -> callable),
    the fns timed round by round, so that a drift of the machine's load
    hits them all alike.  A fn with an ``around`` attribute (a context
    factory, see :func:`fresh_outputs`) is called inside it; ``clock`` may
    be a CPU-time clock (``time.process_time``).  Each fn is called enough
    times per round to last ``min_time`` wall seconds."""
    import contextlib

    def ctx(f):
        a = getattr(f, "around", None)
        return a() if a is not None else contextlib.nullcontext()

    best = {k: float("inf") for k in fns}
    number = {}
    for k, f in fns.items():
        with ctx(f):
            f()
            t0 = time.perf_counter()
            f()
            dt = max(time.perf_counter() - t0, 1e-6)
        number[k] = max(1, int(min_time / dt))
    # A fn whose context differs from the one before it (the block cache
    # switched off for a "fresh" fn, or back on after it) gets one untimed
    # call first: switching the cache off releases its idle blocks, and the
    # default call after it would otherwise time mapping a new gradient
    # once a round -- every call of a round, for calls slower than min_time
    # (CE 2048 x 32000 float32: "cached" 86.6 ms against out= 63.7 in the
    # 2026-11-30 09:29 run, 61 against 63 measured alone).
    prev = None
    for _ in range(repeat):
        for k, f in fns.items():
            a = getattr(f, "around", None)
            with ctx(f):
                if a is not prev:
                    f()
                t0 = clock()
                for _ in range(number[k]):
                    f()
                best[k] = min(best[k], (clock() - t0) / number[k])
            prev = a
    return best


def _clock(fn, number):
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return time.perf_counter() - t0


# A measurement is "noisy" when its median repeat is more than NOISY times
# its best: the machine stalled the calls (other processes, the scheduler)
# often enough that the minimum is not confirmed, and no ratio is printed
# from it.
NOISY = 2.0
MAX_REPEATS = 200


def measure(fn, repeat=5, min_time=0.02, max_total=3.0, min_total=0.2) -> dict:
    """Time ``fn()`` as ``timeit`` does: one warmup call, then ``repeat``
    repeats of ``number`` calls, ``number`` chosen so a repeat lasts at least
    ``min_time`` seconds.  Short calls get more repeats: they go on until the
    timed calls add up to ``min_total`` seconds (at most MAX_REPEATS), so
    that a few scheduler stalls of milliseconds cannot hit every repeat.
    Returns the best (minimum) seconds per call, the median, the raw
    per-call times and ``noisy`` (median > NOISY x best).  For slow calls
    (one call >= min_time) the repeats are cut so the timed calls stay near
    ``max_total`` seconds (at least one after the warmup), and a call slower
    than ``max_total`` is timed once, its warmup being the measurement.
    The garbage collector is off while timing.  A callable with an
    ``around`` attribute (a context manager class, see
    :func:`fresh_outputs`) is timed inside that context."""
    around = getattr(fn, "around", None)
    ctx = around() if around is not None else None
    gc_was = gc.isenabled()
    gc.disable()
    if ctx is not None:
        ctx.__enter__()
    try:
        t_warm = _clock(fn, 1)
        if t_warm >= max_total:  # very slow (the NumPy reference at large N): one call is the figure
            return {"best": t_warm, "median": t_warm, "number": 1, "repeat": 1, "times": [t_warm],
                    "single_call": True, "noisy": False}
        if t_warm >= min_time:
            number = 1
            repeat = max(1, min(repeat, int(max_total / t_warm)))
        else:
            number = max(1, math.ceil(min_time / max(t_warm, 1e-9)))
            t = _clock(fn, number)  # calibration, also a sample
            while t < 0.5 * min_time and number < 10**7:  # the warmup was slower than steady state
                number *= 2
                t = _clock(fn, number)
        times = []
        if number > 1:
            times.append(t / number)
            repeat -= 1
        for _ in range(max(1, repeat)):
            times.append(_clock(fn, number) / number)
        if t_warm < min_time:
            while sum(times) * number < min_total and len(times) < MAX_REPEATS:
                times.append(_clock(fn, number) / number)
    finally:
        if ctx is not None:
            ctx.__exit__(None, None, None)
        if gc_was:
            gc.enable()
    best, median = min(times), statistics.median(times)
    return {"best": best, "median": median, "number": number, "repeat": len(times), "times": times,
            "noisy": len(times) >= 3 and median > NOISY * best}


def stream_bandwidth(n_threads, n=10**7, repeat=5, min_time=0.02) -> dict:
    """STREAM-style add c = a + b on n float32 elements: bytes/second moved
    (3 arrays: two read, one written)."""
    from fastloss import _pointwise

    a = np.full(n, 1.0, np.float32)
    b = np.full(n, 2.0, np.float32)
    c = np.zeros(n, np.float32)
    r = measure(lambda: _pointwise.stream_add(a, b, c, n_threads), repeat, min_time)
    r["bytes"] = 12 * n
    r["gbs"] = 12 * n / r["best"] / 1e9
    r["n"] = n
    r["n_threads"] = n_threads
    return r


# ----------------------------------------------------------------- machine info

def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return "unknown"


BUSY_WINDOW = 0.5


def _cpu_times():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
    return sum(v), idle


def busy_now(window=BUSY_WINDOW):
    """The fraction of CPU time spent busy over the next ``window`` seconds
    (all CPUs, from /proc/stat), or None where that is not available.  The
    load average lags by minutes; this says whether the machine is busy now."""
    try:
        t0, i0 = _cpu_times()
        time.sleep(window)
        t1, i1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return None
    return 1.0 - (i1 - i0) / (t1 - t0) if t1 > t0 else None


def all_threads() -> int:
    """"all" threads: the CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def machine_info() -> dict:
    torch, sk = _torch(), _sklearn_loss()
    versions = {"python": sys.version.split()[0], "fastloss": fl.__version__, "numpy": np.__version__,
                "torch": getattr(torch, "__version__", None) if torch else None, "sklearn": None}
    if sk is not None:
        import sklearn

        versions["sklearn"] = sklearn.__version__
    info = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "nproc": os.cpu_count(),
        "cpus_available": all_threads(),
        "memory": _mem_total(),
        "versions": versions,
        "fastloss_config": fl.show_config(file=False),
        "reference_available": _reference() is not None,
    }
    try:
        info["loadavg"] = os.getloadavg()
    except OSError:
        pass
    info["busy_now"] = busy_now()
    try:  # OpenMP/BLAS runtimes in this process: several OpenMP runtimes compete for the cores
        from threadpoolctl import threadpool_info

        info["threadpools"] = [{k: d.get(k) for k in ("internal_api", "filepath", "num_threads")}
                               for d in threadpool_info()]
    except Exception:
        pass
    return info


# ----------------------------------------------------------------- report

def size_label(n: int) -> str:
    e = int(round(math.log10(n))) if n > 0 else 0
    return f"1e{e}" if n > 0 and 10**e == n else str(n)


def fmt_time(t) -> str:
    if t is None:
        return "-"
    if t < 1e-3:
        return f"{t * 1e6:.1f} us"
    if t < 1.0:
        return f"{t * 1e3:.2f} ms"
    return f"{t:.2f} s"


def fmt_ratio(r) -> str:
    if r is None:
        return "-"
    if r == "noisy":
        return "noisy"
    return f"{r:.1f}x" if r < 100 else f"{r:.0f}x"


# loss names shortened in the default (100-column) tables
SHORT = {"binary_cross_entropy_with_logits": "bce_with_logits", "binary_cross_entropy": "bce"}


def _geomean(xs):
    xs = [x for x in xs if x is not None and x > 0]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else None


def _table(rows, header, out):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = "  ".join(f"{h:<{w}}" if i == 0 else f"{h:>{w}}" for i, (h, w) in enumerate(zip(header, widths)))
    print(line, file=out)
    print("-" * len(line), file=out)
    for r in rows:
        print("  ".join(f"{str(c):<{w}}" if i == 0 else f"{str(c):>{w}}"
                        for i, (c, w) in enumerate(zip(r, widths))), file=out)


def _best(results, loss, n, dtype, threads, impl):
    r = results.get((loss, n, dtype, threads, impl))
    return None if r is None or "best" not in r else r["best"]


def _noisy(results, loss, n, dtype, threads, impl):
    r = results.get((loss, n, dtype, threads, impl))
    return bool(r and r.get("noisy"))


NOISY_NOTE = f"noisy: median repeat > {NOISY:g}x the best (stalls from other processes): no ratio"
# the columns of the default table (fits 100 columns); --wide prints all
NARROW = ("loss", "fl fresh", "fl cached", "fl out=", "torch", "sklearn", "torch/fl", "sk/fl", "%stream")


def print_block(cases, results, stream, n, dtype, threads, out=sys.stdout, big_n=10**6, wide=False):
    itemsize = np.dtype(dtype).itemsize
    bw = stream.get(threads, {}).get("gbs")
    header = ["loss", "fl fresh", "fl cached", "fl out=", "numpy", "torch", "sklearn",
              "numpy/fl", "torch/fl", "sk/fl", "fresh/out", "cached/out", "GB/s", "%stream", "bw floor"]
    rows, footnotes, ratios = [], {}, {k: [] for k in ("numpy", "torch", "sklearn", "out", "cout")}
    for c in cases:
        t = {impl: _best(results, c.name, n, dtype, threads, impl) for impl in IMPLS}
        noisy = {impl: _noisy(results, c.name, n, dtype, threads, impl) for impl in IMPLS}
        # rivals are set against the default call: cached (fresh where it was not timed)
        bk = "fastloss_cached" if t["fastloss_cached"] else "fastloss"
        base = t[bk]

        def ratio(impl):
            other = t[impl]
            if other is None or not base:
                return None
            if noisy[impl] or noisy[bk]:
                return "noisy"
            return other / base

        def vs_out(impl):
            if not t["fastloss_out"] or t[impl] is None:
                return None
            return "noisy" if noisy["fastloss_out"] or noisy[impl] else t[impl] / t["fastloss_out"]

        rn, rt, rs = ratio("numpy"), ratio("torch"), ratio("sklearn")
        ro, rc = vs_out("fastloss"), vs_out("fastloss_cached")
        for k, v in (("numpy", rn), ("torch", rt), ("sklearn", rs), ("out", ro), ("cout", rc)):
            ratios[k].append(None if v == "noisy" else v)
        gbs = pct = floor = None
        if n >= big_n and t["fastloss_out"]:
            nbytes = c.arrays_moved * itemsize * n
            gbs = nbytes / t["fastloss_out"] / 1e9
            if bw:
                pct = 100.0 * gbs / bw
                floor = nbytes / (bw * 1e9)
        if n >= big_n and t["fastloss_out"] and noisy["fastloss_out"]:
            gbs = pct = floor = None
        marks = {}
        for impl, note in c.notes.items():
            mark = footnotes.setdefault(note, "*" * (len(footnotes) + 1))
            marks[impl] = mark
        for impl in IMPLS:
            if noisy[impl]:
                marks[impl] = marks.get(impl, "") + "?"
                footnotes.setdefault(NOISY_NOTE, "?")
        cells = [fmt_time(t[i]) + marks.get(i, "") for i in IMPLS]
        rows.append([c.name if wide else SHORT.get(c.name, c.name)] + cells + [
            fmt_ratio(rn), fmt_ratio(rt), fmt_ratio(rs),
            "-" if ro is None else ("noisy" if ro == "noisy" else f"{ro:.2f}x"),
            "-" if rc is None else ("noisy" if rc == "noisy" else f"{rc:.2f}x"),
            "-" if gbs is None else f"{gbs:.1f}",
            "-" if pct is None else f"{pct:.0f}%",
            fmt_time(floor) if floor is not None else "-"])
    if not wide:
        keep = [header.index(h) for h in NARROW]
        header = [header[i] for i in keep]
        rows = [[r[i] for i in keep] for r in rows]
    title = f"N={size_label(n)}  {np.dtype(dtype).name}  threads={threads}"
    if n >= big_n and bw:
        title += f"  (STREAM add {bw:.1f} GB/s)"
    print(f"\n== {title} " + "=" * max(0, 60 - len(title)), file=out)
    _table(rows, header, out)
    g = {k: _geomean(v) for k, v in ratios.items()}
    parts = [f"{lab} {fmt_ratio(g[k])}" for k, lab in (("numpy", "numpy/fl"), ("torch", "torch/fl"),
                                                          ("sklearn", "sk/fl")) if g[k]]
    if g["out"]:
        parts.append(f"fresh/out= {g['out']:.2f}x")
    if g["cout"]:
        parts.append(f"cached/out= {g['cout']:.2f}x")
    if parts:
        print("geomean: " + ",  ".join(parts), file=out)
    for note, mark in footnotes.items():
        print(f"  {mark} {note}", file=out)


# ----------------------------------------------------------------- runner

def _progress(msg, end="\n"):
    print(msg, end=end, file=sys.stderr, flush=True)


def run_benchmark(cases, sizes, dtypes, threads, repeat=5, min_time=0.02, max_total=3.0,
                  out=sys.stdout, seed=0, stream_n=10**7, big_n=10**6, wide=False, min_total=0.2):
    """Run every measurement; print the tables as each (size, dtype) block
    completes.  Returns the raw results (JSON-ready).

    The STREAM add is measured at the start and again after each block of
    N >= big_n; the tables use the best bandwidth seen so far at each thread
    count, so a burst of load from other processes during one STREAM run does
    not inflate every %stream figure."""
    info = machine_info()
    print_header(info, out)
    torch = _torch()
    torch_threads0 = torch.get_num_threads() if torch is not None else None

    # The work list, for the progress counter.
    def n_jobs():
        k = len(threads)  # stream
        for _n in sizes:
            for _d in dtypes:
                k += len(threads) if _n >= big_n else 0  # stream again
                for c in cases:
                    k += "numpy" in c.impls
                    k += len(threads) * sum(i in c.impls for i in IMPLS if i != "numpy")
        return k

    total, done = n_jobs(), 0

    def step(label):
        nonlocal done
        done += 1
        _progress(f"[{done}/{total}] {label} ...", end="")

    stream, stream_runs = {}, []

    def measure_stream():
        for nt in threads:
            step(f"stream add float32 N={size_label(stream_n)} threads={nt}")
            r = stream_bandwidth(nt, stream_n, repeat, min_time)
            stream_runs.append(r)
            _progress(f" {r['gbs']:.1f} GB/s")
            if nt not in stream or r["gbs"] > stream[nt]["gbs"]:
                stream[nt] = r

    measure_stream()
    print("\nMemory bandwidth, STREAM-style add c = a + b (float32, "
          f"N={size_label(stream_n)}, 12 bytes/element):", file=out)
    for nt in threads:
        print(f"  threads={nt}: {stream[nt]['gbs']:.1f} GB/s ({fmt_time(stream[nt]['best'])})", file=out)
    out.flush()

    results = {}
    records = []
    rng = np.random.default_rng(seed)
    try:
        for n in sizes:
            for dtype in dtypes:
                dname = np.dtype(dtype).name
                for c in cases:
                    data = c.setup(n, np.dtype(dtype), rng)
                    # The NumPy reference is single-threaded: timed once, shown in every thread table.
                    plan = [("numpy", None)] + [(i, nt) for nt in threads for i in IMPLS if i != "numpy"]
                    for impl, nt in plan:
                        if impl not in c.impls:
                            continue
                        step(f"{c.name} {dname} N={size_label(n)} threads={nt if nt else 1} {IMPL_LABEL[impl]}")
                        rec = {"loss": c.name, "family": c.family, "n": n, "dtype": dname, "impl": impl,
                               "threads": nt if nt else 1}
                        if impl.startswith("fastloss"):
                            rec["bytes_moved"] = c.arrays_moved * np.dtype(dtype).itemsize * n
                        try:
                            fn = c.prepare(impl, data, nt if nt else 1)
                            if fn is None:
                                rec["skipped"] = "not available"
                                _progress(" not available")
                            else:
                                rec.update(measure(fn, repeat, min_time, max_total, min_total))
                                _progress(f" {fmt_time(rec['best'])}" + (" (noisy)" if rec["noisy"] else ""))
                            del fn
                        except Exception as e:  # one broken implementation must not stop the run
                            rec["error"] = f"{type(e).__name__}: {e}"
                            _progress(f" ERROR {rec['error']}")
                        records.append(rec)
                        for t in ([nt] if nt else threads):
                            results[(c.name, n, dname, t, impl)] = rec
                    del data
                if n >= big_n:
                    measure_stream()
                for nt in threads:
                    print_block(cases, results, stream, n, dname, nt, out, big_n, wide)
                out.flush()
    finally:
        if torch is not None:
            torch.set_num_threads(torch_threads0)

    print_legend(out, max_total, wide, min_total)
    if len(stream_runs) > len(threads):
        print("\nSTREAM add runs (the tables use the best so far):", file=out)
        for nt in threads:
            gbs = [r["gbs"] for r in stream_runs if r["n_threads"] == nt]
            print(f"  threads={nt}: {len(gbs)} runs, {min(gbs):.1f} to {max(gbs):.1f} GB/s", file=out)
    try:
        print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", file=out)
    except OSError:
        pass
    for r in records:
        if "error" in r:
            print(f"error: {r['loss']} {r['dtype']} N={size_label(r['n'])} threads={r['threads']} "
                  f"{r['impl']}: {r['error']}", file=out)
    return {
        "machine": info,
        "settings": {"sizes": sizes, "dtypes": [np.dtype(d).name for d in dtypes], "threads": threads,
                     "repeat": repeat, "min_time": min_time, "max_total": max_total, "min_total": min_total,
                     "seed": seed},
        "stream": [dict(v) for v in stream.values()],
        "stream_runs": stream_runs,
        "cases": [{"name": c.name, "family": c.family, "arrays_moved": c.arrays_moved,
                   "impls": sorted(c.impls), "notes": c.notes} for c in cases],
        "results": records,
    }


def print_header(info, out=sys.stdout):
    v = info["versions"]
    print("fastloss benchmark", file=out)
    print(f"  date     : {info['date']}", file=out)
    print(f"  machine  : {info['platform']}", file=out)
    print(f"  cpu      : {info['cpu']}, nproc={info['nproc']} (available {info['cpus_available']}), "
          f"memory {info['memory']}", file=out)
    if "loadavg" in info:
        print(f"  loadavg  : {' '.join(f'{x:.2f}' for x in info['loadavg'])}", file=out)
        busy = info.get("busy_now")
        if info["loadavg"][0] > 0.5 and busy is not None and busy < 0.15:
            # e.g. the compiler of the install step that just ran: the
            # 1-minute average decays for minutes after the machine went idle
            print(f"  note     : the load average reflects recent work; the CPUs are idle now "
                  f"({100 * busy:.0f} % busy over {BUSY_WINDOW:g} s)", file=out)
        elif info["loadavg"][0] > 0.5:
            print("  WARNING  : machine not idle (load average "
                  f"{info['loadavg'][0]:.2f}" + ("" if busy is None else f", {100 * busy:.0f} % busy now")
                  + "): multi-thread figures suffer most", file=out)
    print("  versions : " + ", ".join(f"{k} {v[k] if v[k] else '(not installed)'}" for k in v), file=out)
    if not info["reference_available"]:
        print("  note     : fastloss.reference is not importable; the numpy column is empty", file=out)
    cfg = info["fastloss_config"]
    print(f"  fastloss : openmp={cfg.get('openmp')} ({cfg.get('openmp_flavor')}), simd={cfg.get('simd_path')} "
          f"(built: {cfg.get('simd_paths_built')}),", file=out)
    print(f"             default threads={cfg.get('num_threads')}, OMP_NUM_THREADS={cfg.get('omp_num_threads_env')}, "
          f"compiler={cfg.get('compiler')}", file=out)
    print(f"             cflags: {cfg.get('cflags')}", file=out)
    omp = [d for d in info.get("threadpools", []) if d["internal_api"] in ("openmp", "openmp_intel", "openmp_llvm")]
    if omp:
        print("  openmp   : " + "; ".join(f"{os.path.basename(d['filepath'] or '?')} ({d['num_threads']} threads)"
                                        for d in omp), file=out)
    out.flush()


def print_legend(out=sys.stdout, max_total=3.0, wide=True, min_total=0.2):
    if not wide:
        print(f"""
How to read: times are the best (minimum) over repeats of the mean time per call (short calls are
  repeated for {min_total:g} s at least; a call slower than {max_total:g} s is timed once; "noisy": median > {NOISY:g}x best).
  fl fresh            fastloss value+grad, the default call with its block cache OFF: a newly
                      mapped gradient each call (what every call cost before the cache)
  fl cached           the same default call with the block cache ON (the library's default)
  fl out=             the same into a preallocated out= buffer
  torch, sklearn      PyTorch forward + backward; sklearn._loss loss_gradient (one more array out)
  X/fl                X's time / fastloss cached time: >1 means fastloss is that many times faster
  %stream             bytes the fused call moves / out= time, against the STREAM add bandwidth
  --wide adds numpy, fresh/out, cached/out, GB/s and the bandwidth floor (bench/README.md).""",
              file=out)
        return
    print(f"""
How to read: times are the best (minimum) over repeats of the mean time per call
  (short calls are repeated until the timed calls add up to {min_total:g} s; a call slower
  than {max_total:g} s is timed once; "noisy": the median repeat exceeds {NOISY:g}x the best,
  and no ratio is computed from it).
  fl fresh  fastloss value+grad (return_grad=True), the default call with fastloss's block cache
            OFF (set_cache_limit(0)): each call's gradient is memory newly mapped by the system
            (page faults + zeroing above ~32 MB); what every call cost before the cache
  fl cached the same default call with the block cache ON (the library's default): a large
            gradient reuses the block of the previous one once that array is dropped
  fl out=   the same, writing into a preallocated out= buffer
  numpy     fastloss.reference: the test oracle, plain NumPy in float64, slow on purpose (not tuned
            NumPy code); single thread, so timed once per size/dtype and shown in each thread table
  torch     PyTorch forward + backward on CPU tensors sharing the NumPy memory, torch.set_num_threads(threads)
  sklearn   sklearn._loss <Loss>.loss_gradient with preallocated loss_out/gradient_out of the
            input's dtype: per-element loss + gradient (no reduction, no 1/n) - it writes one more array
  X/fl      X's time / fastloss cached time (the default call): >1 means fastloss is that many
            times faster
  fresh/out fastloss fresh time / out= time (>1: what mapping a new gradient costs);
  cached/out the same for the cached call (1.0: the default call costs what out= does)
  GB/s      bytes the fused call must move (input, target, grad: 3 arrays x itemsize x N;
            Gaussian NLL 5) / fastloss out= time; %stream = that / STREAM add bandwidth at the same
            thread count; bw floor = bytes / STREAM bandwidth, the time a memory-bound kernel can't beat""",
          file=out)


def _parse_list(text, conv, what):
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise ValueError(f"--{what}: empty list")
    vals = []
    for s in items:
        try:
            v = conv(s)
        except (ValueError, TypeError) as e:
            if str(e).startswith("--"):
                raise
            raise ValueError(f"--{what}: cannot read {s!r}") from None
        if v not in vals:
            vals.append(v)
    return vals


def _size(s):
    v = float(s)
    if not (v >= 1 and v == int(v)):
        raise ValueError(s)
    return int(v)


def _threads_item(s):
    if s.lower() == "all":
        return all_threads()
    v = int(s)
    if v < 1:
        raise ValueError(s)
    return v


DTYPE_CHOICES = ("float32", "float64")


def _dtype(s):
    if s not in DTYPE_CHOICES:
        raise ValueError(f"--dtypes: {s!r} is not one of {', '.join(DTYPE_CHOICES)}")
    return np.dtype(s)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.dtype):
        return o.name
    if isinstance(o, tuple):
        return list(o)
    return str(o)


#: the benchmark families of ``python -m fastloss bench --family``
FAMILIES = ("pointwise", "rows", "overlap", "embeddings", "ctc", "guide", "generative", "dtypes", "small")


def main_bench(args) -> int:
    """Entry point for ``python -m fastloss bench`` (args from argparse)."""
    quick = args.quick
    try:
        sizes = _parse_list(args.sizes, _size, "sizes") if args.sizes else (
            [10**3, 10**7] if quick else [10**3, 10**5, 10**7])
        dtypes = _parse_list(args.dtypes, _dtype, "dtypes") if args.dtypes else (
            [np.dtype(np.float32)] if quick else [np.dtype(np.float32), np.dtype(np.float64)])
        threads = _parse_list(args.threads or "1,all", _threads_item, "threads")
    except ValueError as e:
        print(f"python -m fastloss bench: {e}", file=sys.stderr)
        return 2
    repeat = args.repeat if args.repeat is not None else (3 if quick else 5)
    if repeat < 1:
        print("python -m fastloss bench: --repeat must be >= 1", file=sys.stderr)
        return 2
    families = [s.strip() for s in (getattr(args, "family", None) or "pointwise,rows").split(",") if s.strip()]
    bad = [f for f in families if f not in FAMILIES]
    if bad:
        print(f"python -m fastloss bench: unknown family {', '.join(bad)}; choose {', '.join(FAMILIES)}",
              file=sys.stderr)
        return 2
    picked = None
    if args.losses:
        picked, msg = _pick_losses(args.losses, families)
        if msg:
            print(f"python -m fastloss bench: {msg}", file=sys.stderr)
            return 2
        families = [f for f in families if picked[f]]
    t0 = time.perf_counter()
    raw = {}
    if "pointwise" in families:
        rc = _bench_pointwise(args, quick, sizes, dtypes, threads, repeat,
                              None if picked is None else picked["pointwise"])
        if isinstance(rc, int):
            return rc
        raw = rc
    if "rows" in families:
        from fastloss import bench_rows

        print("\n== cross-entropy (row over classes): fastloss vs PyTorch vs scikit-learn ==")
        rargs = ["--dtypes", ",".join(d.name for d in dtypes), "--repeat", str(repeat),
                 "--threads", ",".join(str(t) for t in threads)]
        if quick:
            rargs += ["--shapes", "8192x1000,65536x32"]
        bench_rows.main(rargs)
    if "overlap" in families:
        from fastloss import bench_overlap

        print("\n== set overlap (segmentation, boxes): fastloss vs smp / torchvision formulas in PyTorch ==")
        oargs = ["--repeat", str(repeat), "--threads", ",".join(str(t) for t in threads),
                 "--min-time", str(args.min_time)]
        if picked is not None:
            oargs += ["--losses", ",".join(picked["overlap"])]
        rc = bench_overlap.main(oargs)
        if rc:
            return rc
    if "guide" in families:
        from fastloss import bench_guide

        print("\n== suggest, diagnose and check=True against one read of the data and the loss's own call ==")
        bench_guide.main(["--repeat", str(repeat), "--threads", ",".join(str(t) for t in threads)]
                         + (["--n", "1e6"] if quick else []))
    if "embeddings" in families:
        from fastloss import bench_embeddings

        print("\n== embedding losses (row over features, in-batch): fastloss vs PyTorch ==")
        eargs = ["--dtypes", ",".join(d.name for d in dtypes), "--repeat", str(repeat),
                 "--threads", ",".join(str(t) for t in threads)]
        if picked is not None:
            eargs += ["--cases", ",".join(picked["embeddings"])]
        bench_embeddings.main(eargs)
    if "ctc" in families:
        from fastloss import bench_ctc

        print("\n== CTC (sequence): fastloss vs PyTorch ==")
        cargs = ["--dtypes", ",".join(d.name for d in dtypes) if args.dtypes else "float32",
                 "--repeat", str(repeat), "--threads", ",".join(str(t) for t in threads)]
        if quick:
            cargs += ["--shapes", "100x32x30x20,2000x1x100x400"]
        bench_ctc.main(cargs)
    if "generative" in families:
        from fastloss import bench_generative

        print("\n== GAN, VAE and RL objectives, CombinedLoss: fastloss vs their formulas in PyTorch ==")
        bench_generative.main(["--dtypes", ",".join(d.name for d in dtypes) if args.dtypes else "float32",
                               "--repeat", str(repeat), "--threads", ",".join(str(t) for t in threads)])
    if "dtypes" in families or "small" in families:
        from fastloss import bench_speed

        if "dtypes" in families:
            print("\n== float64 against float32, large logits against ordinary ones (value + gradient, out=) ==")
            bench_speed.dtypes_table(sizes[-1] if args.sizes else 10**7, threads, repeat)
        if "small" in families:
            print("\n== small calls: fastloss's overhead over np.empty_like ==")
            bench_speed.small_table(repeat=max(repeat, 3))
    elapsed = time.perf_counter() - t0
    raw["elapsed_s"] = elapsed
    print(f"\nbenchmark took {elapsed:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(raw, f, indent=1, default=_json_default)
        print(f"raw results written to {args.json}")
    return 0


# what each family benches (fastloss function names)
ROWS_BENCHED = ("cross_entropy",)
# (bench_generative's cases, as the functions they time)
GENERATIVE_BENCHED = ("gan_discriminator_loss", "gan_generator_loss", "gradient_penalty", "gaussian_kl_loss",
                      "vae_loss", "ppo_clip_loss", "value_loss", "policy_gradient_loss",
                      "policy_gradient_loss_from_logits", "ppo_clip_loss_from_logits")


def family_losses() -> dict:
    """{family: (every fastloss function of the family, the ones it benches)}."""
    from fastloss import _class_losses, _pointwise_losses, _regression_losses

    def fns(mod):
        return [n for n in mod.__all__ if n[0].islower()]

    from fastloss import _box_losses, _segmentation_losses, bench_overlap
    from fastloss import _embedding_losses, _sequence_losses, bench_embeddings
    from fastloss import _generative_losses, _rl_losses

    pw = [c.name for c in pointwise_cases()]
    # the regression catalogue runs on the pointwise driver; "fn.grad_hess" rows are cases of their own
    return {"pointwise": (fns(_pointwise_losses) + fns(_regression_losses) + [n for n in pw if "." in n], pw),
            "rows": (fns(_class_losses), list(ROWS_BENCHED)),
            "overlap": (fns(_segmentation_losses) + fns(_box_losses),
                        list(bench_overlap.SEG_CASES) + list(bench_overlap.BOX_CASES)),
            "embeddings": (fns(_embedding_losses), list(bench_embeddings.CASES)),
            "ctc": (fns(_sequence_losses), ["ctc_loss"]),
            "generative": (fns(_generative_losses) + fns(_rl_losses), list(GENERATIVE_BENCHED))}


def _pick_losses(text, families):
    """({family: [names]}, error message or None) for --losses."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    table = family_losses()
    picked = {f: [] for f in table}
    for name in names:
        fam = next((f for f, (every, _) in table.items() if name in every), None)
        if fam is None:
            every = sorted(n for f in families for n in table[f][0])
            return picked, f"--losses: {name!r} is not a fastloss loss function; the chosen families have: " \
                           f"{', '.join(every)}"
        if fam not in families:
            return picked, f"--losses: {name} is a {fam} loss; add --family {fam} (chosen: {', '.join(families)})"
        if name not in table[fam][1]:
            return picked, f"--losses: the {fam} benchmark does not time {name}; it times " \
                           f"{', '.join(table[fam][1])}"
        if name not in picked[fam]:
            picked[fam].append(name)
    return picked, None


def _bench_pointwise(args, quick, sizes, dtypes, threads, repeat, names=None):
    cases = pointwise_cases()
    if names is not None:
        by_name = {c.name: c for c in cases}
        cases = [by_name[s] for s in names]
    return run_benchmark(cases, sizes, dtypes, threads, repeat=repeat, min_time=args.min_time,
                         max_total=1.0 if quick else 3.0, wide=getattr(args, "wide", False),
                         min_total=getattr(args, "min_total", None) or 0.2)
