"""The seed's experiment: handnet's GD against the tutorial's NumPy loop, as written and lean.

All train logistic regression by full-batch gradient descent on the same 1000 x 4
data (learning rate 0.01, 5001 iterations) from the same initial weights. The
loop as the seed writes it computes the loss every iteration; the lean loop
computes it only at the iterations that print it (every 100th), as the seed's own
comment allows; handnet records the loss of every iteration (its loss curve and
stopping rule need it). Each is timed ``--repeats`` times, the order rotated,
and the medians and their ratios are printed.

Run: python benchmarks/seed.py [--repeats 7] [--iterations 5001]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import handnet
from handnet.datasets import make_logistic


def seed_loop(X: np.ndarray, y: np.ndarray, w: np.ndarray, iterations: int) -> np.ndarray:
    """The seed's own algorithm, written as the seed writes it (naive sigmoid and log)."""
    b = np.zeros(1)
    m = X.shape[0]
    for _ in range(iterations):
        y_hat = 1 / (1 + np.exp(-(np.dot(X, w) + b)))
        loss = -1 / m * np.sum(y * np.log(y_hat) + (1 - y) * np.log(1 - y_hat))
        dw = -1 / m * np.dot((y - y_hat), X)
        db = -1 / m * np.sum(y - y_hat)
        w = w - 0.01 * dw
        b = b - 0.01 * db
    del loss
    return np.concatenate([w, b])


def lean_loop(X: np.ndarray, y: np.ndarray, w: np.ndarray, iterations: int) -> np.ndarray:
    """The seed's loop computing the loss only where it prints it (every 100th iteration)."""
    b = np.zeros(1)
    m = X.shape[0]
    for i in range(iterations):
        y_hat = 1 / (1 + np.exp(-(np.dot(X, w) + b)))
        if i % 100 == 0:
            loss = -1 / m * np.sum(y * np.log(y_hat) + (1 - y) * np.log(1 - y_hat))
            del loss  # the seed prints it here
        dw = -1 / m * np.dot((y - y_hat), X)
        db = -1 / m * np.sum(y - y_hat)
        w = w - 0.01 * dw
        b = b - 0.01 * db
    return np.concatenate([w, b])


def handnet_gd(X: np.ndarray, y: np.ndarray, seed: int, iterations: int) -> np.ndarray:
    model = handnet.LogisticRegression(
        learning_rate=0.01, max_iter=iterations, tol=None, init="normal", random_state=seed
    ).fit(X, y)
    return np.concatenate([model.coef_.ravel(), model.intercept_])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--iterations", type=int, default=5001)
    args = parser.parse_args()

    seed = 0
    X, y = make_logistic(1000, random_state=seed)
    y = y.astype(np.float64)
    # handnet's LogisticRegression(init="normal") draws w from its own generator first:
    w0 = np.random.default_rng(seed).standard_normal((4, 1)).ravel()

    runs = {
        "plain NumPy loop (as the seed writes it)": lambda: seed_loop(X, y, w0, args.iterations),
        "lean NumPy loop (loss every 100th)": lambda: lean_loop(X, y, w0, args.iterations),
        "handnet LogisticRegression GD": lambda: handnet_gd(X, y, seed, args.iterations),
    }
    names = list(runs)
    times: dict[str, list[float]] = {name: [] for name in names}
    found: dict[str, np.ndarray] = {}
    for repetition in range(args.repeats):
        shift = repetition % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            found[name] = runs[name]()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    ours = medians[names[2]]
    print(f"seed experiment, 1000 x 4, {args.iterations} GD iterations, {args.repeats} repeats")
    for name in names:
        print(f"{name + ':':45s} {medians[name] * 1e3:8.1f} ms (median)")
    print(f"ratio handnet / loop as written:               {ours / medians[names[0]]:8.2f}")
    print(f"ratio handnet / lean loop:                     {ours / medians[names[1]]:8.2f}")
    difference = np.max(np.abs(found[names[0]] - found[names[2]]))
    print(f"max |parameter difference| vs the seed's loop: {difference:.2e}")


if __name__ == "__main__":
    main()
