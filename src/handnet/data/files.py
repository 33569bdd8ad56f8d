"""Reading data files for the command line: CSV, NPZ, NPY and MNIST-style IDX.

:func:`load_dataset` recognises a file by its first bytes, not its name:

* ``PK\\x03\\x04`` (a zip archive): an ``.npz`` of NumPy arrays, with the features
  in ``X`` and (optionally) the labels in ``y``; read with ``allow_pickle=False``.
* ``\\x93NUMPY``: a ``.npy`` array of features, opened with ``mmap_mode="r"`` (read
  from disk as it is used, see :mod:`handnet.data.streaming`); the labels come from a
  second ``.npy`` file (``--labels``).
* ``\\x00\\x00`` followed by a known IDX type code: an IDX array (see
  :func:`handnet.datasets.load_idx`); the labels come from a second IDX file.
* ``\\x1f\\x8b`` (gzip): the decompressed content is recognised the same way
  (``train-images-idx3-ubyte.gz`` or ``data.csv.gz``).
* anything else: a CSV text file (read by :mod:`handnet.data.csv_reader`), whose
  first row names the columns (or, with ``header=False``, is data). The target
  column is picked by name or position; every other column must hold numbers
  (with ``text=True``: or text, or be missing, for
  :mod:`handnet.data.preprocessing`).

Every problem a user can cause (a missing file, an unknown column, a cell that is
not a number, a ragged row, a corrupt archive) raises :class:`DataFileError`, a
``ValueError`` whose message names the file, and where it helps the line and
column, so the CLI can print it as one line.

Only the standard library's :mod:`csv` and NumPy are used: the core of handnet
does not depend on pandas. A CSV is parsed a block of rows at a time, so reading
it takes about twice the memory of the float64 array it becomes; a gzipped CSV
that expands beyond :data:`DEFAULT_MAX_EXPANSION` times its size (and 64 MiB) is
refused as a possible decompression bomb. Files that are not regular files
(pipes, devices) are refused before they are opened.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import stat
import zipfile
from collections.abc import Sequence
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from ..datasets import load_idx
from .csv_reader import read_csv
from .dataset import (
    DEFAULT_MAX_EXPANSION,
    MIN_DECOMPRESSED_LIMIT,
    DataFileError,
    Dataset,
    PathType,
    _head,
    _open_text,
    _read_header_line,
    _sniff_delimiter,
)

__all__ = [
    "DEFAULT_MAX_EXPANSION",
    "MIN_DECOMPRESSED_LIMIT",
    "DataFileError",
    "Dataset",
    "PathType",
    "csv_header",
    "detect_format",
    "load_dataset",
    "read_csv",
    "read_idx",
    "read_npy",
    "read_npz",
    "write_predictions",
]


# --- format detection --------------------------------------------------------------------


def detect_format(path: PathType) -> str:
    """``"npz"``, ``"npy"``, ``"idx"`` or ``"csv"``, from the file's first bytes.

    Gzip-compressed files are looked into: a gzipped IDX file is ``"idx"``, a
    gzipped CSV file ``"csv"``.

    Raises
    ------
    DataFileError
        If the file does not exist, is a directory, a pipe or a device, or is empty.
    """
    name = os.fspath(path)
    if not os.path.exists(name):
        raise DataFileError(f"{name}: no such file")
    if os.path.isdir(name):
        raise DataFileError(f"{name}: is a directory, not a data file")
    if not stat.S_ISREG(os.stat(name).st_mode):
        # Opening a FIFO blocks until someone writes to it, a device may never end.
        raise DataFileError(
            f"{name}: not a regular file (a pipe, device or socket); save the data to a file"
        )
    head = _head(name)
    if not head:
        raise DataFileError(f"{name}: the file is empty")
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(name, "rb") as stream:
                head = stream.read(4)
        except (OSError, EOFError) as error:
            raise DataFileError(f"{name}: corrupt gzip data ({error})") from None
    if head[:4] == b"PK\x03\x04":
        return "npz"
    if head[:4] == b"\x93NUM":
        return "npy"
    if len(head) >= 4 and head[:2] == b"\x00\x00" and head[2:4] != b"\xfe\xff":
        # IDX's magic; its type byte is checked by read_idx, whose error names the known
        # codes (no text file starts with two NUL bytes, bar UTF-32's byte-order mark).
        return "idx"
    return "csv"


def _as_feature_matrix(array: NDArray[Any], where: str) -> NDArray[np.float64]:
    """Numeric array -> float64 (n_samples, n_features); images are flattened row by row."""
    if array.dtype.kind not in "biuf":
        raise DataFileError(
            f"{where}: features must be numbers, got dtype {array.dtype}"
        )
    if array.ndim == 1:
        raise DataFileError(
            f"{where}: X is 1-D (shape {array.shape}); store a 2-D array (n_samples, n_features)"
        )
    if array.ndim == 0 or array.shape[0] == 0:
        raise DataFileError(f"{where}: no samples (shape {array.shape})")
    if array.dtype == np.uint8:
        # 8-bit images: the same x / 255 scaling as handnet.datasets.load_mnist.
        X = array.reshape(array.shape[0], -1).astype(np.float64) / 255.0
    else:
        X = array.reshape(array.shape[0], -1).astype(np.float64)
    if not np.isfinite(X).all():
        row = int(np.flatnonzero(~np.isfinite(X).all(axis=1))[0])
        raise DataFileError(f"{where}: X has NaN or infinity (first in row {row})")
    return X


def image_shape(array_shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """One sample's ``(channels, height, width)`` for an array of images, else ``None``.

    ``(n, height, width)`` arrays (MNIST's IDX files) hold one channel;
    ``(n, channels, height, width)`` arrays are taken as they are.
    """
    if len(array_shape) == 3:
        return (1, int(array_shape[1]), int(array_shape[2]))
    if len(array_shape) == 4:
        return tuple(int(size) for size in array_shape[1:])
    return None


def _as_labels(array: NDArray[Any], n_samples: int, where: str) -> NDArray[Any]:
    labels = array.reshape(-1) if array.ndim == 2 and array.shape[1] == 1 else array
    if labels.ndim != 1:
        raise DataFileError(f"{where}: labels must be 1-D, got shape {array.shape}")
    if labels.shape[0] != n_samples:
        raise DataFileError(
            f"{where}: {n_samples} samples but {labels.shape[0]} labels; they must match"
        )
    if labels.dtype.kind == "f":
        if not np.isfinite(labels).all():
            raise DataFileError(f"{where}: the labels contain NaN or infinity")
        # Whole numbers become int64 only where int64 holds them: beyond 2**63 the cast
        # would wrap, merging distinct labels.
        if np.all(labels == np.round(labels)) and np.all(np.abs(labels) < 2.0**63):
            return labels.astype(np.int64)
        return labels
    if labels.dtype.kind == "u" and labels.size and int(labels.max()) >= 2**63:
        # uint64 labels beyond int64: exact as their decimal text, never wrapped.
        return np.array([str(value) for value in labels.tolist()], dtype=str)
    if labels.dtype.kind in "biu":
        return labels.astype(np.int64)
    if labels.dtype.kind in "U":
        return labels
    raise DataFileError(f"{where}: labels must be numbers or strings, got dtype {labels.dtype}")


def read_npz(path: PathType, need_labels: bool = False) -> Dataset:
    """Read an ``.npz`` archive holding ``X`` (features) and optionally ``y`` (labels).

    ``np.load`` runs with ``allow_pickle=False``: an archive of pickled objects is
    refused, never unpickled. A ``uint8`` ``X`` (images) is scaled to ``[0, 1]``
    by ``x / 255`` and flattened, as :func:`handnet.datasets.load_mnist` does.
    """
    where = os.fspath(path)
    try:
        with np.load(where, allow_pickle=False) as archive:
            keys = list(archive.files)
            if "X" not in keys:
                raise DataFileError(
                    f"{where}: no array named 'X' in the archive (it holds {keys}); "
                    "save with np.savez(path, X=features, y=labels)"
                )
            X_raw = archive["X"]
            y_raw = archive["y"] if "y" in keys else None
    except DataFileError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        raise DataFileError(f"{where}: cannot read the .npz archive ({error})") from None
    X = _as_feature_matrix(X_raw, where)
    y = None if y_raw is None else _as_labels(y_raw, X.shape[0], where)
    if need_labels and y is None:
        raise DataFileError(f"{where}: no array named 'y' (the labels) in the archive")
    return Dataset(X=X, y=y, feature_names=None, target_name=None, source=where,
                   sample_shape=image_shape(X_raw.shape), pixels_scaled=X_raw.dtype == np.uint8)


# --- NPY ---------------------------------------------------------------------------------


def open_npy(path: PathType, what: str = "features") -> NDArray[Any]:
    """A ``.npy`` file opened with ``mmap_mode="r"`` (nothing read yet), checked for shape."""
    where = os.fspath(path)
    if detect_format(where) != "npy":
        raise DataFileError(f"{where}: not a .npy file (expected the {what} in .npy)")
    try:
        array = np.load(where, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as error:
        raise DataFileError(f"{where}: cannot read the .npy file ({error})") from None
    expected = 2 if what == "features" else 1
    if array.ndim != expected:
        raise DataFileError(
            f"{where}: the {what} must be a {expected}-D array, got shape {array.shape}"
        )
    if array.dtype.kind not in ("biuf" if what == "features" else "biufU"):
        raise DataFileError(f"{where}: the {what} have dtype {array.dtype}, not numbers")
    return array


def read_npy(path: PathType, labels: PathType | None = None, need_labels: bool = False) -> Dataset:
    """A ``.npy`` file of features (memory-mapped, not read into memory) and ``.npy`` labels.

    The features stay on disk: models read them block by block
    (:mod:`handnet.data.streaming`). The labels (one per row) are read into memory.
    """
    where = os.fspath(path)
    X = open_npy(where, "features")
    y = None
    if labels is not None:
        y_raw = open_npy(labels, "labels")
        y = _as_labels(np.asarray(y_raw), X.shape[0], os.fspath(labels))
    elif need_labels:
        raise DataFileError(f"{where} is a .npy file: pass its labels with --labels LABELS.npy")
    return Dataset(X=X, y=y, feature_names=None, target_name=None, source=where)


# --- IDX ---------------------------------------------------------------------------------


def read_idx(images: PathType, labels: PathType | None = None) -> Dataset:
    """Read MNIST-style IDX files: images (or any array) and optionally labels.

    A ``uint8`` array of shape ``(n, rows, cols)`` is flattened to
    ``(n, rows * cols)`` and scaled by ``1 / 255``, as
    :func:`handnet.datasets.load_mnist` does; other dtypes are used as they are.
    """
    where = os.fspath(images)
    try:
        array = load_idx(where)
    except ValueError as error:
        raise DataFileError(str(error)) from None
    X = _as_feature_matrix(array, where)
    y = None
    if labels is not None:
        label_where = os.fspath(labels)
        if detect_format(label_where) != "idx":
            raise DataFileError(f"{label_where}: not an IDX file (expected the labels in IDX)")
        try:
            label_array = load_idx(label_where)
        except ValueError as error:
            raise DataFileError(str(error)) from None
        if label_array.dtype.kind not in "iu":
            raise DataFileError(
                f"{label_where}: labels must be integers, got {label_array.dtype}"
            )
        if label_array.ndim != 1 or label_array.shape[0] != X.shape[0]:
            raise DataFileError(
                f"{label_where}: expected {X.shape[0]} labels (one per image in {where}), "
                f"got shape {label_array.shape}"
            )
        y = label_array.astype(np.int64)
    return Dataset(X=X, y=y, feature_names=None, target_name=None, source=where,
                   sample_shape=image_shape(array.shape), pixels_scaled=array.dtype == np.uint8)


# --- any of them -------------------------------------------------------------------------


def load_dataset(
    path: PathType,
    target: str | None = None,
    labels: PathType | None = None,
    delimiter: str | None = None,
    need_labels: bool = True,
    features: Sequence[str] | None = None,
    max_expansion: float = DEFAULT_MAX_EXPANSION,
    **csv_options: Any,
) -> Dataset:
    """Read a CSV, NPZ, NPY or IDX file, whichever ``path`` holds.

    A ``.npy`` file's features are memory-mapped, not read (see :func:`read_npy`).

    Parameters
    ----------
    path : str or os.PathLike
    target : str, optional
        CSV only: the label column's name (required for a CSV when ``need_labels``).
    labels : str or os.PathLike, optional
        IDX and NPY only: the IDX (or ``.npy``) file of labels.
    delimiter : str, optional
        CSV only; guessed from the header by default.
    need_labels : bool, default True
        Refuse a file without labels (training, evaluation); prediction passes False.
    features : sequence of str, optional
        CSV only: the feature columns to read, by name.
    max_expansion : float, default 100
        CSV only: how many times its size a gzipped CSV may expand (see :func:`read_csv`).
    **csv_options
        CSV only: :func:`read_csv`'s keyword options (``header``, ``names``, ``drop``,
        ``id_column``, ``decimal``, ``text``).

    Raises
    ------
    DataFileError
        For any problem with the files or the options given for them.
    """
    where = os.fspath(path)
    kind = detect_format(where)
    if kind == "npy":
        if target is not None:
            raise DataFileError(
                f"--target names a CSV column, but {where} is NPY; pass the labels with --labels"
            )
        return read_npy(where, labels, need_labels=need_labels)
    if labels is not None and kind != "idx":
        raise DataFileError(
            f"--labels is for IDX image files and NPY files, but {where} is {kind.upper()}"
            + ("; name the CSV label column with --target" if kind == "csv" else
               "; an .npz holds its labels in the array 'y'")
        )
    if kind == "csv":
        if target is None and need_labels:
            header = csv_header(where, delimiter)
            raise DataFileError(
                f"{where} is a CSV file: name its label column with --target "
                f"(the columns are: {', '.join(header[:20])})"
            )
        return read_csv(where, target=target, delimiter=delimiter, features=features,
                        max_expansion=max_expansion, **csv_options)
    if target is not None:
        raise DataFileError(
            f"--target names a CSV column, but {where} is {kind.upper()}"
            + ("; pass the labels with --labels" if kind == "idx" else
               "; an .npz holds its labels in the array 'y'")
        )
    if kind == "npz":
        return read_npz(where, need_labels=need_labels)
    if labels is None and need_labels:
        raise DataFileError(f"{where} is an IDX file: pass its labels with --labels LABELS.idx")
    return read_idx(where, labels)


def csv_header(path: PathType, delimiter: str | None = None, decimal: str = ".") -> list[str]:
    """The cells of a CSV file's first row (its column names, when it has a header)."""
    where = os.fspath(path)
    try:
        with _open_text(where) as stream:
            first = _read_header_line(stream, where)
        sep = delimiter or _sniff_delimiter(first, decimal)
        return [column.strip() for column in next(csv.reader([first], delimiter=sep), [])]
    except UnicodeDecodeError as error:
        raise DataFileError(
            f"{where}: not a UTF-8 text file ({error.reason} at byte {error.start}); "
            "expected a CSV file, an .npz archive or an IDX file"
        ) from None
    except csv.Error as error:
        raise DataFileError(f"{where}: malformed CSV ({error})") from None


# --- writing -----------------------------------------------------------------------------


def write_predictions(
    stream: IO[str],
    predictions: NDArray[Any],
    probabilities: NDArray[np.floating] | None = None,
    classes: Sequence[Any] | None = None,
    ids: Sequence[Any] | None = None,
    id_name: str = "id",
) -> None:
    """Write predictions as CSV: a ``prediction`` column, then ``proba_<class>`` columns.

    Probabilities are written with 17 significant digits (``repr`` of a float64),
    so reading them back gives exactly the same numbers. With ``ids`` (one per
    row) a first column ``id_name`` holds each row's identifier.
    """
    writer = csv.writer(stream, lineterminator="\n")
    header = ["prediction"] if ids is None else [id_name, "prediction"]
    if probabilities is not None:
        names = classes if classes is not None else range(probabilities.shape[1])
        header += [f"proba_{name}" for name in names]
    writer.writerow(header)
    for i, label in enumerate(predictions.tolist()):
        row = [str(label)] if ids is None else [str(ids[i]), str(label)]
        if probabilities is not None:
            row += [repr(float(p)) for p in probabilities[i]]
        writer.writerow(row)


def predictions_to_text(
    predictions: NDArray[Any],
    probabilities: NDArray[np.floating] | None = None,
    classes: Sequence[Any] | None = None,
) -> str:
    """:func:`write_predictions` into a string."""
    buffer = io.StringIO()
    write_predictions(buffer, predictions, probabilities, classes)
    return buffer.getvalue()
