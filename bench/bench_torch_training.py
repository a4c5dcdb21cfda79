#!/usr/bin/env python
"""Time a PyTorch training step with a fastloss.torch loss against the same
step with PyTorch's own loss.

    python bench/bench_torch_training.py            # full: 7 repeats
    python bench/bench_torch_training.py --quick    # 3 repeats, fewer steps

The model is a small MLP head, ``Linear(F, H) -> ReLU -> Linear(H, K)``, on a
batch of B feature vectors (default B=4096, F=H=256), float32, trained by
SGD.  For each loss the script times

* **train step**: ``zero_grad``, forward of the model, the loss, backward
  through loss and model, ``SGD.step()``;
* **loss fwd+bwd**: the loss alone on a (B, K) logits tensor that requires
  grad: forward and backward, nothing else.

Losses: ``BCEWithLogitsLoss`` (multi-label, K=100), the sigmoid focal loss
(``fastloss.torch.SigmoidFocalLoss`` against torchvision's formula written
out in torch: torchvision does not import beside torch 2.13) and
``CrossEntropyLoss`` (K=1000; also with ``label_smoothing=0.1``), if
``fastloss.torch`` has it.

Each figure is the minimum over repeats of the mean over a few consecutive
steps; fastloss and torch are measured alternately within each repeat, so
a change in the machine's load hits both.  Both libraries get the same
thread count (``torch.set_num_threads`` and ``fastloss.set_num_threads``).
The load average is printed at the start and the end: on a shared 2-core
machine another process makes every 2-thread figure slower and noisy.
"""
from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import time

import torch

import fastloss as fl
import fastloss.torch as flt

nn = torch.nn
F = torch.nn.functional


def focal_torch(x, t, alpha=0.25, gamma=2.0):
    """torchvision.ops.sigmoid_focal_loss(x, t, alpha, gamma, reduction="mean")."""
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * ((1 - p_t) ** gamma)
    loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return loss.mean()


def cases(batch: int, gen: torch.Generator):
    """(name, K, target, fastloss loss, torch loss) for each benchmarked loss."""
    multilabel = (torch.rand(batch, 100, generator=gen) < 0.05).float()  # ~5 positive labels per sample
    out = [
        ("BCEWithLogitsLoss", 100, multilabel, flt.BCEWithLogitsLoss(), nn.BCEWithLogitsLoss()),
        ("sigmoid focal a=.25 g=2", 100, multilabel, flt.SigmoidFocalLoss(alpha=0.25, gamma=2.0), focal_torch),
    ]
    skipped = []
    if "CrossEntropyLoss" in flt.__all__:
        labels = torch.randint(0, 1000, (batch,), generator=gen)
        out.append(("CrossEntropyLoss", 1000, labels, flt.CrossEntropyLoss(), nn.CrossEntropyLoss()))
        out.append(("CrossEntropyLoss ls=0.1", 1000, labels, flt.CrossEntropyLoss(label_smoothing=0.1),
                    nn.CrossEntropyLoss(label_smoothing=0.1)))
    else:
        skipped.append("CrossEntropyLoss: fastloss.torch has no CrossEntropyLoss yet (skipped)")
    return out, skipped


def time_pair(fns, repeats: int, inner: int, warmup: int):
    """Minimum over ``repeats`` of the mean time of ``inner`` calls, for each
    function, measured alternately."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            best[i] = min(best[i], (time.perf_counter() - t0) / inner)
    return best


def train_step(model, loss_fn, X, Y):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(X), Y)
        loss.backward()
        opt.step()

    return step


def loss_only(loss_fn, logits, Y):
    def run():
        logits.grad = None
        loss_fn(logits, Y).backward()

    return run


def check_same(fl_loss, t_loss, logits, Y, name):
    """The two losses agree (value and gradient) on the benchmark's data."""
    a = logits.detach().clone().requires_grad_(True)
    b = logits.detach().clone().requires_grad_(True)
    va, vb = fl_loss(a, Y), t_loss(b, Y)
    va.backward()
    vb.backward()
    dv = abs(va.item() - vb.item()) / max(abs(vb.item()), 1e-30)
    dg = ((a.grad - b.grad).abs().max() / b.grad.abs().max()).item()
    if dv > 1e-4 or dg > 1e-4:
        raise SystemExit(f"{name}: fastloss and torch disagree (value rel {dv:.2e}, grad rel {dg:.2e})")
    return max(dv, dg)


def load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 repeats of fewer steps (about 1 minute on 2 cores)")
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--features", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--threads", default="2,1", help="comma-separated thread counts (default 2,1)")
    ap.add_argument("--repeat", type=int, default=None, help="repeats (default 7; 3 with --quick)")
    args = ap.parse_args(argv)

    repeats = args.repeat or (3 if args.quick else 7)
    inner_step, inner_loss = (2, 5) if args.quick else (4, 10)
    threads = [int(t) for t in args.threads.split(",")]
    B, Fe, H = args.batch, args.features, args.hidden
    dtype = torch.float32

    gen = torch.Generator().manual_seed(0)
    todo, skipped = cases(B, gen)
    X = torch.randn(B, Fe, generator=gen, dtype=dtype)

    cfg = fl.show_config(file=False)
    print("fastloss.torch training-step benchmark")
    print(f"  fastloss {cfg['version']} (openmp={cfg['openmp']}, simd={cfg['simd_path']}), torch {torch.__version__}, "
          f"python {platform.python_version()}, {os.cpu_count()} CPUs")
    print(f"  model: Linear({Fe}, {H}) -> ReLU -> Linear({H}, K), batch B={B}, dtype float32, SGD")
    print(f"  train step = zero_grad + model forward + loss + backward + SGD step; "
          f"loss fwd+bwd = the loss alone on (B, K) logits")
    print(f"  min over {repeats} repeats of the mean of {inner_step} steps / {inner_loss} loss calls; "
          f"threads {', '.join(map(str, threads))} (torch and fastloss alike)")
    print(f"  load average at start: {load()}")
    for s in skipped:
        print(f"  note: {s}")
    print()

    hdr = (f"{'loss':<24} {'B x K':>11} {'thr':>3} | {'step fl':>9} {'step torch':>10} {'torch/fl':>8} | "
           f"{'loss fl':>8} {'loss torch':>10} {'torch/fl':>8} | {'loss share':>10}")
    print(hdr)
    print("-" * len(hdr))
    sys.stdout.flush()

    old_torch_threads = torch.get_num_threads()
    try:
        for name, K, Y, fl_loss, t_loss in todo:
            torch.manual_seed(1)
            model = nn.Sequential(nn.Linear(Fe, H), nn.ReLU(), nn.Linear(H, K)).to(dtype)
            twin = copy.deepcopy(model)
            logits = (2 * torch.randn(B, K, generator=gen, dtype=dtype)).requires_grad_(True)
            check_same(fl_loss, t_loss, logits, Y, name)
            for T in threads:
                torch.set_num_threads(T)
                fl.set_num_threads(T)
                s_fl, s_t = time_pair([train_step(model, fl_loss, X, Y), train_step(twin, t_loss, X, Y)],
                                      repeats, inner_step, warmup=2)
                l_fl, l_t = time_pair([loss_only(fl_loss, logits, Y), loss_only(t_loss, logits, Y)],
                                      repeats, inner_loss, warmup=3)
                print(f"{name:<24} {f'{B}x{K}':>11} {T:>3} | {s_fl * 1e3:>6.2f} ms {s_t * 1e3:>7.2f} ms "
                      f"{s_t / s_fl:>7.2f}x | {l_fl * 1e3:>5.2f} ms {l_t * 1e3:>7.2f} ms {l_t / l_fl:>7.2f}x | "
                      f"{l_t / s_t:>9.0%}")
                sys.stdout.flush()
    finally:
        torch.set_num_threads(old_torch_threads)
        fl.set_num_threads(None)
    print()
    print("loss share = torch's loss fwd+bwd time / torch's train step time: the most a faster loss can save.")
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
