"""The loss of weighted mini-batches that estimates the whole data set's weighted mean."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..nn.losses import Loss

Array = NDArray[np.floating]


class _DatasetWeightedLoss(Loss):
    r"""Weighted mini-batches that estimate the whole data set's weighted mean loss.

    The objective is :math:`\sum_i s_i \ell_i / \sum_i s_i` over *all* training
    rows. A loss normalised by each batch's own weight sum would cancel the
    weights of one-row batches (SGD, ``batch_size=1``: :math:`s_i\ell_i/s_i`) and
    divide by zero on a batch whose weights are all 0. Here the gradient on a
    batch :math:`B` is that of :math:`\sum_{i\in B} s_i \ell_i / (|B|\,\bar s)`
    with :math:`\bar s` the mean weight over the data set: an unbiased estimate
    of the full gradient, and exactly it for a full batch. The value returned is
    the batch's weighted mean loss (0 for an all-zero batch), which is what the
    training loop averages into the epoch's loss.
    """

    def __init__(self, inner: Loss, n_samples: int, mean_weight: float) -> None:
        self.inner = inner
        self.name = inner.name
        #: Rows of the training set and their mean weight :math:`\bar s` (for
        #: out-of-core data counted block by block, not from one array).
        self.n_samples = int(n_samples)
        self.mean_weight = float(mean_weight)

    @classmethod
    def wrap(cls, inner: Loss, sample_weight: Array | None) -> Loss:
        """``inner`` itself when there are no weights, else the wrapper."""
        if sample_weight is None:
            return inner
        return cls(inner, len(sample_weight), float(np.mean(sample_weight, dtype=np.float64)))

    def __call__(
        self, logits: Array, targets: Array, sample_weight: Array | None = None
    ) -> tuple[float, Array]:
        if sample_weight is None or len(sample_weight) == self.n_samples:
            return self.inner(logits, targets, sample_weight)  # the full batch: exact
        batch_weight = float(np.sum(sample_weight, dtype=np.float64))
        if batch_weight <= 0.0:
            _, dlogits = self.inner(logits, targets, None)
            dlogits[...] = 0.0
            return 0.0, dlogits
        loss, dlogits = self.inner(logits, targets, sample_weight)
        dlogits *= dlogits.dtype.type(batch_weight / (len(sample_weight) * self.mean_weight))
        return loss, dlogits

    def value(self, logits: Array, targets: Array, sample_weight: Array | None = None) -> float:
        return self.inner.value(logits, targets, sample_weight)

    def link(self, logits: Array) -> Array:
        return self.inner.link(logits)

    def __repr__(self) -> str:
        return repr(self.inner)
