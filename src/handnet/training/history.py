"""The records of a training run: its :class:`History`, and where an epoch stopped."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray


@dataclass
class History:
    """What happened during training, one entry per epoch (or L-BFGS iteration).

    An estimator's ``history_``. Every list is indexed by epoch; the validation
    lists are empty when no validation data was scored. What each one holds:

    Attributes
    ----------
    loss : list of float
        The training *objective*: the mean data loss over the epoch's batches
        plus the penalty (L2) term, what the optimizer minimises and the
        stopping rule watches without validation data (``loss_curve_``).
    data_loss : list of float
        The same mean training loss *without* the penalty term: the number to
        compare with ``validation_loss`` (both are data losses). Equal to
        ``loss`` when ``alpha=0``. Exact for every optimizer but one: the lean
        per-example SGD kernel of a single sigmoid unit, where the penalty is the
        mean of its values at the epoch's start and end.
    validation_score : list of float
        The score on the validation data after each epoch: accuracy for a
        classifier, R² for a regressor (``validation_scores_``).
    validation_loss : list of float
        The data loss on the validation data after each epoch (no penalty);
        the lowest one is the epoch kept (:attr:`best_epoch`).
    learning_rate : list of float
        The learning rate of each epoch (1 for L-BFGS).
    time : list of float
        Seconds spent training, from the run's first epoch to the end of each
        epoch (wall clock; continued by ``partial_fit`` and a resumed run).
        Not compared by ``==``.

    Notes
    -----
    No training accuracy is recorded: it would cost a forward pass over the
    training set every epoch. Pass ``validation_data`` (or ``early_stopping=True``)
    for a per-epoch score. :meth:`to_dict` gives the lists of equal length, for
    ``pandas.DataFrame(model.history_.to_dict())``.
    """

    loss: list[float] = field(default_factory=list)
    validation_score: list[float] = field(default_factory=list)
    learning_rate: list[float] = field(default_factory=list)
    #: The loss on the validation data (no penalty), with ``validation_score``.
    validation_loss: list[float] = field(default_factory=list)
    #: The training loss without the penalty term (see the class docstring).
    data_loss: list[float] = field(default_factory=list)
    #: Seconds of training at the end of each epoch.
    time: list[float] = field(default_factory=list, compare=False)

    #: The keys of :meth:`to_dict`, in order.
    KEYS = (
        "epoch", "loss", "data_loss", "validation_loss", "validation_score",
        "learning_rate", "time",
    )

    @property
    def best_epoch(self) -> int | None:
        """The epoch (counted from 1) with the lowest validation loss: the one kept.

        The earliest of equal ones; ``None`` without validation data.
        """
        if not self.validation_loss:
            return None
        return int(np.argmin(self.validation_loss)) + 1

    @property
    def n_epochs(self) -> int:
        """The number of epochs recorded."""
        return len(self.loss)

    def to_dict(self) -> dict[str, list[float]]:
        """Every series as a list of one value per epoch, under the names of :data:`KEYS`.

        ``"epoch"`` counts from 1. A series not recorded for some epochs (no
        validation data; a file written by an older handnet, which kept neither
        ``data_loss`` nor ``time``) has NaN there, so that all lists have the same
        length.

        Examples
        --------
        >>> from handnet.training import History
        >>> History(loss=[0.7, 0.5], data_loss=[0.6, 0.4], learning_rate=[0.1, 0.1]).to_dict()[
        ...     "validation_loss"]
        [nan, nan]
        """
        n = self.n_epochs
        series = {
            "loss": self.loss, "data_loss": self.data_loss,
            "validation_loss": self.validation_loss, "validation_score": self.validation_score,
            "learning_rate": self.learning_rate, "time": self.time,
        }
        result: dict[str, list[float]] = {"epoch": [float(i) for i in range(1, n + 1)]}
        for name, values in series.items():
            recorded = [float(v) for v in values[-n:]] if n else []
            result[name] = [math.nan] * (n - len(recorded)) + recorded
        return result


@dataclass
class PenaltyMean:
    """The running weighted mean of the penalty term over an epoch's steps.

    Each step adds its penalty value weighted like its loss in the epoch's
    mean (its rows, or the sum of their sample weights), so that the epoch's
    mean objective minus :meth:`mean` is its mean data loss.
    """

    total: float = 0.0
    weight: float = 0.0
    steps: int = 0

    def add(self, value: float, weight: float) -> None:
        """One step's penalty ``value``, with the step's ``weight``."""
        self.total += value * weight
        self.weight += weight
        self.steps += 1

    def mean(self) -> float | None:
        """The weighted mean so far; ``None`` before any step."""
        if not self.steps:
            return None
        return self.total / max(self.weight, 1e-300)


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
