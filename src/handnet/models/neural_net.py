"""Estimators over a network of any layers: ``NeuralNetClassifier`` and ``NeuralNetRegressor``.

The MLPs build their layers from ``hidden_layer_sizes``; these take the layers
themselves, in the order they apply, as PyTorch's ``nn.Sequential`` does::

    NeuralNetClassifier(
        layers=[Conv2D(1, 8, 3), Activation("relu"), MaxPool2D(2), Flatten(),
                Dense(None, None)],
        input_shape=(1, 8, 8),
    )

The layers are a *specification*: ``fit`` builds a fresh copy of them
(:func:`~handnet.nn.network.build_network`), reading every size written as
``None`` from the layer below (the last ``Dense(None, None)`` takes its width
from the targets) and drawing the parameters from ``random_state``. The list
given stays untouched, so ``clone``, ``get_params`` and a second ``fit`` see
what the user wrote.

Images come as ``(n_samples, channels, height, width)`` arrays, or as flat rows
with ``input_shape`` saying how to view them. Either way the model works on
flat rows internally (batches, early stopping's split, out-of-core blocks and
model files stay 2-D) and its network starts with a
:class:`~handnet.nn.layers.Reshape` that views each row as an image, for free.

Everything else (optimizers, schedules, early stopping, class weights,
checkpoints, save and load) is the machinery the MLPs use.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..base import ESTIMATORS
from ..data.streaming import is_out_of_core
from ..nn.layers import Activation, Dense, Flatten, Layer, Reshape, Shape, iter_layers
from ..nn.network import Sequential, build_network
from ..optim.optimizers import Optimizer
from ..optim.schedules import Schedule
from .classifier import _ClassifierMixin
from .network_estimator import _NetworkEstimator
from .regressor import _RegressorMixin


def default_layers() -> list[Layer]:
    """The layers used when ``layers=None``: one hidden ReLU layer of 100 units."""
    return [Dense(None, 100, init="he"), Activation("relu"), Dense(None, None)]


def small_cnn(channels: Sequence[int] = (16, 32), hidden: int = 64) -> list[Layer]:
    """A small LeNet-style network for images: what ``--model cnn`` trains.

    For each entry of ``channels``: a 3x3 convolution with that many filters
    ("same" padding, so the image keeps its size), batch normalisation, ReLU and
    2x2 max-pooling (which halves the image); then ``Flatten -> Dense(hidden) ->
    ReLU -> Dense`` sized from the targets. On 8x8 digits: 8x8 -> 4x4 -> 2x2, 128
    values into the dense head. (The convolutions have no bias: the
    normalisation's shift takes its place.)
    """
    from ..nn.conv import Conv2D, MaxPool2D
    from ..nn.normalization import BatchNorm

    layers: list[Layer] = []
    for width in channels:
        layers += [
            Conv2D(None, width, 3, padding="same", use_bias=False),
            BatchNorm(),
            Activation("relu"),
            MaxPool2D(2),
        ]
    return [*layers, Flatten(), Dense(None, hidden, init="he"), Activation("relu"),
            Dense(None, None)]


class _NeuralNetMixin(_NetworkEstimator):
    """Builds the network from the ``layers`` hyperparameter, for rows or images."""

    layers: Sequence[Layer] | None
    input_shape: Sequence[int] | None

    def _layer_specs(self) -> list[Layer]:
        layers = default_layers() if self.layers is None else self.layers
        if isinstance(layers, Layer) or not isinstance(layers, (list, tuple)):
            raise TypeError(
                f"layers must be a list of handnet layers, got {type(layers).__name__}"
            )
        if not layers:
            raise ValueError("layers must hold at least one layer")
        for position, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(
                    f"layers[{position}] must be a handnet Layer (Dense, Conv2D, ...), got "
                    f"{type(layer).__name__}"
                )
        return list(layers)

    def _checked_input_shape(self) -> Shape | None:
        shape = self.input_shape
        if shape is None:
            return None
        try:
            sizes = tuple(shape)
        except TypeError:
            raise TypeError(
                f"input_shape must be a tuple of sizes such as (1, 28, 28), got {shape!r}"
            ) from None
        if not 1 <= len(sizes) <= 3 or not all(
            isinstance(size, (int, np.integer)) and not isinstance(size, bool) and size >= 1
            for size in sizes
        ):
            raise ValueError(
                f"input_shape must hold 1 to 3 integers >= 1, e.g. (1, 28, 28), got {shape!r}"
            )
        return tuple(int(size) for size in sizes)

    def _as_rows(self, X: Any, reset: bool) -> Any:
        """Images ``(n, c, h, w)`` as rows ``(n, c * h * w)``; other data as given.

        On a fresh fit the image shape is recorded (``input_shape_``); later
        calls must bring images of that shape (or rows of that many values).
        """
        if isinstance(X, (list, tuple)):  # nested lists of images: as an array, if they are one
            try:
                as_array = np.asarray(X)
            except ValueError:  # ragged: check_features says what is wrong
                as_array = None
            if as_array is not None and as_array.ndim > 2:
                X = as_array
        if not (hasattr(X, "shape") and hasattr(X, "reshape") and len(X.shape) > 2):
            if reset:
                self._sample_shape = self._checked_input_shape()
            return X
        shape = tuple(int(size) for size in X.shape[1:])
        if len(shape) > 3:
            raise ValueError(
                f"X holds samples of shape {shape}: pass images as (n_samples, channels, "
                "height, width), or flat rows (n_samples, n_features) with input_shape"
            )
        if reset:
            declared = self._checked_input_shape()
            if declared is not None and declared != shape:
                if _without_ones(declared) != _without_ones(shape):
                    raise ValueError(
                        f"X holds samples of shape {shape}, but input_shape={declared}; pass "
                        "input_shape=None to take the shape from X"
                    )
                shape = declared  # the same values, e.g. (8, 8) images read as (1, 8, 8)
            self._sample_shape = shape
        else:
            self._check_is_fitted_or_fitting()
            expected = getattr(self, "_sample_shape", None) or (int(self.n_features_in_),)
            if shape != expected and _without_ones(shape) != _without_ones(expected):
                raise ValueError(
                    f"X holds samples of shape {shape}, but {type(self).__name__} was fitted "
                    f"on samples of shape {expected}"
                )
        return np.asarray(X).reshape(X.shape[0], math.prod(shape))

    def _check_is_fitted_or_fitting(self) -> None:
        # Validation rows are checked during the first fit, before it has finished.
        if getattr(self, "_sample_shape", None) is None:
            self._check_is_fitted()

    def _training_threads(self) -> contextlib.AbstractContextManager[Any]:
        """Convolution and pooling split each batch over the cores, BLAS on one thread.

        Their per-sample products are small: two BLAS threads beside the layers'
        own would oversubscribe the cores (see :func:`handnet.nn.conv.threads_over_samples`).
        """
        from ..nn.conv import Conv2D, _Pool2D, threads_over_samples

        if any(isinstance(layer, (Conv2D, _Pool2D)) for layer in iter_layers(self.network_.layers)):
            return threads_over_samples()
        return contextlib.nullcontext()

    def _record_features(self, X: Any, n_features: int) -> None:
        super()._record_features(X, n_features)
        if is_out_of_core(X):
            # Rows read block by block never pass through _as_rows: their image
            # shape is input_shape's (or they are plain rows).
            self._sample_shape = self._checked_input_shape()

    @property
    def input_shape_(self) -> Shape:
        """The per-sample shape of the inputs the network takes, e.g. ``(1, 28, 28)``."""
        self._check_is_fitted()
        first = self.network_.layers[0]
        if isinstance(first, Reshape):
            return first.shape
        return (int(self.n_features_in_),)

    def _input_layers(self, n_features: int) -> list[Layer]:
        shape = getattr(self, "_sample_shape", None)
        if shape is None or len(shape) == 1:
            if shape is not None and shape != (n_features,):
                raise ValueError(
                    f"input_shape={shape} does not match the {n_features} features of X"
                )
            return []
        if math.prod(shape) != n_features:
            raise ValueError(
                f"input_shape={shape} holds {math.prod(shape)} values per sample, but X has "
                f"{n_features} features per row"
            )
        return [Reshape(shape)]

    def _validate_hyperparameters(self, n_samples: int) -> None:
        super()._validate_hyperparameters(n_samples)
        self._layer_specs()
        self._checked_input_shape()

    def _build_network(self, n_features: int, n_outputs: int, dtype: np.dtype[Any]) -> Sequential:
        # The Reshape of flat rows into images is built apart, so that an error in the
        # user's layers names them by their place in ``layers``, not one further on.
        inputs = self._input_layers(n_features)
        shape: Shape = (n_features,)
        for layer in inputs:
            shape = layer.output_shape(shape)
        try:
            network = build_network(
                self._layer_specs(), shape, self._rng, dtype, n_outputs=n_outputs
            )
        except ValueError as error:
            message = str(error)
            if (len(shape) == 2 and message.startswith("layers[0] ")
                    and "(channels, height, width)" in message):
                # One-channel images given as (n, height, width) to a layer that takes
                # images: say how to add the channel axis.
                raise ValueError(
                    f"{error}. X holds images of shape {shape} with no channel axis: pass "
                    f"X[:, None] (shape (n_samples, 1, {shape[0]}, {shape[1]})) or "
                    f"input_shape=(1, {shape[0]}, {shape[1]})"
                ) from None
            raise
        if not inputs:
            return network
        reshape = build_network(inputs, (n_features,), self._rng, dtype)
        return Sequential([*reshape.layers, *network.layers])

    def _forward_checked(self, X_checked: Any) -> Any:
        """The outputs, computed a block of rows at a time.

        A convolutional layer's outputs are many times the size of its inputs
        (60,000 MNIST images through 8 filters: 3 GiB in float64), so predicting
        on every row at once could exhaust memory where training, a batch at a
        time, did not.
        """
        n_samples = X_checked.shape[0]
        rows = prediction_block_rows(self.network_, X_checked.shape[1], X_checked.dtype)
        if n_samples <= rows:
            return super()._forward_checked(X_checked)
        blocks = [
            super(_NeuralNetMixin, self)._forward_checked(X_checked[start : start + rows])
            for start in range(0, n_samples, rows)
        ]
        return np.concatenate(blocks)


def _without_ones(shape: Shape) -> Shape:
    """``shape`` without its axes of size 1: ``(1, 8, 8)`` and ``(8, 8)`` hold the same
    values in the same order."""
    return tuple(size for size in shape if size != 1)


#: The most bytes one layer's outputs may take while predicting (see ``_forward_checked``).
PREDICTION_BLOCK_BYTES = 64 << 20


def prediction_block_rows(network: Sequential, n_features: int, dtype: Any) -> int:
    """How many rows to push through ``network`` at once so no layer's output passes
    :data:`PREDICTION_BLOCK_BYTES` (at least one row)."""
    shape: Shape = (n_features,)
    widest = n_features
    for layer in network.layers:
        shape = layer.output_shape(shape)
        widest = max(widest, math.prod(shape))
    return max(1, PREDICTION_BLOCK_BYTES // (widest * np.dtype(dtype).itemsize))


_SHARED_PARAMETERS = """
    Parameters
    ----------
    layers : list of Layer, optional
        The network, input to output (copied and built at fit; sizes written as
        ``None`` are read from the layer below, and a last ``Dense(None, None)``
        is sized from the targets). Default: ``Dense(None, 100) -> ReLU ->
        Dense(None, None)``.
    input_shape : tuple of int, optional
        The shape of one sample, e.g. ``(1, 28, 28)``, when ``X`` holds flat rows
        of images. Not needed when ``X`` is ``(n_samples, *shape)``.
    optimizer, learning_rate, batch_size, max_iter, alpha, penalty, schedule, tol,
    n_iter_no_change, early_stopping, validation_fraction, clip_norm, shuffle,
    random_state, warm_start, verbose :
        As for :class:`~handnet.models.MLPClassifier`.
"""


class NeuralNetClassifier(_NeuralNetMixin, _ClassifierMixin):
    __doc__ = (
        """Classifier over a network of any layers (dense, convolutional, normalisation).

    The last layer gives the logits: one for two classes (sigmoid), one per
    class otherwise (softmax); ``Dense(None, None)`` is sized to match.
"""
        + _SHARED_PARAMETERS
        + """    class_weight : dict, "balanced" or None

    Examples
    --------
    >>> from handnet import NeuralNetClassifier, Dense, Activation
    >>> X = np.random.default_rng(0).normal(size=(40, 3)); y = X[:, 0] > 0
    >>> model = NeuralNetClassifier([Dense(None, 8), Activation("tanh"), Dense(None, None)],
    ...                             max_iter=50, random_state=0).fit(X, y)
    >>> model.score(X, y) > 0.9
    True
    """
    )

    def __init__(
        self,
        layers: Sequence[Layer] | None = None,
        input_shape: Sequence[int] | None = None,
        optimizer: str | Optimizer = "adam",
        learning_rate: float = 1e-3,
        batch_size: int | str | None = "auto",
        max_iter: int = 200,
        alpha: float = 1e-4,
        penalty: str | None = "l2",
        schedule: str | Schedule = "constant",
        tol: float | None = 1e-4,
        n_iter_no_change: int = 10,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        clip_norm: float | None = None,
        class_weight: dict[Any, float] | str | None = None,
        shuffle: bool = True,
        random_state: int | np.random.Generator | None = None,
        warm_start: bool = False,
        verbose: bool = False,
    ) -> None:
        self.layers = layers
        self.input_shape = input_shape
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.alpha = alpha
        self.penalty = penalty
        self.schedule = schedule
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.clip_norm = clip_norm
        self.class_weight = class_weight
        self.shuffle = shuffle
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose


class NeuralNetRegressor(_NeuralNetMixin, _RegressorMixin):
    __doc__ = (
        """Regressor over a network of any layers: identity output, half squared error.

    ``y`` of shape ``(n_samples,)`` or ``(n_samples, n_outputs)``; a last
    ``Dense(None, None)`` gets one unit per output.
"""
        + _SHARED_PARAMETERS
    )

    def __init__(
        self,
        layers: Sequence[Layer] | None = None,
        input_shape: Sequence[int] | None = None,
        optimizer: str | Optimizer = "adam",
        learning_rate: float = 1e-3,
        batch_size: int | str | None = "auto",
        max_iter: int = 200,
        alpha: float = 1e-4,
        penalty: str | None = "l2",
        schedule: str | Schedule = "constant",
        tol: float | None = 1e-4,
        n_iter_no_change: int = 10,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        clip_norm: float | None = None,
        shuffle: bool = True,
        random_state: int | np.random.Generator | None = None,
        warm_start: bool = False,
        verbose: bool = False,
    ) -> None:
        self.layers = layers
        self.input_shape = input_shape
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.alpha = alpha
        self.penalty = penalty
        self.schedule = schedule
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.clip_norm = clip_norm
        self.shuffle = shuffle
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose


ESTIMATORS.register("NeuralNetClassifier", NeuralNetClassifier)
ESTIMATORS.register("NeuralNetRegressor", NeuralNetRegressor)
