"""A jitted value-and-gradient step: fastloss.jax against optax's loss.

    python bench/bench_jax.py                       # N = 1e3 and 1e7, float32
    python bench/bench_jax.py --sizes 1e7 --rounds 9

Each case is ``jax.jit(jax.value_and_grad(loss))(input, target)`` with the
loss's mean, float32, on the CPU: fastloss.jax's (a ``pure_callback`` into
the fused kernel inside a ``custom_vjp``) and the optax loss written as
optax's users write it (``optax.losses.<loss>(...).mean()``).  Both are
compiled before timing.  The two are timed in interleaved rounds (fastloss,
optax, fastloss, ...), each round the best of a few calls lasting at least
``--min-time`` seconds, and the table shows the median over rounds and the
ratio optax / fastloss; a ratio above 1 means fastloss is faster.  At N =
1e3 the figure is the callback's overhead (JAX's host callback, the
custom_vjp, fastloss's call path); at 1e7 it is the kernels' speed and the
memory traffic of each library's intermediates.

fastloss runs with its default threads (all cores); XLA's CPU backend uses
its own thread pool.  The machine's load average is printed before and
after: on a shared machine, compare only figures from the same run.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def _cases(jax, jnp, optax, flj, n, rng):
    """(name, fastloss loss, optax loss, args) at about n elements."""
    x = jnp.asarray(rng.standard_normal(n), jnp.float32)
    t = jnp.asarray(rng.standard_normal(n), jnp.float32)
    y01 = jnp.asarray((rng.uniform(0, 1, n) > 0.5), jnp.float32)
    C = 10
    rows = max(1, n // C)
    z = jnp.asarray(rng.standard_normal((rows, C)), jnp.float32)
    lab = jnp.asarray(rng.integers(0, C, rows), jnp.int32)
    return [
        ("mse_loss", flj.mse_loss, lambda a, b: optax.losses.squared_error(a, b).mean(), (x, t)),
        ("huber_loss", lambda a, b: flj.huber_loss(a, b, delta=1.0),
         lambda a, b: optax.losses.huber_loss(a, b, delta=1.0).mean(), (x, t)),
        ("binary_cross_entropy_with_logits", flj.binary_cross_entropy_with_logits,
         lambda a, b: optax.losses.sigmoid_binary_cross_entropy(a, b).mean(), (x, y01)),
        (f"cross_entropy (C={C})", flj.cross_entropy,
         lambda a, b: optax.losses.softmax_cross_entropy_with_integer_labels(a, b).mean(), (z, lab)),
    ]


def _time(step, args, min_time):
    """Best seconds per call over calls lasting at least min_time in all."""
    best, total = float("inf"), 0.0
    while total < min_time:
        t0 = time.perf_counter()
        v, g = step(*args)
        g.block_until_ready()
        dt = time.perf_counter() - t0
        best, total = min(best, dt), total + dt
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1e3,1e7", help="elements per case, comma-separated")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds per case")
    ap.add_argument("--min-time", type=float, default=0.05, help="seconds of calls per round")
    args = ap.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import optax

    import fastloss
    import fastloss.jax as flj

    print(f"fastloss {fastloss.__version__}, jax {jax.__version__}, optax {optax.__version__}, "
          f"{os.cpu_count()} CPUs, fastloss threads {fastloss.get_num_threads()}")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"\njax.jit(jax.value_and_grad(loss)), float32, median of {args.rounds} interleaved rounds")
    print(f"{'loss':<36} {'N':>6} {'fastloss':>12} {'optax':>12} {'optax/fl':>9}")
    rng = np.random.default_rng(0)
    for size in (int(float(s)) for s in args.sizes.split(",")):
        for name, ours, theirs, data in _cases(jax, jnp, optax, flj, size, rng):
            steps = [jax.jit(jax.value_and_grad(f)) for f in (ours, theirs)]
            for s in steps:  # compile, and check they agree
                s(*data)[1].block_until_ready()
            v1, g1 = steps[0](*data)
            v2, g2 = steps[1](*data)
            assert np.allclose(float(v1), float(v2), rtol=1e-4, atol=1e-6), (name, float(v1), float(v2))
            times = ([], [])
            for _ in range(args.rounds):
                for k in (0, 1):
                    times[k].append(_time(steps[k], data, args.min_time))
            t_fl, t_ox = statistics.median(times[0]), statistics.median(times[1])
            print(f"{name:<36} {size:>6.0e} {_fmt(t_fl):>12} {_fmt(t_ox):>12} {t_ox / t_fl:>8.2f}x", flush=True)
    print(f"\nload average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


def _fmt(sec):
    return f"{sec * 1e6:.1f} us" if sec < 1e-3 else f"{sec * 1e3:.2f} ms"


if __name__ == "__main__":
    main()
