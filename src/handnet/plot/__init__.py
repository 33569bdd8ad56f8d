"""Pictures of training: curves, decision boundaries, hidden units, weights, animations.

matplotlib (and Pillow, for GIFs) are optional: ``pip install "handnet[plot]"``.
They are imported only when a function here draws something, so ``import
handnet.plot`` costs nothing and the rest of handnet never needs them.

Figures are made with :class:`matplotlib.figure.Figure` on an Agg canvas, never
through ``pyplot``: no window opens, no global backend is switched, and a
script, a server or a test can draw without a display (in a notebook a returned
figure shows itself). Every function that draws into an ``ax`` returns it, so
the pieces compose into one's own figures; the others return a whole
:class:`~matplotlib.figure.Figure` and :func:`save_figure` writes it.

* :func:`curves` (also ``model.plot()``) - a fitted model's history in one call:
  training data loss against validation loss, the validation score, the learning
  rate, the kept epoch marked; :class:`TrainingCurves` and :func:`plot_curves`
  for one's own series;
* :func:`plot_decision_boundary` - how sure any classifier (anything with
  ``predict``, ``predict_proba`` for the shading) is over 2-D data, the points on top;
* :func:`plot_hidden_units` - what each hidden unit computes over the plane;
* :func:`confusion_matrix` - true against predicted classes;
* :func:`plot_weights` - learned weights next to a teacher's (the seed's experiment);
* :class:`BoundaryAnimation` - a GIF of the decision boundary while a network
  learns, at the epochs :func:`frame_epochs` picks (most of them early).

PNG size is exact: a figure of ``n`` panels is ``n * PANEL_WIDTH`` by
``PANEL_HEIGHT`` inches, saved at :data:`DPI` dots per inch without cropping;
constrained layout keeps every label inside it.
"""

from __future__ import annotations

from ._animation import BoundaryAnimation, frame_epochs
from ._base import (
    DPI,
    PANEL_HEIGHT,
    PANEL_WIDTH,
    MissingDependencyError,
    class_colors,
    clipped_texts,
    decision_grid,
    new_figure,
    save_figure,
)
from ._base import (
    _matplotlib as _matplotlib,
)
from ._boundary import (
    class_probabilities,
    confidence_image,
    hidden_activations,
    plot_decision_boundary,
    plot_hidden_units,
)
from ._curves import TrainingCurves, as_curves, curves, plot_curves
from ._figures import confusion_matrix, plot_weights, predicted_vs_true, training_figure

__all__ = [
    "DPI",
    "PANEL_HEIGHT",
    "PANEL_WIDTH",
    "BoundaryAnimation",
    "MissingDependencyError",
    "TrainingCurves",
    "as_curves",
    "class_colors",
    "class_probabilities",
    "clipped_texts",
    "confidence_image",
    "confusion_matrix",
    "curves",
    "decision_grid",
    "frame_epochs",
    "hidden_activations",
    "new_figure",
    "plot_curves",
    "plot_decision_boundary",
    "plot_hidden_units",
    "plot_weights",
    "predicted_vs_true",
    "save_figure",
    "training_figure",
]

# The single-module version's private helper, for code that reached for it.
_class_colors = class_colors
