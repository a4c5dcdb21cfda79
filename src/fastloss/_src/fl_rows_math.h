/* fl_rows_math.h -- the row-over-classes kernels: one set of row and tile
 * passes that every softmax-family loss shares, and the few losses that
 * need their own loop.
 *
 * Included by fl_rows.c once per (dtype, instruction set), with
 *   T        float or double: the class loops run in T, so float32 data is
 *            computed in float lanes; sums over classes are taken in T lanes
 *            over chunks of FL_ROW_CHUNK classes and carried in double;
 *            per-row scalars (log-sum-exp, loss, coefficients) are double
 *   T_F32    1 when T is float (selects the inline exp, see FN(exp_np))
 *   TI       an integer as wide as T (counters in T lanes)
 *   FN(n)    the name n suffixed with the dtype and the instruction set
 *   EXP LOG  the math functions for T
 * No include guard, on purpose.
 *
 * The softmax family.  With p = softmax(z) and a row of non-negative
 * target weights q (the loss's whole dependence on the target), every
 * softmax loss here is
 *     l = sum_c q_c (lse(z) - z_c)  [+ pe sum_c q_c (1 - p_c)]   (Poly-1)
 *     q_c = w_c ((1 - eps) t_c + eps / C)
 * with t the one-hot label or the soft target, w the class weights and
 * eps the label smoothing (for integer labels this is exactly PyTorch's
 * (1 - eps) nll + eps / C * sum_c w_c (-log p_c), pytorch#73205).  With
 * M = sum_c q_c and qp = sum_c q_c p_c:
 *     g_c = (M + pe qp) p_c - q_c (1 + pe p_c)
 *     h_c = M p_c (1 - p_c) + pe p_c (qp - q_c) (1 - 2 p_c)   (diagonal)
 *     (H v)_c = M p_c (v_c - p.v)                             (pe = 0)
 *
 * A row costs a max pass, a pass that parks e_c = exp(z_c - m) in the
 * gradient buffer (the output anyway: nothing is allocated that grows with
 * C) and one that sums them (a value-only call does both in one pass, with
 * the same sums), and a write pass that turns e into g (and h); extra sums
 * (smoothing, Poly-1, H v) are extra passes over a row that is in cache,
 * taken only when the option is on.  For integer labels the write pass is
 * label-free and the target class is rewritten from double scalars.  The
 * common case (integer labels, no smoothing / Poly-1 / H v, S = 1) runs in
 * groups of rows whose scalar math is vectorized across the group
 * (rows_ce_plain; with C <= RW_SMALL_C the group's exponentials are one
 * flat loop); spatial inputs run in tiles of positions (ce_tile).
 *
 * Digits.  The exp-sum is split at the max: rest = sum of e_c < 1 and k =
 * the number of e_c = 1, so log s = log1p(k - 1 + rest) and 1 - p at the
 * max are exact even when p -> 1 (a confident row's tiny loss and its
 * Hessian p (1 - p) keep float32 digits that 1 + rest would round away).
 * Terms whose target weight is 0 are skipped, so a -inf logit of a class
 * with q_c = 0 gives a finite loss (the limit), never 0 * inf.  NaN in a
 * row propagates to that row's loss and gradient.
 *
 * The code is split by family; this file includes, in order:
 *   fl_rows_passes.h   the shared sums, label helpers, row and tile passes
 *   fl_rows_ce.h       cross-entropy and Poly-1 (labels, soft targets, small C)
 *   fl_rows_focal.h    the softmax focal loss
 *   fl_rows_margin.h   NLL, the margin losses and the labels pass
 *   fl_rows_rl.h       REINFORCE and PPO from logits and actions
 * and then builds the table of block functions.
 */

#include "fl_rows_passes.h"
#include "fl_rows_ce.h"
#include "fl_rows_focal.h"
#include "fl_rows_margin.h"
#include "fl_rows_rl.h"


#define FL_ROW_ENTRY(NAME) FN(block_##NAME),
static const fl_row_block_fn FN(row_table)[] = {FL_ROW_LIST(FL_ROW_ENTRY)};

#undef FL_ROW_ENTRY
#undef RW_LABEL_ROWS
#undef RW_LABEL_ROWS_P
#undef RW_TILES
#undef RW_SMW
#undef RW_SMW_WH
#undef RW_SMW_PO
#undef RW_SMW_WW
#undef TL_SMW
#undef TL_SMW_WH
#undef TL_SMW_PO
#undef TL_SMW_WW
#undef RW_LOG1P
#undef RW_SUM
#undef RW_SUM_CORE
#undef RW_OPAQUE
#undef RW_SUM2
#undef RW_TREE
#undef RW_VL
#undef TL_SUM
#undef RW_MIN
#undef RW_PRAGMA
#undef FL_ROW_GROUP
#undef RW_T8
#undef RW_D4
#undef EXPN
