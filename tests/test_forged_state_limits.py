"""Forged values at the limits of a checkpoint's training state and of the image layers.

Each test takes a real file written by :func:`handnet.save`, changes one field (with
fresh checksums, as a forger would: :func:`test_io_forged.forge`) and asserts that
:func:`handnet.load` refuses it with a :class:`handnet.ModelFileError` naming the field:
never a raw ``OverflowError``, a run that silently continues differently, a huge
allocation at predict or hundreds of threads. The layers' constructors refuse the same
values with a ``ValueError``.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import handnet
from handnet import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    MLPClassifier,
    NeuralNetClassifier,
)
from handnet.nn import conv, im2col, parallel, pooling
from handnet.optim.schedules import ReduceOnPlateau
from test_io_forged import forge, read_tree  # the forged-files suite's forger


def _rows() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    return X, (X[:, 0] > 0).astype(int)


def _images() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(24, 1, 4, 5))
    return X, (X[:, 0, 0, 0] > 0).astype(int)


def _saved_tree(model: Any, path: Path) -> dict[str, Any]:
    handnet.save(model, path)
    handnet.load(path)  # the unforged file loads
    return read_tree(path.read_bytes())


@pytest.fixture(scope="module")
def plateau_tree(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The content of a checkpoint of an MLP trained with ReduceOnPlateau."""
    X, y = _rows()
    model = MLPClassifier((3,), schedule="plateau", max_iter=3, tol=None, random_state=0)
    return _saved_tree(model.fit(X, y), tmp_path_factory.mktemp("plateau") / "m.npz")


@pytest.fixture(scope="module")
def image_tree(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The content of a checkpoint of a small convolutional network."""
    X, y = _images()
    layers = [
        Conv2D(None, 2, 3, padding="same"),
        BatchNorm(),
        MaxPool2D(2),
        Flatten(),
        Dense(None, None),
    ]
    model = NeuralNetClassifier(layers, max_iter=2, tol=None, random_state=0)
    return _saved_tree(model.fit(X, y), tmp_path_factory.mktemp("images") / "m.npz")


def _load(tree: dict[str, Any], tmp_path: Path) -> Any:
    """``handnet.load`` of a file that holds ``tree`` (checksums recomputed)."""
    path = tmp_path / "forged.npz"
    path.write_bytes(forge(tree))
    return handnet.load(path)


def _set_layer(tree: dict[str, Any], kind: str, **settings: Any) -> None:
    """Give the first ``kind`` layer these settings, both in the stored network and in the
    ``layers`` hyperparameter (which must agree): a consistent forgery."""
    config = next(c for c in tree["network"]["layers"] if c["type"] == kind)
    spec = next(s for s in tree["params"]["layers"] if s["$layer"] == kind)
    for name, value in settings.items():
        if name in config:
            config[name] = list(value) if isinstance(value, tuple) else value
        spec["settings"][name] = {"$tuple": list(value)} if isinstance(value, tuple) else value


# --- the learning-rate schedule's state -------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("bad_epochs", math.inf),  # was a raw OverflowError (int(inf))
        ("bad_epochs", math.nan),
        ("bad_epochs", -1),
        ("bad_epochs", 2.5),
        ("scale", -0.5),  # a negative learning rate: gradient ascent
        ("scale", 1.5),
        ("scale", math.nan),
        ("scale", math.inf),
        ("best", math.nan),
        ("best", -math.inf),
    ],
)
def test_a_forged_plateau_schedule_state_is_refused(
    field: str, value: Any, plateau_tree: dict[str, Any], tmp_path: Path
) -> None:
    tree = copy.deepcopy(plateau_tree)
    assert tree["training"]["schedule"]["type"] == "ReduceOnPlateau"
    tree["training"]["schedule"]["state"][field] = value
    with pytest.raises(handnet.ModelFileError, match=rf"schedule\.state.*'{field}'"):
        _load(tree, tmp_path)


def test_a_plateau_schedule_refuses_a_state_it_cannot_reach() -> None:
    schedule = ReduceOnPlateau()
    fresh = schedule.state_dict()
    for field, value in [("bad_epochs", math.inf), ("scale", -1.0), ("best", math.nan)]:
        with pytest.raises(ValueError, match=f"'{field}'"):
            schedule.load_state_dict({**fresh, field: value})
    assert schedule.state_dict() == fresh  # nothing half-loaded
    with pytest.raises(ValueError, match="keys"):
        schedule.load_state_dict({"scale": 1.0})


def test_a_plateau_scale_that_underflowed_to_zero_still_loads(tmp_path: Path) -> None:
    # factor**k underflows to 0 after two reductions by 1e-200: a state the schedule
    # reaches by itself (the floor keeps the learning rate positive), so a checkpoint
    # holding it is no forgery.
    X, y = _rows()
    schedule = ReduceOnPlateau(factor=1e-200, patience=0, threshold=0.999, min_learning_rate=1e-4)
    model = MLPClassifier((3,), schedule=schedule, max_iter=4, tol=None, random_state=0)
    model.fit(X, y)
    assert model._trainer.schedule.state_dict()["scale"] == 0.0
    path = tmp_path / "m.npz"
    handnet.save(model, path)
    assert handnet.load(path)._trainer.schedule.state_dict()["scale"] == 0.0


# --- the stopping rule's record ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("best_loss", math.nan),  # every later epoch "no better": an old epoch's parameters
        ("best_loss", -math.inf),
        ("best_score", math.nan),
        ("best_score", math.inf),
    ],
)
def test_a_forged_stopping_record_is_refused(
    field: str, value: float, plateau_tree: dict[str, Any], tmp_path: Path
) -> None:
    tree = copy.deepcopy(plateau_tree)
    tree["training"]["stopping"][field] = value
    with pytest.raises(handnet.ModelFileError, match=rf"stopping\.{field}"):
        _load(tree, tmp_path)


@pytest.mark.parametrize(("field", "value"), [("best_loss", math.inf), ("best_score", -math.inf)])
def test_a_stopping_record_at_its_starting_infinity_loads(
    field: str, value: float, plateau_tree: dict[str, Any], tmp_path: Path
) -> None:
    tree = copy.deepcopy(plateau_tree)
    tree["training"]["stopping"][field] = value
    assert getattr(_load(tree, tmp_path)._trainer._stopping, field) == value


# --- the convolution's and the pooling's geometry ---------------------------------------------


@pytest.mark.parametrize(
    ("kind", "settings", "field"),
    [
        # 4 KB of file, 4 GiB a sample at predict before these limits.
        ("Conv2D", {"dilation": (2**14, 2**14)}, "dilation"),
        ("Conv2D", {"dilation": (2**30, 2**30)}, "dilation"),  # NumPy's "array is too big"
        ("Conv2D", {"padding": (2**20, 2**20)}, "padding"),
        ("Conv2D", {"stride": (2**20, 2**20)}, "stride"),
        # 16 million offset views of a window of 4096 x 4096, over zeros mostly.
        ("MaxPool2D", {"kernel_size": (4096, 4096), "padding": "same"}, "kernel_size"),
        # One chunk for a whole batch of any size: the budget is a chunk size.
        ("Conv2D", {"memory_budget": 2**62}, "memory_budget"),
    ],
)
def test_forged_window_settings_are_refused(
    kind: str, settings: dict[str, Any], field: str, image_tree: dict[str, Any], tmp_path: Path
) -> None:
    tree = copy.deepcopy(image_tree)
    _set_layer(tree, kind, **settings)
    with pytest.raises(handnet.ModelFileError, match=f"{kind}.*{field}"):
        _load(tree, tmp_path)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Conv2D(1, 1, 3, dilation=conv.MAX_WINDOW + 1),
        lambda: Conv2D(1, 1, 3, padding=conv.MAX_WINDOW + 1),
        lambda: Conv2D(1, 1, 3, padding=(0, 10**9)),
        lambda: Conv2D(1, 1, 3, stride=conv.MAX_WINDOW + 1),
        lambda: Conv2D(1, 1, conv.MAX_WINDOW + 1),
        lambda: Conv2D(1, 1, (3, 3), dilation=(1, conv.MAX_WINDOW // 2 + 1)),  # the extent
        lambda: MaxPool2D((1, pooling.MAX_WINDOW_VALUES + 1)),
        lambda: AvgPool2D(300),
        lambda: Conv2D(1, 1, 3, memory_budget=conv.MAX_MEMORY_BUDGET + 1),
    ],
)
def test_window_settings_beyond_the_limits_are_refused_when_the_layer_is_made(make: Any) -> None:
    with pytest.raises(ValueError, match=r"dilation|padding|stride|kernel|memory_budget"):
        make()


def test_the_largest_window_settings_are_accepted() -> None:
    Conv2D(1, 1, (1, 2), dilation=(conv.MAX_WINDOW, conv.MAX_WINDOW - 1), stride=conv.MAX_WINDOW)
    Conv2D(1, 1, 1, padding=conv.MAX_WINDOW)
    MaxPool2D((1, pooling.MAX_WINDOW_VALUES))


def test_a_sample_too_large_to_pad_or_unroll_is_refused_before_allocating(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Within the per-axis limits, but 64 channels of (28 + 4000)**2 padded pixels: more
    # than a sample's work array may hold. Refused before anything is allocated.
    layer = Conv2D(64, 1, 3, dilation=2000, padding="same", random_state=0)
    with pytest.raises(ValueError, match="MAX_SAMPLE_VALUES"):
        layer.forward(np.zeros((1, 64, 28, 28)))
    with pytest.raises(ValueError, match="MAX_SAMPLE_VALUES"):
        Conv2D.chain(layer.config(), (64, 28, 28))
    with pytest.raises(ValueError, match="MAX_SAMPLE_VALUES"):
        MaxPool2D(200, padding="same").output_shape((4096, 8, 8))
    # The per-sample bound is on what is allocated, read at each call.
    small = Conv2D(2, 2, 3, padding=1, random_state=0)
    small.forward(np.zeros((3, 2, 8, 8)))
    monkeypatch.setattr(im2col, "MAX_SAMPLE_VALUES", 2 * 10 * 10 - 1)  # padded: 2 x 10 x 10
    with pytest.raises(ValueError, match="padded input"):
        small.forward(np.zeros((3, 2, 8, 8)))


# --- threads ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["Conv2D", "MaxPool2D"])
def test_a_forged_thread_count_is_refused(
    kind: str, image_tree: dict[str, Any], tmp_path: Path
) -> None:
    tree = copy.deepcopy(image_tree)
    _set_layer(tree, kind, n_threads=100_000)  # the review saw 500 live threads at predict
    with pytest.raises(handnet.ModelFileError, match=f"{kind} n_threads"):
        _load(tree, tmp_path)


def test_thread_counts_above_the_maximum_are_refused_when_the_layer_is_made() -> None:
    most = parallel.MAX_THREADS
    for make in (
        lambda: Conv2D(1, 1, 3, n_threads=most + 1),
        lambda: MaxPool2D(2, n_threads=most + 1),
        lambda: AvgPool2D(2, n_threads=10**6),
    ):
        with pytest.raises(ValueError, match=f"n_threads must be .*at most MAX_THREADS = {most}"):
            make()
    assert Conv2D(1, 1, 3, n_threads=most).n_threads == most
    # A block's thread count may say more: it is capped, as before (BLAS's count, say).
    with conv.threads_over_samples(most * 8):
        assert conv.default_threads() == most


# --- batch normalisation's running statistics -------------------------------------------------


def test_a_forged_negative_running_variance_is_refused(
    image_tree: dict[str, Any], tmp_path: Path
) -> None:
    tree = copy.deepcopy(image_tree)
    index = next(i for i, c in enumerate(tree["network"]["layers"]) if c["type"] == "BatchNorm")
    running_var = tree["network"]["buffers"][index]["running_var"]
    running_var[0] = -3.0
    with pytest.raises(handnet.ModelFileError, match=r"BatchNorm.*running_var.*negative"):
        _load(tree, tmp_path)


def test_a_batchnorm_refuses_a_negative_running_variance_and_keeps_its_own() -> None:
    layer = BatchNorm(2)
    saved = {"running_mean": np.array([0.5, 1.0]), "running_var": np.array([1.0, -1e-300])}
    with pytest.raises(ValueError, match=r"running_var.*negative"):
        layer.load_buffers(saved)
    np.testing.assert_array_equal(layer.running_var, [1.0, 1.0])
    np.testing.assert_array_equal(layer.running_mean, [0.0, 0.0])
    layer.load_buffers({**saved, "running_var": np.array([0.0, 2.0])})  # 0: a constant feature
    np.testing.assert_array_equal(layer.running_var, [0.0, 2.0])


def test_a_forged_best_epoch_running_variance_is_refused_on_load(tmp_path: Path) -> None:
    """Early stopping keeps the best epoch's BatchNorm statistics in the checkpoint
    (stopping.best_buffers): checked when the file is loaded, not when training ends."""
    rng = np.random.default_rng(0)
    X, X_val = rng.normal(size=(80, 3)), rng.normal(size=(30, 3))
    y, y_val = X[:, 0] * X[:, 1], X_val[:, 0] * X_val[:, 1]
    model = handnet.NeuralNetRegressor(
        [handnet.Dense(None, 4), BatchNorm(), handnet.Activation("relu"),
         handnet.Dense(None, None)],
        batch_size=16, max_iter=4, tol=None, learning_rate=0.05, random_state=0,
    ).fit(X, y, validation_data=(X_val, y_val))
    tree = _saved_tree(model, tmp_path / "model.npz")
    best = tree["training"]["stopping"]["best_buffers"]
    assert best.shape == (8,)  # running_mean, then running_var, of 4 features
    _load(tree, tmp_path)  # as saved: loads
    forged = copy.deepcopy(tree)
    forged["training"]["stopping"]["best_buffers"][5] = -2.0  # a running variance
    with pytest.raises(handnet.ModelFileError, match=r"best_buffers.*running_var.*negative"):
        _load(forged, tmp_path)
    forged["training"]["stopping"]["best_buffers"] = best[:5]
    with pytest.raises(handnet.ModelFileError, match="best_buffers"):
        _load(forged, tmp_path)
