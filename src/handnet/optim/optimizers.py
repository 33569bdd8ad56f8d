"""Update rules: objects with a ``step`` over (parameter, gradient) pairs.

Each optimizer keeps its per-parameter state (velocities, moment estimates)
and updates the parameters **in place**::

    optimizer = Adam(learning_rate=1e-3)
    optimizer.step([(weights, grad_weights), (bias, grad_bias)])

The math of each rule is the method ``_update(param, grad, state)``, a few
lines that can be read on their own next to the formula in the class docstring.
The formulas and defaults are PyTorch's documented ones (``torch.optim``), so a
step here equals a step there. Batching, shuffling and schedules live in the
training loop, not here.

A second kind of optimizer chooses its own steps by evaluating the loss
(a line search): a :class:`FullBatchOptimizer` such as :class:`LBFGS` is given
the full-batch objective, ``theta -> (loss, gradient)``, and runs
:meth:`~FullBatchOptimizer.minimize`, as PyTorch's ``LBFGS.step(closure)`` does.
Both kinds are registered in :data:`OPTIMIZERS`; the trainer asks which kind an
optimizer is, never which class.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ..data.validation import check_interval, check_positive
from ..registry import Registry
from ..training.kernels import FUSED_ADAM_MIN_SIZE, fused_adam_step

Array = NDArray[np.floating]
State = dict[str, Any]


def _check_eps(eps: float) -> float:
    """``eps`` as a float, refused unless finite and >= 0 (it keeps divisions finite)."""
    value: float = check_positive(eps, "eps", allow_zero=True)
    return value


class Optimizer:
    """Base class: per-parameter state and the ``step`` loop.

    Parameters
    ----------
    learning_rate : float
        Step size :math:`\\eta`. The training loop's schedules change it between epochs.
    """

    #: Entries of :meth:`_init_state` that are scratch space, not state: a checkpoint
    #: leaves them out, and loading one makes them again.
    scratch_keys: ClassVar[tuple[str, ...]] = ()
    #: Whether the rule minimises the whole objective itself (see :class:`FullBatchOptimizer`).
    full_batch: ClassVar[bool] = False

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate: float = check_positive(learning_rate, "learning_rate")
        self.iterations = 0
        self.state: list[State] = []

    def step(self, pairs: Iterable[tuple[Array, Array]]) -> None:
        """Update every parameter in place from its gradient (one optimisation step)."""
        pairs = list(pairs)
        if not self.state:
            self.state = [self._init_state(p) for p, _ in pairs]
        elif len(self.state) != len(pairs):
            raise ValueError(
                f"this optimizer was started with {len(self.state)} parameters, "
                f"now given {len(pairs)}; call reset() to use it on another model"
            )
        self.iterations += 1
        for (param, grad), state in zip(pairs, self.state, strict=True):
            self._update(param, grad, state)

    def reset(self) -> None:
        """Forget all state (as if newly constructed with the same settings)."""
        self.iterations = 0
        self.state = []

    def _init_state(self, param: Array) -> State:
        return {}

    def _update(self, param: Array, grad: Array, state: State) -> None:
        raise NotImplementedError

    # --- checkpoints ---------------------------------------------------------------------

    def state_template(self, param: Array) -> dict[str, tuple[tuple[int, ...], np.dtype[Any]]]:
        """What a checkpoint holds of this optimizer's state for ``param``: key -> (shape, dtype).

        Whatever :meth:`_init_state` makes, of any shape (per-element moments, one
        number per parameter vector, ...), less :attr:`scratch_keys`. Model files
        check a saved state against it before anything is restored.
        """
        return {
            key: (np.shape(value), np.asarray(value).dtype)
            for key, value in self._init_state(param).items()
            if key not in self.scratch_keys
        }

    def state_dict(self) -> dict[str, Any]:
        """Arrays and numbers that restore this optimizer exactly (for checkpoints)."""
        return {
            "iterations": self.iterations,
            "learning_rate": self.learning_rate,
            "state": [
                {k: np.array(v, copy=True) for k, v in s.items() if k not in self.scratch_keys}
                for s in self.state
            ],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.iterations = int(state["iterations"])
        self.learning_rate = float(state["learning_rate"])
        self.state = [{k: np.array(v, copy=True) for k, v in s.items()} for s in state["state"]]

    def check_state_dict(
        self, state: dict[str, Any], n_parameters: int, dtype: np.dtype[Any]
    ) -> None:
        """Raise ``ValueError`` unless ``state`` (from a file) fits this optimizer.

        The per-parameter state must be what :meth:`state_template` declares for
        a flat vector of ``n_parameters`` in ``dtype``: the same keys, shapes and
        dtypes, finite values. (The caller has checked the scalar entries.)
        """
        slots = state["state"]
        if not isinstance(slots, list) or len(slots) > 1:
            raise ValueError("state must be a list of at most one entry (the flat parameters)")
        template = self.state_template(np.zeros(n_parameters, dtype))
        for i, slot in enumerate(slots):
            if not isinstance(slot, dict) or set(slot) != set(template):
                keys = sorted(slot) if isinstance(slot, dict) else type(slot).__name__
                raise ValueError(f"state[{i}] has {keys}, expected {sorted(template)}")
            for key, value in slot.items():
                shape, expected_dtype = template[key]
                _check_state_array(value, f"state[{i}].{key}", shape, expected_dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(learning_rate={self.learning_rate})"


class SGD(Optimizer):
    r"""Plain gradient descent: :math:`\theta \leftarrow \theta - \eta\, g`.

    Full batch, one example or a mini-batch per step: the batch regime is the
    training loop's business (``batch_size``); the rule is the same.
    """

    def __init__(self, learning_rate: float = 0.01) -> None:
        super().__init__(learning_rate)

    def _update(self, param: Array, grad: Array, state: State) -> None:
        param -= param.dtype.type(self.learning_rate) * grad


class Momentum(Optimizer):
    r"""Heavy-ball momentum, PyTorch's form (``SGD(momentum=mu)``, no dampening).

    .. math::

        v &\leftarrow \mu\, v + g \\
        \theta &\leftarrow \theta - \eta\, v

    with :math:`v = 0` before the first step.
    """

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.9) -> None:
        super().__init__(learning_rate)
        self.momentum = check_interval(momentum, "momentum", 0.0, 1.0, left_closed=True)

    def _init_state(self, param: Array) -> State:
        return {"velocity": np.zeros_like(param)}

    def _update(self, param: Array, grad: Array, state: State) -> None:
        velocity = state["velocity"]
        velocity *= param.dtype.type(self.momentum)
        velocity += grad
        param -= param.dtype.type(self.learning_rate) * velocity


class Nesterov(Momentum):
    r"""Nesterov momentum, PyTorch's form (``SGD(momentum=mu, nesterov=True)``).

    .. math::

        v &\leftarrow \mu\, v + g \\
        \theta &\leftarrow \theta - \eta\, (g + \mu\, v)

    This is the "look-ahead" gradient rewritten so that only the gradient at
    the current parameters is needed (Sutskever et al., 2013).
    """

    def _update(self, param: Array, grad: Array, state: State) -> None:
        velocity = state["velocity"]
        dtype = param.dtype.type
        velocity *= dtype(self.momentum)
        velocity += grad
        param -= dtype(self.learning_rate) * (grad + dtype(self.momentum) * velocity)


class AdaGrad(Optimizer):
    r"""AdaGrad (Duchi et al., 2011), PyTorch's defaults.

    .. math::

        s &\leftarrow s + g^2 \\
        \theta &\leftarrow \theta - \eta\, \frac{g}{\sqrt{s} + \epsilon}
    """

    def __init__(self, learning_rate: float = 0.01, eps: float = 1e-10) -> None:
        super().__init__(learning_rate)
        self.eps = _check_eps(eps)

    def _init_state(self, param: Array) -> State:
        return {"sum_squares": np.zeros_like(param)}

    def _update(self, param: Array, grad: Array, state: State) -> None:
        sum_squares = state["sum_squares"]
        sum_squares += grad * grad
        dtype = param.dtype.type
        param -= dtype(self.learning_rate) * grad / (np.sqrt(sum_squares) + dtype(self.eps))


class RMSProp(Optimizer):
    r"""RMSProp (Hinton, 2012), PyTorch's defaults (``alpha`` is the decay rate).

    .. math::

        s &\leftarrow \rho\, s + (1 - \rho)\, g^2 \\
        \theta &\leftarrow \theta - \eta\, \frac{g}{\sqrt{s} + \epsilon}
    """

    def __init__(self, learning_rate: float = 0.01, rho: float = 0.99, eps: float = 1e-8) -> None:
        super().__init__(learning_rate)
        self.rho = check_interval(rho, "rho", 0.0, 1.0, left_closed=True)
        self.eps = _check_eps(eps)

    def _init_state(self, param: Array) -> State:
        return {"mean_square": np.zeros_like(param)}

    def _update(self, param: Array, grad: Array, state: State) -> None:
        mean_square = state["mean_square"]
        dtype = param.dtype.type
        mean_square *= dtype(self.rho)
        mean_square += dtype(1.0 - self.rho) * grad * grad
        param -= dtype(self.learning_rate) * grad / (np.sqrt(mean_square) + dtype(self.eps))


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), PyTorch's form and defaults.

    At step :math:`t = 1, 2, \dots`:

    .. math::

        m &\leftarrow \beta_1 m + (1 - \beta_1)\, g \\
        v &\leftarrow \beta_2 v + (1 - \beta_2)\, g^2 \\
        \hat m &= m / (1 - \beta_1^t), \quad \hat v = v / (1 - \beta_2^t) \\
        \theta &\leftarrow \theta - \eta\, \frac{\hat m}{\sqrt{\hat v} + \epsilon}

    :math:`\epsilon` is added to the bias-corrected :math:`\sqrt{\hat v}` (as in the
    paper and PyTorch; scikit-learn adds it to the uncorrected one).
    """

    def __init__(
        self,
        learning_rate: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(learning_rate)
        self.beta1 = check_interval(beta1, "beta1", 0.0, 1.0, left_closed=True)
        self.beta2 = check_interval(beta2, "beta2", 0.0, 1.0, left_closed=True)
        self.eps = _check_eps(eps)

    scratch_keys: ClassVar[tuple[str, ...]] = ("buffer",)

    def _init_state(self, param: Array) -> State:
        return {
            "m": np.zeros_like(param),
            "v": np.zeros_like(param),
            "buffer": np.empty_like(param),
        }

    #: Use the compiled single-pass step of :mod:`handnet.training.kernels` on large flat
    #: parameter vectors when numba is installed (same math, float64 arithmetic).
    use_fused = True

    def _update(self, param: Array, grad: Array, state: State, decay: float = 1.0) -> None:
        dtype = param.dtype.type
        t = self.iterations
        m, v, buffer = state["m"], state["v"], state["buffer"]
        step_size = self.learning_rate / (1.0 - self.beta1**t)
        bias_correction2_sqrt = np.sqrt(1.0 - self.beta2**t)
        if (
            self.use_fused
            and param.ndim == 1
            and param.size >= FUSED_ADAM_MIN_SIZE
            and param.flags.c_contiguous
            and fused_adam_step(
                param, grad, m, v, self.beta1, self.beta2, self.eps,
                step_size, bias_correction2_sqrt, decay,
            )
        ):
            return
        if decay != 1.0:
            param *= dtype(decay)
        # m and v are updated in place through one scratch buffer: no temporaries
        # the size of the parameters are allocated per step.
        m *= dtype(self.beta1)
        np.multiply(grad, dtype(1.0 - self.beta1), out=buffer)
        m += buffer
        v *= dtype(self.beta2)
        np.multiply(grad, grad, out=buffer)
        buffer *= dtype(1.0 - self.beta2)
        v += buffer
        np.sqrt(v, out=buffer)
        buffer *= dtype(1.0 / bias_correction2_sqrt)
        buffer += dtype(self.eps)
        np.divide(m, buffer, out=buffer)
        buffer *= dtype(step_size)
        param -= buffer

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        for s in self.state:
            s["buffer"] = np.empty_like(s["m"])  # scratch space, not saved


class AdamW(Adam):
    r"""AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay.

    Before the Adam step, every parameter it is given decays directly,
    independently of the gradient (PyTorch's form and defaults):

    .. math:: \theta \leftarrow \theta - \eta\, \lambda\, \theta

    Unlike an L2 penalty, the decay is not rescaled by Adam's :math:`1/\sqrt{\hat v}`.
    """

    def __init__(
        self,
        learning_rate: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ) -> None:
        super().__init__(learning_rate, beta1, beta2, eps)
        self.weight_decay: float = check_positive(weight_decay, "weight_decay", allow_zero=True)

    def _update(self, param: Array, grad: Array, state: State, decay: float = 1.0) -> None:
        super()._update(param, grad, state, decay=1.0 - self.learning_rate * self.weight_decay)


class SklearnSGD(Optimizer):
    r"""Gradient descent with momentum in scikit-learn's form (``MLPClassifier(solver="sgd")``).

    The learning rate sits *inside* the velocity, so a learning rate changed
    between steps (``invscaling``, ``adaptive``) only scales the new gradient,
    not the velocity already built up:

    .. math::

        v &\leftarrow \mu\, v - \eta\, g \\
        \theta &\leftarrow \theta + v \quad\text{(classical)} \\
        \theta &\leftarrow \theta + \mu\, v - \eta\, g \quad\text{(Nesterov)}

    with :math:`v = 0` before the first step. With a constant :math:`\eta` this is
    :class:`Momentum` / :class:`Nesterov` (PyTorch's form, :math:`\eta` outside the
    velocity) with :math:`v_{\text{here}} = -\eta\, v_{\text{there}}`; with
    ``momentum=0`` it is :class:`SGD`.

    Parameters
    ----------
    learning_rate : float, default 0.001
    momentum : float in [0, 1], default 0.9
    nesterov : bool, default True
    """

    def __init__(
        self, learning_rate: float = 1e-3, momentum: float = 0.9, nesterov: bool = True
    ) -> None:
        super().__init__(learning_rate)
        self.momentum = check_interval(
            momentum, "momentum", 0.0, 1.0, left_closed=True, right_closed=True
        )
        self.nesterov = bool(nesterov)

    def _init_state(self, param: Array) -> State:
        return {"velocity": np.zeros_like(param)}

    def _update(self, param: Array, grad: Array, state: State) -> None:
        dtype = param.dtype.type
        momentum, learning_rate = dtype(self.momentum), dtype(self.learning_rate)
        velocity = state["velocity"]
        velocity *= momentum
        velocity -= learning_rate * grad
        if self.nesterov:
            param += momentum * velocity - learning_rate * grad
        else:
            param += velocity

    def __repr__(self) -> str:
        return (
            f"SklearnSGD(learning_rate={self.learning_rate}, momentum={self.momentum}, "
            f"nesterov={self.nesterov})"
        )


class SklearnAdam(Optimizer):
    r"""Adam in scikit-learn's form (``MLPClassifier(solver="adam")``).

    At step :math:`t = 1, 2, \dots`:

    .. math::

        m &\leftarrow \beta_1 m + (1 - \beta_1)\, g \\
        v &\leftarrow \beta_2 v + (1 - \beta_2)\, g^2 \\
        \eta_t &= \eta\, \frac{\sqrt{1 - \beta_2^t}}{1 - \beta_1^t} \\
        \theta &\leftarrow \theta - \eta_t\, \frac{m}{\sqrt{v} + \epsilon}

    The same as :class:`Adam` except where :math:`\epsilon` goes: here it is added
    to the *uncorrected* :math:`\sqrt{v}`, which amounts to :class:`Adam` with
    :math:`\epsilon / \sqrt{1 - \beta_2^t}`, a larger :math:`\epsilon` in the first
    steps.

    Parameters
    ----------
    learning_rate : float, default 0.001
    beta1, beta2 : float in [0, 1), default 0.9 and 0.999
    eps : float > 0, default 1e-8
    """

    def __init__(
        self,
        learning_rate: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(learning_rate)
        self.beta1 = check_interval(beta1, "beta1", 0.0, 1.0, left_closed=True)
        self.beta2 = check_interval(beta2, "beta2", 0.0, 1.0, left_closed=True)
        self.eps = _check_eps(eps)

    def _init_state(self, param: Array) -> State:
        return {"m": np.zeros_like(param), "v": np.zeros_like(param)}

    def _update(self, param: Array, grad: Array, state: State) -> None:
        dtype = param.dtype.type
        t = self.iterations
        m, v = state["m"], state["v"]
        m *= dtype(self.beta1)
        m += dtype(1.0 - self.beta1) * grad
        v *= dtype(self.beta2)
        v += dtype(1.0 - self.beta2) * (grad * grad)
        step_size = self.learning_rate * np.sqrt(1.0 - self.beta2**t) / (1.0 - self.beta1**t)
        param -= dtype(step_size) * m / (np.sqrt(v) + dtype(self.eps))

    def __repr__(self) -> str:
        return (
            f"SklearnAdam(learning_rate={self.learning_rate}, beta1={self.beta1}, "
            f"beta2={self.beta2}, eps={self.eps})"
        )


def _check_state_array(
    value: Any, where: str, shape: tuple[int, ...] | None, dtype: np.dtype[Any]
) -> None:
    """Refuse a saved state array of another shape (``None``: any 2-D) or dtype, or not finite."""
    fits = (
        isinstance(value, np.ndarray)
        and value.dtype == dtype
        and (value.ndim == 2 if shape is None else value.shape == shape)
    )
    if not fits:
        expected = "a 2-D array" if shape is None else f"shape {shape}"
        got = (
            f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray)
            else type(value).__name__
        )
        raise ValueError(f"{where} must be {dtype} of {expected}, got {got}")
    if value.dtype.kind == "f" and not np.isfinite(value).all():
        raise ValueError(f"{where} holds NaN or infinite values")


# --- full-batch optimizers: L-BFGS ---------------------------------------------------------

Objective = Callable[[Array], tuple[float, Array]]


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
        #: Why the last :meth:`minimize` stopped: ``"gtol"``, ``"ftol"``,
        #: ``"line_search"`` (converged), or ``"max_iter"``, ``"max_evaluations"``,
        #: ``"callback"`` (not converged); ``""`` before any.
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
        for _ in range(max_iter):
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
            if step == 0.0:  # no step satisfied the conditions: we are as low as we can get
                converged, self.stop_reason = True, "line_search"
                break
            s = (step * d).astype(dtype, copy=False)
            x = x + s
            y = g_new - g
            if float(np.dot(s, y)) > 1e-10 * float(np.dot(y, y)):
                self.s.append(s.astype(np.float64))
                self.y.append(y.astype(np.float64))
                if len(self.s) > self.memory:
                    self.s.pop(0)
                    self.y.pop(0)
            decrease = f - f_new
            f, g = f_new, g_new
            self.iterations += 1
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


# --- lookup ------------------------------------------------------------------------------

OPTIMIZERS: Registry[type[Optimizer]] = Registry(
    "optimizer",
    [
        ("gd", SGD),
        ("sgd", SGD),
        ("momentum", Momentum),
        ("nesterov", Nesterov),
        ("adagrad", AdaGrad),
        ("rmsprop", RMSProp),
        ("adam", Adam),
        ("adamw", AdamW),
        ("lbfgs", LBFGS),
    ],
)
"""Update rules by name (``OPTIMIZERS.register(name, cls)`` adds one: the models, the
command line and model files then know it)."""


def is_full_batch(optimizer: Any) -> bool:
    """Whether ``optimizer`` (an object, or a registered name) minimises the full batch itself."""
    if isinstance(optimizer, str):
        cls = OPTIMIZERS.get(optimizer)
        return cls is not None and cls.full_batch
    return isinstance(optimizer, Optimizer) and optimizer.full_batch


def make_optimizer(cls: type[Optimizer], learning_rate: float) -> Optimizer:
    """An instance of a registered class, as a name builds it (a line search takes no rate)."""
    if cls.full_batch:
        return cls()  # type: ignore[call-arg]
    return cls(learning_rate=learning_rate)


def resolve_optimizer(
    optimizer: Any,
    batch_size: Any,
    learning_rate: Any,
    schedule: Any = "constant",
    clip_norm: Any = None,
) -> Any:
    """What ``optimizer="auto"`` stands for (any other value is returned as it is).

    L-BFGS for full-batch training when nothing about steps is given: it needs no
    step size, so unscaled or weighted data cannot make it oscillate or diverge.
    Plain gradient descent ("sgd") as soon as a ``learning_rate``, a
    ``batch_size``, a ``schedule`` or a ``clip_norm`` is given: the user asked for
    steps of that size, on batches, scheduled or clipped, which L-BFGS would ignore.
    """
    if not (isinstance(optimizer, str) and optimizer == "auto"):
        return optimizer
    steps_asked = (
        batch_size is not None
        or learning_rate is not None
        or not (isinstance(schedule, str) and schedule == "constant")
        or clip_norm is not None
    )
    return "sgd" if steps_asked else "lbfgs"


def get_optimizer(optimizer: str | Optimizer, learning_rate: float) -> Optimizer:
    """An optimizer from its name (with the given learning rate) or the object itself."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    try:
        cls = OPTIMIZERS[optimizer]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown optimizer {optimizer!r}; choose one of {sorted(OPTIMIZERS)} "
            "or pass an Optimizer object"
        ) from None
    return make_optimizer(cls, learning_rate)
