"""The training loop's BLAS thread policy (handnet.training.threads): decisions, not timings."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import handnet
from handnet.nn.layers import Dense, ReLU
from handnet.nn.network import Sequential
from handnet.training import threads


def _mlp(*sizes: int) -> Sequential:
    layers: list = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [Dense(n_in, n_out, random_state=0), ReLU()]
    return Sequential(layers[:-1])


def test_largest_product_counts_two_flops_per_multiply_add() -> None:
    network = _mlp(784, 128, 10)
    assert threads.largest_product_flops(network, 128) == 2 * 128 * 784 * 128
    assert threads.largest_product_flops(Sequential([ReLU()]), 128) == 0


@pytest.mark.parametrize(
    ("sizes", "rows", "expected"),
    [
        ((2, 64, 64, 3), 600, 1),  # the MLP demo: 4.9 MFLOP products, one thread
        ((4, 1), 1000, 1),  # the seed
        ((784, 128, 10), 128, 1),  # the MLP benchmark: 25.7 MFLOP, one thread too
        ((784, 256, 128, 10), 128, 1),
        ((784, 1024, 10), 1024, None),  # 1.6 GFLOP products: BLAS's own threads
        ((784, 128, 10), 60_000, None),  # full batch on 60,000 rows: 12 GFLOP
    ],
)
def test_small_products_run_on_one_thread(
    sizes: tuple[int, ...], rows: int, expected: int | None
) -> None:
    assert threads.blas_threads(_mlp(*sizes), rows) == expected


def test_the_line_is_parallel_min_flops(monkeypatch: pytest.MonkeyPatch) -> None:
    network = _mlp(10, 10)
    flops = threads.largest_product_flops(network, 50)
    monkeypatch.setattr(threads, "PARALLEL_MIN_FLOPS", flops)
    assert threads.blas_threads(network, 50) is None
    monkeypatch.setattr(threads, "PARALLEL_MIN_FLOPS", flops + 1)
    assert threads.blas_threads(network, 50) == 1


def test_convolutional_networks_are_left_alone() -> None:
    from handnet.nn.conv import Conv2D

    network = Sequential([Conv2D(1, 2, 3, random_state=0)])
    assert threads.has_convolutions(network)
    assert threads.blas_threads(network, 10) is None


class _Recorder:
    """Stands in for ``single_threaded_blas``: records entries and exits."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def __call__(self) -> object:
        recorder = self

        class _Context:
            def __enter__(self) -> None:
                recorder.events.append("enter")

            def __exit__(self, *args: object) -> None:
                recorder.events.append("exit")

        return _Context()


def test_a_fit_sets_the_limit_once_and_lifts_it_at_its_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from handnet.data import blocks

    recorder = _Recorder()
    monkeypatch.setattr(blocks, "single_threaded_blas", recorder)
    X, y = handnet.datasets.make_logistic(200, random_state=0)
    handnet.MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, tol=None, batch_size=None,
                          random_state=0).fit(X, y)
    assert recorder.events == ["enter", "exit"]  # five epochs, one limit


def test_no_limit_for_large_products(monkeypatch: pytest.MonkeyPatch) -> None:
    from handnet.data import blocks

    recorder = _Recorder()
    monkeypatch.setattr(blocks, "single_threaded_blas", recorder)
    monkeypatch.setattr(threads, "PARALLEL_MIN_FLOPS", 0.0)
    X, y = handnet.datasets.make_logistic(200, random_state=0)
    handnet.MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, tol=None,
                          random_state=0).fit(X, y)
    assert recorder.events == []


def test_an_epoch_outside_fit_sets_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from handnet.data import blocks
    from handnet.nn.losses import BinaryCrossEntropy
    from handnet.optim.optimizers import SGD
    from handnet.training import Trainer

    recorder = _Recorder()
    monkeypatch.setattr(blocks, "single_threaded_blas", recorder)
    network = Sequential([Dense(3, 1, random_state=0)])
    trainer = Trainer(network, BinaryCrossEntropy(), SGD(0.1), np.random.default_rng(0))
    X = np.ones((4, 3))
    trainer.run_epoch(X, np.ones((4, 1)))
    assert recorder.events == []
    assert not trainer._kernels.threads.entered


def test_fit_threads_restore_the_callers_count() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_counts() -> list[int]:
        return [i["num_threads"] for i in threadpoolctl.threadpool_info()
                if i["user_api"] == "blas"]

    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        before = blas_counts()
        fit = threads.FitThreads()
        fit.enter(_mlp(2, 4, 1), 10)
        assert fit.entered
        assert set(blas_counts()) == {1}
        fit.close()
        assert blas_counts() == before
        assert not fit.entered
