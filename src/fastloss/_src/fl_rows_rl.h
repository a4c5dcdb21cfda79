/* fl_rows_rl.h -- the policy-gradient losses from logits: REINFORCE and
 * PPO's clipped surrogate over a row of A action logits z and the action
 * taken y (an integer label, checked; no ignore_index), with an entropy
 * bonus, in one pass per row.
 * Included by fl_rows_math.h in the stamping context of fl_stamp.h (T,
 * T_F32, TI, FN, EXP, LOG); no include guard, on purpose.
 *
 * Per row, with d_c = z_c - m (m the row max), s = sum_c exp(d_c) (split
 * at the max as r_sumexp_x splits it), lp = log p_y = d_y - log s and
 * D = -sum_c p_c d_c >= 0, the entropy is H = log s + D (two non-negative
 * terms: no cancellation for a confident row) and log p_c + H = d_c + D.
 * The loss of a row is w (f(lp) - beta H), f the objective of the
 * log-probability (pa, pb, pc below), and its gradient
 *     g_c = K (f'(lp) (delta_cy - p_c) + beta p_c (d_c + D)),  K = gscale w
 * (dH/dz_c = -p_c (log p_c + H)); the action's class is written from
 * double scalars with 1 - p_y taken from the classes below the max when y
 * is at the max (as ce_row does).  A class with p_c = 0 (z_c = -inf, or
 * far below) adds nothing to D and gets gradient 0 (the limit), not
 * 0 * inf.
 *
 * Parameters: pa = clip_eps, pb = dual_clip (0: off), pc = beta (the
 * entropy coefficient); ra = advantages, rb = old log-probabilities
 * (PPO), rw = per-row weights or NULL (all T, one per row).  With xs set,
 * the block also writes its float64 sums of the entropy, of the clipped
 * rows (|r - 1| > clip_eps) and of PPO's approximate KL (r - 1) - log r
 * to xs[3 (start / xper) + 0, 1, 2], unweighted. */

/* exp(t) - 1 - t in double, accurate for small t (where it cancels): the
 * Taylor series t^2 (1/2 + t/6 + ... + t^14/16!) for |t| < 1/2 */
FL_INLINE double FN(rl_expm1mx)(double t)
{
    if (!(fabs(t) < 0.5)) return expm1(t) - t;
    return FN(expm1mx_series)(t);  /* fl_vmath.h */
}

/* the block of rows; PPO selects the objective of the log-probability:
 * REINFORCE f = -A lp, or PPO's clipped surrogate of r = exp(lp - old) */
FL_INLINE double FN(rl_rows)(const fl_row_args *a, fl_idx start, fl_idx n, fl_idx *bad, const int PPO)
{
    const fl_idx C = a->C;
    const T *adv = (const T *)a->ra, *old = (const T *)a->rb, *rw = (const T *)a->rw;
    T *l = (T *)a->l;
    const double eps = a->prm.pa, dual = a->prm.pb, beta = a->prm.pc, gs = a->gscale;
    const int want_h = beta != 0 || a->xs != NULL;
    double total = 0, sh = 0, sclip = 0, skl = 0;
    for (fl_idx r = start; r < start + n; r++) {
        const T *z = (const T *)a->x + r * C;
        T *g = a->g ? (T *)a->g + r * C : NULL;
        if (r + 1 < start + n) FN(prefetch_row)(z + C, C);
        const int64_t y_ = FN(label)(a->t, a->tcode, r);
        if (FN(label_ok)(y_, 0, 0, C) <= 0) {
            if (*bad < 0) *bad = r;
            FN(zero)(g, C);
            if (l) l[r] = 0;
            continue;
        }
        const fl_idx y = (fl_idx)y_;
        const T m = FN(r_max)(z, C);
        double k;
        const double rest = FN(r_sumexp_x)(z, g, C, m, &k), s = k + rest, is = 1 / s;
        const double logs = FN(log_s)(rest, k);
        const double zy = (double)z[y] - (double)m, lp = zy - logs;
        const double A = (double)adv[r], w = rw ? (double)rw[r] : 1.0;
        double f, fp;
        if (PPO) {
            const double lr = lp - (double)old[r], ratio = exp(lr);
            const double rc = ratio < 1 - eps ? 1 - eps : (ratio > 1 + eps ? 1 + eps : ratio);
            const double s1 = ratio * A, s2 = rc * A;
            const int unclipped = !(s2 < s1);       /* min picks s1 (ties too; NaN too) */
            const double mm = unclipped ? s1 : s2;
            const int dl = (dual > 0) & (A < 0) & (mm < dual * A);
            f = dl ? -dual * A : -mm;
            fp = dl ? 0.0 : (unclipped ? -s1 : 0.0);
            sclip += fabs(ratio - 1) > eps;
            skl += FN(rl_expm1mx)(lr);
        } else {
            f = A != 0 ? -A * lp : 0.0;             /* A = 0 adds nothing, even for lp = -inf */
            fp = -A;
        }
        double D = 0;
        if (want_h) {
            double ds;
            if (g) RW_SUM(ds, C, const T ec = g[c]; const T dc = z[c] - m; const T term_ = ec != 0 ? ec * dc : (T)0;);
            else RW_SUM(ds, C, const T dc = z[c] - m; const T ec = EXPN(dc); const T term_ = ec != 0 ? ec * dc : (T)0;);
            D = -ds * is;
            sh += logs + D;
        }
        const double lv = w * (beta != 0 ? f - beta * (logs + D) : f);
        if (l) l[r] = (T)lv;
        total += lv;
        if (!g) continue;
        const double K = gs * w;
        /* p_y from the parked e_y (read before the write pass overwrites it),
         * as ce_row does: no scalar exp */
        const double py = (double)g[y] * is;
        const T ist = (T)is, cf = (T)(0.0 - fp * K), cb = (T)(beta * K), Dt = (T)D;
        RW_PRAGMA(omp simd)
        for (fl_idx c = 0; c < C; c++) {
            const T e = g[c], p = e * ist, gv = p * (cf + cb * ((z[c] - m) + Dt));
            g[c] = e == 0 ? (T)0 : gv;
        }
        const double omp = zy == 0 ? ((k - 1) + rest) * is : 1 - py;
        g[y] = (T)(K * (fp * omp + (beta != 0 ? beta * py * (zy + D) : 0.0)));
    }
    if (a->xs) {
        double *o = a->xs + 3 * (start / a->xper);
        o[0] = sh; o[1] = sclip; o[2] = skl;
    }
    return total;
}

static double FN(block_pg_logits)(const fl_row_args *a, fl_idx start, fl_idx n, fl_idx *bad)
{
    return FN(rl_rows)(a, start, n, bad, 0);
}

static double FN(block_ppo_logits)(const fl_row_args *a, fl_idx start, fl_idx n, fl_idx *bad)
{
    return FN(rl_rows)(a, start, n, bad, 1);
}
