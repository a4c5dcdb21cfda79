"""fastloss.xgboost and fastloss.lightgbm: custom objectives and metrics.

* the library-independent core (fastloss._boosting): loss resolution,
  layouts, targets, weights, the Hessian floor, against fastloss.reference;
* real training runs (small data, few rounds, 2 threads) with XGBoost and
  LightGBM (each test skips when its library is missing):
  - fastloss's squared error, logistic and softmax objectives reproduce
    the built-in objectives' models (the Hessian conventions are undone by
    rescaling the regularization / learning rate, see _XGB_EQUIV and
    _LGB_EQUIV);
  - focal and Huber losses train: the loss goes down;
  - the gradients and Hessians handed to the library equal
    fastloss.reference's for the same margins, with the dataset's weights;
  - native and scikit-learn APIs; metrics report the right value.
"""
import pickle
import subprocess
import sys

import numpy as np
import pytest

import fastloss as fl
import fastloss.reference as ref
from fastloss import _boosting as B

N = 2000
ROUNDS = 8
# One library thread: on a shared 2-core machine an OpenMP team of 2 waits for a descheduled thread and a
# 0.05 s fit can take seconds; the adapters do not depend on the libraries' thread count.
THREADS = 1


# ------------------------------------------------------------------ data

@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(N, 5))
    y_reg = 2.0 * X[:, 0] + np.sin(2.0 * X[:, 1]) + 0.3 * rng.normal(size=N)
    y_heavy = 3.0 * X[:, 0] + np.sin(3.0 * X[:, 1]) + rng.standard_t(2, size=N)  # outliers: Huber
    y_bin = (X[:, 0] + X[:, 1] ** 2 - 1.0 + 0.5 * rng.normal(size=N) > 0).astype(np.float64)
    y_cls = np.digitize(X[:, 0] + 0.3 * rng.normal(size=N), [-0.5, 0.5]).astype(np.float64)
    w = rng.uniform(0.2, 3.0, size=N)
    return dict(X=X, reg=y_reg, heavy=y_heavy, bin=y_bin, cls=y_cls, w=w)


def _ref_grad_hess(name, margin, labels, sample_weight=None, min_hessian=0.0, **params):
    """fastloss.reference's gradient and Hessian of the summed loss, sample-weighted and floored."""
    m = np.asarray(margin, dtype=np.float64)
    if name == "cross_entropy":
        t = np.asarray(labels).astype(np.int64)
        g = ref.cross_entropy(m, t, reduction="sum", **params)[1]
        h = ref.cross_entropy_hess(m, t, reduction="sum", **params)
    else:
        t = np.asarray(labels, dtype=np.float64).reshape(m.shape)
        g = getattr(ref, name)(m, t, reduction="sum", **params)[1]
        h = getattr(ref, name + "_hess")(m, t, reduction="sum", **params)
    h = np.maximum(h, min_hessian)
    if sample_weight is not None:
        wb = np.asarray(sample_weight, dtype=np.float64).reshape((-1,) + (1,) * (m.ndim - 1))
        g, h = g * wb, h * wb
    return g, h


def _ref_mean(name, margin, labels, sample_weight=None, **params):
    """fastloss.reference's summed loss per sample, or sum_i w_i L_i / sum_i w_i with weights."""
    m = np.asarray(margin, dtype=np.float64)
    if name == "cross_entropy":
        per = ref.cross_entropy(m, np.asarray(labels).astype(np.int64), reduction="none", **params)[0]
    else:
        per = getattr(ref, name)(m, np.asarray(labels, np.float64).reshape(m.shape), reduction="none", **params)[0]
    per = per.reshape(m.shape[0], -1).sum(axis=1)
    if sample_weight is None:
        return float(per.mean())
    w = np.asarray(sample_weight, dtype=np.float64)
    return float(np.dot(per, w) / w.sum())


def _close(a, b, rtol=2e-5):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(1.0, float(np.abs(b).max(initial=0))))


# ------------------------------------------------------------------ the core, no library needed

class TestResolution:
    @pytest.mark.parametrize("spec", ["huber_loss", "HuberLoss", "huber", "HUBER_LOSS", fl.huber_loss, fl.HuberLoss])
    def test_names_classes_functions(self, spec):
        loss = B.resolve_loss(spec, {"delta": 2.5}, "t")
        assert type(loss) is fl.HuberLoss and loss.delta == 2.5 and loss.reduction == "sum"

    def test_function_name_from_class_docstring(self):
        assert B.resolve_class("binary_cross_entropy_with_logits", "t") is fl.BCEWithLogitsLoss
        assert B.resolve_class("binary_cross_entropy", "t") is fl.BCELoss
        assert B.resolve_class("cross_entropy", "t") is fl.CrossEntropyLoss
        assert B.resolve_class("sigmoid_focal_loss", "t") is fl.SigmoidFocalLoss

    def test_every_fastloss_loss_resolves(self):
        """Generic: each loss class of fastloss.__all__ resolves by its own name and its function's name."""
        n = 0
        for name in fl.__all__:
            cls = getattr(fl, name)
            if isinstance(cls, type) and hasattr(cls, "grad_hess"):
                assert B.resolve_class(name, "t") is cls
                fn = B._OBJECT_FORM.search(cls.__doc__).group(1)
                assert B.resolve_class(fn, "t") is cls, fn
                n += 1
        assert n >= 20

    def test_instance_is_copied_with_sum(self):
        orig = fl.SigmoidFocalLoss(alpha=0.4, gamma=1.5)
        loss = B.resolve_loss(orig, {}, "t")
        assert loss is not orig and orig.reduction == "mean"
        assert (loss.alpha, loss.gamma, loss.reduction) == (0.4, 1.5, "sum")
        s = fl.SigmoidFocalLoss(reduction="sum")
        assert B.resolve_loss(s, {}, "t") is s

    def test_row_loss_copy_keeps_options(self):
        cw = np.array([1.0, 2.0, 0.5])
        loss = B.resolve_loss(fl.CrossEntropyLoss(weight=cw, label_smoothing=0.1), {}, "t")
        assert loss.reduction == "sum" and loss.label_smoothing == 0.1 and loss.weight is cw
        assert B.target_kind(loss) == "labels"
        assert B.target_kind(fl.MSELoss()) == "values"

    def test_errors(self):
        with pytest.raises(ValueError, match="unknown fastloss loss 'nope'"):
            B.resolve_loss("nope", {}, "t")
        with pytest.raises(TypeError, match="go with a class or a name"):
            B.resolve_loss(fl.HuberLoss(), {"delta": 2.0}, "t")
        with pytest.raises(TypeError, match="reduction"):
            B.resolve_loss("huber_loss", {"reduction": "mean"}, "t")
        with pytest.raises(TypeError, match="needs var"):
            B.resolve_loss(fl.GaussianNLLLoss(), {}, "t")
        with pytest.raises(TypeError, match="not a fastloss loss"):
            B.resolve_loss(object(), {}, "t")
        with pytest.raises(ValueError, match="min_hessian"):
            B.LossAdapter("mse_loss", {}, -1.0)
        with pytest.raises(TypeError, match="min_hessian"):
            B.LossAdapter("mse_loss", {}, "1")


class _ToyLoss:
    """A loss that is not part of fastloss: scale * (x - t)^2 / 2, written in NumPy.

    Stands for a loss added later: the adapters must take it with no new code."""

    def __init__(self, scale=1.0, reduction="mean"):
        self.scale, self.reduction = scale, reduction

    def __call__(self, input, target, weight=None):
        v = 0.5 * self.scale * (input - target) ** 2 * (1.0 if weight is None else weight)
        return float(v.sum()) if self.reduction == "sum" else float(v.mean())

    def grad_hess(self, input, target, weight=None):
        assert self.reduction == "sum"
        w = 1.0 if weight is None else weight
        return self.scale * (input - target) * w, np.full_like(input, self.scale) * w


class TestAdapter:
    @pytest.mark.parametrize("name,params", [
        ("mse_loss", {}), ("huber_loss", {"delta": 0.7}), ("log_cosh_loss", {}),
        ("sigmoid_focal_loss", {"alpha": 0.25, "gamma": 2.0}), ("binary_cross_entropy_with_logits", {}),
        ("poisson_nll_loss", {}), ("quantile_loss", {"quantile": 0.8}),
    ])
    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    @pytest.mark.parametrize("weighted", [False, True])
    def test_pointwise_equals_reference(self, name, params, dtype, weighted, rng):
        x = rng.normal(size=300).astype(dtype)
        t = (rng.uniform(size=300) < 0.4).astype(np.float32) if "entropy" in name or "focal" in name \
            else rng.poisson(2.0, size=300).astype(np.float32)
        w = rng.uniform(0, 2, size=300).astype(np.float32) if weighted else None
        a = B.LossAdapter(name, params, min_hessian=1e-3)
        g, h = a.grad_hess(x, t, w)
        assert g.dtype == dtype and h.dtype == dtype and g.shape == (300,)
        rg, rh = _ref_grad_hess(name, x, t, w, min_hessian=1e-3, **params)
        _close(g, rg, 2e-5 if dtype == np.float32 else 1e-10)
        _close(h, rh, 2e-5 if dtype == np.float32 else 1e-10)

    @pytest.mark.parametrize("weighted", [False, True])
    def test_cross_entropy_rows(self, weighted, rng):
        x = rng.normal(size=(200, 4))
        y = rng.integers(0, 4, size=200).astype(np.float32)
        w = rng.uniform(0, 2, size=200) if weighted else None
        g, h = B.LossAdapter("cross_entropy", {}, min_hessian=0.0).grad_hess(x, y, w)
        rg, rh = _ref_grad_hess("cross_entropy", x, y, w)
        _close(g, rg, 1e-10)
        _close(h, rh, 1e-10)
        p = np.exp(x) / np.exp(x).sum(1, keepdims=True)
        _close(h, p * (1 - p) * (1.0 if w is None else w[:, None]), 1e-10)  # the diagonal p(1-p)

    def test_class_weight_and_sample_weight_multiply(self, rng):
        x = rng.normal(size=(100, 3))
        y = rng.integers(0, 3, size=100)
        cw, w = np.array([1.0, 3.0, 0.5]), rng.uniform(0, 2, size=100)
        g, h = B.LossAdapter(fl.CrossEntropyLoss(weight=cw), {}, 0.0).grad_hess(x, y.astype(float), w)
        rg, rh = _ref_grad_hess("cross_entropy", x, y, w, weight=cw)
        _close(g, rg, 1e-10)
        _close(h, rh, 1e-10)

    def test_constructor_weight_kept_with_sample_weight(self, rng):
        x, t = rng.normal(size=50), (rng.uniform(size=50) < 0.5).astype(float)
        ew, w = rng.uniform(0.5, 1.5, size=50), rng.uniform(0, 2, size=50)
        a = B.LossAdapter(fl.BCEWithLogitsLoss(weight=ew), {}, 0.0)
        assert not a.fuse_weight
        g, h = a.grad_hess(x, t, w)
        rg, rh = _ref_grad_hess("binary_cross_entropy_with_logits", x, t, w * ew)
        _close(g, rg, 1e-10)
        _close(h, rh, 1e-10)

    def test_hessian_floor(self):
        a = B.LossAdapter("l1_loss", {}, min_hessian=0.5)
        g, h = a.grad_hess(np.array([1.0, -1.0, 0.0]), np.zeros(3), np.array([2.0, 1.0, 0.0]))
        np.testing.assert_array_equal(g, [2.0, -1.0, 0.0])
        np.testing.assert_array_equal(h, [1.0, 0.5, 0.0])  # floor times the weight
        g, h = B.LossAdapter("l1_loss", {}, min_hessian=0.0).grad_hess(np.array([1.0]), np.zeros(1))
        assert h[0] == 0.0
        _, h = B.LossAdapter("mse_loss", {}).grad_hess(np.array([np.nan, 1.0]), np.zeros(2))
        assert np.isnan(h[0]) or np.isnan(_[0])  # NaN is never masked by the floor
        # focal's Hessian is negative far on the wrong side: floored
        a = B.LossAdapter("sigmoid_focal_loss", {}, min_hessian=1e-6)
        _, h = a.grad_hess(np.array([-6.0, 6.0]), np.array([1.0, 0.0]))
        assert np.all(h == 1e-6)

    def test_one_vs_rest_for_pointwise_losses(self, rng):
        x = rng.normal(size=(60, 3)).astype(np.float32)
        y = rng.integers(0, 3, size=60)
        g, h = B.LossAdapter("binary_cross_entropy_with_logits", {}, 0.0).grad_hess(x, y.astype(np.float32))
        onehot = np.eye(3)[y]
        rg, rh = _ref_grad_hess("binary_cross_entropy_with_logits", x, onehot)
        _close(g, rg)
        _close(h, rh)
        with pytest.raises(ValueError, match="out of range"):
            B.LossAdapter("mse_loss", {}).grad_hess(x, np.full(60, 3.0))
        with pytest.raises(ValueError, match="integer class indices"):
            B.LossAdapter("cross_entropy", {}).grad_hess(x, np.full(60, 0.5))
        with pytest.raises(ValueError, match="do not fit"):
            B.LossAdapter("mse_loss", {}).grad_hess(x[:, 0], np.zeros(7))
        with pytest.raises(ValueError, match="sample weights"):
            B.LossAdapter("mse_loss", {}).grad_hess(x[:, 0], np.zeros(60), np.ones(5))

    @pytest.mark.parametrize("order", ["C", "F"])
    def test_flattened_legacy_layout(self, order, rng):
        x = rng.normal(size=(40, 3))
        y = rng.integers(0, 3, size=40).astype(float)
        a = B.LossAdapter("cross_entropy", {}, 0.0)
        g2, h2 = a.grad_hess(x, y, n=40, order=order)
        g1, h1 = a.grad_hess(x.ravel(order=order), y, n=40, order=order)
        assert g1.shape == (120,)
        np.testing.assert_array_equal(g1, g2.ravel(order=order))
        np.testing.assert_array_equal(h1, h2.ravel(order=order))

    def test_multilabel_targets_of_margin_shape(self, rng):
        x = rng.normal(size=(30, 4))
        t = (rng.uniform(size=(30, 4)) < 0.5).astype(float)
        a = B.LossAdapter("multilabel_soft_margin_loss", {}, 0.0)
        g, _ = a.grad_hess(x, t.ravel(), n=30)  # XGBoost-style flat labels, (n, C) margin
        s = 1 / (1 + np.exp(-x))
        _close(g, (s - t) / 4, 1e-10)

    def test_mean_value(self, rng):
        x, t, w = rng.normal(size=100), rng.normal(size=100), rng.uniform(0, 2, size=100)
        a = B.LossAdapter("huber_loss", {"delta": 0.5}, 0.0)
        rv = ref.huber_loss(x, t, delta=0.5, reduction="mean")[0]
        assert a.mean_value(x, t) == pytest.approx(rv, rel=1e-12)
        rv = ref.huber_loss(x, t, delta=0.5, weight=w, reduction="sum")[0] / w.sum()
        assert a.mean_value(x, t, w) == pytest.approx(rv, rel=1e-12)
        xc, yc = rng.normal(size=(100, 3)), rng.integers(0, 3, size=100)
        a = B.LossAdapter("cross_entropy", {}, 0.0)
        per = ref.cross_entropy(xc, yc, reduction="none")[0]
        assert a.mean_value(xc, yc.astype(float), w) == pytest.approx(np.dot(per, w) / w.sum(), rel=1e-12)
        assert a.mean_value(xc, yc.astype(float)) == pytest.approx(per.mean(), rel=1e-12)
        assert np.isnan(a.mean_value(xc, yc.astype(float), np.zeros(100)))

    def test_loss_outside_fastloss(self, rng):
        a = B.LossAdapter(_ToyLoss(scale=3.0), {}, 0.0)
        assert a.loss.reduction == "sum" and a.loss.scale == 3.0
        x, t, w = rng.normal(size=10), rng.normal(size=10), rng.uniform(size=10)
        g, h = a.grad_hess(x, t, w)
        _close(g, 3.0 * (x - t) * w, 1e-12)
        _close(h, 3.0 * w, 1e-12)


def test_import_fastloss_does_not_import_boosting_libraries():
    code = ("import sys, fastloss; import fastloss._boosting; "
            "assert 'xgboost' not in sys.modules and 'lightgbm' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------ XGBoost

def _xgb():
    return pytest.importorskip("xgboost")


_XGB = {"nthread": THREADS, "max_depth": 3, "eta": 0.3, "tree_method": "hist", "seed": 0}


class TestXGBoost:
    def test_squared_error_matches_builtin(self, data):
        xgb = _xgb()
        import fastloss.xgboost as flx
        d = xgb.DMatrix(data["X"], label=data["reg"])
        b1 = xgb.train({**_XGB, "objective": "reg:squarederror", "base_score": 0.0, "reg_lambda": 1.0,
                        "min_child_weight": 1.0}, d, ROUNDS)
        # mse_loss: g = 2 (x - y), h = 2 -- the same Newton step with lambda and min_child_weight doubled
        b2 = xgb.train({**_XGB, "base_score": 0.0, "reg_lambda": 2.0, "min_child_weight": 2.0}, d, ROUNDS,
                       obj=flx.objective("mse_loss"))
        p1, p2 = b1.predict(d, output_margin=True), b2.predict(d, output_margin=True)
        np.testing.assert_allclose(p2, p1, rtol=1e-5, atol=1e-5)
        assert np.std(p1) > 1.0  # a real model

    def test_logistic_matches_builtin(self, data):
        xgb = _xgb()
        import fastloss.xgboost as flx
        d = xgb.DMatrix(data["X"], label=data["bin"])
        b1 = xgb.train({**_XGB, "objective": "binary:logistic", "base_score": 0.5}, d, ROUNDS)  # margin 0
        b2 = xgb.train({**_XGB, "base_score": 0.0}, d, ROUNDS, obj=flx.objective(fl.BCEWithLogitsLoss()))
        p1, p2 = b1.predict(d, output_margin=True), b2.predict(d, output_margin=True)
        np.testing.assert_allclose(p2, p1, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(1 / (1 + np.exp(-p2)), b1.predict(d), atol=1e-5)

    def test_softmax_matches_builtin(self, data):
        xgb = _xgb()
        import fastloss.xgboost as flx
        d = xgb.DMatrix(data["X"], label=data["cls"])
        b1 = xgb.train({**_XGB, "objective": "multi:softprob", "num_class": 3, "base_score": 0.0}, d, ROUNDS)
        # multi:softprob uses h = 2 p (1 - p), fastloss p (1 - p): the same trees with eta, lambda and
        # min_child_weight halved
        b2 = xgb.train({**_XGB, "num_class": 3, "base_score": 0.0, "eta": 0.15, "reg_lambda": 0.5,
                        "min_child_weight": 0.5}, d, ROUNDS, obj=flx.objective("cross_entropy"))
        p1, p2 = b1.predict(d, output_margin=True), b2.predict(d, output_margin=True)
        assert p2.shape == (N, 3)
        np.testing.assert_allclose(p2, p1, rtol=1e-5, atol=1e-5)

    @pytest.mark.parametrize("case", ["focal", "huber", "softmax"])
    @pytest.mark.parametrize("weighted", [False, True])
    def test_native_trains_and_passes_reference_gradients(self, data, case, weighted):
        xgb = _xgb()
        import fastloss.xgboost as flx
        name, params, y, extra = {
            "focal": ("sigmoid_focal_loss", {"alpha": 0.25, "gamma": 2.0}, data["bin"], {}),
            "huber": ("huber_loss", {"delta": 1.0}, data["heavy"], {}),
            "softmax": ("cross_entropy", {}, data["cls"], {"num_class": 3}),
        }[case]
        # Huber's Hessian is 0 on its linear part: the unit floor (LightGBM's and XGBoost's own
        # convention for Huber) keeps the steps bounded; with 1e-6 the loss oscillates
        mh = 1.0 if case == "huber" else 1e-6
        w = data["w"] if weighted else None
        d = xgb.DMatrix(data["X"], label=y, weight=w)
        obj = flx.objective(name, min_hessian=mh, **params)
        calls = []

        def recording(predt, dtrain):
            g, h = obj(predt, dtrain)
            calls.append((predt.copy(), g.copy(), h.copy()))
            return g, h

        log = {}
        bst = xgb.train({**_XGB, **extra, "base_score": 0.0, "disable_default_eval_metric": True}, d, ROUNDS,
                  obj=recording, custom_metric=flx.metric(name, **params), evals=[(d, "train")],
                  evals_result=log, verbose_eval=False)
        vals = log["train"][B.resolve_class(name, "t").__name__]
        start = flx.metric(name, **params)(np.zeros_like(calls[0][0]), d)[1]
        assert len(vals) == ROUNDS and vals[0] < start and vals[-1] < 0.8 * vals[0]
        assert np.all(np.diff(vals) < 0)
        assert len(calls) == ROUNDS
        y32, w32 = d.get_label(), (d.get_weight() if weighted else None)  # as XGBoost stores them (float32)
        for predt, g, h in calls[:: ROUNDS - 1]:
            assert g.shape == predt.shape == ((N, 3) if case == "softmax" else (N,))
            rg, rh = _ref_grad_hess(name, predt, y32, w32, min_hessian=mh, **params)
            _close(g, rg)
            _close(h, rh)
        # the metric: the reference loss of the final margins, per sample (weighted mean); XGBoost logs
        # a custom metric with 6 decimals
        assert vals[-1] == pytest.approx(_ref_mean(name, bst.predict(d, output_margin=True), y32, w32, **params),
                                         abs=1.5e-6)

    def test_sklearn_regressor_huber_weights_and_metric(self, data):
        xgb = _xgb()
        import fastloss.xgboost as flx
        X, y, w = data["X"], data["heavy"], data["w"]
        obj = flx.objective(fl.HuberLoss(delta=1.0), min_hessian=1.0)
        seen = []

        def recording(y_true, y_pred, sample_weight=None):
            seen.append((y_true, y_pred.copy(), sample_weight))
            return obj(y_true, y_pred, sample_weight=sample_weight)

        est = xgb.XGBRegressor(n_estimators=ROUNDS, max_depth=3, learning_rate=0.3, n_jobs=THREADS, base_score=0.0,
                               objective=recording, eval_metric=flx.metric("huber_loss"))
        est.fit(X, y, sample_weight=w, eval_set=[(X, y)], sample_weight_eval_set=[w], verbose=False)
        y32, pred, w32 = seen[-1]
        assert w32 is not None and np.allclose(w32, w, rtol=1e-7)
        g, h = obj(y32, pred, sample_weight=w32)
        rg, rh = _ref_grad_hess("huber_loss", pred, y32, w32, min_hessian=1.0, delta=1.0)
        _close(g, rg)
        _close(h, rh)
        vals = est.evals_result()["validation_0"]["HuberLoss"]
        assert vals[-1] < 0.7 * vals[0]
        margin = est.predict(X, output_margin=True)
        expect = ref.huber_loss(margin, y, delta=1.0, weight=w, reduction="sum")[0] / w.sum()
        assert vals[-1] == pytest.approx(expect, rel=1e-5)

    def test_sklearn_classifiers_match_builtin(self, data):
        xgb = _xgb()
        import fastloss.xgboost as flx
        X, w = data["X"], data["w"]
        kw = dict(n_estimators=ROUNDS, max_depth=3, n_jobs=THREADS, base_score=0.5)
        yb = data["bin"].astype(int)
        c1 = xgb.XGBClassifier(**kw, learning_rate=0.3).fit(X, yb, sample_weight=w)
        c2 = xgb.XGBClassifier(**kw, learning_rate=0.3, objective=flx.objective("binary_cross_entropy_with_logits"))
        c2.fit(X, yb, sample_weight=w)
        np.testing.assert_allclose(c2.predict_proba(X), c1.predict_proba(X), atol=1e-5)
        yc = data["cls"].astype(int)
        c1 = xgb.XGBClassifier(**kw, learning_rate=0.3).fit(X, yc, sample_weight=w)
        c2 = xgb.XGBClassifier(**kw, learning_rate=0.15, reg_lambda=0.5, min_child_weight=0.5,
                               objective=flx.objective(fl.CrossEntropyLoss()),
                               eval_metric=flx.metric(fl.CrossEntropyLoss()))
        c2.fit(X, yc, sample_weight=w, eval_set=[(X, yc)], sample_weight_eval_set=[w], verbose=False)
        np.testing.assert_allclose(c2.predict_proba(X), c1.predict_proba(X), atol=1e-5)
        margin = c2.predict(X, output_margin=True)
        per = ref.cross_entropy(margin.astype(np.float64), yc, reduction="none")[0]
        assert c2.evals_result()["validation_0"]["CrossEntropyLoss"][-1] == pytest.approx(
            np.dot(per, w) / w.sum(), rel=1e-5)

    def test_multi_target_and_outside_loss(self, data):
        xgb = _xgb()
        import fastloss.xgboost as flx
        X = data["X"]
        Y = np.c_[data["reg"], -data["reg"]]
        d = xgb.DMatrix(X, label=Y)
        bst = xgb.train({**_XGB, "base_score": 0.0}, d, ROUNDS, obj=flx.objective(_ToyLoss(scale=2.0)))
        m = bst.predict(d, output_margin=True)
        assert m.shape == (N, 2) and np.mean((m - Y) ** 2) < 0.3 * np.mean(Y ** 2)

    def test_pickle_and_repr(self):
        pytest.importorskip("xgboost")
        import fastloss.xgboost as flx
        obj = pickle.loads(pickle.dumps(flx.objective(fl.HuberLoss(delta=2.0), min_hessian=0.5)))
        assert obj.loss.delta == 2.0 and obj.min_hessian == 0.5 and "HuberLoss" in repr(obj)
        m = pickle.loads(pickle.dumps(flx.metric("huber_loss", name="hub")))
        assert m.__name__ == "hub" and m(np.zeros(2), np.array([1.0, 3.0])) == pytest.approx(1.5)


# ------------------------------------------------------------------ LightGBM

def _lgb():
    return pytest.importorskip("lightgbm")


_LGB = {"num_threads": THREADS, "num_leaves": 8, "learning_rate": 0.3, "verbose": -1, "deterministic": True,
        "force_col_wise": True, "boost_from_average": False, "seed": 0}


def _lgb_train(lgb, params, X, y, weight=None, rounds=ROUNDS, **kw):
    return lgb.train(params, lgb.Dataset(X, label=y, weight=weight), rounds, **kw)


class TestLightGBM:
    def test_regression_matches_builtin(self, data):
        lgb = _lgb()
        import fastloss.lightgbm as fll
        X, y = data["X"], data["reg"]
        b1 = _lgb_train(lgb, {**_LGB, "objective": "regression", "lambda_l2": 1.0,
                              "min_sum_hessian_in_leaf": 1e-3}, X, y)
        b2 = _lgb_train(lgb, {**_LGB, "objective": fll.objective("mse_loss"), "lambda_l2": 2.0,
                              "min_sum_hessian_in_leaf": 2e-3}, X, y)
        np.testing.assert_allclose(b2.predict(X, raw_score=True), b1.predict(X, raw_score=True), rtol=1e-5,
                                   atol=1e-5)

    def test_binary_matches_builtin(self, data):
        lgb = _lgb()
        import fastloss.lightgbm as fll
        X, y, w = data["X"], data["bin"], data["w"]
        b1 = _lgb_train(lgb, {**_LGB, "objective": "binary"}, X, y, w)
        b2 = _lgb_train(lgb, {**_LGB, "objective": fll.objective(fl.BCEWithLogitsLoss())}, X, y, w)
        np.testing.assert_allclose(b2.predict(X, raw_score=True), b1.predict(X, raw_score=True), rtol=1e-5,
                                   atol=1e-5)

    def test_multiclass_matches_builtin(self, data):
        lgb = _lgb()
        import fastloss.lightgbm as fll
        X, y = data["X"], data["cls"]
        b1 = _lgb_train(lgb, {**_LGB, "objective": "multiclass", "num_class": 3}, X, y)
        # LightGBM's multiclass Hessian is C/(C-1) p (1-p): the same trees with the learning rate and
        # min_sum_hessian_in_leaf divided by C/(C-1)
        k = 3 / 2
        b2 = _lgb_train(lgb, {**_LGB, "objective": fll.objective("cross_entropy"), "num_class": 3,
                              "learning_rate": 0.3 / k, "min_sum_hessian_in_leaf": 1e-3 / k}, X, y)
        p1, p2 = b1.predict(X, raw_score=True), b2.predict(X, raw_score=True)
        assert p2.shape == (N, 3)
        np.testing.assert_allclose(p2, p1, rtol=1e-5, atol=1e-5)

    @pytest.mark.parametrize("case", ["focal", "huber", "softmax"])
    @pytest.mark.parametrize("weighted", [False, True])
    def test_native_trains_and_passes_reference_gradients(self, data, case, weighted):
        lgb = _lgb()
        import fastloss.lightgbm as fll
        name, params, y, extra = {
            "focal": ("sigmoid_focal_loss", {"alpha": 0.25, "gamma": 2.0}, data["bin"], {"lambda_l2": 1.0}),
            "huber": ("huber_loss", {"delta": 1.0}, data["heavy"], {}),
            "softmax": ("cross_entropy", {}, data["cls"], {"num_class": 3}),
        }[case]
        mh = 1.0 if case == "huber" else 1e-6  # as in the XGBoost test
        w = data["w"] if weighted else None
        obj = fll.objective(name, min_hessian=mh, **params)
        calls = []

        def recording(preds, train_set):
            g, h = obj(preds, train_set)
            calls.append((preds.copy(), g.copy(), h.copy()))
            return g, h

        log = {}
        ds = lgb.Dataset(data["X"], label=y, weight=w)
        bst = lgb.train({**_LGB, **extra, "objective": recording, "metric": "None"}, ds, ROUNDS, valid_sets=[ds],
                  valid_names=["train"], feval=fll.metric(name, **params), callbacks=[lgb.record_evaluation(log)])
        vals = log["train"][B.resolve_class(name, "t").__name__]
        start = fll.metric(name, **params)(np.zeros_like(calls[0][0]), ds)[1]
        assert len(vals) == ROUNDS and vals[0] < start and vals[-1] < 0.8 * vals[0]
        assert np.all(np.diff(vals) < 0)
        assert len(calls) == ROUNDS
        y32, w32 = ds.get_label(), ds.get_weight()  # as LightGBM stores them (float32)
        assert (w32 is None) == (not weighted)
        for preds, g, h in calls[:: ROUNDS - 1]:
            assert g.shape == preds.shape == ((N, 3) if case == "softmax" else (N,))
            rg, rh = _ref_grad_hess(name, preds, y32, w32, min_hessian=mh, **params)
            _close(g, rg, 1e-9)
            _close(h, rh, 1e-9)
        assert vals[-1] == pytest.approx(_ref_mean(name, bst.predict(data["X"], raw_score=True), y32, w32, **params),
                                         rel=1e-9)

    @pytest.mark.filterwarnings("ignore:The argument 'eval_set' is deprecated")
    def test_sklearn_focal_classifier_and_metric(self, data):
        lgb = _lgb()
        import fastloss.lightgbm as fll
        X, y, w = data["X"], data["bin"].astype(int), data["w"]
        obj = fll.objective(fl.SigmoidFocalLoss(alpha=0.25, gamma=2.0))
        seen = []

        def recording(y_true, y_pred, weight):
            seen.append((y_true, y_pred.copy(), weight))
            return obj(y_true, y_pred, weight)

        est = lgb.LGBMRegressor(n_estimators=ROUNDS, num_leaves=8, learning_rate=0.3, n_jobs=THREADS, verbose=-1,
                                reg_lambda=1.0, objective=recording)
        est.fit(X, y, sample_weight=w, eval_set=[(X, y)], eval_sample_weight=[w],
                eval_metric=fll.metric("sigmoid_focal_loss"))
        y32, pred, w32 = seen[-1]
        assert w32 is not None and np.allclose(w32, w, rtol=1e-7)
        g, h = obj(y32, pred, w32)
        rg, rh = _ref_grad_hess("sigmoid_focal_loss", pred, y32, w32, min_hessian=1e-6)
        _close(g, rg, 1e-9)
        _close(h, rh, 1e-9)
        vals = est.evals_result_["training"]["SigmoidFocalLoss"]
        assert vals[-1] < 0.8 * vals[0]
        raw = est.predict(X, raw_score=True)
        w32 = w32.astype(np.float64)
        expect = ref.sigmoid_focal_loss(raw, y, weight=w32, reduction="sum")[0] / w32.sum()
        assert vals[-1] == pytest.approx(expect, rel=1e-9)

    @pytest.mark.filterwarnings("ignore:The argument 'eval_set' is deprecated")
    def test_sklearn_multiclass_matches_builtin(self, data):
        lgb = _lgb()
        import fastloss.lightgbm as fll
        X, y, w = data["X"], data["cls"].astype(int), data["w"]
        kw = dict(n_estimators=ROUNDS, num_leaves=8, n_jobs=THREADS, verbose=-1, deterministic=True,
                  force_col_wise=True, boost_from_average=False)
        c1 = lgb.LGBMClassifier(**kw, learning_rate=0.3).fit(X, y, sample_weight=w)
        # the multiclass Hessian factor C/(C-1) = 1.5 undone on learning_rate and min_child_weight
        c2 = lgb.LGBMClassifier(**kw, learning_rate=0.2, min_child_weight=1e-3 / 1.5,
                                objective=fll.objective("cross_entropy"))
        c2.fit(X, y, sample_weight=w, eval_set=[(X, y)], eval_sample_weight=[w],
               eval_metric=fll.metric("cross_entropy"))
        r1, r2 = c1.predict(X, raw_score=True), c2.predict(X, raw_score=True)
        assert r2.shape == (N, 3)
        np.testing.assert_allclose(r2, r1, rtol=1e-5, atol=1e-5)
        per = ref.cross_entropy(r2, y, reduction="none")[0]
        assert c2.evals_result_["training"]["CrossEntropyLoss"][-1] == pytest.approx(
            np.dot(per, w) / w.sum(), rel=1e-9)

    def test_pickle_and_repr(self):
        _lgb()
        import fastloss.lightgbm as fll
        obj = pickle.loads(pickle.dumps(fll.objective("HuberLoss", delta=2.0)))
        assert obj.loss.delta == 2.0 and "HuberLoss" in repr(obj)
        m = fll.metric("mse_loss", name="sq")
        assert m(np.zeros(2), np.array([1.0, 3.0]), None) == ("sq", 5.0, False)
