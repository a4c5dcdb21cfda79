"""Type stubs for the compiled trimmed-reduction driver (fastloss._trim)."""
from typing import Optional

import numpy as np
from numpy.typing import NDArray

BLOCK: int

def set_parallel_threshold(n: Optional[int]) -> int: ...
def key(v: float, f64: bool) -> int: ...
def trim(
    l: NDArray[np.floating],
    g: Optional[NDArray[np.floating]],
    h: Optional[NDArray[np.floating]],
    w: Optional[NDArray[np.floating]],
    lo: Optional[NDArray[np.floating]],
    k_lo: int,
    k_hi: int,
    gscale: float,
    n_threads: int,
    winsor: bool = ...,
) -> tuple[float, bool]: ...
