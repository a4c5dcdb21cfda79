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


#: The three panels of a loss of one variable.
PANELS = ("value", "gradient d/d input", "Hessian (diagonal)")


class Recipe(NamedTuple):
    """How to draw one loss: ``draw(axes)`` fills the axes (value,
    gradient, Hessian); ``xlabel`` names the horizontal axis; ``caption``
    says what is varied; ``panels`` titles the axes, two or three (a loss
    that is not a function of one variable says which gradient entries it
    shows; one without a Hessian has two)."""
    name: str
    draw: Callable
    xlabel: str
    caption: str
    panels: tuple = PANELS


#: The registry: function name -> Recipe.
RECIPES: dict = {}

#: Public names that have no picture, and why.
NO_RECIPE = {"cross_entropy_hvp": "a Hessian-vector product, not a loss: cross_entropy's picture shows "
                                  "the Hessian's diagonal"}


def recipe(name: str, xlabel: str, caption: str, panels: tuple = PANELS):
    """Register the decorated ``draw(axes)`` as the recipe of loss ``name``."""
    def deco(fn):
        RECIPES[name] = Recipe(name, fn, xlabel, caption, tuple(panels))
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
    axes = fig.subplots(1, len(r.panels))
    for ax, title in zip(axes, r.panels):
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


# ---------------------------------------------------------------- the regression catalogue

_X = np.linspace(-3, 3, 601)


@recipe("gamma_nll_loss", "input (log of the mean)", "target = 0.5, 1, 3: input + target exp(-input)")
def _gamma(axes):
    for t in (0.5, 1.0, 3.0):
        _pointwise(axes, _fl().GammaNLLLoss(reduction="none"), _X, np.full_like(_X, t), f"target={t:g}")


@recipe("tweedie_loss", "input (log of the mean)", "power = 1.2, 1.5, 1.8; target = 1 (solid), 0 (dashed)")
def _tweedie(axes):
    for i, pw in enumerate((1.2, 1.5, 1.8)):
        loss = _fl().TweedieLoss(power=pw, reduction="none")
        _pointwise(axes, loss, _X, np.ones_like(_X), f"power={pw:g}", color=f"C{i}")
        _pointwise(axes, loss, _X, np.zeros_like(_X), ls="--", color=f"C{i}")


@recipe("pseudo_huber_loss", "residual input - target", "delta = 0.5, 1, 2: delta^2 (sqrt(1 + (z/delta)^2) - 1)")
def _pseudo_huber(axes):
    for d in (0.5, 1.0, 2.0):
        _pointwise(axes, _fl().PseudoHuberLoss(delta=d, reduction="none"), _RESID, np.zeros_like(_RESID),
                   f"delta={d:g}")


@recipe("fair_loss", "residual input - target", "c = 0.5, 1, 2: c^2 (|z|/c - log(1 + |z|/c))")
def _fair(axes):
    for c in (0.5, 1.0, 2.0):
        _pointwise(axes, _fl().FairLoss(c=c, reduction="none"), _RESID, np.zeros_like(_RESID), f"c={c:g}")


@recipe("cauchy_loss", "residual input - target", "c = 0.5, 1, 2: c^2/2 log(1 + (z/c)^2); Hessian < 0 beyond c")
def _cauchy(axes):
    x = np.linspace(-5, 5, 601)
    for c in (0.5, 1.0, 2.0):
        _pointwise(axes, _fl().CauchyLoss(c=c, reduction="none"), x, np.zeros_like(x), f"c={c:g}")


@recipe("tukey_biweight_loss", "residual input - target", "c = 1, 2, 4.685: constant (gradient 0) beyond c")
def _tukey(axes):
    x = np.linspace(-6, 6, 601)
    for c in (1.0, 2.0, 4.685):
        _pointwise(axes, _fl().TukeyBiweightLoss(c=c, reduction="none"), x, np.zeros_like(x), f"c={c:g}")


@recipe("expectile_loss", "residual input - target", "tau = 0.1, 0.5, 0.9: asymmetric squared error")
def _expectile(axes):
    for t in (0.1, 0.5, 0.9):
        _pointwise(axes, _fl().ExpectileLoss(tau=t, reduction="none"), _RESID, np.zeros_like(_RESID), f"tau={t:g}")


@recipe("mean_absolute_percentage_error", "input", "target = 0.5, 1, 2: 100 |input - target| / |target|; Hessian 0")
def _mape(axes):
    x = np.linspace(-1, 4, 501)
    for t in (0.5, 1.0, 2.0):
        _pointwise(axes, _fl().MeanAbsolutePercentageError(reduction="none"), x, np.full_like(x, t),
                   f"target={t:g}")


@recipe("mean_squared_logarithmic_error", "input", "target = 0, 1, 3: (log1p(input) - log1p(target))^2, input "
                                                    "clamped at 1e-7")
def _msle(axes):
    x = np.linspace(-0.5, 6, 651)
    for t in (0.0, 1.0, 3.0):
        _pointwise(axes, _fl().MeanSquaredLogarithmicError(reduction="none"), x, np.full_like(x, t),
                   f"target={t:g}")


def _one_moving(axes, make, values, name):
    """A reduction over 20 elements: 19 residuals fixed on a grid in [-1, 1]
    and one, r, moving; the value, and the gradient and Hessian entries of
    the moving element."""
    r = np.linspace(-5, 5, 241)
    base = np.linspace(-1, 1, 19)
    for v in values:
        loss = make(v)
        val, g, h = np.empty_like(r), np.empty_like(r), np.empty_like(r)
        for i, ri in enumerate(r):
            x = np.append(base, ri)
            t = np.zeros_like(x)
            val[i], grad = loss.value_and_grad(x, t)
            g[i] = grad[-1]
            h[i] = loss.grad_hess(x, t)[1][-1]
        _curves(axes, r, val, g, h, f"{name}={v:g}")


_MOVING = ("value (mean over 20)", "gradient d/d the moving element", "Hessian, the moving element")


@recipe("trimmed", "residual r of one element (19 others fixed in [-1, 1])",
        "Trimmed(MSELoss(), trim) over 20 elements, trim = 0, 0.05, 0.1: the largest losses count for nothing",
        _MOVING)
def _trimmed(axes):
    fl = _fl()
    _one_moving(axes, lambda v: fl.Trimmed(fl.MSELoss(), trim=v), (0.0, 0.05, 0.1), "trim")


@recipe("winsorized", "residual r of one element (19 others fixed in [-1, 1])",
        "Winsorized(MSELoss(), limit) over 20 elements, limit = 0, 0.05, 0.1: the largest losses clipped",
        _MOVING)
def _winsorized(axes):
    fl = _fl()
    _one_moving(axes, lambda v: fl.Winsorized(fl.MSELoss(), limit=v), (0.0, 0.05, 0.1), "limit")


# ---------------------------------------------------------------- set overlap: segmentation

_S, _M = 400, 100                        # pixels of an image, of which the first _M are foreground
_F = np.linspace(0, 1, 101)              # overlap fractions


def _overlap_images(conf):
    """One image per overlap fraction f: the target's foreground is pixels
    [0, M); the prediction (logit +conf, else -conf) covers M pixels
    [M - k, 2M - k) with k = round(f M) of them on the foreground.  Returns
    (logits, targets, index of a missed foreground pixel, of a false
    positive) per image (-1 where there is none)."""
    k = np.round(_F * _M).astype(int)
    x = np.full((_F.size, _S), -conf)
    t = np.zeros((_F.size, _S))
    t[:, :_M] = 1
    for i, ki in enumerate(k):
        x[i, _M - ki:2 * _M - ki] = conf
    missed = np.where(k < _M, 0, -1)
    false_pos = np.where(k < _M, 2 * _M - k - 1, -1)
    return x, t, missed, false_pos


def _pick(g, idx):
    out = np.full(idx.size, np.nan)
    ok = idx >= 0
    out[ok] = g[np.flatnonzero(ok), idx[ok]]
    return out


def _overlap_curves(axes, loss_of, variants, conf=None):
    for label, kw in variants:
        c = kw.pop("conf", conf)
        x, t, missed, fp = _overlap_images(c)
        value, g = loss_of(**kw).value_and_grad(x, t)
        _curves(axes, _F, value, _pick(g, missed), _pick(g, fp), label)


_OVERLAP = ("value", "gradient d/d logit, a missed foreground pixel", "gradient d/d logit, a false-positive pixel")
_OVERLAP_X = "overlap fraction (400 pixels, 100 foreground)"


def _seg(cls, **kw):
    return lambda **more: cls(**kw, **more, per_image=True, reduction="none")


@recipe("dice_loss", _OVERLAP_X, "logits +-1, +-3, +-10 on a predicted object of the target's size", _OVERLAP)
def _dice(axes):
    _overlap_curves(axes, _seg(_fl().DiceLoss), [(f"|logit|={c:g}", {"conf": c}) for c in (1.0, 3.0, 10.0)])


@recipe("jaccard_loss", _OVERLAP_X, "logits +-1, +-3, +-10 on a predicted object of the target's size", _OVERLAP)
def _jaccard(axes):
    _overlap_curves(axes, _seg(_fl().JaccardLoss), [(f"|logit|={c:g}", {"conf": c}) for c in (1.0, 3.0, 10.0)])


@recipe("tversky_loss", _OVERLAP_X, "logits +-3; (alpha, beta) = (0.5, 0.5) Dice, (0.3, 0.7), (0.7, 0.3)", _OVERLAP)
def _tversky(axes):
    _overlap_curves(axes, _seg(_fl().TverskyLoss),
                    [(f"alpha={a:g}, beta={b:g}", {"alpha": a, "beta": b}) for a, b in ((0.5, 0.5), (0.3, 0.7),
                                                                                       (0.7, 0.3))], conf=3.0)


@recipe("bce_dice_loss", _OVERLAP_X, "logits +-3; BCE alone, Dice alone, their sum", _OVERLAP)
def _bce_dice(axes):
    _overlap_curves(axes, _seg(_fl().BCEDiceLoss),
                    [("BCE", {"bce_weight": 1.0, "dice_weight": 0.0}), ("Dice", {"bce_weight": 0.0, "dice_weight": 1.0}),
                     ("BCE + Dice", {})], conf=3.0)


@recipe("ce_dice_loss", "overlap fraction of class 1 (400 pixels, 3 classes)",
        "logit 3 on the predicted class, 0 on the others; CE alone, Dice alone, their sum",
        ("value", "gradient d/d logit 1, a missed class-1 pixel", "gradient d/d logit 1, a false class-1 pixel"))
def _ce_dice(axes):
    k = np.round(_F * _M).astype(int)
    t = np.zeros((_F.size, _S), dtype=np.int64)
    t[:, :_M], t[:, _M:2 * _M] = 1, 2                   # class 1, then class 2, then background
    pred = t.copy()
    for i, ki in enumerate(k):
        pred[i, :_M] = 2 if ki < _M else 1               # the missed part of class 1 taken for class 2
        pred[i, _M - ki:2 * _M - ki] = 1
    x = np.where(np.arange(3)[None, :, None] == pred[:, None, :], 3.0, 0.0)
    missed = np.where(k < _M, 0, -1)
    fp = np.where(k < _M, 2 * _M - k - 1, -1)
    for label, kw in (("CE", {"ce_weight": 1.0, "dice_weight": 0.0}), ("Dice", {"ce_weight": 0.0, "dice_weight": 1.0}),
                      ("CE + Dice", {})):
        value, g = _fl().CEDiceLoss(**kw, per_image=True, reduction="none").value_and_grad(x, t)
        _curves(axes, _F, value, _pick(g[:, 1], missed), _pick(g[:, 1], fp), label)


def _misranked(seed=0):
    """A fixed order in which pixels are made wrong, one per fraction."""
    return np.random.default_rng(seed).permutation(_S)


_WRONG = np.linspace(0, 0.5, 101)
_LOVASZ_X = "fraction of pixels wrong (400 pixels, 100 foreground)"


@recipe("lovasz_hinge_loss", _LOVASZ_X, "logits +-margin, margin = 0.5, 1, 2, sign wrong on a fraction (gradients coincide)",
        ("value", "gradient, a wrong foreground pixel", "gradient, a wrong background pixel"))
def _lovasz_hinge(axes):
    order = _misranked()
    t = np.zeros(_S)
    t[:_M] = 1
    k = np.round(_WRONG * _S).astype(int)
    wrong = np.zeros((_WRONG.size, _S), bool)
    for i, ki in enumerate(k):
        wrong[i, order[:ki]] = True
    fg_wrong = [order[:ki][t[order[:ki]] == 1] for ki in k]
    bg_wrong = [order[:ki][t[order[:ki]] == 0] for ki in k]
    i_fg = np.array([w[0] if w.size else -1 for w in fg_wrong])
    i_bg = np.array([w[0] if w.size else -1 for w in bg_wrong])
    for m in (0.5, 1.0, 2.0):
        x = np.where(wrong, -m, m) * (2 * t - 1)
        value, g = _fl().LovaszHingeLoss(per_image=True, reduction="none").value_and_grad(x, np.broadcast_to(t, x.shape))
        _curves(axes, _WRONG, value, _pick(g, i_fg), _pick(g, i_bg), f"margin={m:g}")


@recipe("lovasz_softmax_loss", "fraction of pixels wrong (400 pixels, 3 classes)",
        "logit c on the predicted class, 0 on the others; c = 1, 3, 10",
        ("value", "gradient d/d true-class logit, a wrong pixel", "gradient d/d predicted logit, a wrong pixel"))
def _lovasz_softmax(axes):
    order = _misranked(1)
    t = np.zeros(_S, dtype=np.int64)
    t[:_M], t[_M:2 * _M] = 1, 2
    k = np.round(_WRONG * _S).astype(int)
    pred = np.broadcast_to(t, (_WRONG.size, _S)).copy()
    for i, ki in enumerate(k):
        pred[i, order[:ki]] = (t[order[:ki]] + 1) % 3
    first = np.where(k > 0, order[0], -1)
    tt = np.broadcast_to(t, pred.shape)
    for c in (1.0, 3.0, 10.0):
        x = np.where(np.arange(3)[None, :, None] == pred[:, None, :], c, 0.0)
        value, g = _fl().LovaszSoftmaxLoss(per_image=True, reduction="none").value_and_grad(x, tt)
        gi = np.take_along_axis(g, tt[:, None, :], axis=1)[:, 0]
        gp = np.take_along_axis(g, pred[:, None, :], axis=1)[:, 0]
        _curves(axes, _WRONG, value, _pick(gi, first), _pick(gp, first), f"c={c:g}")


# ---------------------------------------------------------------- set overlap: boxes

_DX = np.linspace(-4, 4, 401)


def _box_curves(axes, cls):
    """boxes2 = (0, 0, 2, 2); boxes1 of size w x h centred at (1 + offset, 1)."""
    for w, h in ((2.0, 2.0), (1.0, 1.0), (3.0, 1.0)):
        cx = 1 + _DX
        b1 = np.stack([cx - w / 2, np.full_like(cx, 1 - h / 2), cx + w / 2, np.full_like(cx, 1 + h / 2)], axis=1)
        b2 = np.tile([0.0, 0.0, 2.0, 2.0], (_DX.size, 1))
        value, g1, _ = cls(reduction="none").value_and_grad(b1, b2)
        _curves(axes, _DX, value, g1[:, 0] + g1[:, 2], (g1[:, 2] - g1[:, 0]) / 2, f"{w:g} x {h:g}")


_BOX_PANELS = ("value", "gradient d/d offset (x1 and x2 together)", "gradient d/d half-width (x2 - x1)/2")
_BOX_X = "offset of boxes1 along x from boxes2 = (0, 0, 2, 2)"
_BOX_CAP = "boxes1 of 2 x 2, 1 x 1, 3 x 1 moved across boxes2"


@recipe("box_iou_loss", _BOX_X, _BOX_CAP + ": no gradient once they stop overlapping", _BOX_PANELS)
def _box_iou(axes):
    _box_curves(axes, _fl().BoxIoULoss)


@recipe("generalized_box_iou_loss", _BOX_X, _BOX_CAP + ": the enclosing box keeps a gradient", _BOX_PANELS)
def _giou(axes):
    _box_curves(axes, _fl().GeneralizedBoxIoULoss)


@recipe("distance_box_iou_loss", _BOX_X, _BOX_CAP + ": the centre distance term", _BOX_PANELS)
def _diou(axes):
    _box_curves(axes, _fl().DistanceBoxIoULoss)


@recipe("complete_box_iou_loss", _BOX_X, _BOX_CAP + ": the aspect-ratio term", _BOX_PANELS)
def _ciou(axes):
    _box_curves(axes, _fl().CompleteBoxIoULoss)


# ---------------------------------------------------------------- rows of features: embeddings

def _curves2(axes, x, ys, label=None, **style):
    for ax, y in zip(axes, ys):
        ax.plot(x, y, label=label, lw=1.3, **style)


_GAP = np.linspace(-3, 3, 301)
_TRIPLET_PANELS = ("value", "gradient d/d positive (along anchor -> positive)",
                   "gradient d/d negative (along anchor -> negative)")
_TRIPLET_X = "d(anchor, positive) - d(anchor, negative)"


def _triplet_points(gap):
    """anchor at 0; positive at d_p = 2 + gap/2 on the first axis, negative
    at d_n = 2 - gap/2 on the second (2-D)."""
    n = gap.size
    a = np.zeros((n, 2))
    p = np.zeros((n, 2))
    q = np.zeros((n, 2))
    p[:, 0] = 2 + gap / 2
    q[:, 1] = 2 - gap / 2
    return a, p, q


@recipe("triplet_margin_loss", _TRIPLET_X, "margin = 0.5, 1, 2: max(0, margin + d(a, p) - d(a, n))", _TRIPLET_PANELS)
def _triplet(axes):
    a, p, q = _triplet_points(_GAP)
    for m in (0.5, 1.0, 2.0):
        v, ga, gp, gn = _fl().TripletMarginLoss(margin=m, reduction="none").value_and_grad(a, p, q)
        _curves(axes, _GAP, v, gp[:, 0], gn[:, 1], f"margin={m:g}")


@recipe("triplet_margin_with_distance_loss", _TRIPLET_X + " (Euclidean)",
        "margin = 1; distance = euclidean, squared_euclidean (the same points)", _TRIPLET_PANELS)
def _triplet_distance(axes):
    a, p, q = _triplet_points(_GAP)
    for d in ("euclidean", "squared_euclidean"):
        loss = _fl().TripletMarginWithDistanceLoss(distance_function=d, margin=1.0, reduction="none")
        v, ga, gp, gn = loss.value_and_grad(a, p, q)
        _curves(axes, _GAP, v, gp[:, 0], gn[:, 1], d)


_ANGLE = np.linspace(0, np.pi, 301)


def _angle_pair(theta):
    """input1 = (1, 0); input2 at angle theta, unit length."""
    x1 = np.tile([1.0, 0.0], (theta.size, 1))
    x2 = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    return x1, x2


def _d_angle(g2, theta):
    """The derivative along the angle of input2 (the chain rule on the kernel's gradient)."""
    return g2[:, 0] * -np.sin(theta) + g2[:, 1] * np.cos(theta)


@recipe("cosine_embedding_loss", "cos(angle between input1 and input2)",
        "target = 1 (solid), -1 (dashed) with margin = 0, 0.5",
        ("value", "gradient d/d angle of input2", "|gradient| of input2"))
def _cosine_embedding(axes):
    x1, x2 = _angle_pair(_ANGLE)
    c = np.cos(_ANGLE)
    for i, m in enumerate((0.0, 0.5)):
        loss = _fl().CosineEmbeddingLoss(margin=m, reduction="none")
        for t, ls in ((1.0, "-"), (-1.0, "--")):
            if t == 1.0 and i:
                continue                                  # the margin only enters target -1
            v, g1, g2 = loss.value_and_grad(x1, x2, np.full(_ANGLE.size, t))
            _curves(axes, c, v, _d_angle(g2, _ANGLE), np.linalg.norm(g2, axis=1),
                    f"target={t:g}" + (f", margin={m:g}" if t < 0 else ""), ls=ls, color=f"C{i}")


@recipe("margin_ranking_loss", "input1 - input2 (input2 = 0)", "target = 1 (solid), -1 (dashed); margin = 0, 0.5, 1",
        ("value", "gradient d/d input1", "gradient d/d input2"))
def _margin_ranking(axes):
    for i, m in enumerate((0.0, 0.5, 1.0)):
        loss = _fl().MarginRankingLoss(margin=m, reduction="none")
        for t, ls in ((1.0, "-"), (-1.0, "--")):
            v, g1, g2 = loss.value_and_grad(_RESID, np.zeros_like(_RESID), np.full_like(_RESID, t))
            _curves(axes, _RESID, v, g1, g2, f"margin={m:g}" if t > 0 else None, ls=ls, color=f"C{i}")


@recipe("hinge_embedding_loss", "input (a distance)", "target = 1 (solid), -1 (dashed); margin = 1, 2",
        ("value", "gradient d/d input"))
def _hinge_embedding(axes):
    x = np.linspace(0, 3, 301)
    for i, m in enumerate((1.0, 2.0)):
        loss = _fl().HingeEmbeddingLoss(margin=m, reduction="none")
        for t, ls in ((1.0, "-"), (-1.0, "--")):
            v, g = loss.value_and_grad(x, np.full_like(x, t))
            _curves2(axes, x, (v, g), f"margin={m:g}" if t < 0 else ("target=1" if not i else None), ls=ls,
                     color=f"C{i}")


@recipe("contrastive_loss", "distance d(input1, input2)", "similar pair (solid), dissimilar (dashed); margin = 1, 2",
        ("value", "gradient d/d input1 along input1 - input2"))
def _contrastive(axes):
    d = np.linspace(0.01, 3, 300)
    x1 = np.stack([d, np.zeros_like(d)], axis=1)
    x2 = np.zeros_like(x1)
    for i, m in enumerate((1.0, 2.0)):
        loss = _fl().ContrastiveLoss(margin=m, reduction="none")
        for t, ls in ((1.0, "-"), (0.0, "--")):
            if t == 1.0 and i:
                continue                                  # the margin only enters dissimilar pairs
            v, g1, g2 = loss.value_and_grad(x1, x2, np.full(d.size, t))
            _curves2(axes, d, (v, g1[:, 0]), f"dissimilar, margin={m:g}" if t == 0 else "similar", ls=ls,
                     color=f"C{i}")


@recipe("cosine_distance_loss", "cos(angle between input and target)", "1 - cos, unit vectors",
        ("value", "gradient d/d angle of input"))
def _cosine_distance(axes):
    t, x = _angle_pair(_ANGLE)
    v, g, _ = _fl().CosineDistanceLoss(reduction="none").value_and_grad(x, t)
    _curves2(axes, np.cos(_ANGLE), (v, _d_angle(g, _ANGLE)))


_SEP = np.linspace(0, 4, 81)
_BATCH_PANELS = ("value", "mean |gradient| per embedding")
_BATCH_X = "distance between the centres of two classes (8 points each, 2-D)"


def _two_classes(sep):
    """Two classes of 8 points in 2-D: fixed offsets (spread 0.5) around
    (0, 0) and (sep, 0)."""
    off = np.random.default_rng(0).normal(size=(16, 2)) * 0.5
    E = off.copy()
    E[8:, 0] += sep
    return E, np.repeat([0, 1], 8)


def _batch_curves(axes, make, values, name):
    for v in values:
        loss = make(v)
        val, gn = np.empty_like(_SEP), np.empty_like(_SEP)
        for i, s in enumerate(_SEP):
            E, lab = _two_classes(s)
            val[i], g = loss.value_and_grad(E, lab)
            gn[i] = np.linalg.norm(g, axis=1).mean()
        _curves2(axes, _SEP, (val, gn), f"{name}={v}")


@recipe("batch_hard_triplet_loss", _BATCH_X, "margin = 0.5, 1, 2 (the hardest positive and negative per anchor)",
        _BATCH_PANELS)
def _batch_hard(axes):
    _batch_curves(axes, lambda m: _fl().BatchHardTripletLoss(margin=m), (0.5, 1.0, 2.0), "margin")


@recipe("batch_all_triplet_loss", _BATCH_X, "margin = 0.5, 1, 2 (the mean over triplets of positive loss)",
        _BATCH_PANELS)
def _batch_all(axes):
    _batch_curves(axes, lambda m: _fl().BatchAllTripletLoss(margin=m), (0.5, 1.0, 2.0), "margin")


def _two_directions(angle):
    """Two classes of 8 unit vectors in 2-D at fixed angular offsets (spread
    0.2 rad) around the directions -angle/2 and +angle/2."""
    off = np.random.default_rng(0).normal(size=16) * 0.2
    phi = off + np.repeat([-angle / 2, angle / 2], 8)
    return np.stack([np.cos(phi), np.sin(phi)], axis=1), np.repeat([0, 1], 8)


@recipe("nt_xent_loss", "angle between the directions of two classes (8 unit vectors each, 2-D)",
        "temperature = 0.07, 0.2, 0.5 (labels: the two classes)", _BATCH_PANELS)
def _nt_xent(axes):
    ang = np.linspace(0, np.pi, 91)
    for t in (0.07, 0.2, 0.5):
        loss = _fl().NTXentLoss(temperature=t)
        val, gn = np.empty_like(ang), np.empty_like(ang)
        for i, a in enumerate(ang):
            E, lab = _two_directions(a)
            val[i], g = loss.value_and_grad(E, lab)
            gn[i] = np.linalg.norm(g, axis=1).mean()
        _curves2(axes, ang, (val, gn), f"temperature={t}")


_CTC_T, _CTC_C = 12, 4              # frames; classes (0 the blank, labels 1..3)


@recipe("ctc_loss", "logit of each frame's aligned label (others 0)",
        f"{_CTC_T} frames split evenly among the labels of target 1 2, 1 2 3, 1 1 (a repeat needs a blank between)",
        ("value: -log P(target)", "gradient d/d that logit, middle frame", "gradient d/d blank logit, middle frame"))
def _ctc(axes):
    """One sample per point of z: frame t's logits put z on the label its
    even share of the target gives it (no blank frames) and 0 elsewhere;
    the loss sums over every alignment, so the value stays above -log of
    the one path's probability and the blank's gradient shows the paths
    through blanks."""
    z = np.linspace(-4, 8, 241)
    mid = _CTC_T // 2
    for target in ((1, 2), (1, 2, 3), (1, 1)):
        S = len(target)
        label = np.array(target)[np.arange(_CTC_T) * S // _CTC_T]          # frame -> aligned label
        x = np.zeros((_CTC_T, z.size, _CTC_C))
        x[np.arange(_CTC_T), :, label] = z[None, :]
        tg = np.tile(target, (z.size, 1))
        value, g = _fl().ctc_loss(x, tg, [_CTC_T] * z.size, [S] * z.size, reduction="none", from_logits=True,
                                  return_grad=True)
        _curves(axes, z, value, g[mid, :, label[mid]], g[mid, :, 0], " ".join(map(str, target)))
# ---------------------------------------------------------------- generative and RL objectives (issue 14)
# These have no diagonal Hessian method: the third panel stays empty.

_NOH = np.full_like(_LOGIT, np.nan)

@recipe("vae_loss", "latent logvar (mu = 0 solid, 1 dashed)",
        "one pixel (logit 0, target 1) + beta KL of a 1-d latent; no Hessian method",
        ("value: recon + beta KL", "gradient d/dlogvar", "gradient d/dmu"))
def _vae(axes):
    """The VAE objective of one sample as its posterior's logvar moves: the
    reconstruction is held fixed, so the curves show beta's weight on the KL."""
    fl = _fl()
    lv = np.linspace(-4, 3, 141)
    one, x = np.ones((1, 1)), np.zeros((1, 1))
    for i, beta in enumerate((0.5, 1.0, 2.0)):
        for m, ls in ((0.0, "-"), (1.0, "--")):
            res = [fl.vae_loss(x, one, np.full((1, 1), m), np.full((1, 1), v), beta, return_grad=True) for v in lv]
            _curves2(axes, lv, (np.array([r[0] for r in res]), np.array([r[3][0, 0] for r in res]),
                                np.array([r[2][0, 0] for r in res])),
                     f"beta={beta:g}" if ls == "-" else None, color=f"C{i}", ls=ls)


@recipe("combined_loss", "residual input - target", "mse_loss + w * l1_loss (reduction 'sum'), per element")
def _combined(axes):
    fl = _fl()
    z = np.zeros(1)
    for w in (0.0, 0.5, 2.0):
        loss = fl.CombinedLoss([(1.0, fl.MSELoss(reduction="sum")), (w, fl.L1Loss(reduction="sum"))])
        value = np.array([loss(np.array([r]), z) for r in _RESID])
        grad, hess = loss.grad_hess(_RESID, np.zeros_like(_RESID))     # "sum": elementwise
        _curves(axes, _RESID, value, grad, hess, f"w={w:g}")


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


def _two_actions(t):
    """Rows of 2 action logits (t, 0) and action 0 taken: x = the logit difference."""
    return np.stack([t, np.zeros_like(t)], 1), np.zeros(t.size, np.int64)


@recipe("policy_gradient_loss_from_logits", "logit of the action taken - the other's (2 actions)",
        "A = 1; entropy_coef = 0, 0.2, 1; d/d(logit taken); no Hessian")
def _pg_logits(axes):
    t = np.linspace(-6, 6, 601)
    z, act = _two_actions(t)
    for b in (0.0, 0.2, 1.0):
        value, g = _fl().policy_gradient_loss_from_logits(z, act, np.ones_like(t), b, reduction="none",
                                                          return_grad=True)
        _curves(axes, t, value, g[:, 0], np.full_like(t, np.nan), f"entropy_coef={b:g}")


@recipe("ppo_clip_loss_from_logits", "logit of the action taken - the other's (2 actions)",
        "old p = 0.2, clip_eps = 0.2; A = 1, -1, -1 with dual_clip = 3; d/d(logit taken); no Hessian")
def _ppo_logits(axes):
    t = np.linspace(-3, 3, 601)
    z, act = _two_actions(t)
    old = np.full_like(t, np.log(0.2))
    for a, dc in ((1.0, None), (-1.0, None), (-1.0, 3.0)):
        value, g = _fl().ppo_clip_loss_from_logits(z, act, old, np.full_like(t, a), 0.2, dc, reduction="none",
                                                   return_grad=True)
        _curves(axes, t, value, g[:, 0], np.full_like(t, np.nan), f"A={a:g}" + (f", dual_clip={dc:g}" if dc else ""))


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
