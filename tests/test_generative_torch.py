"""fastloss.torch's generative and RL objectives in training loops: a tiny
VAE, a tiny WGAN-GP and a non-saturating GAN, and a policy on a toy bandit
(REINFORCE, PPO, a value baseline) reach the same losses, step by step, as
the same loops with the losses written from the papers in torch ops
(PyTorch has none of them), in float64, to 1e-9."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import fastloss.torch as flt  # noqa: E402

F = torch.nn.functional


@pytest.fixture(autouse=True)
def _float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _seed(k):
    torch.manual_seed(k)
    return np.random.default_rng(k)


def _close(a, b):
    assert np.allclose(a, b, rtol=1e-9, atol=1e-12), (a, b)


def _vae_run(use_fastloss, steps=15):
    _seed(0)
    enc, dec = torch.nn.Linear(6, 4), torch.nn.Linear(2, 6)
    opt = torch.optim.SGD(list(enc.parameters()) + list(dec.parameters()), lr=0.1)
    x = torch.rand(16, 6)
    noise = torch.randn(steps, 16, 2)
    loss_fn = flt.VAELoss(beta=0.5)
    out = []
    for k in range(steps):
        h = enc(x)
        mu, logvar = h[:, :2], h[:, 2:]
        z = mu + torch.exp(0.5 * logvar) * noise[k]
        logits = dec(z)
        if use_fastloss:
            loss = loss_fn(logits, x, mu, logvar)
        else:
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            loss = (F.binary_cross_entropy_with_logits(logits, x, reduction="sum") + 0.5 * kl) / 16
        opt.zero_grad()
        loss.backward()
        opt.step()
        out.append(loss.item())
    return out


def test_tiny_vae_trains_to_the_same_losses():
    a, b = _vae_run(True), _vae_run(False)
    _close(a, b)
    assert a[-1] < a[0]


def _gan_run(use_fastloss, kind, steps=12):
    _seed(1)
    G, D = torch.nn.Linear(2, 3), torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    og, od = torch.optim.SGD(G.parameters(), lr=0.05), torch.optim.SGD(D.parameters(), lr=0.05)
    real = torch.randn(32, 3) + 1.0
    zs = torch.randn(steps, 24, 2)
    eps = torch.rand(steps, 24, 1)
    losses = []
    for k in range(steps):
        fake = G(zs[k])
        dr, df = D(real).squeeze(1), D(fake.detach()).squeeze(1)
        if kind == "wasserstein":   # WGAN-GP: the critic's gradient at interpolates
            xi = (eps[k] * real[:24] + (1 - eps[k]) * fake.detach()).requires_grad_(True)
            g, = torch.autograd.grad(D(xi).sum(), xi, create_graph=True)
        if use_fastloss:
            ld = flt.gan_discriminator_loss(dr, df, kind)
            if kind == "wasserstein":
                ld = ld + 10 * flt.gradient_penalty(g)
        else:
            if kind == "wasserstein":
                ld = df.mean() - dr.mean() + 10 * ((g.norm(2, dim=1) - 1) ** 2).mean()
            else:
                ld = F.softplus(-dr).mean() + F.softplus(df).mean()
        od.zero_grad()
        ld.backward()
        od.step()
        dg = D(fake).squeeze(1)
        if use_fastloss:
            lg = flt.GANGeneratorLoss(kind)(dg)
        else:
            lg = -dg.mean() if kind == "wasserstein" else F.softplus(-dg).mean()
        og.zero_grad()
        lg.backward()
        og.step()
        losses += [ld.item(), lg.item()]
    return losses


@pytest.mark.parametrize("kind", ["nonsaturating", "wasserstein"])
def test_tiny_gan_trains_to_the_same_losses(kind):
    _close(_gan_run(True, kind), _gan_run(False, kind))


def _bandit_run(use_fastloss, steps=20):
    rng = _seed(2)
    means = torch.tensor([0.2, 1.0, -0.5])
    logits = torch.zeros(3, requires_grad=True)
    value = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([logits, value], lr=0.2)
    losses = []
    for k in range(steps):
        probs = torch.softmax(logits.detach(), 0).numpy()
        a = torch.from_numpy(rng.choice(3, size=64, p=probs))
        r = means[a] + torch.from_numpy(rng.normal(0, 0.1, 64))
        logp_all = torch.log_softmax(logits, 0)
        lp = logp_all[a]
        v = value.expand(64)
        adv = (r - v).detach()
        old = lp.detach() + torch.from_numpy(rng.normal(0, 0.2, 64))
        if use_fastloss:
            pg = flt.policy_gradient_loss(lp, adv)
            ppo = flt.PPOClipLoss(0.2, dual_clip=3.0)(lp, old, adv)
            vl = flt.value_loss(v, r)
        else:
            pg = -(lp * adv).mean()
            ratio = (lp - old).exp()
            obj = torch.min(ratio * adv, ratio.clamp(0.8, 1.2) * adv)
            obj = torch.where(adv < 0, torch.max(obj, 3.0 * adv), obj)
            ppo = -obj.mean()
            vl = 0.5 * ((v - r) ** 2).mean()
        loss = pg + ppo + 0.5 * vl
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses += [pg.item(), ppo.item(), vl.item()]
    return losses, torch.softmax(logits.detach(), 0)


def test_bandit_policy_trains_to_the_same_losses():
    (a, pa), (b, pb) = _bandit_run(True), _bandit_run(False)
    _close(a, b)
    assert pa.argmax().item() == 1   # it learns the best arm
    _close(pa.numpy(), pb.numpy())


def test_td_loss_in_a_loop():
    _seed(3)
    q = torch.nn.Linear(3, 1)
    s, s2 = torch.randn(32, 3), torch.randn(32, 3)
    r, d = torch.randn(32), (torch.rand(32) < 0.2).double()
    out = []
    for use in (True, False):
        torch.manual_seed(3)
        q = torch.nn.Linear(3, 1)
        opt = torch.optim.SGD(q.parameters(), lr=0.1)
        vals = []
        for _ in range(10):
            v, nv = q(s).squeeze(1), q(s2).squeeze(1)
            if use:
                loss = flt.td_loss(v, r, nv.detach(), d, 0.9, "huber")
            else:
                loss = F.smooth_l1_loss(v, (r + 0.9 * (1 - d) * nv).detach())
            opt.zero_grad()
            loss.backward()
            opt.step()
            vals.append(loss.item())
        out.append(vals)
    _close(out[0], out[1])
