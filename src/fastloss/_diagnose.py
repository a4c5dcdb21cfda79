"""``fastloss.diagnose``: catch the common mistakes of a loss call.

The mistakes the loss guide lists -- an activation applied before a loss
that applies its own, one-hot labels where integer labels are expected (and
the reverse), swapped arguments, a regression loss on class labels -- and
the data problems behind a loss that is NaN or learns nothing (NaN or a
constant target, a class never present, weights that zero everything), and
the domain mistakes of the regression, segmentation and box losses (a
target outside the loss's support, a mask that is not one, boxes that are
not corners) and of the GAN, RL and VAE objectives (a critic ending in a
sigmoid, probabilities as old log-probabilities, advantages all 0, dones
not 0/1, an 8-bit image as a VAE's target), are checks over figures that one pass of the summary kernel
measures (``fastloss._summary``; a few counts of their own for masks and
boxes).  Each finding names the mistake, the figure that
shows it, and the fix, and is issued as a :class:`LossWarning`.

Two tables drive it:

* ``EXPECT``: what each public loss expects of its input and target (the
  kind of values, not their shapes; where the options decide, as a Dice
  loss's ``mode`` and ``from_logits``, a function of them);
* ``CHECKS``: each check, the kinds it applies to, and the test that fires
  it.

Thresholds
----------
``MIN_N = 16``: checks that infer intent from a pattern of values (all in
[0, 1], all integers, constant, only 0 and 1) need at least this many
values -- fewer is too weak a sign (this module's judgment).
``ROW_TOL = 1e-3``: a row "sums to 1" within this (float32 softmax and
log-softmax rows are within ~1e-6; this module's judgment).
``ABSENT_FACTOR = 10``: a class absent from the labels is reported only
when there are at least 10 labels per class: with C equally likely classes
the chance that some class is missing from 10 C labels is at most
``C exp(-10)``, about 5e-5 per class (this module's judgment).
"""
from __future__ import annotations

import functools
import html
import inspect
import warnings
from typing import Callable, NamedTuple, Optional

import numpy as np

from ._suggest import Figures, _label_counts, summarize

__all__ = ["diagnose", "LossWarning", "Finding", "Diagnosis"]

MIN_N = 16
ROW_TOL = 1e-3
ABSENT_FACTOR = 10


class LossWarning(UserWarning):
    """A likely mistake in a loss call, found by :func:`fastloss.diagnose`
    or by a loss called with ``check=True``.  The message names the
    operation, the mistake with the figure that shows it, and the fix;
    ``.finding`` holds the :class:`Finding`.

    Examples
    --------
    >>> import warnings, numpy as np, fastloss as fl
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     _ = fl.diagnose("mse_loss", np.zeros(4), np.array([1.0, np.nan, 2.0, 3.0]))
    >>> w[0].category is fl.LossWarning, w[0].message.finding.code
    (True, 'nan_target')
    """

    def __init__(self, finding: "Finding"):
        super().__init__(str(finding))
        self.finding = finding


class Finding(NamedTuple):
    """One mistake found: a stable ``code``, the operation, what was seen
    (with its figure) and how to fix it."""
    code: str
    op: str
    message: str
    fix: str

    def __str__(self):
        return f"{self.op}: {self.message}. Fix: {self.fix}"


class Diagnosis(list):
    """The findings of :func:`fastloss.diagnose` (a list of
    :class:`Finding`; empty when nothing was found)."""

    def __init__(self, items, op):
        super().__init__(items)
        self.op = op

    @property
    def ok(self) -> bool:
        return not self

    @property
    def codes(self):
        return [f.code for f in self]

    def __repr__(self):
        if not self:
            return f"fastloss.diagnose({self.op}): no mistakes found"
        lines = [f"fastloss.diagnose({self.op}): {len(self)} finding{'s' if len(self) > 1 else ''}"]
        for f in self:
            lines.append(f"  [{f.code}] {f.message}")
            lines.append(f"      fix: {f.fix}")
        return "\n".join(lines)

    def _repr_html_(self):
        e = html.escape
        if not self:
            return f"<p><b>fastloss.diagnose</b>(<code>{e(self.op)}</code>): no mistakes found</p>"
        rows = "".join(f"<tr><td><code>{e(f.code)}</code></td><td>{e(f.message)}</td><td>{e(f.fix)}</td></tr>"
                       for f in self)
        return (f"<div><p><b>fastloss.diagnose</b>(<code>{e(self.op)}</code>)</p><table><thead><tr>"
                f"<th>mistake</th><th>seen</th><th>fix</th></tr></thead><tbody>{rows}</tbody></table></div>")


# ---------------------------------------------------------------- what each loss expects

class Expect(NamedTuple):
    cls: str      # the nn-style class's name
    input: str    # real | logit | score | prob | logprob | rows_logit | rows_score | rows_prob | rows_logprob
    #               | boxes | embeddings (rows of features) | loss (those of the wrapped loss: trimmed, winsorized)
    #               | critic (a least-squares GAN critic's outputs) | terms (each term's own: combined_loss)
    target: str   # real | count | positive | nonneg | nonzero | binary | pm1 | prob | labels | labels_or_probs
    #               | multilabel | mask (0/1 or probabilities) | mask01 (0/1 only) | boxes | embeddings
    #               | pair_flags (1 similar, 0 dissimilar) | row_labels (a class per row) | loss
    #               | logprob (old log-probabilities) | advantages | actions (an action index per row)
    #               | returns (real; a constant batch is normal) | logvar | image01 (intensities in [0, 1])
    #               | image | seq_labels (CTC label sequences) | logit, score, critic (a GAN's fake batch)
    #               | none (a loss of one operand); others: dones (0/1 flags), advantages, logprob
    vary: Optional[Callable] = None   # (params) -> (input, target): kinds that depend on the options
    args: tuple = ("input", "target")  # the loss's array operands, in order: the first is checked as the
    #                                    input, "target" (or "labels", else the second) as the target, the
    #                                    others for NaN only
    others: Optional[dict] = None      # kinds of the other operands that checks read ({"dones": "dones"});
    #                                    the others are counted for NaN only
    axis: Optional[int] = None         # the class axis of a rows kind where not the class's _class_axis


def roles(e: Expect):
    """(index of the target among e.args, the other operands' indices)."""
    names = e.args
    t = next((i for i, n in enumerate(names) if n in ("target", "labels")), 1)
    return t, [i for i in range(1, len(names)) if i != t]


def _seg_kinds(p):
    """A Dice/Jaccard/Tversky loss: its mode and from_logits decide."""
    logits = p.get("from_logits", True) is not False
    if p.get("mode", "binary") == "multiclass":
        return ("rows_logit" if logits else "rows_prob"), "labels"
    return ("logit" if logits else "prob"), "mask"


def _softmax_kinds(p):
    """The Lovasz-softmax: from_logits decides."""
    return ("rows_logit" if p.get("from_logits", True) is not False else "rows_prob"), "labels"


def _tweedie_kinds(p):
    """The Tweedie deviance's support depends on its power: that of the
    kernel spec the power selects (the call checks it)."""
    from ._regression_losses import _p_tweedie

    try:
        sp = _p_tweedie(p.get("power", 1.5), "diagnose")[0]
    except (TypeError, ValueError):
        return "real", "nonneg"
    return "real", sp.target_kind or "real"


def _gan_kind(p):
    """A GAN critic's output: logits for the minimax and non-saturating
    kinds, raw scores for Wasserstein and hinge; the least-squares
    critic's linear outputs regress to its targets and may all lie in
    [0, 1] (nothing to read from them)."""
    k = p.get("kind", "nonsaturating")
    return "logit" if k in ("minimax", "nonsaturating") else "score" if k in ("wasserstein", "hinge") else "critic"


def _gan_d_kinds(p):
    """gan_discriminator_loss: the real and the fake batch's outputs alike."""
    return _gan_kind(p), _gan_kind(p)


def _gan_g_kinds(p):
    """gan_generator_loss: the fake batch's outputs, no target."""
    return _gan_kind(p), "none"


def _vae_kinds(p):
    """vae_loss: logits and [0, 1] intensities for recon="bce", real
    values for "mse"."""
    return ("logit", "image01") if p.get("recon", "bce") == "bce" else ("real", "image")


def _ctc_kinds(p):
    return ("rows_logit" if p.get("from_logits") else "rows_logprob"), "seq_labels"


_SEG = ("logit", "mask", _seg_kinds)
_BOX = ("boxes", "boxes", None, ("boxes1", "boxes2"))
_WRAPPED = ("loss", "loss")
_TRIPLET = ("embeddings", "embeddings", None, ("anchor", "positive", "negative"))
_PAIR = ("input1", "input2", "target")
_BATCH = ("embeddings", "row_labels", None, ("embeddings", "labels"))

#: What each public loss expects of its input and target.  A loss added to
#: fastloss adds a row (tests/test_diagnose.py checks that every public
#: loss has one).
EXPECT = {
    "mse_loss": Expect("MSELoss", "real", "real"),
    "l1_loss": Expect("L1Loss", "real", "real"),
    "huber_loss": Expect("HuberLoss", "real", "real"),
    "smooth_l1_loss": Expect("SmoothL1Loss", "real", "real"),
    "log_cosh_loss": Expect("LogCoshLoss", "real", "real"),
    "quantile_loss": Expect("QuantileLoss", "real", "real"),
    "poisson_nll_loss": Expect("PoissonNLLLoss", "real", "count"),
    "gaussian_nll_loss": Expect("GaussianNLLLoss", "real", "real"),
    "binary_cross_entropy": Expect("BCELoss", "prob", "binary"),
    "binary_cross_entropy_with_logits": Expect("BCEWithLogitsLoss", "logit", "binary"),
    "sigmoid_focal_loss": Expect("SigmoidFocalLoss", "logit", "binary"),
    "hinge_loss": Expect("HingeLoss", "score", "pm1"),
    "squared_hinge_loss": Expect("SquaredHingeLoss", "score", "pm1"),
    "soft_margin_loss": Expect("SoftMarginLoss", "score", "pm1"),
    "kl_div": Expect("KLDivLoss", "logprob", "prob"),
    "cross_entropy": Expect("CrossEntropyLoss", "rows_logit", "labels_or_probs"),
    "nll_loss": Expect("NLLLoss", "rows_logprob", "labels"),
    "softmax_focal_loss": Expect("SoftmaxFocalLoss", "rows_logit", "labels"),
    "multi_margin_loss": Expect("MultiMarginLoss", "rows_score", "labels"),
    "multilabel_soft_margin_loss": Expect("MultiLabelSoftMarginLoss", "rows_logit", "multilabel"),
    "poly1_cross_entropy": Expect("Poly1CrossEntropyLoss", "rows_logit", "labels_or_probs"),
    # the regression catalogue (input: the raw prediction; for the deviances the log of the mean)
    "gamma_nll_loss": Expect("GammaNLLLoss", "real", "positive"),
    "tweedie_loss": Expect("TweedieLoss", "real", "nonneg", _tweedie_kinds),
    "pseudo_huber_loss": Expect("PseudoHuberLoss", "real", "real"),
    "fair_loss": Expect("FairLoss", "real", "real"),
    "cauchy_loss": Expect("CauchyLoss", "real", "real"),
    "tukey_biweight_loss": Expect("TukeyBiweightLoss", "real", "real"),
    "expectile_loss": Expect("ExpectileLoss", "real", "real"),
    "mean_absolute_percentage_error": Expect("MeanAbsolutePercentageError", "real", "nonzero"),
    "mean_squared_logarithmic_error": Expect("MeanSquaredLogarithmicError", "real", "nonneg"),
    "trimmed": Expect("Trimmed", *_WRAPPED),
    "winsorized": Expect("Winsorized", *_WRAPPED),
    # set overlap: segmentation (classes on axis 1) and boxes (x1, y1, x2, y2)
    "dice_loss": Expect("DiceLoss", *_SEG),
    "jaccard_loss": Expect("JaccardLoss", *_SEG),
    "tversky_loss": Expect("TverskyLoss", *_SEG),
    "bce_dice_loss": Expect("BCEDiceLoss", "logit", "mask"),
    "ce_dice_loss": Expect("CEDiceLoss", "rows_logit", "labels"),
    "lovasz_hinge_loss": Expect("LovaszHingeLoss", "score", "mask01"),
    "lovasz_softmax_loss": Expect("LovaszSoftmaxLoss", "rows_logit", "labels", _softmax_kinds),
    "box_iou_loss": Expect("BoxIoULoss", *_BOX),
    "generalized_box_iou_loss": Expect("GeneralizedBoxIoULoss", *_BOX),
    "distance_box_iou_loss": Expect("DistanceBoxIoULoss", *_BOX),
    "complete_box_iou_loss": Expect("CompleteBoxIoULoss", *_BOX),
    # rows of features: triplets, pairs, in-batch metric learning
    "triplet_margin_loss": Expect("TripletMarginLoss", *_TRIPLET),
    "triplet_margin_with_distance_loss": Expect("TripletMarginWithDistanceLoss", *_TRIPLET),
    "cosine_embedding_loss": Expect("CosineEmbeddingLoss", "embeddings", "pm1", None, _PAIR),
    "margin_ranking_loss": Expect("MarginRankingLoss", "real", "pm1", None, _PAIR),
    "hinge_embedding_loss": Expect("HingeEmbeddingLoss", "real", "pm1"),
    "contrastive_loss": Expect("ContrastiveLoss", "embeddings", "pair_flags", None, _PAIR),
    "cosine_distance_loss": Expect("CosineDistanceLoss", "embeddings", "embeddings"),
    "batch_hard_triplet_loss": Expect("BatchHardTripletLoss", *_BATCH),
    "batch_all_triplet_loss": Expect("BatchAllTripletLoss", *_BATCH),
    "nt_xent_loss": Expect("NTXentLoss", *_BATCH),
    # a sequence loss: (T, N, C) log-probabilities (logits with from_logits=True), classes on the last axis
    "ctc_loss": Expect("CTCLoss", "rows_logprob", "seq_labels", _ctc_kinds,
                       ("log_probs", "targets", "input_lengths", "target_lengths"), axis=-1),
    # the generative objectives (issue 14)
    "gaussian_kl_loss": Expect("GaussianKLLoss", "real", "logvar", None, ("mu", "logvar")),
    "vae_loss": Expect("VAELoss", "logit", "image01", _vae_kinds, ("input", "target", "mu", "logvar")),
    "gan_discriminator_loss": Expect("GANDiscriminatorLoss", "logit", "logit", _gan_d_kinds,
                                     ("real_logits", "fake_logits")),
    "gan_generator_loss": Expect("GANGeneratorLoss", "logit", "none", _gan_g_kinds, ("fake_logits",)),
    "gradient_penalty": Expect("GradientPenalty", "real", "none", None, ("grads",)),
    # the reinforcement-learning objectives (issue 14)
    "policy_gradient_loss": Expect("PolicyGradientLoss", "logprob", "advantages", None, ("log_probs", "advantages")),
    "ppo_clip_loss": Expect("PPOClipLoss", "logprob", "logprob", None, ("log_probs", "old_log_probs", "advantages"),
                            {"advantages": "advantages"}),
    "value_loss": Expect("ValueLoss", "real", "returns", None, ("values", "returns", "old_values")),
    "td_loss": Expect("TDLoss", "real", "returns", None, ("values", "rewards", "next_values", "dones"),
                      {"dones": "dones"}),
    "policy_gradient_loss_from_logits": Expect("PolicyGradientLossFromLogits", "rows_logit", "actions", None,
                                               ("logits", "actions", "advantages"), {"advantages": "advantages"}),
    "ppo_clip_loss_from_logits": Expect("PPOClipLossFromLogits", "rows_logit", "actions", None,
                                        ("logits", "actions", "old_log_probs", "advantages"),
                                        {"old_log_probs": "logprob", "advantages": "advantages"}),
    # a weighted sum of losses: each term is checked as itself
    "combined_loss": Expect("CombinedLoss", "terms", "terms"),
}
_BY_CLASS = {e.cls: name for name, e in EXPECT.items()}
#: Public functions that are not losses of (input, target), and why they
#: have no row in EXPECT.
NOT_CHECKED = {"cross_entropy_hvp": "a Hessian-vector product of cross_entropy, not a loss value"}
#: The options of a loss object that the checks read.
OPTIONS = ("weight", "ignore_index", "log_target", "log_input", "pos_weight", "mode", "from_logits", "power",
           "loss", "similar_label", "kind", "recon", "terms")


def resolve(loss):
    """(function name, Expect, parameters read from a loss object) for a
    loss given as a name, a fastloss function, class or object.  The Expect
    has the kinds of input and target for those parameters; a trimmed or
    winsorized loss object resolves to the loss it wraps."""
    params = {}
    if isinstance(loss, str):
        name = _BY_CLASS.get(loss, loss)
    elif isinstance(loss, type):
        name = _BY_CLASS.get(loss.__name__, loss.__name__)
    elif callable(loss) and getattr(loss, "__module__", "").startswith("fastloss") and not hasattr(loss, "reduction"):
        name = loss.__name__
    else:
        name = _BY_CLASS.get(type(loss).__name__, type(loss).__name__)
        for k in OPTIONS:
            if hasattr(loss, k):
                params[k] = getattr(loss, k)
    if name not in EXPECT:
        raise ValueError(f"diagnose: loss must be a fastloss loss (a function, class, object or name), "
                         f"got {loss!r}")
    return name, EXPECT[name], params


def expectation(name, e: Expect, params):
    """``(name, Expect)`` with the kinds that hold for these parameters: a
    trimmed or winsorized loss is checked as the loss it wraps
    (``params["loss"]``)."""
    if e.input == "loss":
        inner = params.get("loss")
        if inner is None:
            raise ValueError(f"diagnose: {name} is checked as the loss it wraps: pass loss= (such as "
                             f"fastloss.HuberLoss()), or the {e.cls} object itself")
        name, e, p = resolve(inner)
        for k, v in p.items():
            params.setdefault(k, v)
        params.pop("loss", None)
        return expectation(name, e, params)
    if e.input == "terms":
        return name, e                                 # each term is checked as itself (terms_findings)
    if e.vary is not None:
        i, t = e.vary(params)
        e = e._replace(input=i, target=t, vary=None)
    return name, e


# ---------------------------------------------------------------- the checks
# Each check takes (figures, expect, params) and returns None, or the
# (message, fix) pair, formatted from the figures.

def _nan_target(f, e, p):
    if f.get("target_nan"):
        return (f"{f.target_name} has {f.target_nan} NaN value{'s' if f.target_nan > 1 else ''} of {f.target_n}",
                "drop or impute them: NaN propagates to the loss and its gradient (fastloss never masks it)")


def _nan_input(f, e, p):
    for name, k, n in [(f.input_name, f.get("input_nan"), f.get("input_n"))] + f.get("others_nan", []):
        if k:
            return (f"{name} has {k} NaN value{'s' if k > 1 else ''} of {n}",
                    "the model's output is NaN: look for a diverged step (lower the learning rate) or NaN "
                    "features")


#: Target kinds for which a constant batch is no sign of a mistake (sparse rewards, a uniform old
#: policy, a policy that took one action, a fake batch's logits), or that _batch_labels reads.
_CONSTANT_OK = ("row_labels", "returns", "logvar", "advantages", "actions", "logprob", "logit", "score", "critic",
                "none", "seq_labels")


def _constant_target(f, e, p):
    if e.target in _CONSTANT_OK:
        return None      # row_labels: _batch_labels says what a batch of one class means
    if f.get("labels"):
        if f.get("n_labelled", 0) >= MIN_N and f.get("n_present") == 1:
            return (f"every label is class {f.only_class} ({f.n_labelled} labels)",
                    "a model learns nothing from one class: check the labels and the data pipeline "
                    "(a filter or join that dropped the other classes)")
        return None
    if f.get("target_n", 0) >= MIN_N and f.get("target_constant"):
        return (f"{f.target_name} is constant (every one of its {f.target_n} values is {f.target_min:g})",
                "a model learns nothing from a constant target: check the targets and the data pipeline")


def _gan_sigmoid(f, e, p):
    """A GAN critic's outputs (real or fake batch) all in [0, 1]: a final sigmoid."""
    for side, kind in (("input", e.input), ("target", e.target)):
        if not f.op.startswith("gan_") or kind not in ("logit", "score") or f.get(side + "_n", 0) < MIN_N:
            continue
        if f.get(side + "_unit") and not f.get(side + "_binary"):
            what = "logits" if kind == "logit" else f"raw critic scores (kind={p.get('kind')!r})"
            return (f"every value of {f[side + '_name']} is in [0, 1] (min {f[side + '_min']:.3g}, max "
                    f"{f[side + '_max']:.3g}): probabilities (a sigmoid at the critic's end) where {f.op} "
                    f"expects {what}", f"drop the critic's final sigmoid: {f.op} takes its raw output"
                    + (" and applies the sigmoid itself, more stably" if kind == "logit" else ""))


def _probabilities_as_logits(f, e, p):
    if e.input not in ("logit", "score", "rows_logit") or f.get("input_n", 0) < MIN_N:
        return None
    if f.op.startswith("gan_"):
        return None      # _gan_sigmoid
    if not f.get("input_unit") or f.get("input_binary"):
        return None
    what = "softmax" if e.input == "rows_logit" and e.target != "multilabel" else "sigmoid"
    if f.get("input_row_dev") is not None and f.input_row_dev <= ROW_TOL and what == "softmax":
        seen = (f"every row of input sums to 1 (largest |sum - 1| {f.input_row_dev:.2g}): softmax outputs "
                f"where {f.op} expects logits")
    else:
        seen = (f"every input value is in [0, 1] (min {f.input_min:.3g}, max {f.input_max:.3g}): "
                f"probabilities where {f.op} expects {'scores' if 'score' in e.input else 'logits'}")
    if _has_option(f.op, "from_logits"):
        return seen, f"pass the raw scores (drop the {what}): {f.op} applies it itself, more stably; or " \
                     f"from_logits=False if these are the probabilities you mean"
    return seen, f"pass the raw scores (drop the {what}): {f.op} applies it itself, more stably"


def _logits_as_probabilities(f, e, p):
    if e.input not in ("prob", "rows_prob") or f.get("input_unit", True) or f.get("input_n", 0) == 0:
        return None
    seen = (f"input has values outside [0, 1] (min {f.input_min:.3g}, max {f.input_max:.3g}): logits where "
            f"{f.op} expects probabilities")
    if _has_option(f.op, "from_logits"):
        return seen + " (from_logits=False)", "pass from_logits=True (the default): the loss applies the " \
            "sigmoid or softmax itself, in the same pass"
    return (seen + " (the call raises on them)",
            "use binary_cross_entropy_with_logits on the logits (stabler than a sigmoid and then "
            "binary_cross_entropy)")


def _operands_of_kind(f, e, kind):
    """The (name, figure prefix) of the target and the other operands of ``kind``."""
    out = [(f.target_name, "target_")] if e.target == kind and f.get("target_n") else []
    return out + [(name, name + "_") for name, k in f.get("other_kinds", ()) if k == kind]


def _not_log_probabilities(f, e, p):
    for name, px in _operands_of_kind(f, e, "logprob"):
        if f.get(px + "npos", 0) > 0:
            if f.get(px + "unit"):
                return (f"every value of {name} is in [0, 1] (max {f[px + 'max']:.3g}): probabilities where "
                        f"{f.op} expects log-probabilities", f"pass np.log of them as {name}")
            return (f"{name} has positive values (max {f[px + 'max']:.3g}) where {f.op} expects "
                    f"log-probabilities (<= 0)", f"pass the log-probabilities of the actions taken as {name} "
                    f"(log_softmax of the old policy's logits, at the actions)")
    if e.input not in ("logprob", "rows_logprob") or not f.get("input_n"):
        return None
    if e.input == "rows_logprob" and _has_option(f.op, "from_logits"):
        lsm = "apply log_softmax over the classes first, or pass from_logits=True"
    else:
        lsm = None
    if f.get("input_npos", 0) > 0:
        if f.get("input_unit"):
            return (f"every input value is in [0, 1] (max {f.input_max:.3g}): probabilities where {f.op} "
                    f"expects log-probabilities", "pass np.log of them (or log_softmax of the logits)")
        return (f"input has positive values (max {f.input_max:.3g}): raw scores where {f.op} expects "
                f"log-probabilities",
                lsm or ("apply log_softmax first, or use cross_entropy on the raw scores"
                        if e.input == "rows_logprob" else "apply log_softmax to the scores first"))
    dev = f.get("input_row_dev")
    if e.input == "rows_logprob" and dev is not None and dev > ROW_TOL:
        return (f"rows of exp(input) sum to {f.input_row_sum_min:.3g}..{f.input_row_sum_max:.3g}, not 1: "
                f"not normalized log-probabilities",
                lsm or "apply log_softmax over the classes (or use cross_entropy on the raw scores)")


def _onehot_for_labels(f, e, p):
    if e.target not in ("labels", "actions") or not f.get("target_same_shape"):
        return None
    if f.get("target_onehot"):
        if e.target == "actions":
            return (f"actions are one-hot (shape {f.target_shape}) where {f.op} expects the integer index of "
                    f"each action taken", "pass actions.argmax(axis=1) (shape (N,))")
        return (f"target is one-hot (shape {f.target_shape}) where {f.op} expects integer class labels",
                "pass target.argmax(axis=1) (integer labels of input's shape without the class axis)")
    if f.get("target_unit") and not f.get("target_binary"):
        return (f"target holds class probabilities (shape {f.target_shape}) where {f.op} takes integer labels "
                f"only", "use cross_entropy, which takes probability targets, or the labels' argmax")


def _labels_for_binary(f, e, p):
    if e.target not in ("binary", "multilabel", "prob", "mask", "mask01"):
        return None
    if f.get("target_for_rows"):
        fix = "use cross_entropy for class labels, or one-hot encode them"
        if e.target in ("mask", "mask01"):
            fix = ("class labels need a softmax over the classes: " +
                   ("mode='multiclass'" if _has_option(f.op, "mode") and f.op != "bce_dice_loss" else
                    "ce_dice_loss" if f.op == "bce_dice_loss" else "lovasz_softmax_loss") +
                   ", or one-hot encode them")
        return (f"target of shape {f.target_shape} for input of shape {f.input_shape}: integer class labels "
                f"where {f.op} expects one 0/1 value per input", fix)
    if e.target in ("mask", "mask01"):
        return None     # values outside [0, 1]: _mask_out_of_range
    if f.get("target_integral") and f.get("target_max", 0) > 1 and f.get("target_min", 0) >= 0:
        return (f"target holds integers up to {f.target_max:g} where {f.op} expects 0/1 targets or "
                f"probabilities: class labels?", "use cross_entropy for class labels, or one-hot encode them")


def _zero_one_for_pm1(f, e, p):
    if e.target != "pm1" or not f.get("target_binary") or f.get("target_npos", 0) == f.get("target_n"):
        return None
    return (f"target is 0/1 where {f.op} expects -1/1: a target of 0 counts as neither class",
            "pass 2 * target - 1")


def _swapped(f, e, p):
    if e.input not in ("real", "logit", "score", "prob") or not f.get("target_same_shape"):
        return None
    if e.target == "logvar" or f.op.startswith("gan_"):
        return None      # two outputs of a model (mu and logvar, a critic's on real and fake): no truth
    if f.get("input_n", 0) < MIN_N or not f.get("input_integral") or f.get("target_integral", True):
        return None
    if f.input_min == f.input_max or f.get("target_nan"):
        return None
    return (f"input is integer-valued ({f.input_min:g}..{f.input_max:g}) and target is not: arguments "
            f"swapped?", f"call {f.op}(input, target) with the prediction first and the truth second, as PyTorch")


def _regression_on_classes(f, e, p):
    if e.input != "real" or e.target not in ("real",) or f.get("target_n", 0) < MIN_N:
        return None
    if f.get("target_binary") and 0 < f.get("target_npos", 0) < f.target_n:
        pct = 100 * f.target_npos / f.target_n
        onehot = f.get("target_onehot")
        return (f"target is {'one-hot' if onehot else '0/1'} ({pct:.3g} % ones): {f.op} fits class labels as "
                f"numbers", "use cross_entropy on logits (integer labels: target.argmax(axis=-1))" if onehot
                else "use binary_cross_entropy_with_logits on logits")
    if f.get("target_pm1") and 0 < f.get("target_npos", 0) < f.target_n:
        return (f"target is -1/1: {f.op} fits class labels as numbers",
                "use soft_margin_loss (or binary_cross_entropy_with_logits on (target + 1) / 2)")


def _mask_out_of_range(f, e, p):
    if e.target not in ("mask", "mask01") or not f.get("target_n"):
        return None
    lo, hi = f.get("mask_min", f.target_min), f.get("mask_max", f.target_max)
    if not (lo < 0 or hi > 1):
        if e.target == "mask01" and not f.get("mask_binary", f.get("target_binary", True)):
            return (f"target holds values strictly between 0 and 1 where {f.op} expects a hard 0/1 mask "
                    f"(the call raises on them)",
                    "threshold the target (target > 0.5), or use dice_loss / jaccard_loss, which take soft "
                    "targets")
        return None
    seen = f"target has values outside [0, 1] (min {lo:g}, max {hi:g}) where {f.op} expects a mask"
    if f.get("mask_0_255"):
        return (seen + ": a 0/255 image mask", "divide it by 255 (target / 255)")
    if f.get("mask_void_255"):
        return (seen + ": 0/1 with 255, the void label of VOC-style masks",
                "pass ignore_index=255 so those pixels count for nothing")
    if f.get("target_integral") and lo >= 0:
        other = ("mode='multiclass' with labels of shape (N, d1, ...)" if _has_option(f.op, "mode")
                 and f.op != "bce_dice_loss" else "ce_dice_loss" if f.op == "bce_dice_loss"
                 else "lovasz_softmax_loss")
        return (seen + ": class labels?", f"class labels need a softmax over the classes: {other}")
    return (seen + " (the call raises on them)",
            "a mask holds 0 and 1, or probabilities in [0, 1]: check the target (logits or an unscaled image?)")


def _target_outside_support(f, e, p):
    if e.target not in ("positive", "nonneg") or not f.get("target_n"):
        return None
    lo = f.target_min
    if e.target == "positive" and lo <= 0:
        return (f"target has values <= 0 (min {lo:g}) where {f.op} expects positive targets "
                f"(the Gamma/Tweedie support; the call raises on them)",
                "for non-negative targets with zeros use tweedie_loss with 1 <= power < 2 (or poisson_nll_loss "
                "for counts); for real-valued targets a regression loss such as huber_loss")
    if e.target == "nonneg" and lo < 0:
        if f.op == "mean_squared_logarithmic_error":
            return (f"target has negative values (min {lo:g}): mean_squared_logarithmic_error clamps "
                    f"them to 1e-7, so they all count as 0",
                    "MSLE is for non-negative targets: shift them, or use mse_loss / huber_loss")
        return (f"target has negative values (min {lo:g}) where {f.op} expects targets >= 0 (the call "
                f"raises on them)", "a Tweedie deviance with power >= 1 is for non-negative targets: check "
                "the targets, or use a regression loss such as huber_loss for real-valued ones")


def _zero_targets(f, e, p):
    if e.target != "nonzero" or not f.get("target_near_zero"):
        return None
    k = f.target_near_zero
    return (f"target has {k} value{'s' if k > 1 else ''} with |target| < 1e-7 (of {f.target_n}): {f.op} "
            f"divides by max(|target|, 1e-7), so each weighs up to 1e9 x its error",
            "drop those targets, or use a loss that does not divide by the target (l1_loss, "
            "mean_squared_logarithmic_error)")


def _inverted_boxes(f, e, p):
    if e.input != "boxes":
        return None
    for side in ("input", "target"):
        k = f.get(side + "_inverted")
        if k:
            name, first = f[side + "_name"], f[side + "_first_inverted"]
            return (f"{name} has {k} of {f[side + '_boxes']} boxes with x2 < x1 or y2 < y1 (first: {name}"
                    f"[{first[0]}] = {first[1]}): not (x1, y1, x2, y2) corners",
                    "boxes are (x1, y1, x2, y2): convert (x, y, w, h) boxes with x2 = x + w, y2 = y + h "
                    "(torchvision.ops.box_convert), and check the order of the coordinates")


def _box_units(f, e, p):
    if e.input != "boxes" or f.get("input_n", 0) < MIN_N or f.get("target_n", 0) < MIN_N:
        return None
    for a, b in (("input", "target"), ("target", "input")):
        if f.get(a + "_unit") and f.get(b + "_max", 0) > 2 and f.get(b + "_min", -1) >= 0:
            return (f"{f[a + '_name']} lies in [0, 1] (max {f[a + '_max']:.3g}) and {f[b + '_name']} "
                    f"reaches {f[b + '_max']:.4g}: normalized coordinates against pixels",
                    "put both in the same units (multiply the normalized boxes by the image's width and "
                    "height, or divide the others)")


def _collapsed(f, e, p):
    if e.input != "embeddings" or not f.get("input_collapsed"):
        return None
    return (f"every one of the {f.input_rows} rows of {f.input_name} is the same vector: collapsed embeddings",
            "the model maps everything to one point (a dead layer, a learning rate too high, or a loss "
            "without negatives): check its output before the loss")


def _pair_flags(f, e, p):
    if e.target != "pair_flags" or not f.get("target_n") or f.get("target_binary"):
        return None
    sim = p.get("similar_label", 1)
    if f.get("target_pm1"):
        return (f"target is -1/1 where {f.op} takes 1 and 0 (1 = similar_label = {sim}: a similar pair; "
                f"the call raises on -1)", "pass (target > 0) as the target (or 1 - it, with similar_label=0)")
    if f.get("target_integral") and f.get("target_min", -1) >= 0:
        return (f"target holds integers up to {f.target_max:g} where {f.op} takes a flag per pair: class "
                f"labels?", "pass (labels1 == labels2) as the target: 1 for a pair of the same class, 0 "
                "otherwise; or use batch_hard_triplet_loss / nt_xent_loss, which take the class labels")
    return (f"target has values other than 0 and 1 (min {f.target_min:g}, max {f.target_max:g}) where {f.op} "
            f"takes a flag per pair (the call raises on them)", "pass 1 for a similar pair, 0 for a dissimilar one")


def _batch_labels(f, e, p):
    if e.target != "row_labels" or not f.get("row_label_n"):
        return None
    n, k, single = f.row_label_n, f.row_label_classes, f.row_label_singletons
    if k == 1 and n >= 2:
        return (f"all {n} labels are the same class: no anchor has a negative (the call raises)",
                "batches need several classes: sample P classes x K samples (a PK sampler)")
    if single == n and n >= 2:
        return (f"every one of the {n} labels is a different class: no anchor has a positive",
                "batches need K >= 2 samples of each class: sample P classes x K samples (a PK sampler)")
    if 2 * single >= n and n >= MIN_N:
        return (f"{single} of the {n} rows are the only one of their class: they have no positive, so "
                f"they are no anchors", "sample P classes x K samples (K >= 2) per batch (a PK sampler)")


def _negative_counts(f, e, p):
    if e.target == "count" and f.get("target_min", 0) < 0:
        return (f"target has negative values (min {f.target_min:g}) where {f.op} expects counts (>= 0)",
                "check the targets; a Poisson likelihood is for non-negative counts")


def _zero_advantages(f, e, p):
    for name, px in _operands_of_kind(f, e, "advantages"):
        n = f.get(px + "n", 0)
        if n and f.get(px + "constant") and f.get(px + "min") == 0:
            return (f"every one of the {n} values of {name} is 0: the loss's gradient is 0 and the policy does "
                    f"not change", "check the advantage estimate (returns minus the value baseline, or GAE); "
                    "normalizing advantages of a batch whose returns are all equal gives 0")


def _not_done_flags(f, e, p):
    for name, px in _operands_of_kind(f, e, "dones"):
        if f.get(px + "n") and not f.get(px + "binary"):
            return (f"{name} has values other than 0 and 1 (min {f[px + 'min']:g}, max {f[px + 'max']:g}) "
                    f"where {f.op} takes a flag per step (1 where the episode ended: the target is "
                    f"rewards + gamma (1 - dones) next_values)",
                    f"pass the episode-end flags as {name} (bool or 0/1); discounts go in gamma")


def _image_out_of_range(f, e, p):
    if e.target != "image01" or not f.get("target_n"):
        return None
    lo, hi = f.target_min, f.target_max
    if lo >= 0 and hi <= 1:
        return None
    seen = (f"target has values outside [0, 1] (min {lo:g}, max {hi:g}) where {f.op} with recon='bce' expects "
            f"intensities in [0, 1]")
    if lo >= 0 and hi <= 255 and f.get("target_integral"):
        return seen + ": an 8-bit image", "divide it by 255 (target / 255)"
    return seen, "scale the data to [0, 1], or use recon='mse' for real-valued data"


def _class_never_present(f, e, p):
    absent = f.get("absent_classes")
    if e.target == "actions":
        return None      # an action the policy never took is no mislabelling
    if not f.get("labels") or not absent or f.get("n_labelled", 0) < ABSENT_FACTOR * f.n_classes:
        return None
    shown = ", ".join(str(c) for c in absent[:8]) + (", ..." if len(absent) > 8 else "")
    return (f"class{'es' if len(absent) > 1 else ''} {shown} of {f.n_classes} never appear{'' if len(absent) > 1 else 's'} "
            f"in {f.n_labelled} labels", "check the label mapping (classes numbered from 1? a class dropped "
            "upstream?), or drop the unused classes' scores")


def _weights_zero(f, e, p):
    if f.get("weight_all_zero"):
        return ("every weight is 0: the loss and its gradient are 0 (a weighted mean divides by 0)",
                "check the weights (a mask inverted? a weight of the wrong class?)")
    if f.get("labels") and f.get("n_labelled", 0) == 0 and f.get("n_ignored", 0) > 0:
        return (f"every target equals ignore_index ({p.get('ignore_index', -100)}): the mean is NaN",
                "check ignore_index and the padding of the targets")
    if f.get("class_weight_zero_present"):
        return ("the class weight of every class present in the target is 0: the weighted mean divides by 0 "
                "(NaN)", "check the class weights")


@functools.lru_cache(maxsize=None)
def _has_option(name, option) -> bool:
    """Whether the public loss ``name`` takes the parameter ``option``."""
    import fastloss

    try:
        return option in inspect.signature(getattr(fastloss, name)).parameters
    except (AttributeError, TypeError, ValueError):
        return False


class Check(NamedTuple):
    code: str
    test: Callable


#: Every check, in the order its findings are reported.
CHECKS = (
    Check("nan_target", _nan_target),
    Check("nan_input", _nan_input),
    Check("constant_target", _constant_target),
    Check("probabilities_as_logits", _probabilities_as_logits),
    Check("logits_as_probabilities", _logits_as_probabilities),
    Check("not_log_probabilities", _not_log_probabilities),
    Check("onehot_for_labels", _onehot_for_labels),
    Check("labels_for_binary", _labels_for_binary),
    Check("zero_one_for_pm1", _zero_one_for_pm1),
    Check("swapped_arguments", _swapped),
    Check("regression_on_classes", _regression_on_classes),
    Check("negative_counts", _negative_counts),
    Check("target_outside_support", _target_outside_support),
    Check("zero_targets", _zero_targets),
    Check("mask_out_of_range", _mask_out_of_range),
    Check("inverted_boxes", _inverted_boxes),
    Check("box_units", _box_units),
    Check("collapsed_embeddings", _collapsed),
    Check("not_pair_flags", _pair_flags),
    Check("batch_labels", _batch_labels),
    Check("gan_sigmoid", _gan_sigmoid),
    Check("zero_advantages", _zero_advantages),
    Check("not_done_flags", _not_done_flags),
    Check("image_out_of_range", _image_out_of_range),
    Check("class_never_present", _class_never_present),
    Check("weights_zero", _weights_zero),
)


# ---------------------------------------------------------------- the figures

def _items(shape, axis):
    if axis == -1:
        return shape[:-1]
    return () if len(shape) == 1 else (shape[0],) + tuple(shape[2:])


def _array(a, name, op):
    a = a if type(a) is np.ndarray else np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{op}: {name} must be a real (float, integer or bool) array, got dtype {a.dtype}")
    return a.astype(np.uint8) if a.dtype.kind == "b" else a


def figures(name, e: Expect, input, target, params, n_threads=None, others=None) -> Figures:
    """The figures the checks read: one summary pass over input and one
    over target (label counts for integer labels); ``others``, a dict of
    the loss's other operands by name, are counted for NaN only.  A target
    of None (nt_xent_loss without labels) has no figures."""
    import fastloss

    op = name
    if e.target == "none":
        target = None                               # a loss of one operand (a GAN generator's, a penalty's)
    ti = roles(e)[0]
    names = (e.args[0], e.args[ti] if ti < len(e.args) else "target")
    x = _array(input, names[0], op)
    t = _array(target if target is not None else np.zeros(0), names[1], op)
    f = Figures(op=op, input_shape=x.shape, target_shape=t.shape, input_name=names[0], target_name=names[1])
    if others:
        f["others_nan"] = [(k, int(np.count_nonzero(np.isnan(a))), a.size) for k, a in
                           ((k, _array(v, k, op)) for k, v in others.items() if v is not None) if a.dtype.kind == "f"]
        kinds = []
        for k, kind in (e.others or {}).items():     # the other operands that checks read: a summary each
            if others.get(k) is not None:
                summarize(_array(others[k], k, op), k + "_", f, n_threads=n_threads)
                kinds.append((k, kind))
        f["other_kinds"] = kinds
    rows = e.input.startswith("rows")
    # the class axis: -1 (the last) where the loss says so, else PyTorch's axis 1
    axis = None
    if rows:
        axis = e.axis or (-1 if getattr(getattr(fastloss, e.cls, None), "_class_axis", 1) == -1 else 1)
    row, C = 0, None
    if rows and x.ndim >= 1:
        C = x.shape[-1] if axis == -1 or x.ndim == 1 else x.shape[1]
        if axis == -1 or x.ndim <= 2:
            row = C if C and x.size else 0
    summarize(x, "input_", f, row=row, row_exp=e.input == "rows_logprob", n_threads=n_threads)
    same = t.shape == x.shape
    f["target_same_shape"] = same
    is_labels = (rows and not same and t.shape == _items(x.shape, axis)
                 and e.target not in ("multilabel", "seq_labels"))
    f["target_for_rows"] = (not rows and x.ndim >= 2 and x.shape[1] > 1 and t.shape == _items(x.shape, 1)
                            and e.input not in ("boxes", "embeddings"))
    if e.input == "embeddings" and x.ndim >= 1 and x.size:
        x2 = x.reshape(-1, x.shape[-1])
        f["input_rows"] = x2.shape[0]
        f["input_collapsed"] = x2.shape[0] >= 4 and bool(np.all(x2 == x2[0]))
    if target is None:
        return f
    if e.target == "row_labels":
        if t.dtype.kind in "iu" and t.ndim == 1:
            _, counts = np.unique(t, return_counts=True)
            f.update(row_label_n=int(t.size), row_label_classes=int(counts.size),
                     row_label_singletons=int(np.count_nonzero(counts == 1)))
        return f
    if is_labels and t.dtype.kind in "iu":
        ii = params.get("ignore_index", -100)
        ii = -100 if ii is None else int(ii)
        counts, n_ig, n_bad = _label_counts(t, C, ii)
        n_lab = int(counts.sum())
        present = np.flatnonzero(counts)
        f.update(labels=True, n_classes=C, n_labelled=n_lab, n_ignored=n_ig, n_out_of_range=n_bad,
                 n_present=int(present.size), only_class=int(present[0]) if present.size == 1 else None,
                 absent_classes=[int(c) for c in np.flatnonzero(counts == 0)])
        w = params.get("weight")
        if w is not None and n_lab:
            w = np.asarray(w, dtype=np.float64).reshape(-1)
            if w.shape == (C,):
                f["class_weight_zero_present"] = not np.any(w[present] != 0)
    else:
        trow = row if same and row else 0
        summarize(t, "target_", f, row=trow, n_threads=n_threads)
        if trow and f.get("target_rows"):
            f["target_onehot"] = bool(f["target_binary"] and f["target_onehot_rows"] == f["target_rows"])
        elif same and t.ndim >= 2 and f["target_binary"]:
            # one-hot along a class axis that is not contiguous: test it directly
            ax = -1 if axis == -1 else 1
            f["target_onehot"] = bool(np.all(np.sum(t, axis=ax, dtype=np.float64) == 1))
    if e.target in ("mask", "mask01") and f.get("target_n"):
        _mask_figures(f, t, params.get("ignore_index"))
    if e.target == "nonzero" and t.size:
        f["target_near_zero"] = int(np.count_nonzero(np.abs(t) < 1e-7))   # Keras's epsilon
    if e.input == "boxes":
        _box_figures(f, "input", x)
        _box_figures(f, "target", t)
    weight = params.get("weight")
    if weight is not None:
        w = np.asarray(weight)
        f["weight_all_zero"] = w.size > 0 and not np.any(w != 0)
    return f


def _mask_figures(f, t, ignore_index):
    """The range of a mask without the values equal to ignore_index (read
    again only when the summary's range is outside [0, 1]), and whether it
    is a 0/255 image mask."""
    if f.target_min >= 0 and f.target_max <= 1:
        return
    v = t.reshape(-1)
    if ignore_index is not None:
        v = v[v != ignore_index]
        if v.size == 0:
            f.update(mask_min=0.0, mask_max=0.0, mask_binary=True)
            return
        f.update(mask_min=float(np.nanmin(v)), mask_max=float(np.nanmax(v)),
                 mask_binary=bool(np.all((v == 0) | (v == 1))))
    if f.get("mask_max", f.target_max) == 255:
        f["mask_0_255"] = bool(np.all((v == 0) | (v == 255)))
        f["mask_void_255"] = not f["mask_0_255"] and bool(np.all((v == 0) | (v == 1) | (v == 255)))


def _box_figures(f, side, b):
    """Boxes with x2 < x1 or y2 < y1, and the first of them."""
    if b.ndim < 1 or b.shape[-1] != 4:
        return
    bb = b.reshape(-1, 4)
    bad = (bb[:, 2] < bb[:, 0]) | (bb[:, 3] < bb[:, 1])
    k = int(np.count_nonzero(bad))
    f[side + "_boxes"] = bb.shape[0]
    f[side + "_inverted"] = k
    if k:
        i = int(np.argmax(bad))
        idx = np.unravel_index(i, b.shape[:-1]) if b.ndim > 1 else ()
        f[side + "_first_inverted"] = (", ".join(str(int(j)) for j in idx) or "...",
                                       "[" + ", ".join(f"{float(c):g}" for c in bb[i]) + "]")


def terms_findings(name, params, input, target, n_threads=None):
    """The findings of a weighted sum of losses (combined_loss): each term's
    own, checked as that loss with its options, in the order of the terms."""
    terms = params.get("terms")
    if terms is None:
        raise ValueError(f"diagnose: {name} is checked term by term: pass terms= (a list of (weight, loss "
                         f"object)), or the CombinedLoss object itself")
    out = []
    for _, loss in terms:
        tname, te, tp = resolve(loss)
        tname, te = expectation(tname, te, tp)
        out += run_checks(tname, te, figures(tname, te, input, target, tp, n_threads=n_threads), tp)
    return out


def run_checks(name, e, f, params):
    out = []
    for c in CHECKS:
        r = c.test(f, e, params)
        if r is not None:
            out.append(Finding(c.code, name, r[0], r[1]))
    return out


def diagnose(loss, /, input, target=None, *args, weight=None, warn: bool = True,
             n_threads: Optional[int] = None, **params) -> Diagnosis:
    """Look for the common mistakes of a loss call before (or instead of)
    making it.

    Detects: probabilities passed where logits are expected (every value
    in [0, 1]; rows summing to 1 for the softmax losses); logits or raw
    scores where (log-)probabilities are expected; one-hot or probability
    targets where integer labels are expected, and labels where 0/1
    targets are; 0/1 targets where -1/1 are; arguments that look swapped
    (an integer-valued input with a continuous target); a regression loss
    on 0/1, -1/1 or one-hot targets; NaN in the target or input; a
    constant target; a class that never appears; weights (or
    ``ignore_index``) that zero every term; a target outside the loss's
    support (<= 0 for the Gamma deviance, < 0 for Tweedie and MSLE, 0 for
    MAPE); a segmentation mask outside [0, 1] (a 0/255 image, class labels,
    a 255 void label without ``ignore_index``) or soft where the Lovasz
    hinge needs 0/1; boxes with x2 < x1 or y2 < y1 (``(x, y, w, h)``
    boxes), and boxes in normalized coordinates against pixels; for the
    GAN, RL and VAE objectives a critic's outputs all in [0, 1] (a final
    sigmoid), probabilities where log-probabilities (PPO's old ones, CTC's
    input) are expected, advantages that are all 0, TD ``dones`` other
    than 0/1, a VAE target outside [0, 1] with ``recon="bce"`` (an 8-bit
    image); a :class:`CombinedLoss` is checked term by term.  The
    checks and their thresholds are the table
    ``fastloss._diagnose.CHECKS``.

    Parameters
    ----------
    loss : str, function, class or loss object
        The loss to check the call of: ``"cross_entropy"``,
        ``fl.cross_entropy``, ``fl.CrossEntropyLoss`` or
        ``fl.CrossEntropyLoss(ignore_index=0)`` (whose options are read).
        A trimmed or winsorized loss is checked as the loss it wraps
        (``fl.Trimmed(fl.HuberLoss())``, or ``"trimmed"`` with ``loss=``).
    input, target, *args : array_like
        The loss's array operands as you would pass them, in its argument
        order (``anchor, positive, negative`` for a triplet;
        ``input1, input2, target`` for a pair; ``embeddings, labels``).
        The first is checked as the input, the target (or labels) as the
        target, the others for NaN; operands the checks do not read
        (``var``) are accepted and ignored.
    weight : array_like, optional
        The weights you would pass (per element, or per class).
    warn : bool
        Issue each finding as a :class:`LossWarning` (default True).
    n_threads : int, optional
        Threads for the summary pass.
    **params
        The loss's options that matter here (``ignore_index``, ``mode``,
        ``from_logits``, ``power``, ``loss``, ...); others are accepted and
        ignored.

    Returns
    -------
    Diagnosis
        A list of :class:`Finding` ``(code, op, message, fix)``, empty when
        nothing was found; it prints as a report (HTML in a notebook).

    Notes
    -----
    One pass of the compiled summary kernel over input and one over target
    (label counts for integer labels).  The checks that read intent from a
    pattern of values need at least 16 values.

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> rng = np.random.default_rng(0)
    >>> logits = rng.normal(size=(64, 5)); labels = rng.integers(0, 5, 64)
    >>> probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    >>> d = fl.diagnose(fl.cross_entropy, probs, labels, warn=False)
    >>> d.codes
    ['probabilities_as_logits']
    >>> print(d[0].fix)
    pass the raw scores (drop the softmax): cross_entropy applies it itself, more stably
    >>> fl.diagnose(fl.cross_entropy, logits, labels).ok
    True
    """
    name, e, p = resolve(loss)
    p.update(params)
    if weight is not None:
        p["weight"] = weight
    if e.input == "loss" and args and "loss" not in p:
        p["loss"] = args[0]                           # trimmed(input, target, loss, ...)
    name, e = expectation(name, e, p)
    if e.input == "terms" and args and "terms" not in p:
        p["terms"] = args[0]                          # combined_loss(input, target, terms)
    if e.input == "terms":
        found = Diagnosis(terms_findings(name, p, input, target, n_threads), name)
        if warn:
            for finding in found:
                warnings.warn(LossWarning(finding), stacklevel=2)
        return found
    arrays = (input, target) + args
    ti, oi = roles(e)
    target = arrays[ti] if ti < len(arrays) else None
    others = {e.args[i]: arrays[i] for i in oi if i < len(arrays)}
    f = figures(name, e, input, target, p, n_threads=n_threads, others=others)
    found = Diagnosis(run_checks(name, e, f, p), name)
    if warn:
        for finding in found:
            warnings.warn(LossWarning(finding), stacklevel=2)
    return found
