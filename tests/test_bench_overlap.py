"""The overlap benchmark runs (on tiny sizes) through its script and the CLI."""
import pytest

from fastloss import bench_overlap


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(bench_overlap, "SEG_SHAPE", (2, 3, 8, 8))
    monkeypatch.setattr(bench_overlap, "N_BOXES", 500)


def test_bench_overlap_script(tiny, capsys):
    pytest.importorskip("torch")
    assert bench_overlap.main(["--threads", "1", "--repeat", "1", "--min-time", "0"]) == 0
    out = capsys.readouterr().out
    for name in list(bench_overlap.SEG_CASES) + list(bench_overlap.BOX_CASES):
        assert name in out
    assert "nan" not in out.split("torch/out")[1]


def test_bench_overlap_cli(tiny, capsys):
    from fastloss.__main__ import main

    assert main(["bench", "--family", "overlap", "--threads", "1", "--repeat", "1", "--min-time", "0",
                 "--losses", "dice_loss,complete_box_iou_loss"]) == 0
    out = capsys.readouterr().out
    assert "dice_loss" in out and "complete_box_iou_loss" in out and "tversky_loss" not in out
    assert main(["bench", "--family", "overlap", "--losses", "nope"]) == 2
    assert "unknown loss(es) nope" in capsys.readouterr().err
