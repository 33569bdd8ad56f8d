"""The estimator contract (scikit-learn's), without depending on scikit-learn.

handnet's core needs NumPy alone, so its models cannot inherit from
``sklearn.base.BaseEstimator``. Instead this small mixin implements the same
contract (what ``sklearn.base.clone``, ``GridSearchCV`` and the estimator checks
rely on): the constructor only stores its arguments, ``get_params`` reads them
back from the signature, ``set_params`` writes them, and ``__sklearn_tags__``
describes the model. scikit-learn, when installed, is imported only inside
``__sklearn_tags__``, which only scikit-learn itself calls.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from .exceptions import NotFittedError


class BaseEstimator:
    """``get_params``/``set_params``/``repr`` from the constructor's signature."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return sorted(
            name
            for name, p in signature.parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments, by name (``deep`` for nested estimators)."""
        params = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            params[name] = value
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                for key, inner in value.get_params().items():
                    params[f"{name}__{key}"] = inner
        return params

    def set_params(self, **params: Any) -> BaseEstimator:
        """Set constructor arguments by name; returns ``self``."""
        valid = self._get_param_names()
        for key, value in params.items():
            name, _, inner = key.partition("__")
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for estimator {type(self).__name__}. "
                    f"Valid parameters are: {valid}."
                )
            if inner:
                getattr(self, name).set_params(**{inner: value})
            else:
                setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {
            name: p.default for name, p in inspect.signature(type(self).__init__).parameters.items()
        }
        changed = []
        for name in self._get_param_names():
            value = getattr(self, name, None)
            default = defaults.get(name, inspect.Parameter.empty)
            same = value is default
            if not same:
                try:
                    same = bool(value == default)
                except Exception:  # arrays and odd objects compare badly: show them
                    same = False
            if not same:
                changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self) -> Any:  # pragma: no cover - exercised with scikit-learn
        from sklearn.utils import Tags, TargetTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=True))

    def _check_is_fitted(self) -> None:
        if not getattr(self, "_fitted", False):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )


def accuracy(y_true: np.ndarray, y_pred: np.ndarray, sample_weight: np.ndarray | None) -> float:
    """The (weighted) fraction of correct predictions."""
    correct = np.asarray(y_true == y_pred, dtype=np.float64)
    return float(np.average(correct, weights=sample_weight))


def r2_score(y_true: np.ndarray, y_pred: np.ndarray, sample_weight: np.ndarray | None) -> float:
    r"""Coefficient of determination :math:`1 - SS_{res} / SS_{tot}`, averaged over outputs."""
    y_true = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)
    weights = np.ones(len(y_true)) if sample_weight is None else np.asarray(sample_weight)
    weights = weights.reshape(-1, 1)
    mean = np.sum(weights * y_true, axis=0) / np.sum(weights)
    residual = np.sum(weights * (y_true - y_pred) ** 2, axis=0)
    total = np.sum(weights * (y_true - mean) ** 2, axis=0)
    # A constant target: perfect predictions score 1, anything else 0 (scikit-learn's rule).
    scores = np.where(total > 0, 1.0 - residual / np.where(total > 0, total, 1.0),
                      np.where(residual == 0, 1.0, 0.0))
    return float(np.mean(scores))
