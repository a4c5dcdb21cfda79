"""The cache of large blocks behind the arrays fastloss returns.

A default call (no ``out=``) returns fresh arrays: at N = 1e7 float32 a
40 MB gradient.  Memory that large is mapped anew by the system on every
call and costs page faults and zeroing, often more than the loss itself.
So fastloss keeps the blocks of its own large arrays (1 MiB and up) once
you drop them, and hands them out again on the next call.  The arrays are
ordinary NumPy arrays; a block is reused only after its array (and every
view or tensor sharing it) is gone.  Nothing else in the process uses the
cache.

The cache is bounded: by default it keeps at most 4 times the largest
recent request, and never more than 1 GiB (or an eighth of the physical
memory); ``set_cache_limit`` or the environment variable
``FASTLOSS_CACHE_BYTES`` (read at import) sets another limit, and ``0``
disables it.
"""
from __future__ import annotations

import os
import warnings

from . import _alloc

__all__ = ["set_cache_limit", "cache_info"]

_SUFFIX = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def _parse_bytes(text: str) -> int:
    """``"512M"``, ``"1g"``, ``"1048576"`` -> bytes; ValueError otherwise."""
    s = text.strip().lower()
    if s.endswith("b"):
        s = s[:-1]
    mult = 1
    if s and s[-1] in _SUFFIX:
        mult, s = _SUFFIX[s[-1]], s[:-1]
    v = int(s.strip())
    if v < 0:
        raise ValueError(text)
    return v * mult


def _check_limit(nbytes, op: str):
    if nbytes is None:
        return None
    if isinstance(nbytes, bool) or not hasattr(nbytes, "__index__"):
        raise TypeError(f"{op}: nbytes must be a non-negative integer (bytes) or None, got {nbytes!r}")
    v = int(nbytes.__index__())
    if v < 0:
        raise ValueError(f"{op}: nbytes must be a non-negative integer (bytes) or None, got {v}")
    return v


def set_cache_limit(nbytes: int | None):
    """Bound the memory fastloss keeps for reuse by its next calls.

    fastloss keeps the blocks of the large arrays it returned (gradients,
    Hessians, per-element losses of 1 MiB and up) after you drop them, so
    that the next call does not map new memory and fault it in: a default
    call then runs as fast as one with an ``out=`` buffer.

    Parameters
    ----------
    nbytes : int or None
        At most this many bytes are kept idle; ``0`` disables the cache
        (and releases what it holds).  ``None`` restores the default: 4
        times the largest recent request, at most 1 GiB (or an eighth of
        the physical memory).

    Returns
    -------
    int or None
        The previous setting (``None`` for the default), so that it can
        be restored.

    Examples
    --------
    >>> import fastloss as fl
    >>> old = fl.set_cache_limit(256 << 20)   # keep at most 256 MiB
    >>> fl.cache_info()["limit"]
    268435456
    >>> fl.set_cache_limit(old)               # back to the previous setting
    268435456
    """
    v = _check_limit(nbytes, "set_cache_limit")
    old = _alloc.setting()
    _alloc.set_limit(-1 if v is None else v)
    return None if old < 0 else old


def cache_info() -> dict:
    """The state of fastloss's block cache.

    Returns
    -------
    dict
        ``limit`` (bytes kept at most, now), ``setting`` (``"auto"`` or the
        bytes set), ``idle_bytes`` and ``idle_blocks`` (kept, waiting for
        reuse), ``live_bytes`` and ``live_blocks`` (held by arrays now),
        ``hits`` and ``misses`` (large requests served from the cache or
        mapped anew), ``released`` (blocks returned to the system),
        ``min_bytes`` (the smallest request the cache serves).

    Examples
    --------
    >>> import fastloss as fl
    >>> sorted(fl.cache_info())[:3]
    ['hits', 'idle_blocks', 'idle_bytes']
    """
    s = _alloc.stats()
    st = _alloc.setting()
    s.pop("recent_max", None)
    s.update(limit=_alloc.limit(), setting="auto" if st < 0 else st, min_bytes=_alloc.MIN_BYTES)
    return s


def describe() -> str:
    """One line for show_config()."""
    st = _alloc.setting()
    lim = _alloc.limit()
    if st == 0:
        return "disabled (limit 0)"
    how = (f"auto: {_alloc.AUTO_MULT} x the largest recent request, at most {_alloc.ceiling() >> 20} MiB"
           if st < 0 else "set")
    s = _alloc.stats()
    return (f"limit {lim >> 20} MiB ({how}); {s['idle_bytes'] >> 20} MiB idle in {s['idle_blocks']} blocks; "
            f"requests >= {_alloc.MIN_BYTES >> 20} MiB")


def _from_env():
    text = os.environ.get("FASTLOSS_CACHE_BYTES")
    if text is None or not text.strip():
        return
    try:
        v = _parse_bytes(text)
    except ValueError:
        warnings.warn(
            f"fastloss: FASTLOSS_CACHE_BYTES must be a non-negative number of bytes "
            f"(optionally with K, M or G), got {text!r}; using the default",
            RuntimeWarning, stacklevel=2)
        return
    _alloc.set_limit(v)


_from_env()
