/* fl_trim.c -- the passes of the trimmed reduction (fl_trim.h), stamped
 * for float32 and float64 from fl_trim_body.h, and the radix selection on
 * the gathered keys.  These passes are memory-bound: they are compiled for
 * the baseline instruction set only.
 */
#include "fl_trim.h"

#if defined(__GNUC__) || defined(__clang__)
#define FL_TRIM_SIMD FL_PRAGMA(omp simd reduction(+:s, sb, sa) reduction(|:nan))
#else
#define FL_TRIM_SIMD
#endif

#define FL_TRIM_CAT_(a, b) a##_##b
#define FL_TRIM_CAT(a, b) FL_TRIM_CAT_(a, b)
#define FN(name) FL_TRIM_CAT(name, TS)

#define T float
#define TU uint32_t
#define TI int32_t
#define NB 32
#define TS f32
#include "fl_trim_body.h"
#undef T
#undef TU
#undef TI
#undef NB
#undef TS

#define T double
#define TU uint64_t
#define TI int64_t
#define NB 64
#define TS f64
#include "fl_trim_body.h"
#undef T
#undef TU
#undef TI
#undef NB
#undef TS

uint64_t fl_trim_select(uint64_t *keys, fl_idx m, fl_idx r, int shift, fl_idx *n_less, fl_idx *n_eq)
{
    fl_idx less = 0;
    fl_idx hist[FL_TRIM_BINS];
    while (shift > 0 && m > 1) {
        const int dig = shift < FL_TRIM_DIGIT ? shift : FL_TRIM_DIGIT;
        const uint64_t mask = ((uint64_t)1 << dig) - 1;
        shift -= dig;
        memset(hist, 0, sizeof(fl_idx) << dig);
        for (fl_idx i = 0; i < m; i++)
            hist[(keys[i] >> shift) & mask]++;
        uint64_t b = 0;
        fl_idx below = 0;
        while (below + hist[b] <= r) { /* r < m: the bucket exists */
            below += hist[b];
            b++;
        }
        less += below;
        r -= below;
        fl_idx j = 0;
        for (fl_idx i = 0; i < m; i++)
            if (((keys[i] >> shift) & mask) == b)
                keys[j++] = keys[i];
        m = j;
    }
    /* m == 1, or every bit is fixed: the m keys left are equal */
    *n_less = less;
    *n_eq = m;
    return keys[0];
}
