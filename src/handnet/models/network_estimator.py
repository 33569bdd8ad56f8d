"""What every estimator shares: hyperparameter hooks, the fit loop, predicting.

:class:`_NetworkEstimator` is the plumbing of ``fit``, ``partial_fit`` and
``predict``; each concern it calls on lives in a module of its own:

* :mod:`.hyperparameters`: the checks of the hyperparameters, what ``"auto"`` means;
* :mod:`.building`: the network and the trainer;
* :mod:`.preparation`: checking and encoding the data (in memory or out of core),
  with early stopping's split (:mod:`.splits`), by a :class:`~.preparation.Preparation`
  made for each call;
* :mod:`.records`: the curves and counters a fit leaves on the model, and taking
  back a call refused half-way.

What a model's targets are (classes or values) is the business of
:class:`~handnet.models.classifier._ClassifierMixin` and
:class:`~handnet.models.regressor._RegressorMixin`, which fill in the hooks
under "targets" below.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..base import BaseEstimator
from ..data.streaming import TargetEncoder, is_out_of_core, predict_blocks
from ..data.validation import (
    all_finite,
    check_feature_names,
    check_features,
    check_target,
    check_validation_data,
    get_feature_names,
)
from ..io import CheckpointRun
from ..nn.losses import Loss
from ..nn.network import Sequential
from ..optim.optimizers import Optimizer, resolve_optimizer
from ..optim.schedules import Schedule
from ..training import History, Trainer
from .building import dense_network, make_trainer
from .hyperparameters import AUTO_LEARNING_RATE, check_hyperparameters, resolve_batch_size
from .preparation import Preparation
from .records import (
    print_progress,
    record_epochs,
    restored_on_failure,
    start_records,
    watch_validation,
)
from .summary import NetworkSummary, estimator_html, model_summary
from .weighted_loss import _DatasetWeightedLoss

Array = NDArray[np.floating]


class _NetworkEstimator(BaseEstimator):
    """What every handnet model shares: validation, network building, the fit loop."""

    _dtype: np.dtype[Any]

    # Set by subclasses.
    _is_classifier = False
    _auto_learning_rate = False  # whether learning_rate=None (picked for the optimizer) is allowed
    _default_init = "zeros"

    # Declared here so that mypy knows the hyperparameters every subclass stores.
    optimizer: str | Optimizer
    learning_rate: float | None
    schedule: str | Schedule
    max_iter: int
    batch_size: int | str | None
    alpha: float
    penalty: str | None
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

    # What fit sets (:mod:`.preparation` and :mod:`.records` set most of them).
    _rng: np.random.Generator
    _trainer: Trainer
    network_: Sequential
    n_features_in_: int
    loss_curve_: list[float]
    validation_scores_: list[float] | None
    validation_loss_curve_: list[float] | None
    history_: History
    n_iter_: int
    t_: int

    # --- what subclasses say about themselves ----------------------------------------

    def _hidden_layers(self) -> tuple[int, ...]:
        return ()

    def _optimizer(self) -> str | Optimizer:
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

    def _training_threads(self) -> contextlib.AbstractContextManager[Any]:
        """How the threads are used while training (BLAS's own, by default)."""
        return contextlib.nullcontext()

    def _validate_hyperparameters(self, n_samples: int) -> None:
        """Refuse bad hyperparameters (:func:`.hyperparameters.check_hyperparameters`)."""
        check_hyperparameters(self)

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

    # --- in a notebook ----------------------------------------------------------------

    def summary(self) -> NetworkSummary:
        """The network as a table: its layers, output shapes and parameter counts.

        Returns
        -------
        NetworkSummary
            Prints as a text table (like Keras's ``model.summary()``) and shows
            as an HTML table in Jupyter; ``.n_parameters``, ``.layers`` and
            ``.to_rows()`` give the numbers.

        Raises
        ------
        NotFittedError
            Before ``fit`` (the sizes come from the data); a ``NeuralNet``
            estimator given ``input_shape`` shows the network ``fit`` will build.

        Examples
        --------
        >>> from handnet.datasets import make_moons
        >>> from handnet.models import MLPClassifier
        >>> X, y = make_moons(50, random_state=0)
        >>> model = MLPClassifier((8,), max_iter=5, tol=None, random_state=0).fit(X, y)
        >>> print(model.summary())
        MLPClassifier: 2 features -> 2 classes
        input shape: (None, 2)
        ========================================================
        layer         type              output shape  parameters
        --------------------------------------------------------
        dense_1       Dense             (None, 8)             24
        activation_1  Activation(relu)  (None, 8)              0
        dense_2       Dense             (None, 1)              9
        ========================================================
        Total parameters: 33 (264 B, float64)
        Trainable parameters: 33
        Non-trainable parameters: 0
        """
        return model_summary(self)

    def _repr_html_(self) -> str:
        """Jupyter's view: the hyperparameters, then the network's table (when there is one)."""
        return estimator_html(self)

    def plot(self, axes: Any = None, title: str | None = None) -> Any:
        """Draw the training history (:func:`handnet.plot.curves`): loss, score, learning rate.

        The training *data* loss (no L2 term) against the validation loss, the
        validation score, the learning rate per epoch, and the epoch early
        stopping kept. Needs matplotlib (``pip install "handnet[plot]"``).

        Returns
        -------
        matplotlib.figure.Figure
        """
        self._check_is_fitted()
        from ..plot import curves

        return curves(self, axes, title)

    # --- building --------------------------------------------------------------------

    def _build_network(self, n_features: int, n_outputs: int, dtype: np.dtype[Any]) -> Sequential:
        return dense_network(self, n_features, n_outputs, dtype)

    def _make_trainer(self, network: Sequential, loss: Loss, callbacks: Sequence[Any]) -> Trainer:
        return make_trainer(self, network, loss, callbacks)

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

    def _stream_encoder(self, y: Any, dtype: Any, reset: bool) -> TargetEncoder:
        raise NotImplementedError

    def _validation_class_weight(self, y_train: Any, y_val: Any) -> Array | None:
        """Per-row weights of ``validation_data`` (classifiers: ``class_weight``)."""
        return None

    def _declare_classes(self, classes: Any) -> None:
        raise ValueError(f"{type(self).__name__} does not take classes")

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
            model file. It stores a fingerprint of the training data, hashed
            while the first epochs train: change ``X`` in place during ``fit``
            (from a callback) and ``resume`` will take neither version for it.
        checkpoint_every : int, optional
            Epochs between checkpoints (default: only at the end and on Ctrl-C).
            Mid-run writes are also spaced to cost at most 5 % of the training
            time, at most one a second (:data:`handnet.io.checkpoint.MIN_INTERVAL`).
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
        """``fit``, or ``partial_fit`` (``incremental``: one epoch, continuing).

        Prepares the data, builds the network and the trainer on a first call,
        trains, and records the epochs. The data's checks (``prepare``) and
        ``trainer.fit`` are called from here directly: the warnings they give
        name the caller of ``fit`` by counting frames.
        """
        # Checks the checkpoint arguments and reads (and checks) a run to resume
        # before anything is trained; a resumed run starts like a fresh fit.
        run = CheckpointRun.start(self, checkpoint, checkpoint_every, resume)
        first_call = (
            run.resuming
            or not (incremental or self.warm_start)
            or not getattr(self, "_fitted", False)
        )
        preparation = Preparation(self, incremental, classes, first_call, run)
        with restored_on_failure(self):
            prepare = preparation.out_of_core if is_out_of_core(X) else preparation.in_memory
            data = prepare(X, y, sample_weight, validation_data)

        if first_call:
            self._record_features(X, data.n_features)
            self.network_ = self._build_network(data.n_features, self._n_outputs(), self._dtype)
            self.network_.set_random_state(self._rng)
            start_records(self)
        if first_call or not incremental:
            self._trainer = self._make_trainer(self.network_, self._loss(), callbacks)
        trainer = self._trainer
        trainer.loss = (
            self._loss()
            if data.weighting is None
            else _DatasetWeightedLoss(self._loss(), *data.weighting)
        )
        trainer.callbacks = [*callbacks, print_progress] if self.verbose else list(callbacks)
        trainer.batch_size = resolve_batch_size(self._optimizer(), self.batch_size, data.n_train)
        run.attach(self, trainer, data.fingerprint, data.n_train)
        validate = None if data.validation is None else watch_validation(self, data.validation)

        self._fitted = True  # the network exists: scoring during training needs it
        start_epoch = trainer.epoch
        start_scores = len(trainer.history.validation_score)
        max_iter = 1 if incremental else run.remaining_epochs(self, trainer)
        # partial_fit is one pass by design: not meeting tol in it is no failure to
        # converge (scikit-learn's partial_fit does not warn either).
        trainer.warn_at_max_iter = not incremental
        try:
            # (A with statement, not a call: the warnings' frame counts stay as they are.)
            with self._training_threads():
                if max_iter > 0:  # 0: a resumed run that had already finished
                    trainer.fit(
                        data.X,
                        data.Y,
                        data.weight,
                        max_iter=max_iter,
                        validation=validate,
                    )
        finally:
            try:
                run.finish(trainer)  # may wait for the data's fingerprint (a Ctrl-C there)
            finally:
                record_epochs(self, trainer, start_epoch, start_scores, data.n_train)
        return self

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
