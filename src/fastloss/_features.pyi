"""Type stubs for the compiled row-over-features driver (fastloss._features)."""
from typing import Optional

import numpy as np
from numpy.typing import NDArray

LOSS_IDS: dict[str, int]
PASS_IDS: dict[str, int]
DISTANCES: dict[str, int]
BLOCK: int
TILE: int
COLS: int

def set_parallel_threshold(n: int) -> int: ...
def select_isa(force_baseline: bool) -> str: ...
def isa_name() -> str: ...
def block_rows(D: int) -> int: ...
def run(
    loss_id: int,
    f64: bool,
    a: NDArray[np.floating],
    b: NDArray[np.floating],
    c: Optional[NDArray[np.floating]],
    t: Optional[NDArray[np.floating]],
    w: Optional[NDArray[np.floating]],
    ga: Optional[NDArray[np.floating]],
    gb: Optional[NDArray[np.floating]],
    gc: Optional[NDArray[np.floating]],
    l: Optional[NDArray[np.floating]],
    R: int,
    D: int,
    pa: float,
    pb: float,
    pc: float,
    i0: int,
    i1: int,
    mode: int,
    gscale: float,
    n_threads: int,
) -> tuple[float, int]: ...
def batch(
    pass_id: int,
    f64: bool,
    e: NDArray[np.floating],
    s: NDArray[np.floating],
    lab: NDArray[np.int32],
    w: Optional[NDArray[np.floating]],
    sq: NDArray[np.float64],
    inv: NDArray[np.float64],
    nt_: NDArray[np.floating],
    cstart: NDArray[np.int64],
    cmem: NDArray[np.int64],
    loss: NDArray[np.float64],
    cnt: NDArray[np.float64],
    pidx: Optional[NDArray[np.int64]],
    nidx: Optional[NDArray[np.int64]],
    coef: Optional[NDArray[np.float64]],
    part: Optional[NDArray[np.float64]],
    g: Optional[NDArray[np.floating]],
    N: int,
    D: int,
    pa: float,
    pb: float,
    i0: int,
    i1: int,
    gscale: float,
    mode: int,
    n_threads: int,
    r0: int = 0,
    r1: int = -1,
) -> None: ...
