"""Hyperparameters in a model file: encoding ``get_params`` as JSON and decoding it back.

A hyperparameter is written as JSON: tuples, dicts, and optimizer, schedule and
layer objects as tagged objects such as ``{"$optimizer": "Adam", "settings":
{"learning_rate": 0.001, ...}}`` (:func:`_encode_param`). Reading one back
(:func:`_decode_param`) checks its form and turns each tagged object into an
:class:`_ObjectSpec`: a class from handnet's registries and its settings (data
only), built only after every check of the file has passed (:func:`_build_param`).
A ``layers`` hyperparameter is checked against the stored network before any
layer is built (:func:`_check_layer_specs`).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..nn.layers import LAYERS, Layer
from ..optim.optimizers import OPTIMIZERS, Optimizer
from ..optim.schedules import SCHEDULES, Schedule
from ..training.state import optimizer_types, schedule_types
from .format import MAX_LAYERS, MAX_SETTING_LENGTH, _Invalid, _is_number, _require

#: A handnet estimator (:mod:`handnet.models`), typed loosely: :mod:`handnet.models`
#: imports this package (checkpoints), so this package does not import it.
_NetworkEstimator = Any

#: Constructor arguments of a layer that a model file does not keep: the estimator
#: draws the initial values from its own generator and sets the dtype from the data.
_LAYER_RUNTIME_ARGUMENTS = frozenset({"random_state", "dtype"})


# --- encoding -----------------------------------------------------------------------------


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
    """A hyperparameter as JSON (tuples, dicts, optimizers and schedules tagged).

    NumPy values are written as the Python values they stand for: an array as a list,
    a NumPy scalar as a number or a bool.

    Raises
    ------
    _Unencodable
        ``value`` holds something JSON cannot (a ``Generator`` as ``random_state``).
    ValueError
        An optimizer, schedule or layer of a class the registries do not know.
    """
    if isinstance(value, tuple):
        return {"$tuple": [_encode_param(v) for v in value]}
    if isinstance(value, list):
        return [_encode_param(v) for v in value]
    if isinstance(value, np.ndarray):
        # fit reads an array (hidden_layer_sizes=np.array([6, 3])) as the sequence of
        # values it holds: written as that list, it loads as a model of the same network.
        return _encode_param(value.tolist())
    if isinstance(value, dict):
        return {"$dict": [[_encode_scalar(k), _encode_param(v)] for k, v in value.items()]}
    if isinstance(value, Optimizer):
        name, settings = _encode_object(value, optimizer_types(), "optimizer")
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
                f"it first (handnet.nn.layers.LAYERS.register({name!r}, ...))"
            )
        settings = {
            k: _encode_param(getattr(value, k))
            for k in _init_argument_names(type(value))
            if k not in _LAYER_RUNTIME_ARGUMENTS
        }
        return {"$layer": name, "settings": settings}
    if isinstance(value, Schedule):
        name, settings = _encode_object(value, schedule_types(), "schedule")
        return {"$schedule": name, "settings": settings}
    return _encode_scalar(value)


def _encode_object(
    value: Any, registry: Mapping[str, type], kind: str
) -> tuple[str, dict[str, Any]]:
    """The registered name and the settings of an optimizer or schedule (``kind``)."""
    name = type(value).__name__
    if registry.get(name) is not type(value):
        raise ValueError(
            f"cannot save a model whose {kind} is a {type(value).__qualname__}: a model "
            f"file can only describe handnet's own {kind}s {sorted(registry)}"
        )
    return name, {k: _encode_scalar(getattr(value, k)) for k in _init_argument_names(type(value))}


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


# --- decoding -----------------------------------------------------------------------------


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


# --- building -----------------------------------------------------------------------------


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
