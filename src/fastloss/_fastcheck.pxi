# _fastcheck.pxi -- the checks of the small-call fast paths (the `grad_fast`
# functions of _pointwise.pyx and _rows.pyx), done in C.  Each is the
# condition under which the general Python path would accept an array as
# it is (fastloss._validate: as_input, as_operand, check_out and
# check_no_overlap); when one fails, the fast path returns None and the
# general path runs, so it, not this file, raises every error.

cdef object _DT_F32 = np.dtype(np.float32)
cdef object _DT_F64 = np.dtype(np.float64)
cdef object _DT_I64 = np.dtype(np.int64)
cdef int _IN_FLAGS = cnp.NPY_ARRAY_C_CONTIGUOUS | cnp.NPY_ARRAY_ALIGNED
cdef int _OUT_FLAGS = cnp.NPY_ARRAY_C_CONTIGUOUS | cnp.NPY_ARRAY_ALIGNED | cnp.NPY_ARRAY_WRITEABLE


cdef inline bint _fast_array(object a, object dt, int flags):
    """a is exactly an ndarray of dtype dt (the same dtype object, as the
    Python checks' `is`) with all of flags."""
    if type(a) is not np.ndarray:
        return False
    cdef cnp.ndarray arr = <cnp.ndarray>a
    return (<object>cnp.PyArray_DESCR(arr)) is dt and (cnp.PyArray_FLAGS(arr) & flags) == flags


cdef inline bint _fast_disjoint(cnp.ndarray a, cnp.ndarray b):
    """the memory ranges of two C-contiguous arrays do not intersect (as
    fastloss._pointwise.overlaps)."""
    cdef char *pa = <char*>cnp.PyArray_DATA(a)
    cdef char *pb = <char*>cnp.PyArray_DATA(b)
    cdef Py_ssize_t na = cnp.PyArray_NBYTES(a), nb = cnp.PyArray_NBYTES(b)
    return not (na > 0 and nb > 0 and pa < pb + nb and pb < pa + na)


cdef inline bint _fast_out(object out, cnp.ndarray x, object dt, cnp.ndarray y):
    """out is a buffer that check_out accepts for input x (dtype dt, x's
    shape, C-contiguous, aligned, writeable) and shares no memory with x or y."""
    if not _fast_array(out, dt, _OUT_FLAGS):
        return False
    cdef cnp.ndarray o = <cnp.ndarray>out
    cdef int d, nd = cnp.PyArray_NDIM(x)
    if cnp.PyArray_NDIM(o) != nd:
        return False
    for d in range(nd):
        if cnp.PyArray_DIMS(o)[d] != cnp.PyArray_DIMS(x)[d]:
            return False
    return _fast_disjoint(o, x) and _fast_disjoint(o, y)
