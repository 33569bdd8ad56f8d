"""The ``handnet`` command line.

``handnet demo`` runs the seed's experiment (``--model logistic``, the default),
softmax regression on a softmax teacher (``--model softmax``) or a multi-layer
network on spirals (``--model mlp``). Argument parsing is argparse's; the
experiments live in :mod:`handnet.demo`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _hidden_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer widths such as 128,64, got {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"layer widths must be positive integers, got {text!r}")
    return sizes


def _add_demo(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="run the seed's experiment (logistic regression by GD) or a variant",
        description=(
            "The seed's experiment: 1000 x 4 Gaussian inputs labelled by the teacher "
            "w = [0.3, 0.6, -0.7, -1.3], b = 0.2; logistic regression trained by full-batch "
            "gradient descent (learning rate 0.01, 5001 iterations), printing the loss and the "
            "accuracy on 200 fresh test examples every 100 iterations, then w and b. "
            "--model softmax and --model mlp run the seed's other variants."
        ),
    )
    demo.add_argument(
        "--model", choices=("logistic", "softmax", "mlp"), default="logistic",
        help="logistic (the seed), softmax (multi-class teacher) or mlp (spirals)",
    )
    demo.add_argument(
        "--optimizer", default=None,
        help="logistic: gd (full batch, default) or sgd (one example per step, reshuffled "
        "every epoch); mlp: gd, momentum, nesterov, adagrad, rmsprop, adam (default), adamw",
    )
    demo.add_argument("--learning-rate", type=_positive_float, default=None,
                      help="step size (default: 0.01 logistic, 0.5 softmax, 0.01 mlp)")
    demo.add_argument("--iterations", "--epochs", dest="iterations", type=_positive_int,
                      default=None, help="GD iterations or SGD epochs (default: 5001 for GD)")
    demo.add_argument("--labels", choices=("round", "bernoulli", "argmax", "sample"),
                      default=None,
                      help="round: y = round(sigmoid(x.w+b)) as in the seed (separable); "
                      "bernoulli: y ~ Bernoulli(sigmoid(x.w+b)), which makes the teacher "
                      "recoverable (softmax: argmax or sample)")
    demo.add_argument("--n-samples", type=_positive_int, default=None,
                      help="training examples (default 1000 for logistic)")
    demo.add_argument("--hidden", type=_hidden_sizes, default=(64, 64),
                      help="mlp hidden layer widths, e.g. 64,64")
    demo.add_argument("--print-every", type=_positive_int, default=None,
                      help="print the loss every N iterations (default 100)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (same seed, same output)")
    demo.add_argument("--quiet", action="store_true", help="print only the final summary")


def _run_demo(args: argparse.Namespace) -> int:
    from . import demo

    # --quiet keeps the final summary but drops the per-iteration lines.
    every = 0 if args.quiet else args.print_every
    if args.model == "logistic":
        optimizer = args.optimizer or "gd"
        if optimizer not in ("gd", "sgd"):
            raise ValueError(f"--optimizer for the logistic demo is gd or sgd, got {optimizer!r}")
        labels = {"argmax": "round", "sample": "bernoulli"}.get(args.labels, args.labels)
        demo.run_logistic(
            optimizer=optimizer,
            learning_rate=args.learning_rate or 0.01,
            iterations=args.iterations,
            labels=labels or "round",
            n_samples=args.n_samples or 1000,
            seed=args.seed,
            print_every=(100 if optimizer == "gd" else 1) if every is None else every,
        )
    elif args.model == "softmax":
        demo.run_softmax(
            learning_rate=args.learning_rate or 0.5,
            iterations=args.iterations,
            labels=args.labels or "sample",
            n_samples=args.n_samples or 5000,
            seed=args.seed,
            print_every=100 if every is None else every,
        )
    else:
        demo.run_mlp(
            hidden=args.hidden,
            optimizer=args.optimizer or "adam",
            learning_rate=args.learning_rate or 0.01,
            iterations=args.iterations,
            n_samples=args.n_samples or 600,
            seed=args.seed,
            print_every=50 if every is None else every,
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="handnet",
        description="Neural networks whose every line of math is written by hand in NumPy.",
    )
    parser.add_argument("--version", action="version", version=f"handnet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    _add_demo(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``handnet`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            return _run_demo(args)
    except (ValueError, OSError) as error:
        print(f"handnet {args.command}: error: {error}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command!r}")
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
