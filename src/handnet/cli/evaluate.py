"""``handnet evaluate``: accuracy, log loss, confusion matrix, per-class precision/recall/F1."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import IO, Any

import numpy as np

from .arguments import _FORMATTER, _add_data_arguments, _Subparsers
from .checks import _check_output_path, _require_matplotlib
from .model_files import _describe_model, _is_classifier, _load_estimator
from .reading import _columns_checked, _read_for_model
from .text import _short_list
from .train import regression_numbers


def _add_evaluate(subparsers: _Subparsers[argparse.ArgumentParser]) -> None:
    evaluate = subparsers.add_parser(
        "evaluate",
        allow_abbrev=False,
        help="accuracy, log loss, confusion matrix and per-class scores on labelled data "
        "(regression: R^2, MAE, RMSE)",
        formatter_class=_FORMATTER,
        description=(
            "Score a saved classifier on labelled data: accuracy, log loss (mean\n"
            "cross-entropy), the confusion matrix (rows: true class, columns: predicted)\n"
            "and each class's precision, recall, F1 and support. For a CSV, --target names\n"
            "the label column; it may be left out when it is the only column that is not\n"
            "one of the model's features. A regressor is scored by R^2, the mean absolute\n"
            "error (MAE) and the root mean squared error (RMSE)."
        ),
        epilog=(
            "example:\n  handnet evaluate model.npz test.csv --target label --plot confusion.png"
        ),
    )
    evaluate.add_argument("model", metavar="MODEL", help="a model file (handnet train --save)")
    _add_data_arguments(evaluate, "IDX: the file of labels that goes with the images")
    evaluate.add_argument("--plot", metavar="FILE.png",
                          help="write the confusion matrix (a regressor: predicted against true "
                          "values) to a PNG")


def _run_evaluate(args: argparse.Namespace, out: IO[str]) -> int:
    from ..metrics import classification_report

    _check_output_path(args.plot)
    if args.plot:
        _require_matplotlib()
    model = _load_estimator(args.model, "evaluate")
    data = _read_for_model(model, args, need_labels=True)
    assert data.y is not None
    with _columns_checked():
        predictions = np.asarray(model.predict(data.X))
        if not _is_classifier(model):
            # A regressor (e.g. an MLPRegressor saved from Python): the regression numbers.
            r2, mae, rmse = regression_numbers(predictions, data.y)
            out.write(f"handnet evaluate: {_describe_model(model)} on {data.source}\n"
                      f"examples: {len(data.y)}\nR^2: {r2:.4f}\n"
                      f"mean absolute error (MAE): {mae:.6g}\n"
                      f"root mean squared error (RMSE): {rmse:.6g}\n")
            if args.plot:
                _write_plot(args, out, lambda plot: plot.predicted_vs_true(data.y, predictions))
            return 0
        log_proba = model.predict_log_proba(data.X)
    known = set(model.classes_.tolist())
    given = set(np.unique(data.y).tolist())
    if not given & known:
        # Most likely the wrong label column (or file): every row would count as wrong.
        raise ValueError(
            f"{data.source}: its labels {_short_list(sorted(given, key=str))} have nothing in "
            f"common with the model's classes {_short_list(model.classes_.tolist())}"
        )
    report = classification_report(data.y, predictions, list(model.classes_.tolist()), log_proba)
    out.write(f"handnet evaluate: {_describe_model(model)} on {data.source}\n")
    out.write(report.to_text() + "\n")
    unseen = [label for label in report.labels if label not in known]
    if unseen:
        out.write(f"note: labels the model never saw in training (always wrong): {unseen}\n")
    if args.plot:
        _write_plot(
            args, out, lambda plot: plot.confusion_matrix(data.y, predictions, report.labels)
        )
    return 0


def _write_plot(args: argparse.Namespace, out: IO[str], draw: Callable[[Any], Any]) -> None:
    """Draw one panel with ``draw(handnet.plot)`` and save its figure to ``--plot``."""
    from .. import plot

    ax = draw(plot)
    out.write(f"plot: {plot.save_figure(ax.figure, args.plot)}\n")
