r"""Pooling layers for images ``(n, C, H, W)``: the maximum or mean of each window.

* :class:`MaxPool2D`: the maximum of each window, its gradient to one argmax;
* :class:`AvgPool2D`: the mean of each window;
* :class:`GlobalAvgPool2D`: the mean of each channel, ``(n, c, h, w) -> (n, c)``.

The windows come from :mod:`handnet.nn.im2col`'s geometry; each pass may be split
over threads like the convolution's (:func:`~handnet.nn.parallel.threads_over_samples`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from .. import _native, _numba
from .im2col import Array, _check_sample_size, _Geometry, _image_shape, _pad, _padding, _pair
from .layers import LAYERS, Layer, Shape
from .parallel import (
    _check_threads,
    _in_parallel,
    _samples_buffer,
    default_threads,
)

__all__ = ["MAX_WINDOW_VALUES", "AvgPool2D", "GlobalAvgPool2D", "MaxPool2D"]

#: The most values a pooling window may hold, ``k_h k_w``: each is one pass over the
#: output, and with ``"same"`` padding a window need not fit in the image, so a kernel
#: of 4096 x 4096 forged into a model file (16 million passes) would hang a predict.
#: 2**16, a 256 x 256 window: beyond any real network's.
MAX_WINDOW_VALUES = 1 << 16


def _as_images(X: Array, layer: str) -> Array:
    """``X`` as a floating batch of images ``(n, C, H, W)`` (integers become float64)."""
    X = np.asarray(X)
    if X.dtype.kind != "f":
        X = X.astype(np.float64)
    if X.ndim != 4:
        raise ValueError(
            f"{layer} takes a batch of images (n_samples, channels, height, width), got an "
            f"array of shape {X.shape}"
        )
    return X


class _Pool2D(Layer):
    """What max and average pooling share: arguments, shapes, window views, saving."""

    _forward_cache: tuple[str, ...] = ("_X", "_out", "_training")

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
        kh, kw = self.kernel_size
        if kh * kw > MAX_WINDOW_VALUES:
            raise ValueError(
                f"{name} kernel_size {self.kernel_size} holds {kh * kw:,} values, more than "
                f"MAX_WINDOW_VALUES = {MAX_WINDOW_VALUES:,} (each is one pass over the output)"
            )
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
        _check_sample_size(geometry, name)
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
        X = _as_images(X, type(self).__name__)
        return X, self._geometry(X.shape[1:])

    def _threads(self) -> int:
        return default_threads() if self.n_threads is None else self.n_threads

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: Any) -> Array:
        return _samples_buffer(self, name, shape, np.dtype(dtype))

    def _bytes(self, name: str, shape: tuple[int, ...]) -> NDArray[np.uint8]:
        return _samples_buffer(self, name, shape, np.dtype(np.uint8))

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


def _first_maxima(views: list[Array], maxima: Array, first: NDArray[np.uint8] | None) -> None:
    """``maxima``: the elementwise maximum of ``views``; ``first`` (unless ``None``): the
    index of the first view that holds it (ties go to the earlier view)."""
    if len(views) == 1:
        np.copyto(maxima, views[0])
        if first is not None:
            first.fill(0)
        return
    if first is not None:
        np.greater(views[1], views[0], out=first.view(np.bool_))  # 1 where the 2nd is larger
    np.maximum(views[0], views[1], out=maxima)
    if len(views) > 2:
        larger = np.empty(maxima.shape, dtype=np.bool_)
        for index, view in enumerate(views[2:], start=2):
            if first is not None:
                np.greater(view, maxima, out=larger)  # strictly: a tie keeps the earlier
                np.copyto(first, index, where=larger)
            np.maximum(maxima, view, out=maxima)


def _route(grad: Array, first: NDArray[np.uint8], places: list[Array]) -> None:
    """``places[k] = grad`` where ``first == k``, 0 elsewhere (each place written once)."""
    if len(places) == 1:
        np.copyto(places[0], grad)
        return
    if len(places) == 2:
        # grad - grad * hit is grad or exactly 0: one product and one difference.
        np.multiply(grad, first.view(np.bool_), out=places[1])
        np.subtract(grad, places[1], out=places[0])
        return
    hit = np.empty(grad.shape, dtype=np.bool_)
    for index, place in enumerate(places):
        np.equal(first, index, out=hit)
        np.multiply(grad, hit, out=place)


#: The compiled twins of MaxPool2D's passes over windows side by side.
COMPILED_MODULE = "handnet.nn._compiled_pooling"


def _compiled_kernels(X: Array, kernel_size: tuple[int, int]) -> Any:
    """:mod:`handnet.nn._compiled_pooling`'s kernels for 2 x 2 windows of float32 or
    float64: built ahead of time (``handnet compile``, :mod:`handnet._native`) for a
    C-contiguous ``X`` (their one layout; the layer's own buffers always are), else
    numba's where numba is already imported in this process (a fused Adam step loads
    it for networks of 10,000 parameters and more), else ``None``: pooling never pays
    numba's import itself."""
    if kernel_size != (2, 2) or X.dtype not in (np.float32, np.float64):
        return None
    native = _native.kernels(COMPILED_MODULE, X.dtype)
    if native is not None and X.flags.c_contiguous:
        return native
    return _numba.load(COMPILED_MODULE) if _numba.imported() else None


class MaxPool2D(_Pool2D):
    r"""The maximum of each window: ``(n, C, H, W) -> (n, C, H_o, W_o)``.

    Parameters
    ----------
    kernel_size : int or (int, int)
        ``(k_h, k_w)``, a window of at most :data:`MAX_WINDOW_VALUES` values.
    stride : int or (int, int), optional
        Default: the kernel size (windows side by side).
    padding : int, (int, int), "valid" or "same", default 0
        Rows and columns of :math:`-\infty` around each image (never the maximum
        of a window that holds an input value); each side's padding must be
        smaller than the kernel.
    n_threads : int or None
        Threads a pass splits the batch over, at most
        :data:`~handnet.nn.parallel.MAX_THREADS`; ``None``: :func:`default_threads`.

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

    Windows side by side (stride = kernel, no padding: the usual ``MaxPool2D(2)``)
    are reduced in two steps, along each window's rows and then across them
    (:func:`_first_maxima`), keeping in a training pass which column and which row
    held the first maximum (one byte per value): the first maximum in row-major
    order lies in the first row that holds the window's maximum, at that row's
    first maximum. Backward sends the gradient back through the same two steps,
    a product with a mask each, with no search and no scatter. For 2 x 2 windows,
    where numba is already loaded, compiled twins
    (:mod:`handnet.nn._compiled_pooling`) do each pass in one read of the input,
    keeping the first maximum's index in its window, for the same numbers.

    Other windows take the elementwise maximum of the ``k_h k_w`` offset views
    (:meth:`_offset_views`), and backward finds each window's first maximum again by
    comparing those views with the output, offset by offset (a few passes over
    output-sized arrays, cheaper than keeping an argmax array from every pass).
    """

    _forward_cache = ("_X", "_out", "_training", "_firsts")
    takes_maximum = True
    #: Windows side by side, from a training pass: the first maximum's column and row in
    #: each (the NumPy passes), or its row-major index in the window (the compiled ones).
    _firsts: tuple[NDArray[np.uint8], ...] | None = None

    def forward(self, X: Array, training: bool = False) -> Array:
        X, geometry = self._check_input(X)
        self._X = X
        self._training = training and self.reuse_buffers
        out = self._buffer("out", (X.shape[0], geometry.channels, *geometry.output_shape),
                           X.dtype)
        self._out = out
        self._firsts = None
        if self._tiled(geometry):
            self._firsts = self._tiled_forward(X, geometry, out, keep=training)
            return out
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
        if self._tiled(geometry):
            self._tiled_backward(dout, geometry, target)
            return target
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

    def _tiled_forward(
        self, X: Array, geometry: _Geometry, out: Array, keep: bool
    ) -> tuple[NDArray[np.uint8], ...] | None:
        """The maxima of windows side by side, in two steps: along each window's rows, then
        across them. With ``keep``: which column, then which row, held the first maximum
        (compiled: one pass, keeping the first maximum's index in its window)."""
        (kh, kw), (Ho, Wo) = self.kernel_size, geometry.output_shape
        kernels = _compiled_kernels(X, self.kernel_size)
        if kernels is not None:
            # Inference passes also write the indices (a quarter of a float32 output),
            # into a scratch array: one loop, without a branch on ``keep`` in it.
            index = self._bytes("first_index", out.shape) if keep else np.empty(out.shape, np.uint8)

            def pool_compiled(part: int, first: int, last: int) -> None:
                rows = slice(first, last)
                kernels.max_pool_2x2_forward(X[rows], out[rows], index[rows])

            _in_parallel(pool_compiled, 0, X.shape[0], self._threads())
            return (index,) if keep else None
        shape = (X.shape[0], geometry.channels, Ho * kh, Wo)
        row_max = self._buffer("row_max", shape, X.dtype)
        columns = self._bytes("first_column", shape) if keep else None
        rows = self._bytes("first_row", out.shape) if keep else None

        def pool(part: int, first: int, last: int) -> None:
            image = X[first:last, :, : Ho * kh, : Wo * kw]
            along = [image[..., j::kw] for j in range(kw)]  # (m, C, H_o k_h, W_o) each
            _first_maxima(along, row_max[first:last],
                          None if columns is None else columns[first:last])
            across = [row_max[first:last, :, i::kh] for i in range(kh)]
            _first_maxima(across, out[first:last], None if rows is None else rows[first:last])

        _in_parallel(pool, 0, X.shape[0], self._threads())
        return None if columns is None or rows is None else (columns, rows)

    def _tiled_backward(self, dout: Array, geometry: _Geometry, target: Array) -> None:
        """Route each window's gradient to its first maximum, through the two steps of
        :meth:`_tiled_forward` in reverse (recomputed if forward kept nothing)."""
        X, out = self._X, self._out
        assert X is not None and out is not None
        (kh, kw), (Ho, Wo) = self.kernel_size, geometry.output_shape
        firsts = self._firsts
        kernels = _compiled_kernels(X, self.kernel_size)
        # Forward kept nothing, kept another batch's, or kept what the other path reads
        # (numba loaded in between, by Adam's first step): find the first maxima again.
        kept_index = firsts is not None and len(firsts) == 1
        if firsts is None or firsts[-1].shape != dout.shape or kept_index != (kernels is not None):
            firsts = self._tiled_forward(X, geometry, self._buffer(
                "maxima", out.shape, out.dtype), keep=True)
            assert firsts is not None
        if kernels is not None:
            index = firsts[0]
            # The kernels built ahead of time take one layout and one dtype: a gradient
            # of another dtype is cast to the target's (as NumPy's route stores it).
            dout = np.ascontiguousarray(dout, dtype=target.dtype)

            def route_compiled(part: int, first: int, last: int) -> None:
                rows = slice(first, last)
                kernels.max_pool_2x2_backward(dout[rows], index[rows], target[rows])

            _in_parallel(route_compiled, 0, dout.shape[0], self._threads())
            return
        columns, rows = firsts
        # The rows' gradient, in the rows' maxima's buffer: those served forward only.
        row_grad = self._buffer("row_max", columns.shape, dout.dtype)

        def route(part: int, first: int, last: int) -> None:
            across = [row_grad[first:last, :, i::kh] for i in range(kh)]
            _route(dout[first:last], rows[first:last], across)
            image = target[first:last, :, : Ho * kh, : Wo * kw]
            _route(row_grad[first:last], columns[first:last],
                   [image[..., j::kw] for j in range(kw)])

        _in_parallel(route, 0, dout.shape[0], self._threads())


class AvgPool2D(_Pool2D):
    r"""The mean of each window: ``(n, C, H, W) -> (n, C, H_o, W_o)``.

    Parameters
    ----------
    kernel_size : int or (int, int)
        ``(k_h, k_w)``, a window of at most :data:`MAX_WINDOW_VALUES` values.
    stride : int or (int, int), optional
        Default: the kernel size.
    padding : int, (int, int), "valid" or "same", default 0
        Rows and columns of zeros around each image, *counted* in the mean
        (every window is divided by :math:`k_h k_w`, like PyTorch's default
        ``count_include_pad=True``); each side's padding must be smaller than the
        kernel.
    n_threads : int or None
        Threads a pass splits the batch over, at most
        :data:`~handnet.nn.parallel.MAX_THREADS`; ``None``: :func:`default_threads`.

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
        X = _as_images(X, "GlobalAvgPool2D")
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


LAYERS.register("MaxPool2D", MaxPool2D)
LAYERS.register("AvgPool2D", AvgPool2D)
LAYERS.register("GlobalAvgPool2D", GlobalAvgPool2D)
