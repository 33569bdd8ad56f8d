r"""Fast kernels for one-example-per-step SGD on a logistic regression.

With ``batch_size=1`` the generic training step (forward, loss, backward,
optimizer) spends its time in a dozen NumPy calls on arrays of one row: the
Python overhead per call dwarfs the arithmetic. For the seed's own model, a
single sigmoid unit trained by plain SGD, the same step can be written with one
NumPy call per example and scalar math for the rest. The math is exactly the
generic path's; only the bookkeeping is leaner:

.. math::

    z &= x_i \cdot w + b \\
    \ell_i &= \max(z, 0) - y_i z + \log(1 + e^{-|z|}) + \tfrac{\alpha}{2}\lVert w\rVert^2 \\
    w &\leftarrow w - \eta\, (s_i (\sigma(z) - y_i)\, x_i + \alpha w) \\
    b &\leftarrow b - \eta\, s_i (\sigma(z) - y_i)

with :math:`s_i` the sample's weight relative to the mean weight (1 without
weights). ``tests/test_kernels.py`` checks it against the generic path.

When numba is installed (``pip install handnet[fast]``) the same loop is
compiled; :func:`logistic_sgd_epoch` picks it automatically.
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
