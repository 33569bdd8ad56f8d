r"""Numeric kernels for the seed's own model, where Python overhead dominates.

The seed trains a single sigmoid unit, by full-batch gradient descent or by SGD
one example at a time. The generic training step (forward through the layers,
the loss object, backward, the optimizer object) spends most of its time on such
a model in Python calls around tiny arrays. The kernels here do the same math
with the bookkeeping stripped; ``tests/test_kernels.py`` checks each against the
generic path, and the training loop uses them only where they apply (one
``Dense(n, 1)`` layer, binary cross-entropy, plain SGD, no clipping).

* :func:`logistic_gd_step`: one full-batch gradient-descent step;
* :func:`logistic_sgd_epoch`: an epoch of per-example SGD, one NumPy call per
  example and scalar math for the rest (compiled with numba when installed,
  ``pip install handnet[fast]``):

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
With numba installed, the per-example SGD epoch (float64, from
``Trainer.NUMBA_MIN_ROWS`` rows), the full-batch block sums and the Adam step run
compiled twins by default; the two paths give the same numbers to rounding (about
1e-12 relative in float64, 1e-5 in float32), not the same bits.
:func:`numpy_only` (or the environment variable ``HANDNET_NUMPY_ONLY=1``) makes a
process use the NumPy paths alone, as if numba were not installed: for results
that match a machine without it bit for bit. Dask workers are other processes:
set the variable in their environment.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]

#: Whether the compiled kernels may be used (when numba is installed).
_COMPILED = os.environ.get("HANDNET_NUMPY_ONLY", "").strip().lower() in ("", "0", "false", "no")


def compiled_enabled() -> bool:
    """Whether kernels use numba when it is installed (see :func:`numpy_only`)."""
    return _COMPILED


def _no_compiled_kernel() -> ImportError:
    """The error for ``use_numba=True`` when no compiled kernel may run."""
    if not _COMPILED:
        return ImportError(
            "use_numba=True, but compiled kernels are off in this process (numpy_only() or "
            "HANDNET_NUMPY_ONLY=1): leave use_numba unset, or turn them back on"
        )
    return ImportError("use_numba=True needs numba: pip install 'handnet[fast]'")


@contextlib.contextmanager
def numpy_only(enabled: bool = True) -> Iterator[None]:
    """Within the block, every kernel takes its NumPy path, as if numba were not installed.

    A process-wide switch (not per thread), meant for a script, a test or a
    benchmark that compares the two paths: enter and leave it from one thread
    (blocks left out of order by several threads restore the wrong state).
    ``numpy_only(False)`` re-allows the compiled kernels inside the block.
    """
    global _COMPILED
    previous = _COMPILED
    _COMPILED = not enabled
    try:
        yield
    finally:
        _COMPILED = previous


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
            loss = ((z if z > 0 else 0.0) - y[i] * z) + math.log1p(e)
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
    """Whether the compiled SGD kernel can be used (numba installed, not :func:`numpy_only`)."""
    global _NUMBA_KERNEL
    if not _COMPILED:
        return False
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
            raise _no_compiled_kernel()
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
    L1: see :func:`_build_logistic_sums`. The two agree to rounding (the sums are
    added in a different order).
    """
    dtype = gradient.dtype  # the parameters' dtype: the one everything is computed in
    kernel = None if use_numba is False else logistic_block_sums_compiled()
    if use_numba is None:
        use_numba = kernel is not None and dtype in (np.float32, np.float64)
    if use_numba:
        if kernel is None:
            raise _no_compiled_kernel()
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


#: How far ahead of the rows being computed the compiled kernel asks for memory.
#: A row's arithmetic (scalar exp and log1p) leaves the memory bus idle;
#: without the hint the hardware prefetcher stops running ahead and every row
#: waits for DRAM. 12 KiB measured best here (rounded down to whole groups of four
#: rows: 12 rows ahead for 100 float64 features); 24 KiB ahead was already worse
#: (lines start to leave L1 before their use), and without the hint the kernel
#: took 1.3 x (float64) to 1.6 x (float32) as long.
PREFETCH_BYTES = 12 << 10

#: Rows whose gradient terms the compiled kernel adds in the data's dtype before
#: adding that partial sum to a float64 total: float32 rounding then grows with
#: this chunk, not with the block (over 100,000 rows when there are few features).
CHUNK_ROWS = 256


def _build_logistic_sums(prefetch: bool = True) -> Callable[..., tuple[float, float]] | None:
    r"""Compile :func:`logistic_block_sums`'s kernel with numba, if it is installed.

    One pass over the rows, four at a time (the four dot products share each
    load of ``w``, and the four rows' contributions are added to ``gradient`` in
    one pass over it). Each row is read from memory once: its dot product brings
    it into L1, where the gradient update finds it. The scalar transcendentals
    are the kernel's own cost (they cannot vectorise here), so the four rows'
    :math:`\log(1 + e^{-|z|})` terms share one ``log1p`` through
    :math:`\log(1 + a) + \log(1 + b) = \log(1 + a + b + ab)`, exact in
    arithmetic and free of cancellation (all terms are >= 0). ``fastmath`` allows
    only reassociation and fused multiply-add (so that the dot products
    vectorise); a NaN in the data or the parameters gives a NaN loss, as in NumPy.
    """
    try:
        import numba
    except ImportError:
        return None
    fast = {"reassoc", "contract"}
    if prefetch:
        hint = _build_prefetch()
    else:

        @numba.njit(inline="always")
        def hint(array: Any, index: Any) -> None:  # pragma: no cover - compiled
            pass

    @numba.njit(inline="always", fastmath=fast, error_model="numpy")
    def row_terms(z: Any, target: Any, zero: Any, one: Any) -> Any:  # pragma: no cover - compiled
        """``exp(-|z|)``, the loss without its ``log1p(exp(-|z|))`` term, and the residual."""
        e = math.exp(-abs(z))  # in (0, 1]: never overflows
        residual = (one if z >= zero else e) / (one + e) - target
        return e, max(z, zero) - target * z, residual

    @numba.njit(inline="always", fastmath=fast, error_model="numpy")
    def pair(a: Any, b: Any) -> Any:  # pragma: no cover - compiled
        # log1p(a) + log1p(b) = log1p(a + b + ab): every term >= 0, so no cancellation
        return a + b + a * b

    # No cache=True: numba cannot reuse a cached function that closes over an
    # intrinsic, and would add files to __pycache__ at every start. Compiling costs
    # about a second, once per process and dtype, on data large enough to need it.
    @numba.njit(nogil=True, fastmath=fast, error_model="numpy")
    def sums(X: Any, y: Any, w: Any, b: Any, gradient: Any) -> Any:  # pragma: no cover
        n_samples, n_features = X.shape
        real = X.dtype.type
        zero, one = real(0), real(1)
        flat = X.reshape(-1)
        line = max(1, 64 // X.itemsize)  # elements per cache line
        # Rows ahead, a multiple of 4; none for rows longer than PREFETCH_BYTES, whose
        # long runs the hardware prefetcher follows by itself.
        ahead = PREFETCH_BYTES // max(1, n_features * X.itemsize) // 4 * 4
        loss_sum = 0.0
        bias_sum = 0.0
        # Blocked summation of the gradient: CHUNK_ROWS rows added in X's dtype (so the
        # update vectorises at float32 width), the chunks' sums added in float64.
        partial = np.zeros(n_features, X.dtype)
        total = np.zeros(n_features, np.float64)
        n_quads = n_samples - n_samples % 4
        for i in range(0, n_quads, 4):
            if ahead and i + ahead < n_samples:
                stop = min(n_samples, i + ahead + 4) * n_features
                for k in range((i + ahead) * n_features, stop, line):
                    hint(flat, k)
            z0, z1, z2, z3 = b, b, b, b
            for j in range(n_features):
                wj = w[j]
                z0 += X[i, j] * wj
                z1 += X[i + 1, j] * wj
                z2 += X[i + 2, j] * wj
                z3 += X[i + 3, j] * wj
            e0, linear0, r0 = row_terms(z0, y[i], zero, one)
            e1, linear1, r1 = row_terms(z1, y[i + 1], zero, one)
            e2, linear2, r2 = row_terms(z2, y[i + 2], zero, one)
            e3, linear3, r3 = row_terms(z3, y[i + 3], zero, one)
            # One log1p for four rows (a quarter of the transcendental work):
            # sum of log1p(e_k) = log1p(pair(pair(e0, e1), pair(e2, e3))).
            softplus = math.log1p(pair(pair(e0, e1), pair(e2, e3)))
            loss_sum += float(softplus) + (
                (float(linear0) + float(linear1)) + (float(linear2) + float(linear3))
            )
            bias_sum += (float(r0) + float(r1)) + (float(r2) + float(r3))
            for j in range(n_features):
                partial[j] += (r0 * X[i, j] + r1 * X[i + 1, j]) + (
                    r2 * X[i + 2, j] + r3 * X[i + 3, j]
                )
            if (i + 4) % CHUNK_ROWS == 0:
                for j in range(n_features):
                    total[j] += partial[j]
                    partial[j] = zero
        for i in range(n_quads, n_samples):
            z = b
            for j in range(n_features):
                z += X[i, j] * w[j]
            e, linear, r = row_terms(z, y[i], zero, one)
            loss_sum += float(math.log1p(e)) + float(linear)
            bias_sum += float(r)
            for j in range(n_features):
                partial[j] += r * X[i, j]
        for j in range(n_features):
            gradient[j] += total[j] + partial[j]
        return loss_sum, bias_sum

    return sums


def _build_prefetch() -> Any:
    """A numba intrinsic ``hint(flat_array, index)``: LLVM's ``prefetch`` of that element.

    A hint only: it reads nothing and never faults, so a wrong address costs
    nothing but time.
    """
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    @intrinsic
    def hint(typingctx: Any, array: Any, index: Any) -> Any:  # pragma: no cover - compiled
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            array_type = signature.args[0]
            view = context.make_array(array_type)(context, builder, args[0])
            address = cgutils.get_item_pointer(
                context, builder, array_type, view, [args[1]], wraparound=False
            )
            byte_pointer = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            prefetch = cgutils.get_or_insert_function(
                builder.module,
                ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]),
                "llvm.prefetch.p0",
            )
            # read, keep in all cache levels, data cache
            builder.call(prefetch, [builder.bitcast(address, byte_pointer), i32(0), i32(3), i32(1)])
            return context.get_dummy_value()

        return types.void(array, types.intp), codegen

    return hint


_LOGISTIC_SUMS: Callable[..., tuple[float, float]] | bool | None = False  # False: not yet built
_BUILD_LOCK = threading.Lock()


def logistic_block_sums_compiled() -> Callable[..., tuple[float, float]] | None:
    """The compiled kernel of :func:`logistic_block_sums`, or ``None`` without numba.

    Built (and compiled for float64, as a check) on first use. If this numba
    cannot compile the prefetch hint, the kernel is built without it.
    """
    global _LOGISTIC_SUMS
    if not _COMPILED:
        return None
    if callable(_LOGISTIC_SUMS):  # built: no lock on the per-block path
        return _LOGISTIC_SUMS
    # The engine's threads all ask on their first block: compile once, not per thread.
    with _BUILD_LOCK:
        if _LOGISTIC_SUMS is False:
            kernel = None
            for prefetch in (True, False):
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


# --- a fused Adam step ---------------------------------------------------------------------

#: Parameter vectors at least this long use the compiled Adam step when numba is
#: installed; on shorter ones NumPy's dozen passes cost less than the dispatch.
FUSED_ADAM_MIN_SIZE = 10_000


def _build_fused_adam() -> Callable[..., None] | None:
    """Adam's update as one compiled pass over the parameters, if numba is installed.

    NumPy needs about a dozen passes over the parameter-sized arrays (each ufunc
    reads and writes whole vectors); compiled, each element is read and written
    once. The arithmetic is :class:`handnet.optim.optimizers.Adam`'s, in the
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
    if not _COMPILED:
        return False
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
