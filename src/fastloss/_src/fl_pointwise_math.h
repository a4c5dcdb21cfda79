/* fl_pointwise_math.h -- the scalar math of every pointwise loss, and the
 * one loop that all of them share.
 *
 * Included by fl_pointwise.c once per (dtype, instruction set), with
 *   T        float or double (the math is done in T: float32 data is
 *            computed in float lanes so that expf/logf vectorize; sums are
 *            carried in double, see FL_PW_CHUNK)
 *   FN(n)    the name n suffixed with the dtype and the instruction set
 *   EXP LOG FABS  the math functions for T
 * No include guard, on purpose.
 *
 * A loss is one function pw_NAME(x, y, e, pa, pb, pc, i0, i1, &v, &g, &h,
 * &g2, &gy, &bad) giving the value, d/dx, d2/dx2, d/de and d/dy (the last
 * only for losses marked HAS_GY in FL_PW_LIST; a loop that does not write
 * it lets the compiler drop its computation); everything around it
 * (weights, reduction, outputs, chunked sums, blocks, threads) is shared.
 * Branches are written so that GCC if-converts them into blends: both sides
 * are computed, so a side that is not taken may produce inf or NaN in its
 * lane, which is harmless (-fno-trapping-math) and never selected.
 * NaN in x or y propagates to v and g: comparisons are arranged so that a
 * NaN falls through to an arithmetic branch.
 */

#define PW_SIG(NAME) PW_SIG_XE(NAME, PW_XE_NONE, xe_unused)
/* A logistic loss declares which exponential its chunk computes first:
 * in float64 the chunk loop runs exp(-|z|) over the chunk in a pass of
 * its own into a buffer on the stack, and the loss reads it as xe_logistic
 * (PW_LOGISTIC).  One fused loop chained exp -> log1p -> the loss, about
 * 150 cycles of dependent operations for every 4 lanes, more than the
 * scheduler holds: the float64 loop ran at 47 cycles a vector where its
 * operations need about 26; with the exponentials in their own pass it
 * takes about 2/3 of the time (the same operations, so the same bits).
 * float32, whose loop is short enough, keeps the one loop (xe is 0). */
#define PW_XE_NONE 0 /* no pre-pass */
#define PW_XE_X 1    /* xe = exp(-|x|) */
#define PW_XE_YX 2   /* xe = exp(-|y x|) */
#define PW_SIG_LOGISTIC(NAME, XE) PW_SIG_XE(NAME, XE, xe_logistic)
#define PW_SIG_XE(NAME, XE, XEARG)                                            \
    enum { FN(pw_xe_##NAME) = (XE) };                                         \
    FL_INLINE void FN(pw_##NAME)(T XEARG, T x, T y, T e, T pa, T pb, T pc,    \
                                 int i0, int i1, T *restrict v,               \
                                 T *restrict g, T *restrict h,                \
                                 T *restrict g2, T *restrict gy,              \
                                 int *restrict bad)
#define PW_UNUSED (void)x; (void)y; (void)e; (void)pa; (void)pb; (void)pc; \
    (void)i0; (void)i1; (void)g2; (void)gy; (void)bad

#include "fl_vmath.h"

/* 1 in the x86-64-v3 stamp, 0 in the baseline one (ISA is v3 or base):
 * the hand-vectorized loops (fl_pointwise_v3.h) are compiled there only,
 * even when the whole file is built with -mavx2 */
#ifndef FL_PW_STAMP_IS_V3
#define FL_PW_ISA_v3 1
#define FL_PW_ISA_OF_(isa) FL_PW_ISA_##isa
#define FL_PW_ISA_OF(isa) FL_PW_ISA_OF_(isa)
#define FL_PW_STAMP_IS_V3 FL_PW_ISA_OF(ISA)
#endif

/* sign(d) with sign(0) = 0 and sign(NaN) = NaN */
FL_INLINE T FN(sign)(T d) { return d > 0 ? (T)1 : (d < 0 ? (T)-1 : d * 0); }

/* log(1 + t) for t > -1, accurate to a few ulp, from log alone (vector
 * log1pf needs glibc 2.35): log(u) * t / (u - 1) with u = 1 + t corrects
 * the rounding of u (Goldberg, "What every computer scientist ...", thm 4). */
FL_INLINE T FN(log1p)(T t)
{
    const T u = 1 + t, d = u - 1;
    const T r = LOG(u) * (t / d);
    return d == 0 ? t : r;
}

/* log(1 + e) for e in [0, 1]: FN(log1p01) in fl_vmath.h (shared with the
 * set-overlap kernels' BCE term). */

/* ---------------- regression ---------------- */

/* (x - y)^2 */
PW_SIG(mse)
{
    PW_UNUSED;
    const T d = x - y;
    *v = d * d; *g = 2 * d; *h = 2;
    *gy = -*g;
}

/* |x - y|; g = sign(x - y) with sign(0) = 0 as PyTorch; h = 0 */
PW_SIG(l1)
{
    PW_UNUSED;
    const T d = x - y;
    *v = FABS(d); *g = FN(sign)(d); *h = 0;
    *gy = -*g;
}

/* Huber, pa = delta > 0 */
PW_SIG(huber)
{
    PW_UNUSED;
    const T d = x - y, a = FABS(d);
    const int in = a <= pa;
    *v = in ? (T)0.5 * d * d : pa * (a - (T)0.5 * pa);
    *g = in ? d : pa * FN(sign)(d);
    *h = in ? (T)1 : (T)0;
    *gy = -*g;
}

/* smooth L1, pa = beta >= 0 (beta = 0 is L1, as PyTorch) */
PW_SIG(smooth_l1)
{
    PW_UNUSED;
    const T d = x - y, a = FABS(d);
    const int in = a < pa;
    *v = in ? (T)0.5 * d * d / pa : a - (T)0.5 * pa;
    *g = in ? d / pa : FN(sign)(d);
    *h = in ? 1 / pa : (T)0;
    *gy = -*g;
}

/* log(cosh(x - y)), vectorized in T.
 * |d| < 0.5: the Taylor series of log cosh and tanh in z = d^2 (coefficients
 *   2^2n (2^2n - 1) B_2n / (2n (2n)!), ratio < 0.11 per term at |d| = 0.5;
 *   9 terms for float, 18 for double), exact for tiny d, where
 *   |d| - log 2 + log1p(exp(-2|d|)) cancels;
 * |d| >= 0.5: |d| - log 2 + log1p(q), q = exp(-2|d|) <= 0.37 (relative
 *   error a few ulp at the switch), tanh = (1 - q)/(1 + q), 1/cosh^2 =
 *   4q/(1 + q)^2: no overflow for any d. */
PW_SIG(log_cosh)
{
    PW_UNUSED;
    const T d = x - y, a = FABS(d), z = d * d;
    T pv, pt;
    if (sizeof(T) == sizeof(float)) {
        pv = (T)3.277930227475478e-05;
        pv = pv * z + (T)-9.09896491907074e-05;
        pv = pv * z + (T)0.0002565805740408915;
        pv = pv * z + (T)-0.0007386029608251831;
        pv = pv * z + (T)0.0021869488536155205;
        pv = pv * z + (T)-0.006746031746031746;
        pv = pv * z + (T)0.022222222222222223;
        pv = pv * z + (T)-0.08333333333333333;
        pv = pv * z + (T)0.5;
        pt = (T)0.000590027440945586;
        pt = pt * z + (T)-0.0014558343870513183;
        pt = pt * z + (T)0.003592128036572481;
        pt = pt * z + (T)-0.008863235529902197;
        pt = pt * z + (T)0.021869488536155203;
        pt = pt * z + (T)-0.05396825396825397;
        pt = pt * z + (T)0.13333333333333333;
        pt = pt * z + (T)-0.3333333333333333;
        pt = pt * z + (T)1.0;
    } else {
        pv = (T)-4.835171934325458e-09;
        pv = pv * z + (T)1.2632091406687664e-08;
        pv = pv * z + (T)-3.3116463500327045e-08;
        pv = pv * z + (T)8.715903837635848e-08;
        pv = pv * z + (T)-2.3041747198769394e-07;
        pv = pv * z + (T)6.122655795895756e-07;
        pv = pv * z + (T)-1.6365968284715348e-06;
        pv = pv * z + (T)4.405244525877023e-06;
        pv = pv * z + (T)-1.1956455712177625e-05;
        pv = pv * z + (T)3.277930227475478e-05;
        pv = pv * z + (T)-9.09896491907074e-05;
        pv = pv * z + (T)0.0002565805740408915;
        pv = pv * z + (T)-0.0007386029608251831;
        pv = pv * z + (T)0.0021869488536155205;
        pv = pv * z + (T)-0.006746031746031746;
        pv = pv * z + (T)0.022222222222222223;
        pv = pv * z + (T)-0.08333333333333333;
        pv = pv * z + (T)0.5;
        pt = (T)-1.7406618963571648e-07;
        pt = pt * z + (T)4.294911078273806e-07;
        pt = pt * z + (T)-1.0597268320104654e-06;
        pt = pt * z + (T)2.6147711512907546e-06;
        pt = pt * z + (T)-6.451689215655431e-06;
        pt = pt * z + (T)1.5918905069328964e-05;
        pt = pt * z + (T)-3.927832388331683e-05;
        pt = pt * z + (T)9.691537956929451e-05;
        pt = pt * z + (T)-0.00023912911424355248;
        pt = pt * z + (T)0.000590027440945586;
        pt = pt * z + (T)-0.0014558343870513183;
        pt = pt * z + (T)0.003592128036572481;
        pt = pt * z + (T)-0.008863235529902197;
        pt = pt * z + (T)0.021869488536155203;
        pt = pt * z + (T)-0.05396825396825397;
        pt = pt * z + (T)0.13333333333333333;
        pt = pt * z + (T)-0.3333333333333333;
        pt = pt * z + (T)1.0;
    }
    const T q = EXP(-2 * a), r = 1 / (1 + q);
    const T tl = (1 - q) * r;
    const int small = a < (T)0.5;
    *v = small ? z * pv : a - (T)FL_LN2 + FN(log1p01)(q);
    const T t = small ? d * pt : (d > 0 ? tl : (d < 0 ? -tl : d * 0));
    *g = t;
    *h = small ? 1 - t * t : 4 * q * r * r;
    *gy = -t;
}

/* pinball loss, pa = quantile q in (0, 1); r = y - x.
 * v = q r for r >= 0, (q - 1) r otherwise; g = -q for r >= 0 (as
 * scikit-learn's PinballLoss), 1 - q otherwise; h = 0. */
PW_SIG(quantile)
{
    PW_UNUSED;
    const T r = y - x;
    *v = r >= 0 ? pa * r : (pa - 1) * r;
    *g = r >= 0 ? -pa : (r < 0 ? 1 - pa : r);
    *h = 0;
    *gy = -*g;
}

/* Stirling's term of PyTorch's poisson_nll_loss(full=True), 0 for y <= 1 */
FL_INLINE T FN(stirling)(T y)
{
    const T s = y * LOG(y) - y + (T)0.5 * LOG((T)6.283185307179586 * y);
    return y > 1 ? s : (T)0;
}

/* its derivative, log y + 1 / (2 y) for y > 1 (0 where the term is masked,
 * as PyTorch's masked_fill differentiates it) */
FL_INLINE T FN(stirling_dy)(T y)
{
    const T s = LOG(y) + (T)0.5 / y;
    return y > 1 ? s : (T)0;
}

/* Poisson NLL, log_input=True: exp(x) - y x [+ Stirling if FULL].  FULL
 * is a compile-time constant (its own kernel): a call under a run-time
 * condition cannot use a vector clone, and would keep the loop scalar. */
FL_INLINE void FN(poisson_log_)(T x, T y, T *restrict v, T *restrict g, T *restrict h, T *restrict gy,
                                const int FULL)
{
    const T ex = EXP(x);
    *v = ex - y * x + (FULL ? FN(stirling)(y) : (T)0);
    *g = ex - y; *h = ex;
    *gy = -x + (FULL ? FN(stirling_dy)(y) : (T)0);
}

/* Poisson NLL, log_input=False: x - y log(x + eps) [+ Stirling]; pa = eps */
FL_INLINE void FN(poisson_)(T x, T y, T pa, T *restrict v, T *restrict g, T *restrict h, T *restrict gy,
                            const int FULL)
{
    const T xe = x + pa, r = y / xe, lx = LOG(xe);
    *v = x - y * lx + (FULL ? FN(stirling)(y) : (T)0);
    *g = 1 - r; *h = r / xe;
    *gy = -lx + (FULL ? FN(stirling_dy)(y) : (T)0);
}

PW_SIG(poisson_log) { PW_UNUSED; FN(poisson_log_)(x, y, v, g, h, gy, 0); }
PW_SIG(poisson_log_full) { PW_UNUSED; FN(poisson_log_)(x, y, v, g, h, gy, 1); }
PW_SIG(poisson) { PW_UNUSED; FN(poisson_)(x, y, pa, v, g, h, gy, 0); }
PW_SIG(poisson_full) { PW_UNUSED; FN(poisson_)(x, y, pa, v, g, h, gy, 1); }

/* Gaussian NLL: 0.5 (log v + (x - y)^2 / v) [+ 0.5 log 2 pi], v =
 * max(var, eps) as PyTorch (the clamp is not differentiated: the gradient
 * with respect to var is taken at the clamped value).  e = var, pa = eps,
 * i0 = full; bad when var < 0. */
PW_SIG(gaussian_nll)
{
    (void)pb; (void)pc; (void)i1;
    const T var = e < pa ? pa : e;
    const T d = x - y, iv = 1 / var, dd = d * d * iv;
    *v = (T)0.5 * (LOG(var) + dd) + (i0 ? (T)FL_HALF_LOG_2PI : (T)0);
    *g = d * iv; *h = iv;
    *g2 = (T)0.5 * (iv - dd * iv);
    *gy = -*g;
    *bad = e < 0;
}

/* ---------------- binary classification ---------------- */

/* BCE on probabilities: -(y log x + (1 - y) log(1 - x)), each log clamped
 * at -100 as PyTorch.  The gradient is the exact derivative of that value:
 * a clamped log contributes nothing.  (PyTorch's backward instead clamps
 * x (1 - x) at 1e-12, so the two differ when x or 1 - x < 1e-12.)
 * bad when x is outside [0, 1]. */
PW_SIG(bce)
{
    (void)e; (void)pa; (void)pb; (void)pc; (void)i0; (void)i1; (void)g2;
    const T u = 1 - x;
    T lx = LOG(x), lu = FN(log1p)(-x);
    const int kx = !(lx <= -100), ku = !(lu <= -100); /* NaN is not clamped */
    lx = lx < -100 ? (T)-100 : lx;
    lu = lu < -100 ? (T)-100 : lu;
    const T ix = kx ? 1 / x : (T)0, iu = ku ? 1 / u : (T)0;
    *v = -(y * lx + (1 - y) * lu);
    *g = (1 - y) * iu - y * ix;
    *h = y * ix * ix + (1 - y) * iu * iu;
    *gy = lu - lx; /* of the clamped logs (PyTorch: -logit(x), unclamped) */
    *bad = (x < 0) | (x > 1);
}

#if !T_F32
/* log(1 + e) for e in [0, 1] given r1 = 1 / (1 + e), for the float64
 * logistic losses: fl_vmath.h's log1p01 (2 atanh(z), z = e / (2 + e), the
 * same Q) with a cheaper correction of the rounding of 2 + e: e' = (2 + e)
 * - 2 is e on the grid of 2 + e, so that z = e' / (2 + e') has an exact
 * denominator, and log1p(e) = log1p(e') + (e - e') / (1 + e') to far
 * below an ulp (e - e' < 2^-52), with 1 / (1 + e') ~ r1 (their difference
 * times e - e' is below 2^-100).  Two operations fewer than log1p01 and a
 * shorter chain after the division (bench/f64_logistic_v3.c); at most 1.62
 * ulp from log1p on 2e7 points of [0, 1] and of [2^-70, 1] (log1p01: 1.62;
 * tests/test_pointwise_v3_f64.py).  For e below 2^-52, e' = 0 and the
 * result is e r1 = e / (1 + e), within e^2 / 2 of log1p(e). */
FL_INLINE double FN(log1p01_r1)(double e, double r1)
{
    const double d = 2 + e, ep = d - 2, dl = e - ep;
    const double z = ep / d, w = z * z;
    const double q = FN(log1p01_atanh_q)(w);
    const double z2 = z + z;
    return FL_FMA(dl, r1, FL_FMA(z2 * w, q, z2));
}
#define PW_LOG1P01(ex, r1) FN(log1p01_r1)(ex, r1)
#else
#define PW_LOG1P01(ex, r1) FN(log1p01)(ex)
#endif

/* The pieces of a logistic loss at logit x: L = log1p(exp(-|x|)),
 * s = sigmoid(x), sn = sigmoid(-x) = 1 - s, q = s sn, each without
 * cancellation or overflow.  Only in a loss declared by PW_SIG_LOGISTIC,
 * whose chunk gives exp(-|x|) as xe_logistic in float64. */
#define PW_LOGISTIC(x, L, s, sn, q)                                           \
    const T ex_ = T_F32 ? FN(exp_np)(-FABS(x)) : xe_logistic;                 \
    const T r1_ = 1 / (1 + ex_);                                              \
    const T L = PW_LOG1P01(ex_, r1_), er_ = ex_ * r1_;                        \
    const T s = x >= 0 ? r1_ : er_;                                           \
    const T sn = x >= 0 ? er_ : r1_;                                          \
    const T q = er_ * r1_

/* The cross-entropy at logit x of the two-class target (py, my), py for
 * the positive class: py softplus(-x) + my softplus(x) = wL + c |x| with
 * wL = (py + my) L and c = my for x >= 0, py for x < 0.  Both softpluses
 * share L and are never subtracted, so tiny losses keep their digits; a
 * zero c is skipped, so x = +-inf with the matching hard label gives 0, not
 * 0 * inf.  (A function, not an expression: GCC 12 stops vectorizing
 * some of the loop variants when the nested select is written inline.) */
FL_INLINE T FN(logistic_ce)(T x, T py, T my, T wL)
{
    const T c = x >= 0 ? my : py;
    return wL + (c != 0 ? c * FABS(x) : (T)0);
}

/* BCE with logits and pos_weight p = e (1 when absent):
 * v = p y softplus(-x) + (1 - y) softplus(x). */
PW_SIG_LOGISTIC(bce_logits, PW_XE_X)
{
    (void)pa; (void)pb; (void)pc; (void)i0; (void)i1; (void)g2; (void)bad;
    PW_LOGISTIC(x, L, s, sn, q);
    const T py = e * y, my = 1 - y;
    /* py + my = 1 when e = 1: exact there, and free when e is the constant
     * 1 of a call without pos_weight */
    const T wL = e == 1 ? L : (py + my) * L, wq = e == 1 ? q : (py + my) * q;
    /* g = my s - py sn with one select: c r1 - d er for x >= 0, its
     * negative for x < 0 (c, d = my, py or py, my) */
#if T_F32
    const T c = x >= 0 ? my : py, d = x >= 0 ? py : my;
    /* v = logistic_ce(x, py, my, wL) = wL + c |x| (c = 0 skipped) */
    const T cx = c != 0 ? c * FABS(x) : (T)0;
    /* e = 1: L + c |x| as one fused multiply-add of L = ex P(ex), written
     * out: the bits of fl_pointwise_v3.h's loop at any optimization level */
    *v = e == 1 ? FL_FMA(ex_, FN(log1p01_q)(ex_), cx) : wL + cx;
    const T t = FL_FMA(c, r1_, -(d * er_)); /* as fl_pointwise_v3.h's fmsub */
#else
    /* float64: the value first, through logistic_ce, as before the float32
     * branch above was written: in this order GCC 12 vectorizes the float64
     * loop in 1.7 ns an element in cache, in the float32 branch's order in
     * 2.7 (the same bits either way) */
    const T c = x >= 0 ? my : py, d = x >= 0 ? py : my;
    /* v = logistic_ce(x, py, my, wL) with c |x| + wL as one fused
     * multiply-add, written out: a product that GCC may contract into the
     * add in scalar code (the loop's tail) but not in vector code would give
     * the tail other bits than fl_pointwise_v3_f64.h's loop */
    *v = c != 0 ? FL_FMA(c, FABS(x), wL) : wL;
    /* c r1 - d er = r1 (c - d ex): one product fewer than as written for
     * float32, and one rounding of c - d ex */
    const T t = r1_ * FL_FMA(-d, ex_, c);
#endif
    *g = x >= 0 ? t : -t;
    *h = wq;
    /* d/dy = e softplus(-x) - softplus(x) = (e - 1) L + e max(-x, 0) -
     * max(x, 0): exactly -x when e = 1 */
    *gy = (e - 1) * L + e * (x < 0 ? -x : (T)0) - (x > 0 ? x : (T)0);
    (void)s; (void)sn;
}

/* Sigmoid focal loss (torchvision.ops.sigmoid_focal_loss):
 * v = a_t ce (1 - p_t)^gamma with ce the BCE with logits, p_t = s y +
 * (1 - s)(1 - y), a_t = alpha y + (1 - alpha)(1 - y) (1 if alpha < 0).
 * pa = alpha, pb = gamma >= 0.
 * With m = 1 - p_t = s (1 - y) + sn y, M = m^gamma, r = m'/m:
 *   g = a_t (M (s - y) + gamma ce M r)
 *   h = a_t (M q + gamma M r (2 (s - y) + ce ((gamma - 1) r + sn - s)))
 * M r stays finite as m -> 0 (r = -s for y = 1, sn for y = 0), so
 * gamma < 1, where m^(gamma - 1) is infinite, is stable.  For gamma = 2,
 * M r = m q (1 - 2 y) and M r^2 = (q (1 - 2 y))^2: no division, exp or log
 * (GAMMA2, its own kernel). */
FL_INLINE void FN(focal)(T xe_logistic, T x, T y, T pa, T pb, T *restrict v, T *restrict g,
                         T *restrict h, const int GAMMA2)
{
    PW_LOGISTIC(x, L, s, sn, q);
    const T my = 1 - y;
    const T ce = FN(logistic_ce)(x, y, my, L);
    const T m = s * my + sn * y;
    const T sy = s * my - sn * y; /* s - y */
    const T gm = pb, qd = q * (1 - 2 * y); /* m' = qd */
    T M, Mr, Mrr;
    if (GAMMA2) {
        M = m * m; Mr = m * qd; Mrr = qd * qd;
    } else {
        M = gm == 0 ? (T)1 : EXP(gm * LOG(m));
        const T r = m > 0 ? qd / m : (T)0;
        Mr = M * r; Mrr = Mr * r;
    }
    /* the select on alpha's sign is loop-invariant, out of the loop (a
     * blend a lane otherwise); with alpha < 0, y + (1 - y) rounds to 1 */
    const T a1 = pa >= 0 ? pa : (T)1, a0 = pa >= 0 ? 1 - pa : (T)1;
    const T at = a1 * y + a0 * my;
    /* ce is infinite at a saturated wrong logit (x = +-inf), where q and so
     * M r are 0: the focal terms then vanish instead of giving 0 * inf */
    const int f = Mr != 0;
    const T t1 = f ? gm * Mr * ce : (T)0;
    const T t2 = f ? t1 * (sn - s) + gm * (gm - 1) * Mrr * ce : (T)0;
    if (GAMMA2) {
        /* the same, factored by m: v = a_t m m ce, g = a_t m (m (s - y) +
         * 2 qd ce), with q != 0 wherever ce is finite */
        const T atm = at * m, k = q != 0 ? qd * ce : (T)0;
        *v = atm * m * ce;
        *g = atm * (m * sy + 2 * k);
    } else {
        *v = at * ce * M;
        *g = at * (M * sy + t1);
    }
    *h = at * (M * q + 2 * gm * Mr * sy + t2);
}

PW_SIG_LOGISTIC(sigmoid_focal, PW_XE_X)
{
    (void)e; (void)pc; (void)i0; (void)i1; (void)g2; (void)gy; (void)bad;
    FN(focal)(xe_logistic, x, y, pa, pb, v, g, h, 0);
}

/* the same for gamma = 2, the usual choice: m^2 by one multiplication, no
 * exp or log.  (A select on gamma inside the loop would be loop-invariant,
 * and GCC 12 refuses to vectorize such a select, so it is its own kernel.) */
PW_SIG_LOGISTIC(sigmoid_focal_g2, PW_XE_X)
{
    PW_UNUSED;
    FN(focal)(xe_logistic, x, y, pa, (T)2, v, g, h, 1);
}

/* hinge: max(0, 1 - y x), y in {-1, 1}; h = 0; bad for other (non-NaN) y */
PW_SIG(hinge)
{
    (void)e; (void)pa; (void)pb; (void)pc; (void)i0; (void)i1; (void)g2; (void)gy;
    const T m = 1 - y * x;
    *v = m < 0 ? (T)0 : m;
    *g = m > 0 ? -y : (m <= 0 ? (T)0 : m);
    *h = 0;
    *bad = (y == y) & (y != 1) & (y != -1);
}

/* squared hinge: max(0, 1 - y x)^2, y in {-1, 1} */
PW_SIG(squared_hinge)
{
    (void)e; (void)pa; (void)pb; (void)pc; (void)i0; (void)i1; (void)g2; (void)gy;
    const T m = 1 - y * x, mp = m < 0 ? (T)0 : m;
    *v = mp * mp;
    *g = -2 * y * mp;
    *h = m > 0 ? 2 * y * y : (T)0;
    *bad = (y == y) & (y != 1) & (y != -1);
}

/* soft margin (PyTorch SoftMarginLoss): log(1 + exp(-y x)) */
PW_SIG_LOGISTIC(soft_margin, PW_XE_YX)
{
    PW_UNUSED;
    const T z = -y * x;
    PW_LOGISTIC(z, L, s, sn, q);
    *v = (z > 0 ? z : (T)0) + L;
    *g = -y * s;
    *h = y * y * q;
    (void)sn;
}

/* ---------------- distributions ---------------- */

/* KL divergence, pointwise, as PyTorch's kl_div with input = log q:
 * t (log t - x), with 0 log 0 = 0 (xlogy); g = -t; h = 0;
 * d/dt = log t + 1 - x (-inf at t = 0, its limit; PyTorch gives NaN). */
PW_SIG(kl_div)
{
    PW_UNUSED;
    const T ly = LOG(y);
    *v = (y == 0 ? (T)0 : y * ly) - y * x;
    *g = -y; *h = 0;
    *gy = ly + 1 - x;
}

/* kl_div(log_target=True): exp(t) (t - x); g = -exp(t); h = 0. */
PW_SIG(kl_div_log)
{
    PW_UNUSED;
    const T et = EXP(y);
    *v = et * (y - x);
    *g = -et; *h = 0;
    *gy = et * (y - x + 1);
}

/* ---------------- the regression catalogue (deviances, robust, Keras) ---------------- */

#include "fl_pointwise_regression_math.h"

/* ---------------- generative and RL objectives ---------------- */

#include "fl_pointwise_generative_math.h"

/* ---------------- embeddings (elementwise) ---------------- */

/* PyTorch's margin_ranking_loss: max(0, -y (x1 - x2) + margin) with
 * x1 = x, x2 = e, pa = margin; d/dx1 = -y, d/dx2 = y where the term is
 * >= 0 (clamp_min passes the gradient at 0, as PyTorch's); h = 0.  bad
 * for a (non-NaN) y other than -1 and 1. */
PW_SIG(margin_ranking)
{
    (void)pb; (void)pc; (void)i0; (void)i1; (void)gy;
    const T z = pa - y * (x - e);
    *v = z < 0 ? (T)0 : z;
    const T gx = z < 0 ? (T)0 : -y; /* NaN z: the value is NaN, g is -y */
    *g = gx; *g2 = -gx; *h = 0;
    *bad = (y == y) & (y != 1) & (y != -1);
}

/* PyTorch's hinge_embedding_loss: x for y = 1, max(0, margin - x) for
 * y = -1 (pa = margin); h = 0; bad for a (non-NaN) y other than -1 and 1,
 * and a NaN y gives NaN. */
PW_SIG(hinge_embedding)
{
    (void)e; (void)pb; (void)pc; (void)i0; (void)i1; (void)g2; (void)gy;
    const T z = pa - x;
    const T neg = z < 0 ? (T)0 : z;
    const T gneg = z < 0 ? (T)0 : (T)-1;
    const int pos = y == 1;
    /* single-level selects: nested ones kept this loop scalar */
    const T vv = pos ? x : neg, gg = pos ? (T)1 : gneg;
    *v = y == y ? vv : y;
    *g = y == y ? gg : y;
    *h = 0;
    *bad = (y == y) & (y != 1) & (y != -1);
}

/* ---------------- the shared math, for the accuracy tests ---------------- */

/* y = f(x) over n elements, f = exp_np (x <= 0), log1p01 (x in [0, 1]), exp_any (2) or
 * the logistic losses' log1p (3: log1p01_r1 in float64, x in [0, 1]),
 * in the same vectorized loop shape as the kernels (tests/test_vmath.py) */
static void FN(vmath)(int which, const T *restrict x, T *restrict y, fl_idx n)
{
    if (which == 0) {
        FL_PRAGMA(omp simd)
        for (fl_idx i = 0; i < n; i++) y[i] = FN(exp_np)(x[i]);
    } else if (which == 2) {
        FL_PRAGMA(omp simd)
        for (fl_idx i = 0; i < n; i++) y[i] = FN(exp_any)(x[i]);
    } else if (which == 4) { /* the softmax rows' log1p of t >= 0, in double */
        FL_PRAGMA(omp simd)
        for (fl_idx i = 0; i < n; i++) y[i] = (T)FN(log1p_pos_d)((double)x[i]);
    } else if (which == 3) { /* the logistic losses' log1p (log1p01_r1 in float64) */
        FL_PRAGMA(omp simd)
        for (fl_idx i = 0; i < n; i++) y[i] = PW_LOG1P01(x[i], 1 / (1 + x[i]));
    } else {
        FL_PRAGMA(omp simd)
        for (fl_idx i = 0; i < n; i++) y[i] = FN(log1p01)(x[i]);
    }
}

/* ---------------- the shared loop ---------------- */

/* The float64 pre-pass's buffer xe is placed in a stack array of a chunk and
 * a page so that it starts half a page (rounded to 32 bytes) from x in the
 * page: its stores in the pre-pass and its loads in the loss loop then never
 * share their low 12 address bits with the loads of x and y and the stores
 * of g a few elements away, which the core takes for a dependence (4K
 * aliasing) and stalls on.  With xe at a fixed place, float64 sigmoid focal
 * at N = 1e7 took 28-50 ms on one thread depending on the arrays' places in
 * their pages. */
#define FL_PW_PAGE 4096
FL_INLINE fl_idx FN(pw_xe_shift)(const T *buf, const T *x)
{
    const uintptr_t want = ((uintptr_t)x + FL_PW_PAGE / 2) & (FL_PW_PAGE - 1);
    const uintptr_t d = (want - ((uintptr_t)buf & (FL_PW_PAGE - 1))) & (FL_PW_PAGE - 1);
    return (fl_idx)((d & ~(uintptr_t)31) / sizeof(T));
}

/* One chunk (<= FL_PW_CHUNK elements), summed in T.  The W* flags are
 * compile-time constants at every call, so each combination becomes its
 * own branch-free vectorized loop. */
#define FL_PW_DEFINE_CHUNK(NAME, HAS_E, HAS_G2, HAS_GY)                       \
FL_INLINE T FN(chunk_##NAME)(                                                 \
    const T *restrict x, const T *restrict y, const T *restrict w,            \
    const T *restrict e, T *restrict g, T *restrict h, T *restrict l,         \
    T *restrict g2, T *restrict gt, fl_idx n, T pa, T pb, T pc, int i0,       \
    int i1, T gs, int *bad_out, const int WW, const int WE, const int WG,     \
    const int WH, const int WL, const int WT, const int WA)                   \
{                                                                             \
    T s = 0;                                                                  \
    int bad = 0;                                                              \
    /* float64 logistic losses: the exponentials first (PW_SIG_XE) */         \
    const int XE = T_F32 ? PW_XE_NONE : FN(pw_xe_##NAME);                     \
    /* xe sits half a page from x in the page (4K aliasing: see below) */    \
    T xe_[FL_PW_CHUNK + FL_PW_PAGE / sizeof(T)];                              \
    T *const xe = xe_ + FN(pw_xe_shift)(xe_, x);                              \
    if (XE != PW_XE_NONE) {                                                   \
        FL_PRAGMA(omp simd)                                                   \
        for (fl_idx i = 0; i < n; i++)                                        \
            xe[i] = FN(exp_np)(-FABS(XE == PW_XE_YX ? y[i] * x[i] : x[i]));   \
    }                                                                         \
    FL_SIMD_SUM(s, bad)                                                       \
    for (fl_idx i = 0; i < n; i++) {                                          \
        T v_, g_, h_, g2_ = 0, gy_ = 0;                                       \
        int b_ = 0;                                                           \
        const T e_ = (HAS_E && WE) ? e[i] : (T)1;                             \
        FN(pw_##NAME)(XE != PW_XE_NONE ? xe[i] : (T)0, x[i], y[i], e_, pa,    \
                      pb, pc, i0, i1, &v_, &g_, &h_, &g2_, &gy_, &b_);        \
        const T w_ = WW ? w[i] : (T)1;                                        \
        if (WW) v_ *= w_;                                                     \
        s += v_;                                                              \
        bad |= b_;                                                            \
        if (WL) l[i] = v_;                                                    \
        if (WG) g[i] = WA ? g[i] + gs * w_ * g_ : gs * w_ * g_;               \
        if (WH) h[i] = WA ? h[i] + gs * w_ * h_ : gs * w_ * h_;               \
        if (HAS_G2 && WG && !WH)                                              \
            g2[i] = WA ? g2[i] + gs * w_ * g2_ : gs * w_ * g2_;               \
        if (HAS_GY && WT) gt[i] = gs * w_ * gy_;                              \
    }                                                                         \
    *bad_out |= bad;                                                          \
    return s;                                                                 \
}

#define PW_OFF(p, k) ((p) ? (p) + (k) : (p))

/* A block: chunked sums carried in double; a periodic extra operand
 * (pos_weight over the last axis) is split into runs that are contiguous in
 * both the data and e, so the chunk loop stays a plain vector loop. */
#define FL_PW_DEFINE_RUN(NAME, HAS_E, HAS_G2, HAS_GY)                         \
FL_INLINE double FN(run_##NAME)(const fl_pw_args *a, fl_idx start,            \
                                fl_idx n, int *bad, const int WW,             \
                                const int WE, const int WG, const int WH,     \
                                const int WL, const int WT, const int WA)     \
{                                                                             \
    const T *x = (const T *)a->x + start, *y = (const T *)a->y + start;       \
    const T *w = WW ? (const T *)a->w + start : NULL;                         \
    T *g = WG ? (T *)a->g + start : NULL;                                     \
    T *h = WH ? (T *)a->h + start : NULL;                                     \
    T *l = WL ? (T *)a->l + start : NULL;                                     \
    T *g2 = (HAS_G2 && WG && !WH) ? (T *)a->g2 + start : NULL;                \
    T *gt = (HAS_GY && WT) ? (T *)a->gt + start : NULL;                       \
    const T pa = (T)a->prm.pa, pb = (T)a->prm.pb, pc = (T)a->prm.pc;          \
    const int i0 = a->prm.i0, i1 = a->prm.i1;                                 \
    const T gs = (T)a->gscale;                                                \
    double total = 0;                                                         \
    for (fl_idx c = 0; c < n; c += FL_PW_CHUNK) {                             \
        const fl_idx m = n - c < FL_PW_CHUNK ? n - c : FL_PW_CHUNK;           \
        if (HAS_E == 2 && WE) {                                               \
            const fl_idx P = a->e_period;                                     \
            fl_idx k = (start + c) % P, j = 0;                                \
            while (j < m) {                                                   \
                const fl_idx run = m - j < P - k ? m - j : P - k;             \
                const fl_idx o = c + j;                                       \
                total += (double)FN(chunk_##NAME)(                            \
                    x + o, y + o, PW_OFF(w, o), (const T *)a->e + k,          \
                    PW_OFF(g, o), PW_OFF(h, o), PW_OFF(l, o), PW_OFF(g2, o),  \
                    PW_OFF(gt, o), run, pa, pb, pc, i0, i1, gs, bad, WW, WE,  \
                    WG, WH, WL, WT, WA);                                      \
                j += run;                                                     \
                k = 0;                                                        \
            }                                                                 \
        } else {                                                              \
            const T *e = (HAS_E && WE) ? (const T *)a->e + start + c : NULL;  \
            total += (double)FN(chunk_##NAME)(                                \
                x + c, y + c, PW_OFF(w, c), e, PW_OFF(g, c), PW_OFF(h, c),    \
                PW_OFF(l, c), PW_OFF(g2, c), PW_OFF(gt, c), m, pa, pb, pc,    \
                i0, i1, gs, bad, WW, WE, WG, WH, WL, WT, WA);                 \
        }                                                                     \
    }                                                                         \
    return total;                                                             \
}

#define PW_CASES(NAME, WE)                                                    \
    switch ((a->mode * 2 + ww) * 2 + wl) {                                    \
    case 0: return FN(run_##NAME)(a, start, n, bad, 0, WE, 0, 0, 0, 0, 0);       \
    case 1: return FN(run_##NAME)(a, start, n, bad, 0, WE, 0, 0, 1, 0, 0);       \
    case 2: return FN(run_##NAME)(a, start, n, bad, 1, WE, 0, 0, 0, 0, 0);       \
    case 3: return FN(run_##NAME)(a, start, n, bad, 1, WE, 0, 0, 1, 0, 0);       \
    case 4: return FN(run_##NAME)(a, start, n, bad, 0, WE, 1, 0, 0, 0, 0);       \
    case 5: return FN(run_##NAME)(a, start, n, bad, 0, WE, 1, 0, 1, 0, 0);       \
    case 6: return FN(run_##NAME)(a, start, n, bad, 1, WE, 1, 0, 0, 0, 0);       \
    case 7: return FN(run_##NAME)(a, start, n, bad, 1, WE, 1, 0, 1, 0, 0);       \
    case 8: return FN(run_##NAME)(a, start, n, bad, 0, WE, 1, 1, 0, 0, 0);       \
    case 9: return FN(run_##NAME)(a, start, n, bad, 0, WE, 1, 1, 1, 0, 0);       \
    case 10: return FN(run_##NAME)(a, start, n, bad, 1, WE, 1, 1, 0, 0, 0);      \
    default: return FN(run_##NAME)(a, start, n, bad, 1, WE, 1, 1, 1, 0, 0);      \
    }

/* accumulate into g (and h): modes GRAD and GRAD_HESS, no l, no gt */
#define PW_CASES_ACC(NAME, WE)                                                \
    switch ((a->mode == FL_MODE_GRAD_HESS) * 2 + ww) {                        \
    case 0: return FN(run_##NAME)(a, start, n, bad, 0, WE, 1, 0, 0, 0, 1);    \
    case 1: return FN(run_##NAME)(a, start, n, bad, 1, WE, 1, 0, 0, 0, 1);    \
    case 2: return FN(run_##NAME)(a, start, n, bad, 0, WE, 1, 1, 0, 0, 1);    \
    default: return FN(run_##NAME)(a, start, n, bad, 1, WE, 1, 1, 0, 0, 1);   \
    }

/* value + gradient + the target's gradient (mode FL_MODE_GRAD, gt given) */
#define PW_CASES_GT(NAME, WE)                                                 \
    switch (ww * 2 + wl) {                                                    \
    case 0: return FN(run_##NAME)(a, start, n, bad, 0, WE, 1, 0, 0, 1, 0);       \
    case 1: return FN(run_##NAME)(a, start, n, bad, 0, WE, 1, 0, 1, 1, 0);       \
    case 2: return FN(run_##NAME)(a, start, n, bad, 1, WE, 1, 0, 0, 1, 0);       \
    default: return FN(run_##NAME)(a, start, n, bad, 1, WE, 1, 0, 1, 1, 0);      \
    }

/* The exported block function: picks the specialised loop once per block. */
#define FL_PW_DEFINE(NAME, HAS_E, HAS_G2, HAS_GY)                             \
    FL_PW_DEFINE_CHUNK(NAME, HAS_E, HAS_G2, HAS_GY)                           \
    FL_PW_DEFINE_RUN(NAME, HAS_E, HAS_G2, HAS_GY)                             \
    static double FN(block_##NAME)(const fl_pw_args *a, fl_idx start,         \
                                   fl_idx n, int *bad)                        \
    {                                                                         \
        const int ww = a->w != NULL, wl = a->l != NULL;                       \
        if (a->acc && a->mode != FL_MODE_VALUE && !wl && a->gt == NULL) {     \
            if (HAS_E == 2 && a->e != NULL) {                                 \
                PW_CASES_ACC(NAME, 1)                                         \
            } else {                                                          \
                PW_CASES_ACC(NAME, (HAS_E == 1))                              \
            }                                                                 \
        }                                                                     \
        if (HAS_GY && a->gt != NULL && a->mode == FL_MODE_GRAD) {             \
            if (HAS_E == 2 && a->e != NULL) {                                 \
                PW_CASES_GT(NAME, 1)                                          \
            } else {                                                          \
                PW_CASES_GT(NAME, (HAS_E == 1))                               \
            }                                                                 \
        }                                                                     \
        if (HAS_E == 2 && a->e != NULL) {                                     \
            PW_CASES(NAME, 1)                                                 \
        } else {                                                              \
            PW_CASES(NAME, (HAS_E == 1))                                      \
        }                                                                     \
    }

/* bce_logits has a hand-vectorized x86-64-v3 float32 loop (fl_pointwise_v3.h):
 * there the generated block function is named block_bce_logits_gen, and the
 * table takes fl_pointwise_v3.h's block_bce_logits, which calls it for the
 * calls the loop does not take */
#if T_F32 && FL_PW_STAMP_IS_V3 && defined(__AVX2__) && defined(__FMA__)
#define block_bce_logits_f32_v3 block_bce_logits_gen_f32_v3
#endif
/* and so have the float64 bce_logits and soft_margin (fl_pointwise_v3_f64.h) */
#if !T_F32 && FL_PW_STAMP_IS_V3 && defined(__AVX2__) && defined(__FMA__)
#define block_bce_logits_f64_v3 block_bce_logits_gen_f64_v3
#define block_soft_margin_f64_v3 block_soft_margin_gen_f64_v3
#endif
/* and so has gaussian_kl (fl_pointwise_v3_kl.h) */
#if T_F32 && FL_PW_STAMP_IS_V3 && defined(__AVX2__) && defined(__FMA__)
#define block_gaussian_kl_f32_v3 block_gaussian_kl_gen_f32_v3
#endif
FL_PW_LIST(FL_PW_DEFINE)
#undef block_bce_logits_f32_v3
#undef block_bce_logits_f64_v3
#undef block_soft_margin_f64_v3
#undef block_gaussian_kl_f32_v3
#include "fl_pointwise_rl.h"
#include "fl_pointwise_v3.h"
#include "fl_pointwise_v3_f64.h"
#include "fl_pointwise_v3_kl.h"

#define FL_PW_ENTRY(NAME, HAS_E, HAS_G2, HAS_GY) FN(block_##NAME),
#define FL_PW_ENTRY_RL(NAME) FN(block_##NAME),
static const fl_pw_block_fn FN(pw_table)[] = {FL_PW_LIST(FL_PW_ENTRY) FL_PW_LIST_RL(FL_PW_ENTRY_RL)};
#undef FL_PW_ENTRY_RL

#undef FL_PW_ENTRY
#undef FL_PW_DEFINE
#undef FL_PW_DEFINE_RUN
#undef FL_PW_DEFINE_CHUNK
#undef PW_CASES
#undef PW_CASES_GT
#undef PW_CASES_ACC
#undef PW_OFF
#undef PW_LOGISTIC
#undef PW_LOG1P01
#undef PW_SIG
#undef PW_SIG_XE
#undef PW_SIG_LOGISTIC
#undef PW_XE_NONE
#undef PW_XE_X
#undef PW_XE_YX
#undef PW_UNUSED
