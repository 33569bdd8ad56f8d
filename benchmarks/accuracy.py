"""Accuracy on scikit-learn's shipped data sets: handnet against scikit-learn, same settings.

Data sets: iris, wine, breast cancer, digits (``sklearn.datasets.load_*``, shipped
with scikit-learn, nothing is downloaded). For every seed, one stratified split
(75 % train, 25 % test) is drawn and standardised on the training part; both
libraries then train on exactly the same arrays and are scored on the same test
rows. The table reports the mean and the sample standard deviation over seeds.

Two models, each configured to optimise the same objective in both libraries:

* **Logistic regression, L-BFGS.** scikit-learn's ``LogisticRegression(C=C)``
  minimises ``mean loss + ||W||^2 / (2 C n_train)``; handnet's models minimise
  ``mean loss + alpha / 2 ||W||^2``, so ``alpha = 1 / (C n_train)``. Binary data
  uses ``handnet.LogisticRegression`` (one sigmoid logit, as scikit-learn does),
  multi-class data ``handnet.SoftmaxRegression`` (scikit-learn's multinomial
  loss). Intercepts are not penalised in either. Both run to a tight tolerance,
  so they should find the same optimum: the "same predictions" column checks it.
* **MLP, Adam.** One hidden layer of 64 ReLU units, Adam (learning rate 1e-3,
  betas 0.9/0.999), mini-batches of 32 reshuffled every epoch, a fixed number of
  epochs (no early stopping), Glorot-uniform initial weights. scikit-learn's MLP
  divides its L2 term by the batch size (``alpha / (2 n_batch) ||W||^2``), so
  handnet gets ``alpha = alpha_sklearn / batch_size``. The two libraries draw
  different initial weights and batch orders from the same seed, so their
  results agree in distribution, not run by run.
* **The drop-in, MLP, Adam.** ``handnet.sklearn.MLPClassifier`` (scikit-learn's
  constructor on handnet's math) against ``sklearn.neural_network.MLPClassifier``
  with the very same arguments: the MLP above, in scikit-learn's terms. The
  drop-in draws its initial weights and batch orders as scikit-learn does, so the
  two runs agree run by run, up to floating-point rounding.

Run::

    python benchmarks/accuracy.py                       # 5 seeds, 200 epochs
    python benchmarks/accuracy.py --output docs/accuracy.md
    python benchmarks/accuracy.py --quick               # 2 seeds, 10 epochs (CI smoke test)
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

try:
    import sklearn
    from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
    from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
    from sklearn.linear_model import LogisticRegression as SklearnLogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier
    from sklearn.preprocessing import StandardScaler
except ImportError:  # pragma: no cover - the benchmark compares against scikit-learn
    sys.exit("benchmarks/accuracy.py needs scikit-learn: pip install 'handnet[sklearn]'")

import handnet
import handnet.sklearn
from handnet.exceptions import ConvergenceWarning

DATASETS: dict[str, Callable[..., Any]] = {
    "iris": load_iris,
    "wine": load_wine,
    "breast cancer": load_breast_cancer,
    "digits": load_digits,
}

C = 1.0  # scikit-learn's default inverse regularisation strength
LINEAR_TOL = 1e-8
LINEAR_MAX_ITER = 5000
HIDDEN = (64,)
LEARNING_RATE = 1e-3
BATCH_SIZE = 32
SKLEARN_MLP_ALPHA = 1e-4  # scikit-learn's default


@dataclass
class Result:
    """Per-seed outcomes of one (data set, model) pair."""

    handnet_accuracy: list[float] = field(default_factory=list)
    sklearn_accuracy: list[float] = field(default_factory=list)
    agreement: list[float] = field(default_factory=list)
    handnet_seconds: list[float] = field(default_factory=list)
    sklearn_seconds: list[float] = field(default_factory=list)


def linear_models(n_train: int, n_classes: int) -> tuple[Any, Any, str]:
    """handnet's and scikit-learn's logistic regression with the same objective."""
    alpha = 1.0 / (C * n_train)
    model = handnet.LogisticRegression if n_classes == 2 else handnet.SoftmaxRegression
    ours = model(optimizer="lbfgs", alpha=alpha, tol=LINEAR_TOL, max_iter=LINEAR_MAX_ITER)
    theirs = SklearnLogisticRegression(C=C, tol=LINEAR_TOL, max_iter=LINEAR_MAX_ITER)
    name = "logistic regression" if n_classes == 2 else "softmax regression"
    return ours, theirs, f"{name}, L-BFGS, C={C:g}"


def mlp_models(seed: int, epochs: int) -> tuple[Any, Any, str]:
    """handnet's and scikit-learn's MLP with the same architecture and training."""
    ours = handnet.MLPClassifier(
        hidden_layer_sizes=HIDDEN,
        activation="relu",
        optimizer="adam",
        learning_rate=LEARNING_RATE,
        batch_size=BATCH_SIZE,
        max_iter=epochs,
        alpha=SKLEARN_MLP_ALPHA / BATCH_SIZE,
        init="xavier",
        tol=None,
        random_state=seed,
    )
    theirs = SklearnMLPClassifier(
        hidden_layer_sizes=HIDDEN,
        activation="relu",
        solver="adam",
        learning_rate_init=LEARNING_RATE,
        batch_size=BATCH_SIZE,
        max_iter=epochs,
        alpha=SKLEARN_MLP_ALPHA,
        n_iter_no_change=epochs + 1,  # never stop early: run every epoch, like handnet
        random_state=seed,
    )
    return ours, theirs, f"MLP {HIDDEN[0]} ReLU, Adam, {epochs} epochs"


def dropin_models(seed: int, epochs: int) -> tuple[Any, Any, str]:
    """handnet.sklearn's drop-in and scikit-learn's MLP, built from the same arguments."""
    settings = {
        "hidden_layer_sizes": HIDDEN,
        "activation": "relu",
        "solver": "adam",
        "learning_rate_init": LEARNING_RATE,
        "batch_size": BATCH_SIZE,
        "max_iter": epochs,
        "alpha": SKLEARN_MLP_ALPHA,
        "n_iter_no_change": epochs + 1,
        "random_state": seed,
    }
    ours = handnet.sklearn.MLPClassifier(**settings)
    theirs = SklearnMLPClassifier(**settings)
    return ours, theirs, f"drop-in `handnet.sklearn` MLP 64 ReLU, Adam, {epochs} epochs"


def _fit_score(model: Any, data: tuple[np.ndarray, ...]) -> tuple[float, np.ndarray, float]:
    X_train, X_test, y_train, y_test = data
    start = time.perf_counter()
    with warnings.catch_warnings():
        # A fixed budget of epochs is the point of the comparison; not meeting a
        # tolerance within it is expected, in both libraries.
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        model.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    predictions = model.predict(X_test)
    return float(np.mean(predictions == y_test)), predictions, seconds


def run(seeds: int, epochs: int, log: Callable[[str], None]) -> dict[tuple[str, str], Result]:
    """Train and score every (data set, model, seed); returns the results by row."""
    results: dict[tuple[str, str], Result] = {}
    for name, loader in DATASETS.items():
        X, y = loader(return_X_y=True)
        n_classes = len(np.unique(y))
        for seed in range(seeds):
            X_train, X_test, y_train, y_test = train_test_split(
                X, y, test_size=0.25, stratify=y, random_state=seed
            )
            scaler = StandardScaler().fit(X_train)
            data = (scaler.transform(X_train), scaler.transform(X_test), y_train, y_test)
            for ours, theirs, label in (
                linear_models(len(y_train), n_classes),
                mlp_models(seed, epochs),
                dropin_models(seed, epochs),
            ):
                result = results.setdefault((name, label), Result())
                accuracy, ours_pred, seconds = _fit_score(ours, data)
                result.handnet_accuracy.append(accuracy)
                result.handnet_seconds.append(seconds)
                accuracy, theirs_pred, seconds = _fit_score(theirs, data)
                result.sklearn_accuracy.append(accuracy)
                result.sklearn_seconds.append(seconds)
                result.agreement.append(float(np.mean(ours_pred == theirs_pred)))
        log(f"{name}: done")
    return results


def _mean_std(values: list[float], digits: int = 3) -> str:
    mean = statistics.fmean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {spread:.{digits}f}"


def format_table(results: dict[tuple[str, str], Result]) -> str:
    """The results as a markdown table."""
    shapes, classes = {}, {}
    for name, loader in DATASETS.items():
        X, y = loader(return_X_y=True)
        shapes[name], classes[name] = X.shape, len(np.unique(y))
    lines = [
        "| data set | samples × features | classes | model | handnet accuracy "
        "| scikit-learn accuracy | difference | same predictions "
        "| fit time handnet / sklearn (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (name, label), result in results.items():
        n, d = shapes[name]
        difference = [
            a - b for a, b in zip(result.handnet_accuracy, result.sklearn_accuracy, strict=True)
        ]
        times = (
            f"{statistics.fmean(result.handnet_seconds):.3f} / "
            f"{statistics.fmean(result.sklearn_seconds):.3f}"
        )
        lines.append(
            f"| {name} | {n} × {d} | {classes[name]} | {label} "
            f"| {_mean_std(result.handnet_accuracy)} | {_mean_std(result.sklearn_accuracy)} "
            f"| {_mean_std(difference, 3).replace('-', '−')} "
            f"| {statistics.fmean(result.agreement):.3f} | {times} |"
        )
    return "\n".join(lines)


def report(results: dict[tuple[str, str], Result], seeds: int, epochs: int, command: str) -> str:
    """The table with the settings that produced it."""
    header = [
        "# Accuracy: handnet vs scikit-learn",
        "",
        f"Made by `{command}` with handnet {handnet.__version__}, scikit-learn "
        f"{sklearn.__version__}, NumPy {np.__version__}, Python {platform.python_version()}.",
        "",
        f"Test accuracy, mean ± sample standard deviation over {seeds} seeds. Each seed is one "
        "stratified 75/25 train/test split, standardised on its training part; both libraries "
        "train on the same arrays and are scored on the same test rows. *difference* is "
        "handnet − scikit-learn per seed; *same predictions* is the fraction of test rows on "
        "which the two models predict the same label. Fit times are wall-clock means on the "
        "machine that made the table (indicative only).",
        "",
        f"* Logistic / softmax regression: L-BFGS to tolerance {LINEAR_TOL:g} (at most "
        f"{LINEAR_MAX_ITER} iterations); scikit-learn `LogisticRegression(C={C:g})`, handnet "
        "`alpha = 1 / (C · n_train)`, the same objective (binary data: handnet "
        "`LogisticRegression`, multi-class: `SoftmaxRegression`, multinomial in both).",
        f"* MLP: {HIDDEN[0]} ReLU units, Adam with learning rate {LEARNING_RATE:g}, batches of "
        f"{BATCH_SIZE}, {epochs} epochs without early stopping, Glorot-uniform weights; "
        f"scikit-learn `alpha={SKLEARN_MLP_ALPHA:g}`, handnet `alpha={SKLEARN_MLP_ALPHA:g} / "
        f"{BATCH_SIZE}` (scikit-learn divides its L2 term by the batch size). Initial weights "
        "and batch orders come from each library's own generator.",
        "* Drop-in: `handnet.sklearn.MLPClassifier` and scikit-learn's `MLPClassifier` "
        "constructed with the same arguments (the MLP above in scikit-learn's terms, "
        f"`alpha={SKLEARN_MLP_ALPHA:g}`, `random_state=seed`); the drop-in draws its initial "
        "weights and batch orders as scikit-learn does, so the runs match one for one.",
        "",
        "",
    ]
    return "\n".join(header) + format_table(results) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="splits / seeds (default 5)")
    parser.add_argument("--epochs", type=int, default=200, help="MLP epochs (default 200)")
    parser.add_argument(
        "--quick", action="store_true", help="2 seeds and 10 epochs: a smoke test for CI"
    )
    parser.add_argument("--output", type=Path, help="also write the markdown report here")
    args = parser.parse_args(argv)
    seeds, epochs = (2, 10) if args.quick else (args.seeds, args.epochs)
    if seeds < 1 or epochs < 1:
        parser.error("--seeds and --epochs must be positive")

    command = "python benchmarks/accuracy.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    results = run(seeds, epochs, log=lambda line: print(line, file=sys.stderr, flush=True))
    text = report(results, seeds, epochs, command.strip())
    print(text)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"written to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
