/* fl_pointwise.h -- the interface of the pointwise kernels.
 *
 * A pointwise loss is l_i = w_i * f(x_i, y_i[, e_i]).  The Cython driver
 * (_pointwise.pyx) splits the n elements into fixed blocks of FL_PW_BLOCK,
 * runs the loss's block function on each (in parallel), and adds the
 * blocks' float64 partial sums in block order, so the value is the same
 * bits for any thread count.  A block function does the whole fused pass
 * over its slice: value, gradient and Hessian at once.
 */
#ifndef FL_POINTWISE_H
#define FL_POINTWISE_H

#include "fl_common.h"

/* Elements per block of the deterministic reduction.  Blocks, not threads,
 * fix the summation order. */
#define FL_PW_BLOCK 8192
/* Elements summed in float lanes before the partial is added in double:
 * a double accumulator inside a float `omp simd` loop does not vectorize
 * with GCC 12, so each chunk is summed in T and chunks are added in double. */
#define FL_PW_CHUNK 256

/* mode: what the block writes besides the value */
#define FL_MODE_VALUE 0
#define FL_MODE_GRAD 1      /* value + gradient */
#define FL_MODE_GRAD_HESS 2 /* value + gradient + diagonal Hessian */

typedef struct {
    const void *x, *y;   /* input, target: n elements */
    const void *w;       /* per-element weight, or NULL */
    const void *e;       /* the loss's extra operand (var, pos_weight), or NULL */
    fl_idx e_period;     /* e is read as e[i % e_period] */
    void *g, *h;         /* gradient and Hessian out, or NULL */
    void *l;             /* per-element loss out (reduction="none"), or NULL */
    void *g2;            /* gradient with respect to e: required in
                            FL_MODE_GRAD by losses that have one, never
                            written in FL_MODE_GRAD_HESS */
    void *gt;            /* gradient with respect to y (the target), or
                            NULL: written in FL_MODE_GRAD by losses that
                            have one (HAS_GY below), in the same pass */
    fl_params prm;
    double gscale;       /* 1/n for the mean, 1 otherwise */
    int mode;
    int acc;             /* nonzero: add into g (and h, g2) instead of
                            writing them (a weighted term of a sum of
                            losses); modes GRAD and GRAD_HESS, without l
                            and gt */
    const void *e2;      /* a second elementwise operand (td: dones), or NULL */
    double *xs;          /* per-block extra sums (ppo_stats: 2 per block), or NULL */
} fl_pw_args;

/* Returns the block's sum of w_i * f_i; sets *bad to nonzero if an element
 * violated the loss's domain (e.g. a probability outside [0, 1]). */
typedef double (*fl_pw_block_fn)(const fl_pw_args *a, fl_idx start, fl_idx n, int *bad);

/* The pointwise losses, in kernel-id order: (name, extra operand, grad of e,
 * grad of y).  extra: 0 none, 1 elementwise and required, 2 periodic and
 * optional.  grad of y: the loss gives d/dy (PyTorch differentiates its
 * target; the Python layer asks for it only then). */
#define FL_PW_LIST(X)              \
    X(mse, 0, 0, 1)                \
    X(l1, 0, 0, 1)                 \
    X(huber, 0, 0, 1)              \
    X(smooth_l1, 0, 0, 1)          \
    X(log_cosh, 0, 0, 1)           \
    X(quantile, 0, 0, 1)           \
    X(poisson_log, 0, 0, 1)        \
    X(poisson_log_full, 0, 0, 1)   \
    X(poisson, 0, 0, 1)            \
    X(poisson_full, 0, 0, 1)       \
    X(gaussian_nll, 1, 1, 1)       \
    X(bce, 0, 0, 1)                \
    X(bce_logits, 2, 0, 1)         \
    X(sigmoid_focal, 0, 0, 0)      \
    X(sigmoid_focal_g2, 0, 0, 0)   \
    X(hinge, 0, 0, 0)              \
    X(squared_hinge, 0, 0, 0)      \
    X(soft_margin, 0, 0, 0)        \
    X(kl_div, 0, 0, 1)             \
    X(kl_div_log, 0, 0, 1)         \
    X(gamma_nll, 0, 0, 0)          \
    X(tweedie, 0, 0, 0)            \
    X(tweedie0, 0, 0, 0)           \
    X(tweedie1, 0, 0, 0)           \
    X(pseudo_huber, 0, 0, 0)       \
    X(fair, 0, 0, 0)               \
    X(cauchy, 0, 0, 0)             \
    X(tukey_biweight, 0, 0, 0)     \
    X(expectile, 0, 0, 0)          \
    X(mape, 0, 0, 0)               \
    X(msle, 0, 0, 0)               \
    X(margin_ranking, 1, 1, 0)     \
    X(hinge_embedding, 0, 0, 0)    \
    X(gaussian_kl, 0, 0, 1)        \
    X(gan_logistic, 0, 0, 0)       \
    X(gan_softplus, 0, 0, 0)       \
    X(gan_square, 0, 0, 0)         \
    X(gan_linear, 0, 0, 0)         \
    X(gan_relu, 0, 0, 0)           \
    X(policy_gradient, 0, 0, 0)    \
    X(ppo_clip, 1, 0, 0)           \
    X(value_clip, 1, 0, 0)

/* The pointwise losses with hand-written block functions
 * (fl_pointwise_rl.h), after those of FL_PW_LIST in kernel-id order: PPO
 * with its clip fraction and approximate KL as block sums, and the TD(0)
 * loss with its target formed in the pass; gan_sp, gan_softplus with its
 * x86-64-v3 float32 loop hand-vectorized (fl_pointwise_v3.h). */
#define FL_PW_LIST_RL(X)           \
    X(ppo_stats)                   \
    X(td)                          \
    X(gan_sp)

int fl_pw_nlosses(void);
const char *fl_pw_name(int id);
/* 1 if loss `id` writes the gradient with respect to y (gt) */
int fl_pw_has_target_grad(int id);
/* The block function of loss `id` for float64 (f64=1) or float32 data on
 * the instruction-set path chosen by fl_select_isa. */
fl_pw_block_fn fl_pw_get(int id, int f64);

/* Choose the instruction-set path: the best the CPU has, or the baseline
 * when force_baseline is nonzero.  Returns the name of the path taken. */
const char *fl_select_isa(int force_baseline);
const char *fl_isa_name(void);
int fl_have_v3_build(void);
/* For the accuracy tests: y = exp_np(x) (which = 0) or log1p01(x) (1) on
 * the chosen instruction-set path. */
void fl_pw_vmath(int which, int f64, const void *x, void *y, fl_idx n);

#endif /* FL_POINTWISE_H */
