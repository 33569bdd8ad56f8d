"""scikit-learn's own estimator test suite, run over every handnet model.

``parametrize_with_checks`` generates one test per (estimator, check): cloning,
``get_params``/``set_params``, input validation, ``n_features_in_`` and
``feature_names_in_``, dtype handling, fit idempotence, ``partial_fit``,
classifier and regressor behaviour, sample weights, pickling, ...

Each model runs with its defaults (what a user who does not tune gets) and in
several configurations: full-batch gradient descent,
per-example SGD (``batch_size=1``), Adam on mini-batches, and L-BFGS (plus, for
MLPClassifier, early stopping). The settings are kept small so the module stays
fast, while still letting each configuration reach the scores the checks demand.

Expected failures: only where scikit-learn lists the same check as expected to
fail for its own stochastic estimators (``PER_ESTIMATOR_XFAIL_CHECKS`` in
``sklearn/utils/_test_common/instance_generator.py``), with scikit-learn's
reason. Under ``xfail_strict=True`` a listed check that passes is an error, so
nothing is listed that does not need to be.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("pandas")  # check_dataframe_column_names_consistency

from sklearn.utils.estimator_checks import parametrize_with_checks

from handnet import (
    Activation,
    Dense,
    LogisticRegression,
    MLPClassifier,
    MLPRegressor,
    NeuralNetClassifier,
    NeuralNetRegressor,
    SoftmaxRegression,
)
from handnet.models import resolve_optimizer

# The L-BFGS and early-stopping configurations keep the default tol, so on some of
# the checks' tiny or unscaled data sets they stop at max_iter with handnet's
# ConvergenceWarning. scikit-learn's checks silence their own ConvergenceWarning
# (sklearn.exceptions.ConvergenceWarning), a class handnet's core cannot derive
# from without importing scikit-learn; handnet's is silenced here the same way.
# Every other warning is still an error (filterwarnings = error in pyproject.toml).
pytestmark = pytest.mark.filterwarnings("ignore::handnet.exceptions.ConvergenceWarning")

# scikit-learn's reason, word for word, for SGDClassifier, SGDRegressor, Perceptron,
# MiniBatchKMeans, ... in PER_ESTIMATOR_XFAIL_CHECKS (checked in scikit-learn 1.9.1):
# with mini-batches, a weight of 2 and a repeated row give different sequences of
# steps. Full-batch configurations (GD, L-BFGS) pass this check and are not listed.
_STOCHASTIC_XFAIL = {
    "check_sample_weight_equivalence_on_dense_data": (
        "sample_weight is not equivalent to removing/repeating samples."
    ),
}

_LINEAR = dict(random_state=0)
_MLP = dict(hidden_layer_sizes=(16,), random_state=0)

ESTIMATORS: list[Any] = [
    # --- the defaults: what a user who does not tune gets (issue 12) ---
    LogisticRegression(random_state=0),
    SoftmaxRegression(random_state=0),
    MLPClassifier(random_state=0),
    MLPRegressor(random_state=0),
    NeuralNetClassifier(random_state=0),
    NeuralNetRegressor(random_state=0),
    # --- estimators over a list of layers, each size read from the layer below ---
    NeuralNetClassifier(
        [Dense(None, 16), Activation("tanh"), Dense(None, None)], learning_rate=0.02,
        batch_size=4, max_iter=20, tol=None, random_state=0,
    ),
    NeuralNetRegressor(
        [Dense(None, 16, init="he"), Activation("relu"), Dense(None, None, init="he")],
        optimizer="lbfgs",
        max_iter=200, random_state=0,
    ),
    # --- LogisticRegression (binary only) ---
    LogisticRegression(learning_rate=0.5, max_iter=100, tol=None, **_LINEAR),  # full-batch GD
    LogisticRegression(batch_size=1, learning_rate=0.05, max_iter=10, tol=None, **_LINEAR),
    LogisticRegression(
        optimizer="adam", learning_rate=0.05, batch_size=4, max_iter=20, tol=None, **_LINEAR
    ),
    LogisticRegression(optimizer="lbfgs", alpha=1e-4, max_iter=100, **_LINEAR),
    # --- SoftmaxRegression ---
    SoftmaxRegression(learning_rate=0.5, max_iter=100, tol=None, **_LINEAR),
    SoftmaxRegression(batch_size=1, learning_rate=0.05, max_iter=10, tol=None, **_LINEAR),
    SoftmaxRegression(
        optimizer="adam", learning_rate=0.05, batch_size=4, max_iter=20, tol=None, **_LINEAR
    ),
    SoftmaxRegression(optimizer="lbfgs", alpha=1e-4, max_iter=100, **_LINEAR),
    # --- MLPClassifier ---
    MLPClassifier(optimizer="gd", learning_rate=0.5, batch_size=None, max_iter=100, tol=None,
                  **_MLP),
    MLPClassifier(optimizer="sgd", learning_rate=0.02, batch_size=1, max_iter=10, tol=None,
                  **_MLP),
    MLPClassifier(learning_rate=0.02, batch_size=4, max_iter=20, tol=None, **_MLP),  # Adam
    MLPClassifier(optimizer="lbfgs", max_iter=100, **_MLP),
    # Early stopping on a held-out split, with the default stopping rule (tol=1e-4). A
    # quarter of the checks' smallest data (10-12 rows) holds out the 2 rows that
    # scoring needs at least (a validation set of one row is refused, as scikit-learn's
    # MLP refuses it).
    MLPClassifier(learning_rate=0.02, batch_size=4, max_iter=30, early_stopping=True,
                  validation_fraction=0.25, n_iter_no_change=5, **_MLP),
    # --- MLPRegressor (single and multi-output) ---
    # Plain (S)GD on the checks' unscaled targets (values in the hundreds, e.g.
    # check_regressor_multioutput) diverges without gradient clipping, as it would
    # on such data in practice; Adam and L-BFGS need no clipping.
    MLPRegressor(optimizer="gd", learning_rate=0.1, batch_size=None, max_iter=200, tol=None,
                 clip_norm=10.0, **_MLP),
    MLPRegressor(optimizer="sgd", learning_rate=0.01, batch_size=1, max_iter=10, tol=None,
                 clip_norm=10.0, **_MLP),
    MLPRegressor(learning_rate=0.02, batch_size=4, max_iter=30, tol=None, **_MLP),  # Adam
    MLPRegressor(optimizer="lbfgs", max_iter=200, **_MLP),
]


def _is_stochastic(estimator: Any) -> bool:
    """Mini-batch training: more than one step per epoch, rows in random order.

    ``batch_size="auto"`` (the MLPs' default) is min(200, n_samples): one full batch
    on the checks' small data sets, so not stochastic there; ``optimizer="auto"``
    with no batch size is L-BFGS.
    """
    params = estimator.get_params()
    batch_size = params["batch_size"]
    optimizer = resolve_optimizer(params["optimizer"], batch_size, params["learning_rate"])
    return optimizer != "lbfgs" and batch_size not in (None, "auto")


def expected_failed_checks(estimator: Any) -> dict[str, str]:
    """The checks scikit-learn itself expects its stochastic estimators to fail."""
    return dict(_STOCHASTIC_XFAIL) if _is_stochastic(estimator) else {}


with warnings.catch_warnings():
    # Collecting the checks warns that the models do not inherit from
    # sklearn.base.BaseEstimator: by design (handnet's core must not need
    # scikit-learn; see handnet/base.py). Passing these checks is what shows that
    # handnet's own base class keeps the same contract.
    warnings.filterwarnings(
        "ignore",
        message=r".*does not inherit from `sklearn.base.BaseEstimator`",
        category=UserWarning,
    )
    _parametrize = parametrize_with_checks(
        ESTIMATORS, expected_failed_checks=expected_failed_checks, xfail_strict=True
    )


@_parametrize
def test_sklearn_compatible_estimator(estimator: Any, check: Any) -> None:
    check(estimator)
