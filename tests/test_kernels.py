"""The per-example SGD kernels do the generic training step's math, only faster."""

from __future__ import annotations

import numpy as np
import pytest

import handnet
from handnet import kernels
from handnet.datasets import make_logistic
from handnet.layers import Dense
from handnet.losses import BinaryCrossEntropy
from handnet.network import Sequential
from handnet.optimizers import SGD
from handnet.training import Trainer


class _PlainSGD(SGD):
    """The same update rule under another type: the trainer takes the generic path."""


def _train(
    optimizer: SGD, X: np.ndarray, y: np.ndarray, epochs: int, l2: float, batch_size: int | None = 1
) -> Trainer:
    network = Sequential([Dense(X.shape[1], 1, init="normal", random_state=3, dtype=X.dtype)])
    trainer = Trainer(
        network, BinaryCrossEntropy(), optimizer, np.random.default_rng(5),
        batch_size=batch_size, l2=l2, tol=None,
    )
    trainer.fit(X, y.reshape(-1, 1).astype(X.dtype), max_iter=epochs)
    return trainer


@pytest.mark.parametrize("l2", [0.0, 0.01])
@pytest.mark.parametrize("n_features", [4, 37])
def test_kernel_epoch_matches_the_generic_step(l2: float, n_features: int) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, n_features))
    y = (X[:, 0] + 0.3 * rng.standard_normal(300) > 0).astype(np.float64)
    fast = _train(SGD(0.05), X, y, epochs=3, l2=l2)
    generic = _train(_PlainSGD(0.05), X, y, epochs=3, l2=l2)
    assert fast._seed_kernel_applies() and not generic._seed_kernel_applies()
    np.testing.assert_allclose(
        fast.network.flat_parameters, generic.network.flat_parameters, rtol=1e-12, atol=1e-14
    )
    np.testing.assert_allclose(fast.history.loss, generic.history.loss, rtol=1e-12)


@pytest.mark.parametrize("l2", [0.0, 0.01])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gd_kernel_step_matches_the_generic_step(l2: float, dtype: type) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((257, 6)).astype(dtype)
    y = (X[:, 0] - X[:, 2] + 0.5 * rng.standard_normal(257) > 0).astype(dtype)
    fast = _train(SGD(0.3), X, y, epochs=25, l2=l2, batch_size=None)
    generic = _train(_PlainSGD(0.3), X, y, epochs=25, l2=l2, batch_size=None)
    assert fast._seed_kernel_applies() and not generic._seed_kernel_applies()
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    assert fast.network.flat_parameters.dtype == dtype
    fast_parameters = fast.network.flat_parameters
    generic_parameters = generic.network.flat_parameters
    np.testing.assert_allclose(fast_parameters, generic_parameters, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(fast.history.loss, generic.history.loss, rtol=tolerance)


def test_kernel_keeps_float32() -> None:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 4)).astype(np.float32)
    y = (X[:, 1] > 0).astype(np.float32)
    fast = _train(SGD(0.05), X, y, epochs=2, l2=0.0)
    generic = _train(_PlainSGD(0.05), X, y, epochs=2, l2=0.0)
    assert fast.network.flat_parameters.dtype == np.float32
    np.testing.assert_allclose(
        fast.network.flat_parameters, generic.network.flat_parameters, rtol=1e-5, atol=1e-6
    )


@pytest.mark.skipif(not kernels.numba_available(), reason="numba is not installed")
@pytest.mark.parametrize("l2", [0.0, 0.01])
def test_numba_kernel_gives_the_numpy_kernels_results(l2: float) -> None:
    X, y = make_logistic(5000, labels="bernoulli", random_state=2)
    y = y.astype(np.float64)
    order = np.random.default_rng(3).permutation(len(X))
    results = []
    for use_numba in (False, True):
        weights, bias = np.zeros(4), np.zeros(1)
        loss = kernels.logistic_sgd_epoch(X, y, order, weights, bias, 0.01, l2, use_numba=use_numba)
        results.append((weights, bias, loss))
    (w_np, b_np, loss_np), (w_nb, b_nb, loss_nb) = results
    np.testing.assert_allclose(w_nb, w_np, rtol=1e-12)
    np.testing.assert_allclose(b_nb, b_np, rtol=1e-12)
    assert loss_nb == pytest.approx(loss_np, rel=1e-12)


def test_model_uses_the_kernel_only_for_plain_per_example_sgd() -> None:
    X, y = make_logistic(400, random_state=0)
    model = handnet.LogisticRegression(batch_size=1, max_iter=2, tol=None, random_state=0).fit(X, y)
    assert model._trainer._seed_kernel_applies()
    clipped = handnet.LogisticRegression(
        batch_size=1, max_iter=2, tol=None, clip_norm=1.0, random_state=0
    ).fit(X, y)
    assert not clipped._trainer._seed_kernel_applies()
    # Weighted samples take the generic path, which knows the dataset-level weighting.
    weighted = handnet.LogisticRegression(batch_size=1, max_iter=2, tol=None, random_state=0)
    weighted.fit(X, y, sample_weight=np.full(len(y), 2.0))
    np.testing.assert_allclose(weighted.coef_, model.coef_, rtol=1e-12)


@pytest.mark.skipif(not kernels.numba_available(), reason="numba is not installed")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls", [handnet.optimizers.Adam, handnet.optimizers.AdamW])
def test_fused_adam_gives_numpys_adam(cls: type, dtype: type) -> None:
    rng = np.random.default_rng(0)
    size = kernels.FUSED_ADAM_MIN_SIZE + 7
    start = rng.standard_normal(size).astype(dtype)
    grads = [rng.standard_normal(size).astype(dtype) for _ in range(3)]
    results = []
    for fused in (True, False):
        optimizer = cls(learning_rate=0.01)
        optimizer.use_fused = fused
        param = start.copy()
        for grad in grads:
            optimizer.step([(param, grad)])
        results.append((param, optimizer.state[0]["m"], optimizer.state[0]["v"]))
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    for fused_array, numpy_array in zip(results[0], results[1], strict=True):
        assert fused_array.dtype == dtype
        np.testing.assert_allclose(fused_array, numpy_array, rtol=tolerance, atol=tolerance)
    assert not np.array_equal(results[0][0], start)
