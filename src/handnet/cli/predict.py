"""``handnet predict``: a saved model's predictions (and probabilities) for a data file."""

from __future__ import annotations

import argparse
from typing import IO

import numpy as np

from .arguments import _FORMATTER, UsageError, _add_data_arguments, _Subparsers
from .checks import _check_output_path
from .model_files import _is_classifier, _load_estimator
from .reading import _columns_checked, _read_for_model
from .text import _note


def _add_predict(subparsers: _Subparsers[argparse.ArgumentParser]) -> None:
    predict = subparsers.add_parser(
        "predict",
        allow_abbrev=False,
        help="predict the class of every row of a data file with a saved model",
        formatter_class=_FORMATTER,
        description=(
            "Write one prediction per row of DATA as CSV (a 'prediction' column, and with\n"
            "--proba one 'proba_<class>' column per class) to --output or to stdout.\n"
            "With --id-column (or when the model was trained with one and DATA has it)\n"
            "each row's identifier comes first. A model trained on a CSV reads it as it\n"
            "read its training file: same columns, header rule, decimal mark, and the\n"
            "imputation and one-hot encoding learned in training.\n"
            "A CSV is read by the column names the model was trained on: other columns\n"
            "(such as the labels) are ignored."
        ),
        epilog="example:\n  handnet predict model.npz new.csv --proba --output predictions.csv",
    )
    predict.add_argument("model", metavar="MODEL", help="a model file (handnet train --save)")
    _add_data_arguments(predict, "not needed for prediction (accepted and ignored)")
    predict.add_argument("--proba", action="store_true",
                         help="also write each class's probability")
    predict.add_argument("--output", metavar="FILE", help="write the CSV here (default stdout)")


def _run_predict(args: argparse.Namespace, out: IO[str]) -> int:
    from ..data.files import write_predictions

    _check_output_path(args.output)
    model = _load_estimator(args.model, "predict")
    args.labels = None  # predictions need no labels, even when given
    data = _read_for_model(model, args, need_labels=False)
    probabilities = None
    classes = None
    with _columns_checked():
        predictions = np.asarray(model.predict(data.X))
        if args.proba:
            if not _is_classifier(model):
                raise UsageError(
                    f"--proba needs a classifier; {args.model} holds a {type(model).__name__}"
                )
            probabilities = model.predict_proba(data.X)
            classes = list(model.classes_.tolist())
    ids = None if data.ids is None else data.ids.tolist()
    if args.id_column is not None and ids is None:
        raise UsageError(f"--id-column names a CSV column, but {data.source} is not a CSV file")
    id_name = data.id_name or "id"
    if args.output:
        with open(args.output, "w", newline="", encoding="utf-8") as stream:
            write_predictions(stream, predictions, probabilities, classes, ids, id_name)
        _note(f"{len(predictions)} predictions written to {args.output}")
    else:
        write_predictions(out, predictions, probabilities, classes, ids, id_name)
    return 0
