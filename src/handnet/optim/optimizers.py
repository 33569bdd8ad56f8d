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

import math
from typing import Any, ClassVar

import numpy as np

from ..data.validation import check_interval, check_positive
from ..registry import Registry
from ..training.kernels import FUSED_ADAM_MIN_SIZE, fused_adam_step
from .base import Array, Optimizer, State
from .lbfgs import LBFGS, FullBatchOptimizer

__all__ = [
    "LBFGS",
    "OPTIMIZERS",
    "SGD",
    "AdaGrad",
    "Adam",
    "AdamW",
    "FullBatchOptimizer",
    "Momentum",
    "Nesterov",
    "Optimizer",
    "RMSProp",
    "SklearnAdam",
    "SklearnSGD",
    "get_optimizer",
    "is_full_batch",
    "make_optimizer",
    "resolve_optimizer",
]


def _check_eps(eps: float) -> float:
    """``eps`` as a float, refused unless finite and >= 0 (it keeps divisions finite)."""
    value: float = check_positive(eps, "eps", allow_zero=True)
    return value


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
        bias_correction2_sqrt = math.sqrt(1.0 - self.beta2**t)
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
