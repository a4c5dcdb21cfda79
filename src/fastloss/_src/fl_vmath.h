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
#undef FL_HAS_FMA
#if (defined(__FMA__) || (defined(_MSC_VER) && defined(__AVX2__))) && T_F32
#define FL_FMA(a, b, c) fmaf((a), (b), (c))
#define FL_HAS_FMA 1
#elif defined(__FMA__) || (defined(_MSC_VER) && defined(__AVX2__))
#define FL_FMA(a, b, c) fma((a), (b), (c))
#define FL_HAS_FMA 1
#else
#define FL_FMA(a, b, c) ((a) * (b) + (c))
#define FL_HAS_FMA 0
#endif
/* FL_FMAD: a double fused multiply-add in either stamp (FL_FMA is the
 * stamp's type: fmaf in the float ones) */
#undef FL_FMAD
#if FL_HAS_FMA
#define FL_FMAD(a, b, c) fma((a), (b), (c))
#else
#define FL_FMAD(a, b, c) ((a) * (b) + (c))
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
 * 2^11), 2 exp(r) = 2 + 2 r + 2 r^2 P(r) by Horner's rule to the end, with
 * P of degree 9 interpolated at Chebyshev nodes on [-ln2/2, ln2/2] (its
 * relative error 2.3e-16 on P, 3e-17 on exp; the factor 2 is exact), times
 * 2^(k-1): at most 1 ulp from exp on a dense grid of [-708, 0]
 * (tests/test_vmath.py).  Below -708 the result (< 3.3e-308) is flushed to
 * 0 by a mask of x, which NaN passes.  x is not clamped (a clamp, a compare
 * and a 3-uop blend on the critical path, cost a fifth of the time): a lane
 * below -708 computes whatever k and r it gets and is masked, and no lane
 * can produce a subnormal, which would cost a microcode assist (a
 * scale-by-2^-64 path for subnormal results once made every call 20x
 * slower): the scale's exponent field is (k + 1022) mod 2^11, so the scale
 * is 0, inf or a normal 2^j with j >= -1022, and 2 exp(r) >= 1.41 (huge |x|
 * may give r and the product inf or NaN, masked too).  exp(0) = 2 * 2^-1 =
 * 1 exactly. */
FL_INLINE double FN(exp_np)(double x)
{
    const int keep = !(x < -708.0);
    const double magic = 6755399441055744.0; /* 1.5 * 2^52 */
    const double kf = FL_FMA(x, 1.4426950408889634074, magic);
    const double k = kf - magic;
    uint64_t ki, mi;
    memcpy(&ki, &kf, 8);
    memcpy(&mi, &magic, 8);
    const uint64_t bits = (ki - mi + 1022u) << 52; /* 2^(k-1), k in [-1021, 0] when kept */
    double scale;
    memcpy(&scale, &bits, 8);
    const double r = FL_FMA(-k, 1.42860682030941723212e-6, FL_FMA(-k, 6.93145751953125e-1, x));
    /* Horner's form: no high power of r that could go subnormal */
    double p = 2 * 2.510037611136142e-08;
    p = FL_FMA(p, r, 2 * 2.7620076242527254e-07);
    p = FL_FMA(p, r, 2 * 2.7557268479724004e-06);
    p = FL_FMA(p, r, 2 * 2.4801521321606647e-05);
    p = FL_FMA(p, r, 2 * 0.00019841269863040922);
    p = FL_FMA(p, r, 2 * 0.0013888888917197209);
    p = FL_FMA(p, r, 2 * 0.008333333333330065);
    p = FL_FMA(p, r, 2 * 0.041666666666624164);
    p = FL_FMA(p, r, 2 * 0.16666666666666669);
    p = FL_FMA(p, r, 2 * 0.5000000000000001);
#if FL_HAS_FMA
    p = FL_FMA(p, r, 2.0);
    p = FL_FMA(p, r, 2.0);
#else
    /* no FMA (the baseline path): 2 + (2 r + r^2 2P) rounds less than
     * Horner's last two steps, which round each product (1.23 ulp) */
    p = (p * (r * r) + (r + r)) + 2.0;
#endif
    return keep ? p * scale : 0.0;
}
#endif

/* exp(x) for any x (the KL's exp(logvar), logvar up to float's 88.72):
 * float inline as exp_np (the same reduction and polynomial), with the
 * scale split as 2^(k-1) * 2 for x > 0, so that k = 128 (x in [88.38,
 * 88.72]) still gives a normal scale; +inf above 88.7228 (exp overflows
 * there), 0 below -87.3, NaN stays NaN.  double: the library's exp. */
#if T_F32
FL_INLINE float FN(exp_any)(float x)
{
    const float magic = 12582912.0f;
    const float kf = x * 1.44269504088896341f + magic;
    const float k = kf - magic;
    uint32_t ki, mi;
    memcpy(&ki, &kf, 4);
    memcpy(&mi, &magic, 4);
    const uint32_t pos = x > 0;
    const uint32_t bits = (ki - mi + 127u - pos) << 23; /* 2^(k - pos), k - pos in [-126, 127] */
    float scale;
    memcpy(&scale, &bits, 4);
    const float r = (x - k * 0.693359375f) - k * -2.12194440e-4f;
    const float r2 = r * r;
    const float p01 = 4.999999403953552e-1f + r * 1.666652113199234e-1f;
    const float p23 = 4.166838899254799e-2f + r * 8.368710987269878e-3f;
    const float p = p01 + r2 * (p23 + r2 * 1.3814601115882397e-3f);
    const float y = (p * r2 + r + 1.0f) * scale * (pos ? 2.0f : 1.0f);
    return x < -87.3f ? 0.0f : (x > 88.72283f ? (float)INFINITY : y);
}
#else
FL_INLINE double FN(exp_any)(double x) { return EXP(x); }
#endif

#if T_F32
/* float: P(e) of log1p01 below, log1p01(e) = e P(e): a caller that adds
 * to the result writes the fused multiply-add FL_FMA(e, P, a) itself, so
 * that the bits do not depend on what the compiler contracts
 * (fl_pointwise_v3.h's intrinsics give the same bits). */
FL_INLINE float FN(log1p01_q)(float e)
{
    /* Below 2^-28 every term past the constant is under half an ulp of
     * it, so P(e) rounds to P(2^-28): the polynomial takes e clamped to
     * 2^-28, the same result without e^4 going subnormal (an assist each,
     * that made float32 logistic losses 7-15 times slower on logits of
     * |x| > 20).  The clamp is an integer max of the bits (the same order
     * for e >= 0; NaN stays NaN): GCC folds a float select into e * e. */
    uint32_t eb_;
    memcpy(&eb_, &e, 4);
    eb_ = eb_ > 0x31800000u ? eb_ : 0x31800000u; /* 2^-28 */
    float ep;
    memcpy(&ep, &eb_, 4);
    /* the multiply-adds written out (FL_FMA, as exp_np's): the same bits
     * at any optimization level, which fl_pointwise_v3.h's intrinsics and
     * the generated kernels must share */
    const float e2 = ep * ep, e4 = e2 * e2;
    const float p01 = FL_FMA(ep, -0.4999949336051941f, 0.9999999403953552f);
    const float p23 = FL_FMA(ep, -0.2484293282032013f, 0.33319091796875f);
    const float p45 = FL_FMA(ep, -0.1366283893585205f, 0.19105815887451172f);
    const float p67 = FL_FMA(ep, -0.02950228750705719f, 0.0782211497426033f);
    const float p03 = FL_FMA(e2, p23, p01), p47 = FL_FMA(e2, p67, p45);
    return FL_FMA(e4, FL_FMA(e4, 0.005231957416981459f, p47), p03);
}
#endif

/* Q(w) of the float64 log1p01 below, log1p(e) = 2 z + 2 z w Q(w) with z =
 * e / (2 + e), w = z^2 in [0, 1/9]: degree 9, interpolated at Chebyshev
 * nodes, in Horner's form (shared with fl_pointwise_math.h's log1p01_r1). */
FL_INLINE double FN(log1p01_atanh_q)(double w)
{
    double q = 0.08082022805971766;
    q = FL_FMAD(q, w, 0.04400369243072337);
    q = FL_FMAD(q, w, 0.06000536404795356);
    q = FL_FMAD(q, w, 0.06657072104827468);
    q = FL_FMAD(q, w, 0.07692785032479312);
    q = FL_FMAD(q, w, 0.09090894718066429);
    q = FL_FMAD(q, w, 0.11111111358713932);
    q = FL_FMAD(q, w, 0.1428571428355438);
    q = FL_FMAD(q, w, 0.20000000000007292);
    q = FL_FMAD(q, w, 0.3333333333333333);
    return q;
}

/* log(1 + e) for e in [0, 1], the softplus tail of every logistic loss,
 * with full relative precision for tiny e (where log(1 + e) would round to
 * 0) and no call to log: the logistic losses are compute-bound.
 * float: e P(e), P a degree-8 polynomial fitted to log1p(e)/e on [0, 1]
 *   for relative error (the fit 3.0e-8; evaluated in float, at most 2.3 ulp
 *   from log1p on a grid of 2e6 points of [0, 1]), in Estrin's scheme
 *   (dependency depth 4, no division).
 * double: 2 atanh(z) = 2 z + 2 z w Q(w), z = e / (2 + e) in [0, 1/3], w =
 *   z^2 in [0, 1/9], Q of degree 9 interpolated at Chebyshev nodes (its
 *   relative error 1.3e-16, 5e-18 on the result; it replaces the 18-term
 *   series): at most 2 ulp from log1p on a dense grid of [0, 1]
 *   (tests/test_vmath.py). */
FL_INLINE T FN(log1p01)(T e)
{
#if T_F32
    return e * FN(log1p01_q)(e);
#else
    /* Horner's form: no high power of w that could go subnormal (an
     * assist each) short of e < 1e-153.  d + dl = 2 + e exactly, and z =
     * z0 (1 - dl / d) with 1 / d ~ 1/2 - e/6 (4 % off, on a term of half
     * an ulp) corrects the rounding of 2 + e. */
    const double d = 2 + e, dl = e - (d - 2), z0 = e / d;
    const double z = FL_FMA(-(z0 * dl), FL_FMA(-e, 0.16666666666666666, 0.5), z0);
    const double w = z * z;
    const double q = FN(log1p01_atanh_q)(w);
    const double z2 = 2 * z;
    return FL_FMA(z2 * w, q, z2);
#endif
}

/* log1p(t) in double for t >= 0 (or NaN), in both stamps: the softmax
 * rows' log s = log1p((k - 1) + rest) (fl_rows_ce.h), inline so that a
 * group of rows vectorizes without a libmvec call (the call, two a group
 * of 8 rows, cost 10 % of cross-entropy at 32 classes).  u = 1 + t =
 * 2^k m with m in [sqrt(1/2), sqrt(2)) from u's bits (musl's split); f =
 * m - 1 is exact, or f = t itself when k = 0; log1p(t) = k ln2 + log1p(f)
 * + c / u, c = t - (u - 1) the rounding error of u (exact: Fast2Sum),
 * and log1p(f) = 2 atanh(z), z = f / (2 + f), |z| <= 0.172, by
 * log1p01's Q(w) (w = z^2 <= 0.03, inside its [0, 1/9]) with its
 * correction of the rounding of 2 + f (1 / (2 + f) ~ 1/2 - f/4, 4 % off
 * on a term of half an ulp).  k ln2 in two parts (fdlibm's: k ln2_hi is
 * exact for k < 2^11).  At most 2 ulp from log1p (1.84 seen, where k ln2
 * and log1p(f) < 0 cancel, t just above sqrt(2) - 1) on dense grids of
 * [0, 1e6] (tests/test_vmath.py).  t is finite (a softmax sum) or NaN:
 * NaN gives NaN (c is NaN); +inf would too. */
FL_INLINE double FN(log1p_pos_d)(double t)
{
    const double u = 1 + t;
    uint64_t ub;
    memcpy(&ub, &u, 8);
    const uint64_t tmp = ub - 0x3fe6a09e667f3bcdull; /* u >= 1: no borrow */
    const uint64_t kb = tmp >> 52;                  /* k, 0..1024 (NaN: any) */
    const uint64_t mb = ub - (kb << 52);
    const uint64_t kdb = kb | 0x4330000000000000ull; /* 2^52 + k */
    double m, kd;
    memcpy(&m, &mb, 8);
    memcpy(&kd, &kdb, 8);
    kd -= 4503599627370496.0;                       /* k as a double, exactly */
    const int k0 = kb == 0;
    const double f = k0 ? t : m - 1;
    const double c = k0 ? 0.0 : (t - (u - 1)) / u;
    const double d = 2 + f, dl = f - (d - 2), z0 = f / d;
    const double z = FL_FMAD(-(z0 * dl), FL_FMAD(-f, 0.25, 0.5), z0);
    const double w = z * z;
    const double q = FN(log1p01_atanh_q)(w);
    const double z2 = 2 * z;
    const double lo = FL_FMAD(kd, 1.90821492927058770002e-10, c);       /* k ln2_lo + c / u */
    return FL_FMAD(kd, 6.93147180369123816490e-01, FL_FMAD(z2 * w, q, z2) + lo);
}

/* exp(t) - 1 - t for |t| < 1/2 in double, where the difference cancels: the
 * Taylor series t^2 (1/2 + t/3! + ... + t^14/16!), whose next term is below
 * half an ulp.  Not a function of T: the pointwise expm1mx (float64) and the
 * RL row kernels' approximate KL (always double) share it.  Named by FN like
 * the rest, although of double in every instantiation: each ISA stamp needs
 * its own copy to inline it. */
FL_INLINE double FN(expm1mx_series)(double t)
{
    double p = 4.779477332387385e-14;       /* 1/16! */
    p = p * t + 7.647163731819816e-13;
    p = p * t + 1.1470745597729725e-11;
    p = p * t + 1.6059043836821613e-10;
    p = p * t + 2.08767569878681e-09;
    p = p * t + 2.505210838544172e-08;
    p = p * t + 2.755731922398589e-07;
    p = p * t + 2.755731922398589e-06;
    p = p * t + 2.48015873015873e-05;
    p = p * t + 0.0001984126984126984;
    p = p * t + 0.001388888888888889;
    p = p * t + 0.008333333333333333;
    p = p * t + 0.041666666666666664;
    p = p * t + 0.16666666666666666;
    p = p * t + 0.5;
    return t * t * p;
}
