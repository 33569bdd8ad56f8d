"""The ``handnet`` command line.

======================  ==================================================================
``handnet demo``        the seed's experiment and its variants (:mod:`handnet.demo`)
``handnet train``       train a classifier on a CSV, NPZ or IDX file and save it
``handnet predict``     a saved model's predictions (and probabilities) for a data file
``handnet evaluate``    accuracy, log loss, confusion matrix, per-class precision/recall/F1
``handnet info``        a saved model's architecture, parameters, hyperparameters, history
``handnet gradcheck``   backpropagation against finite differences, per layer
======================  ==================================================================

Argument parsing is argparse's. Errors a user can cause (a missing file, an
unknown column, non-numeric data, a file that is not a model) are printed as one
line, ``handnet COMMAND: error: ...``, with exit status 1 (2 for a command line
that cannot work, as argparse does); a traceback means a bug in handnet.

Training progress is a training callback (:class:`TrainingProgress`): a tqdm bar
when stderr is a terminal and tqdm is installed (``pip install "handnet[progress]"``),
a plain log line now and then otherwise, nothing with ``--quiet``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import itertools
import logging
import math
import os
import re
import shlex
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any, cast

import numpy as np
from numpy.typing import NDArray

from . import __version__
from .activations import hidden_activations
from .optimizers import OPTIMIZERS


class UsageError(ValueError):
    """A command line that cannot work (conflicting or missing options): exit status 2."""


# --- text from files, shown on a terminal ------------------------------------------------

# C0 controls, DEL and C1 controls: ESC and CSI (0x9b) start terminal escape sequences, BEL
# ends some; a class label or column name from a stranger's file may hold any of them.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: object, keep: str = "") -> str:
    r"""``str(text)`` with every control character written as a Python escape.

    Class labels, feature names and column names come from files, and a file can
    hold terminal escape sequences (``"\x1b[2J"`` clears the screen, ``"\x1b]0;...\x07"``
    retitles the window). Every C0 control (``\x00``-``\x1f``), DEL (``\x7f``) and C1
    control (``\x80``-``\x9f``) is shown as ``repr`` shows it (``\x1b``, ``\t``,
    ``\n``), so what reaches the terminal is inert text.

    Parameters
    ----------
    text : object
        Anything; its ``str`` is escaped.
    keep : str, default ""
        Control characters to leave alone (``"\n"`` for text laid out in lines).

    Returns
    -------
    str

    Examples
    --------
    >>> print(printable("\x1b[31mA"))
    \x1b[31mA
    """

    def escape(match: re.Match[str]) -> str:
        character = match.group()
        return character if character in keep else repr(character)[1:-1]

    return _CONTROL_CHARACTERS.sub(escape, str(text))


class _TerminalText(io.TextIOBase):
    """A text stream that writes through :func:`printable` (line breaks and tabs kept).

    Every command's results go through it, so no text from a file (labels,
    names, a CSV's columns) reaches stdout with its control characters live.
    """

    def __init__(self, stream: IO[str]) -> None:
        super().__init__()
        self._stream = stream

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        # Tabs and line breaks move the cursor and nothing else: kept, so that tables
        # and predictions (a label holding a tab) print as they are.
        self._stream.write(printable(text, keep="\n\t"))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()


def _note(message: str) -> None:
    """One line on stderr (a note or an error), its control characters escaped."""
    print(printable(message), file=sys.stderr)


# --- argument types ----------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text}")
    return value


def _batch_size(text: str) -> int | None:
    if text.strip().lower() in ("full", "all", "none"):
        return None
    return _positive_int(text)


def _delimiter(text: str) -> str:
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "space": " "}
    value = named.get(text.lower(), text)
    if len(value) != 1:
        raise argparse.ArgumentTypeError(
            f"expected one character (or tab, comma, semicolon, space), got {text!r}"
        )
    return value


def _hidden_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer widths such as 128,64, got {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"layer widths must be positive integers, got {text!r}")
    return sizes


_FORMATTER = argparse.RawDescriptionHelpFormatter
def _optimizer_choices() -> tuple[str, ...]:
    """The update rules by name (the registry's, read when the parser is built) and L-BFGS."""
    return (*OPTIMIZERS, "lbfgs")
_Subparsers = argparse._SubParsersAction  # argparse's own (private) type for add_subparsers


def _add_data_arguments(parser: argparse.ArgumentParser, labels_help: str) -> None:
    parser.add_argument("data", metavar="DATA",
                        help="a CSV file with a header row, an .npz with arrays X (and y), "
                        "an IDX file of images (MNIST's format, optionally gzipped), a .npy "
                        "array of features (labels: --labels LABELS.npy), or (train) a "
                        "directory of X_000.npy, y_000.npy, ... shards")
    parser.add_argument("--target", metavar="COLUMN",
                        help="CSV: the name of the column holding the labels")
    parser.add_argument("--labels", metavar="FILE", help=labels_help)
    parser.add_argument("--delimiter", metavar="CHAR", type=_delimiter,
                        help="CSV: the field separator, one character or tab/comma/semicolon/"
                        "space (default: guessed from the header among , ; tab |)")
    parser.add_argument("--max-expansion", metavar="RATIO", type=_positive_float,
                        default=None,
                        help="gzipped CSV: refuse it once it expands beyond RATIO times its "
                        "size (and 64 MiB), a guard against decompression bombs "
                        "(default 100)")


# --- demo --------------------------------------------------------------------------------


def _add_demo(subparsers: _Subparsers[argparse.ArgumentParser]) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="run the seed's experiment (logistic regression by GD) or a variant",
        formatter_class=_FORMATTER,
        description=(
            "The seed's experiment: 1000 x 4 Gaussian inputs labelled by the teacher\n"
            "w = [0.3, 0.6, -0.7, -1.3], b = 0.2; logistic regression trained by full-batch\n"
            "gradient descent (learning rate 0.01, 5001 iterations), printing the loss and the\n"
            "accuracy on 200 fresh test examples every 100 iterations, then w and b.\n"
            "--model softmax and --model mlp run the seed's other variants."
        ),
        epilog=(
            "examples:\n"
            "  handnet demo                          the seed, as written\n"
            "  handnet demo --explain                one training step, every array shown\n"
            "  handnet demo --plot seed.png          curves and learned vs teacher weights\n"
            "  handnet demo --model mlp --animate spirals.gif\n"
            "                                        the decision boundary forming on spirals"
        ),
    )
    demo.add_argument(
        "--model", choices=("logistic", "softmax", "mlp", "cnn"), default="logistic",
        help="logistic (the seed), softmax (multi-class teacher), mlp (spirals) or cnn "
        "(a small convolutional network on scikit-learn's 8x8 digits; needs scikit-learn)",
    )
    demo.add_argument(
        "--optimizer", default=None,
        help="logistic: gd (full batch, default) or sgd (one example per step, reshuffled "
        "every epoch); mlp: gd, momentum, nesterov, adagrad, rmsprop, adam (default), adamw",
    )
    demo.add_argument("--learning-rate", type=_positive_float, default=None,
                      help="step size (default: 0.01 logistic, 0.5 softmax, 0.01 mlp, "
                      "0.003 cnn)")
    demo.add_argument("--iterations", "--epochs", dest="iterations", type=_positive_int,
                      default=None, help="GD iterations or SGD epochs (default: 5001 for GD)")
    demo.add_argument("--labels", choices=("round", "bernoulli", "argmax", "sample"),
                      default=None,
                      help="round: y = round(sigmoid(x.w+b)) as in the seed (separable); "
                      "bernoulli: y ~ Bernoulli(sigmoid(x.w+b)), which makes the teacher "
                      "recoverable (softmax: argmax or sample)")
    demo.add_argument("--n-samples", type=_positive_int, default=None,
                      help="training examples (default 1000 for logistic)")
    demo.add_argument("--hidden", type=_hidden_sizes, default=(64, 64),
                      help="mlp hidden layer widths, e.g. 64,64")
    demo.add_argument("--print-every", type=_positive_int, default=None,
                      help="print the loss every N iterations (default 100)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (same seed, same output)")
    demo.add_argument("--quiet", action="store_true", help="print only the final summary")
    demo.add_argument("--plot", metavar="FILE.png",
                      help="write the loss and accuracy curves (and the learned weights next "
                      "to the teacher's, or the mlp's decision boundary) to a PNG")
    demo.add_argument("--animate", metavar="FILE.gif",
                      help="mlp only: write a GIF of the decision boundary while it learns")
    demo.add_argument("--frames", type=_positive_int, default=40,
                      help="--animate: about how many frames (default 40)")
    demo.add_argument("--explain", action="store_true",
                      help="logistic only: walk through ONE training step, printing each "
                      "array's shape and first values, then stop")


def _run_demo(args: argparse.Namespace) -> int:
    from . import demo

    if args.explain:
        if args.model != "logistic":
            raise UsageError(
                "--explain walks through the seed's model: use it with --model logistic"
            )
        labels = {"argmax": "round", "sample": "bernoulli"}.get(args.labels, args.labels)
        demo.explain_step(
            seed=args.seed,
            n_samples=args.n_samples or 1000,
            learning_rate=args.learning_rate or 0.01,
            labels=labels or "round",
        )
        return 0
    if args.animate and args.model != "mlp":
        raise UsageError(
            "--animate draws a 2-D decision boundary: use it with --model mlp (spirals)"
        )
    for path in (args.plot, args.animate):
        _check_output_path(path)
    if args.plot or args.animate:
        _require_matplotlib()
    # --quiet keeps the final summary but drops the per-iteration lines.
    every = 0 if args.quiet else args.print_every
    if args.model == "logistic":
        optimizer = args.optimizer or "gd"
        if optimizer not in ("gd", "sgd"):
            raise UsageError(f"--optimizer for the logistic demo is gd or sgd, got {optimizer!r}")
        labels = {"argmax": "round", "sample": "bernoulli"}.get(args.labels, args.labels)
        demo.run_logistic(
            optimizer=optimizer,
            learning_rate=args.learning_rate or 0.01,
            iterations=args.iterations,
            labels=labels or "round",
            n_samples=args.n_samples or 1000,
            seed=args.seed,
            print_every=(100 if optimizer == "gd" else 1) if every is None else every,
            plot=args.plot,
        )
    elif args.model == "softmax":
        demo.run_softmax(
            learning_rate=args.learning_rate or 0.5,
            iterations=args.iterations,
            labels=args.labels or "sample",
            n_samples=args.n_samples or 5000,
            seed=args.seed,
            print_every=100 if every is None else every,
            plot=args.plot,
        )
    elif args.model == "cnn":
        if importlib.util.find_spec("sklearn") is None:
            raise UsageError(
                "the cnn demo trains on scikit-learn's digits: pip install 'handnet[sklearn]'"
            )
        demo.run_cnn(
            optimizer=args.optimizer or "adam",
            learning_rate=args.learning_rate or 0.003,
            iterations=args.iterations,
            seed=args.seed,
            print_every=5 if every is None else every,
            plot=args.plot,
        )
    else:
        # The spirals: 2 inputs, 3 classes.
        _check_network_fits([2, *args.hidden, 3], args.n_samples or 600,
                            _hidden_option(args.hidden))
        demo.run_mlp(
            hidden=args.hidden,
            optimizer=args.optimizer or "adam",
            learning_rate=args.learning_rate or 0.01,
            iterations=args.iterations,
            n_samples=args.n_samples or 600,
            seed=args.seed,
            print_every=50 if every is None else every,
            plot=args.plot,
            animate=args.animate,
            frames=args.frames,
        )
    return 0


# --- progress ----------------------------------------------------------------------------


def _seconds(value: float) -> str:
    if value < 1:
        return f"{value:.2f} s"
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _terminal_size(stream: IO[str]) -> tuple[int, int]:
    """Columns and rows of the terminal behind ``stream``, 0 when unknown."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return 0, 0
    return size.columns, size.lines


class TrainingProgress:
    """A training callback that reports each epoch: a progress bar, log lines or nothing.

    Pass it to ``fit(..., callbacks=[progress])``; it is called as
    ``progress(trainer)`` after every epoch and reads ``trainer.epoch``,
    ``trainer.history.loss`` and ``trainer.history.validation_score``. Call
    :meth:`close` when training ends.

    Parameters
    ----------
    total : int
        The number of epochs asked for (training may stop earlier).
    mode : {"auto", "bar", "log", "none"}
        ``"auto"``: a tqdm bar when ``stream`` is a terminal, log lines
        otherwise. ``"bar"`` falls back to log lines when tqdm is not installed.
    stream : file, default sys.stderr
        Where to report (stderr keeps stdout free for results).
    lines : int, default 20
        In log mode, at most about this many lines over the whole run: the first
        and the last epoch always, in between every ``total // lines`` epochs
        but no more than one line per ``interval`` seconds.
    interval : float, default 1.0
    score_name : str
        What the validation score is.
    """

    def __init__(
        self,
        total: int,
        mode: str = "auto",
        stream: IO[str] | None = None,
        lines: int = 20,
        interval: float = 1.0,
        score_name: str = "validation accuracy",
    ) -> None:
        self.total = max(int(total), 1)
        self.stream = stream if stream is not None else sys.stderr
        self.score_name = score_name
        self.every = max(1, self.total // max(lines, 1))
        self.interval = float(interval)
        self.start = time.perf_counter()
        self.last_line = -math.inf
        self.last_epoch: tuple[int, float, float | None] | None = None
        self.printed_epoch = 0
        #: The epoch training started from (more than 0 for a resumed run), for the ETA.
        self.first_epoch: int | None = None
        self.bar: Any = None
        if mode == "auto":
            is_terminal = bool(getattr(self.stream, "isatty", lambda: False)())
            mode = "bar" if is_terminal else "log"
        if mode == "bar":
            try:
                from tqdm import tqdm
            except ImportError:
                mode = "log"  # tqdm is an optional extra: plain lines still say enough
            else:
                # Follow the terminal's size, unless it reports none (a fresh pty, some
                # CI runners): tqdm would then draw nothing at all.
                columns, rows = _terminal_size(self.stream)
                self.bar = tqdm(total=self.total, file=self.stream, unit="epoch", leave=True,
                                desc="training", dynamic_ncols=columns > 0,
                                ncols=None if columns > 0 else 80,
                                nrows=None if rows > 0 else 24)
        if mode not in ("bar", "log", "none"):
            raise ValueError(f"progress mode must be auto, bar, log or none, got {mode!r}")
        self.mode = mode

    def __call__(self, trainer: Any) -> None:
        epoch = int(trainer.epoch)
        history = trainer.history
        loss = history.loss[-1] if history.loss else float("nan")
        score = history.validation_score[-1] if history.validation_score else None
        if self.first_epoch is None:
            self.first_epoch = max(epoch - 1, 0)
            if self.bar is not None and self.first_epoch:
                # A resumed run: its earlier epochs are no part of this run's rate.
                self.bar.n = self.bar.last_print_n = self.bar.initial = self.first_epoch
        if self.bar is not None:
            postfix = {"loss": f"{loss:.4g}"}
            if score is not None:
                postfix["val"] = f"{score:.4f}"
            self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(epoch - self.bar.n)  # tqdm's ETA is the "time left"
            return
        if self.mode != "log":
            return
        self.last_epoch = (epoch, loss, score)
        now = time.perf_counter()
        due = epoch % self.every == 0 and now - self.last_line >= self.interval
        if epoch == self.first_epoch + 1 or epoch >= self.total or due:
            self._log(epoch, loss, score, now)

    def _log(self, epoch: int, loss: float, score: float | None, now: float) -> None:
        self.last_line = now
        self.printed_epoch = epoch
        elapsed = now - self.start
        line = f"epoch {epoch}/{self.total}: loss {loss:.6g}"
        if score is not None:
            line += f", {self.score_name} {score:.4f}"
        line += f" ({_seconds(elapsed)}"
        if epoch < self.total:
            done = max(epoch - (self.first_epoch or 0), 1)
            line += f", about {_seconds(elapsed / done * (self.total - epoch))} left"
        print(line + ")", file=self.stream, flush=True)

    def close(self) -> None:
        """Finish the bar, or log the last epoch if training stopped between lines."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.mode == "log" and self.last_epoch and self.last_epoch[0] != self.printed_epoch:
            self._log(*self.last_epoch, time.perf_counter())


# --- helpers -----------------------------------------------------------------------------


def _require_matplotlib() -> None:
    """Fail before training, not after it, when --plot cannot be honoured."""
    from .plot import _matplotlib

    _matplotlib()


def _writable(path: str) -> bool:
    """Whether this process may write ``path`` (permissions, ACLs, a read-only file system)."""
    effective = os.access in os.supports_effective_ids
    return os.access(path, os.W_OK, effective_ids=effective)


def _check_output_path(path: str | None) -> None:
    """Refuse an output path that cannot be written, before any work is done.

    The folder must exist and be writable (files are written atomically: a
    temporary file next to the target, then a rename), and an existing file
    must not be read-only. The error names the user's path, not a temporary file.
    """
    if not path:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(2, "the folder to write into does not exist", path)
    if os.path.isdir(path):
        raise IsADirectoryError(21, "is a directory; give a file name", path)
    if not _writable(folder):
        raise PermissionError(
            13, f"cannot write into the folder {folder} (no write permission, or a "
            "read-only file system); pick a path in a folder you can write to", path,
        )
    if os.path.exists(path) and not _writable(path):
        raise PermissionError(
            13, "the file exists and is read-only; remove it, make it writable or pick "
            "another path", path,
        )


def _check_input_path(path: str, what: str) -> None:
    if not os.path.exists(path):
        raise FileNotFoundError(2, f"no such {what}", path)
    if os.path.isdir(path):
        raise IsADirectoryError(21, f"is a directory, not a {what}", path)


def _max_expansion(args: argparse.Namespace) -> float:
    from .data_files import DEFAULT_MAX_EXPANSION

    value = getattr(args, "max_expansion", None)
    return DEFAULT_MAX_EXPANSION if value is None else float(value)


_PARAMETER_COPIES = 5
"""Copies of the parameter vector training holds: the parameters, their gradients, two
optimizer moments (Adam) and the best epoch's parameters."""

_COPIES_PER_ACTIVATION = 2
"""Arrays per layer unit and row pushed through the network at once: the pre-activations and
the activations (the inputs are the data, already in memory)."""


def _memory_limit() -> int | None:
    """The memory this process can have at most: physical memory, or a cgroup's limit."""
    limits = []
    with contextlib.suppress(AttributeError, ValueError, OSError):  # not on every platform
        limits.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path, encoding="ascii") as stream:
                text = stream.read().strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text.isdigit():
            limits.append(int(text))
    positive = [limit for limit in limits if limit > 0]
    return min(positive) if positive else None


def _size_text(n_bytes: float) -> str:
    """``1.5 GiB``: a byte count for a message."""
    unit = "bytes"
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n_bytes < 1024 or unit == "PiB":
            break
        n_bytes /= 1024
    return f"{n_bytes:.3g} {unit}"


def _check_network_fits(widths: Sequence[int], rows: int, option: str, itemsize: int = 8) -> None:
    """Refuse a network that cannot fit in memory, before anything is allocated.

    ``widths`` are the layer widths, inputs to outputs (``[n_features, *hidden,
    n_outputs]``), ``rows`` the most rows pushed through the network at once.
    The estimate (``_PARAMETER_COPIES`` copies of the parameters and
    ``_COPIES_PER_ACTIVATION`` arrays per row and unit) is compared with the
    machine's memory: beyond it, NumPy would fail half-way with a MemoryError, or
    the system would kill the process.

    Raises
    ------
    UsageError
        Naming ``option`` (e.g. ``--hidden 99999999999``), the parameter count and
        the memory it would take.
    """
    parameters = sum((a + 1) * b for a, b in itertools.pairwise(widths))
    need = itemsize * (_PARAMETER_COPIES * parameters
                       + _COPIES_PER_ACTIVATION * max(rows, 1) * sum(widths[1:]))
    limit = _memory_limit()
    if limit is None:
        limit = 2**40  # unknown: 1 TiB, well beyond any sane network on one machine
    if need > limit:
        shape = "-".join(str(width) for width in widths)
        raise UsageError(
            f"{option}: a {shape} network has {parameters:,} parameters and training it "
            f"needs about {_size_text(need)} of memory for {max(rows, 1):,} rows at once, "
            f"more than this machine's {_size_text(limit)}; use narrower or fewer hidden "
            "layers (or fewer rows)"
        )


def _model_files() -> Any:
    """handnet.io, where ``save`` and ``load`` live (imported only when a model file is used)."""
    return importlib.import_module(".io", __package__)


def _save_model(model: Any, path: str) -> None:
    try:
        _model_files().save(model, path)
    except OSError as error:
        # Name the user's path: the failing file may be the temporary one beside it.
        raise OSError(
            error.errno, f"cannot write the model file ({error.strerror or error})", path
        ) from None


def _load_model(path: str) -> Any:
    _check_input_path(path, "model file")
    return _model_files().load(path)


def _load_estimator(path: str, command: str) -> Any:
    model = _load_model(path)
    if not hasattr(model, "predict") or not hasattr(model, "n_features_in_"):
        raise ValueError(
            f"{path} holds a {type(model).__name__}, not a trained model; "
            f"'handnet {command}' needs a file saved by 'handnet train' or handnet.save(model)"
        )
    return model


def _is_classifier(model: Any) -> bool:
    return hasattr(model, "classes_") and hasattr(model, "predict_proba")


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
    from .layers import Dense

    first = network.layers[0]
    if not isinstance(first, Dense):
        raise TypeError("the first layer must be Dense to fold standardisation into it")
    inverse = (1.0 / np.asarray(scale, dtype=np.float64)).astype(first.weights.dtype)
    shift = (np.asarray(mean, dtype=np.float64) * inverse).astype(first.weights.dtype)
    new_bias = first.bias - shift @ first.weights
    # In-place writes: the layer's arrays are views of the network's flat vector.
    first.weights *= inverse[:, None]
    first.bias[...] = new_bias


def _short_list(values: Sequence[Any], limit: int = 10) -> str:
    shown = ", ".join(printable(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


def _describe_model(model: Any) -> str:
    """``MLPClassifier 2-32-16-1 (relu)``: the class and the layer widths."""
    from .layers import Activation, Dense, Dropout

    layers = model.network_.layers
    if not all(isinstance(layer, (Activation, Dense, Dropout)) for layer in layers):
        return f"{type(model).__name__} " + " -> ".join(repr(layer) for layer in layers)
    dense = [layer for layer in layers if isinstance(layer, Dense)]
    widths = [str(dense[0].n_inputs)] + [str(layer.n_outputs) for layer in dense]
    activations = sorted({layer.name for layer in layers if isinstance(layer, Activation)})
    dropout = [layer.rate for layer in layers if isinstance(layer, Dropout)]
    text = f"{type(model).__name__} {'-'.join(widths)}"
    if activations:
        text += f" ({', '.join(activations)}"
        text += f", dropout {dropout[0]:g})" if dropout else ")"
    return text


def _classification_numbers(
    model: Any, X: NDArray[Any], y: NDArray[Any]
) -> tuple[float, float]:
    """Accuracy and log loss of a classifier on ``X``, ``y``."""
    from .metrics import log_loss

    accuracy = float(np.mean(model.predict(X) == y))
    return accuracy, log_loss(y, model.predict_log_proba(X), model.classes_)


# --- train -------------------------------------------------------------------------------


def _add_train(subparsers: _Subparsers[argparse.ArgumentParser]) -> None:
    train = subparsers.add_parser(
        "train",
        help="train a classifier on a CSV, NPZ, NPY or IDX file (or .npy shards)",
        formatter_class=_FORMATTER,
        description=(
            "Train a classifier on your data and (with --save) keep it in a model file.\n"
            "A fraction of the rows (--validation-fraction) is held out, stratified by class;\n"
            "the epoch with the lowest validation loss is kept. At the end a summary\n"
            "gives the accuracy and loss on both parts, the time taken and the model file."
        ),
        epilog=(
            "examples:\n"
            "  handnet train data.csv --target label --standardize --save model.npz\n"
            "  handnet train data.csv --target species --model mlp --hidden 32,16 --epochs 300\n"
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
    train.add_argument("--model", choices=("logistic", "softmax", "mlp", "cnn"), default=None,
                       help="logistic (2 classes), softmax (any number of classes), mlp "
                       "(hidden layers) or cnn (a small convolutional network, for images: "
                       "IDX files or NPZ arrays of shape (n, h, w) or (n, c, h, w)); default: "
                       "mlp if --hidden, --activation or --dropout is given, else logistic "
                       "for 2 classes and softmax for more")
    train.add_argument("--hidden", type=_hidden_sizes, default=None, metavar="SIZES",
                       help="mlp: hidden layer widths, e.g. 128,64 (default 64)")
    train.add_argument("--activation", choices=hidden_activations(),
                       default=None, help="mlp: hidden activation (default relu)")
    train.add_argument("--dropout", type=_fraction, default=None, metavar="RATE",
                       help="mlp: dropout rate after each hidden layer (default 0)")
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
    train.add_argument("--seed", type=int, default=0,
                       help="random seed: split, initial weights, shuffling (default 0)")
    train.add_argument("--save", metavar="MODEL", help="write the trained model to this file")
    train.add_argument("--checkpoint", metavar="PATH",
                       help="keep the run's progress in this file (parameters, optimizer and "
                       "generator state, epoch, history): written every --checkpoint-every "
                       "epochs, at the end, and on Ctrl-C")
    train.add_argument("--checkpoint-every", type=_positive_int, default=None, metavar="K",
                       help="epochs between checkpoints (default 1; needs --checkpoint)")
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


def _hidden_option(hidden: Sequence[int]) -> str:
    return "--hidden " + ",".join(str(width) for width in hidden)


def _check_model_fits(
    args: argparse.Namespace, kind: str, n_features: int, n_classes: int, rows: int
) -> None:
    """:func:`_check_network_fits` for the model ``train`` is about to build."""
    if kind == "cnn":
        return  # sized by its layers (small); predicting goes a block of rows at a time
    hidden = (args.hidden or (64,)) if kind == "mlp" else ()
    n_outputs = 1 if n_classes == 2 else n_classes
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
    if args.standardize:
        raise UsageError(
            "--standardize scales each column on its own, which --model cnn does not take: "
            "8-bit images are already scaled to [0, 1]"
        )


def _make_model(
    args: argparse.Namespace, kind: str, batch_size: int | None, sample_shape: Any = None
) -> Any:
    from .models import LogisticRegression, MLPClassifier, SoftmaxRegression

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
    if kind == "cnn":
        from .neural_net import NeuralNetClassifier, small_cnn

        return NeuralNetClassifier(
            small_cnn(), input_shape=sample_shape, alpha=1e-4 if args.l2 is None else args.l2,
            **common,
        )
    if kind == "mlp":
        return MLPClassifier(
            hidden_layer_sizes=args.hidden or (64,), activation=args.activation or "relu",
            dropout=args.dropout or 0.0, alpha=1e-4 if args.l2 is None else args.l2, **common,
        )
    alpha = 0.0 if args.l2 is None else args.l2
    if kind == "logistic":
        return LogisticRegression(alpha=alpha, **common)
    return SoftmaxRegression(alpha=alpha, **common)


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
        from .training import INTERRUPTED_EVENT

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


def _open_streamed(args: argparse.Namespace) -> tuple[Any, Any, str] | None:
    """``(X, y, source)`` opened from disk when DATA is a ``.npy`` file or a shard directory.

    A ``.npy`` file takes its labels from ``--labels LABELS.npy``; a directory
    holds ``X_<k>.npy`` and ``y_<k>.npy`` pairs (see
    :func:`handnet.streaming.open_shards`). Both are memory-mapped: nothing is
    read yet. Other files give ``None``.
    """
    from .data_files import DataFileError, detect_format, open_npy
    from .streaming import open_shards

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
    from .streaming import is_out_of_core, storage_bounds

    return is_out_of_core(X) and len(storage_bounds(X)) > 2


def _run_train_streamed(
    args: argparse.Namespace, out: IO[str], mlp_flags: list[str], X: Any, y: Any, source: str
) -> int:
    """``handnet train`` on data read from disk block by block (see :mod:`handnet.streaming`).

    The validation rows are whole storage blocks held out by the model's early
    stopping; the summary gives the last epoch's training loss and the validation
    accuracy of the epoch kept (the lowest validation loss). ``--standardize`` and ``--plot`` need
    the data in memory and are refused.
    """
    from .streaming import scan_labels

    for flag in ("standardize", "plot"):
        if getattr(args, flag):
            raise UsageError(
                f"--{flag} needs the data in memory; it is not available when training from "
                ".npy files on disk (standardise the files beforehand)"
            )
    classes, _ = scan_labels(y)
    if len(classes) < 2:
        raise ValueError(
            f"{source}: the labels hold a single class ({classes.tolist()}); "
            "a classifier needs examples of at least two"
        )
    kind = args.model or ("mlp" if mlp_flags else "logistic" if len(classes) == 2 else "softmax")
    if kind == "logistic" and len(classes) != 2:
        raise UsageError(
            f"--model logistic is for two classes, but the labels hold {len(classes)}; "
            "use --model softmax or --model mlp"
        )
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
    write = out.write
    n_train = int(model.t_ // max(model.n_iter_, 1)) if model.n_iter_ else n_rows
    write(
        f"handnet train: {_describe_model(model)} on {source}, read from disk block by block: "
        f"{n_train} training and {n_rows - n_train} validation rows, {X.shape[1]} features, "
        f"{len(classes)} classes {_short_list(classes.tolist())}\n"
    )
    if args.optimizer == "lbfgs":
        unit, settings = "iterations", "lbfgs, full batch"
    else:
        batch = "full batch" if model.batch_size is None else f"batch size {model.batch_size}"
        unit = "epochs"
        settings = f"{args.optimizer}, learning rate {args.learning_rate:g}, {batch}"
    stopped = " (stopped early)" if model.n_iter_ < args.epochs else ""
    write(f"trained {model.n_iter_} {unit}{stopped} in {_seconds(seconds)}: {settings}\n")
    if model.loss_curve_:
        write(f"training:   loss {model.loss_curve_[-1]:.4f} (mean over the last epoch)\n")
    scores = model.validation_scores_ or []
    best_epoch = getattr(model, "best_epoch_", None)
    if scores and best_epoch is not None:
        validation_loss = model.validation_loss_curve_[best_epoch - 1]
        write(f"validation: accuracy {scores[best_epoch - 1]:.4f}   loss "
              f"{validation_loss:.4f}   (epoch {best_epoch} of {len(scores)} kept: the "
              "lowest validation loss)\n")
    if args.save:
        _save_model(model, args.save)
        write(f"model saved to {args.save}\n")
    else:
        write("model not saved (use --save MODEL to keep it)\n")
    return 0


def _run_train(args: argparse.Namespace, out: IO[str]) -> int:
    from .data_files import load_dataset
    from .datasets import Standardizer, train_test_split

    mlp_flags = [flag for flag, value in (("--hidden", args.hidden),
                                          ("--activation", args.activation),
                                          ("--dropout", args.dropout)) if value is not None]
    if mlp_flags and args.model not in (None, "mlp"):
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

    streamed = _open_streamed(args)
    if streamed is not None and _needs_streaming(streamed[0]):
        return _run_train_streamed(args, out, mlp_flags, *streamed)
    if streamed is not None:
        # .npy data small enough for one block: read it and train as any file.
        from .data_files import Dataset, _as_feature_matrix, _as_labels

        X_small, y_small, source = streamed
        X_read = _as_feature_matrix(np.asarray(X_small[0 : len(X_small)]), source)
        data = Dataset(X=X_read, y=_as_labels(np.asarray(y_small[0 : len(y_small)]),
                                               X_read.shape[0], source),
                       feature_names=None, target_name=None, source=source)
    else:
        data = load_dataset(args.data, target=args.target, labels=args.labels,
                            delimiter=args.delimiter, need_labels=True,
                            max_expansion=_max_expansion(args))
    assert data.y is not None
    classes = np.unique(data.y)
    if len(classes) < 2:
        raise ValueError(
            f"{data.source}: the labels hold a single class ({classes.tolist()}); "
            "a classifier needs examples of at least two"
        )
    # Without --model: an mlp if its flags were given, else the linear model that fits.
    kind = args.model or ("mlp" if mlp_flags else "logistic" if len(classes) == 2 else "softmax")
    if kind == "logistic" and len(classes) != 2:
        raise UsageError(
            f"--model logistic is for two classes, but the labels hold {len(classes)}; "
            "use --model softmax or --model mlp"
        )

    _check_images(args, kind, data.sample_shape, data.source)

    # Hold out a stratified validation set before anything is learned from the data.
    fraction = 0.1 if args.validation_fraction is None else args.validation_fraction
    if fraction > 0:
        X_train, X_val, y_train, y_val = train_test_split(
            data.X, data.y, test_size=fraction, stratify=True,
            random_state=args.seed,
        )
    else:
        X_train, y_train, X_val, y_val = data.X, data.y, None, None
    scaler = None
    X_fit, X_val_fit = X_train, X_val
    if args.standardize:
        scaler = Standardizer().fit(X_train)  # training rows only: no peeking at validation
        X_fit = scaler.transform(X_train)
        X_val_fit = None if X_val is None else scaler.transform(X_val)

    n_train = X_fit.shape[0]
    batch_size = None if args.batch_size is None else min(args.batch_size, n_train)
    # The summary scores every row at once, hence all of them for the activations.
    _check_model_fits(args, kind, data.n_features, len(classes), data.n_samples)
    model = _make_model(args, kind, batch_size, data.sample_shape)
    validation = None if X_val_fit is None or y_val is None else (X_val_fit, y_val)

    curves = None
    callbacks: list[Callable[[Any], None]] = []
    if args.plot:
        from .plot import TrainingCurves

        curves = TrainingCurves()
        # Training accuracy on at most 2000 rows: the curve's shape costs little.
        sample = np.random.default_rng([args.seed, 3]).permutation(n_train)[:2000]
        X_sample, y_sample = X_fit[sample], y_train[sample]

        def record(trainer: Any) -> None:
            # The validation loss and accuracy the model records itself (its early
            # stopping watches them); the training accuracy is the plot's own.
            assert curves is not None
            curves.add("training accuracy", trainer.epoch, model.score(X_sample, y_sample))

        callbacks.append(record)
    progress = TrainingProgress(args.epochs, mode="none" if args.quiet else args.progress)
    callbacks.append(progress)

    seconds, interrupted = _fit_model(model, args, X_fit, y_train, progress,
                                      validation_data=validation, callbacks=callbacks)
    if interrupted and args.checkpoint is not None:
        # The checkpoint holds the run as trained, on standardised inputs (nothing is
        # folded into it), so that --resume continues it exactly.
        return _stopped_with_checkpoint(args, model)

    if scaler is not None:
        # Every checkpoint is written by now: the fold changes the model in memory
        # (and --save), never the run kept in --checkpoint.
        fold_standardization(model.network_, scaler.mean_, scaler.scale_)

    # From here on the model takes raw inputs: every number below is what the saved
    # model will give.
    train_accuracy, train_loss = _classification_numbers(model, X_train, y_train)
    write = out.write
    n_val = 0 if X_val is None else X_val.shape[0]
    write(
        f"handnet train: {_describe_model(model)} on {data.source}: {n_train} training and "
        f"{n_val} validation rows, {data.n_features} features, {len(classes)} classes "
        f"{_short_list(classes.tolist())}\n"
    )
    lbfgs = args.optimizer == "lbfgs"
    if lbfgs:  # a line search picks each step: no learning rate, no batches
        unit, settings = "iterations", "lbfgs, full batch"
        stopped = " (converged)" if model.n_iter_ < args.epochs else ""
    else:
        batch = "full batch" if model.batch_size is None else f"batch size {model.batch_size}"
        unit = "epochs"
        settings = f"{args.optimizer}, learning rate {args.learning_rate:g}, {batch}"
        stopped = " (stopped early)" if model.n_iter_ < args.epochs else ""
    write(
        f"trained {model.n_iter_} {unit}{stopped} in {_seconds(seconds)}: {settings}"
        + (", inputs standardised" if scaler is not None else "") + "\n"
    )
    write(f"training:   accuracy {train_accuracy:.4f}   log loss {train_loss:.4f}\n")
    if X_val is not None and y_val is not None:
        val_accuracy, val_loss = _classification_numbers(model, X_val, y_val)
        scores = model.validation_scores_ or []
        best_epoch = getattr(model, "best_epoch_", None)
        kept = (f"epoch {best_epoch} of {len(scores)} kept: the lowest validation loss"
                if scores and best_epoch is not None else "the last iteration kept")
        write(f"validation: accuracy {val_accuracy:.4f}   log loss {val_loss:.4f}   ({kept})\n")
    if args.plot and curves is not None:
        from .plot import save_figure, training_figure

        curves.extend("training loss", model.loss_curve_)
        curves.extend("validation loss", getattr(model, "validation_loss_curve_", None) or [])
        curves.extend("validation accuracy", model.validation_scores_ or [])
        curves.kept_epoch = getattr(model, "best_epoch_", None)
        figure = training_figure(
            curves, model=model, X=data.X if data.n_features == 2 else None, y=data.y,
            title=f"{_describe_model(model)} on {os.path.basename(data.source)}",
            feature_names=data.feature_names,
        )
        write(f"plot written to {save_figure(figure, args.plot)}\n")
    if data.feature_names is not None:
        # scikit-learn's attribute, set last (the model warns when it is then given a
        # plain array): predict and evaluate read a CSV's columns by these names.
        model.feature_names_in_ = np.asarray(data.feature_names, dtype=object)
    if args.save:
        _save_model(model, args.save)
        write(f"model saved to {args.save}\n")
    else:
        write("model not saved (use --save MODEL to keep it)\n")
    return 0


# --- predict and evaluate ----------------------------------------------------------------


def _read_for_model(model: Any, args: argparse.Namespace, need_labels: bool) -> Any:
    """Read DATA the way ``model`` was trained: its CSV columns by name when it knows them."""
    from .data_files import csv_header, detect_format, load_dataset, read_csv

    names = getattr(model, "feature_names_in_", None)
    kind = detect_format(args.data)
    target = args.target
    if kind == "csv" and names is not None:
        names = [str(name) for name in names]
        if target is None and need_labels:
            # The label column is the one column that is not a feature.
            extra = [c for c in csv_header(args.data, args.delimiter) if c not in names]
            if len(extra) != 1:
                raise UsageError(
                    f"{args.data}: name the label column with --target "
                    f"(columns that are not features: {extra or 'none'})"
                )
            target = extra[0]
        return read_csv(args.data, target=target, delimiter=args.delimiter, features=names,
                        max_expansion=_max_expansion(args))
    data = load_dataset(args.data, target=target, labels=args.labels, delimiter=args.delimiter,
                        need_labels=need_labels, max_expansion=_max_expansion(args))
    n_expected = int(model.n_features_in_)
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


def _add_predict(subparsers: _Subparsers[argparse.ArgumentParser]) -> None:
    predict = subparsers.add_parser(
        "predict",
        help="predict the class of every row of a data file with a saved model",
        formatter_class=_FORMATTER,
        description=(
            "Write one prediction per row of DATA as CSV (a 'prediction' column, and with\n"
            "--proba one 'proba_<class>' column per class) to --output or to stdout.\n"
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
    from .data_files import write_predictions

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
    if args.output:
        with open(args.output, "w", newline="", encoding="utf-8") as stream:
            write_predictions(stream, predictions, probabilities, classes)
        _note(f"{len(predictions)} predictions written to {args.output}")
    else:
        write_predictions(out, predictions, probabilities, classes)
    return 0


def _add_evaluate(subparsers: _Subparsers[argparse.ArgumentParser]) -> None:
    evaluate = subparsers.add_parser(
        "evaluate",
        help="accuracy, log loss, confusion matrix and per-class scores on labelled data",
        formatter_class=_FORMATTER,
        description=(
            "Score a saved classifier on labelled data: accuracy, log loss (mean\n"
            "cross-entropy), the confusion matrix (rows: true class, columns: predicted)\n"
            "and each class's precision, recall, F1 and support. For a CSV, --target names\n"
            "the label column; it may be left out when it is the only column that is not\n"
            "one of the model's features."
        ),
        epilog="example:\n  handnet evaluate model.npz test.csv --target label",
    )
    evaluate.add_argument("model", metavar="MODEL", help="a model file (handnet train --save)")
    _add_data_arguments(evaluate, "IDX: the file of labels that goes with the images")


def _run_evaluate(args: argparse.Namespace, out: IO[str]) -> int:
    from .metrics import classification_report

    model = _load_estimator(args.model, "evaluate")
    data = _read_for_model(model, args, need_labels=True)
    assert data.y is not None
    with _columns_checked():
        predictions = np.asarray(model.predict(data.X))
        if not _is_classifier(model):
            # A regressor (e.g. an MLPRegressor saved from Python): the regression numbers.
            residual = predictions.reshape(len(data.y), -1) - data.y.reshape(len(data.y), -1)
            out.write(f"examples: {len(data.y)}\nR^2: {model.score(data.X, data.y):.4f}\n"
                      f"mean squared error: {float(np.mean(residual**2)):.6g}\n")
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
    return 0


# --- info --------------------------------------------------------------------------------


def _add_info(subparsers: _Subparsers[argparse.ArgumentParser]) -> None:
    info = subparsers.add_parser(
        "info",
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
    from .network import Sequential

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
    if hasattr(model, "classes_"):
        write(f"classes: {len(model.classes_)} {_short_list(model.classes_.tolist())}\n")
    write("hyperparameters:\n")
    for name, value in sorted(model.get_params(deep=False).items()):
        write(f"  {name} = {value!r}\n")
    losses = list(getattr(model, "loss_curve_", None) or [])
    write("training history:\n")
    if not losses:
        write("  (not recorded in this file)\n")
        return 0
    write(f"  epochs: {getattr(model, 'n_iter_', len(losses))}\n")
    write(f"  loss: first {losses[0]:.6g}, last {losses[-1]:.6g}, lowest {min(losses):.6g} "
          f"(epoch {int(np.argmin(losses)) + 1})\n")
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
    return 0


# --- gradcheck ---------------------------------------------------------------------------


def _add_gradcheck(subparsers: _Subparsers[argparse.ArgumentParser]) -> None:
    check = subparsers.add_parser(
        "gradcheck",
        help="check backpropagation against finite differences, layer by layer",
        formatter_class=_FORMATTER,
        description=(
            "Compare the gradients backpropagation computes with central finite\n"
            "differences, (J(theta + eps) - J(theta - eps)) / 2 eps, one parameter at a time,\n"
            "on random data, in float64; print the worst relative error of each layer.\n"
            "Without MODEL a small network is built (--features, --hidden, --classes,\n"
            "--activation); with MODEL the saved model's network and loss are checked.\n"
            "Exit status 0 when every error is within --tolerance, 1 otherwise."
        ),
        epilog=(
            "examples:\n"
            "  handnet gradcheck\n"
            "  handnet gradcheck --hidden 16,8 --activation relu --classes 2 --l2 0.01\n"
            "  handnet gradcheck model.npz"
        ),
    )
    check.add_argument("model", metavar="MODEL", nargs="?", help="a model file (optional)")
    check.add_argument("--features", type=_positive_int, default=4, help="inputs (default 4)")
    check.add_argument("--hidden", type=_hidden_sizes, default=(8, 8), metavar="SIZES",
                       help="hidden layer widths (default 8,8)")
    check.add_argument("--classes", type=_positive_int, default=3,
                       help="2 gives one sigmoid output, more a softmax (default 3)")
    check.add_argument("--activation", choices=hidden_activations(),
                       default="tanh", help="hidden activation (default tanh)")
    check.add_argument("--dropout", type=_fraction, default=0.0, metavar="RATE",
                       help="dropout after each hidden layer (checked with one fixed mask)")
    check.add_argument("--samples", type=_positive_int, default=16,
                       help="random examples (default 16)")
    check.add_argument("--l2", type=_nonnegative_float, default=None, metavar="ALPHA",
                       help="L2 strength (default 0.01; for MODEL, its own alpha)")
    check.add_argument("--tolerance", type=_positive_float, default=1e-6,
                       help="largest relative error that passes (default 1e-6)")
    check.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def _float64_copy(network: Any) -> Any:
    """The same network in float64 (finite differences in float32 are too noisy)."""
    return network.astype(np.float64)


def _network_inputs(network: Any) -> int:
    """How many features a bare network takes: its first sized layer says.

    A ``Reshape`` first gives the image size; otherwise the first ``Dense``,
    reached through layers that keep the shape (activations, dropout).
    """
    from .layers import Activation, Dense, Dropout, Reshape

    for layer in network.layers:
        if isinstance(layer, Reshape):
            return math.prod(layer.shape)
        if isinstance(layer, Dense) and layer.n_inputs is not None:
            return int(layer.n_inputs)
        if not isinstance(layer, (Activation, Dropout)):
            break
    raise ValueError(
        "cannot tell how many features this network takes: start it with a Dense or a "
        "Reshape layer"
    )


def _run_gradcheck(args: argparse.Namespace, out: IO[str]) -> int:
    from .gradcheck import check_network_parameters
    from .layers import Activation, Dense, Dropout, Layer
    from .losses import BinaryCrossEntropy, Loss, MeanSquaredError, SoftmaxCrossEntropy
    from .network import Sequential

    rng = np.random.default_rng(args.seed)
    loss: Loss
    if args.model:
        model = _load_model(args.model)
        source = model if isinstance(model, Sequential) else getattr(model, "network_", None)
        if source is None:
            raise ValueError(f"{args.model} holds an unfitted {type(model).__name__}: no network")
        # A copy: the loaded model is left alone, and the check runs in float64.
        network = _float64_copy(source)
        n_features = (
            _network_inputs(network)
            if isinstance(model, Sequential)
            else int(model.n_features_in_)
        )
        n_outputs = int(network.predict(np.zeros((1, n_features))).shape[1])
        if isinstance(model, Sequential):
            loss = SoftmaxCrossEntropy() if n_outputs > 1 else BinaryCrossEntropy()
            l2 = 0.0 if args.l2 is None else args.l2
        else:
            loss = model._loss()
            l2 = float(model.alpha) if args.l2 is None else args.l2
        title = f"{type(model).__name__} from {args.model}"
    else:
        n_outputs = 1 if args.classes <= 2 else args.classes
        _check_network_fits(
            [args.features, *args.hidden, n_outputs], args.samples,
            f"--features {args.features} {_hidden_option(args.hidden)} --classes "
            f"{args.classes} --samples {args.samples}",
        )
        layers: list[Layer] = []
        width = args.features
        for size in args.hidden:
            layers.append(Dense(width, size, init="xavier", random_state=rng))
            layers.append(Activation(args.activation))
            if args.dropout:
                layers.append(Dropout(args.dropout, random_state=rng))
            width = size
        layers.append(Dense(width, n_outputs, init="xavier", random_state=rng))
        network = Sequential(layers)
        # Random biases, so that a wrong bias gradient cannot hide behind zeros.
        for layer in network.layers:
            if isinstance(layer, Dense):
                layer.bias[...] = 0.1 * rng.standard_normal(layer.bias.shape)
        loss = BinaryCrossEntropy() if n_outputs == 1 else SoftmaxCrossEntropy()
        l2 = 0.01 if args.l2 is None else args.l2
        n_features = args.features
        title = "a random network"

    X = rng.standard_normal((args.samples, n_features))
    if isinstance(loss, MeanSquaredError):
        Y = rng.standard_normal((args.samples, n_outputs))
    elif n_outputs == 1:
        Y = rng.integers(0, 2, (args.samples, 1)).astype(np.float64)
    else:
        Y = np.eye(n_outputs)[rng.integers(0, n_outputs, args.samples)]

    checks = check_network_parameters(network, loss, X, Y, l2=l2)
    out.write(
        f"handnet gradcheck: {title}, {type(loss).__name__}, L2 {l2:g}, "
        f"{args.samples} random examples, float64, central differences\n"
    )
    out.write(f"{'layer':<32} {'worst relative error':>22}\n")
    worst_by_layer: dict[str, float] = {}
    verdicts: dict[str, set[str]] = {}
    for key, check in checks.items():
        index = int(key.split(".", 1)[0])
        name = f"{index}: {network.layers[index]!r}"
        worst_by_layer[name] = max(worst_by_layer.get(name, 0.0), check.relative_error)
        verdicts.setdefault(name, set()).add(check.verdict(args.tolerance))
    for name, error in worst_by_layer.items():
        # A wrong gradient anywhere in the layer outweighs round-off elsewhere in it.
        verdict = next(v for v in ("FAILED", "round-off", "ok") if v in verdicts[name])
        out.write(f"{name:<32} {error:>22.3e}  {verdict}\n")
    worst = max((check.relative_error for check in checks.values()), default=0.0)
    found = set().union(*verdicts.values()) if verdicts else set()
    if "FAILED" in found or "round-off" not in found:
        passed = worst <= args.tolerance
        out.write(
            f"{'passed' if passed else 'FAILED'}: worst relative error {worst:.3e} "
            f"(tolerance {args.tolerance:g})\n"
        )
        return 0 if passed else 1
    out.write(
        f"inconclusive: worst relative error {worst:.3e} (tolerance {args.tolerance:g}), "
        "within what float64 round-off alone can cause here: the objective is so large "
        "(parameters this big) that finite differences cannot judge the layers marked "
        "round-off; the other layers agree\n"
    )
    return 1


# --- the parser and main -----------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``handnet`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="handnet",
        formatter_class=_FORMATTER,
        description="Neural networks whose every line of math is written by hand in NumPy.",
        epilog=(
            "examples:\n"
            "  handnet demo\n"
            "  handnet train data.csv --target label --standardize --save model.npz\n"
            "  handnet evaluate model.npz data.csv\n"
            "  handnet predict model.npz new.csv --output predictions.csv\n"
            "\n"
            "Run 'handnet COMMAND --help' for a command's options."
        ),
    )
    parser.add_argument("--version", action="version", version=f"handnet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    _add_demo(subparsers)
    _add_train(subparsers)
    _add_predict(subparsers)
    _add_evaluate(subparsers)
    _add_info(subparsers)
    _add_gradcheck(subparsers)
    return parser


def _error_text(error: BaseException) -> str:
    """One line for an error: ``path: reason`` for file errors, the message otherwise."""
    if isinstance(error, OSError) and error.filename is not None:
        reason = error.strerror or str(error)
        return f"{error.filename}: {reason}"
    text = str(error).strip() or type(error).__name__
    return " ".join(text.split())  # never more than one line


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``handnet`` console script; returns the exit status."""
    from .exceptions import DivergenceError
    from .plot import MissingDependencyError

    parser = build_parser()
    args = parser.parse_args(argv)
    # The command line as given: an interrupted 'train' shows how to resume it.
    args.argv = list(sys.argv[1:] if argv is None else argv)
    commands: dict[str, Callable[[argparse.Namespace, IO[str]], int]] = {
        "train": _run_train,
        "predict": _run_predict,
        "evaluate": _run_evaluate,
        "info": _run_info,
        "gradcheck": _run_gradcheck,
    }
    # Results go through _TerminalText: labels and names from files reach the terminal
    # with their control characters escaped.
    out = cast(IO[str], _TerminalText(sys.stdout))
    try:
        if args.command == "demo":
            return _run_demo(args)
        return commands[args.command](args, out)
    except UsageError as error:
        _note(f"handnet {args.command}: error: {_error_text(error)}")
        return 2
    except BrokenPipeError:
        # The reader went away (``handnet predict ... | head``): stop quietly, as Unix
        # tools do, and keep Python from complaining when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except (ValueError, OSError, DivergenceError, MissingDependencyError) as error:
        # ValueError covers DataFileError and ModelFileError; DivergenceError is a
        # FloatingPointError. Anything else is a bug and keeps its traceback.
        _note(f"handnet {args.command}: error: {_error_text(error)}")
        return 1
    except MemoryError as error:
        # Sizes the estimate let through (or data too large): one line, never NumPy's
        # _ArrayMemoryError traceback.
        _note(
            f"handnet {args.command}: error: out of memory: {_error_text(error)} (use smaller "
            "--hidden layers, a smaller --batch-size or less data)"
        )
        return 1
    except OverflowError as error:
        # A number from the command line or a file too large for a machine integer/float.
        _note(f"handnet {args.command}: error: a number is too large: {_error_text(error)}")
        return 1
    except KeyboardInterrupt:
        print(f"handnet {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
