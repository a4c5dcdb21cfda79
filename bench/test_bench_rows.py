"""pytest-benchmark suite for the row-over-classes losses (cross-entropy).

The side-by-side script lives in the package: ``python -m fastloss bench
--family rows``; see :mod:`fastloss.bench_rows` for what is timed.

    pytest bench/test_bench_rows.py --benchmark-enable
    pytest bench/test_bench_rows.py --benchmark-enable -k "float32 and 8192x1000"
"""
import numpy as np
import pytest

from fastloss.bench_rows import DTYPES, IMPLS, SHAPES, _thread_counts, prepare, setup

# ------------------------------------------------------------------ pytest-benchmark

class _Cache:
    key = data = None

    def get(self, N, C, dtype):
        if self.key != (N, C, dtype):
            self.key, self.data = None, None
            self.data = setup(N, C, dtype)
            self.key = (N, C, dtype)
        return self.data


_CACHE = _Cache()

PARAMS = [
    pytest.param(N, C, dt, nt, impl, id=f"{np.dtype(dt).name}-{N}x{C}-t{nt}-{impl}")
    for dt in DTYPES
    for (N, C) in SHAPES
    for nt in _thread_counts()
    for impl in IMPLS
]


@pytest.mark.parametrize("N, C, dtype, n_threads, impl", PARAMS)
def test_cross_entropy(benchmark, N, C, dtype, n_threads, impl):
    x, y = _CACHE.get(N, C, dtype)
    fn = prepare(impl, x, y, n_threads)
    if fn is None:
        pytest.skip(f"{impl} is not installed")
    benchmark.group = f"cross_entropy {N}x{C} {np.dtype(dtype).name} threads={n_threads}"
    benchmark.extra_info.update(loss="cross_entropy", shape=(N, C), dtype=np.dtype(dtype).name, impl=impl,
                                threads=n_threads)
    around = getattr(fn, "around", None)  # "fresh": the block cache off while timed
    if around is None:
        benchmark(fn)
    else:
        with around():
            benchmark(fn)


