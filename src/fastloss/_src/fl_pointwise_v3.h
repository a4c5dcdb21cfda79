/* fl_pointwise_v3.h -- pointwise loops written with AVX2 intrinsics for the
 * x86-64-v3 float32 path, for the two logistic kernels whose calls are the
 * hot ones of the GAN and VAE objectives:
 *   gan_sp      the GAN's logistic terms pa softplus(pb x), pb = +-1 and
 *               pa = +-1 (the scalar math: pw_gan_softplus in
 *               fl_pointwise_generative_math.h; its generated kernel is
 *               gan_softplus);
 *   bce_logits  BCE with logits without pos_weight (pw_bce_logits in
 *               fl_pointwise_math.h; the generated block function is renamed
 *               block_bce_logits_gen there, and the table takes the one
 *               below).
 * The common calls (no weight, no Hessian, no accumulation, no target
 * gradient; value only, value + gradient, with or without the per-element
 * losses) run the loops below; every other call, dtype and path runs the
 * generated kernel.  Why by hand: GCC's vectorization of the scalar math
 * spends a compare and a blend on each select (max(z, 0), the sign of z,
 * the exp's underflow), keeps both sides of each, and cannot know pb's sign.
 * Here the sigmoid's select is one blend on x's sign bit, pb's sign is a
 * compile-time flag (NEG: -|z| = -|x|, max(z, 0) is max(x, 0) or
 * -min(x, 0)), and the float lanes compute the same operations as GCC's
 * code of the scalar math, with the same fused multiply-adds, which the
 * scalar math writes out (FL_FMA in exp_np, log1p01_q, and where
 * pw_gan_softplus and pw_bce_logits add to e P(e) or form the gradient), so
 * that no contraction left to the compiler decides the bits at any -O level:
 * the gradient and the per-element losses are the same bits as the
 * generated kernel's (tests/test_pointwise_v3.py).  The value's sum adds the 8 lanes in a
 * fixed order, then the chunk's tail: deterministic, but its last bits may
 * differ from the generated kernel's.  A call without per-element losses
 * (reduction "mean" or "sum") needs only the sum of the softplus tails
 * log(1 + e): it takes it from fl_vmath_v3.h's compensated products (7
 * operations a vector instead of 13 for e P(e) and its add; more accurate;
 * callgrind: 13 % fewer instructions in the GAN's value-and-gradient
 * block), and e P(e) only where the per-element losses are written.
 *
 * Included by fl_pointwise_math.h after the generated kernels, in the
 * stamping context; no include guard, on purpose. */

#undef FL_GAN_V3
#if T_F32 && FL_PW_STAMP_IS_V3 && defined(__AVX2__) && defined(__FMA__)
#define FL_GAN_V3 1
#define GAN_B(c) _mm256_set1_ps(c)
#include "fl_vmath_v3.h"

/* the 8 lanes of a chunk's sum in a fixed order: (0 + 4, 1 + 5, 2 + 6,
 * 3 + 7), then pairs */
FL_INLINE float FN(pw_hsum8)(__m256 acc)
{
    __m128 h4 = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h4 = _mm_add_ps(h4, _mm_movehl_ps(h4, h4));
    h4 = _mm_add_ss(h4, _mm_movehdup_ps(h4));
    return _mm_cvtss_f32(h4);
}

/* log1p01 (fl_vmath.h) of 8 lanes without its last multiply by e: returns
 * Q with log1p(e) = e Q */
FL_INLINE __m256 FN(gan_log1p_q8)(__m256 e)
{
    const __m256 ep = _mm256_castsi256_ps(
        _mm256_max_epu32(_mm256_castps_si256(e), _mm256_set1_epi32(0x31800000))); /* 2^-28 */
    const __m256 e2 = _mm256_mul_ps(ep, ep), e4 = _mm256_mul_ps(e2, e2);
    const __m256 p01 = _mm256_fmadd_ps(ep, GAN_B(-0.4999949336051941f), GAN_B(0.9999999403953552f));
    const __m256 p23 = _mm256_fmadd_ps(ep, GAN_B(-0.2484293282032013f), GAN_B(0.33319091796875f));
    const __m256 p45 = _mm256_fmadd_ps(ep, GAN_B(-0.1366283893585205f), GAN_B(0.19105815887451172f));
    const __m256 p67 = _mm256_fmadd_ps(ep, GAN_B(-0.02950228750705719f), GAN_B(0.0782211497426033f));
    const __m256 p03 = _mm256_fmadd_ps(e2, p23, p01), p47 = _mm256_fmadd_ps(e2, p67, p45);
    return _mm256_fmadd_ps(e4, _mm256_fmadd_ps(e4, GAN_B(0.005231957416981459f), p47), p03);
}

/* n elements from start; NEG: pb = -1; WG: write g; WL: write l */
FL_INLINE double FN(gan_sp_v3)(const fl_pw_args *a, fl_idx start, fl_idx n, const int NEG, const int WG,
                               const int WL)
{
    const float *x = (const float *)a->x + start;
    float *g = WG ? (float *)a->g + start : NULL;
    float *l = WL ? (float *)a->l + start : NULL;
    const float pa = (float)a->prm.pa, pb = NEG ? -1.0f : 1.0f, gs = (float)a->gscale;
    const __m256 kg = GAN_B(gs * (pa * pb)), kl = GAN_B(pa), nz = GAN_B(-0.0f), one = GAN_B(1.0f);
    const __m256 zero = _mm256_setzero_ps();
    __m256 lp, le;
    __m256i lk;
    FN(lsum_init8)(&lp, &le, &lk);
    double total = 0;
    for (fl_idx c = 0; c < n; c += FL_PW_CHUNK) {
        const fl_idx m = n - c < FL_PW_CHUNK ? n - c : FL_PW_CHUNK;
        __m256 acc = zero;
        fl_idx i = c;
        for (; i + 8 <= c + m; i += 8) {
            const __m256 xv = _mm256_loadu_ps(x + i);
            const __m256 e = FN(exp8_v3)(_mm256_or_ps(xv, nz)); /* exp(-|x|) */
            const __m256 h = _mm256_add_ps(one, e);
            const __m256 r1 = _mm256_div_ps(one, h);
            if (WL) {
                /* softplus(z) = fma(e, Q, max(z, 0)) as pw_gan_softplus writes it;
                 * for z = -x, max(-x, 0) = -min(x, 0) */
                const __m256 q = FN(gan_log1p_q8)(e);
                const __m256 sp = NEG ? _mm256_fmsub_ps(e, q, _mm256_min_ps(xv, zero))
                                      : _mm256_fmadd_ps(e, q, _mm256_max_ps(xv, zero));
                acc = _mm256_add_ps(acc, sp);
                _mm256_storeu_ps(l + i, _mm256_mul_ps(kl, sp));
            } else {
                /* the sum only: max(z, 0) and log(1 + e) (fl_vmath_v3.h) */
                const __m256 am = NEG ? _mm256_sub_ps(acc, _mm256_min_ps(xv, zero))
                                      : _mm256_add_ps(acc, _mm256_max_ps(xv, zero));
                acc = FN(lsum_add8)(e, h, r1, am, &lp, &le);
            }
            if (WG) {
                /* sigmoid(z): r1 where z >= 0, e r1 below; z's sign is x's (NEG: its opposite) */
                const __m256 er = _mm256_mul_ps(e, r1);
                const __m256 sg = NEG ? _mm256_blendv_ps(er, r1, xv) : _mm256_blendv_ps(r1, er, xv);
                _mm256_storeu_ps(g + i, _mm256_mul_ps(kg, sg));
            }
        }
        if (!WL) FN(lsum_norm8)(&lp, &le, &lk);
        float s = FN(pw_hsum8)(acc);
        for (; i < c + m; i++) { /* the tail: the scalar math */
            float v_, g_, h_, g2_ = 0, gy_ = 0;
            int b_ = 0;
            FN(pw_gan_softplus)(0, x[i], x[i], 1, 1, pb, 0, 0, 0, &v_, &g_, &h_, &g2_, &gy_, &b_);
            s += v_;
            if (WL) l[i] = pa * v_;
            if (WG) g[i] = gs * (pa * g_);
        }
        total += (double)pa * (double)s;
    }
    if (!WL) total += (double)pa * FN(lsum_total8)(lp, le, lk);
    return total;
}

/* BCE with logits, no pos_weight: v = L + c |x| with c = 1 - y for x >= 0,
 * y below (skipped where c = 0), g = gs t for x >= 0 and -gs t below, t =
 * c r1 - d er with d = y for x >= 0, 1 - y below: pw_bce_logits with e = 1.
 * The selects on x >= 0 are blends on x's sign bit, which differ from
 * x >= 0 only at x = -0, where they give the same bits (r1 = er = 1/2). */
FL_INLINE double FN(bce_logits_v3)(const fl_pw_args *a, fl_idx start, fl_idx n, const int WG, const int WL)
{
    const float *x = (const float *)a->x + start, *y = (const float *)a->y + start;
    float *g = WG ? (float *)a->g + start : NULL;
    float *l = WL ? (float *)a->l + start : NULL;
    const float gs = (float)a->gscale;
    const __m256 kg = GAN_B(gs), nz = GAN_B(-0.0f), one = GAN_B(1.0f), zero = _mm256_setzero_ps();
    __m256 lp, le;
    __m256i lk;
    FN(lsum_init8)(&lp, &le, &lk);
    double total = 0;
    for (fl_idx c0 = 0; c0 < n; c0 += FL_PW_CHUNK) {
        const fl_idx m = n - c0 < FL_PW_CHUNK ? n - c0 : FL_PW_CHUNK;
        __m256 acc = zero;
        fl_idx i = c0;
        for (; i + 8 <= c0 + m; i += 8) {
            const __m256 xv = _mm256_loadu_ps(x + i), yv = _mm256_loadu_ps(y + i);
            const __m256 my = _mm256_sub_ps(one, yv);
            const __m256 e = FN(exp8_v3)(_mm256_or_ps(xv, nz));
            const __m256 h = _mm256_add_ps(one, e);
            const __m256 r1 = _mm256_div_ps(one, h);
            const __m256 c = _mm256_blendv_ps(my, yv, xv);
            const __m256 ax = _mm256_andnot_ps(nz, xv);
            const __m256 cx = _mm256_and_ps(_mm256_cmp_ps(c, zero, _CMP_NEQ_UQ), _mm256_mul_ps(c, ax));
            if (WL) {
                const __m256 v = _mm256_fmadd_ps(e, FN(gan_log1p_q8)(e), cx);
                acc = _mm256_add_ps(acc, v);
                _mm256_storeu_ps(l + i, v);
            } else {
                /* the sum only: log(1 + e) by fl_vmath_v3.h */
                acc = FN(lsum_add8)(e, h, r1, _mm256_add_ps(acc, cx), &lp, &le);
            }
            if (WG) {
                const __m256 d = _mm256_blendv_ps(yv, my, xv);
                const __m256 er = _mm256_mul_ps(e, r1);
                const __m256 t = _mm256_fmsub_ps(c, r1, _mm256_mul_ps(d, er));
                const __m256 gt = _mm256_xor_ps(t, _mm256_and_ps(xv, nz));
                _mm256_storeu_ps(g + i, _mm256_mul_ps(kg, gt));
            }
        }
        if (!WL) FN(lsum_norm8)(&lp, &le, &lk);
        float s = FN(pw_hsum8)(acc);
        for (; i < c0 + m; i++) { /* the tail: the scalar math */
            float v_, g_, h_, g2_ = 0, gy_ = 0;
            int b_ = 0;
            FN(pw_bce_logits)(0, x[i], y[i], 1, 0, 0, 0, 0, 0, &v_, &g_, &h_, &g2_, &gy_, &b_);
            s += v_;
            if (WL) l[i] = v_;
            if (WG) g[i] = gs * g_;
        }
        total += (double)s;
    }
    if (!WL) total += FN(lsum_total8)(lp, le, lk);
    return total;
}
#undef GAN_B
#endif

#define GAN_SP_CASES(NEG)                                                     \
    switch (wg * 2 + wl) {                                                    \
    case 0: return FN(gan_sp_v3)(a, start, n, NEG, 0, 0);                     \
    case 1: return FN(gan_sp_v3)(a, start, n, NEG, 0, 1);                     \
    case 2: return FN(gan_sp_v3)(a, start, n, NEG, 1, 0);                     \
    default: return FN(gan_sp_v3)(a, start, n, NEG, 1, 1);                    \
    }

static double FN(block_gan_sp)(const fl_pw_args *a, fl_idx start, fl_idx n, int *bad)
{
#if defined(FL_GAN_V3)
    if (a->w == NULL && !a->acc && a->gt == NULL && a->mode != FL_MODE_GRAD_HESS &&
        (a->prm.pa == 1 || a->prm.pa == -1) && (a->prm.pb == 1 || a->prm.pb == -1)) {
        const int wg = a->mode == FL_MODE_GRAD, wl = a->l != NULL;
        if (a->prm.pb < 0) {
            GAN_SP_CASES(1)
        } else {
            GAN_SP_CASES(0)
        }
    }
#endif
    return FN(block_gan_softplus)(a, start, n, bad);
}

#undef GAN_SP_CASES

#if defined(FL_GAN_V3)
static double FN(block_bce_logits)(const fl_pw_args *a, fl_idx start, fl_idx n, int *bad)
{
    if (a->w == NULL && a->e == NULL && !a->acc && a->gt == NULL && a->mode != FL_MODE_GRAD_HESS) {
        const int wg = a->mode == FL_MODE_GRAD, wl = a->l != NULL;
        switch (wg * 2 + wl) {
        case 0: return FN(bce_logits_v3)(a, start, n, 0, 0);
        case 1: return FN(bce_logits_v3)(a, start, n, 0, 1);
        case 2: return FN(bce_logits_v3)(a, start, n, 1, 0);
        default: return FN(bce_logits_v3)(a, start, n, 1, 1);
        }
    }
    return FN(block_bce_logits_gen)(a, start, n, bad);
}
#endif
