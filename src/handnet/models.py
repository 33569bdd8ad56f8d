"""Estimators with scikit-learn's API: linear models and multi-layer perceptrons.

Every model here is the same machine with different parts:

=====================  ==================  ======================  ===================
model                  hidden layers       output                  loss
=====================  ==================  ======================  ===================
LogisticRegression     none                1 logit (sigmoid)       binary cross-entropy
SoftmaxRegression      none                K logits (softmax)      softmax cross-entropy
MLPClassifier          hidden_layer_sizes  sigmoid or softmax      cross-entropy
MLPRegressor           hidden_layer_sizes  identity                half squared error
=====================  ==================  ======================  ===================

``fit`` validates the data, encodes the targets for the loss, builds a
:class:`~handnet.network.Sequential`, and hands it to the
:class:`~handnet.training.Trainer`, which owns the optimisation loop.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .base import BaseEstimator, accuracy, r2_score
from .layers import Activation, Dense, Dropout, Layer
from .losses import BinaryCrossEntropy, Loss, MeanSquaredError, SoftmaxCrossEntropy
from .network import Sequential
from .optimizers import LBFGS, Optimizer, get_optimizer
from .schedules import Schedule, get_schedule
from .training import History, Trainer
from .validation import check_features, check_positive, check_sample_weight, check_target

Array = NDArray[np.floating]

_HIDDEN_ACTIVATIONS = ("relu", "tanh", "sigmoid", "logistic", "leaky_relu", "identity")


class _NetworkEstimator(BaseEstimator):
    """What every handnet model shares: validation, network building, the fit loop."""

    _dtype: np.dtype[Any]

    # Set by subclasses.
    _is_classifier = False
    _default_init = "zeros"

    # Declared here so that mypy knows the hyperparameters every subclass stores.
    optimizer: str | Optimizer | LBFGS
    learning_rate: float
    schedule: str | Schedule
    max_iter: int
    batch_size: int | str | None
    alpha: float
    tol: float | None
    n_iter_no_change: int
    early_stopping: bool
    validation_fraction: float
    clip_norm: float | None
    shuffle: bool
    init: str
    random_state: int | np.random.Generator | None
    warm_start: bool
    verbose: bool

    # --- what subclasses say about themselves ----------------------------------------

    def _hidden_layers(self) -> tuple[int, ...]:
        return ()

    def _hidden_activation(self) -> str:
        return "relu"

    def _dropout_rate(self) -> float:
        return 0.0

    # --- validation ------------------------------------------------------------------

    def _validate_hyperparameters(self, n_samples: int) -> None:
        check_positive(self.max_iter, "max_iter", integer=True)
        check_positive(self.alpha, "alpha", allow_zero=True)
        check_positive(self.n_iter_no_change, "n_iter_no_change", integer=True)
        if self.tol is not None:
            check_positive(self.tol, "tol", allow_zero=True)
        if self.clip_norm is not None:
            check_positive(self.clip_norm, "clip_norm")
        if not isinstance(self.optimizer, (Optimizer, LBFGS)):
            check_positive(self.learning_rate, "learning_rate")
        if self.batch_size is not None and self.batch_size != "auto":
            check_positive(self.batch_size, "batch_size", integer=True)
            if self.batch_size > n_samples:
                raise ValueError(
                    f"batch_size={self.batch_size} is larger than the number of training "
                    f"samples ({n_samples}); use batch_size=None for full-batch training "
                    f"or a value <= {n_samples}"
                )
        if self.early_stopping:
            fraction = self.validation_fraction
            if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real):
                raise TypeError(f"validation_fraction must be a number, got {fraction!r}")
            if not 0.0 < fraction < 1.0:
                raise ValueError(f"validation_fraction must be in (0, 1), got {fraction!r}")
        for layer_size in self._hidden_layers():
            check_positive(layer_size, "hidden_layer_sizes entries", integer=True)
        if self._hidden_activation() not in _HIDDEN_ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {list(_HIDDEN_ACTIVATIONS)}, "
                f"got {self._hidden_activation()!r}"
            )
        rate = self._dropout_rate()
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate < 1:
            raise ValueError(f"dropout must be a number in [0, 1), got {rate!r}")

    def _validate_X(self, X: Any, reset: bool) -> Array:
        """Check features; at fit time remember their number (and names)."""
        names = getattr(X, "columns", None)
        if reset:
            array = check_features(X, min_samples=1)
            self.n_features_in_ = array.shape[1]
            if names is not None and all(isinstance(n, str) for n in names):
                self.feature_names_in_ = np.asarray(list(names), dtype=object)
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            return array
        self._check_is_fitted()
        fitted_names = getattr(self, "feature_names_in_", None)
        if fitted_names is not None and names is not None:
            if list(names) != list(fitted_names):
                raise ValueError(
                    "The feature names should match those that were passed during fit: "
                    f"got {list(names)}, expected {list(fitted_names)}"
                )
        return check_features(X, dtype=self._dtype, n_features=self.n_features_in_)

    # --- building --------------------------------------------------------------------

    def _build_network(self, n_features: int, n_outputs: int, dtype: np.dtype[Any]) -> Sequential:
        rng = self._rng
        init = self.init
        if init == "auto":
            init = "he" if self._hidden_activation() in ("relu", "leaky_relu") else "xavier"
        layers: list[Layer] = []
        n_inputs = n_features
        for width in self._hidden_layers():
            layers.append(Dense(n_inputs, width, init=init, random_state=rng, dtype=dtype))
            layers.append(Activation(self._hidden_activation()))
            if self._dropout_rate() > 0:
                layers.append(Dropout(self._dropout_rate(), random_state=rng))
            n_inputs = width
        # The output layer is linear: the loss applies the sigmoid/softmax to its logits.
        output_init = "xavier" if self._hidden_layers() and init == "zeros" else init
        layers.append(Dense(n_inputs, n_outputs, init=output_init, random_state=rng, dtype=dtype))
        return Sequential(layers)

    def _make_trainer(self, network: Sequential, loss: Loss, callbacks: Sequence[Any]) -> Trainer:
        optimizer = get_optimizer(self.optimizer, self.learning_rate)
        if isinstance(optimizer, (Optimizer, LBFGS)) and not isinstance(self.optimizer, str):
            optimizer.reset()  # a user's object starts fresh for a fresh fit
        if isinstance(optimizer, LBFGS) and self._dropout_rate() > 0:
            raise ValueError("dropout needs a stochastic optimizer; L-BFGS is full-batch only")
        return Trainer(
            network,
            loss,
            optimizer,
            self._rng,
            batch_size=None,  # set per fit from the data size
            schedule=get_schedule(self.schedule, self.max_iter),
            l2=self.alpha,
            clip_norm=self.clip_norm,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            shuffle=self.shuffle,
            callbacks=callbacks,
        )

    def _resolve_batch_size(self, n_samples: int) -> int | None:
        if isinstance(self.optimizer, LBFGS) or self.optimizer == "lbfgs":
            return None
        if self.batch_size == "auto":
            return min(200, n_samples)
        return None if self.batch_size is None else int(self.batch_size)

    # --- targets (subclasses) --------------------------------------------------------

    def _encode_targets(self, y: Any, n_samples: int, dtype: Any, reset: bool) -> Array:
        raise NotImplementedError

    def _loss(self) -> Loss:
        raise NotImplementedError

    def _n_outputs(self) -> int:
        raise NotImplementedError

    def _class_sample_weight(self, y: Any) -> Array | None:
        return None

    def _score_for_validation(self, X: Array, y: Any) -> float:
        raise NotImplementedError

    # --- fitting ---------------------------------------------------------------------

    def fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        *,
        validation_data: tuple[Any, Any] | None = None,
        callbacks: Sequence[Callable[[Trainer], bool | None]] = (),
    ) -> _NetworkEstimator:
        """Train on ``X``, ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) (or (n_samples, n_outputs) for regression)
        sample_weight : array-like of shape (n_samples,), optional
            Per-sample weights in the mean loss; weight 2 counts a sample twice.
        validation_data : (X_val, y_val), optional
            Score on this set after every epoch (``validation_scores_``); the
            stopping rule uses it and the best epoch's weights are kept.
        callbacks : sequence of callables ``callback(trainer) -> bool``
            Called after every epoch; returning ``True`` stops training.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, validation_data, callbacks, incremental=False)

    def _fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any,
        validation_data: tuple[Any, Any] | None,
        callbacks: Sequence[Callable[[Trainer], bool | None]],
        incremental: bool,
        classes: Any = None,
    ) -> _NetworkEstimator:
        first_call = not (incremental or self.warm_start) or not getattr(self, "_fitted", False)
        X_checked = check_features(X, dtype=None if first_call else self._dtype, min_samples=1)
        n_samples = X_checked.shape[0]
        self._validate_hyperparameters(n_samples)
        if first_call:
            self._validate_X(X, reset=True)
            self._dtype = X_checked.dtype
            self._rng = np.random.default_rng(self.random_state)
        else:
            X_checked = self._validate_X(X, reset=False)
        dtype = self._dtype
        if incremental and classes is not None and first_call:
            self._declare_classes(classes)
        Y = self._encode_targets(y, n_samples, dtype, reset=first_call and not incremental)
        weights = check_sample_weight(sample_weight, n_samples, dtype)
        class_weights = self._class_sample_weight(y)
        if class_weights is not None:
            weights = class_weights if weights is None else weights * class_weights

        validation = None
        X_train, Y_train, w_train = X_checked, Y, weights
        if validation_data is not None or (self.early_stopping and not incremental):
            if validation_data is not None:
                X_val = self._validate_X(validation_data[0], reset=False) if not first_call else (
                    check_features(validation_data[0], dtype=dtype, n_features=X_checked.shape[1])
                )
                y_val = validation_data[1]
            else:
                train_index, val_index = self._validation_split(y, n_samples)
                X_train, Y_train = X_checked[train_index], Y[train_index]
                w_train = None if weights is None else weights[train_index]
                X_val = X_checked[val_index]
                y_val = np.asarray(y)[val_index]
            X_validation, y_validation = X_val, y_val
            validation = (X_validation, y_validation, None)

        if first_call:
            self.network_ = self._build_network(X_checked.shape[1], self._n_outputs(), dtype)
            self.network_.set_random_state(self._rng)
            self.loss_curve_: list[float] = []
            self.validation_scores_: list[float] | None = None
            self.t_ = 0
        if first_call or not incremental:
            self._trainer = self._make_trainer(self.network_, self._loss(), callbacks)
        trainer = self._trainer
        trainer.callbacks = list(callbacks)
        if self.verbose:
            trainer.callbacks.append(_print_progress)
        trainer.batch_size = self._resolve_batch_size(len(X_train))
        score_fn = None
        if validation is not None:
            Xv, yv = validation[0], validation[1]

            def score_fn() -> float:
                return self._score_for_validation(Xv, yv)

            if self.validation_scores_ is None:
                self.validation_scores_ = []

        self._fitted = True  # the network exists: scoring during training needs it
        start_epoch = trainer.epoch
        start_scores = len(trainer.history.validation_score)
        try:
            trainer.fit(
                X_train,
                Y_train,
                w_train,
                max_iter=1 if incremental else self.max_iter,
                validation=None if score_fn is None else (Xv, yv, score_fn),
            )
        finally:
            history = trainer.history
            self.history_: History = history
            new_losses = history.loss[len(history.loss) - (trainer.epoch - start_epoch) :]
            self.loss_curve_.extend(new_losses)
            if self.validation_scores_ is not None:
                self.validation_scores_.extend(history.validation_score[start_scores:])
                if self.validation_scores_:
                    self.best_validation_score_ = max(self.validation_scores_)
            self.n_iter_ = trainer.epoch - start_epoch if not incremental else trainer.epoch
            self.t_ += (trainer.epoch - start_epoch) * len(X_train)
            if self.loss_curve_:
                self.best_loss_ = min(self.loss_curve_)
        return self

    def _validation_split(self, y: Any, n_samples: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """A random (stratified for classifiers) split for early stopping."""
        n_validation = max(1, int(round(self.validation_fraction * n_samples)))
        if n_samples - n_validation < 1:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves no training samples "
                f"out of {n_samples}"
            )
        rng = self._rng
        if self._is_classifier:
            labels = np.asarray(y)
            val_parts = []
            for label in np.unique(labels):
                members = np.flatnonzero(labels == label)
                take = int(round(len(members) * n_validation / n_samples))
                val_parts.append(rng.permutation(members)[:take])
            val_index = np.sort(np.concatenate(val_parts)) if val_parts else np.array([], int)
            if len(val_index) == 0:
                val_index = np.sort(rng.permutation(n_samples)[:n_validation])
        else:
            val_index = np.sort(rng.permutation(n_samples)[:n_validation])
        mask = np.ones(n_samples, dtype=bool)
        mask[val_index] = False
        return np.flatnonzero(mask), val_index

    def _declare_classes(self, classes: Any) -> None:
        raise ValueError(f"{type(self).__name__} does not take classes")

    # --- predicting ------------------------------------------------------------------

    def _forward(self, X: Any) -> Array:
        X_checked = self._validate_X(X, reset=False)
        with np.errstate(over="ignore"):
            return self.network_.predict(X_checked)



class _ClassifierMixin(_NetworkEstimator):
    """Label encoding, probabilities and accuracy for the classifiers."""

    _is_classifier = True
    class_weight: dict[Any, float] | str | None
    _binary_output = True  # two classes -> one sigmoid logit (False: two softmax logits)

    def _declare_classes(self, classes: Any) -> None:
        self.classes_ = self._check_classes(np.unique(np.asarray(classes)))

    def _check_classes(self, classes: NDArray[Any]) -> NDArray[Any]:
        if len(classes) < 2:
            raise ValueError(
                f"The number of classes has to be greater than one; got {len(classes)} class "
                f"({classes.tolist()}). A classifier needs examples of at least two labels."
            )
        return classes

    def _encode_targets(self, y: Any, n_samples: int, dtype: Any, reset: bool) -> Array:
        labels = check_target(y, n_samples)
        if labels.dtype.kind == "f" and not np.all(np.mod(labels, 1) == 0):
            raise ValueError(
                "Unknown label type: continuous. y holds non-integer numbers; a classifier "
                "needs class labels (use MLPRegressor for continuous targets)"
            )
        if reset or not hasattr(self, "classes_"):
            if not reset and not hasattr(self, "classes_"):
                raise ValueError(
                    "classes must be passed on the first call to partial_fit "
                    "(all labels that will ever appear)"
                )
            self.classes_ = self._check_classes(np.unique(labels))
        index = np.searchsorted(self.classes_, labels)
        index = np.clip(index, 0, len(self.classes_) - 1)
        unseen = self.classes_[index] != labels
        if np.any(unseen):
            raise ValueError(
                f"y contains labels not seen at fit time: {np.unique(labels[unseen]).tolist()}; "
                f"known classes are {self.classes_.tolist()}"
            )
        self._check_n_classes()
        if self._uses_sigmoid():
            return index.astype(dtype).reshape(-1, 1)
        Y = np.zeros((n_samples, len(self.classes_)), dtype=dtype)
        Y[np.arange(n_samples), index] = 1
        return Y

    def _check_n_classes(self) -> None:
        """Hook for models limited to two classes."""

    def _uses_sigmoid(self) -> bool:
        return self._binary_output and len(self.classes_) == 2

    def _loss(self) -> Loss:
        return BinaryCrossEntropy() if self._uses_sigmoid() else SoftmaxCrossEntropy()

    def _n_outputs(self) -> int:
        return 1 if self._uses_sigmoid() else len(self.classes_)

    def _class_sample_weight(self, y: Any) -> Array | None:
        if self.class_weight is None:
            return None
        labels = np.asarray(y)
        if self.class_weight == "balanced":
            counts = np.array([np.sum(labels == c) for c in self.classes_], dtype=np.float64)
            per_class = len(labels) / (len(self.classes_) * np.maximum(counts, 1))
        elif isinstance(self.class_weight, dict):
            unknown = set(self.class_weight) - set(self.classes_.tolist())
            if unknown:
                raise ValueError(
                    f"class_weight names labels that are not classes: {sorted(map(str, unknown))}"
                )
            per_class = np.array([float(self.class_weight.get(c, 1.0)) for c in self.classes_])
            if np.any(per_class < 0) or not np.all(np.isfinite(per_class)):
                raise ValueError("class_weight values must be finite and non-negative")
        else:
            raise ValueError(
                f"class_weight must be None, 'balanced' or a dict {{label: weight}}, "
                f"got {self.class_weight!r}"
            )
        index = np.searchsorted(self.classes_, labels)
        return per_class[index].astype(self._dtype)

    def decision_function(self, X: Any) -> Array:
        """The logits: shape (n_samples,) for two classes, (n_samples, n_classes) otherwise."""
        logits = self._forward(X)
        return logits.ravel() if logits.shape[1] == 1 else logits

    def predict_proba(self, X: Any) -> Array:
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes_`` order."""
        logits = self._forward(X)
        probabilities = self._loss().link(logits)
        if probabilities.shape[1] == 1:
            return np.hstack([1.0 - probabilities, probabilities])
        return probabilities

    def predict_log_proba(self, X: Any) -> Array:
        """Log of :meth:`predict_proba`, computed from the logits (no ``log(0)``)."""
        from .activations import log_softmax

        logits = self._forward(X)
        if logits.shape[1] == 1:
            logits = np.hstack([np.zeros_like(logits), logits])
        return log_softmax(logits)

    def predict(self, X: Any) -> NDArray[Any]:
        """The most probable class label for each sample."""
        logits = self._forward(X)
        index = (logits[:, 0] > 0).astype(np.intp) if logits.shape[1] == 1 else logits.argmax(1)
        return self.classes_[index]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy on ``X``, ``y``."""
        return accuracy(np.asarray(y), self.predict(X), sample_weight)

    def _score_for_validation(self, X: Array, y: Any) -> float:
        return self.score(X, y)

    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None
    ) -> _ClassifierMixin:
        """One epoch over ``X``, ``y``, continuing from the current state.

        ``classes`` (every label that will ever appear) is required on the first
        call, as in scikit-learn's ``SGDClassifier``.
        """
        if isinstance(self.optimizer, LBFGS) or self.optimizer == "lbfgs":
            raise ValueError("partial_fit needs a stochastic optimizer; L-BFGS is full-batch only")
        if not getattr(self, "_fitted", False) and classes is None:
            raise ValueError(
                "classes must be passed on the first call to partial_fit "
                "(all labels that will ever appear)"
            )
        if getattr(self, "_fitted", False) and classes is not None:
            if not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
                raise ValueError(
                    f"classes={np.unique(classes).tolist()} differs from the classes of the "
                    f"first call to partial_fit, {self.classes_.tolist()}"
                )
        self._fit(X, y, sample_weight, None, (), incremental=True, classes=classes)
        return self


def _print_progress(trainer: Trainer) -> None:
    """The ``verbose=True`` callback: one line per epoch."""
    history = trainer.history
    line = f"epoch {trainer.epoch}: loss {history.loss[-1]:.6f}"
    if history.validation_score:
        line += f", validation score {history.validation_score[-1]:.4f}"
    print(line, flush=True)


# --- the four models ---------------------------------------------------------------------


class LogisticRegression(_ClassifierMixin):
    r"""Binary logistic regression trained by gradient descent (the seed's model).

    :math:`P(y = \text{classes\_}[1] \mid x) = \sigma(x \cdot w + b)`, trained on the mean
    binary cross-entropy plus :math:`\frac{\alpha}{2}\lVert w\rVert^2` (never on ``b``).

    Parameters
    ----------
    learning_rate : float, default 0.1
    max_iter : int, default 1000
        Epochs (full passes over the data); with ``batch_size=None`` one epoch
        is one gradient-descent iteration.
    batch_size : int or None, default None
        ``None``: full-batch GD; ``1``: SGD, one example per step, reshuffled
        every epoch; ``k``: mini-batches.
    alpha : float, default 0.0
        L2 strength on the weights.
    optimizer : str or Optimizer, default "gd"
        ``"gd"``/``"sgd"``, ``"momentum"``, ``"nesterov"``, ``"adagrad"``,
        ``"rmsprop"``, ``"adam"``, ``"adamw"``, ``"lbfgs"`` or an object.
    schedule : str or Schedule, default "constant"
    tol : float or None, default 1e-4
        Stop when the loss has not improved by ``tol`` for ``n_iter_no_change``
        epochs; ``None`` runs all ``max_iter`` epochs.
    n_iter_no_change : int, default 10
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the data and stop on its accuracy.
    validation_fraction : float, default 0.1
    clip_norm : float or None, default None
    class_weight : None, "balanced" or dict
    init : str, default "zeros"
        Initial weights: ``"zeros"``, ``"normal"`` (the seed's), ``"xavier"``, ``"he"``.
    shuffle : bool, default True
    random_state : int, Generator or None
    warm_start : bool, default False
    verbose : bool, default False

    Attributes
    ----------
    coef_ : ndarray of shape (1, n_features)
    intercept_ : ndarray of shape (1,)
    classes_ : ndarray of shape (2,)
    n_iter_ : int
    loss_curve_ : list of float
    """

    def __init__(
        self,
        learning_rate: float = 0.1,
        max_iter: int = 1000,
        batch_size: int | None = None,
        alpha: float = 0.0,
        optimizer: str | Optimizer | LBFGS = "gd",
        schedule: str | Schedule = "constant",
        tol: float | None = 1e-4,
        n_iter_no_change: int = 10,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        clip_norm: float | None = None,
        class_weight: dict[Any, float] | str | None = None,
        init: str = "zeros",
        shuffle: bool = True,
        random_state: int | np.random.Generator | None = None,
        warm_start: bool = False,
        verbose: bool = False,
    ) -> None:
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.alpha = alpha
        self.optimizer = optimizer
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

    def _check_n_classes(self) -> None:
        if len(self.classes_) != 2:
            raise ValueError(
                f"LogisticRegression is a binary classifier but y has {len(self.classes_)} "
                "classes; use SoftmaxRegression or MLPClassifier for more than two"
            )

    @property
    def coef_(self) -> Array:
        self._check_is_fitted()
        return self.network_.layers[-1].parameters()[0].T

    @property
    def intercept_(self) -> Array:
        self._check_is_fitted()
        return self.network_.layers[-1].parameters()[1]


class SoftmaxRegression(_ClassifierMixin):
    r"""Multinomial logistic (softmax) regression for any number of classes.

    :math:`P(y = k \mid x) = \mathrm{softmax}(x W + b)_k`, trained on the mean
    softmax cross-entropy plus :math:`\frac{\alpha}{2}\lVert W\rVert^2`. Two classes
    get two logits (the softmax form), unlike :class:`LogisticRegression`.

    Parameters are those of :class:`LogisticRegression`.

    Attributes
    ----------
    coef_ : ndarray of shape (n_classes, n_features)
    intercept_ : ndarray of shape (n_classes,)
    """

    _binary_output = False

    def __init__(
        self,
        learning_rate: float = 0.1,
        max_iter: int = 1000,
        batch_size: int | None = None,
        alpha: float = 0.0,
        optimizer: str | Optimizer | LBFGS = "gd",
        schedule: str | Schedule = "constant",
        tol: float | None = 1e-4,
        n_iter_no_change: int = 10,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        clip_norm: float | None = None,
        class_weight: dict[Any, float] | str | None = None,
        init: str = "zeros",
        shuffle: bool = True,
        random_state: int | np.random.Generator | None = None,
        warm_start: bool = False,
        verbose: bool = False,
    ) -> None:
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.alpha = alpha
        self.optimizer = optimizer
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

    @property
    def coef_(self) -> Array:
        self._check_is_fitted()
        return self.network_.layers[-1].parameters()[0].T

    @property
    def intercept_(self) -> Array:
        self._check_is_fitted()
        return self.network_.layers[-1].parameters()[1]


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
            return tuple(sizes)
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


class MLPRegressor(_MLPMixin, _NetworkEstimator):
    """Multi-layer perceptron regressor: identity output, half squared error.

    Single or multiple outputs: ``y`` of shape (n_samples,) or (n_samples, n_outputs).
    Parameters are those of :class:`MLPClassifier` (without ``class_weight``).
    """

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

    def _n_outputs(self) -> int:
        return self.n_outputs_

    def predict(self, X: Any) -> Array:
        """Predicted values: shape (n_samples,) or (n_samples, n_outputs) like ``y`` at fit."""
        outputs = self._forward(X)
        return outputs.ravel() if self._y_ndim == 1 else outputs

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Coefficient of determination R² on ``X``, ``y``."""
        return r2_score(np.asarray(y), self.predict(X), sample_weight)

    def _score_for_validation(self, X: Array, y: Any) -> float:
        return self.score(X, y)

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """One epoch over ``X``, ``y``, continuing from the current state."""
        if isinstance(self.optimizer, LBFGS) or self.optimizer == "lbfgs":
            raise ValueError("partial_fit needs a stochastic optimizer; L-BFGS is full-batch only")
        self._fit(X, y, sample_weight, None, (), incremental=True)
        return self
