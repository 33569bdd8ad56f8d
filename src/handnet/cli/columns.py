"""CSV files as people have them: the task a target calls for, missing cells, text columns.

``train`` reads a CSV with :func:`_csv_options` (``text=True``: missing cells and
text columns are kept for :class:`~handnet.data.preprocessing.Preprocessor`),
picks the task from the target (:func:`_choose_task`), fits the preprocessing on
the training rows (:func:`_fit_preprocessing`) and keeps, in the model's
``preprocessing_``, how the file was read (:func:`_model_spec`), so that
``predict`` and ``evaluate`` read new rows the same way (:func:`_read_with_spec`).

The task rule
-------------
A target of text is **classification**, a target of numbers that are not all
whole is **regression**. A target of whole numbers is classification when it
has few distinct values (at most ``MANY_VALUES`` = 20, or at most 5% of the
rows); with more it looks like a count or a measurement, is treated as
regression, and a note says so. ``--task`` overrides the rule.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..data.preprocessing import Preprocessor, columns_of
from .arguments import UsageError
from .text import _note, _short_list

MANY_VALUES = 20
"""Distinct whole-number targets beyond which (and beyond ``MANY_SHARE`` of the rows)
a target is taken for a continuous value."""

MANY_SHARE = 0.05

SCALE_RATIO = 100.0
"""Feature sizes (root mean squares) that differ by more than this factor earn a
``--standardize`` hint."""


def _csv_options(args: argparse.Namespace, header: bool | None = None) -> dict[str, Any]:
    """``read_csv``'s options from the command line (``header`` when none is given)."""
    given = getattr(args, "header", None)
    return {
        "header": header if given is None else given,
        "drop": tuple(getattr(args, "drop", ()) or ()),
        "id_column": getattr(args, "id_column", None),
        "decimal": getattr(args, "decimal", None) or ".",
        "text": True,
    }


def _refuse_csv_options(args: argparse.Namespace, kind: str) -> None:
    """The CSV options make no sense for an NPZ, NPY or IDX file: say so rather than ignore."""
    if kind == "csv":
        return
    given = [flag for flag, value in (
        ("--no-header/--header", getattr(args, "header", None) is not None),
        ("--features", getattr(args, "features", None)),
        ("--drop", getattr(args, "drop", None)),
        ("--id-column", getattr(args, "id_column", None)),
        ("--decimal", getattr(args, "decimal", None)),
        ("--impute", getattr(args, "impute", None)),
    ) if value]
    if given:
        raise UsageError(f"{given[0]} is for CSV files, but {args.data} is {kind.upper()}")


def _choose_task(task: str, y: NDArray[Any], name: str, quiet: bool) -> str:
    """``"classification"`` or ``"regression"`` for the target ``y`` (see the module's rule)."""
    numeric = y.dtype.kind in "iuf"
    if task == "regression":
        if not numeric:
            raise UsageError(
                f"--task regression needs a numeric target, but {name} holds text "
                f"(e.g. {_short_list(np.unique(y)[:3].tolist())})"
            )
        return task
    if task == "classification" or not numeric:
        return "classification"
    if y.dtype.kind == "f":
        return "regression"
    n_distinct = len(np.unique(y))
    if n_distinct > MANY_VALUES and n_distinct > MANY_SHARE * len(y):
        if not quiet:
            _note(
                f"note: the target {name} holds {n_distinct} distinct whole numbers in "
                f"{len(y)} rows: treated as a continuous value (regression); pass --task "
                "classification to treat them as classes"
            )
        return "regression"
    return "classification"


def _check_missing(data: Any, impute: str | None, training: bool = True) -> None:
    """Without ``--impute``, a missing number is an error naming its line and column."""
    if impute is not None or not data.missing_lines:
        return
    name, line = min(data.missing_lines.items(), key=lambda item: item[1])
    fix = ("fill it in, drop the column (--drop), or pass --impute mean|median|most_frequent"
           if training else "fill it in (the model was trained without --impute)")
    raise ValueError(f"{data.source}, line {line}, column {name!r}: empty cell (missing "
                     f"value); {fix}")


def _fit_preprocessing(
    args: argparse.Namespace, data: Any, rows: NDArray[np.intp]
) -> Preprocessor | None:
    """The preprocessing of a CSV's features, learned on its training ``rows``; or None."""
    impute = getattr(args, "impute", None)
    if data.feature_names is None or not (data.text_columns or data.missing_lines or impute):
        return None
    _check_missing(data, impute)
    for name, values in data.text_columns.items():
        present = [value for value in values.tolist() if value is not None]
        if len(present) > 10 and len(set(present)) == len(present):
            raise UsageError(
                f"{data.source}: the text column {name!r} has a different value in every "
                f"row, like an identifier: pass --id-column {name} (or --drop {name})"
            )
    columns = columns_of(data.X, data.feature_names, data.text_columns)
    training_rows = {name: values[rows] for name, values in columns.items()}
    preprocessor = Preprocessor(impute).fit(training_rows)
    if not args.quiet:
        for name, categories in zip(preprocessor.columns_, preprocessor.categories_, strict=True):
            if categories is not None:
                _note(f"note: the text column {name!r} is one-hot encoded into "
                      f"{len(categories)} columns ({_short_list(categories)})")
    return preprocessor


def _apply(data: Any, preprocessor: Preprocessor | None) -> Any:
    """``data`` with its features preprocessed (a new Dataset; ``data`` is left as it is)."""
    if preprocessor is None:
        if data.text_columns:
            name = next(iter(data.text_columns))
            raise ValueError(f"{data.source}: the column {name!r} holds text, but the model "
                             "was trained on numbers in it")
        _check_missing(data, None, training=False)
        return data
    try:
        X = preprocessor.transform(columns_of(data.X, data.feature_names, data.text_columns))
    except ValueError as error:
        raise ValueError(f"{data.source}: {error}") from None
    return dataclasses.replace(data, X=X, feature_names=preprocessor.feature_names_out_,
                               text_columns={}, missing_lines={})


def _model_spec(
    args: argparse.Namespace, data: Any, preprocessor: Preprocessor | None
) -> dict[str, Any] | None:
    """What ``predict`` needs to read new rows as the training file was read; None if nothing."""
    if data.file_columns is None:
        return None
    id_name = data.id_name
    decimal = getattr(args, "decimal", None) or "."
    if preprocessor is None and data.header and decimal == "." and id_name is None:
        return None  # the feature names say it all
    return {
        "preprocessor": None if preprocessor is None else preprocessor.to_dict(),
        "header": bool(data.header),
        "file_columns": list(data.file_columns),
        "target": data.target_name,
        "id_column": id_name,
        "decimal": decimal,
    }


def _scale_hint(X: NDArray[np.float64], names: list[str] | None) -> str | None:
    """A hint to pass ``--standardize`` when the features' sizes differ a lot.

    A feature's size is its root mean square (spread and offset together: a column
    of values near 100 that vary by 1 is as far from unit scale as one that varies
    by 100); columns of zeros are left out.
    """
    if X.shape[0] < 2 or X.shape[1] < 2:
        return None
    spread = np.sqrt(np.mean(np.square(X), axis=0))
    varying = np.flatnonzero(spread > 0)
    if len(varying) < 2:
        return None
    widest = int(varying[np.argmax(spread[varying])])
    narrowest = int(varying[np.argmin(spread[varying])])
    ratio = float(spread[widest] / spread[narrowest])
    if ratio <= SCALE_RATIO:
        return None

    def label(j: int) -> str:
        return repr(names[j]) if names is not None else f"column {j}"

    return (f"hint: the features' scales differ by a factor of {ratio:.3g} (root mean square "
            f"of {label(widest)} vs {label(narrowest)}); --standardize usually trains faster "
            "and better")


# --- reading new rows as the training file was read ---------------------------------------


def _headerless_names(spec: dict[str, Any], n_fields: int, source: str) -> list[str]:
    """A file without header: its columns are the training file's, less the target if absent."""
    columns = list(spec["file_columns"])
    if n_fields == len(columns):
        return columns
    if spec["target"] is not None and n_fields == len(columns) - 1:
        return [name for name in columns if name != spec["target"]]
    raise ValueError(
        f"{source} has {n_fields} columns, but the model's training file had {len(columns)} "
        + ("(or, without the target, one fewer)" if spec["target"] is not None else "")
    )


def _read_with_spec(
    model: Any, spec: dict[str, Any], args: argparse.Namespace, need_labels: bool
) -> Any:
    """DATA read as the model's training CSV was: same header rule, columns, decimal mark."""
    from ..data.files import csv_header, read_csv

    decimal = args.decimal or spec["decimal"]
    header = spec["header"] if args.header is None else args.header
    first = csv_header(args.data, args.delimiter, decimal)
    names = None if header else _headerless_names(spec, len(first), args.data)
    known = first if header else names
    assert known is not None
    target = args.target
    if target is None and need_labels:
        target = spec["target"]
        if target is None or target not in known:
            raise UsageError(f"{args.data}: name the label column with --target")
    ident = args.id_column
    if ident is None and spec["id_column"] in known:
        ident = spec["id_column"]
    preprocessor = (None if spec["preprocessor"] is None
                    else Preprocessor.from_dict(spec["preprocessor"]))
    features = (preprocessor.columns_ if preprocessor is not None
                else [str(name) for name in model.feature_names_in_])
    data = read_csv(args.data, target=target if need_labels else None,
                    delimiter=args.delimiter, features=features, header=header, names=names,
                    id_column=ident, decimal=decimal, text=True,
                    max_expansion=_max_expansion(args))
    return _apply(data, preprocessor)


def _max_expansion(args: argparse.Namespace) -> float:
    """``--max-expansion``, or the readers' default when the command has no such option."""
    from ..data.files import DEFAULT_MAX_EXPANSION

    value = getattr(args, "max_expansion", None)
    return DEFAULT_MAX_EXPANSION if value is None else float(value)
