"""Textbook NumPy float64 versions of the generative and RL objectives (the
test oracle), from the papers' formulas; nothing is shared with the kernels.

Each function takes the fastloss function's operands and options (by
name; no ``out``/``n_threads``) and returns ``(value, grad_1, ...)``: one
gradient per differentiable operand, in the order of the fastloss
function's ``_grad_args``, of the sum for ``reduction="none"``.  Sums are
``math.fsum``; elementwise math in float64 with NumPy's own ``exp``,
``log1p``, ``logaddexp`` (no shared series or polynomial).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["gaussian_kl_loss", "vae_loss", "gan_discriminator_loss", "gan_generator_loss", "gradient_penalty",
           "policy_gradient_loss", "ppo_clip_loss", "value_loss", "td_loss",
           "policy_gradient_loss_from_logits", "ppo_clip_loss_from_logits", "ppo_stats"]


def _f(a):
    return np.asarray(a, dtype=np.float64)


def _reduce(terms, grads, reduction, n_mean):
    if not isinstance(grads, tuple):
        grads = (grads,)
    """(value, scaled grads) of per-element terms for a reduction; n_mean is
    the mean's divisor."""
    if reduction == "none":
        return (terms,) + tuple(grads)
    s = math.fsum(terms.ravel())
    if reduction == "sum":
        return (s,) + tuple(grads)
    if n_mean == 0:
        return (float("nan"),) + tuple(grads)
    return (s / n_mean,) + tuple(g / n_mean for g in grads)


def _w(terms, g, weight):
    """Per-element weights applied to terms and gradient."""
    if weight is None:
        return terms, g
    w = np.broadcast_to(_f(weight), terms.shape)
    return terms * w, g * w


def _softplus(x):
    return np.logaddexp(0.0, x)


def _sigmoid(x):
    return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))


# ------------------------------------------------------------------ VAE

def gaussian_kl_loss(mu, logvar, weight=None, reduction="mean"):
    """-1/2 sum(1 + logvar - mu^2 - exp(logvar)), Kingma and Welling (2014), app. B,
    summed over all axes but the first; "mean" averages the samples."""
    mu, lv = _f(mu), _f(logvar)
    w = np.ones_like(mu) if weight is None else np.broadcast_to(_f(weight), mu.shape)
    # exp(lv) - 1 - lv = expm1(lv) - lv
    terms = w * 0.5 * (mu * mu + (np.expm1(lv) - lv))
    g_mu, g_lv = w * mu, w * 0.5 * np.expm1(lv)
    N = mu.shape[0] if mu.ndim else 1
    if reduction == "none":
        per = np.array([math.fsum(r) for r in terms.reshape(N, -1)]) if mu.ndim > 1 else terms
        return per, g_mu, g_lv
    return _reduce(terms, (g_mu, g_lv), reduction, N)


def vae_loss(input, target, mu, logvar, beta=1.0, recon="bce", weight=None, reduction="mean"):
    """Reconstruction (summed BCE with logits or squared error) + beta KL, per sample."""
    x, t = _f(input), _f(target)
    if recon == "bce":
        terms = t * _softplus(-x) + (1 - t) * _softplus(x)
        g = _sigmoid(x) - t
    else:
        terms = (x - t) ** 2
        g = 2 * (x - t)
    N = x.shape[0]
    if weight is not None:
        wx = _f(weight).reshape((-1,) + (1,) * (x.ndim - 1))
        terms, g = terms * wx, g * wx
    wz = None if weight is None else _f(weight).reshape((-1,) + (1,) * (np.ndim(mu) - 1))
    div = N if reduction == "mean" else 1
    vk, gm, gl = gaussian_kl_loss(mu, logvar, wz, reduction)
    return (math.fsum(terms.ravel()) / div + beta * vk, g / div, beta * gm, beta * gl)


# ------------------------------------------------------------------ GAN

def _bce_logits(x, y):
    """y softplus(-x) + (1 - y) softplus(x) and its derivative sigmoid(x) - y."""
    return y * _softplus(-x) + (1 - y) * _softplus(x), _sigmoid(x) - y


def gan_discriminator_loss(real_logits, fake_logits, kind="nonsaturating", label_smoothing=0.0, real_target=1.0,
                           fake_target=0.0, real_weight=None, fake_weight=None, reduction="mean"):
    xr, xf = _f(real_logits), _f(fake_logits)
    if kind in ("minimax", "nonsaturating"):           # Goodfellow et al. 2014; one-sided smoothing
        lr, gr = _bce_logits(xr, 1.0 - label_smoothing)
        lf, gf = _bce_logits(xf, 0.0)
    elif kind == "least_squares":                       # Mao et al. 2017
        lr, gr = 0.5 * (xr - real_target) ** 2, xr - real_target
        lf, gf = 0.5 * (xf - fake_target) ** 2, xf - fake_target
    elif kind == "wasserstein":                         # Arjovsky et al. 2017
        lr, gr = -xr, -np.ones_like(xr)
        lf, gf = xf.copy(), np.ones_like(xf)
    else:                                               # hinge: Lim and Ye 2017
        lr, gr = np.maximum(0, 1 - xr), np.where(1 - xr > 0, -1.0, 0.0)
        lf, gf = np.maximum(0, 1 + xf), np.where(1 + xf > 0, 1.0, 0.0)
    lr, gr = _w(lr, gr, real_weight)
    lf, gf = _w(lf, gf, fake_weight)
    vr, gr = _reduce(lr, (gr,), reduction, xr.size)
    vf, gf = _reduce(lf, (gf,), reduction, xf.size)
    return vr + vf, gr, gf


def gan_generator_loss(fake_logits, kind="nonsaturating", gen_target=1.0, weight=None, reduction="mean"):
    x = _f(fake_logits)
    if kind == "minimax":                               # E log(1 - D) = -E softplus(x)
        terms, g = -_softplus(x), -_sigmoid(x)
    elif kind == "nonsaturating":                       # -E log D = E softplus(-x)
        terms, g = _softplus(-x), _sigmoid(x) - 1
    elif kind == "least_squares":
        terms, g = 0.5 * (x - gen_target) ** 2, x - gen_target
    else:
        terms, g = -x, -np.ones_like(x)
    terms, g = _w(terms, g, weight)
    return _reduce(terms, (g,), reduction, x.size)


def gradient_penalty(grads, target_norm=1.0, kind="wgan-gp", weight=None, reduction="mean"):
    """Gulrajani et al. 2017 (WGAN-GP) and Mescheder et al. 2018 (R1)."""
    g = _f(grads)
    N = g.shape[0]
    rows = g.reshape(N, -1) if g.size else g.reshape(N, max(1, int(np.prod(g.shape[1:]))))
    sq = np.array([math.fsum(r * r) for r in rows])
    nrm = np.sqrt(sq)
    if kind == "r1":
        terms, coef = sq, np.full(N, 2.0)
    else:
        terms = (nrm - target_norm) ** 2
        coef = np.where(nrm > 0, 2 * (nrm - target_norm) / np.where(nrm > 0, nrm, 1), 0.0)
    if weight is not None:
        terms, coef = terms * _f(weight), coef * _f(weight)
    grad = (coef[:, None] * rows).reshape(g.shape)
    return _reduce(terms, (grad,), reduction, N)


# ------------------------------------------------------------------ RL

def policy_gradient_loss(log_probs, advantages, weight=None, reduction="mean"):
    """REINFORCE (Williams 1992): -log pi(a|s) A, A a constant."""
    lp, a = _f(log_probs), _f(advantages)
    return _reduce(*_w(-lp * a, -a, weight), reduction, lp.size)


def ppo_clip_loss(log_probs, old_log_probs, advantages, clip_eps=0.2, dual_clip=None, weight=None, reduction="mean"):
    """Schulman et al. 2017, eq. 7, negated; dual clip of Ye et al. 2020."""
    lp, old, a = _f(log_probs), _f(old_log_probs), _f(advantages)
    r = np.exp(lp - old)
    s1 = r * a
    s2 = np.clip(r, 1 - clip_eps, 1 + clip_eps) * a
    obj = np.minimum(s1, s2)
    g = np.where(s1 <= s2, -r * a, 0.0)                 # d(-obj)/dlp; ties: the unclipped term
    if dual_clip is not None:
        dual = (a < 0) & (obj < dual_clip * a)
        obj = np.where(dual, dual_clip * a, obj)
        g = np.where(dual, 0.0, g)
    return _reduce(*_w(-obj, g, weight), reduction, lp.size)


def _vf(d, kind, delta):
    if kind == "mse":
        return 0.5 * d * d, d
    a = np.abs(d)
    return np.where(a <= delta, 0.5 * d * d, delta * (a - 0.5 * delta)), np.where(a <= delta, d, delta * np.sign(d))


def value_loss(values, returns, old_values=None, clip_eps=None, kind="mse", delta=1.0, weight=None,
               reduction="mean"):
    """0.5 (v - R)^2 (or Huber); with clipping as OpenAI baselines' ppo2:
    max((v - R)^2, (v_old + clip(v - v_old, -eps, eps) - R)^2) / 2."""
    v, R = _f(values), _f(returns)
    f1, g1 = _vf(v - R, kind, delta)
    if old_values is None:
        return _reduce(*_w(f1, g1, weight), reduction, v.size)
    vo = _f(old_values)
    vc = vo + np.clip(v - vo, -clip_eps, clip_eps)
    f2, g2 = _vf(vc - R, kind, delta)
    inside = np.abs(v - vo) <= clip_eps
    first = f1 >= f2
    return _reduce(*_w(np.maximum(f1, f2), np.where(first, g1, np.where(inside, g2, 0.0)), weight), reduction, v.size)


def td_loss(values, rewards, next_values, dones, gamma=0.99, kind="mse", delta=1.0, weight=None, reduction="mean"):
    """f(v - (r + gamma (1 - done) v')), the target a constant (Sutton and Barto, eq. 6.2)."""
    target = _f(rewards) + gamma * (1 - _f(dones)) * _f(next_values)
    return value_loss(values, target, kind=kind, delta=delta, weight=weight, reduction=reduction)


def ppo_stats(log_probs, old_log_probs, clip_eps=0.2):
    """What PPO implementations log: the fraction of elements with
    |r - 1| > clip_eps and mean((r - 1) - log r), r = exp(lp - old)
    (Schulman, "Approximating KL divergence", the k3 estimator)."""
    lr = _f(log_probs) - _f(old_log_probs)
    n = lr.size
    if n == 0:
        return {"clip_fraction": float("nan"), "approx_kl": float("nan")}
    r = np.exp(lr)
    return {"clip_fraction": np.count_nonzero(np.abs(r - 1) > clip_eps) / n,
            "approx_kl": math.fsum((np.expm1(lr) - lr).ravel()) / n}


def _log_softmax_rows(logits):
    z = _f(logits)
    m = np.max(z, axis=1, keepdims=True)
    lse = m + np.log(np.sum(np.exp(z - m), axis=1, keepdims=True))
    return z - lse


def _from_logits(logits, actions, weight, reduction, entropy_coef, f_and_fp, stats):
    """Rows of w (f(log p_a) - beta H(p)) and their gradient with respect to
    the logits: w (f'(log p_a) (onehot_a - p) + beta p (log p + H)).
    Classes of probability 0 add nothing (the limit of p log p)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return _from_logits_body(logits, actions, weight, reduction, entropy_coef, f_and_fp, stats)


def _from_logits_body(logits, actions, weight, reduction, entropy_coef, f_and_fp, stats):
    logp = _log_softmax_rows(logits)
    N, A = logp.shape
    act = np.asarray(actions).astype(np.int64)
    p = np.exp(logp)
    plogp = np.where(p > 0, p * logp, 0.0)
    H = -np.array([math.fsum(r) for r in plogp]) if N else np.zeros(0)
    lpa = logp[np.arange(N), act]
    f, fp = f_and_fp(lpa)
    terms = f - entropy_coef * H if entropy_coef != 0 else f
    onehot = np.zeros((N, A))
    onehot[np.arange(N), act] = 1.0
    ent_g = np.where(p > 0, p * (logp + H[:, None]), 0.0)
    grad = fp[:, None] * (onehot - p) + (entropy_coef * ent_g if entropy_coef != 0 else 0.0)
    if weight is not None:
        w = _f(weight)
        terms, grad = terms * w, grad * w[:, None]
    if stats is not None:
        stats["entropy"] = math.fsum(H) / N if N else float("nan")
    return _reduce(terms, (grad,), reduction, N), lpa


def policy_gradient_loss_from_logits(logits, actions, advantages, entropy_coef=0.0, weight=None,
                                     reduction="mean", stats=None):
    """REINFORCE from logits: -log softmax(z)_a A - beta H(softmax(z)) per row."""
    a = _f(advantages)
    res, _ = _from_logits(logits, actions, weight, reduction, entropy_coef,
                          lambda lp: (np.where(a != 0, -a * lp, 0.0), -a), stats)
    return res


def ppo_clip_loss_from_logits(logits, actions, old_log_probs, advantages, clip_eps=0.2, dual_clip=None,
                              entropy_coef=0.0, weight=None, reduction="mean", stats=None):
    """PPO's clipped surrogate (as ppo_clip_loss) of log softmax(z)_a, minus beta H."""
    a, old = _f(advantages), _f(old_log_probs)

    def f(lp):
        _, g = ppo_clip_loss(lp, old, a, clip_eps, dual_clip, reduction="none")
        r = np.exp(lp - old)
        obj = np.minimum(r * a, np.clip(r, 1 - clip_eps, 1 + clip_eps) * a)
        if dual_clip is not None:
            obj = np.where((a < 0) & (obj < dual_clip * a), dual_clip * a, obj)
        return -obj, g

    res, lpa = _from_logits(logits, actions, weight, reduction, entropy_coef, f, stats)
    if stats is not None:
        stats.update(ppo_stats(lpa, old, clip_eps))
    return res
