"""Activations: backward passes against finite differences, stability, dtypes."""

from __future__ import annotations

import numpy as np
import pytest

from handnet import activations as act
from handnet import initializers
from handnet.gradcheck import check_activation

TOL = 1e-6
#: Every registered activation is checked, a new one included, with no edit here.
ALL = list(act.ACTIVATIONS)


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal values with |z| >= 0.05: no ReLU kink within a finite difference."""
    z = rng.standard_normal(shape)
    return np.where(np.abs(z) < 0.05, np.copysign(0.05, z) + z, z)


@pytest.mark.parametrize("name", ALL)
def test_backward_matches_finite_differences(name: str, rng: np.random.Generator) -> None:
    z = 3.0 * away_from_zero(rng, (6, 4))
    assert check_activation(name, z) <= TOL


@pytest.mark.parametrize("name", ["sigmoid", "logistic", "tanh", "relu", "leaky_relu", "identity"])
def test_elementwise_backward_is_upstream_times_derivative(
    name: str, rng: np.random.Generator
) -> None:
    pair = act.get_activation(name)
    forward, backward = pair.forward, pair.backward
    z = away_from_zero(rng, (5, 3))
    expected = {
        "sigmoid": lambda a: a * (1 - a),
        "logistic": lambda a: a * (1 - a),
        "tanh": lambda a: 1 - a**2,
        "relu": lambda a: (z > 0).astype(float),
        "leaky_relu": lambda a: np.where(z > 0, 1.0, act.LEAKY_RELU_SLOPE),
        "identity": lambda a: np.ones_like(z),
    }[name](forward(z))
    g = rng.standard_normal(z.shape)
    np.testing.assert_allclose(backward(g, z, forward(z)), g * expected, rtol=1e-12)


def test_softmax_backward_is_full_jacobian_product(rng: np.random.Generator) -> None:
    """A random upstream gradient against the explicit Jacobian diag(p) - p p^T."""
    z = rng.standard_normal((4, 5))
    g = rng.standard_normal((4, 5))
    p = act.softmax(z)
    expected = np.stack([(np.diag(p[i]) - np.outer(p[i], p[i])) @ g[i] for i in range(z.shape[0])])
    np.testing.assert_allclose(act.softmax_backward(g, z, p), expected, rtol=1e-10, atol=1e-14)
    assert check_activation("softmax", z, upstream=g) <= TOL


def test_check_activation_detects_a_diagonal_only_softmax_gradient(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check is strong enough to catch the classic softmax mistake."""
    wrong = act.ActivationPair(act.softmax, lambda g, z, a: g * a * (1 - a))
    monkeypatch.setitem(act.ACTIVATIONS, "softmax", wrong)
    assert check_activation("softmax", rng.standard_normal((3, 4))) > 1e-2


def test_relu_kink_uses_subgradient_zero() -> None:
    z = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(act.relu_backward(np.ones(3), z, act.relu(z)), [0, 0, 1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_extreme_logits(dtype: type) -> None:
    z = np.array([-1000.0, -100.0, 0.0, 100.0, 1000.0], dtype=dtype)
    # Belt and braces on top of filterwarnings=error (underflow to 0 is harmless here).
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        s = act.sigmoid(z)
    assert s.dtype == dtype
    assert np.all(np.isfinite(s))
    assert s[0] == 0.0 and s[-1] == 1.0 and s[2] == 0.5
    assert np.all(np.diff(s) >= 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_extreme_logits(dtype: type) -> None:
    z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0], [1000.0, 1000.0, 0]])
    z = z.astype(dtype)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        p = act.softmax(z)
        log_p = act.log_softmax(z)
    assert p.dtype == dtype and log_p.dtype == dtype
    assert np.all(np.isfinite(p)) and np.all(np.isfinite(log_p))
    np.testing.assert_allclose(p, [[1, 0, 0], [1 / 3] * 3, [0.5, 0.5, 0]], atol=1e-7)
    np.testing.assert_allclose(log_p[0], [0.0, -2000.0, -1000.0], rtol=1e-6)


def test_sigmoid_agrees_with_naive_formula(rng: np.random.Generator) -> None:
    z = rng.uniform(-20, 20, size=1000)
    np.testing.assert_allclose(act.sigmoid(z), 1.0 / (1.0 + np.exp(-z)), rtol=1e-14, atol=0)


def test_softmax_agrees_with_naive_formula_and_rows_sum_to_one(
    rng: np.random.Generator,
) -> None:
    z = rng.uniform(-10, 10, size=(50, 7))
    p = act.softmax(z)
    naive = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(p, naive, rtol=1e-12)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-14)
    np.testing.assert_allclose(np.exp(act.log_softmax(z)), p, rtol=1e-12)


def test_softmax_is_shift_invariant(rng: np.random.Generator) -> None:
    z = rng.standard_normal((3, 4))
    np.testing.assert_allclose(act.softmax(z + 123.0), act.softmax(z), rtol=1e-12)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(name: str, dtype: type, rng: np.random.Generator) -> None:
    pair = act.get_activation(name)
    forward, backward = pair.forward, pair.backward
    z = rng.standard_normal((4, 3)).astype(dtype)
    a = forward(z)
    assert a.dtype == dtype
    assert backward(np.ones_like(z), z, a).dtype == dtype


def test_tanh_and_leaky_relu_values() -> None:
    z = np.array([-2.0, -0.5, 0.5, 3.0])
    np.testing.assert_allclose(act.tanh(z), np.tanh(z))
    np.testing.assert_allclose(act.leaky_relu(z), [-0.02, -0.005, 0.5, 3.0])
    np.testing.assert_allclose(act.relu(z), [0, 0, 0.5, 3.0])
    np.testing.assert_array_equal(act.identity(z), z)


def test_unknown_activation_raises() -> None:
    with pytest.raises(ValueError, match="unknown activation"):
        act.get_activation("swish")


@pytest.mark.parametrize("name", ALL)
def test_what_an_activation_says_of_itself_holds(name: str, rng: np.random.Generator) -> None:
    """The registry entry's flags are what layers and models rely on: buffer reuse
    (``out=``), elementwise-ness (hidden layers) and the initialiser ``init="auto"`` uses."""
    pair = act.get_activation(name)
    z = away_from_zero(rng, (4, 3))
    a = pair.forward(z)
    if pair.writes_out:
        out = np.empty_like(z)
        assert pair.forward(z, out=out) is out
        np.testing.assert_array_equal(out, a)
        dz = np.empty_like(z)
        assert pair.backward(np.ones_like(z), z, a, out=dz) is dz
    if pair.elementwise:
        # Each output depends on its own input only: permuting inputs permutes outputs.
        order = rng.permutation(z.size)
        np.testing.assert_allclose(
            pair.forward(z.ravel()[order]), a.ravel()[order], rtol=1e-12
        )
    assert pair.initializer in initializers.INITIALIZERS

