"""Refusing work that cannot succeed, before any of it is done.

Paths that cannot be read or written, a plot without matplotlib, a network larger
than the machine's memory: each is an error before data is read or training starts.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Sequence

from .arguments import UsageError
from .text import _size_text


def _require_matplotlib() -> None:
    """Fail before training, not after it, when --plot cannot be honoured."""
    from ..plot import _matplotlib

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
