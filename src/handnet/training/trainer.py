"""The :class:`Trainer`: the training loop's parts, wired together.

Its parts: the :class:`~handnet.training.step.Step` (one optimisation step), the
:class:`~handnet.training.stopping.StoppingRule`, the seed's lean kernels
(:class:`~handnet.training.fastpath.SeedKernels`) and the run's records
(:class:`~handnet.training.history.History`); its drivers: the epoch loops
(:mod:`~handnet.training.loops`), training by epochs
(:mod:`~handnet.training.epochs`) or by L-BFGS (:mod:`~handnet.training.lbfgs`),
and the run's state for checkpoints (:mod:`~handnet.training.run_state`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar, overload

import numpy as np
from numpy.typing import NDArray

from .. import _native
from ..data.streaming import RowBlocks
from ..exceptions import DivergenceError
from ..nn.losses import Loss
from ..nn.network import Sequential
from ..nn.penalties import Penalty
from ..optim.optimizers import Optimizer
from ..optim.schedules import Constant, Schedule
from . import kernels, loops, run_state
from .epochs import fit_epochs
from .fastpath import SeedKernels, seed_kernel_applies
from .history import EpochProgress, History, PenaltyMean
from .lbfgs import fit_lbfgs
from .safety import InterruptGuard, divergence_message, report_interrupt
from .state import check_epoch_order
from .step import Step
from .stopping import StoppingRule, Validation

Array = NDArray[np.floating]


class Callback(Protocol):
    """Called by :class:`Trainer` at the end of every epoch; return ``True`` to stop."""

    def __call__(self, trainer: Trainer) -> bool | None: ...


CheckpointHook = Callable[["Trainer"], "str | None"]
"""Saves a checkpoint of the trainer's run; returns a line for the user (or ``None``)."""


_T = TypeVar("_T")


class _Kept(Generic[_T]):
    """A trainer attribute that one of its parts keeps (``Trainer.loss``: ``trainer._step.loss``).

    Read and set on the trainer as before; the part it names holds the value.
    """

    def __init__(self, part: str) -> None:
        self.part = part
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, trainer: None, owner: type | None = None) -> _Kept[_T]: ...

    @overload
    def __get__(self, trainer: object, owner: type | None = None) -> _T: ...

    def __get__(self, trainer: object | None, owner: type | None = None) -> _Kept[_T] | _T:
        if trainer is None:
            return self
        value: _T = getattr(getattr(trainer, self.part), self.name)
        return value

    def __set__(self, trainer: object, value: _T) -> None:
        setattr(getattr(trainer, self.part), self.name, value)


class Trainer:
    """Runs epochs of optimisation steps on a :class:`~handnet.nn.network.Sequential`.

    Parameters
    ----------
    network : Sequential
    loss : Loss
    optimizer : Optimizer
        A stepping rule, or a full-batch one (L-BFGS) that minimises the objective itself.
    rng : numpy.random.Generator
        The model's generator: shuffling and dropout draw from it alone.
    batch_size : int or None
        ``None`` for full batch, ``1`` for per-example SGD, ``k`` for mini-batches.
    schedule : Schedule
        Learning rate per epoch, from the optimizer's initial learning rate.
    l2 : float
        Strength :math:`\\alpha` of an L2 penalty on weights (never biases).
    penalty : Penalty, optional
        The penalty on the weights (:mod:`handnet.nn.penalties`); replaces ``l2``.
    clip_norm : float or None
        Clip the global gradient norm to this value before each step.
    tol, n_iter_no_change : float or None, int
        Stop once the training loss (or, with validation data, the validation
        loss) has not improved by ``tol`` for ``n_iter_no_change`` epochs in a
        row. ``tol=None`` runs every epoch. A stop on a training loss that went
        up and down instead of settling (see :meth:`StoppingRule.oscillated
        <handnet.training.stopping.StoppingRule.oscillated>`) warns with a
        :class:`~handnet.exceptions.ConvergenceWarning`, as ``max_iter`` does.
    shuffle : bool
        Visit rows in a new random order each epoch (mini-batch regimes).
    callbacks : sequence of callables
        Each is called as ``callback(trainer)`` after every epoch; ``True`` stops.
    checkpoint : callable ``checkpoint(trainer) -> str | None``, optional
        Saves the run (e.g. :func:`handnet.io.save` of the model); called every
        ``checkpoint_every`` epochs, when training ends and when it is
        interrupted, never after a divergence or another exception (a crash
        leaves the last checkpoint as it was). The string it returns is shown
        to the user after an interrupt.
    checkpoint_every : int or None
        Epochs between checkpoints; ``None`` only at the end and on an interrupt.
    """

    #: Rows per call of the per-example SGD kernel: between two calls an interrupt
    #: can stop the epoch, as it can between any two steps of the generic loop.
    KERNEL_CHUNK = 16_384
    #: Per-example SGD fits planned to run at least this many rows (or that have)
    #: use the compiled kernel when numba is installed (see
    #: :meth:`SeedKernels.use_numba <handnet.training.fastpath.SeedKernels.use_numba>`):
    #: fewer would not repay its load, about 1 s per process even from numba's cache
    #: (importing numba, its typing registries, and SciPy's BLAS, which numba looks for).
    NUMBA_MIN_ROWS = 1_000_000

    def __init__(
        self,
        network: Sequential,
        loss: Loss,
        optimizer: Optimizer,
        rng: np.random.Generator,
        batch_size: int | None = None,
        schedule: Schedule | None = None,
        l2: float = 0.0,
        clip_norm: float | None = None,
        tol: float | None = 1e-4,
        n_iter_no_change: int = 10,
        shuffle: bool = True,
        callbacks: Sequence[Callable[[Trainer], bool | None]] = (),
        checkpoint: CheckpointHook | None = None,
        checkpoint_every: int | None = None,
        penalty: Penalty | None = None,
    ) -> None:
        self._step = Step(network, loss, optimizer, l2 if penalty is None else penalty, clip_norm)
        self._stopping = StoppingRule(tol, n_iter_no_change)
        self._kernels = SeedKernels()  # active during a fit of the seed's model
        self.rng = rng
        self.batch_size = batch_size
        self.schedule = schedule if schedule is not None else Constant()
        self.shuffle = shuffle
        self.callbacks = list(callbacks)
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.initial_learning_rate = optimizer.learning_rate
        self.history = History()
        #: The penalty's mean over the current epoch's steps (for ``history.data_loss``).
        self._epoch_penalty = PenaltyMean()
        #: When this fit started (``time.perf_counter``) and the seconds trained before it.
        self._clock = (time.perf_counter(), 0.0)
        self.epoch = 0
        self.converged = False
        self.interrupted = False
        #: Whether the last :meth:`fit` ran to its end (``max_iter``, the stopping
        #: rule or a callback), rather than being interrupted.
        self.finished = False
        #: What the checkpoint hook said the last time it ran.
        self.last_checkpoint: str | None = None
        self._buffers: dict[str, Array] = {}
        self._interrupt: InterruptGuard | None = None
        self._progress: EpochProgress | None = None
        # L-BFGS's last relative-decrease test not yet made (see handnet.training.lbfgs).
        self._lbfgs_pending: tuple[float, float] | None = None
        self._resuming = False
        #: Warn (``ConvergenceWarning``) when ``max_iter`` ends training before the
        #: stopping rule, or the rule stops an oscillating loss; off for partial_fit's
        #: one pass (whose chunks differ from call to call). An attribute, not a
        #: warnings filter, which would be process-wide and race with other threads.
        self.warn_at_max_iter = True

    def __getstate__(self) -> dict[str, Any]:
        """What pickle and ``copy.deepcopy`` keep: the run's state, none of its data.

        The optimizer, schedule, generator, history and stopping state stay (a
        restored model's ``partial_fit`` continues exactly like the original's);
        the batch buffers (training rows), the block engine and its threads, and
        the per-call hooks (callbacks, checkpoint writer), which every ``fit`` sets
        again, are dropped.
        """
        state = self.__dict__.copy()
        state.update(_buffers={}, _interrupt=None, callbacks=[], checkpoint=None)
        return state

    # --- the parts' settings: trainer.loss is trainer._step.loss, and so on ------------------

    network: _Kept[Sequential] = _Kept("_step")
    loss: _Kept[Loss] = _Kept("_step")
    optimizer: _Kept[Optimizer] = _Kept("_step")
    l2: _Kept[float] = _Kept("_step")
    penalty: _Kept[Penalty | None] = _Kept("_step")
    clip_norm: _Kept[float | None] = _Kept("_step")
    tol: _Kept[float | None] = _Kept("_stopping")
    n_iter_no_change: _Kept[int] = _Kept("_stopping")

    @property
    def current_lr(self) -> float:
        return float(self._step.optimizer.learning_rate)

    # --- one step ------------------------------------------------------------------------

    def compute_gradients(
        self,
        X: Array | RowBlocks,
        Y: Array | None,
        sample_weight: Array | None = None,
        training: bool = True,
    ) -> float:
        """Forward, loss, backward and penalty on one batch.

        Leaves the gradient of the (penalised) mean loss in
        ``network.flat_gradients`` and returns the loss.

        A large batch (all rows of a full-batch fit, say) gives the same numbers
        computed block by block (:mod:`handnet.data.blocks`): cache-sized row blocks
        on several threads, or blocks read from disk or summed on a Dask cluster
        when ``X`` is out of core (a :class:`~handnet.data.streaming.RowBlocks`, which
        carries its own targets and weights).
        """
        return self._step.compute_gradients(X, Y, sample_weight, training)

    def train_step(
        self, X: Array | RowBlocks, Y: Array | None, sample_weight: Array | None = None
    ) -> float:
        """One optimisation step on a batch; returns the batch loss (before the step).

        ``X`` may also be out-of-core rows (:class:`~handnet.data.streaming.RowBlocks`,
        which carry their targets: ``Y`` is then ``None``) for a full-batch step.
        """
        loss = self.compute_gradients(X, Y, sample_weight)
        if not math.isfinite(loss):
            raise DivergenceError(divergence_message("loss", self.epoch, self.current_lr))
        # The step keeps the penalty it added (computed here when it does not).
        penalty = getattr(self._step, "last_penalty", None)
        if penalty is None:
            penalty = self.penalty_value()
        if penalty is not None:
            # Weighted as the epoch's mean loss weighs this batch (loops.py).
            weight = (
                1.0 if isinstance(X, RowBlocks)
                else float(X.shape[0]) if sample_weight is None else float(np.sum(sample_weight))
            )
            self._epoch_penalty.add(penalty, weight)
        self._step.update()
        return loss

    def penalty_value(self) -> float | None:
        """The penalty term at the current weights; ``None`` when training has none.

        What a step adds to the data loss: subtracted from the epoch's mean
        objective, it gives ``history.data_loss``.
        """
        step = self._step
        penalty = step.penalty
        if penalty is None or not penalty.alpha:
            return None
        return float(penalty.value(step.network.weights))

    def elapsed(self) -> float:
        """Seconds of training so far: this fit's, plus the run's before it."""
        started, before = self._clock
        return before + time.perf_counter() - started

    def _seed_kernel_applies(self) -> bool:
        """Whether this is the seed's model, trained by :mod:`~handnet.training.kernels`."""
        step = self._step
        return step.penalty_is_l2 and seed_kernel_applies(
            step.network, step.loss, step.optimizer, step.clip_norm
        )

    # --- epochs --------------------------------------------------------------------------

    def _gather(self, name: str, source: Array, index: NDArray[np.intp]) -> Array:
        """``source[index]`` written into a buffer reused for every batch of that size."""
        shape = (len(index), *source.shape[1:])
        buffer = self._buffers.get(name)
        if buffer is None or buffer.shape != shape or buffer.dtype != source.dtype:
            buffer = np.empty(shape, dtype=source.dtype)
            self._buffers[name] = buffer
        native = _native.kernels_for(kernels.COMPILED_MODULE, source, buffer)
        if (
            native is not None and source.ndim >= 2
            and index.dtype == np.intp and index.flags.c_contiguous
        ):
            # Four rows (or images, as flat rows) copied side by side; the compiled
            # loop trusts the indices, which are valid by construction.
            rows, out = source, buffer
            if source.ndim > 2:
                row = math.prod(shape[1:])
                rows, out = source.reshape(source.shape[0], row), buffer.reshape(shape[0], row)
            native.gather_rows(rows, index, out)
        else:
            # mode="clip": the indices are valid by construction, and the default
            # mode="raise" would gather into a temporary and copy it into out.
            np.take(source, index, axis=0, out=buffer, mode="clip")
        return buffer

    def run_epoch(self, X: Array, Y: Array, sample_weight: Array | None = None) -> float | None:
        """One pass over the data; returns the epoch's mean loss.

        Returns ``None`` if an interrupt stopped the epoch between two of its
        steps; the steps taken are kept and the epoch's progress is remembered
        (:class:`EpochProgress`), so the next call (or a run restored from a
        checkpoint) finishes that same epoch instead of starting a new one.
        """
        return loops.run_epoch(self, X, Y, sample_weight)

    def run_stream_epoch(self, data: RowBlocks) -> float | None:
        """One pass over out-of-core data, block by block; returns the epoch's mean loss.

        Full batch (``batch_size=None``): one step on the gradient summed over all
        blocks. Mini-batches: the storage blocks in a random order, each block's
        rows shuffled and cut into batches (the last one of a block may be
        short), the next block read by a background thread meanwhile (see
        :mod:`handnet.data.streaming`). An interrupt stops the epoch at the next block
        boundary; :class:`EpochProgress` then counts blocks, not rows.
        """
        return loops.run_stream_epoch(self, data)

    def _start_epoch_learning_rate(self) -> None:
        self._step.optimizer.learning_rate = self.schedule.learning_rate(
            self.initial_learning_rate, self.epoch
        )

    # --- a run ---------------------------------------------------------------------------

    def fit(
        self,
        X: Array | RowBlocks,
        Y: Array | None,
        sample_weight: Array | None = None,
        max_iter: int = 200,
        validation: Validation | None = None,
    ) -> History:
        """Train for up to ``max_iter`` epochs (or L-BFGS iterations).

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features), or RowBlocks
            In-memory rows, or out-of-core ones (:class:`~handnet.data.streaming.RowBlocks`,
            which carry their targets and weights: ``Y`` and ``sample_weight`` are
            then ``None``), trained block by block (:meth:`run_stream_epoch`).
        Y : ndarray of shape (n_samples, n_outputs) or None
            Targets in the loss's format (e.g. one-hot rows).
        sample_weight : ndarray of shape (n_samples,), optional
        max_iter : int
            Epochs to run in this call (counted on from any earlier call). An
            epoch left unfinished by an interrupt, restored with
            :meth:`load_state_dict`, counts as the first of them.
        validation : callable ``validation() -> (loss, score)``, optional
            Called after every epoch on held-out data: both are recorded
            (``history.validation_loss``, ``history.validation_score``), the
            loss drives the stopping rule, and the parameters of the epoch with
            the lowest validation loss (:attr:`History.best_epoch`) are restored
            at the end. The loss, not an accuracy: an accuracy on a small
            validation set stops improving (ties) long before the model does.
        """
        self._start_run(X)
        times = self.history.time
        before = times[-1] if times and math.isfinite(times[-1]) else 0.0
        self._clock = (time.perf_counter(), before)  # the run's seconds go on from there
        with (
            InterruptGuard() as guard,
            np.errstate(over="ignore", invalid="ignore"),
            self.network.reusing_buffers(),
        ):
            self._interrupt = guard
            self._kernels.start(
                self._seed_kernel_applies(), max_iter, self.tol, self.n_iter_no_change,
                epochs_done=self.epoch,
                rows_per_epoch=X.n_rows if isinstance(X, RowBlocks) else X.shape[0],
            )
            try:
                if self.optimizer.full_batch:
                    fit_lbfgs(self, X, Y, sample_weight, max_iter, validation)
                else:
                    fit_epochs(self, X, Y, sample_weight, max_iter, validation)
            finally:
                self._interrupt = None
                self._kernels.stop()  # its arguments hold the caller's X and Y
                self._step.close_engine()  # its threads; made again if fit runs again
        if self.interrupted:
            n_units, unit = (
                (X.n_blocks, "blocks") if isinstance(X, RowBlocks) else (X.shape[0], "rows")
            )
            report_interrupt(
                self.epoch, self._progress, n_units, unit,
                self.checkpoint is not None, self.last_checkpoint,
            )
        return self.history

    def _start_run(self, X: Array | RowBlocks) -> None:
        """Clear the last run's flags; check where a restored run's unfinished epoch stopped."""
        self.interrupted = False
        self.finished = False
        if not self._resuming:
            # Only a restored run continues an unfinished epoch; a new call (e.g.
            # partial_fit on the next chunk) starts a fresh one on its own data.
            self._progress = None
            self._lbfgs_pending = None
        self._resuming = False
        if self._progress is not None:
            # The saved order indexes the data (the compiled kernels too, without bounds
            # checks): it must be a permutation of the rows, or of the storage blocks.
            units = X.blocks if isinstance(X, RowBlocks) else np.arange(X.shape[0])
            unit = "blocks" if isinstance(X, RowBlocks) else "rows"
            check_epoch_order(
                {"order": self._progress.order, "position": self._progress.position}, units, unit
            )

    def _finish(self, validation: Validation | None) -> None:
        """The run ended (not interrupted): keep the best validation epoch's parameters, save."""
        self.finished = True
        if validation is not None:
            self._stopping.restore_best(self.network)
        self._save_checkpoint()

    def _save_checkpoint(self) -> None:
        if self.checkpoint is not None:
            self.last_checkpoint = self.checkpoint(self)

    # --- checkpoints ---------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything besides the network's parameters that decides the rest of the run.

        Returns
        -------
        dict
            A tree of ``dict``/``list``/numbers/strings with NumPy arrays as
            leaves (copies): ``epoch``, ``converged``, ``interrupted``,
            ``finished``, ``initial_learning_rate``, ``history`` (``loss``,
            ``validation_score``, ``learning_rate``, ``validation_loss``,
            ``data_loss`` and ``time`` lists),
            ``stopping`` (the
            early-stopping counter, best loss and score, best parameters or
            ``None``), ``rng`` (``Generator.bit_generator.state``), ``optimizer``
            (``type`` plus :meth:`Optimizer.state_dict`, or L-BFGS's memory),
            ``schedule`` (``type`` and its ``state_dict``) and ``progress``
            (where an interrupted epoch stopped, with the penalty's running
            mean over its steps so far, or ``None``).
        """
        return run_state.state_dict(self)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned, after checking all of it.

        The network's parameters are restored separately (they are the
        network's, ``network.flat_parameters``). The optimizer and schedule
        must be of the types that wrote the state. The next :meth:`fit`
        continues the run, including an epoch an interrupt left unfinished.

        Raises
        ------
        ValueError
            If ``state`` is not a valid state for this trainer (nothing is
            changed then).
        """
        run_state.load_state_dict(self, state)
