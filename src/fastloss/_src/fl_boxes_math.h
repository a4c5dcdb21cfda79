/* fl_boxes_math.h -- the box IoU losses (IoU, GIoU, DIoU, CIoU) with
 * torchvision.ops's formulas and eps placement; see fl_overlap.h.
 *
 * Included by fl_overlap_body.h once per (dtype, instruction set).  No
 * include guard, on purpose.
 *
 * A pair is b = (x1, y1, x2, y2) and g = (X1, Y1, X2, Y2).  With
 * I = iw ih where the boxes overlap (iw = min(x2, X2) - max(x1, X1) > 0 and
 * likewise ih; else 0), U = A + B - I, iou = I / (U + eps):
 *   IoU   1 - iou
 *   GIoU  1 - iou + (Ac - U) / (Ac + eps), Ac the enclosing box's area
 *   DIoU  1 - iou + rho2 / (c2 + eps), rho2 the squared distance of the
 *         centres, c2 the enclosing box's squared diagonal
 *   CIoU  DIoU + alpha v, v = 4/pi^2 (q(W, H) - q(w, h))^2, q = atan(w / h),
 *         alpha = v / (1 - iou + v + eps) a constant in the gradient (as
 *         torchvision computes it under no_grad).  torchvision's CIoU calls
 *         its DIoU with the default eps = 1e-7, whatever eps it is given;
 *         only alpha uses eps.  This is kept.
 * The derivatives of min and max split a tie in halves, as PyTorch's
 * autograd does (identical boxes are a common case).  Where torchvision
 * gives NaN, CIoU here is finite: q(w, 0) = +-pi/2 (as atan(+-inf)) with
 * derivatives (0, -1/w), and q(0, 0) = 0 with zero derivatives (a point
 * box; torchvision: NaN value and gradient).
 */

#if T_F32
/* atan(x) in float: Cephes' atanf (range reduction to |x| <= tan(pi/8),
 * an odd polynomial of degree 9), written with selects so that it
 * vectorizes; about 2 ulp. */
FL_INLINE float FN(bx_atan)(float x)
{
    const float ax = FABS(x);
    const int big = ax > 2.414213562373095f, mid = ax > 0.4142135623730950f;
    const float xb = -1.0f / ax, xm = (ax - 1.0f) / (ax + 1.0f);
    const float xr = big ? xb : (mid ? xm : ax);
    const float y0 = big ? 1.5707963267948966f : (mid ? 0.7853981633974483f : 0.0f);
    const float z = xr * xr;
    const float p = (((8.05374449538e-2f * z - 1.38776856032e-1f) * z + 1.99777106478e-1f) * z
                     - 3.33329491539e-1f) * z * xr + xr;
    const float r = y0 + p;
    return x < 0 ? -r : r;
}
#else
FL_INLINE double FN(bx_atan)(double x) { return atan(x); }
#endif

/* d min(a, b)/da: 1 if a < b, 1/2 at a tie, 0 else (and 1 - it for b) */
FL_INLINE T FN(bx_dmin)(T a, T b) { return a < b ? (T)1 : (a > b ? (T)0 : (T)0.5); }

#define BX_4PI2 0.40528473456935108578 /* 4 / pi^2 */

FL_INLINE T FN(bx_pair)(const T *restrict b, const T *restrict q, T *restrict gb, T *restrict gq, T eps, T gs,
                        const int KIND, const int GRAD)
{
    const T x1 = b[0], y1 = b[1], x2 = b[2], y2 = b[3];
    const T X1 = q[0], Y1 = q[1], X2 = q[2], Y2 = q[3];
    /* intersection */
    const T ix1 = x1 > X1 ? x1 : X1, iy1 = y1 > Y1 ? y1 : Y1;
    const T ix2 = x2 < X2 ? x2 : X2, iy2 = y2 < Y2 ? y2 : Y2;
    const int ov = (iy2 > iy1) & (ix2 > ix1);
    const T iw = ix2 - ix1, ih = iy2 - iy1;
    const T I = ov ? iw * ih : (T)0;
    const T w1 = x2 - x1, h1 = y2 - y1, w2 = X2 - X1, h2 = Y2 - Y1;
    const T U = w1 * h1 + w2 * h2 - I;
    const T ei = KIND == FL_BOX_CIOU ? (T)1e-7 : eps; /* torchvision's CIoU: DIoU's default eps */
    const T Ue = U + ei, rU = 1 / Ue;
    const T iou = I * rU;
    T loss = 1 - iou;
    /* dL/dI and dL/dU of the terms so far */
    T dI = -rU, dU = iou * rU;
    /* the enclosing box */
    const T cx1 = x1 < X1 ? x1 : X1, cy1 = y1 < Y1 ? y1 : Y1;
    const T cx2 = x2 > X2 ? x2 : X2, cy2 = y2 > Y2 ? y2 : Y2;
    const T cw = cx2 - cx1, ch = cy2 - cy1;
    T dcw = 0, dch = 0;                 /* dL/dcw, dL/dch */
    T drx = 0, dry = 0, dx = 0, dy = 0; /* centre distance terms */
    T dq1 = 0, dq2 = 0, qw1 = 0, qh1 = 0, qw2 = 0, qh2 = 0;
    if (KIND == FL_BOX_GIOU) {
        const T Ac = cw * ch, rA = 1 / (Ac + eps);
        loss += (Ac - U) * rA;
        const T dAc = (U + eps) * rA * rA;
        dU -= rA;
        dcw = dAc * ch;
        dch = dAc * cw;
    }
    if (KIND == FL_BOX_DIOU || KIND == FL_BOX_CIOU) {
        const T c2 = cw * cw + ch * ch + ei, rc = 1 / c2;
        dx = (x2 + x1) / 2 - (X1 + X2) / 2;
        dy = (y2 + y1) / 2 - (Y1 + Y2) / 2;
        const T rho2 = dx * dx + dy * dy;
        loss += rho2 * rc;
        const T dc2 = -rho2 * rc * rc;
        dcw = 2 * cw * dc2;
        dch = 2 * ch * dc2;
        drx = rc; /* dL/drho2 */
        dry = rc;
    }
    if (KIND == FL_BOX_CIOU) {
        /* q = atan(w / h); q(w, 0) = +-pi/2, q(0, 0) = 0 */
        const T r1 = w1 * w1 + h1 * h1, r2 = w2 * w2 + h2 * h2;
        const T a1 = FN(bx_atan)(w1 / h1), a2 = FN(bx_atan)(w2 / h2);
        const T q1 = (w1 == 0 && h1 == 0) ? (T)0 : a1, q2 = (w2 == 0 && h2 == 0) ? (T)0 : a2;
        const T dd = q2 - q1;
        const T v = (T)BX_4PI2 * dd * dd;
        const T al = v / (1 - iou + v + eps);
        loss += al * v;
        /* dL/dq1 = -al 8/pi^2 dd, dL/dq2 = +al 8/pi^2 dd */
        dq2 = al * (T)(2 * BX_4PI2) * dd;
        dq1 = -dq2;
        const T i1 = r1 > 0 ? 1 / r1 : (T)0, i2 = r2 > 0 ? 1 / r2 : (T)0;
        qw1 = h1 * i1; qh1 = -w1 * i1;
        qw2 = h2 * i2; qh2 = -w2 * i2;
    }
    if (GRAD) {
        /* I = iw ih (where they overlap) */
        const T dIw = ov ? (dI - dU) * ih : (T)0, dIh = ov ? (dI - dU) * iw : (T)0;
        /* areas: dL/dA = dU for both boxes (U = A + B - I, I handled above) */
        const T da = dU;
        /* iw = min(x2, X2) - max(x1, X1) */
        const T m2 = FN(bx_dmin)(x2, X2), m1 = FN(bx_dmin)(X1, x1); /* d max(x1, X1)/dx1 = [x1 > X1] */
        const T n2 = FN(bx_dmin)(y2, Y2), n1 = FN(bx_dmin)(Y1, y1);
        /* enclosing: cw = max(x2, X2) - min(x1, X1) */
        const T M2 = FN(bx_dmin)(X2, x2), M1 = FN(bx_dmin)(x1, X1);
        const T N2 = FN(bx_dmin)(Y2, y2), N1 = FN(bx_dmin)(y1, Y1);
        T gx1 = -dIw * m1 - da * h1 - dcw * M1 + drx * dx + dq1 * -qw1;
        T gx2 = dIw * m2 + da * h1 + dcw * M2 + drx * dx + dq1 * qw1;
        T gy1 = -dIh * n1 - da * w1 - dch * N1 + dry * dy + dq1 * -qh1;
        T gy2 = dIh * n2 + da * w1 + dch * N2 + dry * dy + dq1 * qh1;
        T gX1 = -dIw * (1 - m1) - da * h2 - dcw * (1 - M1) - drx * dx + dq2 * -qw2;
        T gX2 = dIw * (1 - m2) + da * h2 + dcw * (1 - M2) - drx * dx + dq2 * qw2;
        T gY1 = -dIh * (1 - n1) - da * w2 - dch * (1 - N1) - dry * dy + dq2 * -qh2;
        T gY2 = dIh * (1 - n2) + da * w2 + dch * (1 - N2) - dry * dy + dq2 * qh2;
        gb[0] = gs * gx1; gb[1] = gs * gy1; gb[2] = gs * gx2; gb[3] = gs * gy2;
        gq[0] = gs * gX1; gq[1] = gs * gY1; gq[2] = gs * gX2; gq[3] = gs * gY2;
    }
    return loss;
}

#define BX_CHUNK 256

/* Value-only calls compute the gradient too, into a chunk-sized sink:
 * the same inlined code as the gradient calls, so the value has the same
 * bits with and without the gradient (GCC contracts 1 - I / U into an FMA
 * only where I / U is not needed again). */
FL_INLINE double FN(box_block_)(const fl_box_args *a, fl_idx start, fl_idx n, const int KIND)
{
    const T *restrict b1 = (const T *)a->b1 + 4 * start, *restrict b2 = (const T *)a->b2 + 4 * start;
    T *restrict g1 = a->g1 ? (T *)a->g1 + 4 * start : NULL, *restrict g2 = a->g2 ? (T *)a->g2 + 4 * start : NULL;
    T *restrict l = a->l ? (T *)a->l + start : NULL;
    const T eps = (T)a->eps, gs = (T)a->gscale;
    T sink1[4 * BX_CHUNK], sink2[4 * BX_CHUNK], lsink[BX_CHUNK];
    double total = 0;
    for (fl_idx i0 = 0; i0 < n; i0 += BX_CHUNK) {
        const fl_idx m = i0 + BX_CHUNK < n ? BX_CHUNK : n - i0;
        const T *restrict c1 = b1 + 4 * i0, *restrict c2 = b2 + 4 * i0;
        T *restrict o1 = g1 ? g1 + 4 * i0 : sink1, *restrict o2 = g2 ? g2 + 4 * i0 : sink2;
        T *restrict lo = l ? l + i0 : lsink;
        T s = 0;
        OV_PRAGMA(omp simd reduction(+:s))
        for (fl_idx i = 0; i < m; i++) {
            const T v = FN(bx_pair)(c1 + 4 * i, c2 + 4 * i, o1 + 4 * i, o2 + 4 * i, eps, gs, KIND, 1);
            lo[i] = v;
            s += v;
        }
        total += (double)s;
    }
    return total;
}

static double FN(box_iou)(const fl_box_args *a, fl_idx s, fl_idx n) { return FN(box_block_)(a, s, n, FL_BOX_IOU); }
static double FN(box_giou)(const fl_box_args *a, fl_idx s, fl_idx n) { return FN(box_block_)(a, s, n, FL_BOX_GIOU); }
static double FN(box_diou)(const fl_box_args *a, fl_idx s, fl_idx n) { return FN(box_block_)(a, s, n, FL_BOX_DIOU); }
static double FN(box_ciou)(const fl_box_args *a, fl_idx s, fl_idx n) { return FN(box_block_)(a, s, n, FL_BOX_CIOU); }

#undef BX_4PI2
#undef BX_CHUNK
