"""PyTorch's own test samples for its losses, run against fastloss.torch.

``torch.testing._internal.common_methods_invocations.op_db`` (OpInfo) and
``common_modules.module_db`` (ModuleInfo) are the inputs PyTorch's own test
suite feeds its losses.  Every sample of every loss fastloss has is given
to the ``fastloss.torch`` function (or module) and to PyTorch's, in
float64 and float32; value and the gradient of every tensor that requires
grad must agree.  No sample may be refused: fastloss supports the real
float dtypes, so only complex and half samples (not drawn here) are out.

PyTorch's test helpers import ``expecttest``; when it is not installed a
stand-in that only provides its ``TestCase`` base class is put in its
place (nothing else of it is used to build the samples).  Importing
op_db takes a few seconds, once per test process.
"""
import sys
import types
import unittest

import pytest

torch = pytest.importorskip("torch")
import fastloss.torch as flt  # noqa: E402

pytestmark = pytest.mark.torch

FUNCTIONS = ["mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "poisson_nll_loss", "gaussian_nll_loss",
             "binary_cross_entropy", "binary_cross_entropy_with_logits", "soft_margin_loss", "kl_div",
             "cross_entropy", "nll_loss", "multi_margin_loss", "multilabel_soft_margin_loss"]
MODULES = ["MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss", "PoissonNLLLoss", "GaussianNLLLoss", "BCELoss",
           "BCEWithLogitsLoss", "SoftMarginLoss", "KLDivLoss", "CrossEntropyLoss", "NLLLoss", "MultiMarginLoss",
           "MultiLabelSoftMarginLoss"]
DTYPES = [torch.float64, torch.float32]
TOL = {torch.float64: (1e-9, 1e-11), torch.float32: (3e-5, 3e-6)}  # rtol, atol relative to the largest value


@pytest.fixture(scope="module")
def torch_db():
    if "expecttest" not in sys.modules:
        try:
            import expecttest  # noqa: F401
        except ImportError:
            stand_in = types.ModuleType("expecttest")
            stand_in.TestCase = unittest.TestCase
            sys.modules["expecttest"] = stand_in
    from torch.testing._internal.common_methods_invocations import op_db
    from torch.testing._internal.common_modules import module_db
    return ({op.name: op for op in op_db if op.name.startswith("nn.functional.")},
            {m.module_cls.__name__: m for m in module_db})


def _leaves(obj):
    """The tensors that require grad among (nested) arguments."""
    if isinstance(obj, torch.Tensor):
        return [obj] if obj.requires_grad else []
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _leaves(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _leaves(o)]
    return []


def _clone(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone().requires_grad_(obj.requires_grad)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_clone(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _clone(v) for k, v in obj.items()}
    return obj


def _compare(ours, theirs, dtype, what):
    rtol, atol = TOL[dtype]
    a, b = ours.detach().double(), theirs.detach().double()
    assert a.shape == b.shape, f"{what}: shape {tuple(a.shape)} != torch's {tuple(b.shape)}"
    finite = b[torch.isfinite(b)]
    scale = float(finite.abs().max()) if finite.numel() else 1.0
    torch.testing.assert_close(a, b, rtol=rtol, atol=atol * max(scale, 1.0), equal_nan=True,
                               msg=lambda m: f"{what}: {m}")


def _run_pair(call_ours, call_theirs, args, kwargs, dtype, what):
    """Call both on copies of (args, kwargs); compare values and gradients."""
    a_ours, k_ours = _clone(args), _clone(kwargs)
    a_theirs, k_theirs = _clone(args), _clone(kwargs)
    ref = call_theirs(*a_theirs, **k_theirs)
    try:
        out = call_ours(*a_ours, **k_ours)
    except Exception as exc:  # a refusal is a failure
        raise AssertionError(f"{what}: fastloss.torch refused a sample PyTorch takes: "
                             f"{type(exc).__name__}: {exc}") from exc
    _compare(out, ref, dtype, what + " value")
    leaves_ours, leaves_theirs = _leaves((a_ours, k_ours)), _leaves((a_theirs, k_theirs))
    if not leaves_theirs or not ref.requires_grad:
        return
    g = torch.linspace(0.5, 1.5, max(ref.numel(), 1), dtype=ref.dtype).reshape(ref.shape)
    got = torch.autograd.grad(out, leaves_ours, g, allow_unused=True)
    exp = torch.autograd.grad(ref, leaves_theirs, g, allow_unused=True)
    for i, (x, y) in enumerate(zip(got, exp)):
        if y is None:
            continue
        assert x is not None, f"{what}: no gradient for argument {i}"
        _compare(x, y, dtype, f"{what} grad {i}")


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", FUNCTIONS)
def test_opinfo_samples(torch_db, name):
    ops, _ = torch_db
    op = ops.get(f"nn.functional.{name}")
    assert op is not None, f"no OpInfo for {name} in this torch"
    n = 0
    for dtype in DTYPES:
        if dtype not in op.dtypes:
            continue
        for i, s in enumerate(op.sample_inputs("cpu", dtype, requires_grad=True)):
            args = (s.input,) + tuple(s.args)
            _run_pair(getattr(flt, name), op.op, args, s.kwargs, dtype,
                      f"{name} {dtype} sample {i} (input {tuple(s.input.shape)}, kwargs {sorted(s.kwargs)})")
            n += 1
    assert n > 0


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", MODULES)
def test_moduleinfo_samples(torch_db, name):
    _, mods = torch_db
    info = mods.get(name)
    assert info is not None, f"no ModuleInfo for {name} in this torch"
    n = 0
    for dtype in DTYPES:
        if dtype not in info.dtypes:
            continue
        for i, mi in enumerate(info.module_inputs_func(info, device="cpu", dtype=dtype, requires_grad=True,
                                                       training=True)):
            if mi.forward_input is None:
                continue
            c = mi.constructor_input
            what = f"{name} {dtype} input {i} ({mi.desc or 'default'})"
            try:
                ours = getattr(flt, name)(*_clone(c.args), **_clone(c.kwargs))
            except Exception as exc:
                raise AssertionError(f"{what}: fastloss.torch refused the constructor arguments "
                                     f"{c.args} {c.kwargs}: {type(exc).__name__}: {exc}") from exc
            theirs = getattr(torch.nn, name)(*_clone(c.args), **_clone(c.kwargs))
            f = mi.forward_input
            _run_pair(ours, theirs, f.args, f.kwargs, dtype, what)
            n += 1
    assert n > 0
