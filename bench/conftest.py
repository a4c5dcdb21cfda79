"""pytest-benchmark suites for fastloss (run explicitly: ``pytest bench/ --benchmark-enable``).

The main test run (``pytest``, testpaths = tests) never collects this
directory.  Without ``--benchmark-enable`` (pyproject's addopts disable
benchmarking) every benchmark body runs once, as a smoke test.
"""
import numpy as np
import pytest

import fastloss as fl
from fastloss import bench as B


def pytest_addoption(parser):
    parser.addoption("--fl-threads", default="all",
                     help='threads for fastloss and torch in the benchmarks: an integer or "all" (default)')


@pytest.fixture(scope="session")
def n_threads(request):
    return B._threads_item(request.config.getoption("--fl-threads"))


@pytest.fixture(scope="session", autouse=True)
def _restore_torch_threads():
    torch = B._torch()
    old = torch.get_num_threads() if torch is not None else None
    yield
    if torch is not None:
        torch.set_num_threads(old)


class _DataCache:
    """Inputs for one (case, n, dtype) at a time: the suites are ordered so
    every implementation of a case runs back to back, and holding every
    1e7-element data set at once would take gigabytes."""

    def __init__(self):
        self.key, self.data = None, None

    def get(self, case, n, dtype):
        key = (case.name, n, np.dtype(dtype).name)
        if key != self.key:
            self.key, self.data = None, None  # free the old arrays first
            self.data = case.setup(n, np.dtype(dtype), np.random.default_rng(0))
            self.key = key
        return self.data


@pytest.fixture(scope="session")
def bench_data():
    return _DataCache()


def pytest_report_header(config):
    cfg = fl.show_config(file=False)
    torch = B._torch()
    return (f"fastloss {cfg['version']}: openmp={cfg['openmp']} threads={cfg['num_threads']} "
            f"simd={cfg['simd_path']}; torch {torch.__version__ if torch else '(not installed)'}; "
            f"benchmark threads={config.getoption('--fl-threads')}")
