/* fl_overlap_lovasz_math.h -- the Lovasz hinge and Lovasz-softmax losses
 * (Berman, Rannen Triki, Blaschko, CVPR 2018); see fl_overlap.h.
 *
 * Included by fl_overlap_body.h once per (dtype, instruction set).  No
 * include guard, on purpose.
 *
 * One task is a set (an image, or the batch) and a class.  It writes the
 * errors of the set's pixels that are not ignored as sortable keys (the
 * float's bits, made unsigned-monotone and complemented for a descending
 * order) next to their position (31 bits) and foreground flag (bit 31),
 * sorts them with a stable LSD radix sort (8-bit digits; a digit that
 * every key shares is skipped), then walks the sorted errors once: with
 * gts foreground pixels, after r + 1 of them cf foreground and cb
 * background,
 *   J_r = 1 - (gts - cf) / (gts + cb),   w_r = J_r - J_{r-1}  (lovasz_grad)
 * and the loss is sum_r e_r w_r (hinge: relu(e_r) w_r).  w_r is also the
 * derivative of the loss with respect to the r-th largest error, so the
 * walk writes the subgradient at each pixel: w_r de/dp (softmax, e =
 * |fg - p|, de/dp = sign(p - fg)) or w_r de/dx (hinge, e = 1 - x (2 fg - 1),
 * 0 where e <= 0 as relu's derivative).  The sort is stable, so tied
 * errors keep the pixels' order: the same subgradient as a stable argsort.
 */

#if T_F32
/* float: one uint64 per element, the key in the high 32 bits and the
 * position and foreground flag in the low 32: the sort moves 8 bytes */
typedef uint64_t FN(lv_el);
#define LV_KEYBITS 32
#define LV_KEY(el) ((el) >> 32)
#define LV_IX(el) ((uint32_t)(el))
#define LV_MAKE(k, ix) (((uint64_t)(k) << 32) | (uint64_t)(ix))
FL_INLINE uint32_t FN(lv_key)(float v)
{
    uint32_t u;
    v += 0.0f; /* -0 -> +0 */
    memcpy(&u, &v, 4);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return ~u;
}
FL_INLINE float FN(lv_val)(uint64_t k)
{
    uint32_t u = ~(uint32_t)k;
    u = (u & 0x80000000u) ? (u & 0x7fffffffu) : ~u;
    float v;
    memcpy(&v, &u, 4);
    return v;
}
#else
typedef struct { uint64_t k; uint64_t ix; } FN(lv_el);
#define LV_KEYBITS 64
#define LV_KEY(el) ((el).k)
#define LV_IX(el) ((uint32_t)(el).ix)
FL_INLINE FN(lv_el) FN(lv_make)(uint64_t k, uint32_t ix) { FN(lv_el) e = {k, ix}; return e; }
#define LV_MAKE(k, ix) FN(lv_make)((k), (ix))
FL_INLINE uint64_t FN(lv_key)(double v)
{
    uint64_t u;
    v += 0.0;
    memcpy(&u, &v, 8);
    u = (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
    return ~u;
}
FL_INLINE double FN(lv_val)(uint64_t k)
{
    uint64_t u = ~k;
    u = (u & 0x8000000000000000ull) ? (u & 0x7fffffffffffffffull) : ~u;
    double v;
    memcpy(&v, &u, 8);
    return v;
}
#endif

/* 8-bit digits: the 256 write streams of a scatter stay in L1.  (11-bit
 * digits, one pass fewer for float, timed the same within this machine's
 * noise on 4 x 1e6 errors.) */
#define LV_BITS 8
#define LV_R (1 << LV_BITS)
#define LV_PASSES ((LV_KEYBITS + LV_BITS - 1) / LV_BITS)
#define LV_FG 0x80000000u

/* Count the digits of key k into the LV_PASSES histograms h (done as the
 * keys are written, which saves the sort a pass over them). */
FL_INLINE void FN(lv_count)(uint32_t *restrict h, uint64_t k)
{
    for (int p = 0; p < LV_PASSES; p++) h[p * LV_R + (int)((k >> (p * LV_BITS)) & (LV_R - 1))]++;
}

/* Stable ascending LSD radix sort of n elements by key; b is the second
 * buffer, h the LV_PASSES * LV_R digit counts of the keys (lv_count).
 * Returns 1 if the result is in b, 0 if in a.  A digit that every key
 * shares is skipped. */
static int FN(lv_sort)(FN(lv_el) *restrict a, FN(lv_el) *restrict b, uint32_t *restrict h, fl_idx n)
{
    int swapped = 0;
    FN(lv_el) *src = a, *dst = b;
    for (int p = 0; p < LV_PASSES; p++) {
        uint32_t *hp = h + p * LV_R;
        const int sh = p * LV_BITS;
        if (hp[(int)((LV_KEY(src[0]) >> sh) & (LV_R - 1))] == (uint32_t)n) continue;
        uint32_t s = 0;
        for (int d = 0; d < LV_R; d++) {
            const uint32_t c = hp[d];
            hp[d] = s;
            s += c;
        }
        for (fl_idx i = 0; i < n; i++) {
            const FN(lv_el) e = src[i];
            dst[hp[(int)((LV_KEY(e) >> sh) & (LV_R - 1))]++] = e;
        }
        FN(lv_el) *t = src; src = dst; dst = t;
        swapped ^= 1;
    }
    return swapped;
}

/* bytes of the task part of the scratch (a multiple of 8): the counters,
 * then the elements twice */
FL_INLINE size_t FN(lv_task_bytes)(fl_idx n)
{
    return sizeof(uint32_t) * LV_PASSES * LV_R + 2 * sizeof(FN(lv_el)) * (size_t)n;
}

typedef struct {
    uint32_t *h;
    FN(lv_el) *el, *el2;
} FN(lv_scr);

FL_INLINE FN(lv_scr) FN(lv_layout)(void *scratch, fl_idx n)
{
    FN(lv_scr) s;
    char *p = (char *)scratch;
    s.h = (uint32_t *)p;
    memset(s.h, 0, sizeof(uint32_t) * LV_PASSES * LV_R);
    p += sizeof(uint32_t) * LV_PASSES * LV_R;
    s.el = (FN(lv_el) *)p;
    s.el2 = s.el + n;
    return s;
}

/* Sort the m elements of s and leave the result in s.el. */
FL_INLINE void FN(lv_sort_scr)(FN(lv_scr) *s, fl_idx m)
{
    if (m > 1 && FN(lv_sort)(s->el, s->el2, s->h, m)) {
        FN(lv_el) *t = s->el; s->el = s->el2; s->el2 = t;
    }
}

static double FN(lovasz_softmax)(const fl_lovasz_args *a, fl_idx set, fl_idx c, void *scratch, double gscale,
                                 int *counted, fl_idx *bad)
{
    const fl_idx C = a->C, S = a->S;
    const fl_idx n0 = a->per_image ? set : 0, n1 = a->per_image ? set + 1 : a->N;
    const T *x = (const T *)a->x;
    T *g = (T *)a->g;
    *counted = 0;
    if (a->classes_mode == 2 && !a->sel[c]) {
        if (g)
            for (fl_idx n = n0; n < n1; n++) memset(g + (n * C + c) * S, 0, sizeof(T) * (size_t)S);
        return 0;
    }
    FN(lv_scr) sc = FN(lv_layout)(scratch, (n1 - n0) * S);
    /* value-only calls from logits: the softmax of each tile in the
     * scratch's tail, by the very routine lovasz_prob parks in g with, so
     * the value has the same bits with and without the gradient */
    const int tiles = a->from_logits && !g;
    T *e = (T *)((char *)scratch + FN(lv_task_bytes)((n1 - n0) * S));
    T rz[FL_OV_TILE];
    fl_idx m = 0, gts = 0;
    for (fl_idx n = n0; n < n1; n++) {
        const fl_idx base = (n * C + c) * S;
        for (fl_idx j0 = 0; j0 < S; j0 += FL_OV_TILE) {
            const fl_idx J = j0 + FL_OV_TILE < S ? FL_OV_TILE : S - j0;
            if (tiles) FN(ov_tile_softmax)(x + n * C * S + j0, C, S, J, e, rz, NULL);
            for (fl_idx jj = 0; jj < J; jj++) {
                const fl_idx s = j0 + jj;
                const int64_t y = FN(ov_label)(a->t, a->tcode, n * S + s);
                if (a->has_ignore && y == a->ignore) continue;
                if (y < 0 || y >= (int64_t)C) {
                    if (*bad < 0 || n * S + s < *bad) *bad = n * S + s;
                    continue;
                }
                const T p = !a->from_logits ? x[base + s] : g ? g[base + s] : e[c * FL_OV_TILE + jj] * rz[jj];
                const int fg = y == (int64_t)c;
                const uint64_t key = FN(lv_key)(FABS((T)fg - p));
                sc.el[m] = LV_MAKE(key, (uint32_t)(base + s - c * S) | (fg ? LV_FG : 0u));
                FN(lv_count)(sc.h, key);
                gts += fg;
                m++;
            }
        }
    }
    if (*bad >= 0) return NAN;
    if (a->classes_mode == 0 && gts == 0) {
        if (g)
            for (fl_idx n = n0; n < n1; n++) memset(g + (n * C + c) * S, 0, sizeof(T) * (size_t)S);
        return 0;
    }
    *counted = 1;
    FN(lv_sort_scr)(&sc, m);
    double loss = 0, jprev = 0;
    fl_idx cf = 0, cb = 0;
    const int logits = a->from_logits;
    for (fl_idx r = 0; r < m; r++) {
        const uint32_t u = LV_IX(sc.el[r]);
        const int fg = (u & LV_FG) != 0;
        const T e = FN(lv_val)(LV_KEY(sc.el[r]));
        cf += fg;
        cb += !fg;
        const double jr = 1.0 - (double)(gts - cf) / (double)(gts + cb);
        const double w = jr - jprev;
        jprev = jr;
        loss += (double)e * w;
        if (g) {
            const fl_idx pos = (fl_idx)(u & ~LV_FG) + c * S;
            /* de/dp = sign(p - fg): a softmax p is in [0, 1], so it is -1
             * for the foreground and +1 for the rest where e > 0, with no
             * read at the (random) position; probabilities given as input
             * may lie outside [0, 1]: read them */
            T d;
            if (logits) d = e > 0 ? (fg ? (T)-1 : (T)1) : (e == 0 ? (T)0 : e);
            else d = x[pos] - (T)fg;
            g[pos] = (T)(gscale * w) * (d > 0 ? (T)1 : (d < 0 ? (T)-1 : d * 0));
        }
    }
    return loss;
}

static double FN(lovasz_hinge)(const fl_lovasz_args *a, fl_idx set, fl_idx c, void *scratch, double gscale,
                               int *counted, fl_idx *bad)
{
    (void)c;
    const fl_idx S = a->S;
    const fl_idx i0 = (a->per_image ? set : 0) * S, i1 = (a->per_image ? set + 1 : a->N) * S;
    const T *x = (const T *)a->x, *t = (const T *)a->t;
    T *g = (T *)a->g;
    const T ig = (T)a->ignore;
    FN(lv_scr) sc = FN(lv_layout)(scratch, i1 - i0);
    fl_idx m = 0, gts = 0;
    *counted = 1;
    for (fl_idx i = i0; i < i1; i++) {
        const T tv = t[i];
        if (a->has_ignore && tv == ig) {
            if (g) g[i] = 0;
            continue;
        }
        if (!(tv == 0 || tv == 1)) {
            if (*bad < 0 || i < *bad) *bad = i;
            continue;
        }
        const int fg = tv == 1;
        const uint64_t key = FN(lv_key)(1 - x[i] * (fg ? (T)1 : (T)-1));
        sc.el[m] = LV_MAKE(key, (uint32_t)i | (fg ? LV_FG : 0u));
        FN(lv_count)(sc.h, key);
        gts += fg;
        m++;
    }
    if (*bad >= 0) return NAN;
    FN(lv_sort_scr)(&sc, m);
    double loss = 0, jprev = 0;
    fl_idx cf = 0, cb = 0;
    for (fl_idx r = 0; r < m; r++) {
        const uint32_t u = LV_IX(sc.el[r]);
        const int fg = (u & LV_FG) != 0;
        const T e = FN(lv_val)(LV_KEY(sc.el[r]));
        cf += fg;
        cb += !fg;
        const double jr = 1.0 - (double)(gts - cf) / (double)(gts + cb);
        const double w = jr - jprev;
        jprev = jr;
        loss += (double)(e <= 0 ? 0 : e) * w;   /* relu, NaN kept */
        if (g) g[u & ~LV_FG] = e > 0 ? (T)(gscale * w) * (fg ? (T)-1 : (T)1) : (T)0;
    }
    return loss;
}

/* The targets of items [i0, i0 + n) (pixels, or elements for the hinge):
 * the first that is bad (a label outside [0, C), or a hinge target other
 * than 0 and 1, that is not ignored), or -1.  Run over the whole target
 * before anything is written, so that a bad target leaves out= as it was. */
static fl_idx FN(lovasz_check)(const fl_lovasz_args *a, int hinge, fl_idx i0, fl_idx n)
{
    if (hinge) {
        const T *t = (const T *)a->t;
        const T ig = (T)a->ignore;
        for (fl_idx i = i0; i < i0 + n; i++) {
            const T tv = t[i];
            if (!(a->has_ignore && tv == ig) && !(tv == 0 || tv == 1)) return i;
        }
        return -1;
    }
    for (fl_idx i = i0; i < i0 + n; i++) {
        const int64_t y = FN(ov_label)(a->t, a->tcode, i);
        if (!(a->has_ignore && y == a->ignore) && (y < 0 || y >= (int64_t)a->C)) return i;
    }
    return -1;
}

/* g = softmax(x) for the pixels [s0, s0 + ns) of image n (gradient calls
 * park the probabilities in the gradient buffer); checks the labels.
 * scratch holds C tiles. */
static fl_idx FN(lovasz_prob)(const fl_lovasz_args *a, fl_idx n, fl_idx s0, fl_idx ns, void *scratch)
{
    const fl_idx C = a->C, S = a->S;
    const T *x = (const T *)a->x + n * C * S;
    T *g = (T *)a->g + n * C * S;
    T *e = (T *)scratch;
    T rz[FL_OV_TILE];
    fl_idx bad = -1;
    for (fl_idx s = s0; s < s0 + ns; s++) {
        const int64_t y = FN(ov_label)(a->t, a->tcode, n * S + s);
        if (!(a->has_ignore && y == a->ignore) && (y < 0 || y >= (int64_t)C)) {
            bad = n * S + s;
            break;
        }
    }
    for (fl_idx j0 = s0; j0 < s0 + ns; j0 += FL_OV_TILE) {
        const fl_idx J = j0 + FL_OV_TILE < s0 + ns ? FL_OV_TILE : s0 + ns - j0;
        FN(ov_tile_softmax)(x + j0, C, S, J, e, rz, NULL);
        for (fl_idx c = 0; c < C; c++) {
            const T *restrict ec = e + c * FL_OV_TILE;
            T *restrict gc = g + c * S + j0;
            OV_PRAGMA(omp simd)
            for (fl_idx jj = 0; jj < J; jj++) gc[jj] = ec[jj] * rz[jj];
        }
    }
    return bad;
}

/* g (dL/dp) -> dL/dx through the softmax, times the set's scale; 0 at
 * ignored pixels. */
static void FN(lovasz_back)(const fl_lovasz_args *a, fl_idx n, fl_idx s0, fl_idx ns, const double *scale,
                            void *scratch)
{
    const fl_idx C = a->C, S = a->S;
    const T f = (T)scale[a->per_image ? n : 0];
    const T *x = (const T *)a->x + n * C * S;
    T *g = (T *)a->g + n * C * S;
    T *e = (T *)scratch;
    T yok[FL_OV_TILE], rz[FL_OV_TILE], pg[FL_OV_TILE];
    for (fl_idx j0 = s0; j0 < s0 + ns; j0 += FL_OV_TILE) {
        const fl_idx J = j0 + FL_OV_TILE < s0 + ns ? FL_OV_TILE : s0 + ns - j0;
        for (fl_idx jj = 0; jj < J; jj++) {
            const int64_t y = FN(ov_label)(a->t, a->tcode, n * S + j0 + jj);
            yok[jj] = (a->has_ignore && y == a->ignore) ? (T)0 : (T)1;
        }
        if (!a->from_logits) {
            for (fl_idx c = 0; c < C; c++) {
                T *restrict gc = g + c * S + j0;
                for (fl_idx jj = 0; jj < J; jj++) gc[jj] = yok[jj] != 0 ? gc[jj] * f : (T)0;
            }
            continue;
        }
        FN(ov_tile_softmax)(x + j0, C, S, J, e, rz, NULL);
        for (fl_idx jj = 0; jj < J; jj++) pg[jj] = 0;
        for (fl_idx c = 0; c < C; c++) {
            T *restrict ec = e + c * FL_OV_TILE;
            const T *restrict gc = g + c * S + j0;
            OV_PRAGMA(omp simd)
            for (fl_idx jj = 0; jj < J; jj++) {
                const T p = ec[jj] * rz[jj];
                ec[jj] = p;
                pg[jj] += p * gc[jj];
            }
        }
        for (fl_idx c = 0; c < C; c++) {
            const T *restrict ec = e + c * FL_OV_TILE;
            T *restrict gc = g + c * S + j0;
            OV_PRAGMA(omp simd)
            for (fl_idx jj = 0; jj < J; jj++) {
                const T d = ec[jj] * (gc[jj] - pg[jj]) * f;
                gc[jj] = yok[jj] != 0 ? d : (T)0;
            }
        }
    }
}

#undef LV_KEYBITS
#undef LV_KEY
#undef LV_IX
#undef LV_MAKE
#undef LV_BITS
#undef LV_R
#undef LV_PASSES
#undef LV_FG
