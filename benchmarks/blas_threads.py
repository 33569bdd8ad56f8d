"""BLAS's default threads against one, quiet and loaded: for a workload, and per product size.

A workload (``--workload``), each run a fresh process:

- ``demo``: ``handnet demo --model mlp --quiet`` (500 full-batch steps of 600 x 64 x 64
  products);
- ``mlp``: one Adam epoch of the MLP benchmark's 784-128-10 on 60,000 x 784 float32
  (128 x 784 x 128 products, 469 steps).

Four or six configurations, the order rotated each repetition: BLAS's default threads
and ``OPENBLAS_NUM_THREADS=1``, with handnet's thread policy
(:mod:`handnet.training.threads`) and, for comparison, with it switched off
(``PARALLEL_MIN_FLOPS = 0``: BLAS's threads everywhere, as before issue 18); on a
quiet machine and with a busy process per core (``--load``).

``--products``: instead, single float32 products of growing size (``rows x 784 x
rows``), each between two small single-threaded NumPy operations as in a training
step, on one BLAS thread and on all: the table the policy's
:data:`~handnet.training.threads.PARALLEL_MIN_FLOPS` is read from.

Run: ``python -m benchmarks.blas_threads [--repeats 3] [--load] [--workload demo|mlp]``
or ``python -m benchmarks.blas_threads --products [--load]``
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

#: Each workload's process, optionally with the policy off.
_CODE = """
import sys
import handnet.training.threads as threads
if {off}:
    threads.PARALLEL_MIN_FLOPS = 0.0
{workload}
"""

WORKLOADS = {
    # Through the CLI's entry point.
    "demo": 'from handnet.cli import main\nsys.exit(main(["demo", "--model", "mlp", "--quiet"]))',
    "mlp": (
        "from benchmarks._mlp import handnet_epoch, make_mlp_data\n"
        "handnet_epoch(*make_mlp_data(60_000), (128,), 0)"
    ),
}

CONFIGS = {
    "default threads, policy on": ({}, False),
    "OPENBLAS_NUM_THREADS=1, policy on": ({"OPENBLAS_NUM_THREADS": "1"}, False),
    "default threads, policy off (before)": ({}, True),
}


def run_workload(workload: str, env: dict[str, str], policy_off: bool) -> float:
    """Seconds of one workload process, start to exit."""
    environment = {**os.environ, **env}
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "src"), str(ROOT), environment.get("PYTHONPATH", "")) if p
    )
    code = _CODE.format(off=policy_off, workload=WORKLOADS[workload])
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code], env=environment, check=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600,
    )
    return time.perf_counter() - start


def measure(repeats: int, workload: str = "demo") -> dict[str, list[float]]:
    """Every configuration ``repeats`` times, the order rotated each repetition."""
    names = list(CONFIGS)
    times: dict[str, list[float]] = {name: [] for name in names}
    for repetition in range(repeats):
        shift = repetition % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(run_workload(workload, *CONFIGS[name]))
    return times


#: ``rows`` of the ``rows x 784 x rows`` products of ``--products``.
PRODUCT_ROWS = (64, 128, 256, 512, 1024, 2048)


def product_seconds(rows: int, threads: int, repeats: int) -> float:
    """Best mean seconds of a ``rows x 784 x rows`` float32 product on ``threads`` BLAS
    threads, each between two small single-threaded NumPy operations."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.standard_normal((rows, 784), dtype=np.float32)
    b = rng.standard_normal((784, rows), dtype=np.float32)
    out = np.empty((rows, rows), dtype=np.float32)
    small = np.zeros(1000, dtype=np.float32)
    count = max(5, int(2e9 / (2.0 * rows * 784 * rows)))  # about 2 GFLOP a measurement
    best = float("inf")
    with threadpool_limits(threads):
        np.dot(a, b, out)
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(count):
                np.dot(a, b, out)
                small += 1.0  # the step's single-threaded work: BLAS's threads go idle
            best = min(best, (time.perf_counter() - start) / count)
    return best


def print_products(repeats: int) -> None:
    """The ``--products`` table: one thread against all, per product size."""
    threads_all = os.cpu_count() or 1
    for rows in PRODUCT_ROWS:
        one = product_seconds(rows, 1, repeats)
        every = product_seconds(rows, threads_all, repeats)
        print(f"  {rows:5d} x 784 x {rows:<5d} {2.0 * rows * 784 * rows / 1e6:8.1f} MFLOP: "
              f"1 thread {one * 1e3:8.3f} ms, {threads_all} threads {every * 1e3:8.3f} ms, "
              f"ratio {every / one:.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--load", action="store_true", help="also measure with a busy process "
                        "per core")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="demo")
    parser.add_argument("--products", action="store_true",
                        help="time single products by size instead of a workload")
    args = parser.parse_args(argv)
    settings = [("quiet", 0)] + ([("loaded", os.cpu_count() or 1)] if args.load else [])
    for label, processes in settings:
        with competing_load(processes) if processes else contextlib.nullcontext():
            before = os.getloadavg()
            if args.products:
                print(f"{label} ({processes} busy processes added), best of {args.repeats}:")
                print_products(args.repeats)
                continue
            times = measure(args.repeats, args.workload)
            after = os.getloadavg()
        print(f"{label}, {args.workload} ({processes} busy processes added; load average "
              f"before {before[0]:.2f}, after {after[0]:.2f}), medians of {args.repeats}:")
        for name, values in times.items():
            print(f"  {name:40s} {statistics.median(values):7.2f} s   "
                  f"(all: {', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    main()
