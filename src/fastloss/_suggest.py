"""``fastloss.suggest``: choose a loss from the data.

The decision framework fastloss's loss guide gives -- task type first, then
the data's characteristics -- is written here as two tables of data, not a
chain of ifs:

* ``TASK_RULES`` infers the task from the shapes and values of ``target``
  (and ``input``) when the caller does not name it;
* ``RULES`` maps (task, measured figures) to a configured fastloss loss and
  a one-line reason that quotes the figure behind it.

A rule fires when all its conditions hold; the recommendations are the
rules that fired, in the order of their ``rank``.  The figures come from one
pass of the compiled summary kernel over the target (``_summary.pyx``:
counts, range, integrality, moments, row sums; a second pass over
``target - input`` for residuals), plus a fixed-seed sample of 65,536
residuals for the median-based figures, so no whole array is sorted.

Thresholds, and where they come from
------------------------------------
``IMBALANCE = 10``
    "imbalance > 10:1 -> focal" is the threshold of the loss guide fastloss
    is built from (issue 17's decision framework).  It is a rule of thumb,
    not a derived constant.
``HUBER_K = 1.345``
    Huber's tuning constant for 95 % asymptotic efficiency at the normal
    distribution (Huber, *Robust Statistics*, 1981; Holland & Welsch, 1977;
    statsmodels' ``HuberT`` default).  ``delta = 1.345 * s`` with ``s`` the
    residuals' robust standard deviation ``1.4826 * MAD`` (1.4826 makes the
    MAD consistent for the normal's SD).
``OUTLIER_Z = 3``, ``OUTLIER_FRAC = 0.01``
    A residual beyond 3 robust SDs occurs with probability 0.27 % under a
    normal distribution.  Calling the tails heavy when more than 1 % of the
    residuals are there, and that excess is at least 3 binomial standard
    errors above 0.27 %, is this module's own judgment (not from a source).
``HETERO_CORR = 0.3``
    The correlation between ``|residual|`` and the prediction above which
    the noise is called heteroscedastic: Cohen's (1988) "medium" effect
    size; using it here, and asking for ``|r| sqrt(n) >= 4`` besides, is
    this module's own judgment.
Focal loss parameters
    ``alpha = 0.25, gamma = 2``: the best setting of Lin et al. (2017,
    "Focal Loss for Dense Object Detection", Table 1), with alpha on the
    rare class (0.75 when the rare class is the negative one).
Class weights
    ``n / (C * n_c)``: scikit-learn's ``class_weight="balanced"``
    (``compute_class_weight``); a class absent from the data gets the
    largest weight of the present ones (this module's choice).
``pos_weight = negatives / positives``
    As PyTorch's ``BCEWithLogitsLoss`` documentation recommends.
Box regression
    ``SmoothL1Loss(beta=1/9)``: torchvision's detection models (RPN).
    Boxes as ``(x1, y1, x2, y2)`` corners (a target of shape ``(..., 4)``
    with ``x2 >= x1, y2 >= y1``, task="detection"): the IoU losses, GIoU
    first (Rezatofighi et al. 2019: a gradient when boxes do not overlap),
    then DIoU and CIoU (Zheng et al. 2020: the centre distance, and the
    aspect ratio).
Robust alternatives to Huber, for heavy-tailed residuals
    ``PseudoHuberLoss(delta)`` with Huber's delta (smooth everywhere);
    ``CauchyLoss(c = 2.385 s)`` and ``TukeyBiweightLoss(c = 4.685 s)``: the
    tuning constants for 95 % efficiency at the normal (Holland & Welsch,
    1977; MATLAB's ``robustfit`` and statsmodels' ``TukeyBiweight``
    defaults), ``s`` the robust SD of the residuals.  Both redescend (the
    gradient of a gross outlier goes to 0) and are not convex.
``SKEW = 1``
    A positive target is called right-skewed when its sample skewness is
    above 1: "highly skewed" in Bulmer's (1979, *Principles of
    Statistics*) rule of thumb.  Then the Gamma deviance on the log of the
    mean (variance growing as the mean squared), and the Tweedie deviance.
``ZERO_FRAC = 0.05``
    A non-negative, non-integer target with at least 5 % exact zeros has a
    point mass at 0 that no continuous distribution has: zero-inflated,
    the compound Poisson-Gamma (Tweedie with 1 < power < 2).  The 5 % is
    this module's judgment; ``power = 1.5`` is XGBoost's and LightGBM's
    default ``tweedie_variance_power``.
Ranking and metric learning (task="ranking")
    Integer class labels, one per embedding: batch-hard triplets first
    (Hermans, Beyer & Leibe 2017, "In Defense of the Triplet Loss"), the
    supervised NT-Xent (Khosla et al. 2020; temperature 0.07) and
    batch-all triplets; they need two samples of a class in the batch.  A
    0/1 flag per pair: the contrastive loss (Hadsell, Chopra & LeCun 2006).
    A -1/1 target: the margin ranking loss (which of two scores ranks
    higher) and the cosine embedding loss (PyTorch's pair losses).
Sequences (task="sequence")
    Integer label sequences, ``(N, S)`` padded or one ``(S,)``: with
    frames of scores that are not one per label (``(T, N, C)`` or ``(N,
    T, C)``), the labels need an alignment: CTC (Graves et al. 2006),
    summed over every alignment, class 0 the blank.  Scores ``(N, C, S)``,
    a label per step, are a classification per step: cross-entropy.
    Without input both, CTC first.
Segmentation
    A label per pixel (integer labels ``(N, d1, ...)`` for scores ``(N, C,
    d1, ...)``) or a 0/1 mask (a 0/1 target of at least 3 dimensions, or
    task="segmentation"): cross-entropy (or BCE) plus Dice, the common
    default of the segmentation guides (Dice weighs each class by its
    overlap, whatever its area); the Lovasz losses when the metric is the
    IoU (Berman et al. 2018: a convex surrogate of the Jaccard index).
"""
from __future__ import annotations

import html
import math
import operator
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np

from . import _summary
from ._config import _threads

__all__ = ["suggest", "Recommendation", "Suggestions", "TASKS"]

TASKS = ("regression", "binary", "multiclass", "multilabel", "distribution", "segmentation", "detection",
         "ranking", "sequence")

IMBALANCE = 10.0
HUBER_K = 1.345
MAD_TO_SD = 1.4826
OUTLIER_Z = 3.0
OUTLIER_FRAC = 0.01
GAUSS_OUTLIER_P = 0.0026997960632601866   # P(|Z| > 3), Z standard normal
HETERO_CORR = 0.3
HETERO_Z = 4.0
CAUCHY_K = 2.385
TUKEY_K = 4.685
SKEW = 1.0
ZERO_FRAC = 0.05
FOCAL_ALPHA, FOCAL_GAMMA = 0.25, 2.0
SAMPLE = 65536                             # residuals sampled for the median-based figures
_SEED = 20171107                           # fixed: the same data gives the same suggestion

_OPS = {"==": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge, "<": operator.lt,
        "<=": operator.le}


# ---------------------------------------------------------------- figures

class Figures(dict):
    """The measured figures a rule reads (a dict, also readable as
    attributes; a figure that was not measured is absent)."""

    def __getattr__(self, k):
        try:
            return self[k]
        except KeyError:
            raise AttributeError(k) from None


def _float_view(a: np.ndarray) -> np.ndarray:
    """``a`` as a C-contiguous float32/float64 array (in place when it is one)."""
    if a.dtype in (np.float32, np.float64) and a.flags.c_contiguous:
        return a
    if a.dtype.kind == "f" and a.dtype.itemsize <= 4:
        return np.ascontiguousarray(a, dtype=np.float32)
    return np.ascontiguousarray(a, dtype=np.float64)


def _moments(s: dict, n: float):
    """(mean offset, variance, skewness, excess kurtosis) from shifted power sums."""
    if n < 1:
        return None, None, None, None
    m = s["s1"] / n
    e2, e3, e4 = s["s2"] / n, s["s3"] / n, s["s4"] / n
    mu2 = max(e2 - m * m, 0.0)
    mu3 = e3 - 3 * m * e2 + 2 * m ** 3
    mu4 = e4 - 4 * m * e3 + 6 * m * m * e2 - 3 * m ** 4
    if mu2 <= 0 or not math.isfinite(mu2):
        return m, mu2, None, None
    return m, mu2, mu3 / mu2 ** 1.5, mu4 / mu2 ** 2 - 3.0


def summarize(a: np.ndarray, prefix: str, f: Figures, *, row: int = 0, row_exp: bool = False,
              moments: bool = False, n_threads: Optional[int] = None) -> Figures:
    """Run the summary kernel over ``a`` and store its figures as
    ``f[prefix + name]``: ``n nan inf min max integral binary pm1 unit npos``,
    with ``moments`` also ``mean var skew kurtosis``, with ``row`` also
    ``row_sum_min row_sum_max onehot_rows``."""
    x = _float_view(a)
    shift = float(x.flat[0]) if x.size and moments and math.isfinite(float(x.flat[0])) else 0.0
    s = _summary.summarize(x, row=row if x.size else 0, row_exp=row_exp, moments=moments, shift=shift,
                           n_threads=_threads(n_threads, "suggest"))
    n_all = x.size
    p = prefix
    f[p + "n"] = n_all
    f[p + "nan"] = int(s["nan"])
    f[p + "inf"] = int(s["posinf"] + s["neginf"])
    f[p + "min"] = s["min"] if n_all > s["nan"] else float("nan")
    f[p + "max"] = s["max"] if n_all > s["nan"] else float("nan")
    fin = int(s["n"])
    f[p + "finite"] = fin
    f[p + "integral"] = fin > 0 and s["nonint"] == 0
    f[p + "binary"] = n_all > 0 and s["is01"] == n_all
    f[p + "pm1"] = n_all > 0 and s["ispm1"] == n_all
    f[p + "unit"] = n_all > 0 and s["in01"] == n_all
    f[p + "npos"] = int(s["npos"])
    f[p + "constant"] = fin == n_all and n_all >= 2 and s["min"] == s["max"]
    if moments:
        m, var, skew, kurt = _moments(s, fin)
        f[p + "mean"] = None if m is None else shift + m
        f[p + "var"] = var
        f[p + "skew"] = skew
        f[p + "kurtosis"] = kurt
    if row and x.size:
        f[p + "row_sum_min"] = s["rmin"]
        f[p + "row_sum_max"] = s["rmax"]
        f[p + "onehot_rows"] = int(s["onehot"])
        f[p + "rows"] = x.size // row
        f[p + "row_dev"] = max(abs(s["rmin"] - 1), abs(s["rmax"] - 1))
    return f


def _label_counts(t: np.ndarray, C: int, ignore_index: int = -100):
    """(counts per class, n_ignored, n_bad) of integer(-valued) labels."""
    if t.dtype.kind == "f":
        t = t.astype(np.int64)
    elif t.dtype not in (np.int64, np.int32, np.uint8) or not t.flags.c_contiguous:
        t = np.ascontiguousarray(t, dtype=np.int64)
    return _summary.count_labels(t, C, ignore_index)


def _class_figures(f: Figures, counts: np.ndarray, where: str):
    present = counts[counts > 0]
    f.update(n_classes=int(counts.size), class_counts=counts, class_source=where,
             absent_classes=[int(c) for c in np.flatnonzero(counts == 0)])
    if present.size:
        lo, hi = int(present.min()), int(present.max())
        total = float(counts.sum())
        f.update(min_count=lo, max_count=hi, imbalance=hi / lo, n_present=int(present.size),
                 min_class_pct=100 * lo / total, max_class_pct=100 * hi / total)


def _residual_figures(f: Figures, t: np.ndarray, x: np.ndarray, n_threads):
    """Residuals r = target - input: robust scale, tail and heteroscedasticity
    figures (a fixed-seed sample for the median and MAD; one kernel pass for
    the moments and the correlation of |r| with the input)."""
    tf, xf = _float_view(t), _float_view(x)
    if tf.dtype != xf.dtype:
        tf, xf = tf.astype(np.float64), xf.astype(np.float64)
    n = tf.size
    flat_t, flat_x = tf.reshape(-1), xf.reshape(-1)
    if n > SAMPLE:
        idx = np.random.default_rng(_SEED).integers(0, n, SAMPLE)
        rs, xs = flat_t[idx].astype(np.float64) - flat_x[idx], flat_x[idx].astype(np.float64)
    else:
        rs, xs = flat_t.astype(np.float64) - flat_x, flat_x.astype(np.float64)
    ok = np.isfinite(rs)
    rs, xs = rs[ok], xs[ok]
    if rs.size < 2:
        return
    med = float(np.median(rs))
    dev = np.abs(rs - med)
    mad = float(np.median(dev))
    scale = MAD_TO_SD * mad
    if scale == 0:  # more than half the residuals equal: fall back to the mean absolute deviation
        scale = math.sqrt(math.pi / 2) * float(dev.mean())
    s = _summary.summarize(tf, xf, moments=True, shift=med, shift_b=float(xs.mean()), shift_r=float(dev.mean()),
                           n_threads=_threads(n_threads, "suggest"))
    nf = s["n"]
    m, var, skew, kurt = _moments(s, nf)
    f.update(resid_n=int(nf), resid_median=med, resid_scale=scale, resid_sd=None if var is None else math.sqrt(var),
             resid_skew=skew, resid_kurtosis=kurt, resid_sampled=int(rs.size))
    if scale > 0:
        k = int(np.count_nonzero(dev > OUTLIER_Z * scale))
        ns = rs.size
        frac = k / ns
        z = (k - ns * GAUSS_OUTLIER_P) / math.sqrt(ns * GAUSS_OUTLIER_P * (1 - GAUSS_OUTLIER_P))
        f.update(outlier_frac=frac, outlier_pct=100 * frac, outlier_z=z,
                 heavy_tails=bool(frac > OUTLIER_FRAC and z >= OUTLIER_Z),
                 resid_max_z=float(dev.max()) / scale)
    else:
        f.update(heavy_tails=False, outlier_frac=0.0, outlier_pct=0.0, outlier_z=0.0)
    # correlation of e = |r - med| with the input x and with |x - mean x|
    # (noise that grows with the prediction, or with its distance from the
    # centre), from the kernel's sums
    if nf >= 3:
        me = s["r1"] / nf
        ve = s["r2"] / nf - me * me
        best = against = None
        for what, sx, sxx, sxe in (("input", s["bs1"], s["bs2"], s["br"]),
                                   ("|input - mean|", s["ba1"], s["bs2"], s["bar"])):
            mx = sx / nf
            vx = sxx / nf - mx * mx
            if vx > 0 and ve > 0:
                rho = max(-1.0, min(1.0, (sxe / nf - mx * me) / math.sqrt(vx * ve)))
                if best is None or abs(rho) > abs(best):
                    best, against = rho, what
        if best is not None:
            f.update(hetero_corr=best, hetero_against=against, hetero_corr_abs=abs(best), hetero_z=abs(best) * math.sqrt(nf))


# ---------------------------------------------------------------- the task

class TaskRule(NamedTuple):
    task: str
    when: tuple
    reason: str


#: How the task is inferred when the caller does not name it: the first
#: row whose conditions all hold.
TASK_RULES = (
    TaskRule("segmentation", (("labels_for_rows", "==", True), ("spatial", "==", True)),
             "integer labels of shape {target_shape} for scores of shape {input_shape}: a label per position"),
    TaskRule("multiclass", (("labels_for_rows", "==", True),),
             "integer labels for rows of {n_classes} class scores"),
    TaskRule("multiclass", (("onehot", "==", True),),
             "target rows are one-hot over {n_classes} classes"),
    TaskRule("segmentation", (("target_binary", "==", True), ("target_ndim", ">=", 3)),
             "0/1 target of shape {target_shape}: a mask per pixel"),
    TaskRule("multilabel", (("target_binary", "==", True), ("target_ndim", ">=", 2), ("target_cols", ">", 1)),
             "0/1 target with {target_cols} columns, rows not one-hot"),
    TaskRule("distribution", (("rows_are_distributions", "==", True),),
             "target rows are non-negative and sum to 1"),
    TaskRule("binary", (("target_binary", "==", True),), "target is 0/1"),
    TaskRule("binary", (("target_pm1", "==", True),), "target is -1/1"),
    TaskRule("multiclass", (("has_input", "==", False), ("target_integral", "==", True), ("target_min", ">=", 0),
                            ("target_ndim", "==", 1)),
             "integer target without input: taken as class labels (pass task='regression' for counts)"),
    TaskRule("regression", (), "continuous target"),
)


# ---------------------------------------------------------------- the rules

class Rule(NamedTuple):
    """One row of the decision table."""
    tasks: tuple          # the tasks it applies to
    when: tuple           # conditions (figure, op, value), all must hold
    loss: str             # the fastloss class to configure
    params: Any           # its constructor's arguments: a dict, or a function of the figures
    reason: str           # one line, formatted with the figures
    rank: int             # order among the rules that fire (lower first)


def _focal(f):
    pos_rare = f.pos_frac <= 0.5
    return {"alpha": FOCAL_ALPHA if pos_rare else 1 - FOCAL_ALPHA, "gamma": FOCAL_GAMMA}


def _pos_weight(f):
    return {"pos_weight": np.asarray(f.neg_pos_ratio)}


def _pos_weight_cols(f):
    return {"pos_weight": f.col_neg_pos}


def _balanced(f):
    counts = f.class_counts.astype(np.float64)
    present = counts > 0
    w = np.zeros_like(counts)
    w[present] = counts[present].sum() / (present.sum() * counts[present])
    w[~present] = w[present].max()
    return {"weight": w}


def _huber(f):
    return {"delta": float(f"{HUBER_K * f.resid_scale:.3g}")}


def _cauchy(f):
    return {"c": float(f"{CAUCHY_K * f.resid_scale:.3g}")}


def _tukey(f):
    return {"c": float(f"{TUKEY_K * f.resid_scale:.3g}")}


_CLASSES = ("multiclass", "segmentation", "sequence")
_IMB = ("imbalance", ">=", IMBALANCE)
_BAL = ("imbalance", "<", IMBALANCE)
_LABELS = ("seg_mask", "==", False)      # class labels, not a segmentation mask
_HEAVY = ("heavy_tails", "==", True)

#: The decision table: task -> (figures) -> loss, reason.
RULES = (
    # regression
    Rule(("regression",), (("counts", "==", True),), "PoissonNLLLoss", {"log_input": True},
         "target holds non-negative integers (mean {target_mean:.3g}, variance {target_var:.3g}): counts; "
         "the Poisson NLL on a predicted log-rate", 5),
    Rule(("regression",), (("heavy_tails", "==", True),), "HuberLoss", _huber,
         "{outlier_pct:.1f} % of residuals beyond 3 robust SDs (0.27 % if Gaussian), excess kurtosis "
         "{resid_kurtosis:.1f}: heavy tails; delta = 1.345 x robust SD {resid_scale:.3g}", 10),
    Rule(("regression",), (("hetero_corr_abs", ">=", HETERO_CORR), ("hetero_z", ">=", HETERO_Z)),
         "GaussianNLLLoss", {},
         "corr(|residual|, {hetero_against}) = {hetero_corr:.2f}: the noise changes with the prediction "
         "(heteroscedastic); predict a variance too", 8),
    Rule(("regression",), (("heavy_tails", "==", True),), "L1Loss", {},
         "heavy tails ({outlier_pct:.1f} % beyond 3 robust SDs): L1 fits the median, robust to any "
         "share of outliers below half", 20),
    Rule(("regression",), (_HEAVY,), "PseudoHuberLoss", _huber,
         "heavy tails ({outlier_pct:.1f} % beyond 3 robust SDs): Huber with every derivative continuous "
         "(XGBoost's reg:pseudohubererror); delta = 1.345 x robust SD {resid_scale:.3g}", 12),
    Rule(("regression",), (_HEAVY,), "CauchyLoss", _cauchy,
         "heavy tails (largest residual {resid_max_z:.0f} robust SDs out): the Cauchy loss's gradient "
         "fades for gross outliers; c = 2.385 x robust SD (95 % efficiency at the normal); not convex, "
         "start from a Huber fit", 22),
    Rule(("regression",), (_HEAVY,), "TukeyBiweightLoss", _tukey,
         "heavy tails (largest residual {resid_max_z:.0f} robust SDs out): Tukey's biweight ignores "
         "residuals beyond c = 4.685 x robust SD (95 % efficiency at the normal); not convex, start from a "
         "Huber fit", 24),
    Rule(("regression",), (("counts", "==", False), ("target_min", ">", 0), ("target_skew", ">=", SKEW)),
         "GammaNLLLoss", {},
         "target is positive (min {target_min:.3g}) and right-skewed (skewness {target_skew:.2f}): the "
         "Gamma deviance on the log of the mean (spread growing with the mean)", 6),
    Rule(("regression",), (("counts", "==", False), ("target_min", ">", 0), ("target_skew", ">=", SKEW)),
         "TweedieLoss", {"power": 1.5},
         "positive, right-skewed target (skewness {target_skew:.2f}): the Tweedie deviance, between the "
         "Poisson (power 1) and the Gamma (power 2)", 16),
    Rule(("regression",), (("target_integral", "==", False), ("target_min", "==", 0),
                           ("zero_frac", ">=", ZERO_FRAC)),
         "TweedieLoss", {"power": 1.5},
         "{zero_pct:.3g} % of targets are exactly 0, the others positive and continuous: zero-inflated; "
         "the Tweedie deviance with 1 < power < 2 (compound Poisson-Gamma), power 1.5 to start", 6),
    Rule(("regression",), (("heavy_tails", "==", False),), "MSELoss", {},
         "residuals without heavy tails ({outlier_pct:.2f} % beyond 3 robust SDs, excess kurtosis "
         "{resid_kurtosis:.2f}): MSE fits the conditional mean", 30),
    Rule(("regression",), (("has_input", "==", False),), "MSELoss", {},
         "no input given, so no residuals to measure: MSE (the conditional mean) as the default; "
         "pass input= to check the residuals' tails", 30),
    # binary
    Rule(("binary",), (("input_probabilities", "==", True),), "BCELoss", {},
         "input is all in [0, 1]: probabilities, which BCELoss takes (BCEWithLogitsLoss on the logits "
         "is stabler)", 5),
    Rule(("binary",), (("target_pm1", "==", True),), "SoftMarginLoss", {},
         "target is -1/1: the logistic loss in that encoding", 8),
    Rule(("binary",), (_IMB, ("target_binary", "==", True)), "SigmoidFocalLoss", _focal,
         "positives are {pos_pct:.3g} % of targets (1:{imbalance:.0f}): above 10:1, the focal loss "
         "down-weights the many easy examples", 10),
    Rule(("binary",), (_BAL, ("target_binary", "==", True)), "BCEWithLogitsLoss", {},
         "classes balanced within 10:1 (positives {pos_pct:.3g} %): binary cross-entropy on logits", 10),
    Rule(("binary",), (("soft_labels", "==", True),), "BCEWithLogitsLoss", {},
         "target holds probabilities in [0, 1] (soft labels): binary cross-entropy on logits", 10),
    Rule(("binary",), (_IMB, ("target_binary", "==", True)), "BCEWithLogitsLoss", _pos_weight,
         "pos_weight = negatives / positives = {neg_pos_ratio:.3g}: both classes weigh the same", 20),
    Rule(("binary",), (("target_pm1", "==", True),), "HingeLoss", {},
         "target is -1/1: the hinge (max-margin) loss", 25),
    # multiclass, and a label per position or per step
    Rule(("multiclass", "segmentation"), (("input_probabilities", "==", True),), "NLLLoss", {},
         "input rows sum to 1 (softmax outputs; largest |sum - 1| {input_row_dev:.2g}): "
         "NLLLoss on log(input), or CrossEntropyLoss on the logits", 5),
    Rule(_CLASSES, (_IMB, _LABELS), "CrossEntropyLoss", _balanced,
         "class counts range {min_count}..{max_count} ({imbalance:.0f}:1): inverse-frequency weights "
         "n / (C n_c)", 10),
    Rule(_CLASSES, (_BAL, _LABELS), "CrossEntropyLoss", {},
         "{n_present} classes balanced within 10:1 (counts {min_count}..{max_count}): cross-entropy", 10),
    Rule(_CLASSES, (_IMB, _LABELS), "SoftmaxFocalLoss", {"gamma": FOCAL_GAMMA},
         "class imbalance {imbalance:.0f}:1: the focal loss down-weights the easy, frequent classes", 20),
    # segmentation: a label per pixel, or a 0/1 mask
    Rule(("segmentation",), (("labels_for_rows", "==", True), _LABELS), "CEDiceLoss", {},
         "a label per pixel, the rarest class on {min_class_pct:.3g} % of the pixels: cross-entropy plus "
         "Dice, which weighs each class by its overlap whatever its area", 8),
    Rule(("segmentation",), (("labels_for_rows", "==", True), _LABELS), "LovaszSoftmaxLoss", {},
         "when the metric is the mean IoU: the Lovasz-softmax optimizes the Jaccard index directly "
         "(Berman et al. 2018)", 25),
    Rule(("segmentation",), (("seg_mask", "==", True),), "BCEDiceLoss", {},
         "a 0/1 mask, foreground on {fg_pct:.3g} % of the pixels: BCE plus Dice, which counts the "
         "foreground's overlap whatever its area", 8),
    Rule(("segmentation",), (("seg_mask", "==", True), ("target_binary", "==", True)), "LovaszHingeLoss", {},
         "when the metric is the IoU: the Lovasz hinge optimizes the Jaccard index directly "
         "(Berman et al. 2018)", 25),
    # multilabel
    Rule(("multilabel",), (_IMB,), "BCEWithLogitsLoss", _pos_weight_cols,
         "label frequencies {min_pos_pct:.3g}..{max_pos_pct:.3g} % per column (worst 1:{imbalance:.0f}): "
         "pos_weight = negatives / positives per label", 10),
    Rule(("multilabel",), (_BAL,), "BCEWithLogitsLoss", {},
         "labels balanced within 10:1 per column ({min_pos_pct:.3g}..{max_pos_pct:.3g} % positive): "
         "binary cross-entropy per label", 10),
    Rule(("multilabel",), (_IMB,), "SigmoidFocalLoss", {"alpha": FOCAL_ALPHA, "gamma": FOCAL_GAMMA},
         "rare labels (worst 1:{imbalance:.0f}): the focal loss per label", 20),
    Rule(("multilabel",), (_BAL,), "MultiLabelSoftMarginLoss", {},
         "the same loss averaged over the labels of each sample (PyTorch's multilabel soft margin)", 20),
    # distributions
    Rule(("distribution",), (), "CrossEntropyLoss", {},
         "target rows are distributions (largest |sum - 1| {target_row_dev:.2g}): "
         "cross-entropy with probability targets, on logits", 10),
    Rule(("distribution",), (), "KLDivLoss", {"reduction": "batchmean"},
         "KL divergence on log-probabilities: cross-entropy minus the target's entropy", 20),
    # ranking and metric learning
    Rule(("ranking",), (("metric_labels", "==", True), ("classes_with_pairs", ">=", 1)), "BatchHardTripletLoss", {},
         "{n_label_classes} classes among {n_labelled_rows} embeddings, {min_per_class}..{max_per_class} per class: "
         "batch-hard triplets, the hardest positive and negative of each anchor (Hermans et al. 2017)", 10),
    Rule(("ranking",), (("metric_labels", "==", True), ("classes_with_pairs", ">=", 1)), "NTXentLoss", {},
         "class labels: the supervised NT-Xent contrasts every pair of the batch at once (Khosla et al. 2020)", 15),
    Rule(("ranking",), (("metric_labels", "==", True), ("classes_with_pairs", ">=", 1)), "BatchAllTripletLoss", {},
         "every valid triplet of the batch, averaged over those with a positive loss (Hermans et al. 2017)", 20),
    Rule(("ranking",), (("target_binary", "==", True),), "ContrastiveLoss", {},
         "target is 0/1 ({pos_pct:.3g} % ones): a similar / dissimilar flag per pair: the contrastive loss "
         "(Hadsell et al. 2006)", 10),
    Rule(("ranking",), (("target_pm1", "==", True), ("target_binary", "==", False)), "MarginRankingLoss", {},
         "target is -1/1 ({pos_pct:.3g} % ones): which of two scores should rank higher: the margin ranking "
         "loss", 10),
    Rule(("ranking",), (("target_pm1", "==", True), ("target_binary", "==", False)), "CosineEmbeddingLoss", {},
         "a -1/1 flag per pair of embeddings (similar / dissimilar): the cosine embedding loss", 20),
    # sequences: label sequences, aligned frame by frame or not
    Rule(("sequence",), (("seq_labels", "==", True), ("seq_aligned", "==", False)), "CTCLoss", {},
         "label sequences (length {seq_len}) for {seq_frames} frames, not one label per frame: CTC sums over "
         "every alignment of the labels to the frames (Graves et al. 2006); class 0 is the blank", 5),
    Rule(("sequence",), (("seq_labels", "==", True), ("has_input", "==", False)), "CTCLoss", {},
         "label sequences (length {seq_len}): if they are transcripts, not aligned frame by frame, CTC "
         "(Graves et al. 2006; class 0 is the blank); aligned, one label per step: cross-entropy per step", 9),
    # detection
    Rule(("detection",), (("boxes", "==", False),), "SigmoidFocalLoss", {"alpha": FOCAL_ALPHA, "gamma": FOCAL_GAMMA},
         "dense detection: RetinaNet's classification loss (Lin et al. 2017: alpha 0.25, gamma 2)", 10),
    Rule(("detection",), (("boxes", "==", True),), "GeneralizedBoxIoULoss", {"reduction": "mean"},
         "{n_boxes} boxes as (x1, y1, x2, y2), areas spanning {area_span:.3g}x: the IoU losses are "
         "scale-invariant; GIoU keeps a gradient when boxes do not overlap (Rezatofighi et al. 2019)", 12),
    Rule(("detection",), (("boxes", "==", True),), "DistanceBoxIoULoss", {"reduction": "mean"},
         "boxes: DIoU adds the distance of the centres, which converges faster than GIoU (Zheng et al. "
         "2020)", 14),
    Rule(("detection",), (("boxes", "==", True),), "CompleteBoxIoULoss", {"reduction": "mean"},
         "boxes with aspect ratios (w / h) {min_aspect:.2g}..{max_aspect:.2g}: CIoU adds the aspect "
         "ratio to DIoU (Zheng et al. 2020)", 16),
    Rule(("detection",), (), "SmoothL1Loss", {"beta": 1 / 9},
         "box regression: smooth L1 with beta 1/9, as torchvision's detection models", 20),
)


def _holds(f: Figures, when) -> bool:
    for name, op, value in when:
        v = f.get(name)
        if v is None:
            return False
        try:
            if not _OPS[op](v, value):
                return False
        except TypeError:
            return False
    return True


# ---------------------------------------------------------------- results

class Recommendation(NamedTuple):
    """A configured loss, why, and the rule that chose it."""
    loss: Any
    reason: str
    params: dict
    rule: Rule

    @property
    def name(self) -> str:
        return type(self.loss).__name__

    def call(self) -> str:
        """The constructor call, as code (arrays abbreviated)."""
        return f"{self.name}({', '.join(f'{k}={_short(v)}' for k, v in self.params.items())})"

    def __repr__(self):
        return f"{self.call()}  # {self.reason}"


def _short(v) -> str:
    if isinstance(v, np.ndarray):
        if v.ndim == 0:
            return f"{float(v):.4g}"
        vals = ", ".join(f"{float(x):.3g}" for x in v.reshape(-1)[:6])
        return f"[{vals}{', ...' if v.size > 6 else ''}]"
    if isinstance(v, float):
        return f"{v:.4g}"
    return repr(v)


class Suggestions(list):
    """The ranked recommendations (a list of :class:`Recommendation`), with
    the task, why it was chosen, and the measured figures (``.figures``)."""

    def __init__(self, items, task, task_reason, figures):
        super().__init__(items)
        self.task, self.task_reason, self.figures = task, task_reason, figures

    @property
    def best(self):
        """The first recommendation's loss object (None if there is none)."""
        return self[0].loss if self else None

    def __repr__(self):
        lines = [f"fastloss.suggest: task {self.task!r}: {self.task_reason}"]
        if not self:
            lines.append("  no recommendation for this task and data in this build")
        for i, r in enumerate(self, 1):
            lines.append(f"  {i}. {r.call()}")
            lines.append(f"     {r.reason}")
        return "\n".join(lines)

    def _repr_html_(self):
        e = html.escape
        rows = "".join(f"<tr><td>{i}</td><td><code>{e(r.call())}</code></td><td>{e(r.reason)}</td></tr>"
                       for i, r in enumerate(self, 1))
        if not rows:
            rows = '<tr><td colspan="3">no recommendation for this task and data in this build</td></tr>'
        return (f"<div><p><b>fastloss.suggest</b>: task <code>{e(self.task)}</code>: {e(self.task_reason)}</p>"
                f"<table><thead><tr><th>#</th><th>loss</th><th>why</th></tr></thead><tbody>{rows}</tbody>"
                f"</table></div>")


# ---------------------------------------------------------------- suggest

def _items_shape(shape):
    """A row loss's item shape for an input shape: the shape without axis 1."""
    if len(shape) == 1:
        return ()
    return (shape[0],) + tuple(shape[2:])


def _describe(t: np.ndarray, x: Optional[np.ndarray], task: Optional[str], n_threads) -> Figures:
    """The figures of the target (and what of the input the task needs)."""
    f = Figures(has_input=x is not None, target_shape=t.shape, target_ndim=t.ndim,
                input_shape=None if x is None else x.shape)
    f["target_cols"] = t.shape[-1] if t.ndim >= 2 else None
    labels_for_rows = (x is not None and x.ndim >= 1 and t.shape == _items_shape(x.shape) and t.shape != x.shape
                       and (x.ndim < 2 or x.shape[1] > 1))      # one channel: a mask, not labels
    row = t.shape[-1] if t.ndim >= 2 and not labels_for_rows and t.shape[-1] > 0 else 0
    summarize(t, "target_", f, row=row, moments=True, n_threads=n_threads)
    labels_for_rows = labels_for_rows and (t.dtype.kind in "iu" or f["target_integral"])
    f["labels_for_rows"] = labels_for_rows
    f["spatial"] = labels_for_rows and x.ndim > 2
    if labels_for_rows:
        C = x.shape[0] if x.ndim == 1 else x.shape[1]
        counts, ign, bad = _label_counts(t, C)
        f.update(n_ignored=ign, n_out_of_range=bad)
        _class_figures(f, counts, "labels")
    if row:
        rows = f["target_rows"]
        onehot = f["target_binary"] and f["target_onehot_rows"] == rows
        f["onehot"] = onehot
        f["rows_are_distributions"] = (not onehot and f["target_unit"] and f["target_min"] >= 0
                                       and abs(f["target_row_sum_min"] - 1) <= 1e-3
                                       and abs(f["target_row_sum_max"] - 1) <= 1e-3)
        if onehot:
            f["n_classes"] = t.shape[-1]
    return f


def _classify(f: Figures, t, x, task, n_threads):
    """Figures that depend on the task: class counts, imbalance, input checks."""
    f["seg_mask"] = (task == "segmentation" and not f["labels_for_rows"] and f["target_unit"]
                     and (x is None or x.shape == t.shape or _mask_of_one_channel(x.shape, t.shape)))
    if f["seg_mask"]:
        f["fg_pct"] = 100 * float(np.sum(t, dtype=np.float64)) / t.size
    if task == "detection":
        _box_figures(f, t)
    if task == "ranking":
        _ranking_figures(f, t)
    if task == "sequence":
        _sequence_figures(f, t, x)
    if task in ("binary", "detection") and f["target_unit"]:
        n = f["target_n"]
        pos = float(np.sum(t, dtype=np.float64)) if not f["target_binary"] else f["target_npos"]
        neg = n - pos
        f.update(pos_frac=pos / n if n else None, pos_pct=100 * pos / n if n else None,
                 soft_labels=not f["target_binary"])
        if f["target_binary"] and pos > 0 and neg > 0:
            f.update(imbalance=max(pos, neg) / min(pos, neg), neg_pos_ratio=neg / pos)
        elif f["target_binary"]:
            f.update(imbalance=math.inf, neg_pos_ratio=None)
    if task == "binary" and f["target_pm1"] and not f["target_binary"]:
        n = f["target_n"]
        pos = f["target_npos"]
        f.update(pos_frac=pos / n, pos_pct=100 * pos / n)
        if 0 < pos < n:
            f["imbalance"] = max(pos, n - pos) / min(pos, n - pos)
    if task in _CLASSES and "class_counts" not in f and not f["seg_mask"] and f.get("seq_aligned") is not False:
        if f.get("onehot"):
            counts = np.asarray(t.reshape(-1, t.shape[-1]).sum(axis=0, dtype=np.float64), dtype=np.int64)
            _class_figures(f, counts, "one-hot columns")
        elif f["target_integral"] and f["target_finite"] == f["target_n"] and f["target_min"] >= 0:
            C = int(f["target_max"]) + 1 if x is None or x.ndim < 2 else x.shape[1]
            counts, ign, bad = _label_counts(t, C)
            _class_figures(f, counts, "labels")
    if task == "multilabel" and t.ndim >= 2 and f["target_unit"]:
        cols = t.reshape(-1, t.shape[-1])
        pos = cols.sum(axis=0, dtype=np.float64)
        n = cols.shape[0]
        neg = n - pos
        f.update(min_pos_pct=100 * float(pos.min()) / n, max_pos_pct=100 * float(pos.max()) / n)
        ok = (pos > 0) & (neg > 0)
        if ok.any():
            ratio = np.where(ok, np.maximum(pos, neg) / np.maximum(np.minimum(pos, neg), 1), 1.0)
            f["imbalance"] = float(ratio.max())
            cnp = np.where(ok, neg / np.maximum(pos, 1), 1.0)
            f["col_neg_pos"] = cnp.astype(t.dtype if t.dtype.kind == "f" else np.float64)
    # the input: probabilities where logits are usual
    if x is not None and task in ("binary", "multiclass", "segmentation"):
        row = x.shape[1] if task != "binary" and x.ndim == 2 else 0
        summarize(x, "input_", f, row=row, n_threads=n_threads)
        if task == "binary":
            f["input_probabilities"] = f["input_unit"] and f["input_n"] >= 16 and not f["input_binary"]
        elif row:
            f["input_probabilities"] = (f["input_unit"] and abs(f["input_row_sum_min"] - 1) <= 1e-3
                                        and abs(f["input_row_sum_max"] - 1) <= 1e-3)
    if task == "regression":
        f["counts"] = (f["target_integral"] and f["target_min"] >= 0 and f["target_max"] > 1
                       and f["target_finite"] == f["target_n"])
        if f["target_min"] == 0 and f["target_finite"] == f["target_n"]:
            zeros = f["target_n"] - f["target_npos"]
            f.update(zero_frac=zeros / f["target_n"], zero_pct=100 * zeros / f["target_n"])
        if x is not None and x.shape == t.shape:
            _residual_figures(f, t, x, n_threads)


def _mask_of_one_channel(xshape, tshape) -> bool:
    """A target (N, d1, ...) for a one-channel input (N, 1, d1, ...)."""
    return len(xshape) >= 3 and xshape[1] == 1 and tuple(tshape) == (xshape[0],) + tuple(xshape[2:])


def _ranking_figures(f: Figures, t):
    """A 0/1 or -1/1 target (a flag per pair), or class labels (one per embedding)."""
    n = f["target_n"]
    if f["target_binary"] or f["target_pm1"]:
        f["metric_labels"] = False
        f["pos_pct"] = 100 * f["target_npos"] / n if n else 0.0
        return
    f["metric_labels"] = (t.ndim == 1 and f["target_integral"] and f["target_finite"] == n)
    if f["metric_labels"]:
        _, counts = np.unique(t, return_counts=True)
        f.update(n_label_classes=int(counts.size), n_labelled_rows=int(n), min_per_class=int(counts.min()),
                 max_per_class=int(counts.max()), classes_with_pairs=int(np.count_nonzero(counts >= 2)))


def _sequence_figures(f: Figures, t, x):
    """Integer label sequences ((N, S) padded, or one (S,)), and whether an
    input of scores is aligned with them: one step per label, scores
    (N, C, S) as cross-entropy takes them; otherwise (frames (T, N, C) or
    (N, T, C) with T other than S) the labels need an alignment: CTC."""
    n = f["target_n"]
    f["seq_labels"] = (t.ndim in (1, 2) and n > 0 and f["target_integral"] and f["target_finite"] == n
                       and f["target_min"] >= 0)
    if not f["seq_labels"]:
        return
    f["seq_len"] = int(t.shape[-1])
    if x is None or x.ndim != t.ndim + 1:
        return
    if t.ndim == 2:
        aligned = x.shape[0] == t.shape[0] and x.shape[2] == t.shape[1]      # (N, C, S)
        frames = x.shape[0] if x.shape[1] == t.shape[0] else x.shape[1]      # (T, N, C) or (N, T, C)
    else:
        aligned = x.shape[1] == t.shape[0]                                   # (C, S)
        frames = x.shape[0]                                                  # (T, C)
    f["seq_aligned"] = bool(aligned)
    f["seq_frames"] = int(frames)


def _box_figures(f: Figures, t):
    """Whether the target holds (x1, y1, x2, y2) boxes, and their sizes."""
    f["boxes"] = False
    if t.ndim < 2 or t.shape[-1] != 4 or f["target_binary"] or f["target_finite"] != f["target_n"]:
        return
    b = t.reshape(-1, 4).astype(np.float64)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    if not (np.all(w >= 0) and np.all(h >= 0)):
        return
    area = w * h
    pos = area[area > 0]
    aspect = w[h > 0] / h[h > 0]
    f.update(boxes=True, n_boxes=int(b.shape[0]),
             area_span=float(pos.max() / pos.min()) if pos.size else 1.0,
             min_aspect=float(aspect.min()) if aspect.size else float("nan"),
             max_aspect=float(aspect.max()) if aspect.size else float("nan"))


def _make(rule: Rule, f: Figures):
    import fastloss

    cls = getattr(fastloss, rule.loss, None)
    if cls is None:  # a family not in this build
        return None
    params = rule.params(f) if callable(rule.params) else dict(rule.params)
    return Recommendation(cls(**params), rule.reason.format(**f), params, rule)


def suggest(target, input=None, task: Optional[str] = None, *, n_threads: Optional[int] = None) -> Suggestions:
    """Recommend fastloss losses for this data, ranked, each with the reason.

    Looks at ``target`` (and ``input``, the model's current output, when
    given): infers the task unless ``task`` names it, measures the figures
    the decision table reads (class frequencies, residual tails and scale,
    the form of the targets, whether the input holds probabilities) and
    returns the configured losses of the rules that hold, best first.  The
    rules and their thresholds, with their sources, are the tables
    ``fastloss._suggest.TASK_RULES`` and ``fastloss._suggest.RULES``.

    Parameters
    ----------
    target : array_like
        Labels (integers; 0/1; -1/1; one-hot or probability rows) or
        real-valued targets.
    input : array_like, optional
        The predictions: same shape as target, or ``(N, C, ...)`` scores
        for integer labels of shape ``(N, ...)``.  With it, regression
        residuals ``target - input`` are measured (robust scale for Huber's
        delta, tails, heteroscedasticity).
    task : str, optional
        One of "regression", "binary", "multiclass", "multilabel",
        "distribution", "segmentation", "detection", "ranking", "sequence".
    n_threads : int, optional
        Threads for the summary pass.

    Returns
    -------
    Suggestions
        A list of :class:`Recommendation` ``(loss, reason, params, rule)``,
        best first, with ``.task``, ``.task_reason`` and ``.figures``; it
        prints as a table (and as HTML in a notebook).  ``.best`` is the
        first loss.

    Notes
    -----
    One pass of the compiled summary kernel over the target (and one over
    ``target - input`` for regression residuals); the median-based figures
    use a fixed-seed sample of 65,536 residuals, so nothing is sorted.

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> y = np.zeros(5000); y[:100] = 1                  # 2 % positives
    >>> s = fl.suggest(y)
    >>> s.task, s[0].call()
    ('binary', 'SigmoidFocalLoss(alpha=0.25, gamma=2)')
    >>> s[0].reason
    'positives are 2 % of targets (1:49): above 10:1, the focal loss down-weights the many easy examples'
    >>> rng = np.random.default_rng(0)
    >>> pred = rng.normal(size=20000); y = pred + rng.standard_t(2, size=20000)
    >>> fl.suggest(y, pred)[0].call()
    'HuberLoss(delta=1.64)'
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"suggest: task must be one of {', '.join(repr(t) for t in TASKS)}, got {task!r}")
    t = _as_array(target, "target")
    x = None if input is None else _as_array(input, "input")
    if t.size == 0:
        raise ValueError(f"suggest: target must not be empty, got shape {t.shape}")
    unaligned_ok = task == "sequence" and x is not None and x.ndim == t.ndim + 1   # CTC: (T, N, C) frames
    if x is not None and x.shape != t.shape and t.shape != _items_shape(x.shape) and not unaligned_ok:
        raise ValueError(f"suggest: target of shape {t.shape} does not match input of shape {x.shape}: "
                         f"expected the same shape, or input's shape without axis 1 "
                         f"({_items_shape(x.shape)}) for class labels")
    f = _describe(t, x, task, n_threads)
    if task is None:
        for tr in TASK_RULES:
            if _holds(f, tr.when):
                task, why = tr.task, tr.reason.format(**f)
                break
    else:
        why = "as given"
    _classify(f, t, x, task, n_threads)
    fired = [r for r in RULES if task in r.tasks and _holds(f, r.when)]
    fired.sort(key=lambda r: r.rank)
    recs = [rec for rec in (_make(r, f) for r in fired) if rec is not None]
    return Suggestions(recs, task, why, f)


def _as_array(a, name) -> np.ndarray:
    a = a if type(a) is np.ndarray else np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"suggest: {name} must be a real (float, integer or bool) array, got dtype {a.dtype}")
    if a.dtype.kind == "b":
        a = a.astype(np.uint8)
    return a
