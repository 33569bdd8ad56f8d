r"""Classification metrics written out in NumPy: what ``handnet evaluate`` reports.

For true labels :math:`y_i` and predictions :math:`\hat y_i` over classes
:math:`1..K`:

* **accuracy** :math:`\frac1n \sum_i [\hat y_i = y_i]`;
* **log loss** (mean cross-entropy) :math:`-\frac1n \sum_i \log p_i(y_i)`, from the
  model's log-probabilities (computed from logits, so never :math:`\log 0`);
* the **confusion matrix** :math:`C_{jk} = \#\{i : y_i = j, \hat y_i = k\}` (rows:
  truth, columns: prediction);
* per class :math:`k`: **precision** :math:`C_{kk} / \sum_j C_{jk}` (of the examples
  predicted :math:`k`, the share that are :math:`k`), **recall**
  :math:`C_{kk} / \sum_j C_{kj}` (of the examples of class :math:`k`, the share
  found) and **F1**, their harmonic mean :math:`2PR / (P + R)`. A ratio with a
  zero denominator is reported as 0 (scikit-learn's ``zero_division=0``).

scikit-learn is not needed; the test suite checks these against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "ClassificationReport",
    "accuracy_score",
    "classification_report",
    "confusion_matrix",
    "log_loss",
    "precision_recall_f1",
]


def accuracy_score(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """The fraction of predictions equal to the truth."""
    truth, predicted = np.asarray(y_true), np.asarray(y_pred)
    if truth.shape != predicted.shape:
        raise ValueError(f"y_true has shape {truth.shape} but y_pred has {predicted.shape}")
    return float(np.mean(truth == predicted)) if truth.size else float("nan")


def log_loss(y_true: ArrayLike, log_proba: ArrayLike, classes: Sequence[Any]) -> float:
    r"""Mean :math:`-\log p_i(y_i)` from log-probabilities whose columns follow ``classes``.

    A label that is not among ``classes`` has probability 0: the loss is ``inf``.
    """
    truth = np.asarray(y_true).tolist()
    logp = np.asarray(log_proba, dtype=np.float64)
    lookup = {label: index for index, label in enumerate(_as_list(classes))}
    columns = np.array([lookup.get(label, -1) for label in truth], dtype=np.intp)
    if np.any(columns < 0):
        return float("inf")
    return float(-np.mean(logp[np.arange(len(columns)), columns]))


def _as_list(values: Any) -> list[Any]:
    """Python scalars, whatever came in (``np.asarray`` of mixed labels would make all strings)."""
    return values.tolist() if isinstance(values, np.ndarray) else list(values)


def confusion_matrix(
    y_true: ArrayLike, y_pred: ArrayLike, labels: Sequence[Any]
) -> NDArray[np.int64]:
    """``C[j, k]`` = how many examples of class ``labels[j]`` were predicted ``labels[k]``.

    Every label of ``y_true`` and ``y_pred`` must be in ``labels`` (a ``ValueError``
    names the first that is not).
    """
    lookup = {label: index for index, label in enumerate(_as_list(labels))}
    for values, name in ((y_true, "y_true"), (y_pred, "y_pred")):
        unknown = [v for v in _as_list(np.asarray(values)) if v not in lookup]
        if unknown:
            raise ValueError(f"{name} holds {unknown[0]!r}, which is not among the labels")
    truth = np.array([lookup[v] for v in np.asarray(y_true).tolist()], dtype=np.intp)
    predicted = np.array([lookup[v] for v in np.asarray(y_pred).tolist()], dtype=np.intp)
    k = len(lookup)
    # One bincount over the pair index j*K + k counts every cell at once.
    counts = np.bincount(truth * k + predicted, minlength=k * k)
    return counts.reshape(k, k).astype(np.int64)


def _ratio(numerator: NDArray[Any], denominator: NDArray[Any]) -> NDArray[np.float64]:
    safe = np.where(denominator > 0, denominator, 1)
    return np.where(denominator > 0, numerator / safe, 0.0).astype(np.float64)


def precision_recall_f1(
    matrix: ArrayLike,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """Per-class precision, recall, F1 and support from a confusion matrix."""
    C = np.asarray(matrix, dtype=np.int64)
    true_positive = np.diag(C).astype(np.float64)
    predicted = C.sum(axis=0)
    support = C.sum(axis=1)
    precision = _ratio(true_positive, predicted)
    recall = _ratio(true_positive, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return precision, recall, f1, support


@dataclass
class ClassificationReport:
    """Everything ``handnet evaluate`` prints, as numbers."""

    labels: list[Any]
    accuracy: float
    log_loss: float | None
    confusion: NDArray[np.int64]
    precision: NDArray[np.float64]
    recall: NDArray[np.float64]
    f1: NDArray[np.float64]
    support: NDArray[np.int64]

    def to_text(self) -> str:
        """A plain-text table: the summary, the confusion matrix, per-class scores."""
        names = [str(label) for label in self.labels]
        lines = [f"examples: {int(self.support.sum())}", f"accuracy: {self.accuracy:.4f}"]
        if self.log_loss is not None:
            lines.append(f"log loss: {self.log_loss:.4f}")
        longest_number = len(str(int(self.confusion.max(initial=0))))
        width = max(len("weighted avg"), longest_number, *(len(name) for name in names))
        lines += ["", "confusion matrix (rows: true class, columns: predicted class)"]
        lines.append(" " * width + " " + " ".join(name.rjust(width) for name in names))
        for name, row in zip(names, self.confusion, strict=True):
            lines.append(name.rjust(width) + " " + " ".join(str(v).rjust(width) for v in row))
        header = f"{'class'.rjust(width)} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>9}"
        lines += ["", header]
        for i, name in enumerate(names):
            lines.append(
                f"{name.rjust(width)} {self.precision[i]:9.4f} {self.recall[i]:9.4f} "
                f"{self.f1[i]:9.4f} {int(self.support[i]):9d}"
            )
        weights = self.support / max(int(self.support.sum()), 1)
        lines.append(
            f"{'macro avg'.rjust(width)} {self.precision.mean():9.4f} {self.recall.mean():9.4f} "
            f"{self.f1.mean():9.4f} {int(self.support.sum()):9d}"
        )
        lines.append(
            f"{'weighted avg'.rjust(width)} {weights @ self.precision:9.4f} "
            f"{weights @ self.recall:9.4f} {weights @ self.f1:9.4f} {int(self.support.sum()):9d}"
        )
        return "\n".join(lines)


def classification_report(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    classes: Sequence[Any],
    log_proba: ArrayLike | None = None,
) -> ClassificationReport:
    """Accuracy, log loss (with ``log_proba``), confusion matrix and per-class scores.

    The labels are the model's ``classes`` followed by any label of ``y_true``
    the model never saw (a row it can only get wrong).
    """
    truth = np.asarray(y_true)
    predicted = np.asarray(y_pred)
    labels = _as_list(classes)
    seen = set(labels)
    for label in np.unique(truth).tolist():
        if label not in seen:
            labels.append(label)
            seen.add(label)
    matrix = confusion_matrix(truth, predicted, labels)
    precision, recall, f1, support = precision_recall_f1(matrix)
    return ClassificationReport(
        labels=labels,
        accuracy=accuracy_score(truth, predicted),
        log_loss=None if log_proba is None else log_loss(truth, log_proba, classes),
        confusion=matrix,
        precision=precision,
        recall=recall,
        f1=f1,
        support=support,
    )
