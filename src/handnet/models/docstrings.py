"""The estimators' docstrings, with each parameter's choices read from the registries.

A name registered in :data:`~handnet.nn.activations.ACTIVATIONS`,
:data:`~handnet.optim.optimizers.OPTIMIZERS`, :data:`~handnet.optim.schedules.SCHEDULES`
or :data:`~handnet.nn.initializers.INITIALIZERS` is listed in ``help(MLPClassifier)``
without anyone typing it twice: a template's ``{activations}``, ``{optimizers}``,
``{schedules}`` and ``{initializers}`` are filled in when the class is defined
(names registered later, by a user, are not listed but work all the same).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..nn.activations import hidden_activations
from ..nn.initializers import INITIALIZERS
from ..nn.penalties import PENALTIES
from ..optim.optimizers import OPTIMIZERS
from ..optim.schedules import SCHEDULES


def quoted(names: Iterable[str]) -> str:
    """``"a"``, ``"b"``: names as a docstring lists choices."""
    return ", ".join(f'``"{name}"``' for name in names)


def choices() -> dict[str, str]:
    """The placeholders of a template and what they become (the registries' names)."""
    return {
        "{activations}": quoted(hidden_activations()),
        "{optimizers}": quoted(OPTIMIZERS),
        "{schedules}": quoted(SCHEDULES),
        "{initializers}": quoted(INITIALIZERS),
        "{penalties}": quoted(PENALTIES),
        "{fitted}": FITTED_ATTRIBUTES,
    }


def with_choices(template: str) -> str:
    """``template`` with each placeholder of :func:`choices` filled in."""
    for placeholder, text in choices().items():
        template = template.replace(placeholder, text)
    return template


#: What ``fit`` leaves on every network estimator (after each model's own attributes).
FITTED_ATTRIBUTES = """\
    network_ : Sequential
        The trained network (``model.summary()`` shows its layers and sizes).
    n_features_in_ : int
        The number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        The column names of ``X`` in ``fit``, when it had string names (a
        pandas DataFrame).
    loss_curve_ : list of float
        The training objective per epoch: the mean data loss plus the L2 term
        (continued across warm-start fits and ``partial_fit`` calls).
    best_loss_ : float or None
        The lowest value of ``loss_curve_``; ``None`` while it is empty (L-BFGS
        started where the gradient is already 0, and took no iteration).
    validation_scores_ : list of float or None
        The score on the validation data after each epoch (accuracy for a
        classifier, R² for a regressor); ``None`` without validation data
        (``early_stopping=True`` or ``fit(validation_data=...)``).
    validation_loss_curve_ : list of float or None
        The data loss on the validation data after each epoch (no L2 term).
    best_validation_score_ : float
        The validation score of the epoch kept (set with validation data).
    best_epoch_ : int
        The epoch kept, counted from 1: the one of the lowest validation loss,
        whose parameters training restored (set with validation data).
    n_iter_ : int
        The epochs (or L-BFGS iterations) run by the last ``fit``.
    t_ : int
        Training samples seen: epochs times rows, over every fit and
        ``partial_fit`` call.
    history_ : History
        The last ``fit``'s epochs, one entry each: ``loss`` (the objective),
        ``data_loss`` (without the L2 term: compare it with
        ``validation_loss``), ``validation_loss``, ``validation_score``,
        ``learning_rate`` and ``time`` (seconds); ``history_.to_dict()`` is a
        dict of equal-length lists for ``pandas.DataFrame``, and ``model.plot()``
        draws it. Saved in model files."""
