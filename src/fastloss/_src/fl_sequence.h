/* fl_sequence.h -- the interface of the sequence kernels: dynamic
 * programming over time (CTC).
 *
 * Input element (t, n, c) -- time t, sample n, class c -- sits at
 * x[t st + n sn + c]: st = N C, sn = C for PyTorch's (T, N, C); st = C,
 * sn = T C for batch-first (N, T, C).  The gradient has the input's layout.
 * Sample n uses the times t < il[n] and its target labels
 * tg[toff[n] .. toff[n] + tl[n]) (a padded (N, S) array or PyTorch's
 * concatenated 1-D form: only the offsets differ).
 *
 * The Cython driver (_sequence.pyx) checks every label first
 * (fl_ctc_check_labels: nothing is written when one is bad), allocates one
 * workspace per thread (fl_ctc_alloc), and runs the worker of the chosen
 * dtype and instruction set on every thread of one parallel region
 * (fl_ctc_get): the worker takes its share of the samples by its thread
 * number and synchronizes with OpenMP barriers.  Every sample's loss goes
 * to nll[n] (float64); the driver adds them in sample order, so the value
 * is the same bits for any thread count.  See fl_ctc_math.h for the
 * recursion, the split of one sample over two threads and the memory.
 */
#ifndef FL_SEQUENCE_H
#define FL_SEQUENCE_H

#include "fl_common.h"

typedef struct {
    const void *x;          /* log-probabilities (or logits), T x N x C elements of the dtype */
    void *g;                /* gradient out (the input's layout), or NULL: value only */
    fl_idx Tlen, N, C;       /* time steps, samples, classes */
    fl_idx st, sn;          /* strides of t and n, in elements (a class row is contiguous) */
    const void *tg;         /* target labels, int64 (t64 = 1) or int32 */
    int t64;
    const int64_t *toff;    /* N: offset of sample n's first label in tg */
    const int64_t *il;      /* N: input lengths, 0 <= il[n] <= T (checked by the caller) */
    const int64_t *tl;      /* N: target lengths, >= 0, within tg (checked by the caller) */
    int64_t blank;          /* in [0, C) (checked by the caller) */
    int logits;             /* x holds logits: log_softmax over C is fused, the gradient is d/dlogits */
    const double *gs;       /* N: scale of sample n's gradient (the reduction's) */
    fl_idx K;               /* 0: keep the whole alpha/beta table; else every K-th row (checkpoints) */
    double *nll;            /* N out: -log p(target | x) of each sample (+inf if no alignment) */
} fl_ctc_args;

/* Scratch of one thread: the current sample's extended labels and rows,
 * and the table and vectors that the two threads of a split sample share
 * (those of the even thread of the pair are used).  All sized for the
 * longest sample of the call: Tmax = max il, Smax = max tl, L = 2 Smax + 1. */
typedef struct {
    /* the current sample */
    fl_idx n, Tn, S, L, m;  /* sample, input length, target length, 2 S + 1, midpoint time */
    int64_t *lab;           /* S: the target labels */
    double *skip;           /* S + 1: 1 where label j may be entered from label j - 1 (skipping a blank) */
    int32_t *rep;           /* S: index of the first label equal to label j */
    int repeats;            /* some label occurs twice (rep[j] != j somewhere) */
    int32_t *mark;          /* C: -1, or the first position of class c while rep is built */
    double *r0, *r1, *r2;   /* L each: rows of the recursions */
    double *e;              /* L: emissions log y_t(l'_s) of one time step */
    double *u;              /* L: log(alpha beta) of one time step */
    double *acc;            /* S + 1: occupancy of the blank and of each distinct label */
    /* shared by the pair (the even thread's) */
    double *table;          /* Tmax x L: rows of alpha (t <= m) and beta (t > m); with
                               checkpoints Tmax / K + 2 rows; or NULL (value only) */
    double *seg;            /* K x L: the rows recomputed from a checkpoint (own), or NULL */
    double *amid, *bmid;    /* L each: alpha at m, beta-before-emission at m */
    double *lse;            /* 2 Tmax: max and log-sum of each logit row (logits only) */
    double *mem;            /* the one allocation everything above lives in */
} fl_ctc_work;

/* The first label (in sample order, then position) outside [0, C) or equal
 * to blank: returns 1 and sets *bad_n, *bad_j, *bad_v; 0 if all are good. */
int fl_ctc_check_labels(const fl_ctc_args *a, fl_idx *bad_n, fl_idx *bad_j, int64_t *bad_v);

/* Workspaces for P threads; grad: keep the alpha/beta table (all of it
 * for K = 0, checkpoints every K rows and a K-row segment otherwise).  0
 * on success, -1 when out of memory (then nothing is left allocated). */
int fl_ctc_alloc(fl_ctc_work *w, int P, fl_idx Tmax, fl_idx Smax, fl_idx C, int grad, int logits, fl_idx K);
void fl_ctc_free(fl_ctc_work *w, int P);
/* Doubles per workspace, for the documentation and the tests. */
size_t fl_ctc_work_doubles(fl_idx Tmax, fl_idx Smax, fl_idx C, int grad, int logits, fl_idx K);

/* The worker: thread tid of a team of nthr (<= the P workspaces) does its
 * share of every sample.  Every thread of the team must call it. */
typedef void (*fl_ctc_worker_fn)(const fl_ctc_args *a, fl_ctc_work *w, int tid, int nthr);
fl_ctc_worker_fn fl_ctc_get(int f64);

const char *fl_sequence_select_isa(int force_baseline);
const char *fl_sequence_isa_name(void);

#endif /* FL_SEQUENCE_H */
