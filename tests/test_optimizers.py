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

from handnet.optim.optimizers import (
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
    SklearnAdam,
    SklearnSGD,
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


def ref_sklearn_sgd(lrs: list[float], mu: float, nesterov: bool) -> list[float]:
    """scikit-learn's SGDOptimizer: v = mu v - lr g; update v, or mu v - lr g (Nesterov)."""
    th, v = list(THETA0), [0.0, 0.0]
    for lr in lrs:
        g = gradient(th)
        for i in range(2):
            v[i] = mu * v[i] - lr * g[i]
            th[i] += mu * v[i] - lr * g[i] if nesterov else v[i]
    return th


def ref_sklearn_adam(lr: float, b1: float, b2: float, eps: float) -> list[float]:
    """scikit-learn's AdamOptimizer: eps added to the uncorrected sqrt(v)."""
    th, m, v = list(THETA0), [0.0, 0.0], [0.0, 0.0]
    for t in range(1, STEPS + 1):
        g = gradient(th)
        lr_t = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        for i in range(2):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            th[i] -= lr_t * m[i] / (math.sqrt(v[i]) + eps)
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
    "sklearn_sgd": (
        lambda: SklearnSGD(0.1, 0.8, nesterov=False),
        lambda: ref_sklearn_sgd([0.1] * STEPS, 0.8, False),
    ),
    "sklearn_nesterov": (
        lambda: SklearnSGD(0.1, 0.8, nesterov=True),
        lambda: ref_sklearn_sgd([0.1] * STEPS, 0.8, True),
    ),
    "sklearn_adam": (
        lambda: SklearnAdam(0.1, 0.8, 0.9, eps=0.05),
        lambda: ref_sklearn_adam(0.1, 0.8, 0.9, 0.05),
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


def test_sklearn_forms_hand_computed_first_step() -> None:
    """One step from θ = 0 with g = 2 (η = 0.1), worked out by hand.

    SklearnAdam (β1 = 0.5, β2 = 0.75, ε = 0.5): m = 0.5·2 = 1, v = 0.25·4 = 1,
    η_t = 0.1·√0.25/0.5 = 0.1, Δθ = -0.1·1/(1 + 0.5) = -1/15 (PyTorch's Adam:
    -0.1·2/(2 + 0.5) = -0.08). SklearnSGD (μ = 0.5): v = -0.2, Δθ = v = -0.2, or
    with Nesterov μv - ηg = -0.1 - 0.2 = -0.3.
    """
    theta = np.array([0.0])
    SklearnAdam(0.1, beta1=0.5, beta2=0.75, eps=0.5).step([(theta, np.array([2.0]))])
    assert theta[0] == pytest.approx(-1.0 / 15.0, rel=1e-15)
    theta = np.array([0.0])
    Adam(0.1, beta1=0.5, beta2=0.75, eps=0.5).step([(theta, np.array([2.0]))])
    assert theta[0] == pytest.approx(-0.08, rel=1e-15)
    for nesterov, expected in ((False, -0.2), (True, -0.3)):
        theta = np.array([0.0])
        SklearnSGD(0.1, momentum=0.5, nesterov=nesterov).step([(theta, np.array([2.0]))])
        assert theta[0] == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sklearn_sgd_keeps_the_learning_rate_inside_the_velocity(nesterov: bool) -> None:
    """A learning rate changed between steps scales only the new gradient.

    With a constant rate the rule is PyTorch's (Momentum / Nesterov); with a rate
    that changes, the two differ, and SklearnSGD follows scikit-learn's formula.
    """
    rates = [0.1, 0.02, 0.5]
    optimizer = SklearnSGD(rates[0], 0.8, nesterov=nesterov)
    theta = np.array(THETA0)
    for rate in rates:
        optimizer.learning_rate = rate
        optimizer.step([(theta, np.array(gradient(theta.tolist())))])
    np.testing.assert_allclose(theta, ref_sklearn_sgd(rates, 0.8, nesterov), rtol=1e-13)
    torch_form = Nesterov(0.1, 0.8) if nesterov else Momentum(0.1, 0.8)
    np.testing.assert_allclose(
        run(torch_form), ref_sklearn_sgd([0.1] * STEPS, 0.8, nesterov), rtol=1e-13
    )
    other = Nesterov(rates[0], 0.8) if nesterov else Momentum(rates[0], 0.8)
    theta_other = np.array(THETA0)
    for rate in rates:
        other.learning_rate = rate
        other.step([(theta_other, np.array(gradient(theta_other.tolist())))])
    assert not np.allclose(theta_other, theta)


def test_lbfgs_first_step_and_evaluation_limit() -> None:
    """``first_step="inverse_l2"`` tries 1/|g|_2 first (SciPy's); ``max_evaluations`` stops."""
    points: list[np.ndarray] = []

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        points.append(x.copy())
        grad = np.array(gradient(x.tolist()))
        return 0.5 * float(x @ np.array(A) @ x) - float(np.dot(B, x)), grad

    x0 = np.array(THETA0)
    g0 = np.array(gradient(THETA0))
    for first_step, step in (
        ("unit_l1", min(1.0, 1.0 / np.abs(g0).sum())),
        ("inverse_l2", 1.0 / np.linalg.norm(g0)),
    ):
        points.clear()
        solver = LBFGS(first_step=first_step)
        _, _, _, converged = solver.minimize(fun, x0, max_iter=50, gtol=1e-10)
        assert converged and solver.stop_reason in ("gtol", "ftol", "line_search")
        np.testing.assert_allclose(points[1], x0 - step * g0, rtol=1e-15)
    solver = LBFGS()
    _, _, _, converged = solver.minimize(fun, x0, max_iter=50, gtol=0.0, max_evaluations=2)
    assert not converged and solver.stop_reason == "max_evaluations"
    assert solver.iterations <= 2 < solver.n_evaluations
    with pytest.raises(ValueError, match="first_step"):
        LBFGS(first_step="unit")


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
        lambda: SklearnSGD(0.1, momentum=1.5),
        lambda: SklearnSGD(0.0),
        lambda: SklearnAdam(beta1=1.0),
        lambda: SklearnAdam(eps=-1.0),
    ],
)
def test_bad_hyperparameters_raise(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        make()


def test_get_optimizer() -> None:
    for name, cls in OPTIMIZERS.items():
        optimizer = get_optimizer(name, 0.25)
        assert isinstance(optimizer, cls)
        # A full-batch optimizer's line search picks its steps: no rate to give it.
        assert optimizer.learning_rate == (1.0 if cls.full_batch else 0.25)
    assert isinstance(get_optimizer("lbfgs", 0.1), LBFGS)
    adam = Adam()
    assert get_optimizer(adam, 0.5) is adam
    with pytest.raises(ValueError, match="unknown optimizer"):
        get_optimizer("adadelta", 0.1)


def test_repr() -> None:
    assert repr(SGD(0.5)) == "SGD(learning_rate=0.5)"


def test_lbfgs_is_a_registered_full_batch_optimizer_not_a_special_case() -> None:
    """L-BFGS is one optimizer class among the others: registered, a kind (full batch)."""
    from handnet.optim.optimizers import FullBatchOptimizer, is_full_batch

    assert OPTIMIZERS["lbfgs"] is LBFGS and issubclass(LBFGS, FullBatchOptimizer)
    assert is_full_batch("lbfgs") and is_full_batch(LBFGS()) and not is_full_batch("adam")
    with pytest.raises(TypeError, match="minimises the full-batch objective"):
        LBFGS().step([(np.zeros(2), np.zeros(2))])


def test_lbfgs_state_round_trips_and_is_checked() -> None:
    rng = np.random.default_rng(0)
    A = rng.standard_normal((6, 6))
    A = A @ A.T + np.eye(6)

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        return 0.5 * float(x @ A @ x), A @ x

    first = LBFGS(memory=3)
    first.minimize(fun, np.ones(6), max_iter=4)
    state = first.state_dict()
    assert state["s"].shape == (3, 6)
    second = LBFGS(memory=3)
    second.check_state_dict(state, 6, np.dtype(np.float64))
    second.load_state_dict(state)
    x1 = first.minimize(fun, np.ones(6) * 0.5, max_iter=3)[0]
    x2 = second.minimize(fun, np.ones(6) * 0.5, max_iter=3)[0]
    np.testing.assert_array_equal(x1, x2)  # the same curvature pairs: the same steps
    for bad, match in [
        ({**state, "s": state["s"][:, :5]}, "s and y differ|columns"),
        ({**state, "y": np.full((3, 6), np.nan)}, "NaN"),
        ({**state, "s": np.zeros((4, 6)), "y": np.zeros((4, 6))}, "more than memory"),
        ({**state, "n_evaluations": -1}, "n_evaluations"),
    ]:
        with pytest.raises(ValueError, match=match):
            second.check_state_dict(bad, 6, np.dtype(np.float64))
