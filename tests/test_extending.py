"""Growing handnet from outside the package: a new block is one class plus one ``register``.

A user's activation, update rules, layers and estimator, registered from this file
(no edit in the package), are known by name to the models, trained, saved, loaded
with bit-identical predictions, checkpointed and resumed, and offered by the
command line; unknown names and bad names are refused clearly.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from numpy.typing import NDArray

import handnet
from handnet import cli
from handnet.base import ESTIMATORS
from handnet.datasets import make_moons
from handnet.gradcheck import check_network
from handnet.nn.activations import ACTIVATIONS, ActivationPair, hidden_activations
from handnet.nn.layers import LAYERS, Dense, Layer
from handnet.nn.network import Sequential
from handnet.nn.penalties import PENALTIES, Penalty
from handnet.optim.optimizers import OPTIMIZERS, Optimizer
from handnet.registry import Registry

Array = NDArray[np.floating]


# --- a user's blocks ---------------------------------------------------------------------


def softsign(z: Array) -> Array:
    r""":math:`z / (1 + |z|)`."""
    return z / (1.0 + np.abs(z))


def softsign_backward(dout: Array, z: Array, a: Array) -> Array:
    r""":math:`\partial a / \partial z = 1 / (1 + |z|)^2`."""
    return dout / (1.0 + np.abs(z)) ** 2


class SignDescent(Optimizer):
    r"""Sign descent with a decaying step: :math:`\theta \leftarrow \theta - \eta\,
    \mathrm{sign}(m)`, :math:`m \leftarrow \beta m + (1 - \beta) g` (per-parameter state)."""

    def __init__(self, learning_rate: float = 0.01, beta: float = 0.9) -> None:
        super().__init__(learning_rate)
        self.beta = beta

    def _init_state(self, param: Array) -> dict[str, Array]:
        return {"average": np.zeros_like(param)}

    def _update(self, param: Array, grad: Array, state: dict[str, Array]) -> None:
        average = state["average"]
        average *= param.dtype.type(self.beta)
        average += param.dtype.type(1.0 - self.beta) * grad
        param -= param.dtype.type(self.learning_rate) * np.sign(average)


@pytest.fixture
def registered() -> Iterator[None]:
    """The user's blocks registered for one test (the registries are left as found)."""
    ACTIVATIONS.register("softsign", ActivationPair(softsign, softsign_backward))
    OPTIMIZERS.register("sign_descent", SignDescent)
    try:
        yield
    finally:
        del ACTIVATIONS["softsign"], OPTIMIZERS["sign_descent"]


def _data() -> tuple[Array, NDArray[Any]]:
    return make_moons(200, noise=0.2, random_state=0)


# --- the tests ---------------------------------------------------------------------------


def test_a_registered_activation_has_a_correct_gradient(registered: None) -> None:
    assert handnet.gradcheck.check_activation("softsign", np.linspace(-3, 3, 13)) < 1e-6


@pytest.mark.usefixtures("registered")
@pytest.mark.parametrize("optimizer", ["sign_descent", SignDescent(learning_rate=0.02)])
def test_registered_blocks_train_save_load_and_resume(optimizer: Any, tmp_path: Path) -> None:
    X, y = _data()

    def make(max_iter: int = 30) -> handnet.MLPClassifier:
        return handnet.MLPClassifier(hidden_layer_sizes=(8,), activation="softsign",
                                     optimizer=optimizer, learning_rate=0.02, batch_size=20,
                                     max_iter=max_iter, tol=None, random_state=0)

    model = make().fit(X, y)
    assert model.score(X, y) > 0.8
    path = tmp_path / "model.npz"
    handnet.save(model, path)
    loaded = handnet.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))

    # A checkpointed run, interrupted after 10 epochs and resumed, ends as an
    # uninterrupted one: the optimizer's per-parameter state travels in the file.
    checkpoint = tmp_path / "run.npz"
    make(max_iter=10).fit(X, y, checkpoint=checkpoint)
    resumed = make().fit(X, y, checkpoint=checkpoint, resume=True)
    np.testing.assert_array_equal(resumed.network_.flat_parameters, model.network_.flat_parameters)


def test_the_command_line_offers_registered_blocks(registered: None) -> None:
    parser = cli.build_parser()
    train = next(
        action.choices["train"]
        for action in parser._actions
        if isinstance(action.choices, dict) and "train" in action.choices
    )
    choices = {action.dest: action.choices for action in train._actions if action.choices}
    assert "softsign" in choices["activation"]
    assert "sign_descent" in choices["optimizer"]
    assert "softsign" in hidden_activations()


def test_unregistered_names_are_refused_clearly() -> None:
    X, y = _data()
    with pytest.raises(ValueError, match="activation must be one of"):
        handnet.MLPClassifier(activation="softsign").fit(X, y)
    with pytest.raises(ValueError, match="unknown optimizer 'sign_descent'"):
        handnet.MLPClassifier(optimizer="sign_descent").fit(X, y)


def test_a_registry_refuses_bad_and_taken_names() -> None:
    registry: Registry[int] = Registry("thing", [("one", 1)])
    for bad in ("One", "two words", "1st", "", "x" * 65, 3):
        with pytest.raises(ValueError, match="lower-case identifier"):
            registry.register(bad, 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="already a registered thing"):
        registry.register("one", 2)
    registry.register("one", 2, replace=True)

    @registry.register("three")
    def three() -> int:
        return 3

    assert registry.lookup("three") is three and registry.names() == ("one", "three")
    with pytest.raises(ValueError, match="unknown thing 'four'; choose one of"):
        registry.lookup("four")


class HalfSquare(Layer):
    r"""A user's layer: :math:`\text{out} = x^2 / 2`, so :math:`\partial L/\partial x = G x`."""

    _forward_cache = ("_X",)

    def forward(self, X: Array, training: bool = False) -> Array:
        self._X = X
        return 0.5 * X * X

    def backward(self, dout: Array, need_input_gradient: bool = True) -> Array | None:
        return dout * self._X


def test_a_registered_layer_is_saved_loaded_and_checked(tmp_path: Path) -> None:
    LAYERS.register("HalfSquare", HalfSquare)
    try:
        layers = [Dense(3, 4, random_state=0), HalfSquare(), Dense(4, 2, random_state=1)]
        network = Sequential(layers)
        X = np.random.default_rng(0).normal(size=(5, 3))
        errors = check_network(network, "softmax_cross_entropy", X, np.eye(2)[[0, 1, 0, 1, 1]])
        assert max(errors.values()) < 1e-6
        path = tmp_path / "network.npz"
        handnet.save(network, path)
        loaded = handnet.load(path)
        assert [type(layer) for layer in loaded.layers] == [Dense, HalfSquare, Dense]
        np.testing.assert_array_equal(loaded.predict(X), network.predict(X))
    finally:
        del LAYERS["HalfSquare"]
    # Unregistered, the same file is refused: loading builds only what is registered.
    with pytest.raises(handnet.ModelFileError, match="unknown type 'HalfSquare'"):
        handnet.load(path)


class ClippedSteps(Optimizer):
    r"""Normalised steps :math:`\theta \leftarrow \theta - \eta\, g / \lVert g\rVert`, with a
    flag and a word among its settings, and state of other shapes than the parameters':
    one number per parameter vector (the largest gradient norm seen, 0-d) and a counter."""

    def __init__(
        self, learning_rate: float = 0.01, track_max: bool = True, mode: str = "normalised"
    ) -> None:
        super().__init__(learning_rate)
        self.track_max = track_max
        self.mode = mode

    def _init_state(self, param: Array) -> dict[str, Array]:
        state = {"count": np.zeros(1, dtype=param.dtype)}
        if self.track_max:
            state["max_norm"] = np.zeros((), dtype=param.dtype)
        return state

    def _update(self, param: Array, grad: Array, state: dict[str, Array]) -> None:
        norm = float(np.sqrt(np.dot(grad, grad)))
        if self.track_max:
            state["max_norm"][...] = max(float(state["max_norm"]), norm)
        state["count"] += 1
        scale = 1.0 / max(norm, 1e-12) if self.mode == "normalised" else 1.0
        param -= param.dtype.type(self.learning_rate * scale) * grad


@pytest.mark.parametrize("track_max", [True, False])
def test_an_optimizer_with_words_flags_and_state_of_any_shape(
    track_max: bool, tmp_path: Path
) -> None:
    """Settings that are not numbers and per-parameter state of another shape are saved,
    checked on load against what the configured optimizer keeps, and resumed exactly."""
    OPTIMIZERS.register("clipped_steps", ClippedSteps)
    try:
        X, y = _data()

        def make(max_iter: int) -> handnet.MLPClassifier:
            optimizer = ClippedSteps(0.05, track_max=track_max, mode="normalised")
            return handnet.MLPClassifier(hidden_layer_sizes=(8,), optimizer=optimizer,
                                         batch_size=20, max_iter=max_iter, tol=None,
                                         random_state=0)

        model = make(20).fit(X, y)
        path = tmp_path / "model.npz"
        handnet.save(model, path)
        loaded = handnet.load(path)
        np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
        assert loaded.optimizer.mode == "normalised" and loaded.optimizer.track_max is track_max
        checkpoint = tmp_path / "run.npz"
        make(8).fit(X, y, checkpoint=checkpoint)
        resumed = make(20).fit(X, y, checkpoint=checkpoint, resume=True)
        np.testing.assert_array_equal(
            resumed.network_.flat_parameters, model.network_.flat_parameters
        )
        counts = [m._trainer.optimizer.state[0]["count"][0] for m in (resumed, model)]
        assert counts[0] == counts[1] == 20 * 10  # 10 batches an epoch
    finally:
        del OPTIMIZERS["clipped_steps"]


class RunningCentre(Layer):
    r"""A user's layer with a buffer: training-mode passes move a running mean of the
    inputs, :math:`\mu \leftarrow 0.9\mu + 0.1\,\bar x`, inference subtracts it; acts
    differently in training and inference, and saves :math:`\mu` with the model."""

    config_fields: ClassVar[dict[str, str]] = {"n_features": "size"}

    def __init__(self, n_features: int) -> None:
        self.n_features = int(n_features)
        self.mean = np.zeros(self.n_features)

    def forward(self, X: Array, training: bool = False) -> Array:
        if training:
            self.mean *= 0.9
            self.mean += 0.1 * X.mean(axis=0)
            return X
        return X - self.mean

    def backward(self, dout: Array, need_input_gradient: bool = True) -> Array | None:
        return dout

    def buffers(self) -> dict[str, Array]:
        return {"mean": self.mean}

    def config(self) -> dict[str, object]:
        return {"type": "RunningCentre", "n_features": self.n_features}


def test_a_layer_with_a_buffer_saves_and_restores_it(tmp_path: Path) -> None:
    LAYERS.register("RunningCentre", RunningCentre)
    try:
        network = Sequential([RunningCentre(3), Dense(3, 2, random_state=0)])
        X = np.random.default_rng(0).normal(3.0, 1.0, size=(50, 3))
        for _ in range(20):
            network.forward(X, training=True)
        assert np.all(network.layers[0].mean > 2.0)
        path = tmp_path / "network.npz"
        handnet.save(network, path)
        loaded = handnet.load(path)
        np.testing.assert_array_equal(loaded.layers[0].mean, network.layers[0].mean)
        np.testing.assert_array_equal(loaded.predict(X), network.predict(X))
        # A file whose buffer has another shape is refused, not broadcast into place.
        table = _bad_input_table()
        tree = table.read_tree(path)
        tree["network"]["buffers"][0]["mean"] = np.zeros(4)
        table.forge(tree, path)
        with pytest.raises(handnet.ModelFileError, match="buffer 'mean' must be"):
            handnet.load(path)
    finally:
        del LAYERS["RunningCentre"]


def _bad_input_table() -> Any:
    """scripts/bad_array_table.py, whose read_tree/forge rewrite a model file's content."""
    if "bad_array_table" in sys.modules:  # tests/test_bad_input.py loaded it already
        return sys.modules["bad_array_table"]
    path = Path(__file__).resolve().parent.parent / "scripts" / "bad_array_table.py"
    spec = importlib.util.spec_from_file_location("bad_array_table", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bad_array_table"] = module  # dataclasses look the module up
    spec.loader.exec_module(module)
    return module


class CentredMLPClassifier(handnet.MLPClassifier):
    """A user's estimator: an MLP whose inputs a :class:`RunningCentre` layer centres."""

    def _build_network(
        self, n_features: int, n_outputs: int, dtype: np.dtype[Any]
    ) -> Sequential:
        network = super()._build_network(n_features, n_outputs, dtype)
        return Sequential([RunningCentre(n_features), *network.layers])


def test_a_registered_estimator_trains_saves_loads_and_resumes(tmp_path: Path) -> None:
    LAYERS.register("RunningCentre", RunningCentre)
    ESTIMATORS.register("CentredMLPClassifier", CentredMLPClassifier)
    try:
        X, y = _data()
        X = X + 5.0  # off-centre inputs, which the layer learns to centre

        def make(max_iter: int) -> CentredMLPClassifier:
            return CentredMLPClassifier(hidden_layer_sizes=(8,), learning_rate=0.02,
                                        batch_size=20, max_iter=max_iter, tol=None,
                                        random_state=0)

        model = make(20).fit(X, y)
        assert np.all(np.abs(model.network_.layers[0].mean - 5.0) < 1.0)
        path = tmp_path / "model.npz"
        handnet.save(model, path)
        loaded = handnet.load(path)
        assert type(loaded) is CentredMLPClassifier
        np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
        checkpoint = tmp_path / "run.npz"
        make(8).fit(X, y, checkpoint=checkpoint)
        resumed = make(20).fit(X, y, checkpoint=checkpoint, resume=True)
        np.testing.assert_array_equal(
            resumed.network_.flat_parameters, model.network_.flat_parameters
        )
        np.testing.assert_array_equal(
            resumed.network_.layers[0].mean, model.network_.layers[0].mean
        )
    finally:
        del LAYERS["RunningCentre"], ESTIMATORS["CentredMLPClassifier"]


# --- a layer over images, with a parameter and a buffer, and an estimator over it --------


class ChannelCentre(Layer):
    r"""A user's layer over images ``(n, c, h, w)``: centre each channel, then scale it.

    Training: :math:`y = g_c\,(x - \bar x_c)` with the batch's channel mean
    :math:`\bar x_c`, and the running mean :math:`\mu_c \leftarrow 0.9\mu_c + 0.1\bar x_c`;
    inference: :math:`y = g_c\,(x - \mu_c)`. The gain :math:`g` is trained; :math:`\mu`
    is a buffer saved with the model. Backward (training):
    :math:`\partial L/\partial g_c = \sum G (x - \bar x_c)`,
    :math:`\partial L/\partial x = g_c\,(G - \bar G_c)`.
    """

    penalized = (False,)
    config_fields: ClassVar[dict[str, str]] = {"channels": "size"}
    _forward_cache = ("_centred",)

    def __init__(self, channels: int | None = None, dtype: Any = np.float64) -> None:
        self.channels = channels
        if channels is not None:
            self._allocate(np.dtype(dtype))

    def _allocate(self, dtype: np.dtype[Any]) -> None:
        assert self.channels is not None
        self.gain = np.ones(self.channels, dtype=dtype)
        self.grad_gain = np.zeros_like(self.gain)
        self.running_mean = np.zeros(self.channels, dtype=dtype)

    @classmethod
    def from_config(cls, config: Any, dtype: Any = np.float64) -> ChannelCentre:
        return cls(int(config["channels"]), dtype=dtype)

    @classmethod
    def chain(cls, config: Any, input_shape: Any) -> tuple[Any, int]:
        if input_shape is not None and (len(input_shape) != 3 or
                                        input_shape[0] != config["channels"]):
            raise ValueError(f"ChannelCentre takes ({config['channels']}, h, w) images")
        return input_shape, int(config["channels"])

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) != 3:
            raise ValueError(f"ChannelCentre takes images (c, h, w), got {input_shape}")
        return input_shape

    def build(self, input_shape: tuple[int, ...], rng: Any, dtype: Any) -> None:
        self.output_shape(input_shape)
        self.channels = input_shape[0]
        self._allocate(np.dtype(dtype))

    def is_built(self) -> bool:
        return self.channels is not None

    def forward(self, X: Array, training: bool = False) -> Array:
        axes = (0, 2, 3)
        if training:
            mean = X.mean(axis=axes)
            self.running_mean *= 0.9
            self.running_mean += 0.1 * mean
        else:
            mean = self.running_mean
        self._centred = X - mean[None, :, None, None]
        return self.gain[None, :, None, None] * self._centred

    def backward(self, dout: Array, need_input_gradient: bool = True) -> Array | None:
        self.grad_gain[...] = (dout * self._centred).sum(axis=(0, 2, 3))
        scaled = self.gain[None, :, None, None] * dout
        return scaled - scaled.mean(axis=(0, 2, 3), keepdims=True)

    def parameters(self) -> list[Array]:
        return [self.gain] if self.is_built() else []

    def gradients(self) -> list[Array]:
        return [self.grad_gain] if self.is_built() else []

    def bind(self, parameters: list[Array], gradients: list[Array]) -> None:
        parameters[0][...] = self.gain
        self.gain, self.grad_gain = parameters[0], gradients[0]

    def buffers(self) -> dict[str, Array]:
        return {"running_mean": self.running_mean}

    def config(self) -> dict[str, object]:
        return {"type": "ChannelCentre", "channels": self.channels}


class CentredImageClassifier(handnet.NeuralNetClassifier):
    """A user's estimator over images: its network starts by centring each channel."""

    def _layer_specs(self) -> list[Layer]:
        return [ChannelCentre(), *super()._layer_specs()]


def _images() -> tuple[Array, NDArray[Any]]:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(80, 2, 3, 3)) + np.array([4.0, -2.0])[None, :, None, None]
    y = (X[:, 0].mean(axis=(1, 2)) - 4.0 > X[:, 1].mean(axis=(1, 2)) + 2.0).astype(int)
    return X, y


def test_a_layer_over_images_has_correct_gradients() -> None:
    layer = ChannelCentre()
    layer.build((2, 3, 3), np.random.default_rng(0), np.float64)
    layer.gain[...] = [1.5, -0.5]
    X, _ = _images()
    X = X[:6]
    G = np.random.default_rng(1).normal(size=X.shape)

    def objective() -> float:
        saved = layer.running_mean.copy()
        value = float(np.sum(G * layer.forward(X, training=True)))
        layer.running_mean[...] = saved
        return value

    layer.forward(X, training=True)
    dX = layer.backward(G)
    assert dX is not None
    step = 1e-6
    for array, analytic in ((X, dX), (layer.gain, layer.grad_gain.copy())):
        numeric = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            original = array[index]
            array[index] = original + step
            up = objective()
            array[index] = original - step
            down = objective()
            array[index] = original
            numeric[index] = (up - down) / (2 * step)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.usefixtures("registered")
def test_a_registered_image_layer_and_estimator_train_save_load_and_resume(
    tmp_path: Path,
) -> None:
    from handnet import catalog

    LAYERS.register("ChannelCentre", ChannelCentre)
    ESTIMATORS.register("CentredImageClassifier", CentredImageClassifier)
    try:
        X, y = _images()

        def make(max_iter: int) -> CentredImageClassifier:
            layers = [handnet.Flatten(), Dense(None, 8), handnet.Activation("softsign"),
                      Dense(None, None)]
            return CentredImageClassifier(layers, optimizer="sign_descent", learning_rate=0.01,
                                          batch_size=16, max_iter=max_iter, tol=None,
                                          random_state=0)

        model = make(30).fit(X, y)
        assert model.score(X, y) > 0.8
        centre = model.network_.layers[1]  # after the Reshape that views rows as images
        assert isinstance(centre, ChannelCentre)
        np.testing.assert_allclose(centre.running_mean, [4.0, -2.0], atol=0.3)
        path = tmp_path / "model.hnm"
        handnet.save(model, path)
        loaded = handnet.load(path)
        assert type(loaded) is CentredImageClassifier
        np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
        np.testing.assert_array_equal(loaded.network_.layers[1].running_mean,
                                      centre.running_mean)
        checkpoint = tmp_path / "run.hnm"
        make(12).fit(X, y, checkpoint=checkpoint)
        resumed = make(30).fit(X, y, checkpoint=checkpoint, resume=True)
        np.testing.assert_array_equal(
            resumed.network_.flat_parameters, model.network_.flat_parameters
        )
        np.testing.assert_array_equal(resumed.network_.layers[1].running_mean,
                                      centre.running_mean)
        # The generated reference lists the user's blocks beside the library's own.
        reference = catalog.markdown()
        for name in ("ChannelCentre", "CentredImageClassifier", "softsign", "sign_descent"):
            assert f"| `{name}` |" in reference
    finally:
        del LAYERS["ChannelCentre"], ESTIMATORS["CentredImageClassifier"]


# --- a user's penalty --------------------------------------------------------------------


class Cauchy(Penalty):
    r""":math:`\alpha \sum \log(1 + w^2)`: small weights shrink, large ones are let be."""

    def value(self, weights: Array) -> float:
        return self.alpha * float(np.sum(np.log1p(weights * weights)))

    def gradient(self, weights: Array) -> Array:
        return weights.dtype.type(2.0 * self.alpha) * weights / (1.0 + weights * weights)


def test_a_registered_penalty_trains_saves_loads_and_resumes(tmp_path: Path) -> None:
    from handnet import catalog
    from handnet.gradcheck import gradcheck

    PENALTIES.register("cauchy", Cauchy)
    try:
        w = np.random.default_rng(0).standard_normal(11)
        assert gradcheck(lambda v: (Cauchy(0.3).value(v), Cauchy(0.3).gradient(v)), w).passed(1e-6)
        X, y = _data()

        def make(max_iter: int = 20) -> handnet.MLPClassifier:
            return handnet.MLPClassifier(hidden_layer_sizes=(8,), penalty="cauchy", alpha=0.01,
                                         batch_size=20, max_iter=max_iter, tol=None,
                                         random_state=0)

        model = make().fit(X, y)
        plain = make().set_params(penalty=None).fit(X, y)
        assert not np.array_equal(model.network_.flat_parameters, plain.network_.flat_parameters)
        path = tmp_path / "model.npz"
        handnet.save(model, path)
        loaded = handnet.load(path)
        assert loaded.penalty == "cauchy"
        np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
        checkpoint = tmp_path / "run.npz"
        make(max_iter=8).fit(X, y, checkpoint=checkpoint)
        resumed = make().fit(X, y, checkpoint=checkpoint, resume=True)
        np.testing.assert_array_equal(
            resumed.network_.flat_parameters, model.network_.flat_parameters
        )
        assert "| `cauchy` |" in catalog.markdown()
    finally:
        del PENALTIES["cauchy"]
