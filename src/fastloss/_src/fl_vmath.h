/* fl_vmath.h -- inline vector math shared by the kernel bodies.
 * Included by each math header in the stamping context of fl_stamp.h (T,
 * T_F32, FN); no include guard, on purpose.
 */
/* exp(x) for x <= 0 (or NaN): every exponential of a softmax (z_c - max)
 * and of a logistic loss (-|x|).
 * For float it is inline, so the class loops vectorize without a call per
 * vector (all vector registers are caller-saved, so a libmvec call also
 * spills every live accumulator): Cephes' reduction, 2^k * (1 + r + r^2 P(r))
 * with |r| <= ln2/2, and P of degree 4 fitted for relative error (one
 * term fewer than Cephes' expf): 1.01 ulp at most against double exp on
 * 8e6 points of [-87.3, 0], as Cephes' own (0.98).  Below -87.3 the result would be subnormal (< 2^-126); it is
 * flushed to 0, an absolute error under 1.2e-38 on a term of a sum that
 * is at least 1.  exp(0) = 1 exactly, which the max-split sums rely on. */
/* The fused multiply-adds are written out (FL_FMA) wherever the x86-64-v3
 * path has them, instead of left to the compiler's contraction (GCC forms
 * FMAs at -O2 and above only, Clang within one expression): the bits of
 * exp_np, and of the hand-vectorized exp8 (fl_rows_ce.h) that must match
 * it, are then the same at any optimization level.  The baseline path
 * (no FMA instruction) keeps a multiply and an add. */
#undef FL_FMA
#if (defined(__FMA__) || (defined(_MSC_VER) && defined(__AVX2__))) && T_F32
#define FL_FMA(a, b, c) fmaf((a), (b), (c))
#elif defined(__FMA__) || (defined(_MSC_VER) && defined(__AVX2__))
#define FL_FMA(a, b, c) fma((a), (b), (c))
#else
#define FL_FMA(a, b, c) ((a) * (b) + (c))
#endif
#if T_F32
FL_INLINE float FN(exp_np)(float x)
{
    /* no clamp: for x < -87.3 (or -inf) the lane computes garbage that the
     * final select discards; the integer part is unsigned, so it wraps
     * instead of overflowing.  NaN falls through to p * scale = NaN. */
    const float magic = 12582912.0f; /* 1.5 * 2^23: the add rounds to an integer */
    const float kf = FL_FMA(x, 1.44269504088896341f, magic);
    const float k = kf - magic;
    uint32_t ki, mi;
    memcpy(&ki, &kf, 4);
    memcpy(&mi, &magic, 4);
    const uint32_t bits = (ki - mi + 127u) << 23; /* 2^k, k in [-126, 0] */
    float scale;
    memcpy(&scale, &bits, 4);
    const float r = FL_FMA(-k, -2.12194440e-4f, FL_FMA(-k, 0.693359375f, x));
    /* P in Estrin's form (dependency depth 3, not 5) */
    const float r2 = r * r;
    const float p01 = FL_FMA(r, 1.666652113199234e-1f, 4.999999403953552e-1f);
    const float p23 = FL_FMA(r, 8.368710987269878e-3f, 4.166838899254799e-2f);
    const float p = FL_FMA(r2, FL_FMA(r2, 1.3814601115882397e-3f, p23), p01);
    return x < -87.3f ? 0.0f : (FL_FMA(p, r2, r) + 1.0f) * scale;
}
#else
/* double: the same scheme in double lanes, inline for the same reason (a
 * libmvec call per vector spilled every live register: float64 logistic
 * losses ran 4.5x the float32 time).  k = round(x / ln2) by the magic
 * add, r = x - k ln2 in two parts (Cephes' C1 has k C1 exact for |k| <
 * 2^11), exp(r) = 1 + r + r^2 P(r) with P of degree 9 interpolated at
 * Chebyshev nodes on [-ln2/2, ln2/2] (its relative error 2.3e-16 on P,
 * 3e-17 on exp): at most 1.1 ulp from exp on a dense grid of [-708, 0]
 * (tests/test_vmath.py).  Below -708 the result (< 3.3e-308) is flushed
 * to 0, and x is clamped there first so that no lane computes a garbage
 * or subnormal scale: an operation on a subnormal costs a microcode
 * assist, and a scale-by-2^-64 path for subnormal results made every
 * call 20x slower for that reason.  exp(0) = 1 exactly. */
FL_INLINE double FN(exp_np)(double x)
{
    const double xc = x < -708.0 ? -708.0 : x;
    const double magic = 6755399441055744.0; /* 1.5 * 2^52 */
    const double kf = FL_FMA(xc, 1.4426950408889634074, magic);
    const double k = kf - magic;
    uint64_t ki, mi;
    memcpy(&ki, &kf, 8);
    memcpy(&mi, &magic, 8);
    const uint64_t bits = (ki - mi + 1023u) << 52; /* 2^k, k in [-1022, 0] */
    double scale;
    memcpy(&scale, &bits, 8);
    const double r = FL_FMA(-k, 1.42860682030941723212e-6, FL_FMA(-k, 6.93145751953125e-1, xc));
    /* Horner's form: Estrin's r^8 would be subnormal for |r| < 1e-38 */
    double p = 2.510037611136142e-08;
    p = FL_FMA(p, r, 2.7620076242527254e-07);
    p = FL_FMA(p, r, 2.7557268479724004e-06);
    p = FL_FMA(p, r, 2.4801521321606647e-05);
    p = FL_FMA(p, r, 0.00019841269863040922);
    p = FL_FMA(p, r, 0.0013888888917197209);
    p = FL_FMA(p, r, 0.008333333333330065);
    p = FL_FMA(p, r, 0.041666666666624164);
    p = FL_FMA(p, r, 0.16666666666666669);
    p = FL_FMA(p, r, 0.5000000000000001);
    const double r2 = r * r;
    return x < -708.0 ? 0.0 : (FL_FMA(p, r2, r) + 1.0) * scale;
}
#endif
