"""fastloss.torch as a drop-in for torch.nn / torch.nn.functional.

1. Two learned tensors: the gradient with respect to ``target`` where
   PyTorch differentiates it, against PyTorch's own autograd (function and
   module forms, every reduction) and ``torch.autograd.gradcheck`` in
   float64; the NumPy API's ``return_grad=("input", "target")``.
2. Modules keep tensor options as buffers: ``state_dict()``, ``.to()``,
   ``.double()``, ``load_state_dict``, ``repr``, options changed after
   construction.
3. Errors: NumPy arrays given to fastloss.torch, tensors that require grad
   given to the NumPy API, broadcast failures inside the adapter.
4. Shapes PyTorch accepts: a broadcast target of ``gaussian_nll_loss``,
   ``multi_margin_loss`` with a 0-d input or a (1,) target,
   ``multilabel_soft_margin_loss`` with an (N, C) weight.
5. ``import fastloss.torch`` does not import ``torch._dynamo``; the first
   call may come under ``torch.compile``.
"""
import os
import subprocess
import sys
import zlib

import numpy as np
import pytest

import fastloss as fl

torch = pytest.importorskip("torch")
import fastloss.torch as flt  # noqa: E402

F, nn = torch.nn.functional, torch.nn
pytestmark = pytest.mark.torch
D = torch.float64
REDUCTIONS = ["mean", "sum", "none"]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _t(a, grad=False):
    return torch.tensor(np.asarray(a), dtype=D if np.asarray(a).dtype.kind == "f" else None, requires_grad=grad)


def _close(a, b, what, rtol=1e-10, atol=1e-12):
    torch.testing.assert_close(a.detach().to(D), b.detach().to(D), rtol=rtol, atol=atol, msg=lambda m: f"{what}: {m}")


def _softmax(z, axis=1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# --------------------------------------------------------- 1. target grads
# name -> (fastloss.torch function, torch function, options, data(rng) -> (input, target[, var]))

def _reg(rng):
    x = rng.normal(0, 2, (7, 5))
    return x, x - rng.uniform(0.2, 1.5, (7, 5)) * rng.choice([-1, 1], (7, 5))


def _prob(rng):
    return rng.uniform(0.05, 0.95, (7, 5)), rng.uniform(0, 1, (7, 5))


def _logits(rng):
    return rng.normal(0, 2, (7, 5)), rng.uniform(0, 1, (7, 5))


def _kl(log_target):
    def data(rng):
        x = np.log(_softmax(rng.normal(0, 1, (6, 5))))
        p = _softmax(rng.normal(0, 1, (6, 5)))
        return x, np.log(p) if log_target else p
    return data


def _poisson(log_input):
    def data(rng):
        x = rng.normal(0, 1, (7, 5)) if log_input else rng.uniform(0.2, 3, (7, 5))
        return x, rng.uniform(0.1, 4, (7, 5))  # some targets above 1 (Stirling's term)
    return data


def _gauss(rng):
    x, t = _reg(rng)
    return x, t, rng.uniform(0.3, 2.0, (7, 5))


def _ce_probs(shape):
    def data(rng):
        return rng.normal(0, 2, shape), _softmax(rng.normal(0, 2, shape), axis=0 if len(shape) == 1 else 1)
    return data


_W5 = np.array([0.5, 1.0, 2.0, 0.25, 1.5])
TARGET_CASES = {
    "mse": ("mse_loss", {}, _reg),
    "mse-weight": ("mse_loss", {"weight": np.linspace(0.5, 2, 35).reshape(7, 5)}, _reg),
    "l1": ("l1_loss", {}, _reg),
    "huber": ("huber_loss", {"delta": 0.7}, _reg),
    "smooth_l1": ("smooth_l1_loss", {"beta": 0.6}, _reg),
    "poisson-log-full": ("poisson_nll_loss", {"full": True}, _poisson(True)),
    "poisson-lin": ("poisson_nll_loss", {"log_input": False, "eps": 1e-3}, _poisson(False)),
    "poisson-lin-full": ("poisson_nll_loss", {"log_input": False, "full": True}, _poisson(False)),
    "gaussian": ("gaussian_nll_loss", {"full": True}, _gauss),
    "bce": ("binary_cross_entropy", {"weight": np.tile(_W5, (7, 1))}, _prob),
    "bce_logits": ("binary_cross_entropy_with_logits", {"pos_weight": _W5[::-1].copy()}, _logits),
    "bce_logits-weight": ("binary_cross_entropy_with_logits", {"weight": _W5}, _logits),
    "kl": ("kl_div", {}, _kl(False)),
    "kl-log_target": ("kl_div", {"log_target": True}, _kl(True)),
    "ce-probs": ("cross_entropy", {"weight": _W5, "label_smoothing": 0.15}, _ce_probs((6, 5))),
    "ce-probs-spatial": ("cross_entropy", {}, _ce_probs((3, 5, 4, 2))),
    "ce-probs-unbatched": ("cross_entropy", {}, _ce_probs((5,))),
    "mlsm": ("multilabel_soft_margin_loss", {"weight": _W5}, _logits),
}
MODULES = {"mse_loss": "MSELoss", "l1_loss": "L1Loss", "huber_loss": "HuberLoss", "smooth_l1_loss": "SmoothL1Loss",
           "poisson_nll_loss": "PoissonNLLLoss", "gaussian_nll_loss": "GaussianNLLLoss",
           "binary_cross_entropy": "BCELoss", "binary_cross_entropy_with_logits": "BCEWithLogitsLoss",
           "kl_div": "KLDivLoss", "cross_entropy": "CrossEntropyLoss",
           "multilabel_soft_margin_loss": "MultiLabelSoftMarginLoss"}


def _opts(options):
    return {k: _t(v) if isinstance(v, np.ndarray) else v for k, v in options.items()}


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")
@pytest.mark.parametrize("form", ["function", "module"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", list(TARGET_CASES))
def test_target_gradient_matches_torch(case, reduction, form):
    name, options, data = TARGET_CASES[case]
    if form == "module" and name == "mse_loss" and "weight" in options:
        pytest.skip("torch.nn.MSELoss takes no weight")
    rng = np.random.default_rng(zlib.crc32(repr((case, reduction)).encode()))
    arrays = data(rng)
    ours = [_t(a, grad=True) for a in arrays]
    theirs = [_t(a, grad=True) for a in arrays]
    opts = _opts(options)
    if form == "function":
        out = getattr(flt, name)(*ours, **opts, reduction=reduction)
        ref = getattr(F, name)(*theirs, **opts, reduction=reduction)
    else:
        out = getattr(flt, MODULES[name])(**opts, reduction=reduction)(*ours)
        ref = getattr(nn, MODULES[name])(**opts, reduction=reduction)(*theirs)
    _close(out, ref, f"{case} value")
    u = torch.from_numpy(rng.uniform(0.5, 2.0, tuple(ref.shape)))
    (out * u).sum().backward()
    (ref * u).sum().backward()
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a.grad is not None, f"{case}: no gradient for operand {i}"
        _close(a.grad, b.grad, f"{case} {form} {reduction} grad of operand {i}")


GRADCHECK = list(TARGET_CASES) + ["log_cosh", "quantile", "poly1-probs"]
_EXTRA = {"log_cosh": ("log_cosh_loss", {}, _reg), "quantile": ("quantile_loss", {"quantile": 0.3}, _reg),
          "poly1-probs": ("poly1_cross_entropy", {"epsilon": 1.5, "label_smoothing": 0.1}, _ce_probs((4, 5)))}


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("case", GRADCHECK)
def test_gradcheck_with_target(case, reduction):
    name, options, data = TARGET_CASES.get(case) or _EXTRA[case]
    arrays = data(np.random.default_rng(11))
    leaves = tuple(_t(a, grad=True) for a in arrays)
    opts = _opts(options)
    fn = getattr(flt, name)
    assert torch.autograd.gradcheck(lambda *ops: fn(*ops, **opts, reduction=reduction), leaves,
                                    eps=1e-6, atol=1e-5)


def test_target_only_requires_grad():
    """The target alone learns (a teacher that is not detached)."""
    rng = np.random.default_rng(2)
    x, t = _reg(rng)
    X, T1, T2 = _t(x), _t(t, grad=True), _t(t, grad=True)
    flt.MSELoss()(X, T1).backward()
    F.mse_loss(X, T2).backward()
    _close(T1.grad, T2.grad, "target grad")


def test_target_grad_not_computed_unless_asked():
    """A target that does not require grad costs no target gradient (the
    kernel is asked for it only when the target requires grad)."""
    calls = []
    m = flt.MSELoss()
    loss = m._fl_loss()
    orig = loss.value_and_grad

    def spy(*a, **kw):
        calls.append(kw.get("wrt"))
        return orig(*a, **kw)

    loss.value_and_grad = spy
    x = torch.randn(4, 3, dtype=D, requires_grad=True)
    m(x, torch.randn(4, 3, dtype=D))
    m(x, torch.randn(4, 3, dtype=D, requires_grad=True))
    with torch.no_grad():
        m(x, torch.randn(4, 3, dtype=D, requires_grad=True))
    assert calls == [None, ("input", "target"), None]
    g = flt.GaussianNLLLoss()
    loss = g._fl_loss()
    orig_g = loss.value_and_grad
    loss.value_and_grad = lambda *a, **kw: calls.append(kw.get("wrt")) or orig_g(*a, **kw)
    g(x, torch.randn(4, 3, dtype=D, requires_grad=True), torch.ones(4, 3, dtype=D))
    assert calls[-1] == ("input", "target", "var")  # operand order


def test_numpy_api_target_gradient():
    rng = np.random.default_rng(3)
    x, t = _logits(rng)
    v, gx, gt = fl.binary_cross_entropy_with_logits(x, t, return_grad=("input", "target"))
    v2, gt2, gx2 = fl.binary_cross_entropy_with_logits(x, t, return_grad=("target", "input"))
    assert v == v2 and np.array_equal(gx, gx2) and np.array_equal(gt, gt2)
    X, T = _t(x, grad=True), _t(t, grad=True)
    F.binary_cross_entropy_with_logits(X, T).backward()
    np.testing.assert_allclose(gt, T.grad.numpy(), rtol=1e-12, atol=1e-15)
    # out= as one buffer per gradient, in the order asked
    bx, bt = np.empty_like(x), np.empty_like(x)
    _, rx, rt = fl.binary_cross_entropy_with_logits(x, t, return_grad=("input", "target"), out=(bx, bt))
    assert rx is bx and rt is bt and np.array_equal(bt, gt)
    _, rx, rt = fl.mse_loss(x, t, return_grad=("input", "target"), out=(None, bt))
    assert rt is bt and np.array_equal(rx, -bt)
    # the class form
    v3, gx3, gt3 = fl.BCEWithLogitsLoss().value_and_grad(x, t, wrt=("input", "target"))
    assert v3 == v and np.array_equal(gt3, gt)
    # gaussian: (input, var, target) in any order; a broadcast var summed back
    var = rng.uniform(0.5, 2, (7,))
    v, gv, gtt = fl.gaussian_nll_loss(x, t, var, return_grad=("var", "target"))
    assert gv.shape == (7,) and gtt.shape == x.shape
    # rows: class probabilities
    z, q = _ce_probs((4, 5))(rng)
    v, gz, gq = fl.cross_entropy(z, q, return_grad=("input", "target"))
    Z, Q = _t(z, grad=True), _t(q, grad=True)
    F.cross_entropy(Z, Q).backward()
    np.testing.assert_allclose(gq, Q.grad.numpy(), rtol=1e-12, atol=1e-15)
    v4, gz4, gq4 = fl.CrossEntropyLoss().value_and_grad(z, q, wrt=("input", "target"))
    assert np.array_equal(gq4, gq)


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
@pytest.mark.parametrize("w", [[0.0, 0.0, 0.0], [1.0, -1.0, 0.0]], ids=["zeros", "sum0"])
def test_weighted_mean_of_zero_summed_weights(name, w):
    """PyTorch's sum(w l) / sum(w) with sum(w) = 0: NaN or inf, value and gradient alike."""
    x, t, w = np.array([0.5, -1.0, 2.0]), np.array([0.0, 0.5, 1.0]), np.array(w)
    X = _t(x, True)
    ref = getattr(F, name)(X, _t(t), weight=_t(w))
    ref.backward()
    v, g = getattr(fl, name)(x, t, weight=w, return_grad=True)
    np.testing.assert_array_equal(v, ref.item())
    np.testing.assert_array_equal(g, X.grad.numpy())


def test_numpy_api_target_gradient_errors():
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"hinge_loss: return_grad names the operands to differentiate, each "
                                         r"once, from 'input'; got \('input', 'target'\)"):
        fl.hinge_loss(x, np.ones((3, 4)), return_grad=("input", "target"))
    with pytest.raises(ValueError, match=r"mse_loss: return_grad names the operands .* got \('input', 'input'\)"):
        fl.mse_loss(x, x, return_grad=("input", "input"))
    with pytest.raises(ValueError, match=r"mse_loss: return_grad names .* from 'input', 'target'; got \('weight',\)"):
        fl.mse_loss(x, x, return_grad=("weight",))
    with pytest.raises(TypeError, match=r"mse_loss: return_grad must be True, False or a tuple of operand names, "
                                        r"got 'input'"):
        fl.mse_loss(x, x, return_grad="input")
    with pytest.raises(ValueError, match=r"cross_entropy: the gradient with respect to target exists only for a "
                                         r"target of input's shape \(3, 4\)"):
        fl.cross_entropy(x, np.zeros(3, np.int64), return_grad=("input", "target"))
    with pytest.raises(ValueError, match=r"mse_loss: out must be one buffer or a tuple of 2 \(one per gradient "
                                         r"returned: input, target\), got a tuple of 1"):
        fl.mse_loss(x, x, return_grad=("input", "target"), out=(np.empty_like(x),))
    with pytest.raises(ValueError, match=r"MSELoss: return_grad names"):
        fl.MSELoss().value_and_grad(x, x, wrt=("var",))
    with pytest.raises(ValueError, match=r"gaussian_nll_loss: an out= buffer for var's gradient needs var of "
                                         r"input's shape \(3, 4\), got var of shape \(3,\)"):
        fl.gaussian_nll_loss(x, x, np.ones(3), return_grad=True, out=(None, np.empty(3)))


# --------------------------------------------------------- 2. buffers

def test_tensor_options_are_buffers():
    w = torch.tensor(_W5, dtype=torch.float32)
    m = flt.CrossEntropyLoss(weight=w, label_smoothing=0.1)
    ref = nn.CrossEntropyLoss(weight=w, label_smoothing=0.1)
    assert list(m.state_dict()) == list(ref.state_dict()) == ["weight"]
    assert m.weight is w
    assert repr(m) == "CrossEntropyLoss(label_smoothing=0.1)"
    assert repr(flt.CrossEntropyLoss()) == repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert flt.CrossEntropyLoss().weight is None and "weight" in dict(flt.CrossEntropyLoss().named_buffers(
        remove_duplicate=False)) or flt.CrossEntropyLoss().weight is None
    m64 = m.double()
    assert m64 is m and m.weight.dtype == torch.float64
    x = torch.randn(6, 5, dtype=D, requires_grad=True)
    y = torch.randint(0, 5, (6,))
    _close(m(x, y), nn.CrossEntropyLoss(weight=w.double(), label_smoothing=0.1)(x, y), "after .double()")
    m.to(torch.float32)
    assert m.weight.dtype == torch.float32
    # load_state_dict and in-place changes reach the loss
    m2 = flt.CrossEntropyLoss(weight=torch.ones(5), label_smoothing=0.1)
    m2.load_state_dict(ref.state_dict())
    _close(m2(x, y), ref(x.float(), y), "after load_state_dict", rtol=1e-6, atol=1e-7)
    m2.weight.mul_(2.0)
    _close(m2(x, y), nn.CrossEntropyLoss(weight=2 * w, label_smoothing=0.1)(x.float(), y), "in-place",
           rtol=1e-6, atol=1e-7)
    bce = flt.BCEWithLogitsLoss(pos_weight=torch.tensor([1.0, 2.0]))
    assert set(bce.state_dict()) == {"pos_weight"} and bce.weight is None


def test_module_options_are_attributes():
    m = flt.HuberLoss("sum", 0.5)
    assert (m.reduction, m.delta) == ("sum", 0.5)
    assert repr(m) == "HuberLoss(reduction='sum', delta=0.5)"
    x, t = torch.randn(5, dtype=D), torch.randn(5, dtype=D)
    _close(m(x, t), F.huber_loss(x, t, "sum", 0.5), "options")
    m.reduction, m.delta = "mean", 2.0  # as torch.nn: changed options apply to the next call
    _close(m(x, t), F.huber_loss(x, t, "mean", 2.0), "changed options")
    m.delta = -1.0
    with pytest.raises(ValueError, match=r"HuberLoss: delta must be > 0, got -1.0"):
        m(x, t)


# --------------------------------------------------------- 3. errors

@pytest.mark.parametrize("call, arg", [
    (lambda: flt.mse_loss(np.zeros(3), torch.zeros(3)), "input"),
    (lambda: flt.mse_loss(torch.zeros(3), np.zeros(3)), "target"),
    (lambda: flt.cross_entropy(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), np.ones(3)), "weight"),
    (lambda: flt.MSELoss()(torch.zeros(3), np.zeros(3)), "target"),
    (lambda: flt.MSELoss()(torch.zeros(3), torch.zeros(3), weight=np.ones(3)), "weight"),
    (lambda: flt.CrossEntropyLoss(weight=np.ones(3)), "weight"),
    (lambda: flt.BCEWithLogitsLoss(pos_weight=np.ones(3)), "pos_weight"),
])
def test_numpy_arrays_refused_before_any_work(call, arg):
    with pytest.raises(TypeError, match=rf"fastloss.torch.\w+: {arg} must be a torch.Tensor, got a numpy.ndarray "
                                        rf"\(fastloss.torch takes tensors; the NumPy API is fastloss.\w+\)"):
        call()


@pytest.mark.parametrize("arg", ["input", "target", "weight"])
def test_numpy_api_refuses_tensors_that_require_grad(arg):
    x = torch.randn(4, 3, requires_grad=True)
    kw = {"input": np.zeros((4, 3)), "target": np.zeros((4, 3)), "weight": None}
    kw[arg] = x
    with pytest.raises(TypeError, match=rf"mse_loss: {arg} is a torch.Tensor that requires grad; fastloss's NumPy "
                                        rf"API takes arrays and gives no autograd: use fastloss.torch.mse_loss "
                                        rf"\(the same loss, differentiable\), or pass {arg}.detach\(\)"):
        fl.mse_loss(**kw)
    with pytest.raises(TypeError, match=r"cross_entropy: target is a torch.Tensor that requires grad"):
        fl.cross_entropy(np.zeros((4, 3)), x)


def test_adapter_broadcast_error_names_function_and_argument():
    x = torch.randn(4, 3, requires_grad=True)
    v = torch.rand(5, requires_grad=True)
    with pytest.raises(ValueError, match=r"fastloss.torch.gaussian_nll_loss: var of shape \(5,\) cannot be broadcast "
                                         r"to the input's shape \(4, 3\)"):
        flt.gaussian_nll_loss(x, torch.randn(4, 3), v)
    with pytest.raises(ValueError, match=r"fastloss.torch.gaussian_nll_loss: target of shape \(2, 3\) cannot be "
                                         r"broadcast to the input's shape \(4, 3\)"):
        flt.gaussian_nll_loss(x, torch.randn(2, 3, requires_grad=True), torch.ones(4, 3))


# --------------------------------------------------------- 4. shapes

@pytest.mark.parametrize("tshape", [(7, 1), (1, 5), (5,), (7, 5)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gaussian_broadcast_target(tshape, reduction):
    rng = np.random.default_rng(8)
    x, var = rng.normal(size=(7, 5)), rng.uniform(0.3, 2, (7, 5))
    t = rng.normal(size=tshape)
    ref_ops = [_t(x, True), _t(t, True), _t(var, True)]
    ours = [_t(x, True), _t(t, True), _t(var, True)]
    ref = F.gaussian_nll_loss(*ref_ops, reduction=reduction)
    out = flt.gaussian_nll_loss(*ours, reduction=reduction)
    _close(out, ref, "value")
    ref.sum().backward()
    out.sum().backward()
    for a, b, n in zip(ours, ref_ops, ("input", "target", "var")):
        assert a.grad.shape == b.grad.shape
        _close(a.grad, b.grad, f"grad {n}")
    # the NumPy API, and the module
    v = fl.gaussian_nll_loss(x, t, var, reduction=reduction)
    np.testing.assert_allclose(v, ref.detach().numpy(), rtol=1e-12)
    _close(flt.GaussianNLLLoss(reduction=reduction)(_t(x), _t(t), _t(var)), ref, "module")
    v, gx, gv, gt = fl.gaussian_nll_loss(x, t, var, reduction=reduction, return_grad=("input", "var", "target"))
    np.testing.assert_allclose(gt, ours[1].grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("xshape, tshape", [((), ()), ((), (1,)), ((4,), (1,)), ((4,), ())])
def test_multi_margin_small_shapes(xshape, tshape, reduction):
    rng = np.random.default_rng(9)
    x = rng.normal(size=xshape)
    y = np.full(tshape, 0 if xshape == () else 2, np.int64)
    X, X2 = _t(x, True), _t(x, True)
    ref = F.multi_margin_loss(X2, torch.from_numpy(y), reduction=reduction)
    out = flt.multi_margin_loss(X, torch.from_numpy(y), reduction=reduction)
    assert out.shape == ref.shape
    _close(out, ref, "value")
    ref.sum().backward()
    out.sum().backward()
    _close(X.grad, X2.grad, "grad")
    v, g = fl.multi_margin_loss(x, y, reduction=reduction, return_grad=True)
    assert np.shape(v) == tuple(ref.shape) and g.shape == xshape
    g2, h2 = fl.MultiMarginLoss(p=2, reduction=reduction).grad_hess(x, y)
    assert g2.shape == h2.shape == xshape


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("wshape", [(6, 5), (6, 1), (1, 5), (5,)])
def test_multilabel_elementwise_weight(wshape, reduction):
    rng = np.random.default_rng(10)
    x, t = rng.normal(size=(6, 5)), (rng.random((6, 5)) < 0.5).astype(np.float64)
    w = rng.uniform(0.2, 2, wshape)
    X, X2, T, T2 = _t(x, True), _t(x, True), _t(t, True), _t(t, True)
    ref = F.multilabel_soft_margin_loss(X2, T2, _t(w), reduction=reduction)
    out = flt.multilabel_soft_margin_loss(X, T, _t(w), reduction=reduction)
    _close(out, ref, "value")
    ref.sum().backward()
    out.sum().backward()
    _close(X.grad, X2.grad, "grad input")
    _close(T.grad, T2.grad, "grad target")
    _close(flt.MultiLabelSoftMarginLoss(_t(w), reduction=reduction)(_t(x), _t(t)), ref, "module")
    v = fl.multilabel_soft_margin_loss(x, t, w, reduction=reduction)
    np.testing.assert_allclose(v, ref.detach().numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match=r"multilabel_soft_margin_loss: weight of shape \(4,\) cannot be broadcast "
                                         r"to the input's shape \(6, 5\)"):
        fl.multilabel_soft_margin_loss(x, t, np.ones(4))


# --------------------------------------------------------- 5. import

def _run(code):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


def test_import_without_dynamo_then_first_call_under_torch_compile():
    """``import fastloss.torch`` and an eager call leave ``torch._dynamo``
    unimported; the first call from compiled code then applies
    torch.compiler.disable and gives eager's value and gradient (one fresh
    process for both: each costs an import of torch)."""
    r = _run("import sys, torch, fastloss.torch as flt, torch.nn.functional as F\n"
             "x = torch.randn(4, requires_grad=True)\n"
             "flt.mse_loss(x, torch.zeros(4)).backward()\n"
             "print('dynamo imported:', 'torch._dynamo' in sys.modules)\n"
             "torch.manual_seed(0)\n"
             "x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)\n"
             "t = torch.randn(6, 3, dtype=torch.float64)\n"
             "f = torch.compile(lambda a, b: flt.huber_loss(a * 2, b, 'mean', 0.5) + 1, backend='eager')\n"
             "v = f(x, t); v.backward(); g = x.grad.clone(); x.grad = None\n"
             "(F.huber_loss(x * 2, t, 'mean', 0.5) + 1).backward()\n"
             "print(torch.allclose(v, F.huber_loss(x * 2, t, 'mean', 0.5) + 1), torch.allclose(g, x.grad))")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "dynamo imported: False", "import fastloss.torch (or an eager call) imported torch._dynamo"
    assert lines[-1] == "True True"
