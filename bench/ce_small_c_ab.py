"""Cross-entropy at small C, one tree at a time (for A/B runs of two builds).

    PYTHONPATH=<tree>/src python bench/ce_small_c_ab.py [C ...]

For each C (default 32): 65536 x C float32 logits N(0, 1), int64 labels;
the best of 15 rounds of 20 calls, in ms, of fl.cross_entropy(x, y,
return_grad=True) into an out= buffer and as the default call, at 1 and 2
threads, and the memory floor np.multiply(x, 1.0, out=g) (one thread: the
same bytes read and written).  Run the two trees alternately, several
times, on a quiet machine: absolute times drift.
"""
import sys
import time

import numpy as np

import fastloss as fl


def best(f, rounds=15, number=20):
    b = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(number):
            f()
        b = min(b, (time.perf_counter() - t0) / number)
    return b * 1e3


def main(argv):
    rng = np.random.default_rng(0)
    for C in [int(a) for a in argv] or [32]:
        x = rng.standard_normal((65536, C)).astype(np.float32)
        y = rng.integers(0, C, 65536)
        g = np.empty_like(x)
        row = [f"C={C:<4d}"]
        for thr in (1, 2):
            row.append(f"{thr} thr out= {best(lambda: fl.cross_entropy(x, y, return_grad=True, out=g, n_threads=thr)):.3f}")
            row.append(f"default {best(lambda: fl.cross_entropy(x, y, return_grad=True, n_threads=thr)):.3f}")
        row.append(f"floor {best(lambda: np.multiply(x, 1.0, out=g)):.3f}")
        print("  ".join(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
