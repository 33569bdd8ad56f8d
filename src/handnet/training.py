"""The training loop: batches, epochs, schedules, early stopping, and safety nets.

One optimisation step is the seed's recipe, on a batch of rows:

1. **forward** the batch through the network (logits),
2. **loss** and its gradient with respect to the logits,
3. **backward**: backpropagate into every parameter's gradient, add the L2 term,
4. **step**: let the optimizer update the parameters.

The batch regime is set by ``batch_size``:

* ``None``: full-batch gradient descent, one step per epoch on all the data
  (the seed's GD);
* ``1``: stochastic gradient descent, one example per step, the rows visited
  in a new random order every epoch (the seed's SGD);
* ``k``: mini-batches of ``k`` rows, reshuffled every epoch.

Rows are drawn by indexing (``X[order[i:i+k]]``, gathered into a buffer reused
all epoch); the caller's arrays are never shuffled or written to. All randomness
comes from the ``numpy.random.Generator`` the trainer is given.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from .exceptions import ConvergenceWarning, DivergenceError
from .losses import Loss
from .network import Sequential
from .optimizers import LBFGS, Optimizer
from .penalties import add_l2
from .schedules import Constant, Schedule

Array = NDArray[np.floating]


@dataclass
class History:
    """What happened during training, one entry per epoch (or L-BFGS iteration)."""

    loss: list[float] = field(default_factory=list)
    validation_score: list[float] = field(default_factory=list)
    learning_rate: list[float] = field(default_factory=list)


class Callback(Protocol):
    """Called by :class:`Trainer` at the end of every epoch; return ``True`` to stop."""

    def __call__(self, trainer: Trainer) -> bool | None: ...


def iterate_minibatches(
    n_samples: int, batch_size: int, rng: np.random.Generator | None
) -> Iterator[NDArray[np.intp]]:
    """Index arrays of the batches of one epoch, in a fresh random order if ``rng`` is given.

    Yields
    ------
    ndarray of shape (batch_size,) (the last batch may be smaller)
    """
    order = rng.permutation(n_samples) if rng is not None else np.arange(n_samples)
    for start in range(0, n_samples, batch_size):
        yield order[start : start + batch_size]


def clip_gradient_norm(gradients: Array, max_norm: float) -> float:
    r"""Rescale ``gradients`` in place so that :math:`\lVert g\rVert_2 \le` ``max_norm``.

    Returns the norm before clipping.
    """
    norm = float(np.sqrt(np.dot(gradients, gradients)))
    if norm > max_norm:
        gradients *= gradients.dtype.type(max_norm / (norm + 1e-12))
    return norm


def _divergence_message(what: str, epoch: int, learning_rate: float) -> str:
    return (
        f"training diverged: the {what} became non-finite in epoch {epoch + 1}. "
        f"The model keeps its last finite parameters. Likely causes: the learning rate "
        f"({learning_rate:g}) is too large (try 10x smaller), or the features are not "
        "scaled (standardise them: zero mean, unit variance)."
    )


class _InterruptGuard:
    """Turn the first Ctrl-C into a request to stop at the next step boundary.

    A second Ctrl-C raises ``KeyboardInterrupt`` as usual. Outside the main thread
    (where signal handlers cannot be installed) this does nothing.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> _InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            try:
                self._previous = signal.signal(signal.SIGINT, self._handle)
                self._installed = True
            except ValueError:  # pragma: no cover - embedded interpreters
                self._installed = False
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(
            "\nInterrupt received: stopping after the current step "
            "(press Ctrl-C again to abort at once).",
            file=sys.stderr,
            flush=True,
        )

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)


class Trainer:
    """Runs epochs of optimisation steps on a :class:`~handnet.network.Sequential`.

    Parameters
    ----------
    network : Sequential
    loss : Loss
    optimizer : Optimizer or LBFGS
    rng : numpy.random.Generator
        The model's generator: shuffling and dropout draw from it alone.
    batch_size : int or None
        ``None`` for full batch, ``1`` for per-example SGD, ``k`` for mini-batches.
    schedule : Schedule
        Learning rate per epoch, from the optimizer's initial learning rate.
    l2 : float
        Strength :math:`\\alpha` of the L2 penalty on weights (never biases).
    clip_norm : float or None
        Clip the global gradient norm to this value before each step.
    tol, n_iter_no_change : float or None, int
        Stop once the training loss (or, with validation data, the validation
        score) has not improved by ``tol`` for ``n_iter_no_change`` epochs in a
        row. ``tol=None`` runs every epoch.
    shuffle : bool
        Visit rows in a new random order each epoch (mini-batch regimes).
    callbacks : sequence of callables
        Each is called as ``callback(trainer)`` after every epoch; ``True`` stops.
    """

    def __init__(
        self,
        network: Sequential,
        loss: Loss,
        optimizer: Optimizer | LBFGS,
        rng: np.random.Generator,
        batch_size: int | None = None,
        schedule: Schedule | None = None,
        l2: float = 0.0,
        clip_norm: float | None = None,
        tol: float | None = 1e-4,
        n_iter_no_change: int = 10,
        shuffle: bool = True,
        callbacks: Sequence[Callable[[Trainer], bool | None]] = (),
    ) -> None:
        self.network = network
        self.loss = loss
        self.optimizer = optimizer
        self.rng = rng
        self.batch_size = batch_size
        self.schedule = schedule if schedule is not None else Constant()
        self.l2 = float(l2)
        self.clip_norm = clip_norm
        self.tol = tol
        self.n_iter_no_change = int(n_iter_no_change)
        self.shuffle = shuffle
        self.callbacks = list(callbacks)
        self.initial_learning_rate = optimizer.learning_rate
        self.history = History()
        self.epoch = 0
        self.converged = False
        self.interrupted = False
        self._no_improvement = 0
        self._best_loss = math.inf
        self._best_score = -math.inf
        self._best_parameters: Array | None = None
        self._buffers: dict[str, Array] = {}
        self._interrupt: _InterruptGuard | None = None

    # --- one step ------------------------------------------------------------------------

    def compute_gradients(
        self, X: Array, Y: Array, sample_weight: Array | None = None, training: bool = True
    ) -> float:
        """Forward, loss, backward and penalty on one batch.

        Leaves the gradient of the (penalised) mean loss in
        ``network.flat_gradients`` and returns the loss.
        """
        network = self.network
        logits = network.forward(X, training=training)
        loss, dlogits = self.loss(logits, Y, sample_weight)
        network.backward(dlogits)
        return loss + add_l2(network.weights, network.weight_gradients, self.l2)

    def train_step(self, X: Array, Y: Array, sample_weight: Array | None = None) -> float:
        """One optimisation step on a batch; returns the batch loss (before the step)."""
        loss = self.compute_gradients(X, Y, sample_weight)
        if not math.isfinite(loss):
            raise DivergenceError(_divergence_message("loss", self.epoch, self.current_lr))
        if self.clip_norm is not None:
            clip_gradient_norm(self.network.flat_gradients, self.clip_norm)
        assert isinstance(self.optimizer, Optimizer)
        self.optimizer.step([(self.network.flat_parameters, self.network.flat_gradients)])
        return loss

    @property
    def current_lr(self) -> float:
        return float(self.optimizer.learning_rate)

    # --- epochs --------------------------------------------------------------------------

    def _gather(self, name: str, source: Array, index: NDArray[np.intp]) -> Array:
        """``source[index]`` written into a buffer reused for every batch of that size."""
        shape = (len(index), *source.shape[1:])
        buffer = self._buffers.get(name)
        if buffer is None or buffer.shape != shape or buffer.dtype != source.dtype:
            buffer = np.empty(shape, dtype=source.dtype)
            self._buffers[name] = buffer
        np.take(source, index, axis=0, out=buffer)
        return buffer

    def run_epoch(self, X: Array, Y: Array, sample_weight: Array | None = None) -> float:
        """One pass over the data; returns the epoch's mean loss."""
        self.optimizer.learning_rate = self.schedule.learning_rate(
            self.initial_learning_rate, self.epoch
        )
        n_samples = X.shape[0]
        if self.batch_size is None or self.batch_size >= n_samples:
            return self.train_step(X, Y, sample_weight)
        total = 0.0
        weight_total = 0.0
        rng = self.rng if self.shuffle else None
        for index in iterate_minibatches(n_samples, self.batch_size, rng):
            if len(index) == 1:
                # One example per step: plain slices are views, no gather needed.
                i = int(index[0])
                Xb, Yb = X[i : i + 1], Y[i : i + 1]
                wb = None if sample_weight is None else sample_weight[i : i + 1]
            else:
                Xb = self._gather("X", X, index)
                Yb = self._gather("Y", Y, index)
                wb = None if sample_weight is None else sample_weight[index]
            batch_loss = self.train_step(Xb, Yb, wb)
            batch_weight = float(len(index)) if wb is None else float(np.sum(wb))
            total += batch_loss * batch_weight
            weight_total += batch_weight
            if self._interrupt is not None and self._interrupt.requested:
                break
        return total / max(weight_total, 1e-300)

    def fit(
        self,
        X: Array,
        Y: Array,
        sample_weight: Array | None = None,
        max_iter: int = 200,
        validation: tuple[Array, Array, Callable[[], float]] | None = None,
    ) -> History:
        """Train for up to ``max_iter`` epochs (or L-BFGS iterations).

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
        Y : ndarray of shape (n_samples, n_outputs)
            Targets in the loss's format (e.g. one-hot rows).
        sample_weight : ndarray of shape (n_samples,), optional
        max_iter : int
            Epochs to run in this call (counted on from any earlier call).
        validation : (X_val, Y_val, score) or None
            With validation data, ``score()`` (higher is better) is recorded each
            epoch, drives the stopping rule, and the best epoch's parameters are
            restored at the end.
        """
        with _InterruptGuard() as guard, np.errstate(over="ignore", invalid="ignore"):
            self._interrupt = guard
            try:
                if isinstance(self.optimizer, LBFGS):
                    self._fit_lbfgs(X, Y, sample_weight, max_iter)
                else:
                    self._fit_epochs(X, Y, sample_weight, max_iter, validation)
            finally:
                self._interrupt = None
        if self.interrupted:
            print(
                f"Training interrupted after {self.epoch} epoch(s); the model keeps its "
                "last completed step.",
                file=sys.stderr,
            )
        return self.history

    def _fit_epochs(
        self,
        X: Array,
        Y: Array,
        sample_weight: Array | None,
        max_iter: int,
        validation: tuple[Array, Array, Callable[[], float]] | None,
    ) -> None:
        network = self.network
        last_epoch = self.epoch + max_iter
        while self.epoch < last_epoch:
            snapshot = network.flat_parameters.copy()
            try:
                loss = self.run_epoch(X, Y, sample_weight)
            except DivergenceError:
                self._restore_finite(snapshot)
                raise
            if not (math.isfinite(loss) and np.isfinite(network.flat_parameters).all()):
                self._restore_finite(snapshot)
                raise DivergenceError(_divergence_message("parameters", self.epoch, self.current_lr))
            assert self._interrupt is not None
            if self._interrupt.requested:
                # A partial epoch: keep its steps, but not as a finished epoch.
                self.interrupted = True
                break
            self.history.loss.append(loss)
            self.history.learning_rate.append(self.current_lr)
            self.epoch += 1
            self.schedule.observe(loss)
            score = validation[2]() if validation is not None else None
            if score is not None:
                self.history.validation_score.append(score)
            if self._update_stopping(loss, score):
                self.converged = True
                break
            if any(callback(self) for callback in self.callbacks):
                break
        else:
            self._warn_not_converged()
        if validation is not None and self._best_parameters is not None:
            network.flat_parameters[...] = self._best_parameters

    def _restore_finite(self, snapshot: Array) -> None:
        if not np.isfinite(self.network.flat_parameters).all():
            self.network.flat_parameters[...] = snapshot

    def _update_stopping(self, loss: float, score: float | None) -> bool:
        """scikit-learn's rule: count epochs without an improvement of ``tol``."""
        if score is not None:
            if score > self._best_score:
                self._best_parameters = self.network.flat_parameters.copy()
            improved = self.tol is None or score >= self._best_score + self.tol
            self._best_score = max(self._best_score, score)
        else:
            improved = self.tol is None or loss <= self._best_loss - self.tol
            self._best_loss = min(self._best_loss, loss)
        self._no_improvement = 0 if improved else self._no_improvement + 1
        return self.tol is not None and self._no_improvement >= self.n_iter_no_change

    def _warn_not_converged(self) -> None:
        if self.tol is not None:
            warnings.warn(
                f"Stopped at max_iter={self.epoch} epochs before the loss settled "
                f"(tol={self.tol}); raise max_iter, scale the features or raise the "
                "learning rate.",
                ConvergenceWarning,
                stacklevel=4,
            )

    def _fit_lbfgs(self, X: Array, Y: Array, sample_weight: Array | None, max_iter: int) -> None:
        assert isinstance(self.optimizer, LBFGS)
        network = self.network
        interrupt = self._interrupt

        def objective(theta: Array) -> tuple[float, Array]:
            network.flat_parameters[...] = theta
            loss = self.compute_gradients(X, Y, sample_weight, training=False)
            return loss, network.flat_gradients.copy()

        def record(iteration: int, loss: float, theta: Array) -> bool:
            self.history.loss.append(loss)
            self.history.learning_rate.append(1.0)
            self.epoch += 1
            network.flat_parameters[...] = theta
            stop = any(callback(self) for callback in self.callbacks)
            return stop or (interrupt is not None and interrupt.requested)

        start = network.flat_parameters.copy()
        gtol = 0.0 if self.tol is None else self.tol
        theta, loss, _, converged = self.optimizer.minimize(
            objective, start, max_iter=max_iter, gtol=gtol, callback=record
        )
        if not (math.isfinite(loss) and np.isfinite(theta).all()):
            network.flat_parameters[...] = start
            raise DivergenceError(_divergence_message("loss", self.epoch, 1.0))
        network.flat_parameters[...] = theta
        self.interrupted = interrupt is not None and interrupt.requested
        self.converged = converged
        if not converged and not self.interrupted and self.epoch >= max_iter:
            self._warn_not_converged()
