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
if os.environ.get("HANDNET_TEST_KERNELS") == "1":
    # The other configuration (.ci/run runs the layer, model and training tests in it):
    # every test with handnet compile's kernels, built once into that directory.
    from handnet import _native

    _native.build()
    if not _native.loadable():  # the run would claim the kernels without taking them
        raise RuntimeError(f"HANDNET_TEST_KERNELS=1, but the module does not load: "
                           f"{_native.status()}")


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
