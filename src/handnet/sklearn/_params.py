"""scikit-learn's MLP hyperparameters: their names, their checks, their handnet translations."""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from sklearn.utils import check_array

from ..nn import losses as _losses

Array = NDArray[np.floating]

_STOCHASTIC_SOLVERS = ("sgd", "adam")

#: scikit-learn's hidden activations by their names in :mod:`handnet.nn.activations`
#: (``identity`` needs no layer).
_HIDDEN_ACTIVATIONS = {"identity": None, "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}


def _output_loss(out_activation: str) -> _losses.Loss:
    """The handnet loss (with its output link) for scikit-learn's output activation."""
    if out_activation == "logistic":
        return _losses.BinaryCrossEntropy()
    if out_activation == "softmax":
        return _losses.SoftmaxCrossEntropy()
    if out_activation == "identity":
        return _losses.MeanSquaredError()
    if out_activation == "exp":
        poisson = getattr(_losses, "PoissonDeviance", None)
        if poisson is None:  # pragma: no cover - until the loss is in handnet.nn.losses
            raise NotImplementedError("loss='poisson' needs handnet.nn.losses.PoissonDeviance")
        loss: _losses.Loss = poisson()
        return loss
    raise ValueError(f"unknown output activation {out_activation!r}")


class InvalidParameterError(ValueError, TypeError):
    """A constructor argument of the wrong type or out of range (as scikit-learn's)."""

    __module__ = "handnet.sklearn"  # where it is imported from (see handnet.sklearn)


def _is_real(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, (bool, np.bool_))


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, (bool, np.bool_))


def _check_sample_weight(sample_weight: Any, n_samples: int, dtype: Any) -> Array | None:
    """Sample weights as a 1-D float array of length ``n_samples`` (a scalar repeats)."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, Real):
        weights: Array = np.full(n_samples, sample_weight, dtype=dtype)
    else:
        weights = check_array(
            sample_weight, ensure_2d=False, dtype=dtype, order="C", input_name="sample_weight"
        )
        if weights.ndim != 1:
            raise ValueError("Sample weights must be 1D array or scalar")
        if weights.shape != (n_samples,):
            raise ValueError(f"sample_weight.shape == {weights.shape}, expected {(n_samples,)}!")
    if not np.any(weights):
        raise ValueError("Sample weights must contain at least one non-zero number.")
    return weights


def _dense(X: Any) -> Any:
    """A sparse batch as a dense array (the first layer multiplies dense arrays)."""
    return X.toarray() if sp.issparse(X) else X


class _Hyperparameters:
    """scikit-learn's constructor arguments of the MLPs and their range checks."""

    # Set by the estimators' __init__ (scikit-learn's exact signatures).
    hidden_layer_sizes: Any
    activation: str
    solver: str
    alpha: float
    batch_size: Any
    learning_rate: str
    learning_rate_init: float
    power_t: float
    max_iter: int
    loss: str
    shuffle: bool
    random_state: Any
    tol: float
    verbose: Any
    warm_start: bool
    momentum: float
    nesterovs_momentum: bool
    early_stopping: bool
    validation_fraction: float
    beta_1: float
    beta_2: float
    epsilon: float
    n_iter_no_change: Any
    max_fun: int

    def _check_params(self) -> None:
        """Refuse a hyperparameter outside the range scikit-learn accepts."""
        name = type(self).__name__

        def refuse(param: str, expected: str) -> None:
            raise InvalidParameterError(
                f"The {param!r} parameter of {name} must be {expected}. "
                f"Got {getattr(self, param)!r} instead."
            )

        def real(param: str, low: float, high: float, closed: str) -> None:
            value = getattr(self, param)
            left = "[" if closed in ("left", "both") else "("
            right = "]" if closed in ("right", "both") else ")"
            above = value >= low if left == "[" else value > low
            if _is_real(value) and high == np.inf:
                below = True
            else:
                below = value <= high if right == "]" else value < high
            if not (_is_real(value) and above and below):
                refuse(param, f"a float in the range {left}{float(low)}, {float(high)}{right}")

        def integer(param: str, low: int) -> bool:
            value = getattr(self, param)
            return _is_int(value) and value >= low

        def options(param: str, choices: Iterable[str]) -> None:
            value = getattr(self, param)
            if not isinstance(value, str) or value not in choices:
                refuse(param, f"a str among {sorted(choices)}")

        def boolean(param: str) -> None:
            if not isinstance(getattr(self, param), (bool, np.bool_)):
                refuse(param, "an instance of 'bool'")

        sizes = self.hidden_layer_sizes
        if not (integer("hidden_layer_sizes", 1) or hasattr(sizes, "__iter__")):
            refuse("hidden_layer_sizes", "an array-like or an int in the range [1, inf)")
        options("activation", _HIDDEN_ACTIVATIONS)
        options("solver", ("lbfgs", "sgd", "adam"))
        real("alpha", 0.0, np.inf, "left")
        if self.batch_size != "auto" and not integer("batch_size", 1):
            refuse("batch_size", "a str among {'auto'} or an int in the range [1, inf)")
        options("learning_rate", ("constant", "invscaling", "adaptive"))
        real("learning_rate_init", 0.0, np.inf, "neither")
        real("power_t", 0.0, np.inf, "left")
        if not integer("max_iter", 1):
            refuse("max_iter", "an int in the range [1, inf)")
        boolean("shuffle")
        real("tol", 0.0, np.inf, "left")
        if not (_is_int(self.verbose) or isinstance(self.verbose, (bool, np.bool_))):
            refuse("verbose", "an int or a bool")
        boolean("warm_start")
        real("momentum", 0.0, 1.0, "both")
        boolean("nesterovs_momentum")
        boolean("early_stopping")
        real("validation_fraction", 0.0, 1.0, "left")
        real("beta_1", 0.0, 1.0, "left")
        real("beta_2", 0.0, 1.0, "left")
        real("epsilon", 0.0, np.inf, "neither")
        if not (integer("n_iter_no_change", 1) or self.n_iter_no_change == np.inf):
            refuse("n_iter_no_change", "an int in the range [1, inf) or inf")
        if not integer("max_fun", 1):
            refuse("max_fun", "an int in the range [1, inf)")

    def _hidden_sizes(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        if np.any(np.array(sizes) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return [int(size) for size in sizes]
