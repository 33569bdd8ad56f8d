"""Two source trees of handnet, same workloads, same run: is the new one slower anywhere?

A refactoring must not cost speed. This times a few representative fits with an
old tree's ``src`` and a new one's, each fit in its own interpreter
(``PYTHONPATH=TREE/src``), the two trees alternating first and second from round
to round, and reports each workload's median and the ratio new / old. Make the
old tree with ``git archive REV | tar -x -C /tmp/old``.

Run: ``python -m benchmarks.trees --old /tmp/old/src --new src [--rounds 5] [--threads 1]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

#: Each workload builds its data, fits once to warm up, then prints the median of
#: three timed fits. Every one is a public API call a user makes.
_PROLOGUE = """
import time, warnings
warnings.simplefilter("ignore")
import numpy as np
import handnet
rng = np.random.default_rng(0)
"""

WORKLOADS: dict[str, str] = {
    "seed GD, 5001 iterations, 1000 x 4": """
X = rng.standard_normal((1000, 4))
y = (X @ np.array([0.3, 0.6, -0.7, -1.3]) + 0.2 > 0).astype(int)
fit = lambda: handnet.LogisticRegression(learning_rate=0.1, max_iter=5001, tol=None).fit(X, y)
""",
    "MLP (128), Adam, 20000 x 64, 5 epochs": """
X = rng.standard_normal((20000, 64))
y = (X[:, 0] * X[:, 1] > 0).astype(int)
fit = lambda: handnet.MLPClassifier(hidden_layer_sizes=(128,), max_iter=5, tol=None,
                                    random_state=0).fit(X, y)
""",
    "softmax L-BFGS, digits, 100 iterations": """
from sklearn.datasets import load_digits
X, y = load_digits(return_X_y=True)
X = X / 16
fit = lambda: handnet.SoftmaxRegression(max_iter=100, tol=None).fit(X, y)
""",
    "MLP (32, 32), SGD batch 32, moons 20000, 3 epochs": """
from handnet.datasets import make_moons
X, y = make_moons(20000, noise=0.2, random_state=0)
fit = lambda: handnet.MLPClassifier(hidden_layer_sizes=(32, 32), optimizer="sgd",
                                    learning_rate=0.05, batch_size=32, max_iter=3, tol=None,
                                    random_state=0).fit(X, y)
""",
    "CNN conv-pool-dense, 2000 x 1 x 12 x 12, 2 epochs": """
from handnet import Conv2D, Dense, Flatten, MaxPool2D, NeuralNetClassifier, ReLU
X = rng.standard_normal((2000, 1, 12, 12)).astype(np.float32)
y = (X[:, 0, 3:6, 3:6].sum(axis=(1, 2)) > 0).astype(int)
fit = lambda: NeuralNetClassifier(
    layers=[Conv2D(1, 8, 3), ReLU(), MaxPool2D(2), Flatten(), Dense(None, None)],
    max_iter=2, tol=None, random_state=0, batch_size=64).fit(X, y)
""",
}

_EPILOGUE = """
fit()
times = []
for _ in range(3):
    start = time.perf_counter()
    fit()
    times.append(time.perf_counter() - start)
print(handnet.__file__)
print(sorted(times)[1])
"""


def time_workload(source: str, workload: str, threads: int) -> float:
    """Seconds of one fit of ``workload`` with handnet from ``source`` (a ``src`` folder)."""
    env = dict(os.environ, PYTHONPATH=os.path.abspath(source))
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    code = _PROLOGUE + WORKLOADS[workload] + _EPILOGUE
    # Run from the filesystem root, so that no checkout's handnet shadows PYTHONPATH's.
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, cwd=os.path.abspath(os.sep), check=True)
    imported, seconds = result.stdout.strip().splitlines()[-2:]
    # An installed handnet would answer for a wrong path: refuse to time the wrong tree.
    if not os.path.abspath(imported).startswith(os.path.abspath(source) + os.sep):
        raise ValueError(f"{source!r} holds no handnet package (the child imported {imported})")
    return float(seconds)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="the old tree's src folder")
    parser.add_argument("--new", default="src", help="the new tree's src folder (default src)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    args = parser.parse_args(argv)
    times: dict[tuple[str, str], list[float]] = {}
    for round_index in range(args.rounds):
        order = ("old", "new") if round_index % 2 == 0 else ("new", "old")
        for workload in WORKLOADS:
            for tree in order:
                source = args.old if tree == "old" else args.new
                seconds = time_workload(source, workload, args.threads)
                times.setdefault((workload, tree), []).append(seconds)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.rounds} rounds, {args.threads} BLAS thread(s), load average now {load:.1f}")
    print("| workload | old (ms) | new (ms) | new / old |")
    print("|---|---|---|---|")
    for workload in WORKLOADS:
        old = statistics.median(times[(workload, "old")])
        new = statistics.median(times[(workload, "new")])
        print(f"| {workload} | {1000 * old:.1f} | {1000 * new:.1f} | {new / old:.2f} |")


if __name__ == "__main__":
    main()
