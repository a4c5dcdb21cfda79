/* fl_summary_body.h -- the summary pass for one dtype T (stamped by
 * fl_stamp.h; see fl_summary.h for the fields).  No include guard. */

/* Counts and range of one chunk of at most FL_SUM_CHUNK values, in T's own
 * lanes (8 floats or 4 doubles to an AVX2 vector), with integer counters of
 * T's width (a chunk is short enough for int32). */
FL_INLINE void FN(count_chunk)(const T *restrict v, fl_idx n, fl_summary *o)
{
    TI nan = 0, pinf = 0, ninf = 0, cnt = 0, nonint = 0, in01 = 0, is01 = 0, ispm1 = 0, npos = 0;
    T mn = (T)o->min, mx = (T)o->max;
    /* (t + M) - M rounds t in [0, M); from M on, every value of T is an integer */
    const T M = T_F32 ? (T)8388608.0 : (T)4503599627370496.0;   /* 2^23, 2^52 */
    const T inf = (T)INFINITY, one = 1, zero = 0;
#pragma omp simd reduction(+:nan, pinf, ninf, cnt, nonint, in01, is01, ispm1, npos) reduction(min:mn) reduction(max:mx)
    for (fl_idx i = 0; i < n; i++) {
        const T w = v[i];
        const T aw = FABS(w);
        nan += w != w;
        pinf += w == inf;
        ninf += w == -inf;
        mn = w < mn ? w : mn;                   /* NaN compares false: skipped */
        mx = w > mx ? w : mx;
        cnt += aw < inf;                        /* finite */
        const T t = aw < M ? aw : zero;         /* NaN, inf -> 0 */
        nonint += t != (t + M) - M;
        in01 += (w >= zero) & (w <= one);
        is01 += (w == zero) | (w == one);
        ispm1 += (w == one) | (w == -one);
        npos += w > zero;
    }
    o->nan += (double)nan; o->posinf += (double)pinf; o->neginf += (double)ninf;
    o->min = (double)mn; o->max = (double)mx;
    o->n += (double)cnt; o->nonint += (double)nonint;
    o->in01 += (double)in01; o->is01 += (double)is01; o->ispm1 += (double)ispm1; o->npos += (double)npos;
}

/* The moments (and, with b, the residual-input sums) of one chunk, from
 * values already converted to double. */
FL_INLINE void FN(moment_chunk)(const double *restrict v, const double *restrict x, fl_idx n,
                                const fl_sum_args *p, fl_summary *o, const int has_b)
{
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

/* A run of values in chunks: counts in T, moments in double.  With b the
 * values are the residuals a - b, formed in T (as a loss kernel forms them). */
FL_INLINE void FN(sum_elems)(const T *restrict a, const T *restrict b, fl_idx n,
                             const fl_sum_args *p, fl_summary *o,
                             const int has_b, const int moments)
{
    T vt[FL_SUM_CHUNK];
    double v[FL_SUM_CHUNK], x[FL_SUM_CHUNK];
    for (fl_idx c = 0; c < n; c += FL_SUM_CHUNK) {
        const fl_idx m = n - c < FL_SUM_CHUNK ? n - c : FL_SUM_CHUNK;
        const T *src = a + c;
        if (has_b) {
            for (fl_idx i = 0; i < m; i++) vt[i] = a[c + i] - b[c + i];
            src = vt;
        }
        FN(count_chunk)(src, m, o);
        if (!moments) continue;
        for (fl_idx i = 0; i < m; i++) v[i] = (double)src[i];
        if (has_b)
            for (fl_idx i = 0; i < m; i++) x[i] = (double)b[c + i];
        FN(moment_chunk)(v, x, m, p, o, has_b);
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
