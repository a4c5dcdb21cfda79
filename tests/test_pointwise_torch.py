"""Equivalence of fastloss's pointwise losses with PyTorch.

Every loss PyTorch has is compared on value AND gradient: fastloss's
``return_grad=True`` (and the classes' ``value_and_grad``) against torch's
forward and autograd backward, for float32 and float64, every reduction
("none": fastloss's gradient is that of the sum, so torch's backward of
``loss.sum()``), and every weight and option.  The sigmoid focal loss is
compared with torchvision.ops.sigmoid_focal_loss's published formula written
out in torch (torchvision does not import beside this torch).

Tolerances: float64 rtol 1e-10; float32 rtol 2e-5.  The absolute tolerance
is scaled by the magnitude of the terms that make the result (the largest
reference value, or, where a result is a difference of large terms, the
per-element size of those terms), since that is what rounding scales with.
"""

import numpy as np
import pytest

import fastloss as fl

torch = pytest.importorskip("torch")
F = torch.nn.functional
nn = torch.nn

pytestmark = pytest.mark.torch

DTYPES = [np.float32, np.float64]
REDUCTIONS = ["mean", "sum", "none"]
SHAPES = [(7,), (33, 5), (4, 3, 17)]
# rtol, atol relative to the scale of the terms
TOL = {np.float32: (2e-5, 2e-6), np.float64: (1e-10, 1e-12)}

torch.set_num_threads(1)


# ----------------------------------------------------------------- helpers

def _seed(*parts):
    """A deterministic seed from the test's parameters."""
    s = 0
    for p in parts:
        for ch in repr(p):
            s = (s * 131 + ord(ch)) % (2**31 - 1)
    return s


def T(a, grad=False):
    """A torch tensor holding a copy of a NumPy array (dtype kept)."""
    t = torch.from_numpy(np.array(a, copy=True))
    if grad:
        t.requires_grad_(True)
    return t


def torch_vg(loss, *leaves, reduction):
    """(value, grads of leaves): value a float or an array for "none";
    the backward is of the sum for "none"."""
    if reduction == "none":
        value = loss.detach().numpy().copy()
        loss.sum().backward()
    else:
        value = loss.item()
        loss.backward()
    return value, [lf.grad.numpy().copy() for lf in leaves]


def assert_close(actual, expected, dtype, what="", scale=None, rtol=None):
    """|a - e| <= rtol |e| + atol * scale, scale = max |e| unless given
    (a scalar or an array broadcastable to e, e.g. per-element term size)."""
    r, a = TOL[dtype]
    if rtol is not None:
        r = rtol
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != torch's {expected.shape}"
    if scale is None:
        finite = expected[np.isfinite(expected)]
        scale = np.max(np.abs(finite)) if finite.size else 1.0
    scale = np.maximum(np.asarray(scale, dtype=np.float64), np.finfo(dtype).tiny)
    err = np.abs(actual - expected)
    bound = r * np.abs(expected) + a * scale
    bad = ~(err <= bound)
    if np.any(bad):
        idx = np.argwhere(bad)[:5] if actual.ndim else [()]
        detail = "; ".join(
            f"at {tuple(int(v) for v in i)}: fastloss {actual[tuple(i)]!r} torch {expected[tuple(i)]!r}"
            for i in idx)
        raise AssertionError(f"{what}: {int(np.sum(bad))} of {bad.size} differ beyond tolerance "
                             f"(rtol={r}, atol={a}*scale): {detail}")


def check_value(value, expected, dtype, reduction, what, scale=None):
    if reduction == "none":
        assert isinstance(value, np.ndarray) and value.dtype == dtype, f"{what}: value {type(value)}"
    else:
        assert isinstance(value, float), f"{what}: value of type {type(value).__name__}"
    assert_close(value, expected, dtype, what + " value", scale=scale)


def check_grad(grad, expected, dtype, what, scale=None):
    assert isinstance(grad, np.ndarray) and grad.dtype == dtype, f"{what}: grad {type(grad)} {grad.dtype}"
    assert_close(grad, expected, dtype, what + " grad", scale=scale)


def reduce_t(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


# ------------------------------------------------------ data for each loss

def data_regression(rng, shape, dtype):
    x = rng.normal(0.0, 2.0, shape)
    t = rng.normal(0.0, 2.0, shape)
    return x.astype(dtype), t.astype(dtype)


def data_poisson_log(rng, shape, dtype):
    x = np.clip(rng.normal(0.0, 1.5, shape), -6, 4)
    t = rng.poisson(2.0, shape).astype(np.float64)
    flat = t.reshape(-1)
    flat[::5] = rng.uniform(0, 4, flat[::5].shape)  # some non-integer targets, in and out of (0, 1]
    flat[1::7] = 1.0
    return x.astype(dtype), t.astype(dtype)


def data_poisson_lin(rng, shape, dtype):
    x = rng.uniform(0.0, 5.0, shape)
    x.reshape(-1)[::6] = 0.0  # log(0 + eps)
    t = rng.poisson(2.0, shape).astype(np.float64)
    flat = t.reshape(-1)
    flat[::5] = rng.uniform(0, 4, flat[::5].shape)
    return x.astype(dtype), t.astype(dtype)


def data_margin(rng, shape, dtype):
    x = rng.normal(0.0, 2.0, shape)
    t = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    return x.astype(dtype), t.astype(dtype)


def data_margin_soft(rng, shape, dtype):
    x = rng.normal(0.0, 2.0, shape)
    t = rng.uniform(-1.5, 1.5, shape)
    return x.astype(dtype), t.astype(dtype)


# name -> (fastloss function, params, torch function(x, t, reduction), data)
POINTWISE = {
    "mse": (fl.mse_loss, {}, lambda x, t, r: F.mse_loss(x, t, reduction=r), data_regression),
    "l1": (fl.l1_loss, {}, lambda x, t, r: F.l1_loss(x, t, reduction=r), data_regression),
    **{f"huber-{d}": (fl.huber_loss, {"delta": d},
                      (lambda d: lambda x, t, r: F.huber_loss(x, t, reduction=r, delta=d))(d), data_regression)
       for d in (0.5, 1.0, 2.5)},
    **{f"smooth_l1-{b}": (fl.smooth_l1_loss, {"beta": b},
                          (lambda b: lambda x, t, r: F.smooth_l1_loss(x, t, reduction=r, beta=b))(b),
                          data_regression)
       for b in (0.0, 0.5, 1.0, 2.0)},
    **{f"poisson-log{li}-full{fu}": (
        fl.poisson_nll_loss, {"log_input": li, "full": fu},
        (lambda li, fu: lambda x, t, r: F.poisson_nll_loss(x, t, log_input=li, full=fu, reduction=r))(li, fu),
        data_poisson_log if li else data_poisson_lin)
       for li in (True, False) for fu in (False, True)},
    "poisson-lin-eps1e-3": (
        fl.poisson_nll_loss, {"log_input": False, "full": True, "eps": 1e-3},
        lambda x, t, r: F.poisson_nll_loss(x, t, log_input=False, full=True, eps=1e-3, reduction=r),
        data_poisson_lin),
    "soft_margin": (fl.soft_margin_loss, {}, lambda x, t, r: F.soft_margin_loss(x, t, reduction=r), data_margin),
    "soft_margin-soft_t": (fl.soft_margin_loss, {}, lambda x, t, r: F.soft_margin_loss(x, t, reduction=r),
                           data_margin_soft),
}


# the losses whose torch.nn.functional form takes weight= (PyTorch 2.13)
TORCH_WEIGHTED = {"mse": F.mse_loss, "l1": F.l1_loss, "huber": F.huber_loss}


def _fl_call(fn, params, x, t, reduction, **kw):
    return fn(x, t, **params, reduction=reduction, return_grad=True, **kw)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(POINTWISE))
def test_pointwise_vs_torch(name, dtype, reduction):
    fn, params, tfn, data = POINTWISE[name]
    rng = np.random.default_rng(_seed(name, dtype, reduction))
    for shape in SHAPES:
        x, t = data(rng, shape, dtype)
        what = f"{name} {np.dtype(dtype).name} {reduction} {shape}"
        value, grad = _fl_call(fn, params, x, t, reduction)
        xt = T(x, grad=True)
        tv, (tg,) = torch_vg(tfn(xt, T(t), reduction), xt, reduction=reduction)
        check_value(value, tv, dtype, reduction, what)
        check_grad(grad, tg, dtype, what)
        # value-only call agrees with the fused one
        v_only = fn(x, t, **params, reduction=reduction)
        assert_close(v_only, tv, dtype, what + " value-only")


def _weight(kind, rng, shape, dtype):
    if kind == "full":
        w = rng.uniform(0.0, 3.0, shape)
    elif kind == "last":  # (C,), broadcast over leading axes
        w = rng.uniform(0.0, 3.0, shape[-1:])
    elif kind == "lead":  # (N, 1, ...): broadcast over the last axis
        w = rng.uniform(0.0, 3.0, shape[:-1] + (1,))
    else:
        raise AssertionError(kind)
    return w.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(POINTWISE))
def test_pointwise_weighted_vs_torch(name, dtype):
    """fastloss's weight= against PyTorch's own weighted call where PyTorch
    takes a weight (mse_loss, l1_loss and huber_loss: ``F.mse_loss(x, t,
    weight=w)``, the weight expanded to the input's size, which PyTorch
    requires); for the losses whose PyTorch form has no weight (a fastloss
    extension), against torch's unreduced loss times the weight, then
    reduced (the mean divides by the element count)."""
    fn, params, tfn, data = POINTWISE[name]
    own = TORCH_WEIGHTED.get(name.split("-")[0])
    rng = np.random.default_rng(_seed("w", name, dtype))
    for shape in SHAPES[1:]:
        for kind in ("full", "last", "lead"):
            for reduction in REDUCTIONS:
                x, t = data(rng, shape, dtype)
                w = _weight(kind, rng, shape, dtype)
                what = f"{name} weight={kind} {np.dtype(dtype).name} {reduction} {shape}"
                value, grad = _fl_call(fn, params, x, t, reduction, weight=w)
                xt = T(x, grad=True)
                if own is not None:
                    wt = T(np.ascontiguousarray(np.broadcast_to(w, shape)))
                    loss = own(xt, T(t), reduction=reduction, weight=wt, **params)
                else:
                    loss = reduce_t(tfn(xt, T(t), "none") * T(w), reduction)
                tv, (tg,) = torch_vg(loss, xt, reduction=reduction)
                check_value(value, tv, dtype, reduction, what)
                check_grad(grad, tg, dtype, what)


ZERO_DIFF = {
    "l1": (fl.l1_loss, {}, lambda x, t, r: F.l1_loss(x, t, reduction=r)),
    "smooth_l1-0": (fl.smooth_l1_loss, {"beta": 0.0},
                    lambda x, t, r: F.smooth_l1_loss(x, t, reduction=r, beta=0.0)),
    "smooth_l1-1": (fl.smooth_l1_loss, {"beta": 1.0},
                    lambda x, t, r: F.smooth_l1_loss(x, t, reduction=r, beta=1.0)),
    "huber-1": (fl.huber_loss, {"delta": 1.0}, lambda x, t, r: F.huber_loss(x, t, reduction=r, delta=1.0)),
    "mse": (fl.mse_loss, {}, lambda x, t, r: F.mse_loss(x, t, reduction=r)),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(ZERO_DIFF))
def test_exact_zero_difference(name, dtype, reduction):
    """Exact zeros in input - target: torch's sign(0) = 0, so the gradient is 0
    there; also differences exactly at the Huber / smooth-L1 switch point."""
    fn, params, tfn = ZERO_DIFF[name]
    rng = np.random.default_rng(_seed("z", name, dtype, reduction))
    shape = (33, 5)
    x = rng.normal(0, 2, shape).astype(dtype)
    t = rng.normal(0, 2, shape).astype(dtype)
    t.reshape(-1)[::3] = x.reshape(-1)[::3]           # d == 0 exactly
    t.reshape(-1)[1::11] = x.reshape(-1)[1::11] - 1.0  # d == +-1 (the switch point for delta/beta 1)
    t.reshape(-1)[2::13] = x.reshape(-1)[2::13] + 1.0
    x.reshape(-1)[3::17] = 0.0
    t.reshape(-1)[3::17] = -0.0
    d = x.astype(np.float64) - t.astype(np.float64)
    assert np.sum(d == 0) > 10
    what = f"{name} zeros {np.dtype(dtype).name} {reduction}"
    value, grad = _fl_call(fn, params, x, t, reduction)
    xt = T(x, grad=True)
    tv, (tg,) = torch_vg(tfn(xt, T(t), reduction), xt, reduction=reduction)
    check_value(value, tv, dtype, reduction, what)
    check_grad(grad, tg, dtype, what)
    assert np.all(grad[d == 0] == 0), f"{what}: nonzero gradient where input == target"


# ------------------------------------------------------------ gaussian NLL

def _var(kind, rng, shape, small, eps):
    vshape = {"same": shape, "fewer": shape[:-1], "bcast": shape[:-1] + (1,)}[kind]
    v = rng.uniform(0.05, 3.0, vshape)
    if small and v.size:
        flat = v.reshape(-1)
        flat[::3] = 0.0
        flat[1::4] = eps * 0.25
        flat[2::5] = eps  # exactly at the clamp
    return v


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("small", [False, True], ids=["var>eps", "var<=eps"])
@pytest.mark.parametrize("var_kind", ["same", "fewer", "bcast"])
@pytest.mark.parametrize("full", [False, True])
def test_gaussian_nll_vs_torch(full, var_kind, small, dtype, reduction):
    rng = np.random.default_rng(_seed("g", full, var_kind, small, dtype, reduction))
    for eps in (1e-6, 0.1):
        for shape in SHAPES:
            x, t = data_regression(rng, shape, dtype)
            v = _var(var_kind, rng, shape, small, eps).astype(dtype)
            what = f"gaussian_nll full={full} eps={eps} var={var_kind}{v.shape} {np.dtype(dtype).name} " \
                   f"{reduction} {shape}"
            value, g_in, g_var = fl.gaussian_nll_loss(x, t, v, full=full, eps=eps, reduction=reduction,
                                                      return_grad=True)
            xt, vt = T(x, grad=True), T(v, grad=True)
            loss = F.gaussian_nll_loss(xt, T(t), vt, full=full, eps=eps, reduction=reduction)
            tv, (tgx, tgv) = torch_vg(loss, xt, vt, reduction=reduction)
            # scales: the terms each result is made of
            n = x.size if reduction == "mean" else 1
            vb = np.maximum(v.astype(np.float64), np.float64(dtype(eps)))
            if var_kind == "fewer":
                vb = vb[..., None]
            vb = np.broadcast_to(vb, shape)
            d2 = (x.astype(np.float64) - t) ** 2
            terms = 0.5 * (np.abs(np.log(vb)) + d2 / vb + (np.log(2 * np.pi) if full else 0))
            gv_terms = 0.5 * (1 / vb + d2 / vb**2) / n
            if var_kind == "fewer":
                gv_scale = gv_terms.sum(axis=-1)
            elif var_kind == "bcast":
                gv_scale = gv_terms.sum(axis=-1, keepdims=True)
            else:
                gv_scale = gv_terms
            check_value(value, tv, dtype, reduction, what,
                        scale=terms if reduction == "none" else np.sum(terms) / n)
            check_grad(g_in, tgx, dtype, what + " (input)")
            assert g_var.shape == v.shape, f"{what}: grad_var shape {g_var.shape} != var's {v.shape}"
            check_grad(g_var, tgv, dtype, what + " (var)", scale=gv_scale)


# -------------------------------------------------------------------- BCE

def _probs(rng, shape, dtype):
    x = 1.0 / (1.0 + np.exp(-rng.normal(0, 3, shape)))
    flat = x.reshape(-1)
    flat[::9] = 1e-5
    flat[1::11] = 1 - 1e-5
    flat[2::13] = 0.5
    return np.clip(x, 2e-6, 1 - 2e-6).astype(dtype)


def _targets01(kind, rng, shape, dtype):
    if kind == "hard":
        return (rng.random(shape) < 0.5).astype(dtype)
    return rng.uniform(0, 1, shape).astype(dtype)


def _bce_grad_scale(x, t, w, n):
    """Size of the two terms of the BCE gradient, per element."""
    x = x.astype(np.float64)
    t = t.astype(np.float64)
    s = np.abs(t / x) + np.abs((1 - t) / (1 - x))
    if w is not None:
        s = s * np.abs(w.astype(np.float64))
    return s / n


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("targets", ["hard", "soft"])
@pytest.mark.parametrize("wkind", [None, "full", "last", "lead"])
def test_bce_vs_torch(wkind, targets, dtype, reduction):
    """Probabilities strictly inside (1e-6, 1 - 1e-6): there fastloss's
    gradient (exact derivative of the clamped value) equals torch's."""
    rng = np.random.default_rng(_seed("bce", wkind, targets, dtype, reduction))
    for shape in SHAPES:
        x = _probs(rng, shape, dtype)
        assert np.all((x > 1e-6) & (1 - x.astype(np.float64) > 1e-6))
        t = _targets01(targets, rng, shape, dtype)
        w = None if wkind is None else _weight(wkind, rng, shape, dtype)
        what = f"bce weight={wkind} {targets} {np.dtype(dtype).name} {reduction} {shape}"
        value, grad = fl.binary_cross_entropy(x, t, weight=w, reduction=reduction, return_grad=True)
        xt = T(x, grad=True)
        loss = F.binary_cross_entropy(xt, T(t), weight=None if w is None else T(w), reduction=reduction)
        tv, (tg,) = torch_vg(loss, xt, reduction=reduction)
        n = x.size if reduction == "mean" else 1
        check_value(value, tv, dtype, reduction, what)
        check_grad(grad, tg, dtype, what,
                   scale=_bce_grad_scale(x, t, None if w is None else np.broadcast_to(w, shape), n))
        # the class, with the weight given at construction and at the call
        cls = fl.BCELoss(weight=w, reduction=reduction)
        v2, g2 = cls.value_and_grad(x, t)
        assert_close(v2, tv, dtype, what + " BCELoss value")
        assert_close(g2, tg, dtype, what + " BCELoss grad",
                     scale=_bce_grad_scale(x, t, None if w is None else np.broadcast_to(w, shape), n))
        assert_close(cls(x, t), tv, dtype, what + " BCELoss()")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_exact_zero_one_value(weighted, dtype, reduction):
    """Probabilities of exactly 0 and 1 (torch clamps each log at -100):
    values compared; fastloss's gradient there is finite."""
    x = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.5, 1e-30, 1 - 1e-16, 0.25], dtype=dtype)
    t = np.array([0.0, 1.0, 0.3, 0.0, 1.0, 0.7, 1.0, 1.0, 0.0, 0.0], dtype=dtype)
    w = np.linspace(0.5, 2.0, x.size).astype(dtype) if weighted else None
    what = f"bce 0/1 weighted={weighted} {np.dtype(dtype).name} {reduction}"
    tv = F.binary_cross_entropy(T(x), T(t), weight=None if w is None else T(w), reduction=reduction)
    tv = tv.numpy() if reduction == "none" else tv.item()
    check_value(fl.binary_cross_entropy(x, t, weight=w, reduction=reduction), tv, dtype, reduction, what)
    value, grad = fl.binary_cross_entropy(x, t, weight=w, reduction=reduction, return_grad=True)
    check_value(value, tv, dtype, reduction, what + " (fused)")
    assert np.all(np.isfinite(grad)), f"{what}: non-finite gradient {grad}"


# -------------------------------------------------------- BCE with logits

def _pos_weight(kind, rng, shape, dtype):
    if kind is None:
        return None
    if kind == "C":
        return rng.uniform(0.2, 4.0, shape[-1:]).astype(dtype)
    if kind == "one":
        return np.array([2.5], dtype=dtype)
    raise AssertionError(kind)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pkind", [None, "C", "one"])
@pytest.mark.parametrize("wkind", [None, "full", "last"])
def test_bce_with_logits_vs_torch(wkind, pkind, dtype, reduction):
    rng = np.random.default_rng(_seed("bcel", wkind, pkind, dtype, reduction))
    for shape in SHAPES:
        for targets in ("hard", "soft"):
            x = rng.normal(0, 3, shape).astype(dtype)
            t = _targets01(targets, rng, shape, dtype)
            w = None if wkind is None else _weight(wkind, rng, shape, dtype)
            pw = _pos_weight(pkind, rng, shape, dtype)
            what = f"bce_with_logits weight={wkind} pos_weight={pkind} {targets} {np.dtype(dtype).name} " \
                   f"{reduction} {shape}"
            value, grad = fl.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw,
                                                              reduction=reduction, return_grad=True)
            xt = T(x, grad=True)
            loss = F.binary_cross_entropy_with_logits(
                xt, T(t), weight=None if w is None else T(w), pos_weight=None if pw is None else T(pw),
                reduction=reduction)
            tv, (tg,) = torch_vg(loss, xt, reduction=reduction)
            check_value(value, tv, dtype, reduction, what)
            check_grad(grad, tg, dtype, what)
            cls = fl.BCEWithLogitsLoss(weight=w, reduction=reduction, pos_weight=pw)
            v2, g2 = cls.value_and_grad(x, t)
            assert_close(v2, tv, dtype, what + " class value")
            assert_close(g2, tg, dtype, what + " class grad")


# ------------------------------------------------------ sigmoid focal loss

def torch_sigmoid_focal(x, t, alpha, gamma, reduction):
    """torchvision.ops.sigmoid_focal_loss, as published."""
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * t + (1 - alpha) * (1 - t)
        loss = alpha_t * loss
    return reduce_t(loss, reduction)


GAMMAS = [0.0, 0.5, 1.0, 2.0, 3.0]
ALPHAS = [0.25, -1.0]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("gamma", GAMMAS)
def test_sigmoid_focal_vs_torch(gamma, alpha, dtype, reduction):
    """Against the formula in torch.  Logits within +-8, so p_t < 1 and
    torch's autograd is finite for gamma < 1.  In float32, the formula in
    torch loses the small 1 - p_t to cancellation (1 - p for p near 1), so
    the float32 reference is the same formula evaluated in float64 on the
    float32 data; float32 torch is also checked, at a tolerance that
    allows for its own rounding."""
    rng = np.random.default_rng(_seed("focal", gamma, alpha, dtype, reduction))
    for shape in SHAPES:
        for targets in ("hard", "soft"):
            x = np.clip(rng.normal(0, 3, shape), -8, 8).astype(dtype)
            t = _targets01(targets, rng, shape, dtype)
            what = f"sigmoid_focal gamma={gamma} alpha={alpha} {targets} {np.dtype(dtype).name} " \
                   f"{reduction} {shape}"
            value, grad = fl.sigmoid_focal_loss(x, t, alpha, gamma, reduction=reduction, return_grad=True)
            xt = T(x.astype(np.float64), grad=True)
            tv, (tg,) = torch_vg(torch_sigmoid_focal(xt, T(t.astype(np.float64)), alpha, gamma, reduction),
                                 xt, reduction=reduction)
            assert np.all(np.isfinite(tg)), "test data must keep torch's autograd finite"
            if reduction == "none":
                tv = tv.astype(dtype)
            check_value(value, tv, dtype, reduction, what)
            check_grad(grad, tg.astype(dtype), dtype, what)
            cls = fl.SigmoidFocalLoss(alpha=alpha, gamma=gamma, reduction=reduction)
            v2, g2 = cls.value_and_grad(x, t)
            assert_close(v2, tv, dtype, what + " class value")
            assert_close(g2, tg, dtype, what + " class grad")
            if dtype == np.float32:
                x32 = T(x, grad=True)
                tv32, (tg32,) = torch_vg(torch_sigmoid_focal(x32, T(t), alpha, gamma, reduction), x32,
                                         reduction=reduction)
                assert_close(value, tv32, dtype, what + " vs float32 torch value", rtol=1e-3)
                assert_close(grad, tg32, dtype, what + " vs float32 torch grad", rtol=1e-3)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5, 1.0, 2.0])
def test_sigmoid_focal_pt_one(gamma, alpha, dtype):
    """Where p_t is exactly 1 (confident and right), torch's autograd of the
    formula gives NaN for 0 < gamma < 1; fastloss's gradient stays finite
    (and is ~0 there), and agrees with torch wherever torch is finite."""
    x = np.array([60.0, -60.0, 1e4, -1e4, 40.0, -40.0, 30.0, 2.0, -3.0, 0.0], dtype=dtype)
    t = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0], dtype=dtype)
    for reduction in REDUCTIONS:
        what = f"sigmoid_focal p_t=1 gamma={gamma} alpha={alpha} {np.dtype(dtype).name} {reduction}"
        value, grad = fl.sigmoid_focal_loss(x, t, alpha, gamma, reduction=reduction, return_grad=True)
        assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad)), f"{what}: {value} {grad}"
        assert np.all(np.abs(grad[:4]) <= 1e-12), f"{what}: gradient at p_t == 1 is {grad[:4]}"
        xt = T(x.astype(np.float64), grad=True)
        tv, (tg,) = torch_vg(torch_sigmoid_focal(xt, T(t.astype(np.float64)), alpha, gamma, reduction), xt,
                             reduction=reduction)
        assert_close(value, tv, dtype, what + " value")
        ok = np.isfinite(tg)
        if 0 < gamma < 1:
            assert not np.all(ok)  # the point of this test: torch's autograd is NaN here
        assert_close(grad[ok], tg[ok], dtype, what + " grad (where torch is finite)")


# --------------------------------------------------------------- extremes

EXTREME_X = np.array([1e4, -1e4, 1e4, -1e4, 100.0, -100.0, 30.0, -30.0, 17.0, -17.0, 0.0, 1.0, -1.0, 1e4, -1e4])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pos_weight", [False, True])
def test_bce_with_logits_extremes(pos_weight, dtype, reduction):
    x = np.tile(EXTREME_X, 3).astype(dtype).reshape(3, -1)
    t = np.stack([np.tile([1.0, 0.0, 0.0], 5), np.tile([0.0, 1.0, 1.0], 5), np.full(15, 0.5)]).astype(dtype)
    pw = np.linspace(0.5, 3.0, x.shape[-1]).astype(dtype) if pos_weight else None
    what = f"bce_with_logits extremes pos_weight={pos_weight} {np.dtype(dtype).name} {reduction}"
    value, grad = fl.binary_cross_entropy_with_logits(x, t, pos_weight=pw, reduction=reduction,
                                                      return_grad=True)
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad)), what
    xt = T(x, grad=True)
    tv, (tg,) = torch_vg(F.binary_cross_entropy_with_logits(
        xt, T(t), pos_weight=None if pw is None else T(pw), reduction=reduction), xt, reduction=reduction)
    assert np.all(np.isfinite(tv)) and np.all(np.isfinite(tg)), "torch is finite here"
    check_value(value, tv, dtype, reduction, what)
    check_grad(grad, tg, dtype, what)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_soft_margin_extremes(dtype, reduction):
    """torch's soft_margin_loss is log1p(exp(-t x)): inf value and NaN grad
    where -t x is large.  fastloss must be finite everywhere, equal to torch
    where torch is finite and to torch's softplus(-t x) (exact there) elsewhere."""
    x = np.tile(EXTREME_X, 2).astype(dtype)
    t = np.concatenate([np.ones(15), -np.ones(15)]).astype(dtype)
    what = f"soft_margin extremes {np.dtype(dtype).name} {reduction}"
    value, grad = fl.soft_margin_loss(x, t, reduction=reduction, return_grad=True)
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad)), f"{what}: {value} {grad}"
    # torch's own loss, elementwise, where finite
    xt = T(x, grad=True)
    tv, (tg,) = torch_vg(F.soft_margin_loss(xt, T(t), reduction="none"), xt, reduction="none")
    n = x.size if reduction == "mean" else 1
    ok_v, ok_g = np.isfinite(tv), np.isfinite(tg)
    assert not np.all(ok_v)
    lo, g = fl.soft_margin_loss(x, t, reduction="none", return_grad=True)
    assert_close(lo[ok_v], tv[ok_v], dtype, what + " per-element value (torch finite)")
    assert_close(g[ok_g], tg[ok_g], dtype, what + " per-element grad (torch finite)")
    # the stable form, everywhere
    xs = T(x, grad=True)
    sv, (sg,) = torch_vg(reduce_t(F.softplus(-xs * T(t), threshold=20.0), reduction), xs, reduction=reduction)
    check_value(value, sv, dtype, reduction, what + " vs softplus")
    check_grad(grad, sg, dtype, what + " vs softplus")
    assert_close(grad[ok_g], tg[ok_g] / n, dtype, what + " grad (torch finite)")


# ---------------------------------------------------------- nn.Module classes

def _classes():
    c = []
    c.append(("MSELoss", lambda r: fl.MSELoss(reduction=r), lambda r: nn.MSELoss(reduction=r), data_regression))
    c.append(("L1Loss", lambda r: fl.L1Loss(reduction=r), lambda r: nn.L1Loss(reduction=r), data_regression))
    for d in (0.5, 2.5):
        c.append((f"HuberLoss-{d}", (lambda d: lambda r: fl.HuberLoss(delta=d, reduction=r))(d),
                  (lambda d: lambda r: nn.HuberLoss(delta=d, reduction=r))(d), data_regression))
    for b in (0.0, 0.5, 2.0):
        c.append((f"SmoothL1Loss-{b}", (lambda b: lambda r: fl.SmoothL1Loss(beta=b, reduction=r))(b),
                  (lambda b: lambda r: nn.SmoothL1Loss(beta=b, reduction=r))(b), data_regression))
    for li in (True, False):
        c.append((f"PoissonNLLLoss-log{li}",
                  (lambda li: lambda r: fl.PoissonNLLLoss(log_input=li, full=True, eps=1e-4, reduction=r))(li),
                  (lambda li: lambda r: nn.PoissonNLLLoss(log_input=li, full=True, eps=1e-4, reduction=r))(li),
                  data_poisson_log if li else data_poisson_lin))
    c.append(("SoftMarginLoss", lambda r: fl.SoftMarginLoss(reduction=r), lambda r: nn.SoftMarginLoss(reduction=r),
              data_margin))
    return {name: (a, b, d) for name, a, b, d in c}


CLASSES = _classes()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(CLASSES))
def test_classes_vs_torch_modules(name, dtype, reduction):
    mk_fl, mk_nn, data = CLASSES[name]
    rng = np.random.default_rng(_seed("cls", name, dtype, reduction))
    ours, theirs = mk_fl(reduction), mk_nn(reduction)
    for shape in SHAPES:
        x, t = data(rng, shape, dtype)
        what = f"{name} {np.dtype(dtype).name} {reduction} {shape}"
        xt = T(x, grad=True)
        tv, (tg,) = torch_vg(theirs(xt, T(t)), xt, reduction=reduction)
        value, grad = ours.value_and_grad(x, t)
        check_value(value, tv, dtype, reduction, what)
        check_grad(grad, tg, dtype, what)
        assert_close(ours(x, t), tv, dtype, what + " __call__")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("var_kind", ["same", "fewer", "bcast"])
def test_gaussian_class_vs_torch_module(var_kind, dtype, reduction):
    rng = np.random.default_rng(_seed("gcls", var_kind, dtype, reduction))
    ours = fl.GaussianNLLLoss(full=True, eps=1e-3, reduction=reduction)
    theirs = nn.GaussianNLLLoss(full=True, eps=1e-3, reduction=reduction)
    for shape in SHAPES:
        x, t = data_regression(rng, shape, dtype)
        v = _var(var_kind, rng, shape, small=False, eps=1e-3).astype(dtype)
        what = f"GaussianNLLLoss var={var_kind} {np.dtype(dtype).name} {reduction} {shape}"
        xt, vt = T(x, grad=True), T(v, grad=True)
        tv, (tgx, tgv) = torch_vg(theirs(xt, T(t), vt), xt, vt, reduction=reduction)
        value, gx, gv = ours.value_and_grad(x, t, v)
        check_value(value, tv, dtype, reduction, what)
        check_grad(gx, tgx, dtype, what + " (input)")
        check_grad(gv, tgv, dtype, what + " (var)")
        assert_close(ours(x, t, v), tv, dtype, what + " __call__")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_classes_vs_torch_modules(dtype, reduction):
    rng = np.random.default_rng(_seed("bcecls", dtype, reduction))
    shape = (4, 3, 17)
    w = _weight("last", rng, shape, dtype)
    pw = rng.uniform(0.5, 3, shape[-1:]).astype(dtype)
    # BCELoss(weight)
    x = _probs(rng, shape, dtype)
    t = _targets01("soft", rng, shape, dtype)
    xt = T(x, grad=True)
    tv, (tg,) = torch_vg(nn.BCELoss(weight=T(w), reduction=reduction)(xt, T(t)), xt, reduction=reduction)
    value, grad = fl.BCELoss(weight=w, reduction=reduction).value_and_grad(x, t)
    what = f"BCELoss {np.dtype(dtype).name} {reduction}"
    n = x.size if reduction == "mean" else 1
    check_value(value, tv, dtype, reduction, what)
    check_grad(grad, tg, dtype, what, scale=_bce_grad_scale(x, t, np.broadcast_to(w, shape), n))
    # BCEWithLogitsLoss(weight, pos_weight)
    x = rng.normal(0, 3, shape).astype(dtype)
    t = _targets01("hard", rng, shape, dtype)
    xt = T(x, grad=True)
    tv, (tg,) = torch_vg(nn.BCEWithLogitsLoss(weight=T(w), reduction=reduction, pos_weight=T(pw))(xt, T(t)), xt,
                         reduction=reduction)
    value, grad = fl.BCEWithLogitsLoss(weight=w, reduction=reduction, pos_weight=pw).value_and_grad(x, t)
    what = f"BCEWithLogitsLoss {np.dtype(dtype).name} {reduction}"
    check_value(value, tv, dtype, reduction, what)
    check_grad(grad, tg, dtype, what)


# --------------------------------------------------------------- large input

LARGE = ["mse", "l1", "huber-1.0", "smooth_l1-0.5", "poisson-logTrue-fullTrue", "poisson-logFalse-fullFalse",
         "soft_margin"]


@pytest.mark.parametrize("parallel", [False, True], ids=["default", "parallel"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", LARGE + ["bce", "bce_with_logits", "gaussian", "focal"])
def test_large_vs_torch(name, dtype, parallel, request):
    """50_000 elements (reduction "mean" and "none"); with parallel, every
    call takes the threaded path."""
    if parallel:
        request.getfixturevalue("parallel_always")
    rng = np.random.default_rng(_seed("large", name, dtype))
    shape = (50_000,)
    for reduction in ("mean", "none"):
        what = f"{name} large {np.dtype(dtype).name} {reduction} parallel={parallel}"
        scale = None
        if name in POINTWISE:
            fn, params, tfn, data = POINTWISE[name]
            x, t = data(rng, shape, dtype)
            value, grad = _fl_call(fn, params, x, t, reduction)
            xt = T(x, grad=True)
            loss = tfn(xt, T(t), reduction)
        elif name == "bce":
            x = _probs(rng, shape, dtype)
            t = _targets01("soft", rng, shape, dtype)
            w = _weight("full", rng, shape, dtype)
            value, grad = fl.binary_cross_entropy(x, t, weight=w, reduction=reduction, return_grad=True)
            xt = T(x, grad=True)
            loss = F.binary_cross_entropy(xt, T(t), weight=T(w), reduction=reduction)
            scale = _bce_grad_scale(x, t, w, x.size if reduction == "mean" else 1)
        elif name == "bce_with_logits":
            x = rng.normal(0, 3, (10_000, 5)).astype(dtype)
            t = _targets01("hard", rng, x.shape, dtype)
            pw = rng.uniform(0.5, 3, (5,)).astype(dtype)
            value, grad = fl.binary_cross_entropy_with_logits(x, t, pos_weight=pw, reduction=reduction,
                                                              return_grad=True)
            xt = T(x, grad=True)
            loss = F.binary_cross_entropy_with_logits(xt, T(t), pos_weight=T(pw), reduction=reduction)
        elif name == "gaussian":
            x, t = data_regression(rng, (10_000, 5), dtype)
            v = rng.uniform(0.1, 3, (10_000,)).astype(dtype)
            value, grad, gv = fl.gaussian_nll_loss(x, t, v, reduction=reduction, return_grad=True)
            xt, vt = T(x, grad=True), T(v, grad=True)
            tv, (tg, tgv) = torch_vg(F.gaussian_nll_loss(xt, T(t), vt, reduction=reduction), xt, vt,
                                     reduction=reduction)
            check_value(value, tv, dtype, reduction, what)
            check_grad(grad, tg, dtype, what)
            check_grad(gv, tgv, dtype, what + " (var)")
            continue
        else:  # focal, against the float64 formula (see test_sigmoid_focal_vs_torch)
            x = np.clip(rng.normal(0, 3, shape), -8, 8).astype(dtype)
            t = _targets01("soft", rng, shape, dtype)
            value, grad = fl.sigmoid_focal_loss(x, t, 0.25, 2.0, reduction=reduction, return_grad=True)
            xt = T(x.astype(np.float64), grad=True)
            tv, (tg,) = torch_vg(torch_sigmoid_focal(xt, T(t.astype(np.float64)), 0.25, 2.0, reduction), xt,
                                 reduction=reduction)
            check_value(value, tv.astype(dtype) if reduction == "none" else tv, dtype, reduction, what)
            check_grad(grad, tg.astype(dtype), dtype, what)
            continue
        tv, (tg,) = torch_vg(loss, xt, reduction=reduction)
        check_value(value, tv, dtype, reduction, what)
        check_grad(grad, tg, dtype, what, scale=scale)


# ------------------------------------------------- fastloss.reference vs torch

def _ref(name):
    try:
        from fastloss import reference
    except ImportError:
        pytest.skip("fastloss.reference is not importable")
    fn = getattr(reference, name, None)
    if fn is None:
        pytest.skip(f"fastloss.reference.{name} is not written yet")
    return fn


# (reference name, params, torch function, data)
REF_CASES = {
    "mse": ("mse_loss", {}, POINTWISE["mse"][2], data_regression),
    "l1": ("l1_loss", {}, POINTWISE["l1"][2], data_regression),
    "huber-2.5": ("huber_loss", {"delta": 2.5}, POINTWISE["huber-2.5"][2], data_regression),
    "smooth_l1-0.5": ("smooth_l1_loss", {"beta": 0.5}, POINTWISE["smooth_l1-0.5"][2], data_regression),
    "smooth_l1-0": ("smooth_l1_loss", {"beta": 0.0}, POINTWISE["smooth_l1-0.0"][2], data_regression),
    **{f"poisson-log{li}-full{fu}": ("poisson_nll_loss", {"log_input": li, "full": fu},
                                     POINTWISE[f"poisson-log{li}-full{fu}"][2],
                                     data_poisson_log if li else data_poisson_lin)
       for li in (True, False) for fu in (False, True)},
    "soft_margin": ("soft_margin_loss", {}, POINTWISE["soft_margin"][2], data_margin),
    "kl": ("kl_div", {}, lambda x, t, r: F.kl_div(x, t, reduction=r), lambda rng, shape, dtype: data_kl(
        rng, shape, dtype, False)),
    "kl-log_target": ("kl_div", {"log_target": True}, lambda x, t, r: F.kl_div(x, t, reduction=r, log_target=True),
                      lambda rng, shape, dtype: data_kl(rng, shape, dtype, True)),
}


def data_kl(rng, shape, dtype, log_target):
    x = np.log(rng.uniform(0.05, 1.0, shape))
    t = rng.uniform(0.0, 1.0, shape)
    t = np.where(rng.random(shape) < 0.2, 0.0, t)
    if log_target:
        t = np.log(rng.uniform(0.05, 1.0, shape))
    return x.astype(dtype), t.astype(dtype)


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")
@pytest.mark.parametrize("name", list(REF_CASES))
def test_reference_vs_torch(name):
    refname, params, tfn, data = REF_CASES[name]
    ref = _ref(refname)
    rng = np.random.default_rng(_seed("ref", name))
    for shape in SHAPES:
        for reduction in REDUCTIONS:
            for weighted in (False, True):
                x, t = data(rng, shape, np.float64)
                w = rng.uniform(0, 3, shape) if weighted else None
                what = f"reference.{refname} {params} weighted={weighted} {reduction} {shape}"
                value, grad = ref(x, t, **params, weight=w, reduction=reduction)[:2]
                xt = T(x, grad=True)
                own = TORCH_WEIGHTED.get(name.split("-")[0])
                if w is None:
                    loss = tfn(xt, T(t), reduction)
                elif own is not None:  # PyTorch's own weighted call
                    loss = own(xt, T(t), reduction=reduction, weight=T(w), **params)
                else:
                    loss = reduce_t(tfn(xt, T(t), "none") * T(w), reduction)
                tv, (tg,) = torch_vg(loss, xt, reduction=reduction)
                assert_close(value, tv, np.float64, what + " value")
                assert_close(grad, tg, np.float64, what + " grad")


@pytest.mark.parametrize("var_kind", ["same", "fewer", "bcast"])
def test_reference_gaussian_vs_torch(var_kind):
    ref = _ref("gaussian_nll_loss")
    rng = np.random.default_rng(_seed("refg", var_kind))
    for shape in SHAPES:
        for reduction in REDUCTIONS:
            for full, eps in ((False, 1e-6), (True, 0.1)):
                x, t = data_regression(rng, shape, np.float64)
                v = _var(var_kind, rng, shape, True, eps)
                what = f"reference.gaussian_nll_loss full={full} eps={eps} var={var_kind} {reduction} {shape}"
                res = ref(x, t, v, full=full, eps=eps, reduction=reduction)
                xt, vt = T(x, grad=True), T(v, grad=True)
                tv, (tgx, tgv) = torch_vg(F.gaussian_nll_loss(xt, T(t), vt, full=full, eps=eps,
                                                              reduction=reduction), xt, vt, reduction=reduction)
                assert_close(res[0], tv, np.float64, what + " value")
                assert_close(res[1], tgx, np.float64, what + " grad")
                if len(res) > 2:
                    assert_close(res[2], tgv, np.float64, what + " grad_var", rtol=1e-9)


@pytest.mark.parametrize("weighted", [False, True])
def test_reference_bce_vs_torch(weighted):
    ref = _ref("binary_cross_entropy")
    rng = np.random.default_rng(_seed("refbce", weighted))
    for shape in SHAPES:
        for reduction in REDUCTIONS:
            x = _probs(rng, shape, np.float64)
            t = _targets01("soft", rng, shape, np.float64)
            w = _weight("last", rng, shape, np.float64) if weighted else None
            what = f"reference.binary_cross_entropy weighted={weighted} {reduction} {shape}"
            value, grad = ref(x, t, weight=w, reduction=reduction)[:2]
            xt = T(x, grad=True)
            tv, (tg,) = torch_vg(F.binary_cross_entropy(xt, T(t), weight=None if w is None else T(w),
                                                        reduction=reduction), xt, reduction=reduction)
            n = x.size if reduction == "mean" else 1
            assert_close(value, tv, np.float64, what + " value")
            assert_close(grad, tg, np.float64, what + " grad",
                         scale=_bce_grad_scale(x, t, None if w is None else np.broadcast_to(w, shape), n))


@pytest.mark.parametrize("pkind", [None, "C", "one"])
def test_reference_bce_with_logits_vs_torch(pkind):
    ref = _ref("binary_cross_entropy_with_logits")
    rng = np.random.default_rng(_seed("refbcel", pkind))
    for shape in SHAPES:
        for reduction in REDUCTIONS:
            x = np.concatenate([rng.normal(0, 3, shape).reshape(-1)[:-4], [1e4, -1e4, 50.0, -50.0]]).reshape(shape)
            t = _targets01("soft", rng, shape, np.float64)
            w = _weight("full", rng, shape, np.float64)
            pw = _pos_weight(pkind, rng, shape, np.float64)
            what = f"reference.binary_cross_entropy_with_logits pos_weight={pkind} {reduction} {shape}"
            value, grad = ref(x, t, weight=w, pos_weight=pw, reduction=reduction)[:2]
            xt = T(x, grad=True)
            tv, (tg,) = torch_vg(F.binary_cross_entropy_with_logits(
                xt, T(t), weight=T(w), pos_weight=None if pw is None else T(pw), reduction=reduction),
                xt, reduction=reduction)
            assert_close(value, tv, np.float64, what + " value")
            assert_close(grad, tg, np.float64, what + " grad")


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("gamma", GAMMAS)
def test_reference_sigmoid_focal_vs_torch(gamma, alpha):
    ref = _ref("sigmoid_focal_loss")
    rng = np.random.default_rng(_seed("reffocal", gamma, alpha))
    for shape in SHAPES:
        for reduction in REDUCTIONS:
            x = np.clip(rng.normal(0, 3, shape), -8, 8)
            t = _targets01("soft", rng, shape, np.float64)
            what = f"reference.sigmoid_focal_loss gamma={gamma} alpha={alpha} {reduction} {shape}"
            value, grad = ref(x, t, alpha=alpha, gamma=gamma, reduction=reduction)[:2]
            xt = T(x, grad=True)
            tv, (tg,) = torch_vg(torch_sigmoid_focal(xt, T(t), alpha, gamma, reduction), xt, reduction=reduction)
            assert_close(value, tv, np.float64, what + " value")
            assert_close(grad, tg, np.float64, what + " grad")
