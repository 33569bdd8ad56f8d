"""The kernels compiled ahead of time (handnet._native, ``handnet compile``).

One module build (some 10-30 s) into this file's own cache directory serves every
test here; the other test files never see it (conftest gives them an empty one).
"""

from __future__ import annotations

import io
import itertools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.test_layers import check_mixed_dtype_gradients

from handnet import _native
from handnet.cli import main
from handnet.nn.layers import LAYERS
from handnet.training import kernels

pytest.importorskip("numba")

from handnet.nn import _compiled_pooling
from handnet.training import _compiled

TRAINING = "handnet.training._compiled"
POOLING = "handnet.nn._compiled_pooling"
DENSE = "handnet.nn._compiled_dense"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The module built into a directory of this file's own; the variable restored after."""
    previous = os.environ["HANDNET_CACHE_DIR"]
    os.environ["HANDNET_CACHE_DIR"] = str(tmp_path_factory.mktemp("native-cache"))
    _native.forget()
    try:
        yield _native.build()
    finally:
        os.environ["HANDNET_CACHE_DIR"] = previous
        _native.forget()


def test_a_built_module_is_found_and_holds_every_kernel(built: Path) -> None:
    assert built == _native.module_path() and built.is_file()
    assert _native.available()
    for export in _native.EXPORTS:
        for dtype in export.dtypes:
            namespace = _native.kernels(export.module, np.dtype(dtype))
            assert namespace is not None and callable(getattr(namespace, export.name))
    assert not hasattr(_native.kernels(TRAINING, np.float32), "sgd_epoch")  # float64 only
    assert _native.kernels(TRAINING, np.int64) is None


def test_loading_the_module_does_not_import_numba(built: Path) -> None:
    code = (
        "import sys, numpy as np\n"
        "from handnet import _native\n"
        "assert _native.kernels('handnet.training._compiled', np.float64) is not None\n"
        "assert 'numba' not in sys.modules, 'numba was imported'\n"
    )
    environment = {**os.environ, "HANDNET_CACHE_DIR": os.environ["HANDNET_CACHE_DIR"]}
    subprocess.run([sys.executable, "-c", code], check=True, env=environment, timeout=120)


def test_no_module_is_loaded_where_none_was_built(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDNET_CACHE_DIR", str(tmp_path))
    _native.forget()
    try:
        assert not _native.available()
        assert _native.kernels(TRAINING, np.float64) is None
    finally:
        _native.forget()


def test_numpy_only_turns_the_module_off(built: Path) -> None:
    with kernels.numpy_only():
        assert _native.kernels(TRAINING, np.float64) is None
        assert not _native.available()
    assert _native.kernels(TRAINING, np.float64) is not None


# --- the same bits as the JIT kernels ------------------------------------------------------


@pytest.mark.parametrize("l2", [0.0, 0.01])
def test_sgd_epoch_gives_the_jit_and_scalar_bits(built: Path, rng: np.random.Generator,
                                                 l2: float) -> None:
    X = rng.normal(size=(300, 4))
    y = (rng.random(300) < 0.5).astype(float)
    order = rng.permutation(300)
    scales = rng.uniform(0.5, 1.5, 300)
    native = _native.kernels(TRAINING, np.float64)
    results = []
    for epoch in (native.sgd_epoch, _compiled.sgd_epoch):
        weights, bias = np.full(4, 0.1), np.zeros(1)
        total = epoch(X, y, order, weights, bias, 0.05, l2, scales, 0.0)
        results.append((total, weights, bias))
    weights, bias = np.full(4, 0.1), np.zeros(1)
    total = kernels.scalar_sgd_epoch(X, y, order, weights, bias, 0.05, l2, scales, 0.0)
    results.append((total, weights, bias))
    for total, weights, bias in results[1:]:
        assert total == results[0][0]
        np.testing.assert_array_equal(weights, results[0][1])
        np.testing.assert_array_equal(bias, results[0][2])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_block_sums_give_the_jit_kernels_bits(built: Path, rng: np.random.Generator,
                                              dtype: type) -> None:
    X = rng.normal(size=(1031, 37)).astype(dtype)  # a tail of 3 rows after the quads
    y = (rng.random(1031) < 0.5).astype(dtype)
    w = (0.1 * rng.normal(size=37)).astype(dtype)
    native = _native.kernels(TRAINING, dtype)
    gradient_native, gradient_jit = np.zeros(37, dtype), np.zeros(37, dtype)
    sums_native = native.block_sums(X, y, w, dtype(0.3), gradient_native)
    jit = _compiled.vectorised_block_sums if dtype == np.float32 else _compiled.host_block_sums
    sums_jit = jit(X, y, w, dtype(0.3), gradient_jit)
    assert sums_native == sums_jit
    np.testing.assert_array_equal(gradient_native, gradient_jit)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_adam_gives_the_jit_kernels_bits(built: Path, rng: np.random.Generator,
                                               dtype: type) -> None:
    arrays = [rng.normal(size=1000).astype(dtype) for _ in range(3)]
    arrays.append(rng.uniform(0, 1, 1000).astype(dtype))
    scalars = [dtype(s) for s in (0.9, 0.1, 0.999, 0.001, 1e-8, 0.01, 1.2, 0.99)]
    native_arrays = [a.copy() for a in arrays]
    _native.kernels(TRAINING, dtype).fused_adam(*native_arrays, *scalars)
    _compiled.fused_adam(*arrays, *scalars)
    for native, jit in zip(native_arrays, arrays, strict=True):
        np.testing.assert_array_equal(native, jit)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pooling_gives_the_jit_kernels_numbers(built: Path, rng: np.random.Generator,
                                                   dtype: type) -> None:
    X = rng.normal(size=(3, 2, 6, 8)).astype(dtype)
    X[0, 0, 0, 0] = np.nan
    native = _native.kernels(POOLING, dtype)
    outs = []
    for forward, backward in (
        (native.max_pool_2x2_forward, native.max_pool_2x2_backward),
        (_compiled_pooling.max_pool_2x2_forward, _compiled_pooling.max_pool_2x2_backward),
    ):
        out, first = np.empty((3, 2, 3, 4), dtype), np.empty((3, 2, 3, 4), np.uint8)
        forward(X, out, first)
        dX = np.full(X.shape, -1.0, dtype)
        backward(out * 2, first, dX)
        outs.append((out, first, dX))
    for a, b in zip(*outs, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("layout", ["C", "strided", "F"])
def test_the_max_pooling_layer_gives_the_numpy_numbers_on_any_layout(
    built: Path, rng: np.random.Generator, layout: str
) -> None:
    """C-contiguous input takes the kernels built ahead of time, other layouts NumPy."""
    from handnet import MaxPool2D

    X = rng.normal(size=(4, 3, 6, 8))
    images = {"C": X, "strided": X[:, :, :, ::-1], "F": np.asfortranarray(X)}[layout]
    gradient = rng.normal(size=(4, 3, 3, 4))[..., ::-1]  # never contiguous
    results = []
    for numpy_only in (False, True):
        with kernels.numpy_only(numpy_only):
            layer = MaxPool2D(2)
            out = layer.forward(images, training=True).copy()
            results.append((out, layer.backward(gradient).copy()))
    for native, reference in zip(*results, strict=True):
        np.testing.assert_array_equal(native, reference)


# --- a dense network's passes between its products ---------------------------------------


def _awkward(rng: np.random.Generator, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """Normal values with a NaN, both infinities, both zeros and a subnormal among them."""
    values = rng.normal(size=shape).astype(dtype).reshape(-1)
    values[:6] = [np.nan, np.inf, -np.inf, 0.0, -0.0, np.finfo(dtype).smallest_subnormal]
    return values.reshape(shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_and_bias_kernels_give_numpys_bits(built: Path, rng: np.random.Generator,
                                                dtype: type) -> None:
    from handnet.nn.activations import relu, relu_backward

    native = _native.kernels(DENSE, dtype)
    z, dout = _awkward(rng, (7, 5), dtype), _awkward(rng, (7, 5), dtype)[::-1].copy()
    a = np.empty_like(z)
    native.relu_forward(z.reshape(-1), a.reshape(-1))
    # assert_array_equal calls -0.0 and 0.0 equal: compare the bits.
    np.testing.assert_array_equal(a.view(np.uint8), relu(z).view(np.uint8))
    dz = np.empty_like(z)
    native.relu_backward(dout.reshape(-1), z.reshape(-1), dz.reshape(-1))
    with np.errstate(invalid="ignore"):  # inf * 0 in NumPy's product: NaN, as compiled
        reference = relu_backward(dout, z, a)
    np.testing.assert_array_equal(dz.view(np.uint8), reference.view(np.uint8))
    bias = rng.normal(size=5).astype(dtype)
    out = z.copy()
    native.add_bias(out, bias)
    np.testing.assert_array_equal(out.view(np.uint8), (z + bias).view(np.uint8))
    sums = np.full(5, 7.0, dtype)
    native.column_sums(dout, sums)
    np.testing.assert_array_equal(sums, dout.sum(axis=0))
    native.column_sums(dout[:0], sums)
    np.testing.assert_array_equal(sums, 0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_softmax_kernel_gives_the_numpy_loss_and_gradient(
    built: Path, rng: np.random.Generator, dtype: type
) -> None:
    from handnet.nn.losses import softmax_cross_entropy

    logits = (rng.normal(size=(9, 4)) * 30).astype(dtype)
    logits[0] = [1e4, -1e4, 0.0, 3.0]  # far apart: exp underflows to 0, nothing overflows
    one_hot = np.eye(4, dtype=dtype)[rng.integers(0, 4, 9)]
    soft = rng.dirichlet(np.ones(4), size=9).astype(dtype)  # any probability rows
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    for targets in (one_hot, soft):
        dlogits = np.empty_like(logits)
        loss = _native.kernels(DENSE, dtype).softmax_cross_entropy(logits, targets, dlogits)
        reference_loss, reference = softmax_cross_entropy(logits, targets)
        assert loss == pytest.approx(reference_loss, rel=tolerance)
        np.testing.assert_allclose(dlogits, reference, rtol=tolerance, atol=tolerance / 9)
    logits[3, 2] = np.nan
    dlogits = np.empty_like(logits)
    assert np.isnan(_native.kernels(DENSE, dtype).softmax_cross_entropy(logits, one_hot,
                                                                       dlogits))
    assert np.isnan(dlogits[3]).all() and np.isfinite(np.delete(dlogits, 3, axis=0)).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_l2_kernel_gives_numpys_gradient_bits_and_value(
    built: Path, rng: np.random.Generator, dtype: type
) -> None:
    from handnet.nn.penalties import l2_penalty

    weights = _awkward(rng, (301,), dtype)
    weights[~np.isfinite(weights)] = 1.5  # the penalty's value needs finite weights
    gradients = rng.normal(size=301).astype(dtype)
    expected = gradients + dtype(1e-3) * weights
    squares = _native.kernels(DENSE, dtype).add_l2(weights, gradients, dtype(1e-3))
    np.testing.assert_array_equal(gradients.view(np.uint8), expected.view(np.uint8))
    assert 0.5 * 1e-3 * squares == pytest.approx(
        l2_penalty(weights.astype(np.float64), 1e-3), rel=1e-14
    )


def test_add_l2_takes_the_kernel_where_it_applies_and_numpy_elsewhere(
    built: Path, rng: np.random.Generator
) -> None:
    """The penalty's one pass for flat vectors of one dtype; NumPy's for the rest, with
    the same gradient and value to rounding."""
    from handnet.nn.penalties import add_l2, l2_penalty

    weights = rng.normal(size=40)
    for w, g in ((weights, np.zeros(40)), (weights.astype(np.float32), np.zeros(40, np.float32)),
                 (weights[::2], np.zeros(20)),  # strided
                 (weights.astype(np.float32), np.zeros(40))):  # mixed dtypes
        value = add_l2(w, g, 0.25)
        np.testing.assert_allclose(g, 0.25 * w, rtol=1e-6)
        assert value == pytest.approx(l2_penalty(w.astype(np.float64), 0.25), rel=1e-6)
    read_only = np.zeros(40)
    read_only.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):  # NumPy's error, as without the kernel
        add_l2(weights, read_only, 0.25)
    with kernels.numpy_only():
        g_numpy = np.zeros(40)
        value_numpy = add_l2(weights, g_numpy, 0.25)
    g_kernel = np.zeros(40)
    assert add_l2(weights, g_kernel, 0.25) == pytest.approx(value_numpy, rel=1e-14)
    np.testing.assert_array_equal(g_kernel, g_numpy)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gather_rows_gives_np_takes_rows(built: Path, rng: np.random.Generator,
                                         dtype: type) -> None:
    source = rng.normal(size=(50, 7)).astype(dtype)
    for n_rows in range(10):  # the four-row groups and every tail
        index = rng.integers(0, 50, n_rows).astype(np.intp)
        out = np.empty((n_rows, 7), dtype)
        _native.kernels(TRAINING, dtype).gather_rows(source, index, out)
        np.testing.assert_array_equal(out, source[index])


def test_the_trainer_gathers_rows_and_images_by_the_kernel(
    built: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows and images (as flat rows) by the kernel; other index types and 1-D by NumPy."""
    from handnet.training import Trainer

    shapes = []
    for dtype in (np.float32, np.float64):
        namespace = _native.kernels(TRAINING, dtype)
        kernel = namespace.gather_rows

        def spy(source: Any, index: Any, out: Any, _kernel: Any = kernel) -> None:
            shapes.append(source.shape)
            _kernel(source, index, out)

        monkeypatch.setattr(namespace, "gather_rows", spy)
    gather = Trainer._gather
    for source in (rng.normal(size=(20, 3)), rng.normal(size=(20, 2, 3, 4)).astype(np.float32),
                   rng.normal(size=(20, 0)), rng.normal(size=20)):
        for index in (rng.permutation(20)[:7], rng.permutation(20)[:7].astype(np.int32),
                      np.arange(20)[::3]):
            trainer = Trainer.__new__(Trainer)  # _gather reads only its buffers
            trainer._buffers = {}
            np.testing.assert_array_equal(gather(trainer, "X", source, index), source[index])
    assert shapes == [(20, 3), (20, 24), (20, 0)]  # the int32 and strided indices by NumPy


def test_an_mlp_fit_takes_the_dense_kernels_and_numpys_numbers(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each kernel runs in an MLP's fit; the fit matches NumPy's to rounding."""
    import handnet

    X, y = handnet.datasets.make_softmax(300, n_features=6, n_classes=3, random_state=0)
    calls: dict[str, int] = {}

    def counting(name: str, kernel: Any) -> Any:
        def counted(*args: Any) -> Any:
            calls[name] = calls.get(name, 0) + 1
            return kernel(*args)

        return counted

    for module, names in ((DENSE, ("add_bias", "column_sums", "relu_forward",
                                   "relu_backward", "softmax_cross_entropy", "add_l2")),
                          (TRAINING, ("gather_rows",))):
        for dtype in (np.float32, np.float64):
            namespace = _native.kernels(module, dtype)
            for name in names:
                monkeypatch.setattr(namespace, name, counting(name, getattr(namespace, name)))
    models = {}
    for dtype in ("float32", "float64"):
        for numpy_only in (False, True):
            with kernels.numpy_only(numpy_only):
                models[dtype, numpy_only] = handnet.MLPClassifier(
                    (16, 8), batch_size=32, max_iter=5, tol=None, random_state=0
                ).fit(X.astype(dtype), y)
    assert set(calls) == {"add_bias", "column_sums", "relu_forward", "relu_backward",
                          "softmax_cross_entropy", "add_l2", "gather_rows"}, calls
    for dtype, rtol in (("float32", 1e-4), ("float64", 1e-10)):
        native, reference = models[dtype, False], models[dtype, True]
        for a, b in zip(native.coefs_, reference.coefs_, strict=True):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(native.loss_curve_, reference.loss_curve_, rtol=rtol)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_layer_takes_a_gradient_of_another_dtype_with_the_kernels_built(
    built: Path, rng: np.random.Generator, name: str
) -> None:
    """As ``tests/test_layers.py`` checks on NumPy's paths: the compiled kernels (max
    pooling's takes one dtype) must not turn a float64 gradient into a TypeError."""
    for input_dtype in (np.float32, np.float64):
        check_mixed_dtype_gradients(name, input_dtype, rng)


def test_the_dense_layers_take_numpy_for_what_the_kernels_do_not_take(
    built: Path, rng: np.random.Generator
) -> None:
    """Strided input, mixed dtypes and sample weights: NumPy's numbers, never a TypeError."""
    from handnet import Dense, ReLU
    from handnet.nn.losses import SoftmaxCrossEntropy

    X = rng.normal(size=(6, 8))
    layer = Dense(4, 3, dtype=np.float32)
    layer.build((4,), rng, np.float32)
    layer.bias[:] = [1.0, -2.0, 0.5]
    relu = ReLU()
    results = []
    for numpy_only in (False, True):
        with kernels.numpy_only(numpy_only):
            strided = relu.forward(X[:, ::2], training=True).copy()
            back = relu.backward(X[:, 1::2]).copy()
            mixed = layer.forward(X[:, :4], training=True).copy()  # float64 into float32
            layer.forward(X[:, :4].astype(np.float32), training=True)
            layer.backward(X[::-1, :3].astype(np.float32)[::-1])  # strided rows
            weighted = SoftmaxCrossEntropy()(X[:, :3], np.eye(3)[[0, 1, 2, 0, 1, 2]],
                                             np.arange(1.0, 7.0))
            results.append((strided, back, mixed, layer.grad_bias.copy(), weighted[1],
                            np.float64(weighted[0])))
    for native, reference in zip(*results, strict=True):
        np.testing.assert_array_equal(native, reference)


def _both_paths(run: Any) -> list[Any]:
    """``run()`` with the module's kernels, then on NumPy's paths alone."""
    results = []
    for numpy_only in (False, True):
        with kernels.numpy_only(numpy_only):
            results.append(run())
    return results


def _same_bits(a: Any, b: Any) -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a.reshape(-1).view(np.uint8), b.reshape(-1).view(np.uint8))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_dense_layers_bias_gradient_has_numpys_bits_at_every_width(
    built: Path, rng: np.random.Generator, dtype: type
) -> None:
    """NumPy sums one column pairwise (it is contiguous) and wider ones row by row: a
    one-output layer (every binary classifier) takes NumPy's sum."""
    from handnet import Dense

    for width in (*range(1, 18), 64, 128, 300):
        for n_rows in (1, 2, 3, 7, 9, 33, 128, 257):
            layer = Dense(3, width, dtype=dtype)
            layer.build((3,), rng, dtype)
            X = rng.normal(size=(n_rows, 3)).astype(dtype)
            dout = rng.normal(size=(n_rows, width)).astype(dtype)

            def run(layer: Any = layer, X: Any = X, dout: Any = dout) -> Any:
                out = layer.forward(X, training=True).copy()
                layer.backward(dout)
                return out, layer.grad_bias.copy()

            (out, bias), (reference_out, reference_bias) = _both_paths(run)
            _same_bits(out, reference_out)
            _same_bits(bias, reference_bias)


def test_the_dense_kernels_leave_what_they_do_not_take_to_numpy(
    built: Path, rng: np.random.Generator
) -> None:
    """Found by a review: 1-D and 3-D input to Dense, big-endian arrays, np.matrix, a 0-d
    ReLU input and logits of no class raised TypeError or gave another answer."""
    from handnet import Dense, ReLU
    from handnet.nn.losses import SoftmaxCrossEntropy

    layer = Dense(4, 3)
    layer.build((4,), rng, np.float64)
    layer.bias[:] = [0.5, -1.0, 2.0]
    big_endian = rng.normal(size=(5, 4)).astype(">f8")
    targets = np.eye(4)[[0, 1, 2, 3, 0]]
    with pytest.warns(PendingDeprecationWarning):  # np.matrix: on its way out, still met
        matrix = np.asmatrix(big_endian.astype(float))
    cases = {
        "dense 1-D": lambda: layer.forward(np.ones(4)),
        "dense 3-D": lambda: layer.forward(np.ones((2, 5, 4))),
        "relu big-endian": lambda: ReLU().forward(big_endian, training=True).copy(),
        "relu matrix": lambda: np.asarray(ReLU().forward(matrix)),
        "relu 0-d": lambda: ReLU().forward(np.array(-2.0)),
        "loss big-endian": lambda: SoftmaxCrossEntropy()(big_endian, targets),
    }
    for name, run in cases.items():
        native, reference = _both_paths(run)
        if isinstance(reference, tuple):
            assert native[0] == reference[0], name
            np.testing.assert_allclose(native[1], reference[1], rtol=1e-15, err_msg=name)
        else:
            assert type(native) is type(reference), name
            _same_bits(native, reference)
    for numpy_only in (False, True):
        with kernels.numpy_only(numpy_only), pytest.raises(ValueError):
            SoftmaxCrossEntropy()(np.zeros((4, 0)), np.zeros((4, 0)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_softmax_kernel_keeps_the_loss_of_large_logits(built: Path, dtype: type) -> None:
    """The shift before the log-sum: ``m + log s`` would round ``log s`` away."""
    from handnet.nn.losses import SoftmaxCrossEntropy, softmax_cross_entropy

    dense = _native.kernels(DENSE, dtype)
    for logits, targets in (([[1e20, 1e20, 0.0]], [[1.0, 0.0, 0.0]]),
                            ([[1000.0, 980.0]], [[0.0, 1.0]])):
        z, y = np.array(logits, dtype), np.array(targets, dtype)
        dlogits = np.empty_like(z)
        loss = dense.softmax_cross_entropy(z, y, dlogits)
        reference, _ = softmax_cross_entropy(z, y)
        assert loss == pytest.approx(reference, rel=1e-6 if dtype == np.float32 else 1e-12)
    assert SoftmaxCrossEntropy()(np.array([[1e20, 1e20, 0.0]]),
                                 np.array([[1.0, 0.0, 0.0]]))[0] == pytest.approx(np.log(2))


def test_adam_takes_numpy_for_what_the_compiled_step_would_misread(built: Path) -> None:
    """``Optimizer.step`` is public: a gradient of another dtype, strided, or of another
    length takes NumPy's path (a result, or NumPy's error), never the kernel's guess."""
    from handnet.optim.optimizers import Adam

    for gradient in (np.full(20_000, 0.5, np.float32), np.full(40_000, 0.5)[::2]):
        param = np.zeros(20_000)
        Adam(learning_rate=0.1).step([(param, gradient)])
        reference = np.zeros(20_000)
        with kernels.numpy_only():
            Adam(learning_rate=0.1).step([(reference, np.full(20_000, 0.5))])
        np.testing.assert_allclose(param, reference, rtol=1e-6)
    with pytest.raises(ValueError):
        Adam().step([(np.zeros(20_000), np.ones(3))])


def test_the_sgd_kernel_checks_what_it_indexes(built: Path) -> None:
    X, y = np.ones((10, 3)), np.ones(10)
    w, b = np.zeros(3), np.zeros(1)
    with pytest.raises(IndexError, match="order must index rows 0 to 9"):
        kernels.logistic_sgd_epoch(X, y, np.array([0, 10**9]), w, b, 0.1, use_numba=True)
    with pytest.raises(ValueError, match="weights need shape"):
        kernels.logistic_sgd_epoch(X, y, np.arange(10), np.zeros(2), b, 0.1, use_numba=True)
    with pytest.raises(ValueError, match="weights need shape"):
        kernels.logistic_sgd_epoch(X, y, np.arange(10), w, np.zeros(0), 0.1, use_numba=True)
    # Other index and target dtypes are converted, as the JIT and NumPy paths take them.
    kernels.logistic_sgd_epoch(X, y.astype(np.float32), np.arange(10, dtype=np.int32), w, b,
                               0.1, sample_weight=np.ones(10, np.float32), use_numba=True)


def test_the_block_sums_check_their_lengths(built: Path) -> None:
    X = np.ones((10, 3))
    with pytest.raises(ValueError, match="block sums of X"):
        kernels.logistic_block_sums(X, np.ones(9), np.zeros(3), 0.0, np.zeros(3),
                                    use_numba=True)
    with pytest.raises(ValueError, match="block sums of X"):
        kernels.logistic_block_sums(X, np.ones(10), np.zeros(2), 0.0, np.zeros(3),
                                    use_numba=True)


def test_a_build_without_a_c_compiler_is_a_build_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HANDNET_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CC", "false")
    monkeypatch.setenv("PATH", str(tmp_path))  # no gcc, cc or clang
    try:
        with pytest.raises(_native.BuildError, match="could not be built"):
            _native.build()
        assert not list((tmp_path / "native").glob(".build-*"))  # cleaned up
    finally:
        _native.forget()


@pytest.mark.parametrize("alpha", [0.0, 0.01])
def test_the_seeds_full_batch_steps_take_the_compiled_sums(
    built: Path, monkeypatch: pytest.MonkeyPatch, alpha: float
) -> None:
    """With the module built, the seed's GD steps run the vectorised block sums
    (``kernels.compiled_gd_step``): the NumPy path's numbers to rounding."""
    import handnet

    X, y = handnet.datasets.make_logistic(1000, random_state=0)
    steps: list[int] = []
    real = kernels.compiled_gd_step

    def spy(*args):  # type: ignore[no-untyped-def]
        steps.append(1)
        return real(*args)

    monkeypatch.setattr(kernels, "compiled_gd_step", spy)
    settings = dict(learning_rate=0.1, max_iter=300, tol=None, alpha=alpha, init="normal",
                    random_state=0)
    compiled = handnet.LogisticRegression(**settings).fit(X, y)
    assert len(steps) == 300
    with kernels.numpy_only():
        reference = handnet.LogisticRegression(**settings).fit(X, y)
    assert len(steps) == 300
    np.testing.assert_allclose(compiled.coef_, reference.coef_, rtol=1e-10)
    np.testing.assert_allclose(compiled.intercept_, reference.intercept_, rtol=1e-10)
    np.testing.assert_allclose(compiled.loss_curve_, reference.loss_curve_, rtol=1e-12)


# --- the guard: numba's wrappers check only item sizes ----------------------------------------


def test_the_guard_refuses_what_the_extension_would_misread(built: Path) -> None:
    adam = _native.kernels(TRAINING, np.float64).fused_adam
    good = [np.zeros(4) for _ in range(4)]
    scalars = [0.5] * 8
    adam(*good, *scalars)
    with pytest.raises(TypeError, match="argument 1 must be a 1-D C-contiguous float64"):
        adam(good[0], np.zeros(4, np.int64), *good[2:], *scalars)  # same item size
    with pytest.raises(TypeError, match="argument 0 must be a 1-D C-contiguous"):
        adam(np.zeros(8)[::2], *good[1:], *scalars)
    with pytest.raises(TypeError, match="1-D"):
        adam(np.zeros((2, 2)), *good[1:], *scalars)
    read_only = np.zeros(4)
    read_only.setflags(write=False)
    with pytest.raises(TypeError, match="argument 2 must be a 1-D C-contiguous writable"):
        adam(good[0], good[1], read_only, good[3], *scalars)
    with pytest.raises(TypeError, match="missing 1 required positional argument"):
        adam(*good, *scalars[:-1])
    with pytest.raises(TypeError, match="takes 12 positional arguments but 13"):
        adam(*good, *scalars, 0.5)
    sums = _native.kernels(TRAINING, np.float32).block_sums
    with pytest.raises(TypeError, match="float32"):
        sums(np.zeros((4, 2)), np.zeros(4), np.zeros(2), 0.0, np.zeros(2))


def test_the_guards_quick_test_and_full_check_accept_the_same_arrays(
    built: Path, tmp_path: Path
) -> None:
    """What the guard's written-out test turns down (a memory map, an equal dtype held by
    another descriptor object) the full check accepts: the kernel runs all the same."""
    add_bias = _native.kernels(DENSE, np.float64).add_bias
    expected = np.arange(6.0).reshape(3, 2) + np.array([10.0, 20.0])
    equal_dtype = np.dtype(np.float64, metadata={"origin": "a test"})
    assert equal_dtype == np.float64 and equal_dtype is not np.dtype(np.float64)
    mapped = np.lib.format.open_memmap(tmp_path / "out.npy", "w+", np.float64, (3, 2))
    for out in (np.arange(6.0).reshape(3, 2), np.arange(6.0).reshape(3, 2).astype(equal_dtype),
                mapped):
        out[...] = np.arange(6.0).reshape(3, 2)
        add_bias(out, np.array([10.0, 20.0]))
        np.testing.assert_array_equal(out, expected)
    unaligned = np.frombuffer(bytearray(6 * 8 + 1), dtype=np.float64, offset=1, count=6)
    assert not unaligned.flags.aligned
    out = unaligned.reshape(3, 2)
    out[...] = np.arange(6.0).reshape(3, 2)
    add_bias(out, np.array([10.0, 20.0]))
    np.testing.assert_array_equal(out, expected)
    with pytest.raises(TypeError, match="argument 1 must be a 1-D C-contiguous float64"):
        add_bias(np.zeros((3, 2)), np.zeros(4)[::2])


def test_the_kernels_release_the_gil(built: Path) -> None:
    """Another Python thread runs while a kernel does (as with the JIT's ``nogil``)."""
    epoch = _native.kernels(TRAINING, np.float64).sgd_epoch
    X, y = np.ones((1, 4)), np.ones(1)
    order = np.zeros(4_000_000, dtype=np.intp)  # one row, four million steps
    window: list[float] = []

    def run() -> None:
        window.append(time.perf_counter())
        epoch(X, y, order, np.zeros(4), np.zeros(1), 1e-9, 0.0, np.ones(1), 0.0)
        window.append(time.perf_counter())

    ticks = []
    thread = threading.Thread(target=run)
    thread.start()
    while thread.is_alive():
        ticks.append(time.perf_counter())
    thread.join()
    start, stop = window
    # Holding the GIL, the kernel would leave one gap as long as itself in the main
    # thread's ticks (which run only before and after it).
    inside = [start] + [t for t in ticks if start < t < stop] + [stop]
    longest_gap = max(b - a for a, b in itertools.pairwise(inside))
    assert stop - start > 0.02
    assert longest_gap < 0.5 * (stop - start), (longest_gap, stop - start)


# --- what is loaded, and from where ----------------------------------------------------------


def test_a_module_others_can_write_is_not_loaded(built: Path) -> None:
    directory = built.parent
    mode = directory.stat().st_mode
    try:
        directory.chmod(mode | 0o020)  # group-writable
        _native.forget()
        with pytest.warns(UserWarning, match="writable by other users"):
            assert _native.kernels(TRAINING, np.float64) is None
    finally:
        directory.chmod(mode)
        _native.forget()
    assert _native.kernels(TRAINING, np.float64) is not None


def _replace(path: Path, data: bytes) -> None:
    """Write ``path`` as a new file: the module loaded from the old one stays mapped
    (writing into it would pull the code from under this process: SIGBUS)."""
    spare = path.with_name(path.name + ".new")
    spare.write_bytes(data)
    os.replace(spare, path)


def test_a_file_unlike_its_record_is_not_loaded_and_compile_rebuilds_it(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A truncated module would crash the process in the dynamic loader (SIGBUS): its
    size and SHA-256 are checked against the record written when it was built."""
    original = built.read_bytes()
    try:
        _replace(built, original[:100_000])
        _native.forget()
        with pytest.warns(UserWarning, match="truncated or changed"):
            assert _native.kernels(TRAINING, np.float64) is None
        assert _native.status().startswith("damaged")
        capsys.readouterr()
        assert main(["compile"]) == 0
        assert "rebuilding: the module there is damaged" in capsys.readouterr().out
        assert _native.kernels(TRAINING, np.float64) is not None
    finally:
        if not _native.loadable():
            _replace(built, original)
        _native.forget()


@pytest.mark.parametrize("record", [None, "{", '{"size": -1}', '{"size": 5, "sha256": "x"}',
                                    "[" * 5000])
def test_a_missing_or_malformed_record_is_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record: str | None
) -> None:
    monkeypatch.setenv("HANDNET_CACHE_DIR", str(tmp_path))
    _native.forget()
    path = _native.module_path()
    path.parent.mkdir(parents=True, mode=0o700)
    path.write_bytes(b"not a shared library")
    if record is not None:
        _native._record_path(path).write_text(record)
    try:
        with pytest.warns(UserWarning, match="not the one built there"):
            assert _native.kernels(TRAINING, np.float64) is None
    finally:
        _native.forget()


def test_a_file_that_is_no_library_is_ignored(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Recorded as built, but not an extension module: not loaded, and said why."""
    monkeypatch.setenv("HANDNET_CACHE_DIR", str(tmp_path))
    _native.forget()
    path = _native.module_path()
    path.parent.mkdir(parents=True, mode=0o700)
    path.write_bytes(b"not a shared library")
    size, sha256 = _native._digest(path)
    _native._record_path(path).write_text(
        f'{{"size": {size}, "sha256": "{sha256}", "numba": "0"}}')
    try:
        assert _native.kernels(TRAINING, np.float64) is None
        assert _native.status().startswith("unloadable")
    finally:
        _native.forget()


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_an_unreadable_cache_directory_leaves_fits_running(built: Path, tmp_path: Path) -> None:
    """Another user's cache (``sudo handnet compile`` with HOME kept): a fit goes on
    without the module (``Path.is_file`` raised PermissionError there)."""
    directory = built.parent
    # The child imports what the fit needs with an empty cache first; then, where it
    # runs as root (which reads everything), it becomes nobody before the fit.
    code = (
        "import os, numpy as np, handnet\n"
        "from handnet import _native\n"
        "X, y = handnet.datasets.make_logistic(200, random_state=0)\n"
        "fit = lambda: handnet.LogisticRegression(batch_size=1, max_iter=2, tol=None).fit(X, y)\n"
        f"os.environ['HANDNET_CACHE_DIR'] = {str(tmp_path)!r}\n"
        "fit()\n"
        f"os.environ['HANDNET_CACHE_DIR'] = {os.environ['HANDNET_CACHE_DIR']!r}\n"
        "_native.forget()\n"
        "if os.getuid() == 0:\n"
        "    os.setgid(65534); os.setuid(65534)\n"
        "fit()\n"
        "print(_native.status())\n"
    )
    mode = directory.stat().st_mode
    directory.chmod(0o700 if os.getuid() == 0 else 0o000)
    try:
        result = subprocess.run([sys.executable, "-c", code], env=dict(os.environ),
                                capture_output=True, text=True, timeout=300)
    finally:
        directory.chmod(mode)
    assert result.returncode == 0, result.stderr
    # Not built as far as it can see (or, in a checkout only root can read, the
    # kernels' sources for the key unreadable too).
    assert result.stdout.startswith(("not built", "unreadable")), result.stdout


def test_the_key_changes_with_the_kernels_source(built: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    before = _native.key()
    real = _native._source_path

    def edited(module: str) -> Path:
        path = real(module)
        if module != TRAINING:
            return path
        copy = built.parent.parent / "edited.py"
        copy.write_bytes(path.read_bytes() + b"\n# edited\n")
        return copy

    monkeypatch.setattr(_native, "_source_path", edited)
    assert _native.key() != before


# --- in use -----------------------------------------------------------------------------------


def test_a_fresh_process_fits_compiled_without_numba(built: Path) -> None:
    """Per-example SGD, an MLP with Adam (fused step) and a CNN with 2 x 2 max pooling all
    take the compiled kernels, and numba is never imported."""
    code = (
        "import sys, numpy as np\n"
        "import handnet\n"
        "from handnet.training import kernels\n"
        "from handnet import Conv2D, ReLU, MaxPool2D, Flatten, Dense\n"
        "from handnet.nn import pooling\n"
        "X, y = handnet.datasets.make_logistic(500, random_state=0)\n"
        "assert kernels.sgd_kernel_ready()\n"
        "model = handnet.LogisticRegression(batch_size=1, max_iter=3, tol=None,\n"
        "                                   random_state=0).fit(X, y)\n"
        "print(repr(model.coef_.tolist()))\n"
        "handnet.MLPClassifier(hidden_layer_sizes=(200, 60), max_iter=2, random_state=0)"
        ".fit(np.hstack([X] * 16), y)\n"
        "images = np.random.default_rng(0).normal(size=(40, 1, 8, 8))\n"
        "assert pooling._compiled_kernels(images, (2, 2)) is not None\n"
        "handnet.NeuralNetClassifier([Conv2D(None, 4, 3, padding='same'), ReLU(),\n"
        "    MaxPool2D(2), Flatten(), Dense(None, None)], max_iter=2, random_state=0)"
        ".fit(images, y[:40])\n"
        "assert 'numba' not in sys.modules, 'numba was imported'\n"
    )
    result = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", code],
                            env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    import handnet

    X, y = handnet.datasets.make_logistic(500, random_state=0)
    with kernels.numpy_only():  # the scalar path: the compiled kernel's bits
        model = handnet.LogisticRegression(batch_size=1, max_iter=3, tol=None,
                                           random_state=0).fit(X, y)
    assert result.stdout.strip() == repr(model.coef_.tolist())


def test_the_compile_command(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["compile"]) == 0
    assert f"already built: {built}" in out.getvalue()
    assert main(["compile", "--status"]) == 0
    assert f"loaded: loaded from {built} (built by numba " in out.getvalue()
    with kernels.numpy_only():
        assert main(["compile", "--status"]) == 1
    assert "not loaded: turned off (HANDNET_NUMPY_ONLY=1 or numpy_only()); the module: loaded" \
        in out.getvalue()


def test_the_compile_command_reports_a_failed_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HANDNET_CACHE_DIR", str(tmp_path))

    def fail(force: bool = False) -> Path:
        raise _native.BuildError("handnet compile needs numba: pip install 'handnet[fast]'")

    monkeypatch.setattr(_native, "build", fail)
    _native.forget()
    try:
        assert main(["compile"]) == 1
        assert "handnet compile: error: handnet compile needs numba" in capsys.readouterr().err
        assert main(["compile", "--status"]) == 1
        assert "not built" in capsys.readouterr().out
    finally:
        _native.forget()


def test_the_profiles_lean_kernel_loop_runs_the_built_kernels(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """benchmarks/_mlp.py's reference loop of the raw kernels: it runs (one and two hidden
    layers, a short last batch), and says None where no module is built."""
    from benchmarks._mlp import lean_kernel_epoch, make_mlp_data

    X, y = make_mlp_data(300, n_features=20, n_classes=4)
    for hidden in ((8,), (8, 6)):
        seconds = lean_kernel_epoch(X, y, hidden, seed=0)
        assert seconds is not None and seconds > 0
    monkeypatch.setattr(_native, "_module", lambda: None)
    assert lean_kernel_epoch(X, y, (8,), seed=0) is None


def test_compile_prune_removes_only_other_keys_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Builds for other keys (earlier versions, other CPUs) go; this process's build, and
    whatever is not a build folder, stay."""
    monkeypatch.setenv("HANDNET_CACHE_DIR", str(tmp_path))
    native = tmp_path / "native"
    current = native / _native.key()
    old = [native / f"cpython-311-{digit * 20}" for digit in "0a"]
    for folder in [current, *old]:
        folder.mkdir(parents=True)
        (folder / "handnet_native.so").write_bytes(b"x" * 1000)
    kept = [native / "notes", native / ".build-abc", native / "cpython-311-short"]
    for folder in kept:
        folder.mkdir()
    (native / f"cpython-311-{'b' * 20}").symlink_to(current)  # a link: never followed
    _native.forget()
    try:
        assert main(["compile", "--status"]) == 1
        assert "also: 2 build(s) for other versions or CPUs" in capsys.readouterr().out
        assert main(["compile", "--prune"]) == 0
        assert "removed 2 build(s) for other versions or CPUs" in capsys.readouterr().out
        assert not any(folder.exists() for folder in old)
        assert (current / "handnet_native.so").exists() and all(f.exists() for f in kept)
        assert main(["compile", "--prune"]) == 0
        assert "nothing to remove" in capsys.readouterr().out
    finally:
        _native.forget()
