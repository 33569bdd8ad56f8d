"""What checkpoints cost a fit: 500 full-batch epochs with ``checkpoint_every=1``, and none.

Both in one process, interleaved, the order rotated each repetition; also with the
write throttle off (every epoch written, as before issue 18) for comparison.

Run: ``python -m benchmarks.checkpoint_cost [--repeats 5] [--rows 1000] [--epochs 500]``
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import handnet
import handnet.io.checkpoint as checkpoint_module
from handnet.datasets import make_logistic


def _fit(X: np.ndarray, y: np.ndarray, epochs: int, path: Path | None, throttle: bool) -> float:
    """Seconds of one ``fit`` (with a checkpoint at ``path`` every epoch, if given)."""
    saved = checkpoint_module.MIN_INTERVAL, checkpoint_module.MAX_SHARE
    if not throttle:  # every due checkpoint written: the behaviour before the throttle
        checkpoint_module.MIN_INTERVAL, checkpoint_module.MAX_SHARE = 0.0, math.inf
    try:
        model = handnet.LogisticRegression(
            learning_rate=0.1, max_iter=epochs, tol=None, random_state=0
        )
        start = time.perf_counter()
        if path is None:
            model.fit(X, y)
        else:
            model.fit(X, y, checkpoint=path, checkpoint_every=1)
        return time.perf_counter() - start
    finally:
        checkpoint_module.MIN_INTERVAL, checkpoint_module.MAX_SHARE = saved


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=500)
    args = parser.parse_args(argv)
    X, y = make_logistic(args.rows, random_state=0)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run.npz"
        runs: dict[str, Callable[[], float]] = {
            "no checkpoint": lambda: _fit(X, y, args.epochs, None, True),
            "checkpoint_every=1, throttled": lambda: _fit(X, y, args.epochs, path, True),
            "checkpoint_every=1, every epoch written": lambda: _fit(X, y, args.epochs, path, False),
        }
        names = list(runs)
        for run in runs.values():
            run()
        times: dict[str, list[float]] = {name: [] for name in names}
        print(f"load before: {os.getloadavg()}")
        for repetition in range(args.repeats):
            shift = repetition % len(names)
            for name in names[shift:] + names[:shift]:
                times[name].append(runs[name]())
    base = statistics.median(times["no checkpoint"])
    print(f"{args.rows} x {X.shape[1]}, {args.epochs} full-batch epochs, medians of "
          f"{args.repeats}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:42s} {median * 1e3:8.1f} ms  {median / base:5.2f} x no checkpoint")
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
