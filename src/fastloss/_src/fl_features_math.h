/* fl_features_math.h -- the row losses over features: triplets and pairs.
 *
 * Included by fl_features.c once per (dtype, instruction set), with
 *   T        float or double: the feature loops run in T lanes; sums over
 *            the features are taken in T lanes over chunks of FL_FT_CHUNK
 *            and carried in double; per-row scalars (distances, loss,
 *            coefficients) are double
 *   FN(n)    the name n suffixed with the dtype and the instruction set
 *   EXP LOG FABS  the math functions for T
 * No include guard, on purpose (the batch passes are in
 * fl_features_batch.h, included at the end).
 *
 * A row is two passes over its two or three operand rows: one that sums
 * what the distances need (the rows stay in L1), and, for the gradient,
 * one that writes every operand's gradient.  The distances:
 *   P2, P1, PN  |x - y + eps|_p, PyTorch's pairwise_distance (p = 2, 1, or
 *               any other p >= 1 through exp/log); its gradient is
 *               v / d, sign(v), sign(v) |v|^(p-1) / d^(p-1) for
 *               v = x - y + eps, and 0 at d = 0 (PyTorch's norm backward)
 *   SQ          |x - y|^2, gradient 2 (x - y)
 *   COS         1 - cos(x, y) as 1 - F.cosine_similarity: x.y / (c_x c_y)
 *               with c = max(|x|, eps); the gradient is PyTorch's, where
 *               the clamp is not differentiated but the norm is:
 *               d/dx = -y / (c_x c_y) + (x.y) x / (c_x^2 c_y |x|)  (the last
 *               term 0 at x = 0)
 * NaN in a row propagates to that row's loss and gradients.
 */

#if defined(__GNUC__) || defined(__clang__)
#define FT_PRAGMA(x) _Pragma(#x)
#else
#define FT_PRAGMA(x)
#endif

/* Lanes of the feature sums: FT_VL partial sums in T, added in a fixed
 * tree at the end of each chunk.  (GCC lowers `omp simd reduction` on a
 * scalar to a scalar sum through a stack array; explicit lanes stay in one
 * register each.) */
#include "fl_vmath.h"

#undef FT_SQRT
#if T_F32
#define FT_SQRT sqrtf
#else
#define FT_SQRT sqrt
#endif

#define FT_VL 8
#define FT_TREE(l) (((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7])))

#define FT_P2 0
#define FT_P1 1
#define FT_PN 2
#define FT_COS 3
#define FT_SQ 4

/* OUT[0..NS) = sums over j in [0, D) of the terms t0 .. t5 that BODY
 * defines for feature j, in T lanes per chunk of FL_FT_CHUNK features and
 * in double across chunks.  NS is a compile-time constant: unused sums
 * cost nothing. */
#define FT_SUMS(OUT, NS, D, BODY)                                             \
    do {                                                                      \
        for (int q_ = 0; q_ < 6; q_++) OUT[q_] = 0;                           \
        for (fl_idx c0_ = 0; c0_ < (D); c0_ += FL_FT_CHUNK) {                 \
            const fl_idx c1_ = c0_ + FL_FT_CHUNK < (D) ? c0_ + FL_FT_CHUNK : (D); \
            T l0_[FT_VL], l1_[FT_VL], l2_[FT_VL], l3_[FT_VL], l4_[FT_VL], l5_[FT_VL]; \
            for (int k_ = 0; k_ < FT_VL; k_++)                                \
                l0_[k_] = l1_[k_] = l2_[k_] = l3_[k_] = l4_[k_] = l5_[k_] = 0; \
            fl_idx j0_ = c0_;                                                 \
            for (; j0_ + FT_VL <= c1_; j0_ += FT_VL) {                        \
                FT_PRAGMA(omp simd)                                           \
                for (int k_ = 0; k_ < FT_VL; k_++) {                          \
                    const fl_idx j = j0_ + k_;                                \
                    BODY                                                      \
                    l0_[k_] += t0;                                            \
                    if ((NS) > 1) l1_[k_] += t1;                                \
                    if ((NS) > 2) l2_[k_] += t2;                                \
                    if ((NS) > 3) l3_[k_] += t3;                                \
                    if ((NS) > 4) l4_[k_] += t4;                                \
                    if ((NS) > 5) l5_[k_] += t5;                                \
                }                                                             \
            }                                                                 \
            T r_[6] = {0, 0, 0, 0, 0, 0};                                     \
            for (fl_idx j = j0_; j < c1_; j++) {                              \
                BODY                                                          \
                r_[0] += t0; r_[1] += t1; r_[2] += t2;                        \
                r_[3] += t3; r_[4] += t4; r_[5] += t5;                        \
            }                                                                 \
            OUT[0] += (double)(FT_TREE(l0_) + r_[0]);                         \
            if ((NS) > 1) OUT[1] += (double)(FT_TREE(l1_) + r_[1]);             \
            if ((NS) > 2) OUT[2] += (double)(FT_TREE(l2_) + r_[2]);             \
            if ((NS) > 3) OUT[3] += (double)(FT_TREE(l3_) + r_[3]);             \
            if ((NS) > 4) OUT[4] += (double)(FT_TREE(l4_) + r_[4]);             \
            if ((NS) > 5) OUT[5] += (double)(FT_TREE(l5_) + r_[5]);             \
        }                                                                     \
    } while (0)

/* sign(v) with sign(0) = 0 and sign(NaN) = NaN */
FL_INLINE T FN(ft_sign)(T v) { return v > 0 ? (T)1 : (v < 0 ? (T)-1 : v * 0); }

/* the term of a p-norm distance for one feature: v^2, |v| or |v|^p */
FL_INLINE T FN(ft_term)(T v, T pw, const int K)
{
    if (K == FT_P2 || K == FT_SQ) return v * v;
    if (K == FT_P1) return FABS(v);
    return EXP(pw * LOG(FABS(v))); /* |v| = 0: exp(-inf) = 0 */
}

/* the distance from its sum of terms */
FL_INLINE double FN(ft_dist)(double s, double pw, const int K)
{
    if (K == FT_P2) return sqrt(s);
    if (K == FT_PN) return pow(s, 1.0 / pw);
    return s; /* P1, SQ */
}

/* the per-row factor of a p-norm distance's gradient: 1/d (P2),
 * d^(1-p) (PN), 1 (SQ: times 2 in ft_dir; P1), 0 at d = 0 */
FL_INLINE double FN(ft_gfac)(double d, double pw, const int K)
{
    if (K == FT_P2) return d > 0 ? 1.0 / d : (d == 0 ? 0.0 : d);
    if (K == FT_PN) return d > 0 ? pow(d, 1.0 - pw) : (d == 0 ? 0.0 : d);
    return 1.0;
}

/* the gradient of the distance with respect to x at one feature, given
 * v = x - y (+ eps) and the row's factor f from ft_gfac */
FL_INLINE T FN(ft_dir)(T v, T f, T pw, const int K)
{
    if (K == FT_P2) return v * f;
    if (K == FT_SQ) return 2 * v;
    if (K == FT_P1) return FN(ft_sign)(v);
    return FN(ft_sign)(v) * EXP((pw - 1) * LOG(FABS(v))) * f;
}

/* The cosine distance's pieces for a pair (x, y) from dot = x.y and the
 * squared norms: the distance, and the gradient coefficients
 * d/dx = -P y + QX x, d/dy = -P x + QY y. */
FL_INLINE double FN(ft_cos)(double dot, double xx, double yy, double eps,
                            double *P, double *QX, double *QY)
{
    const double nx = sqrt(xx), ny = sqrt(yy);
    const double cx = nx > eps ? nx : (nx == nx ? eps : nx);
    const double cy = ny > eps ? ny : (ny == ny ? eps : ny);
    const double p = 1.0 / (cx * cy), cosv = dot * p;
    *P = p;
    *QX = nx != 0 ? cosv / (cx * nx) : 0.0;
    *QY = ny != 0 ? cosv / (cy * ny) : 0.0;
    return 1.0 - cosv;
}

/* ------------------------------------------------------------ triplets */

/* One triplet row: PyTorch's triplet loss max(0, margin + d(a, p) -
 * d_neg) with d_neg = d(a, n), or min(d(a, n), d(p, n)) with swap (a tie
 * splits the gradient in halves, as torch.minimum's backward).  clamp_min
 * passes the gradient at exactly 0, as PyTorch's.  Returns the loss; with
 * WG writes k times the gradients. */
FL_INLINE double FN(tri_row)(const T *restrict a, const T *restrict p, const T *restrict n,
                             T *restrict ga, T *restrict gp, T *restrict gn, fl_idx D,
                             const fl_params *prm, double kw, const int K, const int SWAP,
                             const int WG)
{
    const T eps = (K == FT_SQ || K == FT_COS) ? (T)0 : (T)prm->pb, pw = (T)prm->pc;
    double s[6];
    double dap, dan, dpn = 0;
    double P1 = 0, Q1a = 0, Q1p = 0, P2 = 0, Q2a = 0, Q2n = 0, P3 = 0, Q3p = 0, Q3n = 0;
    if (K == FT_COS) {
        FT_SUMS(s, 6, D,
                const T t0 = a[j] * p[j]; const T t1 = a[j] * n[j];
                const T t2 = SWAP ? p[j] * n[j] : (T)0;
                const T t3 = a[j] * a[j]; const T t4 = p[j] * p[j];
                const T t5 = n[j] * n[j];);
        dap = FN(ft_cos)(s[0], s[3], s[4], prm->pb, &P1, &Q1a, &Q1p);
        dan = FN(ft_cos)(s[1], s[3], s[5], prm->pb, &P2, &Q2a, &Q2n);
        if (SWAP) dpn = FN(ft_cos)(s[2], s[4], s[5], prm->pb, &P3, &Q3p, &Q3n);
    } else {
        FT_SUMS(s, SWAP ? 3 : 2, D,
                const T t0 = FN(ft_term)(a[j] - p[j] + eps, pw, K);
                const T t1 = FN(ft_term)(a[j] - n[j] + eps, pw, K);
                const T t2 = SWAP ? FN(ft_term)(p[j] - n[j] + eps, pw, K) : (T)0;
                const T t3 = 0; const T t4 = 0; const T t5 = 0;);
        dap = FN(ft_dist)(s[0], prm->pc, K);
        dan = FN(ft_dist)(s[1], prm->pc, K);
        if (SWAP) dpn = FN(ft_dist)(s[2], prm->pc, K);
    }
    double dneg = dan, san = 1, spn = 0;
    if (SWAP) {
        dneg = dpn < dan ? dpn : dan;
        san = dan < dpn ? 1.0 : (dan == dpn ? 0.5 : 0.0);
        spn = 1.0 - san;
    }
    const double z = prm->pa + dap - dneg;
    const double v = z < 0 ? 0.0 : z;
    if (WG) {
        const double k = z < 0 ? 0.0 : kw;
        if (K == FT_COS) {
            /* each gradient is a combination of the rows a, p, n */
            const T ma0 = (T)(k * (Q1a - san * Q2a)), ma1 = (T)(-k * P1), ma2 = (T)(k * san * P2);
            const T mp0 = (T)(-k * P1), mp1 = (T)(k * (Q1p - spn * Q3p)), mp2 = (T)(k * spn * P3);
            const T mn0 = (T)(k * san * P2), mn1 = (T)(k * spn * P3);
            const T mn2 = (T)(-k * (san * Q2n + spn * Q3n));
            FT_PRAGMA(omp simd)
            for (fl_idx j = 0; j < D; j++) {
                const T aj = a[j], pj = p[j], nj = n[j];
                ga[j] = ma0 * aj + ma1 * pj + ma2 * nj;
                gp[j] = mp0 * aj + mp1 * pj + mp2 * nj;
                gn[j] = mn0 * aj + mn1 * pj + mn2 * nj;
            }
        } else {
            const T fa = (T)FN(ft_gfac)(dap, prm->pc, K), fn = (T)FN(ft_gfac)(dan, prm->pc, K);
            const T fs = SWAP ? (T)FN(ft_gfac)(dpn, prm->pc, K) : (T)0;
            const T kk = (T)k, ks = (T)(k * san), kp = (T)(k * spn);
            FT_PRAGMA(omp simd)
            for (fl_idx j = 0; j < D; j++) {
                const T ua = FN(ft_dir)(a[j] - p[j] + eps, fa, pw, K);
                const T un = FN(ft_dir)(a[j] - n[j] + eps, fn, pw, K);
                const T us = SWAP ? FN(ft_dir)(p[j] - n[j] + eps, fs, pw, K) : (T)0;
                ga[j] = kk * ua - ks * un;
                gp[j] = SWAP ? -kk * ua - kp * us : -kk * ua;
                gn[j] = SWAP ? ks * un + kp * us : ks * un;
            }
        }
    }
    return v;
}

/* ------------------------------------------------------------ pairs */

/* Contrastive (Hadsell, Chopra and LeCun 2006): with y = 1 for a similar
 * pair, 0 for a dissimilar one, d = |x1 - x2 + eps|_p,
 *   l = 1/2 y d^2 + 1/2 (1 - y) max(0, margin - d)^2,
 * y = t if the similar label (i0) is 1, else 1 - t.  bad: t not in {0, 1}. */
FL_INLINE double FN(con_row)(const T *restrict x, const T *restrict y, T *restrict gx, T *restrict gy,
                             fl_idx D, T t, const fl_params *prm, double kw, int *bad,
                             const int K, const int WG)
{
    const T eps = (T)prm->pb, pw = (T)prm->pc;
    double s[6];
    FT_SUMS(s, 1, D,
            const T t0 = FN(ft_term)(x[j] - y[j] + eps, pw, K);
            const T t1 = 0; const T t2 = 0; const T t3 = 0; const T t4 = 0; const T t5 = 0;);
    const double d = FN(ft_dist)(s[0], prm->pc, K);
    const double tt = (double)t;
    const double sim = prm->i0 ? tt : 1.0 - tt;
    const double h = prm->pa - d, hp = h < 0 ? 0.0 : h;
    *bad = (tt == tt) & (tt != 0) & (tt != 1);
    const double v = 0.5 * sim * d * d + 0.5 * (1.0 - sim) * hp * hp;
    if (WG) {
        T c;
        if (K == FT_P2) {
            /* dl/dd / d, with d/d = 1: finite at d = 0 for a similar pair */
            const double id = d > 0 ? 1.0 / d : (d == 0 ? 0.0 : d);
            c = (T)(kw * (sim - (1.0 - sim) * hp * id));
        } else {
            c = (T)(kw * (sim * d - (1.0 - sim) * hp));
        }
        const T f = (T)FN(ft_gfac)(d, prm->pc, K);
        FT_PRAGMA(omp simd)
        for (fl_idx j = 0; j < D; j++) {
            const T v_ = x[j] - y[j] + eps;
            const T u = K == FT_P2 ? v_ : FN(ft_dir)(v_, f, pw, K);
            gx[j] = c * u;
            gy[j] = -c * u;
        }
    }
    return v;
}

/* PyTorch's cosine_embedding_loss: cos = x.y / sqrt((|x|^2 + 1e-12f)
 * (|y|^2 + 1e-12f)); l = 1 - cos for t = 1, max(0, cos - margin) for
 * t = -1.  bad: t not in {-1, 1}. */
FL_INLINE double FN(cemb_row)(const T *restrict x, const T *restrict y, T *restrict gx, T *restrict gy,
                              fl_idx D, T t, const fl_params *prm, double kw, int *bad, const int WG)
{
    double s[6];
    FT_SUMS(s, 3, D,
            const T t0 = x[j] * y[j]; const T t1 = x[j] * x[j]; const T t2 = y[j] * y[j];
            const T t3 = 0; const T t4 = 0; const T t5 = 0;);
    /* PyTorch's EPSILON is the float 1e-12f (9.99999996e-13 in double) */
    const double e12 = (double)1e-12f;
    const double m1 = s[1] + e12, m2 = s[2] + e12, den = sqrt(m1 * m2);
    const double cosv = s[0] / den, z = cosv - prm->pa;
    const double tt = (double)t;
    *bad = (tt == tt) & (tt != 1) & (tt != -1);
    const double v = tt == 1 ? 1.0 - cosv : (tt == -1 ? (z < 0 ? 0.0 : z) : tt);
    if (WG) {
        const double dv = tt == 1 ? -1.0 : (tt == -1 ? (z < 0 ? 0.0 : 1.0) : tt);
        const double k = kw * dv;
        const T cy = (T)(k / den), cxx = (T)(-k * cosv / m1), cyy = (T)(-k * cosv / m2);
        FT_PRAGMA(omp simd)
        for (fl_idx j = 0; j < D; j++) {
            const T xj = x[j], yj = y[j];
            gx[j] = cy * yj + cxx * xj;
            gy[j] = cy * xj + cyy * yj;
        }
    }
    return v;
}

/* 1 - cos(x, y), the cosine distance of ft_cos (eps = pb) */
FL_INLINE double FN(cdist_row)(const T *restrict x, const T *restrict y, T *restrict gx, T *restrict gy,
                               fl_idx D, const fl_params *prm, double kw, const int WG)
{
    double s[6];
    FT_SUMS(s, 3, D,
            const T t0 = x[j] * y[j]; const T t1 = x[j] * x[j]; const T t2 = y[j] * y[j];
            const T t3 = 0; const T t4 = 0; const T t5 = 0;);
    double P, QX, QY;
    const double v = FN(ft_cos)(s[0], s[1], s[2], prm->pb, &P, &QX, &QY);
    if (WG) {
        const T mp = (T)(-kw * P), mx = (T)(kw * QX), my = (T)(kw * QY);
        FT_PRAGMA(omp simd)
        for (fl_idx j = 0; j < D; j++) {
            const T xj = x[j], yj = y[j];
            gx[j] = mp * yj + mx * xj;
            gy[j] = mp * xj + my * yj;
        }
    }
    return v;
}

/* Gradient penalties on one row g of a critic's input gradient (the
 * second operand is not read): WGAN-GP's (|g| - pa)^2 (gradient 2 (|g| -
 * pa) g / |g|, 0 at g = 0 as the norm's subgradient) and R1's |g|^2
 * (gradient 2 g); R1 when i0 is set. */
FL_INLINE double FN(gp_row)(const T *restrict x, T *restrict gx, fl_idx D, const fl_params *prm, double kw,
                            const int WG)
{
    double s[6];
    FT_SUMS(s, 1, D,
            const T t0 = x[j] * x[j]; const T t1 = 0; const T t2 = 0;
            const T t3 = 0; const T t4 = 0; const T t5 = 0;);
    const int r1 = prm->i0;
    const double nrm = sqrt(s[0]), d = nrm - prm->pa;
    const double v = r1 ? s[0] : d * d;
    if (WG) {
        const double f = r1 ? 2.0 : (nrm > 0 ? 2.0 * d / nrm : (nrm == 0 ? 0.0 : nrm));
        const T m = (T)(kw * f);
        FT_PRAGMA(omp simd)
        for (fl_idx j = 0; j < D; j++) gx[j] = m * x[j];
    }
    return v;
}

/* ------------------------------------------------------------ blocks */

/* A block of rows: weights, per-row losses, the gradient's scale, the
 * first bad target; the row function is picked by the loss. */
#define FT_ROWS(ROWCALL)                                                      \
    const fl_idx D = A->D;                                                    \
    const T *w = (const T *)A->w, *tg = (const T *)A->t;                      \
    T *l = (T *)A->l;                                                         \
    double total = 0;                                                         \
    for (fl_idx r = start; r < start + n; r++) {                              \
        const fl_idx o = r * D;                                               \
        const double wr = w ? (double)w[r] : 1.0;                             \
        const double kw = A->gscale * wr;                                     \
        int b_ = 0;                                                           \
        const double v = ROWCALL;                                             \
        (void)tg; (void)o; (void)kw;                                          \
        if (b_ && *bad < 0) *bad = r;                                         \
        const double wv = w ? wr * v : v;                                     \
        if (l) l[r] = (T)wv;                                                  \
        total += wv;                                                          \
    }                                                                         \
    return total;

#define FT_PTR(p, o) ((p) ? (T *)(p) + (o) : (T *)NULL)

FL_INLINE double FN(tri_block)(const fl_ft_args *A, fl_idx start, fl_idx n, fl_idx *bad,
                               const int K, const int SWAP, const int WG)
{
    FT_ROWS(FN(tri_row)((const T *)A->a + o, (const T *)A->b + o, (const T *)A->c + o,
                        FT_PTR(A->ga, o), FT_PTR(A->gb, o), FT_PTR(A->gc, o), D, &A->prm, kw,
                        K, SWAP, WG))
}

#define FT_TRIPLET(NAME, K)                                                   \
    static double FN(ft_##NAME)(const fl_ft_args *A, fl_idx start, fl_idx n, fl_idx *bad) \
    {                                                                         \
        const int g = A->mode == FL_FT_GRAD;                                  \
        if (A->prm.i0)                                                        \
            return g ? FN(tri_block)(A, start, n, bad, K, 1, 1)               \
                     : FN(tri_block)(A, start, n, bad, K, 1, 0);              \
        return g ? FN(tri_block)(A, start, n, bad, K, 0, 1)                   \
                 : FN(tri_block)(A, start, n, bad, K, 0, 0);                  \
    }

FT_TRIPLET(triplet_p2, FT_P2)
FT_TRIPLET(triplet_p1, FT_P1)
FT_TRIPLET(triplet_pn, FT_PN)
FT_TRIPLET(triplet_cos, FT_COS)
FT_TRIPLET(triplet_sq, FT_SQ)

FL_INLINE double FN(con_block)(const fl_ft_args *A, fl_idx start, fl_idx n, fl_idx *bad,
                               const int K, const int WG)
{
    FT_ROWS(FN(con_row)((const T *)A->a + o, (const T *)A->b + o, FT_PTR(A->ga, o),
                        FT_PTR(A->gb, o), D, tg[r], &A->prm, kw, &b_, K, WG))
}

#define FT_CONTRASTIVE(NAME, K)                                               \
    static double FN(ft_##NAME)(const fl_ft_args *A, fl_idx start, fl_idx n, fl_idx *bad) \
    {                                                                         \
        return A->mode == FL_FT_GRAD ? FN(con_block)(A, start, n, bad, K, 1)  \
                                     : FN(con_block)(A, start, n, bad, K, 0); \
    }

FT_CONTRASTIVE(contrastive_p2, FT_P2)
FT_CONTRASTIVE(contrastive_p1, FT_P1)
FT_CONTRASTIVE(contrastive_pn, FT_PN)

FL_INLINE double FN(cemb_block)(const fl_ft_args *A, fl_idx start, fl_idx n, fl_idx *bad, const int WG)
{
    FT_ROWS(FN(cemb_row)((const T *)A->a + o, (const T *)A->b + o, FT_PTR(A->ga, o),
                         FT_PTR(A->gb, o), D, tg[r], &A->prm, kw, &b_, WG))
}

static double FN(ft_cosine_embedding)(const fl_ft_args *A, fl_idx start, fl_idx n, fl_idx *bad)
{
    return A->mode == FL_FT_GRAD ? FN(cemb_block)(A, start, n, bad, 1) : FN(cemb_block)(A, start, n, bad, 0);
}

FL_INLINE double FN(cdist_block)(const fl_ft_args *A, fl_idx start, fl_idx n, fl_idx *bad, const int WG)
{
    FT_ROWS(FN(cdist_row)((const T *)A->a + o, (const T *)A->b + o, FT_PTR(A->ga, o),
                          FT_PTR(A->gb, o), D, &A->prm, kw, WG))
}

static double FN(ft_cosine_distance)(const fl_ft_args *A, fl_idx start, fl_idx n, fl_idx *bad)
{
    return A->mode == FL_FT_GRAD ? FN(cdist_block)(A, start, n, bad, 1) : FN(cdist_block)(A, start, n, bad, 0);
}

FL_INLINE double FN(gp_block)(const fl_ft_args *A, fl_idx start, fl_idx n, fl_idx *bad, const int WG)
{
    FT_ROWS(FN(gp_row)((const T *)A->a + o, FT_PTR(A->ga, o), D, &A->prm, kw, WG))
}

static double FN(ft_gradient_penalty)(const fl_ft_args *A, fl_idx start, fl_idx n, fl_idx *bad)
{
    return A->mode == FL_FT_GRAD ? FN(gp_block)(A, start, n, bad, 1) : FN(gp_block)(A, start, n, bad, 0);
}

#define FT_ENTRY(NAME) FN(ft_##NAME),
static const fl_ft_block_fn FN(ft_table)[] = {FL_FT_LIST(FT_ENTRY)};
#undef FT_ENTRY

#include "fl_features_batch.h"

#undef FT_ROWS
#undef FT_PTR
#undef FT_TRIPLET
#undef FT_CONTRASTIVE
