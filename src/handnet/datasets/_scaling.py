"""Feature scaling: :class:`Standardizer` and :func:`standardize`."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..exceptions import NotFittedError


def _as_2d_float(X: ArrayLike, name: str) -> NDArray[np.floating]:
    """``X`` as a 2-D float array; float32 stays float32, everything else becomes float64."""
    array = np.asarray(X)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
    if array.dtype != np.float32:
        array = array.astype(np.float64, copy=False)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features), got shape {array.shape}; "
            "reshape a single feature with X.reshape(-1, 1)"
        )
    return array


class Standardizer:
    r"""Scale each feature to zero mean and unit variance.

    ``fit`` learns, per feature :math:`j` over the :math:`n` training rows,

    .. math::

        \mu_j = \frac1n \sum_i X_{ij}, \qquad
        s_j = \sqrt{\frac1n \sum_i (X_{ij} - \mu_j)^2}
        \quad (\text{replaced by } 1 \text{ where the feature is constant}),

    and ``transform`` maps :math:`X_{ij} \mapsto (X_{ij} - \mu_j) / s_j`.
    A constant feature maps to exactly 0 instead of dividing by zero.

    The statistics are accumulated and stored in float64; ``transform`` and
    ``inverse_transform`` return float32 for float32 input and float64 otherwise.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,), float64
        :math:`\mu`.
    scale_ : ndarray of shape (n_features,), float64
        :math:`s`, never 0.
    n_features_in_ : int
        Number of features seen by ``fit``.
    """

    mean_: NDArray[np.float64]
    scale_: NDArray[np.float64]
    n_features_in_: int

    def fit(self, X: ArrayLike) -> Standardizer:
        """Learn ``mean_`` and ``scale_`` from ``X`` of shape (n_samples, n_features)."""
        array = _as_2d_float(X, "X")
        if array.shape[0] == 0:
            raise ValueError("cannot fit a Standardizer on 0 samples")
        if not np.all(np.isfinite(array)):
            raise ValueError("X contains NaN or infinity")
        mean = array.mean(axis=0, dtype=np.float64)
        scale = array.std(axis=0, dtype=np.float64)
        # Testing max == min rather than std == 0: the computed mean of a constant column
        # can be off by an ulp, giving a tiny nonzero std that would blow rounding error up.
        constant = array.max(axis=0) == array.min(axis=0)
        mean[constant] = array[0, constant]
        scale[constant] = 1.0
        self.mean_ = mean
        self.scale_ = scale
        self.n_features_in_ = array.shape[1]
        return self

    def _checked(self, X: ArrayLike) -> NDArray[np.floating]:
        if not hasattr(self, "mean_"):
            raise NotFittedError("this Standardizer is not fitted yet; call fit(X) first")
        array = _as_2d_float(X, "X")
        if array.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {array.shape[1]} features, but the Standardizer was fitted "
                f"on {self.n_features_in_}"
            )
        return array

    def transform(self, X: ArrayLike) -> NDArray[np.floating]:
        r"""Return :math:`(X - \mu) / s`, shape (n_samples, n_features)."""
        array = self._checked(X)
        return (array - self.mean_.astype(array.dtype)) / self.scale_.astype(array.dtype)

    def fit_transform(self, X: ArrayLike) -> NDArray[np.floating]:
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X)

    def inverse_transform(self, X: ArrayLike) -> NDArray[np.floating]:
        r"""Undo :meth:`transform`: return :math:`X s + \mu`."""
        array = self._checked(X)
        return array * self.scale_.astype(array.dtype) + self.mean_.astype(array.dtype)


def standardize(X_train: ArrayLike, *others: ArrayLike) -> tuple[NDArray[np.floating], ...]:
    r"""Standardise ``X_train`` and any further arrays with ``X_train``'s statistics.

    Fitting on the training set alone keeps test-set information out of training:
    every array is mapped by :math:`X \mapsto (X - \mu_{train}) / s_{train}`.

    Parameters
    ----------
    X_train : array_like of shape (n_train, d)
        The array the mean and scale are learnt from.
    *others : array_like of shape (n_k, d)
        Arrays transformed with the same statistics (validation, test...).

    Returns
    -------
    tuple of ndarray
        ``(X_train_scaled, *others_scaled)``, in the order given.
    """
    scaler = Standardizer().fit(X_train)
    return tuple(scaler.transform(X) for X in (X_train, *others))
