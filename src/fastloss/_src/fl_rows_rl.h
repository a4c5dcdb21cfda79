/* fl_rows_rl.h -- the policy-gradient losses from logits: REINFORCE and
 * PPO's clipped surrogate over a row of A action logits z and the action
 * taken y (an integer label, checked; no ignore_index), with an entropy
 * bonus, in one pass per row.
 * Included by fl_rows_math.h in the stamping context of fl_stamp.h (T,
 * T_F32, TI, FN, EXP, LOG), after fl_rows_ce.h (log1p_d, and on the
 * float32 AVX2 path tr8, exp8_v3 and RW_T8); no include guard, on purpose.
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
 * Rows run in groups of FL_RL_G = 8: each row's vector passes (max; the
 * exponentials, parked in the gradient buffer, and their split sum; the
 * entropy's sum) give a few double scalars per row, then the per-row
 * scalar math (log s, PPO's ratio exp(lp - old), the approximate KL, the
 * clip, the coefficients of the write pass) runs once for the whole group,
 * vectorized across its rows (rl_scal_pg / rl_scal_ppo: one compiled body
 * each, not inlined, always over 8 lanes, so that a row's bits do not
 * depend on where it falls in a group), then each row's write pass.  A
 * whole group of rows of at most RW_SMALL_C actions runs its vector passes
 * and its write pass with the rows in lanes instead: on the float32 AVX2
 * path by hand (rl_group8_*, as ce_group8_c: 8 x 8 transposes, exp8_v3), on
 * the others in plain C loops over the 8 rows (rl_lanes_*).  Both take the
 * row passes' sums term for term (RW_SUM's lanes and tree), and the write
 * pass's FMA is written out (FL_FMA, _mm256_fmadd_ps): the same bits as a
 * row alone (tested: test_eight_row_groups_agree_with_single_rows).
 * For C = 16 the lanes path costs about 300 instructions a row for PPO
 * with its statistics and the entropy bonus (730 row by row).
 *
 * Parameters: pa = clip_eps, pb = dual_clip (0: off), pc = beta (the
 * entropy coefficient); ra = advantages, rb = old log-probabilities
 * (PPO), rw = per-row weights or NULL (all T, one per row).  With xs set,
 * the block also writes its float64 sums of the entropy, of the clipped
 * rows (|r - 1| > clip_eps) and of PPO's approximate KL (r - 1) - log r
 * to xs[3 (start / xper) + 0, 1, 2], unweighted, added row by row. */

#ifndef FL_RL_G
#define FL_RL_G 8
/* one lane per row of a group: the row passes' results in, the scalars out */
typedef struct {
    double rest[FL_RL_G], k[FL_RL_G], zy[FL_RL_G], ds[FL_RL_G], ey[FL_RL_G];
    double A[FL_RL_G], w[FL_RL_G], old[FL_RL_G];
    double lv[FL_RL_G], sh[FL_RL_G], clip[FL_RL_G], kl[FL_RL_G], gy[FL_RL_G];
    double is[FL_RL_G], cf[FL_RL_G], cb[FL_RL_G], D[FL_RL_G];
} fl_rl_lanes;
#if defined(__GNUC__)
#define FL_RL_NOINLINE __attribute__((noinline))
#define FL_RL_ASSUME_C(C) do { if ((C) < 1 || (C) > RW_SMALL_C) __builtin_unreachable(); } while (0)
#else
#define FL_RL_NOINLINE
#define FL_RL_ASSUME_C(C) ((void)0)
#endif
#endif

/* The per-row scalars of a group, vectorized across its 8 rows (double
 * lanes, libmvec's exp and log).  A lane that is not a row (padding, a
 * bad action) has rest = 0, k = 1, zy = ds = 0, ey = 1, A = w = old = 0:
 * finite, and zero outputs.  (r - 1) - log r = expm1(lr) - lr, lr = log r,
 * is the Taylor series for |lr| < 1/2 (where it cancels) and
 * (r - 1) - lr above (r - 1 exact there, or the result >= 0.1). */
FL_INLINE void FN(rl_scal)(const fl_row_args *a, fl_rl_lanes *restrict L, const int PPO)
{
    const double eps = a->prm.pa, dual = a->prm.pb, beta = a->prm.pc, gs = a->gscale;
    const int want_h = beta != 0 || a->xs != NULL;
    RW_PRAGMA(omp simd)
    for (int j = 0; j < FL_RL_G; j++) {
        const double t = (L->k[j] - 1) + L->rest[j], is = 1 / (L->k[j] + L->rest[j]);
        const double logs = FN(log1p_d)(t), zy = L->zy[j], lp = zy - logs;
        const double A = L->A[j], w = L->w[j];
        const double D = want_h ? -L->ds[j] * is : 0.0;
        double f, fp, cl = 0, kl = 0;
        if (PPO) {
            const double lr = lp - L->old[j], ratio = exp(lr);
            const double rc = ratio < 1 - eps ? 1 - eps : (ratio > 1 + eps ? 1 + eps : ratio);
            const double s1 = ratio * A, s2 = rc * A;
            const int unclipped = !(s2 < s1);       /* min picks s1 (ties too; NaN too) */
            const double mm = unclipped ? s1 : s2;
            const int dl = (dual > 0) & (A < 0) & (mm < dual * A);
            f = dl ? -dual * A : -mm;
            fp = dl ? 0.0 : (unclipped ? -s1 : 0.0);
            cl = fabs(ratio - 1) > eps ? 1.0 : 0.0;
            const double ser = FN(expm1mx_series)(lr), big = (ratio - 1) - lr;
            kl = fabs(lr) < 0.5 ? ser : big;
        } else {
            f = A != 0 ? -A * lp : 0.0;             /* A = 0 adds nothing, even for lp = -inf */
            fp = -A;
        }
        L->lv[j] = w * (beta != 0 ? f - beta * (logs + D) : f);
        L->sh[j] = logs + D;
        L->clip[j] = cl;
        L->kl[j] = kl;
        const double K = gs * w, py = L->ey[j] * is;
        const double omp = zy == 0 ? t * is : 1 - py;
        L->gy[j] = K * (fp * omp + (beta != 0 ? beta * py * (zy + D) : 0.0));
        L->is[j] = is;
        L->cf[j] = 0.0 - fp * K;
        L->cb[j] = beta * K;
        L->D[j] = D;
    }
}

static FL_RL_NOINLINE void FN(rl_scal_pg)(const fl_row_args *a, fl_rl_lanes *restrict L)
{
    FN(rl_scal)(a, L, 0);
}

static FL_RL_NOINLINE void FN(rl_scal_ppo)(const fl_row_args *a, fl_rl_lanes *restrict L)
{
    FN(rl_scal)(a, L, 1);
}

/* the vector passes of one row into lane j: max, the exponentials (parked
 * in g when there is one) and their split sum, the entropy's sum */
FL_INLINE T FN(rl_row_passes)(const T *restrict z, T *restrict g, fl_idx C, fl_idx y, int want_h,
                              fl_rl_lanes *restrict L, int j)
{
    const T m = FN(r_max)(z, C);
    double k;
    L->rest[j] = FN(r_sumexp_x)(z, g, C, m, &k);
    L->k[j] = k;
    L->zy[j] = (double)z[y] - (double)m;
    double ds = 0;
    if (want_h) {
        if (g) RW_SUM(ds, C, const T ec = g[c]; const T dc = z[c] - m; const T term_ = ec != 0 ? ec * dc : (T)0;);
        else RW_SUM(ds, C, const T dc = z[c] - m; const T ec = EXPN(dc); const T term_ = ec != 0 ? ec * dc : (T)0;);
    }
    L->ds[j] = ds;
    L->ey[j] = g ? (double)g[y] : 1.0;     /* e_y, read before the write pass overwrites it */
    return m;
}

/* the write pass of one row over the parked e:
 * g_c = p_c (cf + cb (d_c + D)), 0 where e_c = 0 */
FL_INLINE void FN(rl_row_write)(const T *restrict z, T *restrict g, fl_idx C, T m, T ist, T cf, T cb, T Dt)
{
    RW_PRAGMA(omp simd)
    for (fl_idx c = 0; c < C; c++) {
        const T e = g[c], p = e * ist, gv = p * FL_FMA(cb, (z[c] - m) + Dt, cf);
        g[c] = e == 0 ? (T)0 : gv;
    }
}

#if RW_T8
/* rl_row_passes and rl_row_write for one whole group of 8 rows of C <=
 * RW_SMALL_C actions with the rows in AVX2 lanes (as ce_group8_c): the
 * logits transposed into dt[c][j], d = z - m and e = exp(d) there (e in
 * et), the split sums and the entropy's sum of row passes' RW_SUM lanes:
 * class c to partial c mod 8 (its last 8 classes, for C not a multiple of
 * 8, to c - (C - 8); for C < 8 to c), the partials combined by RW_TREE.
 * Lanes of rows with act[j] = 0 read logits 0. */
FL_INLINE void FN(rl_group8_passes)(const float *restrict x0, fl_idx C, const int *act,
                                    const fl_idx *yv, int want_h, float *restrict dt,
                                    float *restrict et, float *mo, fl_rl_lanes *restrict L)
{
    FL_RL_ASSUME_C(C);   /* the lanes path's rows only */
    int nact = 0;
    for (int j = 0; j < 8; j++) nact += act[j];
    const __m256 mv = FN(group8_load_max)(x0, C, act, nact, dt); /* as r_max */
    const fl_idx C8 = C & ~(fl_idx)7;
    _mm256_storeu_ps(mo, mv);
    __m256 l1[8], l2[8];
    __m256i kv = _mm256_setzero_si256();
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    for (int q = 0; q < 8; q++) l1[q] = l2[q] = zero;
    /* three loops, so that the partials fit in registers: the
     * exponentials, their split sum, the entropy's sum from d and e */
    for (fl_idx c = 0; c < C; c++) {
        const __m256 d = _mm256_sub_ps(_mm256_load_ps(dt + c * 8), mv);
        _mm256_store_ps(dt + c * 8, d);
        _mm256_store_ps(et + c * 8, FN(exp8_v3)(d));
    }
#define RL_TERM(c, q)                                                                          \
    do {                                                                                       \
        const __m256 e = _mm256_load_ps(et + (c) * 8);                                         \
        const __m256 mx = _mm256_cmp_ps(e, one, _CMP_EQ_OQ);                                   \
        l1[q] = _mm256_add_ps(l1[q], _mm256_andnot_ps(mx, e));                                 \
        kv = _mm256_sub_epi32(kv, _mm256_castps_si256(mx));                                    \
    } while (0)
#define RL_HTERM(c, q)                                                                         \
    do { /* e != 0 ? e d : 0 */                                                                \
        const __m256 e = _mm256_load_ps(et + (c) * 8);                                         \
        const __m256 ez = _mm256_cmp_ps(e, zero, _CMP_EQ_OQ);                                  \
        l2[q] = _mm256_add_ps(l2[q], _mm256_andnot_ps(ez, _mm256_mul_ps(e, _mm256_load_ps(dt + (c) * 8)))); \
    } while (0)
    for (fl_idx c = 0; c < C8; c += 8)
        for (int q = 0; q < 8; q++) RL_TERM(c + q, q);
    for (fl_idx c = C8; c < C; c++) RL_TERM(c, C >= 8 ? (int)(c - (C - 8)) : (int)c);
    if (want_h) {
        for (fl_idx c = 0; c < C8; c += 8)
            for (int q = 0; q < 8; q++) RL_HTERM(c + q, q);
        for (fl_idx c = C8; c < C; c++) RL_HTERM(c, C >= 8 ? (int)(c - (C - 8)) : (int)c);
    }
#undef RL_TERM
#undef RL_HTERM
#define RL_TREE8(v) _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(v[0], v[4]), _mm256_add_ps(v[2], v[6])), \
                                  _mm256_add_ps(_mm256_add_ps(v[1], v[5]), _mm256_add_ps(v[3], v[7])))
    float sf[8], hf[8];
    int32_t kf[8];
    _mm256_storeu_ps(sf, RL_TREE8(l1));
    _mm256_storeu_ps(hf, RL_TREE8(l2));
#undef RL_TREE8
    _mm256_storeu_si256((__m256i *)kf, kv);
    for (int j = 0; j < 8; j++) {
        if (!act[j]) continue;
        L->rest[j] = sf[j];
        L->k[j] = (double)kf[j];
        L->ds[j] = want_h ? (double)hf[j] : 0.0;
        L->zy[j] = (double)x0[j * C + yv[j]] - (double)mo[j];
        L->ey[j] = et[yv[j] * 8 + j];
    }
}

/* the write pass of the group, in lanes, transposed back: a row with
 * act[j] = 0 gets zeros (its cf = cb = 0 and finite d) */
FL_INLINE void FN(rl_group8_write)(float *restrict g0, fl_idx C, const float *restrict dt,
                                   float *restrict et, const fl_rl_lanes *restrict L)
{
    FL_RL_ASSUME_C(C);   /* the lanes path's rows only */
    float isf[8], cff[8], cbf[8], Df[8];
    for (int j = 0; j < 8; j++) {
        isf[j] = (float)L->is[j]; cff[j] = (float)L->cf[j]; cbf[j] = (float)L->cb[j]; Df[j] = (float)L->D[j];
    }
    const __m256 isv = _mm256_loadu_ps(isf), cfv = _mm256_loadu_ps(cff), cbv = _mm256_loadu_ps(cbf);
    const __m256 Dv = _mm256_loadu_ps(Df), zero = _mm256_setzero_ps();
    for (fl_idx c = 0; c < C; c++) {
        const __m256 e = _mm256_load_ps(et + c * 8), p = _mm256_mul_ps(e, isv);
        const __m256 u = _mm256_add_ps(_mm256_load_ps(dt + c * 8), Dv);
        const __m256 gv = _mm256_mul_ps(p, _mm256_fmadd_ps(cbv, u, cfv));
        _mm256_store_ps(et + c * 8, _mm256_andnot_ps(_mm256_cmp_ps(e, zero, _CMP_EQ_OQ), gv));
    }
    const fl_idx C8 = C & ~(fl_idx)7;
    for (fl_idx cb = 0; cb < C8; cb += 8) {
        __m256 r[8];
        for (int q = 0; q < 8; q++) r[q] = _mm256_load_ps(et + (cb + q) * 8);
        FN(tr8)(r);
        for (int j = 0; j < 8; j++) _mm256_storeu_ps(g0 + j * C + cb, r[j]);
    }
    for (fl_idx c = C8; c < C; c++)
        for (int j = 0; j < 8; j++) g0[j * C + c] = et[c * 8 + j];
}

/* the group's passes with C a compile-time constant for common small C */
static void FN(rl_group8_p)(const float *x0, fl_idx C, const int *act, const fl_idx *yv, int want_h,
                            float *dt, float *et, float *mo, fl_rl_lanes *L)
{
    switch (C) {
    case 16: FN(rl_group8_passes)(x0, 16, act, yv, want_h, dt, et, mo, L); break;
    default: FN(rl_group8_passes)(x0, C, act, yv, want_h, dt, et, mo, L);
    }
}

static void FN(rl_group8_w)(float *g0, fl_idx C, const float *dt, float *et, const fl_rl_lanes *L)
{
    switch (C) {
    case 16: FN(rl_group8_write)(g0, 16, dt, et, L); break;
    default: FN(rl_group8_write)(g0, C, dt, et, L);
    }
}
#endif

/* rl_group8_passes and rl_group8_write in plain C for the other stamps
 * (float64, and float32 without AVX2): the rows in the lanes of loops over
 * j, vectorized by the compiler, the logits copied into dt[c][j]; the same
 * sums, term for term, as the row passes (and so the same bits). */
/* 8 rows of C values to lanes, zt[c][j] = x[j][c], and back: 4 x 4
 * transposes of doubles on the AVX2 path, else plain copies */
#if !T_F32 && defined(__AVX2__)
FL_INLINE void FN(tr4d)(__m256d r[4])
{
    const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
    const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
    r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}
#endif

#if !T_F32 && defined(__AVX2__)
#define RL_C4(C) ((C) & ~(fl_idx)3)  /* classes in whole 4 x 4 blocks */
#else
#define RL_C4(C) ((fl_idx)0)
#endif
FL_INLINE void FN(rl_to_lanes)(const T *restrict x0, fl_idx C, T *restrict zt)
{
    const fl_idx C4 = RL_C4(C);
#if !T_F32 && defined(__AVX2__)
    for (fl_idx c0 = 0; c0 < C4; c0 += 4)
        for (int jb = 0; jb < 8; jb += 4) {
            __m256d r[4];
            for (int i = 0; i < 4; i++) r[i] = _mm256_loadu_pd(x0 + (jb + i) * C + c0);
            FN(tr4d)(r);
            for (int q = 0; q < 4; q++) _mm256_storeu_pd(zt + (c0 + q) * 8 + jb, r[q]);
        }
#endif
    for (int j = 0; j < 8; j++)
        for (fl_idx c = C4; c < C; c++) zt[c * 8 + j] = x0[j * C + c];
}

FL_INLINE void FN(rl_from_lanes)(const T *restrict zt, fl_idx C, T *restrict x0)
{
    const fl_idx C4 = RL_C4(C);
#if !T_F32 && defined(__AVX2__)
    for (fl_idx c0 = 0; c0 < C4; c0 += 4)
        for (int jb = 0; jb < 8; jb += 4) {
            __m256d r[4];
            for (int q = 0; q < 4; q++) r[q] = _mm256_loadu_pd(zt + (c0 + q) * 8 + jb);
            FN(tr4d)(r);
            for (int i = 0; i < 4; i++) _mm256_storeu_pd(x0 + (jb + i) * C + c0, r[i]);
        }
#endif
    for (int j = 0; j < 8; j++)
        for (fl_idx c = C4; c < C; c++) x0[j * C + c] = zt[c * 8 + j];
}
#undef RL_C4

FL_INLINE void FN(rl_lanes_passes)(const T *restrict x0, fl_idx C, const int *act, const fl_idx *yv,
                                   int want_h, T *restrict dt, T *restrict et, T *restrict mv,
                                   fl_rl_lanes *restrict L)
{
    FL_RL_ASSUME_C(C);   /* the lanes path's rows only */
    T P1[8 * 8], P2[8 * 8], Kc[8];
    for (int j = 0; j < 8; j++) {
        mv[j] = -(T)INFINITY;
        Kc[j] = 0;
    }
    for (int i = 0; i < 64; i++) P1[i] = P2[i] = 0;
    FN(rl_to_lanes)(x0, C, dt);
    for (int j = 0; j < 8; j++)            /* a lane that is not a row: logits 0 */
        if (!act[j])
            for (fl_idx c = 0; c < C; c++) dt[c * 8 + j] = 0;
    for (fl_idx c = 0; c < C; c++) {
        RW_PRAGMA(omp simd)
        for (int j = 0; j < 8; j++) mv[j] = dt[c * 8 + j] > mv[j] ? dt[c * 8 + j] : mv[j];
    }
    for (fl_idx c = 0; c < C; c++) {
        RW_PRAGMA(omp simd)
        for (int j = 0; j < 8; j++) {
            const T d = dt[c * 8 + j] - mv[j];
            dt[c * 8 + j] = d;
            et[c * 8 + j] = EXPN(d);
        }
    }
    /* the sums in loops of their own, class c to partial q (static for
     * the whole blocks of 8 classes) */
#define RL_LTERM(c, q)                                                        \
    do {                                                                      \
        T *restrict p1 = P1 + (q) * 8;                                        \
        RW_PRAGMA(omp simd)                                                   \
        for (int j = 0; j < 8; j++) {                                         \
            const T e = et[(c) * 8 + j];                                      \
            const int mx = e == 1;                                            \
            const T t1 = mx ? (T)0 : e, t2 = mx ? (T)1 : (T)0;                \
            p1[j] += t1;                                                      \
            Kc[j] += t2;                                                      \
        }                                                                     \
    } while (0)
#define RL_LHTERM(c, q)                                                       \
    do {                                                                      \
        T *restrict p2 = P2 + (q) * 8;                                        \
        RW_PRAGMA(omp simd)                                                   \
        for (int j = 0; j < 8; j++) {                                         \
            const T e = et[(c) * 8 + j], d = dt[(c) * 8 + j];                 \
            const T term = e != 0 ? e * d : (T)0;                             \
            p2[j] += term;                                                    \
        }                                                                     \
    } while (0)
    const fl_idx C8 = C & ~(fl_idx)7;
    for (fl_idx cb = 0; cb < C8; cb += 8)
        for (int q = 0; q < 8; q++) RL_LTERM(cb + q, q);
    for (fl_idx c = C8; c < C; c++) RL_LTERM(c, C >= 8 ? (int)(c - (C - 8)) : (int)c);
    if (want_h) {
        for (fl_idx cb = 0; cb < C8; cb += 8)
            for (int q = 0; q < 8; q++) RL_LHTERM(cb + q, q);
        for (fl_idx c = C8; c < C; c++) RL_LHTERM(c, C >= 8 ? (int)(c - (C - 8)) : (int)c);
    }
#undef RL_LTERM
#undef RL_LHTERM
    for (int j = 0; j < 8; j++) {
        if (!act[j]) continue;
        const T s1 = ((P1[0 * 8 + j] + P1[4 * 8 + j]) + (P1[2 * 8 + j] + P1[6 * 8 + j])) +
                     ((P1[1 * 8 + j] + P1[5 * 8 + j]) + (P1[3 * 8 + j] + P1[7 * 8 + j]));
        const T s2 = ((P2[0 * 8 + j] + P2[4 * 8 + j]) + (P2[2 * 8 + j] + P2[6 * 8 + j])) +
                     ((P2[1 * 8 + j] + P2[5 * 8 + j]) + (P2[3 * 8 + j] + P2[7 * 8 + j]));
        L->rest[j] = (double)s1;
        L->k[j] = (double)Kc[j];
        L->ds[j] = want_h ? (double)s2 : 0.0;
        L->zy[j] = (double)x0[j * C + yv[j]] - (double)mv[j];
        L->ey[j] = (double)et[yv[j] * 8 + j];
    }
}

FL_INLINE void FN(rl_lanes_write)(T *restrict g0, fl_idx C, const T *restrict dt, T *restrict et,
                                  const fl_rl_lanes *restrict L)
{
    FL_RL_ASSUME_C(C);   /* the lanes path's rows only */
    T ist[8], cf[8], cb[8], Dt[8];
    for (int j = 0; j < 8; j++) {
        ist[j] = (T)L->is[j]; cf[j] = (T)L->cf[j]; cb[j] = (T)L->cb[j]; Dt[j] = (T)L->D[j];
    }
    for (fl_idx c = 0; c < C; c++) {
        RW_PRAGMA(omp simd)
        for (int j = 0; j < 8; j++) {
            const T e = et[c * 8 + j], p = e * ist[j], gv = p * FL_FMA(cb[j], dt[c * 8 + j] + Dt[j], cf[j]);
            et[c * 8 + j] = e == 0 ? (T)0 : gv;
        }
    }
    FN(rl_from_lanes)(et, C, g0);
}

static void FN(rl_lanes_p)(const T *x0, fl_idx C, const int *act, const fl_idx *yv, int want_h,
                           T *dt, T *et, T *mv, fl_rl_lanes *L)
{
    switch (C) {
    case 16: FN(rl_lanes_passes)(x0, 16, act, yv, want_h, dt, et, mv, L); break;
    default: FN(rl_lanes_passes)(x0, C, act, yv, want_h, dt, et, mv, L);
    }
}

static void FN(rl_lanes_w)(T *g0, fl_idx C, const T *dt, T *et, const fl_rl_lanes *L)
{
    switch (C) {
    case 16: FN(rl_lanes_write)(g0, 16, dt, et, L); break;
    default: FN(rl_lanes_write)(g0, C, dt, et, L);
    }
}

/* the block of rows, in groups of FL_RL_G; PPO selects the objective of
 * the log-probability: REINFORCE f = -A lp, or PPO's clipped surrogate of
 * r = exp(lp - old) */
FL_INLINE double FN(rl_rows)(const fl_row_args *a, fl_idx start, fl_idx n, fl_idx *bad, const int PPO)
{
    const fl_idx C = a->C, end = start + n;
    const T *adv = (const T *)a->ra, *old = (const T *)a->rb, *rw = (const T *)a->rw;
    T *l = (T *)a->l;
    const int want_h = a->prm.pc != 0 || a->xs != NULL;
    double total = 0, sh = 0, sclip = 0, skl = 0;
    fl_rl_lanes L;
#if RW_T8
    _Alignas(32) T dt8[RW_SMALL_C * 8], et8[RW_SMALL_C * 8];  /* the lanes path's rows */
#else
    T dt8[RW_SMALL_C * 8], et8[RW_SMALL_C * 8];
#endif
    T m8[8];
    for (fl_idx r0 = start; r0 < end; r0 += FL_RL_G) {
        const int G = (int)RW_MIN((fl_idx)FL_RL_G, end - r0);
        const T *x0 = (const T *)a->x + r0 * C;
        T *g0 = a->g ? (T *)a->g + r0 * C : NULL;
        int act[FL_RL_G];
        fl_idx yv[FL_RL_G];
        T mt[FL_RL_G];
        for (int j = 0; j < FL_RL_G; j++) {
            L.rest[j] = 0; L.k[j] = 1; L.zy[j] = 0; L.ds[j] = 0; L.ey[j] = 1;
            L.A[j] = 0; L.w[j] = 0; L.old[j] = 0;
            act[j] = 0; yv[j] = 0; mt[j] = 0;
        }
        for (int j = 0; j < G; j++) {
            const fl_idx r = r0 + j;
            const int64_t y = FN(label)(a->t, a->tcode, r);
            if (FN(label_ok)(y, 0, 0, C) <= 0) {
                if (*bad < 0) *bad = r;
                continue;
            }
            act[j] = 1;
            yv[j] = (fl_idx)y;
            L.A[j] = (double)adv[r];
            L.w[j] = rw ? (double)rw[r] : 1.0;
            if (PPO) L.old[j] = (double)old[r];
        }
        const int lanes = G == FL_RL_G && C <= RW_SMALL_C;
#if RW_T8
        if (lanes) FN(rl_group8_p)(x0, C, act, yv, want_h, dt8, et8, m8, &L);
#else
        if (lanes) FN(rl_lanes_p)(x0, C, act, yv, want_h, dt8, et8, m8, &L);
#endif
        if (!lanes)
            for (int j = 0; j < G; j++) {
                const T *z = x0 + j * C;
                T *g = g0 ? g0 + j * C : NULL;
                if (r0 + j + 1 < end && !(RW_D4 && g)) FN(prefetch_row)(z + C, C); /* see r_sumexp_x */
                if (act[j]) mt[j] = FN(rl_row_passes)(z, g, C, yv[j], want_h, &L, j);
            }
        if (PPO) FN(rl_scal_ppo)(a, &L);
        else FN(rl_scal_pg)(a, &L);
        for (int j = 0; j < G; j++) {
            const double lv = act[j] ? L.lv[j] : 0.0;
            if (l) l[r0 + j] = (T)lv;
            total += lv;
            if (!act[j]) continue;
            if (want_h) sh += L.sh[j];
            if (PPO) { sclip += L.clip[j]; skl += L.kl[j]; }
        }
        if (!g0) continue;
#if RW_T8
        if (lanes) FN(rl_group8_w)(g0, C, dt8, et8, &L);
#else
        if (lanes) FN(rl_lanes_w)(g0, C, dt8, et8, &L);
#endif
        for (int j = 0; j < G; j++) {
            T *g = g0 + j * C;
            if (!act[j]) {
                FN(zero)(g, C);
                continue;
            }
            if (!lanes)
                FN(rl_row_write)(x0 + j * C, g, C, mt[j], (T)L.is[j], (T)L.cf[j], (T)L.cb[j], (T)L.D[j]);
            g[yv[j]] = (T)L.gy[j];
        }
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
