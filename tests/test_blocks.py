"""The block-wise full-batch engine gives the plain one-shot results (handnet.data.blocks)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from handnet.data import blocks
from handnet.data.blocks import FullBatchGradient, Workspace, block_sums, rebuild_network, supports
from handnet.models import LogisticRegression, MLPClassifier, MLPRegressor, SoftmaxRegression
from handnet.nn.layers import Activation, Dense, Dropout
from handnet.nn.losses import BinaryCrossEntropy, Loss, MeanSquaredError, SoftmaxCrossEntropy
from handnet.nn.network import Sequential
from handnet.training import kernels


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _network(kind: str, n_features: int, dtype: type = np.float64) -> tuple[Sequential, Loss, int]:
    if kind == "logistic":
        return Sequential([Dense(n_features, 1, random_state=0, dtype=dtype)]), \
            BinaryCrossEntropy(), 1
    if kind == "softmax":
        return Sequential([Dense(n_features, 4, random_state=0, dtype=dtype)]), \
            SoftmaxCrossEntropy(), 4
    if kind == "mlp":
        layers = [Dense(n_features, 9, random_state=1, dtype=dtype), Activation("tanh"),
                  Dense(9, 7, random_state=2, dtype=dtype), Activation("relu"),
                  Dense(7, 3, random_state=3, dtype=dtype)]
        return Sequential(layers), SoftmaxCrossEntropy(), 3
    layers = [Dense(n_features, 6, random_state=4, dtype=dtype), Activation("sigmoid"),
              Dense(6, 2, random_state=5, dtype=dtype)]
    return Sequential(layers), MeanSquaredError(), 2


def _targets(kind: str, rng: np.random.Generator, n: int, k: int, dtype: type) -> np.ndarray:
    if kind == "logistic":
        return (rng.random((n, 1)) < 0.5).astype(dtype)
    if kind == "regression":
        return rng.standard_normal((n, k)).astype(dtype)
    return np.eye(k, dtype=dtype)[rng.integers(0, k, n)]


def _plain(network: Sequential, loss: Loss, X, Y, w) -> tuple[float, np.ndarray]:
    value, dlogits = loss(network.forward(X), Y, w)
    network.backward(dlogits)
    return value, network.flat_gradients.copy()


@pytest.mark.parametrize("kind", ["logistic", "softmax", "mlp", "regression"])
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_blocked_gradient_equals_the_plain_gradient(
    rng: np.random.Generator, kind: str, threads: int, weighted: bool
) -> None:
    n, d = 5003, 7  # not a multiple of the block size: a short last block
    network, loss, k = _network(kind, d)
    network.flat_parameters[...] += 0.1 * rng.standard_normal(network.n_parameters)
    X = rng.standard_normal((n, d))
    Y = _targets(kind, rng, n, k, np.float64)
    w = rng.random(n) if weighted else None
    value, gradient = _plain(network, loss, X, Y, w)
    # ~ 300-row blocks: about 17 of them, spread over the threads
    engine = FullBatchGradient(network, n_threads=threads, block_bytes=300 * d * 8)
    try:
        blocked = engine(X, Y, w, loss)
    finally:
        engine.close()
    assert blocked == pytest.approx(value, rel=1e-12)
    assert relative(network.flat_gradients, gradient) <= 1e-12


@pytest.mark.skipif(kernels.logistic_block_sums_compiled() is None,
                    reason="numba is not installed")
def test_the_compiled_logistic_kernel_takes_larger_blocks(rng: np.random.Generator) -> None:
    """It reads each row once, so the default block size grows (less Python per row),
    keeping MIN_BLOCKS_PER_THREAD blocks a thread; not for NumPy, nor a size given."""
    n, d = 200_000, 20
    network, loss, _ = _network("logistic", d)
    X = rng.standard_normal((n, d))
    Y = _targets("logistic", rng, n, 1, np.float64)
    default = blocks.rows_per_block(d, 8)
    engines = {threads: FullBatchGradient(network, n_threads=threads) for threads in (1, 2)}
    try:
        assert engines[1]._block_rows(X, None, loss) == n // 8 > default
        assert engines[2]._block_rows(X, None, loss) == default  # 8 blocks a thread: smaller
        with kernels.numpy_only():
            assert engines[1]._block_rows(X, None, loss) == default
        assert engines[1]._block_rows(X, np.ones(n), loss) == default  # weighted: NumPy
        sized = FullBatchGradient(network, n_threads=1, block_bytes=blocks.BLOCK_BYTES)
        assert sized._block_rows(X, None, loss) == default
        sized.close()
        value, gradient = _plain(network, loss, X, Y, None)
        assert engines[1](X, Y, None, loss) == pytest.approx(value, rel=1e-12)
        assert relative(network.flat_gradients, gradient) <= 1e-12
    finally:
        for engine in engines.values():
            engine.close()


@pytest.mark.parametrize(
    "compiled",
    [False, pytest.param(True, marks=pytest.mark.skipif(
        kernels.logistic_block_sums_compiled() is None, reason="numba is not installed"))],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_logistic_blocks_on_either_kernel_give_the_plain_gradient(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch, compiled: bool, dtype: type
) -> None:
    """The seed's model adds its blocks through handnet.training.kernels: NumPy or compiled."""
    n, d = 5003, 9
    network, loss, k = _network("logistic", d, dtype)
    network.flat_parameters[...] += 0.3 * rng.standard_normal(network.n_parameters)
    X = rng.standard_normal((n, d)).astype(dtype)
    Y = _targets("logistic", rng, n, k, dtype)
    value, gradient = _plain(network, loss, X, Y, None)
    calls: list[bool] = []
    compiled_calls: list[bool] = []
    engine = FullBatchGradient(network, n_threads=2, block_bytes=300 * d * 8)
    # float32 rows take the kernel with vectorised exponentials.
    real_kernel, built = (
        (kernels.float32_block_sums_compiled(), "_FLOAT32_SUMS") if dtype == np.float32
        else (kernels.logistic_block_sums_compiled(), "_LOGISTIC_SUMS")
    )
    if real_kernel is not None:

        def compiled_spy(*args):  # type: ignore[no-untyped-def]
            compiled_calls.append(True)
            return real_kernel(*args)

        monkeypatch.setattr(kernels, built, compiled_spy)
    with kernels.numpy_only(not compiled):
        original = kernels.logistic_block_sums

        def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(True)
            return original(*args, **kwargs)

        blocks.logistic_block_sums, saved = spy, blocks.logistic_block_sums
        try:
            blocked = engine(X, Y, None, loss)
        finally:
            blocks.logistic_block_sums = saved
            engine.close()
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    rows = blocks.rows_per_block(d, np.dtype(dtype).itemsize, 300 * d * 8)
    assert len(calls) == -(-n // rows)  # every block through the kernel ...
    assert len(compiled_calls) == (len(calls) if compiled else 0)  # ... on the path asked for
    assert network.flat_gradients.dtype == dtype
    assert blocked == pytest.approx(value, rel=tolerance)
    assert relative(network.flat_gradients, gradient) <= 10 * tolerance


def test_float32_blocks_keep_float32_and_agree(rng: np.random.Generator) -> None:
    network, loss, k = _network("mlp", 5, np.float32)
    X = rng.standard_normal((3000, 5)).astype(np.float32)
    Y = _targets("mlp", rng, 3000, k, np.float32)
    value, gradient = _plain(network, loss, X, Y, None)
    engine = FullBatchGradient(network, n_threads=2, block_bytes=4096)
    blocked = engine(X, Y, None, loss)
    engine.close()
    assert network.flat_gradients.dtype == np.float32
    assert blocked == pytest.approx(value, rel=1e-5)
    assert relative(network.flat_gradients, gradient) <= 1e-4


def test_the_result_does_not_depend_on_timing(rng: np.random.Generator) -> None:
    """Fixed blocks per thread, sums in thread order: the same bits every time."""
    network, loss, k = _network("softmax", 6)
    X = rng.standard_normal((4000, 6))
    Y = _targets("softmax", rng, 4000, k, np.float64)
    engine = FullBatchGradient(network, n_threads=3, block_bytes=2048)
    results = []
    for _ in range(5):
        value = engine(X, Y, None, loss)
        results.append((value, network.flat_gradients.copy()))
    engine.close()
    for value, gradient in results[1:]:
        assert value == results[0][0]
        assert np.array_equal(gradient, results[0][1])


def test_blocks_of_zero_weight_contribute_nothing(rng: np.random.Generator) -> None:
    network, loss, k = _network("logistic", 4)
    X = rng.standard_normal((2000, 4))
    Y = _targets("logistic", rng, 2000, k, np.float64)
    w = rng.random(2000)
    w[:700] = 0.0  # the first blocks weigh nothing: no 0/0 there
    value, gradient = _plain(network, loss, X, Y, w)
    engine = FullBatchGradient(network, n_threads=2, block_bytes=100 * 4 * 8)
    assert engine(X, Y, w, loss) == pytest.approx(value, rel=1e-12)
    engine.close()
    assert relative(network.flat_gradients, gradient) <= 1e-12
    with pytest.raises(ValueError, match="weight 0"):
        FullBatchGradient(network, n_threads=1)(X, Y, np.zeros(2000), loss)


def test_block_sums_are_sums(rng: np.random.Generator) -> None:
    """What a Dask worker returns: S_b L_b, S_b grad L_b and S_b for its chunk."""
    network, loss, k = _network("regression", 3)
    X = rng.standard_normal((999, 3))
    Y = _targets("regression", rng, 999, k, np.float64)
    value, gradient = _plain(network, loss, X, Y, None)
    loss_sum, gradient_sum, weight_sum = block_sums(
        X, Y, None, network.flat_parameters, network.config(), loss, rows=100
    )
    assert weight_sum == 999
    assert loss_sum == pytest.approx(999 * value, rel=1e-12)
    assert relative(gradient_sum, 999 * gradient) <= 1e-12


def test_workspaces_are_private_copies() -> None:
    network, _, _ = _network("mlp", 4)
    copy = rebuild_network(network.config(), network.dtype)
    assert copy.n_parameters == network.n_parameters
    assert copy.n_penalized == network.n_penalized
    workspace = Workspace(network.config(), network.dtype)
    workspace.reset(network.flat_parameters)
    assert np.array_equal(workspace.network.flat_parameters, network.flat_parameters)
    assert not np.shares_memory(workspace.network.flat_parameters, network.flat_parameters)
    assert workspace.network.layers[0] is not network.layers[0]


def test_dropout_draws_keep_the_plain_path() -> None:
    network = Sequential([Dense(3, 4), Activation("relu"), Dropout(0.5), Dense(4, 1)])
    assert supports(network, training=False)
    assert not supports(network, training=True)
    assert supports(Sequential([Dense(3, 4), Dropout(0.0), Dense(4, 1)]), training=True)


# --- through the models: the trainer picks the engine for large data -------------------------


@pytest.fixture
def large(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    X = rng.standard_normal((24_000, 20))  # 3.8 MB: above MIN_BYTES once it is lowered
    y = (X[:, 0] - 0.5 * X[:, 1] + 0.5 * rng.standard_normal(24_000) > 0).astype(int)
    return X, y


def _fit_both(monkeypatch: pytest.MonkeyPatch, make, X, y, **fit):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(blocks, "MIN_BYTES", 1 << 60)  # the plain path
    plain = make().fit(X, y, **fit)
    monkeypatch.setattr(blocks, "MIN_BYTES", 1 << 20)
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 64 << 10)
    engine_calls: list[int] = []
    original = FullBatchGradient.__call__

    def counting(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        engine_calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(FullBatchGradient, "__call__", counting)
    blocked = make().fit(X, y, **fit)
    assert engine_calls, "the engine was not used"
    return plain, blocked


@pytest.mark.parametrize(
    ("make", "tolerance"),
    [
        (lambda: LogisticRegression(learning_rate=1.0, max_iter=25, tol=None, alpha=1e-3),
         1e-12),
        (lambda: SoftmaxRegression(learning_rate=0.5, max_iter=25, tol=None), 1e-12),
        # Converged within some 10 of its 25 iterations, L-BFGS then steps on the loss's
        # last bits, which the blocks add in another order: the same optimum, to 1e-8.
        (lambda: LogisticRegression(optimizer="lbfgs", max_iter=25, tol=None), 1e-8),
        (lambda: MLPClassifier((8,), optimizer="lbfgs", max_iter=20, tol=None,
                               random_state=0), 1e-12),
        (lambda: MLPClassifier((8,), optimizer="gd", batch_size=None, learning_rate=0.3,
                               max_iter=20, tol=None, random_state=0), 1e-12),
    ],
)
def test_full_batch_fits_match_the_plain_path(
    monkeypatch: pytest.MonkeyPatch, large, make, tolerance  # type: ignore[no-untyped-def]
) -> None:
    X, y = large
    plain, blocked = _fit_both(monkeypatch, make, X, y)
    assert relative(blocked.network_.flat_parameters, plain.network_.flat_parameters) <= tolerance
    assert blocked.loss_curve_ == pytest.approx(plain.loss_curve_, rel=1e-12)


def test_weighted_full_batch_fit_matches(monkeypatch: pytest.MonkeyPatch, large) -> None:  # type: ignore[no-untyped-def]
    X, y = large
    w = np.random.default_rng(3).random(len(y))

    def make() -> LogisticRegression:
        return LogisticRegression(learning_rate=1.0, max_iter=20, tol=None,
                                  class_weight="balanced")

    plain, blocked = _fit_both(monkeypatch, make, X, y, sample_weight=w)
    assert relative(blocked.network_.flat_parameters, plain.network_.flat_parameters) <= 1e-12


def test_regression_full_batch_fit_matches(monkeypatch: pytest.MonkeyPatch, large) -> None:  # type: ignore[no-untyped-def]
    X, _ = large
    targets = np.column_stack([X[:, 0] - X[:, 2], np.tanh(X[:, 1])])

    def make() -> MLPRegressor:
        return MLPRegressor((6,), optimizer="lbfgs", max_iter=15, tol=None, random_state=0)

    plain, blocked = _fit_both(monkeypatch, make, X, targets)
    assert relative(blocked.network_.flat_parameters, plain.network_.flat_parameters) <= 1e-12


def test_import_handnet_does_not_import_dask_zarr_or_h5py() -> None:
    code = (
        "import sys, handnet, handnet.data.blocks, handnet.data.streaming; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('dask', 'distributed', 'zarr', 'h5py')]; print(bad)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
