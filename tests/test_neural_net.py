"""NeuralNetClassifier / NeuralNetRegressor: estimators over a network of any layers."""

from __future__ import annotations

import copy
import hashlib
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import handnet
from handnet import (
    Activation,
    Dense,
    Dropout,
    Flatten,
    MLPClassifier,
    NeuralNetClassifier,
    NeuralNetRegressor,
    Reshape,
)
from handnet.exceptions import ModelFileError
from handnet.io import DESCRIPTION_MEMBER, _canonical_json

pytestmark = pytest.mark.filterwarnings("ignore::handnet.exceptions.ConvergenceWarning")

RNG = np.random.default_rng(0)
IMAGES = RNG.normal(size=(60, 1, 4, 5))
LABELS = (IMAGES[:, 0, :, :2].sum(axis=(1, 2)) > 0).astype(int) + (
    IMAGES[:, 0, 0, 4] > 0.5
)
ROWS = IMAGES.reshape(60, 20)


def _image_layers() -> list[Any]:
    return [Flatten(), Dense(None, 12), Activation("tanh"), Dense(None, None)]


def test_default_layers_match_an_mlp_of_one_hidden_layer_of_100_units() -> None:
    model = NeuralNetClassifier(random_state=0, max_iter=5).fit(ROWS, LABELS)
    shapes = [p.shape for p in model.network_.parameters()]
    assert shapes == [(20, 100), (100,), (100, 3), (3,)]
    assert model.n_features_in_ == 20
    assert model.input_shape_ == (20,)


def test_images_and_flat_rows_with_input_shape_train_the_same_model() -> None:
    settings = dict(max_iter=8, batch_size=16, random_state=3)
    from_images = NeuralNetClassifier(_image_layers(), **settings).fit(IMAGES, LABELS)
    from_rows = NeuralNetClassifier(
        _image_layers(), input_shape=(1, 4, 5), **settings
    ).fit(ROWS, LABELS)
    np.testing.assert_array_equal(
        from_images.network_.flat_parameters, from_rows.network_.flat_parameters
    )
    assert from_images.input_shape_ == from_rows.input_shape_ == (1, 4, 5)
    assert from_images.n_features_in_ == 20
    assert isinstance(from_images.network_.layers[0], Reshape)
    # Either form predicts, and gives the same answer.
    np.testing.assert_array_equal(
        from_images.predict_proba(IMAGES), from_images.predict_proba(ROWS)
    )


def test_the_layers_given_are_a_specification_left_untouched() -> None:
    layers = _image_layers()
    before = copy.deepcopy(layers)
    model = NeuralNetClassifier(layers, max_iter=3, random_state=0).fit(IMAGES, LABELS)
    assert model.layers is layers
    assert [repr(layer) for layer in layers] == [repr(layer) for layer in before]
    assert layers[1].n_inputs is None and not layers[1].is_built()
    # The network's layers are built copies.
    assert model.network_.layers[2] is not layers[1]


def test_refit_and_clone_start_from_the_random_state() -> None:
    from sklearn.base import clone

    model = NeuralNetClassifier(_image_layers(), max_iter=4, random_state=7)
    first = model.fit(IMAGES, LABELS).network_.flat_parameters.copy()
    second = model.fit(IMAGES, LABELS).network_.flat_parameters
    np.testing.assert_array_equal(first, second)
    cloned = clone(model).fit(IMAGES, LABELS)
    np.testing.assert_array_equal(first, cloned.network_.flat_parameters)


def test_sized_layers_are_initialised_from_the_estimator_not_their_own_seed() -> None:
    layers = [Dense(20, 6, random_state=123), Activation("relu"), Dense(6, 3)]
    a = NeuralNetClassifier(layers, max_iter=1, random_state=0).fit(ROWS, LABELS)
    b = NeuralNetClassifier(layers, max_iter=1, random_state=1).fit(ROWS, LABELS)
    assert not np.array_equal(a.network_.flat_parameters, b.network_.flat_parameters)


def test_a_regressor_over_images_with_several_outputs() -> None:
    targets = np.stack([IMAGES[:, 0].sum(axis=(1, 2)), IMAGES[:, 0, 0, 0]], axis=1)
    model = NeuralNetRegressor(
        [Flatten(), Dense(None, 16), Activation("relu"), Dense(None, None)],
        learning_rate=0.01, max_iter=300, random_state=0,
    ).fit(IMAGES, targets)
    assert model.predict(IMAGES).shape == (60, 2)
    assert model.score(IMAGES, targets) > 0.8


def test_save_load_round_trip_is_bit_identical(tmp_path: Path) -> None:
    model = NeuralNetClassifier(
        [Flatten(), Dense(None, 10), Activation("relu"), Dropout(0.2), Dense(None, None)],
        max_iter=5, random_state=0, batch_size=16,
    ).fit(IMAGES.astype(np.float32), LABELS)
    path = tmp_path / "net.hnm"
    handnet.save(model, path)
    loaded = handnet.load(path)
    assert type(loaded) is NeuralNetClassifier
    np.testing.assert_array_equal(loaded.predict_proba(IMAGES), model.predict_proba(IMAGES))
    assert loaded.input_shape_ == (1, 4, 5)
    assert [repr(layer) for layer in loaded.layers] == [repr(layer) for layer in model.layers]
    # The loaded model trains on (warm start) exactly as the original does.
    for m in (model, loaded):
        m.set_params(warm_start=True, max_iter=2)
        m.fit(IMAGES.astype(np.float32), LABELS)
    np.testing.assert_array_equal(
        loaded.network_.flat_parameters, model.network_.flat_parameters
    )


def test_pickle_round_trip() -> None:
    model = NeuralNetClassifier(_image_layers(), max_iter=3, random_state=0).fit(IMAGES, LABELS)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(IMAGES), model.predict_proba(IMAGES))


def test_checkpoint_then_resume_reproduces_the_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every scheduled checkpoint written (the throttle that keeps their cost under 5 % of
    # training would skip those of a run this short; tests/test_checkpoint.py tests it).
    monkeypatch.setattr("handnet.io.checkpoint.MIN_INTERVAL", 0.0)
    monkeypatch.setattr("handnet.io.checkpoint.MAX_SHARE", float("inf"))

    class Stop(Exception):
        pass

    def make() -> NeuralNetClassifier:
        return NeuralNetClassifier(
            _image_layers(), max_iter=9, tol=None, batch_size=16, random_state=2
        )

    def fail_at_epoch_5(trainer: Any) -> None:
        if trainer.epoch == 5:
            raise Stop

    reference = make().fit(IMAGES, LABELS)
    path = tmp_path / "run.hnm"
    with pytest.raises(Stop):
        make().fit(
            IMAGES, LABELS, checkpoint=path, checkpoint_every=2, callbacks=[fail_at_epoch_5]
        )
    assert handnet.load(path).n_iter_ == 4
    resumed = make().fit(IMAGES, LABELS, checkpoint=path, resume=True)
    np.testing.assert_array_equal(
        resumed.network_.flat_parameters, reference.network_.flat_parameters
    )
    assert resumed.loss_curve_ == reference.loss_curve_


def test_early_stopping_keeps_the_best_epoch() -> None:
    model = NeuralNetClassifier(
        _image_layers(), early_stopping=True, validation_fraction=0.25, max_iter=40,
        n_iter_no_change=3, random_state=0,
    ).fit(IMAGES, LABELS)
    assert model.best_epoch_ is not None
    assert len(model.validation_loss_curve_) == model.n_iter_


def test_validation_data_as_images() -> None:
    model = NeuralNetClassifier(_image_layers(), max_iter=3, random_state=0)
    model.fit(IMAGES[:40], LABELS[:40], validation_data=(IMAGES[40:], LABELS[40:]))
    assert len(model.validation_scores_) == 3


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([Flatten(), Dense(None, 4)], "the targets need 3 output"),
        ([Dense(None, 4), Activation("relu"), Dense(None, None)], "put a Flatten"),
        ([Flatten(), Dense(7, 3)], "expects 7 inputs"),
        # Positions are the user's list's, not counting the Reshape of flat rows:
        ([Flatten(), Dense(7, 3)], r"^layers\[1\] Dense\(7, 3\) cannot follow a layer giving"),
        ([handnet.Conv2D(3, 2, 3), Flatten(), Dense(None, None)],
         r"^layers\[0\] Conv2D\(3, 2, .* cannot take inputs of per-sample shape \(1, 4, 5\)"),
        ("relu", "must be a list of handnet layers"),
        ([Flatten(), "dense"], r"layers\[1\] must be a handnet Layer"),
        ([], "at least one layer"),
    ],
)
def test_bad_layers_get_a_clear_error(layers: Any, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        NeuralNetClassifier(layers, max_iter=1).fit(IMAGES, LABELS)


def test_bad_input_shapes_get_a_clear_error() -> None:
    with pytest.raises(ValueError, match="holds 9 values per sample"):
        NeuralNetClassifier(_image_layers(), input_shape=(1, 3, 3), max_iter=1).fit(ROWS, LABELS)
    with pytest.raises(ValueError, match="input_shape"):
        NeuralNetClassifier(_image_layers(), input_shape=(1, 5, 4), max_iter=1).fit(
            IMAGES, LABELS
        )
    with pytest.raises(ValueError, match="1 to 3 integers"):
        NeuralNetClassifier(_image_layers(), input_shape=(0, 20), max_iter=1).fit(ROWS, LABELS)
    model = NeuralNetClassifier(_image_layers(), max_iter=1).fit(IMAGES, LABELS)
    with pytest.raises(ValueError, match=r"fitted on samples of shape \(1, 4, 5\)"):
        model.predict(IMAGES.reshape(60, 1, 5, 4))
    with pytest.raises(ValueError, match="20 features"):
        model.predict(ROWS[:, :10])


def test_images_without_a_channel_axis_nested_lists_and_too_many_axes() -> None:
    """(n, h, w) images: a conv layer's error says how to add the channel axis, and
    input_shape=(1, h, w) takes them; nested lists of images are images; five axes are
    refused by name."""
    gray = IMAGES[:, 0]  # (60, 4, 5)

    def conv_layers() -> list[Any]:
        return [handnet.Conv2D(None, 2, 3), Flatten(), Dense(None, None)]

    with pytest.raises(ValueError, match=r"no channel axis: pass X\[:, None\] .* or "
                                         r"input_shape=\(1, 4, 5\)"):
        NeuralNetClassifier(conv_layers(), max_iter=1).fit(gray, LABELS)
    settings = dict(max_iter=2, tol=None, random_state=0)
    declared = NeuralNetClassifier(conv_layers(), input_shape=(1, 4, 5), **settings)
    declared.fit(gray, LABELS)
    channels = NeuralNetClassifier(conv_layers(), **settings).fit(IMAGES, LABELS)
    np.testing.assert_array_equal(declared.predict_proba(gray), channels.predict_proba(IMAGES))
    np.testing.assert_array_equal(declared.predict_proba(IMAGES), channels.predict_proba(gray))
    nested = NeuralNetClassifier(conv_layers(), **settings).fit(IMAGES.tolist(), LABELS)
    np.testing.assert_array_equal(nested.predict_proba(IMAGES[:5].tolist()),
                                  channels.predict_proba(IMAGES[:5]))
    with pytest.raises(ValueError, match="put a Flatten") as dense_first:  # no image layer
        NeuralNetClassifier(_image_layers()[1:], max_iter=1).fit(gray, LABELS)
    assert "channel axis" not in str(dense_first.value)
    with pytest.raises(ValueError, match=r"samples of shape \(1, 1, 4, 5\): pass images as"):
        NeuralNetClassifier(conv_layers(), max_iter=1).fit(IMAGES[:, None], LABELS)
    with pytest.raises(ValueError, match="but input_shape=\\(2, 4, 5\\)"):
        NeuralNetClassifier(conv_layers(), input_shape=(2, 4, 5), max_iter=1).fit(gray, LABELS)


def test_l_bfgs_refuses_a_network_with_dropout() -> None:
    layers = [Flatten(), Dense(None, 5), Dropout(0.5), Dense(None, None)]
    with pytest.raises(ValueError, match="dropout needs a stochastic optimizer"):
        NeuralNetClassifier(layers, optimizer="lbfgs", max_iter=2).fit(IMAGES, LABELS)


def test_same_layers_as_an_mlp_give_the_mlp() -> None:
    """A NeuralNetClassifier over the MLP's layers trains exactly like the MLP."""
    mlp = MLPClassifier((9,), activation="tanh", max_iter=6, random_state=4, alpha=1e-3)
    net = NeuralNetClassifier(
        [Dense(None, 9, init="xavier"), Activation("tanh"), Dense(None, None, init="xavier")],
        max_iter=6, random_state=4, alpha=1e-3,
    )
    mlp.fit(ROWS, LABELS)
    net.fit(ROWS, LABELS)
    np.testing.assert_array_equal(mlp.network_.flat_parameters, net.network_.flat_parameters)


# --- model files: a forged layers hyperparameter is refused before anything is built ---------


def _rewrite(path: Path, edit: Any) -> None:
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    description = json.loads(members[DESCRIPTION_MEMBER])
    edit(description["content"])
    description["content_sha256"] = hashlib.sha256(
        _canonical_json(description["content"])
    ).hexdigest()
    members[DESCRIPTION_MEMBER] = json.dumps(description).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    model = NeuralNetClassifier(_image_layers(), max_iter=2, random_state=0).fit(IMAGES, LABELS)
    path = tmp_path / "net.hnm"
    handnet.save(model, path)
    return path


def test_a_forged_huge_layer_in_the_hyperparameters_is_refused(saved: Path) -> None:
    def huge(content: dict[str, Any]) -> None:
        content["params"]["layers"][1]["settings"]["n_outputs"] = 2**31

    _rewrite(saved, huge)
    with pytest.raises(ModelFileError, match="n_outputs"):
        handnet.load(saved)


def test_a_layer_of_another_type_in_the_hyperparameters_is_refused(saved: Path) -> None:
    def swap(content: dict[str, Any]) -> None:
        content["params"]["layers"][2] = {"$layer": "Dropout", "settings": {"rate": 0.5}}

    _rewrite(saved, swap)
    with pytest.raises(ModelFileError, match="Dropout where the network holds a Activation"):
        handnet.load(saved)


def test_an_unregistered_layer_name_is_refused(saved: Path) -> None:
    def unknown(content: dict[str, Any]) -> None:
        content["params"]["layers"][0] = {"$layer": "os.system", "settings": {}}

    _rewrite(saved, unknown)
    with pytest.raises(ModelFileError, match="unknown layer"):
        handnet.load(saved)


def test_a_sample_shape_that_disagrees_with_the_features_is_refused(saved: Path) -> None:
    def reshape(content: dict[str, Any]) -> None:
        content["fitted"]["_sample_shape"] = [1, 5, 5]

    _rewrite(saved, reshape)
    with pytest.raises(ModelFileError, match="_sample_shape"):
        handnet.load(saved)


def test_images_streamed_from_disk_as_flat_rows(tmp_path: Path, monkeypatch: Any) -> None:
    """A memmap of flat rows is read block by block: input_shape says how to view them."""
    from handnet.data import streaming

    monkeypatch.setattr(streaming, "BLOCK_BYTES", 1024)  # so that the file is "large"
    path = tmp_path / "rows.npy"
    np.save(path, ROWS)
    rows = np.load(path, mmap_mode="r")
    assert streaming.is_out_of_core(rows)
    settings = dict(max_iter=3, batch_size=16, random_state=0)
    on_disk = NeuralNetClassifier(_image_layers(), input_shape=(1, 4, 5), **settings)
    on_disk.fit(rows, LABELS)
    assert on_disk.input_shape_ == (1, 4, 5)
    assert isinstance(on_disk.network_.layers[0], Reshape)
    in_memory = NeuralNetClassifier(_image_layers(), input_shape=(1, 4, 5), **settings)
    in_memory.fit(ROWS, LABELS)
    assert in_memory.network_.config() == on_disk.network_.config()


def test_convolutional_networks_train_with_the_threads_over_samples(monkeypatch: Any) -> None:
    """BLAS on one thread and the batch split over the cores, only where convolutions are."""
    from handnet import Conv2D, MaxPool2D, conv

    entered: list[bool] = []
    real = conv.threads_over_samples

    def spy(*args: Any, **kwargs: Any) -> Any:
        entered.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(conv, "threads_over_samples", spy)
    NeuralNetClassifier(_image_layers(), max_iter=1, random_state=0).fit(IMAGES, LABELS)
    assert entered == []
    layers = [Conv2D(None, 2, 3, padding="same"), MaxPool2D(2), Flatten(), Dense(None, None)]
    NeuralNetClassifier(layers, max_iter=2, random_state=0).fit(IMAGES[:, :, :4, :4], LABELS)
    assert entered == [True]
