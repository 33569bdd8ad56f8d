"""Labels and splits: one-hot encoding and the train/test split."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from ..data.validation import check_random_state as _rng  # shared with the models
from ._checks import RandomState, _check_int


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


def stratified_counts(class_sizes: NDArray[np.integer], n_take: int) -> NDArray[np.int64]:
    """Rows to take from each class: ``n_take`` in all, in proportion to the class sizes.

    Each class gets the whole part of :math:`n_\text{take} n_c / n`; the rows left
    over go to the classes with the largest remainders (the first class on a tie).
    So the total is exactly ``n_take`` and every class's share is within one row
    of the overall share (rounding each class on its own can take up to half a
    row more per class: 20 of 30 rows over 10 classes for a half).
    """
    sizes = np.asarray(class_sizes, dtype=np.int64)
    # Integer arithmetic keeps the allotment exact (no float ties).
    share, remainder = np.divmod(n_take * sizes, int(sizes.sum()))
    leftover = n_take - int(share.sum())
    share[np.argsort(-remainder, kind="stable")[:leftover]] += 1
    return share


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
        share = stratified_counts(counts, n_test)
        test_parts, train_parts = [], []
        for c, take in enumerate(share):
            members = rng.permutation(np.flatnonzero(codes == c))
            test_parts.append(members[:take])
            train_parts.append(members[take:])
        # Mixing the classes back together so the output is not sorted by class.
        test_idx = rng.permutation(np.concatenate(test_parts))
        train_idx = rng.permutation(np.concatenate(train_parts))
    return X_arr[train_idx], X_arr[test_idx], y_arr[train_idx], y_arr[test_idx]
