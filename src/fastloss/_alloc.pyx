# cython: language_level=3, boundscheck=False, wraparound=False
"""The memory of the arrays fastloss allocates: ``empty(shape, dtype)``.

Every driver allocates its outputs (gradients, Hessians, per-element
losses) with :func:`empty`, never with ``np.empty``.  A request of at least
``MIN_BYTES`` bytes is served from a bounded cache of large blocks
(``_src/fl_alloc.c``): NumPy's memory handler (NEP 49) is switched to the
cache's for the one ``np.empty`` call and back at once, so only fastloss's
own allocations use it.  The array returned is an ordinary owned,
writeable NumPy array; it keeps a reference to the handler that allocated
it, and NumPy frees it through that handler when the array dies -- which
is when (and only when) its block goes back to the cache for the next
call.  A view, a ``torch.from_numpy`` tensor or any other holder of the
array keeps the block alive.

Smaller requests, and every request while the cache is disabled
(limit 0), are a plain ``np.empty``.
"""
cimport numpy as cnp
from cpython.pycapsule cimport PyCapsule_New
from libc.stdint cimport int64_t

import numpy as np

cnp.import_array()

cdef extern from "_src/fl_alloc.h" nogil:
    size_t FL_CACHE_MIN
    int FL_CACHE_AUTO_MULT
    int FL_CACHE_SLOTS
    ctypedef struct fl_cache_stats_t:
        int64_t idle_bytes, idle_blocks
        int64_t live_bytes, live_blocks
        int64_t hits, misses
        int64_t released
        int64_t recent_max
    void fl_cache_set_limit(int64_t limit)
    int64_t fl_cache_limit()
    int64_t fl_cache_setting()
    int64_t fl_cache_ceiling()
    void fl_cache_trim()
    void fl_cache_stats(fl_cache_stats_t *s)
    int fl_cache_init()

cdef extern from *:
    """
    static PyDataMem_Handler fl_cache_handler = {
        "fastloss_block_cache", 1,
        {NULL, fl_cache_malloc, fl_cache_calloc, fl_cache_realloc, fl_cache_free}
    };
    static void *fl_cache_handler_ptr(void) { return (void *)&fl_cache_handler; }
    """
    void *fl_cache_handler_ptr()

#: requests of at least this many bytes come from the cache
MIN_BYTES = FL_CACHE_MIN
#: the automatic limit is this many times the largest recent request
AUTO_MULT = FL_CACHE_AUTO_MULT
#: at most this many idle blocks are kept
SLOTS = FL_CACHE_SLOTS

if fl_cache_init() != 0:  # pragma: no cover - pthread_atfork only fails without memory
    raise MemoryError("fastloss: could not register the allocation cache's fork handlers")

# The capsule NumPy stores in each array allocated through the cache (the
# name "mem_handler" is NumPy's requirement).  Module-level, so it lives as
# long as the interpreter; every array holds a reference of its own too.
_HANDLER = PyCapsule_New(fl_cache_handler_ptr(), "mem_handler", NULL)
_np_empty = np.empty

cdef bint _enabled = True   # False while the limit is 0
cdef Py_ssize_t _min_bytes = FL_CACHE_MIN


def empty(shape, dtype):
    """``np.empty(shape, dtype)``, its memory from the block cache when it is
    large (``shape`` a tuple of ints, ``dtype`` a NumPy dtype object)."""
    cdef Py_ssize_t n = (<cnp.dtype>dtype).itemsize
    if _enabled:
        for d in shape:
            n *= <Py_ssize_t>d
        if n >= _min_bytes:
            old = cnp.PyDataMem_SetHandler(_HANDLER)
            try:
                return _np_empty(shape, dtype)
            finally:
                cnp.PyDataMem_SetHandler(old)
    return _np_empty(shape, dtype)


def set_limit(long long nbytes):
    """Set the cache's limit: -1 automatic, 0 disabled, else bytes."""
    global _enabled
    fl_cache_set_limit(nbytes)
    _enabled = nbytes != 0


def setting():
    """The limit as set: -1 for automatic, else bytes."""
    return fl_cache_setting()


def limit():
    """The limit in force now, in bytes."""
    return fl_cache_limit()


def ceiling():
    """The ceiling of the automatic limit on this machine, in bytes."""
    return fl_cache_ceiling()


def trim():
    """Return every idle block to the system."""
    fl_cache_trim()


def stats():
    """The cache's counters, as a dict."""
    cdef fl_cache_stats_t s
    fl_cache_stats(&s)
    return {"idle_bytes": s.idle_bytes, "idle_blocks": s.idle_blocks,
            "live_bytes": s.live_bytes, "live_blocks": s.live_blocks,
            "hits": s.hits, "misses": s.misses, "released": s.released,
            "recent_max": s.recent_max}

