/* fl_overlap.h -- the interface of the set-overlap kernels.
 *
 * A set-overlap loss is a function of sums over a set (the whole batch, or
 * one image), so it takes two passes: the sums, then the gradient, whose
 * per-element coefficients come from the sums.  Three families share this
 * driver:
 *
 * 1. Segmentation overlap (Dice, Jaccard, Tversky, and the fused BCE+Dice
 *    and CE+Dice).  The input has shape (N, C, S): class c of pixel s of
 *    image n is x[(n C + c) S + s].  Pass 1 (fl_seg_sums) adds, per image
 *    and class, over a block of pixels: the predicted mass Sp = sum p, the
 *    target mass St = sum t, the soft intersection I = sum min(p, t), the
 *    cross-entropy term and the count of elements that are not ignored.
 *    p is sigmoid(x) (elementwise modes), softmax over the classes
 *    (multiclass), or x itself (from_logits = 0).  The driver adds the
 *    blocks' float64 sums in block order, so the sums are bit-identical for
 *    any thread count.  fl_seg_coefs turns the sums into the loss of each
 *    set and, per set and class, the two coefficients of the gradient:
 *    dL/dp = a + b dI/dp (dI/dp = [p < t] + [p = t]/2).  Pass 2
 *    (fl_seg_grad) recomputes p (no array of the input's size is stored)
 *    and writes dL/dx through the sigmoid or the softmax.
 *
 * 2. Lovasz (Berman et al. 2018): per set and class, the errors are sorted
 *    (a stable LSD radix sort on the float bits, in C; tasks in parallel
 *    over sets and classes) and the Lovasz extension of the Jaccard loss
 *    is their dot product with the paper's lovasz_grad weights; its
 *    subgradient is those weights put back at each pixel.
 *
 * 3. Box IoU losses (IoU, GIoU, DIoU, CIoU, torchvision's formulas):
 *    elementwise over pairs of boxes (x1, y1, x2, y2), value and both
 *    gradients in one pass, block sums in block order.  They live here
 *    because DESIGN.md puts them in the set-overlap shape (an IoU is a
 *    ratio of areas, as a soft Jaccard is a ratio of sums) and they need
 *    no driver of their own: one block loop, the same extension module.
 */
#ifndef FL_OVERLAP_H
#define FL_OVERLAP_H

#include "fl_common.h"

/* Elements (pixels x classes) per block of the segmentation sums; a block
 * holds whole tiles of one image.  Blocks, not threads, fix the order. */
#define FL_OV_BLOCK 16384
/* Pixels processed together (softmax statistics in tile arrays). */
#define FL_OV_TILE 128
/* Sums kept per (set, class): */
#define FL_OV_K 5
#define FL_OV_SP 0   /* sum p */
#define FL_OV_ST 1   /* sum t */
#define FL_OV_I 2    /* sum min(p, t) */
#define FL_OV_CE 3   /* sum of the cross-entropy terms (BCE per element; CE at the label's class) */
#define FL_OV_CNT 4  /* elements (sigmoid) or pixels at their label's class (softmax) not ignored */

/* target codes: integer labels (N S) read in place, or a dense T target */
#define FL_OV_I64 0
#define FL_OV_I32 1
#define FL_OV_U8 2
#define FL_OV_DENSE 3

/* Box pairs per block of the box losses. */
#define FL_BOX_BLOCK 4096

typedef struct {
    const void *x;     /* input (N, C, S) of T */
    const void *t;     /* labels (N S) or a dense target (N C S) of T */
    void *g;           /* gradient out (N C S), or NULL */
    fl_idx N, C, S;
    int tcode;         /* FL_OV_* */
    int softmax;       /* 1: classes are exclusive (softmax / probabilities over C) */
    int from_logits;   /* 1: p = sigmoid(x) or softmax(x); 0: p = x */
    int has_ignore;    /* labels (or dense target values) equal to ignore are skipped */
    int64_t ignore;
    int per_image;     /* sets are images (coef indexed by n) or the batch */
    int with_ce;       /* pass 1 also sums the cross-entropy term */
    int accumulate;    /* pass 2 adds dL/dx into g instead of writing it (fastloss.CombinedLoss) */
    const double *coef; /* pass 2: per (set, class) [a, b, ce]; see fl_seg_coefs */
} fl_seg_args;

/* Pass 1 on image n, pixels [s0, s0 + ns): adds the FL_OV_K sums of each
 * class into acc[c * FL_OV_K + k] (acc zeroed by the caller).  scratch
 * holds C * FL_OV_TILE T's.  Returns the flat index of the first bad
 * target (a label outside [0, C) that is not ignored, or a dense value
 * outside [0, 1] that is not ignored), or -1. */
typedef fl_idx (*fl_seg_sums_fn)(const fl_seg_args *a, fl_idx n, fl_idx s0, fl_idx ns,
                                 double *acc, void *scratch);
/* Pass 2 on the same block: writes g. */
typedef void (*fl_seg_grad_fn)(const fl_seg_args *a, fl_idx n, fl_idx s0, fl_idx ns, void *scratch);

/* The parameters of a segmentation loss, for fl_seg_coefs. */
typedef struct {
    double alpha, beta;  /* Tversky weights of false positives and negatives (Dice 0.5, 0.5; Jaccard 1, 1) */
    double gamma;        /* the power of the aggregated loss (focal Tversky); 1 otherwise */
    double smooth, eps;
    int log_loss;        /* -log(max(score, eps)) instead of 1 - score */
    double overlap_w;    /* weight of the overlap term (1, or dice_weight) */
    double ce_w;         /* weight of the mean cross-entropy term (0 without) */
    double set_scale;    /* 1 / (number of sets) for reduction="mean", else 1 */
} fl_seg_params;

/* From sums[set][c][FL_OV_K] (nsets sets, C classes): the loss of each set
 * into loss[set], and per set and class the gradient coefficients
 * coef[(set C + c) 3 + {0, 1, 2}] = (a, b, ce) with
 *   dL/dp = a + b dI/dp  and, for the cross-entropy term, dL/dx += ce (p - t).
 * w: per-class weights (or NULL); sel: 1 for the classes that count (NULL:
 * all).  A class with no target mass and smooth = 0 has a score of 0
 * whatever the prediction: it is dropped (loss 0, no gradient), as
 * segmentation_models_pytorch does; with smooth > 0 it counts.
 * terms (or NULL): per set, the two terms unweighted, terms[2 set] = the
 * overlap loss agg^gamma and terms[2 set + 1] = the mean cross-entropy
 * (fastloss.CombinedLoss reports them). */
void fl_seg_coefs(const double *sums, fl_idx nsets, fl_idx C, const double *w, const unsigned char *sel,
                  const fl_seg_params *p, double *loss, double *coef, double *terms);

/* ---------------------------------------------------------------- Lovasz */

typedef struct {
    const void *x;      /* input: logits (N, S) for the hinge, (N, C, S) for the softmax */
    const void *t;      /* hinge: dense 0/1 target (N S) of T; softmax: labels (N S) */
    void *g;            /* gradient out, or NULL */
    fl_idx N, C, S;
    int tcode;
    int from_logits;    /* softmax: 1 = softmax(x), 0 = x are probabilities */
    int has_ignore;
    int64_t ignore;
    int per_image;
    int classes_mode;   /* 0 present, 1 all, 2 the listed ones (sel) */
    const unsigned char *sel;
} fl_lovasz_args;

/* The bytes of scratch one thread needs for tasks of up to n elements
 * (keys, indices and the radix sort's second buffer, then C tiles of the
 * softmax).  Indices are 31 bits (the fg flag is the 32nd):
 * the caller keeps N C S < 2^31. */
size_t fl_lovasz_scratch_bytes(fl_idx n, fl_idx C, int f64);
/* The first bad target among items [i0, i0 + n) (labels, or the hinge's
 * 0/1 targets), or -1; the driver runs it before anything is written. */
typedef fl_idx (*fl_lovasz_check_fn)(const fl_lovasz_args *a, int hinge, fl_idx i0, fl_idx n);
/* Softmax pass (gradient calls): g = softmax(x) over the classes for the
 * pixels [s0, s0 + ns) of image n; returns the first bad label, or -1. */
typedef fl_idx (*fl_lovasz_prob_fn)(const fl_lovasz_args *a, fl_idx n, fl_idx s0, fl_idx ns,
                                   void *scratch);
/* One task: the set `set` and class c (c = 0 for the hinge).  Sorts the
 * errors, returns the task's loss and sets *counted (1 if the task counts
 * in its set's mean over classes); with g, replaces the set's channel of g
 * (softmax: the parked probabilities) by dL/dp (softmax) or dL/dx (hinge),
 * times gscale.  Returns NaN and sets *bad for a bad target. */
typedef double (*fl_lovasz_task_fn)(const fl_lovasz_args *a, fl_idx set, fl_idx c, void *scratch,
                                    double gscale, int *counted, fl_idx *bad);
/* Softmax back-propagation: g (holding dL/dp) becomes dL/dx for the pixels
 * [s0, s0 + ns) of image n; scale[n or 0] multiplies each set's gradient. */
typedef void (*fl_lovasz_back_fn)(const fl_lovasz_args *a, fl_idx n, fl_idx s0, fl_idx ns,
                                  const double *scale, void *scratch);

/* ---------------------------------------------------------------- boxes */

#define FL_BOX_IOU 0
#define FL_BOX_GIOU 1
#define FL_BOX_DIOU 2
#define FL_BOX_CIOU 3

typedef struct {
    const void *b1, *b2; /* (n, 4) of T */
    void *g1, *g2;       /* gradients (n, 4), or NULL */
    void *l;             /* per-pair loss (n), or NULL */
    double eps;
    double gscale;
} fl_box_args;

typedef double (*fl_box_block_fn)(const fl_box_args *a, fl_idx start, fl_idx n);

/* ---------------------------------------------------------------- tables */

typedef struct {
    fl_seg_sums_fn seg_sums;
    fl_seg_grad_fn seg_grad;
    fl_lovasz_check_fn lovasz_check;
    fl_lovasz_prob_fn lovasz_prob;
    fl_lovasz_task_fn lovasz_hinge;
    fl_lovasz_task_fn lovasz_softmax;
    fl_lovasz_back_fn lovasz_back;
    fl_box_block_fn box[4];
} fl_ov_table;

const fl_ov_table *fl_ov_get(int f64);
/* Pixels per block for C classes and S pixels per image (whole tiles). */
fl_idx fl_ov_block_pixels(fl_idx C, fl_idx S);
const char *fl_ov_select_isa(int force_baseline);
const char *fl_ov_isa_name(void);

#endif /* FL_OVERLAP_H */
