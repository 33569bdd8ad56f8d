"""Early stopping's two ways of holding out rows: of in-memory data, of storage blocks.

Both draw from the estimator's generator, and both go through the checkpoint
run (:meth:`handnet.io.CheckpointRun.validation_split`), so that a resumed run
holds out the same rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..data.streaming import RowBlocks
from ..data.validation import unique_labels
from ..datasets._splits import stratified_counts

Split = tuple[NDArray[np.intp], NDArray[np.intp]]


def validation_split(
    y: Any, n_samples: int, fraction: float, rng: np.random.Generator, stratified: bool
) -> Split:
    """A random (``stratified`` for classifiers) split for early stopping: (train, held out)."""
    n_validation = max(1, round(fraction * n_samples))
    if n_samples - n_validation < 1:
        raise ValueError(
            f"validation_fraction={fraction} leaves no training samples out of {n_samples}"
        )
    if stratified:
        labels = np.asarray(y)
        classes = unique_labels(labels)
        members = [np.flatnonzero(labels == label) for label in classes]
        takes = stratified_counts(np.array([len(m) for m in members]), n_validation)
        val_parts = [rng.permutation(m)[:take] for m, take in zip(members, takes, strict=True)]
        val_index = np.sort(np.concatenate(val_parts))
    else:
        val_index = np.sort(rng.permutation(n_samples)[:n_validation])
    mask = np.ones(n_samples, dtype=bool)
    mask[val_index] = False
    return np.flatnonzero(mask), val_index


def split_blocks(
    data: RowBlocks, run: Any, fraction: float, rng: np.random.Generator
) -> tuple[RowBlocks, RowBlocks]:
    """Early stopping on streamed data: hold out whole storage blocks, drawn at random.

    About ``fraction`` (``validation_fraction``) of the blocks (at least one) are
    held out; their row indices go through the checkpoint ``run`` like an
    in-memory split, so a resumed run holds out the same blocks.
    """
    n_blocks = data.n_blocks
    if n_blocks < 2:
        raise ValueError(
            "early_stopping on out-of-core data holds out whole storage blocks, but X "
            "is a single block; pass validation_data=(X_val, y_val) or store X in "
            "smaller chunks"
        )
    starts = data.bounds[:-1]

    if round(fraction * n_blocks) < 1:
        # Holding out one whole block anyway would hold out far more than asked
        # (one block of two is half the data), so say so instead.
        raise ValueError(
            f"early_stopping on out-of-core data holds out whole storage blocks, but "
            f"validation_fraction={fraction} of X's {n_blocks} blocks is "
            "less than one block; raise validation_fraction, store X in smaller chunks, "
            "or pass validation_data=(X_val, y_val)"
        )

    def split(_: Any, n_samples: int) -> Split:
        n_held = min(n_blocks - 1, max(1, round(fraction * n_blocks)))
        held = np.sort(rng.permutation(n_blocks)[:n_held])
        mask = np.zeros(n_samples, dtype=bool)
        for index in held:
            start, stop = data.rows(int(index))
            mask[start:stop] = True
        return np.flatnonzero(~mask), np.flatnonzero(mask)

    _, val_index = run.validation_split(split)(None, data.n_rows)
    held = np.isin(starts, val_index)
    if held.all() or not held.any():
        raise ValueError("the early-stopping split must hold out some but not all blocks")
    blocks = np.arange(n_blocks, dtype=np.int64)
    return data.subset(blocks[~held]), data.subset(blocks[held])
