/* fl_pointwise_v3_kl.h -- the VAE's Gaussian KL term (kernel gaussian_kl:
 * x = mu, y = logvar; value, d/dmu, d/dlogvar) written with AVX2 intrinsics
 * for the x86-64-v3 float32 path.
 *
 * The common calls (no weight, no Hessian, no accumulation; value only,
 * value + d/dmu, value + both gradients, with or without the per-element
 * terms) run the loop below; every other call, dtype and path runs the
 * generated kernel (block_gaussian_kl_gen, renamed in fl_pointwise_math.h).
 * Why by hand: GCC's vectorization of the scalar math (the series and
 * exp_any form before kl_em1mx) kept its constants in stack slots (a load
 * each per vector) and ran at 0.85 ns an element in L2, more than BCE with
 * logits; this loop, of kl_em1mx, takes 5.2 instructions an element
 * (callgrind; the generated loop of the old form took 7.9).  The lanes compute the same operations as the scalar math
 * (kl_em1mx and gaussian_kl in fl_pointwise_generative_math.h), whose
 * fused multiply-adds are written out (FL_FMA) and whose clamps are
 * written as minps/maxps are defined (a < b ? a : b, NaN -> b), so the
 * gradients and the per-element terms are the same bits as the generated
 * kernel's at any -O level (tests/test_pointwise_v3_kl.py).  The value's
 * sum adds the 8 lanes in a fixed order (pw_hsum8), then the chunk's tail:
 * deterministic, but its last bits may differ from the generated kernel's.
 *
 * Included by fl_pointwise_math.h after fl_pointwise_v3.h, in the stamping
 * context; no include guard, on purpose. */

#if T_F32 && FL_PW_STAMP_IS_V3 && defined(__AVX2__) && defined(__FMA__)
#define KL_B(c) _mm256_set1_ps(c)

/* kl_em1mx of 8 lanes: exp(t) - 1 - t, and *hx = 0.5 expm1(t) */
FL_INLINE __m256 FN(kl_em1mx8)(__m256 t, __m256 *hx)
{
    const __m256 magic = KL_B(12582912.0f), half = KL_B(0.5f);
    const __m256 ta = _mm256_min_ps(KL_B(89.0f), t);
    const __m256 tc = _mm256_max_ps(KL_B(-100.0f), ta);
    const __m256 kf = _mm256_fmadd_ps(tc, KL_B(1.44269504088896341f), magic);
    const __m256 k = _mm256_sub_ps(kf, magic);
    /* max((ki - mi) + 126, 0) << 23 */
    const __m256i eb = _mm256_max_epi32(
        _mm256_add_epi32(_mm256_castps_si256(kf), _mm256_set1_epi32(126 - 0x4b400000)), _mm256_setzero_si256());
    const __m256 h = _mm256_castsi256_ps(_mm256_slli_epi32(eb, 23));
    const __m256 r = _mm256_fnmadd_ps(k, KL_B(-2.12194440e-4f), _mm256_fnmadd_ps(k, KL_B(0.693359375f), tc));
    const __m256 r2 = _mm256_mul_ps(r, r);
    const __m256 p01 = _mm256_fmadd_ps(r, KL_B(1.666652113199234e-1f), KL_B(4.999999403953552e-1f));
    const __m256 p23 = _mm256_fmadd_ps(r, KL_B(8.368710987269878e-3f), KL_B(4.166838899254799e-2f));
    const __m256 p = _mm256_fmadd_ps(r2, _mm256_fmadd_ps(r2, KL_B(1.3814601115882397e-3f), p23), p01);
    const __m256 hm = _mm256_sub_ps(h, half), v = _mm256_mul_ps(r2, p);
    const __m256 hv = _mm256_fmadd_ps(h, v, _mm256_fmadd_ps(h, r, _mm256_fnmadd_ps(half, ta, hm)));
    const __m256 q = _mm256_fmadd_ps(h, r, _mm256_fmadd_ps(h, v, hm));
    *hx = _mm256_blendv_ps(q, KL_B(INFINITY), _mm256_cmp_ps(t, KL_B(89.0f), _CMP_GT_OQ));
    return _mm256_add_ps(hv, hv);
}

/* n elements from start; WG: write d/dmu; WT: write d/dlogvar (into gt);
 * WL: write the per-element terms */
FL_INLINE double FN(gaussian_kl_v3)(const fl_pw_args *a, fl_idx start, fl_idx n, const int WG, const int WT,
                                    const int WL)
{
    const float *x = (const float *)a->x + start, *y = (const float *)a->y + start;
    float *g = WG ? (float *)a->g + start : NULL;
    float *gt = WT ? (float *)a->gt + start : NULL;
    float *l = WL ? (float *)a->l + start : NULL;
    const float gs = (float)a->gscale;
    const __m256 kg = KL_B(gs), half = KL_B(0.5f);
    double total = 0;
    for (fl_idx c = 0; c < n; c += FL_PW_CHUNK) {
        const fl_idx m = n - c < FL_PW_CHUNK ? n - c : FL_PW_CHUNK;
        __m256 acc = _mm256_setzero_ps();
        fl_idx i = c;
        for (; i + 8 <= c + m; i += 8) {
            const __m256 mu = _mm256_loadu_ps(x + i), lv = _mm256_loadu_ps(y + i);
            __m256 hx;
            const __m256 r = FN(kl_em1mx8)(lv, &hx);
            const __m256 v = _mm256_mul_ps(half, _mm256_fmadd_ps(mu, mu, r));
            acc = _mm256_add_ps(acc, v);
            if (WL) _mm256_storeu_ps(l + i, v);
            if (WG) _mm256_storeu_ps(g + i, _mm256_mul_ps(kg, mu));
            if (WT) _mm256_storeu_ps(gt + i, _mm256_mul_ps(kg, hx));
        }
        float s = FN(pw_hsum8)(acc);
        for (; i < c + m; i++) { /* the tail: the scalar math */
            float v_, g_, h_, g2_ = 0, gy_ = 0;
            int b_ = 0;
            FN(pw_gaussian_kl)(0, x[i], y[i], 1, 0, 0, 0, 0, 0, &v_, &g_, &h_, &g2_, &gy_, &b_);
            s += v_;
            if (WL) l[i] = v_;
            if (WG) g[i] = gs * g_;
            if (WT) gt[i] = gs * gy_;
        }
        total += (double)s;
    }
    return total;
}
#undef KL_B

static double FN(block_gaussian_kl)(const fl_pw_args *a, fl_idx start, fl_idx n, int *bad)
{
    if (a->w == NULL && !a->acc && a->mode != FL_MODE_GRAD_HESS) {
        const int wg = a->mode == FL_MODE_GRAD, wt = wg && a->gt != NULL, wl = a->l != NULL;
        switch ((wg + wt) * 2 + wl) {
        case 0: return FN(gaussian_kl_v3)(a, start, n, 0, 0, 0);
        case 1: return FN(gaussian_kl_v3)(a, start, n, 0, 0, 1);
        case 2: return FN(gaussian_kl_v3)(a, start, n, 1, 0, 0);
        case 3: return FN(gaussian_kl_v3)(a, start, n, 1, 0, 1);
        case 4: return FN(gaussian_kl_v3)(a, start, n, 1, 1, 0);
        default: return FN(gaussian_kl_v3)(a, start, n, 1, 1, 1);
        }
    }
    return FN(block_gaussian_kl_gen)(a, start, n, bad);
}
#endif
