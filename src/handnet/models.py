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

import copy
import itertools
import math
import numbers
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .activations import get_activation, hidden_activations
from .base import ESTIMATORS, BaseEstimator, accuracy, available_if, r2_score
from .io import CheckpointRun
from .layers import Activation, Dense, Dropout, Layer
from .losses import BinaryCrossEntropy, Loss, MeanSquaredError, SoftmaxCrossEntropy
from .network import Sequential
from .optimizers import LBFGS, Optimizer, get_optimizer, resolve_optimizer
from .schedules import Schedule, get_schedule
from .streaming import (
    RowBlocks,
    TargetEncoder,
    is_out_of_core,
    materialize,
    predict_blocks,
    scan_labels,
    warn_column_y,
)
from .training import History, Trainer
from .validation import (
    all_finite,
    check_class_weight,
    check_feature_names,
    check_features,
    check_interval,
    check_positive,
    check_random_state,
    check_sample_weight,
    check_score_inputs,
    check_target,
    check_validation_data,
    get_feature_names,
)

Array = NDArray[np.floating]



@dataclass
class _Prepared:
    """The training data of one ``fit`` call, checked and encoded.

    Attributes
    ----------
    n_features : int
    X, Y, weight :
        What the trainer trains on: in-memory arrays, or a
        :class:`~handnet.streaming.RowBlocks` (with ``Y`` and ``weight`` ``None``:
        the blocks carry them).
    weighting : (n_samples, mean_weight) or None
        For :class:`_DatasetWeightedLoss` when the rows are weighted.
    validation : (X_val, y_val, w_val, Y_val) or None
        In memory; ``Y_val`` encoded for the loss like ``Y``.
    fingerprint : tuple
        What :meth:`handnet.io.CheckpointRun.attach` fingerprints.
    """

    n_features: int
    X: Any
    Y: Any
    weight: Any
    weighting: tuple[int, float] | None
    validation: tuple[Any, Any, Any, Any] | None
    fingerprint: tuple[Any, ...]

    @property
    def n_train(self) -> int:
        return len(self.X)


#: The step size of ``optimizer="auto"`` when it picks gradient descent.
AUTO_LEARNING_RATE = 0.1


def _physical_memory() -> int | None:
    """The machine's memory in bytes, or ``None`` where the OS does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def _has_stochastic_optimizer(model: Any) -> bool:
    """``partial_fit`` exists only for optimizers that take steps on batches.

    (Like scikit-learn's ``LogisticRegression``, a linear model with its default
    ``optimizer="auto"``, which then means L-BFGS, has none.)
    """
    optimizer = model._optimizer()
    if isinstance(optimizer, LBFGS) or optimizer == "lbfgs":
        raise AttributeError(
            "partial_fit needs a stochastic optimizer (e.g. optimizer='sgd' or 'adam'); "
            "L-BFGS trains on the full batch only (optimizer='auto' with no learning_rate, "
            "batch_size, schedule or clip_norm means L-BFGS)"
        )
    return True


class _NetworkEstimator(BaseEstimator):
    """What every handnet model shares: validation, network building, the fit loop."""

    _dtype: np.dtype[Any]

    # Set by subclasses.
    _is_classifier = False
    _auto_learning_rate = False  # whether learning_rate=None (picked for the optimizer) is allowed
    _default_init = "zeros"

    # Declared here so that mypy knows the hyperparameters every subclass stores.
    optimizer: str | Optimizer | LBFGS
    learning_rate: float | None
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

    def _optimizer(self) -> str | Optimizer | LBFGS:
        """The ``optimizer`` hyperparameter, with ``"auto"`` resolved."""
        return resolve_optimizer(
            self.optimizer, self.batch_size, self.learning_rate, self.schedule, self.clip_norm
        )

    def _learning_rate(self) -> float:
        """The ``learning_rate`` hyperparameter, with ``None`` (auto) resolved."""
        return AUTO_LEARNING_RATE if self.learning_rate is None else self.learning_rate

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
        if not isinstance(self.optimizer, (Optimizer, LBFGS)) and not (
            self.learning_rate is None and self._auto_learning_rate
        ):
            check_positive(self.learning_rate, "learning_rate")
        if self.batch_size is not None and self.batch_size != "auto":
            check_positive(self.batch_size, "batch_size", integer=True)

        # Checked with or without early_stopping: a bad value is a mistake either way.
        check_interval(self.validation_fraction, "validation_fraction", 0.0, 1.0)
        check_random_state(self.random_state)
        if self._is_classifier:
            check_class_weight(getattr(self, "class_weight", None))
        for layer_size in self._hidden_layers():
            check_positive(layer_size, "hidden_layer_sizes entries", integer=True)
        if self._hidden_activation() not in hidden_activations():
            raise ValueError(
                f"activation must be one of {list(hidden_activations())}, "
                f"got {self._hidden_activation()!r}"
            )
        check_interval(self._dropout_rate(), "dropout", 0.0, 1.0, left_closed=True)

    def _check_batch_size(self, n_samples: int, incremental: bool) -> None:
        """In fit, a batch larger than the data is an error, not silently one full batch.

        (Checked once the targets have passed, so that one sample or one class
        gets its own message first.) partial_fit's chunks of a stream may be
        shorter than a batch: they then make one batch.
        """
        size = self.batch_size
        if incremental or size is None or size == "auto" or int(size) <= n_samples:
            return
        raise ValueError(
            f"batch_size={size} is larger than the number of training samples "
            f"(n_samples = {n_samples}); pass batch_size <= {n_samples}, 'auto' "
            "(min(200, n_samples)) or None (full batch)"
        )

    def _validate_X(self, X: Any, reset: bool) -> Array:
        """Check features against those seen at fit time (``reset=False``).

        With ``reset=True`` (a fresh fit) only the data is checked; ``_fit``
        records ``n_features_in_`` and ``feature_names_in_`` once the targets
        have passed too, so a fit that fails validation leaves the model as it was.
        """
        X = self._as_rows(X, reset)
        if reset:
            get_feature_names(X)  # mixed str / non-str column names are an error
            return check_features(X, min_samples=1)
        self._check_is_fitted()
        name = type(self).__name__
        check_feature_names(getattr(self, "feature_names_in_", None), X, name)
        return check_features(
            X, dtype=self._dtype, n_features=self.n_features_in_, estimator_name=name
        )

    def _as_rows(self, X: Any, reset: bool) -> Any:
        """``X`` as rows of features (an estimator over images flattens each one)."""
        return X

    def _record_features(self, X: Any, n_features: int) -> None:
        """Set ``n_features_in_``, and ``feature_names_in_`` for string-named columns."""
        self.n_features_in_ = n_features
        names = get_feature_names(X)
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_

    def __sklearn_is_fitted__(self) -> bool:
        """Whether ``fit`` or ``partial_fit`` has run (``sklearn...check_is_fitted`` asks)."""
        return bool(getattr(self, "_fitted", False))

    # --- building --------------------------------------------------------------------

    def _check_network_size(self, n_features: int, n_outputs: int, dtype: np.dtype[Any]) -> None:
        """Refuse layer sizes whose parameters cannot fit in memory, before allocating.

        Training holds about four copies of the parameters (values, gradients, an
        optimizer's state, the best epoch's); a network larger than the machine's
        memory would otherwise end in a ``MemoryError`` from deep inside NumPy, or
        in the system killing the process.
        """
        widths = [n_features, *self._hidden_layers(), n_outputs]
        n_parameters = sum((a + 1) * b for a, b in itertools.pairwise(widths))
        needed = 4 * n_parameters * np.dtype(dtype).itemsize
        available = _physical_memory()
        if available is not None and needed > available:
            raise ValueError(
                f"hidden_layer_sizes={getattr(self, 'hidden_layer_sizes', ())} with {n_features} "
                f"features make a network of {n_parameters:,} parameters, which needs about "
                f"{needed / 2**30:,.1f} GiB to train, more than this machine's "
                f"{available / 2**30:,.1f} GiB; use smaller layers"
            )

    def _build_network(self, n_features: int, n_outputs: int, dtype: np.dtype[Any]) -> Sequential:
        self._check_network_size(n_features, n_outputs, dtype)
        rng = self._rng
        init = self.init
        if init == "auto":
            init = get_activation(self._hidden_activation()).initializer
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
        # A user's optimizer or schedule object is trained as a copy: fitting must not
        # change the estimator's parameters (a schedule rewrites the optimizer's
        # learning_rate, ReduceOnPlateau keeps a scale), or a second fit would start
        # from the first one's decayed learning rate.
        optimizer = get_optimizer(copy.deepcopy(self._optimizer()), self._learning_rate())
        if isinstance(optimizer, (Optimizer, LBFGS)) and not isinstance(self.optimizer, str):
            optimizer.reset()  # a user's object starts fresh for a fresh fit
        if isinstance(optimizer, LBFGS) and network.draws_random_numbers(training=True):
            raise ValueError(
                "dropout needs a stochastic optimizer; L-BFGS is full-batch only and "
                "assumes the same function at every step"
            )
        return Trainer(
            network,
            loss,
            optimizer,
            self._rng,
            batch_size=None,  # set per fit from the data size
            schedule=get_schedule(copy.deepcopy(self.schedule), self.max_iter),
            l2=self.alpha,
            clip_norm=self.clip_norm,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            shuffle=self.shuffle,
            callbacks=callbacks,
        )

    def _resolve_batch_size(self, n_samples: int) -> int | None:
        optimizer = self._optimizer()
        if isinstance(optimizer, LBFGS) or optimizer == "lbfgs":
            return None
        if self.batch_size == "auto":
            return min(200, n_samples)
        return None if self.batch_size is None else min(int(self.batch_size), n_samples)

    # --- targets (subclasses) --------------------------------------------------------

    def _encode_targets(self, y: Any, n_samples: int, dtype: Any, reset: bool) -> Array:
        raise NotImplementedError

    def _loss(self) -> Loss:
        raise NotImplementedError

    def _n_outputs(self) -> int:
        raise NotImplementedError

    def _class_sample_weight(self, y: Any) -> Array | None:
        return None

    def _score_outputs(self, outputs: Array, y: Any, sample_weight: Array | None) -> float:
        """The model's score (``score``'s metric) of the network's outputs against ``y``."""
        raise NotImplementedError

    def _check_y(self, y: Any, n_samples: int) -> NDArray[Any]:
        """``y`` as an array, checked once (a classifier's column vector flattened)."""
        return check_target(
            y, n_samples, numeric=not self._is_classifier, allow_2d=self._multi_output
        )

    # --- fitting ---------------------------------------------------------------------

    def fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        *,
        validation_data: tuple[Any, Any] | None = None,
        callbacks: Sequence[Callable[[Trainer], bool | None]] = (),
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: int | None = None,
        resume: str | os.PathLike[str] | bool | None = None,
    ) -> _NetworkEstimator:
        """Train on ``X``, ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) (or (n_samples, n_outputs) for regression)
        sample_weight : array-like of shape (n_samples,), optional
            Per-sample weights in the mean loss; weight 2 counts a sample twice.
        validation_data : (X_val, y_val), optional
            Scored after every epoch: the loss (``validation_loss_curve_``) and
            the score (``validation_scores_``). The stopping rule watches the
            validation loss, and the parameters of the epoch with the lowest
            one (``best_epoch_``) are kept.
        callbacks : sequence of callables ``callback(trainer) -> bool``
            Called after every epoch; returning ``True`` stops training.
        checkpoint : path, optional
            A model file (see :mod:`handnet.io`) to keep the run's progress in:
            written atomically every ``checkpoint_every`` epochs, when training
            ends, and when Ctrl-C stops it. ``handnet.load`` reads it like any
            model file.
        checkpoint_every : int, optional
            Epochs between checkpoints (default: only at the end and on Ctrl-C).
        resume : path or bool, optional
            Continue the run saved in this file (a checkpoint, or a model
            saved after an interrupted fit) instead of starting afresh; the
            result is bit for bit the one of an uninterrupted run. ``True``
            resumes from ``checkpoint`` if that file exists and starts afresh
            otherwise, so the same call serves the first run and every restart.
            The hyperparameters must be those of the run (``max_iter`` may
            grow), and the data the same (checked by a fingerprint).

        Returns
        -------
        self
        """
        if validation_data is not None:
            validation_data = check_validation_data(
                validation_data, numeric=not self._is_classifier, allow_2d=self._multi_output
            )
        return self._fit(
            X,
            y,
            sample_weight,
            validation_data,
            callbacks,
            incremental=False,
            checkpoint=checkpoint,
            checkpoint_every=checkpoint_every,
            resume=resume,
        )

    def _fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any,
        validation_data: tuple[Any, Any] | None,
        callbacks: Sequence[Callable[[Trainer], bool | None]],
        incremental: bool,
        classes: Any = None,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: int | None = None,
        resume: str | os.PathLike[str] | bool | None = None,
    ) -> _NetworkEstimator:
        # Checks the checkpoint arguments and reads (and checks) a run to resume
        # before anything is trained; a resumed run starts like a fresh fit.
        run = CheckpointRun.start(self, checkpoint, checkpoint_every, resume)
        first_call = (
            run.resuming
            or not (incremental or self.warm_start)
            or not getattr(self, "_fitted", False)
        )
        # Checking the data sets attributes as it goes (the dtype, the generator, the
        # classes); a call refused half-way must leave the model as it was, or a
        # fitted model would go on predicting with, say, the refused y's classes.
        attributes = dict(self.__dict__)
        try:
            if is_out_of_core(X):
                data = self._prepare_out_of_core(
                    X, y, sample_weight, validation_data, incremental, classes, first_call, run
                )
            else:
                data = self._prepare_in_memory(
                    X, y, sample_weight, validation_data, incremental, classes, first_call, run
                )
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(attributes)
            raise
        dtype = self._dtype

        if first_call:
            self._record_features(X, data.n_features)
            self.network_ = self._build_network(data.n_features, self._n_outputs(), dtype)
            self.network_.set_random_state(self._rng)
            self.loss_curve_: list[float] = []
            self.validation_scores_: list[float] | None = None
            self.validation_loss_curve_: list[float] | None = None
            self.t_ = 0
        if first_call or not incremental:
            self._trainer = self._make_trainer(self.network_, self._loss(), callbacks)
        trainer = self._trainer
        trainer.loss = (
            self._loss()
            if data.weighting is None
            else _DatasetWeightedLoss(self._loss(), *data.weighting)
        )
        trainer.callbacks = list(callbacks)
        if self.verbose:
            trainer.callbacks.append(_print_progress)
        trainer.batch_size = self._resolve_batch_size(data.n_train)
        run.attach(self, trainer, data.fingerprint, data.n_train)
        validate = None
        if data.validation is not None:
            validate = self._validation_scorer(*data.validation)
            if self.validation_scores_ is None:
                self.validation_scores_ = []
                self.validation_loss_curve_ = []

        self._fitted = True  # the network exists: scoring during training needs it
        start_epoch = trainer.epoch
        start_scores = len(trainer.history.validation_score)
        max_iter = 1 if incremental else run.remaining_epochs(self, trainer)
        # partial_fit is one pass by design: not meeting tol in it is no failure to
        # converge (scikit-learn's partial_fit does not warn either).
        trainer.warn_at_max_iter = not incremental
        try:
            if max_iter > 0:  # 0: a resumed run that had already finished
                trainer.fit(
                    data.X,
                    data.Y,
                    data.weight,
                    max_iter=max_iter,
                    validation=validate,
                )
        finally:
            run.finish(trainer)
            history = trainer.history
            self.history_: History = history
            new_losses = history.loss[len(history.loss) - (trainer.epoch - start_epoch) :]
            self.loss_curve_.extend(new_losses)
            if self.validation_scores_ is not None:
                self.validation_scores_.extend(history.validation_score[start_scores:])
                self._record_best_epoch(history, start_scores)
            # Epochs of this fit (a fresh trainer starts at 0; a resumed one counts
            # the epochs before the interruption too), or all of partial_fit's.
            self.n_iter_ = trainer.epoch
            self.t_ += (trainer.epoch - start_epoch) * data.n_train
            if self.loss_curve_:
                self.best_loss_ = min(self.loss_curve_)
        return self

    def _validation_class_weight(self, y_train: Any, y_val: Any) -> Array | None:
        """Per-row weights of ``validation_data`` (classifiers: ``class_weight``)."""
        return None

    def _validation_set(
        self, X_val: Array, y_val: Any, w_val: Array | None
    ) -> tuple[Array, Any, Array | None, Array]:
        """Held-out rows checked for scoring, with their targets encoded for the loss."""
        n_val = len(X_val)
        if n_val < 2:
            raise ValueError(
                f"the validation set has {n_val} row; scoring a model needs at least 2 "
                "(R² is undefined on one row, and an accuracy on one row is 0 or 1): "
                "raise validation_fraction, pass more data, or pass "
                "validation_data=(X_val, y_val) with more rows"
            )
        y_val = np.asarray(y_val)
        try:
            Y_val = self._encode_targets(y_val, n_val, self._dtype, reset=False)
        except ValueError as error:
            # Scored as they were, labels of another kind (strings for integer classes)
            # would score 0 every epoch and stop training at once.
            raise ValueError(f"validation_data: {error}") from None
        return X_val, y_val, w_val, Y_val

    def _validation_scorer(
        self, X_val: Array, y_val: Any, w_val: Array | None, Y_val: Array
    ) -> Callable[[], tuple[float, float]]:
        """``validate() -> (loss, score)`` on held-out rows, for the trainer.

        The loss is the model's own (weighted like the held-out rows, without
        the L2 term): what early stopping watches and keeps the best of. The
        score (accuracy, or R² for a regressor) is ``validation_scores_``.
        """
        loss = self._loss()

        def validate() -> tuple[float, float]:
            outputs = self._forward_checked(X_val)
            return loss.value(outputs, Y_val, w_val), self._score_outputs(outputs, y_val, w_val)

        return validate

    def _record_best_epoch(self, history: History, start: int) -> None:
        """``validation_loss_curve_``, ``best_epoch_`` and ``best_validation_score_``.

        The kept epoch is the one of the lowest validation loss (the trainer
        restores its parameters); ``best_validation_score_`` is *its* score, so
        it describes the model that ``fit`` returns.
        """
        curve = getattr(self, "validation_loss_curve_", None)
        if curve is None:
            # A model from a file written before the validation loss was recorded: its
            # earlier epochs have scores but no losses (NaN), so the curves line up.
            earlier = len(self.validation_scores_ or []) - (
                len(history.validation_score) - start
            )
            curve = self.validation_loss_curve_ = [math.nan] * max(earlier, 0)
        curve.extend(history.validation_loss[start:])
        if history.best_epoch is None or self.validation_scores_ is None:
            return
        if not self._trainer.finished:
            # Interrupted: the model holds the last step's parameters (so that a resume
            # continues exactly), not the best epoch's, which are restored at the end.
            for name in ("best_epoch_", "best_validation_score_"):
                self.__dict__.pop(name, None)
            return
        # Epochs of earlier warm-start fits come before this fit's in the curves.
        offset = len(curve) - len(history.validation_loss)
        self.best_epoch_ = offset + history.best_epoch
        self.best_validation_score_ = self.validation_scores_[self.best_epoch_ - 1]

    def _prepare_in_memory(
        self,
        X: Any,
        y: Any,
        sample_weight: Any,
        validation_data: tuple[Any, Any] | None,
        incremental: bool,
        classes: Any,
        first_call: bool,
        run: Any,
    ) -> _Prepared:
        """Check and encode in-memory data (and split off early stopping's rows)."""
        X_checked = self._validate_X(X, reset=first_call)
        n_samples = X_checked.shape[0]
        self._validate_hyperparameters(n_samples)
        if first_call:
            self._dtype = X_checked.dtype
            self._rng = np.random.default_rng(self.random_state)
        dtype = self._dtype
        if incremental and classes is not None and first_call:
            self._declare_classes(classes)
        # A fresh fit learns the targets' classes / outputs from y; a classifier's first
        # partial_fit has them from ``classes`` instead.
        reset_targets = first_call and not (incremental and self._is_classifier)
        y = self._check_y(y, n_samples)
        Y = self._encode_targets(y, n_samples, dtype, reset=reset_targets)
        self._check_batch_size(n_samples, incremental)
        weights = check_sample_weight(sample_weight, n_samples, dtype)
        class_weights = self._class_sample_weight(y)
        if class_weights is not None:
            weights = class_weights if weights is None else weights * class_weights
            if not np.any(weights > 0):
                class_weight = getattr(self, "class_weight", None)
                raise ValueError(
                    f"every training sample has weight 0: class_weight={class_weight!r} "
                    "(times sample_weight) gives weight 0 to every class in y; give some "
                    "class a positive weight"
                )

        validation = None
        w_val = None
        X_train, Y_train, w_train = X_checked, Y, weights
        if validation_data is not None or (self.early_stopping and not incremental):
            if validation_data is not None:
                X_val = self._validate_X(validation_data[0], reset=False) if not first_call else (
                    check_features(
                        self._as_rows(validation_data[0], reset=False), "X_val", dtype,
                        X_checked.shape[1],
                        estimator_name=type(self).__name__,
                    )
                )
                y_val = validation_data[1]
                w_val = self._validation_class_weight(y, y_val)
            else:
                train_index, val_index = run.validation_split(self._validation_split)(y, n_samples)
                X_train, Y_train = X_checked[train_index], Y[train_index]
                w_train = None if weights is None else weights[train_index]
                X_val = X_checked[val_index]
                y_val = y[val_index]
                # The held-out score is weighted like the loss (sample and class weights);
                # held-out rows that all weigh 0 are scored unweighted instead.
                w_val = None if weights is None else weights[val_index]
                if w_val is not None and not np.any(w_val > 0):
                    w_val = None
                if w_train is not None and not np.any(w_train > 0):
                    raise ValueError(
                        "every training sample left after the early-stopping split has "
                        "sample weight 0; lower validation_fraction or check sample_weight"
                    )
            validation = self._validation_set(X_val, y_val, w_val)

        validation_arrays = (None, None, None) if validation is None else validation[:3]
        weighting = None
        if w_train is not None:
            weighting = (len(w_train), float(np.mean(w_train, dtype=np.float64)))
        return _Prepared(
            n_features=X_checked.shape[1],
            X=X_train,
            Y=Y_train,
            weight=w_train,
            weighting=weighting,
            validation=validation,
            fingerprint=(X_checked, Y, weights, *validation_arrays),
        )

    def _stream_encoder(self, y: Any, dtype: Any, reset: bool) -> TargetEncoder:
        raise NotImplementedError

    def _prepare_out_of_core(
        self,
        X: Any,
        y: Any,
        sample_weight: Any,
        validation_data: tuple[Any, Any] | None,
        incremental: bool,
        classes: Any,
        first_call: bool,
        run: Any,
    ) -> _Prepared:
        """Wrap out-of-core data in a :class:`~handnet.streaming.RowBlocks` (read nothing of X).

        The checks that need the values (numbers, finiteness, known labels) run on
        each block as it is first read; those that need only shapes run here. A
        classifier's fresh ``fit`` reads ``y`` once to learn ``classes_``.
        ``early_stopping`` holds out whole blocks (see :mod:`handnet.streaming`).
        """
        name = type(self).__name__
        shape = tuple(int(n) for n in X.shape)
        if len(shape) != 2:
            raise ValueError(
                f"Expected 2D array, got {len(shape)}D array instead: X has shape {shape}; "
                "pass (n_samples, n_features)"
            )
        n_samples, n_features = shape
        if n_samples < 1 or n_features < 1:
            raise ValueError(f"Found array with shape {shape}; at least 1 sample and 1 feature")
        if not first_call:
            self._check_is_fitted()
            if n_features != self.n_features_in_:
                raise ValueError(
                    f"X has {n_features} features, but {name} is expecting "
                    f"{self.n_features_in_} features as input (it was fitted on that many); "
                    "pass data with the same columns as at fit time"
                )
        if np.dtype(X.dtype).kind not in "biuf":
            raise ValueError(f"X has dtype {X.dtype}, but features must be numbers")
        self._validate_hyperparameters(n_samples)
        if first_call:
            kind = np.dtype(X.dtype)
            self._dtype = kind if kind in (np.float32, np.float64) else np.dtype(np.float64)
            self._rng = np.random.default_rng(self.random_state)
        dtype = self._dtype
        if incremental and classes is not None and first_call:
            self._declare_classes(classes)
        if y is None:
            raise ValueError(
                "This model requires y to be passed, but the target y is None; "
                "call fit(X, y) with y of length n_samples"
            )
        if not hasattr(y, "shape") or not hasattr(y, "dtype"):
            y = np.asarray(y)  # a list: small, in memory
        if int(y.shape[0]) != n_samples:
            raise ValueError(
                f"X and y have inconsistent numbers of samples: {n_samples} and {y.shape[0]}"
            )
        reset_targets = first_call and not (incremental and self._is_classifier)
        encoder = self._stream_encoder(y, dtype, reset_targets)
        self._check_batch_size(n_samples, incremental)
        weights = None
        if sample_weight is not None:
            weights = check_sample_weight(materialize(sample_weight), n_samples, dtype)
        data = RowBlocks(X, y, weights, encoder, dtype)
        train = data
        validation: tuple[Any, Any, Any, Any] | None = None
        if validation_data is not None:
            X_val = check_features(
                materialize(validation_data[0]), "X_val", dtype, n_features, estimator_name=name
            )
            validation = self._validation_set(X_val, materialize(validation_data[1]), None)
        elif self.early_stopping and not incremental:
            train, held_out = self._split_blocks(data, run)
            X_val, y_val, w_val = held_out.read_all()
            if w_val is not None and not np.any(w_val > 0):
                w_val = None
            validation = self._validation_set(X_val, y_val, w_val)
        weighting = None
        if weights is not None or encoder.class_weight is not None:
            total = train.total_weight()
            if total <= 0:
                raise ValueError(
                    "every training sample has weight 0 (sample and class weights); "
                    "check sample_weight and class_weight"
                )
            weighting = (train.n_rows, total / train.n_rows)
        validation_arrays = (None, None, None) if validation is None else validation[:3]
        return _Prepared(
            n_features=n_features,
            X=train,
            Y=None,
            weight=None,
            weighting=weighting,
            validation=validation,
            fingerprint=(data.lazy_fingerprint(), None, None, *validation_arrays),
        )

    def _split_blocks(self, data: RowBlocks, run: Any) -> tuple[RowBlocks, RowBlocks]:
        """Early stopping on streamed data: hold out whole storage blocks, drawn at random.

        About ``validation_fraction`` of the blocks (at least one) are held out;
        their row indices go through the checkpoint run like an in-memory split,
        so a resumed run holds out the same blocks.
        """
        n_blocks = data.n_blocks
        if n_blocks < 2:
            raise ValueError(
                "early_stopping on out-of-core data holds out whole storage blocks, but X "
                "is a single block; pass validation_data=(X_val, y_val) or store X in "
                "smaller chunks"
            )
        starts = data.bounds[:-1]

        if round(self.validation_fraction * n_blocks) < 1:
            # Holding out one whole block anyway would hold out far more than asked
            # (one block of two is half the data), so say so instead.
            raise ValueError(
                f"early_stopping on out-of-core data holds out whole storage blocks, but "
                f"validation_fraction={self.validation_fraction} of X's {n_blocks} blocks is "
                "less than one block; raise validation_fraction, store X in smaller chunks, "
                "or pass validation_data=(X_val, y_val)"
            )

        def split(_: Any, n_samples: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
            n_held = min(n_blocks - 1, max(1, round(self.validation_fraction * n_blocks)))
            held = np.sort(self._rng.permutation(n_blocks)[:n_held])
            mask = np.zeros(n_samples, dtype=bool)
            for index in held:
                start, stop = data.rows(int(index))
                mask[start:stop] = True
            return np.flatnonzero(~mask), np.flatnonzero(mask)

        _, val_index = run.validation_split(split)(None, data.n_rows)
        held = np.isin(starts, val_index)
        if held.all() or not held.any():
            raise ValueError("the early-stopping split must hold out some but not all blocks")
        blocks = np.arange(n_blocks, dtype=np.int64)
        return data.subset(blocks[~held]), data.subset(blocks[held])

    def _validation_split(
        self, y: Any, n_samples: int
    ) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """A random (stratified for classifiers) split for early stopping."""
        n_validation = max(1, round(self.validation_fraction * n_samples))
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
                take = round(len(members) * n_validation / n_samples)
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
        """The network's outputs (logits) on user data, checked against the fit.

        Out-of-core ``X`` is read and predicted block by block (the outputs are
        in memory, the features never all at once).
        """
        if is_out_of_core(X):
            self._check_is_fitted()
            outputs = predict_blocks(X, self.n_features_in_, self._dtype, self._forward_checked)
        else:
            outputs = self._forward_checked(self._validate_X(X, reset=False))
        if not all_finite(outputs):
            nan_rows = np.flatnonzero(np.isnan(outputs).any(axis=1))
            if len(nan_rows):
                # Finite input (checked) whose products overflow in the network: inf - inf.
                raise ValueError(
                    f"the network's outputs overflow to NaN on {len(nan_rows)} row(s) of X "
                    f"(first: row {nan_rows[0]}): their features are too large in magnitude "
                    f"for {self._dtype} arithmetic in this network; scale X like the "
                    "training data"
                )
        return outputs

    def _forward_checked(self, X_checked: Array) -> Array:
        """The outputs on an already validated array (e.g. early stopping's held-out rows)."""
        # Overflow to inf is an answer (a sure class); inf - inf = NaN is refused by
        # _forward, with a message that says which rows.
        with np.errstate(over="ignore", invalid="ignore"):
            return self.network_.predict(X_checked)



class _ClassifierMixin(_NetworkEstimator):
    """Label encoding, probabilities and accuracy for the classifiers."""

    _is_classifier = True
    _estimator_type = "classifier"
    class_weight: dict[Any, float] | str | None
    _binary_output = True  # two classes -> one sigmoid logit (False: two softmax logits)

    def _declare_classes(self, classes: Any) -> None:
        self.classes_ = self._check_classes(np.unique(np.asarray(classes)))

    def _check_classes(self, classes: NDArray[Any]) -> NDArray[Any]:
        if classes.dtype.kind in "fc" and not np.all(np.isfinite(classes)):
            # A NaN class could never be predicted, saved (load refuses it) or matched.
            raise ValueError(
                f"classes hold a non-finite label ({classes.tolist()}); class labels must "
                "be finite numbers or strings"
            )
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
            try:
                classes = np.unique(labels)
            except TypeError:  # e.g. strings and numbers, which do not sort together
                kinds = sorted({type(v).__name__ for v in labels.ravel()})
                raise ValueError(
                    f"Mix of label input types (string and number): y holds {kinds}; "
                    "use labels of one type"
                ) from None
            self.classes_ = self._check_classes(classes)
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

    def _validation_class_weight(self, y_train: Any, y_val: Any) -> Array | None:
        """``class_weight`` for the rows of ``validation_data``, as the training rows have it.

        The validation loss is the training objective on other rows: weighted by
        class alike (``"balanced"`` from the *training* labels' counts).
        """
        if self.class_weight is None:
            return None
        labels = np.asarray(y_train)
        counts = np.array([np.sum(labels == c) for c in self.classes_], dtype=np.float64)
        per_class = self._per_class_weight(counts, len(labels))
        try:
            index = np.searchsorted(self.classes_, np.asarray(y_val))
        except TypeError:  # labels of another kind: refused with a clear message later
            return None
        weights: Array = per_class[np.clip(index, 0, len(per_class) - 1)].astype(self._dtype)
        return weights if np.any(weights > 0) else None

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
        counts = None
        if self.class_weight == "balanced":
            counts = np.array([np.sum(labels == c) for c in self.classes_], dtype=np.float64)
        per_class = self._per_class_weight(counts, len(labels))
        index = np.searchsorted(self.classes_, labels)
        return per_class[index].astype(self._dtype)

    def _per_class_weight(self, counts: NDArray[Any] | None, n_samples: int) -> Array:
        """The weight of each class's rows (``counts``: rows per class, for "balanced")."""
        if self.class_weight == "balanced":
            assert counts is not None
            counts = np.asarray(counts, dtype=np.float64)
            per_class: Array = n_samples / (len(self.classes_) * np.maximum(counts, 1))
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
        return per_class

    def _stream_encoder(self, y: Any, dtype: Any, reset: bool) -> TargetEncoder:
        """Classes (one pass over ``y`` on a fresh fit) and the block encoder for streamed data."""
        if len(y.shape) == 2 and y.shape[1] == 1:
            warn_column_y()
        elif len(y.shape) != 1:
            raise ValueError(f"y must be 1D (n_samples,), got shape {tuple(y.shape)}")
        counts: NDArray[Any] | None = None
        if reset or not hasattr(self, "classes_"):
            if not reset:
                raise ValueError(
                    "classes must be passed on the first call to partial_fit "
                    "(all labels that will ever appear)"
                )
            classes, counts = scan_labels(y)
            self.classes_ = self._check_classes(classes)
        self._check_n_classes()
        per_class = None
        if self.class_weight is not None:
            if self.class_weight == "balanced" and counts is None:
                # partial_fit's classes came from classes=: count the rows of each.
                labels, label_counts = scan_labels(y)
                counts = np.zeros(len(self.classes_), dtype=np.int64)
                where = np.searchsorted(self.classes_, labels).clip(0, len(self.classes_) - 1)
                known = self.classes_[where] == labels
                counts[where[known]] = label_counts[known]
            per_class = self._per_class_weight(counts, int(y.shape[0]))
        kind = "sigmoid" if self._uses_sigmoid() else "onehot"
        return TargetEncoder(kind, np.dtype(dtype), self._n_outputs(), self.classes_, per_class)

    def decision_function(self, X: Any) -> Array:
        """Confidence scores, as scikit-learn's ``SGDClassifier`` returns them.

        Two classes: shape (n_samples,), positive for ``classes_[1]`` (the logit
        of the sigmoid output, or the difference of the two softmax logits).
        More classes: the logits, shape (n_samples, n_classes).
        """
        logits = self._forward(X)
        if logits.shape[1] == 1:
            return logits.ravel()
        if logits.shape[1] == 2:
            return logits[:, 1] - logits[:, 0]
        return logits

    def predict_proba(self, X: Any) -> Array:
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes_`` order.

        A sigmoid or softmax is never exactly 0: a probability that underflows is
        reported as the smallest positive normal number, so that
        ``log(predict_proba)`` stays finite like :meth:`predict_log_proba`.
        """
        logits = self._forward(X)
        link = self._loss().link
        if logits.shape[1] == 1:
            # sigmoid(-z) rather than 1 - sigmoid(z): no cancellation for confident rows.
            probabilities = np.hstack([link(-logits), link(logits)])
        else:
            probabilities = link(logits)
        return np.maximum(probabilities, np.finfo(probabilities.dtype).tiny)

    def predict_log_proba(self, X: Any) -> Array:
        """Log of :meth:`predict_proba`, computed from the logits (no ``log(0)``)."""
        from .activations import log_softmax

        logits = self._forward(X)
        if logits.shape[1] == 1:
            logits = np.hstack([np.zeros_like(logits), logits])
        # An infinite logit (overflowed z = x.w + b) would make log-softmax's shift
        # inf - inf = NaN; at the dtype's largest finite value the answer is the same
        # (0 for that class, about -3.4e38 in float32 or -1.8e308 in float64 for others).
        largest = np.finfo(logits.dtype).max
        return log_softmax(np.clip(logits, -largest, largest))

    def predict(self, X: Any) -> NDArray[Any]:
        """The most probable class label for each sample."""
        return self._labels(self._forward(X))

    def _labels(self, logits: Array) -> NDArray[Any]:
        index = (logits[:, 0] > 0).astype(np.intp) if logits.shape[1] == 1 else logits.argmax(1)
        return self.classes_[index]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy on ``X``, ``y``."""
        predictions = self.predict(X)
        labels, weights = check_score_inputs(y, len(predictions), sample_weight, self.classes_)
        return accuracy(labels, predictions, weights)

    def _score_outputs(self, outputs: Array, y: Any, sample_weight: Array | None) -> float:
        return accuracy(np.asarray(y), self._labels(outputs), sample_weight)

    @available_if(_has_stochastic_optimizer)
    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None
    ) -> _ClassifierMixin:
        """One epoch over ``X``, ``y``, continuing from the current state.

        ``classes`` (every label that will ever appear) is required on the first
        call, as in scikit-learn's ``SGDClassifier``. Only with a stochastic
        optimizer: with L-BFGS the model has no ``partial_fit`` attribute.

        Returns
        -------
        self
        """
        if not getattr(self, "_fitted", False) and classes is None:
            raise ValueError(
                "classes must be passed on the first call to partial_fit "
                "(all labels that will ever appear)"
            )
        if (
            getattr(self, "_fitted", False)
            and classes is not None
            and not np.array_equal(np.unique(np.asarray(classes)), self.classes_)
        ):
            raise ValueError(
                f"classes={np.unique(classes).tolist()} differs from the classes of the "
                f"first call to partial_fit, {self.classes_.tolist()}"
            )
        self._fit(X, y, sample_weight, None, (), incremental=True, classes=classes)
        return self


class _DatasetWeightedLoss(Loss):
    r"""Weighted mini-batches that estimate the whole data set's weighted mean loss.

    The objective is :math:`\sum_i s_i \ell_i / \sum_i s_i` over *all* training
    rows. A loss normalised by each batch's own weight sum would cancel the
    weights of one-row batches (SGD, ``batch_size=1``: :math:`s_i\ell_i/s_i`) and
    divide by zero on a batch whose weights are all 0. Here the gradient on a
    batch :math:`B` is that of :math:`\sum_{i\in B} s_i \ell_i / (|B|\,\bar s)`
    with :math:`\bar s` the mean weight over the data set: an unbiased estimate
    of the full gradient, and exactly it for a full batch. The value returned is
    the batch's weighted mean loss (0 for an all-zero batch), which is what the
    training loop averages into the epoch's loss.
    """

    def __init__(self, inner: Loss, n_samples: int, mean_weight: float) -> None:
        self.inner = inner
        self.name = inner.name
        #: Rows of the training set and their mean weight :math:`\bar s` (for
        #: out-of-core data counted block by block, not from one array).
        self.n_samples = int(n_samples)
        self.mean_weight = float(mean_weight)

    @classmethod
    def wrap(cls, inner: Loss, sample_weight: Array | None) -> Loss:
        """``inner`` itself when there are no weights, else the wrapper."""
        if sample_weight is None:
            return inner
        return cls(inner, len(sample_weight), float(np.mean(sample_weight, dtype=np.float64)))

    def __call__(
        self, logits: Array, targets: Array, sample_weight: Array | None = None
    ) -> tuple[float, Array]:
        if sample_weight is None or len(sample_weight) == self.n_samples:
            return self.inner(logits, targets, sample_weight)  # the full batch: exact
        batch_weight = float(np.sum(sample_weight, dtype=np.float64))
        if batch_weight <= 0.0:
            _, dlogits = self.inner(logits, targets, None)
            dlogits[...] = 0.0
            return 0.0, dlogits
        loss, dlogits = self.inner(logits, targets, sample_weight)
        dlogits *= dlogits.dtype.type(batch_weight / (len(sample_weight) * self.mean_weight))
        return loss, dlogits

    def value(self, logits: Array, targets: Array, sample_weight: Array | None = None) -> float:
        return self.inner.value(logits, targets, sample_weight)

    def link(self, logits: Array) -> Array:
        return self.inner.link(logits)

    def __repr__(self) -> str:
        return repr(self.inner)


def _print_progress(trainer: Trainer) -> None:
    """The ``verbose=True`` callback: one line per epoch."""
    history = trainer.history
    line = f"epoch {trainer.epoch}: loss {history.loss[-1]:.6f}"
    if history.validation_score:
        line += f", validation score {history.validation_score[-1]:.4f}"
    print(line, flush=True)


# --- the four models ---------------------------------------------------------------------


class _LinearClassifier(_ClassifierMixin):
    """A linear classifier (no hidden layer): the parameters of both linear models.

    scikit-learn reads the hyperparameters from the ``__init__`` signature, which
    :class:`LogisticRegression` and :class:`SoftmaxRegression` share through here.
    """

    _auto_learning_rate = True

    def __init__(
        self,
        learning_rate: float | None = None,
        max_iter: int = 1000,
        batch_size: int | None = None,
        alpha: float = 0.0,
        optimizer: str | Optimizer | LBFGS = "auto",
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


class LogisticRegression(_LinearClassifier):
    r"""Binary logistic regression (the seed's model).

    :math:`P(y = \text{classes\_}[1] \mid x) = \sigma(x \cdot w + b)`, trained on the mean
    binary cross-entropy plus :math:`\frac{\alpha}{2}\lVert w\rVert^2` (never on ``b``).

    With the defaults it is fitted by L-BFGS, which needs no step size and so
    copes with unscaled and weighted data; give a ``learning_rate`` (or a
    ``batch_size``) and it is trained by gradient descent, as in the seed
    (``LogisticRegression(learning_rate=0.01, max_iter=5001, init="normal")``).

    Parameters
    ----------
    learning_rate : float or None, default None
        The step size of the gradient methods; ``None``: 0.1 for them, and
        ``optimizer="auto"`` then picks L-BFGS for a full batch.
    max_iter : int, default 1000
        Epochs (full passes over the data; one gradient-descent step each with
        ``batch_size=None``), or L-BFGS iterations.
    batch_size : int or None, default None
        ``None``: full-batch GD; ``1``: SGD, one example per step, reshuffled
        every epoch; ``k``: mini-batches of ``k`` rows (at most the number of
        rows in ``fit``; a shorter ``partial_fit`` chunk makes one batch).
    alpha : float, default 0.0
        L2 strength on the weights.
    optimizer : str or Optimizer, default "auto"
        ``"auto"``: ``"lbfgs"`` when neither ``learning_rate`` nor ``batch_size``
        is given, else ``"sgd"``; or ``"gd"``/``"sgd"``, ``"momentum"``,
        ``"nesterov"``, ``"adagrad"``, ``"rmsprop"``, ``"adam"``, ``"adamw"``,
        ``"lbfgs"`` or an object.
    schedule : str or Schedule, default "constant"
    tol : float or None, default 1e-4
        Stop when the loss has not improved by ``tol`` for ``n_iter_no_change``
        epochs (L-BFGS: when the gradient's largest entry is below ``tol``);
        ``None`` runs all ``max_iter`` epochs. A stop on a loss that rose and
        fell instead of settling warns (``ConvergenceWarning``), as does
        reaching ``max_iter``.
    n_iter_no_change : int, default 10
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the data, stop when its loss stops
        improving, and keep the epoch with the lowest validation loss.
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

    _binary_only = True  # scikit-learn's tag: classifier_tags.multi_class = False

    def _check_n_classes(self) -> None:
        if len(self.classes_) != 2:
            raise ValueError(
                "Only binary classification is supported. LogisticRegression is a binary "
                f"classifier but y has {len(self.classes_)} classes; use SoftmaxRegression "
                "or MLPClassifier for more than two"
            )



class SoftmaxRegression(_LinearClassifier):
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

    @available_if(_has_stochastic_optimizer)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> _RegressorMixin:
        """One epoch over ``X``, ``y``, continuing from the current state.

        Only with a stochastic optimizer: with L-BFGS the model has no
        ``partial_fit`` attribute.

        Returns
        -------
        self
        """
        self._fit(X, y, sample_weight, None, (), incremental=True)
        return self



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


for _estimator in (LogisticRegression, SoftmaxRegression, MLPClassifier, MLPRegressor):
    ESTIMATORS.register(_estimator.__name__, _estimator)
del _estimator
