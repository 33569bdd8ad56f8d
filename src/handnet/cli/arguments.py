"""Command-line arguments: argparse types, the options several commands share, usage errors."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

from ..optim.optimizers import OPTIMIZERS


class UsageError(ValueError):
    """A command line that cannot work (conflicting or missing options): exit status 2."""


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


def _hidden_option(hidden: Sequence[int]) -> str:
    """``--hidden 128,64``: the option as a user writes it, for a message."""
    return "--hidden " + ",".join(str(width) for width in hidden)


# --- shared options ----------------------------------------------------------------------

_FORMATTER = argparse.RawDescriptionHelpFormatter
_Subparsers = argparse._SubParsersAction  # argparse's own (private) type for add_subparsers


def _optimizer_choices() -> tuple[str, ...]:
    """The update rules by name (the registry's, read when the parser is built)."""
    return tuple(OPTIMIZERS)


def _add_data_arguments(parser: argparse.ArgumentParser, labels_help: str) -> None:
    parser.add_argument("data", metavar="DATA",
                        help="a CSV file (with a header row, or --no-header), an .npz with "
                        "arrays X (and y), an IDX file of images (MNIST's format, optionally "
                        "gzipped), a .npy array of features (labels: --labels LABELS.npy), "
                        "or (train) a directory of X_000.npy, y_000.npy, ... shards")
    parser.add_argument("--target", metavar="COLUMN",
                        help="CSV: the column holding the labels (or values), by name or by "
                        "position counted from 0")
    parser.add_argument("--labels", metavar="FILE", help=labels_help)
    parser.add_argument("--delimiter", metavar="CHAR", type=_delimiter,
                        help="CSV: the field separator, one character or tab/comma/semicolon/"
                        "space (default: guessed from the header among , ; tab |)")
    parser.add_argument("--max-expansion", metavar="RATIO", type=_positive_float,
                        default=None,
                        help="gzipped CSV: refuse it once it expands beyond RATIO times its "
                        "size (and 64 MiB), a guard against decompression bombs "
                        "(default 100)")
    _add_csv_arguments(parser)


def _columns(text: str) -> tuple[str, ...]:
    """``a,b,3``: column names or positions, comma-separated."""
    columns = tuple(part.strip() for part in text.split(",") if part.strip())
    if not columns:
        raise argparse.ArgumentTypeError(f"expected column names or positions, got {text!r}")
    return columns


def _decimal(text: str) -> str:
    named = {"comma": ",", "point": ".", "dot": "."}
    value = named.get(text.lower(), text)
    if value not in (".", ","):
        raise argparse.ArgumentTypeError(f"expected . or , (or point, comma), got {text!r}")
    return value


def _add_csv_arguments(parser: argparse.ArgumentParser) -> None:
    """How to read a CSV: its header, which columns, decimal commas."""
    header = parser.add_mutually_exclusive_group()
    header.add_argument("--no-header", dest="header", action="store_false", default=None,
                        help="CSV: the first row is data, not column names; columns are "
                        "then given by position, counted from 0 (--target 13)")
    header.add_argument("--header", dest="header", action="store_true", default=None,
                        help="CSV: the first row names the columns even if it holds only "
                        "numbers (by default such a row is refused as a missing header)")
    parser.add_argument("--features", type=_columns, metavar="COLUMNS",
                        help="CSV: the feature columns, comma-separated names or positions "
                        "(default: every column but --target, --id-column and --drop)")
    parser.add_argument("--drop", type=_columns, default=(), metavar="COLUMNS",
                        help="CSV: columns that are not features (names or positions)")
    parser.add_argument("--id-column", metavar="COLUMN",
                        help="CSV: a column of row identifiers (name or position): never a "
                        "feature; predict writes it next to each prediction")
    parser.add_argument("--decimal", type=_decimal, default=None, metavar="MARK",
                        help="CSV: the decimal mark, . (default) or , for numbers such as "
                        "14,23 (the delimiter is then ; or tab)")
