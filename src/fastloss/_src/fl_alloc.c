/* fl_alloc.c -- the block cache behind fastloss's own arrays (fl_alloc.h). */
#include "fl_alloc.h"

#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#  include <windows.h>
#  define FL_MMAP 0
typedef SRWLOCK fl_lock_t;
#  define FL_LOCK_INIT SRWLOCK_INIT
#  define fl_lock(m) AcquireSRWLockExclusive(m)
#  define fl_unlock(m) ReleaseSRWLockExclusive(m)
#else
#  include <pthread.h>
#  include <sys/mman.h>
#  include <unistd.h>
#  define FL_MMAP 1
#  if !defined(MAP_ANONYMOUS) && defined(MAP_ANON)
#    define MAP_ANONYMOUS MAP_ANON
#  endif
typedef pthread_mutex_t fl_lock_t;
#  define FL_LOCK_INIT PTHREAD_MUTEX_INITIALIZER
#  define fl_lock(m) pthread_mutex_lock(m)
#  define fl_unlock(m) pthread_mutex_unlock(m)
#endif

/* Every block's caller's memory follows this header, so it is 64-byte
 * aligned from a mapping (16 from malloc). */
#define FL_HDR 64
/* A large block's header starts this far into its mapping: the caller's
 * memory begins at byte 576 of a page.  NumPy's large arrays (malloc's
 * mappings) begin at byte 16, so a gradient from the cache and the input it
 * is the gradient of are 560 bytes apart in their pages instead of 48.  A
 * kernel storing the gradient a few elements behind its loads of the input
 * then has no store whose low 12 address bits match a load just after it
 * (4K aliasing, a false dependence that stalls the load): float64 sigmoid
 * focal at N = 1e7 on one thread took 48 ms with the gradient 48 bytes
 * after the input in the page, 28.5 ms at 560 (and 39.6 ms at 0, as with
 * np.empty_like); BCE with logits and soft margin, float32 and float64,
 * were as fast or faster at 560 than at 0 or 48. */
#define FL_SKEW 512
#define FL_MAGIC_SMALL UINT64_C(0x666c736d616c6c31) /* "flsmall1" */
#define FL_MAGIC_LARGE UINT64_C(0x666c6c6172676531) /* "fllarge1" */
/* The automatic limit follows the largest request of the last two windows
 * of this many large requests. */
#define FL_WINDOW 64

typedef struct {
    uint64_t magic;
    uint64_t cap;     /* bytes usable after the header */
    uint64_t region;  /* bytes of the whole block, header included */
    uint64_t pad[5];
} fl_hdr;

typedef struct {
    fl_hdr *blk;
    uint64_t stamp;   /* when it was freed: the smallest is evicted first */
} fl_slot;

static fl_lock_t fl_mu = FL_LOCK_INIT;
static fl_slot fl_idle[FL_CACHE_SLOTS];
static int fl_nidle;
static int64_t fl_idle_bytes, fl_live_bytes, fl_live_blocks;
static int64_t fl_hits, fl_misses, fl_released;
static int64_t fl_setting = -1;   /* -1 automatic, else the explicit limit */
static uint64_t fl_clock;
static int64_t fl_win_cur, fl_win_prev;
static int fl_win_n;
static int64_t fl_ceiling_v = -1;

/* ---------------------------------------------------------------- system */

static size_t fl_page(void)
{
#if FL_MMAP
    static size_t p;
    if (!p) {
        long v = sysconf(_SC_PAGESIZE);
        p = v > 0 ? (size_t)v : 4096;
    }
    return p;
#else
    return 4096;
#endif
}

/* a fresh large block of at least `need` bytes (header included), or NULL */
static fl_hdr *fl_map(size_t need)
{
    const size_t pg = fl_page();
    if (need > SIZE_MAX - pg) return NULL;
    const size_t region = (need + pg - 1) / pg * pg;
#if FL_MMAP
    void *p = mmap(NULL, region, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
#  if defined(MADV_HUGEPAGE)
    if (region >= ((size_t)4 << 20)) madvise(p, region, MADV_HUGEPAGE);
#  endif
#else
    void *p = malloc(region);
    if (!p) return NULL;
#endif
    fl_hdr *h = (fl_hdr *)((char *)p + FL_SKEW);
    h->magic = FL_MAGIC_LARGE;
    h->region = region;
    h->cap = region - FL_SKEW - FL_HDR;
    return h;
}

static void fl_unmap(fl_hdr *h)
{
    h->magic = 0;
#if FL_MMAP
    munmap((char *)h - FL_SKEW, (size_t)h->region);
#else
    free((char *)h - FL_SKEW);
#endif
}

static int64_t fl_ceiling(void)
{
    if (fl_ceiling_v < 0) {
        int64_t c = FL_CACHE_CEILING;
#if FL_MMAP && defined(_SC_PHYS_PAGES)
        long np = sysconf(_SC_PHYS_PAGES);
        if (np > 0) {
            const int64_t phys = (int64_t)np * (int64_t)fl_page();
            if (phys / 8 < c) c = phys / 8;
        }
#endif
        fl_ceiling_v = c;
    }
    return fl_ceiling_v;
}

/* the limit in force (lock held) */
static int64_t fl_limit_locked(void)
{
    if (fl_setting >= 0) return fl_setting;
    const int64_t recent = fl_win_cur > fl_win_prev ? fl_win_cur : fl_win_prev;
    const int64_t c = fl_ceiling();
    return recent > c / FL_CACHE_AUTO_MULT ? c : FL_CACHE_AUTO_MULT * recent;
}

/* take idle blocks out, oldest first, until the idle bytes fit `limit`;
 * returns how many were put in out[] (to unmap after unlocking) */
static int fl_evict_locked(int64_t limit, fl_hdr **out)
{
    int n = 0;
    while (fl_nidle > 0 && fl_idle_bytes > limit) {
        int o = 0;
        for (int i = 1; i < fl_nidle; i++)
            if (fl_idle[i].stamp < fl_idle[o].stamp) o = i;
        out[n++] = fl_idle[o].blk;
        fl_idle_bytes -= (int64_t)fl_idle[o].blk->region;
        fl_idle[o] = fl_idle[--fl_nidle];
        fl_released++;
    }
    return n;
}

/* ---------------------------------------------------------------- large */

/* a large block whose caller's part holds `size` bytes; *fresh is set when
 * it was mapped anew (so it is zero) */
static void *fl_large_alloc(size_t size, int *fresh)
{
    if (size > SIZE_MAX - FL_HDR - FL_SKEW) return NULL;
    fl_lock(&fl_mu);
    if ((int64_t)size > fl_win_cur) fl_win_cur = (int64_t)size;
    if (++fl_win_n >= FL_WINDOW) {
        fl_win_prev = fl_win_cur;
        fl_win_cur = 0;
        fl_win_n = 0;
    }
    /* best fit among the idle blocks, wasting at most a quarter; of equal
     * ones the most recently freed (its pages are the likeliest in cache) */
    int best = -1;
    for (int i = 0; i < fl_nidle; i++) {
        const uint64_t cap = fl_idle[i].blk->cap;
        if (cap >= size && cap - size <= size / 4 + fl_page() &&
            (best < 0 || cap < fl_idle[best].blk->cap ||
             (cap == fl_idle[best].blk->cap && fl_idle[i].stamp > fl_idle[best].stamp)))
            best = i;
    }
    if (best >= 0) {
        fl_hdr *h = fl_idle[best].blk;
        fl_idle[best] = fl_idle[--fl_nidle];
        fl_idle_bytes -= (int64_t)h->region;
        fl_hits++;
        fl_live_blocks++;
        fl_live_bytes += (int64_t)h->region;
        fl_unlock(&fl_mu);
        *fresh = 0;
        return (char *)h + FL_HDR;
    }
    fl_misses++;
    fl_unlock(&fl_mu);
    fl_hdr *h = fl_map(size + FL_SKEW + FL_HDR);
    if (!h) return NULL;
    fl_lock(&fl_mu);
    fl_live_blocks++;
    fl_live_bytes += (int64_t)h->region;
    fl_unlock(&fl_mu);
    *fresh = 1;
    return (char *)h + FL_HDR;
}

static void fl_large_free(fl_hdr *h)
{
    fl_hdr *evict[FL_CACHE_SLOTS + 1];
    int ne = 0;
    fl_lock(&fl_mu);
    fl_live_blocks--;
    fl_live_bytes -= (int64_t)h->region;
    const int64_t limit = fl_limit_locked();
    if ((int64_t)h->region > limit) {
        fl_released++;
        fl_unlock(&fl_mu);
        fl_unmap(h);
        return;
    }
    if (fl_nidle == FL_CACHE_SLOTS) {   /* no slot: the oldest goes */
        int o = 0;
        for (int i = 1; i < fl_nidle; i++)
            if (fl_idle[i].stamp < fl_idle[o].stamp) o = i;
        evict[ne++] = fl_idle[o].blk;
        fl_idle_bytes -= (int64_t)fl_idle[o].blk->region;
        fl_idle[o] = fl_idle[--fl_nidle];
        fl_released++;
    }
    fl_idle[fl_nidle].blk = h;
    fl_idle[fl_nidle].stamp = ++fl_clock;
    fl_nidle++;
    fl_idle_bytes += (int64_t)h->region;
    ne += fl_evict_locked(limit, evict + ne);
    fl_unlock(&fl_mu);
    for (int i = 0; i < ne; i++) fl_unmap(evict[i]);
}

/* ---------------------------------------------------------------- small */

static void *fl_small_alloc(size_t size)
{
    if (size > SIZE_MAX - FL_HDR) return NULL;
    fl_hdr *h = (fl_hdr *)malloc(size + FL_HDR);
    if (!h) return NULL;
    h->magic = FL_MAGIC_SMALL;
    h->cap = size;
    h->region = size + FL_HDR;
    return (char *)h + FL_HDR;
}

/* ---------------------------------------------------------------- the handler */

static fl_hdr *fl_header(void *ptr)
{
    return (fl_hdr *)((char *)ptr - FL_HDR);
}

void *fl_cache_malloc(void *ctx, size_t size)
{
    (void)ctx;
    int fresh;
    if (size >= FL_CACHE_MIN) return fl_large_alloc(size, &fresh);
    return fl_small_alloc(size);
}

void *fl_cache_calloc(void *ctx, size_t nelem, size_t elsize)
{
    (void)ctx;
    if (elsize != 0 && nelem > SIZE_MAX / elsize) return NULL;
    const size_t size = nelem * elsize;
    if (size >= FL_CACHE_MIN) {
        int fresh;
        void *p = fl_large_alloc(size, &fresh);
        if (p && !fresh) memset(p, 0, size);
        return p;
    }
    void *p = fl_small_alloc(size);
    if (p) memset(p, 0, size);
    return p;
}

void fl_cache_free(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    (void)size; /* the header says what the block is */
    if (!ptr) return;
    fl_hdr *h = fl_header(ptr);
    if (h->magic == FL_MAGIC_LARGE) {
        fl_large_free(h);
    } else {
        h->magic = 0;
        free(h);
    }
}

void *fl_cache_realloc(void *ctx, void *ptr, size_t new_size)
{
    if (!ptr) return fl_cache_malloc(ctx, new_size);
    fl_hdr *h = fl_header(ptr);
    const size_t cap = (size_t)h->cap;
    if (h->magic == FL_MAGIC_SMALL && new_size < FL_CACHE_MIN) {
        if (new_size > SIZE_MAX - FL_HDR) return NULL;
        fl_hdr *n = (fl_hdr *)realloc(h, new_size + FL_HDR);
        if (!n) return NULL;
        n->cap = new_size;
        n->region = new_size + FL_HDR;
        return (char *)n + FL_HDR;
    }
    if (h->magic == FL_MAGIC_LARGE && new_size <= cap && new_size >= cap / 2)
        return ptr;   /* shrinks a little: keep the block */
    void *p = fl_cache_malloc(ctx, new_size);
    if (!p) return NULL;
    memcpy(p, ptr, new_size < cap ? new_size : cap);
    fl_cache_free(ctx, ptr, cap);
    return p;
}

/* ---------------------------------------------------------------- control */

void fl_cache_set_limit(int64_t limit)
{
    fl_hdr *evict[FL_CACHE_SLOTS];
    fl_lock(&fl_mu);
    fl_setting = limit < 0 ? -1 : limit;
    const int ne = fl_evict_locked(fl_limit_locked(), evict);
    fl_unlock(&fl_mu);
    for (int i = 0; i < ne; i++) fl_unmap(evict[i]);
}

int64_t fl_cache_limit(void)
{
    fl_lock(&fl_mu);
    const int64_t v = fl_limit_locked();
    fl_unlock(&fl_mu);
    return v;
}

int64_t fl_cache_setting(void)
{
    fl_lock(&fl_mu);
    const int64_t v = fl_setting;
    fl_unlock(&fl_mu);
    return v;
}

int64_t fl_cache_ceiling(void)
{
    fl_lock(&fl_mu);
    const int64_t v = fl_ceiling();
    fl_unlock(&fl_mu);
    return v;
}

void fl_cache_trim(void)
{
    fl_hdr *evict[FL_CACHE_SLOTS];
    fl_lock(&fl_mu);
    const int ne = fl_evict_locked(0, evict);
    fl_unlock(&fl_mu);
    for (int i = 0; i < ne; i++) fl_unmap(evict[i]);
}

void fl_cache_stats(fl_cache_stats_t *s)
{
    fl_lock(&fl_mu);
    s->idle_bytes = fl_idle_bytes;
    s->idle_blocks = fl_nidle;
    s->live_bytes = fl_live_bytes;
    s->live_blocks = fl_live_blocks;
    s->hits = fl_hits;
    s->misses = fl_misses;
    s->released = fl_released;
    s->recent_max = fl_win_cur > fl_win_prev ? fl_win_cur : fl_win_prev;
    fl_unlock(&fl_mu);
}

/* ---------------------------------------------------------------- fork */

#if FL_MMAP
static void fl_prefork(void) { pthread_mutex_lock(&fl_mu); }
static void fl_postfork(void) { pthread_mutex_unlock(&fl_mu); }
#endif

/* Called once at import: a fork() while another thread holds the lock
 * must not leave the child's lock held forever. */
int fl_cache_init(void)
{
#if FL_MMAP
    static int done;
    if (!done) {
        done = 1;
        return pthread_atfork(fl_prefork, fl_postfork, fl_postfork);
    }
#endif
    return 0;
}
