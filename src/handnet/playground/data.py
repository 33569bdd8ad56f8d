"""The playground's data: 2-D sets, the train/test split and the input features.

NumPy only (no web imports): the session logic, the tests and the reproduction
script a learner downloads all import this module.

The classification sets are :mod:`handnet.datasets`' own generators (the seed's
logistic teacher restricted to its first two weights, XOR, circles, moons, two-arm
spirals) plus Gaussian blobs (three classes, for the softmax output); the
regression set is a smooth wave :math:`y = \\sin(2 x_1) \\cos(2 x_2)` with
Gaussian noise on ``y``. Every draw comes from ``np.random.default_rng(seed)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..datasets import (
    TEACHER_BIAS,
    TEACHER_WEIGHTS,
    make_circles,
    make_logistic,
    make_moons,
    make_spirals,
    make_xor,
    train_test_split,
)

Array = NDArray[np.float64]
Maker = Callable[[int, float, np.random.Generator], "tuple[Array, NDArray[np.generic]]"]


@dataclass(frozen=True)
class DataSet:
    """One of the playground's 2-D sets.

    Attributes
    ----------
    make : callable ``make(n_points, noise, rng) -> (X, y)``
    task : {"classification", "regression"}
    n_classes : int
        Number of classes (0 for regression).
    description : str
        One line for the page.
    """

    make: Maker
    task: str
    n_classes: int
    description: str


def _linear(n: int, noise: float, rng: np.random.Generator) -> tuple[Array, NDArray[np.generic]]:
    # The seed's teacher, restricted to its first two weights: labels round(sigmoid(x.w + b)),
    # then Gaussian noise on the points (as make_xor adds it).
    X, y = make_logistic(n, w=TEACHER_WEIGHTS[:2], b=TEACHER_BIAS, random_state=rng)
    return X + noise * rng.standard_normal(X.shape), y


def _xor(n: int, noise: float, rng: np.random.Generator) -> tuple[Array, NDArray[np.generic]]:
    return make_xor(n, noise=noise, random_state=rng)


def _circles(n: int, noise: float, rng: np.random.Generator) -> tuple[Array, NDArray[np.generic]]:
    return make_circles(n, noise=noise, random_state=rng)


def _moons(n: int, noise: float, rng: np.random.Generator) -> tuple[Array, NDArray[np.generic]]:
    X, y = make_moons(n, noise=noise, random_state=rng)
    return X - np.array([0.5, 0.25]), y  # centred on the origin, like the other sets


def _spirals(n: int, noise: float, rng: np.random.Generator) -> tuple[Array, NDArray[np.generic]]:
    # Two arms of one and a half turns each, the playground's classic hard case.
    return make_spirals(n, n_classes=2, noise=noise, turns=0.75, random_state=rng)


BLOB_CENTRES = np.array([[0.0, 0.8], [-0.7, -0.4], [0.7, -0.4]])
"""Where the three blobs sit (class k around row k)."""


def _blobs(n: int, noise: float, rng: np.random.Generator) -> tuple[Array, NDArray[np.generic]]:
    y = np.arange(n, dtype=np.int64) % len(BLOB_CENTRES)
    X = BLOB_CENTRES[y] + (0.2 + noise) * rng.standard_normal((n, 2))
    order = rng.permutation(n)
    return X[order], y[order]


def _waves(n: int, noise: float, rng: np.random.Generator) -> tuple[Array, NDArray[np.generic]]:
    X = rng.uniform(-1.5, 1.5, size=(n, 2))
    y = np.sin(2 * X[:, 0]) * np.cos(2 * X[:, 1]) + noise * rng.standard_normal(n)
    return X, y


DATASETS: dict[str, DataSet] = {
    "linear": DataSet(_linear, "classification", 2,
                      "the seed's logistic teacher in 2-D: y = round(sigmoid(0.3 x1 + 0.6 x2 "
                      "+ 0.2))"),
    "xor": DataSet(_xor, "classification", 2, "XOR: the class is whether x1 and x2 differ in sign"),
    "circles": DataSet(_circles, "classification", 2, "a circle inside a circle"),
    "moons": DataSet(_moons, "classification", 2, "two interleaving half moons"),
    "spirals": DataSet(_spirals, "classification", 2, "two interleaved spiral arms"),
    "blobs": DataSet(_blobs, "classification", 3, "three Gaussian blobs (softmax output)"),
    "waves": DataSet(_waves, "regression", 0, "regression: y = sin(2 x1) cos(2 x2) + noise"),
}
"""The playground's data sets by name (what the page offers)."""

FEATURES: dict[str, Callable[[Array], Array]] = {
    "x1": lambda P: P[:, 0],
    "x2": lambda P: P[:, 1],
    "x1^2": lambda P: P[:, 0] ** 2,
    "x2^2": lambda P: P[:, 1] ** 2,
    "x1*x2": lambda P: P[:, 0] * P[:, 1],
    "sin(x1)": lambda P: np.sin(P[:, 0]),
    "sin(x2)": lambda P: np.sin(P[:, 1]),
}
"""Input features computed from a point ``(x1, x2)``, as TensorFlow Playground offers them."""


def make_data(
    name: str, n_points: int, noise: float, seed: int
) -> tuple[Array, NDArray[np.generic]]:
    """The points ``X`` (n_points, 2) and targets ``y`` of data set ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`.
    n_points : int
    noise : float
        Standard deviation of the Gaussian noise (on the points, or on the spirals'
        angle, or on the regression target).
    seed : int

    Returns
    -------
    X : ndarray of shape (n_points, 2)
    y : ndarray of shape (n_points,)
        Integer labels, or float targets for a regression set.
    """
    X, y = DATASETS[name].make(n_points, noise, np.random.default_rng(seed))
    return np.ascontiguousarray(X, dtype=np.float64), y


def split(
    X: Array, y: NDArray[np.generic], test_fraction: float, seed: int, stratify: bool
) -> tuple[Array, Array, NDArray[np.generic], NDArray[np.generic]]:
    """:func:`handnet.datasets.train_test_split`, seeded by ``seed`` (stratified for classes)."""
    return train_test_split(X, y, test_size=test_fraction, stratify=stratify, random_state=seed)


def features(points: Array, names: Sequence[str]) -> Array:
    """The input matrix (n, len(names)): each named feature of each point, in that order."""
    return np.column_stack([FEATURES[name](points) for name in names])


def plane_bounds(X: Array) -> tuple[float, float, float, float]:
    """The square of the plane drawn: the points' extent plus a margin, the same on both axes."""
    half = float(np.max(np.abs(X))) * 1.1 if len(X) else 1.0
    half = max(half, 1e-3)
    return (-half, half, -half, half)


def grid(bounds: tuple[float, float, float, float], size: int) -> Array:
    """``size * size`` points on the plane, row by row from the top (y max) down."""
    x_min, x_max, y_min, y_max = bounds
    xs = np.linspace(x_min, x_max, size)
    ys = np.linspace(y_max, y_min, size)
    gx, gy = np.meshgrid(xs, ys)
    return np.column_stack([gx.ravel(), gy.ravel()])
