"""The linear models: ``LogisticRegression`` and ``SoftmaxRegression`` (no hidden layer)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..optim.optimizers import Optimizer
from ..optim.schedules import Schedule
from .classifier import _ClassifierMixin

Array = NDArray[np.floating]


class _LinearClassifier(_ClassifierMixin):
    """A linear classifier (no hidden layer): the parameters of both linear models.

    scikit-learn reads the hyperparameters from the ``__init__`` signature, which
    :class:`LogisticRegression` and :class:`SoftmaxRegression` share through here.
    """

    _auto_learning_rate = True

    def __init__(
        self,
        learning_rate: float | None = None,
        max_iter: int = 1000,
        batch_size: int | None = None,
        alpha: float = 0.0,
        penalty: str | None = "l2",
        optimizer: str | Optimizer = "auto",
        schedule: str | Schedule = "constant",
        tol: float | None = 1e-4,
        n_iter_no_change: int = 10,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        clip_norm: float | None = None,
        class_weight: dict[Any, float] | str | None = None,
        init: str = "zeros",
        shuffle: bool = True,
        random_state: int | np.random.Generator | None = None,
        warm_start: bool = False,
        verbose: bool = False,
    ) -> None:
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.alpha = alpha
        self.penalty = penalty
        self.optimizer = optimizer
        self.schedule = schedule
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.clip_norm = clip_norm
        self.class_weight = class_weight
        self.init = init
        self.shuffle = shuffle
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose

    @property
    def coef_(self) -> Array:
        self._check_is_fitted()
        return self.network_.layers[-1].parameters()[0].T

    @property
    def intercept_(self) -> Array:
        self._check_is_fitted()
        return self.network_.layers[-1].parameters()[1]


class LogisticRegression(_LinearClassifier):
    r"""Binary logistic regression (the seed's model).

    :math:`P(y = \text{classes\_}[1] \mid x) = \sigma(x \cdot w + b)`, trained on the mean
    binary cross-entropy plus :math:`\frac{\alpha}{2}\lVert w\rVert^2` (never on ``b``).

    With the defaults it is fitted by L-BFGS, which needs no step size and so
    copes with unscaled and weighted data; give a ``learning_rate`` (or a
    ``batch_size``) and it is trained by gradient descent, as in the seed
    (``LogisticRegression(learning_rate=0.01, max_iter=5001, init="normal")``).

    Parameters
    ----------
    learning_rate : float or None, default None
        The step size of the gradient methods; ``None``: 0.1 for them, and
        ``optimizer="auto"`` then picks L-BFGS for a full batch.
    max_iter : int, default 1000
        Epochs (full passes over the data; one gradient-descent step each with
        ``batch_size=None``), or L-BFGS iterations.
    batch_size : int or None, default None
        ``None``: full-batch GD; ``1``: SGD, one example per step, reshuffled
        every epoch; ``k``: mini-batches of ``k`` rows (at most the number of
        rows in ``fit``; a shorter ``partial_fit`` chunk makes one batch).
    alpha : float, default 0.0
        The penalty's strength on the weights (never the intercept).
    penalty : str or None, default "l2"
        A name from :data:`~handnet.nn.penalties.PENALTIES` (``"l2"``, ``"l1"``,
        or one registered by you), or ``None``.
    optimizer : str or Optimizer, default "auto"
        ``"auto"``: ``"lbfgs"`` when neither ``learning_rate`` nor ``batch_size``
        is given, else ``"sgd"``; or ``"gd"``/``"sgd"``, ``"momentum"``,
        ``"nesterov"``, ``"adagrad"``, ``"rmsprop"``, ``"adam"``, ``"adamw"``,
        ``"lbfgs"`` or an object.
    schedule : str or Schedule, default "constant"
    tol : float or None, default 1e-4
        Stop when the loss has not improved by ``tol`` for ``n_iter_no_change``
        epochs (L-BFGS: when the gradient's largest entry is below ``tol``);
        ``None`` runs all ``max_iter`` epochs. A stop on a loss that rose and
        fell instead of settling warns (``ConvergenceWarning``), as does
        reaching ``max_iter``.
    n_iter_no_change : int, default 10
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the data, stop when its loss stops
        improving, and keep the epoch with the lowest validation loss.
    validation_fraction : float, default 0.1
    clip_norm : float or None, default None
    class_weight : None, "balanced" or dict
    init : str, default "zeros"
        Initial weights: ``"zeros"``, ``"normal"`` (the seed's), ``"xavier"``, ``"he"``.
    shuffle : bool, default True
    random_state : int, Generator or None
    warm_start : bool, default False
    verbose : bool, default False

    Attributes
    ----------
    coef_ : ndarray of shape (1, n_features)
    intercept_ : ndarray of shape (1,)
    classes_ : ndarray of shape (2,)
    n_iter_ : int
    loss_curve_ : list of float
    """

    __module__ = "handnet.models"  # where it is imported from (see handnet.models)

    _binary_only = True  # scikit-learn's tag: classifier_tags.multi_class = False

    def _check_n_classes(self) -> None:
        if len(self.classes_) != 2:
            raise ValueError(
                "Only binary classification is supported. LogisticRegression is a binary "
                f"classifier but y has {len(self.classes_)} classes; use SoftmaxRegression "
                "or MLPClassifier for more than two"
            )


class SoftmaxRegression(_LinearClassifier):
    r"""Multinomial logistic (softmax) regression for any number of classes.

    :math:`P(y = k \mid x) = \mathrm{softmax}(x W + b)_k`, trained on the mean
    softmax cross-entropy plus :math:`\frac{\alpha}{2}\lVert W\rVert^2`. Two classes
    get two logits (the softmax form), unlike :class:`LogisticRegression`.

    Parameters are those of :class:`LogisticRegression`.

    Attributes
    ----------
    coef_ : ndarray of shape (n_classes, n_features)
    intercept_ : ndarray of shape (n_classes,)
    """

    __module__ = "handnet.models"  # where it is imported from (see handnet.models)

    _binary_output = False
