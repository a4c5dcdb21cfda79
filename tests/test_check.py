"""check=True on every loss call: the keyword is on every public loss
function and loss-class method (keyword-only, default False), was added by
recompiling the function (no wrapper on the default path), warns the
findings of diagnose at the caller's line, and changes no result."""
import inspect
import warnings

import numpy as np
import pytest

import fastloss as fl
from fastloss import _check
from fastloss import _diagnose as D

RNG = np.random.default_rng(11)


def _functions():
    return sorted(D.EXPECT)


def _methods():
    out = []
    for e in D.EXPECT.values():
        cls = getattr(fl, e.cls)
        for m in _check.METHODS:
            out.append((e.cls, m))
    return out


@pytest.mark.parametrize("name", _functions())
def test_every_loss_function_takes_check(name):
    p = inspect.signature(getattr(fl, name)).parameters["check"]
    assert p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is False
    assert list(inspect.signature(getattr(fl, name)).parameters)[-1] == "check"


@pytest.mark.parametrize("cls,method", _methods())
def test_every_loss_method_takes_check(cls, method):
    p = inspect.signature(getattr(getattr(fl, cls), method)).parameters["check"]
    assert p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is False


def test_every_one_was_recompiled_not_wrapped():
    assert _check.rewritten and set(_check.rewritten.values()) == {"rewrite"}, \
        {k: v for k, v in _check.rewritten.items() if v != "rewrite"}
    for name in _functions():
        fn = getattr(fl, name)
        assert not hasattr(fn, "__wrapped__")
        assert fn.__code__.co_filename.endswith(".py") and "_check" not in fn.__code__.co_filename


def test_the_recompiled_function_keeps_its_identity():
    fn = fl.gaussian_nll_loss
    assert fn.__name__ == "gaussian_nll_loss" and fn.__module__ == "fastloss._pointwise_losses"
    assert fn._grad_args == ("input", "var") and "Gaussian negative log-likelihood" in fn.__doc__
    import fastloss._pointwise_losses as P
    assert P.gaussian_nll_loss is fn
    src_line = inspect.getsourcelines(fn)[1]
    try:
        fl.mse_loss(np.zeros(3), np.zeros(4))
    except ValueError as exc:
        tb = exc.__traceback__
        frames = []
        while tb:
            frames.append((tb.tb_frame.f_code.co_name, tb.tb_frame.f_code.co_filename, tb.tb_lineno))
            tb = tb.tb_next
    name, file, line = [f for f in frames if f[0] == "mse_loss"][0]
    assert file == inspect.getsourcefile(fl.mse_loss)
    assert "return run(" in open(file).read().splitlines()[line - 1] or "run(" in \
        open(file).read().splitlines()[line - 1]
    assert src_line > 1


def _calls():
    """(callable, args, kwargs, expected code) for a mistake caught per loss shape."""
    logits = RNG.normal(size=(200, 4))
    labels = RNG.integers(0, 4, 200)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    x = RNG.normal(size=200)
    y01 = (RNG.random(200) < 0.3).astype(float)
    return [
        (fl.cross_entropy, (probs, labels), {}, "probabilities_as_logits"),
        (fl.CrossEntropyLoss(), (probs, labels), {}, "probabilities_as_logits"),
        (fl.CrossEntropyLoss().value_and_grad, (probs, labels), {}, "probabilities_as_logits"),
        (fl.CrossEntropyLoss().grad_hess, (probs, labels), {}, "probabilities_as_logits"),
        (fl.mse_loss, (x, y01), {}, "regression_on_classes"),
        (fl.MSELoss().value_and_grad, (x, y01), {}, "regression_on_classes"),
        (fl.BCELoss(), (np.full(200, 0.5), labels.astype(float)), {}, "labels_for_binary"),
        (fl.binary_cross_entropy_with_logits, (1 / (1 + np.exp(-x)), y01), {}, "probabilities_as_logits"),
        (fl.nll_loss, (logits, labels), {}, "not_log_probabilities"),
        (fl.gaussian_nll_loss, (x, np.full(200, 2.0), np.ones(200)), {}, "constant_target"),
        (fl.GaussianNLLLoss(), (x, np.full(200, 2.0), np.ones(200)), {}, "constant_target"),
        (fl.CrossEntropyLoss(ignore_index=1), (logits, np.ones(200, np.int64)), {}, "weights_zero"),
        (fl.cross_entropy, (logits, np.ones(200, np.int64)), {"ignore_index": 1}, "weights_zero"),
        (fl.mse_loss, (x, x + 1), {"weight": np.zeros(200)}, "weights_zero"),
    ]


@pytest.mark.parametrize("k", range(len(_calls())))
def test_check_true_warns_at_the_callers_line(k):
    fn, args, kw, code = _calls()[k]
    with pytest.warns(fl.LossWarning) as rec:
        got = fn(*args, check=True, **kw)
    codes = [r.message.finding.code for r in rec]
    assert code in codes, codes
    assert all(r.filename == __file__ for r in rec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        want = fn(*args, **kw)                       # the default: no check, no warning
    _same(got, want)


def _same(a, b):
    if isinstance(a, tuple):
        assert len(a) == len(b)
        for u, v in zip(a, b):
            _same(u, v)
    else:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_check_false_runs_no_check(monkeypatch):
    calls = []
    monkeypatch.setattr(_check, "check_call", lambda op, *a: calls.append(op))
    logits = RNG.normal(size=(50, 3))
    labels = RNG.integers(0, 3, 50)
    fl.cross_entropy(logits, labels)
    fl.CrossEntropyLoss()(logits, labels)
    fl.CrossEntropyLoss().value_and_grad(logits, labels)
    fl.mse_loss(logits[:, 0], logits[:, 1])
    assert calls == []
    fl.cross_entropy(logits, labels, check=True)
    fl.mse_loss(logits[:, 0], logits[:, 1], check=True)
    fl.MSELoss().grad_hess(logits[:, 0], logits[:, 1], check=True)
    assert calls == ["cross_entropy", "mse_loss", "mse_loss"]


@pytest.mark.parametrize("name", _functions())
def test_clean_calls_give_no_warning_and_the_same_bits(name):
    from test_diagnose import _clean

    x, t, extra = _clean(name, np.random.default_rng(3), 500)
    fn = getattr(fl, name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = fn(x, t, *extra, return_grad=True, check=True)
    _same(a, fn(x, t, *extra, return_grad=True))
    loss = getattr(fl, D.EXPECT[name].cls)()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _same(loss.value_and_grad(x, t, *extra, check=True), loss.value_and_grad(x, t, *extra))


def test_a_function_that_cannot_be_recompiled_gets_a_wrapper():
    def odd(input, target, **kwargs):
        return float(np.sum(input))

    w = _check.with_check(odd, "mse_loss")
    assert _check.rewritten[odd.__qualname__] == "wrapper"
    assert list(inspect.signature(w).parameters)[-2:] == ["check", "kwargs"]
    assert w(np.ones(3), np.zeros(3)) == 3.0
    with pytest.warns(fl.LossWarning, match="target is 0/1"):
        w(np.linspace(0, 1, 20), np.r_[np.ones(5), np.zeros(15)], check=True)


def test_fastloss_torch_functions_pass_check_through():
    torch = pytest.importorskip("torch")
    import fastloss.torch as flt

    x = torch.tensor(RNG.normal(size=100), requires_grad=True)
    y = torch.tensor((RNG.random(100) < 0.3).astype(float))
    with pytest.warns(fl.LossWarning, match="mse_loss: target is 0/1"):
        v = flt.mse_loss(x, y, check=True)
    v.backward()
    assert x.grad is not None
