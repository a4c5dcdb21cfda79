"""Tests of ``fastloss.dask``: every loss over dask arrays, the same bits as
one fastloss call on the whole array.

1. Bit-identity, every loss (a case each, several for the losses whose
   divisor or blocks differ: weights, ignore_index, a periodic
   pos_weight, spatial row losses, batchmean), every reduction, value only
   and with gradients, against ``fastloss.<loss>`` on the NumPy array, for
   several chunkings along axis 0: one chunk, chunks on block boundaries,
   uneven chunks that the adapter must move, chunks of 1, and chunks that
   also split other axes (pointwise).  Run on the synchronous scheduler
   (fast), and a hypothesis property draws random chunkings.
2. The same on a real ``dask.distributed.LocalCluster`` (2 worker
   processes, loopback only, started and closed by a module fixture): the
   cases whose reduction needs the extra pass or an aligned period, and an
   error raised on a worker.
3. The structure of the graph: one fused task per chunk serves the value
   and the gradient; the denominator pass reads the labels and weights
   only; chunks on block boundaries are not rechunked.
4. Refusals and errors: row losses chunked along the class axis (and
   ``rechunk=True``), operands whose axis 0 does not match, ``out=``, bad
   label positions counted in the whole array, import without dask.
"""
import math
import pathlib
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest

import fastloss as fl

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
import fastloss.dask as fld  # noqa: E402

F32, F64 = np.float32, np.float64


# ----------------------------------------------------------------- cases

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _loss_cases import BY_ID, CASES, UNSPLIT  # noqa: E402


def _chunkings(n):
    """Chunk sizes along axis 0: one chunk, many, uneven, tiny ones."""
    third = max(1, n // 3)
    uneven = [n // 7, 1, n // 5, 3, n // 2]
    uneven.append(n - sum(uneven))
    return {"one": (n,), "thirds": (third, third, n - 2 * third), "uneven": tuple(c for c in uneven if c > 0),
            "tiny": (1, 2) + (n - 3,)}


def _to_dask(a, n0, chunks0, split_other=False):
    """A NumPy operand as a dask array chunked along axis 0 (if it runs along it)."""
    if not isinstance(a, np.ndarray) or a.ndim == 0 or a.shape[0] != n0:
        return a
    chunks = (chunks0,) + tuple(((s + 1) // 2, s // 2) if split_other and s > 1 else (s,) for s in a.shape[1:])
    return da.from_array(a, chunks=chunks)


def _dask_call(case, args, kw, chunks0, split_other=False, **extra):
    n0 = args[0].shape[0]
    dargs = tuple(_to_dask(a, n0, chunks0, split_other) for a in args)
    dkw = {k: _to_dask(v, n0, chunks0, split_other) for k, v in kw.items()}
    return getattr(fld, case.fn.__name__)(*dargs, **dkw, **extra)


def _same_bits(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} != {b.dtype}"
    eq = (a == b) | (np.isnan(a) & np.isnan(b))
    assert eq.all(), f"{what}: {np.count_nonzero(~eq)} of {a.size} differ, e.g. {a[~eq][:3]} vs {b[~eq][:3]}"


def _check(case, dtype, reduction, grad, chunking, scheduler="sync", split_other=False):
    rng = np.random.default_rng(zlib.crc32(f"{case.cid} {np.dtype(dtype)}".encode()))
    args, kw = case.make(rng, dtype)
    kw = dict(kw, reduction=reduction)
    if grad:
        kw["return_grad"] = True
    expected = case.fn(*args, **kw)
    chunks0 = _chunkings(args[0].shape[0])[chunking]
    res = _dask_call(case, args, kw, chunks0, split_other)
    got = dask.compute(*res, scheduler=scheduler) if grad else (res.compute(scheduler=scheduler),)
    expected = expected if grad else (expected,)
    assert len(got) == len(expected)
    for k, (g, e) in enumerate(zip(got, expected)):
        what = f"{case.cid} {reduction} {'value' if k == 0 else f'gradient {k}'} chunks={chunking}"
        if k == 0 and reduction != "none":
            assert np.asarray(g).dtype == np.float64
            e = np.float64(e)
        _same_bits(g, e, what)


# ----------------------------------------------------------------- coverage

GATHERED = {c.fn.__name__ for c in UNSPLIT if getattr(c.fn, "_unsplittable", None)}  # see fastloss.dask.strategy


def test_a_loss_on_another_loss_call_path_is_not_taken_for_it():
    """A loss whose driver reports another loss's plan (a trimmed mean runs
    its inner loss's pointwise path) is refused, with or without a
    declared reason."""
    x = da.zeros(100, chunks=30)
    c = fld._Call(fl.trimmed, (x, x, fl.MSELoss()), {})
    with pytest.raises(TypeError, match=r"fastloss\.dask\.trimmed: this loss's driver does not hand out per-block "
                                        r"sums"):
        c._ask(slab=True)


def test_every_loss_has_a_dask_form_and_a_case():
    fns = {n for n in fld.__all__ if n not in ("alignment", "strategy")}
    loss_fns = {n for n in fl.__all__ if callable(getattr(fl, n)) and n[0].islower()
                and "return_grad" in __import__("inspect").signature(getattr(fl, n)).parameters}
    assert fns == loss_fns
    covered = {c.fn.__name__ for c in CASES + UNSPLIT}
    assert covered == fns, f"no dask test case for {sorted(fns - covered)}"
    assert {n for n in fns if fld.strategy(n) == "gathered"} == GATHERED
    assert GATHERED == {"trimmed", "winsorized", "lovasz_hinge_loss", "lovasz_softmax_loss",
                        "batch_hard_triplet_loss", "batch_all_triplet_loss", "nt_xent_loss", "combined_loss"}
    assert len(fns) == 66 and len(fns - GATHERED) == 58  # docs/dask.md, README: 58 of the 66 split


# ----------------------------------------------------------------- bit-identity (sync scheduler)

@pytest.mark.parametrize("case", CASES, ids=repr)
def test_same_bits_as_one_call(case):
    """Uneven chunks that the adapter must move: float32, every reduction,
    with gradients (and the value alone, a kernel loop of its own, for the
    first reduction); then float64 on one of the other chunkings."""
    for k, reduction in enumerate(case.reductions):
        _check(case, F32, reduction, True, "uneven")
        if k == 0:
            _check(case, F32, reduction, False, "uneven")
    other = ("one", "thirds", "tiny")[CASES.index(case) % 3]
    _check(case, F64, case.reductions[0], True, other)


@pytest.mark.parametrize("cid", ["mse-weighted", "huber", "gaussian", "bce_logits-pos_weight", "kl_div"])
def test_pointwise_chunks_across_other_axes_are_merged(cid):
    case = BY_ID[cid]
    for reduction in case.reductions:
        _check(case, F32, reduction, True, "uneven", split_other=True)


@pytest.mark.parametrize("cid", ["cross_entropy-weighted-ignore", "gaussian-var-per-row", "mse-weighted",
                                 "cross_entropy-spatial", "bce_logits-pos_weight"])
def test_random_chunkings(cid):
    hyp = pytest.importorskip("hypothesis")
    st = hyp.strategies
    case = BY_ID[cid]
    rng = np.random.default_rng(7)
    args, kw = case.make(rng, F32)
    n0 = args[0].shape[0]
    kw = dict(kw, return_grad=True)
    value, *grads = case.fn(*args, **kw)

    @hyp.settings(max_examples=8, deadline=None, derandomize=True)
    @hyp.given(st.lists(st.integers(1, n0), min_size=1, max_size=6))
    def prop(cuts):
        bounds = sorted(set(c for c in cuts if c < n0))
        chunks0 = tuple(np.diff([0] + bounds + [n0]).tolist())
        res = dask.compute(*_dask_call(case, args, kw, chunks0), scheduler="sync")
        _same_bits(res[0], np.float64(value), f"{cid} value, chunks {chunks0}")
        for g, e in zip(res[1:], grads):
            _same_bits(g, e, f"{cid} gradient, chunks {chunks0}")

    prop()


def test_threaded_scheduler_and_multithreaded_kernels():
    case = BY_ID["cross_entropy-weighted-ignore"]
    rng = np.random.default_rng(3)
    args, kw = case.make(rng, F32)
    v0, g0 = case.fn(*args, **kw, return_grad=True)
    for nt in (1, 2):
        v, g = dask.compute(*_dask_call(case, args, kw, (1000, 2500, 2507), return_grad=True, n_threads=nt),
                            scheduler="threads")
        _same_bits(v, np.float64(v0), "value")
        _same_bits(g, g0, "gradient")


def test_target_gradient_and_broadcast_operands():
    """return_grad by name; a target broadcast along rows (split with the
    input) keeps its bits; a var given whole to every chunk has its
    gradient summed over the chunks (to rounding)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3001, 6))
    t = rng.standard_normal((3001, 6))
    v0, gx0, gt0 = fl.mse_loss(x, t, return_grad=("input", "target"))
    v, gx, gt = dask.compute(*fld.mse_loss(da.from_array(x, chunks=(1000, 6)), da.from_array(t, chunks=(700, 6)),
                                           return_grad=("input", "target")), scheduler="sync")
    _same_bits(v, np.float64(v0), "value")
    _same_bits(gx, gx0, "input gradient")
    _same_bits(gt, gt0, "target gradient")

    t1 = rng.standard_normal((3001, 1))
    var = rng.uniform(0.5, 2.0, 6)
    v0, gx0, gv0 = fl.gaussian_nll_loss(x, t1, var, return_grad=True)
    v, gx, gv = dask.compute(*fld.gaussian_nll_loss(da.from_array(x, chunks=(1000, 6)), t1, var,
                                                    return_grad=True), scheduler="sync")
    _same_bits(v, np.float64(v0), "value")
    _same_bits(gx, gx0, "input gradient")
    assert gv.shape == var.shape
    np.testing.assert_allclose(gv, gv0, rtol=1e-12)


def test_degenerate_shapes():
    for x, t in ((np.zeros(0), np.zeros(0)), (np.float64(1.5), np.float64(0.25)), (np.ones((0, 3)), np.ones((0, 3)))):
        for red in ("mean", "sum", "none"):
            e = fl.mse_loss(x, t, reduction=red, return_grad=True)
            X = da.from_array(x) if np.ndim(x) else da.from_array(np.asarray(x))
            g = dask.compute(*fld.mse_loss(X, t, reduction=red, return_grad=True), scheduler="sync")
            _same_bits(g[0], np.float64(e[0]) if red != "none" else e[0], f"{np.shape(x)} {red}")
            _same_bits(g[1], e[1], f"{np.shape(x)} {red} grad")
    # one sample of C classes (axis 0 holds the classes: one chunk)
    x, y = np.array([0.5, -1.0, 2.0]), np.array(2)
    v = fld.cross_entropy(da.from_array(x, chunks=1), y).compute(scheduler="sync")
    assert v == np.float64(fl.cross_entropy(x, y))


def test_value_of_none_and_numpy_operands():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3001, 7))
    y = rng.integers(0, 7, 3001)
    e = fl.cross_entropy(x, y, reduction="none")
    got = fld.cross_entropy(da.from_array(x, chunks=(1000, 7)), y, reduction="none")
    assert got.shape == (3001,) and got.chunks == ((1000, 1000, 1000, 1),)
    _same_bits(got.compute(scheduler="sync"), e, "per-row losses")
    # a NumPy input is taken as one dask array
    assert fld.cross_entropy(x, y).compute(scheduler="sync") == np.float64(fl.cross_entropy(x, y))


# ----------------------------------------------------------------- graph structure

def _graph(*collections):
    out = {}
    for c in collections:
        out.update(dict(c.__dask_graph__()))
    return out


def _task_names(graph):
    names = {}
    for k in graph:
        name = k[0] if isinstance(k, tuple) else k
        names.setdefault(str(name).rsplit("-", 1)[0], []).append(k)
    return names


def test_one_fused_task_per_chunk_serves_value_and_gradient():
    x = da.ones(40000, chunks=8192 * 2, dtype=F32)
    t = da.zeros(40000, chunks=8192 * 2, dtype=F32)
    v, g = fld.mse_loss(x, t, return_grad=True)
    graph = _graph(v, g)
    names = _task_names(graph)
    assert len(names.get("_main_task", [])) == 3, sorted(names)
    assert not any("rechunk" in n for n in names), "chunks on block boundaries were rechunked"
    assert g.chunks == x.chunks


def test_denominator_pass_reads_only_labels_and_weights():
    x = da.from_array(np.zeros((5000, 4)), chunks=(1000, 4), name="the-input")
    y = da.from_array(np.zeros(5000, np.int64), chunks=1000, name="the-labels")
    v, g = fld.cross_entropy(x, y, weight=np.ones(4), return_grad=True)
    graph = _graph(v, g)
    deps = {k: set(dask.core.get_dependencies(graph, k)) for k in graph}

    def upstream(k, seen=None):
        seen = set() if seen is None else seen
        for d in deps.get(k, ()):
            if d not in seen:
                seen.add(d)
                upstream(d, seen)
        return seen

    names = _task_names(graph)
    assert names.get("_denom_task"), sorted(names)
    for k in names["_denom_task"]:
        ups = {str(u[0] if isinstance(u, tuple) else u) for u in upstream(k)}
        assert not any(u.startswith("the-input") for u in ups), ups


def test_alignment():
    assert fld.alignment("mse_loss", np.zeros(10), np.zeros(10)) == 8192
    assert fld.alignment(fl.mse_loss, np.zeros((10, 1000)), np.zeros((10, 1000))) == 1024
    assert fld.alignment("cross_entropy", np.zeros((10, 7)), np.zeros(10, np.int64)) == 16384 // 7
    # bce with a pos_weight of 7 classes, tiled to 259: chunks start on both periods
    assert fld.alignment("binary_cross_entropy_with_logits", np.zeros((10, 7)), np.zeros((10, 7)),
                         pos_weight=np.ones(7)) == math.lcm(8192, 259) // 7


# ----------------------------------------------------------------- refusals and errors

def test_row_loss_split_along_the_class_axis_is_refused_or_rechunked():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3001, 10))
    y = rng.integers(0, 10, 3001)
    X = da.from_array(x, chunks=(1000, 5))
    with pytest.raises(ValueError, match=r"fastloss\.dask\.cross_entropy: input .*chunked along axis 1; this "
                                         r"loss reads whole rows .*rechunk=True"):
        fld.cross_entropy(X, y)
    v, g = dask.compute(*fld.cross_entropy(X, y, return_grad=True, rechunk=True), scheduler="sync")
    v0, g0 = fl.cross_entropy(x, y, return_grad=True)
    _same_bits(v, np.float64(v0), "value")
    _same_bits(g, g0, "gradient")


def test_argument_errors_are_raised_when_the_graph_is_built():
    x = da.zeros((100, 3), chunks=(30, 3))
    with pytest.raises(ValueError, match=r"fastloss\.dask\.mse_loss: target of shape \(99, 3\) does not match "
                                         r"the input's 100 along axis 0"):
        fld.mse_loss(x, da.zeros((99, 3)))
    with pytest.raises(ValueError, match=r"huber_loss: delta must be > 0"):
        fld.huber_loss(x, x, delta=-1.0)
    with pytest.raises(ValueError, match=r"mse_loss: target must have the same shape as input, got input: "
                                         r"\(1, 3\) and target: \(1, 4\) \(fastloss\.dask checks the shapes on "
                                         r"a slice of one index along axis 0 of input, whose shape is \(100, 3\)\)"):
        fld.mse_loss(x, da.zeros((100, 4)))
    with pytest.raises(TypeError, match=r"fastloss\.dask\.mse_loss: out= is not an argument of the Dask form"):
        fld.mse_loss(x, x, return_grad=True, out=np.zeros((100, 3)))
    with pytest.raises(TypeError, match=r"fastloss\.dask\.mse_loss: rechunk must be True or False, got 'yes'"):
        fld.mse_loss(x, x, rechunk="yes")
    with pytest.raises(TypeError, match=r"mse_loss: input must be a real \(float, integer or bool\) array, got "
                                        r"dtype object"):
        fld.mse_loss(object(), x)
    with pytest.raises(TypeError, match=r"fastloss\.dask\.mse_loss: missing a required argument: 'target'"):
        fld.mse_loss(x)


def test_data_errors_name_the_index_in_the_whole_array():
    y = np.zeros(5000, np.int64)
    y[4321] = 9
    x = da.zeros((5000, 4), chunks=(1000, 4))
    with pytest.raises(ValueError, match=r"cross_entropy: Target 9 is out of bounds \(target\[4321\] = 9, "
                                         r"n_classes = 4\)"):
        fld.cross_entropy(x, da.from_array(y, chunks=1000)).compute(scheduler="sync")
    with pytest.raises(ValueError, match=r"multi_margin_loss: Target 9 is out of bounds \(target\[4321\]"):
        fld.multi_margin_loss(x, da.from_array(y, chunks=1000)).compute(scheduler="sync")
    p = np.full((300, 2), 0.5)
    p[250, 1] = 1.5
    with pytest.raises(ValueError, match=r"binary_cross_entropy: all elements of input should be between 0 and 1, "
                                         r"got input\[250, 1\] = 1.5"):
        fld.binary_cross_entropy(da.from_array(p, chunks=(100, 2)), np.zeros((300, 2))).compute(scheduler="sync")


def test_check_looks_at_the_chunks_not_at_the_planning_call():
    """check=True: building the graph (a call on zeros) warns of nothing;
    a chunk whose data the check flags warns when it runs."""
    import warnings

    rng = np.random.default_rng(3)
    x, t = rng.uniform(1, 2, 20000), rng.uniform(1, 2, 20000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v = fld.mean_absolute_percentage_error(da.from_array(x, chunks=7000), da.from_array(t, chunks=7000),
                                               check=True)
        assert v.compute(scheduler="sync") == fl.mean_absolute_percentage_error(x, t)
    t[15000:] = 0.0
    v = fld.mean_absolute_percentage_error(da.from_array(x, chunks=7000), da.from_array(t, chunks=7000), check=True)
    with pytest.warns(fl.LossWarning, match="mean_absolute_percentage_error: target has"):
        v.compute(scheduler="sync")


def test_legacy_arguments_are_resolved_once():
    x = da.ones((100,), chunks=30)
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        v = fld.mse_loss(x, da.zeros(100, chunks=30), size_average=False)
    assert v.compute(scheduler="sync") == 100.0


def _run(code):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120)


def test_importing_fastloss_imports_neither_dask_nor_jax():
    p = _run("""
        import sys, fastloss
        import numpy as np
        fastloss.mse_loss(np.ones(3), np.zeros(3))
        fastloss.cross_entropy(np.ones((2, 3)), np.zeros(2, np.int64))
        bad = [m for m in ("dask", "distributed", "jax", "optax") if m in sys.modules]
        assert not bad, bad
    """)
    assert p.returncode == 0, p.stderr


def test_import_error_names_the_extra():
    p = _run("""
        import sys
        sys.modules["dask"] = None   # as if dask were not installed
        try:
            import fastloss.dask
        except ImportError as e:
            print(e)
    """)
    assert p.returncode == 0, p.stderr
    assert 'pip install "fastloss[dask]"' in p.stdout, p.stdout


# ----------------------------------------------------------------- split by sets, by samples, or gathered

def _compare(expected, got, reduction, what):
    expected = expected if isinstance(expected, tuple) else (expected,)
    got = got if isinstance(got, tuple) else (got,)
    assert len(got) == len(expected), what
    for k, (g, e) in enumerate(zip(got, expected)):
        if k == 0 and reduction != "none":
            assert np.asarray(g).dtype == np.float64, what
            e = np.float64(e)
        _same_bits(g, e, f"{what} {'value' if k == 0 else f'gradient {k}'}")


def _split0(a, chunks0, other=None):
    """A NumPy operand as a dask array chunked along axis 0 (others whole, or ``other``)."""
    return da.from_array(a, chunks=(chunks0,) + (other or tuple((s,) for s in a.shape[1:])))


def _random_chunks(rng, n, k):
    cuts = sorted(set(rng.integers(1, n, k).tolist()))
    return tuple(np.diff([0] + cuts + [n]).tolist())


def _names(*collections):
    return {str(k[0] if isinstance(k, tuple) else k).rsplit("-", 1)[0] for k in _graph(*collections)}


SETS = ["dice", "jaccard-per_image", "tversky", "bce_dice", "ce_dice"]


@pytest.mark.parametrize("cid", SETS)
def test_set_overlap_losses_split_along_the_images(cid):
    """Dice, Jaccard, Tversky, BCE+Dice, CE+Dice: every reduction, with and
    without gradients, float32 and float64, input and target chunked
    differently along the images (uneven, one image, random): the bits of
    one call; a first pass and a gradient pass per chunk, nothing gathered."""
    case = BY_ID[cid]
    rng = np.random.default_rng(zlib.crc32(cid.encode()))
    for dt in (F32, F64):
        args, kw = case.make(rng, dt)
        x, t = args
        n = x.shape[0]
        for reduction in case.reductions:
            for grad in (True, False) if dt is F32 else (True,):
                e = case.fn(x, t, **kw, reduction=reduction, return_grad=grad)
                for cx, ct in (((1, 2, n - 3), (n - 4, 4)), ((n,), (1,) * n),
                               (_random_chunks(rng, n, 3), _random_chunks(rng, n, 2))):
                    X, T = _split0(x, cx), _split0(t, ct)
                    res = getattr(fld, case.fn.__name__)(X, T, **kw, reduction=reduction, return_grad=grad)
                    _compare(e, dask.compute(*res, scheduler="sync") if grad else res.compute(scheduler="sync"),
                             reduction, f"{cid} {np.dtype(dt)} {reduction} chunks {cx}/{ct}")
                    if grad:
                        assert res[1].chunks == X.chunks
    X = _split0(x, (1, 2, n - 3))
    v, g = getattr(fld, case.fn.__name__)(X, t, **kw, return_grad=True)
    names = _names(v, g)
    assert "_sets_task" in names and "_gathered_task" not in names, names
    tasks = [k for k in _graph(v, g) if str(k[0] if isinstance(k, tuple) else k).startswith("_sets_task")]
    assert len(tasks) == 2 * 3  # the sums pass and the gradient pass of each chunk


def test_set_overlap_losses_many_groups_per_image():
    """Images of several blocks, grouped (the driver's partial sums, forced
    small so that a group spans blocks and an image several groups);
    ignore_index, class weights, gamma, per_image: the groups' sums added in
    the driver's order give the bits of one call for random chunkings."""
    from fastloss import _overlap

    rng = np.random.default_rng(11)
    N, C, H, W = 11, 3, 200, 160
    x = rng.standard_normal((N, C, H, W)).astype(F32)
    y = rng.integers(0, C, (N, H, W))
    y[3, :2] = -1
    m = (rng.random((N, 1, H, W)) > 0.5).astype(F32)
    old = _overlap.set_max_groups(20)
    try:
        assert _overlap.seg_groups(N, C, H * W) > 1
        calls = [(fl.dice_loss, (x, y), dict(mode="multiclass", ignore_index=-1, smooth=1.0)),
                 (fl.tversky_loss, (x, y), dict(mode="multiclass", per_image=True, weight=np.array([1.0, 2.0, 0.5]),
                                                alpha=0.3, beta=0.7, gamma=1.5, ignore_index=-1)),
                 (fl.ce_dice_loss, (x, y), dict(ignore_index=-1)),
                 (fl.bce_dice_loss, (x[:, :1], m), dict(per_image=True))]
        for fn, (a, b), kw in calls:
            for reduction in ("mean", "none"):
                e = fn(a, b, **kw, reduction=reduction, return_grad=True)
                for _ in range(2):
                    cx, ct = _random_chunks(rng, N, 3), _random_chunks(rng, N, 3)
                    res = getattr(fld, fn.__name__)(_split0(a, cx), _split0(b, ct), **kw, reduction=reduction,
                                                    return_grad=True)
                    _compare(e, dask.compute(*res, scheduler="sync"), reduction,
                             f"{fn.__name__} {reduction} chunks {cx}/{ct}")
    finally:
        _overlap.set_max_groups(old)


def test_set_overlap_losses_refuse_spatial_chunks_or_rechunk():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((6, 3, 8, 10))
    y = rng.integers(0, 3, (6, 8, 10))
    X = da.from_array(x, chunks=(2, 3, 4, 10))
    with pytest.raises(ValueError, match=r"fastloss\.dask\.dice_loss: input is chunked along axis 2; this loss reads "
                                         r"whole images .* split along the images \(axis 0\) "
                                         r"only: rechunk it \(\{2: -1\}\) or pass rechunk=True"):
        fld.dice_loss(X, y, mode="multiclass")
    with pytest.raises(ValueError, match=r"fastloss\.dask\.dice_loss: target is chunked along axis 1"):
        fld.dice_loss(da.from_array(x, chunks=(2, 3, 8, 10)), da.from_array(y, chunks=(3, 4, 10)), mode="multiclass")
    res = dask.compute(*fld.dice_loss(X, y, mode="multiclass", return_grad=True, rechunk=True), scheduler="sync")
    _compare(fl.dice_loss(x, y, mode="multiclass", return_grad=True), res, "mean", "rechunk=True")
    assert fld.dice_loss(X, y, mode="multiclass", return_grad=True, rechunk=True)[1].chunks == X.chunks


def test_set_overlap_errors():
    """Argument errors when the graph is built (checked on the first image);
    a bad label when the chunk runs, at its index in the whole batch."""
    y = np.zeros((6, 8, 10), np.int64)
    X = da.zeros((6, 3, 8, 10), chunks=(2, 3, 8, 10))
    with pytest.raises(ValueError, match=r"dice_loss: classes must be in \[0, 3\)"):
        fld.dice_loss(X, y, mode="multiclass", classes=[5])
    with pytest.raises(ValueError, match=r"tversky_loss: mode='multiclass' expects target of shape \(1, 8, 10\) "
                                         r".*fastloss\.dask checks the arguments on the first image of input"):
        fld.tversky_loss(X, np.zeros((6, 8, 9), np.int64), mode="multiclass")
    y[4, 3, 2] = 7
    with pytest.raises(ValueError, match=r"jaccard_loss: Target 7 is out of bounds \(target\[4, 3, 2\] = 7, "
                                         r"n_classes = 3\)"):
        fld.jaccard_loss(X, da.from_array(y, chunks=(2, 8, 10)), mode="multiclass").compute(scheduler="sync")


def _ctc_call(batch_first, dt, rng, N=13):
    from _loss_cases import _ctc
    (lp, tg, il, tl), kw = _ctc(40, N, 6, 8, batch_first=batch_first, from_logits=batch_first)(rng, dt)
    return lp, tg, il, tl, kw


@pytest.mark.parametrize("batch_first", [False, True], ids=["TNC", "NTC"])
def test_ctc_split_along_the_samples(batch_first):
    """CTC chunked along its samples (axis 1 of (T, N, C), axis 0
    batch-first), the padded targets, lengths and per-sample weights
    chunked their own way: the bits of one call, every reduction, with
    and without weights; the gradient chunked like log_probs."""
    rng = np.random.default_rng(13)
    b = 0 if batch_first else 1
    for dt in (F32, F64):
        lp, tg, il, tl, kw = _ctc_call(batch_first, dt, rng)
        n = lp.shape[b]
        w = rng.uniform(0, 2, n).astype(dt)
        w[3] = 0.0
        for extra in ({}, {"weight": w}):
            for reduction in ("mean", "sum", "none"):
                for grad in (True, False) if dt is F32 else (True,):
                    e = fl.ctc_loss(lp, tg, il, tl, **kw, **extra, reduction=reduction, return_grad=grad)
                    for cs in ((1, 2, n - 3), _random_chunks(rng, n, 3)):
                        LP = da.from_array(lp, chunks=tuple(cs if ax == b else (s,) for ax, s in enumerate(lp.shape)))
                        dx = {k: da.from_array(v, chunks=cs[::-1]) for k, v in extra.items()}
                        res = fld.ctc_loss(LP, _split0(tg, _random_chunks(rng, n, 2)), il,
                                           da.from_array(tl, chunks=4), **kw, **dx, reduction=reduction,
                                           return_grad=grad)
                        _compare(e, dask.compute(*res, scheduler="sync") if grad else res.compute(scheduler="sync"),
                                 reduction, f"ctc {np.dtype(dt)} {sorted(extra)} {reduction} chunks {cs}")
                        if grad:
                            assert res[1].chunks == LP.chunks
                            assert "_samples_task" in _names(*res)


def test_ctc_chunks_along_time_or_classes_are_refused_or_rechunked():
    rng = np.random.default_rng(14)
    lp, tg, il, tl, kw = _ctc_call(False, F64, rng)
    LP = da.from_array(lp, chunks=(10, 5, 6))
    with pytest.raises(ValueError, match=r"fastloss\.dask\.ctc_loss: log_probs or an operand split with it is "
                                         r"chunked along axis 0; this loss reads each sample's whole sequence and "
                                         r"is split along the samples \(axis 1 of log_probs\) only"):
        fld.ctc_loss(LP, tg, il, tl, **kw)
    with pytest.raises(ValueError, match=r"chunked along axis 2"):
        fld.ctc_loss(da.from_array(lp, chunks=(40, 5, 3)), tg, il, tl, **kw)
    res = fld.ctc_loss(LP, tg, il, tl, **kw, return_grad=True, rechunk=True)
    _compare(fl.ctc_loss(lp, tg, il, tl, **kw, return_grad=True), dask.compute(*res, scheduler="sync"), "mean",
             "rechunk=True")
    assert res[1].chunks == LP.chunks


def test_ctc_concatenated_targets_and_unbatched_input_run_gathered():
    rng = np.random.default_rng(15)
    lp, tg, il, tl, kw = _ctc_call(False, F64, rng)
    flat = np.concatenate([tg[i, :tl[i]] for i in range(len(tl))])
    LP = da.from_array(lp, chunks=(40, 4, 6))
    res = fld.ctc_loss(LP, flat, il, tl, **kw, return_grad=True)
    assert "_gathered_task" in _names(*res)
    _compare(fl.ctc_loss(lp, flat, il, tl, **kw, return_grad=True), dask.compute(*res, scheduler="sync"), "mean",
             "concatenated targets")
    assert res[1].chunks == LP.chunks
    one = fld.ctc_loss(da.from_array(lp[:, 1], chunks=(20, 6)), tg[1], il[1], tl[1], reduction="none")
    _same_bits(one.compute(scheduler="sync"), fl.ctc_loss(lp[:, 1], tg[1], il[1], tl[1], reduction="none"),
               "unbatched")


def test_ctc_errors_name_the_sample_in_the_whole_batch():
    rng = np.random.default_rng(16)
    lp, tg, il, tl, kw = _ctc_call(False, F64, rng)
    tg[9, 0] = 0
    LP = da.from_array(lp, chunks=(40, 4, 6))
    with pytest.raises(ValueError, match=r"ctc_loss: targets\[9, 0\] = 0 is the blank label"):
        fld.ctc_loss(LP, tg, il, tl).compute(scheduler="sync")
    il = il.copy()
    il[10] = 41
    with pytest.raises(ValueError, match=r"ctc_loss: input_lengths\[10\] = 41 is longer than the input's T = 40"):
        fld.ctc_loss(LP, np.ones_like(tg), da.from_array(il, chunks=4), tl).compute(scheduler="sync")


def _gathered_chunks(a, n0):
    """Uneven chunks along axis 0 (and halves along axis 1) of an operand."""
    if not isinstance(a, np.ndarray) or a.ndim == 0:
        return a
    n = a.shape[0]
    c0 = (1, 2, n - 3) if n > 3 else (n,)
    return da.from_array(a, chunks=(c0,) + tuple(((s + 1) // 2, s // 2) if s > 1 else (s,) for s in a.shape[1:]))


@pytest.mark.parametrize("case", [c for c in UNSPLIT if c.fn.__name__ in GATHERED], ids=repr)
def test_gathered_losses_give_the_bits_of_one_call(case):
    """The losses that need every element at once: one task on the whole
    operands (rechunked to one chunk), the same bits as one call for every
    reduction, the gradients chunked like their operands."""
    rng = np.random.default_rng(zlib.crc32(case.cid.encode()))
    for dt in (F32, F64):
        args, kw = case.make(rng, dt)
        kw = dict(kw, per_image=False) if "lovasz" in case.cid else kw  # per_image=True is split
        assert fld.strategy(case.fn, **kw) == "gathered"
        n0 = args[0].shape[0]
        dargs = tuple(_gathered_chunks(a, n0) for a in args)
        for reduction in case.reductions:
            e = case.fn(*args, **kw, reduction=reduction, return_grad=True)
            res = getattr(fld, case.fn.__name__)(*dargs, **kw, reduction=reduction, return_grad=True)
            names = _names(*res)
            assert "_gathered_task" in names and "_main_task" not in names, names
            tasks = [k for k in _graph(*res) if str(k[0] if isinstance(k, tuple) else k).startswith("_gathered_task")]
            assert len(tasks) == 1
            _compare(e, dask.compute(*res, scheduler="sync"), reduction, f"{case.cid} {np.dtype(dt)} {reduction}")
            grads = [a for a in dargs if isinstance(a, da.Array)][:len(res) - 1]
            for g, a in zip(res[1:], grads):
                if g.shape == a.shape:
                    assert g.chunks == a.chunks
            v = getattr(fld, case.fn.__name__)(*dargs, **kw, reduction=reduction)
            _compare(e[0], v.compute(scheduler="sync"), reduction, f"{case.cid} value only")


@pytest.mark.parametrize("kind", ["nonsaturating", "least_squares", "wasserstein", "hinge"])
def test_gan_discriminator_real_and_fake_split_on_their_own_chunks(kind):
    """Two driver calls over batches of their own lengths and chunkings,
    each split as a pointwise loss, the values added in the loss's order."""
    rng = np.random.default_rng(17)
    for dt in (F32, F64):
        real, fake = rng.standard_normal(20011).astype(dt), rng.standard_normal(9001).astype(dt)
        extra = {"real_weight": rng.uniform(0, 2, 20011).astype(dt)} if dt is F64 else {}
        if kind == "nonsaturating":
            extra["label_smoothing"] = 0.1
        R, Fk = da.from_array(real, chunks=(5000, 1, 15010)), da.from_array(fake, chunks=3000)
        dx = {k: (da.from_array(v, chunks=7000) if isinstance(v, np.ndarray) else v) for k, v in extra.items()}
        for reduction in ("mean", "sum"):
            e = fl.gan_discriminator_loss(real, fake, kind, **extra, reduction=reduction, return_grad=True)
            res = fld.gan_discriminator_loss(R, Fk, kind, **dx, reduction=reduction, return_grad=True)
            assert "_gathered_task" not in _names(*res)
            _compare(e, dask.compute(*res, scheduler="sync"), reduction, f"gan {kind} {np.dtype(dt)} {reduction}")
            assert res[1].chunks == R.chunks and res[2].chunks == Fk.chunks
            v = fld.gan_discriminator_loss(R, Fk, kind, **dx, reduction=reduction)
            _compare(e[0], v.compute(scheduler="sync"), reduction, "value only")


def test_vae_reconstruction_and_kl_split_on_their_own_chunks():
    rng = np.random.default_rng(19)
    for dt in (F32, F64):
        x, t = rng.standard_normal((3001, 9)).astype(dt), rng.random((3001, 9)).astype(dt)
        mu, lv = rng.standard_normal((3001, 3)).astype(dt), rng.standard_normal((3001, 3)).astype(dt)
        w = rng.uniform(0, 2, 3001).astype(dt)
        X, T, MU = _split0(x, (1000, 1000, 1001)), _split0(t, (999, 2002)), _split0(mu, (1, 500, 2500))
        for kw in ({}, {"weight": w}, {"recon": "mse", "beta": 0.3}):
            dkw = {k: (da.from_array(v, chunks=700) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
            for reduction in ("mean", "sum"):
                e = fl.vae_loss(x, t, mu, lv, **kw, reduction=reduction, return_grad=True)
                res = fld.vae_loss(X, T, MU, lv, **dkw, reduction=reduction, return_grad=True)
                assert "_gathered_task" not in _names(*res)
                _compare(e, dask.compute(*res, scheduler="sync"), reduction, f"vae {np.dtype(dt)} {kw} {reduction}")
                assert res[1].chunks == X.chunks and res[2].chunks == MU.chunks
        e = fl.vae_loss(x, t, mu, lv, return_grad=("logvar",))
        res = fld.vae_loss(X, T, MU, lv, return_grad=("logvar",))
        _compare(e, dask.compute(*res, scheduler="sync"), "mean", "vae, the logvar gradient alone")
    with pytest.raises(ValueError, match=r"vae_loss: input and mu must have the same batch size"):
        fld.vae_loss(X, T, MU[:5], lv[:5])
    with pytest.raises(ValueError, match=r"gan_discriminator_loss: kind must be one of"):
        fld.gan_discriminator_loss(X[:, 0], X[:, 1], kind="nope")


@pytest.mark.parametrize("fn", [fl.lovasz_hinge_loss, fl.lovasz_softmax_loss], ids=lambda f: f.__name__)
def test_lovasz_per_image_splits_along_the_images(fn):
    """With per_image=True every set is one image: each chunk sorts its own
    images' errors, with the whole batch's mean scale, and hands out its
    float64 per-image losses; without it the loss runs gathered."""
    rng = np.random.default_rng(20)
    N = 11
    for dt in (F32, F64):
        if fn is fl.lovasz_hinge_loss:
            a, b = rng.standard_normal((N, 1, 20, 30)).astype(dt), (rng.random((N, 1, 20, 30)) > 0.5).astype(dt)
            kw = {}
        else:
            a, b = rng.standard_normal((N, 4, 20, 30)).astype(dt), rng.integers(0, 4, (N, 20, 30))
            b[2, :3] = -1
            kw = dict(ignore_index=-1, weight=np.array([1.0, 2.0, 0.5, 1.0]))
        for reduction in ("mean", "sum", "none"):
            e = fn(a, b, **kw, per_image=True, reduction=reduction, return_grad=True)
            for ca, cb in (((1, 2, 8), (5, 6)), (_random_chunks(rng, N, 3), (N,))):
                A = _split0(a, ca)
                res = getattr(fld, fn.__name__)(A, _split0(b, cb), **kw, per_image=True, reduction=reduction,
                                                return_grad=True)
                names = _names(*res)
                assert "_samples_task" in names and "_gathered_task" not in names, names
                _compare(e, dask.compute(*res, scheduler="sync"), reduction,
                         f"{fn.__name__} {np.dtype(dt)} {reduction} chunks {ca}/{cb}")
                assert res[1].chunks == A.chunks
    res = getattr(fld, fn.__name__)(_split0(a, (5, 6)), b, **kw, return_grad=True)
    assert "_gathered_task" in _names(*res)
    _compare(fn(a, b, **kw, return_grad=True), dask.compute(*res, scheduler="sync"), "mean", "gathered")


def test_alignment_of_the_other_paths():
    x4, y3 = np.zeros((4, 3, 5, 5)), np.zeros((4, 5, 5), np.int64)
    assert fld.alignment("dice_loss", x4, y3, mode="multiclass") == 1
    assert fld.alignment("lovasz_softmax_loss", x4, y3, per_image=True) == 1
    with pytest.raises(TypeError, match=r"fastloss\.dask\.alignment: lovasz_softmax_loss runs gathered, as one "
                                        r"chunk \(its gradient sorts"):
        fld.alignment("lovasz_softmax_loss", x4, y3)
    with pytest.raises(TypeError, match=r"fastloss\.dask\.alignment: gan_discriminator_loss is split term by term"):
        fld.alignment("gan_discriminator_loss", np.zeros(5), np.zeros(3))


# ----------------------------------------------------------------- the RL losses from logits: split along the rows

def _rl_call(which, rng, dt, N, A, weighted=False, dual=None):
    """(fn, args, kw) of one RL logits call: ratios near 1, a share of them clipped."""
    z = (rng.standard_normal((N, A)) * 2).astype(dt)
    act = rng.integers(0, A, N)
    adv = rng.standard_normal(N).astype(dt)
    kw = {"entropy_coef": 0.01}
    if weighted:
        kw["weight"] = rng.uniform(0.5, 2.0, N).astype(dt)
    if which == "pg":
        return fl.policy_gradient_loss_from_logits, (z, act, adv), kw
    zz = z.astype(F64)
    lp = (zz - np.log(np.exp(zz).sum(1, keepdims=True)))[np.arange(N), act]
    old = (lp + rng.normal(0, 0.3, N)).astype(dt)
    kw.update(clip_eps=0.2, dual_clip=dual)
    return fl.ppo_clip_loss_from_logits, (z, act, old, adv), kw


@pytest.mark.parametrize("which", ["pg", "ppo"])
@pytest.mark.parametrize("dt", [F64, F32], ids=["float64", "float32"])
def test_rl_logits_losses_split_along_the_rows(which, dt):
    """policy_gradient_loss_from_logits and ppo_clip_loss_from_logits split
    along the rows as cross_entropy: chunks moved onto the row driver's
    blocks (16384 // A rows), every per-row operand (actions, advantages,
    old_log_probs, weight) chunked with them, one fused task per chunk; the
    value and the gradient are the single-machine call's bits for uneven
    and random chunkings, every reduction, with weights, the entropy bonus
    and the dual clip."""
    rng = np.random.default_rng(zlib.crc32(f"rl {which} {np.dtype(dt)}".encode()))
    N, A = 2500, 37                     # blocks of 442 rows: 6 blocks, the last one short
    for weighted, dual in ((False, None), (True, 3.0)):
        fn, args, kw = _rl_call(which, rng, dt, N, A, weighted, dual if which == "ppo" else None)
        assert fld.strategy(fn) == "split"
        assert fld.alignment(fn, *args, **kw) == 16384 // A
        if which == "ppo":
            st = {}
            fn(*args, **kw, stats=st)
            assert 0.05 < st["clip_fraction"] < 0.95  # both branches of the clip are taken
        chunkings = [_chunkings(N)["uneven"], _chunkings(N)["tiny"], _random_chunks(rng, N, 6),
                     _random_chunks(rng, N, 3)]
        seen = set()
        for reduction in ("mean", "sum", "none"):
            e = fn(*args, **kw, reduction=reduction, return_grad=True)
            for chunks0 in chunkings:
                dargs = tuple(_split0(a, chunks0) for a in args)
                dkw = {k: _split0(v, chunks0) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
                res = getattr(fld, fn.__name__)(*dargs, **dkw, reduction=reduction, return_grad=True)
                names = _names(*res)
                assert "_main_task" in names and "_gathered_task" not in names, names
                mains = [k for k in _graph(*res) if str(k[0] if isinstance(k, tuple) else k).startswith("_main_task")]
                assert len(mains) == len(fld._aligned(chunks0, N, 16384 // A))  # one task per aligned chunk
                seen.add(len(mains))
                what = f"{which} {np.dtype(dt)} {reduction} weight={weighted} dual={dual} chunks={chunks0}"
                _compare(e, dask.compute(*res, scheduler="sync"), reduction, what)
                if reduction != "none":
                    assert res[1].chunks[1] == (A,)
            v = getattr(fld, fn.__name__)(*dargs, **dkw, reduction=reduction)
            _compare(e[0], v.compute(scheduler="sync"), reduction, f"{which} value only")
        assert max(seen) >= 3, seen  # split for real: several chunks


def test_rl_logits_losses_with_stats_run_gathered_and_refuse_split_actions():
    rng = np.random.default_rng(16)
    N, A = 1200, 9
    fn, args, kw = _rl_call("ppo", rng, F64, N, A, True, 2.0)
    chunks0 = (100, 700, 400)
    dargs = tuple(_split0(a, chunks0) for a in args)
    dkw = dict(kw, weight=_split0(kw["weight"], chunks0))
    # stats= fills the caller's dict from one call's block sums: that call runs gathered
    assert fld.strategy(fn, stats={}) == fld.strategy("policy_gradient_loss_from_logits", stats={}) == "gathered"
    with pytest.raises(TypeError, match=r"fastloss\.dask\.alignment: ppo_clip_loss_from_logits runs gathered, "
                                        r"as one chunk \(stats= fills"):
        fld.alignment(fn, *args, **kw, stats={})
    res = fld.ppo_clip_loss_from_logits(*dargs, **dkw, stats={}, return_grad=True)
    assert "_gathered_task" in _names(*res) and "_main_task" not in _names(*res)
    _compare(fn(*args, **kw, return_grad=True), dask.compute(*res, scheduler="sync"), "mean", "ppo stats")
    # the action axis split: refused, or rechunked when asked
    X = da.from_array(args[0], chunks=(300, 5))
    with pytest.raises(ValueError, match=r"fastloss\.dask\.ppo_clip_loss_from_logits: logits .*chunked along "
                                         r"axis 1; this loss reads whole rows .*rechunk=True"):
        fld.ppo_clip_loss_from_logits(X, *dargs[1:], **dkw)
    res = fld.ppo_clip_loss_from_logits(X, *dargs[1:], **dkw, return_grad=True, rechunk=True)
    _compare(fn(*args, **kw, return_grad=True), dask.compute(*res, scheduler="sync"), "mean", "ppo rechunked")
    # a bad action is named by its index in the whole array
    act = args[1].copy()
    act[1000] = A
    with pytest.raises(ValueError, match=r"policy_gradient_loss_from_logits: actions\[1000\] = 9 is out of range "
                                         r"for 9 actions"):
        fld.policy_gradient_loss_from_logits(dargs[0], _split0(act, chunks0), dargs[3]).compute(scheduler="sync")


def test_strategy():
    assert fld.strategy("dice_loss") == fld.strategy(fl.ctc_loss) == fld.strategy("mse_loss") == "split"
    assert fld.strategy("vae_loss") == fld.strategy("gan_discriminator_loss") == "split"
    assert fld.strategy("trimmed") == fld.strategy(fl.nt_xent_loss) == "gathered"
    assert fld.strategy("lovasz_softmax_loss") == "gathered"
    assert fld.strategy("lovasz_softmax_loss", per_image=True) == "split"


# ----------------------------------------------------------------- a real cluster

@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    import dask.config

    with dask.config.set({"distributed.worker.daemon": False, "distributed.admin.tick.limit": "30s"}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address=None, protocol="tcp",
                                           silence_logs=40)
        c = distributed.Client(cluster)
        try:
            yield c
        finally:
            c.close()
            cluster.close()


@pytest.mark.parametrize("cid, chunking", [
    ("mse-weighted", "uneven"), ("cross_entropy-weighted-ignore", "uneven"), ("cross_entropy-spatial", "thirds"),
    ("bce_logits-pos_weight", "uneven"), ("gaussian-var-per-row", "tiny"), ("kl_div", "thirds"),
    ("softmax_focal", "uneven"),
])
def test_on_a_local_cluster(client, cid, chunking):
    case = BY_ID[cid]
    assert len(client.scheduler_info()["workers"]) == 2
    for reduction in case.reductions[:1] + ("none",):
        if reduction in case.reductions:
            _check(case, F32, reduction, True, chunking, scheduler=None)


def test_on_a_local_cluster_the_work_is_spread_and_errors_come_back(client):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((20000, 5)).astype(F32)
    y = rng.integers(0, 5, 20000)
    X, Y = da.from_array(x, chunks=(4000, 5)), da.from_array(y, chunks=4000)
    v, g = fld.cross_entropy(X, Y, return_grad=True, n_threads=1)
    fut_v, fut_g = client.compute([v, g])
    v, g = fut_v.result(), fut_g.result()
    v0, g0 = fl.cross_entropy(x, y, return_grad=True)
    _same_bits(v, np.float64(v0), "value")
    _same_bits(g, g0, "gradient")
    who = client.run(lambda dask_worker: len(dask_worker.data) + dask_worker.state.executed_count)
    assert len(who) == 2
    y[12345] = -3
    with pytest.raises(ValueError, match=r"Target -3 is out of bounds \(target\[12345\] = -3"):
        fld.cross_entropy(X, da.from_array(y, chunks=4000)).compute()


@pytest.mark.parametrize("what", ["dice", "ctc", "lovasz-per_image", "vae", "trimmed"])
def test_split_and_gathered_on_a_local_cluster(client, what):
    rng = np.random.default_rng(18)
    if what == "dice":
        x = rng.standard_normal((9, 3, 20, 30)).astype(F32)
        y = rng.integers(0, 3, (9, 20, 30))
        e = fl.tversky_loss(x, y, mode="multiclass", per_image=True, return_grad=True)
        res = fld.tversky_loss(_split0(x, (2, 4, 3)), _split0(y, (5, 4)), mode="multiclass", per_image=True,
                               return_grad=True, n_threads=1)
    elif what == "ctc":
        lp, tg, il, tl, kw = _ctc_call(False, F32, rng)
        w = rng.uniform(0, 2, 13).astype(F32)
        e = fl.ctc_loss(lp, tg, il, tl, **kw, weight=w, return_grad=True)
        res = fld.ctc_loss(da.from_array(lp, chunks=(40, (6, 7), 6)), tg, il, tl, **kw, weight=w, return_grad=True)
    elif what == "lovasz-per_image":
        x = rng.standard_normal((9, 3, 20, 30)).astype(F32)
        y = rng.integers(0, 3, (9, 20, 30))
        e = fl.lovasz_softmax_loss(x, y, per_image=True, return_grad=True)
        res = fld.lovasz_softmax_loss(_split0(x, (2, 4, 3)), y, per_image=True, return_grad=True)
    elif what == "vae":
        x, t = rng.standard_normal((3001, 9)).astype(F32), rng.random((3001, 9)).astype(F32)
        mu, lv = rng.standard_normal((3001, 3)).astype(F32), rng.standard_normal((3001, 3)).astype(F32)
        e = fl.vae_loss(x, t, mu, lv, return_grad=True)
        res = fld.vae_loss(_split0(x, (1000, 2001)), t, _split0(mu, (700, 2301)), lv, return_grad=True)
    else:
        x, t = rng.standard_normal(5001).astype(F32), rng.standard_normal(5001).astype(F32)
        e = fl.trimmed(x, t, fl.HuberLoss(), 0.1, return_grad=True)
        res = fld.trimmed(da.from_array(x, chunks=1000), da.from_array(t, chunks=1000), fl.HuberLoss(), 0.1,
                          return_grad=True)
    _compare(e, tuple(f.result() for f in client.compute(list(res))), "mean", what)


@pytest.mark.slow
def test_set_overlap_and_ctc_at_size_on_a_local_cluster(client, request):
    """A realistic size: 64 images of 4 classes at 256 x 256 (16.8 M
    float32 logits, the driver's groups spanning several blocks), and CTC
    over 512 samples of 200 steps; uneven chunks; the bits of one call."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("16.8 M logits on a LocalCluster: run with -m slow")
    rng = np.random.default_rng(21)
    x = rng.standard_normal((64, 4, 256, 256), dtype=F32)
    y = rng.integers(0, 4, (64, 256, 256)).astype(np.int32)
    for fn, kw in ((fld.dice_loss, dict(mode="multiclass")), (fld.ce_dice_loss, {}),
                   (fld.tversky_loss, dict(mode="multiclass", per_image=True, alpha=0.3, beta=0.7))):
        e = getattr(fl, fn.__name__)(x, y, **kw, return_grad=True)
        res = fn(_split0(x, (5, 30, 29)), _split0(y, (40, 24)), **kw, return_grad=True, n_threads=1)
        _compare(e, tuple(f.result() for f in client.compute(list(res))), "mean", fn.__name__)
    from _loss_cases import _ctc
    (lp, tg, il, tl), kw = _ctc(200, 512, 30, 40)(rng, F32)
    e = fl.ctc_loss(lp, tg, il, tl, **kw, return_grad=True)
    res = fld.ctc_loss(da.from_array(lp, chunks=(200, (100, 300, 112), 30)), tg, il, tl, **kw, return_grad=True,
                       n_threads=1)
    _compare(e, tuple(f.result() for f in client.compute(list(res))), "mean", "ctc")
