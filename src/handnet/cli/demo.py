"""``handnet demo``: the seed's experiment and its variants (:mod:`handnet.demo`)."""

from __future__ import annotations

import argparse
import importlib.util

from .arguments import (
    _FORMATTER,
    UsageError,
    _hidden_option,
    _hidden_sizes,
    _positive_float,
    _positive_int,
    _Subparsers,
)
from .checks import _check_network_fits, _check_output_path, _require_matplotlib


def _add_demo(subparsers: _Subparsers[argparse.ArgumentParser]) -> None:
    demo = subparsers.add_parser(
        "demo",
        allow_abbrev=False,
        help="run the seed's experiment (logistic regression by GD) or a variant",
        formatter_class=_FORMATTER,
        description=(
            "The seed's experiment: 1000 x 4 Gaussian inputs labelled by the teacher\n"
            "w = [0.3, 0.6, -0.7, -1.3], b = 0.2; logistic regression trained by full-batch\n"
            "gradient descent (learning rate 0.01, 5001 iterations), printing the loss and the\n"
            "accuracy on 200 fresh test examples every 100 iterations, then w and b.\n"
            "--model softmax and --model mlp run the seed's other variants."
        ),
        epilog=(
            "examples:\n"
            "  handnet demo                          the seed, as written\n"
            "  handnet demo --explain                one training step, every array shown\n"
            "  handnet demo --plot seed.png          curves and learned vs teacher weights\n"
            "  handnet demo --model mlp --animate spirals.gif\n"
            "                                        the decision boundary forming on spirals"
        ),
    )
    demo.add_argument(
        "--model", choices=("logistic", "softmax", "mlp", "cnn"), default="logistic",
        help="logistic (the seed), softmax (multi-class teacher), mlp (spirals) or cnn "
        "(a small convolutional network on scikit-learn's 8x8 digits; needs scikit-learn)",
    )
    demo.add_argument(
        "--optimizer", default=None,
        help="logistic: gd (full batch, default) or sgd (one example per step, reshuffled "
        "every epoch); mlp: gd, momentum, nesterov, adagrad, rmsprop, adam (default), adamw",
    )
    demo.add_argument("--learning-rate", type=_positive_float, default=None,
                      help="step size (default: 0.01 logistic, 0.5 softmax, 0.01 mlp, "
                      "0.001 cnn)")
    demo.add_argument("--iterations", "--epochs", dest="iterations", type=_positive_int,
                      default=None, help="GD iterations or SGD epochs (default: 5001 for GD)")
    demo.add_argument("--labels", choices=("round", "bernoulli", "argmax", "sample"),
                      default=None,
                      help="round: y = round(sigmoid(x.w+b)) as in the seed (separable); "
                      "bernoulli: y ~ Bernoulli(sigmoid(x.w+b)), which makes the teacher "
                      "recoverable (softmax: argmax or sample)")
    demo.add_argument("--n-samples", type=_positive_int, default=None,
                      help="training examples (default 1000 for logistic)")
    demo.add_argument("--hidden", type=_hidden_sizes, default=None,
                      help="mlp hidden layer widths, e.g. 64,64 (the default)")
    demo.add_argument("--print-every", type=_positive_int, default=None,
                      help="print the loss every N iterations (default 100)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (same seed, same output)")
    demo.add_argument("--quiet", action="store_true", help="print only the final summary")
    demo.add_argument("--plot", metavar="FILE.png",
                      help="write the loss and accuracy curves (and the learned weights next "
                      "to the teacher's, or the mlp's decision boundary) to a PNG")
    demo.add_argument("--animate", metavar="FILE.gif",
                      help="mlp only: write a GIF of the decision boundary while it learns")
    demo.add_argument("--frames", type=_positive_int, default=40,
                      help="--animate: about how many frames (default 40)")
    demo.add_argument("--explain", action="store_true",
                      help="logistic only: walk through ONE training step, printing each "
                      "array's shape and first values, then stop")


#: The options that only some demos take: the others refuse them rather than ignore them.
_ONLY_FOR = {
    "--optimizer": ("logistic", "mlp", "cnn"),
    "--labels": ("logistic", "softmax"),
    "--n-samples": ("logistic", "softmax", "mlp"),
    "--hidden": ("mlp",),
}


def _run_demo(args: argparse.Namespace) -> int:
    for option, models in _ONLY_FOR.items():
        if getattr(args, option[2:].replace("-", "_")) is not None and args.model not in models:
            takers = ", ".join(models[:-1]) + (" or " if len(models) > 1 else "") + models[-1]
            raise UsageError(
                f"{option} does not apply to --model {args.model}: only --model {takers} "
                "takes it"
            )
    if args.explain:
        if args.model != "logistic":
            raise UsageError(
                "--explain walks through the seed's model: use it with --model logistic"
            )
        _explain(args)
        return 0
    if args.animate and args.model != "mlp":
        raise UsageError(
            "--animate draws a 2-D decision boundary: use it with --model mlp (spirals)"
        )
    for path in (args.plot, args.animate):
        _check_output_path(path)
    if args.plot or args.animate:
        _require_matplotlib()
    # --quiet keeps the final summary but drops the per-iteration lines.
    every = 0 if args.quiet else args.print_every
    runs = {"logistic": _logistic, "softmax": _softmax, "cnn": _cnn, "mlp": _mlp}
    runs[args.model](args, every)
    return 0


def _seed_labels(args: argparse.Namespace) -> str:
    """--labels for the seed's model: the softmax names mapped to the logistic ones."""
    labels = {"argmax": "round", "sample": "bernoulli"}.get(args.labels, args.labels)
    return labels or "round"


def _explain(args: argparse.Namespace) -> None:
    from .. import demo

    demo.explain_step(
        seed=args.seed,
        n_samples=args.n_samples or 1000,
        learning_rate=args.learning_rate or 0.01,
        labels=_seed_labels(args),
    )


def _logistic(args: argparse.Namespace, every: int | None) -> None:
    from .. import demo

    optimizer = args.optimizer or "gd"
    if optimizer not in ("gd", "sgd"):
        raise UsageError(f"--optimizer for the logistic demo is gd or sgd, got {optimizer!r}")
    demo.run_logistic(
        optimizer=optimizer,
        learning_rate=args.learning_rate or 0.01,
        iterations=args.iterations,
        labels=_seed_labels(args),
        n_samples=args.n_samples or 1000,
        seed=args.seed,
        print_every=(100 if optimizer == "gd" else 1) if every is None else every,
        plot=args.plot,
    )


def _softmax(args: argparse.Namespace, every: int | None) -> None:
    from .. import demo

    demo.run_softmax(
        learning_rate=args.learning_rate or 0.5,
        iterations=args.iterations,
        labels=args.labels or "sample",
        n_samples=args.n_samples or 5000,
        seed=args.seed,
        print_every=100 if every is None else every,
        plot=args.plot,
    )


def _cnn(args: argparse.Namespace, every: int | None) -> None:
    from .. import demo

    if importlib.util.find_spec("sklearn") is None:
        raise UsageError(
            "the cnn demo trains on scikit-learn's digits: pip install 'handnet[sklearn]'"
        )
    demo.run_cnn(
        optimizer=args.optimizer or "adam",
        learning_rate=args.learning_rate or 0.001,
        iterations=args.iterations,
        seed=args.seed,
        print_every=5 if every is None else every,
        plot=args.plot,
    )


def _mlp(args: argparse.Namespace, every: int | None) -> None:
    from .. import demo

    # The spirals: 2 inputs, 3 classes.
    hidden = args.hidden or (64, 64)
    _check_network_fits([2, *hidden, 3], args.n_samples or 600, _hidden_option(hidden))
    demo.run_mlp(
        hidden=hidden,
        optimizer=args.optimizer or "adam",
        learning_rate=args.learning_rate or 0.01,
        iterations=args.iterations,
        n_samples=args.n_samples or 600,
        seed=args.seed,
        print_every=50 if every is None else every,
        plot=args.plot,
        animate=args.animate,
        frames=args.frames,
    )
