"""Bad input gets a clear error; good input in any form works; numerics hold under stress.

``scripts/bad_array_table.py`` holds the catalogue of bad calls (it also writes
the array section of ``docs/bad_input.md``); the tests here run every case on
every model it applies to. The rest checks what must *not* fail: lists, tuples,
pandas objects, read-only and non-contiguous arrays (never modified), extreme
but legal numbers, float32 throughout, and two models trained at once in two
threads.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import traceback
import warnings
from collections.abc import Callable
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
    SoftmaxRegression,
)

ROOT = Path(__file__).resolve().parent.parent
HANDNET_SOURCE = Path(handnet.__file__).resolve().parent


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bad_array_table", ROOT / "scripts" / "bad_array_table.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up
    spec.loader.exec_module(module)
    return module


table = _load_script()

MODELS = {
    "LogisticRegression": LogisticRegression,
    "SoftmaxRegression": SoftmaxRegression,
    "MLPClassifier": MLPClassifier,
    "MLPRegressor": MLPRegressor,
}


# --- every bad call of the catalogue, on every model it applies to -------------------------


def _case_params() -> list[Any]:
    return [
        pytest.param(case, name, id=f"{case.entry}-{case.what}-{name}")
        for case in table.all_cases()
        for name in case.models
    ]


@pytest.mark.parametrize(("case", "name"), _case_params())
def test_bad_call_gets_a_clear_error(case: Any, name: str) -> None:
    with pytest.raises(case.error) as caught:
        case.run(name)
    error = caught.value
    assert isinstance(error, (ValueError, TypeError, AttributeError))
    assert case.match in str(error)
    # Raised by handnet's own checks, not by NumPy (or Python) deep inside a computation.
    origin = Path(traceback.extract_tb(error.__traceback__)[-1].filename).resolve()
    assert HANDNET_SOURCE in origin.parents, f"raised in {origin}, not by handnet"


def test_the_docs_table_is_current() -> None:
    text = table.DOC.read_text(encoding="utf-8")
    section = table.current_section(text)
    assert section is not None, "docs/bad_input.md lacks its arrays section"
    assert section == table.generated_section(), (
        "docs/bad_input.md is stale: run python scripts/bad_array_table.py"
    )


# --- a refused call leaves a fitted model as it was ------------------------------------------


def _outputs(model: Any, X: np.ndarray) -> list[np.ndarray]:
    outputs = [model.predict(X), model.network_.flat_parameters.copy()]
    if hasattr(model, "predict_proba"):
        outputs += [model.predict_proba(X), model.classes_]
    return outputs


def _refused_calls(name: str) -> list[Callable[[Any, np.ndarray, np.ndarray], object]]:
    def nan_X(model: Any, X: np.ndarray, y: np.ndarray) -> object:
        return model.fit(table.spoil(X, np.nan), y)

    def float32_X_nan_y(model: Any, X: np.ndarray, y: np.ndarray) -> object:
        # A float32 X would make the model float32, if y did not fail afterwards.
        return model.fit(X.astype(np.float32), table.spoil(y.astype(float), np.nan, (0,)))

    def bad_hyperparameter(model: Any, X: np.ndarray, y: np.ndarray) -> object:
        model.set_params(alpha=-1.0)
        try:
            return model.fit(X, y)
        finally:
            model.set_params(alpha=0.0)

    def fewer_features(model: Any, X: np.ndarray, y: np.ndarray) -> object:
        return model.partial_fit(X[:, :2], y)

    def short_y(model: Any, X: np.ndarray, y: np.ndarray) -> object:
        return model.fit(X, y[:-1])

    calls = [nan_X, float32_X_nan_y, bad_hyperparameter, fewer_features, short_y]
    if name == "MLPRegressor":
        return calls

    def other_classes(model: Any, X: np.ndarray, y: np.ndarray) -> object:
        # Three classes for LogisticRegression (binary only), one for the others:
        # both are refused after the classes were read from y.
        labels = np.arange(len(y)) % 3 if name == "LogisticRegression" else np.zeros_like(y)
        return model.fit(X, labels)

    def unseen_label(model: Any, X: np.ndarray, y: np.ndarray) -> object:
        return model.partial_fit(X, np.where(y == 0, 7, y))

    return [*calls, other_classes, unseen_label]


@pytest.mark.parametrize("name", MODELS)
def test_a_refused_call_leaves_the_model_as_it_was(name: str) -> None:
    X, y = table.data(name)
    # A stochastic optimizer: the refused calls include partial_fit.
    model = table.stochastic_model(name).set_params(alpha=0.0).fit(X, y)
    before = _outputs(model, X)
    for call in _refused_calls(name):
        with pytest.raises(ValueError):
            call(model, X, y)
        for old, new in zip(before, _outputs(model, X), strict=True):
            assert old.dtype == new.dtype, call.__name__
            np.testing.assert_array_equal(old, new, err_msg=call.__name__)


# --- good input in any form ------------------------------------------------------------------


def _forms(X: np.ndarray, y: np.ndarray) -> dict[str, tuple[Any, Any]]:
    pd = pytest.importorskip("pandas")
    wide = np.repeat(X, 2, axis=1)  # every other column of it is X, not contiguous
    labels = pd.Series(y, name="target")
    return {
        "lists": (X.tolist(), y.tolist()),
        "tuples": (tuple(map(tuple, X.tolist())), tuple(y.tolist())),
        "pandas": (pd.DataFrame(X, columns=["a", "b", "c"]), labels),
        "pandas nullable": (
            pd.DataFrame({c: pd.array(X[:, i], dtype="Float64") for i, c in enumerate("abc")}),
            labels.astype("Float64") if y.dtype.kind == "f" else labels.astype("Int64"),
        ),
        "Fortran order": (np.asfortranarray(X), y),
        "strided": (wide[:, ::2], y),
        "transposed twice": (np.ascontiguousarray(X.T).T, y),
        "object of numbers": (X.astype(object), y),
    }


@pytest.mark.parametrize("name", MODELS)
def test_every_form_of_good_input_gives_the_same_model(name: str) -> None:
    X, y = table.data(name)
    reference = table.model(name).fit(X, y)
    expected = reference.predict(X)
    for form, (X_form, y_form) in _forms(X, y).items():
        model = table.model(name).fit(X_form, y_form)
        np.testing.assert_allclose(model.predict(X_form), expected, rtol=1e-10, err_msg=form)
        assert np.isfinite(model.score(X_form, y_form)), form


@pytest.mark.parametrize("name", MODELS)
def test_integer_and_boolean_features_are_accepted(name: str) -> None:
    X, y = table.data(name)
    for X_form in ((X * 10).astype(np.int32), X > 0):
        model = table.model(name).fit(X_form, y)
        assert model.network_.flat_parameters.dtype == np.float64
        assert np.all(np.isfinite(model.network_.flat_parameters))


# --- the caller's arrays are never modified --------------------------------------------------

OPTIMIZERS = {
    "full-batch GD": {"optimizer": "sgd", "batch_size": None, "learning_rate": 0.1},
    "SGD, batch_size=1": {"optimizer": "sgd", "batch_size": 1, "learning_rate": 0.01},
    "momentum, mini-batches": {"optimizer": "momentum", "batch_size": 5, "learning_rate": 0.01},
    "adam, mini-batches": {"optimizer": "adam", "batch_size": 8, "learning_rate": 0.01},
    "lbfgs": {"optimizer": "lbfgs", "batch_size": None},
}


def _read_only(*arrays: np.ndarray) -> list[np.ndarray]:
    copies = []
    for array in arrays:
        copy = array.copy(order="K")  # keeps a Fortran or C layout
        copy.setflags(write=False)
        copies.append(copy)
    return copies


def _use_everything(model: Any, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> None:
    """Every entry point that takes arrays, with a validation set and early stopping too."""
    model.fit(X, y, sample_weight=w)
    model.fit(X, y, sample_weight=w, validation_data=(X, y))
    model.predict(X)
    model.score(X, y, sample_weight=w)
    if hasattr(model, "predict_proba"):
        model.predict_proba(X)
        model.predict_log_proba(X)
        model.decision_function(X)
    if hasattr(model, "partial_fit"):
        model.partial_fit(X, y, sample_weight=w)
    model.set_params(early_stopping=True, validation_fraction=0.25).fit(X, y, sample_weight=w)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("name", MODELS)
def test_read_only_inputs_are_accepted_and_never_written(name: str, optimizer: str) -> None:
    X, y = table.data(name)
    w = np.linspace(0.5, 2.0, len(y))
    pristine = [X.copy(), y.copy(), w.copy()]
    X_ro, y_ro, w_ro = _read_only(X, y, w)
    settings = {**OPTIMIZERS[optimizer], "max_iter": 3}
    # Read-only: any write raises. Writable: compared with a copy afterwards.
    _use_everything(table.model(name, **settings), X_ro, y_ro, w_ro)
    _use_everything(table.model(name, **settings), X, y, w)
    for array, original in zip((X, y, w), pristine, strict=True):
        np.testing.assert_array_equal(array, original)
    # Read-only and not C-contiguous at once.
    (X_fortran,) = _read_only(np.asfortranarray(X))
    _use_everything(table.model(name, **settings), X_fortran, y_ro, w_ro)


def test_read_only_input_in_the_compiled_sgd_kernel() -> None:
    """Per-example SGD of a logistic regression on many rows runs in handnet.training.kernels
    (compiled with numba when it is installed): read-only and Fortran-ordered input too."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50_000, 3))
    y = (X[:, 0] > 0).astype(int)
    X_ro, y_ro = _read_only(np.asfortranarray(X), y)
    settings = {"batch_size": 1, "optimizer": "sgd", "max_iter": 1, "tol": None}
    model = LogisticRegression(**settings, random_state=0).fit(X_ro, y_ro)
    reference = LogisticRegression(**settings, random_state=0).fit(X, y)
    np.testing.assert_array_equal(model.coef_, reference.coef_)


# --- numerics under stress -------------------------------------------------------------------

STRESS_OPTIMIZERS = ["full-batch GD", "SGD, batch_size=1", "adam, mini-batches", "lbfgs"]


def _check_outputs(model: Any, X: np.ndarray, dtype: Any) -> None:
    """Every output finite and of the model's dtype; probabilities that are probabilities."""
    outputs = [model.predict(X)] if not hasattr(model, "predict_proba") else []
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
        log_proba = model.predict_log_proba(X)
        assert np.all((proba >= 0) & (proba <= 1))
        np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
        assert np.all(log_proba <= 0)
        outputs += [proba, log_proba, model.decision_function(X)]
        assert set(model.predict(X)) <= set(model.classes_)
    for output in outputs:
        assert output.dtype == dtype
        assert np.all(np.isfinite(output))
    assert model.network_.flat_parameters.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", [n for n in MODELS if n != "MLPRegressor"])
def test_logits_of_1e4_give_finite_probabilities(name: str, dtype: Any) -> None:
    X, y = table.data(name)
    X = X.astype(dtype)
    model = table.model(name).fit(X, y)
    parameters = model.network_.flat_parameters
    parameters *= dtype(1e4) / np.abs(parameters).max()  # huge weights: logits of +-1e4 and more
    assert np.abs(model.decision_function(X)).max() >= 1e4
    for scale in (1.0, 1e4):  # and huge features on top
        _check_outputs(model, X * dtype(scale), dtype)
        assert 0.0 <= model.score(X * dtype(scale), y) <= 1.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("optimizer", STRESS_OPTIMIZERS)
@pytest.mark.parametrize("name", MODELS)
def test_unscaled_features_train_or_raise_divergence(name: str, optimizer: str, dtype: Any) -> None:
    X, y = table.data(name)
    X = (X * 1e6).astype(dtype)
    model = table.model(name, **{**OPTIMIZERS[optimizer], "max_iter": 5})
    try:
        model.fit(X, y)
    except DivergenceError as error:
        message = str(error)
        assert "learning rate" in message and "scale" in message
    # Trained or stopped, the model predicts finite numbers from finite parameters.
    assert np.all(np.isfinite(model.network_.flat_parameters))
    _check_outputs(model, X, dtype)


def _hard_data(name: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    X, y = table.data(name)
    return {
        "a constant feature": (np.c_[X, np.full(len(X), 3.0)], y),
        "all features constant": (np.ones_like(X), y),
        "all features zero": (np.zeros_like(X), y),
        "duplicated rows": (np.repeat(X, 4, axis=0), np.repeat(y, 4, axis=0)),
        "one row repeated, two labels": (np.repeat(X[:1], len(X), axis=0), y),
    }


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("optimizer", STRESS_OPTIMIZERS)
@pytest.mark.parametrize("name", MODELS)
def test_degenerate_features_train_quietly(name: str, optimizer: str, dtype: Any) -> None:
    for kind, (X, y) in _hard_data(name).items():
        X = X.astype(dtype)
        model = table.model(name, **{**OPTIMIZERS[optimizer], "max_iter": 10}).fit(X, y)
        assert all(np.isfinite(model.loss_curve_)), kind
        _check_outputs(model, X, dtype)


@pytest.mark.parametrize("optimizer", STRESS_OPTIMIZERS)
@pytest.mark.parametrize("name", MODELS)
def test_float32_throughout(name: str, optimizer: str) -> None:
    X, y = table.data(name)
    X32 = X.astype(np.float32)
    y32 = y.astype(np.float32) if name == "MLPRegressor" else y
    w32 = np.ones(len(y), dtype=np.float32)
    model = table.model(name, **{**OPTIMIZERS[optimizer], "max_iter": 5})
    model.fit(X32, y32, sample_weight=w32)
    _check_outputs(model, X32, np.float32)
    # float64 data given to a float32 model is converted, and answered in float32.
    _check_outputs(model, X, np.float32)
    if hasattr(model, "partial_fit"):
        model.partial_fit(X32, y32)
        _check_outputs(model, X32, np.float32)


# --- no global state: two models at once in two threads --------------------------------------


def _rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    return X, (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int) + (X[:, 2] > 0.8).astype(int)


def _dropout_mlp() -> np.ndarray:
    X, y = _rows(2000, 1)
    model = MLPClassifier((16,), dropout=0.2, batch_size=16, max_iter=15, tol=None, random_state=1)
    return model.fit(X, y).network_.flat_parameters.copy()


def _sgd_logistic() -> np.ndarray:
    X, y = _rows(2000, 2)
    model = LogisticRegression(
        batch_size=1, optimizer="sgd", learning_rate=0.05, max_iter=15, tol=None, random_state=2
    )
    return model.fit(X, y > 0).network_.flat_parameters.copy()


def _partial_fit_softmax(calls: int = 20) -> np.ndarray:
    X, y = _rows(2000, 3)
    model = SoftmaxRegression(batch_size=10, optimizer="adam", learning_rate=0.01, random_state=3)
    for _ in range(calls):
        model.partial_fit(X, y, classes=[0, 1, 2])
    return model.network_.flat_parameters.copy()


def _lbfgs_regressor() -> np.ndarray:
    X, _ = _rows(2000, 4)
    model = MLPRegressor((8,), optimizer="lbfgs", max_iter=100, tol=None, random_state=4)
    return model.fit(X, X @ np.arange(5.0)).network_.flat_parameters.copy()


TRAININGS = [_dropout_mlp, _sgd_logistic, _partial_fit_softmax, _lbfgs_regressor]


def _run_together(trainings: list[Callable[[], np.ndarray]]) -> list[np.ndarray]:
    """Run each training in a thread of its own, all released at once by a barrier."""
    barrier = threading.Barrier(len(trainings))
    results: list[Any] = [None] * len(trainings)

    def work(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = trainings[index]()
        except BaseException as error:  # handed to the main thread
            results[index] = error

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(trainings))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def test_models_trained_in_threads_match_those_trained_alone() -> None:
    alone = [training() for training in TRAININGS]
    handler = signal.getsignal(signal.SIGINT)
    for _ in range(2):  # twice: different interleavings
        together = _run_together(TRAININGS)
        for training, expected, got in zip(TRAININGS, alone, together, strict=True):
            np.testing.assert_array_equal(got, expected, err_msg=training.__name__)
    # Training in a worker thread neither installs nor leaves a SIGINT handler (only
    # the main thread may, and it restores the previous one).
    assert signal.getsignal(signal.SIGINT) is handler


def test_partial_fit_in_a_thread_leaves_the_warnings_filters_alone() -> None:
    """partial_fit does not warn that its one pass did not converge, without a filter.

    A ``warnings.catch_warnings()`` block is process-wide: another thread entering
    and leaving one (as fit once did) would undo partial_fit's "ignore" filter in
    mid-call, and this suite's error filter raise the warning, or keep the filter
    in place after partial_fit returned, silencing other threads' warnings.
    """
    filters = list(warnings.filters)
    done = threading.Event()

    def partial_fits() -> np.ndarray:
        try:
            return _partial_fit_softmax(calls=40)
        finally:
            done.set()

    def fits() -> np.ndarray:
        X, y = _rows(200, 5)
        model = LogisticRegression(max_iter=2, tol=None)
        while not done.is_set():
            model.fit(X, y > 0)
        return model.network_.flat_parameters.copy()

    _run_together([partial_fits, fits])
    assert warnings.filters == filters


_BLOCKS_IN_THREADS = """
import threading
import numpy as np
from handnet import LogisticRegression
from handnet.data import blocks

rng = np.random.default_rng(6)
X = rng.normal(size=(blocks.MIN_BYTES // (8 * 40) + 1000, 40))  # just over MIN_BYTES
y = X[:, 0] > 0
threads_before = blocks.default_threads()

def long_fit():
    model = LogisticRegression(max_iter=40, tol=None, learning_rate=0.5)
    return [model.fit(X, y).coef_.copy()]

def short_fits():
    # Each fit makes its engine, and so picks its thread count, while the other
    # thread is most likely inside its single-threaded-BLAS evaluation.
    return [LogisticRegression(optimizer="lbfgs", max_iter=2, tol=None).fit(X, y).coef_.copy()
            for _ in range(6)]

alone = [long_fit(), short_fits()]
barrier = threading.Barrier(2)
together = [None, None]

def run(index, training):
    barrier.wait()
    together[index] = training()

threads = [threading.Thread(target=run, args=item) for item in enumerate((long_fit, short_fits))]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
same = all(np.array_equal(a, b) for x, y in zip(alone, together) for a, b in zip(x, y))
print("same" if same else "different", threads_before, blocks.default_threads())
"""


def test_full_batch_blocks_in_two_threads_match_those_trained_alone() -> None:
    """Full-batch training on data over ``blocks.MIN_BYTES`` (summed in row blocks on
    several threads), two models at once. In a fresh process: this suite limits BLAS
    to one thread (conftest), which makes ``default_threads()`` 1 and hides the race."""
    environment = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKS_IN_THREADS],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        check=True,
    )
    same, threads_before, threads_after = result.stdout.split()
    assert same == "same"
    assert threads_after == threads_before, "BLAS left with another thread count"
