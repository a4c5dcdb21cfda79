"""check=True on every loss call: the keyword is on every public loss
function and loss-class method (keyword-only, the last, default False), is
an ordinary parameter passed to the driver (no wrapper, no recompiled
code), runs the checks once per call, warns the findings of diagnose at
the caller's line, and changes no result."""
import inspect
import sys
import warnings

import numpy as np
import pytest

import fastloss as fl
from fastloss import _check
from fastloss import _diagnose as D

RNG = np.random.default_rng(11)
METHODS = ("__call__", "value_and_grad", "grad_hess")


def _functions():
    return sorted(D.EXPECT)


def _methods():
    out = []
    for e in D.EXPECT.values():
        cls = getattr(fl, e.cls)
        for m in METHODS:
            if hasattr(cls, m):                  # grad_hess only where a diagonal Hessian is defined
                out.append((e.cls, m))
    return out


def test_every_public_loss_takes_check_whatever_its_row():
    """Not only the rows of EXPECT: every public function that returns a
    gradient and every class with value_and_grad (the losses of issues 13
    and 14 had no row, were exempted from the diagnose table, and so
    escaped the tests above)."""
    missing = []
    for name in fl.__all__:
        obj = getattr(fl, name)
        if isinstance(obj, type):
            for m in METHODS if hasattr(obj, "value_and_grad") else ():
                if hasattr(obj, m) and list(inspect.signature(getattr(obj, m)).parameters)[-1] != "check":
                    missing.append(f"{name}.{m}")
        elif callable(obj) and "return_grad" in inspect.signature(obj).parameters:
            if list(inspect.signature(obj).parameters)[-1] != "check":
                missing.append(name)
            if name not in D.EXPECT:
                missing.append(f"{name} (no row in EXPECT)")
    assert missing == []


@pytest.mark.parametrize("name", _functions())
def test_every_loss_function_takes_check(name):
    p = inspect.signature(getattr(fl, name)).parameters["check"]
    assert p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is False
    assert list(inspect.signature(getattr(fl, name)).parameters)[-1] == "check"


@pytest.mark.parametrize("cls,method", _methods())
def test_every_loss_method_takes_check(cls, method):
    params = inspect.signature(getattr(getattr(fl, cls), method)).parameters
    p = params["check"]
    assert p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is False
    assert list(params)[-1] == "check"


@pytest.mark.parametrize("name", _functions())
def test_check_is_a_parameter_of_the_source_not_a_rewrite(name):
    """The function in the package is the one its module defines, compiled
    from its file, with check=False in its own signature and passed on."""
    fn = getattr(fl, name)
    assert not hasattr(fn, "__wrapped__") and fn is getattr(sys.modules[fn.__module__], name)
    assert fn.__code__.co_filename == inspect.getsourcefile(sys.modules[fn.__module__])
    src = inspect.getsource(fn)
    # passed on to the driver, or, for a loss whose operands reach its drivers in pieces (several driver
    # calls, or operands a driver sees unnamed: GAN, VAE, PPO, TD, ...), its one check before the first
    assert "check=False" in src and ("check=check" in src or src.count("_check.check_call(") == 1)
    assert not hasattr(_check, "install")


def test_a_loss_keeps_its_source_lines_in_tracebacks():
    fn = fl.gaussian_nll_loss
    assert fn._grad_args == ("input", "var") and "Gaussian negative log-likelihood" in fn.__doc__
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
    sx = RNG.normal(size=(4, 8, 8))
    mask = (RNG.random(sx.shape) < 0.3).astype(float)
    sl = RNG.normal(size=(4, 3, 8, 8))
    slab = RNG.integers(0, 3, (4, 8, 8))
    xy = RNG.uniform(0, 50, (40, 2))
    boxes = np.concatenate([xy, xy + RNG.uniform(5, 20, (40, 2))], axis=1)
    return [
        (fl.dice_loss, (1 / (1 + np.exp(-sx)), mask), {}, "probabilities_as_logits"),
        (fl.DiceLoss(mode="multiclass").value_and_grad, (np.exp(sl) / np.exp(sl).sum(1, keepdims=True), slab), {},
         "probabilities_as_logits"),
        (fl.JaccardLoss(from_logits=False), (sx, mask), {}, "logits_as_probabilities"),
        (fl.bce_dice_loss, (sx, np.zeros_like(mask)), {}, "constant_target"),
        (fl.ce_dice_loss, (np.exp(sl) / np.exp(sl).sum(1, keepdims=True), slab), {}, "probabilities_as_logits"),
        (fl.LovaszSoftmaxLoss(), (sl, np.full((4, 8, 8), 2)), {}, "constant_target"),
        (fl.generalized_box_iou_loss, (boxes[:, [2, 3, 0, 1]], boxes), {}, "inverted_boxes"),
        (fl.CompleteBoxIoULoss().value_and_grad, (boxes / 100, boxes), {}, "box_units"),
        (fl.trimmed, (x, y01, fl.MSELoss()), {}, "regression_on_classes"),
        (fl.Winsorized(fl.L1Loss()).value_and_grad, (x, y01), {}, "regression_on_classes"),
        (fl.Trimmed(fl.HuberLoss()).grad_hess, (x, y01), {}, "regression_on_classes"),
        (fl.mean_absolute_percentage_error, (x, np.where(y01 > 0, 0.0, 2.0)), {}, "zero_targets"),
        (fl.triplet_margin_loss, (np.ones((8, 8)), sl[0, 0], sl[1, 0]), {}, "collapsed_embeddings"),
        (fl.ContrastiveLoss().value_and_grad, (x.reshape(50, 4), x[::-1].reshape(50, 4), np.zeros(50)), {},
         "constant_target"),
        (fl.batch_all_triplet_loss, (x.reshape(50, 4), np.r_[np.arange(30), np.repeat(np.arange(30, 40), 2)]), {},
         "batch_labels"),
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
    ] + _calls_of_issue_14(x, y01, logits, labels, probs)


def _calls_of_issue_14(x, y01, logits, labels, probs):
    """The generative, RL, CTC and combined losses: functions and class methods."""
    lp = np.log(RNG.uniform(0.05, 1.0, 200))
    adv = RNG.normal(size=200)
    sig = 1 / (1 + np.exp(-x))
    mu = RNG.normal(size=(20, 4))
    img = RNG.uniform(0, 1, (20, 16))
    z = RNG.normal(size=(12, 4, 5))
    ctc = (RNG.integers(1, 5, (4, 3)), [12] * 4, [3] * 4)
    terms = [(1.0, fl.BCEWithLogitsLoss()), (0.5, fl.DiceLoss("binary"))]
    return [
        (fl.policy_gradient_loss, (np.exp(lp), adv), {}, "not_log_probabilities"),
        (fl.PolicyGradientLoss().value_and_grad, (lp, np.zeros(200)), {}, "zero_advantages"),
        (fl.ppo_clip_loss, (lp, lp, np.zeros(200)), {}, "zero_advantages"),
        (fl.PPOClipLoss(), (lp, np.exp(lp), adv), {}, "not_log_probabilities"),
        (fl.PPOClipLoss().value_and_grad, (lp, np.exp(lp), adv), {}, "not_log_probabilities"),
        (fl.value_loss, (x, np.where(y01 > 0, np.nan, x)), {}, "nan_target"),
        (fl.ValueLoss(clip_eps=0.2).value_and_grad, (x, x, np.where(y01 > 0, np.nan, x)), {"weight": np.ones(200)},
         "nan_input"),
        (fl.td_loss, (x, y01, x, np.full(200, 0.99)), {}, "not_done_flags"),
        (fl.TDLoss().value_and_grad, (x, y01, x, 2 * y01 - 1), {}, "not_done_flags"),
        (fl.policy_gradient_loss_from_logits, (probs, labels, adv), {}, "probabilities_as_logits"),
        (fl.PolicyGradientLossFromLogits().value_and_grad, (logits, labels, np.zeros(200)), {}, "zero_advantages"),
        (fl.ppo_clip_loss_from_logits, (logits, labels, np.exp(lp), adv), {}, "not_log_probabilities"),
        (fl.PPOClipLossFromLogits(), (probs, labels, lp, adv), {}, "probabilities_as_logits"),
        (fl.gan_discriminator_loss, (sig, sig[:100]), {}, "gan_sigmoid"),
        (fl.GANDiscriminatorLoss(kind="hinge").value_and_grad, (x, sig), {}, "gan_sigmoid"),
        (fl.gan_generator_loss, (sig,), {"kind": "wasserstein"}, "gan_sigmoid"),
        (fl.GANGeneratorLoss(), (sig,), {}, "gan_sigmoid"),
        (fl.gradient_penalty, (np.where(mu > 1, np.nan, mu),), {}, "nan_input"),
        (fl.GradientPenalty().value_and_grad, (np.where(mu > 1, np.nan, mu),), {}, "nan_input"),
        (fl.gaussian_kl_loss, (mu, np.where(mu > 1, np.nan, mu)), {}, "nan_target"),
        (fl.GaussianKLLoss().value_and_grad, (np.where(mu > 1, np.nan, mu), mu), {}, "nan_input"),
        (fl.vae_loss, (img * 4 - 2, np.round(img * 255), mu, mu), {}, "image_out_of_range"),
        (fl.VAELoss().value_and_grad, (img, img, mu, mu), {}, "probabilities_as_logits"),
        (fl.VAELoss(recon="mse"), (img, img, np.where(mu > 1, np.nan, mu), mu), {}, "nan_input"),
        (fl.ctc_loss, (z,) + ctc, {}, "not_log_probabilities"),
        (fl.CTCLoss().value_and_grad, (z,) + ctc, {}, "not_log_probabilities"),
        (fl.CTCLoss(from_logits=True), (np.exp(z) / np.exp(z).sum(-1, keepdims=True),) + ctc, {},
         "probabilities_as_logits"),
        (fl.combined_loss, (sig.reshape(4, 50), y01.reshape(4, 50), terms), {}, "probabilities_as_logits"),
        (fl.CombinedLoss(terms).value_and_grad, (sig.reshape(4, 50), y01.reshape(4, 50)), {},
         "probabilities_as_logits"),
        (fl.CombinedLoss(terms[:1] + [(1.0, fl.SigmoidFocalLoss())]).grad_hess,
         (sig.reshape(4, 50), y01.reshape(4, 50)), {}, "probabilities_as_logits"),
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


@pytest.mark.parametrize("call", [
    lambda r: fl.cosine_embedding_loss(r.normal(size=(20, 4)), r.normal(size=(20, 4)), r.integers(0, 2, 20) * 1.0,
                                       check=True),
    lambda r: fl.MarginRankingLoss().value_and_grad(r.normal(size=20), r.normal(size=20), r.integers(0, 2, 20) * 1.0,
                                                    check=True),
    lambda r: fl.ContrastiveLoss()(r.normal(size=(20, 4)), r.normal(size=(20, 4)), np.arange(20.0) % 3, check=True),
    lambda r: fl.batch_hard_triplet_loss(r.normal(size=(20, 4)), np.arange(20), check=True),
], ids=["cosine_embedding_01", "margin_ranking_01", "contrastive_labels", "batch_hard_distinct"])
def test_embedding_mistakes_warn_then_the_call_raises(call):
    with pytest.warns(fl.LossWarning) as rec:
        with pytest.raises(ValueError):
            call(np.random.default_rng(0))
    assert [r.filename for r in rec] == [__file__]


def test_check_true_warns_before_the_call_raises():
    x = RNG.normal(size=100)
    t = np.abs(x)
    t[5] = 0.0
    with pytest.warns(fl.LossWarning, match=r"^gamma_nll_loss: target has values <= 0") as rec:
        with pytest.raises(ValueError, match=r"^gamma_nll_loss: target must be > 0"):
            fl.gamma_nll_loss(x, t, check=True)
    assert rec[0].filename == __file__
    with pytest.warns(fl.LossWarning, match=r"^tweedie_loss: target has values <= 0"):
        with pytest.raises(ValueError, match=r"^tweedie_loss: target must be > 0 for power >= 2"):
            fl.TweedieLoss(power=2.5)(x, t, check=True)
    sx = RNG.normal(size=(4, 8, 8))
    mask = (RNG.random(sx.shape) < 0.3).astype(float)
    with pytest.warns(fl.LossWarning, match=r"^bce_dice_loss: .*a 0/255 image mask"):
        with pytest.raises(ValueError, match=r"^bce_dice_loss: target must be in \[0, 1\]"):
            fl.bce_dice_loss(sx, mask * 255, check=True)
    sl, slab = RNG.normal(size=(4, 3, 8, 8)), RNG.integers(0, 3, (4, 8, 8))
    with pytest.warns(fl.LossWarning, match=r"^dice_loss: target is one-hot"):
        with pytest.raises(ValueError, match=r"^dice_loss: mode='multiclass' expects target of shape"):
            fl.DiceLoss(mode="multiclass").value_and_grad(sl, np.eye(3)[slab].transpose(0, 3, 1, 2), check=True)


def _same(a, b):
    if isinstance(a, tuple):
        assert len(a) == len(b)
        for u, v in zip(a, b):
            _same(u, v)
    else:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_check_false_runs_no_check(monkeypatch):
    calls = []
    monkeypatch.setattr(_check, "check_call", lambda op, *a, **k: calls.append(op))
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
    from test_diagnose import _clean, _instance, _ops

    x, t, extra = _clean(name, np.random.default_rng(3), 500)
    fn = getattr(fl, name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = fn(*_ops(x, t, extra), return_grad=True, check=True)
    _same(a, fn(*_ops(x, t, extra), return_grad=True))
    loss, extra = _instance(name, extra)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _same(loss.value_and_grad(*_ops(x, t, extra), check=True), loss.value_and_grad(*_ops(x, t, extra)))


@pytest.mark.parametrize("name", _functions())
def test_the_checks_run_once_per_call_in_the_driver(name, monkeypatch):
    """Every form of every loss reaches its driver's one ``if check:`` once
    (a class's call through its function, a trimmed loss through the
    pointwise driver: still once)."""
    from test_diagnose import _clean, _instance, _ops

    x, t, extra = _clean(name, np.random.default_rng(5), 64)
    ops = _ops(x, t, extra)
    calls = []
    monkeypatch.setattr(_check, "check_call", lambda op, *a, **k: calls.append((op, k.get("loss"))))
    want = name
    obj, obj_extra = _instance(name, extra)
    obj_ops = _ops(x, t, obj_extra)
    forms = [lambda c: getattr(fl, name)(*ops, check=c),
             lambda c: getattr(fl, name)(*ops, return_grad=True, check=c),
             lambda c: obj(*obj_ops, check=c),
             lambda c: obj.value_and_grad(*obj_ops, check=c)]
    if hasattr(obj, "grad_hess"):
        forms.append(lambda c: obj.grad_hess(*obj_ops, check=c))
    for form in forms:
        calls.clear()
        form(False)
        assert calls == []
        form(True)
        assert len(calls) == 1 and calls[0][0] == want, calls
        if D.EXPECT[name].input == "loss":
            assert calls[0][1] is not None                 # the loss trimmed is what is checked


def test_fastloss_torch_functions_pass_check_through():
    torch = pytest.importorskip("torch")
    import fastloss.torch as flt

    x = torch.tensor(RNG.normal(size=100), requires_grad=True)
    y = torch.tensor((RNG.random(100) < 0.3).astype(float))
    with pytest.warns(fl.LossWarning, match="mse_loss: target is 0/1") as rec:
        v = flt.mse_loss(x, y, check=True)
    assert [r.filename for r in rec] == [__file__]          # through torch.autograd: still the caller's line
    v.backward()
    assert x.grad is not None
    p = inspect.signature(flt.dice_loss).parameters["check"]
    assert p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is False
    with pytest.warns(fl.LossWarning, match="dice_loss: every input value is in") as rec:
        flt.dice_loss(torch.rand(2, 8, 8, requires_grad=True), (torch.rand(2, 8, 8) < 0.3).double(), check=True)
    assert [r.filename for r in rec] == [__file__]


def test_fastloss_dask_passes_check_to_the_chunks():
    """fastloss.dask's wrappers take check= and each chunk's call (and each
    term's, for the losses that are sums of terms) runs the checks."""
    da = pytest.importorskip("dask.array")
    import fastloss.dask as fld

    lp = np.log(RNG.uniform(0.05, 1.0, 64))
    adv = RNG.normal(size=64)
    img = RNG.uniform(0, 1, (16, 8))
    mu = RNG.normal(size=(16, 4))
    real, fake = RNG.normal(size=64), RNG.uniform(size=32)
    for call, code in [
        (lambda c: fld.policy_gradient_loss(da.from_array(np.exp(lp), chunks=32), da.from_array(adv, chunks=32),
                                            check=c), "not_log_probabilities"),
        (lambda c: fld.vae_loss(da.from_array(img, chunks=(8, 8)), da.from_array(np.round(img * 255), chunks=(8, 8)),
                                da.from_array(mu, chunks=(8, 4)), da.from_array(mu, chunks=(8, 4)), check=c),
         "image_out_of_range"),
        (lambda c: fld.gan_discriminator_loss(da.from_array(real, chunks=32), da.from_array(fake, chunks=16),
                                              check=c), "gan_sigmoid"),
    ]:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            want = call(False).compute()
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            got = call(True).compute()
        assert code in [r.message.finding.code for r in rec if issubclass(r.category, fl.LossWarning)]
        assert got == want
