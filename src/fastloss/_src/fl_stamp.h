/* fl_stamp.h -- include the kernel body FL_BODY once per dtype.
 *
 * A kernel file defines FL_BODY (the header with its per-dtype code) and
 * ISA (the instruction-set suffix), then includes this file; the body sees
 *   T        float or double (T_F32: 1 for float, for #if)
 *   TI       the signed integer of T's width (int32_t, int64_t)
 *   TS       f32 or f64, the dtype suffix
 *   EXP LOG FABS  T's math functions
 *   FN(n)    n suffixed with TS and ISA
 * Including it under a target pragma stamps out the same kernels for that
 * instruction set (see fl_pointwise.c).  No include guard, on purpose.
 */
#ifndef FN
#define FL_CAT3_(a, b, c) a##_##b##_##c
#define FL_CAT3(a, b, c) FL_CAT3_(a, b, c)
#define FN(name) FL_CAT3(name, TS, ISA)
#endif

/* float32: float math, so that vector expf/logf apply */
#define T float
#define T_F32 1
#define TI int32_t
#define TS f32
#define EXP expf
#define LOG logf
#define FABS fabsf
#include FL_BODY
#undef T
#undef T_F32
#undef TI
#undef TS
#undef EXP
#undef LOG
#undef FABS

#define T double
#define T_F32 0
#define TI int64_t
#define TS f64
#define EXP exp
#define LOG log
#define FABS fabs
#include FL_BODY
#undef T
#undef T_F32
#undef TI
#undef TS
#undef EXP
#undef LOG
#undef FABS
