"""Input checks shared by every public entry point.

Each check returns a clean NumPy array (never the caller's array modified) or
raises a ``ValueError``/``TypeError`` whose message says what is wrong and how to
fix it. The messages follow scikit-learn's wording where it has one, so users
(and scikit-learn's estimator checks) recognise them.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .base import sklearn_compatible

FLOAT_DTYPES = (np.float64, np.float32)


class DataConversionWarning(UserWarning):
    """The input had to be converted, e.g. a column-vector ``y`` was flattened.

    Named like scikit-learn's warning, whose role it plays; raised through
    :func:`~handnet.base.sklearn_compatible` so that scikit-learn's filters match it.
    """


def _is_sparse(X: Any) -> bool:
    """A SciPy sparse matrix or array (recognised without importing SciPy)."""
    return type(X).__module__.startswith("scipy.sparse") and hasattr(X, "toarray")


def _describe(X: Any) -> str:
    return f"{type(X).__name__}"


def _as_numeric(X: Any, name: str, dtype: Any) -> NDArray[Any]:
    """``np.asarray`` with clear errors for strings, objects and complex numbers."""
    if _is_sparse(X):
        raise TypeError(
            f"Sparse data was passed for {name}, but dense data is required: handnet's "
            f"models work on dense arrays. Use {name}.toarray() to convert to a dense "
            "NumPy array."
        )
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
            # Same exception type as NumPy's (a dict entry is a TypeError, the string
            # "abc" a ValueError), with NumPy's reason kept in the message.
            raise type(error)(
                f"{name} has dtype object and not every entry is a number ({error}); "
                "features must be numbers"
            ) from None
    if array.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} has dtype {array.dtype}, but features must be numbers (bool, int "
            "or float); convert dates and other types to numbers first"
        )
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
    estimator_name: str = "the model",
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
    estimator_name : str, optional
        The model's class name, for the message when ``n_features`` differs.

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
        # scikit-learn's wording, which its estimator checks look for.
        raise ValueError(
            f"{name} has {n_cols} features, but {estimator_name} is expecting {n_features} "
            "features as input (it was fitted on that many); pass data with the same "
            "columns as at fit time"
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
            f"This model requires y to be passed, but the target {name} is None; "
            "call fit(X, y) with y of length n_samples"
        )
    if _is_sparse(y):
        raise TypeError(f"Sparse data was passed for {name}, but a dense array is required")
    if hasattr(y, "to_numpy"):
        y = y.to_numpy()
    array = np.asarray(y)
    if array.ndim == 0:
        raise ValueError(f"{name} must be 1D of length n_samples, got a scalar")
    if array.ndim == 2 and not allow_2d and array.shape[1] == 1:
        warnings.warn(
            f"A column-vector {name} was passed when a 1d array was expected. Please change "
            f"the shape of {name} to (n_samples,), for example using ravel().",
            sklearn_compatible(DataConversionWarning),
            stacklevel=5,  # check_target <- _check_y <- _fit <- fit <- the caller
        )
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
    elif array.dtype.kind == "O" and any(
        v is None or (isinstance(v, float) and not np.isfinite(v)) for v in array.ravel()
    ):
        raise ValueError(f"Input {name} contains NaN or None; remove or impute missing labels")
    return array


def check_sample_weight(
    sample_weight: Any, n_samples: int, dtype: Any
) -> NDArray[np.floating] | None:
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
    if not np.isfinite(float(value)) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}")


def get_feature_names(X: Any) -> NDArray[np.object_] | None:
    """The column names of a DataFrame when they are all strings, else ``None``.

    Follows scikit-learn's rule: names that mix strings with other types are an
    error (a ``TypeError``), names that are all non-strings (e.g. the integers
    pandas uses by default) are ignored.
    """
    columns = getattr(X, "columns", None)
    if columns is None or _is_sparse(X) or isinstance(X, np.ndarray):
        return None
    names = np.asarray(list(columns), dtype=object)
    if names.ndim != 1 or len(names) == 0:
        return None
    types = sorted({type(v).__qualname__ for v in names})
    if len(types) > 1 and "str" in types:
        raise TypeError(
            "Feature names are only supported if all input features have string names, "
            f"but your input has {types} as feature name / column name types. If you want "
            "feature names to be stored and validated, you must convert them all to "
            "strings, by using X.columns = X.columns.astype(str) for example. Otherwise "
            "you can remove feature / column names from your input data, or convert them "
            "all to a non-string data type."
        )
    return names if types == ["str"] else None


def check_feature_names(
    fitted: NDArray[np.object_] | None, X: Any, estimator_name: str
) -> None:
    """Compare ``X``'s column names with those seen at fit time (scikit-learn's rules).

    Names in a different order, unseen or missing are a ``ValueError`` that lists
    them; names on one side only are a ``UserWarning`` (data passed without its
    names, or a DataFrame given to a model fitted on an array).
    """
    names = get_feature_names(X)
    if fitted is None and names is None:
        return
    if fitted is None:
        warnings.warn(
            f"X has feature names, but {estimator_name} was fitted without feature names",
            UserWarning,
            stacklevel=5,
        )
        return
    if names is None:
        warnings.warn(
            f"X does not have valid feature names, but {estimator_name} was fitted with "
            "feature names",
            UserWarning,
            stacklevel=5,
        )
        return
    if len(fitted) == len(names) and np.all(fitted == names):
        return

    def listing(values: list[Any]) -> str:
        shown = [f"- {value}\n" for value in values[:5]]
        return "".join(shown) + ("- ...\n" if len(values) > 5 else "")

    unseen = sorted(set(names) - set(fitted))
    missing = sorted(set(fitted) - set(names))
    message = "The feature names should match those that were passed during fit.\n"
    if unseen:
        message += "Feature names unseen at fit time:\n" + listing(unseen)
    if missing:
        message += "Feature names seen at fit time, yet now missing:\n" + listing(missing)
    if not unseen and not missing:
        message += "Feature names must be in the same order as they were in fit.\n"
    raise ValueError(message)
