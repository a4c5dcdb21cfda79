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
    assert "'nope' is not a fastloss loss function" in capsys.readouterr().err
    assert main(["bench", "--family", "overlap", "--losses", "jaccard_loss"]) == 2
    assert "does not time jaccard_loss" in capsys.readouterr().err
    assert bench_overlap.main(["--losses", "nope"]) == 2
    assert "unknown loss(es) nope" in capsys.readouterr().err


def test_bench_torch_versions_compute_the_same_losses(tiny):
    """The benchmark's torch rivals compute what fastloss computes (same value
    and gradient), so the ratios compare like with like."""
    torch = pytest.importorskip("torch")
    import numpy as np

    seg = bench_overlap.seg_data()
    for name in bench_overlap.SEG_CASES:
        v, g = bench_overlap.prepare_seg(name, "fastloss", seg, 1)()
        x = torch.from_numpy(seg[0].astype(np.float64)).requires_grad_(True)
        ref = bench_overlap.SEG_CASES[name][1](torch, x, torch.from_numpy(seg[1]),
                                              torch.from_numpy(seg[2].astype(np.float64)))
        ref.backward()
        assert v == pytest.approx(ref.item(), rel=2e-6), name
        np.testing.assert_allclose(g, x.grad.numpy(), rtol=1e-4, atol=1e-6 * np.abs(x.grad.numpy()).max())
    b1, b2 = bench_overlap.box_data()
    for name, kind in bench_overlap.BOX_CASES.items():
        v = bench_overlap.prepare_box(name, "fastloss", (b1, b2), 1)()[0]
        ref = bench_overlap._tv_boxes(torch, kind, torch.from_numpy(b1.astype(np.float64)),
                                      torch.from_numpy(b2.astype(np.float64)))
        assert v == pytest.approx(ref.item(), rel=1e-5), name
