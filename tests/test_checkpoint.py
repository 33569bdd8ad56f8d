"""Training that keeps its progress: checkpoints, resuming bit for bit, Ctrl-C, divergence.

The reference for every resume test is the same model trained without
interruption: resuming must give *exactly* its parameters and history, not
merely close ones.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import handnet
from handnet import (
    DivergenceError,
    LogisticRegression,
    MLPClassifier,
    MLPRegressor,
    ModelFileError,
    Sequential,
    SoftmaxRegression,
)
from handnet.io.checkpoint import MAX_SHARE, MIN_INTERVAL, CheckpointRun, WriteThrottle
from handnet.nn.layers import Activation, Dense, Dropout
from handnet.nn.losses import SoftmaxCrossEntropy
from handnet.optim.optimizers import Adam, Momentum
from handnet.optim.schedules import StepDecay
from handnet.training import Trainer
from handnet.training.state import check_trainer_state


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread() -> Iterator[None]:
    """One BLAS thread, as in the child processes: the same arithmetic everywhere."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        yield
        return
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(autouse=True)
def unthrottled_checkpoints(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tests check which epoch each checkpoint holds: none may be skipped.

    (The throttle's own tests, named ``test_throttle_...``, keep its limits.)
    """
    if not request.node.name.startswith("test_throttle_"):
        monkeypatch.setattr(handnet.io.checkpoint, "MIN_INTERVAL", 0.0)
        monkeypatch.setattr(handnet.io.checkpoint, "MAX_SHARE", math.inf)


def _load_script(name: str) -> ModuleType:
    """A sibling test module, imported by path (the tests are no package)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(90, 4))
    y = (X[:, 0] - X[:, 1] > 0).astype(int) + (X[:, 2] > 0.7).astype(int)
    return X, y


X, Y3 = _data()
Y2 = (Y3 > 0).astype(int)


class Injected(Exception):
    """The failure a test injects into training."""


def _fail_at_epoch(epoch: int) -> Callable[[Trainer], None]:
    def callback(trainer: Trainer) -> None:
        if trainer.epoch == epoch:
            raise Injected(f"injected after epoch {epoch}")

    return callback


def _assert_same_run(resumed: Any, reference: Any) -> None:
    np.testing.assert_array_equal(
        resumed.network_.flat_parameters, reference.network_.flat_parameters, strict=True
    )
    assert resumed.loss_curve_ == reference.loss_curve_
    assert resumed.n_iter_ == reference.n_iter_
    assert resumed.t_ == reference.t_
    assert resumed.validation_scores_ == reference.validation_scores_
    assert resumed.history_ == reference.history_
    for mine, theirs in zip(resumed.network_.buffers(), reference.network_.buffers(), strict=True):
        assert mine.keys() == theirs.keys()
        for name in mine:  # running statistics (BatchNorm) resume too
            np.testing.assert_array_equal(mine[name], theirs[name], strict=True)
    ref_state = reference._trainer.optimizer
    if hasattr(ref_state, "state") and ref_state.state:
        for key, value in ref_state.state[0].items():
            if key != "buffer":
                np.testing.assert_array_equal(resumed._trainer.optimizer.state[0][key], value)


CONFIGS: dict[str, tuple[Callable[[], Any], np.ndarray, dict[str, Any]]] = {
    "gd-full-batch": (
        lambda: LogisticRegression(learning_rate=0.3, max_iter=25, tol=None),
        Y2,
        {},
    ),
    "sgd-batch-1": (
        lambda: LogisticRegression(
            optimizer="sgd", batch_size=1, max_iter=9, tol=None, random_state=3
        ),
        Y2,
        {},
    ),
    "adam-minibatch-dropout": (
        lambda: MLPClassifier(
            (8, 6),
            dropout=0.25,
            batch_size=16,
            max_iter=14,
            tol=None,
            random_state=0,
            learning_rate=0.01,
        ),
        Y3,
        {},
    ),
    "momentum-step-schedule": (
        lambda: MLPRegressor(
            (6,),
            optimizer=Momentum(0.01),
            schedule=StepDecay(3, 0.5),
            batch_size=10,
            max_iter=12,
            tol=None,
            random_state=1,
        ),
        X[:, 0] - 2 * X[:, 3],
        {},
    ),
    "plateau-schedule-validation-data": (
        lambda: SoftmaxRegression(
            schedule="plateau",
            optimizer="rmsprop",
            learning_rate=0.05,
            batch_size=30,
            max_iter=15,
            tol=None,
            random_state=2,
        ),
        Y3,
        {"validation_data": (X[:25], Y3[:25])},
    ),
    "early-stopping-split": (
        lambda: MLPClassifier(
            (5,),
            early_stopping=True,
            batch_size=20,
            max_iter=12,
            tol=None,
            random_state=4,
            learning_rate=0.01,
        ),
        Y3,
        {},
    ),
    "lbfgs": (
        lambda: MLPClassifier((5,), optimizer="lbfgs", max_iter=25, tol=None, random_state=0),
        Y2,
        {},
    ),
    # Rows viewed as 1x2x2 images: a convolution, batch normalisation (running statistics
    # that must resume too) and dropout (masks from the model's generator).
    "cnn-batchnorm-dropout": (
        lambda: handnet.NeuralNetClassifier(
            [
                handnet.Conv2D(None, 3, 2, padding="same"),
                handnet.BatchNorm(),
                handnet.Activation("relu"),
                handnet.Dropout(0.2),
                handnet.Flatten(),
                handnet.Dense(None, None),
            ],
            input_shape=(1, 2, 2),
            batch_size=16,
            max_iter=12,
            tol=None,
            learning_rate=0.01,
            random_state=5,
        ),
        Y3,
        {},
    ),
    # Early stopping over batch normalisation: the best epoch's running statistics are
    # restored with its parameters, and a checkpoint keeps them for the resumed run.
    "batchnorm-validation-data": (
        lambda: handnet.NeuralNetRegressor(
            [handnet.Dense(None, 8), handnet.BatchNorm(), handnet.Activation("relu"),
             handnet.Dense(None, None)],
            batch_size=16,
            max_iter=12,
            tol=None,
            learning_rate=0.05,
            random_state=6,
        ),
        X[:, 0] * X[:, 1],
        {"validation_data": (X[:25], X[:25, 0] * X[:25, 1])},
    ),
}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_resuming_after_a_crash_reproduces_the_uninterrupted_run(
    config: str, tmp_path: Path
) -> None:
    make, y, fit_kwargs = CONFIGS[config]
    reference = make().fit(X, y, **fit_kwargs)
    checkpoint = tmp_path / "run.npz"
    with pytest.raises(Injected):
        make().fit(
            X,
            y,
            checkpoint=checkpoint,
            checkpoint_every=3,
            callbacks=[_fail_at_epoch(7)],
            **fit_kwargs,
        )
    # The crash came after epoch 7: the file holds epoch 6, the last multiple of 3.
    saved = handnet.load(checkpoint)
    assert saved.n_iter_ == 6
    assert len(saved.loss_curve_) == 6
    resumed = make().fit(X, y, checkpoint=checkpoint, resume=True, **fit_kwargs)
    _assert_same_run(resumed, reference)
    # The finished run's final checkpoint is the finished model.
    np.testing.assert_array_equal(
        handnet.load(checkpoint).network_.flat_parameters, reference.network_.flat_parameters
    )


def _step_hook(
    monkeypatch: pytest.MonkeyPatch, cls: type, at_step: int, action: Callable[[], None]
) -> None:
    """Run ``action`` before the ``at_step``-th optimizer step (counted from 1)."""
    real_step = cls.step
    calls = [0]

    def step(self: Any, pairs: Any) -> None:
        calls[0] += 1
        if calls[0] == at_step:
            action()
        real_step(self, pairs)

    monkeypatch.setattr(cls, "step", step)


def _raise_injected() -> None:
    raise Injected("injected inside an optimizer step")


def test_an_exception_inside_a_step_then_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make, y, _ = CONFIGS["adam-minibatch-dropout"]
    reference = make().fit(X, y)
    checkpoint = tmp_path / "run.npz"
    with monkeypatch.context() as patch:
        # 6 steps per epoch (90 rows / 16): step 40 is inside epoch 7.
        _step_hook(patch, Adam, 40, _raise_injected)
        with pytest.raises(Injected):
            make().fit(X, y, checkpoint=checkpoint, checkpoint_every=2)
    assert handnet.load(checkpoint).n_iter_ == 6
    resumed = make().fit(X, y, checkpoint=checkpoint, resume=True)
    _assert_same_run(resumed, reference)


def _interrupt() -> None:
    signal.raise_signal(signal.SIGINT)  # delivered to the handler fit installs


@pytest.mark.parametrize("config", ["sgd-batch-1", "adam-minibatch-dropout", "lbfgs"])
def test_ctrl_c_mid_epoch_keeps_the_steps_and_resumes_exactly(
    config: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    make, y, _ = CONFIGS[config]
    reference = make().fit(X, y)
    checkpoint = tmp_path / "run.npz"
    if config == "lbfgs":
        # L-BFGS has no optimizer steps to hook: interrupt from a callback.
        def callback(trainer: Trainer) -> None:
            if trainer.epoch == 11:
                _interrupt()

        interrupted = make().fit(X, y, checkpoint=checkpoint, callbacks=[callback])
        expected_epochs = 11
    else:
        with monkeypatch.context() as patch:
            if config == "sgd-batch-1":
                # Plain per-example SGD runs in handnet.training.kernels, in chunks of rows
                # with a chance to stop between two: 10-row chunks, 9 per epoch.
                patch.setattr(Trainer, "KERNEL_CHUNK", 10)
                kernel = handnet.training.fastpath.logistic_sgd_epoch
                calls = [0]

                def hooked_kernel(*args: Any, **kwargs: Any) -> float:
                    calls[0] += 1
                    if calls[0] == 20:  # the 20 rows of epoch 3 are done
                        _interrupt()
                    return kernel(*args, **kwargs)

                patch.setattr(handnet.training.fastpath, "logistic_sgd_epoch", hooked_kernel)
            else:
                _step_hook(patch, Adam, 33, _interrupt)
            interrupted = make().fit(X, y, checkpoint=checkpoint)
        # SGD: 9 kernel chunks an epoch, chunk 20 is in epoch 3; Adam: 6 steps an epoch,
        # step 33 is in epoch 6.
        expected_epochs = 2 if config == "sgd-batch-1" else 5
        assert interrupted._trainer._progress is not None  # stopped inside the epoch
    assert interrupted._trainer.interrupted
    assert interrupted.n_iter_ == expected_epochs
    assert interrupted.loss_curve_ == reference.loss_curve_[:expected_epochs]
    assert "Interrupt received" in capsys.readouterr().err
    # The report goes through logging (printed to stderr when logging is not configured).
    report = [r for r in caplog.records if getattr(r, "handnet_event", None) == "interrupted"]
    assert len(report) == 1 and report[0].levelno == logging.WARNING
    assert "Training interrupted after" in caplog.text
    assert "Checkpoint saved to" in caplog.text and "resume=True" in caplog.text
    # The model is at its last completed step: the checkpoint holds exactly it.
    np.testing.assert_array_equal(
        handnet.load(checkpoint).network_.flat_parameters,
        interrupted.network_.flat_parameters,
    )
    resumed = make().fit(X, y, checkpoint=checkpoint, resume=True)
    _assert_same_run(resumed, reference)


def test_ctrl_c_in_full_batch_gd_keeps_the_completed_epoch(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    make, y, _ = CONFIGS["gd-full-batch"]
    with monkeypatch.context() as patch:
        # Plain full-batch GD of a logistic regression runs in handnet.training.kernels,
        # called step by step through SeedKernels.gd_step.
        kernel = handnet.training.fastpath.SeedKernels.gd_step
        calls = [0]

        def hooked_kernel(*args: Any, **kwargs: Any) -> float:
            calls[0] += 1
            if calls[0] == 8:
                _interrupt()
            return kernel(*args, **kwargs)

        patch.setattr(handnet.training.fastpath.SeedKernels, "gd_step", hooked_kernel)
        interrupted = make().fit(X, y)
    assert calls[0] == 8
    # A full-batch epoch is one step: the 8th step completes epoch 8, and training stops.
    shorter = make().set_params(max_iter=8).fit(X, y)
    np.testing.assert_array_equal(
        interrupted.network_.flat_parameters, shorter.network_.flat_parameters
    )
    assert interrupted.loss_curve_ == shorter.loss_curve_
    assert "No checkpoint is configured" in caplog.text


@pytest.mark.parametrize("tol", [None, 1e-12])
def test_per_example_sgd_resumes_on_the_same_kernel_as_the_uninterrupted_run(
    tol: float | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With more than 8 features the compiled SGD kernel and the NumPy path differ in the
    last bits; which one runs depends on the run's work (Trainer.NUMBA_MIN_ROWS), counted
    from the run's first epoch, so the resumed half takes the path the whole run took."""
    pytest.importorskip("numba")
    rng = np.random.default_rng(5)
    X10 = rng.standard_normal((200, 10))
    y10 = (X10[:, 0] - X10[:, 3] + rng.standard_normal(200) > 0).astype(int)
    # The whole run (6 epochs of 200 rows) reaches the threshold; its last 3 epochs alone
    # do not. With tol, 2 planned epochs do not either: it switches at the 5th epoch,
    # once 800 rows ran (the run's rows, not the resumed fit's).
    monkeypatch.setattr(Trainer, "NUMBA_MIN_ROWS", 1000)

    def make() -> LogisticRegression:
        return LogisticRegression(optimizer="sgd", batch_size=1, learning_rate=0.05,
                                  max_iter=6, tol=tol, n_iter_no_change=1, random_state=0)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", handnet.ConvergenceWarning)
        reference = make().fit(X10, y10)

        def stop_after_three(trainer: Trainer) -> None:
            if trainer.epoch == 3:
                _interrupt()

        checkpoint = tmp_path / "run.npz"
        make().fit(X10, y10, checkpoint=checkpoint, callbacks=[stop_after_three])
        resumed = make().fit(X10, y10, checkpoint=checkpoint, resume=True)
    assert resumed.n_iter_ == reference.n_iter_
    assert resumed.loss_curve_ == reference.loss_curve_
    np.testing.assert_array_equal(resumed.coef_, reference.coef_)
    np.testing.assert_array_equal(resumed.intercept_, reference.intercept_)


def test_a_second_ctrl_c_aborts_and_the_last_checkpoint_still_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make, y, _ = CONFIGS["adam-minibatch-dropout"]
    checkpoint = tmp_path / "run.npz"

    def twice() -> None:
        _interrupt()
        _interrupt()

    with monkeypatch.context() as patch:
        _step_hook(patch, Adam, 27, twice)
        with pytest.raises(KeyboardInterrupt):
            make().fit(X, y, checkpoint=checkpoint, checkpoint_every=2)
    assert handnet.load(checkpoint).n_iter_ == 4
    resumed = make().fit(X, y, checkpoint=checkpoint, resume=True)
    _assert_same_run(resumed, make().fit(X, y))


# --- a real SIGINT to a child process ---------------------------------------------------------

CHILD = textwrap.dedent(
    '''
    """Train a model with a checkpoint, printing a line per epoch (run by the tests)."""
    import sys
    import time

    import numpy as np

    import handnet


    def data():
        rng = np.random.default_rng(11)
        X = rng.normal(size=(120, 5))
        y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
        return X, y


    def model():
        return handnet.MLPClassifier(
            (16,), dropout=0.1, batch_size=8, max_iter=300, tol=None, random_state=5,
            learning_rate=0.003,
        )


    def pace(trainer):
        print(f"epoch {trainer.epoch}", flush=True)
        time.sleep(0.2)  # the test's signals arrive during this pause


    if __name__ == "__main__":
        X, y = data()
        fitted = model().fit(
            X, y, checkpoint=sys.argv[1], checkpoint_every=3, resume=True, callbacks=[pace]
        )
        print(f"done epochs={fitted.n_iter_} interrupted={fitted._trainer.interrupted}")
    '''
)


@pytest.fixture
def child_script(tmp_path: Path) -> ModuleType:
    path = tmp_path / "child_training.py"
    path.write_text(CHILD)
    spec = importlib.util.spec_from_file_location("child_training", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def training_command(script: Path, checkpoint: Path) -> list[str]:
    """The Python child that trains with a checkpoint (and resumes from it if present).

    It drives ``fit`` directly, pacing each epoch, so that the test can signal it
    after a given epoch; :func:`handnet_train` is the same for the command line.
    """
    return [sys.executable, str(script), str(checkpoint)]


def _start(command: list[str]) -> subprocess.Popen[str]:
    environment = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment
    )


def _wait_for_epoch(process: subprocess.Popen[str], epoch: int, timeout: float = 60.0) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    for line in process.stdout:
        if line.startswith("epoch ") and int(line.split()[1]) >= epoch:
            return
        if time.monotonic() > deadline:  # pragma: no cover - a hung child
            break
    process.kill()
    raise AssertionError(f"the child never reached epoch {epoch}: {process.communicate()}")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signals", [1, 2])
def test_a_real_sigint_to_a_training_process_then_resume(
    signals: int, child_script: ModuleType, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "run.npz"
    process = _start(training_command(tmp_path / "child_training.py", checkpoint))
    try:
        _wait_for_epoch(process, 7)  # checkpoints were written at epochs 3 and 6
        process.send_signal(signal.SIGINT)
        if signals == 2:
            # The second Ctrl-C once the first was heard (two pending signals would
            # merge into one), while the child still pauses after epoch 7.
            assert process.stderr is not None
            for line in process.stderr:
                if "Interrupt received" in line:
                    break
            process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:  # pragma: no cover - cleanup of a hung child
            process.kill()
            process.communicate()
    if signals == 1:
        # One Ctrl-C: a clean stop at a step boundary, the checkpoint written, and said so.
        assert process.returncode == 0, err
        assert "Training interrupted after" in err
        assert "Checkpoint saved to" in err
        assert "interrupted=True" in out
    else:
        # Two: abort at once (KeyboardInterrupt); the last periodic checkpoint remains.
        assert process.returncode != 0
        assert "KeyboardInterrupt" in err
    saved = handnet.load(checkpoint)
    assert 6 <= saved.n_iter_ < 300
    X_child, y_child = child_script.data()
    resumed = child_script.model().fit(X_child, y_child, checkpoint=checkpoint, resume=True)
    reference = child_script.model().fit(X_child, y_child)
    _assert_same_run(resumed, reference)


# The command line: an MLP trained by 8-row Adam steps (an interrupt can land
# at any of an epoch's 675 steps), standardised inputs (the checkpoint must hold the
# unfolded run) and a validation split (the kept best epoch), about 30 ms an epoch.
CLI_OPTIONS = (
    "--model", "mlp", "--hidden", "32,32", "--batch-size", "8", "--epochs", "60",
    "--standardize", "--seed", "3", "--progress", "log",
)


def _write_cli_data(path: Path) -> Path:
    rng = np.random.default_rng(3)
    features = rng.normal(size=(6000, 8)) * [1, 10, 100, 1, 1, 1, 1, 1] + 5
    labels = (features[:, 0] + features[:, 1] / 10 - features[:, 2] / 100 > 5).astype(int)
    np.savez(path, X=features, y=labels)
    return path


def handnet_train(data: Path, *options: str) -> list[str]:
    """``python -m handnet train DATA`` with :data:`CLI_OPTIONS` and ``options``."""
    return [sys.executable, "-m", "handnet", "train", str(data), *CLI_OPTIONS, *options]


def _finish(command: list[str]) -> subprocess.CompletedProcess[str]:
    process = _start(command)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(command, process.returncode, out, err)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_real_sigint_to_handnet_train_then_resume_gives_the_uninterrupted_model(
    tmp_path: Path,
) -> None:
    data = _write_cli_data(tmp_path / "data.npz")
    checkpoint, final, reference = tmp_path / "ck.npz", tmp_path / "final.npz", tmp_path / "ref.npz"
    process = _start(handnet_train(data, "--checkpoint", str(checkpoint), "--save", str(final)))
    try:
        # The first checkpoint (epoch 1) exists: training runs, with Ctrl-C's handler set.
        deadline = time.monotonic() + 60
        while not checkpoint.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no checkpoint after 60 s"
            time.sleep(0.005)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:  # pragma: no cover - cleanup of a hung child
            process.kill()
            process.communicate()
    # A clean stop: status 130, no traceback, no summary, no --save, and a message that
    # names the checkpoint and the command that continues the run.
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert "Interrupt received" in err
    assert f"the run is saved in {checkpoint}" in err
    assert "resume=True" not in err  # the Python API's hint is the library's, not the CLI's
    assert out == "" and not final.exists()
    stopped = handnet.load(checkpoint)
    assert 1 <= stopped.n_iter_ < 60
    hint = [line for line in err.splitlines() if "To continue it, run: " in line]
    assert len(hint) == 1, err
    command = shlex.split(hint[0].split("To continue it, run: ", 1)[1])
    assert command[0] == "handnet" and command[-1] == "--resume"

    # The command it names finishes the run ...
    resumed = _finish([sys.executable, "-m", *command])
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming the run saved in {checkpoint}" in resumed.stderr
    assert "trained 60 epochs" in resumed.stdout and f"model saved to {final}" in resumed.stdout
    # ... and gives bit for bit the model of a run that was never interrupted.
    uninterrupted = _finish(handnet_train(data, "--save", str(reference)))
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    got, want = handnet.load(final), handnet.load(reference)
    np.testing.assert_array_equal(got.network_.flat_parameters, want.network_.flat_parameters)
    assert got.loss_curve_ == want.loss_curve_
    assert got.validation_scores_ == want.validation_scores_
    assert got.n_iter_ == want.n_iter_ == 60
    # The checkpoint holds the unfolded run (standardised inputs), the saved model the
    # folded one (raw inputs): their first layers differ, their last agree.
    run = handnet.load(checkpoint)
    assert run.n_iter_ == 60
    assert not np.array_equal(run.network_.layers[0].weights, got.network_.layers[0].weights)
    np.testing.assert_array_equal(run.network_.layers[-1].weights, got.network_.layers[-1].weights)


def test_ctrl_c_in_handnet_train_without_a_checkpoint_says_so_in_cli_terms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The library's Python-API hint (``checkpoint=PATH``) is not shown by the command."""
    from handnet.cli import main

    data = _write_cli_data(tmp_path / "data.npz")
    model = tmp_path / "model.npz"
    with monkeypatch.context() as patch:
        _step_hook(patch, Adam, 700, _interrupt)  # 675 steps an epoch: inside epoch 2
        status = main(["train", str(data), *CLI_OPTIONS, "--progress", "none",
                       "--save", str(model)])
    captured = capsys.readouterr()
    assert status == 0
    assert "note: interrupted after 1 complete epoch(s) of 60" in captured.err
    assert "--checkpoint PATH" in captured.err
    # The trainer's report (which names checkpoint=PATH) was filtered out before any
    # handler saw it; with logging unconfigured it would have gone to stderr.
    assert not [r for r in caplog.records if getattr(r, "handnet_event", None)]
    assert "checkpoint=PATH" not in captured.err
    assert "trained 1 epochs (stopped early)" in captured.out
    assert handnet.load(model).n_iter_ == 1
    # Outside the command the trainer's report is back (the filter was removed).
    assert not logging.getLogger("handnet.training").filters


# --- the resume API ----------------------------------------------------------------------------


def test_resume_true_starts_afresh_without_a_file_and_is_a_no_op_on_a_finished_run(
    tmp_path: Path,
) -> None:
    make, y, _ = CONFIGS["sgd-batch-1"]
    checkpoint = tmp_path / "run.npz"
    first = make().fit(X, y, checkpoint=checkpoint, resume=True)
    _assert_same_run(first, make().fit(X, y))
    before = checkpoint.read_bytes()
    again = make().fit(X, y, checkpoint=checkpoint, resume=True)  # nothing left to do
    _assert_same_run(again, first)
    assert checkpoint.read_bytes() == before


def test_resume_with_a_larger_max_iter_continues_the_run(tmp_path: Path) -> None:
    make, y, _ = CONFIGS["adam-minibatch-dropout"]
    checkpoint = tmp_path / "run.npz"
    make().fit(X, y, checkpoint=checkpoint)
    longer = make().set_params(max_iter=20).fit(X, y, checkpoint=checkpoint, resume=True)
    _assert_same_run(longer, make().set_params(max_iter=20).fit(X, y))


def test_resume_with_another_max_iter_keeps_a_cosine_schedule_whole(tmp_path: Path) -> None:
    """Cosine annealing's period defaults to max_iter: a new max_iter would move every
    epoch's rate, so resuming with one is refused; a period of its own can be extended."""
    from handnet.optim.schedules import CosineAnnealing

    def make(schedule: Any, max_iter: int) -> SoftmaxRegression:
        return SoftmaxRegression(schedule=schedule, learning_rate=0.05, batch_size=50,
                                 max_iter=max_iter, tol=None, random_state=0)

    checkpoint = tmp_path / "cosine.npz"
    make("cosine", 3).fit(X, Y3, checkpoint=checkpoint)
    with pytest.raises(ValueError, match=r"cosine schedule anneals over its max_iter=3 epochs"):
        make("cosine", 6).fit(X, Y3, checkpoint=checkpoint, resume=True)
    own = tmp_path / "own-period.npz"
    make(CosineAnnealing(period=6), 3).fit(X, Y3, checkpoint=own)
    longer = make(CosineAnnealing(period=6), 6).fit(X, Y3, checkpoint=own, resume=True)
    _assert_same_run(longer, make(CosineAnnealing(period=6), 6).fit(X, Y3))


def test_resume_refuses_other_hyperparameters_or_data(tmp_path: Path) -> None:
    make, y, _ = CONFIGS["adam-minibatch-dropout"]
    checkpoint = tmp_path / "run.npz"
    with pytest.raises(Injected):
        make().fit(X, y, checkpoint=checkpoint, callbacks=[_fail_at_epoch(3)], checkpoint_every=1)
    with pytest.raises(ValueError, match="learning_rate"):
        make().set_params(learning_rate=0.5).fit(X, y, checkpoint=checkpoint, resume=True)
    with pytest.raises(ValueError, match="data differs"):
        make().fit(X[::-1], y[::-1], checkpoint=checkpoint, resume=True)
    with pytest.raises(ValueError, match="float"):
        make().fit(X.astype(np.float32), y, checkpoint=checkpoint, resume=True)
    # The list [8, 6] is the tuple (8, 6): no spurious difference.
    make().set_params(hidden_layer_sizes=[8, 6]).fit(X, y, checkpoint=checkpoint, resume=True)


def test_checkpoint_arguments_are_checked(tmp_path: Path) -> None:
    model = LogisticRegression(max_iter=2, tol=None)
    checkpoint = tmp_path / "run.npz"
    with pytest.raises(ValueError, match="checkpoint=PATH"):
        model.fit(X, Y2, checkpoint_every=2)
    with pytest.raises(ValueError, match=">= 1"):
        model.fit(X, Y2, checkpoint=checkpoint, checkpoint_every=0)
    with pytest.raises(TypeError, match="integer"):
        model.fit(X, Y2, checkpoint=checkpoint, checkpoint_every=True)
    with pytest.raises(ValueError, match="resume=True"):
        model.fit(X, Y2, resume=True)
    assert not checkpoint.exists()
    assert not hasattr(model, "n_iter_")  # refused before any training


def test_a_model_file_without_training_state_cannot_be_resumed(tmp_path: Path) -> None:
    path = tmp_path / "slim.npz"
    handnet.save(LogisticRegression(max_iter=2, tol=None).fit(X, Y2), path, training_state=False)
    with pytest.raises(ModelFileError, match="training state"):
        LogisticRegression(max_iter=2, tol=None).fit(X, Y2, resume=path)


def test_save_after_an_interrupt_is_a_resumable_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make, y, _ = CONFIGS["early-stopping-split"]
    with monkeypatch.context() as patch:
        _step_hook(patch, Adam, 12, _interrupt)
        interrupted = make().fit(X, y)
    path = tmp_path / "saved.npz"
    handnet.save(interrupted, path)
    resumed = make().fit(X, y, resume=path)
    _assert_same_run(resumed, make().fit(X, y))


def test_partial_fit_after_a_checkpointed_fit_writes_no_checkpoint(tmp_path: Path) -> None:
    checkpoint = tmp_path / "run.npz"
    model = MLPClassifier((4,), max_iter=3, tol=None, random_state=0)
    model.fit(X, Y3, checkpoint=checkpoint)
    before = checkpoint.read_bytes()
    model.partial_fit(X, Y3)
    assert checkpoint.read_bytes() == before


# --- the trainer's state ----------------------------------------------------------------------


def _trainer(seed: int = 0) -> Trainer:
    rng = np.random.default_rng(seed)
    network = Sequential(
        [Dense(4, 6, random_state=1), Activation("tanh"), Dropout(0.2), Dense(6, 3, random_state=2)]
    )
    network.set_random_state(rng)
    return Trainer(
        network,
        SoftmaxCrossEntropy(),
        Adam(0.01),
        rng,
        batch_size=10,
        schedule=StepDecay(2),
        tol=None,
    )


def test_trainer_state_dict_round_trip_continues_exactly() -> None:
    targets = np.eye(3)[Y3]
    reference = _trainer()
    reference.fit(X, targets, max_iter=6)
    first = _trainer()
    first.fit(X, targets, max_iter=3)
    state = first.state_dict()
    second = _trainer(seed=99)  # another generator state, overwritten by the load
    second.network.flat_parameters[...] = first.network.flat_parameters
    second.load_state_dict(state)
    second.fit(X, targets, max_iter=3)
    np.testing.assert_array_equal(second.network.flat_parameters, reference.network.flat_parameters)
    assert second.history == reference.history


def test_trainer_state_is_copied_not_shared() -> None:
    trainer = _trainer()
    trainer.fit(X, np.eye(3)[Y3], max_iter=2)
    state = trainer.state_dict()
    state["optimizer"]["state"][0]["m"][:] = 0
    state["history"]["loss"].append(1.0)
    assert np.any(trainer.optimizer.state[0]["m"] != 0)
    assert len(trainer.history.loss) == 2


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda s: s.pop("epoch"), "missing"),
        (lambda s: s.update(epoch=-1), "epoch"),
        (lambda s: s.update(epoch=5), "one entry per epoch"),
        (lambda s: s["optimizer"].update(type="SGD"), "Adam"),
        (lambda s: s["optimizer"]["state"][0].update(m=np.zeros(3)), "shape"),
        (lambda s: s["optimizer"]["state"][0]["v"].__setitem__(0, math.nan), "NaN"),
        (lambda s: s["rng"].update(bit_generator="Mystery"), "bit generator"),
        (lambda s: s["rng"]["state"].update(state="x"), "rng"),
        (lambda s: s["schedule"].update(type="Constant"), "StepDecay"),
        (lambda s: s.update(progress={"order": None}), "progress"),
        (lambda s: s["stopping"].update(best_parameters=np.zeros(2)), "best_parameters"),
    ],
)
def test_a_bad_trainer_state_is_refused_and_changes_nothing(
    spoil: Callable[[dict[str, Any]], Any], message: str
) -> None:
    trainer = _trainer()
    trainer.fit(X, np.eye(3)[Y3], max_iter=2)
    state = trainer.state_dict()
    spoil(state)
    target = _trainer(seed=5)
    before = target.rng.bit_generator.state
    with pytest.raises(ValueError, match=message):
        target.load_state_dict(state)
    assert target.epoch == 0
    assert target.rng.bit_generator.state == before
    with pytest.raises(ValueError):
        check_trainer_state(
            state, target.network.n_parameters, target.network.dtype, "Adam", "StepDecay"
        )


# --- divergence --------------------------------------------------------------------------------


def test_divergence_names_the_cause_and_keeps_finite_parameters(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X_raw = rng.normal(size=(50, 3)) * np.array([1e3, 1e4, 1e5])  # not standardised
    y = X_raw @ np.array([1.0, -2.0, 0.5])
    model = MLPRegressor((4,), optimizer="sgd", learning_rate=1e6, batch_size=None, tol=None)
    checkpoint = tmp_path / "run.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning (overflow) may escape
        with pytest.raises(DivergenceError) as caught:
            model.fit(X_raw, y, checkpoint=checkpoint, checkpoint_every=1)
        message = str(caught.value)
        assert "learning rate (1e+06)" in message
        assert "scale" in message or "standardise" in message
        assert np.isfinite(model.network_.flat_parameters).all()
        assert np.isfinite(model.predict(X_raw)).all()
    # A divergence writes no checkpoint: the file (if any) is an earlier, finite epoch.
    if checkpoint.exists():
        assert np.isfinite(handnet.load(checkpoint).network_.flat_parameters).all()


@pytest.mark.parametrize("batch_size", [None, 1, 7])
def test_divergence_in_every_batch_regime(batch_size: int | None) -> None:
    rng = np.random.default_rng(1)
    X_raw = rng.normal(size=(30, 2)) * 1e4
    y = X_raw[:, 0] * 3.0
    model = MLPRegressor(
        (3,),
        optimizer="sgd",
        learning_rate=1e3,
        batch_size=batch_size,
        max_iter=50,
        tol=None,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DivergenceError, match="learning rate"):
            model.fit(X_raw, y)
    assert np.isfinite(model.network_.flat_parameters).all()
    assert model.loss_curve_ == [v for v in model.loss_curve_ if math.isfinite(v)]


# --- resuming needs the data's fingerprint and the same hyperparameters (issue 13) ---------


def _interrupted_fit(
    make: Callable[[], Any], y: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> Any:
    with monkeypatch.context() as patch:
        _step_hook(patch, Adam, 12, _interrupt)
        return make().fit(X, y)


def test_resuming_a_plain_save_checks_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # save() after a fit without checkpoint=: the file still carries the data's
    # fingerprint, so resuming on other data is refused instead of training on it.
    make, y, _ = CONFIGS["adam-minibatch-dropout"]
    path = tmp_path / "saved.npz"
    handnet.save(_interrupted_fit(make, y, monkeypatch), path)
    with pytest.raises(ValueError, match="data differs"):
        make().fit(X * 100, y, resume=path)
    _assert_same_run(make().fit(X, y, resume=path), make().fit(X, y))


def test_a_file_without_a_fingerprint_cannot_be_resumed(tmp_path: Path) -> None:
    # Such files exist (older handnet; out-of-core fits without checkpoint=): resuming
    # from one could not check the data, so it is refused, saying what to do.
    make, y, _ = CONFIGS["adam-minibatch-dropout"]
    path = tmp_path / "saved.npz"
    handnet.save(make().set_params(max_iter=3).fit(X, y), path)
    forged = _load_script("test_io_forged")
    tree = forged.read_tree(path.read_bytes())
    tree["run"]["fingerprint"] = None
    path.write_bytes(forged.forge(tree))
    with pytest.raises(ModelFileError, match="no fingerprint") as caught:
        make().fit(X * 100, y, resume=path)
    assert "checkpoint=PATH" in str(caught.value) and "saved.npz" in str(caught.value)


@pytest.mark.parametrize(
    "change", [{"random_state": 1}, {"random_state": None}, {"warm_start": True}]
)
def test_resume_refuses_another_random_state(change: dict[str, Any], tmp_path: Path) -> None:
    make, y, _ = CONFIGS["adam-minibatch-dropout"]
    checkpoint = tmp_path / "run.npz"
    with pytest.raises(Injected):
        make().fit(X, y, checkpoint=checkpoint, callbacks=[_fail_at_epoch(3)], checkpoint_every=1)
    name = next(iter(change))
    with pytest.raises(ValueError, match=f"{name}=") as caught:
        make().set_params(**change).fit(X, y, checkpoint=checkpoint, resume=True)
    assert "only max_iter and verbose may change" in str(caught.value)
    # What may change still may.
    resumed = make().set_params(max_iter=15, verbose=False)
    resumed.fit(X, y, checkpoint=checkpoint, resume=True)
    assert resumed.n_iter_ == 15


# --- unwritable paths fail before training -----------------------------------------------------


def test_a_checkpoint_in_a_missing_directory_fails_before_training(tmp_path: Path) -> None:
    model = MLPClassifier((4,), max_iter=3, tol=None, random_state=0)
    checkpoint = tmp_path / "no" / "such" / "dir" / "ck.npz"
    calls: list[Trainer] = []
    with pytest.raises(FileNotFoundError) as caught:
        model.fit(X, Y3, checkpoint=checkpoint, callbacks=[calls.append])
    message = str(caught.value)
    assert str(checkpoint) in message and "does not exist" in message
    assert ".tmp" not in message
    assert calls == [] and not hasattr(model, "n_iter_")  # not one epoch trained


def test_an_unwritable_checkpoint_directory_fails_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A read-only directory, as the file system answers it (the tests may run as root,
    # whom permissions do not stop): creating a file there fails with EACCES.
    real_open = os.open

    def read_only(path: Any, flags: int, *args: Any) -> int:
        if str(path).startswith(str(tmp_path)) and flags & os.O_CREAT:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    model = MLPClassifier((4,), max_iter=3, tol=None, random_state=0)
    calls: list[Trainer] = []
    with pytest.raises(PermissionError) as caught:
        model.fit(X, Y3, checkpoint=tmp_path / "ck.npz", callbacks=[calls.append])
    assert "ck.npz" in str(caught.value) and ".tmp" not in str(caught.value)
    assert calls == []
    fitted = MLPClassifier((4,), max_iter=2, tol=None).fit(X, Y3)
    with pytest.raises(PermissionError) as caught:
        handnet.save(fitted, tmp_path / "model.npz")
    assert "model.npz" in str(caught.value) and ".tmp" not in str(caught.value)


# --- abandoned temporary files -------------------------------------------------------------


_SLOW_WRITER = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    import handnet
    from handnet import LogisticRegression
    X = np.random.default_rng(0).normal(size=(40, 3))
    model = LogisticRegression(max_iter=2, tol=None).fit(X, (X[:, 0] > 0).astype(int))
    real_replace = os.replace

    def stuck(source, target):  # the file is written; the writer dies before the rename
        print("written", flush=True)
        time.sleep(600)

    os.replace = stuck
    handnet.save(model, sys.argv[1])
    """
)


def _start_writer(path: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", _SLOW_WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "written"
    return child


def _temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_a_later_save_removes_the_temporary_files_of_killed_writers(tmp_path: Path) -> None:
    path = tmp_path / "model.npz"
    for _ in range(2):
        _stop(_start_writer(path))  # kill -9 mid-write
    live = _start_writer(path)  # a writer still at work: its file must stay
    try:
        assert len(_temporaries(tmp_path)) == 3
        unrelated = tmp_path / ".notes.txt.1.tmp"
        unrelated.write_text("not handnet's")
        handnet.save(MLPClassifier((3,), max_iter=2, tol=None).fit(X, Y3), path)
        left = _temporaries(tmp_path)
        assert left == sorted([f"{unrelated.name}", *_temporaries_of(tmp_path, live.pid)])
        assert len(left) == 2  # the live writer's and the unrelated file
        handnet.load(path)
    finally:
        _stop(live)


def _stop(child: subprocess.Popen[str]) -> None:
    child.kill()
    child.wait()
    if child.stdout is not None:
        child.stdout.close()


def _temporaries_of(directory: Path, pid: int) -> list[str]:
    return [name for name in _temporaries(directory) if f".{pid}." in name]


def test_a_loaded_interrupted_run_saved_again_can_still_be_resumed(tmp_path: Path) -> None:
    """load() then save() of an interrupted run's file kept everything but the data's
    fingerprint, and the rewritten file could no longer be resumed."""
    make, y, _ = CONFIGS["sgd-batch-1"]
    reference = make().fit(X, y)

    def callback(trainer: Trainer) -> None:
        if trainer.epoch == 3:
            _interrupt()

    logging.getLogger("handnet.training").disabled = True
    try:
        interrupted = make().fit(X, y, callbacks=[callback])
    finally:
        logging.getLogger("handnet.training").disabled = False
    first, second = tmp_path / "first.npz", tmp_path / "second.npz"
    handnet.save(interrupted, first)
    handnet.save(handnet.load(first), second)
    resumed = make().fit(X, y, resume=second)
    _assert_same_run(resumed, reference)


# --- throttled writes (issue 18): at most MAX_SHARE of the training time --------------------


class _ManualClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_throttle_waits_min_interval_for_the_first_checkpoint() -> None:
    clock = _ManualClock()
    throttle = WriteThrottle(clock)
    assert not throttle.due()
    clock.now += MIN_INTERVAL - 1e-6
    assert not throttle.due()
    clock.now += 1e-6
    assert throttle.due()


def test_throttle_spaces_writes_by_their_cost_over_max_share() -> None:
    clock = _ManualClock()
    throttle = WriteThrottle(clock)
    clock.now += MIN_INTERVAL
    cost = 0.2  # seconds: the next write waits cost / MAX_SHARE = 4 s of training
    throttle.wrote(clock.now, clock.now + cost)
    clock.now += cost + cost / MAX_SHARE - 1e-3
    assert not throttle.due()
    clock.now += 2e-3
    assert throttle.due()
    # A quick write: MIN_INTERVAL still spaces them.
    throttle.wrote(clock.now, clock.now + 1e-4)
    clock.now += 1e-4 + MIN_INTERVAL - 1e-3
    assert not throttle.due()


def test_throttle_keeps_checkpoints_under_max_share(monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulated: epochs of 1 ms, writes of 20 ms, 2000 epochs with checkpoint_every=1."""
    clock = _ManualClock()
    throttle = WriteThrottle(clock)
    training = writing = 0.0
    for _ in range(2000):
        clock.now += 0.001
        training += 0.001
        if throttle.due():
            start = clock.now
            clock.now += 0.02
            writing += 0.02
            throttle.wrote(start, clock.now)
    assert writing <= MAX_SHARE * training


def test_throttle_skips_mid_run_checkpoints_but_writes_the_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clock that never moves: only the end of the run writes, with its final epoch."""
    monkeypatch.setattr(CheckpointRun, "clock", staticmethod(lambda: 0.0))
    X_small = X[:60]
    y_small = (X_small[:, 0] > 0).astype(int)
    written: list[int] = []
    real = handnet.io.checkpoint._write_atomic

    def spy(path: Any, content: Any, arrays: Any) -> None:
        written.append(1)
        real(path, content, arrays)

    monkeypatch.setattr(handnet.io.checkpoint, "_write_atomic", spy)
    checkpoint = tmp_path / "run.npz"
    model = handnet.LogisticRegression(max_iter=25, tol=None, random_state=0)
    model.fit(X_small, y_small, checkpoint=checkpoint, checkpoint_every=1)
    assert len(written) == 1
    assert handnet.load(checkpoint).n_iter_ == 25


def test_throttle_never_skips_an_interrupts_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(CheckpointRun, "clock", staticmethod(lambda: 0.0))
    X_small = X[:60]
    y_small = (X_small[:, 0] > 0).astype(int)
    checkpoint = tmp_path / "run.npz"

    def interrupt(trainer: Trainer) -> bool:
        if trainer.epoch == 4:
            assert trainer._interrupt is not None
            trainer._interrupt.requested = True
        return False

    model = handnet.LogisticRegression(max_iter=25, tol=None, random_state=0)
    model.fit(X_small, y_small, checkpoint=checkpoint, checkpoint_every=1, callbacks=[interrupt])
    assert handnet.load(checkpoint).n_iter_ == 4


# --- the data's fingerprint on a helper thread (issue 18) -----------------------------------


def _fingerprint_threads() -> list[Any]:
    import threading

    return [t for t in threading.enumerate() if t.name == "handnet-fingerprint"]


def test_a_background_fingerprint_is_the_same_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every data size takes the helper thread here: the file holds the fingerprint the
    synchronous path computes, a crashed run resumes on the same data and is refused on
    other data, and no helper thread outlives fit."""
    import handnet.io.checkpoint as checkpoint_module

    make, y, _ = CONFIGS["adam-minibatch-dropout"]
    inline = tmp_path / "inline.npz"
    make().set_params(max_iter=3).fit(X, y, checkpoint=inline)
    monkeypatch.setattr(checkpoint_module, "BACKGROUND_FINGERPRINT_BYTES", 0)
    started: list[Any] = []
    real = checkpoint_module._BackgroundFingerprint.__init__

    def counted(self: Any, data: Any) -> None:
        started.append(self)
        real(self, data)

    monkeypatch.setattr(checkpoint_module._BackgroundFingerprint, "__init__", counted)
    background = tmp_path / "background.npz"
    make().set_params(max_iter=3).fit(X, y, checkpoint=background)
    assert len(started) == 1 and not _fingerprint_threads()
    forged = _load_script("test_io_forged")
    stored = [forged.read_tree(p.read_bytes())["run"]["fingerprint"] for p in (inline, background)]
    assert stored[0] == stored[1] and len(stored[0]) == 64

    checkpoint = tmp_path / "run.npz"
    with pytest.raises(Injected):
        make().fit(X, y, checkpoint=checkpoint, callbacks=[_fail_at_epoch(3)], checkpoint_every=1)
    assert not _fingerprint_threads()
    with pytest.raises(ValueError, match="data differs"):
        make().fit(X * 100, y, checkpoint=checkpoint, resume=True)
    _assert_same_run(make().fit(X, y, checkpoint=checkpoint, resume=True), make().fit(X, y))


def test_an_error_while_fingerprinting_in_the_background_reaches_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import handnet.io.checkpoint as checkpoint_module

    def broken(data: Any) -> str:
        raise MemoryError("no room to hash")

    monkeypatch.setattr(checkpoint_module, "BACKGROUND_FINGERPRINT_BYTES", 0)
    monkeypatch.setattr(checkpoint_module, "data_fingerprint", broken)
    make, y, _ = CONFIGS["adam-minibatch-dropout"]
    with pytest.raises(MemoryError, match="no room to hash"):
        make().set_params(max_iter=2).fit(X, y, checkpoint=tmp_path / "run.npz")
    assert not _fingerprint_threads()


def test_only_large_in_memory_data_is_hashed_in_the_background() -> None:
    from handnet.io.checkpoint import BACKGROUND_FINGERPRINT_BYTES, _hashed_in_background

    big = np.zeros(BACKGROUND_FINGERPRINT_BYTES // 8)
    assert _hashed_in_background([big, None])
    assert not _hashed_in_background([big[:-1], None])

    class Lazy(np.ndarray):  # stands for what is not a plain array (an out-of-core fingerprint)
        pass

    assert not _hashed_in_background([big.view(Lazy), None])


def _slow_fingerprint(
    monkeypatch: pytest.MonkeyPatch, seconds: float, error: BaseException | None = None
) -> None:
    """Every fit hashes on the helper thread, which takes ``seconds`` (then raises ``error``)."""
    import handnet.io.checkpoint as checkpoint_module

    real = checkpoint_module.data_fingerprint

    def slow(data: Any) -> str:
        time.sleep(seconds)
        if error is not None:
            raise error
        return real(data)

    monkeypatch.setattr(checkpoint_module, "BACKGROUND_FINGERPRINT_BYTES", 0)
    monkeypatch.setattr(checkpoint_module, "data_fingerprint", slow)


def test_a_training_error_is_not_replaced_by_the_hashings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The callback's error ends fit (with the epochs recorded); the hashing's error waits
    for whoever needs the fingerprint."""
    _slow_fingerprint(monkeypatch, 0.05, MemoryError("no room to hash"))
    make, y, _ = CONFIGS["adam-minibatch-dropout"]
    model = make()
    with pytest.raises(Injected):
        model.fit(X, y, checkpoint=tmp_path / "run.npz", callbacks=[_fail_at_epoch(3)])
    assert model.n_iter_ == 3 and len(model.loss_curve_) == 3
    assert not _fingerprint_threads()
    with pytest.raises(MemoryError, match="no room to hash"):
        handnet.save(model, tmp_path / "saved.npz")


def test_a_model_copied_in_a_callback_while_hashing_keeps_the_fingerprint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import copy

    _slow_fingerprint(monkeypatch, 0.2)
    make, y, _ = CONFIGS["adam-minibatch-dropout"]
    copies: list[Any] = []

    def keep(trainer: Any) -> bool:
        if not copies:
            copies.append(copy.deepcopy(model))
        return False

    model = make()
    model.fit(X, y, checkpoint=tmp_path / "run.npz", callbacks=[keep])
    # Copied while the helper thread was still hashing: the copy waited for its value.
    assert copies[0]._checkpoint_run.fingerprint == model._checkpoint_run.fingerprint
    assert len(model._checkpoint_run.fingerprint) == 64


def test_an_interrupted_wait_for_the_fingerprint_keeps_it_pending() -> None:
    """A Ctrl-C while a reader waits for the helper thread loses nothing: the next
    reader gets the fingerprint."""

    class Pending:
        calls = 0

        def result(self) -> str:
            Pending.calls += 1
            if Pending.calls == 1:
                raise KeyboardInterrupt
            return "f" * 64

    run = CheckpointRun(None, None, None, None)
    run._fingerprinting = Pending()  # type: ignore[assignment]
    with pytest.raises(KeyboardInterrupt):
        run.fingerprint  # noqa: B018 - the property's wait is what is tested
    assert run.fingerprint == "f" * 64 and run._fingerprinting is None
