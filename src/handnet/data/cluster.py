r"""Full-batch loss and gradient of a Dask array, summed on the Dask workers.

The data stays where Dask keeps it; only small things travel. With a
``dask.distributed`` Client active (``Client(...)`` or ``with Client(...)``):

1. **Once per fit**, every row block of ``X`` is paired with its rows of ``y``
   and of the weights, converted, checked and encoded on the workers
   (:func:`handnet.data.streaming.prepare_block`) and **persisted** there: the
   client holds one future per block.
2. **Every evaluation** (one GD iteration, one L-BFGS function evaluation), one
   pure function, :func:`handnet.data.blocks.block_sums`, runs on each block
   future, on the worker that holds it, given the flat parameter vector (a few
   kilobytes: a NumPy array, never a lazy Dask graph that would grow each
   step), the network's layer config and the loss; it returns ``(loss_sum,
   gradient_sum, weight_sum)`` for its block. The blocks of one worker go in
   one task (``client.submit`` per worker, pinned to it), which adds its blocks'
   sums in block order: a task costs about a millisecond of scheduling and
   messages (16 tasks per iteration measured 26 ms of pure overhead), so one
   per block would dominate small iterations. The client gathers one triple
   per worker, adds them in a fixed order (so the result does not depend on
   which worker finished first) and divides by the total weight (see
   :mod:`handnet.data.blocks` for the math). The optimizer then takes its step on
   the client, in NumPy.

Without a Client, the local scheduler does the same: ``dask.compute`` over
one delayed :func:`~handnet.data.blocks.block_sums` per block, on Dask's thread pool.
Nothing is persisted then (the blocks are recomputed from their source at every
evaluation, e.g. read again from a zarr store); call ``X.persist()`` first if it
fits in memory.

dask and distributed are an optional extra (``pip install handnet[dask]``):
this module imports them when it runs, and :mod:`handnet` never imports this
module by itself (the trainer does, on meeting a Dask array).
"""

from __future__ import annotations

import itertools
import sys
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..nn.losses import Loss
from ..nn.network import Sequential
from .blocks import block_sums, rows_per_block, single_threaded_blas
from .streaming import prepare_block

if TYPE_CHECKING:
    from .streaming import RowBlocks

Array = NDArray[np.floating]


def active_client() -> Any:
    """The active ``dask.distributed`` Client, or ``None``.

    A Client can only exist once ``distributed`` has been imported, so when it
    has not been, this imports nothing and answers ``None``.
    """
    if "distributed" not in sys.modules:
        return None
    from distributed import default_client

    try:
        return default_client()
    except ValueError:  # no client
        return None


def _block_parts(data: RowBlocks) -> list[tuple[Any, Any, Any, tuple[int, int]]]:
    """Per block of ``data``: its ``X`` (a Dask delayed), ``y`` and weight parts, and its rows."""
    X = data.X
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})  # one block per row range, all columns together
    delayed_X = X.to_delayed().ravel().tolist()
    y = data.y
    if hasattr(y, "dask"):  # a Dask y, cut at X's row boundaries
        y_chunks: tuple[Any, ...] = (tuple(np.diff(data.bounds).tolist()),)
        if y.ndim == 2:
            y_chunks += (y.shape[1],)
        y_parts = y.rechunk(y_chunks).to_delayed().ravel().tolist()
    else:
        y_parts = [np.asarray(y[start:stop]) for start, stop in itertools.pairwise(data.bounds)]
    weights = data.sample_weight
    parts = []
    for index in data.blocks:
        i = int(index)
        start, stop = data.rows(i)
        w = None if weights is None else weights[start:stop]
        parts.append((delayed_X[i], y_parts[i], w, (start, stop)))
    return parts


class _ClusterState:
    """The persisted blocks of one fit (kept on the :class:`~handnet.data.streaming.RowBlocks`).

    Attributes
    ----------
    futures : list of Future
        One per block, in block order.
    groups : list of (worker address or None, list of int)
        The blocks each worker holds, fixed once the blocks are persisted: every
        evaluation sends one task per group, and the sums are added group by
        group in this order, so a fit's results do not depend on timing.
    """

    def __init__(self, client: Any, futures: list[Any]) -> None:
        from distributed import wait

        self.client = client
        self.futures = futures
        wait(futures)  # placed (or failed: the error surfaces at the first gather)
        holders = client.who_has(futures)
        by_worker: dict[str | None, list[int]] = {}
        for index, future in enumerate(futures):
            workers = sorted(holders.get(future.key, ()))
            by_worker.setdefault(workers[0] if workers else None, []).append(index)
        self.groups = sorted(by_worker.items(), key=lambda item: (item[0] is None, item[0] or ""))


def _persist(data: RowBlocks, client: Any) -> _ClusterState:
    import dask

    encoder, dtype, n_features = data.encoder, data.dtype, data.n_features
    tasks = []
    for x_part, y_part, w_part, rows in _block_parts(data):
        if isinstance(y_part, np.ndarray):
            # In-memory pieces go to the workers once, as data, not inside the graph.
            y_part = client.scatter(y_part)
        if isinstance(w_part, np.ndarray):
            w_part = client.scatter(w_part)
        tasks.append(
            dask.delayed(prepare_block, pure=True)(
                x_part, y_part, w_part, encoder, dtype, n_features, rows
            )
        )
    futures = client.compute(tasks)
    return _ClusterState(client, list(futures))


def _apply(
    blocks: list[tuple[Array, Array, Array | None]], **kwargs: Any
) -> tuple[float, Array, float]:
    """:func:`~handnet.data.blocks.block_sums` over persisted ``(X, Y, weight)`` blocks, in order.

    One task per worker, over the blocks it holds: a task costs about a
    millisecond of scheduling and messages, which one task per block would
    pay many times over each iteration.
    """
    loss_sum = weight_sum = 0.0
    gradient_sum: Array | None = None
    for X, Y, weight in blocks:
        block_loss, block_gradient, block_weight = block_sums(X, Y, weight, **kwargs)
        loss_sum += block_loss
        weight_sum += block_weight
        gradient_sum = block_gradient if gradient_sum is None else gradient_sum + block_gradient
    assert gradient_sum is not None
    return loss_sum, gradient_sum, weight_sum


def _prepare_and_sum(
    x: Any, y: Any, w: Any, encoder: Any, dtype: Any, n_features: int, rows: tuple[int, int],
    *args: Any,
) -> tuple[float, Array, float]:
    """Prepare one block from its source and sum it (the local scheduler's task)."""
    X, Y, weight = prepare_block(np.asarray(x), np.asarray(y), w, encoder, dtype, n_features, rows)
    return block_sums(X, Y, weight, *args)


def dask_full_batch(
    network: Sequential, data: RowBlocks, loss: Loss, training: bool, block_bytes: int
) -> float:
    """Mean loss over Dask-backed :class:`~handnet.data.streaming.RowBlocks`; gradient into network.

    Parameters
    ----------
    network : Sequential
        Its ``flat_parameters`` are sent to the workers; its ``flat_gradients``
        receive the gradient of the mean loss.
    data : RowBlocks
        Over a Dask array ``X``.
    loss : Loss
        A plain loss (its weighted mean over a block, see :mod:`handnet.data.blocks`).
    training : bool
        Training-mode forward pass (no effect without dropout, which full-batch
        training on a cluster does not support).
    block_bytes : int
        Bytes per cache-sized block inside each Dask block.

    Returns
    -------
    float
        The weighted mean loss over all rows.
    """
    import dask

    parameters = network.flat_parameters.copy()
    config = network.config()
    rows = rows_per_block(data.n_features, data.dtype.itemsize, block_bytes)
    client = active_client()
    if client is not None:
        state = data.cluster_state
        if not isinstance(state, _ClusterState) or state.client is not client:
            state = data.cluster_state = _persist(data, client)
        # One task per worker, on the blocks it holds; pure=False: the same
        # parameters twice (a line search's retry) must still run.
        futures = [
            client.submit(
                _apply,
                [state.futures[i] for i in indices],
                parameters=parameters,
                config=config,
                loss=loss,
                rows=rows,
                training=training,
                workers=None if worker is None else [worker],
                allow_other_workers=worker is not None,  # a worker lost: run elsewhere
                pure=False,
            )
            for worker, indices in state.groups
        ]
        results = client.gather(futures)
    else:
        tasks = [
            dask.delayed(_prepare_and_sum, pure=False)(
                x, y, w, data.encoder, data.dtype, data.n_features, rows_range,
                parameters, config, loss, rows, training, False,
            )
            for x, y, w, rows_range in _block_parts(data)
        ]
        # The local scheduler runs the tasks on threads of this process: BLAS goes
        # single-threaded for all of them here (a per-task limit would race).
        with single_threaded_blas():
            results = dask.compute(*tasks, scheduler="threads")
    gradient = network.flat_gradients
    gradient[...] = 0
    loss_sum = weight_sum = 0.0
    for block_loss, block_gradient, block_weight in results:  # block order: deterministic
        gradient += block_gradient
        loss_sum += block_loss
        weight_sum += block_weight
    if weight_sum <= 0.0:
        raise ValueError("every row has sample weight 0: the mean loss is undefined")
    gradient *= gradient.dtype.type(1.0 / weight_sum)
    return loss_sum / weight_sum
