"""The seed's model on the lean kernels of :mod:`handnet.training.kernels`.

The seed's own model (one ``Dense(n, 1)`` layer, binary cross-entropy, plain SGD, no
clipping) spends most of a generic step on Python calls around tiny arrays, so its
full-batch steps (:meth:`SeedKernels.gd_step`) and its per-example SGD
(:meth:`SeedKernels.sgd_rows`) run in those kernels instead: the same math.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..nn.layers import Dense
from ..nn.losses import BinaryCrossEntropy, Loss
from ..nn.network import Sequential
from ..optim.optimizers import LBFGS, SGD, Optimizer
from .kernels import logistic_gd_step, logistic_sgd_epoch, numba_available

Array = NDArray[np.floating]


def seed_kernel_applies(
    network: Sequential, loss: Loss, optimizer: Optimizer | LBFGS, clip_norm: float | None
) -> bool:
    """Whether this is the seed's model: one sigmoid unit, plain SGD, no clipping.

    That case has lean kernels (:mod:`handnet.training.kernels`) that do the same math
    as the generic step with a fraction of its Python overhead.
    """
    layers = network.layers
    return (
        len(layers) == 1
        and isinstance(layers[0], Dense)
        and layers[0].n_outputs == 1
        and type(loss) is BinaryCrossEntropy
        and type(optimizer) is SGD
        and clip_norm is None
    )


def use_numba(n_rows: int, dtype: np.dtype[Any], min_rows: int) -> bool:
    """Whether an SGD pass over ``n_rows`` rows repays the compiled kernel's compilation."""
    return n_rows >= min_rows and dtype == np.float64 and numba_available()


def _unit(network: Sequential) -> Dense:
    dense = network.layers[0]
    assert isinstance(dense, Dense)
    return dense


class SeedKernels:
    """Whether the seed's model trains on the kernels in this fit, and their arguments.

    ``active`` is decided when ``fit`` starts (:func:`seed_kernel_applies`) and
    cleared, with the arguments kept for the full-batch step, when it ends.
    """

    def __init__(self) -> None:
        self.active = False
        self._gd_arguments: tuple[Any, ...] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_gd_arguments"] = None  # holds the caller's X and Y
        return state

    def stop(self) -> None:
        self.active = False
        self._gd_arguments = None  # holds the caller's X and Y

    def gd_step(
        self, X: Array, Y: Array, network: Sequential, learning_rate: float, l2: float
    ) -> float:
        """One full-batch GD step of the seed's model by :func:`logistic_gd_step`; its loss."""
        # The kernel's arguments (flat views and scratch space) are made once per
        # fit: on the seed's 1000 x 4 data, making them every step would cost a
        # tenth of the step. fit() drops them, and with them X and Y, when it ends.
        arguments = self._gd_arguments
        if arguments is None or arguments[0] is not X or arguments[1] is not Y:
            dense = _unit(network)
            workspace = np.empty((4, X.shape[0]), dtype=X.dtype)
            arguments = self._gd_arguments = (
                X, Y, Y[:, 0], dense.weights[:, 0], dense.bias, tuple(workspace)
            )
        _, _, y, weights, bias, workspace_rows = arguments
        return logistic_gd_step(X, y, weights, bias, learning_rate, l2, workspace_rows)

    @staticmethod
    def sgd_rows(
        X: Array,
        Y: Array,
        rows: NDArray[np.intp],
        network: Sequential,
        learning_rate: float,
        l2: float,
        total: float,
        numba: bool,
    ) -> float:
        """Per-example SGD over ``X[rows]`` by :func:`logistic_sgd_epoch`.

        Returns ``total`` plus the rows' losses (each before its step).
        """
        dense = _unit(network)
        return logistic_sgd_epoch(
            X, Y[:, 0], rows, dense.weights[:, 0], dense.bias, learning_rate, l2,
            total=total, use_numba=numba,
        )
