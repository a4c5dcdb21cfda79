"""Loss calls shared by the adapter tests (tests/test_dask.py,
tests/test_jax.py): one case per loss function, several for the losses
whose divisor or reduction blocks differ (weights, ignore_index, a
periodic pos_weight, spatial row losses, batchmean).  ``make(rng, dtype)``
gives the NumPy call's (args, kwargs)."""
import numpy as np

import fastloss as fl


class Case:
    """A loss call on NumPy arrays; ``make(rng, dtype)`` gives (args, kwargs)."""

    def __init__(self, cid, fn, make, reductions=("mean", "sum", "none")):
        self.cid, self.fn, self.make, self.reductions = cid, fn, make, reductions

    def __repr__(self):
        return self.cid


def _reg(n=(20011,)):
    def make(rng, dt):
        return (rng.standard_normal(n).astype(dt), rng.standard_normal(n).astype(dt)), {}
    return make


def _with(make, **extra):
    """make, plus keyword arguments computed from (rng, dt, shape)."""
    def m(rng, dt):
        args, kw = make(rng, dt)
        shape = args[0].shape
        for k, f in extra.items():
            kw[k] = f(rng, dt, shape)
        return args, kw
    return m


def _prob(n):
    def make(rng, dt):
        return (rng.uniform(0.01, 0.99, n).astype(dt), rng.uniform(0, 1, n).astype(dt)), {}
    return make


def _logit(n):
    def make(rng, dt):
        return (rng.standard_normal(n).astype(dt) * 2, (rng.uniform(0, 1, n) > 0.5).astype(dt)), {}
    return make


def _sign(n):
    def make(rng, dt):
        return (rng.standard_normal(n).astype(dt), rng.choice([-1.0, 1.0], n).astype(dt)), {}
    return make


def _count(n, positive=False):
    def make(rng, dt):
        x = rng.uniform(0.1, 3, n) if positive else rng.standard_normal(n)
        return (x.astype(dt), rng.poisson(2.0, n).astype(dt)), {}
    return make


def _gauss(n, var_shape):
    def make(rng, dt):
        return (rng.standard_normal(n).astype(dt), rng.standard_normal(n).astype(dt),
                rng.uniform(0.2, 2, var_shape).astype(dt)), {"full": True}
    return make


def _kl(n):
    def make(rng, dt):
        q = rng.dirichlet(np.ones(n[-1]), n[0])
        p = rng.dirichlet(np.ones(n[-1]), n[0])
        return (np.log(q).astype(dt), p.astype(dt)), {}
    return make


def _labels(n, C, spatial=(), ignore=False):
    def make(rng, dt):
        x = rng.standard_normal((n, C) + spatial).astype(dt) * 2
        y = rng.integers(0, C, (n,) + spatial)
        if ignore:
            y.reshape(-1)[::7] = -100
        return (x, y), {}
    return make


def _soft(n, C):
    def make(rng, dt):
        return (rng.standard_normal((n, C)).astype(dt), rng.dirichlet(np.ones(C), n).astype(dt)), {}
    return make


def _multilabel(n, C):
    def make(rng, dt):
        return (rng.standard_normal((n, C)).astype(dt), (rng.uniform(0, 1, (n, C)) > 0.6).astype(dt)), {}
    return make


def _elem_w(rng, dt, shape):
    return rng.uniform(0.1, 2, shape).astype(dt)


def _class_w(C):
    return lambda rng, dt, shape: rng.uniform(0.2, 2, C).astype(dt)


def _positive_target(n):
    def make(rng, dt):
        return (rng.standard_normal(n).astype(dt), rng.gamma(2.0, 1.0, n).astype(dt) + dt(0.05)), {}
    return make


def _mape(n):
    def make(rng, dt):
        t = rng.uniform(0.5, 3.0, n) * rng.choice([-1.0, 1.0], n)
        return (rng.standard_normal(n).astype(dt), t.astype(dt)), {}
    return make


def _msle(n):
    def make(rng, dt):
        return (rng.uniform(-0.5, 4, n).astype(dt), rng.uniform(-0.5, 4, n).astype(dt)), {}
    return make


def _boxes(n):
    def make(rng, dt):
        def boxes():
            xy = rng.uniform(0, 10, (n, 2))
            return np.concatenate([xy, xy + rng.uniform(0.5, 4, (n, 2))], axis=1).astype(dt)
        return (boxes(), boxes()), {}
    return make


def _seg_binary(n, hw=(6, 7)):
    def make(rng, dt):
        return (rng.standard_normal((n, 1) + hw).astype(dt), (rng.uniform(0, 1, (n, 1) + hw) > 0.6).astype(dt)), {}
    return make


def _seg_multiclass(n, C, hw=(5, 6), mode=True):
    def make(rng, dt):
        return ((rng.standard_normal((n, C) + hw).astype(dt), rng.integers(0, C, (n,) + hw)),
                {"mode": "multiclass"} if mode else {})
    return make


def _rows_of(k, n, D, target=None):
    """k operands of n rows of D features, and a per-row target (+-1 or 0/1)."""
    def make(rng, dt):
        ops = tuple(rng.standard_normal((n, D)).astype(dt) for _ in range(k))
        if target == "sign":
            ops += (rng.choice([-1.0, 1.0], n).astype(dt),)
        elif target == "binary":
            ops += ((rng.uniform(0, 1, n) > 0.5).astype(dt),)
        return ops, {}
    return make


def _row_w(rng, dt, shape):
    return rng.uniform(0.2, 2.0, shape[:-1]).astype(dt)


def _ranking(n):
    def make(rng, dt):
        return (rng.standard_normal(n).astype(dt), rng.standard_normal(n).astype(dt),
                rng.choice([-1.0, 1.0], n).astype(dt)), {}
    return make


def _batch(n, D):
    def make(rng, dt):
        return (rng.standard_normal((n, D)).astype(dt), rng.integers(0, 5, n)), {}
    return make


def _const(v):
    return lambda *a: v


P2 = (2503, 8)  # 20024 elements, rows of 8: blocks of 8192 start inside rows 1024 apart

CASES = [
    Case("mse", fl.mse_loss, _reg()),
    Case("mse-weighted", fl.mse_loss, _with(_reg(P2), weight=_elem_w)),        # divisor: summed weights
    Case("mse-row-weight", fl.mse_loss, _with(_reg(P2), weight=lambda r, d, s: r.uniform(0, 1, s[1:]).astype(d))),
    Case("l1-weighted", fl.l1_loss, _with(_reg(), weight=_elem_w)),
    Case("huber", fl.huber_loss, _with(_reg(P2), delta=lambda *a: 0.7)),
    Case("smooth_l1", fl.smooth_l1_loss, _with(_reg(), beta=lambda *a: 0.6)),
    Case("log_cosh", fl.log_cosh_loss, _reg(P2)),
    Case("quantile", fl.quantile_loss, _with(_reg(), quantile=lambda *a: 0.3)),
    Case("poisson-log", fl.poisson_nll_loss, _with(_count(P2), full=lambda *a: True)),
    Case("poisson", fl.poisson_nll_loss, _with(_count((20011,), True), log_input=lambda *a: False)),
    Case("gaussian", fl.gaussian_nll_loss, _gauss(P2, P2)),
    Case("gaussian-var-per-row", fl.gaussian_nll_loss, _gauss(P2, P2[:1])),
    Case("bce", fl.binary_cross_entropy, _with(_prob(P2), weight=_elem_w)),
    Case("bce_logits", fl.binary_cross_entropy_with_logits, _logit((20011,))),
    Case("bce_logits-pos_weight", fl.binary_cross_entropy_with_logits,    # a periodic extra operand
         _with(_logit((3001, 7)), pos_weight=_class_w(7), weight=_elem_w)),
    Case("sigmoid_focal", fl.sigmoid_focal_loss, _with(_logit(P2), gamma=lambda *a: 1.5)),
    Case("sigmoid_focal-g2", fl.sigmoid_focal_loss, _logit((20011,))),
    Case("hinge", fl.hinge_loss, _sign((20011,))),
    Case("squared_hinge", fl.squared_hinge_loss, _sign(P2)),
    Case("soft_margin", fl.soft_margin_loss, _sign((20011,))),
    Case("kl_div", fl.kl_div, _kl((2503, 8)), ("mean", "sum", "none", "batchmean")),
    Case("kl_div-log_target", fl.kl_div, _with(_kl((2503, 8)), log_target=lambda *a: True),
         ("batchmean", "sum")),
    Case("cross_entropy", fl.cross_entropy, _labels(6007, 7)),
    Case("cross_entropy-weighted-ignore", fl.cross_entropy,   # divisor: summed weights of the labels kept
         _with(_labels(6007, 7, ignore=True), weight=_class_w(7), label_smoothing=lambda *a: 0.1)),
    Case("cross_entropy-spatial", fl.cross_entropy, _with(_labels(157, 5, (8, 8), ignore=True),
                                                          weight=_class_w(5))),
    Case("cross_entropy-soft", fl.cross_entropy, _soft(4001, 9)),
    Case("nll", fl.nll_loss, _with(_labels(6007, 7, ignore=True), weight=_class_w(7))),
    Case("softmax_focal", fl.softmax_focal_loss, _with(_labels(6007, 7, ignore=True), alpha=_class_w(7))),
    Case("multi_margin", fl.multi_margin_loss, _with(_labels(6007, 7), p=lambda *a: 2, weight=_class_w(7))),
    Case("multilabel_soft_margin", fl.multilabel_soft_margin_loss, _with(_multilabel(4001, 6),
                                                                         weight=_class_w(6))),
    Case("poly1", fl.poly1_cross_entropy, _with(_labels(6007, 7, ignore=True), epsilon=lambda *a: 1.0)),
    # the regression catalogue (pointwise driver)
    Case("gamma_nll", fl.gamma_nll_loss, _with(_positive_target(P2), weight=_elem_w)),
    Case("tweedie", fl.tweedie_loss, _with(_count((20011,)), power=_const(1.5))),
    Case("pseudo_huber", fl.pseudo_huber_loss, _with(_reg(P2), delta=_const(0.8))),
    Case("fair", fl.fair_loss, _with(_reg(), c=_const(1.3))),
    Case("cauchy", fl.cauchy_loss, _with(_reg(P2), c=_const(0.9))),
    Case("tukey", fl.tukey_biweight_loss, _with(_reg(), c=_const(2.0))),
    Case("expectile", fl.expectile_loss, _with(_reg(P2), tau=_const(0.7), weight=_elem_w)),
    Case("mape", fl.mean_absolute_percentage_error, _mape((20011,))),
    Case("msle", fl.mean_squared_logarithmic_error, _msle(P2)),
    # box losses (overlap driver, elementwise over pairs of boxes)
    Case("box_iou", fl.box_iou_loss, _boxes(9001), ("mean", "sum", "none")),
    Case("giou", fl.generalized_box_iou_loss, _boxes(9001), ("sum", "none")),
    Case("diou", fl.distance_box_iou_loss, _boxes(9001), ("mean", "none")),
    Case("ciou", fl.complete_box_iou_loss, _boxes(9001), ("mean", "none")),
    # the row-over-features driver (and two pointwise pair losses)
    Case("triplet", fl.triplet_margin_loss, _with(_rows_of(3, 3001, 12), weight=_row_w, swap=_const(True))),
    Case("triplet_distance", fl.triplet_margin_with_distance_loss,
         _with(_rows_of(3, 3001, 12), distance_function=_const("cosine"), margin=_const(0.3))),
    Case("cosine_embedding", fl.cosine_embedding_loss, _with(_rows_of(2, 3001, 12, "sign"), margin=_const(0.1))),
    Case("contrastive", fl.contrastive_loss, _with(_rows_of(2, 3001, 12, "binary"), weight=_row_w)),
    Case("cosine_distance", fl.cosine_distance_loss, _with(_rows_of(2, 3001, 12), weight=_row_w)),
    Case("margin_ranking", fl.margin_ranking_loss, _with(_ranking(20011), margin=_const(0.2), weight=_elem_w)),
    Case("hinge_embedding", fl.hinge_embedding_loss, _with(_sign(P2), margin=_const(0.8))),
]


def _gen(kind, n):
    """The generative and RL objectives (issue 14) that are one pointwise or row pass."""
    def make(rng, dt):
        def r(*shape, s=1.0, loc=0.0):
            return (rng.standard_normal(shape) * s + loc).astype(dt)
        if kind == "pg":
            return (r(*n, s=0.5, loc=-1.0), r(*n)), {}
        if kind == "ppo":
            old = r(*n, s=0.5, loc=-1.0)
            return (old + r(*n, s=0.3), old, r(*n)), {"clip_eps": 0.2, "dual_clip": 3.0}
        if kind == "value":
            v = r(*n)
            return (v, r(*n), v + r(*n, s=0.5)), {"clip_eps": 0.3, "kind": "huber"}
        if kind == "td":
            return (r(*n), r(*n), r(*n), (rng.random(n) < 0.2).astype(dt)), {"gamma": 0.9}
        if kind == "gen":
            return (r(*n, s=2),), {"kind": "nonsaturating"}
        if kind == "gp":
            return (r(*n),), {}
        return (r(*n), r(*n)), {}
    return make


CASES += [
    Case("policy_gradient", fl.policy_gradient_loss, _gen("pg", (20011,))),
    Case("ppo_clip", fl.ppo_clip_loss, _with(_gen("ppo", P2), weight=_elem_w)),
    Case("value_loss", fl.value_loss, _gen("value", (20011,))),
    Case("td_loss", fl.td_loss, _gen("td", P2)),
    Case("gan_generator", fl.gan_generator_loss, _gen("gen", (20011,))),
    Case("gradient_penalty", fl.gradient_penalty, _gen("gp", (3001, 12))),
    Case("gaussian_kl", fl.gaussian_kl_loss, _gen("kl", P2), ("mean", "sum")),
]

def _ctc(T, N, C, S, batch_first=False, from_logits=False):
    """CTC: log_probs (T, N, C) (logits, batch-first if asked), padded
    targets without the blank 0, lengths that vary (one target longer
    than its input can fit: an infinite loss, zeroed)."""
    def make(rng, dt):
        z = rng.standard_normal((T, N, C)) * 2
        lp = z if from_logits else z - np.log(np.exp(z).sum(-1, keepdims=True))
        if batch_first:
            lp = np.ascontiguousarray(lp.transpose(1, 0, 2))
        targets = rng.integers(1, C, (N, S)).astype(np.int64)
        il = rng.integers(T // 2, T + 1, N).astype(np.int64)
        tl = rng.integers(1, S + 1, N).astype(np.int64)
        tl[0] = S
        il[0] = S - 1  # shorter than its target: no alignment
        kw = {"zero_infinity": True}
        if batch_first:
            kw["batch_first"] = True
        if from_logits:
            kw["from_logits"] = True
        return (lp.astype(dt), targets, il, tl), kw
    return make


# Losses whose reduction is not a sum of aligned blocks: fastloss.dask splits them
# by sets or samples or runs them gathered (fastloss.dask.strategy); calls for the other adapters.
UNSPLIT = [
    Case("trimmed", fl.trimmed, _with(_reg((3001,)), loss=_const(fl.MSELoss()), trim=_const(0.1))),
    Case("winsorized", fl.winsorized, _with(_reg((3001,)), loss=_const(fl.HuberLoss(delta=0.5)),
                                            limit=_const(0.1), tails=_const("upper"))),
    Case("dice", fl.dice_loss, _seg_binary(9)),
    Case("jaccard-per_image", fl.jaccard_loss, _with(_seg_binary(9), per_image=_const(True))),
    Case("tversky", fl.tversky_loss, _with(_seg_multiclass(7, 4), alpha=_const(0.3), beta=_const(0.7))),
    Case("bce_dice", fl.bce_dice_loss, _seg_binary(9)),
    Case("ce_dice", fl.ce_dice_loss, _seg_multiclass(7, 4, mode=False)),
    Case("lovasz_hinge", fl.lovasz_hinge_loss, _with(_seg_binary(9), per_image=_const(True))),
    Case("lovasz_softmax", fl.lovasz_softmax_loss, _seg_multiclass(7, 4, mode=False)),
    Case("batch_hard", fl.batch_hard_triplet_loss, _batch(60, 8), ("mean", "sum")),
    Case("batch_all", fl.batch_all_triplet_loss, _batch(60, 8), ("mean", "sum")),
    Case("nt_xent", fl.nt_xent_loss, _batch(60, 8), ("mean", "sum")),
    # the sequence driver (its batch is axis 1 of log_probs)
    Case("ctc", fl.ctc_loss, _ctc(40, 5, 6, 8)),
    Case("ctc-batch_first-logits", fl.ctc_loss, _ctc(40, 5, 6, 8, batch_first=True, from_logits=True)),
    # two driver calls per value (issue 14)
    Case("vae", fl.vae_loss, lambda rng, dt: ((rng.standard_normal((60, 9)).astype(dt), rng.random((60, 9)).astype(dt),
                                               rng.standard_normal((60, 3)).astype(dt),
                                               rng.standard_normal((60, 3)).astype(dt)), {}), ("mean", "sum")),
    Case("gan_discriminator", fl.gan_discriminator_loss,
         lambda rng, dt: ((rng.standard_normal(60).astype(dt), rng.standard_normal(60).astype(dt)), {}), ("mean", "sum")),
    Case("combined", fl.combined_loss,
         lambda rng, dt: ((rng.standard_normal(60).astype(dt), rng.standard_normal(60).astype(dt)),
                          {"terms": [(1.0, fl.MSELoss()), (0.5, fl.L1Loss())]}), ("mean",)),
    # the RL losses from logits: the row kernel over (N, A) logits with per-row operands (issue 14)
    Case("policy_gradient_logits", fl.policy_gradient_loss_from_logits,
         lambda rng, dt: ((rng.standard_normal((60, 5)).astype(dt), rng.integers(0, 5, 60),
                           rng.standard_normal(60).astype(dt)), {"entropy_coef": 0.01})),
    Case("ppo_clip_logits", fl.ppo_clip_loss_from_logits,
         lambda rng, dt: ((rng.standard_normal((60, 5)).astype(dt), rng.integers(0, 5, 60),
                           (rng.standard_normal(60) * 0.3 - 1.6).astype(dt), rng.standard_normal(60).astype(dt)),
                          {"clip_eps": 0.2, "entropy_coef": 0.01})),
]
BY_ID = {c.cid: c for c in CASES + UNSPLIT}


