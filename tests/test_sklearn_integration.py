"""handnet's models inside scikit-learn's tools, and without scikit-learn at all."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
import textwrap
import warnings
from typing import Any

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
pd = pytest.importorskip("pandas")

from sklearn.base import clone, is_classifier, is_regressor  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.exceptions import DataConversionWarning  # noqa: E402
from sklearn.exceptions import NotFittedError as SklearnNotFittedError  # noqa: E402
from sklearn.metrics import accuracy_score, r2_score  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils import get_tags  # noqa: E402
from sklearn.utils.validation import check_is_fitted  # noqa: E402

import handnet  # noqa: E402
from handnet import (  # noqa: E402
    LogisticRegression,
    MLPClassifier,
    MLPRegressor,
    NotFittedError,
    SoftmaxRegression,
)

# --- data -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_iris(return_X_y=True)
    return X, y


@pytest.fixture(scope="module")
def binary() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4)) * [1.0, 10.0, 0.1, 100.0] + [0.0, 50.0, 0.0, -300.0]
    score = X[:, 0] + 0.1 * (X[:, 1] - 50.0) - 0.01 * (X[:, 3] + 300.0)
    return X, (score > 0).astype(int)


@pytest.fixture(scope="module")
def regression() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(150, 3)) * [1.0, 20.0, 0.5]
    y = 2.0 * X[:, 0] - 0.1 * X[:, 1] + 3.0 * X[:, 2] + 0.1 * rng.normal(size=150)
    return X, y


def _classifiers() -> list:
    return [
        LogisticRegression(learning_rate=0.5, max_iter=200, tol=None),
        SoftmaxRegression(optimizer="lbfgs", alpha=1e-3),
        MLPClassifier(hidden_layer_sizes=(8,), learning_rate=0.05, max_iter=100, tol=None,
                      random_state=0),
    ]


# --- tags and the estimator API ------------------------------------------------------------


def test_tags_describe_each_model() -> None:
    logistic, softmax, mlp_c = _classifiers()
    regressor = MLPRegressor()
    for model in (logistic, softmax, mlp_c):
        assert is_classifier(model) and not is_regressor(model)
        assert get_tags(model).target_tags.required
        assert not get_tags(model).non_deterministic
    assert is_regressor(regressor) and not is_classifier(regressor)
    assert get_tags(logistic).classifier_tags.multi_class is False
    assert get_tags(softmax).classifier_tags.multi_class is True
    assert get_tags(mlp_c).classifier_tags.multi_class is True
    assert get_tags(regressor).target_tags.multi_output is True
    for model in (logistic, softmax, mlp_c, regressor):
        tags = get_tags(model)
        assert tags.input_tags.sparse is False and tags.input_tags.allow_nan is False


def test_clone_copies_parameters_not_state(binary) -> None:
    X, y = binary
    model = MLPClassifier(hidden_layer_sizes=(5, 3), alpha=0.01, max_iter=20, tol=None,
                          random_state=3).fit(X, y)
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "classes_") and not hasattr(copy, "n_features_in_")
    with pytest.raises(NotFittedError):
        copy.predict(X)
    copy.set_params(alpha=0.5, hidden_layer_sizes=(4,))
    assert copy.alpha == 0.5 and model.alpha == 0.01


def test_not_fitted_error_is_both_handnet_and_sklearn_class() -> None:
    model = SoftmaxRegression()
    for method in ("predict", "predict_proba", "predict_log_proba", "decision_function"):
        with pytest.raises(NotFittedError) as info:
            getattr(model, method)(np.zeros((2, 2)))
        assert isinstance(info.value, SklearnNotFittedError)
        assert isinstance(info.value, (ValueError, AttributeError))
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(model)
    # Fitted attributes are absent (hasattr is False) until fit.
    assert not hasattr(model, "coef_")
    # The exception survives pickling (joblib workers send it back to GridSearchCV).
    try:
        model.predict(np.zeros((1, 2)))
    except NotFittedError as error:
        again = pickle.loads(pickle.dumps(error))
        assert isinstance(again, NotFittedError) and isinstance(again, SklearnNotFittedError)
        assert str(again) == str(error)


def test_fitted_attributes_end_with_underscore(iris) -> None:
    X, y = iris
    model = SoftmaxRegression(optimizer="lbfgs").fit(X, y)
    check_is_fitted(model)
    assert model.n_features_in_ == 4
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    assert model.coef_.shape == (3, 4) and model.intercept_.shape == (3,)
    public_state = [k for k in vars(model) if not k.startswith("_")]
    params = set(model.get_params())
    assert all(k.endswith("_") for k in public_state if k not in params)


# --- scikit-learn's tools --------------------------------------------------------------------


@pytest.mark.parametrize("model", _classifiers(), ids=lambda m: type(m).__name__)
def test_pipeline_with_standard_scaler(model, binary) -> None:
    X, y = binary  # features on very different scales: the scaler matters
    pipeline = make_pipeline(StandardScaler(), model).fit(X, y)
    assert pipeline.score(X, y) > 0.9
    assert pipeline.predict_proba(X).shape == (len(X), 2)
    assert pipeline.classes_.tolist() == [0, 1]


def test_pipeline_regressor(regression) -> None:
    X, y = regression
    pipeline = Pipeline([
        ("scale", StandardScaler()),
        ("mlp", MLPRegressor(hidden_layer_sizes=(16,), optimizer="lbfgs", max_iter=150,
                             tol=None, random_state=0)),
    ]).fit(X, y)
    assert pipeline.score(X, y) > 0.95


def test_grid_search(iris) -> None:
    X, y = iris
    search = GridSearchCV(
        make_pipeline(StandardScaler(), SoftmaxRegression(optimizer="lbfgs")),
        {"softmaxregression__alpha": [1e-3, 1.0, 100.0]},
        cv=3,
    ).fit(X, y)
    # Heavy L2 (alpha=100) squeezes the weights to nothing: the search must avoid it.
    assert search.best_params_["softmaxregression__alpha"] in (1e-3, 1.0)
    assert search.best_score_ > 0.85
    assert search.best_estimator_.predict(X).shape == (len(X),)


def test_grid_search_mlp_regressor(regression) -> None:
    X, y = regression
    search = GridSearchCV(
        make_pipeline(
            StandardScaler(),
            MLPRegressor(optimizer="lbfgs", max_iter=100, tol=None, random_state=0),
        ),
        {"mlpregressor__hidden_layer_sizes": [(4,), (8,)], "mlpregressor__alpha": [1e-4, 1e-2]},
        cv=3,
    ).fit(X, y)
    assert search.best_score_ > 0.9


@pytest.mark.parametrize("model", _classifiers()[1:], ids=lambda m: type(m).__name__)
def test_cross_val_score(model, iris) -> None:
    X, y = iris
    scores = cross_val_score(make_pipeline(StandardScaler(), model), X, y, cv=5)
    assert scores.shape == (5,)
    assert scores.mean() > 0.85


def test_cross_val_score_regressor(regression) -> None:
    X, y = regression
    model = MLPRegressor(hidden_layer_sizes=(8,), optimizer="lbfgs", max_iter=100, tol=None,
                         random_state=0)
    scores = cross_val_score(make_pipeline(StandardScaler(), model), X, y, cv=3)
    assert scores.min() > 0.9


# --- labels and data frames --------------------------------------------------------------------


@pytest.mark.parametrize("model", _classifiers(), ids=lambda m: type(m).__name__)
def test_string_labels(model, binary) -> None:
    X, y = binary
    labels = np.where(y == 1, "yes", "no")
    pipeline = make_pipeline(StandardScaler(), model).fit(X, labels)
    assert pipeline.classes_.tolist() == ["no", "yes"]
    predicted = pipeline.predict(X)
    assert set(predicted) <= {"no", "yes"}
    assert accuracy_score(labels, predicted) > 0.9
    # predict_proba's columns follow classes_; decision_function > 0 means classes_[1].
    probabilities = pipeline.predict_proba(X)
    np.testing.assert_array_equal(pipeline.classes_[probabilities.argmax(1)], predicted)
    if hasattr(pipeline, "decision_function"):
        decision = pipeline.decision_function(X)
        assert decision.shape == (len(X),)
        np.testing.assert_array_equal(np.where(decision > 0, "yes", "no"), predicted)


def test_string_labels_multiclass_cross_validated(iris) -> None:
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    model = make_pipeline(StandardScaler(), SoftmaxRegression(optimizer="lbfgs"))
    assert cross_val_score(model, X, names, cv=3).mean() > 0.85
    model.fit(X, names)
    assert model.classes_.tolist() == names[[0, 50, 100]].tolist()


def test_dataframe_feature_names(iris) -> None:
    X, y = iris
    columns = ["sepal length", "sepal width", "petal length", "petal width"]
    frame = pd.DataFrame(X, columns=columns)
    target = pd.Series(y, name="species")
    model = SoftmaxRegression(optimizer="lbfgs").fit(frame, target)
    assert isinstance(model.feature_names_in_, np.ndarray)
    assert model.feature_names_in_.dtype == object
    assert model.feature_names_in_.tolist() == columns
    assert model.score(frame, target) > 0.9

    # Columns in another order, renamed or missing: an error naming them.
    with pytest.raises(ValueError, match="same order as they were in fit"):
        model.predict(frame[columns[::-1]])
    with pytest.raises(ValueError, match="unseen at fit time:\n- petal size"):
        model.predict(frame.rename(columns={"petal width": "petal size"}))
    # Values without their names: a warning, as scikit-learn gives.
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        model.predict(X)

    # Refitting on a plain array forgets the names; a frame then warns.
    model.fit(X, y)
    assert not hasattr(model, "feature_names_in_")
    with pytest.warns(UserWarning, match="X has feature names, but SoftmaxRegression"):
        model.predict(frame)


def test_dataframe_in_pipeline_and_grid_search(iris) -> None:
    X, y = iris
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(4)])
    search = GridSearchCV(
        make_pipeline(StandardScaler(), MLPClassifier(optimizer="lbfgs", hidden_layer_sizes=(5,),
                                                      max_iter=100, tol=None, random_state=0)),
        {"mlpclassifier__alpha": [1e-3, 1e-1]},
        cv=3,
    ).fit(frame, pd.Series(y))
    assert search.best_estimator_.feature_names_in_.tolist() == list(frame.columns)
    assert search.score(frame, y) > 0.9


def test_non_string_column_names_are_ignored_and_mixed_ones_refused(iris) -> None:
    X, y = iris
    model = SoftmaxRegression(max_iter=5, tol=None).fit(pd.DataFrame(X), y)  # 0..3
    assert not hasattr(model, "feature_names_in_")
    mixed = pd.DataFrame(X, columns=["a", "b", 2, 3])
    with pytest.raises(TypeError, match="only supported if all input features have string"):
        SoftmaxRegression(max_iter=5, tol=None).fit(mixed, y)


# --- sklearn-like behaviour of the methods ------------------------------------------------------


def test_shapes_and_scores_match_sklearn_conventions(iris, binary) -> None:
    X, y = iris
    for model in (SoftmaxRegression(optimizer="lbfgs"),
                  MLPClassifier(optimizer="lbfgs", hidden_layer_sizes=(6,), random_state=0)):
        model.fit(X, y)
        probabilities = model.predict_proba(X)
        assert probabilities.shape == (150, 3)
        np.testing.assert_allclose(probabilities.sum(1), 1.0)
        np.testing.assert_allclose(model.predict_log_proba(X), np.log(probabilities), atol=1e-8)
        weights = np.linspace(0.5, 2.0, len(y))
        assert model.score(X, y, sample_weight=weights) == pytest.approx(
            accuracy_score(y, model.predict(X), sample_weight=weights)
        )
    assert SoftmaxRegression(optimizer="lbfgs").fit(X, y).decision_function(X).shape == (150, 3)
    Xb, yb = binary
    Xb = StandardScaler().fit_transform(Xb)
    for model in (LogisticRegression(optimizer="lbfgs"), SoftmaxRegression(optimizer="lbfgs")):
        model.fit(Xb, yb)
        decision = model.decision_function(Xb)
        assert decision.shape == (len(yb),)  # binary: one score, like SGDClassifier
        np.testing.assert_array_equal((decision > 0).astype(int), model.predict(Xb))


def test_regressor_score_is_r2(regression) -> None:
    X, y = regression
    model = MLPRegressor(hidden_layer_sizes=(8,), optimizer="lbfgs", max_iter=200, tol=None,
                         random_state=0).fit(X, y)
    assert model.score(X, y) == pytest.approx(r2_score(y, model.predict(X)))
    Y = np.column_stack([y, -2 * y])
    model.fit(X, Y)
    assert model.predict(X).shape == (len(X), 2)
    assert model.score(X, Y) == pytest.approx(r2_score(Y, model.predict(X)))


def test_partial_fit_like_sgdclassifier(iris) -> None:
    X, y = iris
    X = StandardScaler().fit_transform(X)
    model = SoftmaxRegression(optimizer="sgd", batch_size=10, learning_rate=0.1, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        model.partial_fit(X[:10], y[:10])
    order = np.random.default_rng(0).permutation(len(y))
    chunks = np.array_split(order, 7)  # chunks of 21-22 rows: smaller than no batch rule
    assert model.partial_fit(X[chunks[0]], y[chunks[0]], classes=[0, 1, 2]) is model
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    for _ in range(20):
        for chunk in chunks:
            model.partial_fit(X[chunk], y[chunk])
    assert model.score(X, y) > 0.85
    assert model.n_iter_ == 1 + 20 * 7  # one pass per call
    with pytest.raises(ValueError, match="differs from the classes"):
        model.partial_fit(X[:5], y[:5], classes=[0, 1])
    with pytest.raises(ValueError, match="not seen at fit time"):
        model.partial_fit(X[:2], [0, 7])
    # A final chunk smaller than batch_size is simply one batch.
    model.partial_fit(X[:3], y[:3])


def test_partial_fit_regressor_and_lbfgs_has_none(regression) -> None:
    X, y = regression
    X = StandardScaler().fit_transform(X)
    model = MLPRegressor(hidden_layer_sizes=(8,), learning_rate=0.01, batch_size=16,
                         random_state=0)
    for _ in range(30):
        assert model.partial_fit(X, y) is model
    assert model.n_outputs_ == 1 and model.score(X, y) > 0.8
    for lbfgs_model in (MLPRegressor(optimizer="lbfgs"), MLPClassifier(optimizer="lbfgs"),
                        SoftmaxRegression(optimizer="lbfgs")):
        # Like scikit-learn's MLP with solver="lbfgs": the method does not exist.
        assert not hasattr(lbfgs_model, "partial_fit")
        with pytest.raises(AttributeError, match="partial_fit"):
            lbfgs_model.partial_fit(X, y)


def test_warm_start_continues_training(binary) -> None:
    X, y = binary
    X = StandardScaler().fit_transform(X)
    cold = LogisticRegression(learning_rate=0.1, max_iter=5, tol=None).fit(X, y)
    warm = LogisticRegression(learning_rate=0.1, max_iter=5, tol=None, warm_start=True)
    warm.fit(X, y)
    first_coef = warm.coef_.copy()
    assert warm.fit(X, y) is warm
    # The second fit started from the first one's weights: it went further.
    assert not np.allclose(warm.coef_, first_coef)
    assert warm.loss_curve_[5] < cold.loss_curve_[0]
    np.testing.assert_allclose(
        LogisticRegression(learning_rate=0.1, max_iter=10, tol=None).fit(X, y).coef_,
        warm.coef_, rtol=1e-6,
    )
    # warm_start=False refits from scratch.
    cold.fit(X, y)
    np.testing.assert_allclose(cold.coef_, first_coef)


def test_sample_weight_in_every_batch_regime(binary) -> None:
    X, y = binary
    X = StandardScaler().fit_transform(X)
    weights = np.ones(len(y))
    weights[:30] = 0.0  # zero-weight rows: one-row batches of them must not divide by 0
    weights[30:60] = 2.0
    for batch_size in (None, 1, 7):
        model = LogisticRegression(batch_size=batch_size, learning_rate=0.05, max_iter=20,
                                   tol=None, random_state=0)
        model.fit(X, y, sample_weight=weights)
        assert np.all(np.isfinite(model.coef_))
    # Full batch: a weight of 2 is the row repeated, a weight of 0 the row removed.
    keep = np.repeat(np.arange(len(y)), weights.astype(int))
    weighted = LogisticRegression(max_iter=30, tol=None).fit(X, y, sample_weight=weights)
    repeated = LogisticRegression(max_iter=30, tol=None).fit(X[keep], y[keep])
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-10)
    # With one-row batches the weights still count (not cancelled by each batch's
    # own normalisation): class 0 weighted 1000:1 takes over the predictions.
    model = LogisticRegression(batch_size=1, learning_rate=0.01, max_iter=20, tol=None,
                               class_weight={0: 1000.0, 1: 1e-3}, random_state=0).fit(X, y)
    assert np.mean(model.predict(X) == 0) > 0.9


def test_batch_size_larger_than_the_data(binary) -> None:
    X, y = binary
    X = StandardScaler().fit_transform(X)[:20]
    y = y[:20]
    # fit: a clear error (it would silently be full-batch training) ...
    with pytest.raises(ValueError, match=r"batch_size=500 is larger .*n_samples = 20"):
        LogisticRegression(batch_size=500, max_iter=10, tol=None).fit(X, y)
    # ... but partial_fit's chunk of a stream may be shorter than a batch: one batch.
    big = LogisticRegression(batch_size=500, tol=None)
    full = LogisticRegression(batch_size=None, optimizer="sgd", tol=None)
    for _ in range(3):
        big.partial_fit(X, y, classes=np.unique(y))
        full.partial_fit(X, y, classes=np.unique(y))
    np.testing.assert_allclose(big.coef_, full.coef_)


def test_column_vector_y_warns_like_sklearn(binary) -> None:
    X, y = binary
    with pytest.warns(DataConversionWarning, match="column-vector y"):
        model = LogisticRegression(max_iter=5, tol=None).fit(X, y.reshape(-1, 1))
    assert model.predict(X).shape == (len(y),)


# --- dtype ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(dtype, iris) -> None:
    X, y = iris
    X = StandardScaler().fit_transform(X).astype(dtype)
    for model in (SoftmaxRegression(max_iter=20, tol=None),
                  LogisticRegression(max_iter=20, tol=None),
                  MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, tol=None, random_state=0)):
        target = (y > 0).astype(int) if isinstance(model, LogisticRegression) else y
        model.fit(X, target)
        parameters = model.coefs_ if isinstance(model, MLPClassifier) else [model.coef_]
        assert all(p.dtype == dtype for p in parameters)
        assert model.predict_proba(X).dtype == dtype
        assert model.decision_function(X).dtype == dtype
    regressor = MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, tol=None, random_state=0)
    regressor.fit(X, y.astype(dtype))
    assert regressor.predict(X).dtype == dtype
    assert all(w.dtype == dtype for w in regressor.coefs_)


def test_integer_features_become_float64(iris) -> None:
    X, y = iris
    model = SoftmaxRegression(max_iter=5, tol=None).fit((X * 10).astype(int), y)
    assert model.coef_.dtype == np.float64


# --- validation messages -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("X", "y", "error", "message"),
    [
        (np.array([[1.0, np.nan], [2.0, 3.0]]), [0, 1], ValueError, "contains NaN"),
        (np.array([[1.0, np.inf], [2.0, 3.0]]), [0, 1], ValueError, "infinity"),
        (np.array([1.0, 2.0, 3.0]), [0, 1, 0], ValueError, "Expected 2D array, got 1D"),
        (np.zeros((3, 2, 2)), [0, 1, 0], ValueError, "Expected 2D array, got 3D"),
        (np.zeros((0, 3)), [], ValueError, "0 sample"),
        (np.zeros((4, 2)), [1, 1, 1, 1], ValueError, "has to be greater than one"),
        (np.zeros((2, 2)) + 1j, [0, 1], ValueError, "Complex data not supported"),
        (np.array([["a", "b"], ["c", "d"]]), [0, 1], ValueError, "contains strings"),
        (np.zeros((3, 2)), [0, 1], ValueError, "inconsistent numbers of samples"),
        (np.zeros((3, 2)), None, ValueError, "requires y to be passed"),
        (np.zeros((4, 2)), [0.5, 1.5, 0.5, 1.5], ValueError, "Unknown label type"),
    ],
)
def test_clear_validation_messages(X, y, error, message) -> None:
    with pytest.raises(error, match=message):
        SoftmaxRegression(max_iter=2, tol=None).fit(X, y)


def test_sparse_and_mismatched_features_are_refused(iris) -> None:
    scipy_sparse = pytest.importorskip("scipy.sparse")
    X, y = iris
    with pytest.raises(TypeError, match="Sparse data was passed"):
        SoftmaxRegression().fit(scipy_sparse.csr_matrix(X), y)
    model = SoftmaxRegression(max_iter=2, tol=None).fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but SoftmaxRegression is expecting 4"):
        model.predict(X[:, :3])
    with pytest.raises(ValueError, match="binary"):
        LogisticRegression().fit(X, y)


# --- NumPy alone ----------------------------------------------------------------------------------

_NUMPY_ONLY = textwrap.dedent(
    """
    import sys

    class Block:
        # Make scikit-learn (and its SciPy, and pandas) unimportable.
        blocked = ("sklearn", "scipy", "pandas")

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.blocked:
                raise ImportError(f"{name} is blocked for this test")
            return None

    for name in list(sys.modules):
        if name.split(".")[0] in Block.blocked:
            del sys.modules[name]
    sys.meta_path.insert(0, Block())

    try:
        import sklearn  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("the import blocker does not work")

    import numpy as np
    import handnet

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] - X[:, 1] > 0).astype(int)
    models = [
        handnet.LogisticRegression(max_iter=50, tol=None),
        handnet.SoftmaxRegression(optimizer="lbfgs"),
        handnet.MLPClassifier(hidden_layer_sizes=(4,), learning_rate=0.05, max_iter=50, tol=None,
                              random_state=0),
    ]
    for model in models:
        model.fit(X, y)
        assert model.score(X, y) > 0.8, (model, model.score(X, y))
        assert model.predict_proba(X).shape == (60, 2)
        assert model.get_params()["max_iter"] == model.max_iter
    regressor = handnet.MLPRegressor(hidden_layer_sizes=(4,), optimizer="lbfgs", max_iter=100,
                                     tol=None, random_state=0)
    regressor.fit(X, X @ [1.0, 2.0, -1.0])
    assert regressor.score(X, X @ [1.0, 2.0, -1.0]) > 0.9
    try:
        handnet.MLPClassifier().predict(X)
    except handnet.NotFittedError as error:
        assert type(error) is handnet.NotFittedError  # the plain class: no twin without sklearn
    else:
        raise SystemExit("no NotFittedError")
    assert not any(m.split(".")[0] in Block.blocked for m in sys.modules)
    print("numpy-only ok")
    """
)


def test_core_works_with_numpy_alone() -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", _NUMPY_ONLY],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "numpy-only ok" in result.stdout


def test_sklearn_is_not_imported_by_handnet() -> None:
    code = (
        "import sys, handnet; "
        "loaded = sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy', 'pandas'}); "
        "print(loaded)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_warnings_do_not_leak_from_a_clean_fit(iris) -> None:
    X, y = iris
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_pipeline(StandardScaler(), SoftmaxRegression(optimizer="lbfgs")).fit(X, y)
    assert handnet.__version__


# --- pickle, deepcopy, joblib: a restored model is the model ---------------------------------


def _restorers() -> dict[str, Any]:
    import copy

    import joblib

    def via_joblib(model: Any) -> Any:
        buffer = io.BytesIO()
        joblib.dump(model, buffer)
        buffer.seek(0)
        return joblib.load(buffer)

    return {
        "pickle": lambda model: pickle.loads(pickle.dumps(model)),
        "deepcopy": copy.deepcopy,
        "joblib": via_joblib,
    }


@pytest.mark.parametrize("how", ["pickle", "deepcopy", "joblib"])
def test_a_restored_model_keeps_learning_like_the_original(how: str) -> None:
    """The issue's case: pickled layers used to stop being views of the trained vector."""
    model = MLPRegressor(
        hidden_layer_sizes=(42,), random_state=42, learning_rate=0.01, tol=None
    ).fit([[2.0]], [4.0])
    restored = _restorers()[how](model)
    for _ in range(200):
        model.partial_fit([[2.0]], [1.0])
        restored.partial_fit([[2.0]], [1.0])
    assert restored.predict([[2.0]])[0] == pytest.approx(1.0, abs=1e-3)
    np.testing.assert_array_equal(restored.network_.flat_parameters, model.network_.flat_parameters)
    # The layers read the vector the optimizer updates.
    restored.network_.flat_parameters[:] = 0.0
    assert all(not np.any(p) for p in restored.network_.parameters())


@pytest.mark.parametrize("how", ["pickle", "deepcopy", "joblib"])
@pytest.mark.parametrize(
    "make",
    [
        lambda: MLPClassifier(hidden_layer_sizes=(16,), dropout=0.2, max_iter=5, random_state=0),
        lambda: SoftmaxRegression(optimizer="adam", learning_rate=0.05, batch_size=16,
                                  max_iter=5, random_state=0),
        lambda: LogisticRegression(),  # the defaults: L-BFGS
    ],
)
def test_a_restored_model_predicts_and_trains_exactly_like_the_original(
    how: str, make: Any, iris
) -> None:
    X, y = iris
    X = (X - X.mean(0)) / X.std(0)
    if isinstance(make(), LogisticRegression):
        y = (y == 2).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", handnet.ConvergenceWarning)
        model = make().fit(X, y)
        restored = _restorers()[how](model)
        np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))
        assert restored.score(X, y) == model.score(X, y)
        # Training goes on identically: same optimizer state, generator, dropout masks.
        for m in (model, restored):
            m.set_params(warm_start=True, max_iter=3)
            m.fit(X, y)
            if hasattr(m, "partial_fit"):
                m.partial_fit(X, y)
    np.testing.assert_array_equal(restored.network_.flat_parameters, model.network_.flat_parameters)
    assert restored.loss_curve_ == model.loss_curve_


def test_a_pickled_model_holds_no_training_data() -> None:
    """Neither the rows of the last batch (forward caches, gathered batches) nor anything
    that grows with the data: the pickle is the same size after 100 or 3,000 rows."""
    rng = np.random.default_rng(0)
    sizes = []
    for n_samples in (100, 3000):
        X = rng.normal(size=(n_samples, 7))
        y = (X[:, 0] + X[:, 1] > 0).astype(int)
        model = MLPClassifier(hidden_layer_sizes=(8,), batch_size=50, max_iter=2,
                              random_state=0, tol=None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", handnet.ConvergenceWarning)
            model.fit(X, y)
        blob = pickle.dumps(model)
        sizes.append(len(blob))
        for row in X[::37]:
            assert row.tobytes() not in blob
    assert abs(sizes[1] - sizes[0]) < 200, sizes


def test_predicting_leaves_the_model_unchanged() -> None:
    """predict between a forward and a backward pass changes neither the caches nor the
    gradients: the model object is the same before and after predicting."""
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(30, 3)), rng.integers(0, 2, 30)
    model = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, tol=None, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", handnet.ConvergenceWarning)
        model.fit(X, y)
    network = model.network_
    loss = model._loss()
    logits = network.forward(X[:8], training=True)
    _, dlogits = loss(logits, np.asarray(model._encode_targets(y[:8], 8, X.dtype, False)))
    caches = [dict(vars(layer)) for layer in network.layers]
    model.predict(rng.normal(size=(50, 3)))
    for layer, before in zip(network.layers, caches, strict=True):
        for name in layer._forward_cache:
            assert vars(layer).get(name) is before.get(name), name
    network.backward(dlogits)
    expected = network.flat_gradients.copy()
    network.forward(X[:8], training=True)
    network.backward(dlogits)
    np.testing.assert_array_equal(network.flat_gradients, expected)


# --- warnings with scikit-learn's classes ----------------------------------------------------


def test_convergence_warning_is_sklearns_when_sklearn_is_imported() -> None:
    from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning

    X, y = load_iris(return_X_y=True)
    with pytest.warns(SklearnConvergenceWarning) as record:
        SoftmaxRegression(max_iter=2).fit(X, y)
    assert isinstance(record[0].message, handnet.ConvergenceWarning)
    # scikit-learn's filter silences it (a test suite whose warnings are errors passes).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=SklearnConvergenceWarning)
        SoftmaxRegression(max_iter=2).fit(X, y)


def test_an_oscillating_loss_warns_instead_of_stopping_as_if_converged() -> None:
    """scikit-learn's check_class_weight_classifiers data: noisy, unscaled blobs with class
    weights 1000 / 0.0001. Full-batch GD at learning rate 0.1 jumps around; the stopping
    rule used to end it after 24 epochs without a word."""
    from sklearn.datasets import make_blobs
    from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning

    X, y = make_blobs(centers=2, random_state=0, cluster_std=20)
    model = LogisticRegression(optimizer="gd", learning_rate=0.1, random_state=0,
                               class_weight={0: 1000, 1: 0.0001})
    with pytest.warns(SklearnConvergenceWarning, match="did not settle"):
        model.fit(X, y)
    # The defaults (L-BFGS) fit the same data to the accuracy scikit-learn's check demands.
    default = LogisticRegression(random_state=0, class_weight={0: 1000, 1: 0.0001}).fit(X, y)
    assert np.mean(default.predict(X[y == 0]) == 0) >= 0.87


def test_a_settled_stochastic_run_does_not_warn() -> None:
    """Mini-batch noise after convergence is no oscillation: no warning for a good fit."""
    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = MLPClassifier(hidden_layer_sizes=(16,), learning_rate=0.01, max_iter=500,
                              random_state=0).fit(X, y)
    assert model.n_iter_ < 500 and model.score(X, y) > 0.95
