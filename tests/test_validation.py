"""handnet.data.validation: helpers the estimators call on every fit."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from handnet.data.validation import unique_labels


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
    ],
)
def test_unique_labels_is_np_unique(values: Any) -> None:
    expected = np.unique(values)
    got = unique_labels(values)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


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
