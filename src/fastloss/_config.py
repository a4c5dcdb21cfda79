"""Library-wide settings: thread count, instruction-set path, build info."""
from __future__ import annotations

import os
import platform
import sys

import numpy as np

from . import _features, _overlap, _pointwise, _rows
from . import _sequence

__all__ = ["get_num_threads", "set_num_threads", "show_config"]

# The instruction-set path is chosen once, at import.
_FORCE_BASELINE = os.environ.get("FASTLOSS_FORCE_BASELINE", "").strip().lower() not in ("", "0", "false", "no")
_pointwise.select_isa(_FORCE_BASELINE)
_rows.select_isa(_FORCE_BASELINE)
_overlap.select_isa(_FORCE_BASELINE)
_features.select_isa(_FORCE_BASELINE)
_sequence.select_isa(_FORCE_BASELINE)

_num_threads: int | None = None


def get_num_threads() -> int:
    """The number of threads a call uses when ``n_threads`` is not given.

    This is the value set by :func:`set_num_threads`, or else OpenMP's
    current maximum, which follows ``OMP_NUM_THREADS`` and threadpoolctl's
    limits (never more than :data:`fastloss._config.MAX_THREADS`).

    Examples
    --------
    >>> import fastloss as fl
    >>> fl.get_num_threads() >= 1
    True
    """
    if _num_threads is not None:
        return _num_threads
    return min(max(1, _pointwise.max_threads()), MAX_THREADS)


def set_num_threads(n: int | None) -> None:
    """Set the default thread count of every fastloss call.

    ``None`` goes back to OpenMP's default (``OMP_NUM_THREADS``,
    threadpoolctl).  A per-call ``n_threads=`` wins over this.  ``n`` must
    be a positive integer no larger than ``max(64, 4 x os.cpu_count())``
    (or OpenMP's thread limit ``OMP_THREAD_LIMIT``, if lower): more is a
    ValueError, as it is for ``n_threads=`` of every call.

    Examples
    --------
    >>> import fastloss as fl
    >>> fl.set_num_threads(1); fl.get_num_threads()
    1
    >>> fl.set_num_threads(None)
    """
    global _num_threads
    if n is not None:
        n = _check_threads(n, "set_num_threads")
    _num_threads = n


def _thread_cap() -> int:
    """The most threads a call may ask for: max(64, 4 x the CPU count), or
    OpenMP's thread limit (OMP_THREAD_LIMIT) if that is lower.

    libgomp aborts the process ("Thread creation failed") or crashes when
    asked for thousands of threads, and no CPU gains from more threads than
    a few times its cores, so a larger request is an error, not a crash."""
    cap = max(64, 4 * (os.cpu_count() or 1))
    limit = _pointwise.thread_limit()
    return max(1, min(cap, limit)) if limit > 0 else cap


#: The largest ``n_threads`` accepted (see ``_thread_cap``); fixed at import.
MAX_THREADS = _thread_cap()


def _check_threads(n, op: str) -> int:
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, int) and not hasattr(n, "__index__"):
        raise TypeError(f"{op}: n_threads must be a positive integer or None, got {n!r}")
    n = int(n.__index__())
    if n < 1:
        raise ValueError(f"{op}: n_threads must be a positive integer or None, got {n}")
    if n > MAX_THREADS:
        raise ValueError(
            f"{op}: n_threads must be at most {MAX_THREADS} (max(64, 4 x the CPU count), or "
            f"OMP_THREAD_LIMIT if lower), got {n}")
    return n


def _threads(n, op: str) -> int:
    if n is None:   # get_num_threads(), inlined (a call costs a tenth of a small loss call)
        if _num_threads is not None:
            return _num_threads
        m = _pointwise.max_threads()
        return m if 0 < m <= MAX_THREADS else min(max(1, m), MAX_THREADS)
    if type(n) is int and 0 < n <= MAX_THREADS:
        return n
    return _check_threads(n, op)


def show_config(file=None) -> dict | None:
    """Print, or return, how this fastloss was built and how it will run.

    Reports the version, whether OpenMP is on, the default thread count,
    the SIMD path chosen at run time (``FASTLOSS_FORCE_BASELINE=1`` forces
    the baseline), the build flags and the block cache of the returned
    arrays (:func:`set_cache_limit`, ``FASTLOSS_CACHE_BYTES``).
    ``show_config()`` prints to stdout
    and ``show_config(file=f)`` to ``f``, returning None (as NumPy's
    ``show_config``: a REPL does not echo the table a second time);
    ``show_config(file=False)`` prints nothing and returns the dict.

    Examples
    --------
    >>> import fastloss as fl
    >>> cfg = fl.show_config(file=False)   # False: return the dict, print nothing
    >>> sorted(k for k in cfg if k in ("openmp", "simd_path", "version"))
    ['openmp', 'simd_path', 'version']
    """
    from . import __version__, _cache

    try:
        from . import _build_info as bi

        cflags, ldflags, flavor, cc = bi.CFLAGS, bi.LDFLAGS, bi.OPENMP_FLAVOR, bi.COMPILER
    except ImportError:  # pragma: no cover - a build always writes it
        cflags = ldflags = flavor = cc = "unknown"
    cfg = {
        "version": __version__,
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.machine()}",
        "openmp": _pointwise.OPENMP,
        "openmp_flavor": flavor,
        "num_threads": get_num_threads(),
        "max_n_threads": MAX_THREADS,
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "simd_path": _pointwise.isa_name(),
        "simd_paths_built": "x86-64-v3 + baseline" if _pointwise.have_v3_build() else "baseline",
        "force_baseline": _FORCE_BASELINE,
        "compiler": cc,
        "cflags": cflags,
        "ldflags": ldflags,
        "block_size": _pointwise.BLOCK,
        "cache": _cache.describe(),
    }
    if file is not False:
        out = file if file is not None else sys.stdout
        width = max(map(len, cfg))
        print("fastloss configuration", file=out)
        for k, v in cfg.items():
            print(f"  {k:<{width}} : {v}", file=out)
        return None
    return cfg
