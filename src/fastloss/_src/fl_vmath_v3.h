/* fl_vmath_v3.h -- AVX2 vector math of the x86-64-v3 float32 loops
 * (fl_pointwise_v3.h, fl_overlap_seg_math.h): exp_np of 8 lanes, and the
 * sum of log(1 + e) over many e in [0, 1] with no logarithm per element, for the x86-64-v3 float32 loops that need only
 * the SUM of the logistic losses' softplus tails (the GAN's softplus terms
 * and BCE with logits for reduction "mean"/"sum" in fl_pointwise_v3.h, the
 * BCE term of the fused BCE + Dice pass in fl_overlap_seg_math.h).
 *
 * Each lane keeps the product of h = fl(1 + e), which the loops compute
 * anyway for the sigmoid's 1 / (1 + e), as an unevaluated sum P + E
 * (TwoProduct by a fused multiply-subtract: E gathers the exact rounding
 * errors of the multiplications, carried by the later factors), and the
 * part of e that fl(1 + e) drops, lo = e - (h - 1) (exact, Fast2Sum), goes
 * in as lo / h ~ lo r into the caller's float sum:
 *     log(1 + e) = log(h + lo) = log h + lo / h + O(lo^2),  |lo| <= 2^-24 h.
 * At the end of each chunk (at most 32 factors a lane, so P < 2^32) P and E
 * are scaled by the power of 2 that brings P into [1, 2) and the exponent
 * is counted in K; at the end of the block, per lane in double,
 *     sum log h = log(P + E) + K ln 2.
 * 7 operations a vector (2 subtractions, the product, its error, the
 * error's carry, the fused add of lo r and the add of the caller's other
 * term) where log1p01 = e P(e) and its add take 13, and the sum is more
 * accurate: the products and lo are exact to 2^-46, against a rounding of
 * up to 2.3 ulp per element; for tiny e (h = 1) the sum is that of lo = e.
 * NaN in e makes P NaN, and the block's sum NaN.
 *
 * Included in the stamping context (FN, T_F32), once a stamp; defines its
 * functions in stamps compiled with AVX2 and FMA only (exp4d_v3 in the
 * float64 ones, the rest in the float32 ones).  No include guard, on
 * purpose. */
#if !T_F32 && defined(__AVX2__) && defined(__FMA__)
/* exp_np (fl_vmath.h, double) of 4 lanes, x <= 0 or NaN, operation for
 * operation as the scalar form with its FMAs written out: the same bits.
 * The float64 stamps' one copy, for the float64 logistic loops
 * (fl_pointwise_v3_f64.h) and the float64 softmax rows (fl_rows_passes.h). */
FL_INLINE __m256d FN(exp4d_v3)(__m256d x)
{
    const __m256d magic = _mm256_set1_pd(6755399441055744.0);
    const __m256d kf = _mm256_fmadd_pd(x, _mm256_set1_pd(1.4426950408889634074), magic);
    const __m256d k = _mm256_sub_pd(kf, magic);
    /* (ki - mi + 1022) << 52, mi the bits of magic, wrapping as the scalar's */
    const __m256i bits = _mm256_slli_epi64(
        _mm256_add_epi64(_mm256_castpd_si256(kf), _mm256_set1_epi64x((int64_t)(1022u - 0x4338000000000000u))), 52);
    const __m256d r = _mm256_fnmadd_pd(k, _mm256_set1_pd(1.42860682030941723212e-6),
                                       _mm256_fnmadd_pd(k, _mm256_set1_pd(6.93145751953125e-1), x));
    __m256d p = _mm256_set1_pd(2 * 2.510037611136142e-08);
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(2 * 2.7620076242527254e-07));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(2 * 2.7557268479724004e-06));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(2 * 2.4801521321606647e-05));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(2 * 0.00019841269863040922));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(2 * 0.0013888888917197209));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(2 * 0.008333333333330065));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(2 * 0.041666666666624164));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(2 * 0.16666666666666669));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(2 * 0.5000000000000001));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(2.0));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(2.0));
    const __m256d keep = _mm256_cmp_pd(x, _mm256_set1_pd(-708.0), _CMP_NLT_UQ); /* !(x < -708): NaN kept */
    return _mm256_and_pd(keep, _mm256_mul_pd(p, _mm256_castsi256_pd(bits)));
}
#endif

#if T_F32 && defined(__AVX2__) && defined(__FMA__)

#define VX_B(c) _mm256_set1_ps(c)

/* exp_np (fl_vmath.h) of 8 lanes, x <= 0: the same values, bit for bit,
 * from two operations fewer.  The magic constant carries the exponent
 * bias: 1.5 * 2^23 + 127 rounds x / ln2 to the same integer k as exp_np's
 * 1.5 * 2^23 (both have ulp 1; x / ln2 is never a tie: its product with
 * log2e's odd 24-bit significand is a half-integer only beyond |k| = 2^22),
 * and its bits shifted left 23 are (k + 127) << 23, the bits of 2^k, with
 * no add.  And (q + 1) 2^k is fma(q, 2^k, 2^k): a product by 2^k is exact
 * and commutes with rounding while the result is normal, which it is for
 * every x >= -87.3 (e >= 1.2e-38 > 2^-126; the lanes below are masked to
 * 0, NaN stays NaN). */
FL_INLINE __m256 FN(exp8_v3)(__m256 x)
{
    const __m256 magic = VX_B(12583039.0f); /* 1.5 * 2^23 + 127 */
    const __m256 kf = _mm256_fmadd_ps(x, VX_B(1.44269504088896341f), magic);
    const __m256 k = _mm256_sub_ps(kf, magic);
    const __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(kf), 23));
    const __m256 r = _mm256_fnmadd_ps(k, VX_B(-2.12194440e-4f), _mm256_fnmadd_ps(k, VX_B(0.693359375f), x));
    const __m256 r2 = _mm256_mul_ps(r, r);
    const __m256 p01 = _mm256_fmadd_ps(r, VX_B(1.666652113199234e-1f), VX_B(4.999999403953552e-1f));
    const __m256 p23 = _mm256_fmadd_ps(r, VX_B(8.368710987269878e-3f), VX_B(4.166838899254799e-2f));
    const __m256 p = _mm256_fmadd_ps(r2, _mm256_fmadd_ps(r2, VX_B(1.3814601115882397e-3f), p23), p01);
    const __m256 y = _mm256_fmadd_ps(_mm256_fmadd_ps(p, r2, r), scale, scale);
    return _mm256_andnot_ps(_mm256_cmp_ps(x, VX_B(-87.3f), _CMP_LT_OQ), y);
}

/* one vector of e: h = 1 + e and r = 1 / h as the caller computed them;
 * returns fma(lo, r, acc), the caller's float sum with lo / h added */
FL_INLINE __m256 FN(lsum_add8)(__m256 e, __m256 h, __m256 r, __m256 acc, __m256 *P, __m256 *E)
{
    const __m256 lo = _mm256_sub_ps(e, _mm256_sub_ps(h, _mm256_set1_ps(1.0f)));
    const __m256 pn = _mm256_mul_ps(*P, h);
    *E = _mm256_fmadd_ps(*E, h, _mm256_fmsub_ps(*P, h, pn));
    *P = pn;
    return _mm256_fmadd_ps(lo, r, acc);
}

/* the chunk's end: P into [1, 2) (P >= 1, or NaN), E by the same power of 2
 * (exact), the exponent into K */
FL_INLINE void FN(lsum_norm8)(__m256 *P, __m256 *E, __m256i *K)
{
    const __m256i b = _mm256_srli_epi32(_mm256_castps_si256(*P), 23);
    const __m256 s = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_sub_epi32(_mm256_set1_epi32(254), b), 23));
    *P = _mm256_mul_ps(*P, s);
    *E = _mm256_mul_ps(*E, s);
    *K = _mm256_add_epi32(*K, _mm256_sub_epi32(b, _mm256_set1_epi32(127)));
}

FL_INLINE void FN(lsum_init8)(__m256 *P, __m256 *E, __m256i *K)
{
    *P = _mm256_set1_ps(1.0f);
    *E = _mm256_setzero_ps();
    *K = _mm256_setzero_si256();
}

/* sum over the lanes of log(P + E) + K ln 2 (call after lsum_norm8):
 * log of the product, in lane order, of the lanes' P + E in double (each
 * in [1, 2], so the product is below 2^8 and rounds by 2^-53 a factor),
 * plus ln 2 times the sum of the exponents: one logarithm a block */
FL_INLINE double FN(lsum_total8)(__m256 P, __m256 E, __m256i K)
{
    float p[8], e[8];
    int32_t k[8];
    _mm256_storeu_ps(p, P);
    _mm256_storeu_ps(e, E);
    _mm256_storeu_si256((__m256i *)k, K);
    double m = 1;
    int64_t ks = 0;
    for (int i = 0; i < 8; i++) {
        m *= (double)p[i] + (double)e[i];
        ks += k[i];
    }
    return log(m) + (double)ks * 0.69314718055994530942;
}

#undef VX_B
#endif
