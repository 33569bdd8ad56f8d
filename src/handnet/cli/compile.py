"""``handnet compile``: build the compiled kernels once per machine (:mod:`handnet._native`)."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import time
from pathlib import Path
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
            "loads only the one built for it (--prune removes the others). HANDNET_CACHE_DIR\n"
            "sets the place."
        ),
        epilog=(
            "examples:\n  handnet compile\n  handnet compile --status\n  handnet compile --prune"
        ),
    )
    command.add_argument(
        "--force", action="store_true", help="rebuild even where the kernels are built already"
    )
    command.add_argument(
        "--status", action="store_true",
        help="only say whether this process would load compiled kernels, and from where",
    )
    command.add_argument(
        "--prune", action="store_true",
        help="only remove the kernels built for other handnet, NumPy or Python versions or "
        "CPUs (about 1 MiB each; another environment sharing the cache rebuilds its own)",
    )


#: A build's folder name (``handnet._native.key``): the Python's cache tag, then 20 hex digits.
_BUILD_FOLDER = re.compile(r"[A-Za-z0-9_.-]+-[0-9a-f]{20}")


def other_builds() -> list[Path]:
    """The cache's build folders for keys other than this process's (what ``--prune`` removes):
    left by earlier handnet, NumPy or Python versions, or built on another CPU."""
    from .. import _native

    parent = _native.cache_root() / "native"
    current = _native.key()
    try:
        entries = list(parent.iterdir())
    except OSError:  # no cache yet, or unreadable: nothing to list
        return []
    return sorted(
        entry for entry in entries
        if entry.name != current and _BUILD_FOLDER.fullmatch(entry.name)
        and entry.is_dir() and not entry.is_symlink()
    )


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink())


def _describe_others(builds: list[Path]) -> str:
    mebibytes = sum(_size(folder) for folder in builds) / (1 << 20)
    return (f"{len(builds)} build(s) for other versions or CPUs in {builds[0].parent} "
            f"({mebibytes:.1f} MiB)")


def _mention_others(out: IO[str]) -> None:
    """One line about the builds for other keys, if there are any."""
    builds = other_builds()
    if builds:
        out.write(f"also: {_describe_others(builds)}; handnet compile --prune removes them\n")


def _run_compile(args: argparse.Namespace, out: IO[str]) -> int:
    import warnings

    from .. import _native

    path = _native.module_path()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the status line says it
        built = _native.loadable()
    if args.prune:
        builds = other_builds()
        if not builds:
            out.write("nothing to remove: no kernels built for other versions or CPUs\n")
            return 0
        summary = _describe_others(builds)
        for folder in builds:
            shutil.rmtree(folder, ignore_errors=True)
        left = [folder for folder in builds if folder.exists()]
        out.write(f"removed {summary}\n")
        for folder in left:
            out.write(f"could not remove {folder}\n")
        return 1 if left else 0
    if args.status:
        loaded = _native.available()
        out.write(f"{'loaded' if loaded else 'not loaded'}: {_native.status()}\n")
        _mention_others(out)
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
    _mention_others(out)
    return 0
