"""Type stubs for the compiled row-over-classes driver (fastloss._rows)."""
from typing import Optional

import numpy as np
from numpy.typing import NDArray

LOSS_IDS: dict[str, int]
LABEL_CODES: dict[str, int]
BLOCK: int
TILE: int
CHUNK: int

def set_parallel_threshold(n: int) -> int: ...
def select_isa(force_baseline: bool) -> str: ...
def isa_name() -> str: ...
def block_items(C: int, S: int) -> int: ...
def run(
    loss_id: int,
    f64: bool,
    x: NDArray[np.floating],
    t: np.ndarray,
    tcode: int,
    w: Optional[NDArray[np.floating]],
    v: Optional[NDArray[np.floating]],
    g: Optional[NDArray[np.floating]],
    h: Optional[NDArray[np.floating]],
    l: Optional[NDArray[np.floating]],
    C: int,
    S: int,
    ignore: int,
    has_ignore: bool,
    pa: float,
    pb: float,
    pc: float,
    i0: int,
    i1: int,
    wsum: float,
    mode: int,
    gscale: float,
    denom: int,
    check_first: bool,
    n_threads: int,
    gt: Optional[NDArray[np.floating]] = ...,
    parts: Optional[NDArray[np.float64]] = ...,
    den_given: Optional[float] = ...,
    ra: Optional[NDArray[np.floating]] = ...,
    rb: Optional[NDArray[np.floating]] = ...,
    rw: Optional[NDArray[np.floating]] = ...,
    xsums: Optional[NDArray[np.float64]] = ...,
) -> tuple[float, float, int]: ...
def denominator(
    f64: bool,
    t: np.ndarray,
    tcode: int,
    w: Optional[NDArray[np.floating]],
    C: int,
    ignore: int,
    has_ignore: bool,
    denom: int,
    n_threads: int,
    parts: NDArray[np.float64],
) -> tuple[float, int]: ...
