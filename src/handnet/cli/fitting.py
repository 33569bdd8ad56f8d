"""The steps of ``handnet train`` that data in memory and data streamed from disk share.

Choose the model from the options and the labels, check that it fits in memory,
build it, fit it with the progress report and the checkpoint options, say how it
went and save it.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import logging
import os
import shlex
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from numpy.typing import NDArray

from ..optim.optimizers import is_full_batch
from .arguments import UsageError, _hidden_option
from .checks import _check_network_fits, _check_output_path
from .model_files import _save_model
from .progress import TrainingProgress
from .text import _error_text, _note, _seconds


def _mlp_flags(args: argparse.Namespace) -> list[str]:
    """The options given that only an mlp takes (they make ``--model`` default to mlp)."""
    return [flag for flag, value in (("--hidden", args.hidden),
                                     ("--activation", args.activation),
                                     ("--dropout", args.dropout)) if value is not None]


SHORT_MODELS = {
    "logistic": "LogisticRegression",
    "softmax": "SoftmaxRegression",
    "mlp": "MLPClassifier",  # MLPRegressor for a regression target
    "linear": "MLPRegressor",  # without hidden layers: linear regression
    "cnn": "NeuralNetClassifier",
}
"""``--model``'s short names and the registered estimator each stands for."""

_CLASSIFIER_KINDS = ("logistic", "softmax", "cnn")


def _estimators() -> Any:
    """The estimators registry, with handnet's own estimators registered."""
    from .. import models  # noqa: F401  (registers the four models)
    from ..base import ESTIMATORS
    from ..models import neural_net  # noqa: F401  (registers the NeuralNet estimators)

    return ESTIMATORS


def _model_choices() -> tuple[str, ...]:
    """``--model``'s choices: the short names whose estimator is registered, then every
    registered estimator by class name (one registered by a user included)."""
    registry = _estimators()
    short = [name for name, target in SHORT_MODELS.items() if target in registry]
    return (*short, *(name for name in registry if name not in short))


def _estimator_class(kind: str) -> Any:
    """The class a registry name given to ``--model`` names (``None`` for a short name)."""
    return None if kind in SHORT_MODELS else _estimators()[kind]


def _takes_hidden(kind: str | None) -> bool:
    """Whether ``--model kind`` takes the mlp options (--hidden, --activation, --dropout)."""
    if kind in (None, "mlp"):
        return True
    cls = None if kind is None else _estimator_class(kind)
    return cls is not None and "hidden_layer_sizes" in inspect.signature(cls).parameters


def _task_of_model(kind: str | None) -> str | None:
    """The task ``--model`` implies (None: the target decides)."""
    if kind is None or kind == "mlp":
        return None
    if kind in _CLASSIFIER_KINDS:
        return "classification"
    if kind == "linear":
        return "regression"
    cls = _estimator_class(kind)
    return "classification" if getattr(cls, "_is_classifier", False) else "regression"


def _choose_kind(
    args: argparse.Namespace, mlp_flags: Sequence[str], classes: NDArray[Any] | None,
    source: str, task: str = "classification",
) -> str:
    """``--model``, or the model that fits the target: refuses labels of a single class."""
    implied = _task_of_model(args.model)
    if implied is not None and implied != task:
        raise UsageError(
            f"--model {args.model} is for {implied}, but the task is {task} (--task, or the "
            "target's values); " + ("use --model linear or --model mlp" if task == "regression"
                                    else "use --model logistic, softmax or mlp")
        )
    if task == "regression":
        return str(args.model or ("mlp" if mlp_flags else "linear"))
    assert classes is not None
    if len(classes) < 2:
        raise ValueError(
            f"{source}: the labels hold a single class ({classes.tolist()}); "
            "a classifier needs examples of at least two"
        )
    # Without --model: an mlp if its flags were given, else the linear model that fits.
    kind: str = args.model or (
        "mlp" if mlp_flags else "logistic" if len(classes) == 2 else "softmax"
    )
    if kind == "logistic" and len(classes) != 2:
        raise UsageError(
            f"--model logistic is for two classes, but the labels hold {len(classes)}; "
            "use --model softmax or --model mlp"
        )
    return kind


def _check_model_fits(
    args: argparse.Namespace, kind: str, n_features: int, n_classes: int, rows: int
) -> None:
    """:func:`_check_network_fits` for the model ``train`` is about to build.

    ``n_classes`` is 1 for a regression target (one output).
    """
    if kind == "cnn":
        return  # sized by its layers (small); predicting goes a block of rows at a time
    linear = kind in ("logistic", "softmax", "linear") or not _takes_hidden(kind)
    hidden = () if linear else (args.hidden or (64,))
    n_outputs = 1 if n_classes <= 2 else n_classes
    option = _hidden_option(hidden) if args.hidden else f"--model {kind}"
    _check_network_fits([n_features, *hidden, n_outputs], rows, option)


def _check_images(args: argparse.Namespace, kind: str, sample_shape: Any, source: str) -> None:
    """``--model cnn`` needs images, and images are not standardised column by column."""
    if kind != "cnn":
        return
    if sample_shape is None:
        raise UsageError(
            f"--model cnn trains on images, but {source} holds rows of features; give an IDX "
            "image file or an NPZ archive whose X has shape (n, height, width) or (n, "
            "channels, height, width)"
        )
    channels, height, width = sample_shape
    if width in (1, 3) and channels > 4 and height > 4:
        # (n, height, width, channels), as image libraries save them, read as
        # (n, channels, height, width): say so rather than fail in a layer.
        raise UsageError(
            f"{source} holds images of shape {tuple(sample_shape)}, read as (channels, "
            f"height, width) = {channels} channels of {height} x {width} pixels; if they are "
            "(height, width, channels), as image libraries save them, save "
            "X.transpose(0, 3, 1, 2) instead"
        )
    if args.standardize:
        raise UsageError(
            "--standardize scales each column (each pixel) on its own, which --model cnn "
            "does not take: a convolution applies the same weights at every position. "
            "Scale the images as a whole before saving them (8-bit images are read as "
            "x / 255, in [0, 1])"
        )


def _make_model(
    args: argparse.Namespace, kind: str, batch_size: int | None, sample_shape: Any = None,
    task: str = "classification",
) -> Any:
    from ..models import LogisticRegression, MLPClassifier, MLPRegressor, SoftmaxRegression

    common: dict[str, Any] = {
        "optimizer": args.optimizer,
        "learning_rate": args.learning_rate,
        "max_iter": args.epochs,
        "batch_size": batch_size,
        "random_state": args.seed,
        # tol=None runs every epoch asked for; --patience turns the stopping rule on.
        "tol": 1e-4 if args.patience else None,
        "n_iter_no_change": args.patience or 10,
    }
    mlp: dict[str, Any] = {
        "hidden_layer_sizes": args.hidden or (64,), "activation": args.activation or "relu",
        "dropout": args.dropout or 0.0, "alpha": 1e-4 if args.l2 is None else args.l2,
    }
    alpha = 0.0 if args.l2 is None else args.l2
    if kind == "cnn":
        from ..models.neural_net import NeuralNetClassifier, small_cnn

        return NeuralNetClassifier(
            small_cnn(), input_shape=sample_shape, alpha=1e-4 if args.l2 is None else args.l2,
            **common,
        )
    if kind == "mlp":
        return (MLPRegressor if task == "regression" else MLPClassifier)(**mlp, **common)
    if kind == "linear":  # linear regression: an MLPRegressor without hidden layers
        return MLPRegressor(hidden_layer_sizes=(), alpha=alpha, **common)
    if kind == "logistic":
        return LogisticRegression(alpha=alpha, **common)
    if kind == "softmax":
        return SoftmaxRegression(alpha=alpha, **common)
    # A registered estimator by class name: the settings its constructor takes.
    cls = _estimator_class(kind)
    accepted = inspect.signature(cls).parameters
    settings = {**common, **(mlp if "hidden_layer_sizes" in accepted else {"alpha": alpha})}
    needed = [name for name, parameter in accepted.items()
              if parameter.default is inspect.Parameter.empty and name not in settings
              and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)]
    if needed:
        raise UsageError(
            f"--model {kind} cannot be built from the command line: its constructor needs "
            f"{', '.join(needed)}; build it in Python (handnet.{kind}) and save it"
        )
    return cls(**{name: value for name, value in settings.items() if name in accepted})


def _check_checkpoint_options(args: argparse.Namespace) -> None:
    """Refuse checkpoint options that cannot work, before any data is read."""
    if args.checkpoint is None:
        for flag, value in (("--resume", args.resume), ("--checkpoint-every",
                                                         args.checkpoint_every)):
            if value:
                raise UsageError(f"{flag} needs --checkpoint PATH, the file of the run")
        return
    _check_output_path(args.checkpoint)
    if args.save and os.path.abspath(args.save) == os.path.abspath(args.checkpoint):
        raise UsageError(
            "--save and --checkpoint name the same file: the checkpoint holds the run "
            "being trained, --save the finished model; give them different names"
        )
    if os.path.exists(args.checkpoint) and not args.resume:
        # A fresh run would overwrite the progress of an earlier one without a word.
        raise UsageError(
            f"{args.checkpoint} exists: add --resume to continue the run it holds, or "
            "remove it (or pick another --checkpoint) to start a new one"
        )
    if args.resume and not args.quiet:
        if os.path.exists(args.checkpoint):
            _note(f"note: resuming the run saved in {args.checkpoint}")
        else:
            _note(f"note: {args.checkpoint} does not exist yet: starting a new run")


class _DropInterruptReport(logging.Filter):
    """Drops the trainer's "Training interrupted" record: ``train`` says it in CLI terms."""

    def filter(self, record: logging.LogRecord) -> bool:
        from ..training import INTERRUPTED_EVENT

        return getattr(record, "handnet_event", None) != INTERRUPTED_EVENT


@contextlib.contextmanager
def _without_interrupt_report() -> Iterator[None]:
    """While ``fit`` runs: the interrupt report is the command's own (with ``--resume``)."""
    trainer_logger = logging.getLogger("handnet.training")
    report_filter = _DropInterruptReport()
    trainer_logger.addFilter(report_filter)
    try:
        yield
    finally:
        trainer_logger.removeFilter(report_filter)


def _fit_model(
    model: Any, args: argparse.Namespace, X: Any, y: Any, progress: TrainingProgress,
    **fit_args: Any,
) -> tuple[float, bool]:
    """``model.fit`` with the progress report and the checkpoint options.

    Returns the seconds taken and whether Ctrl-C stopped training. Warnings
    (e.g. a ConvergenceWarning) are printed as notes, one line each.
    """
    if args.checkpoint is not None:
        fit_args.update(checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every or 1,
                        resume=bool(args.resume))
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught, _without_interrupt_report():
        warnings.simplefilter("always")
        try:
            model.fit(X, y, **fit_args)
        except ValueError as error:
            if args.resume and progress.first_epoch is None and os.path.exists(args.checkpoint):
                # The run in the checkpoint does not match this command (the model
                # checks before training): say so in the command line's terms.
                raise ValueError(
                    f"{_error_text(error)} (--resume continues a run with the DATA and "
                    "options it was started with; only --epochs may change)"
                ) from None
            raise
        finally:
            progress.close()
    seconds = time.perf_counter() - start
    if not args.quiet:
        for warning in caught:  # e.g. a ConvergenceWarning, as one readable line
            _note(f"note: {' '.join(str(warning.message).split())}")
    trainer = getattr(model, "_trainer", None)
    interrupted = bool(getattr(trainer, "interrupted", False))
    if interrupted and args.checkpoint is None:
        _note(
            f"note: interrupted after {model.n_iter_} complete epoch(s) of {args.epochs}; "
            "the model trained so far is kept (with --checkpoint PATH a run can be resumed)"
        )
    return seconds, interrupted


def _stopped_with_checkpoint(args: argparse.Namespace, model: Any) -> int:
    """After Ctrl-C with --checkpoint: say where the run is and how to go on; status 130."""
    argv = list(getattr(args, "argv", None) or [])
    command = "handnet " + (shlex.join(argv) if argv else "train ...")
    if "--resume" not in argv:
        command += " --resume"
    _note(
        f"handnet train: interrupted after {model.n_iter_} complete epoch(s) of {args.epochs}; "
        f"the run is saved in {args.checkpoint} (nothing written to --save). "
        f"To continue it, run: {command}"
    )
    return 130


def _trained_text(
    args: argparse.Namespace, model: Any, seconds: float, lbfgs_stopped: str
) -> str:
    """``trained 40 epochs (stopped early) in 1.2 s: adam, learning rate 0.01, batch size 200``.

    ``lbfgs_stopped`` is what an L-BFGS run that ended before ``--epochs`` says.
    """
    if is_full_batch(args.optimizer):  # a line search picks each step: no rate, no batches
        unit, settings, stopped = "iterations", f"{args.optimizer}, full batch", lbfgs_stopped
    else:
        batch = "full batch" if model.batch_size is None else f"batch size {model.batch_size}"
        unit, stopped = "epochs", " (stopped early)"
        settings = f"{args.optimizer}, learning rate {args.learning_rate:g}, {batch}"
    if model.n_iter_ >= args.epochs:
        stopped = ""
    return f"trained {model.n_iter_} {unit}{stopped} in {_seconds(seconds)}: {settings}"


def _save_or_say(args: argparse.Namespace, model: Any, write: Callable[[str], Any]) -> None:
    """Write the model to ``--save``, or say that it is not kept."""
    if args.save:
        _save_model(model, args.save)
        write(f"model saved to {args.save}\n")
    else:
        write("model not saved (use --save MODEL to keep it)\n")
