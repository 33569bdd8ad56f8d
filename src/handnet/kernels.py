r"""Numeric kernels for the seed's own model, where Python overhead dominates.

The seed trains a single sigmoid unit, by full-batch gradient descent or by SGD
one example at a time. The generic training step (forward through the layers,
the loss object, backward, the optimizer object) spends most of its time on such
a model in Python calls around tiny arrays. The kernels here do the same math
with the bookkeeping stripped; ``tests/test_kernels.py`` checks each against the
generic path, and the training loop uses them only where they apply (one
``Dense(n, 1)`` layer, binary cross-entropy, plain SGD, no clipping).

* :func:`logistic_gd_step`: one full-batch gradient-descent step;
* :func:`logistic_sgd_epoch`: an epoch of per-example SGD, one NumPy call per
  example and scalar math for the rest (compiled with numba when installed,
  ``pip install handnet[fast]``):

.. math::

    z &= x_i \cdot w + b \\
    \ell_i &= \max(z, 0) - y_i z + \log(1 + e^{-|z|}) + \tfrac{\alpha}{2}\lVert w\rVert^2 \\
    w &\leftarrow w - \eta\, (s_i (\sigma(z) - y_i)\, x_i + \alpha w) \\
    b &\leftarrow b - \eta\, s_i (\sigma(z) - y_i)

with :math:`s_i` the sample's weight relative to the mean weight (1 without
weights). A fused Adam step (:func:`fused_adam_step`) sits here too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]


def logistic_sgd_epoch_numpy(
    X: Array,
    y: Array,
    order: NDArray[np.intp],
    weights: Array,
    bias: Array,
    learning_rate: float,
    l2: float = 0.0,
    sample_weight: Array | None = None,
    total: float = 0.0,
) -> float:
    """One epoch of per-example SGD on a logistic regression, NumPy and scalar math.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        Targets in {0, 1}.
    order : ndarray of shape (n_steps,)
        The rows to visit, in order (a permutation for a shuffled epoch).
    weights : ndarray of shape (n_features,)
        Updated in place.
    bias : ndarray of shape (1,)
        Updated in place.
    learning_rate, l2 : float
    sample_weight : ndarray of shape (n_samples,), optional
        Relative weights (mean 1 over the training set).
    total : float
        A running sum of losses to continue: each step's loss is added to it in
        turn, so an epoch run in several calls sums exactly as in one.

    Returns
    -------
    float
        ``total`` plus each step's loss (before its update).
    """
    exp, log1p = math.exp, math.log1p
    b = float(bias[0])
    decay = 1.0 - learning_rate * l2
    rows = X[order]  # one gather per epoch; each row below is a view
    targets = y[order].tolist()
    scales = [1.0] * len(order) if sample_weight is None else sample_weight[order].tolist()
    half_l2 = 0.5 * l2
    for x, target, scale in zip(rows, targets, scales, strict=True):
        z = float(x @ weights) + b
        e = exp(-abs(z))
        p = 1.0 / (1.0 + e) if z >= 0 else e / (1.0 + e)
        # the same order of operations as handnet.losses.binary_cross_entropy
        loss = log1p(e) + (z if z > 0 else 0.0) - target * z
        if l2:
            loss += half_l2 * float(weights @ weights)
            weights *= decay
        total += loss
        step = learning_rate * scale * (p - target)
        weights -= step * x
        b -= step
    bias[0] = b
    return total


def logistic_gd_step(
    X: Array,
    y: Array,
    weights: Array,
    bias: Array,
    learning_rate: float,
    l2: float,
    workspace: tuple[Array, Array, Array, Array],
) -> float:
    r"""One full-batch gradient-descent step on a logistic regression, in place.

    The step of :mod:`handnet.training` for ``Dense(n, 1)`` + binary
    cross-entropy + SGD, written as one function on flat vectors:

    .. math::

        z = X w + b,\quad
        L = \tfrac1n \sum_i \big(\log(1 + e^{-|z_i|}) + \max(z_i, 0) - y_i z_i\big)
            + \tfrac{\alpha}{2}\lVert w\rVert^2,\quad
        r = \tfrac1n(\sigma(z) - y),\quad
        w \leftarrow w - \eta (X^\top r + \alpha w),\quad
        b \leftarrow b - \eta \textstyle\sum_i r_i

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    weights : ndarray of shape (n_features,)
        Updated in place.
    bias : ndarray of shape (1,)
        Updated in place.
    learning_rate, l2 : float
    workspace : four ndarrays of shape (n_samples,)
        Scratch space (the logits, ``exp(-|z|)``, the loss terms, the residual),
        reused from step to step.

    Returns
    -------
    float
        The loss before the step.
    """
    loss, gradient, bias_gradient = logistic_loss_gradient(X, y, weights, float(bias[0]), workspace)
    if l2:
        loss += 0.5 * l2 * float(np.dot(weights, weights))
        gradient += l2 * weights
    weights -= learning_rate * gradient
    bias[0] -= learning_rate * bias_gradient
    return loss


def logistic_loss_gradient(
    X: Array,
    y: Array,
    weights: Array,
    bias: float,
    workspace: tuple[Array, Array, Array, Array],
) -> tuple[float, Array, float]:
    r"""Mean binary cross-entropy of a logistic regression and its gradient.

    .. math::

        z = X w + b,\quad
        L = \tfrac1n \sum_i \big(\log(1 + e^{-|z_i|}) + \max(z_i, 0) - y_i z_i\big),\quad
        r = \tfrac1n(\sigma(z) - y),\quad
        \nabla_w L = X^\top r,\quad \partial L / \partial b = \textstyle\sum_i r_i

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    weights : ndarray of shape (n_features,)
    bias : float
    workspace : four ndarrays of shape (n_samples,)
        Scratch space, overwritten.

    Returns
    -------
    loss : float
    weight_gradient : ndarray of shape (n_features,)
    bias_gradient : float
    """
    z, e, terms, residual = workspace
    n_samples = X.shape[0]
    np.dot(X, weights, out=z)
    z += bias
    np.abs(z, out=e)
    np.negative(e, out=e)
    np.exp(e, out=e)  # e = exp(-|z|) in (0, 1]: shared by the loss and the sigmoid
    np.log1p(e, out=terms)
    np.maximum(z, 0.0, out=residual)
    terms += residual
    # sigmoid(z) = exp(min(z, 0)) / (1 + e): 1 / (1 + e) for z >= 0, e / (1 + e) below;
    # min(z, 0) = z - max(z, 0), and exp of it is exactly e where z < 0.
    np.subtract(z, residual, out=residual)
    np.exp(residual, out=residual)
    np.multiply(y, z, out=z)  # z is not needed any more
    terms -= z
    loss = float(terms.sum()) / n_samples
    e += 1.0
    residual /= e
    residual -= y
    residual *= 1.0 / n_samples  # r = dL/dz
    return loss, np.dot(residual, X), float(residual.sum())


def _build_numba_kernel() -> Callable[..., float] | None:
    """Compile the same loop with numba, if it is installed."""
    try:
        import numba
    except ImportError:
        return None

    @numba.njit(cache=False, fastmath=False)
    def kernel(
        X: Any, y: Any, order: Any, weights: Any, bias: Any,
        learning_rate: float, l2: float, scales: Any, total: float,
    ) -> float:  # pragma: no cover - compiled
        n_features = X.shape[1]
        b = bias[0]
        decay = 1.0 - learning_rate * l2
        for k in range(order.shape[0]):
            i = order[k]
            z = 0.0
            for j in range(n_features):
                z += X[i, j] * weights[j]
            z += b
            e = math.exp(-abs(z))
            p = 1.0 / (1.0 + e) if z >= 0 else e / (1.0 + e)
            loss = math.log1p(e) + (z if z > 0 else 0.0) - y[i] * z
            if l2 != 0.0:
                norm = 0.0
                for j in range(n_features):
                    norm += weights[j] * weights[j]
                loss += 0.5 * l2 * norm
                for j in range(n_features):
                    weights[j] *= decay
            total += loss
            step = learning_rate * scales[i] * (p - y[i])
            for j in range(n_features):
                weights[j] -= step * X[i, j]
            b -= step
        bias[0] = b
        return total

    return kernel


_NUMBA_KERNEL: Callable[..., float] | bool | None = False  # False: not yet looked for


def numba_available() -> bool:
    """Whether the compiled kernel can be used."""
    global _NUMBA_KERNEL
    if _NUMBA_KERNEL is False:
        _NUMBA_KERNEL = _build_numba_kernel()
    return _NUMBA_KERNEL is not None


def logistic_sgd_epoch(
    X: Array,
    y: Array,
    order: NDArray[np.intp],
    weights: Array,
    bias: Array,
    learning_rate: float,
    l2: float = 0.0,
    sample_weight: Array | None = None,
    total: float = 0.0,
    use_numba: bool | None = None,
) -> float:
    """One SGD epoch (see :func:`logistic_sgd_epoch_numpy`), compiled when possible.

    ``use_numba=None`` uses numba if it is installed, ``False`` never, ``True``
    always (raising ``ImportError`` without it).
    """
    if use_numba is None:
        use_numba = numba_available() and X.dtype == np.float64
    if use_numba:
        if not numba_available():
            raise ImportError("use_numba=True needs numba: pip install 'handnet[fast]'")
        scales = np.ones(X.shape[0]) if sample_weight is None else sample_weight
        assert callable(_NUMBA_KERNEL)
        return float(
            _NUMBA_KERNEL(
                X, y, order, weights, bias, float(learning_rate), float(l2), scales, float(total)
            )
        )
    return logistic_sgd_epoch_numpy(
        X, y, order, weights, bias, learning_rate, l2, sample_weight, total
    )


# --- a fused Adam step ---------------------------------------------------------------------

#: Parameter vectors at least this long use the compiled Adam step when numba is
#: installed; on shorter ones NumPy's dozen passes cost less than the dispatch.
FUSED_ADAM_MIN_SIZE = 10_000


def _build_fused_adam() -> Callable[..., None] | None:
    """Adam's update as one compiled pass over the parameters, if numba is installed.

    NumPy needs about a dozen passes over the parameter-sized arrays (each ufunc
    reads and writes whole vectors); compiled, each element is read and written
    once. The arithmetic is :class:`handnet.optimizers.Adam`'s, in the
    parameters' dtype.
    """
    try:
        import numba
    except ImportError:
        return None

    # error_model="numpy": a division by zero gives inf/nan as in NumPy instead of
    # raising, which is also what lets LLVM vectorise the loop (about 10x faster).
    @numba.njit(cache=True, error_model="numpy")
    def fused_adam(
        param: Any, grad: Any, m: Any, v: Any, beta1: Any, one_minus_beta1: Any,
        beta2: Any, one_minus_beta2: Any, eps: Any, step_size: Any,
        inverse_bias_correction2_sqrt: Any, decay: Any,
    ) -> None:  # pragma: no cover - compiled
        # Every constant arrives in the parameters' dtype, so that a float32
        # model's loop stays in float32 and vectorises.
        for i in range(param.shape[0]):
            g = grad[i]
            m_i = beta1 * m[i] + one_minus_beta1 * g
            v_i = beta2 * v[i] + one_minus_beta2 * (g * g)
            m[i] = m_i
            v[i] = v_i
            denominator = np.sqrt(v_i) * inverse_bias_correction2_sqrt + eps
            param[i] = param[i] * decay - step_size * (m_i / denominator)

    return fused_adam


_FUSED_ADAM: Callable[..., None] | bool | None = False  # False: not yet looked for


def fused_adam_step(
    param: Array, grad: Array, m: Array, v: Array, beta1: float, beta2: float, eps: float,
    step_size: float, bias_correction2_sqrt: float, decay: float = 1.0,
) -> bool:
    """Apply one Adam (or AdamW, with ``decay = 1 - lr * weight_decay``) step in place.

    All arrays are flat and contiguous. Returns ``False`` (doing nothing) when
    numba is not installed, so the caller falls back to NumPy.
    """
    global _FUSED_ADAM
    if _FUSED_ADAM is False:
        _FUSED_ADAM = _build_fused_adam()
    if _FUSED_ADAM is None or _FUSED_ADAM is True:
        return False
    cast = param.dtype.type
    _FUSED_ADAM(
        param, grad, m, v, cast(beta1), cast(1.0 - beta1), cast(beta2), cast(1.0 - beta2),
        cast(eps), cast(step_size), cast(1.0 / bias_correction2_sqrt), cast(decay),
    )
    return True
