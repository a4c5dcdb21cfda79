"""Every bad input gets its error: the exception type, and a message that
names the offending argument (and, where it applies, the index and value,
or the allowed values).  NaN in the data is never an error: it propagates.
"""
import functools
import re
import subprocess
import sys

import numpy as np
import pytest

import fastloss as fl

F64 = np.float64

# name -> (function, class, callable(fn, x, y, **kw) adding the required extra operands)
FUNCS = {
    "mse_loss": fl.mse_loss,
    "l1_loss": fl.l1_loss,
    "huber_loss": fl.huber_loss,
    "smooth_l1_loss": fl.smooth_l1_loss,
    "log_cosh_loss": fl.log_cosh_loss,
    "quantile_loss": fl.quantile_loss,
    "poisson_nll_loss": fl.poisson_nll_loss,
    "gaussian_nll_loss": fl.gaussian_nll_loss,
    "binary_cross_entropy": fl.binary_cross_entropy,
    "binary_cross_entropy_with_logits": fl.binary_cross_entropy_with_logits,
    "sigmoid_focal_loss": fl.sigmoid_focal_loss,
    "hinge_loss": fl.hinge_loss,
    "squared_hinge_loss": fl.squared_hinge_loss,
    "soft_margin_loss": fl.soft_margin_loss,
}
CLASSES = {
    "mse_loss": fl.MSELoss,
    "l1_loss": fl.L1Loss,
    "huber_loss": fl.HuberLoss,
    "smooth_l1_loss": fl.SmoothL1Loss,
    "log_cosh_loss": fl.LogCoshLoss,
    "quantile_loss": fl.QuantileLoss,
    "poisson_nll_loss": fl.PoissonNLLLoss,
    "gaussian_nll_loss": fl.GaussianNLLLoss,
    "binary_cross_entropy": fl.BCELoss,
    "binary_cross_entropy_with_logits": fl.BCEWithLogitsLoss,
    "sigmoid_focal_loss": fl.SigmoidFocalLoss,
    "hinge_loss": fl.HingeLoss,
    "squared_hinge_loss": fl.SquaredHingeLoss,
    "soft_margin_loss": fl.SoftMarginLoss,
}
NAMES = list(FUNCS)


@functools.lru_cache(maxsize=None)
def _gaussian_grad_hess_crashes():
    """Whether GaussianNLLLoss.grad_hess kills the process once its kernel runs (probed once, in a
    subprocess): the calls below that reach the kernel fail instead of ending the session.
    test_api_contract.py::test_gaussian_grad_hess_does_not_crash reports the crash itself."""
    code = ("import numpy as np, fastloss as fl\n"
            "fl.GaussianNLLLoss().grad_hess(np.ones(3), np.zeros(3), np.ones(3))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    return p.returncode != 0


def _guard_gaussian_grad_hess():
    if _gaussian_grad_hess_crashes():
        pytest.fail("GaussianNLLLoss.grad_hess crashes the interpreter; not called")


def good_data(name, shape, dtype=F64):
    """Valid (input, target) of a shape for loss `name`."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape)
    y = rng.standard_normal(shape)
    if name == "binary_cross_entropy":
        x = rng.uniform(0.05, 0.95, shape)
        y = rng.uniform(0.0, 1.0, shape)
    elif name in ("binary_cross_entropy_with_logits", "sigmoid_focal_loss"):
        y = rng.uniform(0.0, 1.0, shape)
    elif name in ("hinge_loss", "squared_hinge_loss", "soft_margin_loss"):
        y = rng.choice([-1.0, 1.0], shape)
    elif name == "poisson_nll_loss":
        y = rng.poisson(2.0, shape).astype(F64)
    return np.asarray(x, dtype), np.asarray(y, dtype)


def fcall(name, x, y, **kw):
    """Call function `name`, giving gaussian_nll_loss a valid var of input's shape."""
    if name == "gaussian_nll_loss" and "var" not in kw:
        kw["var"] = np.full(np.shape(x), 0.5)
    if name == "gaussian_nll_loss":
        var = kw.pop("var")
        return fl.gaussian_nll_loss(x, y, var, **kw)
    return FUNCS[name](x, y, **kw)


def ocall(name, method, x, y, ctor=None, **kw):
    """Call method `method` ("__call__", "value_and_grad", "grad_hess") of class `name`."""
    obj = CLASSES[name](**(ctor or {}))
    m = getattr(obj, method)
    if name == "gaussian_nll_loss":
        var = kw.pop("var", np.full(np.shape(x), 0.5))
        return m(x, y, var, **kw)
    return m(x, y, **kw)


# ---------------------------------------------------------------- shapes

SHAPE_PAIRS = [((3,), (4,)), ((2, 3), (3,)), ((3, 1), (3,)), ((3,), ()), ((3,), (1,)), ((2, 3), (3, 2))]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("xs,ys", SHAPE_PAIRS, ids=[f"{a}-{b}" for a, b in SHAPE_PAIRS])
def test_shape_mismatch_function(name, xs, ys):
    x, _ = good_data(name, xs)
    _, y = good_data(name, ys)
    if name == "gaussian_nll_loss" and _broadcasts(ys, xs):
        # PyTorch's gaussian_nll_loss broadcasts its target: so does fastloss's (one copy)
        for kw in ({}, {"reduction": "none"}):
            np.testing.assert_array_equal(fcall(name, x, y, **kw),
                                          fcall(name, x, np.broadcast_to(y, np.shape(x)).copy(), **kw))
        return
    for kw in ({}, {"return_grad": True}, {"reduction": "none"}):
        with pytest.raises(ValueError, match="target") as ei:
            fcall(name, x, y, **kw)
        msg = str(ei.value)
        assert str(xs) in msg and str(ys) in msg, msg
        assert name in msg, msg


def _broadcasts(ys, xs):
    try:
        return np.broadcast_shapes(ys, xs) == tuple(xs)
    except ValueError:
        return False


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("method", ["__call__", "value_and_grad", "grad_hess"])
def test_shape_mismatch_class(name, method):
    x, _ = good_data(name, (2, 3))
    _, y = good_data(name, (3,) if name != "gaussian_nll_loss" else (3, 2))
    with pytest.raises(ValueError, match="target") as ei:
        ocall(name, method, x, y)
    msg = str(ei.value)
    assert "(2, 3)" in msg and str(np.shape(y)) in msg, msg


def test_shape_mismatch_never_broadcasts_lists():
    with pytest.raises(ValueError, match=re.escape("(3,)")):
        fl.mse_loss([1.0, 2.0, 3.0], [1.0])
    with pytest.raises(ValueError, match="target"):
        fl.mse_loss([[1.0, 2.0, 3.0]], [1.0, 2.0, 3.0])


# ---------------------------------------------------------------- dtypes

@pytest.mark.parametrize("name", NAMES)
def test_complex_input_and_target_type_error(name):
    x, y = good_data(name, (4,))
    with pytest.raises(TypeError, match="input"):
        fcall(name, x.astype(np.complex128), y)
    with pytest.raises(TypeError, match="input"):
        fcall(name, x.astype(np.complex64), y, return_grad=True)
    with pytest.raises(TypeError, match="target"):
        fcall(name, x, y.astype(np.complex128))
    with pytest.raises(TypeError, match="weight"):
        fcall(name, x, y, weight=np.ones(4, np.complex128))


def test_complex_python_scalars_and_extra_operands():
    with pytest.raises(TypeError, match="input"):
        fl.mse_loss(1 + 2j, 1.0)
    with pytest.raises(TypeError, match="var"):
        fl.gaussian_nll_loss(np.ones(3), np.ones(3), np.ones(3, np.complex128))
    with pytest.raises(TypeError, match="pos_weight"):
        fl.binary_cross_entropy_with_logits(np.ones(3), np.ones(3), pos_weight=np.ones(3, np.complex128))


BAD_ARRAYS = {
    "str": np.array(["a", "b", "c"]),
    "bytes": np.array([b"a", b"b", b"c"]),
    "object_float": np.array([1.0, 2.0, 3.0], dtype=object),
    "object_none": np.array([1.0, None, 3.0], dtype=object),
    "datetime": np.array(["2020-01-01", "2020-01-02", "2020-01-03"], dtype="datetime64[D]"),
    "list_of_str": ["a", "b", "c"],
}


@pytest.mark.parametrize("kind", list(BAD_ARRAYS))
@pytest.mark.parametrize("name", ["mse_loss", "huber_loss", "binary_cross_entropy", "gaussian_nll_loss",
                                  "binary_cross_entropy_with_logits", "hinge_loss"])
def test_object_and_string_arrays_type_error(name, kind):
    bad = BAD_ARRAYS[kind]
    x, y = good_data(name, (3,))
    with pytest.raises(TypeError, match="input"):
        fcall(name, bad, y)
    with pytest.raises(TypeError, match="target"):
        fcall(name, x, bad)
    with pytest.raises(TypeError, match="weight"):
        fcall(name, x, y, weight=bad)


def test_ragged_input_type_error():
    with pytest.raises(TypeError, match="input"):
        fl.mse_loss([[1.0, 2.0], [3.0]], [[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(TypeError, match="target"):
        fl.mse_loss([[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0]])


def test_object_arrays_class_methods():
    bad = BAD_ARRAYS["object_float"]
    for method in ("__call__", "value_and_grad", "grad_hess"):
        with pytest.raises(TypeError, match="input"):
            ocall("huber_loss", method, bad, np.ones(3))
        with pytest.raises(TypeError, match="target"):
            ocall("gaussian_nll_loss", method, np.ones(3), bad)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("wshape", [(2,), (4,), (4, 1, 1), (5, 3), (3, 4)])
def test_weight_not_broadcastable(name, wshape):
    x, y = good_data(name, (4, 3))
    with pytest.raises(ValueError, match="weight") as ei:
        fcall(name, x, y, weight=np.ones(wshape))
    assert str(wshape) in str(ei.value)
    with pytest.raises(ValueError, match="weight"):
        ocall(name, "grad_hess", x, y, weight=np.ones(wshape))


def test_weight_broadcastable_shapes_are_accepted():
    x, y = good_data("mse_loss", (4, 3))
    for wshape in [(), (1,), (3,), (4, 1), (1, 3), (4, 3)]:
        fl.mse_loss(x, y, weight=np.ones(wshape))


# ---------------------------------------------------------------- out buffers

def _bad_out_buffers(shape, dtype):
    n = int(np.prod(shape))
    ro = np.empty(shape, dtype)
    ro.flags.writeable = False
    return {
        "wrong_shape": (np.empty((n + 1,), dtype), "shape"),
        "wrong_shape_same_size": (np.empty((n,), dtype).reshape(shape[::-1]) if len(shape) > 1
                                  else np.empty((n, 1), dtype), "shape"),
        "wrong_dtype": (np.empty(shape, np.float32 if dtype == F64 else F64), "dtype"),
        "wrong_dtype_int": (np.empty(shape, np.int64), "dtype"),
        "non_contiguous": (np.empty(shape + (2,), dtype)[..., 0], "contiguous"),
        "fortran": (np.asfortranarray(np.empty(shape, dtype)) if len(shape) > 1 and min(shape) > 1
                    else np.empty(shape + (2,), dtype)[..., 1], "contiguous"),
        "read_only": (ro, "writeable|read-only"),
        "list": ([0.0] * n, "ndarray"),
        "memoryview": (memoryview(np.empty(shape, dtype)), "ndarray"),
    }


OUT_KINDS = list(_bad_out_buffers((4, 3), F64))


@pytest.mark.parametrize("kind", OUT_KINDS)
@pytest.mark.parametrize("name", ["mse_loss", "huber_loss", "binary_cross_entropy_with_logits",
                                  "gaussian_nll_loss", "binary_cross_entropy", "hinge_loss"])
@pytest.mark.parametrize("dtype", [F64, np.float32])
def test_out_bad_function(name, kind, dtype):
    x, y = good_data(name, (4, 3), dtype)
    buf, what = _bad_out_buffers((4, 3), dtype)[kind]
    with pytest.raises(ValueError, match=r"\bout\b") as ei:
        fcall(name, x, y, return_grad=True, out=buf)
    assert re.search(what, str(ei.value)), str(ei.value)


@pytest.mark.parametrize("kind", OUT_KINDS)
@pytest.mark.parametrize("name", ["mse_loss", "gaussian_nll_loss", "binary_cross_entropy_with_logits"])
def test_out_bad_class_value_and_grad(name, kind):
    x, y = good_data(name, (4, 3))
    buf, what = _bad_out_buffers((4, 3), F64)[kind]
    with pytest.raises(ValueError, match=r"\bout\b"):
        ocall(name, "value_and_grad", x, y, out=buf)


@pytest.mark.parametrize("kind", OUT_KINDS)
@pytest.mark.parametrize("name", ["mse_loss", "gaussian_nll_loss", "binary_cross_entropy_with_logits"])
@pytest.mark.parametrize("slot", [0, 1])
def test_out_bad_grad_hess_pair_member(name, kind, slot):
    x, y = good_data(name, (4, 3))
    buf, what = _bad_out_buffers((4, 3), F64)[kind]
    pair = [np.empty((4, 3)), np.empty((4, 3))]
    pair[slot] = buf
    with pytest.raises(ValueError, match="out"):
        ocall(name, "grad_hess", x, y, out=tuple(pair))


@pytest.mark.parametrize("name", ["mse_loss", "gaussian_nll_loss", "binary_cross_entropy_with_logits"])
@pytest.mark.parametrize("bad", ["array", "triple", "single_tuple", "none_pair", "dict"])
def test_grad_hess_out_not_a_pair(name, bad):
    x, y = good_data(name, (4,))
    out = {
        "array": np.empty((4,)),
        "triple": (np.empty(4), np.empty(4), np.empty(4)),
        "single_tuple": (np.empty(4),),
        "none_pair": None,  # replaced below
        "dict": {"grad": np.empty(4), "hess": np.empty(4)},
    }[bad]
    if bad == "none_pair":
        out = (np.empty(4), [0.0] * 4)
    with pytest.raises(ValueError, match="out"):
        ocall(name, "grad_hess", x, y, out=out)


@pytest.mark.parametrize("kind", OUT_KINDS)
@pytest.mark.parametrize("name", ["mse_loss", "gaussian_nll_loss", "binary_cross_entropy_with_logits",
                                  "binary_cross_entropy"])
def test_loss_out_bad(name, kind):
    x, y = good_data(name, (4, 3))
    buf, what = _bad_out_buffers((4, 3), F64)[kind]
    with pytest.raises(ValueError, match="loss_out") as ei:
        ocall(name, "value_and_grad", x, y, ctor={"reduction": "none"}, loss_out=buf)
    assert re.search(what, str(ei.value)), str(ei.value)


@pytest.mark.parametrize("name", ["mse_loss", "huber_loss", "gaussian_nll_loss",
                                  "binary_cross_entropy_with_logits", "binary_cross_entropy"])
def test_out_overlapping_inputs(name):
    x, y = good_data(name, (6,))
    w = np.ones(6)
    # the same array
    with pytest.raises(ValueError, match=r"\bout\b.*(share|overlap)"):
        fcall(name, x, y, return_grad=True, out=x)
    with pytest.raises(ValueError, match=r"\bout\b.*(share|overlap)"):
        fcall(name, x, y, return_grad=True, out=y)
    with pytest.raises(ValueError, match=r"\bout\b.*(share|overlap)"):
        fcall(name, x, y, weight=w, return_grad=True, out=w)
    # a view of the input
    with pytest.raises(ValueError, match=r"\bout\b.*(share|overlap)"):
        fcall(name, x, y, return_grad=True, out=x[:])
    # partial overlap through a common base
    base = np.concatenate([x, x])
    xin = base[:6]
    with pytest.raises(ValueError, match=r"\bout\b.*(share|overlap)"):
        fcall(name, xin, y, return_grad=True, out=base[3:9])


def test_out_overlapping_extra_operands():
    x, y = good_data("gaussian_nll_loss", (5,))
    var = np.full(5, 0.5)
    with pytest.raises(ValueError, match=r"\bout\b.*(share|overlap)"):
        fl.gaussian_nll_loss(x, y, var, return_grad=True, out=var)
    with pytest.raises(ValueError, match=r"loss_out.*(share|overlap)"):
        fl.GaussianNLLLoss(reduction="none").value_and_grad(x, y, var, loss_out=var)
    with pytest.raises(ValueError, match=r"out.*(share|overlap)"):
        fl.GaussianNLLLoss().grad_hess(x, y, var, out=(np.empty(5), var))


@pytest.mark.parametrize("name", ["mse_loss", "binary_cross_entropy_with_logits", "gaussian_nll_loss"])
def test_loss_out_and_hess_out_overlapping_inputs(name):
    x, y = good_data(name, (5,))
    with pytest.raises(ValueError, match=r"loss_out.*(share|overlap)"):
        ocall(name, "value_and_grad", x, y, ctor={"reduction": "none"}, loss_out=x)
    with pytest.raises(ValueError, match=r"out.*(share|overlap)"):
        ocall(name, "grad_hess", x, y, out=(np.empty(5), y))
    with pytest.raises(ValueError, match=r"out.*(share|overlap)"):
        ocall(name, "grad_hess", x, y, out=(x, np.empty(5)))


@pytest.mark.parametrize("name", ["mse_loss", "binary_cross_entropy_with_logits", "gaussian_nll_loss"])
def test_output_buffers_overlapping_each_other(name):
    """Two outputs written through the same memory would silently corrupt one another."""
    x, y = good_data(name, (5,))
    buf = np.empty(5)
    if name == "gaussian_nll_loss":
        _guard_gaussian_grad_hess()
    with pytest.raises(ValueError, match="out"):
        ocall(name, "grad_hess", x, y, out=(buf, buf))
    with pytest.raises(ValueError, match="out"):
        ocall(name, "value_and_grad", x, y, ctor={"reduction": "none"}, out=buf, loss_out=buf)


# ---------------------------------------------------------------- parameters

_PARAM_CASES = [
    # (function name, class kwargs / function kwargs, exception, regex the message must match)
    ("huber_loss", {"delta": 0.0}, ValueError, r"delta.*> ?0"),
    ("huber_loss", {"delta": -1.0}, ValueError, r"delta.*> ?0"),
    ("huber_loss", {"delta": np.nan}, ValueError, r"delta.*NaN"),
    ("huber_loss", {"delta": "1"}, TypeError, r"delta"),
    ("huber_loss", {"delta": None}, TypeError, r"delta"),
    ("smooth_l1_loss", {"beta": -0.1}, ValueError, r"beta.*>= ?0"),
    ("smooth_l1_loss", {"beta": -np.inf}, ValueError, r"beta"),
    ("smooth_l1_loss", {"beta": np.nan}, ValueError, r"beta.*NaN"),
    ("quantile_loss", {"quantile": 0.0}, ValueError, r"quantile.*\(0, 1\)"),
    ("quantile_loss", {"quantile": 1.0}, ValueError, r"quantile.*\(0, 1\)"),
    ("quantile_loss", {"quantile": -0.2}, ValueError, r"quantile.*\(0, 1\)"),
    ("quantile_loss", {"quantile": 1.5}, ValueError, r"quantile.*\(0, 1\)"),
    ("quantile_loss", {"quantile": np.nan}, ValueError, r"quantile"),
    ("sigmoid_focal_loss", {"gamma": -0.5}, ValueError, r"gamma.*>= ?0"),
    ("sigmoid_focal_loss", {"gamma": np.nan}, ValueError, r"gamma"),
    ("sigmoid_focal_loss", {"alpha": 1.5}, ValueError, r"alpha.*1"),
    ("sigmoid_focal_loss", {"alpha": np.nan}, ValueError, r"alpha"),
    ("sigmoid_focal_loss", {"alpha": "0.25"}, TypeError, r"alpha"),
    ("poisson_nll_loss", {"eps": 0.0}, ValueError, r"eps.*> ?0"),
    ("poisson_nll_loss", {"eps": -1e-8}, ValueError, r"eps.*> ?0"),
    ("poisson_nll_loss", {"eps": np.nan}, ValueError, r"eps"),
    ("poisson_nll_loss", {"log_input": 1}, TypeError, r"log_input.*True or False"),
    ("poisson_nll_loss", {"log_input": "yes"}, TypeError, r"log_input"),
    ("poisson_nll_loss", {"log_input": None}, TypeError, r"log_input"),
    ("poisson_nll_loss", {"full": 0}, TypeError, r"full.*True or False"),
    ("poisson_nll_loss", {"full": "no"}, TypeError, r"full"),
    ("gaussian_nll_loss", {"eps": 0.0}, ValueError, r"eps.*> ?0"),
    ("gaussian_nll_loss", {"eps": -1e-6}, ValueError, r"eps.*> ?0"),
    ("gaussian_nll_loss", {"eps": np.nan}, ValueError, r"eps"),
    ("gaussian_nll_loss", {"full": 1}, TypeError, r"full.*True or False"),
    ("gaussian_nll_loss", {"full": None}, TypeError, r"full"),
]
_PARAM_IDS = [f"{n}-{k}={v!r}" for n, kw, _, _ in _PARAM_CASES for k, v in kw.items()]


@pytest.mark.parametrize("name,kw,exc,rx", _PARAM_CASES, ids=_PARAM_IDS)
def test_bad_parameter_function(name, kw, exc, rx):
    x, y = good_data(name, (4,))
    with pytest.raises(exc, match=rx) as ei:
        fcall(name, x, y, **kw)
    assert name in str(ei.value)
    with pytest.raises(exc, match=rx):
        fcall(name, x, y, return_grad=True, **kw)


@pytest.mark.parametrize("name,kw,exc,rx", _PARAM_CASES, ids=_PARAM_IDS)
def test_bad_parameter_class(name, kw, exc, rx):
    cls = CLASSES[name]
    with pytest.raises(exc, match=rx) as ei:
        cls(**kw)
    assert cls.__name__ in str(ei.value)


def test_good_boundary_parameters_accepted():
    x, y = good_data("mse_loss", (4,))
    fl.smooth_l1_loss(x, y, beta=0.0)
    fl.sigmoid_focal_loss(x, np.abs(y) / 10, alpha=1.0, gamma=0.0)
    fl.sigmoid_focal_loss(x, np.abs(y) / 10, alpha=-1.0)  # negative alpha disables it
    fl.quantile_loss(x, y, quantile=1e-9)
    fl.huber_loss(x, y, delta=np.float32(0.5))
    fl.huber_loss(x, y, delta=2)  # an integer is a real number
    fl.HuberLoss(delta=1e-300)
    fl.SmoothL1Loss(beta=0)


_BAD_THREADS = [(0, ValueError), (-1, ValueError), (-8, ValueError), (1.5, TypeError),
                (True, TypeError), (False, TypeError), ("2", TypeError), (2.0, TypeError)]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n,exc", _BAD_THREADS, ids=[repr(n) for n, _ in _BAD_THREADS])
def test_bad_n_threads_function(name, n, exc):
    x, y = good_data(name, (4,))
    with pytest.raises(exc, match="n_threads") as ei:
        fcall(name, x, y, n_threads=n)
    assert name in str(ei.value)
    with pytest.raises(exc, match="n_threads"):
        fcall(name, x, y, return_grad=True, n_threads=n)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n,exc", _BAD_THREADS, ids=[repr(n) for n, _ in _BAD_THREADS])
def test_bad_n_threads_class(name, n, exc):
    cls = CLASSES[name]
    with pytest.raises(exc, match="n_threads") as ei:
        cls(n_threads=n)
    assert cls.__name__ in str(ei.value)


@pytest.mark.parametrize("n,exc", _BAD_THREADS, ids=[repr(n) for n, _ in _BAD_THREADS])
def test_bad_set_num_threads(n, exc):
    before = fl.get_num_threads()
    with pytest.raises(exc, match="n_threads|set_num_threads"):
        fl.set_num_threads(n)
    assert fl.get_num_threads() == before


_BAD_REDUCTIONS = ["avg", "Mean", "MEAN", None, "", "mean ", 0, "batchmean_typo"]
_ALLOWED = r"'mean', 'sum', 'none'"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("red", _BAD_REDUCTIONS, ids=[repr(r) for r in _BAD_REDUCTIONS])
def test_bad_reduction_function(name, red):
    x, y = good_data(name, (4,))
    with pytest.raises((ValueError, TypeError), match=r"reduction.*" + _ALLOWED) as ei:
        fcall(name, x, y, reduction=red)
    assert name in str(ei.value)
    with pytest.raises((ValueError, TypeError), match=r"reduction.*" + _ALLOWED):
        fcall(name, x, y, reduction=red, return_grad=True)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("red", _BAD_REDUCTIONS, ids=[repr(r) for r in _BAD_REDUCTIONS])
def test_bad_reduction_class(name, red):
    cls = CLASSES[name]
    with pytest.raises((ValueError, TypeError), match=r"reduction.*" + _ALLOWED) as ei:
        cls(reduction=red)
    assert cls.__name__ in str(ei.value)


def test_reduction_checked_before_data():
    """A bad reduction is reported even when the arrays are fine and tiny."""
    with pytest.raises(ValueError, match="reduction"):
        fl.mse_loss(np.ones(0), np.ones(0), reduction="avg")


# ---------------------------------------------------------------- domains

@pytest.mark.parametrize("bad", [1.5, -0.1, np.inf, -np.inf, 1.0000001])
@pytest.mark.parametrize("dtype", [F64, np.float32])
def test_bce_input_outside_unit_interval(bad, dtype):
    x = np.array([0.2, 0.5, bad, 0.3], dtype)
    y = np.array([0.0, 1.0, 1.0, 0.0], dtype)
    shown = str(dtype(bad))
    for call in (lambda: fl.binary_cross_entropy(x, y),
                 lambda: fl.binary_cross_entropy(x, y, return_grad=True),
                 lambda: fl.binary_cross_entropy(x, y, reduction="none"),
                 lambda: fl.BCELoss()(x, y),
                 lambda: fl.BCELoss().value_and_grad(x, y),
                 lambda: fl.BCELoss(reduction="sum").grad_hess(x, y)):
        with pytest.raises(ValueError, match=r"input\[2\] = " + re.escape(shown)) as ei:
            call()
        assert "0 and 1" in str(ei.value) or "[0, 1]" in str(ei.value)


def test_bce_input_outside_unit_interval_2d_names_multi_index():
    x = np.full((3, 4), 0.5)
    x[2, 1] = 1.5
    x[2, 3] = -7.0
    with pytest.raises(ValueError, match=re.escape("input[2, 1] = 1.5")):
        fl.binary_cross_entropy(x, np.zeros((3, 4)))


def test_bce_input_outside_unit_interval_0d():
    with pytest.raises(ValueError, match=r"input.*-0\.1"):
        fl.binary_cross_entropy(np.array(-0.1), np.array(0.0))


def test_bce_domain_error_found_on_parallel_path(parallel_always):
    x = np.full(300_000, 0.5)
    x[250_001] = 1.25
    x[290_000] = -3.0
    with pytest.raises(ValueError, match=re.escape("input[250001] = 1.25")):
        fl.binary_cross_entropy(x, np.zeros_like(x), n_threads=2)


@pytest.mark.parametrize("name", ["hinge_loss", "squared_hinge_loss"])
@pytest.mark.parametrize("bad", [0.0, 2.0, 0.5, -1.5, np.inf])
def test_hinge_target_not_pm1(name, bad):
    x = np.array([0.3, -0.2, 1.0, 2.0])
    y = np.array([1.0, -1.0, bad, 1.0])
    shown = str(np.float64(bad))
    for kw in ({}, {"return_grad": True}, {"reduction": "none"}):
        with pytest.raises(ValueError, match=r"target\[2\] = " + re.escape(shown)) as ei:
            fcall(name, x, y, **kw)
        assert "-1" in str(ei.value) and "1" in str(ei.value)
    for method in ("__call__", "value_and_grad", "grad_hess"):
        with pytest.raises(ValueError, match=r"target\[2\]"):
            ocall(name, method, x, y)


@pytest.mark.parametrize("name", ["hinge_loss", "squared_hinge_loss"])
def test_hinge_integer_target_zero(name):
    with pytest.raises(ValueError, match=r"target\[1\] = 0"):
        fcall(name, np.array([0.5, 0.5]), np.array([1, 0]))


def test_gaussian_negative_var():
    x = np.array([1.0, 2.0, 3.0])
    y = np.zeros(3)
    var = np.array([1.0, 0.5, -0.5])
    for kw in ({}, {"return_grad": True}, {"reduction": "none"}):
        with pytest.raises(ValueError, match=r"var.*\[2\] = -0\.5|var\[2\].*-0\.5"):
            fl.gaussian_nll_loss(x, y, var, **kw)
    for method in ("__call__", "value_and_grad"):
        with pytest.raises(ValueError, match=r"var.*-0\.5"):
            ocall("gaussian_nll_loss", method, x, y, var=var)


def test_gaussian_negative_var_grad_hess():
    _guard_gaussian_grad_hess()
    with pytest.raises(ValueError, match=r"var.*-0\.5"):
        fl.GaussianNLLLoss().grad_hess(np.ones(3), np.zeros(3), np.array([1.0, 0.5, -0.5]))


def test_gaussian_negative_var_broadcast_shapes():
    x = np.ones((3, 4))
    y = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"var.*-2"):
        fl.gaussian_nll_loss(x, y, np.array([1.0, 1.0, -2.0]))  # one dim fewer
    with pytest.raises(ValueError, match=r"var.*-2"):
        fl.gaussian_nll_loss(x, y, np.array([1.0, -2.0, 1.0, 1.0]))  # broadcast over rows
    with pytest.raises(ValueError, match=r"var.*-2"):
        fl.gaussian_nll_loss(x, y, -2.0)  # a scalar


def test_gaussian_zero_var_is_fine():
    v = fl.gaussian_nll_loss(np.ones(3), np.zeros(3), np.zeros(3))
    assert np.isfinite(v)


# NaN in the data never raises: it propagates.

@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nan_bce_input_propagates(reduction):
    x = np.array([0.2, np.nan, 0.7])
    y = np.array([0.0, 1.0, 1.0])
    v, g = fl.binary_cross_entropy(x, y, reduction=reduction, return_grad=True)
    if reduction == "none":
        assert np.isnan(v[1]) and np.isfinite(v[[0, 2]]).all()
    else:
        assert np.isnan(v)
    assert np.isnan(g[1])
    gr, h = fl.BCELoss(reduction=reduction).grad_hess(x, y)
    assert np.isnan(gr[1])


@pytest.mark.parametrize("name", ["hinge_loss", "squared_hinge_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nan_hinge_target_propagates(name, reduction):
    x = np.array([0.3, -0.2, 0.1])
    y = np.array([1.0, np.nan, -1.0])
    v, g = fcall(name, x, y, reduction=reduction, return_grad=True)
    if reduction == "none":
        assert np.isnan(v[1]) and np.isfinite(v[[0, 2]]).all()
    else:
        assert np.isnan(v)
    ocall(name, "grad_hess", x, y)  # no error


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nan_gaussian_var_propagates(reduction):
    x = np.array([1.0, 2.0, 3.0])
    y = np.zeros(3)
    var = np.array([1.0, np.nan, 2.0])
    v, g, gv = fl.gaussian_nll_loss(x, y, var, reduction=reduction, return_grad=True)
    if reduction == "none":
        assert np.isnan(v[1]) and np.isfinite(v[[0, 2]]).all()
    else:
        assert np.isnan(v)


def test_nan_with_a_real_domain_error_reports_the_real_one():
    x = np.array([np.nan, 0.5, 2.0])
    with pytest.raises(ValueError, match=re.escape("input[2] = 2.0")):
        fl.binary_cross_entropy(x, np.zeros(3))
    with pytest.raises(ValueError, match=re.escape("target[2] = 3.0")):
        fl.hinge_loss(np.ones(3), np.array([np.nan, 1.0, 3.0]))


# ---------------------------------------------------------------- extra operands' shapes

@pytest.mark.parametrize("pshape", [(2,), (4,), (5,), (3, 3), (2, 4, 3)])
def test_pos_weight_not_broadcastable(pshape):
    x, y = good_data("binary_cross_entropy_with_logits", (4, 3))
    with pytest.raises(ValueError, match="pos_weight") as ei:
        fl.binary_cross_entropy_with_logits(x, y, pos_weight=np.ones(pshape))
    assert str(pshape) in str(ei.value)
    for method in ("__call__", "value_and_grad", "grad_hess"):
        with pytest.raises(ValueError, match="pos_weight"):
            ocall("binary_cross_entropy_with_logits", method, x, y, ctor={"pos_weight": np.ones(pshape)})


def test_pos_weight_broadcastable_shapes_are_accepted():
    x, y = good_data("binary_cross_entropy_with_logits", (4, 3))
    for pshape in [(), (1,), (3,), (1, 3), (4, 1), (4, 3)]:
        fl.binary_cross_entropy_with_logits(x, y, pos_weight=np.full(pshape, 2.0))


@pytest.mark.parametrize("vshape", [(2,), (5,), (4, 2), (3, 4), (2, 4, 3)])
def test_gaussian_var_not_broadcastable(vshape):
    x, y = good_data("gaussian_nll_loss", (4, 3))
    with pytest.raises(ValueError, match="var") as ei:
        fl.gaussian_nll_loss(x, y, np.ones(vshape))
    assert str(vshape) in str(ei.value)
    for method in ("__call__", "value_and_grad", "grad_hess"):
        with pytest.raises(ValueError, match="var"):
            ocall("gaussian_nll_loss", method, x, y, var=np.ones(vshape))


def test_gaussian_var_accepted_shapes():
    x, y = good_data("gaussian_nll_loss", (4, 3))
    for vshape in [(), (1,), (4,), (3,), (4, 1), (1, 3), (4, 3)]:
        v, g, gv = fl.gaussian_nll_loss(x, y, np.full(vshape, 0.5), return_grad=True)
        assert gv.shape == vshape
