r"""Training on data that is not in memory: arrays read block by block.

``fit``, ``partial_fit``, ``predict`` and ``score`` accept feature matrices that
live on disk or on a cluster, and never turn them into one in-memory array:

==========================================  ==========================================
input                                       storage blocks
==========================================  ==========================================
``numpy.memmap`` (``np.load(mmap_mode=)``)  fixed row ranges of :data:`BLOCK_BYTES`
:class:`NpyShards` (a directory of files)   each file, split into such ranges
h5py ``Dataset``                            its chunks (grouped up to :data:`BLOCK_BYTES`),
                                            or fixed row ranges when contiguous
zarr ``Array``                              its chunks (grouped up to :data:`BLOCK_BYTES`)
Dask array                                  its row chunks
==========================================  ==========================================

(:func:`is_out_of_core` tells them apart by type, without importing dask, zarr or
h5py.) A memmap that fits in a single block is used as an ordinary array: streaming
it would give the same result (see below) with more machinery. Files should be
stored row by row (C order, NumPy's default): a block of rows of a Fortran-ordered
file is spread over the whole file.

Mini-batch training (:meth:`handnet.training.Trainer.run_stream_epoch`)
-----------------------------------------------------------------------
Each epoch visits the storage blocks in a random order drawn from the model's
generator, shuffles the rows inside each block (a second draw) and cuts them
into mini-batches; the last batch of a block may be short. While one block
trains, a background thread reads the next one (:meth:`RowBlocks.iter_blocks`),
so reading from disk overlaps with computing. Reads are whole, storage-aligned
blocks in ascending row order within each block: never random row access on
disk. Memory holds two blocks (the current one and the one being read), the
batch buffers and the parameters, whatever the size of the file.

This is a block-wise shuffle, not the global shuffle of in-memory training: rows
of one block always share an epoch's stretch of steps. With blocks of a few
megabytes (thousands of rows) and data in no particular order, SGD does not
notice; data sorted by label should be shuffled once on disk. When the whole
array is one block, the draws are exactly those of in-memory training (no
block-order draw for one block, then ``rng.permutation(n_samples)``), and so are
the parameters.

Full-batch training (``batch_size=None``, and L-BFGS) sums the loss and gradient
block by block (:mod:`handnet.data.blocks`); Dask arrays are summed on the workers
(:mod:`handnet.data.cluster`).

Targets, weights, validation
----------------------------
* ``y`` may be in memory or out of core; it is read block by block alongside
  ``X``. A classifier's ``fit`` learns ``classes_`` from one sequential pass over
  ``y`` alone (:func:`scan_labels`); ``partial_fit`` takes them from ``classes=``,
  as always. ``sample_weight`` must fit in memory (one number per row).
* Every block is checked when it is first read: numbers (not strings), the
  expected number of columns, no NaN or infinity, labels among ``classes_``. The
  error names the rows of the block.
* ``early_stopping=True`` holds out whole blocks (about ``validation_fraction``
  of them, at least one, chosen with the model's generator) and reads them into
  memory; it needs at least two blocks. ``validation_data`` is read into memory.
* Checkpoints work as in memory; an interrupt (Ctrl-C) stops at the next block
  boundary, and a resumed run continues from there bit for bit. The data's
  fingerprint needs one extra pass over all blocks, made only when a checkpoint
  is written or a run resumed.

Resident memory of memmaps
--------------------------
Pages of a memory-mapped file that a process has read count towards its
resident set size until the kernel reclaims them, which it does only under
pressure. So that a process reading a 100 GB file does not appear to use (or,
in a container that counts mapped pages, actually hit a limit at) 100 GB,
:meth:`RowBlocks.release` tells the kernel, with ``madvise(MADV_DONTNEED)``, that
a block's pages are no longer needed once the block is done. The data stays in
the page cache; a later epoch maps it again at the cost of a minor page fault.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import itertools
import mmap
import os
import warnings
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .validation import check_finite, class_positions

Array = NDArray[np.floating]

#: Bytes of X per storage block for arrays without chunks of their own (memmaps,
#: contiguous h5py datasets) and the most that consecutive chunks are grouped into.
#: Two blocks are in memory at a time (the current one and the one being read).
BLOCK_BYTES = 8 << 20


# --- what counts as out of core ------------------------------------------------------------


def _is_dask(X: Any) -> bool:
    return type(X).__module__.startswith("dask.") and hasattr(X, "dask") and hasattr(X, "chunks")


def _is_h5py(X: Any) -> bool:
    return type(X).__module__.startswith("h5py") and type(X).__name__ == "Dataset"


def _is_zarr(X: Any) -> bool:
    return (
        type(X).__module__.startswith("zarr")
        and hasattr(X, "chunks")
        and hasattr(X, "shape")
        and hasattr(X, "dtype")
    )


def is_out_of_core(X: Any) -> bool:
    """Whether ``X`` is read in blocks rather than converted to an in-memory array.

    True for a Dask array, a zarr array, an h5py dataset, :class:`NpyShards`, and a
    ``numpy.memmap`` larger than one block (:data:`BLOCK_BYTES`); recognised by type,
    without importing dask, zarr or h5py.
    """
    if isinstance(X, NpyShards):
        return True
    if isinstance(X, np.memmap):
        return X.ndim == 2 and X.nbytes > BLOCK_BYTES
    return _is_dask(X) or _is_h5py(X) or _is_zarr(X)


def is_dask(X: Any) -> bool:
    """Whether ``X`` is a Dask array (without importing dask)."""
    return _is_dask(X)


# --- a directory of .npy shards ------------------------------------------------------------


class NpyShards:
    """Rows stored as a sequence of ``.npy`` files, opened with ``mmap_mode="r"``.

    Parameters
    ----------
    paths : sequence of path
        The files, in row order; same number of columns and dtype in each.

    Attributes
    ----------
    shape : (n_rows, n_columns) or (n_rows,)
    dtype : numpy.dtype
    bounds : ndarray of shape (n_shards + 1,)
        The first row of each shard, then ``n_rows``.
    """

    def __init__(self, paths: Sequence[str | os.PathLike[str]]) -> None:
        if not paths:
            raise ValueError("no .npy files given")
        self.paths = [os.fspath(p) for p in paths]
        self.arrays: list[NDArray[Any]] = []
        for path in self.paths:
            try:
                array = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as error:
                raise ValueError(f"{path}: cannot read as a .npy file ({error})") from None
            if array.ndim not in (1, 2):
                raise ValueError(f"{path}: expected a 1-D or 2-D array, got shape {array.shape}")
            self.arrays.append(array)
        first = self.arrays[0]
        for path, array in zip(self.paths, self.arrays, strict=True):
            if array.shape[1:] != first.shape[1:] or array.dtype != first.dtype:
                raise ValueError(
                    f"{path}: shape {array.shape} and dtype {array.dtype} do not match the "
                    f"first shard's {first.shape} and {first.dtype} (rows may differ, "
                    "columns and dtype may not)"
                )
        self.bounds = np.cumsum([0] + [len(a) for a in self.arrays]).astype(np.int64)
        self.shape = (int(self.bounds[-1]), *first.shape[1:])
        self.dtype = first.dtype
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in self.arrays)

    def __getitem__(self, rows: slice) -> NDArray[Any]:
        """Rows ``start:stop`` (a view when they lie in one shard, else a copy)."""
        if not isinstance(rows, slice) or rows.step not in (None, 1):
            raise TypeError("NpyShards supports contiguous row slices only")
        start, stop, _ = rows.indices(self.shape[0])
        first = int(np.searchsorted(self.bounds, start, side="right")) - 1
        pieces = []
        position = start
        shard = max(first, 0)
        while position < stop and shard < len(self.arrays):
            lo, hi = int(self.bounds[shard]), int(self.bounds[shard + 1])
            take = min(stop, hi)
            if take > position:
                pieces.append(self.arrays[shard][position - lo : take - lo])
            position = max(position, take)
            shard += 1
        if len(pieces) == 1:
            return pieces[0]
        if not pieces:
            return np.empty((0, *self.shape[1:]), dtype=self.dtype)
        return np.concatenate(pieces)

    def __array__(self, dtype: Any = None, copy: Any = None) -> NDArray[Any]:
        """All rows in memory (``np.asarray``): for small companions such as labels."""
        whole = np.concatenate(self.arrays) if len(self.arrays) > 1 else np.array(self.arrays[0])
        return whole if dtype is None else whole.astype(dtype)

    def shard_of(self, row: int) -> tuple[NDArray[Any], int]:
        """The shard holding ``row`` and the row where that shard starts."""
        shard = int(np.searchsorted(self.bounds, row, side="right")) - 1
        return self.arrays[shard], int(self.bounds[shard])

    def __repr__(self) -> str:
        return f"NpyShards({len(self.paths)} files, shape={self.shape}, dtype={self.dtype})"


def open_shards(directory: str | os.PathLike[str]) -> tuple[NpyShards, NpyShards | None]:
    """Open a directory of ``.npy`` shards: ``X_*.npy`` features, ``y_*.npy`` labels.

    The layout: shard ``k`` is the pair ``X_<k>.npy`` (shape ``(rows_k,
    n_features)``) and ``y_<k>.npy`` (shape ``(rows_k,)``), where ``<k>`` is any
    suffix (e.g. ``000``, ``001``, ...); shards are taken in the sorted order of
    their names. Every ``X`` file needs its ``y`` file (or none has one), with the
    same number of rows.

    Returns
    -------
    X : NpyShards
    y : NpyShards or None
        ``None`` when the directory holds no ``y_*.npy`` files.
    """
    root = Path(directory)
    if not root.is_dir():
        raise ValueError(f"{root}: not a directory")
    x_files = sorted(root.glob("X_*.npy"))
    if not x_files:
        raise ValueError(f"{root}: no X_*.npy files (the layout is X_000.npy, y_000.npy, ...)")
    y_files = sorted(root.glob("y_*.npy"))
    X = NpyShards(x_files)
    if X.ndim != 2:
        raise ValueError(f"{root}: the X_*.npy files must be 2-D (rows, features)")
    if not y_files:
        return X, None
    suffixes = [p.name[2:] for p in x_files]
    if [p.name[2:] for p in y_files] != suffixes:
        missing = sorted(set(suffixes) ^ {p.name[2:] for p in y_files})
        raise ValueError(
            f"{root}: every X_<k>.npy needs its y_<k>.npy; unmatched: "
            + ", ".join(missing[:5])
        )
    y = NpyShards(y_files)
    if y.ndim != 1:
        raise ValueError(f"{root}: the y_*.npy files must be 1-D (labels)")
    if not np.array_equal(X.bounds, y.bounds):
        for x_path, x_rows, y_rows in zip(
            x_files, np.diff(X.bounds), np.diff(y.bounds), strict=True
        ):
            if x_rows != y_rows:
                raise ValueError(
                    f"{x_path} has {x_rows} rows but its labels file has {y_rows}"
                )
    return X, y


# --- storage-aligned blocks ----------------------------------------------------------------


def storage_bounds(X: Any, block_bytes: int | None = None) -> NDArray[np.int64]:
    """The first row of every storage block of ``X``, then ``n_rows``.

    Dask: its row chunks. zarr and chunked h5py: their row chunks, consecutive
    ones grouped into blocks of at most ``block_bytes`` (default
    :data:`BLOCK_BYTES`; still chunk-aligned).
    Shards: each file, split into ranges of about ``block_bytes``. Anything
    else (a memmap): ranges of about ``block_bytes``.
    """
    if block_bytes is None:
        block_bytes = BLOCK_BYTES  # read now, so that a changed module setting applies
    n_rows = int(X.shape[0])
    row_bytes = max(1, int(np.prod(X.shape[1:], dtype=np.int64)) * np.dtype(X.dtype).itemsize)
    fixed = max(1, block_bytes // row_bytes)
    if _is_dask(X):
        return np.cumsum([0, *X.chunks[0]]).astype(np.int64)
    if isinstance(X, NpyShards):
        starts: list[int] = []
        for lo, hi in itertools.pairwise(X.bounds):
            starts.extend(range(int(lo), int(hi), fixed))
        return np.array([*starts, n_rows], dtype=np.int64)
    chunks = getattr(X, "chunks", None) if (_is_zarr(X) or _is_h5py(X)) else None
    if chunks:
        chunk_rows = max(1, int(chunks[0]))
        step = chunk_rows * max(1, fixed // chunk_rows)
    else:
        step = fixed
    return np.array([*range(0, n_rows, step), n_rows], dtype=np.int64)


def read_rows(source: Any, start: int, stop: int) -> NDArray[Any]:
    """Rows ``start:stop`` of any supported source, as a NumPy array (a view for memmaps)."""
    if _is_dask(source):
        return np.asarray(source[start:stop].compute())
    part = source[start:stop]
    return part if isinstance(part, np.ndarray) else np.asarray(part)


def pread_rows(source: Any, start: int, stop: int) -> NDArray[Any] | None:
    """Rows ``start:stop`` of a memmap (or shards) read with ``os.preadv``, or ``None``.

    Reading the file into a fresh array, rather than copying out of the mapping,
    neither faults the pages into this process (its resident memory does not
    grow with the file) nor leaves them mapped; the kernel copies them from its
    page cache at memory speed. Only for C-contiguous rows of a file-backed
    memmap whose changes are visible in the file (modes ``r``, ``r+``, ``w+``; a
    copy-on-write ``c`` mapping keeps its changes to itself).
    """
    if isinstance(source, NpyShards):
        array, first = source.shard_of(start)
        if stop - first > len(array):
            return None  # across two files: the caller concatenates the views
        return pread_rows(array, start - first, stop - first)
    if (
        not isinstance(source, np.memmap)
        or not hasattr(os, "preadv")
        or getattr(source, "mode", None) not in ("r", "r+", "w+")
        or not source.flags.c_contiguous
        or getattr(source, "filename", None) is None
        or source.ndim == 0
    ):
        return None
    mapping = _find_mmap(source)
    filename = str(source.filename)
    if mapping is None:
        return None
    try:
        origin = np.frombuffer(mapping, dtype=np.uint8).ctypes.data
    except (TypeError, ValueError, BufferError):  # pragma: no cover - a closed mapping
        return None
    # np.memmap maps the file from `offset` rounded down to the allocation
    # granularity; a view keeps its parent's `offset`, so any row's place in the
    # file follows from its address in the mapping.
    mapped_from = source.offset - source.offset % mmap.ALLOCATIONGRANULARITY
    row_bytes = source.strides[0]
    position = source.ctypes.data - origin + mapped_from + start * row_bytes
    out = np.empty((stop - start, *source.shape[1:]), dtype=source.dtype)
    view = out.data.cast("B")
    descriptor = os.open(filename, os.O_RDONLY)
    try:
        done = 0
        while done < len(view):
            got = os.preadv(descriptor, [view[done:]], position + done)
            if got <= 0:
                raise OSError(f"{filename}: the file ended before row {stop}")
            done += got
    finally:
        os.close(descriptor)
    return out


def _find_mmap(array: NDArray[Any]) -> mmap.mmap | None:
    base: Any = array
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    return base


def _advise(source: Any, start: int, stop: int, advice: int) -> None:
    """``madvise`` the pages of rows ``start:stop`` of a memmap (or shard); best effort."""
    if isinstance(source, NpyShards):
        while start < stop:
            array, first = source.shard_of(start)
            end = min(stop, first + len(array))
            _advise(array, start - first, end - first, advice)
            start = end
        return
    if not isinstance(source, np.memmap) or getattr(source, "mode", "r") not in ("r", "r+"):
        # Copy-on-write mappings ("c") would lose their private changes.
        return
    mapping = _find_mmap(source)
    if mapping is None or stop <= start or not source.flags.c_contiguous:
        return
    try:
        origin = np.frombuffer(mapping, dtype=np.uint8).ctypes.data
    except (TypeError, ValueError, BufferError):  # pragma: no cover - closed or odd mapping
        return
    row_bytes = source.strides[0] if source.ndim else source.itemsize
    first = source.ctypes.data - origin + start * row_bytes
    last = source.ctypes.data - origin + stop * row_bytes
    page = mmap.PAGESIZE
    first -= first % page
    last = min(-(-last // page) * page, len(mapping))
    if last > first:
        # An OS without this advice refuses it: the pages then stay until reclaimed.
        with contextlib.suppress(OSError, ValueError):
            mapping.madvise(advice, first, last - first)


# --- targets, block by block ---------------------------------------------------------------


@dataclass(frozen=True)
class TargetEncoder:
    """Turns a block of ``y`` into the loss's targets (and class weights), checking it.

    A small, picklable object: Dask workers encode their own blocks with it.

    Attributes
    ----------
    kind : {"sigmoid", "onehot", "values"}
        A classifier's sigmoid output (one column: 1 for ``classes[1]``), its
        softmax output (one-hot rows), or a regressor's values.
    dtype : numpy.dtype
    n_outputs : int
    classes : ndarray of shape (n_classes,) or None
    class_weight : ndarray of shape (n_classes,) or None
        Weight of each class's rows (``class_weight=``), multiplied into the
        sample weights.
    """

    kind: str
    dtype: np.dtype[Any]
    n_outputs: int
    classes: NDArray[Any] | None = None
    class_weight: NDArray[np.floating] | None = None

    def __call__(self, y: NDArray[Any], where: str = "y") -> tuple[Array, Array | None]:
        """``(Y, row_weight)`` for a block ``y`` of shape ``(rows,)`` (or ``(rows, outputs)``)."""
        if self.kind == "values":
            values = _numeric_block(y, where, self.dtype)
            Y = values.reshape(len(values), -1)
            if Y.shape[1] != self.n_outputs:
                raise ValueError(
                    f"{where} has {Y.shape[1]} outputs, but the model has {self.n_outputs}"
                )
            return Y, None
        assert self.classes is not None
        labels = np.asarray(y)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels.ravel()
        if labels.ndim != 1:
            raise ValueError(f"{where} must be 1-D labels, got shape {labels.shape}")
        if labels.dtype.kind == "f":
            check_finite(labels, where)
            if not np.all(np.mod(labels, 1) == 0):
                raise ValueError(
                    f"Unknown label type: continuous. {where} holds non-integer numbers; a "
                    "classifier needs class labels (use MLPRegressor for continuous targets)"
                )
        index = class_positions(self.classes, labels)
        unseen = index < 0
        if np.any(unseen):
            raise ValueError(
                f"{where} contains labels not seen at fit time: "
                f"{np.unique(labels[unseen]).tolist()}; known classes are "
                f"{self.classes.tolist()}"
            )
        if self.kind == "sigmoid":
            Y = index.astype(self.dtype).reshape(-1, 1)
        else:
            Y = np.zeros((len(labels), len(self.classes)), dtype=self.dtype)
            Y[np.arange(len(labels)), index] = 1
        weight = None if self.class_weight is None else self.class_weight[index]
        return Y, weight


def _numeric_block(block: NDArray[Any], where: str, dtype: np.dtype[Any]) -> Array:
    """``block`` as a finite float array of ``dtype``, or a ``ValueError`` naming ``where``."""
    if block.dtype.kind not in "biuf":
        raise ValueError(
            f"{where} has dtype {block.dtype}, but it must hold numbers (bool, int or float)"
        )
    converted = np.asarray(block, dtype=dtype)
    check_finite(converted, where)
    return converted


def prepare_block(
    X: NDArray[Any],
    y: NDArray[Any],
    sample_weight: NDArray[Any] | None,
    encoder: TargetEncoder,
    dtype: np.dtype[Any],
    n_features: int,
    rows: tuple[int, int],
    check: bool = True,
) -> tuple[Array, Array, Array | None]:
    """One block ready for training: ``(X, Y, weight)``, checked (a pure function).

    ``X`` becomes a C-contiguous array of ``dtype`` (a view when it already is
    one), ``y`` the loss's targets, and the weight the product of the sample
    weights and the class weights (``None`` when there are neither).

    Raises
    ------
    ValueError
        Naming the block's rows ``rows``: a wrong shape, non-numbers, NaN or
        infinity, or labels the model does not know.
    """
    start, stop = rows
    where = f"X (rows {start}:{stop})"
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(f"{where} has shape {X.shape}, expected ({stop - start}, {n_features})")
    if X.dtype != dtype or not X.flags.c_contiguous:
        if X.dtype.kind not in "biuf":
            raise ValueError(
                f"{where} has dtype {X.dtype}, but features must be numbers (bool, int or float)"
            )
        X = np.ascontiguousarray(X, dtype=dtype)
    if check:
        check_finite(X, where)
    if len(y) != len(X):
        raise ValueError(
            f"X and y have inconsistent numbers of samples in rows {start}:{stop}: "
            f"{len(X)} and {len(y)}"
        )
    Y, class_weight = encoder(y, f"y (rows {start}:{stop})")
    weight: Array | None = None
    if sample_weight is not None:
        weight = np.asarray(sample_weight, dtype=dtype)
        if class_weight is not None:
            weight = weight * class_weight.astype(dtype, copy=False)
    elif class_weight is not None:
        weight = class_weight.astype(dtype, copy=False)
    return X, Y, weight


def scan_labels(
    y: Any, bounds: NDArray[np.int64] | None = None
) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """The sorted distinct labels of a 1-D ``y`` and their counts, in one sequential pass.

    An in-memory ``y`` is counted at once; an out-of-core one block by block
    (``bounds`` from :func:`storage_bounds` of ``y``'s own storage by default).
    """
    if isinstance(y, np.ndarray) and not isinstance(y, np.memmap):
        return _unique_counts(y, "y")
    if bounds is None:
        bounds = storage_bounds(y)
    values: list[NDArray[Any]] = []
    counts: list[NDArray[np.int64]] = []
    for start, stop in itertools.pairwise(bounds):
        block_values, block_counts = _unique_counts(
            read_rows(y, int(start), int(stop)), f"y (rows {start}:{stop})"
        )
        values.append(block_values)
        counts.append(block_counts)
    merged, inverse = np.unique(np.concatenate(values), return_inverse=True)
    totals = np.bincount(inverse.ravel(), weights=np.concatenate(counts), minlength=len(merged))
    return merged, totals.astype(np.int64)


def _unique_counts(y: NDArray[Any], where: str) -> tuple[NDArray[Any], NDArray[np.int64]]:
    labels = np.asarray(y)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels.ravel()
    if labels.ndim != 1:
        raise ValueError(f"{where} must be 1-D labels, got shape {labels.shape}")
    if labels.dtype.kind == "f":
        check_finite(labels, where)
    try:
        values, counts = np.unique(labels, return_counts=True)
    except TypeError:
        raise ValueError(
            f"Mix of label input types (string and number) in {where}; use labels of one type"
        ) from None
    return values, counts.astype(np.int64)


# --- the blocks of one data set --------------------------------------------------------------


@dataclass
class Block:
    """One storage block, ready to train on.

    Attributes
    ----------
    index : int
        Its position among the source's storage blocks.
    start, stop : int
        Its rows.
    X : ndarray of shape (rows, n_features)
    Y : ndarray of shape (rows, n_outputs)
    weight : ndarray of shape (rows,) or None
    """

    index: int
    start: int
    stop: int
    X: Array
    Y: Array
    weight: Array | None


class RowBlocks:
    """A training set read in storage-aligned blocks: features, targets and weights.

    Parameters
    ----------
    X : out-of-core array of shape (n_samples, n_features)
        See :func:`is_out_of_core`.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        In memory or out of core; read with the same rows as ``X``.
    sample_weight : ndarray of shape (n_samples,) or None
        In memory, already checked.
    encoder : TargetEncoder
    dtype : float32 or float64
        The model's dtype; blocks of other dtypes are converted as they are read.
    bounds : ndarray, optional
        Block boundaries (default :func:`storage_bounds` of ``X``).
    blocks : ndarray of int, optional
        The blocks that belong to this set (default all; early stopping holds
        some out).

    Notes
    -----
    ``len(data)`` and ``data.shape`` count the rows of the blocks in the set, so
    code written for arrays (``X.shape[0]``) reads the right number.
    """

    def __init__(
        self,
        X: Any,
        y: Any,
        sample_weight: Array | None,
        encoder: TargetEncoder,
        dtype: Any,
        bounds: NDArray[np.int64] | None = None,
        blocks: NDArray[np.int64] | None = None,
    ) -> None:
        self.X = X
        self.y = y
        self.sample_weight = sample_weight
        self.encoder = encoder
        self.dtype = np.dtype(dtype)
        self.n_features = int(X.shape[1])
        self.bounds = storage_bounds(X) if bounds is None else np.asarray(bounds, dtype=np.int64)
        n_all = len(self.bounds) - 1
        self.blocks = (
            np.arange(n_all, dtype=np.int64) if blocks is None else np.asarray(blocks, np.int64)
        )
        self.is_dask = _is_dask(X)
        # Blocks already checked: a block is checked the first time it is read in a
        # fit, not on every epoch or full-batch iteration (shared by subsets).
        self._checked: set[int] = set()
        #: Set by :mod:`handnet.data.cluster`: the blocks persisted on a Dask cluster.
        self.cluster_state: Any = None

    # --- sizes ---------------------------------------------------------------------------

    @property
    def n_blocks(self) -> int:
        return len(self.blocks)

    @property
    def n_rows(self) -> int:
        sizes = self.bounds[1:] - self.bounds[:-1]
        return int(sizes[self.blocks].sum())

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_rows, self.n_features)

    def __len__(self) -> int:
        return self.n_rows

    def rows(self, index: int) -> tuple[int, int]:
        """The rows ``(start, stop)`` of storage block ``index``."""
        return int(self.bounds[index]), int(self.bounds[index + 1])

    def subset(self, blocks: NDArray[np.int64]) -> RowBlocks:
        """The same data restricted to ``blocks`` (storage block indices)."""
        part = RowBlocks(
            self.X, self.y, self.sample_weight, self.encoder, self.dtype, self.bounds, blocks
        )
        part._checked = self._checked
        return part

    def block_order(self, rng: np.random.Generator | None) -> NDArray[np.int64]:
        """This epoch's order of the blocks: random when ``rng`` is given and there are several.

        One block draws nothing from ``rng``, so one-block streaming consumes the
        generator exactly as in-memory training does.
        """
        if rng is None or self.n_blocks < 2:
            return self.blocks.copy()
        return rng.permutation(self.blocks).astype(np.int64)

    # --- reading -------------------------------------------------------------------------

    def read(self, index: int) -> Block:
        """Storage block ``index`` in memory: read, converted, checked (once) and encoded.

        A memmap's rows are read with ``os.preadv`` into a new array when the file
        allows (see :func:`pread_rows`), else copied out of the mapping.
        """
        start, stop = self.rows(index)
        X = pread_rows(self.X, start, stop)
        if X is None:
            X = read_rows(self.X, start, stop)
            if isinstance(X, np.memmap):
                X = np.array(X, dtype=self.dtype)
        y = read_rows(self.y, start, stop)
        w = None if self.sample_weight is None else self.sample_weight[start:stop]
        check = index not in self._checked
        X, Y, weight = prepare_block(
            X, y, w, self.encoder, self.dtype, self.n_features, (start, stop), check
        )
        self._checked.add(index)
        return Block(index, start, stop, X, Y, weight)

    def release(self, block: Block) -> None:
        """Tell the kernel the block's mapped pages are not needed any more (memmaps)."""
        advice = getattr(mmap, "MADV_DONTNEED", None)
        if advice is None:  # pragma: no cover - not on Linux/macOS
            return
        for source in (self.X, self.y):
            _advise(source, block.start, block.stop, advice)

    def iter_blocks(self, order: Sequence[int] | NDArray[np.int64]) -> Generator[Block, None, None]:
        """The blocks in ``order``, each read while the one before is being used.

        A background thread reads block ``k + 1`` as soon as block ``k`` is handed
        out; a block's pages are released (:meth:`release`) when the consumer
        asks for the next one. Errors found while reading (bad values) are raised
        here, in the consumer's thread.
        """
        order = [int(i) for i in order]
        if not order:
            return
        # The reader runs in a copy of this thread's context: a Dask client made
        # current with ``client.as_current()`` (a context variable) is seen there too.
        context = contextvars.copy_context()
        with ThreadPoolExecutor(1, thread_name_prefix="handnet-prefetch") as pool:
            pending: Future[Block] | None = pool.submit(context.run, self.read, order[0])
            try:
                for k in range(len(order)):
                    assert pending is not None
                    block = pending.result()
                    pending = (
                        pool.submit(context.run, self.read, order[k + 1])
                        if k + 1 < len(order)
                        else None
                    )
                    yield block
                    self.release(block)
            finally:
                if pending is not None:
                    pending.cancel()

    def read_all(self) -> tuple[Array, NDArray[Any], Array | None]:
        """The blocks of this set in memory: ``(X, y, weight)`` with ``y`` the raw labels/values.

        For held-out validation blocks, which are scored every epoch.
        """
        Xs, ys, ws = [], [], []
        for block in self.iter_blocks(self.blocks):
            Xs.append(block.X)
            ys.append(np.asarray(read_rows(self.y, block.start, block.stop)))
            ws.append(block.weight)
        weight = None if ws[0] is None else np.concatenate([w for w in ws if w is not None])
        return np.concatenate(Xs), np.concatenate(ys), weight

    def total_weight(self) -> float:
        """:math:`\\sum_i s_i` over the rows of this set (sample times class weights)."""
        if self.sample_weight is None and self.encoder.class_weight is None:
            return float(self.n_rows)
        total = 0.0
        for index in self.blocks:
            start, stop = self.rows(int(index))
            _, class_weight = self.encoder(read_rows(self.y, start, stop), "y")
            weight = class_weight
            if self.sample_weight is not None:
                part = self.sample_weight[start:stop]
                weight = part if weight is None else part * weight
            assert weight is not None
            total += float(np.sum(weight, dtype=np.float64))
        return total

    def fingerprint(self) -> NDArray[np.uint8]:
        """SHA-256 of every block's ``X``, targets and weights, in storage order (one pass)."""
        digest = hashlib.sha256()
        digest.update(f"{self.dtype.str}{self.shape};".encode())
        digest.update(self.blocks.astype("<i8").tobytes())
        for block in self.iter_blocks(self.blocks):
            for part in (block.X, block.Y, block.weight):
                if part is None:
                    digest.update(b"none;")
                else:
                    little = np.ascontiguousarray(part, dtype=part.dtype.newbyteorder("<"))
                    digest.update(little.data)
        return np.frombuffer(digest.digest(), dtype=np.uint8)

    def lazy_fingerprint(self) -> Any:
        """An object that computes :meth:`fingerprint` only when NumPy asks for its value.

        :func:`handnet.io.data_fingerprint` converts what it hashes with
        ``np.asarray``, and does so only when a checkpoint is written or a run
        resumed; this defers the pass over the data to that moment.
        """
        return _LazyArray(self.fingerprint)

    def __repr__(self) -> str:
        return (
            f"RowBlocks({type(self.X).__name__}, {self.n_rows} rows in {self.n_blocks} "
            f"blocks, {self.n_features} features, {self.dtype})"
        )


class _LazyArray:
    """``np.asarray(obj)`` calls ``make()`` once (see :meth:`RowBlocks.lazy_fingerprint`)."""

    def __init__(self, make: Callable[[], NDArray[Any]]) -> None:
        self._make = make
        self._value: NDArray[Any] | None = None

    def __array__(self, dtype: Any = None, copy: Any = None) -> NDArray[Any]:
        if self._value is None:
            self._value = self._make()
        return self._value if dtype is None else self._value.astype(dtype)


def predict_blocks(X: Any, n_features: int, dtype: Any, forward: Callable[[Array], Array]) -> Array:
    """``forward`` applied to every block of an out-of-core ``X``, outputs concatenated in order.

    The outputs (``(n_samples, n_outputs)``) are in memory; the features never are
    all at once.
    """
    bounds = storage_bounds(X)
    outputs = []
    dtype = np.dtype(dtype)

    def read(index: int) -> Array:
        start, stop = int(bounds[index]), int(bounds[index + 1])
        block = pread_rows(X, start, stop)
        if block is None:
            block = read_rows(X, start, stop)
        where = f"X (rows {start}:{stop})"
        if block.ndim != 2 or block.shape[1] != n_features:
            raise ValueError(
                f"{where} has {block.shape[-1] if block.ndim else 0} features, but the model "
                f"is expecting {n_features} features as input"
            )
        converted = _numeric_block(block, where, dtype)
        return np.ascontiguousarray(converted)

    n_blocks = len(bounds) - 1
    if n_blocks == 0:
        raise ValueError("X has 0 samples; a minimum of 1 is required")
    context = contextvars.copy_context()  # see RowBlocks.iter_blocks
    with ThreadPoolExecutor(1, thread_name_prefix="handnet-prefetch") as pool:
        pending = pool.submit(context.run, read, 0)
        for index in range(n_blocks):
            block = pending.result()
            if index + 1 < n_blocks:
                pending = pool.submit(context.run, read, index + 1)
            outputs.append(forward(block))
            _advise(X, int(bounds[index]), int(bounds[index + 1]),
                    getattr(mmap, "MADV_DONTNEED", 4))
    return np.concatenate(outputs)


def materialize(X: Any) -> Any:
    """An out-of-core array read into memory (for small companions such as validation data)."""
    if _is_dask(X):
        return np.asarray(X.compute())
    if isinstance(X, NpyShards):
        return X[0 : len(X)]
    if _is_h5py(X) or _is_zarr(X):
        return np.asarray(X[...])
    return X


def warn_column_y() -> None:
    """The column-vector ``y`` warning of :func:`handnet.data.validation.check_target`."""
    from ..exceptions import sklearn_compatible
    from .validation import DataConversionWarning

    warnings.warn(
        "A column-vector y was passed when a 1d array was expected. Please change the "
        "shape of y to (n_samples,), for example using ravel().",
        sklearn_compatible(DataConversionWarning),
        stacklevel=5,
    )
