"""``handnet compile``: build the compiled kernels once per machine (:mod:`handnet._native`)."""

from __future__ import annotations

import argparse
import os
import time
from typing import IO

from .arguments import _FORMATTER, _Subparsers


def _add_compile(subparsers: _Subparsers[argparse.ArgumentParser]) -> None:
    command = subparsers.add_parser(
        "compile",
        allow_abbrev=False,
        help="build the compiled kernels once for this machine (needs handnet[fast])",
        formatter_class=_FORMATTER,
        description=(
            "Compile handnet's kernels (per-example SGD, full-batch sums, Adam, 2x2 max\n"
            "pooling) ahead of time into the user's cache directory, once per machine.\n"
            "Later processes load them in under a millisecond without importing numba,\n"
            "so even a first, small fit runs compiled. Without them, a process pays\n"
            "about 0.5 s for numba's load wherever a compiled kernel pays for it.\n"
            "Needs numba and a C compiler. Run it again after upgrading handnet, NumPy\n"
            "or Python, or on another CPU: each has its own directory, and a process\n"
            "loads only the one built for it. HANDNET_CACHE_DIR sets the place."
        ),
        epilog="examples:\n  handnet compile\n  handnet compile --status",
    )
    command.add_argument(
        "--force", action="store_true", help="rebuild even where the kernels are built already"
    )
    command.add_argument(
        "--status", action="store_true",
        help="only say whether this process would load compiled kernels, and from where",
    )


def _run_compile(args: argparse.Namespace, out: IO[str]) -> int:
    import warnings

    from .. import _native

    path = _native.module_path()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the status line says it
        built = _native.loadable()
    if args.status:
        loaded = _native.available()
        out.write(f"{'loaded' if loaded else 'not loaded'}: {_native.status()}\n")
        return 0 if loaded else 1
    if built and not args.force:
        out.write(f"already built: {path} (--force rebuilds)\n")
        return 0
    if os.path.isfile(path) and not args.force:
        out.write(f"rebuilding: the module there is {_native.status()}\n")
    start = time.perf_counter()
    try:
        path = _native.build(force=args.force or os.path.isfile(path))
    except _native.BuildError as error:
        raise OSError(str(error)) from error
    out.write(f"built in {time.perf_counter() - start:.1f} s: {path}\n")
    return 0
