/* f64_logistic_variants.c -- issue 18 (a): four ways to compute the float64
 * logistic pieces of BCE with logits (exp(-|x|), 1/(1+e), log1p(e)),
 * timed side by side in one process (interleaved rounds, best of 61) on an
 * in-cache array, and their accuracy checked against long double.
 *   current: fl_vmath.h's exp_np and log1p01 as shipped until 2026-11-30
 *            (Horner, two divisions; exp_np has changed since, see below)
 *   estrin:  the same polynomials in Estrin's form (depth 4, not 10; the
 *            argument flushed to 0 below 2^-60 so that no power is subnormal)
 *   onediv:  current polynomials, one division: 1/((1+e)(2+e)) shared by
 *            1/(1+e) and e/(2+e), each refined by a Newton step on an exact
 *            FMA residual
 *   twopass: current math, exp(-|x|) for a chunk of 256 first, into a
 *            stack buffer, then the rest (what fl_pointwise_math.h does now)
 *
 *   gcc -O3 -march=x86-64-v3 -fno-math-errno -fno-trapping-math -fopenmp-simd \
 *       bench/f64_logistic_variants.c -o /tmp/f64v -lm && /tmp/f64v
 *
 * Measured 2026-11-30 on the project machine (Xeon, AVX-512 capable, under
 * load 9-14, three runs): estrin/current 1.26-1.37, onediv/current
 * 1.35-2.1 (onediv's 1/(1+e) bit-identical to the division on 1e6 points
 * of [0, 1]; all three within 1.1 ulp (exp) and 1.6 ulp (log1p)); llvm-mca
 * -mcpu=skylake on the vectorized loops agrees (cycles per 4 elements:
 * current 60, estrin 71, onediv 76).  The loop is bound by the FP ports'
 * uop count, not by the divider or by the dependency chain, so both
 * rewrites, which add uops, are slower; not adopted.
 *
 * Revisited 2026-11-30 (helper f64t18, load 1-7, 3.8 GHz by an FMA
 * throughput loop; vdivpd ymm 8 cycles, vblendvpd 1 a cycle, FMA/mul/add/
 * compare 2 a cycle):
 *   twopass: current math, exp(-|x|) over a chunk of 256 into a stack
 *            buffer first, the rest in a second loop.  ADOPTED
 *            (fl_pointwise_math.h, PW_SIG_LOGISTIC): the fused loop ran at
 *            ~47 cycles per 4 elements for ~26 cycles of port work; exp
 *            alone 11, log1p01 alone 9.5, both independent 21, exp feeding
 *            log1p 30: the exp -> log1p -> loss chain (~150 cycles of
 *            dependent operations per vector) is longer than the scheduler
 *            holds.  Two passes: 2/3 of the time (BCE 3.0 -> 2.0 ns/element
 *            in cache; focal gamma 2 3.95 -> 2.5; soft margin 2.95 -> 1.95).
 *            Three passes (log1p and 1/(1+e) in a pass of their own) were
 *            slower than two (2.33 against 2.0); so was 1/(1+e) moved into
 *            the exp pass (BCE 1.92-2.0 against 1.79-1.81, focal 2.28-2.33
 *            against 2.18-2.24, after the exp_np change below).  Estrin's form inside the
 *            one fused loop: no change (3.03-3.1 against 3.02-3.08), which is
 *            what made the chain look like port pressure.
 *   Removing either division (timing only, wrong results): 3-7 % at
 *            most, both 5-10 %: the divider is not the bottleneck, so one
 *            shared division was not pursued further.
 *   exp_np without the clamp of x (the flush by a mask of x, NaN
 *            passing), 2 exp(r) by Horner to the end and a scale of
 *            2^(k-1) (so that no wrapped or edge lane can be subnormal):
 *            ADOPTED, 0.67 -> 0.56 ns/element in cache, 0.94 ulp max
 *            (1.06 before).  Keeping the clamp as x & mask (1 uop more, on
 *            the critical path) gave back half the gain (0.64).  GCC 12
 *            does not turn the clamp into vmaxpd (NaN semantics) and makes
 *            an integer max of the exponent a vpblendvb, so both were
 *            dropped.
 *   sigmoid focal: alpha's sign chosen outside the loop instead of a
 *            blend a lane: -5 % (2.26 -> 2.15 ns in cache; float32 too).
 *            ADOPTED.  Still the slowest of the three at N = 1e7 (its loss
 *            loop is the longest: ~62 instructions per 4 elements after the
 *            exp pass, against ~50 for BCE).
 *   Table-driven exp/log (vpermd lookups on port 5): not tried in code; by
 *            count, a 4-entry 2^(j/4) table saves 2-3 FMAs of exp but costs
 *            2 vpermd, the index and a hi/lo correction; log1p needs full
 *            relative accuracy near 0, so a table does not shorten its
 *            polynomial there.
 *
 * Revisited 2026-11-30 late (helper bce64t18): bench/f64_logistic_v3.c.
 *   BCE with logits and soft margin by hand in AVX2 for the common calls
 *   (fl_pointwise_v3_f64.h), log1p01_r1 (log1p01 with a cheaper correction
 *   of 2 + e's rounding, 1.62 ulp), BCE's gradient as r1 (c - d e), and a
 *   software prefetch 4 KB ahead in the loss pass: ADOPTED.  The prefetch
 *   is most of the gain at N = 1e7 (2.05 -> 1.89 ns an element, one
 *   thread); the hand loop alone is no faster than GCC's.
 */
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#define FMA fma
static inline __attribute__((always_inline)) double exp_h(double x) {
    const double xc = x < -708.0 ? -708.0 : x, magic = 6755399441055744.0;
    const double kf = FMA(xc, 1.4426950408889634074, magic), k = kf - magic;
    uint64_t ki, mi; memcpy(&ki, &kf, 8); memcpy(&mi, &magic, 8);
    const uint64_t bits = (ki - mi + 1023u) << 52; double scale; memcpy(&scale, &bits, 8);
    const double r = FMA(-k, 1.42860682030941723212e-6, FMA(-k, 6.93145751953125e-1, xc));
    double p = 2.510037611136142e-08;
    p = FMA(p, r, 2.7620076242527254e-07); p = FMA(p, r, 2.7557268479724004e-06);
    p = FMA(p, r, 2.4801521321606647e-05); p = FMA(p, r, 0.00019841269863040922);
    p = FMA(p, r, 0.0013888888917197209); p = FMA(p, r, 0.008333333333330065);
    p = FMA(p, r, 0.041666666666624164); p = FMA(p, r, 0.16666666666666669);
    p = FMA(p, r, 0.5000000000000001);
    const double r2 = r * r;
    return x < -708.0 ? 0.0 : (FMA(p, r2, r) + 1.0) * scale;
}
static inline __attribute__((always_inline)) double exp_e(double x) {
    const double xc = x < -708.0 ? -708.0 : x, magic = 6755399441055744.0;
    const double kf = FMA(xc, 1.4426950408889634074, magic), k = kf - magic;
    uint64_t ki, mi; memcpy(&ki, &kf, 8); memcpy(&mi, &magic, 8);
    const uint64_t bits = (ki - mi + 1023u) << 52; double scale; memcpy(&scale, &bits, 8);
    const double r = FMA(-k, 1.42860682030941723212e-6, FMA(-k, 6.93145751953125e-1, xc));
    const double rc = fabs(r) < 0x1p-60 ? 0.0 : r;   /* no subnormal r^8 */
    const double r2 = rc * rc, r4 = r2 * r2, r8 = r4 * r4;
    const double p01 = FMA(rc, 0.16666666666666669, 0.5000000000000001);
    const double p23 = FMA(rc, 0.008333333333330065, 0.041666666666624164);
    const double p45 = FMA(rc, 0.00019841269863040922, 0.0013888888917197209);
    const double p67 = FMA(rc, 2.7557268479724004e-06, 2.4801521321606647e-05);
    const double p89 = FMA(rc, 2.510037611136142e-08, 2.7620076242527254e-07);
    const double p03 = FMA(r2, p23, p01), p47 = FMA(r2, p67, p45);
    const double p = FMA(r8, p89, FMA(r4, p47, p03));
    return x < -708.0 ? 0.0 : (FMA(p, r * r, r) + 1.0) * scale;
}
static inline __attribute__((always_inline)) double lz_h(double z) {
    const double w = z * z;
    double q = 0.08082022805971766;
    q = FMA(q, w, 0.04400369243072337); q = FMA(q, w, 0.06000536404795356); q = FMA(q, w, 0.06657072104827468);
    q = FMA(q, w, 0.07692785032479312); q = FMA(q, w, 0.09090894718066429); q = FMA(q, w, 0.11111111358713932);
    q = FMA(q, w, 0.1428571428355438); q = FMA(q, w, 0.20000000000007292); q = FMA(q, w, 0.3333333333333333);
    const double z2 = 2 * z;
    return FMA(z2 * w, q, z2);
}
static inline __attribute__((always_inline)) double lz_e(double z) {
    const double w = z * z;
    const double wc = w < 0x1p-60 ? 0.0 : w;
    const double w2 = wc * wc, w4 = w2 * w2, w8 = w4 * w4;
    const double q01 = FMA(wc, 0.20000000000007292, 0.3333333333333333);
    const double q23 = FMA(wc, 0.11111111358713932, 0.1428571428355438);
    const double q45 = FMA(wc, 0.07692785032479312, 0.09090894718066429);
    const double q67 = FMA(wc, 0.06000536404795356, 0.06657072104827468);
    const double q89 = FMA(wc, 0.08082022805971766, 0.04400369243072337);
    const double q = FMA(w8, q89, FMA(w4, FMA(w2, q67, q45), FMA(w2, q23, q01)));
    const double z2 = 2 * z;
    return FMA(z2 * w, q, z2);
}
#define L1P(LZ) static inline __attribute__((always_inline)) double l1p_##LZ(double e) { \
    const double d = 2 + e, dl = e - (d - 2), z0 = e / d; \
    return LZ(z0 - (z0 * dl) * (0.5 - e * 0.16666666666666666)); }
L1P(lz_h) L1P(lz_e)
static inline __attribute__((always_inline)) double onediv_rl(double e, double *r) {
    const double a = 1 + e, d = 2 + e, dl = e - (d - 2);
    const double iD = 1 / (a * d);
    const double r0 = d * iD, id = a * iD;
    *r = FMA(r0, FMA(-a, r0, 1.0), r0);
    const double z0 = e * id;
    const double res = FMA(-z0, dl, FMA(-z0, d, e));
    return lz_h(FMA(res, id, z0));
}
__attribute__((noinline)) double k_onediv(const double *x, const double *y, double *g, long n) {
    double s = 0;
    _Pragma("omp simd reduction(+:s)")
    for (long i = 0; i < n; i++) {
        const double xv = x[i], yv = y[i];
        const double ex = exp_h(-fabs(xv)); double r1;
        const double L = onediv_rl(ex, &r1), er = ex * r1;
        const double c = xv >= 0 ? 1 - yv : yv, dd = xv >= 0 ? yv : 1 - yv;
        const double t = c * r1 - dd * er;
        g[i] = xv >= 0 ? t : -t;
        s += L + (c != 0 ? c * fabs(xv) : 0.0);
    }
    return s;
}
__attribute__((noinline)) double k_twopass(const double *x, const double *y, double *g, long n) {
    double s = 0;
    for (long c0 = 0; c0 < n; c0 += 256) {
        const long m = n - c0 < 256 ? n - c0 : 256;
        double xe[256];
        _Pragma("omp simd")
        for (long i = 0; i < m; i++) xe[i] = exp_h(-fabs(x[c0 + i]));
        double sc = 0;
        _Pragma("omp simd reduction(+:sc)")
        for (long i = 0; i < m; i++) {
            const double xv = x[c0 + i], yv = y[c0 + i];
            const double ex = xe[i], r1 = 1 / (1 + ex);
            const double L = l1p_lz_h(ex), er = ex * r1;
            const double c = xv >= 0 ? 1 - yv : yv, dd = xv >= 0 ? yv : 1 - yv;
            const double t = c * r1 - dd * er;
            g[c0 + i] = xv >= 0 ? t : -t;
            sc += L + (c != 0 ? c * fabs(xv) : 0.0);
        }
        s += sc;
    }
    return s;
}
#define BODY(EXP, LZ) \
    double s = 0; \
    _Pragma("omp simd reduction(+:s)") \
    for (long i = 0; i < n; i++) { \
        const double xv = x[i], yv = y[i]; \
        const double ex = EXP(-fabs(xv)), r1 = 1 / (1 + ex); \
        const double L = l1p_##LZ(ex), er = ex * r1; \
        const double c = xv >= 0 ? 1 - yv : yv, dd = xv >= 0 ? yv : 1 - yv; \
        const double t = c * r1 - dd * er; \
        g[i] = xv >= 0 ? t : -t; \
        s += L + (c != 0 ? c * fabs(xv) : 0.0); \
    } \
    return s;
__attribute__((noinline)) double k_current(const double *x, const double *y, double *g, long n) { BODY(exp_h, lz_h) }
__attribute__((noinline)) double k_estrin(const double *x, const double *y, double *g, long n) { BODY(exp_e, lz_e) }
__attribute__((noinline)) void accuracy(void) {
    double me = 0, ml = 0, meh = 0, mlh = 0;
    for (long i = 0; i <= 4000000; i++) {
        double x = -708.0 * i / 4000000.0;
        long double ref = expl((long double)x);
        double u = (double)nextafter((double)ref, 1e300) - (double)ref;
        double a = fabsl((exp_e(x) - ref) / u), b = fabsl((exp_h(x) - ref) / u);
        if (a > me) me = a;
        if (b > meh) meh = b;
        double e = i / 4000000.0;
        long double rl = log1pl((long double)e);
        double ul = (double)nextafter((double)rl, 1e300) - (double)rl;
        if (e > 0) {
            a = fabsl((l1p_lz_e(e) - rl) / ul);
            b = fabsl((l1p_lz_h(e) - rl) / ul);
            if (a > ml) ml = a;
            if (b > mlh) mlh = b;
        }
    }
    for (long i = 0; i <= 200000; i++) {   /* tiny e and x near 0 */
        double e = pow(10, -300.0 + 300.0 * i / 200000.0);
        long double rl = log1pl((long double)e);
        double ul = (double)nextafter((double)rl, 1e300) - (double)rl;
        double a = fabsl((l1p_lz_e(e) - rl) / ul); if (a > ml) ml = a;
        double x = -e; long double ref = expl((long double)x);
        double u = (double)nextafter((double)ref, 0) - (double)ref; u = fabs(u);
        a = fabsl((exp_e(x) - ref) / u); if (a > me) me = a;
    }
    printf("max ulp against long double: exp estrin %.3f current %.3f | log1p01 estrin %.3f current %.3f\n", me, meh, ml, mlh);
}
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
int main(void) {
    accuracy();
    long n = 1 << 14;
    double *x = malloc(n * 8), *y = malloc(n * 8), *g = malloc(n * 8);
    srand(1);
    for (long i = 0; i < n; i++) { x[i] = (rand() / (double)RAND_MAX - 0.5) * 8; y[i] = rand() & 1; }
    double bo = 1e9, bn = 1e9, b1 = 1e9, b2 = 1e9, so = 0, sn = 0, s1 = 0, s2 = 0;
    double md = 0;
    for (long i = 0; i <= 1000000; i++) {   /* onediv's 1/(1+e) against the division */
        const double e = i / 1000000.0; double r; (void)onediv_rl(e, &r);
        const double q = 1 / (1 + e), u = nextafter(q, 2) - q, dv = fabs(r - q) / u;
        if (dv > md) md = dv;
    }
    printf("onediv: 1/(1+e) within %.2f ulp of the division\n", md);
    for (int r = 0; r < 61; r++) {
        const double t0 = now();
        for (int k = 0; k < 50; k++) so += k_current(x, y, g, n);
        const double t1 = now();
        for (int k = 0; k < 50; k++) sn += k_estrin(x, y, g, n);
        const double t2 = now();
        for (int k = 0; k < 50; k++) s1 += k_onediv(x, y, g, n);
        const double t3 = now();
        for (int k = 0; k < 50; k++) s2 += k_twopass(x, y, g, n);
        const double t4 = now();
        if (t4 - t3 < b2) b2 = t4 - t3;
        if (t1 - t0 < bo) bo = t1 - t0;
        if (t2 - t1 < bn) bn = t2 - t1;
        if (t3 - t2 < b1) b1 = t3 - t2;
    }
    printf("ns/element: current %.3f estrin %.3f onediv %.3f twopass %.3f; estrin/current %.3f onediv/current %.3f "
           "twopass/current %.3f (%g %g %g %g)\n",
           bo / (50.0 * n) * 1e9, bn / (50.0 * n) * 1e9, b1 / (50.0 * n) * 1e9, b2 / (50.0 * n) * 1e9, bn / bo,
           b1 / bo, b2 / bo, so, sn, s1, s2);
    return 0;
}
