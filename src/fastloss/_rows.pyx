# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The row-over-classes driver: one parallel loop for every loss that reads
a row of C class scores per item (cross-entropy, NLL, focal, margins).

The per-loss math lives in ``_src/fl_rows_math.h`` and the family headers
it includes (``fl_rows_ce.h``, ``fl_rows_focal.h``, ...); this module owns what
every row loss shares: blocks of items, threads, the deterministic
reduction, the mean's denominator and the GIL.  It trusts its caller
(``fastloss._rows_api``), which validates every array and parameter
before anything here runs: arrays are C-contiguous and of the working
dtype, labels are int64, int32 or uint8 with one label per item, and every
buffer has the size its role needs.
"""
cimport numpy as cnp
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, free
from libc.math cimport NAN, INFINITY, copysign
import numpy as np

from ._alloc import empty as _empty

cnp.import_array()

include "_fastcheck.pxi"

cdef extern from "_src/fl_rows.h" nogil:
    ctypedef Py_ssize_t fl_idx
    ctypedef struct fl_params:
        double pa, pb, pc
        int i0, i1
    ctypedef struct fl_row_args:
        const void *x
        const void *t
        const void *w
        const void *v
        void *g
        void *h
        void *l
        void *gt
        fl_idx C, S
        int64_t ignore
        int has_ignore
        int tcode
        int mode
        fl_params prm
        double wsum
        double gscale
        const void *ra
        const void *rb
        const void *rw
        double *xs
        fl_idx xper
    ctypedef double (*fl_row_block_fn)(const fl_row_args *a, fl_idx start,
                                       fl_idx n, fl_idx *bad) noexcept nogil
    int FL_ROW_BLOCK, FL_ROW_TILE, FL_ROW_CHUNK
    int FL_LABEL_I64, FL_LABEL_I32, FL_LABEL_U8
    int fl_row_nlosses()
    const char *fl_row_name(int i)
    fl_row_block_fn fl_row_get(int loss_id, int f64)
    fl_idx fl_row_block_items(fl_idx C, fl_idx S)
    const char *fl_rows_select_isa(int force_baseline)
    const char *fl_rows_isa_name()

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #else
    static int omp_get_max_threads(void) { return 1; }
    #endif
    """
    int omp_get_max_threads() nogil

#: kernel id of each row loss, by name ("labels" is the denominator pass)
LOSS_IDS = {fl_row_name(i).decode(): i for i in range(fl_row_nlosses())}
LABEL_CODES = {"int64": FL_LABEL_I64, "int32": FL_LABEL_I32, "uint8": FL_LABEL_U8}
BLOCK = FL_ROW_BLOCK
TILE = FL_ROW_TILE
CHUNK = FL_ROW_CHUNK
#: what the mean divides by: nothing to count, sum of w[label], count of labels
DENOM_NONE, DENOM_WEIGHT, DENOM_COUNT = 0, 1, 2

cdef int _LABELS = LOSS_IDS["labels"]

# Below this many elements (items x classes) a call runs on one thread.  A
# row costs an exp per element, several times a pointwise element, so the
# team pays for itself earlier than in the pointwise driver.
cdef Py_ssize_t _parallel_min = 32768


def set_parallel_threshold(Py_ssize_t n):
    """Run calls with fewer than ``n`` elements on one thread (for tests)."""
    global _parallel_min
    old = _parallel_min
    _parallel_min = n
    return old


def select_isa(bint force_baseline):
    return fl_rows_select_isa(force_baseline).decode()


def isa_name():
    return fl_rows_isa_name().decode()


def block_items(Py_ssize_t C, Py_ssize_t S):
    """Items per block of the reduction for C classes and S positions."""
    return fl_row_block_items(C, S)


cdef inline void* _ptr(object a):
    if a is None:
        return NULL
    return cnp.PyArray_DATA(<cnp.ndarray>a)


cdef int _blocks(fl_row_block_fn fn, const fl_row_args *a, fl_idx items, fl_idx per,
                 int nt, double *total, fl_idx *bad, double *parts=NULL) except -1:
    """Run fn over all items in blocks of ``per``; add the block sums in
    block order into *total, and set *bad to the first bad item (or -1).
    ``parts``, if not NULL, receives the block sums (one per block)."""
    cdef fl_idx nblocks = (items + per - 1) // per
    cdef fl_idx b, start
    cdef double stack_part[16]
    cdef fl_idx stack_bad[16]
    cdef double *part = stack_part
    cdef fl_idx *badv = stack_bad
    cdef double s = 0.0
    total[0] = 0.0
    bad[0] = -1
    if nblocks == 0:
        return 0
    if nblocks > 16:
        part = <double*>malloc(nblocks * sizeof(double))
        badv = <fl_idx*>malloc(nblocks * sizeof(fl_idx))
        if part == NULL or badv == NULL:
            free(part); free(badv)
            raise MemoryError()
    if nblocks < 2:
        nt = 1
    try:
        with nogil:
            if nt > 1:
                for b in prange(nblocks, schedule='static', num_threads=nt):
                    badv[b] = -1
                    part[b] = fn(a, b * per, min(per, items - b * per), &badv[b])
            else:
                for b in range(nblocks):
                    badv[b] = -1
                    start = b * per
                    part[b] = fn(a, start, min(per, items - start), &badv[b])
            for b in range(nblocks):
                s += part[b]
                if bad[0] < 0 and badv[b] >= 0:
                    bad[0] = badv[b]
            if parts != NULL:
                for b in range(nblocks):
                    parts[b] = part[b]
    finally:
        if part != stack_part:
            free(part)
            free(badv)
    total[0] = s
    return 0


def run(int loss_id, bint f64, x, t, int tcode, w, v, g, h, l,
        Py_ssize_t C, Py_ssize_t S, long long ignore, bint has_ignore,
        double pa, double pb, double pc, int i0, int i1, double wsum,
        int mode, double gscale, int denom, bint check_first, int n_threads, gt=None,
        double[::1] parts=None, den_given=None, ra=None, rb=None, rw=None, double[::1] xsums=None):
    """Run row loss ``loss_id`` over all N S items of x (N C S elements).

    Returns ``(total, denominator, bad)``: the float64 sum of the item
    losses (added block by block in a fixed order), the mean's denominator
    (for ``denom`` = DENOM_WEIGHT / DENOM_COUNT: the summed weights / the
    count of the labels that are not ignored, found by a first pass over
    the labels, which also sets the gradient's scale to its inverse; else
    0), and the index of the first item whose label is out of range (-1 if
    none).  ``check_first`` runs that first pass over the labels for any
    ``denom`` (integer labels only), so that a bad label is found before
    anything is written; with a bad label found by the first pass nothing
    is written.  ``has_ignore`` false: no label is ignored (``ignore`` is
    not read).  ``gt``, the gradient with respect to a soft target (mode 1,
    kernels ce_soft and multilabel_soft_margin), is written in the same
    pass.

    For fastloss.dask: ``parts`` (float64, one per block of
    ``block_items(C, S)`` items), if given, receives the main pass's block
    sums; ``den_given``, the denominator of the whole array (the sum of
    the ``denominator`` parts of every chunk), replaces the labels pass
    (the chunk's labels were checked by that pass).
    """
    cdef fl_row_args a
    cdef fl_idx n = cnp.PyArray_SIZE(<cnp.ndarray>x)
    cdef fl_idx items = n // C if C > 0 else 0
    cdef fl_idx per = fl_row_block_items(C, S)
    cdef fl_row_block_fn fn = fl_row_get(loss_id, f64)
    cdef fl_row_block_fn lfn = fl_row_get(_LABELS, f64)
    cdef double total = 0.0, den = 0.0
    cdef fl_idx bad = -1
    cdef int nt = n_threads
    cdef double *pp = NULL
    if fn == NULL:
        raise ValueError(f"unknown row loss id {loss_id}")
    if parts is not None:
        if parts.shape[0] != ((items + per - 1) // per if items else 0):
            raise ValueError(f"parts must have one element per block, got {parts.shape[0]}")
        if parts.shape[0]:
            pp = &parts[0]
    a.x = _ptr(x); a.t = _ptr(t); a.w = _ptr(w); a.v = _ptr(v)
    a.g = _ptr(g); a.h = _ptr(h); a.l = _ptr(l); a.gt = _ptr(gt)
    a.C = C; a.S = S if S > 0 else 1
    a.ignore = ignore; a.has_ignore = has_ignore; a.tcode = tcode; a.mode = mode
    a.prm.pa = pa; a.prm.pb = pb; a.prm.pc = pc; a.prm.i0 = i0; a.prm.i1 = i1
    a.wsum = wsum
    a.gscale = gscale
    a.ra = _ptr(ra); a.rb = _ptr(rb); a.rw = _ptr(rw); a.xs = NULL; a.xper = per
    if xsums is not None:
        if xsums.shape[0] != 3 * ((items + per - 1) // per if items else 0):
            raise ValueError(f"xsums must have 3 elements per block, got {xsums.shape[0]}")
        if xsums.shape[0]:
            a.xs = &xsums[0]
    if nt <= 0:
        nt = omp_get_max_threads()
    if n < _parallel_min:
        nt = 1
    if denom != 0 and den_given is not None:
        den = den_given
        a.gscale = 1.0 / den if den != 0 else float("inf")
    elif denom != 0 or check_first:
        if denom != DENOM_WEIGHT:
            a.w = NULL
        _blocks(lfn, &a, items, fl_row_block_items(1, 1), nt, &den, &bad)
        if bad >= 0:
            return float("nan"), den, bad
        a.w = _ptr(w)
        if denom != 0:
            a.gscale = 1.0 / den if den != 0 else float("inf")
        else:
            den = 0.0
    _blocks(fn, &a, items, per, nt, &total, &bad, pp)
    return total, den, bad


def denominator(bint f64, t, int tcode, w, Py_ssize_t C, long long ignore, bint has_ignore, int denom,
                int n_threads, double[::1] parts):
    """The labels pass of ``run`` alone, over the labels ``t`` (one per
    item): fills ``parts`` (float64, one per block of ``block_items(1, 1)``
    items) with the blocks' sums of w[label] (DENOM_WEIGHT; the count of
    the labels that are not ignored for DENOM_COUNT or without w) and
    returns ``(their sum in block order, index of the first bad label or
    -1)``.  fastloss.dask adds the parts of every chunk."""
    cdef fl_row_args a
    cdef fl_idx items = cnp.PyArray_SIZE(<cnp.ndarray>t)
    cdef fl_idx per = fl_row_block_items(1, 1)
    cdef fl_row_block_fn lfn = fl_row_get(_LABELS, f64)
    cdef double den = 0.0
    cdef fl_idx bad = -1
    cdef double *pp = NULL
    cdef int nt = n_threads if n_threads > 0 else omp_get_max_threads()
    if parts.shape[0] != ((items + per - 1) // per if items else 0):
        raise ValueError(f"parts must have one element per block, got {parts.shape[0]}")
    if parts.shape[0]:
        pp = &parts[0]
    a.x = NULL; a.t = _ptr(t); a.w = NULL if denom == DENOM_COUNT else _ptr(w); a.v = NULL
    a.g = NULL; a.h = NULL; a.l = NULL; a.gt = NULL
    a.C = C; a.S = 1
    a.ignore = ignore; a.has_ignore = has_ignore; a.tcode = tcode; a.mode = 0
    a.prm.pa = 0; a.prm.pb = 0; a.prm.pc = 0; a.prm.i0 = 0; a.prm.i1 = 0
    a.wsum = 0; a.gscale = 1.0
    a.ra = NULL; a.rb = NULL; a.rw = NULL; a.xs = NULL; a.xper = per
    if items * C < _parallel_min:
        nt = 1
    _blocks(lfn, &a, items, per, nt, &den, &bad, pp)
    return den, bad


def grad_fast(int loss_id, x, t, out, long long ignore, bint has_ignore, double pa, double pb,
              double pc, int i0, int i1, int denom, bint mean, int n_threads):
    """The value and gradient of the common small call, or None.

    The call: (N, C) logits x of float32 or float64 (N, C >= 1) and int64
    labels t of shape (N,), both aligned and C-contiguous ndarrays; out None
    (a fresh gradient) or a gradient buffer that the general path's checks
    accept as it is (fastloss._rows_api.run); no class weights.  For any
    other call it returns None before anything is allocated or written, and
    the caller takes the general path, which converts or raises.  ``mean``:
    the mean, by ``denom`` (DENOM_WEIGHT / DENOM_COUNT: over the labels not
    ignored, as NumPy's float64 division; DENOM_NONE: over N), else the sum.
    Returns ``(value, grad)``, or the index of the first bad label (the
    labels pass runs first, so nothing is written then).
    """
    if type(x) is not np.ndarray or type(t) is not np.ndarray:
        return None
    cdef cnp.ndarray xa = <cnp.ndarray>x, ta = <cnp.ndarray>t
    if cnp.PyArray_NDIM(xa) != 2 or cnp.PyArray_NDIM(ta) != 1:
        return None
    cdef fl_idx N = cnp.PyArray_DIMS(xa)[0], C = cnp.PyArray_DIMS(xa)[1]
    if N < 1 or C < 1 or cnp.PyArray_DIMS(ta)[0] != N:
        return None
    cdef object dt = <object>cnp.PyArray_DESCR(xa)
    cdef bint f64 = dt is _DT_F64
    if not (f64 or dt is _DT_F32) or not _fast_array(x, dt, _IN_FLAGS) or not _fast_array(t, _DT_I64, _IN_FLAGS):
        return None
    if out is None:
        g = _empty((N, C), dt)
    elif _fast_out(out, xa, dt, ta):
        g = out
    else:
        return None
    cdef fl_row_args a
    cdef fl_row_block_fn fn = fl_row_get(loss_id, f64)
    cdef fl_row_block_fn lfn = fl_row_get(_LABELS, f64)
    cdef double total = 0.0, den = 0.0
    cdef fl_idx bad = -1
    cdef int nt = n_threads
    if fn == NULL:
        raise ValueError(f"unknown row loss id {loss_id}")
    if not mean:
        denom = DENOM_NONE
    a.x = cnp.PyArray_DATA(xa); a.t = cnp.PyArray_DATA(ta); a.w = NULL; a.v = NULL
    a.g = cnp.PyArray_DATA(<cnp.ndarray>g); a.h = NULL; a.l = NULL; a.gt = NULL
    a.C = C; a.S = 1
    a.ignore = ignore; a.has_ignore = has_ignore; a.tcode = FL_LABEL_I64; a.mode = 1
    a.prm.pa = pa; a.prm.pb = pb; a.prm.pc = pc; a.prm.i0 = i0; a.prm.i1 = i1
    a.wsum = <double>C
    a.gscale = 1.0 / N if mean and denom == DENOM_NONE else 1.0
    a.ra = NULL; a.rb = NULL; a.rw = NULL; a.xs = NULL; a.xper = 1
    if nt <= 0:
        nt = omp_get_max_threads()
    if N * C < _parallel_min:
        nt = 1
    # the labels pass first, always (the general path's check_first): a bad
    # label is reported before anything is written
    _blocks(lfn, &a, N, fl_row_block_items(1, 1), nt, &den, &bad)
    if bad >= 0:
        return bad
    if denom != DENOM_NONE:
        a.gscale = 1.0 / den if den != 0 else float("inf")
    _blocks(fn, &a, N, fl_row_block_items(C, 1), nt, &total, &bad)
    if bad >= 0:
        return bad
    if not mean:
        return total, g
    return (_fdiv(total, den) if denom != DENOM_NONE else total / N), g


cdef inline double _fdiv(double a, double b) noexcept:
    # a / b as _rows_api._fdiv gives it to the general path (a C 0.0 / 0.0
    # is a NaN with its sign bit set on x86; the general path's is math.nan)
    if b != 0:
        return a / b
    if a != a or a == 0:
        return NAN  # C's NAN, sign bit clear, as math.nan
    return copysign(INFINITY, a) * copysign(1.0, b)
