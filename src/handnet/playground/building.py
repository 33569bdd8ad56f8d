"""The handnet estimator a playground's settings describe.

One place for the mapping from the page's choices to a handnet class and its keyword
arguments, shared by the live session (:mod:`.sessions`) and the script that
reproduces a run (:mod:`.script`), so that the two build the very same model.
"""

from __future__ import annotations

from typing import Any

from ..models import LogisticRegression, MLPClassifier, MLPRegressor, SoftmaxRegression
from .settings import Settings


def model_spec(settings: Settings) -> tuple[type, dict[str, Any]]:
    """The handnet estimator class for ``settings`` and its keyword arguments."""
    kwargs: dict[str, Any] = {}
    if settings.task == "regression":
        cls: type = MLPRegressor
    elif settings.hidden:
        cls = MLPClassifier
    else:
        cls = SoftmaxRegression if settings.output == "softmax" else LogisticRegression
    if cls in (MLPClassifier, MLPRegressor):
        kwargs.update(hidden_layer_sizes=settings.hidden, activation=settings.activation,
                      dropout=settings.dropout if settings.hidden else 0.0)
    kwargs.update(
        optimizer=settings.optimizer, learning_rate=settings.learning_rate,
        batch_size=None if settings.batch_size == 0 else settings.batch_size,
        alpha=settings.l2, tol=None, shuffle=False, random_state=settings.seed,
    )
    return cls, kwargs


def build_model(settings: Settings, optimizer: Any = None) -> Any:
    """The handnet estimator for ``settings`` (``optimizer`` overrides the named one)."""
    cls, kwargs = model_spec(settings)
    if optimizer is not None:
        kwargs["optimizer"] = optimizer
    return cls(**kwargs)
