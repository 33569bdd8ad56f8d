"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread() -> Iterator[None]:
    """Run BLAS single-threaded: the tests use small matrices, where threads only add
    contention on a loaded 2-core machine (it slowed some fits a hundredfold)."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded generator for each test (tests never share random state)."""
    return np.random.default_rng(20240601)
