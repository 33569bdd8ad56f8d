"""Kernels compiled ahead of time: built once per machine, loaded without numba.

numba's on-disk cache spares a process the compilation, not numba itself: the
first compiled kernel in a process still costs about 0.5 s and 100 MiB (numba's
import and its first load of a cached kernel), more than a whole fit of the
seed's data. ``handnet compile`` (:func:`build`) therefore compiles the kernels of
:data:`EXPORTS` once, with ``numba.pycc``, into one Python extension module in the
user's cache directory. A later process loads that module in under a millisecond,
without importing numba, and the fits take the compiled paths from their first
step.

The module holds the very kernels the JIT compiles (each export calls the numba
function of :mod:`handnet.training._compiled` or :mod:`handnet.nn._compiled_pooling`
with its own compiler options), one specialisation per dtype, so both give the
same bits (with the numba that built it). Their wrappers release the GIL, as the
JIT kernels do.

Where it lives: ``$HANDNET_CACHE_DIR``, else ``$XDG_CACHE_HOME/handnet``, else
``~/.cache/handnet``, then ``native/<key>``. The key hashes what the machine code
depends on: the kernels' source files and signatures, the Python ABI, the NumPy
version and the CPU (the module is built for the host CPU's instruction set). A
changed key is a new directory, so a stale module is never loaded. It is loaded
only from directories and a file owned by the user and writable by nobody else
(native code runs with the user's rights), and only if its size and SHA-256 are
those recorded beside it when it was built (a truncated file would crash the
process in the dynamic loader). Anything else, or an unreadable directory, and
the process goes on with numba's JIT or NumPy; :func:`status` says why.
:func:`handnet._numba.numpy_only` turns it off with the JIT kernels.

The extension's argument checks are minimal (numba's ahead-of-time wrappers check
an array's item size, not its dtype, dimensions or layout), so every kernel is
returned behind a guard that checks those (:class:`Export`): a mismatch is a
``TypeError``. Like numba's own kernels, they do not check indices or lengths:
their callers in handnet do (shapes that agree, indices in range).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import platform
import re
import shutil
import stat
import sys
import tempfile
import threading
import time
import types
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from . import _numba

#: The extension module's name (its ``PyInit_`` symbol): never put in ``sys.modules``.
MODULE_NAME = "handnet_native"
#: The file name ending of this interpreter's extension modules (the ABI's first choice).
_EXTENSION_SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]
#: Bumped when the layout of the cache directory or the build changes.
FORMAT = 1


#: ``T``, the dtype's place in an :class:`Export`'s type names.
_DTYPE = re.compile(r"\bT\b")


@dataclasses.dataclass(frozen=True)
class Export:
    """One numba kernel compiled ahead of time, once per dtype.

    ``arguments`` and ``returns`` are numba type names, with ``T`` for the dtype:
    ``"T[:, ::1]"`` is a C-contiguous 2-D array of it, ``"T[:]"`` a 1-D array of
    any layout, ``"T"`` a scalar. The guard derives from them.
    """

    #: The kernel's name in its JIT module and in :func:`kernels`' namespace.
    name: str
    #: The module of the numba function (imported only to build).
    module: str
    #: ``numba.float32``/``float64`` names of the specialisations built.
    dtypes: tuple[str, ...]
    arguments: tuple[str, ...]
    returns: str = "none"
    #: Positions of the arrays the kernel writes into (they must be writable).
    writes: tuple[int, ...] = ()
    #: The attribute of ``module`` compiled, where it is not ``name``.
    source: str | None = None

    def symbol(self, dtype: str) -> str:
        """The function's name in the extension module."""
        return f"{self.name}_{dtype}"

    def signature(self, dtype: str) -> str:
        """The numba signature of the ``dtype`` specialisation."""
        return _DTYPE.sub(dtype, f"{self.returns}({', '.join(self.arguments)})")

    def array_rules(
        self, dtype: str
    ) -> tuple[tuple[int, np.dtype[Any], int, bool, bool], ...]:
        """``(position, dtype, ndim, C-contiguous, written)`` of each array argument."""
        rules = []
        for position, argument in enumerate(self.arguments):
            if "[" not in argument:
                continue
            element, _, dims = _DTYPE.sub(dtype, argument).partition("[")
            parts = dims.rstrip("]").split(",")
            contiguous = parts[-1].strip() == "::1"
            rules.append(
                (position, np.dtype(element), len(parts), contiguous, position in self.writes)
            )
        return tuple(rules)


_TRAINING = "handnet.training._compiled"
_POOLING = "handnet.nn._compiled_pooling"
_DENSE = "handnet.nn._compiled_dense"
_4D = "T[:, :, :, ::1]"

#: The kernels built by :func:`build`: what the JIT modules compile on first use.
EXPORTS: tuple[Export, ...] = (
    Export("sgd_epoch", _TRAINING, ("float64",),
           ("T[:, :]", "T[:]", "intp[:]", "T[:]", "T[:]", "float64", "float64", "T[:]", "float64"),
           returns="float64", writes=(3, 4)),
    Export("block_sums", _TRAINING, ("float64",),
           ("T[:, ::1]", "T[::1]", "T[::1]", "T", "T[:]"),
           returns="UniTuple(float64, 2)", writes=(4,), source="host_block_sums"),
    Export("block_sums", _TRAINING, ("float32",),
           ("T[:, ::1]", "T[::1]", "T[::1]", "T", "T[:]"),
           returns="UniTuple(float64, 2)", writes=(4,), source="vectorised_block_sums"),
    # For the seed's full-batch step on data in cache (kernels.compiled_gd_step).
    Export("vectorised_block_sums", _TRAINING, ("float64",),
           ("T[:, ::1]", "T[::1]", "T[::1]", "T", "T[::1]"),
           returns="UniTuple(float64, 2)", writes=(4,)),
    Export("fused_adam", _TRAINING, ("float32", "float64"),
           ("T[::1]",) * 4 + ("T",) * 8, writes=(0, 2, 3)),
    # C-contiguous arrays: compiled for any layout, the forward pass took 4 x as long
    # (the pooling layer takes the JIT kernels or NumPy for other layouts).
    Export("max_pool_2x2_forward", _POOLING, ("float32", "float64"),
           (_4D, _4D, "uint8[:, :, :, ::1]"), writes=(1, 2)),
    Export("max_pool_2x2_backward", _POOLING, ("float32", "float64"),
           (_4D, "uint8[:, :, :, ::1]", _4D), writes=(2,)),
    # A dense network's passes between its products (handnet.nn.activations.dense_kernels).
    Export("gather_rows", _TRAINING, ("float32", "float64"),
           ("T[:, ::1]", "intp[::1]", "T[:, ::1]"), writes=(2,)),
    Export("add_bias", _DENSE, ("float32", "float64"), ("T[:, ::1]", "T[::1]"), writes=(0,)),
    Export("column_sums", _DENSE, ("float32", "float64"), ("T[:, ::1]", "T[::1]"), writes=(1,)),
    Export("relu_forward", _DENSE, ("float32", "float64"), ("T[::1]",) * 2, writes=(1,)),
    Export("relu_backward", _DENSE, ("float32", "float64"), ("T[::1]",) * 3, writes=(2,)),
    Export("softmax_cross_entropy", _DENSE, ("float32", "float64"), ("T[:, ::1]",) * 3,
           returns="float64", writes=(2,)),
    Export("add_l2", _DENSE, ("float32", "float64"), ("T[::1]", "T[::1]", "T"),
           returns="float64", writes=(1,)),
)


# --- where the module lives ------------------------------------------------------------------


def cache_root() -> Path:
    """handnet's cache directory (``$HANDNET_CACHE_DIR``, ``$XDG_CACHE_HOME/handnet``
    or ``~/.cache/handnet``)."""
    explicit = os.environ.get("HANDNET_CACHE_DIR")
    if explicit:
        return Path(os.path.expanduser(explicit))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "handnet"


#: /proc/cpuinfo fields that say which instructions the CPU has (not its clock or core).
_CPU_FIELDS = (
    "vendor_id", "cpu family", "model", "model name", "stepping", "flags",
    "features", "cpu implementer", "cpu architecture", "cpu variant", "cpu part", "isa",
)


def _cpu_fingerprint() -> str:
    """The first processor's identity and instruction-set flags (Linux), or what
    :mod:`platform` says: the module is built for the host CPU, so a cache shared by
    machines (a network home directory) must not hand one machine's module to another."""
    lines = [platform.machine()]
    with (
        contextlib.suppress(OSError),
        open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info,
    ):
        for line in info:
            if not line.strip():
                break  # the first processor's block is enough
            key, _, value = line.partition(":")
            if key.strip().lower() in _CPU_FIELDS:
                lines.append(f"{key.strip().lower()}={value.strip()}")
    if len(lines) == 1:
        # Not Linux. (platform.processor() runs a subprocess on Linux: not there.)
        lines.append(platform.processor())
    return "\n".join(lines)


def _source_path(module: str) -> Path:
    """The source file of a handnet module, found without importing it."""
    relative = module.split(".")[1:]
    return Path(__file__).parent.joinpath(*relative[:-1], relative[-1] + ".py")


def key() -> str:
    """The cache key of the module this process can load (see the module docstring)."""
    digest = hashlib.sha256()
    parts = [
        f"format={FORMAT}", sys.implementation.cache_tag or "", _EXTENSION_SUFFIX,
        f"numpy={np.__version__}", _cpu_fingerprint(),
    ]
    parts += [f"{e.symbol(d)}:{e.signature(d)}:{e.source}" for e in EXPORTS for d in e.dtypes]
    for part in parts:
        digest.update(part.encode() + b"\0")
    for module in [*sorted({e.module for e in EXPORTS}), __name__]:
        digest.update(_source_path(module).read_bytes())
    return f"{sys.implementation.cache_tag}-{digest.hexdigest()[:20]}"


def module_path() -> Path:
    """Where this process's extension module is (or would be) built."""
    return cache_root() / "native" / key() / (MODULE_NAME + _EXTENSION_SUFFIX)


# --- loading -----------------------------------------------------------------------------------


def _private(path: Path) -> bool:
    """Whether ``path`` is owned by this user and writable by nobody else (POSIX), so
    that no other user could have put code there."""
    if not hasattr(os, "getuid"):
        return True  # Windows: the user's profile directory is the boundary
    try:
        info = path.stat()
    except OSError:
        return False
    return info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


_LOCK = threading.Lock()
#: The loaded extension module, ``None`` where there is none, or unset.
_MODULE: types.ModuleType | bool | None = False
#: Why :data:`_MODULE` is what it is (:func:`status`).
_REASON = "not looked for yet"
#: :func:`kernels`' namespaces by (module, dtype's type code).
_NAMESPACES: dict[tuple[str, str], types.SimpleNamespace | None] = {}
#: The largest record :func:`_record` reads (it holds a few short fields).
_MAX_RECORD_BYTES = 4096


def _record_path(path: Path) -> Path:
    """The JSON record written beside the module: its size, SHA-256 and numba's version."""
    return path.with_name(path.name + ".json")


def _digest(path: Path) -> tuple[int, str]:
    data = path.read_bytes()
    return len(data), hashlib.sha256(data).hexdigest()


def _record(path: Path) -> dict[str, Any] | None:
    """The module's record, validated (sizes, hex digits, short strings), or ``None``."""
    try:
        with open(_record_path(path), "rb") as file:
            raw = file.read(_MAX_RECORD_BYTES + 1)
        record = json.loads(raw) if len(raw) <= _MAX_RECORD_BYTES else None
    except (OSError, ValueError):
        return None
    if not (
        isinstance(record, dict)
        and isinstance(record.get("size"), int) and 0 < record["size"] < 1 << 30
        and isinstance(record.get("sha256"), str)
        and re.fullmatch(r"[0-9a-f]{64}", record["sha256"]) is not None
        and isinstance(record.get("numba"), str) and len(record["numba"]) <= 64
    ):
        return None
    return record


def _load() -> tuple[types.ModuleType | None, str]:
    """The extension module of :func:`module_path`, or ``None``; and why."""
    try:
        path = module_path()  # reads the kernels' sources for the key
    except OSError as error:
        return None, f"unreadable: {error}"
    if not os.path.isfile(path):  # False also where a directory cannot be read
        return None, f"not built (run 'handnet compile'): {path}"
    if not all(_private(p) for p in (path, path.parent, path.parent.parent)):
        warnings.warn(
            f"handnet: the compiled kernels in {path.parent} are not loaded: the directory "
            "or the file is writable by other users or owned by another (run 'handnet "
            "compile --force' to rebuild them privately)",
            UserWarning, stacklevel=2,
        )
        return None, "not private (writable by others, or another owner's)"
    record = _record(path)
    try:
        digest = _digest(path) if record is not None else None
    except OSError as error:
        return None, f"unreadable: {error}"
    if record is None or digest != (record["size"], record["sha256"]):
        warnings.warn(
            f"handnet: the compiled kernels in {path.parent} are not loaded: the file is not "
            "the one built there (truncated or changed); run 'handnet compile --force'",
            UserWarning, stacklevel=2,
        )
        return None, "damaged (size or SHA-256 not those recorded when it was built)"
    loader = importlib.machinery.ExtensionFileLoader(MODULE_NAME, str(path))
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path, loader=loader)
    if spec is None:
        return None, "unloadable"
    try:
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
    except ImportError as error:
        return None, f"unloadable: {error}"
    expected = [e.symbol(d) for e in EXPORTS for d in e.dtypes]
    if not all(hasattr(module, name) for name in expected):
        return None, "stale (lacks kernels this handnet needs)"
    return module, f"loaded from {path} (built by numba {record['numba']})"


def _module() -> types.ModuleType | None:
    global _MODULE, _REASON
    if _MODULE is False:
        with _LOCK:
            if _MODULE is False:
                _MODULE, _REASON = _load()
    return _MODULE if isinstance(_MODULE, types.ModuleType) else None


def status() -> str:
    """Whether this process loads the compiled module, and if not, why (one line)."""
    _module()
    if not _numba.enabled():
        return f"turned off (HANDNET_NUMPY_ONLY=1 or numpy_only()); the module: {_REASON}"
    return _REASON


def _layout_ok(flags: Any, contiguous: bool, written: bool) -> bool:
    return bool((not contiguous or flags.c_contiguous) and (not written or flags.writeable))


def _guard(function: Callable[..., Any], export: Export, dtype: str) -> Callable[..., Any]:
    """``function`` behind a check of its array arguments' dtype, dimensions and layout.

    The check runs on every call of kernels that take microseconds, so it is written
    out for each export, as :func:`collections.namedtuple` writes its methods: one
    test per array argument, with the dtype compared by identity (NumPy's arrays of
    a built-in dtype share one descriptor) and one ``flags`` read. That costs about
    half of a loop over the rules (0.55 against 0.96 us for three arrays, Zen 4).
    Whatever the quick test turns down (a subclass, another descriptor object of
    the same dtype, a wrong argument) goes to the full check, which accepts it or
    raises the ``TypeError`` that names the argument and what it must be.
    """
    rules = export.array_rules(dtype)
    name = export.symbol(dtype)
    parameters = ", ".join(f"a{i}" for i in range(len(export.arguments)))
    namespace: dict[str, Any] = {
        "ndarray": np.ndarray, "kernel": function, "checked": _checked(function, rules, name),
    }
    tests = []
    for position, dtype_, ndim, contiguous, written in rules:
        argument = f"a{position}"
        namespace[f"dtype{position}"] = dtype_
        test = f"type({argument}) is ndarray and {argument}.dtype is dtype{position}"
        test += f" and {argument}.ndim == {ndim}"
        if contiguous and written:
            test += f" and {argument}.flags.carray"  # C-contiguous, aligned and writable
        elif contiguous or written:
            test += f" and {argument}.flags.{'c_contiguous' if contiguous else 'writeable'}"
        tests.append(f"({test})")
    source = (
        f"def {name}({parameters}):\n"
        f"    if {' and '.join(tests) or 'True'}:\n"
        f"        return kernel({parameters})\n"
        f"    return checked({parameters})\n"
    )
    # The source is built above from the export table alone: no outside string enters it.
    exec(compile(source, f"<guard of {name}>", "exec"), namespace)
    guarded: Callable[..., Any] = namespace[name]
    guarded.__doc__ = f"The compiled ``{export.module}.{export.name}`` for {dtype}, checked."
    return guarded


def _checked(
    function: Callable[..., Any], rules: tuple[tuple[int, np.dtype[Any], int, bool, bool], ...],
    name: str,
) -> Callable[..., Any]:
    """The guard's full check: ``function`` called if every array argument passes."""

    def checked(*arguments: Any) -> Any:
        for position, dtype_, ndim, contiguous, written in rules:
            value = arguments[position]
            # One .flags (each makes a new object).
            if not (
                isinstance(value, np.ndarray) and value.dtype == dtype_ and value.ndim == ndim
                and (not (contiguous or written) or _layout_ok(value.flags, contiguous, written))
            ):
                raise TypeError(
                    f"{name}: argument {position} must be a {ndim}-D "
                    f"{'C-contiguous ' if contiguous else ''}{'writable ' if written else ''}"
                    f"{dtype_} array, got "
                    f"{getattr(value, 'dtype', type(value).__name__)} "
                    f"{getattr(value, 'shape', '')}"
                )
        return function(*arguments)

    return checked


def kernels(module: str, dtype: np.dtype[Any] | type) -> types.SimpleNamespace | None:
    """The compiled kernels of JIT module ``module`` for ``dtype``, as a namespace.

    Its attributes are named as the JIT module's functions (only those built for
    ``dtype``). ``None`` where no module is built for this process, under
    :func:`~handnet._numba.numpy_only`, or for another dtype. Never imports numba.
    """
    if not _numba.enabled():
        return None
    # Keyed by the type code: a dtype's .name costs some 5 us, and this runs per call
    # of the small kernels (np.dtype() itself costs 0.2 us: only for a type given).
    char = dtype.char if isinstance(dtype, np.dtype) else np.dtype(dtype).char
    cache_key = (module, char)
    try:
        return _NAMESPACES[cache_key]
    except KeyError:  # first use for this module and dtype
        pass
    name = np.dtype(dtype).name
    compiled = _module()
    members = {
        e.name: _guard(getattr(compiled, e.symbol(name)), e, name)
        for e in EXPORTS if e.module == module and name in e.dtypes
    } if compiled is not None else {}
    namespace = _NAMESPACES[cache_key] = types.SimpleNamespace(**members) if members else None
    return namespace


def kernels_for(module: str, *arrays: np.ndarray[Any, Any]) -> types.SimpleNamespace | None:
    """:func:`kernels` of ``module`` for ``arrays`` if they are all plain C-contiguous arrays
    of one dtype in the machine's byte order, else ``None`` (most exports take only
    that). Subclasses (``np.matrix`` stays 2-D when flattened; others override
    NumPy's operations) take the caller's NumPy path; memory maps are plain arrays."""
    dtype = arrays[0].dtype
    # The lookup first: where no module is built (or under numpy_only) it answers None
    # from its cache, and the layers' NumPy paths pay nothing for the array checks.
    namespace = kernels(module, dtype)
    if namespace is None or not dtype.isnative:  # '>f8' shares '<f8''s type code
        return None
    for array in arrays:
        if (
            type(array) not in _PLAIN_ARRAYS or array.dtype != dtype
            or not array.flags.c_contiguous
        ):
            return None
    return namespace


_PLAIN_ARRAYS = (np.ndarray, np.memmap)


def loadable() -> bool:
    """Whether the compiled module for this process is built and loads (turned off or not)."""
    return _module() is not None


def available() -> bool:
    """Whether this process loads the compiled module (built, and not turned off)."""
    return _numba.enabled() and loadable()


def forget() -> None:
    """Drop the loaded module's namespaces, so that the next use looks for it again (for
    tests, and after :func:`build` in the same process)."""
    global _MODULE, _REASON
    with _LOCK:
        _MODULE = False
        _REASON = "not looked for yet"
        _NAMESPACES.clear()


# --- building ------------------------------------------------------------------------------------


class BuildError(RuntimeError):
    """The module could not be built (no numba, no C compiler, a compiler error)."""


def _forwarder(kernel: Any, n_arguments: int) -> Callable[..., Any]:
    """``def forward(a0, ..., an): return kernel(a0, ..., an)``: the exported function.

    The export calls the JIT function rather than compiling its Python source, so
    that the kernel keeps its own compiler options (fast-math flags, error model)
    and the same bits; numba compiles the call into the module.
    """
    names = ", ".join(f"a{i}" for i in range(n_arguments))
    namespace: dict[str, Any] = {"kernel": kernel}
    exec(f"def forward({names}):\n    return kernel({names})\n", namespace)
    forward: Callable[..., Any] = namespace["forward"]
    return forward


@contextlib.contextmanager
def _releasing_gil() -> Iterator[None]:
    """Build the wrappers so that they release the GIL around the kernel, as ``nogil=True``
    does for the JIT: numba's ahead-of-time compiler has no option for it, so its
    compile flags are given ``release_gil`` for the build."""
    from numba.core.compiler import Flags
    from numba.pycc import compiler

    flags_class: Any = Flags

    class ReleasingFlags(flags_class):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.release_gil = True

    original = compiler.Flags
    setattr(compiler, "Flags", ReleasingFlags)  # noqa: B010 - a module attribute, patched
    try:
        yield
    finally:
        setattr(compiler, "Flags", original)  # noqa: B010


def _remove_abandoned_builds(parent: Path, age: float = 3600.0) -> None:
    """Remove build directories over an hour old: left by a build that was killed."""
    now = time.time()
    for entry in parent.glob(".build-*"):
        with contextlib.suppress(OSError):
            if now - entry.stat().st_mtime > age:
                shutil.rmtree(entry, ignore_errors=True)


def build(force: bool = False) -> Path:
    """Compile :data:`EXPORTS` into :func:`module_path`; return that path.

    Needs numba and a C compiler (for the extension's glue); takes some 10-30 s.
    Built in a temporary directory beside the target and moved into place, so that
    a process never sees half a module and two builds at once do not clash. With
    ``force``, an existing module is rebuilt.

    Raises
    ------
    BuildError
        Without numba, or where the compiler fails.
    """
    target = module_path()
    if os.path.isfile(target) and not force:
        return target
    try:
        import numba
    except ImportError as error:
        raise BuildError("handnet compile needs numba: pip install 'handnet[fast]'") from error
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pycc's pending-deprecation warning
            from numba.pycc import CC
    except ImportError as error:  # a numba without pycc, or no setuptools
        raise BuildError(
            f"numba {numba.__version__} cannot compile ahead of time here ({error}); "
            "the kernels are still compiled on first use and cached by numba"
        ) from error
    import importlib

    parent = target.parent.parent
    try:
        parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _remove_abandoned_builds(parent)
        workdir = Path(tempfile.mkdtemp(prefix=".build-", dir=parent))
    except OSError as error:
        raise BuildError(f"cannot write the compiled kernels to {parent}: {error}") from error
    try:
        with warnings.catch_warnings(), _releasing_gil():
            warnings.simplefilter("ignore")
            try:
                compiler = CC(MODULE_NAME)  # finds the C compiler: may fail too
                compiler.output_dir = str(workdir)
                compiler.target_cpu = "host"
                for export in EXPORTS:
                    module = importlib.import_module(export.module)
                    kernel = getattr(module, export.source or export.name)
                    for dtype in export.dtypes:
                        compiler.export(export.symbol(dtype), export.signature(dtype))(
                            _forwarder(kernel, len(export.arguments)))
                compiler.compile()
            except Exception as error:  # numba's or the C toolchain's errors
                raise BuildError(f"the compiled kernels could not be built: {error}") from error
        built = workdir / Path(compiler.output_file).name
        if not built.is_file():
            raise BuildError(f"the compiler wrote no {built.name}")
        os.chmod(built, 0o700)
        final = workdir / target.name
        if built != final:
            built.rename(final)
        size, sha256 = _digest(final)
        _record_path(final).write_text(
            json.dumps({"size": size, "sha256": sha256, "numba": numba.__version__}),
            encoding="utf-8",
        )
        if force and target.parent.exists():
            shutil.rmtree(target.parent, ignore_errors=True)
        try:
            workdir.rename(target.parent)
        except OSError as error:
            if not os.path.isfile(target):  # not another build that finished first
                raise BuildError(f"cannot move the built kernels to {target.parent}: "
                                 f"{error}") from error
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    forget()
    return target

