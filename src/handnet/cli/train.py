"""``handnet train``: train a classifier on a data file, report on it and save it.

A run reads the data, chooses the model, holds out validation rows, fits,
reports and saves, in that order (:func:`_run_train`). Data on disk larger
than one storage block goes to :mod:`handnet.cli.streamed` instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable
from typing import IO, Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ..data.preprocessing import IMPUTE_STRATEGIES
from ..nn.activations import hidden_activations
from .arguments import (
    _FORMATTER,
    UsageError,
    _add_data_arguments,
    _batch_size,
    _fraction,
    _hidden_option,
    _hidden_sizes,
    _nonnegative_float,
    _optimizer_choices,
    _positive_float,
    _positive_int,
    _Subparsers,
)
from .checks import _check_network_fits, _check_output_path, _require_matplotlib
from .columns import (
    _apply,
    _choose_task,
    _csv_options,
    _fit_preprocessing,
    _max_expansion,
    _model_spec,
    _refuse_csv_options,
    _scale_hint,
)
from .fitting import (
    _check_checkpoint_options,
    _check_images,
    _check_model_fits,
    _choose_kind,
    _fit_model,
    _make_model,
    _mlp_flags,
    _model_choices,
    _save_or_say,
    _stopped_with_checkpoint,
    _takes_hidden,
    _task_of_model,
    _trained_text,
)
from .model_files import _describe_model
from .progress import TrainingProgress
from .streamed import _needs_streaming, _open_streamed, _run_train_streamed
from .text import _note, _short_list


def _add_train(subparsers: _Subparsers[argparse.ArgumentParser]) -> None:
    train = subparsers.add_parser(
        "train",
        help="train a classifier or regressor on a CSV, NPZ, NPY or IDX file (or .npy shards)",
        formatter_class=_FORMATTER,
        allow_abbrev=False,
        description=(
            "Train a classifier or a regressor on your data and (with --save) keep it in a\n"
            "model file. A fraction of the rows (--validation-fraction) is held out (for\n"
            "classification, stratified by class); the epoch with the lowest validation\n"
            "loss is kept. At the end a summary gives the accuracy and log loss (regression:\n"
            "R^2, MAE, RMSE) on both parts, the time taken and the model file.\n"
            "\n"
            "The task follows from the target: text labels or at most 20 distinct whole\n"
            "numbers (or at most 5% of the rows) mean classification, other numbers\n"
            "regression; --task overrides. A CSV's text columns are one-hot encoded and\n"
            "(with --impute) its missing numbers filled in, as learned on the training rows\n"
            "and kept in the model file, so 'handnet predict' takes raw rows."
        ),
        epilog=(
            "examples:\n"
            "  handnet train data.csv --target label --standardize --save model.npz\n"
            "  handnet train data.csv --target species --model mlp --hidden 32,16 --epochs 300\n"
            "  handnet train diabetes.csv --target target --model linear --standardize\n"
            "  handnet train wine.csv --no-header --target 0 --id-column 1 --impute median\n"
            "  handnet train data.npz --model softmax --optimizer gd --learning-rate 0.5\n"
            "  handnet train train-images.idx3-ubyte --labels train-labels.idx1-ubyte \\\n"
            "      --model mlp --hidden 128,64 --epochs 10 --save mnist.npz\n"
            "  handnet train X.npy --labels y.npy --batch-size 256 --epochs 5\n"
            "  handnet train shards/ --model softmax --epochs 5   # X_000.npy, y_000.npy, ...\n"
            "\n"
            ".npy files and shard directories are memory-mapped and, when larger than one\n"
            "block (8 MiB), read from disk block by block while training: a data set larger\n"
            "than memory trains in a few blocks' worth of it. The validation rows are then\n"
            "whole blocks, and --standardize and --plot are not available.\n"
            "\n"
            "--standardize scales each feature to zero mean and unit variance (statistics of\n"
            "the training rows); the scaling is then folded into the first layer's weights,\n"
            "so the saved model takes raw data and 'handnet predict' needs no extra step.\n"
            "\n"
            "Ctrl-C stops training after the current step. With --checkpoint the progress is\n"
            "saved there and the command exits (status 130) without a summary or --save;\n"
            "run the same command with --resume to finish the run, bit for bit as if it had\n"
            "never stopped:\n"
            "  handnet train data.npz --checkpoint run.npz --save model.npz\n"
            "  handnet train data.npz --checkpoint run.npz --save model.npz --resume\n"
            "Without --checkpoint the model trained so far is summarised and saved. A second\n"
            "Ctrl-C aborts at once (the last periodic checkpoint stays)."
        ),
    )
    _add_data_arguments(train, "IDX/NPY: the file of labels that goes with the images/features")
    _add_model_options(train)
    _add_fitting_options(train)
    _add_output_options(train)


def _add_model_options(train: argparse.ArgumentParser) -> None:
    """--model and the mlp's options."""
    train.add_argument("--model", choices=_model_choices(), default=None,
                       help="logistic (2 classes), softmax (any number of classes), mlp "
                       "(hidden layers; a classifier or a regressor, as the task is), linear "
                       "(linear regression), cnn (a small convolutional network, for images: "
                       "IDX files or NPZ arrays of shape (n, h, w) or (n, c, h, w)), or any "
                       "registered estimator by class name; default: mlp if --hidden, "
                       "--activation or --dropout is given, else logistic for 2 classes, "
                       "softmax for more, linear for regression")
    train.add_argument("--task", choices=("auto", "classification", "regression"),
                       default="auto",
                       help="auto (default): classification for text labels or few distinct "
                       "whole numbers (at most 20, or at most 5%% of the rows), regression for "
                       "other numbers")
    train.add_argument("--hidden", type=_hidden_sizes, default=None, metavar="SIZES",
                       help="mlp: hidden layer widths, e.g. 128,64 (default 64)")
    train.add_argument("--activation", choices=hidden_activations(),
                       default=None, help="mlp: hidden activation (default relu)")
    train.add_argument("--dropout", type=_fraction, default=None, metavar="RATE",
                       help="mlp: dropout rate after each hidden layer (default 0)")


def _add_fitting_options(train: argparse.ArgumentParser) -> None:
    """How to fit: the update rule, its settings, the held-out rows, the seed."""
    train.add_argument("--optimizer", choices=_optimizer_choices(), default="adam",
                       help="update rule (default adam; gd/sgd are plain gradient descent, "
                       "lbfgs is full batch)")
    train.add_argument("--learning-rate", type=_positive_float, default=0.01, metavar="LR",
                       help="step size (default 0.01)")
    train.add_argument("--epochs", type=_positive_int, default=100,
                       help="passes over the training rows (default 100; L-BFGS: iterations)")
    train.add_argument("--batch-size", type=_batch_size, default=200, metavar="N",
                       help="rows per step (default 200, at most all of them); 'full' for "
                       "full-batch gradient descent, 1 for one example per step")
    train.add_argument("--l2", type=_nonnegative_float, default=None, metavar="ALPHA",
                       help="L2 penalty on the weights (default 0; mlp 1e-4)")
    train.add_argument("--validation-fraction", type=_fraction, default=None, metavar="F",
                       help="share of rows held out for validation (default 0.1 for data read "
                       "into memory, 0 for data streamed from disk, where whole storage "
                       "blocks are held out; 0: none)")
    train.add_argument("--patience", type=_positive_int, default=None, metavar="N",
                       help="stop early once the validation loss (or, without "
                       "validation, the training loss) has not improved for N epochs")
    train.add_argument("--standardize", action="store_true",
                       help="scale features to zero mean, unit variance (saved with the model)")
    train.add_argument("--impute", choices=IMPUTE_STRATEGIES, default=None,
                       help="CSV: fill missing numbers with the training rows' mean, median or "
                       "most frequent value of their column (saved with the model); default: "
                       "a missing number is an error")
    train.add_argument("--seed", type=int, default=0,
                       help="random seed: split, initial weights, shuffling (default 0)")


def _add_output_options(train: argparse.ArgumentParser) -> None:
    """What to write and report: the model, checkpoints, a plot, progress."""
    train.add_argument("--save", metavar="MODEL", help="write the trained model to this file")
    train.add_argument("--checkpoint", metavar="PATH",
                       help="keep the run's progress in this file (parameters, optimizer and "
                       "generator state, epoch, history): written every --checkpoint-every "
                       "epochs, at the end, and on Ctrl-C")
    train.add_argument("--checkpoint-every", type=_positive_int, default=None, metavar="K",
                       help="epochs between checkpoints (default 1; needs --checkpoint); "
                       "mid-run writes are also spaced so that they cost at most 5%% of the "
                       "training time (at most one a second)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run saved in --checkpoint if that file exists (else "
                       "start one): same data and options required, --epochs may grow; the "
                       "result is bit for bit that of an uninterrupted run")
    train.add_argument("--plot", metavar="FILE.png",
                       help="write the loss and accuracy curves (and, for 2 features, the "
                       "decision boundary) to a PNG")
    train.add_argument("--progress", choices=("auto", "bar", "log", "none"), default="auto",
                       help="progress report on stderr: a bar on a terminal, log lines "
                       "otherwise (auto, the default)")
    train.add_argument("--quiet", action="store_true",
                       help="no progress report and no notes (the summary is still printed)")


class _Split(NamedTuple):
    """The rows to train on and the held-out validation rows (None without any).

    ``X_fit`` and ``X_val_fit`` are what the model is fitted on: the standardised
    rows with ``--standardize`` (``scaler`` then holds the statistics), else
    ``X_train`` and ``X_val`` themselves. For regression ``y_fit`` and
    ``y_val_fit`` are the targets scaled to zero mean and unit variance
    (``target_scale`` holds the mean and the scale), else the targets themselves.
    """

    X_train: Any
    y_train: Any
    X_val: Any
    y_val: Any
    X_fit: Any
    X_val_fit: Any
    scaler: Any
    y_fit: Any = None
    y_val_fit: Any = None
    target_scale: tuple[float, float] | None = None


def _run_train(args: argparse.Namespace, out: IO[str]) -> int:
    mlp_flags = _mlp_flags(args)
    _check_options(args, mlp_flags)
    streamed = _open_streamed(args)
    if streamed is not None:
        _refuse_csv_options(args, "npy")
    if streamed is not None and _needs_streaming(streamed[0]):
        if args.task == "regression":
            raise UsageError("--task regression is not available for data streamed from disk "
                             "(a classifier is trained block by block)")
        return _run_train_streamed(args, out, mlp_flags, *streamed)
    data = _read_in_memory(args, streamed)
    task = _task(args, data)
    classes = np.unique(data.y) if task == "classification" else None
    kind = _choose_kind(args, mlp_flags, classes, data.source, task)
    _check_images(args, kind, data.sample_shape, data.source)
    data, split, preprocessor = _split(args, data, task)
    n_train = split.X_fit.shape[0]
    batch_size = None if args.batch_size is None else min(args.batch_size, n_train)
    # The summary scores every row at once, hence all of them for the activations.
    _check_model_fits(args, kind, data.n_features, 1 if classes is None else len(classes),
                      data.n_samples)
    model = _make_model(args, kind, batch_size, data.sample_shape, task)
    validation = (None if split.X_val_fit is None or split.y_val is None
                  else (split.X_val_fit, split.y_val_fit))
    curves, callbacks = _plot_recorder(args, model, split)
    progress = TrainingProgress(
        args.epochs, mode="none" if args.quiet else args.progress,
        score_name="validation accuracy" if classes is not None else "validation R^2",
    )
    callbacks.append(progress)
    if not args.quiet and not args.standardize and kind != "cnn":
        hint = _scale_hint(split.X_fit, data.feature_names)
        if hint:
            _note(hint)
    if not args.quiet and data.pixels_scaled:
        # The scaling happens as the file is read, not in the model: say so, since a
        # model used from Python gets whatever it is given.
        _note(
            f"note: {data.source} holds 8-bit values, read as x / 255 (in [0, 1]); the "
            "model expects its inputs scaled the same way (handnet evaluate and predict "
            "do it for IDX and NPZ files; from Python, pass X / 255)"
        )
    seconds, interrupted = _fit_model(model, args, split.X_fit, split.y_fit, progress,
                                      validation_data=validation, callbacks=callbacks)
    if interrupted and args.checkpoint is not None:
        # The checkpoint holds the run as trained, on standardised inputs (nothing is
        # folded into it), so that --resume continues it exactly.
        return _stopped_with_checkpoint(args, model)
    # Every checkpoint is written by now: the folds change the model in memory
    # (and --save), never the run kept in --checkpoint.
    if split.scaler is not None:
        fold_standardization(model.network_, split.scaler.mean_, split.scaler.scale_)
    if split.target_scale is not None:
        fold_target_scaling(model.network_, *split.target_scale)
    # From here on the model takes raw inputs: every number below is what the saved
    # model will give.
    _write_summary(args, out, model, data, split, classes, seconds)
    if args.plot and curves is not None:
        _write_plot(args, out, model, data, curves)
    if data.feature_names is not None:
        # scikit-learn's attribute, set last (the model warns when it is then given a
        # plain array): predict and evaluate read a CSV's columns by these names.
        model.feature_names_in_ = np.asarray(data.feature_names, dtype=object)
    spec = _model_spec(args, data, preprocessor)
    if spec is not None:
        model.preprocessing_ = spec
    _save_or_say(args, model, out.write)
    return 0


def _check_options(args: argparse.Namespace, mlp_flags: list[str]) -> None:
    """Refuse options that cannot work, and output paths that cannot be written, at once."""
    if mlp_flags and not _takes_hidden(args.model):
        raise UsageError(f"{mlp_flags[0]} is for --model mlp, not --model {args.model}")
    # Problems with the output paths show up now, not after a long training.
    _check_output_path(args.save)
    _check_output_path(args.plot)
    if args.plot:
        _require_matplotlib()
    _check_checkpoint_options(args)
    if args.hidden:
        # The hidden layers alone (one input, one output) can already be too large:
        # say so before reading any data.
        _check_network_fits([1, *args.hidden, 1], 1, _hidden_option(args.hidden))


def _read_in_memory(args: argparse.Namespace, streamed: tuple[Any, Any, str] | None) -> Any:
    """DATA read into memory, as a :class:`handnet.data.files.Dataset` with labels."""
    from ..data.files import detect_format, load_dataset

    if streamed is not None:
        # .npy data small enough for one block: read it and train as any file.
        from ..data.files import Dataset, _as_feature_matrix, _as_labels

        X_small, y_small, source = streamed
        X_raw = np.asarray(X_small[0 : len(X_small)])
        X_read = _as_feature_matrix(X_raw, source)
        data = Dataset(X=X_read, y=_as_labels(np.asarray(y_small[0 : len(y_small)]),
                                               X_read.shape[0], source),
                       feature_names=None, target_name=None, source=source,
                       pixels_scaled=X_raw.dtype == np.uint8)
    else:
        _refuse_csv_options(args, detect_format(args.data))
        data = load_dataset(args.data, target=args.target, labels=args.labels,
                            delimiter=args.delimiter, need_labels=True,
                            max_expansion=_max_expansion(args), features=args.features,
                            **_csv_options(args))
    assert data.y is not None
    return data


def _task(args: argparse.Namespace, data: Any) -> str:
    """The task: ``--task``, else the one ``--model`` implies, else the target's."""
    task = str(args.task)
    implied = _task_of_model(args.model)
    if task == "auto" and implied is not None:
        task = implied
    name = repr(data.target_name) if data.target_name is not None else "(the labels)"
    return _choose_task(task, data.y, name, args.quiet)


def _split(args: argparse.Namespace, data: Any, task: str) -> tuple[Any, _Split, Any]:
    """Hold out validation rows (stratified for classification), learn the preprocessing and
    the standardisation on the training rows only; the data preprocessed, the split, and
    the preprocessor (None when the features needed none)."""
    from ..datasets import Standardizer, train_test_split

    fraction = 0.1 if args.validation_fraction is None else args.validation_fraction
    rows = np.arange(data.n_samples)
    if fraction > 0:
        train_rows, val_rows, _, _ = train_test_split(
            rows, data.y, test_size=fraction, stratify=task == "classification",
            random_state=args.seed,
        )
    else:
        train_rows, val_rows = rows, None
    preprocessor = _fit_preprocessing(args, data, train_rows)
    data = _apply(data, preprocessor)
    y = data.y.astype(np.float64) if task == "regression" else data.y
    X_train, y_train = data.X[train_rows], y[train_rows]
    X_val = None if val_rows is None else data.X[val_rows]
    y_val = None if val_rows is None else y[val_rows]
    scaler = None
    X_fit, X_val_fit = X_train, X_val
    if args.standardize:
        scaler = Standardizer().fit(X_train)  # training rows only: no peeking at validation
        X_fit = scaler.transform(X_train)
        X_val_fit = None if X_val is None else scaler.transform(X_val)
    y_fit, y_val_fit, target_scale = y_train, y_val, None
    if task == "regression":
        # The network learns a target of unit scale; the scale is folded into its output.
        spread = float(np.std(y_train))
        target_scale = (float(np.mean(y_train)), spread if spread > 0 else 1.0)
        y_fit = (y_train - target_scale[0]) / target_scale[1]
        y_val_fit = None if y_val is None else (y_val - target_scale[0]) / target_scale[1]
    data = dataclasses.replace(data, y=y)
    split = _Split(X_train, y_train, X_val, y_val, X_fit, X_val_fit, scaler,
                   y_fit, y_val_fit, target_scale)
    return data, split, preprocessor


def _plot_recorder(
    args: argparse.Namespace, model: Any, split: _Split
) -> tuple[Any, list[Callable[[Any], None]]]:
    """With ``--plot``: the curves to draw and the callback that records the training accuracy."""
    callbacks: list[Callable[[Any], None]] = []
    if not args.plot:
        return None, callbacks
    from ..plot import TrainingCurves

    curves = TrainingCurves(score_name=_score_name(model))
    # Training accuracy (R²) on at most 2000 rows: the curve's shape costs little.
    n_train = split.X_fit.shape[0]
    sample = np.random.default_rng([args.seed, 3]).permutation(n_train)[:2000]
    X_sample, y_sample = split.X_fit[sample], split.y_fit[sample]

    def record(trainer: Any) -> None:
        # The validation loss and accuracy the model records itself (its early
        # stopping watches them); the training accuracy is the plot's own.
        curves.add(f"training {curves.score_name}", trainer.epoch,
                   model.score(X_sample, y_sample))

    callbacks.append(record)
    return curves, callbacks


def _write_summary(
    args: argparse.Namespace, out: IO[str], model: Any, data: Any, split: _Split,
    classes: NDArray[Any] | None, seconds: float,
) -> None:
    """The model and the data, how training went, the scores on both parts."""
    write = out.write
    n_val = 0 if split.X_val is None else split.X_val.shape[0]
    target = ("a continuous target (regression)" if classes is None
              else f"{len(classes)} classes {_short_list(classes.tolist())}")
    write(
        f"handnet train: {_describe_model(model)} on {data.source}: {split.X_fit.shape[0]} "
        f"training and {n_val} validation rows, {data.n_features} features, {target}\n"
    )
    write(
        _trained_text(args, model, seconds, lbfgs_stopped=" (converged)")
        + (", inputs standardised" if split.scaler is not None else "") + "\n"
    )
    scores = _regression_text if classes is None else _classification_text
    write(f"training:   {scores(model, split.X_train, split.y_train)}\n")
    if split.X_val is not None and split.y_val is not None:
        validation_scores = model.validation_scores_ or []
        best_epoch = getattr(model, "best_epoch_", None)
        kept = (f"epoch {best_epoch} of {len(validation_scores)} kept: the lowest validation "
                "loss" if validation_scores and best_epoch is not None
                else "the last iteration kept")
        write(f"validation: {scores(model, split.X_val, split.y_val)}   ({kept})\n")
    if getattr(model, "alpha", 0) > 0 and not args.quiet:
        write("(these scores are the data's alone; the progress report's objective adds the "
              "L2 penalty)\n")


def _classification_text(model: Any, X: NDArray[Any], y: NDArray[Any]) -> str:
    """``accuracy 0.9500   log loss 0.1234`` of a classifier on ``X``, ``y``."""
    from ..metrics import log_loss

    accuracy = float(np.mean(model.predict(X) == y))
    loss = log_loss(y, model.predict_log_proba(X), model.classes_)
    return f"accuracy {accuracy:.4f}   log loss {loss:.4f}"


def _regression_text(model: Any, X: NDArray[Any], y: NDArray[Any]) -> str:
    """``R^2 0.5123   MAE 43.1   RMSE 53.9`` of a regressor on ``X``, ``y``."""
    r2, mae, rmse = regression_numbers(np.asarray(model.predict(X)), y)
    return f"R^2 {r2:.4f}   MAE {mae:.4g}   RMSE {rmse:.4g}"


def regression_numbers(predictions: NDArray[Any], y: NDArray[Any]) -> tuple[float, float, float]:
    """R², mean absolute error and root mean squared error of ``predictions`` against ``y``."""
    residual = np.asarray(predictions, dtype=np.float64).reshape(len(y), -1) - np.asarray(
        y, dtype=np.float64).reshape(len(y), -1)
    centred = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    centred = centred - centred.mean(axis=0)
    total = float(np.sum(centred**2))
    r2 = 1.0 - float(np.sum(residual**2)) / total if total > 0 else float("nan")
    return r2, float(np.mean(np.abs(residual))), float(np.sqrt(np.mean(residual**2)))


def _score_name(model: Any) -> str:
    """What ``model.score`` measures: accuracy for a classifier, R² for a regressor."""
    return "accuracy" if getattr(model, "_is_classifier", True) else "R²"


def _write_plot(
    args: argparse.Namespace, out: IO[str], model: Any, data: Any, curves: Any
) -> None:
    """The training curves (and, for 2 features, the decision boundary) in ``--plot``."""
    from ..plot import save_figure, training_figure

    # Like against like: the training data loss (no L2 term) beside the validation loss;
    # the objective only where a model recorded no data loss.
    history = getattr(model, "history_", None)
    data_loss = list(getattr(history, "data_loss", None) or [])
    if data_loss:
        curves.extend("training loss", data_loss)
    else:
        curves.extend("training objective (loss + L2)", model.loss_curve_)
    curves.extend("validation loss", getattr(model, "validation_loss_curve_", None) or [])
    curves.extend(f"validation {curves.score_name}", model.validation_scores_ or [])
    curves.kept_epoch = getattr(model, "best_epoch_", None)
    boundary = data.n_features == 2 and hasattr(model, "classes_")
    figure = training_figure(
        curves, model=model, X=data.X if boundary else None, y=data.y,
        title=f"{_describe_model(model)} on {os.path.basename(data.source)}",
        feature_names=data.feature_names,
    )
    out.write(f"plot written to {save_figure(figure, args.plot)}\n")


def fold_target_scaling(network: Any, mean: float, scale: float) -> None:
    r"""Fold a target scaling into the last dense layer, in place.

    A regressor trained on :math:`y' = (y - \mu) / s` ends with :math:`z = h W + b`
    giving :math:`y'`; the layer with :math:`W' = s W` and :math:`b' = s b + \mu`
    gives :math:`y` itself, so the saved model predicts in the target's units.
    """
    from ..nn.layers import Dense

    last = network.layers[-1]
    if not isinstance(last, Dense):
        raise TypeError("the last layer must be Dense to fold the target scaling into it")
    # In-place writes: the layer's arrays are views of the network's flat vector.
    last.weights *= last.weights.dtype.type(scale)
    last.bias[...] = last.bias * scale + mean


def fold_standardization(network: Any, mean: NDArray[Any], scale: NDArray[Any]) -> None:
    r"""Fold input standardisation into the first dense layer, in place.

    A network trained on :math:`x' = (x - \mu) / s` starts with
    :math:`z = x' W + b`. Substituting,

    .. math:: z = x\,\big(W / s\big) + \big(b - (\mu / s)\,W\big)

    so the layer with :math:`W' = \operatorname{diag}(1/s)\,W` and
    :math:`b' = b - (\mu/s) W` computes the same function of the *raw* inputs.
    The saved model then needs no preprocessing step at all: ``predict`` on raw
    data gives the standardised model's predictions (to rounding).
    """
    from ..nn.layers import Dense

    first = network.layers[0]
    if not isinstance(first, Dense):
        raise TypeError("the first layer must be Dense to fold standardisation into it")
    inverse = (1.0 / np.asarray(scale, dtype=np.float64)).astype(first.weights.dtype)
    shift = (np.asarray(mean, dtype=np.float64) * inverse).astype(first.weights.dtype)
    new_bias = first.bias - shift @ first.weights
    # In-place writes: the layer's arrays are views of the network's flat vector.
    first.weights *= inverse[:, None]
    first.bias[...] = new_bias
