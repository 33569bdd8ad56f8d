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

from ..optim.optimizers import OPTIMIZERS, Optimizer, make_optimizer
from ..optim.schedules import SCHEDULES, Schedule

Array = NDArray[np.floating]


#: Bit generators whose state a checkpoint may restore (NumPy's own, nothing else).
BIT_GENERATORS: dict[str, Callable[[], np.random.BitGenerator]] = {
    "PCG64": np.random.PCG64,
    "PCG64DXSM": np.random.PCG64DXSM,
    "MT19937": np.random.MT19937,
    "Philox": np.random.Philox,
    "SFC64": np.random.SFC64,
}

def optimizer_types() -> dict[str, type[Optimizer]]:
    """Optimizer classes a file may name, by class name: those registered now.

    Read from :data:`handnet.optim.optimizers.OPTIMIZERS` at each call, so that an update rule
    a user registers is saved, loaded and resumed like the library's own.
    """
    return {cls.__name__: cls for cls in OPTIMIZERS.values()}


def schedule_types() -> dict[str, type[Schedule]]:
    """Schedule classes a file may name (:data:`handnet.optim.schedules.SCHEDULES`)."""
    return {cls.__name__: cls for cls in SCHEDULES.values()}

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
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits (not printed: it may be huge)
        _fail(where, "must be a number a float can hold, got a larger integer")
    if finite and not math.isfinite(number):
        _fail(where, f"must be finite, got {number!r}")
    if positive and not number > 0:
        _fail(where, f"must be positive, got {number!r}")
    return number


def _check_record(value: Any, where: str, start: float) -> float:
    """A best-so-far record: a finite number, or ``start``, the infinity it starts from.

    The stopping rule keeps the lowest loss with ``min`` and the highest score with
    ``max``, which never keep a NaN, and an epoch whose loss is not finite diverges
    first: NaN or the other infinity is no state a run reaches. A NaN best loss would
    make every later epoch no better, and a resumed run keep an old epoch's parameters.
    """
    number = _check_float(value, where, finite=False)
    if not (math.isfinite(number) or number == start):
        _fail(where, f"must be finite, or {start} before the first epoch, got {number!r}")
    return number


def _check_bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        _fail(where, f"must be true or false, got {value!r}")
    return bool(value)


def _check_array(
    value: Any, where: str, shape: tuple[int, ...], dtype: np.dtype[Any]
) -> Array:
    """A finite array of exactly ``shape`` and ``dtype``."""
    if not isinstance(value, np.ndarray):
        _fail(where, f"must be an array, got {type(value).__name__}")
    if value.shape != shape or value.dtype != dtype:
        _fail(where, f"must have shape {shape} and dtype {dtype}, got {value.shape} {value.dtype}")
    if not np.isfinite(value).all():
        _fail(where, "holds NaN or infinite values")
    return value


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


#: 2**32 and 2**64, 2**128: the ranges of the unsigned words a bit generator's state holds.
_U32, _U64, _U128 = 1 << 32, 1 << 64, 1 << 128

#: MT19937's state: 624 32-bit words and the position of the next one (624: regenerate).
_MT_WORDS = 624

#: The buffered outputs of Philox (4 words) and where the next one is read (4: refill).
_PHILOX_BUFFER = 4


def _rng_int(value: Any, where: str, high: int, low: int = 0) -> int:
    """A Python ``int`` in ``[low, high)``; NumPy's C setters would wrap or overflow others."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        _fail(where, f"must be an integer, got {type(value).__name__} {value!r}")
    number = int(value)
    if not low <= number < high:
        _fail(where, f"must be in [{low}, {high - 1}], got {number}")
    return number


def _rng_words(value: Any, where: str, length: int, high: int) -> NDArray[Any]:
    """``length`` integers in ``[0, high)`` as a ``uint32``/``uint64`` array (a copy)."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            _rng_int(item, f"{where}[{i}]", high)
        value = np.array([int(item) for item in value], dtype=object)
    if not isinstance(value, np.ndarray):
        _fail(where, f"must be an array of {length} integers, got {type(value).__name__}")
    if value.shape != (length,):
        _fail(where, f"must hold {length} words, got shape {value.shape}")
    if value.dtype.kind not in "iuO" or (
        value.dtype.kind == "O" and not all(isinstance(v, int) for v in value)
    ):
        _fail(where, f"must hold integers, got dtype {value.dtype}")
    if length and (int(value.min()) < 0 or int(value.max()) >= high):
        _fail(where, f"must hold integers in [0, {high - 1}]")
    return np.array(value, dtype=np.uint32 if high == _U32 else np.uint64)


def _rng_buffered_uint32(state: Mapping[str, Any], where: str) -> dict[str, int]:
    """``has_uint32`` (0 or 1) and ``uinteger`` (a buffered 32-bit half of a draw)."""
    return {
        "has_uint32": _rng_int(state["has_uint32"], f"{where}.has_uint32", 2),
        "uinteger": _rng_int(state["uinteger"], f"{where}.uinteger", _U32),
    }


def _checked_rng_state(name: str, state: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``state`` rebuilt from checked fields only (no extra keys, every value in range).

    NumPy's setters copy most fields straight into C structs: an MT19937 ``pos``
    or a Philox ``buffer_pos`` beyond its buffer makes the next draw read out of
    bounds (a crash, or heap memory in the random stream), so every field is
    checked here and nothing unchecked reaches them.
    """
    inner = f"{where}.state"
    if name in ("PCG64", "PCG64DXSM"):
        outer = _check_keys(state, where, {"bit_generator", "state", "has_uint32", "uinteger"})
        words = _check_keys(outer["state"], inner, {"state", "inc"})
        return {
            "bit_generator": name,
            "state": {
                "state": _rng_int(words["state"], f"{inner}.state", _U128),
                "inc": _rng_int(words["inc"], f"{inner}.inc", _U128),
            },
            **_rng_buffered_uint32(outer, where),
        }
    if name == "MT19937":
        outer = _check_keys(state, where, {"bit_generator", "state"})
        words = _check_keys(outer["state"], inner, {"key", "pos"})
        return {
            "bit_generator": name,
            "state": {
                "key": _rng_words(words["key"], f"{inner}.key", _MT_WORDS, _U32),
                "pos": _rng_int(words["pos"], f"{inner}.pos", _MT_WORDS + 1),
            },
        }
    if name == "Philox":
        keys = {"bit_generator", "state", "buffer", "buffer_pos", "has_uint32", "uinteger"}
        outer = _check_keys(state, where, keys)
        words = _check_keys(outer["state"], inner, {"counter", "key"})
        return {
            "bit_generator": name,
            "state": {
                "counter": _rng_words(words["counter"], f"{inner}.counter", 4, _U64),
                "key": _rng_words(words["key"], f"{inner}.key", 2, _U64),
            },
            "buffer": _rng_words(outer["buffer"], f"{where}.buffer", _PHILOX_BUFFER, _U64),
            "buffer_pos": _rng_int(outer["buffer_pos"], f"{where}.buffer_pos", _PHILOX_BUFFER + 1),
            **_rng_buffered_uint32(outer, where),
        }
    assert name == "SFC64"
    outer = _check_keys(state, where, {"bit_generator", "state", "has_uint32", "uinteger"})
    words = _check_keys(outer["state"], inner, {"state"})
    return {
        "bit_generator": name,
        "state": {"state": _rng_words(words["state"], f"{inner}.state", 4, _U64)},
        **_rng_buffered_uint32(outer, where),
    }


def check_rng_state(state: Any, where: str = "rng") -> np.random.Generator:
    """A new generator in ``state`` (a ``bit_generator.state`` dict), or ``ValueError``.

    Only NumPy's own bit generators (:data:`BIT_GENERATORS`) are accepted, and
    every field of their state is checked here (keys, types, lengths, the range
    of every word and position) before NumPy sees it: NumPy's setters trust
    positions such as MT19937's ``pos``, and a bad one makes a later draw read
    outside the generator's buffer.

    Parameters
    ----------
    state : mapping
        What ``Generator.bit_generator.state`` returned.
    where : str, default "rng"
        The field's name, for the error message.

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    ValueError
        ``state`` is not a valid state of a known bit generator; the message
        names the field.
    """
    return np.random.Generator(checked_bit_generator(state, where))


def checked_rng_state(state: Any, where: str = "rng") -> dict[str, Any]:
    """``state`` checked field by field and rebuilt from the checked values.

    What :func:`check_rng_state` checks, returned as a state dict that can be
    given to a bit generator of its kind (``bit_generator.state = ...``).
    """
    if not isinstance(state, Mapping):
        _fail(where, f"must be a mapping, got {type(state).__name__}")
    name = state.get("bit_generator")
    if not isinstance(name, str) or name not in BIT_GENERATORS:
        _fail(where, f"names an unknown bit generator {name!r}; known: {sorted(BIT_GENERATORS)}")
    return _checked_rng_state(name, state, where)


def checked_bit_generator(state: Any, where: str = "rng") -> np.random.BitGenerator:
    """A new bit generator in ``state``, checked by :func:`checked_rng_state`."""
    checked = checked_rng_state(state, where)
    bit_generator = BIT_GENERATORS[checked["bit_generator"]]()
    try:
        bit_generator.state = checked
    except (ValueError, TypeError, KeyError, OverflowError, IndexError) as error:
        # A second line of defence: NumPy's own checks, should ours miss one.
        _fail(where, f"is not a valid {checked['bit_generator']} state ({error})")
    return bit_generator


def check_trainer_state(
    state: Any,
    n_parameters: int,
    dtype: np.dtype[Any],
    optimizer_type: str | None = None,
    schedule_type: str | None = None,
    optimizer: Optimizer | None = None,
    n_buffer_values: int = 0,
) -> None:
    """Raise ``ValueError`` unless ``state`` is a valid :meth:`Trainer.state_dict`.

    Checks every key, type, shape and dtype against a network of
    ``n_parameters`` parameters of ``dtype`` and ``n_buffer_values`` buffer values
    (``Sequential.n_buffer_values``: the early-stopping best epoch's running
    statistics), and, if given, the optimizer and schedule class names, without
    changing anything.
    """
    state = _check_keys(state, "", _STATE_KEYS)
    epoch = _check_int(state["epoch"], "epoch")
    for name in ("converged", "interrupted", "finished"):
        _check_bool(state[name], name)
    _check_float(state["initial_learning_rate"], "initial_learning_rate", positive=True)
    history_keys = {
        "loss", "validation_score", "learning_rate", "validation_loss", "data_loss", "time",
    }
    history = state["history"]
    if isinstance(history, Mapping):
        # Written before the validation loss, the data loss or the time were
        # recorded: none, as it was then.
        history = {"validation_loss": [], "data_loss": [], "time": [], **history}
    history = _check_keys(history, "history", history_keys)
    losses = _check_float_list(history["loss"], "history.loss")
    rates = _check_float_list(history["learning_rate"], "history.learning_rate")
    scores = _check_float_list(history["validation_score"], "history.validation_score")
    validation_losses = _check_float_list(history["validation_loss"], "history.validation_loss")
    if not len(losses) == len(rates) == epoch or len(scores) > epoch:
        _fail("history", f"does not have one entry per epoch ({epoch} epochs)")
    if validation_losses and len(validation_losses) != len(scores):
        _fail("history.validation_loss", "must have one entry per validation score")
    for name in ("data_loss", "time"):
        if len(_check_float_list(history[name], f"history.{name}")) > epoch:
            _fail(f"history.{name}", f"has more entries than epochs ({epoch})")
    stopping = state["stopping"]
    if isinstance(stopping, Mapping) and "best_buffers" not in stopping:
        # Written before the best epoch's buffers were kept: none, as it was then.
        stopping = {**stopping, "best_buffers": None}
    stopping = _check_keys(
        stopping,
        "stopping",
        {"no_improvement", "best_loss", "best_score", "best_parameters", "best_buffers"},
    )
    _check_int(stopping["no_improvement"], "stopping.no_improvement")
    _check_record(stopping["best_loss"], "stopping.best_loss", math.inf)
    _check_record(stopping["best_score"], "stopping.best_score", -math.inf)
    if stopping["best_parameters"] is not None:
        _check_vector(stopping["best_parameters"], "stopping.best_parameters", n_parameters, dtype)
    if stopping["best_buffers"] is not None:
        if stopping["best_parameters"] is None or not n_buffer_values:
            _fail("stopping.best_buffers", "are given without best parameters or buffers to fit")
        _check_vector(stopping["best_buffers"], "stopping.best_buffers", n_buffer_values, dtype)
    check_rng_state(state["rng"])
    _check_optimizer_state(state["optimizer"], n_parameters, dtype, optimizer_type, optimizer)
    schedule = _check_keys(state["schedule"], "schedule", {"type", "state"})
    kind = schedule["type"]
    if (
        not isinstance(kind, str)
        or kind not in schedule_types()
        or (schedule_type is not None and kind != schedule_type)
    ):
        _fail("schedule.type", f"is {kind!r}, expected {schedule_type or sorted(schedule_types())}")
    # A schedule's state holds the keys a fresh one's does (only ReduceOnPlateau has any),
    # numbers in the ranges the schedule itself can reach (its own check_state_dict).
    fresh = schedule_types()[kind]()
    values = _check_keys(schedule["state"], "schedule.state", set(fresh.state_dict()))
    for key, value in values.items():
        _check_float(value, f"schedule.state.{key}", finite=False)
    try:
        fresh.check_state_dict(values)
    except (ValueError, TypeError) as error:
        _fail("schedule.state", f"is invalid: {error}")
    progress = state["progress"]
    if progress is not None:
        # The penalty's running mean (PenaltyMean) came later: optional.
        progress = _check_keys(
            {"penalty_total": 0.0, "penalty_weight": 0.0, "penalty_steps": 0, **progress}
            if isinstance(progress, Mapping) else progress,
            "progress",
            {"order", "position", "total", "weight_total", "penalty_total", "penalty_weight",
             "penalty_steps"},
        )
        order = progress["order"]
        if order is not None and not (
            isinstance(order, np.ndarray) and order.ndim == 1 and order.dtype == np.int64
        ):
            _fail("progress.order", "must be a 1-d int64 array or null")
        position = _check_int(progress["position"], "progress.position", low=1)
        if order is not None:
            # What can be checked without the data: distinct row (or block)
            # indices, none negative, and a position inside the order. That they
            # are exactly the data's rows is checked on resume (check_epoch_order).
            if len(order) and (int(order.min()) < 0 or len(np.unique(order)) != len(order)):
                _fail("progress.order", "must list distinct, non-negative row indices")
            if position > len(order):
                _fail("progress.position", f"is {position}, past the order's {len(order)} rows")
        _check_float(progress["total"], "progress.total")
        _check_float(progress["weight_total"], "progress.weight_total")
        _check_float(progress["penalty_total"], "progress.penalty_total")
        _check_float(progress["penalty_weight"], "progress.penalty_weight")
        _check_int(progress["penalty_steps"], "progress.penalty_steps")


def _check_optimizer_state(
    state: Any,
    n_parameters: int,
    dtype: np.dtype[Any],
    expected_type: str | None,
    optimizer: Optimizer | None = None,
) -> None:
    """The optimizer's part of a trainer state.

    An update rule's per-parameter state is checked against what the configured
    ``optimizer`` would keep for the flat parameter vector
    (:meth:`Optimizer.state_template`: any keys, shapes and dtypes it declares);
    without one, against a default instance of the named class.
    """
    if not isinstance(state, Mapping):
        _fail("optimizer", f"must be a mapping, got {type(state).__name__}")
    kind = state.get("type")
    if (
        not isinstance(kind, str)
        or kind not in optimizer_types()
        or (expected_type is not None and kind != expected_type)
    ):
        allowed = expected_type or sorted(optimizer_types())
        _fail("optimizer.type", f"is {kind!r}, expected {allowed}")
    cls = optimizer_types()[kind]
    if not (isinstance(optimizer, cls) and type(optimizer) is cls):
        try:
            optimizer = make_optimizer(cls, 1.0)  # as names are built (get_optimizer)
        except Exception as error:  # a user's class without defaults: say so
            _fail("optimizer", f"cannot make a {kind} to check its state against ({error})")
    assert isinstance(optimizer, Optimizer)
    # What the optimizer's own state_dict holds; a full-batch one's record also keeps
    # the driver's last decrease ("pending", see training.lbfgs).
    keys = {"type", *optimizer.state_dict()} | ({"pending"} if cls.full_batch else set())
    state = _check_keys(state, "optimizer", keys)
    _check_int(state["iterations"], "optimizer.iterations")
    if "learning_rate" in state:
        _check_float(state["learning_rate"], "optimizer.learning_rate", positive=True)
    pending = state.get("pending")
    if pending is not None:
        if not (isinstance(pending, list) and len(pending) == 2):
            _fail("optimizer.pending", "must be null or [f, decrease]")
        for i, value in enumerate(pending):
            _check_float(value, f"optimizer.pending[{i}]")
    try:
        optimizer.check_state_dict(dict(state), n_parameters, dtype)
    except (ValueError, TypeError, KeyError) as error:
        _fail("optimizer", str(error))


def check_epoch_order(
    progress: Any, units: NDArray[np.integer], unit: str = "rows"
) -> None:
    """Raise ``ValueError`` unless an interrupted epoch's progress fits the data.

    ``progress`` is a trainer state's ``progress`` entry (or ``None``); ``units``
    are the row indices (``arange(n_rows)``) or the storage-block indices an
    epoch over the data visits. The saved ``order`` must be a permutation of
    ``units`` and ``position`` at most its length: the training loops index the
    data with the order, and the compiled kernels do so without bounds checks.

    Parameters
    ----------
    progress : mapping or None
        ``{"order", "position", ...}`` as :meth:`Trainer.state_dict` writes it.
    units : ndarray of int
        What the order must be a permutation of.
    unit : str, default "rows"
        What ``units`` are, for the message.

    Raises
    ------
    ValueError
        The order is not a permutation of ``units``, or the position lies past
        the end of the epoch; the message says to resume with the run's data.
    """
    if progress is None:
        return
    order = progress["order"]
    length = len(units) if order is None else len(order)
    hint = "resume with the data the run was started on"
    if order is not None and (
        len(order) != len(units)
        or not np.array_equal(np.sort(np.asarray(order)), np.sort(np.asarray(units)))
    ):
        raise ValueError(
            f"trainer state field 'progress.order' is not a permutation of the data's "
            f"{len(units)} {unit} (it lists {len(order)}, some of them not the data's): {hint}"
        )
    position = progress["position"]
    if position > length:
        raise ValueError(
            f"trainer state field 'progress.position' is {position}, past the end of an epoch "
            f"of {length} {unit}: {hint}"
        )


#: Immutable leaves of a state tree, taken as they are. Tested first: a training history
#: is thousands of floats, each of which would otherwise go through the abstract
#: ``Mapping`` check.
PLAIN_LEAVES = frozenset({float, int, str, bool, type(None)})


def copy_tree(value: Any) -> Any:
    """A deep copy in which NumPy scalars become Python numbers (arrays stay arrays)."""
    if type(value) in PLAIN_LEAVES:
        return value
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): copy_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if set(map(type, value)) <= PLAIN_LEAVES:  # a history's floats: one C-level pass
            return list(value)
        return [copy_tree(v) for v in value]
    return copy.copy(value)


