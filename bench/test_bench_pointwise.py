"""Pointwise losses: fastloss value+gradient vs the NumPy reference vs PyTorch
forward+backward, float32, N = 1e5 and 1e7.

    pytest bench/test_bench_pointwise.py --benchmark-enable
    pytest bench/ --benchmark-enable -k "mse_loss and 1e7" --fl-threads 1

Each (loss, N) is a benchmark group, so pytest-benchmark's table puts the
implementations of one loss side by side.  No speed is asserted: the
figures are for reading, and ``python -m fastloss bench`` prints the ratios.
"""
import numpy as np
import pytest

from fastloss import bench as B

SIZES = [10**5, 10**7]
DTYPE = np.float32
IMPLS = ["fastloss", "fastloss_cached", "fastloss_out", "numpy", "torch"]

# One flat list, ordered (n, case, impl) with impl varying fastest, so the
# data cache in conftest.py builds each data set once.
PARAMS = [
    pytest.param(case, n, impl, id=f"{case.name}-{B.size_label(n)}-{impl}")
    for n in SIZES
    for case in B.pointwise_cases()
    for impl in IMPLS
]


@pytest.mark.parametrize("case, n, impl", PARAMS)
def test_pointwise(benchmark, bench_data, n_threads, case, n, impl):
    if impl == "torch" and B._torch() is None:
        pytest.skip("torch is not installed")
    if impl == "numpy" and B._reference() is None:
        pytest.skip("fastloss.reference is not importable")
    data = bench_data.get(case, n, DTYPE)
    # The NumPy reference is single-threaded whatever n_threads says.
    fn = case.prepare(impl, data, n_threads)
    if fn is None:
        pytest.skip(f"{impl} has no {case.name}")
    benchmark.group = f"{case.name} N={B.size_label(n)} {np.dtype(DTYPE).name}"
    benchmark.extra_info.update(loss=case.name, n=n, dtype=np.dtype(DTYPE).name, impl=impl,
                                threads=n_threads)
    around = getattr(fn, "around", None)  # "fresh": the block cache off while timed
    if around is None:
        benchmark(fn)
    else:
        with around():
            benchmark(fn)
