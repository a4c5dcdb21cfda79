/* fl_rows_margin.h -- the row losses without a softmax: NLL, the
 * multi-class margin, the multilabel soft margin, and the labels pass.
 * Included by fl_rows_math.h in the stamping context of fl_stamp.h (T,
 * T_F32, TI, FN, EXP, LOG); no include guard, on purpose. */

/* ================= NLL (input = log-probabilities) ======================= */

static double FN(nll_row)(const fl_row_args *a, const T *restrict z, T *restrict g,
                          T *restrict h, fl_idx y)
{
    const double wy = a->w ? (double)((const T *)a->w)[y] : 1.0;
    if (g) {
        FN(zero)(g, a->C);
        g[y] = (T)(-a->gscale * wy);
    }
    FN(zero)(h, a->C);
    return wy != 0 ? -wy * (double)z[y] : 0.0;
}

static double FN(nll_tile)(const fl_row_args *a, fl_idx r0, fl_idx J, fl_idx off, fl_idx *bad)
{
    const fl_idx C = a->C, S = a->S;
    const T *z = (const T *)a->x + off;
    T *g = a->g ? (T *)a->g + off : NULL;
    T *h = a->h ? (T *)a->h + off : NULL;
    T *l = a->l ? (T *)a->l + r0 : NULL;
    const T *w = (const T *)a->w;
    FN(t_zero)(g, C, S, J);
    FN(t_zero)(h, C, S, J);
    double total = 0;
    for (fl_idx jj = 0; jj < J; jj++) {
        const int64_t y = FN(label)(a->t, a->tcode, r0 + jj);
        const int ok = FN(label_ok)(y, a->ignore, a->has_ignore, C);
        double lv = 0;
        if (ok < 0 && *bad < 0) *bad = r0 + jj;
        if (ok > 0) {
            const double wy = w ? (double)w[y] : 1.0;
            lv = wy != 0 ? -wy * (double)z[y * S + jj] : 0.0;
            if (g) g[y * S + jj] = (T)(-a->gscale * wy);
        }
        if (l) l[jj] = (T)lv;
        total += lv;
    }
    return total;
}

/* ================= multi-class margin (PyTorch MultiMarginLoss) ==========
 * l = w_y / C sum_{c != y} max(0, margin - z_y + z_c)^p, p in {1, 2}.
 * The class loop is split at y, so no compare against the label. */

FL_INLINE void FN(mm_seg)(const T *restrict z, T *restrict g, T *restrict h, fl_idx n, T zy,
                          T margin, T gk, double *val, double *gsum, fl_idx *nact,
                          const int P, const int WG, const int WH)
{
    for (fl_idx c0 = 0; c0 < n; c0 += FL_ROW_CHUNK) {
        const fl_idx c1 = RW_MIN(n, c0 + FL_ROW_CHUNK);
        T sv = 0, sg = 0;
        TI na = 0;
        RW_PRAGMA(omp simd reduction(+:sv, sg, na))
        for (fl_idx c = c0; c < c1; c++) {
            const T m = margin - zy + z[c];
            /* NaN falls through to the arithmetic branch, so it propagates */
            const T mp = m > 0 ? m : (m <= 0 ? (T)0 : m);
            const T gv = P == 1 ? (m > 0 ? gk : (m <= 0 ? (T)0 : m)) : 2 * gk * mp;
            sv += P == 1 ? mp : mp * mp;
            na += m > 0;
            if (WG) { g[c] = gv; sg += gv; }
            if (WH) h[c] = (P == 2 && m > 0) ? 2 * gk : (T)0;
        }
        *val += (double)sv;
        *gsum += (double)sg;
        *nact += (fl_idx)na;
    }
}

static double FN(mm_row)(const fl_row_args *a, const T *restrict z, T *restrict g,
                         T *restrict h, fl_idx y)
{
    const fl_idx C = a->C;
    const int P = a->prm.i0;
    const double wy = a->w ? (double)((const T *)a->w)[y] : 1.0, k = wy / (double)C;
    const T margin = (T)a->prm.pa, zy = z[y], gk = (T)(a->gscale * k);
    double val = 0, gsum = 0;
    fl_idx na = 0;
#define MM_CALL(PP, WG, WH)                                                          \
    do {                                                                             \
        FN(mm_seg)(z, g, h, y, zy, margin, gk, &val, &gsum, &na, PP, WG, WH);        \
        FN(mm_seg)(z + y + 1, WG ? g + y + 1 : NULL, WH ? h + y + 1 : NULL,          \
                   C - y - 1, zy, margin, gk, &val, &gsum, &na, PP, WG, WH);         \
    } while (0)
    if (P == 1) {
        if (h) MM_CALL(1, 1, 1); else if (g) MM_CALL(1, 1, 0); else MM_CALL(1, 0, 0);
    } else {
        if (h) MM_CALL(2, 1, 1); else if (g) MM_CALL(2, 1, 0); else MM_CALL(2, 0, 0);
    }
#undef MM_CALL
    if (g) g[y] = (T)(-gsum);
    if (h) h[y] = P == 2 ? (T)(2 * a->gscale * k * (double)na) : (T)0;
    return wy != 0 ? k * val : 0.0;
}

/* ================= multilabel soft margin (classes on the last axis) =====
 * l = 1/C sum_c w_c [y_c softplus(-z_c) + (1 - y_c) softplus(z_c)];
 * g_c = w_c (sigmoid(z_c) - y_c) / C, h_c = w_c s (1 - s) / C.  A term
 * whose coefficient is 0 is skipped (z = +-inf with a matching 0/1 target
 * gives 0, not 0 * inf). */

FL_INLINE double FN(mlsm_pass)(const T *restrict z, const T *restrict t, const T *restrict w,
                               T *restrict g, T *restrict h, T *restrict gt, fl_idx n, T k,
                               const int WW, const int WG, const int WH, const int WT)
{
    double total = 0;
    for (fl_idx c0 = 0; c0 < n; c0 += FL_ROW_CHUNK) {
        const fl_idx c1 = RW_MIN(n, c0 + FL_ROW_CHUNK);
        T sv = 0;
        RW_PRAGMA(omp simd reduction(+:sv))
        for (fl_idx c = c0; c < c1; c++) {
            const T x = z[c], y = t[c];
            const T ax = x < 0 ? -x : x;
            const T ex = EXPN(-ax), r1 = 1 / (1 + ex);
            const T L = FN(log1p_t)(ex);
            const T s = x >= 0 ? r1 : ex * r1, sn = x >= 0 ? ex * r1 : r1;
            const T spn = (x < 0 ? -x : (T)0) + L, spp = (x > 0 ? x : (T)0) + L;
            const T my = 1 - y;
            T v = (y != 0 ? y * spn : y) + (my != 0 ? my * spp : my);
            const T wc = WW ? w[c] : (T)1;
            if (WW) v = wc != 0 ? wc * v : (T)0;
            sv += v;
            if (WG) g[c] = k * wc * (my * s - y * sn);
            if (WH) h[c] = k * wc * (ex * r1 * r1);
            /* d/dy = softplus(-z) - softplus(z) = -z */
            if (WT) gt[c] = k * wc * -x;
        }
        total += (double)sv;
    }
    return total;
}

static double FN(mlsm_row)(const fl_row_args *a, const T *restrict z, const T *restrict t,
                           const T *restrict w, T *restrict g, T *restrict h, T *restrict gt)
{
    const fl_idx C = a->C;
    const T k = (T)(a->gscale / (double)C);
    double v;
    if (w) {
        if (h) v = FN(mlsm_pass)(z, t, w, g, h, NULL, C, k, 1, 1, 1, 0);
        else if (gt) v = FN(mlsm_pass)(z, t, w, g, NULL, gt, C, k, 1, 1, 0, 1);
        else if (g) v = FN(mlsm_pass)(z, t, w, g, NULL, NULL, C, k, 1, 1, 0, 0);
        else v = FN(mlsm_pass)(z, t, w, NULL, NULL, NULL, C, k, 1, 0, 0, 0);
    } else {
        if (h) v = FN(mlsm_pass)(z, t, NULL, g, h, NULL, C, k, 0, 1, 1, 0);
        else if (gt) v = FN(mlsm_pass)(z, t, NULL, g, NULL, gt, C, k, 0, 1, 0, 1);
        else if (g) v = FN(mlsm_pass)(z, t, NULL, g, NULL, NULL, C, k, 0, 1, 0, 0);
        else v = FN(mlsm_pass)(z, t, NULL, NULL, NULL, NULL, C, k, 0, 0, 0, 0);
    }
    return v / (double)C;
}

static double FN(rows_nll)(const fl_row_args *a, fl_idx start, fl_idx n, fl_idx *bad)
{
    RW_LABEL_ROWS(FN(nll_row)(a, z, g, h, y))
}

static double FN(block_nll)(const fl_row_args *a, fl_idx start, fl_idx n, fl_idx *bad)
{
    if (a->S == 1) return FN(rows_nll)(a, start, n, bad);
    RW_TILES(FN(nll_tile))
}

/* S = 1 only (the Python layer accepts (C,) and (N, C)) */
static double FN(block_multi_margin)(const fl_row_args *a, fl_idx start, fl_idx n, fl_idx *bad)
{
    RW_LABEL_ROWS(FN(mm_row)(a, z, g, h, y))
}

/* S = 1 only (classes on the last axis; the Python layer folds the rest).
 * The weight is per class (C elements), or per element (like x) when
 * prm.i1 = 1. */
static double FN(block_multilabel_soft_margin)(const fl_row_args *a, fl_idx start, fl_idx n,
                                               fl_idx *bad)
{
    (void)bad;
    const fl_idx C = a->C;
    T *l = (T *)a->l;
    double total = 0;
    for (fl_idx r = start; r < start + n; r++) {
        const fl_idx o = r * C;
        const T *w = a->w ? (const T *)a->w + (a->prm.i1 ? o : 0) : NULL;
        const double lv = FN(mlsm_row)(a, (const T *)a->x + o, (const T *)a->t + o, w,
                                       a->g ? (T *)a->g + o : NULL, a->h ? (T *)a->h + o : NULL,
                                       a->gt ? (T *)a->gt + o : NULL);
        if (l) l[r] = (T)lv;
        total += lv;
    }
    return total;
}

/* The labels pass: the block's sum of w[label] (count without w) over the
 * labels that are not ignored, and the first bad label.  It runs before the
 * main pass whenever labels are read (the mean's denominator, and the check
 * that finds a bad label before out= is written), so the count is a
 * branch-free vectorized loop per label type; the first bad label is looked
 * for only in a block that has one. */
#define RW_LABEL_COUNT(TY)                                                     \
    do {                                                                       \
        const TY *t_ = (const TY *)a->t + start;                               \
        RW_PRAGMA(omp simd reduction(+ : cnt, nbad))                          \
        for (fl_idx i = 0; i < n; i++) {                                       \
            const int64_t y = (int64_t)t_[i];                                  \
            const int64_t ign = (int64_t)(hi & (y == ig));                     \
            const int64_t in = (int64_t)((y >= 0) & (y < C));                  \
            cnt += in & (ign ^ 1);                                             \
            nbad += (in | ign) ^ 1;                                            \
        }                                                                      \
    } while (0)

static double FN(block_labels)(const fl_row_args *a, fl_idx start, fl_idx n, fl_idx *bad)
{
    const T *w = (const T *)a->w;
    const int64_t C = (int64_t)a->C, ig = a->ignore;
    const int hi = a->has_ignore != 0;
    double ws = 0;
    int64_t cnt = 0, nbad = 0;
    if (!w) {
        switch (a->tcode) {
        case FL_LABEL_I64: RW_LABEL_COUNT(int64_t); break;
        case FL_LABEL_I32: RW_LABEL_COUNT(int32_t); break;
        default: RW_LABEL_COUNT(uint8_t); break;
        }
        ws = (double)cnt;
    } else {
        for (fl_idx r = start; r < start + n; r++) {
            const int64_t y = FN(label)(a->t, a->tcode, r);
            const int ok = FN(label_ok)(y, ig, hi, a->C);
            if (ok > 0) ws += (double)w[y];
            nbad += ok < 0;
        }
    }
    if (nbad)
        for (fl_idx r = start; r < start + n; r++)
            if (FN(label_ok)(FN(label)(a->t, a->tcode, r), ig, hi, a->C) < 0) {
                *bad = r;
                break;
            }
    return ws;
}
#undef RW_LABEL_COUNT
