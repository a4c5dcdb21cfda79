"""Type stubs for the compiled summary pass (fastloss._summary)."""
from typing import Optional

import numpy as np
from numpy.typing import NDArray

BLOCK: int

def summarize(
    a: NDArray[np.floating],
    b: Optional[NDArray[np.floating]] = None,
    *,
    row: int = 0,
    row_exp: bool = False,
    moments: bool = True,
    shift: float = 0.0,
    shift_b: float = 0.0,
    shift_r: float = 0.0,
    n_threads: int = 1,
) -> dict[str, float]: ...
def count_labels(
    labels: NDArray[np.integer], C: int, ignore_index: int
) -> tuple[NDArray[np.int64], int, int]: ...
