"""What every picture shares: the optional matplotlib, figures on an Agg canvas, sizes."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:  # pragma: no cover - only for annotations
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

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
    n_rows: int = 1,
) -> tuple[Figure, list[Axes]]:
    """A figure of ``n_panels`` side by side on an Agg canvas (no pyplot, no window).

    Parameters
    ----------
    n_panels : int, default 1
        Panels per row.
    panel_size : (float, float)
        One panel's width and height in inches.
    dpi : int
    n_rows : int, default 1
        Rows of panels (the axes are listed row by row).

    Returns
    -------
    figure : matplotlib.figure.Figure
        ``n_panels * panel_size[0]`` by ``n_rows * panel_size[1]`` inches at
        ``dpi``, laid out by matplotlib's constrained layout (no clipped labels).
    axes : list of matplotlib.axes.Axes
    """
    _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width, height = panel_size
    figure = Figure(figsize=(n_panels * width, n_rows * height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(n_rows, n_panels, squeeze=False)
    return figure, [ax for row in axes for ax in row]


def save_figure(figure: Figure, path: str | os.PathLike[str]) -> str:
    """Write ``figure`` to ``path`` (PNG, or what the extension says) at its own size.

    Not cropped (no ``bbox_inches="tight"``), so a PNG is exactly the figure's
    size in inches times its dpi. Returns the path written.
    """
    target = os.fspath(path)
    figure.savefig(target, dpi=figure.dpi)
    return target


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


def class_colors(n_classes: int) -> list[Any]:
    """``n_classes`` RGBA colours, the classes' in every picture (matplotlib's tab10/tab20)."""
    matplotlib = _matplotlib()
    cmap = matplotlib.colormaps["tab10" if n_classes <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n_classes)]


def clipped_texts(figure: Any) -> list[str]:
    """The texts of ``figure`` that stick out of it (``[]``: none is clipped).

    Every visible, non-empty text is checked once the figure is drawn (so with
    its saved layout): titles, axis labels, legends, annotations and the tick
    labels actually drawn (those of ticks inside the axes' view).
    """
    from matplotlib.text import Text

    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    tick_labels: set[int] = set()
    texts: list[Text] = []
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            slack = 1e-9 * max(abs(low), abs(high), 1.0)
            for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
                tick_labels.update({id(tick.label1), id(tick.label2)})
                if low - slack <= tick.get_loc() <= high + slack:
                    texts += [tick.label1, tick.label2]
    texts += [
        text for text in figure.findobj(Text)
        if isinstance(text, Text) and id(text) not in tick_labels
    ]
    box = figure.bbox
    outside = []
    for text in texts:
        if not text.get_visible() or not text.get_text():
            continue
        extent = text.get_window_extent(renderer)
        if (extent.x0 < box.x0 - 1 or extent.y0 < box.y0 - 1 or extent.x1 > box.x1 + 1
                or extent.y1 > box.y1 + 1):
            outside.append(text.get_text())
    return outside
