# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The row-over-features driver: one parallel loop for every loss that reads
rows of D features (triplets, pairs) and the passes of the in-batch losses.

The per-loss math lives in ``_src/fl_features_math.h`` (rows) and
``_src/fl_features_batch.h`` (in-batch passes); this module owns blocks,
threads, the deterministic reduction and the GIL.  It trusts its caller
(``fastloss._features_api``), which validates every array and parameter
before anything here runs: arrays are C-contiguous, of the working dtype,
and of the sizes their roles need.
"""
cimport numpy as cnp
from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport malloc, free

cnp.import_array()

cdef extern from "_src/fl_features.h" nogil:
    ctypedef Py_ssize_t fl_idx
    ctypedef struct fl_params:
        double pa, pb, pc
        int i0, i1
    ctypedef struct fl_ft_args:
        const void *a
        const void *b
        const void *c
        const void *t
        const void *w
        void *ga
        void *gb
        void *gc
        void *l
        fl_idx D
        fl_params prm
        double gscale
        int mode
    ctypedef struct fl_bt_args:
        const void *e
        void *s
        fl_idx s0
        const int32_t *lab
        const void *w
        double *sq
        double *inv
        void *nt
        const int64_t *cstart
        const int64_t *cmem
        double *loss
        double *cnt
        int64_t *pidx
        int64_t *nidx
        double *coef
        double *part
        void *g
        fl_idx N, D
        fl_params prm
        double gscale
        int mode
    ctypedef double (*fl_ft_block_fn)(const fl_ft_args *a, fl_idx start, fl_idx n,
                                      fl_idx *bad) noexcept nogil
    ctypedef double (*fl_bt_block_fn)(const fl_bt_args *a, fl_idx start, fl_idx n,
                                      fl_idx *bad) noexcept nogil
    int FL_FT_BLOCK, FL_BT_TILE, FL_BT_COLS
    int FL_BT_EUCLIDEAN, FL_BT_SQEUCLIDEAN, FL_BT_COSINE
    int fl_ft_nlosses()
    const char *fl_ft_name(int i)
    fl_ft_block_fn fl_ft_get(int loss_id, int f64)
    fl_idx fl_ft_block_rows(fl_idx D)
    int fl_bt_npasses()
    const char *fl_bt_name(int i)
    fl_bt_block_fn fl_bt_get(int pass_id, int f64)
    const char *fl_features_select_isa(int force_baseline)
    const char *fl_features_isa_name()

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #else
    static int omp_get_max_threads(void) { return 1; }
    #endif
    """
    int omp_get_max_threads() nogil

#: kernel id of each row loss, by name
LOSS_IDS = {fl_ft_name(i).decode(): i for i in range(fl_ft_nlosses())}
#: id of each in-batch pass, by name
PASS_IDS = {fl_bt_name(i).decode(): i for i in range(fl_bt_npasses())}
DISTANCES = {"euclidean": FL_BT_EUCLIDEAN, "squared_euclidean": FL_BT_SQEUCLIDEAN, "cosine": FL_BT_COSINE}
BLOCK = FL_FT_BLOCK
TILE = FL_BT_TILE
COLS = FL_BT_COLS

cdef int _NORMS = PASS_IDS["norms"]
cdef int _SCATTER = PASS_IDS["hard_scatter"]
cdef int _SYM = PASS_IDS["sym"]
cdef int _FINAL = PASS_IDS["final"]

# Below this many elements a call runs on one thread.  A row of D features
# costs a few flops per element per operand, like a pointwise loss of 2-3
# operands; the threshold is the pointwise driver's.
cdef Py_ssize_t _parallel_min = 32768


def set_parallel_threshold(Py_ssize_t n):
    """Run calls with fewer than ``n`` elements on one thread (for tests)."""
    global _parallel_min
    old = _parallel_min
    _parallel_min = n
    return old


def select_isa(bint force_baseline):
    return fl_features_select_isa(force_baseline).decode()


def isa_name():
    return fl_features_isa_name().decode()


def block_rows(Py_ssize_t D):
    """Rows per block of the reduction for rows of D features."""
    return fl_ft_block_rows(D)


cdef inline void* _ptr(object a):
    if a is None:
        return NULL
    return cnp.PyArray_DATA(<cnp.ndarray>a)


cdef inline int _nthreads(int n_threads, Py_ssize_t work, fl_idx nblocks) noexcept:
    cdef int nt = n_threads
    if nt <= 0:
        nt = omp_get_max_threads()
    if work < _parallel_min or nblocks < 2:
        nt = 1
    return nt


def run(int loss_id, bint f64, a, b, c, t, w, ga, gb, gc, l, Py_ssize_t R, Py_ssize_t D,
        double pa, double pb, double pc, int i0, int i1, int mode, double gscale, int n_threads,
        double[::1] parts=None):
    """Run row loss ``loss_id`` over the R rows of D features of a, b (, c).

    Returns ``(total, bad)``: the float64 sum of the weighted row losses,
    added block by block in a fixed order, and the first row whose target
    the loss does not accept (-1 if none).  Outputs that are None are not
    written.  ``parts`` (float64, one per block of ``block_rows(D)`` rows),
    if given, receives the blocks' sums (fastloss.dask adds those of every
    chunk).
    """
    cdef fl_ft_args A
    cdef fl_idx per = fl_ft_block_rows(D)
    cdef fl_idx nblocks = (R + per - 1) // per
    cdef fl_idx k, start
    cdef double stack_part[16]
    cdef fl_idx stack_bad[16]
    cdef double *part = stack_part
    cdef fl_idx *badv = stack_bad
    cdef double total = 0.0
    cdef fl_idx bad = -1
    cdef fl_ft_block_fn fn = fl_ft_get(loss_id, f64)
    cdef int nt = _nthreads(n_threads, R * D, nblocks)
    cdef bint want_parts = parts is not None
    if fn == NULL:
        raise ValueError(f"unknown row-over-features loss id {loss_id}")
    if want_parts and parts.shape[0] != nblocks:
        raise ValueError(f"parts must have {nblocks} elements, got {parts.shape[0]}")
    A.a = _ptr(a); A.b = _ptr(b); A.c = _ptr(c); A.t = _ptr(t); A.w = _ptr(w)
    A.ga = _ptr(ga); A.gb = _ptr(gb); A.gc = _ptr(gc); A.l = _ptr(l)
    A.D = D
    A.prm.pa = pa; A.prm.pb = pb; A.prm.pc = pc; A.prm.i0 = i0; A.prm.i1 = i1
    A.gscale = gscale
    A.mode = mode
    if nblocks > 16:
        part = <double*>malloc(nblocks * sizeof(double))
        badv = <fl_idx*>malloc(nblocks * sizeof(fl_idx))
        if part == NULL or badv == NULL:
            free(part); free(badv)
            raise MemoryError()
    try:
        with nogil:
            if nt > 1:
                for k in prange(nblocks, schedule='static', num_threads=nt):
                    badv[k] = -1
                    part[k] = fn(&A, k * per, min(per, R - k * per), &badv[k])
            else:
                for k in range(nblocks):
                    badv[k] = -1
                    start = k * per
                    part[k] = fn(&A, start, min(per, R - start), &badv[k])
            for k in range(nblocks):
                total += part[k]
                if bad < 0 and badv[k] >= 0:
                    bad = badv[k]
            if want_parts:
                for k in range(nblocks):
                    parts[k] = part[k]
    finally:
        if part != stack_part:
            free(part)
            free(badv)
    return total, bad


def batch(int pass_id, bint f64, e, s, lab, w, sq, inv, nt_, cstart, cmem, loss, cnt, pidx, nidx, coef, part,
          g, Py_ssize_t N, Py_ssize_t D, double pa, double pb, int i0, int i1, double gscale, int mode,
          int n_threads, Py_ssize_t r0=0, Py_ssize_t r1=-1):
    """Run one pass of an in-batch loss (see fl_features.h) over its items,
    in parallel blocks.  The passes write per-item results only, so the
    blocking changes no bit of them.  A row pass may run over the anchors
    [r0, r1) only, with ``s`` holding just those rows of S."""
    cdef fl_bt_args A
    cdef fl_bt_block_fn fn = fl_bt_get(pass_id, f64)
    cdef fl_idx items, per, nblocks, k, nb
    cdef Py_ssize_t work
    cdef fl_idx stack_bad[16]
    cdef fl_idx *badv = stack_bad
    cdef int nomem = 0
    cdef int nt
    if fn == NULL:
        raise ValueError(f"unknown in-batch pass id {pass_id}")
    if r1 < 0:
        r1 = N
    A.e = _ptr(e); A.s = _ptr(s); A.s0 = r0; A.lab = <const int32_t*>_ptr(lab); A.w = _ptr(w)
    A.sq = <double*>_ptr(sq); A.inv = <double*>_ptr(inv); A.nt = _ptr(nt_)
    A.cstart = <const int64_t*>_ptr(cstart); A.cmem = <const int64_t*>_ptr(cmem)
    A.loss = <double*>_ptr(loss); A.cnt = <double*>_ptr(cnt)
    A.pidx = <int64_t*>_ptr(pidx); A.nidx = <int64_t*>_ptr(nidx)
    A.coef = <double*>_ptr(coef); A.part = <double*>_ptr(part); A.g = _ptr(g)
    A.N = N; A.D = D
    A.prm.pa = pa; A.prm.pb = pb; A.prm.pc = 0.0; A.prm.i0 = i0; A.prm.i1 = i1
    A.gscale = gscale
    A.mode = mode
    if pass_id == _NORMS or pass_id == _FINAL:
        items, per, work = N, fl_ft_block_rows(D), N * D
    elif pass_id == _SCATTER:
        items, per, work = (D + FL_BT_COLS - 1) // FL_BT_COLS, 1, 3 * N * D
    elif pass_id == _SYM:
        nb = (N + FL_BT_TILE - 1) // FL_BT_TILE
        items, per, work = nb * (nb + 1) // 2, 1, N * N
    else:  # a row pass over the N x N matrix, or rows [r0, r1) of it
        items, per, work = r1, max(1, FL_FT_BLOCK // max(N, 1)), (r1 - r0) * N
    nblocks = (items - r0 + per - 1) // per if items > r0 else 0
    if pass_id == _NORMS or pass_id == _FINAL or pass_id == _SCATTER or pass_id == _SYM:
        r0 = 0
        nblocks = (items + per - 1) // per
    nt = _nthreads(n_threads, work, nblocks)
    if nblocks > 16:
        badv = <fl_idx*>malloc(nblocks * sizeof(fl_idx))
        if badv == NULL:
            raise MemoryError()
    try:
        with nogil:
            if nt > 1:
                for k in prange(nblocks, schedule='static', num_threads=nt):
                    badv[k] = -1
                    fn(&A, r0 + k * per, min(per, items - r0 - k * per), &badv[k])
            else:
                for k in range(nblocks):
                    badv[k] = -1
                    fn(&A, r0 + k * per, min(per, items - r0 - k * per), &badv[k])
            for k in range(nblocks):
                if badv[k] == -2:
                    nomem = 1
    finally:
        if badv != stack_bad:
            free(badv)
    if nomem:
        raise MemoryError("in-batch loss: out of memory for a row's scratch")
