"""A network as a table: its layers, their output shapes and parameter counts (``model.summary()``).

:func:`summarize` reads a built :class:`~handnet.nn.network.Sequential`;
:func:`model_summary` is what an estimator's ``summary()`` returns: the fitted
network, or, before ``fit``, the network a ``NeuralNet`` estimator given an
``input_shape`` will build (its output layer, sized from the targets, left
open). A :class:`NetworkSummary` prints as a text table (like Keras's
``model.summary()``) and shows as an HTML table in Jupyter.
"""

from __future__ import annotations

import copy
import dataclasses
import html
import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..exceptions import NotFittedError, sklearn_compatible
from ..nn.layers import Activation, Dense, Layer, Reshape, Shape
from ..nn.network import Sequential, build_network

#: The columns of the table, in order.
COLUMNS = ("layer", "type", "output shape", "parameters")


@dataclass(frozen=True)
class LayerSummary:
    """One row of the table: a layer.

    Attributes
    ----------
    name : str
        ``"<type>_<k>"``, the k-th layer of its type (``"dense_2"``).
    kind : str
        The layer's class, with its activation's name (``"Activation(relu)"``).
    output_shape : tuple of int or None
        The shape of one sample's output, ``None`` where it depends on the data.
    n_parameters : int or None
        Trainable values (weights and biases), ``None`` where unknown before fit.
    n_buffers : int
        Saved values that are not trained (a ``BatchNorm``'s running statistics).
    """

    name: str
    kind: str
    output_shape: Shape | None
    n_parameters: int | None
    n_buffers: int = 0

    def cells(self) -> tuple[str, str, str, str]:
        """The row as text: name, type, output shape ``(None, ...)``, parameter count."""
        shape = "(None, ?)" if self.output_shape is None else str((None, *self.output_shape))
        count = "?" if self.n_parameters is None else f"{self.n_parameters:,}"
        return self.name, self.kind, shape, count


@dataclass(frozen=True)
class NetworkSummary:
    """The layers of a network, their output shapes and parameter counts, and the totals.

    ``str()`` (and ``repr()``) is a text table; ``_repr_html_`` an HTML table, which
    Jupyter shows. Output shapes start with ``None``: the number of samples.

    Attributes
    ----------
    title : str
    input_shape : tuple of int
        The shape of one sample going in.
    layers : tuple of LayerSummary
    dtype : str
        The parameters' dtype (for the size in bytes).
    planned : bool
        Whether this is the network ``fit`` will build (not fitted yet).
    """

    title: str
    input_shape: Shape
    layers: tuple[LayerSummary, ...]
    dtype: str = "float64"
    planned: bool = False

    @property
    def n_parameters(self) -> int:
        """Trainable values, over the layers whose count is known."""
        return sum(layer.n_parameters or 0 for layer in self.layers)

    @property
    def n_buffers(self) -> int:
        """Saved values that are not trained (normalisation's running statistics)."""
        return sum(layer.n_buffers for layer in self.layers)

    def totals(self) -> list[str]:
        """The lines under the table: parameters, their size, what is not known yet."""
        size = (self.n_parameters + self.n_buffers) * np.dtype(self.dtype).itemsize
        open_ = any(layer.n_parameters is None for layer in self.layers)
        lines = [
            f"Total parameters: {self.n_parameters + self.n_buffers:,}"
            + (" + the output layer's" if open_ else "")
            + f" ({_bytes(size)}, {self.dtype})",
            f"Trainable parameters: {self.n_parameters:,}",
            f"Non-trainable parameters: {self.n_buffers:,}",
        ]
        if open_:
            lines.append("(?: sized from the targets at fit)")
        return lines

    def to_text(self) -> str:
        """The summary as a text table."""
        rows = [COLUMNS, *(layer.cells() for layer in self.layers)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]

        def line(row: Sequence[str]) -> str:
            cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
            return "  ".join([*cells, row[-1].rjust(widths[-1])]).rstrip()

        rule = "=" * len(line(rows[0]))
        body = [line(row) for row in rows[1:]]
        text = [self.title, f"input shape: {(None, *self.input_shape)}", rule, line(rows[0]),
                rule.replace("=", "-"), *body, rule, *self.totals()]
        return "\n".join(text)

    def to_html(self) -> str:
        """The summary as an HTML table (what Jupyter shows)."""
        head = "".join(f"<th>{html.escape(name)}</th>" for name in COLUMNS)
        body = "".join(
            "<tr>" + "".join(
                f'<td style="text-align:{"right" if i == 3 else "left"}">{html.escape(cell)}</td>'
                for i, cell in enumerate(layer.cells())
            ) + "</tr>"
            for layer in self.layers
        )
        foot = "<br>".join(html.escape(line) for line in self.totals())
        return (
            '<div class="handnet-summary"><table>'
            f"<caption>{html.escape(self.title)}<br><small>input shape: "
            f"{html.escape(str((None, *self.input_shape)))}</small></caption>"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            f"<p><small>{foot}</small></p></div>"
        )

    def to_rows(self) -> list[dict[str, Any]]:
        """One dict per layer (for ``pandas.DataFrame(summary.to_rows())``)."""
        return [
            {"layer": layer.name, "type": layer.kind, "output shape": layer.output_shape,
             "parameters": layer.n_parameters, "non-trainable": layer.n_buffers}
            for layer in self.layers
        ]

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        return self.to_html()


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n:.1f} GiB"


def _kind(layer: Layer) -> str:
    if isinstance(layer, Activation):
        name = layer.config().get("name")
        return f"{type(layer).__name__}({name})" if name else type(layer).__name__
    return type(layer).__name__


def _rows(layers: Sequence[Layer], input_shape: Shape, open_output: bool) -> list[LayerSummary]:
    """The rows of built ``layers``; with ``open_output``, the last one's size is unknown."""
    rows = []
    counts: dict[str, int] = {}
    shape: Shape | None = input_shape
    for position, layer in enumerate(layers):
        kind = type(layer).__name__
        counts[kind] = counts.get(kind, 0) + 1
        assert shape is not None
        shape = tuple(layer.output_shape(shape))
        n_parameters: int | None = sum(int(p.size) for p in layer.parameters())
        if open_output and position == len(layers) - 1:
            shape, n_parameters = None, None
        buffers = sum(int(np.size(value)) for value in layer.buffers().values())
        rows.append(LayerSummary(f"{kind.lower()}_{counts[kind]}", _kind(layer), shape,
                                 n_parameters, buffers))
    return rows


def summarize(network: Sequential, input_shape: Shape, title: str = "Sequential") -> NetworkSummary:
    """The summary of a built network taking samples of ``input_shape``.

    Examples
    --------
    >>> from handnet import Sequential, Dense, Activation
    >>> net = Sequential([Dense(2, 8, random_state=0), Activation("tanh"), Dense(8, 3)])
    >>> summarize(net, (2,)).n_parameters
    51
    """
    rows = _rows(network.layers, tuple(input_shape), open_output=False)
    return NetworkSummary(title, tuple(input_shape), tuple(rows), str(network.dtype))


def planned_summary(
    layers: Sequence[Layer], input_shape: Shape, title: str, dtype: Any = np.float64
) -> NetworkSummary:
    """The network ``fit`` will build from ``layers`` for samples of ``input_shape``.

    Built here on a copy (with a throwaway generator), so a size that does not
    chain is the same ``ValueError`` ``fit`` would raise. A last ``Dense`` with
    ``n_outputs=None`` is sized from the targets at fit: its row says ``?``.
    """
    shape = tuple(int(size) for size in input_shape)
    specs = ([Reshape(shape)] if len(shape) > 1 else []) + list(layers)
    last = specs[-1]
    open_output = isinstance(last, Dense) and last.n_outputs is None
    flat = (math.prod(shape),)
    network = build_network(
        copy.deepcopy(specs), flat, np.random.default_rng(0), dtype,
        n_outputs=1 if open_output else None,
    )
    rows = _rows(network.layers, flat, open_output)
    return NetworkSummary(title, flat, tuple(rows), str(np.dtype(dtype)), planned=True)


def model_summary(model: Any) -> NetworkSummary:
    """What ``model.summary()`` returns (see :meth:`_NetworkEstimator.summary`).

    Raises
    ------
    NotFittedError
        Before ``fit``, unless ``model`` is a ``NeuralNet`` estimator given an
        ``input_shape`` (its planned network is summarised then).
    """
    name = type(model).__name__
    if getattr(model, "_fitted", False):
        n_features = int(model.n_features_in_)
        summary = summarize(model.network_, (n_features,), name)
        classes = getattr(model, "classes_", None)
        shape = summary.layers[-1].output_shape
        target = (
            f"{len(classes)} classes" if classes is not None
            else f"{math.prod(shape) if shape else '?'} output(s)"
        )
        return dataclasses.replace(summary, title=f"{name}: {n_features} features -> {target}")
    input_shape = getattr(model, "input_shape", None)
    if input_shape is not None and hasattr(model, "_layer_specs"):
        layers = model._layer_specs()
        shape = model._checked_input_shape()
        return planned_summary(layers, shape, f"{name} (not fitted: the network fit will build)",
                               getattr(model, "dtype", None) or np.float64)
    hint = (
        " (or give input_shape to see the network it will build)"
        if hasattr(model, "_layer_specs") else ""
    )
    raise sklearn_compatible(NotFittedError)(
        f"This {name} instance is not fitted yet: its network's sizes come from the data. "
        f"Call 'fit' first{hint}."
    )


def estimator_html(model: Any) -> str:
    """An estimator as Jupyter shows it: its hyperparameters, then its network's table.

    The hyperparameters changed from their defaults are in bold (as in
    scikit-learn's display); the network is :func:`model_summary`'s (or a note
    that the model is not fitted yet). handnet's estimators are not
    scikit-learn's, so this is their own ``_repr_html_``; inside a scikit-learn
    ``Pipeline`` scikit-learn draws its own diagram and names them by ``repr``.
    """
    name = html.escape(type(model).__name__)
    fitted = bool(getattr(model, "_fitted", False))
    defaults = {
        parameter.name: parameter.default
        for parameter in inspect.signature(type(model).__init__).parameters.values()
    }
    rows = []
    for key, value in sorted(model.get_params(deep=False).items()):
        changed = repr(value) != repr(defaults.get(key, value))
        cell = html.escape(repr(value))
        rows.append(
            f"<tr><td>{html.escape(key)}</td><td>{f'<b>{cell}</b>' if changed else cell}</td></tr>"
        )
    try:
        network = model_summary(model).to_html()
    except NotFittedError:
        network = "<p><small>not fitted: the network is built by <code>fit</code></small></p>"
    except (ValueError, TypeError) as error:  # layers that do not chain: fit would say so too
        network = f"<p><small>{html.escape(str(error))}</small></p>"
    return (
        f'<div class="handnet-estimator"><p><b>{name}</b> '
        f"({'fitted' if fitted else 'not fitted'})</p>"
        f"<details><summary>hyperparameters</summary><table>{''.join(rows)}</table></details>"
        f"{network}</div>"
    )
