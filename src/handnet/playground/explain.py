"""The step panel: one training step's arrays, each beside its formula and handnet function.

The ``handnet demo --explain`` trace (:func:`handnet.demo.explain_step`), live and for any
of the playground's networks. The real step is taken by the model (``partial_fit`` on
the batch); :func:`explain_step` then replays it on a copy of the network as it was
before the step, layer by layer through the same handnet functions, and shows that the
replay's gradients are the step's (``max |difference|``, 0 when all is well) and what
the optimizer did with them (the parameters after minus before).

Dropout's mask is the one the real step drew (read from the model's
:class:`~handnet.nn.layers.Dropout` layers), so the replay sees the same network.
"""

from __future__ import annotations

import copy
import inspect
import re
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..demo import _show
from ..nn.activations import get_activation
from ..nn.layers import Activation, Dense, Dropout
from ..nn.losses import Loss
from ..nn.network import Sequential
from ..nn.penalties import add_l2
from ..optim.optimizers import Optimizer

Array = NDArray[np.floating]

ROWS = 4
"""Rows of each array shown (the batch's first rows)."""
COLUMNS = 8


def _entry(name: str, formula: str, function: str, value: Any) -> dict[str, Any]:
    """One line of the panel: the array's head as numbers (for the page and the tests)."""
    array = np.asarray(value, dtype=np.float64)
    head = array
    if array.ndim >= 1:
        head = head[:ROWS]
    if array.ndim >= 2:
        head = head[:, :COLUMNS]
    return {
        "name": name,
        "formula": formula,
        "function": function,
        "shape": list(array.shape),
        "values": np.round(head, 6).tolist(),
        "text": _show(array, ROWS),
    }


_LATEX = [
    (r"\leftarrow", "←"), (r"\theta", "θ"), (r"\eta", "η"), (r"\mu", "μ"), (r"\beta", "β"),
    (r"\varepsilon", "ε"), (r"\epsilon", "ε"), (r"\lambda", "λ"), (r"\rho", "ρ"),
    (r"\alpha", "α"), (r"\odot", "⊙"), (r"\cdot", "·"), (r"\quad", " "), (r"\,", " "),
    (r"\;", " "), ("&", ""), (r"\\", ";"),
]


def _group(text: str, start: int) -> tuple[str, int]:
    """The ``{...}`` group opening at ``text[start]`` (braces balanced) and the index after it."""
    depth = 0
    for index in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[start + 1 : index], index + 1
    return text[start + 1 :], len(text)


def _plain(latex: str) -> str:
    """A docstring's LaTeX as plain text: fractions, roots and hats unfolded, Greek letters."""
    for command, arity in ((r"\frac", 2), (r"\sqrt", 1), (r"\hat", 1)):
        while (at := latex.find(command)) >= 0:
            end = at + len(command)
            parts = []
            for _ in range(arity):
                while end < len(latex) and latex[end] == " ":
                    end += 1
                if end < len(latex) and latex[end] == "{":
                    part, end = _group(latex, end)
                else:
                    part, end = latex[end : end + 1], end + 1
                parts.append(_plain(part))
            shown = {r"\frac": lambda p: f"({p[0]}) / ({p[1]})",
                     r"\sqrt": lambda p: f"√({p[0]})",
                     r"\hat": lambda p: f"{p[0]}\u0302"}[command](parts)
            latex = latex[:at] + shown + latex[end:]
    for command, plain in _LATEX:
        latex = latex.replace(command, plain)
    return latex.replace("{", "").replace("}", "")


def update_rule(optimizer: type[Optimizer]) -> str:
    """The optimizer class's update rule, read from its own docstring (LaTeX made plain).

    A rule of one line in a subclass (AdamW's decay) is followed by its parent's rule
    (the Adam step it comes before).
    """
    doc = inspect.cleandoc(optimizer.__doc__ or optimizer.__name__) + "\n"
    block = re.search(r"\.\. math::\n\n((?:(?: {4,}.*)?\n)+)", doc)
    one_line = re.search(r"\.\. math:: (.+)\n", doc)
    if block:
        text = " ".join(line.strip() for line in block.group(1).splitlines() if line.strip())
    elif one_line:
        text = one_line.group(1)
        parent = optimizer.__mro__[1]
        if parent is not Optimizer and issubclass(parent, Optimizer):
            return f"{_plain_rule(text)} ; then {update_rule(parent)}"
    else:
        inline = re.search(r":math:`([^`]*)`", doc)
        text = inline.group(1) if inline else doc.splitlines()[0]
    return _plain_rule(text)


def _plain_rule(text: str) -> str:
    return " ".join(_plain(text).split()).strip(" ;")


def _function(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def explain_step(
    before: Sequential,
    after: Sequential,
    X: Array,
    Y: Array,
    loss: Loss,
    l2: float,
    optimizer: type[Optimizer],
) -> dict[str, Any]:
    """The arrays of the step that turned ``before`` into ``after`` on the batch ``X, Y``.

    Parameters
    ----------
    before : Sequential
        The network before the step (left unchanged: the replay runs on a copy).
    after : Sequential
        The model's network after the step (its Dropout layers hold the step's masks).
    X, Y : ndarray
        The batch's inputs and encoded targets (what the loss takes).
    loss : Loss
    l2 : float
        The model's ``alpha``.
    optimizer : type
        The model's optimizer class (:data:`handnet.optim.optimizers.OPTIMIZERS`' entry),
        whose docstring gives the update rule.

    Returns
    -------
    dict
        ``entries`` (name, formula, function, shape, values, text per array),
        ``loss`` and ``gradient_difference`` (replay vs step, max absolute).
    """
    net = copy.deepcopy(before)
    entries, logits, taken, k = _forward(net, after, X)
    value, dlogits = loss(logits, Y)
    entries.append(_entry("output", f"{loss.name}'s link of z{k}", _function(type(loss).link),
                          loss.link(logits)))
    entries.append(_entry("Y", "the batch's targets, encoded", "the model's target encoding", Y))
    entries.append(_entry("dlogits", f"dL/dz{k} = (link(z{k}) - Y) / m",
                          _function(type(loss).__call__), dlogits))
    entries += _backward(taken, dlogits)
    penalty = add_l2(net.weights, net.weight_gradients, l2)
    entries += _gradients_and_updates(net, before, after, l2, optimizer)
    difference = float(np.max(np.abs(net.flat_gradients - after.flat_gradients)))
    return {
        "entries": entries,
        "loss": float(value) + penalty,
        "data_loss": float(value),
        "penalty": penalty,
        "gradient_difference": difference,
        "rule": update_rule(optimizer),
        "optimizer": optimizer.__name__,
    }


_Taken = list[tuple[str, Any, int]]


def _forward(
    net: Sequential, after: Sequential, X: Array
) -> tuple[list[dict[str, Any]], Array, _Taken, int]:
    """The forward pass on ``net`` (a copy), each layer's output an entry.

    Dropout layers take the masks the real step drew (``after``'s). Returns the
    entries, the logits, the layers taken (kind, layer, dense index) and the
    number of dense layers.
    """
    entries = [_entry("X", "the batch's inputs (one row per example)", "handnet.playground.data."
                      "features", X)]
    a: Array = X
    k = 0
    taken: _Taken = []
    for position, layer in enumerate(net.layers):
        if isinstance(layer, Dense):
            k += 1
            a = layer.forward(a, training=True)
            entries.append(_entry(f"z{k}", f"z{k} = a{k - 1} W{k} + b{k}" if k > 1 else
                                  "z1 = X W1 + b1", _function(Dense.forward), a))
            taken.append(("dense", layer, k))
        elif isinstance(layer, Activation):
            a = layer.forward(a, training=True)
            function = get_activation(layer.name).forward
            entries.append(_entry(f"a{k}", f"a{k} = {layer.name}(z{k})", _function(function), a))
            taken.append(("activation", layer, k))
        elif isinstance(layer, Dropout):
            real = after.layers[position]
            assert isinstance(real, Dropout)
            layer.mask = real.mask  # the mask the real step drew
            a = a if layer.mask is None else a * layer.mask
            entries.append(_entry(f"a{k}'", f"a{k}' = a{k} ⊙ mask / (1 - {layer.rate:g})",
                                  _function(Dropout.forward), a))
            taken.append(("dropout", layer, k))
        else:  # pragma: no cover - the playground builds only these layers
            a = layer.forward(a, training=True)
    return entries, a, taken, k


def _backward(taken: _Taken, dlogits: Array) -> list[dict[str, Any]]:
    """Backpropagation through the layers taken, each activation's ``dL/dz`` an entry."""
    entries = []
    grad: Array | None = dlogits
    for kind, layer, index in reversed(taken):
        assert grad is not None
        grad = layer.backward(grad, need_input_gradient=index > 1 or kind != "dense")
        if kind == "activation":
            backward = get_activation(layer.name).backward
            entries.append(_entry(f"dL/dz{index}", f"dL/dz{index} = dL/da{index} ⊙ "
                                  f"{layer.name}'(z{index})", _function(backward), grad))
    return entries


def _gradients_and_updates(
    net: Sequential, before: Sequential, after: Sequential, l2: float,
    optimizer: type[Optimizer],
) -> list[dict[str, Any]]:
    """Each dense layer's gradients (replayed in ``net``) and the update the real step made."""
    entries = []
    denses = [layer for layer in net.layers if isinstance(layer, Dense)]
    real_denses = [layer for layer in after.layers if isinstance(layer, Dense)]
    old_denses = [layer for layer in before.layers if isinstance(layer, Dense)]
    step_function = f"{optimizer.__module__}.{optimizer.__name__}.step"
    for index, (mine, real, old) in enumerate(zip(denses, real_denses, old_denses, strict=True),
                                              start=1):
        below = "X" if index == 1 else f"a{index - 1}"
        extra = f" + {l2:g} W{index}" if l2 else ""
        entries.append(_entry(f"dW{index}", f"dL/dW{index} = {below}ᵀ dL/dz{index}{extra}",
                              _function(Dense.backward) + (" + handnet.nn.penalties.add_l2"
                                                           if l2 else ""), mine.grad_weights))
        entries.append(_entry(f"db{index}", f"dL/db{index} = Σ_rows dL/dz{index}",
                              _function(Dense.backward), mine.grad_bias))
        entries.append(_entry(f"ΔW{index}", f"W{index} ← W{index} + ΔW{index} "
                              f"({optimizer.__name__}'s rule, g = dW{index})",
                              step_function, real.weights - old.weights))
        entries.append(_entry(f"Δb{index}", f"b{index} ← b{index} + Δb{index}", step_function,
                              real.bias - old.bias))
    return entries
