"""Losses from logits: values, gradients, weights, mean semantics, stability, dtypes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from handnet import losses
from handnet.gradcheck import check_loss

TOL = 1e-6
N = 8


def naive_sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def make(kind: str, rng: np.random.Generator, n: int = N) -> tuple[np.ndarray, np.ndarray]:
    """Moderate logits and matching targets for each loss."""
    if kind == "bce":
        return 2.0 * rng.standard_normal((n, 1)), (rng.random((n, 1)) < 0.5).astype(float)
    if kind == "bce_soft":  # probabilities as targets, several outputs (multi-label)
        return 2.0 * rng.standard_normal((n, 3)), rng.random((n, 3))
    if kind == "ce":
        return 2.0 * rng.standard_normal((n, 4)), np.eye(4)[rng.integers(0, 4, n)]
    if kind == "ce_soft":
        return 2.0 * rng.standard_normal((n, 4)), rng.dirichlet(np.ones(4), size=n)
    if kind == "mse":
        return rng.standard_normal((n, 2)), rng.standard_normal((n, 2))
    raise AssertionError(kind)


LOSS_OF = {
    "bce": losses.BinaryCrossEntropy(),
    "bce_soft": losses.BinaryCrossEntropy(),
    "ce": losses.SoftmaxCrossEntropy(),
    "ce_soft": losses.SoftmaxCrossEntropy(),
    "mse": losses.MeanSquaredError(),
}
KINDS = list(LOSS_OF)


def naive_per_sample(kind: str, z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The textbook formulas, through probabilities (fine for moderate logits)."""
    if kind.startswith("bce"):
        p = naive_sigmoid(z)
        return np.sum(-y * np.log(p) - (1 - y) * np.log(1 - p), axis=1)
    if kind.startswith("ce"):
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        return -np.sum(y * np.log(p), axis=1)
    return 0.5 * np.sum((z - y) ** 2, axis=1)


@pytest.mark.parametrize("kind", KINDS)
def test_values_match_naive_formulas(kind: str, rng: np.random.Generator) -> None:
    z, y = make(kind, rng)
    loss = LOSS_OF[kind]
    expected = naive_per_sample(kind, z, y).mean()
    value, _ = loss(z, y)
    assert value == pytest.approx(expected, rel=1e-12)
    assert loss.value(z, y) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_weighted_values_match_naive_formulas(kind: str, rng: np.random.Generator) -> None:
    z, y = make(kind, rng)
    w = rng.uniform(0.1, 3.0, N)
    expected = np.sum(w * naive_per_sample(kind, z, y)) / np.sum(w)
    loss = LOSS_OF[kind]
    assert loss(z, y, w)[0] == pytest.approx(expected, rel=1e-12)
    assert loss.value(z, y, w) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_gradients_match_finite_differences(
    kind: str, weighted: bool, rng: np.random.Generator
) -> None:
    z, y = make(kind, rng)
    w = rng.uniform(0.1, 3.0, N) if weighted else None
    assert check_loss(LOSS_OF[kind], z, y, w) <= TOL


@pytest.mark.parametrize("kind", KINDS)
def test_gradient_is_prediction_minus_target_over_n(kind: str, rng: np.random.Generator) -> None:
    z, y = make(kind, rng)
    loss = LOSS_OF[kind]
    _, grad = loss(z, y)
    if kind.startswith("bce"):
        prediction = naive_sigmoid(z)
    elif kind.startswith("ce"):
        prediction = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    else:
        prediction = z
    np.testing.assert_allclose(grad, (prediction - y) / N, rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(loss.link(z), prediction, rtol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_sample_weight_two_equals_repeating_the_sample(kind: str, rng: np.random.Generator) -> None:
    z, y = make(kind, rng)
    loss = LOSS_OF[kind]
    w = np.ones(N)
    w[3] = 2.0
    value_w, grad_w = loss(z, y, w)
    rows = [*range(N), 3]
    value_r, grad_r = loss(z[rows], y[rows])
    assert value_w == pytest.approx(value_r, rel=1e-13)
    # The repeated sample's gradient is split over its two copies.
    merged = grad_r[:N].copy()
    merged[3] += grad_r[N]
    np.testing.assert_allclose(grad_w, merged, rtol=1e-13, atol=1e-17)


@pytest.mark.parametrize("kind", KINDS)
def test_uniform_weights_change_nothing(kind: str, rng: np.random.Generator) -> None:
    z, y = make(kind, rng)
    loss = LOSS_OF[kind]
    value, grad = loss(z, y)
    value_w, grad_w = loss(z, y, np.full(N, 7.5))
    assert value_w == pytest.approx(value, rel=1e-13)
    np.testing.assert_allclose(grad_w, grad, rtol=1e-13)


@pytest.mark.parametrize("kind", KINDS)
def test_mean_not_sum_duplicated_batch(kind: str, rng: np.random.Generator) -> None:
    """Stacking the batch twice leaves the loss and the per-row gradient unchanged."""
    z, y = make(kind, rng)
    loss = LOSS_OF[kind]
    value, grad = loss(z, y)
    value2, grad2 = loss(np.vstack([z, z]), np.vstack([y, y]))
    assert value2 == pytest.approx(value, rel=1e-13)
    # d(mean over 2n)/dz_i = grad_i / 2 for each of the two copies: their sum is grad_i.
    np.testing.assert_allclose(grad2[:N] + grad2[N:], grad, rtol=1e-13, atol=1e-17)
    np.testing.assert_allclose(grad2[:N], grad / 2, rtol=1e-13, atol=1e-17)


def test_bce_gradient_formula_exact(rng: np.random.Generator) -> None:
    z = rng.uniform(-5, 5, (N, 1))
    y = (rng.random((N, 1)) < 0.5).astype(float)
    _, grad = losses.binary_cross_entropy(z, y)
    np.testing.assert_allclose(grad, (naive_sigmoid(z) - y) / N, rtol=1e-13, atol=1e-17)


def test_bce_accepts_1d_logits_with_weights(rng: np.random.Generator) -> None:
    """Regression: weighting the rows of 1-D logits used to broadcast to (n, n) and fail."""
    z = rng.standard_normal(N)
    y = (rng.random(N) < 0.5).astype(float)
    w = rng.uniform(0.5, 2.0, N)
    value, grad = losses.binary_cross_entropy(z, y, w)
    value2, grad2 = losses.binary_cross_entropy(z[:, None], y[:, None], w)
    assert grad.shape == (N,)
    assert value == pytest.approx(value2, rel=1e-14)
    np.testing.assert_allclose(grad, grad2[:, 0], rtol=1e-14)
    assert check_loss("binary_cross_entropy", z, y, w) <= TOL


@pytest.mark.parametrize("kind", ["bce", "ce", "mse"])
def test_mismatched_target_shape_raises(kind: str, rng: np.random.Generator) -> None:
    z, y = make(kind, rng)
    loss = LOSS_OF[kind]
    with pytest.raises(ValueError, match="shape"):
        loss(z, y[:, 0])
    with pytest.raises(ValueError, match="shape"):
        loss.value(z, y[:, 0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["bce", "ce"])
def test_huge_logits_are_finite(kind: str, dtype: type) -> None:
    loss = LOSS_OF[kind]
    if kind == "bce":
        z = np.array([[1e4], [-1e4], [1e4], [-1e4]], dtype=dtype)
        y = np.array([[1.0], [0.0], [0.0], [1.0]], dtype=dtype)
        expected = 2e4 / 4  # two right (loss 0), two wrong by 1e4
        expected_grad = np.array([[0.0], [0.0], [1.0], [-1.0]]) / 4
    else:
        z = np.array([[1e4, -1e4, 0.0], [1e4, -1e4, 0.0]], dtype=dtype)
        y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=dtype)
        expected = 2e4 / 2
        expected_grad = np.array([[0.0, 0.0, 0.0], [1.0, -1.0, 0.0]]) / 2
    value, grad = loss(z, y)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    assert value == pytest.approx(expected, rel=1e-6)
    assert loss.value(z, y) == pytest.approx(expected, rel=1e-6)
    assert grad.dtype == dtype
    np.testing.assert_allclose(grad, expected_grad, atol=1e-7)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("target_dtype", [np.float32, np.float64])
def test_float32_preserved(kind: str, target_dtype: type, rng: np.random.Generator) -> None:
    z, y = make(kind, rng)
    loss = LOSS_OF[kind]
    w = rng.uniform(0.5, 2.0, N)
    for weights in (None, w):
        value, grad = loss(z.astype(np.float32), y.astype(target_dtype), weights)
        assert grad.dtype == np.float32
        assert isinstance(value, float)
        assert value == pytest.approx(loss.value(z, y, weights), rel=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_inputs_not_modified(kind: str, rng: np.random.Generator) -> None:
    z, y = make(kind, rng)
    w = rng.uniform(0.5, 2, N)
    z0, y0, w0 = z.copy(), y.copy(), w.copy()
    for weights in (None, w):
        _, grad = LOSS_OF[kind](z, y, weights)
        grad += 1.0  # the gradient is a fresh array: writing to it touches no input
    np.testing.assert_array_equal(z, z0)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(w, w0)


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("binary_cross_entropy", losses.BinaryCrossEntropy),
        ("softmax_cross_entropy", losses.SoftmaxCrossEntropy),
        ("mean_squared_error", losses.MeanSquaredError),
    ],
)
def test_get_loss(name: str, cls: Callable[[], losses.Loss]) -> None:
    assert isinstance(losses.get_loss(name), cls)
    obj = cls()
    assert losses.get_loss(obj) is obj


def test_get_loss_unknown() -> None:
    with pytest.raises(ValueError, match="unknown loss"):
        losses.get_loss("hinge")
