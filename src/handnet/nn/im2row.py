r"""A convolution by kernel rows: only the kernel's rows unrolled, its columns as shifts.

:func:`~handnet.nn.im2col.im2col` copies every window, ``k_h k_w`` values per
output position, in runs as short as the output's width, and its adjoint adds
them back in as many short strided passes. For a horizontal stride of 1 most of
that copying can be avoided: unroll only the kernel's *rows*, over whole padded
image rows, and let the kernel's columns become shifts of flat, contiguous arrays.

With :math:`\tilde X` the padded input ``(n, C, H_p, W_p)``, the *row-unrolled*
matrix has one row per (channel, kernel row) and one column per (sample, output
row, image column), ``N = n H_o W_p`` columns in all:

.. math::

    R_{(c, i), (m, p, x)} = \tilde X_{m, c, p s_h + i d_h, x}

(each ``(c, i, m)`` block is ``H_o`` image rows: one contiguous run when
:math:`s_h = 1`). With the weights regrouped as
:math:`V_{(j, f), (c, i)} = W_{f c i j}`, one matrix product gives every kernel
column's partial sums, :math:`P = V R` of shape ``(k_w F, N)``, and

.. math::

    Z_{m f p q} = b_f + \sum_j P_{(j, f),\ (m, p, q + j d_w)}

on the flattened column index: ``k_w`` adds of long contiguous runs shifted by
:math:`j d_w` (a position's shifted column never leaves its image row, since
:math:`q + j d_w \le W_p - 1` for every output column :math:`q < W_o`).

Backward, with :math:`G` the gradient of :math:`Z` spread on the same
``(m, p, x)`` columns (zero where :math:`x \ge W_o`) and shifted,
:math:`S_{(j, f), (m, p, x)} = G_{m, f, p, x - j d_w}` (zero outside the output):

.. math::

    \frac{\partial L}{\partial V} = S R^\top, \qquad
    \frac{\partial L}{\partial R} = V^\top S, \qquad
    \frac{\partial L}{\partial \tilde X_{m, c, p s_h + i d_h, x}} \mathrel{+}=
        \left(\frac{\partial L}{\partial R}\right)_{(c, i), (m, p, x)}

the last being ``k_h`` adds of whole image rows (the adjoint of the row unrolling).

Cost against im2col: the three products do :math:`W_p / W_o` times the
multiplications (the columns past :math:`W_o` are computed and dropped), but they
are three large products instead of many per-sample ones, and the data moved is
``C k_h`` plus ``k_w F`` values per position instead of ``C k_h k_w`` in short runs.
:func:`by_rows` chooses it when it moves fewer values; the LeNet benchmark's
second convolution (8 -> 16 channels, 5 x 5, 12 x 12 input, batch 128) took 8.0 to
8.7 ms per batch for forward and backward this way against 12.9 to 13.3 ms with
im2col (one core, CPU time); its one-channel first convolution stays with im2col,
where this would move twice the values.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .im2col import Array, Buffer, _Geometry


def rows_values(geometry: _Geometry, filters: int) -> int:
    """Values per sample the row formulation keeps: ``R`` and ``P`` (or ``S``)."""
    kh, kw = geometry.kernel
    return (geometry.channels * kh + kw * filters) * geometry.out_height * geometry.padded_width


def by_rows(geometry: _Geometry, filters: int, groups: int) -> bool:
    """Whether to convolve by kernel rows: a horizontal stride of 1, one group, and
    fewer values than im2col's ``C k_h k_w H_o W_o`` per sample."""
    if geometry.stride[1] != 1 or groups != 1:
        return False
    kh, kw = geometry.kernel
    unrolled = geometry.channels * kh * kw * geometry.out_height * geometry.out_width
    return rows_values(geometry, filters) < unrolled


def rows_weights(weights: Array) -> Array:
    r""":math:`V_{(j, f), (c, i)} = W_{f c i j}`: ``(k_w F, C k_h)``, a new contiguous array."""
    F, C, kh, kw = weights.shape
    return np.ascontiguousarray(weights.transpose(3, 0, 1, 2)).reshape(kw * F, C * kh)


def unroll_rows(X_padded: Array, geometry: _Geometry, out: Array) -> Array:
    r"""Write :math:`R_{(c, i), (m, p, x)} = \tilde X_{m, c, p s_h + i d_h, x}` into ``out``.

    Parameters
    ----------
    X_padded : ndarray of shape (m, C, H_p, W_p)
    geometry : where the windows lie
    out : ndarray of shape (C, k_h, m, H_o, W_p)
        Any strides (a block of samples of a larger matrix works).
    """
    m, channels = X_padded.shape[:2]
    kh = geometry.kernel[0]
    (sh, _), (dh, _) = geometry.stride, geometry.dilation
    s_m, s_c, s_y, s_x = X_padded.strides
    rows = as_strided(
        X_padded,
        shape=(channels, kh, m, geometry.out_height, geometry.padded_width),
        strides=(s_c, dh * s_y, s_m, sh * s_y, s_x),
        writeable=False,
    )
    np.copyto(out, rows)
    return out


def rows_forward(
    weights: Array, unrolled: Array, geometry: _Geometry, bias: Array | None, products: Array,
    out: Array,
) -> Array:
    r"""The convolution of these samples by kernel rows: :math:`P = V R`, then
    :func:`sum_shifts` into ``out`` ``(m, F, H_o, W_o)``.

    ``weights``: :math:`V` ``(k_w F, C k_h)``; ``unrolled``: :math:`R`
    ``(C, k_h, m, H_o, W_p)``; ``products``: room for :math:`P`, ``(k_w, F, m H_o W_p)``.
    """
    np.matmul(weights, _matrix(unrolled), out=_matrix(products))
    return sum_shifts(products, geometry, bias, out)


def sum_shifts(products: Array, geometry: _Geometry, bias: Array | None, out: Array) -> Array:
    r"""The output from the kernel columns' partial sums: :math:`Z_{m f p q} = b_f +
    \sum_j P_{(j, f), (m, p, q + j d_w)}`.

    Parameters
    ----------
    products : ndarray of shape (k_w, F, m H_o W_p), C-contiguous
        :math:`P`; its first block is overwritten with the sums.
    geometry : where the windows lie
    bias : ndarray of shape (F,) or None
    out : ndarray of shape (m, F, H_o, W_o)
    """
    kw, filters, columns = products.shape
    shift = geometry.dilation[1]
    length = columns - (kw - 1) * shift  # the last positions read past the end: not outputs
    total = products[0, :, :length]
    for j in range(1, kw):
        np.add(total, products[j, :, j * shift : j * shift + length], out=total)
    rows = products[0].reshape(filters, -1, geometry.out_height, geometry.padded_width)
    outputs = rows[..., : geometry.out_width].transpose(1, 0, 2, 3)
    if bias is None:
        np.copyto(out, outputs)
    else:
        np.add(outputs, bias[:, None, None], out=out)
    return out


def shift_gradient(dout: Array, geometry: _Geometry, spread: Array, out: Array) -> Array:
    r"""Write :math:`S_{(j, f), (m, p, x)} = G_{m, f, p, x - j d_w}` (zero outside) into ``out``.

    Parameters
    ----------
    dout : ndarray of shape (m, F, H_o, W_o)
    geometry : where the windows lie
    spread : ndarray of shape (F, (k_w - 1) d_w + m H_o W_p), C-contiguous
        Work space: :math:`G` on the ``(m, p, x)`` columns after ``(k_w - 1) d_w``
        leading zeros.
    out : ndarray of shape (k_w, F, m H_o W_p)
    """
    kw, filters, columns = out.shape
    lead = (kw - 1) * geometry.dilation[1]
    spread[:, :lead] = 0
    image_rows = spread[:, lead:].reshape(filters, -1, geometry.out_height,
                                          geometry.padded_width)
    image_rows[..., geometry.out_width :] = 0  # columns with no output: no gradient
    np.copyto(image_rows[..., : geometry.out_width], dout.transpose(1, 0, 2, 3))
    # S's block j is the spread gradient shifted right by j d_w: a contiguous copy. A
    # column x - j d_w < 0 reads the previous row's columns >= W_o (zeros), or the lead.
    for j in range(kw):
        start = lead - j * geometry.dilation[1]
        np.copyto(out[j], spread[:, start : start + columns])
    return out


def col2im_rows(drows: Array, geometry: _Geometry, out: Array) -> Array:
    r"""Add the row-unrolled gradient back onto the image rows (the adjoint of
    :func:`unroll_rows`).

    Parameters
    ----------
    drows : ndarray of shape (C, k_h, m, H_o, W_p)
        :math:`\partial L / \partial R`.
    geometry : where the windows lie
    out : ndarray of shape (m, C, H_p, W_p)
        Overwritten with :math:`\text{out}_{m, c, y, x} = \sum_{i, p:\ p s_h + i d_h = y}
        (\partial L / \partial R)_{(c, i), (m, p, x)}`.
    """
    kh = geometry.kernel[0]
    (sh, _), (dh, _) = geometry.stride, geometry.dilation
    out.fill(0)
    by_channel = out.transpose(1, 0, 2, 3)  # (C, m, H_p, W_p), like drows' blocks
    last = sh * (geometry.out_height - 1) + 1
    for i in range(kh):
        rows = by_channel[:, :, i * dh : i * dh + last : sh]
        np.add(rows, drows[:, i], out=rows)
    return out


def rows_gradients(
    dout: Array, unrolled: Array, weights: Array, geometry: _Geometry, dX: Array | None,
    buffer: Buffer, flat_buffer: Buffer,
) -> Array:
    r"""Backward by kernel rows for these samples: write :math:`\partial L / \partial X`
    into ``dX`` (unless ``None``) and return :math:`\partial L / \partial W` as
    ``(1, F, C k_h k_w)``.

    Parameters
    ----------
    dout : ndarray of shape (m, F, H_o, W_o)
    unrolled : ndarray of shape (C, k_h, m, H_o, W_p)
        :math:`R` of these samples (:func:`unroll_rows`).
    weights : ndarray of shape (k_w F, C k_h)
        :math:`V` (:func:`rows_weights`).
    buffer, flat_buffer : where work arrays come from (samples first; any layout)
    """
    kh, kw = geometry.kernel
    filters, columns = dout.shape[1], unrolled[0, 0].size
    spread = flat_buffer("spread", (filters, (kw - 1) * geometry.dilation[1] + columns))
    shifted = shift_gradient(dout, geometry, spread,
                             flat_buffer("products", (kw, filters, columns)))
    # dL/dV = S R^T, (k_w F, C k_h), regrouped as W's (F, C, k_h, k_w).
    grad_v = np.matmul(_matrix(shifted), _matrix(unrolled).T)
    grad_w = grad_v.reshape(kw, filters, -1, kh).transpose(1, 2, 3, 0).reshape(1, filters, -1)
    if dX is not None:
        drows = flat_buffer("spread", unrolled.shape)  # the spread gradient's room: used up
        np.matmul(weights.T, _matrix(shifted), out=_matrix(drows))
        target = dX
        if geometry.padded:
            target = buffer("dX_padded", (
                dX.shape[0], dX.shape[1], geometry.padded_height, geometry.padded_width))
        col2im_rows(drows, geometry, target)
        if geometry.padded:
            dX[...] = target[geometry.interior()]
    return grad_w


def _matrix(blocks: Array) -> Array:
    """``(A, B, ...)`` blocks as an ``(A B, rest)`` matrix: a view (with a row stride when
    ``blocks`` is a block of samples of a larger array)."""
    return blocks.reshape(blocks.shape[0] * blocks.shape[1], -1)
