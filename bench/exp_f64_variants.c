/* Throughput and accuracy of float64 exp variants in AVX2 (issue 18's
 * float64 cross-entropy at small C; bench/notes-ce32-small-c.txt, part 3).
 *
 *   python bench/exp_f64_table.py > /tmp/exp_f64_table.h
 *   gcc -O2 -march=x86-64-v3 -I/tmp -o /tmp/expv bench/exp_f64_variants.c -lm && /tmp/expv
 *
 * exp4d_v3: the library's (src/fastloss/_src/fl_vmath_v3.h, included, not
 * copied): k = round(x / ln2), a degree-11 polynomial, 15 FMA-port
 * operations and a compare a vector.  tab128: Tang's method, 2^(j/128) from
 * a table by vgatherqpd with its relative tail from a second gather, a
 * degree-5 polynomial on |r| <= ln2/256 (10 FMA-port operations and a
 * compare).  tab128_notail: no tail gather (the table's rounding, up to
 * 0.5 ulp, left in).  tab256_deg4: 256 entries, degree 4, no tail (9 and a
 * compare).  Each: the best of 7 rounds of 20000 passes over 2048 values in
 * [-40, 0] (L1), ns an element; then the largest error in ulp against
 * expl() over 2e7 points x of [-708, 0] (every third of [-1, 0]), with x/2,
 * x/4 and x * 1e-9 beside each, and exp(0). */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define FL_INLINE static inline
#define FN(n) n
#define T_F32 0
#include "../src/fastloss/_src/fl_vmath_v3.h"
#include "exp_f64_table.h"

#define TANG(NAME, N, SH, TAIL, POLY)                                                                     \
    static inline __m256d NAME(__m256d x)                                                               \
    {                                                                                                   \
        const __m256d shift = _mm256_set1_pd(6755399441055744.0);                                       \
        const __m256d kd0 = _mm256_fmadd_pd(x, _mm256_set1_pd(X##N##_INVLN2N), shift);                  \
        const __m256i ki = _mm256_castpd_si256(kd0);                                                    \
        const __m256d kd = _mm256_sub_pd(kd0, shift);                                                   \
        const __m256d r = _mm256_fnmadd_pd(kd, _mm256_set1_pd(X##N##_LN2LO),                            \
                                           _mm256_fnmadd_pd(kd, _mm256_set1_pd(X##N##_LN2HI), x));      \
        const __m256i idx = _mm256_and_si256(ki, _mm256_set1_epi64x(N - 1)); /* in [0, N): in bounds */ \
        const __m256d s = _mm256_castsi256_pd(_mm256_add_epi64(                                         \
            _mm256_i64gather_epi64((const long long *)X##N##_SB, idx, 8), _mm256_slli_epi64(ki, SH)));  \
        const __m256d rt = TAIL ? _mm256_add_pd(r, _mm256_i64gather_pd(X##N##_TL, idx, 8)) : r;        \
        const __m256d r2 = _mm256_mul_pd(r, r);                                                         \
        POLY                                                                                            \
        const __m256d keep = _mm256_cmp_pd(x, _mm256_set1_pd(-708.0), _CMP_NLT_UQ);                     \
        return _mm256_and_pd(keep, _mm256_fmadd_pd(s, tmp, s));                                         \
    }
/* u = r + r^2 (1/2 + r/6 + r^2 (1/24 + r/120)) */
#define DEG5                                                                                            \
    const __m256d a = _mm256_fmadd_pd(r, _mm256_set1_pd(1.0 / 6), _mm256_set1_pd(0.5));                \
    const __m256d b = _mm256_fmadd_pd(r, _mm256_set1_pd(1.0 / 120), _mm256_set1_pd(1.0 / 24));         \
    const __m256d tmp = _mm256_fmadd_pd(r2, _mm256_fmadd_pd(r2, b, a), rt);
/* u = r + r^2 (1/2 + r/6 + r^2/24) */
#define DEG4                                                                                            \
    const __m256d a = _mm256_fmadd_pd(r, _mm256_set1_pd(1.0 / 6), _mm256_set1_pd(0.5));                \
    const __m256d tmp = _mm256_fmadd_pd(r2, _mm256_fmadd_pd(r2, _mm256_set1_pd(1.0 / 24), a), rt);

TANG(tab128, 128, 45, 1, DEG5)
TANG(tab128_notail, 128, 45, 0, DEG5)
TANG(tab256_deg4, 256, 44, 0, DEG4)

#define NX 2048
static double xs[NX], ys[NX];
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
#define BENCH(F)                                                                              \
    do {                                                                                      \
        double best = 1e9;                                                                    \
        for (int rep = 0; rep < 7; rep++) {                                                   \
            const double t0 = now();                                                          \
            for (int it = 0; it < 20000; it++) {                                              \
                for (int i = 0; i < NX; i += 4) _mm256_storeu_pd(ys + i, F(_mm256_loadu_pd(xs + i))); \
                __asm__ volatile("" ::: "memory");                                            \
            }                                                                                 \
            const double t = (now() - t0) / (20000.0 * NX) * 1e9;                             \
            if (t < best) best = t;                                                           \
        }                                                                                     \
        printf("%-15s %.3f ns/elem\n", #F, best);                                             \
    } while (0)
static double ulp_err(double y, long double ref)
{
    int e;
    frexpl(ref, &e);
    return (double)(fabsl((long double)y - ref) / ldexpl(1.0L, e - 53));
}
#define ACC(F)                                                                                  \
    do {                                                                                        \
        double mx = 0, at = 0, o[4];                                                            \
        for (long i = 0; i <= 20000000; i++) {                                                  \
            const double x = i % 3 == 1 ? -(double)i / 20000000.0 : -708.0 * (double)i / 20000000.0; \
            const double v[4] = {x, x * 0.5, x * 0.25, x * 1e-9};                               \
            _mm256_storeu_pd(o, F(_mm256_loadu_pd(v)));                                         \
            for (int q = 0; q < 4; q++) {                                                       \
                const double e = ulp_err(o[q], expl((long double)v[q]));                        \
                if (e > mx) { mx = e; at = v[q]; }                                              \
            }                                                                                   \
        }                                                                                       \
        _mm256_storeu_pd(o, F(_mm256_setzero_pd()));                                            \
        printf("%-15s max %.3f ulp (at %.17g), exp(0) = %.17g\n", #F, mx, at, o[0]);            \
    } while (0)

int main(void)
{
    for (int i = 0; i < NX; i++) xs[i] = -40.0 * ((i * 7919) % NX) / NX;
    for (int k = 0; k < 3; k++) {
        BENCH(exp4d_v3);
        BENCH(tab128);
        BENCH(tab128_notail);
        BENCH(tab256_deg4);
    }
    ACC(exp4d_v3);
    ACC(tab128);
    ACC(tab128_notail);
    ACC(tab256_deg4);
    return 0;
}
