/* fl_rows_math.h -- the row-over-classes kernels: one set of row and tile
 * passes that every softmax-family loss shares, and the few losses that
 * need their own loop.
 *
 * Included by fl_rows.c once per (dtype, instruction set), with
 *   T        float or double: the class loops run in T, so float32 data is
 *            computed in float lanes; sums over classes are taken in T lanes
 *            over chunks of FL_ROW_CHUNK classes and carried in double;
 *            per-row scalars (log-sum-exp, loss, coefficients) are double
 *   T_F32    1 when T is float (selects the inline exp, see FN(exp_np))
 *   TI       an integer as wide as T (counters in T lanes)
 *   FN(n)    the name n suffixed with the dtype and the instruction set
 *   EXP LOG  the math functions for T
 * No include guard, on purpose.
 *
 * The softmax family.  With p = softmax(z) and a row of non-negative
 * target weights q (the loss's whole dependence on the target), every
 * softmax loss here is
 *     l = sum_c q_c (lse(z) - z_c)  [+ pe sum_c q_c (1 - p_c)]   (Poly-1)
 *     q_c = w_c ((1 - eps) t_c + eps / C)
 * with t the one-hot label or the soft target, w the class weights and
 * eps the label smoothing (for integer labels this is exactly PyTorch's
 * (1 - eps) nll + eps / C * sum_c w_c (-log p_c), pytorch#73205).  With
 * M = sum_c q_c and qp = sum_c q_c p_c:
 *     g_c = (M + pe qp) p_c - q_c (1 + pe p_c)
 *     h_c = M p_c (1 - p_c) + pe p_c (qp - q_c) (1 - 2 p_c)   (diagonal)
 *     (H v)_c = M p_c (v_c - p.v)                             (pe = 0)
 *
 * A row costs a max pass, a pass that parks e_c = exp(z_c - m) in the
 * gradient buffer (the output anyway: nothing is allocated that grows with
 * C) and one that sums them (a value-only call does both in one pass, with
 * the same sums), and a write pass that turns e into g (and h); extra sums
 * (smoothing, Poly-1, H v) are extra passes over a row that is in cache,
 * taken only when the option is on.  For integer labels the write pass is
 * label-free and the target class is rewritten from double scalars.  The
 * common case (integer labels, no smoothing / Poly-1 / H v, S = 1) runs in
 * groups of rows whose scalar math is vectorized across the group
 * (rows_ce_plain; with C <= RW_SMALL_C the group's exponentials are one
 * flat loop); spatial inputs run in tiles of positions (ce_tile).
 *
 * Digits.  The exp-sum is split at the max: rest = sum of e_c < 1 and k =
 * the number of e_c = 1, so log s = log1p(k - 1 + rest) and 1 - p at the
 * max are exact even when p -> 1 (a confident row's tiny loss and its
 * Hessian p (1 - p) keep float32 digits that 1 + rest would round away).
 * Terms whose target weight is 0 are skipped, so a -inf logit of a class
 * with q_c = 0 gives a finite loss (the limit), never 0 * inf.  NaN in a
 * row propagates to that row's loss and gradient.
 */

#define RW_MIN(a, b) ((a) < (b) ? (a) : (b))

/* `omp simd` hints, GCC and Clang only (MSVC's OpenMP 2.0 has no simd and
 * its C has no _Pragma; its auto-vectorizer does what it can). */
#if defined(__GNUC__) || defined(__clang__)
#define RW_PRAGMA(x) _Pragma(#x)
#else
#define RW_PRAGMA(x)
#endif

/* Lanes of the row reductions: a row is summed into RW_VL partial sums
 * (one vector register of floats on AVX2) that are added in a fixed tree
 * at the end of each chunk.  (GCC lowers `omp simd reduction` to a
 * sequential scalar sum through a stack array, which costs more than the
 * whole row at C = 32.) */
#define RW_VL 8
#define RW_TREE(l) (((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7])))

/* An int that GCC cannot see as the constant it is: a loop of RW_VL steps
 * counted with it is vectorized as one vector step instead of being fully
 * unrolled first (which leaves it only partly vectorized). */
#if defined(__GNUC__)
#define RW_OPAQUE(v) __asm__("" : "+r"(v))
#else
#define RW_OPAQUE(v) ((void)0)
#endif

/* OUT = sum over c in [0, N) of the body's `term_`, summed in T lanes over
 * chunks of FL_ROW_CHUNK classes and in double across chunks.  The body
 * sees the class index c (always in range) and defines `const T term_`; it
 * may store to index c when st_ is set.  A chunk of at least RW_VL classes
 * is covered by whole vectors, then one more vector over its last RW_VL
 * classes with the lanes already summed masked off (they store the value
 * they stored before): the tail is not up to RW_VL - 1 scalar exps.  A chunk
 * shorter than RW_VL (C < RW_VL) clamps the index and neither sums nor
 * stores the padding lanes.  Masked terms are formed in locals first:
 * `l_ += cond ? t : 0` reads to GCC as a conditional update and is not
 * vectorized. */
#define RW_SUM_CORE(ACC, N, ...)                                              \
    for (fl_idx c0_ = 0; c0_ < (N); c0_ += FL_ROW_CHUNK) {                    \
        const fl_idx c1_ = RW_MIN((N), c0_ + FL_ROW_CHUNK);                   \
        T l_[RW_VL], l2_[RW_VL];                                              \
        for (int k_ = 0; k_ < RW_VL; k_++) l_[k_] = l2_[k_] = 0;              \
        if (c1_ - c0_ >= RW_VL) {                                             \
            fl_idx cb_ = c0_;                                                 \
            for (; cb_ + RW_VL <= c1_; cb_ += RW_VL) {                        \
                RW_PRAGMA(omp simd)                                           \
                for (int k_ = 0; k_ < RW_VL; k_++) {                          \
                    const fl_idx c = cb_ + k_;                                \
                    const int st_ = 1;                                        \
                    (void)st_;                                                \
                    __VA_ARGS__                                               \
                    l_[k_] += term_;                                          \
                    l2_[k_] += term2_;                                        \
                }                                                             \
            }                                                                 \
            if (cb_ < c1_) {                                                  \
                const fl_idx b_ = c1_ - RW_VL;                                \
                const int off_ = (int)(cb_ - b_);                             \
                int vl_ = RW_VL;                                              \
                RW_OPAQUE(vl_);                                               \
                RW_PRAGMA(omp simd)                                           \
                for (int k_ = 0; k_ < vl_; k_++) {                            \
                    const fl_idx c = b_ + k_;                                 \
                    const int st_ = 1;                                        \
                    (void)st_;                                                \
                    __VA_ARGS__                                               \
                    const int lv_ = k_ >= off_;                               \
                    const T a1_ = lv_ ? term_ : (T)0;                         \
                    const T a2_ = lv_ ? term2_ : (T)0;                        \
                    l_[k_] += a1_;                                            \
                    l2_[k_] += a2_;                                           \
                }                                                             \
            }                                                                 \
        } else {                                                              \
            RW_PRAGMA(omp simd)                                               \
            for (int k_ = 0; k_ < RW_VL; k_++) {                              \
                const int st_ = c0_ + k_ < c1_;                               \
                const fl_idx c = st_ ? c0_ + k_ : c1_ - 1;                    \
                __VA_ARGS__                                                   \
                const T a1_ = st_ ? term_ : (T)0;                             \
                const T a2_ = st_ ? term2_ : (T)0;                            \
                l_[k_] += a1_;                                                \
                l2_[k_] += a2_;                                               \
            }                                                                 \
        }                                                                     \
        ACC                                                                   \
    }

#define RW_SUM(OUT, N, ...)                                                   \
    do {                                                                      \
        double acc_ = 0;                                                      \
        RW_SUM_CORE(acc_ += (double)RW_TREE(l_);, N,                          \
                    __VA_ARGS__ const T term2_ = 0; (void)term2_;)            \
        OUT = acc_;                                                           \
    } while (0)

/* RW_SUM with two sums: the body defines term_ and term2_. */
#define RW_SUM2(OUT, OUT2, N, ...)                                            \
    do {                                                                      \
        double acc_ = 0, acc2_ = 0;                                           \
        RW_SUM_CORE(acc_ += (double)RW_TREE(l_); acc2_ += (double)RW_TREE(l2_);, \
                    N, __VA_ARGS__)                                           \
        OUT = acc_;                                                           \
        OUT2 = acc2_;                                                         \
    } while (0)

/* The same over a tile: OUT[jj] = sum over classes c of the terms the body
 * adds to s_[jj], for the J positions of the tile (vectorized across
 * positions).  The body sees c, jj and o_ = c S, the offset of class c. */
#define TL_SUM(OUT, ...)                                                      \
    do {                                                                      \
        for (fl_idx jj = 0; jj < J; jj++) OUT[jj] = 0;                        \
        for (fl_idx c0_ = 0; c0_ < C; c0_ += FL_ROW_CHUNK) {                  \
            const fl_idx c1_ = RW_MIN(C, c0_ + FL_ROW_CHUNK);                 \
            T s_[FL_ROW_TILE];                                                \
            for (fl_idx jj = 0; jj < J; jj++) s_[jj] = 0;                     \
            for (fl_idx c = c0_; c < c1_; c++) {                              \
                const fl_idx o_ = c * S;                                      \
                (void)o_;                                                     \
                RW_PRAGMA(omp simd)                                           \
                for (fl_idx jj = 0; jj < J; jj++) { __VA_ARGS__ }             \
            }                                                                 \
            for (fl_idx jj = 0; jj < J; jj++) OUT[jj] += (double)s_[jj];      \
        }                                                                     \
    } while (0)

#include "fl_vmath.h"
#define EXPN FN(exp_np)

/* the label of item r, read in place from int64, int32 or uint8 */
FL_INLINE int64_t FN(label)(const void *t, int code, fl_idx r)
{
    switch (code) {
    case FL_LABEL_I64: return ((const int64_t *)t)[r];
    case FL_LABEL_I32: return (int64_t)((const int32_t *)t)[r];
    default: return (int64_t)((const uint8_t *)t)[r];
    }
}

/* is label y a class (1), ignored (0), or bad (-1)? */
FL_INLINE int FN(label_ok)(int64_t y, int64_t ignore, fl_idx C)
{
    if (y == ignore) return 0;
    return (y >= 0 && y < (int64_t)C) ? 1 : -1;
}

FL_INLINE void FN(zero)(T *restrict p, fl_idx n)
{
    if (p)
        for (fl_idx i = 0; i < n; i++) p[i] = 0;
}

/* zero the classes of a tile (J positions) */
FL_INLINE void FN(t_zero)(T *restrict p, fl_idx C, fl_idx S, fl_idx J)
{
    if (p)
        for (fl_idx c = 0; c < C; c++)
            for (fl_idx jj = 0; jj < J; jj++) p[c * S + jj] = 0;
}

/* log(1 + t) from log alone, accurate to a few ulp (vector log1pf needs
 * glibc 2.35): log(u) t / (u - 1) with u = 1 + t corrects u's rounding
 * (Goldberg, "What every computer scientist ...", theorem 4). */
FL_INLINE T FN(log1p_t)(T t)
{
    const T u = 1 + t, d = u - 1;
    const T r = LOG(u) * (t / d);
    return d == 0 ? t : r;
}

/* log(1 + t) for t >= 0 in double (scalar) */
#define RW_LOG1P log1p

/* ================= row passes (S = 1, contiguous classes) ================ */

FL_INLINE T FN(r_max)(const T *restrict z, fl_idx n)
{
    T l[RW_VL];
    for (int k = 0; k < RW_VL; k++) l[k] = -(T)INFINITY;
    fl_idx cb = 0;
    for (; cb + RW_VL <= n; cb += RW_VL) {
        RW_PRAGMA(omp simd)
        for (int k = 0; k < RW_VL; k++) l[k] = z[cb + k] > l[k] ? z[cb + k] : l[k];
    }
    if (cb < n && n >= RW_VL) {     /* the tail: the last RW_VL again (max is idempotent) */
        RW_PRAGMA(omp simd)
        for (int k = 0; k < RW_VL; k++) l[k] = z[n - RW_VL + k] > l[k] ? z[n - RW_VL + k] : l[k];
    } else {
        for (fl_idx c = cb; c < n; c++) l[0] = z[c] > l[0] ? z[c] : l[0];
    }
    T m = l[0];
    for (int k = 1; k < RW_VL; k++) m = l[k] > m ? l[k] : m;
    return m;
}

/* The softmax denominator of a row, split so that it keeps its digits:
 * returns the sum of e_c = exp(z_c - m) over the classes with e_c < 1 and
 * sets *k to the number of classes with e_c = 1 (those at the max, and any
 * within rounding of it: each contributes exactly 1 either way).
 * Then s = k + rest and log s = log1p(k - 1 + rest): a confident row's
 * small loss is not rounded away in float's 1 + rest. */
FL_INLINE double FN(r_sumexp_x)(const T *restrict z, T *restrict e, fl_idx n, T m, double *k)
{
    double s;
    if (e) {
        /* exponentials parked first by a plain loop (its constants set up
         * once), then summed from e: 17 % faster at C = 1000 than one
         * loop doing both, and the same bits */
        RW_PRAGMA(omp simd)
        for (fl_idx c = 0; c < n; c++) e[c] = EXPN(z[c] - m);
        RW_SUM2(s, *k, n, const T ec_ = e[c]; const int mx_ = ec_ == 1;
                const T term_ = mx_ ? (T)0 : ec_; const T term2_ = mx_ ? (T)1 : (T)0;);
    } else {
        RW_SUM2(s, *k, n, const T ec_ = EXPN(z[c] - m); const int mx_ = ec_ == 1;
                const T term_ = mx_ ? (T)0 : ec_; const T term2_ = mx_ ? (T)1 : (T)0;);
    }
    return s;
}

/* log s and 1 - p_y from r_sumexp_x's split (rest, k): exact when the
 * target is at the max (zy = 0), where both are small. */
FL_INLINE double FN(log_s)(double rest, double k)
{
    return (double)FN(log1p_t)((T)((k - 1) + rest));
}

/* sum_c w_c (z_c - m), zero-weight terms skipped (w NULL: all 1) */
FL_INLINE double FN(r_wdiff)(const T *restrict z, const T *restrict w, fl_idx n, T m)
{
    double d;
    if (w) RW_SUM(d, n, const T dc = z[c] - m; const T term_ = w[c] != 0 ? w[c] * dc : (T)0;);
    else RW_SUM(d, n, const T term_ = z[c] - m;);
    return d;
}

/* sum_c w_c e_c, with e_c parked in e or recomputed from z */
FL_INLINE double FN(r_wexp)(const T *restrict z, const T *restrict e, const T *restrict w, fl_idx n, T m)
{
    double d;
    if (e && w) RW_SUM(d, n, const T term_ = w[c] * e[c];);
    else if (e) RW_SUM(d, n, const T term_ = e[c];);
    else if (w) RW_SUM(d, n, const T term_ = w[c] * EXPN(z[c] - m););
    else RW_SUM(d, n, const T term_ = EXPN(z[c] - m););
    return d;
}

/* p.v's numerator split as r_sumexp_x splits s: *pr = sum of e_c v_c over
 * the classes below the max, *pm = sum of v_c over those at the max */
FL_INLINE void FN(r_dot_x)(const T *restrict e, const T *restrict v, fl_idx n, double *pr, double *pm)
{
    RW_SUM2(*pr, *pm, n, const int mx_ = e[c] == 1; const T term_ = mx_ ? (T)0 : e[c] * v[c];
            const T term2_ = mx_ ? v[c] : (T)0;);
}

/* The softmax write pass over a row whose exponentials are parked in g:
 * p = e is; q_c by QM (0: none, 1: b w_c, 2: w_c (ls1 t_c + b));
 * g = cg (cp p - q (1 + pe p)), h = cg (ch p (1 - p) + pe p (qp - q)(1 - 2 p))
 * with cp = M + pe qp, ch = M and cg the reduction's scale (applied last,
 * so M p - q cancels exactly where it should).  1 - p of a class at the
 * max (e = 1) is om, from the classes below it. */
FL_INLINE void FN(r_sm_write)(T *restrict g, T *restrict h, const T *restrict t,
                              const T *restrict w, fl_idx n, T is, T om, T cp, T cg, T ch,
                              T pe, T qp, T ls1, T b, const int WH, const int WW,
                              const int QM, const int PO)
{
    RW_PRAGMA(omp simd)
    for (fl_idx c = 0; c < n; c++) {
        const T e = g[c], p = e * is;
        const T wc = WW ? w[c] : (T)1;
        const T q = QM == 0 ? (T)0 : (QM == 1 ? b * wc : wc * (ls1 * t[c] + b));
        g[c] = cg * (PO ? cp * p - q * (1 + pe * p) : cp * p - q);
        if (WH) {
            const T omp = e == 1 ? om : 1 - p;
            h[c] = cg * (ch * p * omp + (PO ? pe * p * (qp - q) * (1 - 2 * p) : (T)0));
        }
    }
}

#define RW_SMW(WH, WW, QM, PO)                                                \
    case ((QM * 2 + WW) * 2 + PO) * 2 + WH:                                   \
        FN(r_sm_write)(g, h, t, w, n, is, om, cp, cg, ch, pe, qp, ls1, b, WH, \
                       WW, QM, PO);                                           \
        return;
#define RW_SMW_WH(WW, QM, PO) RW_SMW(0, WW, QM, PO) RW_SMW(1, WW, QM, PO)
#define RW_SMW_PO(WW, QM) RW_SMW_WH(WW, QM, 0) RW_SMW_WH(WW, QM, 1)
#define RW_SMW_WW(QM) RW_SMW_PO(0, QM) RW_SMW_PO(1, QM)

static void FN(r_sm_write_any)(T *restrict g, T *restrict h, const T *restrict t,
                               const T *restrict w, fl_idx n, T is, T om, T cp, T cg, T ch,
                               T pe, T qp, T ls1, T b, int qm, int po)
{
    const int wh = h != NULL, ww = w != NULL && qm != 0;
    switch (((qm * 2 + ww) * 2 + (po != 0)) * 2 + wh) {
        RW_SMW_WW(0) RW_SMW_WW(1) RW_SMW_WW(2)
    default: return;
    }
}

/* (H v)_c = k p_c (v_c - p.v), p = e is, written over the parked e; with
 * p.v = (pr + pm) is split as r_dot_x splits it, a class at the max uses
 * v_c - p.v = om v_c - (pr + pm - v_c) is (no cancellation when p_c -> 1). */
FL_INLINE void FN(r_hvp_write)(T *restrict g, const T *restrict v, fl_idx n, T is, T om, T k,
                               T pr, T pm)
{
    const T pv = (pr + pm) * is;
    RW_PRAGMA(omp simd)
    for (fl_idx c = 0; c < n; c++) {
        const T e = g[c], vc = v[c];
        const T d = e == 1 ? om * vc - (pr + (pm - vc)) * is : vc - pv;
        g[c] = k * (e * is) * d;
    }
}

/* ================= tile passes (S > 1, J positions of one sample) ========
 * z, g, h, t, v point at class 0 of the tile's first position; class c of
 * position jj is at [c S + jj].  act[jj] != 0 marks the positions with a
 * target (not ignored); the others get 0 gradient and Hessian. */

FL_INLINE void FN(t_max)(const T *restrict z, fl_idx C, fl_idx S, fl_idx J, T *restrict mt)
{
    for (fl_idx jj = 0; jj < J; jj++) mt[jj] = -(T)INFINITY;
    for (fl_idx c = 0; c < C; c++) {
        const T *restrict zc = z + c * S;
        RW_PRAGMA(omp simd)
        for (fl_idx jj = 0; jj < J; jj++) mt[jj] = zc[jj] > mt[jj] ? zc[jj] : mt[jj];
    }
}

FL_INLINE void FN(t_sumexp_x)(const T *restrict z, T *restrict e, fl_idx C, fl_idx S, fl_idx J,
                              const T *restrict mt, double *restrict st, double *restrict kt)
{
    if (e) TL_SUM(st, const T ec = EXPN(z[o_ + jj] - mt[jj]); e[o_ + jj] = ec;
                  const T u_ = ec == 1 ? (T)0 : ec; s_[jj] += u_;);
    else TL_SUM(st, const T ec = EXPN(z[o_ + jj] - mt[jj]); const T u_ = ec == 1 ? (T)0 : ec; s_[jj] += u_;);
    /* the count of e = 1: from the parked e, or from z (z - m = 0 is e = 1
     * for every z - m that exp rounds to 1 only when it is 0 or subnormal) */
    if (e) TL_SUM(kt, const T u_ = e[o_ + jj] == 1 ? (T)1 : (T)0; s_[jj] += u_;);
    else TL_SUM(kt, const T u_ = EXPN(z[o_ + jj] - mt[jj]) == 1 ? (T)1 : (T)0; s_[jj] += u_;);
}

FL_INLINE void FN(t_wdiff)(const T *restrict z, const T *restrict w, fl_idx C, fl_idx S, fl_idx J,
                           const T *restrict mt, double *restrict d)
{
    if (w) TL_SUM(d, const T wc = w[c], dc = z[o_ + jj] - mt[jj]; const T u_ = wc != 0 ? wc * dc : (T)0; s_[jj] += u_;);
    else TL_SUM(d, s_[jj] += z[o_ + jj] - mt[jj];);
}

FL_INLINE void FN(t_wexp)(const T *restrict z, const T *restrict e, const T *restrict w, fl_idx C,
                          fl_idx S, fl_idx J, const T *restrict mt, double *restrict d)
{
    if (e && w) TL_SUM(d, s_[jj] += w[c] * e[o_ + jj];);
    else if (e) TL_SUM(d, s_[jj] += e[o_ + jj];);
    else if (w) TL_SUM(d, s_[jj] += w[c] * EXPN(z[o_ + jj] - mt[jj]););
    else TL_SUM(d, s_[jj] += EXPN(z[o_ + jj] - mt[jj]););
}

FL_INLINE void FN(t_dot_x)(const T *restrict e, const T *restrict v, fl_idx C, fl_idx S, fl_idx J,
                           double *restrict pr, double *restrict pm)
{
    TL_SUM(pr, const T u_ = e[o_ + jj] == 1 ? (T)0 : e[o_ + jj] * v[o_ + jj]; s_[jj] += u_;);
    TL_SUM(pm, const T u_ = e[o_ + jj] == 1 ? v[o_ + jj] : (T)0; s_[jj] += u_;);
}

/* a tile whose positions are all ignored: zero outputs, loss 0 */
FL_INLINE double FN(t_none)(T *restrict g, T *restrict h, T *restrict l, fl_idx C, fl_idx S, fl_idx J)
{
    FN(t_zero)(g, C, S, J);
    FN(t_zero)(h, C, S, J);
    if (l) for (fl_idx jj = 0; jj < J; jj++) l[jj] = 0;
    return 0;
}

/* the tile form of r_sm_write, with per-position coefficients */
FL_INLINE void FN(t_sm_write)(T *restrict g, T *restrict h, const T *restrict t,
                              const T *restrict w, fl_idx C, fl_idx S, fl_idx J,
                              const T *restrict is, const T *restrict om,
                              const T *restrict cp, const T *restrict cg,
                              const T *restrict ch, const T *restrict qp,
                              const T *restrict act, T pe,
                              T ls1, T b, const int WH, const int WW, const int QM,
                              const int PO)
{
    for (fl_idx c = 0; c < C; c++) {
        T *restrict gc = g + c * S;
        T *restrict hc = WH ? h + c * S : NULL;
        const T *restrict tc = QM == 2 ? t + c * S : NULL;
        const T wc = WW ? w[c] : (T)1;
        RW_PRAGMA(omp simd)
        for (fl_idx jj = 0; jj < J; jj++) {
            const T e = gc[jj], p = e * is[jj];
            const T q = QM == 0 ? (T)0 : (QM == 1 ? b * wc : wc * (ls1 * tc[jj] + b));
            const T gv = cg[jj] * (PO ? cp[jj] * p - q * (1 + pe * p) : cp[jj] * p - q);
            gc[jj] = act[jj] != 0 ? gv : (T)0;
            if (WH) {
                const T hv = cg[jj] * (ch[jj] * p * (e == 1 ? om[jj] : 1 - p) +
                                       (PO ? pe * p * (qp[jj] - q) * (1 - 2 * p) : (T)0));
                hc[jj] = act[jj] != 0 ? hv : (T)0;
            }
        }
    }
}

#define TL_SMW(WH, WW, QM, PO)                                                \
    case ((QM * 2 + WW) * 2 + PO) * 2 + WH:                                   \
        FN(t_sm_write)(g, h, t, w, C, S, J, is, om, cp, cg, ch, qp, act, pe,  \
                       ls1, b, WH, WW, QM, PO);                               \
        return;
#define TL_SMW_WH(WW, QM, PO) TL_SMW(0, WW, QM, PO) TL_SMW(1, WW, QM, PO)
#define TL_SMW_PO(WW, QM) TL_SMW_WH(WW, QM, 0) TL_SMW_WH(WW, QM, 1)
#define TL_SMW_WW(QM) TL_SMW_PO(0, QM) TL_SMW_PO(1, QM)

static void FN(t_sm_write_any)(T *restrict g, T *restrict h, const T *restrict t,
                               const T *restrict w, fl_idx C, fl_idx S, fl_idx J,
                               const T *is, const T *om, const T *cp, const T *cg,
                               const T *ch, const T *qp, const T *act, T pe, T ls1, T b,
                               int qm, int po)
{
    const int wh = h != NULL, ww = w != NULL && qm != 0;
    switch (((qm * 2 + ww) * 2 + (po != 0)) * 2 + wh) {
        TL_SMW_WW(0) TL_SMW_WW(1) TL_SMW_WW(2)
    default: return;
    }
}

/* the tile form of r_hvp_write */
FL_INLINE void FN(t_hvp_write)(T *restrict g, const T *restrict v, fl_idx C, fl_idx S, fl_idx J,
                               const T *restrict is, const T *restrict om, const T *restrict k,
                               const T *restrict pr, const T *restrict pm, const T *restrict act)
{
    for (fl_idx c = 0; c < C; c++) {
        T *restrict gc = g + c * S;
        const T *restrict vc = v + c * S;
        RW_PRAGMA(omp simd)
        for (fl_idx jj = 0; jj < J; jj++) {
            const T e = gc[jj], x = vc[jj];
            const T d = e == 1 ? om[jj] * x - (pr[jj] + (pm[jj] - x)) * is[jj]
                               : x - (pr[jj] + pm[jj]) * is[jj];
            const T hv = k[jj] * (e * is[jj]) * d;
            gc[jj] = act[jj] != 0 ? hv : (T)0;
        }
    }
}

/* ================= cross-entropy (and Poly-1), integer labels ============ */

/* One row with a checked label y; returns the row's loss. */
static double FN(ce_row)(const fl_row_args *a, const T *restrict z, T *restrict g,
                         T *restrict h, const T *restrict v, fl_idx y)
{
    const fl_idx C = a->C;
    const T *w = (const T *)a->w;
    const double eps = a->prm.pa, pe = a->prm.pb, b = eps / (double)C;
    const double wy = w ? (double)w[y] : 1.0;
    const double A = (1 - eps) * wy, M = A + b * a->wsum;
    const T m = FN(r_max)(z, C);
    double k;
    const double rest = FN(r_sumexp_x)(z, g, C, m, &k), s = k + rest, is = 1 / s;
    const double zy = (double)z[y] - (double)m;
    double loss = M * FN(log_s)(rest, k) - (A != 0 ? A * zy : 0.0);
    if (eps != 0) loss -= b * FN(r_wdiff)(z, w, C, m);
    /* p_y's numerator: parked by r_sumexp_x, or recomputed the same way
     * (so that the value-only call gives the same bits) */
    const double ey = g ? (double)g[y] : (pe != 0 ? (double)EXPN(z[y] - m) : 0.0), py = ey * is;
    double qp = 0, Es = 0;
    if (pe != 0) {
        Es = eps != 0 ? FN(r_wexp)(z, g, w, C, m) * is : 0.0;
        qp = A * py + b * Es;
        loss += pe * (M - qp);
    }
    if (!g) return loss;
    const double gs = a->gscale;
    const double om = ((k - 1) + rest) * is;   /* 1 - p of a class at the max */
    if (a->mode == FL_ROW_HVP) {
        double pr, pm;
        FN(r_dot_x)(g, v, C, &pr, &pm);
        FN(r_hvp_write)(g, v, C, (T)is, (T)om, (T)(gs * M), (T)pr, (T)pm);
        return loss;
    }
    FN(r_sm_write_any)(g, h, NULL, w, C, (T)is, (T)om, (T)(M + pe * qp), (T)gs, (T)M, (T)pe,
                       (T)qp, (T)(1 - eps), (T)b, eps != 0, pe != 0);
    /* The target class, from double scalars, with 1 - p_y from the classes
     * below the max when the target is at the max (no cancellation):
     * g_y = M p_y - q_y + pe p_y (qp - q_y), M p_y - q_y = -A (1 - p_y)
     * + b (W p_y - w_y), qp - q_y = -A (1 - p_y) + b (E/s - w_y). */
    const double omp = zy == 0 ? ((k - 1) + rest) * is : 1 - py;
    const double dq = -A * omp + b * (Es - wy);
    g[y] = (T)(gs * (-A * omp + b * (a->wsum * py - wy) + pe * py * dq));
    if (h) h[y] = (T)(gs * (M * py * omp + pe * py * dq * (1 - 2 * py)));
    return loss;
}

/* The tile form: J positions of one sample starting at item r0. */
static double FN(ce_tile)(const fl_row_args *a, fl_idx r0, fl_idx J, fl_idx off, fl_idx *bad)
{
    const fl_idx C = a->C, S = a->S;
    const T *z = (const T *)a->x + off;
    T *g = a->g ? (T *)a->g + off : NULL;
    T *h = a->h ? (T *)a->h + off : NULL;
    const T *v = a->v ? (const T *)a->v + off : NULL;
    T *l = a->l ? (T *)a->l + r0 : NULL;
    const T *w = (const T *)a->w;
    const double eps = a->prm.pa, pe = a->prm.pb, b = eps / (double)C, gs = a->gscale;
    fl_idx yv[FL_ROW_TILE];
    T act[FL_ROW_TILE], mt[FL_ROW_TILE];
    double A[FL_ROW_TILE], M[FL_ROW_TILE], st[FL_ROW_TILE], kt[FL_ROW_TILE], d[FL_ROW_TILE];
    double qp[FL_ROW_TILE], Es[FL_ROW_TILE];
    int any = 0;
    for (fl_idx jj = 0; jj < J; jj++) {
        const int64_t y = FN(label)(a->t, a->tcode, r0 + jj);
        const int ok = FN(label_ok)(y, a->ignore, C);
        if (ok < 0 && *bad < 0) *bad = r0 + jj;
        act[jj] = ok > 0;
        yv[jj] = ok > 0 ? (fl_idx)y : 0;
        const double wy = ok > 0 ? (w ? (double)w[y] : 1.0) : 0.0;
        A[jj] = (1 - eps) * wy;
        M[jj] = ok > 0 ? A[jj] + b * a->wsum : 0.0;
        any |= ok > 0;
    }
    if (!any) return FN(t_none)(g, h, l, C, S, J);
    FN(t_max)(z, C, S, J, mt);
    FN(t_sumexp_x)(z, g, C, S, J, mt, d, kt);   /* d: the sum below the max */
    double loss[FL_ROW_TILE], omp[FL_ROW_TILE], py[FL_ROW_TILE], rs[FL_ROW_TILE];
    for (fl_idx jj = 0; jj < J; jj++) {
        const double zy = (double)z[yv[jj] * S + jj] - (double)mt[jj];
        rs[jj] = d[jj];
        st[jj] = kt[jj] + d[jj];
        loss[jj] = M[jj] * FN(log_s)(d[jj], kt[jj]) - (A[jj] != 0 ? A[jj] * zy : 0.0);
        py[jj] = exp(zy) / st[jj];
        omp[jj] = zy == 0 ? ((kt[jj] - 1) + d[jj]) / st[jj] : 1 - py[jj];
    }
    if (eps != 0) {
        FN(t_wdiff)(z, w, C, S, J, mt, d);
        for (fl_idx jj = 0; jj < J; jj++) loss[jj] -= b * d[jj];
    }
    for (fl_idx jj = 0; jj < J; jj++) qp[jj] = Es[jj] = 0;
    if (pe != 0) {
        if (eps != 0) FN(t_wexp)(z, g, w, C, S, J, mt, d);
        for (fl_idx jj = 0; jj < J; jj++) {
            Es[jj] = eps != 0 ? d[jj] / st[jj] : 0.0;
            qp[jj] = A[jj] * py[jj] + b * Es[jj];
            loss[jj] += pe * (M[jj] - qp[jj]);
        }
    }
    double total = 0;
    for (fl_idx jj = 0; jj < J; jj++) {
        const double lv = act[jj] != 0 ? loss[jj] : 0.0;
        if (l) l[jj] = (T)lv;
        total += lv;
    }
    if (!g) return total;
    T is[FL_ROW_TILE], om[FL_ROW_TILE], cp[FL_ROW_TILE], cg[FL_ROW_TILE], ch[FL_ROW_TILE];
    T qpt[FL_ROW_TILE];
    for (fl_idx jj = 0; jj < J; jj++) {
        is[jj] = (T)(1 / st[jj]);
        om[jj] = (T)(((kt[jj] - 1) + rs[jj]) / st[jj]);
        ch[jj] = (T)M[jj];
    }
    if (a->mode == FL_ROW_HVP) {
        double pr[FL_ROW_TILE], pm[FL_ROW_TILE];
        T prt[FL_ROW_TILE], pmt[FL_ROW_TILE];
        FN(t_dot_x)(g, v, C, S, J, pr, pm);
        for (fl_idx jj = 0; jj < J; jj++) { prt[jj] = (T)pr[jj]; pmt[jj] = (T)pm[jj]; }
        for (fl_idx jj = 0; jj < J; jj++) cp[jj] = (T)(gs * M[jj]);
        FN(t_hvp_write)(g, v, C, S, J, is, om, cp, prt, pmt, act);
        return total;
    }
    for (fl_idx jj = 0; jj < J; jj++) {
        cp[jj] = (T)(M[jj] + pe * qp[jj]);
        cg[jj] = (T)gs;
        qpt[jj] = (T)qp[jj];
    }
    FN(t_sm_write_any)(g, h, NULL, w, C, S, J, is, om, cp, cg, ch, qpt, act, (T)pe,
                       (T)(1 - eps), (T)b, eps != 0, pe != 0);
    for (fl_idx jj = 0; jj < J; jj++) {   /* the target class, as in ce_row */
        if (act[jj] == 0) continue;
        const fl_idx k = yv[jj] * S + jj;
        const double wy = w ? (double)w[yv[jj]] : 1.0, p = py[jj];
        const double dq = -A[jj] * omp[jj] + b * (Es[jj] - wy);
        g[k] = (T)(gs * (-A[jj] * omp[jj] + b * (a->wsum * p - wy) + pe * p * dq));
        if (h) h[k] = (T)(gs * (M[jj] * p * omp[jj] + pe * p * dq * (1 - 2 * p)));
    }
    return total;
}

/* ================= cross-entropy (and Poly-1), soft targets ============== */

/* M = sum_c q_c and Z = sum_c q_c (z_c - m), q_c = w_c (ls1 t_c + b) */
FL_INLINE void FN(r_qsums)(const T *restrict z, const T *restrict t, const T *restrict w,
                           fl_idx n, T m, T ls1, T b, double *Mo, double *Zo)
{
    double M = 0, Z = 0;
    for (fl_idx c0 = 0; c0 < n; c0 += FL_ROW_CHUNK) {
        const fl_idx c1 = RW_MIN(n, c0 + FL_ROW_CHUNK);
        T sm = 0, sz = 0;
        if (w) {
            RW_PRAGMA(omp simd reduction(+:sm, sz))
            for (fl_idx c = c0; c < c1; c++) {
                const T q = w[c] * (ls1 * t[c] + b);
                sm += q;
                const T u = q != 0 ? q * (z[c] - m) : (T)0;
                sz += u;
            }
        } else {
            RW_PRAGMA(omp simd reduction(+:sm, sz))
            for (fl_idx c = c0; c < c1; c++) {
                const T q = ls1 * t[c] + b;
                sm += q;
                const T u = q != 0 ? q * (z[c] - m) : (T)0;
                sz += u;
            }
        }
        M += (double)sm;
        Z += (double)sz;
    }
    *Mo = M;
    *Zo = Z;
}

/* sum_c q_c e_c (Poly-1), e parked or recomputed */
FL_INLINE double FN(r_qexp)(const T *restrict z, const T *restrict e, const T *restrict t,
                            const T *restrict w, fl_idx n, T m, T ls1, T b)
{
    double d;
    if (e) RW_SUM(d, n, const T q = (w ? w[c] : (T)1) * (ls1 * t[c] + b); const T term_ = q * e[c];);
    else RW_SUM(d, n, const T q = (w ? w[c] : (T)1) * (ls1 * t[c] + b); const T term_ = q * EXPN(z[c] - m););
    return d;
}

/* The target's gradient, d l / d t_c = ls1 w_c (pe (1 - p_c) - log p_c),
 * times the reduction's scale (in cg), with log p_c = z_c - m - log s and
 * p_c = e_c / s from the exponentials parked in e (read before the write
 * pass turns them into the gradient).  A class with ls1 w_c = 0 gets 0. */
FL_INLINE void FN(r_tgrad_write)(T *restrict gt, const T *restrict z, const T *restrict e,
                                 const T *restrict w, fl_idx n, T m, T lse, T is, T cg, T pe,
                                 const int PO)
{
    RW_PRAGMA(omp simd)
    for (fl_idx c = 0; c < n; c++) {
        const T k = cg * (w ? w[c] : (T)1);
        const T lp = (z[c] - m) - lse;
        const T u = PO ? pe * (1 - e[c] * is) - lp : -lp;
        gt[c] = k != 0 ? k * u : (T)0;
    }
}

static double FN(ce_soft_row)(const fl_row_args *a, const T *restrict z, const T *restrict t,
                              T *restrict g, T *restrict h, const T *restrict v, T *restrict gt)
{
    const fl_idx C = a->C;
    const T *w = (const T *)a->w;
    const double eps = a->prm.pa, pe = a->prm.pb, b = eps / (double)C;
    const T m = FN(r_max)(z, C);
    double k;
    const double rest = FN(r_sumexp_x)(z, g, C, m, &k), s = k + rest;
    double M, Z;
    FN(r_qsums)(z, t, w, C, m, (T)(1 - eps), (T)b, &M, &Z);
    const double lse = FN(log_s)(rest, k);
    double loss = M * lse - Z, qp = 0;
    if (pe != 0) {
        qp = FN(r_qexp)(z, g, t, w, C, m, (T)(1 - eps), (T)b) / s;
        loss += pe * (M - qp);
    }
    if (!g) return loss;
    const double gs = a->gscale, is = 1 / s, om = ((k - 1) + rest) * is;
    if (gt) {
        if (pe != 0) FN(r_tgrad_write)(gt, z, g, w, C, m, (T)lse, (T)is, (T)(gs * (1 - eps)), (T)pe, 1);
        else FN(r_tgrad_write)(gt, z, g, w, C, m, (T)lse, (T)is, (T)(gs * (1 - eps)), (T)pe, 0);
    }
    if (a->mode == FL_ROW_HVP) {
        double pr, pm;
        FN(r_dot_x)(g, v, C, &pr, &pm);
        FN(r_hvp_write)(g, v, C, (T)is, (T)om, (T)(gs * M), (T)pr, (T)pm);
        return loss;
    }
    FN(r_sm_write_any)(g, h, t, w, C, (T)is, (T)om, (T)(M + pe * qp), (T)gs, (T)M, (T)pe,
                       (T)qp, (T)(1 - eps), (T)b, 2, pe != 0);
    return loss;
}

static double FN(ce_soft_tile)(const fl_row_args *a, fl_idx r0, fl_idx J, fl_idx off, fl_idx *bad)
{
    (void)bad;
    const fl_idx C = a->C, S = a->S;
    const T *z = (const T *)a->x + off, *t = (const T *)a->t + off;
    T *g = a->g ? (T *)a->g + off : NULL;
    T *h = a->h ? (T *)a->h + off : NULL;
    const T *v = a->v ? (const T *)a->v + off : NULL;
    T *l = a->l ? (T *)a->l + r0 : NULL;
    T *gt = a->gt ? (T *)a->gt + off : NULL;
    const T *w = (const T *)a->w;
    const double eps = a->prm.pa, pe = a->prm.pb, gs = a->gscale;
    const T ls1 = (T)(1 - eps), b = (T)(eps / (double)C);
    T mt[FL_ROW_TILE], act[FL_ROW_TILE];
    double st[FL_ROW_TILE], kt[FL_ROW_TILE], rs[FL_ROW_TILE], ls[FL_ROW_TILE], M[FL_ROW_TILE];
    double Z[FL_ROW_TILE], qp[FL_ROW_TILE];
    FN(t_max)(z, C, S, J, mt);
    FN(t_sumexp_x)(z, g, C, S, J, mt, rs, kt);
    for (fl_idx jj = 0; jj < J; jj++) {
        ls[jj] = FN(log_s)(rs[jj], kt[jj]);
        st[jj] = kt[jj] + rs[jj];
    }
    if (w) {
        TL_SUM(M, s_[jj] += w[c] * (ls1 * t[o_ + jj] + b););
        TL_SUM(Z, const T q = w[c] * (ls1 * t[o_ + jj] + b);
               const T u_ = q != 0 ? q * (z[o_ + jj] - mt[jj]) : (T)0; s_[jj] += u_;);
    } else {
        TL_SUM(M, s_[jj] += ls1 * t[o_ + jj] + b;);
        TL_SUM(Z, const T q = ls1 * t[o_ + jj] + b;
               const T u_ = q != 0 ? q * (z[o_ + jj] - mt[jj]) : (T)0; s_[jj] += u_;);
    }
    for (fl_idx jj = 0; jj < J; jj++) qp[jj] = 0;
    if (pe != 0) {
        if (g) TL_SUM(qp, const T u_ = (w ? w[c] : (T)1) * (ls1 * t[o_ + jj] + b) * g[o_ + jj]; s_[jj] += u_;);
        else TL_SUM(qp, const T u_ = (w ? w[c] : (T)1) * (ls1 * t[o_ + jj] + b) *
                                  EXPN(z[o_ + jj] - mt[jj]); s_[jj] += u_;);
        for (fl_idx jj = 0; jj < J; jj++) qp[jj] /= st[jj];
    }
    double total = 0;
    for (fl_idx jj = 0; jj < J; jj++) {
        const double lv = M[jj] * ls[jj] - Z[jj] + (pe != 0 ? pe * (M[jj] - qp[jj]) : 0.0);
        if (l) l[jj] = (T)lv;
        total += lv;
    }
    if (!g) return total;
    T is[FL_ROW_TILE], om[FL_ROW_TILE], cp[FL_ROW_TILE], cg[FL_ROW_TILE], ch[FL_ROW_TILE];
    T qpt[FL_ROW_TILE];
    for (fl_idx jj = 0; jj < J; jj++) {
        act[jj] = 1;
        is[jj] = (T)(1 / st[jj]);
        om[jj] = (T)(((kt[jj] - 1) + rs[jj]) / st[jj]);
        ch[jj] = (T)(gs * M[jj]);       /* H v's scale; the write pass takes M */
        cp[jj] = (T)(M[jj] + pe * qp[jj]);
        cg[jj] = (T)gs;
        qpt[jj] = (T)qp[jj];
    }
    if (gt) {
        /* the target's gradient, as r_tgrad_write, before g is overwritten */
        const T cgt = (T)(gs * (1 - eps)), pet = (T)pe;
        T lt[FL_ROW_TILE];
        for (fl_idx jj = 0; jj < J; jj++) lt[jj] = (T)ls[jj];
        for (fl_idx c = 0; c < C; c++) {
            const T k = cgt * (w ? w[c] : (T)1);
            const T *restrict zc = z + c * S, *restrict ec = g + c * S;
            T *restrict tc = gt + c * S;
            RW_PRAGMA(omp simd)
            for (fl_idx jj = 0; jj < J; jj++) {
                const T lp = (zc[jj] - mt[jj]) - lt[jj];
                const T u = pe != 0 ? pet * (1 - ec[jj] * is[jj]) - lp : -lp;
                tc[jj] = k != 0 ? k * u : (T)0;
            }
        }
    }
    if (a->mode == FL_ROW_HVP) {
        double pr[FL_ROW_TILE], pm[FL_ROW_TILE];
        T prt[FL_ROW_TILE], pmt[FL_ROW_TILE];
        FN(t_dot_x)(g, v, C, S, J, pr, pm);
        for (fl_idx jj = 0; jj < J; jj++) { prt[jj] = (T)pr[jj]; pmt[jj] = (T)pm[jj]; }
        FN(t_hvp_write)(g, v, C, S, J, is, om, ch, prt, pmt, act);
        return total;
    }
    for (fl_idx jj = 0; jj < J; jj++) ch[jj] = (T)M[jj];
    FN(t_sm_write_any)(g, h, t, w, C, S, J, is, om, cp, cg, ch, qpt, act, (T)pe, ls1, b, 2,
                       pe != 0);
    return total;
}

/* ================= softmax focal loss, integer labels ===================
 * l = -alpha_y (1 - p)^gamma log p, p = p_y.  With u = 1 - p (from the
 * classes other than y, so it keeps its digits when p -> 1), L = -log p,
 * r = L / u (-> 1 as u -> 0), U = u^gamma and K = U (1 + gamma p r):
 *   g_c = alpha K p_c (c != y),  g_y = -alpha K u
 *   h_c = alpha U [gamma (gamma-1) p^2 L rho_c^2 + 2 gamma p p_c rho_c
 *                  + gamma p r p_c (1 - 2 p_c) + p_c (1 - p_c)],  rho_c = p_c / u
 *   h_y = alpha U [gamma (gamma-1) p^2 L + 2 gamma p u + u p - gamma p L (1 - 2p)]
 * every term finite for gamma >= 0 as u -> 0 (gamma = 0 is cross-entropy).
 * The sums are split at the row max as for cross-entropy (r_sumexp_x), so
 * that 1 - p of the target and of a non-target class at the max are both
 * exact.  The Hessian is computed in double (its coefficients span more
 * than float's range). */

typedef struct {
    double loss, k, ky, h0, c2, c1, c3, hy, is, sex, om;
} FN(focal_coef);

/* zy = z_y - m; (rest, kmax) = r_sumexp_x's split of the row */
FL_INLINE FN(focal_coef) FN(focal_scalars)(double zy, double rest, double kmax, double alpha,
                                           double gamma, double gs)
{
    FN(focal_coef) f;
    const double s = kmax + rest, ey = exp(zy), p = ey / s;
    /* the other classes' sum: exact from the split when y is at the max,
     * otherwise s - ey >= 1 and there is nothing to cancel */
    const double sex = zy == 0 ? (kmax - 1) + rest : s - ey, u = sex / s;
    /* -log p: log1p keeps the digits when the target is at the max;
     * otherwise p <= 1/2 and log(s) - zy is exact enough and cannot
     * overflow (ey may underflow to 0 when the target is far below) */
    const double L = zy == 0 ? RW_LOG1P(sex) : log(s) - zy;
    const double r = u > 0 ? L / u : 1.0;
    const double U = gamma == 0 ? 1.0 : pow(u, gamma);
    const double K = U * (1 + gamma * p * r);
    f.loss = alpha != 0 ? alpha * U * L : 0.0;
    f.is = 1 / s;
    f.sex = sex;
    f.om = ((kmax - 1) + rest) / s;
    f.k = gs * alpha * K / s;
    f.ky = -gs * alpha * K * u;
    f.h0 = gs * alpha * U;
    f.c2 = gamma * (gamma - 1) * p * p * L;
    f.c1 = 2 * gamma * p;
    f.c3 = gamma * p * r;
    f.hy = f.h0 * (f.c2 + 2 * gamma * p * u + u * p - gamma * p * L * (1 - 2 * p));
    return f;
}

/* h_c for c != y, from the parked e_c (double); rho = e / sex is a
 * division, as 1 / sex may overflow when sex is subnormal */
#define FOCAL_RHO(e, F_sex) ((F_sex) > 0 ? (e) / (F_sex) : 0.0)
#define FOCAL_HC(F_h0, F_c2, F_c1, F_c3, F_is, F_sex, F_om, e)                 \
    ((F_h0) * ((F_c2) * FOCAL_RHO(e, F_sex) * FOCAL_RHO(e, F_sex) +            \
               (F_c1) * ((e) * (F_is)) * FOCAL_RHO(e, F_sex) +                 \
               (F_c3) * ((e) * (F_is)) * (1 - 2 * ((e) * (F_is))) +            \
               ((e) * (F_is)) * ((e) == 1 ? (F_om) : 1 - (e) * (F_is))))

static double FN(focal_row)(const fl_row_args *a, const T *restrict z, T *restrict g,
                            T *restrict h, fl_idx y)
{
    const fl_idx C = a->C;
    const double gamma = a->prm.pa;
    const double alpha = a->w ? (double)((const T *)a->w)[y] : a->prm.pb;
    const T m = FN(r_max)(z, C);
    double kmax;
    const double rest = FN(r_sumexp_x)(z, g, C, m, &kmax);
    const FN(focal_coef) f = FN(focal_scalars)((double)z[y] - (double)m, rest, kmax, alpha, gamma,
                                               a->gscale);
    if (!g) return f.loss;
    if (h) {
        RW_PRAGMA(omp simd)
        for (fl_idx c = 0; c < C; c++) {
            const double e = (double)g[c];
            h[c] = (T)FOCAL_HC(f.h0, f.c2, f.c1, f.c3, f.is, f.sex, f.om, e);
            g[c] = (T)(f.k * e);
        }
        h[y] = (T)f.hy;
    } else {
        const T k = (T)f.k;
        RW_PRAGMA(omp simd)
        for (fl_idx c = 0; c < C; c++) g[c] = k * g[c];
    }
    g[y] = (T)f.ky;
    return f.loss;
}

static double FN(focal_tile)(const fl_row_args *a, fl_idx r0, fl_idx J, fl_idx off, fl_idx *bad)
{
    const fl_idx C = a->C, S = a->S;
    const T *z = (const T *)a->x + off;
    T *g = a->g ? (T *)a->g + off : NULL;
    T *h = a->h ? (T *)a->h + off : NULL;
    T *l = a->l ? (T *)a->l + r0 : NULL;
    const T *w = (const T *)a->w;
    const double gamma = a->prm.pa;
    fl_idx yv[FL_ROW_TILE];
    T act[FL_ROW_TILE], mt[FL_ROW_TILE];
    double rs[FL_ROW_TILE], kt[FL_ROW_TILE];
    int any = 0;
    for (fl_idx jj = 0; jj < J; jj++) {
        const int64_t y = FN(label)(a->t, a->tcode, r0 + jj);
        const int ok = FN(label_ok)(y, a->ignore, C);
        if (ok < 0 && *bad < 0) *bad = r0 + jj;
        act[jj] = ok > 0;
        yv[jj] = ok > 0 ? (fl_idx)y : 0;
        any |= ok > 0;
    }
    if (!any) return FN(t_none)(g, h, l, C, S, J);
    FN(t_max)(z, C, S, J, mt);
    FN(t_sumexp_x)(z, g, C, S, J, mt, rs, kt);
    FN(focal_coef) f[FL_ROW_TILE];
    double total = 0;
    for (fl_idx jj = 0; jj < J; jj++) {
        const double zy = (double)z[yv[jj] * S + jj] - (double)mt[jj];
        const double alpha = act[jj] == 0 ? 0.0 : (w ? (double)w[yv[jj]] : a->prm.pb);
        f[jj] = FN(focal_scalars)(zy, rs[jj], kt[jj], alpha, gamma, a->gscale);
        const double lv = act[jj] != 0 ? f[jj].loss : 0.0;
        if (l) l[jj] = (T)lv;
        total += lv;
    }
    if (!g) return total;
    if (h) {
        double h0[FL_ROW_TILE], c2[FL_ROW_TILE], c1[FL_ROW_TILE], c3[FL_ROW_TILE];
        double k[FL_ROW_TILE], is[FL_ROW_TILE], sx[FL_ROW_TILE], om[FL_ROW_TILE];
        for (fl_idx jj = 0; jj < J; jj++) {
            h0[jj] = f[jj].h0; c2[jj] = f[jj].c2; c1[jj] = f[jj].c1; c3[jj] = f[jj].c3;
            k[jj] = f[jj].k; is[jj] = f[jj].is; sx[jj] = f[jj].sex; om[jj] = f[jj].om;
        }
        for (fl_idx c = 0; c < C; c++) {
            T *restrict gc = g + c * S, *restrict hc = h + c * S;
            RW_PRAGMA(omp simd)
            for (fl_idx jj = 0; jj < J; jj++) {
                const double e = (double)gc[jj];
                const double hv = FOCAL_HC(h0[jj], c2[jj], c1[jj], c3[jj], is[jj], sx[jj], om[jj], e);
                hc[jj] = act[jj] != 0 ? (T)hv : (T)0;
                gc[jj] = act[jj] != 0 ? (T)(k[jj] * e) : (T)0;
            }
        }
    } else {
        T k[FL_ROW_TILE];
        for (fl_idx jj = 0; jj < J; jj++) k[jj] = (T)f[jj].k;
        for (fl_idx c = 0; c < C; c++) {
            T *restrict gc = g + c * S;
            RW_PRAGMA(omp simd)
            for (fl_idx jj = 0; jj < J; jj++) gc[jj] = act[jj] != 0 ? k[jj] * gc[jj] : (T)0;
        }
    }
    for (fl_idx jj = 0; jj < J; jj++) {
        if (act[jj] == 0) continue;
        const fl_idx k = yv[jj] * S + jj;
        g[k] = (T)f[jj].ky;
        if (h) h[k] = (T)f[jj].hy;
    }
    return total;
}

#undef FOCAL_HC
#undef FOCAL_RHO

/* ================= NLL (input = log-probabilities) ======================= */

static double FN(nll_row)(const fl_row_args *a, const T *restrict z, T *restrict g,
                          T *restrict h, fl_idx y)
{
    const double wy = a->w ? (double)((const T *)a->w)[y] : 1.0;
    if (g) {
        FN(zero)(g, a->C);
        g[y] = (T)(-a->gscale * wy);
    }
    FN(zero)(h, a->C);
    return wy != 0 ? -wy * (double)z[y] : 0.0;
}

static double FN(nll_tile)(const fl_row_args *a, fl_idx r0, fl_idx J, fl_idx off, fl_idx *bad)
{
    const fl_idx C = a->C, S = a->S;
    const T *z = (const T *)a->x + off;
    T *g = a->g ? (T *)a->g + off : NULL;
    T *h = a->h ? (T *)a->h + off : NULL;
    T *l = a->l ? (T *)a->l + r0 : NULL;
    const T *w = (const T *)a->w;
    FN(t_zero)(g, C, S, J);
    FN(t_zero)(h, C, S, J);
    double total = 0;
    for (fl_idx jj = 0; jj < J; jj++) {
        const int64_t y = FN(label)(a->t, a->tcode, r0 + jj);
        const int ok = FN(label_ok)(y, a->ignore, C);
        double lv = 0;
        if (ok < 0 && *bad < 0) *bad = r0 + jj;
        if (ok > 0) {
            const double wy = w ? (double)w[y] : 1.0;
            lv = wy != 0 ? -wy * (double)z[y * S + jj] : 0.0;
            if (g) g[y * S + jj] = (T)(-a->gscale * wy);
        }
        if (l) l[jj] = (T)lv;
        total += lv;
    }
    return total;
}

/* ================= multi-class margin (PyTorch MultiMarginLoss) ==========
 * l = w_y / C sum_{c != y} max(0, margin - z_y + z_c)^p, p in {1, 2}.
 * The class loop is split at y, so no compare against the label. */

FL_INLINE void FN(mm_seg)(const T *restrict z, T *restrict g, T *restrict h, fl_idx n, T zy,
                          T margin, T gk, double *val, double *gsum, fl_idx *nact,
                          const int P, const int WG, const int WH)
{
    for (fl_idx c0 = 0; c0 < n; c0 += FL_ROW_CHUNK) {
        const fl_idx c1 = RW_MIN(n, c0 + FL_ROW_CHUNK);
        T sv = 0, sg = 0;
        TI na = 0;
        RW_PRAGMA(omp simd reduction(+:sv, sg, na))
        for (fl_idx c = c0; c < c1; c++) {
            const T m = margin - zy + z[c];
            /* NaN falls through to the arithmetic branch, so it propagates */
            const T mp = m > 0 ? m : (m <= 0 ? (T)0 : m);
            const T gv = P == 1 ? (m > 0 ? gk : (m <= 0 ? (T)0 : m)) : 2 * gk * mp;
            sv += P == 1 ? mp : mp * mp;
            na += m > 0;
            if (WG) { g[c] = gv; sg += gv; }
            if (WH) h[c] = (P == 2 && m > 0) ? 2 * gk : (T)0;
        }
        *val += (double)sv;
        *gsum += (double)sg;
        *nact += (fl_idx)na;
    }
}

static double FN(mm_row)(const fl_row_args *a, const T *restrict z, T *restrict g,
                         T *restrict h, fl_idx y)
{
    const fl_idx C = a->C;
    const int P = a->prm.i0;
    const double wy = a->w ? (double)((const T *)a->w)[y] : 1.0, k = wy / (double)C;
    const T margin = (T)a->prm.pa, zy = z[y], gk = (T)(a->gscale * k);
    double val = 0, gsum = 0;
    fl_idx na = 0;
#define MM_CALL(PP, WG, WH)                                                          \
    do {                                                                             \
        FN(mm_seg)(z, g, h, y, zy, margin, gk, &val, &gsum, &na, PP, WG, WH);        \
        FN(mm_seg)(z + y + 1, WG ? g + y + 1 : NULL, WH ? h + y + 1 : NULL,          \
                   C - y - 1, zy, margin, gk, &val, &gsum, &na, PP, WG, WH);         \
    } while (0)
    if (P == 1) {
        if (h) MM_CALL(1, 1, 1); else if (g) MM_CALL(1, 1, 0); else MM_CALL(1, 0, 0);
    } else {
        if (h) MM_CALL(2, 1, 1); else if (g) MM_CALL(2, 1, 0); else MM_CALL(2, 0, 0);
    }
#undef MM_CALL
    if (g) g[y] = (T)(-gsum);
    if (h) h[y] = P == 2 ? (T)(2 * a->gscale * k * (double)na) : (T)0;
    return wy != 0 ? k * val : 0.0;
}

/* ================= multilabel soft margin (classes on the last axis) =====
 * l = 1/C sum_c w_c [y_c softplus(-z_c) + (1 - y_c) softplus(z_c)];
 * g_c = w_c (sigmoid(z_c) - y_c) / C, h_c = w_c s (1 - s) / C.  A term
 * whose coefficient is 0 is skipped (z = +-inf with a matching 0/1 target
 * gives 0, not 0 * inf). */

FL_INLINE double FN(mlsm_pass)(const T *restrict z, const T *restrict t, const T *restrict w,
                               T *restrict g, T *restrict h, T *restrict gt, fl_idx n, T k,
                               const int WW, const int WG, const int WH, const int WT)
{
    double total = 0;
    for (fl_idx c0 = 0; c0 < n; c0 += FL_ROW_CHUNK) {
        const fl_idx c1 = RW_MIN(n, c0 + FL_ROW_CHUNK);
        T sv = 0;
        RW_PRAGMA(omp simd reduction(+:sv))
        for (fl_idx c = c0; c < c1; c++) {
            const T x = z[c], y = t[c];
            const T ax = x < 0 ? -x : x;
            const T ex = EXPN(-ax), r1 = 1 / (1 + ex);
            const T L = FN(log1p_t)(ex);
            const T s = x >= 0 ? r1 : ex * r1, sn = x >= 0 ? ex * r1 : r1;
            const T spn = (x < 0 ? -x : (T)0) + L, spp = (x > 0 ? x : (T)0) + L;
            const T my = 1 - y;
            T v = (y != 0 ? y * spn : y) + (my != 0 ? my * spp : my);
            const T wc = WW ? w[c] : (T)1;
            if (WW) v = wc != 0 ? wc * v : (T)0;
            sv += v;
            if (WG) g[c] = k * wc * (my * s - y * sn);
            if (WH) h[c] = k * wc * (ex * r1 * r1);
            /* d/dy = softplus(-z) - softplus(z) = -z */
            if (WT) gt[c] = k * wc * -x;
        }
        total += (double)sv;
    }
    return total;
}

static double FN(mlsm_row)(const fl_row_args *a, const T *restrict z, const T *restrict t,
                           const T *restrict w, T *restrict g, T *restrict h, T *restrict gt)
{
    const fl_idx C = a->C;
    const T k = (T)(a->gscale / (double)C);
    double v;
    if (w) {
        if (h) v = FN(mlsm_pass)(z, t, w, g, h, NULL, C, k, 1, 1, 1, 0);
        else if (gt) v = FN(mlsm_pass)(z, t, w, g, NULL, gt, C, k, 1, 1, 0, 1);
        else if (g) v = FN(mlsm_pass)(z, t, w, g, NULL, NULL, C, k, 1, 1, 0, 0);
        else v = FN(mlsm_pass)(z, t, w, NULL, NULL, NULL, C, k, 1, 0, 0, 0);
    } else {
        if (h) v = FN(mlsm_pass)(z, t, NULL, g, h, NULL, C, k, 0, 1, 1, 0);
        else if (gt) v = FN(mlsm_pass)(z, t, NULL, g, NULL, gt, C, k, 0, 1, 0, 1);
        else if (g) v = FN(mlsm_pass)(z, t, NULL, g, NULL, NULL, C, k, 0, 1, 0, 0);
        else v = FN(mlsm_pass)(z, t, NULL, NULL, NULL, NULL, C, k, 0, 0, 0, 0);
    }
    return v / (double)C;
}

/* ================= the block functions ================================== */

/* Ask for the next row while this one is computed: the max pass would
 * otherwise wait on memory at the start of every row.  Only rows of 512 B
 * to 16 KiB: shorter ones are a few lines the hardware prefetcher has
 * already asked for, longer ones stream well on it. */
FL_INLINE void FN(prefetch_row)(const T *p, fl_idx C)
{
#if defined(__GNUC__)
    const fl_idx bytes = C * (fl_idx)sizeof(T);
    if (bytes >= 512 && bytes <= 16384)
        for (fl_idx o = 0; o < bytes; o += 64) __builtin_prefetch((const char *)p + o, 0, 3);
#else
    (void)p; (void)C;
#endif
}

/* Rows with integer labels: check the label, zero ignored rows, call ROW. */
#define RW_LABEL_ROWS(ROW)                                                     \
    const fl_idx C = a->C;                                                     \
    T *l = (T *)a->l;                                                          \
    double total = 0;                                                          \
    for (fl_idx r = start; r < start + n; r++) {                               \
        const T *z = (const T *)a->x + r * C;                                  \
        T *g = a->g ? (T *)a->g + r * C : NULL;                                \
        if (r + 1 < start + n) FN(prefetch_row)(z + C, C);                     \
        T *h = a->h ? (T *)a->h + r * C : NULL;                                \
        const int64_t y_ = FN(label)(a->t, a->tcode, r);                       \
        const int ok = FN(label_ok)(y_, a->ignore, C);                         \
        double lv = 0;                                                         \
        if (ok > 0) {                                                          \
            const fl_idx y = (fl_idx)y_;                                       \
            lv = ROW;                                                          \
        } else {                                                               \
            if (ok < 0 && *bad < 0) *bad = r;                                  \
            FN(zero)(g, C);                                                    \
            FN(zero)(h, C);                                                    \
        }                                                                      \
        if (l) l[r] = (T)lv;                                                   \
        total += lv;                                                           \
    }                                                                          \
    return total;

/* Spatial items: split [start, start + n) at sample boundaries into tiles of
 * at most FL_ROW_TILE positions and call TILE on each. */
#define RW_TILES(TILE)                                                         \
    const fl_idx S = a->S, C = a->C, end = start + n;                          \
    double total = 0;                                                          \
    for (fl_idx r = start; r < end;) {                                         \
        const fl_idx ns = r / S, j = r % S;                                    \
        fl_idx J = RW_MIN(S - j, end - r);                                     \
        J = RW_MIN(J, (fl_idx)FL_ROW_TILE);                                    \
        total += TILE(a, r, J, ns * C * S + j, bad);                           \
        r += J;                                                                \
    }                                                                          \
    return total;

static double FN(rows_ce)(const fl_row_args *a, fl_idx start, fl_idx n, fl_idx *bad)
{
    const T *vbase = (const T *)a->v;
    RW_LABEL_ROWS(FN(ce_row)(a, z, g, h, vbase ? vbase + r * C : NULL, y))
}

/* log1p(t), t >= 0, in double from log alone (vectorizes with libmvec) */
FL_INLINE double FN(log1p_d)(double t)
{
    const double u = 1 + t, d = u - 1;
    const double r = log(u) * (t / d);
    return d == 0 ? t : r;
}

/* the plain write pass, in place over the parked e: g = k1 e, h = kh p (1 -
 * p), p = e is (om at e = 1) */
FL_INLINE void FN(r_plain_write)(T *restrict g, T *restrict h, fl_idx n, T k1, T kh, T is, T om)
{
    if (h) {
        RW_PRAGMA(omp simd)
        for (fl_idx c = 0; c < n; c++) {
            const T e = g[c], p = e * is;
            const T omp = e == 1 ? om : 1 - p;
            h[c] = kh * p * omp;
            g[c] = k1 * e;
        }
    } else {
        RW_PRAGMA(omp simd)
        for (fl_idx c = 0; c < n; c++) g[c] = k1 * g[c];
    }
}

#define FL_ROW_GROUP 8
/* Rows of at most this many classes take rows_ce_plain's flat path: the
 * group's shifted logits z - m are laid out contiguously (in the gradient
 * buffer, or a scratch of FL_ROW_GROUP * RW_SMALL_C values without one)
 * and exponentiated in one loop over the whole group, whose constants are
 * set up once instead of once per row; the split sums then read e. */
#define RW_SMALL_C 64

/* r_sumexp_x's split of a row of C <= RW_SMALL_C exponentials already in
 * e: the sum of those below 1 in RW_VL float lanes (tree as RW_SUM), and
 * the count of those equal to 1 in integer lanes (exact in any order);
 * the tail is the last RW_VL classes with the lanes already summed masked
 * off, or for C < RW_VL a clamped index.  No chunk loop: at C = 32 that
 * and the second float tree cost a third of the row. */
FL_INLINE double FN(r_split_small)(const T *restrict e, fl_idx C, double *k)
{
    T l1[RW_VL];
    TI l2[RW_VL];
    for (int q = 0; q < RW_VL; q++) { l1[q] = 0; l2[q] = 0; }
    fl_idx cb = 0;
    for (; cb + RW_VL <= C; cb += RW_VL) {
        RW_PRAGMA(omp simd)
        for (int q = 0; q < RW_VL; q++) {
            const T ec = e[cb + q];
            const int mx = ec == 1;
            const T t1 = mx ? (T)0 : ec;
            l1[q] += t1;
            l2[q] += mx;
        }
    }
    if (cb < C) {
        const fl_idx b = C >= RW_VL ? C - RW_VL : 0;
        const int off = (int)(cb - b);
        int vl = RW_VL;
        RW_OPAQUE(vl);
        RW_PRAGMA(omp simd)
        for (int q = 0; q < vl; q++) {
            const int in = C >= RW_VL ? q >= off : (fl_idx)q < C;
            const fl_idx c = in ? b + q : C - 1;
            const T ec = e[c];
            const int mx = ec == 1;
            const T t1 = (in && !mx) ? ec : (T)0;
            l1[q] += t1;
            l2[q] += in & mx;
        }
    }
    TI kc = 0;
    for (int q = 0; q < RW_VL; q++) kc += l2[q];
    *k = (double)kc;
    return (double)RW_TREE(l1);
}

/* rows_ce_plain's per-row scalars, vectorized across a group of rows */
static void FN(plain_scalars)(const double *restrict rest, const double *restrict kk,
                                 const double *restrict zy, const double *restrict A,
                                 const double *restrict ey, double gs, double *restrict loss,
                                 double *restrict is, double *restrict om, double *restrict gy,
                                 double *restrict hy)
{
    RW_PRAGMA(omp simd)
    for (int j = 0; j < FL_ROW_GROUP; j++) {
        const double t = (kk[j] - 1) + rest[j], iv = 1 / (kk[j] + rest[j]);
        const double o = t * iv, py = ey[j] * iv;
        const double omp = zy[j] == 0 ? o : 1 - py; /* 1 - p_y, exact at the max */
        const double az = A[j] * zy[j];
        loss[j] = A[j] * FN(log1p_d)(t) - (A[j] != 0 ? az : 0.0);
        is[j] = iv;
        om[j] = o;
        gy[j] = -gs * A[j] * omp;
        hy[j] = gs * A[j] * py * omp;
    }
}

/* Cross-entropy with integer labels and no label smoothing, Poly-1 or H v,
 * on contiguous rows -- the common case -- in groups of FL_ROW_GROUP rows:
 * each row's vector passes (max; exp, parked, and the split sums) run first,
 * then the scalars of the whole group (log1p, 1/s, the coefficients and the
 * target's gradient) are computed vectorized across its rows, then each
 * row's write pass.  With C = 32 the per-row scalar work otherwise costs more
 * than the row's exponentials.  The formulas are ce_row's with eps = pe = 0:
 * loss = w_y (log1p(k - 1 + rest) - (z_y - m)), g = w_y (p - onehot). */
static double FN(rows_ce_plain)(const fl_row_args *a, fl_idx start, fl_idx n, fl_idx *bad)
{
    const fl_idx C = a->C, end = start + n;
    const T *w = (const T *)a->w;
    T *l = (T *)a->l;
    const double gs = a->gscale;
    const int flat = C <= RW_SMALL_C;
    T sbuf[FL_ROW_GROUP * RW_SMALL_C];
    double total = 0;
    for (fl_idx r0 = start; r0 < end; r0 += FL_ROW_GROUP) {
        const int G = (int)RW_MIN((fl_idx)FL_ROW_GROUP, end - r0);
        double rest[FL_ROW_GROUP], kk[FL_ROW_GROUP], zy[FL_ROW_GROUP], A[FL_ROW_GROUP];
        double ey[FL_ROW_GROUP];
        fl_idx yv[FL_ROW_GROUP];
        int act[FL_ROW_GROUP];
        for (int j = 0; j < FL_ROW_GROUP; j++) {
            rest[j] = 0; kk[j] = 1; zy[j] = 0; A[j] = 0; ey[j] = 1; yv[j] = 0; act[j] = 0;
        }
        const T *x0 = (const T *)a->x + r0 * C;
        T *g0 = a->g ? (T *)a->g + r0 * C : NULL;
        T *h0 = a->h ? (T *)a->h + r0 * C : NULL;
        T *eb = g0 ? g0 : sbuf; /* the flat path's exponentials */
        for (int j = 0; j < G; j++) {
            const fl_idx r = r0 + j;
            const T *z = x0 + j * C;
            T *g = g0 ? g0 + j * C : NULL;
            if (r + 1 < end) FN(prefetch_row)(z + C, C);
            const int64_t y = FN(label)(a->t, a->tcode, r);
            const int ok = FN(label_ok)(y, a->ignore, C);
            if (ok <= 0) {
                if (ok < 0 && *bad < 0) *bad = r;
                if (flat) { /* exp(-inf) = 0: the row's gradient is zeroed by the flat exp */
                    T *d = eb + j * C;
                    for (fl_idx c = 0; c < C; c++) d[c] = -(T)INFINITY;
                } else {
                    FN(zero)(g, C);
                }
                FN(zero)(h0 ? h0 + j * C : NULL, C);
                continue;
            }
            act[j] = 1;
            yv[j] = (fl_idx)y;
            A[j] = w ? (double)w[y] : 1.0;
            const T m = FN(r_max)(z, C);
            zy[j] = (double)z[y] - (double)m;
            if (flat) {
                T *d = eb + j * C;
                RW_PRAGMA(omp simd)
                for (fl_idx c = 0; c < C; c++) d[c] = z[c] - m;
                continue;
            }
            rest[j] = FN(r_sumexp_x)(z, g, C, m, &kk[j]);
            if (g) ey[j] = (double)g[y];
        }
        if (flat) {
            /* the same exponentials and sums as r_sumexp_x (same bits) */
            const fl_idx GC = (fl_idx)G * C;
            RW_PRAGMA(omp simd)
            for (fl_idx i = 0; i < GC; i++) eb[i] = EXPN(eb[i]);
            for (int j = 0; j < G; j++) {
                if (!act[j]) continue;
                rest[j] = FN(r_split_small)(eb + j * C, C, &kk[j]);
                if (g0) ey[j] = (double)eb[j * C + yv[j]];
            }
        }
        double loss[FL_ROW_GROUP], is[FL_ROW_GROUP], om[FL_ROW_GROUP], gy[FL_ROW_GROUP], hy[FL_ROW_GROUP];
        FN(plain_scalars)(rest, kk, zy, A, ey, gs, loss, is, om, gy, hy);
        for (int j = 0; j < G; j++) {
            const double lv = act[j] ? loss[j] : 0.0;
            if (l) l[r0 + j] = (T)lv;
            total += lv;
        }
        if (!g0) continue;
        for (int j = 0; j < G; j++) {
            if (!act[j]) continue;
            T *g = g0 + j * C;
            T *h = h0 ? h0 + j * C : NULL;
            FN(r_plain_write)(g, h, C, (T)(gs * A[j] * is[j]), (T)(gs * A[j]), (T)is[j], (T)om[j]);
            g[yv[j]] = (T)gy[j];
            if (h) h[yv[j]] = (T)hy[j];
        }
    }
    return total;
}

static double FN(block_ce)(const fl_row_args *a, fl_idx start, fl_idx n, fl_idx *bad)
{
    if (a->S == 1) {
        if (a->prm.pa == 0 && a->prm.pb == 0 && a->mode != FL_ROW_HVP)
            return FN(rows_ce_plain)(a, start, n, bad);
        return FN(rows_ce)(a, start, n, bad);
    }
    RW_TILES(FN(ce_tile))
}

static double FN(block_ce_soft)(const fl_row_args *a, fl_idx start, fl_idx n, fl_idx *bad)
{
    if (a->S == 1) {
        const fl_idx C = a->C;
        T *l = (T *)a->l;
        double total = 0;
        for (fl_idx r = start; r < start + n; r++) {
            const fl_idx o = r * C;
            const double lv = FN(ce_soft_row)(
                a, (const T *)a->x + o, (const T *)a->t + o, a->g ? (T *)a->g + o : NULL,
                a->h ? (T *)a->h + o : NULL, a->v ? (const T *)a->v + o : NULL,
                a->gt ? (T *)a->gt + o : NULL);
            if (l) l[r] = (T)lv;
            total += lv;
        }
        return total;
    }
    RW_TILES(FN(ce_soft_tile))
}

static double FN(rows_focal)(const fl_row_args *a, fl_idx start, fl_idx n, fl_idx *bad)
{
    RW_LABEL_ROWS(FN(focal_row)(a, z, g, h, y))
}

static double FN(block_focal)(const fl_row_args *a, fl_idx start, fl_idx n, fl_idx *bad)
{
    if (a->S == 1) return FN(rows_focal)(a, start, n, bad);
    RW_TILES(FN(focal_tile))
}

static double FN(rows_nll)(const fl_row_args *a, fl_idx start, fl_idx n, fl_idx *bad)
{
    RW_LABEL_ROWS(FN(nll_row)(a, z, g, h, y))
}

static double FN(block_nll)(const fl_row_args *a, fl_idx start, fl_idx n, fl_idx *bad)
{
    if (a->S == 1) return FN(rows_nll)(a, start, n, bad);
    RW_TILES(FN(nll_tile))
}

/* S = 1 only (the Python layer accepts (C,) and (N, C)) */
static double FN(block_multi_margin)(const fl_row_args *a, fl_idx start, fl_idx n, fl_idx *bad)
{
    RW_LABEL_ROWS(FN(mm_row)(a, z, g, h, y))
}

/* S = 1 only (classes on the last axis; the Python layer folds the rest).
 * The weight is per class (C elements), or per element (like x) when
 * prm.i1 = 1. */
static double FN(block_multilabel_soft_margin)(const fl_row_args *a, fl_idx start, fl_idx n,
                                               fl_idx *bad)
{
    (void)bad;
    const fl_idx C = a->C;
    T *l = (T *)a->l;
    double total = 0;
    for (fl_idx r = start; r < start + n; r++) {
        const fl_idx o = r * C;
        const T *w = a->w ? (const T *)a->w + (a->prm.i1 ? o : 0) : NULL;
        const double lv = FN(mlsm_row)(a, (const T *)a->x + o, (const T *)a->t + o, w,
                                       a->g ? (T *)a->g + o : NULL, a->h ? (T *)a->h + o : NULL,
                                       a->gt ? (T *)a->gt + o : NULL);
        if (l) l[r] = (T)lv;
        total += lv;
    }
    return total;
}

/* The labels pass: the block's sum of w[label] (count without w) over the
 * labels that are not ignored, and the first bad label. */
static double FN(block_labels)(const fl_row_args *a, fl_idx start, fl_idx n, fl_idx *bad)
{
    const T *w = (const T *)a->w;
    double ws = 0;
    for (fl_idx r = start; r < start + n; r++) {
        const int64_t y = FN(label)(a->t, a->tcode, r);
        const int ok = FN(label_ok)(y, a->ignore, a->C);
        if (ok > 0) ws += w ? (double)w[y] : 1.0;
        else if (ok < 0 && *bad < 0) *bad = r;
    }
    return ws;
}

#define FL_ROW_ENTRY(NAME) FN(block_##NAME),
static const fl_row_block_fn FN(row_table)[] = {FL_ROW_LIST(FL_ROW_ENTRY)};

#undef FL_ROW_ENTRY
#undef RW_LABEL_ROWS
#undef RW_TILES
#undef RW_SMW
#undef RW_SMW_WH
#undef RW_SMW_PO
#undef RW_SMW_WW
#undef TL_SMW
#undef TL_SMW_WH
#undef TL_SMW_PO
#undef TL_SMW_WW
#undef RW_LOG1P
#undef RW_SUM
#undef RW_SUM_CORE
#undef RW_OPAQUE
#undef RW_SUM2
#undef RW_TREE
#undef RW_VL
#undef TL_SUM
#undef RW_MIN
#undef RW_PRAGMA
#undef FL_ROW_GROUP
#undef EXPN
