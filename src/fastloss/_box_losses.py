"""Bounding-box regression losses: IoU, generalized IoU, distance IoU and
complete IoU, with torchvision.ops's semantics (``generalized_box_iou_loss``,
``distance_box_iou_loss``, ``complete_box_iou_loss``; the plain IoU loss
is ``1 - IoU`` with the same eps placement).

Boxes are ``(x1, y1, x2, y2)``, paired elementwise: ``boxes1[i]`` with
``boxes2[i]``.  Each call is one fused pass over the pairs giving the
losses and, with ``return_grad=True``, the gradients for both box arrays:
``(value, g_boxes1, g_boxes2)``.  The kernels are the box part of the
set-overlap driver (``src/fastloss/_src/fl_boxes_math.h``).
"""
from __future__ import annotations

from ._overlap_api import _OverlapLoss, run_boxes
from ._validate import REDUCTIONS, check_reduction, nonneg

__all__ = [
    "box_iou_loss", "generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss",
    "BoxIoULoss", "GeneralizedBoxIoULoss", "DistanceBoxIoULoss", "CompleteBoxIoULoss",
]

_COMMON = """Parameters
    ----------
    boxes1, boxes2 : array_like of shape (N, 4) or (4,) (or (..., 4))
        Boxes as (x1, y1, x2, y2); boxes1 fixes the dtype (float32 stays
        float32).
    reduction : {"none", "mean", "sum"}
        "none" (torchvision's default) returns the loss of each pair;
        "mean" of no pairs is 0, as torchvision.
    eps : float >= 0
        Keeps the divisions finite.
    return_grad : bool
        Also return the gradients with respect to boxes1 and boxes2.
    out : pair of ndarrays, optional
        Buffers for the two gradients (the boxes' shape and dtype).
    n_threads : int, optional
        Threads for this call (default :func:`fastloss.get_num_threads`).
    check : bool
        Run :func:`fastloss.diagnose`'s checks on the boxes first and warn each
        finding as a :class:`fastloss.LossWarning` (one summary pass over
        each; the default False costs one test).

    Returns
    -------
    value : float, or ndarray of shape (N,) (or ()) for reduction="none"
    g_boxes1, g_boxes2 : ndarrays of the boxes' shape, with return_grad=True
        The gradients of the returned value (of the sum for "none").

    Notes
    -----
    As torchvision: no check that x1 <= x2 (inverted boxes give whatever
    the formula gives); boxes that only touch have intersection 0 and a
    zero intersection gradient; the derivative of a min or max at a tie is
    split in halves, as PyTorch's autograd does.  Sums are float64, block
    by block in a fixed order: bit-identical for any thread count."""


def _doc(fn):
    fn.__doc__ = fn.__doc__.replace("%(common)s", _COMMON)
    fn._grad_args = ("boxes1", "boxes2")
    fn._class_axis = -1  # reduction="none": one value per pair, the gradient over its 4 coordinates
    return fn


@_doc
def box_iou_loss(boxes1, boxes2, reduction="none", eps=1e-7, *, return_grad=False, out=None, n_threads=None,
                 check=False):
    """IoU loss ``1 - I / (U + eps)`` of paired boxes.

    ``I`` is the intersection's area (0 unless the boxes overlap), ``U``
    the union's.  torchvision's intersection and eps placement (its
    ``_loss_inter_union``); torchvision has no plain IoU loss function.

    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> b1 = np.array([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]])
    >>> b2 = np.array([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 1.0, 1.0]])
    >>> fl.box_iou_loss(b1, b2).round(6)
    array([0.857143, 0.      ])
    >>> value, g1, g2 = fl.box_iou_loss(b1, b2, reduction="sum", return_grad=True)
    >>> g1.shape, g2.shape
    ((2, 4), (2, 4))
    """
    return run_boxes("box_iou_loss", "iou", boxes1, boxes2, reduction, eps, return_grad, out, n_threads, check=check)


@_doc
def generalized_box_iou_loss(boxes1, boxes2, reduction="none", eps=1e-7, *, return_grad=False, out=None,
                             n_threads=None, check=False):
    """Generalized IoU loss (Rezatofighi et al., 2019), as
    ``torchvision.ops.generalized_box_iou_loss``.

    ``1 - I / (U + eps) + (A_c - U) / (A_c + eps)`` with ``A_c`` the area of
    the smallest box enclosing both.

    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> b1 = np.array([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]])
    >>> b2 = np.array([[1.0, 1.0, 3.0, 3.0], [2.0, 2.0, 3.0, 3.0]])
    >>> fl.generalized_box_iou_loss(b1, b2).round(6)
    array([1.079365, 1.777778])
    """
    return run_boxes("generalized_box_iou_loss", "giou", boxes1, boxes2, reduction, eps, return_grad, out,
                     n_threads, check=check)


@_doc
def distance_box_iou_loss(boxes1, boxes2, reduction="none", eps=1e-7, *, return_grad=False, out=None,
                          n_threads=None, check=False):
    """Distance IoU loss (Zheng et al., 2020), as
    ``torchvision.ops.distance_box_iou_loss``.

    ``1 - I / (U + eps) + rho^2 / (c^2 + eps)`` with ``rho`` the distance
    between the boxes' centres and ``c`` the diagonal of the smallest box
    enclosing both.

    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> b1 = np.array([[0.0, 0.0, 2.0, 2.0]]); b2 = np.array([[1.0, 1.0, 3.0, 3.0]])
    >>> fl.distance_box_iou_loss(b1, b2).round(6)
    array([0.968254])
    """
    return run_boxes("distance_box_iou_loss", "diou", boxes1, boxes2, reduction, eps, return_grad, out,
                     n_threads, check=check)


@_doc
def complete_box_iou_loss(boxes1, boxes2, reduction="none", eps=1e-7, *, return_grad=False, out=None,
                          n_threads=None, check=False):
    """Complete IoU loss (Zheng et al., 2020), as
    ``torchvision.ops.complete_box_iou_loss``.

    The distance IoU loss plus ``alpha v`` with ``v = 4 / pi^2 (atan(w2 /
    h2) - atan(w1 / h1))^2`` (the aspect-ratio term) and ``alpha = v / (1 -
    IoU + v + eps)``, which is a constant in the gradient (torchvision
    computes it under ``no_grad``).  As torchvision, the IoU and distance
    terms use eps = 1e-7 whatever ``eps`` is (its CIoU calls its DIoU with
    the default); ``eps`` enters alpha only.

    Difference from torchvision: a box of zero height has ``atan(w / 0) =
    +-pi/2`` with the finite derivatives ``(0, -1/w)`` (torchvision: NaN
    gradient), and a point box (zero width and height) has aspect angle 0
    with zero derivatives (torchvision: NaN loss and gradient).

    %(common)s

    Examples
    --------
    >>> import numpy as np, fastloss as fl
    >>> b1 = np.array([[0.0, 0.0, 2.0, 2.0]]); b2 = np.array([[1.0, 1.0, 4.0, 3.0]])
    >>> fl.complete_box_iou_loss(b1, b2).round(6)
    array([1.019165])
    """
    return run_boxes("complete_box_iou_loss", "ciou", boxes1, boxes2, reduction, eps, return_grad, out,
                     n_threads, check=check)


class _BoxLoss(_OverlapLoss):
    """Base of the box-loss objects: ``loss(boxes1, boxes2)`` gives the
    value, ``loss.value_and_grad(boxes1, boxes2, out=None)`` the value and
    both gradients."""

    _grad_args = ("boxes1", "boxes2")
    _class_axis = -1
    _kind = ""
    _op = ""

    def __init__(self, reduction: str = "none", eps: float = 1e-7, *, n_threads=None):
        super().__init__(check_reduction(reduction, type(self).__name__, REDUCTIONS), n_threads)
        self.eps = nonneg(eps, "eps", type(self).__name__)

    def __call__(self, boxes1, boxes2, *, check=False):
        """The loss value: a float, or an array of one loss per pair for reduction="none".
        ``check=True`` runs :func:`fastloss.diagnose`'s checks first."""
        return run_boxes(self._op, self._kind, boxes1, boxes2, self.reduction, self.eps, False, None,
                         self.n_threads, check=check)

    def value_and_grad(self, boxes1, boxes2, out=None, loss_out=None, *, check=False):
        """``(value, g_boxes1, g_boxes2)`` in one pass; ``out`` is an optional
        pair of gradient buffers, ``loss_out`` one for the per-pair losses
        (reduction="none")."""
        return run_boxes(self._op, self._kind, boxes1, boxes2, self.reduction, self.eps, True, out,
                         self.n_threads, loss_out=loss_out, check=check)

    def _repr_args(self):
        return [("reduction", self.reduction), ("eps", self.eps)]


def _box_class(name, fn, kind):
    doc = (f"The object form of :func:`{fn.__name__}`: ``{name}(reduction=\"none\", eps=1e-7, *, "
           f"n_threads=None)``.\n\n    Examples\n    --------\n    >>> import numpy as np, fastloss as fl\n"
           f"    >>> b1 = np.array([[0.0, 0.0, 2.0, 2.0]]); b2 = np.array([[1.0, 1.0, 3.0, 3.0]])\n"
           f"    >>> value, g1, g2 = fl.{name}(reduction=\"mean\").value_and_grad(b1, b2)\n"
           f"    >>> g1.shape\n    (1, 4)\n")
    return type(name, (_BoxLoss,), {"_kind": kind, "_op": fn.__name__, "__doc__": doc, "__module__": __name__})


BoxIoULoss = _box_class("BoxIoULoss", box_iou_loss, "iou")
GeneralizedBoxIoULoss = _box_class("GeneralizedBoxIoULoss", generalized_box_iou_loss, "giou")
DistanceBoxIoULoss = _box_class("DistanceBoxIoULoss", distance_box_iou_loss, "diou")
CompleteBoxIoULoss = _box_class("CompleteBoxIoULoss", complete_box_iou_loss, "ciou")


# ------------------------------------------------------------------ examples
# Valid calls of every loss, from which the fuzz harness derives its hostile
# variants (fastloss._examples; docs/reliability.md).

def _declare_examples():
    import numpy as np

    from . import _examples as E

    def gen(rng, dtype, size):
        shape = (size, 4) if rng.random() < 0.85 else (4,)

        def boxes():
            xy = rng.uniform(-5, 5, shape[:-1] + (2,))
            return np.concatenate([xy, xy + rng.uniform(0.1, 4, shape[:-1] + (2,))], -1).astype(dtype)

        return E.Example({"boxes1": boxes(), "boxes2": boxes(),
                          "reduction": ("none", "mean", "sum")[int(rng.integers(0, 3))]})

    for fn, cls in ((box_iou_loss, BoxIoULoss), (generalized_box_iou_loss, GeneralizedBoxIoULoss),
                    (distance_box_iou_loss, DistanceBoxIoULoss), (complete_box_iou_loss, CompleteBoxIoULoss)):
        E.declare(gen, fn, cls)


_declare_examples()
