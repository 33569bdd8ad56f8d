"""The four models on problems with known answers, and against scikit-learn.

What issue 3 asks the models to show: softmax regression recovers a teacher's
weights, a multi-layer network solves what a linear model cannot, both match
scikit-learn on the digits, every update rule is usable by name, and training is
reproducible, leaves the caller's data alone and keeps float32 as float32.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import handnet
from handnet import LogisticRegression, MLPClassifier, MLPRegressor, SoftmaxRegression
from handnet.datasets import make_moons, make_softmax, make_spirals, make_xor
from handnet.optim.optimizers import (
    LBFGS,
    SGD,
    AdaGrad,
    Adam,
    AdamW,
    Momentum,
    Nesterov,
    RMSProp,
)


def single_threaded() -> contextlib.AbstractContextManager[object]:
    """Limit the BLAS/OpenMP libraries loaded so far to one thread.

    On these small matrices extra threads only contend for the cores: on a busy
    machine they made the digits fits ~100x slower. (A library loaded later, such
    as SciPy's BLAS on the first scikit-learn import, is not covered: call this
    after the imports.)
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread() -> Iterator[None]:
    with single_threaded():
        yield

def parameters(model: handnet.models._NetworkEstimator) -> np.ndarray:
    """Every trained number of a model, as one flat vector."""
    return model.network_.flat_parameters


# --- known answers -------------------------------------------------------------------------


def test_softmax_regression_recovers_the_teachers_weights() -> None:
    X, y, W, b = make_softmax(
        50_000, n_features=4, n_classes=3, labels="sample", random_state=0, return_teacher=True
    )
    model = SoftmaxRegression(optimizer="lbfgs", tol=1e-6, max_iter=200).fit(X, y)
    assert model.coef_.shape == (3, 4)  # (n_classes, n_features), as scikit-learn
    assert model.intercept_.shape == (3,)
    # Adding one vector to every class's weights leaves the softmax unchanged, so
    # only the weights centred across classes are identifiable (likewise biases).
    learned = model.coef_ - model.coef_.mean(axis=0)
    teacher = W.T - W.T.mean(axis=0)
    assert np.abs(learned - teacher).max() <= 0.1
    learned_bias = model.intercept_ - model.intercept_.mean()
    assert np.abs(learned_bias - (b - b.mean())).max() <= 0.1


def test_mlp_solves_xor_where_logistic_regression_is_at_chance() -> None:
    X, y = make_xor(800, random_state=0)
    X_test, y_test = make_xor(800, random_state=1)
    mlp = MLPClassifier(
        hidden_layer_sizes=(32,), learning_rate=0.02, batch_size=64, max_iter=300, tol=None,
        random_state=0,
    ).fit(X, y)
    linear = LogisticRegression(optimizer="lbfgs", tol=1e-6, max_iter=200).fit(X, y)
    assert mlp.score(X_test, y_test) >= 0.97
    assert linear.score(X_test, y_test) <= 0.6  # chance is 1/2


def test_mlp_solves_spirals_where_softmax_regression_cannot() -> None:
    X, y = make_spirals(900, random_state=0)
    X_test, y_test = make_spirals(900, random_state=1)
    mlp = MLPClassifier(
        hidden_layer_sizes=(64,), learning_rate=0.01, batch_size=64, max_iter=300, tol=None,
        random_state=0,
    ).fit(X, y)
    linear = SoftmaxRegression(optimizer="lbfgs", tol=1e-6, max_iter=200).fit(X, y)
    assert mlp.score(X_test, y_test) >= 0.97
    # Chance is 1/3. The best linear model does a little better (near the origin the
    # arms are separated by angle, which a linear map can partly use: ~0.53 here),
    # but stays far from what the network reaches.
    assert linear.score(X_test, y_test) <= 0.6


# --- against scikit-learn on the digits -----------------------------------------------------


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """load_digits, a fixed stratified 70/30 split, standardised on the training part."""
    datasets = pytest.importorskip("sklearn.datasets")
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = datasets.load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0
    )
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


SEEDS = range(5)


def test_softmax_regression_matches_sklearn_logistic_regression_on_digits(digits) -> None:
    from sklearn.linear_model import LogisticRegression as SkLogisticRegression

    X_train, X_test, y_train, y_test = digits
    C = 1.0
    # scikit-learn minimises C * sum(loss) + ||W||²/2; handnet mean(loss) + alpha/2 ||W||².
    # Dividing the first by C * n_train gives the second with alpha = 1 / (C * n_train).
    alpha = 1.0 / (C * len(X_train))
    handnet_scores, sklearn_scores = [], []
    with single_threaded():
        for seed in SEEDS:  # both are deterministic full-batch solvers; seeds for form
            ours = SoftmaxRegression(
                alpha=alpha, optimizer="lbfgs", tol=1e-7, max_iter=500, random_state=seed
            ).fit(X_train, y_train)
            theirs = SkLogisticRegression(C=C, tol=1e-8, max_iter=2000, random_state=seed)
            theirs.fit(X_train, y_train)
            handnet_scores.append(ours.score(X_test, y_test))
            sklearn_scores.append(theirs.score(X_test, y_test))
    assert np.mean(handnet_scores) >= np.mean(sklearn_scores) - 0.01
    # Same objective, same optimum: the weights agree (the L2 term makes them unique;
    # the free biases are compared centred).
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=2e-3)
    np.testing.assert_allclose(
        ours.intercept_ - ours.intercept_.mean(),
        theirs.intercept_ - theirs.intercept_.mean(),
        atol=2e-3,
    )


@pytest.mark.filterwarnings("ignore::handnet.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_mlp_classifier_matches_sklearn_mlp_on_digits(digits) -> None:
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier

    X_train, X_test, y_train, y_test = digits
    batch_size, alpha, epochs = 200, 1e-4, 100
    handnet_scores, sklearn_scores = [], []
    with single_threaded():
        for seed in SEEDS:
            theirs = SkMLPClassifier(
                hidden_layer_sizes=(64,), activation="relu", solver="adam",
                learning_rate_init=1e-3, batch_size=batch_size, alpha=alpha, max_iter=epochs,
                tol=1e-4, n_iter_no_change=10, random_state=seed,
            ).fit(X_train, y_train)
            ours = MLPClassifier(
                hidden_layer_sizes=(64,), activation="relu", optimizer="adam",
                learning_rate=1e-3, batch_size=batch_size,
                # scikit-learn adds 0.5 * alpha * ||W||² / batch_size to a batch's mean
                # loss; handnet adds 0.5 * alpha * ||W||²: the same is alpha / batch_size.
                alpha=alpha / batch_size,
                max_iter=epochs, tol=1e-4, n_iter_no_change=10,
                # scikit-learn initialises with Glorot-uniform (handnet's "xavier");
                # handnet's default for ReLU is He-normal, ~0.5 point lower here.
                init="xavier",
                random_state=seed,
            ).fit(X_train, y_train)
            handnet_scores.append(ours.score(X_test, y_test))
            sklearn_scores.append(theirs.score(X_test, y_test))
    assert np.mean(handnet_scores) >= np.mean(sklearn_scores) - 0.01


# --- update rules --------------------------------------------------------------------------


OPTIMIZERS = {
    "gd": lambda lr: SGD(lr),
    "sgd": lambda lr: SGD(lr),
    "momentum": lambda lr: Momentum(lr),
    "nesterov": lambda lr: Nesterov(lr),
    "adagrad": lambda lr: AdaGrad(lr),
    "rmsprop": lambda lr: RMSProp(lr),
    "adam": lambda lr: Adam(lr),
    "adamw": lambda lr: AdamW(lr),
    "lbfgs": lambda lr: LBFGS(),
}


@pytest.fixture(scope="module")
def three_classes() -> tuple[np.ndarray, np.ndarray]:
    return make_softmax(300, n_features=4, n_classes=3, random_state=0)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_each_update_rule_is_usable_by_name_and_as_an_object(name: str, three_classes) -> None:
    X, y = three_classes
    settings = dict(learning_rate=0.05, batch_size=32, max_iter=15, tol=None, random_state=0)
    by_name = SoftmaxRegression(optimizer=name, **settings).fit(X, y)
    as_object = SoftmaxRegression(optimizer=OPTIMIZERS[name](0.05), **settings).fit(X, y)
    # The name selects exactly the rule the object implements.
    np.testing.assert_array_equal(parameters(by_name), parameters(as_object))
    assert by_name.loss_curve_[-1] < 0.5 * by_name.loss_curve_[0]
    assert by_name.score(X, y) >= 0.9


def test_different_update_rules_give_different_results(three_classes) -> None:
    X, y = three_classes
    settings = dict(learning_rate=0.05, batch_size=32, max_iter=5, tol=None, random_state=0)
    results = {
        name: parameters(SoftmaxRegression(optimizer=name, **settings).fit(X, y)).copy()
        for name in OPTIMIZERS
        if name != "sgd"  # an alias of "gd"
    }
    names = list(results)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            assert not np.allclose(results[first], results[second]), (first, second)


def test_unknown_optimizer_name_is_refused(three_classes) -> None:
    X, y = three_classes
    with pytest.raises(ValueError, match="unknown optimizer"):
        SoftmaxRegression(optimizer="adamax").fit(X, y)


def test_an_optimizer_object_is_not_changed_by_fit(three_classes) -> None:
    # A schedule rewrites the optimizer's learning rate every epoch: if fit trained
    # the user's object itself, a second fit would start from the decayed rate.
    X, y = three_classes
    optimizer = SGD(0.5)
    model = SoftmaxRegression(optimizer=optimizer, schedule="exponential", max_iter=20, tol=None)
    first = parameters(model.fit(X, y)).copy()
    assert optimizer.learning_rate == 0.5
    assert optimizer.iterations == 0
    np.testing.assert_array_equal(parameters(model.fit(X, y)), first)


# --- regression ----------------------------------------------------------------------------


@pytest.mark.parametrize("n_outputs", [1, 2])
def test_mlp_regressor_fits_a_smooth_function(n_outputs: int) -> None:
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, size=(400, 1))
    X_test = rng.uniform(-3, 3, size=(200, 1))

    def target(X: np.ndarray) -> np.ndarray:
        columns = np.hstack([np.sin(X), np.cos(X)])
        return columns[:, 0] if n_outputs == 1 else columns

    y = target(X) + 0.05 * rng.standard_normal((400,) if n_outputs == 1 else (400, 2))
    model = MLPRegressor(
        hidden_layer_sizes=(32,), activation="tanh", optimizer="lbfgs", max_iter=300, tol=None,
        random_state=0,
    ).fit(X, y)
    prediction = model.predict(X_test)
    assert prediction.shape == ((200,) if n_outputs == 1 else (200, 2))
    assert model.n_outputs_ == n_outputs
    assert model.score(X_test, target(X_test)) >= 0.98


def test_mlp_regressor_output_shape_follows_y() -> None:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 3))
    settings = dict(hidden_layer_sizes=(4,), max_iter=2, tol=None, random_state=0)
    column = MLPRegressor(**settings).fit(X, X[:, :1])  # (n, 1) stays (n, 1)
    flat = MLPRegressor(**settings).fit(X, X[:, 0])
    three = MLPRegressor(**settings).fit(X, X)
    assert column.predict(X).shape == (50, 1)
    assert flat.predict(X).shape == (50,)
    assert three.predict(X).shape == (50, 3)


def test_mlp_classifier_depths_and_activations() -> None:
    X, y = make_moons(300, noise=0.1, random_state=0)
    for activation in ("relu", "tanh", "sigmoid", "leaky_relu"):
        model = MLPClassifier(
            hidden_layer_sizes=(16, 16), activation=activation, optimizer="lbfgs",
            max_iter=200, tol=None, random_state=0,
        ).fit(X, y)
        assert [w.shape for w in model.coefs_] == [(2, 16), (16, 16), (16, 1)]
        assert model.score(X, y) >= 0.95, activation
        assert model.predict_proba(X).shape == (300, 2)
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0)


# --- reproducibility and data safety -------------------------------------------------------


CONFIGS = {
    "sgd": lambda seed: LogisticRegression(
        init="normal", batch_size=1, max_iter=3, tol=None, random_state=seed
    ),
    "minibatch": lambda seed: MLPClassifier(
        hidden_layer_sizes=(8,), batch_size=16, max_iter=3, tol=None, random_state=seed
    ),
    "dropout": lambda seed: MLPClassifier(
        hidden_layer_sizes=(8,), dropout=0.3, batch_size=16, max_iter=3, tol=None,
        random_state=seed,
    ),
    "early_stopping": lambda seed: MLPClassifier(
        hidden_layer_sizes=(8,), early_stopping=True, batch_size=16, max_iter=3, tol=None,
        random_state=seed,
    ),
}


@pytest.fixture(scope="module")
def moons() -> tuple[np.ndarray, np.ndarray]:
    return make_moons(120, noise=0.2, random_state=0)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_same_seed_same_model_different_seed_different_model(config: str, moons) -> None:
    X, y = moons
    make = CONFIGS[config]
    first = parameters(make(0).fit(X, y)).copy()
    np.testing.assert_array_equal(parameters(make(0).fit(X, y)), first)
    assert not np.allclose(parameters(make(1).fit(X, y)), first)
    # A Generator as random_state works too, and equals the seed it was made from.
    np.testing.assert_array_equal(parameters(make(np.random.default_rng(0)).fit(X, y)), first)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_the_global_numpy_random_state_is_neither_used_nor_touched(config: str, moons) -> None:
    X, y = moons
    np.random.seed(0)  # noqa: NPY002 - the legacy global state is what is under test
    state = np.random.get_state()  # noqa: NPY002
    first = parameters(CONFIGS[config](0).fit(X, y)).copy()
    after = np.random.get_state()  # noqa: NPY002
    assert after[0] == state[0]
    np.testing.assert_array_equal(after[1], state[1])  # no draw from the global generator
    assert after[2:] == state[2:]
    np.random.seed(12345)  # noqa: NPY002 - a different global seed changes nothing
    np.testing.assert_array_equal(parameters(CONFIGS[config](0).fit(X, y)), first)


def _read_only(*arrays: np.ndarray) -> list[np.ndarray]:
    copies = []
    for array in arrays:
        array = np.array(array)
        array.setflags(write=False)
        copies.append(array)
    return copies


@pytest.mark.parametrize(
    "make_model",
    [
        lambda: LogisticRegression(batch_size=1, max_iter=2, tol=None, random_state=0),
        lambda: SoftmaxRegression(optimizer="lbfgs", max_iter=20, tol=None),
        lambda: MLPClassifier(
            hidden_layer_sizes=(8,), dropout=0.2, batch_size=16, early_stopping=True,
            class_weight="balanced", max_iter=3, tol=None, random_state=0,
        ),
        lambda: MLPRegressor(hidden_layer_sizes=(8,), batch_size=16, max_iter=3, tol=None,
                             random_state=0),
    ],
    ids=["logistic-sgd", "softmax-lbfgs", "mlp-classifier", "mlp-regressor"],
)
def test_the_callers_arrays_are_never_modified(make_model, moons) -> None:
    X, y = moons
    y = y.astype(np.float64)
    weights = np.linspace(0.5, 2.0, len(y))
    X_ro, y_ro, w_ro, X_val, y_val = _read_only(X, y, weights, X[:30], y[:30])
    model = make_model()
    # Read-only arrays: any write, even a shuffle in place, would raise.
    model.fit(X_ro, y_ro, sample_weight=w_ro, validation_data=(X_val, y_val))
    model.predict(X_ro)
    model.score(X_ro, y_ro)
    if hasattr(model, "predict_proba"):
        model.predict_proba(X_ro)
    if not isinstance(model.optimizer, str) or model.optimizer != "lbfgs":
        if getattr(model, "class_weight", None) == "balanced":  # refused in partial_fit
            model.set_params(class_weight={0.0: 1.0, 1.0: 2.0})
        model.set_params(early_stopping=False)  # refused in partial_fit too
        model.partial_fit(X_ro, y_ro, sample_weight=w_ro)
    np.testing.assert_array_equal(X_ro, X)
    np.testing.assert_array_equal(y_ro, y)
    np.testing.assert_array_equal(w_ro, weights)


@pytest.mark.parametrize(
    "make_model",
    [
        lambda: LogisticRegression(max_iter=5, tol=None),
        lambda: SoftmaxRegression(optimizer="lbfgs", max_iter=5, tol=None),
        lambda: MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, tol=None, random_state=0),
        lambda: MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, tol=None, random_state=0),
    ],
    ids=["logistic", "softmax", "mlp-classifier", "mlp-regressor"],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_in_float32_out(make_model, dtype, moons) -> None:
    X, y = moons
    X = X.astype(dtype)
    model = make_model().fit(X, y)
    assert parameters(model).dtype == dtype
    if isinstance(model, MLPRegressor):
        assert model.predict(X).dtype == dtype
        assert all(w.dtype == dtype for w in model.coefs_)
    else:
        assert model.predict_proba(X).dtype == dtype
        coefs = model.coefs_ if isinstance(model, MLPClassifier) else [model.coef_]
        assert all(w.dtype == dtype for w in coefs)
    # Float64 data given to a float32 model is predicted in float32 (no silent upcast).
    output = model.predict(X.astype(np.float64)) if isinstance(model, MLPRegressor) else (
        model.predict_proba(X.astype(np.float64))
    )
    assert output.dtype == dtype


def test_float32_training_reaches_the_same_answer_as_float64(moons) -> None:
    X, y = moons
    settings = dict(optimizer="lbfgs", max_iter=100, tol=1e-5)
    single = LogisticRegression(**settings).fit(X.astype(np.float32), y)
    double = LogisticRegression(**settings).fit(X, y)
    np.testing.assert_allclose(single.coef_, double.coef_, rtol=1e-3, atol=1e-3)


def test_labels_of_any_type(three_classes) -> None:
    X, y = three_classes
    names = np.array(["cat", "dog", "emu"])[y]
    model = SoftmaxRegression(optimizer="lbfgs", max_iter=100, tol=1e-6).fit(X, names)
    np.testing.assert_array_equal(model.classes_, ["cat", "dog", "emu"])
    assert model.score(X, names) >= 0.95
    assert set(model.predict(X)) <= {"cat", "dog", "emu"}


def test_models_do_not_warn_on_sensible_settings(three_classes) -> None:
    # The suite turns warnings into errors; this makes the intent explicit: a fit
    # that converges (or runs a fixed number of epochs) is silent.
    X, y = three_classes
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SoftmaxRegression(optimizer="lbfgs", max_iter=200).fit(X, y)
        MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, tol=None, random_state=0).fit(X, y)


# --- early stopping: what is kept, and on what ---------------------------------------------


@pytest.mark.parametrize("loader", ["load_iris", "load_wine"])
def test_early_stopping_keeps_a_trained_model_on_small_data(loader: str) -> None:
    """The validation *loss* decides: an accuracy on 15-18 held-out rows ties for many
    epochs, and keeping the earliest best accuracy kept models many epochs from done
    (0.47-0.80 on the whole of iris and wine with these settings)."""
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = getattr(datasets, loader)(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    for seed in range(3):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", handnet.ConvergenceWarning)
            model = MLPClassifier(early_stopping=True, random_state=seed).fit(X, y)
        curve = model.validation_loss_curve_
        assert model.best_epoch_ == int(np.argmin(curve)) + 1
        assert model.best_validation_score_ == model.validation_scores_[model.best_epoch_ - 1]
        assert model.score(X, y) >= 0.9


@pytest.mark.parametrize("model", [MLPRegressor(hidden_layer_sizes=(4,)), MLPClassifier(
    hidden_layer_sizes=(4,))])
def test_a_validation_set_of_one_row_is_refused(model: handnet.MLPRegressor) -> None:
    """R² of one row is undefined (it scored 0 every epoch and stopped training)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 2))
    y = X[:, 0] if isinstance(model, MLPRegressor) else np.tile([0, 1], 5)
    model.set_params(early_stopping=True, validation_fraction=0.1, random_state=0)
    with pytest.raises(ValueError, match=r"validation set has 1 row.*at least 2"):
        model.fit(X, y)
    assert not hasattr(model, "n_iter_")  # a refused fit leaves the model unfitted
    model.set_params(early_stopping=False)
    with pytest.raises(ValueError, match="validation set has 1 row"):
        model.fit(X, y, validation_data=(X[:1], y[:1]))
    model.set_params(validation_fraction=0.2, early_stopping=True, max_iter=3, tol=None)
    model.fit(X, y)  # two rows are enough
    assert len(model.validation_scores_) == 3


# --- no silent wrong answers on data at the edges (issue 13) --------------------------------


def _binary(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(50, 3))
    return X, (X[:, 0] > 0).astype(int)


def test_validation_labels_of_another_kind_are_refused() -> None:
    """They were scored as they were (accuracy 0 every epoch) and stopped training at once."""
    X, y = _binary()
    for y_val in (y.astype(str), np.where(y == 1, "a", "b"), y + 5):
        with pytest.raises(ValueError, match="validation_data: y contains labels not seen"):
            MLPClassifier(hidden_layer_sizes=(4,), max_iter=3).fit(
                X, y, validation_data=(X, y_val)
            )


def test_lbfgs_that_cannot_take_a_step_says_so() -> None:
    """One feature of 1e308: the gradient overflows along every step. L-BFGS returned an
    untrained model (n_iter_ 0, probabilities 0.5) without a word."""
    X, y = _binary()
    X[0, 0] = 1e308
    for model in (LogisticRegression(), SoftmaxRegression(optimizer="lbfgs")):
        with pytest.raises(handnet.DivergenceError, match="could not take a single step"):
            model.fit(X, y)


def test_outputs_that_overflow_to_nan_are_an_error_not_a_class() -> None:
    """Finite but huge features: z = inf - inf in the network. predict gave class 1."""
    X, y = _binary()
    model = MLPClassifier(hidden_layer_sizes=(2,), activation="relu", max_iter=1, tol=None,
                          random_state=0).fit(X, y)
    first, _, last = model.network_.layers
    first.weights[...] = [[10.0, 10.0], [0.0, 0.0], [0.0, 0.0]]  # 1e309: inf
    last.weights[...] = [[1.0], [-1.0]]  # inf - inf
    huge = np.array([[1e308, 0.0, 0.0]])
    for method in (model.predict, model.predict_proba, model.predict_log_proba):
        with pytest.raises(ValueError, match="overflow to NaN on 1 row"):
            method(huge)
    assert model.predict(X[:3]).shape == (3,)  # ordinary rows are fine


def test_log_probabilities_of_an_overflowing_logit_are_finite() -> None:
    """float32: z = 3e38 * 1.3 is inf; log-softmax shifted by it gave NaN."""
    X, y = _binary()
    model = LogisticRegression(learning_rate=0.1, max_iter=5, tol=None).fit(
        X.astype(np.float32), y
    )
    model.network_.layers[0].weights[0, 0] = 2.0
    row = np.array([[3e38, 0.0, 0.0]], dtype=np.float32)
    assert np.isinf(model.decision_function(row)).all()
    log_proba = model.predict_log_proba(row)
    assert np.all(~np.isnan(log_proba))
    assert log_proba[0, 1] == 0.0 and log_proba[0, 0] < -1e38
    np.testing.assert_array_equal(np.argmax(log_proba, 1), np.argmax(model.predict_proba(row), 1))


def test_nan_among_the_classes_is_refused_at_the_input() -> None:
    """save() then wrote a file that load() refused."""
    X, y = _binary()
    with pytest.raises(ValueError, match="non-finite label"):
        SoftmaxRegression(learning_rate=0.1).partial_fit(X, y, classes=[0, 1, np.nan])


def test_class_weights_that_zero_every_sample_are_refused_clearly() -> None:
    """It raised a DivergenceError blaming the learning rate."""
    X, y = _binary()
    with pytest.raises(ValueError, match="every training sample has weight 0: class_weight"):
        LogisticRegression(class_weight={0: 0, 1: 0}).fit(X, y)


def test_a_network_too_large_for_memory_is_refused_before_allocating() -> None:
    X, y = _binary()
    with pytest.raises(ValueError, match="more than this machine's"):
        MLPClassifier(hidden_layer_sizes=(2**40,)).fit(X, y)


def test_an_integer_beyond_float64_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="too large for a float64"):
        LogisticRegression().fit([[10**400, 1], [1, 2]], [0, 1])


@pytest.mark.parametrize(
    ("n_classes", "per_class", "fraction", "held_out"),
    [(4, 15, 0.1, 6), (10, 3, 0.5, 15), (10, 3, 0.9, 27), (4, 1, 0.7, 3)],
)
def test_the_stratified_early_stopping_split_holds_out_the_fraction(
    n_classes: int, per_class: int, fraction: float, held_out: int
) -> None:
    """Exactly round(fraction * n) rows held out, spread over the classes (each class's
    share rounded on its own held out 8 of 60 rows for a tenth, 20 of 30 for a half,
    and for 0.9 every row: a ZeroDivisionError)."""
    from handnet.models.splits import validation_split

    y = np.repeat(np.arange(n_classes), per_class)
    train, validation = validation_split(
        y, len(y), fraction, np.random.default_rng(0), stratified=True
    )
    assert len(validation) == held_out
    assert len(train) == len(y) - held_out
    assert sorted(np.concatenate([train, validation]).tolist()) == list(range(len(y)))
    counts = np.bincount(y[validation], minlength=n_classes)
    assert counts.max() - counts.min() <= 1  # in proportion to the (equal) class sizes
    model = MLPClassifier(
        (3,), max_iter=2, tol=None, early_stopping=True, validation_fraction=fraction,
        random_state=0,
    )
    X = np.random.default_rng(1).normal(size=(len(y), 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", handnet.ConvergenceWarning)
        model.fit(X, y)
    assert model.t_ == 2 * (len(y) - held_out)  # trained on the rest


def test_a_fresh_fit_forgets_the_last_fits_best_epoch_and_loss(tmp_path: Any) -> None:
    """A refit without validation keeps no best epoch or score from the fit before it, and
    one that takes no iteration reports best_loss_ None (it kept the last fit's)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", handnet.ConvergenceWarning)
        model = MLPClassifier(max_iter=20, early_stopping=True, random_state=0).fit(X, y)
        assert model.best_epoch_ >= 1
        model.set_params(early_stopping=False).fit(X, y)
    assert model.validation_scores_ is None
    assert not hasattr(model, "best_epoch_")
    assert not hasattr(model, "best_validation_score_")
    linear = LogisticRegression().fit(X, y)
    assert linear.best_loss_ is not None
    with pytest.warns(handnet.ConvergenceWarning):  # huge features: L-BFGS cannot step
        linear.fit(X * 1e12, y)
    assert linear.loss_curve_ == [] and linear.best_loss_ is None
    path = tmp_path / "model.npz"
    handnet.save(linear, path)
    assert handnet.load(path).best_loss_ is None


def test_zero_hidden_weights_under_relu_warn_that_they_can_never_move() -> None:
    """A classic pitfall: relu's slope at 0 is 0, so zero hidden weights stay 0 forever
    (the fit "converged" to a constant, silently). tanh's units still train."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3))
    y = (X[:, 0] > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", handnet.ConvergenceWarning)
        with pytest.warns(UserWarning, match="slope at 0 is 0"):
            model = MLPClassifier((4,), init="zeros", max_iter=20, random_state=0).fit(X, y)
        assert not model.network_.layers[0].weights.any()  # it says why: they never moved
        smooth = MLPClassifier((4,), init="zeros", activation="tanh", max_iter=20, random_state=0)
        smooth.fit(X, y)  # no warning (errors here)
    assert smooth.network_.layers[0].weights.any()


@pytest.mark.parametrize("make", [MLPClassifier, MLPRegressor])
def test_partial_fit_refuses_early_stopping_as_scikit_learn_does(make: type) -> None:
    """One call is one epoch on one chunk: nothing to stop or to restore (it was ignored
    silently; scikit-learn raises)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = (X[:, 0] > 0).astype(int)
    model = make((3,), early_stopping=True, random_state=0)
    kwargs = {"classes": [0, 1]} if make is MLPClassifier else {}
    assert not hasattr(model, "partial_fit")  # as with L-BFGS: scikit-learn's checks skip it
    with pytest.raises(AttributeError, match="not available with early_stopping=True"):
        model.partial_fit(X, y, **kwargs)
    assert not hasattr(model, "network_")  # nothing trained
    model.set_params(early_stopping=False).partial_fit(X, y, **kwargs)
