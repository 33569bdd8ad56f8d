"""handnet.sklearn: scikit-learn's MLP API on handnet's math, checked against scikit-learn.

Same constructor, same hyperparameter semantics (alpha scaled by the batch, learning
rate schedules per sample, adaptive division by 5, ``n_iter_no_change=np.inf``),
the same numbers as scikit-learn from the same ``random_state`` (initial weights,
shuffles, validation split, losses, update rules), the gradient of the whole
objective against central differences, pickling that keeps training, and
accuracy on scikit-learn's data sets.
"""

from __future__ import annotations

import copy
import inspect
import pickle
import subprocess
import sys
import warnings
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sklearn")

import scipy.sparse as sp
import sklearn.neural_network as skl
from sklearn.base import clone
from sklearn.datasets import (
    load_breast_cancer,
    load_digits,
    load_iris,
    load_wine,
    make_multilabel_classification,
    make_regression,
)
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from handnet import losses
from handnet.exceptions import ConvergenceWarning
from handnet.gradcheck import gradcheck
from handnet.nn.initializers import sklearn_uniform
from handnet.sklearn import MLPClassifier, MLPRegressor

HAS_POISSON = hasattr(losses, "PoissonDeviance")


def _quiet_fit(model: Any, X: Any, y: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        return model.fit(X, y, **kwargs)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(n_class=3, return_X_y=True)
    return X[:150] / 16.0, y[:150]


@pytest.fixture(scope="module")
def regression() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_regression(n_samples=120, n_features=6, n_targets=2, noise=5.0, random_state=3)
    return X, y / np.std(y, axis=0)


# --- the constructor -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [(MLPClassifier, skl.MLPClassifier), (MLPRegressor, skl.MLPRegressor)],
)
def test_same_constructor_as_scikit_learn(ours: type, theirs: type) -> None:
    """Same parameter names, kinds, defaults and order."""
    mine = inspect.signature(ours.__init__).parameters
    reference = inspect.signature(theirs.__init__).parameters
    assert list(mine) == list(reference)
    for name, parameter in reference.items():
        assert mine[name].kind == parameter.kind, name
        assert mine[name].default == parameter.default, name
    assert ours().get_params() == theirs().get_params()


def test_import_handnet_does_not_import_scikit_learn() -> None:
    code = "import sys, handnet; assert 'sklearn' not in sys.modules, 'sklearn imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bad_parameters_are_refused(digits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = digits
    for params in (
        {"alpha": -1.0},
        {"solver": "newton"},
        {"momentum": 1.5},
        {"n_iter_no_change": 0},
        {"batch_size": 0},
        {"learning_rate_init": 0.0},
        {"validation_fraction": 1.0},
        {"max_fun": 0},
    ):
        with pytest.raises(ValueError, match="parameter of MLPClassifier must be"):
            MLPClassifier(**params).fit(X, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes must be > 0"):
        MLPClassifier(hidden_layer_sizes=(3, 0)).fit(X, y)
    with pytest.raises(ValueError, match="'loss' parameter of MLPRegressor"):
        MLPRegressor(loss="huber").fit(X, y)


# --- the same numbers as scikit-learn --------------------------------------------------------


def test_initial_weights_are_scikit_learns() -> None:
    """sklearn_uniform draws what scikit-learn's MLP draws from the same RandomState."""
    rng = np.random.RandomState(7)
    weights, bias = sklearn_uniform(5, 3, rng, np.float32, factor=2.0)
    reference = np.random.RandomState(7)
    bound = np.sqrt(2.0 / 8)
    np.testing.assert_array_equal(weights, reference.uniform(-bound, bound, (5, 3)).astype("f4"))
    np.testing.assert_array_equal(bias, reference.uniform(-bound, bound, 3).astype("f4"))
    assert weights.dtype == bias.dtype == np.float32
    X, y = load_iris(return_X_y=True)
    for activation in ("relu", "logistic"):
        settings = {"activation": activation, "solver": "sgd", "max_iter": 1, "random_state": 4,
                    "learning_rate_init": 1e-12, "momentum": 0.0, "hidden_layer_sizes": (4,)}
        ours = _quiet_fit(MLPClassifier(**settings), X, y)  # moved by ~1e-12 at most
        reference_rng = np.random.RandomState(4)
        factor = 2.0 if activation == "logistic" else 6.0
        for fan_in, fan_out, coef, intercept in ((4, 4, *ours.coefs_[:1], *ours.intercepts_[:1]),
                                                 (4, 3, ours.coefs_[1], ours.intercepts_[1])):
            w, b = sklearn_uniform(fan_in, fan_out, reference_rng, factor=factor)
            np.testing.assert_allclose(coef, w, atol=1e-9)
            np.testing.assert_allclose(intercept, b, atol=1e-9)


SETTINGS = {
    "sgd_nesterov": {"solver": "sgd", "learning_rate_init": 0.05},
    "sgd_momentum": {"solver": "sgd", "learning_rate_init": 0.05, "nesterovs_momentum": False},
    "sgd_invscaling": {"solver": "sgd", "learning_rate": "invscaling", "learning_rate_init": 0.5},
    "adam": {"solver": "adam", "learning_rate_init": 0.01, "epsilon": 1e-3},
    "adam_batches": {"solver": "adam", "batch_size": 32, "alpha": 0.5},
    "lbfgs": {"solver": "lbfgs", "alpha": 0.01},
}


@pytest.mark.parametrize("name", list(SETTINGS))
@pytest.mark.parametrize("activation", ["relu", "logistic"])
def test_same_training_as_scikit_learn(
    name: str, activation: str, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    """From the same random_state: the same loss curve and weights as scikit-learn.

    Same initial weights, shuffles, losses, L2 scaling and update rules give the
    same numbers up to floating-point summation order.
    """
    X, y = digits
    settings = {
        "hidden_layer_sizes": (8,),
        "activation": activation,
        "max_iter": 5,
        "random_state": 0,
        **SETTINGS[name],
    }
    weights = np.linspace(0.5, 2.0, len(y))
    ours = _quiet_fit(MLPClassifier(**settings), X, y, sample_weight=weights)
    theirs = _quiet_fit(skl.MLPClassifier(**settings), X, y, sample_weight=weights)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)
    assert ours.n_iter_ == theirs.n_iter_
    if name != "lbfgs":
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
        assert ours.t_ == theirs.t_
    for mine, reference in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_,
                               strict=True):
        np.testing.assert_allclose(mine, reference, rtol=1e-7, atol=1e-10)


def test_same_training_as_scikit_learn_multilabel_and_regression(
    regression: tuple[np.ndarray, np.ndarray],
) -> None:
    X, Y = make_multilabel_classification(n_samples=60, n_classes=4, random_state=0)
    settings = {"hidden_layer_sizes": (6,), "solver": "sgd", "max_iter": 4, "random_state": 1}
    ours = _quiet_fit(MLPClassifier(**settings), X / 10, Y)
    theirs = _quiet_fit(skl.MLPClassifier(**settings), X / 10, Y)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    assert ours.out_activation_ == theirs.out_activation_ == "logistic"
    np.testing.assert_allclose(ours.predict_proba(X / 10), theirs.predict_proba(X / 10), rtol=1e-9)
    X, y = regression
    settings = {"hidden_layer_sizes": (6,), "max_iter": 4, "random_state": 1}
    ours = _quiet_fit(MLPRegressor(**settings), X, y[:, 0])
    theirs = _quiet_fit(skl.MLPRegressor(**settings), X, y[:, 0])
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-9, atol=1e-12)


def test_early_stopping_matches_scikit_learn(digits: tuple[np.ndarray, np.ndarray]) -> None:
    """Same validation split, scores, kept weights and stopping epoch."""
    X, y = digits
    settings = {
        "hidden_layer_sizes": (8,), "solver": "sgd", "learning_rate_init": 0.1,
        "early_stopping": True, "validation_fraction": 0.2, "n_iter_no_change": 3,
        "max_iter": 200, "random_state": 2,
    }  # fmt: skip
    ours = _quiet_fit(MLPClassifier(**settings), X, y)
    theirs = _quiet_fit(skl.MLPClassifier(**settings), X, y)
    assert ours.validation_scores_ == theirs.validation_scores_
    assert ours.best_validation_score_ == theirs.best_validation_score_
    assert ours.best_loss_ is None and ours.n_iter_ == theirs.n_iter_ < 200
    np.testing.assert_allclose(ours.coefs_[0], theirs.coefs_[0], rtol=1e-7, atol=1e-10)


# --- hyperparameter semantics ---------------------------------------------------------------


def _log_loss(P: np.ndarray, Y: np.ndarray) -> float:
    return float(-np.mean(np.sum(Y * np.log(P), axis=1)))


def test_alpha_is_scaled_by_the_batch_size(digits: tuple[np.ndarray, np.ndarray]) -> None:
    """The first epoch's loss (one full batch, at the initial weights) is
    mean log-loss + alpha / (2 n) * sum(W**2), computed here by hand, and scikit-learn's."""
    X, y = digits
    n = len(y)
    for alpha in (0.0, 3.0):
        settings = {
            "hidden_layer_sizes": (5,), "solver": "sgd", "alpha": alpha, "batch_size": n,
            "max_iter": 1, "random_state": 3, "learning_rate_init": 1e-12, "momentum": 0.0,
        }  # fmt: skip
        model = _quiet_fit(MLPClassifier(**settings), X, y)
        proba = model.predict_proba(X)  # weights moved by 1e-12 at most
        penalty = sum(float(np.sum(w**2)) for w in model.coefs_)
        expected = _log_loss(proba, np.eye(3)[y]) + alpha / (2 * n) * penalty
        assert model.loss_ == pytest.approx(expected, rel=1e-9)
        reference = _quiet_fit(skl.MLPClassifier(**settings), X, y)
        assert model.loss_ == pytest.approx(reference.loss_, rel=1e-12)


def test_invscaling_decays_per_sample(digits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = digits
    settings = {"solver": "sgd", "learning_rate": "invscaling", "power_t": 0.3, "max_iter": 3,
                "learning_rate_init": 0.2, "random_state": 0, "hidden_layer_sizes": (4,)}
    model = _quiet_fit(MLPClassifier(**settings), X, y)
    assert model.t_ == 3 * len(y)
    assert model._optimizer.learning_rate == 0.2 / (3 * len(y) + 1) ** 0.3
    reference = _quiet_fit(skl.MLPClassifier(**settings), X, y)
    assert model._optimizer.learning_rate == reference._optimizer.learning_rate
    model.set_params(warm_start=True, max_iter=1)
    _quiet_fit(model, X, y)
    assert model._optimizer.learning_rate == 0.2 / (4 * len(y) + 1) ** 0.3


def test_adaptive_divides_by_five(digits: tuple[np.ndarray, np.ndarray]) -> None:
    """tol=1e9: no epoch improves; with n_iter_no_change=2 every 3rd epoch divides by 5."""
    X, y = digits
    settings = {"solver": "sgd", "learning_rate": "adaptive", "tol": 1e9, "n_iter_no_change": 2,
                "learning_rate_init": 0.1, "random_state": 0, "hidden_layer_sizes": (4,)}
    for max_iter, divisions in ((3, 0), (4, 1), (7, 2), (10, 3)):
        model = _quiet_fit(MLPClassifier(max_iter=max_iter, **settings), X, y)
        assert model._optimizer.learning_rate == pytest.approx(0.1 / 5**divisions, rel=1e-15)
        reference = _quiet_fit(skl.MLPClassifier(max_iter=max_iter, **settings), X, y)
        assert model._optimizer.learning_rate == reference._optimizer.learning_rate
    # ...and training stops once the rate is at most 1e-6.
    model = MLPClassifier(max_iter=1000, **settings).fit(X, y)
    assert model.n_iter_ < 1000 and model._optimizer.learning_rate <= 1e-6


def test_n_iter_no_change_inf_runs_to_max_iter(digits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = digits
    model = MLPClassifier(solver="sgd", tol=1e9, n_iter_no_change=np.inf, max_iter=30,
                          hidden_layer_sizes=(4,), random_state=0)
    with pytest.warns(SklearnConvergenceWarning, match="Maximum iterations") as record:
        model.fit(X, y)
    assert model.n_iter_ == 30 and model._no_improvement_count == 29
    assert isinstance(record[0].message, ConvergenceWarning)  # handnet's class too
    model = MLPClassifier(solver="sgd", tol=1e9, n_iter_no_change=5, max_iter=30,
                          hidden_layer_sizes=(4,), random_state=0).fit(X, y)
    assert model.n_iter_ == 7


# --- the gradient of the whole objective ---------------------------------------------------


OUTPUTS = [
    "binary", "multiclass", "multilabel", "regression", *(["poisson"] if HAS_POISSON else [])
]


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
def test_objective_gradient_matches_central_differences(output: str, activation: str) -> None:
    """Loss + alpha / (2 sum(s)) * sum(W**2), in float64, with sample weights."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(7, 4))
    weights = rng.uniform(0.5, 2.0, size=7)
    targets = {
        "binary": np.array([0, 1, 1, 0, 1, 0, 1]),
        "multiclass": np.array([0, 1, 2, 0, 1, 2, 2]),
        "multilabel": (rng.uniform(size=(7, 3)) > 0.5).astype(int),
        "regression": rng.normal(size=(7, 2)),
        "poisson": rng.poisson(2.0, size=7).astype(float),
    }
    y = targets[output]
    estimator: Any
    if output in ("regression", "poisson"):
        loss = "poisson" if output == "poisson" else "squared_error"
        estimator = MLPRegressor(loss=loss, hidden_layer_sizes=(5, 3), activation=activation,
                                 solver="lbfgs", alpha=0.7, max_iter=1, random_state=1)
    else:
        estimator = MLPClassifier(hidden_layer_sizes=(5, 3), activation=activation,
                                  solver="lbfgs", alpha=0.7, max_iter=1, random_state=1)
    _quiet_fit(estimator, X, y, sample_weight=weights)
    network = estimator._network
    loss_object = losses.get_loss(
        {"logistic": "binary_cross_entropy", "softmax": "softmax_cross_entropy",
         "identity": "mean_squared_error", "exp": "poisson_deviance"}[estimator.out_activation_]
    )
    if output in ("regression", "poisson"):
        Y = y.reshape(len(y), -1).astype(float)
    else:
        Y = estimator._label_binarizer.transform(y).astype(float)
    theta = network.flat_parameters.copy() + rng.normal(scale=0.3, size=network.n_parameters)

    def objective(vector: np.ndarray) -> tuple[float, np.ndarray]:
        network.flat_parameters[...] = vector
        value = estimator._objective(network, loss_object, X, Y, weights)
        return value, network.flat_gradients.copy()

    result = gradcheck(objective, theta)
    assert result.max_relative_error < 1e-7
    # The value: the weighted mean loss plus scikit-learn's scaled penalty.
    network.flat_parameters[...] = theta
    data_loss = loss_object.value(network.forward(X), Y, weights)
    penalty = 0.7 / (2 * weights.sum()) * float(np.sum(network.weights**2))
    assert objective(theta)[0] == pytest.approx(data_loss + penalty, rel=1e-13)


# --- pickling, copies, partial_fit -----------------------------------------------------------


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_pickle_round_trip_continues_training_identically(
    solver: str, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = digits
    model = _quiet_fit(MLPClassifier(hidden_layer_sizes=(8,), solver=solver, max_iter=3,
                                     random_state=0), X, y)
    blob = pickle.dumps(model)
    assert len(blob) < 40_000  # weights and optimizer state, not the training data
    copies = [pickle.loads(blob), copy.deepcopy(model)]
    for _ in range(5):
        for estimator in (model, *copies):
            estimator.partial_fit(X, y)
    for other in copies:
        for mine, theirs in zip(model.coefs_ + model.intercepts_,
                                other.coefs_ + other.intercepts_, strict=True):
            np.testing.assert_array_equal(mine, theirs)
        np.testing.assert_array_equal(model.predict_proba(X), other.predict_proba(X))
        assert other.loss_curve_ == model.loss_curve_


def test_pickled_regressor_learns_a_new_target() -> None:
    """Issue 12's example: a pickled model must keep learning (scikit-learn's #19626)."""
    model = MLPRegressor(hidden_layer_sizes=(42,), random_state=42, learning_rate_init=0.01,
                         max_iter=200, tol=0.0, n_iter_no_change=np.inf)
    _quiet_fit(model, [[2.0]], [4.0])
    loaded = pickle.loads(pickle.dumps(model))
    for _ in range(200):
        loaded.partial_fit([[2.0]], [1.0])
    np.testing.assert_allclose(loaded.predict([[2.0]]), [1.0], rtol=1e-4)
    _quiet_fit(clone(model), [[2.0]], [4.0])  # clone: parameters only


def test_replaced_coefs_are_used(digits: tuple[np.ndarray, np.ndarray]) -> None:
    """coefs_ and intercepts_ are the truth, as in scikit-learn: replacing them counts."""
    X, y = digits
    model = _quiet_fit(MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0), X, y)
    before = model.predict_proba(X)
    model.coefs_ = [np.zeros_like(c) for c in model.coefs_]
    model.intercepts_ = [np.zeros_like(b) for b in model.intercepts_]
    np.testing.assert_allclose(model.predict_proba(X), 1 / 3)
    assert not np.allclose(before, 1 / 3)


def test_partial_fit_only_for_stochastic_solvers() -> None:
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")
    assert hasattr(MLPRegressor(solver="sgd"), "partial_fit")


def test_sparse_input_equals_dense(digits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = digits
    for solver in ("lbfgs", "adam"):
        settings = {"hidden_layer_sizes": (6,), "solver": solver, "max_iter": 5, "random_state": 0}
        dense = _quiet_fit(MLPClassifier(**settings), X, y)
        sparse = _quiet_fit(MLPClassifier(**settings), sp.csr_matrix(X), y)
        np.testing.assert_allclose(dense.coefs_[0], sparse.coefs_[0], rtol=1e-12)
        np.testing.assert_array_equal(sparse.predict_proba(sp.csr_matrix(X)),
                                      sparse.predict_proba(X))


def test_float32_stays_float32(digits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = digits
    model = _quiet_fit(MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0),
                       X.astype(np.float32), y)
    assert {c.dtype for c in model.coefs_ + model.intercepts_} == {np.dtype(np.float32)}
    assert model.predict(X.astype(np.float32)).dtype == np.float32


# --- accuracy against scikit-learn -----------------------------------------------------------


@pytest.mark.parametrize("load", [load_digits, load_iris, load_breast_cancer, load_wine])
def test_accuracy_within_one_point_of_scikit_learn(load: Any) -> None:
    X, y = load(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    for solver in ("adam", "lbfgs"):
        settings = {"hidden_layer_sizes": (64,), "solver": solver, "max_iter": 200,
                    "random_state": 0}
        ours = _quiet_fit(MLPClassifier(**settings), X_train, y_train).score(X_test, y_test)
        theirs = _quiet_fit(skl.MLPClassifier(**settings), X_train, y_train).score(X_test, y_test)
        assert abs(ours - theirs) <= 0.01, (load.__name__, solver, ours, theirs)
        assert ours >= 0.9


# --- the documentation ------------------------------------------------------------------------


def test_docs_name_what_exists_and_list_the_expected_failures() -> None:
    """docs/sklearn.md: every handnet name it quotes exists, its table of failing
    scikit-learn tests is the suite's list."""
    import importlib
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    text = (root / "docs" / "sklearn.md").read_text(encoding="utf-8")
    names = {
        name
        for quoted in re.findall(r"`([^`\n]+)`", text)
        for name in re.findall(r"\bhandnet(?:\.[A-Za-z_][A-Za-z0-9_]*)+", quoted)
    }
    assert "handnet.optim.optimizers.SklearnSGD" in names
    for dotted in names:
        parts = dotted.split(".")
        for split in range(len(parts), 0, -1):
            try:
                target: Any = importlib.import_module(".".join(parts[:split]))
            except ImportError:
                continue
            for attribute in parts[split:]:
                target = getattr(target, attribute)
            break
    suite = importlib.import_module("test_sklearn_mlp_suite")
    table = re.findall(r"^\| `(test_\w+)` \|", text, re.M)
    assert sorted(table) == sorted(suite.EXPECTED_FAILURES)


def test_handnet_save_names_the_drop_in_and_how_it_is_saved(tmp_path: Any) -> None:
    """The drop-ins share their class names with handnet's own models: the refusal says
    which class it is (handnet.sklearn's) and how such a model is saved."""
    import handnet
    from handnet.sklearn import MLPClassifier as DropInClassifier

    X = np.random.default_rng(0).normal(size=(40, 2))
    y = (X[:, 0] > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = DropInClassifier(max_iter=5, random_state=0).fit(X, y)
    with pytest.raises(TypeError, match=r"not handnet\.sklearn\.MLPClassifier .*pickle"):
        handnet.save(model, tmp_path / "model.npz")
