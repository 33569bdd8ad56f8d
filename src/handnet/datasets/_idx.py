"""MNIST's IDX files: :func:`load_idx`, :func:`save_idx` and :func:`load_mnist`."""

from __future__ import annotations

import gzip
import math
import os
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._checks import PathType

_IDX_TYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES: dict[str, int] = {dtype.str[1:]: code for code, dtype in _IDX_TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


class _ByteStream(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def _read_exactly(stream: _ByteStream, size: int) -> bytes:
    """Read up to ``size`` bytes, stopping early only at end of file.

    Reading in chunks (rather than ``stream.read(size)``) means a corrupt header
    claiming gigabytes costs memory only for the bytes actually present.
    """
    parts = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(min(remaining, _CHUNK))
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def load_idx(path: PathType) -> NDArray[Any]:
    """Read an array from an IDX file (the format MNIST is distributed in).

    Layout (all integers big-endian)::

        bytes 0-1   0x00 0x00                  magic
        byte  2     type code                  0x08 uint8, 0x09 int8, 0x0B int16,
                                               0x0C int32, 0x0D float32, 0x0E float64
        byte  3     ndim                       number of dimensions
        4 * ndim    uint32 sizes d_1 .. d_ndim
        then        d_1 * ... * d_ndim items   big-endian, C (row-major) order

    A gzip-compressed file (``.gz``, recognised by its content) is decompressed
    on the fly. Exactly the declared number of bytes is read; anything after
    them is ignored.

    Parameters
    ----------
    path : str or os.PathLike
        File to read.

    Returns
    -------
    ndarray of shape (d_1, ..., d_ndim)
        In native byte order, with the dtype named by the type code.

    Raises
    ------
    ValueError
        If the magic bytes are wrong, the type code is unknown, ``ndim`` is 0, or
        the file is shorter than its header says (the message gives both sizes).
    """
    with open(path, "rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
    opener = gzip.open if compressed else open
    where = f"{os.fspath(path)!s}" + (" (gzip)" if compressed else "")
    try:
        with opener(path, "rb") as stream:
            return _read_idx(stream, where)
    except (OSError, EOFError) as error:
        if not compressed:
            raise
        # A cut-off or corrupt gzip stream raises EOFError/BadGzipFile, not a ValueError.
        raise ValueError(f"{where}: corrupt or truncated gzip data ({error})") from None


def _read_idx(stream: _ByteStream, where: str) -> NDArray[Any]:
    header = _read_exactly(stream, 4)
    if len(header) < 4:
        raise ValueError(
            f"{where}: not an IDX file: it is {len(header)} bytes long, shorter than the "
            "4-byte IDX header"
        )
    if header[:2] != b"\x00\x00":
        raise ValueError(
            f"{where}: not an IDX file: bad magic number {header[:2].hex()} "
            "(IDX files start with two zero bytes)"
        )
    code, ndim = header[2], header[3]
    if code not in _IDX_TYPES:
        known = ", ".join(f"0x{c:02X} ({t.name})" for c, t in _IDX_TYPES.items())
        raise ValueError(f"{where}: unknown IDX type code 0x{code:02X}; known codes: {known}")
    if ndim == 0:
        raise ValueError(f"{where}: IDX header declares 0 dimensions")
    dtype = _IDX_TYPES[code]

    size_bytes = _read_exactly(stream, 4 * ndim)
    if len(size_bytes) < 4 * ndim:
        raise ValueError(
            f"{where}: truncated IDX header: {ndim} dimensions need {4 + 4 * ndim} header "
            f"bytes, but the file has only {4 + len(size_bytes)}"
        )
    shape = tuple(int(s) for s in np.frombuffer(size_bytes, dtype=">u4"))
    # Python ints: the product of several uint32 sizes can overflow a NumPy integer.
    expected = math.prod(shape) * dtype.itemsize
    data = _read_exactly(stream, expected)
    if len(data) < expected:
        header_size = 4 + 4 * ndim
        raise ValueError(
            f"{where}: truncated IDX file: the header declares shape {shape} of "
            f"{dtype.name}, i.e. {expected} data bytes ({header_size + expected} bytes "
            f"in all), but only {len(data)} data bytes ({header_size + len(data)} in all) "
            "are present"
        )
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def save_idx(path: PathType, array: ArrayLike) -> None:
    """Write ``array`` to an IDX file, gzip-compressed if ``path`` ends in ``.gz``.

    The layout is the one :func:`load_idx` reads; ``load_idx(path)`` returns an
    array equal to ``array`` with the same dtype and shape.

    Parameters
    ----------
    path : str or os.PathLike
        Destination (overwritten).
    array : array_like
        At least 1-D, with dtype uint8, int8, int16, int32, float32 or float64
        (the types IDX can store), at most 255 dimensions each below 2**32.

    Raises
    ------
    ValueError
        For an unsupported dtype, a 0-d array, or sizes IDX cannot record.
    """
    data = np.asarray(array)
    key = data.dtype.newbyteorder(">").str[1:] if data.dtype.kind in "iuf" else ""
    if key not in _IDX_CODES:
        supported = ", ".join(t.name for t in _IDX_TYPES.values())
        raise ValueError(
            f"IDX cannot store dtype {data.dtype}; supported: {supported} "
            "(convert first, e.g. array.astype(np.int32))"
        )
    if not 1 <= data.ndim <= 255:
        raise ValueError(f"IDX arrays need 1 to 255 dimensions, got {data.ndim}")
    if max(data.shape) >= 2**32:
        raise ValueError(f"IDX sizes are uint32; shape {data.shape} has a dimension too large")
    code = _IDX_CODES[key]
    header = bytes([0, 0, code, data.ndim]) + np.array(data.shape, dtype=">u4").tobytes()
    payload = np.ascontiguousarray(data, dtype=_IDX_TYPES[code]).tobytes()
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "wb") as stream:
        stream.write(header)
        stream.write(payload)


def load_mnist(
    images_path: PathType, labels_path: PathType
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Load an MNIST-style pair of IDX files as a design matrix and labels.

    Parameters
    ----------
    images_path : str or os.PathLike
        IDX file of uint8 images, shape (n, rows, cols) (optionally gzipped).
    labels_path : str or os.PathLike
        IDX file of integer labels, shape (n,) (optionally gzipped).

    Returns
    -------
    X : ndarray of shape (n, rows * cols), float64
        Pixels scaled to :math:`[0, 1]` by :math:`x / 255`, each image flattened
        row by row.
    y : ndarray of shape (n,), int64

    Raises
    ------
    ValueError
        If either file is malformed (see :func:`load_idx`), the images are not
        3-D uint8, the labels not 1-D integers, or the counts differ.
    """
    images = load_idx(images_path)
    labels = load_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"{os.fspath(images_path)!s}: expected uint8 images of shape (n, rows, cols), "
            f"got {images.dtype} of shape {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(
            f"{os.fspath(labels_path)!s}: expected 1-D integer labels, got {labels.dtype} "
            f"of shape {labels.shape}"
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"image and label counts differ: {images.shape[0]} images in "
            f"{os.fspath(images_path)!s} but {labels.shape[0]} labels in "
            f"{os.fspath(labels_path)!s}"
        )
    X = images.reshape(images.shape[0], -1).astype(np.float64) / 255.0
    return X, labels.astype(np.int64)
