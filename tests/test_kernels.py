"""The per-example SGD kernels do the generic training step's math, only faster."""

from __future__ import annotations

import math

import numpy as np
import pytest

import handnet
from handnet.datasets import make_logistic
from handnet.nn.layers import Dense
from handnet.nn.losses import BinaryCrossEntropy
from handnet.nn.network import Sequential
from handnet.optim.optimizers import SGD
from handnet.training import Trainer, kernels
from handnet.training.fastpath import SeedKernels


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
@pytest.mark.parametrize("cls", [handnet.optim.optimizers.Adam, handnet.optim.optimizers.AdamW])
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


# --- full-batch block sums (handnet.training.kernels.logistic_block_sums) ---------------

needs_compiled_sums = pytest.mark.skipif(
    kernels.logistic_block_sums_compiled() is None, reason="numba is not installed"
)


def _block(rng: np.random.Generator, n: int, d: int, dtype: type, scale: float = 0.5):  # type: ignore[no-untyped-def]
    X = rng.standard_normal((n, d)).astype(dtype)
    y = (rng.random(n) < 0.5).astype(dtype)
    weights = (scale * rng.standard_normal(d)).astype(dtype)
    return X, y, weights


def _sums(X, y, weights, bias, use_numba, start=None):  # type: ignore[no-untyped-def]
    gradient = np.zeros(X.shape[1], X.dtype) if start is None else start.copy()
    loss_sum, bias_sum = kernels.logistic_block_sums(
        X, y, weights, bias, gradient, use_numba=use_numba
    )
    return loss_sum, bias_sum, gradient


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    ("n", "d"),
    [(1, 3), (6, 1), (7, 5), (37, 100), (2003, 13), (3001, 4)],  # n % 4: 1, 2, 3, 1, 3, 1
)
def test_block_sums_are_sums_of_the_per_row_formulas(
    rng: np.random.Generator, dtype: type, n: int, d: int
) -> None:
    """The NumPy path against a row-by-row float64 evaluation of the formulas."""
    X, y, weights = _block(rng, n, d, dtype)
    start = rng.standard_normal(d).astype(dtype)  # added to, not overwritten
    loss_sum, bias_sum, gradient = _sums(X, y, weights, 0.3, False, start)
    z = X.astype(np.float64) @ weights.astype(np.float64) + float(dtype(0.3))
    losses = np.logaddexp(0.0, z) - y * z
    residual = 1.0 / (1.0 + np.exp(-z)) - y
    tolerance = 1e-12 if dtype == np.float64 else 2e-5
    assert gradient.dtype == dtype
    assert loss_sum == pytest.approx(losses.sum(), rel=tolerance)
    assert bias_sum == pytest.approx(residual.sum(), rel=tolerance, abs=tolerance * n)
    np.testing.assert_allclose(
        gradient, start + residual @ X, rtol=tolerance, atol=tolerance * n
    )


@needs_compiled_sums
@pytest.mark.parametrize("prefetch", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("n", "d"), [(1, 3), (6, 1), (7, 5), (37, 100), (2003, 13), (3001, 4),
                                      (9, 2000)])  # rows longer than the prefetch distance
def test_compiled_block_sums_give_the_numpy_sums(
    rng: np.random.Generator, dtype: type, n: int, d: int, prefetch: bool
) -> None:
    X, y, weights = _block(rng, n, d, dtype)
    start = rng.standard_normal(d).astype(dtype)
    reference = _sums(X, y, weights, -0.2, False, start)
    if prefetch:
        compiled = _sums(X, y, weights, -0.2, True, start)
    else:
        kernel = kernels._build_logistic_sums(prefetch=False)
        assert kernel is not None
        gradient = start.copy()
        loss_sum, bias_sum = kernel(X, y, weights, dtype(-0.2), gradient)
        compiled = (loss_sum, bias_sum, gradient)
    tolerance = 1e-12 if dtype == np.float64 else 2e-5
    assert compiled[2].dtype == dtype
    assert compiled[0] == pytest.approx(reference[0], rel=tolerance)
    assert compiled[1] == pytest.approx(reference[1], rel=tolerance, abs=tolerance * n)
    np.testing.assert_allclose(compiled[2], reference[2], rtol=tolerance, atol=tolerance * n)


@pytest.mark.parametrize("use_numba", [False, pytest.param(True, marks=needs_compiled_sums)])
def test_block_sums_gradient_is_the_derivative_of_the_loss_sum(
    rng: np.random.Generator, use_numba: bool
) -> None:
    """Central finite differences in float64, for the weights and the bias."""
    X, y, weights = _block(rng, 203, 6, np.float64)
    bias, step = 0.1, 1e-6
    _, bias_sum, gradient = _sums(X, y, weights, bias, use_numba)
    numeric = np.empty_like(weights)
    for j in range(len(weights)):
        plus, minus = weights.copy(), weights.copy()
        plus[j] += step
        minus[j] -= step
        numeric[j] = (_sums(X, y, plus, bias, use_numba)[0]
                      - _sums(X, y, minus, bias, use_numba)[0]) / (2 * step)
    numeric_bias = (_sums(X, y, weights, bias + step, use_numba)[0]
                    - _sums(X, y, weights, bias - step, use_numba)[0]) / (2 * step)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-6)
    assert bias_sum == pytest.approx(numeric_bias, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("use_numba", [False, pytest.param(True, marks=needs_compiled_sums)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_block_sums_of_huge_logits_are_exact_and_warning_free(
    rng: np.random.Generator, use_numba: bool, dtype: type
) -> None:
    """|z| in the hundreds: no overflow (warnings are errors here), hinge-like limits."""
    X, y, _ = _block(rng, 41, 3, dtype)
    X[:, 0] = rng.choice([-1.0, 1.0], 41) * (1.0 + rng.random(41))
    weights = np.array([400.0, 1.0, -1.0], dtype=dtype)  # |z| from about 395 to 805
    loss_sum, bias_sum, gradient = _sums(X, y, weights, 0.0, use_numba)
    z = X.astype(np.float64) @ weights.astype(np.float64)
    assert np.all(np.abs(z) > 300)  # exp(-|z|) underflows in float32, nearly in float64
    expected_loss = np.maximum(z, 0) - y * z
    residual = (z > 0) - y  # sigmoid is exactly 0 or 1 at this range
    assert np.isfinite(loss_sum)
    assert loss_sum == pytest.approx(expected_loss.sum(), rel=1e-5)
    assert bias_sum == pytest.approx(residual.sum(), abs=1e-5)
    np.testing.assert_allclose(gradient, residual @ X.astype(np.float64), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("use_numba", [False, pytest.param(True, marks=needs_compiled_sums)])
def test_block_sums_propagate_nan(rng: np.random.Generator, use_numba: bool, dtype: type) -> None:
    """A diverged model gives a NaN loss (the trainer stops on it), not a number."""
    X, y, weights = _block(rng, 40, 3, dtype)  # float32: two blocks of 16 and a tail
    weights[1] = np.nan
    with np.errstate(invalid="ignore"):
        loss_sum, _, gradient = _sums(X, y, weights, 0.0, use_numba)
    assert np.isnan(loss_sum)
    assert np.all(np.isnan(gradient))


@needs_compiled_sums
def test_the_vectorised_exponential_is_within_one_ulp() -> None:
    """``_compiled.exp_nonpositive`` (float32 block sums) against the C library's exp."""
    import numba

    module = kernels.compiled_module()
    exp = module.exp_nonpositive

    @numba.njit
    def each(values):  # type: ignore[no-untyped-def]
        out = np.empty_like(values)
        for i in range(values.shape[0]):
            out[i] = exp(values[i])
        return out

    rng = np.random.default_rng(0)
    x = -np.concatenate([
        rng.uniform(0, 40, 200_000),
        rng.uniform(0, 760, 50_000),
        10.0 ** rng.uniform(-320, 1, 50_000),
        [0.0, 0.5 * math.log(2), math.log(2), 708.39, 709.0, 744.4, 745.13, 745.2, 746.0, 1e4],
    ])
    got, expected = each(x), np.exp(x)
    normal = expected >= np.finfo(np.float64).tiny
    ulps = np.abs(got[normal] - expected[normal]) / np.spacing(expected[normal])
    assert ulps.max() <= 1.0
    # Gradual underflow: within one step of the smallest subnormal, and 0 below -746.
    assert np.abs(got[~normal] - expected[~normal]).max() <= 5e-324
    assert each(np.array([0.0]))[0] == 1.0 and each(np.array([-np.inf]))[0] == 0.0
    assert np.isnan(each(np.array([np.nan]))[0])


@needs_compiled_sums
def test_compiled_block_sums_accept_any_layout(rng: np.random.Generator) -> None:
    X, y, weights = _block(rng, 50, 7, np.float64)
    fortran = np.asfortranarray(X)
    reference = _sums(X, y, weights, 0.0, False)
    for use_numba in (None, True):  # None: the NumPy path; True: a contiguous copy
        result = _sums(fortran, y, weights, 0.0, use_numba)
        np.testing.assert_allclose(result[2], reference[2], rtol=1e-12)
    assert fortran.flags.f_contiguous  # the caller's array is untouched
    read_only = X.copy()
    read_only.setflags(write=False)  # e.g. np.frombuffer, or a block of a read-only array
    result = _sums(read_only, y, weights, 0.0, True)
    np.testing.assert_allclose(result[2], reference[2], rtol=1e-12)


def test_numpy_only_turns_every_compiled_kernel_off(rng: np.random.Generator) -> None:
    before = kernels.compiled_enabled()
    param = np.zeros(kernels.FUSED_ADAM_MIN_SIZE)
    with kernels.numpy_only():
        assert not kernels.compiled_enabled()
        assert not kernels.numba_available()
        assert kernels.logistic_block_sums_compiled() is None
        assert not kernels.fused_adam_step(param, param.copy(), param.copy(), param.copy(),
                                           0.9, 0.999, 1e-8, 0.01, 1.0)
        X, y, weights = _block(rng, 8, 2, np.float64)
        with pytest.raises(ImportError, match="numpy_only"):
            _sums(X, y, weights, 0.0, True)
        with kernels.numpy_only(False):
            assert kernels.compiled_enabled()
    assert kernels.compiled_enabled() == before


def test_environment_variable_turns_the_compiled_kernels_off() -> None:
    import os
    import subprocess
    import sys

    code = "import handnet.training.kernels as k; print(k.compiled_enabled(), k.numba_available())"
    env = {**os.environ, "HANDNET_NUMPY_ONLY": "1"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, check=True, timeout=60)
    assert result.stdout.split() == ["False", "False"]


@needs_compiled_sums
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_default_dispatch_runs_the_compiled_kernel(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch, dtype: type, order: str
) -> None:
    """``use_numba=None`` with numba: compiled, whatever X's layout; numpy_only(): never.
    float32 rows take the kernel with vectorised exponentials."""
    if dtype == np.float32:
        real, built = kernels.float32_block_sums_compiled(), "_FLOAT32_SUMS"
        assert real is kernels.compiled_module().vectorised_block_sums
    else:
        real, built = kernels.logistic_block_sums_compiled(), "_LOGISTIC_SUMS"
    calls: list[int] = []

    def spy(*args):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(kernels, built, spy)
    X, y, weights = _block(rng, 300, 7, dtype)
    X = np.asarray(X, order=order)
    result = _sums(X, y, weights, 0.1, None)
    assert calls == [1]
    with kernels.numpy_only():
        reference = _sums(X, y, weights, 0.1, None)
    assert calls == [1]
    tolerance = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(result[2], reference[2], rtol=tolerance, atol=tolerance * 300)


@needs_compiled_sums
@pytest.mark.parametrize(("n", "d"), [(131_072, 4), (65_536, 8), (5242, 100)])
def test_compiled_float32_gradient_is_as_accurate_as_numpys(
    rng: np.random.Generator, n: int, d: int
) -> None:
    """Long float32 blocks (few features): blocked summation keeps the error small."""
    X, y, weights = _block(rng, n, d, np.float64, scale=0.3)
    exact = _sums(X, y, weights, 0.1, False)[2]
    args = (X.astype(np.float32), y.astype(np.float32), weights.astype(np.float32), 0.1)
    errors = []
    for use_numba in (True, False):
        gradient = _sums(*args, use_numba)[2]
        assert gradient.dtype == np.float32
        errors.append(np.max(np.abs(gradient - exact)) / np.max(np.abs(exact)))
    compiled_error, numpy_error = errors
    assert compiled_error <= max(numpy_error, 1e-6)


@pytest.mark.parametrize("use_numba", [False, pytest.param(True, marks=needs_compiled_sums)])
def test_block_sums_compute_in_the_gradients_dtype(
    rng: np.random.Generator, use_numba: bool
) -> None:
    X, y, weights = _block(rng, 64, 5, np.float64)
    reference = _sums(X, y, weights, 0.2, use_numba)
    gradient = np.zeros(5)
    loss_sum, bias_sum = kernels.logistic_block_sums(
        X.astype(np.float32), y.astype(np.int64), weights, 0.2, gradient, use_numba=use_numba
    )
    assert loss_sum == pytest.approx(reference[0], rel=1e-6)
    assert bias_sum == pytest.approx(reference[1], abs=1e-5)
    np.testing.assert_allclose(gradient, reference[2], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "path", ["gd_step", "sgd_numpy", "sgd_numba", "block_numpy", "block_numba"]
)
def test_every_logistic_kernel_keeps_the_digits_of_confident_right_predictions(path: str) -> None:
    """Each place the binary cross-entropy is written computes it without cancellation.

    One row with y = 1 and z = 33.3 (and one with y = 0, z = -25): the loss is
    log1p(exp(-|z|)), 3.4e-15 and 1.4e-11, which (log1p(e) + max(z, 0)) - y z rounds
    to 0 and to a value 2.8e-5 off.
    """
    if path.endswith("numba") and not kernels.numba_available():
        pytest.skip("numba is not installed")
    for z, target in ((33.3, 1.0), (-25.0, 0.0)):
        X = np.array([[z]])
        y = np.array([target])
        expected = math.log1p(math.exp(-abs(z)))
        weights, bias = np.array([1.0]), np.array([0.0])
        if path == "gd_step":
            workspace = tuple(np.empty((4, 1)))
            loss = kernels.logistic_gd_step(X, y, weights, bias, 0.0, 0.0, workspace)
        elif path.startswith("sgd"):
            loss = kernels.logistic_sgd_epoch(
                X, y, np.array([0]), weights, bias, 0.0, use_numba=path == "sgd_numba"
            )
        else:
            gradient = np.zeros(1)
            loss, _ = kernels.logistic_block_sums(
                X, y, weights, 0.0, gradient, use_numba=path == "block_numba"
            )
        assert loss == pytest.approx(expected, rel=1e-12, abs=0), (z, target, loss)


# --- issue 18: the seed's GD step in fewer passes, the scalar SGD path, loading numba ----


@pytest.mark.parametrize("l2", [0.0, 0.01])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_signed_rows_step_matches_logistic_gd_step(l2: float, dtype: type) -> None:
    """The 0/1-target step (signs folded into the rows) against the general kernel."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((301, 5)).astype(dtype)
    y = (X[:, 1] - X[:, 3] + 0.7 * rng.standard_normal(301) > 0).astype(dtype)
    start = rng.standard_normal(6).astype(dtype)
    parameters = start.copy()
    signed = kernels.SignedRows(X, y)
    assert kernels.SignedRows.applies(X, y, parameters)
    weights, bias = start[:5].copy(), start[5:].copy()
    workspace = tuple(np.empty((4, 301), dtype=dtype))
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    for _ in range(30):
        loss = signed.step(parameters, 0.5, l2)
        expected = kernels.logistic_gd_step(X, y, weights, bias, 0.5, l2, workspace)
        assert loss == pytest.approx(expected, rel=tolerance)
    np.testing.assert_allclose(parameters, np.concatenate([weights, bias]), rtol=tolerance,
                               atol=tolerance)


@pytest.mark.parametrize(("dtype", "tolerance"), [(np.float32, 5e-7), (np.float64, 1e-14)])
def test_signed_rows_keep_the_losss_digits(dtype: type, tolerance: float) -> None:
    """At zero weights every loss term is ln 2: the mean of 200,000 of them must come back
    to about the dtype's rounding (float32 needs NumPy's pairwise sum for that)."""
    X = np.random.default_rng(1).standard_normal((200_000, 4)).astype(dtype)
    y = (X[:, 0] > 0).astype(dtype)
    loss = kernels.SignedRows(X, y).step(np.zeros(5, dtype), 0.1, 0.0)
    assert loss == pytest.approx(math.log(2.0), rel=tolerance)


def test_signed_rows_take_only_zero_one_targets() -> None:
    X = np.zeros((3, 2))
    parameters = np.zeros(3)
    assert kernels.SignedRows.applies(X, np.array([0.0, 1.0, 1.0]), parameters)
    assert not kernels.SignedRows.applies(X, np.array([0.0, 0.5, 1.0]), parameters)
    assert not kernels.SignedRows.applies(X, np.array([0.0, 1.0, 1.0]), np.zeros(3, np.float32))


def test_soft_targets_take_the_general_gd_step() -> None:
    """Targets in (0, 1) are not 0/1: the general kernel, still the generic path's numbers."""
    rng = np.random.default_rng(6)
    X = rng.standard_normal((120, 3))
    y = rng.random(120)
    fast = _train(SGD(0.3), X, y, epochs=10, l2=0.0, batch_size=None)
    generic = _train(_PlainSGD(0.3), X, y, epochs=10, l2=0.0, batch_size=None)
    np.testing.assert_allclose(fast.network.flat_parameters, generic.network.flat_parameters,
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(fast.history.loss, generic.history.loss, rtol=1e-12)


@pytest.mark.parametrize("n_features", [1, 4, 8])
@pytest.mark.parametrize("l2", [0.0, 0.01])
def test_scalar_sgd_matches_the_numpy_kernel(n_features: int, l2: float) -> None:
    rng = np.random.default_rng(n_features)
    X = rng.standard_normal((700, n_features))
    y = (X[:, 0] + rng.standard_normal(700) > 0).astype(np.float64)
    order = rng.permutation(700)
    weight = rng.random(700) + 0.5
    for sample_weight in (None, weight):
        results = []
        for epoch in (kernels.scalar_sgd_epoch, kernels.logistic_sgd_epoch_numpy):
            weights, bias = np.full(n_features, 0.1), np.array([-0.2])
            total = epoch(X, y, order, weights, bias, 0.05, l2, sample_weight, 1.5)
            results.append((weights, bias, total))
        (w_s, b_s, t_s), (w_n, b_n, t_n) = results
        np.testing.assert_allclose(w_s, w_n, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(b_s, b_n, rtol=1e-12, atol=1e-15)
        assert t_s == pytest.approx(t_n, rel=1e-12)


@pytest.mark.skipif(not kernels.numba_available(), reason="numba is not installed")
@pytest.mark.parametrize("l2", [0.0, 0.01])
def test_scalar_sgd_gives_the_compiled_kernels_bits(l2: float) -> None:
    """Same operations in the same order: a fit may switch paths without a trace."""
    X, y = make_logistic(3000, labels="bernoulli", random_state=7)
    y = y.astype(np.float64)
    X[::7] *= 30.0  # confident predictions too: exp(-|z|) near 0
    order = np.random.default_rng(8).permutation(len(X))
    results = []
    for use_numba in (False, True):
        weights, bias = np.array([0.3, -0.2, 0.1, 0.0]), np.array([0.05])
        total = kernels.logistic_sgd_epoch(
            X, y, order, weights, bias, 0.02, l2, use_numba=use_numba
        )
        results.append((weights.tobytes(), bias.tobytes(), total))
    assert results[0] == results[1]


def test_model_results_do_not_depend_on_the_sgd_route(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scalar path throughout, or compiled from the first row: the same bits."""
    if not kernels.numba_available():
        pytest.skip("numba is not installed")
    X, y = make_logistic(2000, random_state=3)
    fits = []
    for threshold in (10**12, 0):
        monkeypatch.setattr(handnet.training.Trainer, "NUMBA_MIN_ROWS", threshold)
        with kernels.numpy_only(threshold != 0):
            model = handnet.LogisticRegression(batch_size=1, max_iter=3, tol=None, random_state=0)
            model.fit(X, y)
        fits.append((model.coef_.tobytes(), model.intercept_.tobytes(), model.loss_curve_))
    assert fits[0] == fits[1]


class _Planned:
    """A :class:`~handnet.training.fastpath.SeedKernels` for the policy tests."""

    @staticmethod
    def kernels(max_iter: int, tol: float | None = None, n_iter_no_change: int = 10) -> SeedKernels:
        seed = SeedKernels()
        seed.start(True, max_iter, tol, n_iter_no_change)
        return seed


def test_numba_is_loaded_only_for_enough_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SGD route: the fit's planned rows (or those run) against the threshold."""
    monkeypatch.setattr(kernels, "numba_installed", lambda: True)
    monkeypatch.setattr(kernels, "sgd_kernel_ready", lambda: False)
    X = np.zeros((1000, 4))
    policy = _Planned.kernels(max_iter=20)  # no stopping rule: 20 epochs of 1000 rows
    assert not policy.use_numba(X, 1000, 20_001)
    assert policy.use_numba(X, 1000, 20_000)
    # A stopping rule can end the fit after n_iter_no_change + 1 epochs: only those count.
    stopping = _Planned.kernels(max_iter=1000, tol=1e-4, n_iter_no_change=4)
    assert not stopping.use_numba(X, 1000, 5_001)
    assert stopping.use_numba(X, 1000, 5_000)
    # ... or once the rows already run reach it (ski rental: never more than twice late).
    stopping.rows_run = 9_000
    assert stopping.use_numba(X, 1000, 10_000)
    # Never for float32 (the kernel is float64), nor without numba, nor under numpy_only().
    assert not policy.use_numba(X.astype(np.float32), 1000, 0)
    with kernels.numpy_only():
        assert not policy.use_numba(X, 1000, 0)
    monkeypatch.setattr(kernels, "numba_installed", lambda: False)
    assert not policy.use_numba(X, 1000, 0)


def test_a_loaded_kernel_runs_small_fits_of_few_features(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once loaded it costs nothing: used where it gives the scalar path's bits."""
    monkeypatch.setattr(kernels, "numba_installed", lambda: True)
    monkeypatch.setattr(kernels, "sgd_kernel_ready", lambda: True)
    policy = _Planned.kernels(max_iter=1)
    assert policy.use_numba(np.zeros((10, 4)), 10, 10**9)
    # More features: the NumPy path's bits differ, so the route stays the planned one.
    assert not policy.use_numba(np.zeros((10, 40)), 10, 10**9)


def _python(code: str, **env: str) -> str:
    import os
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env},
                            capture_output=True, text=True, check=True, timeout=300)
    return result.stdout.strip()


def test_import_and_a_small_fit_do_not_load_numba() -> None:
    code = (
        "import sys, handnet\n"
        "from handnet.datasets import make_logistic\n"
        "X, y = make_logistic(500, random_state=0)\n"
        "handnet.LogisticRegression(batch_size=1, max_iter=3, tol=None).fit(X, y)\n"
        "handnet.LogisticRegression(max_iter=50, tol=None).fit(X, y)\n"
        "print('numba' in sys.modules)"
    )
    assert _python(code) == "False"


@pytest.mark.skipif(not kernels.numba_installed(), reason="numba is not installed")
def test_kernels_compile_in_memory_where_no_cache_directory_is_writable() -> None:
    """numba finds no cache locator (as for a read-only install without a home): no error."""
    code = (
        "import warnings; warnings.simplefilter('error')\n"
        "import numpy as np\n"
        "from handnet.training import kernels, _compiled\n"
        "X = np.ones((9, 2)); y = np.ones(9); w = np.zeros(2); b = np.zeros(1)\n"
        "kernels.logistic_sgd_epoch(X, y, np.arange(9), w, b, 0.1, use_numba=True)\n"
        "print(_compiled.sgd_epoch._cache.__class__.__name__)"
    )
    # IPythonCacheLocator alone: outside IPython it never applies, so no locator is found.
    out = _python(code, NUMBA_CACHE_LOCATOR_CLASSES="IPythonCacheLocator")
    assert out == "NullCache"


@needs_compiled_sums
@pytest.mark.parametrize(("pays", "expected"), [(True, "block_sums"), (False, "block_sums_plain")])
def test_the_prefetch_hint_is_used_only_where_it_pays(
    monkeypatch: pytest.MonkeyPatch, pays: bool, expected: str
) -> None:
    """``PREFETCH_PAYS`` (from the host CPU's name) picks the kernel with or without the hint."""
    module = kernels.compiled_module()
    assert module is not None
    assert module._prefetch_pays("znver4") is False  # AMD Zen: the hint only costs
    assert module._prefetch_pays("icelake-server") is True  # where it was tuned
    monkeypatch.setattr(module, "PREFETCH_PAYS", pays)
    monkeypatch.setattr(kernels, "_LOGISTIC_SUMS", False)  # look for it again
    assert kernels.logistic_block_sums_compiled() is getattr(module, expected)
