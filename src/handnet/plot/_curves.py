"""Training curves: losses, scores and the learning rate per epoch, from a model or a record."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._base import PANEL_HEIGHT, PANEL_WIDTH, new_figure

if TYPE_CHECKING:  # pragma: no cover - only for annotations
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..training import History

#: The panels of :func:`curves`, and which series each one draws (see :func:`panel_of`).
PANELS = ("loss", "score", "learning rate")


def panel_of(name: str) -> str:
    """The panel a series belongs in: ``"learning rate"``, ``"loss"`` or ``"score"``.

    Names with "learning rate" go to the learning-rate panel, names with "loss"
    or "objective" to the loss panel, every other one (accuracy, R²) to the score.
    """
    if "learning rate" in name:
        return "learning rate"
    if "loss" in name or "objective" in name:
        return "loss"
    return "score"


@dataclass
class TrainingCurves:
    """Numbers recorded per epoch while training, by series name.

    The series whose names contain ``"loss"`` are drawn in the loss panel,
    ``"learning rate"`` in the learning-rate panel, every other one (``"accuracy"``,
    ``"R²"``) in the score panel (:func:`panel_of`). The usual names are
    ``"training loss"`` (the training *data* loss, without the L2 term, which is
    what ``"validation loss"`` measures too), ``"validation loss"``,
    ``"training accuracy"``, ``"validation accuracy"`` (or ``"validation R²"``) and
    ``"learning rate"``; a series may be recorded every epoch or only every few.
    """

    series: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)
    #: The epoch whose parameters training kept (early stopping: the lowest
    #: validation loss), marked in every panel; ``None``: the last one.
    kept_epoch: int | None = None
    #: Seconds the training took, when recorded (shown in :func:`curves`' title).
    seconds: float | None = None
    #: The score panel's label: ``"accuracy"`` or ``"R²"``.
    score_name: str = "accuracy"

    def add(self, name: str, epoch: int, value: float) -> None:
        """Record ``value`` for ``name`` at ``epoch``."""
        epochs, values = self.series.setdefault(name, ([], []))
        epochs.append(int(epoch))
        values.append(float(value))

    def extend(self, name: str, values: Sequence[float], first_epoch: int = 1) -> None:
        """Record a whole series, one value per epoch from ``first_epoch`` (NaNs skipped)."""
        for offset, value in enumerate(values):
            if not math.isnan(value):
                self.add(name, first_epoch + offset, value)

    @classmethod
    def from_history(
        cls, history: History, first_epoch: int = 1, score_name: str = "accuracy"
    ) -> TrainingCurves:
        """The series of a :class:`~handnet.training.History` (a model's ``history_``).

        ``first_epoch`` numbers its first epoch (a warm-started model's
        ``history_`` holds the last fit's epochs only). Plotted like with like:
        the training *data* loss against the validation loss; the objective
        (with the L2 term) only when the data loss was not recorded.
        """
        curves = cls(score_name=score_name)
        record = history.to_dict()
        data_loss = record["data_loss"]
        if any(not math.isnan(value) for value in data_loss):
            curves.extend("training loss", data_loss, first_epoch)
        else:
            curves.extend("training objective (loss + L2)", record["loss"], first_epoch)
        curves.extend("validation loss", record["validation_loss"], first_epoch)
        curves.extend(f"validation {score_name}", record["validation_score"], first_epoch)
        curves.extend("learning rate", record["learning_rate"], first_epoch)
        times = [value for value in record["time"] if not math.isnan(value)]
        curves.seconds = times[-1] if times else None
        return curves

    @classmethod
    def from_model(cls, model: Any) -> TrainingCurves:
        """What a fitted model recorded, numbered by the model's epochs.

        Its ``history_`` (the last fit's epochs: training data loss, validation
        loss and score, learning rate, time), the earlier epochs of a warm start
        from ``loss_curve_``, and the epoch it kept (``best_epoch_``).
        """
        score_name = "accuracy" if getattr(model, "_is_classifier", True) else "R²"
        losses = list(getattr(model, "loss_curve_", None) or [])
        history = getattr(model, "history_", None)
        n_recorded = 0 if history is None else len(history.loss)
        if history is not None and n_recorded:
            first = max(len(losses) - n_recorded, 0) + 1
            curves = cls.from_history(history, first, score_name)
        else:
            curves = cls(score_name=score_name)
        penalised = bool(getattr(model, "alpha", 0.0))
        objective = "training objective (loss + L2)"
        if not penalised and objective in curves.series:  # no L2 term: the same numbers
            curves.series["training loss"] = curves.series.pop(objective)
        earlier = losses[: len(losses) - n_recorded]
        if earlier:  # earlier fits of a warm start: their objective (the data loss if alpha=0)
            name = objective if penalised else "training loss"
            epochs, values = curves.series.get(name, ([], []))
            curves.series[name] = (
                [*range(1, len(earlier) + 1), *epochs], [*map(float, earlier), *values]
            )
        if n_recorded < len(losses):  # the model's validation curves span every fit
            for name, attribute in (("validation loss", "validation_loss_curve_"),
                                    (f"validation {score_name}", "validation_scores_")):
                values = list(getattr(model, attribute, None) or [])
                if values:
                    curves.series.pop(name, None)
                    curves.extend(name, values, len(losses) - len(values) + 1)
        curves.kept_epoch = getattr(model, "best_epoch_", None)
        return curves

    def last(self, name: str) -> float | None:
        """The most recent value of a series, or ``None``."""
        values = self.series.get(name, ([], []))[1]
        return values[-1] if values else None


def as_curves(source: Any) -> TrainingCurves:
    """``source`` as :class:`TrainingCurves`: curves, a ``History`` or a fitted model."""
    from ..training import History

    if isinstance(source, TrainingCurves):
        return source
    if isinstance(source, History):
        return TrainingCurves.from_history(source)
    if not hasattr(source, "loss_curve_"):
        raise TypeError(
            "curves are drawn from a fitted model, its history_ or TrainingCurves, "
            f"got {type(source).__name__}" + (
                " (not fitted yet: call fit first)" if hasattr(source, "fit") else ""
            )
        )
    return TrainingCurves.from_model(source)


def _draw_panel(ax: Axes, curves: TrainingCurves, panel: str, title: str | None) -> None:
    """The series of one panel, the kept epoch's mark, the axis labels."""
    drawn: list[float] = []
    for name, (epochs, values) in curves.series.items():
        if panel_of(name) != panel or not values:
            continue
        # Training solid blue, validation dashed orange, in every panel.
        validation = name.startswith("validation")
        style = "--" if validation else "-"
        color = "C1" if validation else "C2" if panel == "learning rate" else "C0"
        ax.plot(epochs, values, style, color=color, marker="o" if len(values) == 1 else None,
                label=name, linewidth=1.5)
        drawn.extend(values)
    ylabel = curves.score_name if panel == "score" else panel
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if drawn and curves.kept_epoch is not None:
        ax.axvline(curves.kept_epoch, color="C3", linestyle=":", linewidth=1.5,
                   label=f"kept: epoch {curves.kept_epoch}")
    if drawn:
        ax.legend(loc="best", fontsize="small")
        # On separable data the loss shrinks towards 0 by orders of magnitude; a
        # decaying learning rate may too.
        positive = min(drawn) > 0
        if (panel == "loss" and positive) or (
            panel == "learning rate" and positive and max(drawn) > 10 * min(drawn)
        ):
            ax.set_yscale("log")
    else:
        label = "accuracy" if panel == "score" and curves.score_name == "accuracy" else ylabel
        ax.text(0.5, 0.5, f"no {label} recorded", ha="center", va="center",
                transform=ax.transAxes, color="gray")
    if title:
        ax.set_title(f"{title}: {ylabel}")


def plot_curves(
    curves: TrainingCurves | Any,
    ax_loss: Axes | None = None,
    ax_accuracy: Axes | None = None,
    title: str | None = None,
) -> tuple[Axes | None, Axes | None]:
    """Draw the loss series into ``ax_loss`` and the score series into ``ax_accuracy``.

    Parameters
    ----------
    curves : TrainingCurves, History or fitted model
        What to draw (a model or a ``History`` is read by :func:`as_curves`).
    ax_loss, ax_accuracy : matplotlib Axes, optional
        Where to draw. When both are omitted they are the two panels of a new
        figure (``ax_loss.figure``); when one is, that panel is skipped.
    title : str, optional
        Prefixed to each panel's title.

    Returns
    -------
    (ax_loss, ax_accuracy)
        The axes drawn into (``None`` for a skipped panel).

    Notes
    -----
    The loss axis is logarithmic when every loss is positive: on separable data
    (the seed's) the loss keeps shrinking towards 0 by orders of magnitude.
    """
    curves = as_curves(curves)
    if ax_loss is None and ax_accuracy is None:
        ax_loss, ax_accuracy = new_figure(2)[1]
    if ax_loss is not None:
        _draw_panel(ax_loss, curves, "loss", title)
    if ax_accuracy is not None:
        _draw_panel(ax_accuracy, curves, "score", title)
    return ax_loss, ax_accuracy


def curves(
    model: Any, axes: Sequence[Axes] | None = None, title: str | None = None
) -> Figure:
    """Draw a model's training history in one call: loss, score and learning rate per epoch.

    Parameters
    ----------
    model : fitted estimator, History or TrainingCurves
        A handnet model after ``fit`` (its ``history_``, ``loss_curve_`` and
        ``best_epoch_``), or what :func:`as_curves` reads.
    axes : sequence of 3 matplotlib Axes, optional
        Where to draw the loss, score and learning-rate panels (default: a new
        figure of three panels, ``3 * PANEL_WIDTH`` by ``PANEL_HEIGHT`` inches).
    title : str, optional
        The figure's title (default: the model's class, epochs and seconds).

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn into (``figure.axes`` are the panels).

    Notes
    -----
    The training loss drawn is the *data* loss, without the L2 term, so that
    it compares with the validation loss (which has none); the kept epoch
    (early stopping's lowest validation loss) is a dotted line in every panel.

    Examples
    --------
    >>> from handnet.datasets import make_moons
    >>> from handnet.models import MLPClassifier
    >>> X, y = make_moons(100, noise=0.2, random_state=0)
    >>> model = MLPClassifier((8,), max_iter=20, early_stopping=True, random_state=0).fit(X, y)
    >>> figure = model.plot()  # or handnet.plot.curves(model)
    >>> [ax.get_ylabel() for ax in figure.axes]
    ['loss', 'accuracy', 'learning rate']
    """
    record = as_curves(model)
    if axes is None:
        figure, panels = new_figure(3, (PANEL_WIDTH, PANEL_HEIGHT))
    else:
        panels = list(axes)
        if len(panels) != len(PANELS):
            raise ValueError(f"curves draws {len(PANELS)} panels, got {len(panels)} axes")
        figure = panels[0].figure  # type: ignore[assignment]
    for ax, panel in zip(panels, PANELS, strict=True):
        _draw_panel(ax, record, panel, None)
        ax.set_title(panel if panel != "score" else record.score_name)
    if title is None and not isinstance(model, TrainingCurves):
        n_epochs = max((max(epochs) for epochs, _ in record.series.values() if epochs), default=0)
        name = type(model).__name__ if hasattr(model, "fit") else "training"
        title = f"{name}: {n_epochs} epochs"
        if record.seconds is not None:
            title += f" in {record.seconds:.3g} s"
    if title:
        figure.suptitle(title)
    return figure
