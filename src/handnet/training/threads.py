r"""BLAS threads by product size: one thread for small products, as many as set for large ones.

Multi-threaded BLAS splits each matrix product over its threads and waits for all
of them at the end. On a small product the split saves microseconds and the wait
costs them: waking the sleeping threads, and on a busy machine waiting for one
that the scheduler has taken off its core, for a time slice of milliseconds at
each of thousands of products. ``handnet demo --model mlp`` (600 x 64 x 64
products, 500 full-batch steps) took 29.9 s with two BLAS threads under load and
1.8 s with one (issue 18); an Adam epoch of 128 x 784 x 128 products, 7.1 s against
1.5 s. Large products repay the split, loaded or not, as long as each thread's
share outlasts a time slice.

The rule, for the training loop's epochs (:func:`blas_threads`): a step whose
largest dense-layer product costs fewer than :data:`PARALLEL_MIN_FLOPS`
floating-point operations (:math:`2 \times \text{rows} \times n_\text{in} \times
n_\text{out}`) runs BLAS on one thread; larger ones keep BLAS's threads as the
caller set them. The limit is process-wide while a fit runs (BLAS has one thread
count) and lifted when it ends (:class:`FitThreads`). Without ``threadpoolctl``
nothing is changed. Networks with convolutions are left alone: their estimators
already run BLAS on one thread and split the batch themselves
(:func:`handnet.nn.parallel.threads_over_samples`).
"""

from __future__ import annotations

import contextlib
from typing import Any

from ..nn.network import Sequential

#: Products below this many floating-point operations run on one BLAS thread: about the
#: size at which each of two threads' shares outlasts a time slice (some 5 ms).
#: Measured on a 2-core AMD EPYC (``python -m benchmarks.blas_threads --products
#: --load``, 2026-12-08): quiet, two threads took 0.50-0.70 x one thread's time at
#: every size from 6.4 MFLOP to 6.6 GFLOP; with a busy process per core the small
#: products were erratic (0.6-4.5 x) and 1.6 and 6.6 GFLOP took 0.82-0.91 x. A
#: training step's products are not back to back: between them the step's
#: single-threaded work lets BLAS's threads sleep, and each wake-up under load waits
#: for a time slice. One Adam epoch of 784-128-10 on 60,000 rows (128 x 784 x 128
#: products, 25.7 MFLOP; ``--workload mlp --load``) took 7.1 s with two threads under
#: load against 1.5 s with one, and 0.95 s against 1.07 s quiet. That second core's
#: 10-25 % on a quiet machine is not worth five times the time on a busy one.
PARALLEL_MIN_FLOPS = 1.0e9


def largest_product_flops(network: Sequential, rows: int) -> float:
    """Floating-point operations of the largest dense product of one step on ``rows`` rows.

    :math:`2 \\times \\text{rows} \\times \\max(n_\\text{in} n_\\text{out})` over the
    layers' two-dimensional weight matrices (forward; the backward products
    have the same size). 0 for a network without any.
    """
    sizes = [
        parameter.size
        for layer in network.layers
        for parameter in layer.parameters()
        if parameter.ndim == 2
    ]
    return 2.0 * rows * max(sizes, default=0)


def has_convolutions(network: Sequential) -> bool:
    """Whether a layer has parameters of more than two dimensions (convolution kernels)."""
    return any(
        parameter.ndim > 2 for layer in network.layers for parameter in layer.parameters()
    )


def blas_threads(network: Sequential, rows: int) -> int | None:
    """The BLAS threads for steps of ``rows`` rows: 1, or ``None`` to leave them as set.

    1 when the step's largest product (:func:`largest_product_flops`) is below
    :data:`PARALLEL_MIN_FLOPS`; ``None`` for larger products and for networks with
    convolutions (see the module's note).
    """
    if has_convolutions(network):
        return None
    return 1 if largest_product_flops(network, rows) < PARALLEL_MIN_FLOPS else None


class FitThreads:
    """The BLAS limit of one fit: set on its first epoch, lifted when it ends.

    Entering a thread limit costs tens of microseconds (threadpoolctl calls into
    each BLAS library): once per fit, not per epoch, where the seed's 5001 epochs
    of 40 microseconds would feel it.
    """

    def __init__(self) -> None:
        self._stack: contextlib.ExitStack | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"_stack": None}  # a fit's limit does not outlive it

    @property
    def entered(self) -> bool:
        """Whether this fit's limit has been decided (and set, if any)."""
        return self._stack is not None

    def enter(self, network: Sequential, rows: int) -> None:
        """Decide (once per fit) the BLAS threads for steps of ``rows`` rows, and set them."""
        if self._stack is not None:
            return
        stack = contextlib.ExitStack()
        if blas_threads(network, rows) == 1:
            # Imported here: handnet.data.blocks imports the training package.
            from ..data.blocks import single_threaded_blas

            stack.enter_context(single_threaded_blas())
        self._stack = stack

    def close(self) -> None:
        """Lift this fit's limit (restoring the caller's thread count)."""
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()
