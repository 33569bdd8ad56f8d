"""The seed's experiment and its variants, as functions the CLI and the tests share.

``run_logistic`` is the seed: 1000 x 4 Gaussian inputs labelled by the teacher
``w = [0.3, 0.6, -0.7, -1.3]``, ``b = 0.2``, a logistic regression trained by
full-batch gradient descent (learning rate 0.01, 5001 iterations) that prints
its loss and its accuracy on 200 fresh test examples every 100 iterations, then
the learned ``w`` and ``b``. It also reports what the seed leaves unsaid: the
cosine between the learned and the teacher's weights, and the accuracy on a
large held-out set.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .datasets import TEACHER_BIAS, TEACHER_WEIGHTS, make_logistic, make_softmax, make_spirals
from .models import LogisticRegression, MLPClassifier, SoftmaxRegression
from .training import Trainer

Printer = Callable[[str], None]

HELD_OUT_SIZE = 100_000


@dataclass
class DemoResult:
    """What a demo run learned and how well."""

    train_accuracy: float
    test_accuracy: float
    seconds: float
    cosine: float | None = None
    weights: np.ndarray | None = None
    bias: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a.ravel(), b.ravel()) / (np.linalg.norm(a) * np.linalg.norm(b)))


def _progress(
    every: int,
    print_line: Printer,
    evaluate: Callable[[], float],
) -> Callable[[Trainer], None]:
    """A callback printing the loss and a fresh test accuracy every ``every`` epochs.

    ``every=0`` prints nothing.
    """

    def callback(trainer: Trainer) -> None:
        done = trainer.epoch - 1  # the seed counts iterations from 0
        if every and done % every == 0:
            loss = trainer.history.loss[-1]
            print_line(f"loss after iteration {done}: {loss:.6f}   test accuracy: {evaluate():.3f}")

    return callback


def run_logistic(
    optimizer: str = "gd",
    learning_rate: float = 0.01,
    iterations: int | None = None,
    labels: str = "round",
    n_samples: int = 1000,
    seed: int = 0,
    print_every: int = 100,
    print_line: Printer = print,
) -> DemoResult:
    """The seed's experiment: logistic regression on the teacher's data.

    Parameters
    ----------
    optimizer : {"gd", "sgd"}
        ``"gd"``: full batch, one step per iteration (the seed); ``"sgd"``: one
        example per step, the data reshuffled every epoch (the seed's variant).
    iterations : int, optional
        GD iterations or SGD epochs; default 5001 for GD and 20 for SGD.
    labels : {"round", "bernoulli"}
    """
    if optimizer not in ("gd", "sgd"):
        raise ValueError(f"--optimizer must be gd or sgd for the logistic demo, got {optimizer!r}")
    if iterations is None:
        iterations = 5001 if optimizer == "gd" else 20
    data_rng = np.random.default_rng(seed)
    X, y = make_logistic(n_samples, labels=labels, random_state=data_rng)
    test_rng = np.random.default_rng([seed, 1])

    model = LogisticRegression(
        learning_rate=learning_rate,
        max_iter=iterations,
        batch_size=None if optimizer == "gd" else 1,
        optimizer="gd",
        init="normal",  # the seed draws w from a standard Gaussian, b = 0
        tol=None,  # the seed runs every iteration
        random_state=seed,
    )

    def fresh_test_accuracy() -> float:
        X_test, y_test = make_logistic(200, labels=labels, random_state=test_rng)
        return model.score(X_test, y_test)

    what = "iteration" if optimizer == "gd" else "epoch"
    print_line(
        f"handnet demo: logistic regression, {n_samples} x {X.shape[1]} data, labels={labels}, "
        f"{'full-batch GD' if optimizer == 'gd' else 'SGD (one example per step)'}, "
        f"learning rate {learning_rate}, {iterations} {what}s, seed {seed}"
    )
    start = time.perf_counter()
    model.fit(X, y, callbacks=[_progress(print_every, print_line, fresh_test_accuracy)])
    seconds = time.perf_counter() - start

    w = model.coef_.ravel()
    b = model.intercept_
    X_held, y_held = make_logistic(HELD_OUT_SIZE, labels=labels, random_state=test_rng)
    result = DemoResult(
        train_accuracy=model.score(X, y),
        test_accuracy=model.score(X_held, y_held),
        seconds=seconds,
        cosine=_cosine(w, TEACHER_WEIGHTS),
        weights=w.copy(),
        bias=b.copy(),
    )
    print_line(f"w: {np.array2string(w, precision=4)}")
    print_line(f"b: {np.array2string(b, precision=4)}")
    print_line(f"teacher w: {TEACHER_WEIGHTS.tolist()}, b: {TEACHER_BIAS}")
    print_line(f"cosine(learned w, teacher w): {result.cosine:.5f}")
    print_line(f"|w| / |teacher w|: {np.linalg.norm(w) / np.linalg.norm(TEACHER_WEIGHTS):.3f}")
    print_line(
        f"accuracy: train {result.train_accuracy:.4f}, "
        f"held-out ({HELD_OUT_SIZE} fresh examples) {result.test_accuracy:.4f}"
    )
    print_line(f"training time: {seconds:.3f} s")
    if labels == "round":
        print_line(
            "note: rounded labels are linearly separable, so only w's direction is "
            "determined; its norm keeps growing with more iterations."
        )
    return result


def run_softmax(
    n_classes: int = 3,
    learning_rate: float = 0.5,
    iterations: int | None = None,
    labels: str = "sample",
    n_samples: int = 5000,
    seed: int = 0,
    print_every: int = 100,
    print_line: Printer = print,
) -> DemoResult:
    """Softmax regression on a softmax teacher with known weights (the seed's variant 1)."""
    iterations = 2001 if iterations is None else iterations
    mode = {"round": "argmax", "bernoulli": "sample"}.get(labels, labels)
    data_rng = np.random.default_rng(seed)
    X, y, W_teacher, b_teacher = make_softmax(
        n_samples, n_features=4, n_classes=n_classes, labels=mode,
        random_state=data_rng, return_teacher=True,
    )
    test_rng = np.random.default_rng([seed, 1])
    teacher = {"weights": W_teacher, "bias": b_teacher}

    def fresh(n: int) -> tuple[np.ndarray, np.ndarray]:
        X_new, y_new = make_softmax(
            n, n_features=4, n_classes=n_classes, labels=mode, random_state=test_rng,
            **teacher,
        )
        return X_new, y_new

    model = SoftmaxRegression(
        learning_rate=learning_rate, max_iter=iterations, tol=None, random_state=seed
    )

    def fresh_test_accuracy() -> float:
        return model.score(*fresh(200))

    print_line(
        f"handnet demo: softmax regression, {n_samples} x 4 data, {n_classes} classes, "
        f"labels={mode}, full-batch GD, learning rate {learning_rate}, {iterations} iterations"
    )
    start = time.perf_counter()
    model.fit(X, y, callbacks=[_progress(print_every, print_line, fresh_test_accuracy)])
    seconds = time.perf_counter() - start
    # Softmax is invariant to adding one vector to every class's weights: compare
    # the weights centred across classes.
    W = model.coef_.T - model.coef_.T.mean(axis=1, keepdims=True)
    W_true = W_teacher - W_teacher.mean(axis=1, keepdims=True)
    X_held, y_held = fresh(HELD_OUT_SIZE)
    # With sampled labels even the teacher errs: its accuracy is the ceiling.
    teacher_accuracy = float(np.mean(np.argmax(X_held @ W_teacher + b_teacher, axis=1) == y_held))
    result = DemoResult(
        train_accuracy=model.score(X, y),
        test_accuracy=model.score(X_held, y_held),
        seconds=seconds,
        cosine=_cosine(W, W_true),
        weights=W,
        bias=model.intercept_ - model.intercept_.mean(),
        extra={
            "max_abs_weight_error": float(np.max(np.abs(W - W_true))),
            "teacher_test_accuracy": teacher_accuracy,
        },
    )
    print_line(f"learned W (centred over classes):\n{np.array2string(W, precision=3)}")
    print_line(f"teacher W (centred over classes):\n{np.array2string(W_true, precision=3)}")
    print_line(f"cosine(learned W, teacher W): {result.cosine:.5f}")
    print_line(
        f"accuracy: train {result.train_accuracy:.4f}, held-out {result.test_accuracy:.4f} "
        f"(the teacher itself: {teacher_accuracy:.4f})"
    )
    print_line(f"training time: {seconds:.3f} s")
    return result


def run_mlp(
    hidden: tuple[int, ...] = (64, 64),
    optimizer: str = "adam",
    learning_rate: float = 0.01,
    iterations: int | None = None,
    n_samples: int = 600,
    n_classes: int = 3,
    seed: int = 0,
    print_every: int = 50,
    print_line: Printer = print,
) -> DemoResult:
    """A multi-layer network on spirals, where a linear model stays near chance."""
    iterations = 500 if iterations is None else iterations
    X, y = make_spirals(n_samples, n_classes=n_classes, random_state=seed)
    X_test, y_test = make_spirals(n_samples, n_classes=n_classes, random_state=seed + 10_000)
    model = MLPClassifier(
        hidden_layer_sizes=hidden,
        activation="relu",
        optimizer=optimizer,
        learning_rate=learning_rate,
        batch_size=None,
        max_iter=iterations,
        alpha=1e-4,
        tol=None,
        random_state=seed,
    )
    print_line(
        f"handnet demo: MLP {2}-{'-'.join(map(str, hidden))}-{n_classes} (relu) on "
        f"{n_classes}-arm spirals, {n_samples} points, {optimizer}, "
        f"learning rate {learning_rate}, {iterations} full-batch iterations"
    )
    start = time.perf_counter()
    model.fit(
        X, y, callbacks=[_progress(print_every, print_line, lambda: model.score(X_test, y_test))]
    )
    seconds = time.perf_counter() - start
    linear = SoftmaxRegression(max_iter=500, tol=None, random_state=seed).fit(X, y)
    result = DemoResult(
        train_accuracy=model.score(X, y),
        test_accuracy=model.score(X_test, y_test),
        seconds=seconds,
        extra={"linear_test_accuracy": linear.score(X_test, y_test)},
    )
    n_params = model.network_.n_parameters
    print_line(f"learned: {n_params} parameters in {len(model.coefs_)} dense layers")
    print_line(
        f"accuracy: train {result.train_accuracy:.4f}, test {result.test_accuracy:.4f} "
        f"(a linear softmax model: {result.extra['linear_test_accuracy']:.4f})"
    )
    print_line(f"training time: {seconds:.3f} s")
    return result


def quiet(_: str) -> None:
    """A printer that prints nothing."""
