"""Model files: save and load models and networks safely, and resumable checkpoints.

:func:`save` writes a model (``LogisticRegression``, ``SoftmaxRegression``,
``MLPClassifier``, ``MLPRegressor``) or a bare :class:`~handnet.network.Sequential`
to one file; :func:`load` reads it back. A loaded model predicts bit for bit what
the saved one did, and (with its training state) continues training exactly as
the saved one would have: ``partial_fit``, or ``fit(..., resume=path)``.

The format
----------
A model file is a ZIP archive (a NumPy ``.npz``: ``numpy.load`` opens it) of
uncompressed members:

``handnet.json``
    UTF-8 JSON, at most 1 MiB, nested at most 32 deep::

        {"format": "handnet-model", "format_version": 1,
         "content_sha256": "<hex SHA-256 of the content, serialised canonically>",
         "content": {...}}

    ``content`` holds

    * ``type``: ``"Sequential"`` or the model's class name, ``handnet_version``;
    * ``network``: ``dtype`` (``"float32"``/``"float64"``), ``layers`` (each
      layer's ``config()``, e.g. ``{"type": "Dense", "n_inputs": 4, "n_outputs": 8}``)
      , ``parameters`` (a reference to the flat parameter vector) and, for networks
      whose layers keep non-trained state, ``buffers`` (per layer, its
      :meth:`~handnet.layers.Layer.buffers` by name; the layer checks them on load);
    * for a model: ``params`` (the hyperparameters of ``get_params``; tuples,
      dicts, and optimizer / schedule objects as tagged objects such as
      ``{"$optimizer": "Adam", "settings": {"learning_rate": 0.001, ...}}``),
      ``dropped_params`` (hyperparameters that cannot be written, e.g. a
      ``Generator`` as ``random_state``: they load as their defaults),
      ``fitted`` (``classes_``, ``n_features_in_``, ``feature_names_in_``,
      ``loss_curve_``, ``n_iter_``, ...), ``training`` (the trainer's
      :meth:`~handnet.training.Trainer.state_dict`: optimizer, schedule and
      generator state, epoch, history, early-stopping counters, where an
      interrupted epoch stopped; or ``null``) and ``run`` (the early-stopping
      split and a fingerprint of the training data, for ``resume``);
    * ``arrays``: ``{name: {"dtype": "<f8", "shape": [n], "sha256": "<hex>"}}``,
      one entry per array member.

    An array appears in the content as ``{"$array": name}``.

``<name>.npy``
    One NumPy ``.npy`` (format 1.0 or 2.0, C order, little-endian, numeric dtypes
    only) per array: ``parameters`` and, as needed, ``classes`` (numeric labels;
    other labels are JSON), optimizer moments, best parameters, L-BFGS memory, an
    interrupted epoch's row order, the early-stopping split.

Safety
------
Nothing in a file is executed or unpickled: arrays are read with
``allow_pickle=False`` after their headers are checked against a whitelist of
dtypes, layers, models, optimizers, schedules and bit generators are built only
from whitelists of handnet's own classes. Everything is checked before anything
is built: the archive's structure and member sizes against the file's size (a
decompression bomb or a header declaring a huge array is refused without
reading it), the JSON's size and depth, both checksums, every key, type, shape
and dtype, that weights are finite, that the layers agree with each other, with
the hyperparameters and with the fitted attributes. Any problem raises
:class:`~handnet.exceptions.ModelFileError` (a ``ValueError``) saying what is
wrong. The checksums detect corruption, not forgery: anyone can write a file
with matching checksums, so only load models you trust to *behave* as you expect,
even though loading one cannot run code.

The checks bound what a file can make handnet do, as well as what it holds:
only a regular file is opened (a FIFO would block the reader forever); the
archive's end record must declare at most 256 members in a central directory
of bounded size before ``zipfile`` parses it; every size the description
declares (array shapes, the width of string class labels) must fit in what the
file can hold before anything is allocated; every field of a generator's state
is range-checked before NumPy's bit generators see it (they trust positions
such as MT19937's ``pos``); and an interrupted epoch's row order must be a
permutation of the data's rows before a resumed run indexes the data with it.

Writes are atomic: the file is written under a temporary name in the same
directory (``.<name>.<host tag>.<pid>.<random>.tmp``), flushed to disk, then
renamed over the target, so a crash or an exception mid-save leaves any
previous file intact. A later write of the same file removes the temporary
files of writers that died mid-write (same machine, process gone); a live
writer's file is never touched.

Resuming (``fit(..., resume=path)``) needs the fingerprint of the training data
that the file stores: every in-memory ``fit`` records it, so a file written by
``save`` after an interrupted ``fit`` resumes too, and a file without one (an
out-of-core fit without ``checkpoint=``, an older handnet) is refused rather
than resumed unchecked. Only ``max_iter`` and ``verbose`` may differ from the
saved run's hyperparameters (not ``random_state``: the run continues its saved
generator).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import inspect
import json
import math
import os
import re
import secrets
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Union

import numpy as np
from numpy.typing import NDArray

from .base import ESTIMATORS
from .exceptions import ModelFileError
from .layers import LAYERS, Layer, Shape, check_layer_configs
from .network import Sequential
from .optimizers import LBFGS, OPTIMIZERS, Optimizer, resolve_optimizer
from .schedules import SCHEDULES, Schedule
from .state import (
    check_epoch_order,
    check_rng_state,
    check_trainer_state,
    optimizer_types,
    schedule_types,
)
from .training import History, Trainer

__all__ = ["FORMAT", "FORMAT_VERSION", "load", "save"]

PathLike = Union[str, "os.PathLike[str]"]

FORMAT = "handnet-model"
FORMAT_VERSION = 1
DESCRIPTION_MEMBER = "handnet.json"

#: Limits that keep a hostile file from exhausting memory or the stack.
MAX_DESCRIPTION_BYTES = 1 << 20
MAX_JSON_DEPTH = 32
MAX_MEMBERS = 256
#: The most bytes one member's central-directory entry may take (46 fixed, then its
#: name, extra fields and comment): handnet's are under 300.
MAX_DIRECTORY_ENTRY = 2048
MAX_LAYERS = 1000
#: The longest string an optimizer's or schedule's setting may hold in a file.
MAX_SETTING_LENGTH = 256
MAX_LAYER_WIDTH = 1 << 31
#: A member may expand (DEFLATE) at most this much relative to the whole file;
#: handnet writes uncompressed members, whose size equals their stored size.
MAX_EXPANSION = 64
_NPY_MAX_HEADER = 10_000

#: The estimators model files may name (:data:`handnet.base.ESTIMATORS`, which the
#: models register themselves into: this module does not import them).
MODEL_TYPES = ESTIMATORS

#: A handnet estimator (:mod:`handnet.models`), typed loosely: :mod:`handnet.models`
#: imports this module (checkpoints), so this module does not import it.
_NetworkEstimator = Any

#: The dtypes an array member may have (as ``dtype.str``, little-endian).
ARRAY_DTYPES = frozenset(
    {"<f4", "<f8", "<i2", "<i4", "<i8", "<u2", "<u4", "<u8", "|b1", "|i1", "|u1"}
)
_NETWORK_DTYPES: dict[str, np.dtype[Any]] = {
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
}
_ARRAY_NAME = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*")
_HEX64 = re.compile(r"[0-9a-f]{64}")

#: Hyperparameters that may differ between a run and its resumption: how long it
#: runs and what it prints. Not ``random_state``: the resumed run continues the
#: saved generator, so a model that said another seed would misreport its run.
_RESUMABLE_DIFFERENCES = frozenset({"max_iter", "verbose"})

Array = NDArray[np.floating]


# --- errors -------------------------------------------------------------------------------


def _bad(path: str, problem: str) -> ModelFileError:
    return ModelFileError(f"{path!r} is not a valid handnet model file: {problem}")


class _Invalid(Exception):
    """A problem found while checking a file's content (turned into ModelFileError)."""


def _require(condition: bool, problem: str) -> None:
    if not condition:
        raise _Invalid(problem)


# --- JSON ---------------------------------------------------------------------------------


def _canonical_json(value: Any) -> bytes:
    """The one serialisation the checksum is computed over (sorted keys, no spaces)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True
    ).encode("ascii")


def _json_depth_ok(text: str, limit: int) -> bool:
    """Whether ``text`` nests arrays/objects at most ``limit`` deep (strings skipped).

    Checked before parsing so that a deeply nested document cannot exhaust the
    parser's recursion.
    """
    depth = 0
    in_string = False
    escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return False
        elif char in "]}":
            depth -= 1
    return True


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Invalid(f"the description repeats the key {key!r}")
        result[key] = value
    return result


# --- hyperparameters ----------------------------------------------------------------------


class _Unencodable(Exception):
    pass


def _init_argument_names(cls: type) -> list[str]:
    return [
        name
        for name, p in inspect.signature(cls).parameters.items()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def _encode_scalar(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    raise _Unencodable(type(value).__name__)


def _encode_param(value: Any, initial_learning_rate: float | None = None) -> Any:
    """A hyperparameter as JSON (tuples, dicts, optimizers and schedules tagged)."""
    if isinstance(value, tuple):
        return {"$tuple": [_encode_param(v) for v in value]}
    if isinstance(value, list):
        return [_encode_param(v) for v in value]
    if isinstance(value, dict):
        return {"$dict": [[_encode_scalar(k), _encode_param(v)] for k, v in value.items()]}
    if isinstance(value, (Optimizer, LBFGS)):
        name = type(value).__name__
        if optimizer_types().get(name) is not type(value):
            raise ValueError(
                f"cannot save a model whose optimizer is a {type(value).__qualname__}: a model "
                f"file can only describe handnet's own optimizers {sorted(optimizer_types())}"
            )
        settings = {k: _encode_scalar(getattr(value, k)) for k in _init_argument_names(type(value))}
        if initial_learning_rate is not None and "learning_rate" in settings:
            # A schedule changes optimizer.learning_rate during training; the
            # hyperparameter is the rate the run started from.
            settings["learning_rate"] = float(initial_learning_rate)
        return {"$optimizer": name, "settings": settings}
    if isinstance(value, Layer):
        name = type(value).__name__
        if LAYERS.get(name) is not type(value):
            raise ValueError(
                f"cannot save a model whose layers hold a {type(value).__qualname__}: register "
                f"it first (handnet.layers.LAYERS.register({name!r}, ...))"
            )
        settings = {
            k: _encode_param(getattr(value, k))
            for k in _init_argument_names(type(value))
            if k not in _LAYER_RUNTIME_ARGUMENTS
        }
        return {"$layer": name, "settings": settings}
    if isinstance(value, Schedule):
        name = type(value).__name__
        if schedule_types().get(name) is not type(value):
            raise ValueError(
                f"cannot save a model whose schedule is a {type(value).__qualname__}: a model "
                f"file can only describe handnet's own schedules {sorted(schedule_types())}"
            )
        settings = {k: _encode_scalar(getattr(value, k)) for k in _init_argument_names(type(value))}
        return {"$schedule": name, "settings": settings}
    return _encode_scalar(value)


def _encode_params(model: _NetworkEstimator) -> tuple[dict[str, Any], list[str]]:
    trainer = getattr(model, "_trainer", None)
    params: dict[str, Any] = {}
    dropped: list[str] = []
    for name, value in model.get_params(deep=False).items():
        initial = None
        if trainer is not None and value is trainer.optimizer:
            initial = trainer.initial_learning_rate
        try:
            params[name] = _encode_param(value, initial)
        except _Unencodable:
            dropped.append(name)
    return params, dropped


#: Constructor arguments of a layer that a model file does not keep: the estimator
#: draws the initial values from its own generator and sets the dtype from the data.
_LAYER_RUNTIME_ARGUMENTS = frozenset({"random_state", "dtype"})


@dataclass
class _ObjectSpec:
    """An optimizer or schedule described in a file, built only after all checks."""

    cls: type
    settings: dict[str, Any]

    def build(self) -> Any:
        return self.cls(**{key: _build_param(value) for key, value in self.settings.items()})


def _decode_param(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, str, int, float)):
        return value
    if isinstance(value, list):
        return [_decode_param(v, where) for v in value]
    _require(isinstance(value, dict), f"hyperparameter {where} has an unknown form")
    if set(value) == {"$tuple"}:
        _require(isinstance(value["$tuple"], list), f"hyperparameter {where} is a bad tuple")
        return tuple(_decode_param(v, where) for v in value["$tuple"])
    if set(value) == {"$dict"}:
        pairs = value["$dict"]
        _require(isinstance(pairs, list), f"hyperparameter {where} is a bad mapping")
        result = {}
        for pair in pairs:
            _require(
                isinstance(pair, list)
                and len(pair) == 2
                and (pair[0] is None or isinstance(pair[0], (bool, str, int, float))),
                f"hyperparameter {where} is a bad mapping",
            )
            result[pair[0]] = _decode_param(pair[1], where)
        return result
    for tag, table in (("$optimizer", optimizer_types()), ("$schedule", schedule_types())):
        if set(value) == {tag, "settings"}:
            name = value[tag]
            _require(
                isinstance(name, str) and name in table,
                f"hyperparameter {where} names an unknown {tag[1:]} {name!r}",
            )
            cls: type = table[name]
            settings = value["settings"]
            allowed = set(_init_argument_names(cls))
            _require(
                isinstance(settings, dict) and set(settings) <= allowed,
                f"hyperparameter {where}: the settings of {name} must be among {sorted(allowed)}",
            )
            for key, setting in settings.items():
                # Data only (numbers, flags, short words), handed to a registered class's
                # constructor, which validates its own settings.
                _require(
                    setting is None
                    or isinstance(setting, (bool, int, float))
                    or (isinstance(setting, str) and len(setting) <= MAX_SETTING_LENGTH),
                    f"hyperparameter {where}: setting {key} of {name} must be a number, a "
                    f"bool, null or a string of at most {MAX_SETTING_LENGTH} characters",
                )
            return _ObjectSpec(cls, dict(settings))
    if set(value) == {"$layer", "settings"}:
        return _decode_layer(value, where, depth=0)
    raise _Invalid(f"hyperparameter {where} has an unknown form {sorted(value)}")


def _decode_layer_setting(value: Any, where: str, depth: int) -> Any:
    """A layer's constructor argument: data only (numbers, flags, short words, lists of them,
    or the sub-layers of a block), handed to the registered class, which checks it."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        _require(len(value) <= MAX_SETTING_LENGTH, f"{where} is a string that is too long")
        return value
    if isinstance(value, dict) and set(value) == {"$tuple"} and isinstance(value["$tuple"], list):
        items = value["$tuple"]
        _require(
            len(items) <= 3 and all(_is_number(v) for v in items),
            f"{where} must be a tuple of at most 3 numbers",
        )
        return tuple(items)
    if isinstance(value, dict) and set(value) == {"$layer", "settings"}:
        return _decode_layer(value, where, depth + 1)
    if isinstance(value, list) and len(value) <= MAX_LAYERS:
        return [_decode_layer_setting(v, where, depth) for v in value]
    raise _Invalid(f"{where} has an unknown form")


def _decode_layer(value: dict[str, Any], where: str, depth: int) -> _ObjectSpec:
    _require(depth <= 8, f"hyperparameter {where} nests layers too deeply")
    name = value["$layer"]
    _require(
        isinstance(name, str) and name in LAYERS,
        f"hyperparameter {where} names an unknown layer {name!r}; known: {', '.join(LAYERS)}",
    )
    cls: type = LAYERS[name]
    settings = value["settings"]
    allowed = set(_init_argument_names(cls)) - _LAYER_RUNTIME_ARGUMENTS
    _require(
        isinstance(settings, dict) and set(settings) <= allowed,
        f"hyperparameter {where}: the settings of {name} must be among {sorted(allowed)}",
    )
    return _ObjectSpec(
        cls,
        {
            key: _decode_layer_setting(setting, f"hyperparameter {where}: {name}.{key}", depth)
            for key, setting in settings.items()
        },
    )


def _check_layer_specs(specs: Any, stored: Sequence[Mapping[str, Any]]) -> None:
    """A ``layers`` hyperparameter must describe the stored network's last layers.

    Checked before any layer is built: each described layer is of the stored
    layer's type and every size it gives equals the stored one (a size left
    ``None`` is read from the layer below when built, which the stored chain has
    checked), so building them allocates no more than the file holds.
    """
    if specs is None:
        return
    _require(
        isinstance(specs, list)
        and all(isinstance(spec, _ObjectSpec) and issubclass(spec.cls, Layer) for spec in specs),
        "the layers hyperparameter must be a list of layers",
    )
    _require(
        0 < len(specs) <= len(stored),
        f"the layers hyperparameter has {len(specs)} layers, the network {len(stored)}",
    )
    for spec, config in zip(specs, stored[len(stored) - len(specs) :], strict=True):
        _require(
            spec.cls.__name__ == config["type"],
            f"the layers hyperparameter describes a {spec.cls.__name__} where the network "
            f"holds a {config['type']}",
        )
        for key, setting in spec.settings.items():
            if key not in config or setting is None or (isinstance(config[key], list) and (
                config[key] and isinstance(config[key][0], dict)
            )):
                continue  # not a saved size, read from below, or a block's sub-layers
            given = list(setting) if isinstance(setting, tuple) else setting
            _require(
                given == config[key],
                f"the layers hyperparameter gives {spec.cls.__name__} {key}={setting!r}, the "
                f"network holds {config[key]!r}",
            )


def _build_param(value: Any) -> Any:
    if isinstance(value, _ObjectSpec):
        return value.build()
    if isinstance(value, list):
        return [_build_param(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_build_param(v) for v in value)
    if isinstance(value, dict):
        return {k: _build_param(v) for k, v in value.items()}
    return value


def _optimizer_type_name(value: Any) -> str:
    """The optimizer class a model's ``optimizer`` hyperparameter stands for."""
    if isinstance(value, _ObjectSpec):
        return value.cls.__name__
    if value == "lbfgs":
        return "LBFGS"
    _require(
        isinstance(value, str) and value in OPTIMIZERS,
        f"the optimizer hyperparameter {value!r} is not a known optimizer",
    )
    return OPTIMIZERS[value].__name__


def _schedule_type_name(value: Any) -> str:
    if isinstance(value, _ObjectSpec):
        return value.cls.__name__
    _require(
        isinstance(value, str) and value in SCHEDULES,
        f"the schedule hyperparameter {value!r} is not a known schedule",
    )
    return SCHEDULES[value].__name__


# --- describing what to save ----------------------------------------------------------------


def _tree_with_array_refs(value: Any, name: str, arrays: dict[str, NDArray[Any]]) -> Any:
    """``value`` with every array moved into ``arrays`` and replaced by a reference."""
    if isinstance(value, np.ndarray):
        arrays[name] = value
        return {"$array": name}
    if isinstance(value, Mapping):
        return {str(k): _tree_with_array_refs(v, f"{name}.{k}", arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tree_with_array_refs(v, f"{name}.{i}", arrays) for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _describe_network(network: Sequential, arrays: dict[str, NDArray[Any]]) -> dict[str, Any]:
    arrays["parameters"] = network.flat_parameters
    description: dict[str, Any] = {
        "dtype": str(network.dtype),
        "layers": network.config(),
        "parameters": {"$array": "parameters"},
    }
    buffers = network.buffers()
    if any(buffers):  # written only by networks that keep some: older files have none
        described = []
        for i, layer_buffers in enumerate(buffers):
            entry = {}
            for name, value in layer_buffers.items():
                arrays[f"buffers.{i}.{name}"] = value
                entry[name] = {"$array": f"buffers.{i}.{name}"}
            described.append(entry)
        description["buffers"] = described
    return description


def _describe_classes(classes: NDArray[Any], arrays: dict[str, NDArray[Any]]) -> Any:
    if classes.dtype.kind in "biuf":
        arrays["classes"] = classes
        return {"$array": "classes"}
    values = classes.tolist()
    if not all(isinstance(v, (str, int, float, bool)) for v in values):
        raise ValueError(
            "cannot save these classes: a model file stores class labels that are numbers "
            f"or strings, got {sorted({type(v).__name__ for v in values})}"
        )
    kind = classes.dtype.str if classes.dtype.kind == "U" else "object"
    return {"dtype": kind, "values": values}


def _describe_estimator(
    model: _NetworkEstimator,
    arrays: dict[str, NDArray[Any]],
    training_state: bool,
    fitted_overrides: Mapping[str, Any] | None = None,
    run: CheckpointRun | None = None,
) -> dict[str, Any]:
    name = type(model).__name__
    if MODEL_TYPES.get(name) is not model.__class__:
        raise TypeError(
            f"handnet.save writes {sorted(MODEL_TYPES)} models and Sequential networks, "
            f"not {type(model).__qualname__}"
        )
    model._check_is_fitted()
    params, dropped = _encode_params(model)
    # During fit (a checkpoint) the overrides hold what fit has not set yet.
    overrides = dict(fitted_overrides or {})

    def attribute(name: str) -> Any:
        return overrides[name] if name in overrides else getattr(model, name)

    scores = attribute("validation_scores_")
    fitted: dict[str, Any] = {
        "n_features_in_": int(attribute("n_features_in_")),
        "loss_curve_": [float(v) for v in attribute("loss_curve_")],
        "validation_scores_": None if scores is None else [float(v) for v in scores],
        "n_iter_": int(attribute("n_iter_")),
        "t_": int(attribute("t_")),
    }
    for optional in ("best_loss_", "best_validation_score_", "best_epoch_"):
        # An override of None: the run names no such value yet (a mid-run checkpoint).
        value = attribute(optional) if optional in overrides or hasattr(model, optional) else None
        if value is not None:
            fitted[optional] = int(value) if optional == "best_epoch_" else float(value)
    validation_losses = (
        overrides["validation_loss_curve_"]
        if "validation_loss_curve_" in overrides
        else getattr(model, "validation_loss_curve_", None)
    )
    if validation_losses is not None:
        fitted["validation_loss_curve_"] = [float(v) for v in validation_losses]
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        fitted["feature_names_in_"] = [str(n) for n in names]
    if hasattr(model, "classes_"):
        fitted["classes_"] = _describe_classes(np.asarray(model.classes_), arrays)
    if hasattr(model, "n_outputs_"):
        fitted["n_outputs_"] = int(model.n_outputs_)
        fitted["_y_ndim"] = int(getattr(model, "_y_ndim", 1))
    sample_shape = getattr(model, "_sample_shape", None)
    if sample_shape is not None:
        fitted["_sample_shape"] = [int(size) for size in sample_shape]
    trainer: Trainer | None = getattr(model, "_trainer", None)
    training = None
    if training_state and trainer is not None:
        training = _tree_with_array_refs(trainer.state_dict(), "training", arrays)
    run_info = None
    if training is not None:
        run = run if run is not None else getattr(model, "_checkpoint_run", None)
        split = None if run is None else run.validation_index
        run_info = {
            "validation_index": None
            if split is None
            else _tree_with_array_refs(split.astype(np.int64), "run.validation_index", arrays),
            "fingerprint": None if run is None else run.fingerprint,
        }
    return {
        "type": name,
        "params": params,
        "dropped_params": dropped,
        "network": _describe_network(attribute("network_"), arrays),
        "fitted": fitted,
        "training": training,
        "run": run_info,
    }


# --- writing ------------------------------------------------------------------------------


def _little_endian(array: NDArray[Any]) -> NDArray[Any]:
    dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder not in "|" else array.dtype
    # np.require, not np.ascontiguousarray, which makes a 0-d array 1-d.
    return np.require(array, dtype=dtype, requirements="C")


def _write_member(archive: zipfile.ZipFile, name: str, array: NDArray[Any]) -> None:
    """One ``.npy`` member, streamed into the archive (no copy of the data in memory)."""
    info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    big = array.nbytes + _NPY_MAX_HEADER > zipfile.ZIP64_LIMIT
    with archive.open(info, "w", force_zip64=big) as member:
        np.lib.format.write_array(member, array, allow_pickle=False)


def _write_archive(
    stream: IO[bytes], content: dict[str, Any], arrays: Mapping[str, NDArray[Any]]
) -> None:
    table = {}
    prepared = {}
    for name, array in arrays.items():
        data = _little_endian(np.asarray(array))
        if data.dtype.str not in ARRAY_DTYPES:
            raise TypeError(
                f"array {name!r} has dtype {data.dtype}, which a model file cannot hold"
            )
        prepared[name] = data
        table[name] = {
            "dtype": data.dtype.str,
            "shape": list(data.shape),
            "sha256": hashlib.sha256(data.data).hexdigest(),
        }
    content = {**content, "arrays": table}
    description = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "content_sha256": hashlib.sha256(_canonical_json(content)).hexdigest(),
        "content": content,
    }
    text = _canonical_json(description)
    if len(text) > MAX_DESCRIPTION_BYTES:
        raise ValueError(
            f"the model's description is {len(text)} bytes, over the {MAX_DESCRIPTION_BYTES} "
            "a model file allows (a very long loss curve or feature-name list?)"
        )
    with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_STORED) as archive:
        info = zipfile.ZipInfo(DESCRIPTION_MEMBER, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        archive.writestr(info, text)
        for name, data in prepared.items():
            _write_member(archive, name, data)


#: A temporary file's name: ``.<target name>.<host>.<pid>.<random>.tmp``. The host
#: tag and the pid let a later write prove the file abandoned (see _remove_abandoned).
_TEMPORARY = re.compile(
    r"\.(?P<target>.+)\.(?P<host>[0-9a-f]{8})\.(?P<pid>[0-9]+)\.[0-9a-f]{12}\.tmp"
)


@functools.lru_cache(maxsize=1)
def _host_tag() -> str:
    """8 hex digits naming this machine, boot and process namespace.

    A pid identifies a process only within one boot of one machine (and one
    pid namespace): a temporary file written elsewhere (another host sharing
    the directory, another container) carries another tag and is never judged
    from here.
    """
    parts = [os.uname().nodename if hasattr(os, "uname") else ""]
    with contextlib.suppress(OSError), open("/proc/sys/kernel/random/boot_id") as boot:
        parts.append(boot.read())
    with contextlib.suppress(OSError):
        parts.append(os.readlink("/proc/self/ns/pid"))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:8]


def _temporary_name(target: str) -> str:
    directory, name = os.path.split(os.path.abspath(target))
    return os.path.join(
        directory, f".{name}.{_host_tag()}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
    )


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (POSIX; anything doubtful counts as alive)."""
    if pid <= 0:
        return True  # not a pid we wrote: leave the file alone
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except OSError:
        return True  # e.g. another user's process: it exists
    return True


def _remove_abandoned(target: str) -> None:
    """Remove the temporary files of earlier writes of ``target`` whose writer is dead.

    A writer killed mid-write (kill -9, power loss) leaves its temporary file.
    One is provably abandoned when it was written on this machine (same host
    tag) by a process that no longer exists: a live writer's file, or one from
    another machine, is never touched. POSIX only (``os.kill(pid, 0)`` is a
    harmless existence check there, not on Windows). A file whose pid has been
    reused by a new process is kept, which errs on the safe side.
    """
    if os.name != "posix":  # pragma: no cover
        return
    directory, name = os.path.split(os.path.abspath(target))
    tag = _host_tag()
    with contextlib.suppress(OSError), os.scandir(directory) as entries:
        for entry in entries:
            match = _TEMPORARY.fullmatch(entry.name)
            if (
                match is None
                or match["target"] != name
                or match["host"] != tag
                or int(match["pid"]) == os.getpid()
                or _process_alive(int(match["pid"]))
            ):
                continue
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)


def check_writable(path: PathLike, what: str = "model") -> None:
    """Raise ``OSError`` naming ``path`` unless a file can be written there.

    Creates (and removes) a temporary file in the target's directory, as the
    atomic write will: the one test that covers permissions, read-only file
    systems, missing directories and quotas alike. Used before training, so
    that a path that cannot be written fails at once, not after the training.

    Parameters
    ----------
    path : str or os.PathLike
        The file to be written.
    what : str, default "model"
        What the file is, for the message (``"checkpoint"``).

    Raises
    ------
    OSError
        The file cannot be written; the message names ``path`` and the reason.
    """
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    if os.path.isdir(target):
        raise IsADirectoryError(
            errno.EISDIR, f"cannot write the {what} file {target!r}: it is a directory", target
        )
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            errno.ENOENT,
            f"cannot write the {what} file {target!r}: its directory {directory!r} does not "
            "exist (create it first)",
            target,
        )
    probe = _temporary_name(target)
    os.close(_open_temporary(probe, target, what))
    with contextlib.suppress(OSError):
        os.unlink(probe)


# O_EXCL: never reuse (or follow a link at) an existing name; mode 0o666 lets the
# umask decide the permissions, as for any file the user creates.
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _open_temporary(temporary: str, target: str, what: str) -> int:
    """Create ``temporary`` (next to ``target``) for writing; its file descriptor.

    Raises
    ------
    OSError
        Of the same type and errno as the system's, naming ``target``: the temporary
        name is ours, not the user's.
    """
    try:
        return os.open(temporary, _WRITE_FLAGS, 0o666)
    except OSError as error:
        raise type(error)(
            error.errno, f"cannot write the {what} file {target!r}: {error.strerror}", target
        ) from None


def _write_atomic(path: PathLike, content: dict[str, Any], arrays: Mapping[str, Any]) -> None:
    """Write to a temporary file next to ``path``, flush it to disk, rename it over ``path``.

    The temporary file is named after this process (see :func:`_remove_abandoned`),
    and the temporary files of earlier writers of ``path`` that died mid-write are
    removed once this write has succeeded.
    """
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    temporary = _temporary_name(target)
    descriptor = _open_temporary(temporary, target, "model")
    try:
        with os.fdopen(descriptor, "wb") as stream:
            _write_archive(stream, content, arrays)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)
    _remove_abandoned(target)


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (POSIX); best effort elsewhere."""
    if os.name != "posix":  # pragma: no cover - Windows cannot open directories
        return
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def save(model: Any, path: PathLike, *, training_state: bool = True) -> None:
    """Write a fitted model or a ``Sequential`` network to ``path`` (a ``.npz`` file).

    Parameters
    ----------
    model : LogisticRegression, SoftmaxRegression, MLPClassifier, MLPRegressor or Sequential
        A model must be fitted.
    path : str or os.PathLike
        Written atomically (temporary file, then rename): an existing file is
        replaced only once the new one is complete. The name is used as given
        (``.npz`` is the customary extension).
    training_state : bool, default True
        Also store what continuing the training needs (optimizer moments, the
        generator's state, the epoch, ...), so that the loaded model's
        ``partial_fit`` or ``fit(..., resume=path)`` continues exactly. ``False``
        writes a smaller file for prediction (training would restart its
        optimizer).

    Raises
    ------
    TypeError
        ``model`` is of a type handnet cannot save.
    NotFittedError
        The model is not fitted.
    OSError
        ``path`` cannot be written (missing directory, no permission, disk
        full); the message names ``path``.
    ValueError
        The model holds something a model file cannot describe (a custom
        optimizer class, class labels that are neither numbers nor strings).

    See Also
    --------
    load
    """
    arrays: dict[str, NDArray[Any]] = {}
    content = _describe(model, arrays, training_state)
    _write_atomic(path, content, arrays)


def _describe(
    model: Any,
    arrays: dict[str, NDArray[Any]],
    training_state: bool,
    fitted_overrides: Mapping[str, Any] | None = None,
    run: CheckpointRun | None = None,
) -> dict[str, Any]:
    import handnet

    if isinstance(model, Sequential):
        content = {"type": "Sequential", "network": _describe_network(model, arrays)}
    elif MODEL_TYPES.get(type(model).__name__) is type(model):
        content = _describe_estimator(model, arrays, training_state, fitted_overrides, run)
    else:
        raise TypeError(
            f"handnet.save writes {sorted(MODEL_TYPES)} models and Sequential networks, "
            f"not {type(model).__qualname__}"
        )
    return {"handnet_version": handnet.__version__, **content}


# --- reading: the archive -----------------------------------------------------------------


def _read_member_array(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, spec: Mapping[str, Any]
) -> NDArray[Any]:
    """Read one ``.npy`` member after checking its header against the description."""
    dtype = np.dtype(spec["dtype"])
    shape = tuple(spec["shape"])
    nbytes = math.prod(shape) * dtype.itemsize
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            header = np.lib.format.read_array_header_1_0(member, max_header_size=_NPY_MAX_HEADER)
        elif version == (2, 0):
            header = np.lib.format.read_array_header_2_0(member, max_header_size=_NPY_MAX_HEADER)
        else:
            raise _Invalid(f"array {name!r} is in .npy format {version}; 1.0 or 2.0 expected")
        header_shape, fortran_order, header_dtype = header
        _require(
            header_dtype.str in ARRAY_DTYPES,
            f"array {name!r} has dtype {header_dtype.str!r} in its header; only plain numbers "
            "are allowed (an object array would need unpickling, which handnet never does)",
        )
        _require(
            header_dtype.str == dtype.str and tuple(header_shape) == shape and not fortran_order,
            f"array {name!r} is {header_dtype.str} {tuple(header_shape)} in its header but "
            f"{dtype.str} {shape} in the description",
        )
        header_size = member.tell()
        _require(
            info.file_size == header_size + nbytes,
            f"array {name!r} declares {nbytes} bytes of data but its member holds "
            f"{info.file_size - header_size}",
        )
        data = member.read(nbytes)
        _require(len(data) == nbytes and member.read(1) == b"", f"array {name!r} is truncated")
    _require(
        hashlib.sha256(data).hexdigest() == spec["sha256"],
        f"array {name!r} does not match its checksum (corrupted, or arrays swapped)",
    )
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    native = np.array(array, dtype=dtype.newbyteorder("="), copy=True)
    if native.dtype.kind == "f":
        _require(bool(np.isfinite(native).all()), f"array {name!r} holds NaN or infinite values")
    return native


def _check_array_table(table: Any, budget: int, size: int) -> None:
    _require(isinstance(table, dict), "content.arrays must be an object")
    total = 0
    for name, spec in table.items():
        _require(
            _ARRAY_NAME.fullmatch(name) is not None and len(name) <= 200,
            f"array name {name!r} is not allowed",
        )
        _require(
            isinstance(spec, dict) and set(spec) == {"dtype", "shape", "sha256"},
            f"array {name!r} must be described by dtype, shape and sha256",
        )
        _require(
            isinstance(spec["dtype"], str) and spec["dtype"] in ARRAY_DTYPES,
            f"array {name!r} has dtype {spec['dtype']!r}; allowed: {sorted(ARRAY_DTYPES)}",
        )
        shape = spec["shape"]
        _require(
            isinstance(shape, list)
            and len(shape) <= 2
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape),
            f"array {name!r} has an invalid shape {shape!r}",
        )
        _require(
            isinstance(spec["sha256"], str) and _HEX64.fullmatch(spec["sha256"]) is not None,
            f"array {name!r} has an invalid checksum",
        )
        total += math.prod(shape) * np.dtype(spec["dtype"]).itemsize
        _require(
            total <= budget,
            f"the arrays declare {total} bytes, far more than a {size}-byte file can hold",
        )


def _read_archive(path: str) -> tuple[dict[str, Any], int]:
    """The checked content of the file at ``path``, with arrays in place of references.

    Also the most bytes anything the file declares may take once in memory
    (``MAX_EXPANSION`` times the file's size), for the checks of the content.
    """
    stream = _open_regular_file(path)
    with stream:
        try:
            return _read_open_archive(stream, path)
        except _Invalid as error:
            raise _bad(path, str(error)) from None
        except (zipfile.BadZipFile, zlib.error, EOFError, struct.error) as error:
            raise _bad(path, f"the archive is truncated or corrupted ({error})") from None
        except (ValueError, KeyError, IndexError, TypeError, OverflowError) as error:
            raise _bad(path, f"unreadable content ({type(error).__name__}: {error})") from None
        except (NotImplementedError, RuntimeError) as error:
            # Unsupported compression methods, encrypted members.
            raise _bad(path, f"unsupported archive feature ({error})") from None
        except RecursionError:
            raise _bad(path, "the description nests too deeply") from None
        except OSError as error:
            raise ModelFileError(f"cannot read the model file {path!r}: {error}") from None


def _open_regular_file(path: str) -> IO[bytes]:
    """``path`` opened for reading, or ``ModelFileError`` unless it is a regular file.

    Opened without blocking and checked on the open descriptor (no race with a
    rename in between): reading a FIFO would wait forever for a writer, and a
    device or socket is no model file either.
    """
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        raise ModelFileError(f"no model file at {path!r} (file not found)") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path!r} is a directory, not a model file") from None
    except OSError as error:
        raise ModelFileError(f"cannot open the model file {path!r}: {error}") from None
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise ModelFileError(f"{path!r} is a directory, not a model file")
        if not stat.S_ISREG(mode):
            raise ModelFileError(
                f"{path!r} is not a regular file (a {_file_kind(mode)}): a model file is read "
                "from disk; copy the model to a file first"
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def _file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISFIFO, "named pipe (FIFO)"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    )
    return next((name for test, name in kinds if test(mode)), "special file")


#: The end-of-central-directory record: signature, disk numbers and this disk's count
#: (skipped), the total count of members, the directory's size and offset, comment length.
_EOCD = struct.Struct("<4s6xHII2x")
_EOCD_SIGNATURE = b"PK\x05\x06"
_ZIP64_LOCATOR = struct.Struct("<4sIQI")
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_EOCD = struct.Struct("<4sQ2H2I2Q2Q")
_ZIP64_EOCD_SIGNATURE = b"PK\x06\x06"


def _check_central_directory(stream: IO[bytes], size: int) -> None:
    """Refuse an archive whose end records declare too big a directory, before parsing it.

    ``zipfile`` reads the whole central directory into ``ZipInfo`` objects
    before anyone can count them (a million members: 40 s and 570 MB). It finds
    the directory through the end-of-central-directory record and, where a ZIP64
    locator precedes that, through the ZIP64 record (found next to the locator
    or where the locator points, depending on the Python version), and parses
    as many bytes as the record says. Every record it might use is checked here:
    at most :data:`MAX_MEMBERS` members, in at most ``MAX_MEMBERS *
    MAX_DIRECTORY_ENTRY`` bytes.
    """
    tail_size = min(size, _EOCD.size + 0xFFFF)  # the record, then a comment of <= 64 KiB
    tail_start = size - tail_size
    stream.seek(tail_start)
    tail = stream.read(tail_size)
    at = tail.rfind(_EOCD_SIGNATURE)  # as zipfile searches for it
    _require(
        at >= 0 and at + _EOCD.size <= len(tail),
        "the archive has no end-of-central-directory record (truncated?)",
    )
    _, count, directory_size, _ = _EOCD.unpack_from(tail, at)
    records = [(count, directory_size)]
    locator_at = tail_start + at - _ZIP64_LOCATOR.size
    if locator_at >= 0:
        stream.seek(locator_at)
        locator = stream.read(_ZIP64_LOCATOR.size)
        signature, _, record_offset, _ = _ZIP64_LOCATOR.unpack(locator)
        if signature == _ZIP64_LOCATOR_SIGNATURE:
            for offset in {locator_at - _ZIP64_EOCD.size, record_offset}:
                if not 0 <= offset <= size - _ZIP64_EOCD.size:
                    continue
                stream.seek(offset)
                record = stream.read(_ZIP64_EOCD.size)
                if record[:4] == _ZIP64_EOCD_SIGNATURE:
                    fields = _ZIP64_EOCD.unpack(record)
                    records.append((fields[6], fields[8]))
    limit = MAX_MEMBERS * MAX_DIRECTORY_ENTRY
    for count, directory_size in records:
        _require(
            count <= MAX_MEMBERS,
            f"the archive declares {count} members; a model file has at most {MAX_MEMBERS}",
        )
        # zipfile parses the directory by its size, not by the count: bound both.
        _require(
            directory_size <= limit,
            f"the archive's central directory declares {directory_size} bytes, more than "
            f"{MAX_MEMBERS} members need ({limit} bytes at most)",
        )
    stream.seek(0)


def _read_open_archive(stream: IO[bytes], path: str) -> tuple[dict[str, Any], int]:
    size = os.fstat(stream.fileno()).st_size
    start = stream.read(6)
    _require(size > 0, "the file is empty")
    _require(
        start != b"\x93NUMPY",
        "it is a single .npy array, not a model file (write one with handnet.save)",
    )
    _require(start[:2] == b"PK", "it is not a ZIP/.npz archive (wrong leading bytes)")
    _check_central_directory(stream, size)
    archive = zipfile.ZipFile(stream)
    infos = archive.infolist()
    _require(len(infos) <= MAX_MEMBERS, f"the archive has {len(infos)} members")
    names = [info.filename for info in infos]
    _require(len(set(names)) == len(names), "the archive holds two members of the same name")
    budget = MAX_EXPANSION * size + (1 << 16)
    declared = 0
    for info in infos:
        _require(
            info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED),
            f"member {info.filename!r} uses an unsupported compression method",
        )
        _require(not info.flag_bits & 0x1, f"member {info.filename!r} is encrypted")
        _require(
            info.header_offset + info.compress_size <= size,
            f"member {info.filename!r} extends past the end of the file (truncated?)",
        )
        if info.compress_type == zipfile.ZIP_STORED:
            _require(
                info.file_size == info.compress_size,
                f"member {info.filename!r} declares {info.file_size} bytes but stores "
                f"{info.compress_size}",
            )
        declared += info.file_size
        _require(
            declared <= budget,
            f"the members declare {declared} bytes, far more than a {size}-byte file can hold "
            "(a decompression bomb?)",
        )
    _require(DESCRIPTION_MEMBER in names, f"it has no {DESCRIPTION_MEMBER} description")
    info = archive.getinfo(DESCRIPTION_MEMBER)
    _require(
        info.file_size <= MAX_DESCRIPTION_BYTES,
        f"the description is {info.file_size} bytes, over the {MAX_DESCRIPTION_BYTES} limit",
    )
    with archive.open(info) as member:
        raw = member.read(MAX_DESCRIPTION_BYTES + 1)
    _require(len(raw) <= MAX_DESCRIPTION_BYTES, "the description is over the size limit")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Invalid("the description is not UTF-8 text") from None
    _require(
        _json_depth_ok(text, MAX_JSON_DEPTH),
        f"the description nests deeper than {MAX_JSON_DEPTH} levels",
    )
    try:
        description = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as error:
        raise _Invalid(f"the description is not valid JSON ({error})") from None
    _require(isinstance(description, dict), "the description is not a JSON object")
    _require(
        description.get("format") == FORMAT,
        f"the description's format is {description.get('format')!r}, not {FORMAT!r}",
    )
    version = description.get("format_version")
    _require(
        isinstance(version, int) and not isinstance(version, bool),
        f"the format version {version!r} is not an integer",
    )
    _require(
        version == FORMAT_VERSION,
        f"format version {version} is unknown: this handnet reads version {FORMAT_VERSION}"
        + (" (the file was written by a newer handnet)" if version > FORMAT_VERSION else ""),
    )
    _require(
        set(description) == {"format", "format_version", "content_sha256", "content"},
        f"the description has unexpected keys {sorted(description)}",
    )
    content = description["content"]
    _require(isinstance(content, dict), "content must be a JSON object")
    _require(
        description["content_sha256"] == hashlib.sha256(_canonical_json(content)).hexdigest(),
        "the description does not match its checksum (edited or corrupted)",
    )
    table = content.get("arrays")
    _check_array_table(table, budget, size)
    members = {n[: -len(".npy")] for n in names if n != DESCRIPTION_MEMBER and n.endswith(".npy")}
    others = [n for n in names if n != DESCRIPTION_MEMBER and not n.endswith(".npy")]
    _require(not others, f"the archive holds unexpected members {sorted(others)}")
    missing, extra = sorted(set(table) - members), sorted(members - set(table))
    _require(not missing, f"arrays {missing} are described but missing from the archive")
    _require(not extra, f"the archive holds undescribed arrays {extra}")
    arrays = {
        name: _read_member_array(archive, archive.getinfo(f"{name}.npy"), name, spec)
        for name, spec in table.items()
    }
    used: set[str] = set()
    resolved = _resolve_refs({k: v for k, v in content.items() if k != "arrays"}, arrays, used)
    unused = sorted(set(arrays) - used)
    _require(not unused, f"arrays {unused} are never referenced")
    return dict(resolved), budget


def _resolve_refs(value: Any, arrays: Mapping[str, NDArray[Any]], used: set[str]) -> Any:
    if isinstance(value, dict):
        if "$array" in value:
            name = value["$array"]
            _require(set(value) == {"$array"} and isinstance(name, str), "bad array reference")
            _require(name in arrays, f"reference to an unknown array {name!r}")
            _require(name not in used, f"array {name!r} is referenced twice")
            used.add(name)
            return arrays[name]
        return {k: _resolve_refs(v, arrays, used) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_refs(v, arrays, used) for v in value]
    return value


# --- reading: checking the content --------------------------------------------------------


def _is_int(value: Any, low: int = 0, high: int | None = None) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value >= low
        and (high is None or value <= high)
    )


def _is_number(value: Any, finite: bool = True) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and (not finite or math.isfinite(value))
    )


def _check_keys(
    value: Any, where: str, required: set[str], optional: frozenset[str] | set[str] = frozenset()
) -> None:
    _require(isinstance(value, dict), f"{where} must be an object")
    keys = set(value)
    missing = sorted(required - keys)
    extra = sorted(keys - required - set(optional))
    _require(not missing, f"{where} lacks {missing}")
    _require(not extra, f"{where} has unknown entries {extra}")


def _check_layers(
    layers: Any, n_parameters: int, n_features: int | None = None
) -> tuple[list[dict[str, Any]], Shape | None]:
    """The layer configs, checked, with the parameter count they imply, and the output shape.

    ``n_features`` (a fitted model's ``n_features_in_``) is the network's input width
    when known: the layers must then chain from it.
    """
    try:
        shape, total = check_layer_configs(
            layers, None if n_features is None else (n_features,), "layer", MAX_LAYERS
        )
    except ValueError as error:
        raise _Invalid(str(error)) from None
    _require(
        total == n_parameters,
        f"the layers have {total} parameters but the parameter vector has {n_parameters}",
    )
    return layers, shape


@dataclass
class _NetworkPlan:
    dtype: np.dtype[Any]
    layers: list[dict[str, Any]]
    parameters: Array
    buffers: list[dict[str, Array]] | None = None
    #: The per-sample output shape, when the input width was known while checking.
    output_shape: Shape | None = None

    def restore_into(self, network: Sequential) -> None:
        """Set ``network``'s parameters and buffers to the file's (already checked in shape)."""
        network.flat_parameters[...] = self.parameters
        for i, (layer, saved) in enumerate(
            zip(network.layers, self.buffers or [{}] * len(network.layers), strict=True)
        ):
            try:
                layer.load_buffers(saved)
            except ValueError as error:
                raise _Invalid(f"layer {i}: {error}") from None


def _check_network(network: Any, n_features: int | None = None) -> _NetworkPlan:
    _check_keys(network, "network", {"dtype", "layers", "parameters"}, {"buffers"})
    _require(
        isinstance(network["dtype"], str) and network["dtype"] in _NETWORK_DTYPES,
        f"network.dtype must be float32 or float64, got {network['dtype']!r}",
    )
    dtype = _NETWORK_DTYPES[network["dtype"]]
    parameters = network["parameters"]
    _require(
        isinstance(parameters, np.ndarray) and parameters.ndim == 1,
        "network.parameters must be a 1-d array",
    )
    _require(
        parameters.dtype == dtype,
        f"the parameters are {parameters.dtype} but the network is declared {dtype}",
    )
    layers, output_shape = _check_layers(network["layers"], parameters.size, n_features)
    buffers = network.get("buffers")
    if buffers is not None:
        # Names and arrays here; each layer checks shapes and values when it loads them.
        _require(
            isinstance(buffers, list)
            and len(buffers) == len(layers)
            and all(
                isinstance(entry, dict)
                and all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in entry.items())
                for entry in buffers
            ),
            "network.buffers must list one object of named arrays per layer",
        )
    # Each layer that declares its buffers' shapes (from its config) must find them
    # in the file, checked before anything is built: a size written into a config
    # cannot make the loader allocate more than the file holds.
    for i, config in enumerate(layers):
        declared = LAYERS[config["type"]].buffer_shapes(config)
        if not declared:
            continue
        saved = {} if buffers is None else buffers[i]
        shapes = {name: tuple(value.shape) for name, value in saved.items()}
        _require(
            shapes == declared,
            f"layer {i} ({config['type']}) keeps the buffers "
            f"{ {name: list(shape) for name, shape in declared.items()} }, the file holds "
            f"{ {name: list(shape) for name, shape in shapes.items()} }",
        )
    return _NetworkPlan(dtype, layers, parameters, buffers, output_shape)


def _check_float_list(value: Any, where: str) -> list[float]:
    _require(
        isinstance(value, list) and all(_is_number(v, finite=False) for v in value),
        f"{where} must be a list of numbers",
    )
    return [float(v) for v in value]


def _check_classes(value: Any, budget: int) -> NDArray[Any]:
    if isinstance(value, np.ndarray):
        classes = value
        _require(classes.ndim == 1, "classes_ must be 1-d")
    else:
        _check_keys(value, "fitted.classes_", {"dtype", "values"})
        values, kind = value["values"], value["dtype"]
        _require(
            isinstance(values, list)
            and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in values),
            "classes_ values must be numbers or strings",
        )
        if kind == "object":
            _require(len({type(v) for v in values}) <= 1, "classes_ mixes strings and numbers")
            classes = np.empty(len(values), dtype=object)
            classes[:] = values
        else:
            _require(
                isinstance(kind, str) and re.fullmatch(r"<U[1-9][0-9]{0,5}", kind) is not None,
                f"classes_ has an unknown dtype {kind!r}",
            )
            _require(all(isinstance(v, str) for v in values), "string classes_ must be strings")
            width = int(kind[2:])
            _require(all(len(v) <= width for v in values), f"a class label is longer than {kind}")
            # NumPy stores every label in `width` characters of 4 bytes: a wide
            # dtype declared for many labels would allocate gigabytes from a
            # few kilobytes of file, so the declared size is bounded first.
            declared = 4 * width * len(values)
            _require(
                declared <= budget,
                f"classes_ declares {len(values)} labels of dtype {kind} ({declared} bytes), "
                f"far more than the file can hold (its labels are at most "
                f"{max(map(len, values), default=0)} characters long)",
            )
            classes = np.array(values, dtype=kind)
    _require(len(classes) >= 2, "a classifier needs at least two classes")
    try:
        unique = np.unique(classes)
    except TypeError:
        raise _Invalid("classes_ cannot be sorted") from None
    _require(
        len(unique) == len(classes) and bool(np.all(unique == classes)),
        "classes_ must be sorted and distinct (as fit stores them)",
    )
    return classes


@dataclass
class _EstimatorPlan:
    cls: type[_NetworkEstimator]
    network: _NetworkPlan
    params: dict[str, Any]
    fitted: dict[str, Any]
    training: dict[str, Any] | None
    run: dict[str, Any] | None
    raw_params: dict[str, Any] = field(default_factory=dict)


_FITTED_REQUIRED = {"n_features_in_", "loss_curve_", "validation_scores_", "n_iter_", "t_"}
_FITTED_OPTIONAL = {
    "best_loss_",
    "best_validation_score_",
    "feature_names_in_",
    # Written since early stopping keeps the epoch of the lowest validation loss.
    "validation_loss_curve_",
    "best_epoch_",
    # An estimator over images: the shape of one sample (its rows are flat).
    "_sample_shape",
}


def _check_fitted(
    fitted: Any, cls: type[_NetworkEstimator], network: _NetworkPlan, budget: int
) -> dict[str, Any]:
    is_classifier = bool(getattr(cls, "_is_classifier", False))
    required = set(_FITTED_REQUIRED) | (
        {"classes_"} if is_classifier else {"n_outputs_", "_y_ndim"}
    )
    _check_keys(fitted, "fitted", required, _FITTED_OPTIONAL)
    result = dict(fitted)
    # The layers were chained from n_features_in_ when the network was checked (so the
    # first layer takes the features); what they give must be one row of outputs.
    n_features = fitted["n_features_in_"]
    _require(_is_int(n_features, 1), f"n_features_in_ must be an integer >= 1, got {n_features!r}")
    _require(
        network.output_shape is not None and len(network.output_shape) == 1,
        f"a model's network must end with flat outputs, its layers give {network.output_shape}",
    )
    assert network.output_shape is not None
    if "_sample_shape" in fitted:
        shape = fitted["_sample_shape"]
        _require(
            isinstance(shape, list)
            and 1 <= len(shape) <= 3
            and all(_is_int(size, 1) for size in shape)
            and math.prod(shape) == n_features,
            f"_sample_shape must list 1 to 3 sizes whose product is n_features_in_="
            f"{n_features}, got {shape!r}",
        )
        result["_sample_shape"] = tuple(shape)
    names = fitted.get("feature_names_in_")
    if names is not None:
        _require(
            isinstance(names, list)
            and len(names) == n_features
            and all(isinstance(n, str) for n in names),
            "feature_names_in_ must list one string per feature",
        )
        result["feature_names_in_"] = np.asarray(names, dtype=object)
    result["loss_curve_"] = _check_float_list(fitted["loss_curve_"], "loss_curve_")
    scores = fitted["validation_scores_"]
    result["validation_scores_"] = (
        None if scores is None else _check_float_list(scores, "validation_scores_")
    )
    for name in ("n_iter_", "t_"):
        _require(_is_int(fitted[name]), f"{name} must be a non-negative integer")
    for name in ("best_loss_", "best_validation_score_"):
        if name in fitted:
            _require(_is_number(fitted[name], finite=False), f"{name} must be a number")
            result[name] = float(fitted[name])
    validation_losses = fitted.get("validation_loss_curve_")
    if validation_losses is not None:
        result["validation_loss_curve_"] = _check_float_list(
            validation_losses, "validation_loss_curve_"
        )
        _require(
            result["validation_scores_"] is not None
            and len(result["validation_loss_curve_"]) == len(result["validation_scores_"]),
            "validation_loss_curve_ must have one entry per validation score",
        )
    if "best_epoch_" in fitted:
        n_validated = len(result.get("validation_loss_curve_") or [])
        _require(
            _is_int(fitted["best_epoch_"], 1) and fitted["best_epoch_"] <= n_validated,
            f"best_epoch_={fitted['best_epoch_']!r} must be an epoch of the validation curve "
            f"(1 to {n_validated})",
        )
    n_outputs = network.output_shape[0]
    if is_classifier:
        classes = _check_classes(fitted["classes_"], budget)
        binary = bool(getattr(cls, "_binary_output", True)) and len(classes) == 2
        expected = 1 if binary else len(classes)
        _require(
            n_outputs == expected,
            f"{len(classes)} classes need {expected} output(s), the network has {n_outputs}",
        )
        if getattr(cls, "_binary_only", False):
            _require(len(classes) == 2, f"a {cls.__name__} has exactly two classes")
        result["classes_"] = classes
    else:
        _require(
            _is_int(fitted["n_outputs_"], 1) and fitted["n_outputs_"] == n_outputs,
            f"n_outputs_={fitted['n_outputs_']!r} disagrees with the network's {n_outputs}",
        )
        _require(
            fitted["_y_ndim"] in (1, 2) and not isinstance(fitted["_y_ndim"], bool),
            "_y_ndim must be 1 or 2",
        )
        _require(fitted["_y_ndim"] == 2 or n_outputs == 1, "1-d targets have one output")
    if not {"hidden_layer_sizes", "layers"} & set(_signature_defaults(cls)):  # a linear model
        _require(len(network.layers) == 1, f"a {cls.__name__} has a single Dense layer")
    return result


def _check_content(content: Mapping[str, Any], budget: int) -> _NetworkPlan | _EstimatorPlan:
    kind = content.get("type")
    _require(
        isinstance(kind, str) and (kind == "Sequential" or kind in MODEL_TYPES),
        f"unknown model type {kind!r}; known: {sorted(MODEL_TYPES)} and 'Sequential'",
    )
    _require(isinstance(content.get("handnet_version"), str), "handnet_version must be a string")
    assert isinstance(kind, str)
    if kind == "Sequential":
        _check_keys(content, "content", {"type", "handnet_version", "network"})
        return _check_network(content["network"])
    keys = {
        "type",
        "handnet_version",
        "params",
        "dropped_params",
        "network",
        "fitted",
        "training",
        "run",
    }
    _check_keys(content, "content", keys)
    cls = MODEL_TYPES[kind]
    fitted_content = content["fitted"]
    n_features = fitted_content.get("n_features_in_") if isinstance(fitted_content, dict) else None
    network = _check_network(content["network"], n_features if _is_int(n_features, 1) else None)
    names = set(cls._get_param_names())
    raw_params = content["params"]
    _require(isinstance(raw_params, dict), "params must be an object")
    unknown = sorted(set(raw_params) - names)
    _require(not unknown, f"params has entries {unknown} that {kind} does not take")
    dropped = content["dropped_params"]
    _require(
        isinstance(dropped, list)
        and all(isinstance(n, str) and n in names and n not in raw_params for n in dropped),
        "dropped_params must list hyperparameter names not in params",
    )
    params = {name: _decode_param(value, name) for name, value in raw_params.items()}
    fitted = _check_fitted(content["fitted"], cls, network, budget)
    training = content["training"]
    if training is not None:
        defaults = {n: p.default for n, p in _signature_defaults(cls).items()}
        chosen = resolve_optimizer(
            *(
                params.get(name, defaults.get(name))
                for name in ("optimizer", "batch_size", "learning_rate", "schedule", "clip_norm")
            )
        )
        optimizer_type = _optimizer_type_name(chosen)
        schedule_type = _schedule_type_name(params.get("schedule", defaults.get("schedule")))
        try:
            # The configured optimizer says what state it keeps (its settings may decide).
            configured = chosen.build() if isinstance(chosen, _ObjectSpec) else None
            check_trainer_state(
                training, network.parameters.size, network.dtype, optimizer_type, schedule_type,
                configured,
            )
        except (ValueError, TypeError) as error:
            raise _Invalid(str(error)) from None
    run = content["run"]
    if run is not None:
        _require(training is not None, "run information without training state")
        _check_keys(run, "run", {"validation_index", "fingerprint"})
        split = run["validation_index"]
        _require(
            split is None
            or (isinstance(split, np.ndarray) and split.ndim == 1 and split.dtype == np.int64),
            "run.validation_index must be a 1-d int64 array",
        )
        fingerprint = run["fingerprint"]
        _require(
            fingerprint is None
            or (isinstance(fingerprint, str) and _HEX64.fullmatch(fingerprint) is not None),
            "run.fingerprint must be a hex SHA-256",
        )
    return _EstimatorPlan(cls, network, params, fitted, training, run, raw_params)


def _signature_defaults(cls: type) -> Mapping[str, inspect.Parameter]:
    return inspect.signature(cls).parameters


# --- building -----------------------------------------------------------------------------


def _build_sequential(plan: _NetworkPlan) -> Sequential:
    layers = [LAYERS[config["type"]].from_config(config, plan.dtype) for config in plan.layers]
    network = Sequential(layers)
    plan.restore_into(network)
    return network


def _layer_summary(configs: Sequence[Mapping[str, Any]]) -> str:
    """``Dense(3, 4) -> Activation('relu') -> ...``: layer configs, short."""
    parts = []
    for config in configs:
        arguments = ", ".join(repr(v) for k, v in config.items() if k != "type")
        parts.append(f"{config.get('type')}({arguments})")
    return " -> ".join(parts)


def _expected_parameter_count(model: _NetworkEstimator, n_features: int, n_outputs: int) -> int:
    hidden = model._hidden_layers()
    _require(
        all(_is_int(width, 1, MAX_LAYER_WIDTH) for width in hidden),
        f"hidden_layer_sizes {hidden!r} are not positive integers",
    )
    total, n_in = 0, n_features
    for width in (*hidden, n_outputs):
        total += (n_in + 1) * width
        n_in = width
    return total


def _build_estimator(plan: _EstimatorPlan) -> _NetworkEstimator:
    fitted = plan.fitted
    n_features = fitted["n_features_in_"]
    assert plan.network.output_shape is not None
    n_outputs = plan.network.output_shape[0]
    # Compare sizes before building from the hyperparameters, so that a file
    # whose hyperparameters claim huge layers is refused without allocating them.
    if "layers" in plan.params:
        _check_layer_specs(plan.params["layers"], plan.network.layers)
    params = {name: _build_param(value) for name, value in plan.params.items()}
    model = plan.cls(**params)
    if not hasattr(model, "layers"):
        _require(
            _expected_parameter_count(model, n_features, n_outputs)
            == plan.network.parameters.size,
            "the hyperparameters describe a network of another size than the stored one",
        )
    if "_sample_shape" in fitted:
        model._sample_shape = fitted["_sample_shape"]
    model._rng = np.random.default_rng(0)  # draws the throwaway initial weights
    network = model._build_network(n_features, n_outputs, plan.network.dtype)
    _require(
        network.config() == plan.network.layers,
        f"the hyperparameters describe the layers {_layer_summary(network.config())} but the "
        f"file holds {_layer_summary(plan.network.layers)}",
    )
    plan.network.restore_into(network)
    model.network_ = network
    model._dtype = plan.network.dtype
    for name, value in fitted.items():
        setattr(model, name, value)
    model._fitted = True
    rng = (
        np.random.default_rng(model.random_state if _is_int(model.random_state) else None)
        if plan.training is None
        else check_rng_state(plan.training["rng"])
    )
    model._rng = rng
    network.set_random_state(rng)
    trainer = model._make_trainer(network, model._loss(), ())
    if plan.training is not None:
        trainer.load_state_dict(plan.training)
        trainer._resuming = False  # a plain load starts its next fit afresh
        model.history_ = trainer.history
    else:
        model.history_ = History(
            loss=list(model.loss_curve_), validation_score=list(model.validation_scores_ or [])
        )
    model._rng = trainer.rng
    model._trainer = trainer
    if plan.training is not None and plan.run is not None:
        # What the file knows of its run (the data's fingerprint, the held-out rows)
        # stays with the model, so that save() of the loaded model can still be resumed.
        run = CheckpointRun(None, None, None, None)
        run.fingerprint = plan.run["fingerprint"]
        index = plan.run["validation_index"]
        run.validation_index = None if index is None else np.asarray(index, dtype=np.intp)
        model.__dict__["_checkpoint_run"] = run
    return model


def load(path: PathLike) -> Any:
    """Read a model or network that :func:`save` wrote.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    LogisticRegression, SoftmaxRegression, MLPClassifier, MLPRegressor or Sequential
        Predicts bit for bit what the saved object did. A model saved with its
        training state continues training exactly (``partial_fit``; or
        ``fit(X, y, resume=path)`` to finish an interrupted ``fit``).

    Raises
    ------
    ModelFileError
        The file is missing, unreadable, truncated, corrupted, edited, of an
        unknown format version or type, or inconsistent in any way; the message
        says what is wrong. Nothing is built (and no code from the file runs)
        before every check has passed.
    """
    target = os.fspath(path)
    plan = _read_plan(target)
    try:
        if isinstance(plan, _NetworkPlan):
            return _build_sequential(plan)
        return _build_estimator(plan)
    except _Invalid as error:
        raise _bad(target, str(error)) from None
    except (ValueError, TypeError) as error:
        # A hyperparameter the model's own checks refuse (e.g. an unknown
        # activation name); nothing half-built escapes.
        raise _bad(target, f"the hyperparameters do not describe a valid model ({error})") from None


def _read_plan(path: str) -> _NetworkPlan | _EstimatorPlan:
    content, budget = _read_archive(path)
    try:
        return _check_content(content, budget)
    except _Invalid as error:
        raise _bad(path, str(error)) from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as error:
        # Every field is checked before use; this net only turns a check that
        # was missed into the documented error instead of a traceback.
        raise _bad(path, f"malformed content ({type(error).__name__}: {error})") from None


# --- checkpoints during fit -----------------------------------------------------------------


def data_fingerprint(arrays: Sequence[NDArray[Any] | None]) -> str:
    """A SHA-256 over the dtypes, shapes and bytes of ``arrays`` (``None`` counts too)."""
    digest = hashlib.sha256()
    for array in arrays:
        if array is None:
            digest.update(b"none;")
            continue
        data = _little_endian(np.asarray(array)) if np.asarray(array).dtype.kind != "O" else None
        if data is None:
            digest.update(repr(np.asarray(array).tolist()).encode())
            continue
        digest.update(f"{data.dtype.str}{data.shape};".encode())
        digest.update(data.data)
    return digest.hexdigest()


class CheckpointRun:
    """The checkpoint and resume side of one ``fit`` call (used by the models).

    ``fit(..., checkpoint=path, checkpoint_every=k, resume=...)`` creates one;
    it reads and checks the file to resume from (before anything is trained),
    restores the run into the model and its trainer, and gives the trainer the
    hook that writes checkpoints.
    """

    def __init__(
        self,
        checkpoint: str | None,
        checkpoint_every: int | None,
        resume_from: str | None,
        plan: _EstimatorPlan | None,
    ) -> None:
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.resume_from = resume_from
        self.plan = plan
        #: Whether this fit continues a saved run (read by ``fit`` before training).
        self.resuming = plan is not None
        self.validation_index: NDArray[np.intp] | None = None
        self.fingerprint: str | None = None
        #: The data of an in-memory fit without a checkpoint, until finish() decides.
        self._unhashed: Sequence[NDArray[Any] | None] | None = None

    @classmethod
    def start(
        cls,
        model: _NetworkEstimator,
        checkpoint: PathLike | None,
        checkpoint_every: int | None,
        resume: PathLike | bool | None,
    ) -> CheckpointRun:
        """Check the arguments, that the checkpoint can be written, and read the file to resume.

        Everything here happens before any training: a checkpoint path that cannot
        be written raises ``OSError`` naming it; a file to resume from must hold the
        training data's fingerprint and the same hyperparameters (only ``max_iter``
        and ``verbose`` may change).
        """
        if checkpoint_every is not None:
            if isinstance(checkpoint_every, bool) or not isinstance(
                checkpoint_every, (int, np.integer)
            ):
                raise TypeError(f"checkpoint_every must be an integer, got {checkpoint_every!r}")
            if checkpoint_every < 1:
                raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every!r}")
            if checkpoint is None:
                raise ValueError("checkpoint_every needs checkpoint=PATH, the file to write")
        path = None if checkpoint is None else os.fspath(checkpoint)
        if path is not None:
            # Before anything is trained: a checkpoint that cannot be written
            # would otherwise fail only after the first epoch.
            check_writable(path, "checkpoint")
        source: str | None = None
        if resume is True:
            if path is None:
                raise ValueError("resume=True resumes from checkpoint=PATH, which is missing")
            # Resume if a previous run left a checkpoint, else start afresh: the same
            # call works for the first run and for every restart.
            source = path if os.path.exists(path) else None
        elif resume is not None and resume is not False:
            source = os.fspath(resume)
        plan = None
        if source is not None:
            read = _read_plan(source)
            if not isinstance(read, _EstimatorPlan) or read.cls is not type(model):
                found = (
                    "a Sequential network"
                    if isinstance(read, _NetworkPlan)
                    else (f"a {read.cls.__name__}")
                )
                raise ModelFileError(
                    f"{source!r} holds {found}; it cannot resume a {type(model).__name__}"
                )
            if read.training is None:
                raise ModelFileError(
                    f"{source!r} was saved without its training state "
                    "(training_state=False): there is nothing to resume"
                )
            if read.run is None or read.run["fingerprint"] is None:
                raise ModelFileError(
                    f"{source!r} holds no fingerprint of the data its run was trained on, so "
                    "resuming could not check that the data is the same (save() records it "
                    "only for a fit that was interrupted, and fit(..., checkpoint=PATH) "
                    "always; a finished fit saved with save(), an out-of-core fit without "
                    "checkpoint=PATH and files of older handnet have none): continue it with "
                    "load() and partial_fit or warm_start, or train again with fit(..., "
                    "checkpoint=PATH), whose file can be resumed"
                )
            _compare_params(model, read, source)
            plan = read
        every = None if checkpoint_every is None else int(checkpoint_every)
        return cls(path, every, source, plan)

    def validation_split(
        self, split: Callable[[Any, int], tuple[NDArray[np.intp], NDArray[np.intp]]]
    ) -> Callable[[Any, int], tuple[NDArray[np.intp], NDArray[np.intp]]]:
        """``split`` (the model's early-stopping split), or the resumed run's split."""

        def wrapped(y: Any, n_samples: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
            stored = (
                None
                if self.plan is None or self.plan.run is None
                else (self.plan.run["validation_index"])
            )
            if stored is not None:
                if len(stored) and (stored.min() < 0 or stored.max() >= n_samples):
                    raise ValueError(
                        f"the checkpoint's early-stopping split does not fit {n_samples} "
                        "samples: resume with the data the run was started on"
                    )
                val_index = stored.astype(np.intp)
                mask = np.ones(n_samples, dtype=bool)
                mask[val_index] = False
                train_index = np.flatnonzero(mask)
            else:
                train_index, val_index = split(y, n_samples)
            self.validation_index = val_index
            return train_index, val_index

        return wrapped

    def attach(
        self,
        model: _NetworkEstimator,
        trainer: Trainer,
        data: Sequence[NDArray[Any] | None],
        n_rows: int,
    ) -> None:
        """Restore a resumed run into ``model`` and ``trainer``; set up checkpoints.

        ``data`` is the training data as validated and encoded (features,
        targets, weights, validation set): its fingerprint is stored in every
        checkpoint and compared with the one of the run being resumed.
        ``n_rows`` is the number of rows an epoch visits (for ``t_``).
        """
        plan = self.plan
        in_memory = bool(data) and isinstance(data[0], np.ndarray)
        if self.checkpoint is not None or plan is not None:
            self.fingerprint = data_fingerprint(data)
        elif in_memory:
            # Hashed only if the fit is interrupted (finish): save() then writes a file
            # that resume can check, and an uninterrupted fit pays no pass over its data.
            self._unhashed = data
        if plan is not None:
            self._restore(model, trainer, plan, int(n_rows) if in_memory else None)
            self.plan = None  # restored: the file's arrays need not stay in memory
        self._model = model
        self._start_epoch = trainer.epoch
        self._start_scores = len(trainer.history.validation_score)
        self._n_rows = int(n_rows)
        # For save() after fit: a file of an interrupted run can then be resumed.
        model.__dict__["_checkpoint_run"] = self
        # A trainer that partial_fit reuses must not keep an earlier fit's hook.
        trainer.checkpoint = self._write if self.checkpoint is not None else None
        trainer.checkpoint_every = self.checkpoint_every

    def _restore(
        self,
        model: _NetworkEstimator,
        trainer: Trainer,
        plan: _EstimatorPlan,
        n_rows: int | None,
    ) -> None:
        """Restore ``plan`` after checking it against this fit's data.

        ``n_rows`` is the number of rows an epoch visits for in-memory data
        (``None`` for out-of-core data, whose interrupted epoch lists blocks:
        the trainer checks those against the blocks).
        """
        source = self.resume_from
        network = model.network_
        if network.dtype != plan.network.dtype:
            raise ValueError(
                f"the run in {source!r} trained in {plan.network.dtype}, but X is "
                f"{network.dtype}: resume with the data the run was started on"
            )
        if network.config() != plan.network.layers:
            raise ValueError(
                f"the network in {source!r} has layers {plan.network.layers}, but this data "
                f"gives {network.config()}: resume with the data the run was started on"
            )
        stored = None if plan.run is None else plan.run["fingerprint"]
        if stored is not None and stored != self.fingerprint:
            raise ValueError(
                f"the data differs from the data the run in {source!r} was trained on: "
                "resume with the same X, y, sample_weight and validation_data"
            )
        fitted = plan.fitted
        classes = np.asarray(getattr(model, "classes_", None))
        if "classes_" in fitted and not np.array_equal(fitted["classes_"], classes):
            raise ValueError(
                f"the run in {source!r} has classes {fitted['classes_'].tolist()}, but y has "
                f"{classes.tolist()}"
            )
        assert plan.training is not None
        history = plan.training["history"]
        if history["validation_score"] and not history.get("validation_loss"):
            # Written when early stopping watched the validation accuracy: its counter
            # and best value are an accuracy's, not the validation loss's it now watches.
            raise ModelFileError(
                f"cannot resume from {source!r}: its run was written by an older handnet whose "
                "early stopping watched the validation accuracy, and cannot continue under "
                "today's rule (the validation loss); load() it to use the model, or start "
                "the fit afresh"
            )
        try:
            if n_rows is not None:
                # The interrupted epoch's order indexes the rows (by compiled
                # kernels too, unchecked): it must be a permutation of them.
                check_epoch_order(plan.training["progress"], np.arange(n_rows))
            trainer.load_state_dict(plan.training)
            plan.network.restore_into(network)
        except (ValueError, _Invalid) as error:
            raise ModelFileError(f"cannot resume from {source!r}: {error}") from None
        model._rng = trainer.rng
        for name in ("loss_curve_", "validation_scores_", "t_", "n_iter_"):
            value = fitted[name]
            setattr(model, name, list(value) if isinstance(value, list) else value)
        for name in ("best_loss_", "best_validation_score_", "best_epoch_"):
            if name in fitted:
                setattr(model, name, fitted[name])
        validation_losses = fitted.get("validation_loss_curve_")
        model.validation_loss_curve_ = (
            None if validation_losses is None else list(validation_losses)
        )
        if model.validation_scores_ is None and trainer.history.validation_score:
            model.validation_scores_ = []
            model.validation_loss_curve_ = []

    def finish(self, trainer: Trainer) -> None:
        """When ``fit`` ends: fingerprint the data of an interrupted run, then let it go.

        The run stays with the model (for ``save``), which must not keep the training
        data alive, nor pay a pass over it when nothing will resume from it.
        """
        data, self._unhashed = self._unhashed, None
        if data is not None and trainer.interrupted and self.fingerprint is None:
            self.fingerprint = data_fingerprint(data)

    def remaining_epochs(self, model: _NetworkEstimator, trainer: Trainer) -> int:
        """Epochs left for this fit: all of ``max_iter``, or what a resumed run lacks."""
        if not self.resuming:
            return int(model.max_iter)
        if trainer.converged and not trainer.interrupted:
            return 0
        return max(int(model.max_iter) - trainer.epoch, 0)

    def _fitted_now(self, model: _NetworkEstimator, trainer: Trainer) -> dict[str, Any]:
        """The fitted attributes as ``fit`` will leave them, at this point of the run.

        ``fit`` updates them when training ends; a checkpoint written before
        that combines the model's values from before the run with the trainer's.
        """
        history = trainer.history
        done = trainer.epoch - self._start_epoch
        losses = [float(v) for v in model.loss_curve_]
        losses += [float(v) for v in history.loss[len(history.loss) - done :]] if done else []
        fitted: dict[str, Any] = {
            "loss_curve_": losses,
            "n_iter_": trainer.epoch,
            "t_": int(model.t_) + done * self._n_rows,
        }
        if losses:
            fitted["best_loss_"] = min(losses)
        scores = model.validation_scores_
        validation_losses = None
        if scores is not None:
            scores = [float(v) for v in scores]
            scores += [float(v) for v in history.validation_score[self._start_scores :]]
            earlier = getattr(model, "validation_loss_curve_", None) or []
            validation_losses = [float(v) for v in earlier]
            validation_losses += [
                float(v) for v in history.validation_loss[self._start_scores :]
            ]
            if len(validation_losses) != len(scores):
                validation_losses = None
            elif not trainer.finished:
                fitted["best_epoch_"] = fitted["best_validation_score_"] = None
            elif history.best_epoch is not None:
                # The epoch this fit keeps, its parameters restored by now (see
                # _NetworkEstimator._record_best_epoch); before the end a checkpoint
                # holds the current parameters and names no kept epoch.
                best = len(validation_losses) - len(history.validation_loss) + history.best_epoch
                fitted["best_epoch_"] = best
                fitted["best_validation_score_"] = scores[best - 1]
        fitted["validation_scores_"] = scores
        fitted["validation_loss_curve_"] = validation_losses
        return fitted

    def _write(self, trainer: Trainer) -> str:
        model = self._model
        assert self.checkpoint is not None
        arrays: dict[str, NDArray[Any]] = {}
        content = _describe(model, arrays, True, self._fitted_now(model, trainer), self)
        _write_atomic(self.checkpoint, content, arrays)
        return (
            f"Checkpoint saved to {self.checkpoint!r} (epoch {trainer.epoch}); continue with "
            f"fit(X, y, checkpoint={self.checkpoint!r}, resume=True)."
        )

    _model: _NetworkEstimator
    _start_epoch: int
    _start_scores: int
    _n_rows: int


def _normalized(value: Any) -> Any:
    """An encoded hyperparameter with tuples as lists (``(10,)`` and ``[10]`` agree)."""
    if isinstance(value, dict):
        if set(value) == {"$tuple"}:
            return _normalized(value["$tuple"])
        return {k: _normalized(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


def _compare_params(model: _NetworkEstimator, plan: _EstimatorPlan, source: str) -> None:
    mine, _ = _encode_params(model)
    theirs = plan.raw_params
    different = sorted(
        name
        for name in set(mine) | set(theirs)
        if name not in _RESUMABLE_DIFFERENCES
        and _normalized(mine.get(name)) != _normalized(theirs.get(name))
    )
    if different:
        details = ", ".join(
            f"{name}={theirs.get(name)!r} there but {mine.get(name)!r} here" for name in different
        )
        raise ValueError(
            f"cannot resume from {source!r}: the run was trained with other hyperparameters "
            f"({details}). Resume with the same settings (only max_iter and verbose may change)."
        )
