"""Type stubs for the compiled pointwise driver (fastloss._pointwise)."""
from typing import Optional

import numpy as np
from numpy.typing import NDArray

LOSS_IDS: dict[str, int]
TARGET_GRAD: frozenset[str]
BLOCK: int
OPENMP: bool

def set_parallel_threshold(n: int | tuple[int, int] | None) -> tuple[int, int]: ...
def select_isa(force_baseline: bool) -> str: ...
def isa_name() -> str: ...
def have_v3_build() -> bool: ...
def max_threads() -> int: ...
def thread_limit() -> int: ...
def run(
    loss_id: int,
    f64: bool,
    x: NDArray[np.floating],
    y: NDArray[np.floating],
    w: Optional[NDArray[np.floating]],
    e: Optional[NDArray[np.floating]],
    e_period: int,
    g: Optional[NDArray[np.floating]],
    h: Optional[NDArray[np.floating]],
    l: Optional[NDArray[np.floating]],
    g2: Optional[NDArray[np.floating]],
    pa: float,
    pb: float,
    pc: float,
    i0: int,
    i1: int,
    mode: int,
    gscale: float,
    n_threads: int,
    gt: Optional[NDArray[np.floating]] = ...,
    parts: Optional[NDArray[np.float64]] = ...,
    acc: bool = ...,
    e2: Optional[NDArray[np.floating]] = ...,
    xsums: Optional[NDArray[np.float64]] = ...,
) -> tuple[float, bool]: ...
def stream_add(
    a: NDArray[np.float32], b: NDArray[np.float32], c: NDArray[np.float32], n_threads: int
) -> None: ...
def overlaps(a: np.ndarray, b: np.ndarray) -> bool: ...
def vmath(name: str, x: np.ndarray) -> np.ndarray: ...
def run_pair(
    id1: int,
    id2: int,
    f64: bool,
    x1: NDArray[np.floating],
    y1: NDArray[np.floating],
    g1: Optional[NDArray[np.floating]],
    gt1: Optional[NDArray[np.floating]],
    l1: Optional[NDArray[np.floating]],
    gscale1: float,
    x2: NDArray[np.floating],
    y2: NDArray[np.floating],
    g2: Optional[NDArray[np.floating]],
    gt2: Optional[NDArray[np.floating]],
    l2: Optional[NDArray[np.floating]],
    gscale2: float,
    mode: int,
    n_threads: int,
) -> tuple[float, bool, float, bool]: ...
