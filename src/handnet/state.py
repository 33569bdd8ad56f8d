"""What a training checkpoint holds, and the checks it must pass before it is used.

:meth:`handnet.training.Trainer.state_dict` describes a run in progress (epoch,
history, stopping counters, the random generator's state, the optimizer's and
the schedule's state); a checkpoint file stores it (:mod:`handnet.io`). A file
can be corrupted or crafted, so :func:`check_trainer_state` validates every
field (types, sizes, dtypes, finite values, known class names) before anything
is restored, and :func:`check_rng_state` rebuilds only NumPy's own bit
generators. The training loop itself stays free of this bookkeeping.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import numpy as np
from numpy.typing import NDArray

from .optimizers import LBFGS, OPTIMIZERS, Optimizer
from .schedules import SCHEDULES, Schedule

Array = NDArray[np.floating]


#: Bit generators whose state a checkpoint may restore (NumPy's own, nothing else).
BIT_GENERATORS: dict[str, Callable[[], np.random.BitGenerator]] = {
    "PCG64": np.random.PCG64,
    "PCG64DXSM": np.random.PCG64DXSM,
    "MT19937": np.random.MT19937,
    "Philox": np.random.Philox,
    "SFC64": np.random.SFC64,
}

#: Optimizer classes by class name (the update rules of :mod:`handnet.optimizers`).
OPTIMIZER_TYPES: dict[str, type[Optimizer] | type[LBFGS]] = {
    **{cls.__name__: cls for cls in OPTIMIZERS.values()},
    "LBFGS": LBFGS,
}

#: Schedule classes by class name.
SCHEDULE_TYPES: dict[str, type[Schedule]] = {cls.__name__: cls for cls in SCHEDULES.values()}

_STATE_KEYS = {
    "epoch",
    "converged",
    "interrupted",
    "finished",
    "initial_learning_rate",
    "history",
    "stopping",
    "rng",
    "optimizer",
    "schedule",
    "progress",
}


def _fail(where: str, problem: str) -> NoReturn:
    field_name = f" field {where!r}" if where else ""
    raise ValueError(f"trainer state{field_name} {problem}")


def _check_keys(value: Any, where: str, expected: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        _fail(where, f"must be a mapping, got {type(value).__name__}")
    keys = set(value)
    if keys != expected:
        missing, extra = sorted(expected - keys), sorted(map(str, keys - expected))
        _fail(where, f"has missing keys {missing} and unexpected keys {extra}")
    return value


def _check_int(value: Any, where: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        _fail(where, f"must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_float(value: Any, where: str, finite: bool = True, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        _fail(where, f"must be a number, got {value!r}")
    number = float(value)
    if finite and not math.isfinite(number):
        _fail(where, f"must be finite, got {number!r}")
    if positive and not number > 0:
        _fail(where, f"must be positive, got {number!r}")
    return number


def _check_bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        _fail(where, f"must be true or false, got {value!r}")
    return bool(value)


def _check_vector(value: Any, where: str, size: int, dtype: np.dtype[Any]) -> Array:
    if not isinstance(value, np.ndarray):
        _fail(where, f"must be an array, got {type(value).__name__}")
    if value.shape != (size,) or value.dtype != dtype:
        got = f"{value.shape} {value.dtype}"
        _fail(where, f"must have shape ({size},) and dtype {dtype}, got {got}")
    if not np.isfinite(value).all():
        _fail(where, "holds NaN or infinite values")
    return value


def _check_float_list(value: Any, where: str) -> list[float]:
    if not isinstance(value, list):
        _fail(where, f"must be a list, got {type(value).__name__}")
    return [_check_float(v, f"{where}[{i}]", finite=False) for i, v in enumerate(value)]


def check_rng_state(state: Any, where: str = "rng") -> np.random.Generator:
    """A new generator in ``state`` (a ``bit_generator.state`` dict), or ``ValueError``.

    Only NumPy's own bit generators (:data:`BIT_GENERATORS`) are accepted; their
    ``state`` setters check the contents.
    """
    if not isinstance(state, Mapping):
        _fail(where, f"must be a mapping, got {type(state).__name__}")
    name = state.get("bit_generator")
    if not isinstance(name, str) or name not in BIT_GENERATORS:
        _fail(where, f"names an unknown bit generator {name!r}; known: {sorted(BIT_GENERATORS)}")
    bit_generator = BIT_GENERATORS[name]()
    try:
        bit_generator.state = dict(state)
    except (ValueError, TypeError, KeyError, OverflowError, IndexError) as error:
        _fail(where, f"is not a valid {name} state ({error})")
    return np.random.Generator(bit_generator)


def _expected_optimizer_keys(cls: type[Optimizer]) -> set[str]:
    # The per-parameter state an update rule keeps is whatever its _init_state
    # creates (minus Adam's scratch buffer, which state_dict leaves out).
    probe = cls.__new__(cls)
    return set(probe._init_state(np.zeros(1))) - {"buffer"}


def check_trainer_state(
    state: Any,
    n_parameters: int,
    dtype: np.dtype[Any],
    optimizer_type: str | None = None,
    schedule_type: str | None = None,
) -> None:
    """Raise ``ValueError`` unless ``state`` is a valid :meth:`Trainer.state_dict`.

    Checks every key, type, shape and dtype against a network of
    ``n_parameters`` parameters of ``dtype`` (and, if given, the optimizer and
    schedule class names), without changing anything.
    """
    state = _check_keys(state, "", _STATE_KEYS)
    epoch = _check_int(state["epoch"], "epoch")
    for name in ("converged", "interrupted", "finished"):
        _check_bool(state[name], name)
    _check_float(state["initial_learning_rate"], "initial_learning_rate", positive=True)
    history_keys = {"loss", "validation_score", "learning_rate", "validation_loss"}
    history = state["history"]
    if isinstance(history, Mapping) and "validation_loss" not in history:
        # Written before the validation loss was recorded: none, as it was then.
        history = {**history, "validation_loss": []}
    history = _check_keys(history, "history", history_keys)
    losses = _check_float_list(history["loss"], "history.loss")
    rates = _check_float_list(history["learning_rate"], "history.learning_rate")
    scores = _check_float_list(history["validation_score"], "history.validation_score")
    validation_losses = _check_float_list(history["validation_loss"], "history.validation_loss")
    if not len(losses) == len(rates) == epoch or len(scores) > epoch:
        _fail("history", f"does not have one entry per epoch ({epoch} epochs)")
    if validation_losses and len(validation_losses) != len(scores):
        _fail("history.validation_loss", "must have one entry per validation score")
    stopping = _check_keys(
        state["stopping"],
        "stopping",
        {"no_improvement", "best_loss", "best_score", "best_parameters"},
    )
    _check_int(stopping["no_improvement"], "stopping.no_improvement")
    _check_float(stopping["best_loss"], "stopping.best_loss", finite=False)
    _check_float(stopping["best_score"], "stopping.best_score", finite=False)
    if stopping["best_parameters"] is not None:
        _check_vector(stopping["best_parameters"], "stopping.best_parameters", n_parameters, dtype)
    check_rng_state(state["rng"])
    _check_optimizer_state(state["optimizer"], n_parameters, dtype, optimizer_type)
    schedule = _check_keys(state["schedule"], "schedule", {"type", "state"})
    kind = schedule["type"]
    if (
        not isinstance(kind, str)
        or kind not in SCHEDULE_TYPES
        or (schedule_type is not None and kind != schedule_type)
    ):
        _fail("schedule.type", f"is {kind!r}, expected {schedule_type or sorted(SCHEDULE_TYPES)}")
    # A schedule's state holds the keys a fresh one's does (only ReduceOnPlateau has any).
    expected_keys = set(SCHEDULE_TYPES[kind]().state_dict())
    values = _check_keys(schedule["state"], "schedule.state", expected_keys)
    for key, value in values.items():
        _check_float(value, f"schedule.state.{key}", finite=False)
    progress = state["progress"]
    if progress is not None:
        progress = _check_keys(progress, "progress", {"order", "position", "total", "weight_total"})
        order = progress["order"]
        if order is not None and not (
            isinstance(order, np.ndarray) and order.ndim == 1 and order.dtype == np.int64
        ):
            _fail("progress.order", "must be a 1-d int64 array or null")
        _check_int(progress["position"], "progress.position", low=1)
        _check_float(progress["total"], "progress.total")
        _check_float(progress["weight_total"], "progress.weight_total")


def _check_optimizer_state(
    state: Any, n_parameters: int, dtype: np.dtype[Any], expected_type: str | None
) -> None:
    if not isinstance(state, Mapping):
        _fail("optimizer", f"must be a mapping, got {type(state).__name__}")
    kind = state.get("type")
    if (
        not isinstance(kind, str)
        or kind not in OPTIMIZER_TYPES
        or (expected_type is not None and kind != expected_type)
    ):
        _fail("optimizer.type", f"is {kind!r}, expected {expected_type or sorted(OPTIMIZER_TYPES)}")
    cls = OPTIMIZER_TYPES[kind]
    if cls is LBFGS:
        keys = {"type", "iterations", "n_evaluations", "s", "y", "pending"}
        state = _check_keys(state, "optimizer", keys)
        _check_int(state["iterations"], "optimizer.iterations")
        _check_int(state["n_evaluations"], "optimizer.n_evaluations")
        s, y = state["s"], state["y"]
        for name, pairs in (("s", s), ("y", y)):
            if not (
                isinstance(pairs, np.ndarray)
                and pairs.ndim == 2
                and pairs.shape[1] == n_parameters
                and pairs.dtype == np.float64
                and np.isfinite(pairs).all()
            ):
                _fail(f"optimizer.{name}", f"must be a finite float64 array (k, {n_parameters})")
        if s.shape != y.shape:
            _fail("optimizer", f"s and y differ in shape: {s.shape} vs {y.shape}")
        pending = state["pending"]
        if pending is not None:
            if not (isinstance(pending, list) and len(pending) == 2):
                _fail("optimizer.pending", "must be null or [f, decrease]")
            for i, value in enumerate(pending):
                _check_float(value, f"optimizer.pending[{i}]")
        return
    assert issubclass(cls, Optimizer)
    state = _check_keys(state, "optimizer", {"type", "iterations", "learning_rate", "state"})
    _check_int(state["iterations"], "optimizer.iterations")
    _check_float(state["learning_rate"], "optimizer.learning_rate", positive=True)
    slots = state["state"]
    if not isinstance(slots, list) or len(slots) > 1:
        _fail("optimizer.state", "must be a list of at most one entry (the flat parameters)")
    expected = _expected_optimizer_keys(cls)
    for i, slot in enumerate(slots):
        slot = _check_keys(slot, f"optimizer.state[{i}]", expected)
        for key, value in slot.items():
            _check_vector(value, f"optimizer.state[{i}].{key}", n_parameters, dtype)


def copy_tree(value: Any) -> Any:
    """A deep copy in which NumPy scalars become Python numbers (arrays stay arrays)."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): copy_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [copy_tree(v) for v in value]
    return copy.copy(value)


