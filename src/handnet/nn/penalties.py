r"""The L2 penalty (weight decay through the loss).

.. math:: \Omega(W) = \frac{\alpha}{2} \sum_{\text{weights}} w^2, \qquad
          \frac{\partial \Omega}{\partial w} = \alpha\, w

It is added to the *mean* data loss, so its strength does not depend on the
number of samples or the batch size. It applies to weights only: penalising a
bias (or a logistic regression's intercept) would pull the decision boundary
towards the origin for no reason, so biases are left alone.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]


def l2_penalty(weights: Array, alpha: float) -> float:
    r""":math:`\frac{\alpha}{2}\lVert w\rVert^2` for a flat array of weights."""
    return 0.5 * float(alpha) * float(np.dot(weights, weights))


def l2_penalty_gradient(weights: Array, alpha: float) -> Array:
    r""":math:`\alpha\, w`."""
    return float(alpha) * weights


def add_l2(weights: Array, weight_gradients: Array, alpha: float) -> float:
    """Add the penalty's gradient to ``weight_gradients`` in place; return its value.

    ``weights`` and ``weight_gradients`` are flat (see ``Sequential.weights``).
    """
    if alpha == 0.0:
        return 0.0
    weight_gradients += weights.dtype.type(alpha) * weights
    return l2_penalty(weights, alpha)
