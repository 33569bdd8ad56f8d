"""The estimator contract (scikit-learn's), without depending on scikit-learn.

Design choice
-------------
handnet's core needs NumPy alone: scikit-learn is an optional extra
(``pip install handnet[sklearn]``). So its models cannot inherit from
``sklearn.base.BaseEstimator``, and nothing here imports scikit-learn at import
time. Instead this module holds a light base class of our own whose behaviour
matches scikit-learn's contract, which is all that ``sklearn.base.clone``,
``Pipeline``, ``GridSearchCV``, ``cross_val_score`` and the estimator checks
(``sklearn.utils.estimator_checks``) rely on:

* the constructor only stores its arguments, unchanged;
* ``get_params`` reads them back from the constructor's signature and
  ``set_params`` writes them (``name__inner`` for nested objects), so ``clone``
  works;
* fitted state lives in attributes whose names end with ``_``
  (``n_features_in_``, ``feature_names_in_``, ``classes_``, ...);
* prediction before ``fit`` raises :class:`~handnet.exceptions.NotFittedError`;
* ``__sklearn_tags__`` describes the model (classifier or regressor,
  binary-only, multi-output, ...). It is the one place that imports
  scikit-learn, inside the method, which only scikit-learn itself calls.

The alternative, inheriting from scikit-learn's classes when it happens to be
installed, would make a model's class hierarchy (and pickles) depend on the
environment; a small class of our own keeps one behaviour everywhere.

Exceptions and warnings that scikit-learn's tools catch by *its* classes
(``NotFittedError``, ``DataConversionWarning``, ``ConvergenceWarning``) are
raised through :func:`~handnet.exceptions.sklearn_compatible`: when
scikit-learn has already been imported by the user's program, the raised object
is an instance of a subclass of both the handnet class and scikit-learn's class
of the same name, so ``except sklearn.exceptions.NotFittedError`` and
``except handnet.NotFittedError`` both catch it. When scikit-learn has not been
imported it is the plain handnet class; scikit-learn is never imported for it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from types import MethodType
from typing import Any

import numpy as np

from .exceptions import NotFittedError, sklearn_compatible
from .registry import Registry

#: The estimators a model file may name, by class name: ``handnet.models`` registers
#: its four; ``ESTIMATORS.register("Name", cls)`` adds another. Model files build only
#: what is registered here (:mod:`handnet.io` reads it without importing the models).
ESTIMATORS: Registry[type[BaseEstimator]] = Registry(
    "estimator", pattern=r"[A-Z][A-Za-z0-9]{0,63}"
)


class available_if:  # lower case: a decorator, named like scikit-learn's
    """A method that exists only when ``check(instance)`` holds.

    scikit-learn (and its estimator checks) ask ``hasattr(model, "partial_fit")``
    to learn what a model can do; with L-BFGS, which only trains on the full
    batch, the answer must be no. Same idea as ``sklearn.utils.metaestimators.available_if``.

    Parameters
    ----------
    check : callable ``check(instance) -> bool``
        Returns ``True`` when the method is available, or raises an
        ``AttributeError`` whose message says why it is not.
    """

    def __init__(self, check: Callable[[Any], bool]) -> None:
        self.check = check

    def __call__(self, method: Callable[..., Any]) -> Any:
        return _ConditionalMethod(method, self.check)


class _ConditionalMethod:
    def __init__(self, method: Callable[..., Any], check: Callable[[Any], bool]) -> None:
        self.method = method
        self.check = check
        functools.update_wrapper(self, method)  # type: ignore[arg-type]

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self.method  # the plain function, for documentation tools
        if not self.check(instance):
            raise AttributeError(
                f"This {type(instance).__name__!r} has no attribute {self.method.__name__!r}"
            )
        return MethodType(self.method, instance)


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

    # What the model is, in scikit-learn's terms; subclasses override. The names
    # are those scikit-learn < 1.6 read as attributes (``_estimator_type``).
    _estimator_type: str | None = None
    _binary_only = False  # a classifier that accepts exactly two classes
    _multi_output = False  # a regressor that accepts y of shape (n_samples, n_outputs)

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's description of this estimator (scikit-learn >= 1.6).

        Imports scikit-learn, so only scikit-learn's own machinery calls it
        (``sklearn.utils.get_tags``); handnet never does.
        """
        from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags

        kind = self._estimator_type
        tags = Tags(
            estimator_type=kind,
            target_tags=TargetTags(
                required=kind is not None,
                multi_output=self._multi_output,
                single_output=True,
            ),
            # Dense, finite, numeric 2D features only (NaN/inf and sparse input are
            # rejected with a message); results are reproducible given random_state.
            input_tags=InputTags(two_d_array=True, sparse=False, allow_nan=False),
            non_deterministic=False,
            requires_fit=True,
        )
        if kind == "classifier":
            tags.classifier_tags = ClassifierTags(
                multi_class=not self._binary_only, multi_label=False
            )
        elif kind == "regressor":
            tags.regressor_tags = RegressorTags()
        return tags

    def _check_is_fitted(self) -> None:
        if not getattr(self, "_fitted", False):
            raise sklearn_compatible(NotFittedError)(
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
