"""save and load agree: what save writes, load takes back as the same model.

Unusual but valid models (NumPy values as hyperparameters, object-dtype labels of
mixed kinds) round trip; what a file cannot hold is refused at save, never written
for load to refuse; long file names are saved; and a file whose hyperparameters
were deleted or forged is refused at load, as fit refuses the same values.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import handnet
from handnet import MLPClassifier, MLPRegressor, ModelFileError, SoftmaxRegression
from handnet.io import atomic
from test_io_forged import forge, read_tree


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(40, 3))
    return X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)


X, Y3 = _data()
Y2 = (Y3 > 0).astype(int)


def _labels(*values: Any) -> np.ndarray:
    """``Y2`` as an object array of the two labels ``values`` (kept as they are)."""
    labels = np.empty(2, dtype=object)
    labels[:] = list(values)
    return labels[Y2]


#: name -> a fitted model that fit takes but an earlier save or load did not.
UNUSUAL: dict[str, Callable[[], Any]] = {
    "hidden-layer-sizes-array": lambda: MLPClassifier(
        hidden_layer_sizes=np.array([6, 3]), max_iter=3, tol=None, random_state=0
    ).fit(X, Y3),
    "numpy-scalar-hyperparameters": lambda: MLPClassifier(
        hidden_layer_sizes=(np.int64(5),),
        max_iter=np.int64(3),
        alpha=np.float64(0.5),
        learning_rate=np.float32(0.01),
        batch_size=np.int32(8),
        shuffle=np.bool_(False),
        early_stopping=np.bool_(True),
        warm_start=np.bool_(False),
        verbose=np.int64(0),
        class_weight={np.int64(0): np.float64(2.0)},
        tol=None,
        random_state=np.int64(1),
    ).fit(X, Y3),
    "hidden-layer-sizes-list-of-numpy-ints": lambda: MLPRegressor(
        hidden_layer_sizes=[np.int32(4), 2], max_iter=3, tol=None, random_state=0
    ).fit(X, X[:, 0]),
    "hidden-layer-sizes-numpy-int": lambda: MLPClassifier(
        hidden_layer_sizes=np.int64(4), max_iter=3, tol=None, random_state=0
    ).fit(X, Y3),
    "object-labels-int-and-float": lambda: SoftmaxRegression().fit(X, _labels(1, 2.5)),
    "object-labels-int-and-whole-float": lambda: SoftmaxRegression().fit(X, _labels(1, 2.0)),
    "object-labels-numpy-ints": lambda: SoftmaxRegression().fit(
        X, _labels(np.int64(1), np.int64(3))
    ),
    "object-labels-numpy-float-and-int": lambda: SoftmaxRegression().fit(
        X, _labels(np.float32(1.5), 3)
    ),
    "object-labels-bools": lambda: SoftmaxRegression().fit(X, _labels(False, True)),
    "object-labels-numpy-strings": lambda: MLPClassifier(
        (3,), max_iter=3, tol=None, random_state=0
    ).fit(X, _labels(np.str_("no"), "yes")),
}


def _plain(value: Any) -> Any:
    """A hyperparameter as a file writes it: arrays as lists, NumPy scalars as Python's."""
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value


@pytest.mark.filterwarnings("ignore::handnet.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", sorted(UNUSUAL))
def test_unusual_but_valid_models_load_back_predicting_the_same(
    name: str, tmp_path: Path
) -> None:
    model = UNUSUAL[name]()
    path = tmp_path / "model.npz"
    handnet.save(model, path)
    loaded = handnet.load(path)
    assert np.array_equal(loaded.predict(X), model.predict(X))
    assert loaded.network_.config() == model.network_.config()
    assert loaded.get_params() == _plain(model.get_params())
    if hasattr(model, "classes_"):
        assert loaded.classes_.tolist() == model.classes_.tolist()
        assert [type(c) for c in loaded.classes_.tolist()] == [
            type(c) for c in _plain(model.classes_.tolist())
        ]


def test_save_refuses_labels_a_file_cannot_hold_naming_their_type(tmp_path: Path) -> None:
    model = SoftmaxRegression().fit(X, np.array([b"no", b"yes"])[Y2])
    with pytest.raises(ValueError, match=r"numbers or strings, not \['bytes'\]"):
        handnet.save(model, tmp_path / "model.npz")
    assert list(tmp_path.iterdir()) == []


def test_save_never_writes_a_file_that_load_refuses(tmp_path: Path) -> None:
    """A hyperparameter the file cannot hold (a range of sizes, which fit takes) is dropped;
    the file would then describe another network: save refuses it, the old file stays."""
    path = tmp_path / "model.npz"
    handnet.save(MLPClassifier((3,), max_iter=2, tol=None).fit(X, Y3), path)
    before = path.read_bytes()
    model = MLPClassifier(hidden_layer_sizes=range(6, 2, -3), max_iter=2, tol=None).fit(X, Y3)
    with pytest.raises(ValueError, match=r"load would refuse.*hidden_layer_sizes") as caught:
        handnet.save(model, path)
    assert ".tmp" not in str(caught.value)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


# --- long file names ---------------------------------------------------------------------------


def _long_name_or_skip(directory: Path, name: str) -> Path:
    """``directory / name``, once the file system has shown that it takes the name."""
    path = directory / name
    try:
        path.touch()
    except OSError as error:
        pytest.skip(f"this file system refuses the name itself ({error})")
    path.unlink()
    return path


@pytest.mark.parametrize(
    "name",
    ["m" * 246 + ".npz", "日本" * 40 + ".npz", "é" * 100 + "x" * 40 + ".npz"],
    ids=["250-bytes-ascii", "244-bytes-utf8", "244-bytes-mixed"],
)
def test_a_long_file_name_is_saved_and_loaded(name: str, tmp_path: Path) -> None:
    path = _long_name_or_skip(tmp_path, name)
    model = MLPClassifier((3,), max_iter=2, tol=None, random_state=0).fit(X, Y3)
    handnet.io.check_writable(path)
    handnet.save(model, path)
    handnet.save(model, path)  # replaces it, as atomically
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left
    assert np.array_equal(handnet.load(path).predict(X), model.predict(X))


def test_a_name_too_long_for_the_file_system_fails_before_training(tmp_path: Path) -> None:
    path = tmp_path / ("m" * 300 + ".npz")
    with pytest.raises(OSError) as caught:
        handnet.io.check_writable(path)
    assert caught.value.errno == errno.ENAMETOOLONG
    assert str(path) in str(caught.value) and ".tmp" not in str(caught.value)


def test_a_later_save_removes_a_killed_writers_temporary_file_of_a_long_name(
    tmp_path: Path,
) -> None:
    path = _long_name_or_skip(tmp_path, "日本" * 40 + ".npz")
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True, text=True, check=True,
    )
    dead = int(finished.stdout)  # a process that no longer exists
    # The temporary name a writer with that pid would have left (kill -9 mid-write).
    ours = Path(atomic._temporary_name(str(path), "model")).name
    abandoned = tmp_path / ours.replace(f".{os.getpid()}.", f".{dead}.")
    abandoned.write_bytes(b"half a model")
    assert len(os.fsencode(abandoned.name)) <= 255
    handnet.save(MLPClassifier((3,), max_iter=2, tol=None).fit(X, Y3), path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


# --- hyperparameters: all of them, each valid ----------------------------------------------


@pytest.fixture(scope="module")
def saved_tree(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The content of a file saved with hyperparameters other than the defaults."""
    path = tmp_path_factory.mktemp("saved") / "model.npz"
    model = MLPClassifier(
        (4,), alpha=0.5, class_weight="balanced", max_iter=3, tol=None, random_state=0
    ).fit(X, Y3)
    handnet.save(model, path)
    return read_tree(path.read_bytes())


def _load_forged(tree: dict[str, Any], directory: Path) -> Any:
    path = directory / "forged.npz"
    path.write_bytes(forge(tree))
    return handnet.load(path)


def test_a_file_whose_hyperparameters_were_deleted_is_refused(
    saved_tree: dict[str, Any], tmp_path: Path
) -> None:
    tree = {**saved_tree, "params": dict(saved_tree["params"])}
    del tree["params"]["alpha"], tree["params"]["class_weight"]
    with pytest.raises(ModelFileError, match=r"lacks \['alpha', 'class_weight'\]"):
        _load_forged(tree, tmp_path)


def test_a_hyperparameter_listed_as_dropped_loads_as_its_default(
    saved_tree: dict[str, Any], tmp_path: Path
) -> None:
    tree = {**saved_tree, "params": dict(saved_tree["params"]), "dropped_params": ["verbose"]}
    del tree["params"]["verbose"]
    assert _load_forged(tree, tmp_path).verbose is False


BAD_FLAGS = [
    ("shuffle", "zzz"), ("early_stopping", "zzz"), ("warm_start", "zzz"),
    ("shuffle", 1), ("early_stopping", None), ("warm_start", 0.0),
    ("verbose", "zzz"), ("verbose", -1), ("verbose", 1.5),
]


@pytest.mark.parametrize(("name", "value"), BAD_FLAGS)
def test_fit_refuses_a_flag_that_is_not_a_bool(name: str, value: Any) -> None:
    error = ValueError if value == -1 else TypeError
    with pytest.raises(error, match=f"{name} must be a bool.*got {value!r}"):
        MLPClassifier((3,), max_iter=2, **{name: value}).fit(X, Y3)


@pytest.mark.parametrize(("name", "value"), BAD_FLAGS)
def test_load_refuses_a_forged_flag(
    name: str, value: Any, saved_tree: dict[str, Any], tmp_path: Path
) -> None:
    tree = {**saved_tree, "params": {**saved_tree["params"], name: value}}
    with pytest.raises(ModelFileError, match=f"bad hyperparameters: {name} must be a bool"):
        _load_forged(tree, tmp_path)


@pytest.mark.filterwarnings("ignore::handnet.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    ("name", "value"),
    [("shuffle", np.bool_(True)), ("warm_start", True), ("verbose", 0), ("verbose", np.bool_(0)),
     ("verbose", np.int64(0)), ("verbose", False)],
)
def test_fit_takes_the_flags_scikit_learn_takes(name: str, value: Any) -> None:
    MLPClassifier((3,), max_iter=2, **{name: value}).fit(X, Y3)
