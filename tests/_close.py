"""Tolerances and the tuple comparison shared by the generative and RL tests
(tests/test_generative.py, tests/test_rl_logits.py): float64 to 1e-12, float32
to its precision, each result of a call compared in float64; and the calls
run on the x86-64-v3 and the baseline path of the pointwise driver
(tests/test_pointwise_v3*.py)."""
import numpy as np

F64_TOL = dict(rtol=1e-12, atol=1e-13)
F32_TOL = dict(rtol=2e-5, atol=2e-6)


def _tol(dt):
    return F64_TOL if dt == np.float64 else F32_TOL


def _close(got, want, dt, what=""):
    assert len(got) == len(want), what
    for k, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(np.asarray(a, np.float64), b, **_tol(dt), err_msg=f"{what} [{k}]")


def on_both_paths(calls):
    """Each call's results on the pointwise driver's path in use and on its
    baseline (no AVX2) path, the selection restored after."""
    from fastloss import _pointwise as P

    before = P.isa_name()
    fast = [c() for c in calls]
    try:
        assert P.select_isa(True) == "baseline"
        base = [c() for c in calls]
    finally:
        P.select_isa(before == "baseline")
    assert P.isa_name() == before
    return fast, base
