"""Scaling: full-batch iterations and streaming SGD, in memory, from disk and on a cluster.

Measured on one data set (``--rows`` x ``--features`` float64, default 2,000,000 x 50,
800 MB, labels from a logistic teacher), in one process, with ``--threads`` cores:

* **the floor**: one pass over ``X`` at the best bandwidth of the run (an integer sum
  of its bytes, split over the threads): what any full-batch iteration must pay;
* **seconds per full-batch GD iteration** of ``LogisticRegression`` (steady state,
  between two epoch callbacks):

  - *in memory, plain*: the one-shot ``X @ w`` and ``X.T @ r`` over all rows
    (the block engine switched off);
  - *in memory, blocked*: :mod:`handnet.data.blocks`, cache-sized row blocks on the
    threads (the default);
  - *memmap*: the same data in an ``.npy`` file opened with ``mmap_mode="r"``,
    read block by block (:mod:`handnet.data.streaming`);
  - *cluster*: a Dask array on a 2-worker ``LocalCluster`` (one thread each,
    loopback), summed on the workers (:mod:`handnet.data.cluster`);

* **streaming SGD throughput**: rows per second of one mini-batch epoch (plain
  SGD, batch 256) from the memmap against the same in memory.

The issues' targets are printed with the ratios: blocked iteration <= 2.5 x the
floor (issue 7), cluster iteration <= 2 x the blocked one, streaming epoch <= 1.5 x
the in-memory one (issue 8). The numbers depend on the machine and on what else
runs on it. ``--quick`` runs tiny sizes (a smoke test, seconds).

Run: python benchmarks/scaling.py [--quick] [--rows N] [--features D] [--threads T]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT / "src"))

import handnet  # noqa: E402
from handnet import blocks  # noqa: E402

SEED = 20240601


def make_data(n: int, d: int, chunk: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal features and Bernoulli labels of a logistic teacher, made in chunks."""
    rng = np.random.default_rng(SEED)
    w = rng.standard_normal(d) * (2.0 / math.sqrt(d))
    X = np.empty((n, d))
    y = np.empty(n, dtype=np.int64)
    for start in range(0, n, chunk):
        part = X[start : start + chunk]
        rng.standard_normal(out=part)
        p = 1.0 / (1.0 + np.exp(-(part @ w + 0.5)))
        y[start : start + chunk] = rng.random(len(part)) < p
    return X, y


def floor_seconds(X: np.ndarray, threads: int, tries: int = 5) -> float:
    """Best time of one read of every byte of ``X``, its rows split over ``threads`` threads.

    An int64 sum of the bytes (overflow wraps: only the reading counts) is not
    compute-bound the way a pairwise float sum can be.
    """
    bounds = np.linspace(0, X.shape[0], threads + 1).astype(int)
    parts = [X[a:b].reshape(-1).view(np.int64) for a, b in itertools.pairwise(bounds)]
    best = math.inf
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(tries):
            start = time.perf_counter()
            list(pool.map(np.add.reduce, parts))
            best = min(best, time.perf_counter() - start)
    return best


def gd_iteration(X: Any, y: Any, iterations: int) -> float:
    """Seconds per full-batch GD iteration, between the first and the last epoch callback."""
    stamps: list[float] = []

    def stamp(trainer: Any) -> None:
        stamps.append(time.perf_counter())

    handnet.LogisticRegression(learning_rate=1.0, max_iter=iterations, tol=None).fit(
        X, y, callbacks=[stamp]
    )
    return (stamps[-1] - stamps[0]) / (len(stamps) - 1)


def sgd_epoch(X: Any, y: Any, batch_size: int) -> float:
    """Seconds for one epoch of plain mini-batch SGD."""
    model = handnet.LogisticRegression(optimizer="sgd", learning_rate=0.05,
                                       batch_size=batch_size, max_iter=1, tol=None,
                                       random_state=0)
    start = time.perf_counter()
    model.fit(X, y)
    return time.perf_counter() - start


@contextlib.contextmanager
def plain_path() -> Iterator[None]:
    """Switch the block engine off: every full batch takes the one-shot path."""
    saved = blocks.MIN_BYTES
    blocks.MIN_BYTES = 1 << 62
    try:
        yield
    finally:
        blocks.MIN_BYTES = saved


def median_of(repeats: int, run: Callable[[], float]) -> float:
    return statistics.median(run() for _ in range(repeats))


def cluster_iteration(n: int, d: int, iterations: int, repeats: int, chunk_rows: int) -> float:
    """Seconds per GD iteration on a 2-worker LocalCluster, data generated on the workers."""
    import dask.array as da
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                     dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        rng = da.random.default_rng(SEED)
        X = rng.standard_normal((n, d), chunks=(chunk_rows, d))
        y = (X[:, 0] + 0.5 * X[:, 1] + rng.standard_normal(n, chunks=chunk_rows) > 0)
        X, y = client.persist([X, y.astype(np.int64)])
        client.wait_for_workers(2)
        return median_of(repeats, lambda: gd_iteration(X, y, iterations))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2, help="cores to use (default 2)")
    parser.add_argument("--iterations", type=int, default=8, help="GD iterations per timing")
    parser.add_argument("--repeats", type=int, default=5, help="timings per median")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--no-cluster", action="store_true", help="skip the Dask cluster")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.features, args.iterations, args.repeats = 40_000, 10, 3, 1
        blocks.MIN_BYTES = 0  # tiny data: still take the block engine
    n, d, threads = args.rows, args.features, args.threads

    from threadpoolctl import threadpool_limits

    print(f"scaling benchmark: {n:,} x {d} float64 ({n * d * 8 / 1e6:.0f} MB), {threads} threads,"
          f" {os.cpu_count()} CPUs visible; medians of {args.repeats}")
    X, y = make_data(n, d)
    rows: list[tuple[str, float, str]] = []
    with threadpool_limits(threads), tempfile.TemporaryDirectory() as folder:
        floor = floor_seconds(X, threads)
        rows.append(("floor: one pass over X (int64 sum, threaded)", floor,
                     f"{X.nbytes / floor / 1e9:.1f} GB/s"))
        with plain_path():
            plain = median_of(args.repeats, lambda: gd_iteration(X, y, args.iterations))
        rows.append(("GD iteration, in memory, plain", plain, f"{plain / floor:.2f} x floor"))
        blocked = median_of(args.repeats, lambda: gd_iteration(X, y, args.iterations))
        rows.append(("GD iteration, in memory, blocked + threads", blocked,
                     f"{blocked / floor:.2f} x floor"))
        np.save(Path(folder) / "X.npy", X)
        X_disk = np.load(Path(folder) / "X.npy", mmap_mode="r")
        if args.quick:  # tiny data: still read it in several blocks
            from handnet.data import streaming

            streaming.BLOCK_BYTES = 64 << 10
        on_disk = median_of(args.repeats, lambda: gd_iteration(X_disk, y, args.iterations))
        rows.append(("GD iteration, memmap (.npy), blocks read from the file", on_disk,
                     f"{on_disk / blocked:.2f} x blocked"))
        cluster = math.nan
        if not args.no_cluster:
            try:
                chunk_rows = max(1_000, n // 16)
                cluster = cluster_iteration(n, d, args.iterations, args.repeats, chunk_rows)
                rows.append(("GD iteration, 2-worker LocalCluster (Dask array)", cluster,
                             f"{cluster / blocked:.2f} x blocked"))
            except ImportError as error:
                print(f"note: no cluster run ({error}); pip install 'handnet[dask]'")
        sgd_memory = median_of(args.repeats, lambda: sgd_epoch(X, y, args.batch_size))
        sgd_disk = median_of(args.repeats, lambda: sgd_epoch(X_disk, y, args.batch_size))
        rows.append((f"SGD epoch (batch {args.batch_size}), in memory", sgd_memory,
                     f"{n / sgd_memory:,.0f} rows/s"))
        rows.append((f"SGD epoch (batch {args.batch_size}), streamed from the memmap", sgd_disk,
                     f"{n / sgd_disk:,.0f} rows/s"))

    width = max(len(name) for name, _, _ in rows)
    for name, seconds, note in rows:
        print(f"  {name:<{width}}  {seconds * 1e3:10.1f} ms   {note}")
    checks = [
        ("blocked GD iteration / floor", blocked / floor, 2.5),
        ("cluster GD iteration / blocked", cluster / blocked, 2.0),
        ("streamed SGD epoch / in-memory epoch", sgd_disk / sgd_memory, 1.5),
    ]
    print("targets:")
    for name, ratio, target in checks:
        if math.isnan(ratio):
            print(f"  {name}: not measured")
            continue
        verdict = "met" if ratio <= target else "MISSED"
        print(f"  {name}: {ratio:.2f} (target <= {target}) {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
