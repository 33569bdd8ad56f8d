"""The multi-layer perceptrons: ``MLPClassifier`` and ``MLPRegressor``."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..nn.layers import Dense
from ..optim.optimizers import Optimizer
from ..optim.schedules import Schedule
from .classifier import _ClassifierMixin
from .docstrings import with_choices
from .network_estimator import _NetworkEstimator
from .regressor import _RegressorMixin

Array = NDArray[np.floating]

_MLP_PARAMETERS = """\
    hidden_layer_sizes : int or tuple of int, default (100,)
        The width of each hidden layer, input to output.
    activation : str, default "relu"
        The hidden layers' activation: {activations} (``"logistic"`` is
        ``"sigmoid"``, scikit-learn's name).
    optimizer : str or Optimizer, default "adam"
        {optimizers}, or an :class:`~handnet.optim.optimizers.Optimizer` object.
        ``"lbfgs"`` trains on the full batch and needs no learning rate.
    learning_rate : float, default 1e-3
        The initial step size (the schedule changes it per epoch).
    batch_size : int, "auto" or None, default "auto"
        Rows per step: ``"auto"`` is ``min(200, n_samples)``, ``None`` the full
        batch, ``1`` per-example SGD.
    max_iter : int, default 200
        Epochs (full passes over the data), or L-BFGS iterations.
    alpha : float, default 1e-4
        The penalty's strength: with ``penalty="l2"``, ``alpha / 2 * sum(W**2)``
        over the weights (never the biases) is added to the *mean* data loss.
    penalty : str or None, default "l2"
        The term on the weights: {penalties}; ``None`` for none.
    dropout : float, default 0.0
        Inverted-dropout rate after each hidden activation (training only).
    schedule : str or Schedule, default "constant"
        The learning rate per epoch: {schedules}, or a
        :class:`~handnet.optim.schedules.Schedule` object."""

_COMMON_PARAMETERS = """\
    tol : float or None, default 1e-4
        Stop when the loss (the validation loss, with validation data) has not
        improved by ``tol`` for ``n_iter_no_change`` epochs; ``None`` runs all
        ``max_iter`` epochs.
    n_iter_no_change : int, default 10
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the data, stop when its loss stops
        improving, and keep the epoch with the lowest validation loss.
    validation_fraction : float, default 0.1
    clip_norm : float or None, default None
        Rescale the gradient to at most this norm before each step.
    init : str, default "auto"
        Initial weights: {initializers}; ``"auto"`` is ``"he"`` for ReLU-like
        activations, ``"xavier"`` otherwise.
    shuffle : bool, default True
        Visit the rows in a new random order every epoch.
    random_state : int, Generator or None, default None
        Seeds the initial weights, the shuffling, dropout and the validation split.
    warm_start : bool, default False
        ``fit`` continues from the current weights instead of starting afresh.
    verbose : bool, default False
        Print a line per epoch."""


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
    __doc__ = with_choices(
        """Multi-layer perceptron classifier trained by backpropagation.

    Hidden layers ``Dense -> activation [-> Dropout]``; the output is one sigmoid
    logit for two classes, softmax logits for more, trained on the mean
    cross-entropy (computed from the logits) plus the L2 term.

    Parameters
    ----------
{parameters}
    class_weight : None, "balanced" or dict, default None
        Weights of the classes in the loss: ``"balanced"`` weighs each class
        inversely to its frequency; a dict maps a class to its weight.
{common}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.
    coefs_ : list of ndarray
        The weight matrix of each dense layer, input to output.
    intercepts_ : list of ndarray
        The bias vector of each dense layer, input to output.
{fitted}

    Examples
    --------
    >>> from handnet.datasets import make_moons
    >>> from handnet.models import MLPClassifier
    >>> X, y = make_moons(200, noise=0.2, random_state=0)
    >>> model = MLPClassifier((16,), early_stopping=True, random_state=0).fit(X, y)
    >>> model.summary().n_parameters      # layers, shapes and counts: print(model.summary())
    65
    >>> sorted(model.history_.to_dict())  # one list per series, one entry per epoch
    ['data_loss', 'epoch', 'learning_rate', 'loss', 'time', 'validation_loss', 'validation_score']
    >>> model.best_epoch_ == model.history_.best_epoch  # the epoch early stopping kept
    True
    >>> figure = model.plot()  # losses, accuracy and learning rate per epoch (matplotlib)
    """.replace("{parameters}", _MLP_PARAMETERS).replace("{common}", _COMMON_PARAMETERS)
    )

    __module__ = "handnet.models"  # where it is imported from (see handnet.models)

    def __init__(
        self,
        hidden_layer_sizes: Sequence[int] | int = (100,),
        activation: str = "relu",
        optimizer: str | Optimizer = "adam",
        learning_rate: float = 1e-3,
        batch_size: int | str | None = "auto",
        max_iter: int = 200,
        alpha: float = 1e-4,
        penalty: str | None = "l2",
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
        self.penalty = penalty
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
    __doc__ = with_choices(
        """Multi-layer perceptron regressor: identity output, half squared error.

    Single or multiple outputs: ``y`` of shape (n_samples,) or (n_samples, n_outputs).

    Parameters
    ----------
{parameters}
{common}

    Attributes
    ----------
    n_outputs_ : int
        The number of targets.
    coefs_ : list of ndarray
        The weight matrix of each dense layer, input to output.
    intercepts_ : list of ndarray
        The bias vector of each dense layer, input to output.
{fitted}

    Examples
    --------
    >>> import numpy as np
    >>> from handnet.models import MLPRegressor
    >>> X = np.linspace(-2, 2, 200).reshape(-1, 1)
    >>> model = MLPRegressor((16,), activation="tanh", early_stopping=True,
    ...                      random_state=0).fit(X, np.sin(X).ravel())
    >>> model.history_.to_dict()["validation_score"][-1] > 0.5  # R² per epoch
    True
    """.replace("{parameters}", _MLP_PARAMETERS).replace("{common}", _COMMON_PARAMETERS)
    )

    __module__ = "handnet.models"  # where it is imported from (see handnet.models)

    def __init__(
        self,
        hidden_layer_sizes: Sequence[int] | int = (100,),
        activation: str = "relu",
        optimizer: str | Optimizer = "adam",
        learning_rate: float = 1e-3,
        batch_size: int | str | None = "auto",
        max_iter: int = 200,
        alpha: float = 1e-4,
        penalty: str | None = "l2",
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
        self.penalty = penalty
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
