r"""The numba twins of :mod:`handnet.training.kernels`, compiled once per machine.

Importing this module imports numba (about 0.3 s, and some 100 MiB of the
compiler), so :mod:`~handnet.training.kernels` imports it only when a compiled
kernel will pay for that (see :mod:`handnet.training.fastpath`). Every kernel is a
module-level function compiled with ``cache=True``: the machine code is written
to disk on first use and loaded, not compiled, by later processes (numba checks
the source file's time stamp and its own version). The cache lives in
``__pycache__`` beside this file, or, where that is not writable (an installed
package), in the user's cache directory (``NUMBA_CACHE_DIR`` overrides both);
where neither is writable the kernels compile in memory, once per process, as
they did before the cache. The arithmetic is documented with the NumPy paths in
:mod:`handnet.training.kernels`.
"""

from __future__ import annotations

import math
import types
from typing import Any

import numba
import numpy as np

from .._numba import jit

#: How far ahead of the rows being computed the block-sums kernel asks for memory.
#: A row's arithmetic (scalar exp and log1p) leaves the memory bus idle; on the
#: Intel Xeon (Ice Lake) where this was tuned, without the hint the hardware
#: prefetcher stopped running ahead and every row waited for DRAM. 12 KiB measured
#: best there (rounded down to whole groups of four rows: 12 rows ahead for 100
#: float64 features); 24 KiB ahead was already worse (lines start to leave L1
#: before their use), and without the hint the kernel took 1.3 x (float64) to
#: 1.6 x (float32) as long. See :data:`PREFETCH_PAYS` for where it is not used.
PREFETCH_BYTES = 12 << 10


def _prefetch_pays(cpu_name: str) -> bool:
    """Whether the block-sums kernel should hint its rows ahead on this CPU (LLVM's name).

    Not on AMD Zen (``znver*``): there the hardware prefetcher keeps up by itself
    and the hint only costs. 1,000,000 x 100 rows, one thread, on a Zen 4 EPYC
    (``/tmp`` script, best of 5): float64 41.9 ms without the hint, 41.0 ms with
    it 1 KiB ahead, 57.0 ms 12 KiB ahead; float32 26.2, 26.6 and 32.2 ms.
    """
    return not cpu_name.startswith("znver")


def _host_cpu_name() -> str:
    try:
        from llvmlite import binding

        return str(binding.get_host_cpu_name())
    except Exception:  # an llvmlite without it: assume the hint pays, as where it was tuned
        return ""


#: Whether :func:`handnet.training.kernels.logistic_block_sums_compiled` takes the
#: kernel with the prefetch hint (:data:`PREFETCH_BYTES` ahead) on this machine.
PREFETCH_PAYS = _prefetch_pays(_host_cpu_name())

#: Rows whose gradient terms the block-sums kernel adds in the data's dtype before
#: adding that partial sum to a float64 total: float32 rounding then grows with
#: this chunk, not with the block (over 100,000 rows when there are few features).
CHUNK_ROWS = 256

#: Rows whose softplus terms :func:`block_sums_body` adds by one ``log1p``: the product of
#: their ``1 + e^{-|z|}`` (each in (1, 2], so at most 2^64) kept as that product minus 1.
#: One ``log1p`` every 4 rows took 41-44 ms a pass of 1,000,000 x 100 float64 at trained
#: weights, every 64 rows 37-39 ms (Zen 4, one thread; ``/tmp`` script); the loss moves
#: by about 1e-15 relative.
LOG1P_ROWS = 64


# --- per-example SGD -----------------------------------------------------------------------


@jit(fastmath=False)
def sgd_epoch(
    X: Any, y: Any, order: Any, weights: Any, bias: Any,
    learning_rate: float, l2: float, scales: Any, total: float,
) -> float:  # pragma: no cover - compiled
    """:func:`handnet.training.kernels.logistic_sgd_epoch`, compiled.

    The operations are those of the scalar path (``kernels.scalar_sgd_epoch``), in
    the same order and without fused multiply-adds, so the two give the same bits.
    """
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


# --- full-batch sums over a block of rows ----------------------------------------------------

_FAST = {"reassoc", "contract"}  # numba takes a set (not a frozenset)


def _make_prefetch() -> Any:
    """A numba intrinsic ``hint(flat_array, index)``: LLVM's ``prefetch`` of that element.

    A hint only: it reads nothing and never faults, so a wrong address costs
    nothing but time.
    """
    from llvmlite import ir
    from numba.core import cgutils
    from numba.core import types as nb_types
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

        return nb_types.void(array, nb_types.intp), codegen

    return hint


@numba.njit(inline="always")
def no_hint(array: Any, index: Any) -> None:  # pragma: no cover - compiled
    """The prefetch hint's stand-in where this numba cannot build it."""


try:
    hint = _make_prefetch()
except Exception:  # an llvmlite/numba without these internals: no hint
    hint = no_hint


@numba.njit(inline="always", fastmath=_FAST, error_model="numpy")
def row_terms(z: Any, target: Any, zero: Any, one: Any) -> Any:  # pragma: no cover - compiled
    """``exp(-|z|)``, the loss without its ``log1p(exp(-|z|))`` term, and the residual."""
    e = math.exp(-abs(z))  # in (0, 1]: never overflows
    residual = (one if z >= zero else e) / (one + e) - target
    return e, max(z, zero) - target * z, residual


@numba.njit(inline="always", fastmath=_FAST, error_model="numpy")
def pair(a: Any, b: Any) -> Any:  # pragma: no cover - compiled
    """``log1p(a) + log1p(b) = log1p(a + b + ab)``: every term >= 0, so no cancellation."""
    return a + b + a * b


@numba.njit(inline="always", fastmath=_FAST, error_model="numpy")
def prefetch_rows(flat: Any, start: Any, stop: Any, line: Any) -> None:  # pragma: no cover
    """Hint every cache line of ``flat[start:stop]``."""
    for k in range(start, stop, line):
        hint(flat, k)


@numba.njit(inline="always", fastmath=_FAST, error_model="numpy")
def row_dot(row: Any, w: Any, b: Any) -> Any:  # pragma: no cover - compiled
    """``row @ w + b``: one row's logit, ``row`` a 1-D view of a row of ``X``.

    The kernels pass rows as views, taken once per row: indexed as ``X[i + k, j]``
    the loops vectorised worse (1,000,000 x 100 float64, Zen 4: the block sums took
    1.15 x as long, and the quads' gradient updates alone 104 ms against the
    28 ms of the dot products' one read of ``X``).
    """
    z = b
    for j in range(row.shape[0]):
        z += row[j] * w[j]
    return z


@numba.njit(inline="always", fastmath=_FAST, error_model="numpy")
def add_quad(
    partial: Any, x0: Any, x1: Any, x2: Any, x3: Any, r0: Any, r1: Any, r2: Any, r3: Any
) -> None:  # pragma: no cover - compiled
    """``partial += r0 x0 + r1 x1 + r2 x2 + r3 x3`` (four rows), in one pass over it."""
    for j in range(partial.shape[0]):
        partial[j] += (r0 * x0[j] + r1 * x1[j]) + (r2 * x2[j] + r3 * x3[j])


@numba.njit(inline="always", fastmath=_FAST, error_model="numpy")
def flush_chunk(partial: Any, total: Any) -> None:  # pragma: no cover - compiled
    """A chunk of :data:`CHUNK_ROWS` rows done: its sum (in X's dtype) into the float64
    total, and the chunk's sum started again."""
    for j in range(partial.shape[0]):
        total[j] += partial[j]
        partial[j] = 0


@numba.njit(inline="always", fastmath=_FAST, error_model="numpy")
def add_totals(gradient: Any, total: Any, partial: Any) -> None:  # pragma: no cover
    """The block's gradient sum (the chunks' total and the last chunk's) into ``gradient``."""
    for j in range(gradient.shape[0]):
        gradient[j] += total[j] + partial[j]


@numba.njit(inline="always", fastmath=_FAST, error_model="numpy")
def tail_rows(
    X: Any, y: Any, w: Any, b: Any, start: Any, partial: Any
) -> Any:  # pragma: no cover - compiled
    """The last ``n % 4`` rows, one at a time: their loss and residual sums."""
    zero, one = X.dtype.type(0), X.dtype.type(1)
    loss_sum = 0.0
    bias_sum = 0.0
    for i in range(start, X.shape[0]):
        row = X[i]
        e, linear, r = row_terms(row_dot(row, w, b), y[i], zero, one)
        loss_sum += float(math.log1p(e)) + float(linear)
        bias_sum += float(r)
        for j in range(X.shape[1]):
            partial[j] += r * X[i, j]
    return loss_sum, bias_sum


def block_sums_body(X: Any, y: Any, w: Any, b: Any, gradient: Any) -> Any:  # pragma: no cover
    r"""Add one block's gradient sum to ``gradient``; return its loss and residual sums.

    One pass over the rows, four at a time: four dot products (each its own
    loop: one vectorised reduction per row; on a Zen 4 EPYC the four
    interleaved in one loop over the features took 2.3 x as long in float64),
    then the four rows' contributions added to ``gradient`` in one pass over
    it. Each row is read from memory once: its dot product brings
    it into L1, where the gradient update finds it. The scalar transcendentals
    are the kernel's own cost (they cannot vectorise here), so the rows'
    :math:`\log(1 + e^{-|z|})` terms share one ``log1p`` every :data:`LOG1P_ROWS`
    rows through :math:`\log(1 + a) + \log(1 + b) = \log(1 + a + b + ab)`, exact in
    arithmetic and free of cancellation (all terms are >= 0). ``fastmath`` allows
    only reassociation and fused multiply-add (so that the dot products
    vectorise); a NaN in the data or the parameters gives a NaN loss, as in NumPy.
    """
    n_samples, n_features = X.shape
    zero, one = X.dtype.type(0), X.dtype.type(1)
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
    softplus = 0.0  # prod(1 + e_i) - 1 over the rows since the last log1p, by pair()
    for i in range(0, n_quads, 4):
        if ahead and i + ahead < n_samples:
            stop = min(n_samples, i + ahead + 4) * n_features
            prefetch_rows(flat, (i + ahead) * n_features, stop, line)
        x0, x1, x2, x3 = X[i], X[i + 1], X[i + 2], X[i + 3]
        e0, linear0, r0 = row_terms(row_dot(x0, w, b), y[i], zero, one)
        e1, linear1, r1 = row_terms(row_dot(x1, w, b), y[i + 1], zero, one)
        e2, linear2, r2 = row_terms(row_dot(x2, w, b), y[i + 2], zero, one)
        e3, linear3, r3 = row_terms(row_dot(x3, w, b), y[i + 3], zero, one)
        softplus = pair(softplus, float(pair(pair(e0, e1), pair(e2, e3))))
        if (i + 4) % LOG1P_ROWS == 0:
            loss_sum += math.log1p(softplus)
            softplus = 0.0
        loss_sum += (float(linear0) + float(linear1)) + (float(linear2) + float(linear3))
        bias_sum += (float(r0) + float(r1)) + (float(r2) + float(r3))
        add_quad(partial, x0, x1, x2, x3, r0, r1, r2, r3)
        if (i + 4) % CHUNK_ROWS == 0:
            flush_chunk(partial, total)
    loss_sum += math.log1p(softplus)
    tail_loss, tail_bias = tail_rows(X, y, w, b, n_quads, partial)
    add_totals(gradient, total, partial)
    return loss_sum + tail_loss, bias_sum + tail_bias


def _variant(name: str, prefetch: Any) -> Any:
    """:func:`block_sums_body` compiled with ``prefetch_rows`` hinting by ``prefetch``
    (``None``: no hint, and none of its bookkeeping).

    A copy of the function whose globals name its own ``prefetch_rows``, under its
    own name: numba's cache keys on the name, so the two variants do not share
    (and overwrite) one cache entry.
    """

    hint_line = no_hint if prefetch is None else prefetch

    @numba.njit(inline="always", fastmath=_FAST, error_model="numpy")
    def rows_hint(flat: Any, start: Any, stop: Any, line: Any) -> None:  # pragma: no cover
        for k in range(start, stop, line):
            hint_line(flat, k)

    namespace = {**block_sums_body.__globals__, "prefetch_rows": rows_hint}
    if prefetch is None:
        # Nothing ahead: the hint's empty loop over the cache lines, which LLVM kept,
        # cost the float64 kernel some 5 % (Zen 4).
        namespace["PREFETCH_BYTES"] = 0
    function = types.FunctionType(block_sums_body.__code__, namespace, name)
    function.__qualname__ = name
    return jit(nogil=True, fastmath=_FAST, error_model="numpy")(function)


#: The block sums with the prefetch hint (the default) and without it (the fallback
#: where the hint does not compile, and the tests' reference).
block_sums = jit(nogil=True, fastmath=_FAST, error_model="numpy")(block_sums_body)
block_sums_plain = _variant("block_sums_plain", None)
#: The variant for this machine (:data:`PREFETCH_PAYS`): what ``handnet compile`` builds.
host_block_sums = block_sums if PREFETCH_PAYS else block_sums_plain


# --- float32: the exponentials vectorised -------------------------------------------------------


def _make_bits_to_float() -> Any:
    """A numba intrinsic ``bits_to_float(i)``: the float64 whose IEEE bits are the int64 ``i``.

    A reinterpretation (LLVM's ``bitcast``), which vectorises: how ``2^k`` is made
    below without a call.
    """
    from llvmlite import ir
    from numba.core import types as nb_types
    from numba.extending import intrinsic

    @intrinsic
    def bits_to_float(typingctx: Any, bits: Any) -> Any:  # pragma: no cover - compiled
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            return builder.bitcast(args[0], ir.DoubleType())

        return nb_types.float64(nb_types.int64), codegen

    return bits_to_float


#: ``log2(e)`` and ``ln 2`` split in two (Cody and Waite): ``k * LN2_HI`` is exact for
#: every ``|k| <= 1100``, so ``x - k ln 2`` loses nothing to cancellation.
LOG2_E = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
#: ``1/n!`` for the Taylor polynomial of ``e^r`` (degree 13: ``|r|^14/14! < 5e-18`` for
#: ``|r| <= ln(2)/2``, below half an ulp of ``e^r``).
_INVERSE_FACTORIALS = tuple(1.0 / math.factorial(n) for n in range(14))
(F2, F3, F4, F5, F6, F7, F8, F9, F10, F11, F12, F13) = _INVERSE_FACTORIALS[2:]


def exp_nonpositive_body(x: Any) -> Any:  # pragma: no cover - compiled
    r"""``exp(x)`` for float64 ``x <= 0`` (or NaN), written so that a loop of it vectorises.

    .. math::

        k = \operatorname{round}(x \log_2 e),\quad r = x - k \ln 2 \in
        [-\tfrac{\ln 2}{2}, \tfrac{\ln 2}{2}],\quad
        e^x = 2^k e^r,\quad e^r = \sum_{n=0}^{13} r^n / n!

    by Horner's rule; :math:`2^k` as two factors :math:`2^{\lfloor k/2 \rfloor}
    2^{k - \lfloor k/2 \rfloor}` built from their exponent bits, so that results
    below the smallest normal number (``x < -708``) underflow gradually as in the
    C library. Within 1 ulp of ``math.exp`` (``tests/test_kernels.py``); below
    -746 the result is 0, ``-inf`` gives 0 and NaN gives NaN. No branch: the
    C library's ``exp`` is a call, which no loop around it can vectorise.
    """
    clamped = x if x >= -746.0 else -746.0  # NaN compares false: clamped, restored below
    k = math.floor(clamped * LOG2_E + 0.5)
    r = (clamped - k * LN2_HI) - k * LN2_LO
    p = F13
    p = p * r + F12
    p = p * r + F11
    p = p * r + F10
    p = p * r + F9
    p = p * r + F8
    p = p * r + F7
    p = p * r + F6
    p = p * r + F5
    p = p * r + F4
    p = p * r + F3
    p = p * r + F2
    p = p * r + 1.0
    p = p * r + 1.0
    whole = np.int64(k)
    half = whole >> 1
    scaled = p * bits_to_float((half + 1023) << 52) * bits_to_float((whole - half + 1023) << 52)
    return scaled if x == x else x


#: Rows per block of :func:`vectorised_sums_body`: two 8-wide vectors of float64 exponentials.
EXP_BLOCK = 16


def vectorised_sums_body(
    X: Any, y: Any, w: Any, b: Any, gradient: Any
) -> Any:  # pragma: no cover - compiled
    r""":func:`block_sums_body` sixteen rows at a time, the exponentials vectorised.

    In float32 the quads' scalar ``exp`` calls bound the kernel (a row is only
    400 bytes for 100 features): here each block of :data:`EXP_BLOCK` rows takes
    its sixteen dot products, then their :math:`e^{-|z|}` in one vectorised loop
    (:func:`exp_nonpositive`, in float64), the residuals and the linear loss
    terms, one ``log1p`` for all sixteen softplus terms (pairwise,
    :math:`\log(1 + a) + \log(1 + b) = \log(1 + a + b + ab)`), and the gradient
    update four rows per pass, the rows still in L1. 1,000,000 x 100 float32 on
    a Zen 4 EPYC, one thread: 17.8 ms against the quads' 26.8 ms. In float64 the
    same form took 50 ms against the quads' 42 ms (there the memory reads and the
    update, not the exponentials, bound the kernel), so large float64 data keeps
    the quads; on data in cache it wins there too (the seed's 1000 x 4: 5.8 us
    against 12.4 us), and the seed's full-batch step takes it
    (``kernels.compiled_gd_step``).
    """
    n_samples, n_features = X.shape
    loss_sum = 0.0
    bias_sum = 0.0
    partial = np.zeros(n_features, X.dtype)
    total = np.zeros(n_features, np.float64)
    z = np.empty(EXP_BLOCK, np.float64)
    e = np.empty(EXP_BLOCK, np.float64)
    r = np.empty(EXP_BLOCK, X.dtype)
    n_whole = n_samples - n_samples % EXP_BLOCK
    for start in range(0, n_whole, EXP_BLOCK):
        for k in range(EXP_BLOCK):
            z[k] = float(row_dot(X[start + k], w, b))
        linear = 0.0
        residual = 0.0
        for k in range(EXP_BLOCK):  # vectorised: no call in it
            zk = z[k]
            ek = exp_nonpositive(-abs(zk))  # in (0, 1]: never overflows
            e[k] = ek
            target = float(y[start + k])
            rk = (1.0 if zk >= 0.0 else ek) / (1.0 + ek) - target
            r[k] = rk
            residual += rk
            linear += max(zk, 0.0) - target * zk
        width = EXP_BLOCK // 2
        while width:  # 16 -> 1 by pairs: every term >= 0, no cancellation
            for k in range(width):
                e[k] = pair(e[k], e[k + width])
            width //= 2
        loss_sum += math.log1p(e[0]) + linear
        bias_sum += residual
        for q in range(0, EXP_BLOCK, 4):
            x0, x1, x2, x3 = X[start + q], X[start + q + 1], X[start + q + 2], X[start + q + 3]
            add_quad(partial, x0, x1, x2, x3, r[q], r[q + 1], r[q + 2], r[q + 3])
        if (start + EXP_BLOCK) % CHUNK_ROWS == 0:
            flush_chunk(partial, total)
    tail_loss, tail_bias = tail_rows(X, y, w, b, n_whole, partial)
    add_totals(gradient, total, partial)
    return loss_sum + tail_loss, bias_sum + tail_bias


try:
    bits_to_float = _make_bits_to_float()
    exp_nonpositive = numba.njit(inline="always", fastmath=_FAST, error_model="numpy")(
        exp_nonpositive_body)
    #: The block sums with vectorised exponentials (:func:`vectorised_sums_body`): for
    #: float32 rows, and for the seed's full-batch step on small float64 data.
    vectorised_block_sums = jit(nogil=True, fastmath=_FAST, error_model="numpy")(
        vectorised_sums_body)
except Exception:  # an llvmlite/numba without these internals: the quads in float32 too
    vectorised_block_sums = host_block_sums


# --- a fused Adam step -----------------------------------------------------------------------


# error_model="numpy": a division by zero gives inf/nan as in NumPy instead of
# raising, which is also what lets LLVM vectorise the loop (about 10x faster).
@jit(error_model="numpy")
def fused_adam(
    param: Any, grad: Any, m: Any, v: Any, beta1: Any, one_minus_beta1: Any,
    beta2: Any, one_minus_beta2: Any, eps: Any, step_size: Any,
    inverse_bias_correction2_sqrt: Any, decay: Any,
) -> None:  # pragma: no cover - compiled
    """:class:`handnet.optim.optimizers.Adam`'s update in one pass, in the parameters' dtype."""
    for i in range(param.shape[0]):
        g = grad[i]
        m_i = beta1 * m[i] + one_minus_beta1 * g
        v_i = beta2 * v[i] + one_minus_beta2 * (g * g)
        m[i] = m_i
        v[i] = v_i
        denominator = np.sqrt(v_i) * inverse_bias_correction2_sqrt + eps
        param[i] = param[i] * decay - step_size * (m_i / denominator)


# --- a mini-batch's rows -------------------------------------------------------------------


@jit(nogil=True)
def gather_rows(source: Any, index: Any, out: Any) -> None:  # pragma: no cover - compiled
    """``out[k] = source[index[k]]``: a mini-batch's rows, four at a time.

    The rows are scattered through memory: copied one after the other, each waits
    for DRAM at its start; four copied side by side keep four reads in flight
    (60,000 x 784 float32 in batches of 128, one thread on a Zen 4 EPYC: 18.9 ms
    an epoch against 23.8 ms for ``np.take``; prefetch hints and eight rows at a
    time were slower). The caller checks the indices (the loop trusts them).
    """
    n_rows, n_columns = index.shape[0], source.shape[1]
    k = 0
    while k + 4 <= n_rows:
        row0, row1 = source[index[k]], source[index[k + 1]]
        row2, row3 = source[index[k + 2]], source[index[k + 3]]
        out0, out1, out2, out3 = out[k], out[k + 1], out[k + 2], out[k + 3]
        for j in range(n_columns):
            out0[j] = row0[j]
            out1[j] = row1[j]
            out2[j] = row2[j]
            out3[j] = row3[j]
        k += 4
    while k < n_rows:
        out[k, :] = source[index[k]]
        k += 1
