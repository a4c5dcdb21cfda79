"""Pictures of every loss, drawn from the fastloss kernels themselves.

Each loss has a *recipe*: a function that evaluates the loss's fused kernel
(value, gradient and diagonal Hessian, ``reduction="none"``) over a grid of
residuals or logits, for its main parameter at two to four values, and
draws the three curves side by side.  The recipes are a registry keyed by
the loss's function name (:data:`RECIPES`); a family added to fastloss adds
a recipe with :func:`recipe`, and ``tests/test_plot.py`` checks that every
public loss has one.

``python -m fastloss plot huber_loss --out huber.png`` draws one loss;
``python -m fastloss plot --all --out docs/gallery/`` writes the gallery
(one PNG per loss and an index, ``README.md``).

matplotlib is optional (``pip install 'fastloss[plot]'``): importing
fastloss, or this module, does not import it; drawing does, and says which
extra to install when it is missing.  The figures are built with
``matplotlib.figure.Figure`` (no pyplot, no global backend state) and
saved with the Agg renderer.

Examples
--------
>>> import fastloss.plot as flp
>>> "huber_loss" in flp.RECIPES and "cross_entropy" in flp.RECIPES
True
>>> fig = flp.figure("huber_loss")            # needs matplotlib
>>> [ax.get_title() for ax in fig.axes]
['value', 'gradient d/d input', 'Hessian (diagonal)']
"""
from __future__ import annotations

import os
from typing import Callable, NamedTuple, Optional

import numpy as np

__all__ = ["RECIPES", "Recipe", "recipe", "figure", "save", "save_all", "NO_RECIPE"]

#: Figure size in inches and the default resolution: 9 x 2.6 in at 72 dpi is
#: a 648 x 187 PNG of a few tens of KB.
FIGSIZE = (9.0, 2.6)
DPI = 72
_EXTRA = "pip install 'fastloss[plot]'"


class Recipe(NamedTuple):
    """How to draw one loss: ``draw(axes)`` fills the three axes (value,
    gradient, Hessian); ``xlabel`` names the horizontal axis; ``caption``
    says what is varied."""
    name: str
    draw: Callable
    xlabel: str
    caption: str


#: The registry: function name -> Recipe.
RECIPES: dict = {}

#: Public names that have no picture, and why.
NO_RECIPE = {"cross_entropy_hvp": "a Hessian-vector product, not a loss: cross_entropy's picture shows "
                                  "the Hessian's diagonal",
             "ctc_loss": "a sequence loss: its value is a sum over alignments, with no curve in one variable",
             "CTCLoss": "the class of ctc_loss"}


def recipe(name: str, xlabel: str, caption: str):
    """Register the decorated ``draw(axes)`` as the recipe of loss ``name``."""
    def deco(fn):
        RECIPES[name] = Recipe(name, fn, xlabel, caption)
        return fn
    return deco


def _matplotlib():
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - exercised with matplotlib hidden
        raise ImportError(f"fastloss.plot needs matplotlib, which is not installed: {_EXTRA}") from exc
    return Figure


def _resolve(name: str) -> str:
    if name in RECIPES:
        return name
    from ._diagnose import _BY_CLASS

    if name in _BY_CLASS and _BY_CLASS[name] in RECIPES:
        return _BY_CLASS[name]
    if name in NO_RECIPE:
        raise ValueError(f"plot: {name} has no picture ({NO_RECIPE[name]})")
    raise ValueError(f"plot: no picture of {name!r}; the losses drawn are: {', '.join(sorted(RECIPES))}")


def figure(name: str, *, figsize=FIGSIZE):
    """The picture of loss ``name`` (function or class name) as a
    matplotlib ``Figure``: value, gradient and Hessian side by side."""
    Figure = _matplotlib()
    r = RECIPES[_resolve(name)]
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, title in zip(axes, ("value", "gradient d/d input", "Hessian (diagonal)")):
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.axhline(0, color="0.75", lw=0.6, zorder=0)
        ax.set_xlabel(r.xlabel, fontsize=7)
    r.draw(axes)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=6.5, frameon=False)
    fig.suptitle(f"{r.name}: {r.caption}", fontsize=8.5)
    return fig


def save(name: str, out, *, dpi: int = DPI) -> str:
    """Draw loss ``name`` into the PNG file ``out``; returns the path."""
    fig = figure(name)
    fig.savefig(out, dpi=dpi, format="png", metadata={"Software": None})
    return os.fspath(out)


def save_all(outdir, *, dpi: int = DPI) -> list:
    """Write every registered picture to ``outdir/<name>.png`` and an index
    ``outdir/README.md``; returns the PNG paths."""
    os.makedirs(outdir, exist_ok=True)
    paths, lines = [], ["# The fastloss gallery", "",
                        "Value, gradient and diagonal Hessian of every loss, computed by the fastloss kernels "
                        "(`reduction=\"none\"`). Regenerate with `python -m fastloss plot --all --out docs/gallery/`.",
                        ""]
    for name in sorted(RECIPES):
        p = os.path.join(outdir, f"{name}.png")
        save(name, p, dpi=dpi)
        paths.append(p)
        lines += [f"## {name}", "", f"{RECIPES[name].caption}", "", f"![{name}]({name}.png)", ""]
    if NO_RECIPE:
        lines += ["## Not drawn", ""] + [f"- `{k}`: {v}" for k, v in sorted(NO_RECIPE.items())] + [""]
    with open(os.path.join(outdir, "README.md"), "w") as f:
        f.write("\n".join(lines))
    return paths


# ---------------------------------------------------------------- drawing helpers

def _curves(axes, x, value, grad, hess, label=None, **style):
    for ax, y in zip(axes, (value, grad, hess)):
        ax.plot(x, y, label=label, lw=1.3, **style)


def _pointwise(axes, loss, x, t, label=None, extra=(), **style):
    """Evaluate a pointwise loss object (reduction="none") on input x, target t."""
    value, grad = loss.value_and_grad(x, t, *extra)[:2]
    _, hess = loss.grad_hess(x, t, *extra)
    _curves(axes, x, value, grad, hess, label, **style)


def _rows(axes, loss, z, C=4, label=None, **style):
    """A row loss against the margin z of the true class (logit z for class 0,
    0 for the other C - 1 classes; label 0): the value, and the gradient and
    Hessian entries of the true class's logit."""
    x = np.zeros((z.size, C))
    x[:, 0] = z
    t = np.zeros(z.size, dtype=np.int64)
    value, grad = loss.value_and_grad(x, t)
    _, hess = loss.grad_hess(x, t)
    _curves(axes, z, value, grad[:, 0], hess[:, 0], label, **style)


_RESID = np.linspace(-3, 3, 601)
_LOGIT = np.linspace(-6, 6, 601)


def _fl():
    import fastloss

    return fastloss


# ---------------------------------------------------------------- regression

@recipe("mse_loss", "residual input - target", "(input - target)^2")
def _mse(axes):
    _pointwise(axes, _fl().MSELoss(reduction="none"), _RESID, np.zeros_like(_RESID))


@recipe("l1_loss", "residual input - target", "|input - target|; Hessian 0 (grad_hess returns 0)")
def _l1(axes):
    _pointwise(axes, _fl().L1Loss(reduction="none"), _RESID, np.zeros_like(_RESID))


@recipe("huber_loss", "residual input - target", "delta = 0.5, 1, 2")
def _huber(axes):
    for d in (0.5, 1.0, 2.0):
        _pointwise(axes, _fl().HuberLoss(delta=d, reduction="none"), _RESID, np.zeros_like(_RESID),
                   f"delta={d:g}")


@recipe("smooth_l1_loss", "residual input - target", "beta = 0.5, 1, 2 (Hessian 1/beta inside)")
def _smooth_l1(axes):
    for b in (0.5, 1.0, 2.0):
        _pointwise(axes, _fl().SmoothL1Loss(beta=b, reduction="none"), _RESID, np.zeros_like(_RESID),
                   f"beta={b:g}")


@recipe("log_cosh_loss", "residual input - target", "log(cosh(input - target))")
def _log_cosh(axes):
    _pointwise(axes, _fl().LogCoshLoss(reduction="none"), _RESID, np.zeros_like(_RESID))


@recipe("quantile_loss", "residual input - target", "quantile = 0.1, 0.5, 0.9; Hessian 0")
def _quantile(axes):
    for q in (0.1, 0.5, 0.9):
        _pointwise(axes, _fl().QuantileLoss(quantile=q, reduction="none"), _RESID, np.zeros_like(_RESID),
                   f"quantile={q:g}")


@recipe("poisson_nll_loss", "input (log-rate)", "log_input=True, target = 0, 1, 4")
def _poisson(axes):
    x = np.linspace(-3, 3, 601)
    for t in (0.0, 1.0, 4.0):
        _pointwise(axes, _fl().PoissonNLLLoss(reduction="none"), x, np.full_like(x, t), f"target={t:g}")


@recipe("gaussian_nll_loss", "residual input - target", "var = 0.5, 1, 2 (gradient and Hessian in input)")
def _gaussian(axes):
    for v in (0.5, 1.0, 2.0):
        _pointwise(axes, _fl().GaussianNLLLoss(reduction="none"), _RESID, np.zeros_like(_RESID), f"var={v:g}",
                   extra=(np.full_like(_RESID, v),))


# ---------------------------------------------------------------- binary

@recipe("binary_cross_entropy", "input (probability)", "target = 1 (solid), 0 (dashed), 0.7 (dotted)")
def _bce(axes):
    p = np.linspace(0.005, 0.995, 399)
    for t, ls in ((1.0, "-"), (0.0, "--"), (0.7, ":")):
        _pointwise(axes, _fl().BCELoss(reduction="none"), p, np.full_like(p, t), f"target={t:g}", ls=ls,
                   color="C0")
    axes[2].set_yscale("log")


@recipe("binary_cross_entropy_with_logits", "input (logit)", "pos_weight = 1, 3; target = 1 (solid), 0 (dashed)")
def _bce_logits(axes):
    fl = _fl()
    for i, pw in enumerate((1.0, 3.0)):
        loss = fl.BCEWithLogitsLoss(pos_weight=np.array([pw]), reduction="none")
        _pointwise(axes, loss, _LOGIT, np.ones_like(_LOGIT), f"pos_weight={pw:g}", color=f"C{i}")
    _pointwise(axes, fl.BCEWithLogitsLoss(reduction="none"), _LOGIT, np.zeros_like(_LOGIT), "target=0",
               ls="--", color="C0")


@recipe("sigmoid_focal_loss", "input (logit)", "target = 1, no alpha weighting; gamma = 0 (BCE), 1, 2, 5")
def _focal(axes):
    for g in (0.0, 1.0, 2.0, 5.0):
        _pointwise(axes, _fl().SigmoidFocalLoss(alpha=-1.0, gamma=g, reduction="none"), _LOGIT,
                   np.ones_like(_LOGIT), f"gamma={g:g}")


@recipe("hinge_loss", "input (score), target = 1", "max(0, 1 - target * input); Hessian 0")
def _hinge(axes):
    _pointwise(axes, _fl().HingeLoss(reduction="none"), _RESID, np.ones_like(_RESID))


@recipe("squared_hinge_loss", "input (score), target = 1", "max(0, 1 - target * input)^2")
def _sq_hinge(axes):
    _pointwise(axes, _fl().SquaredHingeLoss(reduction="none"), _RESID, np.ones_like(_RESID))


@recipe("soft_margin_loss", "input (score)", "log(1 + exp(-target * input)), target = 1 (solid), -1 (dashed)")
def _soft_margin(axes):
    for t, ls in ((1.0, "-"), (-1.0, "--")):
        _pointwise(axes, _fl().SoftMarginLoss(reduction="none"), _LOGIT, np.full_like(_LOGIT, t),
                   f"target={t:g}", ls=ls, color="C0")


@recipe("kl_div", "input (log q)", "pointwise p (log p - input) for p = 0.2, 0.5, 0.8: linear in input")
def _kl(axes):
    x = np.linspace(-5, 0, 501)
    for p in (0.2, 0.5, 0.8):
        _pointwise(axes, _fl().KLDivLoss(reduction="none"), x, np.full_like(x, p), f"p={p:g}")


# ---------------------------------------------------------------- rows of classes

@recipe("cross_entropy", "true-class logit z (3 other logits 0)", "C = 4; label_smoothing = 0, 0.1, 0.3")
def _ce(axes):
    for ls in (0.0, 0.1, 0.3):
        _rows(axes, _fl().CrossEntropyLoss(label_smoothing=ls, reduction="none"), _LOGIT,
              label=f"label_smoothing={ls:g}")


@recipe("nll_loss", "log-probability of the true class", "-input[target]: gradient -1, Hessian 0")
def _nll(axes):
    lp = np.linspace(-6, -0.01, 500)
    x = np.stack([lp, np.log(-np.expm1(lp))], axis=1)
    t = np.zeros(lp.size, dtype=np.int64)
    loss = _fl().NLLLoss(reduction="none")
    value, grad = loss.value_and_grad(x, t)
    _, hess = loss.grad_hess(x, t)
    _curves(axes, lp, value, grad[:, 0], hess[:, 0])


@recipe("softmax_focal_loss", "true-class logit z (3 other logits 0)", "C = 4; gamma = 0 (cross-entropy), 1, 2, 5")
def _softmax_focal(axes):
    for g in (0.0, 1.0, 2.0, 5.0):
        _rows(axes, _fl().SoftmaxFocalLoss(gamma=g, reduction="none"), _LOGIT, label=f"gamma={g:g}")


@recipe("poly1_cross_entropy", "true-class logit z (3 other logits 0)", "C = 4; epsilon = -1, 0 (cross-entropy), 2")
def _poly1(axes):
    for e in (-1.0, 0.0, 2.0):
        _rows(axes, _fl().Poly1CrossEntropyLoss(epsilon=e, reduction="none"), _LOGIT, label=f"epsilon={e:g}")


@recipe("multi_margin_loss", "true-class score z (3 other scores 0)", "C = 4, margin = 1; p = 1, 2")
def _multi_margin(axes):
    for p in (1, 2):
        _rows(axes, _fl().MultiMarginLoss(p=p, reduction="none"), _RESID, label=f"p={p}")


@recipe("multilabel_soft_margin_loss", "input (logit), one label", "C = 1; target = 1 (solid), 0 (dashed)")
def _multilabel(axes):
    loss = _fl().MultiLabelSoftMarginLoss(reduction="none")
    for t, ls in ((1.0, "-"), (0.0, "--")):
        x = _LOGIT[:, None]
        tt = np.full_like(x, t)
        value, grad = loss.value_and_grad(x, tt)
        _, hess = loss.grad_hess(x, tt)
        _curves(axes, _LOGIT, value, grad[:, 0], hess[:, 0], f"target={t:g}", ls=ls, color="C0")


# ---------------------------------------------------------------- generative and RL objectives (issue 14)
# These have no diagonal Hessian method: the third panel stays empty.

_NOH = np.full_like(_LOGIT, np.nan)

NO_RECIPE.update({
    "vae_loss": "a sum: binary_cross_entropy_with_logits or mse_loss (summed) plus beta * gaussian_kl_loss, "
                "drawn under those names",
    "GaussianKLLoss": "the class of gaussian_kl_loss", "VAELoss": "the class of vae_loss",
    "GANDiscriminatorLoss": "the class of gan_discriminator_loss", "GANGeneratorLoss": "the class of gan_generator_loss",
    "GradientPenalty": "the class of gradient_penalty", "PolicyGradientLoss": "the class of policy_gradient_loss",
    "PPOClipLoss": "the class of ppo_clip_loss", "ValueLoss": "the class of value_loss", "TDLoss": "the class of td_loss",
    "combined_loss": "a weighted sum of other losses: their pictures are drawn under their names",
    "CombinedLoss": "the class of combined_loss",
})


def _elem(axes, fn, x, *ops, label=None, **kw):
    """A pointwise objective, reduction="none", differentiated in its first operand."""
    style = kw.pop("style", {})
    value, grad = fn(x, *ops, reduction="none", return_grad=True, **kw)[:2]
    _curves(axes, x, value, grad, np.full_like(x, np.nan), label, **style)


@recipe("gaussian_kl_loss", "logvar (mu = 0 solid, mu = 1 dashed)", "per coordinate 0.5 (mu^2 + e^logvar - 1 - logvar); "
        "gradient d/dlogvar; no Hessian method")
def _gaussian_kl(axes):
    lv = np.linspace(-4, 3, 601)
    for m, ls in ((0.0, "-"), (1.0, "--")):
        value, _, g_lv = _fl().gaussian_kl_loss(np.full_like(lv, m), lv, reduction="none", return_grad=True)
        _curves(axes, lv, value, g_lv, _NOH, f"mu={m:g}", ls=ls, color="C0")


@recipe("gan_generator_loss", "the critic's logit on a fake sample", "every kind; no Hessian method")
def _gan_generator(axes):
    for k in ("minimax", "nonsaturating", "least_squares", "wasserstein"):
        _elem(axes, _fl().gan_generator_loss, _LOGIT, kind=k, label=k)


@recipe("gan_discriminator_loss", "the critic's logit", "the real sample's term (solid) and the fake's (dashed), "
        "one sample each; no Hessian method")
def _gan_discriminator(axes):
    fl = _fl()
    for i, k in enumerate(("nonsaturating", "least_squares", "hinge")):
        vr, vf, gr, gf = [], [], [], []
        for z in _LOGIT:
            a = fl.gan_discriminator_loss(np.array([z]), np.array([-1e4 if k == "nonsaturating" else -1.0]), k,
                                          return_grad=True)
            b = fl.gan_discriminator_loss(np.array([1e4 if k == "nonsaturating" else 1.0]), np.array([z]), k,
                                          return_grad=True)
            vr.append(a[0] - fl.gan_discriminator_loss(np.array([1e4 if k == "nonsaturating" else 1.0]),
                                                       np.array([-1e4 if k == "nonsaturating" else -1.0]), k))
            vf.append(b[0] - fl.gan_discriminator_loss(np.array([1e4 if k == "nonsaturating" else 1.0]),
                                                       np.array([-1e4 if k == "nonsaturating" else -1.0]), k))
            gr.append(a[1][0])
            gf.append(b[2][0])
        _curves(axes, _LOGIT, np.array(vr), np.array(gr), _NOH, k, color=f"C{i}")
        _curves(axes, _LOGIT, np.array(vf), np.array(gf), _NOH, None, color=f"C{i}", ls="--")


@recipe("gradient_penalty", "the norm of a gradient row", "wgan-gp (target norm 1), r1; no Hessian method")
def _gradient_penalty(axes):
    n = np.linspace(0, 3, 601)
    for k in ("wgan-gp", "r1"):
        value, g = _fl().gradient_penalty(n[:, None], kind=k, reduction="none", return_grad=True)
        _curves(axes, n, value, g[:, 0], _NOH, k)


@recipe("policy_gradient_loss", "log-probability of the action", "advantage = 1, -1; no Hessian method")
def _policy_gradient(axes):
    lp = np.linspace(-5, 0, 601)
    for a in (1.0, -1.0):
        _elem(axes, _fl().policy_gradient_loss, lp, np.full_like(lp, a), label=f"A={a:g}")


@recipe("ppo_clip_loss", "log-ratio log pi - log pi_old", "clip_eps = 0.2; advantage = 1, -1, and -1 with dual_clip = 3;"
        " no Hessian method")
def _ppo(axes):
    lr = np.linspace(-2, 1.5, 601)
    z = np.zeros_like(lr)
    for a, dc in ((1.0, None), (-1.0, None), (-1.0, 3.0)):
        _elem(axes, _fl().ppo_clip_loss, lr, z, np.full_like(lr, a), dual_clip=dc,
              label=f"A={a:g}" + (f", dual_clip={dc:g}" if dc else ""))


@recipe("value_loss", "value - return", "mse, huber; clipped (dashed: old value = return + 1, clip_eps = 0.5); "
        "no Hessian method")
def _value(axes):
    z = np.zeros_like(_RESID)
    for i, k in enumerate(("mse", "huber")):
        _elem(axes, _fl().value_loss, _RESID, z, kind=k, label=k, style={"color": f"C{i}"})
        _elem(axes, _fl().value_loss, _RESID, z, z + 1, 0.5, kind=k, style={"color": f"C{i}", "ls": "--"})


@recipe("td_loss", "value - TD target", "mse, huber (the target r + gamma (1 - done) v' is a constant); "
        "no Hessian method")
def _td(axes):
    z = np.zeros_like(_RESID)
    for k in ("mse", "huber"):
        _elem(axes, _fl().td_loss, _RESID, z, z, z, kind=k, label=k)
