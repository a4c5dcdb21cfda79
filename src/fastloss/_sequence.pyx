# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The sequence driver: dynamic programming over time (CTC).

The recursion and its split over threads live in ``_src/fl_ctc_math.h``;
this module owns what the driver shares: the label check before anything
is written, the per-thread workspaces, the one parallel region (every
thread runs the worker with its thread number) and the GIL.  It trusts
its caller (``fastloss._sequence_api``), which validates every array,
length and parameter first: the input is C-contiguous of the working
dtype, labels are int64 or int32, lengths and offsets are int64 arrays of
N entries within bounds, and the buffers have the input's layout.
"""
cimport numpy as cnp
from cython.parallel cimport parallel, threadid
from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, free

cnp.import_array()

cdef extern from "_src/fl_sequence.h" nogil:
    ctypedef Py_ssize_t fl_idx
    ctypedef struct fl_ctc_args:
        const void *x
        void *g
        fl_idx Tlen, N, C
        fl_idx st, sn
        const void *tg
        int t64
        const int64_t *toff
        const int64_t *il
        const int64_t *tl
        int64_t blank
        int logits
        const double *gs
        fl_idx K
        double *nll
    ctypedef struct fl_ctc_work:
        pass
    ctypedef void (*fl_ctc_worker_fn)(const fl_ctc_args *a, fl_ctc_work *w, int tid, int nthr) noexcept nogil
    int fl_ctc_check_labels(const fl_ctc_args *a, fl_idx *bad_n, fl_idx *bad_j, int64_t *bad_v)
    int fl_ctc_alloc(fl_ctc_work *w, int P, fl_idx Tmax, fl_idx Smax, fl_idx C, int grad, int logits, fl_idx K)
    void fl_ctc_free(fl_ctc_work *w, int P)
    size_t fl_ctc_work_doubles(fl_idx Tmax, fl_idx Smax, fl_idx C, int grad, int logits, fl_idx K)
    fl_ctc_worker_fn fl_ctc_get(int f64)
    const char *fl_sequence_select_isa(int force_baseline)
    const char *fl_sequence_isa_name()

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #else
    static int omp_get_max_threads(void) { return 1; }
    static int omp_get_num_threads(void) { return 1; }
    #endif
    """
    int omp_get_max_threads() nogil
    int omp_get_num_threads() nogil

# Below this many state-steps (sum over the samples of input length times
# 2 S + 1) a call runs on one thread.  Measured (float32 with gradient,
# best of 200 interleaved rounds, 2 cores): 140 state-steps 19.1 us on one
# thread and 19.7 on two, 880: 29.9 and 25.9 us, 2720: 55.6 and 39.5 us.
cdef Py_ssize_t _parallel_min = 1024

# A thread keeps the whole alpha/beta table of its sample (8 Tmax (2 Smax + 1)
# bytes) up to this size; beyond it, checkpoints every K = ceil(sqrt(Tmax))
# rows and one segment of K rows (8 (Tmax / K + K + 3) (2 Smax + 1) bytes),
# recomputing each segment once more in the gradient pass (about a third
# more time).  The result is the same bits either way.
cdef Py_ssize_t _table_budget = 32 * 1024 * 1024


def set_parallel_threshold(Py_ssize_t n):
    """Run calls with fewer than ``n`` state-steps on one thread (for tests)."""
    global _parallel_min
    old = _parallel_min
    _parallel_min = n
    return old


def set_table_budget(Py_ssize_t nbytes):
    """Keep the whole table per thread up to ``nbytes``, checkpoints beyond (for tests)."""
    global _table_budget
    old = _table_budget
    _table_budget = nbytes
    return old


def checkpoint_rows(Py_ssize_t Tmax, Py_ssize_t Smax):
    """K, the rows between checkpoints for these longest lengths (0: the whole table)."""
    cdef Py_ssize_t K
    if 8 * Tmax * (2 * Smax + 1) <= _table_budget:
        return 0
    K = 1
    while K * K < Tmax:
        K += 1
    return K


def select_isa(bint force_baseline):
    return fl_sequence_select_isa(force_baseline).decode()


def isa_name():
    return fl_sequence_isa_name().decode()


def work_bytes(Py_ssize_t Tmax, Py_ssize_t Smax, Py_ssize_t C, bint grad, bint logits):
    """Bytes of one thread's workspace for these longest lengths."""
    return fl_ctc_work_doubles(Tmax, Smax, C, grad, logits, checkpoint_rows(Tmax, Smax) if grad else 0) * 8


cdef inline void* _ptr(object a):
    if a is None:
        return NULL
    return cnp.PyArray_DATA(<cnp.ndarray>a)


def ctc(bint f64, x, g, Py_ssize_t T, Py_ssize_t N, Py_ssize_t C, Py_ssize_t st, Py_ssize_t sn,
        tg, bint t64, toff, il, tl, long long blank, bint logits, gs, nll,
        Py_ssize_t Tmax, Py_ssize_t Smax, Py_ssize_t work, int n_threads):
    """Run CTC over the N samples: nll[n] = -log p of each, and the gradient
    into g (scaled per sample by gs) unless g is None.

    Returns None, or ``(n, j, label)`` for the first target label outside
    [0, C) or equal to blank; then nothing has been written.  ``work`` is
    the call's state-steps (for the one-thread threshold).
    """
    cdef fl_ctc_args a
    cdef fl_idx bad_n = -1, bad_j = -1
    cdef int64_t bad_v = 0
    cdef int nt = n_threads, P, rc, tid
    cdef fl_ctc_work *ws
    cdef fl_ctc_worker_fn fn = fl_ctc_get(f64)
    a.x = _ptr(x); a.g = _ptr(g)
    a.Tlen = T; a.N = N; a.C = C; a.st = st; a.sn = sn
    a.tg = _ptr(tg); a.t64 = t64
    a.toff = <const int64_t*>_ptr(toff); a.il = <const int64_t*>_ptr(il); a.tl = <const int64_t*>_ptr(tl)
    a.blank = blank; a.logits = logits
    a.gs = <const double*>_ptr(gs); a.nll = <double*>_ptr(nll)
    a.K = checkpoint_rows(Tmax, Smax) if g is not None else 0
    with nogil:
        rc = fl_ctc_check_labels(&a, &bad_n, &bad_j, &bad_v)
    if rc:
        return (bad_n, bad_j, bad_v)
    if N == 0:
        return None
    if nt <= 0:
        nt = omp_get_max_threads()
    if work < _parallel_min:
        nt = 1
    # more threads than 2 per sample would idle
    if nt > 2 * N:
        nt = <int>(2 * N)
    P = nt
    ws = <fl_ctc_work*>malloc(P * sizeof(fl_ctc_work))
    if ws == NULL:
        raise MemoryError()
    if fl_ctc_alloc(ws, P, Tmax, Smax, C, g is not None, logits, a.K) != 0:
        free(ws)
        raise MemoryError(f"ctc_loss: cannot allocate {P} workspaces of "
                          f"{work_bytes(Tmax, Smax, C, g is not None, logits)} bytes")
    try:
        with nogil:
            if nt > 1:
                with parallel(num_threads=nt):
                    tid = threadid()
                    fn(&a, ws, tid, omp_get_num_threads())
            else:
                fn(&a, ws, 0, 1)
    finally:
        fl_ctc_free(ws, P)
        free(ws)
    return None
