/* rows_ce_f64.c -- issue 18: cross-entropy's row kernel (rows_ce_plain,
 * integer labels, value + gradient) in float32 and float64, timed side by
 * side in one process (interleaved rounds, best of R) on one thread, from
 * the library's own block functions (fl_rows.c compiled in), at N
 * elements of C classes; prints the times and float64 / float32.
 *
 *   gcc -O3 -fno-math-errno -fno-trapping-math -fopenmp -Wno-unused-function \
 *       -Isrc/fastloss/_src bench/rows_ce_f64.c -o /tmp/rows_ce_f64 -lm
 *   /tmp/rows_ce_f64 1e7 1000 11        # N, C, rounds
 *
 * To compare two versions of the kernels, build this file against each
 * source tree (git worktree / git stash) and run the binaries alternately,
 * or link both (rename the extern functions of one with -D, as in the
 * commit that added this file).
 *
 * Measured 2026-11-30 (helper ce64t18, Xeon 2 cores, load 3.5-4.8, old
 * and new linked into one binary, interleaved): float64 at N = 1e7, C =
 * 1000, one thread, with the next row prefetched a line at a time inside
 * the fused exp pass (sumexp_park_d4) instead of all at once at the start
 * of the row: 0.68-0.74 of the time before (33.8-36.5 ms -> 22.8-26.3 ms
 * under that load; same bits); in cache (N = 1e5) 0.92-0.94.  Of that,
 * the gradient's prefetch for writing is about 15 % (the next row's
 * logits alone: 14.5-15.1 ms against 12.4-12.8 with both, load 4);
 * 256 B, 512 B or 1 KiB ahead within 1-2 %.  The row max by 16 classes a
 * step (r_max_d4): 0.103 -> 0.098 ms in cache.  Tried and
 * not adopted (same harness): prefetching the next row's gradient for
 * writing all at once at the row start (10-15 % slower); a degree-10
 * polynomial for exp (1.2e-15 relative error, over 2 ulp); the exps in a
 * stack buffer and the gradient written by non-temporal stores (3-8 %
 * faster at 1e7, 4.6x slower in cache, needs 32-byte alignment that
 * NumPy's large arrays (byte 16 of a page) do not have).
 */
#include "fl_rows.c"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static double run(fl_row_args *a, fl_row_block_fn f, fl_idx rows)
{
    const fl_idx b = fl_row_block_items(a->C, 1);
    double tot = 0;
    for (fl_idx s = 0; s < rows; s += b) {
        fl_idx bad = -1;
        tot += f(a, s, rows - s < b ? rows - s : b, &bad);
    }
    return tot;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? (long)atof(argv[1]) : 10000000L;
    const long C = argc > 2 ? atol(argv[2]) : 1000;
    const int reps = argc > 3 ? atoi(argv[3]) : 11;
    fl_rows_select_isa(getenv("FASTLOSS_FORCE_BASELINE") != NULL);
    const long rows = n / C;
    n = rows * C;
    float *x32 = malloc(n * 4 + 64), *g32 = malloc(n * 4 + 64);
    double *x64 = malloc(n * 8 + 64), *g64 = malloc(n * 8 + 64);
    int64_t *y = malloc(rows * 8);
    srand(1);
    for (long i = 0; i < n; i++) {
        double u = 0;
        for (int k = 0; k < 4; k++) u += rand() / (double)RAND_MAX;
        x64[i] = (u - 2) * 1.7;
        x32[i] = (float)x64[i];
    }
    for (long r = 0; r < rows; r++) y[r] = rand() % C;
    fl_row_args a32 = {0}, a64;
    a32.x = x32; a32.g = g32; a32.t = y; a32.C = C; a32.S = 1;
    a32.tcode = FL_LABEL_I64; a32.mode = FL_ROW_GRAD; a32.wsum = (double)C; a32.gscale = 1.0 / rows;
    a64 = a32; a64.x = x64; a64.g = g64;
    const fl_row_block_fn f32 = fl_row_get(0, 0), f64 = fl_row_get(0, 1);
    double b32 = 1e9, b64 = 1e9, v32 = 0, v64 = 0;
    for (int r = 0; r < reps; r++) {
        double t = now();
        v32 = run(&a32, f32, rows);
        t = now() - t;
        if (t < b32) b32 = t;
        t = now();
        v64 = run(&a64, f64, rows);
        t = now() - t;
        if (t < b64) b64 = t;
    }
    printf("%s N=%ld C=%ld: float32 %.3f ms, float64 %.3f ms, float64/float32 %.2f (loss %.9g %.9g)\n",
           fl_rows_isa_name(), n, C, b32 * 1e3, b64 * 1e3, b64 / b32, v32, v64);
    return 0;
}
