"""Activation functions, each written next to its derivative.

Every activation ``f`` comes as a pair of functions:

* ``f(z)`` maps pre-activations ``z`` to activations ``a = f(z)``;
* ``f_backward(dout, z, a)`` maps the gradient of the loss with respect to ``a``
  (``dout``) to the gradient with respect to ``z``: ``dz = dout * f'(z)`` for the
  elementwise functions, and a Jacobian-vector product for softmax.

Both ``z`` and ``a`` are handed to the backward function because some
derivatives read best in terms of the output (``sigmoid' = a (1 - a)``,
``tanh' = 1 - a**2``) and others in terms of the input (``relu' = [z > 0]``).

All functions work on arrays of any shape and keep the input's floating dtype.
Sigmoid and softmax are written so they never overflow, whatever the logits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from .. import _native
from ..registry import Registry

Array = NDArray[np.floating]


# --- sigmoid -----------------------------------------------------------------------------


def sigmoid(z: Array) -> Array:
    r"""Logistic sigmoid :math:`\sigma(z) = 1 / (1 + e^{-z})`, overflow-free.

    ``exp`` is only ever evaluated at ``-|z|`` (never positive), so it lies in
    ``(0, 1]`` and cannot overflow:

    * :math:`z \ge 0`: :math:`\sigma(z) = 1 / (1 + e^{-|z|})`
    * :math:`z < 0`: :math:`\sigma(z) = e^{-|z|} / (1 + e^{-|z|})`
    """
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0, e) / (1.0 + e)


def sigmoid_backward(dout: Array, z: Array, a: Array) -> Array:
    r""":math:`\sigma'(z) = \sigma(z)\,(1 - \sigma(z))`."""
    return dout * a * (1.0 - a)


# --- tanh --------------------------------------------------------------------------------


def tanh(z: Array, out: Array | None = None) -> Array:
    r"""Hyperbolic tangent :math:`\tanh(z)` (NumPy's is already overflow-free)."""
    return np.tanh(z, out=out)


def tanh_backward(dout: Array, z: Array, a: Array, out: Array | None = None) -> Array:
    r""":math:`\tanh'(z) = 1 - \tanh^2(z)`."""
    result = np.multiply(a, a, out=out)
    np.subtract(1, result, out=result)
    result *= dout
    return result


# --- relu --------------------------------------------------------------------------------


def relu(z: Array, out: Array | None = None) -> Array:
    r"""Rectified linear unit :math:`\max(z, 0)`."""
    return np.maximum(z, 0, out=out)


def relu_backward(dout: Array, z: Array, a: Array, out: Array | None = None) -> Array:
    r""":math:`\mathrm{relu}'(z) = [z > 0]` (the subgradient 0 is used at ``z = 0``)."""
    return np.multiply(dout, z > 0, out=out)


# --- leaky relu --------------------------------------------------------------------------

LEAKY_RELU_SLOPE = 0.01
"""Slope of :func:`leaky_relu` for negative inputs (PyTorch's default)."""


def leaky_relu(z: Array, slope: float = LEAKY_RELU_SLOPE) -> Array:
    r"""Leaky ReLU: :math:`z` for :math:`z > 0`, :math:`s z` otherwise."""
    return np.where(z > 0, z, slope * z)


def leaky_relu_backward(dout: Array, z: Array, a: Array, slope: float = LEAKY_RELU_SLOPE) -> Array:
    r"""Derivative: :math:`1` for :math:`z > 0`, :math:`s` otherwise."""
    return dout * np.where(z > 0, 1.0, slope).astype(dout.dtype, copy=False)


# --- identity ----------------------------------------------------------------------------


def identity(z: Array) -> Array:
    """Identity :math:`f(z) = z` (the output of a regression network)."""
    return z


def identity_backward(dout: Array, z: Array, a: Array) -> Array:
    """:math:`f'(z) = 1`."""
    return dout


# --- softmax -----------------------------------------------------------------------------


def log_softmax(z: Array, axis: int = -1) -> Array:
    r"""Log-softmax :math:`z_k - \log\sum_j e^{z_j}`, via the log-sum-exp shift.

    Subtracting the row maximum makes every exponent ``<= 0``: nothing overflows,
    and at least one term of the sum is exactly 1, so the log never sees 0.
    """
    shifted = z - np.max(z, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def softmax(z: Array, axis: int = -1) -> Array:
    r"""Softmax :math:`p_k = e^{z_k} / \sum_j e^{z_j}` along ``axis``, overflow-free.

    Softmax is invariant to adding a constant to every logit, so the row maximum
    is subtracted first: every exponent is then ``<= 0``.
    """
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    e /= np.sum(e, axis=axis, keepdims=True)
    return e


def softmax_backward(dout: Array, z: Array, a: Array) -> Array:
    r"""Jacobian-vector product of softmax along the last axis.

    With :math:`p = \mathrm{softmax}(z)`, :math:`\partial p_k / \partial z_j =
    p_k(\delta_{kj} - p_j)`, so for an upstream gradient :math:`g`:

    .. math:: \frac{\partial L}{\partial z_j} = p_j \left(g_j - \sum_k g_k p_k\right)

    computed for all rows at once, never building the per-sample Jacobian.
    """
    return a * (dout - np.sum(dout * a, axis=-1, keepdims=True))


# --- registry ----------------------------------------------------------------------------


class ActivationPair(NamedTuple):
    r"""An activation function and its backward (gradient) function.

    ``forward(z)`` and ``backward(dout, z, a)`` (``a = forward(z)``) as above.
    ``elementwise``: each output depends on its own input alone, which a hidden
    layer's activation must (softmax is not: it normalises a whole row).
    ``writes_out``: both accept ``out=`` (the training loop then reuses buffers
    instead of allocating two arrays per step). ``initializer``: the weight
    initialiser (:mod:`handnet.nn.initializers`) that keeps the variance of this
    activation's outputs steady through the layers, used by ``init="auto"``.
    ``commutes_with_max``: :math:`\max_i f(z_i) = f(\max_i z_i)` holds exactly in floating
    point and backward agrees too (the first maximum of ``f(z)`` is the first maximum of
    ``z`` wherever :math:`f' \ne 0`), so a max pooling may run first and ``f`` on its
    fewer outputs (:func:`handnet.nn.network.execution_order`). True for ``relu``
    (positive values pass unchanged, the rest become 0 with derivative 0) and the
    identity; not for ``leaky_relu``, whose product ``s z`` can round two
    neighbouring negatives to one value (a tie the inputs did not have), nor for
    ``tanh`` and the sigmoid, whose floating-point results need not be monotone
    to the last bit. ``compiled``: the name ``f`` of compiled twins ``f_forward(z, out)``
    and ``f_backward(dout, z, dz)`` in :mod:`handnet.nn._compiled_dense` (over flat
    arrays, same bits), which a layer takes where ``handnet compile`` built them
    (:func:`dense_kernels`).
    """

    forward: Callable[..., Array]
    backward: Callable[..., Array]
    elementwise: bool = True
    writes_out: bool = False
    initializer: str = "xavier"
    commutes_with_max: bool = False
    compiled: str | None = None


ACTIVATIONS: Registry[ActivationPair] = Registry(
    "activation",
    [
        ("sigmoid", ActivationPair(sigmoid, sigmoid_backward)),
        ("logistic", ActivationPair(sigmoid, sigmoid_backward)),
        ("tanh", ActivationPair(tanh, tanh_backward, writes_out=True)),
        (
            "relu",
            ActivationPair(
                relu, relu_backward, writes_out=True, initializer="he", commutes_with_max=True,
                compiled="relu",
            ),
        ),
        ("leaky_relu", ActivationPair(leaky_relu, leaky_relu_backward, initializer="he")),
        ("identity", ActivationPair(identity, identity_backward, commutes_with_max=True)),
        ("softmax", ActivationPair(softmax, softmax_backward, elementwise=False)),
    ],
)
"""Activations by name; ``"logistic"`` is scikit-learn's name for the sigmoid.

A new one: ``ACTIVATIONS.register("swish", ActivationPair(swish, swish_backward))``;
models, the command line and model files then know it by that name.
"""


def hidden_activations() -> tuple[str, ...]:
    """The names a hidden layer may use: every registered elementwise activation."""
    return ACTIVATIONS.names(lambda pair: pair.elementwise)


def writes_out(name: str) -> bool:
    """Whether the activation ``name`` can write into a reused buffer (``out=``)."""
    return ACTIVATIONS.lookup(name).writes_out


def get_activation(name: str) -> ActivationPair:
    """Look up an activation by name, with a clear error for unknown names."""
    return ACTIVATIONS.lookup(name)


#: The compiled twins of a dense network's small passes (ReLU, bias, softmax loss).
DENSE_KERNELS = "handnet.nn._compiled_dense"


def dense_kernels(*arrays: Array) -> Any:
    """:mod:`handnet.nn._compiled_dense`'s kernels for ``arrays``, or ``None``.

    Only as built ahead of time by ``handnet compile`` (:mod:`handnet._native`;
    never numba's JIT, whose load would cost more than these passes save in most
    processes), and only for C-contiguous float32 or float64 arrays of one dtype.
    The caller takes its NumPy path on ``None``.
    """
    return _native.kernels_for(DENSE_KERNELS, *arrays)
