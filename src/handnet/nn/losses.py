r"""Losses computed from logits, each returning the mean loss and its gradient.

Every loss here takes the network's raw output (the *logits* ``z``, shape
``(n_samples, n_outputs)``) rather than probabilities: the log of a probability
that rounded to 0 is how hand-written nets produce ``inf`` and ``nan``. Written
in terms of logits the losses are finite for any finite input, and the gradient
through the output non-linearity fuses into the famous *prediction minus target*.

The loss is the (optionally weighted) **mean** over samples:

.. math:: L = \frac{\sum_i s_i \ell_i}{\sum_i s_i}

with sample weights :math:`s_i` (all 1 by default), so a sample weight of 2 is
the same as the sample repeated twice, and the step size of gradient descent
does not grow with the batch size.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..registry import Registry
from .activations import dense_kernels, log_softmax, sigmoid, softmax

Array = NDArray[np.floating]


def _normaliser(n_samples: int, sample_weight: Array | None) -> float:
    """The denominator of the weighted mean: ``n_samples`` or ``sum(sample_weight)``."""
    return float(n_samples) if sample_weight is None else float(np.sum(sample_weight))


def _weighted_mean(per_sample: Array, sample_weight: Array | None) -> float:
    """Weighted mean over the first axis of per-sample (or per-element) losses.

    Extra axes (e.g. one loss per output) are summed within each sample.
    """
    if sample_weight is None:
        # ndarray.sum, not np.mean: this runs once per training step, and np.mean's
        # Python-level wrapper costs more than the sum itself on small batches.
        return float(per_sample.sum()) / per_sample.shape[0]
    if per_sample.ndim > 1:
        per_sample = per_sample.sum(axis=tuple(range(1, per_sample.ndim)))
    return float(np.dot(sample_weight, per_sample) / np.sum(sample_weight))


def _scale_rows(d: Array, n_samples: int, sample_weight: Array | None) -> Array:
    """Divide the per-sample gradients by the normaliser, weighting each row."""
    denominator = _normaliser(n_samples, sample_weight)
    if sample_weight is None:
        d *= 1.0 / denominator
    else:
        # One weight per row, broadcast over the remaining axes (if any: 1-D logits
        # have none, and a (n, 1) column would broadcast them to (n, n)).
        column = (n_samples,) + (1,) * (d.ndim - 1)
        d *= (sample_weight / denominator).astype(d.dtype, copy=False).reshape(column)
    return d


def _as_float_pair(logits: Array, targets: Array) -> tuple[Array, Array]:
    """Logits as a float array and targets in the same dtype and shape.

    The gradient then has the logits' dtype (float32 logits with float64 targets
    would otherwise give a float64 gradient), and mismatched shapes, which would
    broadcast silently (``(n, 1)`` logits against ``(n,)`` targets give an
    ``(n, n)`` loss matrix), are refused.
    """
    logits = np.asarray(logits)
    if logits.dtype.kind != "f":
        logits = logits.astype(np.float64)
    targets = np.asarray(targets, dtype=logits.dtype)
    if targets.shape != logits.shape:
        raise ValueError(
            f"targets of shape {targets.shape} do not match logits of shape {logits.shape}"
        )
    return logits, targets


# --- binary cross-entropy ----------------------------------------------------------------


def binary_cross_entropy(
    logits: Array, targets: Array, sample_weight: Array | None = None
) -> tuple[float, Array]:
    r"""Binary cross-entropy of a sigmoid output, from the logits.

    For a logit :math:`z` and a target :math:`y \in \{0, 1\}` (or any value in
    :math:`[0, 1]`), with :math:`p = \sigma(z)`:

    .. math::

        \ell = -y \log p - (1 - y) \log(1 - p)
             = \big(\max(z, 0) - y z\big) + \log(1 + e^{-|z|})

    The right-hand form never overflows (``exp`` sees only ``-|z|``) and never
    takes ``log(0)``. It is added in the order of the brackets: for a confident
    right prediction (:math:`y = 1`, :math:`z \gg 0`) the bracket is exactly 0,
    so the loss keeps every digit of the small :math:`\log(1 + e^{-|z|})`. Its
    derivative is the prediction minus the target:

    .. math:: \frac{\partial \ell}{\partial z} = \sigma(z) - y

    Parameters
    ----------
    logits : ndarray of shape (n_samples, 1) or (n_samples,)
    targets : ndarray of the same shape as ``logits``
    sample_weight : ndarray of shape (n_samples,), optional

    Returns
    -------
    loss : float
        The weighted mean of :math:`\ell` over samples.
    dlogits : ndarray of the shape of ``logits``
        :math:`\partial L / \partial z`.
    """
    logits, targets = _as_float_pair(logits, targets)
    n_samples = logits.shape[0]
    e = np.abs(logits)
    np.negative(e, out=e)
    np.exp(e, out=e)  # e = exp(-|z|), in (0, 1]: shared by the loss and the sigmoid
    # max(z, 0) - y z first, log1p(e) last: for a confident right prediction the
    # first part is exactly 0 and the sum keeps log1p(e)'s digits (added the other
    # way, z + log1p(e) - z would round e.g. 3.45e-15 at z = 33.3 away to 0).
    terms = np.maximum(logits, 0.0)
    terms -= targets * logits
    terms += np.log1p(e)
    loss = _weighted_mean(terms, sample_weight)
    # sigmoid(z) = 1 / (1 + e) for z >= 0 and e / (1 + e) for z < 0, with e = exp(-|z|)
    dlogits = np.where(logits >= 0, 1.0, e)
    e += 1.0
    dlogits /= e
    dlogits -= targets
    return loss, _scale_rows(dlogits, n_samples, sample_weight)


def binary_cross_entropy_value(
    logits: Array, targets: Array, sample_weight: Array | None = None
) -> float:
    """The mean binary cross-entropy alone (no gradient): for monitoring."""
    logits, targets = _as_float_pair(logits, targets)
    terms = np.maximum(logits, 0.0)
    terms -= targets * logits
    terms += np.log1p(np.exp(-np.abs(logits)))  # last: see binary_cross_entropy
    return _weighted_mean(terms, sample_weight)


# --- softmax cross-entropy ---------------------------------------------------------------


def softmax_cross_entropy(
    logits: Array, targets: Array, sample_weight: Array | None = None
) -> tuple[float, Array]:
    r"""Cross-entropy of a softmax output, from the logits.

    For logits :math:`z \in \mathbb{R}^K` and a one-hot (or any probability)
    target :math:`y`, with :math:`p = \mathrm{softmax}(z)`:

    .. math::

        \ell = -\sum_k y_k \log p_k
             = \sum_k y_k \Big(\log\sum_j e^{z_j} - z_k\Big)

    where the log-sum-exp is computed with the row maximum subtracted. Since
    :math:`\partial \log\sum_j e^{z_j} / \partial z_k = p_k` and :math:`\sum_k y_k = 1`:

    .. math:: \frac{\partial \ell}{\partial z_k} = p_k - y_k

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_classes)
    targets : ndarray of shape (n_samples, n_classes)
        One-hot rows (see :func:`handnet.datasets.one_hot`) or probabilities.
    sample_weight : ndarray of shape (n_samples,), optional

    Returns
    -------
    loss : float
    dlogits : ndarray of shape (n_samples, n_classes)
    """
    logits, targets = _as_float_pair(logits, targets)
    n_samples = logits.shape[0]
    log_p = log_softmax(logits)
    loss = -_weighted_mean(targets * log_p, sample_weight)
    dlogits = np.exp(log_p)
    dlogits -= targets
    return loss, _scale_rows(dlogits, n_samples, sample_weight)


def softmax_cross_entropy_value(
    logits: Array, targets: Array, sample_weight: Array | None = None
) -> float:
    """The mean softmax cross-entropy alone (no gradient): for monitoring."""
    logits, targets = _as_float_pair(logits, targets)
    return -_weighted_mean(targets * log_softmax(logits), sample_weight)


# --- mean squared error ------------------------------------------------------------------


def mean_squared_error(
    outputs: Array, targets: Array, sample_weight: Array | None = None
) -> tuple[float, Array]:
    r"""Half squared error, summed over outputs and averaged over samples.

    .. math:: \ell = \tfrac12 \sum_k (z_k - y_k)^2, \qquad
              \frac{\partial \ell}{\partial z_k} = z_k - y_k

    The factor 1/2 (as in scikit-learn's ``MLPRegressor``) makes the gradient the
    plain residual: *prediction minus target* again.

    Parameters
    ----------
    outputs : ndarray of shape (n_samples, n_outputs)
    targets : ndarray of shape (n_samples, n_outputs)
    sample_weight : ndarray of shape (n_samples,), optional
    """
    outputs, targets = _as_float_pair(outputs, targets)
    n_samples = outputs.shape[0]
    residual = outputs - targets
    loss = 0.5 * _weighted_mean(residual * residual, sample_weight)
    return loss, _scale_rows(residual, n_samples, sample_weight)


def mean_squared_error_value(
    outputs: Array, targets: Array, sample_weight: Array | None = None
) -> float:
    """The mean half squared error alone (no gradient): for monitoring."""
    outputs, targets = _as_float_pair(outputs, targets)
    residual = outputs - targets
    return 0.5 * _weighted_mean(residual * residual, sample_weight)


# --- Poisson deviance --------------------------------------------------------------------


def _y_log_y(y: Array) -> Array:
    r""":math:`y \log y`, with :math:`0 \log 0 = 0`."""
    positive = y > 0
    result: Array = np.where(positive, y * np.log(np.where(positive, y, 1)), 0)
    return result.astype(y.dtype, copy=False)


def poisson_deviance(
    logits: Array, targets: Array, sample_weight: Array | None = None
) -> tuple[float, Array]:
    r"""Half the Poisson deviance of an exponential output (log link), from the logits.

    The output :math:`z` is the log of the predicted mean, :math:`\mu = e^z`. For a
    target :math:`y \ge 0` (a count, or any non-negative value):

    .. math::

        \ell = y \log\frac{y}{\mu} - y + \mu
             = e^z - y z + (y \log y - y)

    with :math:`0 \log 0 = 0`. The bracket does not depend on :math:`z`: it makes
    :math:`\ell = 0` at :math:`\mu = y` (scikit-learn's ``MLPRegressor(loss="poisson")``
    includes it). Written in :math:`z`, no log of a prediction is ever taken. The
    derivative is once more the prediction minus the target:

    .. math:: \frac{\partial \ell}{\partial z} = e^z - y

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_outputs)
    targets : ndarray of shape (n_samples, n_outputs), non-negative
    sample_weight : ndarray of shape (n_samples,), optional

    Returns
    -------
    loss : float
        The weighted mean over samples of :math:`\ell` summed over outputs.
    dlogits : ndarray of shape (n_samples, n_outputs)
    """
    logits, targets = _as_float_pair(logits, targets)
    n_samples = logits.shape[0]
    mean = np.exp(logits)
    terms = mean - targets * logits
    terms += _y_log_y(targets) - targets
    loss = _weighted_mean(terms, sample_weight)
    dlogits = mean - targets
    return loss, _scale_rows(dlogits, n_samples, sample_weight)


def poisson_deviance_value(
    logits: Array, targets: Array, sample_weight: Array | None = None
) -> float:
    """The mean half Poisson deviance alone (no gradient): for monitoring."""
    logits, targets = _as_float_pair(logits, targets)
    terms = np.exp(logits) - targets * logits
    terms += _y_log_y(targets) - targets
    return _weighted_mean(terms, sample_weight)


# --- loss objects ------------------------------------------------------------------------


class Loss:
    """A loss with its output link, as used by the models and the training loop.

    ``loss(logits, targets, sample_weight)`` returns ``(mean_loss, dlogits)``;
    ``loss.value(...)`` only the mean loss; ``loss.link(logits)`` turns logits
    into what the model outputs (probabilities or values).
    """

    name = "loss"

    def __call__(
        self, logits: Array, targets: Array, sample_weight: Array | None = None
    ) -> tuple[float, Array]:
        raise NotImplementedError

    def value(self, logits: Array, targets: Array, sample_weight: Array | None = None) -> float:
        raise NotImplementedError

    def link(self, logits: Array) -> Array:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class BinaryCrossEntropy(Loss):
    """Sigmoid + binary cross-entropy; see :func:`binary_cross_entropy`."""

    name = "binary_cross_entropy"

    def __call__(
        self, logits: Array, targets: Array, sample_weight: Array | None = None
    ) -> tuple[float, Array]:
        return binary_cross_entropy(logits, targets, sample_weight)

    def value(self, logits: Array, targets: Array, sample_weight: Array | None = None) -> float:
        return binary_cross_entropy_value(logits, targets, sample_weight)

    def link(self, logits: Array) -> Array:
        return sigmoid(logits)


class SoftmaxCrossEntropy(Loss):
    """Softmax + cross-entropy; see :func:`softmax_cross_entropy`."""

    name = "softmax_cross_entropy"

    def __call__(
        self, logits: Array, targets: Array, sample_weight: Array | None = None
    ) -> tuple[float, Array]:
        logits, targets = _as_float_pair(logits, targets)
        kernels = (
            dense_kernels(logits, targets)
            if sample_weight is None and logits.ndim == 2 and min(logits.shape) > 0 else None
        )
        if kernels is None:
            return softmax_cross_entropy(logits, targets, sample_weight)
        # The same math in one compiled pass (the NumPy function takes a dozen calls).
        dlogits = np.empty_like(logits)
        return kernels.softmax_cross_entropy(logits, targets, dlogits), dlogits

    def value(self, logits: Array, targets: Array, sample_weight: Array | None = None) -> float:
        return softmax_cross_entropy_value(logits, targets, sample_weight)

    def link(self, logits: Array) -> Array:
        return softmax(logits)


class MeanSquaredError(Loss):
    """Identity output + half squared error; see :func:`mean_squared_error`."""

    name = "mean_squared_error"

    def __call__(
        self, logits: Array, targets: Array, sample_weight: Array | None = None
    ) -> tuple[float, Array]:
        return mean_squared_error(logits, targets, sample_weight)

    def value(self, logits: Array, targets: Array, sample_weight: Array | None = None) -> float:
        return mean_squared_error_value(logits, targets, sample_weight)

    def link(self, logits: Array) -> Array:
        return logits


class PoissonDeviance(Loss):
    """Exponential output (log link) + half Poisson deviance; see :func:`poisson_deviance`."""

    name = "poisson_deviance"

    def __call__(
        self, logits: Array, targets: Array, sample_weight: Array | None = None
    ) -> tuple[float, Array]:
        return poisson_deviance(logits, targets, sample_weight)

    def value(self, logits: Array, targets: Array, sample_weight: Array | None = None) -> float:
        return poisson_deviance_value(logits, targets, sample_weight)

    def link(self, logits: Array) -> Array:
        return np.exp(logits)


LOSSES: Registry[type[Loss]] = Registry(
    "loss",
    [
        ("binary_cross_entropy", BinaryCrossEntropy),
        ("softmax_cross_entropy", SoftmaxCrossEntropy),
        ("mean_squared_error", MeanSquaredError),
        ("poisson_deviance", PoissonDeviance),
    ],
)
"""Loss classes by name (``LOSSES.register(name, cls)`` adds one)."""


def get_loss(loss: str | Loss) -> Loss:
    """A :class:`Loss` from its name (or the object itself)."""
    if isinstance(loss, Loss):
        return loss
    return LOSSES.lookup(loss)()
