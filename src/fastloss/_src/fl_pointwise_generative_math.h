/* fl_pointwise_generative_math.h -- the scalar math of the generative and
 * reinforcement-learning objectives that are pointwise:
 *   - the VAE's Gaussian KL term, per latent coordinate (x = mu,
 *     y = logvar, both differentiated);
 *   - the per-logit terms of the GAN losses (the discriminator's real and
 *     fake terms and the generator's), one kernel per form, the target
 *     operand unused (fastloss._generative_losses passes the input again);
 *   - REINFORCE's -log_prob * advantage, PPO's clipped surrogate (x =
 *     log_prob, y = old log_prob, e = advantage) and the clipped value
 *     loss (x = value, y = return, e = old value).
 *
 * Included by fl_pointwise_math.h inside its stamping context (T, T_F32,
 * FN, EXP, LOG, FABS, PW_SIG, PW_UNUSED, PW_LOGISTIC, logistic_ce); no
 * include guard, on purpose.  The rules of that file hold: selects, not
 * branches; NaN reaches v and g.
 */

/* exp(t) - 1 - t, accurate for small t (where it cancels): the Taylor
 * series t^2 (1/2 + t/6 + ...) for |t| < 1/2 (to 1/9! in float, 1/16! in
 * double: the next term is below half an ulp), exp(t) - 1 - t otherwise
 * (no cancellation beyond a factor 1.3 there). */
FL_INLINE T FN(expm1mx)(T t)
{
#if T_F32
    T p = (T)2.7557319e-06f;                /* 1/9! */
    p = p * t + (T)2.4801587e-05f;
    p = p * t + (T)1.9841270e-04f;
    p = p * t + (T)1.3888889e-03f;
    p = p * t + (T)8.3333333e-03f;
    p = p * t + (T)4.1666667e-02f;
    p = p * t + (T)1.6666667e-01f;
    p = p * t + (T)0.5f;
    const T big = FN(exp_any)(t) - 1 - t;  /* float: inline (the libmvec call cost 4 Ir/element) */
    return FABS(t) < (T)0.5 ? t * t * p : big;
#else
    const T big = FN(exp_any)(t) - 1 - t;
    return FABS(t) < (T)0.5 ? FN(expm1mx_series)(t) : big;  /* fl_vmath.h */
#endif
}

#if T_F32
/* float32, the KL's exp(t) - 1 - t in one reduction, with no series and no
 * select between two branches: with exp_np's reduction t = k ln2 + r
 * (|r| <= ln2/2) and exp(r) = 1 + r + r^2 P(r) (exp_np's P),
 *   exp(t) - 1 - t = s r^2 P + (s r + (s - 1 - t)),  s = 2^k,
 * evaluated as two fused multiply-adds.  For k = 0 (|t| < 0.3466) r = t
 * exactly, the inner sum is exactly 0 and the result is r^2 P: no
 * cancellation, a few ulp for any small t.  For |t| >= 0.3466 the result is
 * at least 0.053 and the terms are at most ~20 times it: at most 5.1 eps32
 * from float64 on a grid of 3e5 points of [-88, 88] (at t = 0.347; the
 * series + exp_any form it replaces, 7.9 Ir an element against 5.2 in the
 * x86-64-v3 loops: 4.2 eps32, at its switch).  It is computed at half
 * scale, h = 2^(k-1), and doubled (exact), so that k = 128 (t in [88.38,
 * 88.72]) still has a normal h; above 88.72 the doubling overflows to inf,
 * as exp does.  t is clamped to [-100, 89] for the exponent (no garbage
 * k), h is 0 for k <= -126 (t < -87: exp(t) < 3e-38 beside -1 - t >= 86,
 * and no subnormal), and the linear term takes t clamped at 89 only (t =
 * -inf gives +inf).  NaN passes every clamp (written so that it does) and
 * reaches the result (and *hx, below).  Every fused multiply-add is
 * written out (FL_FMA): fl_pointwise_v3_kl.h's intrinsics give the same
 * bits at any -O level. */
FL_INLINE float FN(kl_em1mx)(float t, float *hx)
{
    const float ta = 89.0f < t ? 89.0f : t;         /* minps(89, t): NaN -> t */
    const float tc = -100.0f > ta ? -100.0f : ta;   /* maxps(-100, ta) */
    const float magic = 12582912.0f;
    const float kf = FL_FMA(tc, 1.44269504088896341f, magic);
    const float k = kf - magic;
    uint32_t ki, mi;
    memcpy(&ki, &kf, 4);
    memcpy(&mi, &magic, 4);
    int32_t eb = (int32_t)(ki - mi) + 126;          /* k - 1 + 127 */
    eb = eb < 0 ? 0 : eb;
    const uint32_t hb = (uint32_t)eb << 23;
    float h;
    memcpy(&h, &hb, 4);
    const float r = FL_FMA(-k, -2.12194440e-4f, FL_FMA(-k, 0.693359375f, tc));
    const float r2 = r * r;
    const float p01 = FL_FMA(r, 1.666652113199234e-1f, 4.999999403953552e-1f);
    const float p23 = FL_FMA(r, 8.368710987269878e-3f, 4.166838899254799e-2f);
    const float p = FL_FMA(r2, FL_FMA(r2, 1.3814601115882397e-3f, p23), p01);
    const float hm = h - 0.5f, v = r2 * p;
    const float half = FL_FMA(h, v, FL_FMA(h, r, FL_FMA(-0.5f, ta, hm)));
    /* and d/dt = 0.5 expm1(t) = h (r + r^2 P) + (h - 1/2) from the same
     * terms: at most 1.4 eps32 on that grid (0.5 (t + the result) lost up
     * to 8 eps32 to the cancellation with t for t << 0; the form it
     * replaces, 4.2); inf above 89 (it overflows above 89.4), where t is
     * clamped */
    const float q = FL_FMA(h, r, FL_FMA(h, v, hm));
    *hx = t > 89.0f ? (float)INFINITY : q;
    return half + half;
}
#endif

/* KL(N(mu, e^lv) || N(0, 1)) per coordinate: 0.5 (mu^2 + e^lv - 1 - lv);
 * d/dmu = mu, d2/dmu2 = 1, d/dlv = 0.5 (e^lv - 1) = 0.5 (lv + (e^lv - 1 -
 * lv)).  Finite for lv up to log(max) (88.72 in float) and any lv below.
 * float32: its x86-64-v3 loop is written with intrinsics
 * (fl_pointwise_v3_kl.h) and gives the same bits for the gradients and the
 * per-element terms: keep the two in step (tests/test_pointwise_v3_kl.py). */
PW_SIG(gaussian_kl)
{
    PW_UNUSED;
#if T_F32
    T hx;
    const T r = FN(kl_em1mx)(y, &hx);
    *v = (T)0.5 * FL_FMA(x, x, r);
    *gy = hx;
#else
    const T r = FN(expm1mx)(y);
    *v = (T)0.5 * (x * x + r);
    *gy = (T)0.5 * (y + r);
#endif
    *g = x; *h = 1;
}

/* GAN, logistic forms: pa softplus(-x) + pb softplus(x) (the real term with
 * smoothed target pa = 1 - s, pb = s; the fake term pa = 0, pb = 1; the
 * non-saturating generator pa = 1, pb = 0; the minimax generator pa = 0,
 * pb = -1).  No log of a sigmoid: softplus = L + max(+-x, 0) with
 * L = log1p(exp(-|x|)), and a zero coefficient is skipped (x = +-inf). */
PW_SIG_LOGISTIC(gan_logistic, PW_XE_X)
{
    PW_UNUSED;
    PW_LOGISTIC(x, L, s, sn, q);
    *v = FN(logistic_ce)(x, pa, pb, (pa + pb) * L);
    *g = pb * s - pa * sn;
    *h = (pa + pb) * q;
}

/* GAN, one softplus term: pa softplus(pb x) with pb = +-1 and pa = +-1
 * (the discriminator's unsmoothed real term 1, -1 and fake term 1, 1; the
 * non-saturating generator 1, -1; the minimax generator -1, 1), the
 * logistic form of every GAN kind without label smoothing.  With z = pb x
 * and e = exp(-|z|): softplus(z) = log1p(e) + max(z, 0); d/dx = pa pb
 * sigmoid(z), sigmoid(z) = 1 / (1 + e) for z >= 0 and e / (1 + e) below;
 * d2/dx2 = pa e / (1 + e)^2.  A fifth fewer operations than gan_logistic's
 * two coefficients.  Its x86-64-v3 float32 loop is written with intrinsics
 * (fl_pointwise_v3.h, kernel gan_sp) and gives the same bits for the
 * gradient: keep the two in step (tests/test_generative.py compares them). */
PW_SIG_LOGISTIC(gan_softplus, PW_XE_X)
{
    PW_UNUSED;
    const T z = pb * x;
    /* float64: exp(-|x|) = exp(-|z|) (|pb| = 1) from the chunk's own pass */
    const T ez = T_F32 ? FN(exp_np)(-FABS(z)) : xe_logistic;
    const T r1 = 1 / (1 + ez), er = ez * r1;
#if T_F32
    /* one fused multiply-add of log1p01 = ez P(ez) and max(z, 0), written
     * out: the bits of fl_pointwise_v3.h's loop at any optimization level */
    const T sp = FL_FMA(ez, FN(log1p01_q)(ez), (z > 0 ? z : (T)0));
#else
    const T sp = FN(log1p01)(ez) + (z > 0 ? z : (T)0);
#endif
    *v = pa * sp;
    *g = pa * pb * (z >= 0 ? r1 : er);
    *h = pa * (er * r1);
}

/* GAN, least squares (LSGAN): pb (x - pa)^2, pb = 1/2 */
PW_SIG(gan_square)
{
    PW_UNUSED;
    const T d = x - pa;
    *v = pb * d * d; *g = 2 * pb * d; *h = 2 * pb;
}

/* GAN, Wasserstein: pa x */
PW_SIG(gan_linear)
{
    PW_UNUSED;
    *v = pa * x; *g = pa + x * 0; *h = 0;
}

/* GAN, hinge: max(0, pa + pb x) (the discriminator's 1 - x and 1 + x);
 * the gradient is 0 at the kink, as relu's */
PW_SIG(gan_relu)
{
    PW_UNUSED;
    const T z = pa + pb * x;
    *v = z < 0 ? (T)0 : z;
    *g = z > 0 ? pb : (z <= 0 ? (T)0 : z);
    *h = 0;
}

/* REINFORCE: -x y (x = log pi(a|s), y = advantage); d/dx = -y */
PW_SIG(policy_gradient)
{
    PW_UNUSED;
    *v = -x * y; *g = -y + x * 0; *h = 0;
}

/* PPO's clipped surrogate, as a loss: -min(r A, clip(r, 1 - pa, 1 + pa) A)
 * with r = exp(x - y) (x, y the new and old log-probabilities, e = A), and
 * with dual clipping (pb = c > 1; 0 when off) max(that, -c A) ... written
 * as the objective's min(max(.), c A) for A < 0 (Ye et al. 2020).  d/dx is
 * -r A where the unclipped term is the one taken, 0 elsewhere. */
PW_SIG(ppo_clip)
{
    PW_UNUSED;
    const T a = e, r = EXP(x - y);
    const T rc = r < 1 - pa ? 1 - pa : (r > 1 + pa ? 1 + pa : r);
    const T s1 = r * a, s2 = rc * a;
    const int unclipped = !(s2 < s1);               /* min picks s1 (ties too; NaN too) */
    const T m = unclipped ? s1 : s2;
    const T gm = unclipped ? -s1 : (T)0;            /* d(-m)/dx */
    const int dual = (pb > 0) & (a < 0) & (m < pb * a);
    *v = dual ? -pb * a : -m;
    *g = dual ? (T)0 : gm;
    *h = 0;
}

/* the value loss, 0.5 max(f(x - y), f(x_c - y)) with x_c = e + clip(x - e,
 * -pa, pa) (OpenAI baselines' clipped value loss; e = x and pa = inf when
 * unclipped), f(d) = d^2 (pb = 0) or Huber's 2 huber_delta(d) (pb = delta
 * > 0, so that 0.5 f is Huber's loss).  The unclipped term wins ties. */
FL_INLINE T FN(vl_f)(T d, T delta, T *gd)
{
    const T a = FABS(d);
    const int in = !(delta > 0) | (a <= delta);
    *gd = in ? 2 * d : 2 * delta * FN(sign)(d);
    return in ? d * d : 2 * delta * (a - (T)0.5 * delta);
}

PW_SIG(value_clip)
{
    PW_UNUSED;
    const T dx = x - e;
    const int inside = FABS(dx) <= pa;
    const T xc = e + (dx < -pa ? -pa : (dx > pa ? pa : dx));
    T g1, g2c;
    const T f1 = FN(vl_f)(x - y, pb, &g1), f2 = FN(vl_f)(xc - y, pb, &g2c);
    /* a NaN on either side reaches v and g (the clipped side's NaN, from
     * old_values, through 0 * f2) */
    const int first = f1 >= f2;
    *v = (T)0.5 * (first ? f1 : f2);
    *g = (T)0.5 * (first ? g1 : (inside ? g2c : (T)0 * f2));
    *h = 0;
}
