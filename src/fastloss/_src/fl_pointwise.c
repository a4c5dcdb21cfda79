/* fl_pointwise.c -- stamps out the pointwise kernels for float32 and
 * float64 on each instruction-set path, and picks the path at run time.
 *
 * The same source (fl_pointwise_math.h) is compiled for baseline x86-64
 * and, under a target pragma, for x86-64-v3 (AVX2 + FMA; 8 float lanes and
 * libmvec's AVX2 expf/logf).  fl_select_isa() takes the v3 tables when the
 * CPU has the features, unless the caller forces the baseline
 * (FASTLOSS_FORCE_BASELINE=1, read by the Python layer).  Other compilers
 * and architectures get the baseline tables only.
 */
#include "fl_pointwise.h"
#if FL_HAVE_X86_V3
#include <immintrin.h> /* the hand-vectorized loops (fl_pointwise_v3.h) */
#endif

#define FL_BODY "fl_pointwise_math.h"

#include "fl_stamp_isas.h"

#define FL_PW_NAME(NAME, HAS_E, HAS_G2, HAS_GY) #NAME,
#define FL_PW_NAME_RL(NAME) #NAME,
static const char *fl_pw_names[] = {FL_PW_LIST(FL_PW_NAME) FL_PW_LIST_RL(FL_PW_NAME_RL)};
#define FL_PW_N ((int)(sizeof(fl_pw_names) / sizeof(fl_pw_names[0])))
#define FL_PW_GY(NAME, HAS_E, HAS_G2, HAS_GY) HAS_GY,
#define FL_PW_GY_RL(NAME) 0,
static const int fl_pw_gy[] = {FL_PW_LIST(FL_PW_GY) FL_PW_LIST_RL(FL_PW_GY_RL)};

static const fl_pw_block_fn *fl_pw_f32 = pw_table_f32_base;
static const fl_pw_block_fn *fl_pw_f64 = pw_table_f64_base;
static const char *fl_isa = "baseline";

int fl_pw_nlosses(void) { return FL_PW_N; }

const char *fl_pw_name(int id)
{
    return (id >= 0 && id < FL_PW_N) ? fl_pw_names[id] : NULL;
}

int fl_pw_has_target_grad(int id)
{
    return (id >= 0 && id < FL_PW_N) ? fl_pw_gy[id] : 0;
}

fl_pw_block_fn fl_pw_get(int id, int f64)
{
    if (id < 0 || id >= FL_PW_N) return NULL;
    return f64 ? fl_pw_f64[id] : fl_pw_f32[id];
}

int fl_have_v3_build(void) { return FL_HAVE_X86_V3; }

const char *fl_select_isa(int force_baseline)
{
    fl_pw_f32 = pw_table_f32_base;
    fl_pw_f64 = pw_table_f64_base;
    fl_isa = "baseline";
    if (!force_baseline && fl_cpu_has_v3()) {
        fl_pw_f32 = pw_table_f32_v3;
        fl_pw_f64 = pw_table_f64_v3;
        fl_isa = FL_V3_NAME;
    }
    return fl_isa;
}

const char *fl_isa_name(void) { return fl_isa; }

void fl_pw_vmath(int which, int f64, const void *x, void *y, fl_idx n)
{
    const int v3 = fl_pw_f32 != pw_table_f32_base;
#if FL_HAVE_X86_V3
    if (v3) {
        if (f64) vmath_f64_v3(which, (const double *)x, (double *)y, n);
        else vmath_f32_v3(which, (const float *)x, (float *)y, n);
        return;
    }
#endif
    (void)v3;
    if (f64) vmath_f64_base(which, (const double *)x, (double *)y, n);
    else vmath_f32_base(which, (const float *)x, (float *)y, n);
}
