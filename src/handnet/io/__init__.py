"""Model files: save and load models and networks safely, and resumable checkpoints.

:func:`save` writes a model (``LogisticRegression``, ``SoftmaxRegression``,
``MLPClassifier``, ``MLPRegressor``) or a bare :class:`~handnet.nn.network.Sequential`
to one file; :func:`load` reads it back. A loaded model predicts bit for bit what
the saved one did, and (with its training state) continues training exactly as
the saved one would have: ``partial_fit``, or ``fit(..., resume=path)``.

The package's modules, each one concern, from the container up:

:mod:`~handnet.io.format`
    The container: the ZIP archive of a JSON description and ``.npy`` arrays
    (the file format is described there), its limits (``MAX_*``), writing it
    and reading it back safely; the errors and JSON checks the others share.
:mod:`~handnet.io.atomic`
    Atomic writes through a temporary file, the clean-up of abandoned ones, and
    :func:`~handnet.io.atomic.check_writable`.
:mod:`~handnet.io.params`
    Hyperparameters: encoding ``get_params`` as JSON, decoding and checking it
    back into specs of handnet's registered optimizers, schedules and layers.
:mod:`~handnet.io.describe`
    What to save: a model or network as a description's content and its arrays.
:mod:`~handnet.io.schema`
    Checking a file's content (network, model, fitted attributes, training
    state, run) into a plan that nothing has been built from yet.
:mod:`~handnet.io.build`
    Building a ``Sequential`` or an estimator from a checked plan.
:mod:`~handnet.io.checkpoint`
    :class:`~handnet.io.checkpoint.CheckpointRun`: checkpoints during ``fit``
    and resuming a run from one.

Safety
------
Nothing in a file is executed or unpickled: arrays are read with
``allow_pickle=False`` after their headers are checked against a whitelist of
dtypes, layers, models, optimizers, schedules and bit generators are built only
from whitelists of handnet's own classes. Everything is checked before anything
is built: the archive's structure and member sizes against the file's size (a
decompression bomb or a header declaring a huge array is refused without
reading it), the JSON's size and depth, both checksums, every key, type, shape
and dtype, that weights are finite, that the layers agree with each other, with
the hyperparameters and with the fitted attributes. Any problem raises
:class:`~handnet.exceptions.ModelFileError` (a ``ValueError``) saying what is
wrong. The checksums detect corruption, not forgery: anyone can write a file
with matching checksums, so only load models you trust to *behave* as you expect,
even though loading one cannot run code.

The checks bound what a file can make handnet do, as well as what it holds:
only a regular file is opened (a FIFO would block the reader forever); the
archive's end record must declare at most 256 members in a central directory
of bounded size before ``zipfile`` parses it; every size the description
declares (array shapes, the width of string class labels) must fit in what the
file can hold before anything is allocated; every field of a generator's state
is range-checked before NumPy's bit generators see it (they trust positions
such as MT19937's ``pos``); and an interrupted epoch's row order must be a
permutation of the data's rows before a resumed run indexes the data with it.
"""

from __future__ import annotations

import os
from typing import Any

from numpy.typing import NDArray

from ..exceptions import ModelFileError

# ``name as name``: re-exported, so that what was imported from handnet.io still is.
from .atomic import _write_atomic
from .atomic import check_writable as check_writable
from .build import _build_estimator, _build_sequential
from .checkpoint import CheckpointRun as CheckpointRun
from .checkpoint import data_fingerprint as data_fingerprint
from .describe import _describe
from .format import ARRAY_DTYPES as ARRAY_DTYPES
from .format import DESCRIPTION_MEMBER as DESCRIPTION_MEMBER
from .format import FORMAT, FORMAT_VERSION, PathLike, _bad, _Invalid, _read_archive
from .format import MAX_DESCRIPTION_BYTES as MAX_DESCRIPTION_BYTES
from .format import MAX_DIRECTORY_ENTRY as MAX_DIRECTORY_ENTRY
from .format import MAX_EXPANSION as MAX_EXPANSION
from .format import MAX_JSON_DEPTH as MAX_JSON_DEPTH
from .format import MAX_LAYER_WIDTH as MAX_LAYER_WIDTH
from .format import MAX_LAYERS as MAX_LAYERS
from .format import MAX_MEMBERS as MAX_MEMBERS
from .format import MAX_SETTING_LENGTH as MAX_SETTING_LENGTH
from .format import MODEL_TYPES as MODEL_TYPES
from .format import _canonical_json as _canonical_json
from .schema import _EstimatorPlan, _NetworkPlan, _plan, _read_plan

__all__ = ["FORMAT", "FORMAT_VERSION", "load", "save"]


def save(model: Any, path: PathLike, *, training_state: bool = True) -> None:
    """Write a fitted model or a ``Sequential`` network to ``path`` (a ``.npz`` file).

    Parameters
    ----------
    model : LogisticRegression, SoftmaxRegression, MLPClassifier, MLPRegressor or Sequential
        A model must be fitted.
    path : str or os.PathLike
        Written atomically (temporary file, then rename): an existing file is
        replaced only once the new one is complete. The name is used as given
        (``.npz`` is the customary extension).
    training_state : bool, default True
        Also store what continuing the training needs (optimizer moments, the
        generator's state, the epoch, ...), so that the loaded model's
        ``partial_fit`` or ``fit(..., resume=path)`` continues exactly. ``False``
        writes a smaller file for prediction (training would restart its
        optimizer).

    Raises
    ------
    TypeError
        ``model`` is of a type handnet cannot save.
    NotFittedError
        The model is not fitted.
    OSError
        ``path`` cannot be written (missing directory, no permission, disk
        full); the message names ``path``.
    ValueError
        The model holds something a model file cannot describe (a custom
        optimizer class, class labels that are neither numbers nor strings), or
        anything else :func:`load` would refuse in the file: the file written is
        read back and checked before it replaces ``path``, so save never leaves a
        file that load refuses.

    See Also
    --------
    load
    """
    arrays: dict[str, NDArray[Any]] = {}
    content = _describe(model, arrays, training_state)
    target = os.fspath(path)
    dropped = content.get("dropped_params", [])
    _write_atomic(
        target, content, arrays, check=lambda written: _check_loads(written, target, dropped)
    )


def _check_loads(written: str, target: str, dropped: list[str]) -> None:
    """Refuse the file :func:`save` has just written to ``written`` unless :func:`load` takes it.

    Runs load's every check, and builds the model, on the complete temporary file
    before it replaces ``target``. Whatever the writer and the reader come to
    disagree on then fails here, at save, and names the cause, not at a later load
    when the model is gone: save never leaves a file that load refuses.

    Parameters
    ----------
    written : str
        The temporary file.
    target : str
        The path the user asked for, which the message names.
    dropped : list of str
        The hyperparameters the file could not hold (loaded as their defaults): the
        likely cause, which the message names.

    Raises
    ------
    ValueError
        What load would refuse, and why.
    """
    try:
        content, budget = _read_archive(written)
        _build(_plan(content, budget))
    except (_Invalid, ModelFileError) as error:
        # The problem alone: the temporary file's name is save's own, not the user's.
        problem = str(error).removeprefix(str(_bad(written, ""))).replace(repr(written), "it")
        cause = (
            f"; a model file cannot hold the hyperparameters {dropped}, which load would "
            "read as their defaults"
            if dropped
            else ""
        )
        raise ValueError(
            f"cannot save the model to {target!r}: handnet.load would refuse the file "
            f"({problem}){cause}"
        ) from None


def load(path: PathLike) -> Any:
    """Read a model or network that :func:`save` wrote.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    LogisticRegression, SoftmaxRegression, MLPClassifier, MLPRegressor or Sequential
        Predicts bit for bit what the saved object did. A model saved with its
        training state continues training exactly (``partial_fit``; or
        ``fit(X, y, resume=path)`` to finish an interrupted ``fit``).

    Raises
    ------
    ModelFileError
        The file is missing, unreadable, truncated, corrupted, edited, of an
        unknown format version or type, or inconsistent in any way; the message
        says what is wrong. Nothing is built (and no code from the file runs)
        before every check has passed.
    """
    target = os.fspath(path)
    plan = _read_plan(target)
    try:
        return _build(plan)
    except _Invalid as error:
        raise _bad(target, str(error)) from None


def _build(plan: _NetworkPlan | _EstimatorPlan) -> Any:
    """The network or model of a checked ``plan``; ``_Invalid`` if it cannot be built."""
    try:
        if isinstance(plan, _NetworkPlan):
            return _build_sequential(plan)
        return _build_estimator(plan)
    except (ValueError, TypeError) as error:
        # A hyperparameter the model's own checks refuse (e.g. an unknown
        # activation name); nothing half-built escapes.
        raise _Invalid(f"the hyperparameters do not describe a valid model ({error})") from None

