"""What the page may ask for: the settings of a run, their limits, and their validation.

Every value that reaches the server from the page goes through :func:`parse_settings`
(or :func:`parse_message`): unknown keys and names, wrong types, NaN or infinite
numbers, sizes out of range all raise :class:`PlaygroundError` with a sentence the page
shows as it is. Nothing from the page is ever evaluated: names are looked up in
handnet's registries (:data:`handnet.optim.optimizers.OPTIMIZERS`,
:func:`handnet.nn.activations.hidden_activations`) and in :data:`.data.DATASETS` /
:data:`.data.FEATURES`.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..nn.activations import hidden_activations
from ..nn.losses import LOSSES
from ..optim.optimizers import OPTIMIZERS
from .data import DATASETS, FEATURES

MAX_POINTS = 2000
"""Points in a data set (train and test together)."""
MIN_POINTS = 20
MAX_HIDDEN_LAYERS = 6
MAX_UNITS = 16
"""Units in one hidden layer."""
MAX_MESSAGE_BYTES = 16_384
"""A message from the page longer than this is refused unread."""
MAX_SEED = 2**32 - 1

OUTPUTS: dict[str, str] = {
    "sigmoid": "binary_cross_entropy",
    "softmax": "softmax_cross_entropy",
    "identity": "mean_squared_error",
}
"""Output links and the handnet loss (a key of :data:`handnet.nn.losses.LOSSES`) each trains."""
assert set(OUTPUTS.values()) <= set(LOSSES)

MESSAGE_TYPES = ("configure", "play", "pause", "step", "reset", "ack", "download")
"""What the page may send (``{"type": ..., ...}``)."""


class PlaygroundError(ValueError):
    """A request the playground refuses; the message is shown on the page as it is."""


@dataclass(frozen=True)
class Settings:
    """One run: the data, the model and how it is trained.

    ``batch_size`` 0 means all the training rows (full-batch gradient descent);
    ``1`` is the seed's SGD. ``dropout`` applies after each hidden activation.
    """

    dataset: str = "circles"
    n_points: int = 400
    noise: float = 0.1
    test_fraction: float = 0.3
    seed: int = 0
    features: tuple[str, ...] = ("x1", "x2")
    hidden: tuple[int, ...] = ()
    activation: str = "tanh"
    output: str = "sigmoid"
    optimizer: str = "adam"
    learning_rate: float = 0.03
    batch_size: int = 10
    l2: float = 0.0
    dropout: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The settings as plain JSON values (lists for the tuples)."""
        values = asdict(self)
        values["features"] = list(self.features)
        values["hidden"] = list(self.hidden)
        return values

    @property
    def task(self) -> str:
        """``"classification"`` or ``"regression"``, from the data set."""
        return DATASETS[self.dataset].task


def stepping_optimizers() -> tuple[str, ...]:
    """The registered optimizers that step per batch: the page steps a batch at a time
    (a full-batch line search such as L-BFGS has no single step to show)."""
    return OPTIMIZERS.names(lambda cls: not cls.full_batch)


def choices() -> dict[str, Any]:
    """What the page offers, read from the registries (never a list typed twice)."""
    return {
        "datasets": {name: {"task": d.task, "classes": d.n_classes, "description": d.description}
                     for name, d in DATASETS.items()},
        "features": list(FEATURES),
        "activations": list(hidden_activations()),
        "optimizers": list(stepping_optimizers()),
        "outputs": dict(OUTPUTS),
        "limits": {"max_points": MAX_POINTS, "min_points": MIN_POINTS,
                   "max_hidden_layers": MAX_HIDDEN_LAYERS, "max_units": MAX_UNITS},
        "defaults": Settings().to_json(),
    }


def _integer(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise PlaygroundError(f"{name} must be a whole number, got {_shown(value)}")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise PlaygroundError(f"{name} must be a whole number, got {_shown(value)}")
    number = int(float(value))  # an integral float (JSON 10.0) or an int
    if not low <= number <= high:
        raise PlaygroundError(f"{name} must be between {low} and {high}, got {number}")
    return number


def _number(value: Any, name: str, low: float, high: float, *, open_low: bool = False,
            open_high: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise PlaygroundError(f"{name} must be a number, got {_shown(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise PlaygroundError(f"{name} must be a finite number, got {number}")
    too_low = number <= low if open_low else number < low
    too_high = number >= high if open_high else number > high
    if too_low or too_high:
        left, right = "(" if open_low else "[", ")" if open_high else "]"
        raise PlaygroundError(f"{name} must be in {left}{low}, {high}{right}, got {number}")
    return number


def _name(value: Any, name: str, known: Any) -> str:
    if not isinstance(value, str) or value not in known:
        raise PlaygroundError(f"unknown {name} {_shown(value)}; choose one of {list(known)}")
    return value


def _shown(value: Any) -> str:
    """``value`` for a message, cut short (a page may send anything)."""
    text = json.dumps(value) if isinstance(value, (str, int, float, list, dict)) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_settings(raw: Any) -> Settings:
    """Check the settings the page sent; missing keys take :class:`Settings`' defaults.

    Raises
    ------
    PlaygroundError
        Unknown keys or names, wrong types, non-finite numbers, sizes out of range,
        or a combination handnet cannot train (e.g. softmax output on a regression).
    """
    if not isinstance(raw, dict):
        raise PlaygroundError(f"settings must be an object, got {_shown(raw)}")
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise PlaygroundError(f"unknown setting(s) {unknown[:5]}; known: {sorted(known)}")
    values = {**Settings().to_json(), **raw}
    features = values["features"]
    if not isinstance(features, list) or not 1 <= len(features) <= len(FEATURES):
        raise PlaygroundError(f"features must be a list of 1 to {len(FEATURES)} names")
    chosen = {_name(f, "feature", FEATURES) for f in features}
    hidden = values["hidden"]
    if not isinstance(hidden, list) or len(hidden) > MAX_HIDDEN_LAYERS:
        raise PlaygroundError(f"hidden must be a list of at most {MAX_HIDDEN_LAYERS} layer sizes")
    dataset = _name(values["dataset"], "data set", DATASETS)
    settings = Settings(
        dataset=dataset,
        n_points=_integer(values["n_points"], "n_points", MIN_POINTS, MAX_POINTS),
        noise=_number(values["noise"], "noise", 0.0, 1.0),
        test_fraction=_number(values["test_fraction"], "test_fraction", 0.1, 0.9),
        seed=_integer(values["seed"], "seed", 0, MAX_SEED),
        features=tuple(name for name in FEATURES if name in chosen),
        hidden=tuple(_integer(width, "hidden layer size", 1, MAX_UNITS) for width in hidden),
        activation=_name(values["activation"], "activation", hidden_activations()),
        output=_name(values["output"], "output", OUTPUTS),
        optimizer=_name(values["optimizer"], "optimizer", stepping_optimizers()),
        learning_rate=_number(values["learning_rate"], "learning_rate", 0.0, 10.0,
                              open_low=True),
        batch_size=_integer(values["batch_size"], "batch_size", 0, MAX_POINTS),
        l2=_number(values["l2"], "l2", 0.0, 10.0),
        dropout=_number(values["dropout"], "dropout", 0.0, 0.9, open_high=True),
    )
    _check_output(settings)
    return settings


def _check_output(settings: Settings) -> None:
    """Refuse an output that handnet's models do not train on this task."""
    data = DATASETS[settings.dataset]
    if data.task == "regression":
        allowed = ["identity"]
    elif data.n_classes > 2:
        allowed = ["softmax"]
    elif settings.hidden:
        allowed = ["sigmoid"]  # MLPClassifier: one sigmoid logit for two classes
    else:
        allowed = ["sigmoid", "softmax"]  # LogisticRegression or SoftmaxRegression
    if settings.output not in allowed:
        raise PlaygroundError(
            f"output {settings.output!r} does not fit {settings.dataset} with "
            f"{len(settings.hidden)} hidden layer(s); use {' or '.join(map(repr, allowed))}"
        )


def parse_message(text: str | bytes) -> dict[str, Any]:
    """A message from the page as a dict with a known ``"type"``.

    Raises
    ------
    PlaygroundError
        Too long, not JSON (NaN and Infinity are not JSON either), not an object,
        or of an unknown type.
    """
    if len(text) > MAX_MESSAGE_BYTES:
        raise PlaygroundError(f"message too long ({len(text)} bytes; at most {MAX_MESSAGE_BYTES})")

    def refuse_constant(name: str) -> Any:
        raise PlaygroundError(f"bad JSON: {name} is not a number JSON allows")

    try:
        message = json.loads(text, parse_constant=refuse_constant)
    except (ValueError, RecursionError) as error:
        if isinstance(error, PlaygroundError):
            raise
        raise PlaygroundError(f"bad JSON: {error}") from None
    if not isinstance(message, dict):
        raise PlaygroundError(f"a message must be a JSON object, got {_shown(message)}")
    kind = message.get("type")
    if kind not in MESSAGE_TYPES:
        raise PlaygroundError(f"unknown message type {_shown(kind)}; known: {list(MESSAGE_TYPES)}")
    return message
