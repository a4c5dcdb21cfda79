"""fastloss.diagnose: every check on data built to trigger it, no false
alarms on clean calls of every loss, the table of expectations covers every
public loss, warnings, the forms a loss can be given in, errors, display."""
import inspect
import warnings

import numpy as np
import pytest

import fastloss as fl
from fastloss import _diagnose as D

RNG = np.random.default_rng(77)
N, C = 2000, 5

NON_LOSSES = {"get_num_threads", "set_num_threads", "show_config", "__version__", "suggest", "diagnose",
              "LossWarning", "set_cache_limit", "cache_info"}


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _boxes(rng, n):
    xy = rng.uniform(0, 100, (n, 2))
    wh = rng.uniform(5, 50, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


_T = 12                                     # CTC frames


def _ops(x, t, extra):
    """The positional operands of a call: (input, target, *extra), without
    the target of a loss of one operand (t is None)."""
    return (x,) + (() if t is None else (t,)) + tuple(extra)


def _clean(name, rng, n=N):
    """A correct call's (input, target, extra positional args) for each loss
    (target None for a loss of one operand)."""
    e = D.EXPECT[name]
    rows = max(n // 8, 8)
    lp = np.log(rng.uniform(0.05, 1.0, n))              # log-probabilities of the actions taken
    adv = rng.normal(size=n)
    if name == "ctc_loss":                  # (T, N, C) log-probabilities, label sequences without the blank
        b = max(n // 64, 2)
        z = rng.normal(size=(_T, b, C))
        return (z - np.log(np.exp(z).sum(-1, keepdims=True)), rng.integers(1, C, (b, 3)),
                (np.full(b, _T), np.full(b, 3)))
    if name == "gaussian_kl_loss":
        return rng.normal(size=(rows, 8)), rng.normal(size=(rows, 8)) * 0.5, ()
    if name == "vae_loss":                  # decoder logits, intensities in [0, 1], the posterior's mu and logvar
        return (rng.normal(size=(rows, 16)) * 2, rng.uniform(0, 1, (rows, 16)),
                (rng.normal(size=(rows, 4)), rng.normal(size=(rows, 4)) * 0.5))
    if name == "gan_discriminator_loss":    # the critic's logits on real and fake batches of other lengths
        return rng.normal(size=n) * 2 + 1, rng.normal(size=n // 2) * 2 - 1, ()
    if name == "gan_generator_loss":
        return rng.normal(size=n) * 2, None, ()
    if name == "gradient_penalty":
        return rng.normal(size=(rows, 8)), None, ()
    if name == "policy_gradient_loss":
        return lp, adv, ()
    if name == "ppo_clip_loss":
        return lp, np.minimum(lp + 0.1 * rng.normal(size=n), 0.0), (adv,)
    if name == "value_loss":                # returns of sparse rewards: many equal
        return rng.normal(size=n), np.where(rng.random(n) < 0.7, 0.0, rng.normal(size=n)), ()
    if name == "td_loss":                   # sparse rewards (a batch of zeros is normal), 0/1 dones
        return (rng.normal(size=n), (rng.random(n) < 0.1) * 1.0,
                (rng.normal(size=n), (rng.random(n) < 0.05) * 1.0))
    if name == "policy_gradient_loss_from_logits":
        return rng.normal(size=(n, C)) * 2, rng.integers(0, C, n), (adv,)
    if name == "ppo_clip_loss_from_logits":
        return rng.normal(size=(n, C)) * 2, rng.integers(0, C, n), (lp, adv)
    if name == "combined_loss":             # BCE with logits + Dice on binary masks
        return (rng.normal(size=(4, n // 4)) * 2, (rng.random((4, n // 4)) < 0.3) * 1.0,
                ([(1.0, fl.BCEWithLogitsLoss()), (0.5, fl.SigmoidFocalLoss())],))
    logits = rng.normal(size=(n, C)) * 2
    labels = rng.integers(0, C, n)
    x = rng.normal(size=n) * 2
    if e.args[:2] == ("anchor", "positive"):  # triplets: positives near the anchors
        a = rng.normal(size=(rows, 8))
        return a, a + 0.3 * rng.normal(size=a.shape), (rng.normal(size=a.shape),)
    if e.args == ("input1", "input2", "target"):
        flags = rng.random(rows) < 0.5
        if name == "margin_ranking_loss":
            return rng.normal(size=rows), rng.normal(size=rows), (np.where(flags, 1.0, -1.0),)
        x1 = rng.normal(size=(rows, 8))
        x2 = np.where(flags[:, None], x1 + 0.3 * rng.normal(size=x1.shape), rng.normal(size=x1.shape))
        return x1, x2, ((flags * 1.0 if e.target == "pair_flags" else np.where(flags, 1.0, -1.0)),)
    if name == "hinge_embedding_loss":      # distances, -1/1
        return np.abs(rng.normal(size=rows)) * 2, np.where(rng.random(rows) < 0.5, 1.0, -1.0), ()
    if e.input == "embeddings" and e.target == "embeddings":
        t = rng.normal(size=(rows, 8))
        return t + 0.3 * rng.normal(size=t.shape), t, ()
    if e.target == "row_labels":            # P classes x K = 2 samples
        return rng.normal(size=(rows, 8)), rng.permutation(np.repeat(np.arange(rows // 2), 2)), ()
    if e.input == "loss":                   # trimmed / winsorized: a loss of (input, target) wrapped
        return x, x + rng.normal(size=n), (fl.HuberLoss(),)
    if e.input == "boxes":
        b = _boxes(rng, max(n // 4, 4))                 # predictions: centres and sizes jittered
        c, wh = (b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]
        c = c + rng.normal(size=c.shape) * 0.1 * wh
        wh = wh * np.exp(rng.normal(size=wh.shape) * 0.1)
        return np.concatenate([c - wh / 2, c + wh / 2], axis=1), b, ()
    if e.target == "positive":              # Gamma: the log of the mean, positive targets
        return x * 0.5, rng.gamma(2.0, np.exp(x * 0.5) / 2), ()
    if name == "tweedie_loss":              # compound Poisson-Gamma: zeros and a continuous positive part
        k = rng.poisson(np.exp(x * 0.5) * 0.7)
        return x * 0.5, np.where(k > 0, rng.gamma(2.0 * np.maximum(k, 1), 0.5), 0.0), ()
    if e.target == "nonneg":                # MSLE
        t = np.exp(x * 0.5)
        return np.abs(t + rng.normal(size=n) * 0.3), t, ()
    if e.target == "nonzero":               # MAPE
        t = 5 + x
        return t + rng.normal(size=n), t, ()
    if e.target in ("mask", "mask01") or e.vary is not None and e.vary({})[1] == "mask":
        sx = x.reshape(4, -1) if n % 4 == 0 else x.reshape(1, -1)
        return sx, (rng.random(sx.shape) < 0.3).astype(float), ()
    if e.input == "rows_logit" and e.target == "labels" and name in ("ce_dice_loss", "lovasz_softmax_loss"):
        return rng.normal(size=(4, C, n // 4)) * 2, rng.integers(0, C, (4, n // 4)), ()
    if (e.input, e.target) == ("real", "real"):
        return x, x + rng.normal(size=n), ((np.ones(n),) if name == "gaussian_nll_loss" else ())
    if e.target == "count":
        return x * 0.5, rng.poisson(np.exp(x * 0.5)).astype(float), ()
    if e.input == "prob":
        return rng.uniform(0.01, 0.99, n), (rng.random(n) < 0.4).astype(float), ()
    if e.input == "logit":
        return x, (rng.random(n) < 0.4).astype(float), ()
    if e.input == "score":
        return x, np.where(rng.random(n) < 0.4, 1.0, -1.0), ()
    if e.input == "logprob":
        return np.log(_softmax(logits)), _softmax(rng.normal(size=(n, C))), ()
    if e.target == "multilabel":
        return logits, (rng.random((n, C)) < 0.3).astype(float), ()
    if e.input == "rows_logprob":
        return np.log(_softmax(logits)), labels, ()
    return logits, labels, ()


def _instance(name, extra=()):
    """(the loss object of name, the extra operands its calls take)."""
    cls = getattr(fl, D.EXPECT[name].cls)
    if D.EXPECT[name].input in ("loss", "terms"):
        return cls(extra[0]), ()
    return cls(), extra


LOSSES = sorted(D.EXPECT)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("n", [64, N])
@pytest.mark.parametrize("name", LOSSES)
def test_no_false_alarm_on_a_clean_call(name, n, seed):
    rng = np.random.default_rng(seed)
    x, t, extra = _clean(name, rng, n)
    getattr(fl, name)(*_ops(x, t, extra))               # the call itself is valid
    obj, obj_extra = _instance(name, extra)
    for loss, args in ((name, extra), (getattr(fl, name), extra), (getattr(fl, D.EXPECT[name].cls), extra),
                       (obj, obj_extra)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")               # and no LossWarning either
            d = fl.diagnose(loss, x, t, *args)
        assert d.ok, (name, d)


@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("name", ["dice_loss", "jaccard_loss", "tversky_loss", "lovasz_softmax_loss"])
def test_no_false_alarm_on_multiclass_segmentation(name, from_logits):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(3, C, 12, 12)) * 2
    if not from_logits:
        x = np.exp(x) / np.exp(x).sum(1, keepdims=True)
    t = rng.integers(0, C, (3, 12, 12))
    opts = {"from_logits": from_logits} if name == "lovasz_softmax_loss" else {"mode": "multiclass",
                                                                             "from_logits": from_logits}
    getattr(fl, name)(x, t, **opts)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fl.diagnose(name, x, t, **opts).ok
        assert fl.diagnose(getattr(fl, D.EXPECT[name].cls)(**opts), x, t).ok
        getattr(fl, name)(x, t, **opts, check=True)
    if name != "lovasz_softmax_loss":                   # and a binary mask with probabilities
        p = 1 / (1 + np.exp(-x[:, 0]))
        m = (rng.random(p.shape) < 0.3).astype(float)
        assert fl.diagnose(name, p if not from_logits else x[:, 0], m, from_logits=from_logits).ok


def test_the_operands_of_pairs_and_triplets_are_named_by_their_roles():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(32, 4))
    n = a.copy()
    n[1, 1] = np.nan
    d = fl.diagnose(fl.TripletMarginLoss(), a, a + 1, n, warn=False)
    assert d.codes == ["nan_input"] and d[0].message == "negative has 1 NaN value of 128"
    t = np.where(rng.random(32) < 0.5, 1.0, -1.0)
    d = fl.diagnose("cosine_embedding_loss", a, a, (t + 1) / 2, warn=False)
    assert d.codes == ["zero_one_for_pm1"]
    assert fl.diagnose(fl.nt_xent_loss, a).ok                  # labels=None: the pairs (i, i + N/2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fl.nt_xent_loss(a, check=True)
        fl.NTXentLoss()(a, np.arange(32) % 16, check=True)


def test_what_is_normal_in_rl_gan_and_vae_batches_is_not_an_alarm():
    """A batch of zero rewards (sparse rewards), equal old log-probabilities
    (a uniform policy), one action taken, a zero-initialized critic, a
    least-squares critic's outputs in [0, 1], an integer-valued mu: no
    finding."""
    rng = np.random.default_rng(6)
    v, z = rng.normal(size=64), np.zeros(64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fl.diagnose("td_loss", v, z, v, z).ok
        assert fl.diagnose("value_loss", v, z).ok
        assert fl.diagnose("ppo_clip_loss", np.log(rng.uniform(0.1, 1, 64)), np.full(64, np.log(0.25)),
                           rng.normal(size=64)).ok
        assert fl.diagnose("policy_gradient_loss_from_logits", rng.normal(size=(64, 4)), np.zeros(64, np.int64),
                           rng.normal(size=64)).ok
        assert fl.diagnose("policy_gradient_loss", np.log(rng.uniform(0.1, 1, 64)), np.ones(64)).ok
        for kind in ("nonsaturating", "least_squares", "wasserstein"):
            assert fl.diagnose("gan_discriminator_loss", z, z[:32], kind=kind).ok
            assert fl.diagnose(fl.GANGeneratorLoss(kind=kind), z).ok
        assert fl.diagnose("gan_discriminator_loss", rng.uniform(0, 1, 64), rng.uniform(0, 1, 64),
                           kind="least_squares").ok
        assert fl.diagnose("gaussian_kl_loss", np.round(v * 3), v).ok
        assert fl.diagnose("vae_loss", v.reshape(4, 16), (v.reshape(4, 16) > 0) * 1.0, z.reshape(4, 16)[:, :4],
                           z.reshape(4, 16)[:, :4]).ok
        assert fl.diagnose(fl.VAELoss(recon="mse"), v.reshape(4, 16), v.reshape(4, 16) * 255,
                           z.reshape(4, 16)[:, :4], z.reshape(4, 16)[:, :4]).ok


def test_combined_loss_is_diagnosed_term_by_term():
    rng = np.random.default_rng(7)
    x, t = rng.normal(size=(4, 16)), (rng.random((4, 16)) < 0.3) * 1.0
    loss = fl.CombinedLoss([(1.0, fl.BCEWithLogitsLoss()), (0.5, fl.DiceLoss("binary", from_logits=False))])
    d = fl.diagnose(loss, x, t, warn=False)
    assert [(f.code, f.op) for f in d] == [("logits_as_probabilities", "dice_loss")]
    with pytest.raises(ValueError, match=r"^diagnose: combined_loss is checked term by term: pass terms="):
        fl.diagnose("combined_loss", x, t)


def test_masks_with_an_ignore_index_and_tweedie_powers_are_not_alarms():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 8, 8))
    m = (rng.random(x.shape) < 0.3).astype(float)
    m[:, 0] = 255                                         # an ignored border, as VOC's 255
    assert fl.diagnose("dice_loss", x, m, ignore_index=255).ok
    assert fl.diagnose(fl.LovaszHingeLoss(ignore_index=255), x, m).ok
    d = fl.diagnose("dice_loss", x, m, warn=False)
    assert d.codes == ["mask_out_of_range"] and d[0].fix == "pass ignore_index=255 so those pixels count for nothing"
    y = rng.normal(size=500)
    assert fl.diagnose("tweedie_loss", y * 0.1, y, power=-1.0).ok        # any real target for power <= 0
    assert fl.diagnose(fl.TweedieLoss(power=0.0), y * 0.1, y).ok
    assert fl.diagnose("tweedie_loss", y * 0.1, y, warn=False).codes == ["target_outside_support"]
    z = np.abs(y)
    z[:3] = 0
    assert fl.diagnose("tweedie_loss", y * 0.1, z, power=1.5).ok
    assert fl.diagnose(fl.TweedieLoss(power=3.0), y * 0.1, z, warn=False).codes == ["target_outside_support"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_false_alarm_in_float32_and_on_weights(dtype):
    rng = np.random.default_rng(5)
    x, t, _ = _clean("cross_entropy", rng)
    assert fl.diagnose("cross_entropy", x.astype(dtype), t.astype(np.int32), weight=np.ones(C)).ok
    x, t, _ = _clean("binary_cross_entropy_with_logits", rng)
    assert fl.diagnose("binary_cross_entropy_with_logits", x.astype(dtype), t.astype(dtype),
                       weight=rng.random(N)).ok


# ---------------------------------------------------------------- each check, triggered

def _cases():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(N, C)) * 2
    labels = rng.integers(0, C, N)
    probs = _softmax(logits)
    x = rng.normal(size=N)
    y01 = (rng.random(N) < 0.3).astype(float)
    sig = 1 / (1 + np.exp(-x))
    t_nan = x + rng.normal(size=N)
    t_nan[[3, 99]] = np.nan
    x_nan = x.copy()
    x_nan[7] = np.nan
    sx = rng.normal(size=(8, 16, 16)) * 2                       # binary segmentation logits
    mask = (rng.random(sx.shape) < 0.3).astype(float)
    sl = rng.normal(size=(8, C, 16, 16)) * 2                    # multiclass segmentation logits
    slab = rng.integers(0, C, (8, 16, 16))
    boxes = _boxes(rng, 200)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    xywh[:, :2] += 60                                           # w < x for most boxes
    pos = rng.gamma(2.0, 1.0, N)
    emb = rng.normal(size=(64, 8))
    flags = (rng.random(64) < 0.5).astype(float)
    emb_nan = emb.copy()
    emb_nan[3, 2] = np.nan
    lp = np.log(rng.uniform(0.05, 1.0, N))                      # RL: log-probabilities of the actions taken
    adv = rng.normal(size=N)
    T3 = rng.normal(size=(12, 4, C))                            # CTC: (T, N, C) logits
    ctc_extra = (rng.integers(1, C, (4, 3)), np.full(4, 12), np.full(4, 3))
    img = rng.uniform(0, 1, (16, 64))
    mu = rng.normal(size=(16, 4))
    terms = [(1.0, fl.BCEWithLogitsLoss()), (1.0, fl.DiceLoss("binary"))]
    return [
        # the generative and RL objectives, CTC, a combined loss (issues 13 and 14)
        ("not_log_probabilities", "policy_gradient_loss", np.exp(lp), adv, {}),
        ("not_log_probabilities", "ppo_clip_loss", lp, np.exp(lp), {}, (adv,)),
        ("not_log_probabilities", "ppo_clip_loss_from_logits", logits, labels, {}, (np.exp(lp), adv)),
        ("not_log_probabilities", "ppo_clip_loss", lp + 1.0, lp, {}, (adv,)),
        ("not_log_probabilities", "ctc_loss", T3, ctc_extra[0], {}, ctc_extra[1:]),
        ("zero_advantages", "policy_gradient_loss", lp, np.zeros(N), {}),
        ("zero_advantages", "ppo_clip_loss", lp, lp, {}, (np.zeros(N),)),
        ("zero_advantages", "policy_gradient_loss_from_logits", logits, labels, {}, (np.zeros(N),)),
        ("not_done_flags", "td_loss", x, y01, {}, (x, np.full(N, 0.99))),
        ("not_done_flags", "td_loss", x, y01, {}, (x, 2 * y01 - 1)),
        ("probabilities_as_logits", "policy_gradient_loss_from_logits", probs, labels, {}, (adv,)),
        ("onehot_for_labels", "ppo_clip_loss_from_logits", logits, np.eye(C)[labels], {}, (lp, adv)),
        ("gan_sigmoid", "gan_discriminator_loss", sig, sig[::-1], {}),
        ("gan_sigmoid", "gan_discriminator_loss", x, sig, {"kind": "wasserstein"}),
        ("gan_sigmoid", "gan_generator_loss", sig, None, {"kind": "hinge"}),
        ("image_out_of_range", "vae_loss", img * 2, np.round(img * 255), {}, (mu, mu)),
        ("image_out_of_range", "vae_loss", img, img - 0.5, {}, (mu, mu)),
        ("probabilities_as_logits", "vae_loss", img, img, {}, (mu, mu)),
        ("nan_input", "vae_loss", img, img, {}, (mu, np.where(mu > 1, np.nan, mu))),
        ("nan_target", "gaussian_kl_loss", mu, np.where(mu > 1, np.nan, mu), {}),
        ("nan_input", "gradient_penalty", np.where(mu > 1, np.nan, mu), None, {}),
        ("probabilities_as_logits", "combined_loss", sig.reshape(4, -1), y01.reshape(4, -1), {"terms": terms}),
        ("mask_out_of_range", "combined_loss", x.reshape(4, -1), y01.reshape(4, -1) * 255, {}, (terms,)),
        ("collapsed_embeddings", "triplet_margin_loss", np.ones((64, 8)), emb, {}, (emb,)),
        ("collapsed_embeddings", "batch_hard_triplet_loss", np.tile(emb[0], (64, 1)), np.arange(64) % 8, {}),
        ("nan_input", "triplet_margin_loss", emb, emb, {}, (emb_nan,)),     # the negative's NaN
        ("nan_input", "contrastive_loss", emb, emb_nan, {}, (flags,)),
        ("zero_one_for_pm1", "cosine_embedding_loss", emb, emb, {}, (flags,)),
        ("zero_one_for_pm1", "margin_ranking_loss", emb[:, 0], emb[:, 1], {}, (flags,)),
        ("zero_one_for_pm1", "hinge_embedding_loss", np.abs(emb[:, 0]), flags, {}),
        ("not_pair_flags", "contrastive_loss", emb, emb, {}, (rng.integers(0, 5, 64).astype(float),)),
        ("not_pair_flags", "contrastive_loss", emb, emb, {}, (2 * flags - 1,)),
        ("batch_labels", "batch_hard_triplet_loss", emb, np.arange(64), {}),
        ("batch_labels", "batch_all_triplet_loss", emb, np.zeros(64, np.int64), {}),
        ("batch_labels", "nt_xent_loss", emb, np.r_[np.arange(40), np.repeat(np.arange(40, 52), 2)], {}),
        ("probabilities_as_logits", "dice_loss", 1 / (1 + np.exp(-sx)), mask, {}),
        ("probabilities_as_logits", "ce_dice_loss", np.exp(sl) / np.exp(sl).sum(1, keepdims=True), slab, {}),
        ("probabilities_as_logits", "lovasz_hinge_loss", 1 / (1 + np.exp(-sx)), mask, {}),
        ("logits_as_probabilities", "dice_loss", sx, mask, {"from_logits": False}),
        ("logits_as_probabilities", "lovasz_softmax_loss", sl, slab, {"from_logits": False}),
        ("onehot_for_labels", "dice_loss", sl, np.eye(C)[slab].transpose(0, 3, 1, 2), {"mode": "multiclass"}),
        ("onehot_for_labels", "ce_dice_loss", sl, np.eye(C)[slab].transpose(0, 3, 1, 2), {}),
        ("labels_for_binary", "dice_loss", sl, slab, {"mode": "multilabel"}),
        ("mask_out_of_range", "dice_loss", sx, mask * 255, {}),
        ("mask_out_of_range", "bce_dice_loss", sx, rng.integers(0, C, sx.shape).astype(float), {}),
        ("mask_out_of_range", "jaccard_loss", sx, sx, {}),
        ("mask_out_of_range", "lovasz_hinge_loss", sx, rng.uniform(0, 1, sx.shape), {}),
        ("inverted_boxes", "generalized_box_iou_loss", xywh, boxes, {}),
        ("inverted_boxes", "box_iou_loss", boxes, boxes[:, [2, 3, 0, 1]], {}),
        ("box_units", "complete_box_iou_loss", boxes / 200, boxes, {}),
        ("target_outside_support", "gamma_nll_loss", x, np.where(y01 > 0, 0.0, pos), {}),
        ("target_outside_support", "tweedie_loss", x, x * 3, {}),
        ("target_outside_support", "mean_squared_logarithmic_error", x, x * 3, {}),
        ("zero_targets", "mean_absolute_percentage_error", x, np.where(y01 > 0, 0.0, pos), {}),
        ("regression_on_classes", "trimmed", x, y01, {"loss": fl.MSELoss()}),
        ("nan_target", "winsorized", x, t_nan, {"loss": fl.L1Loss()}),
        ("nan_target", "mse_loss", x, t_nan, {}),
        ("nan_target", "binary_cross_entropy_with_logits", x, np.where(np.isnan(t_nan), np.nan, y01), {}),
        ("nan_input", "huber_loss", x_nan, x, {}),
        ("constant_target", "mse_loss", x, np.full(N, 2.5), {}),
        ("constant_target", "cross_entropy", logits, np.full(N, 2), {}),
        ("probabilities_as_logits", "cross_entropy", probs, labels, {}),
        ("probabilities_as_logits", "poly1_cross_entropy", probs, labels, {}),
        ("probabilities_as_logits", "softmax_focal_loss", probs, labels, {}),
        ("probabilities_as_logits", "binary_cross_entropy_with_logits", sig, y01, {}),
        ("probabilities_as_logits", "sigmoid_focal_loss", sig, y01, {}),
        ("probabilities_as_logits", "multilabel_soft_margin_loss", 1 / (1 + np.exp(-logits)),
         (rng.random((N, C)) < 0.3).astype(float), {}),
        ("probabilities_as_logits", "soft_margin_loss", sig, 2 * y01 - 1, {}),
        ("logits_as_probabilities", "binary_cross_entropy", x, y01, {}),
        ("not_log_probabilities", "nll_loss", logits, labels, {}),
        ("not_log_probabilities", "nll_loss", probs, labels, {}),
        ("not_log_probabilities", "nll_loss", np.log(probs) - 1.0, labels, {}),
        ("not_log_probabilities", "kl_div", probs, probs, {}),
        ("not_log_probabilities", "kl_div", logits, probs, {}),
        ("onehot_for_labels", "nll_loss", np.log(probs), np.eye(C)[labels], {}),
        ("onehot_for_labels", "softmax_focal_loss", logits, _softmax(rng.normal(size=(N, C))), {}),
        ("labels_for_binary", "binary_cross_entropy_with_logits", x, labels.astype(float), {}),
        ("labels_for_binary", "binary_cross_entropy_with_logits", logits, labels, {}),
        ("labels_for_binary", "kl_div", np.log(probs), np.eye(C)[labels] * 3, {}),
        ("zero_one_for_pm1", "soft_margin_loss", x, y01, {}),
        ("zero_one_for_pm1", "hinge_loss", x, y01, {}),
        ("swapped_arguments", "mse_loss", y01, x, {}),
        ("swapped_arguments", "l1_loss", labels.astype(float), x * 3, {}),
        ("swapped_arguments", "binary_cross_entropy_with_logits", y01, sig, {}),
        ("regression_on_classes", "mse_loss", x, y01, {}),
        ("regression_on_classes", "l1_loss", logits, np.eye(C)[labels], {}),
        ("regression_on_classes", "huber_loss", x, 2 * y01 - 1, {}),
        ("negative_counts", "poisson_nll_loss", x, -np.abs(x), {}),
        ("class_never_present", "cross_entropy", logits, np.minimum(labels, C - 2), {}),
        ("class_never_present", "nll_loss", np.log(probs), labels + (labels == 0), {}),
        ("weights_zero", "mse_loss", x, x + 1, {"weight": np.zeros(N)}),
        ("weights_zero", "cross_entropy", logits, labels, {"weight": np.zeros(C)}),
        ("weights_zero", "cross_entropy", logits, np.full(N, 1), {"weight": np.r_[1.0, 0.0, 1.0, 1.0, 1.0]}),
        ("weights_zero", "cross_entropy", logits, np.full(N, -100), {}),
        ("weights_zero", "nll_loss", np.log(probs), np.full(N, 4), {"ignore_index": 4}),
    ]


CASES = _cases()


@pytest.mark.parametrize("k", range(len(CASES)), ids=lambda k: f"{CASES[k][0]}-{CASES[k][1]}-{k}")
def test_each_check_fires_on_data_built_for_it(k):
    code, name, x, t, kw, *more = CASES[k]
    d = fl.diagnose(name, x, t, *(more[0] if more else ()), warn=False, **kw)
    assert code in d.codes, (code, d)
    f = d[d.codes.index(code)]
    op = D.resolve(kw["loss"])[0] if "loss" in kw else name     # a trimmed loss is checked as the one it wraps
    if name == "combined_loss":                                  # a sum of losses: each term as itself
        op = f.op
        assert op in {D.resolve(loss)[0] for _, loss in kw.get("terms") or more[0][0]}
    assert f.op == op and f.message and f.fix
    assert str(f) == f"{op}: {f.message}. Fix: {f.fix}"


def test_every_check_has_a_triggering_case():
    assert {c.code for c in D.CHECKS} == {c[0] for c in CASES}


def test_the_figure_is_in_the_message():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(500, 4))
    d = fl.diagnose("nll_loss", logits, rng.integers(0, 4, 500), warn=False)
    assert f"max {logits.max():.3g}" in d[0].message
    t = np.zeros(100); t[:25] = 1
    d = fl.diagnose("mse_loss", rng.normal(size=100), t, warn=False)
    assert d[0].message == "target is 0/1 (25 % ones): mse_loss fits class labels as numbers"


def test_small_samples_do_not_infer_intent():
    # 0/1 targets of 15 values: too few to call it classification
    assert fl.diagnose("mse_loss", np.arange(15.0), np.r_[np.ones(5), np.zeros(10)], warn=False).ok
    assert fl.diagnose("mse_loss", np.arange(16.0) / 3, np.r_[np.ones(5), np.zeros(11)],
                       warn=False).codes == ["regression_on_classes"]


def test_absent_class_needs_ten_labels_per_class():
    rng = np.random.default_rng(0)
    few = rng.integers(0, 99, 500)           # 500 labels for 100 classes: absence is not a sign
    assert "class_never_present" not in fl.diagnose("cross_entropy", rng.normal(size=(500, 100)), few,
                                                    warn=False).codes


def test_options_of_a_loss_object_are_read():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(300, 3))
    t = np.full(300, 2)
    assert fl.diagnose(fl.CrossEntropyLoss(ignore_index=2), logits, t, warn=False).codes == ["weights_zero"]
    assert fl.diagnose(fl.CrossEntropyLoss(weight=np.zeros(3)), logits, rng.integers(0, 3, 300),
                       warn=False).codes == ["weights_zero"]


# ---------------------------------------------------------------- warnings

def test_findings_are_warned_as_losswarning_at_the_callers_line():
    rng = np.random.default_rng(0)
    probs = _softmax(rng.normal(size=(100, 3)))
    with pytest.warns(fl.LossWarning, match=r"^cross_entropy: every row of input sums to 1") as rec:
        d = fl.diagnose("cross_entropy", probs, rng.integers(0, 3, 100))
    assert len(rec) == 1 and rec[0].filename == __file__
    assert rec[0].message.finding == d[0]
    assert issubclass(fl.LossWarning, UserWarning)


def test_warn_false_is_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = fl.diagnose("mse_loss", np.zeros(20), np.full(20, 1.0), warn=False)
    assert d.codes == ["constant_target"]


# ---------------------------------------------------------------- the tables

def test_expect_covers_every_public_loss():
    # an exemption is for what is not a loss (no gradient to return, no nn-style class): the losses of
    # issues 13 and 14 were once exempted here, which hid that they took no check= (conventions.md)
    for name in D.NOT_CHECKED:
        obj = getattr(fl, name)
        if isinstance(obj, type):
            assert not hasattr(obj, "value_and_grad"), f"{name} is a loss: it needs a row in EXPECT"
        else:
            assert "return_grad" not in inspect.signature(obj).parameters, f"{name} is a loss: it needs a row"
    for name in fl.__all__:
        if name in NON_LOSSES:
            continue
        obj = getattr(fl, name)
        if isinstance(obj, type):
            assert name in D._BY_CLASS or name in D.NOT_CHECKED, f"{name}: no row in fastloss._diagnose.EXPECT"
        else:
            assert name in D.EXPECT or name in D.NOT_CHECKED, f"{name}: no row in fastloss._diagnose.EXPECT"
    for name, e in D.EXPECT.items():
        assert callable(getattr(fl, name)) and isinstance(getattr(fl, e.cls), type)


def test_resolve_accepts_every_form_and_refuses_others():
    for form in ("huber_loss", "HuberLoss", fl.huber_loss, fl.HuberLoss, fl.HuberLoss(delta=2.0)):
        assert D.resolve(form)[0] == "huber_loss"
    with pytest.raises(ValueError, match=r"^diagnose: loss must be a fastloss loss .*got 'hubber'$"):
        fl.diagnose("hubber", [1.0], [1.0])
    with pytest.raises(ValueError, match=r"^diagnose: loss must be a fastloss loss .*got <built-in function len>$"):
        fl.diagnose(len, [1.0], [1.0])


def test_errors_name_the_loss_and_argument():
    with pytest.raises(TypeError, match=r"^mse_loss: input must be a real \(float, integer or bool\) array, "
                                        r"got dtype complex128$"):
        fl.diagnose("mse_loss", np.zeros(3, complex), np.zeros(3))
    with pytest.raises(TypeError, match=r"^cross_entropy: target must be a real .* got dtype <U1$"):
        fl.diagnose("cross_entropy", np.zeros((3, 2)), np.array(["a", "b", "c"]))


def test_repr_and_html():
    d = fl.diagnose("mse_loss", np.zeros(20), np.full(20, 1.0), warn=False)
    assert repr(d).splitlines()[:2] == ["fastloss.diagnose(mse_loss): 1 finding",
                                       "  [constant_target] target is constant (every one of its 20 values is 1)"]
    assert "<code>constant_target</code>" in d._repr_html_()
    ok = fl.diagnose("mse_loss", np.arange(20.0) + 0.25, np.arange(20.0) + 0.5, warn=False)
    assert repr(ok) == "fastloss.diagnose(mse_loss): no mistakes found" and "no mistakes" in ok._repr_html_()
