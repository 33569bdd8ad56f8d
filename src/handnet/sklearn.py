"""scikit-learn's ``MLPClassifier`` and ``MLPRegressor``, computed by handnet.

A drop-in: code written for scikit-learn changes one import line::

    # from sklearn.neural_network import MLPClassifier, MLPRegressor
    from handnet.sklearn import MLPClassifier, MLPRegressor

and keeps its constructor arguments (same names, defaults and order), its fitted
attributes (``coefs_``, ``intercepts_``, ``loss_``, ``best_loss_``, ``loss_curve_``,
``validation_scores_``, ``best_validation_score_``, ``n_iter_``, ``t_``,
``n_layers_``, ``n_outputs_``, ``out_activation_``, ``classes_``,
``n_features_in_``, ``feature_names_in_``), its methods and its warnings and error
messages. What runs is handnet's: the network is a :class:`~handnet.network.Sequential`
of :class:`~handnet.layers.Dense` and :class:`~handnet.layers.Activation` layers,
the losses come from :mod:`handnet.losses` (computed from the logits), the L2 term
from :mod:`handnet.penalties`, the update rules from :mod:`handnet.optimizers`
(:class:`~handnet.optimizers.SklearnSGD`, :class:`~handnet.optimizers.SklearnAdam`,
:class:`~handnet.optimizers.LBFGS`), the initial weights from
:func:`handnet.initializers.sklearn_uniform`. scikit-learn supplies the API around
the math only: the estimator base classes, input validation, label binarisation,
the validation split and the random numbers.

scikit-learn's conventions, followed here (they differ from ``handnet.MLPClassifier``'s):

* ``alpha``: the objective is the mean loss of a batch plus
  :math:`\\frac{\\alpha}{2 n_b} \\sum W^2` (weights only), :math:`n_b` the batch's
  number of samples (or sum of sample weights).
* ``learning_rate="invscaling"``: at the end of each epoch the rate becomes
  ``learning_rate_init / (t_ + 1) ** power_t``, ``t_`` counting the *samples* seen.
  ``"adaptive"``: divided by 5 each time ``n_iter_no_change`` epochs in a row fail
  to improve by ``tol``; training stops once it is at most 1e-6.
* Initial weights *and biases* uniform in :math:`\\pm\\sqrt{6/(n_{in}+n_{out})}`
  (2 instead of 6 for the logistic activation), drawn from
  ``check_random_state(random_state)`` in scikit-learn's order: the same
  ``random_state`` gives the same initial network, the same shuffles and the same
  validation split as scikit-learn.

``docs/sklearn.md`` lists what still differs.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Iterable
from numbers import Integral, Real
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_array, check_random_state, gen_batches
from sklearn.utils import shuffle as shuffle_indices
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from . import losses as _losses
from .exceptions import ConvergenceWarning, sklearn_compatible
from .initializers import sklearn_uniform
from .layers import Activation, Dense, Layer
from .network import Sequential
from .optimizers import LBFGS, Optimizer, SklearnAdam, SklearnSGD
from .penalties import add_l2

__all__ = ["MLPClassifier", "MLPRegressor"]

Array = NDArray[np.floating]

_STOCHASTIC_SOLVERS = ("sgd", "adam")

#: scikit-learn's hidden activations by their names in :mod:`handnet.activations`
#: (``identity`` needs no layer).
_HIDDEN_ACTIVATIONS = {"identity": None, "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}

#: SciPy's L-BFGS-B stops when the relative decrease of the loss is below
#: ``factr * eps`` with ``factr = 1e7`` (its default ``ftol``); scikit-learn keeps it.
_LBFGS_FTOL = 1e7 * float(np.finfo(np.float64).eps)

_NONFINITE_MESSAGE = (
    "Solver produced non-finite parameter weights. The input data may contain large"
    " values and need to be preprocessed."
)


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
        if poisson is None:  # pragma: no cover - until the loss is in handnet.losses
            raise NotImplementedError("loss='poisson' needs handnet.losses.PoissonDeviance")
        loss: _losses.Loss = poisson()
        return loss
    raise ValueError(f"unknown output activation {out_activation!r}")


class InvalidParameterError(ValueError, TypeError):
    """A constructor argument of the wrong type or out of range (as scikit-learn's)."""


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


class _BaseMultilayerPerceptron(BaseEstimator):
    """What the classifier and the regressor share: validation, the network, the fit loops."""

    # Set by the subclasses' __init__ (scikit-learn's exact signatures).
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

    # Fitted state.
    coefs_: list[Array]
    intercepts_: list[Array]
    n_outputs_: int
    n_layers_: int
    out_activation_: str
    _network: Sequential
    _optimizer: Optimizer

    # --- hyperparameters -----------------------------------------------------------------

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

    # --- the network ---------------------------------------------------------------------

    def _build_network(self, shapes: list[tuple[int, int]], dtype: Any) -> Sequential:
        """Dense layers of the given weight shapes with the hidden activation between."""
        hidden = _HIDDEN_ACTIVATIONS[self.activation]
        layers: list[Layer] = []
        for position, (fan_in, fan_out) in enumerate(shapes):
            if position > 0 and hidden is not None:
                layers.append(Activation(hidden))
            layers.append(Dense(fan_in, fan_out, init="zeros", dtype=dtype))
        return Sequential(layers)

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
        dense = [] if network is None else self._dense_layers(network)
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
            network = self._build_network(shapes, dtype)
            dense = self._dense_layers(network)
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

    @staticmethod
    def _dense_layers(network: Sequential) -> list[Dense]:
        return [layer for layer in network.layers if isinstance(layer, Dense)]

    def _initialize(self, y: NDArray[Any], layer_units: list[int], dtype: Any) -> None:
        """First fit: the fitted attributes, and weights drawn as scikit-learn draws them."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()
        factor = 2.0 if self.activation == "logistic" else 6.0
        shapes = list(itertools.pairwise(layer_units))
        network = self._build_network(shapes, dtype)
        for layer in self._dense_layers(network):
            weights, bias = sklearn_uniform(
                layer.weights.shape[0], layer.weights.shape[1], self._random_state, dtype,
                factor=factor,
            )
            layer.weights[...] = weights
            layer.bias[...] = bias
        self._network = network
        self.coefs_ = [layer.weights for layer in self._dense_layers(network)]
        self.intercepts_ = [layer.bias for layer in self._dense_layers(network)]
        self._best_parameters = network.flat_parameters.copy()
        self.__dict__.pop("_optimizer", None)
        if self.solver in _STOCHASTIC_SOLVERS:
            self._initialize_stochastic_attributes()

    def _initialize_stochastic_attributes(self) -> None:
        self.loss_curve_: list[float] = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_: list[float] | None = []
            self.best_validation_score_: float | None = -np.inf
            self.best_loss_: float | None = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def _output_activation(self) -> str:
        raise NotImplementedError

    def _validate_input(
        self, X: Any, y: Any, incremental: bool, reset: bool
    ) -> tuple[Any, NDArray[Any]]:
        raise NotImplementedError

    def _score(self, X: Any, y: Any, sample_weight: Array | None = None) -> float:
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

    # --- the objective -------------------------------------------------------------------

    def _objective(
        self,
        network: Sequential,
        loss: _losses.Loss,
        X: Array,
        Y: Array,
        sample_weight: Array | None,
    ) -> float:
        r"""Loss of one batch, with the gradients left in ``network.flat_gradients``.

        .. math:: J = \frac{\sum_i s_i \ell_i}{\sum_i s_i}
                      + \frac{\alpha}{2 \sum_i s_i} \sum W^2

        (:math:`s_i = 1` without sample weights): scikit-learn's scaling of ``alpha``.
        """
        logits = network.forward(X, training=True)
        value, dlogits = loss(logits, Y, sample_weight)
        network.backward(dlogits)
        n = float(X.shape[0]) if sample_weight is None else float(np.sum(sample_weight))
        value += add_l2(network.weights, network.weight_gradients, self.alpha / n)
        return float(value)

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

    def _fit_lbfgs(
        self, network: Sequential, X: Array, Y: Array, sample_weight: Array | None
    ) -> None:
        """Full-batch L-BFGS (handnet's :class:`~handnet.optimizers.LBFGS`) on the objective."""
        loss = _output_loss(self.out_activation_)

        def objective(theta: Array) -> tuple[float, Array]:
            network.flat_parameters[...] = theta
            value = self._objective(network, loss, X, Y, sample_weight)
            return value, network.flat_gradients.copy()

        def report(iteration: int, value: float, theta: Array) -> bool:
            print(f"Iteration {iteration}, loss = {value:.8f}")
            return False

        # SciPy's L-BFGS-B settings, which scikit-learn uses: 10 pairs, Moré-Thuente's
        # c1 = 1e-3 and c2 = 0.9, at most 20 evaluations per line search, a first
        # step of 1 / |g|_2.
        solver = LBFGS(memory=10, c1=1e-3, c2=0.9, max_line_search=20, first_step="inverse_l2")
        theta, value, _, converged = solver.minimize(
            objective,
            network.flat_parameters.copy(),
            max_iter=self.max_iter,
            gtol=self.tol,
            ftol=_LBFGS_FTOL,
            callback=report if self.verbose else None,
            max_evaluations=self.max_fun,
        )
        network.flat_parameters[...] = theta
        self.n_iter_ = min(solver.iterations, self.max_iter)
        self.loss_ = float(value)
        if not converged:
            reason = {
                "max_iter": "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT",
                "max_evaluations": "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT",
            }.get(solver.stop_reason, solver.stop_reason)
            message = (
                f"lbfgs failed to converge after {self.n_iter_} iteration(s) (status=1):\n"
                f"{reason}\n"
            )
            if self.n_iter_ == self.max_iter:
                message += (
                    "\nIncrease the number of iterations to improve the convergence "
                    f"(max_iter={self.max_iter})."
                )
            message += (
                "\nYou might also want to scale the data as shown in:\n"
                "    https://scikit-learn.org/stable/modules/preprocessing.html"
            )
            warnings.warn(message, sklearn_compatible(ConvergenceWarning), stacklevel=3)

    def _make_optimizer(self) -> Optimizer:
        if self.solver == "sgd":
            return SklearnSGD(self.learning_rate_init, self.momentum, self.nesterovs_momentum)
        return SklearnAdam(self.learning_rate_init, self.beta_1, self.beta_2, self.epsilon)

    def _fit_stochastic(
        self,
        network: Sequential,
        X: Any,
        y: NDArray[Any],
        sample_weight: Array | None,
        incremental: bool,
    ) -> None:
        """Epochs of mini-batch steps with scikit-learn's stopping rules."""
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        if not hasattr(self, "loss_curve_"):  # e.g. warm start after solver="lbfgs"
            self._initialize_stochastic_attributes()
        early_stopping = self.early_stopping
        X_val: Any = None
        y_val: Any = None
        sample_weight_val: Array | None = None
        if early_stopping:
            # Stratified on the binarised labels, not for multilabel (scikit-learn's rule).
            stratify = y if is_classifier(self) and self.n_outputs_ == 1 else None
            arrays = [X, y] if sample_weight is None else [X, y, sample_weight]
            split = train_test_split(
                *arrays,
                random_state=self._random_state,
                test_size=self.validation_fraction,
                stratify=stratify,
            )
            X_train, X_val, y_train, y_val = split[:4]
            sample_weight_train = None if sample_weight is None else split[4]
            sample_weight_val = None if sample_weight is None else split[5]
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' "
                    "or the size of your dataset."
                )
            if is_classifier(self):
                y_val = self._label_binarizer.inverse_transform(y_val)
        else:
            X_train, y_train, sample_weight_train = X, y, sample_weight
        if not hasattr(self, "_best_parameters"):
            self._best_parameters = network.flat_parameters.copy()
        Y_train = np.asarray(y_train, dtype=network.dtype)
        loss = _output_loss(self.out_activation_)
        n_samples = X_train.shape[0]
        sample_idx = np.arange(n_samples, dtype=int)
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than "
                    "sample size. It is going to be clipped",
                    stacklevel=3,
                )
            batch_size = int(np.clip(self.batch_size, 1, n_samples))
        pairs = [(network.flat_parameters, network.flat_gradients)]
        try:
            self.n_iter_ = 0
            with network.reusing_buffers():
                for _ in range(self.max_iter):
                    if self.shuffle:
                        sample_idx = shuffle_indices(sample_idx, random_state=self._random_state)
                    accumulated_loss = 0.0
                    for batch_slice in gen_batches(n_samples, batch_size):
                        batch: Any = sample_idx[batch_slice] if self.shuffle else batch_slice
                        batch_loss = self._objective(
                            network,
                            loss,
                            _dense(X_train[batch]),
                            Y_train[batch],
                            None if sample_weight_train is None else sample_weight_train[batch],
                        )
                        accumulated_loss += batch_loss * (batch_slice.stop - batch_slice.start)
                        self._optimizer.step(pairs)
                    self.n_iter_ += 1
                    self.loss_ = accumulated_loss / n_samples
                    self.t_ += n_samples
                    self.loss_curve_.append(self.loss_)
                    if self.verbose:
                        print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
                    self._update_no_improvement_count(
                        early_stopping, X_val, y_val, sample_weight_val
                    )
                    if self.solver == "sgd" and self.learning_rate == "invscaling":
                        # Per sample: t_ counts the samples seen so far.
                        self._optimizer.learning_rate = float(self.learning_rate_init) / (
                            (self.t_ + 1) ** self.power_t
                        )
                    if self._no_improvement_count > self.n_iter_no_change:
                        what = "Validation score" if early_stopping else "Training loss"
                        message = (
                            f"{what} did not improve more than tol={self.tol:f} for "
                            f"{self.n_iter_no_change} consecutive epochs."
                        )
                        if self._trigger_stopping(message):
                            break
                        self._no_improvement_count = 0
                    if incremental:
                        break
                    if self.n_iter_ == self.max_iter:
                        warnings.warn(
                            f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                            "reached and the optimization hasn't converged yet.",
                            sklearn_compatible(ConvergenceWarning),
                            stacklevel=3,
                        )
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=3)
        if early_stopping:
            network.flat_parameters[...] = self._best_parameters

    def _trigger_stopping(self, message: str) -> bool:
        """Stop, or (``learning_rate="adaptive"``) divide the learning rate by 5 and go on."""
        if not (self.solver == "sgd" and self.learning_rate == "adaptive"):
            if self.verbose:
                print(message + " Stopping.")
            return True
        if self._optimizer.learning_rate <= 1e-6:
            if self.verbose:
                print(message + " Learning rate too small. Stopping.")
            return True
        self._optimizer.learning_rate /= 5.0
        if self.verbose:
            print(message + f" Setting learning rate to {self._optimizer.learning_rate:f}")
        return False

    def _update_no_improvement_count(
        self, early_stopping: bool, X: Any, y: Any, sample_weight: Array | None
    ) -> None:
        """Count the epochs without an improvement by ``tol`` (validation score or loss)."""
        if early_stopping:
            assert self.validation_scores_ is not None and self.best_validation_score_ is not None
            score = self._score(X, y, sample_weight=sample_weight)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_parameters = self._network.flat_parameters.copy()
        else:
            assert self.best_loss_ is not None
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

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


class MLPClassifier(ClassifierMixin, _BaseMultilayerPerceptron):
    """Multi-layer perceptron classifier: scikit-learn's API, handnet's math.

    Same parameters, defaults, fitted attributes and methods as
    ``sklearn.neural_network.MLPClassifier`` (see its documentation); the
    network, log-loss, gradients and update rules are handnet's. Binary and
    multilabel targets get sigmoid outputs with binary cross-entropy, multiclass
    targets a softmax with cross-entropy, both computed from the logits.

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of units in the ith hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Activation of the hidden layers.
    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        The update rule: handnet's L-BFGS, or scikit-learn's forms of SGD with
        momentum and of Adam (:class:`~handnet.optimizers.SklearnSGD`,
        :class:`~handnet.optimizers.SklearnAdam`).
    alpha : float, default=0.0001
        L2 strength: ``alpha / (2 n_batch) * sum(W**2)`` is added to the mean loss.
    batch_size : int or 'auto', default='auto'
        Mini-batch size of the stochastic solvers; 'auto' is ``min(200, n_samples)``.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Learning-rate schedule of ``solver='sgd'``.
    learning_rate_init : float, default=0.001
        Initial learning rate (sgd, adam).
    power_t : float, default=0.5
        Exponent of 'invscaling'.
    max_iter : int, default=200
        Epochs (stochastic solvers) or iterations (lbfgs).
    shuffle : bool, default=True
        Shuffle the samples every epoch (stochastic solvers).
    random_state : int, RandomState instance or None, default=None
        Initial weights, shuffling and the validation split.
    tol : float, default=1e-4
        Tolerance of the stopping rules.
    verbose : bool, default=False
        Print the loss every epoch.
    warm_start : bool, default=False
        Start from the previous fit's weights.
    momentum : float, default=0.9
        Momentum of 'sgd'.
    nesterovs_momentum : bool, default=True
        Nesterov's form of the momentum.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data, stop when its score stops
        improving and keep the best weights (stochastic solvers).
    validation_fraction : float, default=0.1
        Share of the data held out for early stopping.
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Adam's decay rates and epsilon.
    n_iter_no_change : int or np.inf, default=10
        Epochs without an improvement of ``tol`` before stopping.
    max_fun : int, default=15000
        Maximum number of loss evaluations of 'lbfgs'.

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
    loss_ : float
    best_loss_ : float or None
    loss_curve_ : list of float
    validation_scores_ : list of float or None
    best_validation_score_ : float or None
    t_ : int
    coefs_ : list of ndarray
    intercepts_ : list of ndarray
    n_features_in_ : int
    feature_names_in_ : ndarray of str
    n_iter_ : int
    n_layers_ : int
    n_outputs_ : int
    out_activation_ : str
    """

    def __init__(
        self,
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: Any = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: Any = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: Any = 10,
        max_fun: int = 15000,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun

    #: scikit-learn's name of the classifier's loss (not a parameter).
    loss = "log_loss"

    def _output_activation(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _validate_input(
        self, X: Any, y: Any, incremental: bool, reset: bool
    ) -> tuple[Any, NDArray[Any]]:
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same "
                        "classes as in the previous call to fit. Previously "
                        f"got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    "`y` has classes not in `self.classes_`. "
                    f"`self.classes_` has {self.classes_}. 'y' has {classes}."
                )
        # bool, so that float32 data are not upcast
        return X, self._label_binarizer.transform(y).astype(bool)

    def predict(self, X: Any) -> NDArray[Any]:
        """Predict using the multi-layer perceptron classifier.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray, shape (n_samples,) or (n_samples, n_classes)
            The predicted classes.
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X: Any, check_input: bool = True) -> NDArray[Any]:
        y_pred = self._output(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        labels: NDArray[Any] = self._label_binarizer.inverse_transform(y_pred)
        return labels

    def _score(self, X: Any, y: Any, sample_weight: Array | None = None) -> float:
        return self._score_with_function(X, y, sample_weight, accuracy_score)

    @available_if(lambda est: est._check_solver())
    def partial_fit(
        self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None
    ) -> MLPClassifier:
        """Update the model with a single iteration over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        classes : array of shape (n_classes,), default=None
            Classes across all calls to partial_fit; required on the first call.

        Returns
        -------
        self : object
            The trained model.
        """
        if self._first_partial_fit_call(classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        self._fit(X, y, sample_weight=sample_weight, incremental=True)
        return self

    def _first_partial_fit_call(self, classes: Any) -> bool:
        """Whether this is the first call of partial_fit (and set ``classes_`` then)."""
        known = getattr(self, "classes_", None)
        if known is None and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if classes is None:
            return False
        if known is not None:
            if not np.array_equal(known, unique_labels(classes)):
                raise ValueError(
                    f"`classes={classes!r}` is not the same as on last call "
                    f"to partial_fit, was: {known!r}"
                )
            return False
        self.classes_ = unique_labels(classes)
        return True

    def predict_log_proba(self, X: Any) -> Array:
        """Return the log of probability estimates.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
            ``log(predict_proba(X))``, classes ordered as in ``classes_``.
        """
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def predict_proba(self, X: Any) -> Array:
        """Probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            The probability of each class, classes ordered as in ``classes_``.
        """
        check_is_fitted(self)
        y_pred = self._output(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMultilayerPerceptron):
    """Multi-layer perceptron regressor: scikit-learn's API, handnet's math.

    Same parameters, defaults, fitted attributes and methods as
    ``sklearn.neural_network.MLPRegressor``; ``loss='squared_error'`` is half the
    squared error with an identity output, ``loss='poisson'`` half the Poisson
    deviance with an exponential output (log link). See :class:`MLPClassifier` for
    the other parameters and the attributes.

    Parameters
    ----------
    loss : {'squared_error', 'poisson'}, default='squared_error'
        The loss.
    hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate, \
learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose, \
warm_start, momentum, nesterovs_momentum, early_stopping, validation_fraction, \
beta_1, beta_2, epsilon, n_iter_no_change, max_fun
        As in :class:`MLPClassifier`.
    """

    def __init__(
        self,
        loss: str = "squared_error",
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: Any = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: Any = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: Any = 10,
        max_fun: int = 15000,
    ) -> None:
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun

    def _check_params(self) -> None:
        if not isinstance(self.loss, str) or self.loss not in ("squared_error", "poisson"):
            raise InvalidParameterError(
                "The 'loss' parameter of MLPRegressor must be a str among "
                f"{{'poisson', 'squared_error'}}. Got {self.loss!r} instead."
            )
        super()._check_params()

    def _output_activation(self) -> str:
        return "exp" if self.loss == "poisson" else "identity"

    def predict(self, X: Any) -> Array:
        """Predict using the multi-layer perceptron model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted values.
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X: Any, check_input: bool = True) -> Array:
        y_pred = self._output(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def _score(self, X: Any, y: Any, sample_weight: Array | None = None) -> float:
        return self._score_with_function(X, y, sample_weight, r2_score)

    def _validate_input(
        self, X: Any, y: Any, incremental: bool, reset: bool
    ) -> tuple[Any, NDArray[Any]]:
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """Update the model with a single iteration over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : ndarray of shape (n_samples,)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : object
            The trained model.
        """
        self._fit(X, y, sample_weight=sample_weight, incremental=True)
        return self
