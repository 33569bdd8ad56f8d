"""Estimators with scikit-learn's API: linear models and multi-layer perceptrons.

Every model here is the same machine with different parts:

=====================  ==================  ======================  ===================
model                  hidden layers       output                  loss
=====================  ==================  ======================  ===================
LogisticRegression     none                1 logit (sigmoid)       binary cross-entropy
SoftmaxRegression      none                K logits (softmax)      softmax cross-entropy
MLPClassifier          hidden_layer_sizes  sigmoid or softmax      cross-entropy
MLPRegressor           hidden_layer_sizes  identity                half squared error
=====================  ==================  ======================  ===================

``fit`` validates the data, encodes the targets for the loss, builds a
:class:`~handnet.nn.network.Sequential`, and hands it to the
:class:`~handnet.training.Trainer`, which owns the optimisation loop.

The package, one concern per module:

=====================  ===============================================================
module                 what it holds
=====================  ===============================================================
``network_estimator``  ``_NetworkEstimator``: the plumbing of fit, partial_fit, predict
``hyperparameters``    the checks of the shared hyperparameters; what "auto" means
``building``           the network and the trainer built from the hyperparameters
``preparation``        checking and encoding the data, in memory or out of core
``splits``             early stopping's held-out rows (of arrays, of storage blocks)
``records``            the curves and counters a fit leaves; undoing a refused call
``weighted_loss``      ``_DatasetWeightedLoss``: weighted mini-batches, unbiased
``classifier``         ``_ClassifierMixin``: labels, class weights, probabilities
``regressor``          ``_RegressorMixin``: values, squared error, R²
``linear``             ``LogisticRegression``, ``SoftmaxRegression``
``mlp``                ``MLPClassifier``, ``MLPRegressor``
=====================  ===============================================================

The four models say ``handnet.models`` is their module (``__module__``): it is
where they are imported from, what pickles name and what ``docs/reference.md``
lists.
"""

from ..base import ESTIMATORS
from ..optim.optimizers import resolve_optimizer
from .classifier import _ClassifierMixin
from .hyperparameters import AUTO_LEARNING_RATE
from .linear import LogisticRegression, SoftmaxRegression, _LinearClassifier
from .mlp import MLPClassifier, MLPRegressor, _MLPMixin
from .network_estimator import _NetworkEstimator
from .regressor import _RegressorMixin
from .weighted_loss import _DatasetWeightedLoss

__all__ = [
    "AUTO_LEARNING_RATE",
    "LogisticRegression",
    "MLPClassifier",
    "MLPRegressor",
    "SoftmaxRegression",
    "_ClassifierMixin",
    "_DatasetWeightedLoss",
    "_LinearClassifier",
    "_MLPMixin",
    "_NetworkEstimator",
    "_RegressorMixin",
    "resolve_optimizer",
]

for _estimator in (LogisticRegression, SoftmaxRegression, MLPClassifier, MLPRegressor):
    ESTIMATORS.register(_estimator.__name__, _estimator)
del _estimator
