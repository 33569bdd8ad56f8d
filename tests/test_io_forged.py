"""Model and checkpoint files forged with *valid* checksums: refused, never a crash.

The checksums of a model file detect corruption, not forgery: anyone can edit a
file and recompute them. These tests do just that, as a forger would: they take
good files apart (the JSON description and every array), change them with
knowledge of the schema (a generator's state, an interrupted epoch's row order,
a declared string width, array dtypes and shapes, numbers at their limits), put
them back together with fresh checksums, and load each in a child process with
a memory limit and a timeout. A crash (a negative exit status), a hang, or any
exception other than ``ModelFileError`` is a failure; so is a file that loads
but then crashes, hangs or fails oddly when it predicts, trains on, or resumes.

Every child is a separate process, so a regression here (an out-of-bounds read
in NumPy's generator or in a compiled kernel) fails the test instead of killing
pytest.
"""

from __future__ import annotations

import collections
import copy
import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import handnet
from handnet import LogisticRegression, MLPClassifier, MLPRegressor, SoftmaxRegression

DESCRIPTION = "handnet.json"
#: The child's address-space limit: generous for NumPy, far below a memory bomb.
MEMORY_LIMIT = 1 << 30
#: Seconds one file may take in the child (load, predict, train one epoch) before
#: it counts as a hang; generous, for a loaded machine.
PER_FILE_SECONDS = 30


# --- taking a file apart and forging it back together -----------------------------------------


def read_tree(data: bytes) -> dict[str, Any]:
    """A model file's content, every ``{"$array": name}`` replaced by its array (and
    every ``{"$floats": name}`` by its list)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        document = json.loads(archive.read(DESCRIPTION))
        arrays = {
            name[: -len(".npy")]: np.lib.format.read_array(
                io.BytesIO(archive.read(name)), allow_pickle=False
            )
            for name in archive.namelist()
            if name.endswith(".npy")
        }
    content = document["content"]
    del content["arrays"]

    def resolve(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"$array"}:
                return arrays[value["$array"]]
            if set(value) == {"$floats"}:  # a long list of floats: forged back inline
                return arrays[value["$floats"]].tolist()
            return {k: resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return value

    resolved: dict[str, Any] = resolve(content)
    return resolved


def _canonical(value: Any) -> bytes:
    # As handnet.io serialises the content for its checksum.
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True
    ).encode("ascii")


def forge(tree: dict[str, Any]) -> bytes:
    """A model file holding ``tree``, with both checksums computed as handnet's are.

    Arrays become ``.npy`` members (whatever their dtype or shape); the array
    table and the content checksum describe them truthfully.
    """
    arrays: dict[str, np.ndarray] = {}

    def refs(value: Any, name: str) -> Any:
        if isinstance(value, np.ndarray):
            key = name if name not in arrays else f"{name}_{len(arrays)}"
            arrays[key] = value
            return {"$array": key}
        if isinstance(value, dict):
            return {k: refs(v, f"{name}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [refs(v, f"{name}.{i}") for i, v in enumerate(value)]
        return value

    content = {k: refs(v, k) for k, v in tree.items()}
    table = {}
    members = {}
    for name, array in arrays.items():
        data = np.ascontiguousarray(array)
        if data.dtype.byteorder == ">":
            data = data.astype(data.dtype.newbyteorder("<"))
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, data, allow_pickle=False)
        members[f"{name}.npy"] = buffer.getvalue()
        table[name] = {
            "dtype": data.dtype.str,
            "shape": list(data.shape),
            "sha256": hashlib.sha256(data.tobytes()).hexdigest(),
        }
    content["arrays"] = table
    document = {
        "format": "handnet-model",
        "format_version": 1,
        "content_sha256": hashlib.sha256(_canonical(content)).hexdigest(),
        "content": content,
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(DESCRIPTION, _canonical(document))
        for name, blob in members.items():
            archive.writestr(name, blob)
    return out.getvalue()


# --- the originals ---------------------------------------------------------------------------


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    return X, y


#: name -> (make the model, the X and y it trains on)
def _originals() -> dict[str, tuple[Callable[[], Any], np.ndarray, np.ndarray]]:
    X, y = _data()
    labels = np.array(["ant", "bee", "cat"])[y]
    return {
        "mlp-adam-dropout": (
            lambda: MLPClassifier(
                (4,), dropout=0.1, batch_size=8, max_iter=3, tol=None, random_state=0
            ),
            X,
            y,
        ),
        "softmax-strings-float32": (
            lambda: SoftmaxRegression(
                optimizer="sgd", batch_size=10, max_iter=3, tol=None, random_state=1
            ),
            X.astype(np.float32),
            labels,
        ),
        "logistic-seed-kernel": (
            lambda: LogisticRegression(
                optimizer="sgd", batch_size=1, max_iter=2, tol=None, random_state=2
            ),
            X,
            (y > 0).astype(int),
        ),
        "regressor-early-stopping": (
            lambda: MLPRegressor(
                (3,), early_stopping=True, batch_size=16, max_iter=3, tol=None, random_state=3
            ),
            X,
            X[:, 0] - X[:, 2],
        ),
    }


ORIGINALS = _originals()
NAMES = sorted(ORIGINALS)


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each original's file bytes, content tree, and its data saved for the children."""
    directory = tmp_path_factory.mktemp("originals")
    result = {}
    for name in NAMES:
        make, X, y = ORIGINALS[name]
        path = directory / f"{name}.npz"
        # A checkpoint: a model file with the run's state and the data's fingerprint,
        # so that the forged runs get as far as resuming.
        make().fit(X, y, checkpoint=path)
        data_path = directory / f"{name}.data.npz"
        np.savez(data_path, X=X, y=y)
        data = path.read_bytes()
        result[name] = {"bytes": data, "tree": read_tree(data), "data": str(data_path)}
    return result


# --- the child that loads forged files -------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import json, resource, signal, sys, warnings
    limit, per_file = int(sys.argv[1]), int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    warnings.simplefilter("ignore")  # overflow in a forged model's outputs is no failure
    import numpy as np
    import handnet
    from handnet import ModelFileError, Sequential

    def exercise(model, path, data):
        # What a user does with a loaded file: predict, train on, resume.
        with np.load(data, allow_pickle=False) as arrays:
            X, y = arrays["X"], arrays["y"]
        if isinstance(model, Sequential):
            model.predict(X)
            return "loaded"
        model.predict(X)
        try:
            # Both draw from the restored generator (partial_fit is not there with
            # early stopping: a warm-started epoch of fit instead).
            if hasattr(model, "partial_fit"):
                model.partial_fit(X, y)
            else:
                model.set_params(warm_start=True, max_iter=1).fit(X, y)
        except (ValueError, TypeError, FloatingPointError):
            pass  # refused with a clear error (e.g. a forged hyperparameter)
        params = handnet.load(path).get_params()
        params["max_iter"] = int(handnet.load(path)._trainer.epoch) + 1
        try:
            type(model)(**params).fit(X, y, resume=path)  # the interrupted epoch's order
        except (ValueError, TypeError, FloatingPointError):
            return "loaded, resume refused"
        return "loaded, resumed"

    for index, job in enumerate(json.loads(sys.stdin.read())):
        print("start", index, flush=True)
        signal.alarm(per_file)  # default action: the child dies of SIGALRM (a hang)
        try:
            model = handnet.load(job["path"])
        except ModelFileError:
            result = "refused"
        except BaseException as error:
            result = f"FAILED load: {type(error).__name__}: {error}"[:500]
        else:
            try:
                result = exercise(model, job["path"], job["data"])
            except BaseException as error:
                result = f"FAILED after load: {type(error).__name__}: {error}"[:500]
        signal.alarm(0)
        print("done", index, json.dumps(result), flush=True)
    """
)


def run_child(jobs: list[dict[str, str]], timeout: float) -> tuple[list[str], str]:
    """Load every job's file in one child; each file's result, or why the child died.

    Returns the results in order (possibly fewer than the jobs) and a description
    of how the child ended ("" when it ran through).
    """
    env = {
        **os.environ,
        # One thread each: BLAS pools reserve address space per thread.
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMBA_NUM_THREADS": "1",
    }
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(MEMORY_LIMIT), str(PER_FILE_SECONDS)],
            input=json.dumps(jobs),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired as expired:
        out = expired.stdout or ""
        out = out.decode() if isinstance(out, bytes) else out
        return _results(out), f"hung (no answer in {timeout:.0f} s)"
    results = _results(done.stdout)
    if done.returncode != 0:
        how = (
            f"crashed (signal {-done.returncode})"
            if done.returncode < 0
            else f"exited {done.returncode}"
        )
        return results, f"{how}; stderr: {done.stderr[-2000:]}"
    return results, ""


def _results(stdout: str) -> list[str]:
    results = []
    for line in stdout.splitlines():
        if line.startswith("done "):
            results.append(json.loads(line.split(" ", 2)[2]))
    return results


#: How the forged files fared ("refused", "loaded, resumed", ...), for the report.
OUTCOMES: collections.Counter[str] = collections.Counter()


def check_in_child(
    files: list[tuple[str, bytes, str]], directory: Path, timeout: float = 300
) -> list[str]:
    """Write each ``(label, bytes, data path)`` and load it in a child; failures, labelled."""
    directory.mkdir(parents=True, exist_ok=True)
    jobs = []
    for i, (_, data, data_path) in enumerate(files):
        path = directory / f"forged-{i}.npz"
        path.write_bytes(data)
        jobs.append({"path": str(path), "data": data_path})
    results, ending = run_child(jobs, timeout)
    failures = [
        f"{files[i][0]}: {result}" for i, result in enumerate(results) if "FAILED" in result
    ]
    if ending:
        culprit = files[len(results)][0] if len(results) < len(files) else "(after the last)"
        failures.append(f"{culprit}: the child {ending}")
    OUTCOMES.update(result.split(":")[0] for result in results)
    return failures


# --- schema-aware mutations ------------------------------------------------------------------

U32, U64, U128 = 1 << 32, 1 << 64, 1 << 128

#: Integers at and around every limit a field might have.
EDGE_INTEGERS = [
    -(1 << 63) - 1, -(1 << 63), -(1 << 31), -2_000_000_000, -1, 0, 1, 2, 3, 4, 5, 623, 624,
    625, 2_000_000_000, (1 << 31) - 1, 1 << 31, U32 - 1, U32, (1 << 63) - 1, 1 << 63,
    U64 - 1, U64, U128 - 1, U128, 10**40,
]
EDGE_FLOATS = [float("nan"), float("inf"), -float("inf"), -0.0, 1e308, -1e308, 5e-324, 0.5]
ODD_VALUES: list[Any] = [None, True, "x", "\x1b[2J", [], {}, [1, 2], {"a": 1}, 1.5]


def _valid_rng_states() -> list[dict[str, Any]]:
    """A valid state of every bit generator NumPy has, some mid-way through a word."""
    states = []
    for name in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"):
        bit_generator = getattr(np.random, name)(7)
        generator = np.random.Generator(bit_generator)
        generator.integers(0, 10, size=3, dtype=np.uint32)  # leaves a buffered half word
        states.append(copy.deepcopy(bit_generator.state))
    return states


VALID_RNG_STATES = _valid_rng_states()


def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value in the tree (dict keys and list indices)."""
    yield prefix
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from _paths(value, (*prefix, i))


def _get(tree: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def _set(tree: Any, path: tuple[Any, ...], value: Any) -> None:
    _get(tree, path[:-1])[path[-1]] = value


def _odd_array(draw: Any, old: np.ndarray) -> np.ndarray:
    """``old`` with another dtype, shape or values (a forger's choice)."""
    how = draw(st.sampled_from(["dtype", "shorter", "longer", "2d", "values", "empty", "big"]))
    if how == "dtype":
        dtype = draw(st.sampled_from(["<f4", "<f8", "<i8", "<i4", "<u4", "<u8", "|u1", "|b1"]))
        with np.errstate(all="ignore"):
            return np.asarray(old).astype(dtype)
    if how == "shorter":
        return old[: max(len(old) - draw(st.integers(1, 3)), 0)] if old.ndim else old
    if how == "longer":
        return np.concatenate([old.ravel(), old.ravel()[:1].repeat(draw(st.integers(1, 5)))])
    if how == "2d":
        return old.reshape(1, -1)
    if how == "empty":
        return old[:0] if old.ndim else old
    if how == "big":
        return np.zeros(draw(st.sampled_from([1 << 16, 1 << 20])), dtype=old.dtype)
    spoiled = np.array(old, copy=True)
    if spoiled.size:
        index = draw(st.integers(0, spoiled.size - 1))
        if spoiled.dtype.kind == "f":
            with np.errstate(all="ignore"):  # 1e308 in float32 is inf: fine, a forgery
                spoiled.flat[index] = np.array(draw(st.sampled_from(EDGE_FLOATS))).astype(
                    spoiled.dtype
                )
        elif spoiled.dtype.kind in "iu":
            info = np.iinfo(spoiled.dtype)
            spoiled.flat[index] = draw(st.sampled_from([info.min, info.max, 0, 1]))
    return spoiled


def _mutate_rng(tree: dict[str, Any], draw: Any) -> None:
    """Another generator's state in place of the run's, then one field of it spoiled."""
    state = copy.deepcopy(draw(st.sampled_from(VALID_RNG_STATES)))
    tree["training"]["rng"] = state
    fields = [p for p in _paths(state) if p and p != ("bit_generator",)]
    path = draw(st.sampled_from(fields))
    old = _get(state, path)
    how = draw(st.sampled_from(["edge", "odd", "delete", "extra", "array"]))
    if how == "delete":
        del _get(state, path[:-1])[path[-1]]
    elif how == "extra" and isinstance(old, dict):
        old["extra"] = 1
    elif how == "array" and isinstance(old, np.ndarray):
        _set(state, path, _odd_array(draw, old))
    elif how == "odd":
        _set(state, path, draw(st.sampled_from(ODD_VALUES)))
    elif isinstance(old, np.ndarray) and old.size:
        # A word out of the array's range: stored in a wider, signed array.
        wide = old.astype(object)
        wide[draw(st.integers(0, old.size - 1))] = draw(st.sampled_from(EDGE_INTEGERS))
        if all(-(1 << 63) <= int(v) < (1 << 63) for v in wide):
            _set(state, path, np.array(wide.tolist(), dtype=np.int64))
        else:
            _set(state, path, [int(v) for v in wide])
    else:
        _set(state, path, draw(st.sampled_from(EDGE_INTEGERS)))


def _n_train(tree: dict[str, Any], n_rows: int) -> int:
    run = tree.get("run") or {}
    split = run.get("validation_index")
    return n_rows - (0 if split is None else len(split))


def _mutate_progress(tree: dict[str, Any], draw: Any, n_rows: int) -> None:
    """An interrupted epoch (a valid one, or one spoiled in a way the loops would trust)."""
    n = _n_train(tree, n_rows)
    order = np.random.default_rng(draw(st.integers(0, 9))).permutation(n).astype(np.int64)
    position = draw(st.integers(1, n))
    how = draw(
        st.sampled_from(
            ["valid", "out-of-range", "negative", "duplicate", "short", "long", "position",
             "dtype", "null-order", "huge-position", "total"]
        )
    )
    total, weight_total = 1.0, float(position)
    if how == "out-of-range":
        order[draw(st.integers(0, n - 1))] = draw(st.sampled_from([n, n + 1, 10**9, 2**62]))
    elif how == "negative":
        order[draw(st.integers(0, n - 1))] = draw(st.sampled_from([-1, -n, -(2**62)]))
    elif how == "duplicate" and n > 1:
        order[1] = order[0]
    elif how == "short":
        order = order[:-1]
    elif how == "long":
        order = np.append(order, order[:1])
    elif how == "position":
        position = n + draw(st.integers(1, 3))
    elif how == "huge-position":
        position = draw(st.sampled_from([2**31, 2**63 - 1, 10**30]))
    elif how == "dtype":
        order = order.astype(draw(st.sampled_from(["<f8", "<i4", "<u8"])))
    elif how == "total":
        total = draw(st.sampled_from(EDGE_FLOATS))
    tree["training"]["progress"] = {
        "order": None if how == "null-order" else order,
        "position": position,
        "total": total,
        "weight_total": weight_total,
    }
    tree["training"]["interrupted"] = True


def _mutate_classes(tree: dict[str, Any], draw: Any) -> None:
    """String labels declared with a wide dtype (a memory bomb) or other odd forms."""
    fitted = tree["fitted"]
    classes = fitted.get("classes_")
    if classes is None:
        return
    values = classes.tolist() if isinstance(classes, np.ndarray) else list(classes["values"])
    values = [str(v) for v in values]
    width = draw(st.sampled_from([1, 3, 99_999, 999_999, 9_999_999]))
    kind = draw(st.sampled_from([f"<U{width}", "object", "<U0", "|S5", "<U-1"]))
    if draw(st.booleans()):
        values = values + [f"{values[-1]}{i}" for i in range(draw(st.integers(1, 3000)))]
    fitted["classes_"] = {"dtype": kind, "values": values}


def _mutate_array(tree: dict[str, Any], draw: Any) -> None:
    paths = [p for p in _paths(tree) if isinstance(_get(tree, p), np.ndarray)]
    if paths:
        path = draw(st.sampled_from(paths))
        _set(tree, path, _odd_array(draw, _get(tree, path)))


def _mutate_scalar(tree: dict[str, Any], draw: Any) -> None:
    """A number, string, list or object anywhere in the content, pushed to a limit."""
    paths = [p for p in _paths(tree) if p and not isinstance(_get(tree, p), np.ndarray)]
    path = draw(st.sampled_from(paths))
    old = _get(tree, path)
    how = draw(st.sampled_from(["edge-int", "edge-float", "odd", "delete", "grow"]))
    if how == "edge-int":
        _set(tree, path, draw(st.sampled_from(EDGE_INTEGERS)))
    elif how == "edge-float":
        _set(tree, path, draw(st.sampled_from(EDGE_FLOATS)))
    elif how == "odd":
        _set(tree, path, draw(st.sampled_from(ODD_VALUES)))
    elif how == "delete":
        del _get(tree, path[:-1])[path[-1]]
    elif isinstance(old, list):
        _set(tree, path, old * draw(st.sampled_from([2, 1000])))
    elif isinstance(old, str):
        _set(tree, path, old * 1000)


def _mutate_layers(tree: dict[str, Any], draw: Any) -> None:
    """Layer sizes (and the hyperparameters that must agree) that claim huge layers."""
    layers = tree["network"]["layers"]
    dense = [layer for layer in layers if layer["type"] == "Dense"]
    layer = draw(st.sampled_from(dense))
    key = draw(st.sampled_from(["n_inputs", "n_outputs"]))
    layer[key] = draw(st.sampled_from([2**31 - 1, 2**31, 2**40, 0, -1]))
    if draw(st.booleans()) and "hidden_layer_sizes" in tree.get("params", {}):
        tree["params"]["hidden_layer_sizes"] = {"$tuple": [layer[key]]}


MUTATIONS = ["rng", "progress", "classes", "array", "scalar", "layers"]


#: The originals' files, content trees and data paths (set by the fixture; kept out of
#: the strategy's arguments, which hypothesis would print).
ORIGINAL_FILES: dict[str, Any] = {}


@st.composite
def forged_files(draw: Any) -> tuple[str, bytes, str]:
    """One forged file: (what was done to which original, its bytes, the data path)."""
    name = draw(st.sampled_from(NAMES))
    original = ORIGINAL_FILES[name]
    tree = copy.deepcopy(original["tree"])
    n_rows = len(ORIGINALS[name][1])
    done = []
    for _ in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(MUTATIONS))
        mutate = {
            "rng": lambda: _mutate_rng(tree, draw),
            "progress": lambda: _mutate_progress(tree, draw, n_rows),
            "classes": lambda: _mutate_classes(tree, draw),
            "array": lambda: _mutate_array(tree, draw),
            "scalar": lambda: _mutate_scalar(tree, draw),
            "layers": lambda: _mutate_layers(tree, draw),
        }[kind]
        try:
            mutate()
        except (TypeError, KeyError, AttributeError, IndexError, ValueError):
            # An earlier mutation left no such field (e.g. training set to null).
            kind += " (skipped)"
        done.append(kind)
    try:
        data = forge(tree)
    except (TypeError, ValueError):  # not even JSON (e.g. a NaN key): nothing to forge
        data = original["bytes"]
    return f"{name} [{' + '.join(done)}]", data, original["data"]


#: Forged files per child process, and how many files a run forges (the
#: environment variable HANDNET_FUZZ_FORGED raises it for a longer search).
BATCH = 100
N_FORGED = int(os.environ.get("HANDNET_FUZZ_FORGED", "1500"))


def test_forged_files_are_refused_or_work_never_crash(
    originals: dict[str, Any], tmp_path: Path
) -> None:
    # Hypothesis draws one forged file per example; the files are loaded in
    # batches, one child process per batch (a process per file would spend its
    # time importing NumPy). Failures are collected rather than raised inside
    # hypothesis: a child's verdict is no test case hypothesis could replay or
    # shrink cheaply, and the message names the forgery that failed.
    pending: list[tuple[str, bytes, str]] = []
    failures: list[str] = []
    tried = [0]
    started = time.monotonic()

    def flush() -> None:
        if pending:
            failures.extend(check_in_child(pending, tmp_path / f"batch-{tried[0]}"))
            tried[0] += len(pending)
            pending.clear()

    ORIGINAL_FILES.update(originals)

    @settings(
        max_examples=N_FORGED,
        deadline=None,
        phases=[Phase.generate],
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(forged_files())
    def collect(forged: tuple[str, bytes, str]) -> None:
        pending.append(forged)
        if len(pending) >= BATCH:
            flush()

    collect()
    flush()
    print(
        f"\nforged files tried: {tried[0]} in {time.monotonic() - started:.1f} s: "
        f"{dict(OUTCOMES.most_common())}"
    )
    assert tried[0] >= min(N_FORGED, 100)
    assert not failures, f"{len(failures)} of {tried[0]} forged files:\n" + "\n".join(failures)


# --- the cases the review found, each in a child -----------------------------------------------


def _tree(originals: dict[str, Any], name: str) -> dict[str, Any]:
    return copy.deepcopy(originals[name]["tree"])


def _one(originals: dict[str, Any], name: str, tree: dict[str, Any], tmp_path: Path) -> str:
    """The child's verdict on one forged file (a failure message or the result)."""
    result, ending = run_child_one(forge(tree), originals[name]["data"], tmp_path)
    return ending or result


def run_child_one(data: bytes, data_path: str, directory: Path) -> tuple[str, str]:
    path = directory / "forged.npz"
    path.write_bytes(data)
    results, ending = run_child([{"path": str(path), "data": data_path}], timeout=120)
    return (results[0] if results else ""), ending


@pytest.mark.parametrize(
    "name, edit",
    [
        ("MT19937 pos 2,000,000,000", lambda s: s["state"].update(pos=2_000_000_000)),
        ("MT19937 pos -1", lambda s: s["state"].update(pos=-1)),
        ("MT19937 pos 625", lambda s: s["state"].update(pos=625)),
        ("MT19937 key of 623 words", lambda s: s["state"].update(key=s["state"]["key"][:-1])),
        ("Philox buffer_pos -2,000,000,000", lambda s: s.update(buffer_pos=-2_000_000_000)),
        ("Philox buffer_pos 5", lambda s: s.update(buffer_pos=5)),
        ("Philox buffer of 3 words", lambda s: s.update(buffer=s["buffer"][:3])),
        ("PCG64 has_uint32 7", lambda s: s.update(has_uint32=7)),
        ("PCG64 inc 2**128", lambda s: s["state"].update(inc=U128)),
        ("SFC64 state of 3 words", lambda s: s["state"].update(state=s["state"]["state"][:3])),
    ],
)
def test_a_forged_generator_state_is_refused(
    name: str, edit: Callable[[dict[str, Any]], None], originals: dict[str, Any], tmp_path: Path
) -> None:
    generator = name.split()[0]
    state = copy.deepcopy(next(s for s in VALID_RNG_STATES if s["bit_generator"] == generator))
    edit(state)
    tree = _tree(originals, "mlp-adam-dropout")
    tree["training"]["rng"] = state
    assert _one(originals, "mlp-adam-dropout", tree, tmp_path) == "refused"


def test_a_forged_row_order_is_refused_before_the_compiled_kernel(tmp_path: Path) -> None:
    # 50,000 rows: the per-example SGD kernel (compiled, no bounds checks) runs.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50_000, 4))
    y = (X[:, 0] > 0).astype(int)
    model = LogisticRegression(optimizer="sgd", batch_size=1, max_iter=1, tol=None, random_state=0)
    path = tmp_path / "run.npz"
    handnet.save(model.fit(X, y), path)
    data_path = tmp_path / "data.npz"
    np.savez(data_path, X=X, y=y)
    tree = read_tree(path.read_bytes())
    order = rng.permutation(len(X)).astype(np.int64)
    order[-1] = 10**9  # far outside X
    tree["training"]["progress"] = {
        "order": order, "position": 1, "total": 0.0, "weight_total": 1.0,
    }
    tree["training"]["interrupted"] = True
    result, ending = run_child_one(forge(tree), str(data_path), tmp_path)
    assert not ending, ending
    assert result == "loaded, resume refused", result


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda o, n: o.__setitem__(0, n), "permutation"),  # a row that is not X's
        (lambda o, n: o.__setitem__(0, -1), "distinct, non-negative"),
        (lambda o, n: o.__setitem__(1, o[0]), "distinct, non-negative"),  # a row twice
    ],
)
def test_a_resumed_order_must_be_a_permutation_of_the_rows(
    spoil: Callable[[np.ndarray, int], None],
    message: str,
    originals: dict[str, Any],
    tmp_path: Path,
) -> None:
    make, X, y = ORIGINALS["mlp-adam-dropout"]
    tree = _tree(originals, "mlp-adam-dropout")
    order = np.arange(len(X), dtype=np.int64)[::-1].copy()
    spoil(order, len(X))
    tree["training"]["progress"] = {
        "order": order, "position": 5, "total": 1.0, "weight_total": 5.0,
    }
    tree["training"]["interrupted"] = True
    path = tmp_path / "run.npz"
    path.write_bytes(forge(tree))
    with pytest.raises(ValueError, match=message):
        make().set_params(max_iter=4).fit(X, y, resume=path)


def test_a_valid_forged_order_is_accepted(originals: dict[str, Any], tmp_path: Path) -> None:
    # The checks refuse only what is wrong: a permutation (reversed rows) resumes.
    make, X, y = ORIGINALS["mlp-adam-dropout"]
    tree = _tree(originals, "mlp-adam-dropout")
    tree["training"]["progress"] = {
        "order": np.arange(len(X), dtype=np.int64)[::-1].copy(),
        "position": 8, "total": 1.0, "weight_total": 8.0,
    }
    tree["training"]["interrupted"] = True
    path = tmp_path / "run.npz"
    path.write_bytes(forge(tree))
    assert make().set_params(max_iter=4).fit(X, y, resume=path).n_iter_ == 4


def test_a_declared_string_width_is_bounded_before_allocating(
    originals: dict[str, Any], tmp_path: Path
) -> None:
    # 2,000 labels declared <U999999: 8 GB from a file of about 100 KB.
    tree = _tree(originals, "mlp-adam-dropout")
    n_classes = 2000
    labels = sorted(f"c{i:04d}" for i in range(n_classes))
    tree["fitted"]["classes_"] = {"dtype": "<U999999", "values": labels}
    layers = tree["network"]["layers"]
    layers[-1]["n_outputs"] = n_classes
    n_hidden = layers[-1]["n_inputs"]
    n_first = (layers[0]["n_inputs"] + 1) * layers[0]["n_outputs"]
    tree["network"]["parameters"] = np.zeros(n_first + (n_hidden + 1) * n_classes)
    tree["training"] = None
    tree["run"] = None
    data = forge(tree)
    assert len(data) < 200_000
    result, ending = run_child_one(data, originals["mlp-adam-dropout"]["data"], tmp_path)
    assert not ending, ending
    assert result == "refused", result
    path = tmp_path / "wide.npz"
    path.write_bytes(data)
    with pytest.raises(handnet.ModelFileError, match="far more than the file can hold"):
        handnet.load(path)


def test_a_moderate_declared_width_still_loads(originals: dict[str, Any], tmp_path: Path) -> None:
    # fit keeps the dtype of y's labels (e.g. <U10 for 3-letter labels): still fine.
    make, X, _ = ORIGINALS["softmax-strings-float32"]
    labels = np.array(["ant", "bee", "cat"], dtype="<U10")[_data()[1]]
    path = tmp_path / "m.npz"
    handnet.save(make().fit(X, labels), path)
    assert handnet.load(path).classes_.dtype == np.dtype("<U10")


# --- not a regular file, a huge central directory ------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_fifo_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "p.npz"
    os.mkfifo(fifo)
    code = (
        "import sys, handnet\n"
        "try:\n"
        "    handnet.load(sys.argv[1])\n"
        "except handnet.ModelFileError as error:\n"
        "    print(error)\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(fifo)], capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        pytest.fail("loading a FIFO hangs (it waits for a writer)")
    assert done.returncode == 0, done.stderr
    assert "not a regular file" in done.stdout and "p.npz" in done.stdout


def _archive_with_members(count: int) -> bytes:
    """A ZIP of ``count`` empty members, its central directory built directly (fast)."""
    local, central = [], []
    offset = 0
    for i in range(count):
        name = f"m{i}.npy".encode()
        header = (
            b"PK\x03\x04" + (20).to_bytes(2, "little") + bytes(8) + bytes(12)
            + len(name).to_bytes(2, "little") + bytes(2) + name
        )
        central.append(
            b"PK\x01\x02" + (20).to_bytes(2, "little") * 2 + bytes(8) + bytes(12)
            + len(name).to_bytes(2, "little") + bytes(8) + bytes(4)
            + offset.to_bytes(4, "little") + name
        )
        local.append(header)
        offset += len(header)
    directory = b"".join(central)
    end = (
        b"PK\x05\x06" + bytes(4) + min(count, 0xFFFF).to_bytes(2, "little") * 2
        + len(directory).to_bytes(4, "little") + offset.to_bytes(4, "little") + bytes(2)
    )
    return b"".join(local) + directory + end


def test_the_archive_is_refused_by_its_end_record_before_zipfile_parses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "many.npz"
    path.write_bytes(_archive_with_members(3000))
    with zipfile.ZipFile(path) as archive:  # a valid archive, as zipfile sees it
        assert len(archive.infolist()) == 3000
    parsed = []
    real = zipfile.ZipFile

    def spy(*args: Any, **kwargs: Any) -> zipfile.ZipFile:
        parsed.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(zipfile, "ZipFile", spy)
    with pytest.raises(handnet.ModelFileError, match="3000 members"):
        handnet.load(path)
    assert not parsed, "zipfile parsed the whole central directory first"


def test_a_lying_member_count_does_not_hide_a_huge_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # zipfile parses the directory by its declared size, whatever the count says.
    data = bytearray(_archive_with_members(20_000))
    end = len(data) - 22
    data[end + 8 : end + 12] = (2).to_bytes(2, "little") * 2
    path = tmp_path / "lying.npz"
    path.write_bytes(bytes(data))
    monkeypatch.setattr(zipfile, "ZipFile", None)  # never reached
    with pytest.raises(handnet.ModelFileError, match="central directory declares"):
        handnet.load(path)


@pytest.mark.parametrize("penalty", ["l3", 7, ["l2"], "os.system"])
def test_a_forged_penalty_name_is_refused(
    penalty: Any, originals: dict[str, Any], tmp_path: Path
) -> None:
    tree = _tree(originals, "mlp-adam-dropout")
    tree["params"]["penalty"] = penalty
    assert _one(originals, "mlp-adam-dropout", tree, tmp_path) == "refused"
