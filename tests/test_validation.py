"""handnet.data.validation: helpers the estimators call on every fit."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from handnet.data.validation import class_positions, unique_labels


@pytest.mark.parametrize(
    "values",
    [
        np.array([3, 1, 2, 3, 1]),
        np.array([[2, 0], [0, 2]]),
        np.array([1.5, -0.0, 0.0, 1.5, -2.0]),
        np.array([np.nan, 1.0, np.nan, 0.0, np.nan]),
        np.array(["b", "a", "c", "a"]),
        np.array(["cat", "dog", "cat"], dtype=object),
        np.array([True, False, True]),
        np.array([], dtype=np.int64),
        np.array([7]),
        # Counted (small non-negative integers), in every integer dtype:
        np.array([9, 0, 4, 4, 9], dtype=np.int8),
        np.array([2, 65, 2], dtype=np.uint16),
        np.array([[5, 1], [1, 0]], dtype=np.uint64),
        np.array([0, 0, 0]),
        # Sorted: negative, or too large for a table of every value up to them.
        np.array([3, -1, 3, 0]),
        np.array([10**12, 5, 10**12]),
        np.array([np.iinfo(np.uint64).max, 1], dtype=np.uint64),
    ],
)
def test_unique_labels_is_np_unique(values: Any) -> None:
    expected = np.unique(values)
    got = unique_labels(values)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def _positions_by_search(classes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    index = np.clip(np.searchsorted(classes, labels), 0, len(classes) - 1)
    return np.where(classes[index] == labels, index, -1)


@pytest.mark.parametrize(
    ("classes", "labels"),
    [
        (np.array([0, 1, 2]), np.array([2, 0, 1, 1, 2])),  # the lookup table
        (np.array([1, 3, 8], dtype=np.uint8), np.array([8, 3, 0, 9, 1, 200], dtype=np.uint8)),
        (np.array([2, 5, 7]), np.array([7, 5, 6, 2, 3000])),  # unseen, beyond the classes
        (np.array([-4, 0, 5]), np.array([5, -4, 1, 0])),  # negative classes: by search
        (np.array([0, 10**12]), np.array([10**12, 0, 3])),  # too large for a table
        (np.array([0.5, 1.5]), np.array([1.5, 0.5, 2.5])),
        (np.array(["cat", "dog"]), np.array(["dog", "cow", "cat"])),
        (np.array([0, 1]), np.array([True, False, True])),
    ],
)
def test_class_positions_are_the_binary_searchs(classes: np.ndarray, labels: np.ndarray) -> None:
    """Each label's position in the sorted classes, -1 for one not among them, by the
    lookup table as by binary search."""
    got = class_positions(classes, labels)
    assert got.dtype == np.intp
    np.testing.assert_array_equal(got, _positions_by_search(classes, labels))


def test_unique_labels_refuses_what_does_not_sort_together() -> None:
    with pytest.raises(TypeError):
        unique_labels(np.array(["a", 1, 2.5], dtype=object))


def test_a_small_first_fit_loads_neither_numpy_ma_nor_threadpoolctl() -> None:
    """The seed's per-example SGD on 1000 rows: its first fit in a process does not pay for
    numpy.ma (np.unique's import, ~9 ms) nor for a BLAS thread limit it has no product for."""
    code = (
        "import sys, handnet\n"
        "from handnet.datasets import make_logistic\n"
        "X, y = make_logistic(1000, random_state=0)\n"
        "handnet.LogisticRegression(batch_size=1, max_iter=3, tol=None).fit(X, y)\n"
        "loaded = [m for m in ('numpy.ma', 'threadpoolctl') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
