"""Losses from logits: values, gradients, weights, mean semantics, stability, dtypes."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from handnet import losses
from handnet.gradcheck import check_loss, gradcheck

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


# Confident predictions, right and wrong, in both tails: z = 25 and 33.3 are where
# (log1p(e) + max(z, 0)) - y z loses log1p(e)'s digits (33.3 gave 0 for 3.45e-15).
_TAIL_LOGITS = np.array(
    [-745.0, -40.0, -33.3, -25.0, -5.0, -1e-3, 0.0, 1e-3, 5.0, 25.0, 33.3, 40.0]
)


def _exact_bce(z: float, y: float) -> float:
    """-y log(sigmoid z) - (1-y) log(1-sigmoid z) for y in {0, 1}, without cancellation.

    With s = y ? z : -z (the margin), the loss is log(1 + exp(-s)): log1p(exp(-s))
    for s >= 0 (exp never overflows, log1p keeps every digit), s + log1p(exp(s)) else.
    """
    s = z if y == 1.0 else -z
    return math.log1p(math.exp(-s)) if s >= 0 else -s + math.log1p(math.exp(s))


@pytest.mark.parametrize("target", [0.0, 1.0])
def test_bce_value_is_exact_in_both_tails(target: float) -> None:
    z = _TAIL_LOGITS.reshape(-1, 1)
    y = np.full_like(z, target)
    expected = np.array([_exact_bce(float(v), target) for v in _TAIL_LOGITS])
    per_row = [losses.binary_cross_entropy(z[i : i + 1], y[i : i + 1])[0] for i in range(len(z))]
    np.testing.assert_allclose(per_row, expected, rtol=4 * np.finfo(float).eps, atol=0)
    values = [losses.binary_cross_entropy_value(z[i : i + 1], y[i : i + 1]) for i in range(len(z))]
    np.testing.assert_allclose(values, expected, rtol=4 * np.finfo(float).eps, atol=0)
    assert losses.binary_cross_entropy_value(np.array([[33.3]]), np.array([[1.0]])) > 0


# --- Poisson deviance (the log-link loss of handnet.sklearn.MLPRegressor(loss="poisson")) ---


def _poisson_data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    z = rng.normal(size=(N, 3))
    y = rng.poisson(np.exp(rng.normal(size=(N, 3)))).astype(np.float64)
    y[0, 0] = 0.0  # 0 log 0 = 0
    return z, y


def test_poisson_value_matches_naive_formula(rng: np.random.Generator) -> None:
    z, y = _poisson_data(rng)
    mu = np.exp(z)
    with np.errstate(divide="ignore", invalid="ignore"):
        y_log = np.where(y > 0, y * np.log(y / mu), 0.0)
    per_sample = (y_log - y + mu).sum(axis=1)
    weights = rng.uniform(0.5, 2.0, size=N)
    loss, _ = losses.poisson_deviance(z, y)
    assert loss == pytest.approx(per_sample.mean(), rel=1e-12)
    loss_w, _ = losses.poisson_deviance(z, y, weights)
    assert loss_w == pytest.approx(np.dot(weights, per_sample) / weights.sum(), rel=1e-12)
    assert losses.poisson_deviance_value(z, y, weights) == loss_w
    assert losses.poisson_deviance(np.log(y[1:2] + 1.0), y[1:2] + 1.0)[0] == pytest.approx(0.0)


def test_poisson_gradient_matches_central_differences(rng: np.random.Generator) -> None:
    z, y = _poisson_data(rng)
    weights = rng.uniform(0.5, 2.0, size=N)
    for sample_weight in (None, weights):
        result = gradcheck(lambda v, sw=sample_weight: losses.poisson_deviance(v, y, sw), z)
        assert result.max_relative_error < 1e-8
        _, dlogits = losses.poisson_deviance(z, y, sample_weight)
        scale = 1 / N if sample_weight is None else (sample_weight / sample_weight.sum())[:, None]
        np.testing.assert_allclose(dlogits, (np.exp(z) - y) * scale, rtol=1e-12)


def test_poisson_loss_object(rng: np.random.Generator) -> None:
    z, y = _poisson_data(rng)
    loss = losses.get_loss("poisson_deviance")
    assert isinstance(loss, losses.PoissonDeviance)
    np.testing.assert_array_equal(loss.link(z), np.exp(z))
    assert loss.value(z, y) == loss(z, y)[0]
    assert loss(z.astype(np.float32), y)[1].dtype == np.float32
