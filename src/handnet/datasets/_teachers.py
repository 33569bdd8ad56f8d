"""The seed's teachers: Gaussian features labelled by a logistic or a softmax model.

:func:`make_logistic` (with the tutorial's :data:`TEACHER_WEIGHTS` and
:data:`TEACHER_BIAS`) and :func:`make_softmax`, data whose generating model a
one-layer network can recover exactly.
"""

from __future__ import annotations

import math
import numbers
from typing import Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..data.validation import check_random_state as _rng  # shared with the models
from ..nn.activations import sigmoid, softmax
from ._checks import RandomState, _check_int, _finite_float_array

TEACHER_WEIGHTS: NDArray[np.float64] = np.array([0.3, 0.6, -0.7, -1.3])
"""Weights :math:`w \\in \\mathbb R^4` of the tutorial seed experiment's logistic teacher."""
# The array is the default argument of make_logistic, so an accidental in-place edit by a
# caller would silently change every later default data set.
TEACHER_WEIGHTS.setflags(write=False)

TEACHER_BIAS: float = 0.2
"""Bias :math:`b` of the tutorial seed experiment's logistic teacher."""


def make_logistic(
    n_samples: int = 1000,
    w: ArrayLike = TEACHER_WEIGHTS,
    b: float = TEACHER_BIAS,
    labels: str = "round",
    random_state: RandomState = None,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    r"""Gaussian features labelled by a logistic-regression teacher.

    .. math::

        x_i \sim \mathcal N(0, I_d), \qquad p_i = \sigma(x_i \cdot w + b),
        \qquad \sigma(z) = \frac{1}{1 + e^{-z}}

    and, depending on ``labels``,

    * ``"round"``: :math:`y_i = \operatorname{round}(p_i) = [x_i \cdot w + b > 0]`
      (noise-free: the classes are linearly separable by the teacher's hyperplane);
    * ``"bernoulli"``: :math:`y_i \sim \operatorname{Bernoulli}(p_i)`, drawn as
      :math:`y_i = [u_i < p_i]` with :math:`u_i \sim U[0, 1)` (label noise as a
      real logistic model has it).

    The rounded labels are computed from the sign of the logit rather than by
    rounding :math:`\sigma`, because :math:`\sigma(z)` rounds to exactly 0.5 in
    floating point for tiny positive :math:`z`, where ``np.round`` would say 0.

    Parameters
    ----------
    n_samples : int, default 1000
        Number of rows ``n`` (0 gives empty arrays).
    w : array_like of shape (d,), default :data:`TEACHER_WEIGHTS`
        Teacher weights; ``d = len(w)`` is the number of features.
    b : float, default :data:`TEACHER_BIAS`
        Teacher bias.
    labels : {"round", "bernoulli"}, default "round"
        How logits become labels (see above).
    random_state : int, numpy.random.Generator or None
        Seed or generator. ``X`` is drawn first, then the Bernoulli uniforms,
        from the same generator, so a seed fixes both.

    Returns
    -------
    X : ndarray of shape (n, d), float64
        Standard normal features.
    y : ndarray of shape (n,), int64
        Labels in ``{0, 1}``.
    """
    n = _check_int(n_samples, "n_samples", 0)
    weights = _finite_float_array(w, "w")
    if weights.ndim != 1 or weights.size == 0:
        raise ValueError(f"w must be a non-empty 1-D array of weights, got shape {weights.shape}")
    if isinstance(b, bool) or not isinstance(b, numbers.Real) or not math.isfinite(b):
        raise ValueError(f"b must be a finite number, got {b!r}")
    if labels not in ("round", "bernoulli"):
        raise ValueError(f"labels must be 'round' or 'bernoulli', got {labels!r}")
    rng = _rng(random_state)

    X = rng.standard_normal((n, weights.size))
    z = X @ weights + float(b)
    y = z > 0 if labels == "round" else rng.random(n) < sigmoid(z)
    return X, y.astype(np.int64)


@overload
def make_softmax(
    n_samples: int = ...,
    n_features: int | None = ...,
    n_classes: int | None = ...,
    labels: str = ...,
    weights: ArrayLike | None = ...,
    bias: ArrayLike | None = ...,
    random_state: RandomState = ...,
    *,
    return_teacher: Literal[False] = ...,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]: ...


@overload
def make_softmax(
    n_samples: int = ...,
    n_features: int | None = ...,
    n_classes: int | None = ...,
    labels: str = ...,
    weights: ArrayLike | None = ...,
    bias: ArrayLike | None = ...,
    random_state: RandomState = ...,
    *,
    return_teacher: Literal[True],
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]: ...


def make_softmax(
    n_samples: int = 1000,
    n_features: int | None = None,
    n_classes: int | None = None,
    labels: str = "argmax",
    weights: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    random_state: RandomState = None,
    *,
    return_teacher: bool = False,
) -> (
    tuple[NDArray[np.float64], NDArray[np.int64]]
    | tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]
):
    r"""Gaussian features labelled by a softmax-regression teacher.

    .. math::

        x_i \sim \mathcal N(0, I_d), \qquad z_i = x_i W + b \in \mathbb R^K, \qquad
        p_{ik} = \frac{e^{z_{ik}}}{\sum_j e^{z_{ij}}}

    and, depending on ``labels``,

    * ``"argmax"``: :math:`y_i = \arg\max_k z_{ik}` (noise-free);
    * ``"sample"``: :math:`y_i \sim \operatorname{Categorical}(p_i)`, by inverse
      CDF with one uniform per row: with :math:`C_{ik} = \sum_{j \le k} p_{ij}`
      and :math:`u_i \sim U[0, 1)`, :math:`y_i = \#\{k < K-1 : C_{ik} \le u_i\}`,
      so :math:`P(y_i = k) = C_{ik} - C_{i,k-1} = p_{ik}`.

    Parameters
    ----------
    n_samples : int, default 1000
        Number of rows ``n``.
    n_features : int, optional
        Number of features ``d``; defaults to ``weights.shape[0]`` when ``weights``
        is given, else 4.
    n_classes : int, optional
        Number of classes ``K >= 2``; defaults to ``weights.shape[1]`` (or
        ``len(bias)``) when given, else 3.
    labels : {"argmax", "sample"}, default "argmax"
        How logits become labels (see above).
    weights : array_like of shape (d, K), optional
        Teacher weights; drawn :math:`W_{jk} \sim \mathcal N(0, 1)` when omitted.
    bias : array_like of shape (K,), optional
        Teacher bias; drawn :math:`b_k \sim \mathcal N(0, 1)` when ``weights`` is
        also omitted, zero when only ``weights`` is given.
    random_state : int, numpy.random.Generator or None
        Seed or generator. Draw order: ``W``, ``b`` (those not given), ``X``, the
        uniforms.
    return_teacher : bool, default False
        Also return the teacher's ``W`` and ``b``.

    Returns
    -------
    X : ndarray of shape (n, d), float64
    y : ndarray of shape (n,), int64
        Labels in ``0 .. K-1``.
    W : ndarray of shape (d, K), float64
        Only with ``return_teacher=True`` (a copy, never the caller's array).
    b : ndarray of shape (K,), float64
        Only with ``return_teacher=True``.
    """
    n = _check_int(n_samples, "n_samples", 0)
    if labels not in ("argmax", "sample"):
        raise ValueError(f"labels must be 'argmax' or 'sample', got {labels!r}")
    W, b, d, k = _softmax_teacher_args(n_features, n_classes, weights, bias)
    rng = _rng(random_state)

    if W is None:
        W = rng.standard_normal((d, k))
        if b is None:
            b = rng.standard_normal(k)
    elif b is None:
        b = np.zeros(k)
    X = rng.standard_normal((n, d))
    z = X @ W + b
    if labels == "argmax":
        y = np.argmax(z, axis=1)
    else:
        cdf = np.cumsum(softmax(z, axis=1), axis=1)
        u = rng.random((n, 1))
        # The last column is left out: rounding can make C_{i,K-1} a hair below 1, and a
        # uniform above it would otherwise produce the out-of-range label K.
        y = np.sum(cdf[:, :-1] <= u, axis=1)
    y = y.astype(np.int64)
    if return_teacher:
        return X, y, W, b
    return X, y


def _softmax_teacher_args(
    n_features: int | None,
    n_classes: int | None,
    weights: ArrayLike | None,
    bias: ArrayLike | None,
) -> tuple[NDArray[np.float64] | None, NDArray[np.float64] | None, int, int]:
    """:func:`make_softmax`'s teacher arguments, checked: ``(W, b, d, K)``.

    ``W`` and ``b`` are float64 copies of those given (``None`` for those to draw),
    ``d`` and ``K`` the numbers of features and classes they agree with.
    """
    W = None if weights is None else _finite_float_array(weights, "weights").copy()
    b = None if bias is None else _finite_float_array(bias, "bias").copy()
    if W is not None and W.ndim != 2:
        raise ValueError(f"weights must be 2-D (n_features, n_classes), got shape {W.shape}")
    if b is not None and b.ndim != 1:
        raise ValueError(f"bias must be 1-D (n_classes,), got shape {b.shape}")

    if n_features is None:
        n_features = W.shape[0] if W is not None else 4
    if n_classes is None:
        n_classes = W.shape[1] if W is not None else (b.size if b is not None else 3)
    d = _check_int(n_features, "n_features", 1)
    k = _check_int(n_classes, "n_classes", 2)
    if W is not None and W.shape != (d, k):
        raise ValueError(
            f"weights has shape {W.shape}, but n_features={d} and n_classes={k} "
            f"need shape ({d}, {k})"
        )
    if b is not None and b.shape != (k,):
        raise ValueError(f"bias has shape {b.shape}, but n_classes={k} needs shape ({k},)")
    return W, b, d, k
