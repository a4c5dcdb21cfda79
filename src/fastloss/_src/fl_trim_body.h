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

/* one chunk of the apply pass without tie counting: keep = lo <= l <= hi
 * (comparisons of values, not keys: a vector loop on any instruction set;
 * the same set, since the keys order the values and -0 == 0; a NaN loss is
 * dropped, as its key is above khi here) or, with ALL, every element */
FL_INLINE T FN(apply_chunk)(const T *restrict l, T *restrict g, T *restrict h, const T *restrict w,
                            T *restrict lo, fl_idx n, T vlo, T vhi, T gs, int *nan_out,
                            const int ALL, const int WW, const int WG, const int WH, const int WL)
{
    T s = 0;
    int nan = 0;
    FL_SIMD_SUM(s, nan)
    for (fl_idx i = 0; i < n; i++) {
        const T li = l[i];
        const int keep = ALL ? 1 : (li >= vlo) & (li <= vhi);
        const T wi = WW ? w[i] : (T)1;
        const int bad = (li != li) | (wi != wi);
        const T z = bad ? (T)NAN : (T)0; /* a dropped element: 0, or NaN that is not masked */
        const T v = keep ? wi * li : z;
        s += v;
        nan |= bad;
        if (WL) lo[i] = v;
        if (WG) g[i] = keep ? gs * wi * g[i] : z;
        if (WH) h[i] = keep ? gs * wi * h[i] : z;
    }
    *nan_out |= nan;
    return s;
}

/* the same with the boundary ties counted in index order (scalar) */
FL_INLINE T FN(apply_chunk_split)(const T *restrict l, T *restrict g, T *restrict h,
                                  const T *restrict w, T *restrict lo, fl_idx n,
                                  const fl_trim_plan *plan, fl_idx *tl, fl_idx *th, T gs,
                                  int *nan_out)
{
    const TU klo = (TU)plan->klo, khi = (TU)plan->khi;
    fl_idx a = *tl, b = *th;
    T s = 0;
    int nan = 0;
    for (fl_idx i = 0; i < n; i++) {
        const T li = l[i];
        const TU k = FN(key_)(li);
        int keep = (k > klo) & (k < khi);
        if (k == klo) {
            keep = a >= plan->drop_lo_eq;
            if (k == khi) keep &= a < plan->keep_hi_eq;
            a++;
        } else if (k == khi) {
            keep = b < plan->keep_hi_eq;
        }
        if (k == khi && k != klo) b++;
        const T wi = w ? w[i] : (T)1;
        const int bad = (li != li) | (wi != wi);
        const T z = bad ? (T)NAN : (T)0;
        const T v = keep ? wi * li : z;
        s += v;
        nan |= bad;
        if (lo) lo[i] = v;
        if (g) g[i] = keep ? gs * wi * g[i] : z;
        if (h) h[i] = keep ? gs * wi * h[i] : z;
    }
    *tl = a;
    *th = b;
    *nan_out |= nan;
    return s;
}

#define FL_TRIM_CASE(WW, WG, WH, WL)                                                        \
    for (fl_idx c = 0; c < n; c += FL_TRIM_CHUNK) {                                         \
        const fl_idx m = n - c < FL_TRIM_CHUNK ? n - c : FL_TRIM_CHUNK;                     \
        if (plan->all)                                                                      \
            total += (double)FN(apply_chunk)(l + c, WG ? g + c : NULL, WH ? h + c : NULL,   \
                                             WW ? w + c : NULL, WL ? lo + c : NULL, m, vlo, \
                                             vhi, gs, nan, 1, WW, WG, WH, WL);              \
        else                                                                                \
            total += (double)FN(apply_chunk)(l + c, WG ? g + c : NULL, WH ? h + c : NULL,   \
                                             WW ? w + c : NULL, WL ? lo + c : NULL, m, vlo, \
                                             vhi, gs, nan, 0, WW, WG, WH, WL);              \
    }                                                                                       \
    break;

double FN(fl_trim_apply)(const T *l, T *g, T *h, const T *w, T *lo, fl_idx n, const fl_trim_plan *plan,
                         fl_idx tie_lo, fl_idx tie_hi, double gscale, int *nan)
{
    const T gs = (T)gscale;
    double total = 0;
    if (plan->split) {
        fl_idx a = tie_lo, b = tie_hi;
        for (fl_idx c = 0; c < n; c += FL_TRIM_CHUNK) {
            const fl_idx m = n - c < FL_TRIM_CHUNK ? n - c : FL_TRIM_CHUNK;
            total += (double)FN(apply_chunk_split)(l + c, g ? g + c : NULL, h ? h + c : NULL,
                                                   w ? w + c : NULL, lo ? lo + c : NULL, m, plan,
                                                   &a, &b, gs, nan);
        }
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
    default: FL_TRIM_CASE(1, 1, 1, 1)
    }
    return total;
}

#undef FL_TRIM_CASE
#undef FL_TRIM_KEYS
#undef FL_TRIM_SHIFT
