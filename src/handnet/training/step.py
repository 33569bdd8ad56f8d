"""One optimisation step on a batch: forward, loss, backward, penalty, clipping, update."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..data import blocks
from ..data.streaming import RowBlocks
from ..nn.losses import Loss
from ..nn.network import Sequential
from ..nn.penalties import L2, Penalty, as_penalty
from ..optim.optimizers import Optimizer

Array = NDArray[np.floating]


def clip_gradient_norm(gradients: Array, max_norm: float) -> float:
    r"""Rescale ``gradients`` in place so that :math:`\lVert g\rVert_2 \le` ``max_norm``.

    Returns the norm before clipping.
    """
    norm = float(np.sqrt(np.dot(gradients, gradients)))
    if norm > max_norm:
        gradients *= gradients.dtype.type(max_norm / (norm + 1e-12))
    return norm


class Step:
    """The pieces of one optimisation step, and what they need: network, loss, optimizer.

    :meth:`compute_gradients` does forward, loss, backward and penalty;
    :meth:`update` clips the gradient and lets the optimizer step. A large batch
    goes to the block-wise engine of :mod:`handnet.data.blocks`, made on first use and
    kept (closed between fits, by :meth:`close_engine`).
    """

    def __init__(
        self,
        network: Sequential,
        loss: Loss,
        optimizer: Optimizer,
        penalty: Penalty | float | None,
        clip_norm: float | None,
    ) -> None:
        self.network = network
        self.loss = loss
        self.optimizer = optimizer
        #: The penalty on the weights (a number is an L2 strength; ``None``: none).
        self.penalty = as_penalty(penalty)
        #: The last batch's penalty term, which ``history.data_loss`` leaves out.
        self.last_penalty: float | None = None
        self.clip_norm = clip_norm
        self.engine: blocks.FullBatchGradient | None = None
        #: What the optimizer updates: the network's one flat parameter vector.
        self.parameter_pairs = [(network.flat_parameters, network.flat_gradients)]

    @property
    def l2(self) -> float:
        """The L2 strength, for the lean kernels that know no other penalty (0: none)."""
        penalty = self.penalty
        if penalty is None:
            return 0.0
        if type(penalty) is not L2:
            raise TypeError(f"the lean kernels apply only an L2 penalty, not {penalty!r}")
        return penalty.alpha

    @l2.setter
    def l2(self, alpha: float) -> None:
        self.penalty = L2(alpha)

    @property
    def penalty_is_l2(self) -> bool:
        """Whether the penalty is none or exactly :class:`L2` (what the lean kernels know)."""
        return self.penalty is None or type(self.penalty) is L2

    def __getstate__(self) -> dict[str, Any]:
        """Without the block engine and its threads (made again on first use)."""
        state = self.__dict__.copy()
        state["engine"] = None
        del state["parameter_pairs"]  # views of the network's flat vectors: made anew
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        network = self.network  # restored first: it holds no reference to the step
        self.parameter_pairs = [(network.flat_parameters, network.flat_gradients)]

    def compute_gradients(
        self,
        X: Array | RowBlocks,
        Y: Array | None,
        sample_weight: Array | None = None,
        training: bool = True,
    ) -> float:
        """Forward, loss, backward and penalty on one batch; returns the loss.

        See :meth:`Trainer.compute_gradients <handnet.training.Trainer.compute_gradients>`.
        """
        network = self.network
        plain_loss = self._blockable_loss(X, sample_weight, training)
        if plain_loss is not None:
            engine = self.full_batch_engine()
            if isinstance(X, RowBlocks) and X.is_dask:
                # Summed on the Dask workers, each block as the engine sums it here.
                from ..data.cluster import dask_full_batch

                loss = dask_full_batch(network, X, plain_loss, training, engine.block_bytes)
            else:
                loss = engine(X, Y, sample_weight, plain_loss, training)
        else:
            assert not isinstance(X, RowBlocks) and Y is not None
            logits = network.forward(X, training=training)
            loss, dlogits = self.loss(logits, Y, sample_weight)
            network.backward(dlogits)
        penalty = self.penalty
        if penalty is None or not penalty.alpha:  # no term: no pass over the weights
            self.last_penalty = None
            return loss
        self.last_penalty = penalty.add_to(network.weights, network.weight_gradients)
        return loss + self.last_penalty

    def _blockable_loss(
        self, X: Array | RowBlocks, sample_weight: Array | None, training: bool
    ) -> Loss | None:
        """The plain loss to sum block by block over ``X``, or ``None`` for the one-shot path.

        Blocks are for batches of at least :data:`handnet.data.blocks.MIN_BYTES` and for
        out-of-core data, when the network allows it (no dropout draws). A model's
        data-set-weighted loss (``models._DatasetWeightedLoss``, which has an
        ``inner`` loss) is its inner loss on the full data set, the only batch
        where the two agree.
        """
        if isinstance(X, RowBlocks):
            if not blocks.supports(self.network, training):
                raise ValueError(
                    "full-batch training on out-of-core data does not support dropout; "
                    "use mini-batches (batch_size=k) or dropout=0"
                )
        elif X.nbytes < blocks.MIN_BYTES or not blocks.supports(self.network, training):
            return None
        loss = self.loss
        inner = getattr(loss, "inner", None)
        if inner is None:
            return loss
        if isinstance(X, RowBlocks) or (
            sample_weight is not None and len(sample_weight) == getattr(loss, "n_samples", -1)
        ):
            return inner
        return None

    def full_batch_engine(self) -> blocks.FullBatchGradient:
        """The block-wise engine of this network (made on first use, closed when ``fit`` ends)."""
        engine = self.engine
        if engine is None or engine.network is not self.network:
            engine = self.engine = blocks.FullBatchGradient(self.network)
        return engine

    def close_engine(self) -> None:
        """Stop the engine's threads; it starts them again if it is used again."""
        if self.engine is not None:
            self.engine.close()

    def update(self) -> None:
        """Clip the gradient (with ``clip_norm``) and let the optimizer step."""
        if self.clip_norm is not None:
            clip_gradient_norm(self.network.flat_gradients, self.clip_norm)
        optimizer = self.optimizer
        assert isinstance(optimizer, Optimizer)
        optimizer.step(self.parameter_pairs)
