"""Smoke test for an *installed* fastloss (a wheel or an sdist install).

Run it from outside the source tree, with the interpreter of the
environment that fastloss was installed into::

    cd /tmp && /path/to/venv/bin/python /path/to/fastloss/tools/smoke_test.py

It checks that the package imports from site-packages (not from a source
checkout), that it was built with OpenMP, that a few losses agree with
plain NumPy formulas on one and on all threads, and that the baseline SIMD
path (``FASTLOSS_FORCE_BASELINE=1``, run in a subprocess) gives the same
results as the path chosen at import.  It exits non-zero on any failure.

Set ``FASTLOSS_SMOKE_ALLOW_SOURCE=1`` to run it against a development
(editable) install.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

import fastloss as fl

N = 100_003  # above the parallel threshold (65536), odd to exercise the SIMD tails


def _data(dtype):
    rng = np.random.default_rng(2024)
    x = rng.normal(size=N).astype(dtype)
    t = rng.normal(size=N).astype(dtype)
    b = (rng.random(N) < 0.3).astype(dtype)  # binary targets
    return x, t, b


def _softplus(z):
    return np.logaddexp(0.0, z)


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def expected(x, t, b):
    """The NumPy formulas, in float64: name -> (value of the mean, gradient)."""
    x, t, b = (a.astype(np.float64) for a in (x, t, b))
    n = x.size
    d = x - t
    hub = np.where(np.abs(d) <= 1.0, 0.5 * d * d, np.abs(d) - 0.5)
    return {
        "mse_loss": (np.mean(d * d), 2 * d / n),
        "l1_loss": (np.mean(np.abs(d)), np.sign(d) / n),
        "huber_loss": (np.mean(hub), np.clip(d, -1.0, 1.0) / n),
        "binary_cross_entropy_with_logits": (
            np.mean(b * _softplus(-x) + (1 - b) * _softplus(x)), (_sigmoid(x) - b) / n),
        "poisson_nll_loss": (np.mean(np.exp(x) - t * x), (np.exp(x) - t) / n),
    }


def compute(dtype, n_threads=None):
    """fastloss's results: name -> (value, gradient), reduction='mean'."""
    x, t, b = _data(dtype)
    out = {}
    for name in ("mse_loss", "l1_loss", "huber_loss", "poisson_nll_loss"):
        out[name] = getattr(fl, name)(x, t, return_grad=True, n_threads=n_threads)
    out["binary_cross_entropy_with_logits"] = fl.binary_cross_entropy_with_logits(
        x, b, return_grad=True, n_threads=n_threads)
    return out


def _check(cond, msg, failures):
    print(("  ok    " if cond else "  FAIL  ") + msg)
    if not cond:
        failures.append(msg)


def _close(a, b, dtype):
    rtol, atol = (2e-5, 1e-6) if dtype == np.float32 else (1e-12, 1e-14)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(1.0, float(np.max(np.abs(b)))) if b.size else 1.0
    return bool(np.allclose(a, b, rtol=rtol, atol=atol * scale))


def child(path):
    """Run in the FASTLOSS_FORCE_BASELINE=1 subprocess: save results to path."""
    arrays = {}
    for dtype in (np.float32, np.float64):
        for name, (v, g) in compute(dtype).items():
            arrays[f"{name}/{np.dtype(dtype).name}/value"] = np.float64(v)
            arrays[f"{name}/{np.dtype(dtype).name}/grad"] = g
    np.savez(path, **arrays)
    print(json.dumps(fl.show_config(file=False), default=str))


def main():
    failures = []
    here = os.path.dirname(os.path.abspath(fl.__file__))
    print(f"fastloss {fl.__version__} imported from {here}")
    from_source = os.path.exists(os.path.join(here, "_pointwise.pyx"))
    if from_source and not os.environ.get("FASTLOSS_SMOKE_ALLOW_SOURCE"):
        _check(False, "fastloss is imported from a source tree, not from an installed wheel", failures)

    cfg = fl.show_config(file=False)
    print(f"  openmp={cfg['openmp']} ({cfg['openmp_flavor']}) threads={cfg['num_threads']} "
          f"simd={cfg['simd_path']!r} built={cfg['simd_paths_built']!r}")
    _check(cfg["openmp"] is True, "built with OpenMP (show_config()['openmp'] is True)", failures)

    for dtype in (np.float32, np.float64):
        want = expected(*_data(dtype))
        got = compute(dtype)
        got1 = compute(dtype, n_threads=1)
        dn = np.dtype(dtype).name
        for name, (v, g) in got.items():
            wv, wg = want[name]
            ok = _close(v, wv, dtype) and _close(g, wg, dtype) and g.dtype == dtype
            _check(ok, f"{name} {dn}: value and grad match NumPy", failures)
            v1, g1 = got1[name]
            _check(v1 == v and np.array_equal(g1, g),
                   f"{name} {dn}: 1 thread and {cfg['num_threads']} threads bit-identical", failures)

    # The baseline path, forced in a fresh process, against this process's path.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "baseline.npz")
        env = dict(os.environ, FASTLOSS_FORCE_BASELINE="1")
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", path],
                              env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stdout, proc.stderr, sep="\n")
            _check(False, "FASTLOSS_FORCE_BASELINE=1 subprocess ran", failures)
        else:
            ccfg = json.loads(proc.stdout.strip().splitlines()[-1])
            _check(ccfg["simd_path"] == "baseline" and ccfg["force_baseline"] is True,
                   f"FASTLOSS_FORCE_BASELINE=1 gives simd_path 'baseline' (got {ccfg['simd_path']!r})", failures)
            base = np.load(path)
            for dtype in (np.float32, np.float64):
                dn = np.dtype(dtype).name
                ok = True
                for name, (v, g) in compute(dtype).items():
                    ok &= _close(v, base[f"{name}/{dn}/value"], dtype)
                    ok &= _close(g, base[f"{name}/{dn}/grad"], dtype)
                _check(ok, f"{dn}: {cfg['simd_path']!r} path matches the baseline path", failures)

    if failures:
        print(f"smoke test FAILED: {len(failures)} check(s)")
        return 1
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
        sys.exit(0)
    sys.exit(main())
