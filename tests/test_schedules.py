"""Learning-rate schedules against their formulas; ReduceOnPlateau's state."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from handnet.optim.schedules import (
    SCHEDULES,
    Constant,
    CosineAnnealing,
    ExponentialDecay,
    InverseScaling,
    ReduceOnPlateau,
    Schedule,
    StepDecay,
    get_schedule,
)

ETA0 = 0.4
EPOCHS = [0, 1, 2, 5, 9, 10, 11, 25, 100]


def test_constant() -> None:
    assert all(Constant().learning_rate(ETA0, t) == ETA0 for t in EPOCHS)


def test_step_decay() -> None:
    schedule = StepDecay(step_size=10, gamma=0.5)
    expected = {0: 0.4, 1: 0.4, 9: 0.4, 10: 0.2, 11: 0.2, 25: 0.1, 100: 0.4 * 0.5**10}
    for t, value in expected.items():
        assert schedule.learning_rate(ETA0, t) == pytest.approx(value, rel=1e-15)


def test_exponential_decay() -> None:
    schedule = ExponentialDecay(gamma=0.9)
    for t in EPOCHS:
        assert schedule.learning_rate(ETA0, t) == pytest.approx(ETA0 * 0.9**t, rel=1e-14)
    assert schedule.learning_rate(ETA0, 2) == pytest.approx(0.324, rel=1e-14)


def test_cosine_annealing() -> None:
    schedule = CosineAnnealing(period=10, min_learning_rate=0.1)
    assert schedule.learning_rate(ETA0, 0) == pytest.approx(ETA0)
    assert schedule.learning_rate(ETA0, 5) == pytest.approx((ETA0 + 0.1) / 2)  # half-way
    assert schedule.learning_rate(ETA0, 10) == pytest.approx(0.1)
    assert schedule.learning_rate(ETA0, 25) == pytest.approx(0.1)  # stays at the floor
    for t in range(11):
        expected = 0.1 + 0.5 * (ETA0 - 0.1) * (1 + math.cos(math.pi * t / 10))
        assert schedule.learning_rate(ETA0, t) == pytest.approx(expected, rel=1e-14)
    values = [schedule.learning_rate(ETA0, t) for t in range(11)]
    assert values == sorted(values, reverse=True)


def test_cosine_period_defaults_to_max_iter() -> None:
    schedule = get_schedule("cosine", max_iter=20)
    assert isinstance(schedule, CosineAnnealing) and schedule.period == 20
    assert schedule.learning_rate(1.0, 10) == pytest.approx(0.5)
    explicit = CosineAnnealing(period=4)
    assert get_schedule(explicit, max_iter=20) is explicit


def test_inverse_scaling() -> None:
    schedule = InverseScaling(power_t=0.5)
    for t in EPOCHS:
        assert schedule.learning_rate(ETA0, t) == pytest.approx(ETA0 / math.sqrt(t + 1), rel=1e-14)
    assert InverseScaling(power_t=0.0).learning_rate(ETA0, 50) == ETA0
    assert InverseScaling(power_t=1.0).learning_rate(ETA0, 3) == pytest.approx(0.1)


def test_reduce_on_plateau_drops_after_patience() -> None:
    schedule = ReduceOnPlateau(factor=0.5, patience=2, threshold=0.0)
    rates = []
    for loss in [1.0, 0.9, 0.8, 0.8, 0.85, 0.81, 0.7, 0.7, 0.7, 0.7]:
        rates.append(schedule.learning_rate(ETA0, len(rates)))
        schedule.observe(loss)
    rates.append(schedule.learning_rate(ETA0, len(rates)))
    # Improvements up to 0.8; then three epochs without (0.8, 0.85, 0.81): the third,
    # the first beyond patience=2, halves the rate. 0.7 improves; three more flat
    # epochs halve it again.
    assert rates == pytest.approx([0.4] * 6 + [0.2] * 4 + [0.1])


def test_reduce_on_plateau_threshold_is_relative() -> None:
    schedule = ReduceOnPlateau(factor=0.1, patience=0, threshold=0.1)
    schedule.observe(1.0)
    schedule.observe(0.95)  # 5% better: not enough for threshold 10%
    assert schedule.learning_rate(1.0, 2) == pytest.approx(0.1)
    schedule.observe(0.85)  # better than 0.9 * best(1.0): an improvement
    assert schedule.learning_rate(1.0, 3) == pytest.approx(0.1)


def test_reduce_on_plateau_floor() -> None:
    schedule = ReduceOnPlateau(factor=0.1, patience=0, min_learning_rate=0.01)
    schedule.observe(1.0)
    for _ in range(5):
        schedule.observe(2.0)
    assert schedule.learning_rate(1.0, 6) == 0.01


def test_reduce_on_plateau_state_dict_round_trip() -> None:
    losses = [1.0, 0.9, 0.95, 0.95, 0.97, 0.96, 0.99, 0.5, 0.6]
    first = ReduceOnPlateau(factor=0.5, patience=1)
    for loss in losses[:5]:
        first.observe(loss)
    state = first.state_dict()
    second = ReduceOnPlateau(factor=0.5, patience=1)
    second.load_state_dict(state)
    for loss in losses[5:]:
        assert second.learning_rate(ETA0, 0) == first.learning_rate(ETA0, 0)
        first.observe(loss)
        second.observe(loss)
    assert second.state_dict() == first.state_dict()
    assert first.learning_rate(ETA0, 0) < ETA0  # the round trip carried a real reduction


@pytest.mark.parametrize("cls", [Constant, StepDecay, ExponentialDecay, InverseScaling])
def test_stateless_schedules_have_empty_state(cls: Callable[[], Schedule]) -> None:
    schedule = cls()
    schedule.observe(1.0)  # ignored
    assert schedule.state_dict() == {}
    schedule.load_state_dict({})


@pytest.mark.parametrize(
    "make",
    [
        lambda: StepDecay(step_size=0),
        lambda: StepDecay(gamma=0.0),
        lambda: StepDecay(gamma=1.5),
        lambda: ExponentialDecay(gamma=0.0),
        lambda: ExponentialDecay(gamma=float("nan")),
        lambda: CosineAnnealing(period=0),
        lambda: CosineAnnealing(period=10, min_learning_rate=-0.1),
        lambda: InverseScaling(power_t=-0.5),
        lambda: InverseScaling(power_t=float("nan")),
        lambda: ReduceOnPlateau(factor=1.0),
        lambda: ReduceOnPlateau(factor=0.0),
        lambda: ReduceOnPlateau(patience=-1),
        lambda: ReduceOnPlateau(threshold=-0.1),
        lambda: ReduceOnPlateau(threshold=1.0),
        lambda: ReduceOnPlateau(min_learning_rate=-1.0),
    ],
)
def test_bad_arguments_raise(make: Callable[[], Schedule]) -> None:
    with pytest.raises(ValueError):
        make()


def test_get_schedule() -> None:
    for name, cls in SCHEDULES.items():
        assert isinstance(get_schedule(name), cls)
    with pytest.raises(ValueError, match="unknown learning-rate schedule"):
        get_schedule("warmup")


def test_repr_shows_public_settings() -> None:
    assert repr(StepDecay(5, 0.5)) == "StepDecay(step_size=5, gamma=0.5)"
    assert "_best" not in repr(ReduceOnPlateau())
