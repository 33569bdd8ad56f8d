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
from handnet.nn.losses import MeanSquaredError


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


# --- large parameters (issue 13) ---------------------------------------------------------


def test_numerical_gradient_scales_the_step_to_large_components() -> None:
    # A fixed eps of 1e-6 is below the spacing of float64 numbers near 4e11 (6e-5):
    # x + eps == x - eps, and the quotient was a ZeroDivisionError.
    x = np.array([4e11, -3e12, 7.5e11])
    grad = numerical_gradient(lambda v: float(np.sum(v**2)), x)
    np.testing.assert_allclose(grad, 2 * x, rtol=1e-6)
    # Components up to 1 keep the absolute step.
    small = np.array([0.5, -1.0, 0.0])
    grad = numerical_gradient(lambda v: float(np.sum(v**3)), small)
    np.testing.assert_allclose(grad, 3 * small**2, rtol=1e-9, atol=1e-10)


def test_numerical_gradient_refuses_a_step_lost_in_rounding() -> None:
    with pytest.raises(ValueError, match=r"eps=1e-300 is too small .* use a larger eps"):
        numerical_gradient(lambda v: float(np.sum(v)), np.array([1.0]), eps=1e-300)
    with pytest.raises(ValueError, match="finite differences need finite values"):
        numerical_gradient(lambda v: float(np.sum(v)), np.array([np.inf]))


def test_check_network_tells_round_off_from_a_wrong_gradient(rng: np.random.Generator) -> None:
    from handnet.gradcheck import check_network_parameters

    network = Sequential([Dense(2, 4, random_state=0), Activation("relu"),
                          Dense(4, 1, random_state=1)])
    X, Y = rng.standard_normal((16, 2)), rng.integers(0, 2, (16, 1)).astype(np.float64)
    ordinary = check_network_parameters(network, "binary_cross_entropy", X, Y, l2=1e-4)
    assert all(check.verdict() == "ok" for check in ordinary.values())
    assert all(check.round_off < 1e-6 for check in ordinary.values())
    # A tolerance below what round-off allows still fails an ordinary network.
    assert {check.verdict(1e-30) for check in ordinary.values()} == {"FAILED"}
    # Weights of 4e11: the objective is about 1e22, and its round-off swamps the
    # difference a step of the output bias makes. That is said, not called a failure.
    network.flat_parameters[...] *= 4e11 / np.abs(network.flat_parameters).max()
    huge = check_network_parameters(network, "binary_cross_entropy", X, Y, l2=1e-4)
    assert huge["2.Dense.bias"].round_off > 1
    assert huge["2.Dense.bias"].verdict() in ("ok", "round-off")
    assert all(np.isfinite(check.relative_error) for check in huge.values())
    assert check_network(network, "binary_cross_entropy", X, Y, l2=1e-4) == {
        key: check.relative_error for key, check in huge.items()
    }


def test_only_an_error_round_off_can_explain_is_called_round_off() -> None:
    """A wrong gradient (5% off) on a layer whose round-off estimate is above the
    tolerance still FAILS: round-off explains errors near its size, not far above."""
    from handnet.gradcheck import ROUND_OFF_MARGIN, ParameterCheck

    assert ParameterCheck(relative_error=4.8e-2, round_off=1e-5).verdict() == "FAILED"
    assert ParameterCheck(relative_error=4.4e-6, round_off=1e-5).verdict() == "round-off"
    limit = ROUND_OFF_MARGIN * 1e-5
    assert ParameterCheck(relative_error=limit * 1.01, round_off=1e-5).verdict() == "FAILED"
    assert ParameterCheck(relative_error=1e-7, round_off=1e-5).verdict() == "ok"
    assert ParameterCheck(relative_error=1e-5, round_off=1e-9).verdict() == "FAILED"
