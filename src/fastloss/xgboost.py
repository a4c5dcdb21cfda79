"""fastloss losses as XGBoost custom objectives and evaluation metrics.

``objective(loss)`` gives a callable that XGBoost accepts as a custom
objective, both in the native API (``xgboost.train(params, dtrain,
obj=...)``, called as ``obj(predt, dtrain)``) and in the scikit-learn API
(``XGBRegressor(objective=...)``, called as ``obj(y_true, y_pred,
sample_weight=...)``).  ``metric(loss)`` gives the matching evaluation
metric (``custom_metric=`` of ``xgboost.train``, ``eval_metric=`` of the
estimators), so the training log shows the fastloss loss.

``loss`` is any fastloss loss: an object (``fl.SigmoidFocalLoss(alpha=0.25,
gamma=2.0)``), a class with its parameters (``objective(fl.HuberLoss,
delta=1.0)``) or a name (``objective("huber_loss", delta=1.0)``).  The
adapter is generic: it calls the loss's ``grad_hess`` on the raw margin, so
a loss added to fastloss later works here as it is.

What the objective computes
---------------------------
* The gradient and diagonal Hessian of the *summed* loss with respect to
  the raw margin (the loss is used with ``reduction="sum"``, so each
  sample's gradient is unscaled), times the sample weights of the DMatrix
  (``DMatrix(..., weight=w)``, ``fit(..., sample_weight=w)``): XGBoost does
  not weight a custom objective's gradients itself.
* Layout: ``(n_samples,)`` for one output; ``(n_samples, n_classes)`` for
  several (XGBoost >= 2.1).  With ``num_class=C`` and 1-D labels, a loss
  over class labels (``fl.CrossEntropyLoss``) gets the labels as integers;
  any other loss gets them one-hot (one-versus-rest).  Labels of the
  margin's shape (multi-target regression) are passed as they are.
* Each Hessian is raised to at least ``min_hessian`` (default 1e-6, times
  the sample's weight): Newton boosting needs a positive Hessian.  This
  matters for losses whose Hessian vanishes (``l1_loss``,
  ``quantile_loss``, ``hinge_loss``, the linear part of ``huber_loss``)
  or goes negative (``sigmoid_focal_loss`` on badly misclassified
  samples).  For those, ``min_hessian=1.0`` gives the constant unit
  Hessian that XGBoost's and LightGBM's own L1/Huber/quantile objectives
  use; the default keeps the exact Hessian wherever it is positive.

Conventions that differ from XGBoost's built-in objectives
----------------------------------------------------------
fastloss's Hessians are the exact ones of the loss as written, so
``mse_loss`` gives ``g = 2 (x - y), h = 2`` where ``reg:squarederror`` uses
``x - y`` and 1, and ``cross_entropy`` gives ``h = p (1 - p)`` where
``multi:softprob`` uses ``2 p (1 - p)``.  The Newton step ``-G / H`` is the
same; only the regularization terms (``reg_lambda``, ``min_child_weight``,
``gamma``) are measured in different units.  With a custom objective
XGBoost's ``predict`` returns the raw margin (apply the sigmoid/softmax
yourself, or use ``output_margin=True``); ``XGBClassifier.predict_proba``
applies the logistic/softmax link of the internal objective it sets.  Set
``base_score`` (a margin) and ``disable_default_eval_metric=True`` with the
native API.

Examples
--------
>>> import numpy as np, xgboost as xgb, fastloss as fl, fastloss.xgboost as flx
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(200, 3)); y = (X[:, 0] + 0.3 * rng.normal(size=200) > 0).astype(float)
>>> dtrain = xgb.DMatrix(X, label=y)
>>> log = {}
>>> bst = xgb.train({"base_score": 0.0, "disable_default_eval_metric": True, "nthread": 1},
...                 dtrain, num_boost_round=5, obj=flx.objective(fl.SigmoidFocalLoss(alpha=0.25, gamma=2.0)),
...                 custom_metric=flx.metric("sigmoid_focal_loss"), evals=[(dtrain, "train")],
...                 evals_result=log, verbose_eval=False)
>>> vals = log["train"]["SigmoidFocalLoss"]
>>> vals[-1] < vals[0]
True
"""
from __future__ import annotations

try:
    import xgboost as _xgb
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("fastloss.xgboost needs XGBoost: pip install xgboost (>= 2.1)") from e

import numpy as np

from ._boosting import DEFAULT_MIN_HESSIAN, LossAdapter

__all__ = ["objective", "metric", "XGBoostObjective", "XGBoostMetric"]


def _native(a, b):
    return isinstance(b, _xgb.DMatrix)


class XGBoostObjective:
    """A fastloss loss as an XGBoost custom objective (see :func:`objective`).

    Call forms:

    * native API: ``obj(predt, dtrain)`` -> ``(grad, hess)``; labels and
      weights come from ``dtrain`` (``get_label()``, ``get_weight()``);
    * scikit-learn API: ``obj(y_true, y_pred, sample_weight=None)`` ->
      ``(grad, hess)``.

    Attributes
    ----------
    loss : the fastloss loss object, with ``reduction="sum"``
    min_hessian : float
    """

    def __init__(self, loss, *, min_hessian=DEFAULT_MIN_HESSIAN, **params):
        self._adapter = LossAdapter(loss, params, min_hessian, op="fastloss.xgboost.objective")
        self.loss, self.min_hessian = self._adapter.loss, self._adapter.min_hessian

    def __call__(self, predt_or_y_true, dtrain_or_y_pred, sample_weight=None):
        if _native(predt_or_y_true, dtrain_or_y_pred):
            predt, dtrain = predt_or_y_true, dtrain_or_y_pred
            return self._adapter.grad_hess(predt, dtrain.get_label(), dtrain.get_weight(),
                                           n=dtrain.num_row(), order="C")
        y_true, y_pred = predt_or_y_true, np.asarray(dtrain_or_y_pred)
        n = y_pred.shape[0] if y_pred.ndim >= 2 else np.size(y_true)
        return self._adapter.grad_hess(y_pred, y_true, sample_weight, n=n, order="C")

    def __repr__(self):
        return f"fastloss.xgboost.objective({self.loss!r}, min_hessian={self.min_hessian!r})"


class XGBoostMetric:
    """A fastloss loss as an XGBoost evaluation metric (see :func:`metric`).

    Call forms:

    * native API (``custom_metric=``): ``m(predt, dmatrix)`` -> ``(name, value)``;
    * scikit-learn API (``eval_metric=``): ``m(y_true, y_score,
      sample_weight=None)`` -> ``value`` (XGBoost takes the name from
      ``m.__name__``).

    The value is the loss summed over the samples divided by their number,
    or with sample weights ``sum_i w_i L_i / sum_i w_i`` (``L_i`` is sample
    i's loss, summed over its outputs; for one output and no weights this
    is the plain mean).  The predictions must be raw margins, which is what
    XGBoost passes to a metric when the objective is custom.
    """

    def __init__(self, loss, *, name=None, **params):
        self._adapter = LossAdapter(loss, params, 0.0, op="fastloss.xgboost.metric")
        self.loss = self._adapter.loss
        self.__name__ = self.name = name if name is not None else self._adapter.name

    def __call__(self, predt_or_y_true, dmatrix_or_y_score, sample_weight=None):
        if _native(predt_or_y_true, dmatrix_or_y_score):
            predt, d = predt_or_y_true, dmatrix_or_y_score
            v = self._adapter.mean_value(predt, d.get_label(), d.get_weight(), n=d.num_row(), order="C")
            return self.name, v
        y_true, y_score = predt_or_y_true, np.asarray(dmatrix_or_y_score)
        n = y_score.shape[0] if y_score.ndim >= 2 else np.size(y_true)
        return self._adapter.mean_value(y_score, y_true, sample_weight, n=n, order="C")

    def __repr__(self):
        return f"fastloss.xgboost.metric({self.loss!r}, name={self.name!r})"


def objective(loss, *, min_hessian=DEFAULT_MIN_HESSIAN, **params) -> XGBoostObjective:
    """An XGBoost custom objective from a fastloss loss.

    Parameters
    ----------
    loss : fastloss loss object, class, function or name
        ``fl.HuberLoss(delta=2.0)``, ``fl.HuberLoss``, ``fl.huber_loss``,
        ``"huber_loss"`` or ``"HuberLoss"``.  An object with another
        reduction is copied with ``reduction="sum"``.
    min_hessian : float >= 0, default 1e-6
        Floor of each sample's Hessian (times its weight).
    **params
        Constructor parameters, with a class, function or name.

    Returns
    -------
    XGBoostObjective
        ``obj(predt, dtrain)`` for ``xgboost.train(..., obj=obj)`` and
        ``obj(y_true, y_pred, sample_weight=None)`` for
        ``XGBRegressor(objective=obj)`` / ``XGBClassifier(objective=obj)``;
        both return ``(grad, hess)`` in the margin's layout ((n,) or
        (n, n_classes)).

    Examples
    --------
    >>> import numpy as np, fastloss.xgboost as flx
    >>> obj = flx.objective("huber_loss", delta=1.0)
    >>> obj(np.array([0.0, 0.0]), np.array([0.5, 3.0]))   # scikit-learn form: (y_true, y_pred)
    (array([0.5, 1. ]), array([1.e+00, 1.e-06]))
    """
    return XGBoostObjective(loss, min_hessian=min_hessian, **params)


def metric(loss, *, name=None, **params) -> XGBoostMetric:
    """An XGBoost evaluation metric from a fastloss loss.

    Parameters
    ----------
    loss : fastloss loss object, class, function or name
        As :func:`objective`.
    name : str, optional
        The name in the training log (default: the loss's class name).
    **params
        Constructor parameters, with a class, function or name.

    Returns
    -------
    XGBoostMetric
        ``m(predt, dmatrix) -> (name, value)`` for ``xgboost.train(...,
        custom_metric=m)``; ``m(y_true, y_score, sample_weight=None) ->
        value`` for the estimators' ``eval_metric=m``.  Lower is better.

    Examples
    --------
    >>> import numpy as np, fastloss.xgboost as flx
    >>> m = flx.metric("mse_loss")
    >>> m(np.array([0.0, 0.0]), np.array([1.0, 3.0]))
    5.0
    >>> m(np.array([0.0, 0.0]), np.array([1.0, 3.0]), sample_weight=np.array([3.0, 1.0]))
    3.0
    """
    return XGBoostMetric(loss, name=name, **params)
