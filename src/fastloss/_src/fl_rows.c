/* fl_rows.c -- stamps out the row-over-classes kernels for float32 and
 * float64 on each instruction-set path, and picks the path at run time.
 *
 * Exactly as fl_pointwise.c: the same source (fl_rows_math.h) is compiled
 * for baseline x86-64 and, under a target pragma, for x86-64-v3 (AVX2 +
 * FMA; 8 float lanes and libmvec's AVX2 expf/logf).  fl_rows_select_isa()
 * takes the v3 tables when the CPU has the features, unless the caller
 * forces the baseline (FASTLOSS_FORCE_BASELINE=1, read by the Python
 * layer).  Other compilers and architectures get the baseline tables only.
 */
#include "fl_rows.h"
#if FL_HAVE_X86_V3
#include <immintrin.h> /* the 8x8 transposes of rows_ce_plain (fl_rows_ce.h) */
#endif

#define FL_BODY "fl_rows_math.h"

#include "fl_stamp_isas.h"

#define FL_ROW_NAME(NAME) #NAME,
static const char *fl_row_names[] = {FL_ROW_LIST(FL_ROW_NAME)};
#define FL_ROW_N ((int)(sizeof(fl_row_names) / sizeof(fl_row_names[0])))

static const fl_row_block_fn *fl_row_f32 = row_table_f32_base;
static const fl_row_block_fn *fl_row_f64 = row_table_f64_base;
static const char *fl_rows_isa = "baseline";

int fl_row_nlosses(void) { return FL_ROW_N; }

const char *fl_row_name(int id)
{
    return (id >= 0 && id < FL_ROW_N) ? fl_row_names[id] : NULL;
}

fl_row_block_fn fl_row_get(int id, int f64)
{
    if (id < 0 || id >= FL_ROW_N) return NULL;
    return f64 ? fl_row_f64[id] : fl_row_f32[id];
}

fl_idx fl_row_block_items(fl_idx C, fl_idx S)
{
    fl_idx b = C > 0 ? FL_ROW_BLOCK / C : FL_ROW_BLOCK;
    if (b < 1) b = 1;
    if (S > 1) b = (b + FL_ROW_TILE - 1) / FL_ROW_TILE * FL_ROW_TILE;
    return b;
}

const char *fl_rows_select_isa(int force_baseline)
{
    fl_row_f32 = row_table_f32_base;
    fl_row_f64 = row_table_f64_base;
    fl_rows_isa = "baseline";
    if (!force_baseline && fl_cpu_has_v3()) {
        fl_row_f32 = row_table_f32_v3;
        fl_row_f64 = row_table_f64_v3;
        fl_rows_isa = FL_V3_NAME;
    }
    return fl_rows_isa;
}

const char *fl_rows_isa_name(void) { return fl_rows_isa; }
