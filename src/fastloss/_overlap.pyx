# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The set-overlap driver: the parallel loops of every loss that is a
function of sums over a set (segmentation Dice, Jaccard, Tversky, BCE+Dice,
CE+Dice; Lovasz hinge and softmax), and of the box IoU losses, which are
elementwise over pairs of boxes and share this module rather than have a
driver of their own (one block loop; see ``_src/fl_overlap.h``).

The math lives in ``_src/fl_overlap_seg_math.h``,
``_src/fl_overlap_lovasz_math.h`` and ``_src/fl_boxes_math.h``; this
module owns blocks, threads, the deterministic reductions and the GIL.  It
trusts its caller (``fastloss._overlap_api``), which validates every array
and parameter before anything here runs: arrays are C-contiguous and of
the working dtype, labels are int64, int32 or uint8, and every buffer has
the size its role needs.
"""
cimport numpy as cnp
from cython.parallel cimport prange, threadid
from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memset

import numpy as np

cnp.import_array()

cdef extern from "_src/fl_overlap.h" nogil:
    ctypedef Py_ssize_t fl_idx
    int FL_OV_BLOCK, FL_OV_TILE, FL_OV_K, FL_BOX_BLOCK
    int FL_OV_I64, FL_OV_I32, FL_OV_U8, FL_OV_DENSE
    ctypedef struct fl_seg_args:
        const void *x
        const void *t
        void *g
        fl_idx N, C, S
        int tcode, softmax, from_logits, has_ignore
        int64_t ignore
        int per_image, with_ce, accumulate
        const double *coef
    ctypedef fl_idx (*fl_seg_sums_fn)(const fl_seg_args *a, fl_idx n, fl_idx s0, fl_idx ns,
                                      double *acc, void *scratch) noexcept nogil
    ctypedef void (*fl_seg_grad_fn)(const fl_seg_args *a, fl_idx n, fl_idx s0, fl_idx ns,
                                    void *scratch) noexcept nogil
    ctypedef struct fl_seg_params:
        double alpha, beta, gamma, smooth, eps
        int log_loss
        double overlap_w, ce_w, set_scale
    void fl_seg_coefs(const double *sums, fl_idx nsets, fl_idx C, const double *w, const unsigned char *sel,
                      const fl_seg_params *p, double *loss, double *coef, double *terms)
    ctypedef struct fl_lovasz_args:
        const void *x
        const void *t
        void *g
        fl_idx N, C, S
        int tcode, from_logits, has_ignore
        int64_t ignore
        int per_image, classes_mode
        const unsigned char *sel
    size_t fl_lovasz_scratch_bytes(fl_idx n, fl_idx C, int f64)
    ctypedef fl_idx (*fl_lovasz_check_fn)(const fl_lovasz_args *a, int hinge, fl_idx i0, fl_idx n) noexcept nogil
    ctypedef fl_idx (*fl_lovasz_prob_fn)(const fl_lovasz_args *a, fl_idx n, fl_idx s0, fl_idx ns,
                                        void *scratch) noexcept nogil
    ctypedef double (*fl_lovasz_task_fn)(const fl_lovasz_args *a, fl_idx st, fl_idx c, void *scratch,
                                         double gscale, int *counted, fl_idx *bad) noexcept nogil
    ctypedef void (*fl_lovasz_back_fn)(const fl_lovasz_args *a, fl_idx n, fl_idx s0, fl_idx ns,
                                       const double *scale, void *scratch) noexcept nogil
    ctypedef struct fl_box_args:
        const void *b1
        const void *b2
        void *g1
        void *g2
        void *l
        double eps, gscale
    ctypedef double (*fl_box_block_fn)(const fl_box_args *a, fl_idx start, fl_idx n) noexcept nogil
    ctypedef struct fl_ov_table:
        fl_seg_sums_fn seg_sums
        fl_seg_grad_fn seg_grad
        fl_lovasz_check_fn lovasz_check
        fl_lovasz_prob_fn lovasz_prob
        fl_lovasz_task_fn lovasz_hinge
        fl_lovasz_task_fn lovasz_softmax
        fl_lovasz_back_fn lovasz_back
        fl_box_block_fn box[4]
    const fl_ov_table *fl_ov_get(int f64)
    fl_idx fl_ov_block_pixels(fl_idx C, fl_idx S)
    const char *fl_ov_select_isa(int force_baseline)
    const char *fl_ov_isa_name()

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #else
    static int omp_get_max_threads(void) { return 1; }
    #endif
    """
    int omp_get_max_threads() nogil

TARGET_CODES = {"int64": FL_OV_I64, "int32": FL_OV_I32, "uint8": FL_OV_U8}
DENSE = FL_OV_DENSE
BLOCK = FL_OV_BLOCK
K = FL_OV_K
TILE = FL_OV_TILE
BOX_BLOCK = FL_BOX_BLOCK
BOX_KINDS = {"iou": 0, "giou": 1, "diou": 2, "ciou": 3}

# Below this many elements a call runs on one thread (a softmax tile or a
# box pair costs several exps or divisions: a team pays for itself about
# where the row kernels' does).
cdef Py_ssize_t _parallel_min = 32768
# At most about this many partial sums (of C x 5 doubles each) per call.
cdef Py_ssize_t _MAX_GROUPS = 1024


def set_parallel_threshold(Py_ssize_t n):
    """Run calls with fewer than ``n`` elements on one thread (for tests)."""
    global _parallel_min
    old = _parallel_min
    _parallel_min = n
    return old


def set_max_groups(Py_ssize_t n):
    """Keep at most about ``n`` partial sums per call (for tests)."""
    global _MAX_GROUPS
    old = _MAX_GROUPS
    _MAX_GROUPS = max(1, n)
    return old


def select_isa(bint force_baseline):
    return fl_ov_select_isa(force_baseline).decode()


def isa_name():
    return fl_ov_isa_name().decode()


def block_pixels(Py_ssize_t C, Py_ssize_t S):
    """Pixels per block of the segmentation sums for C classes, S pixels per image."""
    return fl_ov_block_pixels(C, S)


cdef inline void* _ptr(object a):
    if a is None:
        return NULL
    return cnp.PyArray_DATA(<cnp.ndarray>a)


cdef int _nthreads(int n_threads, Py_ssize_t work, Py_ssize_t tasks) noexcept nogil:
    cdef int nt = n_threads
    if nt <= 0:
        nt = omp_get_max_threads()
    if work < _parallel_min or tasks < 2:
        nt = 1
    return nt


cdef void _seg_grad_pass(const fl_ov_table *tb, const fl_seg_args *a, fl_idx nblocks, fl_idx bpi,
                         fl_idx bp, fl_idx S, char *scr, size_t tsz, int nt) noexcept nogil:
    """The gradient pass of seg, blocks of pixels over the threads (each
    thread its own scratch tile)."""
    cdef Py_ssize_t b, tid
    cdef fl_idx n, s0
    for b in prange(nblocks, schedule='static', num_threads=nt):
        tid = threadid()
        n = b // bpi
        s0 = (b % bpi) * bp
        tb.seg_grad(a, n, s0, min(bp, S - s0), scr + tid * tsz)


def seg_groups(Py_ssize_t N, Py_ssize_t C, Py_ssize_t S):
    """Blocks per group of the segmentation sums for N images of C classes
    and S pixels (as seg computes it: a function of the shape only)."""
    cdef fl_idx bp = fl_ov_block_pixels(C, S)
    cdef fl_idx bpi = (S + bp - 1) // bp if S > 0 else 0
    cdef fl_idx nblocks = N * bpi
    return (nblocks + _MAX_GROUPS - 1) // _MAX_GROUPS if nblocks > 0 else 1


def seg_coefs(sums, Py_ssize_t C, w, sel, double alpha, double beta, double gamma, double smooth, double eps,
              bint log_loss, double overlap_w, double ce_w, double set_scale):
    """The step between the two passes on given per-set sums (nsets, C, K):
    ``(losses, coef)``, as seg computes them (fl_seg_coefs)."""
    cdef fl_seg_params prm
    cdef cnp.ndarray su = np.ascontiguousarray(sums, dtype=np.float64)
    cdef Py_ssize_t nsets = su.shape[0]
    cdef cnp.ndarray losses = np.empty(nsets, np.float64)
    cdef cnp.ndarray coef = np.zeros((nsets, C, 3), np.float64)
    prm.alpha = alpha; prm.beta = beta; prm.gamma = gamma; prm.smooth = smooth; prm.eps = eps
    prm.log_loss = log_loss; prm.overlap_w = overlap_w; prm.ce_w = ce_w
    prm.set_scale = set_scale
    fl_seg_coefs(<const double*>cnp.PyArray_DATA(su), nsets, C, <const double*>_ptr(w),
                 <const unsigned char*>_ptr(sel), &prm, <double*>cnp.PyArray_DATA(losses),
                 <double*>cnp.PyArray_DATA(coef), NULL)
    return losses, coef


def seg(bint f64, x, t, int tcode, g, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S,
        bint softmax, bint from_logits, bint has_ignore, long long ignore, bint per_image, bint with_ce,
        w, sel, double alpha, double beta, double gamma, double smooth, double eps, bint log_loss,
        double overlap_w, double ce_w, bint mean, int n_threads, Py_ssize_t groups=0, bint sums_only=False,
        coef_in=None, terms=None, bint accumulate=False, double gscale=1.0):
    """Both passes of a segmentation overlap loss.

    ``terms``: None, or a float64 (nsets, 2) array that receives each set's
    unweighted overlap loss and mean cross-entropy.  ``accumulate``: pass 2
    adds the gradient into g (``g += dL/dx``) instead of writing it;
    ``gscale`` multiplies the gradient only (not the losses).

    Returns ``(losses, bad)``: the float64 loss of each set (N sets with
    per_image, else 1) and the flat index of the first bad target (-1 if
    none; then nothing is written to g).  With ``mean`` the gradient is
    that of the mean over the sets, else of their sum.

    For a chunk of images of a larger batch (fastloss.dask): ``groups``
    (blocks per group, from seg_groups on the whole batch's shape) in place
    of this call's own; ``sums_only`` runs the first pass alone and returns
    ``(parts, bad)``, every group's float64 sums (ngroups, C, K) in group
    order; ``coef_in`` (this chunk's sets' coefficients, from seg_coefs on
    the whole batch's sums) runs the gradient pass alone.
    """
    cdef const fl_ov_table *tb = fl_ov_get(f64)
    cdef fl_seg_args a
    cdef fl_seg_params prm
    cdef fl_idx bp = fl_ov_block_pixels(C, S)
    cdef fl_idx bpi = (S + bp - 1) // bp if S > 0 else 0
    cdef fl_idx nblocks = N * bpi
    # The sums keep one partial per group of consecutive blocks of an image,
    # at most about _MAX_GROUPS groups (plus one per image), so that the
    # partials stay small for many classes; the grouping depends on the
    # shape only, and a group adds its blocks in order: the same bits for
    # any thread count.
    cdef fl_idx G = groups if groups > 0 else ((nblocks + _MAX_GROUPS - 1) // _MAX_GROUPS if nblocks > 0 else 1)
    cdef fl_idx gpi = (bpi + G - 1) // G
    cdef fl_idx ngroups = N * gpi
    cdef fl_idx nsets = N if per_image else 1
    cdef int nt = _nthreads(n_threads, N * C * S, nblocks)
    cdef int ntg = _nthreads(n_threads, N * C * S, ngroups)
    cdef fl_idx blk, b0, b1
    cdef size_t tsz = (<size_t>C) * FL_OV_TILE * (8 if f64 else 4)
    cdef Py_ssize_t b, n, s0, k, st, tid
    cdef fl_idx bad = -1
    cdef double *part = NULL
    cdef cnp.ndarray parts = None
    cdef fl_idx *badv = NULL
    cdef char *scr = NULL
    cdef cnp.ndarray sums = np.zeros((nsets, C, FL_OV_K), np.float64)
    cdef cnp.ndarray losses = np.empty(nsets, np.float64)
    cdef cnp.ndarray coef = np.zeros((nsets, C, 3), np.float64)
    cdef double *ps = <double*>cnp.PyArray_DATA(sums)
    cdef Py_ssize_t K = FL_OV_K
    a.x = _ptr(x); a.t = _ptr(t); a.g = _ptr(g)
    a.N = N; a.C = C; a.S = S
    a.tcode = tcode; a.softmax = softmax; a.from_logits = from_logits
    a.has_ignore = has_ignore; a.ignore = ignore
    a.per_image = per_image; a.with_ce = with_ce; a.accumulate = accumulate
    a.coef = <double*>cnp.PyArray_DATA(coef)
    if coef_in is not None:  # the gradient pass alone, with the whole batch's coefficients
        coef = np.ascontiguousarray(coef_in, dtype=np.float64)
        a.coef = <double*>cnp.PyArray_DATA(coef)
        if g is not None and nblocks > 0:
            scr = <char*>malloc(nt * tsz + 64)
            if scr == NULL:
                raise MemoryError()
            try:
                with nogil:
                    _seg_grad_pass(tb, &a, nblocks, bpi, bp, S, scr, tsz, nt)
            finally:
                free(scr)
        return None, bad
    prm.alpha = alpha; prm.beta = beta; prm.gamma = gamma; prm.smooth = smooth; prm.eps = eps
    prm.log_loss = log_loss; prm.overlap_w = overlap_w; prm.ce_w = ce_w
    prm.set_scale = (1.0 / nsets if (mean and nsets > 0) else 1.0) * gscale
    if nblocks > 0:
        if sums_only:  # the groups' sums are the result: an array, not a scratch buffer
            parts = np.zeros((ngroups, C, K), np.float64)
            part = <double*>cnp.PyArray_DATA(parts)
        else:
            part = <double*>calloc(ngroups * C * K, sizeof(double))
        badv = <fl_idx*>malloc(ngroups * sizeof(fl_idx))
        scr = <char*>malloc((nt if nt > ntg else ntg) * tsz + 64)
        if part == NULL or badv == NULL or scr == NULL:
            if not sums_only:
                free(part)
            free(badv); free(scr)
            raise MemoryError()
    elif sums_only:
        parts = np.zeros((0, C, K), np.float64)
    try:
        with nogil:
            if nblocks > 0:
                for b in prange(ngroups, schedule='static', num_threads=ntg):
                    tid = threadid()
                    n = b // gpi
                    b0 = (b % gpi) * G
                    b1 = min(b0 + G, bpi)
                    badv[b] = -1
                    for blk in range(b0, b1):
                        s0 = blk * bp
                        k = tb.seg_sums(&a, n, s0, min(bp, S - s0), part + b * C * K, scr + tid * tsz)
                        if badv[b] < 0 and k >= 0:
                            badv[b] = k
                for b in range(ngroups):
                    if bad < 0 and badv[b] >= 0:
                        bad = badv[b]
                    st = (b // gpi) if per_image else 0
                    for k in range(C * K):
                        ps[st * C * K + k] += part[b * C * K + k]
        if sums_only:
            return parts, bad
        if bad >= 0:
            return losses, bad
        fl_seg_coefs(ps, nsets, C, <const double*>_ptr(w), <const unsigned char*>_ptr(sel), &prm,
                     <double*>cnp.PyArray_DATA(losses), <double*>cnp.PyArray_DATA(coef),
                     <double*>_ptr(terms))
        if g is not None and nblocks > 0:
            with nogil:
                _seg_grad_pass(tb, &a, nblocks, bpi, bp, S, scr, tsz, nt)
    finally:
        if not sums_only:
            free(part)
        free(badv); free(scr)
    return losses, bad


def lovasz(bint softmax, bint f64, x, t, int tcode, g, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S,
           bint from_logits, bint has_ignore, long long ignore, bint per_image, int classes_mode, sel,
           w, bint mean, int n_threads, Py_ssize_t nsets_all=0):
    """The Lovasz hinge (softmax=False; x is (N, S), C = 1) or Lovasz-softmax.

    ``nsets_all``: with per_image, the whole batch's number of images when
    this call runs a chunk of them (fastloss.dask), for the mean's scale.

    Returns ``(losses, bad)``: the float64 loss of each set and the flat
    index of the first bad target (-1 if none).  The sort of each (set,
    class) is one task; tasks run in parallel, each with its own scratch.
    """
    cdef const fl_ov_table *tb = fl_ov_get(f64)
    cdef fl_lovasz_args a
    cdef fl_idx nsets = N if per_image else 1
    cdef fl_idx ncls = C if softmax else 1
    cdef fl_idx ntasks = nsets * ncls
    cdef fl_idx tn = S if per_image else N * S
    cdef int nt = _nthreads(n_threads, N * C * S, ntasks)
    cdef size_t ssz = fl_lovasz_scratch_bytes(tn, C, f64)
    cdef fl_idx bp = fl_ov_block_pixels(C, S)
    cdef fl_idx bpi = (S + bp - 1) // bp if S > 0 else 0
    cdef fl_idx nblocks = N * bpi
    cdef int ntb = _nthreads(n_threads, N * C * S, nblocks)
    cdef Py_ssize_t b, n, s0, k, st, tid
    cdef fl_idx bad = -1
    cdef fl_idx nmean = nsets_all if (per_image and nsets_all > 0) else nsets
    cdef double set_scale = 1.0 / nmean if (mean and nmean > 0) else 1.0
    cdef double gs = set_scale if not softmax else 1.0
    cdef char *scr = NULL
    cdef double *tl = NULL
    cdef int *tc = NULL
    cdef fl_idx *tbad = NULL
    cdef fl_idx *badv = NULL
    cdef cnp.ndarray losses = np.zeros(nsets, np.float64)
    cdef cnp.ndarray scale = np.zeros(nsets, np.float64)
    cdef double *pl = <double*>cnp.PyArray_DATA(losses)
    cdef double *psc = <double*>cnp.PyArray_DATA(scale)
    cdef double acc, wsum
    cdef int cnt
    cdef const double *pw = <const double*>_ptr(w)
    a.x = _ptr(x); a.t = _ptr(t); a.g = _ptr(g)
    a.N = N; a.C = C; a.S = S
    a.tcode = tcode; a.from_logits = from_logits
    a.has_ignore = has_ignore; a.ignore = ignore
    a.per_image = per_image; a.classes_mode = classes_mode
    a.sel = <const unsigned char*>_ptr(sel)
    if ntasks == 0:
        return losses, bad
    scr = <char*>malloc((nt if nt > ntb else ntb) * ssz)
    tl = <double*>malloc(ntasks * sizeof(double))
    tc = <int*>malloc(ntasks * sizeof(int))
    tbad = <fl_idx*>malloc(ntasks * sizeof(fl_idx))
    badv = <fl_idx*>malloc((nblocks + 1) * sizeof(fl_idx))
    if scr == NULL or tl == NULL or tc == NULL or tbad == NULL or badv == NULL:
        free(scr); free(tl); free(tc); free(tbad); free(badv)
        raise MemoryError()
    cdef fl_idx items = N * S
    cdef fl_idx cper = 65536
    cdef fl_idx ncb = (items + cper - 1) // cper
    cdef int ntc = _nthreads(n_threads, items, ncb)
    cdef fl_idx *cbad = <fl_idx*>malloc((ncb + 1) * sizeof(fl_idx))
    if cbad == NULL:
        free(scr); free(tl); free(tc); free(tbad); free(badv)
        raise MemoryError()
    try:
        with nogil:
            # every target first: a bad one leaves out= untouched
            for b in prange(ncb, schedule='static', num_threads=ntc):
                cbad[b] = tb.lovasz_check(&a, not softmax, b * cper, min(cper, items - b * cper))
            for b in range(ncb):
                if bad < 0 and cbad[b] >= 0:
                    bad = cbad[b]
        if bad >= 0:
            return losses, bad
        with nogil:
            if softmax and g is not None and from_logits:
                for b in prange(nblocks, schedule='static', num_threads=ntb):
                    tid = threadid()
                    n = b // bpi
                    s0 = (b % bpi) * bp
                    badv[b] = tb.lovasz_prob(&a, n, s0, min(bp, S - s0), scr + tid * ssz)
                for b in range(nblocks):
                    if bad < 0 and badv[b] >= 0:
                        bad = badv[b]
        if bad >= 0:
            return losses, bad
        with nogil:
            for k in prange(ntasks, schedule='static', num_threads=nt):
                tid = threadid()
                tbad[k] = -1
                if softmax:
                    tl[k] = tb.lovasz_softmax(&a, k // ncls, k % ncls, scr + tid * ssz,
                                              pw[k % ncls] if pw != NULL else 1.0, &tc[k], &tbad[k])
                else:
                    tl[k] = tb.lovasz_hinge(&a, k, 0, scr + tid * ssz, gs, &tc[k], &tbad[k])
            for k in range(ntasks):
                if tbad[k] >= 0 and (bad < 0 or tbad[k] < bad):
                    bad = tbad[k]
        if bad >= 0:
            return losses, bad
        for st in range(nsets):
            acc = 0.0
            wsum = 0.0
            cnt = 0
            for k in range(ncls):
                if tc[st * ncls + k]:
                    # the weighted mean over the classes that count (each
                    # task already weighed its gradient by w_c)
                    acc += tl[st * ncls + k] * (pw[k] if pw != NULL else 1.0)
                    wsum += pw[k] if pw != NULL else 1.0
                    cnt += 1
            if softmax:
                pl[st] = acc / wsum if cnt > 0 else 0.0
                psc[st] = set_scale / wsum if cnt > 0 else 0.0
            else:
                pl[st] = acc
        if softmax and g is not None:
            with nogil:
                for b in prange(nblocks, schedule='static', num_threads=ntb):
                    tid = threadid()
                    n = b // bpi
                    s0 = (b % bpi) * bp
                    tb.lovasz_back(&a, n, s0, min(bp, S - s0), psc, scr + tid * ssz)
    finally:
        free(scr); free(tl); free(tc); free(tbad); free(badv); free(cbad)
    return losses, bad


def boxes(int kind, bint f64, b1, b2, g1, g2, l, Py_ssize_t n, double eps, double gscale, int n_threads,
          double[::1] parts=None):
    """A box IoU loss over n pairs; returns the float64 sum of the losses,
    added block by block in a fixed order.  ``parts`` (float64, one per
    block of BOX_BLOCK pairs), if given, receives the blocks' sums
    (fastloss.dask adds those of every chunk)."""
    cdef const fl_ov_table *tb = fl_ov_get(f64)
    cdef fl_box_block_fn fn = tb.box[kind]
    cdef fl_box_args a
    cdef fl_idx per = FL_BOX_BLOCK
    cdef fl_idx nblocks = (n + per - 1) // per
    cdef int nt = _nthreads(n_threads, 8 * n, nblocks)
    cdef double stack_part[16]
    cdef double *part = stack_part
    cdef double s = 0.0
    cdef Py_ssize_t b
    a.b1 = _ptr(b1); a.b2 = _ptr(b2); a.g1 = _ptr(g1); a.g2 = _ptr(g2); a.l = _ptr(l)
    a.eps = eps; a.gscale = gscale
    cdef bint want_parts = parts is not None
    if want_parts and parts.shape[0] != nblocks:
        raise ValueError(f"parts must have {nblocks} elements, got {parts.shape[0]}")
    if nblocks == 0:
        return 0.0
    if nblocks > 16:
        part = <double*>malloc(nblocks * sizeof(double))
        if part == NULL:
            raise MemoryError()
    try:
        with nogil:
            for b in prange(nblocks, schedule='static', num_threads=nt):
                part[b] = fn(&a, b * per, min(per, n - b * per))
            for b in range(nblocks):
                s += part[b]
            if want_parts:
                for b in range(nblocks):
                    parts[b] = part[b]
    finally:
        if part != stack_part:
            free(part)
    return s
