"""Reading a CSV file into a :class:`~handnet.data.files.Dataset`.

The steps of :func:`read_csv`, each a function of its own:

* :func:`_layout`: the first line, the delimiter, whether that line names the
  columns (a first row of numbers only is taken for data, and refused unless
  ``header=False`` says so), and which columns are the target, the identifier
  and the features (by name or by position, counted from 0);
* :func:`_records`: the rows, a block at a time, each checked for its number of
  fields and for quotes that run over lines;
* :class:`_Collector`: each block's feature cells as float64 (decimal commas
  with ``decimal=","``), the labels and identifiers as text; with ``text=True``
  a missing cell (empty, ``NA``, ``N/A``, ``nan``, ``null``, ``?``) becomes
  ``NaN`` and a column of mostly text is kept as text (for
  :mod:`handnet.data.preprocessing`), where the default refuses both.

Errors name the file and, where it helps, the line and the column.
"""

from __future__ import annotations

import csv
import decimal
import difflib
import itertools
import math
import operator
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .dataset import (
    _CHUNK_ROWS,
    _DECIMAL_COMMA,
    DEFAULT_MAX_EXPANSION,
    DataFileError,
    Dataset,
    PathType,
    _open_text,
    _read_header_line,
    _sniff_delimiter,
)

__all__ = ["MISSING_MARKERS", "read_csv"]

MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "?"})
"""Cells read as missing with ``text=True`` (compared in lower case, spaces stripped)."""


@dataclass
class _Options:
    """What :func:`read_csv` was asked for."""

    target: str | None
    delimiter: str | None
    features: Sequence[str] | None
    drop: Sequence[str]
    id_column: str | None
    header: bool | None
    names: Sequence[str] | None
    decimal: str
    text: bool


@dataclass
class _Layout:
    """Where things are in the file: its columns, and which of them play which part."""

    names: list[str]
    header: bool
    sep: str
    target_index: int | None
    id_index: int | None
    columns: list[int]

    @property
    def feature_names(self) -> list[str]:
        return [self.names[j] for j in self.columns]


class _TextFound(Exception):
    """A column turned out to hold text after an earlier block was read as numbers."""

    def __init__(self, columns: set[int]) -> None:
        super().__init__(columns)
        self.columns = columns


# --- the first line and the columns -----------------------------------------------------


def _to_float(decimal_mark: str) -> Any:
    """``float``, or ``float`` after a decimal comma is made a point."""
    if decimal_mark == ",":
        return lambda cell: float(cell.replace(",", "."))
    return float


def _is_number(text: str, decimal_mark: str) -> bool:
    try:
        _to_float(decimal_mark)(text)
    except ValueError:
        return bool(_DECIMAL_COMMA.fullmatch(text))
    return True


def _looks_like_data(cells: list[str], decimal_mark: str) -> bool:
    """Whether a first row is data rather than names: all its cells numbers, some empty
    and some numbers (names are never empty), or a number with a fraction among them
    (``3.5`` or ``14,23``: a column may be called ``2024``, hardly ``3.5``)."""
    numbers = [bool(cell) and _is_number(cell, decimal_mark) for cell in cells]
    fractions = any(number and not cell.lstrip("+-").isdigit()
                    for number, cell in zip(numbers, cells, strict=True))
    return all(numbers) or (any(numbers) and (not all(cells) or fractions))


def _headerless_error(cells: list[str], where: str) -> DataFileError:
    shown = ", ".join(cells[:6]) + (", ..." if len(cells) > 6 else "")
    return DataFileError(
        f"{where}: the first row ({shown}) looks like data (numbers), so the file seems to have no "
        "header row naming its columns; pass --no-header (read_csv(header=False)) and give "
        f"columns by position, counted from 0 (--target {len(cells) - 1} is the last of its "
        f"{len(cells)} columns)"
    )


def _check_header(header: list[str], where: str) -> None:
    duplicates = sorted({column for column in header if header.count(column) > 1})
    if duplicates:
        raise DataFileError(f"{where}: duplicated column name(s) in the header: {duplicates}")
    if any(not column for column in header):
        raise DataFileError(f"{where}: the header has an empty column name")


def _resolve(names: list[str], column: str, role: str, where: str) -> int:
    """The index of ``column``: a name of ``names``, else a position counted from 0."""
    if column in names:
        return names.index(column)
    text = column.strip()
    if text in names:
        return names.index(text)
    if text.isdigit():
        if int(text) < len(names):
            return int(text)
        raise DataFileError(
            f"{where}: no {role} column {column!r}: the file has {len(names)} columns, "
            f"at positions 0 to {len(names) - 1}"
        )
    shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
    same = [name for name in names if name.lower() == text.lower()]
    close = same or difflib.get_close_matches(text, names, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise DataFileError(f"{where}: no {role} column {column!r}; the columns are: {shown}{hint}")


def _column_names(first: str, options: _Options, where: str) -> tuple[list[str], bool, str]:
    """The columns' names, whether the first line named them, and the delimiter."""
    if not first.strip():
        raise DataFileError(f"{where}: no header row (the first line is empty)")
    sep = options.delimiter or _sniff_delimiter(first, options.decimal)
    cells = [cell.strip() for cell in next(csv.reader([first], delimiter=sep))]
    header = options.header
    if header is None:
        if _looks_like_data(cells, options.decimal):
            raise _headerless_error(cells, where)
        header = True
    if header:
        _check_header(cells, where)
        return cells, True, sep
    names = [str(j) for j in range(len(cells))] if options.names is None else list(options.names)
    if len(names) != len(cells):
        raise DataFileError(
            f"{where}: the first row has {len(cells)} fields, but {len(names)} columns are "
            f"expected ({', '.join(names[:8])}{', ...' if len(names) > 8 else ''})"
        )
    return names, False, sep


def _layout(first: str, options: _Options, where: str) -> _Layout:
    """The columns of the file, and the target, identifier and feature columns among them."""
    names, header, sep = _column_names(first, options, where)
    target = None if options.target is None else _resolve(names, options.target, "target", where)
    ident = (None if options.id_column is None
             else _resolve(names, options.id_column, "id", where))
    if options.features is not None:
        columns = [_resolve(names, column, "feature", where) for column in options.features]
        taken = [names[j] for j in columns if j in (target, ident)]
        if taken:
            raise DataFileError(f"{where}: {taken[0]!r} cannot be both a feature and the "
                                "target (or id) column")
        if len(set(columns)) != len(columns):
            raise DataFileError(f"{where}: a feature column is named twice")
    else:
        columns = [j for j in range(len(names)) if j not in (target, ident)]
    dropped = {_resolve(names, column, "column to drop", where) for column in options.drop}
    columns = [j for j in columns if j not in dropped]
    if not columns:
        raise DataFileError(f"{where}: no feature columns left (only the target, id or "
                            "dropped columns)")
    return _Layout(names, header, sep, target, ident, columns)


# --- the rows ------------------------------------------------------------------------------


def _records(
    reader: Any, n_fields: int, sep: str, first_line: int, where: str
) -> Iterator[tuple[list[list[str]], list[int]]]:
    """The non-blank rows with their line numbers, ``_CHUNK_ROWS`` at a time."""
    rows: list[list[str]] = []
    lines: list[int] = []
    previous = 0  # reader.line_num after the last record: physical lines read
    try:
        for row in reader:
            end = reader.line_num
            line = previous + first_line
            if end != previous + 1:
                # One record over several lines: a quoted field holds line breaks,
                # which in a file of numbers means a stray or unclosed quote.
                raise DataFileError(
                    f"{where}, line {line}: a quoted field runs from line {line} to "
                    f"line {end + first_line - 1}; is a quote (\") on line {line} stray or "
                    "unclosed? Fields must not span lines: fix or remove the quote"
                )
            previous = end
            if not any(cell.strip() for cell in row):
                continue  # blank lines are skipped (a trailing one is common)
            if len(row) != n_fields:
                what = "the header has" if first_line == 2 else "the first row has"
                raise DataFileError(
                    f"{where}, line {line}: {len(row)} fields, but {what} {n_fields} "
                    f"(delimiter {sep!r})"
                )
            rows.append(row)
            lines.append(line)
            if len(rows) >= _CHUNK_ROWS:
                yield rows, lines
                rows, lines = [], []
    except csv.Error as error:
        line = previous + first_line
        hint = ""
        if "end of data" in str(error) or "field limit" in str(error):
            hint = f"; a quote (\") on line {line} is never closed: fix or remove it"
        raise DataFileError(f"{where}, line {line}: malformed CSV ({error}){hint}") from None
    if rows:
        yield rows, lines


# --- cells ---------------------------------------------------------------------------------


def _not_a_number(text: str, name: str, line: int, where: str, decimal_mark: str) -> str:
    message = f"{where}, line {line}, column {name!r}: {text!r} is not a number"
    if decimal_mark == "." and _DECIMAL_COMMA.fullmatch(text):
        return (message + "; it is written with a decimal comma: pass --decimal , "
                "(read_csv(decimal=','))")
    return (message + "; features must be numeric (encode categories as numbers or drop "
            "the column)")


def _bad_cell(
    rows: Sequence[Sequence[str]], names: Sequence[str], lines: Sequence[int], where: str,
    decimal_mark: str = ".",
) -> DataFileError:
    """The error for the first cell of ``rows`` that is not a finite number (the slow path)."""
    convert = _to_float(decimal_mark)
    for row, line in zip(rows, lines, strict=True):
        for name, cell in zip(names, row, strict=True):
            text = cell.strip()
            if not text:
                return DataFileError(
                    f"{where}, line {line}, column {name!r}: empty cell (missing value); "
                    "fill in or drop rows with missing values (or: handnet train --impute)"
                )
            try:
                number = convert(text)
            except ValueError:
                return DataFileError(_not_a_number(text, name, line, where, decimal_mark))
            if not math.isfinite(number):
                return DataFileError(
                    f"{where}, line {line}, column {name!r}: {text!r} is not a finite "
                    "number; remove or impute it"
                )
    return DataFileError(f"{where}: could not read the features as numbers")  # pragma: no cover


def _parse_chunk(
    rows: list[list[str]], layout: _Layout, lines: Sequence[int], where: str, decimal_mark: str
) -> NDArray[np.float64]:
    """The feature cells of ``rows`` as a float64 array, or the DataFileError naming a bad cell."""
    columns = layout.columns
    if len(columns) == 1:
        only = columns[0]
        cells = [row[only] for row in rows]
    else:
        pick = operator.itemgetter(*columns)
        cells = list(itertools.chain.from_iterable(map(pick, rows)))
    try:
        # float() of each cell, straight into a float64 buffer: no intermediate array of
        # strings (NumPy's would be as wide as the widest cell, for every cell).
        values = np.fromiter(map(_to_float(decimal_mark), cells), dtype=np.float64,
                             count=len(cells))
    except ValueError:
        values = None
    if values is None or not np.isfinite(values).all():
        picked = [[row[j] for j in columns] for row in rows]
        raise _bad_cell(picked, layout.feature_names, lines, where, decimal_mark)
    return values.reshape(len(rows), len(columns))


def _lenient_column(
    cells: list[str], decimal_mark: str
) -> tuple[NDArray[np.float64], list[str | None], int]:
    """A column's cells as numbers (``NaN``: missing or text), as texts, and its text count."""
    convert = _to_float(decimal_mark)
    numbers = np.full(len(cells), np.nan)
    texts: list[str | None] = []
    n_text = 0
    for i, cell in enumerate(cells):
        text = cell.strip()
        if text.lower() in MISSING_MARKERS:
            texts.append(None)
            continue
        texts.append(text)
        try:
            numbers[i] = convert(text)
        except ValueError:
            n_text += 1
    return numbers, texts, n_text


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



class _Collector:
    """The blocks of a file, parsed: features, labels as codes, identifiers, text columns."""

    def __init__(self, layout: _Layout, options: _Options, where: str, text: set[int]) -> None:
        self.layout, self.options, self.where = layout, options, where
        self.text = text  # feature columns (file indices) known to hold text
        self.first_block = True
        self.chunks: list[NDArray[np.float64]] = []
        self.code_chunks: list[NDArray[np.intp]] = []
        self.raw_labels: dict[str, int] = {}
        self.first_lines: list[int] = []
        self.ids: list[str] = []
        self.texts: dict[int, list[str | None]] = {j: [] for j in text}
        self.missing_lines: dict[str, int] = {}

    def add(self, rows: list[list[str]], lines: list[int]) -> None:
        layout = self.layout
        if self.options.text:
            self.chunks.append(self._lenient(rows, lines))
        else:
            self.chunks.append(_parse_chunk(rows, layout, lines, self.where,
                                            self.options.decimal))
        self.first_block = False
        if layout.target_index is not None:
            self.code_chunks.append(self._label_codes(rows, lines, layout.target_index))
        if layout.id_index is not None:
            self.ids.extend(row[layout.id_index].strip() for row in rows)

    def _label_codes(self, rows: list[list[str]], lines: list[int], index: int) -> NDArray[np.intp]:
        codes = np.empty(len(rows), dtype=np.intp)
        comma = self.options.decimal == ","
        for i, row in enumerate(rows):
            cell = row[index]
            if comma and _DECIMAL_COMMA.fullmatch(cell.strip()):
                cell = cell.replace(",", ".")
            code = self.raw_labels.get(cell)
            if code is None:
                code = self.raw_labels[cell] = len(self.raw_labels)
                self.first_lines.append(lines[i])
            codes[i] = code
        return codes

    def _lenient(self, rows: list[list[str]], lines: list[int]) -> NDArray[np.float64]:
        """Numbers with ``NaN`` for missing cells; columns of mostly text kept as text."""
        layout, decimal_mark = self.layout, self.options.decimal
        block = np.empty((len(rows), len(layout.columns)))
        for k, j in enumerate(layout.columns):
            name = layout.names[j]
            numbers, texts, n_text = _lenient_column([row[j] for row in rows], decimal_mark)
            n_present = sum(text is not None for text in texts)
            if j not in self.text and n_text:
                if 2 * n_text <= n_present:  # mostly numbers: a typo, not a text column
                    i = next(i for i, t in enumerate(texts)
                             if t is not None and np.isnan(numbers[i]))
                    raise DataFileError(_not_a_number(texts[i] or "", name, lines[i],
                                                      self.where, decimal_mark))
                if not self.first_block:
                    raise _TextFound(self.text | {j})
                self.text.add(j)
                self.texts[j] = []
            if j in self.text:
                _refuse_decimal_commas(texts, name, lines, self.where, decimal_mark)
                self.texts[j].extend(texts)
                numbers = np.full(len(rows), np.nan)
            elif np.isinf(numbers).any():
                i = int(np.flatnonzero(np.isinf(numbers))[0])
                raise DataFileError(f"{self.where}, line {lines[i]}, column {name!r}: "
                                    f"{texts[i]!r} is not a finite number; remove or impute it")
            else:
                gone = [i for i, text in enumerate(texts) if text is None]
                if gone and name not in self.missing_lines:
                    self.missing_lines[name] = lines[gone[0]]
            block[:, k] = numbers
        return block

    def dataset(self) -> Dataset:
        layout, where = self.layout, self.where
        if not self.chunks:
            raise DataFileError(f"{where}: the file has a header but no data rows"
                                if layout.header else f"{where}: the file has no data rows")
        X = self.chunks[0] if len(self.chunks) == 1 else np.concatenate(self.chunks)
        self.chunks.clear()
        y = None
        target = None
        if layout.target_index is not None:
            target = layout.names[layout.target_index]
            codes = (self.code_chunks[0] if len(self.code_chunks) == 1
                     else np.concatenate(self.code_chunks))
            y = _label_values(self.raw_labels, codes, self.first_lines, target, where)
        text_columns = {layout.names[j]: np.array(self.texts[j], dtype=object)
                        for j in layout.columns if j in self.text}
        return Dataset(
            X=X, y=y, feature_names=layout.feature_names, target_name=target, source=where,
            ids=None if layout.id_index is None else np.array(self.ids, dtype=object),
            id_name=None if layout.id_index is None else layout.names[layout.id_index],
            text_columns=text_columns, file_columns=list(layout.names), header=layout.header,
            missing_lines=dict(self.missing_lines),
        )


def _refuse_decimal_commas(
    texts: list[str | None], name: str, lines: list[int], where: str, decimal_mark: str
) -> None:
    """A "text" column of numbers written with decimal commas is a misread, not text."""
    if decimal_mark != ".":
        return
    present = [(t, line) for t, line in zip(texts, lines, strict=True) if t is not None]
    commas = [(t, line) for t, line in present if _DECIMAL_COMMA.fullmatch(t)]
    if commas and all(_DECIMAL_COMMA.fullmatch(t) or _is_number(t, ".") for t, _ in present):
        text, line = commas[0]
        raise DataFileError(_not_a_number(text, name, line, where, decimal_mark))


def read_csv(
    path: PathType,
    target: str | None = None,
    delimiter: str | None = None,
    features: Sequence[str] | None = None,
    max_expansion: float = DEFAULT_MAX_EXPANSION,
    *,
    header: bool | None = None,
    names: Sequence[str] | None = None,
    drop: Sequence[str] = (),
    id_column: str | None = None,
    decimal: str = ".",
    text: bool = False,
) -> Dataset:
    """Read a CSV file (with or without a header row).

    The rows are parsed a block at a time and each block's features are turned into
    float64 at once, so reading takes about twice the memory of the resulting
    array (plus the distinct labels), not many times the file.

    Parameters
    ----------
    path : str or os.PathLike
        The file (optionally gzip-compressed).
    target : str, optional
        The label column, by name or by position (counted from 0; a name wins).
        Without it the file has no labels.
    delimiter : str, optional
        One character; by default guessed from the first line among ``, ; tab |``.
    features : sequence of str, optional
        Read exactly these columns (names or positions), in this order, as the
        features; other columns are ignored. Default: every column but the
        target, the identifier and ``drop``.
    max_expansion : float, default 100
        A gzip-compressed file may expand to at most this many times its own
        size (and always to 64 MiB): beyond that it is refused as a possible
        decompression bomb before it fills the memory.
    header : bool or None, default None
        Whether the first row names the columns. ``None``: it does, and a first
        row of numbers only is refused as a sign of a file without a header
        (pass ``False`` to read it as data; the columns are then named by their
        positions ``"0"``, ``"1"``, ...; ``True`` reads numbers as names).
    names : sequence of str, optional
        With ``header=False``: the columns' names (one per field) instead of
        their positions.
    drop : sequence of str, default ()
        Columns (names or positions) that are not features.
    id_column : str, optional
        A column of row identifiers (name or position): not a feature, kept as
        text in :attr:`Dataset.ids`.
    decimal : {".", ","}, default "."
        The decimal mark of the numbers (``","``: ``14,23``; the delimiter is
        then never guessed to be ``,``).
    text : bool, default False
        Keep missing cells (``NaN`` in ``X``) and columns of text (in
        :attr:`Dataset.text_columns`) rather than refusing them, for
        :class:`handnet.data.preprocessing.Preprocessor`.

    Returns
    -------
    Dataset
        Labels are int64 when every label is a whole number within int64 (exact,
        also above 2**53), float64 for other numbers, text otherwise (an object
        array of str when a label is longer than 64 characters).

    Raises
    ------
    DataFileError
        Unknown or duplicated column names, a first row of numbers without
        ``header=False``, rows of the wrong length, cells that are empty or not
        numbers (without ``text``), a quote that is never closed (or a field
        that runs over several lines), no data rows, a gzip file expanding
        beyond ``max_expansion``.
    """
    if decimal not in (".", ","):
        raise ValueError(f"decimal must be '.' or ',', got {decimal!r}")
    if decimal == "," and delimiter == ",":
        raise DataFileError("the delimiter and the decimal mark cannot both be ','")
    options = _Options(target, delimiter, features, tuple(drop), id_column, header, names,
                       decimal, text)
    where = os.fspath(path)
    try:
        return _read(where, options, max_expansion, set())
    except _TextFound as found:
        # A text column first seen after the first block: read again, knowing it.
        return _read(where, options, max_expansion, found.columns)


def _read(where: str, options: _Options, max_expansion: float, text: set[int]) -> Dataset:
    try:
        with _open_text(where, max_expansion) as stream:
            first = _read_header_line(stream, where)
            layout = _layout(first, options, where)
            # A quote that is never closed makes the reader run on over the following
            # lines: the check on the lines each record spans refuses it, with its line.
            lines = stream if layout.header else itertools.chain([first], stream)
            reader = csv.reader(lines, delimiter=layout.sep)
            collector = _Collector(layout, options, where, set(text))
            for rows, numbers in _records(reader, len(layout.names), layout.sep,
                                          2 if layout.header else 1, where):
                collector.add(rows, numbers)
    except UnicodeDecodeError as error:
        raise DataFileError(
            f"{where}: not a UTF-8 text file ({error.reason} at byte {error.start}); "
            "expected a CSV file, an .npz archive or an IDX file"
        ) from None
    return collector.dataset()
