/* fl_ctc_math.h -- CTC: the forward-backward recursion of one sample, and
 * the worker that shares the samples (and the halves of a sample) among
 * the threads.
 *
 * Included by fl_sequence.c once per (dtype, instruction set), with T, TS,
 * FN(n), EXP as fl_stamp.h sets them.  The recursion always runs in double
 * (float32 data included); only reading the input and writing the gradient
 * use T.  No include guard, on purpose.
 *
 * The recursion.  Over the extended labels l' = (blank, l_1, blank, ...,
 * l_S, blank), s = 0 .. L - 1, L = 2 S + 1, with e_t(s) = log y_t(l'_s) the
 * log-probability of state s's class at time t, all in log space:
 *     A_t(s)  = e_t(s) + Apre_t(s)
 *     Apre_t(s) = lse(A_{t-1}(s), A_{t-1}(s-1), [A_{t-1}(s-2)])
 *     B_t(s)  = e_t(s) + Bpre_t(s)
 *     Bpre_t(s) = lse(B_{t+1}(s), B_{t+1}(s+1), [B_{t+1}(s+2)])
 * where the bracketed term (the skip) exists when l'_s (for A; l'_{s+2}
 * for B) is a label different from the label two states before it.  A
 * virtual row A_{-1} = (0, -inf, ...) and B_{Tn} = (-inf, ..., 0) start
 * them.  A_t(s) + Bpre_t(s) = Apre_t(s) + B_t(s) is the log of the total
 * probability of the alignments in state s at time t, so for every t
 *     log p = lse_s (A_t(s) + Bpre_t(s))
 * and the exact gradient of -log p with respect to the log-probability of
 * class k at time t is -sum over s with l'_s = k of exp(A_t(s) + Bpre_t(s)
 * - log p): zero for classes the target does not use.  Writing the
 * occupancy with one side taken before its emission never subtracts a
 * log-probability, so a class with log-probability -inf gives an
 * occupancy of exactly 0, never -inf - (-inf) (PyTorch's NaN).  With
 * logits, e_t(s) = (z - max) - log sum exp(z - max) of the row and the
 * gradient with respect to the logits is p_t(k) minus the occupancy of k.
 *
 * A row stores the S + 1 blank states, then the S label states (see
 * ct_alpha): a blank state has two predecessors, a label state three.
 *
 * lse of three terms takes the largest out: m + log(1 + exp(mid - m) +
 * exp(lo - m)): two exps and a log, inline (ct_exp_core, ct_log13) so the
 * loop over s vectorizes in double lanes; -inf terms give -inf, a NaN
 * term gives NaN.
 *
 * The two halves.  With the midpoint m = (Tn - 1) / 2, a sample runs in
 * two phases:
 *     1. front: A_0 .. A_m, each row stored in the table;
 *        back:  B_{Tn-1} .. B_{m+1}, stored, and Bpre_m;
 *        then log p = lse_s(A_m(s) + Bpre_m(s)).
 *     2. front: A_{m+1} .. A_{Tn-1} again from A_m, and the gradient of
 *        each t > m from Apre_t and the stored B_t;
 *        back:  Bpre_m .. Bpre_0, and the gradient of each t <= m from
 *        the stored A_t and Bpre_t.
 * Each of the four parts is half a sweep.  One thread runs them in
 * sequence (2 sweeps in all, as alpha then beta); for a batch smaller than
 * the team, two threads run front and back at the same time, meet at a
 * barrier, and run phase 2 at the same time: both cores busy for N = 1.
 * Every number is computed by the same code from the same inputs either
 * way, so the result is the same bits for any thread count.
 *
 * Memory.  The table holds Tn rows of L doubles (alpha for t <= m, beta
 * for t > m): 8 Tmax (2 Smax + 1) bytes for each thread (only the even
 * thread's is touched when a sample is split), where Tmax and Smax are the
 * call's longest input and target; no T x N x C temporary, nothing that
 * grows with N.  Beyond a budget (32 MiB a thread, _sequence.pyx) the
 * table keeps every K-th row only, K = ceil(sqrt(Tmax)), and phase 2
 * recomputes K rows at a time from those checkpoints into a K-row segment
 * (ct_front2, ct_back2): 8 (Tmax / K + K + 3) (2 Smax + 1) bytes a thread
 * for about a third more work, and the same bits.  A value-only call keeps
 * no table: a few rows of L.  Logits add two doubles per time step (the
 * row's max and log-sum).
 */

#include "fl_vmath.h"

#define CT_NEG (-INFINITY)

/* exp(x) = 2^k exp(r), |r| <= ln2/2, k = round(x / ln2); exp(r) by a
 * degree-11 polynomial fitted by Chebyshev interpolation (mpmath's
 * chebyfit on [-ln2/2, ln2/2]): 1.7e-17 relative with its coefficients
 * rounded to double; p(0) = 1 exactly.  Estrin's form.  Valid for
 * |x| <= 708; see the callers for what happens outside. */
FL_INLINE double FN(ct_exp_core)(double x)
{
    const double magic = 6755399441055744.0; /* 1.5 * 2^52: the add rounds to an integer */
    const double kf = x * 1.4426950408889634074 + magic;
    const double k = kf - magic;
    uint64_t ki, mi;
    memcpy(&ki, &kf, 8);
    memcpy(&mi, &magic, 8);
    const uint64_t bits = (ki - mi + 1023u) << 52; /* wraps (no overflow) where x is out of range */
    double scale;
    memcpy(&scale, &bits, 8);
    const double r = (x - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10;
    const double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
    const double p01 = 1.0 + r, p23 = 0.5000000000000019 + r * 0.1666666666666668;
    const double p45 = 0.0416666666664881 + r * 0.008333333333319601;
    const double p67 = 0.0013888888952314775 + r * 0.00019841269890047113;
    const double p89 = 2.4801485482328494e-05 + r * 2.755724091857897e-06;
    const double pab = 2.763263963904103e-07 + r * 2.5110037605963777e-08;
    const double p0_3 = p01 + r2 * p23, p4_7 = p45 + r2 * p67, p8_b = p89 + r2 * pab;
    const double p = (p0_3 + r4 * p4_7) + r8 * p8_b;
    return p * scale;
}

/* exp(x) in double, inline so that the loops over the states vectorize
 * without calls: libmvec's exp takes a slow scalar path for every vector
 * with a lane out of its fast range, and -inf (an unreachable state) is
 * the common value here.  Below -708.3 the result would be subnormal and
 * is flushed to 0 (an absolute error under 2.3e-308); NaN gives NaN; +inf
 * gives +inf.  Exact up to x = 709 (every caller passes x <= 0, up to
 * rounding: an occupancy, a softmax term). */
FL_INLINE double FN(ct_exp)(double x)
{
    const double v = FN(ct_exp_core)(x);
    return x < -708.3 ? 0.0 : (x > 709.7 ? INFINITY : v);
}

/* exp(x) for a term added to 1 (x <= 0 or NaN): x is clamped at -708
 * (one select), so -inf and NaN give 3e-308, which 1 + ... rounds away
 * (the caller tests for NaN itself). */
FL_INLINE double FN(ct_exp_add1)(double x)
{
    return FN(ct_exp_core)(x > -708.0 ? x : -708.0);
}

/* log(y) for y in [1, 3]: fdlibm's kernel after y = 2^k y', y' in
 * [sqrt(1/2), sqrt(2)), k read from the exponent bits; under 1 ulp. */
FL_INLINE double FN(ct_log13)(double y)
{
    uint64_t hx;
    memcpy(&hx, &y, 8);
    /* fdlibm: shift the mantissa so that y' lands in [sqrt(1/2), sqrt(2)) */
    hx += 0x3ff0000000000000ull - 0x3fe6a09e00000000ull;
    const uint64_t kb = (hx >> 52) - 1023u + 0x4330000000000000ull; /* k + 2^52 as a double's bits; k in [0, 2] */
    double kd;
    memcpy(&kd, &kb, 8);
    const double k = kd - 4503599627370496.0;
    hx = (hx & 0x000fffffffffffffull) + 0x3fe6a09e00000000ull;
    double yr;
    memcpy(&yr, &hx, 8);
    const double f = yr - 1.0;
    const double s = f / (2.0 + f), z = s * s, w = z * z;
    const double t1 = w * (3.999999999940941908e-01 + w * (2.222219843214978396e-01 + w * 1.531383769920937332e-01));
    const double t2 = z * (6.666666666666735130e-01 +
                           w * (2.857142874366239149e-01 + w * (1.818357216161805012e-01 + w * 1.479819860511658591e-01)));
    const double R = t2 + t1, hfsq = 0.5 * f * f;
    return k * 6.93147180369123816490e-01 - ((hfsq - (s * (hfsq + R) + k * 1.90821492927058770002e-10)) - f);
}

/* log(exp(a) + exp(b) + exp(c)) */
FL_INLINE double FN(ct_lse3)(double a, double b, double c)
{
    const double hi = a > b ? a : b, lo = a > b ? b : a;
    const double m = hi > c ? hi : c, mid = hi > c ? c : hi;
    /* m = -inf (all terms -inf): mid - m is NaN, which the clamp of
     * ct_exp_add1 maps to -708, so r = -inf + log(1) = -inf */
    const double r = m + FN(ct_log13)(1.0 + FN(ct_exp_add1)(mid - m) + FN(ct_exp_add1)(lo - m));
    /* a NaN term makes the sum NaN (so does +inf with -inf, never a
     * log-probability); one unordered test, which GCC vectorizes (three
     * self-comparisons it does not) */
    const double t = a + b + c;
    return t == t ? r : t;
}

#if T_F32
#define CT_EXPT FN(exp_np)
#else
#define CT_EXPT FN(ct_exp)
#endif

FL_INLINE const T *FN(ct_row)(const fl_ctc_args *a, fl_idx n, fl_idx t)
{
    return (const T *)a->x + t * a->st + n * a->sn;
}

FL_INLINE T *FN(ct_grow)(const fl_ctc_args *a, fl_idx n, fl_idx t)
{
    return (T *)a->g + t * a->st + n * a->sn;
}

/* log(exp(a) + exp(b)), as ct_lse3 */
FL_INLINE double FN(ct_lse2)(double a, double b)
{
    const double m = a > b ? a : b, lo = a > b ? b : a;
    const double r = m + FN(ct_log13)(1.0 + FN(ct_exp_add1)(lo - m));
    const double t = a + b;
    return t == t ? r : t;
}

/* A row of the recursion holds the S + 1 blank states first (s = 2 j at
 * index j), then the S label states (s = 2 j + 1 at index S + 1 + j), so
 * that both loops below are contiguous: a blank state has two
 * predecessors (one exp), a label state three (two exps). */

/* Apre = lse of the predecessors in p, cur = Apre + e */
static void FN(ct_alpha)(const double *restrict p, const double *restrict e, const double *restrict skip,
                         double *restrict apre, double *restrict cur, fl_idx S)
{
    const double *restrict pb = p, *restrict pl = p + S + 1, *restrict el = e + S + 1;
    double *restrict ab = apre, *restrict al = apre + S + 1, *restrict cb = cur, *restrict cl = cur + S + 1;
    const double eb = e[0];
    ab[0] = pb[0];
    cb[0] = pb[0] + eb;
    FL_PRAGMA(omp simd)
    for (fl_idx j = 1; j <= S; j++) {       /* blank j: from blank j and label j - 1 */
        const double v = FN(ct_lse2)(pb[j], pl[j - 1]);
        ab[j] = v;
        cb[j] = v + eb;
    }
    if (S == 0) return;
    al[0] = FN(ct_lse2)(pl[0], pb[0]);
    cl[0] = al[0] + el[0];
    FL_PRAGMA(omp simd)
    for (fl_idx j = 1; j < S; j++) {        /* label j: from label j, blank j, [label j - 1] */
        const double p2 = pl[j - 1];        /* loaded unconditionally: a conditional load is not vectorized */
        const double c = skip[j] != 0 ? p2 : CT_NEG;
        const double v = FN(ct_lse3)(pl[j], pb[j], c);
        al[j] = v;
        cl[j] = v + el[j];
    }
}

/* bpre = lse of the successors in q */
static void FN(ct_beta)(const double *restrict q, const double *restrict skip, double *restrict bpre, fl_idx S)
{
    const double *restrict qb = q, *restrict ql = q + S + 1;
    double *restrict bb = bpre, *restrict bl = bpre + S + 1;
    FL_PRAGMA(omp simd)
    for (fl_idx j = 0; j < S; j++) bb[j] = FN(ct_lse2)(qb[j], ql[j]);   /* blank j: to blank j, label j */
    bb[S] = qb[S];
    if (S == 0) return;
    FL_PRAGMA(omp simd)
    for (fl_idx j = 0; j < S - 1; j++) {    /* label j: to label j, blank j + 1, [label j + 1] */
        const double q2 = ql[j + 1];
        const double c = skip[j + 1] != 0 ? q2 : CT_NEG;
        bl[j] = FN(ct_lse3)(ql[j], qb[j + 1], c);
    }
    bl[S - 1] = FN(ct_lse2)(ql[S - 1], qb[S]);
}

/* max and log-sum-exp (less the max) of a row of logits */
static void FN(ct_rowstat)(const T *restrict z, fl_idx C, double *restrict out)
{
    T m = z[0];
    for (fl_idx c = 1; c < C; c++) m = z[c] > m ? z[c] : m;
    if (m != m) {
        out[0] = m;
        out[1] = m;
        return;
    }
    double s = 0;
    for (fl_idx c0 = 0; c0 < C; c0 += 256) {
        const fl_idx c1 = c0 + 256 < C ? c0 + 256 : C;
        T l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        fl_idx c = c0;
        for (; c + 8 <= c1; c += 8) {
            FL_PRAGMA(omp simd)
            for (int k = 0; k < 8; k++) l[k] += CT_EXPT(z[c + k] - m);
        }
        for (; c < c1; c++) l[0] += CT_EXPT(z[c] - m);
        s += (double)(((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7])));
    }
    out[0] = (double)m;
    out[1] = log(s);
}

/* e = the log-probabilities of the states' classes at time t: the
 * blank's (one value) for the S + 1 blank states, then a gather of the S
 * labels' */
static void FN(ct_emit)(const fl_ctc_args *a, const fl_ctc_work *w, const fl_ctc_work *sh, fl_idx t,
                        double *restrict e)
{
    const T *restrict row = FN(ct_row)(a, w->n, t);
    const int64_t *restrict lab = w->lab;
    const fl_idx S = w->S;
    double off = 0.0, mx = 0.0;
    if (a->logits) {
        mx = sh->lse[2 * t];
        off = sh->lse[2 * t + 1];
    }
    const double eb = ((double)row[a->blank] - mx) - off;
    for (fl_idx j = 0; j <= S; j++) e[j] = eb;
    for (fl_idx j = 0; j < S; j++) e[S + 1 + j] = ((double)row[lab[j]] - mx) - off;
}

static void FN(ct_zero_rows)(const fl_ctc_args *a, fl_idx n, fl_idx t0, fl_idx t1)
{
    for (fl_idx t = t0; t < t1; t++) memset(FN(ct_grow)(a, n, t), 0, (size_t)a->C * sizeof(T));
}

/* The gradient row of time t from u[s] = log(alpha beta) (overwritten). */
static void FN(ct_grad_row)(const fl_ctc_args *a, fl_ctc_work *w, const fl_ctc_work *sh, fl_idx t,
                            double *restrict u, double logp)
{
    const fl_idx L = w->L, S = w->S, C = a->C, n = w->n;
    const double gs = a->gs[n];
    double *restrict acc = w->acc;
    T *restrict g = FN(ct_grow)(a, n, t);
    FL_PRAGMA(omp simd)
    for (fl_idx s = 0; s < L; s++) u[s] = FN(ct_exp)(u[s] - logp);
    double bsum = 0;
    for (fl_idx j = 0; j <= S; j++) bsum += u[j];
    /* the occupancy of each distinct label: its first position gathers its repeats */
    for (fl_idx j = 0; j < S; j++) acc[j] = u[S + 1 + j];
    if (w->repeats)
        for (fl_idx j = 0; j < S; j++)
            if (w->rep[j] != j) acc[w->rep[j]] += acc[j];
    const int64_t blank = a->blank;
    if (!a->logits) {
        memset(g, 0, (size_t)C * sizeof(T));
        g[blank] = (T)(-gs * bsum);
        if (!w->repeats) {
            for (fl_idx j = 0; j < S; j++) g[w->lab[j]] = (T)(-gs * acc[j]);
        } else {
            for (fl_idx j = 0; j < S; j++)
                if (w->rep[j] == j) g[w->lab[j]] = (T)(-gs * acc[j]);
        }
        return;
    }
    const T *restrict z = FN(ct_row)(a, n, t);
    const double mx = sh->lse[2 * t], ls = sh->lse[2 * t + 1];
    const T mt = (T)mx, sc = (T)(gs * exp(-ls));
    FL_PRAGMA(omp simd)
    for (fl_idx c = 0; c < C; c++) g[c] = CT_EXPT(z[c] - mt) * sc;
    g[blank] = (T)(gs * (FN(ct_exp)(((double)z[blank] - mx) - ls) - bsum));
    for (fl_idx j = 0; j < S; j++)
        if (w->rep[j] == j) {
            const int64_t k = w->lab[j];
            g[k] = (T)(gs * (FN(ct_exp)(((double)z[k] - mx) - ls) - acc[j]));
        }
}

/* Make w ready for sample n: lengths, midpoint, labels, skips, repeats. */
static void FN(ct_prep)(const fl_ctc_args *a, fl_ctc_work *w, fl_idx n)
{
    const fl_idx S = (fl_idx)a->tl[n];
    w->n = n;
    w->Tn = (fl_idx)a->il[n];
    w->S = S;
    w->L = 2 * S + 1;
    w->m = w->Tn > 0 ? (w->Tn - 1) / 2 : 0;
    for (fl_idx j = 0; j < S; j++) {
        const fl_idx r = (fl_idx)a->toff[n] + j;
        const int64_t k = a->t64 ? ((const int64_t *)a->tg)[r] : (int64_t)((const int32_t *)a->tg)[r];
        w->lab[j] = k;
        if (w->mark[k] < 0) w->mark[k] = (int32_t)j;
        w->rep[j] = w->mark[k];
    }
    w->repeats = 0;
    for (fl_idx j = 0; j < S; j++) w->repeats |= w->rep[j] != j;
    for (fl_idx j = 0; j < S; j++) w->mark[w->lab[j]] = -1;
    /* the skip into label j, from label j - 1 (labels are never the blank) */
    for (fl_idx j = 0; j <= S; j++) w->skip[j] = (j >= 1 && j < S && w->lab[j] != w->lab[j - 1]) ? 1.0 : 0.0;
}

/* Where the table keeps rows.  K = 0: row t of the table is A_t (t <= m)
 * or B_t (t > m).  K > 0 (checkpoints): front keeps A_t for t = 0, K, 2K,
 * ... <= m in slots 0, 1, ...; back keeps B_t for t = Tn-1, Tn-1-K, ...
 * > m in the slots after those; phase 2 recomputes K rows at a time from
 * them into its own w->seg, with the same code, so the rows are the same
 * bits and the result does not depend on K. */
FL_INLINE fl_idx FN(ct_nfront)(const fl_ctc_args *a, const fl_ctc_work *w) { return w->m / a->K + 1; }

/* phase 1, front: A_0 .. A_m (into the table when storing); A_m -> sh->amid */
static void FN(ct_front)(const fl_ctc_args *a, fl_ctc_work *w, fl_ctc_work *sh, int store)
{
    const fl_idx L = w->L, m = w->m, K = a->K;
    if (a->logits)
        for (fl_idx t = 0; t <= m; t++) FN(ct_rowstat)(FN(ct_row)(a, w->n, t), a->C, sh->lse + 2 * t);
    double *p = w->r0;
    p[0] = 0;
    for (fl_idx s = 1; s < L; s++) p[s] = CT_NEG;
    for (fl_idx t = 0; t <= m; t++) {
        FN(ct_emit)(a, w, sh, t, w->e);
        double *cur = store && !K ? sh->table + t * L : (p == w->r0 ? w->r1 : w->r0);
        FN(ct_alpha)(p, w->e, w->skip, w->u, cur, w->S);
        if (store && K && t % K == 0) memcpy(sh->table + (t / K) * L, cur, (size_t)L * sizeof(double));
        p = cur;
    }
    memcpy(sh->amid, p, (size_t)L * sizeof(double));
}

/* phase 1, back: B_{Tn-1} .. B_{m+1} (into the table when storing); Bpre_m -> sh->bmid */
static void FN(ct_back)(const fl_ctc_args *a, fl_ctc_work *w, fl_ctc_work *sh, int store)
{
    const fl_idx L = w->L, m = w->m, Tn = w->Tn, K = a->K;
    if (a->logits)
        for (fl_idx t = m + 1; t < Tn; t++) FN(ct_rowstat)(FN(ct_row)(a, w->n, t), a->C, sh->lse + 2 * t);
    double *q = w->r0;
    for (fl_idx s = 0; s < L; s++) q[s] = CT_NEG;
    q[w->S] = 0; /* the last blank (state 2 S) */
    const fl_idx base = K ? FN(ct_nfront)(a, w) : 0;
    for (fl_idx t = Tn - 1; t > m; t--) {
        FN(ct_beta)(q, w->skip, w->r2, w->S);
        FN(ct_emit)(a, w, sh, t, w->e);
        double *cur = store && !K ? sh->table + t * L : (q == w->r0 ? w->r1 : w->r0);
        for (fl_idx s = 0; s < L; s++) cur[s] = w->r2[s] + w->e[s];
        if (store && K && (Tn - 1 - t) % K == 0)
            memcpy(sh->table + (base + (Tn - 1 - t) / K) * L, cur, (size_t)L * sizeof(double));
        q = cur;
    }
    FN(ct_beta)(q, w->skip, sh->bmid, w->S);
}

/* log p = lse_s(A_m(s) + Bpre_m(s)), summed in row order */
static double FN(ct_logp)(fl_ctc_work *w, const fl_ctc_work *sh)
{
    const fl_idx L = w->L;
    double *u = w->u;
    double m = CT_NEG;
    int nan = 0;
    for (fl_idx s = 0; s < L; s++) {
        u[s] = sh->amid[s] + sh->bmid[s];
        nan |= u[s] != u[s];
        m = u[s] > m ? u[s] : m;
    }
    if (nan) return NAN;
    if (m == CT_NEG || m == INFINITY) return m;
    double sum = 0;
    for (fl_idx s = 0; s < L; s++) sum += FN(ct_exp)(u[s] - m);
    return m + log(sum);
}

/* phase 2, front, one step: Apre_t from the previous row *p, the gradient
 * of t from Apre_t and B_t (bt) */
FL_INLINE void FN(ct_front2_step)(const fl_ctc_args *a, fl_ctc_work *w, const fl_ctc_work *sh, fl_idx t,
                                  const double *bt, const double **p, double logp)
{
    const fl_idx L = w->L;
    FN(ct_emit)(a, w, sh, t, w->e);
    double *cur = *p == w->r0 ? w->r1 : w->r0;
    FN(ct_alpha)(*p, w->e, w->skip, w->r2, cur, w->S);
    for (fl_idx s = 0; s < L; s++) w->u[s] = w->r2[s] + bt[s];
    FN(ct_grad_row)(a, w, sh, t, w->u, logp);
    *p = cur;
}

/* phase 2, front: the gradient of t = m+1 .. Tn-1, and zero rows for t >= Tn */
static void FN(ct_front2)(const fl_ctc_args *a, fl_ctc_work *w, const fl_ctc_work *sh, double logp)
{
    const fl_idx L = w->L, m = w->m, Tn = w->Tn, K = a->K;
    if (logp == CT_NEG) {
        FN(ct_zero_rows)(a, w->n, m + 1, a->Tlen);
        return;
    }
    const double *p = sh->amid;
    if (!K) {
        for (fl_idx t = m + 1; t < Tn; t++) FN(ct_front2_step)(a, w, sh, t, sh->table + t * L, &p, logp);
    } else if (Tn - 1 > m) {
        /* segments ending at the checkpoints tau = Tn-1 - jK, in increasing t;
         * row k of seg holds B_{tau - k} */
        const fl_idx base = FN(ct_nfront)(a, w), nb = (Tn - 2 - m) / K + 1;
        double *seg = w->seg;
        for (fl_idx j = nb - 1; j >= 0; j--) {
            const fl_idx tau = Tn - 1 - j * K, lo = tau - K + 1 > m + 1 ? tau - K + 1 : m + 1;
            memcpy(seg, sh->table + (base + j) * L, (size_t)L * sizeof(double));
            for (fl_idx t = tau - 1; t >= lo; t--) {
                FN(ct_beta)(seg + (tau - t - 1) * L, w->skip, w->u, w->S);
                FN(ct_emit)(a, w, sh, t, w->e);
                double *row = seg + (tau - t) * L;
                for (fl_idx s = 0; s < L; s++) row[s] = w->u[s] + w->e[s];
            }
            for (fl_idx t = lo; t <= tau; t++) FN(ct_front2_step)(a, w, sh, t, seg + (tau - t) * L, &p, logp);
        }
    }
    FN(ct_zero_rows)(a, w->n, Tn, a->Tlen);
}

/* phase 2, back, one step: the gradient of t from A_t (at) and Bpre_t
 * (*bp), then Bpre_{t-1} */
FL_INLINE void FN(ct_back2_step)(const fl_ctc_args *a, fl_ctc_work *w, const fl_ctc_work *sh, fl_idx t,
                                 const double *at, const double **bp, double logp)
{
    const fl_idx L = w->L;
    for (fl_idx s = 0; s < L; s++) w->u[s] = at[s] + (*bp)[s];
    FN(ct_grad_row)(a, w, sh, t, w->u, logp);
    if (t == 0) return;
    FN(ct_emit)(a, w, sh, t, w->e);
    for (fl_idx s = 0; s < L; s++) w->r0[s] = (*bp)[s] + w->e[s];
    double *nxt = *bp == w->r1 ? w->r2 : w->r1;
    FN(ct_beta)(w->r0, w->skip, nxt, w->S);
    *bp = nxt;
}

/* phase 2, back: the gradient of t = m .. 0 */
static void FN(ct_back2)(const fl_ctc_args *a, fl_ctc_work *w, const fl_ctc_work *sh, double logp)
{
    const fl_idx L = w->L, m = w->m, K = a->K;
    if (logp == CT_NEG) {
        FN(ct_zero_rows)(a, w->n, 0, m + 1);
        return;
    }
    const double *bp = sh->bmid;
    if (!K) {
        for (fl_idx t = m; t >= 0; t--) FN(ct_back2_step)(a, w, sh, t, sh->table + t * L, &bp, logp);
        return;
    }
    /* segments starting at the checkpoints t0 = iK, in decreasing t; row k of seg holds A_{t0 + k} */
    double *seg = w->seg;
    for (fl_idx i = m / K; i >= 0; i--) {
        const fl_idx t0 = i * K, t1 = t0 + K - 1 < m ? t0 + K - 1 : m;
        memcpy(seg, sh->table + i * L, (size_t)L * sizeof(double));
        for (fl_idx t = t0 + 1; t <= t1; t++) {
            FN(ct_emit)(a, w, sh, t, w->e);
            FN(ct_alpha)(seg + (t - 1 - t0) * L, w->e, w->skip, w->u, seg + (t - t0) * L, w->S);
        }
        for (fl_idx t = t1; t >= t0; t--) FN(ct_back2_step)(a, w, sh, t, seg + (t - t0) * L, &bp, logp);
    }
}

/* a sample without time steps: p = 1 for an empty target, else 0 */
static void FN(ct_empty)(const fl_ctc_args *a, const fl_ctc_work *w)
{
    a->nll[w->n] = w->L == 1 ? 0.0 : INFINITY;
    if (a->g) FN(ct_zero_rows)(a, w->n, 0, a->Tlen);
}

/* one sample on one thread */
static void FN(ct_whole)(const fl_ctc_args *a, fl_ctc_work *w, fl_idx n)
{
    FN(ct_prep)(a, w, n);
    if (w->Tn == 0) {
        FN(ct_empty)(a, w);
        return;
    }
    const int grad = a->g != NULL;
    FN(ct_front)(a, w, w, grad);
    FN(ct_back)(a, w, w, grad);
    const double logp = FN(ct_logp)(w, w);
    a->nll[n] = -logp;
    if (grad) {
        FN(ct_back2)(a, w, w, logp);
        FN(ct_front2)(a, w, w, logp);
    }
}

/* Thread tid of nthr: whole samples tid, tid + nthr, ... below the last
 * multiple of nthr; the rest split over pairs of threads (2k front, 2k + 1
 * back), in rounds of nthr / 2 samples. */
static void FN(ctc_worker)(const fl_ctc_args *a, fl_ctc_work *ws, int tid, int nthr)
{
    const fl_idx N = a->N;
    if (nthr <= 1) {
        for (fl_idx n = 0; n < N; n++) FN(ct_whole)(a, &ws[0], n);
        return;
    }
    const fl_idx P = nthr, whole = N - N % P;
    for (fl_idx n = tid; n < whole; n += P) FN(ct_whole)(a, &ws[tid], n);
    const fl_idx pairs = P / 2, rest = N - whole;
    const fl_idx rounds = (rest + pairs - 1) / pairs;
    const fl_idx k = tid / 2;
    const int role = tid & 1;
    fl_ctc_work *w = &ws[tid], *sh = &ws[2 * k];
    const int grad = a->g != NULL;
    /* the pair writes into the even thread's workspace: wait until every
     * thread is done with its whole samples */
    if (rounds > 0 && whole > 0) {
        FL_PRAGMA(omp barrier)
    }
    for (fl_idx r = 0; r < rounds; r++) {
        const fl_idx n = whole + r * pairs + k;
        const int mine = k < pairs && n < N;
        if (mine) {
            FN(ct_prep)(a, w, n);
            if (w->Tn > 0) {
                if (role == 0)
                    FN(ct_front)(a, w, sh, grad);
                else
                    FN(ct_back)(a, w, sh, grad);
            }
        }
        FL_PRAGMA(omp barrier)
        if (mine) {
            if (w->Tn == 0) {
                if (role == 0) FN(ct_empty)(a, w);
            } else {
                const double logp = FN(ct_logp)(w, sh);
                if (role == 0) {
                    a->nll[n] = -logp;
                    if (grad) FN(ct_front2)(a, w, sh, logp);
                } else if (grad) {
                    FN(ct_back2)(a, w, sh, logp);
                }
            }
        }
        FL_PRAGMA(omp barrier)
    }
}

#undef CT_NEG
#undef CT_EXPT
