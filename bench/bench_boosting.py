"""Time per boosting round: fastloss's objective against the same objective in NumPy.

A standalone script (not a pytest suite):

    python bench/bench_boosting.py                       # both libraries, all cases (~2-4 min on 2 cores)
    python bench/bench_boosting.py --quick               # 1e5 binary rows, 2e4 x 10 multiclass, 6 rounds
    python bench/bench_boosting.py --libs xgboost --cases focal --rows 1e6 --rounds 20 --threads 2

Cases (``--cases``):

* ``logistic``: binary, ``--rows`` rows (default 1e6); fastloss
  ``BCEWithLogitsLoss`` against ``p = sigmoid(x); g = p - y; h = p (1 - p)``
  in NumPy, and the library's built-in logistic objective;
* ``focal``: the same data, fastloss ``SigmoidFocalLoss(alpha=0.25,
  gamma=2)`` against the closed-form focal gradient and Hessian in NumPy
  (torchvision's formula; the library has no built-in focal loss);
* ``softmax``: ``--mc-rows`` rows (default 1e5) of ``--classes`` classes
  (default 10); fastloss ``CrossEntropyLoss`` against the softmax gradient
  ``p - onehot`` and Hessian ``p (1 - p)`` in NumPy, and the built-in
  softmax objective.

Each NumPy objective is checked against fastloss's on the first call (same
gradient and Hessian, including the 1e-6 Hessian floor), so both sides
compute the same thing.  For each (library, case, objective) the model is
trained for ``--rounds`` rounds on a Dataset/DMatrix built once; the time
of each round is taken by a callback and the median over rounds 2..R is
reported (round 1 carries one-time setup).  The objective alone is also
timed (best of 7 calls on the margins of the library's dtype: float32 for
XGBoost, float64 for LightGBM).  The library, fastloss and NumPy all use
``--threads`` threads (NumPy's elementwise code is single-threaded anyway).

Run it on an idle machine: the load average is printed at the start and the
end.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

import fastloss as fl

MIN_HESSIAN = 1e-6


# ------------------------------------------------------------------ NumPy objectives (what a user writes)

def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free


def np_logistic(x, y):
    p = _sigmoid(x)
    g = p - y
    h = np.maximum(p * (1.0 - p), MIN_HESSIAN)
    return g, h


def np_focal(x, y, alpha=0.25, gamma=2.0):
    """torchvision's sigmoid focal loss, at * ce * (1 - p_t)^gamma: gradient and Hessian in closed form."""
    p = _sigmoid(x)
    q = 1.0 - p
    s = p * q
    ce = y * np.logaddexp(0.0, -x) + (1.0 - y) * np.logaddexp(0.0, x)
    m = p * (1.0 - y) + q * y          # 1 - p_t
    M = m ** gamma
    r = np.divide(s, m, out=np.zeros_like(s), where=m > 0)
    u = 1.0 - 2.0 * y
    Mp = gamma * M * r * u
    Mpp = gamma * (gamma - 1.0) * M * r * r * u * u + gamma * M * r * u * (q - p)
    at = alpha * y + (1.0 - alpha) * (1.0 - y)
    g = at * ((p - y) * M + Mp * ce)
    h = np.maximum(at * (s * M + 2.0 * (p - y) * Mp + Mpp * ce), MIN_HESSIAN)
    return g, h


def np_softmax(x, y):
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    p = e / e.sum(axis=1, keepdims=True)
    g = p.copy()
    g[np.arange(len(y)), y.astype(np.int64)] -= 1.0
    h = np.maximum(p * (1.0 - p), MIN_HESSIAN)
    return g, h


CASES = {
    # name: (fastloss loss, numpy objective, multiclass)
    "logistic": (lambda: fl.BCEWithLogitsLoss(), np_logistic, False),
    "focal": (lambda: fl.SigmoidFocalLoss(alpha=0.25, gamma=2.0), np_focal, False),
    "softmax": (lambda: fl.CrossEntropyLoss(), np_softmax, True),
}
BUILTIN = {
    "xgboost": {"logistic": {"objective": "binary:logistic", "base_score": 0.5},
                "softmax": {"objective": "multi:softprob", "base_score": 0.0}},
    "lightgbm": {"logistic": {"objective": "binary"}, "softmax": {"objective": "multiclass"}},
}


# ------------------------------------------------------------------ data

def make_data(n, n_features, n_classes, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)).astype(np.float32)
    score = X[:, 0] + 0.5 * X[:, 1] * X[:, 2] + 0.5 * rng.normal(size=n)
    if n_classes == 2:
        y = (score > 0.8).astype(np.float32)  # imbalanced, as focal loss is meant for
    else:
        y = np.digitize(score, np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1])).astype(np.float32)
    return X, y


# ------------------------------------------------------------------ timing

def _best_call(fn, *args, repeat=7):
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args)
        ts.append(time.perf_counter() - t)
    return min(ts)


def _check(fast, slow, margin, y):
    g1, h1 = fast(margin, y)
    g2, h2 = slow(margin, y)
    tol = 2e-5 if margin.dtype == np.float32 else 1e-9
    for a, b, nm in ((g1, g2, "grad"), (h1, h2, "hess")):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if not np.allclose(a, b, rtol=tol, atol=tol * max(1.0, np.abs(b).max())):
            raise AssertionError(f"NumPy and fastloss objectives differ ({nm}): max |diff| {np.abs(a - b).max()}")


class XGBRunner:
    name = "xgboost"

    def __init__(self, X, y, n_classes, threads, depth):
        import xgboost as xgb

        self.xgb, self.n_classes = xgb, n_classes
        self.d = xgb.QuantileDMatrix(X, label=y, max_bin=256)
        self.params = {"nthread": threads, "max_depth": depth, "eta": 0.3, "tree_method": "hist",
                       "max_bin": 256, "disable_default_eval_metric": True}
        if n_classes > 2:
            self.params["num_class"] = n_classes
        self.y = y

    def margins(self):
        shape = (len(self.y), self.n_classes) if self.n_classes > 2 else (len(self.y),)
        return np.random.default_rng(1).normal(size=shape).astype(np.float32)  # XGBoost's dtype

    def fastloss_obj(self, loss):
        import fastloss.xgboost as flx
        return flx.objective(loss)

    def numpy_obj(self, fn):
        def obj(predt, dtrain):
            return fn(predt, dtrain.get_label())
        return obj

    def train(self, rounds, obj=None, builtin=None):
        times = []

        class Clock(self.xgb.callback.TrainingCallback):
            def after_iteration(self, model, epoch, evals_log):
                times.append(time.perf_counter())
                return False

        params = dict(self.params, **(builtin or {"base_score": 0.0}))
        t0 = time.perf_counter()
        self.xgb.train(params, self.d, rounds, obj=obj, callbacks=[Clock()])
        return np.diff([t0] + times)


class LGBRunner:
    name = "lightgbm"

    def __init__(self, X, y, n_classes, threads, depth):
        import lightgbm as lgb

        self.lgb, self.n_classes, self.y = lgb, n_classes, y
        self.params = {"num_threads": threads, "num_leaves": 2 ** depth, "max_depth": depth,
                       "learning_rate": 0.3, "verbose": -1, "metric": "None", "max_bin": 255,
                       "force_col_wise": True}
        if n_classes > 2:
            self.params["num_class"] = n_classes
        self.ds = lgb.Dataset(X, label=y, params={"max_bin": 255, "verbose": -1}, free_raw_data=False)
        self.ds.construct()

    def margins(self):
        shape = (len(self.y), self.n_classes) if self.n_classes > 2 else (len(self.y),)
        return np.random.default_rng(1).normal(size=shape)  # LightGBM's dtype: float64

    def fastloss_obj(self, loss):
        import fastloss.lightgbm as fll
        return fll.objective(loss)

    def numpy_obj(self, fn):
        def obj(preds, train_set):
            return fn(preds, train_set.get_label())
        return obj

    def train(self, rounds, obj=None, builtin=None):
        times = []

        def clock(env):
            times.append(time.perf_counter())

        params = dict(self.params)
        params.update(builtin if builtin else {"objective": obj})
        t0 = time.perf_counter()
        self.lgb.train(params, self.ds, rounds, callbacks=[clock])
        return np.diff([t0] + times)


def run_case(runner, case, rounds):
    make_loss, np_fn, _ = CASES[case]
    fast = runner.fastloss_obj(make_loss())
    slow = runner.numpy_obj(np_fn)
    m = runner.margins()
    y = runner.y
    _check(lambda a, b: fast(b, a), np_fn, m, y)  # scikit-learn call form: (y_true, y_pred)
    row = {"lib": runner.name, "case": case, "shape": "x".join(str(s) for s in m.shape)}
    row["call_numpy"] = _best_call(np_fn, m, y)
    row["call_fastloss"] = _best_call(lambda a, b: fast(b, a), m, y)
    b = BUILTIN[runner.name].get(case)
    row["round_builtin"] = statistics.median(runner.train(rounds, builtin=b)[1:]) if b else float("nan")
    row["round_numpy"] = statistics.median(runner.train(rounds, obj=slow)[1:])
    row["round_fastloss"] = statistics.median(runner.train(rounds, obj=fast)[1:])
    return row


def fmt_ms(v):
    return "-" if v != v else f"{1e3 * v:9.2f}"


def print_table(rows, file=sys.stdout):
    hdr = ("library", "case", "margin", "builtin ms/rnd", "numpy ms/rnd", "fastloss ms/rnd", "round x",
           "numpy obj ms", "fastloss obj ms", "obj x")
    lines = [hdr]
    for r in rows:
        lines.append((r["lib"], r["case"], r["shape"], fmt_ms(r["round_builtin"]), fmt_ms(r["round_numpy"]),
                      fmt_ms(r["round_fastloss"]), f"{r['round_numpy'] / r['round_fastloss']:.2f}",
                      fmt_ms(r["call_numpy"]), fmt_ms(r["call_fastloss"]),
                      f"{r['call_numpy'] / r['call_fastloss']:.1f}"))
    widths = [max(len(str(l[i])) for l in lines) for i in range(len(hdr))]
    for i, l in enumerate(lines):
        print("  ".join(str(c).strip().rjust(w) if j >= 3 else str(c).ljust(w)
                        for j, (c, w) in enumerate(zip(l, widths))), file=file)
        if i == 0:
            print("  ".join("-" * w for w in widths), file=file)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--libs", default="xgboost,lightgbm")
    ap.add_argument("--cases", default="logistic,focal,softmax")
    ap.add_argument("--rows", type=float, default=1e6, help="rows of the binary cases")
    ap.add_argument("--mc-rows", type=float, default=1e5, help="rows of the multiclass case")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--features", type=int, default=10)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--quick", action="store_true", help="1e5 binary rows, 2e4 multiclass rows, 6 rounds")
    a = ap.parse_args(argv)
    if a.quick:
        a.rows, a.mc_rows, a.rounds = 1e5, 2e4, 6
    fl.set_num_threads(a.threads)
    print(f"fastloss {fl.__version__}, numpy {np.__version__}, threads {a.threads}, rounds {a.rounds} "
          f"(median of rounds 2..{a.rounds}), depth {a.depth}, load average {os.getloadavg()[0]:.2f}")
    runners = {"xgboost": XGBRunner, "lightgbm": LGBRunner}
    cases = [c for c in a.cases.split(",") if c]
    rows = []
    data = {}
    for lib in [s for s in a.libs.split(",") if s]:
        try:
            mod = __import__(lib)
        except ImportError:
            print(f"{lib}: not installed, skipped", file=sys.stderr)
            continue
        print(f"{lib} {mod.__version__}", file=sys.stderr)
        for multiclass in (False, True):
            todo = [c for c in cases if CASES[c][2] == multiclass]
            if not todo:
                continue
            n, k = (int(a.mc_rows), a.classes) if multiclass else (int(a.rows), 2)
            if (n, k) not in data:
                data[(n, k)] = make_data(n, a.features, k, seed=0)
            runner = runners[lib](*data[(n, k)], k, a.threads, a.depth)
            for case in todo:
                t = time.perf_counter()
                rows.append(run_case(runner, case, a.rounds))
                print(f"  {lib} {case}: {time.perf_counter() - t:.1f} s", file=sys.stderr)
    print()
    print_table(rows)
    print(f"\nround x = numpy ms/round / fastloss ms/round; obj x = the objective call alone. "
          f"load average at the end {os.getloadavg()[0]:.2f}")
    return rows


if __name__ == "__main__":
    main()
