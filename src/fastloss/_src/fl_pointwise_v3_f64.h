/* fl_pointwise_v3_f64.h -- the float64 logistic loops written with AVX2
 * intrinsics for the x86-64-v3 path: BCE with logits without pos_weight
 * (pw_bce_logits in fl_pointwise_math.h) and soft margin (pw_soft_margin),
 * for the common calls (no weight, no Hessian, no accumulation, no target
 * gradient; value only, value + gradient, with or without the per-element
 * losses); every other call runs the generated kernel, whose block function
 * is renamed block_<name>_gen there.
 *
 * Why by hand: GCC's code of the scalar math spends a compare on each
 * select on x >= 0 (here a blend on x's sign bit) and computes both t and
 * -t of the gradient, each from its own products (here the sign is an
 * xor).  The same operations as the scalar math otherwise, with the same
 * fused multiply-adds (FL_FMA, written out in exp_np, log1p01_r1 and the
 * losses), so the gradient and the per-element losses are the bits of the
 * generated kernel (tests/test_pointwise_v3_f64.py).  The chunk's two passes
 * are the generated kernel's (PW_SIG_LOGISTIC): exp(-|z|) over the chunk
 * into a stack buffer half a page from x, then the loss.  The value's sum
 * adds the 4 lanes in a fixed order, then the chunk's tail: deterministic,
 * but its last bits may differ from the generated kernel's.
 * Measured (bench/f64_logistic_v3.c, one thread, per
 * thread CPU time): the hand loop alone is no faster than GCC's (1.80
 * against 1.78 ns an element in cache): fewer port-0/1 operations, but the
 * loop is not bound by them alone; with log1p01_r1 and the gradient as
 * r1 (c - d e) 3 % faster in cache (1.76) and 4-5 % at N = 1e7 (2.02-2.07
 * against 2.10-2.12 ns).
 * Included by fl_pointwise_math.h after the generated kernels, in the
 * stamping context; no include guard, on purpose. */

#undef FL_PW64_V3
#if !T_F32 && FL_PW_STAMP_IS_V3 && defined(__AVX2__) && defined(__FMA__)
#define FL_PW64_V3 1
#define PD_B(c) _mm256_set1_pd(c)
#include "fl_vmath_v3.h"   /* exp4d_v3 */

/* the 4 lanes of a chunk's sum in a fixed order: (0 + 2, 1 + 3), then the pair */
FL_INLINE double FN(pw_hsum4)(__m256d acc)
{
    __m128d h2 = _mm_add_pd(_mm256_castpd256_pd128(acc), _mm256_extractf128_pd(acc, 1));
    h2 = _mm_add_sd(h2, _mm_unpackhi_pd(h2, h2));
    return _mm_cvtsd_f64(h2);
}

/* log1p01_r1 (fl_pointwise_math.h) of 4 lanes e in [0, 1], r1 = 1 / (1 + e):
 * the same operations */
FL_INLINE __m256d FN(pd_log1p01_r1)(__m256d e, __m256d r1)
{
    const __m256d two = PD_B(2.0);
    const __m256d d = _mm256_add_pd(two, e);
    const __m256d ep = _mm256_sub_pd(d, two);
    const __m256d dl = _mm256_sub_pd(e, ep);
    const __m256d z = _mm256_div_pd(ep, d);
    const __m256d w = _mm256_mul_pd(z, z);
    __m256d q = PD_B(0.08082022805971766);
    q = _mm256_fmadd_pd(q, w, PD_B(0.04400369243072337));
    q = _mm256_fmadd_pd(q, w, PD_B(0.06000536404795356));
    q = _mm256_fmadd_pd(q, w, PD_B(0.06657072104827468));
    q = _mm256_fmadd_pd(q, w, PD_B(0.07692785032479312));
    q = _mm256_fmadd_pd(q, w, PD_B(0.09090894718066429));
    q = _mm256_fmadd_pd(q, w, PD_B(0.11111111358713932));
    q = _mm256_fmadd_pd(q, w, PD_B(0.1428571428355438));
    q = _mm256_fmadd_pd(q, w, PD_B(0.20000000000007292));
    q = _mm256_fmadd_pd(q, w, PD_B(0.3333333333333333));
    const __m256d z2 = _mm256_add_pd(z, z);
    return _mm256_fmadd_pd(dl, r1, _mm256_fmadd_pd(_mm256_mul_pd(z2, w), q, z2));
}

/* Software prefetch, in the loss pass, of each stream (x, y, and g or l
 * written) FL_PW64_AHEAD elements (4 KB) ahead, a line every other
 * vector: at N = 1e7 on one thread the loop took 2.05 ns an element
 * without it and 1.89 with it (bench/f64_logistic_v3.c; 2 KB ahead
 * 1.92, 8 KB 1.92, 16 KB 1.98; in the exp pass instead: no gain; a whole
 * chunk's lines at once at the chunk's start: slower), and nothing in
 * cache (presumably the hardware prefetcher alone leaves the loss pass
 * waiting on y and g, whose streams pause during the exp pass, which reads
 * x only; not verified: no counters on this machine).
 * A prefetch never faults, so the lines past the end of an array (the last
 * 4 KB of each call) are harmless hints, not reads of the data. */
#define FL_PW64_AHEAD 512

/* n elements from start of BCE with logits (e = 1) or soft margin (SM);
 * WG: write g; WL: write l */
FL_INLINE double FN(logistic64_v3)(const fl_pw_args *a, fl_idx start, fl_idx n, const int SM, const int WG,
                                   const int WL)
{
    const double *x = (const double *)a->x + start, *y = (const double *)a->y + start;
    double *g = WG ? (double *)a->g + start : NULL;
    double *l = WL ? (double *)a->l + start : NULL;
    const double gs = a->gscale;
    const __m256d kg = PD_B(gs), nz = PD_B(-0.0), one = PD_B(1.0), zero = _mm256_setzero_pd();
    double xe_[FL_PW_CHUNK + FL_PW_PAGE / sizeof(double)];
    double total = 0;
    for (fl_idx c0 = 0; c0 < n; c0 += FL_PW_CHUNK) {
        const fl_idx m = n - c0 < FL_PW_CHUNK ? n - c0 : FL_PW_CHUNK, m4 = m & ~(fl_idx)3;
        const double *xc = x + c0, *yc = y + c0;
        double *const xe = xe_ + FN(pw_xe_shift)(xe_, xc);
        for (fl_idx i = 0; i < m4; i += 4) {
            __m256d z = _mm256_loadu_pd(xc + i);
            if (SM) z = _mm256_mul_pd(_mm256_loadu_pd(yc + i), z);
            _mm256_storeu_pd(xe + i, FN(exp4d_v3)(_mm256_or_pd(z, nz))); /* exp(-|z|) */
        }
        __m256d acc = zero;
        for (fl_idx i = 0; i < m4; i += 4) {
            if (!(i & 4)) { /* a line of each stream, 4 KB ahead (see above) */
                _mm_prefetch((const char *)(xc + i + FL_PW64_AHEAD), _MM_HINT_T0);
                _mm_prefetch((const char *)(yc + i + FL_PW64_AHEAD), _MM_HINT_T0);
                if (WG) _mm_prefetch((const char *)(g + c0 + i + FL_PW64_AHEAD), _MM_HINT_T0);
                if (WL) _mm_prefetch((const char *)(l + c0 + i + FL_PW64_AHEAD), _MM_HINT_T0);
            }
            const __m256d xv = _mm256_loadu_pd(xc + i), yv = _mm256_loadu_pd(yc + i);
            const __m256d e = _mm256_loadu_pd(xe + i);
            const __m256d r1 = _mm256_div_pd(one, _mm256_add_pd(one, e));
            const __m256d L = FN(pd_log1p01_r1)(e, r1);
            __m256d v, gv;
            if (SM) {
                const __m256d er = _mm256_mul_pd(e, r1);
                /* z = -y x; v = max(z, 0) + L, g = -y s(z); z's sign bit picks s */
                const __m256d ny = _mm256_xor_pd(yv, nz);
                const __m256d z = _mm256_mul_pd(ny, xv);
                v = _mm256_add_pd(_mm256_max_pd(z, zero), L);
                gv = _mm256_mul_pd(ny, _mm256_blendv_pd(r1, er, z));
            } else {
                /* v = c |x| + L fused (c = 0 skipped), g = +-r1 (c - d e): c, d = 1 - y,
                 * y for x >= 0, y, 1 - y below */
                const __m256d my = _mm256_sub_pd(one, yv);
                const __m256d c = _mm256_blendv_pd(my, yv, xv), d = _mm256_blendv_pd(yv, my, xv);
                const __m256d ax = _mm256_andnot_pd(nz, xv);
                v = _mm256_blendv_pd(L, _mm256_fmadd_pd(c, ax, L), _mm256_cmp_pd(c, zero, _CMP_NEQ_UQ));
                const __m256d t = _mm256_mul_pd(r1, _mm256_fnmadd_pd(d, e, c));
                gv = _mm256_xor_pd(t, _mm256_and_pd(xv, nz));
            }
            acc = _mm256_add_pd(acc, v);
            if (WL) _mm256_storeu_pd(l + c0 + i, v);
            if (WG) _mm256_storeu_pd(g + c0 + i, _mm256_mul_pd(kg, gv));
        }
        double s = FN(pw_hsum4)(acc);
        for (fl_idx i = m4; i < m; i++) { /* the tail: the scalar math */
            double v_, g_, h_, g2_ = 0, gy_ = 0;
            int b_ = 0;
            const double z = SM ? yc[i] * xc[i] : xc[i];
            const double xe1 = FN(exp_np)(-FABS(z));
            if (SM)
                FN(pw_soft_margin)(xe1, xc[i], yc[i], 1, 0, 0, 0, 0, 0, &v_, &g_, &h_, &g2_, &gy_, &b_);
            else
                FN(pw_bce_logits)(xe1, xc[i], yc[i], 1, 0, 0, 0, 0, 0, &v_, &g_, &h_, &g2_, &gy_, &b_);
            s += v_;
            if (WL) l[c0 + i] = v_;
            if (WG) g[c0 + i] = gs * g_;
        }
        total += s;
    }
    return total;
}
#undef PD_B
#undef FL_PW64_AHEAD

#define PW64_CASES(SM)                                                        \
    switch (wg * 2 + wl) {                                                    \
    case 0: return FN(logistic64_v3)(a, start, n, SM, 0, 0);                  \
    case 1: return FN(logistic64_v3)(a, start, n, SM, 0, 1);                  \
    case 2: return FN(logistic64_v3)(a, start, n, SM, 1, 0);                  \
    default: return FN(logistic64_v3)(a, start, n, SM, 1, 1);                 \
    }

static double FN(block_bce_logits)(const fl_pw_args *a, fl_idx start, fl_idx n, int *bad)
{
    if (a->w == NULL && a->e == NULL && !a->acc && a->gt == NULL && a->mode != FL_MODE_GRAD_HESS) {
        const int wg = a->mode == FL_MODE_GRAD, wl = a->l != NULL;
        PW64_CASES(0)
    }
    return FN(block_bce_logits_gen)(a, start, n, bad);
}

static double FN(block_soft_margin)(const fl_pw_args *a, fl_idx start, fl_idx n, int *bad)
{
    if (a->w == NULL && !a->acc && a->mode != FL_MODE_GRAD_HESS) {
        const int wg = a->mode == FL_MODE_GRAD, wl = a->l != NULL;
        PW64_CASES(1)
    }
    return FN(block_soft_margin_gen)(a, start, n, bad);
}
#undef PW64_CASES
#endif
