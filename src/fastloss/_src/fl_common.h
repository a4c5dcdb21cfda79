/* fl_common.h -- what every fastloss kernel file shares.
 *
 * - fl_idx, the index type (ptrdiff_t, the same width as Py_ssize_t).
 * - FL_INLINE: scalar loss math is always inlined into the loops, so that
 *   the per-loss flags below fold away and the loops vectorize.
 * - SIMD declarations of glibc's vector math (libmvec).  GCC calls scalar
 *   expf/logf unless it is told these vector versions exist; with the
 *   declarations (and -fno-math-errno) a loop that calls expf vectorizes.
 *   glibc's own <math.h> declares them only under -ffast-math, which we
 *   never use (it would switch denormals off for the whole Python process).
 *   Only exp and log are declared: vector log1pf/expm1f need glibc 2.35,
 *   newer than the manylinux baseline, so log1p is built from log below.
 * - The instruction-set paths: every kernel file is compiled twice, once
 *   for baseline x86-64 and once for x86-64-v3 (AVX2 + FMA), and the path is
 *   chosen once at import from the CPU (fl_dispatch.c).
 */
#ifndef FL_COMMON_H
#define FL_COMMON_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef ptrdiff_t fl_idx;

#if defined(_MSC_VER)
#  define FL_INLINE static __forceinline
#else
#  define FL_INLINE static inline __attribute__((always_inline))
#endif

#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(_M_X64))
#  define FL_HAVE_X86_V3 1
#else
#  define FL_HAVE_X86_V3 0
#endif

#if FL_HAVE_X86_V3 && defined(__GLIBC__)
#  define FL_HAVE_LIBMVEC 1
__attribute__((simd("notinbranch"))) extern float expf(float);
__attribute__((simd("notinbranch"))) extern float logf(float);
__attribute__((simd("notinbranch"))) extern double exp(double);
__attribute__((simd("notinbranch"))) extern double log(double);
#else
#  define FL_HAVE_LIBMVEC 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#  define FL_PRAGMA(x) _Pragma(#x)
#  define FL_SIMD_SUM(s, b) FL_PRAGMA(omp simd reduction(+:s) reduction(|:b))
#else /* MSVC: its /openmp is OpenMP 2.0, without simd; the loops still
          auto-vectorize where they can */
#  define FL_PRAGMA(x)
#  define FL_SIMD_SUM(s, b)
#endif

#if defined(_MSC_VER) && !defined(__cplusplus) && !defined(restrict)
#  define restrict __restrict
#endif

/* Does this CPU run the x86-64-v3 kernels?  (AVX2, FMA, BMI2, F16C, MOVBE:
 * what GCC's arch=x86-64-v3 may use.)  Always 0 where they are not built. */
#define FL_V3_NAME "x86-64-v3 (AVX2, FMA)"
static inline int fl_cpu_has_v3(void)
{
#if FL_HAVE_X86_V3
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("f16c") &&
           __builtin_cpu_supports("movbe");
#else
    return 0;
#endif
}

/* The parameters a pointwise loss may take (delta, beta, quantile, eps,
 * alpha, gamma, full, ...).  Each loss documents which fields it reads. */
typedef struct {
    double pa, pb, pc;
    int i0, i1;
} fl_params;

#define FL_LN2 0.69314718055994530942
#define FL_HALF_LOG_2PI 0.91893853320467274178

#endif /* FL_COMMON_H */
