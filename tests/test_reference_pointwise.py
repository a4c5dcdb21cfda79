"""The NumPy reference of the pointwise losses checks out by itself.

Its gradients and diagonal Hessians equal fourth-order central finite
differences of its own value (float64; "sum", "mean" and "none"; with and
without weights; at points away from every kink), the Gaussian NLL's
gradient with respect to var too; its values equal the naive textbook
formulas; and its reductions agree with one another.
"""
import math

import numpy as np
import pytest

from fastloss.reference import pointwise as R

SEEDS = [0, 1, 2]
REDUCTIONS = ["sum", "mean", "none"]
SHAPE = (2, 3)


def _away(v, kinks, gap=0.05):
    """Move values closer than gap to a kink past it, so a finite difference
    of step << gap never straddles a non-differentiable point."""
    v = np.array(v, dtype=np.float64)
    for k in kinks:
        near = np.abs(v - k) < gap
        v = np.where(near, np.where(v >= k, k + gap + (v - k), k - gap + (v - k)), v)
    return v


def _bin_or_frac(rng, shape):
    """Targets: half 0/1 labels, half probabilities."""
    t = rng.uniform(0.0, 1.0, shape)
    lab = rng.random(shape) < 0.5
    return np.where(lab, np.round(t), t)


def _kl_gen(log_target):
    def gen(rng, shape):
        x = np.log(rng.uniform(0.05, 1.0, shape))
        t = np.log(rng.uniform(0.05, 1.0, shape)) if log_target else np.where(
            rng.random(shape) < 0.2, 0.0, rng.uniform(0.0, 1.0, shape))
        return x, t, {}
    return gen


def _pm1(rng, shape):
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0)


def _regression(kinks):
    def gen(rng, shape):
        x = rng.normal(0.0, 2.0, shape)
        d = _away(rng.normal(0.0, 2.0, shape), kinks)
        return x, x - d, {}
    return gen


def _quantile_gen(rng, shape):
    x = rng.normal(0.0, 2.0, shape)
    r = _away(rng.normal(0.0, 2.0, shape), [0.0])
    return x, x + r, {}


def _poisson_gen(log_input):
    def gen(rng, shape):
        t = rng.poisson(2.5, shape).astype(np.float64)
        t = np.where(rng.random(shape) < 0.3, t + rng.uniform(0.1, 0.9, shape), t)
        x = rng.normal(0.0, 1.0, shape) if log_input else rng.uniform(0.5, 4.0, shape)
        return x, t, {}
    return gen


def _gaussian_gen(var_kind):
    def gen(rng, shape):
        x, t = rng.normal(0.0, 1.5, shape), rng.normal(0.0, 1.5, shape)
        vshape = {"same": shape, "fewer": shape[:-1], "bcast": (1,) + shape[1:], "scalar": ()}[var_kind]
        return x, t, {"var": rng.uniform(0.5, 2.5, vshape)}
    return gen


def _bce_gen(rng, shape):
    return rng.uniform(0.1, 0.9, shape), _bin_or_frac(rng, shape), {}


def _logits_gen(pw_kind=None, scale=2.5):
    def gen(rng, shape):
        x = rng.normal(0.0, scale, shape)
        extra = {}
        if pw_kind == "C":
            extra["pos_weight"] = rng.uniform(0.5, 3.0, shape[-1:])
        elif pw_kind == "scalar":
            extra["pos_weight"] = np.float64(2.5)
        return x, _bin_or_frac(rng, shape), extra
    return gen


def _hinge_gen(rng, shape):
    t = _pm1(rng, shape)
    margin = _away(rng.normal(0.5, 1.5, shape), [0.0])
    return t * (1.0 - margin), t, {}


def _soft_margin_gen(general):
    def gen(rng, shape):
        t = rng.normal(0.0, 1.5, shape) if general else _pm1(rng, shape)
        return rng.normal(0.0, 2.5, shape), t, {}
    return gen


# (id, name, loss params, data generator, finite-difference step)
CASES = [
    ("mse", "mse_loss", {}, _regression([]), 1e-3),
    ("l1", "l1_loss", {}, _regression([0.0]), 1e-3),
    ("huber-1", "huber_loss", {"delta": 1.0}, _regression([-1.0, 1.0]), 1e-3),
    ("huber-0.3", "huber_loss", {"delta": 0.3}, _regression([-0.3, 0.3]), 1e-3),
    ("smooth_l1-1", "smooth_l1_loss", {"beta": 1.0}, _regression([-1.0, 1.0]), 1e-3),
    ("smooth_l1-0.4", "smooth_l1_loss", {"beta": 0.4}, _regression([-0.4, 0.4]), 1e-3),
    ("smooth_l1-0", "smooth_l1_loss", {"beta": 0.0}, _regression([0.0]), 1e-3),
    ("log_cosh", "log_cosh_loss", {}, _regression([]), 1e-3),
    ("quantile-0.5", "quantile_loss", {"quantile": 0.5}, _quantile_gen, 1e-3),
    ("quantile-0.1", "quantile_loss", {"quantile": 0.1}, _quantile_gen, 1e-3),
    ("quantile-0.9", "quantile_loss", {"quantile": 0.9}, _quantile_gen, 1e-3),
    ("poisson-log", "poisson_nll_loss", {"log_input": True, "full": False}, _poisson_gen(True), 1e-3),
    ("poisson-log-full", "poisson_nll_loss", {"log_input": True, "full": True}, _poisson_gen(True), 1e-3),
    ("poisson", "poisson_nll_loss", {"log_input": False, "full": False, "eps": 1e-8}, _poisson_gen(False), 1e-3),
    ("poisson-full-eps", "poisson_nll_loss", {"log_input": False, "full": True, "eps": 0.1}, _poisson_gen(False),
     1e-3),
    ("gaussian-same", "gaussian_nll_loss", {"full": False, "eps": 1e-6}, _gaussian_gen("same"), 1e-3),
    ("gaussian-fewer-full", "gaussian_nll_loss", {"full": True, "eps": 1e-6}, _gaussian_gen("fewer"), 1e-3),
    ("gaussian-bcast", "gaussian_nll_loss", {"full": False, "eps": 0.1}, _gaussian_gen("bcast"), 1e-3),
    ("gaussian-scalar", "gaussian_nll_loss", {"full": True, "eps": 1e-6}, _gaussian_gen("scalar"), 1e-3),
    ("bce", "binary_cross_entropy", {}, _bce_gen, 1e-4),
    ("bce_logits", "binary_cross_entropy_with_logits", {}, _logits_gen(), 1e-3),
    ("bce_logits-pwC", "binary_cross_entropy_with_logits", {}, _logits_gen("C"), 1e-3),
    ("bce_logits-pw", "binary_cross_entropy_with_logits", {}, _logits_gen("scalar"), 1e-3),
] + [
    (f"focal-a{a}-g{g}", "sigmoid_focal_loss", {"alpha": a, "gamma": g}, _logits_gen(scale=2.0), 1e-3)
    for a, g in [(0.25, 0.0), (0.25, 0.5), (0.25, 1.0), (0.25, 2.0), (0.25, 3.5), (-1.0, 2.0), (-0.5, 0.5),
                 (0.0, 1.5), (1.0, 2.0), (0.75, 0.5)]
] + [
    ("hinge", "hinge_loss", {}, _hinge_gen, 1e-3),
    ("squared_hinge", "squared_hinge_loss", {}, _hinge_gen, 1e-3),
    ("soft_margin", "soft_margin_loss", {}, _soft_margin_gen(False), 1e-3),
    ("soft_margin-general", "soft_margin_loss", {}, _soft_margin_gen(True), 1e-3),
    ("kl", "kl_div", {"log_target": False}, _kl_gen(False), 1e-3),
    ("kl-log_target", "kl_div", {"log_target": True}, _kl_gen(True), 1e-3),
]
CASE_IDS = [c[0] for c in CASES]


def test_table_covers_every_loss():
    assert {c[1] for c in CASES} == set(R.POINTWISE)
    assert len(R.POINTWISE) == 15
    for name, entry in R.POINTWISE.items():
        assert entry.fn is getattr(R, name) and entry.hess is getattr(R, name + "_hess")
        assert name in R.__all__ and name + "_hess" in R.__all__


def _total(value):
    """The scalar whose gradient the reference returns (the sum for "none")."""
    return math.fsum(np.ravel(value)) if isinstance(value, np.ndarray) else value


class _Problem:
    def __init__(self, case, seed, reduction, weighted):
        self.id, self.name, self.params, gen, self.h = case
        rng = np.random.default_rng([seed, CASE_IDS.index(self.id)])
        self.x, self.t, self.extra = gen(rng, SHAPE)
        self.w = rng.uniform(0.5, 2.0, SHAPE) if weighted else None
        self.reduction = reduction
        self.ref = R.POINTWISE[self.name]

    def _args(self, x, var=None):
        if self.name == "gaussian_nll_loss":
            return (x, self.t, self.extra["var"] if var is None else var)
        return (x, self.t)

    def _kw(self):
        kw = dict(self.params, weight=self.w, reduction=self.reduction)
        if "pos_weight" in self.extra:
            kw["pos_weight"] = self.extra["pos_weight"]
        return kw

    def call(self, x, var=None):
        return self.ref.fn(*self._args(x, var), **self._kw())

    def hess(self, x):
        return self.ref.hess(*self._args(x), **self._kw())

    def f(self, x, var=None):
        return _total(self.call(x, var)[0])


def _fd1(f, z, i, h):
    e = np.zeros_like(z)
    e.flat[i] = h
    return (-f(z + 2 * e) + 8 * f(z + e) - 8 * f(z - e) + f(z - 2 * e)) / (12 * h)


def _fd2(f, z, i, h):
    e = np.zeros_like(z)
    e.flat[i] = h
    return (-f(z + 2 * e) + 16 * f(z + e) - 30 * f(z) + 16 * f(z - e) - f(z - 2 * e)) / (12 * h * h)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_gradient_and_hessian_match_finite_differences(case, seed, reduction, weighted):
    p = _Problem(case, seed, reduction, weighted)
    x, h = p.x, p.h
    out = p.call(x)
    value, grad = out[0], out[1]
    hess = p.hess(x)
    assert grad.shape == x.shape and hess.shape == x.shape
    assert grad.dtype == np.float64 and hess.dtype == np.float64
    if reduction == "none":
        assert isinstance(value, np.ndarray) and value.shape == x.shape
    else:
        assert isinstance(value, float)
    f0 = abs(p.f(x))
    gmax = np.abs(grad).max()

    fd_g = np.array([_fd1(p.f, x, i, h) for i in range(x.size)]).reshape(x.shape)
    np.testing.assert_allclose(grad, fd_g, rtol=1e-7, atol=1e-9 * (f0 + gmax) + 1e-13,
                               err_msg=f"{p.id}: gradient vs FD of the value")

    fd_h = np.array([_fd2(p.f, x, i, h) for i in range(x.size)]).reshape(x.shape)
    np.testing.assert_allclose(hess, fd_h, rtol=1e-5, atol=1e-7 * (f0 + np.abs(hess).max()) + 1e-12,
                               err_msg=f"{p.id}: Hessian vs second FD of the value")

    # the Hessian is diagonal: a column of the FD Jacobian of the gradient is hess[i] e_i
    def gvec(z):
        return p.call(z)[1]
    for i in range(x.size):
        col = _fd1(gvec, x, i, h)
        expect = np.zeros(x.size)
        expect[i] = hess.flat[i]
        np.testing.assert_allclose(col.ravel(), expect, rtol=1e-7, atol=1e-9 * (gmax + np.abs(hess).max()) + 1e-13,
                                   err_msg=f"{p.id}: Hessian column {i} vs FD of the gradient")


GAUSSIAN_CASES = [c for c in CASES if c[1] == "gaussian_nll_loss"]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", GAUSSIAN_CASES, ids=[c[0] for c in GAUSSIAN_CASES])
def test_gaussian_grad_var_matches_finite_differences(case, seed, reduction, weighted):
    p = _Problem(case, seed, reduction, weighted)
    var = np.asarray(p.extra["var"], dtype=np.float64)
    _, _, gvar = p.call(p.x)
    assert gvar.shape == var.shape and gvar.dtype == np.float64

    def fv(v):
        return p.f(p.x, v)
    fd = np.array([_fd1(fv, var, i, 1e-3) for i in range(var.size)]).reshape(var.shape)
    np.testing.assert_allclose(gvar, fd, rtol=1e-7, atol=1e-9 * (abs(p.f(p.x)) + np.abs(gvar).max()),
                               err_msg=f"{p.id}: grad_var vs FD")


def test_gaussian_grad_var_below_eps_is_taken_at_the_clamp():
    # torch clamps var without differentiating the clamp: d/dvar at v = eps
    x, t, var = np.array([1.0, 0.0]), np.array([0.0, 0.0]), np.array([0.0, 1e-3])
    value, g, gv = R.gaussian_nll_loss(x, t, var, eps=0.01, reduction="sum")
    v = 0.01
    assert value == pytest.approx(0.5 * (math.log(v) + 1 / v) + 0.5 * math.log(v), rel=1e-14)
    np.testing.assert_allclose(g, [1 / v, 0.0], rtol=1e-14)
    np.testing.assert_allclose(gv, [0.5 * (1 / v - 1 / v ** 2), 0.5 / v], rtol=1e-14)


def test_gaussian_negative_var_is_an_error():
    with pytest.raises(ValueError, match="var"):
        R.gaussian_nll_loss(np.zeros(2), np.zeros(2), np.array([1.0, -1.0]))


# ------------------------------------------------------------------ values: naive formulas

def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


def _naive(name, params, x, t, extra):
    """The loss per element, as the textbook (or torch/torchvision) writes it; moderate inputs only."""
    d = x - t
    if name == "mse_loss":
        return d ** 2
    if name == "kl_div":  # torch.nn.functional.kl_div: xlogy(t, t) - t x, or exp(t) (t - x)
        if params["log_target"]:
            return np.exp(t) * (t - x)
        return np.where(t > 0, t * np.log(np.where(t > 0, t, 1.0)), 0.0) - t * x
    if name == "l1_loss":
        return np.abs(d)
    if name == "huber_loss":
        k = params["delta"]
        return np.where(np.abs(d) < k, 0.5 * d ** 2, k * (np.abs(d) - 0.5 * k))
    if name == "smooth_l1_loss":
        b = params["beta"]
        if b == 0:
            return np.abs(d)
        return np.where(np.abs(d) < b, 0.5 * d ** 2 / b, np.abs(d) - 0.5 * b)
    if name == "log_cosh_loss":
        return np.log(np.cosh(d))
    if name == "quantile_loss":
        q = params["quantile"]
        return np.maximum(q * (t - x), (q - 1) * (t - x))
    if name == "poisson_nll_loss":
        eps = params.get("eps", 1e-8)
        out = np.exp(x) - t * x if params["log_input"] else x - t * np.log(x + eps)
        if params["full"]:
            with np.errstate(all="ignore"):
                st = t * np.log(t) - t + 0.5 * np.log(2 * np.pi * t)
            out = out + np.where(t > 1, st, 0.0)
        return out
    if name == "gaussian_nll_loss":
        var = np.asarray(extra["var"])
        if var.shape != x.shape and var.shape == x.shape[:-1]:
            var = var[..., None]
        v = np.maximum(np.broadcast_to(var, x.shape), params["eps"])
        return 0.5 * (np.log(v) + d ** 2 / v) + (0.5 * np.log(2 * np.pi) if params["full"] else 0.0)
    if name == "binary_cross_entropy":
        return -(t * np.log(x) + (1 - t) * np.log(1 - x))
    if name == "binary_cross_entropy_with_logits":
        pw = extra.get("pos_weight", 1.0)
        return -(pw * t * np.log(_sig(x)) + (1 - t) * np.log(1 - _sig(x)))
    if name == "sigmoid_focal_loss":  # torchvision.ops.sigmoid_focal_loss, line by line
        p = _sig(x)
        ce = -(t * np.log(p) + (1 - t) * np.log(1 - p))
        p_t = p * t + (1 - p) * (1 - t)
        loss = ce * ((1 - p_t) ** params["gamma"])
        a = params["alpha"]
        if a >= 0:
            loss = (a * t + (1 - a) * (1 - t)) * loss
        return loss
    if name == "hinge_loss":
        return np.maximum(0.0, 1 - t * x)
    if name == "squared_hinge_loss":
        return np.maximum(0.0, 1 - t * x) ** 2
    if name == "soft_margin_loss":
        return np.log(1 + np.exp(-t * x))
    raise AssertionError(name)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_value_matches_naive_formula(case, seed):
    p = _Problem(case, seed, "none", True)
    value = p.call(p.x)[0]
    expect = p.w * _naive(p.name, p.params, p.x, p.t, p.extra)
    np.testing.assert_allclose(value, expect, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_reductions_agree(case):
    p = _Problem(case, 7, "none", True)
    n = p.x.size
    res = {}
    for r in REDUCTIONS:
        p.reduction = r
        res[r] = (p.call(p.x), p.hess(p.x))
    (v_none, g_none, *_), h_none = res["none"]
    (v_sum, g_sum, *_), h_sum = res["sum"]
    (v_mean, g_mean, *_), h_mean = res["mean"]
    assert v_sum == pytest.approx(math.fsum(v_none.ravel()), rel=1e-15, abs=1e-300)
    if p.name in ("mse_loss", "l1_loss"):  # PyTorch's weighted mean: the summed weights divide
        n = math.fsum(np.broadcast_to(p.w, p.x.shape).ravel())
    assert v_mean == pytest.approx(v_sum / n, rel=1e-15, abs=1e-300)
    np.testing.assert_array_equal(g_none, g_sum)
    np.testing.assert_array_equal(h_none, h_sum)
    np.testing.assert_allclose(g_mean, g_sum / n, rtol=1e-15)
    np.testing.assert_allclose(h_mean, h_sum / n, rtol=1e-15)


@pytest.mark.parametrize("name", sorted(R.POINTWISE))
def test_empty_input(name):
    x = np.zeros((0, 3))
    t = -np.ones((0, 3)) if "hinge" in name else np.zeros((0, 3))
    args = (x, t, np.ones((0, 3))) if name == "gaussian_nll_loss" else (x, t)
    ref = R.POINTWISE[name]
    v_mean = ref.fn(*args, reduction="mean")
    v_sum = ref.fn(*args, reduction="sum")
    v_none = ref.fn(*args, reduction="none")
    assert math.isnan(v_mean[0]) and v_sum[0] == 0.0
    assert v_none[0].shape == (0, 3) and v_mean[1].shape == (0, 3)
    assert ref.hess(*args, reduction="mean").shape == (0, 3)


def test_spot_values():
    # hand-computed values, independent of any formula in the module
    assert R.mse_loss([1.0, 2.0], [0.0, 0.0])[0] == 2.5
    assert R.huber_loss([0.0, 3.0], [0.5, 0.0], delta=1.0)[0] == 1.3125
    assert R.quantile_loss([1.0, 3.0], [2.0, 2.0], quantile=0.9)[0] == pytest.approx(0.5, rel=1e-15)
    assert R.hinge_loss([0.5, -2.0], [1.0, 1.0])[0] == 1.75
    assert R.squared_hinge_loss([0.5, -2.0], [1.0, 1.0])[0] == 4.625
    assert R.log_cosh_loss(np.array([1e-5]), np.array([0.0]), reduction="sum")[0] == pytest.approx(
        0.5e-10 - 1e-20 / 12, rel=1e-15)
    assert R.log_cosh_loss(np.array([1000.0]), np.array([0.0]), reduction="sum")[0] == pytest.approx(
        1000 - math.log(2), rel=1e-15)
    v, g = R.binary_cross_entropy(np.array([0.0, 0.0, 1.0, 1.0]), np.array([0.0, 1.0, 0.0, 1.0]), reduction="none")
    np.testing.assert_array_equal(v, [0.0, 100.0, 100.0, 0.0])
    np.testing.assert_array_equal(g, [1.0, 0.0, 0.0, -1.0])
    v, g = R.binary_cross_entropy_with_logits(np.array([np.inf, -np.inf, 1e4, -1e4]), np.array([1.0, 0.0, 0.0, 1.0]),
                                             reduction="none")
    np.testing.assert_array_equal(v, [0.0, 0.0, 1e4, 1e4])
    np.testing.assert_array_equal(g, [0.0, 0.0, 1.0, -1.0])
