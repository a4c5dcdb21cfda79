/* fl_features.c -- stamps out the row-over-features kernels (row losses
 * and in-batch passes) for float32 and float64 on each instruction-set
 * path, and picks the path at run time.
 *
 * As fl_pointwise.c and fl_rows.c: the same source (fl_features_math.h,
 * which includes fl_features_batch.h) is compiled for baseline x86-64 and,
 * under a target pragma, for x86-64-v3 (AVX2 + FMA); fl_features_select_isa()
 * takes the v3 tables when the CPU has the features, unless the caller
 * forces the baseline (FASTLOSS_FORCE_BASELINE=1, read by the Python layer).
 */
#include <stdlib.h>

#include "fl_features.h"

#define FL_BODY "fl_features_math.h"

#include "fl_stamp_isas.h"

#define FL_FT_NAME(NAME) #NAME,
static const char *fl_ft_names[] = {FL_FT_LIST(FL_FT_NAME)};
static const char *fl_bt_names[] = {FL_BT_LIST(FL_FT_NAME)};
#define FL_FT_N ((int)(sizeof(fl_ft_names) / sizeof(fl_ft_names[0])))
#define FL_BT_N ((int)(sizeof(fl_bt_names) / sizeof(fl_bt_names[0])))

static const fl_ft_block_fn *fl_ft_f32 = ft_table_f32_base;
static const fl_ft_block_fn *fl_ft_f64 = ft_table_f64_base;
static const fl_bt_block_fn *fl_bt_f32 = bt_table_f32_base;
static const fl_bt_block_fn *fl_bt_f64 = bt_table_f64_base;
static const char *fl_features_isa = "baseline";

int fl_ft_nlosses(void) { return FL_FT_N; }

const char *fl_ft_name(int id) { return (id >= 0 && id < FL_FT_N) ? fl_ft_names[id] : NULL; }

fl_ft_block_fn fl_ft_get(int id, int f64)
{
    if (id < 0 || id >= FL_FT_N) return NULL;
    return f64 ? fl_ft_f64[id] : fl_ft_f32[id];
}

fl_idx fl_ft_block_rows(fl_idx D)
{
    fl_idx b = D > 0 ? FL_FT_BLOCK / D : FL_FT_BLOCK;
    return b < 1 ? 1 : b;
}

int fl_bt_npasses(void) { return FL_BT_N; }

const char *fl_bt_name(int id) { return (id >= 0 && id < FL_BT_N) ? fl_bt_names[id] : NULL; }

fl_bt_block_fn fl_bt_get(int id, int f64)
{
    if (id < 0 || id >= FL_BT_N) return NULL;
    return f64 ? fl_bt_f64[id] : fl_bt_f32[id];
}

const char *fl_features_select_isa(int force_baseline)
{
    fl_ft_f32 = ft_table_f32_base;
    fl_ft_f64 = ft_table_f64_base;
    fl_bt_f32 = bt_table_f32_base;
    fl_bt_f64 = bt_table_f64_base;
    fl_features_isa = "baseline";
    if (!force_baseline && fl_cpu_has_v3()) {
        fl_ft_f32 = ft_table_f32_v3;
        fl_ft_f64 = ft_table_f64_v3;
        fl_bt_f32 = bt_table_f32_v3;
        fl_bt_f64 = bt_table_f64_v3;
        fl_features_isa = FL_V3_NAME;
    }
    return fl_features_isa;
}

const char *fl_features_isa_name(void) { return fl_features_isa; }
