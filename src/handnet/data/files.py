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
* anything else: a CSV text file whose first row names the columns. The target
  column is picked by name; every other column must hold numbers.

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
import decimal
import gzip
import io
import itertools
import math
import operator
import os
import stat
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from ..datasets import load_idx

__all__ = [
    "DEFAULT_MAX_EXPANSION",
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
    sample_shape : tuple of int or None
        For images, the shape of one sample as ``(channels, height, width)``
        (each row of ``X`` holds one image, flattened); ``None`` for tables.
    """

    X: NDArray[np.float64]
    y: NDArray[Any] | None
    feature_names: list[str] | None
    target_name: str | None
    source: str
    sample_shape: tuple[int, ...] | None = None

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
    if len(head) >= 4 and head[:2] == b"\x00\x00" and head[2] in _IDX_TYPE_CODES:
        return "idx"
    return "csv"


# --- CSV ---------------------------------------------------------------------------------

DEFAULT_MAX_EXPANSION = 100.0
"""How many times its own size a gzip-compressed CSV may expand to (see :func:`read_csv`)."""

MIN_DECOMPRESSED_LIMIT = 64 * 2**20
"""Decompressed bytes always allowed, whatever the ratio: small files of very regular data
compress far better than 100:1, and 64 MiB of text is no threat."""

_HEADER_LIMIT = 16 * 2**20
"""Characters the header line may have (a binary file without line breaks is not read whole)."""

_CHUNK_ROWS = 16_384
"""Rows parsed as Python strings at a time: the rest of the file is held as float64 only."""


class _BoundedStream(io.RawIOBase):
    """A binary stream that refuses to deliver more than ``limit`` bytes.

    Wrapped around a :class:`gzip.GzipFile`, it stops a decompression bomb (a
    small file that expands to gigabytes) as soon as the limit is passed, while
    the CSV reader above it reads the text a buffer at a time.
    """

    def __init__(self, raw: gzip.GzipFile, limit: int, where: str, max_expansion: float) -> None:
        super().__init__()
        self._raw = raw
        self._limit = limit
        self._where = where
        self._max_expansion = max_expansion
        self._count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            count = self._raw.readinto(buffer)
        except (OSError, EOFError, zlib.error) as error:
            raise DataFileError(f"{self._where}: corrupt gzip data ({error})") from None
        self._count += count
        if self._count > self._limit:
            raise DataFileError(
                f"{self._where}: the gzip data expands to more than {self._limit:,} bytes "
                f"({self._max_expansion:g} times the compressed file, at least "
                f"{MIN_DECOMPRESSED_LIMIT // 2**20} MiB): refused as a possible decompression "
                "bomb; if the file is genuine, decompress it first or raise the limit with "
                "--max-expansion RATIO (read_csv(max_expansion=...))"
            )
        return int(count)

    def close(self) -> None:
        self._raw.close()
        super().close()


def _open_text(path: str, max_expansion: float = DEFAULT_MAX_EXPANSION) -> IO[str]:
    # utf-8-sig drops the byte-order mark spreadsheet programs put before the header.
    if _head(path, 2) == b"\x1f\x8b":
        if not max_expansion > 0:
            raise ValueError(f"max_expansion must be positive, got {max_expansion!r}")
        compressed = os.path.getsize(path)
        limit = max(int(min(max_expansion * compressed, 2.0**62)), MIN_DECOMPRESSED_LIMIT)
        # First decompress without parsing, only counting: a bomb is refused in a fraction
        # of a second rather than after its first 64 MiB have been parsed as CSV.
        with _BoundedStream(gzip.GzipFile(path, "rb"), limit, path, max_expansion) as scan:
            buffer = bytearray(2**20)
            while scan.readinto(buffer):
                pass
        # The text wrapper owns (and closes) the gzip file it reads through; the bound
        # stays in place there too (the file may have changed since the scan).
        raw = gzip.GzipFile(path, "rb")
        bounded = _BoundedStream(raw, limit, path, max_expansion)
        return io.TextIOWrapper(io.BufferedReader(bounded), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _read_header_line(stream: IO[str], where: str) -> str:
    first = stream.readline(_HEADER_LIMIT)
    if len(first) >= _HEADER_LIMIT and not first.endswith(("\n", "\r")):
        raise DataFileError(
            f"{where}: the first line is longer than {_HEADER_LIMIT:,} characters; a CSV file "
            "starts with a header row naming its columns"
        )
    return first


def _sniff_delimiter(first_line: str) -> str:
    """The delimiter of a header line: the candidate that splits it most (``,`` on ties)."""
    counts = {d: len(next(csv.reader([first_line], delimiter=d))) for d in _DELIMITERS}
    best = max(counts.values())
    if best == 1:
        return ","
    return next(d for d in _DELIMITERS if counts[d] == best)


def _bad_cell(
    rows: Sequence[Sequence[str]], names: Sequence[str], lines: Sequence[int], where: str
) -> DataFileError:
    """The error for the first cell of ``rows`` that is not a finite number (the slow path)."""
    for row, line in zip(rows, lines, strict=True):
        for name, cell in zip(names, row, strict=True):
            text = cell.strip()
            if not text:
                return DataFileError(
                    f"{where}, line {line}, column {name!r}: empty cell (missing value); "
                    "fill in or drop rows with missing values"
                )
            try:
                number = float(text)
            except ValueError:
                return DataFileError(
                    f"{where}, line {line}, column {name!r}: {text!r} is not a number; "
                    "features must be numeric (encode categories as numbers or drop the column)"
                )
            if not math.isfinite(number):
                return DataFileError(
                    f"{where}, line {line}, column {name!r}: {text!r} is not a finite "
                    "number; remove or impute it"
                )
    return DataFileError(f"{where}: could not read the features as numbers")  # pragma: no cover


def _parse_chunk(
    rows: list[list[str]], columns: list[int], names: Sequence[str], lines: Sequence[int],
    where: str,
) -> NDArray[np.float64]:
    """The feature cells of ``rows`` as a float64 array, or the DataFileError naming a bad cell."""
    if len(columns) == 1:
        only = columns[0]
        cells = [row[only] for row in rows]
    else:
        pick = operator.itemgetter(*columns)
        cells = list(itertools.chain.from_iterable(map(pick, rows)))
    try:
        # float() of each cell, straight into a float64 buffer: no intermediate array of
        # strings (NumPy's would be as wide as the widest cell, for every cell).
        values = np.fromiter(map(float, cells), dtype=np.float64, count=len(cells))
    except ValueError:
        values = None
    if values is None or not np.isfinite(values).all():
        picked = [[row[j] for j in columns] for row in rows]
        raise _bad_cell(picked, names, lines, where)
    return values.reshape(len(rows), len(columns))


_WIDE_LABEL = 64
"""Longer text labels are kept as Python strings (an object array) rather than a NumPy
string array, which stores every label at the width of the longest."""


def _exact_labels(texts: list[str], name: str, lines: list[int], where: str) -> NDArray[Any]:
    """One value per distinct label text, kept exact.

    Whole numbers become int64 when all of them fit (so ``9007199254740993`` stays
    itself rather than rounding to a float64), other numbers float64 when that
    keeps distinct texts distinct; anything else stays text. ``lines`` gives the
    line each text first appears on, for messages.
    """
    for text, line in zip(texts, lines, strict=True):
        if not text:
            raise DataFileError(
                f"{where}, line {line}, column {name!r}: empty label (missing value)"
            )
    try:
        numbers = [decimal.Decimal(text) for text in texts]
    except (decimal.InvalidOperation, ValueError):
        numbers = None
    if numbers is not None:
        for number, text, line in zip(numbers, texts, lines, strict=True):
            if not number.is_finite() or not math.isfinite(float(number)):
                raise DataFileError(
                    f"{where}, line {line}, column {name!r}: {text!r} is not a finite number"
                )
        if all(number == number.to_integral_value() for number in numbers):
            integers = [int(number) for number in numbers]
            if all(-(2**63) <= value < 2**63 for value in integers):
                return np.array(integers, dtype=np.int64)
            # Beyond int64: exact only as text ("7" and "007" are still one class).
            texts = [str(value) for value in integers]
        else:
            floats = np.array([float(number) for number in numbers], dtype=np.float64)
            # Texts of one number ("1.5" and "1.50", "0.5" and "5e-1") are one label;
            # only distinct numbers that float64 cannot tell apart keep their text.
            if len(np.unique(floats)) == len(set(numbers)):
                return floats
    width = max(len(text) for text in texts)
    return np.array(texts, dtype=object if width > _WIDE_LABEL else str)


def _label_values(
    raw: dict[str, int], codes: NDArray[np.intp], first_lines: list[int], name: str, where: str
) -> NDArray[Any]:
    """Labels from the distinct raw cells (``raw``: cell -> code) and each row's code."""
    # Distinct raw cells may differ only by surrounding spaces: merge them after stripping.
    merged: dict[str, int] = {}
    merged_lines: list[int] = []
    remap = np.empty(len(raw), dtype=np.intp)
    for cell, code in raw.items():
        text = cell.strip()
        target = merged.get(text)
        if target is None:
            target = merged[text] = len(merged)
            merged_lines.append(first_lines[code])
        else:
            merged_lines[target] = min(merged_lines[target], first_lines[code])
        remap[code] = target
    values = _exact_labels(list(merged), name, merged_lines, where)
    return values[remap[codes]]


def read_csv(
    path: PathType,
    target: str | None = None,
    delimiter: str | None = None,
    features: Sequence[str] | None = None,
    max_expansion: float = DEFAULT_MAX_EXPANSION,
) -> Dataset:
    """Read a CSV file with a header row.

    The rows are parsed a block at a time and each block's features are turned into
    float64 at once, so reading takes about twice the memory of the resulting
    array (plus the distinct labels), not many times the file.

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
    max_expansion : float, default 100
        A gzip-compressed file may expand to at most this many times its own
        size (and always to 64 MiB): beyond that it is refused as a possible
        decompression bomb before it fills the memory.

    Returns
    -------
    Dataset
        Labels are int64 when every label is a whole number within int64 (exact,
        also above 2**53), float64 for other numbers, text otherwise (an object
        array of str when a label is longer than 64 characters).

    Raises
    ------
    DataFileError
        Unknown or duplicated column names, rows of the wrong length, cells that
        are empty or not numbers, a quote that is never closed (or a field that
        runs over several lines), no data rows, a gzip file expanding beyond
        ``max_expansion``.
    """
    name = os.fspath(path)
    where = name
    chunks: list[NDArray[np.float64]] = []
    code_chunks: list[NDArray[np.intp]] = []
    raw_labels: dict[str, int] = {}
    first_lines: list[int] = []
    try:
        with _open_text(name, max_expansion) as stream:
            first = _read_header_line(stream, where)
            if not first.strip():
                raise DataFileError(f"{where}: no header row (the first line is empty)")
            sep = delimiter or _sniff_delimiter(first)
            header = [column.strip() for column in next(csv.reader([first], delimiter=sep))]
            _check_header(header, where)
            target_index = (None if target is None
                            else _index_of(header, target, "target", where))
            if features is not None:
                columns = [_index_of(header, column, "feature", where) for column in features]
            else:
                columns = [j for j in range(len(header)) if j != target_index]
            if not columns:
                raise DataFileError(f"{where}: no feature columns (only the target {target!r})")
            feature_names = [header[j] for j in columns]
            n_fields = len(header)

            # A quote that is never closed makes the reader run on over the following
            # lines: the check on the lines each record spans refuses it, with its line.
            # (Not strict=True, which also refused `"cat" ,` that earlier handnet read.)
            reader = csv.reader(stream, delimiter=sep)
            rows: list[list[str]] = []
            lines: list[int] = []
            previous = 0  # reader.line_num after the last record: physical lines read

            def flush() -> None:
                chunks.append(_parse_chunk(rows, columns, feature_names, lines, where))
                if target_index is not None:
                    codes = np.empty(len(rows), dtype=np.intp)
                    for i, row in enumerate(rows):
                        cell = row[target_index]
                        code = raw_labels.get(cell)
                        if code is None:
                            code = raw_labels[cell] = len(raw_labels)
                            first_lines.append(lines[i])
                        codes[i] = code
                    code_chunks.append(codes)
                rows.clear()
                lines.clear()

            try:
                for row in reader:
                    end = reader.line_num
                    line = previous + 2  # the header is line 1
                    if end != previous + 1:
                        # One record over several lines: a quoted field holds line breaks,
                        # which in a file of numbers means a stray or unclosed quote.
                        raise DataFileError(
                            f"{where}, line {line}: a quoted field runs from line {line} to "
                            f"line {end + 1}; is a quote (\") on line {line} stray or "
                            "unclosed? Fields must not span lines: fix or remove the quote"
                        )
                    previous = end
                    if len(row) != n_fields:
                        if not any(cell.strip() for cell in row):
                            continue  # blank lines are skipped (a trailing one is common)
                        raise DataFileError(
                            f"{where}, line {line}: {len(row)} fields, but the header has "
                            f"{n_fields} (delimiter {sep!r})"
                        )
                    if not row[0].strip() and not any(cell.strip() for cell in row):
                        continue
                    rows.append(row)
                    lines.append(line)
                    if len(rows) >= _CHUNK_ROWS:
                        flush()
            except csv.Error as error:
                line = previous + 2
                hint = ""
                if "end of data" in str(error) or "field limit" in str(error):
                    hint = f"; a quote (\") on line {line} is never closed: fix or remove it"
                raise DataFileError(
                    f"{where}, line {line}: malformed CSV ({error}){hint}"
                ) from None
            if rows:
                flush()
    except UnicodeDecodeError as error:
        raise DataFileError(
            f"{where}: not a UTF-8 text file ({error.reason} at byte {error.start}); "
            "expected a CSV file, an .npz archive or an IDX file"
        ) from None

    if not chunks:
        raise DataFileError(f"{where}: the file has a header but no data rows")
    X = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
    chunks.clear()
    y = None
    if target is not None and target_index is not None:
        codes = code_chunks[0] if len(code_chunks) == 1 else np.concatenate(code_chunks)
        y = _label_values(raw_labels, codes, first_lines, target, where)
    return Dataset(X=X, y=y, feature_names=feature_names, target_name=target, source=where)


def _check_header(header: list[str], where: str) -> None:
    duplicates = sorted({column for column in header if header.count(column) > 1})
    if duplicates:
        raise DataFileError(f"{where}: duplicated column name(s) in the header: {duplicates}")
    if any(not column for column in header):
        raise DataFileError(f"{where}: the header has an empty column name")


def _index_of(header: list[str], column: str, role: str, where: str) -> int:
    if column not in header:
        shown = ", ".join(header[:20]) + (", ..." if len(header) > 20 else "")
        raise DataFileError(f"{where}: no {role} column {column!r}; the columns are: {shown}")
    return header.index(column)


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
                   sample_shape=image_shape(X_raw.shape))


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
                   sample_shape=image_shape(array.shape))


# --- any of them -------------------------------------------------------------------------


def load_dataset(
    path: PathType,
    target: str | None = None,
    labels: PathType | None = None,
    delimiter: str | None = None,
    need_labels: bool = True,
    features: Sequence[str] | None = None,
    max_expansion: float = DEFAULT_MAX_EXPANSION,
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
                        max_expansion=max_expansion)
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
            first = _read_header_line(stream, where)
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
