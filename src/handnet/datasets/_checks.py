"""Argument checks and types shared by the data-set functions."""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

RandomState = int | np.integer | np.random.Generator | None
"""What ``random_state`` accepts: an int seed, a ``Generator`` (used, and advanced, as is)
or ``None`` (fresh OS entropy)."""

PathType = str | os.PathLike[str]


def _check_int(value: Any, name: str, minimum: int) -> int:
    """Return ``value`` as an int, checking it is an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_nonnegative_float(value: Any, name: str) -> float:
    """Return ``value`` as a float, checking it is a finite real number ``>= 0``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _finite_float_array(values: ArrayLike, name: str) -> NDArray[np.float64]:
    """``values`` as a float64 array, rejecting non-numeric and non-finite entries."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numeric: {error}") from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinity")
    return array
