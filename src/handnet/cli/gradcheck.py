"""``handnet gradcheck``: backpropagation against finite differences, layer by layer."""

from __future__ import annotations

import argparse
import math
from typing import IO, Any, NamedTuple

import numpy as np

from ..nn.activations import hidden_activations
from .arguments import (
    _FORMATTER,
    _fraction,
    _hidden_option,
    _hidden_sizes,
    _nonnegative_float,
    _positive_float,
    _positive_int,
    _Subparsers,
)
from .checks import _check_network_fits
from .model_files import _load_model


def _add_gradcheck(subparsers: _Subparsers[argparse.ArgumentParser]) -> None:
    check = subparsers.add_parser(
        "gradcheck",
        allow_abbrev=False,
        help="check backpropagation against finite differences, layer by layer",
        formatter_class=_FORMATTER,
        description=(
            "Compare the gradients backpropagation computes with central finite\n"
            "differences, (J(theta + eps) - J(theta - eps)) / 2 eps, one parameter at a time,\n"
            "on random data, in float64; print the worst relative error of each layer.\n"
            "Without MODEL a small network is built (--features, --hidden, --classes,\n"
            "--activation); with MODEL the saved model's network and loss are checked.\n"
            "Exit status 0 when every error is within --tolerance, 1 otherwise."
        ),
        epilog=(
            "examples:\n"
            "  handnet gradcheck\n"
            "  handnet gradcheck --hidden 16,8 --activation relu --classes 2 --l2 0.01\n"
            "  handnet gradcheck model.npz"
        ),
    )
    check.add_argument("model", metavar="MODEL", nargs="?", help="a model file (optional)")
    check.add_argument("--features", type=_positive_int, default=4, help="inputs (default 4)")
    check.add_argument("--hidden", type=_hidden_sizes, default=(8, 8), metavar="SIZES",
                       help="hidden layer widths (default 8,8)")
    check.add_argument("--classes", type=_positive_int, default=3,
                       help="2 gives one sigmoid output, more a softmax (default 3)")
    check.add_argument("--activation", choices=hidden_activations(),
                       default="tanh", help="hidden activation (default tanh)")
    check.add_argument("--dropout", type=_fraction, default=0.0, metavar="RATE",
                       help="dropout after each hidden layer (checked with one fixed mask)")
    check.add_argument("--samples", type=_positive_int, default=16,
                       help="random examples (default 16)")
    check.add_argument("--l2", type=_nonnegative_float, default=None, metavar="ALPHA",
                       help="L2 strength (default 0.01; for MODEL, its own alpha)")
    check.add_argument("--tolerance", type=_positive_float, default=1e-6,
                       help="largest relative error that passes (default 1e-6)")
    check.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def _float64_copy(network: Any) -> Any:
    """The same network in float64 (finite differences in float32 are too noisy)."""
    return network.astype(np.float64)


def _network_inputs(network: Any) -> int:
    """How many features a bare network takes: its first sized layer says.

    A ``Reshape`` first gives the image size; otherwise the first ``Dense``,
    reached through layers that keep the shape (activations, dropout).
    """
    from ..nn.layers import Activation, Dense, Dropout, Reshape

    for layer in network.layers:
        if isinstance(layer, Reshape):
            return math.prod(layer.shape)
        if isinstance(layer, Dense) and layer.n_inputs is not None:
            return int(layer.n_inputs)
        if not isinstance(layer, (Activation, Dropout)):
            break
    raise ValueError(
        "cannot tell how many features this network takes: start it with a Dense or a "
        "Reshape layer"
    )


class _Subject(NamedTuple):
    """The network a gradient check runs on, with its loss and the data's sizes."""

    network: Any
    loss: Any
    l2: float
    n_features: int
    n_outputs: int
    title: str


def _run_gradcheck(args: argparse.Namespace, out: IO[str]) -> int:
    from ..gradcheck import check_network_parameters

    rng = np.random.default_rng(args.seed)
    subject = _saved_network(args) if args.model else _random_network(args, rng)
    X, Y = _random_data(subject, args.samples, rng)
    checks = check_network_parameters(subject.network, subject.loss, X, Y, l2=subject.l2)
    return _write_report(args, subject, checks, out)


def _saved_network(args: argparse.Namespace) -> _Subject:
    """The network of the model file MODEL, a float64 copy, and the loss it was trained with."""
    from ..nn.losses import BinaryCrossEntropy, Loss, SoftmaxCrossEntropy
    from ..nn.network import Sequential

    loss: Loss
    model = _load_model(args.model)
    source = model if isinstance(model, Sequential) else getattr(model, "network_", None)
    if source is None:
        raise ValueError(f"{args.model} holds an unfitted {type(model).__name__}: no network")
    # A copy: the loaded model is left alone, and the check runs in float64.
    network = _float64_copy(source)
    n_features = (
        _network_inputs(network)
        if isinstance(model, Sequential)
        else int(model.n_features_in_)
    )
    n_outputs = int(network.predict(np.zeros((1, n_features))).shape[1])
    if isinstance(model, Sequential):
        loss = SoftmaxCrossEntropy() if n_outputs > 1 else BinaryCrossEntropy()
        l2 = 0.0 if args.l2 is None else args.l2
    else:
        loss = model._loss()
        l2 = float(model.alpha) if args.l2 is None else args.l2
    title = f"{type(model).__name__} from {args.model}"
    return _Subject(network, loss, l2, n_features, n_outputs, title)


def _random_network(args: argparse.Namespace, rng: np.random.Generator) -> _Subject:
    """A small network of the options' sizes, with random weights and biases."""
    from ..nn.layers import Activation, Dense, Dropout, Layer
    from ..nn.losses import BinaryCrossEntropy, SoftmaxCrossEntropy
    from ..nn.network import Sequential

    n_outputs = 1 if args.classes <= 2 else args.classes
    _check_network_fits(
        [args.features, *args.hidden, n_outputs], args.samples,
        f"--features {args.features} {_hidden_option(args.hidden)} --classes "
        f"{args.classes} --samples {args.samples}",
    )
    layers: list[Layer] = []
    width = args.features
    for size in args.hidden:
        layers.append(Dense(width, size, init="xavier", random_state=rng))
        layers.append(Activation(args.activation))
        if args.dropout:
            layers.append(Dropout(args.dropout, random_state=rng))
        width = size
    layers.append(Dense(width, n_outputs, init="xavier", random_state=rng))
    network = Sequential(layers)
    # Random biases, so that a wrong bias gradient cannot hide behind zeros.
    for layer in network.layers:
        if isinstance(layer, Dense):
            layer.bias[...] = 0.1 * rng.standard_normal(layer.bias.shape)
    loss = BinaryCrossEntropy() if n_outputs == 1 else SoftmaxCrossEntropy()
    l2 = 0.01 if args.l2 is None else args.l2
    return _Subject(network, loss, l2, args.features, n_outputs, "a random network")


def _random_data(
    subject: _Subject, samples: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Random inputs, and targets of the kind the loss takes (values, 0/1 or one-hot)."""
    from ..nn.losses import MeanSquaredError

    n_outputs = subject.n_outputs
    X = rng.standard_normal((samples, subject.n_features))
    if isinstance(subject.loss, MeanSquaredError):
        Y = rng.standard_normal((samples, n_outputs))
    elif n_outputs == 1:
        Y = rng.integers(0, 2, (samples, 1)).astype(np.float64)
    else:
        Y = np.eye(n_outputs)[rng.integers(0, n_outputs, samples)]
    return X, Y


def _write_report(
    args: argparse.Namespace, subject: _Subject, checks: dict[str, Any], out: IO[str]
) -> int:
    """Each layer's worst relative error and verdict, then the outcome: exit status 0 or 1."""
    out.write(
        f"handnet gradcheck: {subject.title}, {type(subject.loss).__name__}, L2 {subject.l2:g}, "
        f"{args.samples} random examples, float64, central differences\n"
    )
    out.write(f"{'layer':<32} {'worst relative error':>22}\n")
    worst_by_layer: dict[str, float] = {}
    verdicts: dict[str, set[str]] = {}
    for key, check in checks.items():
        index = int(key.split(".", 1)[0])
        name = f"{index}: {subject.network.layers[index]!r}"
        worst_by_layer[name] = max(worst_by_layer.get(name, 0.0), check.relative_error)
        verdicts.setdefault(name, set()).add(check.verdict(args.tolerance))
    for name, error in worst_by_layer.items():
        # A wrong gradient anywhere in the layer outweighs round-off elsewhere in it.
        verdict = next(v for v in ("FAILED", "round-off", "ok") if v in verdicts[name])
        out.write(f"{name:<32} {error:>22.3e}  {verdict}\n")
    worst = max((check.relative_error for check in checks.values()), default=0.0)
    found = set().union(*verdicts.values()) if verdicts else set()
    if "FAILED" in found or "round-off" not in found:
        passed = worst <= args.tolerance
        out.write(
            f"{'passed' if passed else 'FAILED'}: worst relative error {worst:.3e} "
            f"(tolerance {args.tolerance:g})\n"
        )
        return 0 if passed else 1
    out.write(
        f"inconclusive: worst relative error {worst:.3e} (tolerance {args.tolerance:g}), "
        "within what float64 round-off alone can cause here: the objective is so large "
        "(parameters this big) that finite differences cannot judge the layers marked "
        "round-off; the other layers agree\n"
    )
    return 1
