/* fl_rows_passes.h -- what every row loss shares: the lane sums (RW_SUM,
 * TL_SUM), labels, the row passes (S = 1) and tile passes (S > 1) of the
 * softmax family, and the loops over labelled rows and over tiles.
 * Included by fl_rows_math.h in the stamping context of fl_stamp.h (T,
 * T_F32, TI, FN, EXP, LOG); no include guard, on purpose. */

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

/* is label y a class (1), ignored (0), or bad (-1)?  has_ignore says
 * whether there is an ignore_index at all: no in-band "none" value, so
 * every int64 is a legal ignore_index and every label outside [0, C) that
 * is not it is reported. */
FL_INLINE int FN(label_ok)(int64_t y, int64_t ignore, int has_ignore, fl_idx C)
{
    if (has_ignore && y == ignore) return 0;
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

#if !T_F32 && defined(__AVX2__) && defined(__FMA__)
/* r_max in double on x86-64-v3: four vectors of lanes, 16 classes an
 * iteration (the generic loop's 8 a step cost a tenth of the row at C =
 * 1000); max(z, l) is z > l ? z : l, so a NaN logit is not the max, as
 * there; the last n mod 4 classes as the last whole vector again (max is
 * idempotent), or one by one when n < 4. */
FL_INLINE double FN(r_max_d4)(const double *restrict z, fl_idx n)
{
    __m256d m0 = _mm256_set1_pd(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    fl_idx c = 0;
    for (; c + 16 <= n; c += 16) {
        m0 = _mm256_max_pd(_mm256_loadu_pd(z + c), m0);
        m1 = _mm256_max_pd(_mm256_loadu_pd(z + c + 4), m1);
        m2 = _mm256_max_pd(_mm256_loadu_pd(z + c + 8), m2);
        m3 = _mm256_max_pd(_mm256_loadu_pd(z + c + 12), m3);
    }
    for (; c + 4 <= n; c += 4) m0 = _mm256_max_pd(_mm256_loadu_pd(z + c), m0);
    if (c < n && n >= 4) m1 = _mm256_max_pd(_mm256_loadu_pd(z + n - 4), m1);
    double l[4];
    _mm256_storeu_pd(l, _mm256_max_pd(_mm256_max_pd(m0, m1), _mm256_max_pd(m2, m3)));
    double m = l[0];
    for (int k = 1; k < 4; k++) m = l[k] > m ? l[k] : m;
    if (n < 4)
        for (; c < n; c++) m = z[c] > m ? z[c] : m;
    return m;
}
#endif

FL_INLINE T FN(r_max)(const T *restrict z, fl_idx n)
{
#if !T_F32 && defined(__AVX2__) && defined(__FMA__)
    return FN(r_max_d4)(z, n);
#endif
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

#if !T_F32 && defined(__AVX2__) && defined(__FMA__)
#define RW_D4 1
#include "fl_vmath_v3.h"   /* exp4d_v3 */

/* r_sumexp_x with e parked, in double on x86-64-v3: one pass that
 * exponentiates, parks and sums (GCC's own vectorization of that fused
 * RW_SUM2 body ran 23 % slower than the two loops of the generic code;
 * these intrinsics run as fast as the two loops in cache).  The pass also
 * spreads the prefetches: zn, the next row (or NULL), one line an
 * iteration, and the output 512 B ahead for writing, instead of the whole
 * next row requested at once at the start of the row (prefetch_row),
 * whose burst of requests held the line-fill buffers while this row's
 * stores waited for theirs.  rows_ce_plain at N = 1e7, C = 1000, one
 * thread: 0.68-0.74 of the time before (bench/rows_ce_f64.c).  The sums
 * are RW_SUM2's, term for term: RW_VL = 8
 * lanes (two vectors: lanes 0-3, 4-7) per chunk of FL_ROW_CHUNK classes,
 * the chunk's tail as the last RW_VL classes with the lanes already summed
 * masked off (their e stored again, the same value), a chunk shorter than
 * RW_VL lane by lane, RW_TREE, and the chunks added in double in order:
 * the same bits as the value-only call's RW_SUM2. */
FL_INLINE double FN(sumexp_park_d4)(const double *restrict z, double *restrict e, fl_idx n,
                                    double m, double *k, const double *zn)
{
    const __m256d mv = _mm256_set1_pd(m), one = _mm256_set1_pd(1.0);
    double acc = 0, acck = 0;
    for (fl_idx c0 = 0; c0 < n; c0 += FL_ROW_CHUNK) {
        const fl_idx c1 = RW_MIN(n, c0 + FL_ROW_CHUNK);
        double l[RW_VL], kl[RW_VL];
        if (c1 - c0 >= RW_VL) {
            __m256d s0 = _mm256_setzero_pd(), s1 = s0;
            __m256i k0 = _mm256_setzero_si256(), k1 = k0;
            fl_idx cb = c0;
            for (; cb + RW_VL <= c1; cb += RW_VL) {
                if (zn) __builtin_prefetch(zn + cb, 0, 3);  /* one line of the next row */
                __builtin_prefetch(e + cb + 64, 1, 3);      /* the output, 512 B ahead (a hint:
                                                               past the end it reads nothing) */
                const __m256d e0 = FN(exp4d_v3)(_mm256_sub_pd(_mm256_loadu_pd(z + cb), mv));
                const __m256d e1 = FN(exp4d_v3)(_mm256_sub_pd(_mm256_loadu_pd(z + cb + 4), mv));
                _mm256_storeu_pd(e + cb, e0);
                _mm256_storeu_pd(e + cb + 4, e1);
                const __m256d x0 = _mm256_cmp_pd(e0, one, _CMP_EQ_OQ);
                const __m256d x1 = _mm256_cmp_pd(e1, one, _CMP_EQ_OQ);
                s0 = _mm256_add_pd(s0, _mm256_andnot_pd(x0, e0));
                s1 = _mm256_add_pd(s1, _mm256_andnot_pd(x1, e1));
                k0 = _mm256_sub_epi64(k0, _mm256_castpd_si256(x0));
                k1 = _mm256_sub_epi64(k1, _mm256_castpd_si256(x1));
            }
            if (cb < c1) {
                const fl_idx b = c1 - RW_VL;
                const int64_t off = (int64_t)(cb - b); /* lanes below off are summed already */
                const __m256i lane0 = _mm256_setr_epi64x(0, 1, 2, 3), lane1 = _mm256_setr_epi64x(4, 5, 6, 7);
                const __m256i ov = _mm256_set1_epi64x(off - 1);
                const __m256d in0 = _mm256_castsi256_pd(_mm256_cmpgt_epi64(lane0, ov));
                const __m256d in1 = _mm256_castsi256_pd(_mm256_cmpgt_epi64(lane1, ov));
                const __m256d e0 = FN(exp4d_v3)(_mm256_sub_pd(_mm256_loadu_pd(z + b), mv));
                const __m256d e1 = FN(exp4d_v3)(_mm256_sub_pd(_mm256_loadu_pd(z + b + 4), mv));
                _mm256_storeu_pd(e + b, e0);
                _mm256_storeu_pd(e + b + 4, e1);
                const __m256d x0 = _mm256_cmp_pd(e0, one, _CMP_EQ_OQ);
                const __m256d x1 = _mm256_cmp_pd(e1, one, _CMP_EQ_OQ);
                s0 = _mm256_add_pd(s0, _mm256_and_pd(in0, _mm256_andnot_pd(x0, e0)));
                s1 = _mm256_add_pd(s1, _mm256_and_pd(in1, _mm256_andnot_pd(x1, e1)));
                k0 = _mm256_sub_epi64(k0, _mm256_castpd_si256(_mm256_and_pd(in0, x0)));
                k1 = _mm256_sub_epi64(k1, _mm256_castpd_si256(_mm256_and_pd(in1, x1)));
            }
            int64_t ki[RW_VL];
            _mm256_storeu_pd(l, s0);
            _mm256_storeu_pd(l + 4, s1);
            _mm256_storeu_si256((__m256i *)ki, k0);
            _mm256_storeu_si256((__m256i *)(ki + 4), k1);
            for (int q = 0; q < RW_VL; q++) kl[q] = (double)ki[q];
        } else {
            for (int q = 0; q < RW_VL; q++) {
                l[q] = kl[q] = 0;
                if (c0 + q < c1) {
                    const double ec = EXPN(z[c0 + q] - m);
                    e[c0 + q] = ec;
                    l[q] = ec == 1 ? 0.0 : ec;
                    kl[q] = ec == 1 ? 1.0 : 0.0;
                }
            }
        }
        acc += RW_TREE(l);
        acck += RW_TREE(kl);
    }
    *k = acck;
    return acc;
}
#else
#define RW_D4 0
#endif

/* The softmax denominator of a row, split so that it keeps its digits:
 * returns the sum of e_c = exp(z_c - m) over the classes with e_c < 1 and
 * sets *k to the number of classes with e_c = 1 (those at the max, and any
 * within rounding of it: each contributes exactly 1 either way).
 * Then s = k + rest and log s = log1p(k - 1 + rest): a confident row's
 * small loss is not rounded away in float's 1 + rest. */
FL_INLINE double FN(r_sumexp_x)(const T *restrict z, T *restrict e, fl_idx n, T m, double *k)
{
    double s;
#if RW_D4
    /* every caller's rows are contiguous (S = 1): z + n is the next row,
     * prefetched a line at a time (its callers skip prefetch_row); past the
     * last row the hint reads nothing */
    if (e) return FN(sumexp_park_d4)(z, e, n, m, k, z + n);
#endif
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

/* Rows with integer labels: check the label, zero ignored rows, call ROW.
 * SELF_PF: ROW parks its exponentials with r_sumexp_x, which prefetches
 * the next row itself in double on x86-64-v3 (RW_D4) when there is a g. */
#define RW_LABEL_ROWS(ROW) RW_LABEL_ROWS_P(ROW, 0)
#define RW_LABEL_ROWS_P(ROW, SELF_PF)                                          \
    const fl_idx C = a->C;                                                     \
    T *l = (T *)a->l;                                                          \
    double total = 0;                                                          \
    for (fl_idx r = start; r < start + n; r++) {                               \
        const T *z = (const T *)a->x + r * C;                                  \
        T *g = a->g ? (T *)a->g + r * C : NULL;                                \
        if (r + 1 < start + n && !(RW_D4 && (SELF_PF) && g))                   \
            FN(prefetch_row)(z + C, C);                                        \
        T *h = a->h ? (T *)a->h + r * C : NULL;                                \
        const int64_t y_ = FN(label)(a->t, a->tcode, r);                       \
        const int ok = FN(label_ok)(y_, a->ignore, a->has_ignore, C);          \
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
