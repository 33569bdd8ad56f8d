"""Shared pieces of the benchmark suite: timing, results, targets, and the machine's description.

Everything here is library-agnostic: the cases (``_linear.py``, ``_mlp.py``,
``_memory.py``) call :func:`alternate` to time handnet and its peers in the same
process, one after the other, repetition after repetition, and describe what
they found as :class:`CaseResult` objects that ``run.py`` prints and writes.
"""

from __future__ import annotations

import importlib
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: Threads for BLAS, OpenMP and PyTorch in every measurement (the issue's "2 threads";
#: ``run.py --threads`` changes it before any case runs).
THREADS = 2

#: Busy processes ``run.py --load`` adds while it measures (0: none).
LOAD = 0

#: Every thread count the run measures at (``run.py --threads``).
THREAD_COUNTS = [THREADS]

#: Environment variables that force an OpenBLAS kernel (a workaround some machines carry).
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

#: Whether this run's processes load handnet's kernels built ahead of time, and how
#: long ``handnet compile`` took (:func:`prepare_native`, called by ``run.py``).
NATIVE = "not prepared (the user's own cache directory)"
#: Whether :func:`prepare_native` built them.
NATIVE_BUILT = False


def prepare_native(build: bool) -> str:
    """Point ``HANDNET_CACHE_DIR`` (this process and its children) at a new directory
    and, with ``build``, run ``handnet compile`` there: every case then measures what a
    machine where it was run once gets. Without ``build`` (or where it fails) the
    directory stays empty, so a user's own build never changes a run unannounced.
    Sets :data:`NATIVE`, a line for the report."""
    global NATIVE, NATIVE_BUILT
    import atexit
    import shutil
    import tempfile

    directory = tempfile.mkdtemp(prefix="handnet-benchmark-cache-")
    atexit.register(shutil.rmtree, directory, True)
    os.environ["HANDNET_CACHE_DIR"] = directory
    if not build:
        NATIVE = "not built (`--no-compile`): numba's JIT cache only"
        return NATIVE
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "handnet", "compile"], capture_output=True, text=True,
        env=dict(os.environ), timeout=900,
    )
    elapsed = time.perf_counter() - start
    NATIVE_BUILT = out.returncode == 0
    NATIVE = (
        f"built by `handnet compile` in {elapsed:.1f} s (once per machine) into a fresh directory"
        if NATIVE_BUILT
        else f"`handnet compile` failed ({(out.stderr or out.stdout).strip()[-200:]}): "
        "numba's JIT cache only"
    )
    return NATIVE


Runner = Callable[[], Mapping[str, float]]
"""One timed run of one library: returns its metrics (seconds, rates...) by name."""


def optional_import(name: str) -> ModuleType | None:
    """``importlib.import_module(name)``, or ``None`` when it is not installed (or broken)."""
    try:
        return importlib.import_module(name)
    except Exception:  # ImportError, or a broken install of an optional peer
        return None


@contextmanager
def quiet_warnings() -> Iterator[None]:
    """Silence every warning (the peers' ConvergenceWarnings with a fixed epoch count)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def timed(function: Callable[[], Any]) -> float:
    """Seconds that ``function()`` takes (``time.perf_counter``)."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def alternate(
    runners: Mapping[str, Runner], repeats: int, warmup: bool = True
) -> dict[str, dict[str, list[float]]]:
    """Run every runner once per repetition, in the given order, repetition after repetition.

    Interleaving (handnet, peer, handnet, peer, ...) spreads the machine's noise
    (other processes, frequency changes) over all libraries alike, instead of
    giving one library a quiet minute and the next a busy one; the order rotates
    by one each repetition.

    Parameters
    ----------
    runners : mapping of name to runner
        Called in this order in every repetition.
    repeats : int
        Timed repetitions (in the given order, then rotated by one each time).
    warmup : bool
        Run each runner once, untimed, first (imports, JIT compilation, page faults).

    Returns
    -------
    dict
        ``results[name][metric]`` is the list of the metric's values, one per repetition.
    """
    if warmup:
        for runner in runners.values():
            runner()
    results: dict[str, dict[str, list[float]]] = {name: {} for name in runners}
    names = list(runners)
    for repetition in range(repeats):
        # The order rotates: no library always runs first (cold caches) or right
        # after the same neighbour (its garbage, its threads still spinning).
        shift = repetition % len(names)
        for name in names[shift:] + names[:shift]:
            for metric, value in runners[name]().items():
                results[name].setdefault(metric, []).append(float(value))
    return results


def median(values: list[float]) -> float:
    """The median, or NaN for no values."""
    return statistics.median(values) if values else float("nan")


# --- results -----------------------------------------------------------------------------


@dataclass
class Check:
    """One measured quantity against the issue's target for it.

    ``value <= target`` (``direction="<="``) or ``value >= target`` meets it;
    ``target=None`` is a ratio reported for information.
    """

    name: str
    value: float
    target: float | None = None
    direction: str = "<="
    unit: str = "x"

    @property
    def met(self) -> bool | None:
        """Whether the target is met (``None``: no target)."""
        if self.target is None or self.value != self.value:  # no target, or NaN
            return None
        return self.value <= self.target if self.direction == "<=" else self.value >= self.target

    def formatted_value(self) -> str:
        """The value with its unit (ratios as ``0.83 x``, rates with thousands separators)."""
        return format_quantity(self.value, self.unit)

    def formatted_target(self) -> str:
        """``<= 0.70 x`` or ``-`` without a target."""
        if self.target is None:
            return "-"
        return f"{self.direction} {format_quantity(self.target, self.unit)}"

    def status(self) -> str:
        """``met``, ``MISSED`` or ``-``."""
        return {True: "met", False: "MISSED", None: "-"}[self.met]

    def line(self) -> str:
        """The line printed for it (the tests look for ``ratio`` lines)."""
        kind = "ratio" if self.unit == "x" else "value"
        text = f"{kind} {self.name}: {self.formatted_value()}"
        if self.target is not None:
            text += f" (target {self.formatted_target()}: {self.status()})"
        return text


def format_quantity(value: float, unit: str) -> str:
    """A number for the tables: ratios to 2 decimals, large rates with separators."""
    if value != value:
        return "n/a"
    if unit == "x":
        return f"{value:.2f} x" if abs(value) >= 0.1 else f"{value:.3g} x"
    if unit == "samples/s":
        return f"{value:,.0f} samples/s"
    if unit == "MiB":
        return f"{value:,.1f} MiB"
    return f"{value:.4g} {unit}"


@dataclass
class CaseResult:
    """What one case measured: a table, the checks against the targets, and notes."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra_markdown: list[str] = field(default_factory=list)

    def markdown(self) -> list[str]:
        """The case's section of the report."""
        lines = [f"## {self.title}", ""]
        if self.rows:
            lines += markdown_table(self.columns, self.rows)
            lines.append("")
        if self.checks:
            lines += markdown_table(
                ["quantity", "median", "target", "status"],
                [
                    [c.name, c.formatted_value(), c.formatted_target(), c.status()]
                    for c in self.checks
                ],
            )
            lines.append("")
        for note in self.notes:
            lines.append(f"- {note}")
        if self.notes:
            lines.append("")
        lines += self.extra_markdown
        return lines


def markdown_table(columns: list[str], rows: list[list[str]]) -> list[str]:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def seconds(value: float) -> str:
    """Seconds for a table cell, in ms below 1 s."""
    if value != value:
        return "n/a"
    return f"{value * 1e3:.1f} ms" if value < 1.0 else f"{value:.3f} s"


# --- threads -----------------------------------------------------------------------------


#: The peers' modules whose import loads their native thread pools (scikit-learn's OpenMP
#: runtime and its BLAS through scipy): :func:`load_peers` imports them before a limit is set.
PEER_MODULES = ("sklearn.linear_model", "sklearn.neural_network", "scipy.linalg")


def load_peers() -> None:
    """Import the installed peers' native libraries now, before any thread limit is set.

    threadpoolctl limits the thread pools loaded when the limit is entered: a library
    first imported afterwards (scikit-learn's OpenMP runtime, on its first import inside
    a case) would run with its default threads, which on 2 cores made scikit-learn's
    L-BFGS on the digits 8 to 10 times slower in the "1 thread" rows.
    """
    for name in PEER_MODULES:
        optional_import(name)


def limit_threads(threads: int | None = None) -> Any:
    """Limit BLAS and OpenMP pools to ``threads`` (default :data:`THREADS`), and PyTorch's too.

    Returns the threadpoolctl limiter (keep it alive), or ``None`` without threadpoolctl.
    """
    threads = THREADS if threads is None else threads
    torch = optional_import("torch") if "torch" in sys.modules else None
    if torch is not None:
        torch.set_num_threads(threads)
    threadpoolctl = optional_import("threadpoolctl")
    if threadpoolctl is None:
        return None
    return threadpoolctl.threadpool_limits(limits=threads)


def parallel_speedup(threads: int | None = None, tries: int = 5) -> float:
    """How much faster ``threads`` BLAS threads run a small float32 GEMM loop than one thread.

    The products are the MLP case's (128 x 784 by 784 x 128). Close to ``threads``:
    the cores are free. Below 1: another process holds a core, and multi-threaded
    BLAS waits for its descheduled thread at every product, so timings taken with
    ``threads`` threads are unreliable right now.
    """
    import numpy as np

    threadpoolctl = optional_import("threadpoolctl")
    threads = THREADS if threads is None else threads
    if threadpoolctl is None or threads == 1:
        return float("nan")
    rng = np.random.default_rng(0)
    A = rng.standard_normal((128, 784), dtype=np.float32)
    W = rng.standard_normal((784, 128), dtype=np.float32)
    out = np.empty((128, 128), dtype=np.float32)
    best = {}
    for n in (1, threads):
        with threadpoolctl.threadpool_limits(limits=n):
            times = []
            for _ in range(tries):
                start = time.perf_counter()
                for _ in range(50):
                    np.matmul(A, W, out=out)
                times.append(time.perf_counter() - start)
            best[n] = statistics.median(times)
    return best[1] / best[threads]


@contextmanager
def competing_load(processes: int) -> Iterator[None]:
    """``processes`` busy loops (``python -c "while True: pass"``) while the block runs.

    What a user's machine looks like when something else computes: every core
    shared, so a multi-threaded BLAS waits for descheduled threads.
    """
    children = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)
    ]
    try:
        time.sleep(0.5)  # let them reach their cores
        yield
    finally:
        for child in children:
            child.kill()
        for child in children:
            child.wait()


# --- the machine -------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name (``lscpu``, else ``/proc/cpuinfo``, else ``platform``)."""
    try:
        out = subprocess.run(
            ["lscpu"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
                family = _lscpu_field(out, "CPU family:")
                number = _lscpu_field(out, "Model:")
                if family and number:
                    model += f" (family {family}, model {number})"
                return model
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _lscpu_field(text: str, key: str) -> str:
    for line in text.splitlines():
        if line.startswith(key):
            return line.split(":", 1)[1].strip()
    return ""


def memory_total() -> str:
    """Total memory (``/proc/meminfo``), e.g. ``23.4 GiB``."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except (OSError, ValueError):
        pass
    return "unknown"


def load_average() -> str:
    """The 1/5/15-minute load averages (how busy the machine was)."""
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def git_revision() -> str:
    """``git describe --always --dirty`` of the repository, or ``unknown``."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
            cwd=ROOT,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_rows() -> list[list[str]]:
    """The machine's description, as (item, value) rows."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 0
    return [
        ["CPU", cpu_model()],
        ["cores", f"{os.cpu_count()} logical, {usable} usable by this process"],
        ["memory", memory_total()],
        ["OS", platform.platform()],
        [
            "threads used",
            ", ".join(map(str, THREAD_COUNTS))
            + " (BLAS/OpenMP via threadpoolctl, torch.set_num_threads; every case at each)",
        ],
        ["competing load", f"{LOAD} busy process(es)" if LOAD else "none added"],
        ["handnet's compiled kernels", NATIVE],
    ]


def version_rows() -> list[list[str]]:
    """Python's and each library's version (``not installed`` for a missing peer)."""
    rows = [["Python", platform.python_version() + f" ({platform.python_implementation()})"]]
    for name in ("handnet", "numpy", "scipy", "sklearn", "torch", "numba", "threadpoolctl"):
        module = optional_import(name)
        version = getattr(module, "__version__", "unknown") if module else "not installed"
        if name == "handnet":
            version += f" (git {git_revision()})"
        rows.append(["scikit-learn" if name == "sklearn" else name, str(version)])
    return rows


def blas_rows() -> list[list[str]]:
    """threadpoolctl's view of the loaded BLAS and OpenMP libraries."""
    threadpoolctl = optional_import("threadpoolctl")
    if threadpoolctl is None:
        return [["-", "threadpoolctl not installed", "", "", "", ""]]
    rows = []
    for info in threadpoolctl.threadpool_info():
        rows.append(
            [
                str(info.get("internal_api", "")),
                str(info.get("version", "")),
                str(info.get("architecture", "-")),
                str(info.get("num_threads", "")),
                str(info.get("threading_layer", "-")),
                Path(str(info.get("filepath", ""))).name,
            ]
        )
    return rows


def openblas_note() -> str:
    """Which OpenBLAS kernel ran, and whether the environment forced it."""
    forced = {name: os.environ[name] for name in OPENBLAS_OVERRIDES if name in os.environ}
    threadpoolctl = optional_import("threadpoolctl")
    kernels = sorted(
        {
            str(info.get("architecture"))
            for info in (threadpoolctl.threadpool_info() if threadpoolctl else [])
            if info.get("internal_api") == "openblas"
        }
    )
    kernel = ", ".join(kernels) or "unknown"
    if forced:
        settings = ", ".join(f"{k}={v}" for k, v in forced.items())
        unset = " ".join(f"-u {k}" for k in forced)
        return (
            f"OpenBLAS kernel: {kernel}, forced by the environment ({settings}). "
            f"That override works around older OpenBLAS builds and slows current NumPy; "
            f"to measure NumPy's native kernel run the same command under "
            f"`env {unset}` (or pass `--native-blas`, which re-executes it so)."
        )
    return f"OpenBLAS kernel: {kernel} (chosen by OpenBLAS itself; no override in the environment)."
