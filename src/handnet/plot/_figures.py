"""Learned weights next to a teacher's, a confusion matrix, predicted against true values,
and the composed training figure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from ._base import new_figure
from ._boundary import plot_decision_boundary
from ._curves import TrainingCurves, plot_curves

if TYPE_CHECKING:  # pragma: no cover - only for annotations
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def plot_weights(
    learned: ArrayLike,
    teacher: ArrayLike,
    ax: Axes | None = None,
    names: Sequence[str] | None = None,
    rescale: bool = True,
    title: str | None = None,
    legend_loc: str = "upper right",
) -> Axes:
    """Bar chart of learned parameters next to the teacher's (the seed's experiment).

    Parameters
    ----------
    learned, teacher : array-like of shape (n,)
        E.g. ``[w_1, ..., w_4, b]`` from the model and from the data's teacher.
    ax : matplotlib Axes, optional
        Drawn into a new one-panel figure when omitted.
    names : sequence of str, optional
        Bar labels (default ``w1 .. wn``).
    rescale : bool, default True
        Also draw the learned values rescaled to the teacher's norm. On separable
        data only the *direction* of the weights is determined (their norm keeps
        growing with training); after rescaling they sit on the teacher's.
    title : str, optional
    legend_loc : str, default "upper right"
        Any of matplotlib's legend locations.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if ax is None:
        ax = new_figure(1)[1][0]
    mine = np.asarray(learned, dtype=np.float64).ravel()
    truth = np.asarray(teacher, dtype=np.float64).ravel()
    if mine.shape != truth.shape:
        raise ValueError(f"learned has {mine.size} values but teacher has {truth.size}")
    labels = list(names) if names is not None else [f"w{i + 1}" for i in range(mine.size)]
    groups = [("teacher", truth), ("learned", mine)]
    if rescale and np.linalg.norm(mine) > 0:
        groups.append(("learned, rescaled to the teacher's norm",
                       mine * np.linalg.norm(truth) / np.linalg.norm(mine)))
    positions = np.arange(mine.size, dtype=np.float64)
    width = 0.8 / len(groups)
    for offset, (label, values) in enumerate(groups):
        ax.bar(positions + (offset - (len(groups) - 1) / 2) * width, values, width, label=label)
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_xticks(positions)
    many = len(labels) > 6  # upright labels would run into each other
    ax.set_xticklabels(labels, rotation=90 if many else 0, fontsize="small" if many else None)
    ax.set_ylabel("value")
    # Headroom above the bars for the legend, so it never hides one.
    low, high = ax.get_ylim()
    ax.set_ylim(low, high + 0.45 * (high - low))
    placement: dict[str, Any] = {"loc": legend_loc}  # any of matplotlib's location names
    ax.legend(fontsize="small", **placement)
    ax.grid(True, axis="y", alpha=0.3)
    if title:
        ax.set_title(title)
    return ax


def confusion_matrix(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    labels: Sequence[Any] | None = None,
    ax: Axes | None = None,
    normalize: bool = False,
    title: str | None = None,
) -> Axes:
    """Draw the confusion matrix: true classes down, predicted classes across.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        The labels and the predictions.
    labels : sequence, optional
        The classes, in the order of the rows and columns (default: those seen
        in ``y_true`` and ``y_pred``, sorted).
    ax : matplotlib Axes, optional
        Drawn into a new one-panel figure when omitted.
    normalize : bool, default False
        Colour (and label) each cell by its share of its row, the true class:
        the diagonal is then each class's recall. The counts are written too.
    title : str, optional
        Default: "confusion matrix" with the accuracy.

    Returns
    -------
    matplotlib.axes.Axes
        Each cell holds its count (and its share of the row with ``normalize``).

    Examples
    --------
    >>> from handnet.plot import confusion_matrix
    >>> ax = confusion_matrix(["a", "b", "b"], ["a", "b", "a"])
    >>> [text.get_text() for text in ax.texts]
    ['1', '0', '1', '1']
    """
    from ..metrics import confusion_matrix as count

    truth, predicted = np.asarray(y_true), np.asarray(y_pred)
    if labels is None:
        labels = np.unique(np.concatenate([truth.ravel(), predicted.ravel()])).tolist()
    names = [str(label) for label in labels]
    counts = count(truth, predicted, list(labels))
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    if ax is None:
        side = max(3.0, 1.2 + 0.45 * len(names))
        ax = new_figure(1, (side + 1.0, side))[1][0]
    shown = ax.imshow(shares if normalize else counts, cmap="Blues", vmin=0,
                      vmax=1.0 if normalize else max(int(counts.max()), 1))
    ax.figure.colorbar(shown, ax=ax, label="share of the true class" if normalize else "count")
    threshold = 0.5 * (1.0 if normalize else max(int(counts.max()), 1))
    for (row, column), value in np.ndenumerate(counts):
        shade = shares[row, column] if normalize else value
        text = f"{value}\n{shares[row, column]:.0%}" if normalize else f"{value}"
        ax.text(column, row, text, ha="center", va="center", fontsize="small",
                color="white" if shade > threshold else "black")
    ticks = np.arange(len(names))
    ax.set_xticks(ticks, names, rotation=45 if max(map(len, names), default=0) > 3 else 0)
    ax.set_yticks(ticks, names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    accuracy = float(np.trace(counts)) / max(int(counts.sum()), 1)
    ax.set_title(title if title is not None else f"confusion matrix (accuracy {accuracy:.3f})")
    return ax


def predicted_vs_true(
    y_true: ArrayLike, y_pred: ArrayLike, ax: Axes | None = None, title: str | None = None
) -> Axes:
    """A regressor's predictions against the true values, with the line ``y = x``.

    A perfect model puts every point on the line; the title gives :math:`R^2`.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    ax : matplotlib Axes, optional
        Drawn into a new one-panel figure when omitted.
    title : str, optional
        Default: "predicted vs true" with R².
    """
    truth = np.asarray(y_true, dtype=np.float64).ravel()
    predicted = np.asarray(y_pred, dtype=np.float64).ravel()
    if ax is None:
        ax = new_figure(1, (4.5, 4.0))[1][0]
    ax.scatter(truth, predicted, s=10, alpha=0.6, edgecolors="none")
    low = float(min(truth.min(initial=0.0), predicted.min(initial=0.0)))
    high = float(max(truth.max(initial=1.0), predicted.max(initial=1.0)))
    ax.plot([low, high], [low, high], color="black", linewidth=1, label="y = x")
    ax.set_xlabel("true value")
    ax.set_ylabel("predicted value")
    ax.legend(loc="upper left")
    total = float(np.sum((truth - truth.mean()) ** 2)) if truth.size else 0.0
    r2 = 1.0 - float(np.sum((truth - predicted) ** 2)) / total if total > 0 else float("nan")
    ax.set_title(title if title is not None else f"predicted vs true (R² {r2:.3f})")
    return ax


def training_figure(
    curves: TrainingCurves,
    model: Any = None,
    X: ArrayLike | None = None,
    y: ArrayLike | None = None,
    weights: tuple[ArrayLike, ArrayLike, Sequence[str] | None] | None = None,
    title: str | None = None,
    feature_names: Sequence[str] | None = None,
) -> Figure:
    """Loss and accuracy panels, plus a decision boundary and/or a weights panel.

    The decision boundary is drawn when ``model`` is given with 2-D ``X``;
    ``weights`` is ``(learned, teacher, names)`` for :func:`plot_weights`;
    ``feature_names`` label the decision boundary's axes.
    The figure is ``n_panels * PANEL_WIDTH`` by ``PANEL_HEIGHT`` inches.
    """
    boundary = model is not None and X is not None and np.asarray(X).ndim == 2 and (
        np.asarray(X).shape[1] == 2
    )
    n_panels = 2 + int(boundary) + int(weights is not None)
    figure, axes = new_figure(n_panels)
    plot_curves(curves, axes[0], axes[1])
    axes[0].set_title("loss")
    axes[1].set_title("accuracy")
    position = 2
    if boundary:
        assert X is not None
        plot_decision_boundary(model, X, y, ax=axes[position], title="decision boundary",
                               feature_names=feature_names)
        position += 1
    if weights is not None:
        learned, teacher, names = weights
        plot_weights(learned, teacher, ax=axes[position], names=names,
                     title="learned vs teacher parameters")
    if title:
        figure.suptitle(title)
    return figure
