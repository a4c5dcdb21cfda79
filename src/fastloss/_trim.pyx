# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The trimmed-reduction driver: which elements of a per-element loss array
to keep (an O(N) radix selection, no sort) and the masked, weighted sum.

The passes are in ``_src/fl_trim.{h,c}``; this module owns the threads,
the per-thread histograms, the gathers, the blocks and the ordered float64
sum.  It trusts its caller (``fastloss._trim_api``): the arrays are
C-contiguous, of one float dtype and of ``n`` elements, and
``k_lo + k_hi < n`` (or ``n == 0``).
"""
cimport numpy as cnp
from cython.parallel cimport prange
from libc.stdlib cimport malloc, calloc, free
from libc.stdint cimport uint64_t, uint32_t

cnp.import_array()

cdef extern from "_src/fl_trim.h" nogil:
    ctypedef Py_ssize_t fl_idx
    ctypedef struct fl_trim_plan:
        uint64_t klo, khi
        fl_idx drop_lo_eq
        fl_idx keep_hi_eq
        int split
    int FL_TRIM_BLOCK
    int FL_TRIM_DIGIT
    int FL_TRIM_BINS
    void fl_trim_hist_f32(const float *l, fl_idx n, fl_idx *hist)
    void fl_trim_hist_f64(const double *l, fl_idx n, fl_idx *hist)
    fl_idx fl_trim_gather_f32(const float *l, fl_idx n, uint32_t d, uint64_t *out)
    fl_idx fl_trim_gather_f64(const double *l, fl_idx n, uint32_t d, uint64_t *out)
    uint64_t fl_trim_select(uint64_t *keys, fl_idx m, fl_idx r, int shift, fl_idx *n_less, fl_idx *n_eq)
    void fl_trim_ties_f32(const float *l, fl_idx n, uint64_t klo, uint64_t khi, fl_idx *c_lo, fl_idx *c_hi)
    void fl_trim_ties_f64(const double *l, fl_idx n, uint64_t klo, uint64_t khi, fl_idx *c_lo, fl_idx *c_hi)
    double fl_trim_apply_f32(const float *l, float *g, float *h, const float *w, float *lo, fl_idx n,
                             const fl_trim_plan *plan, fl_idx tie_lo, fl_idx tie_hi, double gscale, int *nan)
    double fl_trim_apply_f64(const double *l, double *g, double *h, const double *w, double *lo, fl_idx n,
                             const fl_trim_plan *plan, fl_idx tie_lo, fl_idx tie_hi, double gscale, int *nan)
    uint64_t fl_trim_key_f32(float v)
    uint64_t fl_trim_key_f64(double v)

BLOCK = FL_TRIM_BLOCK

# Below this many elements every pass runs on one thread (the passes are
# memory-bound, as MSE is: see _pointwise._LIGHT_MIN).
_PARALLEL_MIN = 32768
cdef Py_ssize_t _parallel_min = _PARALLEL_MIN


def set_parallel_threshold(n):
    """Run calls below ``n`` elements on one thread (for tests); None
    restores the default.  Returns the previous value."""
    global _parallel_min
    old = _parallel_min
    _parallel_min = _PARALLEL_MIN if n is None else n
    return old


cdef inline void* _ptr(object a):
    if a is None:
        return NULL
    return cnp.PyArray_DATA(<cnp.ndarray>a)


def key(v, bint f64):
    """The order-preserving integer key of a value (for tests)."""
    return fl_trim_key_f64(v) if f64 else fl_trim_key_f32(v)


cdef uint64_t _select_rank(const void *l, bint f64, fl_idx n, fl_idx r, fl_idx *hists, int nt,
                           fl_idx *n_less, fl_idx *n_eq) except? 0:
    """The key of rank r of the n values (hists: nt per-thread histograms
    of the top digit over the thread chunks [t n / nt, (t + 1) n / nt))."""
    cdef int nb_bits = 64 if f64 else 32
    cdef int shift = nb_bits - FL_TRIM_DIGIT
    cdef fl_idx below = 0, c, t, cnt
    cdef uint32_t d = 0
    cdef fl_idx total_d
    cdef fl_idx *offs = NULL
    cdef uint64_t *buf = NULL
    cdef uint64_t k
    cdef fl_idx nl = 0, ne = 0
    cdef fl_idx start
    # the bucket of rank r
    while True:
        total_d = 0
        for t in range(nt):
            total_d += hists[t * FL_TRIM_BINS + d]
        if below + total_d > r:
            break
        below += total_d
        d += 1
    buf = <uint64_t*>malloc(max(total_d, 1) * sizeof(uint64_t))
    offs = <fl_idx*>malloc((nt + 1) * sizeof(fl_idx))
    if buf == NULL or offs == NULL:
        free(buf); free(offs)
        raise MemoryError()
    try:
        offs[0] = 0
        for t in range(nt):
            offs[t + 1] = offs[t] + hists[t * FL_TRIM_BINS + d]
        with nogil:
            if nt > 1:
                for t in prange(nt, schedule='static', num_threads=nt):
                    start = t * n // nt
                    if f64:
                        fl_trim_gather_f64(<const double*>l + start, (t + 1) * n // nt - start, d, buf + offs[t])
                    else:
                        fl_trim_gather_f32(<const float*>l + start, (t + 1) * n // nt - start, d, buf + offs[t])
            else:
                if f64:
                    fl_trim_gather_f64(<const double*>l, n, d, buf)
                else:
                    fl_trim_gather_f32(<const float*>l, n, d, buf)
            k = fl_trim_select(buf, total_d, r - below, shift, &nl, &ne)
        n_less[0] = below + nl
        n_eq[0] = ne
        return k
    finally:
        free(buf)
        free(offs)


cdef inline void _ties_block(const void *pl, bint f64, fl_idx n, fl_idx b, const fl_trim_plan *plan,
                             fl_idx *tie_lo, fl_idx *tie_hi) noexcept nogil:
    cdef fl_idx start = b * FL_TRIM_BLOCK
    cdef fl_idx cnt = min(<fl_idx>FL_TRIM_BLOCK, n - start)
    if f64:
        fl_trim_ties_f64(<const double*>pl + start, cnt, plan.klo, plan.khi, &tie_lo[b], &tie_hi[b])
    else:
        fl_trim_ties_f32(<const float*>pl + start, cnt, plan.klo, plan.khi, &tie_lo[b], &tie_hi[b])


cdef inline double _apply_block(const void *pl, void *pg, void *ph, const void *pw, void *plo, bint f64,
                                fl_idx n, fl_idx b, const fl_trim_plan *plan, const fl_idx *tie_lo,
                                const fl_idx *tie_hi, double gscale, int *nan) noexcept nogil:
    cdef fl_idx start = b * FL_TRIM_BLOCK
    cdef fl_idx cnt = min(<fl_idx>FL_TRIM_BLOCK, n - start)
    cdef fl_idx tl = tie_lo[b] if plan.split else 0
    cdef fl_idx th = tie_hi[b] if plan.split else 0
    if f64:
        return fl_trim_apply_f64(
            <const double*>pl + start, (<double*>pg + start) if pg != NULL else NULL,
            (<double*>ph + start) if ph != NULL else NULL,
            (<const double*>pw + start) if pw != NULL else NULL,
            (<double*>plo + start) if plo != NULL else NULL, cnt, plan, tl, th, gscale, nan)
    return fl_trim_apply_f32(
        <const float*>pl + start, (<float*>pg + start) if pg != NULL else NULL,
        (<float*>ph + start) if ph != NULL else NULL,
        (<const float*>pw + start) if pw != NULL else NULL,
        (<float*>plo + start) if plo != NULL else NULL, cnt, plan, tl, th, gscale, nan)


def trim(l, g, h, w, lo, Py_ssize_t k_lo, Py_ssize_t k_hi, double gscale, int n_threads):
    """Keep all but the k_lo lowest and k_hi highest ranked values of l;
    return ``(sum, nan)``: the float64 sum of ``w_i l_i`` over the kept
    elements (blocks added in a fixed order) and whether a loss value or a
    weight is NaN.  Writes ``lo`` (may be ``l``), ``g`` and ``h`` (scaled by
    ``gscale w_i``) where given: the kept values, 0 elsewhere."""
    cdef bint f64 = cnp.PyArray_TYPE(<cnp.ndarray>l) == cnp.NPY_DOUBLE
    cdef fl_idx n = cnp.PyArray_SIZE(<cnp.ndarray>l)
    cdef fl_idx nblocks = (n + FL_TRIM_BLOCK - 1) // FL_TRIM_BLOCK
    cdef const void *pl = _ptr(l)
    cdef void *pg = _ptr(g)
    cdef void *ph = _ptr(h)
    cdef const void *pw = _ptr(w)
    cdef void *plo = _ptr(lo)
    cdef int nt = n_threads
    cdef fl_trim_plan plan
    cdef fl_idx *hists = NULL
    cdef double *part = NULL
    cdef int *nanv = NULL
    cdef fl_idx *tie_lo = NULL
    cdef fl_idx *tie_hi = NULL
    cdef fl_idx nl_lo = 0, ne_lo = 0, nl_hi = 0, ne_hi = 0
    cdef fl_idx t, b, start, cnt, a0, b0, ca, cb
    cdef double total = 0.0
    cdef int nan = 0
    if n < _parallel_min or nblocks < 2:
        nt = 1
    plan.klo = 0
    plan.khi = <uint64_t>0xFFFFFFFFFFFFFFFF if f64 else <uint64_t>0xFFFFFFFF
    plan.drop_lo_eq = 0
    plan.keep_hi_eq = n
    plan.split = 0
    part = <double*>malloc(max(nblocks, 1) * sizeof(double))
    nanv = <int*>calloc(max(nblocks, 1), sizeof(int))
    if part == NULL or nanv == NULL:
        free(part); free(nanv)
        raise MemoryError()
    try:
        if n > 0 and (k_lo > 0 or k_hi > 0):
            hists = <fl_idx*>calloc(nt * FL_TRIM_BINS, sizeof(fl_idx))
            if hists == NULL:
                raise MemoryError()
            with nogil:
                if nt > 1:
                    for t in prange(nt, schedule='static', num_threads=nt):
                        start = t * n // nt
                        cnt = (t + 1) * n // nt - start
                        if f64:
                            fl_trim_hist_f64(<const double*>pl + start, cnt, hists + t * FL_TRIM_BINS)
                        else:
                            fl_trim_hist_f32(<const float*>pl + start, cnt, hists + t * FL_TRIM_BINS)
                else:
                    if f64:
                        fl_trim_hist_f64(<const double*>pl, n, hists)
                    else:
                        fl_trim_hist_f32(<const float*>pl, n, hists)
            if k_lo > 0:
                plan.klo = _select_rank(pl, f64, n, k_lo, hists, nt, &nl_lo, &ne_lo)
                plan.drop_lo_eq = k_lo - nl_lo
            if k_hi > 0:
                plan.khi = _select_rank(pl, f64, n, n - 1 - k_hi, hists, nt, &nl_hi, &ne_hi)
                plan.keep_hi_eq = (n - k_hi) - nl_hi
                plan.split = plan.keep_hi_eq < ne_hi
            plan.split = plan.split or plan.drop_lo_eq > 0
        if plan.split:
            tie_lo = <fl_idx*>malloc(nblocks * sizeof(fl_idx))
            tie_hi = <fl_idx*>malloc(nblocks * sizeof(fl_idx))
            if tie_lo == NULL or tie_hi == NULL:
                raise MemoryError()
            with nogil:
                if nt > 1:
                    for b in prange(nblocks, schedule='static', num_threads=nt):
                        _ties_block(pl, f64, n, b, &plan, tie_lo, tie_hi)
                else:
                    for b in range(nblocks):
                        _ties_block(pl, f64, n, b, &plan, tie_lo, tie_hi)
            a0 = 0
            b0 = 0
            for b in range(nblocks):  # counts before each block
                ca = tie_lo[b]
                cb = tie_hi[b]
                tie_lo[b] = a0
                tie_hi[b] = b0
                a0 += ca
                b0 += cb
        with nogil:
            if nt > 1:
                for b in prange(nblocks, schedule='static', num_threads=nt):
                    part[b] = _apply_block(pl, pg, ph, pw, plo, f64, n, b, &plan, tie_lo, tie_hi, gscale, &nanv[b])
            else:
                for b in range(nblocks):
                    part[b] = _apply_block(pl, pg, ph, pw, plo, f64, n, b, &plan, tie_lo, tie_hi, gscale, &nanv[b])
            for b in range(nblocks):
                total += part[b]
                nan |= nanv[b]
    finally:
        free(hists); free(part); free(nanv); free(tie_lo); free(tie_hi)
    return total, bool(nan)
