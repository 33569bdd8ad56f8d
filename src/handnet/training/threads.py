r"""BLAS threads by product size: one thread for small products, as many as set for large ones.

Multi-threaded BLAS splits each matrix product over its threads and waits for all
of them at the end. On a small product the split saves microseconds and the wait
costs them: waking the sleeping threads, and on a busy machine waiting for one
that the scheduler has taken off its core, for a time slice of milliseconds at
each of thousands of products. ``handnet demo --model mlp`` (600 x 64 x 64
products, 500 full-batch steps) took 29.9 s with two BLAS threads under load and
1.8 s with one (issue 18). Large products repay the split, loaded or not, as long
as each thread's share outlasts a time slice.

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

#: Products below this many floating-point operations run on one BLAS thread.
#: Measured on 2 cores (float32, medians of interleaved runs): 128 x 784 x 128
#: (25.7 MFLOP) ran 1.66 x faster on two threads on a quiet machine; 600 x 64 x 64
#: (4.9 MFLOP) ran slower on two (0.71 x) even on a quiet one, and 128 x 256 x 128
#: (8.4 MFLOP) at 0.44 x under load. The line sits between them, under the MLP
#: benchmark's products, which the second core speeds up.
PARALLEL_MIN_FLOPS = 2.0e7


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
