/* fl_summary.h -- one pass of summary statistics for suggest/diagnose.
 *
 * fastloss.suggest and fastloss.diagnose (and check=True) look at the data
 * before a loss runs: NaN and inf counts, range, whether every value is an
 * integer, 0/1, -1/1 or in [0, 1], the first four moments, and, for rows of
 * class scores, the range of the row sums.  This kernel gathers all of it in
 * one read of the array, block by block; the Cython side (_summary.pyx) runs
 * the blocks in parallel and merges their results in block order, so the
 * figures are the same bits for any thread count.
 */
#ifndef FL_SUMMARY_H
#define FL_SUMMARY_H

#include "fl_common.h"

/* Elements per block (rounded down to whole rows when rows are summed). */
#define FL_SUM_BLOCK 32768
/* Values converted to double at a time, then summarized from L1. */
#define FL_SUM_CHUNK 256

/* What one block (or the whole array, once merged) holds.  Counts are
 * doubles so that the struct is one flat array of FL_SUM_FIELDS doubles. */
typedef struct {
    double nan, posinf, neginf;   /* counts */
    double min, max;              /* over the non-NaN values (+-inf included) */
    double n;                     /* finite values */
    double s1, s2, s3, s4;        /* sums of d^k, d = v - shift, over finite v */
    double nonint;                /* finite values that are not integers */
    double in01, is01, ispm1;     /* values in [0, 1]; equal to 0 or 1; to -1 or 1 */
    double npos;                  /* values > 0 */
    /* with a second array b (v = a - b, the residual target - input): */
    double bs1, bs2;              /* sums of (b - shift_b), squared */
    double r1, r2;                /* sums of e = |v - shift| - shift_r, e^2 */
    double br;                    /* sum of (b - shift_b) * e */
    double ba1, bar;              /* sums of |b - shift_b| and of its product with e */
    /* with rows (row > 0 elements each, contiguous): */
    double rmin, rmax;            /* the smallest and largest row sum */
    double onehot;                /* rows of 0/1 values with exactly one 1 */
} fl_summary;

#define FL_SUM_FIELDS ((int)(sizeof(fl_summary) / sizeof(double)))

typedef struct {
    const void *a, *b;   /* b may be NULL */
    fl_idx row;          /* 0: no row sums */
    int row_exp;         /* sum exp(v) per row instead of v */
    int moments;         /* 0: skip s1..s4 and the b statistics */
    double shift, shift_b, shift_r;
} fl_sum_args;

void fl_summary_init(fl_summary *o);
void fl_summary_merge(fl_summary *into, const fl_summary *from);
/* Summarize elements [start, start + n) (whole rows if row > 0). */
void fl_summary_block(const fl_sum_args *p, int f64, fl_idx start, fl_idx n, fl_summary *o);
/* Count integer labels: counts[c] += #{labels == c} for c in [0, C);
 * *n_ignored counts labels == ignore, *n_bad the others outside [0, C). */
void fl_count_labels(const void *labels, int code, fl_idx n, int64_t C, int64_t ignore,
                     int64_t *counts, int64_t *n_ignored, int64_t *n_bad);

#endif /* FL_SUMMARY_H */
