"""A sequential network: layers applied one after the other.

Backpropagation is the chain rule applied layer by layer, from the loss back to
the input: each layer's ``backward`` turns the gradient with respect to its
output into the gradient with respect to its input (and of its parameters).

All parameters live in one contiguous vector, :attr:`Sequential.flat_parameters`,
and all gradients in another, :attr:`Sequential.flat_gradients`; each layer's
arrays are views into them. Penalised weights come first, biases after, so the
weights are the slice ``flat_parameters[:n_penalized]``. One flat vector lets an
optimizer update every parameter in a handful of NumPy calls, L-BFGS see the
network as a function of one vector, and a model file store one array.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from .layers import Dense, Layer, Shape

Array = NDArray[np.floating]


def execution_order(layers: Sequence[Layer]) -> list[Layer]:
    r"""The layers in the order :class:`Sequential` runs them: as given, except that an
    activation directly followed by a max pooling runs after the pooling, when its
    function commutes with a maximum (``relu``; see
    :class:`~handnet.nn.activations.ActivationPair`).

    For such an :math:`f`, each pooled value is the same number either way,

    .. math::

        \max_{(i, j) \in W} f(Z_{ij}) = f\Big(\max_{(i, j) \in W} Z_{ij}\Big)
        \quad \text{for each window } W,

    and so is each input gradient: where :math:`f'` is not 0 the first maximum of
    :math:`f(Z)` is the first maximum of :math:`Z`, and where it is 0 both orders send
    0. Run second, :math:`f` and its derivative touch :math:`k_h k_w` times fewer values
    (LeNet's ReLUs: 4 times fewer). Each layer still sees the shapes it expects: an
    elementwise activation takes any shape.
    """
    order = list(layers)
    position = 0
    while position + 1 < len(order):
        below, above = order[position], order[position + 1]
        if below.commutes_with_max and above.takes_maximum:
            order[position], order[position + 1] = above, below
            position += 2
        else:
            position += 1
    return order


class Sequential:
    """A stack of layers trained as one function.

    Parameters
    ----------
    layers : sequence of Layer
        Applied in order. ``Dense`` layers must agree on sizes
        (``layers[i].n_outputs == layers[j].n_inputs`` for consecutive dense layers).

    Examples
    --------
    >>> from handnet import Sequential, Dense, Activation
    >>> net = Sequential([Dense(2, 8, random_state=0), Activation("tanh"), Dense(8, 1)])
    >>> net.forward(np.zeros((5, 2))).shape
    (5, 1)
    """

    def __init__(self, layers: Sequence[Layer]) -> None:
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("Sequential needs at least one layer")
        for layer in self.layers:
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential takes Layer objects, got {type(layer).__name__}")
            if not layer.is_built():
                raise ValueError(
                    f"{layer!r} does not know its sizes yet; give them, or let "
                    "build_network(layers, input_shape) read them from the layers below"
                )
        dense = [layer for layer in self.layers if isinstance(layer, Dense)]
        for below, above in itertools.pairwise(dense):
            if below.n_outputs != above.n_inputs:
                raise ValueError(
                    f"layer sizes do not chain: {below!r} outputs {below.n_outputs} "
                    f"features but {above!r} expects {above.n_inputs}"
                )
        dtypes = {p.dtype for layer in self.layers for p in layer.parameters()}
        if len(dtypes) > 1:
            raise ValueError(f"all layers must share one dtype, got {sorted(map(str, dtypes))}")
        self.dtype = dtypes.pop() if dtypes else np.dtype(np.float64)
        self._flatten()

    def _flatten(self) -> None:
        """Move every parameter into one flat vector (weights first) and bind views."""
        slots = [
            (layer, index, penalized)
            for layer in self.layers
            for index, penalized in enumerate(layer.penalized)
        ]
        order = [s for s in slots if s[2]] + [s for s in slots if not s[2]]
        sizes = [layer.parameters()[index].size for layer, index, _ in order]
        self.n_penalized = sum(size for (_, _, pen), size in zip(order, sizes, strict=True) if pen)
        self.flat_parameters: Array = np.zeros(sum(sizes), dtype=self.dtype)
        self.flat_gradients: Array = np.zeros(sum(sizes), dtype=self.dtype)
        views: dict[tuple[int, int], tuple[Array, Array]] = {}
        offset = 0
        for (layer, index, _), size in zip(order, sizes, strict=True):
            shape = layer.parameters()[index].shape
            views[(id(layer), index)] = (
                self.flat_parameters[offset : offset + size].reshape(shape),
                self.flat_gradients[offset : offset + size].reshape(shape),
            )
            offset += size
        self._order = execution_order(self.layers)
        # Where backward stops (computed once, not on every step).
        self._lowest_trained = next(
            (position for position, layer in enumerate(self._order) if layer.parameters()),
            len(self._order),
        )
        for layer in self.layers:
            n = len(layer.penalized)
            if n:
                pairs = [views[(id(layer), i)] for i in range(n)]
                layer.bind([p for p, _ in pairs], [g for _, g in pairs])

    def __getstate__(self) -> dict[str, Any]:
        """What pickle and ``copy.deepcopy`` keep: the layers (and their values), not the views.

        Pickle stores a view as an array of its own, so the flat vectors would be
        stored twice and, restored, no longer shared with the layers' arrays.
        They are rebuilt from the layers instead (:meth:`__setstate__`).
        """
        state = self.__dict__.copy()
        del state["flat_parameters"], state["flat_gradients"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild the flat vectors from the layers' values and bind the views again.

        Without this, a restored network's layers would read arrays that the
        optimizer (which updates :attr:`flat_parameters`) never touches: a
        pickled, deep-copied or joblib-loaded model would stop learning.
        """
        self.__dict__.update(state)
        self._flatten()

    # --- the forward and backward passes -------------------------------------------------

    def forward(self, X: Array, training: bool = False) -> Array:
        """Apply every layer in turn (in :func:`execution_order`); ``training`` switches
        dropout on.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)

        Returns
        -------
        logits : ndarray of shape (n_samples, n_outputs)
        """
        for layer in self._order:
            X = layer.forward(X, training)
        return X

    @contextmanager
    def reusing_buffers(self) -> Iterator[None]:
        """Within this block, training-mode passes reuse buffers from step to step.

        The training loop runs in it: each layer then writes its outputs and
        input gradients into arrays allocated once per batch size instead of new
        ones every step. The price is that a training-mode ``forward`` overwrites
        what the previous one returned, which is why it is not the default.
        """
        previous = [layer.reuse_buffers for layer in self.layers]
        for layer in self.layers:
            layer.reuse_buffers = True
        try:
            yield
        finally:
            for layer, flag in zip(self.layers, previous, strict=True):
                layer.reuse_buffers = flag

    def backward(self, dlogits: Array) -> None:
        """Backpropagate ``dL/dlogits`` through the layers, filling the gradients.

        Only down to the lowest layer with parameters: no gradient is wanted with
        respect to the data, so that layer's input gradient is not computed, and
        the layers below it (a ``Reshape``, say) are not visited at all. (They
        change nothing in backward: running statistics move in ``forward``.)
        """
        grad: Array | None = dlogits
        lowest, order = self._lowest_trained, self._order
        for position in range(len(order) - 1, lowest - 1, -1):
            assert grad is not None
            grad = order[position].backward(grad, need_input_gradient=position > lowest)

    def predict(self, X: Array) -> Array:
        """The logits in evaluation mode (no dropout), leaving the network as it was.

        Unlike :meth:`forward`, nothing is kept for a backward pass: predicting
        does not change the model (nor drop what a training step keeps).
        """
        for layer in self._order:
            X = layer.predict(X)
        return X

    # --- parameters ----------------------------------------------------------------------

    def parameters(self) -> list[Array]:
        """Every trainable array, layer by layer (views of :attr:`flat_parameters`)."""
        return [p for layer in self.layers for p in layer.parameters()]

    def buffers(self) -> list[dict[str, Array]]:
        """Each layer's non-trained saved state (:meth:`Layer.buffers`), layer by layer."""
        return [layer.buffers() for layer in self.layers]

    def buffer_vector(self) -> Array | None:
        """A copy of every layer's :meth:`buffers` as one flat vector; ``None`` if there are none.

        Layer by layer, each layer's buffers in the order of their names: what
        :meth:`load_buffer_vector` reads back. Early stopping keeps the best epoch's
        running statistics this way, next to its parameters.
        """
        pieces = [layer[name].ravel() for layer in self.buffers() for name in sorted(layer)]
        if not pieces:
            return None
        return np.concatenate(pieces).astype(self.dtype, copy=False)

    @property
    def n_buffer_values(self) -> int:
        """The length of :meth:`buffer_vector` (0 for a network without buffers)."""
        return sum(buffer.size for layer in self.buffers() for buffer in layer.values())

    def load_buffer_vector(self, vector: Array) -> None:
        """Copy a :meth:`buffer_vector` back into the layers (each checks its own, as on load)."""
        for layer, values in zip(self.layers, self._split_buffer_vector(vector), strict=True):
            if values:
                layer.load_buffers(values)

    def check_buffer_vector(self, vector: Array) -> None:
        """Raise ``ValueError`` unless :meth:`load_buffer_vector` would take ``vector``.

        Each layer's checks run on a copy of it (a file's best-epoch statistics are
        checked when it is loaded, not when training ends and restores them).
        """
        for i, (layer, values) in enumerate(
            zip(self.layers, self._split_buffer_vector(vector), strict=True)
        ):
            if values:
                try:
                    copy.deepcopy(layer).load_buffers(values)
                except ValueError as error:
                    raise ValueError(f"layer {i}: {error}") from None

    def _split_buffer_vector(self, vector: Array) -> list[dict[str, Array]]:
        """``vector`` cut into each layer's buffers by name (the order of :meth:`buffer_vector`)."""
        if vector.shape != (self.n_buffer_values,):
            raise ValueError(
                f"the buffers hold {self.n_buffer_values} values, got a vector of shape "
                f"{vector.shape}"
            )
        start = 0
        split = []
        for layer in self.layers:
            values = {}
            for name, buffer in sorted(layer.buffers().items()):
                piece = vector[start : start + buffer.size].reshape(buffer.shape)
                values[name] = piece.astype(buffer.dtype, copy=False)
                start += buffer.size
            split.append(values)
        return split

    def gradients(self) -> list[Array]:
        """The gradient of each of :meth:`parameters`, same order."""
        return [g for layer in self.layers for g in layer.gradients()]

    @property
    def weights(self) -> Array:
        """The penalisable weights (no biases), as one flat view."""
        return self.flat_parameters[: self.n_penalized]

    @property
    def weight_gradients(self) -> Array:
        """The gradients of :attr:`weights`, as one flat view."""
        return self.flat_gradients[: self.n_penalized]

    @property
    def n_parameters(self) -> int:
        return int(self.flat_parameters.size)

    def set_random_state(self, rng: np.random.Generator) -> None:
        """Make every layer that draws random numbers (dropout) draw them from ``rng``."""
        for layer in self.layers:
            layer.set_random_state(rng)

    def draws_random_numbers(self, training: bool = True) -> bool:
        """Whether a pass in this mode draws random numbers (dropout's masks)."""
        return any(layer.draws_random_numbers(training) for layer in self.layers)

    def astype(self, dtype: DTypeLike) -> Sequential:
        """A copy of the network computing in ``dtype`` (parameters and buffers converted).

        Finite-difference checks run a float32 network's copy in float64, say.
        Each layer is rebuilt from its :meth:`Layer.config`, so any registered layer
        (or one with ``from_config``) can be copied.
        """
        layers = [type(layer).from_config(layer.config(), dtype) for layer in self.layers]
        copied = Sequential(layers)
        copied.flat_parameters[...] = self.flat_parameters
        for source, target in zip(self.layers, copied.layers, strict=True):
            own = target.buffers()
            target.load_buffers(
                {name: value.astype(own[name].dtype) for name, value in source.buffers().items()}
            )
        return copied

    def config(self) -> list[dict[str, object]]:
        """JSON-serialisable description of the layers."""
        return [layer.config() for layer in self.layers]

    def __repr__(self) -> str:
        inner = ",\n    ".join(repr(layer) for layer in self.layers)
        return f"Sequential([\n    {inner},\n])"


def build_network(
    layers: Sequence[Layer],
    input_shape: Shape,
    rng: np.random.Generator,
    dtype: DTypeLike = np.float64,
    n_outputs: int | None = None,
) -> Sequential:
    """A freshly initialised network from copies of ``layers`` (which are left untouched).

    Each layer is built (:meth:`Layer.build`) for the per-sample shape the layers
    before it give, so sizes written as ``None`` are filled in and every parameter
    is drawn from ``rng``.

    Parameters
    ----------
    layers : sequence of Layer
        The layers, as specifications: copied, never modified.
    input_shape : tuple of int
        Per-sample shape of the input, e.g. ``(n_features,)`` or ``(1, 28, 28)``.
    rng : numpy.random.Generator
        Source of the initial parameters and of dropout's masks.
    dtype : float32 or float64
    n_outputs : int, optional
        The size the network's output must have: a last ``Dense`` with
        ``n_outputs=None`` gets it (an estimator sizes its output from the targets).

    Raises
    ------
    ValueError
        If a layer cannot take what the layer before gives, or the output has
        another size than ``n_outputs``; the message names the layer.
    """
    built: list[Layer] = []
    shape: Shape = tuple(int(size) for size in input_shape)
    last = len(layers) - 1
    for position, spec in enumerate(layers):
        if not isinstance(spec, Layer):
            raise TypeError(
                f"layers[{position}] must be a handnet Layer, got {type(spec).__name__}"
            )
        layer = copy.deepcopy(spec)
        if (
            position == last
            and n_outputs is not None
            and isinstance(layer, Dense)
            and layer.n_outputs is None
        ):
            layer.n_outputs = n_outputs
        try:
            layer.build(shape, rng, dtype)
            shape = layer.output_shape(shape)
        except ValueError as error:
            before = ("take inputs of per-sample shape" if position == 0
                      else "follow a layer giving per-sample shape")
            message = f"layers[{position}] {spec!r} cannot {before} {shape}: {error}"
            raise ValueError(message) from None
        built.append(layer)
    if n_outputs is not None and shape != (n_outputs,):
        raise ValueError(
            f"the last layer gives per-sample shape {shape}, but the targets need "
            f"{n_outputs} output(s); end the layers with Dense(None, {n_outputs}) (or "
            "Dense(None, None), sized from the targets)"
        )
    return Sequential(built)
