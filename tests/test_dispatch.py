"""Run-time CPU dispatch: the x86-64-v3 (AVX2, FMA) path and the baseline path.

The kernels are compiled twice (baseline and x86-64-v3) and the path is
chosen once, at import; ``FASTLOSS_FORCE_BASELINE=1`` forces the baseline.
These tests run a set of losses in a subprocess with the baseline forced and
compare them with this process's default path: values, gradients, Hessians
and the mean/sum reductions, within float tolerance (float32 ~1e-6
relative, float64 ~1e-12).

This file doubles as the subprocess: ``python test_dispatch.py OUT.npz``
writes the results and prints the child's configuration as JSON
(``--config`` instead of a path: only the configuration).
"""
import json
import os
import platform
import subprocess
import sys

import numpy as np

import fastloss as fl

BASELINE = "baseline"
V3 = "x86-64-v3 (AVX2, FMA)"
V3_FLAGS = ("avx2", "fma", "bmi2", "f16c", "movbe")  # what fl_select_isa() asks the CPU for

# Sizes: one below the parallel threshold, one above it; both odd so that
# every SIMD loop has a tail.
SIZES = (1_003, 100_003)


def _cases(rng, n, dtype):
    """(label, callable) pairs; each callable returns a tuple of results."""
    f = lambda a: np.asarray(a, dtype=dtype)  # noqa: E731
    x = f(rng.normal(scale=2.0, size=n))
    t = f(rng.normal(scale=2.0, size=n))
    w = f(rng.random(n) + 0.5)
    b = f(rng.random(n) < 0.4)                                 # {0, 1} targets
    s = f(np.where(rng.random(n) < 0.5, -1.0, 1.0))            # {-1, 1} targets
    p = f(np.clip(rng.random(n), 1e-4, 1 - 1e-4))              # probabilities
    lam = f(rng.random(n) * 3 + 0.05)                          # positive rates
    cnt = f(rng.poisson(3.0, size=n))                          # counts
    var = f(rng.random(n) * 2 + 0.01)
    rows, cols = n // 7, 7                                     # pos_weight is per column
    xl, bl = x[: rows * cols].reshape(rows, cols), b[: rows * cols].reshape(rows, cols)
    pw = f(np.linspace(0.5, 2.0, cols))

    def grad(fn, *args, **kw):
        out = []
        for red in ("none", "mean", "sum"):
            v, g = fn(*args, reduction=red, return_grad=True, **kw)
            out += [v, g]
        return tuple(out)

    cases = [
        ("mse", lambda: grad(fl.mse_loss, x, t, weight=w)),
        ("l1", lambda: grad(fl.l1_loss, x, t)),
        ("huber", lambda: grad(fl.huber_loss, x, t, delta=0.7)),
        ("smooth_l1", lambda: grad(fl.smooth_l1_loss, x, t, beta=0.5)),
        ("log_cosh", lambda: grad(fl.log_cosh_loss, x, t)),
        ("quantile", lambda: grad(fl.quantile_loss, x, t, 0.3)),
        ("poisson_log", lambda: grad(fl.poisson_nll_loss, x * 0.5, cnt)),
        ("poisson_full", lambda: grad(fl.poisson_nll_loss, lam, cnt, False, True)),
        ("bce", lambda: grad(fl.binary_cross_entropy, p, b, weight=w)),
        ("bce_logits", lambda: grad(fl.binary_cross_entropy_with_logits, xl, bl, pos_weight=pw)),
        ("focal", lambda: grad(fl.sigmoid_focal_loss, x, b, 0.25, 2.0)),
        ("hinge", lambda: grad(fl.hinge_loss, x, s)),
        ("squared_hinge", lambda: grad(fl.squared_hinge_loss, x, s)),
        ("soft_margin", lambda: grad(fl.soft_margin_loss, x, s)),
        ("gaussian_nll", lambda: fl.gaussian_nll_loss(x, t, var, True, return_grad=True)),
        ("hess_huber", lambda: fl.HuberLoss(delta=0.7).grad_hess(x, t)),
        ("hess_log_cosh", lambda: fl.LogCoshLoss().grad_hess(x, t)),
        ("hess_poisson", lambda: fl.PoissonNLLLoss().grad_hess(x * 0.5, cnt)),
        ("hess_bce_logits", lambda: fl.BCEWithLogitsLoss(pos_weight=pw).grad_hess(xl, bl)),
        ("hess_soft_margin", lambda: fl.SoftMarginLoss().grad_hess(x, s)),
    ]
    if hasattr(fl, "cross_entropy"):
        # Row losses (over C classes): their kernels are dispatched the same way.
        C = 11                                                 # 8 lanes + a tail
        m = n // C
        z = f(rng.normal(scale=3.0, size=(m, C)))              # logits
        lab = rng.integers(0, C, size=m)
        lab[::17] = -100                                       # ignored rows
        lab_ok = np.where(lab < 0, 0, lab)
        cw = f(np.linspace(0.5, 1.5, C))
        logp = z - np.logaddexp.reduce(z.astype(np.float64), axis=1, keepdims=True).astype(dtype)
        multi = f(rng.random((m, C)) < 0.3)
        cases += [
            ("cross_entropy", lambda: grad(fl.cross_entropy, z, lab, weight=cw, label_smoothing=0.1)),
            ("nll", lambda: grad(fl.nll_loss, logp, lab, weight=cw)),
            ("softmax_focal", lambda: grad(fl.softmax_focal_loss, z, lab, None, 2.0)),
            ("multi_margin", lambda: grad(fl.multi_margin_loss, z, lab_ok, 1, 1.0)),
            ("multilabel_soft_margin", lambda: grad(fl.multilabel_soft_margin_loss, z, multi)),
            ("hess_cross_entropy", lambda: fl.CrossEntropyLoss().grad_hess(z, lab_ok)),
        ]
    if hasattr(fl, "triplet_margin_loss"):
        # Row-over-features losses and the in-batch passes: dispatched the same way.
        D = 13                                                 # a vector + a tail
        r = n // D
        a3 = [f(rng.normal(size=(r, D))) for _ in range(3)]
        s2 = f(np.where(rng.random(r) < 0.5, -1.0, 1.0))
        b2 = f(rng.random(r) < 0.5)
        E = f(rng.normal(size=(min(r, 300), D)))
        blab = np.arange(E.shape[0]) % 7

        def grads(fn, *args, **kw):  # every operand's gradient, for each reduction
            out = []
            for red in ("none", "mean", "sum"):
                out += list(fn(*args, reduction=red, return_grad=True, **kw))
            return tuple(out)

        cases += [
            ("triplet", lambda: grads(fl.triplet_margin_loss, *a3, 1.0, 2, 1e-6, True)),
            ("triplet_p3", lambda: grads(fl.triplet_margin_loss, *a3, 1.0, 3)),
            ("triplet_cosine", lambda: grads(fl.triplet_margin_with_distance_loss, *a3, distance="cosine")),
            ("cosine_embedding", lambda: grads(fl.cosine_embedding_loss, a3[0], a3[1], s2, 0.1)),
            ("contrastive", lambda: grads(fl.contrastive_loss, a3[0], a3[1], b2, 3.0)),
            ("batch_hard", lambda: fl.batch_hard_triplet_loss(E, blab, 0.5, return_grad=True)),
            ("batch_all", lambda: fl.batch_all_triplet_loss(E, blab, 0.5, return_grad=True)),
            ("nt_xent", lambda: fl.nt_xent_loss(E, blab, 0.2, return_grad=True)),
        ]
    if hasattr(fl, "ctc_loss"):
        # CTC (the sequence driver): the recursion's inline exp/log on both paths
        T, NS, Cc, S = 40, n // 500 + 1, 9, 8
        zs = f(rng.normal(scale=2.0, size=(T, NS, Cc)))
        lps = f(zs - np.logaddexp.reduce(zs.astype(np.float64), axis=2, keepdims=True))
        tgs = rng.integers(1, Cc, size=(NS, S))
        ils, tls = rng.integers(S, T + 1, size=NS), rng.integers(0, S + 1, size=NS)
        cases += [
            ("ctc", lambda: grad(fl.ctc_loss, lps, tgs, ils, tls)),
            ("ctc_logits", lambda: grad(fl.ctc_loss, zs, tgs, ils, tls, from_logits=True)),
        ]
    return cases


def compute():
    """Every case's results as a flat dict of float64 arrays (plus the dtypes seen)."""
    out = {}
    for dtype in (np.float32, np.float64):
        dn = np.dtype(dtype).name
        for n in SIZES:
            rng = np.random.default_rng(n)
            for label, fn in _cases(rng, n, dtype):
                for i, r in enumerate(fn()):
                    r = np.asarray(r)
                    key = f"{dn}/{n}/{label}/{i}"
                    out[key] = r.astype(np.float64)
                    out[key + "/dtype"] = np.array(r.dtype.str if r.ndim else "scalar")
    return out


def _run_child(tmp_path, force, compute_all=True):
    """Run this file in a fresh process with FASTLOSS_FORCE_BASELINE=force.

    Returns the child's show_config() and the path of its saved results
    (None unless compute_all)."""
    path = str(tmp_path / f"results-{force}.npz") if compute_all else None
    env = dict(os.environ, FASTLOSS_FORCE_BASELINE=force)
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), path or "--config"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cfg = json.loads(proc.stdout.strip().splitlines()[-1])
    return cfg, path


def _cpu_has_v3():
    """True/False from /proc/cpuinfo on Linux x86_64, None where we cannot tell."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return None
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return all(fl_ in flags for fl_ in V3_FLAGS)
    except OSError:
        return None
    return None


def test_simd_path_names(tmp_path):
    cfg = fl.show_config(file=False)
    assert cfg["simd_path"] in (BASELINE, V3)
    assert cfg["simd_paths_built"] in ("x86-64-v3 + baseline", "baseline")
    if cfg["simd_paths_built"] == "baseline":
        assert cfg["simd_path"] == BASELINE
    if cfg["force_baseline"]:
        assert cfg["simd_path"] == BASELINE
    elif cfg["simd_paths_built"] != "baseline" and _cpu_has_v3():
        # A v3 build on a CPU with AVX2/FMA/BMI2/F16C/MOVBE must take the v3 path.
        assert cfg["simd_path"] == V3

    try:  # every dispatched extension takes the same path
        from fastloss import _rows
    except ImportError:
        _rows = None
    if _rows is not None:
        assert _rows.isa_name() == cfg["simd_path"]

    forced, _ = _run_child(tmp_path, "1", compute_all=False)
    assert forced["simd_path"] == BASELINE
    assert forced.get("rows_simd_path", BASELINE) == BASELINE
    assert forced["force_baseline"] is True
    # "0" means not forced: the child takes the same path this process would.
    unforced, _ = _run_child(tmp_path, "0", compute_all=False)
    assert unforced["force_baseline"] is False
    if not cfg["force_baseline"]:
        assert unforced["simd_path"] == cfg["simd_path"]


def test_baseline_matches_default_path(tmp_path):
    import pytest

    cfg = fl.show_config(file=False)
    if cfg["simd_path"] == BASELINE:
        pytest.skip("the default path is already the baseline on this CPU/build")
    forced, path = _run_child(tmp_path, "1")
    assert forced["simd_path"] == BASELINE

    mine = compute()
    base = dict(np.load(path))
    assert sorted(base) == sorted(mine)
    bad = []
    for key in sorted(k for k in mine if not k.endswith("/dtype")):
        a, b = mine[key], base[key]
        assert str(mine[key + "/dtype"]) == str(base[key + "/dtype"]), key
        assert a.shape == b.shape, key
        f32 = key.startswith("float32")
        # Vector expf/logf of different widths and FMA contraction change the
        # last bits; float32 reductions also add in a different lane order.
        rtol, atol = (2e-5, 1e-6) if f32 else (1e-12, 1e-14)
        scale = max(1.0, float(np.max(np.abs(b)))) if b.size else 1.0
        if not np.allclose(a, b, rtol=rtol, atol=atol * scale, equal_nan=True):
            err = np.max(np.abs(a - b) / (np.abs(b) + atol * scale))
            bad.append(f"{key}: max relative difference {err:.3g}")
        # NaN and inf in the same places on both paths.
        assert np.array_equal(np.isfinite(a), np.isfinite(b)), key
    assert not bad, "v3 and baseline paths differ:\n" + "\n".join(bad)


if __name__ == "__main__":
    # The subprocess side: compute everything and save it (or, with
    # --config, only report the configuration).
    if sys.argv[1] != "--config":
        np.savez(sys.argv[1], **compute())
    cfg = fl.show_config(file=False)
    try:
        from fastloss import _rows
        cfg["rows_simd_path"] = _rows.isa_name()
    except ImportError:
        pass
    print(json.dumps(cfg, default=str))
