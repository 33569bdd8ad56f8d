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

The convolution layer is defined here; the pooling layers in :mod:`handnet.nn.pooling`,
the windows' geometry and im2col/col2im in :mod:`handnet.nn.im2col`, the convolution by
kernel rows in :mod:`handnet.nn.im2row`, the threads and work buffers in
:mod:`handnet.nn.parallel`. The names this module held before it was split stay
importable from it (the paths the docs, tests and user code use).

``Flatten`` and ``Reshape`` (in :mod:`handnet.nn.layers`) join them to dense layers.

How a convolution is computed
-----------------------------
*im2col* (:mod:`handnet.nn.im2col`): every window of the padded input copied into a
column, one ``(C k_h k_w, H_o W_o)`` matrix per sample, and each sample's convolution
one matrix product with the weights (one batched ``np.matmul``; per-sample products
ran two to three times faster with OpenBLAS than one product over the whole batch,
whose operands are as skinny as the layer has filters). A bias is one more column of
the weights against a row of ones. Backward: two more products and *col2im*.

*By kernel rows* (:mod:`handnet.nn.im2row`), for a horizontal stride of 1 and one
group, when it moves fewer values: only the kernel's rows unrolled (whole image
rows), the kernel's columns as shifted sums of one large product.

A batch is processed in chunks of samples whose unrolled matrices stay within a
memory budget (:data:`MEMORY_BUDGET`, or the layer's ``memory_budget``), each chunk
split over threads (the layer's ``n_threads``, or :func:`threads_over_samples`;
NumPy releases the GIL in every large call).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import DTypeLike

from .im2col import (
    Array,
    _check_dtype,
    _check_sample_size,
    _Geometry,
    _image_shape,
    _pad,
    _padding,
    _pair,
    _wide_layout,
    chunk_rows,
    col2im,
    col2im_wide,
    columns_input_gradient,
    columns_weight_gradient,
    im2col,
)
from .im2col import Padding as Padding
from .im2col import Pair as Pair
from .im2col import _axis_geometry as _axis_geometry
from .im2row import by_rows, rows_forward, rows_gradients, rows_values, rows_weights, unroll_rows
from .initializers import Initializer, get_initializer
from .layers import LAYERS, MAX_SIZE, Layer, Shape
from .parallel import (
    MAX_THREADS,
    MIN_ROWS_PER_THREAD,
    _add_partials,
    _check_threads,
    _flat_buffer,
    _in_parallel,
    _is_int,
    _samples_buffer,
    default_threads,
    threads_over_samples,
)
from .parallel import _blas_threads as _blas_threads
from .parallel import _parts as _parts

# The "x as x" imports above: names this module defined before it was split in four,
# importable from here still (as are those in __all__, and the pooling layers below).
__all__ = [
    "MAX_THREADS",
    "MAX_WINDOW",
    "MEMORY_BUDGET",
    "MIN_ROWS_PER_THREAD",
    "AvgPool2D",
    "Conv2D",
    "GlobalAvgPool2D",
    "MaxPool2D",
    "col2im",
    "col2im_wide",
    "default_threads",
    "im2col",
    "threads_over_samples",
]

#: The most bytes an unrolled (im2col) matrix may take: a batch whose unrolled matrix
#: would be larger is convolved in chunks of samples. A layer's ``memory_budget``
#: overrides it; read at each call, so changing it affects existing layers.
MEMORY_BUDGET = 64 * 2**20

#: The largest ``memory_budget`` a layer may set (4 GiB): a budget is a chunk size, and a
#: model file's could otherwise make one chunk of a whole large batch.
MAX_MEMORY_BUDGET = 4 * 2**30

#: The largest kernel size, stride, dilation or padding of a Conv2D along an axis, and the
#: largest extent ``dilation * (kernel - 1) + 1`` of its dilated kernel: beyond any real
#: network's (DeepLab's widest atrous 3 x 3 kernel spans 49 pixels), so that the few bytes
#: of a model file cannot ask for windows, or zeros around each image, by the billion.
#: What one sample's work arrays then take is bounded too, once the input's shape is
#: known (:data:`~handnet.nn.im2col.MAX_SAMPLE_VALUES`).
MAX_WINDOW = 4096


def _check_window(kernel: Pair, stride: Pair, dilation: Pair, padding: Padding) -> None:
    """Refuse settings beyond :data:`MAX_WINDOW` along an axis, or a dilated kernel whose
    extent is."""
    settings = {"kernel_size": kernel, "stride": stride, "dilation": dilation}
    if not isinstance(padding, str):  # "same" pads less than the kernel's extent
        settings["padding"] = padding
    for name, pair in settings.items():
        if max(pair) > MAX_WINDOW:
            raise ValueError(
                f"Conv2D {name} must be at most MAX_WINDOW = {MAX_WINDOW} along each axis, "
                f"got {pair}"
            )
    extent = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))
    if max(extent) > MAX_WINDOW:
        raise ValueError(
            f"Conv2D dilation {dilation} spreads the kernel {kernel} over {extent} pixels, "
            f"more than MAX_WINDOW = {MAX_WINDOW} along an axis"
        )


def _unrolled_values(geometry: _Geometry, filters: int, by_kernel_rows: bool) -> int:
    """Values of one sample's unrolled matrix (its wide-row gradient's, if longer), or, by
    kernel rows, of its row-unrolled matrix and products."""
    if by_kernel_rows:
        return rows_values(geometry, filters)
    positions = geometry.out_height * geometry.out_width
    if geometry.stride[1] == 1:
        positions = max(positions, _wide_layout(geometry)[1])
    return geometry.channels * geometry.kernel[0] * geometry.kernel[1] * positions


def _check_arguments(
    in_channels: Any, out_channels: Any, groups: Any, use_bias: Any, memory_budget: Any
) -> None:
    """Refuse channel counts and groups that are not positive integers that fit together,
    a ``use_bias`` that is not a bool, a ``memory_budget`` that is not a byte count."""
    if not isinstance(use_bias, (bool, np.bool_)):
        raise ValueError(f"Conv2D use_bias must be True or False, got {use_bias!r}")
    if memory_budget is not None and not (
        _is_int(memory_budget) and 1 <= memory_budget <= MAX_MEMORY_BUDGET
    ):
        raise ValueError(
            "Conv2D memory_budget must be a number of bytes from 1 to MAX_MEMORY_BUDGET = "
            f"{MAX_MEMORY_BUDGET} (4 GiB), or None; got {memory_budget!r}"
        )
    for label, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if (value is not None or label == "out_channels") and not (
            _is_int(value) and 1 <= value <= MAX_SIZE
        ):
            allowed = " (or None: read from the input)" if label == "in_channels" else ""
            raise ValueError(
                f"Conv2D {label} must be an integer from 1 to {MAX_SIZE}{allowed}, "
                f"got {value!r}"
            )
    if not (_is_int(groups) and 1 <= groups <= MAX_SIZE):
        raise ValueError(f"Conv2D groups must be an integer >= 1, got {groups!r}")
    if out_channels % groups or (in_channels is not None and in_channels % groups):
        raise ValueError(
            f"Conv2D groups={groups} must divide in_channels ({in_channels}) and "
            f"out_channels ({out_channels})"
        )


def _chain(config: Mapping[str, Any], input_shape: Shape | None) -> tuple[Shape | None, int]:
    """:meth:`Conv2D.chain`: the output shape and parameter count a saved config gives."""
    name = "Conv2D"
    in_channels, out_channels = int(config["in_channels"]), int(config["out_channels"])
    groups = int(config["groups"])
    kernel = _pair(config["kernel_size"], name, "kernel_size")
    stride = _pair(config["stride"], name, "stride")
    dilation = _pair(config["dilation"], name, "dilation")
    padding = _padding(config["padding"], name)
    _check_window(kernel, stride, dilation, padding)
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
    rows = by_rows(geometry, out_channels, groups)
    _check_sample_size(geometry, name, _unrolled_values(geometry, out_channels, rows))
    return (out_channels, *geometry.output_shape), n_parameters


class Conv2D(Layer):
    r"""2-D convolution (cross-correlation) of images, with stride, padding, dilation, groups.

    Parameters
    ----------
    in_channels : int or None
        ``C``; ``None``: read from the input when the network is built (:meth:`build`).
    out_channels : int
        ``F``, the number of filters.
    kernel_size : int or (int, int)
        ``(k_h, k_w)``. Kernel size, stride, dilation and padding counts are at most
        :data:`MAX_WINDOW` along each axis, and so is the dilated kernel's extent.
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
        samples each), at most :data:`MAX_THREADS`. ``None``: :func:`default_threads`
        at the time of the call (1, or the count :func:`threads_over_samples` sets).

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

    With a horizontal stride of 1 and one group, a layer whose row-unrolled
    matrices are smaller (:func:`~handnet.nn.im2row.by_rows`) computes the same
    sums by kernel rows instead (:mod:`handnet.nn.im2row`, where the gradients are
    derived for that layout).

    In a training pass whose batch fits in one chunk, the unrolled matrices are
    kept for :meth:`backward` (not unrolled twice); otherwise :meth:`backward`
    unrolls each chunk again. Memory: the kept matrices (``k_h k_w`` times the
    input's size with im2col), and as much again for the input gradient's. One
    sample's padded input and unrolled matrix may hold at most
    :data:`~handnet.nn.im2col.MAX_SAMPLE_VALUES` values each: an input for which
    they would hold more is refused (``ValueError``) before anything is allocated.
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
        _check_arguments(in_channels, out_channels, groups, use_bias, memory_budget)
        get_initializer(init)  # an unknown name is an error now, not at build time
        self.in_channels = None if in_channels is None else int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = _pair(kernel_size, name, "kernel_size")
        self.stride = _pair(stride, name, "stride")
        self.padding = _padding(padding, name)
        self.dilation = _pair(dilation, name, "dilation")
        _check_window(self.kernel_size, self.stride, self.dilation, self.padding)
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
        """Where the windows lie for this input: ``ValueError`` if one sample's work arrays
        would exceed :data:`~handnet.nn.im2col.MAX_SAMPLE_VALUES`."""
        geometry = _Geometry.of(
            tuple(input_shape), self.kernel_size, self.stride, self.dilation, self.padding,
            "Conv2D",
        )
        _check_sample_size(geometry, "Conv2D", self._unrolled_bytes(geometry, 1))
        return geometry

    def output_shape(self, input_shape: Shape) -> Shape:
        channels = _image_shape(input_shape, "Conv2D")[0]
        if self.in_channels is not None and channels != self.in_channels:
            raise ValueError(f"Conv2D expects {self.in_channels} input channels, got {channels}")
        if channels % self.groups:
            raise ValueError(
                f"Conv2D groups={self.groups} must divide the input's {channels} channels"
            )
        return (self.out_channels, *self._geometry(input_shape).output_shape)

    def _by_rows(self, geometry: _Geometry) -> bool:
        """Whether this input is convolved by kernel rows (:mod:`handnet.nn.im2row`)."""
        return by_rows(geometry, self.out_channels, self.groups)

    def _unrolled_bytes(self, geometry: _Geometry, itemsize: int) -> int:
        """Bytes of one sample's unrolled matrix (its wide-row gradient's, if longer), or
        of its row-unrolled matrix and products."""
        return _unrolled_values(geometry, self.out_channels, self._by_rows(geometry)) * itemsize

    def _chunk_rows(self, geometry: _Geometry, itemsize: int) -> int:
        """Samples per chunk: as many as keep the unrolled matrices within the budget."""
        budget = MEMORY_BUDGET if self.memory_budget is None else self.memory_budget
        return chunk_rows(self._unrolled_bytes(geometry, itemsize), budget)

    # --- forward and backward -----------------------------------------------------------

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Array:
        """A reused buffer in a training pass with buffer reuse on, else a new array."""
        return _samples_buffer(self, name, shape, dtype)

    def _unrolled_buffer(
        self, geometry: _Geometry, rows: int, dtype: np.dtype[Any], by_rows: bool
    ) -> Array:
        """Room for the unrolled matrices of ``rows`` samples: ``(rows, G, C_g k_h k_w, P)``
        for im2col, ``(C, k_h, rows, H_o, W_p)`` by kernel rows."""
        kh, kw = self.kernel_size
        if by_rows:
            return _flat_buffer(self, "rows", (
                geometry.channels, kh, rows, geometry.out_height, geometry.padded_width), dtype)
        # With a bias, a row of ones after each group's rows: the bias is one more column
        # of the weights, added by the product (not a pass of its own), and its gradient
        # comes out of the weight gradient's product.
        per_group = geometry.channels // self.groups * kh * kw + (self.bias is not None)
        return self._buffer("cols", (
            rows, self.groups, per_group, geometry.out_height * geometry.out_width), dtype)

    def _unroll(self, X: Array, geometry: _Geometry, cols: Array, part: int) -> None:
        """Write the unrolled matrices of the samples ``X`` into ``cols``: :func:`im2col`,
        or :func:`unroll_rows` when ``cols`` is ``(C, k_h, rows, H_o, W_p)``.

        ``part``: which thread's share this is (each has its own work buffers).
        """
        rows = X.shape[0]
        if geometry.padded:
            padded_shape = (rows, geometry.channels, geometry.padded_height, geometry.padded_width)
            X = _pad(X, geometry, 0.0, self._buffer(f"padded{part}", padded_shape, X.dtype))
        if cols.ndim == 5:
            unroll_rows(X, geometry, cols)
            return
        per_group = cols.shape[2] - (self.bias is not None)
        im2col(X, geometry, cols[:, :, :per_group].reshape(
            rows, self.groups, -1, *self.kernel_size, *geometry.output_shape))
        if self.bias is not None:
            cols[:, :, per_group] = 1

    def _weights_as(self, dtype: np.dtype[Any], with_bias: bool = False) -> Array:
        """``W`` as ``(G, F_g, C_g k_h k_w)`` (a view), in the data's dtype; ``with_bias``:
        the bias as one more column, ``(G, F_g, C_g k_h k_w + 1)`` (a new array)."""
        weights = self.weights.astype(dtype, copy=False)
        weights = weights.reshape(self.groups, self.out_channels // self.groups, -1)
        if not with_bias or self.bias is None:
            return weights
        bias = self.bias.astype(dtype).reshape(*weights.shape[:2], 1)
        return np.concatenate([weights, bias], axis=2)

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
        n, dtype = X.shape[0], X.dtype
        self._X = X
        self._training = training and self.reuse_buffers
        step = self._chunk_rows(geometry, dtype.itemsize)
        rows = self._by_rows(geometry)
        weights = (rows_weights(self.weights.astype(dtype)) if rows
                   else self._weights_as(dtype, with_bias=True))
        out = self._buffer("out", (n, self.out_channels, *geometry.output_shape), dtype)
        bias = None if self.bias is None else self.bias.astype(dtype, copy=False)
        self._cols = None
        for start in range(0, n, step):
            stop = min(start + step, n)
            cols = self._unrolled_buffer(geometry, stop - start, dtype, rows)

            def convolve(part: int, first: int, last: int) -> None:
                a, b = first - start, last - start  # noqa: B023 - called right away
                unrolled = cols[:, :, a:b] if rows else cols[a:b]  # noqa: B023
                self._unroll(X[first:last], geometry, unrolled, part)
                if rows:
                    products = _flat_buffer(self, f"products{part}", (
                        self.kernel_size[1], self.out_channels, unrolled[0, 0].size), dtype)
                    rows_forward(weights, unrolled, geometry, bias, products, out[first:last])
                    return
                # Each sample's product lands in NCHW order: (G, F_g, K_g) @ (rows, G, K_g,
                # P) -> (rows, G, F_g, P), which is (rows, F, H_o, W_o); bias included.
                np.matmul(weights, unrolled, out=out[first:last].reshape(
                    b - a, *weights.shape[:2], -1))

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
        rows = self._by_rows(geometry)
        weights = rows_weights(self.weights.astype(dtype)) if rows else self._weights_as(dtype)
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
            cols = kept if kept is not None else self._unrolled_buffer(
                geometry, stop - start, dtype, rows)

            def differentiate(part: int, first: int, last: int) -> tuple[Array, Array | None]:
                a, b = first - start, last - start  # noqa: B023 - called right away
                unrolled = cols[:, :, a:b] if rows else cols[a:b]  # noqa: B023
                if kept is None:
                    self._unroll(X[first:last], geometry, unrolled, part)
                dX_part = None if dX is None else dX[first:last]

                def buffer(name: str, shape: tuple[int, ...]) -> Array:
                    return self._buffer(f"{name}{part}", shape, dtype)

                def flat_buffer(name: str, shape: tuple[int, ...]) -> Array:
                    return _flat_buffer(self, f"{name}{part}", shape, dtype)

                if rows:
                    # dL/db_f: the sum over samples and positions (the positions' sum as a
                    # product with ones, some 2.5 times faster than np.sum over two axes).
                    bias_sum = None if ones is None else (grad_out[first:last] @ ones).sum(0)
                    return rows_gradients(dout[first:last], unrolled, weights, geometry, dX_part,
                                          buffer, flat_buffer), bias_sum
                if dX_part is not None:
                    columns_input_gradient(grad_out[first:last], weights, geometry, dX_part, buffer)
                # With a bias, the ones row's column of the product is dL/db.
                grads = columns_weight_gradient(grad_out[first:last], unrolled, buffer)
                return (grads, None) if ones is None else (grads[..., :-1], grads[..., -1])

            partials = _in_parallel(differentiate, start, stop, self._threads())
            _add_partials(partials, grad_weights, self.grad_bias, fresh=start == 0)
        return dX

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
        return _chain(config, input_shape)

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


LAYERS.register("Conv2D", Conv2D)

# The pooling layers are importable from here, as before they had a module of their own;
# imported after Conv2D is registered, so that the registry (and the tables generated
# from it) keeps its order: Conv2D, MaxPool2D, AvgPool2D, GlobalAvgPool2D.
from .pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D  # noqa: E402
from .pooling import _Pool2D as _Pool2D  # noqa: E402
