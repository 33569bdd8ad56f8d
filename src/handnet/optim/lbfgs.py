r"""Optimizers that minimise the full-batch objective themselves: L-BFGS.

A line search evaluates the loss to choose each step, so such an optimizer is given
the objective ``theta -> (loss, gradient)`` over all the training rows, not a
gradient per batch (as PyTorch's ``LBFGS.step(closure)``). It is an
:class:`~handnet.optim.base.Optimizer` like the others, registered in
:data:`~handnet.optim.optimizers.OPTIMIZERS` as ``"lbfgs"``; the trainer asks
``optimizer.full_batch`` and drives :meth:`FullBatchOptimizer.minimize`
(:mod:`handnet.training.lbfgs`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ..data.validation import check_interval, check_positive
from .base import Optimizer, _check_state_array

#: A curvature pair ``(s, y)`` is kept only if :math:`s \cdot y > ` this times
#: :math:`y \cdot y`: clearly positive curvature, so that the inverse-Hessian model stays
#: positive definite (the usual safeguard; Nocedal & Wright, section 7.2).
CURVATURE_MIN = 1e-10

Array = NDArray[np.floating]

Objective = Callable[[Array], tuple[float, Array]]


#: :func:`stalled`'s bound on the largest gradient entry, relative to the loss.
STALL_GRADIENT = 0.1


def stalled(f: float, g: Array) -> bool:
    r"""Whether a failed line search at loss ``f`` and gradient ``g`` is a stall, not a minimum.

    :math:`\lVert g\rVert_\infty > 0.1 \max(1, |f|)`: a gradient that large says the
    loss still falls steeply along some parameter, yet no step could be resolved;
    that is a badly conditioned loss (features in the tens of thousands: an entry
    of 678 at a loss of 0.69), and the model may be far from any minimum. Smaller
    gradients are taken as a minimum to rounding: a ReLU network's loss, whose
    kinks can defeat the search near its minimum, stopped at 3e-3 (iris) and 6e-4.
    """
    return float(np.max(np.abs(g), initial=0.0)) > STALL_GRADIENT * max(1.0, abs(f))


class FullBatchOptimizer(Optimizer):
    """An optimizer that minimises the full-batch objective itself (a line search picks steps).

    The trainer hands it ``fun: theta -> (loss, gradient)`` over all the training
    rows and calls :meth:`minimize`; batches, learning rates, schedules and
    gradient clipping do not apply (a subclass takes no ``learning_rate``).
    Each of its iterations is recorded as an epoch. A new one is a subclass
    with :meth:`minimize` (and its own :meth:`state_dict`, :meth:`load_state_dict`
    and :meth:`check_state_dict` where it keeps state), registered in
    :data:`OPTIMIZERS`.
    """

    full_batch: ClassVar[bool] = True
    #: Why the last :meth:`minimize` stopped (``"gtol"``, ``"max_iter"``, ...; ``""`` before any).
    stop_reason: str = ""

    def __init__(self) -> None:
        # The line search chooses the step; 1.0 is kept for a uniform API.
        super().__init__(learning_rate=1.0)
        self.reset()

    def step(self, pairs: Iterable[tuple[Array, Array]]) -> None:
        raise TypeError(
            f"{type(self).__name__} minimises the full-batch objective: call minimize() "
            "(a Trainer or an estimator does), not step()"
        )

    def minimize(
        self,
        fun: Objective,
        x0: Array,
        max_iter: int = 100,
        gtol: float = 1e-6,
        ftol: float | None = None,
        callback: Callable[[int, float, Array], bool | None] | None = None,
        max_evaluations: int | None = None,
    ) -> tuple[Array, float, Array, bool]:
        """Minimise ``fun`` from ``x0``; returns ``(x, f, grad, converged)``."""
        raise NotImplementedError


class LBFGS(FullBatchOptimizer):
    r"""Limited-memory BFGS with a strong-Wolfe line search (full batch).

    Each iteration builds a quasi-Newton direction :math:`d = -H g` from the last
    ``memory`` pairs :math:`s_i = \theta_{i+1} - \theta_i`, :math:`y_i = g_{i+1} - g_i`
    with the *two-loop recursion* (Nocedal & Wright, Algorithm 7.4), starting from
    :math:`H_0 = \frac{s^\top y}{y^\top y} I`, then moves along it by a step
    :math:`a` satisfying the strong Wolfe conditions (Algorithms 3.5-3.6):

    .. math::

        f(\theta + a d) &\le f(\theta) + c_1\, a\, g^\top d \quad\text{(enough decrease)}\\
        |\nabla f(\theta + a d)^\top d| &\le c_2\, |g^\top d| \quad\text{(curvature)}

    The curvature condition guarantees :math:`s^\top y > 0`, which keeps :math:`H`
    positive definite.

    Use :meth:`minimize` with a function returning ``(loss, gradient)`` of a flat
    parameter vector; the models do this for ``optimizer="lbfgs"``.

    Parameters
    ----------
    memory : int, default 10
        Number of :math:`(s, y)` pairs kept.
    c1, c2 : float, default 1e-4 and 0.9
        The Wolfe constants, :math:`0 < c_1 < c_2 < 1`.
    max_line_search : int, default 25
        Evaluations allowed per line search (and per zoom).
    first_step : {"unit_l1", "inverse_l2"}, default "unit_l1"
        The first trial step along steepest descent (first iteration, and after a
        restart; later iterations try 1): :math:`\min(1, 1/\lVert g\rVert_1)`, or
        :math:`1/\lVert g\rVert_2` as SciPy's L-BFGS-B (which scikit-learn's MLP uses).
    """

    def __init__(
        self,
        memory: int = 10,
        c1: float = 1e-4,
        c2: float = 0.9,
        max_line_search: int = 25,
        first_step: str = "unit_l1",
    ) -> None:
        self.memory: int = check_positive(memory, "memory", integer=True)
        self.c1 = check_interval(c1, "c1", 0.0, 1.0)
        self.c2 = check_interval(c2, "c2", 0.0, 1.0)
        if not self.c1 < self.c2:
            raise ValueError(f"need 0 < c1 < c2 < 1, got c1={c1!r}, c2={c2!r}")
        self.max_line_search: int = check_positive(max_line_search, "max_line_search", integer=True)
        if first_step not in ("unit_l1", "inverse_l2"):
            raise ValueError(
                f"first_step must be 'unit_l1' or 'inverse_l2', got {first_step!r}"
            )
        self.first_step = first_step
        super().__init__()

    def reset(self) -> None:
        super().reset()
        self.s: list[Array] = []
        self.y: list[Array] = []
        self.iterations = 0
        self.n_evaluations = 0
        #: Why the last :meth:`minimize` stopped: ``"gtol"``, ``"ftol"`` (converged),
        #: ``"max_iter"``, ``"max_evaluations"``, ``"callback"`` (not converged), or
        #: ``"line_search"``: no step lowered the loss, even along the steepest descent
        #: (converged, unless the gradient is still steep: :func:`stalled`); ``""``
        #: before any.
        self.stop_reason = ""

    def state_dict(self) -> dict[str, Any]:
        """The curvature pairs and counters: an L-BFGS run resumes exactly from them."""
        size = len(self.s[0]) if self.s else 0
        return {
            "iterations": self.iterations,
            "n_evaluations": self.n_evaluations,
            "s": np.array(self.s, dtype=np.float64).reshape(len(self.s), size),
            "y": np.array(self.y, dtype=np.float64).reshape(len(self.y), size),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reset()
        self.s = [np.array(row, dtype=np.float64) for row in state["s"]]
        self.y = [np.array(row, dtype=np.float64) for row in state["y"]]
        self.iterations = int(state["iterations"])
        self.n_evaluations = int(state["n_evaluations"])

    def check_state_dict(
        self, state: dict[str, Any], n_parameters: int, dtype: np.dtype[Any]
    ) -> None:
        """``s`` and ``y``: finite float64 ``(k, n_parameters)``, ``k <= memory``, same shape."""
        evaluations = state["n_evaluations"]
        if isinstance(evaluations, bool) or not isinstance(evaluations, int) or evaluations < 0:
            raise ValueError(f"n_evaluations must be an integer >= 0, got {evaluations!r}")
        for name in ("s", "y"):
            pairs = state[name]
            _check_state_array(pairs, name, None, np.dtype(np.float64))
            if pairs.shape[0] and pairs.shape[1] != n_parameters:
                raise ValueError(f"{name} must have {n_parameters} columns, got {pairs.shape}")
            if pairs.shape[0] > self.memory:
                raise ValueError(f"{name} holds {pairs.shape[0]} pairs, more than memory")
        if state["s"].shape != state["y"].shape:
            raise ValueError(f"s and y differ in shape: {state['s'].shape} vs {state['y'].shape}")
        for k, (s, y) in enumerate(zip(state["s"], state["y"], strict=True)):
            # minimize keeps only pairs of positive curvature; the two-loop recursion
            # divides by s . y, and a pair of another sign would turn its direction.
            if not float(np.dot(s, y)) > CURVATURE_MIN * float(np.dot(y, y)):
                raise ValueError(
                    f"curvature pair {k} has s . y = {float(np.dot(s, y)):.3g}: L-BFGS keeps "
                    "only pairs with s . y > 0"
                )

    def __repr__(self) -> str:
        return (
            f"LBFGS(memory={self.memory}, c1={self.c1}, c2={self.c2}, "
            f"max_line_search={self.max_line_search}, first_step={self.first_step!r})"
        )

    def direction(self, grad: Array) -> Array:
        """The two-loop recursion: :math:`-H g` from the stored pairs."""
        q = grad.astype(np.float64, copy=True)
        alphas = []
        rhos = [1.0 / float(np.dot(y, s)) for s, y in zip(self.s, self.y, strict=True)]
        for s, y, rho in reversed(list(zip(self.s, self.y, rhos, strict=True))):
            alpha = rho * float(np.dot(s, q))
            q -= alpha * y
            alphas.append(alpha)
        if self.s:
            s, y = self.s[-1], self.y[-1]
            q *= float(np.dot(s, y)) / float(np.dot(y, y))
        pairs = zip(self.s, self.y, rhos, strict=True)
        for (s, y, rho), alpha in zip(pairs, reversed(alphas), strict=True):
            beta = rho * float(np.dot(y, q))
            q += (alpha - beta) * s
        return -q

    def minimize(
        self,
        fun: Objective,
        x0: Array,
        max_iter: int = 100,
        gtol: float = 1e-6,
        ftol: float | None = None,
        callback: Callable[[int, float, Array], bool | None] | None = None,
        max_evaluations: int | None = None,
    ) -> tuple[Array, float, Array, bool]:
        """Minimise ``fun`` from ``x0``.

        Parameters
        ----------
        fun : callable ``x -> (f, grad)``
        x0 : ndarray of shape (n_parameters,)
        max_iter : int
            Maximum number of iterations (line searches).
        gtol : float
            Stop when :math:`\\lVert g\\rVert_\\infty \\le` ``gtol``.
        ftol : float, optional
            Stop when the relative decrease of ``f`` falls below ``ftol``
            (default: 10 machine epsilons of the parameters' dtype).
        callback : callable ``(iteration, f, x) -> bool``, optional
            Called after each iteration; returning ``True`` stops.
        max_evaluations : int, optional
            Stop after the iteration during which the number of evaluations of
            ``fun`` in this call exceeded ``max_evaluations`` (SciPy's ``maxfun``:
            a line search is never cut short, and, as in SciPy, this test comes
            before the ``ftol`` test).

        Returns
        -------
        x, f, grad, converged
            :attr:`stop_reason` says why it stopped.
        """
        dtype = x0.dtype
        if ftol is None:
            ftol = 10 * float(np.finfo(dtype).eps)
        x = np.array(x0, dtype=dtype, copy=True)
        first_evaluation = self.n_evaluations
        f, g = fun(x)
        self.n_evaluations += 1
        converged = False
        self.stop_reason = "max_iter"
        done = 0
        while done < max_iter:
            if float(np.max(np.abs(g), initial=0.0)) <= gtol:
                converged, self.stop_reason = True, "gtol"
                break
            d = self.direction(g).astype(dtype, copy=False)
            slope = float(np.dot(g, d))
            if not slope < 0:  # not a descent direction: restart from steepest descent
                self.s, self.y = [], []
                d = -g
                slope = -float(np.dot(g, g))
            first_step = 1.0 if self.s else self._first_trial_step(g)
            step, f_new, g_new = self._line_search(fun, x, f, g, d, slope, first_step)
            if step == 0.0:
                # No step lowered the loss enough. The curvature pairs may be what
                # misleads (a badly conditioned loss): forget them and search along
                # the steepest descent, as SciPy's L-BFGS-B does. Failing that too,
                # stop; that is not convergence (unscaled features, most often).
                if self.s:
                    self.s, self.y = [], []
                    continue
                # Near a minimum the loss cannot resolve a step (rounding, kinks):
                # that is convergence; with a steep gradient it is a stall.
                self.stop_reason = "line_search"
                converged = not stalled(f, g)
                break
            s = (step * d).astype(dtype, copy=False)
            x = x + s
            y = g_new - g
            if float(np.dot(s, y)) > CURVATURE_MIN * float(np.dot(y, y)):
                self.s.append(s.astype(np.float64))
                self.y.append(y.astype(np.float64))
                if len(self.s) > self.memory:
                    self.s.pop(0)
                    self.y.pop(0)
            decrease = f - f_new
            f, g = f_new, g_new
            self.iterations += 1
            done += 1
            if callback is not None and callback(self.iterations, f, x):
                self.stop_reason = "callback"
                break
            if (
                max_evaluations is not None
                and self.n_evaluations - first_evaluation > max_evaluations
            ):
                self.stop_reason = "max_evaluations"
                break
            if decrease <= ftol * max(abs(f), abs(f + decrease), 1.0):
                converged, self.stop_reason = True, "ftol"
                break
        return x, f, g, converged

    def _first_trial_step(self, grad: Array) -> float:
        """The trial step along :math:`-g` when there is no curvature information yet."""
        if self.first_step == "inverse_l2":
            return 1.0 / max(float(np.sqrt(np.dot(grad, grad))), 1e-12)
        return min(1.0, 1.0 / max(float(np.sum(np.abs(grad))), 1e-12))

    def _evaluate(self, fun: Objective, x: Array, d: Array, step: float) -> tuple[float, Array]:
        self.n_evaluations += 1
        f, g = fun(x + x.dtype.type(step) * d)
        return f, g

    def _line_search(
        self, fun: Objective, x: Array, f0: float, g0: Array, d: Array, slope0: float, step: float
    ) -> tuple[float, float, Array]:
        """Strong-Wolfe line search (Nocedal & Wright, Algorithm 3.5)."""
        c1, c2 = self.c1, self.c2
        previous = (0.0, f0, slope0, g0)
        for i in range(self.max_line_search):
            f, g = self._evaluate(fun, x, d, step)
            slope = float(np.dot(g, d))
            if not np.isfinite(f):
                step *= 0.5  # overshot into overflow: back off
                continue
            if f > f0 + c1 * step * slope0 or (i > 0 and f >= previous[1]):
                return self._zoom(fun, x, f0, slope0, d, previous, (step, f, slope, g))
            if abs(slope) <= -c2 * slope0:
                return step, f, g
            if slope >= 0:
                return self._zoom(fun, x, f0, slope0, d, (step, f, slope, g), previous)
            previous = (step, f, slope, g)
            step *= 2.0
        return previous[0], previous[1], previous[3]

    def _zoom(
        self,
        fun: Objective,
        x: Array,
        f0: float,
        slope0: float,
        d: Array,
        low: tuple[float, float, float, Array],
        high: tuple[float, float, float, Array],
    ) -> tuple[float, float, Array]:
        """Shrink ``[low, high]`` (Algorithm 3.6) by safeguarded cubic interpolation."""
        c1, c2 = self.c1, self.c2
        for _ in range(self.max_line_search):
            a_low, f_low, s_low, _ = low
            a_high, f_high, s_high, _ = high
            step = _cubic_minimizer(a_low, f_low, s_low, a_high, f_high, s_high)
            width = a_high - a_low
            lo, hi = sorted((a_low + 0.1 * width, a_high - 0.1 * width))
            if step is None or not lo <= step <= hi:
                step = 0.5 * (a_low + a_high)
            if abs(width) < 1e-16 * max(1.0, abs(a_low)):
                break
            f, g = self._evaluate(fun, x, d, step)
            slope = float(np.dot(g, d))
            if not np.isfinite(f) or f > f0 + c1 * step * slope0 or f >= f_low:
                high = (step, f, slope, g)
            else:
                if abs(slope) <= -c2 * slope0:
                    return step, f, g
                if slope * (a_high - a_low) >= 0:
                    high = low
                low = (step, f, slope, g)
        return low[0], low[1], low[3]


def _cubic_minimizer(
    a1: float, f1: float, d1: float, a2: float, f2: float, d2: float
) -> float | None:
    """Minimiser of the cubic through two points with slopes (N&W eq. 3.59)."""
    if a1 == a2:
        return None
    t1 = d1 + d2 - 3.0 * (f1 - f2) / (a1 - a2)
    radicand = t1 * t1 - d1 * d2
    if radicand < 0 or not np.isfinite(radicand):
        return None
    t2 = np.copysign(np.sqrt(radicand), a2 - a1)
    denominator = d2 - d1 + 2.0 * t2
    if denominator == 0:
        return None
    return float(a2 - (a2 - a1) * (d2 + t2 - t1) / denominator)
