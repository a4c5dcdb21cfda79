/* fl_overlap.c -- stamps out the set-overlap kernels (segmentation sums
 * and gradients, Lovasz, boxes) for float32 and float64 on each
 * instruction-set path, picks the path at run time, and holds the scalar
 * float64 step between the two passes (fl_seg_coefs).
 *
 * As fl_pointwise.c: the same source is compiled for baseline x86-64 and,
 * under a target pragma, for x86-64-v3 (AVX2 + FMA); fl_ov_select_isa()
 * takes the v3 tables when the CPU has the features, unless the caller
 * forces the baseline.
 */
#include "fl_overlap.h"
#if FL_HAVE_X86_V3
#include <immintrin.h> /* the hand-vectorized pass 1 (fl_overlap_seg_math.h) */
#endif

#define FL_BODY "fl_overlap_body.h"

#include "fl_stamp_isas.h"

static const fl_ov_table *fl_ov_f32 = &ov_table_f32_base;
static const fl_ov_table *fl_ov_f64 = &ov_table_f64_base;
static const char *fl_ov_isa = "baseline";

const fl_ov_table *fl_ov_get(int f64) { return f64 ? fl_ov_f64 : fl_ov_f32; }

const char *fl_ov_select_isa(int force_baseline)
{
    fl_ov_f32 = &ov_table_f32_base;
    fl_ov_f64 = &ov_table_f64_base;
    fl_ov_isa = "baseline";
#if FL_HAVE_X86_V3
    if (!force_baseline && fl_cpu_has_v3()) {
        fl_ov_f32 = &ov_table_f32_v3;
        fl_ov_f64 = &ov_table_f64_v3;
        fl_ov_isa = FL_V3_NAME;
    }
#else
    (void)force_baseline;
#endif
    return fl_ov_isa;
}

const char *fl_ov_isa_name(void) { return fl_ov_isa; }

fl_idx fl_ov_block_pixels(fl_idx C, fl_idx S)
{
    fl_idx b = C > 0 ? FL_OV_BLOCK / C : FL_OV_BLOCK;
    b = (b + FL_OV_TILE - 1) / FL_OV_TILE * FL_OV_TILE; /* whole tiles, at least one */
    if (b > S) b = S > 0 ? S : 1;
    return b;
}

size_t fl_lovasz_scratch_bytes(fl_idx n, fl_idx C, int f64)
{
    /* as lv_task_bytes: 8-bit digit counters, then the elements twice
     * (8 bytes each for float, 16 for double) */
    const size_t passes = f64 ? 8 : 4, el = f64 ? 16 : 8;
    const size_t task = sizeof(uint32_t) * passes * 256 + 2 * el * (size_t)n;
    const size_t tile = (size_t)C * FL_OV_TILE * (f64 ? 8 : 4);
    return task + tile + 64;
}

/* ------------------------------------------------------------ coefficients
 * Per class (smp's soft_tversky_score, with min(p, t) for the intersection,
 * as smp's L1 form (Sp + St - |p - t|_1) / 2 is):
 *   D = I + alpha (Sp - I) + beta (St - I) + smooth,  s = (I + smooth) / max(D, eps)
 *   l = 1 - s, or -log(max(s, eps)) (log_loss)
 * per set: agg = sum_c w_c l_c / sum_c w_c over the selected classes,
 *   L = overlap_w agg^gamma + ce_w CE / count.
 * The maxima pass the gradient where the argument is >= the bound, as
 * PyTorch's clamp_min does; max(D, eps) is written so that NaN stays NaN. */
void fl_seg_coefs(const double *sums, fl_idx nsets, fl_idx C, const double *w, const unsigned char *sel,
                  const fl_seg_params *p, double *loss, double *coef, double *terms)
{
    const double al = p->alpha, be = p->beta, sm = p->smooth, eps = p->eps;
    for (fl_idx st = 0; st < nsets; st++) {
        const double *su = sums + st * C * FL_OV_K;
        double *cf = coef + st * C * 3;
        double wsum = 0, agg = 0, ce = 0, cnt = 0;
        for (fl_idx c = 0; c < C; c++) {
            ce += su[c * FL_OV_K + FL_OV_CE];
            cnt += su[c * FL_OV_K + FL_OV_CNT];
            if (sel && !sel[c]) continue;
            wsum += w ? w[c] : 1.0;
        }
        /* first the per-class losses and their derivatives dl/dSp, dl/dI */
        for (fl_idx c = 0; c < C; c++) {
            const double Sp = su[c * FL_OV_K + FL_OV_SP], St = su[c * FL_OV_K + FL_OV_ST];
            const double I = su[c * FL_OV_K + FL_OV_I];
            const double D = I + al * (Sp - I) + be * (St - I) + sm;
            const int dpass = !(D < eps);
            const double Dc = D < eps ? eps : D, num = I + sm, s = num / Dc;
            double dsI = 1.0 / Dc - (dpass ? num * (1.0 - al - be) / (Dc * Dc) : 0.0);
            double dsP = dpass ? -num * al / (Dc * Dc) : 0.0;
            double l, dls;
            if (p->log_loss) {
                l = -log(s < eps ? eps : s);
                dls = s < eps ? 0.0 : -1.0 / s;
            } else {
                l = 1.0 - s;
                dls = -1.0;
            }
            const double keep = (sm == 0 && St == 0) ? 0.0 : 1.0; /* see fl_overlap.h */
            const double wc = (sel && !sel[c]) ? 0.0 : (w ? w[c] : 1.0);
            agg += wc * (l * keep);
            cf[3 * c] = wc * keep * dls * dsP;
            cf[3 * c + 1] = wc * keep * dls * dsI;
        }
        agg /= wsum;
        double L = agg, dagg = 1.0;
        if (p->gamma != 1.0) {
            L = pow(agg, p->gamma);
            dagg = agg == 0 ? 0.0 : p->gamma * pow(agg, p->gamma - 1.0);
        }
        const double cem = cnt > 0 ? ce / cnt : 0.0;
        loss[st] = p->overlap_w * L + p->ce_w * cem;
        if (terms) {
            terms[2 * st] = L;
            terms[2 * st + 1] = cem;
        }
        const double f = p->set_scale * p->overlap_w * dagg / wsum;
        const double fce = cnt > 0 ? p->set_scale * p->ce_w / cnt : 0.0;
        for (fl_idx c = 0; c < C; c++) {
            cf[3 * c] *= f;
            cf[3 * c + 1] *= f;
            cf[3 * c + 2] = fce;
        }
    }
}
