"""Layers and initialisers: forward values, backward against finite differences, dropout."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from handnet import Activation, Dense, Dropout
from handnet import activations as act
from handnet.gradcheck import gradcheck
from handnet.nn.initializers import INITIALIZERS, get_initializer, he, normal, xavier, zeros
from handnet.nn.layers import LAYERS, Layer, ReLU, Sigmoid, Tanh

TOL = 1e-6


def random_dense(rng: np.random.Generator, n_in: int = 4, n_out: int = 3) -> Dense:
    layer = Dense(n_in, n_out, random_state=rng)
    layer.bias[...] = rng.standard_normal(n_out)  # non-zero, so a wrong bias term shows
    return layer


# --- Dense -------------------------------------------------------------------------------


def test_dense_forward_shape_and_values(rng: np.random.Generator) -> None:
    layer = random_dense(rng)
    X = rng.standard_normal((5, 4))
    out = layer.forward(X)
    assert out.shape == (5, 3)
    expected = np.array(
        [
            [sum(X[i, k] * layer.weights[k, j] for k in range(4)) + layer.bias[j] for j in range(3)]
            for i in range(5)
        ]
    )
    np.testing.assert_allclose(out, expected, rtol=1e-13)
    assert layer.output_size(4) == 3
    with pytest.raises(ValueError):
        layer.output_size(5)


def _dense_objective(layer: Dense, X: np.ndarray, G: np.ndarray) -> float:
    """The scalar sum(G * layer(X)), whose gradient backward(G) is."""
    return float(np.sum(G * layer.forward(X)))


def test_dense_backward_weights(rng: np.random.Generator) -> None:
    layer = random_dense(rng)
    X, G = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))

    def fun(W: np.ndarray) -> tuple[float, np.ndarray]:
        layer.weights[...] = W
        value = _dense_objective(layer, X, G)
        layer.backward(G)
        return value, layer.grad_weights.copy()

    assert gradcheck(fun, layer.weights.copy()).passed(TOL)


def test_dense_backward_bias(rng: np.random.Generator) -> None:
    layer = random_dense(rng)
    X, G = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))

    def fun(b: np.ndarray) -> tuple[float, np.ndarray]:
        layer.bias[...] = b
        value = _dense_objective(layer, X, G)
        layer.backward(G)
        return value, layer.grad_bias.copy()

    assert gradcheck(fun, layer.bias.copy()).passed(TOL)


def test_dense_backward_input(rng: np.random.Generator) -> None:
    layer = random_dense(rng)
    X, G = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        value = _dense_objective(layer, x, G)
        dX = layer.backward(G)
        assert dX is not None
        return value, dX

    assert gradcheck(fun, X).passed(TOL)


def test_dense_gradient_formulas(rng: np.random.Generator) -> None:
    layer = random_dense(rng)
    X, G = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))
    layer.forward(X)
    dX = layer.backward(G)
    np.testing.assert_allclose(layer.grad_weights, X.T @ G, rtol=1e-13)
    np.testing.assert_allclose(layer.grad_bias, G.sum(axis=0), rtol=1e-13)
    np.testing.assert_allclose(dX, G @ layer.weights.T, rtol=1e-13)
    assert all(
        g is h
        for g, h in zip(layer.gradients(), [layer.grad_weights, layer.grad_bias], strict=True)
    )


def test_dense_backward_twice_does_not_accumulate(rng: np.random.Generator) -> None:
    layer = random_dense(rng)
    X, G = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))
    layer.forward(X)
    dX1 = layer.backward(G)
    grads1 = [g.copy() for g in layer.gradients()]
    dX2 = layer.backward(G)
    for g1, g2 in zip(grads1, layer.gradients(), strict=True):
        np.testing.assert_array_equal(g1, g2)
    np.testing.assert_array_equal(dX1, dX2)


def test_dense_skips_input_gradient_on_request(rng: np.random.Generator) -> None:
    layer = random_dense(rng)
    X, G = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))
    layer.forward(X)
    assert layer.backward(G, need_input_gradient=False) is None
    np.testing.assert_allclose(layer.grad_weights, X.T @ G, rtol=1e-13)


def test_dense_backward_before_forward_raises() -> None:
    with pytest.raises(RuntimeError, match="before forward"):
        Dense(2, 2, random_state=0).backward(np.ones((1, 2)))


@pytest.mark.parametrize(("n_in", "n_out"), [(0, 3), (3, 0), (-1, 2)])
def test_dense_rejects_bad_sizes(n_in: int, n_out: int) -> None:
    with pytest.raises(ValueError):
        Dense(n_in, n_out)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_dtype(dtype: type, rng: np.random.Generator) -> None:
    layer = Dense(3, 2, random_state=0, dtype=dtype)
    assert all(p.dtype == dtype for p in layer.parameters() + layer.gradients())
    X = rng.standard_normal((4, 3)).astype(dtype)
    out = layer.forward(X)
    assert out.dtype == dtype
    dX = layer.backward(np.ones_like(out))
    assert dX is not None and dX.dtype == dtype


def test_dense_bind_copies_values_into_given_arrays(rng: np.random.Generator) -> None:
    layer = random_dense(rng, 3, 2)
    W, b = layer.weights.copy(), layer.bias.copy()
    buffer, grads = np.zeros(8), np.zeros(8)
    layer.bind([buffer[:6].reshape(3, 2), buffer[6:]], [grads[:6].reshape(3, 2), grads[6:]])
    np.testing.assert_array_equal(buffer, np.concatenate([W.ravel(), b]))
    buffer[0] = 42.0
    assert layer.weights[0, 0] == 42.0
    with pytest.raises(ValueError, match="shapes"):
        layer.bind([np.zeros((2, 3)), np.zeros(2)], [np.zeros((2, 3)), np.zeros(2)])


def test_dense_config_and_repr() -> None:
    layer = Dense(3, 2)
    assert layer.config() == {"type": "Dense", "n_inputs": 3, "n_outputs": 2}
    assert repr(layer) == "Dense(3, 2)"
    assert layer.penalized == (True, False)


def test_layer_without_parameters_refuses_to_bind() -> None:
    with pytest.raises(TypeError):
        Activation("tanh").bind([np.zeros(2)], [np.zeros(2)])
    Layer().bind([], [])  # nothing to bind is fine


# --- initialisers ------------------------------------------------------------------------


def test_xavier_bound_and_variance() -> None:
    n_in, n_out = 300, 200
    W = xavier(n_in, n_out, np.random.default_rng(0))
    bound = np.sqrt(6.0 / (n_in + n_out))
    assert np.all(np.abs(W) <= bound)
    assert np.abs(W).max() > 0.99 * bound  # uses the whole interval
    assert W.var() == pytest.approx(bound**2 / 3, rel=0.02)  # U(-a, a) has variance a^2/3
    assert abs(W.mean()) < 0.01 * bound


def test_he_standard_deviation() -> None:
    n_in, n_out = 250, 400
    W = he(n_in, n_out, np.random.default_rng(1))
    assert W.std() == pytest.approx(np.sqrt(2.0 / n_in), rel=0.02)
    assert abs(W.mean()) < 0.01


def test_normal_and_zeros() -> None:
    W = normal(200, 300, np.random.default_rng(2))
    assert W.std() == pytest.approx(1.0, rel=0.02)
    assert abs(W.mean()) < 0.02
    Z = zeros(3, 4, np.random.default_rng(3))
    assert Z.shape == (3, 4) and not Z.any()


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_initializer_shape_dtype_and_seed(name: str, dtype: type) -> None:
    init = get_initializer(name)
    a = init(5, 7, np.random.default_rng(11), dtype)
    b = init(5, 7, np.random.default_rng(11), dtype)
    assert a.shape == (5, 7) and a.dtype == dtype
    np.testing.assert_array_equal(a, b)
    if name != "zeros":
        c = init(5, 7, np.random.default_rng(12), dtype)
        assert not np.array_equal(a, c)


def test_dense_seed_reproducible_and_biases_zero() -> None:
    a, b, c = Dense(4, 3, random_state=5), Dense(4, 3, random_state=5), Dense(4, 3, random_state=6)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert not np.array_equal(a.weights, c.weights)
    assert not a.bias.any()
    d = Dense(4, 3, init="he", random_state=np.random.default_rng(5))
    np.testing.assert_array_equal(d.weights, he(4, 3, np.random.default_rng(5)))


def test_custom_and_unknown_initializers() -> None:
    def ones(n_in: int, n_out: int, rng: np.random.Generator, dtype: object = None) -> np.ndarray:
        return np.ones((n_in, n_out))

    assert get_initializer(ones) is ones
    np.testing.assert_array_equal(Dense(2, 3, init=ones).weights, np.ones((2, 3)))
    with pytest.raises(ValueError, match="unknown initializer"):
        get_initializer("orthogonal")


# --- Dropout -----------------------------------------------------------------------------


def test_dropout_eval_mode_is_identity(rng: np.random.Generator) -> None:
    layer = Dropout(0.5, random_state=0)
    X = rng.standard_normal((4, 5))
    np.testing.assert_array_equal(layer.forward(X), X)
    np.testing.assert_array_equal(layer.forward(X, training=False), X)
    G = rng.standard_normal((4, 5))
    np.testing.assert_array_equal(layer.backward(G), G)


@pytest.mark.parametrize("rate", [None, "0.5", True, 1.0, -0.1, float("nan"), [0.5]])
def test_dropout_rate_must_be_a_probability(rate: Any) -> None:
    with pytest.raises(ValueError, match=r"Dropout rate must be a number in \[0, 1\)"):
        Dropout(rate)


def test_dropout_rate_zero_is_identity_in_training(rng: np.random.Generator) -> None:
    X = rng.standard_normal((4, 5))
    np.testing.assert_array_equal(Dropout(0.0).forward(X, training=True), X)


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.8])
def test_dropout_training_keeps_expectation(rate: float, rng: np.random.Generator) -> None:
    layer = Dropout(rate, random_state=1)
    X = rng.uniform(0.5, 1.5, size=(1, 40)) * np.ones((5000, 1))  # 5000 draws per unit
    out = layer.forward(X, training=True)
    dropped = out == 0
    assert dropped.mean() == pytest.approx(rate, abs=0.01)
    # Kept units are scaled by 1 / (1 - rate) ...
    np.testing.assert_allclose(out[~dropped], (X / (1 - rate))[~dropped], rtol=1e-15)
    # ... so every unit's mean over the draws is its input (5 standard errors).
    standard_error = X[0] * np.sqrt(rate / (1 - rate) / X.shape[0])
    assert np.all(np.abs(out.mean(axis=0) - X[0]) < 5 * standard_error)


def test_dropout_backward_reapplies_the_same_mask(rng: np.random.Generator) -> None:
    layer = Dropout(0.5, random_state=2)
    X = rng.uniform(1.0, 2.0, size=(20, 10))  # never 0, so out == 0 marks a dropped unit
    out = layer.forward(X, training=True)
    G = rng.standard_normal(X.shape)
    dX = layer.backward(G)
    assert dX is not None
    dropped = out == 0
    assert dropped.any() and (~dropped).any()
    assert np.all(dX[dropped] == 0)
    np.testing.assert_allclose(dX[~dropped], 2.0 * G[~dropped], rtol=1e-15)
    np.testing.assert_array_equal(layer.backward(G), dX)  # same mask again


def test_dropout_gradient_with_fixed_mask(rng: np.random.Generator) -> None:
    """Re-seeding the layer's generator before each forward fixes the mask."""
    layer = Dropout(0.3)
    G = rng.standard_normal((6, 5))

    def fun(X: np.ndarray) -> tuple[float, np.ndarray]:
        layer.rng = np.random.default_rng(7)
        value = float(np.sum(G * layer.forward(X, training=True)))
        dX = layer.backward(G)
        assert dX is not None
        return value, dX

    result = gradcheck(fun, rng.standard_normal((6, 5)))
    assert result.passed(TOL)
    assert np.any(result.analytic == 0)  # some units were dropped


def test_dropout_seeded_masks_are_reproducible(rng: np.random.Generator) -> None:
    X = rng.standard_normal((8, 8))
    a = Dropout(0.5, random_state=3).forward(X, training=True)
    b = Dropout(0.5, random_state=3).forward(X, training=True)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_dtype(dtype: type, rng: np.random.Generator) -> None:
    X = rng.standard_normal((4, 4)).astype(dtype)
    layer = Dropout(0.5, random_state=0)
    assert layer.forward(X, training=True).dtype == dtype
    assert layer.backward(np.ones_like(X)).dtype == dtype  # type: ignore[union-attr]


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan")])
def test_dropout_rate_validation(rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        Dropout(rate)


def test_dropout_config_and_repr() -> None:
    assert Dropout(0.25).config() == {"type": "Dropout", "rate": 0.25}
    assert repr(Dropout(0.25)) == "Dropout(0.25)"


# --- Activation layer --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "leaky_relu", "identity", "softmax"])
def test_activation_layer_matches_functions(name: str, rng: np.random.Generator) -> None:
    layer = Activation(name)
    pair = act.get_activation(name)
    forward, backward = pair.forward, pair.backward
    z = rng.standard_normal((5, 4))
    G = rng.standard_normal((5, 4))
    np.testing.assert_array_equal(layer.forward(z), forward(z))
    np.testing.assert_array_equal(layer.backward(G), backward(G, z, forward(z)))
    assert layer.parameters() == [] and layer.gradients() == []
    assert layer.config() == {"type": "Activation", "name": name}
    assert repr(layer) == f"Activation({name!r})"


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "leaky_relu", "softmax"])
def test_activation_layer_gradient(name: str, rng: np.random.Generator) -> None:
    layer = Activation(name)
    G = rng.standard_normal((5, 4))

    def fun(z: np.ndarray) -> tuple[float, np.ndarray]:
        value = float(np.sum(G * layer.forward(z)))
        dz = layer.backward(G)
        assert dz is not None
        return value, dz

    z = rng.standard_normal((5, 4))
    assert gradcheck(fun, z + np.copysign(0.1, z)).passed(TOL)  # away from the kink at 0


def test_activation_layer_errors() -> None:
    with pytest.raises(ValueError, match="unknown activation"):
        Activation("gelu")
    with pytest.raises(RuntimeError, match="before forward"):
        Activation("tanh").backward(np.ones((1, 1)))


@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid"])
def test_training_mode_buffers_give_the_same_numbers(name: str, rng: np.random.Generator) -> None:
    # Training-mode passes write into reused buffers; evaluation-mode passes return
    # new arrays the caller may keep.
    net_layers = [Dense(4, 6, random_state=0), Activation(name), Dense(6, 3, random_state=1)]
    X = rng.standard_normal((5, 4))
    G = rng.standard_normal((5, 3))
    eval_out = X
    for layer in net_layers:
        eval_out = layer.forward(eval_out)
    kept = eval_out.copy()
    train_out = X
    for layer in net_layers:
        layer.reuse_buffers = True
        train_out = layer.forward(train_out, training=True)
    np.testing.assert_array_equal(train_out, kept)
    again = X
    for layer in net_layers:
        again = layer.forward(again)
    assert again is not eval_out and np.array_equal(eval_out, kept)
    grad_train = G
    for layer in reversed(net_layers):
        grad_train = layer.backward(grad_train)
    grads_train = [g.copy() for layer in net_layers for g in layer.gradients()]
    out = X
    for layer in net_layers:
        out = layer.forward(out)
    grad_eval = G
    for layer in reversed(net_layers):
        grad_eval = layer.backward(grad_eval)
    np.testing.assert_array_equal(grad_train, grad_eval)
    for before, layer_grad in zip(
        grads_train, [g for layer in net_layers for g in layer.gradients()], strict=True
    ):
        np.testing.assert_array_equal(before, layer_grad)


@pytest.mark.parametrize(("cls", "name"), [(ReLU, "relu"), (Tanh, "tanh"), (Sigmoid, "sigmoid")])
def test_named_activation_layers_are_their_activation_saved_under_their_own_name(
    cls: type, name: str
) -> None:
    layer, reference = cls(), Activation(name)
    X = np.random.default_rng(0).normal(size=(4, 3))
    np.testing.assert_array_equal(layer.forward(X), reference.forward(X))
    G = np.random.default_rng(1).normal(size=X.shape)
    np.testing.assert_array_equal(layer.backward(G), reference.backward(G))
    assert layer.config() == {"type": cls.__name__}
    assert LAYERS[cls.__name__] is cls
    assert type(cls.from_config(layer.config())) is cls


# --- mixed dtypes ----------------------------------------------------------------------------


def _mixed_dtype_example(name: str) -> tuple[Layer, tuple[int, ...]]:
    """A small float32 layer of each registered kind, and its per-sample input shape."""
    from handnet.nn.conv import Conv2D
    from handnet.nn.normalization import BatchNorm, LayerNorm
    from handnet.nn.pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D
    from handnet.nn.residual import Residual

    image = (2, 6, 6)
    examples: dict[str, tuple[Any, tuple[int, ...]]] = {
        "Activation": (lambda: Activation("tanh"), (4,)),
        "AvgPool2D": (lambda: AvgPool2D(2), image),
        "BatchNorm": (BatchNorm, (4,)),
        "Conv2D": (lambda: Conv2D(2, 3, 3), image),
        "Dense": (lambda: Dense(4, 3, dtype=np.float32), (4,)),
        "Dropout": (lambda: Dropout(0.5), (4,)),
        "Flatten": (LAYERS["Flatten"], image),
        "GlobalAvgPool2D": (GlobalAvgPool2D, image),
        "LayerNorm": (LayerNorm, (4,)),
        "MaxPool2D": (lambda: MaxPool2D(2), image),
        "ReLU": (ReLU, (4,)),
        "Reshape": (lambda: LAYERS["Reshape"]((2, 2)), (4,)),
        "Residual": (lambda: Residual([Dense(4, 4, dtype=np.float32), ReLU()]), (4,)),
        "Sigmoid": (Sigmoid, (4,)),
        "Tanh": (Tanh, (4,)),
    }
    make, shape = examples[name]
    return make(), shape


def test_the_mixed_dtype_examples_cover_every_registered_layer() -> None:
    for name in LAYERS:
        _mixed_dtype_example(name)  # a KeyError names the layer without an example


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("input_dtype", [np.float32, np.float64])
def test_a_float32_layer_takes_a_float64_gradient(
    name: str, input_dtype: type, rng: np.random.Generator
) -> None:
    """A float64 ``dout`` (a loss gradient computed in float64, say) into a float32 layer,
    after a float32 or float64 forward pass: the gradients of the float32 ``dout`` to
    float32 rounding, the layer's own gradients kept in float32, never NumPy's
    "output array is not acceptable". (``tests/test_native.py`` runs it with the
    compiled kernels built.)"""
    check_mixed_dtype_gradients(name, input_dtype, rng)


def check_mixed_dtype_gradients(name: str, input_dtype: type, rng: np.random.Generator) -> None:
    """The check of :func:`test_a_float32_layer_takes_a_float64_gradient`."""
    layer, shape = _mixed_dtype_example(name)
    layer.build(shape, rng, np.float32)
    X = rng.normal(size=(5, *shape)).astype(input_dtype)
    dout = rng.normal(size=layer.forward(X, training=True).shape)
    results = []
    for gradient in (dout, dout.astype(np.float32)):
        dX = layer.backward(gradient)
        assert dX is not None
        results.append([dX.copy(), *(g.copy() for g in layer.gradients())])
    for wide, narrow in zip(*results, strict=True):
        np.testing.assert_allclose(wide, narrow, rtol=1e-4, atol=1e-5)
    assert all(g.dtype == np.float32 for g in layer.gradients())
