# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The summary-statistics pass behind ``fastloss.suggest`` and
``fastloss.diagnose``: one read of an array (or of ``a - b``), in fixed
blocks run in parallel and merged in block order (so the figures are the
same bits for any thread count).  The C loop is ``_src/fl_summary_body.h``.
It trusts its caller (``fastloss._suggest``): arrays are C-contiguous,
float32 or float64, ``b`` of ``a``'s dtype and size, and the size a
multiple of ``row``.
"""
cimport numpy as cnp
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, free

cnp.import_array()

cdef extern from "_src/fl_summary.h" nogil:
    ctypedef Py_ssize_t fl_idx
    ctypedef struct fl_summary:
        double nan, posinf, neginf, min, max, n, s1, s2, s3, s4
        double nonint, in01, is01, ispm1, npos, bs1, bs2, r1, r2, br, ba1, bar
        double rmin, rmax, onehot
    ctypedef struct fl_sum_args:
        const void *a
        const void *b
        fl_idx row
        int row_exp
        int moments
        double shift, shift_b, shift_r
    int FL_SUM_BLOCK
    void fl_summary_init(fl_summary *o)
    void fl_summary_merge(fl_summary *into, const fl_summary *src)
    void fl_summary_block(const fl_sum_args *p, int f64, fl_idx start, fl_idx n, fl_summary *o)
    void fl_count_labels(const void *labels, int code, fl_idx n, int64_t C, int64_t ignore,
                         int64_t *counts, int64_t *n_ignored, int64_t *n_bad)

BLOCK = FL_SUM_BLOCK
_PARALLEL_MIN = 4 * FL_SUM_BLOCK   # below this, one thread
_LABEL_CODES = {"int64": 0, "int32": 1, "uint8": 2}


def summarize(cnp.ndarray a, b=None, *, Py_ssize_t row=0, bint row_exp=False, bint moments=True,
              double shift=0.0, double shift_b=0.0, double shift_r=0.0, int n_threads=1):
    """The summary of ``a`` (of ``a - b`` if ``b`` is given) as a dict of
    floats: counts ``nan posinf neginf n nonint in01 is01 ispm1 npos``,
    ``min max``, the power sums ``s1..s4`` of ``v - shift`` over the finite
    values; with ``b`` also ``bs1 bs2`` (sums of ``x = b - shift_b`` and
    ``x^2``), ``r1 r2`` (of ``e = |v - shift| - shift_r`` and ``e^2``),
    ``br`` (of ``x e``), ``ba1 bar`` (of ``|x|`` and ``|x| e``); with
    ``row`` the range ``rmin rmax`` of the sums over rows of ``row``
    elements (of ``exp(v)`` with ``row_exp``) and ``onehot``, the rows of
    0/1 values that hold exactly one 1."""
    cdef fl_sum_args p
    cdef fl_idx n = cnp.PyArray_SIZE(a)
    cdef fl_idx blk = FL_SUM_BLOCK
    cdef fl_idx nblocks, k, start
    cdef fl_summary total
    cdef fl_summary *part
    cdef int f64 = a.dtype.itemsize == 8
    cdef int nt = n_threads
    if row > 0:
        blk = row * max(1, FL_SUM_BLOCK // row)
    nblocks = (n + blk - 1) // blk
    p.a = cnp.PyArray_DATA(a)
    p.b = NULL if b is None else cnp.PyArray_DATA(<cnp.ndarray>b)
    p.row = row
    p.row_exp = row_exp
    p.moments = moments
    p.shift = shift; p.shift_b = shift_b; p.shift_r = shift_r
    fl_summary_init(&total)
    part = <fl_summary*>malloc(max(nblocks, 1) * sizeof(fl_summary))
    if part == NULL:
        raise MemoryError()
    if n < _PARALLEL_MIN:
        nt = 1
    try:
        with nogil:
            if nt > 1:
                for k in prange(nblocks, schedule='static', num_threads=nt):
                    fl_summary_init(&part[k])
                    fl_summary_block(&p, f64, k * blk, min(blk, n - k * blk), &part[k])
            else:
                for k in range(nblocks):
                    fl_summary_init(&part[k])
                    start = k * blk
                    fl_summary_block(&p, f64, start, min(blk, n - start), &part[k])
            for k in range(nblocks):
                fl_summary_merge(&total, &part[k])
    finally:
        free(part)
    return total


def count_labels(cnp.ndarray labels, int64_t C, int64_t ignore_index):
    """``(counts, n_ignored, n_bad)`` of integer labels (int64, int32 or
    uint8, C-contiguous): ``counts[c]`` labels equal c for c in [0, C),
    ``n_ignored`` equal ``ignore_index``, ``n_bad`` the others."""
    cdef cnp.ndarray counts = cnp.PyArray_ZEROS(1, [max(C, 0)], cnp.NPY_INT64, 0)
    cdef int64_t n_ig = 0, n_bad = 0
    cdef int code = _LABEL_CODES[labels.dtype.name]
    cdef fl_idx n = cnp.PyArray_SIZE(labels)
    cdef const void *lab = cnp.PyArray_DATA(labels)
    cdef int64_t *cp = <int64_t*>cnp.PyArray_DATA(counts)
    with nogil:
        fl_count_labels(lab, code, n, C, ignore_index, cp, &n_ig, &n_bad)
    return counts, n_ig, n_bad
