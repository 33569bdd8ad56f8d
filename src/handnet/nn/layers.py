"""Layers: each one's forward pass sits next to its backward pass.

A layer maps an input batch ``X`` of shape ``(n_samples, *input_shape)`` to an
output of shape ``(n_samples, *output_shape)``: ``(n_samples, n_features)`` for
dense layers, ``(n_samples, channels, height, width)`` for images. A layer's
*shape* is always per sample (the batch axis left out). ``forward`` keeps what
``backward`` needs;
``backward(dout)`` takes :math:`\\partial L / \\partial\\,\\text{out}` and

* writes the gradients of the layer's parameters into ``layer.gradients()``
  (overwriting them: calling ``backward`` twice gives the same gradients, it
  never accumulates), and
* returns :math:`\\partial L / \\partial X`, the ``dout`` of the layer below.

A layer may be written before its input size is known (``Dense(None, 10)``, the
``None`` read from the layer below): :meth:`Layer.build` completes it for a given
input shape and draws its initial parameters, which is how an estimator turns a
list of layers into a network (:func:`handnet.nn.network.build_network`).

Each entry of a layer's saved :meth:`Layer.config` has a *kind* (``"size"``,
``"rate"``, ...) from :data:`FIELD_KINDS`, against which model files check it
before anything is built; a new layer with a new kind of setting registers it
there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar

import numpy as np
from numpy.typing import DTypeLike, NDArray

from ..registry import Registry
from .activations import ACTIVATIONS, dense_kernels, get_activation
from .initializers import Initializer, get_initializer

Array = NDArray[np.floating]
Shape = tuple[int, ...]

#: The largest size a model file's layer may declare (features, channels, kernel).
MAX_SIZE = 1 << 31


# --- the kinds of a layer's saved settings ------------------------------------------------


def _is_int(value: Any, low: int, high: int = MAX_SIZE) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _size(value: Any) -> str | None:
    """An integer size (features, channels, units) from 1 to ``MAX_SIZE``."""
    if _is_int(value, 1):
        return None
    return f"must be an integer from 1 to {MAX_SIZE}, got {value!r}"


def _sizes(value: Any) -> str | None:
    """A list of sizes, one per spatial axis (kernel, stride, dilation)."""
    if isinstance(value, list) and 1 <= len(value) <= 3 and all(_is_int(v, 1) for v in value):
        return None
    return f"must be a list of 1 to 3 integers from 1 to {MAX_SIZE}, got {value!r}"


def _shape(value: Any) -> str | None:
    """A per-sample shape (a list of 1 to 3 sizes)."""
    return _sizes(value)


def _padding(value: Any) -> str | None:
    """Zero padding per spatial axis: ``"same"``, ``"valid"`` or a list of counts >= 0."""
    if value in ("same", "valid"):
        return None
    if isinstance(value, list) and 1 <= len(value) <= 3 and all(_is_int(v, 0) for v in value):
        return None
    return f"must be 'same', 'valid' or a list of 1 to 3 integers >= 0, got {value!r}"


def _rate(value: Any) -> str | None:
    """A probability in [0, 1) (dropout's rate)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1:
        return None
    return f"must be in [0, 1), got {value!r}"


def _fraction(value: Any) -> str | None:
    """A number in (0, 1] (a running average's momentum)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1:
        return None
    return f"must be in (0, 1], got {value!r}"


def _positive(value: Any) -> str | None:
    """A finite number > 0 (a normaliser's epsilon)."""
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    ):
        return None
    return f"must be a finite number > 0, got {value!r}"


def _flag(value: Any) -> str | None:
    """``true`` or ``false``."""
    return None if isinstance(value, bool) else f"must be true or false, got {value!r}"


def _activation(value: Any) -> str | None:
    """The name of a registered activation (:data:`handnet.nn.activations.ACTIVATIONS`)."""
    if isinstance(value, str) and value in ACTIVATIONS:
        return None
    return f"{value!r} is not a registered activation"


def _layers(value: Any) -> str | None:
    """A list of layer configs (a block's sub-layers), each checked like a network's."""
    try:
        check_layer_configs(value, None, "sub-layer", max_layers=100)
    except ValueError as error:
        return f"holds a bad layer: {error}"
    return None


FIELD_KINDS: Registry[Callable[[Any], str | None]] = Registry(
    "layer setting kind",
    [
        ("size", _size),
        ("sizes", _sizes),
        ("shape", _shape),
        ("padding", _padding),
        ("rate", _rate),
        ("fraction", _fraction),
        ("positive", _positive),
        ("flag", _flag),
        ("activation", _activation),
        ("layers", _layers),
    ],
)
"""How each kind of saved layer setting is checked: kind -> check(value) -> problem or None.

A model file's layer configs are checked against their class's
:attr:`Layer.config_fields` with these before any layer is built. The values are
JSON: lists, not tuples.
"""


class Layer:
    """Base class of all layers."""

    #: Whether each of :meth:`parameters` is a weight that an L2 penalty applies to
    #: (biases are never penalised).
    penalized: tuple[bool, ...] = ()

    #: Whether training-mode passes may write into buffers reused from one call to
    #: the next (see :meth:`Sequential.reusing_buffers`). Off by default, so that
    #: every array a layer returns is the caller's to keep.
    reuse_buffers: bool = False

    #: The entries of :meth:`config` besides ``"type"``, each with its kind in
    #: :data:`FIELD_KINDS`, against which a model file's layers are checked before
    #: anything is built: ``"size"`` (an integer >= 1), ``"activation"`` (a registered
    #: activation's name), ``"rate"`` (a number in [0, 1)), ``"sizes"``, ``"padding"``...
    config_fields: ClassVar[dict[str, str]] = {}

    #: The attributes in which :meth:`forward` keeps what :meth:`backward` needs (the
    #: batch's inputs, outputs or mask). They are dropped when the layer is pickled
    #: (a saved model holds no training rows) and untouched by :meth:`predict`.
    _forward_cache: tuple[str, ...] = ()

    #: Whether each output is the maximum of some inputs, its gradient going to the first
    #: of them (``MaxPool2D``): an activation just below that commutes with a maximum may
    #: then run after this layer instead (:func:`handnet.nn.network.execution_order`).
    takes_maximum: ClassVar[bool] = False

    #: Whether this layer may run after a following ``takes_maximum`` layer for the same
    #: numbers (an :class:`Activation` whose function commutes with a maximum).
    commutes_with_max: bool = False

    def forward(self, X: Array, training: bool = False) -> Array:
        raise NotImplementedError

    def backward(self, dout: Array, need_input_gradient: bool = True) -> Array | None:
        raise NotImplementedError

    def predict(self, X: Array) -> Array:
        """The evaluation-mode output, keeping nothing for :meth:`backward`.

        The layer's forward caches are left as they were, so predicting between
        two training steps (or from another thread) changes nothing.
        """
        kept = {name: self.__dict__[name] for name in self._forward_cache if name in self.__dict__}
        try:
            return self.forward(X, training=False)
        finally:
            self.__dict__.update(kept)

    def __getstate__(self) -> dict[str, Any]:
        """What pickle and ``copy.deepcopy`` keep: no forward caches, no work buffers."""
        state = self.__dict__.copy()
        state.pop("_buffers", None)
        for name in self._forward_cache:
            if name in state:
                state[name] = None
        return state

    def parameters(self) -> list[Array]:
        """The layer's trainable arrays (updated in place by the optimizers)."""
        return []

    def _workspace(self, name: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Array:
        """A buffer kept from one training step to the next (one per name and batch size).

        Writing a step's outputs into buffers allocated once, rather than into
        fresh arrays, saves the allocator and the page faults on every step.
        Only training-mode passes with :attr:`reuse_buffers` on use them.
        """
        buffers: dict[tuple[str, tuple[int, ...]], Array] = self.__dict__.setdefault(
            "_buffers", {}
        )
        key = (name, shape)
        buffer = buffers.get(key)
        if buffer is None or buffer.dtype != dtype:
            buffer = buffers[key] = np.empty(shape, dtype=dtype)
        return buffer

    def gradients(self) -> list[Array]:
        """The gradients of the loss with respect to :meth:`parameters`, same order."""
        return []

    def buffers(self) -> dict[str, Array]:
        """State that is not trained by gradients but saved with the model, by name.

        Running statistics, say (a normalisation layer's running mean and variance):
        the layer updates them itself (in a training-mode :meth:`forward`), and model
        files store and restore them. Their shapes follow from :meth:`config`.
        """
        return {}

    @classmethod
    def buffer_shapes(cls, config: Mapping[str, Any]) -> dict[str, Shape] | None:
        """The shapes of :meth:`buffers` for the configured layer, from the config alone.

        A model file's buffers are compared with these before any layer is built,
        so a forged size cannot make the loader allocate what the file does not
        hold. ``{}``: the layer keeps no buffers. ``None`` (the default for layers
        written outside handnet that do not say): not declared, so checked only
        once the layer is built.
        """
        return {} if cls.buffers is Layer.buffers else None

    def load_buffers(self, values: Mapping[str, Array]) -> None:
        """Copy saved :meth:`buffers` into this layer's own arrays (same names, shapes, dtypes).

        Raises
        ------
        ValueError
            If the names, shapes or dtypes differ from this layer's, or a value is not finite.
        """
        own = self.buffers()
        if set(values) != set(own):
            raise ValueError(
                f"{type(self).__name__} keeps the buffers {sorted(own)}, got {sorted(values)}"
            )
        for name, value in values.items():
            target = own[name]
            if not (
                isinstance(value, np.ndarray)
                and value.shape == target.shape
                and value.dtype == target.dtype
                and np.isfinite(value).all()
            ):
                raise ValueError(
                    f"{type(self).__name__} buffer {name!r} must be a finite {target.dtype} "
                    f"array of shape {target.shape}"
                )
            target[...] = value

    def bind(self, parameters: list[Array], gradients: list[Array]) -> None:
        """Make the layer use the given arrays (e.g. views of one flat buffer)."""
        if parameters:
            raise TypeError(f"{type(self).__name__} has no parameters to bind")

    def output_shape(self, input_shape: Shape) -> Shape:
        """The per-sample shape of the output for inputs of per-sample shape ``input_shape``.

        Raises ``ValueError`` (saying what it expects) when the layer cannot take
        such inputs.
        """
        return tuple(input_shape)

    def output_size(self, n_inputs: int) -> int:
        """Number of output features for ``n_inputs`` input features (flat input)."""
        shape = self.output_shape((n_inputs,))
        return math.prod(shape)

    def build(self, input_shape: Shape, rng: np.random.Generator, dtype: DTypeLike) -> None:
        """Complete the layer for inputs of per-sample shape ``input_shape``, freshly initialised.

        Sizes given as ``None`` are read from ``input_shape``; parameters are
        (re)allocated in ``dtype`` and drawn from ``rng``, so that a model's fit
        starts from its own ``random_state`` whatever the layer held before.
        Layers without parameters only check that they can take the input.

        Raises
        ------
        ValueError
            If the layer cannot take inputs of that shape.
        """
        self.output_shape(input_shape)
        if self.parameters():
            raise NotImplementedError(
                f"{type(self).__name__} has parameters, so it must define build() to "
                "(re)initialise them"
            )
        self.set_random_state(rng)

    def is_built(self) -> bool:
        """Whether every size is known and the parameters exist (see :meth:`build`)."""
        return True

    def set_random_state(self, rng: np.random.Generator) -> None:
        """Draw this layer's training-time random numbers (dropout's masks) from ``rng``."""

    def sublayers(self) -> list[Layer]:
        """The layers inside this one (a block such as ``Residual``); none by default."""
        return []

    def draws_random_numbers(self, training: bool) -> bool:
        """Whether a pass in this mode draws random numbers (dropout's masks).

        Such a pass cannot be split into row blocks computed on several threads:
        they would draw in another order than one pass over all rows.
        """
        return False

    def config(self) -> dict[str, object]:
        """A JSON-serialisable description of the layer (for model files)."""
        return {"type": type(self).__name__}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], dtype: DTypeLike = np.float64) -> Layer:
        """The layer that :meth:`config` describes (its parameters zero: the caller sets them).

        ``config`` has been checked against :attr:`config_fields` first.
        """
        return cls(**{name: config[name] for name in cls.config_fields})

    @classmethod
    def chain(
        cls, config: Mapping[str, Any], input_shape: Shape | None
    ) -> tuple[Shape | None, int]:
        """``(output_shape, n_parameters)`` of the configured layer after ``input_shape``.

        Computed from the config alone (nothing is allocated), so that a model file
        is checked before any layer is built. ``input_shape`` is the per-sample
        shape from the layer below, ``None`` when it is not known; the output shape
        is ``None`` when it cannot be known. Raises ``ValueError`` when the layer
        cannot take that input.
        """
        return input_shape, 0


class Dense(Layer):
    r"""Fully connected (affine) layer :math:`Z = X W + b`.

    Parameters
    ----------
    n_inputs : int or None
        ``W`` has shape ``(n_inputs, n_outputs)``. ``None``: taken from the layer
        below when the network is built (:meth:`build`); until then the layer has
        no parameters.
    n_outputs : int or None
        ``b`` has shape ``(n_outputs,)``. ``None`` only in an estimator's last
        layer, which the estimator sizes from the targets.
    init : str or callable, default "xavier"
        Weight initialiser (see :mod:`handnet.nn.initializers`); biases start at 0.
    random_state : int, Generator or None
        Source of the initial weights.
    dtype : float32 or float64

    Notes
    -----
    With :math:`G = \partial L / \partial Z` of shape ``(n_samples, n_outputs)``:

    .. math::

        \frac{\partial L}{\partial W} = X^\top G, \qquad
        \frac{\partial L}{\partial b} = \sum_i G_{i\cdot}, \qquad
        \frac{\partial L}{\partial X} = G W^\top
    """

    penalized = (True, False)
    _forward_cache = ("_X", "_training")

    def __init__(
        self,
        n_inputs: int | None,
        n_outputs: int | None,
        init: str | Initializer = "xavier",
        random_state: int | np.random.Generator | None = None,
        dtype: DTypeLike = np.float64,
    ) -> None:
        for name, value in (("n_inputs", n_inputs), ("n_outputs", n_outputs)):
            if value is not None and not (
                isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1
            ):
                raise ValueError(
                    f"Dense needs {name} to be an integer >= 1 (or None: set when the network "
                    f"is built), got {value!r}"
                )
        self.n_inputs = None if n_inputs is None else int(n_inputs)
        self.n_outputs = None if n_outputs is None else int(n_outputs)
        self._initializer = init
        self.init = init if isinstance(init, str) else getattr(init, "__name__", "custom")
        get_initializer(init)  # an unknown name is an error now, not at build time
        self._X: Array | None = None
        self._training = False
        if self.n_inputs is not None and self.n_outputs is not None:
            self._allocate(np.random.default_rng(random_state), dtype)

    def _allocate(self, rng: np.random.Generator, dtype: DTypeLike) -> None:
        assert self.n_inputs is not None and self.n_outputs is not None
        self.weights: Array = np.ascontiguousarray(
            get_initializer(self._initializer)(self.n_inputs, self.n_outputs, rng, dtype)
        )
        self.bias: Array = np.zeros(self.n_outputs, dtype=self.weights.dtype)
        self.grad_weights: Array = np.zeros_like(self.weights)
        self.grad_bias: Array = np.zeros_like(self.bias)

    def is_built(self) -> bool:
        return "weights" in self.__dict__

    def build(self, input_shape: Shape, rng: np.random.Generator, dtype: DTypeLike) -> None:
        if self.n_outputs is None:
            raise ValueError(
                "Dense(n_inputs, None) has no output size; an estimator sets it in the last "
                "layer only, from the targets"
            )
        self.output_shape(input_shape)
        self.n_inputs = int(input_shape[0])
        self._allocate(rng, dtype)

    def forward(self, X: Array, training: bool = False) -> Array:
        self._X = X
        self._training = training and self.reuse_buffers
        if self._training:
            out = self._workspace("out", (X.shape[0], self.weights.shape[1]), X.dtype)
            np.dot(X, self.weights, out=out)
        else:
            out = np.dot(X, self.weights)
        kernels = dense_kernels(out, self.bias) if out.ndim == 2 else None
        if kernels is not None:
            kernels.add_bias(out, self.bias)  # the same sums, without NumPy's call overhead
        else:
            out += self.bias
        return out

    def backward(self, dout: Array, need_input_gradient: bool = True) -> Array | None:
        X = self._X
        if X is None:
            raise RuntimeError("Dense.backward called before forward")
        same_dtype = X.dtype == dout.dtype == self.weights.dtype
        if same_dtype:
            np.dot(X.T, dout, out=self.grad_weights)
        else:
            # Mixed dtypes (a float64 gradient into a float32 layer, say): the products
            # in NumPy's promoted dtype, as forward's; the gradients kept in the layer's.
            self.grad_weights[...] = np.dot(X.T, dout)
        # One column: NumPy sums it pairwise (contiguous), the kernel row after row.
        kernels = (
            dense_kernels(dout, self.grad_bias) if dout.ndim == 2 and dout.shape[1] > 1
            else None
        )
        if kernels is not None:
            kernels.column_sums(dout, self.grad_bias)  # the rows added in NumPy's order
        else:
            dout.sum(axis=0, out=self.grad_bias)
        if not need_input_gradient:
            return None
        if self._training and same_dtype:
            return np.dot(dout, self.weights.T, out=self._workspace("dX", X.shape, X.dtype))
        return np.dot(dout, self.weights.T)

    def parameters(self) -> list[Array]:
        return [self.weights, self.bias] if self.is_built() else []

    def gradients(self) -> list[Array]:
        return [self.grad_weights, self.grad_bias] if self.is_built() else []

    def bind(self, parameters: list[Array], gradients: list[Array]) -> None:
        weights, bias = parameters
        if weights.shape != self.weights.shape or bias.shape != self.bias.shape:
            raise ValueError("bound arrays do not match the layer's shapes")
        weights[...] = self.weights
        bias[...] = self.bias
        self.weights, self.bias = weights, bias
        self.grad_weights, self.grad_bias = gradients

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 1:
            raise ValueError(
                f"Dense takes flat inputs (n_samples, n_features), got per-sample shape "
                f"{tuple(input_shape)}; put a Flatten() layer before it"
            )
        if self.n_inputs is not None and input_shape[0] != self.n_inputs:
            raise ValueError(f"Dense layer expects {self.n_inputs} inputs, got {input_shape[0]}")
        if self.n_outputs is None:
            raise ValueError("Dense(n_inputs, None) has no output size until an estimator sets it")
        return (self.n_outputs,)

    def config(self) -> dict[str, object]:
        return {"type": "Dense", "n_inputs": self.n_inputs, "n_outputs": self.n_outputs}

    config_fields: ClassVar[dict[str, str]] = {"n_inputs": "size", "n_outputs": "size"}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], dtype: DTypeLike = np.float64) -> Dense:
        return cls(int(config["n_inputs"]), int(config["n_outputs"]), init="zeros", dtype=dtype)

    @classmethod
    def chain(
        cls, config: Mapping[str, Any], input_shape: Shape | None
    ) -> tuple[Shape | None, int]:
        n_in, n_out = int(config["n_inputs"]), int(config["n_outputs"])
        if input_shape is not None and tuple(input_shape) != (n_in,):
            raise ValueError(
                f"Dense expects {n_in} inputs but the layer before gives shape "
                f"{tuple(input_shape)}"
            )
        return (n_out,), (n_in + 1) * n_out

    def __repr__(self) -> str:
        return f"Dense({self.n_inputs}, {self.n_outputs})"


class Activation(Layer):
    """An elementwise (or softmax) non-linearity, by name.

    ``Activation("relu")``, ``"tanh"``, ``"sigmoid"``, ``"leaky_relu"``,
    ``"identity"``, ``"softmax"``: forward and backward come from
    :mod:`handnet.nn.activations`.
    """

    _forward_cache = ("_z", "_a", "_training")

    def __init__(self, name: str) -> None:
        self.name = name
        pair = get_activation(name)
        self._forward, self._backward = pair.forward, pair.backward
        self._writes_out = pair.writes_out
        self._compiled = pair.compiled
        self.commutes_with_max = pair.commutes_with_max
        self._z: Array | None = None
        self._a: Array | None = None
        self._training = False

    def forward(self, X: Array, training: bool = False) -> Array:
        self._z = X
        self._training = training and self._writes_out and self.reuse_buffers
        out = self._workspace("out", X.shape, X.dtype) if self._training else None
        kernels = dense_kernels(X) if self._compiled is not None and X.ndim else None
        if kernels is not None:
            if out is None:
                out = np.empty_like(X)
            getattr(kernels, f"{self._compiled}_forward")(X.reshape(-1), out.reshape(-1))
            self._a = out
        elif out is not None:
            self._a = self._forward(X, out=out)
        else:
            self._a = self._forward(X)
        return self._a

    def backward(self, dout: Array, need_input_gradient: bool = True) -> Array | None:
        z, a = self._z, self._a
        if z is None or a is None:
            raise RuntimeError("Activation.backward called before forward")
        buffer = self._workspace("dX", dout.shape, dout.dtype) if self._training else None
        kernels = (
            dense_kernels(dout, z) if self._compiled is not None and dout.shape == z.shape
            else None
        )
        if kernels is not None:
            if buffer is None:
                buffer = np.empty_like(dout)
            getattr(kernels, f"{self._compiled}_backward")(
                dout.reshape(-1), z.reshape(-1), buffer.reshape(-1)
            )
            return buffer
        if buffer is not None:
            return self._backward(dout, z, a, out=buffer)
        return self._backward(dout, z, a)

    def config(self) -> dict[str, object]:
        return {"type": "Activation", "name": self.name}

    config_fields: ClassVar[dict[str, str]] = {"name": "activation"}

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


class _NamedActivation(Activation):
    """An :class:`Activation` under a layer name of its own (``ReLU()`` for ``Activation("relu")``),
    as PyTorch spells them; saved under that name."""

    activation: ClassVar[str]
    config_fields: ClassVar[dict[str, str]] = {}

    def __init__(self) -> None:
        super().__init__(self.activation)

    def config(self) -> dict[str, object]:
        return {"type": type(self).__name__}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ReLU(_NamedActivation):
    """``Activation("relu")``: :math:`\\max(z, 0)`."""

    activation = "relu"


class Tanh(_NamedActivation):
    """``Activation("tanh")``: :math:`\\tanh z`."""

    activation = "tanh"


class Sigmoid(_NamedActivation):
    """``Activation("sigmoid")``: :math:`1 / (1 + e^{-z})`."""

    activation = "sigmoid"


class Dropout(Layer):
    r"""Inverted dropout: zero each input with probability ``rate`` while training.

    Training: :math:`\text{out} = X \odot M / (1 - r)` with :math:`M_{ij} \sim
    \text{Bernoulli}(1 - r)`, so the expected output equals the input and nothing
    needs rescaling at prediction time. Evaluation: the identity.

    Backward re-applies the *same* mask: :math:`\partial L/\partial X = G \odot M / (1-r)`
    (a dropped unit gets no gradient).

    Parameters
    ----------
    rate : float in [0, 1)
        Probability of dropping a unit.
    random_state : int, Generator or None
        Source of the masks; a model sets its own generator here.
    """

    _forward_cache = ("mask",)

    def __init__(self, rate: float, random_state: int | np.random.Generator | None = None) -> None:
        # A number, not anything float() takes: "0.5" or True is a mistake to report.
        if not (
            isinstance(rate, (int, float, np.integer, np.floating))
            and not isinstance(rate, (bool, np.bool_))
            and 0.0 <= rate < 1.0
        ):
            raise ValueError(
                f"Dropout rate must be a number in [0, 1) (the probability of zeroing each "
                f"input), got {rate!r}"
            )
        self.rate = float(rate)
        self.rng = np.random.default_rng(random_state)
        self.mask: Array | None = None

    def forward(self, X: Array, training: bool = False) -> Array:
        if not training or self.rate == 0.0:
            self.mask = None
            return X
        keep = self.rng.random(X.shape, dtype=np.float32) >= self.rate
        self.mask = keep.astype(X.dtype) * X.dtype.type(1.0 / (1.0 - self.rate))
        return X * self.mask

    def backward(self, dout: Array, need_input_gradient: bool = True) -> Array | None:
        return dout if self.mask is None else dout * self.mask

    def config(self) -> dict[str, object]:
        return {"type": "Dropout", "rate": self.rate}

    config_fields: ClassVar[dict[str, str]] = {"rate": "rate"}

    def draws_random_numbers(self, training: bool) -> bool:
        return training and self.rate > 0

    def set_random_state(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def __repr__(self) -> str:
        return f"Dropout({self.rate})"


class Reshape(Layer):
    """View each sample as an array of another shape: ``(n, *before) -> (n, *shape)``.

    No copy and no arithmetic: forward and backward are reshapes. An estimator puts
    one first when its flat rows hold images (``input_shape=(1, 28, 28)``), so that
    the data, the batches and the model file stay 2-D.

    Parameters
    ----------
    shape : sequence of int
        The per-sample output shape (1 to 3 sizes); its product must equal the
        input's number of values per sample.
    """

    _forward_cache = ("_input_shape",)

    def __init__(self, shape: tuple[int, ...] | list[int]) -> None:
        shape = tuple(shape)
        problem = _shape(list(shape))
        if problem is not None:
            raise ValueError(f"Reshape shape {problem}")
        self.shape: Shape = tuple(int(size) for size in shape)
        self._input_shape: Shape | None = None

    def output_shape(self, input_shape: Shape) -> Shape:
        if math.prod(input_shape) != math.prod(self.shape):
            raise ValueError(
                f"cannot view {math.prod(input_shape)} values per sample (shape "
                f"{tuple(input_shape)}) as shape {self.shape} ({math.prod(self.shape)} values)"
            )
        return self.shape

    def forward(self, X: Array, training: bool = False) -> Array:
        self._input_shape = X.shape[1:]
        return X.reshape(X.shape[0], *self.output_shape(X.shape[1:]))

    def backward(self, dout: Array, need_input_gradient: bool = True) -> Array | None:
        if self._input_shape is None:
            raise RuntimeError("Reshape.backward called before forward")
        return dout.reshape(dout.shape[0], *self._input_shape)

    def config(self) -> dict[str, object]:
        return {"type": "Reshape", "shape": list(self.shape)}

    config_fields: ClassVar[dict[str, str]] = {"shape": "shape"}

    @classmethod
    def chain(
        cls, config: Mapping[str, Any], input_shape: Shape | None
    ) -> tuple[Shape | None, int]:
        shape = tuple(config["shape"])
        if input_shape is not None:
            cls(shape).output_shape(input_shape)
        return shape, 0

    def __repr__(self) -> str:
        return f"Reshape({self.shape})"


class Flatten(Layer):
    """Flatten each sample: ``(n, c, h, w) -> (n, c * h * w)`` (row-major, no copy).

    Backward reshapes the gradient back to the input's shape.
    """

    _forward_cache = ("_input_shape",)

    def __init__(self) -> None:
        self._input_shape: Shape | None = None

    def output_shape(self, input_shape: Shape) -> Shape:
        return (math.prod(input_shape),)

    def forward(self, X: Array, training: bool = False) -> Array:
        self._input_shape = X.shape[1:]
        return X.reshape(X.shape[0], -1)

    def backward(self, dout: Array, need_input_gradient: bool = True) -> Array | None:
        if self._input_shape is None:
            raise RuntimeError("Flatten.backward called before forward")
        return dout.reshape(dout.shape[0], *self._input_shape)

    @classmethod
    def chain(
        cls, config: Mapping[str, Any], input_shape: Shape | None
    ) -> tuple[Shape | None, int]:
        return (None if input_shape is None else (math.prod(input_shape),)), 0

    def __repr__(self) -> str:
        return "Flatten()"


def iter_layers(layers: Iterable[Layer]) -> Iterator[Layer]:
    """Every layer, depth first: each one, then the layers inside it (:meth:`Layer.sublayers`)."""
    for layer in layers:
        yield layer
        yield from iter_layers(layer.sublayers())


def check_layer_configs(
    configs: Any, input_shape: Shape | None = None, where: str = "layer", max_layers: int = 1000
) -> tuple[Shape | None, int]:
    """Check saved layer configs before anything is built: ``(output_shape, n_parameters)``.

    Each config must name a registered layer (:data:`LAYERS`), hold exactly its
    :attr:`Layer.config_fields`, each valid for its kind (:data:`FIELD_KINDS`), and
    the layers must chain (:meth:`Layer.chain`) from ``input_shape``. Nothing is
    allocated, so a forged file cannot make the loader build a huge layer.

    Raises
    ------
    ValueError
        Naming the layer (``where`` and its position) and what is wrong.
    """
    if not isinstance(configs, list) or not 0 < len(configs) <= max_layers:
        raise ValueError(f"{where}s must be a list of 1 to {max_layers} layer configs")
    # (Buffers are checked by the caller against each class's buffer_shapes.)
    shape, total = input_shape, 0
    for i, config in enumerate(configs):
        here = f"{where} {i}"
        if not isinstance(config, dict):
            raise ValueError(f"{here} must be an object")
        kind = config.get("type")
        cls = LAYERS.get(kind) if isinstance(kind, str) else None
        if cls is None:
            raise ValueError(f"{here} is of unknown type {kind!r}; known: {', '.join(LAYERS)}")
        missing = sorted(set(cls.config_fields) - set(config))
        extra = sorted(set(config) - {"type", *cls.config_fields})
        if missing or extra:
            raise ValueError(
                f"{here} ({kind}) "
                + (f"lacks {missing}" if missing else f"has unknown entries {extra}")
            )
        for name, field_kind in cls.config_fields.items():
            check = FIELD_KINDS.get(field_kind)
            if check is None:
                raise ValueError(f"{here} ({kind}): {name} is of an unknown kind {field_kind!r}")
            problem = check(config[name])
            if problem is not None:
                raise ValueError(f"{here} ({kind}): {name} {problem}")
        try:
            shape, n_parameters = cls.chain(config, shape)
        except ValueError as error:
            raise ValueError(f"{here} ({kind}): {error}") from None
        total += n_parameters
    return shape, total


LAYERS: Registry[type[Layer]] = Registry(
    "layer",
    [
        ("Dense", Dense),
        ("Activation", Activation),
        ("ReLU", ReLU),
        ("Tanh", Tanh),
        ("Sigmoid", Sigmoid),
        ("Dropout", Dropout),
        ("Reshape", Reshape),
        ("Flatten", Flatten),
    ],
    pattern=r"[A-Z][A-Za-z0-9]{0,63}",
)
"""Layer classes by the ``"type"`` their :meth:`Layer.config` writes (the class name).

Model files build only the layers registered here; ``LAYERS.register("Name", cls)``
adds one (its :attr:`Layer.config_fields`, :meth:`Layer.from_config` and
:meth:`Layer.chain` say how it is saved, checked and rebuilt).
"""

