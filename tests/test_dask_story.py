"""docs/dask.md runs as written: its examples, and its user story on a
LocalCluster of 2 worker processes (loopback only).

The story evaluates 1e8 elements; the normal suite runs it at
N = 1_000_000 (the only change made to the page's code), the full size
runs with ``pytest -m slow``.  The story asserts itself that the
distributed value has the bits of the single-process call.
"""
import pathlib
import re
import warnings

import pytest

PAGE = pathlib.Path(__file__).resolve().parents[1] / "docs" / "dask.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S) if PAGE.exists() else []
STORY = [b for b in BLOCKS if "LocalCluster" in b]
OTHERS = [b for b in BLOCKS if "LocalCluster" not in b]
FULL = "N = 100_000_000"


def _run(code, capsys):
    pytest.importorskip("dask")
    pytest.importorskip("distributed")
    import dask

    # the workers are processes: on a loaded machine their start can take longer than distributed's
    # default connect timeout (30 s; seen once as "Cluster failed to start" with 4 compilers running)
    with warnings.catch_warnings(), dask.config.set({"distributed.comm.timeouts.connect": "120s"}):
        warnings.simplefilter("error")
        exec(compile(code, "docs/dask.md", "exec"), {})
    return capsys.readouterr().out


def test_the_page_has_a_story_at_full_size():
    assert len(STORY) == 1 and FULL in STORY[0]
    assert OTHERS


@pytest.mark.parametrize("i", range(len(OTHERS)))
def test_examples(i, capsys):
    _run(OTHERS[i], capsys)


def test_story_small(capsys):
    out = _run(STORY[0].replace(FULL, "N = 1_000_000"), capsys)
    assert "mean BCE over 1e+06" in out and "peak RSS per worker" in out


@pytest.mark.slow
def test_story_full_size(capsys, request):
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("1e8 elements on a LocalCluster take ~1.5 min on 2 cores: run with -m slow")
    out = _run(STORY[0], capsys)
    with capsys.disabled():
        print("\n" + out)
    assert "mean BCE over 1e+08" in out
