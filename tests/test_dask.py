"""Full-batch training on Dask arrays, on a real LocalCluster and on the local scheduler."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from handnet.data.streaming import is_out_of_core
from handnet.models import LogisticRegression, MLPClassifier, MLPRegressor, SoftmaxRegression

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

N, D = 12_000, 10


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """Two worker processes on the loopback interface, shared by this module's tests.

    The client is not made the default: tests that want it enter
    ``client.as_current()``, the others run on Dask's local scheduler.
    """
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    X = rng.standard_normal((N, D))
    logits = X[:, :3] @ np.array([[1.5, -1.0, 0.0], [0.5, 1.0, -1.0], [0.0, 0.5, 1.0]])
    y = np.argmax(logits + 0.5 * rng.standard_normal((N, 3)), axis=1)
    return X, y


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


MAKERS = {
    "gd-logistic": lambda: LogisticRegression(learning_rate=1.0, max_iter=20, tol=None,
                                              alpha=1e-3),
    "gd-softmax-weighted": lambda: SoftmaxRegression(learning_rate=0.5, max_iter=20, tol=None,
                                                     class_weight="balanced"),
    "lbfgs-softmax": lambda: SoftmaxRegression(optimizer="lbfgs", max_iter=25, tol=None),
    "lbfgs-mlp": lambda: MLPClassifier((6,), optimizer="lbfgs", max_iter=20, tol=None,
                                       random_state=0),
}


def _targets(name: str, y: np.ndarray) -> np.ndarray:
    return y % 2 if "logistic" in name else y


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_full_batch_on_the_cluster_equals_in_memory(
    client: Any, data: tuple[np.ndarray, np.ndarray], name: str
) -> None:
    X, y = data
    make = MAKERS[name]
    target = _targets(name, y)
    weights = np.random.default_rng(1).random(N) if "weighted" in name else None
    in_memory = make().fit(X, target, sample_weight=weights)
    X_dask = da.from_array(X, chunks=(2500, D))  # 5 blocks, the last one short
    y_dask = da.from_array(target, chunks=3000)  # other boundaries: cut at X's
    assert is_out_of_core(X_dask)
    with client.as_current():
        on_cluster = make().fit(X_dask, y_dask, sample_weight=weights)
    difference = relative(on_cluster.network_.flat_parameters, in_memory.network_.flat_parameters)
    assert difference <= 1e-10
    assert on_cluster.loss_curve_ == pytest.approx(in_memory.loss_curve_, rel=1e-10)
    assert on_cluster.n_iter_ == in_memory.n_iter_
    # predictions stream the blocks back, in order
    np.testing.assert_array_equal(on_cluster.predict(X_dask), on_cluster.predict(X))


def test_the_data_is_persisted_once_and_only_parameters_travel(
    client: Any, data: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    from handnet.data import cluster

    X, _ = data
    persisted: list[int] = []
    real_persist = cluster._persist

    def counting(blocks: Any, on: Any) -> Any:
        persisted.append(1)
        return real_persist(blocks, on)

    monkeypatch.setattr(cluster, "_persist", counting)
    submitted: list[tuple[list[Any], dict[str, Any]]] = []
    real_submit = client.submit

    def recording_submit(function: Any, *args: Any, **kwargs: Any) -> Any:
        submitted.append((args[0], kwargs))
        return real_submit(function, *args, **kwargs)

    monkeypatch.setattr(client, "submit", recording_submit)
    X_dask = da.from_array(X, chunks=(3000, D))  # 4 blocks
    with client.as_current():
        model = MLPRegressor((4,), optimizer="lbfgs", max_iter=8, tol=None, random_state=0)
        model.fit(X_dask, X[:, 0] - X[:, 1])
    assert persisted == [1]
    evaluations = model._trainer.optimizer.n_evaluations
    # One task per worker holding blocks (2 here) per function evaluation, covering
    # every persisted block exactly once.
    assert len(submitted) % evaluations == 0 and len(submitted) // evaluations <= 2
    per_evaluation = len(submitted) // evaluations
    for start in range(0, len(submitted), per_evaluation):
        blocks = [f.key for blocks, _ in submitted[start : start + per_evaluation] for f in blocks]
        assert len(blocks) == len(set(blocks)) == 4
    for _, kwargs in submitted:
        parameters = kwargs["parameters"]
        assert type(parameters) is np.ndarray and parameters.ndim == 1  # never a Dask graph


def test_errors_in_a_block_on_a_worker_name_the_rows(
    client: Any, data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = data
    bad = X.copy()
    bad[7000, 2] = np.inf
    with client.as_current(), pytest.raises(ValueError, match=r"X \(rows 6000:9000\) contains"):
        LogisticRegression(max_iter=3).fit(da.from_array(bad, chunks=(3000, D)), y % 2)


def test_streaming_minibatches_from_the_cluster_are_reproducible(
    client: Any, data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = data
    X_dask = da.from_array(X, chunks=(2000, D))

    def make(seed: int) -> SoftmaxRegression:
        return SoftmaxRegression(optimizer="adam", learning_rate=0.01, batch_size=64,
                                 max_iter=2, tol=None, random_state=seed)

    with client.as_current():
        first, again, other = make(0).fit(X_dask, y), make(0).fit(X_dask, y), make(1).fit(X_dask, y)
    np.testing.assert_array_equal(first.coef_, again.coef_)
    assert not np.array_equal(first.coef_, other.coef_)
    assert first.score(X, y) > 0.8


def test_the_local_scheduler_without_a_client(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    assert distributed.client._get_global_client() is None
    X_dask = da.from_array(X, chunks=(4000, D))
    for name in ("gd-logistic", "lbfgs-mlp"):
        target = _targets(name, y)
        local = MAKERS[name]().fit(X_dask, target)
        in_memory = MAKERS[name]().fit(X, target)
        assert relative(local.network_.flat_parameters, in_memory.network_.flat_parameters) <= 1e-10
    # One chunk: mini-batch streaming is exactly in-memory training.
    whole = da.from_array(X, chunks=X.shape)

    def make() -> MLPClassifier:
        return MLPClassifier((5,), batch_size=32, max_iter=2, tol=None, random_state=0)

    np.testing.assert_array_equal(make().fit(whole, y).network_.flat_parameters,
                                  make().fit(X, y).network_.flat_parameters)
