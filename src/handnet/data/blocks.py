r"""Full-batch loss and gradient as a sum over row blocks.

Full-batch gradient descent and L-BFGS need, at every iteration, the mean loss
over *all* training rows and its gradient. Both are sums over rows, so they are
sums over any partition of the rows into blocks :math:`B_1, \dots, B_m`. With
sample weights :math:`s_i` (all 1 by default) and :math:`S_b = \sum_{i \in B_b} s_i`:

.. math::

    L(\theta) = \frac{\sum_i s_i \ell_i(\theta)}{\sum_i s_i}
              = \frac{\sum_b S_b\, L_b(\theta)}{\sum_b S_b},
    \qquad
    \nabla L(\theta) = \frac{\sum_b S_b\, \nabla L_b(\theta)}{\sum_b S_b}

where :math:`L_b` is the weighted mean loss of block :math:`b` alone: exactly what
the network's forward pass, the loss and the backward pass compute on that
block. Each block contributes three numbers, ``(loss_sum, gradient_sum,
weight_sum)`` :math:`= (S_b L_b,\ S_b \nabla L_b,\ S_b)`; they are added up and
divided once at the end. The result equals the one-shot computation up to the
order of the floating-point sums (about 1e-15 relative in float64).

Why blocks, when the data fits in memory
----------------------------------------
One gradient of a linear model reads ``X`` twice: ``z = X @ w`` and ``X.T @ r``.
Done on all of ``X`` at once, both products stream ``X`` from main memory. Done on
a block of about :data:`BLOCK_BYTES` (a few thousand rows, about a core's L2
cache), the second product finds the block still in cache: ``X`` comes from
memory once per iteration. The loss's elementwise work on a block's
``(rows, outputs)`` logits stays in cache too.

The seed's model (one sigmoid unit) goes one step further when numba is
installed: :func:`~handnet.training.kernels.logistic_block_sums` reads each row once and
does the dot product, the loss, the residual and the gradient update while the
row is in L1, one compiled call per block (and no Python between its steps, so
the threads never wait for each other's GIL).

Threads
-------
Blocks are independent, so :class:`FullBatchGradient` gives them to
``n_threads`` threads (one per core by default; see :func:`default_threads`):
thread ``t`` takes blocks ``t, t + T, t + 2T, ...`` and keeps its own
:class:`Workspace`, a private copy of the network (its own layer caches and its
own gradient accumulator) that receives the shared parameters at the start of
each evaluation. NumPy releases the GIL inside BLAS calls and ufunc loops, which
is where a block's time goes, so the threads run on separate cores. BLAS itself
is made single-threaded while they run (through ``threadpoolctl`` if it is
installed; without it, set ``OPENBLAS_NUM_THREADS=1`` or similar, or BLAS's own
threads compete with ours). The assignment of blocks to threads is fixed and the
per-thread sums are added in thread order, so the result does not depend on
timing: the same data and parameters give the same bits on every run.

Small data sets (below :data:`MIN_BYTES`), or a forward pass that draws dropout
masks, use the plain one-shot path: there blocks gain nothing, or would change
the random stream.

Out of core
-----------
The same sums run over data that is not in memory: a
:class:`~handnet.data.streaming.RowBlocks` (a ``numpy.memmap``, an ``.npy`` file opened
with ``mmap_mode``, a zarr or h5py array) is read one storage block after the
other, each split into cache-sized blocks for the threads; a Dask array is summed
on the Dask workers by :mod:`handnet.data.cluster` with the same :func:`block_sums`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..nn.layers import LAYERS, Dense, Layer, iter_layers
from ..nn.losses import BinaryCrossEntropy, Loss
from ..nn.network import Sequential
from ..training.kernels import block_sums_compiled, logistic_block_sums

if TYPE_CHECKING:
    from .streaming import RowBlocks

Array = NDArray[np.floating]

#: Bytes of ``X`` per block: small enough that a block read by ``X @ w`` is still in
#: cache (L2, or the shared L3) for ``X.T @ r``, large enough that the per-block
#: Python overhead (a dozen NumPy calls) stays small. Measured on 2,000,000 x 50
#: float64, 2 threads, 2 MiB of L2 per core: 1 MiB 47 ms, 2 MiB 40 ms, 4 MiB 42 ms,
#: 8 MiB 46 ms per iteration (one pass over X: 18 ms).
BLOCK_BYTES = 2 << 20

#: Blocks of the seed's model where its compiled kernel adds them: that kernel reads each
#: row once and needs no block in cache, so larger blocks only save the per-block Python
#: (some 7 us a call). 1,000,000 x 100 float64, one thread, Zen 4: 41-42 ms an iteration
#: with 2 MiB blocks, 38 ms with 32 MiB.
COMPILED_BLOCK_BYTES = 32 << 20

#: ... but at least this many blocks per thread, so that the threads finish together.
MIN_BLOCKS_PER_THREAD = 8

#: Arrays smaller than this take the plain one-shot path: they fit in the caches
#: already, and threads would cost more than they save.
MIN_BYTES = 8 << 20

#: Most threads :func:`default_threads` picks: memory bandwidth, which bounds a
#: full-batch iteration, saturates long before a large machine runs out of cores.
MAX_THREADS = 8


def rows_per_block(n_features: int, itemsize: int, block_bytes: int | None = None) -> int:
    """Rows in a block of about ``block_bytes`` (default :data:`BLOCK_BYTES`; at least 64)."""
    size = BLOCK_BYTES if block_bytes is None else int(block_bytes)
    return max(64, size // max(1, int(n_features) * int(itemsize)))


def default_threads() -> int:
    """Threads for an in-memory evaluation: the BLAS thread count the caller set, else the cores.

    The BLAS thread count (read with ``threadpoolctl`` when installed) is what a
    user or a benchmark chose for "how many cores may this use"; a process with
    BLAS limited to one thread (as the test suite's is) then stays on one core.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = max(1, cores or 1)
    blas = _BLAS.threads_outside_our_limit()
    if blas is not None:
        cores = min(cores, blas)
    return max(1, min(cores, MAX_THREADS))


class _OneBlasThread:
    """"BLAS on one thread", shared by every evaluation of this process that asks for it.

    A BLAS thread limit is process-wide, and threadpoolctl's limit objects each
    save the count they found and restore it when they end. Two that overlap (two
    models trained at once, in two threads) would go wrong: the second saves the
    first's 1 and, ending last, leaves BLAS at one thread for good. Here the first
    user sets the limit and remembers the count it replaced, later ones only count
    themselves in, and the last one out restores it; meanwhile
    :func:`default_threads` answers with the remembered count, not the 1 in force,
    so that an engine made during another's evaluation picks the same number of
    threads (and so sums in the same order) as it would alone.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._limiter: Any = None
        self._outer: int | None = None
        self._controller: Any = None
        self._modules_seen = 0

    def _get_controller(self) -> Any:
        """threadpoolctl's controller, made again only after modules were imported.

        Listing the loaded libraries takes milliseconds, so the controller is kept;
        but it knows only the libraries loaded when it was made, and an import since
        (scikit-learn's OpenMP, SciPy's BLAS) would escape its limits.
        """
        imported = len(sys.modules)
        if self._controller is None or imported != self._modules_seen:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:
                return None
            self._controller = ThreadpoolController()
            self._modules_seen = len(sys.modules)  # threadpoolctl itself may be new
        return self._controller

    def _current(self, controller: Any) -> int | None:
        """NumPy's BLAS thread count.

        Other BLAS libraries may be loaded too (SciPy's, pulled in by numba or
        scikit-learn, starts with its own default count): only the one NumPy
        bundles runs the products here. A NumPy linked to a system BLAS has no
        bundled one; then the largest count stands for all.
        """
        libraries = [lib for lib in controller.lib_controllers if lib.user_api == "blas"]
        numpy_own = [lib for lib in libraries if "numpy" in str(lib.filepath)]
        counts = [lib.num_threads for lib in (numpy_own or libraries)]
        return max(counts) if counts else None

    def threads_outside_our_limit(self) -> int | None:
        """BLAS's thread count as the caller set it (``None`` without threadpoolctl or BLAS)."""
        with self._lock:
            if self._users:
                return self._outer
            controller = self._get_controller()
            return None if controller is None else self._current(controller)

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                controller = self._get_controller()
                if controller is not None:
                    self._outer = self._current(controller)
                    self._limiter = controller.limit(limits=1, user_api="blas")
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0 and self._limiter is not None:
                    self._limiter.restore_original_limits()
                    self._limiter = None
                    self._outer = None


_BLAS = _OneBlasThread()


def single_threaded_blas() -> contextlib.AbstractContextManager[None]:
    """A context in which BLAS runs on one thread (with ``threadpoolctl``; a no-op without it).

    Nested and concurrent uses (several threads of this process) share one limit:
    it is set by the first to enter and lifted by the last to leave.
    """
    return _BLAS()


# --- a private copy of the network ---------------------------------------------------------


def rebuild_network(config: Sequence[dict[str, Any]], dtype: Any) -> Sequential:
    """A fresh :class:`~handnet.nn.network.Sequential` from ``Sequential.config()`` (zero weights).

    Its flat parameter vector has the layout of the original's (the same layers in
    the same order), so ``copy.flat_parameters[...] = original.flat_parameters``
    makes it compute the same function.

    Raises
    ------
    TypeError
        For a layer type this module does not know (see :func:`supports`).
    """
    layers: list[Layer] = []
    for entry in config:
        kind = str(entry.get("type"))
        if kind not in LAYERS:
            raise TypeError(f"cannot rebuild a layer of type {kind!r} for block-wise gradients")
        layers.append(LAYERS[kind].from_config(entry, dtype))
    return Sequential(layers)


def supports(network: Sequential, training: bool) -> bool:
    """Whether block-wise evaluation gives this network's plain result.

    Every layer must be one :func:`rebuild_network` knows, keep no buffers, and
    a training-mode forward pass must not draw dropout masks (threads would draw
    them in a different order than one pass over all rows).
    """
    for layer in iter_layers(network.layers):
        if LAYERS.get(type(layer).__name__) is not type(layer):
            return False
        if layer.draws_random_numbers(training):
            return False
        if layer.buffers():
            # Its state (running statistics) lives in this network alone: the threads'
            # copies would neither see nor update it.
            return False
    return True


class Workspace:
    """One thread's (or one Dask worker's) copy of the network and its running sums.

    Parameters
    ----------
    config : list of dict
        ``Sequential.config()`` of the network being trained.
    dtype : float32 or float64

    Attributes
    ----------
    network : Sequential
        Private layers: the forward pass caches a block's activations here, not in
        the trained network's layers, so threads never share a cache.
    gradient_sum : ndarray of shape (n_parameters,)
        :math:`\\sum_b S_b \\nabla L_b` over the blocks added since :meth:`reset`.
    loss_sum, weight_sum : float
        :math:`\\sum_b S_b L_b` and :math:`\\sum_b S_b`.
    """

    def __init__(self, config: Sequence[dict[str, Any]], dtype: Any) -> None:
        self.network = rebuild_network(config, dtype)
        self.gradient_sum: Array = np.zeros_like(self.network.flat_gradients)
        self.loss_sum = 0.0
        self.weight_sum = 0.0
        layers = self.network.layers
        #: The seed's model (one sigmoid unit) adds its blocks through the lean kernel
        #: of handnet.training.kernels: the same sums with a third of the NumPy calls.
        self.logistic = (
            len(layers) == 1 and isinstance(layers[0], Dense) and layers[0].n_outputs == 1
        )
        self._scratch: Array | None = None

    def reset(self, parameters: Array) -> None:
        """Start new sums at the parameters ``parameters`` (shape ``(n_parameters,)``)."""
        self.network.flat_parameters[...] = parameters
        self.gradient_sum[...] = 0
        self.loss_sum = 0.0
        self.weight_sum = 0.0

    def add(
        self, X: Array, Y: Array, sample_weight: Array | None, loss: Loss, training: bool = False
    ) -> None:
        r"""Add one block's :math:`(S_b L_b, S_b \nabla L_b, S_b)` to the sums.

        Parameters
        ----------
        X : ndarray of shape (rows, n_features)
        Y : ndarray of shape (rows, n_outputs)
            Targets in the loss's format.
        sample_weight : ndarray of shape (rows,) or None
        loss : Loss
            A plain loss: its value is the block's weighted mean :math:`L_b` and its
            gradient :math:`\partial L_b / \partial z`.
        """
        if len(X) == 0:
            return
        if sample_weight is None:
            weight = float(len(X))
        else:
            weight = float(np.sum(sample_weight, dtype=np.float64))
            if weight == 0.0:
                return  # contributes nothing (and its mean loss would be 0/0)
        network = self.network
        if self.logistic and sample_weight is None and type(loss) is BinaryCrossEntropy:
            self._add_logistic(X, Y, weight)
            return
        logits = network.forward(X, training=training)
        mean, dlogits = loss(logits, Y, sample_weight)
        # The loss divides by S_b; multiplying back gives the block's gradient *sum*,
        # which adds across blocks (one division by the total weight at the end).
        dlogits *= dlogits.dtype.type(weight)
        network.backward(dlogits)
        self.gradient_sum += network.flat_gradients
        self.loss_sum += mean * weight
        self.weight_sum += weight

    def _add_logistic(self, X: Array, Y: Array, weight: float) -> None:
        """:meth:`add` for one sigmoid unit, by ``training.kernels.logistic_block_sums``."""
        dense = self.network.layers[0]
        assert isinstance(dense, Dense)
        rows = X.shape[0]
        if self._scratch is None or self._scratch.shape[1] < rows:
            self._scratch = np.empty((4, rows), dtype=X.dtype)
        scratch = self._scratch[:, :rows]
        # Weights come first in the flat layout, the bias last (one Dense layer).
        loss_sum, bias_sum = logistic_block_sums(
            X, Y[:, 0], dense.weights[:, 0], float(dense.bias[0]), self.gradient_sum[:-1],
            (scratch[0], scratch[1], scratch[2], scratch[3]),
        )
        self.gradient_sum[-1] += bias_sum
        self.loss_sum += loss_sum
        self.weight_sum += weight

    def add_rows(
        self,
        X: Array,
        Y: Array,
        sample_weight: Array | None,
        loss: Loss,
        rows: int,
        training: bool = False,
        start: int = 0,
        step: int = 1,
    ) -> None:
        """Add the blocks ``start, start + step, ...`` of ``rows`` rows each of ``X``, ``Y``."""
        n = X.shape[0]
        for first in range(start * rows, n, step * rows):
            last = min(first + rows, n)
            w = None if sample_weight is None else sample_weight[first:last]
            self.add(X[first:last], Y[first:last], w, loss, training)


def block_sums(
    X: Array,
    Y: Array,
    sample_weight: Array | None,
    parameters: Array,
    config: Sequence[dict[str, Any]],
    loss: Loss,
    rows: int | None = None,
    training: bool = False,
    limit_blas: bool = True,
) -> tuple[float, Array, float]:
    r"""``(loss_sum, gradient_sum, weight_sum)`` of one chunk of rows: a pure function.

    This is what a Dask worker runs on each block of a distributed array (see
    :mod:`handnet.data.cluster`): it needs only the chunk, the small flat parameter
    vector and the network's layer config, and it splits the chunk into
    cache-sized blocks itself.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
    Y : ndarray of shape (n_rows, n_outputs)
    sample_weight : ndarray of shape (n_rows,) or None
    parameters : ndarray of shape (n_parameters,)
        The network's flat parameter vector.
    config : list of dict
        ``Sequential.config()``.
    loss : Loss
    rows : int, optional
        Rows per cache-sized block (default :func:`rows_per_block`).
    limit_blas : bool
        Run BLAS single-threaded meanwhile (a worker process with one thread per
        task; the caller sets it when it runs several tasks on threads of its own).

    Returns
    -------
    loss_sum : float
        :math:`\sum_i s_i \ell_i`.
    gradient_sum : ndarray of shape (n_parameters,)
        :math:`\sum_i s_i \nabla \ell_i`.
    weight_sum : float
        :math:`\sum_i s_i`.
    """
    workspace = _worker_workspace(config, parameters.dtype)
    workspace.reset(parameters)
    rows = rows or rows_per_block(X.shape[1], X.dtype.itemsize)
    context = single_threaded_blas() if limit_blas else contextlib.nullcontext()
    with context, np.errstate(over="ignore", invalid="ignore"):
        workspace.add_rows(X, Y, sample_weight, loss, rows, training)
    return workspace.loss_sum, workspace.gradient_sum.copy(), workspace.weight_sum


_WORKER_WORKSPACES: dict[tuple[Any, ...], Workspace] = {}


def _worker_workspace(config: Sequence[dict[str, Any]], dtype: Any) -> Workspace:
    """A workspace per (network config, dtype, thread), kept between calls in this process."""
    key = (repr(list(config)), np.dtype(dtype).str, threading.get_ident())
    workspace = _WORKER_WORKSPACES.get(key)
    if workspace is None:
        if len(_WORKER_WORKSPACES) > 32:  # many networks over a long-lived worker
            _WORKER_WORKSPACES.clear()
        workspace = _WORKER_WORKSPACES[key] = Workspace(config, dtype)
    return workspace


# --- the engine ------------------------------------------------------------------------------


class FullBatchGradient:
    """Loss and gradient of a network over all rows, block by block, on several threads.

    Parameters
    ----------
    network : Sequential
        The network being trained: its :attr:`~Sequential.flat_parameters` are
        read and its :attr:`~Sequential.flat_gradients` written.
    n_threads : int, optional
        Threads for in-memory blocks (default :func:`default_threads`).
    block_bytes : int, optional
        Bytes of ``X`` per cache-sized block (default :data:`BLOCK_BYTES`).

    Notes
    -----
    Each evaluation writes the gradient of the weighted *mean* loss (without any
    penalty) into ``network.flat_gradients`` and returns the mean loss, like the
    forward/loss/backward of :meth:`handnet.training.Trainer.compute_gradients`.
    Call :meth:`close` when done (the trainer does at the end of ``fit``) to stop
    the threads.
    """

    def __init__(
        self, network: Sequential, n_threads: int | None = None, block_bytes: int | None = None
    ) -> None:
        self.network = network
        self.n_threads = default_threads() if n_threads is None else max(1, int(n_threads))
        self.block_bytes = BLOCK_BYTES if block_bytes is None else int(block_bytes)
        #: Whether the block size is the default (which the compiled kernel may enlarge).
        self._default_block_bytes = block_bytes is None
        config = network.config()
        self._workspaces = [Workspace(config, network.dtype) for _ in range(self.n_threads)]
        self._pool: ThreadPoolExecutor | None = None

    def close(self) -> None:
        """Stop the worker threads (a later evaluation starts new ones)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    # --- sums ------------------------------------------------------------------------------

    def _reset(self) -> None:
        parameters = self.network.flat_parameters
        for workspace in self._workspaces:
            workspace.reset(parameters)

    def _add_in_memory(
        self, X: Array, Y: Array, sample_weight: Array | None, loss: Loss, training: bool
    ) -> None:
        """Add all rows of in-memory ``X``, thread ``t`` taking blocks ``t, t + T, ...``."""
        rows = self._block_rows(X, sample_weight, loss)
        n_blocks = -(-X.shape[0] // rows)
        threads = min(self.n_threads, n_blocks)
        if threads <= 1:
            self._workspaces[0].add_rows(X, Y, sample_weight, loss, rows, training)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.n_threads, thread_name_prefix="handnet-blocks")
        futures = [
            self._pool.submit(
                self._workspaces[t].add_rows, X, Y, sample_weight, loss, rows, training, t, threads
            )
            for t in range(threads)
        ]
        for future in futures:
            future.result()  # re-raises a worker's exception here

    def _block_rows(self, X: Array, sample_weight: Array | None, loss: Loss) -> int:
        """Rows per block of in-memory ``X``: :attr:`block_bytes` of them, or, for the seed's
        model on its compiled kernel with the default size, up to
        :data:`COMPILED_BLOCK_BYTES` (and :data:`MIN_BLOCKS_PER_THREAD` blocks a thread)."""
        rows = rows_per_block(X.shape[1], X.dtype.itemsize, self.block_bytes)
        if (
            self._default_block_bytes
            and self._workspaces[0].logistic
            and sample_weight is None
            and type(loss) is BinaryCrossEntropy
            and block_sums_compiled(X.dtype)
        ):
            larger = rows_per_block(X.shape[1], X.dtype.itemsize, COMPILED_BLOCK_BYTES)
            spread = -(-X.shape[0] // (MIN_BLOCKS_PER_THREAD * self.n_threads))
            rows = max(rows, min(larger, spread))
        return rows

    def _finish(self) -> float:
        """Add the per-thread sums in thread order; write the mean gradient and return the loss."""
        gradient = self.network.flat_gradients
        gradient[...] = 0
        loss_sum = weight_sum = 0.0
        for workspace in self._workspaces:
            gradient += workspace.gradient_sum
            loss_sum += workspace.loss_sum
            weight_sum += workspace.weight_sum
        if weight_sum <= 0.0:
            raise ValueError("every row has sample weight 0: the mean loss is undefined")
        gradient *= gradient.dtype.type(1.0 / weight_sum)
        return loss_sum / weight_sum

    # --- the three kinds of data -----------------------------------------------------------

    def __call__(
        self,
        X: Array | RowBlocks,
        Y: Array | None,
        sample_weight: Array | None,
        loss: Loss,
        training: bool = False,
    ) -> float:
        """Mean loss over all rows of ``X``; its gradient goes to ``network.flat_gradients``.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features), or RowBlocks
            In-memory rows, or out-of-core ones (which carry their own targets and
            weights: ``Y`` and ``sample_weight`` are then ``None``).
        Y : ndarray of shape (n_samples, n_outputs) or None
        sample_weight : ndarray of shape (n_samples,) or None
        loss : Loss
            A plain loss (see :meth:`Workspace.add`).
        """
        from .streaming import RowBlocks

        if isinstance(X, RowBlocks):
            # Out-of-core rows read block by block here; a Dask array's blocks are summed
            # on its workers instead (handnet.data.cluster, chosen by the trainer).
            return self._call_blocks(X, loss, training)
        assert Y is not None
        self._reset()
        with single_threaded_blas(), np.errstate(over="ignore", invalid="ignore"):
            self._add_in_memory(X, Y, sample_weight, loss, training)
        return self._finish()

    def _call_blocks(self, data: RowBlocks, loss: Loss, training: bool) -> float:
        """Storage blocks read in order (the next one prefetched), each split over the threads.

        A storage block (a few megabytes) is read into memory by the prefetching
        thread while the threads sum the one before; it is then still in the
        last-level cache when they read it.
        """
        self._reset()
        with single_threaded_blas(), np.errstate(over="ignore", invalid="ignore"):
            for block in data.iter_blocks(data.blocks):
                self._add_in_memory(block.X, block.Y, block.weight, loss, training)
        return self._finish()
