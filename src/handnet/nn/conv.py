r"""Convolution and pooling layers for images: ``(n_samples, channels, height, width)``.

Every layer here takes a batch of images in NCHW order (the per-sample shape is
``(channels, height, width)``) and follows the :class:`~handnet.nn.layers.Layer`
API: ``forward`` keeps what ``backward`` needs, ``backward`` writes the
parameters' gradients into the arrays :meth:`Layer.gradients` returns and gives
back the gradient with respect to the input.

* :class:`Conv2D`: 2-D cross-correlation (what deep-learning libraries call a
  convolution), with stride, zero padding (``"same"``, ``"valid"`` or counts),
  dilation and groups;
* :class:`MaxPool2D`, :class:`AvgPool2D`: the maximum or mean of each window;
* :class:`GlobalAvgPool2D`: the mean of each channel, ``(n, c, h, w) -> (n, c)``.

``Flatten`` and ``Reshape`` (in :mod:`handnet.nn.layers`) join them to dense layers.

How a convolution is computed
-----------------------------
*im2col*: every window of the (padded) input is copied into a column of a matrix,
one matrix ``(C k_h k_w, H_o W_o)`` per sample, so that each sample's convolution is
one matrix product with the weights (one batched ``np.matmul`` for all the samples:
BLAS does the arithmetic, and the products land in NCHW order with no transpose).
The backward pass is two more products per sample and *col2im*, which adds the
columns' gradients back onto the image windows they came from (on "wide rows",
long contiguous stretches, when the horizontal stride is 1: :func:`col2im_wide`).
On this project's 2-core benchmark machine (OpenBLAS) the per-sample products
ran two to three times faster than one product over the whole batch, whose
operands are as skinny as the layer has filters.

The unrolled matrix is ``k_h k_w`` times the size of the input, so a batch is
processed in chunks of samples whose unrolled matrix stays within a memory budget
(:data:`MEMORY_BUDGET`, or the layer's ``memory_budget``), and each chunk may be split
over threads (the layer's ``n_threads``, or :func:`threads_over_samples`; NumPy
releases the GIL in every large call).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np
from numpy.lib.stride_tricks import as_strided
from numpy.typing import DTypeLike, NDArray

from .initializers import Initializer, get_initializer
from .layers import LAYERS, MAX_SIZE, Layer, Shape

Array = NDArray[np.floating]
T = TypeVar("T")

#: The most bytes an unrolled (im2col) matrix may take: a batch whose unrolled matrix
#: would be larger is convolved in chunks of samples. A layer's ``memory_budget``
#: overrides it; read at each call, so changing it affects existing layers.
MEMORY_BUDGET = 64 * 2**20

#: The fewest samples a thread is given: below that, splitting a batch over threads
#: costs more (waking them, Python) than it saves.
MIN_ROWS_PER_THREAD = 8

#: The most threads a pass uses (memory bandwidth, not cores, bounds these passes).
MAX_THREADS = 8

Pair = tuple[int, int]
Padding = tuple[int, int] | str


# --- argument checks ------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


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


def _check_threads(n_threads: Any, layer: str) -> int | None:
    if n_threads is not None and not (_is_int(n_threads) and n_threads >= 1):
        raise ValueError(
            f"{layer} n_threads must be an integer >= 1 or None (BLAS's thread count), got "
            f"{n_threads!r}"
        )
    return None if n_threads is None else int(n_threads)


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


# --- threads --------------------------------------------------------------------------------
#
# A convolution or pooling pass is a handful of large NumPy calls (strided copies,
# ufuncs, batched matrix products), each of which releases the GIL: split over the
# samples, the parts run on several cores at once. The per-sample products are too
# small for BLAS's own threads to help, and multi-threaded BLAS next to these threads
# only competes with them for the cores (OpenBLAS's idle workers spin for a while after
# each product): measured on 2 cores, the layers' threads pay off with BLAS on one
# thread, and lose a little with BLAS on two. Hence :func:`threads_over_samples`.

_EXECUTOR: ThreadPoolExecutor | None = None
_EXECUTOR_WORKERS = 0
_EXECUTOR_LOCK = threading.Lock()
#: (thread id, threads) set by threads_over_samples for the thread that entered it.
_OVER_SAMPLES: tuple[int, int] | None = None


def default_threads() -> int:
    """Threads a layer's pass uses when its ``n_threads`` is ``None``.

    The count given to :func:`threads_over_samples`, in the thread that entered it;
    1 everywhere else (other threads, such as :mod:`handnet.data.blocks`' workers, which
    already split the rows, included).
    """
    setting = _OVER_SAMPLES
    if setting is not None and setting[0] == threading.get_ident():
        return setting[1]
    return 1


@contextlib.contextmanager
def threads_over_samples(n_threads: int | None = None) -> Iterator[None]:
    """Within the block, these layers split their batches over ``n_threads`` threads and
    BLAS runs on one (:func:`handnet.data.blocks.single_threaded_blas`).

    ``None``: as many threads as BLAS had before (read with ``threadpoolctl``; the
    usable cores without it). For the thread that enters the block; layers whose
    ``n_threads`` is set keep their own count. Training a convolutional network::

        with handnet.nn.conv.threads_over_samples(2):
            trainer.fit(X, Y)
    """
    global _OVER_SAMPLES
    if n_threads is None:
        n_threads = _blas_threads()
    n_threads = _check_threads(n_threads, "threads_over_samples")
    assert n_threads is not None
    from ..data.blocks import single_threaded_blas

    previous = _OVER_SAMPLES
    with single_threaded_blas():
        _OVER_SAMPLES = (threading.get_ident(), min(n_threads, MAX_THREADS))
        try:
            yield
        finally:
            _OVER_SAMPLES = previous


def _blas_threads() -> int:
    """NumPy's BLAS thread count (``threadpoolctl``), else the usable cores."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        return len(cores) if cores else os.cpu_count() or 1
    blas = [info for info in threadpool_info() if info.get("user_api") == "blas"]
    own = [info for info in blas if "numpy" in str(info.get("filepath"))] or blas
    return max([1, *(int(info["num_threads"]) for info in own)])


def _parts(start: int, stop: int, threads: int) -> list[tuple[int, int]]:
    """``[start, stop)`` split into at most ``threads`` nearly equal runs of samples."""
    count = max(1, min(threads, (stop - start) // MIN_ROWS_PER_THREAD))
    bounds = [start + (stop - start) * k // count for k in range(count + 1)]
    return list(itertools.pairwise(bounds))


def _in_parallel(
    task: Callable[[int, int, int], T], start: int, stop: int, threads: int
) -> list[T]:
    """``task(part, first, last)`` for each part of ``[start, stop)``, on up to ``threads``
    threads (the calling one included); the results in the parts' order."""
    global _EXECUTOR, _EXECUTOR_WORKERS
    parts = _parts(start, stop, threads)
    if len(parts) == 1:
        return [task(0, start, stop)]
    with _EXECUTOR_LOCK:
        if _EXECUTOR is None or len(parts) - 1 > _EXECUTOR_WORKERS:
            _EXECUTOR_WORKERS = len(parts) - 1
            _EXECUTOR = ThreadPoolExecutor(_EXECUTOR_WORKERS, thread_name_prefix="handnet-conv")
        executor = _EXECUTOR
    futures = [executor.submit(task, k, *part) for k, part in enumerate(parts) if k]
    try:
        first = task(0, *parts[0])
    finally:
        wait(futures)  # even after an error: no thread may still be writing afterwards
    return [first, *(future.result() for future in futures)]


def _samples_buffer(
    layer: Conv2D | _Pool2D, name: str, shape: tuple[int, ...], dtype: np.dtype[Any]
) -> Array:
    """A work buffer of ``shape`` (samples first): in a training pass with buffer reuse on,
    the first rows of one kept from pass to pass, else a new array.

    Unlike :meth:`Layer._workspace` (one buffer per exact shape), an epoch's smaller
    last batch reuses the full batches' buffers instead of allocating a second set.
    """
    if not layer._training:
        return np.empty(shape, dtype=dtype)
    buffers: dict[Any, Array] = layer.__dict__.setdefault("_buffers", {})
    key = ("samples", name, shape[1:])
    buffer = buffers.get(key)
    if buffer is None or buffer.shape[0] < shape[0] or buffer.dtype != dtype:
        buffer = buffers[key] = np.empty(shape, dtype=dtype)
    return buffer[: shape[0]]


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
    np.copyto(out, windows)
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


# --- Conv2D -------------------------------------------------------------------------------


class Conv2D(Layer):
    r"""2-D convolution (cross-correlation) of images, with stride, padding, dilation, groups.

    Parameters
    ----------
    in_channels : int or None
        ``C``; ``None``: read from the input when the network is built (:meth:`build`).
    out_channels : int
        ``F``, the number of filters.
    kernel_size : int or (int, int)
        ``(k_h, k_w)``.
    stride : int or (int, int), default 1
        ``(s_h, s_w)``: steps between windows.
    padding : int, (int, int), "valid" or "same", default 0
        Zeros added around each image: ``p`` on every side, ``(p_h, p_w)`` above and
        below / left and right, ``"valid"`` none, ``"same"`` enough that the output
        has ``ceil(size / stride)`` positions along each axis (the input's size with
        stride 1). ``"same"`` splits an odd total unevenly: the extra row (column)
        goes below (right), as in TensorFlow.
    dilation : int or (int, int), default 1
        ``(d_h, d_w)``: spacing between the kernel's taps.
    groups : int, default 1
        ``G``: input and output channels split into ``G`` groups, each output group
        seeing only its input group (``G = C``: a depthwise convolution). Must
        divide ``C`` and ``F``.
    use_bias : bool, default True
        Add a learned bias per filter.
    init : str or callable, default "he"
        Weight initialiser (:mod:`handnet.nn.initializers`), called with
        ``(fan_in, F)`` where ``fan_in = C_g k_h k_w``: ``"he"`` draws
        :math:`\mathcal N(0, 2 / \text{fan\_in})`, suited to ReLU. Biases start at 0.
    random_state : int, Generator or None
        Source of the initial weights (when ``in_channels`` is given).
    dtype : float32 or float64
    memory_budget : int or None
        Bytes the unrolled (im2col) matrix of one chunk of samples may take; a batch
        is convolved in as many chunks as needed (at least one sample each).
        ``None``: the module's :data:`MEMORY_BUDGET` at the time of the call.
    n_threads : int or None
        Threads a pass splits the batch over (at least :data:`MIN_ROWS_PER_THREAD`
        samples each). ``None``: :func:`default_threads` at the time of the call (1,
        or the count :func:`threads_over_samples` sets).

    Attributes
    ----------
    weights : ndarray of shape (F, C / G, k_h, k_w)
    bias : ndarray of shape (F,), or None without ``use_bias``
    grad_weights, grad_bias : their gradients (written by :meth:`backward`)

    Notes
    -----
    Input :math:`X` of shape ``(n, C, H, W)``, zero-padded to :math:`\tilde X`;
    output :math:`Z` of shape ``(n, F, H_o, W_o)`` with
    :math:`H_o = \lfloor (H + p_{top} + p_{bottom} - d_h (k_h - 1) - 1) / s_h \rfloor + 1`
    (likewise :math:`W_o`). For output channel :math:`f` in group :math:`g`
    (input channels :math:`c \in g`, :math:`c'` their index within the group):

    .. math::

        Z_{m f p q} = b_f + \sum_{c \in g} \sum_{i=0}^{k_h-1} \sum_{j=0}^{k_w-1}
            W_{f c' i j}\, \tilde X_{m, c, p s_h + i d_h, q s_w + j d_w}

    With sample :math:`m`'s windows unrolled (:func:`im2col`) into :math:`U_{m,g}` of
    shape ``(C_g k_h k_w, H_o W_o)`` per group and :math:`W_g` of shape
    ``(F_g, C_g k_h k_w)``, this is :math:`Z_{m,g} = W_g U_{m,g} + b_g`. With
    :math:`G_{m,g}` the matching ``(F_g, H_o W_o)`` block of
    :math:`\partial L / \partial Z`:

    .. math::

        \frac{\partial L}{\partial W_g} = \sum_m G_{m,g} U_{m,g}^\top, \qquad
        \frac{\partial L}{\partial b_f} = \sum_{m, p, q} (G_Z)_{m f p q}, \qquad
        \frac{\partial L}{\partial U_{m,g}} = W_g^\top G_{m,g}

    and :math:`\partial L / \partial X` is :math:`\partial L / \partial U` added
    back onto the windows (:func:`col2im`, :func:`col2im_wide`), the padding cropped.

    In a training pass whose batch fits in one chunk, the unrolled matrices are
    kept for :meth:`backward` (not unrolled twice); otherwise :meth:`backward`
    unrolls each chunk again. Memory: the kept matrices (``k_h k_w`` times the
    input's size), and as much again for the input gradient's.
    """

    penalized: tuple[bool, ...] = (True, False)
    _forward_cache = ("_X", "_cols", "_training")

    def __init__(
        self,
        in_channels: int | None,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] | str = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        use_bias: bool = True,
        init: str | Initializer = "he",
        random_state: int | np.random.Generator | None = None,
        dtype: DTypeLike = np.float64,
        memory_budget: int | None = None,
        n_threads: int | None = None,
    ) -> None:
        name = "Conv2D"
        for label, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if (value is not None or label == "out_channels") and not (
                _is_int(value) and 1 <= value <= MAX_SIZE  # type: ignore[operator]
            ):
                allowed = " (or None: read from the input)" if label == "in_channels" else ""
                raise ValueError(
                    f"{name} {label} must be an integer from 1 to {MAX_SIZE}{allowed}, "
                    f"got {value!r}"
                )
        if not (_is_int(groups) and 1 <= groups <= MAX_SIZE):
            raise ValueError(f"{name} groups must be an integer >= 1, got {groups!r}")
        if out_channels % groups or (in_channels is not None and in_channels % groups):
            raise ValueError(
                f"{name} groups={groups} must divide in_channels ({in_channels}) and "
                f"out_channels ({out_channels})"
            )
        if not isinstance(use_bias, (bool, np.bool_)):
            raise ValueError(f"{name} use_bias must be True or False, got {use_bias!r}")
        if memory_budget is not None and not (_is_int(memory_budget) and memory_budget >= 1):
            raise ValueError(
                f"{name} memory_budget must be a number of bytes >= 1 or None, got "
                f"{memory_budget!r}"
            )
        get_initializer(init)  # an unknown name is an error now, not at build time
        self.in_channels = None if in_channels is None else int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = _pair(kernel_size, name, "kernel_size")
        self.stride = _pair(stride, name, "stride")
        self.padding = _padding(padding, name)
        self.dilation = _pair(dilation, name, "dilation")
        self.groups = int(groups)
        self.use_bias = bool(use_bias)
        self.init = init
        self.random_state = random_state
        self.dtype = _check_dtype(dtype, name)
        self.memory_budget = None if memory_budget is None else int(memory_budget)
        self.n_threads = _check_threads(n_threads, name)
        if not self.use_bias:
            self.penalized = (True,)
        self._X: Array | None = None
        self._cols: Array | None = None
        self._training = False
        if self.in_channels is not None:
            self._allocate(np.random.default_rng(random_state), self.dtype)

    # --- parameters ---------------------------------------------------------------------

    def _allocate(self, rng: np.random.Generator, dtype: DTypeLike) -> None:
        assert self.in_channels is not None
        self.dtype = _check_dtype(dtype, "Conv2D")
        kh, kw = self.kernel_size
        per_group = self.in_channels // self.groups
        fan_in = per_group * kh * kw
        # The initialisers draw (fan_in, fan_out) matrices: one column per filter.
        drawn = get_initializer(self.init)(fan_in, self.out_channels, rng, self.dtype)
        self.weights: Array = np.ascontiguousarray(
            drawn.T.reshape(self.out_channels, per_group, kh, kw), dtype=self.dtype
        )
        self.grad_weights: Array = np.zeros_like(self.weights)
        self.bias: Array | None = None
        self.grad_bias: Array | None = None
        if self.use_bias:
            self.bias = np.zeros(self.out_channels, dtype=self.dtype)
            self.grad_bias = np.zeros_like(self.bias)

    def is_built(self) -> bool:
        return "weights" in self.__dict__

    def build(self, input_shape: Shape, rng: np.random.Generator, dtype: DTypeLike) -> None:
        channels = _image_shape(input_shape, "Conv2D")[0]
        if self.in_channels is None and channels % self.groups:
            raise ValueError(
                f"Conv2D groups={self.groups} must divide the input's {channels} channels"
            )
        previous = self.in_channels
        self.in_channels = channels if previous is None else previous
        try:
            self.output_shape(input_shape)
        except ValueError:
            self.in_channels = previous
            raise
        self._allocate(rng, dtype)

    def parameters(self) -> list[Array]:
        if not self.is_built():
            return []
        return [self.weights] if self.bias is None else [self.weights, self.bias]

    def gradients(self) -> list[Array]:
        if not self.is_built():
            return []
        if self.grad_bias is None:
            return [self.grad_weights]
        return [self.grad_weights, self.grad_bias]

    def bind(self, parameters: list[Array], gradients: list[Array]) -> None:
        own = self.parameters()
        if len(parameters) != len(own) or len(gradients) != len(own):
            raise ValueError(f"Conv2D binds {len(own)} arrays, got {len(parameters)}")
        for given, grad, mine in zip(parameters, gradients, own, strict=True):
            if given.shape != mine.shape or grad.shape != mine.shape:
                raise ValueError("bound arrays do not match the layer's shapes")
        for given, mine in zip(parameters, own, strict=True):
            given[...] = mine
        self.weights, self.grad_weights = parameters[0], gradients[0]
        if self.use_bias:
            self.bias, self.grad_bias = parameters[1], gradients[1]

    # --- shapes -------------------------------------------------------------------------

    def _geometry(self, input_shape: Shape) -> _Geometry:
        return _Geometry.of(
            tuple(input_shape), self.kernel_size, self.stride, self.dilation, self.padding,
            "Conv2D",
        )

    def output_shape(self, input_shape: Shape) -> Shape:
        channels = _image_shape(input_shape, "Conv2D")[0]
        if self.in_channels is not None and channels != self.in_channels:
            raise ValueError(f"Conv2D expects {self.in_channels} input channels, got {channels}")
        if channels % self.groups:
            raise ValueError(
                f"Conv2D groups={self.groups} must divide the input's {channels} channels"
            )
        return (self.out_channels, *self._geometry(input_shape).output_shape)

    def _unrolled_bytes(self, geometry: _Geometry, itemsize: int) -> int:
        """Bytes of one sample's unrolled matrix (its wide-row gradient's, if longer)."""
        positions = geometry.out_height * geometry.out_width
        if self.stride[1] == 1:
            positions = max(positions, _wide_layout(geometry)[1])
        return geometry.channels * self.kernel_size[0] * self.kernel_size[1] * positions * itemsize

    def _chunk_rows(self, geometry: _Geometry, itemsize: int) -> int:
        """Samples per chunk: as many as keep the unrolled matrices within the budget."""
        budget = MEMORY_BUDGET if self.memory_budget is None else self.memory_budget
        return max(1, budget // max(1, self._unrolled_bytes(geometry, itemsize)))

    # --- forward and backward -----------------------------------------------------------

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Array:
        """A reused buffer in a training pass with buffer reuse on, else a new array."""
        return _samples_buffer(self, name, shape, dtype)

    def _cols_buffer(self, geometry: _Geometry, rows: int, dtype: np.dtype[Any]) -> Array:
        """Room for the unrolled matrices of ``rows`` samples: ``(rows, G, C_g k_h k_w, P)``."""
        kh, kw = self.kernel_size
        per_group = geometry.channels // self.groups * kh * kw
        shape = (rows, self.groups, per_group, geometry.out_height * geometry.out_width)
        return self._buffer("cols", shape, dtype)

    def _unroll(self, X: Array, geometry: _Geometry, cols: Array, part: int) -> Array:
        """Write the unrolled matrices of the samples ``X`` into ``cols`` (see :func:`im2col`).

        ``part``: which thread's share this is (each has its own work buffers).
        """
        rows = X.shape[0]
        by_offset = cols.reshape(rows, geometry.channels, *self.kernel_size,
                                 *geometry.output_shape)
        if geometry.padded:
            padded_shape = (rows, geometry.channels, geometry.padded_height, geometry.padded_width)
            X = _pad(X, geometry, 0.0, self._buffer(f"padded{part}", padded_shape, X.dtype))
        im2col(X, geometry, by_offset)
        return cols

    def _weights_as(self, dtype: np.dtype[Any]) -> Array:
        """``W`` as ``(G, F_g, C_g k_h k_w)`` (a view), in the data's dtype."""
        weights = self.weights.astype(dtype, copy=False)
        return weights.reshape(self.groups, self.out_channels // self.groups, -1)

    def _threads(self) -> int:
        return default_threads() if self.n_threads is None else self.n_threads

    def forward(self, X: Array, training: bool = False) -> Array:
        if not self.is_built():
            raise RuntimeError("Conv2D has no parameters yet: give in_channels, or build() it")
        X = np.asarray(X)
        if X.dtype.kind != "f":
            X = X.astype(self.weights.dtype)
        if X.ndim != 4:
            raise ValueError(
                f"Conv2D takes a batch of images (n_samples, channels, height, width), "
                f"got an array of shape {X.shape}"
            )
        self.output_shape(X.shape[1:])
        geometry = self._geometry(X.shape[1:])
        n = X.shape[0]
        self._X = X
        self._training = training and self.reuse_buffers
        step = self._chunk_rows(geometry, X.dtype.itemsize)
        weights = self._weights_as(X.dtype)
        out = self._buffer("out", (n, self.out_channels, *geometry.output_shape), X.dtype)
        # Each sample's product lands in NCHW order: (G, F_g, K_g) @ (rows, G, K_g, P)
        # -> (rows, G, F_g, P), which is (rows, F, H_o, W_o).
        products = out.reshape(n, self.groups, self.out_channels // self.groups,
                               geometry.out_height * geometry.out_width)
        bias = None if self.bias is None else self.bias.astype(X.dtype, copy=False)
        self._cols = None
        for start in range(0, n, step):
            stop = min(start + step, n)
            cols = self._cols_buffer(geometry, stop - start, X.dtype)

            def convolve(part: int, first: int, last: int) -> None:
                unrolled = cols[first - start : last - start]  # noqa: B023 - called right away
                self._unroll(X[first:last], geometry, unrolled, part)
                np.matmul(weights, unrolled, out=products[first:last])
                if bias is not None:
                    out[first:last] += bias[:, None, None]

            _in_parallel(convolve, start, stop, self._threads())
            if training and step >= n:
                self._cols = cols  # one chunk: kept, so backward need not unroll it again
        return out

    def backward(self, dout: Array, need_input_gradient: bool = True) -> Array | None:
        X = self._X
        if X is None:
            raise RuntimeError("Conv2D.backward called before forward")
        geometry = self._geometry(X.shape[1:])
        n, dtype = X.shape[0], X.dtype
        step = self._chunk_rows(geometry, dtype.itemsize)
        # dL/dZ as each sample's (G, F_g, P) matrices (a view of a contiguous dout).
        grad_out = dout.reshape(n, self.groups, self.out_channels // self.groups,
                                geometry.out_height * geometry.out_width)
        ones = np.ones(grad_out.shape[3], dtype=dtype) if self.grad_bias is not None else None
        dX = self._buffer("dX", X.shape, dtype) if need_input_gradient else None
        grad_weights = self.grad_weights.reshape(grad_out.shape[1], grad_out.shape[2], -1)
        if n == 0:  # an empty batch: no chunk below writes the gradients
            for gradient in self.gradients():
                gradient[...] = 0
        kept = self._cols
        for start in range(0, n, step):
            stop = min(start + step, n)
            cols = kept if kept is not None else self._cols_buffer(geometry, stop - start, dtype)

            def differentiate(part: int, first: int, last: int) -> tuple[Array, Array | None]:
                unrolled = cols[first - start : last - start]  # noqa: B023 - called right away
                if kept is None:
                    self._unroll(X[first:last], geometry, unrolled, part)
                if dX is not None:
                    self._input_gradient(grad_out[first:last], geometry, dX[first:last], part)
                # dL/db_f: the sum over samples and positions (the positions' sum as a
                # product with ones, some 2.5 times faster than np.sum over two axes).
                bias_sum = None if ones is None else (grad_out[first:last] @ ones).sum(axis=0)
                return self._weight_gradient(grad_out[first:last], unrolled, part), bias_sum

            # The parts' sums, added in a fixed order (the same numbers on every run).
            partials = _in_parallel(differentiate, start, stop, self._threads())
            for k, (weights_part, bias_part) in enumerate(partials):
                fresh = start == 0 and k == 0
                if fresh:
                    grad_weights[...] = weights_part
                else:
                    grad_weights += weights_part
                if self.grad_bias is not None and bias_part is not None:
                    bias_view = self.grad_bias.reshape(bias_part.shape)
                    if fresh:
                        bias_view[...] = bias_part
                    else:
                        bias_view += bias_part
        return dX

    def _weight_gradient(self, grad_out: Array, cols: Array, part: int) -> Array:
        r""":math:`\sum_m G_{m,g} U_{m,g}^\top` over these samples: ``(G, F_g, K_g)``.

        ``grad_out``: ``(rows, G, F_g, P)``; ``cols``: ``(rows, G, K_g, P)``.
        """
        rows, G, Fg, P = grad_out.shape
        Kg = cols.shape[2]
        if Kg > P:
            # Few positions, long rows (a deep layer): OpenBLAS computes the per-sample
            # products about twice as fast as U G^T, with G^T made contiguous first.
            grad_t = self._buffer(f"grad_t{part}", (rows, G, P, Fg), grad_out.dtype)
            np.copyto(grad_t, grad_out.transpose(0, 1, 3, 2))
            per_sample = self._buffer(f"per_sample_t{part}", (rows, G, Kg, Fg), grad_out.dtype)
            np.matmul(cols, grad_t, out=per_sample)
            return per_sample.sum(axis=0).transpose(0, 2, 1)
        per_sample = self._buffer(f"per_sample{part}", (rows, G, Fg, Kg), grad_out.dtype)
        np.matmul(grad_out, cols.transpose(0, 1, 3, 2), out=per_sample)
        return per_sample.sum(axis=0)

    def _input_gradient(self, grad_out: Array, geometry: _Geometry, dX: Array, part: int) -> None:
        r"""Write :math:`\partial L / \partial X` of these samples into ``dX``: col2im of
        :math:`W_g^\top G_g`.

        With a horizontal stride of 1, the products are taken on *wide rows*
        (:func:`col2im_wide`): each kernel offset's columns then lie along one
        contiguous stretch of the flattened image, and col2im is ``k_h k_w`` adds of
        long contiguous runs instead of short strided rows (some 3 times faster).
        """
        rows, G, Fg, P = grad_out.shape
        weights_t = self._weights_as(dX.dtype).transpose(0, 2, 1)  # (G, K_g, F_g)
        channels, (kh, kw) = geometry.channels, self.kernel_size
        padded_shape = (rows, channels, geometry.padded_height, geometry.padded_width)
        target = dX
        if geometry.padded:
            target = self._buffer(f"dX_padded{part}", padded_shape, dX.dtype)
        if self.stride[1] == 1:
            pitch, length = _wide_layout(geometry)
            wide = self._buffer(f"grad_wide{part}", (rows, G, Fg, geometry.out_height * pitch),
                                dX.dtype)
            rows_view = wide.reshape(rows, G, Fg, geometry.out_height, pitch)
            rows_view[..., geometry.out_width :] = 0  # between the rows: no output there
            rows_view[..., : geometry.out_width] = grad_out.reshape(
                rows, G, Fg, *geometry.output_shape
            )
            dcols = self._buffer(f"dcols_wide{part}", (rows, G, weights_t.shape[1], length),
                                 dX.dtype)
            np.matmul(weights_t, wide[..., :length], out=dcols)
            col2im_wide(dcols.reshape(rows, channels, kh, kw, length), geometry, target)
        else:
            dcols = self._buffer(f"dcols{part}", (rows, G, weights_t.shape[1], P), dX.dtype)
            np.matmul(weights_t, grad_out, out=dcols)
            col2im(dcols.reshape(rows, channels, kh, kw, *geometry.output_shape), geometry,
                   target)
        if geometry.padded:
            dX[...] = target[geometry.interior()]

    # --- saving -------------------------------------------------------------------------

    def config(self) -> dict[str, object]:
        return {
            "type": "Conv2D",
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": self.padding if isinstance(self.padding, str) else list(self.padding),
            "dilation": list(self.dilation),
            "groups": self.groups,
            "use_bias": self.use_bias,
        }

    config_fields: ClassVar[dict[str, str]] = {
        "in_channels": "size",
        "out_channels": "size",
        "kernel_size": "sizes",
        "stride": "sizes",
        "padding": "padding",
        "dilation": "sizes",
        "groups": "size",
        "use_bias": "flag",
    }

    @classmethod
    def from_config(cls, config: Mapping[str, Any], dtype: DTypeLike = np.float64) -> Conv2D:
        return cls(
            **{name: config[name] for name in cls.config_fields}, init="zeros", dtype=dtype
        )

    @classmethod
    def chain(
        cls, config: Mapping[str, Any], input_shape: Shape | None
    ) -> tuple[Shape | None, int]:
        name = "Conv2D"
        in_channels, out_channels = int(config["in_channels"]), int(config["out_channels"])
        groups = int(config["groups"])
        kernel = _pair(config["kernel_size"], name, "kernel_size")
        stride = _pair(config["stride"], name, "stride")
        dilation = _pair(config["dilation"], name, "dilation")
        padding = _padding(config["padding"], name)
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"groups={groups} must divide in_channels ({in_channels}) and out_channels "
                f"({out_channels})"
            )
        n_parameters = out_channels * (in_channels // groups) * kernel[0] * kernel[1]
        if config["use_bias"]:
            n_parameters += out_channels
        if input_shape is None:
            return None, n_parameters
        channels = _image_shape(input_shape, name)[0]
        if channels != in_channels:
            raise ValueError(
                f"Conv2D expects {in_channels} input channels but the layer before gives "
                f"per-sample shape {tuple(input_shape)}"
            )
        geometry = _Geometry.of(tuple(input_shape), kernel, stride, dilation, padding, name)
        return (out_channels, *geometry.output_shape), n_parameters

    def __repr__(self) -> str:
        text = f"Conv2D({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        defaults = {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1), "groups": 1}
        for name, default in defaults.items():
            value = getattr(self, name)
            if value != default:
                text += f", {name}={value!r}"
        if not self.use_bias:
            text += ", use_bias=False"
        return text + ")"


# --- pooling ------------------------------------------------------------------------------


class _Pool2D(Layer):
    """What max and average pooling share: arguments, shapes, window views, saving."""

    _forward_cache = ("_X", "_out", "_training")

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] | str = 0,
        n_threads: int | None = None,
    ) -> None:
        name = type(self).__name__
        self.n_threads = _check_threads(n_threads, name)
        self.kernel_size = _pair(kernel_size, name, "kernel_size")
        self.stride = self.kernel_size if stride is None else _pair(stride, name, "stride")
        self.padding = _padding(padding, name)
        if not isinstance(self.padding, str) and any(
            p >= k for p, k in zip(self.padding, self.kernel_size, strict=True)
        ):
            raise ValueError(
                f"{name} padding {self.padding} must be smaller than the kernel "
                f"{self.kernel_size} (a window of padding alone would have no input)"
            )
        self._X: Array | None = None
        self._out: Array | None = None
        self._training = False

    def _geometry(self, input_shape: Shape) -> _Geometry:
        name = type(self).__name__
        geometry = _Geometry.of(
            tuple(input_shape), self.kernel_size, self.stride, (1, 1), self.padding, name
        )
        top, bottom, left, right = geometry.pads
        kh, kw = self.kernel_size
        if max(top, bottom) >= kh or max(left, right) >= kw:
            raise ValueError(
                f"{name} padding {geometry.pads} (top, bottom, left, right) must be smaller "
                f"than the kernel {self.kernel_size}"
            )
        return geometry

    def _tiled(self, geometry: _Geometry) -> bool:
        """Whether the windows tile the image: stride = kernel and no padding."""
        return self.stride == self.kernel_size and not geometry.padded

    def _offset_views(self, image: Array, geometry: _Geometry) -> list[Array]:
        """For each kernel offset ``(i, j)``, row-major: the ``(n, C, H_o, W_o)`` view of
        the (padded) ``image`` that it reads in every window.

        Tiled windows come from one reshape, ``(n, C, H_o, k_h, W_o, k_w)`` (rows and
        columns past the last tile left out); other windows from strided slices.
        """
        kh, kw = self.kernel_size
        if self._tiled(geometry):
            Ho, Wo = geometry.out_height, geometry.out_width
            tiles = image[:, :, : Ho * kh, : Wo * kw].reshape(*image.shape[:2], Ho, kh, Wo, kw)
            return [tiles[:, :, :, i, :, j] for i in range(kh) for j in range(kw)]
        views = []
        for i in range(kh):
            for j in range(kw):
                rows, columns = geometry.window(i, j)
                views.append(image[:, :, rows, columns])
        return views

    def _covers_every_input_once(self, geometry: _Geometry) -> bool:
        """Whether the tiles cover every pixel exactly once (nothing left to zero)."""
        kh, kw = self.kernel_size
        return self._tiled(geometry) and (geometry.height, geometry.width) == (
            geometry.out_height * kh, geometry.out_width * kw)

    def _gradient_target(self, X: Array, geometry: _Geometry) -> Array:
        """Where backward adds the windows' gradients: ``dX``, or a padded zero image."""
        if geometry.padded:
            shape = (*X.shape[:2], geometry.padded_height, geometry.padded_width)
            target = self._buffer("dX_padded", shape, X.dtype)
        else:
            target = self._buffer("dX", X.shape, X.dtype)
        if not self._covers_every_input_once(geometry):
            target.fill(0)
        return target

    def _crop(self, target: Array, X: Array, geometry: _Geometry) -> Array:
        """The unpadded part of the gradient (``target`` itself without padding)."""
        if not geometry.padded:
            return target
        dX = self._buffer("dX", X.shape, X.dtype)
        dX[...] = target[geometry.interior()]
        return dX

    def _check_input(self, X: Array) -> tuple[Array, _Geometry]:
        X = np.asarray(X)
        if X.dtype.kind != "f":
            X = X.astype(np.float64)
        if X.ndim != 4:
            raise ValueError(
                f"{type(self).__name__} takes a batch of images (n_samples, channels, height, "
                f"width), got an array of shape {X.shape}"
            )
        return X, self._geometry(X.shape[1:])

    def _threads(self) -> int:
        return default_threads() if self.n_threads is None else self.n_threads

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: Any) -> Array:
        return _samples_buffer(self, name, shape, np.dtype(dtype))

    def output_shape(self, input_shape: Shape) -> Shape:
        geometry = self._geometry(input_shape)
        return (geometry.channels, *geometry.output_shape)

    def config(self) -> dict[str, object]:
        return {
            "type": type(self).__name__,
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": self.padding if isinstance(self.padding, str) else list(self.padding),
        }

    config_fields: ClassVar[dict[str, str]] = {
        "kernel_size": "sizes",
        "stride": "sizes",
        "padding": "padding",
    }

    @classmethod
    def chain(
        cls, config: Mapping[str, Any], input_shape: Shape | None
    ) -> tuple[Shape | None, int]:
        layer = cls(config["kernel_size"], config["stride"], config["padding"])
        return (None if input_shape is None else layer.output_shape(input_shape)), 0

    def __repr__(self) -> str:
        text = f"{type(self).__name__}({self.kernel_size}"
        if self.stride != self.kernel_size:
            text += f", stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding!r}"
        return text + ")"


class MaxPool2D(_Pool2D):
    r"""The maximum of each window: ``(n, C, H, W) -> (n, C, H_o, W_o)``.

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Default: the kernel size (windows side by side).
    padding : int, (int, int), "valid" or "same", default 0
        Rows and columns of :math:`-\infty` around each image (never the maximum
        of a window that holds an input value); each side's padding must be
        smaller than the kernel.
    n_threads : int or None
        Threads a pass splits the batch over; ``None``: :func:`default_threads`.

    Notes
    -----
    .. math::

        Z_{m c p q} = \max_{0 \le i < k_h,\ 0 \le j < k_w} \tilde X_{m, c, p s_h + i, q s_w + j}

    The gradient of each output goes to exactly one input of its window, the
    first maximum in row-major order (the maximum is not differentiable at ties;
    this is a subgradient, and PyTorch's choice):

    .. math::

        \frac{\partial L}{\partial X_{m c y x}} = \sum_{p, q:\ (y, x) = \arg\max
            \text{ of window } (p, q)} (G_Z)_{m c p q}

    The NumPy path takes the elementwise maximum of the ``k_h k_w`` offset views
    (:meth:`_offset_views`; a reshape when stride = kernel and there is no padding),
    and backward finds each window's first maximum again by comparing those views
    with the output, offset by offset (a few passes over output-sized arrays,
    cheaper than keeping an argmax array from every forward pass).
    """

    def forward(self, X: Array, training: bool = False) -> Array:
        X, geometry = self._check_input(X)
        self._X = X
        self._training = training and self.reuse_buffers
        out = self._buffer("out", (X.shape[0], geometry.channels, *geometry.output_shape),
                           X.dtype)
        self._out = out
        padded = _pad(X, geometry, -math.inf)

        def pool(part: int, first: int, last: int) -> None:
            # Elementwise maxima of the offset views: NumPy's max over two axes of a
            # strided 6-D view is some 25 times slower than these k_h k_w passes.
            views = self._offset_views(padded[first:last], geometry)
            maxima = out[first:last]
            if len(views) == 1:
                np.copyto(maxima, views[0])
            else:
                np.maximum(views[0], views[1], out=maxima)
            for view in views[2:]:
                np.maximum(maxima, view, out=maxima)

        _in_parallel(pool, 0, X.shape[0], self._threads())
        return out

    def backward(self, dout: Array, need_input_gradient: bool = True) -> Array | None:
        X, out = self._X, self._out
        if X is None or out is None:
            raise RuntimeError("MaxPool2D.backward called before forward")
        if not need_input_gradient:
            return None
        geometry = self._geometry(X.shape[1:])
        target = self._gradient_target(X, geometry)
        padded = _pad(X, geometry, -math.inf)
        overlapping = self.stride[0] < self.kernel_size[0] or self.stride[1] < self.kernel_size[1]

        def route(part: int, first: int, last: int) -> None:
            values = self._offset_views(padded[first:last], geometry)
            places = self._offset_views(target[first:last], geometry)
            maxima, grad = out[first:last], dout[first:last]

            def add(place: Array, hit: Array) -> None:
                if overlapping:
                    place += grad * hit
                else:
                    np.multiply(grad, hit, out=place)  # each input lies in one window at most

            # Offsets in row-major order: a window's gradient goes to the first one that
            # holds its maximum; "taken" marks the windows served so far.
            taken = np.equal(values[0], maxima)
            add(places[0], taken)
            hit = np.empty_like(taken)
            for index in range(1, len(values)):
                np.equal(values[index], maxima, out=hit)
                np.greater(hit, taken, out=hit)  # ... and not served yet
                if index + 1 < len(values):
                    np.logical_or(taken, hit, out=taken)
                add(places[index], hit)

        _in_parallel(route, 0, X.shape[0], self._threads())
        return self._crop(target, X, geometry)


class AvgPool2D(_Pool2D):
    r"""The mean of each window: ``(n, C, H, W) -> (n, C, H_o, W_o)``.

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Default: the kernel size.
    padding : int, (int, int), "valid" or "same", default 0
        Rows and columns of zeros around each image, *counted* in the mean
        (every window is divided by :math:`k_h k_w`, like PyTorch's default
        ``count_include_pad=True``); each side's padding must be smaller than the
        kernel.
    n_threads : int or None
        Threads a pass splits the batch over; ``None``: :func:`default_threads`.

    Notes
    -----
    .. math::

        Z_{m c p q} = \frac{1}{k_h k_w} \sum_{i, j} \tilde X_{m, c, p s_h + i, q s_w + j},
        \qquad
        \frac{\partial L}{\partial X_{m c y x}} = \frac{1}{k_h k_w}
            \sum_{p, q:\ (y, x) \in \text{window } (p, q)} (G_Z)_{m c p q}
    """

    def forward(self, X: Array, training: bool = False) -> Array:
        X, geometry = self._check_input(X)
        self._X = X
        self._training = training and self.reuse_buffers
        out = self._buffer("out", (X.shape[0], geometry.channels, *geometry.output_shape),
                           X.dtype)
        padded = _pad(X, geometry, 0.0)
        scale = X.dtype.type(1.0 / (self.kernel_size[0] * self.kernel_size[1]))

        def pool(part: int, first: int, last: int) -> None:
            views = self._offset_views(padded[first:last], geometry)
            sums = out[first:last]
            np.copyto(sums, views[0])
            for view in views[1:]:
                sums += view
            sums *= scale

        _in_parallel(pool, 0, X.shape[0], self._threads())
        return out

    def backward(self, dout: Array, need_input_gradient: bool = True) -> Array | None:
        X = self._X
        if X is None:
            raise RuntimeError("AvgPool2D.backward called before forward")
        if not need_input_gradient:
            return None
        geometry = self._geometry(X.shape[1:])
        kh, kw = self.kernel_size
        scale = X.dtype.type(1.0 / (kh * kw))
        target = self._gradient_target(X, geometry)
        overlapping = self.stride[0] < kh or self.stride[1] < kw

        def spread(part: int, first: int, last: int) -> None:
            share = dout[first:last] * scale
            for place in self._offset_views(target[first:last], geometry):
                if overlapping:
                    place += share
                else:
                    place[...] = share

        _in_parallel(spread, 0, X.shape[0], self._threads())
        return self._crop(target, X, geometry)


class GlobalAvgPool2D(Layer):
    r"""The mean of each channel over the image: ``(n, C, H, W) -> (n, C)``.

    Notes
    -----
    .. math::

        Z_{m c} = \frac{1}{H W} \sum_{y, x} X_{m c y x}, \qquad
        \frac{\partial L}{\partial X_{m c y x}} = \frac{(G_Z)_{m c}}{H W}
    """

    _forward_cache = ("_input_shape", "_dtype")

    def __init__(self) -> None:
        self._input_shape: Shape | None = None
        self._dtype: np.dtype[Any] | None = None

    def output_shape(self, input_shape: Shape) -> Shape:
        return (_image_shape(input_shape, "GlobalAvgPool2D")[0],)

    def forward(self, X: Array, training: bool = False) -> Array:
        X = np.asarray(X)
        if X.dtype.kind != "f":
            X = X.astype(np.float64)
        if X.ndim != 4:
            raise ValueError(
                f"GlobalAvgPool2D takes a batch of images (n_samples, channels, height, width), "
                f"got an array of shape {X.shape}"
            )
        self._input_shape = X.shape
        self._dtype = X.dtype
        return X.mean(axis=(2, 3))

    def backward(self, dout: Array, need_input_gradient: bool = True) -> Array | None:
        shape = self._input_shape
        if shape is None:
            raise RuntimeError("GlobalAvgPool2D.backward called before forward")
        if not need_input_gradient:
            return None
        dtype = dout.dtype if self._dtype is None else self._dtype
        dX = np.empty(shape, dtype=dtype)
        dX[...] = (dout * dtype.type(1.0 / (shape[2] * shape[3])))[:, :, None, None]
        return dX

    @classmethod
    def chain(
        cls, config: Mapping[str, Any], input_shape: Shape | None
    ) -> tuple[Shape | None, int]:
        if input_shape is None:
            return None, 0
        return cls().output_shape(input_shape), 0

    def __repr__(self) -> str:
        return "GlobalAvgPool2D()"


LAYERS.register("Conv2D", Conv2D)
LAYERS.register("MaxPool2D", MaxPool2D)
LAYERS.register("AvgPool2D", AvgPool2D)
LAYERS.register("GlobalAvgPool2D", GlobalAvgPool2D)
