"""fastloss.diagnose: every check on data built to trigger it, no false
alarms on clean calls of every loss, the table of expectations covers every
public loss, warnings, the forms a loss can be given in, errors, display."""
import warnings

import numpy as np
import pytest

import fastloss as fl
from fastloss import _diagnose as D

RNG = np.random.default_rng(77)
N, C = 2000, 5

NON_LOSSES = {"get_num_threads", "set_num_threads", "show_config", "__version__", "suggest", "diagnose",
              "LossWarning", "set_cache_limit", "cache_info"}


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _clean(name, rng, n=N):
    """A correct call's (input, target, extra positional args) for each loss."""
    e = D.EXPECT[name]
    logits = rng.normal(size=(n, C)) * 2
    labels = rng.integers(0, C, n)
    x = rng.normal(size=n) * 2
    if (e.input, e.target) == ("real", "real"):
        return x, x + rng.normal(size=n), ((np.ones(n),) if name == "gaussian_nll_loss" else ())
    if e.target == "count":
        return x * 0.5, rng.poisson(np.exp(x * 0.5)).astype(float), ()
    if e.input == "prob":
        return rng.uniform(0.01, 0.99, n), (rng.random(n) < 0.4).astype(float), ()
    if e.input == "logit":
        return x, (rng.random(n) < 0.4).astype(float), ()
    if e.input == "score":
        return x, np.where(rng.random(n) < 0.4, 1.0, -1.0), ()
    if e.input == "logprob":
        return np.log(_softmax(logits)), _softmax(rng.normal(size=(n, C))), ()
    if e.target == "multilabel":
        return logits, (rng.random((n, C)) < 0.3).astype(float), ()
    if e.input == "rows_logprob":
        return np.log(_softmax(logits)), labels, ()
    return logits, labels, ()


LOSSES = sorted(D.EXPECT)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("n", [64, N])
@pytest.mark.parametrize("name", LOSSES)
def test_no_false_alarm_on_a_clean_call(name, n, seed):
    rng = np.random.default_rng(seed)
    x, t, extra = _clean(name, rng, n)
    getattr(fl, name)(x, t, *extra)                      # the call itself is valid
    for loss in (name, getattr(fl, name), getattr(fl, D.EXPECT[name].cls),
                 getattr(fl, D.EXPECT[name].cls)()):
        with warnings.catch_warnings():
            warnings.simplefilter("error")               # and no LossWarning either
            d = fl.diagnose(loss, x, t, *extra)
        assert d.ok, (name, d)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_false_alarm_in_float32_and_on_weights(dtype):
    rng = np.random.default_rng(5)
    x, t, _ = _clean("cross_entropy", rng)
    assert fl.diagnose("cross_entropy", x.astype(dtype), t.astype(np.int32), weight=np.ones(C)).ok
    x, t, _ = _clean("binary_cross_entropy_with_logits", rng)
    assert fl.diagnose("binary_cross_entropy_with_logits", x.astype(dtype), t.astype(dtype),
                       weight=rng.random(N)).ok


# ---------------------------------------------------------------- each check, triggered

def _cases():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(N, C)) * 2
    labels = rng.integers(0, C, N)
    probs = _softmax(logits)
    x = rng.normal(size=N)
    y01 = (rng.random(N) < 0.3).astype(float)
    sig = 1 / (1 + np.exp(-x))
    t_nan = x + rng.normal(size=N)
    t_nan[[3, 99]] = np.nan
    x_nan = x.copy()
    x_nan[7] = np.nan
    return [
        ("nan_target", "mse_loss", x, t_nan, {}),
        ("nan_target", "binary_cross_entropy_with_logits", x, np.where(np.isnan(t_nan), np.nan, y01), {}),
        ("nan_input", "huber_loss", x_nan, x, {}),
        ("constant_target", "mse_loss", x, np.full(N, 2.5), {}),
        ("constant_target", "cross_entropy", logits, np.full(N, 2), {}),
        ("probabilities_as_logits", "cross_entropy", probs, labels, {}),
        ("probabilities_as_logits", "poly1_cross_entropy", probs, labels, {}),
        ("probabilities_as_logits", "softmax_focal_loss", probs, labels, {}),
        ("probabilities_as_logits", "binary_cross_entropy_with_logits", sig, y01, {}),
        ("probabilities_as_logits", "sigmoid_focal_loss", sig, y01, {}),
        ("probabilities_as_logits", "multilabel_soft_margin_loss", 1 / (1 + np.exp(-logits)),
         (rng.random((N, C)) < 0.3).astype(float), {}),
        ("probabilities_as_logits", "soft_margin_loss", sig, 2 * y01 - 1, {}),
        ("logits_as_probabilities", "binary_cross_entropy", x, y01, {}),
        ("not_log_probabilities", "nll_loss", logits, labels, {}),
        ("not_log_probabilities", "nll_loss", probs, labels, {}),
        ("not_log_probabilities", "nll_loss", np.log(probs) - 1.0, labels, {}),
        ("not_log_probabilities", "kl_div", probs, probs, {}),
        ("not_log_probabilities", "kl_div", logits, probs, {}),
        ("onehot_for_labels", "nll_loss", np.log(probs), np.eye(C)[labels], {}),
        ("onehot_for_labels", "softmax_focal_loss", logits, _softmax(rng.normal(size=(N, C))), {}),
        ("labels_for_binary", "binary_cross_entropy_with_logits", x, labels.astype(float), {}),
        ("labels_for_binary", "binary_cross_entropy_with_logits", logits, labels, {}),
        ("labels_for_binary", "kl_div", np.log(probs), np.eye(C)[labels] * 3, {}),
        ("zero_one_for_pm1", "soft_margin_loss", x, y01, {}),
        ("zero_one_for_pm1", "hinge_loss", x, y01, {}),
        ("swapped_arguments", "mse_loss", y01, x, {}),
        ("swapped_arguments", "l1_loss", labels.astype(float), x * 3, {}),
        ("swapped_arguments", "binary_cross_entropy_with_logits", y01, sig, {}),
        ("regression_on_classes", "mse_loss", x, y01, {}),
        ("regression_on_classes", "l1_loss", logits, np.eye(C)[labels], {}),
        ("regression_on_classes", "huber_loss", x, 2 * y01 - 1, {}),
        ("negative_counts", "poisson_nll_loss", x, -np.abs(x), {}),
        ("class_never_present", "cross_entropy", logits, np.minimum(labels, C - 2), {}),
        ("class_never_present", "nll_loss", np.log(probs), labels + (labels == 0), {}),
        ("weights_zero", "mse_loss", x, x + 1, {"weight": np.zeros(N)}),
        ("weights_zero", "cross_entropy", logits, labels, {"weight": np.zeros(C)}),
        ("weights_zero", "cross_entropy", logits, np.full(N, 1), {"weight": np.r_[1.0, 0.0, 1.0, 1.0, 1.0]}),
        ("weights_zero", "cross_entropy", logits, np.full(N, -100), {}),
        ("weights_zero", "nll_loss", np.log(probs), np.full(N, 4), {"ignore_index": 4}),
    ]


CASES = _cases()


@pytest.mark.parametrize("k", range(len(CASES)), ids=lambda k: f"{CASES[k][0]}-{CASES[k][1]}-{k}")
def test_each_check_fires_on_data_built_for_it(k):
    code, name, x, t, kw = CASES[k]
    d = fl.diagnose(name, x, t, warn=False, **kw)
    assert code in d.codes, (code, d)
    f = d[d.codes.index(code)]
    assert f.op == name and f.message and f.fix
    assert str(f) == f"{name}: {f.message}. Fix: {f.fix}"


def test_every_check_has_a_triggering_case():
    assert {c.code for c in D.CHECKS} == {c[0] for c in CASES}


def test_the_figure_is_in_the_message():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(500, 4))
    d = fl.diagnose("nll_loss", logits, rng.integers(0, 4, 500), warn=False)
    assert f"max {logits.max():.3g}" in d[0].message
    t = np.zeros(100); t[:25] = 1
    d = fl.diagnose("mse_loss", rng.normal(size=100), t, warn=False)
    assert d[0].message == "target is 0/1 (25 % ones): mse_loss fits class labels as numbers"


def test_small_samples_do_not_infer_intent():
    # 0/1 targets of 15 values: too few to call it classification
    assert fl.diagnose("mse_loss", np.arange(15.0), np.r_[np.ones(5), np.zeros(10)], warn=False).ok
    assert fl.diagnose("mse_loss", np.arange(16.0) / 3, np.r_[np.ones(5), np.zeros(11)],
                       warn=False).codes == ["regression_on_classes"]


def test_absent_class_needs_ten_labels_per_class():
    rng = np.random.default_rng(0)
    few = rng.integers(0, 99, 500)           # 500 labels for 100 classes: absence is not a sign
    assert "class_never_present" not in fl.diagnose("cross_entropy", rng.normal(size=(500, 100)), few,
                                                    warn=False).codes


def test_options_of_a_loss_object_are_read():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(300, 3))
    t = np.full(300, 2)
    assert fl.diagnose(fl.CrossEntropyLoss(ignore_index=2), logits, t, warn=False).codes == ["weights_zero"]
    assert fl.diagnose(fl.CrossEntropyLoss(weight=np.zeros(3)), logits, rng.integers(0, 3, 300),
                       warn=False).codes == ["weights_zero"]


# ---------------------------------------------------------------- warnings

def test_findings_are_warned_as_losswarning_at_the_callers_line():
    rng = np.random.default_rng(0)
    probs = _softmax(rng.normal(size=(100, 3)))
    with pytest.warns(fl.LossWarning, match=r"^cross_entropy: every row of input sums to 1") as rec:
        d = fl.diagnose("cross_entropy", probs, rng.integers(0, 3, 100))
    assert len(rec) == 1 and rec[0].filename == __file__
    assert rec[0].message.finding == d[0]
    assert issubclass(fl.LossWarning, UserWarning)


def test_warn_false_is_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = fl.diagnose("mse_loss", np.zeros(20), np.full(20, 1.0), warn=False)
    assert d.codes == ["constant_target"]


# ---------------------------------------------------------------- the tables

def test_expect_covers_every_public_loss():
    for name in fl.__all__:
        if name in NON_LOSSES:
            continue
        obj = getattr(fl, name)
        if isinstance(obj, type):
            assert name in D._BY_CLASS or name in D.NOT_CHECKED, f"{name}: no row in fastloss._diagnose.EXPECT"
        else:
            assert name in D.EXPECT or name in D.NOT_CHECKED, f"{name}: no row in fastloss._diagnose.EXPECT"
    for name, e in D.EXPECT.items():
        assert callable(getattr(fl, name)) and isinstance(getattr(fl, e.cls), type)


def test_resolve_accepts_every_form_and_refuses_others():
    for form in ("huber_loss", "HuberLoss", fl.huber_loss, fl.HuberLoss, fl.HuberLoss(delta=2.0)):
        assert D.resolve(form)[0] == "huber_loss"
    with pytest.raises(ValueError, match=r"^diagnose: loss must be a fastloss loss .*got 'hubber'$"):
        fl.diagnose("hubber", [1.0], [1.0])
    with pytest.raises(ValueError, match=r"^diagnose: loss must be a fastloss loss .*got <built-in function len>$"):
        fl.diagnose(len, [1.0], [1.0])


def test_errors_name_the_loss_and_argument():
    with pytest.raises(TypeError, match=r"^mse_loss: input must be a real \(float, integer or bool\) array, "
                                        r"got dtype complex128$"):
        fl.diagnose("mse_loss", np.zeros(3, complex), np.zeros(3))
    with pytest.raises(TypeError, match=r"^cross_entropy: target must be a real .* got dtype <U1$"):
        fl.diagnose("cross_entropy", np.zeros((3, 2)), np.array(["a", "b", "c"]))


def test_repr_and_html():
    d = fl.diagnose("mse_loss", np.zeros(20), np.full(20, 1.0), warn=False)
    assert repr(d).splitlines()[:2] == ["fastloss.diagnose(mse_loss): 1 finding",
                                       "  [constant_target] target is constant (every one of its 20 values is 1)"]
    assert "<code>constant_target</code>" in d._repr_html_()
    ok = fl.diagnose("mse_loss", np.arange(20.0) + 0.25, np.arange(20.0) + 0.5, warn=False)
    assert repr(ok) == "fastloss.diagnose(mse_loss): no mistakes found" and "no mistakes" in ok._repr_html_()
