/* fl_sequence.c -- stamps out the CTC worker for float32 and float64 on
 * each instruction-set path (as fl_rows.c: baseline x86-64, and x86-64-v3
 * under a target pragma, chosen at run time), and the parts that do not
 * depend on the dtype: the label check and the workspaces.
 */
#include <stdlib.h>

#include "fl_sequence.h"

#define FL_BODY "fl_ctc_math.h"

#include "fl_stamp_isas.h"

static fl_ctc_worker_fn fl_ctc_f32 = ctc_worker_f32_base;
static fl_ctc_worker_fn fl_ctc_f64 = ctc_worker_f64_base;
static const char *fl_seq_isa = "baseline";

fl_ctc_worker_fn fl_ctc_get(int f64) { return f64 ? fl_ctc_f64 : fl_ctc_f32; }

const char *fl_sequence_select_isa(int force_baseline)
{
    fl_ctc_f32 = ctc_worker_f32_base;
    fl_ctc_f64 = ctc_worker_f64_base;
    fl_seq_isa = "baseline";
#if FL_HAVE_X86_V3
    if (!force_baseline && fl_cpu_has_v3()) {
        fl_ctc_f32 = ctc_worker_f32_v3;
        fl_ctc_f64 = ctc_worker_f64_v3;
        fl_seq_isa = FL_V3_NAME;
    }
#else
    (void)force_baseline;
#endif
    return fl_seq_isa;
}

const char *fl_sequence_isa_name(void) { return fl_seq_isa; }

int fl_ctc_check_labels(const fl_ctc_args *a, fl_idx *bad_n, fl_idx *bad_j, int64_t *bad_v)
{
    for (fl_idx n = 0; n < a->N; n++) {
        const fl_idx o = (fl_idx)a->toff[n], S = (fl_idx)a->tl[n];
        for (fl_idx j = 0; j < S; j++) {
            const int64_t k = a->t64 ? ((const int64_t *)a->tg)[o + j] : (int64_t)((const int32_t *)a->tg)[o + j];
            if (k < 0 || k >= (int64_t)a->C || k == a->blank) {
                *bad_n = n;
                *bad_j = j;
                *bad_v = k;
                return 1;
            }
        }
    }
    return 0;
}

/* sub-arrays start on 64-byte boundaries: sizes in doubles, rounded up to 8 */
#define CT_UP(n) ((((size_t)(n)) + 7u) & ~(size_t)7u)

size_t fl_ctc_work_doubles(fl_idx Tmax, fl_idx Smax, fl_idx C, int grad, int logits, fl_idx K)
{
    const size_t L = 2 * (size_t)Smax + 1;
    size_t d = CT_UP(Smax + 1)          /* lab (int64) */
               + CT_UP(Smax + 1)        /* skip */
               + CT_UP((Smax + 1) / 2)  /* rep (int32) */
               + CT_UP((C + 1) / 2)     /* mark (int32) */
               + 5 * CT_UP(L)           /* r0 r1 r2 e u */
               + CT_UP(Smax + 1)        /* acc */
               + 2 * CT_UP(L);          /* amid bmid */
    if (grad && !K) d += CT_UP((size_t)Tmax * L);
    if (grad && K) d += CT_UP(((size_t)Tmax / K + 3) * L) + CT_UP((size_t)K * L);
    if (logits) d += CT_UP(2 * (size_t)Tmax);
    return d + 8; /* room to align the start */
}

int fl_ctc_alloc(fl_ctc_work *w, int P, fl_idx Tmax, fl_idx Smax, fl_idx C, int grad, int logits, fl_idx K)
{
    const size_t L = 2 * (size_t)Smax + 1;
    const size_t nd = fl_ctc_work_doubles(Tmax, Smax, C, grad, logits, K);
    for (int i = 0; i < P; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        double *mem = (double *)malloc(nd * sizeof(double));
        if (!mem) {
            fl_ctc_free(w, i);
            return -1;
        }
        w[i].mem = mem;
        double *p = (double *)(((uintptr_t)mem + 63u) & ~(uintptr_t)63u);
#define CT_TAKE(field, type, n) \
    do {                        \
        w[i].field = (type)p;   \
        p += CT_UP(n);          \
    } while (0)
        CT_TAKE(lab, int64_t *, Smax + 1);
        CT_TAKE(skip, double *, Smax + 1);
        CT_TAKE(rep, int32_t *, (Smax + 1) / 2);
        CT_TAKE(mark, int32_t *, (C + 1) / 2);
        CT_TAKE(r0, double *, L);
        CT_TAKE(r1, double *, L);
        CT_TAKE(r2, double *, L);
        CT_TAKE(e, double *, L);
        CT_TAKE(u, double *, L);
        CT_TAKE(acc, double *, Smax + 1);
        CT_TAKE(amid, double *, L);
        CT_TAKE(bmid, double *, L);
        if (grad && !K) CT_TAKE(table, double *, (size_t)Tmax * L);
        if (grad && K) {
            CT_TAKE(table, double *, ((size_t)Tmax / K + 3) * L);
            CT_TAKE(seg, double *, (size_t)K * L);
        }
        if (logits) CT_TAKE(lse, double *, 2 * (size_t)Tmax);
#undef CT_TAKE
        for (fl_idx c = 0; c < C; c++) w[i].mark[c] = -1;
    }
    return 0;
}

void fl_ctc_free(fl_ctc_work *w, int P)
{
    for (int i = 0; i < P; i++) {
        free(w[i].mem);
        w[i].mem = NULL;
    }
}
