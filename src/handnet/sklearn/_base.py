"""What the drop-in classifier and regressor share: the network, the fit, pickling."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import validate_data

from ..nn.layers import Activation
from ..nn.network import Sequential
from ._network import build_network, dense_layers, initial_network
from ._params import (
    _HIDDEN_ACTIVATIONS,
    _STOCHASTIC_SOLVERS,
    Array,
    _check_sample_weight,
    _dense,
    _output_loss,
)
from ._solvers import _Solvers

_NONFINITE_MESSAGE = (
    "Solver produced non-finite parameter weights. The input data may contain large"
    " values and need to be preprocessed."
)


class _BaseMultilayerPerceptron(_Solvers, BaseEstimator):
    """What the classifier and the regressor share: validation, the network, the fit loops.

    The hyperparameters and their checks come from
    :class:`~handnet.sklearn._params._Hyperparameters`, the fit loops from
    :class:`~handnet.sklearn._solvers._Solvers`.
    """

    # Fitted state.
    coefs_: list[Array]
    intercepts_: list[Array]
    n_layers_: int

    # --- the network ---------------------------------------------------------------------

    def _network_from_coefs(self) -> Sequential:
        """The handnet network holding ``coefs_`` and ``intercepts_``.

        ``coefs_`` and ``intercepts_`` are the truth (a user may replace them, as
        scikit-learn's tests do): the network is rebuilt when their shapes, their
        dtype or the activation changed, their values are copied in when they are
        not already the network's own arrays, and they are then rebound to views
        of the network's flat parameter vector, which the optimizers update in place.
        """
        coefs = [np.asarray(c) for c in self.coefs_]
        intercepts = [np.asarray(b) for b in self.intercepts_]
        dtype = coefs[0].dtype if coefs[0].dtype in (np.float32, np.float64) else np.float64
        shapes = [tuple(c.shape) for c in coefs]
        if any(len(shape) != 2 for shape in shapes) or len(intercepts) != len(coefs):
            raise ValueError("coefs_ must be 2-D arrays and match intercepts_ in number")
        network = self.__dict__.get("_network")
        dense = [] if network is None else dense_layers(network)
        hidden = _HIDDEN_ACTIVATIONS[self.activation]
        if (
            network is None
            or network.dtype != dtype
            or [(d.n_inputs, d.n_outputs) for d in dense] != shapes
            or any(
                isinstance(layer, Activation) and layer.name != hidden
                for layer in network.layers
            )
            or (hidden is not None and len(network.layers) != 2 * len(shapes) - 1)
        ):
            network = build_network(shapes, self.activation, dtype)
            dense = dense_layers(network)
            self._network = network
        for layer, weights, bias in zip(dense, coefs, intercepts, strict=True):
            if bias.shape != layer.bias.shape:
                raise ValueError(
                    f"intercepts_ of shape {bias.shape} do not match coefs_ with "
                    f"{layer.n_outputs} columns"
                )
            if layer.weights is not weights:
                layer.weights[...] = weights
            if layer.bias is not bias:
                layer.bias[...] = bias
        self.coefs_ = [layer.weights for layer in dense]
        self.intercepts_ = [layer.bias for layer in dense]
        return network

    def _initialize(self, y: NDArray[Any], layer_units: list[int], dtype: Any) -> None:
        """First fit: the fitted attributes, and weights drawn as scikit-learn draws them."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()
        network = initial_network(layer_units, self.activation, self._random_state, dtype)
        self._network = network
        self.coefs_ = [layer.weights for layer in dense_layers(network)]
        self.intercepts_ = [layer.bias for layer in dense_layers(network)]
        self._best_parameters = network.flat_parameters.copy()
        self.__dict__.pop("_optimizer", None)
        if self.solver in _STOCHASTIC_SOLVERS:
            self._initialize_stochastic_attributes()

    def _output_activation(self) -> str:
        raise NotImplementedError

    def _validate_input(
        self, X: Any, y: Any, incremental: bool, reset: bool
    ) -> tuple[Any, NDArray[Any]]:
        raise NotImplementedError

    def _predict(self, X: Any, check_input: bool = True) -> NDArray[Any]:
        raise NotImplementedError

    def _output(self, X: Any, check_input: bool = True) -> Array:
        """The network's output after the output activation (probabilities or values)."""
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        network = self._network_from_coefs()
        output: Array = _output_loss(self.out_activation_).link(network.forward(_dense(X)))
        return output

    # --- fitting -------------------------------------------------------------------------

    def _fit(
        self, X: Any, y: Any, sample_weight: Any = None, incremental: bool = False
    ) -> _BaseMultilayerPerceptron:
        self._check_params()
        hidden_sizes = self._hidden_sizes()
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        n_samples, n_features = X.shape
        sample_weight = _check_sample_weight(sample_weight, n_samples, X.dtype)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        self.n_outputs_ = y.shape[1]
        layer_units = [n_features, *hidden_sizes, self.n_outputs_]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(y, layer_units, X.dtype)
        network = self._network_from_coefs()
        expected = list(itertools.pairwise(layer_units))
        if [c.shape for c in self.coefs_] != expected:
            raise ValueError(
                f"The network's layer shapes {[c.shape for c in self.coefs_]} do not match "
                f"hidden_layer_sizes={self.hidden_layer_sizes!r} on this data "
                f"({expected}); fit with warm_start=False to start a new network."
            )
        if sp.issparse(X):
            X = X.tocsr()
        if X.dtype != network.dtype:
            X = X.astype(network.dtype)
        if self.solver in _STOCHASTIC_SOLVERS:
            self._fit_stochastic(network, X, y, sample_weight, incremental)
        else:
            self._fit_lbfgs(network, _dense(X), y.astype(network.dtype), sample_weight)
        if not np.isfinite(network.flat_parameters).all():
            raise ValueError(_NONFINITE_MESSAGE)
        return self

    def _score_with_function(
        self,
        X: Any,
        y: Any,
        sample_weight: Array | None,
        score_function: Callable[..., float],
    ) -> float:
        """A score without input validation (NaN when the predictions are not finite)."""
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return float(score_function(y, y_pred, sample_weight=sample_weight))

    # --- scikit-learn's API --------------------------------------------------------------

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> Any:
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : ndarray or sparse matrix of shape (n_samples, n_features)
            The input data.
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The target values (class labels in classification, real numbers in
            regression).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : object
            The trained model.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _check_solver(self) -> bool:
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic"
                f" optimizers. {self.solver} is not stochastic."
            )
        return True

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the network object: ``coefs_`` and ``intercepts_`` rebuild it.

        The network holds forward caches (the last batch) and work buffers;
        leaving it out keeps training data out of the pickle, and the copy
        rebuilds a network whose layers are views of its flat vector again.
        """
        state = dict(super().__getstate__())
        state.pop("_network", None)
        if "coefs_" in state:
            state["coefs_"] = [np.array(c) for c in state["coefs_"]]
            state["intercepts_"] = [np.array(b) for b in state["intercepts_"]]
        return state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
