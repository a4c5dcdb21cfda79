"""Time every compiled variant of each pointwise loss, to catch one that lost
its vectorization.

The pointwise driver stamps out a separate loop per (mode, weight, extra
operand, per-element loss) combination, and GCC vectorizes each on its own:
a change to a loss's scalar math can leave one combination scalar (seen
here: pos_weight and value-only focal ran 10x slower than the others after
a change that left the plain value+gradient call faster).  This script
times each combination against the loss's own value+gradient call and flags
any that is more than --limit times slower.

    python bench/bench_variants.py [--n 2e6] [--threads 1] [--limit 2.5] [--dtype float64] [--losses a,b]

Exit status 1 if a variant is flagged.  Speed is never asserted in the test
suite (the machine is shared); run this after touching a kernel.
"""
import argparse
import inspect
import sys
import time

import numpy as np

import fastloss as fl
from fastloss import bench as B


def _best(fn, repeat=7):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _variants(case, data):
    """(label, kwargs) for each combination the driver compiles separately."""
    n = data["args"][0].size
    w = np.random.default_rng(1).random(n).astype(data["args"][0].dtype)
    out = [
        ("value", {}),
        ("value+grad", {"return_grad": True}),
        ("weighted value", {"weight": w}),
        ("weighted value+grad", {"weight": w, "return_grad": True}),
        ("none value+grad", {"reduction": "none", "return_grad": True}),
    ]
    if case.name == "binary_cross_entropy_with_logits":
        pw = np.array([2.0], data["args"][0].dtype)
        out += [("pos_weight value", {"pos_weight": pw}),
                ("pos_weight value+grad", {"pos_weight": pw, "return_grad": True}),
                ("pos_weight weighted value+grad", {"pos_weight": pw, "weight": w, "return_grad": True})]
    if case.name == "sigmoid_focal_loss":
        # gamma != 2 is its own kernel (exp and log of m): its own baseline
        for lab, kw in list(out):
            out.append((f"gamma=1.5 {lab}", {**kw, "gamma": 1.5}))
        out.append(("gamma=0 value+grad", {"gamma": 0.0, "return_grad": True}))
    if case.name == "tweedie_loss":
        # power 0 and 1 are kernels of their own (2 is the Gamma loss's): each its own baseline
        for lab, kw in list(out):
            out += [(f"power=0 {lab}", {**kw, "power": 0.0}), (f"power=1 {lab}", {**kw, "power": 1.0})]
    return out


def _group(label):
    first = label.split(" ")[0]
    return first if "=" in first else ""


def _is_plain_loss(fn):
    """A loss function of (input, target, ...): the pointwise cases this script can vary
    (not the "fn.grad_hess" rows, nor fastloss.trimmed, whose first argument is a loss)."""
    try:
        return next(iter(inspect.signature(fn).parameters)) == "input"
    except (TypeError, ValueError, StopIteration):
        return False


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=float, default=2e6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit", type=float, default=2.5,
                    help="flag a variant slower than this many times the loss's value+grad call")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--losses", help="only these registry cases (comma-separated)")
    args = ap.parse_args(argv)
    only = set(args.losses.split(",")) if args.losses else None
    n, dtype = int(args.n), np.dtype(args.dtype)
    print(f"N={n:.0e} {dtype.name} threads={args.threads}; ratio = variant / the same kernel's value+grad "
          f"(flagged above {args.limit}x)")
    flagged = []
    for case in B.pointwise_cases():
        data = case.setup(n, dtype, np.random.default_rng(0))
        fn = getattr(fl, case.name, None)
        if fn is None or not _is_plain_loss(fn) or (only is not None and case.name not in only):
            continue
        base_kw = dict(data.get("params", {}))
        times = {}
        for label, kw in _variants(case, data):
            call_kw = {**base_kw, **kw, "n_threads": args.threads}
            fn(*data["args"], **call_kw)  # warm up (and fail loudly on a bad combination)
            times[label] = _best(lambda: fn(*data["args"], **call_kw))
        cells = []
        for label, t in times.items():
            g = _group(label)
            base = times[(g + " " if g else "") + "value+grad"] if g != "gamma=0" else times["gamma=1.5 value+grad"]
            r = t / base
            mark = " !" if r > args.limit else ""
            if mark:
                flagged.append(f"{case.name}: {label} {r:.1f}x")
            cells.append(f"{label} {t * 1e3:.2f} ms ({r:.2f}x){mark}")
        print(f"{case.name}\n    " + "\n    ".join(cells))
    if flagged:
        print("\nFLAGGED (probably not vectorized):\n  " + "\n  ".join(flagged))
        return 1
    print("\nno variant flagged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
