/* fl_rows_focal.h -- the softmax focal loss, integer labels.
 * Included by fl_rows_math.h in the stamping context of fl_stamp.h (T,
 * T_F32, TI, FN, EXP, LOG); no include guard, on purpose. */

/* ================= softmax focal loss, integer labels ===================
 * l = -alpha_y (1 - p)^gamma log p, p = p_y.  With u = 1 - p (from the
 * classes other than y, so it keeps its digits when p -> 1), L = -log p,
 * r = L / u (-> 1 as u -> 0), U = u^gamma and K = U (1 + gamma p r):
 *   g_c = alpha K p_c (c != y),  g_y = -alpha K u
 *   h_c = alpha U [gamma (gamma-1) p^2 L rho_c^2 + 2 gamma p p_c rho_c
 *                  + gamma p r p_c (1 - 2 p_c) + p_c (1 - p_c)],  rho_c = p_c / u
 *   h_y = alpha U [gamma (gamma-1) p^2 L + 2 gamma p u + u p - gamma p L (1 - 2p)]
 * every term finite for gamma >= 0 as u -> 0 (gamma = 0 is cross-entropy).
 * The sums are split at the row max as for cross-entropy (r_sumexp_x), so
 * that 1 - p of the target and of a non-target class at the max are both
 * exact.  The Hessian is computed in double (its coefficients span more
 * than float's range). */

typedef struct {
    double loss, k, ky, h0, c2, c1, c3, hy, is, sex, om;
} FN(focal_coef);

/* zy = z_y - m; (rest, kmax) = r_sumexp_x's split of the row */
FL_INLINE FN(focal_coef) FN(focal_scalars)(double zy, double rest, double kmax, double alpha,
                                           double gamma, double gs)
{
    FN(focal_coef) f;
    const double s = kmax + rest, ey = exp(zy), p = ey / s;
    /* the other classes' sum: exact from the split when y is at the max,
     * otherwise s - ey >= 1 and there is nothing to cancel */
    const double sex = zy == 0 ? (kmax - 1) + rest : s - ey, u = sex / s;
    /* -log p: log1p keeps the digits when the target is at the max;
     * otherwise p <= 1/2 and log(s) - zy is exact enough and cannot
     * overflow (ey may underflow to 0 when the target is far below) */
    const double L = zy == 0 ? RW_LOG1P(sex) : log(s) - zy;
    const double r = u > 0 ? L / u : 1.0;
    const double U = gamma == 0 ? 1.0 : pow(u, gamma);
    const double K = U * (1 + gamma * p * r);
    f.loss = alpha != 0 ? alpha * U * L : 0.0;
    f.is = 1 / s;
    f.sex = sex;
    f.om = ((kmax - 1) + rest) / s;
    f.k = gs * alpha * K / s;
    f.ky = -gs * alpha * K * u;
    f.h0 = gs * alpha * U;
    f.c2 = gamma * (gamma - 1) * p * p * L;
    f.c1 = 2 * gamma * p;
    f.c3 = gamma * p * r;
    f.hy = f.h0 * (f.c2 + 2 * gamma * p * u + u * p - gamma * p * L * (1 - 2 * p));
    return f;
}

/* h_c for c != y, from the parked e_c (double); rho = e / sex is a
 * division, as 1 / sex may overflow when sex is subnormal */
#define FOCAL_RHO(e, F_sex) ((F_sex) > 0 ? (e) / (F_sex) : 0.0)
#define FOCAL_HC(F_h0, F_c2, F_c1, F_c3, F_is, F_sex, F_om, e)                 \
    ((F_h0) * ((F_c2) * FOCAL_RHO(e, F_sex) * FOCAL_RHO(e, F_sex) +            \
               (F_c1) * ((e) * (F_is)) * FOCAL_RHO(e, F_sex) +                 \
               (F_c3) * ((e) * (F_is)) * (1 - 2 * ((e) * (F_is))) +            \
               ((e) * (F_is)) * ((e) == 1 ? (F_om) : 1 - (e) * (F_is))))

static double FN(focal_row)(const fl_row_args *a, const T *restrict z, T *restrict g,
                            T *restrict h, fl_idx y)
{
    const fl_idx C = a->C;
    const double gamma = a->prm.pa;
    const double alpha = a->w ? (double)((const T *)a->w)[y] : a->prm.pb;
    const T m = FN(r_max)(z, C);
    double kmax;
    const double rest = FN(r_sumexp_x)(z, g, C, m, &kmax);
    const FN(focal_coef) f = FN(focal_scalars)((double)z[y] - (double)m, rest, kmax, alpha, gamma,
                                               a->gscale);
    if (!g) return f.loss;
    if (h) {
        RW_PRAGMA(omp simd)
        for (fl_idx c = 0; c < C; c++) {
            const double e = (double)g[c];
            h[c] = (T)FOCAL_HC(f.h0, f.c2, f.c1, f.c3, f.is, f.sex, f.om, e);
            g[c] = (T)(f.k * e);
        }
        h[y] = (T)f.hy;
    } else {
        const T k = (T)f.k;
        RW_PRAGMA(omp simd)
        for (fl_idx c = 0; c < C; c++) g[c] = k * g[c];
    }
    g[y] = (T)f.ky;
    return f.loss;
}

static double FN(focal_tile)(const fl_row_args *a, fl_idx r0, fl_idx J, fl_idx off, fl_idx *bad)
{
    const fl_idx C = a->C, S = a->S;
    const T *z = (const T *)a->x + off;
    T *g = a->g ? (T *)a->g + off : NULL;
    T *h = a->h ? (T *)a->h + off : NULL;
    T *l = a->l ? (T *)a->l + r0 : NULL;
    const T *w = (const T *)a->w;
    const double gamma = a->prm.pa;
    fl_idx yv[FL_ROW_TILE];
    T act[FL_ROW_TILE], mt[FL_ROW_TILE];
    double rs[FL_ROW_TILE], kt[FL_ROW_TILE];
    int any = 0;
    for (fl_idx jj = 0; jj < J; jj++) {
        const int64_t y = FN(label)(a->t, a->tcode, r0 + jj);
        const int ok = FN(label_ok)(y, a->ignore, a->has_ignore, C);
        if (ok < 0 && *bad < 0) *bad = r0 + jj;
        act[jj] = ok > 0;
        yv[jj] = ok > 0 ? (fl_idx)y : 0;
        any |= ok > 0;
    }
    if (!any) return FN(t_none)(g, h, l, C, S, J);
    FN(t_max)(z, C, S, J, mt);
    FN(t_sumexp_x)(z, g, C, S, J, mt, rs, kt);
    FN(focal_coef) f[FL_ROW_TILE];
    double total = 0;
    for (fl_idx jj = 0; jj < J; jj++) {
        const double zy = (double)z[yv[jj] * S + jj] - (double)mt[jj];
        const double alpha = act[jj] == 0 ? 0.0 : (w ? (double)w[yv[jj]] : a->prm.pb);
        f[jj] = FN(focal_scalars)(zy, rs[jj], kt[jj], alpha, gamma, a->gscale);
        const double lv = act[jj] != 0 ? f[jj].loss : 0.0;
        if (l) l[jj] = (T)lv;
        total += lv;
    }
    if (!g) return total;
    if (h) {
        double h0[FL_ROW_TILE], c2[FL_ROW_TILE], c1[FL_ROW_TILE], c3[FL_ROW_TILE];
        double k[FL_ROW_TILE], is[FL_ROW_TILE], sx[FL_ROW_TILE], om[FL_ROW_TILE];
        for (fl_idx jj = 0; jj < J; jj++) {
            h0[jj] = f[jj].h0; c2[jj] = f[jj].c2; c1[jj] = f[jj].c1; c3[jj] = f[jj].c3;
            k[jj] = f[jj].k; is[jj] = f[jj].is; sx[jj] = f[jj].sex; om[jj] = f[jj].om;
        }
        for (fl_idx c = 0; c < C; c++) {
            T *restrict gc = g + c * S, *restrict hc = h + c * S;
            RW_PRAGMA(omp simd)
            for (fl_idx jj = 0; jj < J; jj++) {
                const double e = (double)gc[jj];
                const double hv = FOCAL_HC(h0[jj], c2[jj], c1[jj], c3[jj], is[jj], sx[jj], om[jj], e);
                hc[jj] = act[jj] != 0 ? (T)hv : (T)0;
                gc[jj] = act[jj] != 0 ? (T)(k[jj] * e) : (T)0;
            }
        }
    } else {
        T k[FL_ROW_TILE];
        for (fl_idx jj = 0; jj < J; jj++) k[jj] = (T)f[jj].k;
        for (fl_idx c = 0; c < C; c++) {
            T *restrict gc = g + c * S;
            RW_PRAGMA(omp simd)
            for (fl_idx jj = 0; jj < J; jj++) gc[jj] = act[jj] != 0 ? k[jj] * gc[jj] : (T)0;
        }
    }
    for (fl_idx jj = 0; jj < J; jj++) {
        if (act[jj] == 0) continue;
        const fl_idx k = yv[jj] * S + jj;
        g[k] = (T)f[jj].ky;
        if (h) h[k] = (T)f[jj].hy;
    }
    return total;
}

#undef FOCAL_HC
#undef FOCAL_RHO

static double FN(rows_focal)(const fl_row_args *a, fl_idx start, fl_idx n, fl_idx *bad)
{
    RW_LABEL_ROWS_P(FN(focal_row)(a, z, g, h, y), 1)
}

static double FN(block_focal)(const fl_row_args *a, fl_idx start, fl_idx n, fl_idx *bad)
{
    if (a->S == 1) return FN(rows_focal)(a, start, n, bad);
    RW_TILES(FN(focal_tile))
}
