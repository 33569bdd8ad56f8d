"""The hyperparameters every estimator shares: their checks, and what ``"auto"`` means.

``model`` below is the estimator (a :class:`~handnet.models.network_estimator._NetworkEstimator`,
typed loosely: that module imports this one).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..data.validation import check_class_weight, check_interval, check_positive, check_random_state
from ..nn.activations import hidden_activations
from ..nn.penalties import PENALTIES
from ..optim.optimizers import Optimizer, is_full_batch

#: The step size of ``optimizer="auto"`` when it picks gradient descent.
AUTO_LEARNING_RATE = 0.1

#: The hyperparameters that are on/off switches (``verbose`` is apart: it may be a level).
FLAGS = ("shuffle", "early_stopping", "warm_start")


def check_hyperparameters(model: Any) -> None:
    """Refuse a bad hyperparameter of ``model``, in the order they are listed here."""
    check_positive(model.max_iter, "max_iter", integer=True)
    check_positive(model.alpha, "alpha", allow_zero=True)
    if model.penalty is not None and model.penalty not in PENALTIES:
        raise ValueError(
            f"penalty must be None or one of {list(PENALTIES)}, got {model.penalty!r} "
            "(register your own with handnet.nn.penalties.PENALTIES.register)"
        )
    check_positive(model.n_iter_no_change, "n_iter_no_change", integer=True)
    if model.tol is not None:
        check_positive(model.tol, "tol", allow_zero=True)
    if model.clip_norm is not None:
        check_positive(model.clip_norm, "clip_norm")
    if not isinstance(model.optimizer, Optimizer) and not (
        model.learning_rate is None and model._auto_learning_rate
    ):
        check_positive(model.learning_rate, "learning_rate")
    if model.batch_size is not None and model.batch_size != "auto":
        check_positive(model.batch_size, "batch_size", integer=True)
    for flag in FLAGS:
        check_flag(getattr(model, flag), flag)
    check_verbose(model.verbose)

    # Checked with or without early_stopping: a bad value is a mistake either way.
    check_interval(model.validation_fraction, "validation_fraction", 0.0, 1.0)
    check_random_state(model.random_state)
    if model._is_classifier:
        check_class_weight(getattr(model, "class_weight", None))
    for layer_size in model._hidden_layers():
        check_positive(layer_size, "hidden_layer_sizes entries", integer=True)
    if model._hidden_activation() not in hidden_activations():
        raise ValueError(
            f"activation must be one of {list(hidden_activations())}, "
            f"got {model._hidden_activation()!r}"
        )
    check_interval(model._dropout_rate(), "dropout", 0.0, 1.0, left_closed=True)


def check_flag(value: Any, name: str) -> None:
    """Refuse an on/off hyperparameter that is not a ``bool`` or ``numpy.bool_``.

    As scikit-learn's ``"boolean"`` constraint: ``0``, ``1`` or ``"yes"`` is refused,
    not read as true or false (the string ``"False"`` would be true).

    Parameters
    ----------
    value : object
        The hyperparameter's value.
    name : str
        Its name, for the message.

    Raises
    ------
    TypeError
        ``value`` is not a bool; the message names ``name`` and shows ``value``.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r} ({type(value).__name__})")


def check_verbose(value: Any) -> None:
    """Refuse a ``verbose`` that is neither a flag nor a level.

    As scikit-learn's ``"verbose"`` constraint: a ``bool``, ``numpy.bool_`` or an
    integer ``>= 0`` (of any integral type, NumPy's included).

    Raises
    ------
    TypeError
        ``value`` is neither a bool nor an integer.
    ValueError
        ``value`` is a negative integer.
    """
    if isinstance(value, (bool, np.bool_)):
        return
    if not isinstance(value, numbers.Integral):
        raise TypeError(
            f"verbose must be a bool or an integer >= 0, got {value!r} ({type(value).__name__})"
        )
    if value < 0:
        raise ValueError(f"verbose must be a bool or an integer >= 0, got {value!r}")


def check_batch_size(batch_size: int | str | None, n_samples: int, incremental: bool) -> None:
    """In fit, a batch larger than the data is an error, not silently one full batch.

    (Checked once the targets have passed, so that one sample or one class
    gets its own message first.) partial_fit's chunks of a stream may be
    shorter than a batch: they then make one batch.
    """
    if incremental or batch_size is None or batch_size == "auto" or int(batch_size) <= n_samples:
        return
    raise ValueError(
        f"batch_size={batch_size} is larger than the number of training samples "
        f"(n_samples = {n_samples}); pass batch_size <= {n_samples}, 'auto' "
        "(min(200, n_samples)) or None (full batch)"
    )


def resolve_batch_size(
    optimizer: str | Optimizer, batch_size: int | str | None, n_samples: int
) -> int | None:
    """The rows per step for the trainer: ``None`` for a full batch (always for L-BFGS)."""
    if is_full_batch(optimizer):
        return None
    if batch_size == "auto":
        return min(200, n_samples)
    return None if batch_size is None else min(int(batch_size), n_samples)


def partial_fit_available(model: Any) -> bool:
    """``partial_fit`` exists only for optimizers that take steps on batches, without
    early stopping.

    (Like scikit-learn's ``LogisticRegression``, a linear model with its default
    ``optimizer="auto"``, which then means L-BFGS, has none. scikit-learn's MLPs
    refuse ``partial_fit`` with ``early_stopping=True``: one call is one epoch on
    one chunk, with no run to stop or best epoch to restore, and ignoring the
    setting silently would mislead.)
    """
    if model.early_stopping is True:
        raise AttributeError(
            "partial_fit is not available with early_stopping=True (as in scikit-learn): "
            "each call trains one epoch on the chunk it is given. Set early_stopping=False "
            "and score held-out data between the calls, or use fit(X, y, "
            "validation_data=(X_val, y_val))"
        )
    optimizer = model._optimizer()
    if is_full_batch(optimizer):
        raise AttributeError(
            "partial_fit needs a stochastic optimizer (e.g. optimizer='sgd' or 'adam'); "
            "L-BFGS trains on the full batch only (optimizer='auto' with no learning_rate, "
            "batch_size, schedule or clip_norm means L-BFGS)"
        )
    return True
