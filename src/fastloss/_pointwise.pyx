# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The pointwise driver: one parallel loop for every loss f(input_i, target_i).

The per-loss math lives in ``_src/fl_pointwise_math.h``; this module owns
the part every pointwise loss shares: blocks, threads, the deterministic
reduction and the GIL.  It trusts its caller (``fastloss._pointwise_api``),
which validates every array and parameter before anything here runs: all
arrays are C-contiguous, of the working dtype, and of ``n`` elements (the
extra operand of ``e_period`` elements).
"""
cimport numpy as cnp
import numpy as np

from ._alloc import empty as _empty
from cython.parallel cimport prange
from libc.stdlib cimport malloc, free

cnp.import_array()

include "_fastcheck.pxi"

cdef extern from "_src/fl_pointwise.h" nogil:
    ctypedef Py_ssize_t fl_idx
    ctypedef struct fl_params:
        double pa, pb, pc
        int i0, i1
    ctypedef struct fl_pw_args:
        const void *x
        const void *y
        const void *w
        const void *e
        fl_idx e_period
        void *g
        void *h
        void *l
        void *g2
        void *gt
        fl_params prm
        double gscale
        int mode
        int acc
        const void *e2
        double *xs
    ctypedef double (*fl_pw_block_fn)(const fl_pw_args *a, fl_idx start,
                                      fl_idx n, int *bad) noexcept nogil
    int FL_PW_BLOCK
    int fl_pw_nlosses()
    const char *fl_pw_name(int i)
    int fl_pw_has_target_grad(int i)
    fl_pw_block_fn fl_pw_get(int loss_id, int f64)
    void fl_pw_vmath(int which, int f64, const void *x, void *y, fl_idx n)
    const char *fl_select_isa(int force_baseline)
    const char *fl_isa_name()
    int fl_have_v3_build()

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define FL_OPENMP 1
    #else
    #define FL_OPENMP 0
    static int omp_get_max_threads(void) { return 1; }
    static int omp_get_thread_limit(void) { return 1; }
    #endif
    """
    int FL_OPENMP
    int omp_get_max_threads() nogil
    int omp_get_thread_limit() nogil

#: kernel id of each pointwise loss, by name
LOSS_IDS = {fl_pw_name(i).decode(): i for i in range(fl_pw_nlosses())}
#: kernel names that can write the gradient with respect to the target
TARGET_GRAD = frozenset(fl_pw_name(i).decode() for i in range(fl_pw_nlosses()) if fl_pw_has_target_grad(i))
BLOCK = FL_PW_BLOCK
OPENMP = bool(FL_OPENMP)

# Below these many elements a call runs on one thread: starting the OpenMP
# team costs more than the second core gives.  Measured on 2 cores (float32,
# value + gradient, n_threads=1 vs 2): MSE breaks even near 32k elements;
# BCE with logits, whose exp/log make it compute-bound, is 1.5x faster on two
# threads already at 16k.  So losses with transcendental math ("heavy") go
# parallel from 2 blocks, the others from 4.
_LIGHT_MIN = 32768
_HEAVY_MIN = 16384
_HEAVY = {"log_cosh", "poisson_log", "poisson", "poisson_log_full", "poisson_full", "gaussian_nll", "bce", "bce_logits",
          "sigmoid_focal", "sigmoid_focal_g2", "soft_margin", "kl_div", "kl_div_log"}
# the regression catalogue: exp/log (the deviances, fair, Cauchy, MSLE)
_HEAVY |= {"gamma_nll", "tweedie", "tweedie0", "tweedie1", "fair", "cauchy", "msle"}
# the generative and RL objectives with exp/log
_HEAVY |= {"gaussian_kl", "gan_logistic", "gan_softplus", "gan_sp", "ppo_clip", "ppo_stats"}
cdef Py_ssize_t _light_min = _LIGHT_MIN
cdef Py_ssize_t _heavy_min = _HEAVY_MIN
cdef int _is_heavy[64]
assert fl_pw_nlosses() <= 64
for _i in range(fl_pw_nlosses()):
    _is_heavy[_i] = fl_pw_name(_i).decode() in _HEAVY


def set_parallel_threshold(n):
    """Run calls below ``n`` elements on one thread (for tests).

    ``n`` is an int (for every loss), a pair ``(light, heavy)``, or None for
    the measured defaults.  Returns the previous pair, which can be passed
    back to restore it.
    """
    global _light_min, _heavy_min
    old = (_light_min, _heavy_min)
    if n is None:
        _light_min, _heavy_min = _LIGHT_MIN, _HEAVY_MIN
    elif isinstance(n, tuple):
        _light_min, _heavy_min = n
    else:
        _light_min = _heavy_min = n
    return old


def select_isa(bint force_baseline):
    return fl_select_isa(force_baseline).decode()


def isa_name():
    return fl_isa_name().decode()


def have_v3_build():
    return bool(fl_have_v3_build())


def max_threads():
    return omp_get_max_threads()


def thread_limit():
    """OpenMP's thread limit (OMP_THREAD_LIMIT; INT_MAX when unset)."""
    return omp_get_thread_limit()


cdef inline void* _ptr(object a):
    if a is None:
        return NULL
    return cnp.PyArray_DATA(<cnp.ndarray>a)


def run(int loss_id, bint f64, x, y, w, e, Py_ssize_t e_period,
        g, h, l, g2, double pa, double pb, double pc, int i0, int i1,
        int mode, double gscale, int n_threads, gt=None, double[::1] parts=None, bint acc=False,
        e2=None, double[::1] xsums=None):
    """Run loss ``loss_id`` over all elements; return (sum, bad).

    ``sum`` is the float64 sum of the weighted per-element losses, added
    block by block in a fixed order.  ``bad`` is true if any element was
    outside the loss's domain.  Outputs that are None are not written;
    ``gt`` (the target's gradient) only in mode 1, by a loss in
    ``TARGET_GRAD``.  ``parts``, if given (float64, one per block of
    ``BLOCK`` elements), receives the blocks' partial sums, in block order:
    fastloss.dask adds those of every chunk of a larger array.
    ``acc``: add the gradient (and Hessian) into g (and h) instead of
    writing them (modes 1 and 2, l and gt None).
    ``e2``: the second elementwise operand (kernel td); ``xsums`` (float64,
    2 per block), if given, receives the blocks' extra sums (kernel
    ppo_stats), which the caller adds in block order.
    """
    cdef fl_pw_args a
    cdef fl_idx n = cnp.PyArray_SIZE(<cnp.ndarray>x)
    cdef fl_idx nblocks = (n + FL_PW_BLOCK - 1) // FL_PW_BLOCK
    cdef fl_idx b, start
    cdef double stack_part[16]
    cdef int stack_bad[16]
    cdef double *part = stack_part
    cdef int *badv = stack_bad
    cdef double total = 0.0
    cdef int bad = 0
    cdef int nt = n_threads
    cdef fl_pw_block_fn fn = fl_pw_get(loss_id, f64)
    if fn == NULL:
        raise ValueError(f"unknown pointwise loss id {loss_id}")
    cdef bint want_parts = parts is not None
    if want_parts and parts.shape[0] != nblocks:
        raise ValueError(f"parts must have {nblocks} elements, got {parts.shape[0]}")
    a.x = _ptr(x); a.y = _ptr(y); a.w = _ptr(w); a.e = _ptr(e)
    a.e_period = e_period if e_period > 0 else 1
    a.g = _ptr(g); a.h = _ptr(h); a.l = _ptr(l); a.g2 = _ptr(g2); a.gt = _ptr(gt)
    a.prm.pa = pa; a.prm.pb = pb; a.prm.pc = pc; a.prm.i0 = i0; a.prm.i1 = i1
    a.gscale = gscale
    a.mode = mode
    a.acc = acc
    a.e2 = _ptr(e2)
    a.xs = NULL
    if xsums is not None:
        if xsums.shape[0] != 2 * nblocks:
            raise ValueError(f"xsums must have {2 * nblocks} elements, got {xsums.shape[0]}")
        if nblocks:
            a.xs = &xsums[0]
    if nblocks > 16:
        part = <double*>malloc(nblocks * sizeof(double))
        badv = <int*>malloc(nblocks * sizeof(int))
        if part == NULL or badv == NULL:
            free(part); free(badv)
            raise MemoryError()
    try:
        if nt <= 0:
            nt = omp_get_max_threads()
        if n < (_heavy_min if _is_heavy[loss_id] else _light_min) or nblocks < 2:
            nt = 1
        with nogil:
            if nt > 1:
                for b in prange(nblocks, schedule='static', num_threads=nt):
                    badv[b] = 0
                    part[b] = fn(&a, b * FL_PW_BLOCK,
                                 min(<fl_idx>FL_PW_BLOCK, n - b * FL_PW_BLOCK),
                                 &badv[b])
            else:
                for b in range(nblocks):
                    badv[b] = 0
                    start = b * FL_PW_BLOCK
                    part[b] = fn(&a, start, min(<fl_idx>FL_PW_BLOCK, n - start),
                                 &badv[b])
            for b in range(nblocks):
                total += part[b]
                bad |= badv[b]
            if want_parts:
                for b in range(nblocks):
                    parts[b] = part[b]
    finally:
        if part != stack_part:
            free(part)
            free(badv)
    return total, bool(bad)


ctypedef fused _real:
    float
    double


cdef double _sum(const _real *p, fl_idx n) noexcept nogil:
    # four float64 accumulators in a fixed pattern (deterministic), then the tail
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    cdef fl_idx i = 0
    while i + 4 <= n:
        s0 += p[i]; s1 += p[i + 1]; s2 += p[i + 2]; s3 += p[i + 3]
        i += 4
    while i < n:
        s0 += p[i]
        i += 1
    return (s0 + s1) + (s2 + s3)


def block_sum(w, bint f64, int n_threads, double[::1] parts=None):
    """The float64 sum of ``w`` (C-contiguous, float32 or float64 as
    ``f64``), in blocks of ``BLOCK`` elements added in block order: the
    same bits for any thread count, and for any split of ``w`` into pieces
    whose boundaries are multiples of ``BLOCK`` (``parts``, if given,
    receives the blocks' sums).  The divisor of a weighted mean."""
    cdef fl_idx n = cnp.PyArray_SIZE(<cnp.ndarray>w)
    cdef fl_idx nblocks = (n + FL_PW_BLOCK - 1) // FL_PW_BLOCK
    cdef fl_idx b, start
    cdef double total = 0.0
    cdef const char *p = <const char*>cnp.PyArray_DATA(<cnp.ndarray>w)
    cdef int nt = n_threads if n_threads > 0 else omp_get_max_threads()
    cdef double[::1] part = parts if parts is not None else np.empty(nblocks, np.float64)
    if part.shape[0] != nblocks:
        raise ValueError(f"parts must have {nblocks} elements, got {part.shape[0]}")
    if n < _light_min or nblocks < 2:
        nt = 1
    with nogil:
        if nt > 1:
            for b in prange(nblocks, schedule='static', num_threads=nt):
                if f64:
                    part[b] = _sum(<const double*>p + b * FL_PW_BLOCK, min(<fl_idx>FL_PW_BLOCK, n - b * FL_PW_BLOCK))
                else:
                    part[b] = _sum(<const float*>p + b * FL_PW_BLOCK, min(<fl_idx>FL_PW_BLOCK, n - b * FL_PW_BLOCK))
        else:
            for b in range(nblocks):
                start = b * FL_PW_BLOCK
                if f64:
                    part[b] = _sum(<const double*>p + start, min(<fl_idx>FL_PW_BLOCK, n - start))
                else:
                    part[b] = _sum(<const float*>p + start, min(<fl_idx>FL_PW_BLOCK, n - start))
        for b in range(nblocks):
            total += part[b]
    return total


def stream_add(const float[::1] a, const float[::1] b, float[::1] c, int n_threads):
    """c = a + b on float32, in parallel: the STREAM "add" that the benchmark
    uses to measure this machine's memory bandwidth (3 arrays moved)."""
    cdef Py_ssize_t i, n = c.shape[0]
    if a.shape[0] != n or b.shape[0] != n:
        raise ValueError("stream_add: a, b and c must have the same length")
    with nogil:
        if n_threads > 1:
            for i in prange(n, schedule='static', num_threads=n_threads):
                c[i] = a[i] + b[i]
        else:
            for i in range(n):
                c[i] = a[i] + b[i]


def vmath(str name, cnp.ndarray x):
    """The kernels' inline ``exp`` (name "exp", x <= 0) or ``log1p`` on
    [0, 1] ("log1p01") or ``exp`` of any x ("exp_any") or the logistic losses' ``log1p`` on [0, 1]
    ("log1p01_r1": log1p01_r1 in float64, log1p01 in float32) or the softmax rows' ``log1p`` of t >= 0
    in double ("log1p_pos") over a C-contiguous float32/float64 array, on the
    chosen instruction-set path (for the accuracy tests)."""
    if not (x.flags.c_contiguous and x.dtype.kind == "f" and x.dtype.itemsize in (4, 8)):
        raise ValueError("vmath: x must be a C-contiguous float32 or float64 array")
    if name not in ("exp", "log1p01", "exp_any", "log1p01_r1", "log1p_pos"):
        raise ValueError(f"vmath: unknown function {name!r}")
    cdef cnp.ndarray y = x.copy()
    fl_pw_vmath({"exp": 0, "log1p01": 1, "exp_any": 2, "log1p01_r1": 3, "log1p_pos": 4}[name], x.dtype.itemsize == 8, cnp.PyArray_DATA(x),
                cnp.PyArray_DATA(y), cnp.PyArray_SIZE(x))
    return y


def overlaps(cnp.ndarray a, cnp.ndarray b):
    """Whether two C-contiguous arrays' memory ranges intersect (a cheap,
    exact test for contiguous arrays; np.may_share_memory costs ~1 us)."""
    cdef char *pa = <char*>cnp.PyArray_DATA(a)
    cdef char *pb = <char*>cnp.PyArray_DATA(b)
    cdef Py_ssize_t na = cnp.PyArray_NBYTES(a), nb = cnp.PyArray_NBYTES(b)
    return na > 0 and nb > 0 and pa < pb + nb and pb < pa + na


def grad_fast(int loss_id, x, y, out, double pa, double pb, double pc, int i0, int i1,
              bint mean, int n_threads):
    """The value and gradient of the common small call, or None.

    The call: input x and target y of the same float32 or float64 dtype and
    shape, not empty, both aligned and C-contiguous ndarrays; out None (a
    fresh gradient from fastloss._alloc.empty) or a gradient buffer that
    the general path's checks accept as it is (fastloss._pointwise_api.run).
    For any other call it returns None before anything is allocated or
    written, and the caller takes the general path, which converts or
    raises.  Returns ``(value, grad)`` (``mean``: the mean over the
    elements, else the sum), or False when an element is outside the loss's
    domain (the caller raises).
    """
    if type(x) is not np.ndarray:
        return None
    cdef cnp.ndarray xa = <cnp.ndarray>x
    cdef object dt = <object>cnp.PyArray_DESCR(xa)
    cdef bint f64 = dt is _DT_F64
    if not (f64 or dt is _DT_F32) or not _fast_array(x, dt, _IN_FLAGS) or not _fast_array(y, dt, _IN_FLAGS):
        return None
    cdef cnp.ndarray ya = <cnp.ndarray>y
    cdef int d, nd = cnp.PyArray_NDIM(xa)
    if cnp.PyArray_NDIM(ya) != nd:
        return None
    for d in range(nd):
        if cnp.PyArray_DIMS(ya)[d] != cnp.PyArray_DIMS(xa)[d]:
            return None
    cdef fl_idx n = cnp.PyArray_SIZE(xa)
    if n == 0:
        return None
    if out is None:
        g = _empty(x.shape, dt)
    elif _fast_out(out, xa, dt, ya):
        g = out
    else:
        return None
    total, bad = run(loss_id, f64, x, y, None, None, 0, g, None, None, None, pa, pb, pc, i0, i1, 1,
                     1.0 / n if mean else 1.0, n_threads, None)
    if bad:
        return False
    return ((<double>total) / n if mean else total), g


# ------------------------------------------------------------------ two calls in one pass

cdef inline void _pair_args_common(fl_pw_args *a, int mode) noexcept:
    a.w = NULL; a.e = NULL; a.e_period = 1; a.h = NULL; a.g2 = NULL
    a.prm.pa = 0.0; a.prm.pb = 0.0; a.prm.pc = 0.0; a.prm.i0 = 0; a.prm.i1 = 0
    a.mode = mode
    a.acc = 0
    a.e2 = NULL
    a.xs = NULL


cdef void _pair_unit(fl_pw_block_fn fa, const fl_pw_args *aa, fl_idx na, fl_idx a0, fl_idx a1,
                     fl_pw_block_fn fb, const fl_pw_args *ab, fl_idx nb, fl_idx b0, fl_idx b1,
                     double *pa, int *bada, double *pb, int *badb) noexcept nogil:
    """Blocks [a0, a1) of call a, then [b0, b1) of call b, each whole, as run
    calls them: the same bits.  (Their chunks interleaved in proportion,
    the block functions called one chunk at a time and the chunk sums added
    in order, gave the same bits too, but took 12 % longer for the VAE at
    one thread, 1.11 against 0.99 ms: the calls' overhead, and no overlap
    of the KL's memory traffic with BCE's arithmetic to show for it.)"""
    cdef fl_idx k
    for k in range(a0, a1):
        bada[k] = 0
        pa[k] = fa(aa, k * FL_PW_BLOCK, min(<fl_idx>FL_PW_BLOCK, na - k * FL_PW_BLOCK), &bada[k])
    for k in range(b0, b1):
        badb[k] = 0
        pb[k] = fb(ab, k * FL_PW_BLOCK, min(<fl_idx>FL_PW_BLOCK, nb - k * FL_PW_BLOCK), &badb[k])


def run_pair(int id1, int id2, bint f64, x1, y1, g1, gt1, l1, double gscale1,
             x2, y2, g2, gt2, l2, double gscale2, int mode, int n_threads):
    """Two calls of ``run`` (no weight, extra operand, Hessian or
    accumulation) in one parallel pass: ``(sum1, bad1, sum2, bad2)``, each
    the same bits as its own ``run`` call (the same blocks, each computed
    by the same block function), for any thread count: one Python call and
    one OpenMP team for both terms of the VAE (its BCE or MSE
    reconstruction and its KL term), each thread taking its share of the
    blocks of both."""
    cdef fl_pw_args a1, a2
    cdef fl_idx n1 = cnp.PyArray_SIZE(<cnp.ndarray>x1), n2 = cnp.PyArray_SIZE(<cnp.ndarray>x2)
    cdef fl_idx nb1 = (n1 + FL_PW_BLOCK - 1) // FL_PW_BLOCK, nb2 = (n2 + FL_PW_BLOCK - 1) // FL_PW_BLOCK
    cdef fl_idx units, u, b
    cdef fl_pw_block_fn f1 = fl_pw_get(id1, f64), f2 = fl_pw_get(id2, f64)
    cdef double *p1
    cdef double *p2
    cdef int *bd1
    cdef int *bd2
    cdef double t1 = 0.0, t2 = 0.0
    cdef int bad1 = 0, bad2 = 0, nt = n_threads
    if f1 == NULL or f2 == NULL:
        raise ValueError(f"unknown pointwise loss id {id1} or {id2}")
    a1.x = _ptr(x1); a1.y = _ptr(y1); a1.g = _ptr(g1); a1.gt = _ptr(gt1); a1.l = _ptr(l1); a1.gscale = gscale1
    a2.x = _ptr(x2); a2.y = _ptr(y2); a2.g = _ptr(g2); a2.gt = _ptr(gt2); a2.l = _ptr(l2); a2.gscale = gscale2
    _pair_args_common(&a1, mode)
    _pair_args_common(&a2, mode)
    if nt <= 0:
        nt = omp_get_max_threads()
    if n1 + n2 < (_heavy_min if (_is_heavy[id1] or _is_heavy[id2]) else _light_min) or max(nb1, nb2) < 2:
        nt = 1
    # one unit per thread: its share of call 1's blocks, then its share of call 2's, as two static prange
    # loops would split them (which unit runs a block does not change its bits).  Units of a few blocks
    # each, alternating the calls (4 BCE blocks, then 1 KL block), took 2-5 % longer at one thread than
    # the two calls one after the other: each switch restarts the prefetchers' streams.
    units = nt
    p1 = <double*>malloc((nb1 + 1) * sizeof(double))
    p2 = <double*>malloc((nb2 + 1) * sizeof(double))
    bd1 = <int*>malloc((nb1 + 1) * sizeof(int))
    bd2 = <int*>malloc((nb2 + 1) * sizeof(int))
    try:
        if p1 == NULL or p2 == NULL or bd1 == NULL or bd2 == NULL:
            raise MemoryError()
        with nogil:
            if nt > 1:
                for u in prange(units, schedule='static', num_threads=nt):
                    _pair_unit(f1, &a1, n1, u * nb1 // units, (u + 1) * nb1 // units,
                               f2, &a2, n2, u * nb2 // units, (u + 1) * nb2 // units, p1, bd1, p2, bd2)
            else:
                for u in range(units):
                    _pair_unit(f1, &a1, n1, u * nb1 // units, (u + 1) * nb1 // units,
                               f2, &a2, n2, u * nb2 // units, (u + 1) * nb2 // units, p1, bd1, p2, bd2)
            for b in range(nb1):
                t1 += p1[b]
                bad1 |= bd1[b]
            for b in range(nb2):
                t2 += p2[b]
                bad2 |= bd2[b]
    finally:
        free(p1); free(p2); free(bd1); free(bd2)
    return t1, bool(bad1), t2, bool(bad2)

