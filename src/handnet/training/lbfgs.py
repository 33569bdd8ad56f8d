"""Training by L-BFGS: :meth:`LBFGS.minimize <handnet.optim.optimizers.LBFGS.minimize>` on the
full training loss, each of its iterations recorded (and checked) as an epoch."""

from __future__ import annotations

import math
import warnings

import numpy as np
from numpy.typing import NDArray

from ..data.streaming import RowBlocks
from ..exceptions import ConvergenceWarning, DivergenceError, sklearn_compatible
from ..optim.optimizers import FullBatchOptimizer
from .protocol import TrainerView
from .safety import divergence_message
from .stopping import _CALLER_OF_FIT, Validation

Array = NDArray[np.floating]


def fit_lbfgs(
    trainer: TrainerView,
    X: Array | RowBlocks,
    Y: Array | None,
    sample_weight: Array | None,
    max_iter: int,
    validation: Validation | None = None,
) -> None:
    """Run up to ``max_iter`` L-BFGS iterations (see :meth:`Trainer.fit`)."""
    optimizer = trainer.optimizer
    assert isinstance(optimizer, FullBatchOptimizer)
    network = trainer.network
    interrupt = trainer._interrupt
    # LBFGS.minimize's own default, spelled out so that a resumed run makes
    # the same relative-decrease test (see _lbfgs_pending).
    ftol = 10 * float(np.finfo(network.dtype).eps)
    if trainer._lbfgs_pending is not None:
        f, decrease = trainer._lbfgs_pending
        if decrease <= ftol * max(abs(f), abs(f + decrease), 1.0):
            trainer.converged = trainer.finished = True
            trainer._save_checkpoint()
            return
    iterations = _Iterations(trainer, (X, Y, sample_weight), max_iter, validation)
    start_epoch = trainer.epoch
    start = network.flat_parameters.copy()
    gtol = 0.0 if trainer._stopping.tol is None else trainer._stopping.tol
    theta, loss, gradient, converged = optimizer.minimize(
        iterations.objective,
        start,
        max_iter=max_iter,
        gtol=gtol,
        ftol=ftol,
        callback=iterations.record,
    )
    if not (math.isfinite(loss) and np.isfinite(theta).all()):
        network.flat_parameters[...] = start
        raise DivergenceError(divergence_message("loss", trainer.epoch, 1.0))
    network.flat_parameters[...] = theta
    trainer.interrupted = (
        interrupt is not None
        and interrupt.requested
        and not converged
        and not iterations.stopped_by_callback
        and trainer.epoch - start_epoch < max_iter
    )
    trainer.converged = converged
    if trainer.interrupted:
        trainer._save_checkpoint()
        return
    if iterations.stopped_by_validation:
        trainer.converged = True
    elif (
        not converged
        and not iterations.stopped_by_callback
        and trainer.epoch - start_epoch >= max_iter
    ):
        trainer._stopping.warn_not_converged(trainer.epoch, trainer.warn_at_max_iter)
    elif optimizer.stop_reason == "line_search" and not converged:
        if trainer.epoch == start_epoch:
            check_first_step(gradient)
        if trainer.warn_at_max_iter:
            warn_stalled(trainer.epoch - start_epoch, loss, gradient)
    trainer._finish(validation)


class _Iterations:
    """The objective L-BFGS minimises, and its callback after every iteration.

    An iteration is recorded as an epoch: its loss in the history (learning rate
    1), the validation data scored and the stopping rule told, the callbacks
    called, a checkpoint written every ``checkpoint_every`` iterations.
    """

    def __init__(
        self,
        trainer: TrainerView,
        data: tuple[Array | RowBlocks, Array | None, Array | None],
        max_iter: int,
        validation: Validation | None,
    ) -> None:
        self.trainer = trainer
        self.network = trainer.network
        self.interrupt = trainer._interrupt
        self.every = trainer.checkpoint_every
        self.data = data  # X, Y, sample_weight
        self.max_iter = max_iter
        self.validation = validation
        self.start_epoch = trainer.epoch
        self.previous_f: list[float] = []
        self.stopped_by_callback = False
        self.stopped_by_validation = False

    def objective(self, theta: Array) -> tuple[float, Array]:
        network = self.network
        network.flat_parameters[...] = theta
        loss = self.trainer.compute_gradients(*self.data, training=False)
        if not self.previous_f:
            self.previous_f.append(loss)  # f at the starting point
        return loss, network.flat_gradients.copy()

    def record(self, iteration: int, loss: float, theta: Array) -> bool:
        """Record an iteration; whether to stop (a callback, early stopping or an interrupt)."""
        trainer = self.trainer
        previous_f = self.previous_f
        # L-BFGS tests the relative decrease of an iteration after this callback;
        # an interrupt stops before that test, so it is kept to be made on resume.
        trainer._lbfgs_pending = (loss, previous_f[0] - loss)
        previous_f[0] = loss
        history = trainer.history
        self.network.flat_parameters[...] = theta
        # The objective at theta, less the penalty at theta: exact.
        history.loss.append(loss)
        history.data_loss.append(loss - (trainer.penalty_value() or 0.0))
        history.learning_rate.append(1.0)
        history.time.append(trainer.elapsed())
        trainer.epoch += 1
        if self.validation is not None:
            # Early stopping counts L-BFGS iterations as it counts epochs.
            stopping = trainer._stopping
            validation_loss = stopping.record_validation(trainer.history, self.validation)
            if stopping.update(loss, validation_loss, self.network):
                self.stopped_by_validation = True
        self.stopped_by_callback = (
            any(callback(trainer) for callback in trainer.callbacks) or self.stopped_by_validation
        )
        interrupt, every = self.interrupt, self.every
        interrupted = interrupt is not None and interrupt.requested
        if (
            every
            and trainer.epoch % every == 0
            and not (self.stopped_by_callback or interrupted)
            and trainer.epoch - self.start_epoch < self.max_iter
        ):
            trainer._save_checkpoint()
        return self.stopped_by_callback or interrupted


def warn_stalled(iterations: int, loss: float, gradient: Array) -> None:
    """L-BFGS stopped because no step lowered the loss, not because it converged.

    The line search failed along the quasi-Newton direction and then along the
    steepest descent. Most often the features differ in scale by orders of
    magnitude: the loss is then so badly conditioned that the search cannot
    resolve a step, and the model can be far from the minimum (below chance, on
    features in the tens of thousands). scikit-learn warns here too (SciPy's
    ``ABNORMAL_TERMINATION_IN_LNSRCH``).
    """
    warnings.warn(
        f"L-BFGS stopped after {iterations} iteration(s) without converging: no step "
        f"lowered the loss (now {loss:.6g}; largest gradient entry "
        f"{float(np.max(np.abs(gradient), initial=0.0)):.3g}). The loss is likely badly "
        "conditioned: scale the features (zero mean, unit variance, e.g. "
        "sklearn.preprocessing.StandardScaler), then fit again.",
        sklearn_compatible(ConvergenceWarning),
        stacklevel=_CALLER_OF_FIT,
    )


def check_first_step(gradient: Array) -> None:
    """L-BFGS stopped before its first step: no step along the gradient lowered the loss.

    At a minimum (a warm start from a finished fit, say) that is as it should be;
    but when the gradient's squared norm overflows, the line search's slope is
    infinite and no step can be judged: features of enormous magnitude, and the
    model is untrained. That is an error, as a divergence is for the gradient
    methods.
    """
    if math.isfinite(float(np.dot(gradient, gradient))):
        return
    raise DivergenceError(
        "L-BFGS could not take a single step: the gradient's squared norm overflows "
        f"(its largest entry is {float(np.max(np.abs(gradient))):.3g}), so no step along "
        "it can be judged. The model is untrained; scale the features (zero mean, unit "
        "variance) or check X for huge values."
    )
