r"""Gradient checking: hand-written derivatives against finite differences.

Every backward pass in handnet is derived by hand, so each one is checked here
against the definition of the derivative. For a scalar function :math:`f` the
*central* difference

.. math:: \frac{\partial f}{\partial x_i} \approx
          \frac{f(x + \epsilon e_i) - f(x - \epsilon e_i)}{2\epsilon}

has truncation error :math:`O(\epsilon^2)` (the forward difference only
:math:`O(\epsilon)`) and a round-off error of about :math:`u\,|f| / \epsilon`
(:math:`u` the unit round-off), so with ``eps = 1e-6`` in float64 an analytic
gradient that is right typically agrees to a relative error of
:math:`10^{-8}`-:math:`10^{-10}`, while a wrong one is off by far more than
:math:`10^{-6}`. Checks are only meaningful in float64: in float32 the round-off
term alone is about :math:`10^{-1}` for ``eps = 1e-6``.

* :func:`numerical_gradient` - finite differences of any scalar function of an array;
* :func:`relative_error` - the norm-based distance between two gradients;
* :func:`gradcheck` - both at once for a function returning ``(value, gradient)``;
* :func:`check_activation`, :func:`check_loss`, :func:`check_network` - the same for
  handnet's activations, losses and whole networks (per layer parameter, with an
  L2 penalty and dropout held fixed).

Examples
--------
>>> import numpy as np
>>> from handnet.gradcheck import gradcheck
>>> result = gradcheck(lambda x: (float(np.sum(x**3)), 3 * x**2), np.array([1.0, -2.0]))
>>> result.passed()
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from .nn.activations import get_activation
from .nn.layers import Dropout, Layer, iter_layers
from .nn.losses import Loss, get_loss
from .nn.network import Sequential
from .nn.penalties import add_l2, l2_penalty

Array = NDArray[np.floating]

__all__ = [
    "GradcheckResult",
    "ParameterCheck",
    "check_activation",
    "check_loss",
    "check_network",
    "check_network_parameters",
    "gradcheck",
    "numerical_gradient",
    "relative_error",
]

DEFAULT_TOLERANCE = 1e-6
"""Relative error below which a float64 gradient is considered right."""


def numerical_gradient(fun: Callable[[Array], float], x: Array, eps: float = 1e-6) -> Array:
    r"""Central finite-difference gradient of a scalar function of an array.

    Parameters
    ----------
    fun : callable ``x -> float``
        The function; it is called with an array of the shape and dtype of ``x``
        (a private copy, perturbed one component at a time).
    x : ndarray of any shape
        The point; it is copied, never modified.
    eps : float, default 1e-6
        Half the width of the difference for components with :math:`|x_i| \le 1`;
        larger components are nudged by :math:`\epsilon |x_i|`, the same relative
        step (a fixed ``1e-6`` vanishes next to, say, ``4e11``, whose float64
        neighbours are ``6e-5`` apart).

    Returns
    -------
    ndarray of the shape of ``x``, float64
        :math:`(f(x + h_i e_i) - f(x - h_i e_i)) / (x_i^+ - x_i^-)` with
        :math:`h_i = \epsilon \max(1, |x_i|)` for every component :math:`i`,
        where :math:`x_i^\pm` are the perturbed values as actually stored (so the
        rounding of :math:`x_i \pm h_i` does not bias the quotient).

    Raises
    ------
    ValueError
        If ``eps`` is not positive, or so small that :math:`x_i + h_i` and
        :math:`x_i - h_i` round to the same number (the quotient would be 0 / 0).
    """
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps!r}")
    point = np.array(x, copy=True)
    if not np.issubdtype(point.dtype, np.floating):
        point = point.astype(np.float64)
    grad = np.zeros(point.shape, dtype=np.float64)
    for index in np.ndindex(*point.shape):
        original = point[index]
        if not np.isfinite(original):
            raise ValueError(f"component {index} of x is {float(original)!r}: finite "
                             "differences need finite values")
        # A step relative to the component's size: an absolute eps is lost in the
        # rounding of a large one (x + eps == x - eps), and the quotient becomes 0 / 0.
        step = eps * max(1.0, abs(float(original)))
        point[index] = original + step
        upper = point[index]
        point[index] = original - step
        lower = point[index]
        if not float(upper) > float(lower):
            raise ValueError(
                f"eps={eps!r} is too small for component {index} of x ({float(original)!r}): "
                f"x + h and x - h round to the same {point.dtype} number; use a larger eps"
            )
        point[index] = upper
        f_plus = float(fun(point))
        point[index] = lower
        f_minus = float(fun(point))
        point[index] = original
        grad[index] = (f_plus - f_minus) / (float(upper) - float(lower))
    return grad


def relative_error(analytic: Array, numeric: Array) -> float:
    r"""Relative distance :math:`\lVert a - n\rVert / \max(\lVert a\rVert, \lVert n\rVert)`.

    Parameters
    ----------
    analytic, numeric : ndarray of the same shape

    Returns
    -------
    float
        0 when both are zero; at most 2 otherwise (1 when one of them is zero).
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    if a.shape != n.shape:
        raise ValueError(f"shapes differ: analytic {a.shape}, numeric {n.shape}")
    # One norm-based ratio rather than the largest elementwise |a - n| / max(|a|, |n|):
    # components that are (nearly) zero, say 1e-12 analytically and 3e-11 from round-off
    # in the finite difference, would give elementwise ratios of order 1 for a gradient
    # that is right. Measured against the norm of the whole gradient, such components
    # only count for what they weigh. ``tiny`` keeps 0 / 0 (both zero) at 0.
    scale = max(float(np.linalg.norm(a)), float(np.linalg.norm(n)), np.finfo(np.float64).tiny)
    return float(np.linalg.norm(a - n)) / scale


@dataclass(frozen=True)
class GradcheckResult:
    """The outcome of :func:`gradcheck`.

    Attributes
    ----------
    max_relative_error : float
        :func:`relative_error` of the analytic against the numeric gradient (a
        single norm-based number for the whole gradient, hence the worst case the
        check has to pass).
    analytic : ndarray
        The gradient the function returned.
    numeric : ndarray
        The finite-difference gradient.
    """

    max_relative_error: float
    analytic: Array
    numeric: Array

    def passed(self, tol: float = DEFAULT_TOLERANCE) -> bool:
        """Whether the relative error is at most ``tol`` (and not NaN)."""
        return bool(self.max_relative_error <= tol)


def gradcheck(
    fun: Callable[[Array], tuple[float, Array]], x: Array, eps: float = 1e-6
) -> GradcheckResult:
    """Compare the gradient a function returns with finite differences.

    Parameters
    ----------
    fun : callable ``x -> (value, gradient)``
        ``gradient`` has the shape of ``x``.
    x : ndarray
        The point (not modified).
    eps : float, default 1e-6
        See :func:`numerical_gradient`.

    Returns
    -------
    GradcheckResult
    """
    _, grad = fun(np.array(x, copy=True))
    analytic = np.array(grad, dtype=np.float64, copy=True)
    numeric = numerical_gradient(lambda v: fun(v)[0], x, eps)
    return GradcheckResult(relative_error(analytic, numeric), analytic, numeric)


def check_activation(
    name: str, z: Array, upstream: Array | None = None, eps: float = 1e-6
) -> float:
    r"""Relative error of an activation's backward pass.

    The backward pass is a vector-Jacobian product, so it is checked on the scalar
    :math:`\phi(z) = \sum g \odot f(z)`, whose gradient is exactly
    ``backward(g, z, f(z))``. For softmax this covers the whole Jacobian, not only
    its diagonal.

    Parameters
    ----------
    name : str
        An activation of :mod:`handnet.nn.activations` (``"tanh"``, ``"softmax"``, ...).
    z : ndarray
        Pre-activations; avoid points where the function has a kink (ReLU at 0).
    upstream : ndarray of the shape of ``z``, optional
        The upstream gradient :math:`g`; standard normal (seed 0) by default.
    eps : float, default 1e-6

    Returns
    -------
    float
    """
    pair = get_activation(name)
    forward, backward = pair.forward, pair.backward
    z = np.asarray(z)
    g = np.random.default_rng(0).standard_normal(z.shape) if upstream is None else upstream
    g = np.asarray(g, dtype=z.dtype)

    def fun(v: Array) -> float:
        return float(np.sum(g * forward(v)))

    analytic = backward(g, z, forward(z))
    return relative_error(analytic, numerical_gradient(fun, z, eps))


def check_loss(
    loss: str | Loss,
    logits: Array,
    targets: Array,
    sample_weight: Array | None = None,
    eps: float = 1e-6,
) -> float:
    """Relative error of a loss's gradient with respect to the logits.

    The analytic gradient comes from ``loss(logits, targets, sample_weight)``; the
    numeric one differentiates ``loss.value`` (the separate monitoring code path),
    so a disagreement between the two values shows up here too.

    Parameters
    ----------
    loss : Loss or str
        A :class:`handnet.nn.losses.Loss` or its name.
    logits, targets : ndarray
    sample_weight : ndarray of shape (n_samples,), optional
    eps : float, default 1e-6

    Returns
    -------
    float
    """
    loss = get_loss(loss)
    _, analytic = loss(np.array(logits, copy=True), targets, sample_weight)
    numeric = numerical_gradient(lambda z: loss.value(z, targets, sample_weight), logits, eps)
    return relative_error(analytic, numeric)


# --- whole networks ----------------------------------------------------------------------


class _ReplayedDraws:
    """A stand-in for a dropout layer's generator that draws once and then replays.

    The first call of each kind (method name and arguments) is drawn from the real
    generator and remembered; every later identical call returns the same numbers.
    A :class:`~handnet.nn.layers.Dropout` using it therefore applies one fixed mask on
    every forward pass, while its own forward and backward code still run.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._draws: dict[tuple[str, str], Any] = {}

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._rng, name)

        def replay(*args: Any, **kwargs: Any) -> Any:
            key = (name, repr((args, sorted(kwargs.items()))))
            if key not in self._draws:
                self._draws[key] = method(*args, **kwargs)
            value = self._draws[key]
            return value.copy() if isinstance(value, np.ndarray) else value

        return replay


@contextmanager
def _fixed_dropout_masks(network: Sequential) -> Iterator[None]:
    """Make every dropout layer reuse its first mask; restore the generators after."""
    layers = [layer for layer in iter_layers(network.layers) if isinstance(layer, Dropout)]
    saved = [layer.rng for layer in layers]
    try:
        for layer in layers:
            # ``rng`` is the layer's public source of masks (see Sequential.set_random_state);
            # the replaying stand-in offers the same methods.
            layer.rng = cast(np.random.Generator, _ReplayedDraws(layer.rng))
        yield
    finally:
        for layer, rng in zip(layers, saved, strict=True):
            layer.rng = rng


def _parameter_names(layer: Layer) -> list[str]:
    """The attribute name of each of ``layer.parameters()`` (its index if it has none)."""
    names = []
    for index, parameter in enumerate(layer.parameters()):
        found = [key for key, value in vars(layer).items() if value is parameter]
        names.append(found[0] if found else str(index))
    return names


def _flat_indices(network: Sequential) -> dict[str, NDArray[np.intp]]:
    """For each layer parameter (keyed ``"i.Class.name"``), its indices in the flat vector.

    Found by writing ``0, 1, 2, ...`` into ``flat_parameters`` and reading every
    parameter back, which also checks that each one is a view of the flat vector.
    Leaves ``flat_parameters`` overwritten: the caller restores it.
    """
    flat = network.flat_parameters
    flat[...] = np.arange(flat.size, dtype=flat.dtype)
    indices: dict[str, NDArray[np.intp]] = {}
    for position, layer in enumerate(network.layers):
        for name, parameter in zip(_parameter_names(layer), layer.parameters(), strict=True):
            key = f"{position}.{type(layer).__name__}.{name}"
            index = np.asarray(parameter, dtype=np.float64).ravel().astype(np.intp)
            if not np.shares_memory(parameter, flat) or not np.array_equal(
                np.asarray(parameter, dtype=np.float64).ravel(), index
            ):
                raise ValueError(f"{key} is not a view of the network's flat_parameters")
            indices[key] = index
    return indices


#: How far above the estimated round-off an error may be and still be put down to it:
#: the estimate is a typical size, not a bound.
ROUND_OFF_MARGIN = 10.0


@dataclass(frozen=True)
class ParameterCheck:
    r"""The check of one layer parameter by :func:`check_network_parameters`.

    Attributes
    ----------
    relative_error : float
        :func:`relative_error` of the analytic against the numeric gradient.
    round_off : float
        The relative error that float64 round-off alone can cause: about
        :math:`4u\,|J| / h_i` per component (:math:`u` the unit round-off,
        :math:`J` the objective, :math:`h_i` the step), as a norm over the
        parameter, relative to the gradient's norm. Tiny for a network of
        ordinary scale; when it is above the tolerance (huge weights, a huge
        objective), finite differences cannot judge this gradient at all.
    """

    relative_error: float
    round_off: float

    def verdict(self, tol: float = DEFAULT_TOLERANCE) -> str:
        """``"ok"``, ``"FAILED"``, or ``"round-off"`` when the check cannot judge.

        ``"round-off"``: the error is above ``tol``, but round-off alone could
        exceed both ``tol`` and :data:`DEFAULT_TOLERANCE` (the precision a float64
        check normally reaches) *and* explains the error seen (it is at most
        :data:`ROUND_OFF_MARGIN` times the round-off), so finite differences
        cannot tell a wrong gradient from a right one here. An error far above
        what round-off can cause fails, however large the round-off; so does a
        tolerance set below what round-off allows on an ordinary network.
        """
        if self.relative_error <= tol:
            return "ok"
        unjudgeable = self.round_off > max(tol, DEFAULT_TOLERANCE)
        explained = self.relative_error <= ROUND_OFF_MARGIN * self.round_off
        return "round-off" if unjudgeable and explained else "FAILED"


def check_network(
    network: Sequential,
    loss: Loss | str,
    X: Array,
    Y: Array,
    l2: float = 0.0,
    sample_weight: Array | None = None,
    eps: float = 1e-6,
) -> dict[str, float]:
    r"""Check a network's backpropagation against finite differences, per parameter.

    The objective is the training objective of :class:`handnet.training`: the mean
    loss plus the L2 penalty on the weights (biases are not penalised),

    .. math:: J(\theta) = L(\text{net}_\theta(X), Y) + \tfrac{\alpha}{2}\lVert w\rVert^2

    Its analytic gradient (``network.backward`` then
    :func:`handnet.nn.penalties.add_l2`) is compared with central differences taken
    over ``network.flat_parameters``, one component at a time. Perturbing the flat
    vector (not the layers' arrays) also checks that the layers really use views
    of it. Dropout layers run in training mode with one fixed mask, drawn on the
    first forward pass and reused by every later one (their generator replays its
    draw); without that each evaluation would see another random function.

    Parameters
    ----------
    network : Sequential
        Should be float64: float32 finite differences are too noisy to check.
    loss : Loss or str
        A :class:`handnet.nn.losses.Loss` or its name.
    X : ndarray of shape (n_samples, n_features)
    Y : ndarray of shape (n_samples, n_outputs)
    l2 : float, default 0
        Strength :math:`\alpha` of the L2 penalty.
    sample_weight : ndarray of shape (n_samples,), optional
    eps : float, default 1e-6

    Returns
    -------
    dict of str to float
        The :func:`relative_error` of each layer parameter's gradient, keyed by
        layer index, layer class and parameter name: ``"0.Dense.weights"``,
        ``"0.Dense.bias"``, ``"2.Dense.weights"``, ...

    Notes
    -----
    The network's parameters and gradients are restored afterwards, and so are the
    dropout layers' generators (which have advanced by one draw per dropout layer).

    Two ways a right gradient can fail the check, both seen in practice:

    * a ReLU pre-activation exactly at 0, where the difference is one-sided. Zero
      biases put one there whenever a row's inputs to a layer are all 0 (all
      dropped, or all cut by a dead ReLU below): give the biases random values;
    * a parameter block whose gradient is tiny (biases under a deep sigmoid stack,
      about 1e-5), against which the round-off of the difference, about
      :math:`10^{-16}|J| / \epsilon`, is not negligible: use ``eps=1e-5``.

    :func:`check_network_parameters` also estimates that round-off for each
    parameter, to tell the second case from a wrong gradient.
    """
    checks = check_network_parameters(network, loss, X, Y, l2, sample_weight, eps)
    return {key: check.relative_error for key, check in checks.items()}


def check_network_parameters(
    network: Sequential,
    loss: Loss | str,
    X: Array,
    Y: Array,
    l2: float = 0.0,
    sample_weight: Array | None = None,
    eps: float = 1e-6,
) -> dict[str, ParameterCheck]:
    """:func:`check_network`, with the round-off each parameter's check can suffer.

    Parameters
    ----------
    network, loss, X, Y, l2, sample_weight, eps
        As for :func:`check_network`.

    Returns
    -------
    dict of str to ParameterCheck
        Keyed as :func:`check_network`'s result.
    """
    loss = get_loss(loss)
    saved_parameters = network.flat_parameters.copy()
    saved_gradients = network.flat_gradients.copy()
    try:
        indices = _flat_indices(network)
        network.flat_parameters[...] = saved_parameters
        with _fixed_dropout_masks(network):
            logits = network.forward(X, training=True)  # draws the dropout masks
            _, dlogits = loss(logits, Y, sample_weight)
            network.backward(dlogits)
            add_l2(network.weights, network.weight_gradients, l2)
            analytic = network.flat_gradients.astype(np.float64, copy=True)

            def objective(theta: Array) -> float:
                network.flat_parameters[...] = theta
                value = loss.value(network.forward(X, training=True), Y, sample_weight)
                return value + l2_penalty(network.weights, l2)

            numeric = numerical_gradient(objective, saved_parameters, eps)
            value = abs(objective(saved_parameters.copy()))
    finally:
        network.flat_parameters[...] = saved_parameters
        network.flat_gradients[...] = saved_gradients
    # Each f(x +- h) carries a round-off of a few u |J|; their difference over 2h then
    # errs by about 4 u |J| / h (the steps are those numerical_gradient takes).
    steps = eps * np.maximum(1.0, np.abs(saved_parameters.astype(np.float64)))
    noise = 4 * np.finfo(np.float64).eps * value / steps
    tiny = np.finfo(np.float64).tiny
    checks = {}
    for key, index in indices.items():
        scale = max(float(np.linalg.norm(analytic[index])),
                    float(np.linalg.norm(numeric[index])), tiny)
        checks[key] = ParameterCheck(
            relative_error=relative_error(analytic[index], numeric[index]),
            round_off=float(np.linalg.norm(noise[index])) / scale,
        )
    return checks
