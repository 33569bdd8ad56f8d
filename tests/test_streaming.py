"""Training on out-of-core arrays: memmaps, .npy shards, zarr and h5py, block by block."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import handnet
from handnet.cli import main
from handnet.data import streaming
from handnet.data.streaming import NpyShards, RowBlocks, is_out_of_core, open_shards, storage_bounds
from handnet.models import LogisticRegression, MLPClassifier, MLPRegressor, SoftmaxRegression
from handnet.optim.optimizers import Adam

N, D = 6000, 8  # 384 KB of float64: 6 blocks of 64 KiB once BLOCK_BYTES is lowered


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """64 KiB blocks, so that files of a few hundred kilobytes span several."""
    monkeypatch.setattr(streaming, "BLOCK_BYTES", 64 << 10)


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    X = rng.standard_normal((N, D))
    logits = X[:, :3] @ np.array([[1.5, -1.0, 0.0], [0.5, 1.0, -1.0], [0.0, 0.5, 1.0]])
    y = np.argmax(logits + 0.3 * rng.standard_normal((N, 3)), axis=1)
    return X, y


@pytest.fixture
def files(tmp_path: Path, data: tuple[np.ndarray, np.ndarray]) -> tuple[Any, Any]:
    """X and y saved as .npy files and opened with mmap_mode="r"."""
    X, y = data
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    return np.load(tmp_path / "X.npy", mmap_mode="r"), np.load(tmp_path / "y.npy", mmap_mode="r")


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def test_what_counts_as_out_of_core(files: tuple[Any, Any], data: Any) -> None:
    X_disk, _ = files
    X, _ = data
    assert is_out_of_core(X_disk)
    assert not is_out_of_core(X)
    assert not is_out_of_core(X_disk[:100])  # one block: used as an ordinary array
    assert len(storage_bounds(X_disk)) - 1 == 6
    assert np.all(np.diff(storage_bounds(X_disk))[:-1] == (64 << 10) // (D * 8))


# --- mini-batch streaming -------------------------------------------------------------------


def _adam(seed: int, **kwargs: Any) -> SoftmaxRegression:
    return SoftmaxRegression(optimizer="adam", learning_rate=0.01, batch_size=32, max_iter=3,
                             tol=None, random_state=seed, **kwargs)


def test_streaming_sgd_over_a_memmap_is_reproducible(files: tuple[Any, Any]) -> None:
    X, y = files
    first = _adam(0).fit(X, y)
    again = _adam(0).fit(X, y)
    other = _adam(1).fit(X, y)
    np.testing.assert_array_equal(first.coef_, again.coef_)
    assert first.loss_curve_ == again.loss_curve_
    assert not np.array_equal(first.coef_, other.coef_)
    assert first.loss_curve_[-1] < first.loss_curve_[0]
    assert first.score(X, y) > 0.85
    assert first.t_ == 3 * N and first.n_features_in_ == D


def test_blocks_are_read_whole_in_a_random_order(
    files: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = files
    bounds = storage_bounds(X)
    reads: list[tuple[int, int]] = []
    pread_rows = streaming.pread_rows

    def recording(source: Any, start: int, stop: int) -> Any:
        if source is X:
            reads.append((start, stop))
        return pread_rows(source, start, stop)

    monkeypatch.setattr(streaming, "pread_rows", recording)
    _adam(0).fit(X, y)
    blocks = set(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))
    assert set(reads) == blocks  # storage-aligned reads only: no row is fetched alone
    epochs = [reads[i : i + len(blocks)] for i in range(0, len(reads), len(blocks))]
    assert len(epochs) == 3 and all(sorted(epoch) == sorted(blocks) for epoch in epochs)
    assert len({tuple(epoch) for epoch in epochs}) > 1  # a new block order each epoch
    assert epochs[0] != sorted(blocks)


def test_one_block_streaming_equals_in_memory_training(tmp_path: Path, data: Any) -> None:
    """A single shard is one block: the same draws, batches and steps as in memory."""
    X, y = data
    np.save(tmp_path / "X_0.npy", X[:500])
    np.save(tmp_path / "y_0.npy", y[:500])
    X_disk, y_disk = open_shards(tmp_path)
    assert is_out_of_core(X_disk) and len(storage_bounds(X_disk)) == 2
    makers = [
        lambda: MLPClassifier((6,), learning_rate=0.01, batch_size=16, max_iter=3, tol=None,
                              random_state=3),
        lambda: LogisticRegression(batch_size=1, learning_rate=0.05, max_iter=2, tol=None,
                                   random_state=1),
        lambda: MLPRegressor((5,), batch_size=32, max_iter=2, tol=None, random_state=2),
    ]
    for make in makers:
        target = y[:500] if not isinstance(make(), MLPRegressor) else X[:500, 0]
        target_disk = y_disk if not isinstance(make(), MLPRegressor) else X[:500, 0]
        if isinstance(make(), LogisticRegression):
            target, target_disk = target % 2, (y[:500] % 2)
        streamed = make().fit(X_disk, target_disk)
        in_memory = make().fit(X[:500], target)
        np.testing.assert_array_equal(
            streamed.network_.flat_parameters, in_memory.network_.flat_parameters
        )
        assert streamed.loss_curve_ == in_memory.loss_curve_


def test_partial_fit_streams_each_call(files: tuple[Any, Any], data: Any) -> None:
    X, y = files
    model = _adam(0)
    with pytest.raises(ValueError, match="classes must be passed"):
        model.partial_fit(X, y)
    model.partial_fit(X, y, classes=[0, 1, 2])
    model.partial_fit(X, y)
    assert model.t_ == 2 * N and len(model.loss_curve_) == 2
    unseen = r"y \(rows \d+:\d+\) contains labels not seen at fit time: \[7\]"
    with pytest.raises(ValueError, match=unseen):
        SoftmaxRegression(batch_size=32).partial_fit(X, np.where(np.arange(N) == 4000, 7, y),
                                                      classes=[0, 1, 2])


def test_bad_values_are_found_block_by_block(tmp_path: Path, data: Any) -> None:
    X, y = data
    bad = X.copy()
    bad[2500, 3] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    X_bad = np.load(tmp_path / "bad.npy", mmap_mode="r")
    rows = storage_bounds(X_bad)
    block = int(np.searchsorted(rows, 2500, side="right")) - 1
    where = f"rows {rows[block]}:{rows[block + 1]}"
    with pytest.raises(ValueError, match=f"X \\({where}\\) contains NaN"):
        _adam(0).fit(X_bad, y)
    with pytest.raises(ValueError, match=f"X \\({where}\\) contains NaN"):
        LogisticRegression(max_iter=2).fit(X_bad, y % 2)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        _adam(0).fit(np.load(tmp_path / "bad.npy", mmap_mode="r"), y[:-1])
    with pytest.raises(ValueError, match="continuous"):
        _adam(0).fit(X_bad, y + 0.5)


def test_predict_reads_blocks_and_equals_in_memory(files: tuple[Any, Any], data: Any) -> None:
    X_disk, y_disk = files
    X, y = data
    model = _adam(0).fit(X, y)
    np.testing.assert_array_equal(model.predict(X_disk), model.predict(X))
    np.testing.assert_allclose(model.predict_proba(X_disk), model.predict_proba(X), rtol=1e-13)
    assert model.score(X_disk, y_disk) == model.score(X, y)


def test_early_stopping_holds_out_whole_blocks(files: tuple[Any, Any], tmp_path: Path) -> None:
    X, y = files
    model = _adam(0, early_stopping=True, validation_fraction=0.3).fit(X, y)
    assert len(model.validation_scores_) == 3
    n_blocks = len(storage_bounds(X)) - 1
    held = round(0.3 * n_blocks)
    block_rows = int(np.diff(storage_bounds(X))[0])
    assert model.t_ // 3 in {N - held * block_rows, N - (held - 1) * block_rows - N % block_rows}
    np.save(tmp_path / "X_0.npy", np.asarray(X[:200]))
    np.save(tmp_path / "y_0.npy", np.asarray(y[:200]))
    one_block, labels = open_shards(tmp_path)
    with pytest.raises(ValueError, match="single block"):
        _adam(0, early_stopping=True).fit(one_block, labels)
    # A share of the blocks that rounds to none is refused: one block would be too much.
    tiny = 0.49 / n_blocks
    with pytest.raises(ValueError, match="less than one block"):
        _adam(0, early_stopping=True, validation_fraction=tiny).fit(X, y)


# --- full batch: sums over blocks ----------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: LogisticRegression(learning_rate=1.0, max_iter=20, tol=None, alpha=1e-3),
        lambda: SoftmaxRegression(optimizer="lbfgs", max_iter=20, tol=None),
        lambda: MLPClassifier((5,), optimizer="lbfgs", max_iter=15, tol=None, random_state=0),
        lambda: SoftmaxRegression(learning_rate=0.5, max_iter=10, tol=None,
                                  class_weight="balanced"),
    ],
)
def test_full_batch_on_a_memmap_equals_in_memory(
    files: tuple[Any, Any], data: Any, make: Any
) -> None:
    X_disk, y_disk = files
    X, y = data
    target = y % 2 if isinstance(make(), LogisticRegression) else y
    target_disk = np.asarray(y_disk) % 2 if isinstance(make(), LogisticRegression) else y_disk
    weights = np.random.default_rng(0).random(N)
    streamed = make().fit(X_disk, target_disk, sample_weight=weights)
    in_memory = make().fit(X, target, sample_weight=weights)
    assert relative(streamed.network_.flat_parameters, in_memory.network_.flat_parameters) < 1e-12
    assert streamed.loss_curve_ == pytest.approx(in_memory.loss_curve_, rel=1e-12)


def test_regression_targets_out_of_core(tmp_path: Path, data: Any) -> None:
    X, _ = data
    targets = np.column_stack([X[:, 0] - X[:, 1], X[:, 2] * 0.5])
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "t.npy", targets)
    X_disk = np.load(tmp_path / "X.npy", mmap_mode="r")
    t_disk = np.load(tmp_path / "t.npy", mmap_mode="r")

    def make() -> MLPRegressor:
        return MLPRegressor((4,), optimizer="lbfgs", max_iter=20, tol=None, random_state=0)

    streamed = make().fit(X_disk, t_disk)
    in_memory = make().fit(X, targets)
    assert relative(streamed.network_.flat_parameters, in_memory.network_.flat_parameters) < 1e-12
    assert streamed.predict(X_disk).shape == (N, 2)
    minibatch = MLPRegressor((4,), batch_size=64, learning_rate=0.03, max_iter=5, tol=None,
                             random_state=0)
    assert minibatch.fit(X_disk, t_disk).score(X_disk, t_disk) > 0.5


# --- checkpoints and interrupts ------------------------------------------------------------


def test_checkpoint_and_resume_on_streamed_data(files: tuple[Any, Any], tmp_path: Path) -> None:
    X, y = files
    reference = _adam(0, early_stopping=True).set_params(max_iter=4).fit(X, y)
    checkpoint = tmp_path / "run.npz"
    _adam(0, early_stopping=True).set_params(max_iter=2).fit(X, y, checkpoint=checkpoint)
    resumed = _adam(0, early_stopping=True).set_params(max_iter=4).fit(
        X, y, checkpoint=checkpoint, resume=True
    )
    np.testing.assert_array_equal(resumed.network_.flat_parameters,
                                  reference.network_.flat_parameters)
    assert resumed.loss_curve_ == reference.loss_curve_
    assert resumed.validation_scores_ == reference.validation_scores_
    other = np.load(tmp_path / "run.npz", allow_pickle=False)  # a model file like any other
    other.close()
    changed = np.asarray(X).copy()
    changed[-1, 0] += 1.0
    np.save(tmp_path / "X2.npy", changed)
    with pytest.raises(ValueError, match="the data differs"):
        _adam(0, early_stopping=True).set_params(max_iter=4).fit(
            np.load(tmp_path / "X2.npy", mmap_mode="r"), y, checkpoint=checkpoint, resume=True
        )


def test_ctrl_c_stops_at_a_block_boundary_and_resumes_exactly(
    files: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    X, y = files
    reference = _adam(0).fit(X, y)
    real_step = Adam.step
    calls = [0]

    def step(self: Any, pairs: Any) -> None:
        calls[0] += 1
        if calls[0] == 250:  # inside epoch 2 (188 steps an epoch)
            signal.raise_signal(signal.SIGINT)
        real_step(self, pairs)

    checkpoint = tmp_path / "run.npz"
    with monkeypatch.context() as patch:
        patch.setattr(Adam, "step", step)
        interrupted = _adam(0).fit(X, y, checkpoint=checkpoint)
    progress = interrupted._trainer._progress
    assert interrupted._trainer.interrupted and interrupted.n_iter_ == 1
    assert progress is not None and 0 < progress.position < 6  # blocks, not rows
    assert "blocks of epoch 2" in caplog.text  # the trainer's report (logging)
    resumed = _adam(0).fit(X, y, checkpoint=checkpoint, resume=True)
    np.testing.assert_array_equal(resumed.network_.flat_parameters,
                                  reference.network_.flat_parameters)
    assert resumed.loss_curve_ == reference.loss_curve_


# --- .npy shards, zarr, h5py -----------------------------------------------------------------


def test_a_directory_of_npy_shards(tmp_path: Path, data: Any) -> None:
    X, y = data
    for k, (start, stop) in enumerate([(0, 2500), (2500, 2600), (2600, N)]):
        np.save(tmp_path / f"X_{k:03d}.npy", X[start:stop])
        np.save(tmp_path / f"y_{k:03d}.npy", y[start:stop])
    X_disk, y_disk = open_shards(tmp_path)
    assert isinstance(X_disk, NpyShards) and isinstance(y_disk, NpyShards)
    assert X_disk.shape == (N, D) and len(y_disk) == N
    bounds = storage_bounds(X_disk)
    assert {0, 2500, 2600, N} <= set(bounds.tolist())  # blocks never straddle two files
    np.testing.assert_array_equal(X_disk[2400:2700], X[2400:2700])
    streamed = _adam(0).fit(X_disk, y_disk)
    assert streamed.score(X_disk, y_disk) > 0.85
    (tmp_path / "y_001.npy").unlink()
    with pytest.raises(ValueError, match="needs its y_"):
        open_shards(tmp_path)


def test_zarr_arrays_stream_by_chunks(tmp_path: Path, data: Any) -> None:
    zarr = pytest.importorskip("zarr")
    X, y = data
    Xz = zarr.open_array(str(tmp_path / "X.zarr"), mode="w", shape=X.shape, chunks=(700, D),
                           dtype="f8")
    Xz[:] = X
    yz = zarr.open_array(str(tmp_path / "y.zarr"), mode="w", shape=y.shape, chunks=(700,),
                           dtype="i8")
    yz[:] = y
    assert is_out_of_core(Xz)
    bounds = storage_bounds(Xz)
    assert np.all(bounds[:-1] % 700 == 0)  # chunk-aligned
    first, again = _adam(0).fit(Xz, yz), _adam(0).fit(Xz, yz)
    np.testing.assert_array_equal(first.coef_, again.coef_)
    full = LogisticRegression(max_iter=10, tol=None).fit(Xz, y % 2)
    in_memory = LogisticRegression(max_iter=10, tol=None).fit(X, y % 2)
    assert relative(full.coef_, in_memory.coef_) < 1e-12
    # One chunk for the whole array: exactly in-memory training.
    whole = zarr.open_array(str(tmp_path / "W.zarr"), mode="w", shape=X.shape, chunks=X.shape,
                              dtype="f8")
    whole[:] = X
    np.testing.assert_array_equal(_adam(0).fit(whole, y).coef_, _adam(0).fit(X, y).coef_)


def test_h5py_datasets_stream_by_chunks(tmp_path: Path, data: Any) -> None:
    h5py = pytest.importorskip("h5py")
    X, y = data
    with h5py.File(tmp_path / "data.h5", "w") as f:
        f.create_dataset("X", data=X, chunks=(500, D))
        f.create_dataset("y", data=y)
        f.create_dataset("X32", data=X.astype(np.float32))  # contiguous: fixed row ranges
    with h5py.File(tmp_path / "data.h5", "r") as f:
        assert is_out_of_core(f["X"])
        first = _adam(0).fit(f["X"], f["y"])
        again = _adam(0).fit(f["X"], f["y"])
        np.testing.assert_array_equal(first.coef_, again.coef_)
        model = _adam(0).fit(f["X32"], f["y"])
        assert model.coef_.dtype == np.float32  # float32 in, float32 all the way
        assert model.predict_proba(f["X32"]).dtype == np.float32
        assert model.score(f["X32"], f["y"]) > 0.85


def test_row_blocks_directly(files: tuple[Any, Any]) -> None:
    X, y = files
    encoder = streaming.TargetEncoder("onehot", np.dtype(np.float64), 3, np.array([0, 1, 2]))
    blocks = RowBlocks(X, y, None, encoder, np.float64)
    assert blocks.n_rows == N and blocks.n_blocks == 6 and blocks.shape == (N, D)
    seen = [block.index for block in blocks.iter_blocks([3, 1, 5])]
    assert seen == [3, 1, 5]
    block = blocks.read(2)
    start, stop = blocks.rows(2)
    np.testing.assert_array_equal(block.X, X[start:stop])
    np.testing.assert_array_equal(block.Y.argmax(1), y[start:stop])
    assert blocks.block_order(None).tolist() == list(range(6))
    assert blocks.subset(np.array([0, 4])).n_rows == 2 * (stop - start)


# --- a data set larger than the memory allowed ----------------------------------------------

_BIG_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import numpy as np
    import handnet

    def status(field):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(field)

    X = np.load(sys.argv[1], mmap_mode="r")
    y = np.load(sys.argv[2], mmap_mode="r")
    # With numba installed, full-batch GD compiles its kernel on first use: a fixed
    # ~140 MiB (LLVM) once per process, whatever the data's size. Paid before the
    # measurement, so that what is measured is what grows with the data.
    handnet.training.kernels.logistic_block_sums_compiled()
    start = status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) restarts from here
    sgd = handnet.LogisticRegression(optimizer="adam", batch_size=256, learning_rate=0.01,
                                     max_iter=1, tol=None, random_state=0).fit(X, y)
    gd = handnet.LogisticRegression(max_iter=2, tol=None).fit(X, y)
    accuracy = gd.score(X, y)
    print(X.nbytes, status("VmHWM") - start, sgd.score(X, y), accuracy)
    """
)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_training_on_a_file_several_times_larger_than_the_memory_allowed(
    tmp_path: Path,
) -> None:
    """400 MB of features, at most 100 MB of memory: streaming SGD and full-batch GD."""
    n, d = 1_000_000, 50
    X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float64,
                                  shape=(n, d))
    rng = np.random.default_rng(0)
    w = rng.standard_normal(d)
    y = np.lib.format.open_memmap(tmp_path / "y.npy", mode="w+", dtype=np.int8, shape=(n,))
    for start in range(0, n, 50_000):
        block = rng.standard_normal((50_000, d))
        X[start : start + 50_000] = block
        y[start : start + 50_000] = block @ w > 0
    X.flush()
    y.flush()
    del X, y
    result = subprocess.run(
        [sys.executable, "-c", _BIG_SCRIPT, str(tmp_path / "X.npy"), str(tmp_path / "y.npy")],
        capture_output=True, text=True, timeout=120, check=True,
        env={"OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    nbytes, grown, sgd_accuracy, gd_accuracy = result.stdout.split()
    assert int(nbytes) == 400_000_000
    assert int(grown) < 100 * 2**20, f"peak memory grew by {int(grown) / 2**20:.0f} MiB"
    assert float(sgd_accuracy) > 0.95 and float(gd_accuracy) > 0.9


# --- the command line ------------------------------------------------------------------------


def test_cli_trains_on_a_npy_pair_and_a_shard_directory(
    files: tuple[Any, Any], tmp_path: Path, data: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Streamed data holds out whole blocks, only when asked (--validation-fraction).
    code = main(["train", str(tmp_path / "X.npy"), "--labels", str(tmp_path / "y.npy"),
                 "--epochs", "2", "--batch-size", "64", "--quiet", "--validation-fraction",
                 "0.25", "--save", str(tmp_path / "m.npz")])
    assert code == 0
    text = capsys.readouterr().out
    assert "read from disk block by block" in text and "validation: accuracy" in text
    assert handnet.load(tmp_path / "m.npz").n_features_in_ == D
    assert main(["evaluate", str(tmp_path / "m.npz"), str(tmp_path / "X.npy"),
                 "--labels", str(tmp_path / "y.npy")]) == 0
    assert "accuracy" in capsys.readouterr().out
    X, y = data
    shards = tmp_path / "shards"
    shards.mkdir()
    for k in range(3):
        np.save(shards / f"X_{k:03d}.npy", X[k * 2000 : (k + 1) * 2000])
        np.save(shards / f"y_{k:03d}.npy", y[k * 2000 : (k + 1) * 2000])
    assert main(["train", str(shards), "--model", "softmax", "--epochs", "2", "--quiet"]) == 0
    assert "(3 shards)" in capsys.readouterr().out

    code = main(["train", str(tmp_path / "X.npy"), "--labels", str(tmp_path / "y.npy"),
                 "--standardize"])
    assert code == 2
    assert "--standardize needs the data in memory" in capsys.readouterr().err
    code = main(["train", str(tmp_path / "X.npy")])
    assert code == 1
    assert "pass its labels with --labels" in capsys.readouterr().err
