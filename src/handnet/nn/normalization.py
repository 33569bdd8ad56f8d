r"""Normalisation layers: batch normalisation and layer normalisation.

Both layers standardise their input over some axes and then apply a learnt
per-element scale :math:`\gamma` (``gamma``, initialised to 1) and shift
:math:`\beta` (``beta``, initialised to 0):

.. math:: \hat x = (x - \mu)\, s, \quad s = (\sigma^2 + \epsilon)^{-1/2}, \qquad
          y = \gamma \odot \hat x + \beta.

* :class:`BatchNorm` takes :math:`\mu, \sigma^2` per feature (dense input
  ``(n, F)``) or per channel (images ``(n, C, H, W)``) over the *batch* (and the
  spatial positions) while training, and from running averages of those batch
  statistics at inference: its output for one row depends on the other rows of
  a training batch, not at inference.
* :class:`LayerNorm` takes them per *sample* over its trailing axes: the same in
  training and at inference, independent of the other rows.

The variance is always the mean of the squared deviations from the mean,
:math:`\tfrac1M\sum_i (x_i - \mu)^2`, never :math:`\overline{x^2} - \mu^2`, which
cancels catastrophically when :math:`|\mu| \gg \sigma` (in float32 especially).

The backward passes are derived in each class's docstring and in
``docs/normalization.md``.

Neither ``gamma`` nor ``beta`` is L2-penalised (``penalized = (False, False)``):
like a bias, neither makes the function more complex as it grows; the layer's
output scale is otherwise fixed by the normalisation, and a penalty on
:math:`\gamma` would only shrink it towards 0, which the next layer's (penalised)
weights then undo.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import DTypeLike, NDArray

from .layers import LAYERS, Layer, Shape

Array = NDArray[np.floating]


def _float_dtype(dtype: DTypeLike, name: str) -> np.dtype[Any]:
    resolved = np.dtype(dtype)
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"{name} dtype must be float32 or float64, got {resolved}")
    return resolved


def _check_size(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1:
        return int(value)
    raise ValueError(
        f"{what} must be an integer >= 1 (or None: read from the input), got {value!r}"
    )


def _check_eps(value: Any, who: str) -> float:
    if (
        isinstance(value, (int, float, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    ):
        return float(value)
    raise ValueError(f"{who} eps must be a finite number > 0, got {value!r}")


def _check_flag(value: Any, what: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"{what} must be True or False, got {value!r}")


class BatchNorm(Layer):
    r"""Batch normalisation of dense ``(n, F)`` or spatial ``(n, C, H, W)`` input.

    Axis 1 holds the features (dense) or channels (images); statistics are taken
    per feature/channel over every other axis: over the ``n`` rows for dense
    input, over ``n``, ``H`` and ``W`` for images (any per-sample shape
    ``(C, ...)`` works the same way). Call :math:`M` the number of values each
    statistic is taken over (:math:`M = n` or :math:`n H W`).

    **Training** (``forward(X, training=True)``): the batch's mean :math:`\mu`
    and biased variance :math:`\sigma^2 = \frac1M\sum_i (x_i-\mu)^2` normalise the
    input, :math:`\hat x = (x - \mu) s` with :math:`s = (\sigma^2+\epsilon)^{-1/2}`,
    and :math:`y = \gamma \hat x + \beta`. The running statistics then move
    towards the batch's, with PyTorch's convention for ``momentum``
    (the weight of the *new* batch, not of the old average)::

        running_mean = (1 - momentum) * running_mean + momentum * mu
        running_var  = (1 - momentum) * running_var  + momentum * sigma2 * M / (M - 1)

    ``running_var`` follows the *unbiased* batch variance. With :math:`M = 1` (a
    training batch of one row of dense input) that estimate is undefined: the
    running mean is updated and the running variance left as it is. The batch
    variance is then 0, and the output is :math:`\beta` (finite, thanks to
    :math:`\epsilon`), with zero input gradient: one row carries no information
    about the spread, so batch normalisation needs batches of several rows (a
    ``UserWarning`` says so; PyTorch raises, but an epoch's last batch can be one row).

    **Inference** (``training=False``, :meth:`predict`): the running statistics
    replace the batch's, so the layer is the fixed affine map
    :math:`y = \gamma\,(x - \bar\mu)\,(\bar\sigma^2+\epsilon)^{-1/2} + \beta`, the same
    for each row whatever the batch. ``running_mean`` starts at 0 and
    ``running_var`` at 1 (an untrained layer predicts as the identity, up to
    :math:`\epsilon`).

    **Backward**, training mode. With :math:`g = \partial L/\partial y` (``dout``),
    :math:`\partial L/\partial\beta = \sum_i g_i` and
    :math:`\partial L/\partial\gamma = \sum_i g_i \hat x_i` (sums over the :math:`M`
    values of a feature/channel). Through :math:`\hat x`, with
    :math:`d\hat x_i = \gamma g_i`: :math:`\mu` and :math:`\sigma^2` depend on every
    :math:`x_j`, and since :math:`\partial\mu/\partial x_j = 1/M`,
    :math:`\partial\sigma^2/\partial x_j = 2(x_j - \mu)/M` (the
    :math:`\sum_i (x_i-\mu) = 0` term vanishing) and :math:`\partial s/\partial\sigma^2
    = -s^3/2`,

    .. math::

        \frac{\partial L}{\partial x_j}
        = s\, d\hat x_j - \frac{s}{M}\sum_i d\hat x_i
          - \frac{s}{M}\,\hat x_j \sum_i d\hat x_i\, \hat x_i
        = \frac{\gamma s}{M}\Big(M g_j - \sum_i g_i - \hat x_j \sum_i g_i \hat x_i\Big),

    that is ``dX = gamma * inv_std / M * (M * dout - dbeta - xhat * dgamma)``,
    computed as ``gamma * inv_std * (dout - dbeta / M - xhat * dgamma / M)`` (the
    same numbers, better scaled). Inference-mode backward is supported too: the
    statistics are then constants and ``dX = gamma * inv_std * dout``, with the
    same ``dgamma``, ``dbeta``.

    Parameters
    ----------
    n_features : int or None
        Number of features (dense) or channels (images): the input's axis 1.
        ``None``: read from the input when the network is built (:meth:`build`).
    momentum : float in (0, 1]
        Weight of each new batch's statistics in the running ones (see above).
    eps : float > 0
        Added to the variance before the square root.
    affine : bool
        Learn ``gamma`` and ``beta``; ``False``: :math:`y = \hat x`, no parameters.
    dtype : float32 or float64
        Of the parameters and running statistics.

    Attributes
    ----------
    gamma, beta : ndarray of shape (n_features,)
        The scale and shift, never L2-penalised (only when ``affine``).
    running_mean, running_var : ndarray of shape (n_features,)
        The running statistics: :meth:`buffers`, saved with the model.
    """

    config_fields: ClassVar[dict[str, str]] = {
        "n_features": "size",
        "momentum": "fraction",
        "eps": "positive",
        "affine": "flag",
    }
    # Not penalised, like biases (see the module's docstring); () when not affine.
    penalized: tuple[bool, ...] = (False, False)
    _forward_cache = ("_xhat", "_inv_std", "_batch_statistics")

    def __init__(
        self,
        n_features: int | None = None,
        momentum: float = 0.1,
        eps: float = 1e-5,
        affine: bool = True,
        dtype: DTypeLike = np.float64,
    ) -> None:
        self.n_features = _check_size(n_features, "BatchNorm n_features")
        if not (
            isinstance(momentum, (int, float, np.floating))
            and not isinstance(momentum, bool)
            and 0 < momentum <= 1
        ):
            raise ValueError(f"BatchNorm momentum must be in (0, 1], got {momentum!r}")
        self.momentum = float(momentum)
        self.eps = _check_eps(eps, "BatchNorm")
        self.affine = _check_flag(affine, "BatchNorm affine")
        self.penalized = (False, False) if self.affine else ()
        self._dtype = _float_dtype(dtype, "BatchNorm")
        self._xhat: Array | None = None
        self._inv_std: Array | None = None
        self._batch_statistics = False
        if self.n_features is not None:
            self._allocate(self._dtype)

    def _allocate(self, dtype: DTypeLike) -> None:
        assert self.n_features is not None
        self._dtype = _float_dtype(dtype, "BatchNorm")
        shape = (self.n_features,)
        if self.affine:
            self.gamma: Array = np.ones(shape, dtype=self._dtype)
            self.beta: Array = np.zeros(shape, dtype=self._dtype)
            self.grad_gamma: Array = np.zeros(shape, dtype=self._dtype)
            self.grad_beta: Array = np.zeros(shape, dtype=self._dtype)
        self.running_mean: Array = np.zeros(shape, dtype=self._dtype)
        self.running_var: Array = np.ones(shape, dtype=self._dtype)

    # --- building ------------------------------------------------------------------------

    def is_built(self) -> bool:
        return "running_mean" in self.__dict__

    def build(self, input_shape: Shape, rng: np.random.Generator, dtype: DTypeLike) -> None:
        """Read ``n_features`` from ``input_shape[0]``; gamma 1, beta 0, running stats 0 and 1."""
        self.output_shape(input_shape)
        self.n_features = int(input_shape[0])
        self._allocate(dtype)

    def output_shape(self, input_shape: Shape) -> Shape:
        input_shape = tuple(input_shape)
        if not input_shape:
            raise ValueError("BatchNorm takes inputs of per-sample shape (features,) or (C, H, W)")
        if self.n_features is not None and input_shape[0] != self.n_features:
            raise ValueError(
                f"BatchNorm({self.n_features}) expects {self.n_features} features/channels "
                f"on axis 1, got per-sample shape {input_shape}"
            )
        return input_shape

    # --- forward and backward ------------------------------------------------------------

    def _check_input(self, X: Array) -> tuple[int, ...]:
        if not self.is_built():
            raise RuntimeError("BatchNorm(None) must be built (or given n_features) before use")
        if X.ndim < 2 or X.shape[1] != self.n_features:
            raise ValueError(
                f"BatchNorm({self.n_features}) expects input of shape (n, {self.n_features}) "
                f"or (n, {self.n_features}, H, W), got {X.shape}"
            )
        return (0, *range(2, X.ndim))

    def _per_channel(self, values: Array, ndim: int) -> Array:
        """``values`` of shape (C,) viewed as (1, C, 1, ...) to broadcast over ``ndim`` axes."""
        return values.reshape((1, -1) + (1,) * (ndim - 2))

    def forward(self, X: Array, training: bool = False) -> Array:
        axes = self._check_input(X)
        eps = X.dtype.type(self.eps)
        if training:
            count = X.size // X.shape[1]
            if count == 1:
                warnings.warn(
                    f"{type(self).__name__} got a training batch of one row: one row has no "
                    "spread to normalise, so its output is beta and no gradient reaches the "
                    "layers before it. Train on batches of 2 rows or more (batch_size >= 2), "
                    "or use LayerNorm, which normalises each row on its own.",
                    UserWarning,
                    stacklevel=2,
                )
            mean = X.mean(axis=axes, keepdims=True)
            centred = X - mean
            variance = np.mean(centred * centred, axis=axes, keepdims=True)
            inv_std = 1.0 / np.sqrt(variance + eps)
            xhat = centred * inv_std
            self._update_running(mean.reshape(-1), variance.reshape(-1), count)
        else:
            inv_std = self._per_channel(1.0 / np.sqrt(self.running_var + eps), X.ndim)
            xhat = (X - self._per_channel(self.running_mean, X.ndim)) * inv_std
        self._xhat, self._inv_std, self._batch_statistics = xhat, inv_std, training
        if not self.affine:
            return xhat.copy()  # the cached xhat stays ours
        out = xhat * self._per_channel(self.gamma, X.ndim)
        out += self._per_channel(self.beta, X.ndim)
        return out

    def _update_running(self, mean: Array, variance: Array, count: int) -> None:
        momentum = self.momentum
        self.running_mean *= 1.0 - momentum
        self.running_mean += momentum * mean
        if count > 1:  # the unbiased variance of one value is undefined: keep the old one
            self.running_var *= 1.0 - momentum
            self.running_var += (momentum * count / (count - 1)) * variance

    def backward(self, dout: Array, need_input_gradient: bool = True) -> Array | None:
        xhat, inv_std = self._xhat, self._inv_std
        if xhat is None or inv_std is None:
            raise RuntimeError("BatchNorm.backward called before forward")
        if dout.shape != xhat.shape:
            raise ValueError(
                f"BatchNorm.backward expects dout of shape {xhat.shape}, got {dout.shape}"
            )
        axes = (0, *range(2, dout.ndim))
        if self.affine:
            np.sum(dout * xhat, axis=axes, out=self.grad_gamma)
            np.sum(dout, axis=axes, out=self.grad_beta)
        if not need_input_gradient:
            return None
        scale = inv_std if not self.affine else inv_std * self._per_channel(self.gamma, dout.ndim)
        if not self._batch_statistics:
            return dout * scale
        # dX = gamma * inv_std / M * (M * dout - sum(dout) - xhat * sum(dout * xhat)),
        # with the sums divided by M first (the means).
        dout_mean = dout.mean(axis=axes, keepdims=True)
        projection = np.mean(dout * xhat, axis=axes, keepdims=True)
        dX = dout - dout_mean
        dX -= xhat * projection
        dX *= scale
        return dX

    # --- parameters and saved state ------------------------------------------------------

    def parameters(self) -> list[Array]:
        return [self.gamma, self.beta] if self.affine and self.is_built() else []

    def gradients(self) -> list[Array]:
        return [self.grad_gamma, self.grad_beta] if self.affine and self.is_built() else []

    def bind(self, parameters: list[Array], gradients: list[Array]) -> None:
        if not self.affine:
            super().bind(parameters, gradients)
            return
        gamma, beta = parameters
        if gamma.shape != self.gamma.shape or beta.shape != self.beta.shape:
            raise ValueError("bound arrays do not match the layer's shapes")
        gamma[...] = self.gamma
        beta[...] = self.beta
        self.gamma, self.beta = gamma, beta
        self.grad_gamma, self.grad_beta = gradients

    def buffers(self) -> dict[str, Array]:
        """``running_mean`` and ``running_var`` (the arrays themselves, shape (n_features,))."""
        if not self.is_built():
            return {}
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def load_buffers(self, values: Mapping[str, Array]) -> None:
        """Copy saved running statistics in, checked first (names, shapes, dtypes, finite).

        ``running_var`` must hold no negative value: it averages variances, and below
        ``-eps`` the inference-mode square root would turn every output of its
        channel into NaN (which the next layer then blames on the input).

        Raises
        ------
        ValueError
            The layer is left as it was.
        """
        running_var = values.get("running_var")
        if isinstance(running_var, np.ndarray) and running_var.dtype.kind == "f":
            negative = running_var < 0  # NaN is refused by the checks below
            if negative.any():
                raise ValueError(
                    f"BatchNorm buffer 'running_var' must hold no negative value (a variance), "
                    f"got {float(running_var[negative].min())!r} at index "
                    f"{int(np.flatnonzero(negative)[0])}"
                )
        super().load_buffers(values)

    def config(self) -> dict[str, object]:
        return {
            "type": "BatchNorm",
            "n_features": self.n_features,
            "momentum": self.momentum,
            "eps": self.eps,
            "affine": self.affine,
        }

    @classmethod
    def buffer_shapes(cls, config: Mapping[str, Any]) -> dict[str, Shape] | None:
        n_features = int(config["n_features"])
        return {"running_mean": (n_features,), "running_var": (n_features,)}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], dtype: DTypeLike = np.float64) -> BatchNorm:
        return cls(
            int(config["n_features"]),
            momentum=float(config["momentum"]),
            eps=float(config["eps"]),
            affine=bool(config["affine"]),
            dtype=dtype,
        )

    @classmethod
    def chain(
        cls, config: Mapping[str, Any], input_shape: Shape | None
    ) -> tuple[Shape | None, int]:
        n_features = int(config["n_features"])
        n_parameters = 2 * n_features if config["affine"] else 0
        if input_shape is None:
            return None, n_parameters
        if len(input_shape) == 0 or input_shape[0] != n_features:
            raise ValueError(
                f"BatchNorm expects {n_features} features/channels but the layer before gives "
                f"shape {tuple(input_shape)}"
            )
        return tuple(input_shape), n_parameters

    def __repr__(self) -> str:
        extra = "" if self.affine else ", affine=False"
        return f"BatchNorm({self.n_features}{extra})"


class LayerNorm(Layer):
    r"""Layer normalisation: each sample standardised over its trailing axes.

    For ``normalized_shape`` of :math:`k` axes (``None``: the whole per-sample
    shape, read when the network is built), the input's last :math:`k` axes must
    have that shape; each sample (and each position of the axes before them) is
    standardised over those :math:`D` values. Dense input ``(n, F)`` is normalised
    over ``F``; images ``(n, C, H, W)`` over ``C, H, W`` (PyTorch's
    ``LayerNorm([C, H, W])``), or over ``W`` alone with ``normalized_shape=(W,)``.
    Then :math:`y = \gamma \odot \hat x + \beta`, ``gamma`` and ``beta`` of shape
    ``normalized_shape`` (one value per normalised element, not per channel).

    There are no running statistics: training and inference compute the same.

    **Backward.** Per normalised group of :math:`D` values, with
    :math:`g = \partial L/\partial y` and :math:`d\hat x = \gamma \odot g` (``dxhat``),
    the algebra of :class:`BatchNorm` over the group gives

    .. math::

        \frac{\partial L}{\partial x_j} = \frac{s}{D}\Big(D\, d\hat x_j
            - \sum_i d\hat x_i - \hat x_j \sum_i d\hat x_i\, \hat x_i\Big),

    computed as ``inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))``;
    :math:`\gamma` varies inside the group, so unlike batch normalisation it stays
    inside the sums. ``dgamma`` :math:`= \sum g \odot \hat x` and ``dbeta``
    :math:`= \sum g`, summed over the batch (and the leading axes).

    Parameters
    ----------
    normalized_shape : int, sequence of 1 to 3 ints, or None
    eps : float > 0
    elementwise_affine : bool
        Learn ``gamma`` and ``beta`` (never L2-penalised); ``False``: no parameters.
    dtype : float32 or float64
    """

    config_fields: ClassVar[dict[str, str]] = {
        "normalized_shape": "shape",
        "eps": "positive",
        "elementwise_affine": "flag",
    }
    penalized: tuple[bool, ...] = (False, False)
    _forward_cache = ("_xhat", "_inv_std")

    def __init__(
        self,
        normalized_shape: int | Sequence[int] | None = None,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        dtype: DTypeLike = np.float64,
    ) -> None:
        self.normalized_shape: Shape | None = self._check_shape(normalized_shape)
        self.eps = _check_eps(eps, "LayerNorm")
        self.elementwise_affine = _check_flag(elementwise_affine, "LayerNorm elementwise_affine")
        self.penalized = (False, False) if self.elementwise_affine else ()
        self._dtype = _float_dtype(dtype, "LayerNorm")
        self._built = False
        self._xhat: Array | None = None
        self._inv_std: Array | None = None
        if self.normalized_shape is not None:
            self._allocate(self._dtype)

    @staticmethod
    def _check_shape(value: Any) -> Shape | None:
        if value is None:
            return None
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            value = (value,)
        if (
            isinstance(value, (tuple, list))
            and 1 <= len(value) <= 3
            and all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1
                for v in value
            )
        ):
            return tuple(int(v) for v in value)
        raise ValueError(
            "LayerNorm normalized_shape must be an integer >= 1, a sequence of 1 to 3 such "
            f"integers, or None (the whole per-sample shape), got {value!r}"
        )

    def _allocate(self, dtype: DTypeLike) -> None:
        assert self.normalized_shape is not None
        self._dtype = _float_dtype(dtype, "LayerNorm")
        shape = self.normalized_shape
        self._built = True
        if self.elementwise_affine:
            self.gamma: Array = np.ones(shape, dtype=self._dtype)
            self.beta: Array = np.zeros(shape, dtype=self._dtype)
            self.grad_gamma: Array = np.zeros(shape, dtype=self._dtype)
            self.grad_beta: Array = np.zeros(shape, dtype=self._dtype)

    def is_built(self) -> bool:
        return self._built

    def build(self, input_shape: Shape, rng: np.random.Generator, dtype: DTypeLike) -> None:
        """``normalized_shape`` (when ``None``) becomes ``input_shape``; gamma 1, beta 0."""
        self.output_shape(input_shape)
        if self.normalized_shape is None:
            self.normalized_shape = tuple(int(size) for size in input_shape)
        self._allocate(dtype)

    def output_shape(self, input_shape: Shape) -> Shape:
        input_shape = tuple(input_shape)
        shape = self.normalized_shape
        if shape is not None and input_shape[len(input_shape) - len(shape) :] != shape:
            raise ValueError(
                f"LayerNorm({list(shape)}) normalises trailing axes of shape {shape}, got "
                f"per-sample shape {input_shape}"
            )
        if shape is None and not 1 <= len(input_shape) <= 3:
            raise ValueError(f"LayerNorm takes 1 to 3 per-sample axes, got {input_shape}")
        return input_shape

    def forward(self, X: Array, training: bool = False) -> Array:
        if self.normalized_shape is None or not self.is_built():
            raise RuntimeError("LayerNorm(None) must be built (or given its shape) before use")
        k = len(self.normalized_shape)
        if X.ndim <= k or X.shape[X.ndim - k :] != self.normalized_shape:
            raise ValueError(
                f"LayerNorm({list(self.normalized_shape)}) expects input of shape "
                f"(n, ..., {', '.join(map(str, self.normalized_shape))}), got {X.shape}"
            )
        axes = tuple(range(X.ndim - k, X.ndim))
        centred = X - X.mean(axis=axes, keepdims=True)
        variance = np.mean(centred * centred, axis=axes, keepdims=True)
        inv_std = 1.0 / np.sqrt(variance + X.dtype.type(self.eps))
        xhat = centred * inv_std
        self._xhat, self._inv_std = xhat, inv_std
        if not self.elementwise_affine:
            return xhat.copy()
        out = xhat * self.gamma
        out += self.beta
        return out

    def backward(self, dout: Array, need_input_gradient: bool = True) -> Array | None:
        xhat, inv_std = self._xhat, self._inv_std
        if xhat is None or inv_std is None or self.normalized_shape is None:
            raise RuntimeError("LayerNorm.backward called before forward")
        if dout.shape != xhat.shape:
            raise ValueError(
                f"LayerNorm.backward expects dout of shape {xhat.shape}, got {dout.shape}"
            )
        k = len(self.normalized_shape)
        leading = tuple(range(dout.ndim - k))
        if self.elementwise_affine:
            np.sum(dout * xhat, axis=leading, out=self.grad_gamma)
            np.sum(dout, axis=leading, out=self.grad_beta)
        if not need_input_gradient:
            return None
        axes = tuple(range(dout.ndim - k, dout.ndim))
        dxhat = dout * self.gamma if self.elementwise_affine else dout
        dX = dxhat - dxhat.mean(axis=axes, keepdims=True)
        dX -= xhat * np.mean(dxhat * xhat, axis=axes, keepdims=True)
        dX *= inv_std
        return dX

    def parameters(self) -> list[Array]:
        return [self.gamma, self.beta] if self.elementwise_affine and self.is_built() else []

    def gradients(self) -> list[Array]:
        if self.elementwise_affine and self.is_built():
            return [self.grad_gamma, self.grad_beta]
        return []

    def bind(self, parameters: list[Array], gradients: list[Array]) -> None:
        if not self.elementwise_affine:
            super().bind(parameters, gradients)
            return
        gamma, beta = parameters
        if gamma.shape != self.gamma.shape or beta.shape != self.beta.shape:
            raise ValueError("bound arrays do not match the layer's shapes")
        gamma[...] = self.gamma
        beta[...] = self.beta
        self.gamma, self.beta = gamma, beta
        self.grad_gamma, self.grad_beta = gradients

    def config(self) -> dict[str, object]:
        shape = None if self.normalized_shape is None else list(self.normalized_shape)
        return {
            "type": "LayerNorm",
            "normalized_shape": shape,
            "eps": self.eps,
            "elementwise_affine": self.elementwise_affine,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any], dtype: DTypeLike = np.float64) -> LayerNorm:
        return cls(
            [int(size) for size in config["normalized_shape"]],
            eps=float(config["eps"]),
            elementwise_affine=bool(config["elementwise_affine"]),
            dtype=dtype,
        )

    @classmethod
    def chain(
        cls, config: Mapping[str, Any], input_shape: Shape | None
    ) -> tuple[Shape | None, int]:
        shape = tuple(int(size) for size in config["normalized_shape"])
        n_parameters = 2 * math.prod(shape) if config["elementwise_affine"] else 0
        if input_shape is None:
            return None, n_parameters
        input_shape = tuple(input_shape)
        if input_shape[len(input_shape) - len(shape) :] != shape:
            raise ValueError(
                f"LayerNorm normalises trailing axes of shape {shape} but the layer before "
                f"gives shape {input_shape}"
            )
        return input_shape, n_parameters

    def __repr__(self) -> str:
        shape = None if self.normalized_shape is None else list(self.normalized_shape)
        extra = "" if self.elementwise_affine else ", elementwise_affine=False"
        return f"LayerNorm({shape}{extra})"


LAYERS.register("BatchNorm", BatchNorm)
LAYERS.register("LayerNorm", LayerNorm)
