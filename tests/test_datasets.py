"""Tests for handnet.datasets: generators, one-hot, splitting, scaling and IDX files."""

from __future__ import annotations

import gzip
import io
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from handnet.datasets import (
    TEACHER_BIAS,
    TEACHER_WEIGHTS,
    Standardizer,
    _read_idx,
    load_idx,
    load_mnist,
    make_circles,
    make_logistic,
    make_moons,
    make_softmax,
    make_spirals,
    make_xor,
    one_hot,
    save_idx,
    standardize,
    train_test_split,
)
from handnet.exceptions import NotFittedError
from handnet.nn.activations import sigmoid, softmax

Generator = Callable[..., tuple[Any, ...]]

GENERATORS: dict[str, Generator] = {
    "logistic": make_logistic,
    "logistic_bernoulli": lambda **kw: make_logistic(labels="bernoulli", **kw),
    "softmax": make_softmax,
    "softmax_sample": lambda **kw: make_softmax(labels="sample", **kw),
    "xor": lambda **kw: make_xor(noise=0.1, **kw),
    "circles": make_circles,
    "moons": make_moons,
    "spirals": make_spirals,
}


def _read_only(array: np.ndarray) -> np.ndarray:
    array = np.array(array)
    array.setflags(write=False)
    return array


# --- shared properties of every generator ------------------------------------------------


@pytest.mark.parametrize("name", GENERATORS)
def test_generators_same_seed_same_data_other_seed_other_data(name: str) -> None:
    make = GENERATORS[name]
    X1, y1 = make(n_samples=101, random_state=3)
    X2, y2 = make(n_samples=101, random_state=3)
    X3, _ = make(n_samples=101, random_state=4)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)


@pytest.mark.parametrize("name", GENERATORS)
def test_generators_shapes_dtypes_and_label_range(name: str) -> None:
    X, y = GENERATORS[name](n_samples=101, random_state=0)
    assert X.dtype == np.float64 and y.dtype == np.int64
    assert X.ndim == 2 and X.shape[0] == 101 and y.shape == (101,)
    assert y.min() >= 0
    assert np.all(np.isfinite(X))


@pytest.mark.parametrize("name", GENERATORS)
def test_generators_use_a_passed_generator_and_never_the_global_rng(name: str) -> None:
    make = GENERATORS[name]
    state: Any = np.random.get_state()  # noqa: NPY002 - checking the legacy global RNG is untouched
    rng = np.random.default_rng(7)
    first, _ = make(n_samples=50, random_state=rng)
    second, _ = make(n_samples=50, random_state=rng)
    assert not np.array_equal(first, second)  # the generator was advanced, not re-seeded
    again, _ = make(n_samples=50, random_state=np.random.default_rng(7))
    np.testing.assert_array_equal(first, again)
    make(n_samples=50)
    after: Any = np.random.get_state()  # noqa: NPY002
    assert after[0] == state[0]
    np.testing.assert_array_equal(after[1], state[1])
    assert after[2:] == state[2:]


@pytest.mark.parametrize("name", GENERATORS)
def test_generators_zero_samples_give_empty_arrays(name: str) -> None:
    X, y = GENERATORS[name](n_samples=0, random_state=0)
    assert X.shape[0] == 0 and y.shape == (0,)


@pytest.mark.parametrize("name", GENERATORS)
@pytest.mark.parametrize(
    ("n_samples", "error"), [(-1, ValueError), (2.5, TypeError), (True, TypeError)]
)
def test_generators_reject_bad_n_samples(name: str, n_samples: Any, error: type) -> None:
    with pytest.raises(error, match="n_samples"):
        GENERATORS[name](n_samples=n_samples, random_state=0)


@pytest.mark.parametrize(
    ("random_state", "error", "match"),
    [
        (-1, ValueError, "non-negative"),
        ("seed", TypeError, "random_state"),
        (1.5, TypeError, "random_state"),
        (np.random.RandomState(0), TypeError, "default_rng"),
    ],
)
def test_bad_random_state_is_rejected(random_state: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        make_logistic(10, random_state=random_state)


def test_numpy_integer_seed_is_accepted() -> None:
    X1, _ = make_logistic(10, random_state=np.int64(5))
    X2, _ = make_logistic(10, random_state=5)
    np.testing.assert_array_equal(X1, X2)


# --- make_logistic -----------------------------------------------------------------------


def test_teacher_constants() -> None:
    np.testing.assert_array_equal(TEACHER_WEIGHTS, [0.3, 0.6, -0.7, -1.3])
    assert TEACHER_BIAS == 0.2
    with pytest.raises(ValueError, match="read-only"):
        TEACHER_WEIGHTS[0] = 1.0


def test_make_logistic_defaults_to_the_seed_teacher() -> None:
    X, y = make_logistic(random_state=0)
    assert X.shape == (1000, 4) and y.shape == (1000,)
    np.testing.assert_array_equal(y, (X @ TEACHER_WEIGHTS + TEACHER_BIAS > 0).astype(np.int64))


def test_make_logistic_round_labels_equal_the_sign_of_the_logit_exactly() -> None:
    w = np.array([1.0, -2.0, 0.5])
    X, y = make_logistic(5000, w=w, b=-0.3, random_state=1)
    z = X @ w - 0.3
    np.testing.assert_array_equal(y, (z > 0).astype(np.int64))
    far = np.abs(z) > 1e-6
    np.testing.assert_array_equal(y[far], np.round(sigmoid(z[far])).astype(np.int64))
    assert set(np.unique(y)) == {0, 1}


def test_make_logistic_round_labels_at_and_just_above_zero_logit() -> None:
    # z = 0 exactly: round(sigma(0)) = round(0.5) = 0 and z > 0 is False; they agree.
    _, y = make_logistic(20, w=[0.0, 0.0], b=0.0, random_state=0)
    np.testing.assert_array_equal(y, 0)
    # z = 1e-20: sigma(z) is 0.5 in floating point, but the teacher's sign says class 1.
    _, y = make_logistic(20, w=[0.0, 0.0], b=1e-20, random_state=0)
    np.testing.assert_array_equal(y, 1)


def test_make_logistic_features_are_standard_normal() -> None:
    X, _ = make_logistic(20000, random_state=2)
    np.testing.assert_allclose(X.mean(axis=0), 0.0, atol=0.05)
    np.testing.assert_allclose(X.std(axis=0), 1.0, atol=0.05)


def test_make_logistic_bernoulli_label_mean_matches_the_mean_probability() -> None:
    n = 200_000
    X, y = make_logistic(n, labels="bernoulli", random_state=3)
    p = sigmoid(X @ TEACHER_WEIGHTS + TEACHER_BIAS)
    # Given X, sum(y) - sum(p) has variance sum p(1 - p): allow five standard errors.
    se = np.sqrt(np.sum(p * (1 - p))) / n
    assert abs(y.mean() - p.mean()) < 5 * se
    # Calibration within confident and unsure rows, not only overall.
    for mask in (p > 0.8, (p > 0.4) & (p < 0.6), p < 0.2):
        se_m = np.sqrt(np.sum(p[mask] * (1 - p[mask]))) / mask.sum()
        assert abs(y[mask].mean() - p[mask].mean()) < 5 * se_m


def test_make_logistic_bernoulli_draws_x_first_then_the_labels() -> None:
    X_round, y_round = make_logistic(2000, labels="round", random_state=4)
    X_bern, y_bern = make_logistic(2000, labels="bernoulli", random_state=4)
    np.testing.assert_array_equal(X_round, X_bern)
    assert 0 < np.sum(y_round != y_bern) < 1000  # noisy labels, but mostly agreeing


def test_make_logistic_does_not_touch_the_callers_weights() -> None:
    w = _read_only(np.array([1.0, 2.0]))
    X, _ = make_logistic(10, w=w, random_state=0)
    assert X.shape == (10, 2)
    np.testing.assert_array_equal(w, [1.0, 2.0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"labels": "sigmoid"}, "labels must be 'round' or 'bernoulli'"),
        ({"w": np.ones((2, 2))}, "1-D"),
        ({"w": []}, "non-empty"),
        ({"w": [1.0, np.nan]}, "NaN"),
        ({"b": np.inf}, "finite"),
    ],
)
def test_make_logistic_rejects_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_logistic(10, random_state=0, **kwargs)


# --- make_softmax ------------------------------------------------------------------------


def test_make_softmax_shapes_and_teacher() -> None:
    X, y, W, b = make_softmax(500, n_features=5, n_classes=4, random_state=0, return_teacher=True)
    assert X.shape == (500, 5) and y.shape == (500,) and y.dtype == np.int64
    assert W.shape == (5, 4) and b.shape == (4,)
    np.testing.assert_array_equal(y, np.argmax(X @ W + b, axis=1))
    assert set(np.unique(y)) <= {0, 1, 2, 3}
    X2, y2 = make_softmax(500, n_features=5, n_classes=4, random_state=0)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)


def test_make_softmax_defaults() -> None:
    X, y, W, b = make_softmax(random_state=0, return_teacher=True)
    assert X.shape == (1000, 4) and W.shape == (4, 3) and b.shape == (3,)
    assert set(np.unique(y)) <= {0, 1, 2}


def test_make_softmax_uses_given_weights_without_touching_them() -> None:
    weights = _read_only(np.arange(6.0).reshape(2, 3) - 2.5)
    X, y, W, b = make_softmax(300, weights=weights, random_state=1, return_teacher=True)
    assert X.shape == (300, 2)  # n_features and n_classes come from the weights
    np.testing.assert_array_equal(W, weights)
    np.testing.assert_array_equal(b, np.zeros(3))  # no bias given with weights: zero
    W[0, 0] = 100.0  # the returned teacher is a copy
    assert weights[0, 0] == -2.5
    np.testing.assert_array_equal(y, np.argmax(X @ weights, axis=1))


def test_make_softmax_sample_frequencies_match_constant_probabilities() -> None:
    p = np.array([0.2, 0.3, 0.5])
    n = 100_000
    _, y = make_softmax(
        n, weights=np.zeros((2, 3)), bias=np.log(p), labels="sample", random_state=2
    )
    freq = np.bincount(y, minlength=3) / n
    np.testing.assert_allclose(freq, p, atol=5 * np.sqrt(0.25 / n))


def test_make_softmax_sample_frequencies_match_the_teachers_probabilities() -> None:
    n = 100_000
    X, y, W, b = make_softmax(n, n_classes=4, labels="sample", random_state=3, return_teacher=True)
    P = softmax(X @ W + b, axis=1)
    freq = np.bincount(y, minlength=4) / n
    np.testing.assert_allclose(freq, P.mean(axis=0), atol=5 * np.sqrt(0.25 / n))
    # Per-row calibration, not just the marginals: among confident rows the sampled label
    # is the teacher's top class as often as its top probability says.
    top = np.argmax(P, axis=1)
    confident = P.max(axis=1) > 0.9
    hit = (y == top)[confident].mean()
    expected = P.max(axis=1)[confident].mean()
    assert abs(hit - expected) < 0.01


def test_make_softmax_sample_draws_x_before_the_uniforms() -> None:
    X_arg, y_arg = make_softmax(1000, labels="argmax", random_state=5)
    X_smp, y_smp = make_softmax(1000, labels="sample", random_state=5)
    np.testing.assert_array_equal(X_arg, X_smp)
    assert not np.array_equal(y_arg, y_smp)


def test_make_softmax_sample_stays_in_range_for_extreme_logits() -> None:
    bias = np.array([0.0, -800.0, 800.0])
    _, y = make_softmax(1000, weights=np.zeros((1, 3)), bias=bias, labels="sample", random_state=0)
    np.testing.assert_array_equal(y, 2)


class _FixedUniforms(np.random.Generator):
    """A Generator whose uniforms are all ``value``, to probe the inverse-CDF edges."""

    def __init__(self, value: float) -> None:
        super().__init__(np.random.PCG64(0))
        self.value = value

    def random(self, size: Any = None, dtype: Any = np.float64, out: Any = None) -> Any:
        return np.full(size, self.value)


@pytest.mark.parametrize(("u", "label"), [(0.0, 0), (0.69, 0), (0.71, 1), (0.91, 2)])
def test_make_softmax_sample_is_the_inverse_cdf_of_the_uniform(u: float, label: int) -> None:
    bias = np.log([0.7, 0.2, 0.1])
    _, y = make_softmax(
        5, weights=np.zeros((1, 3)), bias=bias, labels="sample", random_state=_FixedUniforms(u)
    )
    np.testing.assert_array_equal(y, label)


def test_make_softmax_sample_never_returns_k_when_the_cdf_rounds_below_one() -> None:
    bias = np.log([0.7, 0.2, 0.1])  # these probabilities cumulate to 1 - 2 ulp, not 1
    assert np.cumsum(softmax(bias))[-1] < 1.0
    largest_below_one = _FixedUniforms(float(np.nextafter(1.0, 0.0)))
    _, y = make_softmax(
        5, weights=np.zeros((1, 3)), bias=bias, labels="sample", random_state=largest_below_one
    )
    np.testing.assert_array_equal(y, 2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"labels": "max"}, "labels must be 'argmax' or 'sample'"),
        ({"n_classes": 1}, "n_classes must be >= 2"),
        ({"n_features": 0}, "n_features must be >= 1"),
        ({"weights": np.ones((2, 3)), "n_features": 4}, r"weights has shape \(2, 3\)"),
        ({"weights": np.ones(3)}, "2-D"),
        ({"bias": np.ones((3, 1))}, "1-D"),
        ({"weights": np.ones((2, 3)), "bias": np.ones(4)}, r"bias has shape \(4,\)"),
    ],
)
def test_make_softmax_rejects_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_softmax(10, random_state=0, **kwargs)


# --- 2-D nonlinear sets ------------------------------------------------------------------


def test_make_xor_labels_by_quadrant_and_adds_noise_after_labelling() -> None:
    X, y = make_xor(1000, random_state=0)
    assert np.all(np.abs(X) <= 1.0)
    np.testing.assert_array_equal(y, (np.sign(X[:, 0]) != np.sign(X[:, 1])).astype(np.int64))
    X_noisy, y_noisy = make_xor(1000, noise=0.3, random_state=0)
    np.testing.assert_array_equal(y_noisy, y)  # same clean points, same labels
    assert np.all(X_noisy != X)
    assert np.abs(X_noisy).max() > 1.0


def test_make_circles_radii_and_counts() -> None:
    X, y = make_circles(401, noise=0.0, factor=0.3, random_state=0)
    radius = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(radius[y == 0], 1.0)
    np.testing.assert_allclose(radius[y == 1], 0.3)
    np.testing.assert_array_equal(np.bincount(y), [200, 201])
    assert not np.all(np.diff(y) >= 0)  # shuffled by default
    _, y_ordered = make_circles(10, shuffle=False, random_state=0)
    np.testing.assert_array_equal(y_ordered, [0] * 5 + [1] * 5)


def test_make_circles_noise_moves_points_off_the_circles() -> None:
    X, y = make_circles(2000, noise=0.05, random_state=1)
    radius = np.hypot(X[:, 0], X[:, 1])
    assert abs(radius[y == 0].mean() - 1.0) < 0.01 and radius[y == 0].std() > 0.03
    assert abs(radius[y == 1].mean() - 0.5) < 0.01


@pytest.mark.parametrize("factor", [0.0, 1.0, -0.5, True])
def test_make_circles_rejects_bad_factor(factor: Any) -> None:
    with pytest.raises(ValueError, match="factor"):
        make_circles(10, factor=factor)


def test_make_moons_lie_on_two_interleaved_half_circles() -> None:
    X, y = make_moons(301, noise=0.0, random_state=0)
    np.testing.assert_array_equal(np.bincount(y), [150, 151])
    upper, lower = X[y == 0], X[y == 1]
    np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0)
    assert np.all(upper[:, 1] >= -1e-12)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1.0, lower[:, 1] - 0.5), 1.0)
    assert np.all(lower[:, 1] <= 0.5 + 1e-12)
    # Interleaved: each moon's tip reaches into the other's hollow.
    assert lower[:, 0].min() < upper[:, 0].max() and upper[:, 1].min() < lower[:, 1].max()


def test_make_spirals_arms_follow_the_cs231n_formula() -> None:
    X, y = make_spirals(7, n_classes=3, noise=0.0, shuffle=False, random_state=0)
    np.testing.assert_array_equal(y, [0, 0, 0, 1, 1, 2, 2])  # 7 = 3 + 2 + 2
    r = np.linspace(0.0, 1.0, 3)
    theta = np.linspace(0.0, 4.0, 3)
    np.testing.assert_allclose(X[:3], r[:, None] * np.column_stack([np.sin(theta), np.cos(theta)]))
    theta_2 = np.linspace(8.0, 12.0, 2)
    np.testing.assert_allclose(
        X[5:], np.column_stack([np.sin(theta_2), np.cos(theta_2)]) * [[0], [1]]
    )


def test_make_spirals_noise_perturbs_the_angle_not_the_radius() -> None:
    X_clean, _ = make_spirals(600, noise=0.0, shuffle=False, random_state=0)
    X_noisy, y = make_spirals(600, noise=0.2, shuffle=False, random_state=0)
    np.testing.assert_allclose(np.hypot(*X_noisy.T), np.hypot(*X_clean.T))
    assert not np.allclose(X_noisy, X_clean)
    np.testing.assert_array_equal(np.bincount(y), [200, 200, 200])
    assert np.all(np.hypot(*X_noisy.T) <= 1.0 + 1e-12)


def test_make_spirals_turns_sets_the_sweep() -> None:
    X, _ = make_spirals(3, n_classes=1, noise=0.0, turns=0.5, shuffle=False, random_state=0)
    np.testing.assert_allclose(X[-1], [np.sin(np.pi), np.cos(np.pi)], atol=1e-15)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_classes": 0}, ValueError, "n_classes"),
        ({"noise": -0.1}, ValueError, "noise"),
        ({"noise": np.nan}, ValueError, "noise"),
        ({"noise": "a"}, TypeError, "noise"),
        ({"turns": 0.0}, ValueError, "turns"),
    ],
)
def test_make_spirals_rejects_bad_arguments(
    kwargs: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        make_spirals(10, **kwargs)


@pytest.mark.parametrize("make", [make_xor, make_circles, make_moons])
def test_2d_sets_reject_negative_noise(make: Generator) -> None:
    with pytest.raises(ValueError, match="noise"):
        make(10, noise=-1.0)


# --- one_hot -----------------------------------------------------------------------------


def test_one_hot_round_trip() -> None:
    y = _read_only(np.array([2, 0, 1, 2, 3]))
    Y = one_hot(y)
    assert Y.shape == (5, 4) and Y.dtype == np.float64
    np.testing.assert_array_equal(Y.sum(axis=1), 1.0)
    np.testing.assert_array_equal(np.argmax(Y, axis=1), y)
    np.testing.assert_array_equal(Y[0], [0, 0, 1, 0])


def test_one_hot_n_classes_and_dtype() -> None:
    Y = one_hot([0, 1], n_classes=5, dtype=np.float32)
    assert Y.shape == (2, 5) and Y.dtype == np.float32
    np.testing.assert_array_equal(one_hot([1.0, 0.0]), [[0, 1], [1, 0]])
    np.testing.assert_array_equal(one_hot(np.array([True, False])), [[0, 1], [1, 0]])
    assert one_hot(np.array([], dtype=int), n_classes=3).shape == (0, 3)


@pytest.mark.parametrize(
    ("y", "n_classes", "match"),
    [
        ([0, -1], None, ">= 0"),
        ([0.5, 1.0], None, "non-integer"),
        ([0.0, np.nan], None, "non-integer"),
        ([0, 3], 3, "out of range for n_classes=3"),
        ([[0, 1]], None, "1-D"),
        (["a", "b"], None, "integer class labels"),
        ([0, 1], 0, "n_classes must be >= 1"),
    ],
)
def test_one_hot_rejects_bad_labels(y: Any, n_classes: int | None, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        one_hot(y, n_classes=n_classes)


# --- train_test_split --------------------------------------------------------------------


def _ids_data(n: int) -> tuple[np.ndarray, np.ndarray]:
    """X whose first column is the row id, y tied to the row, both read-only."""
    X = np.column_stack([np.arange(n), np.arange(n) ** 2]).astype(float)
    y = np.arange(n) % 3
    return _read_only(X), _read_only(y)


def test_train_test_split_sizes_and_alignment() -> None:
    X, y = _ids_data(10)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0)
    assert X_tr.shape == (7, 2) and X_te.shape == (3, 2)  # ceil(2.5) = 3 test rows
    assert y_tr.shape == (7,) and y_te.shape == (3,)
    ids = np.concatenate([X_tr[:, 0], X_te[:, 0]]).astype(int)
    np.testing.assert_array_equal(np.sort(ids), np.arange(10))  # a partition of the rows
    np.testing.assert_array_equal(y_tr, X_tr[:, 0].astype(int) % 3)
    np.testing.assert_array_equal(y_te, X_te[:, 0].astype(int) % 3)
    _, X_te, _, _ = train_test_split(X, y, test_size=4, random_state=0)
    assert X_te.shape == (4, 2)


def test_train_test_split_never_mutates_and_returns_copies() -> None:
    X, y = _ids_data(20)
    X_before, y_before = X.copy(), y.copy()
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, random_state=1)
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)
    for part in (X_tr, X_te, y_tr, y_te):
        assert (
            part.flags.writeable and not np.shares_memory(part, X) and not np.shares_memory(part, y)
        )


def test_train_test_split_is_random_but_seeded() -> None:
    X, y = _ids_data(50)
    a = train_test_split(X, y, random_state=2)
    b = train_test_split(X, y, random_state=2)
    c = train_test_split(X, y, random_state=3)
    for left, right in zip(a, b, strict=True):
        np.testing.assert_array_equal(left, right)
    assert not np.array_equal(a[1], c[1])
    assert not np.array_equal(np.sort(a[1][:, 0]), np.arange(13))  # not just the first rows


def test_train_test_split_stratify_keeps_class_proportions() -> None:
    X = np.arange(100.0).reshape(-1, 1)
    y = _read_only(np.array([0] * 70 + [1] * 20 + [2] * 10))
    _, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, stratify=True, random_state=0)
    np.testing.assert_array_equal(np.bincount(y_te), [14, 4, 2])
    np.testing.assert_array_equal(np.bincount(y_tr), [56, 16, 8])
    np.testing.assert_array_equal(
        y_te, np.where(X_te[:, 0] < 70, 0, np.where(X_te[:, 0] < 90, 1, 2))
    )
    assert not np.all(np.diff(y_te) >= 0)  # classes mixed, not in blocks


def test_train_test_split_stratify_with_uneven_shares_hits_the_exact_size() -> None:
    y = np.array(["a"] * 5 + ["b"] * 5 + ["c"] * 3)  # 13 rows; 30 % -> ceil(3.9) = 4 test rows
    X = np.zeros((13, 1))
    for seed in range(5):
        _, X_te, _, y_te = train_test_split(X, y, test_size=0.3, stratify=True, random_state=seed)
        assert len(y_te) == len(X_te) == 4
        counts = {c: int(np.sum(y_te == c)) for c in "abc"}
        # shares 20/13, 20/13, 12/13: floors 1, 1, 0; the 1 leftover goes to the largest remainder
        assert counts == {"a": 2, "b": 1, "c": 1} or counts == {"a": 1, "b": 2, "c": 1}


def test_train_test_split_stratified_proportions_are_close_for_any_size() -> None:
    y = np.repeat([0, 1, 2], [37, 23, 11])
    X = np.zeros((71, 3))
    for test_size in (0.1, 0.33, 0.5, 0.9):
        _, _, y_tr, y_te = train_test_split(
            X, y, test_size=test_size, stratify=True, random_state=0
        )
        expected = len(y_te) * np.bincount(y) / len(y)
        assert np.all(np.abs(np.bincount(y_te, minlength=3) - expected) < 1)
        np.testing.assert_array_equal(
            np.bincount(y_te, minlength=3) + np.bincount(y_tr), [37, 23, 11]
        )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"test_size": 0.0}, ValueError, r"\(0, 1\)"),
        ({"test_size": 1.0}, ValueError, r"\(0, 1\)"),
        ({"test_size": 1.5}, ValueError, r"\(0, 1\)"),
        ({"test_size": 0}, ValueError, "at least one sample"),
        ({"test_size": 10}, ValueError, "at least one sample"),
        ({"test_size": 0.95}, ValueError, "gives 10 test samples out of 10"),
        ({"test_size": True}, TypeError, "test_size"),
        ({"test_size": "half"}, TypeError, "test_size"),
    ],
)
def test_train_test_split_rejects_bad_test_size(
    kwargs: dict[str, Any], error: type, match: str
) -> None:
    X, y = _ids_data(10)
    with pytest.raises(error, match=match):
        train_test_split(X, y, random_state=0, **kwargs)


def test_train_test_split_rounds_a_small_fraction_up_to_one_row() -> None:
    X, y = _ids_data(10)
    X_tr, X_te, _, _ = train_test_split(X, y, test_size=0.01, random_state=0)
    assert len(X_te) == 1 and len(X_tr) == 9


def test_train_test_split_rejects_mismatched_or_tiny_inputs() -> None:
    with pytest.raises(ValueError, match="different numbers of samples: 10 and 9"):
        train_test_split(np.zeros((10, 2)), np.zeros(9))
    with pytest.raises(ValueError, match="at least 2 samples"):
        train_test_split(np.zeros((1, 2)), np.zeros(1))
    with pytest.raises(ValueError, match="scalars"):
        train_test_split(np.float64(1.0), np.zeros(1))
    with pytest.raises(ValueError, match="1-D class labels"):
        train_test_split(np.zeros((10, 2)), np.zeros((10, 2)), stratify=True)


# --- Standardizer ------------------------------------------------------------------------


def test_standardizer_gives_zero_mean_unit_std_and_inverts() -> None:
    rng = np.random.default_rng(0)
    X = _read_only(rng.normal(loc=[5.0, -3.0, 100.0], scale=[2.0, 0.1, 30.0], size=(500, 3)))
    scaler = Standardizer()
    Z = scaler.fit_transform(X)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Z.std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(scaler.mean_, X.mean(axis=0))
    np.testing.assert_allclose(scaler.scale_, X.std(axis=0))
    np.testing.assert_allclose(scaler.inverse_transform(Z), X, rtol=1e-12)
    assert scaler.n_features_in_ == 3


def test_standardizer_constant_feature_maps_to_zero_without_warnings() -> None:
    X = np.column_stack([np.full(10, 0.1), np.arange(10.0), np.zeros(10)])
    scaler = Standardizer().fit(X)
    np.testing.assert_array_equal(scaler.scale_[[0, 2]], 1.0)
    Z = scaler.transform(X)
    np.testing.assert_array_equal(Z[:, [0, 2]], 0.0)  # exactly, despite 0.1 being inexact
    assert np.all(np.isfinite(Z))
    np.testing.assert_allclose(scaler.inverse_transform(Z), X)


def test_standardizer_keeps_float32_and_converts_integers() -> None:
    X32 = np.arange(12, dtype=np.float32).reshape(4, 3)
    scaler = Standardizer().fit(X32)
    Z = scaler.transform(X32)
    assert Z.dtype == np.float32
    assert scaler.inverse_transform(Z).dtype == np.float32
    assert scaler.transform(X32.astype(np.float64)).dtype == np.float64
    Z_int = Standardizer().fit_transform(np.arange(12).reshape(4, 3))
    assert Z_int.dtype == np.float64
    np.testing.assert_allclose(Z_int, Z, rtol=1e-6)


def test_standardizer_errors() -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        Standardizer().transform(np.zeros((2, 2)))
    scaler = Standardizer().fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="3 features, but the Standardizer was fitted on 2"):
        scaler.transform(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="2-D"):
        Standardizer().fit(np.zeros(5))
    with pytest.raises(ValueError, match="0 samples"):
        Standardizer().fit(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="NaN"):
        Standardizer().fit(np.array([[1.0], [np.nan]]))
    with pytest.raises(ValueError, match="numeric"):
        Standardizer().fit(np.array([["a"], ["b"]]))


def test_standardize_fits_on_the_first_array_only() -> None:
    X_train = _read_only(np.array([[0.0, 10.0], [2.0, 30.0]]))
    X_test = _read_only(np.array([[1.0, 20.0], [4.0, 50.0]]))
    out = standardize(X_train, X_test)
    assert isinstance(out, tuple) and len(out) == 2
    np.testing.assert_allclose(out[0], [[-1, -1], [1, 1]])
    np.testing.assert_allclose(out[1], [[0, 0], [3, 3]])
    np.testing.assert_array_equal(X_train, [[0.0, 10.0], [2.0, 30.0]])
    (only,) = standardize(X_train)
    np.testing.assert_allclose(only, out[0])


# --- IDX files ---------------------------------------------------------------------------

IDX_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@pytest.mark.parametrize("dtype", IDX_DTYPES)
@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("shape", [(7,), (3, 4, 5), (0, 2)])
def test_idx_round_trip(tmp_path: Path, dtype: type, suffix: str, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    array: np.ndarray
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        array = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    else:
        array = rng.standard_normal(shape).astype(dtype)
    array = _read_only(array)
    path = tmp_path / f"data.idx{suffix}"
    save_idx(path, array)
    loaded = load_idx(path)
    assert loaded.dtype == np.dtype(dtype) and loaded.dtype.isnative
    assert loaded.shape == shape
    np.testing.assert_array_equal(loaded, array)
    loaded[...] = 0  # a writable array of its own
    assert path.read_bytes()[:2] == (b"\x1f\x8b" if suffix else b"\x00\x00")


def test_save_idx_writes_the_documented_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.idx"
    save_idx(path, np.array([[1, -2, 3], [256, 0, -32768]], dtype="<i2"))
    expected = (
        bytes([0, 0, 0x0B, 2])
        + struct.pack(">II", 2, 3)
        + struct.pack(">6h", 1, -2, 3, 256, 0, -32768)
    )
    assert path.read_bytes() == expected


def test_load_idx_reads_a_hand_written_file(tmp_path: Path) -> None:
    path = tmp_path / "b.idx"
    path.write_bytes(bytes([0, 0, 0x0D, 1]) + struct.pack(">I", 3) + struct.pack(">3f", 1.5, -2, 0))
    np.testing.assert_array_equal(load_idx(path), np.array([1.5, -2.0, 0.0], dtype=np.float32))
    path.write_bytes(bytes([0, 0, 0x08, 2]) + struct.pack(">II", 1, 2) + bytes([7, 255]))
    np.testing.assert_array_equal(load_idx(str(path)), [[7, 255]])


def test_load_idx_detects_gzip_by_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "compressed_but_plain_name.idx"
    raw = bytes([0, 0, 0x08, 1]) + struct.pack(">I", 2) + bytes([4, 5])
    path.write_bytes(gzip.compress(raw))
    np.testing.assert_array_equal(load_idx(path), [4, 5])


def test_load_idx_ignores_and_never_reads_bytes_past_the_declared_size(tmp_path: Path) -> None:
    raw = bytes([0, 0, 0x08, 1]) + struct.pack(">I", 3) + bytes([1, 2, 3])
    path = tmp_path / "trailing.idx"
    path.write_bytes(raw + b"trailing junk")
    np.testing.assert_array_equal(load_idx(path), [1, 2, 3])
    stream = io.BytesIO(raw + b"trailing junk")
    _read_idx(stream, "stream")
    assert stream.tell() == len(raw)


def _header(code: int, *sizes: int) -> bytes:
    return bytes([0, 0, code, len(sizes)]) + struct.pack(f">{len(sizes)}I", *sizes)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "0 bytes long, shorter than the 4-byte IDX header"),
        (b"\x00\x00\x08", "3 bytes long"),
        (b"\x01\x02\x08\x01" + struct.pack(">I", 1) + b"\x00", "bad magic number 0102"),
        (b"PK\x03\x04rest", "bad magic number 504b"),
        (_header(0x0A, 1) + b"\x00", "unknown IDX type code 0x0A"),
        (_header(0x07, 1) + b"\x00", "unknown IDX type code 0x07.*0x08 \\(uint8\\)"),
        (bytes([0, 0, 0x08, 0]), "0 dimensions"),
        (bytes([0, 0, 0x08, 3]) + struct.pack(">2I", 2, 2), "need 16 header bytes.*only 12"),
        (
            _header(0x08, 2, 3) + bytes(5),
            r"shape \(2, 3\) of uint8, i\.e\. 6 data bytes \(18 bytes in all\), "
            r"but only 5 data bytes \(17 in all\)",
        ),
        (_header(0x0E, 4) + bytes(8 * 3), "32 data bytes.*only 24 data bytes"),
        (_header(0x0C, 2) + bytes(0), "8 data bytes.*only 0 data bytes"),
    ],
)
def test_load_idx_rejects_malformed_files(
    tmp_path: Path, content: bytes, match: str, compress: bool
) -> None:
    path = tmp_path / "bad.idx"
    path.write_bytes(gzip.compress(content) if compress else content)
    with pytest.raises(ValueError, match=match) as info:
        load_idx(path)
    assert "bad.idx" in str(info.value)  # the message names the file


def test_load_idx_header_claiming_a_huge_array_fails_fast_without_allocating(
    tmp_path: Path,
) -> None:
    path = tmp_path / "huge.idx"
    path.write_bytes(_header(0x0E, 2**32 - 1, 2**32 - 1, 2**32 - 1) + bytes(16))
    with pytest.raises(ValueError, match=r"truncated IDX file.*only 16 data bytes"):
        load_idx(path)


def test_load_idx_rejects_a_cut_off_gzip_stream(tmp_path: Path) -> None:
    compressed = gzip.compress(_header(0x08, 1000) + bytes(range(256)) * 4)
    path = tmp_path / "cut.idx.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(ValueError, match="gzip"):
        load_idx(path)


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros(3, dtype=np.int64), "cannot store dtype int64"),
        (np.zeros(3, dtype=bool), "cannot store dtype bool"),
        (np.zeros(3, dtype=np.complex128), "cannot store dtype complex128"),
        (np.array(["a"]), "cannot store dtype"),
        (np.array(5, dtype=np.uint8), "1 to 255 dimensions"),
    ],
)
def test_save_idx_rejects_what_idx_cannot_hold(tmp_path: Path, array: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        save_idx(tmp_path / "x.idx", array)


# --- load_mnist --------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_load_mnist_scales_and_flattens(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 3, 4), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    save_idx(tmp_path / f"img{suffix}", images)
    save_idx(tmp_path / f"lab{suffix}", labels)
    X, y = load_mnist(tmp_path / f"img{suffix}", tmp_path / f"lab{suffix}")
    assert X.shape == (5, 12) and X.dtype == np.float64
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, labels)
    assert X.min() == 0.0 and X.max() == 1.0
    np.testing.assert_allclose(X * 255, images.reshape(5, 12))
    np.testing.assert_allclose(X[1].reshape(3, 4), images[1] / 255)  # row-major flattening


def test_load_mnist_checks_counts_and_types(tmp_path: Path) -> None:
    save_idx(tmp_path / "img", np.zeros((4, 2, 2), dtype=np.uint8))
    save_idx(tmp_path / "lab3", np.zeros(3, dtype=np.uint8))
    save_idx(tmp_path / "lab4", np.zeros(4, dtype=np.uint8))
    save_idx(tmp_path / "flat", np.zeros((4, 4), dtype=np.uint8))
    save_idx(tmp_path / "float_img", np.zeros((4, 2, 2), dtype=np.float32))
    save_idx(tmp_path / "float_lab", np.zeros(4, dtype=np.float32))
    with pytest.raises(ValueError, match=r"4 images .* but 3 labels"):
        load_mnist(tmp_path / "img", tmp_path / "lab3")
    with pytest.raises(ValueError, match=r"uint8 images of shape \(n, rows, cols\)"):
        load_mnist(tmp_path / "flat", tmp_path / "lab4")
    with pytest.raises(ValueError, match="got float32"):
        load_mnist(tmp_path / "float_img", tmp_path / "lab4")
    with pytest.raises(ValueError, match="1-D integer labels"):
        load_mnist(tmp_path / "img", tmp_path / "float_lab")
    with pytest.raises(ValueError, match="bad magic"):
        (tmp_path / "junk").write_bytes(b"junkjunk")
        load_mnist(tmp_path / "junk", tmp_path / "lab4")
