"""Decision boundaries shaded by probability, and what each hidden unit computes over the plane."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._base import class_colors, decision_grid, new_figure

if TYPE_CHECKING:  # pragma: no cover - only for annotations
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Array = NDArray[np.float64]


def class_probabilities(model: Any, points: Array, lookup: dict[Any, int]) -> Array | None:
    """``P(class | point)``, one column per class of ``lookup`` (in its order).

    ``None`` when ``model`` has no ``predict_proba`` (or its ``classes_`` do not
    match ``lookup``): the picture then shades the predicted class alone.
    """
    predict_proba = getattr(model, "predict_proba", None)
    if predict_proba is None:
        return None
    proba = np.asarray(predict_proba(points), dtype=np.float64)
    known = getattr(model, "classes_", None)
    if known is None:
        return proba if proba.shape[1] == len(lookup) else None
    columns = [lookup.get(label, -1) for label in np.asarray(known).tolist()]
    if -1 in columns or proba.shape[1] != len(columns):
        return None
    result = np.zeros((len(points), len(lookup)))
    result[:, np.asarray(columns, dtype=np.intp)] = proba
    return result


def confidence_image(probabilities: Array, colors: Sequence[Any]) -> Array:
    """RGB rows: the likeliest class's colour, blended with white by how sure the model is.

    The blend is ``(p_max - 1/k) / (1 - 1/k)`` for ``k`` classes: white where
    every class is equally likely, the class's full colour where ``p_max = 1``.
    For two classes this is the two-colour scale of ``P(class 1)``, white at 0.5.
    """
    k = probabilities.shape[1]
    best = np.argmax(probabilities, axis=1)
    strength = (probabilities.max(axis=1) - 1.0 / k) / (1.0 - 1.0 / k) if k > 1 else np.ones(
        len(best)
    )
    palette = np.asarray([color[:3] for color in colors], dtype=np.float64)
    strength = np.clip(strength, 0.0, 1.0)[:, None]
    rgb: Array = (1.0 - strength) + strength * palette[best]
    return rgb


def _two_class_cmap(colors: Sequence[Any]) -> Any:
    """The colour scale of ``P(class 1)``: class 0's colour, white at 0.5, class 1's."""
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("handnet_p1", [colors[0], (1, 1, 1, 1), colors[1]])


def _class_lookup(
    model: Any, points: Array, y: ArrayLike | None, classes: Sequence[Any] | None
) -> dict[Any, int]:
    if classes is None:
        known = getattr(model, "classes_", None)
        if known is not None:
            classes = list(known)
        else:
            pool = [np.asarray(model.predict(points))]
            pool += [np.asarray(y)] if y is not None else []
            classes = list(np.unique(np.concatenate(pool)))
    return {label: index for index, label in enumerate(np.asarray(classes).tolist())}


def _shade(ax: Axes, model: Any, points: Array, shape: tuple[int, ...],
           extent: tuple[float, float, float, float], lookup: dict[Any, int],
           colors: Sequence[Any], shade: str) -> None:
    """The background: probabilities (a colour scale and the 0.5 line for two classes)."""
    probabilities = class_probabilities(model, points, lookup) if shade == "probability" else None
    image: dict[str, Any] = {"extent": extent, "origin": "lower", "aspect": "auto",
                             "interpolation": "bilinear"}
    if probabilities is not None and len(lookup) == 2:
        p1 = probabilities[:, 1].reshape(shape)
        shown = ax.imshow(p1, cmap=_two_class_cmap(colors), vmin=0.0, vmax=1.0, alpha=0.8,
                          **image)
        label = list(lookup)[1]
        xs = np.linspace(extent[0], extent[1], shape[1])
        ys = np.linspace(extent[2], extent[3], shape[0])
        if p1.min() < 0.5 < p1.max():
            ax.contour(xs, ys, p1, levels=[0.5], colors="black", linewidths=1.2)
        ax.figure.colorbar(shown, ax=ax, label=f"P(class {label})", shrink=0.9)
    elif probabilities is not None:
        rgb = confidence_image(probabilities, colors).reshape(*shape, 3)
        ax.imshow(rgb, alpha=0.8, **image)
    else:
        predicted = np.asarray(model.predict(points)).tolist()
        regions = np.array([lookup.get(label, -1) for label in predicted], dtype=np.float64)
        from matplotlib.colors import ListedColormap

        image["interpolation"] = "nearest"
        ax.imshow(np.ma.masked_less(regions.reshape(shape), 0), cmap=ListedColormap(colors),
                  vmin=-0.5, vmax=len(lookup) - 0.5, alpha=0.35, **image)


def plot_decision_boundary(
    model: Any,
    X: ArrayLike,
    y: ArrayLike | None = None,
    ax: Axes | None = None,
    resolution: int = 200,
    title: str | None = None,
    classes: Sequence[Any] | None = None,
    feature_names: Sequence[str] | None = None,
    shade: str = "probability",
) -> Axes:
    """Shade how sure a classifier is over the plane, and draw the points over it.

    Parameters
    ----------
    model : classifier
        Anything with ``predict`` taking rows of 2 features (a handnet or
        scikit-learn classifier, a pipeline...); ``predict_proba`` too for
        probabilities.
    X : array-like of shape (n_samples, 2)
    y : array-like of shape (n_samples,), optional
        The points' labels (colours); without it the points are drawn in grey.
    ax : matplotlib Axes, optional
        Drawn into a new one-panel figure when omitted.
    resolution : int, default 200
        Grid points per axis.
    title : str, optional
    classes : sequence, optional
        The class labels in colour order (default: ``model.classes_`` or the
        labels seen in ``y`` and in the predictions).
    feature_names : (str, str), optional
        Axis labels (default "feature 1", "feature 2").
    shade : {"probability", "class"}, default "probability"
        ``"probability"``: two classes are shaded by ``P(class 1)`` on a scale
        from class 0's colour through white (0.5) to class 1's, with a colour bar
        and the ``P = 0.5`` line in black; more classes by the likeliest
        class's colour, paler where the model is less sure
        (:func:`confidence_image`). ``"class"`` (or a model without
        ``predict_proba``): flat colours of the predicted class.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if shade not in ("probability", "class"):
        raise ValueError(f"shade must be 'probability' or 'class', got {shade!r}")
    if ax is None:
        ax = new_figure(1)[1][0]
    data = np.asarray(X, dtype=np.float64)
    xx, yy, points = decision_grid(data, resolution)
    lookup = _class_lookup(model, points, y, classes)
    colors = class_colors(max(len(lookup), 1))
    extent = (float(xx.min()), float(xx.max()), float(yy.min()), float(yy.max()))
    _shade(ax, model, points, xx.shape, extent, lookup, colors, shade)
    _scatter(ax, data, y, lookup, colors)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    x_name, y_name = feature_names if feature_names is not None else ("feature 1", "feature 2")
    ax.set_xlabel(x_name)
    ax.set_ylabel(y_name)
    if title:
        ax.set_title(title)
    return ax


def _scatter(ax: Axes, data: Array, y: ArrayLike | None, lookup: dict[Any, int],
             colors: Sequence[Any], size: float = 14, legend: bool = True) -> None:
    """The points, in their class's colour (grey without labels)."""
    if y is None:
        ax.scatter(data[:, 0], data[:, 1], s=size, c="0.3", edgecolors="none")
        return
    labels = np.asarray(y).tolist()
    for label, index in lookup.items():
        mask = np.array([value == label for value in labels], dtype=bool)
        if mask.any():
            ax.scatter(data[mask, 0], data[mask, 1], s=size, color=colors[index],
                       edgecolors="black", linewidths=0.3, label=str(label))
    if legend:
        ax.legend(loc="upper right", fontsize="small", title="class")


def hidden_activations(model: Any, points: ArrayLike) -> list[Array]:
    """What each hidden layer of a fitted network outputs on ``points``, layer by layer.

    A hidden layer's output is taken after each activation layer below the
    output layer (``Dense -> activation`` in an MLP). Returns one array of shape
    ``(n_points, n_units)`` per hidden layer (empty for a linear model).
    """
    from ..nn.layers import Activation

    network = getattr(model, "network_", None)
    if network is None:
        raise ValueError(f"{type(model).__name__} is not fitted (it has no network_ yet)")
    values = np.asarray(points, dtype=network.dtype)
    outputs = []
    for layer in network.layers[:-1]:
        values = layer.predict(values)
        if isinstance(layer, Activation):
            outputs.append(np.asarray(values, dtype=np.float64).reshape(len(values), -1))
    return outputs


def plot_hidden_units(
    model: Any,
    X: ArrayLike,
    y: ArrayLike | None = None,
    layer: int = 1,
    resolution: int = 60,
    max_units: int = 32,
    columns: int = 8,
) -> Figure:
    """What each unit of a hidden layer computes over the plane (as TensorFlow Playground shows).

    Parameters
    ----------
    model : fitted handnet network estimator
        Over 2 features (``MLPClassifier``, ``MLPRegressor``, a NeuralNet estimator).
    X : array-like of shape (n_samples, 2)
        The data: the plane drawn covers it; its points are drawn faintly.
    y : array-like, optional
        The points' labels (colours).
    layer : int, default 1
        Which hidden layer, counted from 1.
    resolution : int, default 60
        Grid points per axis of each panel.
    max_units : int, default 32
        At most this many units (the first ones) are drawn.
    columns : int, default 8
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
        One small panel per unit: its output at each point of the plane, on a
        scale centred at 0 (blue negative, red positive, white 0), the same scale
        in every panel of the layer.
    """
    data = np.asarray(X, dtype=np.float64)
    xx, yy, points = decision_grid(data, resolution)
    layers = hidden_activations(model, points)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no hidden layer: its output is linear")
    if not 1 <= layer <= len(layers):
        raise ValueError(f"layer must be between 1 and {len(layers)}, got {layer}")
    units = layers[layer - 1][:, :max_units]
    n_units = units.shape[1]
    n_columns = min(columns, n_units)
    n_rows = -(-n_units // n_columns)
    figure, axes = new_figure(n_columns, (1.6, 1.6), n_rows=n_rows)
    scale = float(np.max(np.abs(units))) or 1.0
    extent = (float(xx.min()), float(xx.max()), float(yy.min()), float(yy.max()))
    lookup = {label: i for i, label in enumerate(np.unique(np.asarray(y)).tolist())} if (
        y is not None) else {}
    colors = class_colors(max(len(lookup), 1))
    image = None
    for unit, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if unit >= n_units:
            ax.set_axis_off()
            continue
        image = ax.imshow(units[:, unit].reshape(xx.shape), extent=extent, origin="lower",
                          aspect="auto", cmap="RdBu_r", vmin=-scale, vmax=scale)
        _scatter(ax, data, y, lookup, colors, size=3, legend=False)
        ax.set_title(f"unit {unit + 1}", fontsize="small")
    assert image is not None
    figure.colorbar(image, ax=axes, shrink=0.8, label="output")
    figure.suptitle(f"hidden layer {layer} of {type(model).__name__}: "
                    f"{n_units} of {layers[layer - 1].shape[1]} units")
    return figure
