/* fl_rows.h -- the interface of the row-over-classes kernels.
 *
 * A row loss sees, for each item (a sample, or a sample at one spatial
 * position), a row of C class scores z_0 .. z_{C-1} and either an integer
 * label or a row of target weights.  The input has shape (N, C, S): class
 * c of item (n, j) is x[(n C + c) S + j]; S = 1 for (N, C) and (C,)
 * inputs, S = d1 * ... * dk for (N, C, d1, ..., dk).  Items are numbered
 * r = n S + j, the layout of the labels and of the per-item loss.
 *
 * The Cython driver (_rows.pyx) splits the N S items into fixed blocks of
 * fl_row_block_items(C, S), runs the loss's block function on each (in
 * parallel) and adds the blocks' float64 partial sums in block order, so
 * the value is the same bits for any thread count.  A block function does
 * the whole fused pass over its items: value, gradient and Hessian at once,
 * and checks every label it reads.
 *
 * Two loop orders serve every loss: S = 1 walks each contiguous row with
 * the class loop vectorized; S > 1 takes a tile of up to FL_ROW_TILE
 * positions of one sample and runs the class loop outside and the
 * positions inside (vectorized across positions, contiguous in memory),
 * with each position's running statistics in fixed-size tile arrays.
 * Neither allocates anything that grows with C: exponentials are parked in
 * the gradient buffer (which is the output anyway) or recomputed.
 */
#ifndef FL_ROWS_H
#define FL_ROWS_H

#include "fl_common.h"

/* Elements (items x classes) per block of the deterministic reduction;
 * a block holds at least one item.  Blocks, not threads, fix the
 * summation order. */
#define FL_ROW_BLOCK 16384
/* Classes summed in float lanes (T) before the partial is added in double. */
#define FL_ROW_CHUNK 256
/* Spatial positions processed together when S > 1. */
#define FL_ROW_TILE 128

/* mode: what a block writes besides the value */
#define FL_ROW_VALUE 0
#define FL_ROW_GRAD 1      /* value + gradient */
#define FL_ROW_GRAD_HESS 2 /* value + gradient + diagonal Hessian */
#define FL_ROW_HVP 3       /* Hessian-vector product into g (cross-entropy) */

/* label dtypes, read in place */
#define FL_LABEL_I64 0
#define FL_LABEL_I32 1
#define FL_LABEL_U8 2

typedef struct {
    const void *x;     /* input, N C S elements of T */
    const void *t;     /* labels (N S, of type tcode) or soft targets (like x) */
    const void *w;     /* per-class weight (C elements of T), or NULL */
    const void *v;     /* the direction of the Hessian-vector product, or NULL */
    void *g, *h;       /* gradient (or H v) and Hessian diagonal out, or NULL */
    void *l;           /* per-item loss out (N S elements), or NULL */
    void *gt;          /* gradient with respect to soft targets (like x), or
                          NULL; FL_ROW_GRAD only, by ce_soft and
                          multilabel_soft_margin */
    fl_idx C, S;       /* classes; positions per sample */
    int64_t ignore;    /* ignore_index (labels equal to it are skipped), if has_ignore */
    int has_ignore;    /* 0: no ignore_index (no label is skipped) */
    int tcode;         /* FL_LABEL_* */
    int mode;          /* FL_ROW_* */
    fl_params prm;     /* the loss's parameters, see FL_ROW_LIST */
    double wsum;       /* sum of the class weights (C without weights) */
    double gscale;     /* 1/denominator for the mean, 1 otherwise */
    const void *ra, *rb, *rw; /* per-item operands of the RL losses (N S
                          elements of T: advantages, old log-probabilities,
                          weights), or NULL; see fl_rows_rl.h */
    double *xs;        /* per-block extra sums (3 per block of xper items), or NULL */
    fl_idx xper;       /* items per block of the main pass (for xs) */
} fl_row_args;

/* Returns the block's sum of the item losses; sets *bad to the index of
 * the block's first item whose label is outside [0, C) and not ignored
 * (leave *bad at -1 when all are good).  Such items count as ignored. */
typedef double (*fl_row_block_fn)(const fl_row_args *a, fl_idx start, fl_idx n, fl_idx *bad);

/* The row losses, in kernel-id order, and the parameters each reads:
 *   ce            integer labels: pa = label smoothing, pb = Poly-1 epsilon
 *   ce_soft       soft targets t (like x): pa = label smoothing, pb = Poly-1 epsilon
 *   focal         integer labels: pa = gamma, pb = scalar alpha (w = alpha per class)
 *   nll           integer labels, input = log-probabilities
 *   multi_margin  integer labels, S = 1: pa = margin, i0 = p (1 or 2)
 *   multilabel_soft_margin  targets like x, S = 1; i1 = 1: w per element
 *                 (like x) instead of per class
 *   pg_logits     integer actions, S = 1: REINFORCE from logits, pc = entropy coefficient
 *   ppo_logits    integer actions, S = 1: PPO from logits, pa = clip_eps, pb = dual_clip, pc as pg_logits
 * labels is not a loss: its block function returns the block's sum of
 * w[label] over the labels that are not ignored (their count without w),
 * the mean's denominator, and checks the labels, before the main pass. */
#define FL_ROW_LIST(X)          \
    X(ce)                       \
    X(ce_soft)                  \
    X(focal)                    \
    X(nll)                      \
    X(multi_margin)             \
    X(multilabel_soft_margin)   \
    X(pg_logits)                \
    X(ppo_logits)               \
    X(labels)

int fl_row_nlosses(void);
const char *fl_row_name(int id);
/* The block function of loss `id` for float64 (f64=1) or float32 data on
 * the instruction-set path chosen by fl_rows_select_isa. */
fl_row_block_fn fl_row_get(int id, int f64);
/* Items per block for C classes: FL_ROW_BLOCK / C, at least 1, rounded up
 * to whole tiles when S > 1.  Depends on the shape only. */
fl_idx fl_row_block_items(fl_idx C, fl_idx S);

const char *fl_rows_select_isa(int force_baseline);
const char *fl_rows_isa_name(void);

#endif /* FL_ROWS_H */
