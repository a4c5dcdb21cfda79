"""Time a few registry cases against their rivals in interleaved rounds, for
a shared, noisy machine.

``python -m fastloss bench`` times each implementation in turn; when the
machine's load changes during a run, the ratio between two
implementations timed minutes apart moves with it.  Here every round times
each implementation once (``--calls`` calls, best kept) one after the
other, and the ratios are taken round by round: their median (and range)
is the figure, alongside the load average before and after.

    python bench/bench_interleaved.py --losses gamma_nll_loss,gamma_nll_loss.grad_hess \\
        --n 1e7 --dtype float32 --threads 1,2 --rounds 9

The cases, inputs and rival calls are those of ``fastloss.bench``'s
registry (``pointwise_cases``).
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

from fastloss import bench as B


def _once(fn, calls):
    best = float("inf")
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--losses", required=True, help="registry case names, comma-separated")
    ap.add_argument("--n", type=float, default=1e7)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--calls", type=int, default=3, help="calls per implementation per round (best kept)")
    ap.add_argument("--impls", default="fastloss,fastloss_out,sklearn,torch")
    args = ap.parse_args(argv)
    n, dtype = int(args.n), np.dtype(args.dtype)
    threads = [int(t) for t in args.threads.split(",")]
    impls = args.impls.split(",")
    cases = {c.name: c for c in B.pointwise_cases()}
    names = args.losses.split(",")
    missing = [m for m in names if m not in cases]
    if missing:
        ap.error(f"unknown case(s) {missing}; available: {', '.join(cases)}")
    print(f"N={n:.0e} {dtype.name} rounds={args.rounds} calls/round={args.calls}; "
          f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for name in names:
        case = cases[name]
        data = case.setup(n, dtype, np.random.default_rng(0))
        for nt in threads:
            fns = {i: case.prepare(i, data, nt) for i in impls if i in case.impls}
            fns = {i: f for i, f in fns.items() if f is not None}
            for f in fns.values():
                f()  # warm up
            times = {i: [] for i in fns}
            for _ in range(args.rounds):
                for i, f in fns.items():
                    times[i].append(_once(f, args.calls))
            base = times["fastloss"]
            cells = []
            for i, ts in times.items():
                cell = f"{i} {statistics.median(ts) * 1e3:.2f} ms (min {min(ts) * 1e3:.2f})"
                if i != "fastloss":
                    ratios = [t / b for t, b in zip(ts, base)]
                    cell += f"  {i}/fastloss median {statistics.median(ratios):.2f}x " \
                            f"[{min(ratios):.2f}-{max(ratios):.2f}]"
                cells.append(cell)
            print(f"{name} threads={nt}\n    " + "\n    ".join(cells))
        del data
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
