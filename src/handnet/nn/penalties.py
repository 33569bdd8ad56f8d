r"""Penalties: terms added to the mean data loss, over the weights (never the biases).

The training objective is the mean data loss plus a penalty :math:`\Omega(W)`:

.. math::

    J(\theta) = \frac{1}{\sum_i s_i} \sum_i s_i\, \ell_i(\theta) + \Omega(W)

``L2`` (weight decay through the loss) and ``L1`` (sparse weights):

.. math::

    \Omega_{L2}(W) = \frac{\alpha}{2} \sum_{\text{weights}} w^2, \quad
    \frac{\partial \Omega_{L2}}{\partial w} = \alpha\, w
    \qquad
    \Omega_{L1}(W) = \alpha \sum_{\text{weights}} \lvert w\rvert, \quad
    \frac{\partial \Omega_{L1}}{\partial w} = \alpha \operatorname{sign}(w)

It is added to the *mean* data loss, so its strength does not depend on the
number of samples or the batch size. It applies to weights only: penalising a
bias (or a logistic regression's intercept) would pull the decision boundary
towards the origin for no reason, so biases are left alone (the network hands a
penalty its flat vector of weights, :attr:`Sequential.weights
<handnet.nn.network.Sequential.weights>`).

A new penalty is one class here (or in a user's code) and one entry in
:data:`PENALTIES`: the estimators' ``penalty`` names, the model-file loader and
the docs' tables read that registry::

    @PENALTIES.register("log_cosh")
    class LogCosh(Penalty):
        def value(self, weights): ...
        def gradient(self, weights): ...
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..registry import Registry
from .activations import dense_kernels

Array = NDArray[np.floating]


def l2_penalty(weights: Array, alpha: float) -> float:
    r""":math:`\frac{\alpha}{2}\lVert w\rVert^2` for a flat array of weights."""
    return 0.5 * float(alpha) * float(np.dot(weights, weights))


def l2_penalty_gradient(weights: Array, alpha: float) -> Array:
    r""":math:`\alpha\, w`."""
    return float(alpha) * weights


def add_l2(weights: Array, weight_gradients: Array, alpha: float) -> float:
    """Add the L2 penalty's gradient to ``weight_gradients`` in place; return its value.

    ``weights`` and ``weight_gradients`` are flat (see ``Sequential.weights``).
    """
    if alpha == 0.0:
        return 0.0
    kernels = (
        dense_kernels(weights, weight_gradients)
        if weights.ndim == 1 and weights.shape == weight_gradients.shape
        and weight_gradients.flags.writeable  # else NumPy's "output array is read-only"
        else None
    )
    if kernels is not None:
        # One pass, no temporary: the same gradient bits; the sum of squares in float64.
        squares = kernels.add_l2(weights, weight_gradients, weights.dtype.type(alpha))
        return 0.5 * float(alpha) * float(squares)
    weight_gradients += weights.dtype.type(alpha) * weights
    return l2_penalty(weights, alpha)


class Penalty:
    r"""A term :math:`\Omega(W)` of the objective, with strength ``alpha``.

    Subclasses write :meth:`value` and :meth:`gradient` (the math, side by side);
    :meth:`add_to` is what a training step calls.

    Parameters
    ----------
    alpha : float, default 1e-4
        The strength; 0 turns the penalty off.
    """

    def __init__(self, alpha: float = 1e-4) -> None:
        alpha = float(alpha)
        if not np.isfinite(alpha) or alpha < 0.0:
            raise ValueError(f"a penalty's alpha must be a finite number >= 0, got {alpha!r}")
        self.alpha = alpha

    def value(self, weights: Array) -> float:
        r""":math:`\Omega(w)` for a flat array of weights."""
        raise NotImplementedError

    def gradient(self, weights: Array) -> Array:
        r""":math:`\partial \Omega / \partial w`, shaped like ``weights``."""
        raise NotImplementedError

    def add_to(self, weights: Array, weight_gradients: Array) -> float:
        """Add the gradient to ``weight_gradients`` in place; return the penalty's value."""
        if self.alpha == 0.0:
            return 0.0
        weight_gradients += self.gradient(weights).astype(weight_gradients.dtype, copy=False)
        return self.value(weights)

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments (what a model file stores)."""
        return {"alpha": self.alpha}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alpha={self.alpha!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Penalty) or type(other) is not type(self):
            return NotImplemented
        return other.get_config() == self.get_config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))


class L2(Penalty):
    r""":math:`\frac{\alpha}{2}\lVert w\rVert^2`, gradient :math:`\alpha w` (weight decay)."""

    def value(self, weights: Array) -> float:
        return l2_penalty(weights, self.alpha)

    def gradient(self, weights: Array) -> Array:
        return l2_penalty_gradient(weights, self.alpha)

    def add_to(self, weights: Array, weight_gradients: Array) -> float:
        # The same sum as add_l2, with no temporary in the weights' dtype beyond alpha*w.
        return add_l2(weights, weight_gradients, self.alpha)


class L1(Penalty):
    r""":math:`\alpha\lVert w\rVert_1`, subgradient :math:`\alpha \operatorname{sign}(w)`.

    :math:`\lvert w\rvert` has no derivative at 0; ``sign(0) = 0`` is the
    subgradient that leaves a weight at exactly 0 where it is. Gradient steps
    make weights small but oscillate around 0 rather than land on it.
    """

    def value(self, weights: Array) -> float:
        return float(self.alpha) * float(np.sum(np.abs(weights)))

    def gradient(self, weights: Array) -> Array:
        return weights.dtype.type(self.alpha) * np.sign(weights)


#: Penalties by name: the estimators' ``penalty`` choices.
PENALTIES: Registry[type[Penalty]] = Registry("penalty", [("l2", L2), ("l1", L1)])


def as_penalty(penalty: Penalty | float | None) -> Penalty | None:
    """A training step's penalty: a :class:`Penalty`, or a number meaning L2 of that strength."""
    if penalty is None or isinstance(penalty, Penalty):
        return penalty
    return L2(penalty)


def get_penalty(name: str | Penalty | None, alpha: float) -> Penalty | None:
    """The penalty an estimator's ``penalty`` and ``alpha`` describe (``None``: none).

    ``name`` is a registered name (built with ``alpha``), a :class:`Penalty`
    (used as it is) or ``None``.
    """
    if name is None:
        return None
    if isinstance(name, Penalty):
        return name
    return PENALTIES.lookup(name)(alpha)
