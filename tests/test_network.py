"""Sequential: backpropagation through random architectures, the flat parameter layout."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from handnet import Activation, Dense, Dropout, Sequential
from handnet.gradcheck import check_network
from handnet.nn.losses import BinaryCrossEntropy, Loss, MeanSquaredError, SoftmaxCrossEntropy
from handnet.nn.penalties import add_l2

TOL = 1e-6
HIDDEN_ACTIVATIONS = ["tanh", "sigmoid", "relu", "leaky_relu"]
LOSSES: list[Loss] = [BinaryCrossEntropy(), SoftmaxCrossEntropy(), MeanSquaredError()]
N_SAMPLES = 7


def random_problem(
    seed: int,
) -> tuple[Sequential, Loss, np.ndarray, np.ndarray, np.ndarray | None, float]:
    """A random network (1-4 hidden layers, random widths and activations, some dropout),
    loss, data, sample weights and L2 strength, all from ``seed``."""
    rng = np.random.default_rng(seed)
    loss = LOSSES[seed % 3]
    n_hidden = 1 + seed % 4
    n_in = int(rng.integers(2, 5))
    n_out = 1 if isinstance(loss, BinaryCrossEntropy) else int(rng.integers(2, 4))
    widths = [n_in, *(int(w) for w in rng.integers(2, 6, size=n_hidden))]
    layers: list[Dense | Activation | Dropout] = []
    for k, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(Dense(a, b, random_state=rng))
        layers.append(Activation(HIDDEN_ACTIVATIONS[(seed + k) % 4]))
        if (seed + k) % 3 == 0:
            layers.append(Dropout(0.3, random_state=rng))
    layers.append(Dense(widths[-1], n_out, random_state=rng))
    network = Sequential(layers)
    # Non-zero biases: with zero biases a row whose inputs were all dropped (or all
    # zeroed by a dead ReLU) lands exactly on ReLU's kink, where finite differences are
    # one-sided. Random biases also exercise the bias terms for real.
    network.flat_parameters[network.n_penalized :] = 0.5 * rng.standard_normal(
        network.n_parameters - network.n_penalized
    )
    X = rng.standard_normal((N_SAMPLES, n_in))
    if isinstance(loss, BinaryCrossEntropy):
        Y = (rng.random((N_SAMPLES, 1)) < 0.5).astype(float)
    elif isinstance(loss, SoftmaxCrossEntropy):
        Y = np.eye(n_out)[rng.integers(0, n_out, N_SAMPLES)]
    else:
        Y = rng.standard_normal((N_SAMPLES, n_out))
    sample_weight = rng.uniform(0.5, 2.0, N_SAMPLES) if seed % 2 else None
    l2 = [0.0, 0.1, 1.0][(seed // 3) % 3]
    return network, loss, X, Y, sample_weight, l2


@pytest.mark.parametrize("seed", range(24))
def test_random_networks_pass_gradient_check(seed: int) -> None:
    network, loss, X, Y, sample_weight, l2 = random_problem(seed)
    before = network.flat_parameters.copy()
    # eps = 1e-5: deep sigmoid stacks have bias gradients of order 1e-5, against which
    # the round-off of a 1e-6 difference (about 1e-16 * |J| / 1e-6) is not negligible.
    errors = check_network(network, loss, X, Y, l2=l2, sample_weight=sample_weight, eps=1e-5)
    n_dense = sum(isinstance(layer, Dense) for layer in network.layers)
    assert len(errors) == 2 * n_dense
    assert max(errors.values()) <= TOL, errors
    np.testing.assert_array_equal(network.flat_parameters, before)  # restored


def test_the_random_problems_cover_the_grid() -> None:
    """Every activation, every loss, 1 to 4 hidden layers, dropout, weights and l2 > 0."""
    seen: set[object] = set()
    for seed in range(24):
        network, loss, _, _, sample_weight, l2 = random_problem(seed)
        seen.add(type(loss).__name__)
        seen.update(layer.name for layer in network.layers if isinstance(layer, Activation))
        seen.add(sum(isinstance(layer, Dense) for layer in network.layers) - 1)
        seen.add("dropout" if any(isinstance(la, Dropout) for la in network.layers) else None)
        seen.add("weighted" if sample_weight is not None else None)
        seen.add("l2" if l2 > 0 else None)
    assert {*HIDDEN_ACTIVATIONS, *(type(loss).__name__ for loss in LOSSES)} <= seen
    assert {1, 2, 3, 4, "dropout", "weighted", "l2"} <= seen


def test_keys_name_layer_index_class_and_parameter() -> None:
    rng = np.random.default_rng(0)
    network = Sequential([Dense(3, 4, random_state=0), Activation("tanh"), Dense(4, 2)])
    X, Y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    errors = check_network(network, MeanSquaredError(), X, Y, l2=0.5)
    assert list(errors) == ["0.Dense.weights", "0.Dense.bias", "2.Dense.weights", "2.Dense.bias"]


def test_check_network_detects_a_wrong_backward(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check fails for a backward pass with a plausible bug (bias gradient doubled)."""
    network, loss, X, Y, sample_weight, l2 = random_problem(1)
    original = Dense.backward

    def doubled_bias(self: Dense, dout: np.ndarray, need_input_gradient: bool = True):  # type: ignore[no-untyped-def]
        result = original(self, dout, need_input_gradient)
        self.grad_bias *= 2.0
        return result

    monkeypatch.setattr(Dense, "backward", doubled_bias)
    errors = check_network(network, loss, X, Y, l2=l2, sample_weight=sample_weight, eps=1e-5)
    assert all(errors[k] > 0.1 for k in errors if k.endswith("bias"))
    assert all(errors[k] <= TOL for k in errors if k.endswith("weights"))


def test_check_network_detects_a_penalised_bias(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the L2 gradient reached the biases, the check would fail on them."""
    import handnet.gradcheck as gc

    def penalise_everything(weights: np.ndarray, grads: np.ndarray, alpha: float) -> float:
        network.flat_gradients[...] += alpha * network.flat_parameters
        return 0.0

    network, loss, X, Y, _, _ = random_problem(2)
    monkeypatch.setattr(gc, "add_l2", penalise_everything)
    errors = check_network(network, loss, X, Y, l2=1.0, eps=1e-5)
    assert all(errors[k] > 1e-3 for k in errors if k.endswith("bias"))


def test_biases_are_not_penalised() -> None:
    """The L2 term changes the weight gradients by alpha * w and the biases' by exactly 0."""
    network, loss, X, Y, _, _ = random_problem(5)
    network.forward(X)
    logits = network.forward(X)
    network.backward(loss(logits, Y)[1])
    plain = network.flat_gradients.copy()
    alpha = 0.7
    value = add_l2(network.weights, network.weight_gradients, alpha)
    penalty_gradient = network.flat_gradients - plain
    k = network.n_penalized
    np.testing.assert_array_equal(penalty_gradient[k:], 0.0)
    np.testing.assert_allclose(penalty_gradient[:k], alpha * network.flat_parameters[:k])
    assert value == pytest.approx(0.5 * alpha * np.sum(network.flat_parameters[:k] ** 2))
    for layer in network.layers:
        if isinstance(layer, Dense):
            assert np.any(layer.bias != 0)  # biases were non-zero, so 0 is meaningful


def test_parameters_are_views_of_the_flat_vector() -> None:
    network = Sequential([Dense(3, 4, random_state=0), Activation("relu"), Dense(4, 2)])
    flat = network.flat_parameters
    for p in network.parameters():
        assert np.shares_memory(p, flat)
    for g in network.gradients():
        assert np.shares_memory(g, network.flat_gradients)
    flat[...] = np.arange(flat.size)
    first, second = network.layers[0], network.layers[2]
    assert isinstance(first, Dense) and isinstance(second, Dense)
    np.testing.assert_array_equal(first.weights.ravel(), np.arange(12))
    # Writing through a layer changes the flat vector too.
    second.bias[...] = -1.0
    assert np.count_nonzero(flat == -1.0) == 2
    # And the forward pass uses the flat values.
    network.flat_parameters[...] = 0.0
    np.testing.assert_array_equal(network.forward(np.ones((2, 3))), np.zeros((2, 2)))


def test_backward_fills_the_flat_gradient(rng: np.random.Generator) -> None:
    network = Sequential([Dense(3, 4, random_state=0), Activation("tanh"), Dense(4, 2)])
    X, Y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    _, d = MeanSquaredError()(network.forward(X), Y)
    network.backward(d)
    expected = np.concatenate([g.ravel() for g in network.gradients()])
    assert np.all(np.isin(expected, network.flat_gradients))
    assert np.any(network.flat_gradients != 0)


def test_weights_first_layout() -> None:
    network = Sequential(
        [Dense(3, 4, random_state=0), Activation("tanh"), Dense(4, 2, random_state=1)]
    )
    first, second = network.layers[0], network.layers[2]
    assert isinstance(first, Dense) and isinstance(second, Dense)
    first.bias[...] = [1, 2, 3, 4]
    second.bias[...] = [5, 6]
    assert network.n_penalized == 3 * 4 + 4 * 2
    assert network.n_parameters == 3 * 4 + 4 + 4 * 2 + 2
    expected = np.concatenate(
        [first.weights.ravel(), second.weights.ravel(), first.bias, second.bias]
    )
    np.testing.assert_array_equal(network.flat_parameters, expected)
    np.testing.assert_array_equal(network.weights, expected[:20])
    assert np.shares_memory(network.weights, network.flat_parameters)
    assert np.shares_memory(network.weight_gradients, network.flat_gradients)


def test_flattening_keeps_initial_values() -> None:
    a, b = Dense(3, 4, random_state=0), Dense(4, 2, random_state=1)
    Wa, Wb = a.weights.copy(), b.weights.copy()
    Sequential([a, Activation("tanh"), b])
    np.testing.assert_array_equal(a.weights, Wa)
    np.testing.assert_array_equal(b.weights, Wb)


def test_chaining_size_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="do not chain"):
        Sequential([Dense(3, 4), Activation("tanh"), Dense(5, 2)])


def test_mixed_dtypes_and_empty_raise() -> None:
    with pytest.raises(ValueError, match="dtype"):
        Sequential([Dense(3, 4, dtype=np.float32), Dense(4, 2, dtype=np.float64)])
    with pytest.raises(ValueError):
        Sequential([])


def test_float32_network_stays_float32(rng: np.random.Generator) -> None:
    network = Sequential(
        [Dense(3, 4, dtype=np.float32), Activation("sigmoid"), Dense(4, 1, dtype=np.float32)]
    )
    assert network.flat_parameters.dtype == np.float32
    X = rng.standard_normal((5, 3)).astype(np.float32)
    logits = network.forward(X)
    assert logits.dtype == np.float32
    _, d = BinaryCrossEntropy()(logits, (rng.random((5, 1)) < 0.5).astype(np.float64))
    assert d.dtype == np.float32
    network.backward(d)
    assert network.flat_gradients.dtype == np.float32


def test_predict_ignores_dropout(rng: np.random.Generator) -> None:
    network = Sequential([Dense(3, 4, random_state=0), Dropout(0.5, random_state=0), Dense(4, 1)])
    X = rng.standard_normal((6, 3))
    np.testing.assert_array_equal(network.predict(X), network.predict(X))
    assert not np.array_equal(network.forward(X, training=True), network.predict(X))


def test_check_network_restores_state_and_dropout_generator(rng: np.random.Generator) -> None:
    network, loss, X, Y, sample_weight, l2 = random_problem(3)
    dropout = [layer for layer in network.layers if isinstance(layer, Dropout)]
    assert dropout
    generators = [layer.rng for layer in dropout]
    params, grads = network.flat_parameters.copy(), network.flat_gradients.copy()
    check_network(network, loss, X, Y, l2=l2, sample_weight=sample_weight)
    np.testing.assert_array_equal(network.flat_parameters, params)
    np.testing.assert_array_equal(network.flat_gradients, grads)
    assert [layer.rng for layer in dropout] == generators


def test_backward_stops_at_the_lowest_layer_with_parameters() -> None:
    """Behind a leading Reshape (an image estimator's network) the first convolution's
    input gradient is wanted by no one: it is not computed, nor the Reshape's."""
    from handnet import Conv2D, Flatten, Reshape
    from handnet.nn.layers import Layer

    calls: list[tuple[str, bool]] = []

    class Spy(Layer):
        def __init__(self, inner: Layer) -> None:
            self.inner = inner

        def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
            return self.inner.forward(X, training)

        def backward(self, dout: np.ndarray, need_input_gradient: bool = True) -> Any:
            calls.append((type(self.inner).__name__, need_input_gradient))
            return self.inner.backward(dout, need_input_gradient)

        def parameters(self) -> list[np.ndarray]:
            return self.inner.parameters()

    conv = Conv2D(1, 2, 3, random_state=0)
    network = Sequential([Spy(Reshape((1, 4, 4))), conv, Flatten(), Dense(8, 1, random_state=1)])
    X = np.random.default_rng(0).normal(size=(3, 16))
    network.forward(X, training=True)
    network.backward(np.ones((3, 1)))
    assert calls == []  # the Reshape below the convolution is not visited
    assert np.any(conv.grad_weights != 0)


# --- execution order: an activation that commutes with a maximum runs after max pooling ----


def _layers_in_written_order(
    layers: list[Any], X: np.ndarray, dlogits: np.ndarray
) -> dict[str, Any]:
    """Forward, then backward, layer by layer exactly as written (no reordering)."""
    out = X
    for layer in layers:
        out = layer.forward(out, training=True)
    grad = dlogits
    for layer in reversed(layers):
        grad = layer.backward(grad)
    return {"out": out.copy(), "dX": grad.copy(),
            "grads": [g.copy() for layer in layers for g in layer.gradients()]}


def _tied_images(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Images of few distinct values (ties everywhere, zeros, windows without a positive)."""
    return rng.integers(-3, 3, size=shape).astype(dtype) * 0.5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pool", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1},
                                  {"kernel_size": (2, 3), "stride": 1}])
def test_relu_then_max_pool_gives_the_written_orders_numbers(
    dtype: Any, pool: dict[str, Any]
) -> None:
    """Sequential runs ReLU after MaxPool2D; forward, predict, every gradient and the input
    gradient are the same bits as running the layers in the written order."""
    from handnet.nn.conv import Conv2D, MaxPool2D
    from handnet.nn.layers import Flatten
    from handnet.nn.network import build_network

    rng = np.random.default_rng(3)
    X = _tied_images(rng, (5, 2, 7, 8), dtype)

    def layers() -> list[Any]:
        return [Activation("relu"), MaxPool2D(**pool), Conv2D(None, 3, 2, padding="same"),
                Activation("relu"), MaxPool2D(**pool), Flatten(), Dense(None, 4)]

    network = build_network(layers(), X.shape[1:], np.random.default_rng(0), dtype)
    assert [type(layer).__name__ for layer in network._order][:2] == ["MaxPool2D", "Activation"]
    written = build_network(layers(), X.shape[1:], np.random.default_rng(0), dtype)
    dlogits = _tied_images(rng, (5, 4), dtype)
    expected = _layers_in_written_order(written.layers, X, dlogits)

    out = network.forward(X, training=True)
    np.testing.assert_array_equal(out, expected["out"])
    np.testing.assert_array_equal(network.predict(X), expected["out"])
    # The input gradient too: a network whose lowest trained layer is not the first.
    grad: Any = dlogits
    for layer in reversed(network._order):
        grad = layer.backward(grad)
    np.testing.assert_array_equal(grad, expected["dX"])
    network.forward(X, training=True)
    network.backward(dlogits)
    for got, want in zip(network.gradients(), expected["grads"], strict=True):
        np.testing.assert_array_equal(got, want)


def test_execution_order_moves_only_what_commutes_with_a_maximum() -> None:
    from handnet.nn.conv import AvgPool2D, MaxPool2D
    from handnet.nn.network import execution_order

    relu, tanh, leaky = Activation("relu"), Activation("tanh"), Activation("leaky_relu")
    max_pool, second_pool, avg_pool = MaxPool2D(2), MaxPool2D(2), AvgPool2D(2)
    assert execution_order([relu, max_pool]) == [max_pool, relu]
    assert execution_order([relu, avg_pool]) == [relu, avg_pool]
    assert execution_order([tanh, max_pool]) == [tanh, max_pool]
    assert execution_order([leaky, max_pool]) == [leaky, max_pool]
    assert execution_order([max_pool, relu]) == [max_pool, relu]
    assert execution_order([relu, max_pool, second_pool]) == [max_pool, relu, second_pool]
    assert execution_order([relu]) == [relu]


def test_leaky_relu_would_not_commute_with_a_maximum() -> None:
    """Why leaky_relu is left in place: its product can tie two different negatives, and
    the first maximum (where the gradient goes) then differs between the orders."""
    from handnet.nn.activations import leaky_relu

    below = np.nextafter(-1.0, 0.0)
    z = np.array([below, np.nextafter(below, 0.0)])  # two neighbouring float64 values
    assert z[1] > z[0]
    activated = leaky_relu(z)
    assert activated[0] == activated[1]  # tied: a window's first maximum moves to z[0]
