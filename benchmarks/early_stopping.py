"""Early stopping: the old rule (validation accuracy) against the new one (validation loss).

What early stopping keeps, and when it stops, on four small classification data
sets: iris, wine, digits (``sklearn.datasets.load_*``, shipped with scikit-learn)
and moons (``handnet.datasets.make_moons``, 300 rows, noise 0.3). Each data set
is split once (stratified, 75 % train, 25 % test, fixed seed) and standardised on
its training part. Two configurations are trained, each with ``--seeds`` seeds:

* **MLPClassifier defaults**: ``handnet.MLPClassifier(early_stopping=True,
  random_state=seed)``, everything else at its default (100 ReLU units, Adam at
  1e-3, ``max_iter=200``, ``tol=1e-4``, ``n_iter_no_change=10``, 10% of the
  training rows held out, stratified).
* **handnet train defaults**: what ``handnet train DATA --standardize`` builds:
  ``SoftmaxRegression`` (``LogisticRegression`` for two classes) by Adam at 0.01,
  batches of 200, 100 epochs, 10% of the rows held out (stratified), ``tol=None`` (the
  command runs every epoch unless ``--patience`` is given, then keeps the best one).

Every run is made once, with ``tol=None`` so that the whole curve exists, and a
callback that records the network's flat parameters after each epoch. The
stopping rules are then applied offline to the recorded validation curves of that
same run (the model's ``validation_loss_curve_``: its loss on the held-out rows,
without the L2 term, i.e. the log loss; and ``validation_scores_``: the accuracy):

* **old** (handnet before issue 12): count the epochs in which the validation
  accuracy did not rise by ``tol`` above the best so far; stop when the count
  reaches ``n_iter_no_change``; keep the earliest epoch of the highest accuracy
  seen up to the stop.
* **new**: the same counter on the validation loss (an improvement is
  ``loss <= best - tol``); keep the epoch of the lowest validation loss up to
  the stop.
* **none**: no early stopping, the last epoch (a reference).

The kept epoch's recorded parameters are loaded back into the model and scored
on the test rows. As a check, the MLP is also fitted for real with the default
``tol``: the offline new rule must give the same stopping epoch (``n_iter_``),
the same kept epoch (``best_epoch_``) and bit-for-bit the same parameters.

Run::

    python benchmarks/early_stopping.py                  # 5 seeds, about a minute
    python benchmarks/early_stopping.py --output docs/early_stopping.md
    python benchmarks/early_stopping.py --quick          # 2 seeds, 2 data sets (smoke test)
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

try:
    import sklearn
    from sklearn.datasets import load_digits, load_iris, load_wine
except ImportError:  # pragma: no cover - the data sets ship with scikit-learn
    sys.exit("benchmarks/early_stopping.py needs scikit-learn: pip install 'handnet[sklearn]'")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT / "src"))

import handnet  # noqa: E402
from handnet.datasets import Standardizer, make_moons, train_test_split  # noqa: E402
from handnet.exceptions import ConvergenceWarning  # noqa: E402
from handnet.metrics import log_loss  # noqa: E402

SPLIT_SEED = 0
TOL = 1e-4
N_ITER_NO_CHANGE = 10
MLP_MAX_ITER = 200  # MLPClassifier's default max_iter
CLI_EPOCHS = 100  # handnet train's default --epochs
CLI_BATCH = 200  # handnet train's default --batch-size
CLI_LEARNING_RATE = 0.01  # handnet train's default --learning-rate
CLI_VALIDATION = 0.1  # handnet train's default --validation-fraction

MLP = "MLPClassifier defaults"
CLI = "handnet train defaults"
RULES = ("old", "new", "none")


def _moons() -> tuple[np.ndarray, np.ndarray]:
    return make_moons(300, noise=0.3, random_state=0)


DATASETS: dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]] = {
    "iris": lambda: load_iris(return_X_y=True),
    "wine": lambda: load_wine(return_X_y=True),
    "digits": lambda: load_digits(return_X_y=True),
    "moons": _moons,
}


# --- the stopping rules, offline ---------------------------------------------------------


def old_rule(scores: Sequence[float], tol: float | None, patience: int) -> tuple[int, int]:
    """``(stop, kept)`` epochs (1-based) of the accuracy rule handnet had before issue 12.

    An epoch improves when its score is at least ``best + tol``; training stops
    after ``patience`` epochs in a row without one; the kept epoch is the
    earliest of the highest score up to the stop. ``tol=None``: every epoch runs.
    """
    best, kept, count = -np.inf, 1, 0
    for epoch, score in enumerate(scores, start=1):
        if score > best:
            kept = epoch
        improved = tol is None or score >= best + tol
        best = max(best, score)
        count = 0 if improved else count + 1
        if tol is not None and count >= patience:
            return epoch, kept
    return len(scores), kept


def new_rule(losses: Sequence[float], tol: float | None, patience: int) -> tuple[int, int]:
    """``(stop, kept)`` epochs (1-based) of the validation-loss rule.

    An epoch improves when its loss is at most ``best - tol``; training stops
    after ``patience`` epochs in a row without one; the kept epoch is the one of
    the lowest loss up to the stop (the earliest of equal ones).
    """
    best, kept, count = np.inf, 1, 0
    for epoch, loss in enumerate(losses, start=1):
        if loss < best:
            kept = epoch
        improved = tol is None or loss <= best - tol
        best = min(best, loss)
        count = 0 if improved else count + 1
        if tol is not None and count >= patience:
            return epoch, kept
    return len(losses), kept


# --- the runs ----------------------------------------------------------------------------


@dataclass
class Outcome:
    """Per-seed numbers of one (data set, configuration, rule)."""

    stop: list[int] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    validation_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)


@dataclass
class Check:
    """The offline new rule against a real fit with the default tol, per seed."""

    stop: list[bool] = field(default_factory=list)
    kept: list[bool] = field(default_factory=list)
    parameters: list[bool] = field(default_factory=list)


class Recorder:
    """A training callback: the network's flat parameters after every epoch."""

    def __init__(self) -> None:
        self.parameters: list[np.ndarray] = []

    def __call__(self, trainer: Any) -> None:
        self.parameters.append(trainer.network.flat_parameters.copy())


def load(name: str) -> tuple[np.ndarray, ...]:
    """One stratified 75/25 split of a data set, standardised on its training part."""
    X, y = DATASETS[name]()
    X_train, X_test, y_train, y_test = train_test_split(
        np.asarray(X, dtype=np.float64), y, test_size=0.25, stratify=True,
        random_state=SPLIT_SEED,
    )
    scaler = Standardizer().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def mlp(seed: int, max_iter: int, tol: float | None) -> handnet.MLPClassifier:
    """``MLPClassifier`` with early stopping and its defaults otherwise."""
    if max_iter == MLP_MAX_ITER and tol == TOL:
        return handnet.MLPClassifier(early_stopping=True, random_state=seed)
    return handnet.MLPClassifier(
        early_stopping=True, random_state=seed, max_iter=max_iter, tol=tol
    )


def cli_model(seed: int, epochs: int, n_train: int, n_classes: int) -> Any:
    """The model ``handnet train`` builds without options (no ``--model``, ``--patience``)."""
    model = handnet.LogisticRegression if n_classes == 2 else handnet.SoftmaxRegression
    return model(
        optimizer="adam", learning_rate=CLI_LEARNING_RATE, max_iter=epochs,
        batch_size=min(CLI_BATCH, n_train), random_state=seed, tol=None,
        n_iter_no_change=N_ITER_NO_CHANGE,
    )


def _fit(model: Any, *args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        # A run that reaches max_iter before the rule stops it warns; that is one of
        # the outcomes measured here (the table's "stopped at" column shows it).
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(*args, **kwargs)


def _score_kept(
    model: Any, recorder: Recorder, stop: int, kept: int,
    X_test: np.ndarray, y_test: np.ndarray, outcome: Outcome,
) -> None:
    model.network_.flat_parameters[...] = recorder.parameters[kept - 1]
    outcome.stop.append(stop)
    outcome.kept.append(kept)
    outcome.validation_loss.append(float(model.validation_loss_curve_[kept - 1]))
    outcome.validation_accuracy.append(float(model.validation_scores_[kept - 1]))
    outcome.test_accuracy.append(float(model.score(X_test, y_test)))
    outcome.test_loss.append(log_loss(y_test, model.predict_log_proba(X_test), model.classes_))


def _apply_rules(
    model: Any, recorder: Recorder, tol: float | None, data: tuple[np.ndarray, ...],
    results: dict[tuple[str, str, str], Outcome], name: str, config: str,
) -> tuple[int, int]:
    """Score the old, new and no rule on one recorded run; returns the new rule's epochs."""
    X_test, y_test = data[1], data[3]
    scores, losses = model.validation_scores_, model.validation_loss_curve_
    assert len(recorder.parameters) == len(losses) == len(scores)
    chosen = {
        "old": old_rule(scores, tol, N_ITER_NO_CHANGE),
        "new": new_rule(losses, tol, N_ITER_NO_CHANGE),
        "none": (len(losses), len(losses)),
    }
    for rule in RULES:
        outcome = results.setdefault((name, config, rule), Outcome())
        _score_kept(model, recorder, *chosen[rule], X_test, y_test, outcome)
    return chosen["new"]


def run(
    names: Sequence[str], seeds: int, mlp_epochs: int, cli_epochs: int,
    log: Callable[[str], None],
) -> tuple[dict[tuple[str, str, str], Outcome], dict[str, Check], dict[str, tuple[int, ...]]]:
    """Every (data set, configuration, seed): results by row, checks and shapes by data set."""
    results: dict[tuple[str, str, str], Outcome] = {}
    checks: dict[str, Check] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for name in names:
        start = time.perf_counter()
        data = load(name)
        X_train, _, y_train, _ = data
        shapes[name] = (len(data[0]), len(data[1]), X_train.shape[1], len(np.unique(y_train)))
        check = checks.setdefault(name, Check())
        for seed in range(seeds):
            # The MLP: one long run with tol=None, recorded; the rules applied to it.
            recorder = Recorder()
            model = _fit(mlp(seed, mlp_epochs, None), X_train, y_train, callbacks=[recorder])
            stop, kept = _apply_rules(model, recorder, TOL, data, results, name, MLP)
            # The same model fitted for real, with the default tol and max_iter.
            real = _fit(mlp(seed, mlp_epochs, TOL), X_train, y_train)
            check.stop.append(real.n_iter_ == stop)
            check.kept.append(real.best_epoch_ == kept)
            check.parameters.append(
                bool(np.array_equal(real.network_.flat_parameters, recorder.parameters[kept - 1]))
            )

            # handnet train's model: its validation rows held out as the command does.
            X_fit, X_val, y_fit, y_val = train_test_split(
                X_train, y_train, test_size=CLI_VALIDATION, stratify=True, random_state=seed
            )
            recorder = Recorder()
            model = _fit(
                cli_model(seed, cli_epochs, len(y_fit), shapes[name][3]), X_fit, y_fit,
                validation_data=(X_val, y_val), callbacks=[recorder],
            )
            # The command runs every epoch (no --patience: tol=None) and keeps the best.
            _, kept = _apply_rules(model, recorder, None, data, results, name, CLI)
            check.kept.append(model.best_epoch_ == kept)
        log(f"{name}: done in {time.perf_counter() - start:.1f} s")
    return results, checks, shapes


# --- the report --------------------------------------------------------------------------


def _mean(values: Sequence[float], digits: int) -> str:
    return f"{statistics.fmean(values):.{digits}f}"


def _range(values: Sequence[int]) -> str:
    low, high = min(values), max(values)
    mean = statistics.fmean(values)
    return f"{mean:.0f}" if low == high else f"{mean:.0f} ({low}–{high})"


def format_table(
    results: dict[tuple[str, str, str], Outcome], shapes: dict[str, tuple[int, ...]]
) -> str:
    """The results as a markdown table, one row per (data set, configuration, rule)."""
    lines = [
        "| data set | train / test rows, features, classes | configuration | rule "
        "| stopped at epoch | kept epoch | validation log loss | validation accuracy "
        "| test accuracy | test log loss |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (name, config, rule), outcome in results.items():
        n_train, n_test, n_features, n_classes = shapes[name]
        lines.append(
            f"| {name} | {n_train} / {n_test}, {n_features}, {n_classes} | {config} | {rule} "
            f"| {_range(outcome.stop)} | {_range(outcome.kept)} "
            f"| {_mean(outcome.validation_loss, 3)} | {_mean(outcome.validation_accuracy, 3)} "
            f"| {_mean(outcome.test_accuracy, 3)} | {_mean(outcome.test_loss, 3)} |"
        )
    return "\n".join(lines)


def format_checks(checks: dict[str, Check]) -> str:
    """The offline new rule against real fits, per data set."""
    lines = [
        "| data set | same stopping epoch (`n_iter_`) | same kept epoch (`best_epoch_`) "
        "| same parameters |",
        "|---|---|---|---|",
    ]
    for name, check in checks.items():
        lines.append(
            f"| {name} | {sum(check.stop)} of {len(check.stop)} "
            f"| {sum(check.kept)} of {len(check.kept)} "
            f"| {sum(check.parameters)} of {len(check.parameters)} |"
        )
    return "\n".join(lines)


def summarize(results: dict[tuple[str, str, str], Outcome]) -> str:
    """One line: on how many (data set, configuration) pairs the new rule beats the old."""
    pairs = sorted({(name, config) for name, config, _ in results})
    better_loss = better_accuracy = worse_accuracy = 0
    for name, config in pairs:
        old, new = results[name, config, "old"], results[name, config, "new"]
        loss_old, loss_new = statistics.fmean(old.test_loss), statistics.fmean(new.test_loss)
        acc_old, acc_new = statistics.fmean(old.test_accuracy), statistics.fmean(new.test_accuracy)
        better_loss += loss_new < loss_old
        better_accuracy += acc_new > acc_old
        worse_accuracy += acc_new < acc_old
    return (
        f"Against the old rule, the new one gives a lower mean test log loss on {better_loss} "
        f"of the {len(pairs)} (data set, configuration) pairs, a higher mean test accuracy on "
        f"{better_accuracy} and a lower one on {worse_accuracy}."
    )


def agreement(checks: dict[str, Check]) -> bool:
    """Whether every check agreed."""
    return all(all(c.stop) and all(c.kept) and all(c.parameters) for c in checks.values())


def report(
    results: dict[tuple[str, str, str], Outcome], checks: dict[str, Check],
    shapes: dict[str, tuple[int, ...]], seeds: int, command: str,
) -> str:
    """The tables with the settings that produced them."""
    header = [
        "# Early stopping: what is kept, and when training stops",
        "",
        f"Made by `{command}` with handnet {handnet.__version__}, scikit-learn "
        f"{sklearn.__version__}, NumPy {np.__version__}, Python {platform.python_version()}.",
        "",
        "Early stopping holds out part of the training rows, scores the model on them after "
        "every epoch, stops when the score has stopped improving and keeps the best epoch. "
        "Two rules, both with scikit-learn's counter (`tol`, `n_iter_no_change`):",
        "",
        "* **old** (before issue 12): stop when the validation **accuracy** has not risen by "
        f"`tol={TOL:g}` for `n_iter_no_change={N_ITER_NO_CHANGE}` epochs; keep the earliest "
        "epoch of the highest accuracy. On a validation set of 10 to 20 rows the accuracy "
        "takes a handful of values and reaches its maximum early, so the rule stops and keeps "
        "a model many epochs from trained.",
        "* **new**: stop when the validation **loss** (the model's own loss on the held-out "
        "rows, without the L2 term; for these classifiers the log loss) has not fallen by "
        "`tol` for `n_iter_no_change` epochs; keep the epoch of the lowest validation loss "
        "(`best_epoch_`; `best_validation_score_` is that epoch's accuracy).",
        "* **none**: the last epoch, without early stopping (for reference).",
        "",
        "Data: iris, wine and digits (scikit-learn's copies) and `make_moons(300, noise=0.3)`, "
        f"one stratified 75/25 train/test split (seed {SPLIT_SEED}), standardised on the "
        f"training rows. Configurations, over {seeds} seeds (`random_state` = 0 .. "
        f"{seeds - 1}, which also draws the validation rows):",
        "",
        "* *MLPClassifier defaults*: `handnet.MLPClassifier(early_stopping=True, "
        f"random_state=seed)`: 100 ReLU units, Adam at 1e-3, `max_iter={MLP_MAX_ITER}`, "
        f"`tol={TOL:g}`, `n_iter_no_change={N_ITER_NO_CHANGE}`, 10% of the training rows held "
        "out.",
        "* *handnet train defaults*: the model `handnet train DATA --target y --standardize` "
        "builds: `SoftmaxRegression` (`LogisticRegression` for moons' two classes), Adam at "
        f"{CLI_LEARNING_RATE:g}, batches of {CLI_BATCH}, {CLI_EPOCHS} epochs, "
        f"{CLI_VALIDATION:.0%} of the rows held out (stratified). Without `--patience` the "
        "command runs every epoch (`tol=None`), so the rules differ only in the epoch kept.",
        "",
        "Each seed's run is made once with `tol=None` and a callback that records the "
        "parameters after every epoch; the rules are applied to that run's validation curves "
        "and the kept epoch's parameters are scored on the test rows. Means over seeds; the "
        "epoch columns give the mean and, when the seeds differ, the range.",
        "",
        "",
    ]
    checks_text = [
        "",
        "",
        summarize(results),
        "",
        "The offline new rule against the real thing: each seed's MLP is also fitted with the "
        "default `tol`, and each `handnet train` model's `best_epoch_` is read from its run. "
        "Agreement means the same stopping epoch, the same kept epoch and bit-for-bit the same "
        "parameters as the recorded epoch the rule picked:",
        "",
        format_checks(checks),
        "",
    ]
    return "\n".join(header) + format_table(results, shapes) + "\n".join(checks_text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="model seeds (default 5)")
    parser.add_argument(
        "--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS),
        help="data sets (default: all four)",
    )
    parser.add_argument(
        "--quick", action="store_true",
        help="2 seeds on iris and moons: a smoke test for CI",
    )
    parser.add_argument("--output", type=Path, help="also write the markdown report here")
    args = parser.parse_args(argv)
    seeds, names = (2, ["iris", "moons"]) if args.quick else (args.seeds, args.datasets)
    if seeds < 1:
        parser.error("--seeds must be positive")

    command = "python benchmarks/early_stopping.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    results, checks, shapes = run(
        names, seeds, MLP_MAX_ITER, CLI_EPOCHS,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    text = report(results, checks, shapes, seeds, command.strip())
    print(text)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"written to {args.output}", file=sys.stderr)
    if not agreement(checks):
        sys.exit("the offline new rule disagrees with a real fit: see the last table")


if __name__ == "__main__":
    main()
