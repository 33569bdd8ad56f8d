"""The ``handnet`` command line.

======================  ==================================================================
``handnet demo``        the seed's experiment and its variants (:mod:`handnet.demo`)
``handnet train``       train a classifier on a CSV, NPZ or IDX file and save it
``handnet predict``     a saved model's predictions (and probabilities) for a data file
``handnet evaluate``    accuracy, log loss, confusion matrix, per-class precision/recall/F1
``handnet info``        a saved model's architecture, parameters, hyperparameters, history
``handnet gradcheck``   backpropagation against finite differences, per layer
``handnet playground``  a page in the browser: train a network and watch each step's math
``handnet compile``     build the compiled kernels once for this machine (:mod:`handnet._native`)
======================  ==================================================================

Argument parsing is argparse's. Errors a user can cause (a missing file, an
unknown column, non-numeric data, a file that is not a model) are printed as one
line, ``handnet COMMAND: error: ...``, with exit status 1 (2 for a command line
that cannot work, as argparse does); a traceback means a bug in handnet.

Training progress is a training callback (:class:`TrainingProgress`): a tqdm bar
when stderr is a terminal and tqdm is installed (``pip install "handnet[progress]"``),
a plain log line now and then otherwise, nothing with ``--quiet``.

The package holds a module per command (:mod:`~handnet.cli.demo`,
:mod:`~handnet.cli.train`, :mod:`~handnet.cli.predict`, :mod:`~handnet.cli.evaluate`,
:mod:`~handnet.cli.info`, :mod:`~handnet.cli.gradcheck`, :mod:`~handnet.cli.playground`,
:mod:`~handnet.cli.compile`) and
the modules they share:
:mod:`~handnet.cli.arguments` (argparse types and options), :mod:`~handnet.cli.text`
(terminal-safe text), :mod:`~handnet.cli.progress`, :mod:`~handnet.cli.checks` (refusing
work that cannot succeed), :mod:`~handnet.cli.model_files`, :mod:`~handnet.cli.reading`,
and for ``train`` :mod:`~handnet.cli.fitting` and :mod:`~handnet.cli.streamed`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import IO, cast

from .. import __version__
from .arguments import _FORMATTER, UsageError
from .compile import _add_compile, _run_compile
from .demo import _add_demo, _run_demo
from .evaluate import _add_evaluate, _run_evaluate
from .gradcheck import _add_gradcheck, _run_gradcheck
from .info import _add_info, _run_info
from .playground import _add_playground, _run_playground
from .predict import _add_predict, _run_predict
from .progress import TrainingProgress
from .text import _error_text, _note, _TerminalText, printable
from .train import _add_train, _run_train, fold_standardization

__all__ = [
    "TrainingProgress",
    "UsageError",
    "build_parser",
    "fold_standardization",
    "main",
    "printable",
]


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
    _add_playground(subparsers)
    _add_compile(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``handnet`` console script; returns the exit status."""
    from ..exceptions import DivergenceError
    from ..plot import MissingDependencyError

    parser = build_parser()
    args = parser.parse_args(argv)
    # The command line as given: an interrupted 'train' shows how to resume it.
    args.argv = list(sys.argv[1:] if argv is None else argv)
    # The runners are this package's names, looked up at each call (a test may patch one).
    commands: dict[str, Callable[[argparse.Namespace, IO[str]], int]] = {
        "train": _run_train,
        "predict": _run_predict,
        "evaluate": _run_evaluate,
        "info": _run_info,
        "gradcheck": _run_gradcheck,
        "playground": _run_playground,
        "compile": _run_compile,
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
