"""The embeddings benchmark runs end to end at tiny sizes (both allocator
regimes, the warm one in its child process) and is reachable from
``python -m fastloss bench --family embeddings``.  Nothing is timed here."""
import subprocess
import sys

from fastloss import __main__ as cli
from fastloss import bench_embeddings as BE


def test_bench_embeddings_tiny(capsys):
    assert BE.main(["--threads", "1", "--repeat", "1", "--rows", "64x8", "--batch", "32x4",
                    "--regime", "default"]) == 0
    out = capsys.readouterr().out
    for case in BE.CASES:
        assert case in out
    assert "default allocator" in out


def test_bench_embeddings_warm_child():
    p = subprocess.run([sys.executable, "-m", "fastloss.bench_embeddings", "--threads", "1", "--repeat", "1",
                        "--rows", "32x4", "--batch", "16x3", "--cases", "triplet_margin_loss,nt_xent_loss"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "default allocator" in p.stdout and "warm (freed memory reused) allocator" in p.stdout
    assert p.stdout.count("triplet_margin_loss ") == 2


def test_cli_family(capsys):
    assert cli.main(["bench", "--family", "bogus"]) == 2
    assert "embeddings" in capsys.readouterr().err
    assert BE.main(["--cases", "nope"]) == 2


def test_cli_runs_the_family(monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(BE, "main", lambda argv: seen.append(argv) or 0)
    assert cli.main(["bench", "--family", "embeddings", "--threads", "1", "--dtypes", "float32",
                     "--repeat", "2"]) == 0
    assert seen == [["--dtypes", "float32", "--repeat", "2", "--threads", "1"]]
    assert "embedding losses" in capsys.readouterr().out
