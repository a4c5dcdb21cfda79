"""Type stubs for the compiled set-overlap driver (fastloss._overlap)."""
from typing import Optional

import numpy as np
from numpy.typing import NDArray

TARGET_CODES: dict[str, int]
DENSE: int
BLOCK: int
K: int
TILE: int
BOX_BLOCK: int
BOX_KINDS: dict[str, int]

def set_parallel_threshold(n: int) -> int: ...
def set_max_groups(n: int) -> int: ...
def select_isa(force_baseline: bool) -> str: ...
def isa_name() -> str: ...
def block_pixels(C: int, S: int) -> int: ...
def seg(
    f64: bool,
    x: NDArray[np.floating],
    t: np.ndarray,
    tcode: int,
    g: Optional[NDArray[np.floating]],
    N: int,
    C: int,
    S: int,
    softmax: bool,
    from_logits: bool,
    has_ignore: bool,
    ignore: int,
    per_image: bool,
    with_ce: bool,
    w: Optional[NDArray[np.float64]],
    sel: Optional[NDArray[np.uint8]],
    alpha: float,
    beta: float,
    gamma: float,
    smooth: float,
    eps: float,
    log_loss: bool,
    overlap_w: float,
    ce_w: float,
    mean: bool,
    n_threads: int,
    groups: int = ...,
    sums_only: bool = ...,
    coef_in: Optional[NDArray[np.float64]] = ...,
    terms: Optional[NDArray[np.float64]] = ...,
    accumulate: bool = ...,
    gscale: float = ...,
) -> tuple[Optional[NDArray[np.float64]], int]: ...
def seg_groups(N: int, C: int, S: int) -> int: ...
def seg_coefs(
    sums: NDArray[np.float64],
    C: int,
    w: Optional[NDArray[np.float64]],
    sel: Optional[NDArray[np.uint8]],
    alpha: float,
    beta: float,
    gamma: float,
    smooth: float,
    eps: float,
    log_loss: bool,
    overlap_w: float,
    ce_w: float,
    set_scale: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]: ...
def lovasz(
    softmax: bool,
    f64: bool,
    x: NDArray[np.floating],
    t: np.ndarray,
    tcode: int,
    g: Optional[NDArray[np.floating]],
    N: int,
    C: int,
    S: int,
    from_logits: bool,
    has_ignore: bool,
    ignore: int,
    per_image: bool,
    classes_mode: int,
    sel: Optional[NDArray[np.uint8]],
    w: Optional[NDArray[np.float64]],
    mean: bool,
    n_threads: int,
    nsets_all: int = ...,
) -> tuple[NDArray[np.float64], int]: ...
def boxes(
    kind: int,
    f64: bool,
    b1: NDArray[np.floating],
    b2: NDArray[np.floating],
    g1: Optional[NDArray[np.floating]],
    g2: Optional[NDArray[np.floating]],
    l: Optional[NDArray[np.floating]],
    n: int,
    eps: float,
    gscale: float,
    n_threads: int,
) -> float: ...
