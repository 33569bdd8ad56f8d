"""numba, loaded only where it pays: the switch that turns it off, the cached ``jit``, and
the lazy import of a module of compiled kernels.

Importing numba costs about 0.3 s and 100 MiB, so no handnet module imports it at
import time: the modules of compiled kernels (:mod:`handnet.training._compiled`,
:mod:`handnet.nn._compiled_pooling`) are imported through :func:`load` by the code that
decided they will pay for themselves. :func:`numpy_only` (or ``HANDNET_NUMPY_ONLY=1``)
turns every compiled kernel off, as if numba were not installed.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import threading
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

#: Whether the compiled kernels may be used (when numba is installed).
_ENABLED = os.environ.get("HANDNET_NUMPY_ONLY", "").strip().lower() in ("", "0", "false", "no")
_INSTALLED: bool | None = None
_LOAD_LOCK = threading.Lock()
#: Modules of compiled kernels by name, once looked for: ``None`` where the import failed.
_LOADED: dict[str, ModuleType | None] = {}


def enabled() -> bool:
    """Whether kernels may use numba when it is installed (see :func:`numpy_only`)."""
    return _ENABLED


@contextlib.contextmanager
def numpy_only(enabled: bool = True) -> Iterator[None]:
    """Within the block, every kernel takes its NumPy path, as if numba were not installed.

    A process-wide switch (not per thread), meant for a script, a test or a
    benchmark that compares the two paths: enter and leave it from one thread
    (blocks left out of order by several threads restore the wrong state).
    ``numpy_only(False)`` re-allows the compiled kernels inside the block.
    """
    global _ENABLED
    previous = _ENABLED
    _ENABLED = not enabled
    try:
        yield
    finally:
        _ENABLED = previous


def installed() -> bool:
    """Whether numba is installed, found without importing it (a look at ``sys.path``)."""
    global _INSTALLED
    if _INSTALLED is None:
        _INSTALLED = importlib.util.find_spec("numba") is not None
    return _INSTALLED


def imported() -> bool:
    """Whether numba is already imported in this process and allowed: using compiled
    kernels then costs only loading them from numba's on-disk cache."""
    return _ENABLED and "numba" in sys.modules


def load(name: str) -> ModuleType | None:
    """The module of compiled kernels ``name``, imported (with numba) on first use.

    ``None`` under :func:`numpy_only`, without numba, or where this numba cannot
    build the module. Thread-safe: threads that ask at once import it once.
    """
    if not _ENABLED:
        return None
    if name not in _LOADED:
        with _LOAD_LOCK:
            if name not in _LOADED:
                try:
                    module: ModuleType | None = importlib.import_module(name)
                except Exception:  # ImportError, or a numba that cannot build the module
                    module = None
                _LOADED[name] = module
    return _LOADED[name]


def loaded(name: str) -> ModuleType | None:
    """The module of compiled kernels ``name`` if :func:`load` already imported it (and
    numba is allowed), without importing anything."""
    return _LOADED.get(name) if _ENABLED else None


def jit(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit(cache=True, **options)``, or without the cache where no directory takes it.

    The machine code is written to disk on first use and loaded, not compiled, by
    later processes (numba checks the source file's time stamp and its own
    version). numba looks for a writable cache directory when the function is
    decorated and raises ``RuntimeError`` if it finds none: the kernel is then
    compiled in memory on first use, as without ``cache=True``. Only for modules
    that import numba themselves.
    """
    import numba

    def decorate(function: Callable[..., Any]) -> Any:
        try:
            return numba.njit(cache=True, **options)(function)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return numba.njit(**options)(function)

    return decorate
