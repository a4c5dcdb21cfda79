"""Command line: ``python -m fastloss {bench,config,plot}``."""
from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fastloss",
        description="fastloss: fused value-and-gradient loss functions for the CPU.",
    )
    from fastloss import __version__

    p.add_argument("--version", action="version", version=f"fastloss {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    sub.add_parser("config", help="print how fastloss was built and how it will run (fl.show_config())",
                   description="Print how fastloss was built and how it will run.")

    b = sub.add_parser(
        "bench",
        help="time fastloss against NumPy, PyTorch and scikit-learn",
        description="Time each loss's fused value+gradient call against the NumPy reference, PyTorch "
                    "(forward + backward) and scikit-learn's loss module, side by side, at each size, "
                    "dtype and thread count, and set large sizes against the memory bandwidth "
                    "(STREAM-style add) measured in the same run. Tables go to stdout, progress to stderr.",
    )
    b.add_argument("--quick", action="store_true",
                   help="a short run: N=1e3,1e7, float32, 3 repeats, slow calls cut short (~1-2 min on 2 cores)")
    b.add_argument("--sizes", metavar="LIST", help="comma-separated sizes (default 1e3,1e5,1e7; quick 1e3,1e7)")
    b.add_argument("--dtypes", metavar="LIST",
                   help="comma-separated, from float32, float64 (default both; quick float32)")
    b.add_argument("--threads", metavar="LIST", help='thread counts, "all" = every available CPU (default 1,all)')
    b.add_argument("--losses", metavar="LIST",
                   help="only these losses: fastloss function names of the chosen families (pointwise: "
                        "mse_loss, huber_loss, ...; rows: cross_entropy); a name the benchmark does not time "
                        "is an error")
    b.add_argument("--repeat", type=int, metavar="R", help="repeats per measurement, best kept (default 5; quick 3)")
    b.add_argument("--min-time", type=float, default=0.02, metavar="S",
                   help="each repeat loops until it lasts at least S seconds (default 0.02)")
    b.add_argument("--min-total", type=float, default=0.2, metavar="S",
                   help="short calls are repeated until the timed calls add up to S seconds (default 0.2); "
                        "a time whose median repeat is over 2x its best is marked noisy and gives no ratio")
    b.add_argument("--wide", action="store_true",
                   help="print every column (NumPy reference, fresh/out, GB/s, bandwidth floor): about 150 "
                        "columns; the default tables fit 100")
    b.add_argument("--json", metavar="FILE", help="also write all raw results to FILE")
    b.add_argument("--family", metavar="LIST", default="pointwise,rows",
                   help="loss families: pointwise (per-element losses over N elements) and rows "
                        "(cross-entropy at 8192x1000, 65536x32, 2048x32000; quick: the first two); default both; "
                        "ctc (TxNxCxS 100x32x30x20, 500x32x100x100, 2000x1x100x400, float32) on request; "
                        "overlap (Dice, Tversky, BCE+Dice, Lovasz-softmax at 16x4x256x256, box IoU losses "
                        "on 1e6 pairs) on request; "
                        "guide: suggest, diagnose and check=True at N=1e7 (quick: 1e6) on request; "
                        "embeddings (triplet, pair and in-batch losses at 65536x128 and N=4096) on request; "
                        "generative (GAN, VAE, PPO and value losses at N=1e6, VAE KL 65536x64, CombinedLoss "
                        "BCE+Dice; float32) on request; "
                        "dtypes (float64/float32 and N(0,30)/N(0,1) logits, logistic and softmax losses at "
                        "N=1e7) and small (the overhead of calls at N=100, 1000) on request")
    _plot_parser(sub)
    return p


def _plot_parser(sub):
    pl = sub.add_parser(
        "plot",
        help="draw a loss's value, gradient and Hessian (needs matplotlib: pip install 'fastloss[plot]')",
        description="Draw the value, gradient and diagonal Hessian of a loss, computed by the fastloss "
                    "kernels, for its main parameter at a few values. One loss: NAME --out FILE.png; "
                    "the gallery: --all --out DIR (a PNG per loss and an index, DIR/README.md).",
    )
    pl.add_argument("name", nargs="?", metavar="NAME", help="the loss (function or class name), e.g. huber_loss")
    pl.add_argument("--all", action="store_true", help="draw every loss into the directory --out")
    pl.add_argument("--out", metavar="PATH", help="the PNG file (one loss; default NAME.png) or directory (--all)")
    pl.add_argument("--dpi", type=int, default=72, help="resolution (default 72: a 648x187 image)")
    pl.add_argument("--list", action="store_true", help="list the losses that have a picture")


def _plot(args, parser) -> int:
    from fastloss import plot

    if args.list:
        print("\n".join(sorted(plot.RECIPES)))
        return 0
    if args.all == (args.name is not None):
        parser.error("plot: give one loss NAME, or --all")
    try:
        if args.all:
            paths = plot.save_all(args.out or ".", dpi=args.dpi)
            print(f"wrote {len(paths)} pictures and README.md to {args.out or '.'}")
        else:
            print(f"wrote {plot.save(args.name, args.out or f'{args.name}.png', dpi=args.dpi)}")
    except (ValueError, ImportError) as exc:
        print(f"python -m fastloss {exc}" if isinstance(exc, ValueError) else exc, file=sys.stderr)
        return 2
    return 0


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "config":
        import fastloss as fl

        fl.show_config()
        return 0
    if args.command == "bench":
        from fastloss.bench import main_bench

        return main_bench(args)
    if args.command == "plot":
        return _plot(args, parser)
    parser.print_help()  # pragma: no cover - argparse rejects unknown commands
    return 2


if __name__ == "__main__":
    sys.exit(main())
