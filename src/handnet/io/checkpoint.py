"""Checkpoints during ``fit`` and resuming a run from one (:class:`CheckpointRun`).

``fit(..., checkpoint=path, checkpoint_every=k, resume=...)`` writes the run to a
model file as it trains (:mod:`handnet.io.describe`, :mod:`handnet.io.atomic`)
and continues a run from one (:mod:`handnet.io.schema` reads and checks it).

Resuming (``fit(..., resume=path)``) needs the fingerprint of the training data
that the file stores: every in-memory ``fit`` records it, so a file written by
``save`` after an interrupted ``fit`` resumes too, and a file without one (an
out-of-core fit without ``checkpoint=``, an older handnet) is refused rather
than resumed unchecked. Only ``max_iter`` and ``verbose`` may differ from the
saved run's hyperparameters (not ``random_state``: the run continues its saved
generator).

Writing a checkpoint every epoch of a fast run would cost more than the run (500
full-batch epochs went 5 x slower with ``checkpoint_every=1``), so the writes in
the middle of a run are throttled (:class:`WriteThrottle`): at most one every
:data:`MIN_INTERVAL` seconds, and never more than :data:`MAX_SHARE` of the time
trained since the last one. The checkpoint at the end of a run and on an
interrupt is always written, so a finished or interrupted run's file is
complete; a crash loses at most the last interval's epochs.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..exceptions import ModelFileError
from ..optim.schedules import follows_max_iter
from ..training import Trainer
from ..training.state import check_epoch_order
from .atomic import _write_atomic, check_writable
from .describe import _describe
from .format import PathLike, _Invalid, _little_endian
from .params import _encode_params, _NetworkEstimator
from .schema import _EstimatorPlan, _NetworkPlan, _read_plan

#: Hyperparameters that may differ between a run and its resumption: how long it
#: runs and what it prints. Not ``random_state``: the resumed run continues the
#: saved generator, so a model that said another seed would misreport its run.
_RESUMABLE_DIFFERENCES = frozenset({"max_iter", "verbose"})


#: Seconds of training at least between two checkpoints written during a run.
MIN_INTERVAL = 1.0

#: Most of the training time that checkpoints written during a run may take: one
#: that took ``c`` seconds to write is followed by ``c / MAX_SHARE`` seconds of
#: training at least before the next.
MAX_SHARE = 0.05


class WriteThrottle:
    """When a checkpoint in the middle of a run is due: rarely enough to cost <= 5 %.

    A write is due once :data:`MIN_INTERVAL` seconds have passed since the run
    started or the last write ended, and ``cost / MAX_SHARE`` seconds, where
    ``cost`` is how long that last write took.

    Parameters
    ----------
    clock : callable returning seconds
        ``time.monotonic`` by default (injected by the tests).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._next = clock() + MIN_INTERVAL

    def due(self) -> bool:
        """Whether a checkpoint written now keeps the limits."""
        return self.clock() >= self._next

    def wrote(self, started: float, finished: float) -> None:
        """A checkpoint was written from ``started`` to ``finished`` (``clock`` readings)."""
        cost = max(finished - started, 0.0)
        self._next = finished + max(MIN_INTERVAL, cost / MAX_SHARE)


def data_fingerprint(arrays: Sequence[NDArray[Any] | None]) -> str:
    """A SHA-256 over the dtypes, shapes and bytes of ``arrays`` (``None`` counts too)."""
    digest = hashlib.sha256()
    for array in arrays:
        if array is None:
            digest.update(b"none;")
            continue
        data = _little_endian(np.asarray(array)) if np.asarray(array).dtype.kind != "O" else None
        if data is None:
            digest.update(repr(np.asarray(array).tolist()).encode())
            continue
        digest.update(f"{data.dtype.str}{data.shape};".encode())
        digest.update(data.data)
    return digest.hexdigest()


#: Training data of at least this many bytes is fingerprinted on a helper thread
#: (:class:`_BackgroundFingerprint`); below it, where hashing takes under a millisecond,
#: starting a thread would cost more than it hides.
BACKGROUND_FINGERPRINT_BYTES = 4 << 20


class _BackgroundFingerprint:
    """:func:`data_fingerprint` of in-memory arrays, computed on a helper thread.

    SHA-256 reads some 1.8 GB/s (Zen 4): 0.44 s for 1,000,000 x 100 float64, which a
    checkpointed fit paid before its first epoch (56 % of a 20-iteration full-batch
    fit). ``hashlib`` releases the GIL while it hashes, so training runs meanwhile;
    the first checkpoint written (or the end of ``fit``) waits for the result. The
    arrays are only read, by both threads; a caller that changes ``X`` in place during
    ``fit`` (from a callback) changes what is hashed, as it changes what is trained on.
    """

    def __init__(self, data: Sequence[NDArray[Any] | None]) -> None:
        self._value: str | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(data,), name="handnet-fingerprint", daemon=True
        )
        self._thread.start()

    def _run(self, data: Sequence[NDArray[Any] | None]) -> None:
        try:
            self._value = data_fingerprint(data)
        except BaseException as error:  # raised again in the thread that asks for it
            self._error = error

    @property
    def value(self) -> str | None:
        """The fingerprint if the helper thread has finished without error, else ``None``."""
        return None if self._thread.is_alive() else self._value

    def wait(self) -> None:
        """Until the helper thread is done (what it raised stays for :meth:`result`)."""
        self._thread.join()

    def result(self) -> str:
        """The fingerprint, once the helper thread has it (raises what it raised)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


def _hashed_in_background(data: Sequence[NDArray[Any] | None]) -> bool:
    """Whether ``data`` is plain in-memory arrays, large enough to hash on a helper thread."""
    arrays = [array for array in data if array is not None]
    return all(type(array) in (np.ndarray, np.memmap) for array in arrays) and (
        sum(array.nbytes for array in arrays) >= BACKGROUND_FINGERPRINT_BYTES
    )


class CheckpointRun:
    """The checkpoint and resume side of one ``fit`` call (used by the models).

    ``fit(..., checkpoint=path, checkpoint_every=k, resume=...)`` creates one;
    it reads and checks the file to resume from (before anything is trained),
    restores the run into the model and its trainer, and gives the trainer the
    hook that writes checkpoints.
    """

    def __init__(
        self,
        checkpoint: str | None,
        checkpoint_every: int | None,
        resume_from: str | None,
        plan: _EstimatorPlan | None,
    ) -> None:
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.resume_from = resume_from
        self.plan = plan
        #: Whether this fit continues a saved run (read by ``fit`` before training).
        self.resuming = plan is not None
        self.validation_index: NDArray[np.intp] | None = None
        self._fingerprint: str | None = None
        self._fingerprinting: _BackgroundFingerprint | None = None
        #: The data of an in-memory fit without a checkpoint, until finish() decides.
        self._unhashed: Sequence[NDArray[Any] | None] | None = None

    @property
    def fingerprint(self) -> str | None:
        """The training data's :func:`data_fingerprint` (``None``: not taken); waits for it
        while a helper thread computes it."""
        pending = self._fingerprinting
        if pending is not None:
            # Kept pending until it has a value: a Ctrl-C during the wait, or the
            # hashing's error, leaves it for the next reader (save() after the fit).
            self._fingerprint = pending.result()
            self._fingerprinting = None
        return self._fingerprint

    @fingerprint.setter
    def fingerprint(self, value: str | None) -> None:
        self._fingerprinting = None
        self._fingerprint = value

    def __getstate__(self) -> dict[str, Any]:
        """What pickle and ``copy.deepcopy`` keep (a model in a callback, say): the
        fingerprint itself, waited for, not the helper thread computing it."""
        state = self.__dict__.copy()
        pending = state.pop("_fingerprinting", None)
        if pending is not None:
            pending.wait()
            state["_fingerprint"] = pending.value
        state["_fingerprinting"] = None
        return state

    @classmethod
    def start(
        cls,
        model: _NetworkEstimator,
        checkpoint: PathLike | None,
        checkpoint_every: int | None,
        resume: PathLike | bool | None,
    ) -> CheckpointRun:
        """Check the arguments, that the checkpoint can be written, and read the file to resume.

        Everything here happens before any training: a checkpoint path that cannot
        be written raises ``OSError`` naming it; a file to resume from must hold the
        training data's fingerprint and the same hyperparameters (only ``max_iter``
        and ``verbose`` may change).
        """
        _check_checkpoint_every(checkpoint_every, checkpoint)
        path = None if checkpoint is None else os.fspath(checkpoint)
        if path is not None:
            # Before anything is trained: a checkpoint that cannot be written
            # would otherwise fail only after the first epoch.
            check_writable(path, "checkpoint")
        source: str | None = None
        if resume is True:
            if path is None:
                raise ValueError("resume=True resumes from checkpoint=PATH, which is missing")
            # Resume if a previous run left a checkpoint, else start afresh: the same
            # call works for the first run and for every restart.
            source = path if os.path.exists(path) else None
        elif resume is not None and resume is not False:
            source = os.fspath(resume)
        plan = None if source is None else _read_resumable(model, source)
        every = None if checkpoint_every is None else int(checkpoint_every)
        return cls(path, every, source, plan)

    def validation_split(
        self, split: Callable[[Any, int], tuple[NDArray[np.intp], NDArray[np.intp]]]
    ) -> Callable[[Any, int], tuple[NDArray[np.intp], NDArray[np.intp]]]:
        """``split`` (the model's early-stopping split), or the resumed run's split."""

        def wrapped(y: Any, n_samples: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
            stored = (
                None
                if self.plan is None or self.plan.run is None
                else (self.plan.run["validation_index"])
            )
            if stored is not None:
                if len(stored) and (stored.min() < 0 or stored.max() >= n_samples):
                    raise ValueError(
                        f"the checkpoint's early-stopping split does not fit {n_samples} "
                        "samples: resume with the data the run was started on"
                    )
                val_index = stored.astype(np.intp)
                mask = np.ones(n_samples, dtype=bool)
                mask[val_index] = False
                train_index = np.flatnonzero(mask)
            else:
                train_index, val_index = split(y, n_samples)
            self.validation_index = val_index
            return train_index, val_index

        return wrapped

    def attach(
        self,
        model: _NetworkEstimator,
        trainer: Trainer,
        data: Sequence[NDArray[Any] | None],
        n_rows: int,
    ) -> None:
        """Restore a resumed run into ``model`` and ``trainer``; set up checkpoints.

        ``data`` is the training data as validated and encoded (features,
        targets, weights, validation set): its fingerprint is stored in every
        checkpoint and compared with the one of the run being resumed.
        ``n_rows`` is the number of rows an epoch visits (for ``t_``).
        """
        plan = self.plan
        in_memory = bool(data) and isinstance(data[0], np.ndarray)
        if plan is None and self.checkpoint is not None and _hashed_in_background(data):
            # Needed by the first checkpoint, not before: hashed while training runs.
            self._fingerprinting = _BackgroundFingerprint(data)
        elif self.checkpoint is not None or plan is not None:
            # Resuming compares it before anything trains.
            self.fingerprint = data_fingerprint(data)
        elif in_memory:
            # Hashed only if the fit is interrupted (finish): save() then writes a file
            # that resume can check, and an uninterrupted fit pays no pass over its data.
            self._unhashed = data
        if plan is not None:
            self._restore(model, trainer, plan, int(n_rows) if in_memory else None)
            self.plan = None  # restored: the file's arrays need not stay in memory
        self._model = model
        self._start_epoch = trainer.epoch
        self._start_scores = len(trainer.history.validation_score)
        self._n_rows = int(n_rows)
        self._throttle = WriteThrottle(self.clock)
        self._last_message: str | None = None
        # For save() after fit: a file of an interrupted run can then be resumed.
        model.__dict__["_checkpoint_run"] = self
        # A trainer that partial_fit reuses must not keep an earlier fit's hook.
        trainer.checkpoint = self._write if self.checkpoint is not None else None
        trainer.checkpoint_every = self.checkpoint_every

    def _restore(
        self,
        model: _NetworkEstimator,
        trainer: Trainer,
        plan: _EstimatorPlan,
        n_rows: int | None,
    ) -> None:
        """Restore ``plan`` after checking it against this fit's data.

        ``n_rows`` is the number of rows an epoch visits for in-memory data
        (``None`` for out-of-core data, whose interrupted epoch lists blocks:
        the trainer checks those against the blocks).
        """
        source = self.resume_from
        network = model.network_
        if network.dtype != plan.network.dtype:
            raise ValueError(
                f"the run in {source!r} trained in {plan.network.dtype}, but X is "
                f"{network.dtype}: resume with the data the run was started on"
            )
        if network.config() != plan.network.layers:
            raise ValueError(
                f"the network in {source!r} has layers {plan.network.layers}, but this data "
                f"gives {network.config()}: resume with the data the run was started on"
            )
        stored = None if plan.run is None else plan.run["fingerprint"]
        if stored is not None and stored != self.fingerprint:
            raise ValueError(
                f"the data differs from the data the run in {source!r} was trained on: "
                "resume with the same X, y, sample_weight and validation_data"
            )
        fitted = plan.fitted
        classes = np.asarray(getattr(model, "classes_", None))
        if "classes_" in fitted and not np.array_equal(fitted["classes_"], classes):
            raise ValueError(
                f"the run in {source!r} has classes {fitted['classes_'].tolist()}, but y has "
                f"{classes.tolist()}"
            )
        assert plan.training is not None
        history = plan.training["history"]
        if history["validation_score"] and not history.get("validation_loss"):
            # Written when early stopping watched the validation accuracy: its counter
            # and best value are an accuracy's, not the validation loss's it now watches.
            raise ModelFileError(
                f"cannot resume from {source!r}: its run was written by an older handnet whose "
                "early stopping watched the validation accuracy, and cannot continue under "
                "today's rule (the validation loss); load() it to use the model, or start "
                "the fit afresh"
            )
        try:
            if n_rows is not None:
                # The interrupted epoch's order indexes the rows (by compiled
                # kernels too, unchecked): it must be a permutation of them.
                check_epoch_order(plan.training["progress"], np.arange(n_rows))
            trainer.load_state_dict(plan.training)
            plan.network.restore_into(network)
        except (ValueError, _Invalid) as error:
            raise ModelFileError(f"cannot resume from {source!r}: {error}") from None
        model._rng = trainer.rng
        for name in ("loss_curve_", "validation_scores_", "t_", "n_iter_"):
            value = fitted[name]
            setattr(model, name, list(value) if isinstance(value, list) else value)
        for name in ("best_loss_", "best_validation_score_", "best_epoch_"):
            if name in fitted:
                setattr(model, name, fitted[name])
        validation_losses = fitted.get("validation_loss_curve_")
        model.validation_loss_curve_ = (
            None if validation_losses is None else list(validation_losses)
        )
        if model.validation_scores_ is None and trainer.history.validation_score:
            model.validation_scores_ = []
            model.validation_loss_curve_ = []

    def finish(self, trainer: Trainer) -> None:
        """When ``fit`` ends: fingerprint the data of an interrupted run, then let it go.

        The run stays with the model (for ``save``), which must not keep the training
        data alive, nor pay a pass over it when nothing will resume from it.
        """
        # A helper thread still hashing finishes now, so that fit returns with no
        # thread reading the caller's arrays. What the hashing raised is left for
        # whoever needs the fingerprint (a checkpoint write, save()): raised here, in
        # fit's finally, it would replace the error that ended training.
        if self._fingerprinting is not None:
            self._fingerprinting.wait()
        data, self._unhashed = self._unhashed, None
        if data is not None and trainer.interrupted and self.fingerprint is None:
            self.fingerprint = data_fingerprint(data)

    def remaining_epochs(self, model: _NetworkEstimator, trainer: Trainer) -> int:
        """Epochs left for this fit: all of ``max_iter``, or what a resumed run lacks."""
        if not self.resuming:
            return int(model.max_iter)
        if trainer.converged and not trainer.interrupted:
            return 0
        return max(int(model.max_iter) - trainer.epoch, 0)

    def _fitted_now(self, model: _NetworkEstimator, trainer: Trainer) -> dict[str, Any]:
        """The fitted attributes as ``fit`` will leave them, at this point of the run.

        ``fit`` updates them when training ends; a checkpoint written before
        that combines the model's values from before the run with the trainer's.
        """
        history = trainer.history
        done = trainer.epoch - self._start_epoch
        losses = [float(v) for v in model.loss_curve_]
        losses += [float(v) for v in history.loss[len(history.loss) - done :]] if done else []
        fitted: dict[str, Any] = {
            "loss_curve_": losses,
            "n_iter_": trainer.epoch,
            "t_": int(model.t_) + done * self._n_rows,
        }
        if losses:
            fitted["best_loss_"] = min(losses)
        scores = model.validation_scores_
        validation_losses = None
        if scores is not None:
            scores = [float(v) for v in scores]
            scores += [float(v) for v in history.validation_score[self._start_scores :]]
            earlier = getattr(model, "validation_loss_curve_", None) or []
            validation_losses = [float(v) for v in earlier]
            validation_losses += [
                float(v) for v in history.validation_loss[self._start_scores :]
            ]
            if len(validation_losses) != len(scores):
                validation_losses = None
            elif not trainer.finished:
                fitted["best_epoch_"] = fitted["best_validation_score_"] = None
            elif history.best_epoch is not None:
                # The epoch this fit keeps, its parameters restored by now (see
                # handnet.models.records.record_best_epoch); before the end a checkpoint
                # holds the current parameters and names no kept epoch.
                best = len(validation_losses) - len(history.validation_loss) + history.best_epoch
                fitted["best_epoch_"] = best
                fitted["best_validation_score_"] = scores[best - 1]
        fitted["validation_scores_"] = scores
        fitted["validation_loss_curve_"] = validation_losses
        return fitted

    #: The throttle's clock (``time.monotonic``; the tests inject their own).
    clock: Callable[[], float] = staticmethod(time.monotonic)

    def _write(self, trainer: Trainer) -> str | None:
        """The trainer's checkpoint hook: write the run now, unless throttled.

        The end of a run and an interrupt always write; a checkpoint due in the
        middle of a run is skipped while :class:`WriteThrottle` says it is too soon.
        Returns the line for the user about the file as it is on disk.
        """
        model = self._model
        assert self.checkpoint is not None
        if not (trainer.finished or trainer.interrupted or self._throttle.due()):
            return self._last_message
        started = self._throttle.clock()
        arrays: dict[str, NDArray[Any]] = {}
        content = _describe(model, arrays, True, self._fitted_now(model, trainer), self)
        _write_atomic(self.checkpoint, content, arrays)
        self._throttle.wrote(started, self._throttle.clock())
        self._last_message = (
            f"Checkpoint saved to {self.checkpoint!r} (epoch {trainer.epoch}); continue with "
            f"fit(X, y, checkpoint={self.checkpoint!r}, resume=True)."
        )
        return self._last_message

    _model: _NetworkEstimator
    _throttle: WriteThrottle
    _last_message: str | None
    _start_epoch: int
    _start_scores: int
    _n_rows: int


def _check_checkpoint_every(checkpoint_every: int | None, checkpoint: PathLike | None) -> None:
    """``checkpoint_every`` must be an integer >= 1, given with a ``checkpoint`` path."""
    if checkpoint_every is not None:
        if isinstance(checkpoint_every, bool) or not isinstance(
            checkpoint_every, (int, np.integer)
        ):
            raise TypeError(f"checkpoint_every must be an integer, got {checkpoint_every!r}")
        if checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every!r}")
        if checkpoint is None:
            raise ValueError("checkpoint_every needs checkpoint=PATH, the file to write")


def _read_resumable(model: _NetworkEstimator, source: str) -> _EstimatorPlan:
    """The run in ``source``, checked to be one that ``model`` can resume."""
    read = _read_plan(source)
    if not isinstance(read, _EstimatorPlan) or read.cls is not type(model):
        found = (
            "a Sequential network" if isinstance(read, _NetworkPlan) else f"a {read.cls.__name__}"
        )
        raise ModelFileError(f"{source!r} holds {found}; it cannot resume a {type(model).__name__}")
    if read.training is None:
        raise ModelFileError(
            f"{source!r} was saved without its training state (training_state=False): there "
            "is nothing to resume"
        )
    if read.run is None or read.run["fingerprint"] is None:
        raise ModelFileError(
            f"{source!r} holds no fingerprint of the data its run was trained on, so resuming "
            "could not check that the data is the same (save() records it only for a fit that "
            "was interrupted, and fit(..., checkpoint=PATH) always; a finished fit saved with "
            "save(), an out-of-core fit without checkpoint=PATH and files of older handnet have "
            "none): continue it with load() and partial_fit or warm_start, or train again with "
            "fit(..., checkpoint=PATH), whose file can be resumed"
        )
    _compare_params(model, read, source)
    return read


def _normalized(value: Any) -> Any:
    """An encoded hyperparameter with tuples as lists (``(10,)`` and ``[10]`` agree)."""
    if isinstance(value, dict):
        if set(value) == {"$tuple"}:
            return _normalized(value["$tuple"])
        return {k: _normalized(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


def _compare_params(model: _NetworkEstimator, plan: _EstimatorPlan, source: str) -> None:
    mine, _ = _encode_params(model)
    theirs = plan.raw_params
    different = sorted(
        name
        for name in set(mine) | set(theirs)
        if name not in _RESUMABLE_DIFFERENCES
        and _normalized(mine.get(name)) != _normalized(theirs.get(name))
    )
    if different:
        details = ", ".join(
            f"{name}={theirs.get(name)!r} there but {mine.get(name)!r} here" for name in different
        )
        raise ValueError(
            f"cannot resume from {source!r}: the run was trained with other hyperparameters "
            f"({details}). Resume with the same settings (only max_iter and verbose may change)."
        )
    if mine.get("max_iter") != theirs.get("max_iter") and follows_max_iter(
        getattr(model, "schedule", None)
    ):
        raise ValueError(
            f"cannot resume from {source!r} with max_iter={mine.get('max_iter')!r}: the run's "
            f"cosine schedule anneals over its max_iter={theirs.get('max_iter')!r} epochs, and "
            "another max_iter would move the learning rate of every epoch. Resume with "
            f"max_iter={theirs.get('max_iter')!r}, or give the schedule a period of its own "
            "(CosineAnnealing(period=...))."
        )
