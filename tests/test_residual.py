"""Residual blocks: out = x + f(x), its gradients, its place in a flat-vector network, its
buffers, saving, configs and training."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

import handnet
from handnet.data import blocks
from handnet.datasets import make_moons
from handnet.gradcheck import check_network, gradcheck
from handnet.nn.layers import (
    LAYERS,
    Activation,
    Dense,
    Dropout,
    Flatten,
    Layer,
    check_layer_configs,
)
from handnet.nn.losses import SoftmaxCrossEntropy
from handnet.nn.network import Sequential, build_network
from handnet.nn.normalization import BatchNorm, LayerNorm
from handnet.nn.residual import Residual
from handnet.optim.optimizers import Adam
from handnet.training import Trainer

Array = NDArray[np.floating]
TOL = 1e-6


def _dense_block(rng: np.random.Generator, width: int = 4) -> Residual:
    dense = Dense(width, width, random_state=rng)
    dense.bias[...] = rng.standard_normal(width)
    return Residual([dense, Activation("tanh")])


def _randomise(network: Sequential, rng: np.random.Generator) -> None:
    network.flat_parameters[...] = rng.normal(0.3, 0.7, size=network.n_parameters)


# --- forward and backward ------------------------------------------------------------------


def test_forward_adds_the_input_and_backward_adds_dout(rng: np.random.Generator) -> None:
    block = _dense_block(rng)
    dense = block.layers[0]
    assert isinstance(dense, Dense)
    X, G = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    out = block.forward(X, training=True)
    np.testing.assert_allclose(out, X + np.tanh(X @ dense.weights + dense.bias), rtol=1e-14)
    dX = block.backward(G)
    assert dX is not None
    h = np.tanh(X @ dense.weights + dense.bias)
    np.testing.assert_allclose(dX, G + (G * (1 - h**2)) @ dense.weights.T, rtol=1e-13)
    np.testing.assert_allclose(dense.grad_weights, X.T @ (G * (1 - h**2)), rtol=1e-13)
    assert block.backward(G, need_input_gradient=False) is None
    np.testing.assert_allclose(dense.grad_weights, X.T @ (G * (1 - h**2)), rtol=1e-13)


@pytest.mark.parametrize("n_rows", [1, 3, 7])
def test_input_gradient_against_finite_differences(n_rows: int, rng: np.random.Generator) -> None:
    block = _dense_block(rng, width=5)
    G = rng.standard_normal((n_rows, 5))

    def fun(x: Array) -> tuple[float, Array]:
        value = float(np.sum(G * block.forward(x, training=True)))
        dX = block.backward(G)
        assert dX is not None
        return value, dX

    assert gradcheck(fun, rng.standard_normal((n_rows, 5))).passed(TOL)


@pytest.mark.parametrize("n_rows", [1, 5])
def test_a_network_of_residual_blocks_passes_gradient_checks(
    n_rows: int, rng: np.random.Generator
) -> None:
    network = Sequential([
        Dense(3, 5, random_state=0),
        Residual([Dense(5, 5, random_state=1), Activation("tanh")]),
        Residual([Dense(5, 3, random_state=2), Activation("sigmoid"), Dense(3, 5, random_state=3)]),
        Residual([Residual([Dense(5, 5, random_state=4)]), Activation("tanh")]),  # nested
        Dense(5, 2, random_state=5),
    ])
    _randomise(network, rng)
    X = rng.standard_normal((n_rows, 3))
    Y = np.eye(2)[rng.integers(0, 2, n_rows)]
    errors = check_network(network, "softmax_cross_entropy", X, Y, l2=0.05)
    assert len(errors) == 2 + 2 + 4 + 2 + 2
    assert max(errors.values()) < TOL, errors


def test_a_block_with_batch_norm_passes_gradient_checks(rng: np.random.Generator) -> None:
    """Dense and spatial: BatchNorm inside the branch, trained statistics and all."""
    dense = Sequential([
        Dense(3, 4, random_state=0),
        Residual([BatchNorm(4), Activation("tanh"), Dense(4, 4, random_state=1)]),
        Residual([Dense(4, 4, random_state=2), Activation("tanh"), BatchNorm(4, eps=1e-3)]),
        Dense(4, 3, random_state=3),
    ])
    images = build_network(
        [Residual([BatchNorm(), Activation("tanh"), LayerNorm()]), Flatten(), Dense(None, 3)],
        (2, 3, 3), rng,
    )
    for network, X in ((dense, rng.standard_normal((6, 3))),
                       (images, rng.standard_normal((3, 2, 3, 3)))):
        _randomise(network, rng)
        Y = np.eye(3)[rng.integers(0, 3, X.shape[0])]
        errors = check_network(network, "softmax_cross_entropy", X, Y, l2=0.05)
        assert max(errors.values()) < TOL, errors


def test_backward_before_forward_raises() -> None:
    with pytest.raises(RuntimeError, match="before forward"):
        Residual([Dense(2, 2)]).backward(np.zeros((1, 2)))


def test_predict_leaves_the_sub_layers_caches(rng: np.random.Generator) -> None:
    block = Residual([Dense(3, 3, random_state=0), Activation("tanh"), Dropout(0.5, 1)])
    X, G = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    block.forward(X, training=True)
    dX = block.backward(G)
    grads = [g.copy() for g in block.gradients()]
    prediction = block.predict(rng.standard_normal((2, 3)))
    assert prediction.shape == (2, 3)
    np.testing.assert_array_equal(block.backward(G), dX)
    for before, after in zip(grads, block.gradients(), strict=True):
        np.testing.assert_array_equal(before, after)


# --- in a network: the flat vector, buffers, random state, reused buffers ------------------


def test_parameters_are_views_of_the_flat_vector_in_order(rng: np.random.Generator) -> None:
    block = Residual([BatchNorm(4), Dense(4, 4, random_state=0), Dense(4, 4, random_state=1)])
    assert block.penalized == (False, False, True, False, True, False)
    network = Sequential([Dense(2, 4, random_state=2), block])
    params = block.parameters()
    assert len(params) == len(block.gradients()) == len(block.penalized) == 6
    for parameter, gradient in zip(params, block.gradients(), strict=True):
        assert np.shares_memory(parameter, network.flat_parameters)
        assert np.shares_memory(gradient, network.flat_gradients)
    # Weights first: the penalised part of the vector is the three Dense weights.
    assert network.n_penalized == 2 * 4 + 4 * 4 + 4 * 4
    for parameter, penalized in zip(params, block.penalized, strict=True):
        assert np.shares_memory(parameter, network.weights) == penalized
    with pytest.raises(AttributeError, match="sub-layers"):
        block.penalized = ()
    with pytest.raises(ValueError, match="6 parameter arrays"):
        block.bind(params[:2], block.gradients()[:2])


def test_buffers_are_prefixed_and_routed_back(rng: np.random.Generator) -> None:
    inner = Residual([Dense(3, 3, random_state=0), BatchNorm(3)])
    block = Residual([BatchNorm(3), Activation("relu"), inner])
    assert sorted(block.buffers()) == [
        "0.running_mean", "0.running_var", "2.1.running_mean", "2.1.running_var"
    ]
    values = {name: rng.uniform(0.5, 2.0, 3) for name in block.buffers()}
    block.load_buffers(values)
    first, nested = block.layers[0], inner.layers[1]
    assert isinstance(first, BatchNorm) and isinstance(nested, BatchNorm)
    np.testing.assert_array_equal(first.running_var, values["0.running_var"])
    np.testing.assert_array_equal(nested.running_mean, values["2.1.running_mean"])
    with pytest.raises(ValueError, match="keeps the buffers"):
        block.load_buffers({"0.running_mean": values["0.running_mean"]})
    with pytest.raises(ValueError, match=r"sub-layer 2: .*sub-layer 1: BatchNorm buffer"):
        block.load_buffers({**values, "2.1.running_var": np.ones(4)})
    assert Residual([Dense(2, 2)]).buffers() == {}


def test_random_state_and_reused_buffers_reach_the_sub_layers(rng: np.random.Generator) -> None:
    dropout = Dropout(0.5)
    block = Residual([Dense(3, 3, random_state=0), dropout])
    assert block.draws_random_numbers(True) and not block.draws_random_numbers(False)
    assert not Residual([Dense(3, 3)]).draws_random_numbers(True)
    generator = np.random.default_rng(9)
    network = Sequential([block])
    network.set_random_state(generator)
    assert dropout.rng is generator
    with network.reusing_buffers():
        assert block.reuse_buffers and all(layer.reuse_buffers for layer in block.layers)
        X = rng.standard_normal((4, 3))
        reused = network.forward(X, training=True).copy()
    assert not block.reuse_buffers and not any(layer.reuse_buffers for layer in block.layers)
    dropout.rng = np.random.default_rng(9)
    np.testing.assert_array_equal(reused, network.forward(X, training=True))


def test_a_sequential_with_blocks_computes_as_block_wise_evaluation() -> None:
    """Blocks are rebuilt from their configs for the threads: same numbers, any row split."""
    rng = np.random.default_rng(2)
    network = Sequential([Dense(3, 4, random_state=0), _dense_block(rng), Dense(4, 2)])
    _randomise(network, rng)
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
    with_buffers = Sequential([Residual([BatchNorm(3)]), Dense(3, 2)])
    assert not blocks.supports(with_buffers, training=True)


# --- shapes, building, configs ---------------------------------------------------------------


def test_build_reads_sizes_and_checks_the_shape(rng: np.random.Generator) -> None:
    network = build_network(
        [Dense(None, 6), Residual([BatchNorm(), Dense(None, 6), Activation("relu")]),
         Dense(None, 2)],
        (3,), rng,
    )
    block = network.layers[1]
    assert isinstance(block, Residual) and block.is_built()
    assert block.output_shape((6,)) == (6,)
    assert network.forward(rng.standard_normal((4, 3))).shape == (4, 2)
    assert not Residual([Dense(None, 3)]).is_built()
    with pytest.raises(ValueError, match=r"must give back their input's per-sample shape \(6,\)"):
        build_network([Dense(None, 6), Residual([Dense(None, 5)])], (3,), rng)
    with pytest.raises(ValueError, match="sub-layer 0"):
        build_network([Residual([Dense(4, 4)])], (3,), rng)
    with pytest.raises(ValueError, match="give back their input's"):
        Residual([Dense(4, 3)]).forward(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="give back their input's"):
        Residual([Dense(4, 3)]).predict(np.zeros((2, 4)))


def test_config_round_trip_and_chain(rng: np.random.Generator) -> None:
    network = Sequential([
        Dense(3, 4, random_state=0),
        Residual([BatchNorm(4, momentum=0.2), Dense(4, 4, random_state=1),
                  Residual([Activation("tanh")])]),
        Dense(4, 2, random_state=2),
    ])
    config = network.layers[1].config()
    assert config == {"type": "Residual", "layers": [
        {"type": "BatchNorm", "n_features": 4, "momentum": 0.2, "eps": 1e-5, "affine": True},
        {"type": "Dense", "n_inputs": 4, "n_outputs": 4},
        {"type": "Residual", "layers": [{"type": "Activation", "name": "tanh"}]},
    ]}
    rebuilt = LAYERS["Residual"].from_config(config)
    assert isinstance(rebuilt, Residual) and rebuilt.config() == config
    assert Residual.chain(config, (4,)) == ((4,), 2 * 4 + 4 * 4 + 4)
    assert Residual.chain(config, None) == ((4,), 28)  # the Dense inside tells the shape
    assert Residual.chain({"type": "Residual", "layers": [{"type": "Activation",
                                                             "name": "relu"}]}, None) == (None, 0)
    assert check_layer_configs(network.config(), (3,)) == ((2,), network.n_parameters)
    with pytest.raises(ValueError, match=r"sub-layer 0 \(BatchNorm\): BatchNorm expects 4"):
        Residual.chain(config, (5,))
    bad = {"type": "Residual", "layers": [{"type": "Dense", "n_inputs": 4, "n_outputs": 3}]}
    with pytest.raises(ValueError, match="give back their input's"):
        check_layer_configs([bad], (4,))
    with pytest.raises(ValueError, match="holds a bad layer"):
        check_layer_configs([{"type": "Residual", "layers": []}])
    with pytest.raises(ValueError, match="holds a bad layer"):
        check_layer_configs([{"type": "Residual", "layers": [{"type": "Nope"}]}])


def test_save_and_load_keep_predictions_and_buffers(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    network = Sequential([
        Dense(3, 4, random_state=0),
        Residual([BatchNorm(4), Dense(4, 4, random_state=1), Activation("tanh")]),
        Residual([Residual([BatchNorm(4, momentum=0.3)]), Dense(4, 4, random_state=2)]),
        Dense(4, 2, random_state=3),
    ])
    _randomise(network, rng)
    for _ in range(3):
        network.forward(rng.normal(1.0, 2.0, size=(8, 3)), training=True)
    path = tmp_path / "residual.npz"
    handnet.save(network, path)
    loaded = handnet.load(path)
    assert isinstance(loaded, Sequential) and loaded.config() == network.config()
    np.testing.assert_array_equal(loaded.flat_parameters, network.flat_parameters)
    for saved, restored in zip(network.buffers(), loaded.buffers(), strict=True):
        assert saved.keys() == restored.keys()
        for name in saved:
            np.testing.assert_array_equal(saved[name], restored[name])
    assert "0.0.running_mean" in loaded.buffers()[2]
    X = rng.standard_normal((5, 3))
    np.testing.assert_array_equal(loaded.predict(X), network.predict(X))


def test_pickling_keeps_the_binding_and_the_statistics(rng: np.random.Generator) -> None:
    network = Sequential([Residual([BatchNorm(3), Dense(3, 3, random_state=0)]), Dense(3, 1)])
    network.forward(rng.normal(2.0, 1.0, size=(6, 3)), training=True)
    copy = pickle.loads(pickle.dumps(network))
    X = rng.standard_normal((4, 3))
    np.testing.assert_array_equal(copy.predict(X), network.predict(X))
    np.testing.assert_array_equal(copy.buffers()[0]["0.running_mean"],
                                  network.buffers()[0]["0.running_mean"])
    for parameter in copy.parameters():
        assert np.shares_memory(parameter, copy.flat_parameters)


def test_errors_for_bad_arguments() -> None:
    with pytest.raises(TypeError, match="sequence of layers"):
        Residual(Dense(2, 2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="1 to 100 layers"):
        Residual([])
    with pytest.raises(TypeError, match="Layer objects"):
        Residual([Dense(2, 2), "tanh"])  # type: ignore[list-item]
    dense = Dense(2, 2)
    with pytest.raises(ValueError, match="distinct"):
        Residual([dense, dense])
    assert repr(Residual([Dense(2, 2), Activation("tanh")])) == (
        "Residual([Dense(2, 2), Activation('tanh')])"
    )


# --- training --------------------------------------------------------------------------------


def test_a_network_with_residual_blocks_trains() -> None:
    X, y = make_moons(200, noise=0.2, random_state=0)
    Y = np.eye(2)[y]
    rng = np.random.default_rng(0)
    layers: list[Layer] = [
        Dense(None, 8),
        Residual([BatchNorm(), Dense(None, 8), Activation("relu")]),
        Residual([Dense(None, 8), Activation("tanh"), Dropout(0.1)]),
        Dense(None, 2),
    ]
    network = build_network(layers, (2,), rng)
    network.set_random_state(rng)
    trainer = Trainer(network, SoftmaxCrossEntropy(), Adam(0.02), rng, batch_size=32, tol=None)
    history = trainer.fit(X, Y, max_iter=30)
    assert history.loss[-1] < 0.5 * history.loss[0]
    assert np.mean(network.predict(X).argmax(axis=1) == y) > 0.9


def test_an_estimator_over_these_layers_saves_loads_and_resumes(tmp_path: Path) -> None:
    """The layers as an estimator's hyperparameter: specs saved in the file, running
    statistics restored, and a checkpointed run resumed to the same parameters and stats."""
    X, y = make_moons(120, noise=0.2, random_state=0)
    layers: list[Layer] = [
        Dense(None, 8), BatchNorm(), Activation("relu"),
        Residual([Dense(None, 8), LayerNorm(), Activation("tanh")]), Dense(None, None),
    ]

    def make(max_iter: int) -> handnet.NeuralNetClassifier:
        return handnet.NeuralNetClassifier(layers=layers, max_iter=max_iter, batch_size=30,
                                           tol=None, random_state=0)

    model = make(6)
    model.fit(X, y)
    path = tmp_path / "model.npz"
    handnet.save(model, path)
    loaded = handnet.load(path)
    assert isinstance(loaded, handnet.NeuralNetClassifier)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    checkpoint = tmp_path / "run.npz"
    make(3).fit(X, y, checkpoint=checkpoint)
    resumed = make(6).fit(X, y, checkpoint=checkpoint, resume=True)
    np.testing.assert_array_equal(resumed.network_.flat_parameters, model.network_.flat_parameters)
    for mine, theirs in zip(resumed.network_.buffers(), model.network_.buffers(), strict=True):
        for name in mine:
            np.testing.assert_array_equal(mine[name], theirs[name])


def test_dropout_inside_a_block_keeps_one_mask_in_the_gradient_check() -> None:
    from handnet.gradcheck import check_network

    rng = np.random.default_rng(0)
    network = Sequential(
        [Residual([Dense(3, 3, random_state=0), Activation("tanh"), Dropout(0.3)]),
         Dense(3, 2, random_state=1)]
    )
    network.set_random_state(np.random.default_rng(4))
    X = rng.normal(size=(6, 3))
    errors = check_network(network, "softmax_cross_entropy", X, np.eye(2)[[0, 1, 1, 0, 1, 0]])
    assert max(errors.values()) < 1e-6


def test_a_block_holding_an_unregistered_layer_is_not_split_over_threads() -> None:
    from handnet.data import blocks

    class Unregistered(Activation):
        pass

    network = Sequential([Residual([Dense(3, 3, random_state=0), Unregistered("tanh")]),
                          Dense(3, 1, random_state=1)])
    assert not blocks.supports(network, training=True)
    registered = Sequential([Residual([Dense(3, 3, random_state=0), Activation("tanh")]),
                             Dense(3, 1, random_state=1)])
    assert blocks.supports(registered, training=True)
