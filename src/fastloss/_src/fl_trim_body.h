/* fl_trim_body.h -- the per-dtype passes of the trimmed reduction (see
 * fl_trim.h).  Included by fl_trim.c once per dtype with
 *   T   float or double,  TU  the unsigned integer of its width,
 *   NB  its width in bits,  FN(n)  n suffixed with the dtype.
 * No include guard, on purpose.
 */

/* The order-preserving key of v, branch-free (so that loops over it
 * vectorize): -0 as +0; the sign bit flipped for v >= 0 and every bit for
 * v < 0; NaN the largest key. */
FL_INLINE TU FN(key_)(T v)
{
    const T z = v == 0 ? (T)0 : v;
    TU u;
    memcpy(&u, &z, sizeof u);
    const TU flip = (TU)((TI)u >> (NB - 1)) | ((TU)1 << (NB - 1));
    const TU k = u ^ flip;
    return v != v ? ~(TU)0 : k;
}

uint64_t FN(fl_trim_key)(T v) { return (uint64_t)FN(key_)(v); }

/* the value of a key (of a non-NaN value) */
double FN(fl_trim_value)(uint64_t key)
{
    const TU k = (TU)key, sign = (TU)1 << (NB - 1);
    const TU u = (k & sign) ? (k ^ sign) : ~k;
    T v;
    memcpy(&v, &u, sizeof v);
    return (double)v;
}

#define FL_TRIM_KEYS 256 /* keys computed per batch, by a vector loop */
#define FL_TRIM_SHIFT (NB - FL_TRIM_DIGIT)

/* The histogram of the top digits: the keys of a batch by a vector loop,
 * then the counts in four interleaved 32-bit histograms (consecutive
 * elements falling in one bin would otherwise wait on each other's
 * increment), flushed into hist every 2^30 elements. */
void FN(fl_trim_hist)(const T *restrict l, fl_idx n, fl_idx *restrict hist)
{
    static const fl_idx FLUSH = (fl_idx)1 << 30;
    uint32_t h4[4][FL_TRIM_BINS];
    TU kb[FL_TRIM_KEYS];
    for (fl_idx s = 0; s < n; s += FLUSH) {
        const fl_idx e = n - s < FLUSH ? n : s + FLUSH;
        memset(h4, 0, sizeof h4);
        for (fl_idx c = s; c < e; c += FL_TRIM_KEYS) {
            const fl_idx m = e - c < FL_TRIM_KEYS ? e - c : FL_TRIM_KEYS;
            for (fl_idx i = 0; i < m; i++)
                kb[i] = FN(key_)(l[c + i]) >> FL_TRIM_SHIFT;
            fl_idx i = 0;
            for (; i + 4 <= m; i += 4) {
                h4[0][kb[i]]++;
                h4[1][kb[i + 1]]++;
                h4[2][kb[i + 2]]++;
                h4[3][kb[i + 3]]++;
            }
            for (; i < m; i++)
                h4[0][kb[i]]++;
        }
        for (int b = 0; b < FL_TRIM_BINS; b++)
            hist[b] += (fl_idx)h4[0][b] + h4[1][b] + h4[2][b] + h4[3][b];
    }
}

/* Gather the keys whose top digit is d0 into out0 and those whose top digit
 * is d1 into out1 (one pass; out1 NULL: only d0).  Branch-free stores:
 * each out needs one slot of slack. */
void FN(fl_trim_gather)(const T *restrict l, fl_idx n, uint32_t d0, uint32_t d1, uint64_t *restrict out0,
                        uint64_t *restrict out1, fl_idx *c0, fl_idx *c1)
{
    fl_idx m0 = 0, m1 = 0;
    TU kb[FL_TRIM_KEYS];
    for (fl_idx c = 0; c < n; c += FL_TRIM_KEYS) {
        const fl_idx m = n - c < FL_TRIM_KEYS ? n - c : FL_TRIM_KEYS;
        for (fl_idx i = 0; i < m; i++)
            kb[i] = FN(key_)(l[c + i]);
        if (out1) {
            for (fl_idx i = 0; i < m; i++) {
                const TU k = kb[i], d = k >> FL_TRIM_SHIFT;
                out0[m0] = (uint64_t)k;
                m0 += d == d0;
                out1[m1] = (uint64_t)k;
                m1 += d == d1;
            }
        } else {
            for (fl_idx i = 0; i < m; i++) {
                const TU k = kb[i];
                out0[m0] = (uint64_t)k;
                m0 += (k >> FL_TRIM_SHIFT) == d0;
            }
        }
    }
    *c0 = m0;
    if (c1) *c1 = m1;
}

void FN(fl_trim_ties)(const T *restrict l, fl_idx n, uint64_t klo, uint64_t khi, fl_idx *c_lo,
                      fl_idx *c_hi)
{
    fl_idx a = 0, b = 0;
    const TU lo = (TU)klo, hi = (TU)khi;
    for (fl_idx i = 0; i < n; i++) {
        const TU k = FN(key_)(l[i]);
        a += k == lo;
        b += k == hi;
    }
    *c_lo = a;
    *c_hi = b;
}

/* The index of the j-th (0-based, index order) element of l[0..n) whose
 * key is `key`, or -1. */
fl_idx FN(fl_trim_find)(const T *restrict l, fl_idx n, uint64_t key, fl_idx j)
{
    const TU kk = (TU)key;
    for (fl_idx i = 0; i < n; i++)
        if (FN(key_)(l[i]) == kk && j-- == 0)
            return i;
    return -1;
}

/* one chunk of the apply pass without tie counting: keep = lo <= l <= hi
 * (comparisons of values, not keys: a vector loop on any instruction set;
 * the same set, since the keys order the values and -0 == 0; a NaN loss is
 * above hi here, its key being above khi) or, with ALL, every element.
 * WINSOR: an element below lo counts as lo, one above hi as hi (their
 * weights summed in *sb, *sa), with no gradient of its own. */
FL_INLINE T FN(apply_chunk)(const T *restrict l, T *restrict g, T *restrict h, const T *restrict w,
                            T *restrict lo, fl_idx n, T vlo, T vhi, T gs, int *nan_out, T *sb_out,
                            T *sa_out, const int ALL, const int WINSOR, const int WW, const int WG,
                            const int WH, const int WL)
{
    T s = 0, sb = 0, sa = 0;
    int nan = 0;
    FL_TRIM_SIMD
    for (fl_idx i = 0; i < n; i++) {
        const T li = l[i];
        const int below = li < vlo, keep = ALL ? 1 : (li >= vlo) & (li <= vhi);
        const T wi = WW ? w[i] : (T)1;
        const int bad = (li != li) | (wi != wi);
        const T z = bad ? (T)NAN : (T)0; /* a dropped element: 0, or NaN that is not masked */
        /* a dropped element's value: 0 (trimmed) or its side's boundary value (winsorized) */
        const T c = WINSOR ? wi * (below ? vlo : vhi) : (T)0;
        const T alt = bad ? z : c;
        const T v = keep ? wi * li : z; /* lo[i]: a winsorized element's share goes to its boundary */
        s += keep ? wi * li : alt;
        if (!ALL) { /* the weights of each side's dropped elements, as 0/1 products: no branch */
            const int db = (keep ^ 1) & below, da = (keep ^ 1) & (below ^ 1);
            sb += wi * (T)db;
            sa += wi * (T)da;
        }
        nan |= bad;
        if (WL) lo[i] = v;
        if (WG) g[i] = keep ? gs * wi * g[i] : z;
        if (WH) h[i] = keep ? gs * wi * h[i] : z;
    }
    *nan_out |= nan;
    *sb_out += sb;
    *sa_out += sa;
    return s;
}

/* the same with the boundary ties counted in index order (scalar) */
FL_INLINE T FN(apply_chunk_split)(const T *restrict l, T *restrict g, T *restrict h,
                                  const T *restrict w, T *restrict lo, fl_idx n,
                                  const fl_trim_plan *plan, fl_idx *tl, fl_idx *th, T gs,
                                  int *nan_out, T *sb_out, T *sa_out)
{
    const TU klo = (TU)plan->klo, khi = (TU)plan->khi;
    const T vlo = (T)plan->lo, vhi = (T)plan->hi;
    fl_idx a = *tl, b = *th;
    T s = 0, sb = 0, sa = 0;
    int nan = 0;
    for (fl_idx i = 0; i < n; i++) {
        const T li = l[i];
        const TU k = FN(key_)(li);
        int below = k < klo, above = k > khi;
        if (k == klo) {
            below = a < plan->drop_lo_eq;
            if (k == khi) above = a >= plan->keep_hi_eq;
            a++;
        } else if (k == khi) {
            above = b >= plan->keep_hi_eq;
        }
        if (k == khi && k != klo) b++;
        const int keep = !below & !above;
        const T wi = w ? w[i] : (T)1;
        const int bad = (li != li) | (wi != wi);
        const T z = bad ? (T)NAN : (T)0;
        const T c = plan->winsor ? wi * (below ? vlo : vhi) : (T)0;
        const T v = keep ? wi * li : z;
        s += keep ? wi * li : (bad ? z : c);
        sb += below ? wi : (T)0;
        sa += above ? wi : (T)0;
        nan |= bad;
        if (lo) lo[i] = v;
        if (g) g[i] = keep ? gs * wi * g[i] : z;
        if (h) h[i] = keep ? gs * wi * h[i] : z;
    }
    *tl = a;
    *th = b;
    *nan_out |= nan;
    *sb_out += sb;
    *sa_out += sa;
    return s;
}

#define FL_TRIM_CHUNKS(ALL, WINSOR, WW, WG, WH, WL)                                          \
    for (fl_idx c = 0; c < n; c += FL_TRIM_CHUNK) {                                          \
        const fl_idx m = n - c < FL_TRIM_CHUNK ? n - c : FL_TRIM_CHUNK;                      \
        T sb = 0, sa = 0;                                                                    \
        total += (double)FN(apply_chunk)(l + c, WG ? g + c : NULL, WH ? h + c : NULL,        \
                                         WW ? w + c : NULL, WL ? lo + c : NULL, m, vlo, vhi, \
                                         gs, nan, &sb, &sa, ALL, WINSOR, WW, WG, WH, WL);    \
        wb += (double)sb;                                                                    \
        wa += (double)sa;                                                                    \
    }

#define FL_TRIM_CASE(WW, WG, WH, WL)                                                        \
    if (plan->all) {                                                                        \
        FL_TRIM_CHUNKS(1, 0, WW, WG, WH, WL)                                                \
    } else if (plan->winsor) {                                                              \
        FL_TRIM_CHUNKS(0, 1, WW, WG, WH, WL)                                                \
    } else {                                                                                \
        FL_TRIM_CHUNKS(0, 0, WW, WG, WH, WL)                                                \
    }                                                                                       \
    break;

double FN(fl_trim_apply)(const T *l, T *g, T *h, const T *w, T *lo, fl_idx n, const fl_trim_plan *plan,
                         fl_idx tie_lo, fl_idx tie_hi, double gscale, int *nan, double *w_lo,
                         double *w_hi)
{
    const T gs = (T)gscale;
    double total = 0, wb = 0, wa = 0;
    if (plan->split) {
        fl_idx a = tie_lo, b = tie_hi;
        for (fl_idx c = 0; c < n; c += FL_TRIM_CHUNK) {
            const fl_idx m = n - c < FL_TRIM_CHUNK ? n - c : FL_TRIM_CHUNK;
            T sb = 0, sa = 0;
            total += (double)FN(apply_chunk_split)(l + c, g ? g + c : NULL, h ? h + c : NULL,
                                                   w ? w + c : NULL, lo ? lo + c : NULL, m, plan,
                                                   &a, &b, gs, nan, &sb, &sa);
            wb += (double)sb;
            wa += (double)sa;
        }
        *w_lo = wb;
        *w_hi = wa;
        return total;
    }
    const T vlo = (T)plan->lo, vhi = (T)plan->hi;
    /* (g, h) is NULL, g alone, or both; each combination its own loop */
    switch ((w != NULL) * 8 + (g != NULL) * 4 + (h != NULL) * 2 + (lo != NULL)) {
    case 0: FL_TRIM_CASE(0, 0, 0, 0)
    case 1: FL_TRIM_CASE(0, 0, 0, 1)
    case 4: FL_TRIM_CASE(0, 1, 0, 0)
    case 5: FL_TRIM_CASE(0, 1, 0, 1)
    case 6: FL_TRIM_CASE(0, 1, 1, 0)
    case 7: FL_TRIM_CASE(0, 1, 1, 1)
    case 8: FL_TRIM_CASE(1, 0, 0, 0)
    case 9: FL_TRIM_CASE(1, 0, 0, 1)
    case 12: FL_TRIM_CASE(1, 1, 0, 0)
    case 13: FL_TRIM_CASE(1, 1, 0, 1)
    case 14: FL_TRIM_CASE(1, 1, 1, 0)
    default: FL_TRIM_CASE(1, 1, 1, 1) /* (h without g never happens) */
    }
    *w_lo = wb;
    *w_hi = wa;
    return total;
}

#undef FL_TRIM_CASE
#undef FL_TRIM_CHUNKS
#undef FL_TRIM_KEYS
#undef FL_TRIM_SHIFT
