"""The checks of a training checkpoint's state: generator states and an epoch's row order.

A generator state from a file reaches NumPy's bit-generator setters, which
trust positions such as MT19937's ``pos``: a bad one made the next draw read
out of bounds. ``check_rng_state`` must refuse every bad field first. These
tests only set states, never draw from a refused one, so a regression fails
here instead of crashing (the draws are in ``tests/test_io_forged.py``,
in child processes).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from handnet.training import state as checks
from handnet.training.state import check_rng_state

U32, U64, U128 = 1 << 32, 1 << 64, 1 << 128


def _state(name: str, draws: int = 3) -> dict[str, Any]:
    """A valid state of bit generator ``name``, after a few 32-bit draws."""
    bit_generator = getattr(np.random, name)(11)
    np.random.Generator(bit_generator).integers(0, 9, size=draws, dtype=np.uint32)
    return copy.deepcopy(bit_generator.state)


@pytest.mark.parametrize("name", ["PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"])
@pytest.mark.parametrize("draws", [0, 1, 3])
def test_valid_states_give_the_same_stream(name: str, draws: int) -> None:
    state = _state(name, draws)
    original = getattr(np.random, name)()
    original.state = copy.deepcopy(state)
    expected = np.random.Generator(original).integers(0, 2**63, size=8)
    restored = check_rng_state(state)
    np.testing.assert_array_equal(restored.integers(0, 2**63, size=8), expected)


def _set(*path: Any, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(state: dict[str, Any]) -> None:
        target = state
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


def _delete(*path: Any) -> Callable[[dict[str, Any]], None]:
    def edit(state: dict[str, Any]) -> None:
        target = state
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return edit


def _word(*path: Any, index: int = 0, value: int) -> Callable[[dict[str, Any]], None]:
    """Set one word of an array field, widening it to hold ``value``."""

    def edit(state: dict[str, Any]) -> None:
        target = state
        for key in path[:-1]:
            target = target[key]
        words = [int(v) for v in target[path[-1]]]
        words[index] = value
        target[path[-1]] = np.array(words, dtype=np.int64) if value < 2**63 else words

    return edit


BAD_STATES = [
    # MT19937: the position indexes a 624-word buffer.
    ("MT19937", _set("state", "pos", value=2_000_000_000), "pos"),
    ("MT19937", _set("state", "pos", value=625), "pos"),
    ("MT19937", _set("state", "pos", value=-1), "pos"),
    ("MT19937", _set("state", "pos", value=1.5), "pos"),
    ("MT19937", _set("state", "pos", value=True), "pos"),
    ("MT19937", _set("state", "key", value=np.zeros(623, dtype=np.uint32)), "key"),
    ("MT19937", _set("state", "key", value=np.zeros((624, 1), dtype=np.uint32)), "key"),
    ("MT19937", _word("state", "key", value=U32), "key"),
    ("MT19937", _word("state", "key", value=-1), "key"),
    ("MT19937", _set("state", "key", value=np.zeros(624)), "key"),
    ("MT19937", _delete("state", "pos"), "missing"),
    ("MT19937", _set("extra", value=1), "unexpected"),
    # Philox: the position indexes a 4-word buffer.
    ("Philox", _set("buffer_pos", value=-2_000_000_000), "buffer_pos"),
    ("Philox", _set("buffer_pos", value=-1), "buffer_pos"),
    ("Philox", _set("buffer_pos", value=5), "buffer_pos"),
    ("Philox", _set("buffer", value=np.zeros(3, dtype=np.uint64)), "buffer"),
    ("Philox", _set("state", "counter", value=np.zeros(5, dtype=np.uint64)), "counter"),
    ("Philox", _set("state", "key", value=np.zeros(3, dtype=np.uint64)), "key"),
    ("Philox", _word("state", "key", value=U64), "key"),
    ("Philox", _word("state", "counter", value=-1), "counter"),
    ("Philox", _set("has_uint32", value=2), "has_uint32"),
    ("Philox", _set("uinteger", value=U32), "uinteger"),
    # PCG64 and its DXSM twin: 128-bit words and a buffered half word.
    ("PCG64", _set("state", "state", value=U128), "state"),
    ("PCG64", _set("state", "inc", value=-1), "inc"),
    ("PCG64", _set("state", "inc", value="1"), "inc"),
    ("PCG64", _set("has_uint32", value=7), "has_uint32"),
    ("PCG64", _set("has_uint32", value=-1), "has_uint32"),
    ("PCG64", _set("uinteger", value=-1), "uinteger"),
    ("PCG64DXSM", _set("uinteger", value=U32), "uinteger"),
    ("PCG64DXSM", _delete("has_uint32"), "missing"),
    # SFC64: four 64-bit words.
    ("SFC64", _set("state", "state", value=np.zeros(3, dtype=np.uint64)), "state"),
    ("SFC64", _word("state", "state", index=3, value=U64), "state"),
    ("SFC64", _set("has_uint32", value=2), "has_uint32"),
    # Names and shapes.
    ("PCG64", _set("bit_generator", value="RandomState"), "unknown bit generator"),
    ("PCG64", _set("state", value=[1, 2]), "mapping"),
]


@pytest.mark.parametrize(
    "name, edit, message",
    BAD_STATES,
    ids=[f"{name}-{i}-{message}" for i, (name, _, message) in enumerate(BAD_STATES)],
)
def test_every_bad_field_of_a_generator_state_is_refused(
    name: str, edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    state = _state(name)
    edit(state)
    with pytest.raises(ValueError, match=message):
        check_rng_state(state)


def test_a_mid_word_state_keeps_its_buffered_half() -> None:
    state = _state("PCG64", draws=1)
    assert state["has_uint32"] == 1  # one 32-bit half of a 64-bit draw is buffered
    assert check_rng_state(state).bit_generator.state["uinteger"] == state["uinteger"]


# --- an interrupted epoch's order ----------------------------------------------------------


def _progress(order: Any, position: int = 1) -> dict[str, Any]:
    return {"order": order, "position": position, "total": 0.0, "weight_total": 1.0}


def test_a_permutation_of_the_rows_is_accepted() -> None:
    checks.check_epoch_order(_progress(np.array([2, 0, 1], dtype=np.int64), 3), np.arange(3))
    checks.check_epoch_order(_progress(None, 2), np.arange(3))
    checks.check_epoch_order(None, np.arange(3))
    # Out of core: a permutation of the blocks an epoch visits (some held out).
    blocks = np.array([0, 3, 4])
    checks.check_epoch_order(_progress(np.array([4, 0, 3], dtype=np.int64)), blocks, "blocks")


@pytest.mark.parametrize(
    "order, position, message",
    [
        ([0, 1, 3], 1, "permutation"),
        ([0, 1, -1], 1, "permutation"),
        ([0, 1, 1], 1, "permutation"),
        ([0, 1], 1, "permutation"),
        ([0, 1, 2, 0], 1, "permutation"),
        ([2, 1, 0], 4, "past the end"),
        (None, 4, "past the end"),
    ],
)
def test_an_order_that_is_not_a_permutation_is_refused(
    order: list[int] | None, position: int, message: str
) -> None:
    array = None if order is None else np.array(order, dtype=np.int64)
    with pytest.raises(ValueError, match=message):
        checks.check_epoch_order(_progress(array, position), np.arange(3))


def test_copy_tree_copies_lists_and_makes_numpy_scalars_python_numbers() -> None:
    """The plain-leaves fast path copies (no list is shared with the trainer's history),
    and a list holding a NumPy scalar still has it converted."""
    history = [0.5, 0.25, None, True, 3]
    weights = np.arange(3.0)
    tree = {"loss": history, "pair": (1.0, 2.0), "mixed": [1.0, np.float32(0.5)], "w": weights}
    copied = checks.copy_tree(tree)
    assert copied["loss"] == history and copied["loss"] is not history
    assert copied["pair"] == [1.0, 2.0]
    assert copied["mixed"] == [1.0, 0.5] and type(copied["mixed"][1]) is float
    assert copied["w"] is not weights and np.array_equal(copied["w"], weights)
    history.append(0.125)
    assert len(copied["loss"]) == 5
