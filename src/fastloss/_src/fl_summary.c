/* fl_summary.c -- the summary-statistics pass (see fl_summary.h).
 *
 * Each block is read in chunks of FL_SUM_CHUNK values, converted to double
 * into a small buffer, then summarized by short loops that vectorize with
 * their own reductions (fl_summary_body.h); the with/without-b and
 * moments/no-moments variants are specialized by constant flags.  The
 * integer test rounds |v| < 2^52 by adding and subtracting 2^52 (no
 * conversion to an integer type, which is undefined for NaN and huge
 * values); every larger double is an integer anyway.
 */
#include "fl_summary.h"

void fl_summary_init(fl_summary *o)
{
    memset(o, 0, sizeof(*o));
    o->min = o->rmin = INFINITY;
    o->max = o->rmax = -INFINITY;
}

void fl_summary_merge(fl_summary *into, const fl_summary *from)
{
    double mn = into->min < from->min ? into->min : from->min;
    double mx = into->max > from->max ? into->max : from->max;
    double rmn = into->rmin < from->rmin ? into->rmin : from->rmin;
    double rmx = into->rmax > from->rmax ? into->rmax : from->rmax;
    double *d = (double *)into;
    const double *s = (const double *)from;
    for (int k = 0; k < FL_SUM_FIELDS; k++) d[k] += s[k];
    into->min = mn;
    into->max = mx;
    into->rmin = rmn;
    into->rmax = rmx;
}

#define FL_BODY "fl_summary_body.h"

#include "fl_stamp_isas.h"

void fl_summary_block(const fl_sum_args *p, int f64, fl_idx start, fl_idx n, fl_summary *o)
{
#if FL_HAVE_X86_V3
    static int v3 = -1;
    if (v3 < 0) v3 = fl_cpu_has_v3();
    if (v3) {
        if (f64) sum_block_f64_v3(p, start, n, o);
        else sum_block_f32_v3(p, start, n, o);
        return;
    }
#endif
    if (f64) sum_block_f64_base(p, start, n, o);
    else sum_block_f32_base(p, start, n, o);
}

#define FL_COUNT_LOOP(TYPE)                                                \
    do {                                                                   \
        const TYPE *lab = (const TYPE *)labels;                            \
        for (fl_idx i = 0; i < n; i++) {                                   \
            int64_t v = (int64_t)lab[i];                                   \
            if (v == ignore) ig++;                                         \
            else if (v >= 0 && v < C) counts[v]++;                         \
            else bad++;                                                    \
        }                                                                  \
    } while (0)

void fl_count_labels(const void *labels, int code, fl_idx n, int64_t C, int64_t ignore,
                     int64_t *counts, int64_t *n_ignored, int64_t *n_bad)
{
    int64_t ig = 0, bad = 0;
    if (code == 0) FL_COUNT_LOOP(int64_t);
    else if (code == 1) FL_COUNT_LOOP(int32_t);
    else FL_COUNT_LOOP(uint8_t);
    *n_ignored += ig;
    *n_bad += bad;
}
