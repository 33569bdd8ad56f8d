r"""Residual blocks: :math:`\text{out} = x + f(x)` around a sequence of layers.

A :class:`Residual` is one layer of a :class:`~handnet.nn.network.Sequential` that
holds a small stack of sub-layers :math:`f = f_k \circ \dots \circ f_1`. The
skip connection adds the input to their output, so :math:`f` must give its input's
shape back.

Backward: the chain rule through a sum. With :math:`G = \partial L/\partial
\text{out}` (``dout``),

.. math:: \frac{\partial L}{\partial x} = G + J_f(x)^\top G,

the identity path's gradient plus what backpropagating :math:`G` through the
sub-layers gives (which also fills their parameters' gradients).

To the network the block is one layer whose :meth:`~Residual.parameters`,
:meth:`~Residual.gradients` and :attr:`~Residual.penalized` are its sub-layers',
concatenated in order; :meth:`~Residual.bind` hands each sub-layer its share of
the flat vector's views. Sub-layers' :meth:`~Residual.buffers` are exposed as
``"<index>.<name>"`` (``"1.running_mean"``), so model files save and restore them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import DTypeLike, NDArray

from .layers import LAYERS, Layer, Shape, check_layer_configs

Array = NDArray[np.floating]

#: The most sub-layers a saved block may hold (as the ``"layers"`` kind checks).
MAX_SUB_LAYERS = 100


class Residual(Layer):
    """``out = x + f(x)``, ``f`` the given layers applied in order.

    Parameters
    ----------
    layers : sequence of Layer
        The residual branch: 1 to 100 distinct layer objects, whose output has
        the shape of their input (checked when the block is built, when a model
        file is checked, and on every forward pass).

    Examples
    --------
    >>> from handnet import Activation, Dense, Sequential
    >>> block = Residual([Dense(4, 4, random_state=0), Activation("tanh")])
    >>> Sequential([block, Dense(4, 1)]).forward(np.zeros((3, 4))).shape
    (3, 1)
    """

    config_fields: ClassVar[dict[str, str]] = {"layers": "layers"}
    _forward_cache = ("_input_shape",)
    _reuse_buffers = False

    def __init__(self, layers: Sequence[Layer]) -> None:
        if isinstance(layers, Layer) or not isinstance(layers, Sequence):
            raise TypeError("Residual takes a sequence of layers, e.g. Residual([Dense(4, 4)])")
        self.layers: list[Layer] = list(layers)
        if not 1 <= len(self.layers) <= MAX_SUB_LAYERS:
            raise ValueError(f"Residual needs 1 to {MAX_SUB_LAYERS} layers, got {len(self.layers)}")
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise TypeError(
                    f"Residual takes Layer objects, got {type(layer).__name__} at position {i}"
                )
        if len({id(layer) for layer in self.layers}) != len(self.layers):
            raise ValueError(
                "Residual's layers must be distinct objects (one layer twice would share "
                "its parameters and its forward cache)"
            )
        self._input_shape: Shape | None = None

    # --- what the network sees: the sub-layers' parameters, in order ----------------------

    @property
    def penalized(self) -> tuple[bool, ...]:
        """The sub-layers' ``penalized`` flags, concatenated (aligned with :meth:`parameters`)."""
        return tuple(flag for layer in self.layers for flag in layer.penalized)

    @penalized.setter
    def penalized(self, value: tuple[bool, ...]) -> None:
        raise AttributeError("a Residual block's penalized flags are its sub-layers'")

    @property
    def reuse_buffers(self) -> bool:
        """Set on the block, set on every sub-layer (see :meth:`Sequential.reusing_buffers`)."""
        return self._reuse_buffers

    @reuse_buffers.setter
    def reuse_buffers(self, value: bool) -> None:
        self._reuse_buffers = bool(value)
        for layer in self.layers:
            layer.reuse_buffers = bool(value)

    def parameters(self) -> list[Array]:
        return [p for layer in self.layers for p in layer.parameters()]

    def gradients(self) -> list[Array]:
        return [g for layer in self.layers for g in layer.gradients()]

    def bind(self, parameters: list[Array], gradients: list[Array]) -> None:
        """Give each sub-layer its slice of ``parameters`` and ``gradients`` (in order)."""
        total = len(self.penalized)
        if len(parameters) != total or len(gradients) != total:
            raise ValueError(
                f"Residual holds {total} parameter arrays, got {len(parameters)} arrays and "
                f"{len(gradients)} gradients to bind"
            )
        start = 0
        for layer in self.layers:
            n = len(layer.penalized)
            if n:
                layer.bind(parameters[start : start + n], gradients[start : start + n])
            start += n

    def sublayers(self) -> list[Layer]:
        return list(self.layers)

    def buffers(self) -> dict[str, Array]:
        """Every sub-layer's buffers, named ``"<sub-layer index>.<its name>"``."""
        return {
            f"{i}.{name}": value
            for i, layer in enumerate(self.layers)
            for name, value in layer.buffers().items()
        }

    def load_buffers(self, values: Mapping[str, Array]) -> None:
        """Hand each sub-layer its own (prefixed) buffers, which it checks and copies.

        Raises
        ------
        ValueError
            If the names differ from :meth:`buffers`', or a sub-layer refuses its values.
        """
        own = self.buffers()
        if set(values) != set(own):
            raise ValueError(f"Residual keeps the buffers {sorted(own)}, got {sorted(values)}")
        routed: list[dict[str, Array]] = [{} for _ in self.layers]
        for name, value in values.items():
            index, _, inner = name.partition(".")
            routed[int(index)][inner] = value
        for i, (layer, saved) in enumerate(zip(self.layers, routed, strict=True)):
            if saved or layer.buffers():
                try:
                    layer.load_buffers(saved)
                except ValueError as error:
                    raise ValueError(f"Residual sub-layer {i}: {error}") from None

    # --- building ------------------------------------------------------------------------

    def is_built(self) -> bool:
        return all(layer.is_built() for layer in self.layers)

    def build(self, input_shape: Shape, rng: np.random.Generator, dtype: DTypeLike) -> None:
        """Build the sub-layers in turn from ``input_shape``; their output must have that shape."""
        shape: Shape = tuple(int(size) for size in input_shape)
        for i, layer in enumerate(self.layers):
            try:
                layer.build(shape, rng, dtype)
                shape = layer.output_shape(shape)
            except ValueError as error:
                raise ValueError(f"Residual sub-layer {i} {layer!r}: {error}") from None
        self._check_same(tuple(input_shape), shape)

    def output_shape(self, input_shape: Shape) -> Shape:
        shape: Shape = tuple(input_shape)
        for i, layer in enumerate(self.layers):
            try:
                shape = layer.output_shape(shape)
            except ValueError as error:
                raise ValueError(f"Residual sub-layer {i} {layer!r}: {error}") from None
        self._check_same(tuple(input_shape), shape)
        return tuple(input_shape)

    @staticmethod
    def _check_same(input_shape: Shape, output_shape: Shape) -> None:
        if tuple(output_shape) != tuple(input_shape):
            raise ValueError(
                f"a Residual block's layers must give back their input's per-sample shape "
                f"{tuple(input_shape)} (out = x + f(x)), but they give {tuple(output_shape)}"
            )

    def set_random_state(self, rng: np.random.Generator) -> None:
        for layer in self.layers:
            layer.set_random_state(rng)

    def draws_random_numbers(self, training: bool) -> bool:
        return any(layer.draws_random_numbers(training) for layer in self.layers)

    # --- forward and backward ------------------------------------------------------------

    def forward(self, X: Array, training: bool = False) -> Array:
        h = X
        for layer in self.layers:
            h = layer.forward(h, training)
        self._check_same(X.shape[1:], h.shape[1:])
        self._input_shape = X.shape
        if training and self._reuse_buffers:
            return np.add(X, h, out=self._workspace("out", X.shape, np.result_type(X, h)))
        return X + h

    def predict(self, X: Array) -> Array:
        """``X + f(X)`` in evaluation mode, every sub-layer's forward cache left as it was."""
        h = X
        for layer in self.layers:
            h = layer.predict(h)
        self._check_same(X.shape[1:], h.shape[1:])
        return X + h

    def backward(self, dout: Array, need_input_gradient: bool = True) -> Array | None:
        if self._input_shape is None:
            raise RuntimeError("Residual.backward called before forward")
        grad: Array | None = dout
        for position in range(len(self.layers) - 1, -1, -1):
            assert grad is not None
            grad = self.layers[position].backward(
                grad, need_input_gradient=need_input_gradient or position > 0
            )
        if not need_input_gradient:
            return None
        if grad is None:
            raise RuntimeError(f"{self.layers[0]!r}.backward returned no input gradient")
        return dout + grad

    # --- saving --------------------------------------------------------------------------

    def config(self) -> dict[str, object]:
        return {"type": "Residual", "layers": [layer.config() for layer in self.layers]}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], dtype: DTypeLike = np.float64) -> Residual:
        return cls([LAYERS[entry["type"]].from_config(entry, dtype) for entry in config["layers"]])

    @classmethod
    def buffer_shapes(cls, config: Mapping[str, Any]) -> dict[str, Shape] | None:
        """The sub-layers' buffer shapes, prefixed like :meth:`buffers` (``None``: one is
        not declared)."""
        shapes: dict[str, Shape] = {}
        for i, sub in enumerate(config["layers"]):
            declared = LAYERS[sub["type"]].buffer_shapes(sub)
            if declared is None:
                return None
            shapes.update({f"{i}.{name}": shape for name, shape in declared.items()})
        return shapes

    @classmethod
    def chain(
        cls, config: Mapping[str, Any], input_shape: Shape | None
    ) -> tuple[Shape | None, int]:
        """The sub-layers chained from ``input_shape``; their parameters counted.

        With ``input_shape`` unknown the output is the sub-layers' (which must then be
        the input's shape too), when they tell it.
        """
        shape, n_parameters = check_layer_configs(
            config["layers"], input_shape, "sub-layer", max_layers=MAX_SUB_LAYERS
        )
        if input_shape is None:
            return shape, n_parameters
        if shape is not None:
            cls._check_same(tuple(input_shape), shape)
        return tuple(input_shape), n_parameters

    def __repr__(self) -> str:
        return f"Residual([{', '.join(repr(layer) for layer in self.layers)}])"


LAYERS.register("Residual", Residual)
