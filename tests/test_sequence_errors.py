"""Every error of ctc_loss / CTCLoss: the operation, the argument, the
offending value (and for labels the sample and position); nothing is
written to out= when a label is bad."""
import re

import numpy as np
import pytest

import fastloss as fl


def data(T=6, N=2, C=4, S=3):
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (T, N, C))
    x = x - np.log(np.exp(x).sum(-1, keepdims=True))
    tg = np.array([[1, 2, 3], [2, 2, 0]])[:N, :S]
    return x, tg, np.array([T, T - 1])[:N], np.array([S, 2])[:N]


def raises(exc, pattern, *args, **kw):
    with pytest.raises(exc, match=pattern):
        fl.ctc_loss(*args, **kw)


def test_labels_out_of_range_name_sample_and_position():
    x, tg, il, tl = data()
    bad = tg.copy()
    bad[1, 1] = 4
    raises(ValueError, re.escape("ctc_loss: targets[1, 1] = 4 is out of bounds: labels must be in [0, 4)"),
           x, bad, il, tl)
    bad[1, 1] = -3
    raises(ValueError, re.escape("targets[1, 1] = -3 is out of bounds"), x, bad, il, tl)
    bad = tg.copy()
    bad[0, 2] = 0
    raises(ValueError, re.escape("ctc_loss: targets[0, 2] = 0 is the blank label (blank = 0)"), x, bad, il, tl)
    raises(ValueError, re.escape("targets[0, 1] = 2 is the blank label (blank = 2)"), x, tg, il, tl, blank=2)
    # concatenated: the flat index, the sample and the position
    cat = np.array([1, 2, 3, 2, 9])
    raises(ValueError, re.escape("ctc_loss: targets[4] (sample 1, position 1) = 9 is out of bounds"),
           x, cat, il, tl)
    # unbatched
    raises(ValueError, re.escape("ctc_loss: targets[1] = 7 is out of bounds"), x[:, 0], np.array([1, 7]), 6, 2)
    # int32 labels are checked the same way
    raises(ValueError, re.escape("targets[1, 1] = 5"), x, np.array([[1, 2, 3], [2, 5, 0]], np.int32), il, tl)


def test_padding_beyond_the_length_is_not_checked():
    x, tg, il, tl = data()
    tg = tg.copy()
    tg[1, 2] = -100            # past target_lengths[1] = 2: padding, never read
    assert np.isfinite(fl.ctc_loss(x, tg, il, tl))


def test_bad_label_writes_nothing():
    x, tg, il, tl = data()
    bad = tg.copy()
    bad[1, 0] = 99
    buf = np.full_like(x, 7.0)
    with pytest.raises(ValueError, match="out of bounds"):
        fl.ctc_loss(x, bad, il, tl, reduction="sum", return_grad=True, out=buf)
    assert np.all(buf == 7.0)


def test_lengths():
    x, tg, il, tl = data()
    raises(ValueError, re.escape("ctc_loss: input_lengths[1] = 7 is longer than the input's T = 6"),
           x, tg, [6, 7], tl)
    raises(ValueError, re.escape("ctc_loss: input_lengths[0] = -1 is negative"), x, tg, [-1, 6], tl)
    raises(ValueError, re.escape("ctc_loss: target_lengths[1] = -2 is negative"), x, tg, il, [3, -2])
    raises(ValueError, re.escape("ctc_loss: target_lengths[0] = 4 is longer than the padded targets' S = 3"),
           x, tg, il, [4, 1])
    raises(ValueError, re.escape("ctc_loss: input_lengths must have shape (2,) (one per sample), got shape (3,)"),
           x, tg, [6, 6, 6], tl)
    raises(ValueError, re.escape("ctc_loss: target_lengths must have shape (2,) (one per sample), got shape ()"),
           x, tg, il, 3)
    raises(TypeError, re.escape("ctc_loss: input_lengths must hold integers, got dtype float64"),
           x, tg, np.array([6.0, 5.0]), tl)
    raises(TypeError, "ctc_loss: target_lengths must hold integers", x, tg, il, True)
    raises(TypeError, "ctc_loss: input_lengths must be an integer array or a sequence of integers",
           x, tg, [[6], 5], tl)
    raises(ValueError, re.escape("ctc_loss: input_lengths must have shape () or (1,), got shape (2,)"),
           x[:, 0], tg[0], [6, 6], 3)
    raises(ValueError, re.escape("ctc_loss: input_lengths = 9 is longer than the input's T = 6"),
           x[:, 0], tg[0], 9, 3)
    raises(ValueError, re.escape("ctc_loss: input_lengths holds 18446744073709551615, too large for a length"),
           x, tg, np.array([2 ** 64 - 1, 1], np.uint64), tl)


def test_targets():
    x, tg, il, tl = data()
    raises(TypeError, re.escape("ctc_loss: targets must hold integer class labels, got dtype float64"),
           x, tg.astype(float), il, tl)
    raises(ValueError, re.escape("ctc_loss: padded targets must have shape (N, S) = (2, S), got (3, 3)"),
           x, np.ones((3, 3), np.int64), il, tl)
    raises(ValueError, re.escape("ctc_loss: targets must be (N, S) padded or 1-D concatenated, got shape (1, 2, 3)"),
           x, np.ones((1, 2, 3), np.int64), il, tl)
    raises(ValueError, re.escape("ctc_loss: concatenated 1-D targets must have sum(target_lengths) = 5 labels, "
                                 "got 4"), x, np.array([1, 2, 3, 2]), il, tl)
    raises(ValueError, re.escape("ctc_loss: targets of an unbatched (T, C) input must be 1-D (S,), got shape (1, 3)"),
           x[:, 0], tg[:1], 6, 3)
    raises(ValueError, re.escape("ctc_loss: target_lengths = 4 is longer than targets (shape (3,))"),
           x[:, 0], tg[0], 6, 4)
    raises(ValueError, re.escape("ctc_loss: targets hold 18446744073709551615, not a class label"),
           x, np.array([[1, 2, 3], [2, 2 ** 64 - 1, 0]], np.uint64), il, tl)
    raises(TypeError, "ctc_loss: targets must be an integer array", x, [[1, 2, 3], [1, [2]]], il, tl)


def test_input_and_parameters():
    x, tg, il, tl = data()
    raises(ValueError, re.escape("ctc_loss: log_probs must have shape (T, N, C) or (T, C), got shape (6,)"),
           x[:, 0, 0], tg, il, tl)
    raises(ValueError, re.escape("ctc_loss: log_probs must have shape (N, T, C) or (T, C), got shape (6, 2, 4, 1)"),
           x[..., None], tg, il, tl, batch_first=True)
    raises(ValueError, re.escape("ctc_loss: log_probs must have at least one class (the blank), got shape (6, 2, 0)"),
           x[:, :, :0], tg, il, tl)
    raises(ValueError, re.escape("ctc_loss: blank must be in label range [0, 4), got 4"), x, tg, il, tl, blank=4)
    raises(ValueError, re.escape("ctc_loss: blank must be in label range [0, 4), got -1"), x, tg, il, tl, blank=-1)
    raises(TypeError, re.escape("ctc_loss: blank must be an integer, got 1.0"), x, tg, il, tl, blank=1.0)
    raises(ValueError, re.escape("ctc_loss: reduction must be one of 'mean', 'sum', 'none', got 'avg'"),
           x, tg, il, tl, reduction="avg")
    raises(TypeError, re.escape("ctc_loss: zero_infinity must be True or False, got 1"),
           x, tg, il, tl, zero_infinity=1)
    raises(TypeError, "ctc_loss: from_logits must be True or False", x, tg, il, tl, from_logits="yes")
    raises(TypeError, "ctc_loss: batch_first must be True or False", x, tg, il, tl, batch_first=None)
    raises(TypeError, "ctc_loss: log_probs must be a real", np.array([["a"]]), tg, il, tl)
    raises(ValueError, "ctc_loss: n_threads must be a positive integer", x, tg, il, tl, n_threads=0)


def test_out():
    x, tg, il, tl = data()
    raises(ValueError, re.escape("ctc_loss: out= is the gradient's buffer; pass return_grad=True with it"),
           x, tg, il, tl, out=np.empty_like(x))
    raises(ValueError, re.escape("ctc_loss: out must have shape (6, 2, 4) (the input's), got (6, 2)"),
           x, tg, il, tl, return_grad=True, out=np.empty((6, 2)))
    raises(ValueError, "ctc_loss: out must have dtype float64", x, tg, il, tl, return_grad=True,
           out=np.empty(x.shape, np.float32))
    raises(ValueError, "ctc_loss: out must not share memory with the inputs", x, tg, il, tl, return_grad=True,
           out=x)


def test_class_errors():
    with pytest.raises(ValueError, match=re.escape("CTCLoss: blank must be >= 0, got -1")):
        fl.CTCLoss(blank=-1)
    with pytest.raises(ValueError, match="CTCLoss: reduction must be one of"):
        fl.CTCLoss(reduction="batchmean")
    with pytest.raises(TypeError, match="CTCLoss: zero_infinity must be True or False"):
        fl.CTCLoss(zero_infinity="no")
    with pytest.raises(TypeError, match="CTCLoss: blank must be an integer"):
        fl.CTCLoss(blank="0")
    with pytest.raises(ValueError, match="CTCLoss: n_threads must be a positive integer"):
        fl.CTCLoss(n_threads=-2)
    x, tg, il, tl = data()
    with pytest.raises(ValueError, match=re.escape("CTCLoss: blank must be in label range [0, 4), got 9")):
        fl.CTCLoss(blank=9)(x, tg, il, tl)
    with pytest.raises(ValueError, match=re.escape("CTCLoss: targets[1, 0] = 8 is out of bounds")):
        fl.CTCLoss().value_and_grad(x, np.array([[1, 2, 3], [8, 2, 0]]), il, tl)


def test_loss_out_errors():
    x, tg, il, tl = data()
    loss = fl.CTCLoss()
    with pytest.raises(ValueError, match=re.escape("CTCLoss: loss_out= is the per-sample losses' buffer and needs "
                                                   "reduction='none', got reduction='mean'")):
        loss.value_and_grad(x, tg, il, tl, loss_out=np.empty(2))
    loss = fl.CTCLoss(reduction="none")
    with pytest.raises(ValueError, match=re.escape("CTCLoss: loss_out must have shape (2,)")):
        loss.value_and_grad(x, tg, il, tl, loss_out=np.empty(3))
    with pytest.raises(ValueError, match="CTCLoss: loss_out must have dtype float64"):
        loss.value_and_grad(x, tg, il, tl, loss_out=np.empty(2, np.float32))
    with pytest.raises(ValueError, match="CTCLoss: loss_out must be a numpy.ndarray"):
        loss.value_and_grad(x, tg, il, tl, loss_out=[0.0, 0.0])
    buf = np.empty(x.size + 2)
    with pytest.raises(ValueError, match="CTCLoss: loss_out must not share memory"):
        loss.value_and_grad(x, tg, il, tl, out=buf[:x.size].reshape(x.shape), loss_out=buf[x.size - 1:x.size + 1])


def test_weight_errors():
    x, tg, il, tl = data()
    raises(ValueError, re.escape("ctc_loss: weight must have shape (2,) (one per sample), got shape (3,)"),
           x, tg, il, tl, weight=np.ones(3))
    raises(TypeError, re.escape("ctc_loss: weight must be a real array, got dtype <U1"),
           x, tg, il, tl, weight=np.array(["a", "b"]))
    raises(ValueError, re.escape("ctc_loss: weight must have shape () or (1,), got shape (2,)"),
           x[:, 0], tg[0], 6, 3, weight=[1.0, 2.0])


@pytest.mark.parametrize("tl,n_labels,n", [([2 ** 63 - 1, 2 ** 63 - 1, 2], 0, 0),
                                            ([1, 2 ** 62, 2 ** 62, 2 ** 62, 2 ** 62 + 1], 2, 1),
                                            ([0, 2 ** 31], 3, 1)])
def test_huge_target_lengths_of_concatenated_targets(tl, n_labels, n):
    # found by the fuzz harness: huge lengths whose int64 sum wraps around to
    # the number of labels passed the sum check, and the kernel read labels
    # far outside targets; each length is now checked against the labels first
    assert int(np.sum(np.array(tl, np.int64))) in (n_labels, 2 ** 31)  # (the sum that used to wrap)
    lp = np.log(np.full((4, len(tl), 5), 0.2))
    t = np.ones(n_labels, np.int64)
    for f in (fl.ctc_loss, lambda *a: fl.CTCLoss()(*a)):
        with pytest.raises(ValueError, match=re.escape(f"target_lengths[{n}] = {tl[n]} is longer than the "
                                                       f"concatenated targets ({n_labels} labels)")):
            f(lp, t, [4] * len(tl), np.array(tl, np.int64))
