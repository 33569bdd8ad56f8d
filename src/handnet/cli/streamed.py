"""``handnet train`` on data read from disk block by block (see :mod:`handnet.data.streaming`).

A ``.npy`` file (labels: ``--labels LABELS.npy``) or a directory of ``.npy``
shards is memory-mapped; when it spans several storage blocks, training reads
it a block at a time, so a data set larger than memory trains in a few blocks'
worth of it.
"""

from __future__ import annotations

import argparse
import os
from typing import IO, Any

from .arguments import UsageError
from .fitting import (
    _check_images,
    _check_model_fits,
    _choose_kind,
    _fit_model,
    _make_model,
    _save_or_say,
    _stopped_with_checkpoint,
    _trained_text,
)
from .model_files import _describe_model
from .progress import TrainingProgress
from .text import _short_list


def _open_streamed(args: argparse.Namespace) -> tuple[Any, Any, str] | None:
    """``(X, y, source)`` opened from disk when DATA is a ``.npy`` file or a shard directory.

    A ``.npy`` file takes its labels from ``--labels LABELS.npy``; a directory
    holds ``X_<k>.npy`` and ``y_<k>.npy`` pairs (see
    :func:`handnet.data.streaming.open_shards`). Both are memory-mapped: nothing is
    read yet. Other files give ``None``.
    """
    from ..data.files import DataFileError, detect_format, open_npy
    from ..data.streaming import open_shards

    if os.path.isdir(args.data):
        if args.labels is not None or args.target is not None:
            raise UsageError(
                f"{args.data} is a directory of shards, which holds its labels in y_*.npy "
                "files: drop --labels and --target"
            )
        try:
            shards, labels = open_shards(args.data)
        except ValueError as error:
            raise DataFileError(str(error)) from None
        if labels is None:
            raise DataFileError(
                f"{args.data}: no y_*.npy label files (the layout is X_000.npy, y_000.npy, ...)"
            )
        return shards, labels, f"{args.data} ({len(shards.paths)} shards)"
    if detect_format(args.data) != "npy":
        return None
    if args.target is not None:
        raise UsageError(f"--target names a CSV column, but {args.data} is a .npy file; "
                         "pass the labels with --labels LABELS.npy")
    if args.labels is None:
        raise DataFileError(f"{args.data} is a .npy file: pass its labels with --labels LABELS.npy")
    X = open_npy(args.data, "features")
    y = open_npy(args.labels, "labels")
    if len(y) != len(X):
        raise DataFileError(
            f"{args.labels}: {len(X)} samples in {args.data} but {len(y)} labels; they must match"
        )
    return X, y, args.data


def _needs_streaming(X: Any) -> bool:
    """Whether ``X`` spans several storage blocks (else it is read and trained in memory)."""
    from ..data.streaming import is_out_of_core, storage_bounds

    return is_out_of_core(X) and len(storage_bounds(X)) > 2


def _run_train_streamed(
    args: argparse.Namespace, out: IO[str], mlp_flags: list[str], X: Any, y: Any, source: str
) -> int:
    """``handnet train`` on data read from disk block by block (see :mod:`handnet.data.streaming`).

    The validation rows are whole storage blocks held out by the model's early
    stopping; the summary gives the last epoch's training loss and the validation
    accuracy of the epoch kept (the lowest validation loss). ``--standardize`` and ``--plot`` need
    the data in memory and are refused.
    """
    from ..data.streaming import scan_labels

    for flag in ("standardize", "plot"):
        if getattr(args, flag):
            raise UsageError(
                f"--{flag} needs the data in memory; it is not available when training from "
                ".npy files on disk (standardise the files beforehand)"
            )
    classes, _ = scan_labels(y)
    kind = _choose_kind(args, mlp_flags, classes, source)
    n_rows = int(X.shape[0])
    batch_size = None if args.batch_size is None else min(args.batch_size, n_rows)
    _check_images(args, kind, None, source)
    # Streamed data goes through the network a block (or a batch) at a time.
    _check_model_fits(args, kind, int(X.shape[1]), len(classes), batch_size or 1)
    model = _make_model(args, kind, batch_size)
    # Streamed data holds out whole storage blocks: only on request, since a default
    # 10% of a file of a few blocks would be one block, far more than 10% of the rows.
    if args.validation_fraction:
        model.set_params(early_stopping=True, validation_fraction=args.validation_fraction)
    progress = TrainingProgress(args.epochs, mode="none" if args.quiet else args.progress)
    seconds, interrupted = _fit_model(model, args, X, y, progress, callbacks=[progress])
    if interrupted and args.checkpoint is not None:
        return _stopped_with_checkpoint(args, model)
    _write_streamed_summary(args, out, model, X, classes, source, seconds)
    _save_or_say(args, model, out.write)
    return 0


def _write_streamed_summary(
    args: argparse.Namespace, out: IO[str], model: Any, X: Any, classes: Any, source: str,
    seconds: float,
) -> None:
    """The model and the data, how training went, the last loss and the epoch kept."""
    write = out.write
    n_rows = int(X.shape[0])
    n_train = int(model.t_ // max(model.n_iter_, 1)) if model.n_iter_ else n_rows
    write(
        f"handnet train: {_describe_model(model)} on {source}, read from disk block by block: "
        f"{n_train} training and {n_rows - n_train} validation rows, {X.shape[1]} features, "
        f"{len(classes)} classes {_short_list(classes.tolist())}\n"
    )
    write(_trained_text(args, model, seconds, lbfgs_stopped=" (stopped early)") + "\n")
    if model.loss_curve_:
        write(f"training:   loss {model.loss_curve_[-1]:.4f} (mean over the last epoch)\n")
    scores = model.validation_scores_ or []
    best_epoch = getattr(model, "best_epoch_", None)
    if scores and best_epoch is not None:
        validation_loss = model.validation_loss_curve_[best_epoch - 1]
        write(f"validation: accuracy {scores[best_epoch - 1]:.4f}   loss "
              f"{validation_loss:.4f}   (epoch {best_epoch} of {len(scores)} kept: the "
              "lowest validation loss)\n")
