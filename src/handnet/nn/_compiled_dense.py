r"""The numba twins of a dense network's small passes between its matrix products: the
bias add and the bias gradient of :class:`handnet.nn.layers.Dense`, ReLU forward and
backward, the softmax cross-entropy with its gradient, and the L2 penalty's gradient
and value (:func:`handnet.nn.penalties.add_l2`).

Each of these is one NumPy call (or a dozen, for the loss) on a ``(batch, width)``
array that sits in cache; NumPy's per-call overhead and its NaN-aware
``np.maximum`` make them cost about a third of an MLP epoch's time outside the
matrix products. Compiled, each is one pass.

They are used only as built ahead of time by ``handnet compile``
(:mod:`handnet._native`, looked up by :func:`handnet.nn.activations.dense_kernels`):
loading numba's JIT for passes this small would cost more than they save in most
processes. The math is the NumPy functions' (:func:`handnet.nn.activations.relu`,
:func:`~handnet.nn.activations.relu_backward`,
:func:`handnet.nn.losses.softmax_cross_entropy`), and so are the bits, except the
loss, whose exponentials and logarithms are the C library's: they agree to
rounding.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._numba import jit


@jit(nogil=True, error_model="numpy")
def add_bias(out: Any, bias: Any) -> None:  # pragma: no cover - compiled
    """``out[i, :] += bias`` for every row ``i`` of ``out`` (``(n, k)``, ``bias`` ``(k,)``)."""
    for i in range(out.shape[0]):
        row = out[i]
        for j in range(row.shape[0]):
            row[j] += bias[j]


@jit(nogil=True, error_model="numpy")
def column_sums(a: Any, out: Any) -> None:  # pragma: no cover - compiled
    r"""``out[j] = sum_i a[i, j]``, the rows added in order (as ``a.sum(axis=0)`` does for
    a C-contiguous ``a`` of two columns or more; one column NumPy sums pairwise): the
    bias gradient :math:`\partial L / \partial b = \sum_i G_i`."""
    n_rows, n_columns = a.shape
    for j in range(n_columns):
        out[j] = 0.0
    for i in range(n_rows):
        row = a[i]
        for j in range(n_columns):
            out[j] += row[j]


# reassoc: the sum of squares in vector lanes (a serial float64 sum took 3 x NumPy's
# time); nothing else in the loop has an order to change, and no FMA (no contract).
@jit(nogil=True, error_model="numpy", fastmath={"reassoc"})
def add_l2(weights: Any, gradients: Any, alpha: Any) -> float:  # pragma: no cover - compiled
    r"""``gradients += alpha * weights`` (each product rounded, then added, as NumPy does);
    returns :math:`\sum_j w_j^2`, summed in float64, for the penalty
    :math:`\frac{\alpha}{2}\lVert w\rVert^2`.

    One pass over the flat weights where NumPy's ``alpha * weights`` makes a
    temporary the size of the network and ``np.dot`` reads the weights again.
    """
    total = 0.0
    for j in range(weights.shape[0]):
        w = weights[j]
        gradients[j] += alpha * w
        wide = np.float64(w)  # (numba's float() keeps a float32 a float32)
        total += wide * wide
    return total


@jit(nogil=True, error_model="numpy")
def relu_forward(z: Any, out: Any) -> None:  # pragma: no cover - compiled
    r""":math:`a = \max(z, 0)` elementwise over flat arrays; a NaN stays NaN and ``-0.0``
    gives ``0.0``, as in ``np.maximum(z, 0)``."""
    for i in range(z.shape[0]):
        value = z[i]
        # | rather than or: no branch to mispredict on random signs.
        out[i] = value if (value > 0.0) | (value != value) else 0.0


@jit(nogil=True, error_model="numpy")
def relu_backward(dout: Any, z: Any, dz: Any) -> None:  # pragma: no cover - compiled
    r""":math:`\partial L / \partial z = G \cdot [z > 0]` over flat arrays, as a product
    (so that ``-0.0``, NaN and infinity in :math:`G` come out as in ``dout * (z > 0)``)."""
    for i in range(z.shape[0]):
        dz[i] = dout[i] * (1.0 if z[i] > 0.0 else 0.0)


@jit(nogil=True, error_model="numpy")
def softmax_cross_entropy(
    logits: Any, targets: Any, dlogits: Any
) -> float:  # pragma: no cover - compiled
    r"""The mean cross-entropy of ``softmax(logits)`` against ``targets``, and its gradient.

    For each row, with :math:`m = \max_k z_k` and :math:`s = \sum_j e^{z_j - m}`:

    .. math::

        \ell = \sum_k y_k \big(\log s - (z_k - m)\big), \qquad
        \frac{\partial L}{\partial z_k} = \frac{1}{n}\Big(\frac{e^{z_k - m}}{s} - y_k\Big)

    written into ``dlogits``; returns :math:`L = \frac1n \sum_i \ell_i`, summed in
    float64. ``logits``, ``targets`` and ``dlogits`` are ``(n, K)``, ``n, K >= 1``. The
    shift comes first, as in :func:`~handnet.nn.activations.log_softmax`: ``m + log s``
    would round ``log s`` away next to a large ``m`` (logits ``[1e20, 1e20]`` would
    give the loss 0 instead of ``log 2``).
    """
    n_samples, n_classes = logits.shape
    scale = 1.0 / n_samples
    total = 0.0
    for i in range(n_samples):
        z, y, d = logits[i], targets[i], dlogits[i]
        largest = z[0]
        for k in range(1, n_classes):
            # A NaN logit makes the row's loss NaN below, whatever the maximum is.
            if z[k] > largest:
                largest = z[k]
        sum_exp = 0.0
        for k in range(n_classes):
            e = math.exp(z[k] - largest)
            d[k] = e
            sum_exp += e
        log_sum = math.log(sum_exp)
        inverse = 1.0 / sum_exp
        row_loss = 0.0
        for k in range(n_classes):
            row_loss += y[k] * (log_sum - (z[k] - largest))
            d[k] = (d[k] * inverse - y[k]) * scale
        total += row_loss
    return total * scale
