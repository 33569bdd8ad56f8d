"""handnet against its peers, in one run: speed, the floors, the issue's targets, and memory.

Cases (``--cases``, comma-separated; all by default):

* ``seed``: the seed's 1000 x 4 experiment, 5001 GD iterations, against a plain NumPy loop;
* ``sgd``: per-sample SGD on the seed teacher's 100,000 x 4, against scikit-learn's SGD;
* ``fullbatch``: 1,000,000 x 100 float64/float32 GD iterations against the memory
  floor, and the time to reach scikit-learn's L-BFGS loss (GD and L-BFGS);
* ``mlp``: one Adam epoch on 60,000 x 784 float32, 784-128-10 and 784-256-128-10,
  against PyTorch (CPU) and scikit-learn, and the GEMM floor;
* ``memory``: the peak RSS of that epoch (784-128-10), one process per library;
* ``profile``: where handnet's MLP epoch goes (timers wrapped around its pieces).

In every repetition each library runs once, the order rotated by one each
repetition, so the machine's noise falls on all of them alike; the tables show
medians (of the floors too). Every case runs with BLAS, OpenMP and PyTorch on 1
thread, then on 2 (``--threads``); ``--load`` adds busy processes (one per core
by default) for the whole run. The seed and SGD cases add cold-process rows: the
first fit in a fresh interpreter, one process per measurement. Peers that are not
installed (PyTorch, scikit-learn, numba) are skipped with a note.

Run::

    python benchmarks/run.py                      # everything; writes docs/benchmarks.md
    python benchmarks/run.py --quick              # tiny sizes, seconds: checks that it runs
    python benchmarks/run.py --cases mlp,profile --repeats 3
    python benchmarks/run.py --native-blas        # without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE
    python benchmarks/run.py --threads 2          # two threads only
    python benchmarks/run.py --load               # with a busy process per core
    python benchmarks/run.py --no-compile         # without `handnet compile`'s kernels

Before the cases, ``handnet compile`` builds the kernels ahead of time into a fresh
cache directory that every process of the run uses (``HANDNET_CACHE_DIR``): the
numbers are a machine's where it ran once. ``--no-compile`` leaves it empty.

``--native-blas``: some machines set ``OPENBLAS_CORETYPE`` (and ``OPENBLAS_L2_SIZE``)
to work around older OpenBLAS builds; that forces an older kernel and slows current
NumPy. The flag re-executes the command without them (the same as running it under
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE``), and the report records which
OpenBLAS kernel ran (threadpoolctl's ``architecture``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import shlex
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CASES = ("seed", "sgd", "fullbatch", "digits", "mlp", "memory", "profile")
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
NATIVE_FLAG_ENV = "HANDNET_BENCHMARK_NATIVE_BLAS"


@dataclass(frozen=True)
class Sizes:
    """The problem sizes of one mode (full or ``--quick``)."""

    seed_iterations: int
    sgd_samples: tuple[int, ...]
    sgd_epochs: int
    fullbatch_samples: int
    fullbatch_features: int
    fullbatch_iterations: int
    mlp_samples: int
    mlp_architectures: tuple[tuple[int, ...], ...]
    memory_samples: int
    profile_samples: int


FULL = Sizes(
    seed_iterations=5001,
    sgd_samples=(1_000, 100_000),
    sgd_epochs=20,
    fullbatch_samples=1_000_000,
    fullbatch_features=100,
    fullbatch_iterations=20,
    mlp_samples=60_000,
    mlp_architectures=((128,), (256, 128)),
    memory_samples=60_000,
    profile_samples=60_000,
)

QUICK = Sizes(
    seed_iterations=500,
    sgd_samples=(1_000,),
    sgd_epochs=2,
    fullbatch_samples=20_000,
    fullbatch_features=20,
    fullbatch_iterations=5,
    mlp_samples=2_000,
    mlp_architectures=((128,),),
    memory_samples=2_000,
    profile_samples=2_000,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: only checks that it runs")
    parser.add_argument(
        "--cases",
        default=",".join(CASES),
        help=f"comma-separated subset of {','.join(CASES)} (default: all)",
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed repetitions per case (default 5; quick 1)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="markdown report to write (default docs/benchmarks.md; --quick: none)",
    )
    parser.add_argument(
        "--threads",
        default="1,2",
        help="comma-separated thread counts for BLAS, OpenMP and PyTorch; every case runs "
        "at each (default 1,2)",
    )
    parser.add_argument(
        "--load",
        type=int,
        nargs="?",
        const=os.cpu_count() or 1,
        default=0,
        help="add this many busy processes while measuring (alone: one per core)",
    )
    parser.add_argument(
        "--no-compile",
        action="store_true",
        help="measure without `handnet compile`'s kernels (numba's JIT cache only)",
    )
    parser.add_argument(
        "--native-blas",
        action="store_true",
        help="re-run without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (NumPy's own OpenBLAS kernel)",
    )
    args = parser.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose from {list(CASES)}")
    args.cases = cases
    if args.repeats is None:
        args.repeats = 1 if args.quick else 5
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    try:
        args.threads = [int(t) for t in str(args.threads).split(",") if t.strip()]
    except ValueError:
        parser.error(f"--threads takes integers, got {args.threads!r}")
    if not args.threads or min(args.threads) < 1:
        parser.error("--threads must be at least 1")
    if args.load < 0:
        parser.error("--load must be >= 0")
    if args.output is None and not args.quick:
        args.output = ROOT / "docs" / "benchmarks.md"
    return args


def reexec_without_openblas_overrides() -> None:
    """Replace this process by the same command without the OpenBLAS overrides.

    OpenBLAS reads them when NumPy is first imported, so this must run before that.
    """
    env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_OVERRIDES}
    env[NATIVE_FLAG_ENV] = ",".join(k for k in OPENBLAS_OVERRIDES if k in os.environ)
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def command_line() -> str:
    """The exact command that produced the report, as a markdown line."""
    script = Path(sys.argv[0])
    with contextlib.suppress(ValueError):
        script = script.resolve().relative_to(ROOT)
    head = (
        ["python", "-m", "benchmarks"] if script.name == "__main__.py" else ["python", str(script)]
    )
    command = f"`{shlex.join([*head, *sys.argv[1:]])}`"
    removed = [name for name in os.environ.get(NATIVE_FLAG_ENV, "").split(",") if name]
    if removed:
        unset = " ".join(f"-u {name}" for name in removed)
        command += f", which re-executed itself as `env {unset} python ...`"
    return command


def main(argv: list[str] | None = None) -> int:
    """Run the chosen cases, print every ratio, and write the report."""
    args = parse_args(argv)
    if (
        args.native_blas
        and NATIVE_FLAG_ENV not in os.environ
        and any(name in os.environ for name in OPENBLAS_OVERRIDES)
    ):
        reexec_without_openblas_overrides()

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from benchmarks import _common

    _common.LOAD = args.load
    _common.THREAD_COUNTS = list(args.threads)
    print(f"handnet's compiled kernels: {_common.prepare_native(not args.no_compile)}")
    sizes = QUICK if args.quick else FULL
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = _common.load_average()
    results: list[_common.CaseResult] = []
    failures: list[str] = []
    speedups = (float("nan"), float("nan"))
    _common.load_peers()  # their thread pools loaded first, so that every limit covers them
    with _common.competing_load(args.load) if args.load else contextlib.nullcontext():
        for threads in args.threads:
            _common.THREADS = threads
            limits = _common.limit_threads()
            speedup_before = _common.parallel_speedup()
            suffix = f" ({threads} thread{'s' if threads > 1 else ''})"
            for result in run_cases(args, sizes, suffix if len(args.threads) > 1 else ""):
                results.append(result)
                if result.title.endswith("FAILED"):
                    failures.append(result.name)
            if threads > 1:
                speedups = (speedup_before, _common.parallel_speedup())
            del limits

    checks = [check for result in results for check in result.checks]
    print("== summary ==")
    for check in checks:
        print(check.line())
    report = render(args, results, started, load_before, speedups)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(report, encoding="utf-8")
        print(f"wrote {args.output}")
    if failures:
        print(f"failed case(s): {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


def run_cases(
    args: argparse.Namespace, sizes: Sizes, suffix: str
) -> Iterator[Any]:
    """Every chosen case at the current thread count, printed as it finishes.

    ``suffix`` (e.g. `` (2 threads)``) goes on each case's title and check names.
    """
    from benchmarks import _common, _linear, _memory, _mlp

    torch = _common.optional_import("torch")
    if torch is not None:
        torch.set_num_threads(_common.THREADS)
    warmup = True  # an untimed first run of everything (cheap at --quick's sizes)
    repeats = args.repeats
    runs: dict[str, Callable[[], _common.CaseResult]] = {
        "seed": lambda: _linear.seed_case(repeats, sizes.seed_iterations, warmup, args.quick),
        "sgd": lambda: _linear.sgd_case(repeats, sizes.sgd_samples, sizes.sgd_epochs, warmup,
                                        args.quick),
        "fullbatch": lambda: _linear.fullbatch_case(
            repeats,
            sizes.fullbatch_samples,
            sizes.fullbatch_features,
            sizes.fullbatch_iterations,
            warmup=warmup,
        ),
        "digits": lambda: _linear.digits_case(repeats, warmup),
        "mlp": lambda: _mlp.mlp_case(repeats, sizes.mlp_samples, sizes.mlp_architectures, warmup),
        "memory": lambda: _memory.memory_case(sizes.memory_samples, (128,)),
        "profile": lambda: _mlp.profile_mlp(sizes.profile_samples, (128,), max(repeats, 1)),
    }
    for name in args.cases:
        print(f"== {name}{suffix} ==", flush=True)
        load = _common.load_average()
        start = time.perf_counter()
        try:
            result = runs[name]()
        except Exception:
            trace = traceback.format_exc()
            print(trace, file=sys.stderr, flush=True)
            result = _common.CaseResult(name, f"{name}: FAILED", [])
            result.notes.append("The case raised:\n\n```\n" + trace.strip() + "\n```")
        elapsed = time.perf_counter() - start
        result.notes.append(
            f"Case wall time: {elapsed:.1f} s; load average (1/5/15 min) at its start: {load}, "
            f"at its end: {_common.load_average()}."
        )
        if suffix and not result.title.endswith("FAILED"):
            result.title += suffix
            for check in result.checks:
                check.name += suffix
        for line in result.markdown():
            print(line)
        for check in result.checks:
            print(check.line(), flush=True)
        print(flush=True)
        yield result


def contention_lines(threads: int, speedups: tuple[float, float]) -> list[str]:
    """The report's line on whether the cores were free (see ``parallel_speedup``)."""
    if threads == 1 or speedups[0] != speedups[0]:
        return []
    line = (
        f"- {threads}-thread BLAS speed-up over 1 thread on the MLP's GEMMs, before: "
        f"{speedups[0]:.2f} x, after: {speedups[1]:.2f} x"
    )
    if min(speedups) < 0.75 * threads:
        line += (
            f" (**well below {threads} x: other processes held the cores, so the "
            f"{threads}-thread timings here are noisy; multi-threaded BLAS waits for its "
            "descheduled threads at every product. Rerun on a quiet machine, or compare "
            "with `--threads 1`.**)"
        )
    else:
        line += " (the cores were free)"
    return [line]


def render(
    args: argparse.Namespace,
    results: list[Any],
    started: datetime.datetime,
    load_before: str,
    speedups: tuple[float, float],
) -> str:
    """The markdown report: how it ran, on what, the targets, and every case's table."""
    from benchmarks import _common as c

    mode = (
        "quick (tiny sizes: only shows that it runs; its ratios mean nothing)"
        if args.quick
        else "full"
    )
    lines = [
        "# Benchmarks",
        "",
        "handnet against the libraries a user would pick instead, measured in the same "
        "run (generated by `benchmarks/run.py`; do not edit by hand).",
        "",
        f"- command: {command_line()}",
        f"- started: {started:%Y-%m-%d %H:%M UTC}, mode: {mode}, repeats: {args.repeats} "
        "(medians; in each repetition every library runs once, the order rotated each time)",
        f"- threads: {', '.join(map(str, args.threads))} (every case at each); competing load: "
        + (f"{args.load} busy process(es) (`--load`)" if args.load else "none added"),
        f"- load average (1/5/15 min) before: {load_before}, after: {c.load_average()} "
        "(the machine may be shared: other processes add noise)",
        *contention_lines(max(args.threads), speedups),
        "",
        "## Machine",
        "",
        *c.markdown_table(["", ""], c.machine_rows() + c.version_rows()),
        "",
        "BLAS and OpenMP libraries loaded (threadpoolctl):",
        "",
        *c.markdown_table(
            ["API", "version", "architecture", "threads", "threading", "library"], c.blas_rows()
        ),
        "",
        c.openblas_note(),
        "",
    ]
    targets = [check for result in results for check in result.checks if check.target is not None]
    if targets:
        lines += [
            "## Targets (issues 7 and 18)",
            "",
            *c.markdown_table(
                ["quantity", "median", "target", "status"],
                [[t.name, t.formatted_value(), t.formatted_target(), t.status()] for t in targets],
            ),
            "",
        ]
    for result in results:
        lines += result.markdown()
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    sys.exit(main())
