"""BatchNorm and LayerNorm: gradients against finite differences, training vs inference,
running statistics, saving, configs, dtypes, training; and dropout on image-shaped input."""

from __future__ import annotations

import contextlib
import importlib
import io
import pickle
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

import handnet
from handnet.data import blocks
from handnet.datasets import make_moons
from handnet.gradcheck import check_network_parameters, gradcheck
from handnet.nn.layers import (
    LAYERS,
    Activation,
    Dense,
    Dropout,
    Flatten,
    Layer,
    Reshape,
    check_layer_configs,
)
from handnet.nn.losses import SoftmaxCrossEntropy
from handnet.nn.network import Sequential, build_network
from handnet.nn.normalization import BatchNorm, LayerNorm
from handnet.optim.optimizers import Adam
from handnet.training import Trainer

Array = NDArray[np.floating]
TOL = 1e-6
DOC = Path(__file__).resolve().parents[1] / "docs" / "normalization.md"


def _randomise(layer: Layer, rng: np.random.Generator) -> None:
    """Random gamma and beta, so that a wrong term in their gradients shows."""
    for parameter in layer.parameters():
        parameter[...] = rng.normal(1.0, 0.5, size=parameter.shape)


def _check_gradients(layer: Layer, X: Array, rng: np.random.Generator, training: bool) -> None:
    """Input and parameter gradients of sum(G * layer(X)) against central differences."""
    G = rng.standard_normal(X.shape)

    def input_objective(x: Array) -> tuple[float, Array]:
        value = float(np.sum(G * layer.forward(x, training=training)))
        dX = layer.backward(G)
        assert dX is not None
        return value, dX

    result = gradcheck(input_objective, X)
    assert result.passed(TOL), result.max_relative_error
    for index, parameter in enumerate(layer.parameters()):

        def objective(p: Array, index: int = index, parameter: Array = parameter) -> tuple[
            float, Array
        ]:
            parameter[...] = p
            value = float(np.sum(G * layer.forward(X, training=training)))
            layer.backward(G)
            return value, layer.gradients()[index].copy()

        result = gradcheck(objective, parameter.copy())
        assert result.passed(TOL), (index, result.max_relative_error)


# --- BatchNorm gradients -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "eps"),
    [
        ((5, 3), 1e-5),
        ((7, 1), 1e-5),
        ((3, 2, 3, 5), 1e-5),
        ((3, 2, 1, 1), 1e-5),
        ((1, 2, 3, 1), 1e-5),
        ((4, 3, 5), 1e-5),
        # Two values per statistic normalise to about -1 and 1 whatever the input: the
        # gradient is of the size of eps / variance, which a large eps lifts above round-off.
        ((2, 4), 1.0),
        ((2, 3, 1, 1), 1.0),
    ],
)
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradients(
    shape: tuple[int, ...], eps: float, training: bool, rng: np.random.Generator
) -> None:
    layer = BatchNorm(shape[1], eps=eps)
    _randomise(layer, rng)
    layer.running_mean[...] = rng.standard_normal(shape[1])
    layer.running_var[...] = rng.uniform(0.5, 2.0, shape[1])
    _check_gradients(layer, rng.normal(0.5, 2.0, size=shape), rng, training)


def test_batchnorm_without_affine_has_no_parameters_and_right_gradient(
    rng: np.random.Generator,
) -> None:
    layer = BatchNorm(3, affine=False)
    assert layer.parameters() == [] and layer.gradients() == [] and layer.penalized == ()
    _check_gradients(layer, rng.standard_normal((6, 3, 2, 2)), rng, True)
    out = layer.forward(rng.standard_normal((6, 3)), training=True)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-12)


def test_batchnorm_batch_of_one_row_is_finite(rng: np.random.Generator) -> None:
    """Dense, training, one row: variance 0, output beta (finite thanks to eps), no gradient."""
    layer = BatchNorm(4)
    _randomise(layer, rng)
    X = rng.standard_normal((1, 4))
    with pytest.warns(UserWarning, match="training batch of one row"):
        out = layer.forward(X, training=True)
    np.testing.assert_array_equal(out, layer.beta[None, :])
    G = rng.standard_normal((1, 4))
    dX = layer.backward(G)
    assert dX is not None and np.all(np.isfinite(dX))
    np.testing.assert_array_equal(dX, 0.0)
    np.testing.assert_array_equal(layer.grad_gamma, 0.0)  # xhat is 0
    np.testing.assert_array_equal(layer.grad_beta, G[0])
    # The running mean moves; the running variance (unbiased: undefined for one value) stays.
    np.testing.assert_allclose(layer.running_mean, 0.1 * X[0], rtol=1e-15)
    np.testing.assert_array_equal(layer.running_var, 1.0)
    # One image of several positions has a spread per channel: no warning; nor has
    # inference on one row.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BatchNorm(4).forward(rng.standard_normal((1, 4, 3, 3)), training=True)
        layer.forward(X, training=False)


def test_estimator_with_batchnorm_warns_on_batches_of_one_row() -> None:
    """batch_size=1 with a dense BatchNorm: the warning reaches the caller of fit."""
    X, y = make_moons(40, random_state=0)
    model = handnet.NeuralNetClassifier(
        [Dense(None, 8), BatchNorm(), Activation("relu"), Dense(None, None)],
        batch_size=1, max_iter=1, tol=None, random_state=0,
    )
    with pytest.warns(UserWarning, match="batch_size >= 2"):
        model.fit(X, y)


def test_batchnorm_backward_formula_in_compact_form(rng: np.random.Generator) -> None:
    """dX = gamma * inv_std / M * (M dY - sum dY - xhat * sum(dY xhat)), written out."""
    layer = BatchNorm(3, eps=1e-3)
    _randomise(layer, rng)
    X, G = rng.standard_normal((2, 3, 2, 2)), rng.standard_normal((2, 3, 2, 2))
    layer.forward(X, training=True)
    dX = layer.backward(G)
    assert dX is not None
    for c in range(3):
        x, g = X[:, c].ravel(), G[:, c].ravel()
        M = x.size
        mu = x.sum() / M
        s = 1 / np.sqrt(((x - mu) ** 2).sum() / M + 1e-3)
        xhat = (x - mu) * s
        expected = layer.gamma[c] * s / M * (M * g - g.sum() - xhat * (g * xhat).sum())
        np.testing.assert_allclose(dX[:, c].ravel(), expected, rtol=1e-12, atol=1e-14)
        assert layer.grad_gamma[c] == pytest.approx((g * xhat).sum(), rel=1e-12)
        assert layer.grad_beta[c] == pytest.approx(g.sum(), rel=1e-12)


def test_batchnorm_training_output_is_standardised(rng: np.random.Generator) -> None:
    layer = BatchNorm(2, eps=1e-12)
    X = rng.normal(3.0, 5.0, size=(4, 2, 3, 3))
    out = layer.forward(X, training=True)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1.0, rtol=1e-9)


# --- BatchNorm running statistics and inference ----------------------------------------------


def test_running_statistics_follow_the_momentum_recursion(rng: np.random.Generator) -> None:
    momentum = 0.3
    layer = BatchNorm(2, momentum=momentum)
    mean, var = np.zeros(2), np.ones(2)
    for step in range(5):
        X = rng.normal(step, 1.0 + step, size=(3, 2, 2, 2))
        layer.forward(X, training=True)
        values = X.transpose(1, 0, 2, 3).reshape(2, -1)  # per channel: 3 * 2 * 2 = 12 values
        mean = (1 - momentum) * mean + momentum * values.mean(axis=1)
        var = (1 - momentum) * var + momentum * values.var(axis=1, ddof=1)  # unbiased
    np.testing.assert_allclose(layer.running_mean, mean, rtol=1e-13)
    np.testing.assert_allclose(layer.running_var, var, rtol=1e-13)


def test_inference_uses_the_running_statistics(rng: np.random.Generator) -> None:
    layer = BatchNorm(3, eps=1e-4)
    _randomise(layer, rng)
    for _ in range(4):
        layer.forward(rng.normal(2.0, 3.0, size=(8, 3)), training=True)
    X = rng.standard_normal((5, 3))
    expected = (X - layer.running_mean) / np.sqrt(layer.running_var + 1e-4) * layer.gamma
    expected += layer.beta
    np.testing.assert_allclose(layer.forward(X), expected, rtol=1e-13)
    # Row by row the same: inference does not depend on the batch.
    np.testing.assert_allclose(layer.forward(X[:1]), expected[:1], rtol=1e-13)
    running = layer.running_mean.copy(), layer.running_var.copy()
    layer.predict(X)
    layer.forward(X, training=False)
    np.testing.assert_array_equal(layer.running_mean, running[0])  # inference updates nothing
    np.testing.assert_array_equal(layer.running_var, running[1])
    # Spatial: per channel, broadcast over the positions.
    image = rng.standard_normal((2, 3, 2, 2))
    shape = (1, 3, 1, 1)
    expected_image = (image - layer.running_mean.reshape(shape)) / np.sqrt(
        layer.running_var.reshape(shape) + 1e-4
    ) * layer.gamma.reshape(shape) + layer.beta.reshape(shape)
    np.testing.assert_allclose(layer.forward(image), expected_image, rtol=1e-13)


def test_predict_keeps_the_forward_cache(rng: np.random.Generator) -> None:
    layer = BatchNorm(3)
    _randomise(layer, rng)
    X, G = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    layer.forward(X, training=True)
    dX = layer.backward(G)
    grads = [g.copy() for g in layer.gradients()]
    layer.predict(rng.standard_normal((2, 3)))
    np.testing.assert_array_equal(layer.backward(G), dX)
    for before, after in zip(grads, layer.gradients(), strict=True):
        np.testing.assert_array_equal(before, after)


def test_backward_overwrites_and_can_skip_the_input_gradient(rng: np.random.Generator) -> None:
    for layer, X in ((BatchNorm(3), rng.standard_normal((5, 3))),
                     (LayerNorm(3), rng.standard_normal((5, 3)))):
        _randomise(layer, rng)
        G = rng.standard_normal(X.shape)
        layer.forward(X, training=True)
        dX = layer.backward(G)
        first = [g.copy() for g in layer.gradients()]
        assert layer.backward(G, need_input_gradient=False) is None
        for a, b in zip(first, layer.gradients(), strict=True):
            np.testing.assert_array_equal(a, b)  # overwritten, not accumulated
        np.testing.assert_array_equal(layer.backward(G), dX)


def test_backward_before_forward_raises() -> None:
    with pytest.raises(RuntimeError, match="before forward"):
        BatchNorm(2).backward(np.zeros((3, 2)))
    with pytest.raises(RuntimeError, match="before forward"):
        LayerNorm(2).backward(np.zeros((3, 2)))


# --- LayerNorm -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("normalized_shape", "shape"),
    [
        (5, (4, 5)),
        ((3,), (1, 3)),
        ([2, 3, 3], (3, 2, 3, 3)),
        ([3], (2, 2, 5, 3)),  # the last axis alone: per row, channel and height
        ((5, 3), (2, 2, 5, 3)),
        ((1, 1, 3), (2, 1, 1, 3)),
    ],
)
def test_layernorm_gradients(normalized_shape: Any, shape: tuple[int, ...],
                             rng: np.random.Generator) -> None:
    layer = LayerNorm(normalized_shape)
    _randomise(layer, rng)
    _check_gradients(layer, rng.normal(0.5, 2.0, size=shape), rng, training=True)


def test_layernorm_without_affine(rng: np.random.Generator) -> None:
    layer = LayerNorm((2, 3), elementwise_affine=False)
    assert layer.parameters() == [] and layer.penalized == ()
    _check_gradients(layer, rng.standard_normal((3, 2, 3)), rng, training=True)


def test_layernorm_normalises_each_sample_alike_in_both_modes(rng: np.random.Generator) -> None:
    layer = LayerNorm([2, 3, 3], eps=1e-12)
    X = rng.normal(-4.0, 3.0, size=(5, 2, 3, 3))
    out = layer.forward(X, training=True)
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(1, 2, 3)), 1.0, rtol=1e-9)
    np.testing.assert_array_equal(layer.predict(X), out)
    np.testing.assert_array_equal(layer.forward(X[2:3]), out[2:3])  # independent of other rows
    _randomise(layer, rng)
    np.testing.assert_allclose(layer.forward(X), out * layer.gamma + layer.beta, rtol=1e-12)


def test_layernorm_backward_formula(rng: np.random.Generator) -> None:
    layer = LayerNorm(4, eps=1e-3)
    _randomise(layer, rng)
    X, G = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    layer.forward(X)
    dX = layer.backward(G)
    assert dX is not None
    for x, g, d in zip(X, G, dX, strict=True):
        D = x.size
        s = 1 / np.sqrt(((x - x.mean()) ** 2).mean() + 1e-3)
        xhat = (x - x.mean()) * s
        dxhat = layer.gamma * g
        expected = s / D * (D * dxhat - dxhat.sum() - xhat * (dxhat * xhat).sum())
        np.testing.assert_allclose(d, expected, rtol=1e-12)


# --- dtypes and stability --------------------------------------------------------------------


@pytest.mark.parametrize("make", [lambda d: BatchNorm(3, dtype=d), lambda d: LayerNorm(3, dtype=d)])
def test_float32_keeps_float32_and_matches_float64(
    make: Callable[[Any], Layer], rng: np.random.Generator
) -> None:
    # An offset large next to the spread; the values as float32 holds them, for both.
    X = rng.normal(1000.0, 1.0, size=(64, 3)).astype(np.float32).astype(np.float64)
    G = rng.standard_normal(X.shape)
    results = []
    for dtype in (np.float32, np.float64):
        layer = make(dtype)
        assert all(p.dtype == dtype for p in layer.parameters())
        assert all(b.dtype == dtype for b in layer.buffers().values())
        out = layer.forward(X.astype(dtype), training=True)
        dX = layer.backward(G.astype(dtype))
        assert dX is not None and out.dtype == dtype and dX.dtype == dtype
        assert all(g.dtype == dtype for g in layer.gradients())
        assert all(b.dtype == dtype for b in layer.buffers().values())
        results.append((out, dX))
    # Mean of squared deviations: float32 keeps the normalised values and gradients to
    # 1e-3 of their size here. E[x^2] - E[x]^2 would not: float32 numbers near 1e6 are
    # 0.0625 apart, and on these rows it misses the variances (about 1) by 10 to 25%.
    for low, high in zip(results[0], results[1], strict=True):
        assert np.abs(low - high).max() < 1e-3 * np.abs(high).max()


def test_a_float32_network_with_normalisation_saves_and_loads(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    network = build_network(
        [Dense(None, 4), BatchNorm(), LayerNorm(), Dense(None, 2)], (3,), rng, np.float32
    )
    assert network.dtype == np.float32
    X = rng.standard_normal((10, 3)).astype(np.float32)
    network.forward(X, training=True)
    path = tmp_path / "net.npz"
    handnet.save(network, path)
    loaded = handnet.load(path)
    assert loaded.dtype == np.float32 and loaded.layers[1].running_var.dtype == np.float32
    np.testing.assert_array_equal(loaded.predict(X), network.predict(X))


# --- networks: gradients, saving, configs ----------------------------------------------------


def _image_network(rng: np.random.Generator) -> Sequential:
    """Rows of 18 values seen as (2, 3, 3) images: batch- and layer-normalised, then dense."""
    layers: list[Layer] = [
        Reshape((2, 3, 3)), BatchNorm(), LayerNorm(), BatchNorm(momentum=0.5, eps=1e-3),
        Flatten(), Dense(None, 5), BatchNorm(affine=False), Activation("tanh"), Dense(None, 3),
    ]
    network = build_network(layers, (18,), rng)
    network.flat_parameters[...] = rng.normal(0.5, 0.5, size=network.n_parameters)
    return network


def test_networks_with_normalisation_pass_gradient_checks(rng: np.random.Generator) -> None:
    network = _image_network(rng)
    X = rng.standard_normal((5, 18))
    Y = np.eye(3)[rng.integers(0, 3, 5)]
    checks = check_network_parameters(network, "softmax_cross_entropy", X, Y, l2=0.1)
    # A shift that is constant per feature before a (training-mode) batch norm is removed
    # by it: the gradients of layer 3's beta (constant per channel, hence per Dense input
    # feature after Flatten) and of the Dense bias below BatchNorm(affine=False) are 0,
    # and their finite differences only round-off.
    shifted = {"3.BatchNorm.beta", "5.Dense.bias"}
    for key, check in checks.items():
        if key in shifted:
            assert check.verdict() != "FAILED", (key, check)
        else:
            assert check.relative_error < TOL, (key, check)
    assert {"1.BatchNorm.gamma", "2.LayerNorm.beta", "5.Dense.weights"} <= set(checks)
    network.backward(
        SoftmaxCrossEntropy()(network.forward(X, training=True), Y, None)[1]
    )
    scale = np.abs(network.flat_gradients).max()
    for layer in (network.layers[3], network.layers[5]):
        assert np.abs(layer.gradients()[1]).max() < 1e-12 * scale


def test_gamma_and_beta_are_not_penalised(rng: np.random.Generator) -> None:
    """The L2 penalty applies to network.weights: the Dense weights alone."""
    network = _image_network(rng)
    for layer in network.layers:
        for parameter in layer.parameters():
            penalized = np.shares_memory(parameter, network.weights)
            assert penalized == (isinstance(layer, Dense) and parameter is layer.weights)
    assert network.layers[1].penalized == (False, False)


def test_buffers_round_trip_through_a_model_file(tmp_path: Path, rng: np.random.Generator) -> None:
    network = _image_network(rng)
    for _ in range(3):
        network.forward(rng.normal(1.0, 2.0, size=(7, 18)), training=True)
    path = tmp_path / "images.npz"
    handnet.save(network, path)
    loaded = handnet.load(path)
    assert isinstance(loaded, Sequential)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in network.layers]
    assert loaded.config() == network.config()
    for saved, restored in zip(network.buffers(), loaded.buffers(), strict=True):
        assert saved.keys() == restored.keys()
        for name in saved:
            np.testing.assert_array_equal(saved[name], restored[name])
    X = rng.standard_normal((6, 18))
    np.testing.assert_array_equal(loaded.predict(X), network.predict(X))
    assert not np.array_equal(loaded.buffers()[1]["running_mean"], 0.0)


def test_a_model_file_with_bad_running_statistics_is_refused(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    network = build_network([BatchNorm(), Dense(None, 2)], (3,), rng)
    network.buffers()[0]["running_var"][...] = np.nan  # a diverged run, say
    path = tmp_path / "net.npz"
    with pytest.raises(ValueError, match="NaN or infinite"):
        handnet.save(network, path)  # save writes no file that load refuses
    assert not path.exists()
    # Written anyway (as another program could), load refuses it.
    from handnet.io.atomic import _write_atomic
    from handnet.io.describe import _describe

    arrays: dict[str, np.ndarray] = {}
    _write_atomic(path, _describe(network, arrays, True), arrays)
    with pytest.raises(handnet.ModelFileError, match="NaN or infinite"):
        handnet.load(path)


def test_pickling_keeps_running_statistics(rng: np.random.Generator) -> None:
    network = _image_network(rng)
    X = rng.standard_normal((7, 18))
    network.forward(X, training=True)
    copy = pickle.loads(pickle.dumps(network))
    for saved, restored in zip(network.buffers(), copy.buffers(), strict=True):
        for name in saved:
            np.testing.assert_array_equal(saved[name], restored[name])
    np.testing.assert_array_equal(copy.predict(X), network.predict(X))
    assert copy.layers[1]._xhat is None  # no training rows pickled
    # The copy's layers use its own flat vector (an optimizer's updates reach them).
    copy.flat_parameters[...] = 0
    assert np.all(copy.layers[1].parameters()[0] == 0)
    assert not np.all(network.layers[1].parameters()[0] == 0)


def test_config_round_trip_and_chain_agree_with_the_layers(rng: np.random.Generator) -> None:
    network = _image_network(rng)
    configs = network.config()
    assert configs[1] == {"type": "BatchNorm", "n_features": 2, "momentum": 0.1, "eps": 1e-5,
                          "affine": True}
    assert configs[2] == {"type": "LayerNorm", "normalized_shape": [2, 3, 3], "eps": 1e-5,
                          "elementwise_affine": True}
    rebuilt = Sequential([LAYERS[str(c["type"])].from_config(c) for c in configs])
    assert rebuilt.config() == configs and rebuilt.n_parameters == network.n_parameters
    assert check_layer_configs(configs, (18,)) == ((3,), network.n_parameters)
    shape: tuple[int, ...] = (18,)
    for layer, config in zip(network.layers, configs, strict=True):
        chained, n_parameters = type(layer).chain(config, shape)
        shape = layer.output_shape(shape)
        assert chained == shape
        assert n_parameters == sum(p.size for p in layer.parameters())
    # From an unknown input shape (a bare network's first layer): only the count.
    assert BatchNorm.chain(configs[1], None) == (None, 4)
    assert LayerNorm.chain(configs[2], None) == (None, 36)


def test_build_reads_sizes_from_the_input(rng: np.random.Generator) -> None:
    network = build_network([BatchNorm(), LayerNorm(), Flatten(), Dense(None, 2)], (2, 4, 4), rng)
    batch, layer = network.layers[0], network.layers[1]
    assert isinstance(batch, BatchNorm) and isinstance(layer, LayerNorm)
    assert batch.n_features == 2 and batch.gamma.shape == (2,)
    assert layer.normalized_shape == (2, 4, 4) and layer.gamma.shape == (2, 4, 4)
    np.testing.assert_array_equal(batch.gamma, 1.0)
    np.testing.assert_array_equal(layer.beta, 0.0)
    assert not BatchNorm().is_built() and not LayerNorm().is_built()


def test_errors_for_bad_arguments_and_inputs(rng: np.random.Generator) -> None:
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="n_features"):
            BatchNorm(bad)  # type: ignore[arg-type]
    for bad in (0, -0.1, 1.5, float("nan"), True):
        with pytest.raises(ValueError, match="momentum"):
            BatchNorm(3, momentum=bad)
    for bad_eps in (0, -1e-5, float("inf"), None):
        with pytest.raises(ValueError, match="eps"):
            BatchNorm(3, eps=bad_eps)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="eps"):
            LayerNorm(3, eps=bad_eps)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="affine"):
        BatchNorm(3, affine=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="elementwise_affine"):
        LayerNorm(3, elementwise_affine="yes")  # type: ignore[arg-type]
    for bad_dtype in (np.int64, np.float16):
        with pytest.raises(ValueError, match="float32 or float64"):
            BatchNorm(3, dtype=bad_dtype)
        with pytest.raises(ValueError, match="float32 or float64"):
            LayerNorm(3, dtype=bad_dtype)
    for bad_shape in (0, [], [1, 2, 3, 4], [2, 0], "3", [2.0]):
        with pytest.raises(ValueError, match="normalized_shape"):
            LayerNorm(bad_shape)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"expects input of shape \(n, 3\)"):
        BatchNorm(3).forward(np.zeros((4, 2)), training=True)
    with pytest.raises(ValueError, match="expects input of shape"):
        BatchNorm(3).forward(np.zeros(3))
    with pytest.raises(ValueError, match="expects input of shape"):
        LayerNorm([2, 3]).forward(np.zeros((4, 3, 2)))
    with pytest.raises(ValueError, match="expects input of shape"):
        LayerNorm([2, 3]).forward(np.zeros((2, 3)))  # no batch axis left
    with pytest.raises(RuntimeError, match="must be built"):
        BatchNorm().forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="cannot follow"):
        build_network([Dense(None, 4), BatchNorm(3)], (2,), rng)
    with pytest.raises(ValueError, match=r"layers\[0\] .* cannot take inputs of per-sample shape"):
        build_network([LayerNorm([4, 4])], (2, 3, 4), rng)
    # Saved configs are checked by kind before anything is built.
    good = BatchNorm(3).config()
    for field, value, problem in (("momentum", 0, r"\(0, 1\]"), ("eps", -1.0, "> 0"),
                                  ("affine", 1, "true or false"), ("n_features", 0, "integer")):
        with pytest.raises(ValueError, match=problem):
            check_layer_configs([{**good, field: value}])
    with pytest.raises(ValueError, match="BatchNorm expects 3 features"):
        check_layer_configs([good], (4,))
    layer_config = LayerNorm([2, 3]).config()
    with pytest.raises(ValueError, match="LayerNorm normalises trailing axes"):
        check_layer_configs([layer_config], (3, 2))
    with pytest.raises(ValueError, match="shape"):
        check_layer_configs([{**layer_config, "normalized_shape": [1, 1, 1, 1]}])


def test_reprs() -> None:
    assert repr(BatchNorm(3)) == "BatchNorm(3)"
    assert repr(BatchNorm(affine=False)) == "BatchNorm(None, affine=False)"
    assert repr(LayerNorm((2, 3))) == "LayerNorm([2, 3])"
    assert repr(LayerNorm(elementwise_affine=False)) == "LayerNorm(None, elementwise_affine=False)"


# --- training --------------------------------------------------------------------------------


def _moons() -> tuple[Array, Array]:
    X, y = make_moons(200, noise=0.2, random_state=0)
    return X * 5.0 + 10.0, np.eye(2)[y]  # badly scaled, off-centre inputs


@pytest.mark.parametrize(
    ("norm", "ratio", "accuracy"), [(BatchNorm, 0.5, 0.9), (LayerNorm, 0.7, 0.8)]
)
def test_a_network_with_normalisation_trains(norm: type[Layer], ratio: float,
                                             accuracy: float) -> None:
    X, Y = _moons()
    rng = np.random.default_rng(0)
    network = build_network(
        [Dense(None, 16), norm(), Activation("relu"), Dense(None, 2)], (2,), rng
    )
    network.set_random_state(rng)
    trainer = Trainer(network, SoftmaxCrossEntropy(), Adam(0.02), rng, batch_size=32, tol=None)
    history = trainer.fit(X, Y, max_iter=30)
    assert history.loss[-1] < ratio * history.loss[0]
    assert np.mean(network.predict(X).argmax(axis=1) == Y.argmax(axis=1)) > accuracy
    if norm is BatchNorm:
        batch = network.layers[1]
        assert isinstance(batch, BatchNorm)
        assert not np.allclose(batch.running_mean, 0.0) and not np.allclose(batch.running_var, 1)


def test_running_statistics_keep_networks_off_the_block_wise_path() -> None:
    """BatchNorm's batch statistics need all the rows at once; LayerNorm's do not."""
    rng = np.random.default_rng(1)
    with_batch = build_network([BatchNorm(), Dense(None, 2)], (3,), rng)
    assert not blocks.supports(with_batch, training=True)
    network = build_network([Dense(None, 4), LayerNorm(), Dense(None, 2)], (3,), rng)
    network.flat_parameters[...] = rng.standard_normal(network.n_parameters)
    assert blocks.supports(network, training=True)
    X = rng.standard_normal((300, 3))
    Y = np.eye(2)[rng.integers(0, 2, 300)]
    loss = SoftmaxCrossEntropy()
    value, dlogits = loss(network.forward(X, training=True), Y, None)
    network.backward(dlogits)
    one_shot = network.flat_gradients.copy()
    engine = blocks.FullBatchGradient(network, n_threads=2, block_bytes=64 * 3 * 8)
    try:
        assert engine(X, Y, None, loss, training=True) == pytest.approx(value, rel=1e-12)
    finally:
        engine.close()
    np.testing.assert_allclose(network.flat_gradients, one_shot, rtol=1e-10, atol=1e-14)


# --- dropout on image-shaped input -----------------------------------------------------------


def test_dropout_works_elementwise_on_images(rng: np.random.Generator) -> None:
    layer = Dropout(0.4, random_state=3)
    X = rng.uniform(1.0, 2.0, size=(500, 2, 4, 5))  # never 0: out == 0 marks a dropped value
    out = layer.forward(X, training=True)
    assert out.shape == X.shape
    dropped = out == 0
    assert dropped.mean() == pytest.approx(0.4, abs=0.02)
    np.testing.assert_allclose(out[~dropped], X[~dropped] / 0.6, rtol=1e-15)
    # Expected value kept: the mean over 500 draws of each position is its input's mean.
    kept_mean = (out.mean(axis=0) / X.mean(axis=0)).mean()
    assert kept_mean == pytest.approx(1.0, abs=0.02)
    G = rng.standard_normal(X.shape)
    dX = layer.backward(G)
    assert dX is not None
    np.testing.assert_array_equal(dX[dropped], 0.0)
    np.testing.assert_allclose(dX[~dropped], G[~dropped] / 0.6, rtol=1e-15)
    np.testing.assert_array_equal(layer.backward(G), dX)  # the same mask again
    np.testing.assert_array_equal(layer.forward(X), X)  # inference: the identity


# --- the chapter -----------------------------------------------------------------------------


def test_the_chapter_runs_and_prints_what_it_shows() -> None:
    text = DOC.read_text(encoding="utf-8")
    blocks_ = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks_
    namespace: dict[str, object] = {}
    for number, block in enumerate(blocks_):
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            exec(compile(block, f"normalization.md block {number}", "exec"), namespace)
        expected = [line[2:] for line in block.splitlines() if line.startswith("# ")]
        assert output.getvalue().splitlines() == expected, f"block {number}"


def test_the_chapter_names_only_what_exists() -> None:
    text = DOC.read_text(encoding="utf-8")
    names = {
        name
        for quoted in re.findall(r"`([^`\n]+)`", text)
        for name in re.findall(r"\bhandnet(?:\.[A-Za-z_][A-Za-z0-9_]*)+", quoted)
    }
    assert "handnet.nn.normalization.BatchNorm.backward" in names
    assert "handnet.nn.normalization.LayerNorm.backward" in names
    for dotted in names:
        assert _resolves(dotted), dotted


def _resolves(dotted: str) -> bool:
    """Whether ``handnet.module.attribute...`` names something that exists."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            target: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


def test_a_forged_batchnorm_size_is_refused_before_anything_is_allocated(tmp_path: Path) -> None:
    """A bare network's BatchNorm(affine=False) has no parameters to count: its buffers'
    shapes, declared from the config, are compared with the file's arrays first."""
    import importlib.util
    import sys

    network = Sequential([BatchNorm(3, affine=False), Dense(3, 2, random_state=0)])
    path = tmp_path / "net.hnm"
    handnet.save(network, path)
    spec = importlib.util.spec_from_file_location(
        "bad_array_table", Path(__file__).resolve().parents[1] / "scripts" / "bad_array_table.py"
    )
    assert spec is not None and spec.loader is not None
    table = sys.modules.get("bad_array_table") or importlib.util.module_from_spec(spec)
    if "bad_array_table" not in sys.modules:
        sys.modules["bad_array_table"] = table
        spec.loader.exec_module(table)
    tree = table.read_tree(path)
    tree["network"]["layers"][0]["n_features"] = 2**31
    table.forge(tree, path)
    with pytest.raises(handnet.ModelFileError, match="keeps the buffers"):
        handnet.load(path)


@pytest.mark.parametrize("kind", ["regressor", "classifier"])
def test_early_stopping_restores_the_best_epochs_running_statistics(kind: str) -> None:
    """The model kept is the one that was scored: the best validation epoch's parameters
    *and* its BatchNorm running statistics (it kept the last epoch's statistics, and
    scored below its best_validation_score_)."""
    rng = np.random.default_rng(0)
    X, X_val = rng.normal(size=(300, 5)), rng.normal(size=(200, 5))
    y, y_val = X[:, 0] * X[:, 1], X_val[:, 0] * X_val[:, 1]
    if kind == "classifier":
        y, y_val = (y > 0).astype(int), (y_val > 0).astype(int)
    estimator = handnet.NeuralNetRegressor if kind == "regressor" else handnet.NeuralNetClassifier
    model = estimator(
        [Dense(None, 32), BatchNorm(), Activation("relu"), Dense(None, None)],
        learning_rate=0.05, batch_size=32, max_iter=40, n_iter_no_change=5, random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", handnet.ConvergenceWarning)
        model.fit(X, y, validation_data=(X_val, y_val))
    assert model.best_epoch_ < model.n_iter_  # the best epoch is not the last
    assert model.score(X_val, y_val) == pytest.approx(model.best_validation_score_, abs=1e-12)
