"""The generative and RL objectives (issue 14): kernels against the NumPy
reference, the reference's gradients against finite differences, the
kernels against the published formulas written in torch ops (PyTorch has
none of these losses, so the tests write them from the papers), extremes,
thread-count bit identity, and every error message."""
import math

import numpy as np
import pytest

import fastloss as fl
from fastloss import reference as R
from _close import F32_TOL, F64_TOL, _close, _tol  # noqa: F401  (tests/_close.py)
from _numdiff import central_diff  # tests/_numdiff.py (pytest puts tests/ on sys.path)

GAN_KINDS = ["minimax", "nonsaturating", "least_squares", "wasserstein", "hinge"]


_fd = central_diff


def _check_fd(ref, arrays, n_grad, kw, rtol=1e-6, atol=1e-8):
    res = ref(*arrays, **kw)
    red = kw.get("reduction")

    def scalar(*a):
        v = ref(*a, **kw)[0]
        return float(np.sum(v)) if red == "none" else v

    for k in range(n_grad):
        np.testing.assert_allclose(res[1 + k], _fd(scalar, [a.copy() for a in arrays], k), rtol=rtol, atol=atol,
                                   err_msg=f"{ref.__name__} grad {k} {kw}")


def _rng():
    return np.random.default_rng(14)


# ------------------------------------------------------------------ kernels vs reference

@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_gaussian_kl_vs_reference(dt, reduction, weighted):
    rng = _rng()
    mu = rng.normal(0, 1.5, (37, 9)).astype(dt)
    lv = rng.uniform(-3, 3, (37, 9)).astype(dt)
    lv[0, :5] = [1e-9, -1e-7, 0.3, -0.49, 0.51]     # the series and its switch
    w = rng.uniform(0.5, 2, (37, 1)).astype(dt) if weighted else None
    got = fl.gaussian_kl_loss(mu, lv, weight=w, reduction=reduction, return_grad=True)
    assert got[1].dtype == dt and got[2].dtype == dt
    _close(got, R.gaussian_kl_loss(mu, lv, w, reduction), dt, reduction)
    v = fl.gaussian_kl_loss(mu, lv, weight=w, reduction=reduction)
    np.testing.assert_array_equal(v, got[0])


def test_gaussian_kl_small_logvar_is_accurate():
    # exp(lv) - 1 - lv cancels for small lv: the kernel keeps its digits
    lv = np.array([[1e-8, -3e-5, 2e-3, -0.2]])
    mu = np.zeros_like(lv)
    got = fl.gaussian_kl_loss(mu.T, lv.T, reduction="none")
    want = np.array([0.5 * float(sum(x ** k / math.factorial(k) for k in range(2, 30))) for x in lv[0]])
    np.testing.assert_allclose(got, want, rtol=2e-16 * 8)


@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_gaussian_kl_extremes_finite(dt):
    lv = np.linspace(-200, 88, 64).astype(dt)[None, :]
    mu = np.zeros_like(lv)
    v, gm, gl = fl.gaussian_kl_loss(mu, lv, return_grad=True)
    assert math.isfinite(v) and np.isfinite(gl).all() and np.isfinite(gm).all()
    ref = R.gaussian_kl_loss(mu.astype(np.float64), lv.astype(np.float64))
    np.testing.assert_allclose(v, ref[0], rtol=1e-5 if dt == np.float32 else 1e-12)
    # where torch.distributions gives inf or NaN (float32)
    torch = pytest.importorskip("torch")
    from torch.distributions import Normal, kl_divergence
    t = torch.tensor(np.float32([-200.0, 88.0]))
    kl = kl_divergence(Normal(torch.zeros(2), torch.exp(0.5 * t)), Normal(torch.zeros(2), torch.ones(2)))
    assert not torch.isfinite(kl).all()
    v2 = fl.gaussian_kl_loss(np.zeros((2, 1), np.float32), np.float32([[-200.0], [88.0]]), reduction="none")
    assert np.isfinite(v2).all()


@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("recon", ["bce", "mse"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_vae_vs_reference(dt, recon, reduction):
    rng = _rng()
    x = rng.normal(0, 2, (11, 20)).astype(dt)
    t = rng.uniform(0, 1, (11, 20)).astype(dt)
    mu = rng.normal(0, 1, (11, 4)).astype(dt)
    lv = rng.normal(0, 1, (11, 4)).astype(dt)
    w = rng.uniform(0.5, 2, 11).astype(dt)
    got = fl.vae_loss(x, t, mu, lv, beta=0.7, recon=recon, reduction=reduction, return_grad=True)
    _close(got, R.vae_loss(x, t, mu, lv, beta=0.7, recon=recon, reduction=reduction), dt)
    assert got[0] == pytest.approx(fl.vae_loss(x, t, mu, lv, 0.7, recon, reduction=reduction), rel=1e-15)
    got = fl.vae_loss(x, t, mu, lv, beta=0.7, recon=recon, weight=w, reduction=reduction, return_grad=True)
    _close(got, R.vae_loss(x, t, mu, lv, beta=0.7, recon=recon, weight=w, reduction=reduction), dt)


@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("kind", GAN_KINDS)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_gan_discriminator_vs_reference(dt, kind, reduction):
    rng = _rng()
    xr = rng.normal(0, 3, 23).astype(dt)
    xf = rng.normal(0, 3, (4, 5)).astype(dt)     # other length and shape
    s = 0.1 if kind in ("minimax", "nonsaturating") else 0.0
    kw = dict(kind=kind, label_smoothing=s, real_target=0.9, fake_target=-0.2, reduction=reduction)
    got = fl.gan_discriminator_loss(xr, xf, **kw, return_grad=True)
    _close(got, R.gan_discriminator_loss(xr, xf, **kw), dt, kind)
    wr, wf = rng.uniform(0.5, 2, 23).astype(dt), rng.uniform(0.5, 2, 5).astype(dt)
    got = fl.gan_discriminator_loss(xr, xf, **kw, real_weight=wr, fake_weight=wf, return_grad=True)
    _close(got, R.gan_discriminator_loss(xr, xf, **kw, real_weight=wr, fake_weight=wf), dt, kind)


@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("kind", GAN_KINDS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gan_generator_vs_reference(dt, kind, reduction):
    x = _rng().normal(0, 3, (6, 7)).astype(dt)
    w = _rng().uniform(0.5, 2, 7).astype(dt)
    got = fl.gan_generator_loss(x, kind, 0.8, weight=w, reduction=reduction, return_grad=True)
    _close(got, R.gan_generator_loss(x, kind, 0.8, w, reduction), dt, kind)


@pytest.mark.parametrize("kind", GAN_KINDS)
def test_gan_extreme_logits(kind):
    x = np.array([-1e4, -50.0, 50.0, 1e4])
    v, gr, gf = fl.gan_discriminator_loss(x, x, kind, return_grad=True)
    assert math.isfinite(v) and np.isfinite(gr).all() and np.isfinite(gf).all()
    _close((v, gr, gf), R.gan_discriminator_loss(x, x, kind), np.float64)
    v, g = fl.gan_generator_loss(x, kind, return_grad=True)
    assert math.isfinite(v) and np.isfinite(g).all()
    # tiny losses keep their digits: softplus(-50) = 1.9e-22
    if kind == "nonsaturating":
        assert fl.gan_generator_loss(np.array([50.0]), kind) == pytest.approx(math.log1p(math.exp(-50)), rel=1e-15)


@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["wgan-gp", "r1"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(9, 5), (4, 2, 3, 3), (7,)])
def test_gradient_penalty_vs_reference(dt, kind, reduction, shape):
    g = _rng().normal(0, 1, shape).astype(dt)
    got = fl.gradient_penalty(g, 1.5, kind, reduction=reduction, return_grad=True)
    assert got[1].shape == g.shape
    _close(got, R.gradient_penalty(g, 1.5, kind, reduction=reduction), dt)
    w = _rng().uniform(0.5, 2, shape[0]).astype(dt)
    got = fl.gradient_penalty(g, 1.5, kind, weight=w, reduction=reduction, return_grad=True)
    _close(got, R.gradient_penalty(g, 1.5, kind, w, reduction), dt)


def test_gradient_penalty_zero_row_has_zero_gradient():
    g = np.zeros((2, 3))
    v, gg = fl.gradient_penalty(g, return_grad=True)
    assert v == 1.0 and (gg == 0).all()


@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_policy_gradient_vs_reference(dt, reduction):
    rng = _rng()
    lp = np.log(rng.uniform(0.01, 1, 50)).astype(dt)
    a = rng.normal(0, 1, 50).astype(dt)
    _close(fl.policy_gradient_loss(lp, a, reduction=reduction, return_grad=True),
           R.policy_gradient_loss(lp, a, reduction=reduction), dt)
    w = rng.uniform(0.5, 2, 50).astype(dt)
    _close(fl.policy_gradient_loss(lp, a, weight=w, reduction=reduction, return_grad=True),
           R.policy_gradient_loss(lp, a, w, reduction), dt)


@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("dual_clip", [None, 3.0])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_ppo_vs_reference(dt, dual_clip, reduction):
    rng = _rng()
    old = np.log(rng.uniform(0.05, 1, 300)).astype(dt)
    lp = (old + rng.normal(0, 0.8, 300)).astype(dt)
    a = rng.normal(0, 2, 300).astype(dt)
    st = {}
    got = fl.ppo_clip_loss(lp, old, a, 0.2, dual_clip, reduction=reduction, stats=st, return_grad=True)
    _close(got, R.ppo_clip_loss(lp, old, a, 0.2, dual_clip, reduction=reduction), dt)
    w = rng.uniform(0.5, 2, 300).astype(dt)
    _close(fl.ppo_clip_loss(lp, old, a, 0.2, dual_clip, weight=w, reduction=reduction, return_grad=True),
           R.ppo_clip_loss(lp, old, a, 0.2, dual_clip, w, reduction), dt)
    r = np.exp(lp.astype(np.float64) - old)
    assert st["clip_fraction"] == pytest.approx(np.mean(np.abs(r - 1) > 0.2), abs=1 / 300 if dt == np.float32 else 0)
    # the kernel's own pass: float32 data in float lanes (to float32's precision)
    assert st["approx_kl"] == pytest.approx(np.mean((r - 1) - np.log(r)), rel=1e-12 if dt == np.float64 else 2e-6)
    if dual_clip:   # some elements are dual-clipped
        assert np.any((a < 0) & (np.minimum(r * a, np.clip(r, 0.8, 1.2) * a) < dual_clip * a))


def test_ppo_ratio_stable_for_tiny_probabilities():
    # log-probabilities of -800: the probabilities underflow, their ratio does not
    lp, old, a = np.array([-800.0]), np.array([-800.1]), np.array([1.0])
    v, g = fl.ppo_clip_loss(lp, old, a, return_grad=True)
    assert v == pytest.approx(-math.exp(0.1)) and g[0] == pytest.approx(-math.exp(0.1))


@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["mse", "huber"])
@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_value_loss_vs_reference(dt, kind, clip, reduction):
    rng = _rng()
    v = rng.normal(0, 2, 200).astype(dt)
    ret = rng.normal(0, 2, 200).astype(dt)
    old = (v + rng.normal(0, 0.5, 200)).astype(dt) if clip else None
    eps = 0.3 if clip else None
    w = rng.uniform(0.5, 2, 200).astype(dt)
    got = fl.value_loss(v, ret, old, eps, kind, 1.5, weight=w, reduction=reduction, return_grad=True)
    _close(got, R.value_loss(v, ret, old, eps, kind, 1.5, w, reduction), dt)


@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["mse", "huber"])
def test_td_loss_vs_reference(dt, kind):
    rng = _rng()
    v, r, nv = (rng.normal(0, 2, 64).astype(dt) for _ in range(3))
    d = (rng.random(64) < 0.2).astype(dt)
    got = fl.td_loss(v, r, nv, d, 0.9, kind, return_grad=True)
    _close(got, R.td_loss(v, r, nv, d, 0.9, kind), dt)


# ------------------------------------------------------------------ reference vs finite differences

@pytest.mark.parametrize("reduction", ["sum", "mean", "none"])
def test_reference_kl_fd(reduction):
    rng = _rng()
    _check_fd(R.gaussian_kl_loss, [rng.normal(0, 1, (3, 4)), rng.normal(0, 1, (3, 4))], 2,
              dict(weight=rng.uniform(0.5, 2, (3, 1)), reduction=reduction))


@pytest.mark.parametrize("recon", ["bce", "mse"])
def test_reference_vae_fd(recon):
    rng = _rng()
    arrays = [rng.normal(0, 1, (3, 5)), rng.uniform(0, 1, (3, 5)), rng.normal(0, 1, (3, 2)), rng.normal(0, 1, (3, 2))]
    res = R.vae_loss(*arrays, beta=0.5, recon=recon)
    for k, slot in ((0, 1), (2, 2), (3, 3)):
        np.testing.assert_allclose(res[slot], _fd(lambda *a: R.vae_loss(*a, beta=0.5, recon=recon)[0],
                                                  [a.copy() for a in arrays], k), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kind", GAN_KINDS)
def test_reference_gan_fd(kind):
    rng = _rng()
    xr, xf = rng.normal(0, 2, 6), rng.normal(0, 2, 4)
    xr[np.abs(np.abs(xr) - 1) < 0.05] += 0.2   # away from the hinge's kinks
    xf[np.abs(np.abs(xf) - 1) < 0.05] += 0.2
    s = 0.2 if kind in ("minimax", "nonsaturating") else 0.0
    _check_fd(R.gan_discriminator_loss, [xr, xf], 2, dict(kind=kind, label_smoothing=s, reduction="mean"))
    _check_fd(R.gan_generator_loss, [xf], 1, dict(kind=kind, gen_target=0.5, reduction="sum"))


@pytest.mark.parametrize("kind", ["wgan-gp", "r1"])
def test_reference_gp_fd(kind):
    _check_fd(R.gradient_penalty, [_rng().normal(0, 1, (4, 2, 3))], 1, dict(kind=kind, target_norm=1.0,
                                                                              reduction="mean"))


def test_reference_rl_fd():
    rng = _rng()
    lp, old, a = rng.normal(-1, 0.3, 20), rng.normal(-1, 0.3, 20), rng.normal(0, 1, 20)
    r = np.exp(lp - old)
    keep = (np.abs(r - 0.8) > 0.01) & (np.abs(r - 1.2) > 0.01)   # away from the clip's kinks
    lp, old, a = lp[keep], old[keep], a[keep]
    _check_fd(R.policy_gradient_loss, [lp, a], 1, dict(reduction="mean"))
    _check_fd(R.ppo_clip_loss, [lp, old, a], 1, dict(clip_eps=0.2, dual_clip=2.0, reduction="mean"))
    v, ret = rng.normal(0, 2, 20), rng.normal(0, 2, 20)
    old_v = v + rng.normal(0, 0.5, 20)
    keep = np.abs(np.abs(v - old_v) - 0.3) > 0.01
    v, ret, old_v = v[keep], ret[keep], old_v[keep]
    for kind in ("mse", "huber"):
        _check_fd(R.value_loss, [v, ret, old_v], 1, dict(clip_eps=0.3, kind=kind, reduction="sum"))
    _check_fd(R.td_loss, [v, ret, old_v, (ret > 0).astype(float)], 1, dict(gamma=0.9, kind="huber"))


# ------------------------------------------------------------------ the formulas in torch ops
# PyTorch has none of these losses: the tests write the papers' formulas in
# torch ops and let autograd differentiate them.

def _t(a):
    torch = pytest.importorskip("torch")
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


def test_torch_formulas_vae_and_kl():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = _rng()
    x, t = rng.normal(0, 2, (8, 12)), rng.uniform(0, 1, (8, 12))
    mu, lv = rng.normal(0, 1, (8, 3)), rng.normal(0, 1, (8, 3))
    tx, tmu, tlv = _t(x), _t(mu), _t(lv)
    kl = -0.5 * torch.sum(1 + tlv - tmu.pow(2) - tlv.exp())            # Kingma and Welling, app. B
    loss = (F.binary_cross_entropy_with_logits(tx, torch.tensor(t), reduction="sum") + 0.3 * kl) / 8
    loss.backward(retain_graph=True)
    got = fl.vae_loss(x, t, mu, lv, beta=0.3, return_grad=True)
    want = (loss.item(), tx.grad.numpy(), tmu.grad.numpy(), tlv.grad.numpy())
    _close(got, want, np.float64)
    v, gm, gl = fl.gaussian_kl_loss(mu, lv, return_grad=True)
    tmu.grad = tlv.grad = None
    (kl / 8).backward()
    _close((v, gm, gl), (kl.item() / 8, tmu.grad.numpy(), tlv.grad.numpy()), np.float64)


@pytest.mark.parametrize("kind", GAN_KINDS)
def test_torch_formulas_gan(kind):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = _rng()
    xr, xf = rng.normal(0, 3, 10), rng.normal(0, 3, 7)
    tr, tf = _t(xr), _t(xf)
    if kind in ("minimax", "nonsaturating"):   # TF-GAN's modified/minimax losses, one-sided smoothing 0.1
        d = F.binary_cross_entropy_with_logits(tr, torch.full_like(tr, 0.9)) + \
            F.binary_cross_entropy_with_logits(tf, torch.zeros_like(tf))
        g = -F.softplus(tf).mean() if kind == "minimax" else F.binary_cross_entropy_with_logits(tf, torch.ones_like(tf))
        s = 0.1
    elif kind == "least_squares":
        d = 0.5 * ((tr - 1) ** 2).mean() + 0.5 * (tf ** 2).mean()
        g = 0.5 * ((tf - 1) ** 2).mean()
        s = 0.0
    elif kind == "wasserstein":
        d = tf.mean() - tr.mean()
        g = -tf.mean()
        s = 0.0
    else:
        d = F.relu(1 - tr).mean() + F.relu(1 + tf).mean()
        g = -tf.mean()
        s = 0.0
    d.backward()
    _close(fl.gan_discriminator_loss(xr, xf, kind, s, return_grad=True),
           (d.item(), tr.grad.numpy(), tf.grad.numpy()), np.float64, kind)
    tf.grad = None
    g.backward()
    _close(fl.gan_generator_loss(xf, kind, return_grad=True), (g.item(), tf.grad.numpy()), np.float64, kind)


@pytest.mark.parametrize("kind", ["wgan-gp", "r1"])
def test_torch_formulas_gradient_penalty(kind):
    torch = pytest.importorskip("torch")
    g = _rng().normal(0, 1, (6, 2, 4))
    tg = _t(g)
    n = tg.reshape(6, -1).norm(2, dim=1)
    loss = ((n - 1) ** 2).mean() if kind == "wgan-gp" else (n ** 2).mean()
    loss.backward()
    _close(fl.gradient_penalty(g, kind=kind, return_grad=True), (loss.item(), tg.grad.numpy()), np.float64)


def test_torch_formulas_rl():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = _rng()
    lp, old, a = rng.normal(-1, 0.4, 40), rng.normal(-1, 0.4, 40), rng.normal(0, 1, 40)
    t = _t(lp)
    loss = -(t * torch.tensor(a)).mean()
    loss.backward()
    _close(fl.policy_gradient_loss(lp, a, return_grad=True), (loss.item(), t.grad.numpy()), np.float64)
    # PPO as CleanRL writes it (pg_loss = max(-A r, -A clip(r)).mean()), dual clip as Ye et al.
    for dual in (None, 1.5):
        t = _t(lp)
        ratio = (t - torch.tensor(old)).exp()
        A = torch.tensor(a)
        obj = torch.min(ratio * A, torch.clamp(ratio, 0.8, 1.2) * A)
        if dual:
            obj = torch.where(A < 0, torch.max(obj, dual * A), obj)
        loss = -obj.mean()
        loss.backward()
        _close(fl.ppo_clip_loss(lp, old, a, 0.2, dual, return_grad=True), (loss.item(), t.grad.numpy()),
               np.float64, f"dual={dual}")
    # the value loss as OpenAI baselines' ppo2 / CleanRL
    v, ret = rng.normal(0, 2, 40), rng.normal(0, 2, 40)
    vo = v + rng.normal(0, 0.5, 40)
    t = _t(v)
    vc = torch.tensor(vo) + torch.clamp(t - torch.tensor(vo), -0.2, 0.2)
    loss = 0.5 * torch.max((t - torch.tensor(ret)) ** 2, (vc - torch.tensor(ret)) ** 2).mean()
    loss.backward()
    _close(fl.value_loss(v, ret, vo, 0.2, return_grad=True), (loss.item(), t.grad.numpy()), np.float64)
    # TD(0) with Huber (DQN: smooth_l1 against a detached target)
    r, nv, d = rng.normal(0, 1, 40), rng.normal(0, 1, 40), (rng.random(40) < 0.3).astype(float)
    t = _t(v)
    target = (torch.tensor(r) + 0.95 * (1 - torch.tensor(d)) * torch.tensor(nv)).detach()
    loss = F.smooth_l1_loss(t, target)
    loss.backward()
    _close(fl.td_loss(v, r, nv, d, 0.95, "huber", return_grad=True), (loss.item(), t.grad.numpy()), np.float64)


# ------------------------------------------------------------------ threads, out=, classes

def test_thread_count_bit_identical(parallel_always):
    rng = _rng()
    mu = rng.normal(0, 1, (300, 64)).astype(np.float32)
    lv = rng.normal(0, 1, (300, 64)).astype(np.float32)
    g = rng.normal(0, 1, (300, 64))
    x = rng.normal(0, 2, 40000)
    calls = [lambda nt: fl.gaussian_kl_loss(mu, lv, return_grad=True, n_threads=nt),
             lambda nt: fl.gradient_penalty(g, return_grad=True, n_threads=nt),
             lambda nt: fl.gan_discriminator_loss(x, x[:30000], "minimax", return_grad=True, n_threads=nt),
             lambda nt: fl.ppo_clip_loss(x / 10, x[::-1] / 10, x, return_grad=True, n_threads=nt)]
    for c in calls:
        a, b = c(1), c(2)
        assert a[0] == b[0]
        for u, w in zip(a[1:], b[1:]):
            np.testing.assert_array_equal(u, w)


def test_out_buffers_are_written():
    rng = _rng()
    mu, lv = rng.normal(0, 1, (5, 3)), rng.normal(0, 1, (5, 3))
    bm, bl = np.empty_like(mu), np.empty_like(lv)
    v, gm, gl = fl.gaussian_kl_loss(mu, lv, return_grad=True, out=(bm, bl))
    assert gm is bm and gl is bl
    x = rng.normal(0, 1, (5, 8))
    bx = np.empty_like(x)
    res = fl.vae_loss(x, x * 0, mu, lv, return_grad=True, out=(bx, None, None))
    assert res[1] is bx
    g = np.empty(4)
    assert fl.gan_generator_loss(np.ones(4), return_grad=True, out=g)[1] is g
    gp = np.empty((5, 3))
    assert fl.gradient_penalty(mu, return_grad=True, out=gp)[1] is gp
    # return_grad by name, in the order given
    v2, gl2 = fl.gaussian_kl_loss(mu, lv, return_grad=("logvar",))
    np.testing.assert_array_equal(gl2, gl)


def test_classes_equal_functions():
    rng = _rng()
    mu, lv = rng.normal(0, 1, (5, 3)), rng.normal(0, 1, (5, 3))
    x = rng.normal(0, 1, 9)
    pairs = [(fl.GaussianKLLoss("sum"), (mu, lv), fl.gaussian_kl_loss, dict(reduction="sum")),
             (fl.VAELoss(0.5, "mse"), (x.reshape(3, 3), x.reshape(3, 3) ** 2, mu[:3], lv[:3]), fl.vae_loss,
              dict(beta=0.5, recon="mse")),
             (fl.GANDiscriminatorLoss("hinge"), (x, x[:4]), fl.gan_discriminator_loss, dict(kind="hinge")),
             (fl.GANGeneratorLoss("least_squares", 0.5), (x,), fl.gan_generator_loss,
              dict(kind="least_squares", gen_target=0.5)),
             (fl.GradientPenalty(2.0, "wgan-gp", "sum"), (mu,), fl.gradient_penalty,
              dict(target_norm=2.0, reduction="sum")),
             (fl.PolicyGradientLoss(), (x, x), fl.policy_gradient_loss, {}),
             (fl.PPOClipLoss(0.1, 2.0), (x / 4, x[::-1] / 4, x), fl.ppo_clip_loss, dict(clip_eps=0.1, dual_clip=2.0)),
             (fl.ValueLoss(0.2, "huber"), (x, x[::-1], x / 2), fl.value_loss, dict(clip_eps=0.2, kind="huber")),
             (fl.TDLoss(0.5), (x, x, x, x > 0), fl.td_loss, dict(gamma=0.5))]
    for obj, ops, fn, kw in pairs:
        assert obj(*ops) == fn(*ops, **kw), type(obj).__name__
        a, b = obj.value_and_grad(*ops), fn(*ops, **kw, return_grad=True)
        for u, w in zip(a, b):
            np.testing.assert_array_equal(u, w)
        assert type(obj).__name__ in repr(obj)


# ------------------------------------------------------------------ errors

ERRORS = [
    (lambda: fl.gaussian_kl_loss(np.zeros((2, 3)), np.zeros((2, 4))),
     r"gaussian_kl_loss: logvar must have the same shape as mu, got mu: \(2, 3\) and logvar: \(2, 4\)"),
    (lambda: fl.gaussian_kl_loss(np.zeros(2), np.zeros(2), reduction="avg"),
     r"gaussian_kl_loss: reduction must be one of"),
    (lambda: fl.vae_loss(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 1)), np.zeros((2, 1)), weight=np.ones(3)),
     r"vae_loss: weight must have shape \(2,\) \(one value per sample\), got \(3,\)"),
    (lambda: fl.gaussian_kl_loss(np.zeros(2), np.zeros(2), out=np.zeros(2)),
     r"gaussian_kl_loss: out= is the gradient's buffer; pass return_grad=True"),
    (lambda: fl.vae_loss(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 1)), np.zeros((2, 1)), beta=-1.0),
     r"vae_loss: beta must be a finite number >= 0, got -1.0"),
    (lambda: fl.vae_loss(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 1)), np.zeros((2, 1)), recon="l1"),
     r"vae_loss: recon must be one of 'bce', 'mse', got 'l1'"),
    (lambda: fl.vae_loss(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((3, 1)), np.zeros((3, 1))),
     r"vae_loss: input and mu must have the same batch size \(first axis\), got input: \(2, 3\) and mu: \(3, 1\)"),
    (lambda: fl.vae_loss(np.zeros((2, 3)), np.zeros((2, 2)), np.zeros((2, 1)), np.zeros((2, 1))),
     r"vae_loss: target must have the same shape as input"),
    (lambda: fl.gan_discriminator_loss(np.zeros(2), np.zeros(3), kind="wgan"),
     r"gan_discriminator_loss: kind must be one of 'minimax', 'nonsaturating', 'least_squares', "
     r"'wasserstein', 'hinge', got 'wgan'"),
    (lambda: fl.gan_generator_loss(np.zeros(2), kind=None), r"gan_generator_loss: kind must be one of"),
    (lambda: fl.gan_discriminator_loss(np.zeros(2), np.zeros(3), label_smoothing=1.0),
     r"gan_discriminator_loss: label_smoothing must be in \[0, 1\), got 1.0"),
    (lambda: fl.gan_discriminator_loss(np.zeros(2), np.zeros(3), kind="hinge", label_smoothing=0.1),
     r"gan_discriminator_loss: label_smoothing applies to the logistic kinds"),
    (lambda: fl.gan_discriminator_loss(np.zeros(2), np.zeros(3), real_weight=np.ones(3)),
     r"gan_discriminator_loss: real_weight"),
    (lambda: fl.gan_discriminator_loss(np.zeros(2), np.zeros(3), reduction="none"),
     r"gan_discriminator_loss: reduction must be one of 'mean', 'sum', got 'none'"),
    (lambda: fl.gradient_penalty(np.zeros(2), kind="wgan"), r"gradient_penalty: kind must be one of 'wgan-gp', 'r1'"),
    (lambda: fl.gradient_penalty(np.float64(1.0)), r"gradient_penalty: grads must have at least 1 dimension"),
    (lambda: fl.gradient_penalty(np.zeros((3, 0))), r"gradient_penalty: grads must have at least one entry"),
    (lambda: fl.policy_gradient_loss(np.zeros(3), np.zeros(4)),
     r"policy_gradient_loss: advantages must have the same shape as log_probs, got log_probs: \(3,\) and "
     r"advantages: \(4,\)"),
    (lambda: fl.ppo_clip_loss(np.zeros(3), np.zeros(3), np.zeros(3), clip_eps=0.0),
     r"ppo_clip_loss: clip_eps must be > 0, got 0.0"),
    (lambda: fl.ppo_clip_loss(np.zeros(3), np.zeros(3), np.zeros(3), clip_eps=-0.1),
     r"ppo_clip_loss: clip_eps must be > 0, got -0.1"),
    (lambda: fl.ppo_clip_loss(np.zeros(3), np.zeros(2), np.zeros(3)),
     r"ppo_clip_loss: old_log_probs must have the same shape as log_probs"),
    (lambda: fl.ppo_clip_loss(np.zeros(3), np.zeros(3), np.zeros(2)),
     r"ppo_clip_loss: advantages must have the same shape as log_probs"),
    (lambda: fl.ppo_clip_loss(np.zeros(3), np.zeros(3), np.zeros(3), dual_clip=1.0),
     r"ppo_clip_loss: dual_clip must be None or a number > 1, got 1.0"),
    (lambda: fl.ppo_clip_loss(np.zeros(3), np.zeros(3), np.zeros(3), stats=[]),
     r"ppo_clip_loss: stats must be None or a dict to fill, got list"),
    (lambda: fl.value_loss(np.zeros(3), np.zeros(3), np.zeros(3)),
     r"value_loss: old_values and clip_eps are given together"),
    (lambda: fl.value_loss(np.zeros(3), np.zeros(3), np.zeros(3), clip_eps=0),
     r"value_loss: clip_eps must be > 0, got 0"),
    (lambda: fl.value_loss(np.zeros(3), np.zeros(3), kind="l1"), r"value_loss: kind must be one of 'mse', 'huber'"),
    (lambda: fl.value_loss(np.zeros(3), np.zeros(3), kind="huber", delta=0.0),
     r"value_loss: delta must be a finite number > 0, got 0.0"),
    (lambda: fl.value_loss(np.zeros(3), np.zeros(2)), r"value_loss: returns must have the same shape as values"),
    (lambda: fl.td_loss(np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3), gamma=1.5),
     r"td_loss: gamma must be in \[0, 1\], got 1.5"),
    (lambda: fl.td_loss(np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3), gamma=-0.1),
     r"td_loss: gamma must be in \[0, 1\], got -0.1"),
    (lambda: fl.td_loss(np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(2)),
     r"td_loss: dones must have the same shape as values"),
    (lambda: fl.PPOClipLoss(clip_eps=0), r"PPOClipLoss: clip_eps must be > 0"),
    (lambda: fl.TDLoss(gamma=2), r"TDLoss: gamma must be in \[0, 1\]"),
    (lambda: fl.VAELoss(beta=-0.5), r"VAELoss: beta must be a finite number >= 0"),
    (lambda: fl.GANGeneratorLoss(kind="x"), r"GANGeneratorLoss: kind must be one of"),
    (lambda: fl.GANDiscriminatorLoss(kind="hinge", label_smoothing=0.2),
     r"GANDiscriminatorLoss: label_smoothing applies to the logistic kinds"),
    (lambda: fl.GradientPenalty(kind="r2"), r"GradientPenalty: kind must be one of"),
    (lambda: fl.GaussianKLLoss(reduction="avg"), r"GaussianKLLoss: reduction must be one of"),
    (lambda: fl.PolicyGradientLoss(reduction="x"), r"PolicyGradientLoss: reduction must be one of"),
    (lambda: fl.ValueLoss(kind="x"), r"ValueLoss: kind must be one of"),
]


@pytest.mark.parametrize("call,msg", ERRORS, ids=[m[:40] for _, m in ERRORS])
def test_errors(call, msg):
    with pytest.raises((ValueError, TypeError), match=msg):
        call()
