r"""The numba twins of :class:`handnet.nn.pooling.MaxPool2D`'s passes over 2 x 2 windows
side by side (``MaxPool2D(2)``, no padding), compiled once per machine.

Imported through :func:`handnet._numba.load` only once numba is already loaded in
the process (:func:`handnet.nn.pooling._compiled_kernels`), so these never cost the
compiler's import. Each pass reads its input once: the NumPy path makes four
passes over strided views (a maximum and a comparison along the rows, then across
them), and strided NumPy loops run unvectorised.

For finite inputs they give the NumPy path's numbers exactly: the same maxima,
and the gradient of each window sent to the same input, its first maximum in
row-major order,

.. math::

    Z_{mcpq} = \max_{i, j \in \{0, 1\}} X_{m, c, 2p + i, 2q + j}, \qquad
    \frac{\partial L}{\partial X_{m, c, 2p + i, 2q + j}} =
        [\,2i + j = \text{first}_{mcpq}\,]\ (G_Z)_{mcpq}.

A NaN in a window makes its maximum NaN, as ``np.maximum`` does.
"""

from __future__ import annotations

from typing import Any

from .._numba import jit


@jit(nogil=True, error_model="numpy")
def max_pool_2x2_forward(X: Any, out: Any, first: Any) -> None:  # pragma: no cover
    """``out`` (``(n, C, H_o, W_o)``): each 2 x 2 window's maximum; ``first`` (uint8, same
    shape): the index ``2 i + j`` of its first maximum in row-major order.

    Without branches (a window's maximum is anywhere in random data, and a
    mispredicted branch costs more than the whole window; hence ``|``, not ``or``):
    each row's first maximum, then the first row holding the larger, as the NumPy
    passes do.
    """
    n, channels, out_height, out_width = out.shape
    for m in range(n):
        for c in range(channels):
            for p in range(out_height):
                for q in range(out_width):
                    a = X[m, c, 2 * p, 2 * q]
                    b = X[m, c, 2 * p, 2 * q + 1]
                    below_a = X[m, c, 2 * p + 1, 2 * q]
                    below_b = X[m, c, 2 * p + 1, 2 * q + 1]
                    right = b > a
                    below_right = below_b > below_a
                    # NaN wins each comparison it is in, as in np.maximum.
                    top = b if right | (b != b) else a
                    bottom = below_b if below_right | (below_b != below_b) else below_a
                    lower = (bottom > top) | (bottom != bottom)  # ties keep the top row
                    out[m, c, p, q] = bottom if lower else top
                    first[m, c, p, q] = 2 * lower + below_right if lower else right


@jit(nogil=True, error_model="numpy")
def max_pool_2x2_backward(dout: Any, first: Any, dX: Any) -> None:  # pragma: no cover
    """Each 2 x 2 window's gradient ``dout[m, c, p, q]`` into ``dX`` at its first maximum,
    0 at its other three inputs (inputs outside every window are left as they are)."""
    n, channels, out_height, out_width = dout.shape
    zero = dX.dtype.type(0)
    for m in range(n):
        for c in range(channels):
            for p in range(out_height):
                for q in range(out_width):
                    grad = dout[m, c, p, q]
                    index = first[m, c, p, q]
                    dX[m, c, 2 * p, 2 * q] = grad if index == 0 else zero
                    dX[m, c, 2 * p, 2 * q + 1] = grad if index == 1 else zero
                    dX[m, c, 2 * p + 1, 2 * q] = grad if index == 2 else zero
                    dX[m, c, 2 * p + 1, 2 * q + 1] = grad if index == 3 else zero
