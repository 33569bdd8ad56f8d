"""Input checks shared by every public entry point.

Each check returns a clean NumPy array (never the caller's array modified) or
raises a ``ValueError``/``TypeError`` whose message says what is wrong and how to
fix it. The messages follow scikit-learn's wording where it has one, so users
(and scikit-learn's estimator checks) recognise them.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numpy.typing import NDArray

FLOAT_DTYPES = (np.float64, np.float32)


def _describe(X: Any) -> str:
    return f"{type(X).__name__}"


def _as_numeric(X: Any, name: str, dtype: Any) -> NDArray[Any]:
    """``np.asarray`` with clear errors for strings, objects and complex numbers."""
    if hasattr(X, "dtypes") and hasattr(X, "to_numpy"):  # pandas DataFrame / Series
        try:
            X = X.to_numpy()
        except Exception as error:  # pragma: no cover - pandas raises many kinds
            raise ValueError(f"could not convert {name} to a NumPy array: {error}") from None
    try:
        array = np.asarray(X)
    except Exception as error:
        raise ValueError(f"could not convert {name} to a NumPy array: {error}") from None
    if array.dtype.kind == "c":
        raise ValueError(
            f"Complex data not supported: {name} has dtype {array.dtype}; "
            "pass the real and imaginary parts as separate features"
        )
    if array.dtype.kind in "USV":
        raise ValueError(
            f"{name} contains strings (dtype {array.dtype}), but features must be numbers; "
            "encode categorical columns first (e.g. one-hot) or drop them"
        )
    if array.dtype.kind == "O":
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"{name} has dtype object and not every entry is a number ({error}); "
                "features must be numbers"
            ) from None
    if dtype is None:
        target = array.dtype if array.dtype in FLOAT_DTYPES else np.dtype(np.float64)
    else:
        target = np.dtype(dtype)
    return np.asarray(array, dtype=target)


def check_finite(array: NDArray[Any], name: str) -> None:
    """Raise a ``ValueError`` naming NaN or infinity if ``array`` holds any."""
    if array.dtype.kind != "f" or array.size == 0:
        return
    # One reduction over the data answers "all finite?"; only then look closer.
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(array, dtype=np.float64)) or np.isfinite(array).all():
            return
    if np.isnan(array).any():
        raise ValueError(
            f"Input {name} contains NaN. Remove or impute missing values before fitting "
            "(e.g. sklearn.impute.SimpleImputer)."
        )
    raise ValueError(
        f"Input {name} contains infinity or a value too large for dtype {array.dtype}. "
        "Remove or clip such values before fitting."
    )


def check_features(
    X: Any,
    name: str = "X",
    dtype: Any = None,
    n_features: int | None = None,
    min_samples: int = 1,
) -> NDArray[np.floating]:
    """Validate a feature matrix.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Lists, tuples, NumPy arrays (read-only or not contiguous) and pandas
        DataFrames are accepted.
    dtype : dtype, optional
        Convert to this dtype; by default float32 and float64 are kept and
        anything else becomes float64.
    n_features : int, optional
        The number of features the model was fitted with.
    min_samples : int
        Fewest rows accepted.

    Returns
    -------
    ndarray of shape (n_samples, n_features), floating
        The caller's array itself when it already qualifies (never written to),
        otherwise a converted copy.
    """
    if X is None:
        raise ValueError(f"{name} is None; pass an array of shape (n_samples, n_features)")
    array = _as_numeric(X, name, dtype)
    if array.ndim != 2:
        if array.ndim == 1:
            raise ValueError(
                f"Expected 2D array, got 1D array instead: {name} has shape {array.shape}. "
                "Reshape your data either using array.reshape(-1, 1) if your data has a "
                "single feature or array.reshape(1, -1) if it contains a single sample."
            )
        raise ValueError(
            f"Expected 2D array, got {array.ndim}D array instead: {name} has shape "
            f"{array.shape}; pass (n_samples, n_features)"
        )
    n_samples, n_cols = array.shape
    if n_samples < min_samples:
        raise ValueError(
            f"Found array with {n_samples} sample(s) (shape={array.shape}) while a minimum "
            f"of {min_samples} is required."
        )
    if n_cols == 0:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={array.shape}) while a minimum of 1 is required."
        )
    if n_features is not None and n_cols != n_features:
        raise ValueError(
            f"{name} has {n_cols} features, but this model was fitted with {n_features} "
            "features; pass data with the same columns as at fit time"
        )
    check_finite(array, name)
    return array


def check_target(
    y: Any, n_samples: int, name: str = "y", numeric: bool = False, allow_2d: bool = False
) -> NDArray[Any]:
    """Validate a target vector (or matrix, for multi-output regression).

    Checks the length against ``n_samples``, rejects NaN and infinity, and (with
    ``numeric``) non-numeric values. A column vector ``(n, 1)`` is flattened when
    ``allow_2d`` is false.
    """
    if y is None:
        raise ValueError(
            f"{name} is None; this model needs targets: call fit(X, y) with y of length n_samples"
        )
    if hasattr(y, "to_numpy"):
        y = y.to_numpy()
    array = np.asarray(y)
    if array.ndim == 0:
        raise ValueError(f"{name} must be 1D of length n_samples, got a scalar")
    if array.ndim == 2 and not allow_2d and array.shape[1] == 1:
        array = array.ravel()
    if array.ndim > (2 if allow_2d else 1):
        raise ValueError(
            f"{name} must be 1D (n_samples,){' or 2D (n_samples, n_outputs)' if allow_2d else ''}, "
            f"got shape {array.shape}"
        )
    if array.shape[0] != n_samples:
        raise ValueError(
            f"X and {name} have inconsistent numbers of samples: {n_samples} and {array.shape[0]}"
        )
    if numeric or array.dtype.kind in "fc":
        array = _as_numeric(array, name, None)
        check_finite(array, name)
    elif array.dtype.kind == "O":
        if any(v is None or (isinstance(v, float) and not np.isfinite(v)) for v in array.ravel()):
            raise ValueError(f"Input {name} contains NaN or None; remove or impute missing labels")
    return array


def check_sample_weight(sample_weight: Any, n_samples: int, dtype: Any) -> NDArray[np.floating] | None:
    """Validate ``sample_weight``: None, a scalar, or one non-negative weight per sample."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Number):
        weights = np.full(n_samples, float(sample_weight), dtype=dtype)  # type: ignore[arg-type]
    else:
        weights = _as_numeric(sample_weight, "sample_weight", dtype)
    if weights.ndim != 1 or weights.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight must have shape ({n_samples},), got {weights.shape}; "
            "pass one weight per sample"
        )
    check_finite(weights, "sample_weight")
    if (weights < 0).any():
        raise ValueError("sample_weight must be non-negative; negative weights are not supported")
    if not weights.any():
        raise ValueError("sample_weight sums to zero: at least one sample must have weight > 0")
    return weights


def check_positive(value: Any, name: str, integer: bool = False, allow_zero: bool = False) -> None:
    """Check a hyperparameter is a (positive) number, with a message naming it."""
    kinds = (numbers.Integral,) if integer else (numbers.Real,)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "an integer" if integer else "a number"
        raise TypeError(f"{name} must be {kind}, got {value!r} ({type(value).__name__})")
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
