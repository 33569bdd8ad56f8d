"""The memory case: peak resident memory during one MLP epoch, each library in its own process.

The driver (:func:`memory_case`) starts ``python -m benchmarks._memory LIBRARY ...``
once per library. The worker imports the library, builds the MLP case's data,
records its resident set (``VmRSS``), resets the kernel's peak counter (writing
``5`` to ``/proc/self/clear_refs``), fits one epoch and reads the peak
(``VmHWM``). ``peak - baseline`` is what fitting added on top of the data; the
issue's bound is data + parameters + 50 MiB, i.e. an extra of at most
parameters + 50 MiB.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks import _common
from benchmarks._common import (
    ROOT,
    CaseResult,
    Check,
    format_quantity,
    limit_threads,
    optional_import,
    seconds,
)

MiB = 2**20


def _status_kib(field: str) -> int:
    """A ``/proc/self/status`` field in KiB (``VmRSS``, ``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_peak() -> bool:
    """Reset the peak-RSS counter (``VmHWM``) to the current RSS; ``False`` if refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def worker(
    library: str, n_samples: int, hidden: tuple[int, ...], threads: int
) -> dict[str, object]:
    """Fit one epoch of ``library``'s MLP on the case's data; measure the memory it added."""
    from benchmarks import _mlp

    torch = optional_import("torch") if library == "torch" else None
    neural_network = optional_import("sklearn.neural_network") if library == "sklearn" else None
    limits = limit_threads(threads)  # after the import, so that torch's threads are set too
    X, y = _mlp.make_mlp_data(n_samples)
    before_warmup = _status_kib("VmRSS")
    # A warm-up fit on a few rows first: one-time library initialisation (lazy
    # imports, thread pools, allocator arenas) is not what a fit costs per data set.
    warm = slice(0, min(256, n_samples))
    if library == "handnet":
        first = _mlp.handnet_epoch(X[warm], y[warm], hidden, _mlp.SEED)
    elif library == "torch":
        first = _mlp.torch_epoch(torch, X[warm], y[warm], hidden, _mlp.SEED)
    else:
        first = _mlp.sklearn_epoch(neural_network, X[warm], y[warm], hidden, _mlp.SEED)
    gc.collect()
    baseline = _status_kib("VmRSS")
    reset = _reset_peak()
    if library == "handnet":
        fit_seconds = _mlp.handnet_epoch(X, y, hidden, _mlp.SEED)
    elif library == "torch":
        fit_seconds = _mlp.torch_epoch(torch, X, y, hidden, _mlp.SEED)
    else:
        fit_seconds = _mlp.sklearn_epoch(neural_network, X, y, hidden, _mlp.SEED)
    peak = _status_kib("VmHWM")
    del limits
    sizes = [X.shape[1], *hidden, int(y.max()) + 1]
    return {
        "library": library,
        "baseline_mib": baseline / 1024,
        "peak_mib": peak / 1024,
        "extra_mib": (peak - baseline) / 1024,
        "peak_reset": reset,
        "data_mib": (X.nbytes + y.nbytes) / MiB,
        "parameters_mib": _mlp.n_parameters(sizes) * X.itemsize / MiB,
        "seconds": fit_seconds,
        "first_fit_seconds": first,
        "first_fit_mib": (baseline - before_warmup) / 1024,
    }


def memory_case(n_samples: int = 60_000, hidden: tuple[int, ...] = (128,)) -> CaseResult:
    """Run the worker once per installed library and tabulate the peaks."""
    arch = "-".join(str(s) for s in (784, *hidden, 10))
    result = CaseResult(
        "memory",
        f"Memory: peak RSS during one MLP epoch ({arch}, {n_samples:,} x 784 float32)",
        [
            "library",
            "first fit, fresh process (256 rows)",
            "RSS before fit",
            "peak during fit",
            "added by fit",
            "bound: params + 50 MiB",
        ],
    )
    libraries = ["handnet"]
    for name, module in (("torch", "torch"), ("sklearn", "sklearn")):
        if optional_import(module) is not None:
            libraries.append(name)
        else:
            result.notes.append(f"{name} is not installed: skipped.")
    found: dict[str, dict[str, float]] = {}
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    for library in libraries:
        command = [
            sys.executable,
            "-m",
            "benchmarks._memory",
            library,
            "--n-samples",
            str(n_samples),
            "--hidden",
            *map(str, hidden),
            "--threads",
            str(_common.THREADS),
        ]
        done = subprocess.run(
            command, capture_output=True, text=True, cwd=ROOT, env=env, check=False
        )
        if done.returncode != 0:
            result.notes.append(f"{library}: the worker failed: {done.stderr.strip()[-300:]}")
            continue
        record = json.loads(done.stdout.strip().splitlines()[-1])
        found[library] = record
        bound = record["parameters_mib"] + 50
        result.rows.append(
            [
                library,
                f"{seconds(record['first_fit_seconds'])}, "
                f"+{format_quantity(record['first_fit_mib'], 'MiB')}",
                format_quantity(record["baseline_mib"], "MiB"),
                format_quantity(record["peak_mib"], "MiB"),
                format_quantity(record["extra_mib"], "MiB"),
                format_quantity(bound, "MiB"),
            ]
        )
        if not record["peak_reset"]:
            result.notes.append(
                f"{library}: /proc/self/clear_refs refused, so its peak includes building the data."
            )
    if "handnet" in found:
        record = found["handnet"]
        result.checks.append(
            Check(
                "memory handnet added by fit",
                record["extra_mib"],
                record["parameters_mib"] + 50,
                "<=",
                "MiB",
            )
        )
        for peer in ("torch", "sklearn"):
            if peer in found:
                ratio = record["extra_mib"] / max(found[peer]["extra_mib"], 1e-9)
                result.checks.append(Check(f"memory handnet/{peer} added by fit", ratio, None))
        result.notes.append(
            f"Data {record['data_mib']:.1f} MiB (X float32 and int64 labels, resident before "
            f"fit), parameters {record['parameters_mib']:.2f} MiB. Each library ran in a fresh "
            "process, fitted a warm-up epoch on 256 rows (one-time initialisation), and then had "
            "its peak counter reset before the measured fit. The first-fit column is that "
            "warm-up: its time and the resident memory it added (imports, JIT compilation, "
            "thread pools), which a user's first fit in a fresh process pays once."
        )
    return result


def main() -> None:
    """The worker's command line: prints one JSON line."""
    parser = argparse.ArgumentParser(description="one memory measurement (internal)")
    parser.add_argument("library", choices=["handnet", "torch", "sklearn"])
    parser.add_argument("--n-samples", type=int, default=60_000)
    parser.add_argument("--hidden", type=int, nargs="+", default=[128])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(worker(args.library, args.n_samples, tuple(args.hidden), args.threads)))


if __name__ == "__main__":
    main()
