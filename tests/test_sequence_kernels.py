"""The CTC kernel equals the NumPy reference (float64 to ~1e-12, float32 to
its precision) in every option, layout, reduction and special case; it is
bit-identical for any thread count (the split of one sample over two
threads included); the class equals the function; out= buffers, dtypes and
layouts behave as documented.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastloss as fl
from fastloss import _sequence
from fastloss.reference import sequence as R

F32, F64 = np.float32, np.float64


@pytest.fixture
def always_parallel():
    """Every call takes the parallel path, however small."""
    old = _sequence.set_parallel_threshold(0)
    yield
    _sequence.set_parallel_threshold(old)


def log_softmax(z, axis=-1):
    m = z.max(axis=axis, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=axis, keepdims=True))


def make(T=9, N=4, C=5, S=3, seed=0, dtype=F64, logits=False, batch_first=False, blank=0):
    """(x, targets (N, S) padded, input_lengths, target_lengths): lengths vary,
    labels avoid blank, one target has a repeat, one is empty when N > 2."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, (T, N, C))
    x = z if logits else log_softmax(z)
    if batch_first:
        x = x.transpose(1, 0, 2)
    x = np.ascontiguousarray(x, dtype=dtype)
    labels = [c for c in range(C) if c != blank]
    tg = rng.choice(labels, (N, S)).astype(np.int64)
    il = rng.integers(max(1, T - 3), T + 1, N)
    tl = rng.integers(0, S + 1, N)
    il[0], tl[0] = T, S
    if S >= 2:
        tg[0, 1] = tg[0, 0]
    if N > 2:
        tl[2] = 0
    return x, tg, il, tl


def check(x, tg, il, tl, dtype=F64, n_threads=None, **kw):
    """Kernel (value and gradient) against the reference on the same numbers."""
    v, g = fl.ctc_loss(x, tg, il, tl, return_grad=True, n_threads=n_threads, **kw)
    vr, gr = R.ctc_loss(np.asarray(x, F64), tg, il, tl, **kw)
    assert g.dtype == np.dtype(dtype) and g.shape == np.shape(x)
    if dtype == F64:
        rtol, atol = 1e-12, 1e-13
    else:
        rtol, atol = 2e-6, 2e-7
    if kw.get("reduction") == "none":
        assert isinstance(v, np.ndarray) and v.dtype == np.dtype(dtype)
        np.testing.assert_allclose(v, vr, rtol=rtol, atol=0)
    else:
        assert type(v) is float
        assert v == pytest.approx(vr, rel=rtol, abs=0) or (np.isnan(v) and np.isnan(vr))
    scale = max(float(np.max(np.abs(gr))), 1e-300)
    np.testing.assert_allclose(g, gr, rtol=rtol, atol=atol * scale)
    return v, g


# ----------------------------------------------------------- options

@pytest.mark.parametrize("dtype", [F64, F32], ids=["f64", "f32"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("from_logits", [False, True], ids=["logp", "logits"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["TNC", "NTC"])
def test_matches_reference(dtype, reduction, from_logits, batch_first):
    x, tg, il, tl = make(dtype=dtype, logits=from_logits, batch_first=batch_first,
                         seed=hash((reduction, from_logits, batch_first)) % 1000)
    check(x, tg, il, tl, dtype, reduction=reduction, from_logits=from_logits, batch_first=batch_first)


@pytest.mark.parametrize("tdtype", [np.int64, np.int32, np.int16, np.uint8])
@pytest.mark.parametrize("form", ["padded", "concatenated"])
def test_target_forms_and_dtypes(tdtype, form):
    x, tg, il, tl = make(seed=5)
    if form == "concatenated":
        tg = np.concatenate([tg[n, :tl[n]] for n in range(len(tl))])
    check(x, tg.astype(tdtype), il.astype(np.int32), tuple(int(v) for v in tl), reduction="sum")


@pytest.mark.parametrize("blank", [0, 2, 4])
def test_blank_anywhere(blank):
    x, tg, il, tl = make(C=5, blank=blank, seed=blank)
    check(x, tg, il, tl, blank=blank, reduction="none")
    check(x, tg, il, tl, blank=blank, reduction="mean", from_logits=True)


def test_unbatched():
    x, tg, il, tl = make(N=1, seed=3)
    v, g = check(x[:, 0, :], tg[0], int(il[0]), int(tl[0]), reduction="none")
    assert v.shape == () and g.shape == x[:, 0, :].shape
    v1, g1 = fl.ctc_loss(x, tg, il, tl, reduction="none", return_grad=True)
    assert v[()] == v1[0]
    np.testing.assert_array_equal(g, g1[:, 0, :])
    check(x[:, 0, :], tg[0], np.array(il[0]), [tl[0]], reduction="mean", from_logits=True)


# ----------------------------------------------------------- special cases

def test_repeats_exact_length_and_empty():
    rng = np.random.default_rng(1)
    C = 4
    x = log_softmax(rng.normal(0, 1, (6, 5, C)))
    tg = np.array([[1, 1, 1], [1, 2, 3], [2, 2, 0], [3, 0, 0], [0, 0, 0]])
    # repeats needing blanks (5 steps for 1 1 1), T = S without repeats, a double, a single, empty
    il = np.array([5, 3, 3, 1, 6])
    tl = np.array([3, 3, 2, 1, 0])
    tg[4] = 1
    v, _ = check(x, tg, il, tl, reduction="none")
    assert np.all(np.isfinite(v))


def test_infeasible_is_inf_or_zero():
    rng = np.random.default_rng(2)
    x = log_softmax(rng.normal(0, 1, (4, 3, 3)))
    tg = np.array([[1, 1, 1], [1, 2, 1], [2, 0, 0]])
    il = np.array([4, 2, 0])           # 1 1 1 needs 5; 1 2 1 needs 3; a label needs 1
    tl = np.array([3, 3, 1])
    v, g = fl.ctc_loss(x, tg, il, tl, reduction="none", return_grad=True)
    assert np.all(v == np.inf) and np.all(g == 0)
    check(x, tg, il, tl, reduction="none")
    v, g = fl.ctc_loss(x, tg, il, tl, reduction="sum", zero_infinity=True, return_grad=True)
    assert v == 0.0 and np.all(g == 0)
    for logits in (False, True):
        v, g = fl.ctc_loss(x, tg, il, tl, reduction="mean", from_logits=logits, return_grad=True)
        assert v == np.inf and not np.any(np.isnan(g))


def test_zero_infinity_keeps_finite_samples():
    rng = np.random.default_rng(4)
    x = log_softmax(rng.normal(0, 1, (5, 2, 3)))
    tg = np.array([[1, 1, 1], [1, 2, 0]])
    kw = dict(reduction="mean", zero_infinity=True)
    v, g = check(x, tg, [4, 5], [3, 2], **kw)      # 1 1 1 needs 5 steps: inf -> 0
    v1, g1 = fl.ctc_loss(x[:, 1:], tg[1:], [5], [2], return_grad=True, reduction="sum")
    assert v == pytest.approx(v1 / 2 / 2, rel=1e-14)


def test_empty_input_length():
    x = log_softmax(np.random.default_rng(0).normal(0, 1, (3, 2, 3)))
    v, g = fl.ctc_loss(x, np.array([[1], [1]]), [0, 0], [0, 1], reduction="none", return_grad=True)
    assert v[0] == 0.0 and v[1] == np.inf and np.all(g == 0)


def test_neg_inf_on_unused_classes():
    """Finite loss and gradient (PyTorch's gradient is NaN there)."""
    for from_logits in (False, True):
        x, tg, il, tl = make(C=6, seed=8, logits=from_logits)
        used = set(tg.reshape(-1).tolist()) | {0}
        unused = [c for c in range(6) if c not in used]
        if not unused:
            tg[tg == 5] = 1
            unused = [5]
        x[:, :, unused] = -np.inf
        v, g = check(x, tg, il, tl, reduction="sum", from_logits=from_logits)
        assert np.isfinite(v) and np.all(np.isfinite(g)) and np.all(g[:, :, unused] == 0)


def test_neg_inf_on_a_used_class_somewhere():
    x, tg, il, tl = make(seed=9)
    x[0, :, 0] = -np.inf            # no blank at t = 0
    x[3, 1, tg[1, 0]] = -np.inf
    v, g = check(x, tg, il, tl, reduction="none")
    assert not np.any(np.isnan(g))


def test_nan_propagates_where_used():
    x, tg, il, tl = make(N=3, C=6, seed=10)
    tg[:] = np.array([1, 2, 3])
    tl[:] = 3
    il[:] = x.shape[0] - 1
    x[2, 0, 2] = np.nan                 # a used class: sample 0's loss is NaN
    x[2, 1, 5] = np.nan                 # an unused class: finite
    x[-1, 2, 1] = np.nan                # past sample 2's length: finite
    v, g = fl.ctc_loss(x, tg, il, tl, reduction="none", return_grad=True)
    assert np.isnan(v[0]) and np.isfinite(v[1]) and np.isfinite(v[2])
    assert np.all(np.isfinite(g[:, 1:]))


def test_extreme_log_probs():
    """T = S, no repeats: one alignment, loss = -sum of its log-probabilities,
    even at -1e4 (a linear-space recursion would give inf)."""
    T, C = 5, 6
    lp = np.zeros((T, C))
    lp[:, :] = -1e4
    labels = np.array([1, 2, 3, 4, 5])
    lp[np.arange(T), labels] = np.array([-1e4, -3e3, -0.5, -2e4, -1.0])
    v, g = fl.ctc_loss(lp, labels, T, T, reduction="sum", return_grad=True)
    assert v == pytest.approx(1e4 + 3e3 + 0.5 + 2e4 + 1.0, rel=1e-15)
    expect = np.zeros_like(lp)
    expect[np.arange(T), labels] = -1.0
    np.testing.assert_allclose(g, expect, atol=1e-12)


@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
def test_logits_of_1e4(dtype):
    """Logits of +-1e4 (from_logits): finite, equal to the reference.  The
    log-probabilities reach -2e5, so an occupancy exp(alpha + beta - log p)
    carries an absolute error of about ulp(2e5) = 3e-11 in float64, in the
    reference as in the kernel (the reference's own exceeds 1 by 1.5e-11)."""
    rng = np.random.default_rng(23)
    z = (rng.standard_normal((30, 3, 6)) * 1e4).astype(dtype)
    tg = rng.integers(1, 6, (3, 5))
    il, tl = [30, 25, 20], [5, 4, 3]
    v, g = fl.ctc_loss(z, tg, il, tl, reduction="none", from_logits=True, return_grad=True)
    vr, gr = R.ctc_loss(z.astype(F64), tg, il, tl, reduction="none", from_logits=True)
    assert np.all(np.isfinite(v)) and np.all(np.isfinite(g))
    np.testing.assert_allclose(v, vr, rtol=1e-12 if dtype == F64 else 1e-7)
    np.testing.assert_allclose(g, gr, atol=1e-9 if dtype == F64 else 1e-6)


def test_long_sequence_float64():
    x, tg, il, tl = make(T=160, N=2, C=7, S=40, seed=12)
    check(x, tg, il, tl, reduction="sum")


def test_long_sequence_float32_from_logits():
    x, tg, il, tl = make(T=120, N=3, C=9, S=30, seed=13, dtype=F32, logits=True)
    check(x, tg, il, tl, F32, reduction="mean", from_logits=True)


# ----------------------------------------------------------- threads

@pytest.mark.parametrize("N", [1, 2, 3, 5])
@pytest.mark.parametrize("from_logits", [False, True], ids=["logp", "logits"])
def test_bit_identical_for_any_thread_count(always_parallel, N, from_logits):
    x, tg, il, tl = make(T=40, N=N, C=6, S=8, seed=N, dtype=F32, logits=from_logits)
    base = fl.ctc_loss(x, tg, il, tl, reduction="none", return_grad=True, n_threads=1, from_logits=from_logits)
    vbase = fl.ctc_loss(x, tg, il, tl, reduction="sum", n_threads=1, from_logits=from_logits)
    for nt in (2, 3, 4):
        v, g = fl.ctc_loss(x, tg, il, tl, reduction="none", return_grad=True, n_threads=nt,
                           from_logits=from_logits)
        np.testing.assert_array_equal(v, base[0])
        np.testing.assert_array_equal(g, base[1])
        assert fl.ctc_loss(x, tg, il, tl, reduction="sum", n_threads=nt, from_logits=from_logits) == vbase


@pytest.mark.parametrize("T", [1, 2, 5, 9, 17, 40])
@pytest.mark.parametrize("from_logits", [False, True], ids=["logp", "logits"])
def test_checkpointed_table_is_bit_identical(always_parallel, T, from_logits):
    """Beyond the table budget, rows are kept every K steps and recomputed:
    the same bits as the whole table, on 1, 2 and 3 threads."""
    x, tg, il, tl = make(T=T, N=3, C=5, S=min(T, 4), seed=T, logits=from_logits)
    kw = dict(reduction="none", return_grad=True, from_logits=from_logits)
    ref = fl.ctc_loss(x, tg, il, tl, n_threads=1, **kw)
    old = _sequence.set_table_budget(0)
    try:
        assert _sequence.checkpoint_rows(T, min(T, 4)) == int(np.ceil(np.sqrt(T)))
        for nt in (1, 2, 3):
            v, g = fl.ctc_loss(x, tg, il, tl, n_threads=nt, **kw)
            np.testing.assert_array_equal(v, ref[0])
            np.testing.assert_array_equal(g, ref[1])
    finally:
        _sequence.set_table_budget(old)


def test_value_only_equals_value_with_gradient(always_parallel):
    x, tg, il, tl = make(T=30, N=3, seed=14)
    for nt in (1, 2):
        for red in ("mean", "sum"):
            assert fl.ctc_loss(x, tg, il, tl, reduction=red, n_threads=nt) == \
                fl.ctc_loss(x, tg, il, tl, reduction=red, return_grad=True, n_threads=nt)[0]


def test_gradient_of_none_is_gradient_of_sum():
    x, tg, il, tl = make(seed=15)
    _, g1 = fl.ctc_loss(x, tg, il, tl, reduction="none", return_grad=True)
    _, g2 = fl.ctc_loss(x, tg, il, tl, reduction="sum", return_grad=True)
    np.testing.assert_array_equal(g1, g2)


# ----------------------------------------------------------- API contract

def test_class_equals_function():
    x, tg, il, tl = make(seed=16, logits=True, batch_first=True)
    kw = dict(blank=0, reduction="sum", zero_infinity=True, from_logits=True, batch_first=True)
    loss = fl.CTCLoss(0, "sum", True, from_logits=True, batch_first=True)
    assert loss(x, tg, il, tl) == fl.ctc_loss(x, tg, il, tl, **kw)
    v, g = loss.value_and_grad(x, tg, il, tl)
    v2, g2 = fl.ctc_loss(x, tg, il, tl, return_grad=True, **kw)
    assert v == v2
    np.testing.assert_array_equal(g, g2)
    assert "batch_first=True" in repr(loss)


def test_out_buffer_and_no_side_effects():
    x, tg, il, tl = make(dtype=F32, seed=17)
    x0, tg0 = x.copy(), tg.copy()
    buf = np.full_like(x, np.nan)
    v, g = fl.ctc_loss(x, tg, il, tl, return_grad=True, out=buf)
    assert g is buf and not np.any(np.isnan(buf))
    v2, g2 = fl.ctc_loss(x, tg, il, tl, return_grad=True)
    assert v == v2
    np.testing.assert_array_equal(g, g2)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(tg, tg0)
    v3, g3 = fl.CTCLoss().value_and_grad(x, tg, il, tl, out=buf)
    assert g3 is buf and v3 == v


def test_layouts():
    """batch-first equals time-first transposed; a non-contiguous input is
    copied once, with the same result."""
    x, tg, il, tl = make(seed=18)
    v, g = fl.ctc_loss(x, tg, il, tl, return_grad=True, reduction="none")
    xb = np.ascontiguousarray(x.transpose(1, 0, 2))
    vb, gb = fl.ctc_loss(xb, tg, il, tl, return_grad=True, reduction="none", batch_first=True)
    np.testing.assert_array_equal(v, vb)
    np.testing.assert_array_equal(g, gb.transpose(1, 0, 2))
    vv, gv = fl.ctc_loss(x.transpose(1, 0, 2), tg, il, tl, return_grad=True, reduction="none", batch_first=True)
    np.testing.assert_array_equal(vv, v)
    np.testing.assert_array_equal(gv, gb)
    wide = np.zeros((x.shape[0], x.shape[1], 2 * x.shape[2]))
    wide[:, :, ::2] = x
    vs, gs = fl.ctc_loss(wide[:, :, ::2], tg, il, tl, return_grad=True, reduction="none")
    np.testing.assert_array_equal(vs, v)
    np.testing.assert_array_equal(gs, g)


def test_int_input_becomes_float64_and_f16_float32():
    x, tg, il, tl = make(seed=19)
    v = fl.ctc_loss(x.astype(np.float16), tg, il, tl, return_grad=True)
    assert v[1].dtype == F32
    xi = np.round(x).astype(np.int64)
    v, g = fl.ctc_loss(xi, tg, il, tl, return_grad=True)
    assert g.dtype == F64


def test_empty_batch():
    x = np.zeros((4, 0, 3))
    tg = np.zeros((0, 2), np.int64)
    assert np.isnan(fl.ctc_loss(x, tg, [], []))
    assert fl.ctc_loss(x, tg, [], [], reduction="sum") == 0.0
    v, g = fl.ctc_loss(x, tg, [], [], reduction="none", return_grad=True)
    assert v.shape == (0,) and g.shape == (4, 0, 3)


def test_workspace_size_is_documented():
    """One thread's workspace: the table of Tmax x (2 Smax + 1) doubles and
    vectors of L, S and C; nothing that grows with N."""
    T, S, C = 2000, 400, 100
    b = _sequence.work_bytes(T, S, C, True, False)
    table = 8 * T * (2 * S + 1)
    assert table <= b <= table + 8 * (12 * (2 * S + 1) + 2 * S + C + 200)
    assert _sequence.work_bytes(T, S, C, False, False) < 8 * 20 * (2 * S + 1)
    # beyond the budget (32 MiB a thread): checkpoints every K = ceil(sqrt(T)) rows and a K-row segment
    T, S = 20000, 2000
    K = _sequence.checkpoint_rows(T, S)
    assert K == 142
    b = _sequence.work_bytes(T, S, C, True, False)
    assert b <= 8 * (T // K + K + 3 + 20) * (2 * S + 1) + 8 * (3 * S + C + 200) < 10 * 2 ** 20


# ----------------------------------------------------------- property

@settings(max_examples=60, deadline=None)
@given(T=st.integers(1, 12), N=st.integers(1, 4), C=st.integers(2, 6), S=st.integers(0, 6),
       seed=st.integers(0, 2 ** 31), reduction=st.sampled_from(["mean", "sum", "none"]),
       logits=st.booleans(), nt=st.sampled_from([1, 2, 3]))
def test_property_matches_reference(T, N, C, S, seed, reduction, logits, nt):
    rng = np.random.default_rng(seed)
    blank = int(rng.integers(0, C))
    z = rng.normal(0, 2, (T, N, C))
    x = z if logits else log_softmax(z)
    labels = [c for c in range(C) if c != blank]
    tg = rng.choice(labels, (N, max(S, 1)))[:, :S] if S else np.zeros((N, 0), np.int64)
    il = rng.integers(0, T + 1, N)
    tl = rng.integers(0, S + 1, N)
    old = _sequence.set_parallel_threshold(0)
    try:
        v, g = fl.ctc_loss(x, tg, il, tl, blank=blank, reduction=reduction, from_logits=logits,
                           return_grad=True, n_threads=nt)
    finally:
        _sequence.set_parallel_threshold(old)
    vr, gr = R.ctc_loss(x, tg, il, tl, blank=blank, reduction=reduction, from_logits=logits)
    np.testing.assert_allclose(v, vr, rtol=1e-11)
    np.testing.assert_allclose(g, gr, rtol=1e-10, atol=1e-13)
    assert not np.any(np.isnan(g))


def test_no_hidden_copy_of_the_input():
    """A C-contiguous float32 input (time-first or batch-first) is read in
    place: with out= the call allocates nothing of the input's size
    (NumPy's allocations are traced by tracemalloc)."""
    import tracemalloc

    for batch_first in (False, True):
        x, tg, il, tl = make(T=200, N=16, C=80, S=20, seed=21, dtype=F32, batch_first=batch_first)
        buf = np.empty_like(x)
        fl.ctc_loss(x, tg, il, tl, return_grad=True, out=buf, batch_first=batch_first)
        tracemalloc.start()
        try:
            fl.ctc_loss(x, tg, il, tl, return_grad=True, out=buf, batch_first=batch_first)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < x.nbytes // 10, (peak, x.nbytes)


def test_concurrent_python_threads():
    """The kernel keeps no global state: Python threads calling at once
    (the GIL is released in the kernel) get the serial results."""
    from concurrent.futures import ThreadPoolExecutor

    x, tg, il, tl = make(T=80, N=6, C=7, S=12, seed=22)
    ref = fl.ctc_loss(x, tg, il, tl, reduction="none", return_grad=True, n_threads=1)
    with ThreadPoolExecutor(4) as ex:
        outs = list(ex.map(lambda k: fl.ctc_loss(x, tg, il, tl, reduction="none", return_grad=True,
                                                 n_threads=1 + k % 2), range(8)))
    for v, g in outs:
        np.testing.assert_array_equal(v, ref[0])
        np.testing.assert_array_equal(g, ref[1])


def test_loss_out_buffer():
    x, tg, il, tl = make(seed=24, dtype=F32)
    lo = np.full(len(il), np.nan, F32)
    v, g = fl.CTCLoss(reduction="none").value_and_grad(x, tg, il, tl, loss_out=lo)
    assert v is lo
    np.testing.assert_array_equal(lo, fl.ctc_loss(x, tg, il, tl, reduction="none"))
    lo0 = np.full((), np.nan, F32)
    v0, _ = fl.CTCLoss(reduction="none").value_and_grad(x[:, 0], tg[0], int(il[0]), int(tl[0]), loss_out=lo0)
    assert v0 is lo0 and lo0 == lo[0]


def test_empty_lists_are_integer_arrays():
    """[] (NumPy's float64 when converted) is no label and no length to misread."""
    x = np.log(np.full((4, 2, 3), 1 / 3))
    assert fl.ctc_loss(x, [], [0, 0], [0, 0], reduction="sum") == 0.0
    assert fl.ctc_loss(x, np.zeros(0), np.array([4, 3]), np.zeros(2, int), reduction="sum") == \
        fl.ctc_loss(x, np.zeros(0, int), np.array([4, 3]), np.zeros(2, int), reduction="sum")
    assert fl.ctc_loss(x[:, :0], np.zeros((0, 2)), np.zeros(0), np.zeros(0), reduction="sum") == 0.0


def _misaligned(a):
    """A C-contiguous but misaligned copy of a (np.frombuffer at offset 1)."""
    buf = np.zeros(a.nbytes + 1, np.uint8)
    m = np.frombuffer(buf.data, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    m[...] = a
    assert not m.flags.aligned and m.flags.c_contiguous
    return m


def test_misaligned_integer_arrays_are_copied(monkeypatch):
    """Misaligned targets and lengths (int64 and int32) are copied once, never
    read in place (a misaligned load is undefined behaviour in C): every
    array the driver gets is aligned."""
    x, tg, il, tl = make(seed=25)
    ref = fl.ctc_loss(x, tg, il, tl, reduction="none", return_grad=True)
    real = _sequence.ctc

    def spy(*args):
        for a in args:
            assert not isinstance(a, np.ndarray) or (a.flags.aligned and a.flags.c_contiguous)
        return real(*args)

    import fastloss._sequence_api as api
    monkeypatch.setattr(api._sequence, "ctc", spy)
    for dt in (np.int64, np.int32):
        v, g = fl.ctc_loss(x, _misaligned(tg.astype(dt)), _misaligned(il.astype(dt)), _misaligned(tl.astype(dt)),
                           reduction="none", return_grad=True)
        np.testing.assert_array_equal(v, ref[0])
        np.testing.assert_array_equal(g, ref[1])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_per_sample_weight(reduction):
    """weight= (fastloss's; PyTorch has none) multiplies each sample's loss and
    gradient; the weighted mean divides by sum(weight); a weight of 0 drops
    a sample, even an infeasible one (never 0 * inf)."""
    x, tg, il, tl = make(N=4, seed=26, logits=True)
    il[3], tl[3], tg[3] = 1, 3, 1          # infeasible: inf
    w = np.array([0.5, 2.0, 1.5, 0.0])
    v, g = check(x, tg, il, tl, reduction=reduction, weight=w, from_logits=True)
    assert np.all(np.isfinite(v)) and np.all(g[:, 3] == 0)
    base = fl.ctc_loss(x[:, :3], tg[:3], il[:3], tl[:3], reduction="none", from_logits=True)
    if reduction == "none":
        np.testing.assert_allclose(v[:3], base * w[:3], rtol=1e-14)
    elif reduction == "mean":
        assert v == pytest.approx(np.sum(w[:3] * base / np.maximum(tl[:3], 1)) / w.sum(), rel=1e-14)
    # weight 1 is no weight, bit for bit
    assert fl.ctc_loss(x, tg, il, tl, reduction="sum", weight=np.ones(4), from_logits=True) == \
        fl.ctc_loss(x, tg, il, tl, reduction="sum", from_logits=True)
