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

:func:`sklearn_uniform` draws a layer's weights *and biases* the way
scikit-learn's ``MLPClassifier`` does (used by :mod:`handnet.sklearn`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import DTypeLike, NDArray

from ..registry import Registry

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


def sklearn_uniform(
    n_inputs: int,
    n_outputs: int,
    rng: np.random.Generator | np.random.RandomState,
    dtype: DTypeLike = np.float64,
    factor: float = 6.0,
) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    r"""Weights and biases as scikit-learn's MLP draws them (Glorot, biases included).

    .. math:: W_{ij},\ b_j \sim U(-a, a), \qquad a = \sqrt{\frac{f}{n_{in} + n_{out}}}

    with :math:`f = 6` (Glorot & Bengio's bound), or :math:`f = 2` for the logistic
    activation, as scikit-learn chooses. Drawn in float64, weights first and then
    biases, in one call each, so that the same ``numpy.random.RandomState`` gives
    the same numbers as ``sklearn.neural_network.MLPClassifier``; then cast to
    ``dtype``.

    Returns
    -------
    weights : ndarray of shape (n_inputs, n_outputs)
    bias : ndarray of shape (n_outputs,)
    """
    if not np.isfinite(factor) or factor <= 0:
        raise ValueError(f"factor must be a finite number > 0, got {factor!r}")
    bound = np.sqrt(factor / (n_inputs + n_outputs))
    weights = rng.uniform(-bound, bound, (n_inputs, n_outputs))
    bias = rng.uniform(-bound, bound, n_outputs)
    return weights.astype(dtype, copy=False), bias.astype(dtype, copy=False)


INITIALIZERS: Registry[Initializer] = Registry(
    "initializer",
    [("zeros", zeros), ("normal", normal), ("xavier", xavier), ("glorot", xavier), ("he", he)],
)
"""Weight initialisers by name (``INITIALIZERS.register(name, function)`` adds one)."""


def get_initializer(init: str | Initializer) -> Initializer:
    """An initialiser from its name (or a callable with the same signature)."""
    if callable(init):
        return init
    return INITIALIZERS.lookup(init)
