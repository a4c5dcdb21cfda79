"""Type stubs for the compiled sequence driver (fastloss._sequence)."""
from typing import Optional

import numpy as np
from numpy.typing import NDArray

def set_parallel_threshold(n: int) -> int: ...
def select_isa(force_baseline: bool) -> str: ...
def isa_name() -> str: ...
def work_bytes(Tmax: int, Smax: int, C: int, grad: bool, logits: bool) -> int: ...
def ctc(
    f64: bool,
    x: NDArray[np.floating],
    g: Optional[NDArray[np.floating]],
    T: int,
    N: int,
    C: int,
    st: int,
    sn: int,
    tg: NDArray[np.integer],
    t64: bool,
    toff: NDArray[np.int64],
    il: NDArray[np.int64],
    tl: NDArray[np.int64],
    blank: int,
    logits: bool,
    gs: NDArray[np.float64],
    nll: NDArray[np.float64],
    Tmax: int,
    Smax: int,
    work: int,
    n_threads: int,
) -> Optional[tuple[int, int, int]]: ...
