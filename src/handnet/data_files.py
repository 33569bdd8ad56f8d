"""Reading data files for the command line: CSV, NPZ, NPY and MNIST-style IDX.

:func:`load_dataset` recognises a file by its first bytes, not its name:

* ``PK\\x03\\x04`` (a zip archive): an ``.npz`` of NumPy arrays, with the features
  in ``X`` and (optionally) the labels in ``y``; read with ``allow_pickle=False``.
* ``\\x93NUMPY``: a ``.npy`` array of features, opened with ``mmap_mode="r"`` (read
  from disk as it is used, see :mod:`handnet.streaming`); the labels come from a
  second ``.npy`` file (``--labels``).
* ``\\x00\\x00`` followed by a known IDX type code: an IDX array (see
  :func:`handnet.datasets.load_idx`); the labels come from a second IDX file.
* ``\\x1f\\x8b`` (gzip): the decompressed content is recognised the same way
  (``train-images-idx3-ubyte.gz`` or ``data.csv.gz``).
* anything else: a CSV text file whose first row names the columns. The target
  column is picked by name; every other column must hold numbers.

Every problem a user can cause (a missing file, an unknown column, a cell that is
not a number, a ragged row, a corrupt archive) raises :class:`DataFileError`, a
``ValueError`` whose message names the file, and where it helps the line and
column, so the CLI can print it as one line.

Only the standard library's :mod:`csv` and NumPy are used: the core of handnet
does not depend on pandas.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from .datasets import load_idx

__all__ = [
    "DataFileError",
    "Dataset",
    "csv_header",
    "detect_format",
    "load_dataset",
    "read_csv",
    "read_idx",
    "read_npy",
    "read_npz",
    "write_predictions",
]

PathType = str | os.PathLike[str]

_IDX_TYPE_CODES = frozenset({0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E})
_DELIMITERS = ",;\t|"


class DataFileError(ValueError):
    """A data file cannot be read as asked; the message says why, in one line."""


@dataclass
class Dataset:
    """Features (and labels) read from a file.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,) or None
        Labels: int64 when every label is a whole number, float64 for other
        numbers, str otherwise; ``None`` when the file has none.
    feature_names : list of str or None
        The CSV header's feature columns (``None`` for NPZ and IDX files).
    target_name : str or None
        The CSV column the labels came from.
    source : str
        A short description of where the data came from (for messages).
    """

    X: NDArray[np.float64]
    y: NDArray[Any] | None
    feature_names: list[str] | None
    target_name: str | None
    source: str

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])


# --- format detection --------------------------------------------------------------------


def _head(path: PathType, size: int = 4) -> bytes:
    with open(path, "rb") as stream:
        return stream.read(size)


def detect_format(path: PathType) -> str:
    """``"npz"``, ``"npy"``, ``"idx"`` or ``"csv"``, from the file's first bytes.

    Gzip-compressed files are looked into: a gzipped IDX file is ``"idx"``, a
    gzipped CSV file ``"csv"``.

    Raises
    ------
    DataFileError
        If the file does not exist, is a directory or is empty.
    """
    name = os.fspath(path)
    if not os.path.exists(name):
        raise DataFileError(f"{name}: no such file")
    if os.path.isdir(name):
        raise DataFileError(f"{name}: is a directory, not a data file")
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
    if len(head) >= 4 and head[:2] == b"\x00\x00" and head[2] in _IDX_TYPE_CODES:
        return "idx"
    return "csv"


# --- CSV ---------------------------------------------------------------------------------


def _open_text(path: str) -> IO[str]:
    # utf-8-sig drops the byte-order mark spreadsheet programs put before the header.
    if _head(path, 2) == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _sniff_delimiter(first_line: str) -> str:
    """The delimiter of a header line: the candidate that splits it most (``,`` on ties)."""
    counts = {d: len(next(csv.reader([first_line], delimiter=d))) for d in _DELIMITERS}
    best = max(counts.values())
    if best == 1:
        return ","
    return next(d for d in _DELIMITERS if counts[d] == best)


def _parse_numbers(
    cells: NDArray[np.str_], names: Sequence[str], lines: Sequence[int], where: str
) -> NDArray[np.float64]:
    """A 2-D array of numeric strings as float64, or a DataFileError naming the bad cell."""
    try:
        values = cells.astype(np.float64)
    except ValueError:
        values = None
    if values is not None and np.isfinite(values).all():
        return values
    # Something failed: find the first offending cell, row by row, for the message.
    for i, row in enumerate(cells):
        for j, cell in enumerate(row):
            text = str(cell).strip()
            line = lines[i]
            if not text:
                raise DataFileError(
                    f"{where}, line {line}, column {names[j]!r}: empty cell (missing value); "
                    "fill in or drop rows with missing values"
                )
            try:
                number = float(text)
            except ValueError:
                raise DataFileError(
                    f"{where}, line {line}, column {names[j]!r}: {text!r} is not a number; "
                    "features must be numeric (encode categories as numbers or drop the column)"
                ) from None
            if not np.isfinite(number):
                raise DataFileError(
                    f"{where}, line {line}, column {names[j]!r}: {text!r} is not a finite "
                    "number; remove or impute it"
                )
    raise DataFileError(f"{where}: could not read the features as numbers")  # pragma: no cover


def _labels_from_strings(
    cells: Sequence[str], name: str, lines: Sequence[int], where: str
) -> NDArray[Any]:
    """Labels as int64 (whole numbers), float64 (other numbers) or str (anything else)."""
    texts = [cell.strip() for cell in cells]
    for i, text in enumerate(texts):
        if not text:
            raise DataFileError(
                f"{where}, line {lines[i]}, column {name!r}: empty label (missing value)"
            )
    try:
        numbers = np.array([float(text) for text in texts], dtype=np.float64)
    except ValueError:
        return np.array(texts, dtype=str)
    if not np.isfinite(numbers).all():
        bad = int(np.flatnonzero(~np.isfinite(numbers))[0])
        raise DataFileError(
            f"{where}, line {lines[bad]}, column {name!r}: {texts[bad]!r} is not a "
            "finite number"
        )
    if np.all(numbers == np.round(numbers)) and np.all(np.abs(numbers) < 2**53):
        return numbers.astype(np.int64)
    return numbers


def read_csv(
    path: PathType,
    target: str | None = None,
    delimiter: str | None = None,
    features: Sequence[str] | None = None,
) -> Dataset:
    """Read a CSV file with a header row.

    Parameters
    ----------
    path : str or os.PathLike
        The file (optionally gzip-compressed).
    target : str, optional
        Name of the label column. Without it the file has no labels and every
        column (or every column in ``features``) is a feature.
    delimiter : str, optional
        One character; by default guessed from the header among ``, ; tab |``.
    features : sequence of str, optional
        Read exactly these columns, in this order, as the features (e.g. the
        columns a model was trained on); other columns are ignored.

    Returns
    -------
    Dataset

    Raises
    ------
    DataFileError
        Unknown or duplicated column names, rows of the wrong length, cells that
        are empty or not numbers, no data rows.
    """
    name = os.fspath(path)
    where = name
    try:
        with _open_text(name) as stream:
            first = stream.readline()
            if not first.strip():
                raise DataFileError(f"{where}: no header row (the first line is empty)")
            sep = delimiter or _sniff_delimiter(first)
            header = [column.strip() for column in next(csv.reader([first], delimiter=sep))]
            reader = csv.reader(stream, delimiter=sep)
            # (line number, row) with physical line numbers, the header being line 1;
            # reader.line_num counts the lines read so far (a quoted field may span several).
            rows = [(reader.line_num + 1, row) for row in reader]
    except UnicodeDecodeError as error:
        raise DataFileError(
            f"{where}: not a UTF-8 text file ({error.reason} at byte {error.start}); "
            "expected a CSV file, an .npz archive or an IDX file"
        ) from None
    except csv.Error as error:
        raise DataFileError(f"{where}: malformed CSV ({error})") from None

    duplicates = sorted({column for column in header if header.count(column) > 1})
    if duplicates:
        raise DataFileError(f"{where}: duplicated column name(s) in the header: {duplicates}")
    if any(not column for column in header):
        raise DataFileError(f"{where}: the header has an empty column name")

    # Blank lines are skipped (a trailing empty line at the end of a file is common).
    numbered = [(line, row) for line, row in rows if any(cell.strip() for cell in row)]
    if not numbered:
        raise DataFileError(f"{where}: the file has a header but no data rows")
    for line, row in numbered:
        if len(row) != len(header):
            raise DataFileError(
                f"{where}, line {line}: {len(row)} fields, but the header has {len(header)} "
                f"(delimiter {sep!r})"
            )

    def index_of(column: str, role: str) -> int:
        if column not in header:
            shown = ", ".join(header[:20]) + (", ..." if len(header) > 20 else "")
            raise DataFileError(f"{where}: no {role} column {column!r}; the columns are: {shown}")
        return header.index(column)

    target_index = index_of(target, "target") if target is not None else None
    if features is not None:
        feature_index = [index_of(column, "feature") for column in features]
    else:
        feature_index = [j for j in range(len(header)) if j != target_index]
    if not feature_index:
        raise DataFileError(f"{where}: no feature columns (only the target {target!r})")
    feature_names = [header[j] for j in feature_index]

    lines = [line for line, _ in numbered]
    cells = np.array([[row[j] for j in feature_index] for _, row in numbered], dtype=str)
    X = _parse_numbers(cells, feature_names, lines, where)
    y = None
    if target is not None and target_index is not None:
        y = _labels_from_strings([row[target_index] for _, row in numbered], target, lines, where)
    return Dataset(X=X, y=y, feature_names=feature_names, target_name=target, source=where)


# --- NPZ ---------------------------------------------------------------------------------


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
        if np.all(labels == np.round(labels)):
            return labels.astype(np.int64)
        return labels
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
    return Dataset(X=X, y=y, feature_names=None, target_name=None, source=where)


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
    (:mod:`handnet.streaming`). The labels (one per row) are read into memory.
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
    return Dataset(X=X, y=y, feature_names=None, target_name=None, source=where)


# --- any of them -------------------------------------------------------------------------


def load_dataset(
    path: PathType,
    target: str | None = None,
    labels: PathType | None = None,
    delimiter: str | None = None,
    need_labels: bool = True,
    features: Sequence[str] | None = None,
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
        return read_csv(where, target=target, delimiter=delimiter, features=features)
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


def csv_header(path: PathType, delimiter: str | None = None) -> list[str]:
    """The column names in a CSV file's first row."""
    where = os.fspath(path)
    try:
        with _open_text(where) as stream:
            first = stream.readline()
        sep = delimiter or _sniff_delimiter(first)
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
) -> None:
    """Write predictions as CSV: a ``prediction`` column, then ``proba_<class>`` columns.

    Probabilities are written with 17 significant digits (``repr`` of a float64),
    so reading them back gives exactly the same numbers.
    """
    writer = csv.writer(stream, lineterminator="\n")
    header = ["prediction"]
    if probabilities is not None:
        names = classes if classes is not None else range(probabilities.shape[1])
        header += [f"proba_{name}" for name in names]
    writer.writerow(header)
    for i, label in enumerate(predictions.tolist()):
        row = [str(label)]
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
