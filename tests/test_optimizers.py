"""Update rules against the formulas, computed by hand (scalar Python) in the test.

The problem is a fixed 2-parameter quadratic f(θ) = ½ θᵀAθ - bᵀθ whose gradient
Aθ - b is computed here. Each optimizer takes three steps; the expected parameters
come from a plain-Python transcription of the documented formula (PyTorch's forms).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from handnet.optimizers import (
    LBFGS,
    OPTIMIZERS,
    SGD,
    AdaGrad,
    Adam,
    AdamW,
    Momentum,
    Nesterov,
    Optimizer,
    RMSProp,
    get_optimizer,
)

A = [[3.0, 0.5], [0.5, 1.0]]
B = [1.0, -2.0]
THETA0 = [0.7, -1.3]
STEPS = 3


def gradient(theta: list[float]) -> list[float]:
    return [A[i][0] * theta[0] + A[i][1] * theta[1] - B[i] for i in range(2)]


def run(optimizer: Optimizer, steps: int = STEPS, dtype: type = np.float64) -> np.ndarray:
    """Let the optimizer take ``steps`` steps on the quadratic (params updated in place)."""
    theta = np.array(THETA0, dtype=dtype)
    for _ in range(steps):
        grad = np.array(gradient(theta.tolist()), dtype=dtype)
        optimizer.step([(theta, grad)])
    return theta


# --- the formulas, by hand -------------------------------------------------------------


def ref_sgd(lr: float) -> list[float]:
    th = list(THETA0)
    for _ in range(STEPS):
        g = gradient(th)
        th = [th[i] - lr * g[i] for i in range(2)]
    return th


def ref_momentum(lr: float, mu: float, nesterov: bool) -> list[float]:
    th, v = list(THETA0), [0.0, 0.0]
    for _ in range(STEPS):
        g = gradient(th)
        for i in range(2):
            v[i] = mu * v[i] + g[i]
            direction = g[i] + mu * v[i] if nesterov else v[i]
            th[i] = th[i] - lr * direction
    return th


def ref_adagrad(lr: float, eps: float) -> list[float]:
    th, s = list(THETA0), [0.0, 0.0]
    for _ in range(STEPS):
        g = gradient(th)
        for i in range(2):
            s[i] += g[i] ** 2
            th[i] -= lr * g[i] / (math.sqrt(s[i]) + eps)
    return th


def ref_rmsprop(lr: float, rho: float, eps: float) -> list[float]:
    th, s = list(THETA0), [0.0, 0.0]
    for _ in range(STEPS):
        g = gradient(th)
        for i in range(2):
            s[i] = rho * s[i] + (1 - rho) * g[i] ** 2
            th[i] -= lr * g[i] / (math.sqrt(s[i]) + eps)
    return th


def ref_adam(lr: float, b1: float, b2: float, eps: float, weight_decay: float = 0.0) -> list[float]:
    th, m, v = list(THETA0), [0.0, 0.0], [0.0, 0.0]
    for t in range(1, STEPS + 1):
        g = gradient(th)  # at the parameters before the decay, as in a training step
        for i in range(2):
            th[i] = th[i] - lr * weight_decay * th[i]  # AdamW's decoupled decay
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            m_hat = m[i] / (1 - b1**t)
            v_hat = v[i] / (1 - b2**t)
            th[i] -= lr * m_hat / (math.sqrt(v_hat) + eps)
    return th


CASES: dict[str, tuple[Callable[[], Optimizer], Callable[[], list[float]]]] = {
    "sgd": (lambda: SGD(0.1), lambda: ref_sgd(0.1)),
    "momentum": (lambda: Momentum(0.1, 0.8), lambda: ref_momentum(0.1, 0.8, False)),
    "nesterov": (lambda: Nesterov(0.1, 0.8), lambda: ref_momentum(0.1, 0.8, True)),
    "adagrad": (lambda: AdaGrad(0.3, eps=1e-3), lambda: ref_adagrad(0.3, 1e-3)),
    "rmsprop": (lambda: RMSProp(0.05, rho=0.9, eps=1e-3), lambda: ref_rmsprop(0.05, 0.9, 1e-3)),
    # A large eps tells "eps added to the bias-corrected sqrt(v_hat)" (PyTorch) apart
    # from "added to the uncorrected sqrt(v)" (scikit-learn).
    "adam": (lambda: Adam(0.1, 0.8, 0.9, eps=0.05), lambda: ref_adam(0.1, 0.8, 0.9, 0.05)),
    "adamw": (
        lambda: AdamW(0.1, 0.8, 0.9, eps=0.05, weight_decay=0.3),
        lambda: ref_adam(0.1, 0.8, 0.9, 0.05, weight_decay=0.3),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_three_steps_match_the_formula(name: str) -> None:
    make, reference = CASES[name]
    optimizer = make()
    theta = run(optimizer)
    np.testing.assert_allclose(theta, reference(), rtol=1e-12, atol=1e-14)
    assert optimizer.iterations == STEPS
    assert not np.allclose(theta, THETA0)  # it moved


def test_momentum_and_nesterov_differ_and_adamw_differs_from_adam() -> None:
    """Guards against a reference that would pass for the wrong rule."""
    assert not np.allclose(ref_momentum(0.1, 0.8, False), ref_momentum(0.1, 0.8, True))
    assert not np.allclose(ref_adam(0.1, 0.8, 0.9, 0.05), ref_adam(0.1, 0.8, 0.9, 0.05, 0.3))


def test_adam_first_step_is_learning_rate_times_sign() -> None:
    """With bias correction, m_hat = g and v_hat = g² after one step: |Δθ| = η|g|/(|g|+ε)."""
    theta = np.array([0.0, 0.0])
    grad = np.array([1e-4, -50.0])
    Adam(0.01, eps=1e-12).step([(theta, grad)])
    np.testing.assert_allclose(theta, [-0.01, 0.01], rtol=1e-7)


def test_adamw_decay_with_zero_gradient() -> None:
    """With g = 0 only the decay acts: θ ← (1 - ηλ) θ at every step."""
    theta = np.array([2.0, -4.0])
    optimizer = AdamW(0.1, weight_decay=0.5)
    for _ in range(3):
        optimizer.step([(theta, np.zeros(2))])
    np.testing.assert_allclose(theta, np.array([2.0, -4.0]) * 0.95**3, rtol=1e-14)


@pytest.mark.parametrize("name", list(CASES))
def test_float32_params_stay_float32(name: str) -> None:
    make, reference = CASES[name]
    optimizer = make()
    theta = run(optimizer, dtype=np.float32)
    assert theta.dtype == np.float32
    for state in optimizer.state:
        for value in state.values():
            assert value.dtype == np.float32
    np.testing.assert_allclose(theta, reference(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list(CASES))
def test_state_dict_round_trip(name: str) -> None:
    make, _ = CASES[name]
    first = make()
    theta = run(first, steps=2)
    saved = first.state_dict()
    # The saved state is a copy: further steps of the original do not change it.
    theta_a = theta.copy()
    theta_b = theta.copy()
    second = make()
    second.load_state_dict(saved)
    assert second.iterations == 2
    for _ in range(3):
        first.step([(theta_a, np.array(gradient(theta_a.tolist())))])
        second.step([(theta_b, np.array(gradient(theta_b.tolist())))])
    np.testing.assert_array_equal(theta_a, theta_b)
    # Loading the same state again replays the same steps.
    third = make()
    third.load_state_dict(saved)
    theta_c = theta.copy()
    for _ in range(3):
        third.step([(theta_c, np.array(gradient(theta_c.tolist())))])
    np.testing.assert_array_equal(theta_a, theta_c)


def test_state_dict_without_scratch_buffer() -> None:
    optimizer = Adam()
    run(optimizer, steps=1)
    assert set(optimizer.state_dict()["state"][0]) == {"m", "v"}


def test_reset_and_parameter_count_mismatch() -> None:
    optimizer = Momentum(0.1)
    run(optimizer, steps=2)
    with pytest.raises(ValueError, match="reset"):
        optimizer.step([(np.zeros(2), np.zeros(2)), (np.zeros(1), np.zeros(1))])
    optimizer.reset()
    assert optimizer.iterations == 0 and optimizer.state == []
    np.testing.assert_allclose(run(optimizer), ref_momentum(0.1, 0.9, False), rtol=1e-12)


def test_several_parameters_are_updated_independently() -> None:
    W, b = np.ones((2, 2)), np.ones(2)
    gW, gb = np.full((2, 2), 0.5), np.array([1.0, -1.0])
    Adam(0.1).step([(W, gW), (b, gb)])
    np.testing.assert_allclose(W, 0.9, rtol=1e-6)
    np.testing.assert_allclose(b, [0.9, 1.1], rtol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda: SGD(0.0),
        lambda: SGD(-0.1),
        lambda: SGD(float("nan")),
        lambda: SGD(float("inf")),
        lambda: Adam(learning_rate=0.0),
        lambda: Momentum(0.1, momentum=1.0),
        lambda: Momentum(0.1, momentum=-0.1),
        lambda: Nesterov(0.1, momentum=1.5),
        lambda: RMSProp(0.1, rho=1.0),
        lambda: RMSProp(0.1, eps=-1e-8),
        lambda: AdaGrad(0.1, eps=-1.0),
        lambda: AdaGrad(0.1, eps=float("nan")),
        lambda: Adam(beta1=1.0),
        lambda: Adam(beta2=-0.1),
        lambda: Adam(eps=float("inf")),
        lambda: AdamW(weight_decay=-0.1),
        lambda: AdamW(weight_decay=float("nan")),
        lambda: LBFGS(memory=0),
        lambda: LBFGS(c1=0.9, c2=0.5),
        lambda: LBFGS(c1=0.0),
        lambda: LBFGS(c2=1.0),
        lambda: LBFGS(max_line_search=0),
    ],
)
def test_bad_hyperparameters_raise(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        make()


def test_get_optimizer() -> None:
    for name, cls in OPTIMIZERS.items():
        optimizer = get_optimizer(name, 0.25)
        assert isinstance(optimizer, cls)
        assert optimizer.learning_rate == 0.25
    assert isinstance(get_optimizer("lbfgs", 0.1), LBFGS)
    adam = Adam()
    assert get_optimizer(adam, 0.5) is adam
    with pytest.raises(ValueError, match="unknown optimizer"):
        get_optimizer("adadelta", 0.1)


def test_repr() -> None:
    assert repr(SGD(0.5)) == "SGD(learning_rate=0.5)"
