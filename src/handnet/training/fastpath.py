"""The seed's model on the lean kernels of :mod:`handnet.training.kernels`.

The seed's own model (one ``Dense(n, 1)`` layer, binary cross-entropy, plain SGD, no
clipping) spends most of a generic step on Python calls around tiny arrays, so its
full-batch steps (:meth:`SeedKernels.gd_step`) and its per-example SGD
(:meth:`SeedKernels.sgd_rows`) run in those kernels instead: the same math.

When per-example SGD is compiled
--------------------------------
The compiled SGD kernel runs some 30 M rows/s against 1-2 M for the scalar path,
but its first use in a process costs about 0.45-0.75 s (a second more where nothing
is cached yet): 0.2-0.3 s to import numba, then 0.2-0.5 s for numba's first load of
a cached kernel, which sets up its typing and target registries and, where SciPy is
installed, imports ``scipy.linalg`` to look for a BLAS (some 0.2 s of it, none if
the process had imported it already; measured here, December 2026).
:meth:`SeedKernels.use_numba` therefore loads it only for a run whose planned work
(rows times the epochs it will run at least) reaches ``Trainer.NUMBA_MIN_ROWS``,
or once the rows already run do (a run whose stopping rule ends it early loads it
no sooner than it pays); once loaded, it runs every epoch on float64 data that the
scalar path also takes, as the two give the same bits. With more than
``SCALAR_MAX_FEATURES`` features the two paths differ in the last bits, so the
counts are the run's, from its first epoch: a run interrupted and resumed (or
warm-started) switches at the epoch where it would have uninterrupted. A finished
run resumed with a larger ``max_iter`` plans more work than it did, and may take
the compiled kernel for epochs its shorter plan ran in NumPy.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..nn.layers import Dense
from ..nn.losses import BinaryCrossEntropy, Loss
from ..nn.network import Sequential
from ..optim.optimizers import LBFGS, SGD, Optimizer
from . import kernels
from .kernels import SignedRows, logistic_gd_step, logistic_sgd_epoch
from .threads import FitThreads

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


def _unit(network: Sequential) -> Dense:
    dense = network.layers[0]
    assert isinstance(dense, Dense)
    return dense


class SeedKernels:
    """Whether the seed's model trains on the kernels in this fit, and their arguments.

    ``active`` is decided when ``fit`` starts (:meth:`start`, by
    :func:`seed_kernel_applies`) and cleared, with the arguments kept for the
    full-batch step, when it ends (:meth:`stop`). The fit's BLAS thread limit
    (:attr:`threads`, for every model, not only the seed's) ends with it.
    """

    def __init__(self) -> None:
        self.active = False
        self._gd_arguments: tuple[Any, ...] | None = None
        #: Epochs the current fit runs at least (see :meth:`start`).
        self.planned_epochs = 1
        #: Per-example SGD rows run so far in the current fit.
        self.rows_run = 0
        #: The fit's BLAS thread limit (:mod:`handnet.training.threads`), lifted by :meth:`stop`.
        self.threads = FitThreads()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_gd_arguments"] = None  # holds the caller's X and Y
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("planned_epochs", 1)  # pickled before these existed
        self.__dict__.setdefault("rows_run", 0)
        self.__dict__.setdefault("threads", FitThreads())

    def start(
        self,
        active: bool,
        max_iter: int,
        tol: float | None = None,
        n_iter_no_change: int = 0,
        epochs_done: int = 0,
        rows_per_epoch: int = 0,
    ) -> None:
        """A fit starts: whether the kernels apply, and how many epochs its run has at least.

        The counts are the *run's*, from its first epoch (``epochs_done`` epochs of
        ``rows_per_epoch`` rows ran before this fit: a resumed or warm-started
        run), so that a run interrupted and resumed takes the compiled or the NumPy
        path at the same epochs as it would have uninterrupted, for the same bits.
        Without a stopping rule (``tol=None``) the run has ``epochs_done + max_iter``
        epochs; with one it can stop after ``n_iter_no_change + 1``, so only those
        count as planned.
        """
        self.active = active
        self.rows_run = epochs_done * rows_per_epoch
        total = epochs_done + max_iter
        planned = total if tol is None else min(total, n_iter_no_change + 1)
        self.planned_epochs = max(1, planned)

    def stop(self) -> None:
        """The fit ended: drop its arguments (they hold X and Y), lift its BLAS limit."""
        self.active = False
        self.rows_run = 0
        self._gd_arguments = None
        self.threads.close()

    def use_numba(self, X: Array, n_rows: int, min_rows: int) -> bool:
        """Whether per-example SGD over ``n_rows`` rows of ``X`` (one epoch) runs compiled.

        float64 only (the kernel's one specialisation), and never without numba or
        under :func:`~handnet.training.kernels.numpy_only`. Compiled when it is
        loaded already and gives the scalar path's bits, or when the run's work
        (its planned epochs, or the rows run so far and these) reaches ``min_rows``
        rows: about what the scalar path runs in the time the load takes.
        """
        if X.dtype != np.float64 or not kernels.compiled_enabled():
            return False
        if kernels.native_kernels(np.float64) is not None:
            return True  # built ahead of time: no load to pay for, from the first epoch
        if not kernels.numba_installed():
            return False
        if kernels.sgd_kernel_ready() and kernels.scalar_sgd_applies(X):
            return True
        work = max(self.rows_run + n_rows, n_rows * self.planned_epochs)
        return work >= min_rows

    def gd_step(
        self, X: Array, Y: Array, network: Sequential, learning_rate: float, l2: float
    ) -> float:
        """One full-batch GD step of the seed's model; its loss.

        By the compiled block sums with vectorised exponentials where ``handnet
        compile`` built them (:func:`~handnet.training.kernels.compiled_gd_step`), else
        :class:`~handnet.training.kernels.SignedRows` for 0/1 targets, else
        :func:`~handnet.training.kernels.logistic_gd_step`.
        """
        # The step's arguments (signed rows or flat views, and scratch space) are
        # made once per fit: on the seed's 1000 x 4 data, making them every step
        # would cost a tenth of the step. fit() drops them, and with them X and Y
        # (and the signed copy of X), when it ends.
        arguments = self._gd_arguments
        if arguments is None or arguments[0] is not X or arguments[1] is not Y:
            arguments = self._gd_arguments = self._gd_setup(X, Y, network)
        step: Callable[[float, float], float] = arguments[2]
        return float(step(learning_rate, l2))

    @staticmethod
    def _gd_setup(
        X: Array, Y: Array, network: Sequential
    ) -> tuple[Array, Array, Callable[[float, float], float]]:
        """``(X, Y, step)``: :meth:`gd_step`'s data and its ``step(learning_rate, l2)``."""
        y = Y[:, 0]
        dense = _unit(network)
        weights, bias = dense.weights[:, 0], dense.bias
        native = kernels.native_kernels(X.dtype)
        kernel = getattr(native, "vectorised_block_sums", None)
        if kernel is not None and X.flags.c_contiguous and weights.flags.c_contiguous:
            gradient = np.empty(X.shape[1], dtype=X.dtype)
            targets = np.ascontiguousarray(y, dtype=X.dtype)
            return X, Y, functools.partial(
                kernels.compiled_gd_step, kernel, X, targets, weights, bias, gradient
            )
        if SignedRows.applies(X, y, network.flat_parameters):
            signed, parameters = SignedRows(X, y), network.flat_parameters
            return X, Y, functools.partial(signed.step, parameters)
        z, e, terms, residual = np.empty((4, X.shape[0]), dtype=X.dtype)
        return X, Y, functools.partial(
            logistic_gd_step, X, y, weights, bias, workspace=(z, e, terms, residual)
        )

    def sgd_rows(
        self,
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
        self.rows_run += len(rows)
        return logistic_sgd_epoch(
            X, Y[:, 0], rows, dense.weights[:, 0], dense.bias, learning_rate, l2,
            total=total, use_numba=numba,
        )
