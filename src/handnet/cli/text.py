"""Text for the terminal: control characters escaped, errors on one line, sizes and times.

Class labels, feature names and column names come from files, and a file can hold
terminal escape sequences: :func:`printable` makes them inert, and every command's
results go through :class:`_TerminalText`, which applies it.
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Sequence
from typing import IO, Any

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


def _error_text(error: BaseException) -> str:
    """One line for an error: ``path: reason`` for file errors, the message otherwise."""
    if isinstance(error, OSError) and error.filename is not None:
        reason = error.strerror or str(error)
        return f"{error.filename}: {reason}"
    text = str(error).strip() or type(error).__name__
    return " ".join(text.split())  # never more than one line


def _short_list(values: Sequence[Any], limit: int = 10) -> str:
    shown = ", ".join(printable(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


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


def _size_text(n_bytes: float) -> str:
    """``1.5 GiB``: a byte count for a message."""
    unit = "bytes"
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n_bytes < 1024 or unit == "PiB":
            break
        n_bytes /= 1024
    return f"{n_bytes:.3g} {unit}"
