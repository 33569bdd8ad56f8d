"""Pictures of training: curves, decision boundaries, learned weights, animations.

matplotlib (and Pillow, for GIFs) are optional: ``pip install "handnet[plot]"``.
They are imported only when a function here draws something, so ``import
handnet.plot`` costs nothing and the rest of handnet never needs them.

Figures are made with :class:`matplotlib.figure.Figure` on an Agg canvas, never
through ``pyplot``: no window opens, no global backend is switched, and a
script, a server or a test can draw without a display. Every function that draws
into an ``ax`` returns it, so the pieces compose into one's own figures; the
``*_figure`` functions return a whole :class:`~matplotlib.figure.Figure` and
:func:`save_figure` writes it.

* :class:`TrainingCurves` and :func:`plot_curves` - loss and accuracy per epoch,
  training and validation;
* :func:`plot_decision_boundary` - the class regions of any classifier (anything
  with ``predict``) over 2-D data, with the points on top;
* :func:`plot_weights` - learned weights next to a teacher's (the seed's experiment);
* :class:`BoundaryAnimation` - a GIF of the decision boundary while a network learns.

PNG size is exact: a figure of ``n`` panels is ``n * PANEL_WIDTH`` by
``PANEL_HEIGHT`` inches, saved at :data:`DPI` dots per inch without cropping.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:  # pragma: no cover - only for annotations
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "DPI",
    "PANEL_HEIGHT",
    "PANEL_WIDTH",
    "BoundaryAnimation",
    "MissingDependencyError",
    "TrainingCurves",
    "decision_grid",
    "new_figure",
    "plot_curves",
    "plot_decision_boundary",
    "plot_weights",
    "save_figure",
    "training_figure",
]

PANEL_WIDTH = 5.0
"""Width of one panel, in inches."""
PANEL_HEIGHT = 4.0
"""Height of a figure, in inches."""
DPI = 100
"""Dots per inch of saved figures: one panel is 500 x 400 pixels."""


class MissingDependencyError(ImportError):
    """matplotlib (or Pillow) is needed for pictures but is not installed."""


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError(
            'pictures need matplotlib: pip install "handnet[plot]" (or pip install matplotlib)'
        ) from None
    return matplotlib


def new_figure(
    n_panels: int = 1,
    panel_size: tuple[float, float] = (PANEL_WIDTH, PANEL_HEIGHT),
    dpi: int = DPI,
) -> tuple[Figure, list[Axes]]:
    """A figure of ``n_panels`` side by side on an Agg canvas (no pyplot, no window).

    Returns
    -------
    figure : matplotlib.figure.Figure
        ``n_panels * panel_size[0]`` by ``panel_size[1]`` inches at ``dpi``.
    axes : list of matplotlib.axes.Axes
    """
    _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width, height = panel_size
    figure = Figure(figsize=(n_panels * width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, n_panels, squeeze=False)[0]
    return figure, list(axes)


def save_figure(figure: Figure, path: str | os.PathLike[str]) -> str:
    """Write ``figure`` to ``path`` (PNG, or what the extension says) at its own size.

    Not cropped (no ``bbox_inches="tight"``), so a PNG is exactly the figure's
    size in inches times its dpi. Returns the path written.
    """
    target = os.fspath(path)
    figure.savefig(target, dpi=figure.dpi)
    return target


# --- curves ------------------------------------------------------------------------------


@dataclass
class TrainingCurves:
    """Numbers recorded per epoch while training, by series name.

    The series whose names end in ``"loss"`` are drawn in the loss panel, those
    ending in ``"accuracy"`` in the accuracy panel. The usual names are
    ``"training loss"``, ``"validation loss"``, ``"training accuracy"`` and
    ``"validation accuracy"``; a series may be recorded every epoch or only
    every few.
    """

    series: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)
    #: The epoch whose parameters training kept (early stopping: the lowest
    #: validation loss), marked in both panels; ``None``: the last one.
    kept_epoch: int | None = None

    def add(self, name: str, epoch: int, value: float) -> None:
        """Record ``value`` for ``name`` at ``epoch``."""
        epochs, values = self.series.setdefault(name, ([], []))
        epochs.append(int(epoch))
        values.append(float(value))

    def extend(self, name: str, values: Sequence[float], first_epoch: int = 1) -> None:
        """Record a whole series, one value per epoch from ``first_epoch``."""
        for offset, value in enumerate(values):
            self.add(name, first_epoch + offset, value)

    @classmethod
    def from_model(cls, model: Any) -> TrainingCurves:
        """The training loss (``loss_curve_``), the validation loss and accuracy a model
        recorded, and the epoch it kept (``best_epoch_``)."""
        curves = cls()
        curves.extend("training loss", list(getattr(model, "loss_curve_", None) or []))
        validation_losses = getattr(model, "validation_loss_curve_", None) or []
        curves.extend("validation loss", list(validation_losses))
        scores = getattr(model, "validation_scores_", None) or []
        curves.extend("validation accuracy", list(scores))
        curves.kept_epoch = getattr(model, "best_epoch_", None)
        return curves

    def last(self, name: str) -> float | None:
        """The most recent value of a series, or ``None``."""
        values = self.series.get(name, ([], []))[1]
        return values[-1] if values else None


def plot_curves(
    curves: TrainingCurves,
    ax_loss: Axes | None = None,
    ax_accuracy: Axes | None = None,
    title: str | None = None,
) -> tuple[Axes | None, Axes | None]:
    """Draw the loss series into ``ax_loss`` and the accuracy series into ``ax_accuracy``.

    The loss axis is logarithmic when every loss is positive: on separable data
    (the seed's) the loss keeps shrinking towards 0 by orders of magnitude.
    Either axis may be ``None`` to skip that panel.
    """
    for ax, suffix, ylabel in ((ax_loss, "loss", "loss"), (ax_accuracy, "accuracy", "accuracy")):
        if ax is None:
            continue
        drawn = False
        for name, (epochs, values) in curves.series.items():
            if not name.endswith(suffix) or not values:
                continue
            # Training solid blue, validation dashed orange, in both panels.
            validation = name.startswith("validation")
            marker = "o" if len(values) == 1 else None
            ax.plot(epochs, values, "--" if validation else "-", color="C1" if validation else "C0",
                    marker=marker, label=name, linewidth=1.5)
            drawn = True
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if drawn and curves.kept_epoch is not None:
            ax.axvline(curves.kept_epoch, color="C2", linestyle=":", linewidth=1.5,
                       label=f"kept: epoch {curves.kept_epoch}")
        if drawn:
            ax.legend(loc="best", fontsize="small")
            if suffix == "loss":
                losses = [
                    value for name, (_, values) in curves.series.items()
                    if name.endswith("loss") for value in values
                ]
                if losses and min(losses) > 0:
                    ax.set_yscale("log")
        else:
            ax.text(0.5, 0.5, f"no {suffix} recorded", ha="center", va="center",
                    transform=ax.transAxes, color="gray")
        if title:
            ax.set_title(f"{title}: {suffix}")
    return ax_loss, ax_accuracy


# --- decision boundaries -----------------------------------------------------------------


def decision_grid(
    X: ArrayLike, resolution: int = 200, padding: float = 0.1
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """A ``resolution x resolution`` grid covering 2-D data with a margin.

    Returns
    -------
    xx, yy : ndarray of shape (resolution, resolution)
        The grid's coordinates (as from ``np.meshgrid``).
    points : ndarray of shape (resolution**2, 2)
        The same points as rows, ready for ``model.predict``.
    """
    data = np.asarray(X, dtype=np.float64)
    if data.ndim != 2 or data.shape[1] != 2:
        raise ValueError(
            f"a decision boundary is drawn for 2-D data (2 features), got shape {data.shape}"
        )
    low, high = data.min(axis=0), data.max(axis=0)
    margin = padding * np.where(high > low, high - low, 1.0)
    xs = np.linspace(low[0] - margin[0], high[0] + margin[0], resolution)
    ys = np.linspace(low[1] - margin[1], high[1] + margin[1], resolution)
    xx, yy = np.meshgrid(xs, ys)
    return xx, yy, np.column_stack([xx.ravel(), yy.ravel()])


def _class_colors(n_classes: int) -> list[Any]:
    matplotlib = _matplotlib()
    cmap = matplotlib.colormaps["tab10" if n_classes <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n_classes)]


def plot_decision_boundary(
    model: Any,
    X: ArrayLike,
    y: ArrayLike | None = None,
    ax: Axes | None = None,
    resolution: int = 200,
    title: str | None = None,
    classes: Sequence[Any] | None = None,
    feature_names: Sequence[str] | None = None,
) -> Axes:
    """Shade the region each class wins, and draw the points over it.

    Parameters
    ----------
    model : classifier
        Anything with ``predict`` taking rows of 2 features (a handnet or
        scikit-learn classifier, a pipeline...).
    X : array-like of shape (n_samples, 2)
    y : array-like of shape (n_samples,), optional
        The points' labels (colours); without it the points are drawn in grey.
    ax : matplotlib Axes, optional
        Drawn into a new one-panel figure when omitted.
    resolution : int, default 200
        Grid points per axis.
    classes : sequence, optional
        The class labels in colour order (default: ``model.classes_`` or the
        labels seen in ``y`` and in the predictions).
    feature_names : (str, str), optional
        Axis labels (default "feature 1", "feature 2").
    """
    if ax is None:
        ax = new_figure(1)[1][0]
    data = np.asarray(X, dtype=np.float64)
    xx, yy, points = decision_grid(data, resolution)
    predicted = np.asarray(model.predict(points))
    if classes is None:
        known = getattr(model, "classes_", None)
        pool = [predicted] + ([np.asarray(y)] if y is not None else [])
        classes = list(known) if known is not None else list(np.unique(np.concatenate(pool)))
    lookup = {label: index for index, label in enumerate(np.asarray(classes).tolist())}
    colors = _class_colors(max(len(lookup), 1))
    regions = np.array([lookup.get(label, -1) for label in predicted.tolist()], dtype=np.float64)
    from matplotlib.colors import ListedColormap

    cmap = ListedColormap(colors)
    ax.contourf(xx, yy, regions.reshape(xx.shape), levels=np.arange(len(lookup) + 1) - 0.5,
                cmap=cmap, alpha=0.3)
    if y is None:
        ax.scatter(data[:, 0], data[:, 1], s=12, c="0.3", edgecolors="none")
    else:
        labels = np.asarray(y).tolist()
        for label, index in lookup.items():
            mask = np.array([value == label for value in labels], dtype=bool)
            if mask.any():
                ax.scatter(data[mask, 0], data[mask, 1], s=14, color=colors[index],
                           edgecolors="black", linewidths=0.3, label=str(label))
        ax.legend(loc="upper right", fontsize="small", title="class")
    ax.set_xlim(xx.min(), xx.max())
    ax.set_ylim(yy.min(), yy.max())
    x_name, y_name = feature_names if feature_names is not None else ("feature 1", "feature 2")
    ax.set_xlabel(x_name)
    ax.set_ylabel(y_name)
    if title:
        ax.set_title(title)
    return ax


# --- weights -----------------------------------------------------------------------------


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
    names : sequence of str, optional
        Bar labels (default ``w1 .. wn``).
    rescale : bool, default True
        Also draw the learned values rescaled to the teacher's norm. On separable
        data only the *direction* of the weights is determined (their norm keeps
        growing with training); after rescaling they sit on the teacher's.
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


# --- composed figures --------------------------------------------------------------------


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


# --- animation ---------------------------------------------------------------------------


class BoundaryAnimation:
    """A GIF of a classifier's decision boundary, one frame per :meth:`add_frame`.

    The points, axes and legend are drawn once; each frame only replaces the
    class-region image (``imshow`` of the predicted class on a grid) and the
    title, then matplotlib's :class:`~matplotlib.animation.PillowWriter` grabs
    it. Pillow writes the GIF when :meth:`close` is called.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.gif`` to write.
    X, y : array-like
        2-D points and their labels (drawn on every frame).
    classes : sequence
        Class labels in colour order.
    fps : int, default 8
    resolution : int, default 120
        Grid points per axis.
    size : float, default 4.0
        Width and height in inches (at :data:`DPI`).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        X: ArrayLike,
        y: ArrayLike,
        classes: Sequence[Any],
        fps: int = 8,
        resolution: int = 120,
        size: float = 4.0,
    ) -> None:
        _matplotlib()
        try:
            import PIL  # noqa: F401  (PillowWriter needs it: fail before training, not after)
        except ImportError:
            raise MissingDependencyError(
                'GIF animations need Pillow: pip install "handnet[plot]" (or pip install pillow)'
            ) from None
        from matplotlib.animation import PillowWriter
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.colors import ListedColormap
        from matplotlib.figure import Figure

        self.path = os.fspath(path)
        data = np.asarray(X, dtype=np.float64)
        labels = np.asarray(y).tolist()
        self.lookup = {label: index for index, label in enumerate(np.asarray(classes).tolist())}
        colors = _class_colors(max(len(self.lookup), 1))
        xx, yy, self.points = decision_grid(data, resolution)
        self.shape = xx.shape
        # A fixed layout (no constrained layout): it would be recomputed on every frame.
        self.figure = Figure(figsize=(size, size), dpi=DPI)
        FigureCanvasAgg(self.figure)
        self.figure.subplots_adjust(left=0.12, right=0.97, bottom=0.1, top=0.92)
        ax = self.figure.add_subplot()
        self.image = ax.imshow(
            np.zeros(self.shape), extent=(xx.min(), xx.max(), yy.min(), yy.max()),
            origin="lower", cmap=ListedColormap(colors), vmin=-0.5,
            vmax=len(self.lookup) - 0.5, alpha=0.35, interpolation="nearest", aspect="auto",
        )
        for label, index in self.lookup.items():
            mask = np.array([value == label for value in labels], dtype=bool)
            if mask.any():
                ax.scatter(data[mask, 0], data[mask, 1], s=10, color=colors[index],
                           edgecolors="black", linewidths=0.3, label=str(label))
        ax.legend(loc="upper right", fontsize="small", title="class")
        ax.set_xlabel("feature 1")
        ax.set_ylabel("feature 2")
        self.title = ax.set_title("")
        self.writer = PillowWriter(fps=fps)
        self.writer.setup(self.figure, self.path, dpi=DPI)
        self.n_frames = 0

    def add_frame(self, model: Any, title: str) -> None:
        """Draw ``model``'s current decision boundary and append it as a frame."""
        predicted = np.asarray(model.predict(self.points)).tolist()
        regions = np.array([self.lookup.get(label, -1) for label in predicted], dtype=np.float64)
        self.image.set_data(np.ma.masked_less(regions.reshape(self.shape), 0))
        self.title.set_text(title)
        self.writer.grab_frame()
        self.n_frames += 1

    def close(self) -> str:
        """Write the GIF; returns its path."""
        self.writer.finish()
        return self.path
