"""The drop-in's fit loops: the objective, full-batch L-BFGS, and the stochastic solvers.

scikit-learn's rules, on handnet's optimizers: the mean loss of a batch plus its
scaling of ``alpha``, SciPy's L-BFGS-B settings, and the epochs of ``sgd`` and
``adam`` with their learning-rate schedules, early stopping and stopping rules.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import is_classifier
from sklearn.model_selection import train_test_split
from sklearn.utils import gen_batches
from sklearn.utils import shuffle as shuffle_indices

from ..exceptions import ConvergenceWarning, sklearn_compatible
from ..nn import losses as _losses
from ..nn.network import Sequential
from ..nn.penalties import add_l2
from ..optim.optimizers import LBFGS, Optimizer, SklearnAdam, SklearnSGD
from ._params import Array, _dense, _Hyperparameters, _output_loss

#: SciPy's L-BFGS-B stops when the relative decrease of the loss is below
#: ``factr * eps`` with ``factr = 1e7`` (its default ``ftol``); scikit-learn keeps it.
_LBFGS_FTOL = 1e7 * float(np.finfo(np.float64).eps)


class _Solvers(_Hyperparameters):
    """The fit loops of :class:`~handnet.sklearn._base._BaseMultilayerPerceptron`.

    Each loop trains the network in place (its flat parameter vector) and keeps
    scikit-learn's fitted attributes: ``n_iter_``, ``t_``, ``loss_``,
    ``loss_curve_``, ``best_loss_``, ``validation_scores_``, ``best_validation_score_``.
    """

    # Fitted state the loops read or keep (set by the estimator's first fit).
    n_outputs_: int
    out_activation_: str
    n_iter_: int
    t_: int
    loss_: float
    _network: Sequential
    _optimizer: Optimizer
    _random_state: np.random.RandomState
    _label_binarizer: Any
    _best_parameters: Array

    def _initialize_stochastic_attributes(self) -> None:
        self.loss_curve_: list[float] = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_: list[float] | None = []
            self.best_validation_score_: float | None = -np.inf
            self.best_loss_: float | None = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def _score(self, X: Any, y: Any, sample_weight: Array | None = None) -> float:
        raise NotImplementedError

    # --- the objective -------------------------------------------------------------------

    def _objective(
        self,
        network: Sequential,
        loss: _losses.Loss,
        X: Array,
        Y: Array,
        sample_weight: Array | None,
    ) -> float:
        r"""Loss of one batch, with the gradients left in ``network.flat_gradients``.

        .. math:: J = \frac{\sum_i s_i \ell_i}{\sum_i s_i}
                      + \frac{\alpha}{2 \sum_i s_i} \sum W^2

        (:math:`s_i = 1` without sample weights): scikit-learn's scaling of ``alpha``.
        """
        logits = network.forward(X, training=True)
        value, dlogits = loss(logits, Y, sample_weight)
        network.backward(dlogits)
        n = float(X.shape[0]) if sample_weight is None else float(np.sum(sample_weight))
        value += add_l2(network.weights, network.weight_gradients, self.alpha / n)
        return float(value)

    # --- the solvers -----------------------------------------------------------------------

    def _fit_lbfgs(
        self, network: Sequential, X: Array, Y: Array, sample_weight: Array | None
    ) -> None:
        """Full-batch L-BFGS (:class:`~handnet.optim.optimizers.LBFGS`) on the objective."""
        loss = _output_loss(self.out_activation_)

        def objective(theta: Array) -> tuple[float, Array]:
            network.flat_parameters[...] = theta
            value = self._objective(network, loss, X, Y, sample_weight)
            return value, network.flat_gradients.copy()

        def report(iteration: int, value: float, theta: Array) -> bool:
            print(f"Iteration {iteration}, loss = {value:.8f}")
            return False

        # SciPy's L-BFGS-B settings, which scikit-learn uses: 10 pairs, Moré-Thuente's
        # c1 = 1e-3 and c2 = 0.9, at most 20 evaluations per line search, a first
        # step of 1 / |g|_2.
        solver = LBFGS(memory=10, c1=1e-3, c2=0.9, max_line_search=20, first_step="inverse_l2")
        theta, value, _, converged = solver.minimize(
            objective,
            network.flat_parameters.copy(),
            max_iter=self.max_iter,
            gtol=self.tol,
            ftol=_LBFGS_FTOL,
            callback=report if self.verbose else None,
            max_evaluations=self.max_fun,
        )
        network.flat_parameters[...] = theta
        self.n_iter_ = min(solver.iterations, self.max_iter)
        self.loss_ = float(value)
        if not converged:
            reason = {
                "max_iter": "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT",
                "max_evaluations": "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT",
                "line_search": "ABNORMAL_TERMINATION_IN_LNSRCH",
            }.get(solver.stop_reason, solver.stop_reason)
            message = (
                f"lbfgs failed to converge after {self.n_iter_} iteration(s) (status=1):\n"
                f"{reason}\n"
            )
            if self.n_iter_ == self.max_iter:
                message += (
                    "\nIncrease the number of iterations to improve the convergence "
                    f"(max_iter={self.max_iter})."
                )
            message += (
                "\nYou might also want to scale the data as shown in:\n"
                "    https://scikit-learn.org/stable/modules/preprocessing.html"
            )
            warnings.warn(message, sklearn_compatible(ConvergenceWarning), stacklevel=3)

    def _make_optimizer(self) -> Optimizer:
        if self.solver == "sgd":
            return SklearnSGD(self.learning_rate_init, self.momentum, self.nesterovs_momentum)
        return SklearnAdam(self.learning_rate_init, self.beta_1, self.beta_2, self.epsilon)

    def _fit_stochastic(
        self,
        network: Sequential,
        X: Any,
        y: NDArray[Any],
        sample_weight: Array | None,
        incremental: bool,
    ) -> None:
        """Epochs of mini-batch steps with scikit-learn's stopping rules."""
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        if not hasattr(self, "loss_curve_"):  # e.g. warm start after solver="lbfgs"
            self._initialize_stochastic_attributes()
        early_stopping = self.early_stopping
        X_val: Any = None
        y_val: Any = None
        sample_weight_val: Array | None = None
        if early_stopping:
            X_train, y_train, sample_weight_train, X_val, y_val, sample_weight_val = (
                self._validation_split(X, y, sample_weight)
            )
        else:
            X_train, y_train, sample_weight_train = X, y, sample_weight
        if not hasattr(self, "_best_parameters"):
            self._best_parameters = network.flat_parameters.copy()
        Y_train = np.asarray(y_train, dtype=network.dtype)
        loss = _output_loss(self.out_activation_)
        n_samples = X_train.shape[0]
        sample_idx = np.arange(n_samples, dtype=int)
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than "
                    "sample size. It is going to be clipped",
                    stacklevel=3,
                )
            batch_size = int(np.clip(self.batch_size, 1, n_samples))
        pairs = [(network.flat_parameters, network.flat_gradients)]
        try:
            self.n_iter_ = 0
            with network.reusing_buffers():
                for _ in range(self.max_iter):
                    if self.shuffle:
                        sample_idx = shuffle_indices(sample_idx, random_state=self._random_state)
                    accumulated_loss = 0.0
                    for batch_slice in gen_batches(n_samples, batch_size):
                        batch: Any = sample_idx[batch_slice] if self.shuffle else batch_slice
                        batch_loss = self._objective(
                            network,
                            loss,
                            _dense(X_train[batch]),
                            Y_train[batch],
                            None if sample_weight_train is None else sample_weight_train[batch],
                        )
                        accumulated_loss += batch_loss * (batch_slice.stop - batch_slice.start)
                        self._optimizer.step(pairs)
                    self.n_iter_ += 1
                    self.loss_ = accumulated_loss / n_samples
                    self.t_ += n_samples
                    self.loss_curve_.append(self.loss_)
                    if self.verbose:
                        print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
                    self._update_no_improvement_count(
                        early_stopping, X_val, y_val, sample_weight_val
                    )
                    if self.solver == "sgd" and self.learning_rate == "invscaling":
                        # Per sample: t_ counts the samples seen so far.
                        self._optimizer.learning_rate = float(self.learning_rate_init) / (
                            (self.t_ + 1) ** self.power_t
                        )
                    if self._no_improvement_count > self.n_iter_no_change:
                        what = "Validation score" if early_stopping else "Training loss"
                        message = (
                            f"{what} did not improve more than tol={self.tol:f} for "
                            f"{self.n_iter_no_change} consecutive epochs."
                        )
                        if self._trigger_stopping(message):
                            break
                        self._no_improvement_count = 0
                    if incremental:
                        break
                    if self.n_iter_ == self.max_iter:
                        warnings.warn(
                            f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                            "reached and the optimization hasn't converged yet.",
                            sklearn_compatible(ConvergenceWarning),
                            stacklevel=3,
                        )
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=3)
        if early_stopping:
            network.flat_parameters[...] = self._best_parameters

    def _validation_split(
        self, X: Any, y: NDArray[Any], sample_weight: Array | None
    ) -> tuple[Any, NDArray[Any], Array | None, Any, Any, Array | None]:
        """Hold out ``validation_fraction`` of the samples for early stopping.

        Returns the training part (``X``, ``y``, weights) then the held-out part, its
        ``y`` as labels for a classifier (what its score compares with).
        """
        # Stratified on the binarised labels, not for multilabel (scikit-learn's rule).
        stratify = y if is_classifier(self) and self.n_outputs_ == 1 else None
        arrays = [X, y] if sample_weight is None else [X, y, sample_weight]
        split = train_test_split(
            *arrays,
            random_state=self._random_state,
            test_size=self.validation_fraction,
            stratify=stratify,
        )
        X_train, X_val, y_train, y_val = split[:4]
        sample_weight_train = None if sample_weight is None else split[4]
        sample_weight_val = None if sample_weight is None else split[5]
        if X_val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' "
                "or the size of your dataset."
            )
        if is_classifier(self):
            y_val = self._label_binarizer.inverse_transform(y_val)
        return X_train, y_train, sample_weight_train, X_val, y_val, sample_weight_val

    # --- the stopping rules ----------------------------------------------------------------

    def _trigger_stopping(self, message: str) -> bool:
        """Stop, or (``learning_rate="adaptive"``) divide the learning rate by 5 and go on."""
        if not (self.solver == "sgd" and self.learning_rate == "adaptive"):
            if self.verbose:
                print(message + " Stopping.")
            return True
        if self._optimizer.learning_rate <= 1e-6:
            if self.verbose:
                print(message + " Learning rate too small. Stopping.")
            return True
        self._optimizer.learning_rate /= 5.0
        if self.verbose:
            print(message + f" Setting learning rate to {self._optimizer.learning_rate:f}")
        return False

    def _update_no_improvement_count(
        self, early_stopping: bool, X: Any, y: Any, sample_weight: Array | None
    ) -> None:
        """Count the epochs without an improvement by ``tol`` (validation score or loss)."""
        if early_stopping:
            assert self.validation_scores_ is not None and self.best_validation_score_ is not None
            score = self._score(X, y, sample_weight=sample_weight)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_parameters = self._network.flat_parameters.copy()
        else:
            assert self.best_loss_ is not None
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]
