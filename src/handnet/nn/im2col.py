r"""Where the windows of a convolution or pooling lie, and how they are unrolled.

The geometry and data movement that :mod:`handnet.nn.conv` and
:mod:`handnet.nn.pooling` share, over batches of images ``(n, C, H, W)``:

* argument checks for sizes, padding and dtypes;
* the output size and padding along each axis (:class:`_Geometry`);
* *im2col* (:func:`im2col`): every window of the padded input copied into a
  column, one ``(C k_h k_w, H_o W_o)`` matrix per sample, so that a convolution
  is one matrix product per sample; and its adjoint *col2im* (:func:`col2im`,
  :func:`col2im_wide`), which adds the columns back onto the windows;
* the products of the im2col formulation's backward pass
  (:func:`columns_weight_gradient`, :func:`columns_input_gradient`);
* the chunking that keeps the unrolled matrices within a memory budget
  (:func:`chunk_rows`).

The threads that split a batch are in :mod:`handnet.nn.parallel`, the formulation by
kernel rows in :mod:`handnet.nn.im2row`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided
from numpy.typing import DTypeLike

from .layers import MAX_SIZE, Shape
from .parallel import Array, _is_int

Pair = tuple[int, int]
Padding = tuple[int, int] | str
#: ``buffer(name, shape)``: a work array of the data's dtype (a layer's, kept between passes).
Buffer = Callable[[str, tuple[int, ...]], Array]

#: The most values one sample's work array may hold: a padded image, an unrolled (im2col)
#: matrix. 2**27 values, 1 GiB of float64: far beyond the networks this library trains
#: (a 64-channel 3 x 3 convolution of a 224 x 224 image unrolls a fifth of it), while a
#: padding or dilation forged into a small model file (zeros by the gigabyte around each
#: image) is refused before anything is allocated. Read at each call.
MAX_SAMPLE_VALUES = 1 << 27


# --- argument checks ------------------------------------------------------------------------

def _pair(value: Any, layer: str, name: str, low: int = 1) -> Pair:
    """``k`` or ``(kh, kw)`` (a list of one or two works too) as a pair of integers >= ``low``."""
    items = list(value) if isinstance(value, (tuple, list)) else [value]
    if len(items) == 1:
        items = items * 2
    if len(items) != 2 or not all(_is_int(v) and low <= v <= MAX_SIZE for v in items):
        raise ValueError(
            f"{layer} {name} must be an integer from {low} to {MAX_SIZE} or a pair of them "
            f"(height, width), got {value!r}"
        )
    return int(items[0]), int(items[1])


def _padding(value: Any, layer: str) -> Padding:
    """``"same"``, ``"valid"``, ``p`` or ``(ph, pw)``, the counts as a pair."""
    if isinstance(value, str):
        if value not in ("same", "valid"):
            raise ValueError(
                f"{layer} padding must be 'same', 'valid', an integer >= 0 or a pair of them, "
                f"got {value!r}"
            )
        return value
    try:
        return _pair(value, layer, "padding", low=0)
    except ValueError:
        raise ValueError(
            f"{layer} padding must be 'same', 'valid', an integer >= 0 or a pair of them, "
            f"got {value!r}"
        ) from None


def _check_dtype(dtype: DTypeLike, layer: str) -> np.dtype[Any]:
    resolved = np.dtype(dtype)
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"{layer} dtype must be float32 or float64, got {resolved}")
    return resolved


def _image_shape(input_shape: Shape, layer: str) -> tuple[int, int, int]:
    shape = tuple(int(size) for size in input_shape)
    if len(shape) != 3:
        raise ValueError(
            f"{layer} takes images of per-sample shape (channels, height, width), got "
            f"{shape}; put a Reshape layer before it (e.g. Reshape((1, 28, 28)))"
        )
    return shape[0], shape[1], shape[2]



# --- where the windows lie ----------------------------------------------------------------


def _axis_geometry(
    size: int, kernel: int, stride: int, dilation: int, padding: int | str
) -> tuple[int, int, int]:
    """``(output size, padding before, padding after)`` along one spatial axis.

    ``"same"`` pads so that the output has ``ceil(size / stride)`` positions: the
    ``(out - 1) * stride + span - size`` padding (``span`` the dilated kernel's
    extent) is split evenly, the odd one out going after (bottom/right), as in
    TensorFlow; with stride 1 the output has the input's size.
    """
    span = dilation * (kernel - 1) + 1
    if padding == "same":
        out = -(-size // stride)
        total = max((out - 1) * stride + span - size, 0)
        before = total // 2
        return out, before, total - before
    pad = 0 if padding == "valid" else int(padding)
    if size + 2 * pad < span:
        raise ValueError(
            f"the kernel (extent {span} with dilation) is larger than the padded input "
            f"({size} + 2 x {pad} padding)"
        )
    return (size + 2 * pad - span) // stride + 1, pad, pad


@dataclass(frozen=True)
class _Geometry:
    """Where the windows of a convolution or pooling lie, for one input shape."""

    channels: int
    height: int
    width: int
    out_height: int
    out_width: int
    kernel: Pair
    stride: Pair
    dilation: Pair
    #: Zero (or -inf) rows and columns added: top, bottom, left, right.
    pads: tuple[int, int, int, int]

    @classmethod
    @functools.lru_cache(maxsize=256)  # the same few shapes at every step of a fit
    def of(
        cls,
        input_shape: Shape,
        kernel: Pair,
        stride: Pair,
        dilation: Pair,
        padding: Padding,
        layer: str,
    ) -> _Geometry:
        channels, height, width = _image_shape(input_shape, layer)
        pads: list[int] = []
        outs: list[int] = []
        for axis, size in enumerate((height, width)):
            pad = padding if isinstance(padding, str) else padding[axis]
            try:
                out, before, after = _axis_geometry(
                    size, kernel[axis], stride[axis], dilation[axis], pad
                )
            except ValueError as error:
                where = ("height", "width")[axis]
                raise ValueError(f"{layer}: {error} along the {where}") from None
            outs.append(out)
            pads += [before, after]
        return cls(channels, height, width, outs[0], outs[1], kernel, stride, dilation,
                   (pads[0], pads[1], pads[2], pads[3]))

    @property
    def padded(self) -> bool:
        return any(self.pads)

    @property
    def padded_height(self) -> int:
        return self.height + self.pads[0] + self.pads[1]

    @property
    def padded_width(self) -> int:
        return self.width + self.pads[2] + self.pads[3]

    @property
    def output_shape(self) -> Shape:
        return (self.out_height, self.out_width)

    def window(self, i: int, j: int) -> tuple[slice, slice]:
        """The slices of the padded image that kernel offset ``(i, j)`` sees in every window.

        Output position ``(p, q)`` reads padded pixel ``(p s_h + i d_h, q s_w + j d_w)``.
        """
        (sh, sw), (dh, dw) = self.stride, self.dilation
        top, left = i * dh, j * dw
        return (
            slice(top, top + sh * (self.out_height - 1) + 1, sh),
            slice(left, left + sw * (self.out_width - 1) + 1, sw),
        )

    def interior(self) -> tuple[slice, slice, slice, slice]:
        """The index of the unpadded image inside the padded one."""
        top, _, left, _ = self.pads
        return (
            slice(None),
            slice(None),
            slice(top, top + self.height),
            slice(left, left + self.width),
        )


def _check_sample_size(geometry: _Geometry, layer: str, unrolled: int = 0) -> None:
    """``ValueError`` unless one sample's padded image, and its unrolled matrix of
    ``unrolled`` values, fit in :data:`MAX_SAMPLE_VALUES`: checked before a pass
    allocates either, the message naming the settings that make them."""
    padded = (
        geometry.channels * geometry.padded_height * geometry.padded_width
        if geometry.padded else 0
    )
    for what, values in (("padded input", padded), ("unrolled matrix", unrolled)):
        if values > MAX_SAMPLE_VALUES:
            shape = (geometry.channels, geometry.height, geometry.width)
            raise ValueError(
                f"{layer}: one sample's {what} would hold {values:,} values, more than "
                f"MAX_SAMPLE_VALUES = {MAX_SAMPLE_VALUES:,} (handnet.nn.im2col): kernel "
                f"{geometry.kernel}, dilation {geometry.dilation} and padding {geometry.pads} "
                f"(top, bottom, left, right) on per-sample shape {shape}"
            )


def _pad(X: Array, geometry: _Geometry, value: float, out: Array | None = None) -> Array:
    """``X`` with ``value`` rows and columns around each image (``X`` itself without padding)."""
    if not geometry.padded:
        return X
    shape = (X.shape[0], X.shape[1], geometry.padded_height, geometry.padded_width)
    padded = np.empty(shape, dtype=X.dtype) if out is None else out
    top, bottom, left, right = geometry.pads
    # Fill only the border (the interior is overwritten by X right after).
    padded[:, :, :top] = value
    padded[:, :, padded.shape[2] - bottom :] = value
    padded[:, :, :, :left] = value
    padded[:, :, :, padded.shape[3] - right :] = value
    padded[geometry.interior()] = X
    return padded


# --- im2col and col2im --------------------------------------------------------------------


def im2col(X_padded: Array, geometry: _Geometry, out: Array | None = None) -> Array:
    r"""Unroll every window of a padded batch: one ``(C k_h k_w, H_o W_o)`` matrix per sample.

    Parameters
    ----------
    X_padded : ndarray of shape (n, C, H_p, W_p)
        The batch with its padding already added.
    geometry : where the windows lie
    out : ndarray of shape (n, C, k_h, k_w, H_o, W_o), optional
        Or ``(n, G, C_g, k_h, k_w, H_o, W_o)``: the channels split into groups (a view of
        a larger buffer whose groups have room for more rows).

    Returns
    -------
    cols : ndarray of shape (n, C, k_h, k_w, H_o, W_o)
        ``cols[m, c, i, j, p, q] = X_padded[m, c, p s_h + i d_h, q s_w + j d_w]``.
        Viewed as ``(n, G, C_g k_h k_w, H_o W_o)``, the rows of group ``g`` are
        ordered like the weights' ``(c, i, j)`` axes, so each sample's convolution
        is one matrix product per group.
    """
    n, channels = X_padded.shape[:2]
    (kh, kw), (sh, sw), (dh, dw) = geometry.kernel, geometry.stride, geometry.dilation
    s_n, s_c, s_h, s_w = X_padded.strides
    # A read-only strided view of every (sample, channel, offset, position): the one
    # copy below is the whole im2col (no Python loop over kernel offsets).
    windows = as_strided(
        X_padded,
        shape=(n, channels, kh, kw, geometry.out_height, geometry.out_width),
        strides=(s_n, s_c, dh * s_h, dw * s_w, sh * s_h, sw * s_w),
        writeable=False,
    )
    if out is None:
        return windows.copy()
    np.copyto(out, windows.reshape(out.shape))  # out's channels may be split into groups
    return out


def col2im(dcols: Array, geometry: _Geometry, out: Array) -> Array:
    r"""Add unrolled columns back onto the windows they came from (the adjoint of im2col).

    Parameters
    ----------
    dcols : ndarray of shape (n, C, k_h, k_w, H_o, W_o)
    geometry : where the windows lie
    out : ndarray of shape (n, C, H_p, W_p)
        Overwritten with
        :math:`\text{out}[m, c, y, x] = \sum_{i, j, p, q:\ p s_h + i d_h = y,\
        q s_w + j d_w = x} \text{dcols}[m, c, i, j, p, q]`.
    """
    kh, kw = geometry.kernel
    out.fill(0)
    # One strided add per kernel offset, over all samples and channels at once.
    for i in range(kh):
        for j in range(kw):
            rows, columns = geometry.window(i, j)
            out[:, :, rows, columns] += dcols[:, :, i, j]
    return out


def _wide_layout(geometry: _Geometry) -> tuple[int, int]:
    """``(pitch, length)`` of the wide-row layout of :func:`col2im_wide` (stride 1 across)."""
    pitch = geometry.stride[0] * geometry.padded_width
    return pitch, (geometry.out_height - 1) * pitch + geometry.out_width


def col2im_wide(dcols: Array, geometry: _Geometry, out: Array) -> Array:
    r""":func:`col2im` for a horizontal stride of 1, from columns laid out in *wide rows*.

    Output position ``(p, q)`` reads padded pixel ``(p s_h + i d_h, q + j d_w)``,
    at flat index ``p s_h W_p + q + s_{ij}`` with the shift
    :math:`s_{ij} = i d_h W_p + j d_w`. Indexing the positions by
    ``o = p s_h W_p + q`` (*wide rows* of ``s_h W_p`` entries, of which the first
    ``W_o`` are real positions) makes that flat index ``o + s_ij``: the columns
    of one kernel offset fall on one contiguous stretch of the flattened image.

    Parameters
    ----------
    dcols : ndarray of shape (n, C, k_h, k_w, L)
        ``L = (H_o - 1) s_h W_p + W_o`` wide positions; those past ``W_o`` in a row
        must hold 0 (they are added onto the image too).
    geometry : where the windows lie (``stride[1] == 1``)
    out : ndarray of shape (n, C, H_p, W_p), C-contiguous
        Overwritten with the sums.
    """
    kh, kw = geometry.kernel
    dh, dw = geometry.dilation
    length = dcols.shape[-1]
    if not out.flags.c_contiguous:
        raise ValueError("col2im_wide writes into a C-contiguous array")
    flat = out.reshape(*out.shape[:2], -1)  # a view of out
    flat.fill(0)
    for i in range(kh):
        for j in range(kw):
            shift = i * dh * geometry.padded_width + j * dw
            flat[:, :, shift : shift + length] += dcols[:, :, i, j]
    return out



# --- the products of backward ---------------------------------------------------------------


def columns_weight_gradient(grad_out: Array, cols: Array, buffer: Buffer) -> Array:
    r""":math:`\sum_m G_{m,g} U_{m,g}^\top` over these samples: ``(G, F_g, K_g)``.

    ``grad_out``: ``(rows, G, F_g, P)``; ``cols``: ``(rows, G, K_g, P)``.
    """
    rows, G, Fg, P = grad_out.shape
    Kg = cols.shape[2]
    if Kg > P:
        # Few positions, long rows (a deep layer): OpenBLAS computes the per-sample
        # products about twice as fast as U G^T, with G^T made contiguous first.
        grad_t = buffer("grad_t", (rows, G, P, Fg))
        np.copyto(grad_t, grad_out.transpose(0, 1, 3, 2))
        per_sample = buffer("per_sample_t", (rows, G, Kg, Fg))
        np.matmul(cols, grad_t, out=per_sample)
        return per_sample.sum(axis=0).transpose(0, 2, 1)
    per_sample = buffer("per_sample", (rows, G, Fg, Kg))
    np.matmul(grad_out, cols.transpose(0, 1, 3, 2), out=per_sample)
    return per_sample.sum(axis=0)


def columns_input_gradient(
    grad_out: Array, weights: Array, geometry: _Geometry, dX: Array, buffer: Buffer
) -> None:
    r"""Write :math:`\partial L / \partial X` of these samples into ``dX``: col2im of
    :math:`W_g^\top G_g` (``weights``: :math:`W` as ``(G, F_g, C_g k_h k_w)``).

    With a horizontal stride of 1, the products are taken on *wide rows*
    (:func:`col2im_wide`): each kernel offset's columns then lie along one
    contiguous stretch of the flattened image, and col2im is ``k_h k_w`` adds of
    long contiguous runs instead of short strided rows (some 3 times faster).
    """
    rows, G, Fg, P = grad_out.shape
    weights_t = weights.transpose(0, 2, 1)  # (G, K_g, F_g)
    channels, (kh, kw) = geometry.channels, geometry.kernel
    target = dX
    if geometry.padded:
        target = buffer("dX_padded", (
            rows, channels, geometry.padded_height, geometry.padded_width))
    if geometry.stride[1] == 1:
        pitch, length = _wide_layout(geometry)
        wide = buffer("grad_wide", (rows, G, Fg, geometry.out_height * pitch))
        rows_view = wide.reshape(rows, G, Fg, geometry.out_height, pitch)
        rows_view[..., geometry.out_width :] = 0  # between the rows: no output there
        rows_view[..., : geometry.out_width] = grad_out.reshape(
            rows, G, Fg, *geometry.output_shape
        )
        dcols = buffer("dcols_wide", (rows, G, weights_t.shape[1], length))
        np.matmul(weights_t, wide[..., :length], out=dcols)
        col2im_wide(dcols.reshape(rows, channels, kh, kw, length), geometry, target)
    else:
        dcols = buffer("dcols", (rows, G, weights_t.shape[1], P))
        np.matmul(weights_t, grad_out, out=dcols)
        col2im(dcols.reshape(rows, channels, kh, kw, *geometry.output_shape), geometry, target)
    if geometry.padded:
        dX[...] = target[geometry.interior()]

# --- chunks within a memory budget ----------------------------------------------------------


def chunk_rows(bytes_per_sample: int, budget: int) -> int:
    """Samples per chunk: as many as keep ``rows x bytes_per_sample`` within ``budget``
    bytes, and at least one (a single sample's matrix may exceed the budget)."""
    return max(1, budget // max(1, bytes_per_sample))
