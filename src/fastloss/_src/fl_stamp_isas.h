/* fl_stamp_isas.h -- stamp out FL_BODY for every instruction-set path.
 *
 * A kernel file (fl_pointwise.c, fl_rows.c, ...) defines FL_BODY and
 * includes this file once: the body is compiled for baseline x86-64
 * (suffix base) and, where the compiler can target it, for x86-64-v3
 * (AVX2 + FMA, suffix v3) under a target pragma.  The file then picks a
 * path at run time with fl_cpu_has_v3() (fl_common.h).  No include guard,
 * on purpose: each kernel file stamps its own body.
 */
#if FL_HAVE_X86_V3
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v3")
#define ISA v3
#include "fl_stamp.h"
#undef ISA
#pragma GCC pop_options
#endif

#define ISA base
#include "fl_stamp.h"
#undef ISA
