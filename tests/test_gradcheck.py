"""The gradient checker itself: it must pass right gradients and catch wrong ones."""

from __future__ import annotations

import numpy as np
import pytest

from handnet import Activation, Dense, Dropout, Sequential
from handnet.gradcheck import (
    GradcheckResult,
    check_activation,
    check_loss,
    check_network,
    gradcheck,
    numerical_gradient,
    relative_error,
)
from handnet.losses import MeanSquaredError


def cubic(x: np.ndarray) -> tuple[float, np.ndarray]:
    """f = Σ x³ + x₀x₁ (x flattened), with its exact gradient."""
    flat = x.ravel()
    grad = 3 * flat**2
    grad[0] += flat[1]
    grad[1] += flat[0]
    return float(np.sum(flat**3) + flat[0] * flat[1]), grad.reshape(x.shape)


def test_numerical_gradient_of_known_functions(rng: np.random.Generator) -> None:
    x = rng.standard_normal((3, 4))
    np.testing.assert_allclose(
        numerical_gradient(lambda v: float(np.sum(v**3)), x), 3 * x**2, rtol=1e-8, atol=1e-9
    )
    np.testing.assert_allclose(
        numerical_gradient(lambda v: float(np.sin(v).sum()), x), np.cos(x), rtol=1e-8, atol=1e-9
    )


def test_numerical_gradient_copies_and_keeps_shape(rng: np.random.Generator) -> None:
    x = rng.standard_normal((2, 3, 2))
    x0 = x.copy()
    seen = []

    def fun(v: np.ndarray) -> float:
        seen.append(v)
        return float(np.sum(v**2))

    grad = numerical_gradient(fun, x)
    assert grad.shape == x.shape
    np.testing.assert_array_equal(x, x0)  # not mutated
    assert all(v is not x for v in seen)
    np.testing.assert_allclose(grad, 2 * x, rtol=1e-8)


def test_numerical_gradient_of_a_scalar_array() -> None:
    grad = numerical_gradient(lambda v: float(v**2), np.array(3.0))
    assert grad.shape == ()
    assert grad == pytest.approx(6.0, rel=1e-9)


def test_numerical_gradient_rejects_bad_eps() -> None:
    with pytest.raises(ValueError):
        numerical_gradient(lambda v: 0.0, np.zeros(2), eps=0.0)


def test_relative_error() -> None:
    a = np.array([3.0, 4.0])
    assert relative_error(a, a) == 0.0
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0  # 0 / 0 counts as agreement
    assert relative_error(a, np.zeros(2)) == 1.0
    assert relative_error(a, -a) == 2.0
    assert relative_error(a, 1.01 * a) == pytest.approx(0.01 / 1.01)
    # A tiny component that is all round-off does not dominate (it would elementwise).
    assert relative_error(np.array([1.0, 1e-12]), np.array([1.0, 3e-11])) < 1e-10
    with pytest.raises(ValueError, match="shapes"):
        relative_error(np.zeros(2), np.zeros(3))


def test_gradcheck_passes_a_correct_gradient(rng: np.random.Generator) -> None:
    x = rng.standard_normal((3, 2))
    result = gradcheck(cubic, x)
    assert isinstance(result, GradcheckResult)
    assert result.passed()
    assert result.max_relative_error <= 1e-8
    assert result.analytic.shape == result.numeric.shape == x.shape


@pytest.mark.parametrize("factor", [1.01, 0.99, 1.0 + 1e-4])
def test_gradcheck_catches_a_scaled_gradient(factor: float, rng: np.random.Generator) -> None:
    x = rng.standard_normal(5)

    def wrong(v: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = cubic(v)
        return f, factor * g

    result = gradcheck(wrong, x)
    assert not result.passed()
    assert result.max_relative_error == pytest.approx(abs(factor - 1) / max(factor, 1), rel=1e-3)


def test_gradcheck_catches_a_single_wrong_component(rng: np.random.Generator) -> None:
    x = rng.standard_normal(6)

    def wrong(v: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = cubic(v)
        g = g.copy()
        g[4] += 1e-3
        return f, g

    assert not gradcheck(wrong, x).passed()


def test_gradcheck_catches_a_missing_cross_term(rng: np.random.Generator) -> None:
    x = rng.standard_normal(4)
    result = gradcheck(lambda v: (cubic(v)[0], 3 * v**2), x)
    assert not result.passed()


def test_passed_tolerance_and_nan() -> None:
    result = GradcheckResult(1e-5, np.zeros(1), np.zeros(1))
    assert not result.passed()
    assert result.passed(tol=1e-4)
    assert not GradcheckResult(float("nan"), np.zeros(1), np.zeros(1)).passed(tol=1.0)


def test_gradcheck_does_not_modify_x(rng: np.random.Generator) -> None:
    x = rng.standard_normal(4)
    x0 = x.copy()
    gradcheck(cubic, x)
    np.testing.assert_array_equal(x, x0)


def test_check_activation_and_check_loss_helpers(rng: np.random.Generator) -> None:
    z = rng.standard_normal((4, 3))
    assert check_activation("tanh", z) <= 1e-6
    y = rng.standard_normal((4, 3))
    assert check_loss("mean_squared_error", z, y) <= 1e-6
    assert check_loss(MeanSquaredError(), z, y, rng.uniform(0.5, 2, 4)) <= 1e-6


def test_check_network_fixes_the_dropout_mask(rng: np.random.Generator) -> None:
    """Dropout runs in training mode with one mask, so the check passes with dropout on."""
    network = Sequential(
        [
            Dense(3, 6, random_state=0),
            Activation("tanh"),
            Dropout(0.5, random_state=1),
            Dense(6, 2, random_state=2),
        ]
    )
    X, Y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    errors = check_network(network, MeanSquaredError(), X, Y, l2=0.1)
    assert max(errors.values()) <= 1e-6
    # The dropout layer's generator is back and still draws fresh masks.
    dropout = network.layers[2]
    assert isinstance(dropout, Dropout) and isinstance(dropout.rng, np.random.Generator)
    a = network.forward(X, training=True)
    b = network.forward(X, training=True)
    assert not np.array_equal(a, b)


def test_check_network_rejects_parameters_outside_the_flat_vector(
    rng: np.random.Generator,
) -> None:
    network = Sequential([Dense(2, 2, random_state=0)])
    layer = network.layers[0]
    assert isinstance(layer, Dense)
    layer.weights = layer.weights.copy()  # detached from flat_parameters: a binding bug
    with pytest.raises(ValueError, match="not a view"):
        check_network(network, MeanSquaredError(), rng.standard_normal((3, 2)), np.zeros((3, 2)))
