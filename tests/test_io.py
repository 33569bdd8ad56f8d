"""Model files: round trips bit for bit, atomic writes, and every bad file refused.

``scripts/bad_input_table.py`` holds the catalogue of bad files (it also writes
the table in ``docs/bad_input.md``); these tests run each case, mutate good files
at random (hypothesis), and prove a pickled payload never runs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import re
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import handnet
from handnet import (
    Activation,
    Dense,
    Dropout,
    LogisticRegression,
    MLPClassifier,
    MLPRegressor,
    ModelFileError,
    NotFittedError,
    Sequential,
    SoftmaxRegression,
)
from handnet.optim.optimizers import SGD, Momentum
from handnet.optim.schedules import StepDecay

ROOT = Path(__file__).resolve().parent.parent


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bad_input_table", ROOT / "scripts" / "bad_input_table.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and typing look the module up
    spec.loader.exec_module(module)
    return module


bad_files = _load_script()


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int) + (X[:, 2] > 0.8).astype(int)
    return X, y


def _outputs(model: Any, X: np.ndarray) -> list[np.ndarray]:
    """Everything a model answers about ``X``."""
    if isinstance(model, Sequential):
        return [model.predict(X)]
    results = [np.asarray(model.predict(X))]
    if hasattr(model, "predict_proba"):
        results += [model.predict_proba(X), model.decision_function(X)]
    return results


def _assert_same_outputs(a: Any, b: Any, X: np.ndarray) -> None:
    for left, right in zip(_outputs(a, X), _outputs(b, X), strict=True):
        assert left.dtype == right.dtype
        np.testing.assert_array_equal(left, right, strict=True)


def _round_trip(model: Any, tmp_path: Path, **kwargs: Any) -> Any:
    path = tmp_path / "model.npz"
    handnet.save(model, path, **kwargs)
    return handnet.load(path)


# --- round trips -----------------------------------------------------------------------------


def _fitted(name: str, X: np.ndarray, y: np.ndarray) -> Any:
    binary = (y > 0).astype(int)
    X32 = X.astype(np.float32)
    makers: dict[str, Callable[[], Any]] = {
        "logistic-gd": lambda: LogisticRegression(max_iter=30, tol=None).fit(X, binary),
        "logistic-sgd-float32": lambda: LogisticRegression(
            batch_size=1, optimizer="sgd", max_iter=3, tol=None, random_state=0
        ).fit(X32, binary),
        "softmax-string-labels": lambda: SoftmaxRegression(max_iter=20, tol=None).fit(
            X, np.array(["ant", "bee", "cat"])[y]
        ),
        "mlp-adam-dropout": lambda: MLPClassifier(
            (6, 5), dropout=0.2, batch_size=16, max_iter=5, tol=None, random_state=0
        ).fit(X, y),
        "mlp-object-labels-objects": lambda: MLPClassifier(
            (5,),
            optimizer=Momentum(0.05),
            schedule=StepDecay(2, 0.5),
            class_weight={"no": 2.0},
            max_iter=4,
            tol=None,
            random_state=1,
        ).fit(X, np.array(["no", "yes", "yes"], dtype=object)[y]),
        "mlp-early-stopping": lambda: MLPClassifier(
            (5,), early_stopping=True, max_iter=6, random_state=2, tol=None
        ).fit(X, y),
        "mlp-lbfgs-binary": lambda: MLPClassifier(
            (4,), optimizer="lbfgs", max_iter=5, tol=None, random_state=0
        ).fit(X, binary),
        "regressor-2d-float32": lambda: MLPRegressor(
            (5,), max_iter=5, tol=None, random_state=0, schedule="plateau"
        ).fit(X32, np.c_[X32[:, 0], X32[:, 1] * 2]),
        "regressor-1d": lambda: MLPRegressor(
            3, activation="tanh", optimizer=SGD(0.01), batch_size=None, max_iter=5, tol=None
        ).fit(X, X[:, 0]),
    }
    return makers[name]()


MODEL_CASES = [
    "logistic-gd",
    "logistic-sgd-float32",
    "softmax-string-labels",
    "mlp-adam-dropout",
    "mlp-object-labels-objects",
    "mlp-early-stopping",
    "mlp-lbfgs-binary",
    "regressor-2d-float32",
    "regressor-1d",
]


@pytest.mark.parametrize("case", MODEL_CASES)
def test_every_model_round_trips_bit_for_bit(case: str, data: Any, tmp_path: Path) -> None:
    X, y = data
    model = _fitted(case, X, y)
    X_in = X.astype(model.network_.dtype)
    loaded = _round_trip(model, tmp_path)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.network_.flat_parameters, model.network_.flat_parameters)
    assert loaded.network_.dtype == model.network_.dtype
    _assert_same_outputs(model, loaded, X_in)
    for name in ("n_features_in_", "loss_curve_", "n_iter_", "t_", "validation_scores_"):
        assert getattr(loaded, name) == getattr(model, name), name
    if hasattr(model, "classes_"):
        assert loaded.classes_.dtype == model.classes_.dtype
        np.testing.assert_array_equal(loaded.classes_, model.classes_)
    assert repr(loaded) == repr(model)


def test_float32_models_stay_float32(data: Any, tmp_path: Path) -> None:
    X, y = data
    X32 = X.astype(np.float32)
    model = MLPClassifier((5,), max_iter=3, tol=None, random_state=0).fit(X32, y)
    loaded = _round_trip(model, tmp_path)
    assert loaded.network_.flat_parameters.dtype == np.float32
    assert loaded.predict_proba(X32).dtype == np.float32
    optimizer_state = loaded._trainer.optimizer.state[0]
    assert optimizer_state["m"].dtype == np.float32
    _assert_same_outputs(model, loaded, X32)


def test_feature_names_round_trip(data: Any, tmp_path: Path) -> None:
    pandas = pytest.importorskip("pandas")
    X, y = data
    frame = pandas.DataFrame(X, columns=["a", "b", "c", "d"])
    model = LogisticRegression(max_iter=5, tol=None).fit(frame, (y > 0).astype(int))
    loaded = _round_trip(model, tmp_path)
    assert list(loaded.feature_names_in_) == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sequential_round_trips(dtype: type, tmp_path: Path) -> None:
    network = Sequential(
        [
            Dense(3, 5, random_state=0, dtype=dtype),
            Activation("tanh"),
            Dropout(0.3),
            Dense(5, 2, init="he", random_state=1, dtype=dtype),
            Activation("softmax"),
        ]
    )
    loaded = _round_trip(network, tmp_path)
    assert isinstance(loaded, Sequential)
    assert loaded.config() == network.config()
    X = np.random.default_rng(0).normal(size=(7, 3)).astype(dtype)
    _assert_same_outputs(network, loaded, X)


def test_a_loaded_model_continues_training_exactly(data: Any, tmp_path: Path) -> None:
    X, y = data
    model = MLPClassifier((5,), dropout=0.1, batch_size=10, random_state=0)
    for _ in range(3):
        model.partial_fit(X, y, classes=[0, 1, 2])
    loaded = _round_trip(model, tmp_path)
    for _ in range(2):
        model.partial_fit(X, y)
        loaded.partial_fit(X, y)
    np.testing.assert_array_equal(loaded.network_.flat_parameters, model.network_.flat_parameters)
    assert loaded.loss_curve_ == model.loss_curve_


def test_without_training_state_the_file_is_smaller_and_predicts_the_same(
    data: Any, tmp_path: Path
) -> None:
    X, y = data
    model = MLPClassifier((8,), max_iter=3, tol=None, random_state=0).fit(X, y)
    full, slim = tmp_path / "full.npz", tmp_path / "slim.npz"
    handnet.save(model, full)
    handnet.save(model, slim, training_state=False)
    assert slim.stat().st_size < full.stat().st_size
    loaded = handnet.load(slim)
    _assert_same_outputs(model, loaded, X)
    loaded.partial_fit(X, y)  # trains on, with a fresh optimizer


def test_files_are_npz_and_deterministic(data: Any, tmp_path: Path) -> None:
    X, y = data
    model = SoftmaxRegression(max_iter=5, tol=None).fit(X, y)
    first, second = tmp_path / "a.npz", tmp_path / "b.npz"
    handnet.save(model, first)
    handnet.save(model, second)
    assert first.read_bytes() == second.read_bytes()
    with np.load(first, allow_pickle=False) as archive:
        np.testing.assert_array_equal(archive["parameters"], model.network_.flat_parameters)
        description = json.loads(archive["handnet.json"])
    assert description["format"] == "handnet-model"
    assert description["format_version"] == 1
    assert description["content"]["type"] == "SoftmaxRegression"


def test_a_long_run_is_saved_and_checkpointed_with_a_small_description(tmp_path: Path) -> None:
    """Every epoch adds floats to the loss curve and the history: in the JSON they filled
    its 1 MiB after some ten thousand epochs, and the fit's last checkpoint failed
    after all its training. Long lists of floats are arrays now."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 2))
    y = (X[:, 0] + 0.3 * rng.standard_normal(40) > 0).astype(int)
    epochs = 15_000
    checkpoint = tmp_path / "run.npz"
    model = LogisticRegression(learning_rate=0.5, max_iter=epochs, tol=None)
    model.fit(X, y, checkpoint=checkpoint)
    assert len(model.loss_curve_) == epochs
    path = tmp_path / "model.npz"
    handnet.save(model, path)
    for written in (path, checkpoint):
        with zipfile.ZipFile(written) as archive:
            assert archive.getinfo("handnet.json").file_size < 64 << 10
    loaded = handnet.load(path)
    assert loaded.loss_curve_ == model.loss_curve_  # every float, bit for bit
    assert handnet.load(checkpoint).history_.loss == model.history_.loss
    # Resuming the finished run for more epochs continues its history.
    more = LogisticRegression(learning_rate=0.5, max_iter=epochs + 10, tol=None)
    more.fit(X, y, checkpoint=checkpoint, resume=True)
    assert more.loss_curve_[:epochs] == model.loss_curve_
    assert len(more.loss_curve_) == epochs + 10


def test_a_list_of_floats_member_must_be_a_float64_vector(tmp_path: Path) -> None:
    """``{"$floats": name}`` reads back a list only from a 1-d float64 array."""
    from handnet.io.format import MAX_INLINE_FLOATS

    rng = np.random.default_rng(1)
    X = rng.standard_normal((30, 2))
    y = (X[:, 0] > 0).astype(int)
    model = LogisticRegression(learning_rate=0.5, max_iter=MAX_INLINE_FLOATS + 5, tol=None)
    model.fit(X, y)
    path = tmp_path / "model.npz"
    handnet.save(model, path)
    with zipfile.ZipFile(path) as archive:
        document = json.loads(archive.read("handnet.json"))
        members = {name: archive.read(name) for name in archive.namelist()}
    reference = document["content"]["fitted"]["loss_curve_"]
    assert set(reference) == {"$floats"}
    name = reference["$floats"]
    for bad in (np.zeros(3, np.float32), np.zeros((2, 2))):
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, bad, allow_pickle=False)
        content = document["content"]
        content["arrays"][name] = {
            "dtype": bad.dtype.str,
            "shape": list(bad.shape),
            "sha256": hashlib.sha256(bad.tobytes()).hexdigest(),
        }
        canonical = json.dumps(
            content, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True
        ).encode("ascii")
        document["content_sha256"] = hashlib.sha256(canonical).hexdigest()
        forged = tmp_path / "forged.npz"
        with zipfile.ZipFile(forged, "w") as archive:
            for member, blob in members.items():
                if member == "handnet.json":
                    blob = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
                elif member == f"{name}.npy":
                    blob = buffer.getvalue()
                archive.writestr(member, blob)
        with pytest.raises(ModelFileError, match="1-d float64"):
            handnet.load(forged)


def test_save_refuses_what_it_cannot_describe(data: Any, tmp_path: Path) -> None:
    X, y = data
    with pytest.raises(NotFittedError):
        handnet.save(MLPClassifier(), tmp_path / "m.npz")
    with pytest.raises(TypeError, match="Sequential"):
        handnet.save(object(), tmp_path / "m.npz")

    class MySGD(SGD):
        pass

    model = LogisticRegression(optimizer=MySGD(0.1), max_iter=2, tol=None)
    model.fit(X, (y > 0).astype(int))
    with pytest.raises(ValueError, match="MySGD"):
        handnet.save(model, tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()
    assert list(tmp_path.iterdir()) == []


def test_a_generator_random_state_is_dropped_and_reported(data: Any, tmp_path: Path) -> None:
    X, y = data
    model = MLPClassifier((3,), max_iter=2, tol=None, random_state=np.random.default_rng(3))
    model.fit(X, y)
    path = tmp_path / "m.npz"
    handnet.save(model, path)
    content = bad_files.description(bad_files.read_members(path))["content"]
    assert content["dropped_params"] == ["random_state"]
    loaded = handnet.load(path)
    assert loaded.random_state is None
    _assert_same_outputs(model, loaded, X)


# --- atomic writes ---------------------------------------------------------------------------


def test_a_crash_mid_save_leaves_the_previous_file_intact(
    data: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = data
    path = tmp_path / "model.npz"
    old = MLPClassifier((4,), max_iter=2, tol=None, random_state=0).fit(X, y)
    handnet.save(old, path)
    before = path.read_bytes()
    new = MLPClassifier((9,), max_iter=2, tol=None, random_state=1).fit(X, y)
    written = []
    real_write_member = handnet.io.format._write_member

    def crash_after_first_member(archive: zipfile.ZipFile, name: str, array: Any) -> None:
        if written:
            raise OSError("disk full (simulated)")
        real_write_member(archive, name, array)
        written.append(name)

    monkeypatch.setattr(handnet.io.format, "_write_member", crash_after_first_member)
    with pytest.raises(OSError, match="disk full"):
        handnet.save(new, path)
    assert written  # the crash came mid-file, after some data was written
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary left over
    _assert_same_outputs(old, handnet.load(path), X)


def test_an_interrupt_before_the_rename_leaves_the_previous_file(
    data: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = data
    path = tmp_path / "model.npz"
    handnet.save(LogisticRegression(max_iter=2, tol=None).fit(X, (y > 0).astype(int)), path)
    before = path.read_bytes()

    def interrupted_replace(source: str, target: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(handnet.io.os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        handnet.save(LogisticRegression(max_iter=5, tol=None).fit(X, (y > 1).astype(int)), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


# --- bad files -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("good") / "good.npz"
    handnet.save(bad_files.good_model(), path)
    return path


@pytest.mark.parametrize("case", bad_files.CASES, ids=[name for name, _ in bad_files.CASES])
def test_each_kind_of_bad_file_gets_a_model_file_error(
    case: Any, good_file: Path, tmp_path: Path
) -> None:
    _, make = case
    bad = tmp_path / "model.npz"
    make(good_file, bad)
    with pytest.raises(ModelFileError) as caught:
        handnet.load(bad)
    message = str(caught.value)
    assert "model.npz" in message
    assert isinstance(caught.value, ValueError)


def test_the_docs_table_is_current() -> None:
    text = bad_files.DOC.read_text(encoding="utf-8")
    section = bad_files.current_section(text)
    assert section is not None, "docs/bad_input.md lacks its model-files section"

    def masked(table: str) -> str:
        # Byte counts depend on the trained model's floats (and so on the BLAS).
        return re.sub(r"[0-9]+", "N", table)

    assert masked(section) == masked(bad_files.generated_section()), (
        "docs/bad_input.md is stale: run python scripts/bad_input_table.py"
    )


class _Payload:
    """Unpickling this runs ``os.mkdir(marker)``: the proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def test_a_pickled_payload_in_a_model_file_never_runs(good_file: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = np.empty(1, dtype=object)
    payload[0] = _Payload(marker)
    pickled = bad_files.npy_bytes(payload, allow_pickle=True)
    members = bad_files.read_members(good_file)
    # The payload in place of the weights, described as what it is, checksums forged.
    members["parameters.npy"] = pickled

    def describe_as_object(content: dict[str, Any]) -> None:
        content["arrays"]["parameters"]["dtype"] = "|O"

    bad = tmp_path / "model.npz"
    bad_files.write_members(bad, bad_files.edit_content(members, describe_as_object))
    with pytest.raises(ModelFileError, match="parameters"):
        handnet.load(bad)
    bad_files.write_members(bad, members)  # and described as the float array it replaced
    with pytest.raises(ModelFileError, match="parameters"):
        handnet.load(bad)
    assert not marker.exists()
    # The payload is live: NumPy's own loader, allowed to unpickle, runs it.
    with np.load(bad, allow_pickle=True) as archive:
        archive["parameters"]
    assert marker.is_dir()


def test_a_crafted_npz_of_only_pickles_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = np.empty(1, dtype=object)
    payload[0] = _Payload(marker)
    bad = tmp_path / "model.npz"
    with open(bad, "wb") as stream:
        np.savez(stream, parameters=payload, **{"handnet": payload})
    with pytest.raises(ModelFileError):
        handnet.load(bad)
    assert not marker.exists()


def test_loading_checks_resume_inputs_too(good_file: Path, tmp_path: Path) -> None:
    X, y = bad_files.training_data()
    with pytest.raises(ModelFileError, match="no model file"):
        MLPClassifier().fit(X, y, resume=tmp_path / "missing.npz")
    with pytest.raises(ModelFileError, match="MLPClassifier"):
        MLPRegressor().fit(X, y.astype(float), resume=good_file)


# --- random mutations (hypothesis) ------------------------------------------------------------


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[bytes, Any, np.ndarray]]:
    """Good files (bytes), their models and inputs to compare predictions on."""
    directory = tmp_path_factory.mktemp("originals")
    X, y = bad_files.training_data()
    labels = np.array(["x", "y", "z"])[y]
    models = [
        bad_files.good_model(),
        SoftmaxRegression(max_iter=5, tol=None).fit(X.astype(np.float32), labels),
        MLPRegressor((3,), max_iter=3, tol=None, random_state=0, early_stopping=True).fit(
            X, X[:, 0]
        ),
    ]
    result = []
    for i, model in enumerate(models):
        path = directory / f"{i}.npz"
        handnet.save(model, path)
        result.append((path.read_bytes(), model, X.astype(model.network_.dtype)))
    return result


def _mutate_json(document: dict[str, Any], draw: Any) -> None:
    """One structural edit somewhere in the description's content."""
    containers: list[Any] = []

    def walk(value: Any) -> None:
        if isinstance(value, (dict, list)) and len(containers) < 400:
            containers.append(value)
            for child in value.values() if isinstance(value, dict) else value:
                walk(child)

    walk(document["content"])
    target = draw(st.sampled_from(containers))
    keys = list(target) if isinstance(target, dict) else list(range(len(target)))
    if not keys:
        return
    key = draw(st.sampled_from(keys))
    old = target[key]
    operation = draw(st.sampled_from(["delete", "retype", "huge", "nest", "add", "negate"]))
    if operation == "delete":
        del target[key]
    elif operation == "add" and isinstance(target, dict):
        target["unexpected"] = 1
    elif operation == "huge":
        target[key] = 10**30 if not isinstance(old, int) else old * 10**12 + 1
    elif operation == "nest":
        target[key] = [old]
    elif operation == "negate" and isinstance(old, (int, float)) and not isinstance(old, bool):
        target[key] = -old - 1
    else:  # a value of another JSON type than the old one (never one string for another)
        choices = [None, True, 3, -2.5, "text", [], {}]
        target[key] = draw(st.sampled_from([c for c in choices if type(c) is not type(old)]))


@st.composite
def mutated_files(draw: Any, files: list[bytes]) -> tuple[bytes, int]:
    index = draw(st.integers(0, len(files) - 1))
    data = files[index]
    for _ in range(draw(st.integers(1, 2))):
        if not data:
            break
        kind = draw(
            st.sampled_from(["flip", "truncate", "overwrite", "json", "swap", "shape", "pickle"])
        )
        if kind == "flip":
            data = bad_files.flip_bit(data, draw(st.integers(0, 8 * len(data) - 1)))
        elif kind == "truncate":
            data = data[: draw(st.integers(0, len(data) - 1))]
        elif kind == "overwrite":
            start = draw(st.integers(0, len(data) - 1))
            junk = draw(st.binary(min_size=1, max_size=16))
            data = data[:start] + junk + data[start + len(junk) :]
        else:
            try:
                members = bad_files.read_members(io.BytesIO(data))
                document = bad_files.description(members)
            except Exception:  # already spoiled beyond reading: keep spoiling bytes
                continue
            names = sorted(n for n in members if n.endswith(".npy"))
            if kind == "json":
                _mutate_json(document, draw)
                if draw(st.booleans()):
                    members[bad_files.DESCRIPTION_MEMBER] = bad_files.resign(document)
                else:
                    members[bad_files.DESCRIPTION_MEMBER] = json.dumps(document).encode()
            elif kind == "swap" and len(names) >= 2:
                a, b = draw(st.permutations(names))[:2]
                members[a], members[b] = members[b], members[a]
            elif kind == "shape":
                name = draw(st.sampled_from(names))
                huge = draw(st.sampled_from([2**31, 2**40, 2**62]))
                header = bad_files.npy_bytes(np.zeros(1)).replace(b"(1,)", f"({huge},)".encode())
                members[name] = header
                table = document["content"].get("arrays")
                if isinstance(table, dict) and isinstance(table.get(name[:-4]), dict):
                    table[name[:-4]]["shape"] = [huge]  # the description agrees: forged
                    members[bad_files.DESCRIPTION_MEMBER] = bad_files.resign(document)
            elif kind == "pickle":
                name = draw(st.sampled_from(names))
                members[name] = bad_files.npy_bytes(np.array([{}], dtype=object), True)
            buffer = io.BytesIO()
            bad_files.write_members(buffer, members)
            data = buffer.getvalue()
    return data, index


@settings(
    max_examples=int(os.environ.get("HANDNET_FUZZ_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.data())
def test_mutated_files_load_identically_or_raise_model_file_error(
    originals: list[Any], tmp_path: Path, data: st.DataObject
) -> None:
    spoiled, index = data.draw(mutated_files([file for file, _, _ in originals]))
    _, model, X = originals[index]
    path = tmp_path / "mutated.npz"
    path.write_bytes(spoiled)
    try:
        loaded = handnet.load(path)
    except ModelFileError as error:
        # Shown by --hypothesis-show-statistics: which checks the mutations reach.
        event(str(error).split(": ", 1)[-1][:40])
        return
    event("loaded")
    _assert_same_outputs(model, loaded, X)


@pytest.mark.parametrize(
    ("name", "value"),
    [("n_iter_no_change", float("inf")), ("n_iter_no_change", -3), ("max_iter", 0),
     ("alpha", -1.0), ("tol", float("nan"))],
)
def test_a_forged_hyperparameter_is_the_files_error(name: str, value: Any, tmp_path: Any) -> None:
    """Checked as fit checks it, on load: a ModelFileError, not an OverflowError later."""
    import sys
    from pathlib import Path

    X = np.random.default_rng(0).normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    path = tmp_path / "model.npz"
    handnet.save(handnet.MLPClassifier((4,), max_iter=3, tol=None).fit(X, y), path)
    if "bad_array_table" not in sys.modules:
        script = Path(__file__).resolve().parents[1] / "scripts" / "bad_array_table.py"
        spec = importlib.util.spec_from_file_location("bad_array_table", script)
        assert spec is not None and spec.loader is not None
        sys.modules["bad_array_table"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["bad_array_table"])
    table = sys.modules["bad_array_table"]
    tree = table.read_tree(path)
    tree["params"][name] = value
    table.forge(tree, path)
    with pytest.raises(handnet.ModelFileError, match=f"bad hyperparameters: .*{name}"):
        handnet.load(path)
