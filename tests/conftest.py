"""Shared fixtures."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

# The tests' own cache directory, empty at the start: the kernels built ahead of time
# (handnet compile) in the user's cache would change which paths the tests take.
# Child processes inherit it; tests/test_native.py builds into a directory of its own.
os.environ["HANDNET_CACHE_DIR"] = tempfile.mkdtemp(prefix="handnet-test-cache-")
atexit.register(shutil.rmtree, os.environ["HANDNET_CACHE_DIR"], True)


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
