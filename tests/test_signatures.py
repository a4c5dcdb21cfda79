"""Every public function and class of ``fastloss`` and ``fastloss.torch``
has its PyTorch twin's signature.

Where ``torch.nn.functional`` / ``torch.nn`` has the loss, the twin's
parameters (name, kind, default) are a prefix of fastloss's, so a PyTorch
call -- positional arguments included -- means the same here; what follows
is keyword-only (fastloss's ``return_grad``, ``out``, ``n_threads``, and
``weight`` where PyTorch has none).  Losses PyTorch lacks follow the
conventions' non-torch form (docs/conventions.md): functions
``(input, target, <parameters>, *, ..., weight=None, ..., reduction="mean",
return_grad=False, out=None, n_threads=None)``, classes ``(<parameters>
including reduction="mean", *, n_threads=None)`` (Poly-1 keeps
``CrossEntropyLoss``'s order for the options it shares).
"""
import inspect

import numpy as np
import pytest

import fastloss as fl

torch = pytest.importorskip("torch")
import fastloss.torch as flt  # noqa: E402

F, nn = torch.nn.functional, torch.nn
P = inspect.Parameter

# fastloss losses that PyTorch does not have (checked against the non-torch form)
NOT_IN_TORCH = {
    "log_cosh_loss", "quantile_loss", "sigmoid_focal_loss", "hinge_loss", "squared_hinge_loss",
    "softmax_focal_loss", "poly1_cross_entropy",
    "LogCoshLoss", "QuantileLoss", "SigmoidFocalLoss", "HingeLoss", "SquaredHingeLoss", "SoftmaxFocalLoss",
    "Poly1CrossEntropyLoss",
    # the regression catalogue (fastloss._regression_losses) and the trimmed/winsorized reductions
    "gamma_nll_loss", "tweedie_loss", "pseudo_huber_loss", "fair_loss", "cauchy_loss", "tukey_biweight_loss",
    "expectile_loss", "mean_absolute_percentage_error", "mean_squared_logarithmic_error", "trimmed", "winsorized",
    "GammaNLLLoss", "TweedieLoss", "PseudoHuberLoss", "FairLoss", "CauchyLoss", "TukeyBiweightLoss",
    "ExpectileLoss", "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "Trimmed", "Winsorized",
    # the set-overlap losses (segmentation_models_pytorch's definitions)
    "dice_loss", "jaccard_loss", "tversky_loss", "bce_dice_loss", "ce_dice_loss", "lovasz_hinge_loss",
    "lovasz_softmax_loss", "DiceLoss", "JaccardLoss", "TverskyLoss", "BCEDiceLoss", "CEDiceLoss",
    "LovaszHingeLoss", "LovaszSoftmaxLoss",
    # the embedding losses PyTorch lacks
    "contrastive_loss", "cosine_distance_loss", "batch_hard_triplet_loss", "batch_all_triplet_loss", "nt_xent_loss",
    "ContrastiveLoss", "CosineDistanceLoss", "BatchHardTripletLoss", "BatchAllTripletLoss", "NTXentLoss",
    # the generative and RL objectives (issue 14)
    "gaussian_kl_loss", "vae_loss", "gan_discriminator_loss", "gan_generator_loss", "gradient_penalty",
    "policy_gradient_loss", "ppo_clip_loss", "value_loss", "td_loss",
    "GaussianKLLoss", "VAELoss", "GANDiscriminatorLoss", "GANGeneratorLoss", "GradientPenalty",
    "PolicyGradientLoss", "PPOClipLoss", "ValueLoss", "TDLoss", "combined_loss", "CombinedLoss",
    "policy_gradient_loss_from_logits", "ppo_clip_loss_from_logits", "PolicyGradientLossFromLogits",
    "PPOClipLossFromLogits",
}
# losses with torchvision's signature: (boxes1, boxes2, reduction="none", eps=1e-7, *, ...) and
# classes (reduction="none", eps=1e-7, *, n_threads=None)
TORCHVISION_FORM = {
    "box_iou_loss", "generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss",
    "BoxIoULoss", "GeneralizedBoxIoULoss", "DistanceBoxIoULoss", "CompleteBoxIoULoss",
}
NOT_IN_TORCH |= TORCHVISION_FORM
# non-torch losses whose operands are not (input, target): a pair with a
# per-row target, and the in-batch losses' embeddings and labels
OPERANDS = {"contrastive_loss": ["input1", "input2", "target"], "batch_hard_triplet_loss": ["embeddings", "labels"],
            "batch_all_triplet_loss": ["embeddings", "labels"], "nt_xent_loss": ["embeddings", "labels"]}
OPERANDS.update({"gaussian_kl_loss": ["mu", "logvar"], "vae_loss": ["input", "target", "mu", "logvar"],
                 "gan_discriminator_loss": ["real_logits", "fake_logits"], "gan_generator_loss": ["fake_logits"],
                 "gradient_penalty": ["grads"], "policy_gradient_loss": ["log_probs", "advantages"],
                 "ppo_clip_loss": ["log_probs", "old_log_probs", "advantages"], "value_loss": ["values", "returns"],
                 "td_loss": ["values", "rewards", "next_values", "dones"],
                 "policy_gradient_loss_from_logits": ["logits", "actions", "advantages"],
                 "ppo_clip_loss_from_logits": ["logits", "actions", "old_log_probs", "advantages"]})
# public callables that are not losses
NOT_LOSSES = {"get_num_threads", "set_num_threads", "show_config", "cross_entropy_hvp", "suggest", "diagnose",
              "LossWarning", "set_cache_limit", "cache_info"}
# the per-class weight of the softmax focal loss is its alpha (no separate weight=)
WEIGHT_NAME = {"softmax_focal_loss": "alpha"}
# two batches of their own shapes: a weight for each (keyword-only)
WEIGHT_NAME["gan_discriminator_loss"] = "real_weight"
EXTRAS = ("return_grad", "out", "n_threads")


def _public(mod):
    return [n for n in getattr(mod, "__all__") if not n.startswith("__") and callable(getattr(mod, n))]


def _params(obj):
    """Parameters of a function, or of a class's __init__ (without self),
    less the keyword-only ``check`` that fastloss._check adds last to the
    losses diagnose knows (tests/test_check.py tests it)."""
    sig = inspect.signature(obj)
    ps = list(sig.parameters.values())
    if ps and ps[-1].name == "check" and ps[-1].kind is P.KEYWORD_ONLY:
        ps.pop()
    return ps


def _torch_twin(name):
    if name in NOT_IN_TORCH or name in NOT_LOSSES:
        return None
    twin = getattr(F, name, None) if name[0].islower() else getattr(nn, name, None)
    assert twin is not None, f"{name}: no torch twin and not listed as a loss PyTorch lacks"
    return twin


def _describe(ps):
    return ", ".join(f"{p.name}{'=' + repr(p.default) if p.default is not P.empty else ''}"
                     f"{'' if p.kind is P.POSITIONAL_OR_KEYWORD else ' (' + p.kind.name.lower() + ')'}"
                     for p in ps)


def _check_torch_prefix(name, ours, twin):
    theirs = _params(twin)
    assert len(ours) >= len(theirs), f"{name}: fewer parameters than torch's ({_describe(theirs)})"
    for a, b in zip(ours, theirs):
        assert (a.name, a.kind) == (b.name, b.kind) and (a.default is b.default or a.default == b.default), (
            f"{name}: parameter {a.name!r} differs from torch's {b.name!r}\n"
            f"  fastloss: {_describe(ours)}\n  torch:    {_describe(theirs)}")
    extra = ours[len(theirs):]
    for p in extra:
        assert p.kind is P.KEYWORD_ONLY, f"{name}: {p.name} follows torch's parameters and must be keyword-only"
    return extra


@pytest.mark.parametrize("modname", ["fastloss", "fastloss.torch"])
def test_every_public_callable_is_checked(modname):
    mod = fl if modname == "fastloss" else flt
    for name in _public(mod):
        if name in NOT_LOSSES:
            continue
        assert name in NOT_IN_TORCH or _torch_twin(name) is not None


def _functions(mod):
    return [n for n in _public(mod) if not inspect.isclass(getattr(mod, n)) and n not in NOT_LOSSES]


def _classes(mod):
    return [n for n in _public(mod) if inspect.isclass(getattr(mod, n)) and n not in NOT_LOSSES]


@pytest.mark.parametrize("name", _functions(fl))
def test_function_signature(name):
    ours = _params(getattr(fl, name))
    twin = _torch_twin(name)
    if twin is not None:
        extra = _check_torch_prefix(name, ours, twin)
        names = [p.name for p in extra]
        assert names[-3:] == list(EXTRAS), f"{name}: keyword-only tail {names}"
        assert all(p.default is None or p.default is False for p in extra)
        if not any(p.name == "weight" for p in _params(twin)):
            assert "weight" in names, f"{name}: PyTorch has no weight=; fastloss's goes keyword-only"
        return
    if name in TORCHVISION_FORM:
        assert [(p.name, p.default) for p in ours[:4]] == [
            ("boxes1", P.empty), ("boxes2", P.empty), ("reduction", "none"), ("eps", 1e-7)], name
        assert [p.name for p in ours[4:]] == list(EXTRAS) and all(p.kind is P.KEYWORD_ONLY for p in ours[4:])
        return
    # the non-torch form
    lead = OPERANDS.get(name, ["input", "target"])
    assert [p.name for p in ours[:len(lead)]] == lead, name
    kw = [p for p in ours if p.kind is P.KEYWORD_ONLY]
    positional = [p for p in ours[len(lead):] if p.kind is P.POSITIONAL_OR_KEYWORD]
    assert len(positional) + len(kw) + len(lead) == len(ours), f"{name}: no *args/**kwargs"
    kwn = [p.name for p in kw]
    assert kwn[-4:] == ["reduction", *EXTRAS], f"{name}: keyword-only tail {kwn}"
    assert kw[-4].default == "mean"
    wname = WEIGHT_NAME.get(name, "weight")
    assert wname in [p.name for p in ours], f"{name}: no {wname}="
    if wname == "weight":
        assert "weight" in kwn, f"{name}: weight must be keyword-only"
    for p in positional:
        assert p.name not in ("weight", "reduction", *EXTRAS), f"{name}: {p.name} must be keyword-only"


@pytest.mark.parametrize("name", _classes(fl))
def test_class_signature(name):
    ours = _params(getattr(fl, name))
    twin = _torch_twin(name)
    if twin is not None:
        extra = _check_torch_prefix(name, ours, twin)
        # fastloss's own options (CTC's from_logits, batch_first) may come
        # before n_threads, keyword-only (_check_torch_prefix checks the kind)
        assert [p.name for p in extra][-1] == "n_threads" and extra[-1].default is None, name
        assert all(p.default is False for p in extra[:-1]), name
        return
    assert ours[-1].name == "n_threads" and ours[-1].kind is P.KEYWORD_ONLY, name
    assert all(p.kind is P.POSITIONAL_OR_KEYWORD for p in ours[:-1]), name
    red = [p for p in ours if p.name == "reduction"]
    assert red and red[0].default == ("none" if name in TORCHVISION_FORM else "mean"), name


@pytest.mark.parametrize("name", _functions(flt))
def test_torch_function_signature(name):
    """fastloss.torch's functions: fastloss's signature without return_grad and out."""
    ours = _params(getattr(flt, name))
    assert [p.name for p in ours] == [p.name for p in _params(getattr(fl, name))
                                      if p.name not in ("return_grad", "out")]
    twin = _torch_twin(name)
    if twin is not None:
        extra = _check_torch_prefix(name, ours, twin)
        assert [p.name for p in extra][-1] == "n_threads"


@pytest.mark.parametrize("name", _classes(flt))
def test_torch_module_signature(name):
    """fastloss.torch's modules take torch.nn's constructor arguments."""
    ours = _params(getattr(flt, name))
    assert [(p.name, p.kind, p.default) for p in ours] == [
        (p.name, p.kind, p.default) for p in _params(getattr(fl, name))]
    twin = _torch_twin(name)
    if twin is not None:
        _check_torch_prefix(name, ours, twin)


# ------------------------------------------------------- positional calls

def _data(rng):
    x = rng.normal(size=(6, 4))
    t = rng.normal(size=(6, 4))
    p = rng.uniform(0.05, 0.95, (6, 4))
    b = (rng.random((6, 4)) < 0.5).astype(np.float64)
    y = rng.integers(0, 4, 6)
    w = rng.uniform(0.5, 2.0, 4)
    return x, t, p, b, y, w


def _positional_cases(rng):
    """(name, args) with every torch parameter given positionally."""
    x, t, p, b, y, w = _data(rng)
    full_w = np.tile(w, (6, 1))
    return [
        ("mse_loss", (x, t, None, None, "sum", full_w)),
        ("l1_loss", (x, t, None, None, "mean", full_w)),
        ("huber_loss", (x, t, "sum", 0.5, full_w)),
        ("smooth_l1_loss", (x, t, None, None, "mean", 0.7)),
        ("poisson_nll_loss", (x, np.abs(t), True, True, None, 1e-6, None, "sum")),
        ("gaussian_nll_loss", (x, t, p, True, 1e-3, "sum")),
        ("binary_cross_entropy", (p, b, full_w, None, None, "sum")),
        ("binary_cross_entropy_with_logits", (x, b, full_w, None, None, "mean", w)),
        ("soft_margin_loss", (x, np.sign(t), None, None, "sum")),
        ("kl_div", (np.log(p), p[::-1].copy(), None, None, "sum", False)),
        ("cross_entropy", (x, y, w, None, 1, None, "sum", 0.1)),
        ("nll_loss", (np.log(p), y, w, None, 2, None, "mean")),
        ("multi_margin_loss", (x, y, 2, 0.5, w, None, None, "sum")),
        ("multilabel_soft_margin_loss", (x, b, w, None, None, "sum")),
    ]


@pytest.mark.parametrize("form", ["numpy", "torch"])
def test_positional_calls_mean_what_pytorch_means(form):
    """Every torch parameter given positionally: the same value as
    ``torch.nn.functional``'s own call (NumPy API and fastloss.torch)."""
    rng = np.random.default_rng(4)
    for name, args in _positional_cases(rng):
        targs = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args]
        ref = getattr(F, name)(*targs).item()
        if form == "numpy":
            got = getattr(fl, name)(*args)
        else:
            got = getattr(flt, name)(*targs).item()
        assert got == pytest.approx(ref, rel=1e-12, abs=1e-14), (name, got, ref)


@pytest.mark.parametrize("form", ["numpy", "torch"])
def test_positional_constructors_mean_what_pytorch_means(form):
    rng = np.random.default_rng(5)
    x, t, p, b, y, w = _data(rng)
    wt = torch.from_numpy(w)
    cases = [
        ("HuberLoss", ("sum", 0.5), (x, t)),
        ("SmoothL1Loss", (None, None, "sum", 0.3), (x, t)),
        ("PoissonNLLLoss", (False, True, None, 1e-3, None, "sum"), (p, np.abs(t) * 3)),
        ("BCELoss", (wt, None, None, "sum"), (p, b)),
        ("BCEWithLogitsLoss", (wt, None, None, "mean", wt), (x, b)),
        ("KLDivLoss", (None, None, "sum", True), (np.log(p), np.log(p[::-1].copy()))),
        ("CrossEntropyLoss", (wt, None, 2, None, "sum", 0.2), (x, y)),
        ("NLLLoss", (wt, None, 1, None, "sum"), (np.log(p), y)),
        ("MultiMarginLoss", (2, 0.7, wt, None, None, "sum"), (x, y)),
        ("MultiLabelSoftMarginLoss", (wt, None, None, "sum"), (x, b)),
    ]
    for name, ctor, data in cases:
        tdata = [torch.from_numpy(a) for a in data]
        ref = getattr(nn, name)(*ctor)(*tdata).item()
        if form == "numpy":
            np_ctor = [a.numpy() if isinstance(a, torch.Tensor) else a for a in ctor]
            got = getattr(fl, name)(*np_ctor)(*data)
        else:
            got = getattr(flt, name)(*ctor)(*tdata).item()
        assert got == pytest.approx(ref, rel=1e-12, abs=1e-14), (name, got, ref)


# ------------------------------------------------------- size_average / reduce

LEGACY = [(None, None, "mean"), (True, None, "mean"), (False, None, "sum"), (None, False, "none"),
          (True, False, "none"), (False, True, "sum"), (True, True, "mean")]


@pytest.mark.parametrize("size_average, reduce, expect", LEGACY)
def test_legacy_size_average_reduce(size_average, reduce, expect):
    """PyTorch's legacy meaning and its deprecation warning, in the NumPy
    API, in fastloss.torch's functions and in both kinds of class."""
    rng = np.random.default_rng(6)
    x, t = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    X, T = torch.from_numpy(x), torch.from_numpy(t)
    ref = F.mse_loss(X, T, reduction=expect).numpy()
    import warnings
    warns = size_average is not None or reduce is not None
    for call in (lambda: fl.mse_loss(x, t, size_average, reduce),
                 lambda: flt.mse_loss(X, T, size_average, reduce).numpy(),
                 lambda: fl.MSELoss(size_average, reduce)(x, t),
                 lambda: flt.MSELoss(size_average, reduce)(X, T).numpy(),
                 lambda: fl.cross_entropy(x, np.array([0, 1, 2, 0, 1]), None, size_average, -100, reduce)):
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            out = call()
        msgs = [str(w.message) for w in got if "size_average" in str(w.message)]
        assert bool(msgs) == warns
        if warns:
            assert msgs[0] == f"size_average and reduce args will be deprecated, please use reduction='{expect}' instead."
            assert got[0].filename == __file__, "the warning should point at the caller"
    np.testing.assert_allclose(fl.mse_loss(x, t, size_average, reduce) if not warns else
                               _quiet(lambda: fl.mse_loss(x, t, size_average, reduce)), ref, rtol=1e-13)
    np.testing.assert_allclose(_quiet(lambda: flt.MSELoss(size_average, reduce)(X, T).numpy()), ref, rtol=1e-13)
    assert _quiet(lambda: flt.MSELoss(size_average, reduce)).reduction == expect
    assert _quiet(lambda: fl.MSELoss(size_average, reduce)).reduction == expect


def _quiet(f):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f()


def test_legacy_bad_value():
    with pytest.raises(TypeError, match=r"mse_loss: size_average must be True, False or None, got 'yes'"):
        fl.mse_loss(np.zeros(2), np.zeros(2), "yes")
    with pytest.raises(TypeError, match=r"CrossEntropyLoss: reduce must be True, False or None, got 2"):
        fl.CrossEntropyLoss(reduce=2)
