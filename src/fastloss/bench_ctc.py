"""CTC (sequence): fastloss value+gradient vs PyTorch forward+backward,
side by side.

Shapes (T, N, C, S) -- time steps, batch, classes, target length:
100 x 32 x 30 x 20 (small), 500 x 32 x 100 x 100 (speech), and
2000 x 1 x 100 x 400 (one long sequence: N = 1, where fastloss splits the
sample over two threads); float32; one thread and all threads.  Every
sample has the full input and target length; labels are uniform over the
non-blank classes.

    python -m fastloss bench --family ctc
    python -m fastloss bench --family ctc --threads 1,2 --repeat 9
    python -m fastloss.bench_ctc --threads 1 --cpu-time      # one thread on a loaded machine

The implementations of one configuration are timed round by round (so a
busy moment on a shared machine hits them alike), and each rival's time
divided by fastloss's is printed: the figure that matters.  For N = 1 the
line under the table gives fastloss's 1-thread time over its 2-thread time.

What is timed, per call:
  fastloss       fl.ctc_loss(lp, targets, il, tl, return_grad=True, n_threads=T): mean value + a fresh gradient
  fastloss_out   the same with out= a preallocated gradient buffer
  torch          lp.grad = None; F.ctc_loss(lp, targets, il, tl).backward() with torch.set_num_threads(T)
                 (lp a leaf tensor sharing the NumPy memory)
  fl_logits      fl.ctc_loss(z, ..., from_logits=True, return_grad=True): log_softmax fused, gradient at z
  torch_logits   z.grad = None; F.ctc_loss(z.log_softmax(-1), ...).backward(): the same at the logits
No speed is asserted here.
"""
import sys
import time

import numpy as np

import fastloss as fl
from fastloss import bench as B

SHAPES = [(100, 32, 30, 20), (500, 32, 100, 100), (2000, 1, 100, 400)]
DTYPES = [np.float32]
IMPLS = ["fastloss", "fastloss_out", "torch", "fl_logits", "torch_logits"]


def setup(T, N, C, S, dtype, seed=0):
    """(logits, log_probs, targets, input_lengths, target_lengths)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((T, N, C), dtype=np.float32) * 2
    m = z.max(-1, keepdims=True)
    lp = z - m - np.log(np.exp(z - m).sum(-1, keepdims=True))
    tg = rng.integers(1, C, (N, S))
    return (z.astype(dtype), lp.astype(dtype), tg, np.full(N, T, np.int64), np.full(N, S, np.int64))


def prepare(impl, data, n_threads):
    """A zero-argument callable doing one timed call, or None if impl is unavailable."""
    z, lp, tg, il, tl = data
    if impl == "fastloss":
        return lambda: fl.ctc_loss(lp, tg, il, tl, return_grad=True, n_threads=n_threads)
    if impl == "fastloss_out":
        g = np.empty_like(lp)
        return lambda: fl.ctc_loss(lp, tg, il, tl, return_grad=True, out=g, n_threads=n_threads)
    if impl == "fl_logits":
        return lambda: fl.ctc_loss(z, tg, il, tl, from_logits=True, return_grad=True, n_threads=n_threads)
    torch = B._torch()
    if torch is None:
        return None
    F = torch.nn.functional
    tt, ilt, tlt = torch.from_numpy(tg), torch.from_numpy(il), torch.from_numpy(tl)
    if impl == "torch":
        x = torch.from_numpy(lp).requires_grad_(True)

        def call():
            torch.set_num_threads(n_threads)
            x.grad = None
            F.ctc_loss(x, tt, ilt, tlt).backward()
            return x.grad
        return call
    if impl == "torch_logits":
        x = torch.from_numpy(z).requires_grad_(True)

        def call():
            torch.set_num_threads(n_threads)
            x.grad = None
            F.ctc_loss(x.log_softmax(-1), tt, ilt, tlt).backward()
            return x.grad
        return call
    raise ValueError(impl)


def _thread_counts():
    return sorted({1, B.all_threads()})




def _shape(s):
    vals = tuple(int(v) for v in s.lower().split("x"))
    if len(vals) != 4:
        raise SystemExit(f"bench_ctc: a shape is TxNxCxS, got {s!r}")
    return vals


def main(argv=None):
    import argparse
    import gc
    import os

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dtypes", default="float32")
    p.add_argument("--threads", default=",".join(map(str, _thread_counts())))
    p.add_argument("--shapes", default=",".join("x".join(map(str, s)) for s in SHAPES),
                   help="TxNxCxS,... (default %(default)s)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--cpu-time", action="store_true",
                   help="time with the process's CPU time instead of the wall clock (on a loaded machine; "
                        "meaningful for one thread only, as it adds up every thread's time)")
    a = p.parse_args(argv)
    clock = time.process_time if a.cpu_time else time.perf_counter
    shapes = [_shape(s) for s in a.shapes.split(",")]
    threads = [B.all_threads() if t.strip() == "all" else int(t) for t in a.threads.split(",")]
    torch = B._torch()
    print(f"fastloss {fl.__version__} simd={fl.show_config(file=False)['simd_path']}; "
          f"torch {torch.__version__ if torch else '-'}; load average {os.getloadavg()[0]:.2f} at start")
    print(f"{'dtype':8} {'T x N x C x S':>18} {'thr':>3} | {'fl fresh':>9} {'fl out=':>9} {'torch':>9} | "
          f"{'torch/fl':>8} {'torch/out':>9} | {'fl logits':>9} {'torch lsm':>9} {'ratio':>6}")
    speedup = {}
    gc.disable()
    try:
        for dt in a.dtypes.split(","):
            for T, N, C, S in shapes:
                data = setup(T, N, C, S, np.dtype(dt).type)
                for nt in threads:
                    fns = {k: f for k in IMPLS if (f := prepare(k, data, nt)) is not None}
                    t = B.interleaved(fns, a.repeat, clock=clock)
                    ms = {k: t.get(k, float("nan")) * 1e3 for k in IMPLS}
                    speedup.setdefault((dt, T, N, C, S), {})[nt] = ms["fastloss_out"]
                    shape = f"{T}x{N}x{C}x{S}"
                    print(f"{dt:8} {shape:>18} {nt:>3} | {ms['fastloss']:9.2f} {ms['fastloss_out']:9.2f} "
                          f"{ms['torch']:9.2f} | {ms['torch'] / ms['fastloss']:8.2f} "
                          f"{ms['torch'] / ms['fastloss_out']:9.2f} | {ms['fl_logits']:9.2f} "
                          f"{ms['torch_logits']:9.2f} {ms['torch_logits'] / ms['fl_logits']:6.2f}", flush=True)
                del data, fns
    finally:
        gc.enable()
    for (dt, T, N, C, S), by in speedup.items():
        if 1 in by and len(by) > 1:
            for nt in sorted(by):
                if nt > 1:
                    print(f"{dt} {T}x{N}x{C}x{S}: fastloss (out=) {nt} threads vs 1: {by[1] / by[nt]:.2f}x")
    print(f"times in ms ({'CPU time' if a.cpu_time else 'wall clock'}, best of {a.repeat} interleaved rounds); "
          f"load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    sys.exit(main())
