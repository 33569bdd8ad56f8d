"""Regressors' targets: real values, identity output, half squared error, R² score."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..base import available_if, r2_score
from ..data.streaming import TargetEncoder
from ..data.validation import check_score_inputs, check_target
from ..nn.losses import Loss, MeanSquaredError
from .hyperparameters import partial_fit_available
from .network_estimator import _NetworkEstimator

Array = NDArray[np.floating]


class _RegressorMixin(_NetworkEstimator):
    """Real-valued targets, identity output, half squared error, R² score."""

    _estimator_type = "regressor"
    _multi_output = True
    _y_ndim: int
    n_outputs_: int

    def _encode_targets(self, y: Any, n_samples: int, dtype: Any, reset: bool) -> Array:
        targets = check_target(y, n_samples, numeric=True, allow_2d=True)
        if reset:
            self._y_ndim = targets.ndim
            self.n_outputs_ = 1 if targets.ndim == 1 else targets.shape[1]
        Y = targets.astype(dtype, copy=False).reshape(n_samples, -1)
        if Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} outputs, but the model has {self.n_outputs_}")
        return Y

    def _loss(self) -> Loss:
        return MeanSquaredError()

    def _stream_encoder(self, y: Any, dtype: Any, reset: bool) -> TargetEncoder:
        """The number of outputs (from ``y``'s shape) and the block encoder for streamed data."""
        ndim = len(y.shape)
        if ndim not in (1, 2):
            raise ValueError(f"y must be 1D or 2D (n_samples, n_outputs), got shape {y.shape}")
        n_outputs = 1 if ndim == 1 else int(y.shape[1])
        if reset:
            self._y_ndim = ndim
            self.n_outputs_ = n_outputs
        if n_outputs != self.n_outputs_:
            raise ValueError(f"y has {n_outputs} outputs, but the model has {self.n_outputs_}")
        return TargetEncoder("values", np.dtype(dtype), self.n_outputs_)

    def _n_outputs(self) -> int:
        return self.n_outputs_

    def predict(self, X: Any) -> Array:
        """Predicted values: shape (n_samples,) or (n_samples, n_outputs) like ``y`` at fit."""
        outputs = self._forward(X)
        return outputs.ravel() if self._y_ndim == 1 else outputs

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Coefficient of determination R² on ``X``, ``y``."""
        predictions = self.predict(X)
        targets, weights = check_score_inputs(y, len(predictions), sample_weight, allow_2d=True)
        return r2_score(targets, predictions, weights)

    def _score_outputs(self, outputs: Array, y: Any, sample_weight: Array | None) -> float:
        return r2_score(np.asarray(y), outputs, sample_weight)

    @available_if(partial_fit_available)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> _RegressorMixin:
        """One epoch over ``X``, ``y``, continuing from the current state.

        Only with a stochastic optimizer and ``early_stopping=False``: otherwise the
        model has no ``partial_fit`` attribute.

        Returns
        -------
        self
        """
        self._fit(X, y, sample_weight, None, (), incremental=True)
        return self
