"""The seed's experiment: handnet's GD against a plain NumPy loop written like the seed.

Both train logistic regression by full-batch gradient descent on the same
1000 x 4 data (learning rate 0.01, 5001 iterations, the loss computed every
iteration, as the seed does) from the same initial weights. Each is timed
``--repeats`` times, alternating, and the medians and their ratio are printed.

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

    plain_times, handnet_times = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        plain = seed_loop(X, y, w0, args.iterations)
        plain_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        ours = handnet_gd(X, y, seed, args.iterations)
        handnet_times.append(time.perf_counter() - start)

    plain_median = statistics.median(plain_times)
    handnet_median = statistics.median(handnet_times)
    print(f"seed experiment, 1000 x 4, {args.iterations} GD iterations, {args.repeats} repeats")
    print(f"plain NumPy loop (like the seed): {plain_median * 1e3:8.1f} ms (median)")
    print(f"handnet LogisticRegression GD:    {handnet_median * 1e3:8.1f} ms (median)")
    print(f"ratio handnet / plain loop:       {handnet_median / plain_median:8.2f}")
    print(f"max |parameter difference|:       {np.max(np.abs(plain - ours)):.2e}")


if __name__ == "__main__":
    main()
