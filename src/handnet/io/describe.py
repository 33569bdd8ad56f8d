"""Describing what to save: a model or network as a description's content and its arrays.

:func:`_describe` turns a ``Sequential`` or a registered estimator into the
``content`` of a model file (see :mod:`handnet.io.format`): the network's layers
and parameters, the hyperparameters (:mod:`handnet.io.params`), the fitted
attributes, the trainer's state and the run's split and data fingerprint, with
every array moved into ``arrays`` and replaced by a ``{"$array": name}``
reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from ..nn.network import Sequential
from ..training import Trainer
from ..training.state import PLAIN_LEAVES
from .format import MODEL_TYPES, _Invalid
from .params import _encode_params, _NetworkEstimator
from .schema import _check_label_values


class _Run(Protocol):
    """What a file records of a training run (a :class:`~handnet.io.checkpoint.CheckpointRun`)."""

    validation_index: NDArray[np.intp] | None
    fingerprint: str | None


def _describe(
    model: Any,
    arrays: dict[str, NDArray[Any]],
    training_state: bool,
    fitted_overrides: Mapping[str, Any] | None = None,
    run: _Run | None = None,
) -> dict[str, Any]:
    import handnet

    if isinstance(model, Sequential):
        content = {"type": "Sequential", "network": _describe_network(model, arrays)}
    elif MODEL_TYPES.get(type(model).__name__) is type(model):
        content = _describe_estimator(model, arrays, training_state, fitted_overrides, run)
    else:
        raise _not_savable(model)
    return {"handnet_version": handnet.__version__, **content}


def _not_savable(model: Any) -> TypeError:
    cls = type(model)
    name = f"{cls.__module__}.{cls.__qualname__}"
    hint = ""
    if cls.__module__.startswith("handnet.sklearn"):
        # Same class names as handnet's own models: say which one this is, and what works.
        name = f"handnet.sklearn.{cls.__qualname__}"
        hint = (
            " (the scikit-learn drop-ins are saved as scikit-learn models are: with "
            "pickle or joblib, from a trusted source only)"
        )
    return TypeError(
        f"handnet.save writes handnet's {sorted(MODEL_TYPES)} models and Sequential "
        f"networks, not {name}{hint}"
    )


def _tree_with_array_refs(value: Any, name: str, arrays: dict[str, NDArray[Any]]) -> Any:
    """``value`` with every array moved into ``arrays`` and replaced by a reference."""
    if type(value) in PLAIN_LEAVES:  # most leaves (a history's floats): before the ABCs
        return value
    if isinstance(value, np.ndarray):
        arrays[name] = value
        return {"$array": name}
    if isinstance(value, Mapping):
        return {str(k): _tree_with_array_refs(v, f"{name}.{k}", arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if set(map(type, value)) <= PLAIN_LEAVES:  # a history's floats: one C-level pass
            return list(value)
        return [_tree_with_array_refs(v, f"{name}.{i}", arrays) for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _describe_network(network: Sequential, arrays: dict[str, NDArray[Any]]) -> dict[str, Any]:
    arrays["parameters"] = network.flat_parameters
    description: dict[str, Any] = {
        "dtype": str(network.dtype),
        "layers": network.config(),
        "parameters": {"$array": "parameters"},
    }
    buffers = network.buffers()
    if any(buffers):  # written only by networks that keep some: older files have none
        described = []
        for i, layer_buffers in enumerate(buffers):
            entry = {}
            for name, value in layer_buffers.items():
                arrays[f"buffers.{i}.{name}"] = value
                entry[name] = {"$array": f"buffers.{i}.{name}"}
            described.append(entry)
        description["buffers"] = described
    return description


def _describe_classes(classes: NDArray[Any], arrays: dict[str, NDArray[Any]]) -> Any:
    """``classes_``: numbers of one dtype as an array, other labels as JSON values.

    Raises
    ------
    ValueError
        Labels that load would refuse (checked by the rule load applies,
        :func:`~handnet.io.schema._check_label_values`), e.g. bytes or tuples.
    """
    if classes.dtype.kind in "biuf":
        arrays["classes"] = classes
        return {"$array": "classes"}
    # An object array keeps NumPy scalars (np.int64 labels) as they are: written as the
    # Python numbers and strings they stand for.
    values = [v.item() if isinstance(v, np.generic) else v for v in classes.tolist()]
    try:
        _check_label_values(values)
    except _Invalid as error:
        raise ValueError(f"cannot save these classes: {error}") from None
    # The width in characters, as load reads it (a byte-swapped ">U5" is "<U5" there).
    kind = f"<U{classes.dtype.itemsize // 4}" if classes.dtype.kind == "U" else "object"
    return {"dtype": kind, "values": values}


def _describe_estimator(
    model: _NetworkEstimator,
    arrays: dict[str, NDArray[Any]],
    training_state: bool,
    fitted_overrides: Mapping[str, Any] | None,
    run: _Run | None,
) -> dict[str, Any]:
    name = type(model).__name__
    if MODEL_TYPES.get(name) is not model.__class__:
        raise _not_savable(model)
    model._check_is_fitted()
    params, dropped = _encode_params(model)
    # During fit (a checkpoint) the overrides hold what fit has not set yet.
    overrides = dict(fitted_overrides or {})
    fitted = _describe_fitted(model, overrides, arrays)
    trainer: Trainer | None = getattr(model, "_trainer", None)
    training = None
    if training_state and trainer is not None:
        training = _tree_with_array_refs(trainer.state_dict(), "training", arrays)
    run_info = None if training is None else _describe_run(model, run, arrays)
    return {
        "type": name,
        "params": params,
        "dropped_params": dropped,
        "network": _describe_network(_fitted_value(model, overrides, "network_"), arrays),
        "fitted": fitted,
        "training": training,
        "run": run_info,
    }


def _fitted_value(model: _NetworkEstimator, overrides: Mapping[str, Any], name: str) -> Any:
    """The fitted attribute ``name``: the override if there is one, else the model's."""
    return overrides[name] if name in overrides else getattr(model, name)


def _describe_fitted(
    model: _NetworkEstimator, overrides: Mapping[str, Any], arrays: dict[str, NDArray[Any]]
) -> dict[str, Any]:
    """The fitted attributes (``classes_`` as an array, when numeric, into ``arrays``)."""

    def attribute(name: str) -> Any:
        return _fitted_value(model, overrides, name)

    scores = attribute("validation_scores_")
    fitted: dict[str, Any] = {
        "n_features_in_": int(attribute("n_features_in_")),
        "loss_curve_": [float(v) for v in attribute("loss_curve_")],
        "validation_scores_": None if scores is None else [float(v) for v in scores],
        "n_iter_": int(attribute("n_iter_")),
        "t_": int(attribute("t_")),
    }
    for optional in ("best_loss_", "best_validation_score_", "best_epoch_"):
        # An override of None: the run names no such value yet (a mid-run checkpoint).
        value = attribute(optional) if optional in overrides or hasattr(model, optional) else None
        if value is not None:
            fitted[optional] = int(value) if optional == "best_epoch_" else float(value)
    validation_losses = (
        overrides["validation_loss_curve_"]
        if "validation_loss_curve_" in overrides
        else getattr(model, "validation_loss_curve_", None)
    )
    if validation_losses is not None:
        fitted["validation_loss_curve_"] = [float(v) for v in validation_losses]
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        fitted["feature_names_in_"] = [str(n) for n in names]
    preprocessing = getattr(model, "preprocessing_", None)
    if preprocessing is not None:
        # How the training CSV was read and preprocessed (handnet train): JSON values only.
        fitted["preprocessing_"] = preprocessing
    if hasattr(model, "classes_"):
        fitted["classes_"] = _describe_classes(np.asarray(model.classes_), arrays)
    if hasattr(model, "n_outputs_"):
        fitted["n_outputs_"] = int(model.n_outputs_)
        fitted["_y_ndim"] = int(getattr(model, "_y_ndim", 1))
    sample_shape = getattr(model, "_sample_shape", None)
    if sample_shape is not None:
        fitted["_sample_shape"] = [int(size) for size in sample_shape]
    return fitted


def _describe_run(
    model: _NetworkEstimator, run: _Run | None, arrays: dict[str, NDArray[Any]]
) -> dict[str, Any]:
    """The run's early-stopping split (into ``arrays``) and its data's fingerprint."""
    run = run if run is not None else getattr(model, "_checkpoint_run", None)
    split = None if run is None else run.validation_index
    return {
        "validation_index": None
        if split is None
        else _tree_with_array_refs(split.astype(np.int64), "run.validation_index", arrays),
        "fingerprint": None if run is None else run.fingerprint,
    }
