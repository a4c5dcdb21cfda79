"""The bad-input fuzz harness (tests/fuzz/harness.py) in the test suite.

A short budget runs with every test run (FASTLOSS_FUZZ_SECONDS, default
15 s on two worker processes); the long one is ``pytest -m slow``
(FASTLOSS_FUZZ_SLOW_SECONDS, default 600 s, other seeds).  Every public
loss takes part through the example generator it declares
(fastloss._examples); see docs/reliability.md.
"""
import os
import sys

import numpy as np
import pytest

import fastloss as fl

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "fuzz"))
import harness as H  # noqa: E402


def test_every_loss_declares_examples():
    assert H.undeclared() == [], (
        "these public losses declare no example generator (fastloss._examples.declare); "
        "see docs/reliability.md")
    names = {n for n, _ in H.losses()}
    assert {"mse_loss", "MSELoss", "cross_entropy", "CrossEntropyLoss", "cross_entropy_hvp"} <= names


@pytest.mark.parametrize("name,form", H.losses())
def test_declared_examples_are_valid_calls(name, form):
    # every seed's example runs in every mode, on f32 and f64, sizes 0..150
    for seed in range(6):
        tg, ex = H.example(name, form, seed)
        H.run_variant(tg, ex, "clean")


def test_variants_cover_every_family():
    kinds = set()
    for seed in range(8):
        tg, ex = H.example("cross_entropy", "fn", seed)
        kinds |= {v.split(":")[0] for v in H.variants(tg, ex)}
    assert {"clean", "threads", "layout", "value", "param", "labels", "out"} <= kinds
    tg, ex = H.example("CrossEntropyLoss", "cls", 3)
    assert "loss_out" in {v.split(":")[0] for v in H.variants(tg, ex)}


def test_variants_cover_the_new_drivers():
    # issue 10's rule for the drivers added since: row over features (several
    # gradients, in-batch group ids) and sequence (labels and lengths)
    kinds = {}
    for name, form in [("ctc_loss", "fn"), ("CTCLoss", "cls"), ("batch_hard_triplet_loss", "fn"),
                       ("triplet_margin_loss", "fn"), ("TripletMarginLoss", "cls")]:
        for seed in range(8):
            tg, ex = H.example(name, form, seed)
            kinds.setdefault(name, set()).update(v.rsplit(":", 1)[0] if v.startswith("ints") else v.split(":")[0]
                                                 for v in H.variants(tg, ex))
    assert {"labels", "ints:input_lengths", "ints:target_lengths", "out", "threads"} <= kinds["ctc_loss"]
    assert {"labels", "ints:target_lengths", "loss_out"} <= kinds["CTCLoss"]
    assert {"ints:labels", "out", "layout"} <= kinds["batch_hard_triplet_loss"]
    assert {"layout", "value", "out", "param"} <= kinds["triplet_margin_loss"]
    assert "gh" not in H.Target("CTCLoss", "cls").modes({})


def test_harness_catches_a_bad_length_message(monkeypatch):
    # a length error that does not name the argument and the value is reported
    import fastloss._sequence_api as S

    real = S._lengths

    def vague(v, name, op, N, unbatched):
        a = real(v, name, op, N, unbatched)
        if (a < 0).any():
            raise ValueError(f"{op}: bad lengths")
        return a

    monkeypatch.setattr(S, "_lengths", vague)
    for seed in range(20):
        tg, ex = H.example("ctc_loss", "fn", seed)
        if "ints:input_lengths:bad0" in H.variants(tg, ex):
            with pytest.raises(H.Failure, match="not a ValueError naming input_lengths"):
                H.run_variant(tg, ex, "ints:input_lengths:bad0")
            return
    raise AssertionError("no example with array input_lengths")


def test_harness_catches_a_wrong_result(monkeypatch):
    # a loss that ignores the values of a strided input must be reported
    tg, ex = H.example("mse_loss", "fn", 2)
    real = tg.call

    def wrong(args, mode, **kw):
        a = dict(args)
        if isinstance(a["input"], np.ndarray) and not a["input"].flags.c_contiguous:
            a["input"] = np.zeros_like(a["input"])
        return real(a, mode, **kw)

    monkeypatch.setattr(tg, "call", wrong)
    if ex.args["input"].size and ex.args["input"].ndim:
        with pytest.raises(H.Failure, match="strided"):
            H.run_variant(tg, ex, "layout:input:strided")


def test_harness_pins_a_crash_and_resumes(monkeypatch):
    monkeypatch.setenv("FASTLOSS_FUZZ_SELFTEST_CRASH", "mse_loss:layout:input:misaligned")
    monkeypatch.setenv("FASTLOSS_FUZZ_NO_TORCH", "1")  # (the NumPy form only: no torch import in the workers)
    logs = []
    fails = H.fuzz(seconds=0, workers=1, only={"mse_loss"}, log=logs.append)
    crashes = [f for f in fails if f["msg"].startswith("CRASH")]
    assert len(crashes) == 1 and crashes[0]["variant"] == "layout:input:misaligned", logs
    assert "--replay mse_loss fn 0 'layout:input:misaligned'" in "\n".join(logs)
    # the job resumed after the crash: the out= variants (last) ran in a new worker
    assert "failures" in logs[0] and len(fails) == 1, logs


def test_fuzz_short():
    seconds = float(os.environ.get("FASTLOSS_FUZZ_SECONDS", "15"))
    logs = []
    fails = H.fuzz(seconds=seconds, workers=2, log=logs.append)
    print("\n".join(logs))
    assert not fails, "\n".join(logs)


@pytest.mark.slow
def test_fuzz_long(request):
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("the long fuzz run (10 minutes): run with -m slow")
    seconds = float(os.environ.get("FASTLOSS_FUZZ_SLOW_SECONDS", "600"))
    logs = []
    fails = H.fuzz(seconds=seconds, workers=2, seed0=10_000, log=logs.append)
    print("\n".join(logs))
    assert not fails, "\n".join(logs)
