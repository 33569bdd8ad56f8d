"""When training stops: the stopping rule, early stopping on validation data, and the
warnings about a run that did not converge (``max_iter``) or that oscillated."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..exceptions import ConvergenceWarning, sklearn_compatible
from ..nn.network import Sequential
from .history import History

Array = NDArray[np.floating]

Validation = Callable[[], "tuple[float, float]"]
"""Scores the network on held-out data: returns ``(loss, score)`` (score: higher is better)."""

#: The warnings below name the line that called :meth:`Trainer.fit`: 1 is the
#: warning's own method, 2 the fit's driver (epochs or L-BFGS), 3 ``Trainer.fit``.
_CALLER_OF_FIT = 4


class StoppingRule:
    """scikit-learn's rule: stop after ``n_iter_no_change`` epochs without a gain of ``tol``.

    On the training loss, or on the validation loss when there is one; the
    parameters of the lowest validation loss so far are kept. ``tol=None`` never stops.
    """

    #: A full-batch training loss that rose this far above its lowest value so far
    #: (relative to it, plus ``tol``) within the stopping rule's window did not settle.
    OSCILLATION = 0.1
    #: The same for mini-batch epochs, whose mean losses wobble by nature: a rise by
    #: half the lowest loss, and by a twentieth of the first epoch's (so that the
    #: wobble of a loss near 0 is no rise).
    MINI_BATCH_OSCILLATION = 0.5
    MINI_BATCH_FLOOR = 0.05

    def __init__(self, tol: float | None, n_iter_no_change: int) -> None:
        self.tol = tol
        self.n_iter_no_change = int(n_iter_no_change)
        self.no_improvement = 0
        self.best_loss = math.inf
        self.best_score = -math.inf
        self.best_parameters: Array | None = None
        #: The best epoch's buffers (running statistics; ``Sequential.buffer_vector``):
        #: the model it restores is the one that was scored.
        self.best_buffers: Array | None = None

    def update(self, loss: float, validation_loss: float | None, network: Sequential) -> bool:
        """Count an epoch; whether the rule says stop (the epoch's parameters are the network's)."""
        monitored = loss if validation_loss is None else validation_loss
        if validation_loss is not None and validation_loss < self.best_loss:
            self.best_parameters = network.flat_parameters.copy()
            self.best_buffers = network.buffer_vector()
        improved = self.tol is None or monitored <= self.best_loss - self.tol
        self.best_loss = min(self.best_loss, monitored)
        self.no_improvement = 0 if improved else self.no_improvement + 1
        return self.tol is not None and self.no_improvement >= self.n_iter_no_change

    def record_validation(self, history: History, validation: Validation) -> float:
        """Score the epoch on the validation data, record it; returns the validation loss."""
        validation_loss, score = validation()
        history.validation_loss.append(validation_loss)
        history.validation_score.append(score)
        self.best_score = max(self.best_score, score)
        return validation_loss

    def oscillated(self, losses: list[float], full_batch: bool = True) -> bool:
        """Whether the rule fired on a loss that went up, not on a plateau.

        The rule counts epochs without improvement; a step size too large for the
        data (unscaled features, large weights) also produces them, with the loss
        jumping around: 0.69, 1.25, 0.73, 0.63, 1.54, ... Such a stop is no
        convergence. Full-batch gradient descent lowers the loss at every step
        when the step is small enough, so a clear rise is the sign; a loss still
        falling, however slowly, is not. Mini-batch epochs' means wobble, so only
        a large rise counts there (:data:`MINI_BATCH_OSCILLATION`).
        """
        start = max(len(losses) - self.n_iter_no_change - 1, 1)
        tol = self.tol or 0.0
        for i in range(start, len(losses)):
            lowest = min(losses[:i])
            rise = losses[i] - lowest - tol
            if full_batch:
                if rise > self.OSCILLATION * abs(lowest):
                    return True
            elif (rise > self.MINI_BATCH_OSCILLATION * abs(lowest)
                  and rise > self.MINI_BATCH_FLOOR * abs(losses[0])):
                return True
        return False

    def warn_oscillation(
        self, losses: list[float], epoch: int, learning_rate: float, optimizer: str = ""
    ) -> None:
        """The rule stopped on a jumping loss (see :meth:`oscillated`); ``optimizer``: the
        optimizer's name (``"adam"``), left out of the alternatives offered."""
        window = losses[-(self.n_iter_no_change + 1) :]
        others = " or ".join(f"'{name}'" for name in ("lbfgs", "adam") if name != optimizer)
        warnings.warn(
            f"Stopped after {epoch} epochs on a training loss that did not settle: "
            f"it went between {min(window):.4g} and {max(window):.4g} over the last "
            f"{len(window)} epochs (learning rate {learning_rate:g}). Lower the "
            f"learning rate, scale the features (zero mean, unit variance), or use "
            f"optimizer={others}.",
            sklearn_compatible(ConvergenceWarning),
            stacklevel=_CALLER_OF_FIT,
        )

    def warn_not_converged(
        self,
        epoch: int,
        enabled: bool,
        losses: Sequence[float] = (),
        learning_rate: float | None = None,
    ) -> None:
        """``max_iter`` ended training before the rule stopped it (if ``enabled``).

        ``losses``: the run's epoch losses so far; ``learning_rate``: the step
        size, ``None`` for an optimizer without one (L-BFGS). A loss that ended
        above where it started says the step is too large, not too small: the
        advice then is to lower the learning rate.
        """
        if self.tol is None or not enabled:
            return
        if learning_rate is not None and len(losses) >= 2 and losses[-1] > losses[0]:
            advice = (
                f"the loss went up, from {losses[0]:.4g} to {losses[-1]:.4g}: the learning "
                f"rate ({learning_rate:g}) is too large for these data. Lower it, or scale "
                "the features (zero mean, unit variance)."
            )
        elif learning_rate is None:
            advice = "raise max_iter or scale the features."
        else:
            advice = "raise max_iter, scale the features or raise the learning rate."
        warnings.warn(
            f"Stopped at max_iter={epoch} epochs before the loss settled (tol={self.tol}); "
            + advice,
            sklearn_compatible(ConvergenceWarning),
            stacklevel=_CALLER_OF_FIT,
        )

    def state_dict(self) -> dict[str, Any]:
        """The counters, the best loss and score, the best parameters and buffers (not copied)."""
        return {
            "no_improvement": self.no_improvement,
            "best_loss": float(self.best_loss),
            "best_score": float(self.best_score),
            "best_parameters": self.best_parameters,
            "best_buffers": self.best_buffers,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.no_improvement = state["no_improvement"]
        self.best_loss = state["best_loss"]
        self.best_score = state["best_score"]
        self.best_parameters = state["best_parameters"]
        self.best_buffers = state.get("best_buffers")

    def restore_best(self, network: Sequential) -> None:
        """Give ``network`` the best validation epoch's parameters and buffers (if any)."""
        if self.best_parameters is None:
            return
        network.flat_parameters[...] = self.best_parameters
        if self.best_buffers is not None:
            network.load_buffer_vector(self.best_buffers)
