"""Training by epochs (every optimizer but L-BFGS): the loop over epochs.

Each epoch runs through the trainer's ``run_epoch`` (or ``run_stream_epoch``), under
the divergence checks (:class:`~handnet.training.safety.Rollback`); then its loss
(the objective, and the data loss without the penalty), learning rate and time are
recorded, the schedule and the stopping rule hear of it, the
callbacks are called, and a checkpoint is written every ``checkpoint_every`` epochs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from ..data.streaming import RowBlocks
from ..exceptions import DivergenceError
from ..nn.network import Sequential
from .history import PenaltyMean
from .protocol import TrainerView
from .safety import Rollback, divergence_message, parameters_finite
from .stopping import Validation

Array = NDArray[np.floating]


def fit_epochs(
    trainer: TrainerView,
    X: Array | RowBlocks,
    Y: Array | None,
    sample_weight: Array | None,
    max_iter: int,
    validation: Validation | None,
) -> None:
    """Run up to ``max_iter`` epochs (see :meth:`Trainer.fit`)."""
    network = trainer.network
    interrupt = trainer._interrupt
    assert interrupt is not None
    stopping = trainer._stopping
    last_epoch = trainer.epoch + max_iter
    every = trainer.checkpoint_every
    # One deterministic step per epoch: there any clear rise of the loss says the step
    # is too large; mini-batch epochs' mean losses wobble, so only a large rise does.
    n_rows = X.n_rows if isinstance(X, RowBlocks) else X.shape[0]
    full_batch = trainer.batch_size is None or trainer.batch_size >= n_rows
    training_loss = _training_loss(trainer, X, Y, sample_weight)
    rollback = Rollback(network.flat_parameters, training_loss)
    while trainer.epoch < last_epoch:
        penalty_before = _start_penalty(trainer)
        loss = _checked_epoch(trainer, rollback, X, Y, sample_weight)
        if loss is None:
            # Stopped inside the epoch: its steps are kept, but it is not a
            # finished epoch; trainer._progress says where it stopped.
            trainer.interrupted = True
            break
        data_loss = loss - _epoch_penalty(trainer, penalty_before, full_batch)
        converged = _record_epoch(trainer, network, loss, data_loss, validation)
        if converged and trainer.warn_at_max_iter:
            losses = trainer.history.loss
            if stopping.oscillated(losses, full_batch):
                stopping.warn_oscillation(losses, trainer.epoch, trainer.current_lr,
                                          type(trainer.optimizer).__name__.lower())
        # Callbacks hear every finished epoch, the one that meets the stopping
        # rule included (a logger or checkpoint would otherwise miss the last).
        callbacks = trainer.callbacks
        stop_requested = bool(callbacks) and any(callback(trainer) for callback in callbacks)
        if converged:
            trainer.converged = True
        if converged or stop_requested:
            break
        if interrupt.requested and trainer.epoch < last_epoch:
            trainer.interrupted = True
            break
        if every and trainer.epoch % every == 0 and trainer.epoch < last_epoch:
            trainer._save_checkpoint()
    else:
        stopping.warn_not_converged(
            trainer.epoch, trainer.warn_at_max_iter, trainer.history.loss, trainer.current_lr
        )
    if trainer.interrupted:
        # The checkpoint holds the current parameters (not the best validation
        # epoch's), so that resuming continues exactly where training stopped.
        trainer._save_checkpoint()
        return
    trainer._finish(validation)


def _training_loss(
    trainer: TrainerView, X: Array | RowBlocks, Y: Array | None, sample_weight: Array | None
) -> Callable[[], float]:
    """The full training loss at the current parameters, for :meth:`Rollback.restore`."""

    def training_loss() -> float:
        if isinstance(X, RowBlocks):
            return trainer.compute_gradients(X, None, None, training=False)
        assert Y is not None
        loss, _ = trainer.loss(trainer.network.forward(X, training=False), Y, sample_weight)
        return loss

    return training_loss


def _start_penalty(trainer: TrainerView) -> float | None:
    """Before an epoch: start the penalty's mean afresh (unless an epoch goes on); its value."""
    if trainer._progress is None or not hasattr(trainer, "_epoch_penalty"):
        trainer._epoch_penalty = PenaltyMean()
    return trainer.penalty_value()


def _epoch_penalty(trainer: TrainerView, before: float | None, full_batch: bool) -> float:
    """The penalty's mean over the epoch's steps, to subtract from its mean objective.

    The generic step records each step's; the seed's lean kernels take their
    steps without it: a full-batch step's penalty is the one at the epoch's
    start, per-example SGD's is taken as the mean of its values at the start
    and the end.
    """
    mean = trainer._epoch_penalty.mean()
    if mean is not None or before is None:
        return 0.0 if mean is None else mean
    if full_batch:
        return before
    after = trainer.penalty_value()
    return 0.5 * (before + (after or 0.0))


def _checked_epoch(
    trainer: TrainerView,
    rollback: Rollback,
    X: Array | RowBlocks,
    Y: Array | None,
    sample_weight: Array | None,
) -> float | None:
    """One epoch; after a divergence, the parameters are rolled back and it is raised."""
    rollback.mark()
    try:
        if isinstance(X, RowBlocks):
            loss = trainer.run_stream_epoch(X)
        else:
            assert Y is not None
            loss = trainer.run_epoch(X, Y, sample_weight)
    except DivergenceError:
        rollback.restore()
        raise
    if not ((loss is None or math.isfinite(loss)) and parameters_finite(rollback.parameters)):
        rollback.restore()
        message = divergence_message("parameters", trainer.epoch, trainer.current_lr)
        raise DivergenceError(message)
    return loss


def _record_epoch(
    trainer: TrainerView,
    network: Sequential,
    loss: float,
    data_loss: float,
    validation: Validation | None,
) -> bool:
    """A finished epoch: record it, tell the schedule and the stopping rule; whether to stop."""
    history = trainer.history
    history.loss.append(loss)
    history.data_loss.append(data_loss)
    history.learning_rate.append(trainer.current_lr)
    history.time.append(trainer.elapsed())
    trainer.epoch += 1
    trainer.schedule.observe(loss)
    stopping = trainer._stopping
    validation_loss = None
    if validation is not None:
        validation_loss = stopping.record_validation(history, validation)
    return stopping.update(loss, validation_loss, network)
