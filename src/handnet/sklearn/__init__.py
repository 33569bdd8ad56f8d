"""scikit-learn's ``MLPClassifier`` and ``MLPRegressor``, computed by handnet.

A drop-in: code written for scikit-learn changes one import line::

    # from sklearn.neural_network import MLPClassifier, MLPRegressor
    from handnet.sklearn import MLPClassifier, MLPRegressor

and keeps its constructor arguments (same names, defaults and order), its fitted
attributes (``coefs_``, ``intercepts_``, ``loss_``, ``best_loss_``, ``loss_curve_``,
``validation_scores_``, ``best_validation_score_``, ``n_iter_``, ``t_``,
``n_layers_``, ``n_outputs_``, ``out_activation_``, ``classes_``,
``n_features_in_``, ``feature_names_in_``), its methods and its warnings and error
messages. What runs is handnet's: the network is a :class:`~handnet.nn.network.Sequential`
of :class:`~handnet.nn.layers.Dense` and :class:`~handnet.nn.layers.Activation` layers,
the losses come from :mod:`handnet.nn.losses` (computed from the logits), the L2 term
from :mod:`handnet.nn.penalties`, the update rules from :mod:`handnet.optim.optimizers`
(:class:`~handnet.optim.optimizers.SklearnSGD`, :class:`~handnet.optim.optimizers.SklearnAdam`,
:class:`~handnet.optim.optimizers.LBFGS`), the initial weights from
:func:`handnet.nn.initializers.sklearn_uniform`. scikit-learn supplies the API around
the math only: the estimator base classes, input validation, label binarisation,
the validation split and the random numbers.

scikit-learn's conventions, followed here (they differ from ``handnet.MLPClassifier``'s):

* ``alpha``: the objective is the mean loss of a batch plus
  :math:`\\frac{\\alpha}{2 n_b} \\sum W^2` (weights only), :math:`n_b` the batch's
  number of samples (or sum of sample weights).
* ``learning_rate="invscaling"``: at the end of each epoch the rate becomes
  ``learning_rate_init / (t_ + 1) ** power_t``, ``t_`` counting the *samples* seen.
  ``"adaptive"``: divided by 5 each time ``n_iter_no_change`` epochs in a row fail
  to improve by ``tol``; training stops once it is at most 1e-6.
* Initial weights *and biases* uniform in :math:`\\pm\\sqrt{6/(n_{in}+n_{out})}`
  (2 instead of 6 for the logistic activation), drawn from
  ``check_random_state(random_state)`` in scikit-learn's order: the same
  ``random_state`` gives the same initial network, the same shuffles and the same
  validation split as scikit-learn.

``docs/sklearn.md`` lists what still differs.

The package, one concern a module: ``_params`` (the hyperparameters, their checks
and their handnet translations), ``_network`` (the network, initialised the way
scikit-learn's is), ``_solvers`` (the objective and the fit loops), ``_base`` (what
the two estimators share) and the estimators, ``_classifier`` and ``_regressor``.
``MLPClassifier``, ``MLPRegressor`` and ``InvalidParameterError`` say ``handnet.sklearn``
is their module (``__module__``): it is where they are imported from and what pickles name.
"""

from __future__ import annotations

from ._base import _BaseMultilayerPerceptron as _BaseMultilayerPerceptron
from ._classifier import MLPClassifier
from ._params import InvalidParameterError as InvalidParameterError
from ._regressor import MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
