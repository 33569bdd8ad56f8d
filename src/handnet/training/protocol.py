"""The trainer as its drivers see it: what :mod:`.loops`, :mod:`.epochs`, :mod:`.lbfgs`
and :mod:`.run_state` read and set on a :class:`~handnet.training.Trainer`.

A protocol, not the class itself, so that the drivers do not import the module that
imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from ..data.streaming import RowBlocks
from ..nn.losses import Loss
from ..nn.network import Sequential
from ..optim.optimizers import Optimizer
from ..optim.schedules import Schedule
from .fastpath import SeedKernels
from .history import EpochProgress, History, PenaltyMean
from .safety import InterruptGuard
from .step import Step
from .stopping import StoppingRule, Validation

Array = NDArray[np.floating]


class TrainerView(Protocol):
    """What the training loop's drivers use of a :class:`~handnet.training.Trainer`."""

    # Settings.
    rng: np.random.Generator
    batch_size: int | None
    schedule: Schedule
    shuffle: bool
    checkpoint_every: int | None
    initial_learning_rate: float
    warn_at_max_iter: bool
    KERNEL_CHUNK: int
    NUMBA_MIN_ROWS: int
    # The run.
    history: History
    epoch: int
    converged: bool
    interrupted: bool
    finished: bool
    _progress: EpochProgress | None
    _epoch_penalty: PenaltyMean
    _lbfgs_pending: tuple[float, float] | None
    _resuming: bool
    _interrupt: InterruptGuard | None
    # The parts.
    _step: Step
    _stopping: StoppingRule
    _kernels: SeedKernels

    @property
    def callbacks(self) -> Sequence[Callable[[Any], bool | None]]: ...

    @property
    def network(self) -> Sequential: ...

    @property
    def loss(self) -> Loss: ...

    @property
    def optimizer(self) -> Optimizer: ...

    @property
    def current_lr(self) -> float: ...

    def compute_gradients(
        self, X: Array | RowBlocks, Y: Array | None, sample_weight: Array | None = ...,
        training: bool = ...,
    ) -> float: ...

    def train_step(
        self, X: Array | RowBlocks, Y: Array | None, sample_weight: Array | None = None
    ) -> float: ...

    def run_epoch(self, X: Array, Y: Array, sample_weight: Array | None = None) -> float | None: ...

    def run_stream_epoch(self, data: RowBlocks) -> float | None: ...

    def penalty_value(self) -> float | None: ...

    def elapsed(self) -> float: ...

    def _gather(self, name: str, source: Array, index: NDArray[np.intp]) -> Array: ...

    def _start_epoch_learning_rate(self) -> None: ...

    def _seed_kernel_applies(self) -> bool: ...

    def _save_checkpoint(self) -> None: ...

    def _finish(self, validation: Validation | None) -> None: ...
