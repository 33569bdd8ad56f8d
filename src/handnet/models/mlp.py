"""The multi-layer perceptrons: ``MLPClassifier`` and ``MLPRegressor``."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..nn.layers import Dense
from ..optim.optimizers import LBFGS, Optimizer
from ..optim.schedules import Schedule
from .classifier import _ClassifierMixin
from .network_estimator import _NetworkEstimator
from .regressor import _RegressorMixin

Array = NDArray[np.floating]


class _MLPMixin(_NetworkEstimator):
    hidden_layer_sizes: Sequence[int] | int
    activation: str
    dropout: float
    _default_init = "auto"

    def _hidden_layers(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral):
            return (int(sizes),)
        try:
            return tuple(sizes)  # type: ignore[arg-type]  # checked at run time here
        except TypeError:
            raise TypeError(
                f"hidden_layer_sizes must be an int or a sequence of ints, got {sizes!r}"
            ) from None

    def _hidden_activation(self) -> str:
        return "sigmoid" if self.activation == "logistic" else self.activation

    def _dropout_rate(self) -> float:
        return self.dropout

    @property
    def coefs_(self) -> list[Array]:
        """The weight matrix of each dense layer, input to output."""
        self._check_is_fitted()
        return [layer.weights for layer in self.network_.layers if isinstance(layer, Dense)]

    @property
    def intercepts_(self) -> list[Array]:
        """The bias vector of each dense layer, input to output."""
        self._check_is_fitted()
        return [layer.bias for layer in self.network_.layers if isinstance(layer, Dense)]


class MLPClassifier(_MLPMixin, _ClassifierMixin):
    """Multi-layer perceptron classifier trained by backpropagation.

    Hidden layers ``Dense -> activation [-> Dropout]``; the output is one sigmoid
    logit for two classes, softmax logits for more.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (100,)
    activation : {"relu", "tanh", "sigmoid", "leaky_relu", "identity"}, default "relu"
    optimizer : str or Optimizer, default "adam"
    learning_rate : float, default 1e-3
    batch_size : int, "auto" or None, default "auto"
        ``"auto"`` is ``min(200, n_samples)``.
    max_iter : int, default 200
    alpha : float, default 1e-4
    dropout : float, default 0.0
        Inverted-dropout rate after each hidden activation (training only).
    init : str, default "auto"
        ``"he"`` for ReLU-like activations, ``"xavier"`` otherwise.

    The other parameters are those of :class:`LogisticRegression`.
    """

    __module__ = "handnet.models"  # where it is imported from (see handnet.models)

    def __init__(
        self,
        hidden_layer_sizes: Sequence[int] | int = (100,),
        activation: str = "relu",
        optimizer: str | Optimizer | LBFGS = "adam",
        learning_rate: float = 1e-3,
        batch_size: int | str | None = "auto",
        max_iter: int = 200,
        alpha: float = 1e-4,
        dropout: float = 0.0,
        schedule: str | Schedule = "constant",
        tol: float | None = 1e-4,
        n_iter_no_change: int = 10,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        clip_norm: float | None = None,
        class_weight: dict[Any, float] | str | None = None,
        init: str = "auto",
        shuffle: bool = True,
        random_state: int | np.random.Generator | None = None,
        warm_start: bool = False,
        verbose: bool = False,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.alpha = alpha
        self.dropout = dropout
        self.schedule = schedule
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.clip_norm = clip_norm
        self.class_weight = class_weight
        self.init = init
        self.shuffle = shuffle
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose


class MLPRegressor(_MLPMixin, _RegressorMixin):
    """Multi-layer perceptron regressor: identity output, half squared error.

    Single or multiple outputs: ``y`` of shape (n_samples,) or (n_samples, n_outputs).
    Parameters are those of :class:`MLPClassifier` (without ``class_weight``).
    """

    __module__ = "handnet.models"  # where it is imported from (see handnet.models)

    def __init__(
        self,
        hidden_layer_sizes: Sequence[int] | int = (100,),
        activation: str = "relu",
        optimizer: str | Optimizer | LBFGS = "adam",
        learning_rate: float = 1e-3,
        batch_size: int | str | None = "auto",
        max_iter: int = 200,
        alpha: float = 1e-4,
        dropout: float = 0.0,
        schedule: str | Schedule = "constant",
        tol: float | None = 1e-4,
        n_iter_no_change: int = 10,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        clip_norm: float | None = None,
        init: str = "auto",
        shuffle: bool = True,
        random_state: int | np.random.Generator | None = None,
        warm_start: bool = False,
        verbose: bool = False,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.alpha = alpha
        self.dropout = dropout
        self.schedule = schedule
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.clip_norm = clip_norm
        self.init = init
        self.shuffle = shuffle
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
