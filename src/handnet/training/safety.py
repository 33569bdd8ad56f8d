"""The training loop's safety nets: Ctrl-C, divergence and its rollback.

* :class:`InterruptGuard` turns the first Ctrl-C into a request to stop at the next
  step boundary; :func:`report_interrupt` says where training stopped.
* :class:`Rollback` keeps the parameters of the last two epochs' starts and, after
  a divergence, sends the model back to the latest of them with a finite loss.
"""

from __future__ import annotations

import logging
import math
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..data.validation import all_finite
from .history import EpochProgress

#: The trainer's reports that are neither errors nor warnings about the model (an
#: interrupted fit). With logging not configured, Python prints them to stderr.
logger = logging.getLogger("handnet.training")

#: ``record.handnet_event`` of the log record that reports an interrupted fit (a front
#: end that says it in its own words filters that record out).
INTERRUPTED_EVENT = "interrupted"

Array = NDArray[np.floating]


def divergence_message(what: str, epoch: int, learning_rate: float) -> str:
    return (
        f"training diverged: the {what} became non-finite in epoch {epoch + 1}. "
        f"The model keeps its last finite parameters. Likely causes: the learning rate "
        f"({learning_rate:g}) is too large (try 10x smaller), or the features are not "
        "scaled (standardise them: zero mean, unit variance)."
    )


class InterruptGuard:
    """Turn the first Ctrl-C into a request to stop at the next step boundary.

    A second Ctrl-C raises ``KeyboardInterrupt`` as usual. Outside the main thread
    (where signal handlers cannot be installed) this does nothing.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            try:
                self._previous = signal.signal(signal.SIGINT, self._handle)
                self._installed = True
            except ValueError:  # pragma: no cover - embedded interpreters
                self._installed = False
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(
            "\nInterrupt received: stopping after the current step "
            "(press Ctrl-C again to abort at once).",
            file=sys.stderr,
            flush=True,
        )

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)


def stop_inside_epoch(
    interrupt: InterruptGuard | None, progress: EpochProgress, n_units: int
) -> bool:
    """Whether an interrupt asks to stop between two steps of an unfinished epoch."""
    return interrupt is not None and interrupt.requested and progress.position < n_units


def report_interrupt(
    epoch: int,
    progress: EpochProgress | None,
    n_units: int,
    unit: str,
    checkpoint_configured: bool,
    last_checkpoint: str | None,
) -> None:
    """Say on :data:`logger` where an interrupted fit stopped and whether it was saved."""
    where = f"{epoch} complete epoch(s)"
    if progress is not None:
        where += f" and {progress.position} of {n_units} {unit} of epoch {epoch + 1}"
    if not checkpoint_configured:
        saved = (
            "No checkpoint is configured: pass checkpoint=PATH to fit to keep the "
            "progress across runs."
        )
    else:
        saved = last_checkpoint or "The checkpoint was written."
    logger.warning(
        "Training interrupted after %s; the model keeps its last completed step and its "
        "history. %s", where, saved, extra={"handnet_event": INTERRUPTED_EVENT},
    )


def parameters_finite(parameters: Array) -> bool:
    """Whether every parameter is finite: one sum, under fit's np.errstate.

    (The sum of finite values is finite unless it overflows, and then the
    elementwise test decides; this runs once an epoch, which for the seed's
    full-batch GD is once a step.)
    """
    if parameters.size <= 64:  # a linear model's: a Python sum costs half a ufunc call
        return math.isfinite(sum(parameters.ravel().tolist())) or all_finite(parameters)
    return math.isfinite(np.add.reduce(parameters, axis=None)) or all_finite(parameters)


class Rollback:
    """The parameters at the start of this epoch and of the one before.

    Where a divergence sends the model back to: the nearest with a finite loss.

    Parameters
    ----------
    parameters : ndarray
        The network's flat parameter vector (restored in place).
    training_loss : callable ``training_loss() -> float``
        The full training loss at the current parameters.
    """

    def __init__(self, parameters: Array, training_loss: Callable[[], float]) -> None:
        self.parameters = parameters
        self.training_loss = training_loss
        self.snapshot: Array | None = None
        self.previous: Array | None = None

    def mark(self) -> None:
        """An epoch starts: keep its parameters (and the last epoch's).

        The copy goes into the snapshot before last, which is no longer needed: two
        arrays for the whole fit, not one new array an epoch.
        """
        spare = self.previous
        if spare is None or spare.shape != self.parameters.shape:
            spare = np.empty_like(self.parameters)
        spare[...] = self.parameters  # (np.copyto's dispatch costs more than the copy here)
        self.previous, self.snapshot = self.snapshot, spare

    def restore(self) -> None:
        """After a divergence, go back to the latest parameters with a finite loss.

        Finite parameters are not enough: one huge step leaves them finite but
        so large that the loss (and every prediction) overflows. The current
        parameters, then the snapshots (newest first), are tried on the full
        training loss; failing all, the newest finite ones are kept.
        """
        parameters = self.parameters
        snapshots = (self.snapshot, self.previous)
        candidates = [parameters.copy(), *(s for s in snapshots if s is not None)]
        finite = [c for c in candidates if np.isfinite(c).all()]
        for candidate in finite:
            parameters[...] = candidate
            if math.isfinite(self.training_loss()):
                return
        parameters[...] = finite[0] if finite else candidates[-1]
