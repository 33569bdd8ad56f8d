"""What a ``fit`` call records on the estimator, and how it takes back a refused call.

The curves (``loss_curve_``, ``validation_scores_``, ``validation_loss_curve_``),
the counters (``n_iter_``, ``t_``), the best epoch (``best_epoch_``,
``best_validation_score_``, ``best_loss_``) and ``history_``, continued across
warm-start fits and ``partial_fit`` calls. ``model`` below is the estimator (a
:class:`~handnet.models.network_estimator._NetworkEstimator`, typed loosely:
that module imports this one).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..training import History, Trainer

Array = NDArray[np.floating]


@contextmanager
def restored_on_failure(model: Any) -> Iterator[None]:
    """Put ``model``'s attributes back as they were if the block raises.

    Checking the data sets attributes as it goes (the dtype, the generator, the
    classes); a call refused half-way must leave the model as it was, or a
    fitted model would go on predicting with, say, the refused y's classes.
    """
    attributes = dict(model.__dict__)
    try:
        yield
    except BaseException:
        model.__dict__.clear()
        model.__dict__.update(attributes)
        raise


def start_records(model: Any) -> None:
    """Empty curves and counters for a fresh fit, and no best epoch or loss yet.

    The last fit's best epoch, score and loss go too: a refit without validation
    data (or one that takes no iteration) must not report them.
    """
    model.loss_curve_ = []
    model.validation_scores_ = None
    model.validation_loss_curve_ = None
    model.t_ = 0
    model.best_loss_ = None
    for name in ("best_epoch_", "best_validation_score_"):
        model.__dict__.pop(name, None)


def print_progress(trainer: Trainer) -> None:
    """The ``verbose=True`` callback: one line per epoch, each loss named for what it is.

    The training loss is the data loss (what the validation loss measures too);
    with an L2 term the objective it adds up to follows in parentheses.
    """
    history = trainer.history
    objective = history.loss[-1]
    data_loss = history.data_loss[-1] if len(history.data_loss) == len(history.loss) else None
    if data_loss is None or data_loss == objective:
        line = f"epoch {trainer.epoch}: training loss {objective:.6f}"
    else:
        line = (f"epoch {trainer.epoch}: training loss {data_loss:.6f} "
                f"(objective with the L2 term {objective:.6f})")
    if history.validation_loss:
        line += f", validation loss {history.validation_loss[-1]:.6f}"
    if history.validation_score:
        line += f", validation score {history.validation_score[-1]:.4f}"
    print(line, flush=True)


def watch_validation(
    model: Any, validation: tuple[Array, Any, Array | None, Array]
) -> Callable[[], tuple[float, float]]:
    """``validate() -> (loss, score)`` on held-out rows, for the trainer.

    The loss is the model's own (weighted like the held-out rows, without
    the L2 term): what early stopping watches and keeps the best of. The
    score (accuracy, or R² for a regressor) is ``validation_scores_``.
    """
    X_val, y_val, w_val, Y_val = validation
    loss = model._loss()

    def validate() -> tuple[float, float]:
        outputs = model._forward_checked(X_val)
        return loss.value(outputs, Y_val, w_val), model._score_outputs(outputs, y_val, w_val)

    if model.validation_scores_ is None:
        model.validation_scores_ = []
        model.validation_loss_curve_ = []
    return validate


def record_epochs(
    model: Any, trainer: Trainer, start_epoch: int, start_scores: int, n_rows: int
) -> None:
    """Add the epochs of this call (from ``start_epoch``, scores from ``start_scores``).

    ``n_rows`` is the number of rows an epoch visits (for ``t_``).
    """
    history = trainer.history
    model.history_ = history
    new_losses = history.loss[len(history.loss) - (trainer.epoch - start_epoch) :]
    model.loss_curve_.extend(new_losses)
    if model.validation_scores_ is not None:
        model.validation_scores_.extend(history.validation_score[start_scores:])
        record_best_epoch(model, history, start_scores)
    # Epochs of this fit (a fresh trainer starts at 0; a resumed one counts
    # the epochs before the interruption too), or all of partial_fit's.
    model.n_iter_ = trainer.epoch
    model.t_ += (trainer.epoch - start_epoch) * n_rows
    if model.loss_curve_:
        model.best_loss_ = min(model.loss_curve_)


def record_best_epoch(model: Any, history: History, start: int) -> None:
    """``validation_loss_curve_``, ``best_epoch_`` and ``best_validation_score_``.

    The kept epoch is the one of the lowest validation loss (the trainer
    restores its parameters); ``best_validation_score_`` is *its* score, so
    it describes the model that ``fit`` returns.
    """
    curve = getattr(model, "validation_loss_curve_", None)
    if curve is None:
        # A model from a file written before the validation loss was recorded: its
        # earlier epochs have scores but no losses (NaN), so the curves line up.
        earlier = len(model.validation_scores_ or []) - (len(history.validation_score) - start)
        curve = model.validation_loss_curve_ = [math.nan] * max(earlier, 0)
    curve.extend(history.validation_loss[start:])
    if history.best_epoch is None or model.validation_scores_ is None:
        return
    if not model._trainer.finished:
        # Interrupted: the model holds the last step's parameters (so that a resume
        # continues exactly), not the best epoch's, which are restored at the end.
        for name in ("best_epoch_", "best_validation_score_"):
            model.__dict__.pop(name, None)
        return
    # Epochs of earlier warm-start fits come before this fit's in the curves.
    offset = len(curve) - len(history.validation_loss)
    model.best_epoch_ = offset + history.best_epoch
    model.best_validation_score_ = model.validation_scores_[model.best_epoch_ - 1]
