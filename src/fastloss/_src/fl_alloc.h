/* fl_alloc.h -- a bounded, thread-safe cache of large memory blocks for the
 * arrays that fastloss allocates (gradients, Hessians, per-element losses).
 *
 * Why: glibc returns a freed block above 32 MB to the system, so a default
 * call at N = 1e7 float32 maps a fresh 40 MB gradient every time and pays
 * for its page faults and zeroing -- 1.6-1.8x the time of the same call with
 * an out= buffer.  These functions have the signatures of NumPy's memory
 * handler (NEP 49, PyDataMemAllocator); _alloc.pyx installs them, only
 * around fastloss's own np.empty calls, so an array fastloss returns is an
 * ordinary owned NumPy array whose memory comes from here, and NumPy calls
 * fl_cache_free (through the handler the array keeps a reference to) when
 * the array dies, wherever and whenever that is.
 *
 * Rules:
 *  - A block is put in the cache only by fl_cache_free, that is after its
 *    array is gone, and handed out again only by fl_cache_malloc.
 *  - Requests below FL_CACHE_MIN bytes are plain malloc (the cache is for
 *    blocks whose first touch costs page faults); every block carries a
 *    64-byte header saying which kind it is, so free and realloc never
 *    depend on the size NumPy passes.
 *  - Large blocks are anonymous mappings, advised for huge pages; a free
 *    block is kept while the idle bytes stay under the limit: an explicit
 *    one (fl_cache_set_limit, 0 disables the cache), or by default
 *    FL_CACHE_AUTO_MULT times the largest request among the recent ones,
 *    at most FL_CACHE_CEILING (and an eighth of the physical memory).
 *    Beyond it, the least recently freed blocks are returned to the system.
 *  - One mutex guards the cache (callers may or may not hold the GIL);
 *    system calls (mmap, munmap) are made outside it.  After fork() the
 *    child starts with an unlocked mutex and the parent's cached blocks
 *    (its own copy-on-write copies), which it may reuse.
 */
#ifndef FL_ALLOC_H
#define FL_ALLOC_H

#include <stddef.h>
#include <stdint.h>

/* Requests of at least this many bytes go through the cache. */
#define FL_CACHE_MIN ((size_t)1 << 20)
/* Default limit: this many times the largest recent request ... */
#define FL_CACHE_AUTO_MULT 4
/* ... and never more than this. */
#define FL_CACHE_CEILING ((int64_t)1 << 30)
/* At most this many idle blocks are kept. */
#define FL_CACHE_SLOTS 32

void *fl_cache_malloc(void *ctx, size_t size);
void *fl_cache_calloc(void *ctx, size_t nelem, size_t elsize);
void *fl_cache_realloc(void *ctx, void *ptr, size_t new_size);
void fl_cache_free(void *ctx, void *ptr, size_t size);

/* limit < 0: the default (automatic) limit; 0: cache nothing (and release
 * what is cached); > 0: keep at most that many idle bytes. */
void fl_cache_set_limit(int64_t limit);
/* The limit in force now, in bytes (the automatic one when no explicit
 * limit is set), and the setting itself (-1 for automatic). */
int64_t fl_cache_limit(void);
int64_t fl_cache_setting(void);
/* The ceiling of the automatic limit on this machine. */
int64_t fl_cache_ceiling(void);
/* Return every idle block to the system. */
void fl_cache_trim(void);

typedef struct {
    int64_t idle_bytes, idle_blocks;   /* cached, waiting for reuse */
    int64_t live_bytes, live_blocks;   /* large blocks held by arrays now */
    int64_t hits, misses;              /* large requests served from the cache / mapped anew */
    int64_t released;                  /* large blocks returned to the system */
    int64_t recent_max;                /* the largest recent large request */
} fl_cache_stats_t;

void fl_cache_stats(fl_cache_stats_t *s);
/* Once, at import: the fork handlers (0 on success). */
int fl_cache_init(void);

#endif /* FL_ALLOC_H */
