"""Embedding losses (row over features, in-batch): fastloss value+gradients
vs PyTorch forward+backward, side by side.

Cases (float32 by default):
  triplet_margin_loss      65536 x 128, p = 2            vs F.triplet_margin_loss
  cosine_embedding_loss    65536 x 128, targets +-1      vs F.cosine_embedding_loss
  contrastive_loss         65536 x 128, targets 0/1      vs the formula in torch ops
                           (F.pairwise_distance; 1/2 y d^2 + 1/2 (1 - y) relu(m - d)^2)
  batch_hard_triplet_loss  N = 4096, D = 128, 512 classes  vs Hermans et al.'s formula in torch
                           ops (distances from the Gram matrix, masked max/min)
  nt_xent_loss             N = 4096, D = 128, SimCLR pairs vs pytorch-metric-learning's NTXent
                           formula in torch ops (normalize, U U^T / tau, masked logsumexp)

    python -m fastloss bench --family embeddings
    python -m fastloss.bench_embeddings --threads 1,2 --repeat 7

What is timed, per call (every gradient of every differentiable operand):
  fastloss      fl.<loss>(..., return_grad=True, n_threads=T): fresh gradient arrays
  fastloss_out  the same with out= preallocated gradient buffers
  torch         grads set to None; loss(...).backward() with torch.set_num_threads(T)
                (tensors share the NumPy memory; torch allocates its intermediates
                and gradients)
The in-batch losses' matrix products run on NumPy's BLAS for fastloss and
on PyTorch's for torch, both limited to T threads (threadpoolctl, when
installed, and torch.set_num_threads).

Two allocator regimes.  By default glibc serves allocations of 32 MiB and
more (one 65536 x 128 float32 array is 32 MiB) with fresh mmap()s and
unmaps them when freed, so every call of a framework that allocates its
outputs page-faults on them ("default" table).  The "warm" table runs the
same cases in a child process whose glibc malloc is told never to use mmap
and never to trim (mallopt M_MMAP_MAX = 0, M_TRIM_THRESHOLD = 2^31 - 1):
freed memory stays in the heap and the next call reuses it, warm, without
page faults -- PyTorch's best case on the CPU, and fastloss's fresh-output
call's too.  %STREAM is fastloss_out's bandwidth (operands read + gradients
written) against a STREAM-style add on the same thread count, measured in
the same process.  The implementations of one configuration are timed
round by round (interleaved), the best round kept.  No speed is asserted.
"""
import ctypes
import os
import subprocess
import sys
import time

import numpy as np

import fastloss as fl
from fastloss import bench as B

ROWS = (65536, 128)
BATCH = (4096, 128)
CASES = ["triplet_margin_loss", "cosine_embedding_loss", "contrastive_loss", "batch_hard_triplet_loss",
         "nt_xent_loss"]
IMPLS = ["fastloss", "fastloss_out", "torch"]


def setup(case, dtype, rows=ROWS, batch=BATCH, seed=0):
    rng = np.random.default_rng(seed)
    if case in ("batch_hard_triplet_loss", "nt_xent_loss"):
        N, D = batch
        E = rng.standard_normal((N, D), dtype=np.float32).astype(dtype, copy=False)
        if case == "nt_xent_loss":
            return {"E": E, "labels": np.arange(N) % (N // 2), "moved": None}
        return {"E": E, "labels": np.arange(N) % max(2, N // 8), "moved": None}
    R, D = rows
    ops = [rng.standard_normal((R, D), dtype=np.float32).astype(dtype, copy=False)
           for _ in range(3 if case == "triplet_margin_loss" else 2)]
    d = {"ops": ops}
    if case == "cosine_embedding_loss":
        d["t"] = np.where(rng.random(R) < 0.5, -1.0, 1.0).astype(dtype)
    elif case == "contrastive_loss":
        d["t"] = (rng.random(R) < 0.5).astype(dtype)
    # bytes moved by the out= call: operands read, gradients written (+ the target)
    d["moved"] = 2 * sum(o.nbytes for o in ops) + (d["t"].nbytes if "t" in d else 0)
    return d


def _blas_limit(n_threads):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a bench extra
        return None
    return threadpool_limits(limits=n_threads, user_api="blas")


def _fastloss_call(case, d, n_threads, out):
    if case == "triplet_margin_loss":
        a, p, n = d["ops"]
        return lambda: fl.triplet_margin_loss(a, p, n, return_grad=True, out=out, n_threads=n_threads)
    if case == "cosine_embedding_loss":
        x1, x2 = d["ops"]
        return lambda: fl.cosine_embedding_loss(x1, x2, d["t"], 0.2, return_grad=True, out=out,
                                                n_threads=n_threads)
    if case == "contrastive_loss":
        x1, x2 = d["ops"]
        return lambda: fl.contrastive_loss(x1, x2, d["t"], 2.0, return_grad=True, out=out, n_threads=n_threads)
    if case == "batch_hard_triplet_loss":
        return lambda: fl.batch_hard_triplet_loss(d["E"], d["labels"], 0.3, return_grad=True, out=out,
                                                  n_threads=n_threads)
    return lambda: fl.nt_xent_loss(d["E"], d["labels"], 0.1, return_grad=True, out=out, n_threads=n_threads)


def _torch_loss(torch, case, tensors, d):
    F = torch.nn.functional
    if case == "triplet_margin_loss":
        return F.triplet_margin_loss(*tensors)
    if case == "cosine_embedding_loss":
        return F.cosine_embedding_loss(*tensors, torch.from_numpy(d["t"]), 0.2)
    if case == "contrastive_loss":
        y = torch.from_numpy(d["t"])
        dist = F.pairwise_distance(*tensors)
        return (0.5 * (y * dist.pow(2) + (1 - y) * (2.0 - dist).clamp_min(0).pow(2))).mean()
    (E,) = tensors
    y = torch.from_numpy(d["labels"])
    same = y[:, None] == y[None, :]
    eye = torch.eye(len(y), dtype=torch.bool)
    if case == "batch_hard_triplet_loss":
        sq = (E * E).sum(1)
        D = (sq[:, None] + sq[None, :] - 2 * E @ E.T).clamp_min(1e-12).sqrt()
        hardest_p = D.masked_fill(~same | eye, -float("inf")).max(1).values
        hardest_n = D.masked_fill(same, float("inf")).min(1).values
        return (0.3 + hardest_p - hardest_n).clamp_min(0).mean()
    U = F.normalize(E, dim=1)
    S = U @ U.T / 0.1
    neg_lse = torch.logsumexp(S.masked_fill(same, -float("inf")), dim=1)
    return (torch.logaddexp(S, neg_lse[:, None]) - S)[same & ~eye].mean()


def prepare(impl, case, d, n_threads):
    """A zero-argument callable doing one timed call, or None if impl is unavailable."""
    if impl == "fastloss":
        return _fastloss_call(case, d, n_threads, None)
    if impl == "fastloss_out":
        if "ops" in d:
            out = tuple(np.empty_like(o) for o in d["ops"])
        else:
            out = np.empty_like(d["E"])
        return _fastloss_call(case, d, n_threads, out)
    if impl == "torch":
        torch = B._torch()
        if torch is None:
            return None
        arrays = d["ops"] if "ops" in d else [d["E"]]
        tensors = [torch.from_numpy(a).requires_grad_(True) for a in arrays]

        def call():
            torch.set_num_threads(n_threads)
            for t in tensors:
                t.grad = None
            _torch_loss(torch, case, tensors, d).backward()
            return tensors[0].grad
        return call
    raise ValueError(impl)




def _warm_malloc():
    """glibc: serve large blocks from the heap and keep freed memory (see the
    module docstring).  Returns whether it took effect."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(-4, 0)) and bool(libc.mallopt(-1, 2**31 - 1))  # M_MMAP_MAX, M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        return False


def run_table(cases, dtypes, threads, repeat, regime, rows=ROWS, batch=BATCH, out=None):
    out = out or sys.stdout
    torch = B._torch()
    stream = {nt: B.stream_bandwidth(nt)["gbs"] for nt in threads}
    print(f"-- {regime} allocator; STREAM add: "
          + ", ".join(f"{stream[nt]:.1f} GB/s on {nt} thread{'s' if nt > 1 else ''}" for nt in threads), file=out)
    print(f"{'loss':24} {'dtype':7} {'size':>11} {'thr':>3} | {'fl fresh':>9} {'fl out=':>9} {'torch':>9} | "
          f"{'torch/fl':>8} {'torch/out':>9} {'%STREAM':>7}", file=out)
    for dt in dtypes:
        for case in cases:
            d = setup(case, np.dtype(dt).type, rows, batch)
            size = f"{rows[0]}x{rows[1]}" if "ops" in d else f"N{batch[0]} D{batch[1]}"
            for nt in threads:
                fns = {k: f for k in IMPLS if (f := prepare(k, case, d, nt)) is not None}
                lim = _blas_limit(nt)
                try:
                    t = B.interleaved(fns, repeat)
                finally:
                    if lim is not None:
                        lim.restore_original_limits()
                ms = {k: t.get(k, float("nan")) * 1e3 for k in IMPLS}
                share = (f"{d['moved'] / t['fastloss_out'] / 1e9 / stream[nt] * 100:6.0f}%"
                         if d["moved"] else f"{'-':>7}")
                print(f"{case:24} {dt:7} {size:>11} {nt:>3} | {ms['fastloss']:9.2f} {ms['fastloss_out']:9.2f} "
                      f"{ms['torch']:9.2f} | {ms['torch'] / ms['fastloss']:8.2f} "
                      f"{ms['torch'] / ms['fastloss_out']:9.2f} {share}", file=out, flush=True)
            del d
    if torch is None:
        print("(PyTorch not installed: no torch column)", file=out)


def main(argv=None):
    import argparse
    import gc

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dtypes", default="float32")
    p.add_argument("--threads", default=",".join(map(str, sorted({1, B.all_threads()}))))
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--rows", default=f"{ROWS[0]}x{ROWS[1]}", help="R x D of the row losses")
    p.add_argument("--batch", default=f"{BATCH[0]}x{BATCH[1]}", help="N x D of the in-batch losses")
    p.add_argument("--regime", choices=["both", "default", "warm"], default="both",
                   help="allocator regime(s): glibc's default, warm (a child process), or both")
    a = p.parse_args(argv)
    cases = [c.strip() for c in a.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        print(f"bench_embeddings: unknown case(s) {', '.join(unknown)}; available: {', '.join(CASES)}",
              file=sys.stderr)
        return 2
    threads = [int(t) for t in a.threads.split(",")]
    rows, batch = (tuple(int(v) for v in s.split("x")) for s in (a.rows, a.batch))
    dtypes = a.dtypes.split(",")
    torch = B._torch()
    if a.regime in ("both", "default"):
        print(f"fastloss {fl.__version__} simd={fl.show_config(file=False)['simd_path']}; "
              f"torch {torch.__version__ if torch else '-'}; load average {os.getloadavg()[0]:.2f} at start")
        gc.disable()
        try:
            run_table(cases, dtypes, threads, a.repeat, "default", rows, batch)
        finally:
            gc.enable()
    if a.regime == "warm":
        if not _warm_malloc():
            print("-- warm allocator: not available (needs glibc's mallopt)")
            return 0
        gc.disable()
        try:
            run_table(cases, dtypes, threads, a.repeat, "warm (freed memory reused)", rows, batch)
        finally:
            gc.enable()
    elif a.regime == "both":
        sys.stdout.flush()
        args = ["--dtypes", a.dtypes, "--threads", a.threads, "--cases", a.cases, "--repeat", str(a.repeat),
                "--rows", a.rows, "--batch", a.batch, "--regime", "warm"]
        subprocess.run([sys.executable, "-m", "fastloss.bench_embeddings", *args], check=False)
    if a.regime != "warm":
        print(f"times in ms (best of {a.repeat} interleaved rounds); load average {os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
