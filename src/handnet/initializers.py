"""Weight initialisers for dense layers.

Each takes ``(n_inputs, n_outputs)``, a ``numpy.random.Generator`` and a dtype,
and returns a weight matrix of shape ``(n_inputs, n_outputs)``. The scale is
chosen so that activations neither shrink nor blow up from layer to layer:

* ``zeros``: all zero (fine for linear models, fatal for hidden layers, whose
  units would stay identical).
* ``normal``: :math:`W_{ij} \\sim \\mathcal N(0, 1)` (the seed's ``np.random.randn``).
* ``xavier`` / ``glorot`` (Glorot & Bengio, 2010), uniform:
  :math:`W_{ij} \\sim U(-a, a)`, :math:`a = \\sqrt{6 / (n_{in} + n_{out})}`;
  for tanh and sigmoid.
* ``he`` (He et al., 2015), normal: :math:`W_{ij} \\sim \\mathcal N(0, 2 / n_{in})`;
  for ReLU, which zeroes half its inputs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import DTypeLike, NDArray

Initializer = Callable[[int, int, np.random.Generator, DTypeLike], NDArray[np.floating]]


def zeros(
    n_inputs: int, n_outputs: int, rng: np.random.Generator, dtype: DTypeLike = np.float64
) -> NDArray[np.floating]:
    """All-zero weights."""
    return np.zeros((n_inputs, n_outputs), dtype=dtype)


def normal(
    n_inputs: int, n_outputs: int, rng: np.random.Generator, dtype: DTypeLike = np.float64
) -> NDArray[np.floating]:
    """Standard normal weights, as in the seed."""
    return rng.standard_normal((n_inputs, n_outputs)).astype(dtype, copy=False)


def xavier(
    n_inputs: int, n_outputs: int, rng: np.random.Generator, dtype: DTypeLike = np.float64
) -> NDArray[np.floating]:
    """Glorot/Xavier uniform weights, bound ``sqrt(6 / (n_inputs + n_outputs))``."""
    bound = np.sqrt(6.0 / (n_inputs + n_outputs))
    return rng.uniform(-bound, bound, (n_inputs, n_outputs)).astype(dtype, copy=False)


def he(
    n_inputs: int, n_outputs: int, rng: np.random.Generator, dtype: DTypeLike = np.float64
) -> NDArray[np.floating]:
    """He/Kaiming normal weights, standard deviation ``sqrt(2 / n_inputs)``."""
    scale = np.sqrt(2.0 / n_inputs)
    return (scale * rng.standard_normal((n_inputs, n_outputs))).astype(dtype, copy=False)


INITIALIZERS: dict[str, Initializer] = {
    "zeros": zeros,
    "normal": normal,
    "xavier": xavier,
    "glorot": xavier,
    "he": he,
}


def get_initializer(init: str | Initializer) -> Initializer:
    """An initialiser from its name (or a callable with the same signature)."""
    if callable(init):
        return init
    try:
        return INITIALIZERS[init]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown initializer {init!r}; choose one of {sorted(INITIALIZERS)}"
        ) from None
