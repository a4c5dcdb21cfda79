"""float64 against float32 cross-entropy at small C, one tree at a time.

    PYTHONPATH=<tree>/src python bench/ce_f64_small_c.py [C]

For C (default 32): N = 1e7 // C rows of N(0, 1) logits, int64 labels; the
best of 9 rounds of 10 calls, in ms, of fl.cross_entropy(x, y,
return_grad=True, out=g) in float32 and float64 at 1 and 2 threads, their
ratio (the `--family dtypes` table's figure), and float64 in L2 (4096 rows,
best of 9 rounds of 400 calls) in ns a row a thread.  Run the trees to
compare alternately, several times: absolute times drift with the
machine's other tenants, float32's (bandwidth-bound) most.
"""
import sys

import numpy as np

import fastloss as fl
from ce_small_c_ab import best  # bench/ is the script's directory: sys.path[0]


def main(argv):
    C = int(argv[0]) if argv else 32
    rng = np.random.default_rng(0)
    n = 10**7 // C
    y = rng.integers(0, C, n)
    t = {}
    for dt in (np.float32, np.float64):
        x = rng.standard_normal((n, C)).astype(dt)
        g = np.empty_like(x)
        for thr in (1, 2):
            t[dt, thr] = best(lambda: fl.cross_entropy(x, y, return_grad=True, out=g, n_threads=thr),
                              rounds=9, number=10)
    xs = rng.standard_normal((4096, C))
    ys = rng.integers(0, C, 4096)
    gs = np.empty_like(xs)
    row = [f"C={C}"]
    for thr in (1, 2):
        l2 = best(lambda: fl.cross_entropy(xs, ys, return_grad=True, out=gs, n_threads=thr),
                  rounds=9, number=400)
        row.append(f"{thr} thr: f32 {t[np.float32, thr]:.2f} f64 {t[np.float64, thr]:.2f} ms "
                   f"ratio {t[np.float64, thr] / t[np.float32, thr]:.2f}, f64 L2 {l2 * 1e6 / 4096 * thr:.1f} ns/row")
    print("  ".join(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
