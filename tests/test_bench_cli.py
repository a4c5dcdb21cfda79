"""The benchmark's command line and timing rules (no speed is asserted).

``python -m fastloss --version``; ``bench --dtypes`` names the allowed
values; ``--losses`` takes every fastloss function name of the chosen
families and refuses, by name, one it does not time or one of another
family; short calls are repeated until a minimum total time and a
measurement whose spread is too wide is flagged, not turned into a ratio;
the default tables fit 100 columns (``--wide`` prints all); a high load
average left by recent work (an install step) is a note, not a warning.
"""
import inspect
import io
import subprocess
import sys
import time

import numpy as np
import pytest

import fastloss as fl
from fastloss import bench as B
from fastloss.__main__ import main


def _cli(*argv):
    return subprocess.run([sys.executable, "-m", "fastloss", *argv], capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "PYTHONPATH": ":".join(p for p in sys.path if p)})


def test_version():
    r = _cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"fastloss {fl.__version__}"


@pytest.mark.parametrize("argv, msg", [
    (["--dtypes", "float16"], "--dtypes: 'float16' is not one of float32, float64"),
    (["--losses", "cross_entropy,bogus"], "--losses: 'bogus' is not a fastloss loss function; the chosen families "
                                          "have: binary_cross_entropy"),
    (["--family", "rows", "--losses", "mse_loss"], "--losses: mse_loss is a pointwise loss; add --family pointwise "
                                                   "(chosen: rows)"),
    (["--losses", "nll_loss"], "--losses: the rows benchmark does not time nll_loss; it times cross_entropy"),
    (["--family", "pointwise", "--losses", "hinge_loss,cross_entropy"],
     "--losses: cross_entropy is a rows loss; add --family rows (chosen: pointwise)"),
])
def test_bad_arguments(argv, msg, capsys):
    assert main(["bench", *argv]) == 2
    assert msg in capsys.readouterr().err


def test_losses_pick_the_families():
    picked, err = B._pick_losses("cross_entropy", ["pointwise", "rows"])
    none = {"pointwise": [], "rows": [], "overlap": [], "embeddings": [], "ctc": [], "generative": []}
    assert err is None and picked == dict(none, rows=["cross_entropy"])
    picked, err = B._pick_losses("mse_loss, huber_loss,mse_loss", ["pointwise", "rows"])
    assert err is None and picked == dict(none, pointwise=["mse_loss", "huber_loss"])
    # every pointwise function that the benchmark times is accepted
    every, timed = B.family_losses()["pointwise"]
    assert set(timed) <= set(every) and "mse_loss" in timed
    picked, err = B._pick_losses("nt_xent_loss,ctc_loss", ["embeddings", "ctc"])
    assert err is None and picked == dict(none, embeddings=["nt_xent_loss"], ctc=["ctc_loss"])


def test_every_family_lists_existing_losses():
    # every family of the benchmark (the embedding and ctc ones included) names
    # fastloss functions that exist, and times only functions of its own
    table = B.family_losses()
    assert {"pointwise", "rows", "overlap", "embeddings", "ctc", "generative"} <= set(table)
    assert "triplet_margin_loss" in table["embeddings"][0] and "nt_xent_loss" in table["embeddings"][0]
    assert table["ctc"] == (["ctc_loss"], ["ctc_loss"])
    seen = {}
    for fam, (every, timed) in table.items():
        assert every and set(timed) <= set(every), fam
        for name in every:
            base = name.split(".")[0]
            assert callable(getattr(fl, base, None)), f"{fam}: {name} is not a fastloss function"
            assert seen.setdefault(name, fam) == fam, f"{name} in {seen[name]} and {fam}"
    public = {n for n in fl.__all__ if callable(getattr(fl, n)) and not isinstance(getattr(fl, n), type)
              and "return_grad" in inspect.signature(getattr(fl, n)).parameters}
    # (besides the Hessian-vector products, combined_loss: a combinator of other losses, no family's)
    assert public <= set(seen) | {n for n in public if n.endswith("_hvp")} | {"combined_loss"}, \
        sorted(public - set(seen))


def test_losses_cross_entropy_runs_only_the_rows_family(monkeypatch, capsys):
    calls = []
    from fastloss import bench_rows
    monkeypatch.setattr(bench_rows, "main", lambda argv: calls.append(argv))
    monkeypatch.setattr(B, "_bench_pointwise", lambda *a, **k: pytest.fail("pointwise family ran"))
    assert main(["bench", "--losses", "cross_entropy", "--quick"]) == 0
    assert len(calls) == 1


def test_measure_repeats_short_calls_for_a_minimum_total():
    r = B.measure(lambda: None, repeat=3, min_time=0.001, min_total=0.05)
    assert r["repeat"] > 3 and sum(r["times"]) * r["number"] >= 0.05 * 0.9
    assert r["best"] <= r["median"] and r["noisy"] in (True, False)


def test_measure_flags_a_wide_spread():
    state = {"k": 0}

    def stalls():  # two calls in three stall for 3 ms, a 20 us call otherwise
        state["k"] += 1
        t = time.perf_counter()
        while time.perf_counter() - t < (3e-3 if state["k"] % 3 else 2e-5):
            pass

    r = B.measure(stalls, repeat=5, min_time=1e-9, min_total=0.05)  # one call per repeat
    assert r["number"] == 1 and r["noisy"], (r["best"], r["median"])


def _fake(names, noisy=()):
    cases = [B.Case(n, "pointwise", None, {}, 3, {}) for n in names]
    results = {}
    for c in cases:
        for impl, t in (("fastloss", 1e-3), ("fastloss_out", 8e-4), ("numpy", 0.5), ("torch", 4e-2),
                        ("sklearn", 2e-3)):
            results[(c.name, 10**7, "float32", 2, impl)] = {"best": t, "noisy": (c.name, impl) in noisy}
    return cases, results


def test_tables_fit_100_columns_unless_wide():
    names = ["binary_cross_entropy_with_logits", "gaussian_nll_loss", "sigmoid_focal_loss", "squared_hinge_loss"]
    cases, results = _fake(names)
    stream = {2: {"gbs": 20.0}}
    out = io.StringIO()
    B.print_block(cases, results, stream, 10**7, "float32", 2, out)
    B.print_legend(out, wide=False)
    assert max(map(len, out.getvalue().splitlines())) <= 100, out.getvalue()
    wide = io.StringIO()
    B.print_block(cases, results, stream, 10**7, "float32", 2, wide, wide=True)
    assert "bw floor" in wide.getvalue() and "binary_cross_entropy_with_logits" in wide.getvalue()
    assert max(map(len, wide.getvalue().splitlines())) > 100


def test_noisy_measurement_gives_no_ratio():
    cases, results = _fake(["mse_loss", "l1_loss"], noisy={("mse_loss", "torch")})
    out = io.StringIO()
    B.print_block(cases, results, {2: {"gbs": 20.0}}, 10**7, "float32", 2, out)
    text = out.getvalue()
    mse = next(line for line in text.splitlines() if line.startswith("mse_loss"))
    l1 = next(line for line in text.splitlines() if line.startswith("l1_loss"))
    assert "noisy" in mse and "40.0x" not in mse and "40.0x" in l1
    assert "? noisy: median repeat" in text
    assert "geomean: " in text and "torch/fl 40.0x" in text  # the geomean leaves the noisy ratio out


def _info(load, busy):
    cfg = fl.show_config(file=False)
    return {"date": "now", "platform": "p", "cpu": "c", "nproc": 2, "cpus_available": 2, "memory": "m",
            "versions": {"python": "3"}, "fastloss_config": cfg, "reference_available": True,
            "loadavg": (load, load, load), "busy_now": busy}


@pytest.mark.parametrize("load, busy, expect", [(3.0, 0.02, "note     : the load average reflects recent work"),
                                                (3.0, 0.9, "WARNING  : machine not idle"),
                                                (3.0, None, "WARNING  : machine not idle"),
                                                (0.1, 0.9, None)])
def test_load_note_or_warning(load, busy, expect):
    out = io.StringIO()
    B.print_header(_info(load, busy), out)
    text = out.getvalue()
    if expect is None:
        assert "WARNING" not in text and "note     : the load" not in text
    else:
        assert expect in text
        assert ("WARNING" in text) == expect.startswith("WARNING")


def test_busy_now_is_a_fraction():
    b = B.busy_now(0.05)
    assert b is None or 0.0 <= b <= 1.0


def test_a_call_slower_than_max_total_is_a_complete_measurement():
    """Timed once (the NumPy reference at N = 1e7): the record still has the
    keys the tables read (a KeyError 'noisy' dropped those rows)."""
    import time

    from fastloss import bench as B
    r = B.measure(lambda: time.sleep(0.01), max_total=0.001)
    assert r["single_call"] and r["repeat"] == 1
    assert r["noisy"] is False and r["median"] == r["best"] >= 0.01


def test_interleaved_never_times_a_call_cold_after_a_cache_switch():
    # interleaved() runs a "fresh" call (its context switches fastloss's block cache off, which
    # releases the idle blocks) just before the default call in every round; the default call's
    # first call after that switch refills the cache and must not be timed (it had made CE at
    # 2048 x 32000 look 1.4x slower than out=).  A fake context marks the cache flushed, the
    # default call records every call it makes while flushed, and the clock says whether a
    # timing is running.
    state = {"flushed": False, "timing": False, "cold_timed": 0, "cold": 0}

    class Flush:
        def __enter__(self):
            state["flushed"] = True

        def __exit__(self, *exc):
            return False

    def fresh():
        time.sleep(0.001)

    fresh.around = Flush

    def default():
        if state["flushed"]:
            state["cold"] += 1
            state["cold_timed"] += state["timing"]
        state["flushed"] = False
        time.sleep(0.001)

    def clock():
        state["timing"] = not state["timing"]   # called at a timing's start, then at its end
        return time.perf_counter()

    best = B.interleaved({"fresh": fresh, "default": default}, repeat=4, min_time=0.0, clock=clock)
    assert set(best) == {"fresh", "default"} and all(v > 0 for v in best.values())
    assert state["cold"] >= 4                 # every round flushed it once
    assert state["cold_timed"] == 0
