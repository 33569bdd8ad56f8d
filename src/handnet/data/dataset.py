"""What a data reader returns, the error it raises, and the bounded text stream readers share.

:class:`Dataset` holds features and labels read from a file (:mod:`handnet.data.files`
for NPZ, NPY and IDX, :mod:`handnet.data.csv_reader` for CSV); every problem a user can
cause is a :class:`DataFileError`. :func:`_open_text` opens a (possibly gzipped) text
file through a stream that refuses to expand past :data:`DEFAULT_MAX_EXPANSION` times its
size (a decompression bomb), and :func:`_sniff_delimiter` guesses a CSV's delimiter
from its first line.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import zlib
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

PathType = str | os.PathLike[str]

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
    pixels_scaled : bool
        Whether ``X`` holds 8-bit values scaled to ``[0, 1]`` by ``x / 255`` as they
        were read (``uint8`` arrays in IDX and NPZ files): a model trained on them
        expects inputs scaled the same way.
    ids : ndarray of str or None
        CSV: the cells of the identifier column (``id_column``), as text.
    id_name : str or None
        CSV: the name of the identifier column.
    text_columns : dict of str to ndarray
        CSV read with ``text=True``: the feature columns that hold text, as
        arrays of ``str`` (``None`` where a cell is missing); their columns of
        ``X`` are ``NaN``.
    file_columns : list of str or None
        CSV: every column of the file, in order (for a file without a header
        row, the positions ``"0"``, ``"1"``, ...).
    header : bool
        CSV: whether the file's first row named the columns.
    missing_lines : dict of str to int
        CSV read with ``text=True``: for each feature column with missing cells,
        the line of the first one.
    """

    X: NDArray[np.float64]
    y: NDArray[Any] | None
    feature_names: list[str] | None
    target_name: str | None
    source: str
    sample_shape: tuple[int, ...] | None = None
    pixels_scaled: bool = False
    ids: NDArray[Any] | None = None
    id_name: str | None = None
    text_columns: dict[str, NDArray[Any]] = field(default_factory=dict)
    file_columns: list[str] | None = None
    header: bool = True
    missing_lines: dict[str, int] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])


# --- bounded text streams --------------------------------------------------------------

DEFAULT_MAX_EXPANSION = 100.0
"""How many times its own size a gzip-compressed CSV may expand to (see :func:`read_csv`)."""

MIN_DECOMPRESSED_LIMIT = 64 * 2**20
"""Decompressed bytes always allowed, whatever the ratio: small files of very regular data
compress far better than 100:1, and 64 MiB of text is no threat."""

_HEADER_LIMIT = 16 * 2**20
"""Characters the header line may have (a binary file without line breaks is not read whole)."""

_CHUNK_ROWS = 16_384
"""Rows parsed as Python strings at a time: the rest of the file is held as float64 only."""


def _head(path: PathType, size: int = 4) -> bytes:
    """The first ``size`` bytes of a file (its magic number)."""
    with open(path, "rb") as stream:
        return stream.read(size)


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


_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+")
"""A number written with a decimal comma, such as ``14,23``."""


def _sniff_delimiter(first_line: str, decimal: str = ".") -> str:
    """The delimiter of the first line: the candidate that splits it most (``,`` on ties).

    ``;`` wins over ``,`` when it splits the line into numbers written with decimal
    commas (``14,23;1,71``), and ``,`` is never the delimiter when ``decimal`` is ``,``.
    """
    counts = {d: len(next(csv.reader([first_line], delimiter=d))) for d in _DELIMITERS}
    if decimal == ",":
        counts[","] = 0
    semicolon_cells = next(csv.reader([first_line], delimiter=";"))
    if counts[";"] > 1 and any(_DECIMAL_COMMA.fullmatch(c.strip()) for c in semicolon_cells):
        return ";"
    best = max(counts.values())
    if best <= 1:
        return ";" if decimal == "," else ","
    return next(d for d in _DELIMITERS if counts[d] == best)


# --- NPZ ---------------------------------------------------------------------------------
