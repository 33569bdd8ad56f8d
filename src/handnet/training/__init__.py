"""The training loop: batches, epochs, schedules, early stopping, and safety nets.

One optimisation step is the seed's recipe, on a batch of rows:

1. **forward** the batch through the network (logits),
2. **loss** and its gradient with respect to the logits,
3. **backward**: backpropagate into every parameter's gradient, add the L2 term,
4. **step**: let the optimizer update the parameters.

The batch regime is set by ``batch_size``:

* ``None``: full-batch gradient descent, one step per epoch on all the data
  (the seed's GD);
* ``1``: stochastic gradient descent, one example per step, the rows visited
  in a new random order every epoch (the seed's SGD);
* ``k``: mini-batches of ``k`` rows, reshuffled every epoch.

Rows are drawn by indexing (``X[order[i:i+k]]``, gathered into a buffer reused
all epoch); the caller's arrays are never shuffled or written to. All randomness
comes from the ``numpy.random.Generator`` the trainer is given.

Large and out-of-core data
--------------------------
The recipe does not change when the data is big; only where the rows come from:

* a batch of more than a few megabytes (a full batch, typically) gets its loss
  and gradient as a sum over cache-sized row blocks on several threads
  (:mod:`handnet.data.blocks`, from :meth:`Trainer.compute_gradients`): the same
  numbers, up to the order of the additions;
* out-of-core data (a :class:`~handnet.data.streaming.RowBlocks` over a memmap, zarr,
  h5py or Dask array) trains by :meth:`Trainer.run_stream_epoch`: storage blocks
  in a random order, rows shuffled within each block, the next block read in the
  background; its full batch is summed block by block, on the Dask workers for a
  Dask array (:mod:`handnet.data.cluster`).

Fast paths
----------
The seed's own model (one ``Dense(n, 1)`` layer, binary cross-entropy, plain
SGD, no clipping) spends most of a generic step on Python calls around tiny
arrays, so its full-batch steps and its per-example SGD epochs run in the lean
kernels of :mod:`handnet.training.kernels` instead: the same math, checked against the
generic step by the tests.

Safety nets
-----------
* **Ctrl-C**: the first interrupt stops training at the next step boundary
  (the model keeps every completed step and its history; a configured
  checkpoint is written); a second one raises ``KeyboardInterrupt`` at once.
  Where it stopped is reported as a warning on the ``handnet.training`` logger
  (printed to stderr when logging is not configured).
* **Divergence**: a non-finite loss or parameter stops training with a
  :class:`~handnet.exceptions.DivergenceError` and the last finite parameters.
* **Checkpoints**: :meth:`Trainer.state_dict` holds everything besides the
  network's parameters that decides the rest of the run (optimizer and
  schedule state, the generator's state, the epoch, the history, the
  early-stopping counters, and where an interrupted epoch stopped), so a run
  restored with :meth:`Trainer.load_state_dict` continues bit for bit as if
  it had never stopped. The ``checkpoint`` hook is called every
  ``checkpoint_every`` epochs, at the end and on an interrupt;
  :mod:`handnet.io` writes the files.

The package
-----------
One module a concern, :class:`Trainer` wiring them:

* :mod:`~handnet.training.history`: :class:`History`, :class:`EpochProgress`;
* :mod:`~handnet.training.step`: one optimisation step (:class:`~.step.Step`);
* :mod:`~handnet.training.fastpath`: the seed's model on :mod:`handnet.training.kernels`;
* :mod:`~handnet.training.loops`: one epoch, in batches, full batch or block by block;
* :mod:`~handnet.training.epochs`: training by epochs; :mod:`~handnet.training.lbfgs`:
  by L-BFGS;
* :mod:`~handnet.training.stopping`: the stopping rule and its warnings;
* :mod:`~handnet.training.safety`: Ctrl-C, divergence and its rollback;
* :mod:`~handnet.training.run_state`: the run's state for checkpoints;
* :mod:`~handnet.training.trainer`: :class:`Trainer`.
"""

from __future__ import annotations

from ..data.validation import all_finite
from ..nn.penalties import add_l2
from .history import EpochProgress, History
from .kernels import logistic_gd_step, logistic_sgd_epoch, numba_available
from .loops import iterate_minibatches
from .safety import INTERRUPTED_EVENT, logger
from .safety import InterruptGuard as _InterruptGuard
from .safety import divergence_message as _divergence_message
from .step import Array, clip_gradient_norm
from .stopping import Validation
from .trainer import Callback, CheckpointHook, Trainer

__all__ = [
    "INTERRUPTED_EVENT",
    "Array",
    "Callback",
    "CheckpointHook",
    "EpochProgress",
    "History",
    "Trainer",
    "Validation",
    "_InterruptGuard",
    "_divergence_message",
    "add_l2",
    "all_finite",
    "clip_gradient_norm",
    "iterate_minibatches",
    "logger",
    "logistic_gd_step",
    "logistic_sgd_epoch",
    "numba_available",
]
