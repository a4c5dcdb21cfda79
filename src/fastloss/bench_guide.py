"""Timing of fastloss.suggest and fastloss.diagnose (and of a loss called
with check=True) at large sizes, against one plain pass over the same data.

    python -m fastloss bench --family guide        # N = 1e7 (1e6 with --quick)
    python -m fastloss.bench_guide --n 1e6 --repeat 9

Each configuration's calls are interleaved round by round (a busy moment
on a shared machine hits them alike); the best of the rounds is printed.
The yardsticks: ``np.sum(target, dtype=float64)`` (one read of the target)
and the loss's own fused value-and-gradient call.  No speed is asserted.
"""
from __future__ import annotations

import argparse
import inspect
import sys
import time

import numpy as np

import fastloss as fl


def _cases(n: int, rng):
    y_bin = (rng.random(n, dtype=np.float32) < 0.02).astype(np.float32)
    x = rng.standard_normal(n, dtype=np.float32)
    y_reg = x + rng.standard_normal(n, dtype=np.float32)
    nr, C = max(n // 10, 1), 10
    logits = rng.standard_normal((nr, C), dtype=np.float32)
    labels = rng.integers(0, C, nr)
    return [
        ("np.sum(target) (one read)", lambda nt: y_reg.sum(dtype=np.float64)),
        ("mse_loss value+grad", lambda nt: fl.mse_loss(x, y_reg, return_grad=True, n_threads=nt)),
        ("suggest(binary target)", lambda nt: fl.suggest(y_bin, n_threads=nt)),
        ("suggest(target, input) regression", lambda nt: fl.suggest(y_reg, x, n_threads=nt)),
        ("suggest(labels, (N/10, 10) logits)", lambda nt: fl.suggest(labels, logits, n_threads=nt)),
        ("diagnose(mse_loss, input, target)", lambda nt: fl.diagnose("mse_loss", x, y_reg, n_threads=nt)),
        ("diagnose(cross_entropy, (N/10, 10))", lambda nt: fl.diagnose("cross_entropy", logits, labels,
                                                                       n_threads=nt)),
        ("cross_entropy value+grad (N/10, 10)", lambda nt: fl.cross_entropy(logits, labels, return_grad=True,
                                                                           n_threads=nt)),
    ] + ([] if "check" not in inspect.signature(fl.mse_loss).parameters else [
        ("mse_loss value+grad, check=True", lambda nt: fl.mse_loss(x, y_reg, return_grad=True, n_threads=nt,
                                                                    check=True)),
        ("cross_entropy value+grad, check=True", lambda nt: fl.cross_entropy(logits, labels, return_grad=True,
                                                                            n_threads=nt, check=True)),
    ])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m fastloss.bench_guide", description=__doc__.splitlines()[0])
    p.add_argument("--n", default="1e7", help="elements of the pointwise cases (default 1e7)")
    p.add_argument("--threads", default="1,all", help='thread counts, "all" = every CPU (default 1,all)')
    p.add_argument("--repeat", type=int, default=5, help="rounds, best kept (default 5)")
    args = p.parse_args(argv)
    n = int(float(args.n))
    threads = [fl.get_num_threads() if t == "all" else int(t) for t in args.threads.split(",")]
    cases = _cases(n, np.random.default_rng(0))
    print(f"fastloss {fl.__version__}: N = {n:.0e}, float32, best of {args.repeat} interleaved rounds")
    for nt in dict.fromkeys(threads):
        best = {name: float("inf") for name, _ in cases}
        for _ in range(args.repeat):
            for name, fn in cases:
                t0 = time.perf_counter()
                fn(nt)
                best[name] = min(best[name], time.perf_counter() - t0)
        print(f"\n{nt} thread{'s' if nt > 1 else ''}")
        for name, t in best.items():
            print(f"  {name:<40} {t * 1e3:9.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
