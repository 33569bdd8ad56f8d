"""A trainer's run as a checkpointable tree, and back (:meth:`Trainer.state_dict`).

Everything besides the network's parameters that decides the rest of the run:
epoch and flags, history, the stopping rule's counters, the generator's state,
the optimizer's and the schedule's state, and where an interrupted epoch stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .history import EpochProgress, History, PenaltyMean
from .protocol import TrainerView
from .state import check_rng_state, check_trainer_state, copy_tree


def state_dict(trainer: TrainerView) -> dict[str, Any]:
    """The trainer's state, copied (see :meth:`Trainer.state_dict`)."""
    history = trainer.history
    state = {
        "epoch": trainer.epoch,
        "converged": trainer.converged,
        "interrupted": trainer.interrupted,
        "finished": trainer.finished,
        "initial_learning_rate": float(trainer.initial_learning_rate),
        "history": {
            "loss": [float(v) for v in history.loss],
            "validation_score": [float(v) for v in history.validation_score],
            "learning_rate": [float(v) for v in history.learning_rate],
            "validation_loss": [float(v) for v in history.validation_loss],
            "data_loss": [float(v) for v in history.data_loss],
            "time": [float(v) for v in history.time],
        },
        "stopping": trainer._stopping.state_dict(),
        "rng": trainer.rng.bit_generator.state,
        "optimizer": _optimizer_state(trainer),
        "schedule": {
            "type": type(trainer.schedule).__name__,
            "state": trainer.schedule.state_dict(),
        },
        "progress": _progress_state(trainer._progress, trainer._epoch_penalty),
    }
    copied: dict[str, Any] = copy_tree(state)
    return copied


def _optimizer_state(trainer: TrainerView) -> dict[str, Any]:
    optimizer = trainer.optimizer
    record = {"type": type(optimizer).__name__, **optimizer.state_dict()}
    if optimizer.full_batch:
        # The full-batch driver's last decrease: a resumed run makes the same stop test.
        pending = trainer._lbfgs_pending
        record["pending"] = None if pending is None else list(pending)
    return record


def _progress_state(
    progress: EpochProgress | None, penalty: PenaltyMean
) -> dict[str, Any] | None:
    if progress is None:
        return None
    return {
        "order": None if progress.order is None else progress.order.astype(np.int64),
        "position": progress.position,
        "total": progress.total,
        "weight_total": progress.weight_total,
        # The penalty's mean over the epoch's steps so far (history.data_loss).
        "penalty_total": penalty.total,
        "penalty_weight": penalty.weight,
        "penalty_steps": penalty.steps,
    }


def load_state_dict(trainer: TrainerView, state: Mapping[str, Any]) -> None:
    """Check ``state``, then restore it into ``trainer`` (see :meth:`Trainer.load_state_dict`)."""
    network = trainer.network
    optimizer = trainer.optimizer
    check_trainer_state(
        state,
        network.n_parameters,
        network.dtype,
        type(optimizer).__name__,
        type(trainer.schedule).__name__,
        optimizer,
        network.n_buffer_values,
    )
    best_buffers = state["stopping"].get("best_buffers")
    if best_buffers is not None:
        try:
            network.check_buffer_vector(best_buffers)
        except ValueError as error:
            raise ValueError(f"trainer state field 'stopping.best_buffers': {error}") from None
    state = copy_tree(state)
    _load_rng(trainer, state["rng"])
    _load_optimizer(trainer, state["optimizer"])
    trainer.schedule.load_state_dict(state["schedule"]["state"])
    trainer.epoch = state["epoch"]
    trainer.converged = state["converged"]
    trainer.interrupted = state["interrupted"]
    trainer.finished = state["finished"]
    trainer.initial_learning_rate = state["initial_learning_rate"]
    history = state["history"]
    trainer.history = History(
        loss=list(history["loss"]),
        validation_score=list(history["validation_score"]),
        learning_rate=list(history["learning_rate"]),
        validation_loss=list(history.get("validation_loss", [])),
        data_loss=list(history.get("data_loss", [])),
        time=list(history.get("time", [])),
    )
    trainer._stopping.load_state_dict(state["stopping"])
    progress = state["progress"]
    trainer._progress = (
        None
        if progress is None
        else EpochProgress(
            None if progress["order"] is None else progress["order"].astype(np.intp),
            progress["position"],
            progress["total"],
            progress["weight_total"],
        )
    )
    trainer._epoch_penalty = PenaltyMean(
        *(
            (0.0, 0.0, 0) if progress is None
            else (progress.get("penalty_total", 0.0), progress.get("penalty_weight", 0.0),
                  int(progress.get("penalty_steps", 0)))
        )
    )
    trainer._resuming = True


def _load_rng(trainer: TrainerView, rng_state: dict[str, Any]) -> None:
    if type(trainer.rng.bit_generator).__name__ == rng_state["bit_generator"]:
        # In place: the model and its dropout layers share this generator.
        trainer.rng.bit_generator.state = rng_state
    else:
        trainer.rng = check_rng_state(rng_state)
        trainer.network.set_random_state(trainer.rng)


def _load_optimizer(trainer: TrainerView, opt: dict[str, Any]) -> None:
    trainer.optimizer.load_state_dict(
        {k: v for k, v in opt.items() if k not in ("type", "pending")}
    )
    pending = opt.get("pending")
    trainer._lbfgs_pending = None if pending is None else (pending[0], pending[1])
