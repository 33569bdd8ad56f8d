"""A GIF of the decision boundary while a network learns, its frames where the change is."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._base import DPI, MissingDependencyError, _matplotlib, class_colors, decision_grid
from ._boundary import _scatter, class_probabilities, confidence_image


def frame_epochs(n_epochs: int, n_frames: int) -> list[int]:
    """The epochs to draw: about ``n_frames`` of ``1..n_epochs``, spaced geometrically.

    A network changes most in its first epochs and then settles, so evenly
    spaced frames show mostly a settled picture. Geometric spacing (epoch
    ``n_epochs ** (i / (n_frames - 1))``, rounded, duplicates dropped) gives each
    doubling of the epoch count the same number of frames: every one of the first
    epochs, then fewer and fewer. The first and the last epoch are always drawn.

    Examples
    --------
    >>> frame_epochs(500, 10)
    [1, 2, 4, 8, 16, 32, 63, 126, 251, 500]
    """
    if n_epochs < 1:
        return []
    if n_frames <= 1:
        return [n_epochs]
    points = np.geomspace(1, n_epochs, num=n_frames)
    epochs = sorted({round(float(point)) for point in points} | {1, n_epochs})
    return epochs


class BoundaryAnimation:
    """A GIF of a classifier's decision boundary, one frame per :meth:`add_frame`.

    The points, axes and legend are drawn once; each frame only replaces the
    shaded image (the likeliest class's colour, paler where the model is less
    sure, as :func:`~handnet.plot.plot_decision_boundary` shades more than two
    classes; flat class colours for a model without ``predict_proba``) and the
    title, then matplotlib's :class:`~matplotlib.animation.PillowWriter` grabs
    it. Pillow writes the GIF when :meth:`close` is called. Which epochs to
    draw: :func:`frame_epochs`.

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
        from matplotlib.figure import Figure

        self.path = os.fspath(path)
        data = np.asarray(X, dtype=np.float64)
        self.lookup = {label: index for index, label in enumerate(np.asarray(classes).tolist())}
        self.colors = class_colors(max(len(self.lookup), 1))
        xx, yy, self.points = decision_grid(data, resolution)
        self.shape = xx.shape
        self.figure = Figure(figsize=(size, size), dpi=DPI, layout="constrained")
        FigureCanvasAgg(self.figure)
        ax = self.figure.add_subplot()
        self.image = ax.imshow(
            np.ones((*self.shape, 3)), extent=(xx.min(), xx.max(), yy.min(), yy.max()),
            origin="lower", alpha=0.8, interpolation="bilinear", aspect="auto",
        )
        _scatter(ax, data, y, self.lookup, self.colors, size=10)
        ax.set_xlabel("feature 1")
        ax.set_ylabel("feature 2")
        # Laid out once, for the longest title a frame will have, then frozen:
        # constrained layout would otherwise be computed again on every frame.
        self.title = ax.set_title("epoch 000000: training accuracy 0.000", fontsize="medium")
        self.figure.canvas.draw()
        self.figure.set_layout_engine("none")
        self.writer = PillowWriter(fps=fps)
        self.writer.setup(self.figure, self.path, dpi=DPI)
        self.n_frames = 0

    def add_frame(self, model: Any, title: str) -> None:
        """Draw ``model``'s current decision boundary and append it as a frame."""
        probabilities = class_probabilities(model, self.points, self.lookup)
        if probabilities is None:  # flat class colours: a sure model everywhere
            predicted = np.asarray(model.predict(self.points)).tolist()
            index = np.array([self.lookup.get(label, 0) for label in predicted])
            probabilities = np.eye(max(len(self.lookup), 1))[index]
        rgb = confidence_image(probabilities, self.colors).reshape(*self.shape, 3)
        self.image.set_data(rgb)
        self._set_title(title)
        self.writer.grab_frame()
        self.n_frames += 1

    def _set_title(self, title: str) -> None:
        """The frame's title, in a smaller font if the figure is too narrow for it."""
        text, figure = self.title, self.figure
        text.set_text(title)
        renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
        for size in (12.0, 11.0, 10.0, 9.0, 8.0, 7.0, 6.0):
            text.set_fontsize(size)
            extent = text.get_window_extent(renderer)
            if extent.x0 >= figure.bbox.x0 and extent.x1 <= figure.bbox.x1:
                break

    def close(self) -> str:
        """Write the GIF; returns its path."""
        self.writer.finish()
        return self.path
