"""Cross-entropy (row over classes): fastloss value+gradient vs PyTorch
forward+backward vs scikit-learn's HalfMultinomialLoss, side by side.

Shapes (N, C): 8192 x 1000 (classification), 65536 x 32 (many small rows)
and 2048 x 32000 (a language-model head); float32 and float64; one thread
and all threads.

    python -m fastloss bench                 # after the pointwise tables
    python -m fastloss bench --family rows --dtypes float32 --repeat 7
    pytest bench/test_bench_rows.py --benchmark-enable

The script form interleaves the implementations of one configuration
round by round (so a busy moment on a shared machine hits them alike) and
prints each rival's time divided by fastloss's: the figure that matters.

What is timed, per call:
  fastloss       fl.cross_entropy(x, y, return_grad=True, n_threads=T): mean value + a gradient,
                 with fastloss's block cache off (each gradient newly mapped: "fresh")
  fastloss_cached the same default call with the block cache on (the library's default)
  fastloss_out   the same with out= a preallocated gradient buffer
  torch          x.grad = None; F.cross_entropy(x, y).backward() with torch.set_num_threads(T)
                 (tensors share the NumPy memory; the gradient is allocated by torch)
  sklearn        HalfMultinomialLoss(n_classes=C).loss_gradient(y, x, loss_out=, gradient_out=,
                 n_threads=T): per-sample loss and gradient into preallocated buffers (no mean)
No speed is asserted here.
"""
import sys
import time

import numpy as np

import fastloss as fl
from fastloss import bench as B

SHAPES = [(8192, 1000), (65536, 32), (2048, 32000)]
DTYPES = [np.float32, np.float64]
IMPLS = ["fastloss", "fastloss_cached", "fastloss_out", "torch", "sklearn"]


def setup(N, C, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((N, C), dtype=np.float32) * 2).astype(dtype, copy=False)
    y = rng.integers(0, C, N)
    return x, y


def prepare(impl, x, y, n_threads):
    """A zero-argument callable doing one timed call, or None if impl is unavailable."""
    N, C = x.shape
    if impl == "fastloss":
        return B.fresh_outputs(lambda: fl.cross_entropy(x, y, return_grad=True, n_threads=n_threads))
    if impl == "fastloss_cached":
        return lambda: fl.cross_entropy(x, y, return_grad=True, n_threads=n_threads)
    if impl == "fastloss_out":
        g = np.empty_like(x)
        return lambda: fl.cross_entropy(x, y, return_grad=True, out=g, n_threads=n_threads)
    if impl == "torch":
        torch = B._torch()
        if torch is None:
            return None
        F = torch.nn.functional
        xt = torch.from_numpy(x).requires_grad_(True)
        yt = torch.from_numpy(y)

        def call():
            torch.set_num_threads(n_threads)
            xt.grad = None
            F.cross_entropy(xt, yt).backward()
            return xt.grad
        return call
    if impl == "sklearn":
        try:
            from sklearn._loss.loss import HalfMultinomialLoss
        except ImportError:
            return None
        loss = HalfMultinomialLoss(n_classes=C)
        yf = y.astype(x.dtype)
        lo, go = np.empty(N, x.dtype), np.empty_like(x)
        return lambda: loss.loss_gradient(yf, x, loss_out=lo, gradient_out=go, n_threads=n_threads)
    raise ValueError(impl)


def _thread_counts():
    return sorted({1, B.all_threads()})


# ------------------------------------------------------------------ the side-by-side script



def main(argv=None):
    import argparse
    import gc
    import os

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--threads", default=",".join(map(str, _thread_counts())))
    p.add_argument("--shapes", default=",".join(f"{n}x{c}" for n, c in SHAPES))
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args(argv)
    shapes = [tuple(int(v) for v in s.split("x")) for s in a.shapes.split(",")]
    torch = B._torch()
    print(f"fastloss {fl.__version__} simd={fl.show_config(file=False)['simd_path']}; "
          f"torch {torch.__version__ if torch else '-'}; load average {os.getloadavg()[0]:.2f} at start")
    print(f"{'dtype':8} {'shape':>11} {'thr':>3} | {'fl fresh':>9} {'fl cached':>9} {'fl out=':>9} {'torch':>9} "
          f"{'sklearn':>9} | {'torch/fl':>8} {'sk/fl':>6} {'torch/out':>9} {'sk/out':>6}")
    gc.disable()
    try:
        for dt in a.dtypes.split(","):
            for N, C in shapes:
                x, y = setup(N, C, np.dtype(dt).type)
                for nt in (int(t) for t in a.threads.split(",")):
                    fns = {k: f for k in IMPLS if (f := prepare(k, x, y, nt)) is not None}
                    t = B.interleaved(fns, a.repeat)
                    ms = {k: t.get(k, float("nan")) * 1e3 for k in IMPLS}
                    r = lambda k, base: ms[k] / ms[base]  # noqa: E731
                    print(f"{dt:8} {N:>5}x{C:<5} {nt:>3} | {ms['fastloss']:9.2f} {ms['fastloss_cached']:9.2f} "
                          f"{ms['fastloss_out']:9.2f} {ms['torch']:9.2f} {ms['sklearn']:9.2f} | "
                          f"{r('torch', 'fastloss_cached'):8.2f} {r('sklearn', 'fastloss_cached'):6.2f} "
                          f"{r('torch', 'fastloss_out'):9.2f} {r('sklearn', 'fastloss_out'):6.2f}", flush=True)
                del x, y, fns
    finally:
        gc.enable()
    print(f"times in ms (best of {a.repeat} interleaved rounds); load average {os.getloadavg()[0]:.2f} at end")
    print("fl fresh: the default call with fastloss's block cache off (a newly mapped gradient each call); "
          "fl cached: the same call with the cache on (the default); X/fl: X's time / fl cached")


if __name__ == "__main__":
    sys.exit(main())
