"""Layers: each one's forward pass sits next to its backward pass.

A layer maps an input batch ``X`` of shape ``(n_samples, n_inputs)`` to an output
of shape ``(n_samples, n_outputs)``. ``forward`` keeps what ``backward`` needs;
``backward(dout)`` takes :math:`\\partial L / \\partial\\,\\text{out}` and

* writes the gradients of the layer's parameters into ``layer.gradients()``
  (overwriting them: calling ``backward`` twice gives the same gradients, it
  never accumulates), and
* returns :math:`\\partial L / \\partial X`, the ``dout`` of the layer below.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from numpy.typing import DTypeLike, NDArray

from .activations import get_activation
from .initializers import Initializer, get_initializer
from .registry import Registry

Array = NDArray[np.floating]


class Layer:
    """Base class of all layers."""

    #: Whether each of :meth:`parameters` is a weight that an L2 penalty applies to
    #: (biases are never penalised).
    penalized: tuple[bool, ...] = ()

    #: Whether training-mode passes may write into buffers reused from one call to
    #: the next (see :meth:`Sequential.reusing_buffers`). Off by default, so that
    #: every array a layer returns is the caller's to keep.
    reuse_buffers: bool = False

    #: The entries of :meth:`config` besides ``"type"``, each with its kind, against which
    #: a model file's layers are checked before anything is built: ``"size"`` (an
    #: integer >= 1), ``"activation"`` (a registered activation's name) or ``"rate"``
    #: (a number in [0, 1)).
    config_fields: ClassVar[dict[str, str]] = {}

    #: The attributes in which :meth:`forward` keeps what :meth:`backward` needs (the
    #: batch's inputs, outputs or mask). They are dropped when the layer is pickled
    #: (a saved model holds no training rows) and untouched by :meth:`predict`.
    _forward_cache: tuple[str, ...] = ()

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

    def output_size(self, n_inputs: int) -> int:
        """Number of output features for ``n_inputs`` input features."""
        return n_inputs

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
    def chain(cls, config: Mapping[str, Any], n_inputs: int | None) -> tuple[int | None, int]:
        """``(n_outputs, n_parameters)`` of the configured layer after ``n_inputs`` features.

        ``n_inputs`` is ``None`` when the sizes before are not known yet. Raises
        ``ValueError`` when the layer cannot take that input.
        """
        return n_inputs, 0


class Dense(Layer):
    r"""Fully connected (affine) layer :math:`Z = X W + b`.

    Parameters
    ----------
    n_inputs, n_outputs : int
        ``W`` has shape ``(n_inputs, n_outputs)`` and ``b`` shape ``(n_outputs,)``.
    init : str or callable, default "xavier"
        Weight initialiser (see :mod:`handnet.initializers`); biases start at 0.
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
        n_inputs: int,
        n_outputs: int,
        init: str | Initializer = "xavier",
        random_state: int | np.random.Generator | None = None,
        dtype: DTypeLike = np.float64,
    ) -> None:
        if int(n_inputs) < 1 or int(n_outputs) < 1:
            raise ValueError(
                f"Dense needs n_inputs >= 1 and n_outputs >= 1, got {n_inputs}, {n_outputs}"
            )
        self.n_inputs = int(n_inputs)
        self.n_outputs = int(n_outputs)
        self.init = init if isinstance(init, str) else getattr(init, "__name__", "custom")
        rng = np.random.default_rng(random_state)
        self.weights: Array = np.ascontiguousarray(
            get_initializer(init)(self.n_inputs, self.n_outputs, rng, dtype)
        )
        self.bias: Array = np.zeros(self.n_outputs, dtype=self.weights.dtype)
        self.grad_weights: Array = np.zeros_like(self.weights)
        self.grad_bias: Array = np.zeros_like(self.bias)
        self._X: Array | None = None
        self._training = False

    def forward(self, X: Array, training: bool = False) -> Array:
        self._X = X
        self._training = training and self.reuse_buffers
        if self._training:
            out = self._workspace("out", (X.shape[0], self.n_outputs), X.dtype)
            np.dot(X, self.weights, out=out)
        else:
            out = np.dot(X, self.weights)
        out += self.bias
        return out

    def backward(self, dout: Array, need_input_gradient: bool = True) -> Array | None:
        X = self._X
        if X is None:
            raise RuntimeError("Dense.backward called before forward")
        np.dot(X.T, dout, out=self.grad_weights)
        dout.sum(axis=0, out=self.grad_bias)
        if not need_input_gradient:
            return None
        if self._training:
            return np.dot(dout, self.weights.T, out=self._workspace("dX", X.shape, X.dtype))
        return np.dot(dout, self.weights.T)

    def parameters(self) -> list[Array]:
        return [self.weights, self.bias]

    def gradients(self) -> list[Array]:
        return [self.grad_weights, self.grad_bias]

    def bind(self, parameters: list[Array], gradients: list[Array]) -> None:
        weights, bias = parameters
        if weights.shape != self.weights.shape or bias.shape != self.bias.shape:
            raise ValueError("bound arrays do not match the layer's shapes")
        weights[...] = self.weights
        bias[...] = self.bias
        self.weights, self.bias = weights, bias
        self.grad_weights, self.grad_bias = gradients

    def output_size(self, n_inputs: int) -> int:
        if n_inputs != self.n_inputs:
            raise ValueError(f"Dense layer expects {self.n_inputs} inputs, got {n_inputs}")
        return self.n_outputs

    def config(self) -> dict[str, object]:
        return {"type": "Dense", "n_inputs": self.n_inputs, "n_outputs": self.n_outputs}

    config_fields: ClassVar[dict[str, str]] = {"n_inputs": "size", "n_outputs": "size"}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], dtype: DTypeLike = np.float64) -> Dense:
        return cls(int(config["n_inputs"]), int(config["n_outputs"]), init="zeros", dtype=dtype)

    @classmethod
    def chain(cls, config: Mapping[str, Any], n_inputs: int | None) -> tuple[int | None, int]:
        n_in, n_out = int(config["n_inputs"]), int(config["n_outputs"])
        if n_inputs is not None and n_inputs != n_in:
            raise ValueError(f"Dense expects {n_in} inputs but the layer before gives {n_inputs}")
        return n_out, (n_in + 1) * n_out

    def __repr__(self) -> str:
        return f"Dense({self.n_inputs}, {self.n_outputs})"


class Activation(Layer):
    """An elementwise (or softmax) non-linearity, by name.

    ``Activation("relu")``, ``"tanh"``, ``"sigmoid"``, ``"leaky_relu"``,
    ``"identity"``, ``"softmax"``: forward and backward come from
    :mod:`handnet.activations`.
    """

    _forward_cache = ("_z", "_a", "_training")

    def __init__(self, name: str) -> None:
        self.name = name
        pair = get_activation(name)
        self._forward, self._backward = pair.forward, pair.backward
        self._writes_out = pair.writes_out
        self._z: Array | None = None
        self._a: Array | None = None
        self._training = False

    def forward(self, X: Array, training: bool = False) -> Array:
        self._z = X
        self._training = training and self._writes_out and self.reuse_buffers
        if self._training:
            self._a = self._forward(X, out=self._workspace("out", X.shape, X.dtype))
        else:
            self._a = self._forward(X)
        return self._a

    def backward(self, dout: Array, need_input_gradient: bool = True) -> Array | None:
        if self._z is None or self._a is None:
            raise RuntimeError("Activation.backward called before forward")
        if self._training:
            buffer = self._workspace("dX", dout.shape, dout.dtype)
            return self._backward(dout, self._z, self._a, out=buffer)
        return self._backward(dout, self._z, self._a)

    def config(self) -> dict[str, object]:
        return {"type": "Activation", "name": self.name}

    config_fields: ClassVar[dict[str, str]] = {"name": "activation"}

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


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
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1), got {rate!r}")
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

    def __repr__(self) -> str:
        return f"Dropout({self.rate})"


LAYERS: Registry[type[Layer]] = Registry(
    "layer",
    [("Dense", Dense), ("Activation", Activation), ("Dropout", Dropout)],
    pattern=r"[A-Z][A-Za-z0-9]{0,63}",
)
"""Layer classes by the ``"type"`` their :meth:`Layer.config` writes (the class name).

Model files build only the layers registered here; ``LAYERS.register("Name", cls)``
adds one (its :attr:`Layer.config_fields`, :meth:`Layer.from_config` and
:meth:`Layer.chain` say how it is saved, checked and rebuilt).
"""

