"""Hostile input: the cases of issue 10, each with its error message.

The fuzz harness (tests/test_fuzz.py) sweeps the same families over every
loss; these tests pin each rule down where it is implemented: the thread
cap, huge parameters, misaligned arrays, uint64 and sentinel labels, out=
and loss_out= rules, labels checked before anything is written, ragged
operands, and the adapters' error paths.
"""
import inspect
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastloss as fl
from fastloss._config import MAX_THREADS

ROW_FUNCS = ["cross_entropy", "nll_loss", "softmax_focal_loss", "multi_margin_loss", "poly1_cross_entropy"]
ROW_CLASSES = ["CrossEntropyLoss", "NLLLoss", "SoftmaxFocalLoss", "MultiMarginLoss", "Poly1CrossEntropyLoss"]


def _loss_functions():
    return [n for n in fl.__all__ if callable(getattr(fl, n)) and not isinstance(getattr(fl, n), type)
            and "return_grad" in inspect.signature(getattr(fl, n)).parameters]


def _loss_classes():
    return [n for n in fl.__all__ if isinstance(getattr(fl, n), type) and hasattr(getattr(fl, n), "value_and_grad")]


def _loss_out_classes():
    return [n for n in _loss_classes()
            if "loss_out" in inspect.signature(getattr(fl, n).value_and_grad).parameters]


def _valid_call(name, seed=1, size=8):
    """A valid call of a public loss, from the example it declares."""
    gen = getattr(fl, name)._examples
    for s in range(seed, seed + 50):
        ex = gen(np.random.default_rng(s), np.float64, size)
        x = next(a for a in ex.args.values() if isinstance(a, np.ndarray))
        if x.ndim and x.size:
            return ex
    raise AssertionError(name)


def _misaligned(a):
    buf = np.zeros(a.nbytes + a.dtype.itemsize + 1, np.uint8)
    m = np.frombuffer(buf, a.dtype, count=a.size, offset=1).reshape(a.shape)
    m[...] = a
    assert not m.flags.aligned and m.flags.c_contiguous
    return m


# ---------------------------------------------------------------- n_threads cap

def test_thread_cap_value():
    assert MAX_THREADS == min(max(64, 4 * (os.cpu_count() or 1)), fl._config._pointwise.thread_limit())
    assert fl.show_config(file=False)["max_n_threads"] == MAX_THREADS


@pytest.mark.parametrize("n", [MAX_THREADS + 1, 10 ** 6, 2 ** 31, 2 ** 70])
@pytest.mark.parametrize("name", sorted(_loss_functions()))
def test_thread_cap_every_function(name, n):
    ex = _valid_call(name)
    with pytest.raises(ValueError, match=rf"{name}: n_threads must be at most {MAX_THREADS}.*got {n}"):
        getattr(fl, name)(**ex.args, n_threads=n)


@pytest.mark.parametrize("name", sorted(_loss_classes()))
def test_thread_cap_every_class(name):
    init, _ = _split(name, _valid_call(_fn_of(name)).args)  # (Trimmed needs its loss)
    with pytest.raises(ValueError, match=rf"{name}: n_threads must be at most {MAX_THREADS}"):
        getattr(fl, name)(**init, n_threads=2 ** 31)


def test_thread_cap_set_num_threads():
    with pytest.raises(ValueError, match=rf"set_num_threads: n_threads must be at most {MAX_THREADS} .*got 2147483648"):
        fl.set_num_threads(2 ** 31)
    assert fl.get_num_threads() <= MAX_THREADS  # the failed call left the default alone
    fl.set_num_threads(MAX_THREADS)
    try:
        assert fl.get_num_threads() == MAX_THREADS
    finally:
        fl.set_num_threads(None)


def test_thread_cap_reached_on_the_parallel_path():
    # the crash of the issue: 70,000 elements take the parallel path
    x = np.linspace(-1, 1, 70_000)
    v1 = fl.mse_loss(x, 0 * x, return_grad=True, n_threads=1)
    vm = fl.mse_loss(x, 0 * x, return_grad=True, n_threads=MAX_THREADS)
    assert v1[0] == vm[0] and np.array_equal(v1[1], vm[1])
    with pytest.raises(ValueError, match="n_threads"):
        fl.mse_loss(x, 0 * x, n_threads=10 ** 6)


def _run_py(code, **env):
    e = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, timeout=120)


def test_omp_thread_limit_lowers_the_cap():
    p = _run_py("import fastloss as fl; from fastloss._config import MAX_THREADS as M; print(M); "
                "fl.mse_loss([1.0], [0.0], n_threads=3)\n"
                "try:\n fl.mse_loss([1.0], [0.0], n_threads=4)\nexcept ValueError as e: print(e)",
                OMP_THREAD_LIMIT="3")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == "3"
    assert "n_threads must be at most 3" in p.stdout


def test_huge_omp_num_threads_default_is_capped():
    p = _run_py("import numpy as np, fastloss as fl; print(fl.get_num_threads()); "
                "x = np.ones(70000); print(fl.mse_loss(x, 0 * x))", OMP_NUM_THREADS="100000")
    assert p.returncode == 0, p.stderr
    n, v = p.stdout.split()
    assert int(n) == MAX_THREADS and float(v) == 1.0


@pytest.mark.parametrize("bad,exc", [(0, ValueError), (-3, ValueError), (1.5, TypeError), ("2", TypeError),
                                     (True, TypeError), (np.bool_(True), TypeError)])
def test_set_num_threads_bad(bad, exc):
    with pytest.raises(exc, match="set_num_threads: n_threads"):
        fl.set_num_threads(bad)


# ---------------------------------------------------------------- huge parameters

def _float_params(fn):
    return [p.name for p in inspect.signature(fn).parameters.values()
            if isinstance(p.default, float) and not isinstance(p.default, bool)]


_FLOAT_PARAM_CASES = [(n, p) for n in sorted(_loss_functions()) for p in _float_params(getattr(fl, n))]


@pytest.mark.parametrize("name,param", _FLOAT_PARAM_CASES)
@pytest.mark.parametrize("value", [10 ** 400, -10 ** 400, 10 ** 5000], ids=["1e400", "-1e400", "1e5000"])
def test_int_beyond_float_range_names_the_parameter(name, param, value):
    ex = _valid_call(name)
    with pytest.raises(ValueError, match=rf"{name}: {param} must be a real number within float64's range"):
        getattr(fl, name)(**dict(ex.args, **{param: value}))


@pytest.mark.parametrize("name,param", _FLOAT_PARAM_CASES)
@pytest.mark.parametrize("value", [2 ** 31, 2 ** 70, -2 ** 63])
def test_large_int_parameters_never_overflow(name, param, value):
    ex = _valid_call(name)
    try:
        getattr(fl, name)(**dict(ex.args, **{param: value}), return_grad=True)
    except ValueError as exc:
        assert param in str(exc)


def test_float_params_cover_the_issue():
    params = {p for _, p in _FLOAT_PARAM_CASES}
    assert {"delta", "beta", "quantile", "eps", "alpha", "gamma", "label_smoothing", "margin", "epsilon"} <= params


# ---------------------------------------------------------------- misaligned arrays

@pytest.mark.parametrize("name", sorted(_loss_functions()))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_misaligned_operands_are_copied(name, dtype):
    ex = getattr(fl, name)._examples(np.random.default_rng(3), np.dtype(dtype), 12)
    fn = getattr(fl, name)
    ref = fn(**ex.args, return_grad=True)
    for k, a in ex.args.items():
        if not isinstance(a, np.ndarray) or a.size == 0 or a.dtype.itemsize == 1:
            continue
        got = fn(**dict(ex.args, **{k: _misaligned(a)}), return_grad=True)
        for r, g in zip(ref, got):
            np.testing.assert_array_equal(r, g, err_msg=f"{name}: misaligned {k}")


def test_misaligned_labels_read_as_a_copy():
    x = np.random.default_rng(0).standard_normal((6, 4))
    y = np.array([0, 3, 1, 2, 2, 0])
    assert fl.cross_entropy(x, _misaligned(y)) == fl.cross_entropy(x, y)
    assert fl.cross_entropy(x, _misaligned(y.astype(np.int32))) == fl.cross_entropy(x, y)


@pytest.mark.parametrize("name", ["mse_loss", "huber_loss", "cross_entropy", "multi_margin_loss",
                                  "gaussian_nll_loss"])
def test_misaligned_out_is_refused(name):
    ex = _valid_call(name)
    g = getattr(fl, name)(**ex.args, return_grad=True)[1]
    with pytest.raises(ValueError, match=rf"{name}: out must be aligned to its dtype \(8 bytes\), got a misaligned"):
        getattr(fl, name)(**ex.args, return_grad=True, out=_misaligned(np.zeros_like(g)))


@pytest.mark.parametrize("cls", ["MSELoss", "CrossEntropyLoss"])
def test_misaligned_hess_and_loss_out_are_refused(cls):
    x = np.random.default_rng(0).standard_normal((4, 3))
    y = np.array([0, 1, 2, 1]) if cls == "CrossEntropyLoss" else np.zeros((4, 3))
    items = (4,) if cls == "CrossEntropyLoss" else (4, 3)
    loss = getattr(fl, cls)()
    with pytest.raises(ValueError, match="hess_out must be aligned"):
        loss.grad_hess(x, y, out=(np.zeros_like(x), _misaligned(np.zeros_like(x))))
    with pytest.raises(ValueError, match="loss_out must be aligned"):
        getattr(fl, cls)(reduction="none").value_and_grad(x, y, loss_out=_misaligned(np.zeros(items)))


# ---------------------------------------------------------------- labels

@pytest.mark.parametrize("name", ROW_FUNCS)
@pytest.mark.parametrize("big", [2 ** 64 - 100, 2 ** 64 - 1, 2 ** 63])
def test_uint64_labels_beyond_int64_are_refused(name, big):
    x = np.zeros((4, 5))
    y = np.array([0, big, 2, 3], np.uint64)
    with pytest.raises(ValueError, match=rf"{name}: Target {big} is out of bounds \(target\[1\] = {big} "
                                         r"does not fit in int64\)"):
        getattr(fl, name)(x, y)


@pytest.mark.parametrize("name", ROW_FUNCS)
def test_uint64_labels_in_range_are_read(name):
    x = np.random.default_rng(1).standard_normal((4, 5))
    y = np.array([0, 4, 2, 3])
    assert getattr(fl, name)(x, y.astype(np.uint64)) == getattr(fl, name)(x, y)


@pytest.mark.parametrize("name", ROW_FUNCS)
def test_int64_min_label_is_out_of_bounds(name):
    x = np.zeros((4, 5))
    with pytest.raises(ValueError, match=rf"{name}: Target -9223372036854775808 is out of bounds"):
        getattr(fl, name)(x, np.array([0, -2 ** 63, 2, 3]))


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss", "softmax_focal_loss", "poly1_cross_entropy"])
def test_ignore_index_int64_min_is_legal(name):
    x = np.random.default_rng(2).standard_normal((4, 5))
    y = np.array([0, -2 ** 63, 2, 3])
    v, g = getattr(fl, name)(x, y, ignore_index=-2 ** 63, reduction="sum", return_grad=True)
    keep = [0, 2, 3]
    v2, g2 = getattr(fl, name)(x[keep], y[keep], reduction="sum", return_grad=True)
    assert v == pytest.approx(v2, rel=1e-14)
    assert np.all(g[1] == 0) and np.allclose(g[keep], g2, rtol=1e-14)
    with pytest.raises(ValueError, match="ignore_index must fit in int64, got -9223372036854775809"):
        getattr(fl, name)(x, y, ignore_index=-2 ** 63 - 1)


@pytest.mark.parametrize("name", ROW_FUNCS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(6, 5), (2, 5, 3), (6, 300)])
def test_bad_label_leaves_out_untouched(name, reduction, shape):
    if name == "multi_margin_loss" and len(shape) > 2:
        return
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape).astype(np.float32)
    items = (shape[0],) + shape[2:]
    y = rng.integers(0, shape[1], items)
    y.reshape(-1)[-1] = shape[1] + 7  # the last item: found late by a kernel pass
    out = np.full(shape, 7.0, np.float32)
    with pytest.raises(ValueError, match=rf"Target {shape[1] + 7} is out of bounds"):
        getattr(fl, name)(x, y, reduction=reduction, return_grad=True, out=out)
    assert np.all(out == 7.0)


@pytest.mark.parametrize("cls", ROW_CLASSES)
def test_bad_label_leaves_loss_out_and_hess_out_untouched(cls):
    x = np.random.default_rng(5).standard_normal((6, 4))
    y = np.array([0, 1, 2, 3, 1, 9])
    g, h, lo = np.full_like(x, 7.0), np.full_like(x, 7.0), np.full(6, 7.0)
    with pytest.raises(ValueError, match="Target 9"):
        getattr(fl, cls)(reduction="none").value_and_grad(x, y, out=g, loss_out=lo)
    with pytest.raises(ValueError, match="Target 9"):
        getattr(fl, cls)().grad_hess(x, y, out=(g, h))
    assert np.all(g == 7.0) and np.all(h == 7.0) and np.all(lo == 7.0)


# ---------------------------------------------------------------- out= and loss_out= rules

@pytest.mark.parametrize("name", sorted(_loss_functions()))
def test_out_without_return_grad_is_refused(name):
    ex = _valid_call(name)
    g = getattr(fl, name)(**ex.args, return_grad=True)[1]
    with pytest.raises(ValueError, match=rf"{name}: out= is the gradient(?:'s|s') buffers?; pass return_grad=True with it"):
        getattr(fl, name)(**ex.args, out=np.zeros_like(g))


@pytest.mark.parametrize("cls", sorted(_loss_out_classes()))
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_loss_out_needs_reduction_none(cls, reduction):
    name = cls
    ex = _valid_call(getattr(fl, cls)._examples and _fn_of(cls))
    args = dict(ex.args, reduction=reduction)
    init, call = _split(cls, args)
    with pytest.raises(ValueError, match=rf"{name}|{_fn_of(cls)}: loss_out is the buffer of the per-"):
        getattr(fl, cls)(**init).value_and_grad(**call, loss_out=np.zeros(3))


@pytest.mark.parametrize("cls", sorted(_loss_out_classes()))
@pytest.mark.parametrize("bad", [[0.0, 0.0], "buf", 3.0])
def test_loss_out_must_be_an_ndarray(cls, bad):
    ex = _valid_call(_fn_of(cls))
    init, call = _split(cls, dict(ex.args, reduction="none"))
    with pytest.raises(ValueError, match=r"loss_out must be a numpy.ndarray, got (list|str|float)"):
        getattr(fl, cls)(**init).value_and_grad(**call, loss_out=bad)


def _fn_of(cls):
    gen = getattr(fl, cls)._examples
    for n in _loss_functions():
        if getattr(getattr(fl, n), "_examples", None) is gen:
            return n
    raise AssertionError(cls)


def _split(cls, args):
    c = getattr(fl, cls)
    call = inspect.signature(c.value_and_grad).parameters
    init = inspect.signature(c.__init__).parameters
    return ({k: v for k, v in args.items() if k not in call and k in init},
            {k: v for k, v in args.items() if k in call})


# ---------------------------------------------------------------- ragged operands

@pytest.mark.parametrize("call,name", [
    (lambda: fl.mse_loss(np.zeros((2, 2)), np.zeros((2, 2)), weight=[[1.0, 2.0], [3.0]]), "weight"),
    (lambda: fl.mse_loss([[1.0, 2.0], [3.0]], np.zeros((2, 2))), "input"),
    (lambda: fl.mse_loss(np.zeros((2, 2)), [[1.0, 2.0], [3.0]]), "target"),
    (lambda: fl.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), weight=[1.0, [2.0, 3.0]]), "weight"),
    (lambda: fl.cross_entropy(np.zeros((2, 3)), [[0], [1, 2]]), "target"),
    (lambda: fl.binary_cross_entropy_with_logits(np.zeros((2, 2)), np.zeros((2, 2)), pos_weight=[1.0, [2.0]]),
     "pos_weight"),
    (lambda: fl.gaussian_nll_loss(np.zeros(2), np.zeros(2), [[1.0], [1.0, 2.0]]), "var"),
])
def test_ragged_operand_is_a_type_error_naming_it(call, name):
    with pytest.raises(TypeError, match=rf": {name} must be array-like \(a regular, non-ragged nesting"):
        call()


# ---------------------------------------------------------------- adapters

@pytest.mark.parametrize("mod", ["xgboost", "lightgbm"])
def test_boosting_adapters_thread_cap(mod):
    pytest.importorskip(mod)
    import importlib

    m = importlib.import_module(f"fastloss.{mod}")
    with pytest.raises(ValueError, match=rf"HuberLoss: n_threads must be at most {MAX_THREADS}"):
        m.objective("huber_loss", n_threads=2 ** 31)
    with pytest.raises(ValueError, match="n_threads must be at most"):
        m.metric(fl.HuberLoss, n_threads=10 ** 6)


# ---------------------------------------------------------------- fastloss.torch

def test_torch_thread_cap():
    torch = pytest.importorskip("torch")
    import fastloss.torch as flt

    x, t = torch.randn(5, requires_grad=True), torch.randn(5)
    with pytest.raises(ValueError, match=rf"mse_loss: n_threads must be at most {MAX_THREADS}"):
        flt.mse_loss(x, t, n_threads=2 ** 31)
    with pytest.raises(ValueError, match=rf"MSELoss: n_threads must be at most {MAX_THREADS}"):
        flt.MSELoss(n_threads=10 ** 6)
    with pytest.raises(ValueError, match="CrossEntropyLoss: n_threads must be at most"):
        flt.CrossEntropyLoss(n_threads=MAX_THREADS + 1)


@pytest.mark.parametrize("which", ["input", "target"])
@pytest.mark.parametrize("bad", [[0.5, 1.0, -1.0], (0.5, 1.0, -1.0), 0.5])
def test_torch_non_tensor_operands(which, bad):
    torch = pytest.importorskip("torch")
    import fastloss.torch as flt

    x, t = torch.randn(3, requires_grad=True), torch.randn(3)
    args = {"input": x, "target": t, which: bad}
    if which == "target" and isinstance(bad, float):
        # a number is a legal operand past the input (var: Tensor | float); the shape check names it
        with pytest.raises(ValueError, match=r"mse_loss: target must have the same shape as input"):
            flt.mse_loss(args["input"], args["target"])
        return
    also = "" if which == "input" else " or a number"
    with pytest.raises(TypeError, match=rf"fastloss.torch.mse_loss: {which} must be a torch.Tensor{also}, "
                                        rf"got {type(bad).__name__}"):
        flt.mse_loss(args["input"], args["target"])
    with pytest.raises(TypeError, match=rf"fastloss.torch.MSELoss: {which} must be a torch.Tensor"):
        flt.MSELoss()(args["input"], args["target"])


@pytest.mark.parametrize("which", ["input", "target"])
def test_torch_sparse_tensors(which):
    torch = pytest.importorskip("torch")
    import fastloss.torch as flt

    x, t = torch.randn(3, 2), torch.randn(3, 2)
    args = {"input": x, "target": t}
    args[which] = args[which].to_sparse()
    with pytest.raises(TypeError, match=rf"fastloss.torch.mse_loss: {which} is a sparse tensor "
                                        r"\(layout torch.sparse_coo\); fastloss takes dense tensors"):
        flt.mse_loss(args["input"], args["target"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (sparse CSR is a beta feature: PyTorch warns)
        args[which] = args[which].to_dense().to_sparse_csr()
    with pytest.raises(TypeError, match=rf"{which} is a sparse tensor \(layout torch.sparse_csr\)"):
        flt.mse_loss(args["input"], args["target"])


@pytest.mark.parametrize("tdtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("loss", ["mse_loss", "l1_loss", "binary_cross_entropy_with_logits", "smooth_l1_loss"])
def test_torch_low_precision_target_promoted_as_pytorch(loss, tdtype):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    import fastloss.torch as flt

    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, generator=g, requires_grad=True)
    t = torch.rand(6, 3, generator=g).to(getattr(torch, tdtype))
    ours = getattr(flt, loss)(x, t)
    # (PyTorch's binary_cross_entropy_with_logits returns the *target's*
    # dtype for a bfloat16/float16 target, a quirk of its type promotion;
    # fastloss keeps the input's float32, compared with the float32 target)
    theirs = getattr(F, loss)(x, t.float() if "logits" in loss else t)
    assert ours.dtype == theirs.dtype == torch.float32
    torch.testing.assert_close(ours, theirs)
    ours.backward()
    g1 = x.grad.clone()
    x.grad = None
    theirs.backward()
    torch.testing.assert_close(g1, x.grad)


def test_torch_quantized_target():
    torch = pytest.importorskip("torch")
    import warnings

    import fastloss.torch as flt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = torch.quantize_per_tensor(torch.ones(4), 0.1, 0, torch.quint8)
    with pytest.raises(TypeError, match=r"fastloss.torch.mse_loss: target is a quantized tensor \(torch.quint8\)"):
        flt.mse_loss(torch.randn(4, requires_grad=True), q)


# ---------------------------------------------------------------- domain errors found in the kernel's pass

@pytest.mark.parametrize("name,make", [
    ("binary_cross_entropy", lambda x: (np.where(np.arange(x.size) == x.size - 1, 1.5, 0.5), np.ones(x.size))),
    ("hinge_loss", lambda x: (x, np.where(np.arange(x.size) == x.size - 1, 0.5, 1.0))),
    ("squared_hinge_loss", lambda x: (x, np.where(np.arange(x.size) == x.size - 1, 0.5, 1.0))),
])
def test_domain_error_out_unspecified_but_nothing_outside(name, make):
    # documented: after a domain error the contents of out= are unspecified;
    # what is promised is the error and no write outside the buffer
    n = 70_000
    x, y = make(np.linspace(-1, 1, n))
    big = np.full(n + 32, 5.0)
    out = big[16:16 + n]
    with pytest.raises(ValueError, match=rf"{name}: .*\[{n - 1}\]"):
        getattr(fl, name)(x, y, return_grad=True, out=out, n_threads=2)
    assert np.all(big[:16] == 5.0) and np.all(big[16 + n:] == 5.0)
    assert "unspecified" in getattr(fl, name).__doc__


def test_gaussian_negative_var_out_unspecified_but_nothing_outside():
    n = 1000
    var = np.ones(n)
    var[-1] = -1.0
    big = np.full(n + 32, 5.0)
    with pytest.raises(ValueError, match=rf"gaussian_nll_loss: var has negative entries, got var\[{n - 1}\] = -1.0"):
        fl.gaussian_nll_loss(np.zeros(n), np.zeros(n), var, return_grad=True, out=big[16:16 + n])
    assert np.all(big[:16] == 5.0) and np.all(big[16 + n:] == 5.0)


@pytest.mark.parametrize("name", ROW_FUNCS)
def test_row_docstrings_promise_out_untouched(name):
    assert "out is untouched" in " ".join(getattr(fl, name).__doc__.split())
