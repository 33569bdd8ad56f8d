"""What convolutions buy: a small CNN against MLPs, on digits and on a task where position varies.

Two experiments, each over several seeds (the table gives the mean and the sample
standard deviation of the test accuracy):

* **Digits** (scikit-learn's 8x8 images, pixel values 0-16 scaled to [0, 1]): for
  each seed one stratified split, 75 % train and 25 % test. The CNN is
  :func:`handnet.models.neural_net.small_cnn` (``handnet train --model cnn``): two blocks of
  3x3 convolution, batch normalisation, ReLU and 2x2 max-pooling (16 and 32
  filters), then a dense layer of 64 ReLU units. The MLP has one hidden layer of 64
  ReLU units (as in ``benchmarks/accuracy.py``). Both: Adam (learning rate 1e-3),
  mini-batches of 32, a fixed number of epochs (the MLP five times the CNN's: 200).
* **A pattern anywhere** (generated, 28x28): each image holds one of three 5x5
  patterns (a plus, a cross, a hollow square) at a random place, on noise. Where the
  pattern sits says nothing about its class, so a model must recognise it wherever
  it is. The CNN (two 5x5 convolutions with batch normalisation, ReLU and
  max-pooling, global average pooling, a linear output) shares each filter's
  weights over every position; the MLP gets the same number of parameters (or the
  next larger width), which on 784 inputs buys it only a handful of hidden units.

Run::

    python benchmarks/cnn_accuracy.py                        # 5 seeds
    python benchmarks/cnn_accuracy.py --output docs/cnn.md --section
    python benchmarks/cnn_accuracy.py --quick                # 2 seeds, few epochs (smoke test)
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

try:
    from sklearn.datasets import load_digits
except ImportError:  # pragma: no cover - the digits come with scikit-learn
    sys.exit("benchmarks/cnn_accuracy.py needs scikit-learn: pip install 'handnet[sklearn]'")

import handnet
from handnet import (
    Activation,
    BatchNorm,
    Conv2D,
    Dense,
    GlobalAvgPool2D,
    MaxPool2D,
    MLPClassifier,
    NeuralNetClassifier,
)
from handnet.datasets import train_test_split
from handnet.exceptions import ConvergenceWarning
from handnet.models.neural_net import small_cnn

PATTERNS = {
    "plus": np.array(
        [[0, 0, 1, 0, 0], [0, 0, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 1, 0, 0], [0, 0, 1, 0, 0]]
    ),
    "cross": np.eye(5, dtype=int) | np.eye(5, dtype=int)[::-1],
    "square": np.pad(np.zeros((3, 3), dtype=int), 1, constant_values=1),
}
IMAGE_SIZE = 28


def make_patterns(
    n_samples: int, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n_samples`` 28x28 images ``(n, 1, 28, 28)``, each a random pattern at a random place."""
    labels = rng.integers(0, len(PATTERNS), size=n_samples)
    images = noise * rng.standard_normal((n_samples, 1, IMAGE_SIZE, IMAGE_SIZE))
    stamps = list(PATTERNS.values())
    corners = rng.integers(0, IMAGE_SIZE - 5 + 1, size=(n_samples, 2))
    for image, label, (row, col) in zip(images, labels, corners, strict=True):
        image[0, row : row + 5, col : col + 5] += stamps[label]
    return images, labels


def pattern_cnn() -> list[Any]:
    return [
        Conv2D(1, 8, 5, use_bias=False), BatchNorm(), Activation("relu"), MaxPool2D(2),
        Conv2D(8, 16, 5, use_bias=False), BatchNorm(), Activation("relu"), GlobalAvgPool2D(),
        Dense(16, None),
    ]


def n_parameters(model: Any) -> int:
    return int(model.network_.n_parameters)


@dataclass
class Row:
    task: str
    model: str
    parameters: int
    accuracies: list[float]
    seconds: float

    def cells(self) -> list[str]:
        mean = statistics.mean(self.accuracies)
        spread = statistics.stdev(self.accuracies) if len(self.accuracies) > 1 else 0.0
        return [
            self.task, self.model, f"{self.parameters:,}", f"{mean:.4f} ± {spread:.4f}",
            f"{min(self.accuracies):.4f}", f"{self.seconds / len(self.accuracies):.1f}",
        ]


def _run(
    task: str, name: str, make: Callable[[int], Any], splits: list[tuple[Any, ...]]
) -> Row:
    accuracies, parameters, start = [], 0, time.perf_counter()
    for seed, (X_train, X_test, y_train, y_test) in enumerate(splits):
        model = make(seed).fit(X_train, y_train)
        accuracies.append(float(model.score(X_test, y_test)))
        parameters = n_parameters(model)
    return Row(task, name, parameters, accuracies, time.perf_counter() - start)


def digits_rows(seeds: int, epochs: int) -> list[Row]:
    digits = load_digits()
    images = (digits.images / 16.0).reshape(-1, 1, 8, 8)
    splits = [
        train_test_split(images, digits.target, test_size=0.25, stratify=True,
                         random_state=seed)
        for seed in range(seeds)
    ]
    flat = [(a.reshape(len(a), -1), b.reshape(len(b), -1), c, d) for a, b, c, d in splits]

    def cnn(seed: int) -> Any:
        return NeuralNetClassifier(small_cnn(), learning_rate=1e-3, batch_size=32,
                                   max_iter=epochs, tol=None, random_state=seed)

    def mlp(seed: int) -> Any:
        return MLPClassifier((64,), learning_rate=1e-3, batch_size=32, max_iter=epochs * 5,
                             tol=None, random_state=seed)

    return [
        _run("digits 8x8", f"CNN small_cnn(), {epochs} epochs", cnn, splits),
        _run("digits 8x8", f"MLP 64, {epochs * 5} epochs", mlp, flat),
    ]


def pattern_rows(seeds: int, epochs: int, n_train: int, n_test: int) -> list[Row]:
    splits = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        X, y = make_patterns(n_train + n_test, noise=0.3, rng=rng)
        splits.append((X[:n_train], X[n_train:], y[:n_train], y[n_train:]))

    def cnn(seed: int) -> Any:
        return NeuralNetClassifier(pattern_cnn(), learning_rate=0.01, batch_size=32,
                                   max_iter=epochs, tol=None, random_state=seed)

    cnn_parameters = NeuralNetClassifier(pattern_cnn(), max_iter=1, random_state=0).fit(
        splits[0][0][:10], np.arange(10) % 3
    ).network_.n_parameters
    # The MLP's width: the smallest whose parameter count reaches the CNN's.
    width = 1
    while (IMAGE_SIZE**2 + 1) * width + (width + 1) * 3 < cnn_parameters:
        width += 1

    def mlp(seed: int) -> Any:
        return MLPClassifier((width,), learning_rate=0.01, batch_size=32, max_iter=epochs,
                             tol=None, random_state=seed)

    flat = [(a.reshape(len(a), -1), b.reshape(len(b), -1), c, d) for a, b, c, d in splits]
    task = f"pattern anywhere 28x28 ({n_train} train)"
    return [
        _run(task, f"CNN conv5-pool-conv5-global pool, {epochs} epochs", cnn, splits),
        _run(task, f"MLP {width} (as many parameters), {epochs} epochs", mlp, flat),
    ]


def table(rows: list[Row]) -> str:
    header = ["task", "model", "parameters", "test accuracy (mean ± sd)", "worst seed",
              "s per seed"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 seeds, few epochs, small data")
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)
    seeds = 2 if args.quick else args.seeds
    warnings.simplefilter("ignore", ConvergenceWarning)
    rows = digits_rows(seeds, epochs=2 if args.quick else 40)
    rows += pattern_rows(seeds, epochs=2 if args.quick else 15,
                         n_train=300 if args.quick else 3000, n_test=200 if args.quick else 1000)
    command = "python benchmarks/cnn_accuracy.py" + (" --quick" if args.quick else "")
    report = "\n".join([
        f"Measured with `{command}` (handnet {handnet.__version__}, NumPy {np.__version__}, "
        f"Python {platform.python_version()}, {seeds} seeds).",
        "",
        table(rows),
    ])
    print(report)
    if args.output is not None:
        args.output.write_text(report + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
