import os

import numpy as np
import pytest

import fastloss as fl


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def parallel_always():
    """Make every call take the parallel path, so small inputs exercise threads."""
    from fastloss import _pointwise

    old = _pointwise.set_parallel_threshold(0)
    yield
    _pointwise.set_parallel_threshold(old)


def pytest_report_header(config):
    cfg = fl.show_config(file=False)
    return f"fastloss {cfg['version']}: openmp={cfg['openmp']} threads={cfg['num_threads']} simd={cfg['simd_path']}"
