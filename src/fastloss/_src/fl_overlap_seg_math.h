/* fl_overlap_seg_math.h -- the two passes of the segmentation overlap
 * losses (Dice, Jaccard, Tversky, BCE+Dice, CE+Dice); see fl_overlap.h.
 *
 * Included by fl_overlap_body.h once per (dtype, instruction set), in the
 * stamping context of fl_stamp.h (T, FN, EXP, LOG, FABS).  No include
 * guard, on purpose.
 *
 * Pass 1 sums, per class, p, t, min(p, t), the cross-entropy term and the
 * count of elements that are not ignored, in T lanes over a chunk of
 * pixels (vectorized), each chunk's sums then added in double.  Pass 2
 * recomputes p and writes the gradient.  Selects are written so that GCC
 * turns them into blends; both sides are computed, so a lane may hold an
 * inf or NaN that is never selected (-fno-trapping-math).  NaN in x or t
 * reaches the sums: min(p, t) is written t < p ? t : p, which keeps a NaN
 * p.  An ignored element contributes nothing, NaN included (a select, not
 * a product with 0).
 */

/* p = sigmoid(x) (x itself for probabilities), p (1 - p) (1 for
 * probabilities) and e = exp(-|x|), without overflow.  A macro, not a
 * function with pointer outputs: variables whose address is taken inside
 * an omp simd loop become per-lane arrays, and the loop stays scalar. */
#define OV_SIGMOID(LOGITS, xv, p, pq, e)                                     \
    const T e = (LOGITS) ? FN(exp_np)(-FABS(xv)) : (T)0;                    \
    const T r_##p = 1 / (1 + e);                                            \
    const T p = (LOGITS) ? ((xv) >= 0 ? r_##p : e * r_##p) : (xv);          \
    const T pq = (LOGITS) ? e * r_##p * r_##p : (T)1

#ifndef FL_OV_ISA_OF
/* 1 in the x86-64-v3 stamp, 0 in the baseline one (as fl_pointwise_math.h's
 * FL_PW_STAMP_IS_V3): the AVX2 loops are compiled there only */
#define FL_OV_ISA_v3 1
#define FL_OV_ISA_OF_(isa) FL_OV_ISA_##isa
#define FL_OV_ISA_OF(isa) FL_OV_ISA_OF_(isa)
#endif
#if T_F32 && defined(__AVX2__) && defined(__FMA__) && FL_OV_ISA_OF(ISA)
#include "fl_vmath_v3.h"
/* the 8 lanes' sum in a fixed order (as fl_pointwise_v3.h's pw_hsum8) */
FL_INLINE float FN(ov_hsum8)(__m256 v)
{
    __m128 h4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h4 = _mm_add_ps(h4, _mm_movehl_ps(h4, h4));
    h4 = _mm_add_ss(h4, _mm_movehdup_ps(h4));
    return _mm_cvtss_f32(h4);
}
#endif

/* dI/dp for I = min(p, t): 1 below t, 0 above, 1/2 at a tie (PyTorch's
 * derivative of (p + t - |p - t|) / 2 with sign(0) = 0) */
FL_INLINE T FN(ov_dmin)(T p, T t) { return p < t ? (T)1 : (p > t ? (T)0 : (T)0.5); }

FL_INLINE int64_t FN(ov_label)(const void *t, int code, fl_idx r)
{
    switch (code) {
    case FL_OV_I64: return ((const int64_t *)t)[r];
    case FL_OV_I32: return (int64_t)((const int32_t *)t)[r];
    default: return (int64_t)((const uint8_t *)t)[r];
    }
}

/* ------------------------------------------------- elementwise (sigmoid) */

#define OV_CHUNK 256

FL_INLINE fl_idx FN(seg_sums_el_)(const fl_seg_args *a, fl_idx n, fl_idx s0, fl_idx ns, double *acc,
                                  const int LOGITS, const int CE, const int IGN)
{
    const fl_idx C = a->C, S = a->S;
    const T ig = (T)a->ignore;
    fl_idx bad = -1;
    for (fl_idx c = 0; c < C; c++) {
        const T *restrict xr = (const T *)a->x + (n * C + c) * S;
        const T *restrict tr = (const T *)a->t + (n * C + c) * S;
        double *ac = acc + c * FL_OV_K;
        for (fl_idx j0 = s0; j0 < s0 + ns; j0 += OV_CHUNK) {
            const fl_idx j1 = j0 + OV_CHUNK < s0 + ns ? j0 + OV_CHUNK : s0 + ns;
            T sp = 0, st = 0, si = 0, sce = 0, cnt = 0;
            int b = 0;
            OV_PRAGMA(omp simd reduction(+:sp, st, si, sce, cnt) reduction(|:b))
            for (fl_idx j = j0; j < j1; j++) {
                const T xv = xr[j], tv = tr[j];
                const int ok = IGN ? tv != ig : 1;
                b |= ok & ((tv < 0) | (tv > 1));
                OV_SIGMOID(LOGITS, xv, p, pq, e);
                const T mn = tv < p ? tv : p;
                sp += ok ? p : 0;
                st += ok ? tv : 0;
                si += ok ? mn : 0;
                cnt += ok ? (T)1 : (T)0;
                if (CE) {
                    /* BCE with logits: max(x, 0) - x t + log(1 + exp(-|x|)), the
                     * log1p by fl_vmath.h's inline polynomial (a vector logf
                     * call per 8 lanes and a division cost 1.5x Dice alone) */
                    const T v = (xv > 0 ? xv : 0) - xv * tv + FN(log1p01)(e);
                    sce += ok ? v : 0;
                }
                (void)pq;
            }
            ac[FL_OV_SP] += sp;
            ac[FL_OV_ST] += st;
            ac[FL_OV_I] += si;
            ac[FL_OV_CE] += sce;
            ac[FL_OV_CNT] += cnt;
            if (b) {
                for (fl_idx j = j0; j < j1; j++) {
                    const T tv = tr[j];
                    if (!(IGN && tv == ig) && (tv < 0 || tv > 1)) {
                        const fl_idx at = (n * C + c) * S + j;
                        if (bad < 0 || at < bad) bad = at;
                        break;
                    }
                }
            }
        }
    }
    return bad;
}

/* The x86-64-v3 float32 loop of pass 1 for sigmoid logits without ignored
 * elements (Dice, Jaccard, Tversky; with CE, BCE + Dice and the fused
 * CombinedLoss): the same sums by AVX2 intrinsics.  GCC's code of the loop
 * above spent 48 instructions a vector without CE and 78 with it (spills,
 * and blends of the log1p's inputs on the exp's underflow); here the
 * target check is one unsigned max of t's bits (any t that is not in
 * [0, 1] as a non-negative float has bits above 1.0f's: NaN and -0 too,
 * for which the chunk's exact check below finds no bad target), the count
 * is the chunk's length, and the BCE's log(1 + e) is not computed per
 * element: its sum comes from fl_vmath_v3.h's compensated products of
 * 1 + e (the 1 / (1 + e) of the sigmoid is shared).  p is the same bits as
 * the loop above (exp8_v3 is exp_np's operations; the sigmoid's select on
 * x >= 0 is a blend on x's sign bit, the same at -0, where r = e r = 1/2).
 * The sums' last bits differ (another order, and the log-sum). */
#undef OV_V3
#if T_F32 && defined(__AVX2__) && defined(__FMA__) && FL_OV_ISA_OF(ISA)
#define OV_V3 1
FL_INLINE fl_idx FN(seg_sums_el_v3)(const fl_seg_args *a, fl_idx n, fl_idx s0, fl_idx ns, double *acc, const int CE)
{
    const fl_idx C = a->C, S = a->S;
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps(), nz = _mm256_set1_ps(-0.0f);
    fl_idx bad = -1;
    for (fl_idx c = 0; c < C; c++) {
        const float *restrict xr = (const float *)a->x + (n * C + c) * S;
        const float *restrict tr = (const float *)a->t + (n * C + c) * S;
        double *ac = acc + c * FL_OV_K;
        __m256 lp, le;
        __m256i lk;
        FN(lsum_init8)(&lp, &le, &lk);
        for (fl_idx j0 = s0; j0 < s0 + ns; j0 += OV_CHUNK) {
            const fl_idx j1 = j0 + OV_CHUNK < s0 + ns ? j0 + OV_CHUNK : s0 + ns;
            __m256 vp = zero, vt = zero, vi = zero, vc = zero;
            __m256i tmax = _mm256_setzero_si256();
            fl_idx j = j0;
            for (; j + 8 <= j1; j += 8) {
                const __m256 xv = _mm256_loadu_ps(xr + j), tv = _mm256_loadu_ps(tr + j);
                tmax = _mm256_max_epu32(tmax, _mm256_castps_si256(tv));
                const __m256 e = FN(exp8_v3)(_mm256_or_ps(xv, nz)); /* exp(-|x|) */
                const __m256 h = _mm256_add_ps(one, e);
                const __m256 r = _mm256_div_ps(one, h);
                const __m256 p = _mm256_blendv_ps(r, _mm256_mul_ps(e, r), xv);
                vp = _mm256_add_ps(vp, p);
                vt = _mm256_add_ps(vt, tv);
                vi = _mm256_add_ps(vi, _mm256_min_ps(tv, p)); /* t < p ? t : p */
                if (CE) {
                    /* max(x, 0) - x t + log(1 + e) */
                    const __m256 lin = _mm256_fnmadd_ps(xv, tv, _mm256_max_ps(xv, zero));
                    vc = FN(lsum_add8)(e, h, r, _mm256_add_ps(vc, lin), &lp, &le);
                }
            }
            if (CE) FN(lsum_norm8)(&lp, &le, &lk);
            float sp = FN(ov_hsum8)(vp), st = FN(ov_hsum8)(vt), si = FN(ov_hsum8)(vi), sce = FN(ov_hsum8)(vc);
            int b = _mm256_movemask_ps(_mm256_castsi256_ps(
                        _mm256_cmpgt_epi32(tmax, _mm256_set1_epi32(0x3f800000)))) != 0; /* tmax <= 2^31 - 1 here */
            b |= !_mm256_testz_si256(tmax, _mm256_set1_epi32((int)0x80000000u));
            for (; j < j1; j++) { /* the tail: the scalar math */
                const float xv = xr[j], tv = tr[j];
                b |= (tv < 0) | (tv > 1);
                OV_SIGMOID(1, xv, p, pq, e);
                sp += p;
                st += tv;
                si += tv < p ? tv : p;
                if (CE) sce += (xv > 0 ? xv : 0) - xv * tv + FN(log1p01)(e);
                (void)pq;
            }
            ac[FL_OV_SP] += sp;
            ac[FL_OV_ST] += st;
            ac[FL_OV_I] += si;
            ac[FL_OV_CE] += sce;
            ac[FL_OV_CNT] += (double)(j1 - j0);
            if (b) {
                for (j = j0; j < j1; j++) {
                    const float tv = tr[j];
                    if (tv < 0 || tv > 1) {
                        const fl_idx at = (n * C + c) * S + j;
                        if (bad < 0 || at < bad) bad = at;
                        break;
                    }
                }
            }
        }
        if (CE) ac[FL_OV_CE] += FN(lsum_total8)(lp, le, lk);
    }
    return bad;
}
#endif

FL_INLINE void FN(seg_grad_el_)(const fl_seg_args *a, fl_idx n, fl_idx s0, fl_idx ns,
                                const int LOGITS, const int CE, const int IGN, const int ACC)
{
    const fl_idx C = a->C, S = a->S;
    const T ig = (T)a->ignore;
    const double *cf = a->coef + (a->per_image ? n : 0) * C * 3;
    for (fl_idx c = 0; c < C; c++) {
        const T *restrict xr = (const T *)a->x + (n * C + c) * S;
        const T *restrict tr = (const T *)a->t + (n * C + c) * S;
        T *restrict gr = (T *)a->g + (n * C + c) * S;
        const T ca = (T)cf[3 * c], cb = (T)cf[3 * c + 1], cc = (T)cf[3 * c + 2];
        OV_PRAGMA(omp simd)
        for (fl_idx j = s0; j < s0 + ns; j++) {
            const T xv = xr[j], tv = tr[j];
            const int ok = IGN ? tv != ig : 1;
            OV_SIGMOID(LOGITS, xv, p, pq, e);
            T d = (ca + cb * FN(ov_dmin)(p, tv)) * pq;
            if (CE) d += cc * (p - tv);
            const T v = ok ? d : 0;
            gr[j] = ACC ? gr[j] + v : v;
            (void)e;
        }
    }
}

/* ---------------------------------------------------- softmax (classes) */

/* Labels of a tile as T (-1 for an ignored pixel); returns the flat index
 * of the first bad label, or -1. */
FL_INLINE fl_idx FN(ov_tile_labels)(const fl_seg_args *a, fl_idx r0, fl_idx J, T *restrict yf)
{
    fl_idx bad = -1;
    const int64_t C = a->C;
    for (fl_idx jj = 0; jj < J; jj++) {
        const int64_t y = FN(ov_label)(a->t, a->tcode, r0 + jj);
        const int ign = a->has_ignore && y == a->ignore;
        if (!ign && (y < 0 || y >= C)) {
            if (bad < 0) bad = r0 + jj;
            yf[jj] = -1;
        } else {
            yf[jj] = ign ? (T)-1 : (T)y;
        }
    }
    return bad;
}

/* The exponentials e[c][jj] = exp(x_c - m) of a tile, parked in scratch, and
 * rz[jj] = 1 / sum_c e, lse[jj] = m + log(sum_c e). */
FL_INLINE void FN(ov_tile_softmax)(const T *restrict x, fl_idx C, fl_idx S, fl_idx J, T *restrict e,
                                   T *restrict rz, T *restrict lse)
{
    T m[FL_OV_TILE], z[FL_OV_TILE];
    for (fl_idx jj = 0; jj < J; jj++) m[jj] = x[jj];
    for (fl_idx c = 1; c < C; c++) {
        const T *restrict xc = x + c * S;
        OV_PRAGMA(omp simd)
        for (fl_idx jj = 0; jj < J; jj++) m[jj] = xc[jj] > m[jj] ? xc[jj] : m[jj];
    }
    for (fl_idx jj = 0; jj < J; jj++) z[jj] = 0;
    for (fl_idx c = 0; c < C; c++) {
        const T *restrict xc = x + c * S;
        T *restrict ec = e + c * FL_OV_TILE;
        OV_PRAGMA(omp simd)
        for (fl_idx jj = 0; jj < J; jj++) {
            const T v = FN(exp_np)(xc[jj] - m[jj]);
            ec[jj] = v;
            z[jj] += v;
        }
    }
    OV_PRAGMA(omp simd)
    for (fl_idx jj = 0; jj < J; jj++) rz[jj] = 1 / z[jj];
    if (lse)
        for (fl_idx jj = 0; jj < J; jj++) lse[jj] = m[jj] + LOG(z[jj]);
}

FL_INLINE fl_idx FN(seg_sums_sm_)(const fl_seg_args *a, fl_idx n, fl_idx s0, fl_idx ns, double *acc,
                                  T *restrict e, const int LOGITS, const int CE)
{
    const fl_idx C = a->C, S = a->S;
    fl_idx bad = -1;
    T yf[FL_OV_TILE], rz[FL_OV_TILE], lse[FL_OV_TILE];
    for (fl_idx j0 = s0; j0 < s0 + ns; j0 += FL_OV_TILE) {
        const fl_idx J = j0 + FL_OV_TILE < s0 + ns ? FL_OV_TILE : s0 + ns - j0;
        const fl_idx b = FN(ov_tile_labels)(a, n * S + j0, J, yf);
        if (b >= 0 && bad < 0) bad = b;
        const T *x = (const T *)a->x + n * C * S + j0;
        if (LOGITS) FN(ov_tile_softmax)(x, C, S, J, e, rz, CE ? lse : NULL);
        for (fl_idx c = 0; c < C; c++) {
            const T *restrict xc = x + c * S;
            const T *restrict ec = e + c * FL_OV_TILE;
            const T cf = (T)c;
            T sp = 0, st = 0, si = 0, sce = 0, cnt = 0;
            OV_PRAGMA(omp simd reduction(+:sp, st, si, sce, cnt))
            for (fl_idx jj = 0; jj < J; jj++) {
                const T p = LOGITS ? ec[jj] * rz[jj] : xc[jj];
                const int ok = yf[jj] >= 0, is = yf[jj] == cf;
                const T tv = is ? (T)1 : (T)0;
                const T mn = tv < p ? tv : p;
                sp += ok ? p : 0;
                st += tv;
                si += ok ? mn : 0;
                cnt += tv;
                if (CE) sce += is ? lse[jj] - xc[jj] : 0;
            }
            double *ac = acc + c * FL_OV_K;
            ac[FL_OV_SP] += sp;
            ac[FL_OV_ST] += st;
            ac[FL_OV_I] += si;
            ac[FL_OV_CE] += sce;
            ac[FL_OV_CNT] += cnt;
        }
    }
    return bad;
}

FL_INLINE void FN(seg_grad_sm_)(const fl_seg_args *a, fl_idx n, fl_idx s0, fl_idx ns, T *restrict e,
                                const int LOGITS, const int CE, const int ACC)
{
    const fl_idx C = a->C, S = a->S;
    const double *cf = a->coef + (a->per_image ? n : 0) * C * 3;
    const T cc = (T)cf[2];
    T yf[FL_OV_TILE], rz[FL_OV_TILE], pg[FL_OV_TILE];
    for (fl_idx j0 = s0; j0 < s0 + ns; j0 += FL_OV_TILE) {
        const fl_idx J = j0 + FL_OV_TILE < s0 + ns ? FL_OV_TILE : s0 + ns - j0;
        FN(ov_tile_labels)(a, n * S + j0, J, yf);
        const T *x = (const T *)a->x + n * C * S + j0;
        T *g = (T *)a->g + n * C * S + j0;
        if (!LOGITS) {
            /* probabilities: dL/dp directly */
            for (fl_idx c = 0; c < C; c++) {
                const T *restrict xc = x + c * S;
                T *restrict gc = g + c * S;
                const T ca = (T)cf[3 * c], cb = (T)cf[3 * c + 1], cv = (T)c;
                OV_PRAGMA(omp simd)
                for (fl_idx jj = 0; jj < J; jj++) {
                    const T tv = yf[jj] == cv ? (T)1 : (T)0;
                    const T d = ca + cb * FN(ov_dmin)(xc[jj], tv);
                    const T v = yf[jj] >= 0 ? d : 0;
                    gc[jj] = ACC ? gc[jj] + v : v;
                }
            }
            continue;
        }
        FN(ov_tile_softmax)(x, C, S, J, e, rz, NULL);
        for (fl_idx jj = 0; jj < J; jj++) pg[jj] = 0;
        /* G_c = a_c + b_c dI/dp_c; pg = sum_c p_c G_c */
        for (fl_idx c = 0; c < C; c++) {
            T *restrict ec = e + c * FL_OV_TILE;
            const T ca = (T)cf[3 * c], cb = (T)cf[3 * c + 1], cv = (T)c;
            OV_PRAGMA(omp simd)
            for (fl_idx jj = 0; jj < J; jj++) {
                const T p = ec[jj] * rz[jj];
                const T tv = yf[jj] == cv ? (T)1 : (T)0;
                ec[jj] = p;
                pg[jj] += p * (ca + cb * FN(ov_dmin)(p, tv));
            }
        }
        /* dL/dx_c = p_c (G_c - pg) + ce (p_c - t_c) */
        for (fl_idx c = 0; c < C; c++) {
            const T *restrict ec = e + c * FL_OV_TILE;
            T *restrict gc = g + c * S;
            const T ca = (T)cf[3 * c], cb = (T)cf[3 * c + 1], cv = (T)c;
            OV_PRAGMA(omp simd)
            for (fl_idx jj = 0; jj < J; jj++) {
                const T p = ec[jj];
                const T tv = yf[jj] == cv ? (T)1 : (T)0;
                T d = p * (ca + cb * FN(ov_dmin)(p, tv) - pg[jj]);
                if (CE) d += cc * (p - tv);
                const T v = yf[jj] >= 0 ? d : 0;
                gc[jj] = ACC ? gc[jj] + v : v;
            }
        }
    }
}

/* ------------------------------------------------------- the entries */

static fl_idx FN(seg_sums)(const fl_seg_args *a, fl_idx n, fl_idx s0, fl_idx ns, double *acc, void *scratch)
{
    if (a->softmax) {
        T *e = (T *)scratch;
        if (!a->from_logits) return FN(seg_sums_sm_)(a, n, s0, ns, acc, e, 0, 0);
        return a->with_ce ? FN(seg_sums_sm_)(a, n, s0, ns, acc, e, 1, 1)
                          : FN(seg_sums_sm_)(a, n, s0, ns, acc, e, 1, 0);
    }
    const int ign = a->has_ignore;
    if (!a->from_logits)
        return ign ? FN(seg_sums_el_)(a, n, s0, ns, acc, 0, 0, 1) : FN(seg_sums_el_)(a, n, s0, ns, acc, 0, 0, 0);
#if defined(OV_V3)
    if (!ign) return a->with_ce ? FN(seg_sums_el_v3)(a, n, s0, ns, acc, 1) : FN(seg_sums_el_v3)(a, n, s0, ns, acc, 0);
#endif
    if (a->with_ce)
        return ign ? FN(seg_sums_el_)(a, n, s0, ns, acc, 1, 1, 1) : FN(seg_sums_el_)(a, n, s0, ns, acc, 1, 1, 0);
    return ign ? FN(seg_sums_el_)(a, n, s0, ns, acc, 1, 0, 1) : FN(seg_sums_el_)(a, n, s0, ns, acc, 1, 0, 0);
}

/* ACC: a template argument (the writing loop reads no g) */
FL_INLINE void FN(seg_grad_acc_)(const fl_seg_args *a, fl_idx n, fl_idx s0, fl_idx ns, void *scratch,
                                 const int ACC)
{
    if (a->softmax) {
        T *e = (T *)scratch;
        if (!a->from_logits) FN(seg_grad_sm_)(a, n, s0, ns, e, 0, 0, ACC);
        else if (a->with_ce) FN(seg_grad_sm_)(a, n, s0, ns, e, 1, 1, ACC);
        else FN(seg_grad_sm_)(a, n, s0, ns, e, 1, 0, ACC);
        return;
    }
    const int ign = a->has_ignore;
    if (!a->from_logits) {
        if (ign) FN(seg_grad_el_)(a, n, s0, ns, 0, 0, 1, ACC); else FN(seg_grad_el_)(a, n, s0, ns, 0, 0, 0, ACC);
    } else if (a->with_ce) {
        if (ign) FN(seg_grad_el_)(a, n, s0, ns, 1, 1, 1, ACC); else FN(seg_grad_el_)(a, n, s0, ns, 1, 1, 0, ACC);
    } else {
        if (ign) FN(seg_grad_el_)(a, n, s0, ns, 1, 0, 1, ACC); else FN(seg_grad_el_)(a, n, s0, ns, 1, 0, 0, ACC);
    }
}

static void FN(seg_grad)(const fl_seg_args *a, fl_idx n, fl_idx s0, fl_idx ns, void *scratch)
{
    if (a->accumulate) FN(seg_grad_acc_)(a, n, s0, ns, scratch, 1);
    else FN(seg_grad_acc_)(a, n, s0, ns, scratch, 0);
}

#undef OV_SIGMOID
