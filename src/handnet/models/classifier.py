"""Classifiers' targets: labels, class weights, probabilities and accuracy."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..base import accuracy, available_if
from ..data.streaming import TargetEncoder, scan_labels, warn_column_y
from ..data.validation import check_score_inputs, check_target, class_positions, unique_labels
from ..nn.activations import log_softmax
from ..nn.losses import BinaryCrossEntropy, Loss, SoftmaxCrossEntropy
from .hyperparameters import partial_fit_available
from .network_estimator import _NetworkEstimator

Array = NDArray[np.floating]


class _ClassifierMixin(_NetworkEstimator):
    """Label encoding, probabilities and accuracy for the classifiers."""

    _is_classifier = True
    _estimator_type = "classifier"
    class_weight: dict[Any, float] | str | None
    _binary_output = True  # two classes -> one sigmoid logit (False: two softmax logits)

    def _declare_classes(self, classes: Any) -> None:
        self.classes_ = self._check_classes(unique_labels(classes))

    def _check_classes(self, classes: NDArray[Any]) -> NDArray[Any]:
        if classes.dtype.kind in "fc" and not np.all(np.isfinite(classes)):
            # A NaN class could never be predicted, saved (load refuses it) or matched.
            raise ValueError(
                f"classes hold a non-finite label ({classes.tolist()}); class labels must "
                "be finite numbers or strings"
            )
        if len(classes) < 2:
            raise ValueError(
                f"The number of classes has to be greater than one; got {len(classes)} class "
                f"({classes.tolist()}). A classifier needs examples of at least two labels."
            )
        return classes

    def _encode_targets(self, y: Any, n_samples: int, dtype: Any, reset: bool) -> Array:
        labels = check_target(y, n_samples)
        if labels.dtype.kind == "f" and not np.all(np.mod(labels, 1) == 0):
            raise ValueError(
                "Unknown label type: continuous. y holds non-integer numbers; a classifier "
                "needs class labels (use MLPRegressor for continuous targets)"
            )
        if reset or not hasattr(self, "classes_"):
            if not reset and not hasattr(self, "classes_"):
                raise ValueError(
                    "classes must be passed on the first call to partial_fit "
                    "(all labels that will ever appear)"
                )
            try:
                classes = unique_labels(labels)
            except TypeError:  # e.g. strings and numbers, which do not sort together
                kinds = sorted({type(v).__name__ for v in labels.ravel()})
                raise ValueError(
                    f"Mix of label input types (string and number): y holds {kinds}; "
                    "use labels of one type"
                ) from None
            self.classes_ = self._check_classes(classes)
        index = class_positions(self.classes_, labels)
        unseen = index < 0
        if np.any(unseen):
            raise ValueError(
                f"y contains labels not seen at fit time: {np.unique(labels[unseen]).tolist()}; "
                f"known classes are {self.classes_.tolist()}"
            )
        self._check_n_classes()
        if self._uses_sigmoid():
            return index.astype(dtype).reshape(-1, 1)
        Y = np.zeros((n_samples, len(self.classes_)), dtype=dtype)
        Y[np.arange(n_samples), index] = 1
        return Y

    def _validation_class_weight(self, y_train: Any, y_val: Any) -> Array | None:
        """``class_weight`` for the rows of ``validation_data``, as the training rows have it.

        The validation loss is the training objective on other rows: weighted by
        class alike (``"balanced"`` from the *training* labels' counts).
        """
        if self.class_weight is None:
            return None
        labels = np.asarray(y_train)
        counts = np.array([np.sum(labels == c) for c in self.classes_], dtype=np.float64)
        per_class = self._per_class_weight(counts, len(labels))
        try:
            index = class_positions(self.classes_, np.asarray(y_val))
        except TypeError:  # labels of another kind: refused with a clear message later
            return None
        # An unseen label (-1 here) is refused with a clear message later, too.
        weights: Array = per_class[index].astype(self._dtype)
        return weights if np.any(weights > 0) else None

    def _check_n_classes(self) -> None:
        """Hook for models limited to two classes."""

    def _uses_sigmoid(self) -> bool:
        return self._binary_output and len(self.classes_) == 2

    def _loss(self) -> Loss:
        return BinaryCrossEntropy() if self._uses_sigmoid() else SoftmaxCrossEntropy()

    def _n_outputs(self) -> int:
        return 1 if self._uses_sigmoid() else len(self.classes_)

    def _class_sample_weight(self, y: Any) -> Array | None:
        if self.class_weight is None:
            return None
        labels = np.asarray(y)
        counts = None
        if self.class_weight == "balanced":
            counts = np.array([np.sum(labels == c) for c in self.classes_], dtype=np.float64)
        per_class = self._per_class_weight(counts, len(labels))
        return per_class[class_positions(self.classes_, labels)].astype(self._dtype)

    def _per_class_weight(self, counts: NDArray[Any] | None, n_samples: int) -> Array:
        """The weight of each class's rows (``counts``: rows per class, for "balanced")."""
        if self.class_weight == "balanced":
            assert counts is not None
            counts = np.asarray(counts, dtype=np.float64)
            per_class: Array = n_samples / (len(self.classes_) * np.maximum(counts, 1))
        elif isinstance(self.class_weight, dict):
            unknown = set(self.class_weight) - set(self.classes_.tolist())
            if unknown:
                raise ValueError(
                    f"class_weight names labels that are not classes: {sorted(map(str, unknown))}"
                )
            per_class = np.array([float(self.class_weight.get(c, 1.0)) for c in self.classes_])
            if np.any(per_class < 0) or not np.all(np.isfinite(per_class)):
                raise ValueError("class_weight values must be finite and non-negative")
        else:
            raise ValueError(
                f"class_weight must be None, 'balanced' or a dict {{label: weight}}, "
                f"got {self.class_weight!r}"
            )
        return per_class

    def _stream_encoder(self, y: Any, dtype: Any, reset: bool) -> TargetEncoder:
        """Classes (one pass over ``y`` on a fresh fit) and the block encoder for streamed data."""
        if len(y.shape) == 2 and y.shape[1] == 1:
            warn_column_y()
        elif len(y.shape) != 1:
            raise ValueError(f"y must be 1D (n_samples,), got shape {tuple(y.shape)}")
        counts: NDArray[Any] | None = None
        if reset or not hasattr(self, "classes_"):
            if not reset:
                raise ValueError(
                    "classes must be passed on the first call to partial_fit "
                    "(all labels that will ever appear)"
                )
            classes, counts = scan_labels(y)
            self.classes_ = self._check_classes(classes)
        self._check_n_classes()
        per_class = None
        if self.class_weight is not None:
            if self.class_weight == "balanced" and counts is None:
                # partial_fit's classes came from classes=: count the rows of each.
                labels, label_counts = scan_labels(y)
                counts = np.zeros(len(self.classes_), dtype=np.int64)
                where = class_positions(self.classes_, labels)
                known = where >= 0
                counts[where[known]] = label_counts[known]
            per_class = self._per_class_weight(counts, int(y.shape[0]))
        kind = "sigmoid" if self._uses_sigmoid() else "onehot"
        return TargetEncoder(kind, np.dtype(dtype), self._n_outputs(), self.classes_, per_class)

    def decision_function(self, X: Any) -> Array:
        """Confidence scores, as scikit-learn's ``SGDClassifier`` returns them.

        Two classes: shape (n_samples,), positive for ``classes_[1]`` (the logit
        of the sigmoid output, or the difference of the two softmax logits).
        More classes: the logits, shape (n_samples, n_classes).
        """
        logits = self._forward(X)
        if logits.shape[1] == 1:
            return logits.ravel()
        if logits.shape[1] == 2:
            return logits[:, 1] - logits[:, 0]
        return logits

    def predict_proba(self, X: Any) -> Array:
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes_`` order.

        A sigmoid or softmax is never exactly 0: a probability that underflows is
        reported as the smallest positive normal number, so that
        ``log(predict_proba)`` stays finite like :meth:`predict_log_proba`.
        """
        logits = self._forward(X)
        link = self._loss().link
        if logits.shape[1] == 1:
            # sigmoid(-z) rather than 1 - sigmoid(z): no cancellation for confident rows.
            probabilities = np.hstack([link(-logits), link(logits)])
        else:
            probabilities = link(logits)
        return np.maximum(probabilities, np.finfo(probabilities.dtype).tiny)

    def predict_log_proba(self, X: Any) -> Array:
        """Log of :meth:`predict_proba`, computed from the logits (no ``log(0)``)."""
        logits = self._forward(X)
        if logits.shape[1] == 1:
            logits = np.hstack([np.zeros_like(logits), logits])
        # An infinite logit (overflowed z = x.w + b) would make log-softmax's shift
        # inf - inf = NaN; at the dtype's largest finite value the answer is the same
        # (0 for that class, about -3.4e38 in float32 or -1.8e308 in float64 for others).
        largest = np.finfo(logits.dtype).max
        return log_softmax(np.clip(logits, -largest, largest))

    def predict(self, X: Any) -> NDArray[Any]:
        """The most probable class label for each sample."""
        return self._labels(self._forward(X))

    def _labels(self, logits: Array) -> NDArray[Any]:
        index = (logits[:, 0] > 0).astype(np.intp) if logits.shape[1] == 1 else logits.argmax(1)
        return self.classes_[index]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy on ``X``, ``y``."""
        predictions = self.predict(X)
        labels, weights = check_score_inputs(y, len(predictions), sample_weight, self.classes_)
        return accuracy(labels, predictions, weights)

    def _score_outputs(self, outputs: Array, y: Any, sample_weight: Array | None) -> float:
        return accuracy(np.asarray(y), self._labels(outputs), sample_weight)

    @available_if(partial_fit_available)
    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None
    ) -> _ClassifierMixin:
        """One epoch over ``X``, ``y``, continuing from the current state.

        ``classes`` (every label that will ever appear) is required on the first
        call, as in scikit-learn's ``SGDClassifier``. Only with a stochastic
        optimizer and ``early_stopping=False``: otherwise the model has no
        ``partial_fit`` attribute.

        Returns
        -------
        self
        """
        if isinstance(self.class_weight, str) and self.class_weight == "balanced":
            # Each call sees one chunk: its counts are not the data's (a chunk without a
            # class would get no correction at all). scikit-learn refuses it too.
            raise ValueError(
                "class_weight='balanced' is not available in partial_fit: each call sees "
                "one chunk of the data, not its class counts. Compute the weights from "
                "all the labels (or a large sample of them), e.g. with "
                "sklearn.utils.class_weight.compute_class_weight('balanced', classes=classes, "
                "y=y), and pass them as a dict: class_weight={label: weight}"
            )
        if not getattr(self, "_fitted", False) and classes is None:
            raise ValueError(
                "classes must be passed on the first call to partial_fit "
                "(all labels that will ever appear)"
            )
        if (
            getattr(self, "_fitted", False)
            and classes is not None
            and not np.array_equal(np.unique(np.asarray(classes)), self.classes_)
        ):
            raise ValueError(
                f"classes={np.unique(classes).tolist()} differs from the classes of the "
                f"first call to partial_fit, {self.classes_.tolist()}"
            )
        self._fit(X, y, sample_weight, None, (), incremental=True, classes=classes)
        return self
