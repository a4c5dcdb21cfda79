/* fl_overlap_body.h -- the per-dtype body of the set-overlap kernels,
 * stamped by fl_stamp.h (see fl_overlap.c): the three families' math and
 * the table that hands their entry points to the driver.  No include
 * guard, on purpose.
 */
#ifndef OV_PRAGMA
#if defined(__GNUC__) || defined(__clang__)
#define OV_PRAGMA(x) _Pragma(#x)
#else
#define OV_PRAGMA(x)
#endif
#endif

#include "fl_vmath.h"
#include "fl_overlap_seg_math.h"
#include "fl_overlap_lovasz_math.h"
#include "fl_boxes_math.h"

static const fl_ov_table FN(ov_table) = {
    FN(seg_sums), FN(seg_grad),
    FN(lovasz_check), FN(lovasz_prob), FN(lovasz_hinge), FN(lovasz_softmax), FN(lovasz_back),
    {FN(box_iou), FN(box_giou), FN(box_diou), FN(box_ciou)},
};
