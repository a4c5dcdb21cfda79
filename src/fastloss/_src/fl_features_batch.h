/* fl_features_batch.h -- the in-batch losses' passes over the N x N matrix.
 *
 * Included at the end of fl_features_math.h, in the same stamping context
 * (T, FN, EXP, LOG, FT_SUMS, ...).  No include guard, on purpose.
 *
 * On entry S = E E^T (NumPy's matmul; batch-hard gets it in blocks of
 * rows, computed and mined while they are in cache).  Distances come from it:
 *   euclidean          d_ij = sqrt(max(|e_i|^2 + |e_j|^2 - 2 S_ij, 0))
 *   squared_euclidean  d_ij = max(|e_i|^2 + |e_j|^2 - 2 S_ij, 0)
 *   cosine             d_ij = 1 - u_i.u_j, u = e / max(|e|, eps)
 *                      (F.normalize: the clamp is a constant)
 * A row pass per anchor i reads only row i of S (S is symmetric, so it
 * holds the anchor's distances to every j) and, for the gradient,
 * overwrites that same row with W_ij = dL/d(d_ij) turned into the factor
 * of the pair's gradient (below); rows are independent, so the pass
 * runs in parallel in place.  sym then makes B = W + W^T (column j
 * scaled by 1/max(|e_j|, eps) for the cosine) over pairs of tiles, and
 * the gradient is
 *   euclidean          g_k = sum_j B_kj (e_k - e_j) = r_k e_k - (B E)_k,
 *                      W_ij = dL/dd_ij / d_ij (0 at d_ij = 0)
 *   squared_euclidean  the same times 2, W_ij = dL/dd_ij
 *   cosine             g_k = J_k (B E)_k, J_k = (I - u_k u_k^T) / |e_k|
 *                      (1 / eps without the projection when clamped),
 *                      W_ij = dL/d(u_i.u_j)
 * with r_k = sum_j B_kj from sym's partial sums (a fixed order), B E from
 * NumPy's matmul, and `final` the last row pass.
 *
 * Batch-hard needs no second matmul: its gradient has three rows per
 * anchor, scattered by hard_scatter over blocks of columns (every thread
 * adds the anchors in the same order).
 */

#define BT_IS_POS(j) (lab[j] == li && (j) != i)
#define BT_IS_NEG(j) (lab[j] != li)

/* the distance from |e_i|^2 + |e_j|^2 - 2 S_ij, or from S_ij inv_i inv_j */
FL_INLINE double FN(bt_dist)(double sqi, double sqj, double sij, double invi, double invj, const int KD)
{
    if (KD == FL_BT_COSINE) return 1.0 - sij * invi * invj;
    const double q = sqi + sqj - 2.0 * sij, qc = q < 0 ? 0.0 : q;
    return KD == FL_BT_EUCLIDEAN ? sqrt(qc) : qc;
}

/* dL/dd turned into W (see the header comment): / d for the euclidean,
 * negated for the cosine (d = 1 - u.u) */
FL_INLINE double FN(bt_wfac)(double d, const int KD)
{
    if (KD == FL_BT_EUCLIDEAN) return d > 0 ? 1.0 / d : (d == 0 ? 0.0 : d);
    return KD == FL_BT_COSINE ? -1.0 : 1.0;
}

/* ------------------------------------------------------------ norms */

static double FN(bt_norms)(const fl_bt_args *A, fl_idx start, fl_idx n, fl_idx *bad)
{
    (void)bad;
    const fl_idx D = A->D;
    const double eps = A->prm.pb;
    for (fl_idx r = start; r < start + n; r++) {
        const T *e = (const T *)A->e + r * D;
        double s[6];
        FT_SUMS(s, 1, D, const T t0 = e[j] * e[j];
                const T t1 = 0; const T t2 = 0; const T t3 = 0; const T t4 = 0; const T t5 = 0;);
        const double nr = sqrt(s[0]);
        A->sq[r] = s[0];
        A->inv[r] = 1.0 / (nr > eps ? nr : (nr == nr ? eps : nr));
        if (A->nt) {
            ((T *)A->nt)[r] = (T)A->sq[r];
            ((T *)A->nt)[A->N + r] = (T)A->inv[r];
        }
    }
    return 0;
}

/* ------------------------------------------------------------ batch-hard */

/* The exact distance of a mined pair and its gradient coefficients:
 * d/de_i = CA e_i + CB e_j, d/de_j = CC e_i + CE e_j. */
FL_INLINE double FN(bt_pair)(const fl_bt_args *A, fl_idx ia, fl_idx ib, double c[4], const int KD)
{
    const fl_idx D = A->D;
    const T *x = (const T *)A->e + ia * D, *y = (const T *)A->e + ib * D;
    double s[6];
    if (KD == FL_BT_COSINE) {
        FT_SUMS(s, 1, D, const T t0 = x[j] * y[j];
                const T t1 = 0; const T t2 = 0; const T t3 = 0; const T t4 = 0; const T t5 = 0;);
        const double ii = A->inv[ia], ij = A->inv[ib], cosv = s[0] * ii * ij, eps = A->prm.pb;
        /* the projection only where the norm is not clamped */
        const int qi = sqrt(A->sq[ia]) > eps, qj = sqrt(A->sq[ib]) > eps;
        c[0] = qi ? cosv * ii * ii : 0.0;
        c[1] = -ii * ij;
        c[2] = -ii * ij;
        c[3] = qj ? cosv * ij * ij : 0.0;
        return 1.0 - cosv;
    }
    FT_SUMS(s, 1, D, const T v_ = x[j] - y[j]; const T t0 = v_ * v_;
            const T t1 = 0; const T t2 = 0; const T t3 = 0; const T t4 = 0; const T t5 = 0;);
    double d, f;
    if (KD == FL_BT_EUCLIDEAN) {
        d = sqrt(s[0]);
        f = d > 0 ? 1.0 / d : (d == 0 ? 0.0 : d);
    } else {
        d = s[0];
        f = 2.0;
    }
    c[0] = f; c[1] = -f; c[2] = -f; c[3] = f;
    return d;
}

/* Per anchor i: the hardest positive (largest distance, first index on a
 * tie) and hardest negative (smallest), found from S in one vector pass
 * (each lane keeps its first best index, the lanes are merged by value,
 * then index); then their exact distances from the embeddings, the loss
 * max(0, margin + d_p - d_n) (or softplus(d_p - d_n) with i1 = soft),
 * count 1 if the anchor has both, and the coefficients of the scatter.  A
 * row with NaN gets a NaN loss and NaN coefficients. */
FL_INLINE double FN(hard_rows)(const fl_bt_args *A, fl_idx start, fl_idx n, const int KD)
{
    const fl_idx N = A->N;
    const int32_t *lab = A->lab;
    const T *w = (const T *)A->w;
    /* the key orders the distances of row i: sq_j - 2 S_ij, or -S_ij inv_j */
    const T *kq = (const T *)A->nt + (KD == FL_BT_COSINE ? N : 0);
#define BT_KEY(j) (KD == FL_BT_COSINE ? -S[j] * kq[j] : kq[j] - 2 * S[j])
    for (fl_idx i = start; i < start + n; i++) {
        const T *S = (const T *)A->s + (i - A->s0) * N;
        const int32_t li = lab[i];
        T mx[FT_VL], mn[FT_VL];
        TI ix[FT_VL], iy[FT_VL];
        int nan_[FT_VL], np_[FT_VL], nn_[FT_VL];
        for (int k = 0; k < FT_VL; k++) {
            mx[k] = -INFINITY; mn[k] = INFINITY; ix[k] = iy[k] = -1; nan_[k] = np_[k] = nn_[k] = 0;
        }
        fl_idx j0 = 0;
        for (; j0 + FT_VL <= N; j0 += FT_VL) {
            FT_PRAGMA(omp simd)
            for (int k = 0; k < FT_VL; k++) {
                const fl_idx j = j0 + k;
                const T key = BT_KEY(j);
                const int ps = BT_IS_POS(j), ng = BT_IS_NEG(j);
                const int up = ps & (key > mx[k]), dn = ng & (key < mn[k]);
                mx[k] = up ? key : mx[k];
                ix[k] = up ? (TI)j : ix[k];
                mn[k] = dn ? key : mn[k];
                iy[k] = dn ? (TI)j : iy[k];
                nan_[k] |= key != key;
                np_[k] += ps;
                nn_[k] += ng;
            }
        }
        T kmx = -INFINITY, kmn = INFINITY;
        fl_idx p = -1, q = -1;
        int isnan_ = 0, cp = 0, cn = 0;
        for (int k = 0; k < FT_VL; k++) {
            isnan_ |= nan_[k]; cp += np_[k]; cn += nn_[k];
            if (ix[k] >= 0 && (mx[k] > kmx || (mx[k] == kmx && ix[k] < p))) { kmx = mx[k]; p = ix[k]; }
            if (iy[k] >= 0 && (mn[k] < kmn || (mn[k] == kmn && iy[k] < q))) { kmn = mn[k]; q = iy[k]; }
        }
        for (fl_idx j = j0; j < N; j++) { /* the tail: larger indices win only if strictly better */
            const T key = BT_KEY(j);
            const int ps = BT_IS_POS(j), ng = BT_IS_NEG(j);
            if (ps && (key > kmx || p < 0)) { kmx = key; p = j; }
            if (ng && (key < kmn || q < 0)) { kmn = key; q = j; }
            isnan_ |= key != key; cp += ps; cn += ng;
        }
        double *c = A->coef ? A->coef + 8 * i : NULL;
        if (isnan_) {
            /* NaN reaches the value and, through the anchor's own row, the gradient */
            A->loss[i] = NAN; A->cnt[i] = 1;
            A->pidx[i] = i; A->nidx[i] = i;
            if (c) for (int k = 0; k < 8; k++) c[k] = NAN;
            continue;
        }
        if (cp == 0 || cn == 0) {
            A->loss[i] = 0; A->cnt[i] = 0;
            A->pidx[i] = A->nidx[i] = -1;
            continue;
        }
        double cp4[4], cn4[4];
        const double dp = FN(bt_pair)(A, i, p, cp4, KD), dn = FN(bt_pair)(A, i, q, cn4, KD);
        const double z = dp - dn;
        double v, dv;
        if (A->prm.i1) { /* soft margin: log(1 + exp(z)) */
            const double ez = exp(-fabs(z));
            v = (z > 0 ? z : 0.0) + log1p(ez);
            dv = z >= 0 ? 1.0 / (1.0 + ez) : ez / (1.0 + ez);
        } else {
            const double m = A->prm.pa + z;
            v = m < 0 ? 0.0 : m;
            dv = m < 0 ? 0.0 : 1.0;
        }
        const double wi = w ? (double)w[i] : 1.0;
        A->loss[i] = wi * v;
        A->cnt[i] = 1;
        A->pidx[i] = p; A->nidx[i] = q;
        if (c) {
            const double k = wi * dv;
            for (int t = 0; t < 4; t++) {
                c[t] = k * cp4[t];
                c[4 + t] = -k * cn4[t];
            }
        }
    }
#undef BT_KEY
    return 0;
}

static double FN(bt_hard_mine)(const fl_bt_args *A, fl_idx start, fl_idx n, fl_idx *bad)
{
    (void)bad;
    switch (A->prm.i0) {
    case FL_BT_EUCLIDEAN: return FN(hard_rows)(A, start, n, FL_BT_EUCLIDEAN);
    case FL_BT_SQEUCLIDEAN: return FN(hard_rows)(A, start, n, FL_BT_SQEUCLIDEAN);
    default: return FN(hard_rows)(A, start, n, FL_BT_COSINE);
    }
}

/* The batch-hard gradient over columns [c0, c1) of every row: zero, then
 * add each anchor's three rows in anchor order (the same order on every
 * thread, whatever the blocking). */
static double FN(bt_hard_scatter)(const fl_bt_args *A, fl_idx start, fl_idx n, fl_idx *bad)
{
    (void)bad;
    const fl_idx N = A->N, D = A->D;
    const T *E = (const T *)A->e;
    T *G = (T *)A->g;
    const T gs = (T)A->gscale;
    for (fl_idx cb = start; cb < start + n; cb++) {
        const fl_idx c0 = cb * FL_BT_COLS, c1 = c0 + FL_BT_COLS < D ? c0 + FL_BT_COLS : D;
        for (fl_idx r = 0; r < N; r++)
            for (fl_idx j = c0; j < c1; j++) G[r * D + j] = 0;
        for (fl_idx i = 0; i < N; i++) {
            const fl_idx p = A->pidx[i], q = A->nidx[i];
            if (p < 0) continue;
            const double *c = A->coef + 8 * i;
            const T a0 = gs * (T)c[0], a1 = gs * (T)c[1], a2 = gs * (T)c[2], a3 = gs * (T)c[3];
            const T b0 = gs * (T)c[4], b1 = gs * (T)c[5], b2 = gs * (T)c[6], b3 = gs * (T)c[7];
            const T *ei = E + i * D, *ep = E + p * D, *en = E + q * D;
            T *gi = G + i * D, *gp = G + p * D, *gn = G + q * D;
            if (p == i) { /* a NaN row: all three are the anchor's own */
                for (fl_idx j = c0; j < c1; j++) gi[j] += (a0 + a1 + a2 + a3 + b0 + b1 + b2 + b3) * ei[j];
                continue;
            }
            FT_PRAGMA(omp simd)
            for (fl_idx j = c0; j < c1; j++) {
                const T xi = ei[j], xp = ep[j], xn = en[j];
                gi[j] += (a0 + b0) * xi + a1 * xp + b1 * xn;
                gp[j] += a2 * xi + a3 * xp;
                gn[j] += b2 * xi + b3 * xn;
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------ batch-all */

/* Per anchor i, every triplet (i, p, n) with p a positive and n a
 * negative: loss sum of max(0, d_ip - d_in + margin) over the triplets
 * where it is > 0, count the number of those (pytorch-metric-learning's
 * AvgNonZeroReducer divides by their total).  dL/dd_ip is the number of
 * negatives active with p, dL/dd_in minus the number of positives active
 * with n.  O(N + P N) per anchor for P positives (the class lists give
 * the positives without a scan).  Scratch: 2 N of T. */
FL_INLINE double FN(all_rows)(const fl_bt_args *A, fl_idx start, fl_idx n, T *dd, T *cn, const int KD)
{
    const fl_idx N = A->N;
    const int32_t *lab = A->lab;
    const T *w = (const T *)A->w;
    const T *sq = (const T *)A->nt, *iv = (const T *)A->nt + N;
    const T margin = (T)A->prm.pa;
    const int WG = A->mode == FL_FT_GRAD;
    for (fl_idx i = start; i < start + n; i++) {
        T *S = (T *)A->s + i * N;
        const int32_t li = lab[i];
        const T sqi = sq[i], ivi = iv[i];
        int isnan_ = 0;
        FT_PRAGMA(omp simd reduction(|:isnan_))
        for (fl_idx j = 0; j < N; j++) {
            const T qd = sqi + sq[j] - 2 * S[j], qc = qd < 0 ? (T)0 : qd;
            const T d = KD == FL_BT_COSINE ? 1 - S[j] * ivi * iv[j] : (KD == FL_BT_EUCLIDEAN ? FT_SQRT(qc) : qc);
            dd[j] = d;
            cn[j] = 0;
            isnan_ |= (d != d) & (j != i);
        }
        double loss = 0, count = 0;
        const int64_t *mem = A->cmem + A->cstart[li], *mend = A->cmem + A->cstart[li + 1];
        for (; mem < mend && !isnan_; mem++) {
            const fl_idx p = (fl_idx)*mem;
            if (p == i) continue;
            const T h = dd[p] + margin;
            T c_ = 0, s_ = 0;
            FT_PRAGMA(omp simd reduction(+:c_, s_))
            for (fl_idx j = 0; j < N; j++) {
                const int act = BT_IS_NEG(j) & (dd[j] < h);
                const T one = act ? (T)1 : (T)0, dj = act ? dd[j] : (T)0;
                c_ += one;
                s_ += dj;
                cn[j] += one;
            }
            /* cnt (d_ip + margin) - sum of the active d_in */
            loss += (double)c_ * ((double)dd[p] + (double)margin) - (double)s_;
            count += (double)c_;
            if (WG) S[p] = c_; /* parked: dL/dd_ip, turned into W below */
        }
        const double wi = w ? (double)w[i] : 1.0;
        A->loss[i] = isnan_ ? NAN : wi * loss;
        A->cnt[i] = count;
        if (WG) {
            const T wt = isnan_ ? (T)NAN : (T)wi;
            FT_PRAGMA(omp simd)
            for (fl_idx j = 0; j < N; j++) {
                const int ps = BT_IS_POS(j), ng = BT_IS_NEG(j);
                const T coef = ps ? S[j] : (ng ? -cn[j] : (T)0);
                const T d = dd[j];
                /* dL/dd into W: / d (0 at d = 0) for the euclidean, negated for the cosine */
                const T f = KD == FL_BT_EUCLIDEAN ? (d > 0 ? 1 / d : (T)0) : (KD == FL_BT_COSINE ? (T)-1 : (T)1);
                S[j] = (ps | ng) ? wt * coef * f : (isnan_ ? wt : (T)0);
            }
        }
    }
    return 0;
}

static double FN(bt_all_rows)(const fl_bt_args *A, fl_idx start, fl_idx n, fl_idx *bad)
{
    (void)bad;
    T *scratch = (T *)malloc(2 * (size_t)A->N * sizeof(T));
    if (!scratch) { *bad = -2; return 0; }
    switch (A->prm.i0) {
    case FL_BT_EUCLIDEAN: FN(all_rows)(A, start, n, scratch, scratch + A->N, FL_BT_EUCLIDEAN); break;
    case FL_BT_SQEUCLIDEAN: FN(all_rows)(A, start, n, scratch, scratch + A->N, FL_BT_SQEUCLIDEAN); break;
    default: FN(all_rows)(A, start, n, scratch, scratch + A->N, FL_BT_COSINE);
    }
    free(scratch);
    return 0;
}

/* ------------------------------------------------------------ NT-Xent */

/* Per anchor i, with s_j = cos(e_i, e_j) / tau (tau = pa) and P the
 * positives (same label, j != i), N_i the negatives (other labels):
 *   l_ip = -log(exp(s_p) / (exp(s_p) + sum_{n in N_i} exp(s_n)))
 *        = softplus(L - s_p),  L = logsumexp over N_i of s_n,
 * summed over p (pytorch-metric-learning's NTXentLoss and optax's ntxent;
 * the mean divides by the number of positive pairs).  Gradient, with
 * sig_p = sigmoid(L - s_p) and A = sum_p sig_p:
 *   dL/dcos_ip = -sig_p / tau,  dL/dcos_in = A exp(s_n - L) / tau.
 * A row costs a max pass, an exp pass (which parks exp(s_n - m) in the
 * row in gradient mode), the positives from the class list, and a write
 * pass: one exp per element. */
FL_INLINE double FN(ntx_rows)(const fl_bt_args *A, fl_idx start, fl_idx n)
{
    const fl_idx N = A->N;
    const int32_t *lab = A->lab;
    const T *w = (const T *)A->w;
    const T *iv = (const T *)A->nt + N;
    const double itau = 1.0 / A->prm.pa;
    const int WG = A->mode == FL_FT_GRAD;
    for (fl_idx i = start; i < start + n; i++) {
        T *S = (T *)A->s + i * N;
        const int32_t li = lab[i];
        const T ci = (T)(A->inv[i] * itau);
        const int64_t *m0 = A->cmem + A->cstart[li], *m1 = A->cmem + A->cstart[li + 1];
        const fl_idx cp = (fl_idx)(m1 - m0) - 1;
        /* sweep 1: the negatives' max and NaN */
        T mx[FT_VL];
        int nan_[FT_VL];
        for (int k = 0; k < FT_VL; k++) { mx[k] = -INFINITY; nan_[k] = 0; }
        fl_idx j0 = 0;
        for (; j0 + FT_VL <= N; j0 += FT_VL) {
            FT_PRAGMA(omp simd)
            for (int k = 0; k < FT_VL; k++) {
                const fl_idx j = j0 + k;
                const T s = S[j] * ci * iv[j];
                mx[k] = (BT_IS_NEG(j) & (s > mx[k])) ? s : mx[k];
                nan_[k] |= s != s;
            }
        }
        T m = -INFINITY;
        int isnan_ = 0;
        for (int k = 0; k < FT_VL; k++) { m = mx[k] > m ? mx[k] : m; isnan_ |= nan_[k]; }
        for (fl_idx j = j0; j < N; j++) {
            const T s = S[j] * ci * iv[j];
            m = (BT_IS_NEG(j) && s > m) ? s : m;
            isnan_ |= s != s;
        }
        const double wi = w ? (double)w[i] : 1.0;
        A->cnt[i] = (double)cp;
        if (isnan_ || cp == 0) {
            A->loss[i] = isnan_ ? NAN : 0.0;
            if (WG) {
                const T f = isnan_ ? (T)NAN : (T)0;
                for (fl_idx j = 0; j < N; j++) S[j] = f;
            }
            continue;
        }
        /* sweep 2: Z = sum over negatives of exp(s - m), parked in the row */
        double L = -INFINITY, Z = 0;
        const int neg = m > -INFINITY;
        if (neg) {
            for (fl_idx c0 = 0; c0 < N; c0 += FL_FT_CHUNK) {
                const fl_idx c1 = c0 + FL_FT_CHUNK < N ? c0 + FL_FT_CHUNK : N;
                T z = 0;
                if (WG) {
                    FT_PRAGMA(omp simd reduction(+:z))
                    for (fl_idx j = c0; j < c1; j++) {
                        const T e = FN(exp_np)(S[j] * ci * iv[j] - m);
                        const int ng = BT_IS_NEG(j);
                        z += ng ? e : (T)0;
                        S[j] = ng ? e : S[j];
                    }
                } else {
                    FT_PRAGMA(omp simd reduction(+:z))
                    for (fl_idx j = c0; j < c1; j++) {
                        const T e = FN(exp_np)(S[j] * ci * iv[j] - m);
                        z += BT_IS_NEG(j) ? e : (T)0;
                    }
                }
                Z += (double)z;
            }
            L = (double)m + log(Z);
        }
        /* sweep 3: the positives from the class list, in double */
        double loss = 0, asum = 0;
        for (const int64_t *p = m0; p < m1; p++) {
            const fl_idx j = (fl_idx)*p;
            if (j == i) continue;
            const double x = L - (double)S[j] * (double)ci * (double)iv[j];
            const double ex = exp(-fabs(x));
            loss += (x > 0 ? x : 0.0) + log1p(ex); /* softplus(x); x = -inf: 0 */
            const double sg = x >= 0 ? 1.0 / (1.0 + ex) : ex / (1.0 + ex);
            asum += sg;
            if (WG) S[j] = (T)(-wi * sg * itau);
        }
        A->loss[i] = wi * loss;
        /* sweep 4: the negatives' dL/dcos from the parked exponentials;
         * the positives stay, self is 0 */
        if (WG) {
            const T an = neg ? (T)(wi * asum * itau / Z) : (T)0;
            FT_PRAGMA(omp simd)
            for (fl_idx j = 0; j < N; j++)
                S[j] = BT_IS_NEG(j) ? an * S[j] : (j == i ? (T)0 : S[j]);
        }
    }
    return 0;
}

static double FN(bt_ntxent_rows)(const fl_bt_args *A, fl_idx start, fl_idx n, fl_idx *bad)
{
    (void)bad;
    return FN(ntx_rows)(A, start, n);
}

/* ------------------------------------------------------------ sym */

/* B = W + W^T over tile pairs (I, J), I <= J, numbered in row-major
 * order; column j scaled by inv[j] for the cosine (i0); the partial row
 * sums of B's tile (I, J) go to part[2 TILE q + ...], those of (J, I) to
 * part[2 TILE q + TILE + ...].  Both tiles are copied to local buffers row
 * by row (a tile's 64 rows are 64 pages: walking a column of S directly
 * missed the TLB on every element), added and transposed there, and
 * written back row by row. */
static double FN(bt_sym)(const fl_bt_args *A, fl_idx start, fl_idx n, fl_idx *bad)
{
    (void)bad;
    enum { TL = FL_BT_TILE };
    const fl_idx N = A->N;
    const fl_idx nb = (N + TL - 1) / TL;
    const int cos_ = A->prm.i0 == FL_BT_COSINE;
    const double *inv = A->inv;
    T *S = (T *)A->s;
    T a[TL * TL], b[TL * TL], sr[TL], sc[TL];
    fl_idx I = 0, q = start;
    while (q >= nb - I) { q -= nb - I; I++; }
    fl_idx J = I + q;
    for (fl_idx it = 0; it < n; it++) {
        const fl_idx pq = start + it;
        const fl_idx r0 = I * TL, nr = r0 + TL < N ? TL : N - r0;
        const fl_idx c0 = J * TL, nc = c0 + TL < N ? TL : N - c0;
        for (fl_idx k = 0; k < TL; k++) {
            sr[k] = (cos_ && k < nr) ? (T)inv[r0 + k] : (T)1;
            sc[k] = (cos_ && k < nc) ? (T)inv[c0 + k] : (T)1;
        }
        for (fl_idx k = 0; k < nr; k++) memcpy(a + k * TL, S + (r0 + k) * N + c0, (size_t)nc * sizeof(T));
        if (I != J)
            for (fl_idx l = 0; l < nc; l++) memcpy(b + l * TL, S + (c0 + l) * N + r0, (size_t)nr * sizeof(T));
        const T *bt = I == J ? a : b; /* the transposed partner: the tile itself on the diagonal */
        /* b2[l][k] = sum[k][l] * sr[k] first (it reads a before a is overwritten) */
        T *b2 = I == J ? b : b;
        for (fl_idx l = 0; l < nc; l++)
            for (fl_idx k = 0; k < nr; k++) b2[l * TL + k] = a[k * TL + l] + bt[l * TL + k];
        /* now b2 holds the sums transposed: b2[l][k] = W_kl + W_lk (tile coordinates) */
        double *pt = A->part ? A->part + 2 * TL * pq : NULL;
        for (fl_idx k = 0; k < nr; k++) {
            T rs = 0;
            FT_PRAGMA(omp simd reduction(+:rs))
            for (fl_idx l = 0; l < nc; l++) {
                const T v = b2[l * TL + k] * sc[l];
                a[k * TL + l] = v;
                rs += v;
            }
            memcpy(S + (r0 + k) * N + c0, a + k * TL, (size_t)nc * sizeof(T));
            if (pt) pt[k] = (double)rs;
        }
        if (I != J) {
            for (fl_idx l = 0; l < nc; l++) {
                T cs = 0;
                FT_PRAGMA(omp simd reduction(+:cs))
                for (fl_idx k = 0; k < nr; k++) {
                    const T v = b2[l * TL + k] * sr[k];
                    b2[l * TL + k] = v;
                    cs += v;
                }
                memcpy(S + (c0 + l) * N + r0, b2 + l * TL, (size_t)nr * sizeof(T));
                if (pt) pt[TL + l] = (double)cs;
            }
        }
        if (pt) {
            for (fl_idx k = nr; k < TL; k++) pt[k] = 0;
            for (fl_idx l = (I == J ? 0 : nc); l < TL; l++) pt[TL + l] = 0;
        }
        if (++J == nb) { I++; J = I; }
    }
    return 0;
}

/* ------------------------------------------------------------ final */

/* g_k from (B E)_k (in g): r_k e_k - (B E)_k (times 2 for the squared
 * euclidean), or the cosine's projection; times gscale. */
static double FN(bt_final)(const fl_bt_args *A, fl_idx start, fl_idx n, fl_idx *bad)
{
    (void)bad;
    const fl_idx N = A->N, D = A->D, TL = FL_BT_TILE;
    const fl_idx nb = (N + TL - 1) / TL;
    const int kd = A->prm.i0;
    const double gs = A->gscale, eps = A->prm.pb;
    for (fl_idx k = start; k < start + n; k++) {
        const T *e = (const T *)A->e + k * D;
        T *g = (T *)A->g + k * D;
        if (kd == FL_BT_COSINE) {
            const double ik = A->inv[k];
            const int proj = sqrt(A->sq[k]) > eps;
            double s[6];
            FT_SUMS(s, 1, D, const T t0 = e[j] * g[j];
                    const T t1 = 0; const T t2 = 0; const T t3 = 0; const T t4 = 0; const T t5 = 0;);
            /* J_k y = ik (y - (u.y) u), u = ik e */
            const T a = (T)(gs * ik), b = proj ? (T)(-gs * ik * ik * ik * s[0]) : (T)0;
            FT_PRAGMA(omp simd)
            for (fl_idx j = 0; j < D; j++) g[j] = a * g[j] + b * e[j];
        } else {
            const fl_idx bk = k / TL, o = k % TL;
            double r = 0;
            for (fl_idx c = 0; c < nb; c++) {
                const fl_idx I = bk < c ? bk : c, J = bk < c ? c : bk;
                const fl_idx q = I * nb - I * (I - 1) / 2 + (J - I);
                r += A->part[2 * TL * q + (bk <= c ? 0 : TL) + o];
            }
            const double f = (kd == FL_BT_SQEUCLIDEAN ? 2.0 : 1.0) * gs;
            const T a = (T)(f * r), b = (T)(-f);
            FT_PRAGMA(omp simd)
            for (fl_idx j = 0; j < D; j++) g[j] = a * e[j] + b * g[j];
        }
    }
    return 0;
}

#define BT_ENTRY(NAME) FN(bt_##NAME),
static const fl_bt_block_fn FN(bt_table)[] = {FL_BT_LIST(BT_ENTRY)};
#undef BT_ENTRY

#undef BT_IS_POS
#undef BT_IS_NEG
