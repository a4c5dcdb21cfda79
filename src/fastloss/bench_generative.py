"""The generative and RL objectives and CombinedLoss: fastloss value+gradient
vs the same formulas written in PyTorch (forward + backward), side by side.

PyTorch has none of these losses; the rival is the published formula in
torch ops, as users write it (softplus forms for the GAN, the
Kingma-Welling KL, CleanRL's PPO).  Sizes: N = 1e6 logits / log-probs
(GAN, PPO, value loss, gradient penalty 1e6 = 15625 x 64), VAE KL 65536 x 64
latents, the RL losses from logits 65536 x 16 action logits (with an
entropy bonus; PPO also with the clip fraction and approximate KL that
CleanRL logs, as ``ppo_clip_stats`` does for the log-prob form); float32
by default; threads 1 and all.  CombinedLoss (BCE with
logits + Dice, binary, 16 x 256 x 256) against the two fastloss calls
plus a NumPy add of the gradients, and against the slower term alone.

    python -m fastloss bench --family generative
    python -m fastloss bench --family generative --threads 2 --dtypes float32

What is timed, per call:
  fastloss        the default call with return_grad=True (fresh gradient buffers from the block cache)
  fastloss_out    the same with out= preallocated gradient buffers
  torch           grads set to None; the formula's forward and .backward(), torch.set_num_threads(T)
The combined rows time fastloss.CombinedLoss.value_and_grad (fresh, and out=;
BCE with logits + Dice of one input run as one fused overlap kernel),
``bce + dice + add`` (two value_and_grad calls and ``g = g1 + g2``; with out=:
into preallocated buffers and ``np.add(..., out=)``) and each single term
alone (fresh, and out=); the ratios set each default call against the
default calls and each out= call against the out= calls.  No speed is
asserted here.
"""
import functools
import sys
import time

import numpy as np

import fastloss as fl
from fastloss import bench as B

N = 10**6
CASES = ("gan_discriminator", "gan_generator", "gradient_penalty", "gaussian_kl", "vae", "ppo_clip", "value_clip",
         "policy_gradient")
# the RL losses from logits (ROWS x ACTIONS logits, entropy bonus 0.01; PPO with its clip fraction and
# approximate KL, as CleanRL logs them) and PPO's log-prob form with those statistics (N elements)
RL_CASES = ("pg_logits", "ppo_logits", "ppo_clip_stats")
CASES += RL_CASES
ROWS, ACTIONS = 65536, 16


def setup(name, dtype, seed=0):
    rng = np.random.default_rng(seed)

    def r(*shape, s=1.0, loc=0.0):
        return (rng.standard_normal(shape, dtype=np.float32) * s + loc).astype(dtype, copy=False)

    if name == "gan_discriminator":
        return (r(N, s=2), r(N, s=2))
    if name == "gan_generator":
        return (r(N, s=2),)
    if name == "gradient_penalty":
        return (r(N // 64, 64),)
    if name in ("gaussian_kl",):
        return (r(65536, 64), r(65536, 64))
    if name == "vae":   # 4096 images of 256 pixels, 64 latents each
        return (r(4096, 256, s=2), rng.random((4096, 256)).astype(dtype), r(4096, 64), r(4096, 64))
    if name == "ppo_clip":
        old = r(N, s=0.5, loc=-1.0)
        return (old + r(N, s=0.2), old, r(N))
    if name == "value_clip":
        v = r(N)
        return (v, r(N), v + r(N, s=0.3))
    if name == "policy_gradient":
        return (r(N, s=0.5, loc=-1.0), r(N))
    if name in ("pg_logits", "ppo_logits"):
        z = r(ROWS, ACTIONS, s=2)
        act = rng.integers(0, ACTIONS, ROWS)
        lp = z[np.arange(ROWS), act] - np.log(np.exp(z.astype(np.float64)).sum(1))
        if name == "pg_logits":
            return (z, act, r(ROWS))
        return (z, act, (lp + rng.normal(0, 0.2, ROWS)).astype(dtype), r(ROWS))
    if name == "ppo_clip_stats":
        old = r(N, s=0.5, loc=-1.0)
        return (old + r(N, s=0.2), old, r(N))
    raise ValueError(name)


def _fl_call(name, ops, nt, out):
    if name == "gan_discriminator":
        return lambda: fl.gan_discriminator_loss(*ops, "nonsaturating", return_grad=True, out=out, n_threads=nt)
    if name == "gan_generator":
        return lambda: fl.gan_generator_loss(*ops, "nonsaturating", return_grad=True, out=out, n_threads=nt)
    if name == "gradient_penalty":
        return lambda: fl.gradient_penalty(*ops, return_grad=True, out=out, n_threads=nt)
    if name == "gaussian_kl":
        return lambda: fl.gaussian_kl_loss(*ops, return_grad=True, out=out, n_threads=nt)
    if name == "vae":
        return lambda: fl.vae_loss(*ops, beta=1.0, return_grad=True, out=out, n_threads=nt)
    if name == "ppo_clip":
        return lambda: fl.ppo_clip_loss(*ops, 0.2, return_grad=True, out=out, n_threads=nt)
    if name == "value_clip":
        return lambda: fl.value_loss(ops[0], ops[1], ops[2], 0.2, return_grad=True, out=out, n_threads=nt)
    if name == "pg_logits":
        return lambda: fl.policy_gradient_loss_from_logits(*ops, 0.01, return_grad=True, out=out, n_threads=nt)
    if name == "ppo_logits":
        return lambda: fl.ppo_clip_loss_from_logits(*ops, 0.2, None, 0.01, stats={}, return_grad=True, out=out,
                                                    n_threads=nt)
    if name == "ppo_clip_stats":
        return lambda: fl.ppo_clip_loss(*ops, 0.2, stats={}, return_grad=True, out=out, n_threads=nt)
    return lambda: fl.policy_gradient_loss(*ops, return_grad=True, out=out, n_threads=nt)


def _outs(name, ops):
    if name in ("gan_discriminator", "gaussian_kl"):
        return (np.empty_like(ops[0]), np.empty_like(ops[1]))
    if name == "vae":
        return (np.empty_like(ops[0]), np.empty_like(ops[2]), np.empty_like(ops[3]))
    return np.empty_like(ops[0])


def _torch_formula(name, torch, F, t):
    if name == "gan_discriminator":
        return F.softplus(-t[0]).mean() + F.softplus(t[1]).mean()
    if name == "gan_generator":
        return F.softplus(-t[0]).mean()
    if name == "gradient_penalty":
        return ((t[0].norm(2, dim=1) - 1) ** 2).mean()
    if name == "gaussian_kl":
        return -0.5 * torch.sum(1 + t[1] - t[0].pow(2) - t[1].exp()) / t[0].shape[0]
    if name == "vae":
        kl = -0.5 * torch.sum(1 + t[3] - t[2].pow(2) - t[3].exp())
        return (F.binary_cross_entropy_with_logits(t[0], t[1], reduction="sum") + kl) / t[0].shape[0]
    if name == "ppo_clip":
        ratio = (t[0] - t[1]).exp()
        return -torch.min(ratio * t[2], ratio.clamp(0.8, 1.2) * t[2]).mean()
    if name in ("pg_logits", "ppo_logits", "ppo_clip_stats"):
        return _torch_rl(name, torch, t)
    if name == "value_clip":
        vc = t[2] + (t[0] - t[2]).clamp(-0.2, 0.2)
        return 0.5 * torch.max((t[0] - t[1]) ** 2, (vc - t[1]) ** 2).mean()
    return -(t[0] * t[1]).mean()


def _torch_rl(name, torch, t):
    """CleanRL's ppo.py (its policy loss, entropy bonus and the statistics it logs) and REINFORCE, in torch ops."""
    if name == "ppo_clip_stats":
        logratio = t[0] - t[1]
        adv = t[2]
    else:
        logp = torch.log_softmax(t[0], dim=1)
        lpa = logp.gather(1, t[1][:, None])[:, 0]
        entropy = torch.distributions.Categorical(logits=t[0]).entropy().mean()
        if name == "pg_logits":
            return -(lpa * t[2]).mean() - 0.01 * entropy
        logratio = lpa - t[2]
        adv = t[3]
    ratio = logratio.exp()
    with torch.no_grad():
        ((ratio - 1) - logratio).mean().item()
        ((ratio - 1.0).abs() > 0.2).float().mean().item()
    loss = -torch.min(ratio * adv, ratio.clamp(0.8, 1.2) * adv).mean()
    return loss if name == "ppo_clip_stats" else loss - 0.01 * entropy


_DIFF = {"gan_discriminator": (0, 1), "gan_generator": (0,), "gradient_penalty": (0,), "gaussian_kl": (0, 1),
         "vae": (0, 2, 3), "ppo_clip": (0,), "value_clip": (0,), "policy_gradient": (0,),
         "pg_logits": (0,), "ppo_logits": (0,), "ppo_clip_stats": (0,)}


# The memory floor of the objectives whose kernels only stream their operands (one NumPy pass reading
# and writing as many arrays as the kernel does): no kernel can be faster than it, so their ratio to
# PyTorch is bounded by PyTorch's time over it.  REINFORCE reads log_probs and advantages and writes
# its gradient (-A scale, which does not depend on log_probs); the gradient penalty reads the rows
# and writes their gradient (each row's second read is from L1).
_FLOORS = {
    "policy_gradient": ("np.multiply(log_probs, advantages, out=g)",
                        lambda ops, g: np.multiply(ops[0], ops[1], out=g)),
    "gradient_penalty": ("np.multiply(grads, 2.0, out=g)", lambda ops, g: np.multiply(ops[0], 2.0, out=g)),
}


def prepare(impl, name, ops, nt):
    if impl == "fastloss":
        return _fl_call(name, ops, nt, None)
    if impl == "fastloss_out":
        return _fl_call(name, ops, nt, _outs(name, ops))
    torch = B._torch()
    if torch is None:
        return None
    F = torch.nn.functional
    t = [torch.from_numpy(a) for a in ops]
    leaves = [t[i].requires_grad_(True) for i in _DIFF[name]]

    def call():
        torch.set_num_threads(nt)
        for x in leaves:
            x.grad = None
        _torch_formula(name, torch, F, t).backward()
    return call


def _combined(nt, dtype):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((16, 1, 256, 256), dtype=np.float32) * 2).astype(dtype, copy=False)
    t = (rng.random((16, 1, 256, 256)) < 0.3).astype(dtype)
    bce, dice = fl.BCEWithLogitsLoss(n_threads=nt), fl.DiceLoss("binary", n_threads=nt)
    comb = fl.CombinedLoss([(1.0, bce), (1.0, dice)], n_threads=nt)
    g, ga, gb = np.empty_like(x), np.empty_like(x), np.empty_like(x)

    def two_and_add():
        _, g1 = bce.value_and_grad(x, t)
        _, g2 = dice.value_and_grad(x, t)
        return g1 + g2

    def two_and_add_out():
        bce.value_and_grad(x, t, out=ga)
        dice.value_and_grad(x, t, out=gb)
        return np.add(ga, gb, out=g)

    return {"combined": lambda: comb.value_and_grad(x, t), "combined_out": lambda: comb.value_and_grad(x, t, out=g),
            "bce+dice+add": two_and_add, "bce+dice+add_out": two_and_add_out,
            "bce alone": lambda: bce.value_and_grad(x, t), "dice alone": lambda: dice.value_and_grad(x, t),
            "bce alone_out": lambda: bce.value_and_grad(x, t, out=ga),
            "dice alone_out": lambda: dice.value_and_grad(x, t, out=gb)}


def _interleaved(fns, repeat, min_time=0.05):
    best = {k: float("inf") for k in fns}
    number = {}
    for k, f in fns.items():
        f()
        t0 = time.perf_counter()
        f()
        number[k] = max(1, int(min_time / max(time.perf_counter() - t0, 1e-6)))
    for _ in range(repeat):
        for k, f in fns.items():
            t0 = time.perf_counter()
            for _ in range(number[k]):
                f()
            best[k] = min(best[k], (time.perf_counter() - t0) / number[k])
    return best


def main(argv=None):
    import argparse
    import gc
    import os

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dtypes", default="float32")
    p.add_argument("--threads", default=",".join(map(str, sorted({1, B.all_threads()}))))
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--no-combined", action="store_true")
    p.add_argument("--n", type=float, default=1e6, help="elements of the per-element objectives (default 1e6)")
    a = p.parse_args(argv)
    global N
    N = int(a.n)
    threads = [B.all_threads() if s.strip() == "all" else int(s) for s in a.threads.split(",")]
    torch = B._torch()
    print(f"fastloss {fl.__version__}; torch {torch.__version__ if torch else '-'}; "
          f"load average {os.getloadavg()[0]:.2f} at start")
    print(f"{'dtype':8} {'objective':18} {'thr':>3} | {'fl':>8} {'fl out=':>8} {'torch':>8} | {'torch/fl':>8} "
          f"{'torch/out':>9}")
    gc.disable()
    try:
        for dt in a.dtypes.split(","):
            for name in a.cases.split(","):
                ops = setup(name, np.dtype(dt).type)
                for nt in threads:
                    fns = {k: f for k in ("fastloss", "fastloss_out", "torch") if (f := prepare(k, name, ops, nt))}
                    floor = _FLOORS.get(name) if nt == 1 else None
                    if floor is not None:
                        gbuf = np.empty_like(ops[0])
                        fns["floor"] = functools.partial(floor[1], ops, gbuf)
                    ms = {k: v * 1e3 for k, v in _interleaved(fns, a.repeat).items()}
                    tt = ms.get("torch", float("nan"))
                    print(f"{dt:8} {name:18} {nt:>3} | {ms['fastloss']:8.2f} {ms['fastloss_out']:8.2f} {tt:8.2f} | "
                          f"{tt / ms['fastloss']:8.2f} {tt / ms['fastloss_out']:9.2f}", flush=True)
                    if "floor" in ms:
                        print(f"{'':8} {'  memory floor':18} {nt:>3} | {floor[0]} {ms['floor']:.2f} ms: "
                              f"fastloss / floor {ms['fastloss_out'] / ms['floor']:.2f} (out=), "
                              f"torch / floor {tt / ms['floor']:.2f}", flush=True)
                del ops
            if not a.no_combined:
                for nt in threads:
                    ms = {k: v * 1e3 for k, v in _interleaved(_combined(nt, np.dtype(dt).type), a.repeat).items()}
                    slower = max(ms["bce alone"], ms["dice alone"])
                    slower_out = max(ms["bce alone_out"], ms["dice alone_out"])
                    print(f"{dt:8} CombinedLoss(BCE+Dice) 16x1x256x256, {nt} thr: combined {ms['combined']:.2f} ms "
                          f"(out= {ms['combined_out']:.2f}), bce+dice+add {ms['bce+dice+add']:.2f} "
                          f"(out= {ms['bce+dice+add_out']:.2f}), bce {ms['bce alone']:.2f} "
                          f"(out= {ms['bce alone_out']:.2f}), dice {ms['dice alone']:.2f} "
                          f"(out= {ms['dice alone_out']:.2f}); combined / slower term "
                          f"{ms['combined'] / slower:.2f} (out= {ms['combined_out'] / slower_out:.2f}), "
                          f"two calls + add / combined {ms['bce+dice+add'] / ms['combined']:.2f} "
                          f"(out= {ms['bce+dice+add_out'] / ms['combined_out']:.2f})", flush=True)
    finally:
        gc.enable()
    print(f"times in ms (best of {a.repeat} interleaved rounds); load average {os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
