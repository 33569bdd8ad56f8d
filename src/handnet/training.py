"""The training loop: batches, epochs, schedules, early stopping, and safety nets.

One optimisation step is the seed's recipe, on a batch of rows:

1. **forward** the batch through the network (logits),
2. **loss** and its gradient with respect to the logits,
3. **backward**: backpropagate into every parameter's gradient, add the L2 term,
4. **step**: let the optimizer update the parameters.

The batch regime is set by ``batch_size``:

* ``None``: full-batch gradient descent, one step per epoch on all the data
  (the seed's GD);
* ``1``: stochastic gradient descent, one example per step, the rows visited
  in a new random order every epoch (the seed's SGD);
* ``k``: mini-batches of ``k`` rows, reshuffled every epoch.

Rows are drawn by indexing (``X[order[i:i+k]]``, gathered into a buffer reused
all epoch); the caller's arrays are never shuffled or written to. All randomness
comes from the ``numpy.random.Generator`` the trainer is given.

Large and out-of-core data
--------------------------
The recipe does not change when the data is big; only where the rows come from:

* a batch of more than a few megabytes (a full batch, typically) gets its loss
  and gradient as a sum over cache-sized row blocks on several threads
  (:mod:`handnet.blocks`, from :meth:`Trainer.compute_gradients`): the same
  numbers, up to the order of the additions;
* out-of-core data (a :class:`~handnet.streaming.RowBlocks` over a memmap, zarr,
  h5py or Dask array) trains by :meth:`Trainer.run_stream_epoch`: storage blocks
  in a random order, rows shuffled within each block, the next block read in the
  background; its full batch is summed block by block, on the Dask workers for a
  Dask array (:mod:`handnet.cluster`).

Fast paths
----------
The seed's own model (one ``Dense(n, 1)`` layer, binary cross-entropy, plain
SGD, no clipping) spends most of a generic step on Python calls around tiny
arrays, so its full-batch steps and its per-example SGD epochs run in the lean
kernels of :mod:`handnet.kernels` instead: the same math, checked against the
generic step by the tests.

Safety nets
-----------
* **Ctrl-C**: the first interrupt stops training at the next step boundary
  (the model keeps every completed step and its history; a configured
  checkpoint is written); a second one raises ``KeyboardInterrupt`` at once.
  Where it stopped is reported as a warning on the ``handnet.training`` logger
  (printed to stderr when logging is not configured).
* **Divergence**: a non-finite loss or parameter stops training with a
  :class:`~handnet.exceptions.DivergenceError` and the last finite parameters.
* **Checkpoints**: :meth:`Trainer.state_dict` holds everything besides the
  network's parameters that decides the rest of the run (optimizer and
  schedule state, the generator's state, the epoch, the history, the
  early-stopping counters, and where an interrupted epoch stopped), so a run
  restored with :meth:`Trainer.load_state_dict` continues bit for bit as if
  it had never stopped. The ``checkpoint`` hook is called every
  ``checkpoint_every`` epochs, at the end and on an interrupt;
  :mod:`handnet.io` writes the files.
"""

from __future__ import annotations

import logging
import math
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from . import blocks
from .exceptions import ConvergenceWarning, DivergenceError, sklearn_compatible
from .kernels import logistic_gd_step, logistic_sgd_epoch, numba_available
from .layers import Dense
from .losses import BinaryCrossEntropy, Loss
from .network import Sequential
from .optimizers import LBFGS, SGD, Optimizer
from .penalties import add_l2
from .schedules import Constant, Schedule
from .state import check_epoch_order, check_rng_state, check_trainer_state, copy_tree
from .streaming import RowBlocks
from .validation import all_finite

#: The trainer's reports that are neither errors nor warnings about the model (an
#: interrupted fit). With logging not configured, Python prints them to stderr.
logger = logging.getLogger(__name__)

#: ``record.handnet_event`` of the log record that reports an interrupted fit (a front
#: end that says it in its own words filters that record out).
INTERRUPTED_EVENT = "interrupted"

Array = NDArray[np.floating]


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


class Callback(Protocol):
    """Called by :class:`Trainer` at the end of every epoch; return ``True`` to stop."""

    def __call__(self, trainer: Trainer) -> bool | None: ...


Validation = Callable[[], "tuple[float, float]"]
"""Scores the network on held-out data: returns ``(loss, score)`` (score: higher is better)."""

CheckpointHook = Callable[["Trainer"], "str | None"]
"""Saves a checkpoint of the trainer's run; returns a line for the user (or ``None``)."""


def iterate_minibatches(
    n_samples: int, batch_size: int, rng: np.random.Generator | None
) -> Iterator[NDArray[np.intp]]:
    """Index arrays of the batches of one epoch, in a fresh random order if ``rng`` is given.

    Yields
    ------
    ndarray of shape (batch_size,) (the last batch may be smaller)
    """
    order = rng.permutation(n_samples) if rng is not None else np.arange(n_samples)
    for start in range(0, n_samples, batch_size):
        yield order[start : start + batch_size]


def clip_gradient_norm(gradients: Array, max_norm: float) -> float:
    r"""Rescale ``gradients`` in place so that :math:`\lVert g\rVert_2 \le` ``max_norm``.

    Returns the norm before clipping.
    """
    norm = float(np.sqrt(np.dot(gradients, gradients)))
    if norm > max_norm:
        gradients *= gradients.dtype.type(max_norm / (norm + 1e-12))
    return norm


def _divergence_message(what: str, epoch: int, learning_rate: float) -> str:
    return (
        f"training diverged: the {what} became non-finite in epoch {epoch + 1}. "
        f"The model keeps its last finite parameters. Likely causes: the learning rate "
        f"({learning_rate:g}) is too large (try 10x smaller), or the features are not "
        "scaled (standardise them: zero mean, unit variance)."
    )


class _InterruptGuard:
    """Turn the first Ctrl-C into a request to stop at the next step boundary.

    A second Ctrl-C raises ``KeyboardInterrupt`` as usual. Outside the main thread
    (where signal handlers cannot be installed) this does nothing.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> _InterruptGuard:
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


class Trainer:
    """Runs epochs of optimisation steps on a :class:`~handnet.network.Sequential`.

    Parameters
    ----------
    network : Sequential
    loss : Loss
    optimizer : Optimizer or LBFGS
    rng : numpy.random.Generator
        The model's generator: shuffling and dropout draw from it alone.
    batch_size : int or None
        ``None`` for full batch, ``1`` for per-example SGD, ``k`` for mini-batches.
    schedule : Schedule
        Learning rate per epoch, from the optimizer's initial learning rate.
    l2 : float
        Strength :math:`\\alpha` of the L2 penalty on weights (never biases).
    clip_norm : float or None
        Clip the global gradient norm to this value before each step.
    tol, n_iter_no_change : float or None, int
        Stop once the training loss (or, with validation data, the validation
        loss) has not improved by ``tol`` for ``n_iter_no_change`` epochs in a
        row. ``tol=None`` runs every epoch. A stop on a training loss that went
        up and down instead of settling (see :meth:`_oscillated`) warns with a
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

    def __init__(
        self,
        network: Sequential,
        loss: Loss,
        optimizer: Optimizer | LBFGS,
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
    ) -> None:
        self.network = network
        self.loss = loss
        self.optimizer = optimizer
        self.rng = rng
        self.batch_size = batch_size
        self.schedule = schedule if schedule is not None else Constant()
        self.l2 = float(l2)
        self.clip_norm = clip_norm
        self.tol = tol
        self.n_iter_no_change = int(n_iter_no_change)
        self.shuffle = shuffle
        self.callbacks = list(callbacks)
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.initial_learning_rate = optimizer.learning_rate
        self.history = History()
        self.epoch = 0
        self.converged = False
        self.interrupted = False
        #: Whether the last :meth:`fit` ran to its end (``max_iter``, the stopping
        #: rule or a callback), rather than being interrupted.
        self.finished = False
        #: What the checkpoint hook said the last time it ran.
        self.last_checkpoint: str | None = None
        self._no_improvement = 0
        self._best_loss = math.inf
        self._best_score = -math.inf
        self._best_parameters: Array | None = None
        self._buffers: dict[str, Array] = {}
        #: Whether the seed's model trains here, by the kernels of handnet.kernels
        #: (decided when fit starts; see _seed_kernel_applies).
        self._seed_kernel = False
        self._gd_kernel_arguments: tuple[Any, ...] | None = None
        #: What the optimizer updates: the network's one flat parameter vector.
        self._parameter_pairs = [(network.flat_parameters, network.flat_gradients)]
        self._interrupt: _InterruptGuard | None = None
        self._progress: EpochProgress | None = None
        # L-BFGS tests the relative decrease of an iteration after its callback;
        # an interrupt stops before that test, so it is kept to be made on resume.
        self._lbfgs_pending: tuple[float, float] | None = None
        self._resuming = False
        self._engine: blocks.FullBatchGradient | None = None
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
        state.update(
            _buffers={},
            _engine=None,
            _gd_kernel_arguments=None,
            _interrupt=None,
            callbacks=[],
            checkpoint=None,
        )
        del state["_parameter_pairs"]  # views of the network's flat vectors: made anew
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        network = self.network  # restored first: it holds no reference to the trainer
        self._parameter_pairs = [(network.flat_parameters, network.flat_gradients)]

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
        computed block by block (:mod:`handnet.blocks`): cache-sized row blocks
        on several threads, or blocks read from disk or summed on a Dask cluster
        when ``X`` is out of core (a :class:`~handnet.streaming.RowBlocks`, which
        carries its own targets and weights).
        """
        network = self.network
        plain_loss = self._blockable_loss(X, sample_weight, training)
        if plain_loss is not None:
            engine = self._full_batch_engine()
            if isinstance(X, RowBlocks) and X.is_dask:
                # Summed on the Dask workers, each block as the engine sums it here.
                from .cluster import dask_full_batch

                loss = dask_full_batch(network, X, plain_loss, training, engine.block_bytes)
            else:
                loss = engine(X, Y, sample_weight, plain_loss, training)
        else:
            assert not isinstance(X, RowBlocks) and Y is not None
            logits = network.forward(X, training=training)
            loss, dlogits = self.loss(logits, Y, sample_weight)
            network.backward(dlogits)
        return loss + add_l2(network.weights, network.weight_gradients, self.l2)

    def _blockable_loss(
        self, X: Array | RowBlocks, sample_weight: Array | None, training: bool
    ) -> Loss | None:
        """The plain loss to sum block by block over ``X``, or ``None`` for the one-shot path.

        Blocks are for batches of at least :data:`handnet.blocks.MIN_BYTES` and for
        out-of-core data, when the network allows it (no dropout draws). A model's
        data-set-weighted loss (``models._DatasetWeightedLoss``, which has an
        ``inner`` loss) is its inner loss on the full data set, the only batch
        where the two agree.
        """
        if isinstance(X, RowBlocks):
            if not blocks.supports(self.network, training):
                raise ValueError(
                    "full-batch training on out-of-core data does not support dropout; "
                    "use mini-batches (batch_size=k) or dropout=0"
                )
        elif X.nbytes < blocks.MIN_BYTES or not blocks.supports(self.network, training):
            return None
        loss = self.loss
        inner = getattr(loss, "inner", None)
        if inner is None:
            return loss
        if isinstance(X, RowBlocks) or (
            sample_weight is not None and len(sample_weight) == getattr(loss, "n_samples", -1)
        ):
            return inner
        return None

    def _full_batch_engine(self) -> blocks.FullBatchGradient:
        """The block-wise engine of this network (made on first use, closed when ``fit`` ends)."""
        engine = self._engine
        if engine is None or engine.network is not self.network:
            engine = self._engine = blocks.FullBatchGradient(self.network)
        return engine

    def train_step(
        self, X: Array | RowBlocks, Y: Array | None, sample_weight: Array | None = None
    ) -> float:
        """One optimisation step on a batch; returns the batch loss (before the step).

        ``X`` may also be out-of-core rows (:class:`~handnet.streaming.RowBlocks`,
        which carry their targets: ``Y`` is then ``None``) for a full-batch step.
        """
        loss = self.compute_gradients(X, Y, sample_weight)
        if not math.isfinite(loss):
            raise DivergenceError(_divergence_message("loss", self.epoch, self.current_lr))
        if self.clip_norm is not None:
            clip_gradient_norm(self.network.flat_gradients, self.clip_norm)
        assert isinstance(self.optimizer, Optimizer)
        self.optimizer.step(self._parameter_pairs)
        return loss

    @property
    def current_lr(self) -> float:
        return float(self.optimizer.learning_rate)

    # --- epochs --------------------------------------------------------------------------

    def _gather(self, name: str, source: Array, index: NDArray[np.intp]) -> Array:
        """``source[index]`` written into a buffer reused for every batch of that size."""
        shape = (len(index), *source.shape[1:])
        buffer = self._buffers.get(name)
        if buffer is None or buffer.shape != shape or buffer.dtype != source.dtype:
            buffer = np.empty(shape, dtype=source.dtype)
            self._buffers[name] = buffer
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
        n_samples = X.shape[0]
        if self.batch_size is None or self.batch_size >= n_samples:
            self._start_epoch_learning_rate()
            # Data over blocks.MIN_BYTES goes to the block engine through train_step:
            # X read once, in cache-sized blocks on all cores (faster than the kernel).
            if self._seed_kernel and sample_weight is None and X.nbytes < blocks.MIN_BYTES:
                return self._gd_kernel_step(X, Y)
            return self.train_step(X, Y, sample_weight)
        progress = self._progress
        if progress is None:
            self._start_epoch_learning_rate()
            order = self.rng.permutation(n_samples) if self.shuffle else None
            progress = self._progress = EpochProgress(order)
        order = progress.order if progress.order is not None else np.arange(n_samples)
        if self.batch_size == 1 and sample_weight is None and self._seed_kernel:
            return self._run_kernel_epoch(X, Y, progress, order)
        batch_size = self.batch_size
        for start in range(progress.position, n_samples, batch_size):
            index = order[start : start + batch_size]
            if len(index) == 1:
                # One example per step: plain slices are views, no gather needed.
                i = int(index[0])
                Xb, Yb = X[i : i + 1], Y[i : i + 1]
                wb = None if sample_weight is None else sample_weight[i : i + 1]
            else:
                Xb = self._gather("X", X, index)
                Yb = self._gather("Y", Y, index)
                wb = None if sample_weight is None else sample_weight[index]
            batch_loss = self.train_step(Xb, Yb, wb)
            batch_weight = float(len(index)) if wb is None else float(np.sum(wb))
            progress.total += batch_loss * batch_weight
            progress.weight_total += batch_weight
            progress.position = start + len(index)
            if self._stop_inside_epoch(progress, n_samples):
                return None
        self._progress = None
        return progress.total / max(progress.weight_total, 1e-300)

    #: Rows per call of the per-example SGD kernel: between two calls an interrupt
    #: can stop the epoch, as it can between any two steps of the generic loop.
    KERNEL_CHUNK = 16_384
    #: Epochs at least this long use the compiled kernel when numba is installed;
    #: shorter ones would not repay its compilation (about a second per process).
    NUMBA_MIN_ROWS = 50_000

    def _seed_kernel_applies(self) -> bool:
        """Whether this is the seed's model: one sigmoid unit, plain SGD, no clipping.

        That case has lean kernels (:mod:`handnet.kernels`) that do the same math
        as the generic step with a fraction of its Python overhead.
        """
        layers = self.network.layers
        return (
            len(layers) == 1
            and isinstance(layers[0], Dense)
            and layers[0].n_outputs == 1
            and type(self.loss) is BinaryCrossEntropy
            and type(self.optimizer) is SGD
            and self.clip_norm is None
        )

    def _gd_kernel_step(self, X: Array, Y: Array) -> float:
        """One full-batch GD step of the seed's model by :func:`logistic_gd_step`."""
        # The kernel's arguments (flat views and scratch space) are made once per
        # fit: on the seed's 1000 x 4 data, making them every step would cost a
        # tenth of the step. fit() drops them, and with them X and Y, when it ends.
        arguments = self._gd_kernel_arguments
        if arguments is None or arguments[0] is not X or arguments[1] is not Y:
            dense = self.network.layers[0]
            assert isinstance(dense, Dense)
            workspace = np.empty((4, X.shape[0]), dtype=X.dtype)
            arguments = self._gd_kernel_arguments = (
                X, Y, Y[:, 0], dense.weights[:, 0], dense.bias, tuple(workspace)
            )
        _, _, y, weights, bias, workspace_rows = arguments
        loss = logistic_gd_step(
            X, y, weights, bias, self.optimizer.learning_rate, self.l2, workspace_rows
        )
        if not math.isfinite(loss):
            raise DivergenceError(_divergence_message("loss", self.epoch, self.current_lr))
        return loss

    def _run_kernel_epoch(
        self, X: Array, Y: Array, progress: EpochProgress, order: NDArray[np.intp]
    ) -> float | None:
        dense = self.network.layers[0]
        assert isinstance(dense, Dense)
        weights, bias, targets = dense.weights[:, 0], dense.bias, Y[:, 0]
        n_samples = X.shape[0]
        use_numba = (
            n_samples >= self.NUMBA_MIN_ROWS and X.dtype == np.float64 and numba_available()
        )
        for start in range(progress.position, n_samples, self.KERNEL_CHUNK):
            index = order[start : start + self.KERNEL_CHUNK]
            progress.total = logistic_sgd_epoch(
                X, targets, index, weights, bias, self.current_lr, self.l2,
                total=progress.total, use_numba=use_numba,
            )
            if not math.isfinite(progress.total):
                raise DivergenceError(_divergence_message("loss", self.epoch, self.current_lr))
            progress.weight_total += len(index)
            progress.position = start + len(index)
            if self._stop_inside_epoch(progress, n_samples):
                return None
        self._progress = None
        return progress.total / max(progress.weight_total, 1e-300)

    def run_stream_epoch(self, data: RowBlocks) -> float | None:
        """One pass over out-of-core data, block by block; returns the epoch's mean loss.

        Full batch (``batch_size=None``): one step on the gradient summed over all
        blocks. Mini-batches: the storage blocks in a random order, each block's
        rows shuffled and cut into batches (the last one of a block may be
        short), the next block read by a background thread meanwhile (see
        :mod:`handnet.streaming`). An interrupt stops the epoch at the next block
        boundary; :class:`EpochProgress` then counts blocks, not rows.
        """
        if self.batch_size is None or self.batch_size >= data.n_rows:
            # One step, its gradient summed block by block (compute_gradients).
            self._start_epoch_learning_rate()
            return self.train_step(data, None, None)
        progress = self._progress
        if progress is None:
            self._start_epoch_learning_rate()
            order = data.block_order(self.rng if self.shuffle else None)
            progress = self._progress = EpochProgress(order)
        order = progress.order if progress.order is not None else data.blocks
        batch_size = self.batch_size
        kernel = self.batch_size == 1 and self._seed_kernel_applies()
        blocks_iter = data.iter_blocks(order[progress.position :])
        try:
            for block in blocks_iter:
                n_rows = len(block.X)
                rows = self.rng.permutation(n_rows) if self.shuffle else np.arange(n_rows)
                if kernel and block.weight is None:
                    self._kernel_block(block.X, block.Y, rows, progress)
                else:
                    for start in range(0, n_rows, batch_size):
                        index = rows[start : start + batch_size]
                        Xb = self._gather("X", block.X, index)
                        Yb = self._gather("Y", block.Y, index)
                        wb = None if block.weight is None else block.weight[index]
                        batch_loss = self.train_step(Xb, Yb, wb)
                        batch_weight = float(len(index)) if wb is None else float(np.sum(wb))
                        progress.total += batch_loss * batch_weight
                        progress.weight_total += batch_weight
                progress.position += 1
                if self._stop_inside_epoch(progress, len(order)):
                    return None
        finally:
            blocks_iter.close()  # stops the prefetching thread on an error or interrupt
        self._progress = None
        return progress.total / max(progress.weight_total, 1e-300)

    def _kernel_block(
        self, X: Array, Y: Array, rows: NDArray[np.intp], progress: EpochProgress
    ) -> None:
        """Per-example SGD of a logistic regression over one block, in the lean kernel."""
        dense = self.network.layers[0]
        assert isinstance(dense, Dense)
        weights, bias, targets = dense.weights[:, 0], dense.bias, Y[:, 0]
        use_numba = len(rows) >= self.NUMBA_MIN_ROWS and X.dtype == np.float64
        progress.total = logistic_sgd_epoch(
            X, targets, rows, weights, bias, self.current_lr, self.l2,
            total=progress.total, use_numba=use_numba and numba_available(),
        )
        if not math.isfinite(progress.total):
            raise DivergenceError(_divergence_message("loss", self.epoch, self.current_lr))
        progress.weight_total += len(rows)

    def _stop_inside_epoch(self, progress: EpochProgress, n_samples: int) -> bool:
        """Whether an interrupt asks to stop between two steps of an unfinished epoch."""
        interrupt = self._interrupt
        return interrupt is not None and interrupt.requested and progress.position < n_samples

    def _start_epoch_learning_rate(self) -> None:
        self.optimizer.learning_rate = self.schedule.learning_rate(
            self.initial_learning_rate, self.epoch
        )

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
            In-memory rows, or out-of-core ones (:class:`~handnet.streaming.RowBlocks`,
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
        with (
            _InterruptGuard() as guard,
            np.errstate(over="ignore", invalid="ignore"),
            self.network.reusing_buffers(),
        ):
            self._interrupt = guard
            self._seed_kernel = self._seed_kernel_applies()
            try:
                if isinstance(self.optimizer, LBFGS):
                    self._fit_lbfgs(X, Y, sample_weight, max_iter, validation)
                else:
                    self._fit_epochs(X, Y, sample_weight, max_iter, validation)
            finally:
                self._interrupt = None
                self._seed_kernel = False
                self._gd_kernel_arguments = None  # holds the caller's X and Y
                if self._engine is not None:
                    self._engine.close()  # its threads; made again if fit runs again
        if self.interrupted:
            if isinstance(X, RowBlocks):
                self._report_interrupt(X.n_blocks, "blocks")
            else:
                self._report_interrupt(X.shape[0], "rows")
        return self.history

    def _report_interrupt(self, n_samples: int, unit: str = "rows") -> None:
        where = f"{self.epoch} complete epoch(s)"
        if self._progress is not None:
            where += (
                f" and {self._progress.position} of {n_samples} {unit} of epoch {self.epoch + 1}"
            )
        if self.checkpoint is None:
            saved = (
                "No checkpoint is configured: pass checkpoint=PATH to fit to keep the "
                "progress across runs."
            )
        else:
            saved = self.last_checkpoint or "The checkpoint was written."
        logger.warning(
            "Training interrupted after %s; the model keeps its last completed step and its "
            "history. %s", where, saved, extra={"handnet_event": INTERRUPTED_EVENT},
        )

    def _save_checkpoint(self) -> None:
        if self.checkpoint is not None:
            self.last_checkpoint = self.checkpoint(self)

    def _fit_epochs(
        self,
        X: Array | RowBlocks,
        Y: Array | None,
        sample_weight: Array | None,
        max_iter: int,
        validation: Validation | None,
    ) -> None:
        network = self.network
        interrupt = self._interrupt
        assert interrupt is not None
        last_epoch = self.epoch + max_iter
        every = self.checkpoint_every
        # One deterministic step per epoch: the only regime where a rising loss says
        # the step is too large (mini-batch epochs' mean losses are noisy by nature).
        n_rows = X.n_rows if isinstance(X, RowBlocks) else X.shape[0]
        full_batch = self.batch_size is None or self.batch_size >= n_rows
        # The parameters at the start of this epoch and of the one before: where
        # a divergence sends the model back to (the nearest with a finite loss).
        snapshot: Array | None = None
        while self.epoch < last_epoch:
            previous, snapshot = snapshot, network.flat_parameters.copy()
            try:
                if isinstance(X, RowBlocks):
                    loss = self.run_stream_epoch(X)
                else:
                    assert Y is not None
                    loss = self.run_epoch(X, Y, sample_weight)
            except DivergenceError:
                self._restore_finite((snapshot, previous), X, Y, sample_weight)
                raise
            if not ((loss is None or math.isfinite(loss)) and self._parameters_finite()):
                self._restore_finite((snapshot, previous), X, Y, sample_weight)
                message = _divergence_message("parameters", self.epoch, self.current_lr)
                raise DivergenceError(message)
            if loss is None:
                # Stopped inside the epoch: its steps are kept, but it is not a
                # finished epoch; self._progress says where it stopped.
                self.interrupted = True
                break
            self.history.loss.append(loss)
            self.history.learning_rate.append(self.current_lr)
            self.epoch += 1
            self.schedule.observe(loss)
            validation_loss = None
            if validation is not None:
                validation_loss, score = validation()
                self.history.validation_loss.append(validation_loss)
                self.history.validation_score.append(score)
                self._best_score = max(self._best_score, score)
            converged = self._update_stopping(loss, validation_loss)
            if converged and full_batch and self.warn_at_max_iter and self._oscillated():
                self._warn_oscillation()
            # Callbacks hear every finished epoch, the one that meets the stopping
            # rule included (a logger or checkpoint would otherwise miss the last).
            stop_requested = bool(self.callbacks) and any(
                callback(self) for callback in self.callbacks
            )
            if converged:
                self.converged = True
            if converged or stop_requested:
                break
            if interrupt.requested and self.epoch < last_epoch:
                self.interrupted = True
                break
            if every and self.epoch % every == 0 and self.epoch < last_epoch:
                self._save_checkpoint()
        else:
            self._warn_not_converged()
        if self.interrupted:
            # The checkpoint holds the current parameters (not the best validation
            # epoch's), so that resuming continues exactly where training stopped.
            self._save_checkpoint()
            return
        self.finished = True
        if validation is not None and self._best_parameters is not None:
            network.flat_parameters[...] = self._best_parameters
        self._save_checkpoint()

    def _parameters_finite(self) -> bool:
        """Whether every parameter is finite: one sum, under fit's np.errstate.

        (The sum of finite values is finite unless it overflows, and then the
        elementwise test decides; this runs once an epoch, which for the seed's
        full-batch GD is once a step.)
        """
        parameters = self.network.flat_parameters
        return math.isfinite(np.add.reduce(parameters, axis=None)) or all_finite(parameters)

    def _restore_finite(
        self,
        snapshots: tuple[Array | None, ...],
        X: Array | RowBlocks,
        Y: Array | None,
        sample_weight: Array | None,
    ) -> None:
        """After a divergence, go back to the latest parameters with a finite loss.

        Finite parameters are not enough: one huge step leaves them finite but
        so large that the loss (and every prediction) overflows. The current
        parameters, then the snapshots (newest first), are tried on the full
        training loss; failing all, the newest finite ones are kept.
        """
        parameters = self.network.flat_parameters
        candidates = [parameters.copy(), *(s for s in snapshots if s is not None)]
        finite = [c for c in candidates if np.isfinite(c).all()]
        for candidate in finite:
            parameters[...] = candidate
            if isinstance(X, RowBlocks):
                loss = self.compute_gradients(X, None, None, training=False)
            else:
                assert Y is not None
                loss, _ = self.loss(self.network.forward(X, training=False), Y, sample_weight)
            if math.isfinite(loss):
                return
        parameters[...] = finite[0] if finite else candidates[-1]

    def _update_stopping(self, loss: float, validation_loss: float | None) -> bool:
        """scikit-learn's rule: count epochs without an improvement of ``tol``.

        On the training loss, or on the validation loss when there is one; the
        parameters of the lowest validation loss so far are kept.
        """
        monitored = loss if validation_loss is None else validation_loss
        if validation_loss is not None and validation_loss < self._best_loss:
            self._best_parameters = self.network.flat_parameters.copy()
        improved = self.tol is None or monitored <= self._best_loss - self.tol
        self._best_loss = min(self._best_loss, monitored)
        self._no_improvement = 0 if improved else self._no_improvement + 1
        return self.tol is not None and self._no_improvement >= self.n_iter_no_change

    #: A full-batch training loss that rose this far above its lowest value so far
    #: (relative to it, plus ``tol``) within the stopping rule's window did not settle.
    OSCILLATION = 0.1

    def _oscillated(self) -> bool:
        """Whether the stopping rule fired on a loss that went up, not on a plateau.

        The rule counts epochs without improvement; a step size too large for the
        data (unscaled features, large weights) also produces them, with the loss
        jumping around: 0.69, 1.25, 0.73, 0.63, 1.54, ... Such a stop is no
        convergence. Full-batch gradient descent lowers the loss at every step
        when the step is small enough, so a clear rise is the sign; a loss still
        falling, however slowly, is not.
        """
        losses = self.history.loss
        start = max(len(losses) - self.n_iter_no_change - 1, 1)
        tol = self.tol or 0.0
        for i in range(start, len(losses)):
            lowest = min(losses[:i])
            if losses[i] > lowest + tol + self.OSCILLATION * abs(lowest):
                return True
        return False

    def _warn_oscillation(self) -> None:
        window = self.history.loss[-(self.n_iter_no_change + 1) :]
        warnings.warn(
            f"Stopped after {self.epoch} epochs on a training loss that did not settle: "
            f"it went between {min(window):.4g} and {max(window):.4g} over the last "
            f"{len(window)} epochs (learning rate {self.current_lr:g}). Lower the "
            "learning rate, scale the features (zero mean, unit variance), or use "
            "optimizer='lbfgs' or 'adam'.",
            sklearn_compatible(ConvergenceWarning),
            stacklevel=4,
        )

    def _warn_not_converged(self) -> None:
        if self.tol is not None and self.warn_at_max_iter:
            warnings.warn(
                f"Stopped at max_iter={self.epoch} epochs before the loss settled "
                f"(tol={self.tol}); raise max_iter, scale the features or raise the "
                "learning rate.",
                sklearn_compatible(ConvergenceWarning),
                stacklevel=4,
            )

    def _check_first_step(self, gradient: Array) -> None:
        """L-BFGS stopped before its first step: no step along the gradient lowered the loss.

        At a minimum (a warm start from a finished fit, say) that is as it should be;
        but when the gradient's squared norm overflows, the line search's slope is
        infinite and no step can be judged: features of enormous magnitude, and the
        model is untrained. That is an error, as a divergence is for the gradient
        methods.
        """
        if math.isfinite(float(np.dot(gradient, gradient))):
            return
        raise DivergenceError(
            "L-BFGS could not take a single step: the gradient's squared norm overflows "
            f"(its largest entry is {float(np.max(np.abs(gradient))):.3g}), so no step along "
            "it can be judged. The model is untrained; scale the features (zero mean, unit "
            "variance) or check X for huge values."
        )

    def _fit_lbfgs(
        self,
        X: Array | RowBlocks,
        Y: Array | None,
        sample_weight: Array | None,
        max_iter: int,
        validation: Validation | None = None,
    ) -> None:
        optimizer = self.optimizer
        assert isinstance(optimizer, LBFGS)
        network = self.network
        interrupt = self._interrupt
        every = self.checkpoint_every
        # LBFGS.minimize's own default, spelled out so that a resumed run makes
        # the same relative-decrease test (see _lbfgs_pending).
        ftol = 10 * float(np.finfo(network.dtype).eps)
        if self._lbfgs_pending is not None:
            f, decrease = self._lbfgs_pending
            if decrease <= ftol * max(abs(f), abs(f + decrease), 1.0):
                self.converged = self.finished = True
                self._save_checkpoint()
                return
        previous_f: list[float] = []
        stopped_by_callback = False
        stopped_by_validation = [False]
        start_epoch = self.epoch

        def objective(theta: Array) -> tuple[float, Array]:
            network.flat_parameters[...] = theta
            loss = self.compute_gradients(X, Y, sample_weight, training=False)
            if not previous_f:
                previous_f.append(loss)  # f at the starting point
            return loss, network.flat_gradients.copy()

        def record(iteration: int, loss: float, theta: Array) -> bool:
            nonlocal stopped_by_callback
            self._lbfgs_pending = (loss, previous_f[0] - loss)
            previous_f[0] = loss
            self.history.loss.append(loss)
            self.history.learning_rate.append(1.0)
            self.epoch += 1
            network.flat_parameters[...] = theta
            if validation is not None:
                # Early stopping counts L-BFGS iterations as it counts epochs.
                validation_loss, score = validation()
                self.history.validation_loss.append(validation_loss)
                self.history.validation_score.append(score)
                self._best_score = max(self._best_score, score)
                if self._update_stopping(loss, validation_loss):
                    stopped_by_validation[0] = True
            stopped_by_callback = (
                any(callback(self) for callback in self.callbacks) or stopped_by_validation[0]
            )
            interrupted = interrupt is not None and interrupt.requested
            if (
                every
                and self.epoch % every == 0
                and not (stopped_by_callback or interrupted)
                and self.epoch - start_epoch < max_iter
            ):
                self._save_checkpoint()
            return stopped_by_callback or interrupted

        start = network.flat_parameters.copy()
        gtol = 0.0 if self.tol is None else self.tol
        theta, loss, gradient, converged = optimizer.minimize(
            objective, start, max_iter=max_iter, gtol=gtol, ftol=ftol, callback=record
        )
        if not (math.isfinite(loss) and np.isfinite(theta).all()):
            network.flat_parameters[...] = start
            raise DivergenceError(_divergence_message("loss", self.epoch, 1.0))
        network.flat_parameters[...] = theta
        self.interrupted = (
            interrupt is not None
            and interrupt.requested
            and not converged
            and not stopped_by_callback
            and self.epoch - start_epoch < max_iter
        )
        self.converged = converged
        if self.interrupted:
            self._save_checkpoint()
            return
        if stopped_by_validation[0]:
            self.converged = True
        elif not converged and not stopped_by_callback and self.epoch - start_epoch >= max_iter:
            self._warn_not_converged()
        elif optimizer.stop_reason == "line_search" and self.epoch == start_epoch:
            self._check_first_step(gradient)
        self.finished = True
        if validation is not None and self._best_parameters is not None:
            network.flat_parameters[...] = self._best_parameters
        self._save_checkpoint()

    # --- checkpoints ---------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything besides the network's parameters that decides the rest of the run.

        Returns
        -------
        dict
            A tree of ``dict``/``list``/numbers/strings with NumPy arrays as
            leaves (copies): ``epoch``, ``converged``, ``interrupted``,
            ``finished``, ``initial_learning_rate``, ``history`` (``loss``,
            ``validation_score``, ``learning_rate``, ``validation_loss`` lists),
            ``stopping`` (the
            early-stopping counter, best loss and score, best parameters or
            ``None``), ``rng`` (``Generator.bit_generator.state``), ``optimizer``
            (``type`` plus :meth:`Optimizer.state_dict`, or L-BFGS's memory),
            ``schedule`` (``type`` and its ``state_dict``) and ``progress``
            (where an interrupted epoch stopped, or ``None``).
        """
        progress = self._progress
        optimizer = self.optimizer
        optimizer_state: dict[str, Any]
        if isinstance(optimizer, LBFGS):
            n = self.network.n_parameters
            optimizer_state = {
                "type": "LBFGS",
                "iterations": optimizer.iterations,
                "n_evaluations": optimizer.n_evaluations,
                "s": np.array(optimizer.s, dtype=np.float64).reshape(-1, n),
                "y": np.array(optimizer.y, dtype=np.float64).reshape(-1, n),
                "pending": None if self._lbfgs_pending is None else list(self._lbfgs_pending),
            }
        else:
            optimizer_state = {"type": type(optimizer).__name__, **optimizer.state_dict()}
        state = {
            "epoch": self.epoch,
            "converged": self.converged,
            "interrupted": self.interrupted,
            "finished": self.finished,
            "initial_learning_rate": float(self.initial_learning_rate),
            "history": {
                "loss": [float(v) for v in self.history.loss],
                "validation_score": [float(v) for v in self.history.validation_score],
                "learning_rate": [float(v) for v in self.history.learning_rate],
                "validation_loss": [float(v) for v in self.history.validation_loss],
            },
            "stopping": {
                "no_improvement": self._no_improvement,
                "best_loss": float(self._best_loss),
                "best_score": float(self._best_score),
                "best_parameters": self._best_parameters,
            },
            "rng": self.rng.bit_generator.state,
            "optimizer": optimizer_state,
            "schedule": {"type": type(self.schedule).__name__, "state": self.schedule.state_dict()},
            "progress": None
            if progress is None
            else {
                "order": None if progress.order is None else progress.order.astype(np.int64),
                "position": progress.position,
                "total": progress.total,
                "weight_total": progress.weight_total,
            },
        }
        copied: dict[str, Any] = copy_tree(state)
        return copied

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
        network = self.network
        optimizer = self.optimizer
        check_trainer_state(
            state,
            network.n_parameters,
            network.dtype,
            type(optimizer).__name__,
            type(self.schedule).__name__,
            optimizer,
        )
        state = copy_tree(state)
        rng_state = state["rng"]
        if type(self.rng.bit_generator).__name__ == rng_state["bit_generator"]:
            # In place: the model and its dropout layers share this generator.
            self.rng.bit_generator.state = rng_state
        else:
            self.rng = check_rng_state(rng_state)
            network.set_random_state(self.rng)
        opt = state["optimizer"]
        if isinstance(optimizer, LBFGS):
            optimizer.reset()
            optimizer.s = list(opt["s"])
            optimizer.y = list(opt["y"])
            optimizer.iterations = opt["iterations"]
            optimizer.n_evaluations = opt["n_evaluations"]
            pending = opt["pending"]
            self._lbfgs_pending = None if pending is None else (pending[0], pending[1])
        else:
            optimizer.load_state_dict({k: v for k, v in opt.items() if k != "type"})
            self._lbfgs_pending = None
        self.schedule.load_state_dict(state["schedule"]["state"])
        self.epoch = state["epoch"]
        self.converged = state["converged"]
        self.interrupted = state["interrupted"]
        self.finished = state["finished"]
        self.initial_learning_rate = state["initial_learning_rate"]
        history = state["history"]
        self.history = History(
            loss=list(history["loss"]),
            validation_score=list(history["validation_score"]),
            learning_rate=list(history["learning_rate"]),
            validation_loss=list(history.get("validation_loss", [])),
        )
        stopping = state["stopping"]
        self._no_improvement = stopping["no_improvement"]
        self._best_loss = stopping["best_loss"]
        self._best_score = stopping["best_score"]
        self._best_parameters = stopping["best_parameters"]
        progress = state["progress"]
        self._progress = (
            None
            if progress is None
            else EpochProgress(
                None if progress["order"] is None else progress["order"].astype(np.intp),
                progress["position"],
                progress["total"],
                progress["weight_total"],
            )
        )
        self._resuming = True
