"""2-D sets that no linear model separates: XOR, circles, moons and spirals."""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import NDArray

from ..data.validation import check_random_state as _rng  # shared with the models
from ._checks import RandomState, _check_int, _check_nonnegative_float


def _shuffled(
    X: NDArray[np.float64], y: NDArray[np.int64], rng: np.random.Generator, shuffle: bool
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    if not shuffle:
        return X, y
    order = rng.permutation(len(y))
    return X[order], y[order]


def make_xor(
    n_samples: int = 400, noise: float = 0.0, random_state: RandomState = None
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    r"""XOR: points in the square labelled by whether their coordinates differ in sign.

    .. math::

        x_i \sim U([-1, 1]^2), \qquad y_i = [\operatorname{sign} x_{i0} \ne
        \operatorname{sign} x_{i1}], \qquad x_i \leftarrow x_i + \varepsilon_i,\;
        \varepsilon_i \sim \mathcal N(0, \text{noise}^2 I_2)

    Classes 0 (quadrants I and III) and 1 (II and IV). The noise is added after
    labelling, so with ``noise > 0`` points near the axes may sit on the wrong side.

    Parameters
    ----------
    n_samples : int, default 400
    noise : float, default 0.0
        Standard deviation of the Gaussian noise added to ``X``.
    random_state : int, numpy.random.Generator or None

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float64
    y : ndarray of shape (n_samples,), int64
    """
    n = _check_int(n_samples, "n_samples", 0)
    sigma = _check_nonnegative_float(noise, "noise")
    rng = _rng(random_state)
    X = rng.uniform(-1.0, 1.0, size=(n, 2))
    y = ((X[:, 0] > 0) != (X[:, 1] > 0)).astype(np.int64)
    if sigma > 0:
        X += sigma * rng.standard_normal((n, 2))
    return X, y


def make_circles(
    n_samples: int = 400,
    noise: float = 0.05,
    factor: float = 0.5,
    random_state: RandomState = None,
    *,
    shuffle: bool = True,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    r"""Two concentric circles: an outer one (class 0) around an inner one (class 1).

    .. math::

        x = r\,(\cos\theta, \sin\theta) + \varepsilon, \qquad
        r = 1 \text{ (class 0)}, \; r = \text{factor} \text{ (class 1)}, \qquad
        \varepsilon \sim \mathcal N(0, \text{noise}^2 I_2)

    with the angles :math:`\theta` evenly spaced around each circle. The outer
    circle gets ``n_samples // 2`` points, the inner one the rest.

    Parameters
    ----------
    n_samples : int, default 400
    noise : float, default 0.05
        Standard deviation of the Gaussian noise added to ``X``.
    factor : float, default 0.5
        Inner radius over outer radius, in ``(0, 1)``.
    random_state : int, numpy.random.Generator or None
    shuffle : bool, default True
        Shuffle the rows (otherwise class 0 comes first).

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float64
    y : ndarray of shape (n_samples,), int64
    """
    n = _check_int(n_samples, "n_samples", 0)
    sigma = _check_nonnegative_float(noise, "noise")
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or not 0 < factor < 1:
        raise ValueError(f"factor must be a number in (0, 1), got {factor!r}")
    rng = _rng(random_state)
    n_outer = n // 2
    n_inner = n - n_outer
    parts = []
    for count, radius in ((n_outer, 1.0), (n_inner, float(factor))):
        theta = np.linspace(0.0, 2.0 * np.pi, count, endpoint=False)
        parts.append(radius * np.column_stack([np.cos(theta), np.sin(theta)]))
    X = np.concatenate(parts).reshape(n, 2)
    y = np.repeat(np.array([0, 1], dtype=np.int64), [n_outer, n_inner])
    if sigma > 0:
        X += sigma * rng.standard_normal((n, 2))
    return _shuffled(X, y, rng, shuffle)


def make_moons(
    n_samples: int = 400,
    noise: float = 0.1,
    random_state: RandomState = None,
    *,
    shuffle: bool = True,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    r"""Two interleaving half circles.

    With :math:`t` evenly spaced in :math:`[0, \pi]`:

    .. math::

        \text{class 0: } x = (\cos t, \sin t), \qquad
        \text{class 1: } x = (1 - \cos t, \tfrac12 - \sin t),

    plus :math:`\mathcal N(0, \text{noise}^2 I_2)` noise. Class 0 gets
    ``n_samples // 2`` points, class 1 the rest.

    Parameters
    ----------
    n_samples : int, default 400
    noise : float, default 0.1
        Standard deviation of the Gaussian noise added to ``X``.
    random_state : int, numpy.random.Generator or None
    shuffle : bool, default True
        Shuffle the rows (otherwise class 0 comes first).

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float64
    y : ndarray of shape (n_samples,), int64
    """
    n = _check_int(n_samples, "n_samples", 0)
    sigma = _check_nonnegative_float(noise, "noise")
    rng = _rng(random_state)
    n_upper = n // 2
    n_lower = n - n_upper
    t_upper = np.linspace(0.0, np.pi, n_upper)
    t_lower = np.linspace(0.0, np.pi, n_lower)
    upper = np.column_stack([np.cos(t_upper), np.sin(t_upper)])
    lower = np.column_stack([1.0 - np.cos(t_lower), 0.5 - np.sin(t_lower)])
    X = np.concatenate([upper, lower]).reshape(n, 2)
    y = np.repeat(np.array([0, 1], dtype=np.int64), [n_upper, n_lower])
    if sigma > 0:
        X += sigma * rng.standard_normal((n, 2))
    return _shuffled(X, y, rng, shuffle)


def make_spirals(
    n_samples: int = 600,
    n_classes: int = 3,
    noise: float = 0.2,
    turns: float = 2.0 / np.pi,
    random_state: RandomState = None,
    *,
    shuffle: bool = True,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    r"""The CS231n ``K``-arm spiral: one arm per class, winding out from the origin.

    For class :math:`k` with :math:`m_k` points, :math:`s = 2\pi\cdot\text{turns}`
    the angle each arm sweeps, and :math:`j = 0, \dots, m_k - 1`:

    .. math::

        r_j = \frac{j}{m_k - 1}, \qquad
        \theta_j = k s + \frac{j}{m_k - 1} s + \text{noise}\cdot\varepsilon_j, \qquad
        x_j = r_j (\sin\theta_j, \cos\theta_j), \qquad \varepsilon_j \sim \mathcal N(0, 1)

    The default ``turns = 2/π`` makes :math:`s = 4` radians, the classic
    ``linspace(4k, 4(k+1))``. The noise perturbs the angle, not the position, so
    points stay on their radius. ``n_samples`` is split as evenly as possible:
    the first ``n_samples % n_classes`` classes get one extra point.

    Parameters
    ----------
    n_samples : int, default 600
    n_classes : int, default 3
        Number of arms ``K >= 1``.
    noise : float, default 0.2
        Standard deviation of the angular noise, in radians.
    turns : float, default 2/π
        Revolutions each arm sweeps (> 0).
    random_state : int, numpy.random.Generator or None
    shuffle : bool, default True
        Shuffle the rows (otherwise they come class by class).

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float64
        Points in the unit disc.
    y : ndarray of shape (n_samples,), int64
        Labels in ``0 .. K-1``.
    """
    n = _check_int(n_samples, "n_samples", 0)
    k_classes = _check_int(n_classes, "n_classes", 1)
    sigma = _check_nonnegative_float(noise, "noise")
    if _check_nonnegative_float(turns, "turns") == 0:
        raise ValueError("turns must be > 0, got 0")
    rng = _rng(random_state)
    span = 2.0 * np.pi * float(turns)
    counts = np.full(k_classes, n // k_classes)
    counts[: n % k_classes] += 1
    parts = []
    for k, count in enumerate(counts):
        radius = np.linspace(0.0, 1.0, count)
        theta = np.linspace(k * span, (k + 1) * span, count)
        if sigma > 0:
            theta += sigma * rng.standard_normal(count)
        parts.append(radius[:, None] * np.column_stack([np.sin(theta), np.cos(theta)]))
    X = np.concatenate(parts).reshape(n, 2)
    y = np.repeat(np.arange(k_classes, dtype=np.int64), counts)
    return _shuffled(X, y, rng, shuffle)
