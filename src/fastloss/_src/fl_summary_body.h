/* fl_summary_body.h -- the summary pass for one dtype T (stamped by
 * fl_stamp.h; see fl_summary.h for the fields).  No include guard. */

/* One chunk of at most FL_SUM_CHUNK values, already in double: three short
 * loops over L1-resident data, each vectorized with its own reductions. */
FL_INLINE void FN(sum_chunk)(const double *restrict v, const double *restrict x, fl_idx n,
                             const fl_sum_args *p, fl_summary *o,
                             const int has_b, const int moments)
{
    int64_t nan = 0, pinf = 0, ninf = 0, cnt = 0, nonint = 0, in01 = 0, is01 = 0, ispm1 = 0, npos = 0;
    double mn = o->min, mx = o->max;
    const double M = 4503599627370496.0;   /* 2^52: (t + M) - M rounds t in [0, 2^52) */
#pragma omp simd reduction(+:nan, pinf, ninf, cnt, nonint, in01, is01, ispm1, npos) reduction(min:mn) reduction(max:mx)
    for (fl_idx i = 0; i < n; i++) {
        const double w = v[i];
        const double aw = fabs(w);
        nan += w != w;
        pinf += w == INFINITY;
        ninf += w == -INFINITY;
        mn = w < mn ? w : mn;                   /* NaN compares false: skipped */
        mx = w > mx ? w : mx;
        cnt += aw < INFINITY;                   /* finite */
        const double t = aw < M ? aw : 0.0;     /* NaN, inf -> 0; from 2^52 on, every double is an integer */
        nonint += t != (t + M) - M;
        in01 += (w >= 0.0) & (w <= 1.0);
        is01 += (w == 0.0) | (w == 1.0);
        ispm1 += (w == 1.0) | (w == -1.0);
        npos += w > 0.0;
    }
    o->nan += (double)nan; o->posinf += (double)pinf; o->neginf += (double)ninf;
    o->min = mn; o->max = mx;
    o->n += (double)cnt; o->nonint += (double)nonint;
    o->in01 += (double)in01; o->is01 += (double)is01; o->ispm1 += (double)ispm1; o->npos += (double)npos;
    if (!moments) return;
    const double sh = p->shift;
    double s1 = 0, s2 = 0, s3 = 0, s4 = 0;
#pragma omp simd reduction(+:s1, s2, s3, s4)
    for (fl_idx i = 0; i < n; i++) {
        const double d = fabs(v[i]) < INFINITY ? v[i] - sh : 0.0;
        const double d2 = d * d;
        s1 += d;
        s2 += d2;
        s3 += d2 * d;
        s4 += d2 * d2;
    }
    o->s1 += s1; o->s2 += s2; o->s3 += s3; o->s4 += s4;
    if (!has_b) return;
    const double shb = p->shift_b, shr = p->shift_r;
    double bs1 = 0, bs2 = 0, r1 = 0, r2 = 0, br = 0, ba1 = 0, bar = 0;
#pragma omp simd reduction(+:bs1, bs2, r1, r2, br, ba1, bar)
    for (fl_idx i = 0; i < n; i++) {
        const int fin = fabs(v[i]) < INFINITY;
        const double xb = fin ? x[i] - shb : 0.0;
        const double e = fin ? fabs(v[i] - sh) - shr : 0.0;
        bs1 += xb;
        bs2 += xb * xb;
        r1 += e;
        r2 += e * e;
        br += xb * e;
        ba1 += fabs(xb);
        bar += fabs(xb) * e;
    }
    o->bs1 += bs1; o->bs2 += bs2; o->r1 += r1; o->r2 += r2; o->br += br;
    o->ba1 += ba1; o->bar += bar;
}

FL_INLINE void FN(sum_elems)(const T *restrict a, const T *restrict b, fl_idx n,
                             const fl_sum_args *p, fl_summary *o,
                             const int has_b, const int moments)
{
    double v[FL_SUM_CHUNK], x[FL_SUM_CHUNK];
    for (fl_idx c = 0; c < n; c += FL_SUM_CHUNK) {
        const fl_idx m = n - c < FL_SUM_CHUNK ? n - c : FL_SUM_CHUNK;
        if (has_b) {
            for (fl_idx i = 0; i < m; i++) {
                x[i] = (double)b[c + i];
                v[i] = (double)a[c + i] - x[i];
            }
        } else {
            for (fl_idx i = 0; i < m; i++) v[i] = (double)a[c + i];
        }
        FN(sum_chunk)(v, x, m, p, o, has_b, moments);
    }
}

/* Row sums (of v, or of exp(v)) over whole rows of `row` elements, summed
 * in T (float lanes for float32: the sums only need to be compared with 1
 * to about 1e-3). */
FL_INLINE void FN(sum_rows)(const T *restrict a, fl_idx nrows, fl_idx row, int rexp, fl_summary *o)
{
    double rmn = o->rmin, rmx = o->rmax, onehot = 0;
    for (fl_idx r = 0; r < nrows; r++) {
        const T *x = a + r * row;
        T s = 0;
        int not01 = 0;
        if (rexp) {
            FL_SIMD_SUM(s, not01)
            for (fl_idx j = 0; j < row; j++) s += EXP(x[j]);
        } else {
            FL_SIMD_SUM(s, not01)
            for (fl_idx j = 0; j < row; j++) {
                s += x[j];
                not01 |= (x[j] != (T)0) & (x[j] != (T)1);
            }
        }
        const double sd = (double)s;
        rmn = sd < rmn ? sd : rmn;
        rmx = sd > rmx ? sd : rmx;
        onehot += !rexp && !not01 && sd == 1.0;
    }
    o->rmin = rmn;
    o->rmax = rmx;
    o->onehot += onehot;
}

static void FN(sum_block)(const fl_sum_args *p, fl_idx start, fl_idx n, fl_summary *o)
{
    const T *a = (const T *)p->a + start;
    const T *b = p->b ? (const T *)p->b + start : NULL;
    if (b) {
        if (p->moments) FN(sum_elems)(a, b, n, p, o, 1, 1);
        else FN(sum_elems)(a, b, n, p, o, 1, 0);
    } else {
        if (p->moments) FN(sum_elems)(a, NULL, n, p, o, 0, 1);
        else FN(sum_elems)(a, NULL, n, p, o, 0, 0);
    }
    if (p->row > 0) FN(sum_rows)(a, n / p->row, p->row, p->row_exp, o);
}
