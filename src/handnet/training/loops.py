"""One epoch: a pass over the data in batches, as one full batch, or block by block.

* :func:`run_epoch`: in-memory rows. Full batch: one step (the seed's model by its
  GD kernel). Mini-batches: the rows in a new random order, gathered batch by batch
  into buffers reused all epoch; per-example SGD of the seed's model in chunks of
  its SGD kernel.
* :func:`run_stream_epoch`: out-of-core rows (:class:`~handnet.data.streaming.RowBlocks`),
  storage block by storage block.

Between two steps (or kernel chunks, or blocks) an interrupt can stop the epoch;
its :class:`~handnet.training.history.EpochProgress` then says where, and the next
call finishes that same epoch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from ..data import blocks
from ..data.streaming import Block, RowBlocks
from ..exceptions import DivergenceError
from .history import EpochProgress
from .protocol import TrainerView
from .safety import divergence_message, stop_inside_epoch

Array = NDArray[np.floating]


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


def _diverged(trainer: TrainerView) -> DivergenceError:
    return DivergenceError(divergence_message("loss", trainer.epoch, trainer.current_lr))


def _limit_blas_threads(trainer: TrainerView, rows: int) -> None:
    """Inside ``fit``, set BLAS's threads for steps of ``rows`` rows (once per fit).

    See :mod:`handnet.training.threads`; ``fit`` lifts the limit when it ends. An
    epoch run outside ``fit`` (``Trainer.run_epoch`` called directly) changes nothing,
    as nothing would lift it.
    """
    if trainer._interrupt is not None:
        trainer._kernels.threads.enter(trainer.network, rows)


def run_epoch(
    trainer: TrainerView, X: Array, Y: Array, sample_weight: Array | None
) -> float | None:
    """One pass over in-memory rows (see :meth:`Trainer.run_epoch`)."""
    n_samples = X.shape[0]
    batch_size = trainer.batch_size
    per_example_kernel = batch_size == 1 and sample_weight is None and trainer._kernels.active
    if not per_example_kernel:  # which multiplies no matrices: BLAS's threads do not matter
        rows = n_samples if batch_size is None else min(batch_size, n_samples)
        _limit_blas_threads(trainer, rows)
    if batch_size is None or batch_size >= n_samples:
        trainer._start_epoch_learning_rate()
        # Data over blocks.MIN_BYTES goes to the block engine through train_step:
        # X read once, in cache-sized blocks on all cores (faster than the kernel).
        if trainer._kernels.active and sample_weight is None and X.nbytes < blocks.MIN_BYTES:
            step = trainer._step
            loss = trainer._kernels.gd_step(
                X, Y, step.network, step.optimizer.learning_rate, step.l2
            )
            if not math.isfinite(loss):
                raise _diverged(trainer)
            return loss
        return trainer.train_step(X, Y, sample_weight)
    progress = trainer._progress
    if progress is None:
        trainer._start_epoch_learning_rate()
        order = trainer.rng.permutation(n_samples) if trainer.shuffle else None
        progress = trainer._progress = EpochProgress(order)
    order = progress.order if progress.order is not None else np.arange(n_samples)
    if per_example_kernel:
        finished = _kernel_epoch(trainer, X, Y, progress, order)
    else:
        finished = _batch_epoch(trainer, X, Y, sample_weight, progress, order, batch_size)
    if not finished:
        return None
    trainer._progress = None
    return progress.mean_loss


def _batch_epoch(
    trainer: TrainerView,
    X: Array,
    Y: Array,
    sample_weight: Array | None,
    progress: EpochProgress,
    order: NDArray[np.intp],
    batch_size: int,
) -> bool:
    """The generic steps of an epoch from ``progress`` on; whether it finished."""
    train_step, gather, interrupt = trainer.train_step, trainer._gather, trainer._interrupt
    n_samples = X.shape[0]
    for start in range(progress.position, n_samples, batch_size):
        index = order[start : start + batch_size]
        if len(index) == 1:
            # One example per step: plain slices are views, no gather needed.
            i = int(index[0])
            Xb, Yb = X[i : i + 1], Y[i : i + 1]
            wb = None if sample_weight is None else sample_weight[i : i + 1]
        else:
            Xb = gather("X", X, index)
            Yb = gather("Y", Y, index)
            wb = None if sample_weight is None else sample_weight[index]
        batch_loss = train_step(Xb, Yb, wb)
        batch_weight = float(len(index)) if wb is None else float(np.sum(wb))
        progress.total += batch_loss * batch_weight
        progress.weight_total += batch_weight
        progress.position = start + len(index)
        if stop_inside_epoch(interrupt, progress, n_samples):
            return False
    return True


def _kernel_epoch(
    trainer: TrainerView, X: Array, Y: Array, progress: EpochProgress, order: NDArray[np.intp]
) -> bool:
    """Per-example SGD of the seed's model from ``progress`` on, in kernel chunks."""
    step, kernels = trainer._step, trainer._kernels
    n_samples = X.shape[0]
    numba = kernels.use_numba(X, n_samples, trainer.NUMBA_MIN_ROWS)
    chunk = trainer.KERNEL_CHUNK
    for start in range(progress.position, n_samples, chunk):
        index = order[start : start + chunk]
        progress.total = kernels.sgd_rows(
            X, Y, index, step.network, trainer.current_lr, step.l2, progress.total, numba
        )
        if not math.isfinite(progress.total):
            raise _diverged(trainer)
        progress.weight_total += len(index)
        progress.position = start + len(index)
        if stop_inside_epoch(trainer._interrupt, progress, n_samples):
            return False
    return True


def run_stream_epoch(trainer: TrainerView, data: RowBlocks) -> float | None:
    """One pass over out-of-core rows, block by block (see :meth:`Trainer.run_stream_epoch`)."""
    batch_size = trainer.batch_size
    _limit_blas_threads(trainer, data.n_rows if batch_size is None else batch_size)
    if batch_size is None or batch_size >= data.n_rows:
        # One step, its gradient summed block by block (compute_gradients).
        trainer._start_epoch_learning_rate()
        return trainer.train_step(data, None, None)
    progress = trainer._progress
    if progress is None:
        trainer._start_epoch_learning_rate()
        order = data.block_order(trainer.rng if trainer.shuffle else None)
        progress = trainer._progress = EpochProgress(order)
    order = progress.order if progress.order is not None else data.blocks
    kernel = batch_size == 1 and trainer._seed_kernel_applies()
    blocks_iter = data.iter_blocks(order[progress.position :])
    try:
        for block in blocks_iter:
            n_rows = len(block.X)
            rows = trainer.rng.permutation(n_rows) if trainer.shuffle else np.arange(n_rows)
            if kernel and block.weight is None:
                _kernel_block(trainer, block.X, block.Y, rows, progress)
            else:
                _block_batches(trainer, block, rows, batch_size, progress)
            progress.position += 1
            if stop_inside_epoch(trainer._interrupt, progress, len(order)):
                return None
    finally:
        blocks_iter.close()  # stops the prefetching thread on an error or interrupt
    trainer._progress = None
    return progress.mean_loss


def _block_batches(
    trainer: TrainerView,
    block: Block,
    rows: NDArray[np.intp],
    batch_size: int,
    progress: EpochProgress,
) -> None:
    """The steps of one storage block: its rows (in this order) cut into batches."""
    train_step, gather = trainer.train_step, trainer._gather
    for start in range(0, len(rows), batch_size):
        index = rows[start : start + batch_size]
        Xb = gather("X", block.X, index)
        Yb = gather("Y", block.Y, index)
        wb = None if block.weight is None else block.weight[index]
        batch_loss = train_step(Xb, Yb, wb)
        batch_weight = float(len(index)) if wb is None else float(np.sum(wb))
        progress.total += batch_loss * batch_weight
        progress.weight_total += batch_weight


def _kernel_block(
    trainer: TrainerView, X: Array, Y: Array, rows: NDArray[np.intp], progress: EpochProgress
) -> None:
    """Per-example SGD of a logistic regression over one block, in the lean kernel."""
    step, kernels = trainer._step, trainer._kernels
    progress.total = kernels.sgd_rows(
        X, Y, rows, step.network, trainer.current_lr, step.l2, progress.total,
        kernels.use_numba(X, len(rows), trainer.NUMBA_MIN_ROWS),
    )
    if not math.isfinite(progress.total):
        raise _diverged(trainer)
    progress.weight_total += len(rows)
