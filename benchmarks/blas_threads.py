"""``handnet demo --model mlp --quiet``: BLAS's default threads against one, quiet and loaded.

Four or six configurations, each a fresh process, the order rotated each
repetition: BLAS's default threads and ``OPENBLAS_NUM_THREADS=1``, with handnet's
thread policy (:mod:`handnet.training.threads`) and, for comparison, with it
switched off (``PARALLEL_MIN_FLOPS = 0``: BLAS's threads everywhere, as before
issue 18); on a quiet machine and with a busy process per core (``--load``).

Run: ``python -m benchmarks.blas_threads [--repeats 3] [--load]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time

from benchmarks._common import ROOT, competing_load

#: The demo, run through the CLI's entry point, optionally with the policy off.
_CODE = """
import sys
import handnet.training.threads as threads
if {off}:
    threads.PARALLEL_MIN_FLOPS = 0.0
from handnet.cli import main
sys.exit(main(["demo", "--model", "mlp", "--quiet"]))
"""

CONFIGS = {
    "default threads, policy on": ({}, False),
    "OPENBLAS_NUM_THREADS=1, policy on": ({"OPENBLAS_NUM_THREADS": "1"}, False),
    "default threads, policy off (before)": ({}, True),
}


def run_demo(env: dict[str, str], policy_off: bool) -> float:
    """Seconds of one demo process, start to exit."""
    environment = {**os.environ, **env}
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "src"), environment.get("PYTHONPATH", "")) if p
    )
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", _CODE.format(off=policy_off)], env=environment, check=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600,
    )
    return time.perf_counter() - start


def measure(repeats: int) -> dict[str, list[float]]:
    """Every configuration ``repeats`` times, the order rotated each repetition."""
    names = list(CONFIGS)
    times: dict[str, list[float]] = {name: [] for name in names}
    for repetition in range(repeats):
        shift = repetition % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(run_demo(*CONFIGS[name]))
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--load", action="store_true", help="also measure with a busy process "
                        "per core")
    args = parser.parse_args(argv)
    settings = [("quiet", 0)] + ([("loaded", os.cpu_count() or 1)] if args.load else [])
    for label, processes in settings:
        with competing_load(processes) if processes else contextlib.nullcontext():
            before = os.getloadavg()
            times = measure(args.repeats)
            after = os.getloadavg()
        print(f"{label} ({processes} busy processes added; load average before "
              f"{before[0]:.2f}, after {after[0]:.2f}), medians of {args.repeats}:")
        for name, values in times.items():
            print(f"  {name:40s} {statistics.median(values):7.2f} s   "
                  f"(all: {', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    main()
