r"""Numeric kernels for the seed's own model, where Python overhead dominates.

The seed trains a single sigmoid unit, by full-batch gradient descent or by SGD
one example at a time. The generic training step (forward through the layers,
the loss object, backward, the optimizer object) spends most of its time on such
a model in Python calls around tiny arrays. The kernels here do the same math
with the bookkeeping stripped; ``tests/test_kernels.py`` checks each against the
generic path, and the training loop uses them only where they apply (one
``Dense(n, 1)`` layer, binary cross-entropy, plain SGD, no clipping).

* :func:`logistic_gd_step` and :class:`SignedRows`: one full-batch
  gradient-descent step (the second for 0/1 targets, in fewer passes);
* :func:`logistic_sgd_epoch`: an epoch of per-example SGD, in Python floats for a
  few float64 features (:func:`scalar_sgd_epoch`), one NumPy call per example
  otherwise, or compiled with numba (``pip install handnet[fast]``):

.. math::

    z &= x_i \cdot w + b \\
    \ell_i &= \max(z, 0) - y_i z + \log(1 + e^{-|z|}) + \tfrac{\alpha}{2}\lVert w\rVert^2 \\
    w &\leftarrow w - \eta\, (s_i (\sigma(z) - y_i)\, x_i + \alpha w) \\
    b &\leftarrow b - \eta\, s_i (\sigma(z) - y_i)

with :math:`s_i` the sample's weight relative to the mean weight (1 without
weights).

* :func:`logistic_block_sums`: the loss and gradient sums of a block of rows, for
  full-batch gradient descent and L-BFGS on large data (:mod:`handnet.data.blocks`);
  compiled, it reads each row of ``X`` once.

A fused Adam step (:func:`fused_adam_step`) sits here too.

Compiled or not
---------------
The compiled twins live in :mod:`handnet.training._compiled`, which imports numba:
it is imported on first use (:func:`compiled_module`), not with handnet, and its
machine code is cached on disk, so only the first process on a machine compiles.
The training loop asks for it only where it pays for its load (see
:mod:`handnet.training.fastpath`). Compiled and NumPy paths give the same numbers
to rounding (about 1e-12 relative in float64, 1e-5 in float32), not the same bits,
except per-example SGD on a few float64 features, where the scalar path and the
compiled kernel agree bit for bit. :func:`numpy_only` (or the environment variable
``HANDNET_NUMPY_ONLY=1``) makes a process use the NumPy paths alone, as if numba
were not installed: for results that match a machine without it bit for bit.
Dask workers are other processes: set the variable in their environment.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import _native, _numba

Array = NDArray[np.floating]

numpy_only = _numba.numpy_only
numba_installed = _numba.installed

#: The module of the compiled twins, for :func:`handnet._numba.load`.
COMPILED_MODULE = "handnet.training._compiled"


def compiled_enabled() -> bool:
    """Whether kernels use numba when it is installed (see :func:`numpy_only`)."""
    return _numba.enabled()


def _no_compiled_kernel() -> ImportError:
    """The error for ``use_numba=True`` when no compiled kernel may run."""
    if not _numba.enabled():
        return ImportError(
            "use_numba=True, but compiled kernels are off in this process (numpy_only() or "
            "HANDNET_NUMPY_ONLY=1): leave use_numba unset, or turn them back on"
        )
    return ImportError("use_numba=True needs numba: pip install 'handnet[fast]'")


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
        # the same order of operations as handnet.nn.losses.binary_cross_entropy
        loss = ((z if z > 0 else 0.0) - target * z) + log1p(e)
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


def compiled_gd_step(
    kernel: Callable[..., tuple[float, float]], X: Array, y: Array, weights: Array,
    bias: Array, gradient: Array, learning_rate: float, l2: float,
) -> float:
    """:func:`logistic_gd_step` with the sums of a compiled kernel; the loss before the step.

    ``kernel`` is the block sums with vectorised exponentials, built ahead of time
    (``handnet compile``): on the seed's 1000 x 4 it takes 5.8 us where
    :class:`SignedRows`' eleven NumPy calls take 10.6 us. ``gradient``
    (``(n_features,)``, C-contiguous) is scratch space.
    """
    n_samples = X.shape[0]
    gradient.fill(0.0)
    loss_sum, bias_sum = kernel(X, y, weights, bias[0], gradient)
    loss = loss_sum / n_samples
    if l2:
        loss += 0.5 * l2 * float(np.dot(weights, weights))
        gradient *= 1.0 / n_samples
        gradient += l2 * weights
        gradient *= learning_rate
    else:
        gradient *= learning_rate / n_samples
    weights -= gradient
    bias[0] -= learning_rate * bias_sum / n_samples
    return loss


class SignedRows:
    r"""A full-batch GD step for 0/1 targets in ten passes over the rows, made once per fit.

    With :math:`s_i = 1 - 2 y_i` (:math:`\pm 1`) and :math:`u_i = s_i (x_i \cdot w + b)`,
    the binary cross-entropy and its residual are

    .. math::

        \ell_i = \max(u_i, 0) + \log(1 + e^{-|u_i|})
               = \max(z_i, 0) - y_i z_i + \log(1 + e^{-|z_i|}),\qquad
        \sigma(z_i) - y_i = s_i\, \sigma(u_i),\quad
        \log \sigma(u_i) = \min(u_i, 0) - \log(1 + e^{-|u_i|})

    so, with the rows :math:`s_i [x_i, 1]` stored once (:attr:`columns`), one product
    gives every :math:`u_i`, one exponential of :math:`\log\sigma(u_i)` every
    residual, and one product :math:`\sum_i \sigma(u_i)\, s_i [x_i, 1]` the whole
    gradient, bias included: no ``+ b``, no second ``sum``, no ``- y``. The loss
    terms are the generic path's exactly (:math:`\max(u, 0)` is
    :math:`\max(z, 0) - y z` to the bit for 0/1 targets) and free of cancellation
    for confident right predictions; the residual is
    :math:`\exp(\log\sigma(u))`, accurate to a few units in the last place.
    That is 10 calls on ``n``-vectors (11 in float32, whose loss keeps NumPy's
    pairwise sum) where :func:`logistic_gd_step` makes 19: on the seed's 1000 x 4
    data, where every call costs about its fixed overhead, the step takes two
    thirds of the time.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        Targets, all 0 or 1 (see :meth:`applies`).
    """

    def __init__(self, X: Array, y: Array) -> None:
        n_samples, n_features = X.shape
        signs = (1.0 - 2.0 * np.asarray(y, dtype=X.dtype)).astype(X.dtype, copy=False)
        # Stored feature by feature (shape (n_features + 1, n_samples)): both products
        # then run along the samples, where BLAS vectorises; on the row-major copy
        # they were n_samples dot products of length n_features + 1, twice as slow.
        self.columns: Array = np.empty((n_features + 1, n_samples), dtype=X.dtype)
        np.multiply(X.T, signs, out=self.columns[:n_features])
        self.columns[n_features] = signs
        # Scratch rows, kept as separate vectors: unpacking a (3, n) array into its rows
        # every step would make three new views. The first two are the rows of
        # loss_rows, whose sums one matrix-vector product with ones gives in float64.
        # float32 keeps NumPy's pairwise sum: BLAS adds float32 in float32 lanes, which
        # on 200,000 rows gave the loss to 1e-5 against the pairwise sum's 1e-7.
        self.blas_sums = X.dtype == np.float64
        self.loss_rows: Array = np.empty((2, n_samples), dtype=X.dtype)
        self.workspace: tuple[Array, Array, Array] = (
            self.loss_rows[0], self.loss_rows[1], np.empty(n_samples, dtype=X.dtype)
        )
        self.ones: Array = np.ones(n_samples, dtype=X.dtype)
        self.loss_sums: Array = np.empty(2, dtype=X.dtype)
        # np.maximum against a vector of zeros: half the time of a scalar 0.0 here.
        self.zeros: Array = np.zeros(n_samples, dtype=X.dtype)
        self.gradient: Array = np.empty(n_features + 1, dtype=X.dtype)

    @staticmethod
    def applies(X: Array, y: Array, parameters: Array) -> bool:
        """Whether the targets are all 0 or 1 and the parameters ``[w, b]`` in X's dtype."""
        return (
            parameters.dtype == X.dtype
            and parameters.shape == (X.shape[1] + 1,)
            and bool(np.all((y == 0) | (y == 1)))
        )

    def step(self, parameters: Array, learning_rate: float, l2: float) -> float:
        r"""One GD step of ``parameters`` (:math:`[w, b]`, in place); the loss before it.

        :math:`L = \tfrac1n \sum_i \ell_i + \tfrac{\alpha}{2}\lVert w\rVert^2`, and
        :math:`[w, b] \leftarrow [w, b] - \eta\, (\tfrac1n \sum_i \sigma(u_i)\, s_i [x_i, 1]
        + \alpha [w, 0])`.
        """
        columns = self.columns
        n_samples = columns.shape[1]
        u, relu, low = self.workspace
        # Outputs passed by position (out= costs a keyword parse per call): every
        # call here is on 1000-value vectors in the seed, where that shows.
        np.dot(parameters, columns, u)
        np.maximum(u, self.zeros, out=relu)
        np.subtract(u, relu, low)  # min(u, 0)
        np.subtract(low, relu, u)  # -|u|: u itself is not needed again
        np.exp(u, u)  # in (0, 1]: never overflows
        np.log1p(u, u)  # log(1 + exp(-|u|)), every digit kept for tiny exp(-|u|)
        if self.blas_sums:
            # The loss terms ell_i are relu + u: both rows summed by one product (the
            # add and the sum of the two take half as long again).
            relu_sum, log_sum = np.dot(self.loss_rows, self.ones, self.loss_sums).tolist()
            loss = (relu_sum + log_sum) / n_samples
        else:
            np.add(relu, u, relu)
            loss = float(np.add.reduce(relu)) / n_samples  # (ndarray.sum adds a layer)
        np.subtract(low, u, low)  # log sigmoid(u)
        np.exp(low, low)  # sigmoid(u) = s_i (sigmoid(z_i) - y_i), the residual times s_i
        gradient = np.dot(columns, low, self.gradient)
        if l2:
            gradient *= 1.0 / n_samples
            weights = parameters[:-1]  # the bias is not penalised
            loss += 0.5 * l2 * float(np.dot(weights, weights))
            gradient[:-1] += l2 * weights
            gradient *= learning_rate
        else:  # one product for both factors: on 1000 x 4, each call is a few percent
            gradient *= learning_rate / n_samples
        np.subtract(parameters, gradient, parameters)
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
    n_samples = X.shape[0]
    loss_sum, residual = _loss_sum_and_residual(X, y, weights, bias, workspace)
    residual *= 1.0 / n_samples  # r = dL/dz
    return loss_sum / n_samples, np.dot(residual, X), float(residual.sum())


def _loss_sum_and_residual(
    X: Array, y: Array, weights: Array, bias: float, workspace: tuple[Array, Array, Array, Array]
) -> tuple[float, Array]:
    r""":math:`\sum_i \ell_i` and the residual :math:`\sigma(z) - y` (in ``workspace[3]``)."""
    z, e, terms, residual = workspace
    np.dot(X, weights, out=z)
    z += bias
    np.abs(z, out=e)
    np.negative(e, out=e)
    np.exp(e, out=e)  # e = exp(-|z|) in (0, 1]: shared by the loss and the sigmoid
    np.maximum(z, 0.0, out=residual)
    # The loss as (max(z, 0) - y z) + log1p(e), in that order: no cancellation of
    # log1p(e)'s digits for confident right predictions (see losses.binary_cross_entropy).
    np.multiply(y, z, out=terms)
    np.subtract(residual, terms, out=terms)
    # sigmoid(z) = exp(min(z, 0)) / (1 + e): 1 / (1 + e) for z >= 0, e / (1 + e) below;
    # min(z, 0) = z - max(z, 0), and exp of it is exactly e where z < 0.
    np.subtract(z, residual, out=residual)
    np.exp(residual, out=residual)
    np.log1p(e, out=z)  # z is not needed any more
    terms += z
    loss_sum = float(terms.sum())
    e += 1.0
    residual /= e
    residual -= y
    return loss_sum, residual


# --- the compiled twins: loaded on first use ------------------------------------------------


def compiled_module() -> ModuleType | None:
    """:mod:`handnet.training._compiled`, imported (with numba) on first use.

    ``None`` without numba, or under :func:`numpy_only`. The import costs about
    0.3 s and 100 MiB once per process; the kernels themselves load from numba's
    on-disk cache after the first process on the machine compiled them.
    """
    return _numba.load(COMPILED_MODULE)


def native_kernels(dtype: np.dtype[Any] | type) -> Any:
    """The kernels of this module built ahead of time (``handnet compile``) for ``dtype``:
    a namespace named as :mod:`handnet.training._compiled`'s functions, or ``None``.

    Loading them costs under a millisecond and never imports numba
    (:mod:`handnet._native`), so every path takes them first where they are built.
    """
    return _native.kernels(COMPILED_MODULE, dtype)


def _sgd_kernel() -> Callable[..., float] | None:
    """The compiled SGD epoch: built ahead of time, else numba's (imported here), else ``None``."""
    native = native_kernels(np.float64)
    if native is not None:
        kernel: Callable[..., float] = native.sgd_epoch
        return kernel
    module = compiled_module()
    return None if module is None else module.sgd_epoch


def sgd_kernel_ready() -> bool:
    """Whether a compiled SGD kernel is at hand without numba's import: built ahead of
    time, or the JIT's already loaded and compiled here (using it costs nothing)."""
    if native_kernels(np.float64) is not None:
        return True
    module = _numba.loaded(COMPILED_MODULE)
    return module is not None and bool(module.sgd_epoch.signatures)


def numba_available() -> bool:
    """Whether a compiled SGD kernel can be used (built ahead of time, or numba installed),
    and not turned off by :func:`numpy_only`.

    Imports the compiled kernels (and numba, where none is built ahead of time) to
    find out: :func:`numba_installed` is the question that loads nothing.
    """
    return _sgd_kernel() is not None


# --- per-example SGD on a few features, in Python floats -------------------------------------

#: float64 data with at most this many features takes :func:`scalar_sgd_epoch` (instead
#: of :func:`logistic_sgd_epoch_numpy`) when not compiled: unrolled Python float math
#: ran 1.2-1.8 M rows/s on 4 features here, the NumPy calls per row 0.2 M rows/s.
SCALAR_MAX_FEATURES = 8

# One step of the compiled kernel (handnet.training._compiled.sgd_epoch), operation for
# operation in the same order, so that the two paths give the same bits (Python floats
# are IEEE doubles, math.exp and math.log1p the same C library calls, and the compiled
# kernel is built without fast-math, so no fused multiply-add reorders the rounding).
_SCALAR_TEMPLATE = '''
def scalar_epoch(columns, targets, scales, w, b, learning_rate, l2, total):
    exp, log1p = math.exp, math.log1p
    ({ws},) = w
    decay = 1.0 - learning_rate * l2
    half_l2 = 0.5 * l2
    for {xs}, target, scale in zip(*columns, targets, scales):
        z = {dot} + b
        e = exp(-abs(z))
        p = 1.0 / (1.0 + e) if z >= 0 else e / (1.0 + e)
        loss = ((z if z > 0 else 0.0) - target * z) + log1p(e)
        if l2:
            loss += half_l2 * ({norm})
            {decay}
        total += loss
        step = learning_rate * scale * (p - target)
        {update}
        b -= step
    return total, [{ws}], b
'''


@functools.cache
def _scalar_epoch(n_features: int) -> Callable[..., tuple[float, list[float], float]]:
    """The per-example SGD loop unrolled over ``n_features`` Python floats (made once)."""
    j = range(n_features)
    source = _SCALAR_TEMPLATE.format(
        ws=", ".join(f"w{k}" for k in j),
        xs=", ".join(f"x{k}" for k in j),
        dot=" + ".join(f"x{k} * w{k}" for k in j),
        norm=" + ".join(f"w{k} * w{k}" for k in j),
        decay="; ".join(f"w{k} *= decay" for k in j),
        update="; ".join(f"w{k} -= step * x{k}" for k in j),
    )
    namespace: dict[str, Any] = {"math": math}
    exec(compile(source, f"<handnet scalar SGD, {n_features} features>", "exec"), namespace)
    epoch: Callable[..., tuple[float, list[float], float]] = namespace["scalar_epoch"]
    return epoch


def scalar_sgd_applies(X: Array) -> bool:
    """Whether :func:`scalar_sgd_epoch` takes these rows (float64, few features)."""
    return X.dtype == np.float64 and 1 <= X.shape[1] <= SCALAR_MAX_FEATURES


def scalar_sgd_epoch(
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
    """:func:`logistic_sgd_epoch_numpy`'s epoch in Python floats, for float64 and few features.

    The same math, with the weights held in local variables for the epoch (one
    loop unrolled per feature count, see :data:`SCALAR_MAX_FEATURES`) instead of a
    NumPy call per row: some six times faster at the seed's four features, and the
    same bits as the compiled kernel (``_compiled.sgd_epoch``), so a fit may switch
    between the two without its results depending on which ran.

    Returns
    -------
    float
        ``total`` plus each step's loss (before its update).
    """
    epoch = _scalar_epoch(X.shape[1])
    scales = itertools.repeat(1.0) if sample_weight is None else sample_weight[order].tolist()
    # Feature by feature: one list of floats per feature (floats are not tracked by
    # the garbage collector); a list per row made the collector scan every chunk's
    # rows, and fits in a process with a large heap ran 3-4 x slower for it.
    columns = X[order].T.tolist()
    total, new_weights, b = epoch(
        columns, y[order].tolist(), scales, weights.tolist(), float(bias[0]),
        float(learning_rate), float(l2), float(total),
    )
    weights[:] = new_weights
    bias[0] = b
    return float(total)


_ONES = np.ones(0)


def _unit_scales(n: int) -> Array:
    """``n`` ones (read-only) for the compiled kernel's unweighted rows, made once per size.

    Allocating them per call cost a tenth of a 100,000-row epoch in 16,384-row chunks.
    """
    global _ONES
    if _ONES.shape[0] < n:
        ones = np.ones(n)
        ones.setflags(write=False)
        _ONES = ones
    return _ONES[:n]


def _sgd_kernel_arguments(
    X: Array, y: Array, order: NDArray[np.intp], weights: Array, bias: Array,
    sample_weight: Array | None,
) -> tuple[Array, NDArray[np.intp], Array]:
    """``y``, ``order`` and the row scales as the compiled kernel takes them (float64,
    ``intp``), after checking what it trusts: it indexes without bounds checks.

    Raises
    ------
    ValueError, IndexError
        Lengths that disagree, or a row index outside ``X``.
    """
    n_samples, n_features = X.shape
    y = np.asarray(y, dtype=np.float64)
    order = np.asarray(order, dtype=np.intp)
    scales = (_unit_scales(n_samples) if sample_weight is None
              else np.asarray(sample_weight, dtype=np.float64))
    if y.shape != (n_samples,) or scales.shape != (n_samples,):
        raise ValueError(f"y and sample_weight need one value per row of X ({n_samples}), "
                         f"got {y.shape} and {scales.shape}")
    if weights.shape != (n_features,) or bias.shape != (1,):
        raise ValueError(f"weights need shape ({n_features},) and bias (1,), got "
                         f"{weights.shape} and {bias.shape}")
    if weights.dtype != np.float64 or bias.dtype != np.float64:
        raise TypeError("the compiled SGD kernel updates float64 weights and bias, got "
                        f"{weights.dtype} and {bias.dtype}")
    if order.ndim != 1 or (order.size and not 0 <= int(order.min()) <= int(order.max())
                           < n_samples):
        raise IndexError(f"order must index rows 0 to {n_samples - 1}")
    return y, order, scales


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
    """One SGD epoch (see :func:`logistic_sgd_epoch_numpy`), compiled when asked or possible.

    ``use_numba=None`` uses numba if it is installed (and the data float64),
    ``False`` never, ``True`` always (raising ``ImportError`` without it). Not
    compiled, float64 rows with few features take :func:`scalar_sgd_epoch` (the
    compiled kernel's bits), others :func:`logistic_sgd_epoch_numpy`.
    """
    if use_numba is None:
        use_numba = (X.dtype == weights.dtype == bias.dtype == np.float64
                     and numba_available())
    if use_numba:
        kernel = _sgd_kernel()
        if kernel is None:
            raise _no_compiled_kernel()
        y, order, scales = _sgd_kernel_arguments(X, y, order, weights, bias, sample_weight)
        return float(kernel(
            X, y, order, weights, bias, float(learning_rate), float(l2), scales, float(total)
        ))
    epoch = scalar_sgd_epoch if scalar_sgd_applies(X) else logistic_sgd_epoch_numpy
    return epoch(X, y, order, weights, bias, learning_rate, l2, sample_weight, total)


# --- full-batch sums over a block of rows ---------------------------------------------------


def logistic_block_sums(
    X: Array,
    y: Array,
    weights: Array,
    bias: float,
    gradient: Array,
    workspace: tuple[Array, Array, Array, Array] | None = None,
    use_numba: bool | None = None,
) -> tuple[float, float]:
    r"""Add one block's loss and gradient *sums* of a logistic regression.

    What the full-batch engine (:mod:`handnet.data.blocks`) needs from each block of
    rows: the sums, not the means, so that blocks add up.

    .. math::

        z_i = x_i \cdot w + b,\quad
        r_i = \sigma(z_i) - y_i,\quad
        \text{gradient} \mathrel{+}= \textstyle\sum_i r_i\, x_i

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    weights : ndarray of shape (n_features,)
    bias : float
    gradient : ndarray of shape (n_features,)
        :math:`\sum_i r_i x_i` is added to it, in place.
    workspace : four ndarrays of shape (n_samples,), optional
        Scratch space for the NumPy path (allocated when omitted).
    use_numba : bool, optional
        ``None`` uses the compiled kernel when numba is installed (and not turned
        off by :func:`numpy_only`); ``False`` never; ``True`` always (raising
        ``ImportError`` when it cannot). Either way the arithmetic is in
        ``gradient``'s dtype (float32 or float64).

    Returns
    -------
    loss_sum : float
        :math:`\sum_i \big(\log(1 + e^{-|z_i|}) + \max(z_i, 0) - y_i z_i\big)`.
    bias_gradient_sum : float
        :math:`\sum_i r_i`.

    Notes
    -----
    The NumPy path reads ``X`` twice (``X @ w``, then ``r @ X``, from cache if the
    block fits) and makes about fifteen passes over ``n_samples``-sized vectors.
    The compiled kernel reads each row once and does everything while it is in
    L1: see ``handnet.training._compiled.block_sums_body``. The two agree to rounding (the sums are
    added in a different order).
    """
    dtype = gradient.dtype  # the parameters' dtype: the one everything is computed in
    kernel = None if use_numba is False else _block_sums_kernel(dtype)
    if use_numba is None:
        use_numba = kernel is not None and dtype in (np.float32, np.float64)
    if use_numba:
        if kernel is None:
            raise _no_compiled_kernel()
        # The kernel trusts the lengths (no bounds checks).
        if (y.shape != (X.shape[0],) or weights.shape != (X.shape[1],)
                or gradient.shape != (X.shape[1],)):
            raise ValueError(f"block sums of X {X.shape} need y ({X.shape[0]},), weights and "
                             f"gradient ({X.shape[1]},); got {y.shape}, {weights.shape}, "
                             f"{gradient.shape}")
        # One compiled specialisation per dtype: every array C-contiguous in it. A
        # block of a Fortran-ordered X (a DataFrame's values) is copied, which still
        # costs less than the NumPy path's second read.
        loss_sum, bias_sum = kernel(
            np.ascontiguousarray(X, dtype=dtype), np.ascontiguousarray(y, dtype=dtype),
            np.ascontiguousarray(weights, dtype=dtype), dtype.type(bias), gradient,
        )
        return float(loss_sum), float(bias_sum)
    X = X.astype(dtype, copy=False)
    weights = weights.astype(dtype, copy=False)
    if workspace is None:
        z, e, terms, residual = (np.empty(X.shape[0], dtype=dtype) for _ in range(4))
        workspace = (z, e, terms, residual)
    loss_sum, residual = _loss_sum_and_residual(X, y, weights, bias, workspace)
    gradient += np.dot(residual, X)
    return loss_sum, float(residual.sum())


def _build_logistic_sums(prefetch: bool = True) -> Callable[..., tuple[float, float]] | None:
    """:func:`logistic_block_sums`'s compiled kernel, with or without the prefetch hint.

    ``handnet.training._compiled.block_sums`` (the kernel's one pass over the rows
    is documented at ``block_sums_body``), or ``block_sums_plain`` without the
    hint; ``None`` without numba.
    """
    module = compiled_module()
    if module is None:
        return None
    kernel: Callable[..., tuple[float, float]] = (
        module.block_sums if prefetch else module.block_sums_plain
    )
    return kernel


def _block_sums_kernel(dtype: np.dtype[Any]) -> Callable[..., tuple[float, float]] | None:
    """The compiled block sums for ``dtype``: built ahead of time, else numba's (float32
    rows: the kernel with vectorised exponentials, ``_compiled.vectorised_block_sums``)."""
    native = native_kernels(dtype) if dtype in (np.float32, np.float64) else None
    if native is not None:
        kernel: Callable[..., tuple[float, float]] = native.block_sums
        return kernel
    if dtype == np.float32:
        return float32_block_sums_compiled()
    return logistic_block_sums_compiled()


def block_sums_compiled(dtype: np.dtype[Any] | type) -> bool:
    """Whether :func:`logistic_block_sums` runs compiled for rows of ``dtype`` (by default:
    a kernel built ahead of time, or numba, which this imports to find out)."""
    dtype = np.dtype(dtype)
    return dtype in (np.float32, np.float64) and _block_sums_kernel(dtype) is not None


_LOGISTIC_SUMS: Callable[..., tuple[float, float]] | bool | None = False  # False: not yet built
_BUILD_LOCK = threading.Lock()


def logistic_block_sums_compiled() -> Callable[..., tuple[float, float]] | None:
    """The compiled kernel of :func:`logistic_block_sums`, or ``None`` without numba.

    Loaded (and run once on a float64 probe, which compiles it or loads it from
    numba's cache) on first use. The kernel with the prefetch hint where it pays
    (``_compiled.PREFETCH_PAYS``) and this numba can compile it; otherwise the one
    without.
    """
    global _LOGISTIC_SUMS
    if not _numba.enabled():
        return None
    if callable(_LOGISTIC_SUMS):  # built: no lock on the per-block path
        return _LOGISTIC_SUMS
    # The engine's threads all ask on their first block: compile once, not per thread.
    with _BUILD_LOCK:
        if _LOGISTIC_SUMS is False:
            kernel = None
            module = compiled_module()
            choices = (True, False) if module is not None and module.PREFETCH_PAYS else (False,)
            for prefetch in choices:
                try:
                    kernel = _build_logistic_sums(prefetch)
                    if kernel is not None:
                        probe = np.zeros((5, 2))
                        kernel(probe, np.zeros(5), np.zeros(2), 0.0, np.zeros(2))
                    break
                except Exception:  # any compiler error: try the kernel without the hint
                    kernel = None
            _LOGISTIC_SUMS = kernel
    return _LOGISTIC_SUMS if callable(_LOGISTIC_SUMS) else None


_FLOAT32_SUMS: Callable[..., tuple[float, float]] | bool | None = False  # False: not yet built


def float32_block_sums_compiled() -> Callable[..., tuple[float, float]] | None:
    """The compiled block sums for float32 rows (``_compiled.vectorised_block_sums``), or
    :func:`logistic_block_sums_compiled`'s kernel where it does not compile; ``None``
    without numba. Compiled (or loaded from numba's cache) on first use, once."""
    global _FLOAT32_SUMS
    if not _numba.enabled():
        return None
    if callable(_FLOAT32_SUMS):
        return _FLOAT32_SUMS
    with _BUILD_LOCK:
        if _FLOAT32_SUMS is False:
            module = compiled_module()
            kernel = None if module is None else module.vectorised_block_sums
            try:
                if kernel is not None:
                    probe = np.zeros((17, 2), np.float32)  # a block and a tail row
                    kernel(probe, np.zeros(17, np.float32), np.zeros(2, np.float32),
                           np.float32(0), np.zeros(2, np.float32))
            except Exception:  # any compiler error: the quads' kernel
                kernel = None
            _FLOAT32_SUMS = kernel
    if callable(_FLOAT32_SUMS):
        return _FLOAT32_SUMS
    return logistic_block_sums_compiled()


# --- a fused Adam step ---------------------------------------------------------------------

#: Parameter vectors at least this long use the compiled Adam step when numba is
#: installed; on shorter ones NumPy's dozen passes cost less than the dispatch.
FUSED_ADAM_MIN_SIZE = 10_000


def _build_fused_adam() -> Callable[..., None] | None:
    """Adam's update as one compiled pass (``_compiled.fused_adam``), or ``None`` without numba.

    NumPy needs about a dozen passes over the parameter-sized arrays (each ufunc
    reads and writes whole vectors); compiled, each element is read and written
    once. The arithmetic is :class:`handnet.optim.optimizers.Adam`'s, in the
    parameters' dtype.
    """
    module = compiled_module()
    if module is None:
        return None
    kernel: Callable[..., None] = module.fused_adam
    return kernel


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
    if not _numba.enabled():
        return False
    # The compiled loop trusts its arrays (no bounds checks): anything but four flat,
    # contiguous vectors of param's dtype and length takes NumPy's path, which
    # broadcasts or raises as NumPy does.
    for array in (grad, m, v):
        if not (array.dtype == param.dtype and array.shape == param.shape
                and array.flags.c_contiguous):
            return False
    native = native_kernels(param.dtype) if param.dtype in (np.float32, np.float64) else None
    if native is not None:
        kernel: Callable[..., None] = native.fused_adam
    else:
        if _FUSED_ADAM is False:
            _FUSED_ADAM = _build_fused_adam()
        if _FUSED_ADAM is None or _FUSED_ADAM is True:
            return False
        kernel = _FUSED_ADAM
    cast = param.dtype.type
    kernel(
        param, grad, m, v, cast(beta1), cast(1.0 - beta1), cast(beta2), cast(1.0 - beta2),
        cast(eps), cast(step_size), cast(1.0 / bias_correction2_sqrt), cast(decay),
    )
    return True
