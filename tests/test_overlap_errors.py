"""Every error message of the overlap losses: bad modes, shapes, targets,
classes, weights, parameters, boxes and buffers."""
import numpy as np
import pytest

import fastloss as fl

X = np.zeros((2, 3, 4, 4))
Y = np.zeros((2, 4, 4), np.int64)
M = np.zeros((2, 3, 4, 4))
B = np.array([[0.0, 0.0, 1.0, 1.0]])


@pytest.mark.parametrize("call,exc,msg", [
    (lambda: fl.dice_loss(X, Y, "multi"), ValueError,
     r"dice_loss: mode must be one of 'binary', 'multiclass', 'multilabel', got 'multi'"),
    (lambda: fl.bce_dice_loss(X, M, mode="multiclass"), ValueError,
     r"bce_dice_loss: mode must be one of 'binary', 'multilabel', got 'multiclass'"),
    (lambda: fl.dice_loss(X, M, "multiclass"), ValueError,
     r"dice_loss: mode='multiclass' expects target of shape \(2, 4, 4\) \(class labels\) for input of shape "
     r"\(2, 3, 4, 4\), got target of shape \(2, 3, 4, 4\)"),
    (lambda: fl.dice_loss(X, Y.astype(float), "multiclass"), TypeError,
     r"dice_loss: mode='multiclass' needs integer class labels of shape \(2, 4, 4\) as target, got dtype float64"),
    (lambda: fl.dice_loss(X, Y, "multilabel"), ValueError,
     r"dice_loss: mode='multilabel' expects a target of shape \(2, 3, 4, 4\) \(the input's\), got target of "
     r"shape \(2, 4, 4\)"),
    (lambda: fl.dice_loss(X[:, :1], M[:, :2]), ValueError,
     r"dice_loss: mode='binary' expects a target of shape \(2, 1, 4, 4\) or \(2, 4, 4\)"),
    (lambda: fl.dice_loss(np.zeros(3), np.zeros(3), "multiclass"), ValueError,
     r"dice_loss: mode='multiclass' needs input of shape \(N, C, ...\) \(classes on axis 1\), got shape \(3,\)"),
    (lambda: fl.dice_loss(np.zeros(()), np.zeros(())), ValueError,
     r"dice_loss: mode='binary' needs input of shape \(N, ...\) \(a batch\), got a 0-d array"),
    (lambda: fl.dice_loss(np.zeros((2, 0, 3)), np.zeros((2, 0, 3)), "multilabel"), ValueError,
     r"dice_loss: input must have at least one class, got shape \(2, 0, 3\)"),
    (lambda: fl.dice_loss(X, np.full((2, 4, 4), 3), "multiclass"), ValueError,
     r"dice_loss: Target 3 is out of bounds \(target\[0, 0, 0\] = 3, n_classes = 3\)"),
    (lambda: fl.ce_dice_loss(X, np.where(np.arange(32).reshape(2, 4, 4) == 9, -2, 0)), ValueError,
     r"ce_dice_loss: Target -2 is out of bounds \(target\[0, 2, 1\] = -2, n_classes = 3\)"),
    (lambda: fl.dice_loss(X, np.where(np.arange(96).reshape(X.shape) == 50, 1.5, 0.0), "multilabel"), ValueError,
     r"dice_loss: target must be in \[0, 1\] \(a mask or probabilities\) or equal ignore_index, "
     r"got target\[1, 0, 0, 2\] = 1.5"),
    (lambda: fl.bce_dice_loss(X[:, 0], np.full((2, 4, 4), -0.5)), ValueError,
     r"bce_dice_loss: target must be in \[0, 1\]"),
    (lambda: fl.dice_loss(X, M, "multilabel", classes=[0, 3]), ValueError,
     r"dice_loss: classes must be in \[0, 3\) \(n_classes = 3\), got 3"),
    (lambda: fl.dice_loss(X, M, "multilabel", classes=[]), ValueError,
     r"dice_loss: classes must name at least one class, got an empty list"),
    (lambda: fl.dice_loss(X, M, "multilabel", classes="all"), TypeError,
     r"dice_loss: classes must be a sequence of class indices, got 'all'"),
    (lambda: fl.dice_loss(X[:, 0], M[:, 0], classes=[0]), ValueError,
     r"dice_loss: classes is not supported with mode='binary' \(one class\)"),
    (lambda: fl.dice_loss(X[:, 0], M[:, 0], weight=[1.0]), ValueError,
     r"dice_loss: weight \(per-class weights\) is not supported with mode='binary' \(one class\)"),
    (lambda: fl.dice_loss(X, Y, "multiclass", weight=[1.0, 2.0]), ValueError,
     r"dice_loss: weight must be a 1-D array of n_classes = 3 elements, got shape \(2,\)"),
    (lambda: fl.dice_loss(X, Y, "multiclass", weight=[1.0, -2.0, 1.0]), ValueError,
     r"dice_loss: weight must be >= 0, got weight\[1\] = -2.0"),
    (lambda: fl.dice_loss(X, Y, "multiclass", weight=["a", "b", "c"]), TypeError,
     r"dice_loss: weight must be a real array of per-class weights, got dtype <U1"),
    (lambda: fl.tversky_loss(X, M, "multilabel", alpha=-0.1), ValueError,
     r"tversky_loss: alpha must be >= 0, got -0.1"),
    (lambda: fl.tversky_loss(X, M, "multilabel", beta=-1), ValueError, r"tversky_loss: beta must be >= 0, got -1"),
    (lambda: fl.tversky_loss(X, M, "multilabel", gamma=0.0), ValueError, r"tversky_loss: gamma must be > 0, got 0.0"),
    (lambda: fl.dice_loss(X, M, "multilabel", smooth=-1.0), ValueError, r"dice_loss: smooth must be >= 0, got -1.0"),
    (lambda: fl.dice_loss(X, M, "multilabel", eps=0.0), ValueError, r"dice_loss: eps must be > 0, got 0.0"),
    (lambda: fl.dice_loss(X, M, "multilabel", per_image=1), TypeError,
     r"dice_loss: per_image must be True or False, got 1"),
    (lambda: fl.dice_loss(X, M, "multilabel", from_logits="yes"), TypeError,
     r"dice_loss: from_logits must be True or False, got 'yes'"),
    (lambda: fl.dice_loss(X, M, "multilabel", ignore_index=1.5), TypeError,
     r"dice_loss: ignore_index must be an integer or None, got 1.5"),
    (lambda: fl.dice_loss(X, M, "multilabel", ignore_index=2 ** 64), ValueError,
     r"dice_loss: ignore_index must fit in int64, got 18446744073709551616"),
    (lambda: fl.dice_loss(X, M, "multilabel", reduction="avg"), ValueError,
     r"dice_loss: reduction must be one of 'mean', 'sum', 'none', got 'avg'"),
    (lambda: fl.dice_loss(X, M, "multilabel", out=np.empty_like(X)), ValueError,
     r"dice_loss: out= is the gradient's buffer; pass return_grad=True with it"),
    (lambda: fl.dice_loss(X, M, "multilabel", return_grad=True, out=np.empty((2, 3))), ValueError,
     r"dice_loss: out must have shape \(2, 3, 4, 4\) \(the input's\), got \(2, 3\)"),
    (lambda: fl.dice_loss(X, M, "multilabel", return_grad=True, out=X), ValueError,
     r"dice_loss: out must not share memory with the inputs or the other outputs"),
    (lambda: fl.dice_loss(X, M.astype(object), "multilabel"), TypeError,
     r"dice_loss: target must be a real array \(a mask or probabilities\), got dtype object"),
    (lambda: fl.bce_dice_loss(X[:, 0], M[:, 0], bce_weight=-1), ValueError,
     r"bce_dice_loss: bce_weight must be >= 0, got -1"),
    (lambda: fl.ce_dice_loss(X, Y, dice_weight=-2.0), ValueError, r"ce_dice_loss: dice_weight must be >= 0, got -2.0"),
    (lambda: fl.dice_loss(X, M, "multilabel", n_threads=0), ValueError,
     r"dice_loss: n_threads must be a positive integer or None, got 0"),
    # Lovasz
    (lambda: fl.lovasz_hinge_loss(X[:, 0], np.full((2, 4, 4), 0.5)), ValueError,
     r"lovasz_hinge_loss: target must hold 0 and 1 \(a binary mask\) or ignore_index, got target\[0, 0, 0\] = 0.5"),
    (lambda: fl.lovasz_hinge_loss(X[:, 0], M[:, 0], weight=[1.0]), ValueError,
     r"lovasz_hinge_loss: weight \(per-class weights\) is not supported by the binary Lovasz hinge \(one class\)"),
    (lambda: fl.lovasz_softmax_loss(X, Y, weight=[1.0, 2.0]), ValueError,
     r"lovasz_softmax_loss: weight must be a 1-D array of n_classes = 3 elements, got shape \(2,\)"),
    (lambda: fl.dice_loss(X, np.full((2, 4, 4), 2 ** 63 + 5, np.uint64), "multiclass"), ValueError,
     r"dice_loss: Target 9223372036854775813 is out of bounds \(target\[0, 0, 0\] = 9223372036854775813"),
    (lambda: fl.lovasz_softmax_loss(X, np.full((2, 4, 4), 5)), ValueError,
     r"lovasz_softmax_loss: Target 5 is out of bounds \(target\[0, 0, 0\] = 5, n_classes = 3\)"),
    (lambda: fl.lovasz_softmax_loss(X, np.full((2, 4, 4), 5), ignore_index=4), ValueError,
     r"lovasz_softmax_loss: Target 5 is out of bounds"),
    (lambda: fl.lovasz_softmax_loss(X, Y, classes="some"), ValueError,
     r"lovasz_softmax_loss: classes must be 'present', 'all' or a list of class indices, got 'some'"),
    (lambda: fl.lovasz_softmax_loss(X, Y, classes=[7]), ValueError,
     r"lovasz_softmax_loss: classes must be in \[0, 3\) \(n_classes = 3\), got 7"),
    (lambda: fl.lovasz_softmax_loss(X, M), ValueError,
     r"lovasz_softmax_loss: mode='multiclass' expects target of shape \(2, 4, 4\)"),
    (lambda: fl.lovasz_hinge_loss(X, Y), ValueError,
     r"lovasz_hinge_loss: mode='binary' expects a target of shape \(2, 3, 4, 4\)"),
    # boxes
    (lambda: fl.box_iou_loss(np.zeros((3, 5)), np.zeros((3, 5))), ValueError,
     r"box_iou_loss: boxes1 must have shape \(N, 4\) or \(4,\) as \(x1, y1, x2, y2\), got \(3, 5\)"),
    (lambda: fl.generalized_box_iou_loss(B, np.zeros((1, 3))), ValueError,
     r"generalized_box_iou_loss: boxes2 must have shape \(N, 4\) or \(4,\) as \(x1, y1, x2, y2\), got \(1, 3\)"),
    (lambda: fl.distance_box_iou_loss(B, np.zeros((2, 4))), ValueError,
     r"distance_box_iou_loss: boxes1 and boxes2 must have the same shape \(boxes are paired elementwise\), "
     r"got boxes1: \(1, 4\) and boxes2: \(2, 4\)"),
    (lambda: fl.complete_box_iou_loss(B, B, eps=-1.0), ValueError,
     r"complete_box_iou_loss: eps must be >= 0, got -1.0"),
    (lambda: fl.complete_box_iou_loss(B, B, "avg"), ValueError,
     r"complete_box_iou_loss: reduction must be one of 'mean', 'sum', 'none', got 'avg'"),
    (lambda: fl.box_iou_loss(B, B, out=(np.empty((1, 4)), np.empty((1, 4)))), ValueError,
     r"box_iou_loss: out= is the gradients' buffers; pass return_grad=True with it"),
    (lambda: fl.box_iou_loss(B, B, return_grad=True, out=np.empty((1, 4))), ValueError,
     r"box_iou_loss: out must be a pair \(g_boxes1_out, g_boxes2_out\), got ndarray"),
    (lambda: fl.box_iou_loss(B, B, return_grad=True, out=(np.empty((1, 4)), np.empty((1, 4), np.float32))),
     ValueError, r"box_iou_loss: out\[1\] must have dtype float64"),
    (lambda: fl.box_iou_loss(B, B.copy(), return_grad=True, out=(B, np.empty((1, 4)))), ValueError,
     r"box_iou_loss: out\[0\] must not share memory"),
    (lambda: fl.box_iou_loss(np.array(["a"] * 4), B[0]), TypeError,
     r"box_iou_loss: boxes1 must be a real \(float, integer or bool\) array"),
    (lambda: fl.BoxIoULoss(reduction="x"), ValueError, r"BoxIoULoss: reduction must be one of"),
    (lambda: fl.BoxIoULoss(eps=-1.0), ValueError, r"BoxIoULoss: eps must be >= 0, got -1.0"),
    (lambda: fl.DiceLoss("multiclass", reduction="x"), ValueError, r"DiceLoss: reduction must be one of"),
    (lambda: fl.DiceLoss("multiclass", bogus=1), TypeError, r"DiceLoss: got an unexpected keyword argument 'bogus'"),
    (lambda: fl.LovaszHingeLoss(False, None, None, "mean", 3), TypeError, r"LovaszHingeLoss: too many positional arguments"),
    (lambda: fl.DiceLoss("multi"), ValueError, r"DiceLoss: mode must be one of"),
    (lambda: fl.TverskyLoss("binary", gamma=-1.0), ValueError, r"TverskyLoss: gamma must be > 0, got -1.0"),
    (lambda: fl.BCEDiceLoss(mode="multiclass"), ValueError,
     r"BCEDiceLoss: mode must be one of 'binary', 'multilabel', got 'multiclass'"),
    (lambda: fl.LovaszHingeLoss(per_image="yes"), TypeError, r"LovaszHingeLoss: per_image must be True or False"),
    (lambda: fl.CEDiceLoss(smooth=-1), ValueError, r"CEDiceLoss: smooth must be >= 0, got -1"),
    (lambda: fl.CompleteBoxIoULoss("mean").value_and_grad(B, B, loss_out=np.empty(1)), ValueError,
     r"complete_box_iou_loss: loss_out is the buffer of the per-pair losses of reduction='none', "
     r"got reduction='mean'"),
    (lambda: fl.CompleteBoxIoULoss().value_and_grad(B, B, loss_out=np.empty(2)), ValueError,
     r"complete_box_iou_loss: loss_out must have shape \(1,\)"),
])
def test_error(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_bad_target_leaves_out_untouched_for_lovasz_and_seg():
    y = Y.copy()
    y[1, 3, 3] = 3
    t = M.copy()
    t[1, 2, 3, 3] = 0.5
    for call in (lambda o: fl.dice_loss(X, y, "multiclass", return_grad=True, out=o),
                 lambda o: fl.ce_dice_loss(X, y, return_grad=True, out=o),
                 lambda o: fl.lovasz_softmax_loss(X, y, return_grad=True, out=o),
                 lambda o: fl.lovasz_softmax_loss(X, y, per_image=True, return_grad=True, out=o),
                 lambda o: fl.lovasz_hinge_loss(X, t, per_image=True, return_grad=True, out=o),
                 lambda o: fl.dice_loss(X, t * 3, "multilabel", return_grad=True, out=o)):
        buf = np.full(X.shape, 7.0)
        with pytest.raises(ValueError):
            call(buf)
        assert np.all(buf == 7.0)


def test_ignore_index_makes_out_of_range_labels_legal():
    y = Y.copy()
    y[0, 0, 0] = 255
    fl.dice_loss(X, y, "multiclass", ignore_index=255)
    fl.lovasz_softmax_loss(X, y, ignore_index=255)
    t = M[:, 0].copy()
    t[0, 0, 0] = 255
    fl.lovasz_hinge_loss(X[:, 0], t, ignore_index=255)
    fl.bce_dice_loss(X[:, 0], t, ignore_index=255)


def test_misaligned_labels_are_copied():
    buf = np.zeros(2 * 16 * 8 + 1, np.uint8)
    y = np.frombuffer(buf.data, np.int64, offset=1, count=32).reshape(2, 4, 4)
    assert not y.flags.aligned
    assert fl.dice_loss(X, y, "multiclass") == fl.dice_loss(X, Y, "multiclass")
    assert fl.lovasz_softmax_loss(X, y) == fl.lovasz_softmax_loss(X, Y)
