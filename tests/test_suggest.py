"""fastloss.suggest: the summary kernel against NumPy, every rule of the
decision table on data built to fire it and on data built not to, the task
inference table, the configured parameters, errors, and the display."""
import numpy as np
import pytest

import fastloss as fl
from fastloss import _summary
from fastloss import _suggest as S

RNG = np.random.default_rng(1234)


# ---------------------------------------------------------------- the kernel

def _np_summary(v):
    v = v.astype(np.float64)
    fin = np.isfinite(v)
    nn = ~np.isnan(v)
    return {
        "nan": np.isnan(v).sum(), "posinf": (v == np.inf).sum(), "neginf": (v == -np.inf).sum(),
        "n": fin.sum(), "min": v[nn].min(), "max": v[nn].max(),
        "nonint": (fin & (v != np.round(v))).sum(),
        "in01": ((v >= 0) & (v <= 1)).sum(), "is01": ((v == 0) | (v == 1)).sum(),
        "ispm1": ((v == 1) | (v == -1)).sum(), "npos": (v > 0).sum(),
    }


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 300, 70001])
def test_kernel_counts_and_range_match_numpy(dtype, n):
    v = np.round(RNG.normal(size=n) * 3, 1).astype(dtype)
    v[:: 7] = np.round(v[:: 7])
    v[1:: 11] = RNG.integers(0, 2, v[1:: 11].size)
    v[2:: 13] = -1
    if n > 50:
        v[3], v[10], v[20] = np.nan, np.inf, -np.inf
        v[30] = 3e15 + 0.5 if dtype == np.float64 else 3e6 + 0.5
    got = _summary.summarize(v, moments=False)
    for k, want in _np_summary(v).items():
        assert got[k] == want, (k, got[k], want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_moments_match_numpy(dtype):
    v = (RNG.standard_t(5, size=50_001) * 2 + 7).astype(dtype)
    s = _summary.summarize(v, shift=7.0)
    m, var, skew, kurt = S._moments(s, s["n"])
    d = v.astype(np.float64)
    c = d - d.mean()
    assert 7.0 + m == pytest.approx(d.mean(), rel=1e-12)
    assert var == pytest.approx((c ** 2).mean(), rel=1e-10)
    assert skew == pytest.approx((c ** 3).mean() / (c ** 2).mean() ** 1.5, rel=1e-8, abs=1e-10)
    assert kurt == pytest.approx((c ** 4).mean() / (c ** 2).mean() ** 2 - 3, rel=1e-9)


def test_kernel_residual_and_correlation_sums():
    a = RNG.normal(size=10_000)
    b = RNG.normal(size=10_000)
    s = _summary.summarize(a, b, shift=0.1, shift_b=-0.2, shift_r=0.5)
    v = a - b
    x = b + 0.2
    e = np.abs(v - 0.1) - 0.5
    assert s["s1"] == pytest.approx((v - 0.1).sum(), rel=1e-9)
    for k, want in (("bs1", x.sum()), ("bs2", (x * x).sum()), ("r1", e.sum()), ("r2", (e * e).sum()),
                    ("br", (x * e).sum()), ("ba1", np.abs(x).sum()), ("bar", (np.abs(x) * e).sum())):
        assert s[k] == pytest.approx(want, rel=1e-9, abs=1e-9), k


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_row_sums_and_onehot(dtype):
    C = 7
    x = RNG.normal(size=(5000, C)).astype(dtype)
    s = _summary.summarize(x, row=C, moments=False)
    rs = x.astype(np.float64).sum(1)
    assert s["rmin"] == pytest.approx(rs.min(), abs=1e-5) and s["rmax"] == pytest.approx(rs.max(), abs=1e-5)
    s = _summary.summarize(x, row=C, row_exp=True, moments=False)
    es = np.exp(x.astype(np.float64)).sum(1)
    assert s["rmin"] == pytest.approx(es.min(), rel=1e-5) and s["rmax"] == pytest.approx(es.max(), rel=1e-5)
    oh = np.eye(C, dtype=dtype)[RNG.integers(0, C, 5000)]
    oh[17] = 0                      # a row of zeros is not one-hot
    oh[18, :2] = 1                  # nor a row with two ones
    s = _summary.summarize(oh, row=C, moments=False)
    assert s["onehot"] == 4998


def test_kernel_is_the_same_bits_for_any_thread_count():
    v = RNG.standard_t(3, size=1_000_003)
    b = RNG.normal(size=v.size)
    one = _summary.summarize(v, b, shift=0.3, shift_b=0.1, shift_r=0.2, n_threads=1)
    for nt in (2, 3, 8):
        assert _summary.summarize(v, b, shift=0.3, shift_b=0.1, shift_r=0.2, n_threads=nt) == one


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8])
def test_count_labels(dtype):
    lab = RNG.integers(0, 6, 10_000).astype(dtype)
    if dtype != np.uint8:
        lab[:5] = -100
        lab[5:8] = 9
    counts, ig, bad = _summary.count_labels(lab, 6, -100)
    want = np.bincount(lab[(lab >= 0) & (lab < 6)].astype(np.int64), minlength=6)
    np.testing.assert_array_equal(counts, want)
    assert (ig, bad) == ((5, 3) if dtype != np.uint8 else (0, 0))
    counts, ig, bad = _summary.count_labels(lab, 6, 2)       # an ignore_index inside [0, C)
    assert counts[2] == 0 and ig == int((lab == 2).sum())


# ---------------------------------------------------------------- the rules: data built to fire each

def _binary(pos_frac, n=20_000):
    y = np.zeros(n)
    y[: int(round(pos_frac * n))] = 1
    return RNG.permutation(y)


def _labels(p, n=20_000):
    return RNG.choice(len(p), n, p=np.asarray(p) / np.sum(p))


def _gauss_pair(n=20_000):
    x = RNG.normal(size=n) * 2
    return x + RNG.normal(size=n), x


def _heavy_pair(n=20_000):
    x = RNG.normal(size=n)
    return x + RNG.standard_t(2, size=n), x


def _hetero_pair(n=20_000):
    x = RNG.uniform(1, 10, size=n)
    return x + x * RNG.normal(size=n) * 0.3, x


def _zero_inflated(n=5000, zero_frac=0.4):
    y = RNG.gamma(2.0, 1.0, n)
    y[RNG.random(n) < zero_frac] = 0
    return y


def _box_pair(n=300):
    xy = RNG.uniform(0, 100, (n, 2))
    b = np.concatenate([xy, xy + RNG.uniform(5, 40, (n, 2))], axis=1)
    return b + RNG.normal(size=b.shape) * [1, 1, -1, -1] * 0.5, b


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


# rule index -> (target, input, task) built to fire it
def _trigger(rule):
    loss, tasks = rule.loss, rule.tasks
    task = tasks[0]
    when = dict((c[0], c) for c in rule.when)
    if task == "regression":
        if "zero_frac" in when:
            return _zero_inflated(), None, None
        if "target_skew" in when:
            return RNG.gamma(1.5, 2.0, 5000), None, None
        if "counts" in when:
            return RNG.poisson(3, 5000).astype(float), RNG.normal(size=5000), None
        if "hetero_corr_abs" in when:
            return (*_hetero_pair(), None)
        if when.get("heavy_tails", (0, 0, None))[2] is True:
            return (*_heavy_pair(), None)
        if "has_input" in when:
            return RNG.normal(size=1000), None, "regression"
        return (*_gauss_pair(), None)
    if task == "binary":
        if "input_probabilities" in when:
            y = _binary(0.5)
            return y, RNG.uniform(0.01, 0.99, y.size), None
        if "target_pm1" in when:
            return np.where(_binary(0.4) > 0, 1.0, -1.0), None, None
        if "soft_labels" in when:
            return RNG.uniform(0, 1, 5000), None, "binary"
        if rule.when and rule.when[0] == S._IMB:
            return _binary(0.02), None, None
        return _binary(0.4), None, None
    if task == "segmentation":
        if "seg_mask" in when and when["seg_mask"][2] is True:
            return (RNG.random((6, 24, 24)) < 0.1).astype(float), None, None
        return RNG.integers(0, 3, (6, 24, 24)), RNG.normal(size=(6, 3, 24, 24)), None
    if task in ("multiclass", "segmentation"):
        if "input_probabilities" in when:
            return _labels([1] * 4, 4000), _softmax(RNG.normal(size=(4000, 4))), None
        if rule.when and rule.when[0] == S._IMB:
            return _labels([50, 3, 1, 1]), None, None
        return _labels([1, 1, 1, 1]), None, None
    if task == "multilabel":
        p = [0.3, 0.02, 0.5] if rule.when[0] == S._IMB else [0.3, 0.2, 0.5]
        return (RNG.random((10_000, 3)) < p).astype(float), None, None
    if task == "distribution":
        return _softmax(RNG.normal(size=(1000, 6))), None, None
    if task == "ranking":
        if "metric_labels" in when:
            return RNG.permutation(np.repeat(np.arange(16), 4)), RNG.normal(size=(64, 8)), "ranking"
        if "target_binary" in when and when["target_binary"][2] is True:
            return _binary(0.3, 500), None, "ranking"
        return np.where(_binary(0.4, 500) > 0, 1.0, -1.0), None, "ranking"
    if task == "sequence":
        t = RNG.integers(1, 20, (4, 10))
        if "seq_aligned" in when:
            return t, RNG.normal(size=(50, 4, 20)), "sequence"
        return t, None, "sequence"
    if task == "detection":
        if when.get("boxes", (0, 0, False))[2] is True:
            return _box_pair()[1], None, "detection"
        return _binary(0.01), None, "detection"
    raise AssertionError(f"no trigger for {rule}")


@pytest.mark.parametrize("i", range(len(S.RULES)), ids=lambda i: f"{S.RULES[i].loss}-{S.RULES[i].tasks[0]}-{i}")
def test_every_rule_fires_on_data_built_for_it(i):
    rule = S.RULES[i]
    t, x, task = _trigger(rule)
    s = fl.suggest(t, x, task=task)
    assert s.task in rule.tasks, (s.task, rule)
    fired = [r.rule for r in s]
    assert rule in fired, (rule, s)
    rec = s[fired.index(rule)]
    assert type(rec.loss).__name__ == rule.loss
    assert rec.reason and "{" not in rec.reason
    # the configured loss runs on data of this shape
    _run_recommendation(rec.loss, t, x)


def _run_recommendation(loss, t, x):
    name = type(loss).__name__
    if x is None:
        if t.ndim == 2:
            x = RNG.normal(size=t.shape)
        elif name in ("CrossEntropyLoss", "SoftmaxFocalLoss", "NLLLoss"):
            x = RNG.normal(size=(t.size, int(t.max()) + 1))
        else:
            x = RNG.normal(size=t.shape)
    if name in ("CrossEntropyLoss", "SoftmaxFocalLoss", "NLLLoss") and t.ndim == 1:
        t = t.astype(np.int64)
        if x.ndim == 1:
            x = RNG.normal(size=(t.size, int(t.max()) + 1))
    if name == "NLLLoss":
        x = np.log(np.clip(x, 1e-12, None)) if np.all((x >= 0) & (x <= 1)) else x
    if name == "BCELoss":
        x = np.clip(x, 0, 1)
    if name == "KLDivLoss":
        x = np.log(_softmax(x))
    if name in ("CEDiceLoss", "LovaszSoftmaxLoss") and x is None:
        x = RNG.normal(size=(t.shape[0], int(t.max()) + 1) + t.shape[1:])
    if "BoxIoU" in name:
        x = _box_pair(t.shape[0])[0]
    if name in ("BatchHardTripletLoss", "BatchAllTripletLoss", "NTXentLoss"):
        assert np.isfinite(loss(x, t))
        return
    if name == "CTCLoss":                                  # frames (T, N, C) of log-probabilities, (N, S) labels
        T, C = 50, int(t.max()) + 1
        z = RNG.normal(size=(T, t.shape[0], C))
        lp = z - np.log(np.exp(z).sum(axis=2, keepdims=True))
        assert np.isfinite(loss(lp, t, [T] * t.shape[0], [t.shape[1]] * t.shape[0]))
        return
    if name in ("ContrastiveLoss", "CosineEmbeddingLoss", "MarginRankingLoss"):
        shape = t.shape if name == "MarginRankingLoss" else t.shape + (8,)
        assert np.isfinite(loss(RNG.normal(size=shape), RNG.normal(size=shape), t))
        return
    if name == "GaussianNLLLoss":
        v = loss(x, t, np.ones_like(x))
    else:
        v = loss(x, t)
    assert np.isfinite(v)


def test_every_task_rule_is_reachable():
    cases = [
        (RNG.integers(0, 3, (4, 8, 8)), RNG.normal(size=(4, 3, 8, 8))),
        (RNG.integers(0, 3, 100), RNG.normal(size=(100, 3))),
        (np.eye(3)[RNG.integers(0, 3, 100)], None),
        ((RNG.random((4, 16, 16)) < 0.2).astype(float), None),
        ((RNG.random((100, 3)) < 0.4).astype(float), None),
        (_softmax(RNG.normal(size=(100, 3))), None),
        (_binary(0.5, 100), None),
        (np.where(_binary(0.5, 100) > 0, 1.0, -1.0), None),
        (RNG.integers(0, 3, 100), None),
        (RNG.normal(size=100), None),
    ]
    assert len(cases) == len(S.TASK_RULES)
    for (t, x), tr in zip(cases, S.TASK_RULES):
        s = fl.suggest(t, x)
        assert (s.task, s.task_reason.split(":")[0]) == (tr.task, tr.reason.format(**s.figures).split(":")[0])


# ---------------------------------------------------------------- no false alarms

@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n", [200, 5000, 200_000])
def test_gaussian_residuals_get_mse_and_nothing_robust(seed, n):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n) * 3
    y = x + rng.normal(size=n) * 0.5
    s = fl.suggest(y, x)
    assert s.task == "regression"
    assert [r.name for r in s] == ["MSELoss"], s
    assert s.figures["heavy_tails"] is False


@pytest.mark.parametrize("seed", range(3))
def test_positive_skewed_and_zero_inflated_targets_only(seed):
    rng = np.random.default_rng(seed)
    # positive but not skewed, normal, counts with zeros: no Gamma and no Tweedie
    for y in (rng.uniform(1, 2, 5000), rng.normal(5, 1, 5000), rng.poisson(0.5, 5000).astype(float)):
        names = [r.name for r in fl.suggest(y, task="regression")]
        assert "GammaNLLLoss" not in names and "TweedieLoss" not in names, names
    assert fl.suggest(rng.poisson(0.5, 5000).astype(float), task="regression")[0].name == "PoissonNLLLoss"
    few = rng.gamma(2.0, 1.0, 5000)
    few[:100] = 0                                        # 2 % zeros: below ZERO_FRAC, and not positive
    names = [r.name for r in fl.suggest(few)]
    assert "TweedieLoss" not in names and "GammaNLLLoss" not in names
    y = _zero_inflated()
    s = fl.suggest(y)
    assert s[0].name == "TweedieLoss" and s[0].loss.power == 1.5
    assert s[0].reason.startswith(f"{100 * np.mean(y == 0):.3g} % of targets are exactly 0")
    s = fl.suggest(rng.lognormal(0, 1, 5000))
    assert [r.name for r in s][:2] == ["GammaNLLLoss", "TweedieLoss"]
    assert f"skewness {s.figures['target_skew']:.2f}" in s[0].reason


def test_robust_alternatives_are_scaled_by_the_robust_sd():
    t, x = _heavy_pair()
    s = fl.suggest(t, x)
    names = [r.name for r in s]
    assert names == ["HuberLoss", "PseudoHuberLoss", "L1Loss", "CauchyLoss", "TukeyBiweightLoss"]
    sd = s.figures["resid_scale"]
    assert s[1].loss.delta == s[0].loss.delta
    assert s[3].loss.c == pytest.approx(2.385 * sd, rel=2e-3) and s[4].loss.c == pytest.approx(4.685 * sd, rel=2e-3)


def test_segmentation_masks_and_labels():
    rng = np.random.default_rng(0)
    mask = (rng.random((4, 32, 32)) < 0.03).astype(np.float32)
    for x in (None, rng.normal(size=(4, 32, 32)), rng.normal(size=(4, 1, 32, 32))):
        s = fl.suggest(mask, x, task="segmentation")
        assert [r.name for r in s] == ["BCEDiceLoss", "LovaszHingeLoss"], (x is None or x.shape, s)
        assert s[0].reason.startswith(f"a 0/1 mask, foreground on {100 * mask.mean():.3g} %")
    soft = rng.uniform(0, 1, (4, 32, 32))
    assert [r.name for r in fl.suggest(soft, task="segmentation")] == ["BCEDiceLoss"]   # no hinge on soft
    lab = rng.choice(3, (4, 32, 32), p=[0.9, 0.08, 0.02])
    s = fl.suggest(lab, rng.normal(size=(4, 3, 32, 32)))
    assert s.task == "segmentation"
    assert [r.name for r in s] == ["CEDiceLoss", "CrossEntropyLoss", "SoftmaxFocalLoss", "LovaszSoftmaxLoss"]
    assert f"rarest class on {s.figures['min_class_pct']:.3g} %" in s[0].reason
    assert "CEDiceLoss" not in [r.name for r in fl.suggest(lab.reshape(-1), rng.normal(size=(lab.size, 3)))]
    # a 0/1 target of two dimensions is still multilabel, and a binary vector binary
    assert fl.suggest((rng.random((100, 3)) < 0.4).astype(float)).task == "multilabel"
    assert fl.suggest((rng.random(100) < 0.4).astype(float)).task == "binary"


def test_ranking_targets_get_the_metric_learning_and_pair_losses():
    rng = np.random.default_rng(0)
    lab = rng.permutation(np.repeat(np.arange(10), 3))
    s = fl.suggest(lab, rng.normal(size=(30, 16)), task="ranking")
    assert [r.name for r in s] == ["BatchHardTripletLoss", "NTXentLoss", "BatchAllTripletLoss"]
    assert s[0].reason.startswith("10 classes among 30 embeddings, 3..3 per class")
    assert len(fl.suggest(np.arange(30), task="ranking")) == 0          # no class twice: no triplet, no pair
    assert [r.name for r in fl.suggest(_binary(0.2, 300), task="ranking")] == ["ContrastiveLoss"]
    pm = np.where(_binary(0.5, 300) > 0, 1.0, -1.0)
    assert [r.name for r in fl.suggest(pm, task="ranking")] == ["MarginRankingLoss", "CosineEmbeddingLoss"]
    # not inferred: class labels without task="ranking" stay a classification
    assert fl.suggest(lab, rng.normal(size=(30, 16))).task == "multiclass"


def test_label_sequences_get_ctc_unless_aligned_frame_by_frame():
    rng = np.random.default_rng(0)
    t = rng.integers(1, 20, (4, 10))                          # padded (N, S) labels
    for frames in (rng.normal(size=(50, 4, 20)), rng.normal(size=(4, 50, 20))):   # (T, N, C), (N, T, C)
        s = fl.suggest(t, frames, task="sequence")
        assert [r.name for r in s] == ["CTCLoss"]             # no per-step cross-entropy: nothing to align it
        assert s[0].reason.startswith("label sequences (length 10) for 50 frames")
        tnc = frames if frames.shape[1] == 4 else frames.transpose(1, 0, 2)
        log_probs = tnc - np.log(np.exp(tnc).sum(axis=2, keepdims=True))
        assert np.isfinite(s[0].loss(log_probs, t, [50] * 4, [10] * 4))   # the configured loss runs
    s = fl.suggest(t[0], rng.normal(size=(50, 20)), task="sequence")   # one unbatched sequence (T, C)
    assert [r.name for r in s] == ["CTCLoss"]
    aligned = fl.suggest(t, rng.normal(size=(4, 20, 10)), task="sequence")   # (N, C, S): a label per step
    assert [r.name for r in aligned] == ["CrossEntropyLoss"]
    s = fl.suggest(t, task="sequence")                        # no input: both, CTC first, and why
    assert [r.name for r in s] == ["CTCLoss", "CrossEntropyLoss"]
    assert "not aligned frame by frame" in s[0].reason
    assert "CTCLoss" not in [r.name for r in fl.suggest(rng.normal(size=(4, 10)), task="sequence")]  # not labels


def test_detection_boxes_get_the_iou_losses():
    pred, boxes = _box_pair()
    s = fl.suggest(boxes, task="detection")
    assert [r.name for r in s] == ["GeneralizedBoxIoULoss", "DistanceBoxIoULoss", "CompleteBoxIoULoss", "SmoothL1Loss"]
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert s.figures["area_span"] == pytest.approx((w * h).max() / (w * h).min())
    assert f"{(w / h).min():.2g}..{(w / h).max():.2g}" in s[2].reason
    assert np.isfinite(s[0].loss(pred, boxes))
    inverted = boxes[:, [2, 3, 0, 1]]                  # not corners: no IoU loss
    assert "GeneralizedBoxIoULoss" not in [r.name for r in fl.suggest(inverted, task="detection")]
    assert fl.suggest(_binary(0.01), task="detection")[0].name == "SigmoidFocalLoss"


@pytest.mark.parametrize("seed", range(5))
def test_balanced_classes_get_plain_losses(seed):
    rng = np.random.default_rng(seed)
    s = fl.suggest((rng.random(3000) < 0.5).astype(float), rng.normal(size=3000))
    assert [r.name for r in s] == ["BCEWithLogitsLoss"] and s[0].params == {}
    lab = rng.integers(0, 10, 5000)
    s = fl.suggest(lab, rng.normal(size=(5000, 10)))
    assert [r.name for r in s] == ["CrossEntropyLoss"] and s[0].params == {}
    s = fl.suggest((rng.random((2000, 4)) < 0.3).astype(np.float32))
    assert [r.name for r in s] == ["BCEWithLogitsLoss", "MultiLabelSoftMarginLoss"]


def test_imbalance_threshold_is_ten_to_one():
    assert S.IMBALANCE == 10
    below = np.r_[np.ones(100), np.zeros(900)]       # 9:1
    at = np.r_[np.ones(100), np.zeros(1000)]         # 10:1
    assert "SigmoidFocalLoss" not in [r.name for r in fl.suggest(below)]
    assert fl.suggest(at)[0].name == "SigmoidFocalLoss"


# ---------------------------------------------------------------- configured parameters

def test_huber_delta_is_1345_robust_sds():
    n = 100_000
    x = RNG.normal(size=n)
    noise = np.where(RNG.random(n) < 0.1, RNG.normal(size=n) * 50, RNG.normal(size=n) * 2.0)
    s = fl.suggest(x + noise, x)
    assert s[0].name == "HuberLoss"
    r = noise
    mad = np.median(np.abs(r - np.median(r)))
    assert s[0].loss.delta == pytest.approx(1.345 * 1.4826 * mad, rel=0.03)
    assert "heavy tails" in s[0].reason and "robust SD" in s[0].reason


def test_focal_alpha_goes_to_the_rare_class():
    assert fl.suggest(_binary(0.02))[0].loss.alpha == 0.25
    assert fl.suggest(_binary(0.98))[0].loss.alpha == 0.75


def test_pos_weight_is_negatives_over_positives():
    y = _binary(0.04, 10_000)
    rec = [r for r in fl.suggest(y) if r.name == "BCEWithLogitsLoss"][0]
    assert float(rec.loss.pos_weight) == pytest.approx(9600 / 400)
    yy = (RNG.random((20_000, 3)) < [0.5, 0.01, 0.2]).astype(float)
    rec = fl.suggest(yy)[0]
    pos = yy.sum(0)
    np.testing.assert_allclose(rec.loss.pos_weight, (20_000 - pos) / pos)


def test_class_weights_are_scikit_learns_balanced():
    sk = pytest.importorskip("sklearn.utils.class_weight")
    lab = _labels([60, 10, 3, 1], 8000)
    rec = fl.suggest(lab, RNG.normal(size=(8000, 4)))[0]
    want = sk.compute_class_weight("balanced", classes=np.arange(4), y=lab)
    np.testing.assert_allclose(rec.loss.weight, want, rtol=1e-12)


def test_an_absent_class_gets_the_largest_present_weight():
    lab = _labels([60, 10, 3, 0.0], 8000)
    w = fl.suggest(lab, RNG.normal(size=(8000, 4)))[0].loss.weight
    assert w[3] == w[:3].max()


def test_reasons_quote_the_measured_figure():
    y = _binary(0.019, 10_000)
    s = fl.suggest(y)
    assert s[0].reason.startswith("positives are 1.9 % of targets (1:52)")
    t, x = _heavy_pair()
    s = fl.suggest(t, x)
    assert f"excess kurtosis {s.figures['resid_kurtosis']:.1f}" in s[0].reason


def test_suggest_reads_float32_int_and_bool_targets():
    assert fl.suggest(_binary(0.3).astype(np.float32)).task == "binary"
    assert fl.suggest(_binary(0.3).astype(bool)).task == "binary"
    assert fl.suggest(RNG.integers(0, 4, 500).astype(np.int32)).task == "multiclass"
    assert fl.suggest(RNG.integers(0, 4, 500).astype(np.float64), RNG.normal(size=(500, 4))).task == "multiclass"
    assert fl.suggest(RNG.integers(0, 4, 500), task="regression")[0].name == "PoissonNLLLoss"


# ---------------------------------------------------------------- errors and display

def test_errors():
    with pytest.raises(ValueError, match=r"^suggest: task must be one of 'regression', .*, got 'ranker'$"):
        fl.suggest([0, 1], task="ranker")
    with pytest.raises(ValueError, match=r"^suggest: target must not be empty, got shape \(0,\)$"):
        fl.suggest(np.array([]))
    with pytest.raises(ValueError, match=r"^suggest: target of shape \(3,\) does not match input of shape \(4,\)"):
        fl.suggest(np.zeros(3), np.zeros(4))
    with pytest.raises(TypeError, match=r"^suggest: target must be a real .*got dtype complex128$"):
        fl.suggest(np.zeros(3, complex))
    with pytest.raises(TypeError, match=r"^suggest: input must be a real .*got dtype <U1$"):
        fl.suggest(np.zeros(3), np.array(["a", "b", "c"]))


def test_no_rule_for_a_task_says_so():
    s = fl.suggest(RNG.normal(size=100), task="ranking")          # graded scores: no rule of this build
    assert len(s) == 0 and s.best is None
    assert "no recommendation" in repr(s) and "no recommendation" in s._repr_html_()


def test_repr_and_html():
    s = fl.suggest(_labels([50, 3, 1, 1]), RNG.normal(size=(20_000, 4)))
    text = repr(s)
    assert text.splitlines()[0] == "fastloss.suggest: task 'multiclass': integer labels for rows of 4 class scores"
    assert "  1. CrossEntropyLoss(weight=[" in text and "  2. SoftmaxFocalLoss(gamma=2)" in text
    h = s._repr_html_()
    assert h.startswith("<div>") and h.count("<tr>") == 1 + len(s) and "CrossEntropyLoss" in h
    assert repr(s[0]).startswith("CrossEntropyLoss(weight=[") and "# class counts range" in repr(s[0])
    assert s.best is s[0].loss


def test_figures_are_readable_as_attributes():
    s = fl.suggest(_binary(0.1, 1000))
    assert s.figures.pos_pct == pytest.approx(10.0)
    with pytest.raises(AttributeError):
        s.figures.no_such_figure


def test_a_large_target_is_sampled_deterministically():
    n = S.SAMPLE * 4
    t, x = _heavy_pair(n)
    a, b = fl.suggest(t, x), fl.suggest(t, x)
    assert a.figures["resid_sampled"] == S.SAMPLE
    assert a[0].loss.delta == b[0].loss.delta
    for k in ("resid_scale", "resid_kurtosis", "outlier_frac", "hetero_corr"):
        assert a.figures[k] == b.figures[k]


def test_the_guide_benchmark_runs(capsys):
    from fastloss import bench_guide

    assert bench_guide.main(["--n", "2e4", "--repeat", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "suggest(target, input) regression" in out and "mse_loss value+grad, check=True" in out
