"""The training loop and its options, each checked against a hand computation.

Every test here is built so that it fails if the feature it names is broken or
silently a no-op: a gradient step is compared to the seed's formula to the last
bit, a learning-rate schedule to its formula, early stopping to the weights it
must restore, a sample weight to a repeated example, and so on.
"""

from __future__ import annotations

import itertools
import logging
import math
import warnings
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import pytest

import handnet
from handnet import Dropout, LogisticRegression, MLPClassifier, MLPRegressor, SoftmaxRegression
from handnet.datasets import make_logistic, make_moons, make_softmax
from handnet.metrics import log_loss
from handnet.optim.optimizers import SGD
from handnet.optim.schedules import StepDecay


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread() -> Iterator[None]:
    """Run BLAS on one thread: on these small matrices extra threads only contend
    for the cores (on a busy machine they made small fits ~100x slower)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        yield
        return
    with threadpool_limits(limits=1):
        yield


# --- helpers -------------------------------------------------------------------------------


class RecordingSGD(SGD):
    """Plain SGD that reports a copy of the flat parameter vector after every step.

    The model trains a copy of an optimizer object it is given, so the snapshots
    go to a callable (``list.append`` of a list the test owns), which copying
    keeps pointing at the test's list.
    """

    def __init__(self, learning_rate: float, record: Callable[[np.ndarray], None]) -> None:
        super().__init__(learning_rate)
        self.record = record

    def step(self, pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> None:
        pairs = list(pairs)
        super().step(pairs)
        self.record(pairs[0][0].copy())


def record_parameters(store: list[np.ndarray]) -> Callable[[handnet.training.Trainer], None]:
    """A fit callback that keeps a copy of the flat parameters after every epoch."""

    def callback(trainer: handnet.training.Trainer) -> None:
        store.append(trainer.network.flat_parameters.copy())

    return callback


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The seed's sigmoid, 1 / (1 + e^-z)."""
    return 1.0 / (1.0 + np.exp(-z))


def binary_data(n: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    y = (rng.random(n) < 0.5).astype(np.float64)
    y[:2] = [0.0, 1.0]  # both classes present whatever the draw
    return X, y


# --- one step, by hand ---------------------------------------------------------------------


def test_one_full_batch_gd_step_equals_the_seed_formula() -> None:
    # m = 8 rows: a power of two, so scaling by 1/m is exact and commutes with the
    # sums. The products X.T @ r (the seed's) and r @ X (handnet's) may add their
    # eight terms in different orders, depending on the BLAS build (NumPy 2.4's
    # does here), so the weights agree to the last bit or two, not bit for bit; so
    # does the intercept where handnet compile's kernel sums the residuals.
    X, y = binary_data(8)
    seed, lr = 7, 0.5
    model = LogisticRegression(
        init="normal", learning_rate=lr, max_iter=1, tol=None, random_state=seed
    ).fit(X, y)

    # init="normal" draws w ~ N(0, 1) from the model's generator; b starts at 0.
    w = np.random.default_rng(seed).standard_normal((3, 1))
    b = 0.0
    y_hat = sigmoid(X @ w + b)
    m = len(y)
    dw = -(1.0 / m) * (X.T @ (y[:, None] - y_hat))
    db = -(1.0 / m) * np.sum(y[:, None] - y_hat)

    np.testing.assert_allclose(model.coef_, (w - lr * dw).T, rtol=4 * np.finfo(float).eps, atol=0)
    np.testing.assert_allclose(model.intercept_, [b - lr * db], rtol=4 * np.finfo(float).eps,
                               atol=0)
    # The recorded loss is the mean cross-entropy before the step.
    expected_loss = -np.mean(y * np.log(y_hat[:, 0]) + (1 - y) * np.log(1 - y_hat[:, 0]))
    assert model.loss_curve_ == pytest.approx([expected_loss], rel=1e-13)


def test_one_sgd_step_uses_only_the_first_example_of_the_epochs_permutation() -> None:
    X, y = binary_data(6, seed=1)
    seed, lr = 3, 0.5
    snapshots: list[np.ndarray] = []
    LogisticRegression(
        init="normal",
        optimizer=RecordingSGD(lr, snapshots.append),
        batch_size=1,
        max_iter=1,
        tol=None,
        random_state=seed,
    ).fit(X, y)
    assert len(snapshots) == len(X)  # one epoch of SGD is one step per example

    # The model's generator draws the initial weights first, then the epoch's order.
    generator = np.random.default_rng(seed)
    w = generator.standard_normal((3, 1))
    b = 0.0
    order = generator.permutation(len(X))

    def sgd_step(w: np.ndarray, b: float, i: int) -> tuple[np.ndarray, float]:
        x, target = X[i : i + 1], y[i]  # ONE example: m = 1 in the seed's formula
        y_hat = sigmoid(x @ w + b)[0, 0]
        dw = -(target - y_hat) * x.T
        db = -(target - y_hat)
        return w - lr * dw, b - lr * db

    w1, b1 = sgd_step(w, b, int(order[0]))
    np.testing.assert_array_equal(snapshots[0], np.append(w1.ravel(), b1))
    # A step on any other example would differ: the test can tell which was used.
    w_other, b_other = sgd_step(w, b, int(order[1]))
    assert not np.array_equal(snapshots[0], np.append(w_other.ravel(), b_other))

    # And the whole epoch is the steps in the permutation's order.
    for i, snapshot in zip(order, snapshots, strict=True):
        w, b = sgd_step(w, b, int(i))
        np.testing.assert_array_equal(snapshot, np.append(w.ravel(), b))


# --- optimisers ----------------------------------------------------------------------------


def _lr_gradient(X: np.ndarray, y: np.ndarray, alpha: float, theta: np.ndarray) -> np.ndarray:
    """Gradient of mean cross-entropy + alpha/2 ||w||² (not on b), by hand."""
    w, b = theta[:-1], theta[-1]
    residual = sigmoid(X @ w + b) - y
    return np.append(X.T @ residual / len(y) + alpha * w, np.mean(residual))


def test_lbfgs_reaches_the_l2_logistic_optimum_in_far_fewer_iterations_than_gd() -> None:
    X, y = make_logistic(500, labels="bernoulli", random_state=0)
    X = X * np.array([5.0, 1.0, 0.5, 0.2])  # unequal feature scales, as in raw data
    alpha = 1e-2

    lbfgs = LogisticRegression(alpha=alpha, optimizer="lbfgs", tol=1e-8, max_iter=100).fit(X, y)
    theta = np.append(lbfgs.coef_.ravel(), lbfgs.intercept_)
    assert np.linalg.norm(_lr_gradient(X, y, alpha, theta)) <= 1e-6

    # GD with the classical safe step 1/L (L bounds the loss's curvature), stopped by
    # a callback as soon as it reaches the same gradient norm.
    X1 = np.hstack([X, np.ones((len(X), 1))])
    lipschitz = np.linalg.eigvalsh(X1.T @ X1 / len(X)).max() / 4 + alpha
    norms: list[float] = []

    def reached_optimum(trainer: handnet.training.Trainer) -> bool:
        norms.append(np.linalg.norm(_lr_gradient(X, y, alpha, trainer.network.flat_parameters)))
        return norms[-1] <= 1e-6

    gd = LogisticRegression(
        alpha=alpha, learning_rate=1.0 / lipschitz, tol=None, max_iter=20_000
    ).fit(X, y, callbacks=[reached_optimum])
    assert norms[-1] <= 1e-6  # GD gets there too...
    assert lbfgs.n_iter_ <= 30
    assert gd.n_iter_ >= 20 * lbfgs.n_iter_  # ...but with far more iterations
    # Both at the same optimum (a gradient of 1e-6 over curvature ~alpha leaves ~1e-4).
    np.testing.assert_allclose(gd.coef_, lbfgs.coef_, atol=1e-3)


# --- schedules -----------------------------------------------------------------------------


def _plateau_rates(losses: list[float], eta0: float) -> list[float]:
    """ReduceOnPlateau's documented rule (factor 0.1, patience 10, threshold 1e-4)."""
    rates, scale, best, bad = [], 1.0, math.inf, 0
    for loss in losses:
        rates.append(eta0 * scale)
        if loss < best * (1 - 1e-4):
            best, bad = loss, 0
        else:
            bad += 1
            if bad > 10:
                scale, bad = scale * 0.1, 0
    return rates


@pytest.mark.parametrize(
    ("schedule", "formula"),
    [
        ("constant", lambda eta0, t, T: eta0),
        ("step", lambda eta0, t, T: eta0 * 0.1 ** (t // 10)),
        ("exponential", lambda eta0, t, T: eta0 * 0.95**t),
        ("cosine", lambda eta0, t, T: 0.5 * eta0 * (1 + math.cos(math.pi * t / T))),
        ("invscaling", lambda eta0, t, T: eta0 / (t + 1) ** 0.5),
        (StepDecay(step_size=3, gamma=0.5), lambda eta0, t, T: eta0 * 0.5 ** (t // 3)),
    ],
    ids=["constant", "step", "exponential", "cosine", "invscaling", "StepDecay-object"],
)
def test_each_schedule_sets_the_learning_rate_its_formula_gives(schedule, formula) -> None:
    X, y = make_logistic(200, labels="bernoulli", random_state=1)
    eta0, epochs = 0.3, 25
    model = LogisticRegression(
        learning_rate=eta0, schedule=schedule, max_iter=epochs, tol=None
    ).fit(X, y)
    expected = [formula(eta0, t, epochs) for t in range(epochs)]
    np.testing.assert_allclose(model.history_.learning_rate, expected, rtol=1e-14)
    if schedule != "constant":
        # The rate really drives the updates: the result differs from a constant rate.
        constant = LogisticRegression(learning_rate=eta0, max_iter=epochs, tol=None).fit(X, y)
        assert not np.allclose(model.coef_, constant.coef_)


def test_reduce_on_plateau_cuts_the_rate_once_the_loss_stops_improving() -> None:
    X, y = make_logistic(200, labels="bernoulli", random_state=1)
    model = LogisticRegression(learning_rate=1.0, schedule="plateau", max_iter=80, tol=None)
    model.fit(X, y)
    rates = model.history_.learning_rate
    np.testing.assert_allclose(rates, _plateau_rates(model.loss_curve_, 1.0), rtol=1e-14)
    assert rates[0] == 1.0
    assert min(rates) < 1.0  # the plateau was reached within the run: not vacuous


# --- regularisation ------------------------------------------------------------------------


def test_dropout_layer_masks_and_rescales_in_training_and_is_the_identity_in_eval() -> None:
    X = np.ones((200, 50))
    layer = Dropout(0.4, random_state=0)
    first = layer.forward(X, training=True)
    mask = layer.mask
    second = layer.forward(X, training=True)
    assert not np.array_equal(first, second)  # a fresh mask every forward
    assert set(np.unique(first)) == {0.0, 1.0 / 0.6}  # inverted dropout's rescale
    assert abs(np.mean(first == 0) - 0.4) < 0.02
    # Backward re-applies the mask of the last forward pass.
    dout = np.arange(X.size, dtype=np.float64).reshape(X.shape)
    layer.forward(X, training=True)
    np.testing.assert_array_equal(layer.backward(dout), dout * layer.mask)
    assert mask is not None
    # Evaluation: nothing dropped, nothing rescaled, deterministic.
    np.testing.assert_array_equal(layer.forward(X, training=False), X)
    np.testing.assert_array_equal(layer.backward(dout), dout)


def test_dropout_changes_training_but_not_prediction() -> None:
    X, y = make_moons(200, noise=0.2, random_state=0)
    settings = dict(hidden_layer_sizes=(32,), max_iter=20, tol=None, random_state=0)
    plain = MLPClassifier(**settings).fit(X, y)
    dropped = MLPClassifier(dropout=0.5, **settings).fit(X, y)
    # Same seed, same initial weights: only the masks can make the results differ.
    assert not np.allclose(plain.coefs_[0], dropped.coefs_[0])
    # Training mode draws masks; prediction (eval mode) is deterministic.
    network = dropped.network_
    assert not np.array_equal(network.forward(X, training=True), network.forward(X, training=True))
    np.testing.assert_array_equal(dropped.predict_proba(X), dropped.predict_proba(X))


@pytest.mark.parametrize("how", ["early_stopping", "validation_data"])
def test_early_stopping_restores_the_best_epochs_weights(how: str) -> None:
    X, y = make_moons(300, noise=0.35, random_state=0)
    X_val, y_val = make_moons(100, noise=0.35, random_state=1)
    epochs: list[np.ndarray] = []
    model = MLPClassifier(
        hidden_layer_sizes=(32,),
        learning_rate=0.02,
        batch_size=32,
        max_iter=300,
        n_iter_no_change=5,
        early_stopping=how == "early_stopping",
        validation_fraction=0.25,
        random_state=0,
    )
    fit_kwargs = {"validation_data": (X_val, y_val)} if how == "validation_data" else {}
    model.fit(X, y, callbacks=[record_parameters(epochs)], **fit_kwargs)

    scores = model.validation_scores_
    losses = model.validation_loss_curve_
    assert model.n_iter_ < model.max_iter  # it stopped early
    assert len(scores) == len(losses) == len(epochs) == model.n_iter_
    # The kept epoch is the one of the lowest validation loss (the earliest of equals).
    best = int(np.argmin(losses))
    assert best < len(scores) - 1  # the last epoch was worse: restoring matters here
    np.testing.assert_array_equal(model.network_.flat_parameters, epochs[best])
    assert not np.array_equal(model.network_.flat_parameters, epochs[-1])
    assert model.best_epoch_ == best + 1
    assert model.best_validation_score_ == scores[best]
    # The recorded loss is the model's loss on the held-out rows at that epoch.
    held_out = (X_val, y_val) if how == "validation_data" else None
    if held_out is not None:
        expected = log_loss(held_out[1], model.predict_log_proba(X_val), model.classes_)
        assert losses[best] == pytest.approx(expected, rel=1e-12)


def test_gradient_clipping_bounds_every_step_by_learning_rate_times_clip_norm() -> None:
    X, y = make_logistic(100, random_state=0)
    lr, clip = 0.5, 1e-3
    steps: list[np.ndarray] = []
    LogisticRegression(
        optimizer=RecordingSGD(lr, steps.append),
        batch_size=10,
        clip_norm=clip,
        max_iter=3,
        tol=None,
    ).fit(X, y)
    path = np.vstack([np.zeros(X.shape[1] + 1), *steps])  # init="zeros"
    moves = np.linalg.norm(np.diff(path, axis=0), axis=1)
    assert len(moves) == 30
    assert np.all(moves <= lr * clip * (1 + 1e-12))
    # Every raw gradient here is far larger than 1e-3, so each step is clipped to
    # exactly lr * clip_norm; without clipping the steps are orders larger.
    np.testing.assert_allclose(moves, lr * clip, rtol=1e-9)
    unclipped: list[np.ndarray] = []
    LogisticRegression(
        optimizer=RecordingSGD(lr, unclipped.append), batch_size=10, max_iter=1, tol=None
    ).fit(X, y)
    assert np.linalg.norm(unclipped[0]) > 100 * lr * clip


# --- sample and class weights --------------------------------------------------------------


@pytest.mark.parametrize(
    ("make_model", "n_classes"),
    [
        (lambda: LogisticRegression(learning_rate=0.5, max_iter=50, tol=None), 2),
        (lambda: SoftmaxRegression(learning_rate=0.5, max_iter=50, tol=None), 3),
        (
            lambda: MLPRegressor(
                hidden_layer_sizes=(8,), optimizer="gd", learning_rate=0.05,
                batch_size=None, max_iter=50, tol=None, random_state=0,
            ),
            5,  # regression targets 0..4
        ),
    ],
    ids=["logistic", "softmax", "mlp-regressor"],
)
def test_sample_weight_two_equals_the_example_repeated_twice(make_model, n_classes) -> None:
    # Full-batch GD: the weighted mean loss with a weight of 2 is, term for term, the
    # mean loss with the example written twice, so the trajectories coincide.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3))
    y = np.arange(20) % n_classes
    weights = np.ones(20)
    weights[[3, 11]] = 2.0
    weighted = make_model().fit(X, y, sample_weight=weights)
    repeated = make_model().fit(np.vstack([X, X[[3, 11]]]), np.concatenate([y, y[[3, 11]]]))
    unweighted = make_model().fit(X, y)
    theta = weighted.network_.flat_parameters
    np.testing.assert_allclose(theta, repeated.network_.flat_parameters, rtol=0, atol=1e-12)
    assert not np.allclose(theta, unweighted.network_.flat_parameters, rtol=0, atol=1e-6)
    # A weight of 0 removes the example.
    weights[5] = 0.0
    zeroed = make_model().fit(X, y, sample_weight=weights)
    keep = np.arange(20) != 5
    removed = make_model().fit(X[keep], y[keep], sample_weight=weights[keep])
    np.testing.assert_allclose(
        zeroed.network_.flat_parameters, removed.network_.flat_parameters, rtol=0, atol=1e-12
    )


def _imbalanced(n: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Class 1 is the rare one (about 8%), and the classes overlap."""
    return make_logistic(n, w=[1.0, -1.0], b=-3.0, labels="bernoulli", random_state=seed)


def test_balanced_class_weight_raises_minority_recall() -> None:
    X, y = _imbalanced()
    assert 0.03 < y.mean() < 0.15
    settings = dict(optimizer="lbfgs", max_iter=200, tol=1e-8)
    plain = LogisticRegression(**settings).fit(X, y)
    balanced = LogisticRegression(class_weight="balanced", **settings).fit(X, y)
    X_test, y_test = _imbalanced(4000, seed=1)
    minority = y_test == 1

    def recall(model: LogisticRegression) -> float:
        return float(np.mean(model.predict(X_test[minority]) == 1))

    assert recall(plain) < 0.3
    assert recall(balanced) > recall(plain) + 0.3
    # "balanced" is n / (n_classes * count), scikit-learn's definition.
    counts = np.bincount(y)
    per_class = len(y) / (2 * counts)
    as_weights = LogisticRegression(**settings).fit(X, y, sample_weight=per_class[y])
    np.testing.assert_allclose(balanced.coef_, as_weights.coef_, rtol=1e-10)


def test_partial_fit_refuses_balanced_class_weight() -> None:
    """A chunk's class counts are not the data's: partial_fit asks for explicit weights."""
    X, y = _imbalanced(300)
    model = MLPClassifier((4,), class_weight="balanced", random_state=0)
    with pytest.raises(ValueError, match=r"'balanced' is not available in partial_fit.*"
                                         r"class_weight=\{label: weight\}"):
        model.partial_fit(X, y, classes=[0, 1])
    assert not hasattr(model, "coef_") and not hasattr(model, "network_")
    model.set_params(class_weight={1: 4.0}).partial_fit(X, y, classes=[0, 1])  # explicit: fine


def test_class_weight_dict_is_a_per_class_sample_weight() -> None:
    X, y = _imbalanced(300)
    settings = dict(learning_rate=0.5, max_iter=30, tol=None)
    by_class = LogisticRegression(class_weight={1: 4.0}, **settings).fit(X, y)
    by_sample = LogisticRegression(**settings).fit(X, y, sample_weight=np.where(y == 1, 4.0, 1.0))
    plain = LogisticRegression(**settings).fit(X, y)
    np.testing.assert_array_equal(by_class.coef_, by_sample.coef_)
    assert not np.allclose(by_class.coef_, plain.coef_)
    # Class weights and sample weights multiply.
    sw = np.linspace(0.5, 1.5, len(y))
    both = LogisticRegression(class_weight={1: 4.0}, **settings).fit(X, y, sample_weight=sw)
    product = LogisticRegression(**settings).fit(X, y, sample_weight=sw * np.where(y == 1, 4, 1))
    np.testing.assert_allclose(both.coef_, product.coef_, rtol=1e-12)


# --- L2 ------------------------------------------------------------------------------------


def test_larger_l2_gives_smaller_weights() -> None:
    X, y = make_logistic(300, labels="bernoulli", random_state=2)
    norms = [
        np.linalg.norm(
            LogisticRegression(alpha=alpha, optimizer="lbfgs", tol=1e-8, max_iter=200)
            .fit(X, y)
            .coef_
        )
        for alpha in (0.0, 0.01, 0.1, 1.0)
    ]
    assert all(a > b for a, b in itertools.pairwise(norms)), norms
    # The MLP's penalty reaches every layer's weights.
    Xm, ym = make_moons(200, noise=0.2, random_state=0)
    settings = dict(hidden_layer_sizes=(16,), optimizer="lbfgs", max_iter=100, tol=None,
                    random_state=0)
    small = MLPClassifier(alpha=1e-4, **settings).fit(Xm, ym)
    large = MLPClassifier(alpha=1e-1, **settings).fit(Xm, ym)
    for w_small, w_large in zip(small.coefs_, large.coefs_, strict=True):
        assert np.linalg.norm(w_large) < np.linalg.norm(w_small)


def test_biases_are_not_penalised() -> None:
    # With a huge alpha the weights are crushed to ~0, but the free intercept still
    # fits the class prior. A penalised bias would be pulled to 0 (p = 1/2).
    X, y = _imbalanced(1000)
    prior = y.mean()
    model = LogisticRegression(alpha=1e4, optimizer="lbfgs", tol=1e-10, max_iter=200).fit(X, y)
    assert np.abs(model.coef_).max() < 1e-4
    assert model.intercept_[0] == pytest.approx(np.log(prior / (1 - prior)), abs=1e-4)

    # Same for the multi-layer network: its output bias alone carries the prior.
    X3, y3 = make_softmax(600, n_features=3, n_classes=3, bias=[2.0, 0.0, -1.0],
                          weights=np.zeros((3, 3)), labels="sample", random_state=0)
    frequencies = np.bincount(y3) / len(y3)
    mlp = MLPClassifier(hidden_layer_sizes=(8,), alpha=1e4, optimizer="lbfgs", max_iter=200,
                        tol=1e-10, random_state=0).fit(X3, y3)
    for weights in mlp.coefs_:
        assert np.abs(weights).max() < 1e-4
    np.testing.assert_allclose(mlp.predict_proba(X3[:5]), np.tile(frequencies, (5, 1)), atol=1e-4)


# --- partial_fit, warm_start, warnings -----------------------------------------------------


def test_partial_fit_is_one_epoch_and_declares_classes_on_the_first_call() -> None:
    X, y = make_softmax(300, n_features=3, n_classes=3, random_state=0)
    settings = dict(learning_rate=0.1, batch_size=16, random_state=0)

    with pytest.raises(ValueError, match="classes"):
        SoftmaxRegression(**settings).partial_fit(X, y)  # no classes on the first call

    incremental = SoftmaxRegression(**settings).partial_fit(X, y, classes=[0, 1, 2])
    one_epoch = SoftmaxRegression(max_iter=1, tol=None, **settings).fit(X, y)
    np.testing.assert_array_equal(incremental.coef_, one_epoch.coef_)
    assert incremental.n_iter_ == 1

    # Later calls continue (one more epoch each) and may omit classes.
    before = incremental.coef_.copy()
    incremental.partial_fit(X, y)
    assert incremental.n_iter_ == 2
    assert not np.array_equal(incremental.coef_, before)
    with pytest.raises(ValueError, match="not seen"):
        incremental.partial_fit(X[:5], np.array([0, 1, 2, 7, 1]))
    with pytest.raises(ValueError, match="differs"):
        incremental.partial_fit(X, y, classes=[0, 1, 2, 3])

    # A first batch that lacks a class still gets every declared class.
    partial = SoftmaxRegression(**settings).partial_fit(X[y != 2], y[y != 2], classes=[0, 1, 2])
    np.testing.assert_array_equal(partial.classes_, [0, 1, 2])
    assert partial.predict_proba(X).shape == (300, 3)


def test_warm_start_continues_from_the_previous_weights() -> None:
    X, y = make_logistic(200, labels="bernoulli", random_state=3)
    settings = dict(learning_rate=0.5, max_iter=5, tol=None)
    # Full-batch GD keeps no optimizer state: 5 epochs, then 5 more warm-started,
    # are exactly 10 epochs.
    warm = LogisticRegression(warm_start=True, **settings).fit(X, y).fit(X, y)
    ten = LogisticRegression(learning_rate=0.5, max_iter=10, tol=None).fit(X, y)
    np.testing.assert_array_equal(warm.coef_, ten.coef_)
    np.testing.assert_array_equal(warm.loss_curve_, ten.loss_curve_)
    # Without warm_start the second fit starts over.
    cold = LogisticRegression(**settings).fit(X, y).fit(X, y)
    five = LogisticRegression(**settings).fit(X, y)
    np.testing.assert_array_equal(cold.coef_, five.coef_)

    # An Adam MLP resumes where it stopped: its next first loss is near its last.
    Xm, ym = make_moons(200, noise=0.2, random_state=0)
    mlp = MLPClassifier(hidden_layer_sizes=(16,), learning_rate=0.01, max_iter=30, tol=None,
                        warm_start=True, random_state=0).fit(Xm, ym)
    first_run = list(mlp.loss_curve_)
    mlp.fit(Xm, ym)
    resumed = mlp.loss_curve_[30]
    assert resumed < 0.5 * first_run[0]
    assert resumed == pytest.approx(first_run[-1], rel=0.1)


def test_convergence_warning_when_max_iter_ends_before_tol() -> None:
    X, y = make_logistic(200, labels="bernoulli", random_state=0)
    with pytest.warns(handnet.ConvergenceWarning, match="max_iter"):
        LogisticRegression(max_iter=3).fit(X, y)
    with pytest.warns(handnet.ConvergenceWarning):
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, y)
    with pytest.warns(handnet.ConvergenceWarning):
        LogisticRegression(optimizer="lbfgs", max_iter=2, tol=1e-12).fit(X, y)


def test_convergence_warning_advice_follows_the_loss() -> None:
    """A loss that rose says "lower the learning rate"; a falling one "raise max_iter";
    L-BFGS, which has no learning rate, is not told to change one."""
    X, y = make_softmax(300, n_features=8, random_state=0)
    X = 10 * X  # unscaled features: a step of 1.0 is far too large for them
    with pytest.warns(handnet.ConvergenceWarning) as rising:
        MLPClassifier(hidden_layer_sizes=(16,), optimizer="sgd", learning_rate=1.0,
                      max_iter=5, random_state=0).fit(X, y)
    message = str(rising[0].message)
    assert "went up" in message and "learning rate (1) is too large" in message
    assert "raise the learning rate" not in message
    with pytest.warns(handnet.ConvergenceWarning) as falling:
        MLPClassifier(hidden_layer_sizes=(16,), optimizer="sgd", learning_rate=1e-4,
                      max_iter=3, random_state=0).fit(X, y)
    assert "raise max_iter" in str(falling[0].message)
    assert "went up" not in str(falling[0].message)
    with pytest.warns(handnet.ConvergenceWarning) as lbfgs:
        MLPClassifier(hidden_layer_sizes=(16,), optimizer="lbfgs", max_iter=2,
                      random_state=0).fit(X, y)
    assert "learning rate" not in str(lbfgs[0].message)


def test_no_convergence_warning_with_tol_none_converged_runs_or_partial_fit() -> None:
    X, y = make_logistic(200, labels="bernoulli", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LogisticRegression(max_iter=3, tol=None).fit(X, y)
        LogisticRegression(optimizer="lbfgs", max_iter=2, tol=None).fit(X, y)
        converged = LogisticRegression(max_iter=10_000, tol=1e-4).fit(X, y)
        # partial_fit is one pass by design; reaching its end is no failure.
        LogisticRegression(optimizer="sgd").partial_fit(X, y, classes=[0, 1]).partial_fit(X, y)
    assert converged.n_iter_ < 10_000


def test_callbacks_see_every_epoch_and_can_stop_training() -> None:
    X, y = make_logistic(200, labels="bernoulli", random_state=0)
    seen: list[int] = []
    # Stopped by tol: the callback hears the last epoch too.
    model = LogisticRegression(max_iter=10_000, tol=1e-3).fit(
        X, y, callbacks=[lambda trainer: seen.append(trainer.epoch)]
    )
    assert seen == list(range(1, model.n_iter_ + 1))
    # A callback returning True stops training after that epoch.
    stopped = LogisticRegression(max_iter=100, tol=None).fit(
        X, y, callbacks=[lambda trainer: trainer.epoch == 7]
    )
    assert stopped.n_iter_ == 7


# --- the oscillation warning: rising losses only, full batch only ---------------------------


def test_a_full_batch_loss_that_keeps_falling_does_not_warn() -> None:
    """Separable data, large steps: the loss falls every epoch, by less than tol at the
    end. The stopping rule then ends training; that is convergence, not oscillation."""
    X, y = make_logistic(200, random_state=0)  # the seed's rounded labels: separable
    X = (X - X.mean(0)) / X.std(0)
    for learning_rate in (2.0, 4.0, 8.0):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model = LogisticRegression(optimizer="gd", learning_rate=learning_rate,
                                       max_iter=100_000).fit(X, y)
        assert model.n_iter_ < 100_000
        assert all(b <= a for a, b in itertools.pairwise(model.loss_curve_[-11:]))


def test_mini_batch_noise_is_no_oscillation() -> None:
    """Adam on mini-batches of standardised digits: epoch losses wobble near 0."""
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_digits(return_X_y=True)
    X = (X - X.mean(0)) / np.maximum(X.std(0), 1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = SoftmaxRegression(optimizer="adam", learning_rate=0.01, batch_size=32,
                                  max_iter=300, random_state=0).fit(X, y)
    assert model.n_iter_ < 300 and model.score(X, y) > 0.99


def test_a_mini_batch_loss_that_blows_up_is_no_convergence() -> None:
    """Mini-batch SGD with too large a step on unscaled features: the loss climbs by
    orders of magnitude until the stopping rule fires; that gets the warning."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    y = (X[:, 0] + X[:, 1] + 0.5 * rng.normal(size=400) > 0).astype(int)
    model = MLPClassifier((16,), optimizer="sgd", learning_rate=0.05, batch_size=32,
                          random_state=0)
    with pytest.warns(handnet.ConvergenceWarning, match="did not settle"):
        model.fit(100 * X, y)
    assert max(model.loss_curve_) > 100 * model.loss_curve_[0]


def test_an_oscillating_run_warns_with_early_stopping_too() -> None:
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 20, (50, 2)), rng.normal(5, 20, (50, 2))])
    y = np.repeat([0, 1], 50)
    model = LogisticRegression(optimizer="gd", learning_rate=0.1, early_stopping=True,
                               class_weight={0: 1000, 1: 0.0001}, random_state=0)
    with pytest.warns(handnet.ConvergenceWarning, match="did not settle") as caught:
        model.fit(X, y)
    assert "optimizer='lbfgs' or 'adam'" in str(caught[0].message)
    # Adam is not offered to a run already on Adam.
    adam = LogisticRegression(optimizer="adam", learning_rate=5.0, batch_size=None,
                              early_stopping=True, class_weight={0: 1000, 1: 0.0001},
                              random_state=0)
    with pytest.warns(handnet.ConvergenceWarning, match="did not settle") as caught:
        adam.fit(X, y)
    assert str(caught[0].message).endswith("or use optimizer='lbfgs'.")


# --- early stopping with L-BFGS, and what an interrupted fit reports -------------------------


def test_lbfgs_early_stopping_counts_iterations_and_keeps_the_best() -> None:
    """L-BFGS (the linear models' default) used to ignore early_stopping and
    validation_data silently, holding out rows and throwing them away."""
    X, y = make_moons(300, noise=0.3, random_state=0)
    epochs: list[np.ndarray] = []
    model = MLPClassifier(hidden_layer_sizes=(32,), optimizer="lbfgs", early_stopping=True,
                          validation_fraction=0.3, n_iter_no_change=5, max_iter=500,
                          random_state=0).fit(X, y, callbacks=[record_parameters(epochs)])
    curve = model.validation_loss_curve_
    assert len(curve) == len(model.validation_scores_) == len(epochs) == model.n_iter_
    assert model.n_iter_ < 500
    assert model.best_epoch_ == int(np.argmin(curve)) + 1
    np.testing.assert_array_equal(model.network_.flat_parameters, epochs[model.best_epoch_ - 1])
    linear = LogisticRegression(random_state=0).fit(X, y, validation_data=(X[:50], y[:50]))
    assert linear.validation_scores_ and linear.best_epoch_ >= 1


def test_an_interrupted_fit_claims_no_kept_epoch() -> None:
    """It holds the last step's parameters (so a resume continues exactly), not the
    best epoch's: best_epoch_ would name parameters it does not have."""
    import signal

    X, y = make_moons(200, noise=0.3, random_state=0)

    def interrupt(trainer: object) -> None:
        if getattr(trainer, "epoch", 0) == 8:
            signal.raise_signal(signal.SIGINT)

    model = MLPClassifier(hidden_layer_sizes=(8,), learning_rate=0.02, early_stopping=True,
                          max_iter=50, tol=None, random_state=0)
    logging.getLogger("handnet.training").disabled = True
    try:
        model.fit(X, y, callbacks=[interrupt])
    finally:
        logging.getLogger("handnet.training").disabled = False
    assert model.n_iter_ == 8
    assert not hasattr(model, "best_epoch_") and not hasattr(model, "best_validation_score_")


def test_partial_fit_of_the_linear_defaults() -> None:
    """optimizer='auto' is L-BFGS there (no partial_fit, as scikit-learn's
    LogisticRegression); with a learning rate it is gradient descent, with one."""
    X, y = make_logistic(100, labels="bernoulli", random_state=0)
    assert not hasattr(LogisticRegression(), "partial_fit")
    model = LogisticRegression(learning_rate=0.1)
    model.partial_fit(X, y, classes=[0, 1]).partial_fit(X, y)
    assert model.n_iter_ == 2


def test_a_warm_start_lbfgs_refit_at_its_optimum_is_no_divergence() -> None:
    """A refit from a finished L-BFGS fit may find no step that lowers the loss: it is
    at the minimum already. That is no overflow (review of issue 13)."""
    rng = np.random.default_rng(0)
    for trial in range(10):
        X = rng.normal(size=(200, 5))
        y = (X @ rng.normal(size=5) + rng.normal(size=200) > 0).astype(int)
        model = MLPClassifier(hidden_layer_sizes=(4,), optimizer="lbfgs", warm_start=True,
                              random_state=trial, max_iter=500)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", handnet.ConvergenceWarning)
            model.fit(X, y)
            model.fit(X, y)  # raised DivergenceError in 1 of 30 such refits
