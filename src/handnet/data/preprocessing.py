"""Columns as people have them: missing numbers filled in, text columns one-hot encoded.

A :class:`Preprocessor` is fitted on the *training* rows of a table given as
columns (a mapping from column name to a 1-D array, in the table's order):

* a **numeric** column (a float array; ``NaN`` marks a missing cell) passes
  through as one feature. With ``impute`` its missing cells are filled with a
  statistic of the training rows: their ``"mean"``, ``"median"`` or
  ``"most_frequent"`` value (the smallest of equally frequent ones). Without
  ``impute`` a missing cell is an error.
* a **text** column (an array of ``str``; ``None`` or ``""`` marks a missing
  cell) becomes one 0/1 feature per category seen in the training rows, named
  ``column=category``, in sorted order. A category not seen in training, or a
  missing cell, is encoded as a row of zeros: the model then gets no evidence
  for any category, rather than an error on new data.

:meth:`Preprocessor.to_dict` gives the fitted state as plain JSON values (lists
of strings and floats, no arrays and no pickles), and :meth:`Preprocessor.from_dict`
checks every entry of such a dict before building one; this is how a model file
(:mod:`handnet.io`) keeps the preprocessing next to the weights.

The inputs are never modified; :meth:`Preprocessor.transform` returns a new
float64 array.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["IMPUTE_STRATEGIES", "Preprocessor", "is_text_column"]

IMPUTE_STRATEGIES = ("mean", "median", "most_frequent")
"""How :class:`Preprocessor` may fill a missing number, learned on the training rows."""

_SPEC_VERSION = 1
_MAX_COLUMNS = 100_000
_MAX_CATEGORIES = 10_000
_MAX_TEXT = 1_000


def is_text_column(values: NDArray[Any]) -> bool:
    """Whether a column holds text (strings or objects) rather than numbers."""
    return np.asarray(values).dtype.kind in "OUS"


def _missing_text(values: NDArray[Any]) -> NDArray[np.bool_]:
    return np.array([value is None or value == "" for value in values.tolist()], dtype=bool)


def _fill_value(values: NDArray[np.float64], strategy: str, name: str) -> float:
    """The statistic ``strategy`` of a numeric column's present (non-NaN) values."""
    present = values[~np.isnan(values)]
    if present.size == 0:
        raise ValueError(
            f"column {name!r} has no values in the training rows: nothing to impute from; "
            "drop the column"
        )
    if strategy == "mean":
        return float(np.mean(present))
    if strategy == "median":
        return float(np.median(present))
    distinct, counts = np.unique(present, return_counts=True)
    return float(distinct[int(np.argmax(counts))])  # ties: the smallest (unique sorts)


class Preprocessor:
    """Imputation of missing numbers and one-hot encoding of text columns.

    Parameters
    ----------
    impute : {"mean", "median", "most_frequent"} or None, default None
        How a missing number is filled, from the training rows' values of its
        column; ``None``: a missing number is an error.

    Attributes
    ----------
    columns_ : list of str
        The input columns, in order.
    kinds_ : list of {"number", "text"}
        Each input column's kind.
    fill_ : list of float or None
        Each numeric column's fill value (``None`` for text columns, and for
        every column without ``impute``).
    categories_ : list of list of str or None
        Each text column's categories, sorted (``None`` for numeric columns).
    feature_names_out_ : list of str
        The names of the output columns: a numeric column's own name,
        ``column=category`` for each category of a text column.

    Examples
    --------
    >>> import numpy as np
    >>> columns = {"size": np.array([1.0, np.nan, 3.0]),
    ...            "colour": np.array(["red", "blue", "red"], dtype=object)}
    >>> pre = Preprocessor(impute="mean").fit(columns)
    >>> pre.feature_names_out_
    ['size', 'colour=blue', 'colour=red']
    >>> pre.transform(columns).tolist()
    [[1.0, 0.0, 1.0], [2.0, 1.0, 0.0], [3.0, 0.0, 1.0]]
    """

    def __init__(self, impute: str | None = None) -> None:
        if impute is not None and impute not in IMPUTE_STRATEGIES:
            raise ValueError(
                f"impute must be one of {', '.join(IMPUTE_STRATEGIES)} or None, got {impute!r}"
            )
        self.impute = impute
        self.columns_: list[str] = []
        self.kinds_: list[str] = []
        self.fill_: list[float | None] = []
        self.categories_: list[list[str] | None] = []

    # --- fitting and transforming -----------------------------------------------------

    def fit(self, columns: Mapping[str, NDArray[Any]]) -> Preprocessor:
        """Learn each column's kind, fill value and categories from the training rows.

        Parameters
        ----------
        columns : mapping of str to 1-D array
            The training rows, column by column: float arrays (``NaN``: missing)
            or arrays of ``str`` (``None`` or ``""``: missing).

        Returns
        -------
        Preprocessor
            ``self``, fitted.
        """
        if not columns:
            raise ValueError("no columns to preprocess")
        self.columns_, self.kinds_, self.fill_, self.categories_ = [], [], [], []
        for name, raw in columns.items():
            values = np.asarray(raw)
            self.columns_.append(str(name))
            if is_text_column(values):
                present = [str(v) for v, gone in zip(values.tolist(), _missing_text(values),
                                                     strict=True) if not gone]
                self.kinds_.append("text")
                self.fill_.append(None)
                self.categories_.append(sorted(set(present)))
                continue
            numbers = values.astype(np.float64, copy=False)
            self.kinds_.append("number")
            self.categories_.append(None)
            self.fill_.append(None if self.impute is None
                              else _fill_value(numbers, self.impute, str(name)))
        return self

    @property
    def feature_names_out_(self) -> list[str]:
        names: list[str] = []
        for name, categories in zip(self.columns_, self.categories_, strict=True):
            if categories is None:
                names.append(name)
            else:
                names.extend(f"{name}={category}" for category in categories)
        return names

    @property
    def n_features_out_(self) -> int:
        return len(self.feature_names_out_)

    def transform(self, columns: Mapping[str, NDArray[Any]]) -> NDArray[np.float64]:
        """The columns as one float64 matrix: numbers (filled in), then one-hot text.

        Parameters
        ----------
        columns : mapping of str to 1-D array
            At least the columns the preprocessor was fitted on (others are
            ignored), each with the same number of rows.

        Returns
        -------
        ndarray of shape (n_rows, n_features_out_), float64

        Raises
        ------
        ValueError
            A column is missing, of the wrong kind, or (without ``impute``) holds a
            missing number.
        """
        if not self.columns_:
            raise ValueError("this Preprocessor is not fitted yet: call fit first")
        missing = [name for name in self.columns_ if name not in columns]
        if missing:
            raise ValueError(f"missing column(s) {missing}: the preprocessing needs them")
        n_rows = len(np.asarray(columns[self.columns_[0]]))
        blocks = [
            self._transform_column(np.asarray(columns[name]), i, n_rows)
            for i, name in enumerate(self.columns_)
        ]
        return np.hstack(blocks) if blocks else np.empty((n_rows, 0))

    def _transform_column(self, values: NDArray[Any], i: int, n_rows: int) -> NDArray[np.float64]:
        name, categories = self.columns_[i], self.categories_[i]
        if values.shape != (n_rows,):
            raise ValueError(f"column {name!r} has shape {values.shape}, expected ({n_rows},)")
        if categories is None:
            if is_text_column(values):
                raise ValueError(f"column {name!r} holds text, but it held numbers in training")
            numbers = values.astype(np.float64)  # a copy: the caller's array stays as it is
            gone = np.isnan(numbers)
            if gone.any():
                fill = self.fill_[i]
                if fill is None:
                    row = int(np.flatnonzero(gone)[0])
                    raise ValueError(
                        f"column {name!r} has {int(gone.sum())} missing value(s) (the first in "
                        f"data row {row + 1}); fill them in, or train with --impute "
                        "mean|median|most_frequent (Preprocessor(impute=...))"
                    )
                numbers[gone] = fill
            return numbers[:, None]
        # One-hot: unknown categories and missing cells give a row of zeros.
        index = {category: j for j, category in enumerate(categories)}
        encoded = np.zeros((n_rows, len(categories)))
        texts = values.tolist()
        for row, value in enumerate(texts):
            j = index.get("" if value is None else str(value))
            if j is not None:
                encoded[row, j] = 1.0
        return encoded

    def fit_transform(self, columns: Mapping[str, NDArray[Any]]) -> NDArray[np.float64]:
        """:meth:`fit`, then :meth:`transform` of the same columns."""
        return self.fit(columns).transform(columns)

    # --- plain data in and out ------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The fitted state as JSON values (no arrays, nothing pickled)."""
        return {
            "version": _SPEC_VERSION,
            "impute": self.impute,
            "columns": list(self.columns_),
            "kinds": list(self.kinds_),
            "fill": list(self.fill_),
            "categories": [None if c is None else list(c) for c in self.categories_],
        }

    @classmethod
    def from_dict(cls, spec: Any) -> Preprocessor:
        """A fitted preprocessor from :meth:`to_dict`'s dict, every entry checked.

        Raises
        ------
        ValueError
            The dict is not one :meth:`to_dict` writes: unknown or missing keys,
            wrong types, lists of different lengths, non-finite fill values,
            unsorted or repeated categories.
        """
        _check(isinstance(spec, dict), "the preprocessing must be a dict")
        keys = {"version", "impute", "columns", "kinds", "fill", "categories"}
        _check(set(spec) == keys, f"the preprocessing must have the keys {sorted(keys)}")
        _check(spec["version"] == _SPEC_VERSION and not isinstance(spec["version"], bool),
               f"unknown preprocessing version {spec['version']!r}")
        impute = spec["impute"]
        _check(impute is None or impute in IMPUTE_STRATEGIES, f"unknown impute {impute!r}")
        columns, kinds = spec["columns"], spec["kinds"]
        fills, categories = spec["fill"], spec["categories"]
        _check(_is_names(columns, _MAX_COLUMNS) and len(columns) >= 1
               and len(set(columns)) == len(columns),
               "columns must be a list of distinct short strings")
        for name, values in (("kinds", kinds), ("fill", fills), ("categories", categories)):
            _check(isinstance(values, list) and len(values) == len(columns),
                   f"{name} must have one entry per column")
        pre = cls(impute)
        for column, kind, fill, cats in zip(columns, kinds, fills, categories, strict=True):
            _check_column(column, kind, fill, cats, impute)
        pre.columns_ = list(columns)
        pre.kinds_ = list(kinds)
        pre.fill_ = [None if fill is None else float(fill) for fill in fills]
        pre.categories_ = [None if cats is None else list(cats) for cats in categories]
        return pre


def _check(condition: bool, problem: str) -> None:
    if not condition:
        raise ValueError(problem)


def _is_names(values: Any, limit: int) -> bool:
    return (isinstance(values, list) and len(values) <= limit
            and all(isinstance(v, str) and len(v) <= _MAX_TEXT for v in values))


def _check_column(column: str, kind: Any, fill: Any, categories: Any, impute: Any) -> None:
    """One column of a preprocessing dict: its kind, fill value and categories agree."""
    if kind == "number":
        _check(categories is None, f"numeric column {column!r} cannot have categories")
        if impute is None:
            _check(fill is None, f"column {column!r} has a fill value but impute is None")
        else:
            _check(isinstance(fill, (int, float)) and not isinstance(fill, bool)
                   and math.isfinite(fill), f"column {column!r} needs a finite fill value")
        return
    _check(kind == "text", f"column {column!r}: kind must be 'number' or 'text', got {kind!r}")
    _check(fill is None, f"text column {column!r} cannot have a fill value")
    _check(_is_names(categories, _MAX_CATEGORIES), f"text column {column!r} needs its categories")
    _check(categories == sorted(set(categories)),
           f"the categories of {column!r} must be sorted and distinct")


def columns_of(
    X: NDArray[np.float64], names: Sequence[str], text: Mapping[str, NDArray[Any]]
) -> dict[str, NDArray[Any]]:
    """A table's columns by name: ``text[name]`` for text columns, ``X[:, j]`` otherwise."""
    return {name: text[name] if name in text else X[:, j] for j, name in enumerate(names)}


def check_model_spec(spec: Any, n_features: int) -> dict[str, Any]:
    """Check what a model file keeps of how its training CSV was read and preprocessed.

    The dict (a model's ``preprocessing_``, written by ``handnet train``) holds
    ``preprocessor`` (:meth:`Preprocessor.to_dict`'s dict, or ``None``),
    ``header`` (whether the training file named its columns), ``file_columns``
    (the training file's columns), ``target`` and ``id_column`` (names among
    them, or ``None``) and ``decimal`` (``"."`` or ``","``).

    Parameters
    ----------
    spec : object
        The value read from the model file.
    n_features : int
        The model's input width: the preprocessor's output must have it.

    Returns
    -------
    dict
        ``spec`` with the preprocessor checked (still as a dict).

    Raises
    ------
    ValueError
        Naming the first entry that is not as ``handnet train`` writes it.
    """
    keys = {"preprocessor", "header", "file_columns", "target", "id_column", "decimal"}
    _check(isinstance(spec, dict) and set(spec) == keys,
           f"preprocessing_ must be a dict with the keys {sorted(keys)}")
    _check(isinstance(spec["header"], bool), "preprocessing_.header must be true or false")
    _check(spec["decimal"] in (".", ","), "preprocessing_.decimal must be '.' or ','")
    columns = spec["file_columns"]
    _check(_is_names(columns, _MAX_COLUMNS) and len(set(columns)) == len(columns),
           "preprocessing_.file_columns must be a list of distinct short strings")
    for role in ("target", "id_column"):
        _check(spec[role] is None or spec[role] in columns,
               f"preprocessing_.{role} must be one of the file's columns or null")
    if spec["preprocessor"] is not None:
        pre = Preprocessor.from_dict(spec["preprocessor"])
        _check(pre.n_features_out_ == n_features,
               f"the preprocessing gives {pre.n_features_out_} features, the model takes "
               f"{n_features}")
        _check(all(column in columns for column in pre.columns_),
               "the preprocessing reads columns the file did not have")
    return dict(spec)
