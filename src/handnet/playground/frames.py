"""What one frame of the page holds, computed from a session's network.

* ``boundary``: the model's output on a ``BOUNDARY_GRID`` x ``BOUNDARY_GRID`` grid over
  the plane, as bytes (base64): one channel per class (probability x 255) for a
  classifier, the prediction scaled to [-1, 1] (offset 128) for a regression;
* ``units``: each input feature's and each hidden unit's output over a coarser grid,
  scaled by its own largest magnitude (offset 128), with that scale;
* ``weights``: each dense layer's ``W`` and ``b``;
* the losses and accuracies (R² for a regression) of the training and test sets, the
  loss curves, the step, epoch and steps per second.

Bytes rather than JSON numbers: a frame of a 6 x 16 network stays near 60 kB.
"""

from __future__ import annotations

import base64
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from ..metrics import log_loss
from ..nn.activations import log_softmax
from ..nn.layers import Activation, Dense
from ..nn.losses import MeanSquaredError
from ..nn.network import Sequential
from .data import features, grid
from .settings import Settings

Array = NDArray[np.float64]


class Session(Protocol):
    """What a frame reads of a tab's run (:class:`.sessions.Session` is one)."""

    settings: Settings
    model: Any
    classes: NDArray[Any] | None
    F_train: Array
    F_test: Array
    y_train: NDArray[Any]
    y_test: NDArray[Any]
    bounds: tuple[float, float, float, float]
    steps: int
    epoch: int
    playing: bool
    curve: list[list[float]]

    @property
    def network(self) -> Sequential: ...

    def record_curve(self, values: dict[str, float]) -> None: ...

    def steps_per_second(self) -> float: ...

BOUNDARY_GRID = 64
UNIT_GRID = 24


def _bytes(values: NDArray[np.floating]) -> str:
    """Values in [0, 255] as base64 bytes."""
    clipped = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return base64.b64encode(clipped.tobytes()).decode("ascii")


def _signed(values: NDArray[np.floating]) -> tuple[str, float]:
    """Values scaled by their largest magnitude into bytes around 128, and that scale."""
    scale = float(np.max(np.abs(values))) if values.size else 0.0
    scale = scale if scale > 0 and np.isfinite(scale) else 1.0
    return _bytes(127.5 + 127.5 * values / scale), scale


def _network_scores(session: Session, network: Sequential, F: Array, y: NDArray[Any]
                    ) -> tuple[float, float]:
    """Loss and accuracy (or R²) from the network's outputs: before the first step."""
    outputs = network.predict(F)
    if session.classes is None:
        prediction = outputs[:, 0]
        loss = MeanSquaredError().value(outputs, np.asarray(y, dtype=np.float64).reshape(-1, 1))
        total = float(np.sum((y - np.mean(y)) ** 2))
        r2 = 1.0 - float(np.sum((y - prediction) ** 2)) / total if total > 0 else 0.0
        return loss, r2
    if outputs.shape[1] == 1:
        outputs = np.hstack([np.zeros_like(outputs), outputs])
    log_proba = log_softmax(outputs)
    index = np.searchsorted(session.classes, y)
    loss = float(-np.mean(log_proba[np.arange(len(y)), index]))
    return loss, float(np.mean(np.argmax(log_proba, axis=1) == index))


def _model_scores(session: Session, F: Array, y: NDArray[Any]) -> tuple[float, float]:
    """Loss and accuracy (or R²) by the model's own methods, as the script computes them."""
    model = session.model
    if session.classes is None:
        prediction = model.predict(F).reshape(-1, 1)
        target = np.asarray(y, dtype=np.float64).reshape(-1, 1)
        return MeanSquaredError().value(prediction, target), float(model.score(F, y))
    return log_loss(y, model.predict_log_proba(F), model.classes_), float(model.score(F, y))


def scores(session: Session, network: Sequential) -> dict[str, float]:
    """``train_loss``, ``test_loss``, ``train_score``, ``test_score`` of the network now."""
    values: dict[str, float] = {}
    for part, F, y in (("train", session.F_train, session.y_train),
                       ("test", session.F_test, session.y_test)):
        if session.steps:
            loss, score = _model_scores(session, F, y)
        else:
            loss, score = _network_scores(session, network, F, y)
        values[f"{part}_loss"] = loss
        values[f"{part}_score"] = score
    return values


def _boundary(session: Session, network: Sequential) -> dict[str, Any]:
    points = grid(session.bounds, BOUNDARY_GRID)
    outputs = network.predict(features(points, session.settings.features))
    if session.classes is None:
        scale = float(np.max(np.abs(session.y_train))) or 1.0
        data = _bytes(127.5 + 127.5 * np.clip(outputs[:, 0] / scale, -1, 1))
        return {"size": BOUNDARY_GRID, "channels": 1, "scale": scale, "data": data}
    if outputs.shape[1] == 1:
        outputs = np.hstack([np.zeros_like(outputs), outputs])
    probabilities = np.exp(log_softmax(outputs))
    return {"size": BOUNDARY_GRID, "channels": probabilities.shape[1],
            "data": _bytes(255.0 * probabilities.T)}


def _units(session: Session, network: Sequential) -> list[list[dict[str, Any]]]:
    """Per column of the network drawing: the inputs, then each hidden layer's units."""
    points = grid(session.bounds, UNIT_GRID)
    a: NDArray[np.floating] = features(points, session.settings.features)
    columns = [[dict(zip(("data", "scale"), _signed(a[:, j]), strict=True))
                for j in range(a.shape[1])]]
    for layer in network.layers[:-1]:
        a = layer.predict(a)
        if isinstance(layer, Activation):
            columns.append([dict(zip(("data", "scale"), _signed(a[:, j]), strict=True))
                            for j in range(a.shape[1])])
    return columns


def frame_payload(session: Session) -> dict[str, Any]:
    """One frame (see the module's docstring)."""
    network = session.network
    values = scores(session, network)
    session.record_curve(values)
    return {
        "type": "frame",
        "step": session.steps,
        "epoch": session.epoch,
        "steps_per_second": round(session.steps_per_second(), 1),
        "playing": session.playing,
        **values,
        "curve": session.curve,
        "boundary": _boundary(session, network),
        "units": _units(session, network),
        "weights": [[np.round(layer.weights, 4).tolist(), np.round(layer.bias, 4).tolist()]
                    for layer in network.layers if isinstance(layer, Dense)],
    }
