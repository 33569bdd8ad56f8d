"""Checking and encoding the data of one ``fit`` call: in memory, or out of core.

A :class:`Preparation` is made for one call: its :meth:`~Preparation.in_memory`
and :meth:`~Preparation.out_of_core` check the data, the hyperparameters (which
need the number of rows) and the targets in the order the error messages
promise, set what the data decides on the estimator (the dtype, the generator,
the classes or outputs), and split off early stopping's rows. ``model`` is the
estimator (a :class:`~handnet.models.network_estimator._NetworkEstimator`,
typed loosely: that module imports this one).

The estimator's own checks of ``X`` and ``y`` are called from those two
methods directly, never through a helper: the warnings they give name the
caller of ``fit`` by counting frames (``stacklevel``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..data.streaming import RowBlocks, materialize
from ..data.validation import check_features, check_sample_weight
from .hyperparameters import check_batch_size
from .splits import split_blocks, validation_split

Array = NDArray[np.floating]


@dataclass
class Prepared:
    """The training data of one ``fit`` call, checked and encoded.

    Attributes
    ----------
    n_features : int
    X, Y, weight :
        What the trainer trains on: in-memory arrays, or a
        :class:`~handnet.data.streaming.RowBlocks` (with ``Y`` and ``weight`` ``None``:
        the blocks carry them).
    weighting : (n_samples, mean_weight) or None
        For :class:`~handnet.models.weighted_loss._DatasetWeightedLoss` when the
        rows are weighted.
    validation : (X_val, y_val, w_val, Y_val) or None
        In memory; ``Y_val`` encoded for the loss like ``Y``.
    checked : (X, Y, weight)
        All the training data as checked, before early stopping's split (out of
        core: the blocks' fingerprint, ``None``, ``None``).
    """

    n_features: int
    X: Any
    Y: Any
    weight: Any
    weighting: tuple[int, float] | None
    validation: tuple[Any, Any, Any, Any] | None
    checked: tuple[Any, Any, Any]

    @property
    def n_train(self) -> int:
        return len(self.X)

    @property
    def fingerprint(self) -> tuple[Any, ...]:
        """What :meth:`handnet.io.CheckpointRun.attach` fingerprints."""
        validation_arrays = (None, None, None) if self.validation is None else self.validation[:3]
        return (*self.checked, *validation_arrays)


@dataclass
class Preparation:
    """Checks and encodes the data of one ``fit`` or ``partial_fit`` call.

    Parameters
    ----------
    model : the estimator
    incremental : bool
        ``partial_fit`` (one epoch, no early stopping, no batch-size check).
    classes : array-like or None
        ``partial_fit``'s ``classes``.
    first_call : bool
        Whether the call starts afresh (sets the dtype, the generator, the targets).
    run : handnet.io.CheckpointRun
        Holds a resumed run's early-stopping split.
    """

    model: Any
    incremental: bool
    classes: Any
    first_call: bool
    run: Any

    def in_memory(
        self, X: Any, y: Any, sample_weight: Any, validation_data: tuple[Any, Any] | None
    ) -> Prepared:
        """Check and encode in-memory data (and split off early stopping's rows)."""
        model = self.model
        X_checked = model._validate_X(X, reset=self.first_call)
        n_samples, n_features = X_checked.shape
        model._validate_hyperparameters(n_samples)
        reset_targets = self._set_up(X_checked.dtype)
        dtype = model._dtype
        y = model._check_y(y, n_samples)
        Y = model._encode_targets(y, n_samples, dtype, reset=reset_targets)
        check_batch_size(model.batch_size, n_samples, self.incremental)
        weights = self._training_weights(sample_weight, y, n_samples, dtype)

        X_train, Y_train, w_train = X_checked, Y, weights
        validation = None
        if validation_data is not None:
            X_val = (
                model._validate_X(validation_data[0], reset=False)
                if not self.first_call
                else check_features(
                    model._as_rows(validation_data[0], reset=False),
                    "X_val",
                    dtype,
                    n_features,
                    estimator_name=type(model).__name__,
                )
            )
            y_val = validation_data[1]
            w_val = model._validation_class_weight(y, y_val)
            validation = self._validation_set(X_val, y_val, w_val)
        elif model.early_stopping and not self.incremental:
            X_train, Y_train, w_train, validation = self._hold_out(X_checked, y, Y, weights)

        weighting = None
        if w_train is not None:
            weighting = (len(w_train), float(np.mean(w_train, dtype=np.float64)))
        checked = (X_checked, Y, weights)
        return Prepared(n_features, X_train, Y_train, w_train, weighting, validation, checked)

    def out_of_core(
        self, X: Any, y: Any, sample_weight: Any, validation_data: tuple[Any, Any] | None
    ) -> Prepared:
        """Wrap out-of-core data in a :class:`~handnet.data.streaming.RowBlocks` (reading nothing).

        The checks that need the values (numbers, finiteness, known labels) run on
        each block as it is first read; those that need only shapes run here. A
        classifier's fresh ``fit`` reads ``y`` once to learn ``classes_``.
        ``early_stopping`` holds out whole blocks (see :mod:`handnet.data.streaming`).
        """
        model = self.model
        n_samples, n_features = self._check_stream_shape(X)
        model._validate_hyperparameters(n_samples)
        kind = np.dtype(X.dtype)
        reset_targets = self._set_up(
            kind if kind in (np.float32, np.float64) else np.dtype(np.float64)
        )
        dtype = model._dtype
        y = _stream_targets(y, n_samples)
        encoder = model._stream_encoder(y, dtype, reset_targets)
        check_batch_size(model.batch_size, n_samples, self.incremental)
        weights = None
        if sample_weight is not None:
            weights = check_sample_weight(materialize(sample_weight), n_samples, dtype)
        data = RowBlocks(X, y, weights, encoder, dtype)
        train = data
        validation: tuple[Any, Any, Any, Any] | None = None
        if validation_data is not None:
            X_val = check_features(
                materialize(validation_data[0]),
                "X_val",
                dtype,
                n_features,
                estimator_name=type(model).__name__,
            )
            validation = self._validation_set(X_val, materialize(validation_data[1]), None)
        elif model.early_stopping and not self.incremental:
            train, held_out = split_blocks(data, self.run, model.validation_fraction, model._rng)
            X_val, y_val, w_val = held_out.read_all()
            validation = self._validation_set(X_val, y_val, _scored_weights(w_val))
        weighting = None
        if weights is not None or encoder.class_weight is not None:
            weighting = _block_weighting(train)
        checked = (data.lazy_fingerprint(), None, None)
        return Prepared(n_features, train, None, None, weighting, validation, checked)

    def _set_up(self, dtype: np.dtype[Any]) -> bool:
        """A fresh fit's dtype and generator, a first ``partial_fit``'s classes.

        Returns whether ``y`` sets the targets' classes / outputs: a fresh fit learns
        them from ``y``; a classifier's first partial_fit has them from ``classes``.
        """
        model = self.model
        if self.first_call:
            model._dtype = dtype
            model._rng = np.random.default_rng(model.random_state)
        if self.incremental and self.classes is not None and self.first_call:
            model._declare_classes(self.classes)
        return self.first_call and not (self.incremental and model._is_classifier)

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
            Y_val = self.model._encode_targets(y_val, n_val, self.model._dtype, reset=False)
        except ValueError as error:
            # Scored as they were, labels of another kind (strings for integer classes)
            # would score 0 every epoch and stop training at once.
            raise ValueError(f"validation_data: {error}") from None
        return X_val, y_val, w_val, Y_val

    # --- in memory --------------------------------------------------------------------

    def _training_weights(
        self, sample_weight: Any, y: NDArray[Any], n_samples: int, dtype: Any
    ) -> Array | None:
        """Each row's weight in the loss: ``sample_weight`` times its class's weight."""
        weights = check_sample_weight(sample_weight, n_samples, dtype)
        class_weights = self.model._class_sample_weight(y)
        if class_weights is not None:
            weights = class_weights if weights is None else weights * class_weights
            if not np.any(weights > 0):
                class_weight = getattr(self.model, "class_weight", None)
                raise ValueError(
                    f"every training sample has weight 0: class_weight={class_weight!r} "
                    "(times sample_weight) gives weight 0 to every class in y; give some "
                    "class a positive weight"
                )
        return weights

    def _hold_out(
        self, X: Array, y: NDArray[Any], Y: Array, weights: Array | None
    ) -> tuple[Array, Array, Array | None, tuple[Array, Any, Array | None, Array]]:
        """Early stopping's rows, split off: the training rows and the validation set."""
        model = self.model
        split = functools.partial(
            validation_split,
            fraction=model.validation_fraction,
            rng=model._rng,
            stratified=model._is_classifier,
        )
        train_index, val_index = self.run.validation_split(split)(y, len(X))
        X_train, Y_train = X[train_index], Y[train_index]
        w_train = None if weights is None else weights[train_index]
        X_val = X[val_index]
        y_val = y[val_index]
        # The held-out score is weighted like the loss (sample and class weights).
        w_val = _scored_weights(None if weights is None else weights[val_index])
        if w_train is not None and not np.any(w_train > 0):
            raise ValueError(
                "every training sample left after the early-stopping split has "
                "sample weight 0; lower validation_fraction or check sample_weight"
            )
        return X_train, Y_train, w_train, self._validation_set(X_val, y_val, w_val)

    # --- out of core ------------------------------------------------------------------

    def _check_stream_shape(self, X: Any) -> tuple[int, int]:
        """``(n_samples, n_features)`` of out-of-core ``X``, checked from its shape and dtype."""
        shape = tuple(int(n) for n in X.shape)
        if len(shape) != 2:
            raise ValueError(
                f"Expected 2D array, got {len(shape)}D array instead: X has shape {shape}; "
                "pass (n_samples, n_features)"
            )
        n_samples, n_features = shape
        if n_samples < 1 or n_features < 1:
            raise ValueError(f"Found array with shape {shape}; at least 1 sample and 1 feature")
        if not self.first_call:
            model = self.model
            model._check_is_fitted()
            if n_features != model.n_features_in_:
                raise ValueError(
                    f"X has {n_features} features, but {type(model).__name__} is expecting "
                    f"{model.n_features_in_} features as input (it was fitted on that many); "
                    "pass data with the same columns as at fit time"
                )
        if np.dtype(X.dtype).kind not in "biuf":
            raise ValueError(f"X has dtype {X.dtype}, but features must be numbers")
        return n_samples, n_features


def _scored_weights(w_val: Array | None) -> Array | None:
    """The held-out rows' weights for scoring: held-out rows that all weigh 0 are
    scored unweighted instead."""
    if w_val is not None and not np.any(w_val > 0):
        return None
    return w_val


def _stream_targets(y: Any, n_samples: int) -> Any:
    """``y`` for streamed ``X``: given, one per row (an array-like stays on disk)."""
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
    return y


def _block_weighting(train: RowBlocks) -> tuple[int, float]:
    """``(n_rows, mean weight)`` of the training blocks, counted block by block."""
    total = train.total_weight()
    if total <= 0:
        raise ValueError(
            "every training sample has weight 0 (sample and class weights); "
            "check sample_weight and class_weight"
        )
    return (train.n_rows, total / train.n_rows)
