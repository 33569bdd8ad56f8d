"""Convolution and pooling layers: against nested-loop references, finite differences,
shapes, saving, errors, and a small CNN that learns."""

from __future__ import annotations

import copy
import itertools
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import handnet
from handnet import _numba, conv
from handnet.gradcheck import check_network, gradcheck
from handnet.nn.conv import AvgPool2D, Conv2D, GlobalAvgPool2D, MaxPool2D
from handnet.nn.layers import (
    FIELD_KINDS,
    LAYERS,
    Activation,
    Dense,
    Flatten,
    Layer,
    Reshape,
    check_layer_configs,
)
from handnet.nn.losses import get_loss
from handnet.nn.network import Sequential, build_network
from handnet.optim.optimizers import Adam
from handnet.training import Trainer

TOL = 1e-6


# --- references -----------------------------------------------------------------------------


def resolved_pads(
    size: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
    dilation: tuple[int, int], padding: Any,
) -> tuple[int, int, int, int]:
    """(top, bottom, left, right), worked out independently of handnet for the reference."""
    pads = []
    for axis in range(2):
        if padding == "valid":
            pads += [0, 0]
        elif padding == "same":
            span = dilation[axis] * (kernel[axis] - 1) + 1
            out = math.ceil(size[axis] / stride[axis])
            total = max((out - 1) * stride[axis] + span - size[axis], 0)
            pads += [total // 2, total - total // 2]
        else:
            p = padding if isinstance(padding, int) else padding[axis]
            pads += [p, p]
    return pads[0], pads[1], pads[2], pads[3]


def reference_conv(
    X: np.ndarray, W: np.ndarray, b: np.ndarray | None, stride: tuple[int, int],
    pads: tuple[int, int, int, int], dilation: tuple[int, int], groups: int,
) -> np.ndarray:
    """The convolution as its definition: one loop per index, in float64."""
    n, C, H, Wd = X.shape
    F, Cg, kh, kw = W.shape
    top, bottom, left, right = pads
    Xp = np.zeros((n, C, H + top + bottom, Wd + left + right))
    Xp[:, :, top : top + H, left : left + Wd] = X
    Ho = (Xp.shape[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    Wo = (Xp.shape[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, F, Ho, Wo))
    per_group_out = F // groups
    for m in range(n):
        for f in range(F):
            g = f // per_group_out
            for p in range(Ho):
                for q in range(Wo):
                    total = 0.0 if b is None else float(b[f])
                    for c in range(Cg):
                        for i in range(kh):
                            for j in range(kw):
                                y = p * stride[0] + i * dilation[0]
                                x = q * stride[1] + j * dilation[1]
                                total += float(W[f, c, i, j]) * float(Xp[m, g * Cg + c, y, x])
                    out[m, f, p, q] = total
    return out


def reference_pool(
    X: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
    pads: tuple[int, int, int, int], kind: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Pooling by loops: the output, and for max pooling the gradient of sum(G * out) with
    G = 1 + position index (each window's gradient to its first maximum)."""
    n, C, H, W = X.shape
    top, bottom, left, right = pads
    fill = -np.inf if kind == "max" else 0.0
    Xp = np.full((n, C, H + top + bottom, W + left + right), fill)
    Xp[:, :, top : top + H, left : left + W] = X
    Ho = (Xp.shape[2] - kernel[0]) // stride[0] + 1
    Wo = (Xp.shape[3] - kernel[1]) // stride[1] + 1
    out = np.zeros((n, C, Ho, Wo))
    grad = np.zeros_like(Xp)
    G = np.arange(1, out.size + 1, dtype=np.float64).reshape(out.shape)
    for m, c, p, q in itertools.product(range(n), range(C), range(Ho), range(Wo)):
        window = Xp[m, c, p * stride[0] : p * stride[0] + kernel[0],
                    q * stride[1] : q * stride[1] + kernel[1]]
        if kind == "max":
            out[m, c, p, q] = window.max()
            i, j = np.unravel_index(int(np.argmax(window)), window.shape)  # first maximum
            grad[m, c, p * stride[0] + i, q * stride[1] + j] += G[m, c, p, q]
        else:
            out[m, c, p, q] = window.mean()
    return out, grad[:, :, top : top + H, left : left + W]


# --- the grid of convolutions -----------------------------------------------------------------

# (in_channels, out_channels, kernel, stride, padding, dilation, groups, use_bias, (n, H, W))


def case(*args: Any, id: str) -> Any:
    return pytest.param(args, id=id)


CASES = [
    case(3, 2, 3, 1, 0, 1, 1, True, (2, 7, 5), id="odd-sizes"),
    case(2, 3, 3, 2, 1, 1, 1, True, (2, 7, 6), id="stride2-pad1"),
    case(2, 2, (2, 3), (2, 1), (1, 2), 1, 1, True, (2, 5, 6), id="pairs"),
    case(2, 2, 3, 1, "same", 1, 1, True, (2, 6, 5), id="same-odd-kernel"),
    case(2, 3, (4, 2), 1, "same", 1, 1, True, (2, 5, 6), id="same-even-kernel"),
    case(1, 2, 3, 2, "same", 1, 1, True, (2, 7, 8), id="same-stride2"),
    case(2, 2, 3, 1, "valid", 1, 1, False, (2, 5, 5), id="valid-no-bias"),
    case(2, 2, 3, 1, 2, 2, 1, True, (2, 6, 7), id="dilation2-pad2"),
    case(2, 2, 3, (1, 2), "same", (2, 1), 1, True, (2, 7, 7), id="dilation-stride-same"),
    case(4, 6, 3, 1, 1, 1, 2, True, (2, 5, 5), id="groups2"),
    case(3, 3, 3, 1, 1, 1, 3, True, (2, 5, 4), id="depthwise"),
    case(3, 2, 1, 1, 0, 1, 1, True, (2, 4, 3), id="kernel1x1"),
    case(2, 3, 3, 1, 1, 1, 1, True, (1, 5, 5), id="batch1"),
]


def make_conv(
    args: tuple[Any, ...], dtype: Any = np.float64, seed: int = 0, **kwargs: Any
) -> Conv2D:
    C, F, kernel, stride, padding, dilation, groups, use_bias, _ = args
    layer = Conv2D(C, F, kernel, stride=stride, padding=padding, dilation=dilation,
                   groups=groups, use_bias=use_bias, random_state=seed, dtype=dtype, **kwargs)
    if layer.bias is not None:  # non-zero, so that a wrong bias term shows
        layer.bias[...] = np.random.default_rng(seed + 1).standard_normal(F)
    return layer


def conv_input(args: tuple[Any, ...], dtype: Any = np.float64, seed: int = 2) -> np.ndarray:
    C, n_hw = args[0], args[-1]
    n, H, W = n_hw
    return np.random.default_rng(seed).standard_normal((n, C, H, W)).astype(dtype)


@pytest.fixture(params=["im2col", "rows"])
def formulation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test with each way of computing the convolution forced: im2col, or by kernel
    rows (handnet.nn.im2row) wherever that applies (horizontal stride 1, one group)."""
    if request.param == "im2col":
        monkeypatch.setattr(Conv2D, "_by_rows", lambda self, geometry: False)
    else:
        monkeypatch.setattr(Conv2D, "_by_rows", lambda self, geometry: (
            geometry.stride[1] == 1 and self.groups == 1))
    return str(request.param)


@pytest.mark.parametrize("args", CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv_forward_matches_nested_loops(
    args: tuple[Any, ...], dtype: Any, formulation: str
) -> None:
    layer = make_conv(args, dtype)
    X = conv_input(args, dtype)
    out = layer.forward(X)
    assert out.dtype == dtype and layer.weights.dtype == dtype
    pads = resolved_pads(X.shape[2:], layer.kernel_size, layer.stride, layer.dilation,
                         args[4])
    expected = reference_conv(X, layer.weights, layer.bias, layer.stride, pads,
                              layer.dilation, layer.groups)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(out, expected, rtol=rtol, atol=rtol * 10)
    assert out.shape[1:] == layer.output_shape(X.shape[1:])


@pytest.mark.parametrize("args", CASES)
def test_conv_gradients_match_finite_differences(
    args: tuple[Any, ...], formulation: str
) -> None:
    layer = make_conv(args)
    X = conv_input(args)
    G = np.random.default_rng(3).standard_normal(layer.forward(X).shape)

    def input_objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        value = float(np.sum(G * layer.forward(x)))
        dX = layer.backward(G)
        assert dX is not None
        return value, dX.copy()

    assert gradcheck(input_objective, X).passed(TOL)
    for index in range(len(layer.parameters())):

        def parameter_objective(theta: np.ndarray, index: int = index) -> tuple[float, np.ndarray]:
            layer.parameters()[index][...] = theta
            value = float(np.sum(G * layer.forward(X)))
            layer.backward(G)
            return value, layer.gradients()[index].copy()

        assert gradcheck(parameter_objective, layer.parameters()[index].copy()).passed(TOL)


@pytest.mark.parametrize("args", CASES[:3] + CASES[7:10])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_chunked_convolution_equals_one_chunk(
    args: tuple[Any, ...], dtype: Any, formulation: str
) -> None:
    """A budget of one byte (one sample per chunk) or of two samples gives the same numbers."""
    C, F, kernel, stride, padding, dilation, groups, use_bias, (_, H, W) = args
    args = (C, F, kernel, stride, padding, dilation, groups, use_bias, (5, H, W))
    whole = make_conv(args, dtype)
    X = conv_input(args, dtype)
    out = whole.forward(X, training=True)
    G = np.random.default_rng(4).standard_normal(out.shape).astype(dtype)
    dX = whole.backward(G)
    rows = whole._chunk_rows(whole._geometry(X.shape[1:]), X.itemsize)
    assert rows >= 5  # the default budget holds the whole batch
    per_sample = whole._unrolled_bytes(whole._geometry(X.shape[1:]), X.itemsize)
    for budget in (1, 2 * per_sample):
        chunked = make_conv(args, dtype, memory_budget=budget)
        assert chunked._chunk_rows(chunked._geometry(X.shape[1:]), X.itemsize) in (1, 2)
        rtol = 1e-13 if dtype == np.float64 else 2e-6
        for training in (False, True):
            np.testing.assert_allclose(chunked.forward(X, training), out, rtol=rtol, atol=rtol)
            np.testing.assert_allclose(chunked.backward(G), dX, rtol=rtol, atol=rtol)
            for mine, theirs in zip(chunked.gradients(), whole.gradients(), strict=True):
                np.testing.assert_allclose(mine, theirs, rtol=rtol * 10, atol=rtol * 10)


def test_module_budget_is_read_at_each_call(monkeypatch: pytest.MonkeyPatch) -> None:
    layer = Conv2D(1, 2, 3, random_state=0)
    geometry = layer._geometry((1, 10, 10))
    # 9 rows of 78 wide positions (8 rows of 8 outputs, 10 apart) per sample.
    assert layer._unrolled_bytes(geometry, 8) == 9 * 78 * 8
    assert layer._chunk_rows(geometry, 8) == conv.MEMORY_BUDGET // (9 * 78 * 8)
    monkeypatch.setattr(conv, "MEMORY_BUDGET", 9 * 78 * 8 * 3)
    assert layer._chunk_rows(geometry, 8) == 3
    strided = Conv2D(1, 2, 3, stride=(1, 2), random_state=0)  # no wide rows
    assert strided._unrolled_bytes(strided._geometry((1, 10, 10)), 8) == 9 * 32 * 8


def test_convolution_by_kernel_rows_where_it_moves_fewer_values() -> None:
    """LeNet's second convolution goes by kernel rows, its first (one channel) by im2col."""
    first, second = Conv2D(1, 8, 5), Conv2D(8, 16, 5)
    assert not first._by_rows(first._geometry((1, 28, 28)))
    geometry = second._geometry((8, 12, 12))
    assert second._by_rows(geometry)
    # The rows (8 channels x 5 kernel rows) and the products (5 kernel columns x 16
    # filters), each over 8 output rows of the 12-wide image.
    assert second._unrolled_bytes(geometry, 4) == (8 * 5 + 5 * 16) * 8 * 12 * 4
    for stride, groups in (((1, 2), 1), (1, 2)):  # only a horizontal stride of 1, one group
        layer = Conv2D(8, 16, 5, stride=stride, groups=groups)
        assert not layer._by_rows(layer._geometry((8, 12, 12)))


def test_training_passes_with_buffer_reuse_match_plain_ones(formulation: str) -> None:
    """Reused buffers and the unrolled matrix kept from forward give the same numbers."""
    args = (2, 3, 3, 1, "same", 1, 1, True, (4, 6, 6))
    plain, reusing = make_conv(args), make_conv(args)
    reusing.reuse_buffers = True
    X = conv_input(args)
    G = np.random.default_rng(5).standard_normal((4, 3, 6, 6))
    for _ in range(2):  # the second pass writes into the first pass's buffers
        np.testing.assert_allclose(reusing.forward(X, True), plain.forward(X), rtol=1e-14)
        np.testing.assert_allclose(reusing.backward(G), plain.backward(G), rtol=1e-14)
        for mine, theirs in zip(reusing.gradients(), plain.gradients(), strict=True):
            np.testing.assert_allclose(mine, theirs, rtol=1e-13)


@pytest.mark.parametrize("args", [CASES[0], CASES[2], CASES[3], CASES[9]])
@pytest.mark.parametrize("rows_per_chunk", [None, 20])
def test_threads_give_the_one_thread_numbers(
    args: tuple[Any, ...], rows_per_chunk: int | None, formulation: str
) -> None:
    """Split over 2 or 3 threads (and memory chunks), a pass computes every sample as one
    thread does; only the weight gradient's sum over the samples is added in another order."""
    C, F, kernel, stride, padding, dilation, groups, use_bias, (_, H, W) = args
    values = (C, F, kernel, stride, padding, dilation, groups, use_bias, (37, H, W))
    X = conv_input(values)
    budget = None
    if rows_per_chunk is not None:  # memory chunks of 20 and 17 samples, each on threads
        probe = make_conv(values)
        geometry = probe._geometry(X.shape[1:])
        budget = rows_per_chunk * probe._unrolled_bytes(geometry, X.itemsize)
        assert probe._chunk_rows(geometry, X.itemsize) >= 37
    one = make_conv(values, n_threads=1, memory_budget=budget)
    out = one.forward(X, training=True)
    G = np.random.default_rng(6).standard_normal(out.shape)
    dX = one.backward(G)
    for threads in (2, 3):
        layer = make_conv(values, n_threads=threads, memory_budget=budget)
        if budget is not None:
            assert layer._chunk_rows(layer._geometry(X.shape[1:]), X.itemsize) == 20
        layer.reuse_buffers = True
        for _ in range(2):
            np.testing.assert_array_equal(layer.forward(X, training=True), out)
            np.testing.assert_array_equal(layer.backward(G), dX)
            for mine, theirs in zip(layer.gradients(), one.gradients(), strict=True):
                np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize(("kernel", "stride", "padding"), [(2, None, 0), (3, 1, 1)])
def test_pools_on_threads_give_the_one_thread_numbers(
    cls: type[MaxPool2D] | type[AvgPool2D], kernel: int, stride: Any, padding: int
) -> None:
    X = np.maximum(np.random.default_rng(0).standard_normal((37, 3, 8, 7)), 0)  # ties at 0
    one = cls(kernel, stride, padding, n_threads=1)
    out = one.forward(X)
    G = np.random.default_rng(1).standard_normal(out.shape)
    dX = one.backward(G)
    for threads in (2, 3):
        layer = cls(kernel, stride, padding, n_threads=threads)
        np.testing.assert_array_equal(layer.forward(X), out)
        np.testing.assert_array_equal(layer.backward(G), dX)


def test_threads_over_samples_for_the_calling_thread_with_blas_on_one() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_info, threadpool_limits

    def blas() -> int:
        return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")

    assert conv.default_threads() == 1
    with threadpool_limits(limits=2, user_api="blas"):
        with conv.threads_over_samples():  # as many as BLAS had
            assert conv.default_threads() == 2 and blas() == 1
            with ThreadPoolExecutor(1) as other:  # another thread: not its business
                assert other.submit(conv.default_threads).result() == 1
            with conv.threads_over_samples(3):
                assert conv.default_threads() == 3
            assert conv.default_threads() == 2
        assert conv.default_threads() == 1 and blas() == 2
    with pytest.raises(ValueError, match="n_threads must be"), conv.threads_over_samples(0):
        pass
    assert conv._parts(0, 37, 3) == [(0, 12), (12, 24), (24, 37)]
    assert conv._parts(0, 20, 4) == [(0, 10), (10, 20)]  # at least 8 samples a thread
    assert conv._parts(5, 9, 2) == [(5, 9)]


def test_in_parallel_returns_in_order_and_raises_after_every_part() -> None:
    import threading
    import time

    from handnet.nn.parallel import _in_parallel

    names: list[str] = []

    def task(part: int, first: int, last: int) -> tuple[int, int, int]:
        names.append(threading.current_thread().name)
        return part, first, last

    assert _in_parallel(task, 0, 64, 4) == [(0, 0, 16), (1, 16, 32), (2, 32, 48), (3, 48, 64)]
    assert names[0] == threading.current_thread().name  # part 0 runs in the caller
    assert all(name.startswith("handnet-conv") for name in names[1:])
    finished: list[int] = []

    def failing(part: int, first: int, last: int) -> None:
        if part == 0:
            raise ValueError("part 0 failed")
        time.sleep(0.05)  # still running when part 0 has failed
        finished.append(part)

    with pytest.raises(ValueError, match="part 0 failed"):
        _in_parallel(failing, 0, 32, 2)
    assert finished == [1]  # waited for, not left writing
    with pytest.raises(KeyError):
        _in_parallel(lambda part, first, last: {}[part], 0, 32, 2)


def test_in_parallel_works_in_a_forked_child() -> None:
    """A child forked after the workers started has none: it starts its own."""
    if not hasattr(os, "fork"):
        pytest.skip("no fork here")
    code = (
        "import os, sys\n"
        "from handnet.nn.parallel import _in_parallel\n"
        "task = lambda part, first, last: last - first\n"
        "assert _in_parallel(task, 0, 32, 2) == [16, 16]\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(0 if _in_parallel(task, 0, 32, 2) == [16, 16] else 1)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "sys.exit(os.waitstatus_to_exitcode(status))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("args", [CASES[0], CASES[1]])
def test_an_empty_batch_gives_empty_outputs_and_zero_gradients(
    args: tuple[Any, ...], formulation: str
) -> None:
    layer = make_conv(args)
    X = conv_input(args)
    layer.backward(np.ones_like(layer.forward(X)))
    out = layer.forward(X[:0])
    assert out.shape == (0, *layer.output_shape(X.shape[1:]))
    dX = layer.backward(out)
    assert dX is not None and dX.shape == (0, *X.shape[1:])
    assert not any(gradient.any() for gradient in layer.gradients())
    for pool in (MaxPool2D(2), AvgPool2D(2), GlobalAvgPool2D()):
        pooled = pool.forward(np.zeros((0, 2, 4, 4)))
        assert pool.backward(pooled).shape == (0, 2, 4, 4)  # type: ignore[union-attr]


@pytest.mark.parametrize("args", [CASES[0], CASES[1]])
def test_backward_twice_does_not_accumulate(args: tuple[Any, ...], formulation: str) -> None:
    layer = make_conv(args)
    X = conv_input(args)
    G = np.ones_like(layer.forward(X))
    first = layer.backward(G)
    grads = [g.copy() for g in layer.gradients()]
    second = layer.backward(G)
    np.testing.assert_array_equal(first, second)
    for before, after in zip(grads, layer.gradients(), strict=True):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize(
    "layer",
    [
        make_conv(CASES[0].values[0]),
        MaxPool2D(2),
        MaxPool2D(3, stride=1, padding=1),
        AvgPool2D(2),
        AvgPool2D(3, stride=2, padding=1),
        GlobalAvgPool2D(),
    ],
    ids=repr,
)
def test_no_input_gradient_on_request(layer: Layer) -> None:
    X = np.random.default_rng(0).standard_normal((2, 3, 7, 5))
    out = layer.forward(X)
    assert layer.backward(np.ones_like(out), need_input_gradient=False) is None
    if isinstance(layer, Conv2D):  # the parameters' gradients are still computed
        np.testing.assert_allclose(layer.grad_bias, np.full(2, out[0, 0].size * 2))


def test_float32_stays_float32() -> None:
    layers: list[Layer] = [Conv2D(3, 4, 3, padding=1, random_state=0, dtype=np.float32),
                           MaxPool2D(2), AvgPool2D(2, stride=1), GlobalAvgPool2D()]
    X = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    outputs = []
    for layer in layers:
        X = layer.forward(X, training=True)
        outputs.append(X)
        assert X.dtype == np.float32
    G = np.ones_like(X)
    for layer in reversed(layers):
        G = layer.backward(G)
        assert G is not None and G.dtype == np.float32
    assert all(g.dtype == np.float32 for g in layers[0].gradients())


# --- pooling --------------------------------------------------------------------------------

POOLS = [
    pytest.param(2, None, 0, (2, 3, 8, 6), id="k2-tiles"),
    pytest.param(2, None, 0, (1, 2, 7, 5), id="k2-tiles-odd-sizes"),
    pytest.param((2, 3), None, 0, (2, 2, 6, 9), id="k2x3-tiles"),
    pytest.param(3, 1, 1, (2, 2, 5, 6), id="k3-s1-pad1"),
    pytest.param(3, 2, 0, (2, 2, 7, 7), id="k3-s2-overlapping"),
    pytest.param(2, 3, 0, (2, 2, 8, 7), id="k2-s3-gaps"),
    pytest.param(2, 1, "same", (2, 2, 5, 4), id="k2-same"),
    pytest.param((3, 2), (2, 1), (1, 0), (2, 2, 6, 5), id="pairs-pad"),
]


def no_ties(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Values at least 0.1 apart, in random order: finite differences never reorder them."""
    rng = np.random.default_rng(seed)
    return (rng.permutation(math.prod(shape)) * 0.1 - 3.0).reshape(shape)


@pytest.mark.parametrize(("kernel", "stride", "padding", "shape"), POOLS)
@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
def test_pool_matches_loops_and_finite_differences(
    cls: type[MaxPool2D] | type[AvgPool2D], kernel: Any, stride: Any, padding: Any,
    shape: tuple[int, int, int, int],
) -> None:
    layer = cls(kernel, stride, padding)
    X = no_ties(shape)
    out = layer.forward(X)
    pads = resolved_pads(shape[2:], layer.kernel_size, layer.stride, (1, 1), padding)
    kind = "max" if cls is MaxPool2D else "avg"
    expected, expected_grad = reference_pool(X, layer.kernel_size, layer.stride, pads, kind)
    np.testing.assert_allclose(out, expected, rtol=1e-14)
    assert out.shape[1:] == layer.output_shape(shape[1:])
    G = np.arange(1, out.size + 1, dtype=np.float64).reshape(out.shape)
    if kind == "max":
        np.testing.assert_array_equal(layer.backward(G), expected_grad)

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        value = float(np.sum(G * layer.forward(x)))
        dX = layer.backward(G)
        assert dX is not None
        return value, dX.copy()

    assert gradcheck(objective, X).passed(TOL)


@pytest.fixture(params=["numpy", "compiled"])
def max_pool_path(request: pytest.FixtureRequest) -> Any:
    """MaxPool2D's passes over windows side by side in NumPy, or compiled (with numba
    imported, as a fused Adam step imports it)."""
    if request.param == "numpy":
        with _numba.numpy_only():
            yield "numpy"
    else:
        pytest.importorskip("numba")
        yield "compiled"


@pytest.mark.parametrize(("kernel", "stride", "padding", "shape"), POOLS)
def test_max_pool_gradient_goes_to_one_first_maximum(
    kernel: Any, stride: Any, padding: Any, shape: tuple[int, int, int, int], max_pool_path: str
) -> None:
    """All-equal inputs tie in every window: each window's gradient goes to its first cell."""
    layer = MaxPool2D(kernel, stride, padding)
    X = np.zeros(shape)
    X[0, 0] = np.random.default_rng(1).integers(0, 2, shape[2:])  # ties between 0 and 1 too
    out = layer.forward(X)
    G = np.arange(1, out.size + 1, dtype=np.float64).reshape(out.shape)
    dX = layer.backward(G)
    assert dX is not None
    pads = resolved_pads(shape[2:], layer.kernel_size, layer.stride, (1, 1), padding)
    _, expected = reference_pool(X, layer.kernel_size, layer.stride, pads, "max")
    np.testing.assert_array_equal(dX, expected)
    # Exactly one input per window: the gradients of all windows add up to all of G.
    assert dX.sum() == G.sum()
    if layer.stride == layer.kernel_size:
        assert np.count_nonzero(dX) == out.size


@pytest.mark.parametrize("kernel", [2, (3, 2), (2, 3), 3, (1, 2), (2, 1), (4, 4)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_max_pool_side_by_side_windows_match_the_general_path(
    kernel: Any, dtype: Any, monkeypatch: pytest.MonkeyPatch, max_pool_path: str
) -> None:
    """The two-step path for windows side by side (stride = kernel, no padding) gives the
    offset-by-offset path's numbers exactly, ties included (small integers tie often, and
    after a ReLU most windows of zeros tie), sizes not multiples of the kernel too."""
    rng = np.random.default_rng(7)
    X = np.maximum(rng.integers(-3, 3, (19, 3, 9, 10)), 0).astype(dtype)
    layer = MaxPool2D(kernel, n_threads=2)
    geometry = layer._geometry(X.shape[1:])
    assert layer._tiled(geometry)
    results = []
    for tiled in (True, False):
        if not tiled:
            monkeypatch.setattr(MaxPool2D, "_tiled", lambda self, geometry: False)
        layer.reuse_buffers = tiled
        out = layer.forward(X, training=True).copy()
        if tiled:  # the path asked for: one index a window compiled, column and row in NumPy
            assert layer._firsts is not None
            compiled = max_pool_path == "compiled" and layer.kernel_size == (2, 2)
            assert len(layer._firsts) == (1 if compiled else 2)
        G = rng.standard_normal(out.shape).astype(dtype) if tiled else results[0][1]
        results.append((out, G, layer.backward(G).copy()))
        # Backward after an inference pass (nothing kept) finds the same maxima.
        layer.forward(X, training=False)
        np.testing.assert_array_equal(layer.backward(G), results[-1][2])
    (out, G, dX), (out_general, _, dX_general) = results
    np.testing.assert_array_equal(out, out_general)
    np.testing.assert_array_equal(dX, dX_general)
    assert dX.dtype == dtype
    # And the loops' first maximum, with G = 1, 2, 3, ... (exact in float32 too).
    monkeypatch.undo()
    layer.forward(X, training=True)
    G = np.arange(1, out.size + 1, dtype=dtype).reshape(out.shape)
    _, expected = reference_pool(X.astype(np.float64), layer.kernel_size, layer.kernel_size,
                                 (0, 0, 0, 0), "max")
    np.testing.assert_array_equal(layer.backward(G), expected)


def test_compiled_max_pool_matches_numpy_and_keeps_nan() -> None:
    """The compiled passes give the NumPy passes' maxima and gradient; a NaN in a window
    makes its maximum NaN in both (as np.maximum does)."""
    pytest.importorskip("numba")
    rng = np.random.default_rng(5)
    X = rng.integers(-2, 3, (16, 2, 6, 7)).astype(np.float32)
    X[3, 1, 2, 4] = np.nan
    G = rng.standard_normal((16, 2, 3, 3)).astype(np.float32)
    results = []
    for numpy_only in (True, False):
        with _numba.numpy_only(numpy_only):
            layer = MaxPool2D(2, n_threads=2)
            layer.reuse_buffers = True
            out = layer.forward(X, training=True).copy()
            finite_out = layer.forward(np.nan_to_num(X), training=True).copy()
            results.append((out, finite_out, layer.backward(G).copy()))
            assert len(layer._firsts or ()) == (2 if numpy_only else 1)
    (out, finite_out, dX), (out_c, finite_out_c, dX_c) = results
    np.testing.assert_array_equal(out, out_c)  # NaN where NaN, same values elsewhere
    assert np.isnan(out_c[3, 1, 1, 2])
    np.testing.assert_array_equal(finite_out, finite_out_c)
    np.testing.assert_array_equal(dX, dX_c)
    # numba loaded between forward and backward (Adam's first step does): the same dX.
    layer = MaxPool2D(2)
    with _numba.numpy_only():
        layer.forward(np.nan_to_num(X), training=True)
    assert layer._firsts is not None and len(layer._firsts) == 2
    np.testing.assert_array_equal(layer.backward(G), dX)


def test_max_pool_never_imports_numba_itself() -> None:
    """Pooling uses the compiled passes only where numba is already loaded."""
    code = (
        "import sys, numpy as np\n"
        "from handnet.nn.conv import MaxPool2D\n"
        "layer = MaxPool2D(2)\n"
        "out = layer.forward(np.ones((4, 2, 6, 6), np.float32), training=True)\n"
        "layer.backward(np.ones_like(out))\n"
        "assert 'numba' not in sys.modules, 'MaxPool2D imported numba'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)


def test_max_pool_ignores_padding_and_handles_negative_inputs() -> None:
    X = -1.0 - np.random.default_rng(0).random((1, 1, 4, 4))
    out = MaxPool2D(3, stride=1, padding=1).forward(X)
    assert np.all(out < -1.0)  # the -inf padding never wins over an input


def test_global_average_pool_formula() -> None:
    X = np.random.default_rng(0).standard_normal((3, 4, 5, 6))
    layer = GlobalAvgPool2D()
    out = layer.forward(X)
    np.testing.assert_allclose(out, X.mean(axis=(2, 3)), rtol=1e-14)
    assert out.shape[1:] == layer.output_shape(X.shape[1:]) == (4,)
    G = np.random.default_rng(1).standard_normal(out.shape)
    dX = layer.backward(G)
    np.testing.assert_allclose(dX, np.broadcast_to(G[:, :, None, None] / 30, X.shape))

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        value = float(np.sum(G * layer.forward(x)))
        grad = layer.backward(G)
        assert grad is not None
        return value, grad

    assert gradcheck(objective, X).passed(TOL)


def test_avg_pool_counts_padding_in_the_mean() -> None:
    out = AvgPool2D(3, stride=1, padding=1).forward(np.ones((1, 1, 3, 3)))
    np.testing.assert_allclose(out[0, 0], [[4 / 9, 6 / 9, 4 / 9], [6 / 9, 1, 6 / 9],
                                           [4 / 9, 6 / 9, 4 / 9]])


# --- shapes, chain, saving ------------------------------------------------------------------

SHAPED = [
    (Conv2D(3, 4, 3, random_state=0), (3, 9, 7)),
    (Conv2D(4, 6, (3, 2), stride=2, padding="same", dilation=(1, 2), groups=2,
            random_state=0), (4, 9, 8)),
    (Conv2D(2, 2, 2, padding=(0, 1), use_bias=False, random_state=0), (2, 5, 5)),
    (Conv2D(2, 5, 4, padding="valid", random_state=0), (2, 4, 6)),
    (MaxPool2D(2), (3, 7, 6)),
    (MaxPool2D((3, 2), stride=(1, 2), padding="same"), (2, 5, 7)),
    (AvgPool2D(3, stride=2, padding=1), (2, 6, 6)),
    (GlobalAvgPool2D(), (5, 3, 2)),
]


@pytest.mark.parametrize(("layer", "input_shape"), SHAPED, ids=lambda v: repr(v))
def test_output_shape_chain_and_config_agree_with_forward(
    layer: Layer, input_shape: tuple[int, ...]
) -> None:
    X = np.random.default_rng(0).standard_normal((2, *input_shape))
    shape = layer.forward(X).shape[1:]
    assert layer.output_shape(input_shape) == layer.output_shape(list(input_shape)) == shape
    config = layer.config()
    n_parameters = sum(p.size for p in layer.parameters())
    assert type(layer).chain(config, input_shape) == (shape, n_parameters)
    assert type(layer).chain(config, None)[1] == n_parameters
    assert check_layer_configs([config], input_shape) == (shape, n_parameters)
    for name, kind in type(layer).config_fields.items():
        assert FIELD_KINDS[kind](config[name]) is None, name
    assert LAYERS[config["type"]] is type(layer)
    rebuilt = LAYERS[config["type"]].from_config(config, np.float32)
    assert rebuilt.config() == config
    assert all(p.dtype == np.float32 and not p.any() for p in rebuilt.parameters())
    assert repr(rebuilt) == repr(layer)


def test_layers_pickle_without_their_caches() -> None:
    layer = Conv2D(2, 3, 3, random_state=0)
    layer.reuse_buffers = True
    layer.forward(np.ones((2, 2, 5, 5)), training=True)
    restored = pickle.loads(pickle.dumps(layer))
    assert restored._X is None and restored._cols is None and "_buffers" not in vars(restored)
    np.testing.assert_array_equal(restored.weights, layer.weights)
    np.testing.assert_array_equal(copy.deepcopy(layer).forward(np.ones((1, 2, 5, 5))),
                                  layer.forward(np.ones((1, 2, 5, 5))))


def test_constructor_arguments_are_attributes() -> None:
    layer = Conv2D(None, 8, [5], stride=2, padding=[1, 2], dilation=(1, 1), groups=1,
                   use_bias=False, init="xavier", random_state=3, dtype=np.float32,
                   memory_budget=1000)
    assert (layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride) == (
        None, 8, (5, 5), (2, 2))
    assert (layer.padding, layer.dilation, layer.groups, layer.use_bias) == (
        (1, 2), (1, 1), 1, False)
    assert (layer.init, layer.random_state, layer.dtype, layer.memory_budget) == (
        "xavier", 3, np.float32, 1000)
    assert not layer.is_built() and layer.parameters() == []
    assert MaxPool2D(3).stride == (3, 3) and MaxPool2D(3, 1).padding == (0, 0)


def test_build_fills_in_channels_and_draws_he_weights() -> None:
    layer = Conv2D(None, 64, 3, groups=2)
    layer.build((6, 9, 9), np.random.default_rng(0), np.float32)
    assert layer.in_channels == 6 and layer.is_built()
    assert layer.weights.shape == (64, 3, 3, 3) and layer.weights.dtype == np.float32
    assert layer.weights.std() == pytest.approx(math.sqrt(2 / 27), rel=0.1)
    assert not layer.bias.any()  # type: ignore[union-attr]
    again = Conv2D(None, 64, 3, groups=2)
    again.build((6, 9, 9), np.random.default_rng(0), np.float32)
    np.testing.assert_array_equal(again.weights, layer.weights)  # drawn from the rng given


def test_bind_copies_values_and_gradients_land_in_the_flat_vector() -> None:
    layer = make_conv(CASES[0].values[0])
    weights, bias = layer.weights.copy(), layer.bias.copy()  # type: ignore[union-attr]
    network = Sequential([layer])
    np.testing.assert_array_equal(network.flat_parameters[: weights.size], weights.ravel())
    np.testing.assert_array_equal(network.flat_parameters[weights.size :], bias)
    assert np.shares_memory(layer.weights, network.flat_parameters)
    X = conv_input(CASES[0].values[0])
    out = network.forward(X)
    layer.backward(np.ones_like(out))
    np.testing.assert_array_equal(network.flat_gradients[weights.size :], out[0, 0].size * 2)
    assert np.shares_memory(layer.grad_weights, network.flat_gradients)
    with pytest.raises(ValueError, match="shapes"):
        layer.bind([np.zeros((1, 2)), np.zeros(2)], [np.zeros((1, 2)), np.zeros(2)])


def test_a_cnn_passes_the_network_gradient_check_and_saves(tmp_path: Path) -> None:
    layers = [Reshape((2, 6, 6)), Conv2D(None, 3, 3, padding="same", groups=1),
              Activation("tanh"), AvgPool2D(2), Conv2D(None, 4, 2, use_bias=False),
              MaxPool2D(2), Flatten(), Dense(None, 3)]
    network = build_network(layers, (72,), np.random.default_rng(0))
    rng = np.random.default_rng(1)
    X = rng.standard_normal((4, 72))
    Y = np.eye(3)[[0, 1, 2, 1]]
    errors = check_network(network, "softmax_cross_entropy", X, Y, l2=0.1)
    assert max(errors.values()) < 1e-6
    path = tmp_path / "cnn.npz"
    handnet.save(network, path)
    loaded = handnet.load(path)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in network.layers]
    np.testing.assert_array_equal(loaded.predict(X), network.predict(X))


def bars(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """8 x 8 images of a horizontal bar, a vertical bar or a diagonal, in noise."""
    y = rng.integers(0, 3, n)
    X = 0.3 * rng.standard_normal((n, 8, 8))
    for k in range(n):
        where = rng.integers(1, 7)
        if y[k] == 0:
            X[k, where, 1:7] += 1.0
        elif y[k] == 1:
            X[k, 1:7, where] += 1.0
        else:
            X[k, np.arange(8), np.arange(8)] += 1.0
    return X.reshape(n, 64), y


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_small_cnn_learns_with_the_trainer(dtype: Any) -> None:
    rng = np.random.default_rng(0)
    X, y = bars(300, rng)
    X = X.astype(dtype)
    Y = np.eye(3, dtype=dtype)[y]
    layers = [Reshape((1, 8, 8)), Conv2D(1, 4, 3), Activation("relu"), MaxPool2D(2),
              Flatten(), Dense(36, 3)]
    network = build_network(layers, (64,), rng, dtype)
    assert network.dtype == dtype
    trainer = Trainer(network, get_loss("softmax_cross_entropy"), Adam(0.01), rng,
                      batch_size=32, tol=None)
    history = trainer.fit(X, Y, max_iter=15)
    assert history.loss[-1] < 0.3 * history.loss[0]
    accuracy = np.mean(np.argmax(network.predict(X), axis=1) == y)
    assert accuracy > 0.95


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Conv2D(0, 2, 3), "in_channels must be an integer"),
        (lambda: Conv2D(2, None, 3), "out_channels must be an integer"),  # type: ignore[arg-type]
        (lambda: Conv2D(2, 2, 0), "kernel_size must be an integer from 1"),
        (lambda: Conv2D(2, 2, (3, 3, 3)), "kernel_size must be"),
        (lambda: Conv2D(2, 2, 3, stride=0), "stride must be"),
        (lambda: Conv2D(2, 2, 3, stride=1.5), "stride must be"),  # type: ignore[arg-type]
        (lambda: Conv2D(2, 2, 3, padding="full"), "padding must be 'same', 'valid'"),
        (lambda: Conv2D(2, 2, 3, padding=-1), "padding must be 'same', 'valid'"),
        (lambda: Conv2D(2, 2, 3, dilation=0), "dilation must be"),
        (lambda: Conv2D(3, 2, 3, groups=2), "groups=2 must divide"),
        (lambda: Conv2D(2, 2, 3, groups=0), "groups must be an integer"),
        (lambda: Conv2D(2, 2, 3, use_bias="yes"), "use_bias must be True or False"),  # type: ignore[arg-type]
        (lambda: Conv2D(2, 2, 3, init="nope"), "unknown initializer"),
        (lambda: Conv2D(2, 2, 3, dtype=np.int64), "dtype must be float32 or float64"),
        (lambda: Conv2D(2, 2, 3, memory_budget=0), "memory_budget must be"),
        (lambda: Conv2D(2, 2, 3, n_threads=0), "n_threads must be an integer >= 1 or None"),
        (lambda: MaxPool2D(2, n_threads=1.5), "n_threads must be"),  # type: ignore[arg-type]
        (lambda: MaxPool2D(0), "kernel_size must be"),
        (lambda: MaxPool2D(2, padding=2), "must be smaller than the kernel"),
        (lambda: AvgPool2D(2, stride=(1, 0)), "stride must be"),
        (lambda: AvgPool2D(2, padding="full"), "padding must be"),
    ],
)
def test_bad_arguments_are_refused_clearly(make: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_inputs_are_refused_clearly() -> None:
    layer = Conv2D(2, 3, 5, random_state=0)
    with pytest.raises(ValueError, match=r"per-sample shape \(channels, height, width\)"):
        layer.output_shape((2, 8))
    with pytest.raises(ValueError, match="expects 2 input channels, got 3"):
        layer.output_shape((3, 8, 8))
    with pytest.raises(ValueError, match="larger than the padded input"):
        layer.output_shape((2, 4, 8))
    with pytest.raises(ValueError, match="batch of images"):
        layer.forward(np.zeros((2, 2, 8)))
    with pytest.raises(ValueError, match="larger than the padded input"):
        layer.forward(np.zeros((1, 2, 8, 3)))
    with pytest.raises(ValueError, match="larger than the padded input"):
        Conv2D.chain(layer.config(), (2, 3, 3))
    with pytest.raises(ValueError, match="input channels"):
        Conv2D.chain(layer.config(), (4, 8, 8))
    with pytest.raises(ValueError, match="per-sample shape"):
        MaxPool2D(2).output_shape((4, 4))
    with pytest.raises(ValueError, match="larger than the padded input"):
        MaxPool2D(3).output_shape((1, 2, 5))
    with pytest.raises(ValueError, match="per-sample shape"):
        GlobalAvgPool2D().output_shape((4,))
    with pytest.raises(ValueError, match="groups=2 must divide the input's 3 channels"):
        Conv2D(None, 4, 3, groups=2).build((3, 5, 5), np.random.default_rng(0), np.float64)
    with pytest.raises(ValueError, match="layers\\[1\\]"):
        build_network([Reshape((1, 4, 4)), Conv2D(None, 2, 5)], (16,), np.random.default_rng(0))
    with pytest.raises(ValueError, match="does not know its sizes"):
        Sequential([Conv2D(None, 2, 3)])
    for unfed in (Conv2D(1, 1, 1), MaxPool2D(2), AvgPool2D(2), GlobalAvgPool2D()):
        with pytest.raises(RuntimeError, match="before forward"):
            unfed.backward(np.zeros((1, 1, 1, 1)))
    with pytest.raises(ValueError, match=r"Conv2D.*kernel_size must be"):
        check_layer_configs([{**layer.config(), "kernel_size": [3, 3, 3]}], (2, 8, 8))


# --- the benchmark ------------------------------------------------------------------------


def test_the_cnn_benchmark_runs(tmp_path: Path) -> None:
    """``benchmarks/cnn.py`` on one batch of images prints its ratios and writes its report;
    without PyTorch (hidden here: importing it takes seconds) it says it skipped it."""
    root = Path(__file__).resolve().parents[1]
    output = tmp_path / "cnn.md"
    argv = [str(root / "benchmarks" / "cnn.py"), "--quick", "--n-samples", "128", "--no-memory",
            "--output", str(output)]
    script = (
        "import runpy, sys\n"
        "sys.modules['torch'] = None  # import torch now fails, as if it were not installed\n"
        f"sys.argv = {argv!r}\n"
        f"runpy.run_path({argv[0]!r}, run_name='__main__')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, cwd=root, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "ratio cnn handnet/floor" in result.stdout
    assert "PyTorch is not installed" in result.stdout
    report = output.read_text(encoding="utf-8")
    assert report.startswith("# CNN benchmark") and "Where handnet's CNN epoch goes" in report
