/* fl_trim.h -- the trimmed reduction: which elements of a per-element loss
 * array are kept, found by an O(N) radix selection on the values' bits, and
 * the masked, weighted sum over them.
 *
 * Order: the elements are ranked as a stable sort of the loss values would
 * rank them (np.argsort(l, kind="stable")): by value, ties by index, -0
 * equal to +0, every NaN above +inf.  Trimming drops the k_lo lowest and
 * the k_hi highest ranks.
 *
 * Keys: each value is mapped to an unsigned integer of its width whose
 * order is the values' order (the sign bit flipped for positive values,
 * all bits for negative ones; -0 as +0; NaN to the largest key).  The key
 * of a rank is found by a most-significant-digit radix selection: a
 * histogram of the top 11 bits over all elements (in parallel, one
 * histogram per thread: counts, so the result does not depend on the
 * thread count), then the elements of the bucket holding the rank are
 * gathered and refined 11 bits at a time over that (usually small) set.
 * No sort, no data movement of the full array: two reads of it.
 *
 * The kept set is then {key(Klo) < key < key(Khi)} plus, among the elements
 * whose key equals a boundary key, those at the right ranks in index order:
 * fl_trim_plan says how many, and a tie count per block (only when a
 * boundary value is shared by elements on both sides of it) tells each
 * block where its ties start.
 */
#ifndef FL_TRIM_H
#define FL_TRIM_H

#include "fl_common.h"

/* Elements per block of the apply pass's deterministic sum (as the
 * pointwise driver's FL_PW_BLOCK, so an untrimmed sum adds the same chunk
 * sums in the same order as the loss's own reduction). */
#define FL_TRIM_BLOCK 8192
#define FL_TRIM_CHUNK 256
/* bits of the first (and each further) radix digit */
#define FL_TRIM_DIGIT 11
#define FL_TRIM_BINS (1 << FL_TRIM_DIGIT)

typedef struct {
    uint64_t klo, khi;    /* boundary keys: kept keys are in [klo, khi] */
    double lo, hi;        /* their values (-inf / +inf where a side is not trimmed) */
    fl_idx drop_lo_eq;    /* the first drop_lo_eq elements of key klo (index order) are dropped */
    fl_idx keep_hi_eq;    /* of key khi, only the first keep_hi_eq are kept */
    int split;            /* 0: every element of a boundary key is kept: the kept set is the
                             value range [lo, hi] (a vector loop of comparisons); 1: the ties
                             at a boundary are counted in index order (a scalar loop on keys) */
    int all;              /* nothing is trimmed */
    int winsor;           /* winsorize: a dropped element counts as the boundary value of its
                             side (its weight summed per side), instead of 0 */
} fl_trim_plan;

/* hist[d] += number of l[0..n) whose key has top digit d */
void fl_trim_hist_f32(const float *l, fl_idx n, fl_idx *hist);
void fl_trim_hist_f64(const double *l, fl_idx n, fl_idx *hist);

/* Write to out0 (a 64-bit key each) the keys of l[0..n) whose top digit is
 * d0, and to out1 those of top digit d1 (one pass; out1 may be NULL);
 * *c0, *c1: how many.  Each out needs one slot more than it receives. */
void fl_trim_gather_f32(const float *l, fl_idx n, uint32_t d0, uint32_t d1, uint64_t *out0, uint64_t *out1,
                        fl_idx *c0, fl_idx *c1);
void fl_trim_gather_f64(const double *l, fl_idx n, uint32_t d0, uint32_t d1, uint64_t *out0, uint64_t *out1,
                        fl_idx *c0, fl_idx *c1);

/* The key of rank r (0-based) among keys[0..m), all of which share the
 * bits above bit `shift`; keys is reordered and overwritten.  *n_less and
 * *n_eq: how many keys are below and equal to it. */
uint64_t fl_trim_select(uint64_t *keys, fl_idx m, fl_idx r, int shift, fl_idx *n_less, fl_idx *n_eq);

/* The number of elements of l[0..n) whose key is klo, and khi. */
void fl_trim_ties_f32(const float *l, fl_idx n, uint64_t klo, uint64_t khi, fl_idx *c_lo, fl_idx *c_hi);
void fl_trim_ties_f64(const double *l, fl_idx n, uint64_t klo, uint64_t khi, fl_idx *c_lo, fl_idx *c_hi);

/* One block of the apply pass over elements [0, n) of the arrays given:
 *   kept:    lo[i] = w_i l_i (if lo), g[i] = gscale w_i g[i], h[i] likewise
 *   dropped: lo[i] = g[i] = h[i] = 0, or NaN if its loss or weight is NaN
 * w may be NULL (1); g, h, lo may be NULL; lo may be l itself.  tie_lo,
 * tie_hi: how many elements of key klo / khi come before this block (used
 * when plan->split).  Returns the float64 sum of w_i l_i over the kept
 * elements (summed in chunks of FL_TRIM_CHUNK in T, as the pointwise
 * driver); *nan |= 1 if a loss value or a weight is NaN.  Winsorizing
 * (plan->winsor), a dropped element counts as lo or hi in the sum (w_i lo,
 * w_i hi; lo[i] = 0: its share belongs to the boundary element) and *w_lo,
 * *w_hi receive the summed weights of the elements below and above: the
 * driver completes the boundary elements' lo[], g and h. */
double fl_trim_apply_f32(const float *l, float *g, float *h, const float *w, float *lo, fl_idx n,
                         const fl_trim_plan *plan, fl_idx tie_lo, fl_idx tie_hi, double gscale, int *nan,
                         double *w_lo, double *w_hi);
double fl_trim_apply_f64(const double *l, double *g, double *h, const double *w, double *lo, fl_idx n,
                         const fl_trim_plan *plan, fl_idx tie_lo, fl_idx tie_hi, double gscale, int *nan,
                         double *w_lo, double *w_hi);

/* The index of the j-th (0-based, in index order) element of l[0..n) of key
 * `key`, or -1 (the boundary element of a winsorized side). */
fl_idx fl_trim_find_f32(const float *l, fl_idx n, uint64_t key, fl_idx j);
fl_idx fl_trim_find_f64(const double *l, fl_idx n, uint64_t key, fl_idx j);

/* The key of a value (for tests and the driver), and the value of a key. */
uint64_t fl_trim_key_f32(float v);
uint64_t fl_trim_key_f64(double v);
double fl_trim_value_f32(uint64_t k);
double fl_trim_value_f64(uint64_t k);

#endif /* FL_TRIM_H */
