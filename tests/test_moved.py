"""The module paths from before the subpackages still import, as the same modules."""

import importlib
import subprocess
import sys

import pytest

import handnet
from handnet._moved import MOVED_MODULES


@pytest.mark.parametrize(("old_path", "new_path"), sorted(MOVED_MODULES.items()))
def test_an_old_module_path_is_the_module_at_its_new_path(old_path: str, new_path: str) -> None:
    if new_path == "handnet.data.cluster":
        pytest.importorskip("dask")
    old = importlib.import_module(old_path)
    assert old is importlib.import_module(new_path)
    # Its own spec is kept, so relative imports inside it still resolve.
    assert old.__spec__ is not None and old.__spec__.name == new_path


def test_classes_keep_one_identity_under_both_paths() -> None:
    from handnet.layers import Dense as old_dense

    from handnet.nn.layers import Dense

    assert old_dense is Dense is handnet.Dense


def test_an_optional_module_is_not_imported_by_the_alias_table() -> None:
    # handnet.cluster needs dask: importing handnet must not import it.
    code = "import sys, handnet; print('handnet.data.cluster' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_an_unknown_path_is_still_an_import_error() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("handnet.no_such_module")


def test_a_pickle_that_names_an_old_module_path_still_loads() -> None:
    import pickle

    import numpy as np

    from handnet.nn.layers import Dense

    layer = Dense(2, 3, random_state=0)
    # Protocol 0 writes module paths as text lines: the old path stands in for the new.
    old = pickle.dumps(layer, protocol=0).replace(b"handnet.nn.layers\n", b"handnet.layers\n")
    assert b"handnet.layers\n" in old
    loaded = pickle.loads(old)
    assert type(loaded) is Dense
    np.testing.assert_array_equal(loaded.weights, layer.weights)
