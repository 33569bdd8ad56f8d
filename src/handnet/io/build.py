"""Building a ``Sequential`` or an estimator from a checked plan (:mod:`handnet.io.schema`).

Runs only after every check of the file has passed: layers are built from
:data:`handnet.nn.layers.LAYERS`, models from their hyperparameters (whose sizes are
compared with the stored network's before anything is allocated), then the
stored parameters, buffers, fitted attributes and training state are restored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..nn.layers import LAYERS
from ..nn.network import Sequential
from ..training import History
from ..training.state import check_rng_state
from .checkpoint import CheckpointRun
from .format import MAX_LAYER_WIDTH, _Invalid, _is_int, _require
from .params import _build_param, _check_layer_specs, _NetworkEstimator
from .schema import _EstimatorPlan, _NetworkPlan


def _build_sequential(plan: _NetworkPlan) -> Sequential:
    layers = [LAYERS[config["type"]].from_config(config, plan.dtype) for config in plan.layers]
    network = Sequential(layers)
    plan.restore_into(network)
    return network


def _layer_summary(configs: Sequence[Mapping[str, Any]]) -> str:
    """``Dense(3, 4) -> Activation('relu') -> ...``: layer configs, short."""
    parts = []
    for config in configs:
        arguments = ", ".join(repr(v) for k, v in config.items() if k != "type")
        parts.append(f"{config.get('type')}({arguments})")
    return " -> ".join(parts)


def _expected_parameter_count(model: _NetworkEstimator, n_features: int, n_outputs: int) -> int:
    hidden = model._hidden_layers()
    _require(
        all(_is_int(width, 1, MAX_LAYER_WIDTH) for width in hidden),
        f"hidden_layer_sizes {hidden!r} are not positive integers",
    )
    total, n_in = 0, n_features
    for width in (*hidden, n_outputs):
        total += (n_in + 1) * width
        n_in = width
    return total


def _build_estimator(plan: _EstimatorPlan) -> _NetworkEstimator:
    fitted = plan.fitted
    n_features = fitted["n_features_in_"]
    assert plan.network.output_shape is not None
    n_outputs = plan.network.output_shape[0]
    model = _new_model(plan, n_features, n_outputs)
    if "_sample_shape" in fitted:
        model._sample_shape = fitted["_sample_shape"]
    model._rng = np.random.default_rng(0)  # draws the throwaway initial weights
    network = model._build_network(n_features, n_outputs, plan.network.dtype)
    _require(
        network.config() == plan.network.layers,
        f"the hyperparameters describe the layers {_layer_summary(network.config())} but the "
        f"file holds {_layer_summary(plan.network.layers)}",
    )
    plan.network.restore_into(network)
    model.network_ = network
    model._dtype = plan.network.dtype
    model.best_loss_ = None  # a file written without one: its loss curve is empty
    for name, value in fitted.items():
        setattr(model, name, value)
    model._fitted = True
    _restore_trainer(model, network, plan.training)
    if plan.training is not None and plan.run is not None:
        # What the file knows of its run (the data's fingerprint, the held-out rows)
        # stays with the model, so that save() of the loaded model can still be resumed.
        model.__dict__["_checkpoint_run"] = _loaded_run(plan.run)
    return model


def _new_model(plan: _EstimatorPlan, n_features: int, n_outputs: int) -> _NetworkEstimator:
    """The model its hyperparameters make, once they are known to describe the stored sizes."""
    # Compare sizes before building from the hyperparameters, so that a file
    # whose hyperparameters claim huge layers is refused without allocating them.
    if "layers" in plan.params:
        _check_layer_specs(plan.params["layers"], plan.network.layers)
    params = {name: _build_param(value) for name, value in plan.params.items()}
    model = plan.cls(**params)
    try:
        # Each model checks its own hyperparameters, as fit would: a forged value
        # (n_iter_no_change=inf, say) is the file's error, not a crash later.
        model._validate_hyperparameters(n_features)
    except (ValueError, TypeError, OverflowError) as error:
        raise _Invalid(f"bad hyperparameters: {error}") from None
    if not hasattr(model, "layers"):
        _require(
            _expected_parameter_count(model, n_features, n_outputs)
            == plan.network.parameters.size,
            "the hyperparameters describe a network of another size than the stored one",
        )
    return model


def _restore_trainer(
    model: _NetworkEstimator, network: Sequential, training: dict[str, Any] | None
) -> None:
    """Give ``model`` its generator, trainer and history: the file's, or fresh ones."""
    rng = (
        np.random.default_rng(model.random_state if _is_int(model.random_state) else None)
        if training is None
        else check_rng_state(training["rng"])
    )
    model._rng = rng
    network.set_random_state(rng)
    trainer = model._make_trainer(network, model._loss(), ())
    if training is not None:
        trainer.load_state_dict(training)
        trainer._resuming = False  # a plain load starts its next fit afresh
        model.history_ = trainer.history
    else:
        model.history_ = History(
            loss=list(model.loss_curve_), validation_score=list(model.validation_scores_ or [])
        )
    model._rng = trainer.rng
    model._trainer = trainer


def _loaded_run(run_info: Mapping[str, Any]) -> CheckpointRun:
    """The run a loaded file records (its data's fingerprint, its held-out rows)."""
    run = CheckpointRun(None, None, None, None)
    run.fingerprint = run_info["fingerprint"]
    index = run_info["validation_index"]
    run.validation_index = None if index is None else np.asarray(index, dtype=np.intp)
    return run
