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
from libc.string cimport memcpy, memmove
from libc.math cimport INFINITY
from libc.stdint cimport uint64_t, uint32_t

cnp.import_array()

cdef extern from "_src/fl_trim.h" nogil:
    ctypedef Py_ssize_t fl_idx
    ctypedef struct fl_trim_plan:
        uint64_t klo, khi
        double lo, hi
        fl_idx drop_lo_eq
        fl_idx keep_hi_eq
        int split
        int all
        int winsor
    int FL_TRIM_BLOCK
    int FL_TRIM_DIGIT
    int FL_TRIM_BINS
    void fl_trim_hist_f32(const float *l, fl_idx n, fl_idx *hist)
    void fl_trim_hist_f64(const double *l, fl_idx n, fl_idx *hist)
    void fl_trim_gather_f32(const float *l, fl_idx n, uint32_t d0, uint32_t d1, uint64_t *out0,
                            uint64_t *out1, fl_idx *c0, fl_idx *c1)
    void fl_trim_gather_f64(const double *l, fl_idx n, uint32_t d0, uint32_t d1, uint64_t *out0,
                            uint64_t *out1, fl_idx *c0, fl_idx *c1)
    uint64_t fl_trim_select(uint64_t *keys, fl_idx m, fl_idx r, int shift, fl_idx *n_less, fl_idx *n_eq)
    void fl_trim_ties_f32(const float *l, fl_idx n, uint64_t klo, uint64_t khi, fl_idx *c_lo, fl_idx *c_hi)
    void fl_trim_ties_f64(const double *l, fl_idx n, uint64_t klo, uint64_t khi, fl_idx *c_lo, fl_idx *c_hi)
    double fl_trim_apply_f32(const float *l, float *g, float *h, const float *w, float *lo, fl_idx n,
                             const fl_trim_plan *plan, fl_idx tie_lo, fl_idx tie_hi, double gscale, int *nan,
                             double *w_lo, double *w_hi)
    double fl_trim_apply_f64(const double *l, double *g, double *h, const double *w, double *lo, fl_idx n,
                             const fl_trim_plan *plan, fl_idx tie_lo, fl_idx tie_hi, double gscale, int *nan,
                             double *w_lo, double *w_hi)
    fl_idx fl_trim_find_f32(const float *l, fl_idx n, uint64_t key, fl_idx j)
    fl_idx fl_trim_find_f64(const double *l, fl_idx n, uint64_t key, fl_idx j)
    uint64_t fl_trim_key_f32(float v)
    uint64_t fl_trim_key_f64(double v)
    double fl_trim_value_f32(uint64_t k)
    double fl_trim_value_f64(uint64_t k)

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


cdef uint32_t _bucket(const fl_idx *tot, fl_idx r, fl_idx *below):
    """The top digit whose bucket holds rank r; *below: the count under it."""
    cdef uint32_t d = 0
    cdef fl_idx b = 0
    while b + tot[d] <= r:
        b += tot[d]
        d += 1
    below[0] = b
    return d


cdef uint64_t *_gathered(uint64_t *buf, const fl_idx *hists, int nt, uint32_t d, fl_idx *offs) noexcept nogil:
    """Close the gaps the branch-free gather leaves (one slack slot per thread region)."""
    cdef fl_idx t, j = 0, c
    for t in range(nt):
        c = hists[t * FL_TRIM_BINS + d]
        if j != offs[t]:
            memmove(buf + j, buf + offs[t], c * sizeof(uint64_t))
        j += c
    return buf


cdef void _select_keys(const void *pl, bint f64, fl_idx n, fl_idx k_lo, fl_idx k_hi, const fl_idx *hists, int nt,
                       fl_trim_plan *plan, fl_idx *ne_hi) except *:
    """The boundary keys of ranks k_lo and n - 1 - k_hi (those asked for) and
    their counts, into plan: one gather pass over the data for both."""
    cdef int shift = (64 if f64 else 32) - FL_TRIM_DIGIT
    cdef fl_idx *tot = <fl_idx*>calloc(FL_TRIM_BINS, sizeof(fl_idx))
    cdef fl_idx *off0 = <fl_idx*>malloc((nt + 1) * sizeof(fl_idx))
    cdef fl_idx *off1 = <fl_idx*>malloc((nt + 1) * sizeof(fl_idx))
    cdef uint64_t *buf0 = NULL
    cdef uint64_t *buf1 = NULL
    cdef fl_idx below0 = 0, below1 = 0, nl = 0, ne = 0, t, b, start, cnt, c0, c1
    cdef uint32_t d0 = 0, d1 = 0
    cdef bint want0 = k_lo > 0, want1 = k_hi > 0, two
    cdef uint64_t k
    try:
        if tot == NULL or off0 == NULL or off1 == NULL:
            raise MemoryError()
        for t in range(nt):
            for b in range(FL_TRIM_BINS):
                tot[b] += hists[t * FL_TRIM_BINS + b]
        # target 0 is the lower boundary if asked for, else the upper one
        if want0:
            d0 = _bucket(tot, k_lo, &below0)
        if want1:
            d1 = _bucket(tot, n - 1 - k_hi, &below1)
        if not want0:
            d0, below0 = d1, below1
        two = want0 and want1 and d1 != d0
        off0[0] = 0
        off1[0] = 0
        for t in range(nt):  # one slack slot per thread region
            off0[t + 1] = off0[t] + hists[t * FL_TRIM_BINS + d0] + 1
            off1[t + 1] = off1[t] + (hists[t * FL_TRIM_BINS + d1] + 1 if two else 0)
        buf0 = <uint64_t*>malloc(off0[nt] * sizeof(uint64_t))
        buf1 = <uint64_t*>malloc(max(off1[nt], 1) * sizeof(uint64_t))
        if buf0 == NULL or buf1 == NULL:
            raise MemoryError()
        with nogil:
            if nt > 1:
                for t in prange(nt, schedule='static', num_threads=nt):
                    start = t * n // nt
                    cnt = (t + 1) * n // nt - start
                    if f64:
                        fl_trim_gather_f64(<const double*>pl + start, cnt, d0, d1, buf0 + off0[t],
                                           (buf1 + off1[t]) if two else NULL, &c0, &c1)
                    else:
                        fl_trim_gather_f32(<const float*>pl + start, cnt, d0, d1, buf0 + off0[t],
                                           (buf1 + off1[t]) if two else NULL, &c0, &c1)
            else:
                if f64:
                    fl_trim_gather_f64(<const double*>pl, n, d0, d1, buf0, buf1 if two else NULL, &c0, &c1)
                else:
                    fl_trim_gather_f32(<const float*>pl, n, d0, d1, buf0, buf1 if two else NULL, &c0, &c1)
            _gathered(buf0, hists, nt, d0, off0)
            if two:
                _gathered(buf1, hists, nt, d1, off1)
            elif want0 and want1:  # both boundaries in one bucket: the selection reorders, so copy
                free(buf1)
                buf1 = <uint64_t*>malloc(max(tot[d0], 1) * sizeof(uint64_t))
                if buf1 != NULL:
                    memcpy(buf1, buf0, tot[d0] * sizeof(uint64_t))
        if buf1 == NULL:
            raise MemoryError()
        if want0:
            k = fl_trim_select(buf0, tot[d0], k_lo - below0, shift, &nl, &ne)
            plan.klo = k
            plan.drop_lo_eq = k_lo - (below0 + nl)
        if want1:
            if want0:
                k = fl_trim_select(buf1, tot[d1], n - 1 - k_hi - below1, shift, &nl, &ne)
            else:
                k = fl_trim_select(buf0, tot[d0], n - 1 - k_hi - below0, shift, &nl, &ne)
            plan.khi = k
            plan.keep_hi_eq = (n - k_hi) - (below1 + nl)
            ne_hi[0] = ne
    finally:
        free(tot); free(off0); free(off1); free(buf0); free(buf1)


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
                                const fl_idx *tie_hi, double gscale, int *nan, double *wlo,
                                double *whi) noexcept nogil:
    cdef fl_idx start = b * FL_TRIM_BLOCK
    cdef fl_idx cnt = min(<fl_idx>FL_TRIM_BLOCK, n - start)
    cdef fl_idx tl = tie_lo[b] if plan.split else 0
    cdef fl_idx th = tie_hi[b] if plan.split else 0
    if f64:
        return fl_trim_apply_f64(
            <const double*>pl + start, (<double*>pg + start) if pg != NULL else NULL,
            (<double*>ph + start) if ph != NULL else NULL,
            (<const double*>pw + start) if pw != NULL else NULL,
            (<double*>plo + start) if plo != NULL else NULL, cnt, plan, tl, th, gscale, nan, wlo, whi)
    return fl_trim_apply_f32(
        <const float*>pl + start, (<float*>pg + start) if pg != NULL else NULL,
        (<float*>ph + start) if ph != NULL else NULL,
        (<const float*>pw + start) if pw != NULL else NULL,
        (<float*>plo + start) if plo != NULL else NULL, cnt, plan, tl, th, gscale, nan, wlo, whi)


cdef fl_idx _boundary(const void *pl, bint f64, fl_idx n, uint64_t key, fl_idx j, const fl_idx *before,
                      fl_idx nblocks):
    """The index of the j-th element of the given key (before[b]: how many come before block b)."""
    cdef fl_idx b = 0, start
    while b + 1 < nblocks and before[b + 1] <= j:
        b += 1
    start = b * FL_TRIM_BLOCK
    if f64:
        return start + fl_trim_find_f64(<const double*>pl + start, min(<fl_idx>FL_TRIM_BLOCK, n - start), key,
                                        j - before[b])
    return start + fl_trim_find_f32(<const float*>pl + start, min(<fl_idx>FL_TRIM_BLOCK, n - start), key,
                                    j - before[b])


cdef inline double _get(void *p, bint f64, fl_idx i) noexcept nogil:
    return (<double*>p)[i] if f64 else (<float*>p)[i]


cdef inline void _set(void *p, bint f64, fl_idx i, double v) noexcept nogil:
    if f64:
        (<double*>p)[i] = v
    else:
        (<float*>p)[i] = <float>v


def trim(l, g, h, w, lo, Py_ssize_t k_lo, Py_ssize_t k_hi, double gscale, int n_threads, bint winsor=False,
         wsum=None):
    """Keep all but the k_lo lowest and k_hi highest ranked values of l;
    return ``(sum, nan)``: the float64 sum of ``w_i l_i`` over the kept
    elements (blocks added in a fixed order) and whether a loss value or a
    weight is NaN.  Writes ``lo`` (may be ``l``), ``g`` and ``h`` (scaled by
    ``gscale w_i``) where given: the kept values, 0 elsewhere.

    ``winsor``: a dropped element counts as the boundary value of its side
    (``w_i l_b`` in the sum), and the boundary element ``b`` of each side
    stands for those it replaces: with ``W_b = w_b +`` their summed weights,
    ``lo[b] = W_b l_b`` (0 at the replaced ones), ``g[b] = gscale W_b g_b``,
    ``h[b]`` likewise.

    ``wsum`` (the summed weights, for a loss whose weighted mean divides by
    them: mse, l1): the mean's divisor is then the summed weights of the
    kept elements (all of them when winsorizing), found by a first pass, and
    ``gscale`` is ignored.  Returns ``(sum, nan, divisor)`` (divisor 0
    without ``wsum``)."""
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
    cdef double *wlo = NULL
    cdef double *whi = NULL
    cdef fl_idx b_lo = -1, b_hi = -1
    cdef double wdiv = 0, dropped = 0
    cdef bint use_wsum = wsum is not None and pw != NULL
    cdef double g_lo = 0, h_lo = 0, g_hi = 0, h_hi = 0, l_lo = 0, l_hi = 0, sum_lo = 0, sum_hi = 0, fac
    cdef fl_idx t, b, start, cnt, a0, b0, ca, cb
    cdef double total = 0.0
    cdef int nan = 0
    if n < _parallel_min or nblocks < 2:
        nt = 1
    cdef uint64_t nan_key = <uint64_t>0xFFFFFFFFFFFFFFFF if f64 else <uint64_t>0xFFFFFFFF
    plan.klo = 0
    plan.khi = nan_key
    plan.lo = -INFINITY
    plan.hi = INFINITY
    plan.drop_lo_eq = 0
    plan.keep_hi_eq = n
    plan.split = 0
    plan.all = 1
    plan.winsor = 0
    part = <double*>malloc(max(nblocks, 1) * sizeof(double))
    nanv = <int*>calloc(max(nblocks, 1), sizeof(int))
    wlo = <double*>calloc(max(nblocks, 1), sizeof(double))
    whi = <double*>calloc(max(nblocks, 1), sizeof(double))
    if part == NULL or nanv == NULL or wlo == NULL or whi == NULL:
        free(part); free(nanv); free(wlo); free(whi)
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
            _select_keys(pl, f64, n, k_lo, k_hi, hists, nt, &plan, &ne_hi)
            plan.all = 0
            plan.winsor = winsor
            plan.split = (k_hi > 0 and plan.keep_hi_eq < ne_hi) or plan.drop_lo_eq > 0
            # a boundary among the NaNs: value comparisons cannot tell them apart, keys can
            plan.split = plan.split or plan.khi == nan_key or (k_lo > 0 and plan.klo == nan_key)
            if k_lo > 0:
                plan.lo = fl_trim_value_f64(plan.klo) if f64 else fl_trim_value_f32(plan.klo)
            if k_hi > 0 and plan.khi != nan_key:
                plan.hi = fl_trim_value_f64(plan.khi) if f64 else fl_trim_value_f32(plan.khi)
        if plan.split or plan.winsor:  # winsorizing: the tie counts locate the boundary elements
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
            if plan.winsor:
                if k_lo > 0:
                    b_lo = _boundary(pl, f64, n, plan.klo, plan.drop_lo_eq, tie_lo, nblocks)
                if k_hi > 0:
                    b_hi = _boundary(pl, f64, n, plan.khi, plan.keep_hi_eq - 1,
                                     tie_lo if plan.khi == plan.klo else tie_hi, nblocks)
                # their own loss and gradients, before the apply pass overwrites them
                if b_lo >= 0:
                    l_lo = _get(<void*>pl, f64, b_lo)
                if b_hi >= 0:
                    l_hi = _get(<void*>pl, f64, b_hi)
                if pg != NULL:
                    if b_lo >= 0:
                        g_lo = _get(pg, f64, b_lo)
                        h_lo = _get(ph, f64, b_lo) if ph != NULL else 0.0
                    if b_hi >= 0:
                        g_hi = _get(pg, f64, b_hi)
                        h_hi = _get(ph, f64, b_hi) if ph != NULL else 0.0
        if use_wsum:
            # the divisor of a weighted mean: the summed weights of the kept elements
            wdiv = wsum
            if not plan.all and not plan.winsor:
                with nogil:
                    if nt > 1:
                        for b in prange(nblocks, schedule='static', num_threads=nt):
                            _apply_block(pl, NULL, NULL, pw, NULL, f64, n, b, &plan, tie_lo, tie_hi, 1.0,
                                         &nanv[b], &wlo[b], &whi[b])
                    else:
                        for b in range(nblocks):
                            _apply_block(pl, NULL, NULL, pw, NULL, f64, n, b, &plan, tie_lo, tie_hi, 1.0,
                                         &nanv[b], &wlo[b], &whi[b])
                for b in range(nblocks):
                    dropped += wlo[b] + whi[b]
                    wlo[b] = 0
                    whi[b] = 0
                wdiv = wsum - dropped
            gscale = 1.0 / wdiv if wdiv != 0 else INFINITY
        with nogil:
            if nt > 1:
                for b in prange(nblocks, schedule='static', num_threads=nt):
                    part[b] = _apply_block(pl, pg, ph, pw, plo, f64, n, b, &plan, tie_lo, tie_hi, gscale,
                                           &nanv[b], &wlo[b], &whi[b])
            else:
                for b in range(nblocks):
                    part[b] = _apply_block(pl, pg, ph, pw, plo, f64, n, b, &plan, tie_lo, tie_hi, gscale,
                                           &nanv[b], &wlo[b], &whi[b])
            for b in range(nblocks):
                total += part[b]
                nan |= nanv[b]
                sum_lo += wlo[b]
                sum_hi += whi[b]
        if plan.winsor:
            # the boundary elements stand for their side's dropped ones: their weight is their own plus
            # those elements' (in the per-element shares, the gradient and the Hessian)
            if b_lo >= 0:
                fac = (_get(<void*>pw, f64, b_lo) if pw != NULL else 1.0) + sum_lo + (sum_hi if b_hi == b_lo else 0.0)
                if plo != NULL:
                    _set(plo, f64, b_lo, fac * l_lo)
                if pg != NULL:
                    _set(pg, f64, b_lo, gscale * fac * g_lo)
                if ph != NULL:
                    _set(ph, f64, b_lo, gscale * fac * h_lo)
            if b_hi >= 0 and b_hi != b_lo:
                fac = (_get(<void*>pw, f64, b_hi) if pw != NULL else 1.0) + sum_hi
                if plo != NULL:
                    _set(plo, f64, b_hi, fac * l_hi)
                if pg != NULL:
                    _set(pg, f64, b_hi, gscale * fac * g_hi)
                if ph != NULL:
                    _set(ph, f64, b_hi, gscale * fac * h_hi)
    finally:
        free(hists); free(part); free(nanv); free(tie_lo); free(tie_hi); free(wlo); free(whi)
    return total, bool(nan), wdiv
