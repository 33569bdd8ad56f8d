"""Learning-rate schedules, stepped once per epoch.

A schedule maps the initial learning rate :math:`\\eta_0` and the epoch
:math:`t = 0, 1, \\dots` to the learning rate used during that epoch. The
training loop asks ``schedule.learning_rate(eta0, epoch)`` at the start of each
epoch and tells it the epoch's loss with ``schedule.observe(loss)`` at the end
(only :class:`ReduceOnPlateau` listens).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

from ..data.validation import check_interval, check_positive
from ..registry import Registry


class Schedule:
    """Base class; subclasses implement :meth:`learning_rate`."""

    def learning_rate(self, initial: float, epoch: int) -> float:
        raise NotImplementedError

    def observe(self, loss: float) -> None:
        """Hear the loss at the end of an epoch (most schedules ignore it)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def check_state_dict(self, state: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` unless ``state`` is one :meth:`state_dict` could return.

        A checkpoint's schedule state is checked with this before
        :meth:`load_state_dict` restores it. The base class checks the keys (those of
        :meth:`state_dict`); a schedule with state also checks each value's range.

        Raises
        ------
        ValueError
            Naming the schedule and the key.
        """
        expected = sorted(self.state_dict())
        if not isinstance(state, Mapping) or sorted(map(str, state)) != expected:
            got = sorted(map(str, state)) if isinstance(state, Mapping) else type(state).__name__
            raise ValueError(
                f"{type(self).__name__} state must hold the keys {expected}, got {got}"
            )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"


class Constant(Schedule):
    r""":math:`\eta_t = \eta_0`."""

    def learning_rate(self, initial: float, epoch: int) -> float:
        return initial


class StepDecay(Schedule):
    r""":math:`\eta_t = \eta_0\, \gamma^{\lfloor t / k \rfloor}`.

    Multiplies the learning rate by ``gamma`` every ``step_size`` (:math:`k`) epochs.
    """

    def __init__(self, step_size: int = 10, gamma: float = 0.1) -> None:
        self.step_size: int = check_positive(step_size, "step_size", integer=True)
        self.gamma = check_interval(gamma, "gamma", 0.0, 1.0, right_closed=True)

    def learning_rate(self, initial: float, epoch: int) -> float:
        return initial * self.gamma ** (epoch // self.step_size)


class ExponentialDecay(Schedule):
    r""":math:`\eta_t = \eta_0\, \gamma^{t}`."""

    def __init__(self, gamma: float = 0.95) -> None:
        self.gamma = check_interval(gamma, "gamma", 0.0, 1.0, right_closed=True)

    def learning_rate(self, initial: float, epoch: int) -> float:
        return initial * self.gamma**epoch


class CosineAnnealing(Schedule):
    r"""Cosine annealing (Loshchilov & Hutter, 2017) without restarts.

    .. math:: \eta_t = \eta_{\min} + \tfrac12 (\eta_0 - \eta_{\min})
              \left(1 + \cos\frac{\pi \min(t, T)}{T}\right)

    ``T`` (``period``) defaults to the model's ``max_iter``.
    """

    def __init__(self, period: int | None = None, min_learning_rate: float = 0.0) -> None:
        self.period: int | None = (
            None if period is None else check_positive(period, "period", integer=True)
        )
        self.min_learning_rate: float = check_positive(
            min_learning_rate, "min_learning_rate", allow_zero=True
        )

    def learning_rate(self, initial: float, epoch: int) -> float:
        period = self.period or 1
        progress = min(epoch, period) / period
        low = self.min_learning_rate
        return low + 0.5 * (initial - low) * (1.0 + math.cos(math.pi * progress))


class InverseScaling(Schedule):
    r""":math:`\eta_t = \eta_0 / (t + 1)^{p}` (scikit-learn's ``invscaling``, per epoch)."""

    def __init__(self, power_t: float = 0.5) -> None:
        self.power_t: float = check_positive(power_t, "power_t", allow_zero=True)

    def learning_rate(self, initial: float, epoch: int) -> float:
        return initial / (epoch + 1.0) ** self.power_t


class ReduceOnPlateau(Schedule):
    r"""Multiply the learning rate by ``factor`` when the loss stops improving.

    After ``patience`` epochs in a row whose loss is not below the best so far
    by more than ``threshold`` (relative), the scale drops:
    :math:`\eta \leftarrow \max(\text{factor}\cdot\eta, \eta_{\min})`.
    """

    def __init__(
        self,
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        min_learning_rate: float = 0.0,
    ) -> None:
        self.factor = check_interval(factor, "factor", 0.0, 1.0)
        self.patience: int = check_positive(patience, "patience", integer=True, allow_zero=True)
        self.threshold = check_interval(threshold, "threshold", 0.0, 1.0, left_closed=True)
        self.min_learning_rate: float = check_positive(
            min_learning_rate, "min_learning_rate", allow_zero=True
        )
        self._scale = 1.0
        self._best = math.inf
        self._bad_epochs = 0

    def learning_rate(self, initial: float, epoch: int) -> float:
        return max(initial * self._scale, self.min_learning_rate)

    def observe(self, loss: float) -> None:
        if loss < self._best * (1.0 - self.threshold):
            self._best = loss
            self._bad_epochs = 0
            return
        self._bad_epochs += 1
        if self._bad_epochs > self.patience:
            self._scale *= self.factor
            self._bad_epochs = 0

    def state_dict(self) -> dict[str, Any]:
        return {"scale": self._scale, "best": self._best, "bad_epochs": self._bad_epochs}

    def check_state_dict(self, state: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` unless :meth:`observe` could have left this ``state``.

        * ``scale`` is ``factor`` to the power of the reductions so far: in
          ``[0, 1]`` (0 once the product underflows, as a tiny factor's soon does).
          A negative, NaN or infinite scale would turn the learning rate into
          gradient ascent or NaN parameters.
        * ``best`` is the lowest epoch loss that counted as an improvement: finite
          (a run whose epoch loss is not stops with a ``DivergenceError`` first), or
          ``inf`` before the first epoch. A NaN would count no epoch as an
          improvement again.
        * ``bad_epochs`` counts epochs: an integer >= 0 (``int(inf)`` would raise an
          ``OverflowError``, ``int(2.5)`` silently truncate). It may exceed
          ``patience`` in a run resumed with a smaller one: the next epoch reduces.
        """
        super().check_state_dict(state)
        name = type(self).__name__
        scale, best = _as_float(state["scale"]), _as_float(state["best"])
        if scale is None or not 0.0 <= scale <= 1.0:  # NaN fails the comparisons
            raise ValueError(
                f"{name} state 'scale' must be a number in [0, 1], got {state['scale']!r}"
            )
        if best is None or not (math.isfinite(best) or best == math.inf):
            raise ValueError(
                f"{name} state 'best' must be a finite loss, or inf before the first epoch, "
                f"got {state['best']!r}"
            )
        bad_epochs = state["bad_epochs"]
        if not (_is_integer(bad_epochs) and bad_epochs >= 0):
            raise ValueError(
                f"{name} state 'bad_epochs' must be an integer >= 0 (a count of epochs), "
                f"got {bad_epochs!r}"
            )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.check_state_dict(state)
        self._scale = float(state["scale"])
        self._best = float(state["best"])
        self._bad_epochs = int(state["bad_epochs"])


def _as_float(value: Any) -> float | None:
    """``value`` as a ``float``; ``None`` unless it is a number a float holds (a ``bool``
    is none: ``true`` in a file is no scale; nor is an integer of 400 digits)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def _is_integer(value: Any) -> bool:
    """An integer, not a ``bool`` (nor a float that happens to be whole)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


SCHEDULES: Registry[type[Schedule]] = Registry(
    "learning-rate schedule",
    [
        ("constant", Constant),
        ("step", StepDecay),
        ("exponential", ExponentialDecay),
        ("cosine", CosineAnnealing),
        ("invscaling", InverseScaling),
        ("plateau", ReduceOnPlateau),
    ],
)
"""Learning-rate schedules by name (``SCHEDULES.register(name, cls)`` adds one)."""


def get_schedule(schedule: str | Schedule, max_iter: int | None = None) -> Schedule:
    """A schedule from its name (or the object); cosine's period defaults to ``max_iter``."""
    result = schedule if isinstance(schedule, Schedule) else SCHEDULES.lookup(schedule)()
    if isinstance(result, CosineAnnealing) and result.period is None and max_iter:
        result = CosineAnnealing(max_iter, result.min_learning_rate)
    return result


def follows_max_iter(schedule: str | Schedule | None) -> bool:
    """Whether ``schedule``'s shape is set by the model's ``max_iter``: cosine annealing
    with no period of its own (a run resumed with another ``max_iter`` would jump)."""
    if schedule is None:
        return False
    try:
        result = schedule if isinstance(schedule, Schedule) else SCHEDULES.lookup(schedule)()
    except (KeyError, ValueError, TypeError):  # not a schedule: the model's checks say so
        return False
    return isinstance(result, CosineAnnealing) and result.period is None
