"""fastloss losses as LightGBM custom objectives and evaluation metrics.

``objective(loss)`` gives a callable that LightGBM accepts as a custom
objective, both in the native API (``lightgbm.train({"objective": obj,
...}, train_set)``, called as ``obj(preds, train_set)``) and in the
scikit-learn API (``LGBMRegressor(objective=obj)``, called as
``obj(y_true, y_pred, weight)``).  ``metric(loss)`` gives the matching
evaluation metric (``feval=`` of ``lightgbm.train``, ``eval_metric=`` of
``fit``) returning ``(name, value, False)``: lower is better.

``loss`` is any fastloss loss: an object (``fl.SigmoidFocalLoss(alpha=0.25,
gamma=2.0)``, the focal loss asked for in LightGBM#3706), a class with its
parameters (``objective(fl.HuberLoss, delta=1.0)``) or a name
(``objective("huber_loss", delta=1.0)``).  The adapter is generic: it calls
the loss's ``grad_hess`` on the raw score, so a loss added to fastloss
later works here as it is.

What the objective computes
---------------------------
* The gradient and diagonal Hessian of the *summed* loss with respect to
  the raw score (``reduction="sum"``: each sample's gradient is unscaled),
  times the sample weights of the Dataset (``Dataset(..., weight=w)``,
  ``fit(..., sample_weight=w)``): LightGBM does not weight a custom
  objective's gradients itself.
* Layout: ``(n_samples,)`` for one output; ``(n_samples, num_class)`` for
  multiclass (LightGBM >= 4 passes the scores so and wants the gradients
  so).  With 1-D labels, a loss over class labels (``fl.CrossEntropyLoss``)
  gets them as integers, any other loss one-hot (one-versus-rest).
* Each Hessian is raised to at least ``min_hessian`` (default 1e-6, times
  the sample's weight).  LightGBM's leaf value is ``-G / (H + lambda_l2)``
  and ``lambda_l2`` defaults to 0, so a loss whose Hessian vanishes
  (``l1_loss``, ``quantile_loss``, ``hinge_loss``, the linear part of
  ``huber_loss``) or goes negative (``sigmoid_focal_loss`` far on the wrong
  side) needs a meaningful floor: ``min_hessian=1.0`` is the constant unit
  Hessian of LightGBM's own ``huber``/``l1``/``quantile`` objectives.

Conventions that differ from LightGBM's built-in objectives
-----------------------------------------------------------
fastloss's Hessians are the exact ones of the loss as written:
``mse_loss`` gives ``g = 2 (x - y), h = 2`` where ``regression`` uses
``x - y`` and 1; ``cross_entropy`` gives ``h = p (1 - p)`` where
``multiclass`` uses ``C / (C - 1) p (1 - p)``.  The Newton step is the
same up to those factors; ``lambda_l2`` and ``min_sum_hessian_in_leaf`` are
in the loss's units.  A custom objective starts from a raw score of 0
(``boost_from_average`` applies to built-in objectives only; give an
``init_score`` to start elsewhere), ``predict`` returns raw scores, and
``LGBMClassifier.predict_proba`` warns and returns raw scores as well: use
``predict(X, raw_score=True)`` and apply the sigmoid or softmax.

Examples
--------
>>> import numpy as np, lightgbm as lgb, fastloss as fl, fastloss.lightgbm as fll
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(300, 3)); y = (X[:, 0] + 0.3 * rng.normal(size=300) > 0).astype(float)
>>> train = lgb.Dataset(X, label=y)
>>> log = {}
>>> bst = lgb.train({"objective": fll.objective(fl.SigmoidFocalLoss(alpha=0.25, gamma=2.0)),
...                  "metric": "None", "verbose": -1, "num_threads": 1, "lambda_l2": 1.0},
...                 train, num_boost_round=5, valid_sets=[train], valid_names=["train"],
...                 feval=fll.metric("sigmoid_focal_loss"), callbacks=[lgb.record_evaluation(log)])
>>> vals = log["train"]["SigmoidFocalLoss"]
>>> vals[-1] < vals[0]
True
"""
from __future__ import annotations

try:
    import lightgbm as _lgb
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("fastloss.lightgbm needs LightGBM: pip install lightgbm (>= 4)") from e

import numpy as np

from ._boosting import DEFAULT_MIN_HESSIAN, LossAdapter

__all__ = ["objective", "metric", "LightGBMObjective", "LightGBMMetric"]

# LightGBM < 4 passed multiclass scores flattened class-major (Fortran order)
_ORDER = "F"


def _native(a, b):
    return isinstance(b, _lgb.Dataset)


def _n_of(y_true, y_pred):
    return y_pred.shape[0] if y_pred.ndim >= 2 else np.size(y_true)


class LightGBMObjective:
    """A fastloss loss as a LightGBM custom objective (see :func:`objective`).

    Call forms:

    * native API: ``obj(preds, train_set)`` -> ``(grad, hess)``; labels and
      weights come from the Dataset (``get_label()``, ``get_weight()``);
    * scikit-learn API: ``obj(y_true, y_pred, weight)`` -> ``(grad, hess)``
      (LightGBM counts the parameters: three means labels, scores, weights).

    Attributes
    ----------
    loss : the fastloss loss object, with ``reduction="sum"``
    min_hessian : float
    """

    def __init__(self, loss, *, min_hessian=DEFAULT_MIN_HESSIAN, **params):
        self._adapter = LossAdapter(loss, params, min_hessian, op="fastloss.lightgbm.objective")
        self.loss, self.min_hessian = self._adapter.loss, self._adapter.min_hessian

    def __call__(self, preds_or_y_true, train_set_or_y_pred, weight=None):
        if _native(preds_or_y_true, train_set_or_y_pred):
            preds, ds = preds_or_y_true, train_set_or_y_pred
            return self._adapter.grad_hess(preds, ds.get_label(), ds.get_weight(), n=ds.num_data(),
                                           order=_ORDER)
        y_true, y_pred = preds_or_y_true, np.asarray(train_set_or_y_pred)
        return self._adapter.grad_hess(y_pred, y_true, weight, n=_n_of(y_true, y_pred), order=_ORDER)

    def __repr__(self):
        return f"fastloss.lightgbm.objective({self.loss!r}, min_hessian={self.min_hessian!r})"


class LightGBMMetric:
    """A fastloss loss as a LightGBM evaluation metric (see :func:`metric`).

    Call forms: ``m(preds, eval_data)`` (native ``feval=``) and ``m(y_true,
    y_pred, weight)`` (scikit-learn ``eval_metric=``), both returning
    ``(name, value, False)``.

    The value is the loss summed over the samples divided by their number,
    or with sample weights ``sum_i w_i L_i / sum_i w_i`` (``L_i`` is sample
    i's loss, summed over its outputs; for one output and no weights this
    is the plain mean).  The predictions must be raw scores, which is what
    LightGBM passes to a metric when the objective is custom.
    """

    def __init__(self, loss, *, name=None, **params):
        self._adapter = LossAdapter(loss, params, 0.0, op="fastloss.lightgbm.metric")
        self.loss = self._adapter.loss
        self.__name__ = self.name = name if name is not None else self._adapter.name

    def __call__(self, preds_or_y_true, eval_data_or_y_pred, weight=None):
        if _native(preds_or_y_true, eval_data_or_y_pred):
            preds, ds = preds_or_y_true, eval_data_or_y_pred
            v = self._adapter.mean_value(preds, ds.get_label(), ds.get_weight(), n=ds.num_data(), order=_ORDER)
        else:
            y_true, y_pred = preds_or_y_true, np.asarray(eval_data_or_y_pred)
            v = self._adapter.mean_value(y_pred, y_true, weight, n=_n_of(y_true, y_pred), order=_ORDER)
        return self.name, v, False

    def __repr__(self):
        return f"fastloss.lightgbm.metric({self.loss!r}, name={self.name!r})"


def objective(loss, *, min_hessian=DEFAULT_MIN_HESSIAN, **params) -> LightGBMObjective:
    """A LightGBM custom objective from a fastloss loss.

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
    LightGBMObjective
        ``obj(preds, train_set)`` for ``lightgbm.train({"objective": obj,
        ...})`` and ``obj(y_true, y_pred, weight)`` for
        ``LGBMRegressor(objective=obj)`` / ``LGBMClassifier(objective=obj)``;
        both return ``(grad, hess)`` in the score's layout ((n,) or
        (n, num_class)).

    Examples
    --------
    >>> import numpy as np, fastloss.lightgbm as fll
    >>> obj = fll.objective("huber_loss", delta=1.0, min_hessian=1.0)
    >>> obj(np.array([0.0, 0.0]), np.array([0.5, 3.0]), None)   # scikit-learn form
    (array([0.5, 1. ]), array([1., 1.]))
    """
    return LightGBMObjective(loss, min_hessian=min_hessian, **params)


def metric(loss, *, name=None, **params) -> LightGBMMetric:
    """A LightGBM evaluation metric from a fastloss loss.

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
    LightGBMMetric
        ``m(preds, eval_data)`` for ``lightgbm.train(..., feval=m)`` and
        ``m(y_true, y_pred, weight)`` for ``fit(..., eval_metric=m)``; both
        return ``(name, value, False)``.

    Examples
    --------
    >>> import numpy as np, fastloss.lightgbm as fll
    >>> m = fll.metric("mse_loss")
    >>> m(np.array([0.0, 0.0]), np.array([1.0, 3.0]), np.array([3.0, 1.0]))
    ('MSELoss', 3.0, False)
    """
    return LightGBMMetric(loss, name=name, **params)
