/* fl_features.h -- the interface of the row-over-features kernels.
 *
 * Two kinds of kernel share this driver (_features.pyx):
 *
 * Row losses (fl_ft_*).  Each item is a row of D features in each of two
 * or three operands of the same shape: (anchor, positive, negative) or
 * (x1, x2), with an optional per-row target and per-row weight.  One pass
 * per row computes the distances or similarities, the loss and the
 * gradient with respect to every operand; a second pass over the same
 * rows (still in L1) writes the gradients.  Nothing grows with D.  The
 * driver splits the R rows into blocks of fl_ft_block_rows(D) rows, runs
 * the loss's block function on each (in parallel) and adds the blocks'
 * float64 partial sums in block order: the value is the same bits for
 * any thread count.
 *
 * In-batch losses (fl_bt_*).  The N x N Gram matrix S = E E^T of the
 * embeddings E (N x D) comes from NumPy's matmul (BLAS).  The kernels do
 * the rest over it: norms, mining or softmax per anchor row, and in
 * gradient mode they overwrite S in place with dL/dS, make it symmetric
 * and scale it, so that one more matmul (S E) and a row pass give the
 * gradient.  Every pass is a block function over items (rows, tile pairs
 * or column blocks) whose results do not depend on the blocking, so the
 * driver may run the blocks on any number of threads.
 */
#ifndef FL_FEATURES_H
#define FL_FEATURES_H

#include "fl_common.h"

/* Elements (rows x D) per block of the deterministic reduction; a block
 * holds at least one row. */
#define FL_FT_BLOCK 16384
/* Features summed in T lanes before the partial is added in double. */
#define FL_FT_CHUNK 256
/* Side of the square tiles of the symmetrizing pass over S. */
#define FL_BT_TILE 64
/* Columns per item of the batch-hard gradient scatter. */
#define FL_BT_COLS 32

#define FL_FT_VALUE 0
#define FL_FT_GRAD 1

/* ------------------------------------------------------------ row losses */

typedef struct {
    const void *a, *b, *c; /* operands, R x D of T each (c NULL for pairs) */
    const void *t;         /* per-row target (R of T), or NULL */
    const void *w;         /* per-row weight (R of T), or NULL */
    void *ga, *gb, *gc;    /* gradients like a, b, c (FL_FT_GRAD) */
    void *l;               /* per-row loss out (reduction="none"), or NULL */
    fl_idx D;
    fl_params prm;         /* see FL_FT_LIST */
    double gscale;         /* 1/R for the mean, 1 otherwise */
    int mode;
} fl_ft_args;

/* Returns the block's sum of w_r * loss_r; sets *bad to the first row of
 * the block whose target is not one the loss accepts (leave it at -1 when
 * all are good).  Such rows are computed as if their target were NaN. */
typedef double (*fl_ft_block_fn)(const fl_ft_args *a, fl_idx start, fl_idx n, fl_idx *bad);

/* The row losses, in kernel-id order, and the parameters each reads
 * (pa margin, pb eps, pc p, i0 flag):
 *   triplet_p2 / _p1 / _pn  PyTorch's triplet_margin_loss with p = 2, 1,
 *                           other p >= 1 (pc); i0 = swap
 *   triplet_cos             distance 1 - cos (pb = cosine eps); i0 = swap
 *   triplet_sq              distance |x - y|^2; i0 = swap
 *   contrastive_p2 / _p1 / _pn  Hadsell et al.'s pair loss over
 *                           |x1 - x2 + eps|_p; target 0/1, i0 = the
 *                           target value of a similar pair
 *   cosine_embedding        PyTorch's, target +-1
 *   cosine_distance         1 - cos(x1, x2), pb = eps
 *   gradient_penalty        WGAN-GP (|a| - pa)^2, or R1 |a|^2 (i0); one
 *                           operand (b is passed as a and not read) */
#define FL_FT_LIST(X)      \
    X(triplet_p2)          \
    X(triplet_p1)          \
    X(triplet_pn)          \
    X(triplet_cos)         \
    X(triplet_sq)          \
    X(contrastive_p2)      \
    X(contrastive_p1)      \
    X(contrastive_pn)      \
    X(cosine_embedding)    \
    X(cosine_distance)     \
    X(gradient_penalty)

/* ------------------------------------------------------- in-batch losses */

/* distances of the in-batch losses (prm.i0) */
#define FL_BT_EUCLIDEAN 0
#define FL_BT_SQEUCLIDEAN 1
#define FL_BT_COSINE 2

typedef struct {
    const void *e;        /* embeddings, N x D of T */
    void *s;              /* N x N of T (see fl_bt_*: Gram, then dL/dS); for
                             hard_mine only the rows from s0 on (a block) */
    fl_idx s0;            /* the row of S that s holds first (0: all of S) */
    const int32_t *lab;   /* N label codes, 0 .. K-1 */
    const void *w;        /* per-anchor weight (N of T), or NULL */
    double *sq;           /* N: squared norms |e_i|^2 (norms pass) */
    double *inv;          /* N: 1 / max(|e_i|, eps) (norms pass) */
    void *nt;             /* 2 N of T: sq and inv rounded to T (norms pass),
                             for the vector loops over a row of S */
    const int64_t *cstart;/* K + 1: class k's rows are cmem[cstart[k] ..
                             cstart[k + 1]) */
    const int64_t *cmem;  /* N: the rows, grouped by class, ascending */
    double *loss;         /* N: per-anchor loss (weighted) */
    double *cnt;          /* N: per-anchor count of the mean's terms */
    int64_t *pidx, *nidx; /* N: batch-hard's mined positive / negative (-1: none) */
    double *coef;         /* 8 N: batch-hard's gradient coefficients */
    double *part;         /* sym: 2 FL_BT_TILE partial row sums per tile
                             pair (NULL: not needed, cosine) */
    void *g;              /* N x D of T: the gradient (holds S E before the last pass) */
    fl_idx N, D;
    fl_params prm;        /* pa margin or temperature, pb eps, i0 distance, i1 soft */
    double gscale;        /* the mean's 1/count, or 1 */
    int mode;
} fl_bt_args;

/* Block functions over items; return a partial sum (or 0), set *bad as
 * the row kernels do.  Items are rows, except: sym runs over the tile
 * pairs (I <= J) of S in row-major order, hard_scatter over blocks of
 * FL_BT_COLS columns. */
typedef double (*fl_bt_block_fn)(const fl_bt_args *a, fl_idx start, fl_idx n, fl_idx *bad);

/* The in-batch passes, in kernel-id order:
 *   norms        sq[i] = |e_i|^2, inv[i] = 1 / max(|e_i|, eps)
 *   hard_mine    per anchor: hardest positive and negative from S, exact
 *                distances, loss, count (0/1) and coefficients
 *   hard_scatter the gradient from the mined pairs (over column blocks)
 *   all_rows     batch-all triplets per anchor: loss, count of triplets
 *                with a positive loss, and (grad) dL/dS into S's row
 *   ntxent_rows  NT-Xent per anchor: loss, positive pairs, (grad) dL/dS
 *   sym          S <- (S + S^T), column j scaled by inv[j] for the
 *                cosine, and the
 *                partial row sums of the result in part
 *   final        g_i from (S E)_i (in g), the row sums and e_i */
#define FL_BT_LIST(X) \
    X(norms)          \
    X(hard_mine)      \
    X(hard_scatter)   \
    X(all_rows)       \
    X(ntxent_rows)    \
    X(sym)            \
    X(final)

int fl_ft_nlosses(void);
const char *fl_ft_name(int id);
fl_ft_block_fn fl_ft_get(int id, int f64);
fl_idx fl_ft_block_rows(fl_idx D);

int fl_bt_npasses(void);
const char *fl_bt_name(int id);
fl_bt_block_fn fl_bt_get(int id, int f64);

const char *fl_features_select_isa(int force_baseline);
const char *fl_features_isa_name(void);

#endif /* FL_FEATURES_H */
