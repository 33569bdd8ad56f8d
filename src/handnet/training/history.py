"""The records of a training run: its :class:`History`, and where an epoch stopped."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray


@dataclass
class History:
    """What happened during training, one entry per epoch (or L-BFGS iteration)."""

    loss: list[float] = field(default_factory=list)
    validation_score: list[float] = field(default_factory=list)
    learning_rate: list[float] = field(default_factory=list)
    #: The loss on the validation data (no penalty), with ``validation_score``.
    validation_loss: list[float] = field(default_factory=list)

    @property
    def best_epoch(self) -> int | None:
        """The epoch (counted from 1) with the lowest validation loss: the one kept.

        The earliest of equal ones; ``None`` without validation data.
        """
        if not self.validation_loss:
            return None
        return int(np.argmin(self.validation_loss)) + 1


@dataclass
class EpochProgress:
    """Where an epoch stopped when training was interrupted inside it.

    Attributes
    ----------
    order : ndarray of shape (n_samples,) or None
        The epoch's row order (``None``: rows in their natural order).
    position : int
        The first row (in ``order``) of the next batch.
    total, weight_total : float
        The running weighted sum of batch losses and of batch weights, from
        which the epoch's mean loss is computed when it ends.
    """

    order: NDArray[np.intp] | None
    position: int = 0
    total: float = 0.0
    weight_total: float = 0.0

    @property
    def mean_loss(self) -> float:
        """The epoch's mean loss so far: the weighted mean of its batch losses."""
        return self.total / max(self.weight_total, 1e-300)
