"""Reading DATA for a command: the gzip guard, and a file read the way a model was trained."""

from __future__ import annotations

import argparse
import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

from .arguments import UsageError
from .columns import _max_expansion, _read_with_spec, _refuse_csv_options


def _read_for_model(model: Any, args: argparse.Namespace, need_labels: bool) -> Any:
    """Read DATA the way ``model`` was trained: its CSV columns by name when it knows them."""
    from ..data.files import csv_header, detect_format, load_dataset, read_csv

    names = getattr(model, "feature_names_in_", None)
    kind = detect_format(args.data)
    _refuse_csv_options(args, kind)
    target = args.target
    spec = getattr(model, "preprocessing_", None)
    if kind == "csv" and spec is not None:
        return _read_with_spec(model, spec, args, need_labels)
    options = {"header": args.header, "id_column": args.id_column,
               "decimal": args.decimal or "."}
    if kind == "csv" and names is not None:
        names = [str(name) for name in names]
        if target is None and need_labels:
            # The label column is the one column that is not a feature.
            extra = [c for c in csv_header(args.data, args.delimiter)
                     if c not in names and c != args.id_column]
            if len(extra) != 1:
                raise UsageError(
                    f"{args.data}: name the label column with --target "
                    f"(columns that are not features: {extra or 'none'})"
                )
            target = extra[0]
        return read_csv(args.data, target=target, delimiter=args.delimiter, features=names,
                        max_expansion=_max_expansion(args), **options)
    if kind == "csv":
        options["drop"] = args.drop
    data = load_dataset(args.data, target=target, labels=args.labels, delimiter=args.delimiter,
                        need_labels=need_labels, max_expansion=_max_expansion(args),
                        **(options if kind == "csv" else {}))
    n_expected = int(model.n_features_in_)
    trained_shape = getattr(model, "input_shape_", None)
    if (
        data.sample_shape is not None
        and trained_shape is not None
        and len(trained_shape) == 3
        and tuple(data.sample_shape) != tuple(trained_shape)
    ):
        raise ValueError(
            f"{data.source} holds images of shape {tuple(data.sample_shape)} (channels, "
            f"height, width), but the model was trained on images of shape "
            f"{tuple(trained_shape)}"
        )
    if data.n_features != n_expected:
        hint = ""
        if kind == "csv" and target is None and data.n_features == n_expected + 1:
            hint = "; name the label column to leave out with --target"
        raise ValueError(
            f"{data.source} has {data.n_features} feature columns, but the model was trained "
            f"on {n_expected}{hint}"
        )
    return data


@contextlib.contextmanager
def _columns_checked() -> Iterator[None]:
    """Silence the model's "X does not have valid feature names" warning.

    The CLI has already picked the CSV's columns by the model's feature names, so
    the arrays it passes are in the right order; the warning is for Python users
    who pass a bare array to a model fitted on named columns.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        yield
