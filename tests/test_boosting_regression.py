"""The regression catalogue in XGBoost and LightGBM through the generic
adapters (fastloss.xgboost, fastloss.lightgbm: no loss-specific code).

* the deviances and robust losses train to the same model as the libraries'
  built-in objectives, whose gradient and Hessian are the same functions:
  XGBoost's reg:gamma, reg:tweedie and reg:pseudohubererror; LightGBM's
  gamma, tweedie, fair and poisson (whose Hessian is scaled by
  exp(poisson_max_delta_step = 0.7), undone on the learning rate and
  min_sum_hessian_in_leaf, as the existing tests undo the softmax factors);
* every new loss resolves by its names; the trimmed reduction trains, and
  the gradients the library receives are fastloss.reference's.
"""
import numpy as np
import pytest

import fastloss as fl
from fastloss import _boosting as B
from fastloss.reference import regression as RR

N = 2000
ROUNDS = 8
THREADS = 1  # see test_boosting.py: one library thread on the shared machine


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(N, 5))
    mu = np.exp(0.5 * X[:, 0] + 0.3 * np.sin(2.0 * X[:, 1]))
    return dict(
        X=X,
        gamma=rng.gamma(2.0, mu / 2.0),                                             # positive
        tweedie=np.where(rng.random(N) < 0.3, 0.0, rng.gamma(2.0, mu / 2.0)),       # zeros + amounts
        counts=rng.poisson(mu).astype(np.float64),
        heavy=2.0 * X[:, 0] + np.sin(2.0 * X[:, 1]) + rng.standard_t(2, size=N),    # outliers
        w=rng.uniform(0.2, 3.0, size=N),
    )


@pytest.mark.parametrize("name, cls", [
    ("gamma_nll_loss", fl.GammaNLLLoss), ("gamma_nll", fl.GammaNLLLoss), ("tweedie", fl.TweedieLoss),
    ("PseudoHuberLoss", fl.PseudoHuberLoss), ("pseudo_huber", fl.PseudoHuberLoss), ("fair", fl.FairLoss),
    ("cauchy_loss", fl.CauchyLoss), ("tukey_biweight", fl.TukeyBiweightLoss), ("expectile", fl.ExpectileLoss),
    ("mean_absolute_percentage_error", fl.MeanAbsolutePercentageError),
    ("MeanSquaredLogarithmicError", fl.MeanSquaredLogarithmicError), ("trimmed", fl.Trimmed),
    ("winsorized", fl.Winsorized),
])
def test_names_resolve(name, cls):
    assert B.resolve_class(name, "t") is cls


def test_adapter_gradients_equal_reference(rng):
    x = rng.normal(size=300)
    t = rng.gamma(2.0, 1.0, size=300)
    w = rng.uniform(0, 2, size=300)
    for name, params in (("gamma_nll_loss", {}), ("tweedie_loss", {"power": 1.3}), ("fair_loss", {"c": 0.7}),
                         ("pseudo_huber_loss", {"delta": 2.0}), ("cauchy_loss", {"c": 1.0}),
                         ("expectile_loss", {"tau": 0.2})):
        a = B.LossAdapter(name, params, min_hessian=0.0)
        g, h = a.grad_hess(x, t, w)
        rg = getattr(RR, name)(x, t, **params, reduction="sum")[1] * w
        rh = getattr(RR, name + "_hess")(x, t, **params, reduction="sum") * w
        np.testing.assert_allclose(g, rg, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(h, rh, rtol=1e-12, atol=1e-14)
        rv = getattr(RR, name)(x, t, **params, weight=w, reduction="sum")[0] / w.sum()
        assert a.mean_value(x, t, w) == pytest.approx(rv, rel=1e-12)


# ------------------------------------------------------------------ XGBoost

def _xgb():
    return pytest.importorskip("xgboost")


_XGB = {"nthread": THREADS, "max_depth": 3, "eta": 0.3, "tree_method": "hist", "seed": 0}


@pytest.mark.parametrize("case", ["gamma", "tweedie", "pseudo_huber"])
@pytest.mark.parametrize("weighted", [False, True])
def test_xgboost_matches_builtin(data, case, weighted):
    xgb = _xgb()
    import fastloss.xgboost as flx
    y, builtin, loss = {
        # base_score of the built-in log-link objectives is a mean: 1.0 is the margin 0 of the custom runs
        "gamma": (data["gamma"], {"objective": "reg:gamma", "base_score": 1.0}, fl.GammaNLLLoss()),
        "tweedie": (data["tweedie"], {"objective": "reg:tweedie", "tweedie_variance_power": 1.5, "base_score": 1.0},
                    fl.TweedieLoss(power=1.5)),
        "pseudo_huber": (data["heavy"], {"objective": "reg:pseudohubererror", "huber_slope": 1.5,
                                         "base_score": 0.0}, fl.PseudoHuberLoss(delta=1.5)),
    }[case]
    d = xgb.DMatrix(data["X"], label=y, weight=data["w"] if weighted else None)
    b1 = xgb.train({**_XGB, **builtin}, d, ROUNDS)
    b2 = xgb.train({**_XGB, "base_score": 0.0}, d, ROUNDS, obj=flx.objective(loss))
    p1, p2 = b1.predict(d, output_margin=True), b2.predict(d, output_margin=True)
    np.testing.assert_allclose(p2, p1, rtol=1e-5, atol=1e-5)
    assert np.std(p1) > 0.3  # a real model


def test_xgboost_trimmed_trains_and_passes_reference_gradients(data):
    xgb = _xgb()
    import fastloss.xgboost as flx
    d = xgb.DMatrix(data["X"], label=data["heavy"], weight=data["w"])
    loss = fl.Trimmed(fl.HuberLoss(delta=1.0), trim=0.05, tails="upper")
    obj = flx.objective(loss, min_hessian=1.0)
    calls = []

    def recording(predt, dtrain):
        g, h = obj(predt, dtrain)
        calls.append((predt.copy(), g.copy(), h.copy()))
        return g, h

    log = {}
    xgb.train({**_XGB, "base_score": 0.0, "disable_default_eval_metric": True}, d, ROUNDS, obj=recording,
              custom_metric=flx.metric(loss), evals=[(d, "train")], evals_result=log, verbose_eval=False)
    vals = log["train"]["Trimmed"]
    assert vals[-1] < 0.8 * vals[0] and np.all(np.diff(vals) < 0)
    y32, w32 = d.get_label(), d.get_weight()
    for predt, g, h in calls[:: ROUNDS - 1]:
        m = predt.astype(np.float64)
        rg = RR.trimmed("huber_loss", m, y32, 0.05, "upper", reduction="sum", delta=1.0)[1] * w32
        rh = np.maximum(RR.trimmed_hess("huber_loss", m, y32, 0.05, "upper", reduction="sum", delta=1.0), 1.0) * w32
        np.testing.assert_allclose(g, rg, rtol=2e-5, atol=2e-5)
        np.testing.assert_allclose(h, rh, rtol=2e-5)
        assert np.sum(g == 0) == int(0.05 * N)  # the dropped samples get no gradient


# ------------------------------------------------------------------ LightGBM

def _lgb():
    return pytest.importorskip("lightgbm")


_LGB = {"num_threads": THREADS, "num_leaves": 8, "learning_rate": 0.3, "verbose": -1, "deterministic": True,
        "force_col_wise": True, "boost_from_average": False, "seed": 0}


@pytest.mark.parametrize("case", ["gamma", "tweedie", "fair", "poisson"])
@pytest.mark.parametrize("weighted", [False, True])
def test_lightgbm_matches_builtin(data, case, weighted):
    lgb = _lgb()
    import fastloss.lightgbm as fll
    k = float(np.exp(0.7))  # LightGBM's Poisson Hessian is exp(score + poisson_max_delta_step)
    y, builtin, loss, extra = {
        "gamma": (data["gamma"], {"objective": "gamma"}, fl.GammaNLLLoss(), {}),
        "tweedie": (data["tweedie"], {"objective": "tweedie", "tweedie_variance_power": 1.5},
                    fl.TweedieLoss(power=1.5), {}),
        "fair": (data["heavy"], {"objective": "fair", "fair_c": 1.3}, fl.FairLoss(c=1.3), {}),
        "poisson": (data["counts"], {"objective": "poisson"}, fl.TweedieLoss(power=1.0),
                    {"learning_rate": 0.3 / k, "min_sum_hessian_in_leaf": 1e-3 / k}),
    }[case]
    w = data["w"] if weighted else None
    b1 = lgb.train({**_LGB, **builtin}, lgb.Dataset(data["X"], label=y, weight=w), ROUNDS)
    b2 = lgb.train({**_LGB, **extra, "objective": fll.objective(loss)}, lgb.Dataset(data["X"], label=y, weight=w),
                   ROUNDS)
    r1, r2 = b1.predict(data["X"], raw_score=True), b2.predict(data["X"], raw_score=True)
    np.testing.assert_allclose(r2, r1, rtol=1e-5, atol=1e-5)
    assert np.std(r1) > 0.3


def test_lightgbm_trimmed_trains(data):
    lgb = _lgb()
    import fastloss.lightgbm as fll
    loss = fl.Trimmed(fl.PseudoHuberLoss(delta=1.0), trim=0.1)
    log = {}
    ds = lgb.Dataset(data["X"], label=data["heavy"], weight=data["w"])
    lgb.train({**_LGB, "objective": fll.objective(loss), "metric": "None"}, ds, ROUNDS, valid_sets=[ds],
              valid_names=["train"], feval=fll.metric(loss), callbacks=[lgb.record_evaluation(log)])
    vals = log["train"]["Trimmed"]
    assert vals[-1] < 0.8 * vals[0] and np.all(np.diff(vals) < 0)
