"""Bad input to the regression catalogue and to the trimmed reduction: every
message, raised before any kernel runs or (domain checks) from the
kernel's own pass, naming the operation, the argument and the value."""
import numpy as np
import pytest

import fastloss as fl

F32, F64 = np.float32, np.float64

_FUNCS = {
    "gamma_nll_loss": {}, "tweedie_loss": {"power": 1.5}, "pseudo_huber_loss": {"delta": 1.0},
    "fair_loss": {"c": 1.0}, "cauchy_loss": {"c": 1.0}, "tukey_biweight_loss": {"c": 4.685},
    "expectile_loss": {"tau": 0.5}, "mean_absolute_percentage_error": {}, "mean_squared_logarithmic_error": {},
}
_CLASSES = {
    "gamma_nll_loss": "GammaNLLLoss", "tweedie_loss": "TweedieLoss", "pseudo_huber_loss": "PseudoHuberLoss",
    "fair_loss": "FairLoss", "cauchy_loss": "CauchyLoss", "tukey_biweight_loss": "TukeyBiweightLoss",
    "expectile_loss": "ExpectileLoss", "mean_absolute_percentage_error": "MeanAbsolutePercentageError",
    "mean_squared_logarithmic_error": "MeanSquaredLogarithmicError",
}


# ------------------------------------------------------------------ parameters

_PARAM_CASES = [
    ("tweedie_loss", {"power": 0.5}, ValueError, r"tweedie_loss: power must be finite and <= 0 or >= 1 .*got 0\.5"),
    ("tweedie_loss", {"power": 1e-9}, ValueError, r"power must be finite and <= 0 or >= 1"),
    ("tweedie_loss", {"power": np.inf}, ValueError, r"power must be finite"),
    ("tweedie_loss", {"power": np.nan}, ValueError, r"tweedie_loss: power must not be NaN"),
    ("tweedie_loss", {"power": "1.5"}, TypeError, r"tweedie_loss: power must be a real number, got str"),
    ("pseudo_huber_loss", {"delta": 0.0}, ValueError, r"pseudo_huber_loss: delta must be > 0, got 0\.0"),
    ("pseudo_huber_loss", {"delta": -1}, ValueError, r"delta must be > 0, got -1"),
    ("pseudo_huber_loss", {"delta": np.inf}, ValueError, r"pseudo_huber_loss: delta must be finite, got inf"),
    ("fair_loss", {"c": 0}, ValueError, r"fair_loss: c must be > 0, got 0"),
    ("fair_loss", {"c": None}, TypeError, r"fair_loss: c must be a real number, got NoneType"),
    ("cauchy_loss", {"c": -0.5}, ValueError, r"cauchy_loss: c must be > 0, got -0\.5"),
    ("cauchy_loss", {"c": np.nan}, ValueError, r"cauchy_loss: c must not be NaN"),
    ("tukey_biweight_loss", {"c": 0.0}, ValueError, r"tukey_biweight_loss: c must be > 0, got 0\.0"),
    ("tukey_biweight_loss", {"c": True}, TypeError, r"c must be a real number, got bool"),
    ("expectile_loss", {"tau": 0.0}, ValueError, r"expectile_loss: tau must be in the open interval \(0, 1\), got 0\.0"),
    ("expectile_loss", {"tau": 1.0}, ValueError, r"tau must be in the open interval \(0, 1\), got 1\.0"),
    ("expectile_loss", {"tau": -0.2}, ValueError, r"got -0\.2"),
    ("expectile_loss", {"tau": "a"}, TypeError, r"expectile_loss: tau must be a real number"),
]


@pytest.mark.parametrize("name, kw, exc, rx", _PARAM_CASES)
def test_bad_parameter_function(name, kw, exc, rx):
    x = np.ones(3)
    with pytest.raises(exc, match=rx):
        getattr(fl, name)(x, x, **kw)


@pytest.mark.parametrize("name, kw, exc, rx", _PARAM_CASES)
def test_bad_parameter_class(name, kw, exc, rx):
    cls = _CLASSES[name]
    with pytest.raises(exc, match=rx.replace(name, cls)):
        getattr(fl, cls)(**kw)


def test_boundary_parameters_accepted():
    x, t = np.ones(3), np.ones(3)
    for p in (0.0, -0.5, 1.0, 1.0001, 2.0, 3.5):
        fl.tweedie_loss(x, t, power=p)
        fl.TweedieLoss(power=p)
    fl.expectile_loss(x, t, tau=1e-9)
    fl.fair_loss(x, t, c=1e-30)
    fl.pseudo_huber_loss(x, t, delta=np.float32(2.0))


# ------------------------------------------------------------------ target domains

@pytest.mark.parametrize("dtype", [F32, F64])
def test_gamma_target_must_be_positive(dtype):
    x = np.zeros((2, 3), dtype)
    for bad in (0.0, -1.5):
        t = np.ones((2, 3), dtype)
        t[1, 2] = bad
        for call in (lambda: fl.gamma_nll_loss(x, t), lambda: fl.gamma_nll_loss(x, t, return_grad=True),
                     lambda: fl.GammaNLLLoss().grad_hess(x, t), lambda: fl.tweedie_loss(x, t, power=2.0),
                     lambda: fl.tweedie_loss(x, t, power=3.0)):
            with pytest.raises(ValueError, match=rf"target must be > 0 .*got target\[1, 2\] = {bad}"):
                call()
    with pytest.raises(ValueError, match=r"gamma_nll_loss: target must be > 0 \(the Gamma distribution's support\), "
                                         r"got target = -2\.0"):
        fl.gamma_nll_loss(0.0, -2.0)


@pytest.mark.parametrize("power", [1.0, 1.5, 1.99])
def test_tweedie_target_must_be_nonnegative(power):
    x = np.zeros(5)
    t = np.array([1.0, 0.0, 2.0, -0.5, 3.0])
    with pytest.raises(ValueError, match=r"tweedie_loss: target must be >= 0 for 1 <= power < 2, got target\[3\] = -0\.5"):
        fl.tweedie_loss(x, t, power=power)
    fl.tweedie_loss(x, np.abs(t), power=power)  # zeros are fine


def test_tweedie_power_at_most_zero_takes_any_target():
    x, t = np.zeros(3), np.array([-2.0, 0.0, 5.0])
    for p in (0.0, -1.0):
        assert np.isfinite(fl.tweedie_loss(x, t, power=p))


def test_domain_error_found_on_parallel_path(parallel_always):
    t = np.ones(100_000)
    t[77_777] = -1.0
    with pytest.raises(ValueError, match=r"target\[77777\] = -1\.0"):
        fl.tweedie_loss(np.zeros(100_000), t, n_threads=2)


def test_nan_target_is_not_a_domain_error():
    v = fl.gamma_nll_loss(np.zeros(2), np.array([1.0, np.nan]))
    assert np.isnan(v)
    assert np.isnan(fl.tweedie_loss(np.zeros(2), np.array([1.0, np.nan]), power=1.5))


# ------------------------------------------------------------------ arrays, reductions, out=

@pytest.mark.parametrize("name", list(_FUNCS))
def test_shape_mismatch_and_types(name):
    f = getattr(fl, name)
    with pytest.raises(ValueError, match=rf"{name}: target must have the same shape as input, got input: \(3,\) "
                                         rf"and target: \(4,\)"):
        f(np.ones(3), np.ones(4), **_FUNCS[name])
    with pytest.raises(TypeError, match=rf"{name}: input must be a real"):
        f(np.ones(3, complex), np.ones(3), **_FUNCS[name])
    with pytest.raises(ValueError, match=rf"{name}: reduction must be one of 'mean', 'sum', 'none', got 'avg'"):
        f(np.ones(3), np.ones(3), **_FUNCS[name], reduction="avg")
    with pytest.raises(ValueError, match=rf"{name}: out= is the gradient's buffer; pass return_grad=True with it"):
        f(np.ones(3), np.ones(3), **_FUNCS[name], out=np.empty(3))
    with pytest.raises(ValueError, match=rf"{name}: out must have dtype float64"):
        f(np.ones(3), np.ones(3), **_FUNCS[name], return_grad=True, out=np.empty(3, F32))
    with pytest.raises(ValueError, match=rf"{name}: n_threads must be a positive integer"):
        f(np.ones(3), np.ones(3), **_FUNCS[name], n_threads=0)
    with pytest.raises(ValueError, match=rf"{_CLASSES[name]}: reduction must be one of"):
        getattr(fl, _CLASSES[name])(reduction="batchmean")


def test_keyword_only_options():
    with pytest.raises(TypeError):
        fl.gamma_nll_loss(np.ones(2), np.ones(2), None)  # weight is keyword-only
    with pytest.raises(TypeError):
        fl.FairLoss(1.0, "mean", 2)                       # n_threads is keyword-only


# ------------------------------------------------------------------ Trimmed

def test_trimmed_bad_arguments():
    x = np.ones(4)
    for trim in (-0.1, 0.5, 0.75, np.inf):
        with pytest.raises(ValueError, match=rf"Trimmed: trim must be in \[0, 0\.5\), got {trim!r}"):
            fl.Trimmed(fl.MSELoss(), trim=trim)
        with pytest.raises(ValueError, match=r"trimmed: trim must be in \[0, 0\.5\)"):
            fl.trimmed(x, x, fl.MSELoss(), trim=trim)
    with pytest.raises(ValueError, match=r"Trimmed: trim must not be NaN"):
        fl.Trimmed(fl.MSELoss(), trim=np.nan)
    with pytest.raises(TypeError, match=r"Trimmed: trim must be a real number, got str"):
        fl.Trimmed(fl.MSELoss(), trim="0.1")
    with pytest.raises(ValueError, match=r"Trimmed: tails must be one of 'both', 'upper', got 'lower'"):
        fl.Trimmed(fl.MSELoss(), tails="lower")
    with pytest.raises(ValueError, match=r"Trimmed: reduction must be one of 'mean', 'sum', 'none', got 'batchmean'"):
        fl.Trimmed(fl.MSELoss(), reduction="batchmean")
    with pytest.raises(TypeError, match=r"Trimmed: loss must be a fastloss pointwise loss object"):
        fl.Trimmed(fl.MSELoss)
    with pytest.raises(TypeError, match=r"Trimmed: loss must be a fastloss pointwise loss object"):
        fl.Trimmed(fl.mse_loss)
    with pytest.raises(TypeError, match=r"trimmed: loss must be a fastloss pointwise loss object .*CrossEntropyLoss"):
        fl.trimmed(np.ones((2, 3)), np.zeros(2), fl.CrossEntropyLoss())
    with pytest.raises(TypeError, match=r"Trimmed: GaussianNLLLoss needs var besides input and target"):
        fl.Trimmed(fl.GaussianNLLLoss())
    with pytest.raises(ValueError, match=r"Trimmed: n_threads must be a positive integer or None, got 0"):
        fl.Trimmed(fl.MSELoss(), n_threads=0)
    t = fl.Trimmed(fl.MSELoss(), 0.25)
    with pytest.raises(ValueError, match=r"trimmed: out= is the gradient.s buffer"):
        fl.trimmed(x, x, fl.MSELoss(), out=np.empty(4))
    with pytest.raises(ValueError, match=r"Trimmed: target must have the same shape as input"):
        t(x, np.ones(5))
    with pytest.raises(ValueError, match=r"Trimmed: out must have shape \(4,\)"):
        t.value_and_grad(x, x, out=np.empty(3))
    with pytest.raises(ValueError, match=r"Trimmed: loss_out= is for reduction='none', got reduction='mean'"):
        t.value_and_grad(x, x, loss_out=np.empty(4))
    with pytest.raises(ValueError, match=r"Trimmed: out must not share memory with the inputs"):
        t.value_and_grad(x, x.copy(), out=x)
    with pytest.raises(ValueError, match=r"Trimmed: weight of shape \(3,\) cannot be broadcast"):
        t(x, x, weight=np.ones(3))
    with pytest.raises(ValueError, match=r"Trimmed: out must be a pair"):
        t.grad_hess(x, x, out=np.empty(4))
    with pytest.raises(ValueError, match=r"gamma_nll_loss: target must be > 0"):  # the loss's own checks
        fl.Trimmed(fl.GammaNLLLoss(), 0.1)(x, -x)
