r"""Toy data sets, splitting, scaling and MNIST-style IDX files.

Synthetic data with a known answer is the quickest way to check that a network
learns what it should:

* :func:`make_logistic` draws Gaussian features and labels them with a fixed
  logistic teacher :math:`y = [\sigma(x \cdot w + b) \ge \tfrac12]` (or a
  Bernoulli draw from :math:`\sigma`), so a one-layer network can recover
  :math:`(w, b)` exactly; :data:`TEACHER_WEIGHTS` and :data:`TEACHER_BIAS` are
  the tutorial "seed" experiment's teacher.
* :func:`make_softmax` does the same for ``K`` classes with a softmax teacher.
* :func:`make_xor`, :func:`make_circles`, :func:`make_moons` and
  :func:`make_spirals` are 2-D sets that no linear model separates, for showing
  what hidden layers buy.

Helpers: :func:`one_hot`, :func:`train_test_split`, :class:`Standardizer` /
:func:`standardize`, and :func:`load_idx` / :func:`save_idx` / :func:`load_mnist`
for the IDX format MNIST is distributed in.

Every random draw goes through ``np.random.default_rng(random_state)``, so an
int seed fixes the output, a ``Generator`` is advanced in place, and the global
NumPy RNG is never touched. No function modifies the arrays it is given.
"""

from __future__ import annotations

import gzip
import math
import numbers
import os
from typing import Any, Literal, Protocol, overload

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .activations import sigmoid, softmax
from .exceptions import NotFittedError
from .validation import check_random_state as _rng  # shared with the models

__all__ = [
    "TEACHER_BIAS",
    "TEACHER_WEIGHTS",
    "Standardizer",
    "load_idx",
    "load_mnist",
    "make_circles",
    "make_logistic",
    "make_moons",
    "make_softmax",
    "make_spirals",
    "make_xor",
    "one_hot",
    "save_idx",
    "standardize",
    "train_test_split",
]

RandomState = int | np.integer | np.random.Generator | None
"""What ``random_state`` accepts: an int seed, a ``Generator`` (used, and advanced, as is)
or ``None`` (fresh OS entropy)."""

PathType = str | os.PathLike[str]

TEACHER_WEIGHTS: NDArray[np.float64] = np.array([0.3, 0.6, -0.7, -1.3])
"""Weights :math:`w \\in \\mathbb R^4` of the tutorial seed experiment's logistic teacher."""
# The array is the default argument of make_logistic, so an accidental in-place edit by a
# caller would silently change every later default data set.
TEACHER_WEIGHTS.setflags(write=False)

TEACHER_BIAS: float = 0.2
"""Bias :math:`b` of the tutorial seed experiment's logistic teacher."""


# --- argument checks ---------------------------------------------------------------------


def _check_int(value: Any, name: str, minimum: int) -> int:
    """Return ``value`` as an int, checking it is an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_nonnegative_float(value: Any, name: str) -> float:
    """Return ``value`` as a float, checking it is a finite real number ``>= 0``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _finite_float_array(values: ArrayLike, name: str) -> NDArray[np.float64]:
    """``values`` as a float64 array, rejecting non-numeric and non-finite entries."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numeric: {error}") from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinity")
    return array


# --- teachers ----------------------------------------------------------------------------


def make_logistic(
    n_samples: int = 1000,
    w: ArrayLike = TEACHER_WEIGHTS,
    b: float = TEACHER_BIAS,
    labels: str = "round",
    random_state: RandomState = None,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    r"""Gaussian features labelled by a logistic-regression teacher.

    .. math::

        x_i \sim \mathcal N(0, I_d), \qquad p_i = \sigma(x_i \cdot w + b),
        \qquad \sigma(z) = \frac{1}{1 + e^{-z}}

    and, depending on ``labels``,

    * ``"round"``: :math:`y_i = \operatorname{round}(p_i) = [x_i \cdot w + b > 0]`
      (noise-free: the classes are linearly separable by the teacher's hyperplane);
    * ``"bernoulli"``: :math:`y_i \sim \operatorname{Bernoulli}(p_i)`, drawn as
      :math:`y_i = [u_i < p_i]` with :math:`u_i \sim U[0, 1)` (label noise as a
      real logistic model has it).

    The rounded labels are computed from the sign of the logit rather than by
    rounding :math:`\sigma`, because :math:`\sigma(z)` rounds to exactly 0.5 in
    floating point for tiny positive :math:`z`, where ``np.round`` would say 0.

    Parameters
    ----------
    n_samples : int, default 1000
        Number of rows ``n`` (0 gives empty arrays).
    w : array_like of shape (d,), default :data:`TEACHER_WEIGHTS`
        Teacher weights; ``d = len(w)`` is the number of features.
    b : float, default :data:`TEACHER_BIAS`
        Teacher bias.
    labels : {"round", "bernoulli"}, default "round"
        How logits become labels (see above).
    random_state : int, numpy.random.Generator or None
        Seed or generator. ``X`` is drawn first, then the Bernoulli uniforms,
        from the same generator, so a seed fixes both.

    Returns
    -------
    X : ndarray of shape (n, d), float64
        Standard normal features.
    y : ndarray of shape (n,), int64
        Labels in ``{0, 1}``.
    """
    n = _check_int(n_samples, "n_samples", 0)
    weights = _finite_float_array(w, "w")
    if weights.ndim != 1 or weights.size == 0:
        raise ValueError(f"w must be a non-empty 1-D array of weights, got shape {weights.shape}")
    if isinstance(b, bool) or not isinstance(b, numbers.Real) or not math.isfinite(b):
        raise ValueError(f"b must be a finite number, got {b!r}")
    if labels not in ("round", "bernoulli"):
        raise ValueError(f"labels must be 'round' or 'bernoulli', got {labels!r}")
    rng = _rng(random_state)

    X = rng.standard_normal((n, weights.size))
    z = X @ weights + float(b)
    y = z > 0 if labels == "round" else rng.random(n) < sigmoid(z)
    return X, y.astype(np.int64)


@overload
def make_softmax(
    n_samples: int = ...,
    n_features: int | None = ...,
    n_classes: int | None = ...,
    labels: str = ...,
    weights: ArrayLike | None = ...,
    bias: ArrayLike | None = ...,
    random_state: RandomState = ...,
    *,
    return_teacher: Literal[False] = ...,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]: ...


@overload
def make_softmax(
    n_samples: int = ...,
    n_features: int | None = ...,
    n_classes: int | None = ...,
    labels: str = ...,
    weights: ArrayLike | None = ...,
    bias: ArrayLike | None = ...,
    random_state: RandomState = ...,
    *,
    return_teacher: Literal[True],
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]: ...


def make_softmax(
    n_samples: int = 1000,
    n_features: int | None = None,
    n_classes: int | None = None,
    labels: str = "argmax",
    weights: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    random_state: RandomState = None,
    *,
    return_teacher: bool = False,
) -> (
    tuple[NDArray[np.float64], NDArray[np.int64]]
    | tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]
):
    r"""Gaussian features labelled by a softmax-regression teacher.

    .. math::

        x_i \sim \mathcal N(0, I_d), \qquad z_i = x_i W + b \in \mathbb R^K, \qquad
        p_{ik} = \frac{e^{z_{ik}}}{\sum_j e^{z_{ij}}}

    and, depending on ``labels``,

    * ``"argmax"``: :math:`y_i = \arg\max_k z_{ik}` (noise-free);
    * ``"sample"``: :math:`y_i \sim \operatorname{Categorical}(p_i)`, by inverse
      CDF with one uniform per row: with :math:`C_{ik} = \sum_{j \le k} p_{ij}`
      and :math:`u_i \sim U[0, 1)`, :math:`y_i = \#\{k < K-1 : C_{ik} \le u_i\}`,
      so :math:`P(y_i = k) = C_{ik} - C_{i,k-1} = p_{ik}`.

    Parameters
    ----------
    n_samples : int, default 1000
        Number of rows ``n``.
    n_features : int, optional
        Number of features ``d``; defaults to ``weights.shape[0]`` when ``weights``
        is given, else 4.
    n_classes : int, optional
        Number of classes ``K >= 2``; defaults to ``weights.shape[1]`` (or
        ``len(bias)``) when given, else 3.
    labels : {"argmax", "sample"}, default "argmax"
        How logits become labels (see above).
    weights : array_like of shape (d, K), optional
        Teacher weights; drawn :math:`W_{jk} \sim \mathcal N(0, 1)` when omitted.
    bias : array_like of shape (K,), optional
        Teacher bias; drawn :math:`b_k \sim \mathcal N(0, 1)` when ``weights`` is
        also omitted, zero when only ``weights`` is given.
    random_state : int, numpy.random.Generator or None
        Seed or generator. Draw order: ``W``, ``b`` (those not given), ``X``, the
        uniforms.
    return_teacher : bool, default False
        Also return the teacher's ``W`` and ``b``.

    Returns
    -------
    X : ndarray of shape (n, d), float64
    y : ndarray of shape (n,), int64
        Labels in ``0 .. K-1``.
    W : ndarray of shape (d, K), float64
        Only with ``return_teacher=True`` (a copy, never the caller's array).
    b : ndarray of shape (K,), float64
        Only with ``return_teacher=True``.
    """
    n = _check_int(n_samples, "n_samples", 0)
    if labels not in ("argmax", "sample"):
        raise ValueError(f"labels must be 'argmax' or 'sample', got {labels!r}")
    W = None if weights is None else _finite_float_array(weights, "weights").copy()
    b = None if bias is None else _finite_float_array(bias, "bias").copy()
    if W is not None and W.ndim != 2:
        raise ValueError(f"weights must be 2-D (n_features, n_classes), got shape {W.shape}")
    if b is not None and b.ndim != 1:
        raise ValueError(f"bias must be 1-D (n_classes,), got shape {b.shape}")

    if n_features is None:
        n_features = W.shape[0] if W is not None else 4
    if n_classes is None:
        n_classes = W.shape[1] if W is not None else (b.size if b is not None else 3)
    d = _check_int(n_features, "n_features", 1)
    k = _check_int(n_classes, "n_classes", 2)
    if W is not None and W.shape != (d, k):
        raise ValueError(
            f"weights has shape {W.shape}, but n_features={d} and n_classes={k} "
            f"need shape ({d}, {k})"
        )
    if b is not None and b.shape != (k,):
        raise ValueError(f"bias has shape {b.shape}, but n_classes={k} needs shape ({k},)")
    rng = _rng(random_state)

    if W is None:
        W = rng.standard_normal((d, k))
        if b is None:
            b = rng.standard_normal(k)
    elif b is None:
        b = np.zeros(k)
    X = rng.standard_normal((n, d))
    z = X @ W + b
    if labels == "argmax":
        y = np.argmax(z, axis=1)
    else:
        cdf = np.cumsum(softmax(z, axis=1), axis=1)
        u = rng.random((n, 1))
        # The last column is left out: rounding can make C_{i,K-1} a hair below 1, and a
        # uniform above it would otherwise produce the out-of-range label K.
        y = np.sum(cdf[:, :-1] <= u, axis=1)
    y = y.astype(np.int64)
    if return_teacher:
        return X, y, W, b
    return X, y


# --- 2-D nonlinear sets ------------------------------------------------------------------


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


# --- labels and splits -------------------------------------------------------------------


def one_hot(
    y: ArrayLike, n_classes: int | None = None, dtype: DTypeLike = np.float64
) -> NDArray[Any]:
    r"""One-hot encode integer labels: :math:`Y_{ik} = [y_i = k]`.

    Parameters
    ----------
    y : array_like of shape (n,)
        Labels in ``0 .. K-1``: integers, or floats/bools holding whole numbers.
    n_classes : int, optional
        ``K``; defaults to ``max(y) + 1`` (0 for an empty ``y``).
    dtype : dtype, default float64
        dtype of the result.

    Returns
    -------
    ndarray of shape (n, K)
        One 1 per row, in column ``y_i``; ``np.argmax(Y, axis=1)`` gives ``y`` back.

    Raises
    ------
    ValueError
        If ``y`` is not 1-D, holds negative, fractional or non-numeric labels, or a
        label ``>= n_classes``.
    """
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise ValueError(f"y must be a 1-D array of labels, got shape {labels.shape}")
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise ValueError("y must hold integer class labels 0..K-1; got non-integer values")
    elif labels.dtype.kind not in "iub":
        raise ValueError(
            f"y must hold integer class labels 0..K-1, got dtype {labels.dtype}; "
            "map other labels to integers first (e.g. with np.unique(..., return_inverse=True))"
        )
    if labels.size and labels.min() < 0:
        raise ValueError(f"labels must be >= 0, got {labels.min()}")
    codes = labels.astype(np.int64)
    needed = int(codes.max()) + 1 if codes.size else 0
    if n_classes is None:
        k = needed
    else:
        k = _check_int(n_classes, "n_classes", 1)
        if needed > k:
            raise ValueError(f"label {needed - 1} is out of range for n_classes={k}")
    encoded = np.zeros((codes.size, k), dtype=dtype)
    encoded[np.arange(codes.size), codes] = 1
    return encoded


def _n_test(test_size: Any, n: int) -> int:
    """Resolve ``test_size`` (fraction or count) to a number of test rows."""
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real):
        raise TypeError(
            f"test_size must be a fraction in (0, 1) or an int count, got {test_size!r}"
        )
    if isinstance(test_size, numbers.Integral):
        count = int(test_size)
        if not 1 <= count <= n - 1:
            raise ValueError(
                f"test_size={count} must leave at least one sample on each side: "
                f"need 1 <= test_size <= {n - 1} for {n} samples"
            )
        return count
    if not 0 < float(test_size) < 1:
        raise ValueError(f"test_size as a fraction must be in (0, 1), got {test_size!r}")
    # Rounding the test share up (as scikit-learn does) so a small fraction still gets a row.
    count = math.ceil(float(test_size) * n)
    if not 1 <= count <= n - 1:
        raise ValueError(
            f"test_size={test_size!r} gives {count} test samples out of {n}; "
            "both the train and test sets must be non-empty"
        )
    return count


def train_test_split(
    X: ArrayLike,
    y: ArrayLike,
    test_size: float = 0.25,
    stratify: bool = False,
    random_state: RandomState = None,
) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any]]:
    r"""Split rows at random into a training and a test set.

    A random permutation of the row indices is cut in two; the inputs are
    indexed, never shuffled in place, so they are left exactly as they were.

    With ``stratify=True`` each class ``c`` (with :math:`n_c` rows) sends
    :math:`\lfloor n_{test} n_c / n \rfloor` rows to the test set, and the
    :math:`n_{test} - \sum_c \lfloor\cdot\rfloor` rows left over go one each to the
    classes with the largest remainders of :math:`n_{test} n_c / n`, so every
    class's test share is within one row of the overall share and the test set
    has exactly :math:`n_{test}` rows.

    Parameters
    ----------
    X : array_like of shape (n, ...)
        Features (any number of dimensions; rows are split).
    y : array_like of shape (n, ...)
        Targets, split with the same rows. With ``stratify`` its values (of any
        hashable-by-NumPy kind) are the classes.
    test_size : float or int, default 0.25
        A fraction in ``(0, 1)`` (rounded up to whole rows) or a row count in
        ``1 .. n-1``.
    stratify : bool, default False
        Keep each class's proportion the same in both sets.
    random_state : int, numpy.random.Generator or None

    Returns
    -------
    X_train : ndarray of shape (n - n_test, ...)
    X_test : ndarray of shape (n_test, ...)
    y_train : ndarray of shape (n - n_test, ...)
    y_test : ndarray of shape (n_test, ...)
        Fresh arrays (copies).
    """
    X_arr = np.asarray(X)
    y_arr = np.asarray(y)
    if X_arr.ndim == 0 or y_arr.ndim == 0:
        raise ValueError("X and y must be arrays with one row per sample, not scalars")
    n = X_arr.shape[0]
    if y_arr.shape[0] != n:
        raise ValueError(f"X and y have different numbers of samples: {n} and {y_arr.shape[0]}")
    if n < 2:
        raise ValueError(f"need at least 2 samples to split, got {n}")
    n_test = _n_test(test_size, n)
    rng = _rng(random_state)

    if not stratify:
        order = rng.permutation(n)
        test_idx, train_idx = order[:n_test], order[n_test:]
    else:
        if y_arr.ndim != 1:
            raise ValueError(f"stratify needs 1-D class labels y, got shape {y_arr.shape}")
        _, codes, counts = np.unique(y_arr, return_inverse=True, return_counts=True)
        # Integer arithmetic keeps the largest-remainder allotment exact (no float ties).
        share, remainder = np.divmod(n_test * counts, n)
        leftover = n_test - int(share.sum())
        share[np.argsort(-remainder, kind="stable")[:leftover]] += 1
        test_parts, train_parts = [], []
        for c, take in enumerate(share):
            members = rng.permutation(np.flatnonzero(codes == c))
            test_parts.append(members[:take])
            train_parts.append(members[take:])
        # Mixing the classes back together so the output is not sorted by class.
        test_idx = rng.permutation(np.concatenate(test_parts))
        train_idx = rng.permutation(np.concatenate(train_parts))
    return X_arr[train_idx], X_arr[test_idx], y_arr[train_idx], y_arr[test_idx]


# --- scaling -----------------------------------------------------------------------------


def _as_2d_float(X: ArrayLike, name: str) -> NDArray[np.floating]:
    """``X`` as a 2-D float array; float32 stays float32, everything else becomes float64."""
    array = np.asarray(X)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
    if array.dtype != np.float32:
        array = array.astype(np.float64, copy=False)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features), got shape {array.shape}; "
            "reshape a single feature with X.reshape(-1, 1)"
        )
    return array


class Standardizer:
    r"""Scale each feature to zero mean and unit variance.

    ``fit`` learns, per feature :math:`j` over the :math:`n` training rows,

    .. math::

        \mu_j = \frac1n \sum_i X_{ij}, \qquad
        s_j = \sqrt{\frac1n \sum_i (X_{ij} - \mu_j)^2}
        \quad (\text{replaced by } 1 \text{ where the feature is constant}),

    and ``transform`` maps :math:`X_{ij} \mapsto (X_{ij} - \mu_j) / s_j`.
    A constant feature maps to exactly 0 instead of dividing by zero.

    The statistics are accumulated and stored in float64; ``transform`` and
    ``inverse_transform`` return float32 for float32 input and float64 otherwise.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,), float64
        :math:`\mu`.
    scale_ : ndarray of shape (n_features,), float64
        :math:`s`, never 0.
    n_features_in_ : int
        Number of features seen by ``fit``.
    """

    mean_: NDArray[np.float64]
    scale_: NDArray[np.float64]
    n_features_in_: int

    def fit(self, X: ArrayLike) -> Standardizer:
        """Learn ``mean_`` and ``scale_`` from ``X`` of shape (n_samples, n_features)."""
        array = _as_2d_float(X, "X")
        if array.shape[0] == 0:
            raise ValueError("cannot fit a Standardizer on 0 samples")
        if not np.all(np.isfinite(array)):
            raise ValueError("X contains NaN or infinity")
        mean = array.mean(axis=0, dtype=np.float64)
        scale = array.std(axis=0, dtype=np.float64)
        # Testing max == min rather than std == 0: the computed mean of a constant column
        # can be off by an ulp, giving a tiny nonzero std that would blow rounding error up.
        constant = array.max(axis=0) == array.min(axis=0)
        mean[constant] = array[0, constant]
        scale[constant] = 1.0
        self.mean_ = mean
        self.scale_ = scale
        self.n_features_in_ = array.shape[1]
        return self

    def _checked(self, X: ArrayLike) -> NDArray[np.floating]:
        if not hasattr(self, "mean_"):
            raise NotFittedError("this Standardizer is not fitted yet; call fit(X) first")
        array = _as_2d_float(X, "X")
        if array.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {array.shape[1]} features, but the Standardizer was fitted "
                f"on {self.n_features_in_}"
            )
        return array

    def transform(self, X: ArrayLike) -> NDArray[np.floating]:
        r"""Return :math:`(X - \mu) / s`, shape (n_samples, n_features)."""
        array = self._checked(X)
        return (array - self.mean_.astype(array.dtype)) / self.scale_.astype(array.dtype)

    def fit_transform(self, X: ArrayLike) -> NDArray[np.floating]:
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X)

    def inverse_transform(self, X: ArrayLike) -> NDArray[np.floating]:
        r"""Undo :meth:`transform`: return :math:`X s + \mu`."""
        array = self._checked(X)
        return array * self.scale_.astype(array.dtype) + self.mean_.astype(array.dtype)


def standardize(X_train: ArrayLike, *others: ArrayLike) -> tuple[NDArray[np.floating], ...]:
    r"""Standardise ``X_train`` and any further arrays with ``X_train``'s statistics.

    Fitting on the training set alone keeps test-set information out of training:
    every array is mapped by :math:`X \mapsto (X - \mu_{train}) / s_{train}`.

    Parameters
    ----------
    X_train : array_like of shape (n_train, d)
        The array the mean and scale are learnt from.
    *others : array_like of shape (n_k, d)
        Arrays transformed with the same statistics (validation, test...).

    Returns
    -------
    tuple of ndarray
        ``(X_train_scaled, *others_scaled)``, in the order given.
    """
    scaler = Standardizer().fit(X_train)
    return tuple(scaler.transform(X) for X in (X_train, *others))


# --- IDX files ---------------------------------------------------------------------------

_IDX_TYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES: dict[str, int] = {dtype.str[1:]: code for code, dtype in _IDX_TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


class _ByteStream(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def _read_exactly(stream: _ByteStream, size: int) -> bytes:
    """Read up to ``size`` bytes, stopping early only at end of file.

    Reading in chunks (rather than ``stream.read(size)``) means a corrupt header
    claiming gigabytes costs memory only for the bytes actually present.
    """
    parts = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(min(remaining, _CHUNK))
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def load_idx(path: PathType) -> NDArray[Any]:
    """Read an array from an IDX file (the format MNIST is distributed in).

    Layout (all integers big-endian)::

        bytes 0-1   0x00 0x00                  magic
        byte  2     type code                  0x08 uint8, 0x09 int8, 0x0B int16,
                                               0x0C int32, 0x0D float32, 0x0E float64
        byte  3     ndim                       number of dimensions
        4 * ndim    uint32 sizes d_1 .. d_ndim
        then        d_1 * ... * d_ndim items   big-endian, C (row-major) order

    A gzip-compressed file (``.gz``, recognised by its content) is decompressed
    on the fly. Exactly the declared number of bytes is read; anything after
    them is ignored.

    Parameters
    ----------
    path : str or os.PathLike
        File to read.

    Returns
    -------
    ndarray of shape (d_1, ..., d_ndim)
        In native byte order, with the dtype named by the type code.

    Raises
    ------
    ValueError
        If the magic bytes are wrong, the type code is unknown, ``ndim`` is 0, or
        the file is shorter than its header says (the message gives both sizes).
    """
    with open(path, "rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
    opener = gzip.open if compressed else open
    where = f"{os.fspath(path)!s}" + (" (gzip)" if compressed else "")
    try:
        with opener(path, "rb") as stream:
            return _read_idx(stream, where)
    except (OSError, EOFError) as error:
        if not compressed:
            raise
        # A cut-off or corrupt gzip stream raises EOFError/BadGzipFile, not a ValueError.
        raise ValueError(f"{where}: corrupt or truncated gzip data ({error})") from None


def _read_idx(stream: _ByteStream, where: str) -> NDArray[Any]:
    header = _read_exactly(stream, 4)
    if len(header) < 4:
        raise ValueError(
            f"{where}: not an IDX file: it is {len(header)} bytes long, shorter than the "
            "4-byte IDX header"
        )
    if header[:2] != b"\x00\x00":
        raise ValueError(
            f"{where}: not an IDX file: bad magic number {header[:2].hex()} "
            "(IDX files start with two zero bytes)"
        )
    code, ndim = header[2], header[3]
    if code not in _IDX_TYPES:
        known = ", ".join(f"0x{c:02X} ({t.name})" for c, t in _IDX_TYPES.items())
        raise ValueError(f"{where}: unknown IDX type code 0x{code:02X}; known codes: {known}")
    if ndim == 0:
        raise ValueError(f"{where}: IDX header declares 0 dimensions")
    dtype = _IDX_TYPES[code]

    size_bytes = _read_exactly(stream, 4 * ndim)
    if len(size_bytes) < 4 * ndim:
        raise ValueError(
            f"{where}: truncated IDX header: {ndim} dimensions need {4 + 4 * ndim} header "
            f"bytes, but the file has only {4 + len(size_bytes)}"
        )
    shape = tuple(int(s) for s in np.frombuffer(size_bytes, dtype=">u4"))
    # Python ints: the product of several uint32 sizes can overflow a NumPy integer.
    expected = math.prod(shape) * dtype.itemsize
    data = _read_exactly(stream, expected)
    if len(data) < expected:
        header_size = 4 + 4 * ndim
        raise ValueError(
            f"{where}: truncated IDX file: the header declares shape {shape} of "
            f"{dtype.name}, i.e. {expected} data bytes ({header_size + expected} bytes "
            f"in all), but only {len(data)} data bytes ({header_size + len(data)} in all) "
            "are present"
        )
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def save_idx(path: PathType, array: ArrayLike) -> None:
    """Write ``array`` to an IDX file, gzip-compressed if ``path`` ends in ``.gz``.

    The layout is the one :func:`load_idx` reads; ``load_idx(path)`` returns an
    array equal to ``array`` with the same dtype and shape.

    Parameters
    ----------
    path : str or os.PathLike
        Destination (overwritten).
    array : array_like
        At least 1-D, with dtype uint8, int8, int16, int32, float32 or float64
        (the types IDX can store), at most 255 dimensions each below 2**32.

    Raises
    ------
    ValueError
        For an unsupported dtype, a 0-d array, or sizes IDX cannot record.
    """
    data = np.asarray(array)
    key = data.dtype.newbyteorder(">").str[1:] if data.dtype.kind in "iuf" else ""
    if key not in _IDX_CODES:
        supported = ", ".join(t.name for t in _IDX_TYPES.values())
        raise ValueError(
            f"IDX cannot store dtype {data.dtype}; supported: {supported} "
            "(convert first, e.g. array.astype(np.int32))"
        )
    if not 1 <= data.ndim <= 255:
        raise ValueError(f"IDX arrays need 1 to 255 dimensions, got {data.ndim}")
    if max(data.shape) >= 2**32:
        raise ValueError(f"IDX sizes are uint32; shape {data.shape} has a dimension too large")
    code = _IDX_CODES[key]
    header = bytes([0, 0, code, data.ndim]) + np.array(data.shape, dtype=">u4").tobytes()
    payload = np.ascontiguousarray(data, dtype=_IDX_TYPES[code]).tobytes()
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "wb") as stream:
        stream.write(header)
        stream.write(payload)


def load_mnist(
    images_path: PathType, labels_path: PathType
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Load an MNIST-style pair of IDX files as a design matrix and labels.

    Parameters
    ----------
    images_path : str or os.PathLike
        IDX file of uint8 images, shape (n, rows, cols) (optionally gzipped).
    labels_path : str or os.PathLike
        IDX file of integer labels, shape (n,) (optionally gzipped).

    Returns
    -------
    X : ndarray of shape (n, rows * cols), float64
        Pixels scaled to :math:`[0, 1]` by :math:`x / 255`, each image flattened
        row by row.
    y : ndarray of shape (n,), int64

    Raises
    ------
    ValueError
        If either file is malformed (see :func:`load_idx`), the images are not
        3-D uint8, the labels not 1-D integers, or the counts differ.
    """
    images = load_idx(images_path)
    labels = load_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"{os.fspath(images_path)!s}: expected uint8 images of shape (n, rows, cols), "
            f"got {images.dtype} of shape {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(
            f"{os.fspath(labels_path)!s}: expected 1-D integer labels, got {labels.dtype} "
            f"of shape {labels.shape}"
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"image and label counts differ: {images.shape[0]} images in "
            f"{os.fspath(images_path)!s} but {labels.shape[0]} labels in "
            f"{os.fspath(labels_path)!s}"
        )
    X = images.reshape(images.shape[0], -1).astype(np.float64) / 255.0
    return X, labels.astype(np.int64)
