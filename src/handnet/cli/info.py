"""``handnet info``: a saved model's architecture, parameters, hyperparameters and history."""

from __future__ import annotations

import argparse
import os
from typing import IO, Any

import numpy as np

from .arguments import _FORMATTER, _Subparsers
from .model_files import _load_model
from .text import _short_list


def _add_info(subparsers: _Subparsers[argparse.ArgumentParser]) -> None:
    info = subparsers.add_parser(
        "info",
        allow_abbrev=False,
        help="show a saved model: architecture, parameter count, hyperparameters, history",
        formatter_class=_FORMATTER,
        description="Describe a model file without using any data.",
        epilog="example:\n  handnet info model.npz",
    )
    info.add_argument("model", metavar="MODEL", help="a model file")


def _layer_lines(network: Any) -> list[str]:
    lines = []
    for index, layer in enumerate(network.layers):
        count = sum(int(p.size) for p in layer.parameters())
        shapes = " + ".join(f"{tuple(p.shape)}" for p in layer.parameters())
        line = f"  {index:>2}  {layer!r:<28} {count:>10,} parameters"
        lines.append(line + (f"  {shapes}" if shapes else ""))
    return lines


def _run_info(args: argparse.Namespace, out: IO[str]) -> int:
    from ..nn.network import Sequential

    model = _load_model(args.model)
    write = out.write
    network = model if isinstance(model, Sequential) else getattr(model, "network_", None)
    write(f"file: {args.model} ({os.path.getsize(args.model):,} bytes)\n")
    write(f"model: {type(model).__name__}\n")
    if network is None:
        write("not fitted: no network\n")
        return 0
    write(f"architecture ({len(network.layers)} layers, dtype {network.dtype}):\n")
    write("\n".join(_layer_lines(network)) + "\n")
    write(f"parameters: {network.n_parameters:,} "
          f"({network.n_penalized:,} weights, {network.n_parameters - network.n_penalized:,} "
          "biases)\n")
    if isinstance(model, Sequential):
        return 0
    write(f"inputs: {model.n_features_in_} features")
    names = getattr(model, "feature_names_in_", None)
    write(f" {_short_list([str(n) for n in names])}\n" if names is not None else "\n")
    _write_preprocessing(model, out)
    if hasattr(model, "classes_"):
        write(f"classes: {len(model.classes_)} {_short_list(model.classes_.tolist())}\n")
    write("hyperparameters:\n")
    for name, value in sorted(model.get_params(deep=False).items()):
        write(f"  {name} = {value!r}\n")
    _write_history(model, out)
    return 0


def _write_preprocessing(model: Any, out: IO[str]) -> None:
    """How ``handnet train`` read the model's CSV (``preprocessing_``), when it kept that."""
    spec = getattr(model, "preprocessing_", None)
    if spec is None:
        return
    reading = [("header row" if spec["header"] else "no header row, columns by position")
               + f" ({len(spec['file_columns'])} columns)"]
    if spec["target"] is not None:
        reading.append(f"target {spec['target']!r}")
    if spec["id_column"] is not None:
        reading.append(f"id column {spec['id_column']!r}")
    if spec["decimal"] == ",":
        reading.append("decimal comma")
    out.write(f"CSV read: {', '.join(reading)}\n")
    steps = spec["preprocessor"]
    if steps is None:
        return
    if steps["impute"] is not None:
        out.write(f"missing numbers: filled with the training rows' {steps['impute']}\n")
    for column, categories in zip(steps["columns"], steps["categories"], strict=True):
        if categories is not None:
            out.write(f"one-hot: {column!r} -> {len(categories)} columns "
                      f"{_short_list(categories)} (an unseen category: all zeros)\n")


def _write_history(model: Any, out: IO[str]) -> None:
    """The training history an estimator keeps: losses, validation scores, the epoch kept."""
    write = out.write
    losses = list(getattr(model, "loss_curve_", None) or [])
    write("training history:\n")
    if not losses:
        write("  (not recorded in this file)\n")
        return
    write(f"  epochs: {getattr(model, 'n_iter_', len(losses))}\n")
    # loss_curve_ is the objective: the data loss plus the penalty (0 without one).
    write(f"  objective (loss + penalty): first {losses[0]:.6g}, last {losses[-1]:.6g}, "
          f"lowest {min(losses):.6g} (epoch {int(np.argmin(losses)) + 1})\n")
    _write_data_loss(model, out, losses)
    scores = list(getattr(model, "validation_scores_", None) or [])
    validation_losses = list(getattr(model, "validation_loss_curve_", None) or [])
    best_epoch = getattr(model, "best_epoch_", None)
    if validation_losses:
        write(f"  validation loss: first {validation_losses[0]:.6g}, last "
              f"{validation_losses[-1]:.6g}, lowest {min(validation_losses):.6g}\n")
    if scores:
        write(f"  validation score: last {scores[-1]:.4f}, best {max(scores):.4f}\n")
    if best_epoch is not None and scores:
        write(f"  kept epoch: {best_epoch} of {len(scores)} (the lowest validation loss; "
              f"its validation score {scores[best_epoch - 1]:.4f})\n")


def _write_data_loss(model: Any, out: IO[str], losses: list[float]) -> None:
    """The training loss without the penalty, when it differs from the objective."""
    history = getattr(model, "history_", None)
    recorded = history.to_dict()["data_loss"] if history is not None else []
    data_loss = [v for v in recorded if not np.isnan(v)]  # NaN: not recorded (older files)
    if data_loss and data_loss != losses[-len(data_loss):]:
        out.write(f"  data loss (no penalty, like the validation loss): last {data_loss[-1]:.6g}, "
                  f"lowest {min(data_loss):.6g}\n")
