"""What checkpoints cost a fit: 500 full-batch epochs with ``checkpoint_every=1``, and none.

Both in one process, interleaved, the order rotated each repetition; also with the
write throttle off (every epoch written, as before issue 18) for comparison.

Run: ``python -m benchmarks.checkpoint_cost [--repeats 5] [--rows 1000,10000,50000] [--epochs 500]``

A fit shorter than the throttle's interval (``MIN_INTERVAL``, 1 s) pays for one write,
the checkpoint at its end; each size's last line gives that cost as a share of the fit
and the fit it would be 5 % of.
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
from typing import Any

import numpy as np

import handnet
import handnet.cli
import handnet.io.checkpoint as checkpoint_module
from benchmarks._common import alternate
from handnet.datasets import make_logistic
from handnet.datasets._teachers import TEACHER_WEIGHTS


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


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--rows takes comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--rows needs positive row counts, got {text!r}")
    return sizes


def _medians(runs: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Median seconds of each run: warmed up, interleaved, the order rotated (``alternate``)."""
    times = alternate({name: _as_runner(run) for name, run in runs.items()}, repeats)
    return {name: statistics.median(values["time"]) for name, values in times.items()}


def _as_runner(run: Callable[[], float]) -> Callable[[], dict[str, float]]:
    return lambda: {"time": run()}


def _report(title: str, medians: dict[str, float], measured: str, label: str) -> float:
    """Print the medians against the run without checkpoints; return ``measured``'s extra."""
    base = medians[NONE]
    print(title)
    for name, median in medians.items():
        print(f"{name:42s} {median * 1e3:8.1f} ms  {median / base:5.2f} x no checkpoint")
    extra = medians[measured] - base
    verdict = "met" if extra <= GOAL * base else "MISSED"
    print(f"  {label}: +{extra * 1e3:.1f} ms ({extra / base:.1%} of the fit; "
          f"<= {GOAL:.0%}: {verdict}", end="")
    return extra


def _measure(rows: int, features: int, epochs: int, repeats: int) -> dict[str, float]:
    """Median seconds of each way of fitting ``rows`` x ``features``, interleaved and rotated.

    The seed's teacher for 4 features; otherwise its weights repeated (a larger model of
    the same kind of data).
    """
    X, y = make_logistic(rows, w=np.resize(TEACHER_WEIGHTS, features), random_state=0)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run.npz"
        runs: dict[str, Callable[[], float]] = {
            NONE: lambda: _fit(X, y, epochs, None, True),
            THROTTLED: lambda: _fit(X, y, epochs, path, True),
            EVERY: lambda: _fit(X, y, epochs, path, False),
        }
        return _medians(runs, repeats)


def _cli_fit_seconds(arguments: list[str]) -> float:
    """The seconds ``handnet train`` reports for its fit, run in this process."""
    import contextlib
    import io

    import handnet.cli.train as train_command

    seconds: list[float] = []
    fit_model = train_command._fit_model

    def timed(*args: Any, **kwargs: Any) -> Any:
        result = fit_model(*args, **kwargs)
        seconds.append(result[0])
        return result

    train_command._fit_model = timed
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            status = handnet.cli.main(arguments)
    finally:
        train_command._fit_model = fit_model
    if status != 0 or len(seconds) != 1:
        raise RuntimeError(f"handnet {' '.join(arguments)} failed (status {status})")
    return seconds[0]


def _measure_cli(rows: int, repeats: int) -> dict[str, float]:
    """``handnet train`` at its defaults on the seed's ``rows`` x 4 CSV, with and without
    ``--checkpoint`` (so ``--checkpoint-every 1``): the fits' medians, interleaved."""
    X, y = make_logistic(rows, random_state=0)
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "seed.csv"
        np.savetxt(data, np.column_stack([X, y]), delimiter=",", header="x0,x1,x2,x3,y",
                   comments="", fmt="%.17g")
        base = ["train", str(data), "--target", "y", "--quiet"]
        checkpoint = Path(folder) / "run.npz"

        def with_checkpoint() -> float:
            checkpoint.unlink(missing_ok=True)  # a new run each time (no --resume)
            return _cli_fit_seconds([*base, "--checkpoint", str(checkpoint)])

        runs: dict[str, Callable[[], float]] = {
            NONE: lambda: _cli_fit_seconds(base),
            CLI_CHECKPOINT: with_checkpoint,
        }
        return _medians(runs, repeats)


NONE = "no checkpoint"
THROTTLED = "checkpoint_every=1, throttled"
EVERY = "checkpoint_every=1, every epoch written"
CLI_CHECKPOINT = "--checkpoint (every epoch, throttled)"
#: Issue 18's goal: checkpoints at the CLI's defaults cost at most this share of a fit.
GOAL = 0.05


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", type=_sizes, default=[1000],
                        help="comma-separated row counts, one measurement each (default 1000)")
    parser.add_argument("--features", type=int, default=4,
                        help="features per row (default 4, the seed's; the fingerprint of "
                        "large data is hashed on a helper thread)")
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--cli", action="store_true",
                        help="time `handnet train` at its defaults instead (the fit it "
                        "reports), on a CSV of the seed's rows, with and without --checkpoint")
    args = parser.parse_args(argv)
    print(f"load before: {os.getloadavg()}")
    for rows in args.rows:
        if args.cli:
            _report(f"handnet train at its defaults, {rows} x 4 CSV, medians of {args.repeats}",
                    _measure_cli(rows, args.repeats), CLI_CHECKPOINT, "--checkpoint")
            print(")")
            continue
        medians = _measure(rows, args.features, args.epochs, args.repeats)
        extra = _report(f"{rows} x {args.features}, {args.epochs} full-batch epochs, medians "
                        f"of {args.repeats}", medians, THROTTLED, "throttled")
        # The throttle writes nothing mid-run before MIN_INTERVAL, so a shorter fit's
        # whole cost is the one write at its end: the fit it would be 5 % of.
        print(f"; {GOAL:.0%} of a fit of {extra / GOAL * 1e3:.0f} ms)")
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
