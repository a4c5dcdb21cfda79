"""Every bad input to a row loss gets a clear error, before or instead of any
out-of-bounds read: labels out of range (naming the position and value,
found in the kernel's own pass, for every reduction and thread count),
negative labels other than ignore_index, float labels where integers are
expected and the reverse, class weights of the wrong length, label
smoothing outside [0, 1], p not in {1, 2}, target shapes that do not
match, and bad buffers and parameters.
"""
import re

import numpy as np
import pytest

import fastloss as fl
from fastloss import _rows

X = np.zeros((4, 5))
Y = np.array([0, 1, 2, 3])
XS = np.zeros((2, 5, 3, 4))

LABEL_FUNCS = [
    ("cross_entropy", fl.cross_entropy),
    ("nll_loss", fl.nll_loss),
    ("softmax_focal_loss", fl.softmax_focal_loss),
    ("multi_margin_loss", fl.multi_margin_loss),
    ("poly1_cross_entropy", fl.poly1_cross_entropy),
]
LABEL_CLASSES = [fl.CrossEntropyLoss, fl.NLLLoss, fl.SoftmaxFocalLoss, fl.MultiMarginLoss, fl.Poly1CrossEntropyLoss]


@pytest.fixture
def rows_parallel_always():
    old = _rows.set_parallel_threshold(0)
    yield
    _rows.set_parallel_threshold(old)


# ------------------------------------------------------------------ labels out of range

@pytest.mark.parametrize("name,fn", LABEL_FUNCS, ids=[n for n, _ in LABEL_FUNCS])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ldt", [np.int64, np.int32, np.uint8])
def test_label_out_of_range_names_position_and_value(name, fn, reduction, ldt):
    y = np.array([0, 1, 7, 9], ldt)
    msg = f"{name}: Target 7 is out of bounds (target[2] = 7, n_classes = 5)"
    with pytest.raises(ValueError, match=re.escape(msg)):
        fn(X, y, reduction=reduction)
    with pytest.raises(ValueError, match=re.escape(msg)):
        fn(X, y, reduction=reduction, return_grad=True)


@pytest.mark.parametrize("cls", LABEL_CLASSES, ids=lambda c: c.__name__)
def test_label_out_of_range_in_grad_hess(cls):
    with pytest.raises(ValueError, match=r"Target 5 is out of bounds \(target\[1\] = 5, n_classes = 5\)"):
        cls().grad_hess(X, np.array([0, 5, 1, 2]))


@pytest.mark.parametrize("name,fn", LABEL_FUNCS[:3], ids=[n for n, _ in LABEL_FUNCS[:3]])
def test_negative_label_other_than_ignore_index(name, fn):
    with pytest.raises(ValueError, match=re.escape(f"{name}: Target -1 is out of bounds (target[1] = -1")):
        fn(X, np.array([0, -1, 2, 3]))
    with pytest.raises(ValueError, match=re.escape("Target -100 is out of bounds (target[3] = -100")):
        fn(X, np.array([0, 1, 2, -100]), ignore_index=-1)
    fn(X, np.array([0, -1, 2, 3]), ignore_index=-1)            # ignored: fine


def test_multi_margin_has_no_ignore_index():
    with pytest.raises(ValueError, match=re.escape("Target -100 is out of bounds (target[0] = -100")):
        fl.multi_margin_loss(X, np.array([-100, 1, 2, 3]))


def test_spatial_and_unbatched_positions():
    y = np.zeros((2, 3, 4), np.int64)
    y[1, 2, 3] = 6
    with pytest.raises(ValueError, match=re.escape("Target 6 is out of bounds (target[1, 2, 3] = 6, n_classes = 5)")):
        fl.cross_entropy(XS, y)
    with pytest.raises(ValueError, match=re.escape("Target 5 is out of bounds (target = 5, n_classes = 5)")):
        fl.cross_entropy(np.zeros(5), 5)
    with pytest.raises(ValueError, match=re.escape("(target[1, 2, 3] = 6")):
        fl.SoftmaxFocalLoss(reduction="none").grad_hess(XS, y)


def test_first_bad_label_is_reported_for_any_thread_count(rows_parallel_always):
    x = np.zeros((50000, 3), np.float32)
    y = np.zeros(50000, np.int64)
    y[[4321, 30000, 49999]] = [3, -2, 99]
    for nt in (1, 2, 3):
        for red in ("mean", "sum", "none"):
            with pytest.raises(ValueError, match=re.escape("Target 3 is out of bounds (target[4321] = 3")):
                fl.cross_entropy(x, y, n_threads=nt, reduction=red, return_grad=True)


def test_huge_labels_are_errors_not_reads():
    with pytest.raises(ValueError, match=re.escape(f"Target {2**40} is out of bounds (target[1]")):
        fl.cross_entropy(X, np.array([0, 2 ** 40, 1, 2]))
    with pytest.raises(ValueError, match=re.escape(f"Target {-2**62} is out of bounds (target[3]")):
        fl.nll_loss(X, np.array([0, 1, 2, -2 ** 62]))
    with pytest.raises(ValueError, match="Target 255 is out of bounds"):
        fl.cross_entropy(X, np.array([0, 255, 1, 1], np.uint8))


def test_error_from_the_label_pass_leaves_out_untouched():
    g = np.full((4, 5), 7.0)
    with pytest.raises(ValueError, match="out of bounds"):
        fl.cross_entropy(X, np.array([0, 1, 2, 5]), return_grad=True, out=g)
    assert np.all(g == 7.0)


# ------------------------------------------------------------------ label dtypes

@pytest.mark.parametrize("name,fn", LABEL_FUNCS, ids=[n for n, _ in LABEL_FUNCS])
def test_float_labels_where_integers_are_expected(name, fn):
    with pytest.raises(TypeError, match=re.escape(f"{name}: target holds class labels (shape (4,)) and must have "
                                                  "an integer dtype, got float64")):
        fn(X, Y.astype(np.float64))
    with pytest.raises(TypeError, match=f"{name}: target must hold integer class labels, got dtype bool"):
        fn(X, np.array([True, False, True, False]))


def test_integer_probabilities_where_floats_are_expected():
    with pytest.raises(TypeError, match=re.escape("cross_entropy: a target of the input's shape (4, 5) holds class "
                                                  "probabilities and must be floating point, got int64")):
        fl.cross_entropy(X, np.zeros((4, 5), np.int64))
    with pytest.raises(TypeError, match="must be floating point"):
        fl.poly1_cross_entropy(XS, np.zeros(XS.shape, np.int32))


def test_nll_and_margin_refuse_probability_targets():
    with pytest.raises(ValueError, match=re.escape("nll_loss: expected target of shape (4,) (class labels) for input "
                                                   "of shape (4, 5), got target of shape (4, 5)")):
        fl.nll_loss(X, np.full((4, 5), 0.2))


# ------------------------------------------------------------------ shapes

@pytest.mark.parametrize("x,t,want", [
    (X, np.array([0, 1, 2]), "expected target of shape (4,) (class labels) or (4, 5) (class probabilities) for "
                             "input of shape (4, 5), got target of shape (3,)"),
    (X, np.zeros((4, 1), np.int64), "got target of shape (4, 1)"),
    (XS, np.zeros((2, 3), np.int64), "expected target of shape (2, 3, 4) (class labels) or (2, 5, 3, 4)"),
    (XS, np.zeros((2, 4, 3), np.int64), "got target of shape (2, 4, 3)"),
    (np.zeros(5), np.array([1]), "expected target of shape () (class labels) or (5,)"),
    (X, np.full((4, 6), 0.1), "got target of shape (4, 6)"),
])
def test_target_shape_mismatch(x, t, want):
    with pytest.raises(ValueError, match=re.escape(want)) as e:
        fl.cross_entropy(x, t)
    assert str(e.value).startswith("cross_entropy: expected target of shape ")


def test_input_shapes():
    with pytest.raises(ValueError, match="cross_entropy: input must have at least 1 dimension"):
        fl.cross_entropy(np.float64(1.0), 0)
    with pytest.raises(ValueError, match=re.escape("cross_entropy: input must have at least one class, got shape "
                                                   "(3, 0)")):
        fl.cross_entropy(np.zeros((3, 0)), np.zeros(3, np.int64))
    with pytest.raises(ValueError, match=re.escape("multi_margin_loss: input must have shape (C,) or (N, C), got "
                                                   "(2, 5, 3, 4)")):
        fl.multi_margin_loss(XS, np.zeros((2, 3, 4), np.int64))
    with pytest.raises(ValueError, match=re.escape("multilabel_soft_margin_loss: target must have the same shape "
                                                   "as input, got input: (4, 5) and target: (4, 4)")):
        fl.multilabel_soft_margin_loss(X, np.zeros((4, 4)))
    with pytest.raises(TypeError, match="cross_entropy: input must be a real"):
        fl.cross_entropy(X + 0j, Y)
    with pytest.raises(TypeError, match="cross_entropy: input must be array-like"):
        fl.cross_entropy([[1.0, 2.0], [3.0]], Y)


# ------------------------------------------------------------------ parameters

@pytest.mark.parametrize("name,fn", [("cross_entropy", fl.cross_entropy), ("nll_loss", fl.nll_loss),
                                     ("multi_margin_loss", fl.multi_margin_loss),
                                     ("poly1_cross_entropy", fl.poly1_cross_entropy)])
def test_weight_of_the_wrong_length(name, fn):
    for w in (np.ones(4), np.ones(6), np.ones((1, 5)), 1.0):
        with pytest.raises(ValueError, match=re.escape(f"{name}: weight must be a 1-D array of n_classes = 5 "
                                                       f"elements, got shape {np.shape(w)}")):
            fn(X, Y, weight=w)
    with pytest.raises(TypeError, match=f"{name}: weight must be a real array, got dtype complex128"):
        fn(X, Y, weight=np.ones(5, complex))
    # multilabel: a weight per class, or any shape that broadcasts to the input (PyTorch's rule)
    with pytest.raises(ValueError, match=re.escape("multilabel_soft_margin_loss: weight of shape (4,) cannot be "
                                                   f"broadcast to the input's shape {X.shape}")):
        fl.multilabel_soft_margin_loss(X, np.zeros_like(X), weight=np.ones(4))


@pytest.mark.parametrize("ls", [1.5, -0.1, 1.0000001])
def test_label_smoothing_outside_0_1(ls):
    msg = re.escape(f"label_smoothing must be between 0.0 and 1.0. Got: {ls}")
    with pytest.raises(ValueError, match="cross_entropy: " + msg):
        fl.cross_entropy(X, Y, label_smoothing=ls)
    with pytest.raises(ValueError, match="CrossEntropyLoss: " + msg):
        fl.CrossEntropyLoss(label_smoothing=ls)
    with pytest.raises(ValueError, match="poly1_cross_entropy: " + msg):
        fl.poly1_cross_entropy(X, Y, label_smoothing=ls)
    with pytest.raises(ValueError, match="cross_entropy_hvp: " + msg):
        fl.cross_entropy_hvp(X, Y, X, label_smoothing=ls)


def test_label_smoothing_not_a_number():
    with pytest.raises(ValueError, match="cross_entropy: label_smoothing must not be NaN"):
        fl.cross_entropy(X, Y, label_smoothing=float("nan"))
    with pytest.raises(TypeError, match="cross_entropy: label_smoothing must be a real number, got str"):
        fl.cross_entropy(X, Y, label_smoothing="0.1")


@pytest.mark.parametrize("p", [0, 3, 1.5, True, "1", None])
def test_p_not_in_1_2(p):
    with pytest.raises(ValueError, match=re.escape(f"multi_margin_loss: only p == 1 and p == 2 supported, got {p!r}")):
        fl.multi_margin_loss(X, Y, p=p)
    with pytest.raises(ValueError, match=re.escape(f"MultiMarginLoss: only p == 1 and p == 2 supported, got {p!r}")):
        fl.MultiMarginLoss(p=p)


def test_margin_epsilon_gamma_alpha():
    with pytest.raises(TypeError, match="multi_margin_loss: margin must be a real number"):
        fl.multi_margin_loss(X, Y, margin="1")
    with pytest.raises(ValueError, match="poly1_cross_entropy: epsilon must not be NaN"):
        fl.poly1_cross_entropy(X, Y, epsilon=float("nan"))
    with pytest.raises(ValueError, match="softmax_focal_loss: gamma must be >= 0, got -1"):
        fl.softmax_focal_loss(X, Y, gamma=-1)
    with pytest.raises(ValueError, match="SoftmaxFocalLoss: gamma must be >= 0, got -0.5"):
        fl.SoftmaxFocalLoss(gamma=-0.5)
    with pytest.raises(ValueError, match="softmax_focal_loss: alpha must be >= 0, got -0.25"):
        fl.softmax_focal_loss(X, Y, alpha=-0.25)
    with pytest.raises(ValueError, match=re.escape("softmax_focal_loss: alpha must be a 1-D array of n_classes = 5 "
                                                   "elements, got shape (3,)")):
        fl.softmax_focal_loss(X, Y, alpha=np.ones(3))


def test_ignore_index():
    with pytest.raises(TypeError, match="cross_entropy: ignore_index must be an integer, got 1.5"):
        fl.cross_entropy(X, Y, ignore_index=1.5)
    with pytest.raises(TypeError, match="NLLLoss: ignore_index must be an integer, got True"):
        fl.NLLLoss(ignore_index=True)
    with pytest.raises(ValueError, match="ignore_index must fit in int64"):
        fl.cross_entropy(X, Y, ignore_index=2 ** 63)
    with pytest.raises(ValueError, match="cross_entropy: ignore_index is not supported for class-probability"):
        fl.cross_entropy(X, np.full((4, 5), 0.2), ignore_index=0)


def test_reduction_and_threads():
    with pytest.raises(ValueError, match="cross_entropy: reduction must be one of 'mean', 'sum', 'none', got 'avg'"):
        fl.cross_entropy(X, Y, reduction="avg")
    with pytest.raises(ValueError, match="NLLLoss: reduction must be one of"):
        fl.NLLLoss(reduction="batchmean")
    with pytest.raises(ValueError, match="cross_entropy: n_threads must be a positive integer or None, got 0"):
        fl.cross_entropy(X, Y, n_threads=0)
    with pytest.raises(TypeError, match="CrossEntropyLoss: n_threads must be a positive integer or None"):
        fl.CrossEntropyLoss(n_threads=1.5)


# ------------------------------------------------------------------ buffers

def test_bad_out_buffers():
    loss = fl.CrossEntropyLoss(reduction="none")
    with pytest.raises(ValueError, match=re.escape("cross_entropy: out must have shape (4, 5) (the input's), got "
                                                   "(5, 4)")):
        fl.cross_entropy(X, Y, return_grad=True, out=np.empty((5, 4)))
    with pytest.raises(ValueError, match="cross_entropy: out must have dtype float64"):
        fl.cross_entropy(X, Y, return_grad=True, out=np.empty((4, 5), np.float32))
    with pytest.raises(ValueError, match="cross_entropy: out must be C-contiguous"):
        fl.cross_entropy(X, Y, return_grad=True, out=np.empty((5, 4)).T)
    ro = np.empty((4, 5))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="cross_entropy: out must be writeable"):
        fl.cross_entropy(X, Y, return_grad=True, out=ro)
    with pytest.raises(ValueError, match="cross_entropy: out must not share memory with the inputs"):
        x = np.zeros((4, 5))
        fl.cross_entropy(x, Y, return_grad=True, out=x)
    with pytest.raises(ValueError, match=re.escape("cross_entropy: loss_out must have shape (4,) (input's shape "
                                                   "without the class axis), got (4, 5)")):
        loss.value_and_grad(X, Y, loss_out=np.empty((4, 5)))
    b = np.empty((4, 5))
    with pytest.raises(ValueError, match="hess_out must not share memory|out must not share memory"):
        loss.grad_hess(X, Y, out=(b, b))
    with pytest.raises(ValueError, match="CrossEntropyLoss: out must be a pair"):
        loss.grad_hess(X, Y, out=b)
    with pytest.raises(ValueError, match=re.escape("cross_entropy_hvp: v must have the same shape as input, got "
                                                   "input: (4, 5) and v: (4,)")):
        fl.cross_entropy_hvp(X, Y, np.zeros(4))
