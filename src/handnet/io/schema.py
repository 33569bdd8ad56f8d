"""Checking a model file's content: the network, the model, its fitted attributes and run.

:func:`_read_plan` reads a file (:mod:`handnet.io.format`) and checks every key,
type, shape and dtype of its content, that the weights are finite, that the
layers agree with each other, with the hyperparameters and with the fitted
attributes, and (through :mod:`handnet.training.state`) the trainer's state. What passes
becomes a plan: a :class:`_NetworkPlan` (a ``Sequential``) or an
:class:`_EstimatorPlan` (a model), which :mod:`handnet.io.build` turns into
objects and :mod:`handnet.io.checkpoint` resumes a run from. Nothing is built
before every check has passed.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..data.preprocessing import check_model_spec
from ..nn.layers import LAYERS, Shape, check_layer_configs
from ..nn.network import Sequential
from ..nn.penalties import PENALTIES
from ..optim.optimizers import resolve_optimizer
from ..training.state import check_trainer_state
from .format import (
    _HEX64,
    MAX_LAYERS,
    MODEL_TYPES,
    _bad,
    _check_keys,
    _Invalid,
    _is_int,
    _is_number,
    _read_archive,
    _require,
)
from .params import (
    _decode_param,
    _NetworkEstimator,
    _ObjectSpec,
    _optimizer_type_name,
    _schedule_type_name,
)

_NETWORK_DTYPES: dict[str, np.dtype[Any]] = {
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
}

Array = NDArray[np.floating]


def _read_plan(path: str) -> _NetworkPlan | _EstimatorPlan:
    """The checked plan of the model file at ``path``; ``ModelFileError`` if anything is wrong."""
    content, budget = _read_archive(path)
    try:
        return _plan(content, budget)
    except _Invalid as error:
        raise _bad(path, str(error)) from None


def _plan(content: Mapping[str, Any], budget: int) -> _NetworkPlan | _EstimatorPlan:
    """The checked plan of a file's ``content``, as :func:`~handnet.io.format._read_archive`
    returns it with its ``budget``.

    Raises
    ------
    _Invalid
        Anything in ``content`` is wrong; the message says what.
    """
    try:
        return _check_content(content, budget)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as error:
        # Every field is checked before use; this net only turns a check that
        # was missed into the documented error instead of a traceback.
        raise _Invalid(f"malformed content ({type(error).__name__}: {error})") from None


# --- the network ----------------------------------------------------------------------------


def _check_layers(
    layers: Any, n_parameters: int, n_features: int | None = None
) -> tuple[list[dict[str, Any]], Shape | None]:
    """The layer configs, checked, with the parameter count they imply, and the output shape.

    ``n_features`` (a fitted model's ``n_features_in_``) is the network's input width
    when known: the layers must then chain from it.
    """
    try:
        shape, total = check_layer_configs(
            layers, None if n_features is None else (n_features,), "layer", MAX_LAYERS
        )
    except ValueError as error:
        raise _Invalid(str(error)) from None
    _require(
        total == n_parameters,
        f"the layers have {total} parameters but the parameter vector has {n_parameters}",
    )
    return layers, shape


@dataclass
class _NetworkPlan:
    dtype: np.dtype[Any]
    layers: list[dict[str, Any]]
    parameters: Array
    buffers: list[dict[str, Array]] | None = None
    #: The per-sample output shape, when the input width was known while checking.
    output_shape: Shape | None = None

    def restore_into(self, network: Sequential) -> None:
        """Set ``network``'s parameters and buffers to the file's (already checked in shape)."""
        network.flat_parameters[...] = self.parameters
        for i, (layer, saved) in enumerate(
            zip(network.layers, self.buffers or [{}] * len(network.layers), strict=True)
        ):
            try:
                layer.load_buffers(saved)
            except ValueError as error:
                raise _Invalid(f"layer {i}: {error}") from None


def _check_network(network: Any, n_features: int | None = None) -> _NetworkPlan:
    _check_keys(network, "network", {"dtype", "layers", "parameters"}, {"buffers"})
    _require(
        isinstance(network["dtype"], str) and network["dtype"] in _NETWORK_DTYPES,
        f"network.dtype must be float32 or float64, got {network['dtype']!r}",
    )
    dtype = _NETWORK_DTYPES[network["dtype"]]
    parameters = network["parameters"]
    _require(
        isinstance(parameters, np.ndarray) and parameters.ndim == 1,
        "network.parameters must be a 1-d array",
    )
    _require(
        parameters.dtype == dtype,
        f"the parameters are {parameters.dtype} but the network is declared {dtype}",
    )
    layers, output_shape = _check_layers(network["layers"], parameters.size, n_features)
    buffers = network.get("buffers")
    if buffers is not None:
        # Names and arrays here; each layer checks shapes and values when it loads them.
        _require(
            isinstance(buffers, list)
            and len(buffers) == len(layers)
            and all(
                isinstance(entry, dict)
                and all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in entry.items())
                for entry in buffers
            ),
            "network.buffers must list one object of named arrays per layer",
        )
    # Each layer that declares its buffers' shapes (from its config) must find them
    # in the file, checked before anything is built: a size written into a config
    # cannot make the loader allocate more than the file holds.
    for i, config in enumerate(layers):
        declared = LAYERS[config["type"]].buffer_shapes(config)
        if not declared:
            continue
        saved = {} if buffers is None else buffers[i]
        shapes = {name: tuple(value.shape) for name, value in saved.items()}
        _require(
            shapes == declared,
            f"layer {i} ({config['type']}) keeps the buffers "
            f"{ {name: list(shape) for name, shape in declared.items()} }, the file holds "
            f"{ {name: list(shape) for name, shape in shapes.items()} }",
        )
    return _NetworkPlan(dtype, layers, parameters, buffers, output_shape)


# --- the fitted attributes ------------------------------------------------------------------


def _check_float_list(value: Any, where: str) -> list[float]:
    _require(
        isinstance(value, list) and all(_is_number(v, finite=False) for v in value),
        f"{where} must be a list of numbers",
    )
    return [float(v) for v in value]


def _check_label_values(values: Any) -> None:
    """The class labels a file holds as JSON values (not as an array): what save writes
    and load reads.

    Strings, or numbers of any mix of kinds (``bool``, ``int``, ``float``: ``fit``
    sorts them together, and JSON keeps each one's kind), all finite.

    Raises
    ------
    _Invalid
        A label of another type (named), a non-finite number, or strings mixed with
        numbers.
    """
    _require(isinstance(values, list), "classes_ values must be a list")
    others = sorted({type(v).__name__ for v in values if not isinstance(v, (str, int, float))})
    _require(not others, f"class labels must be numbers or strings, not {others}")
    infinite = [v for v in values if isinstance(v, float) and not math.isfinite(v)]
    _require(not infinite, f"class labels must be finite, got {infinite}")
    n_strings = sum(isinstance(v, str) for v in values)
    _require(n_strings in (0, len(values)), "classes_ mixes strings and numbers")


def _check_classes(value: Any, budget: int) -> NDArray[Any]:
    if isinstance(value, np.ndarray):
        classes = value
        _require(classes.ndim == 1, "classes_ must be 1-d")
    else:
        _check_keys(value, "fitted.classes_", {"dtype", "values"})
        values, kind = value["values"], value["dtype"]
        _check_label_values(values)
        if kind == "object":
            classes = np.empty(len(values), dtype=object)
            classes[:] = values
        else:
            _require(
                isinstance(kind, str) and re.fullmatch(r"<U[1-9][0-9]{0,5}", kind) is not None,
                f"classes_ has an unknown dtype {kind!r}",
            )
            _require(all(isinstance(v, str) for v in values), "string classes_ must be strings")
            width = int(kind[2:])
            _require(all(len(v) <= width for v in values), f"a class label is longer than {kind}")
            # NumPy stores every label in `width` characters of 4 bytes: a wide
            # dtype declared for many labels would allocate gigabytes from a
            # few kilobytes of file, so the declared size is bounded first.
            declared = 4 * width * len(values)
            _require(
                declared <= budget,
                f"classes_ declares {len(values)} labels of dtype {kind} ({declared} bytes), "
                f"far more than the file can hold (its labels are at most "
                f"{max(map(len, values), default=0)} characters long)",
            )
            classes = np.array(values, dtype=kind)
    _require(len(classes) >= 2, "a classifier needs at least two classes")
    try:
        unique = np.unique(classes)
    except TypeError:
        raise _Invalid("classes_ cannot be sorted") from None
    _require(
        len(unique) == len(classes) and bool(np.all(unique == classes)),
        "classes_ must be sorted and distinct (as fit stores them)",
    )
    return classes


_FITTED_REQUIRED = {"n_features_in_", "loss_curve_", "validation_scores_", "n_iter_", "t_"}
_FITTED_OPTIONAL = {
    "best_loss_",
    "best_validation_score_",
    "feature_names_in_",
    # Written since early stopping keeps the epoch of the lowest validation loss.
    "validation_loss_curve_",
    "best_epoch_",
    # An estimator over images: the shape of one sample (its rows are flat).
    "_sample_shape",
    # handnet train on a CSV: how it was read, imputed and one-hot encoded.
    "preprocessing_",
}


def _check_fitted(
    fitted: Any, cls: type[_NetworkEstimator], network: _NetworkPlan, budget: int
) -> dict[str, Any]:
    is_classifier = bool(getattr(cls, "_is_classifier", False))
    required = set(_FITTED_REQUIRED) | (
        {"classes_"} if is_classifier else {"n_outputs_", "_y_ndim"}
    )
    _check_keys(fitted, "fitted", required, _FITTED_OPTIONAL)
    result = dict(fitted)
    # The layers were chained from n_features_in_ when the network was checked (so the
    # first layer takes the features); what they give must be one row of outputs.
    n_features = fitted["n_features_in_"]
    _require(_is_int(n_features, 1), f"n_features_in_ must be an integer >= 1, got {n_features!r}")
    _require(
        network.output_shape is not None and len(network.output_shape) == 1,
        f"a model's network must end with flat outputs, its layers give {network.output_shape}",
    )
    assert network.output_shape is not None
    result.update(_check_inputs(fitted, n_features))
    result.update(_check_curves(fitted))
    n_outputs = network.output_shape[0]
    if is_classifier:
        result["classes_"] = _check_classifier_outputs(fitted["classes_"], cls, n_outputs, budget)
    else:
        _check_regressor_outputs(fitted, n_outputs)
    if not {"hidden_layer_sizes", "layers"} & set(_signature_defaults(cls)):  # a linear model
        _require(len(network.layers) == 1, f"a {cls.__name__} has a single Dense layer")
    return result


def _check_inputs(fitted: Mapping[str, Any], n_features: int) -> dict[str, Any]:
    """``_sample_shape``, ``feature_names_in_`` and ``preprocessing_``, checked against
    ``n_features_in_``."""
    checked: dict[str, Any] = {}
    if "_sample_shape" in fitted:
        shape = fitted["_sample_shape"]
        _require(
            isinstance(shape, list)
            and 1 <= len(shape) <= 3
            and all(_is_int(size, 1) for size in shape)
            and math.prod(shape) == n_features,
            f"_sample_shape must list 1 to 3 sizes whose product is n_features_in_="
            f"{n_features}, got {shape!r}",
        )
        checked["_sample_shape"] = tuple(shape)
    names = fitted.get("feature_names_in_")
    if names is not None:
        _require(
            isinstance(names, list)
            and len(names) == n_features
            and all(isinstance(n, str) for n in names),
            "feature_names_in_ must list one string per feature",
        )
        checked["feature_names_in_"] = np.asarray(names, dtype=object)
    if "preprocessing_" in fitted:
        try:
            checked["preprocessing_"] = check_model_spec(fitted["preprocessing_"], n_features)
        except ValueError as error:
            _require(False, str(error))
    return checked


def _check_curves(fitted: Mapping[str, Any]) -> dict[str, Any]:
    """The training's curves, counters and best values, checked against each other."""
    checked: dict[str, Any] = {}
    checked["loss_curve_"] = _check_float_list(fitted["loss_curve_"], "loss_curve_")
    scores = fitted["validation_scores_"]
    checked["validation_scores_"] = (
        None if scores is None else _check_float_list(scores, "validation_scores_")
    )
    for name in ("n_iter_", "t_"):
        _require(_is_int(fitted[name]), f"{name} must be a non-negative integer")
    for name in ("best_loss_", "best_validation_score_"):
        if name in fitted:
            _require(_is_number(fitted[name], finite=False), f"{name} must be a number")
            checked[name] = float(fitted[name])
    validation_losses = fitted.get("validation_loss_curve_")
    if validation_losses is not None:
        checked["validation_loss_curve_"] = _check_float_list(
            validation_losses, "validation_loss_curve_"
        )
        _require(
            checked["validation_scores_"] is not None
            and len(checked["validation_loss_curve_"]) == len(checked["validation_scores_"]),
            "validation_loss_curve_ must have one entry per validation score",
        )
    if "best_epoch_" in fitted:
        n_validated = len(checked.get("validation_loss_curve_") or [])
        _require(
            _is_int(fitted["best_epoch_"], 1) and fitted["best_epoch_"] <= n_validated,
            f"best_epoch_={fitted['best_epoch_']!r} must be an epoch of the validation curve "
            f"(1 to {n_validated})",
        )
    return checked


def _check_classifier_outputs(
    value: Any, cls: type[_NetworkEstimator], n_outputs: int, budget: int
) -> NDArray[Any]:
    """A classifier's ``classes_``, checked against the network's ``n_outputs``."""
    classes = _check_classes(value, budget)
    binary = bool(getattr(cls, "_binary_output", True)) and len(classes) == 2
    expected = 1 if binary else len(classes)
    _require(
        n_outputs == expected,
        f"{len(classes)} classes need {expected} output(s), the network has {n_outputs}",
    )
    if getattr(cls, "_binary_only", False):
        _require(len(classes) == 2, f"a {cls.__name__} has exactly two classes")
    return classes


def _check_regressor_outputs(fitted: Mapping[str, Any], n_outputs: int) -> None:
    """A regressor's ``n_outputs_`` and ``_y_ndim``, checked against the network's outputs."""
    _require(
        _is_int(fitted["n_outputs_"], 1) and fitted["n_outputs_"] == n_outputs,
        f"n_outputs_={fitted['n_outputs_']!r} disagrees with the network's {n_outputs}",
    )
    _require(
        fitted["_y_ndim"] in (1, 2) and not isinstance(fitted["_y_ndim"], bool),
        "_y_ndim must be 1 or 2",
    )
    _require(fitted["_y_ndim"] == 2 or n_outputs == 1, "1-d targets have one output")


# --- the content ----------------------------------------------------------------------------


@dataclass
class _EstimatorPlan:
    cls: type[_NetworkEstimator]
    network: _NetworkPlan
    params: dict[str, Any]
    fitted: dict[str, Any]
    training: dict[str, Any] | None
    run: dict[str, Any] | None
    raw_params: dict[str, Any] = field(default_factory=dict)


def _check_content(content: Mapping[str, Any], budget: int) -> _NetworkPlan | _EstimatorPlan:
    kind = content.get("type")
    _require(
        isinstance(kind, str) and (kind == "Sequential" or kind in MODEL_TYPES),
        f"unknown model type {kind!r}; known: {sorted(MODEL_TYPES)} and 'Sequential'",
    )
    _require(isinstance(content.get("handnet_version"), str), "handnet_version must be a string")
    assert isinstance(kind, str)
    if kind == "Sequential":
        _check_keys(content, "content", {"type", "handnet_version", "network"})
        return _check_network(content["network"])
    keys = {
        "type",
        "handnet_version",
        "params",
        "dropped_params",
        "network",
        "fitted",
        "training",
        "run",
    }
    _check_keys(content, "content", keys)
    cls = MODEL_TYPES[kind]
    fitted_content = content["fitted"]
    n_features = fitted_content.get("n_features_in_") if isinstance(fitted_content, dict) else None
    network = _check_network(content["network"], n_features if _is_int(n_features, 1) else None)
    raw_params = content["params"]
    params = _check_params(raw_params, content["dropped_params"], cls, kind)
    fitted = _check_fitted(content["fitted"], cls, network, budget)
    training = content["training"]
    if training is not None:
        _check_training(training, cls, params, network)
    run = content["run"]
    if run is not None:
        _check_run(run, training)
    return _EstimatorPlan(cls, network, params, fitted, training, run, raw_params)


def _check_params(
    raw_params: Any, dropped: Any, cls: type[_NetworkEstimator], kind: str
) -> dict[str, Any]:
    """The hyperparameters, decoded, after checking that they are exactly those ``cls`` takes
    (each in ``raw_params`` or named in ``dropped``)."""
    names = set(cls._get_param_names())
    _require(isinstance(raw_params, dict), "params must be an object")
    unknown = sorted(set(raw_params) - names)
    _require(not unknown, f"params has entries {unknown} that {kind} does not take")
    _require(
        isinstance(dropped, list)
        and all(isinstance(n, str) and n in names and n not in raw_params for n in dropped),
        "dropped_params must list hyperparameter names not in params",
    )
    # save writes every hyperparameter or names it dropped: one missing was deleted, and
    # loading its default instead would make another model than the one saved.
    missing = sorted(names - set(raw_params) - set(dropped))
    _require(
        not missing,
        f"params lacks {missing}: a {kind} file holds every hyperparameter (or lists it in "
        "dropped_params)",
    )
    penalty = raw_params.get("penalty")
    _require(
        penalty is None or (isinstance(penalty, str) and penalty in PENALTIES),
        f"the penalty hyperparameter {penalty!r} is not a registered penalty "
        f"(known: {sorted(PENALTIES)})",
    )
    return {name: _decode_param(value, name) for name, value in raw_params.items()}


def _check_training(
    training: Any, cls: type[_NetworkEstimator], params: Mapping[str, Any], network: _NetworkPlan
) -> None:
    """The trainer's state, checked against the optimizer and schedule the model configures."""
    defaults = {n: p.default for n, p in _signature_defaults(cls).items()}
    chosen = resolve_optimizer(
        *(
            params.get(name, defaults.get(name))
            for name in ("optimizer", "batch_size", "learning_rate", "schedule", "clip_norm")
        )
    )
    optimizer_type = _optimizer_type_name(chosen)
    schedule_type = _schedule_type_name(params.get("schedule", defaults.get("schedule")))
    try:
        # The configured optimizer says what state it keeps (its settings may decide).
        configured = chosen.build() if isinstance(chosen, _ObjectSpec) else None
        n_buffer_values = sum(
            value.size for layer in network.buffers or [] for value in layer.values()
        )
        check_trainer_state(
            training, network.parameters.size, network.dtype, optimizer_type, schedule_type,
            configured, n_buffer_values,
        )
    except (ValueError, TypeError) as error:
        raise _Invalid(str(error)) from None


def _check_run(run: Any, training: Any) -> None:
    """The run's early-stopping split and data fingerprint (kept only with a training state)."""
    _require(training is not None, "run information without training state")
    _check_keys(run, "run", {"validation_index", "fingerprint"})
    split = run["validation_index"]
    _require(
        split is None
        or (isinstance(split, np.ndarray) and split.ndim == 1 and split.dtype == np.int64),
        "run.validation_index must be a 1-d int64 array",
    )
    fingerprint = run["fingerprint"]
    _require(
        fingerprint is None
        or (isinstance(fingerprint, str) and _HEX64.fullmatch(fingerprint) is not None),
        "run.fingerprint must be a hex SHA-256",
    )


def _signature_defaults(cls: type) -> Mapping[str, inspect.Parameter]:
    return inspect.signature(cls).parameters
