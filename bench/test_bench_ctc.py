"""pytest-benchmark suite for CTC (the sequence driver).

The side-by-side script lives in the package: ``python -m fastloss bench
--family ctc``; see :mod:`fastloss.bench_ctc` for what is timed.

    pytest bench/test_bench_ctc.py --benchmark-enable
    pytest bench/test_bench_ctc.py --benchmark-enable -k "2000x1"
"""
import numpy as np
import pytest

from fastloss.bench_ctc import DTYPES, IMPLS, SHAPES, _thread_counts, prepare, setup


class _Cache:
    key = data = None

    def get(self, shape, dtype):
        if self.key != (shape, dtype):
            self.key, self.data = None, None
            self.data = setup(*shape, dtype)
            self.key = (shape, dtype)
        return self.data


_CACHE = _Cache()

PARAMS = [
    pytest.param(shape, dt, nt, impl, id=f"{np.dtype(dt).name}-{'x'.join(map(str, shape))}-t{nt}-{impl}")
    for dt in DTYPES
    for shape in SHAPES
    for nt in _thread_counts()
    for impl in IMPLS
]


@pytest.mark.parametrize("shape, dtype, n_threads, impl", PARAMS)
def test_ctc(benchmark, shape, dtype, n_threads, impl):
    fn = prepare(impl, _CACHE.get(shape, dtype), n_threads)
    if fn is None:
        pytest.skip(f"{impl} is not installed")
    benchmark.group = f"ctc {'x'.join(map(str, shape))} {np.dtype(dtype).name} threads={n_threads}"
    benchmark.extra_info.update(loss="ctc_loss", shape=shape, dtype=np.dtype(dtype).name, impl=impl,
                                threads=n_threads)
    benchmark(fn)
