/* fl_rows_ce.h -- cross-entropy (and Poly-1): integer labels, soft
 * targets, and the grouped small-C path of the common case.
 * Included by fl_rows_math.h in the stamping context of fl_stamp.h (T,
 * T_F32, TI, FN, EXP, LOG); no include guard, on purpose. */

/* ================= cross-entropy (and Poly-1), integer labels ============ */

/* One row with a checked label y; returns the row's loss. */
static double FN(ce_row)(const fl_row_args *a, const T *restrict z, T *restrict g,
                         T *restrict h, const T *restrict v, fl_idx y)
{
    const fl_idx C = a->C;
    const T *w = (const T *)a->w;
    const double eps = a->prm.pa, pe = a->prm.pb, b = eps / (double)C;
    const double wy = w ? (double)w[y] : 1.0;
    const double A = (1 - eps) * wy, M = A + b * a->wsum;
    const T m = FN(r_max)(z, C);
    double k;
    const double rest = FN(r_sumexp_x)(z, g, C, m, &k), s = k + rest, is = 1 / s;
    const double zy = (double)z[y] - (double)m;
    double loss = M * FN(log_s)(rest, k) - (A != 0 ? A * zy : 0.0);
    if (eps != 0) loss -= b * FN(r_wdiff)(z, w, C, m);
    /* p_y's numerator: parked by r_sumexp_x, or recomputed the same way
     * (so that the value-only call gives the same bits) */
    const double ey = g ? (double)g[y] : (pe != 0 ? (double)EXPN(z[y] - m) : 0.0), py = ey * is;
    double qp = 0, Es = 0;
    if (pe != 0) {
        Es = eps != 0 ? FN(r_wexp)(z, g, w, C, m) * is : 0.0;
        qp = A * py + b * Es;
        loss += pe * (M - qp);
    }
    if (!g) return loss;
    const double gs = a->gscale;
    const double om = ((k - 1) + rest) * is;   /* 1 - p of a class at the max */
    if (a->mode == FL_ROW_HVP) {
        double pr, pm;
        FN(r_dot_x)(g, v, C, &pr, &pm);
        FN(r_hvp_write)(g, v, C, (T)is, (T)om, (T)(gs * M), (T)pr, (T)pm);
        return loss;
    }
    FN(r_sm_write_any)(g, h, NULL, w, C, (T)is, (T)om, (T)(M + pe * qp), (T)gs, (T)M, (T)pe,
                       (T)qp, (T)(1 - eps), (T)b, eps != 0, pe != 0);
    /* The target class, from double scalars, with 1 - p_y from the classes
     * below the max when the target is at the max (no cancellation):
     * g_y = M p_y - q_y + pe p_y (qp - q_y), M p_y - q_y = -A (1 - p_y)
     * + b (W p_y - w_y), qp - q_y = -A (1 - p_y) + b (E/s - w_y). */
    const double omp = zy == 0 ? ((k - 1) + rest) * is : 1 - py;
    const double dq = -A * omp + b * (Es - wy);
    g[y] = (T)(gs * (-A * omp + b * (a->wsum * py - wy) + pe * py * dq));
    if (h) h[y] = (T)(gs * (M * py * omp + pe * py * dq * (1 - 2 * py)));
    return loss;
}

/* The tile form: J positions of one sample starting at item r0. */
static double FN(ce_tile)(const fl_row_args *a, fl_idx r0, fl_idx J, fl_idx off, fl_idx *bad)
{
    const fl_idx C = a->C, S = a->S;
    const T *z = (const T *)a->x + off;
    T *g = a->g ? (T *)a->g + off : NULL;
    T *h = a->h ? (T *)a->h + off : NULL;
    const T *v = a->v ? (const T *)a->v + off : NULL;
    T *l = a->l ? (T *)a->l + r0 : NULL;
    const T *w = (const T *)a->w;
    const double eps = a->prm.pa, pe = a->prm.pb, b = eps / (double)C, gs = a->gscale;
    fl_idx yv[FL_ROW_TILE];
    T act[FL_ROW_TILE], mt[FL_ROW_TILE];
    double A[FL_ROW_TILE], M[FL_ROW_TILE], st[FL_ROW_TILE], kt[FL_ROW_TILE], d[FL_ROW_TILE];
    double qp[FL_ROW_TILE], Es[FL_ROW_TILE];
    int any = 0;
    for (fl_idx jj = 0; jj < J; jj++) {
        const int64_t y = FN(label)(a->t, a->tcode, r0 + jj);
        const int ok = FN(label_ok)(y, a->ignore, a->has_ignore, C);
        if (ok < 0 && *bad < 0) *bad = r0 + jj;
        act[jj] = ok > 0;
        yv[jj] = ok > 0 ? (fl_idx)y : 0;
        const double wy = ok > 0 ? (w ? (double)w[y] : 1.0) : 0.0;
        A[jj] = (1 - eps) * wy;
        M[jj] = ok > 0 ? A[jj] + b * a->wsum : 0.0;
        any |= ok > 0;
    }
    if (!any) return FN(t_none)(g, h, l, C, S, J);
    FN(t_max)(z, C, S, J, mt);
    FN(t_sumexp_x)(z, g, C, S, J, mt, d, kt);   /* d: the sum below the max */
    double loss[FL_ROW_TILE], omp[FL_ROW_TILE], py[FL_ROW_TILE], rs[FL_ROW_TILE];
    for (fl_idx jj = 0; jj < J; jj++) {
        const double zy = (double)z[yv[jj] * S + jj] - (double)mt[jj];
        rs[jj] = d[jj];
        st[jj] = kt[jj] + d[jj];
        loss[jj] = M[jj] * FN(log_s)(d[jj], kt[jj]) - (A[jj] != 0 ? A[jj] * zy : 0.0);
        py[jj] = exp(zy) / st[jj];
        omp[jj] = zy == 0 ? ((kt[jj] - 1) + d[jj]) / st[jj] : 1 - py[jj];
    }
    if (eps != 0) {
        FN(t_wdiff)(z, w, C, S, J, mt, d);
        for (fl_idx jj = 0; jj < J; jj++) loss[jj] -= b * d[jj];
    }
    for (fl_idx jj = 0; jj < J; jj++) qp[jj] = Es[jj] = 0;
    if (pe != 0) {
        if (eps != 0) FN(t_wexp)(z, g, w, C, S, J, mt, d);
        for (fl_idx jj = 0; jj < J; jj++) {
            Es[jj] = eps != 0 ? d[jj] / st[jj] : 0.0;
            qp[jj] = A[jj] * py[jj] + b * Es[jj];
            loss[jj] += pe * (M[jj] - qp[jj]);
        }
    }
    double total = 0;
    for (fl_idx jj = 0; jj < J; jj++) {
        const double lv = act[jj] != 0 ? loss[jj] : 0.0;
        if (l) l[jj] = (T)lv;
        total += lv;
    }
    if (!g) return total;
    T is[FL_ROW_TILE], om[FL_ROW_TILE], cp[FL_ROW_TILE], cg[FL_ROW_TILE], ch[FL_ROW_TILE];
    T qpt[FL_ROW_TILE];
    for (fl_idx jj = 0; jj < J; jj++) {
        is[jj] = (T)(1 / st[jj]);
        om[jj] = (T)(((kt[jj] - 1) + rs[jj]) / st[jj]);
        ch[jj] = (T)M[jj];
    }
    if (a->mode == FL_ROW_HVP) {
        double pr[FL_ROW_TILE], pm[FL_ROW_TILE];
        T prt[FL_ROW_TILE], pmt[FL_ROW_TILE];
        FN(t_dot_x)(g, v, C, S, J, pr, pm);
        for (fl_idx jj = 0; jj < J; jj++) { prt[jj] = (T)pr[jj]; pmt[jj] = (T)pm[jj]; }
        for (fl_idx jj = 0; jj < J; jj++) cp[jj] = (T)(gs * M[jj]);
        FN(t_hvp_write)(g, v, C, S, J, is, om, cp, prt, pmt, act);
        return total;
    }
    for (fl_idx jj = 0; jj < J; jj++) {
        cp[jj] = (T)(M[jj] + pe * qp[jj]);
        cg[jj] = (T)gs;
        qpt[jj] = (T)qp[jj];
    }
    FN(t_sm_write_any)(g, h, NULL, w, C, S, J, is, om, cp, cg, ch, qpt, act, (T)pe,
                       (T)(1 - eps), (T)b, eps != 0, pe != 0);
    for (fl_idx jj = 0; jj < J; jj++) {   /* the target class, as in ce_row */
        if (act[jj] == 0) continue;
        const fl_idx k = yv[jj] * S + jj;
        const double wy = w ? (double)w[yv[jj]] : 1.0, p = py[jj];
        const double dq = -A[jj] * omp[jj] + b * (Es[jj] - wy);
        g[k] = (T)(gs * (-A[jj] * omp[jj] + b * (a->wsum * p - wy) + pe * p * dq));
        if (h) h[k] = (T)(gs * (M[jj] * p * omp[jj] + pe * p * dq * (1 - 2 * p)));
    }
    return total;
}

/* ================= cross-entropy (and Poly-1), soft targets ============== */

/* M = sum_c q_c and Z = sum_c q_c (z_c - m), q_c = w_c (ls1 t_c + b) */
FL_INLINE void FN(r_qsums)(const T *restrict z, const T *restrict t, const T *restrict w,
                           fl_idx n, T m, T ls1, T b, double *Mo, double *Zo)
{
    double M = 0, Z = 0;
    for (fl_idx c0 = 0; c0 < n; c0 += FL_ROW_CHUNK) {
        const fl_idx c1 = RW_MIN(n, c0 + FL_ROW_CHUNK);
        T sm = 0, sz = 0;
        if (w) {
            RW_PRAGMA(omp simd reduction(+:sm, sz))
            for (fl_idx c = c0; c < c1; c++) {
                const T q = w[c] * (ls1 * t[c] + b);
                sm += q;
                const T u = q != 0 ? q * (z[c] - m) : (T)0;
                sz += u;
            }
        } else {
            RW_PRAGMA(omp simd reduction(+:sm, sz))
            for (fl_idx c = c0; c < c1; c++) {
                const T q = ls1 * t[c] + b;
                sm += q;
                const T u = q != 0 ? q * (z[c] - m) : (T)0;
                sz += u;
            }
        }
        M += (double)sm;
        Z += (double)sz;
    }
    *Mo = M;
    *Zo = Z;
}

/* sum_c q_c e_c (Poly-1), e parked or recomputed */
FL_INLINE double FN(r_qexp)(const T *restrict z, const T *restrict e, const T *restrict t,
                            const T *restrict w, fl_idx n, T m, T ls1, T b)
{
    double d;
    if (e) RW_SUM(d, n, const T q = (w ? w[c] : (T)1) * (ls1 * t[c] + b); const T term_ = q * e[c];);
    else RW_SUM(d, n, const T q = (w ? w[c] : (T)1) * (ls1 * t[c] + b); const T term_ = q * EXPN(z[c] - m););
    return d;
}

/* The target's gradient, d l / d t_c = ls1 w_c (pe (1 - p_c) - log p_c),
 * times the reduction's scale (in cg), with log p_c = z_c - m - log s and
 * p_c = e_c / s from the exponentials parked in e (read before the write
 * pass turns them into the gradient).  A class with ls1 w_c = 0 gets 0. */
FL_INLINE void FN(r_tgrad_write)(T *restrict gt, const T *restrict z, const T *restrict e,
                                 const T *restrict w, fl_idx n, T m, T lse, T is, T cg, T pe,
                                 const int PO)
{
    RW_PRAGMA(omp simd)
    for (fl_idx c = 0; c < n; c++) {
        const T k = cg * (w ? w[c] : (T)1);
        const T lp = (z[c] - m) - lse;
        const T u = PO ? pe * (1 - e[c] * is) - lp : -lp;
        gt[c] = k != 0 ? k * u : (T)0;
    }
}

static double FN(ce_soft_row)(const fl_row_args *a, const T *restrict z, const T *restrict t,
                              T *restrict g, T *restrict h, const T *restrict v, T *restrict gt)
{
    const fl_idx C = a->C;
    const T *w = (const T *)a->w;
    const double eps = a->prm.pa, pe = a->prm.pb, b = eps / (double)C;
    const T m = FN(r_max)(z, C);
    double k;
    const double rest = FN(r_sumexp_x)(z, g, C, m, &k), s = k + rest;
    double M, Z;
    FN(r_qsums)(z, t, w, C, m, (T)(1 - eps), (T)b, &M, &Z);
    const double lse = FN(log_s)(rest, k);
    double loss = M * lse - Z, qp = 0;
    if (pe != 0) {
        qp = FN(r_qexp)(z, g, t, w, C, m, (T)(1 - eps), (T)b) / s;
        loss += pe * (M - qp);
    }
    if (!g) return loss;
    const double gs = a->gscale, is = 1 / s, om = ((k - 1) + rest) * is;
    if (gt) {
        if (pe != 0) FN(r_tgrad_write)(gt, z, g, w, C, m, (T)lse, (T)is, (T)(gs * (1 - eps)), (T)pe, 1);
        else FN(r_tgrad_write)(gt, z, g, w, C, m, (T)lse, (T)is, (T)(gs * (1 - eps)), (T)pe, 0);
    }
    if (a->mode == FL_ROW_HVP) {
        double pr, pm;
        FN(r_dot_x)(g, v, C, &pr, &pm);
        FN(r_hvp_write)(g, v, C, (T)is, (T)om, (T)(gs * M), (T)pr, (T)pm);
        return loss;
    }
    FN(r_sm_write_any)(g, h, t, w, C, (T)is, (T)om, (T)(M + pe * qp), (T)gs, (T)M, (T)pe,
                       (T)qp, (T)(1 - eps), (T)b, 2, pe != 0);
    return loss;
}

static double FN(ce_soft_tile)(const fl_row_args *a, fl_idx r0, fl_idx J, fl_idx off, fl_idx *bad)
{
    (void)bad;
    const fl_idx C = a->C, S = a->S;
    const T *z = (const T *)a->x + off, *t = (const T *)a->t + off;
    T *g = a->g ? (T *)a->g + off : NULL;
    T *h = a->h ? (T *)a->h + off : NULL;
    const T *v = a->v ? (const T *)a->v + off : NULL;
    T *l = a->l ? (T *)a->l + r0 : NULL;
    T *gt = a->gt ? (T *)a->gt + off : NULL;
    const T *w = (const T *)a->w;
    const double eps = a->prm.pa, pe = a->prm.pb, gs = a->gscale;
    const T ls1 = (T)(1 - eps), b = (T)(eps / (double)C);
    T mt[FL_ROW_TILE], act[FL_ROW_TILE];
    double st[FL_ROW_TILE], kt[FL_ROW_TILE], rs[FL_ROW_TILE], ls[FL_ROW_TILE], M[FL_ROW_TILE];
    double Z[FL_ROW_TILE], qp[FL_ROW_TILE];
    FN(t_max)(z, C, S, J, mt);
    FN(t_sumexp_x)(z, g, C, S, J, mt, rs, kt);
    for (fl_idx jj = 0; jj < J; jj++) {
        ls[jj] = FN(log_s)(rs[jj], kt[jj]);
        st[jj] = kt[jj] + rs[jj];
    }
    if (w) {
        TL_SUM(M, s_[jj] += w[c] * (ls1 * t[o_ + jj] + b););
        TL_SUM(Z, const T q = w[c] * (ls1 * t[o_ + jj] + b);
               const T u_ = q != 0 ? q * (z[o_ + jj] - mt[jj]) : (T)0; s_[jj] += u_;);
    } else {
        TL_SUM(M, s_[jj] += ls1 * t[o_ + jj] + b;);
        TL_SUM(Z, const T q = ls1 * t[o_ + jj] + b;
               const T u_ = q != 0 ? q * (z[o_ + jj] - mt[jj]) : (T)0; s_[jj] += u_;);
    }
    for (fl_idx jj = 0; jj < J; jj++) qp[jj] = 0;
    if (pe != 0) {
        if (g) TL_SUM(qp, const T u_ = (w ? w[c] : (T)1) * (ls1 * t[o_ + jj] + b) * g[o_ + jj]; s_[jj] += u_;);
        else TL_SUM(qp, const T u_ = (w ? w[c] : (T)1) * (ls1 * t[o_ + jj] + b) *
                                  EXPN(z[o_ + jj] - mt[jj]); s_[jj] += u_;);
        for (fl_idx jj = 0; jj < J; jj++) qp[jj] /= st[jj];
    }
    double total = 0;
    for (fl_idx jj = 0; jj < J; jj++) {
        const double lv = M[jj] * ls[jj] - Z[jj] + (pe != 0 ? pe * (M[jj] - qp[jj]) : 0.0);
        if (l) l[jj] = (T)lv;
        total += lv;
    }
    if (!g) return total;
    T is[FL_ROW_TILE], om[FL_ROW_TILE], cp[FL_ROW_TILE], cg[FL_ROW_TILE], ch[FL_ROW_TILE];
    T qpt[FL_ROW_TILE];
    for (fl_idx jj = 0; jj < J; jj++) {
        act[jj] = 1;
        is[jj] = (T)(1 / st[jj]);
        om[jj] = (T)(((kt[jj] - 1) + rs[jj]) / st[jj]);
        ch[jj] = (T)(gs * M[jj]);       /* H v's scale; the write pass takes M */
        cp[jj] = (T)(M[jj] + pe * qp[jj]);
        cg[jj] = (T)gs;
        qpt[jj] = (T)qp[jj];
    }
    if (gt) {
        /* the target's gradient, as r_tgrad_write, before g is overwritten */
        const T cgt = (T)(gs * (1 - eps)), pet = (T)pe;
        T lt[FL_ROW_TILE];
        for (fl_idx jj = 0; jj < J; jj++) lt[jj] = (T)ls[jj];
        for (fl_idx c = 0; c < C; c++) {
            const T k = cgt * (w ? w[c] : (T)1);
            const T *restrict zc = z + c * S, *restrict ec = g + c * S;
            T *restrict tc = gt + c * S;
            RW_PRAGMA(omp simd)
            for (fl_idx jj = 0; jj < J; jj++) {
                const T lp = (zc[jj] - mt[jj]) - lt[jj];
                const T u = pe != 0 ? pet * (1 - ec[jj] * is[jj]) - lp : -lp;
                tc[jj] = k != 0 ? k * u : (T)0;
            }
        }
    }
    if (a->mode == FL_ROW_HVP) {
        double pr[FL_ROW_TILE], pm[FL_ROW_TILE];
        T prt[FL_ROW_TILE], pmt[FL_ROW_TILE];
        FN(t_dot_x)(g, v, C, S, J, pr, pm);
        for (fl_idx jj = 0; jj < J; jj++) { prt[jj] = (T)pr[jj]; pmt[jj] = (T)pm[jj]; }
        FN(t_hvp_write)(g, v, C, S, J, is, om, ch, prt, pmt, act);
        return total;
    }
    for (fl_idx jj = 0; jj < J; jj++) ch[jj] = (T)M[jj];
    FN(t_sm_write_any)(g, h, t, w, C, S, J, is, om, cp, cg, ch, qpt, act, (T)pe, ls1, b, 2,
                       pe != 0);
    return total;
}

static double FN(rows_ce)(const fl_row_args *a, fl_idx start, fl_idx n, fl_idx *bad)
{
    const T *vbase = (const T *)a->v;
    RW_LABEL_ROWS_P(FN(ce_row)(a, z, g, h, vbase ? vbase + r * C : NULL, y), 1)
}

/* log1p(t), t >= 0, in double: fl_vmath.h's log1p_pos_d (inline, no
 * libmvec call) */
FL_INLINE double FN(log1p_d)(double t)
{
    return FN(log1p_pos_d)(t);
}

/* the plain write pass, in place over the parked e: g = k1 e, h = kh p (1 -
 * p), p = e is (om at e = 1) */
FL_INLINE void FN(r_plain_write)(T *restrict g, T *restrict h, fl_idx n, T k1, T kh, T is, T om)
{
    if (h) {
        RW_PRAGMA(omp simd)
        for (fl_idx c = 0; c < n; c++) {
            const T e = g[c], p = e * is;
            const T omp = e == 1 ? om : 1 - p;
            h[c] = kh * p * omp;
            g[c] = k1 * e;
        }
    } else {
        RW_PRAGMA(omp simd)
        for (fl_idx c = 0; c < n; c++) g[c] = k1 * g[c];
    }
}

#define FL_ROW_GROUP 8
/* Rows of at most this many classes take rows_ce_plain's flat path: the
 * group's shifted logits z - m are laid out contiguously (in the gradient
 * buffer, or a scratch of FL_ROW_GROUP * RW_SMALL_C values without one)
 * and exponentiated in one loop over the whole group, whose constants are
 * set up once instead of once per row; the split sums then read e. */
#define RW_SMALL_C 64

/* r_sumexp_x's split of a row of C <= RW_SMALL_C exponentials already in
 * e: the sum of those below 1 in RW_VL float lanes (tree as RW_SUM), and
 * the count of those equal to 1 in integer lanes (exact in any order);
 * the tail is the last RW_VL classes with the lanes already summed masked
 * off, or for C < RW_VL a clamped index.  No chunk loop: at C = 32 that
 * and the second float tree cost a third of the row. */
FL_INLINE double FN(r_split_small)(const T *restrict e, fl_idx C, double *k)
{
    T l1[RW_VL];
    TI l2[RW_VL];
    for (int q = 0; q < RW_VL; q++) { l1[q] = 0; l2[q] = 0; }
    fl_idx cb = 0;
    for (; cb + RW_VL <= C; cb += RW_VL) {
        RW_PRAGMA(omp simd)
        for (int q = 0; q < RW_VL; q++) {
            const T ec = e[cb + q];
            const int mx = ec == 1;
            const T t1 = mx ? (T)0 : ec;
            l1[q] += t1;
            l2[q] += mx;
        }
    }
    if (cb < C) {
        const fl_idx b = C >= RW_VL ? C - RW_VL : 0;
        const int off = (int)(cb - b);
        int vl = RW_VL;
        RW_OPAQUE(vl);
        RW_PRAGMA(omp simd)
        for (int q = 0; q < vl; q++) {
            const int in = C >= RW_VL ? q >= off : (fl_idx)q < C;
            const fl_idx c = in ? b + q : C - 1;
            const T ec = e[c];
            const int mx = ec == 1;
            const T t1 = (in && !mx) ? ec : (T)0;
            l1[q] += t1;
            l2[q] += in & mx;
        }
    }
    TI kc = 0;
    for (int q = 0; q < RW_VL; q++) kc += l2[q];
    *k = (double)kc;
    return (double)RW_TREE(l1);
}

/* rows_ce_plain's per-row scalars, vectorized across a group of rows */
static void FN(plain_scalars)(const double *restrict rest, const double *restrict kk,
                                 const double *restrict zy, const double *restrict A,
                                 const double *restrict ey, double gs, double *restrict loss,
                                 double *restrict is, double *restrict om, double *restrict gy,
                                 double *restrict hy)
{
    RW_PRAGMA(omp simd)
    for (int j = 0; j < FL_ROW_GROUP; j++) {
        const double t = (kk[j] - 1) + rest[j], iv = 1 / (kk[j] + rest[j]);
        const double o = t * iv, py = ey[j] * iv;
        const double omp = zy[j] == 0 ? o : 1 - py; /* 1 - p_y, exact at the max */
        const double az = A[j] * zy[j];
        loss[j] = A[j] * FN(log1p_d)(t) - (A[j] != 0 ? az : 0.0);
        is[j] = iv;
        om[j] = o;
        gy[j] = -gs * A[j] * omp;
        hy[j] = gs * A[j] * py * omp;
    }
}

#if T_F32 && defined(__AVX2__)
#define RW_T8 1
#include "fl_vmath_v3.h" /* exp8_v3: exp_np on 8 lanes, the same bits */
/* An 8 x 8 transpose of floats in AVX2 registers (unpack, shuffle,
 * 128-bit permute: 24 shuffles).  The transpose is its own inverse. */
FL_INLINE void FN(tr8)(__m256 r[8])
{
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* The logits of 8 rows of C classes transposed into dst[c][j] (8 floats a
 * class, 32-byte aligned), the lanes of rows with act[j] = 0 as 0 (finite;
 * their outputs are zeroed by their callers), and the lanes' max (a NaN
 * logit is not the max): whole 8 x 8 blocks by tr8, the last C mod 8
 * classes one by one.  ce_group8_c and the RL row groups share it. */
FL_INLINE __m256 FN(group8_load_max_k)(const float *restrict x0, fl_idx C, __m256 keep, int nact,
                                       float *restrict dst)
{
    /* four running maxima (class c to mq[c mod 4]), combined at the end,
     * instead of one chain of C dependent maxima (4 cycles each: 128 at C
     * = 32; no change measurable alone, bench/notes-ce32-small-c.txt).
     * Any order gives the same max but for the sign of a zero max (-0
     * against +0): exp(z - m) is the same either way and z_y - m == 0
     * compares equal; at most a zero loss's sign can differ (a negative
     * class weight). */
    __m256 mq[4];
    for (int q = 0; q < 4; q++) mq[q] = _mm256_set1_ps(-INFINITY);
    const fl_idx C8 = C & ~(fl_idx)7; /* classes in whole 8 x 8 blocks */
    for (fl_idx cb = 0; cb < C8; cb += 8) {
        __m256 r[8];
        for (int j = 0; j < 8; j++) r[j] = _mm256_loadu_ps(x0 + j * C + cb);
        FN(tr8)(r);
        for (int q = 0; q < 8; q++) {
            if (nact < 8) r[q] = _mm256_and_ps(r[q], keep);
            mq[q & 3] = _mm256_max_ps(r[q], mq[q & 3]); /* r > m ? r : m: a NaN logit is not the max */
            _mm256_store_ps(dst + (cb + q) * 8, r[q]);
        }
    }
    for (fl_idx c = C8; c < C; c++) {
        for (int j = 0; j < 8; j++) dst[c * 8 + j] = x0[j * C + c];
        const __m256 r = _mm256_and_ps(_mm256_load_ps(dst + c * 8), keep);
        _mm256_store_ps(dst + c * 8, r);
        mq[c & 3] = _mm256_max_ps(r, mq[c & 3]);
    }
    return _mm256_max_ps(_mm256_max_ps(mq[0], mq[1]), _mm256_max_ps(mq[2], mq[3]));
}

/* group8_load_max_k with the rows' flags act[j] (1: a class) */
FL_INLINE __m256 FN(group8_load_max)(const float *restrict x0, fl_idx C, const int *act, int nact,
                                     float *restrict dst)
{
    const __m256 keep = _mm256_castsi256_ps(_mm256_setr_epi32(
        -act[0], -act[1], -act[2], -act[3], -act[4], -act[5], -act[6], -act[7]));
    return FN(group8_load_max_k)(x0, C, keep, nact, dst);
}

/* rows_ce_plain for one whole group of 8 rows of C <= RW_SMALL_C classes,
 * with the rows in lanes: the group's logits are transposed (8 x 8 blocks,
 * the last C mod 8 classes by scalar copies) into zt[c][j] = z_j[c], so
 * that the max, the exponentials and the split sums of all 8 rows run as
 * one vector operation per class, with no horizontal reductions; the
 * gradient is formed in lanes and transposed back.  The sums are
 * r_split_small's, term for term: class c goes to partial sum c mod 8
 * (its last RW_VL classes, for C not a multiple of 8, to c - (C - 8);
 * for C < 8 to c), the partials added in classes' order and combined by
 * RW_TREE, so every bit is the flat path's (but a NaN's sign, which
 * the order of two NaN operands decides; tests compare NaN as NaN).  Adds
 * the rows' losses to *total one by one (the flat path's order) and
 * writes l, g and h as rows_ce_plain.
 * Cost at 65536 x 32, one thread, out=: 1.47 ms before the changes of
 * bench/notes-ce32-small-c.txt (second part), 1.22-1.25 after: the
 * partials' classes in turn (one partial live: the exponential's
 * constants stay in registers), the loops unrolled, exp8_v3 two
 * operations shorter, the labels and the rows' scalars in vectors, and
 * log s without a libmvec call (log1p_pos_d). */
#define RW_G8_PF 1024 /* 4 KB of float32: 4 groups at C = 32 */
FL_INLINE void FN(ce_group8_c)(const fl_row_args *a, fl_idx r0, fl_idx end, fl_idx *bad,
                               double *total, const fl_idx C)
{
    if (C < 1 || C > RW_SMALL_C) __builtin_unreachable(); /* the flat path's rows only */
    const T *w = (const T *)a->w;
    const double gs = a->gscale;
    const float *x0 = (const float *)a->x + r0 * C;
    float *g0 = a->g ? (float *)a->g + r0 * C : NULL;
    float *h0 = a->h ? (float *)a->h + r0 * C : NULL;
    float *l = (float *)a->l;
    _Alignas(32) float zt[RW_SMALL_C * 8];
    _Alignas(32) float ht[RW_SMALL_C * 8];
    _Alignas(32) double rest[8], kk[8], zy[8], A[8], ey[8];
    _Alignas(32) int32_t yi[8], act[8]; /* the labels (0 where inactive); -1 for a class, else 0 */
    /* the labels: a class (act = -1), else ignored or bad (the first bad
     * row is reported).  ign is -1 (never a class) without an ignore_index. */
    const int64_t ign = a->has_ignore ? a->ignore : -1;
    __m256i yv, actv;
    if (a->tcode == FL_LABEL_I64) {
        /* 0 <= y < C and y != ign, in two vectors of 4 int64, packed to int32 */
        const int64_t *t = (const int64_t *)a->t + r0;
        const __m256i cv = _mm256_set1_epi64x((int64_t)C), iv = _mm256_set1_epi64x(ign);
        const __m256i zero = _mm256_setzero_si256(), pk = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
        __m128i yh[2], ah[2];
        for (int hh = 0; hh < 2; hh++) {
            const __m256i y = _mm256_loadu_si256((const __m256i *)(t + 4 * hh));
            const __m256i ok = _mm256_andnot_si256(_mm256_or_si256(_mm256_cmpgt_epi64(zero, y), _mm256_cmpeq_epi64(y, iv)),
                                                   _mm256_cmpgt_epi64(cv, y));
            ah[hh] = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(ok, pk));
            yh[hh] = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(_mm256_and_si256(ok, y), pk));
        }
        actv = _mm256_set_m128i(ah[1], ah[0]);
        yv = _mm256_set_m128i(yh[1], yh[0]);
    } else {
#define RW_G8_LABELS(LT)                                                      \
    do {                                                                      \
        const LT *t = (const LT *)a->t + r0;                                  \
        for (int j = 0; j < 8; j++) {                                         \
            const int64_t y = (int64_t)t[j];                                  \
            const int ok = ((uint64_t)y < (uint64_t)C) & (y != ign);          \
            act[j] = -ok;                                                     \
            yi[j] = ok ? (int32_t)y : 0;                                      \
        }                                                                     \
    } while (0)
        if (a->tcode == FL_LABEL_I32) RW_G8_LABELS(int32_t);
        else RW_G8_LABELS(uint8_t);
#undef RW_G8_LABELS
        actv = _mm256_load_si256((const __m256i *)act);
        yv = _mm256_load_si256((const __m256i *)yi);
    }
    _mm256_store_si256((__m256i *)act, actv);
    _mm256_store_si256((__m256i *)yi, yv);
    const int nact = __builtin_popcount((unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(actv)));
    if (nact < 8 && *bad < 0)
        for (int j = 0; j < 8; j++)
            if (FN(label_ok)(FN(label)(a->t, a->tcode, r0 + j), a->ignore, a->has_ignore, C) < 0) {
                *bad = r0 + j;
                break;
            }
    if (w) {
        for (int j = 0; j < 8; j++) A[j] = act[j] ? (double)w[yi[j]] : 0.0;
    } else {
        const __m256d one_d = _mm256_set1_pd(1.0);
        _mm256_store_pd(A, _mm256_and_pd(_mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(actv))), one_d));
        _mm256_store_pd(A + 4, _mm256_and_pd(_mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(actv, 1))), one_d));
    }
    /* lanes of the rows that are ignored or bad: logits 0 (their outputs
     * are zeroed by A = 0) */
    const __m256 mv = FN(group8_load_max_k)(x0, C, _mm256_castsi256_ps(actv), nact, zt);
    const fl_idx C8 = C & ~(fl_idx)7; /* classes in whole 8 x 8 blocks */
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    /* z_y of each row, gathered from its logits (class 0 for the others) */
    const __m256 zg = _mm256_i32gather_ps(x0, _mm256_add_epi32(yv, _mm256_mullo_epi32(lane, _mm256_set1_epi32((int)C))), 4);
    /* the exponentials (parked in zt) and the split sums: class c to
     * partial l1[q] as r_split_small, the count of e = 1 in one integer
     * vector (exact in any order) */
    /* partial q's classes one after another (q, q + 8, ...): one partial
     * live at a time, the exponential's constants in registers */
    __m256 l1[RW_VL];
    __m256i kq[2]; /* two counts: no chain of C dependent adds */
    const __m256 one = _mm256_set1_ps(1.0f);
    kq[0] = kq[1] = _mm256_setzero_si256();
    RW_PRAGMA(GCC unroll 8)
    for (int q = 0; q < RW_VL; q++) {
        __m256 acc = _mm256_setzero_ps();
        RW_PRAGMA(GCC unroll 8)
        for (fl_idx c = q; c < C8; c += RW_VL) {
            const __m256 e = FN(exp8_v3)(_mm256_sub_ps(_mm256_load_ps(zt + c * 8), mv));
            _mm256_store_ps(zt + c * 8, e);
            const __m256 mx = _mm256_cmp_ps(e, one, _CMP_EQ_OQ);
            acc = _mm256_add_ps(_mm256_andnot_ps(mx, e), acc);
            kq[q & 1] = _mm256_sub_epi32(kq[q & 1], _mm256_castps_si256(mx));
        }
        l1[q] = acc;
    }
    for (fl_idx c = C8; c < C; c++) {
        const int q = C >= RW_VL ? (int)(c - (C - RW_VL)) : (int)c;
        const __m256 e = FN(exp8_v3)(_mm256_sub_ps(_mm256_load_ps(zt + c * 8), mv));
        _mm256_store_ps(zt + c * 8, e);
        const __m256 mx = _mm256_cmp_ps(e, one, _CMP_EQ_OQ);
        l1[q] = _mm256_add_ps(l1[q], _mm256_andnot_ps(mx, e));
        kq[q & 1] = _mm256_sub_epi32(kq[q & 1], _mm256_castps_si256(mx));
    }
    const __m256i kv = _mm256_add_epi32(kq[0], kq[1]);
    {
        /* the rows' scalars in lanes, as the flat path has them: rest (the
         * sum of the e below 1), k (the count of e = 1), z_y - m in double
         * and e_y; for the inactive rows rest = 0, k = 1, z_y - m = 0,
         * e_y = 1 */
        const __m256 sv = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(l1[0], l1[4]), _mm256_add_ps(l1[2], l1[6])),
                                        _mm256_add_ps(_mm256_add_ps(l1[1], l1[5]), _mm256_add_ps(l1[3], l1[7])));
        const __m256 eg = _mm256_i32gather_ps(zt, _mm256_add_epi32(_mm256_slli_epi32(yv, 3), lane), 4);
        const __m256d one_d = _mm256_set1_pd(1.0);
        for (int hh = 0; hh < 2; hh++) {
            const __m128i ah = hh ? _mm256_extracti128_si256(actv, 1) : _mm256_castsi256_si128(actv);
            const __m128i kh4 = hh ? _mm256_extracti128_si256(kv, 1) : _mm256_castsi256_si128(kv);
            const __m256d am = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(ah));
            const __m128 s4 = hh ? _mm256_extractf128_ps(sv, 1) : _mm256_castps256_ps128(sv);
            const __m128 z4 = hh ? _mm256_extractf128_ps(zg, 1) : _mm256_castps256_ps128(zg);
            const __m128 m4 = hh ? _mm256_extractf128_ps(mv, 1) : _mm256_castps256_ps128(mv);
            const __m128 e4 = hh ? _mm256_extractf128_ps(eg, 1) : _mm256_castps256_ps128(eg);
            _mm256_store_pd(rest + 4 * hh, _mm256_and_pd(am, _mm256_cvtps_pd(s4)));
            _mm256_store_pd(kk + 4 * hh, _mm256_blendv_pd(one_d, _mm256_cvtepi32_pd(kh4), am));
            _mm256_store_pd(zy + 4 * hh, _mm256_and_pd(am, _mm256_sub_pd(_mm256_cvtps_pd(z4), _mm256_cvtps_pd(m4))));
            _mm256_store_pd(ey + 4 * hh, _mm256_blendv_pd(one_d, _mm256_cvtps_pd(e4), am));
        }
    }
    _Alignas(32) double loss[8], is[8], om[8], gy[8], hy[8];
    FN(plain_scalars)(rest, kk, zy, A, ey, gs, loss, is, om, gy, hy);
    {
        /* the losses of the inactive rows are 0; added one by one in the
         * flat path's order */
        _Alignas(32) double lv[8];
        for (int hh = 0; hh < 2; hh++) {
            const __m128i ah = hh ? _mm256_extracti128_si256(actv, 1) : _mm256_castsi256_si128(actv);
            const __m256d v = _mm256_and_pd(_mm256_castsi256_pd(_mm256_cvtepi32_epi64(ah)), _mm256_load_pd(loss + 4 * hh));
            _mm256_store_pd(lv + 4 * hh, v);
            if (l) _mm_storeu_ps(l + r0 + 4 * hh, _mm256_cvtpd_ps(v));
        }
        double tt = *total;
        for (int j = 0; j < 8; j++) tt += lv[j];
        *total = tt;
    }
    if (!g0) return;
    _Alignas(32) float k1[8], gyf[8];
    for (int j = 0; j < 8; j++) {
        k1[j] = (T)(gs * A[j] * is[j]);
        gyf[j] = (T)gy[j];
    }
    if (h0) {
        float kh[8], isf[8], omf[8];
        for (int j = 0; j < 8; j++) {
            kh[j] = (T)(gs * A[j]);
            isf[j] = (T)is[j];
            omf[j] = (T)om[j];
        }
        for (fl_idx c2 = 0; c2 < C; c2++) {
            RW_PRAGMA(omp simd)
            for (int j = 0; j < 8; j++) {
                const float e = zt[c2 * 8 + j], p = e * isf[j];
                const float omp = e == 1 ? omf[j] : 1 - p;
                ht[c2 * 8 + j] = kh[j] * p * omp;
            }
        }
    }
    const __m256 k1v = _mm256_load_ps(k1);   /* g = k1 e, scaled on the way out */
    /* the logits and the gradient of the group RW_G8_PF floats ahead (in
     * the block), prefetched a few lines per 8 x 8 block here rather than
     * all at once: 0.84-0.88 of the time at 65536 x 32, one thread
     * (bench/notes-ce32-small-c.txt); the bounds checked once a group */
    const fl_idx pf_lines = (8 * C + 15) / 16, pf_per = C8 >= 8 ? (pf_lines + C8 / 8 - 1) / (C8 / 8) : 0;
    const fl_idx pf_lim = (end - r0) * C - RW_G8_PF; /* floats past x0 the block holds, less the distance */
    const fl_idx pf_n = pf_lim <= 0 ? 0 : RW_MIN(pf_lines, (pf_lim + 15) / 16); /* lines q with q 16 < pf_lim */
    for (fl_idx cb = 0; cb < C8; cb += 8) {
        const fl_idx q0 = (cb / 8) * pf_per, q1 = RW_MIN((cb / 8 + 1) * pf_per, pf_lines);
        if (pf_n == pf_lines) { /* all in the block: the loop's bounds are constants for constant C */
            for (fl_idx q = q0; q < q1; q++) {
                _mm_prefetch((const char *)(x0 + RW_G8_PF + q * 16), _MM_HINT_T0);
                _mm_prefetch((const char *)(g0 + RW_G8_PF + q * 16), _MM_HINT_T0);
            }
        } else {
            for (fl_idx q = q0; q < RW_MIN(q1, pf_n); q++) {
                _mm_prefetch((const char *)(x0 + RW_G8_PF + q * 16), _MM_HINT_T0);
                _mm_prefetch((const char *)(g0 + RW_G8_PF + q * 16), _MM_HINT_T0);
            }
        }
        __m256 r[8];
        for (int q = 0; q < 8; q++) r[q] = _mm256_mul_ps(k1v, _mm256_load_ps(zt + (cb + q) * 8));
        FN(tr8)(r);
        for (int j = 0; j < 8; j++) _mm256_storeu_ps(g0 + j * C + cb, r[j]);
        if (h0) {
            for (int q = 0; q < 8; q++) r[q] = _mm256_load_ps(ht + (cb + q) * 8);
            FN(tr8)(r);
            for (int j = 0; j < 8; j++) _mm256_storeu_ps(h0 + j * C + cb, r[j]);
        }
    }
    for (fl_idx c2 = C8; c2 < C; c2++)
        for (int j = 0; j < 8; j++) {
            g0[j * C + c2] = k1[j] * zt[c2 * 8 + j];
            if (h0) h0[j * C + c2] = ht[c2 * 8 + j];
        }
    for (int j = 0; j < 8; j++) {
        if (!act[j]) continue;
        g0[j * C + yi[j]] = gyf[j];
        if (h0) h0[j * C + yi[j]] = (T)hy[j];
    }
}

/* ce_group8_c with the class count a compile-time constant for common
 * small C (its class loops then unrolled whole), else at run time */
static void FN(ce_group8)(const fl_row_args *a, fl_idx r0, fl_idx end, fl_idx *bad, double *total)
{
    switch (a->C) {
    case 16: FN(ce_group8_c)(a, r0, end, bad, total, 16); break;
    case 32: FN(ce_group8_c)(a, r0, end, bad, total, 32); break;
    default: FN(ce_group8_c)(a, r0, end, bad, total, a->C);
    }
}
#else
#define RW_T8 0
#endif

/* the flat path's rows of small C: a row's logits and gradient prefetched
 * RW_FLAT_PF bytes ahead, its lines (at C = 32 in double, 256 bytes a row,
 * prefetch_row's next-row burst does not start and the hardware's stream
 * alone left a third of the time in DRAM waits at N = 1e7); left, the
 * elements of the block from z on: nothing outside the block. */
#define RW_FLAT_PF 4096
FL_INLINE void FN(prefetch_ahead)(const T *z, const T *g, fl_idx C, fl_idx left)
{
#if defined(__GNUC__)
    const fl_idx d = RW_FLAT_PF / (fl_idx)sizeof(T), bytes = C * (fl_idx)sizeof(T);
    if (left < d + C) return;
    for (fl_idx o = 0; o < bytes; o += 64) {
        __builtin_prefetch((const char *)(z + d) + o, 0, 3);
        if (g) __builtin_prefetch((const char *)(g + d) + o, 1, 3);
    }
#else
    (void)z; (void)g; (void)C; (void)left;
#endif
}

/* Cross-entropy with integer labels and no label smoothing, Poly-1 or H v,
 * on contiguous rows -- the common case -- in groups of FL_ROW_GROUP rows:
 * each row's vector passes (max; exp, parked, and the split sums) run first,
 * then the scalars of the whole group (log1p, 1/s, the coefficients and the
 * target's gradient) are computed vectorized across its rows, then each
 * row's write pass.  With C = 32 the per-row scalar work otherwise costs more
 * than the row's exponentials.  The formulas are ce_row's with eps = pe = 0:
 * loss = w_y (log1p(k - 1 + rest) - (z_y - m)), g = w_y (p - onehot). */
static double FN(rows_ce_plain)(const fl_row_args *a, fl_idx start, fl_idx n, fl_idx *bad)
{
    const fl_idx C = a->C, end = start + n;
    const T *w = (const T *)a->w;
    T *l = (T *)a->l;
    const double gs = a->gscale;
    const int flat = C <= RW_SMALL_C;
    T sbuf[FL_ROW_GROUP * RW_SMALL_C];
    double total = 0;
    for (fl_idx r0 = start; r0 < end; r0 += FL_ROW_GROUP) {
        const int G = (int)RW_MIN((fl_idx)FL_ROW_GROUP, end - r0);
#if RW_T8
        if (flat && G == 8) {
            FN(ce_group8)(a, r0, end, bad, &total);
            continue;
        }
#endif
        double rest[FL_ROW_GROUP], kk[FL_ROW_GROUP], zy[FL_ROW_GROUP], A[FL_ROW_GROUP];
        double ey[FL_ROW_GROUP];
        fl_idx yv[FL_ROW_GROUP];
        int act[FL_ROW_GROUP];
        for (int j = 0; j < FL_ROW_GROUP; j++) {
            rest[j] = 0; kk[j] = 1; zy[j] = 0; A[j] = 0; ey[j] = 1; yv[j] = 0; act[j] = 0;
        }
        const T *x0 = (const T *)a->x + r0 * C;
        T *g0 = a->g ? (T *)a->g + r0 * C : NULL;
        T *h0 = a->h ? (T *)a->h + r0 * C : NULL;
        T *eb = g0 ? g0 : sbuf; /* the flat path's exponentials */
        for (int j = 0; j < G; j++) {
            const fl_idx r = r0 + j;
            const T *z = x0 + j * C;
            T *g = g0 ? g0 + j * C : NULL;
#if RW_D4
            /* double on v3: r_sumexp_x (below) prefetches the next row a
             * line at a time when it parks in g, so not all at once here */
            if (r + 1 < end && (flat || !g)) FN(prefetch_row)(z + C, C);
#else
            if (r + 1 < end) FN(prefetch_row)(z + C, C);
#endif
            if (flat) FN(prefetch_ahead)(z, g, C, (end - r) * C);
            const int64_t y = FN(label)(a->t, a->tcode, r);
            const int ok = FN(label_ok)(y, a->ignore, a->has_ignore, C);
            if (ok <= 0) {
                if (ok < 0 && *bad < 0) *bad = r;
                if (flat) { /* exp(-inf) = 0: the row's gradient is zeroed by the flat exp */
                    T *d = eb + j * C;
                    for (fl_idx c = 0; c < C; c++) d[c] = -(T)INFINITY;
                } else {
                    FN(zero)(g, C);
                }
                FN(zero)(h0 ? h0 + j * C : NULL, C);
                continue;
            }
            act[j] = 1;
            yv[j] = (fl_idx)y;
            A[j] = w ? (double)w[y] : 1.0;
            const T m = FN(r_max)(z, C);
            zy[j] = (double)z[y] - (double)m;
            if (flat) {
                T *d = eb + j * C;
                RW_PRAGMA(omp simd)
                for (fl_idx c = 0; c < C; c++) d[c] = z[c] - m;
                continue;
            }
            rest[j] = FN(r_sumexp_x)(z, g, C, m, &kk[j]);
            if (g) ey[j] = (double)g[y];
        }
        if (flat) {
            /* the same exponentials and sums as r_sumexp_x (same bits) */
            const fl_idx GC = (fl_idx)G * C;
            RW_PRAGMA(omp simd)
            for (fl_idx i = 0; i < GC; i++) eb[i] = EXPN(eb[i]);
            for (int j = 0; j < G; j++) {
                if (!act[j]) continue;
                rest[j] = FN(r_split_small)(eb + j * C, C, &kk[j]);
                if (g0) ey[j] = (double)eb[j * C + yv[j]];
            }
        }
        double loss[FL_ROW_GROUP], is[FL_ROW_GROUP], om[FL_ROW_GROUP], gy[FL_ROW_GROUP], hy[FL_ROW_GROUP];
        FN(plain_scalars)(rest, kk, zy, A, ey, gs, loss, is, om, gy, hy);
        for (int j = 0; j < G; j++) {
            const double lv = act[j] ? loss[j] : 0.0;
            if (l) l[r0 + j] = (T)lv;
            total += lv;
        }
        if (!g0) continue;
        for (int j = 0; j < G; j++) {
            if (!act[j]) continue;
            T *g = g0 + j * C;
            T *h = h0 ? h0 + j * C : NULL;
            FN(r_plain_write)(g, h, C, (T)(gs * A[j] * is[j]), (T)(gs * A[j]), (T)is[j], (T)om[j]);
            g[yv[j]] = (T)gy[j];
            if (h) h[yv[j]] = (T)hy[j];
        }
    }
    return total;
}

static double FN(block_ce)(const fl_row_args *a, fl_idx start, fl_idx n, fl_idx *bad)
{
    if (a->S == 1) {
        if (a->prm.pa == 0 && a->prm.pb == 0 && a->mode != FL_ROW_HVP)
            return FN(rows_ce_plain)(a, start, n, bad);
        return FN(rows_ce)(a, start, n, bad);
    }
    RW_TILES(FN(ce_tile))
}

static double FN(block_ce_soft)(const fl_row_args *a, fl_idx start, fl_idx n, fl_idx *bad)
{
    if (a->S == 1) {
        const fl_idx C = a->C;
        T *l = (T *)a->l;
        double total = 0;
        for (fl_idx r = start; r < start + n; r++) {
            const fl_idx o = r * C;
            const double lv = FN(ce_soft_row)(
                a, (const T *)a->x + o, (const T *)a->t + o, a->g ? (T *)a->g + o : NULL,
                a->h ? (T *)a->h + o : NULL, a->v ? (const T *)a->v + o : NULL,
                a->gt ? (T *)a->gt + o : NULL);
            if (l) l[r] = (T)lv;
            total += lv;
        }
        return total;
    }
    RW_TILES(FN(ce_soft_tile))
}
