/* fl_trim_body.h -- the per-dtype passes of the trimmed reduction (see
 * fl_trim.h).  Included by fl_trim.c once per dtype with
 *   T   float or double,  TU  the unsigned integer of its width,
 *   NB  its width in bits,  FN(n)  n suffixed with the dtype.
 * No include guard, on purpose.
 */

/* The order-preserving key of v: -0 as +0, NaN the largest key. */
FL_INLINE TU FN(key_)(T v)
{
    const T z = v == 0 ? (T)0 : v;
    TU u;
    memcpy(&u, &z, sizeof u);
    const TU sign = (TU)1 << (NB - 1);
    const TU k = (u & sign) ? ~u : (u | sign);
    return v != v ? ~(TU)0 : k;
}

uint64_t FN(fl_trim_key)(T v) { return (uint64_t)FN(key_)(v); }

void FN(fl_trim_hist)(const T *restrict l, fl_idx n, fl_idx *restrict hist)
{
    for (fl_idx i = 0; i < n; i++)
        hist[FN(key_)(l[i]) >> (NB - FL_TRIM_DIGIT)]++;
}

fl_idx FN(fl_trim_gather)(const T *restrict l, fl_idx n, uint32_t d, uint64_t *restrict out)
{
    fl_idx m = 0;
    for (fl_idx i = 0; i < n; i++) {
        const TU k = FN(key_)(l[i]);
        if ((k >> (NB - FL_TRIM_DIGIT)) == d)
            out[m++] = (uint64_t)k;
    }
    return m;
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

/* one chunk of the apply pass without tie counting: keep = klo <= key <= khi */
FL_INLINE T FN(apply_chunk)(const T *restrict l, T *restrict g, T *restrict h, const T *restrict w,
                            T *restrict lo, fl_idx n, TU klo, TU khi, T gs, int *nan_out,
                            const int WW, const int WG, const int WH, const int WL)
{
    T s = 0;
    int nan = 0;
    FL_SIMD_SUM(s, nan)
    for (fl_idx i = 0; i < n; i++) {
        const T li = l[i];
        const TU k = FN(key_)(li);
        const int keep = (k >= klo) & (k <= khi);
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
        total += (double)FN(apply_chunk)(l + c, WG ? g + c : NULL, WH ? h + c : NULL,       \
                                         WW ? w + c : NULL, WL ? lo + c : NULL, m, klo,     \
                                         khi, gs, nan, WW, WG, WH, WL);                     \
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
    const TU klo = (TU)plan->klo, khi = (TU)plan->khi;
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
