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
from .metrics import log_loss
from .models import LogisticRegression, MLPClassifier, SoftmaxRegression
from .nn.activations import sigmoid
from .nn.layers import Dense
from .nn.losses import binary_cross_entropy
from .training import Trainer

Printer = Callable[[str], None]

HELD_OUT_SIZE = 100_000
PLOT_POINTS = 200
"""About how many points each recorded curve of ``--plot`` gets (bounded cost)."""


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
    model: Any = None


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


def _recorder(
    model: Any,
    train: tuple[np.ndarray, np.ndarray],
    held_out: tuple[np.ndarray, np.ndarray],
    total: int,
    curves: Any,
) -> Callable[[Trainer], None]:
    """A callback recording accuracies and the held-out loss about PLOT_POINTS times.

    It evaluates on data it is given, never drawing from the demo's generators, so
    ``--plot`` leaves everything the demo prints unchanged.
    """
    every = max(1, total // PLOT_POINTS)

    def callback(trainer: Trainer) -> None:
        epoch = trainer.epoch
        if epoch == 1 or epoch % every == 0 or epoch == total:
            curves.add("training accuracy", epoch, model.score(*train))
            curves.add("validation accuracy", epoch, model.score(*held_out))
            X_val, y_val = held_out
            curves.add(
                "validation loss", epoch,
                log_loss(y_val, model.predict_log_proba(X_val), model.classes_),
            )

    return callback


def _write_figure(
    path: str,
    model: Any,
    curves: Any,
    print_line: Printer,
    title: str,
    points: tuple[np.ndarray, np.ndarray] | None = None,
    weights: tuple[Any, Any, list[str] | None] | None = None,
) -> None:
    from . import plot

    # The data loss (no L2 term), like the validation loss it is drawn against.
    curves.extend("training loss", model.history_.to_dict()["data_loss"])
    X, y = points if points is not None else (None, None)
    figure = plot.training_figure(curves, model=model if points else None, X=X, y=y,
                                  weights=weights, title=title)
    print_line(f"plot written to {plot.save_figure(figure, path)}")


def _new_curves() -> Any:
    from .plot import TrainingCurves

    return TrainingCurves()


def run_logistic(
    optimizer: str = "gd",
    learning_rate: float = 0.01,
    iterations: int | None = None,
    labels: str = "round",
    n_samples: int = 1000,
    seed: int = 0,
    print_every: int = 100,
    print_line: Printer = print,
    plot: str | None = None,
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
    plot : str, optional
        Write a PNG there: the loss and accuracy curves, and the learned ``w, b``
        next to the teacher's (also rescaled to the teacher's norm: direction vs
        scale).
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
    callbacks = [_progress(print_every, print_line, fresh_test_accuracy)]
    curves = None
    if plot:
        curves = _new_curves()
        # A held-out set from a generator of its own: the printed numbers stay the same.
        held_out = make_logistic(1000, labels=labels, random_state=np.random.default_rng([seed, 2]))
        callbacks.append(_recorder(model, (X, y), held_out, iterations, curves))
    start = time.perf_counter()
    model.fit(X, y, callbacks=callbacks)
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
        model=model,
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
    if plot:
        names = [f"w{i + 1}" for i in range(w.size)] + ["b"]
        _write_figure(
            plot, model, curves, print_line,
            title=f"the seed's experiment (labels={labels}, {iterations} {what}s)",
            weights=(np.append(w, b), np.append(TEACHER_WEIGHTS, TEACHER_BIAS), names),
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
    plot: str | None = None,
) -> DemoResult:
    """Softmax regression on a softmax teacher with known weights (the seed's variant 1).

    ``plot``: write a PNG of the curves and of the learned weights (centred over
    classes) next to the teacher's.
    """
    iterations = 2001 if iterations is None else iterations
    mode = {"round": "argmax", "bernoulli": "sample"}.get(labels, labels)
    data_rng = np.random.default_rng(seed)
    X, y, W_teacher, b_teacher = make_softmax(
        n_samples, n_features=4, n_classes=n_classes, labels=mode,
        random_state=data_rng, return_teacher=True,
    )
    test_rng = np.random.default_rng([seed, 1])

    def fresh(n: int) -> tuple[np.ndarray, np.ndarray]:
        X_new, y_new = make_softmax(
            n, n_features=4, n_classes=n_classes, labels=mode, random_state=test_rng,
            weights=W_teacher, bias=b_teacher,
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
    callbacks = [_progress(print_every, print_line, fresh_test_accuracy)]
    curves = None
    if plot:
        curves = _new_curves()
        held_out = make_softmax(
            1000, n_features=4, n_classes=n_classes, labels=mode,
            random_state=np.random.default_rng([seed, 2]), weights=W_teacher, bias=b_teacher,
        )
        callbacks.append(_recorder(model, (X, y), held_out, iterations, curves))
    start = time.perf_counter()
    model.fit(X, y, callbacks=callbacks)
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
        model=model,
    )
    print_line(f"learned W (centred over classes):\n{np.array2string(W, precision=3)}")
    print_line(f"teacher W (centred over classes):\n{np.array2string(W_true, precision=3)}")
    print_line(f"cosine(learned W, teacher W): {result.cosine:.5f}")
    print_line(
        f"accuracy: train {result.train_accuracy:.4f}, held-out {result.test_accuracy:.4f} "
        f"(the teacher itself: {teacher_accuracy:.4f})"
    )
    print_line(f"training time: {seconds:.3f} s")
    if plot:
        names = [f"w{j + 1},{k}" for j in range(W.shape[0]) for k in range(W.shape[1])]
        _write_figure(
            plot, model, curves, print_line,
            title=f"softmax regression, {n_classes} classes (weights centred over classes)",
            weights=(W.ravel(), W_true.ravel(), names),
        )
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
    plot: str | None = None,
    animate: str | None = None,
    frames: int = 40,
) -> DemoResult:
    """A multi-layer network on spirals, where a linear model stays near chance.

    ``plot``: write a PNG of the curves and the decision boundary on the test
    spirals. ``animate``: write a GIF of the decision boundary as it forms, about
    ``frames`` frames, most of them early where the boundary changes
    (:func:`handnet.plot.frame_epochs`).
    """
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
    callbacks: list[Callable[[Trainer], None]] = [
        _progress(print_every, print_line, lambda: model.score(X_test, y_test))
    ]
    curves = None
    if plot:
        curves = _new_curves()
        callbacks.append(_recorder(model, (X, y), (X_test, y_test), iterations, curves))
    animation = None
    if animate:
        from .plot import BoundaryAnimation, frame_epochs

        animation = BoundaryAnimation(animate, X, y, classes=list(range(n_classes)))
        # Most frames early, where the boundary changes (geometric spacing).
        drawn = set(frame_epochs(iterations, frames))

        def add_frame(trainer: Trainer) -> None:
            if trainer.epoch in drawn:
                assert animation is not None
                animation.add_frame(
                    model,
                    f"epoch {trainer.epoch}: training accuracy {model.score(X, y):.2f}",
                )

        callbacks.append(add_frame)
    start = time.perf_counter()
    try:
        model.fit(X, y, callbacks=callbacks)
    finally:
        if animation is not None:
            animation.close()
    seconds = time.perf_counter() - start
    linear = SoftmaxRegression(max_iter=500, tol=None, random_state=seed)
    linear.fit(X, y)
    result = DemoResult(
        train_accuracy=model.score(X, y),
        test_accuracy=model.score(X_test, y_test),
        seconds=seconds,
        extra={"linear_test_accuracy": linear.score(X_test, y_test)},
        model=model,
    )
    n_params = model.network_.n_parameters
    print_line(f"learned: {n_params} parameters in {len(model.coefs_)} dense layers")
    print_line(
        f"accuracy: train {result.train_accuracy:.4f}, test {result.test_accuracy:.4f} "
        f"(a linear softmax model: {result.extra['linear_test_accuracy']:.4f})"
    )
    print_line(f"training time: {seconds:.3f} s")
    if animation is not None:
        result.extra["frames"] = animation.n_frames
        print_line(f"animation written to {animation.path} ({animation.n_frames} frames)")
    if plot:
        _write_figure(
            plot, model, curves, print_line,
            title=f"MLP {'-'.join(map(str, hidden))} on {n_classes}-arm spirals (test points)",
            points=(X_test, y_test),
        )
    return result


def run_cnn(
    optimizer: str = "adam",
    learning_rate: float = 0.001,
    iterations: int | None = None,
    seed: int = 0,
    print_every: int = 5,
    print_line: Printer = print,
    plot: str | None = None,
) -> DemoResult:
    """A small convolutional network on scikit-learn's 8x8 digits, beside an MLP.

    The images (1,797 of them, pixel values 0-16 scaled to [0, 1]) are split
    80/20, stratified by ``seed``; the CNN is :func:`handnet.models.neural_net.small_cnn`
    (two 3x3 convolutions with ReLU and 2x2 max-pooling, then a dense head),
    trained with mini-batches of 32. An MLP with one hidden layer of 64 units
    is trained on the same split for comparison.
    """
    from sklearn.datasets import load_digits

    from .datasets import train_test_split
    from .models.neural_net import NeuralNetClassifier, small_cnn

    iterations = 40 if iterations is None else iterations
    digits = load_digits()
    images = (digits.images / 16.0).reshape(-1, 1, 8, 8)
    X, X_test, y, y_test = train_test_split(
        images, digits.target, test_size=0.2, stratify=True, random_state=seed
    )
    model = NeuralNetClassifier(
        small_cnn(), optimizer=optimizer, learning_rate=learning_rate, batch_size=32,
        max_iter=iterations, tol=None, random_state=seed,
    )
    print_line(
        f"handnet demo: CNN on 8x8 digits ({len(X)} training, {len(X_test)} test images), "
        f"{optimizer}, learning rate {learning_rate}, batch size 32, {iterations} epochs"
    )
    callbacks: list[Callable[[Trainer], None]] = [
        _progress(print_every, print_line, lambda: model.score(X_test, y_test))
    ]
    curves = None
    if plot:
        curves = _new_curves()
        callbacks.append(_recorder(model, (X, y), (X_test, y_test), iterations, curves))
    start = time.perf_counter()
    model.fit(X, y, callbacks=callbacks)
    seconds = time.perf_counter() - start
    mlp = MLPClassifier(
        (64,), optimizer=optimizer, learning_rate=learning_rate, batch_size=32,
        max_iter=iterations, tol=None, random_state=seed,
    )
    mlp.fit(X.reshape(len(X), -1), y)
    result = DemoResult(
        train_accuracy=model.score(X, y),
        test_accuracy=model.score(X_test, y_test),
        seconds=seconds,
        extra={"mlp_test_accuracy": mlp.score(X_test.reshape(len(X_test), -1), y_test)},
        model=model,
    )
    print_line("network: " + " -> ".join(repr(layer) for layer in model.network_.layers[1:]))
    print_line(
        f"learned: {model.network_.n_parameters} parameters (the MLP 64-64-10: "
        f"{mlp.network_.n_parameters})"
    )
    print_line(
        f"accuracy: train {result.train_accuracy:.4f}, test {result.test_accuracy:.4f} "
        f"(the MLP: {result.extra['mlp_test_accuracy']:.4f})"
    )
    print_line(f"training time: {seconds:.3f} s")
    if plot:
        _write_figure(plot, model, curves, print_line, title="small CNN on 8x8 digits")
    return result


def quiet(_: str) -> None:
    """A printer that prints nothing."""


def _show(array: np.ndarray, count: int = 3) -> str:
    """The shape and the first ``count`` entries (rows) of an array, for --explain."""
    values = np.asarray(array)
    head = values[:count] if values.ndim else values
    text = np.array2string(head, precision=5, suppress_small=True, separator=", ")
    text = " ".join(text.split())  # one line, whatever the array's rank
    more = " ..." if values.ndim and values.shape[0] > count else ""
    return f"shape {values.shape}: {text}{more}"


def explain_step(
    seed: int = 0,
    n_samples: int = 1000,
    learning_rate: float = 0.01,
    labels: str = "round",
    print_line: Printer = print,
) -> dict[str, np.ndarray]:
    r"""Walk through ONE gradient-descent step of the seed's model, printing every array.

    The same data and initial weights as ``handnet demo`` with the same ``seed``:
    the loss printed here is the demo's "loss after iteration 0", and the
    updated ``w, b`` are what ``handnet demo --iterations 1`` ends with. Each
    quantity is computed by hand from its formula *and* by handnet's function
    for it, and the two are shown to agree.

    Returns
    -------
    dict of str to ndarray
        Every intermediate array, by name (``X``, ``Y``, ``w``, ``b``, ``z``, ``p``,
        ``loss``, ``dz``, ``dw``, ``db``, ``w_new``, ``b_new``, ``loss_new``, ...).
    """
    out: dict[str, np.ndarray] = {}
    say = print_line

    say("Step 1 - prepare the data (handnet.datasets.make_logistic)")
    X, y = make_logistic(n_samples, labels=labels, random_state=np.random.default_rng(seed))
    Y = y.reshape(-1, 1).astype(np.float64)  # the loss works on (n_samples, n_outputs)
    m = X.shape[0]
    say(f"  X = standard Gaussian inputs          {_show(X)}")
    say(f"  teacher w = {TEACHER_WEIGHTS.tolist()}, b = {TEACHER_BIAS}")
    rule = "round(sigmoid(X @ w + b))" if labels == "round" else "Bernoulli(sigmoid(X @ w + b))"
    say(f"  y = {rule:<32} {_show(y, 10)}")
    say(f"  Y = y as a column (targets)          {_show(Y)}")
    say(f"  class balance: {int(y.sum())} ones out of {m}")

    say("")
    say("Step 2 - forward (handnet.nn.layers.Dense.forward, handnet.nn.activations.sigmoid)")
    # The demo's model draws its weights from default_rng(seed) the same way.
    layer = Dense(X.shape[1], 1, init="normal", random_state=np.random.default_rng(seed))
    w, b = layer.weights.copy(), layer.bias.copy()
    say(f"  w ~ N(0, 1)                          {_show(w, 4)}")
    say("    (the demo seeds its data and its model alike, so w repeats X's first row)")
    say(f"  b = 0                                {_show(b)}")
    z = layer.forward(X)
    z_hand = X @ w + b
    say(f"  z = X @ w + b (logits)               {_show(z)}")
    say(f"    by hand, max |difference|: {np.max(np.abs(z - z_hand)):.1e}")
    p = sigmoid(z)
    say(f"  p = sigmoid(z) = 1 / (1 + e^-z)      {_show(p)}")

    say("")
    say("Step 3 - loss (handnet.nn.losses.binary_cross_entropy, from the logits)")
    per_example = np.maximum(z, 0) - Y * z + np.log1p(np.exp(-np.abs(z)))
    say(f"  l_i = max(z,0) - y z + log(1+e^-|z|) {_show(per_example)}")
    textbook = -(Y * np.log(p) + (1 - Y) * np.log(1 - p))
    say(f"    = -[y log p + (1-y) log(1-p)]      {_show(textbook)}")
    loss, dz = binary_cross_entropy(z, Y)
    say(f"  L = mean over the {m} examples = {loss:.6f}")
    say(f"    (by hand: {float(np.mean(per_example)):.6f}; the demo prints it as "
        "'loss after iteration 0')")

    say("")
    say("Step 4 - optimize: gradients (backpropagation) and one gradient-descent step")
    dz_hand = (p - Y) / m
    say(f"  dL/dz = (p - y) / m                  {_show(dz)}")
    say(f"    by hand, max |difference|: {np.max(np.abs(dz - dz_hand)):.1e}")
    layer.backward(dz)  # handnet.nn.layers.Dense.backward: X.T @ dz and sum(dz)
    dw, db = layer.grad_weights.copy(), layer.grad_bias.copy()
    say(f"  dL/dw = X.T @ dL/dz                  {_show(dw, 4)}")
    say(f"  dL/db = sum of dL/dz                 {_show(db)}")
    seed_dw = -(1.0 / m) * ((Y - p).T @ X).T  # the seed's formula: -(1/m) (y - y_hat) . x
    say(f"    the seed's dw = -(1/m) (y - p) . x, max |difference|: "
        f"{np.max(np.abs(dw - seed_dw)):.1e}")
    w_new = w - learning_rate * dw
    b_new = b - learning_rate * db
    say(f"  w <- w - {learning_rate} * dL/dw            {_show(w_new, 4)}")
    say(f"  b <- b - {learning_rate} * dL/db            {_show(b_new)}")
    loss_new, _ = binary_cross_entropy(X @ w_new + b_new, Y)
    say(f"  loss after the step: {loss_new:.6f} (was {loss:.6f}: "
        f"{'down' if loss_new < loss else 'not down'} by {loss - loss_new:.2e})")

    say("")
    say("Step 5 - predict on 200 fresh examples")
    test_rng = np.random.default_rng([seed, 1])  # the demo's first fresh test set
    X_test, y_test = make_logistic(200, labels=labels, random_state=test_rng)
    y_hat = (sigmoid(X_test @ w_new + b_new).ravel() >= 0.5).astype(np.int64)
    accuracy = float(np.mean(y_hat == y_test))
    say(f"  y_hat = round(sigmoid(X_test @ w + b)) {_show(y_hat, 10)}")
    say(f"  y_test                                 {_show(y_test.astype(np.int64), 10)}")
    say(f"  accuracy after one step: {accuracy:.3f} (the demo repeats step 2-4 "
        "5001 times)")

    out.update(
        X=X, Y=Y, w=w, b=b, z=z, p=p, loss=np.array(loss), dz=dz, dw=dw, db=db,
        w_new=w_new, b_new=b_new, loss_new=np.array(loss_new), accuracy=np.array(accuracy),
    )
    return out
