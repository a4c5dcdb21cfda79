"""The generative objectives: the VAE's Gaussian KL and ELBO, the GAN losses
and the gradient penalties.

PyTorch, optax, Keras and scikit-learn ship none of these as functions.
The per-element ones run on the pointwise driver (kernels in
``_src/fl_pointwise_generative_math.h``); the gradient penalty, a norm per
row, on the row-over-features driver (``gp_row`` in
``_src/fl_features_math.h``).  Their references are
``fastloss.reference.generative``.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from . import _check
from . import _validate as V
from ._config import _threads
from ._features_api import run_rows
from ._features_api import spec as ft_spec
from ._pointwise_api import GRAD, VALUE, grad_buffers, grad_request
from ._pointwise_api import run as pw_run
from ._pointwise_api import GRAD_HESS, _pair
from ._pointwise_api import spec as pw_spec
from ._pointwise_api import finish as pw_finish
from . import _pointwise
from ._alloc import empty as _empty
from ._chunks import _REQUEST

__all__ = [
    "gaussian_kl_loss", "vae_loss", "gan_discriminator_loss", "gan_generator_loss", "gradient_penalty",
    "GaussianKLLoss", "VAELoss", "GANDiscriminatorLoss", "GANGeneratorLoss", "GradientPenalty",
]

_P0 = (0.0, 0.0, 0.0, 0, 0)
REDUCTIONS = ("mean", "sum", "none")
BATCH_REDUCTIONS = ("mean", "sum")
GAN_KINDS = ("minimax", "nonsaturating", "least_squares", "wasserstein", "hinge")
GP_KINDS = ("wgan-gp", "r1")

_KL = pw_spec("gaussian_kl_loss", "gaussian_kl", batchmean=True)
_VAE_KL = pw_spec("vae_loss", "gaussian_kl", batchmean=True)
_VAE_BCE = pw_spec("vae_loss", "bce_logits", batchmean=True)
_VAE_MSE = pw_spec("vae_loss", "mse", batchmean=True)


# ------------------------------------------------------------------ helpers

def _request(fn, return_grad, op):
    return grad_request(return_grad, op, fn._grad_args)


def _bufs(out, mode, names, op):
    if out is not None and mode == VALUE:
        raise ValueError(f"{op}: out= is the gradient's buffer; pass return_grad=True with it")
    return grad_buffers(out, names, op) if mode == GRAD else {}


def _like(a, name, op, x, xname):
    """``a`` as an operand of x's dtype and exactly x's shape."""
    s = a.shape if isinstance(a, np.ndarray) else np.shape(V.asarray(a, name, op))
    if s != x.shape:
        raise ValueError(f"{op}: {name} must have the same shape as {xname}, got {xname}: {x.shape} and "
                         f"{name}: {s}")
    return V.as_operand(a, name, op, x.dtype, x.shape)


def _own(a, name, op, dt):
    """``a`` as an operand of dtype dt and its own shape."""
    a2 = a if isinstance(a, np.ndarray) else V.asarray(a, name, op)
    return V.as_operand(a2, name, op, dt, a2.shape)


def _buf(bufs, key, op, dt, shape, label):
    b = bufs.get(key)
    return None if b is None else V.check_out(b, label, op, dt, shape)


def _pick(grads: dict, names, value):
    return (value,) + tuple(grads[n] for n in names)


def _kind(kind, op, kinds, name="kind"):
    if isinstance(kind, str) and kind in kinds:
        return kind
    raise ValueError(f"{op}: {name} must be one of {', '.join(map(repr, kinds))}, got {kind!r}")


# ------------------------------------------------------------------ VAE

def _kl_run(m, lv, w, red, mode, bufs, n_threads, sp, scale=1.0, names=("mu", "logvar"), check=False):
    """The KL term on validated operands: value, or (value, g_mu, g_logvar).
    red "mean" is the driver's "batchmean" (the sum over the latent axis,
    averaged over the batch); "none" the per-sample sums over the latent
    axis (rows of the per-element terms)."""
    op = sp.op
    dred = "batchmean" if red == "mean" else red
    if mode == VALUE:
        res = pw_run(sp, m, lv, w, dred, VALUE, _P0, n_threads, scale=scale, check=check)
    else:
        o_m = _buf(bufs, names[0], op, m.dtype, m.shape, f"out ({names[0]})")
        o_l = _buf(bufs, names[1], op, m.dtype, m.shape, f"out ({names[1]})")
        res = pw_run(sp, m, lv, w, dred, GRAD, _P0, n_threads, out=(o_m, o_l), grads=("input", "target"),
                     scale=scale, check=check)
    if red != "none":
        return res
    per = _per_sample(res if mode == VALUE else res[0])
    return per if mode == VALUE else (per,) + res[1:]


def _per_sample(terms):
    """The per-element terms summed over all axes but the first (float64 sums)."""
    if terms.ndim <= 1:
        return terms
    return terms.reshape(terms.shape[0], math.prod(terms.shape[1:])).sum(axis=1, dtype=np.float64).astype(terms.dtype)


def _weight(weight, name, op, x):
    return None if weight is None else V.as_broadcast(weight, name, op, x.dtype, x.shape)


def gaussian_kl_loss(mu, logvar, *, weight=None, reduction="mean", return_grad=False, out=None, n_threads=None,
                     check=False):
    """KL divergence of a diagonal Gaussian from the standard normal (the VAE's KL term).

    ``KL(N(mu, exp(logvar)) || N(0, 1)) = -1/2 sum(1 + logvar - mu^2 -
    exp(logvar))`` (Kingma and Welling 2014, appendix B), per latent
    coordinate ``0.5 (mu^2 + exp(logvar) - 1 - logvar)``.  It is summed over
    the latent axis (all axes but the first) per sample, and
    ``reduction="mean"`` (the default) averages the samples' KL over the
    batch (the first axis): the VAE's usual convention, and *not* the mean
    over all elements (divide by the latent size for that).
    ``exp(logvar) - 1 - logvar`` is evaluated without cancellation for
    small logvar, and the value and both gradients are finite for logvar
    from -200 to +88 (float32's exp limit; where
    ``torch.distributions.kl_divergence`` of the two Normals gives inf and
    NaN).  PyTorch has no such function; this follows the formula above.

    Parameters
    ----------
    mu, logvar : array_like, same shape ``(N, D)`` (or any shape whose first
        axis is the batch; a 1-d array is N samples of a 1-d latent)
    weight : array_like, optional
        Per-element weights, broadcast to mu's shape (``w[:, None]`` for
        one weight per sample); the mean still divides by N.
    reduction : {"mean", "sum", "none"}
        "mean": the total divided by N (the batch size); "sum": the total;
        "none": the per-sample KL, shape ``(N,)`` (the terms summed over the
        latent axes in float64).
    return_grad : bool or tuple of names
        Also return the gradients ``(value, grad_mu, grad_logvar)``, in the
        same pass: ``d/dmu = mu``, ``d/dlogvar = (exp(logvar) - 1) / 2``
        (times the reduction's scale).
    out : ndarray or tuple of two ndarrays, optional
        Buffers for the gradients (mu's shape and dtype, C-contiguous).
    n_threads : int, optional
    check : bool
        Run :func:`fastloss.diagnose`'s checks on the operands first and warn
        each finding as a :class:`fastloss.LossWarning` (the default False
        costs one test).

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> mu, logvar = np.array([[0.0, 1.0]]), np.array([[0.0, np.log(2.0)]])
    >>> round(fl.gaussian_kl_loss(mu, logvar), 12)   # 0 + (1 + 2 - 1 - log 2) / 2
    0.65342640972
    >>> value, g_mu, g_lv = fl.gaussian_kl_loss(mu, logvar, return_grad=True)
    >>> g_mu, g_lv
    (array([[0., 1.]]), array([[0. , 0.5]]))
    """
    op = "gaussian_kl_loss"
    mode, names = _request(gaussian_kl_loss, return_grad, op)
    red = V.check_reduction(reduction, op, REDUCTIONS)
    bufs = _bufs(out, mode, names, op)
    m = V.as_input(mu, "mu", op)
    lv = _like(logvar, "logvar", op, m, "mu")
    res = _kl_run(m, lv, _weight(weight, "weight", op, m), red, mode, bufs, n_threads, _KL, check=check)
    if mode == VALUE:
        return res
    return _pick({"mu": res[1], "logvar": res[2]}, names, res[0])


gaussian_kl_loss._grad_args = ("mu", "logvar")
gaussian_kl_loss._class_axis = None


def _check_beta(beta, op):
    b = V.real(beta, "beta", op)
    if not (b >= 0 and math.isfinite(b)):
        raise ValueError(f"{op}: beta must be a finite number >= 0, got {beta!r}")
    return b


def vae_loss(input, target, mu, logvar, beta=1.0, recon="bce", *, weight=None, reduction="mean",
             return_grad=False, out=None, n_threads=None, check=False):
    """The VAE's negative ELBO (beta-VAE form): reconstruction + beta * KL, in one call.

    ``recon="bce"``: ``sum BCE_with_logits(input, target)`` (a Bernoulli
    decoder; input are the decoder's logits, target the data in [0, 1]);
    ``recon="mse"``: ``sum (input - target)^2`` (a Gaussian decoder;
    input is its mean).  The KL term is :func:`gaussian_kl_loss`.  With
    ``reduction="mean"`` (the default) both terms are summed over
    their features and averaged over the batch (the first axis, the same
    for input and mu): the per-sample negative ELBO of Kingma and Welling
    (2014), beta weighting the KL as Higgins et al. (2017); "sum" gives
    the batch's total.  PyTorch has no such function.

    Parameters
    ----------
    input : array_like ``(N, ...)``
        The decoder's logits ("bce") or mean ("mse").
    target : array_like, input's shape
        The data.
    mu, logvar : array_like ``(N, D)``, the encoder's outputs
    beta : float >= 0
    recon : {"bce", "mse"}
    weight : array_like ``(N,)``, optional
        Per-sample weights of both terms; the mean still divides by N.
    reduction : {"mean", "sum"}
    return_grad : bool or tuple of names
        Also return ``(value, grad_input, grad_mu, grad_logvar)``.
    out : ndarray or tuple of three ndarrays, optional
    n_threads : int, optional
    check : bool
        Run :func:`fastloss.diagnose`'s checks on the operands first and warn
        each finding as a :class:`fastloss.LossWarning` (the default False
        costs one test).

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> x = np.array([[1.0, 0.0]])
    >>> logits, mu, logvar = np.zeros((1, 2)), np.array([[1.0]]), np.array([[0.0]])
    >>> round(fl.vae_loss(logits, x, mu, logvar, beta=0.5), 12)   # 2 log 2 + 0.5 * 0.5
    1.63629436112
    """
    op = "vae_loss"
    mode, names = _request(vae_loss, return_grad, op)
    b = _check_beta(beta, op)
    rk = _kind(recon, op, ("bce", "mse"), "recon")
    red = V.check_reduction(reduction, op, BATCH_REDUCTIONS)
    bufs = _bufs(out, mode, names, op)
    x = V.as_input(input, "input", op)
    t = _like(target, "target", op, x, "input")
    m = _own(mu, "mu", op, x.dtype)
    lv = _like(logvar, "logvar", op, m, "mu")
    if x.ndim == 0 or m.ndim == 0 or x.shape[0] != m.shape[0]:
        raise ValueError(f"{op}: input and mu must have the same batch size (first axis), got input: {x.shape} "
                         f"and mu: {m.shape}")
    sp = _VAE_BCE if rk == "bce" else _VAE_MSE
    if check:   # the reconstruction's checks (recon decides the kinds); mu and logvar for NaN
        _check.check_call(op, x, t, others={"mu": m, "logvar": lv}, n_threads=n_threads, recon=rk)
    wx = wz = None
    if weight is not None:
        w = V.asarray(weight, "weight", op)
        if w.shape != (x.shape[0],):
            raise ValueError(f"{op}: weight must have shape ({x.shape[0]},) (one value per sample), got {w.shape}")
        wx = V.as_broadcast(w.reshape((-1,) + (1,) * (x.ndim - 1)), "weight", op, x.dtype, x.shape)
        wz = V.as_broadcast(w.reshape((-1,) + (1,) * (m.ndim - 1)), "weight", op, x.dtype, m.shape)
    dred = "batchmean" if red == "mean" else red
    gi = _buf(bufs, "input", op, x.dtype, x.shape, "out (input)")
    if gi is not None:
        V.check_no_overlap(gi, "out (input)", op, m, lv)
    one_pass = wx is None and _REQUEST.get() is None    # not a chunk of fastloss.dask (see _chunks)
    if mode == VALUE:
        if one_pass:
            return _vae_one_pass(sp, x, t, m, lv, red, b, VALUE, None, None, None, names, n_threads)
        return pw_run(sp, x, t, wx, dred, VALUE, _P0, n_threads) + _kl_run(m, lv, wz, red, VALUE, {}, n_threads,
                                                                             _VAE_KL, scale=b)
    if mode == GRAD:
        for k in ("mu", "logvar"):
            ob = _buf(bufs, k, op, m.dtype, m.shape, f"out ({k})")
            if ob is not None:
                V.check_no_overlap(ob, f"out ({k})", op, x, t)
    if one_pass:
        return _vae_one_pass(sp, x, t, m, lv, red, b, GRAD, gi, bufs.get("mu"), bufs.get("logvar"), names,
                             n_threads)
    vr, g_in = pw_run(sp, x, t, wx, dred, GRAD, _P0, n_threads, out=gi)
    vk, g_mu, g_lv = _kl_run(m, lv, wz, red, GRAD, bufs, n_threads, _VAE_KL, scale=b)
    return _pick({"input": g_in, "mu": g_mu, "logvar": g_lv}, names, vr + vk)


def _vae_one_pass(sp, x, t, m, lv, red, b, mode, gi, o_m, o_l, names, n_threads):
    """vae_loss without weights: the reconstruction and the KL term in one
    call of the pointwise driver (_pointwise.run_pair: one OpenMP team, each
    thread its share of both terms' blocks), each term the same bits as its
    own pw_run call; the checks, values and scales are pw_run's."""
    op = sp.op
    nt = _threads(n_threads, op)
    g_mu = g_lv = None
    if mode == GRAD:
        if gi is not None:
            V.check_no_overlap(gi, "out", op, x, t)
        if o_m is not None:
            V.check_no_overlap(o_m, "out", op, m, lv)
        if o_l is not None:
            V.check_no_overlap(o_l, "out (target)", op, m, lv, o_m)
        gi = _empty(x.shape, x.dtype) if gi is None else gi
        g_mu = _empty(m.shape, m.dtype) if o_m is None else o_m
        g_lv = _empty(m.shape, m.dtype) if o_l is None else o_l
    # "mean" is the driver's "batchmean": the sum divided by the batch size (x's and m's first axis)
    dred = "batchmean" if red == "mean" else red
    div = x.shape[0] if red == "mean" else 0
    gs = 1.0 / div if div else 1.0
    tr, bad_r, tk, bad_k = _pointwise.run_pair(sp.kid, _VAE_KL.kid, x.dtype is not V.F32, x, t, gi, None, None, gs,
                                               m, lv, g_mu, g_lv, None, gs * b if b != 1.0 else gs, mode, nt)
    for bad, spec in ((bad_r, sp), (bad_k, _VAE_KL)):  # neither kernel has a domain to leave; as pw_run would
        if bad and spec.on_bad is not None:
            spec.on_bad(x, t, None)
    vk = pw_finish(dred, False, tk, div)
    value = pw_finish(dred, False, tr, div) + (vk * b if b != 1.0 else vk)
    if mode == VALUE:
        return value
    return _pick({"input": gi, "mu": g_mu, "logvar": g_lv}, names, value)


vae_loss._grad_args = ("input", "mu", "logvar")
vae_loss._class_axis = None
vae_loss._own_shapes = True  # mu and logvar keep their own shape (fastloss.torch does not broadcast them)


# ------------------------------------------------------------------ terms, for fastloss.dask
# A loss whose value is a sum of pointwise driver calls over operands of their
# own shapes declares ``_terms(**its bound arguments)``: a list of DaskTerm,
# each a function with a loss's signature (one driver call) that fastloss.dask
# splits as any pointwise loss; the value is the terms' values added in order
# (as the loss adds them), each gradient the one term's gradient that has it.

class DaskTerm:
    """One driver call of a composite loss: ``fn(**args)``, and which of the
    loss's gradients each of ``fn``'s gradients is (``grads``: the term's
    gradient names to the loss's)."""

    def __init__(self, fn, args, grads):
        self.fn, self.args, self.grads = fn, args, grads


def _vae_recon(input, target, weight=None, *, recon, reduction, return_grad=False, n_threads=None, check=False):
    op = "vae_loss"
    x = V.as_input(input, "input", op)
    t = _like(target, "target", op, x, "input")
    if check:
        _check.check_call(op, x, t, n_threads=n_threads, recon=recon)
    wx = None
    if weight is not None:
        w = V.asarray(weight, "weight", op)
        wx = V.as_broadcast(w.reshape((-1,) + (1,) * (x.ndim - 1)), "weight", op, x.dtype, x.shape)
    sp = _VAE_BCE if recon == "bce" else _VAE_MSE
    dred = "batchmean" if reduction == "mean" else reduction
    return pw_run(sp, x, t, wx, dred, GRAD if return_grad else VALUE, _P0, n_threads)


def _vae_kl(input, target, weight=None, *, dtype, beta, reduction, return_grad=False, n_threads=None, check=False):
    op = "vae_loss"
    m = _own(input, "mu", op, np.dtype(dtype))
    lv = _like(target, "logvar", op, m, "mu")
    if check:   # mu and logvar are counted for NaN
        _check.check_call(op, m[:0], None, others={"mu": m, "logvar": lv}, n_threads=n_threads)
    wz = None
    if weight is not None:
        w = V.asarray(weight, "weight", op)
        wz = V.as_broadcast(w.reshape((-1,) + (1,) * (m.ndim - 1)), "weight", op, m.dtype, m.shape)
    return _kl_run(m, lv, wz, reduction, GRAD if return_grad else VALUE, {}, n_threads, _VAE_KL, scale=beta)


for _f, _g in ((_vae_recon, ("input",)), (_vae_kl, ("input", "target"))):
    _f._grad_args = _g
    _f._per_sample_args = ("weight",)  # (N,): split with the rows


def _vae_terms(input, target, mu, logvar, beta=1.0, recon="bce", *, weight=None, reduction="mean",
               return_grad=False, n_threads=None, check=False):
    op = "vae_loss"
    b = _check_beta(beta, op)
    rk = _kind(recon, op, ("bce", "mse"), "recon")
    red = V.check_reduction(reduction, op, BATCH_REDUCTIONS)
    if np.ndim(input) == 0 or np.ndim(mu) == 0 or np.shape(input)[0] != np.shape(mu)[0]:
        raise ValueError(f"{op}: input and mu must have the same batch size (first axis), got input: "
                         f"{np.shape(input)} and mu: {np.shape(mu)}")
    if weight is not None and np.shape(weight) != (np.shape(input)[0],):
        raise ValueError(f"{op}: weight must have shape ({np.shape(input)[0]},) (one value per sample), got "
                         f"{np.shape(weight)}")
    dt = np.float32 if np.dtype(getattr(input, "dtype", np.float64)) == np.float32 else np.float64
    common = dict(weight=weight, reduction=red, n_threads=n_threads, check=check)
    return [DaskTerm(_vae_recon, dict(input=input, target=target, recon=rk, **common), {"input": "input"}),
            DaskTerm(_vae_kl, dict(input=mu, target=logvar, dtype=dt, beta=b, **common),
                     {"input": "mu", "target": "logvar"})]


vae_loss._terms = _vae_terms


# ------------------------------------------------------------------ GAN

def _ls_targets(real_target, fake_target, op):
    return V.real(real_target, "real_target", op), V.real(fake_target, "fake_target", op)


def _smoothing(label_smoothing, kind, op):
    s = V.real(label_smoothing, "label_smoothing", op)
    if not 0 <= s < 1:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1), got {label_smoothing!r}")
    if s and kind not in ("minimax", "nonsaturating"):
        raise ValueError(f"{op}: label_smoothing applies to the logistic kinds ('minimax', 'nonsaturating'), "
                         f"got label_smoothing={label_smoothing!r} with kind={kind!r}")
    return s


def _d_terms(kind, s, b, a):
    """(real kernel, real params), (fake kernel, fake params) of the discriminator."""
    if kind in ("minimax", "nonsaturating"):
        # gan_sp: 1 softplus(-x) and 1 softplus(x), one softplus each (a hand-vectorized loop on x86-64-v3)
        real = ("gan_logistic", (1.0 - s, s)) if s else ("gan_sp", (1.0, -1.0))
        return real, ("gan_sp", (1.0, 1.0))
    if kind == "least_squares":
        return ("gan_square", (b, 0.5)), ("gan_square", (a, 0.5))
    if kind == "wasserstein":
        return ("gan_linear", (-1.0, 0.0)), ("gan_linear", (1.0, 0.0))
    return ("gan_relu", (1.0, -1.0)), ("gan_relu", (1.0, 1.0))


def _g_term(kind, c):
    if kind == "minimax":
        return "gan_sp", (-1.0, 1.0)     # -softplus(x)
    if kind == "nonsaturating":
        return "gan_sp", (1.0, -1.0)     # softplus(-x)
    if kind == "least_squares":
        return "gan_square", (c, 0.5)
    return "gan_linear", (-1.0, 0.0)


_GAN_SPECS: dict = {}


def _gan_spec(op, kernel):
    k = (op, kernel)
    if k not in _GAN_SPECS:
        _GAN_SPECS[k] = pw_spec(op, kernel)
    return _GAN_SPECS[k]


def _gan_term(op, kernel, params, x, w, red, mode, out, n_threads):
    # the target operand is not read by the GAN kernels: the input is passed again
    return pw_run(_gan_spec(op, kernel), x, x, w, red, mode, (params[0], params[1], 0.0, 0, 0), n_threads,
                  out=out)


def gan_discriminator_loss(real_logits, fake_logits, kind="nonsaturating", label_smoothing=0.0, real_target=1.0,
                           fake_target=0.0, *, real_weight=None, fake_weight=None, reduction="mean",
                           return_grad=False, out=None, n_threads=None, check=False):
    """The GAN discriminator's (critic's) loss, from its logits on real and generated samples.

    With ``E_r``, ``E_f`` the means over the real and the fake batch (which
    may differ in length) and ``sp(x) = log(1 + exp(x))``:

    - ``"minimax"``, ``"nonsaturating"`` (Goodfellow et al. 2014; the two
      differ only for the generator): ``E_r[sp(-x)] + E_f[sp(x)]``, the
      binary cross-entropy with targets 1 and 0; ``label_smoothing = s``
      makes the real target ``1 - s`` (one-sided smoothing, as TF-GAN):
      ``E_r[(1 - s) sp(-x) + s sp(x)]``.
    - ``"least_squares"`` (LSGAN, Mao et al. 2017):
      ``E_r[(x - b)^2] / 2 + E_f[(x - a)^2] / 2`` with ``b = real_target``,
      ``a = fake_target`` (defaults 1 and 0).
    - ``"wasserstein"`` (WGAN, Arjovsky et al. 2017): ``E_f[x] - E_r[x]``.
    - ``"hinge"`` (Lim and Ye 2017; Miyato et al. 2018):
      ``E_r[max(0, 1 - x)] + E_f[max(0, 1 + x)]``.

    The logistic forms are computed from the logits by softplus (no log of
    a sigmoid): finite for any finite logit.  PyTorch has no such function.

    Parameters
    ----------
    real_logits, fake_logits : array_like, any shapes
    kind : {"minimax", "nonsaturating", "least_squares", "wasserstein", "hinge"}
    label_smoothing : float in [0, 1)
        Only with the logistic kinds (a ValueError otherwise).
    real_target, fake_target : float
        LSGAN's b and a.
    real_weight, fake_weight : array_like, optional
        Per-element weights of the real and the fake terms (broadcast to
        their logits' shapes); the means still divide by the lengths.
    reduction : {"mean", "sum"}
        "sum" replaces the two means by sums.
    return_grad : bool or tuple of names
        Also return ``(value, grad_real, grad_fake)``.
    out : ndarray or tuple of two ndarrays, optional
    n_threads : int, optional
    check : bool
        Run :func:`fastloss.diagnose`'s checks on the operands first and warn
        each finding as a :class:`fastloss.LossWarning` (the default False
        costs one test).

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> real, fake = np.array([2.0, 0.5]), np.array([-1.0])
    >>> round(fl.gan_discriminator_loss(real, fake, kind="hinge"), 12)   # (0 + 0.5) / 2 + 0
    0.25
    >>> value, g_real, g_fake = fl.gan_discriminator_loss(real, fake, kind="wasserstein", return_grad=True)
    >>> value, g_real, g_fake
    (-2.25, array([-0.5, -0.5]), array([1.]))
    """
    op = "gan_discriminator_loss"
    mode, names = _request(gan_discriminator_loss, return_grad, op)
    k = _kind(kind, op, GAN_KINDS)
    s = _smoothing(label_smoothing, k, op)
    b, a = _ls_targets(real_target, fake_target, op)
    red = V.check_reduction(reduction, op, ("mean", "sum"))
    bufs = _bufs(out, mode, names, op)
    _threads(n_threads, op)
    xr = V.as_input(real_logits, "real_logits", op)
    xf = _own(fake_logits, "fake_logits", op, xr.dtype)
    (kr, pr), (kf, pf) = _d_terms(k, s, b, a)
    wr, wf = _weight(real_weight, "real_weight", op, xr), _weight(fake_weight, "fake_weight", op, xf)
    if check:   # both batches' outputs, as kind reads them
        _check.check_call(op, xr, xf, n_threads=n_threads, kind=k)
    if mode == VALUE:
        return (_gan_term(op, kr, pr, xr, wr, red, VALUE, None, n_threads)
                + _gan_term(op, kf, pf, xf, wf, red, VALUE, None, n_threads))
    o_r = _buf(bufs, "real_logits", op, xr.dtype, xr.shape, "out (real_logits)")
    o_f = _buf(bufs, "fake_logits", op, xf.dtype, xf.shape, "out (fake_logits)")
    if o_r is not None:
        V.check_no_overlap(o_r, "out (real_logits)", op, xf, o_f)
    if o_f is not None:
        V.check_no_overlap(o_f, "out (fake_logits)", op, xr)
    vr, gr = _gan_term(op, kr, pr, xr, wr, red, GRAD, o_r, n_threads)
    vf, gf = _gan_term(op, kf, pf, xf, wf, red, GRAD, o_f, n_threads)
    return _pick({"real_logits": gr, "fake_logits": gf}, names, vr + vf)


gan_discriminator_loss._grad_args = ("real_logits", "fake_logits")
gan_discriminator_loss._class_axis = None
gan_discriminator_loss._own_shapes = True


def _gan_d_term(input, weight=None, *, name, dtype, kernel, params, reduction, return_grad=False,
                n_threads=None, kind=None, check=False):
    op = "gan_discriminator_loss"
    x = V.as_input(input, name, op) if dtype is None else _own(input, name, op, np.dtype(dtype))
    if check:   # this batch's outputs in its role (real: the input, fake: the target)
        _check.check_call(op, *((x, None) if name == "real_logits" else (x[:0], x)), n_threads=n_threads,
                          kind=kind)
    return _gan_term(op, kernel, params, x, _weight(weight, f"{name[:4]}_weight", op, x), reduction,
                     GRAD if return_grad else VALUE, None, n_threads)


_gan_d_term._grad_args = ("input",)
_gan_d_term._static_args = ("params",)  # the kernel's parameters, not an operand


def _gan_d_terms(real_logits, fake_logits, kind="nonsaturating", label_smoothing=0.0, real_target=1.0,
                 fake_target=0.0, *, real_weight=None, fake_weight=None, reduction="mean", return_grad=False,
                 n_threads=None, check=False):
    op = "gan_discriminator_loss"
    k = _kind(kind, op, GAN_KINDS)
    s = _smoothing(label_smoothing, k, op)
    b, a = _ls_targets(real_target, fake_target, op)
    red = V.check_reduction(reduction, op, ("mean", "sum"))
    _threads(n_threads, op)
    (kr, pr), (kf, pf) = _d_terms(k, s, b, a)
    dt = np.float32 if np.dtype(getattr(real_logits, "dtype", np.float64)) == np.float32 else np.float64
    common = dict(reduction=red, n_threads=n_threads, kind=k, check=check)
    return [DaskTerm(_gan_d_term, dict(input=real_logits, weight=real_weight, name="real_logits", dtype=None,
                                       kernel=kr, params=pr, **common), {"input": "real_logits"}),
            DaskTerm(_gan_d_term, dict(input=fake_logits, weight=fake_weight, name="fake_logits", dtype=dt,
                                       kernel=kf, params=pf, **common), {"input": "fake_logits"})]


gan_discriminator_loss._terms = _gan_d_terms


def gan_generator_loss(fake_logits, kind="nonsaturating", gen_target=1.0, *, weight=None, reduction="mean",
                       return_grad=False, out=None, n_threads=None, check=False):
    """The GAN generator's loss, from the discriminator's logits on generated samples.

    With ``E`` the mean over the batch and ``sp(x) = log(1 + exp(x))``:
    ``"minimax"``: ``E[log(1 - D(x))] = -E[sp(x)]`` (the saturating
    original of Goodfellow et al. 2014); ``"nonsaturating"``:
    ``-E[log D(x)] = E[sp(-x)]``; ``"least_squares"``:
    ``E[(x - c)^2] / 2`` with ``c = gen_target`` (default 1);
    ``"wasserstein"`` and ``"hinge"``: ``-E[x]``.  Computed from the
    logits by softplus: finite for any finite logit.  PyTorch has no such
    function.

    Parameters
    ----------
    fake_logits : array_like, any shape
    kind : {"minimax", "nonsaturating", "least_squares", "wasserstein", "hinge"}
    gen_target : float
        LSGAN's c.
    weight : array_like, optional
        Per-element weights (broadcast); the mean still divides by the count.
    reduction : {"mean", "sum", "none"}
    return_grad, out, n_threads, check
        As :func:`gan_discriminator_loss` (one gradient).

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> value, grad = fl.gan_generator_loss(np.array([0.0, 0.0]), return_grad=True)
    >>> round(value, 12), grad                 # log 2; -sigmoid(-x) / 2
    (0.69314718056, array([-0.25, -0.25]))
    """
    op = "gan_generator_loss"
    mode, names = _request(gan_generator_loss, return_grad, op)
    k = _kind(kind, op, GAN_KINDS)
    c = V.real(gen_target, "gen_target", op)
    red = V.check_reduction(reduction, op, ("mean", "sum", "none"))
    bufs = _bufs(out, mode, names, op)
    kern, prm = _g_term(k, c)
    x = V.as_input(fake_logits, "fake_logits", op)
    if check:
        _check.check_call(op, x, None, n_threads=n_threads, kind=k)
    return _gan_term(op, kern, prm, x, _weight(weight, "weight", op, x), red, mode,
                     _buf(bufs, "fake_logits", op, x.dtype, x.shape, "out"), n_threads)


gan_generator_loss._grad_args = ("fake_logits",)
gan_generator_loss._class_axis = None

_GP = ft_spec("gradient_penalty", "gradient_penalty", ("grads",))


def gradient_penalty(grads, target_norm=1.0, kind="wgan-gp", *, weight=None, reduction="mean", return_grad=False,
                     out=None, n_threads=None, check=False):
    """Gradient penalties of a GAN critic, from its per-sample input gradients.

    ``"wgan-gp"`` (Gulrajani et al. 2017): ``E[(||g_n|| - target_norm)^2]``;
    ``"r1"`` (Mescheder et al. 2018): ``E[||g_n||^2]`` (target_norm unused).
    ``g_n`` is row n of ``grads`` (all axes but the first flattened: the
    gradient of D at sample n), the norm Euclidean, summed in float64.
    Multiply by the penalty weight (lambda = 10 in WGAN-GP, gamma / 2 in R1)
    yourself, or in a :class:`CombinedLoss`.  The gradient is with respect
    to ``grads``: ``2 (||g|| - t) g / ||g||`` (0 at ``g = 0``) and ``2 g``,
    so a PyTorch user who computed ``grads`` with ``create_graph=True`` can
    backpropagate through it (``fastloss.torch.gradient_penalty``).
    PyTorch has no such function.

    Parameters
    ----------
    grads : array_like ``(N, ...)``
    target_norm : float
    kind : {"wgan-gp", "r1"}
    weight : array_like ``(N,)``, optional
        Per-sample weights; the mean still divides by N.
    reduction : {"mean", "sum", "none"}
        "none": one value per sample, shape ``(N,)``.
    return_grad : bool
        Also return the gradient with respect to grads (its shape).
    out : ndarray, optional
    n_threads : int, optional
    check : bool
        Run :func:`fastloss.diagnose`'s checks on the operands first and warn
        each finding as a :class:`fastloss.LossWarning` (the default False
        costs one test).

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> g = np.array([[3.0, 4.0], [0.0, 1.0]])
    >>> fl.gradient_penalty(g)                   # ((5 - 1)^2 + 0) / 2
    8.0
    >>> fl.gradient_penalty(g, kind="r1")        # (25 + 1) / 2
    13.0
    """
    op = "gradient_penalty"
    mode, names = _request(gradient_penalty, return_grad, op)
    t = V.real(target_norm, "target_norm", op)
    k = _kind(kind, op, GP_KINDS)
    red = V.check_reduction(reduction, op, ("mean", "sum", "none"))
    bufs = _bufs(out, mode, names, op)
    g = V.as_input(grads, "grads", op)
    if g.ndim == 0:
        raise ValueError(f"{op}: grads must have at least 1 dimension (the samples), got a 0-d array")
    N = g.shape[0]
    D = math.prod(g.shape[1:])
    if D == 0:
        raise ValueError(f"{op}: grads must have at least one entry per sample, got shape {g.shape}")
    g2 = g.reshape(N, D)
    if check:
        _check.check_call(op, g, None, n_threads=n_threads)
    o = _buf(bufs, "grads", op, g.dtype, g.shape, "out")
    res = run_rows(_GP, (g2,), weight=weight, params=(t, 0.0, 0.0, int(k == "r1"), 0), reduction=red, mode=mode,
                   out=None if o is None else (o.reshape(N, D),), n_threads=n_threads, op=op)
    if mode == VALUE:
        return res
    return res[0], res[1].reshape(g.shape) if o is None else o


gradient_penalty._grad_args = ("grads",)
gradient_penalty._class_axis = None


# ------------------------------------------------------------------ classes

class _Objective:
    """Base of the ``nn``-style objects of the objectives here: the
    constructor keeps the options (checked by a first call on nothing);
    calling the object gives the value, ``value_and_grad`` the value and
    one gradient per differentiable operand."""

    _fn = None
    _options: tuple = ()

    def __init__(self, **opts):
        op = type(self).__name__
        nt = opts.pop("n_threads", None)
        if nt is not None:
            _threads(nt, op)
        self.n_threads = nt
        for k, v in opts.items():
            setattr(self, k, v)
        self._check(op)

    def _check(self, op):  # the options' errors at construction, named by the class
        pass

    def _kw(self):
        return {k: getattr(self, k) for k in self._options}

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={getattr(self, k)!r}' for k in self._options)})"


def _class_doc(fn, call):
    return (f"The object form of :func:`fastloss.{fn.__name__}`.\n\n"
            f"    ``loss({call})`` gives the value; ``loss.value_and_grad({call}, out=None)`` the value and the\n"
            f"    gradients of {', '.join(fn._grad_args)} in one pass.  See :func:`fastloss.{fn.__name__}`.\n")


class GaussianKLLoss(_Objective):
    __doc__ = _class_doc(gaussian_kl_loss, "mu, logvar") + """
    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> loss = fl.GaussianKLLoss(reduction="sum")
    >>> value, g_mu, g_lv = loss.value_and_grad(np.array([[1.0, 0.0]]), np.zeros((1, 2)))
    >>> value, g_mu
    (0.5, array([[1., 0.]]))
    """
    _grad_args = gaussian_kl_loss._grad_args
    _reductions = REDUCTIONS
    _class_axis = None
    _options = ("reduction",)

    def __init__(self, reduction="mean", *, n_threads: Optional[int] = None):
        super().__init__(reduction=V.check_reduction(reduction, "GaussianKLLoss", REDUCTIONS),
                         n_threads=n_threads)

    def __call__(self, mu, logvar, weight=None, *, check=False):
        return gaussian_kl_loss(mu, logvar, weight=weight, **self._kw(), n_threads=self.n_threads, check=check)

    def value_and_grad(self, mu, logvar, weight=None, out=None, *, wrt=None, check=False):
        return gaussian_kl_loss(mu, logvar, weight=weight, **self._kw(),
                                return_grad=True if wrt is None else tuple(wrt), out=out, n_threads=self.n_threads,
                                check=check)

    def grad_hess(self, mu, logvar, weight=None, out=None, *, check=False):
        """``(grad, hess)`` with respect to mu, the first operand (as
        ``GaussianNLLLoss.grad_hess`` differentiates its input only): the
        gradient ``mu`` and the diagonal Hessian 1, each times the weight
        and the reduction's scale (1/N for the batch's mean); ``out`` may
        be a pair ``(grad_out, hess_out)``."""
        op = "GaussianKLLoss"
        g_out, h_out = (None, None) if out is None else _pair(out, op)
        m = V.as_input(mu, "mu", op)
        lv = _like(logvar, "logvar", op, m, "mu")
        dred = "batchmean" if self.reduction == "mean" else self.reduction
        return pw_run(_KL, m, lv, _weight(weight, "weight", op, m), dred, GRAD_HESS, _P0, self.n_threads,
                      out=g_out, hess_out=h_out, check=check)


class VAELoss(_Objective):
    __doc__ = _class_doc(vae_loss, "input, target, mu, logvar") + """
    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> loss = fl.VAELoss(beta=2.0, recon="mse")
    >>> round(loss(np.ones((1, 3)), np.zeros((1, 3)), np.array([[1.0]]), np.array([[0.0]])), 12)
    4.0
    """
    _grad_args = vae_loss._grad_args
    _reductions = BATCH_REDUCTIONS
    _class_axis = None
    _own_shapes = True
    _options = ("beta", "recon", "reduction")

    def __init__(self, beta=1.0, recon="bce", reduction="mean", *, n_threads: Optional[int] = None):
        op = "VAELoss"
        super().__init__(beta=_check_beta(beta, op), recon=_kind(recon, op, ("bce", "mse"), "recon"),
                         reduction=V.check_reduction(reduction, op, BATCH_REDUCTIONS), n_threads=n_threads)

    def __call__(self, input, target, mu, logvar, weight=None, *, check=False):
        return vae_loss(input, target, mu, logvar, weight=weight, **self._kw(), n_threads=self.n_threads, check=check)

    def value_and_grad(self, input, target, mu, logvar, weight=None, out=None, *, wrt=None, check=False):
        return vae_loss(input, target, mu, logvar, weight=weight, **self._kw(),
                        return_grad=True if wrt is None else tuple(wrt), out=out, n_threads=self.n_threads, check=check)


class GANDiscriminatorLoss(_Objective):
    __doc__ = _class_doc(gan_discriminator_loss, "real_logits, fake_logits") + """
    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> loss = fl.GANDiscriminatorLoss(kind="least_squares")
    >>> loss(np.array([1.0, 0.0]), np.array([0.0]))   # ((0 + 1) / 2) / 2 + 0
    0.25
    """
    _grad_args = gan_discriminator_loss._grad_args
    _reductions = ("mean", "sum")
    _class_axis = None
    _own_shapes = True
    _options = ("kind", "label_smoothing", "real_target", "fake_target", "reduction")

    def __init__(self, kind="nonsaturating", label_smoothing=0.0, real_target=1.0, fake_target=0.0,
                 reduction="mean", *, n_threads: Optional[int] = None):
        op = "GANDiscriminatorLoss"
        k = _kind(kind, op, GAN_KINDS)
        s = _smoothing(label_smoothing, k, op)
        b, a = _ls_targets(real_target, fake_target, op)
        super().__init__(kind=k, label_smoothing=s, real_target=b, fake_target=a,
                         reduction=V.check_reduction(reduction, op, ("mean", "sum")), n_threads=n_threads)

    def __call__(self, real_logits, fake_logits, *, check=False):
        return gan_discriminator_loss(real_logits, fake_logits, **self._kw(), n_threads=self.n_threads, check=check)

    def value_and_grad(self, real_logits, fake_logits, out=None, *, wrt=None, check=False):
        return gan_discriminator_loss(real_logits, fake_logits, **self._kw(),
                                      return_grad=True if wrt is None else tuple(wrt), out=out,
                                      n_threads=self.n_threads, check=check)


class GANGeneratorLoss(_Objective):
    __doc__ = _class_doc(gan_generator_loss, "fake_logits") + """
    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> fl.GANGeneratorLoss(kind="wasserstein")(np.array([1.0, 3.0]))
    -2.0
    """
    _grad_args = gan_generator_loss._grad_args
    _reductions = REDUCTIONS
    _class_axis = None
    _options = ("kind", "gen_target", "reduction")

    def __init__(self, kind="nonsaturating", gen_target=1.0, reduction="mean", *, n_threads: Optional[int] = None):
        op = "GANGeneratorLoss"
        super().__init__(kind=_kind(kind, op, GAN_KINDS), gen_target=V.real(gen_target, "gen_target", op),
                         reduction=V.check_reduction(reduction, op, ("mean", "sum", "none")), n_threads=n_threads)

    def __call__(self, fake_logits, weight=None, *, check=False):
        return gan_generator_loss(fake_logits, weight=weight, **self._kw(), n_threads=self.n_threads, check=check)

    def value_and_grad(self, fake_logits, weight=None, out=None, *, wrt=None, check=False):
        return gan_generator_loss(fake_logits, weight=weight, **self._kw(),
                                  return_grad=True if wrt is None else tuple(wrt), out=out, n_threads=self.n_threads,
                                  check=check)


class GradientPenalty(_Objective):
    __doc__ = _class_doc(gradient_penalty, "grads") + """
    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> value, grad = fl.GradientPenalty(kind="r1").value_and_grad(np.array([[1.0, 2.0]]))
    >>> value, grad
    (5.0, array([[2., 4.]]))
    """
    _grad_args = gradient_penalty._grad_args
    _reductions = REDUCTIONS
    _class_axis = None
    _options = ("target_norm", "kind", "reduction")

    def __init__(self, target_norm=1.0, kind="wgan-gp", reduction="mean", *, n_threads: Optional[int] = None):
        op = "GradientPenalty"
        super().__init__(target_norm=V.real(target_norm, "target_norm", op), kind=_kind(kind, op, GP_KINDS),
                         reduction=V.check_reduction(reduction, op, ("mean", "sum", "none")), n_threads=n_threads)

    def __call__(self, grads, weight=None, *, check=False):
        return gradient_penalty(grads, weight=weight, **self._kw(), n_threads=self.n_threads, check=check)

    def value_and_grad(self, grads, weight=None, out=None, *, wrt=None, check=False):
        return gradient_penalty(grads, weight=weight, **self._kw(), return_grad=True if wrt is None else tuple(wrt),
                                out=out, n_threads=self.n_threads, check=check)


# ------------------------------------------------------------------ example calls (the fuzz harness)

def _declare_examples():
    from . import _examples as E

    def pick(rng, seq):
        return seq[int(rng.integers(0, len(seq)))]

    def batch(rng, size):
        return size if rng.random() < 0.9 else 0

    def gen_kl(rng, dtype, size):
        shape = (batch(rng, size), int(rng.integers(1, 9)))
        return E.Example({"mu": E.values(rng, "normal", shape, dtype), "logvar": E.values(rng, "normal", shape, dtype),
                          "reduction": pick(rng, REDUCTIONS)})

    def gen_vae(rng, dtype, size):
        n = batch(rng, size)
        xs, zs = (n, int(rng.integers(1, 13))), (n, int(rng.integers(1, 5)))
        return E.Example({"input": E.values(rng, "normal", xs, dtype), "target": E.values(rng, "unit", xs, dtype),
                          "mu": E.values(rng, "normal", zs, dtype), "logvar": E.values(rng, "normal", zs, dtype),
                          "beta": float(rng.uniform(0, 2)), "recon": pick(rng, ("bce", "mse")),
                          "reduction": pick(rng, BATCH_REDUCTIONS)})

    def gen_disc(rng, dtype, size):
        kind = pick(rng, GAN_KINDS)
        args = {"real_logits": E.values(rng, "normal", E.shape_nd(rng, size), dtype),
                "fake_logits": E.values(rng, "normal", E.shape_nd(rng, max(size // 2, 0)), dtype),
                "kind": kind, "real_target": 1.0, "fake_target": 0.0, "reduction": pick(rng, ("mean", "sum"))}
        if kind in ("minimax", "nonsaturating"):
            args["label_smoothing"] = float(rng.uniform(0, 0.3))
        return E.Example(args)

    def gen_gen(rng, dtype, size):
        return E.Example({"fake_logits": E.values(rng, "normal", E.shape_nd(rng, size), dtype),
                          "kind": pick(rng, GAN_KINDS), "gen_target": float(rng.uniform(0, 1)),
                          "reduction": pick(rng, ("mean", "sum", "none"))})

    def gen_gp(rng, dtype, size):
        shape = (batch(rng, size),) + tuple(int(rng.integers(1, 5)) for _ in range(int(rng.integers(0, 3))))
        return E.Example({"grads": E.values(rng, "normal", shape, dtype), "target_norm": 1.0,
                          "kind": pick(rng, GP_KINDS), "reduction": pick(rng, ("mean", "sum", "none"))})

    E.declare(gen_kl, gaussian_kl_loss, GaussianKLLoss)
    E.declare(gen_vae, vae_loss, VAELoss)
    E.declare(gen_disc, gan_discriminator_loss, GANDiscriminatorLoss)
    E.declare(gen_gen, gan_generator_loss, GANGeneratorLoss)
    E.declare(gen_gp, gradient_penalty, GradientPenalty)


_declare_examples()
