"""Issue 18's figures: float64 against float32, large logits against
ordinary ones, and the Python overhead of small calls.

    python -m fastloss bench --family dtypes      # float64 / float32, N(0,1) / N(0,30) logits
    python -m fastloss bench --family small       # small calls against np.empty_like
    python -m fastloss.bench_speed --help

dtypes: the fused value + gradient call (out= a preallocated buffer, so
allocation is not timed; "(default)": the default call, a fresh gradient
from the block cache) of BCE with logits, sigmoid focal, soft margin
and cross-entropy (N / 32 rows of 32 classes, and N / 1000 rows of 1000)
at N elements in float32 and float64, interleaved round by round; the
figure is float64's time / float32's (bandwidth alone would make it 2).
The same calls on float32 logits drawn from N(0, 30) instead of N(0, 1)
show whether large logits are slower (subnormal intermediates cost a
microcode assist each).

small: ``fl.mse_loss(x, y, return_grad=True)`` and ``fl.cross_entropy(x,
y, return_grad=True)`` (N / 10 rows of 10 classes; N rows too) on float32,
the default call and the call with ``out=`` a preallocated buffer, against a
bare ``np.empty_like(x)`` (the allocation every call makes anyway): the
difference is fastloss's overhead per call (validation, dispatch, the
kernel on N elements).  No speed is asserted here.
"""
import argparse
import os
import sys
import timeit

import numpy as np

import fastloss as fl
from fastloss import bench as B

LOGISTIC = ("binary_cross_entropy_with_logits", "sigmoid_focal_loss", "soft_margin_loss")


def _calls(n, dtype, scale, n_threads, rng):
    """{name: zero-argument call} of the dtype table at n elements."""
    z = rng.standard_normal(n)
    x = (z * scale).astype(dtype)
    t = (rng.random(n) < 0.5).astype(dtype)
    pm = (2 * t - 1).astype(dtype)
    g = np.empty_like(x)
    calls = {}
    for name in LOGISTIC:
        f = getattr(fl, name)
        tgt = pm if name == "soft_margin_loss" else t
        calls[name] = (lambda f=f, tgt=tgt: f(x, tgt, return_grad=True, out=g, n_threads=n_threads))
        calls[name + " (default)"] = (lambda f=f, tgt=tgt: f(x, tgt, return_grad=True, n_threads=n_threads))
    for C in (32, 1000):
        rows = n // C
        xr = x[:rows * C].reshape(rows, C)
        yr = rng.integers(0, C, rows)
        gr = np.empty_like(xr)
        calls[f"cross_entropy ({C} classes)"] = (
            lambda xr=xr, yr=yr, gr=gr: fl.cross_entropy(xr, yr, return_grad=True, out=gr, n_threads=n_threads))
        calls[f"cross_entropy ({C} classes) (default)"] = (
            lambda xr=xr, yr=yr: fl.cross_entropy(xr, yr, return_grad=True, n_threads=n_threads))
    return calls


def dtypes_table(n=10**7, threads=(1,), repeat=5, out=sys.stdout):
    """Print float64 / float32 and N(0,30) / N(0,1) time ratios (best of ``repeat`` interleaved rounds)."""
    print(f"N = {n:.0e}, value + gradient into out=; load average {os.getloadavg()[0]:.2f} at start", file=out)
    print(f"{'loss':34} {'thr':>3} | {'f32 ms':>8} {'f64 ms':>8} {'f64/f32':>7} | "
          f"{'f32 N(0,30) ms':>14} {'N(0,30)/N(0,1)':>14}", file=out)
    for nt in threads:
        rng = np.random.default_rng(0)
        sets = {(dt, sc): _calls(n, dt, sc, nt, rng)
                for dt, sc in ((np.float32, 1.0), (np.float64, 1.0), (np.float32, 30.0))}
        names = list(sets[(np.float32, 1.0)])
        for name in names:
            fns = {k: v[name] for k, v in sets.items()}
            t = B.interleaved(fns, repeat)
            a, b, c = t[(np.float32, 1.0)], t[(np.float64, 1.0)], t[(np.float32, 30.0)]
            print(f"{name:34} {nt:>3} | {a * 1e3:8.2f} {b * 1e3:8.2f} {b / a:7.2f} | {c * 1e3:14.2f} {c / a:14.2f}",
                  file=out, flush=True)
        del sets
    print(f"load average {os.getloadavg()[0]:.2f} at end", file=out)


def small_table(sizes=(100, 1000), repeat=7, out=sys.stdout):
    """Print the per-call time of small float32 calls and their overhead over np.empty_like."""
    rng = np.random.default_rng(0)
    print(f"float32, default threads; best of {repeat} repeats; load average {os.getloadavg()[0]:.2f}", file=out)
    print(f"{'call':44} {'N':>5} | {'us/call':>8} {'empty_like us':>13} {'overhead us':>11}", file=out)
    for n in sizes:
        x = rng.standard_normal(n).astype(np.float32)
        y = rng.standard_normal(n).astype(np.float32)
        xc = rng.standard_normal((n // 10, 10)).astype(np.float32)
        yc = rng.integers(0, 10, n // 10)
        xr = rng.standard_normal((n, 10)).astype(np.float32)   # N rows
        yr = rng.integers(0, 10, n)
        env = dict(fl=fl, np=np, x=x, y=y, xc=xc, yc=yc, xr=xr, yr=yr, g=np.empty_like(x), gc=np.empty_like(xc),
                   gr=np.empty_like(xr))
        for label, stmt, base in (("mse_loss(x, y, return_grad=True)", "fl.mse_loss(x, y, return_grad=True)",
                                   "np.empty_like(x)"),
                                  ("mse_loss(..., out=g)", "fl.mse_loss(x, y, return_grad=True, out=g)",
                                   "np.empty_like(x)"),
                                  ("cross_entropy(x, y, return_grad=True), C=10",
                                   "fl.cross_entropy(xc, yc, return_grad=True)", "np.empty_like(xc)"),
                                  ("cross_entropy(..., out=g), C=10",
                                   "fl.cross_entropy(xc, yc, return_grad=True, out=gc)", "np.empty_like(xc)"),
                                  ("cross_entropy, N rows of C=10",
                                   "fl.cross_entropy(xr, yr, return_grad=True)", "np.empty_like(xr)"),
                                  ("cross_entropy(..., out=g), N rows of C=10",
                                   "fl.cross_entropy(xr, yr, return_grad=True, out=gr)", "np.empty_like(xr)")):
            number = 20000
            tb = min(timeit.repeat(base, globals=env, number=number, repeat=repeat)) / number
            tc = min(timeit.repeat(stmt, globals=env, number=number, repeat=repeat)) / number
            print(f"{label:44} {n:>5} | {tc * 1e6:8.2f} {tb * 1e6:13.2f} {(tc - tb) * 1e6:11.2f}", file=out, flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--what", default="dtypes,small", help="dtypes, small or both")
    p.add_argument("--n", type=float, default=1e7, help="elements of the dtypes table")
    p.add_argument("--threads", default="1", help="thread counts of the dtypes table")
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args(argv)
    what = [w.strip() for w in a.what.split(",")]
    if "dtypes" in what:
        dtypes_table(int(a.n), [int(t) for t in a.threads.split(",")], a.repeat)
    if "small" in what:
        small_table(repeat=max(a.repeat, 3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
