"""Penalties: values, gradients, the registry, and the estimators' ``penalty``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from handnet import Activation, Dense, Sequential
from handnet.gradcheck import gradcheck
from handnet.nn.penalties import (
    L1,
    L2,
    PENALTIES,
    add_l2,
    as_penalty,
    get_penalty,
    l2_penalty,
    l2_penalty_gradient,
)

TOL = 1e-6


def test_value_by_hand() -> None:
    w = np.array([1.0, -2.0, 3.0])
    assert l2_penalty(w, 0.5) == pytest.approx(0.5 / 2 * 14.0, rel=1e-15)
    assert l2_penalty(w, 0.0) == 0.0
    np.testing.assert_array_equal(l2_penalty_gradient(w, 0.5), [0.5, -1.0, 1.5])


@pytest.mark.parametrize("alpha", [1e-3, 0.3, 10.0])
def test_gradient_matches_finite_differences(alpha: float, rng: np.random.Generator) -> None:
    w = rng.standard_normal(17)
    result = gradcheck(lambda v: (l2_penalty(v, alpha), l2_penalty_gradient(v, alpha)), w)
    assert result.passed(TOL)


@pytest.mark.parametrize("alpha", [1e-3, 0.3])
def test_add_l2_value_and_gradient(alpha: float, rng: np.random.Generator) -> None:
    w = rng.standard_normal(9)
    base = rng.standard_normal(9)

    def fun(v: np.ndarray) -> tuple[float, np.ndarray]:
        grads = np.zeros_like(v)
        return add_l2(v, grads, alpha), grads

    assert gradcheck(fun, w).passed(TOL)
    grads = base.copy()
    value = add_l2(w, grads, alpha)
    assert value == pytest.approx(alpha / 2 * np.sum(w**2), rel=1e-14)
    np.testing.assert_allclose(grads, base + alpha * w, rtol=1e-14)  # added, in place


def test_gradient_step_shrinks_weights(rng: np.random.Generator) -> None:
    """The gradient points away from 0 (same sign as w): a descent step moves towards 0."""
    w = rng.standard_normal(50)
    g = l2_penalty_gradient(w, 0.1)
    assert np.all(np.sign(g) == np.sign(w))
    stepped = w - 0.5 * g
    assert np.all(np.abs(stepped) < np.abs(w))
    assert l2_penalty(stepped, 0.1) < l2_penalty(w, 0.1)


def test_zero_alpha_leaves_gradients_alone(rng: np.random.Generator) -> None:
    w, g = rng.standard_normal(5), rng.standard_normal(5)
    g0 = g.copy()
    assert add_l2(w, g, 0.0) == 0.0
    np.testing.assert_array_equal(g, g0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(dtype: type, rng: np.random.Generator) -> None:
    w = rng.standard_normal(5).astype(dtype)
    g = np.zeros(5, dtype=dtype)
    add_l2(w, g, 0.1)
    assert g.dtype == dtype
    assert l2_penalty_gradient(w, 0.1).dtype == dtype


def test_only_weights_of_a_network_are_penalised() -> None:
    network = Sequential([Dense(3, 4, random_state=0), Activation("tanh"), Dense(4, 2)])
    network.flat_parameters[...] = 1.0  # biases too
    network.flat_gradients[...] = 0.0
    value = add_l2(network.weights, network.weight_gradients, 2.0)
    n_weights = 3 * 4 + 4 * 2
    assert value == pytest.approx(0.5 * 2.0 * n_weights)  # the 6 biases count for nothing
    for layer in network.layers:
        if isinstance(layer, Dense):
            np.testing.assert_array_equal(layer.grad_weights, 2.0)
            np.testing.assert_array_equal(layer.grad_bias, 0.0)


# --- the penalty classes and their registry ----------------------------------------------


@pytest.mark.parametrize("name", sorted(PENALTIES))
@pytest.mark.parametrize("alpha", [1e-3, 0.7])
def test_every_registered_penalty_matches_finite_differences(
    name: str, alpha: float, rng: np.random.Generator
) -> None:
    penalty = PENALTIES[name](alpha)
    # Away from 0, where |w| has a derivative.
    w = rng.standard_normal(13)
    w += np.sign(w) * 0.1

    def fun(v: np.ndarray) -> tuple[float, np.ndarray]:
        grads = np.zeros_like(v)
        return penalty.add_to(v, grads), grads

    assert gradcheck(fun, w).passed(TOL)
    assert penalty.value(w) == pytest.approx(fun(w)[0], rel=1e-15)


def test_l1_by_hand_and_its_subgradient_at_zero() -> None:
    w = np.array([1.5, -2.0, 0.0, 0.25])
    penalty = L1(0.5)
    assert penalty.value(w) == pytest.approx(0.5 * 3.75, rel=1e-15)
    np.testing.assert_array_equal(penalty.gradient(w), [0.5, -0.5, 0.0, 0.5])
    grads = np.ones(4)
    penalty.add_to(w, grads)
    np.testing.assert_array_equal(grads, [1.5, 0.5, 1.0, 1.5])  # added in place


def test_l2_class_is_the_l2_functions() -> None:
    w = np.array([1.0, -2.0, 3.0])
    assert L2(0.5).value(w) == l2_penalty(w, 0.5)
    np.testing.assert_array_equal(L2(0.5).gradient(w), l2_penalty_gradient(w, 0.5))


@pytest.mark.parametrize("alpha", [-1.0, float("nan"), float("inf")])
def test_a_bad_strength_is_refused(alpha: float) -> None:
    with pytest.raises(ValueError, match="alpha must be a finite number >= 0"):
        L2(alpha)


def test_an_unknown_penalty_name_lists_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown penalty 'l3'.*'l1'.*'l2'"):
        get_penalty("l3", 0.1)
    assert get_penalty(None, 0.1) is None
    assert get_penalty("l1", 0.1) == L1(0.1)
    assert as_penalty(0.25) == L2(0.25)


def test_a_step_applies_its_penalty_to_weights_only(rng: np.random.Generator) -> None:
    from handnet.nn.losses import MeanSquaredError
    from handnet.optim.optimizers import SGD
    from handnet.training.step import Step

    network = Sequential([Dense(3, 2, random_state=0)])
    X = rng.standard_normal((5, 3))
    Y = rng.standard_normal((5, 2))
    values = {}
    grads = {}
    for penalty in (None, L1(0.3)):
        step = Step(network, MeanSquaredError(), SGD(0.1), penalty, None)
        values[repr(penalty)] = step.compute_gradients(X, Y)
        grads[repr(penalty)] = [g.copy() for g in network.gradients()]
    weights, _ = network.parameters()
    difference = values["L1(alpha=0.3)"] - values["None"]
    assert difference == pytest.approx(0.3 * np.abs(weights).sum(), rel=1e-12)
    np.testing.assert_allclose(
        grads["L1(alpha=0.3)"][0] - grads["None"][0], 0.3 * np.sign(weights), rtol=1e-12
    )
    np.testing.assert_array_equal(grads["L1(alpha=0.3)"][1], grads["None"][1])  # no bias term
    with pytest.raises(TypeError, match="lean kernels apply only an L2 penalty"):
        _ = Step(network, MeanSquaredError(), SGD(0.1), L1(0.3), None).l2


# --- the estimators' penalty hyperparameter ----------------------------------------------


def test_an_l1_penalty_makes_an_estimator_s_weights_sparser(tmp_path: Any) -> None:
    from handnet import LogisticRegression, load, save

    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 12))
    y = (X[:, 0] - 2 * X[:, 1] > 0).astype(int)  # two of the twelve features matter
    common = {"alpha": 0.02, "learning_rate": 0.5, "max_iter": 400, "tol": None}
    l1 = LogisticRegression(penalty="l1", **common).fit(X, y)
    l2 = LogisticRegression(penalty="l2", **common).fit(X, y)
    none = LogisticRegression(penalty=None, **common).fit(X, y)
    noise_l1 = np.abs(l1.coef_[0, 2:]).mean()
    assert noise_l1 < 0.5 * np.abs(l2.coef_[0, 2:]).mean()
    assert noise_l1 < 0.5 * np.abs(none.coef_[0, 2:]).mean()
    assert l1.score(X, y) > 0.95
    # The objective recorded is the data loss plus the L1 term.
    assert l1.history_.loss[-1] > l1.history_.data_loss[-1]

    path = tmp_path / "l1.npz"
    save(l1, path)
    loaded = load(path)
    assert loaded.penalty == "l1"
    np.testing.assert_array_equal(loaded.predict_proba(X), l1.predict_proba(X))


def test_an_unknown_penalty_is_refused_before_training() -> None:
    from handnet import MLPClassifier

    X = np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"penalty must be None or one of \['l2', 'l1'\]"):
        MLPClassifier(penalty="l3").fit(X, [0, 1, 0, 1])


def test_the_seed_kernels_step_aside_for_another_penalty() -> None:
    """The lean logistic kernels know only L2: with L1 the generic step must run."""
    from handnet import LogisticRegression

    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 3))
    y = (X[:, 0] > 0).astype(int)
    kwargs = {"alpha": 0.1, "learning_rate": 0.1, "max_iter": 5, "tol": None, "batch_size": None}
    model = LogisticRegression(penalty="l1", **kwargs).fit(X, y)
    # One full-batch GD step by hand, from zero weights: w -= lr * (grad + alpha * sign(w)).
    w = np.zeros(3)
    b = 0.0
    for _ in range(5):
        p = 1 / (1 + np.exp(-(X @ w + b)))
        w = w - 0.1 * (X.T @ (p - y) / 50 + 0.1 * np.sign(w))
        b = b - 0.1 * np.mean(p - y)
    np.testing.assert_allclose(model.coef_[0], w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.intercept_[0], b, rtol=1e-10, atol=1e-12)
