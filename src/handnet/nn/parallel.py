"""A batch split over threads, and work buffers kept from batch to batch.

A convolution or pooling pass is a handful of large NumPy calls, each of which releases
the GIL: split over the samples (:func:`_in_parallel`), the parts run on several cores
at once, on worker threads kept from pass to pass. :func:`threads_over_samples` turns
that on for a block of code (with BLAS on one thread); :func:`_samples_buffer` and
:func:`_flat_buffer` keep the passes' work arrays between the batches of a fit.

A layer's thread count is at most :data:`MAX_THREADS`: it may come from a model file,
whose few bytes must not start hundreds of threads (the size of one sample's work arrays
is bounded in :mod:`handnet.nn.im2col`, :data:`~handnet.nn.im2col.MAX_SAMPLE_VALUES`).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from .layers import Layer

Array = NDArray[np.floating]
T = TypeVar("T")

#: The fewest samples a thread is given: below that, splitting a batch over threads
#: costs more (waking them, Python) than it saves.
MIN_ROWS_PER_THREAD = 8

#: The most threads a pass uses (memory bandwidth, not cores, bounds these passes): a
#: layer's ``n_threads`` may not be larger, :func:`threads_over_samples` caps its count.
MAX_THREADS = 8


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))

def _check_threads(n_threads: Any, layer: str, most: int | None = MAX_THREADS) -> int | None:
    """``n_threads`` as an ``int`` (or ``None``), or ``ValueError`` unless it is an integer
    from 1 to ``most`` (``None``: no upper bound).

    Refused rather than capped above :data:`MAX_THREADS`: a model file that asks for
    100,000 threads is forged or corrupt, and a user who asks for more than a pass uses
    learns the limit instead of getting fewer threads silently.
    """
    if n_threads is not None and not (
        _is_int(n_threads) and n_threads >= 1 and (most is None or n_threads <= most)
    ):
        most_text = "" if most is None else f", at most MAX_THREADS = {most}"
        raise ValueError(
            f"{layer} n_threads must be an integer >= 1 or None (BLAS's thread count)"
            f"{most_text}, got {n_threads!r}"
        )
    return None if n_threads is None else int(n_threads)


# --- threads --------------------------------------------------------------------------------
#
# A convolution or pooling pass is a handful of large NumPy calls (strided copies,
# ufuncs, batched matrix products), each of which releases the GIL: split over the
# samples, the parts run on several cores at once. The per-sample products are too
# small for BLAS's own threads to help, and multi-threaded BLAS next to these threads
# only competes with them for the cores (OpenBLAS's idle workers spin for a while after
# each product): measured on 2 cores, the layers' threads pay off with BLAS on one
# thread, and lose a little with BLAS on two. Hence :func:`threads_over_samples`.

#: The worker threads' inboxes, one each (see :func:`_inboxes`).
_INBOXES: list[queue.SimpleQueue[Any]] = []
_INBOXES_LOCK = threading.Lock()
#: (thread id, threads) set by threads_over_samples for the thread that entered it.
_OVER_SAMPLES: tuple[int, int] | None = None


def default_threads() -> int:
    """Threads a layer's pass uses when its ``n_threads`` is ``None``.

    The count given to :func:`threads_over_samples`, in the thread that entered it;
    1 everywhere else (other threads, such as :mod:`handnet.data.blocks`' workers, which
    already split the rows, included).
    """
    setting = _OVER_SAMPLES
    if setting is not None and setting[0] == threading.get_ident():
        return setting[1]
    return 1


@contextlib.contextmanager
def threads_over_samples(n_threads: int | None = None) -> Iterator[None]:
    """Within the block, these layers split their batches over ``n_threads`` threads and
    BLAS runs on one (:func:`handnet.data.blocks.single_threaded_blas`).

    ``None``: as many threads as BLAS had before (read with ``threadpoolctl``; the
    usable cores without it). For the thread that enters the block; layers whose
    ``n_threads`` is set keep their own count. Training a convolutional network::

        with handnet.nn.conv.threads_over_samples(2):
            trainer.fit(X, Y)
    """
    global _OVER_SAMPLES
    if n_threads is None:
        n_threads = _blas_threads()
    # Not a layer's setting but a hint for a block of code (BLAS's count, say): capped.
    n_threads = _check_threads(n_threads, "threads_over_samples", most=None)
    assert n_threads is not None
    from ..data.blocks import single_threaded_blas

    previous = _OVER_SAMPLES
    with single_threaded_blas():
        _OVER_SAMPLES = (threading.get_ident(), min(n_threads, MAX_THREADS))
        try:
            yield
        finally:
            _OVER_SAMPLES = previous


def _blas_threads() -> int:
    """NumPy's BLAS thread count (``threadpoolctl``), else the usable cores."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        return len(cores) if cores else os.cpu_count() or 1
    blas = [info for info in threadpool_info() if info.get("user_api") == "blas"]
    own = [info for info in blas if "numpy" in str(info.get("filepath"))] or blas
    return max([1, *(int(info["num_threads"]) for info in own)])


def _parts(start: int, stop: int, threads: int) -> list[tuple[int, int]]:
    """``[start, stop)`` split into at most ``threads`` nearly equal runs of samples."""
    count = max(1, min(threads, (stop - start) // MIN_ROWS_PER_THREAD))
    bounds = [start + (stop - start) * k // count for k in range(count + 1)]
    return list(itertools.pairwise(bounds))


def _work(inbox: queue.SimpleQueue[Any]) -> None:
    """A worker thread: run each part put in ``inbox``, send back its result or its error."""
    while True:
        task, part, first, last, outbox = inbox.get()
        try:
            outbox.put((part, True, task(part, first, last)))
        except BaseException as error:  # the caller re-raises it
            outbox.put((part, False, error))


def _inboxes(count: int) -> list[queue.SimpleQueue[Any]]:
    """The inboxes of ``count`` worker threads, started on first use and kept (daemons).

    Each worker waits on its own ``queue.SimpleQueue`` (a lock in C): handing it a
    part and getting the result back costs about 60 µs here, where a
    ``ThreadPoolExecutor``'s ``submit`` and ``wait`` cost 140 µs, and a training
    batch of LeNet makes eight such passes.
    """
    with _INBOXES_LOCK:
        while len(_INBOXES) < count:
            inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
            name = f"handnet-conv-{len(_INBOXES)}"
            threading.Thread(target=_work, args=(inbox,), name=name, daemon=True).start()
            _INBOXES.append(inbox)
        return _INBOXES[:count]


def _forget_workers() -> None:
    """In a forked child: the parent's worker threads do not exist there."""
    global _INBOXES_LOCK
    _INBOXES.clear()
    _INBOXES_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers)


def _in_parallel(
    task: Callable[[int, int, int], T], start: int, stop: int, threads: int
) -> list[T]:
    """``task(part, first, last)`` for each part of ``[start, stop)``, on up to ``threads``
    threads (the calling one included); the results in the parts' order.

    Every part has finished when this returns or raises (no thread may still be
    writing afterwards); a part's error is raised here.
    """
    parts = _parts(start, stop, threads)
    if len(parts) == 1:
        return [task(0, start, stop)]
    outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
    for part, (inbox, (first, last)) in enumerate(
        zip(_inboxes(len(parts) - 1), parts[1:], strict=True), start=1
    ):
        inbox.put((task, part, first, last, outbox))
    results: list[Any] = [None] * len(parts)
    errors: list[BaseException] = []
    try:
        results[0] = task(0, *parts[0])
    finally:
        for _ in range(len(parts) - 1):
            part, finished, value = outbox.get()
            if finished:
                results[part] = value
            else:
                errors.append(value)
    if errors:
        raise errors[0]
    return results


def _samples_buffer(
    layer: Layer, name: str, shape: tuple[int, ...], dtype: np.dtype[Any]
) -> NDArray[Any]:
    """A work buffer of ``shape`` (samples first): in a training pass with buffer reuse on,
    the first rows of one kept from pass to pass, else a new array.

    Unlike :meth:`Layer._workspace` (one buffer per exact shape), an epoch's smaller
    last batch reuses the full batches' buffers instead of allocating a second set.
    """
    if not getattr(layer, "_training", False):  # only training passes keep buffers
        return np.empty(shape, dtype=dtype)
    buffers: dict[Any, NDArray[Any]] = layer.__dict__.setdefault("_buffers", {})
    key = ("samples", name, shape[1:])
    buffer = buffers.get(key)
    if buffer is None or buffer.shape[0] < shape[0] or buffer.dtype != dtype:
        buffer = buffers[key] = np.empty(shape, dtype=dtype)
    return buffer[: shape[0]]


def _flat_buffer(layer: Layer, name: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Array:
    """A contiguous work buffer of ``shape``: in a training pass with buffer reuse on, the
    front of a flat one kept from pass to pass (grown when too small), else a new array.

    For layouts whose samples are not the first axis (:mod:`handnet.nn.im2row`'s),
    where :func:`_samples_buffer`'s first rows would not be contiguous.
    """
    size = math.prod(shape)
    if not getattr(layer, "_training", False):  # only training passes keep buffers
        return np.empty(shape, dtype=dtype)
    buffers: dict[Any, Array] = layer.__dict__.setdefault("_buffers", {})
    key = ("flat", name)
    buffer = buffers.get(key)
    if buffer is None or buffer.size < size or buffer.dtype != dtype:
        buffer = buffers[key] = np.empty(size, dtype=dtype)
    return buffer[:size].reshape(shape)


def _add_partials(
    partials: list[tuple[Array, Array | None]], grad_weights: Array, grad_bias: Array | None,
    fresh: bool,
) -> None:
    """Add the parts' weight and bias gradients into the layer's (overwritten first when
    ``fresh``), in the parts' order: the same numbers on every run."""
    for k, (weights_part, bias_part) in enumerate(partials):
        if fresh and k == 0:
            grad_weights[...] = weights_part
        else:
            grad_weights += weights_part
        if grad_bias is not None and bias_part is not None:
            bias_view = grad_bias.reshape(bias_part.shape)
            if fresh and k == 0:
                bias_view[...] = bias_part
            else:
                bias_view += bias_part
