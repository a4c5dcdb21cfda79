"""Page faults and time per call of the default call with fastloss's block
cache off ("fresh") and on ("cached"), and of the out= call.

    python bench/bench_faults.py [--n 1e7] [--threads 2] [--dtype float32]

The fault counts (minor faults from getrusage, per call, after two warm-up
calls) do not depend on the machine's load; the times (best of 10) do.
No speed is asserted anywhere.
"""
import argparse
import os
import resource
import time

import numpy as np

import fastloss as fl

LOSSES = ["mse_loss", "l1_loss", "huber_loss", "binary_cross_entropy_with_logits"]


def _faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=float, default=1e7)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--calls", type=int, default=10)
    a = p.parse_args(argv)
    n, dt = int(a.n), np.dtype(a.dtype)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n).astype(dt)
    t = (rng.random(n) < 0.5).astype(dt)
    buf = np.empty_like(x)
    old = fl.set_cache_limit(None)
    print(f"N={n} {dt.name} threads={a.threads}; load average {os.getloadavg()[0]:.2f} at start")
    print(f"{'loss':34s} {'faults/call: fresh':>18s} {'cached':>7s} {'out=':>6s} | best ms: fresh  cached    out=")
    try:
        for name in LOSSES:
            f = getattr(fl, name)
            res = {}
            for mode in ("fresh", "cached", "out"):
                fl.set_cache_limit(0 if mode == "fresh" else None)
                if mode == "out":
                    def call():
                        return f(x, t, return_grad=True, out=buf, n_threads=a.threads)
                else:
                    def call():
                        return f(x, t, return_grad=True, n_threads=a.threads)
                call()
                call()
                f0, best = _faults(), float("inf")
                for _ in range(a.calls):
                    t0 = time.perf_counter()
                    call()
                    best = min(best, time.perf_counter() - t0)
                res[mode] = ((_faults() - f0) / a.calls, best * 1e3)
            print(f"{name:34s} {res['fresh'][0]:18.0f} {res['cached'][0]:7.0f} {res['out'][0]:6.0f} | "
                  f"{res['fresh'][1]:14.2f} {res['cached'][1]:7.2f} {res['out'][1]:7.2f}", flush=True)
    finally:
        fl.set_cache_limit(old)
    print(f"load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
