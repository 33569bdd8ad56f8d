"""Input checks shared by every public entry point.

Each check returns a clean NumPy array (never the caller's array modified) or
raises a ``ValueError``/``TypeError`` whose message says what is wrong and how to
fix it. The messages follow scikit-learn's wording where it has one, so users
(and scikit-learn's estimator checks) recognise them.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..exceptions import sklearn_compatible

FLOAT_DTYPES = (np.float64, np.float32)


class DataConversionWarning(UserWarning):
    """The input had to be converted, e.g. a column-vector ``y`` was flattened.

    Named like scikit-learn's warning, whose role it plays; raised through
    :func:`~handnet.exceptions.sklearn_compatible` so that scikit-learn's filters match it.
    """


def _is_sparse(X: Any) -> bool:
    """A SciPy sparse matrix or array (recognised without importing SciPy)."""
    return type(X).__module__.startswith("scipy.sparse") and hasattr(X, "toarray")


def _describe(X: Any) -> str:
    return f"{type(X).__name__}"


def _from_pandas(X: Any, name: str) -> Any:
    """A pandas DataFrame or Series as a NumPy array, missing values as NaN or None.

    Nullable columns ("Int64", "Float64", "boolean", "string", ...) mark a
    missing entry with ``pd.NA``, which NumPy can neither compare nor convert to
    a float; as NaN (numbers) or None (labels) it gets the checks' "contains
    NaN" message instead of a conversion error.
    """
    dtypes = [X.dtype] if getattr(X, "ndim", 2) == 1 else list(X.dtypes)
    try:
        if all(isinstance(dtype, np.dtype) for dtype in dtypes):
            return X.to_numpy()
        numeric = all(getattr(dtype, "kind", "O") in "biuf" for dtype in dtypes)
        return X.to_numpy(na_value=np.nan if numeric else None)
    except Exception as error:  # pragma: no cover - pandas raises many kinds
        raise ValueError(f"could not convert {name} to a NumPy array: {error}") from None


def _as_numeric(X: Any, name: str, dtype: Any) -> NDArray[Any]:
    """``np.asarray`` with clear errors for strings, objects and complex numbers."""
    if _is_sparse(X):
        raise TypeError(
            f"Sparse data was passed for {name}, but dense data is required: handnet's "
            f"models work on dense arrays. Use {name}.toarray() to convert to a dense "
            "NumPy array."
        )
    if hasattr(X, "dtypes") and hasattr(X, "to_numpy"):  # pandas DataFrame / Series
        X = _from_pandas(X, name)
    try:
        array = np.asarray(X)
    except Exception as error:
        raise ValueError(
            f"could not convert {name} to a NumPy array (do all rows have the same "
            f"length?): {error}"
        ) from None
    # The advice differs for a feature matrix (X, X_val) and for y or sample_weight.
    features = name.startswith("X")
    if array.dtype.kind == "c":
        raise ValueError(
            f"Complex data not supported: {name} has dtype {array.dtype}; "
            + (
                "pass the real and imaginary parts as separate features"
                if features
                else f"{name} must hold real numbers"
            )
        )
    if array.dtype.kind in "USV":
        raise ValueError(
            f"{name} contains strings (dtype {array.dtype}), but it must hold numbers"
            + ("; encode categorical columns first (e.g. one-hot) or drop them" if features else "")
        )
    if array.dtype.kind == "O":
        try:
            array = array.astype(np.float64)
        except OverflowError:
            # A Python int beyond float64's range (about 1.8e308), e.g. 10**400.
            raise ValueError(
                f"{name} holds an integer too large for a float64 (beyond about 1.8e308); "
                "scale or clip it before fitting"
            ) from None
        except (TypeError, ValueError) as error:
            # Same exception type as NumPy's (a dict entry is a TypeError, the string
            # "abc" a ValueError), with NumPy's reason kept in the message.
            raise type(error)(
                f"{name} has dtype object and not every entry is a number ({error}); "
                f"{name} must hold numbers only"
            ) from None
    if array.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} has dtype {array.dtype}, but it must hold numbers (bool, int "
            "or float); convert dates and other types to numbers first"
        )
    if dtype is None:
        target = array.dtype if array.dtype in FLOAT_DTYPES else np.dtype(np.float64)
    else:
        target = np.dtype(dtype)
    # A float64 beyond float32's range becomes inf in a float32 model's input: no
    # RuntimeWarning here, check_finite then names the value as too large.
    with np.errstate(over="ignore"):
        return np.asarray(array, dtype=target)


def all_finite(array: NDArray[Any]) -> bool:
    """``np.isfinite(array).all()``, answered by one sum in the common case.

    A finite sum means every term is finite (a NaN or an infinity makes it
    non-finite); only a non-finite sum, which may also be the overflow of huge
    finite values, needs the elementwise test. The sum runs in the array's own
    dtype: it reads the data once, with no float32-to-float64 conversion and no
    boolean array the size of the data.
    """
    if array.size < 4096:
        # Small arrays (a linear model's parameters, checked every epoch): the
        # elementwise test costs less than entering np.errstate.
        return bool(np.isfinite(array).all())
    with np.errstate(over="ignore", invalid="ignore"):
        if math.isfinite(np.add.reduce(array, axis=None)):
            return True
    return bool(np.isfinite(array).all())


def check_finite(array: NDArray[Any], name: str) -> None:
    """Raise a ``ValueError`` naming NaN or infinity if ``array`` holds any."""
    if array.dtype.kind != "f" or array.size == 0 or all_finite(array):
        return
    if np.isnan(array).any():
        raise ValueError(
            f"Input {name} contains NaN. Remove or impute the missing values "
            "(e.g. sklearn.impute.SimpleImputer)."
        )
    raise ValueError(
        f"Input {name} contains infinity or a value too large for dtype {array.dtype}. "
        "Remove or clip such values."
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


def unique_labels(values: Any) -> NDArray[Any]:
    """The sorted distinct values of ``values`` (flattened): ``np.unique(values)`` for labels.

    Written out because NumPy 2's ``np.unique`` imports ``numpy.ma`` on its first call
    in a process (about 9 ms, a third of a small model's first fit). NaNs, which
    labels never hold (:func:`check_target` and the classifiers reject them), are
    collapsed into one, as ``np.unique`` does. Raises ``TypeError`` where the values
    do not sort together (strings and numbers), like ``np.unique``.
    """
    values = np.asarray(values)
    top = _small_integers_top(values)
    if top is not None:  # counted, not sorted: O(n) for the usual labels 0..k-1
        counts = np.bincount(values.ravel().astype(np.intp, copy=False), minlength=top + 1)
        return np.flatnonzero(counts).astype(values.dtype)
    ordered = np.sort(values, axis=None)
    if ordered.size < 2:
        return ordered
    first_of_run = np.empty(ordered.shape, dtype=bool)
    first_of_run[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first_of_run[1:])
    if ordered.dtype.kind in "fc" and ordered[-1] != ordered[-1]:  # NaNs sort last
        nan = np.isnan(ordered)
        first_of_run[1:] &= ~(nan[1:] & nan[:-1])
    return ordered[first_of_run]


def class_positions(classes: NDArray[Any], labels: NDArray[Any]) -> NDArray[np.intp]:
    """The position of each of ``labels`` in the sorted ``classes``; -1 for a label not there.

    Small non-negative integers (labels ``0 .. k-1``, the usual case) go through a
    lookup table, in one pass; other labels by binary search.
    """
    top = _small_integers_top(labels)
    if top is not None and classes.dtype.kind in "iu" and classes.size:
        top = max(top, int(classes.max()))
        if int(classes.min()) >= 0 and top < _lookup_limit(labels.size):
            lookup = np.full(top + 1, -1, dtype=np.intp)
            lookup[classes] = np.arange(classes.size)
            return lookup[labels]
    index = np.clip(np.searchsorted(classes, labels), 0, len(classes) - 1)
    index[classes[index] != labels] = -1
    return index


def _lookup_limit(n_values: int) -> int:
    """The largest label for which a table of every value up to it is worth it (O(n) memory)."""
    return max(1024, 4 * n_values)


def _small_integers_top(values: NDArray[Any]) -> int | None:
    """The largest of ``values`` if they are integers from 0 to under :func:`_lookup_limit`."""
    if values.dtype.kind not in "iu" or values.size == 0:
        return None
    low, high = int(values.min()), int(values.max())
    return high if low >= 0 and high < _lookup_limit(values.size) else None


def check_target(
    y: Any,
    n_samples: int,
    name: str = "y",
    numeric: bool = False,
    allow_2d: bool = False,
    x_name: str = "X",
) -> NDArray[Any]:
    """Validate a target vector (or matrix, for multi-output regression).

    Checks the length against ``n_samples``, rejects NaN and infinity, and (with
    ``numeric``) non-numeric values. A column vector ``(n, 1)`` is flattened when
    ``allow_2d`` is false. ``x_name`` names the features in the length message.
    """
    if y is None:
        raise ValueError(
            f"This model requires y to be passed, but the target {name} is None; "
            "call fit(X, y) with y of length n_samples"
        )
    if _is_sparse(y):
        raise TypeError(f"Sparse data was passed for {name}, but a dense array is required")
    if hasattr(y, "dtypes") and hasattr(y, "to_numpy"):  # pandas Series / DataFrame
        y = _from_pandas(y, name)
    elif hasattr(y, "to_numpy"):
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
            f"{x_name} and {name} have inconsistent numbers of samples: {n_samples} and "
            f"{array.shape[0]}"
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


def _check_real(value: Any, name: str, integer: bool = False) -> None:
    """A ``TypeError`` unless ``value`` is a number (an integer with ``integer``).

    Booleans and numeric strings are refused: ``"0.1"`` or ``True`` as a learning
    rate is a mistake to report, not a value to convert.
    """
    kinds = (numbers.Integral,) if integer else (numbers.Real,)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "an integer" if integer else "a number"
        raise TypeError(f"{name} must be {kind}, got {value!r} ({type(value).__name__})")


def check_positive(value: Any, name: str, integer: bool = False, allow_zero: bool = False) -> Any:
    """Check a hyperparameter is a finite (positive) number, with a message naming it.

    Returns the value as an ``int`` (``integer``) or a ``float``.
    """
    _check_real(value, name, integer)
    if not np.isfinite(float(value)) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        kind = "an integer" if integer else "a finite number"
        raise ValueError(f"{name} must be {kind} {bound}, got {value!r}")
    return int(value) if integer else float(value)


def check_interval(
    value: Any,
    name: str,
    low: float,
    high: float,
    left_closed: bool = False,
    right_closed: bool = False,
) -> float:
    """Check a hyperparameter is a number in an interval, e.g. a rate in ``[0, 1)``.

    A non-number is a ``TypeError``; a number outside (NaN included) a
    ``ValueError`` that shows the interval. Returns the value as a ``float``.
    """
    _check_real(value, name)
    above = value >= low if left_closed else value > low
    below = value <= high if right_closed else value < high
    if not (above and below):  # NaN fails both comparisons
        interval = f"{'[' if left_closed else '('}{low:g}, {high:g}{']' if right_closed else ')'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return float(value)


def check_random_state(random_state: Any) -> np.random.Generator:
    """``np.random.default_rng(random_state)`` with a clear error for values it would reject.

    Accepts None, a non-negative int seed or a ``numpy.random.Generator``.
    """
    if isinstance(random_state, np.random.RandomState):
        raise TypeError(
            "random_state must be an int, a numpy.random.Generator or None, got a legacy "
            "numpy.random.RandomState; use np.random.default_rng(seed) instead"
        )
    if isinstance(random_state, bool) or not (
        random_state is None or isinstance(random_state, (numbers.Integral, np.random.Generator))
    ):
        raise TypeError(
            "random_state must be an int, a numpy.random.Generator or None, "
            f"got {random_state!r} ({type(random_state).__name__})"
        )
    if isinstance(random_state, numbers.Integral):
        if int(random_state) < 0:
            raise ValueError(f"random_state must be a non-negative int seed, got {random_state}")
        return np.random.default_rng(int(random_state))
    return np.random.default_rng(random_state)


def check_class_weight(class_weight: Any) -> None:
    """``None``, ``"balanced"`` or a dict of finite, non-negative weights by label.

    (Whether the labels are classes can only be told once ``y`` is seen.)
    """
    if class_weight is None or (isinstance(class_weight, str) and class_weight == "balanced"):
        return
    if not isinstance(class_weight, dict):
        raise ValueError(
            f"class_weight must be None, 'balanced' or a dict {{label: weight}}, "
            f"got {class_weight!r}"
        )
    for label, weight in class_weight.items():
        _check_real(weight, f"class_weight[{label!r}]")
        if not (np.isfinite(float(weight)) and weight >= 0):
            raise ValueError(
                f"class_weight values must be finite and non-negative, got {weight!r} "
                f"for label {label!r}"
            )


def check_validation_data(
    validation_data: Any, numeric: bool, allow_2d: bool = False
) -> tuple[Any, NDArray[Any]]:
    """``fit``'s ``validation_data``: a pair ``(X_val, y_val)`` with ``y_val`` checked.

    ``y_val`` gets :func:`check_target`'s checks (length against ``X_val``, NaN,
    ``numeric`` for a regressor's targets) before training starts; unchecked,
    it would fail, or score NaN, only when the first epoch is scored. ``X_val``
    is left to the model, which checks it against the training features.
    """
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
        length = f" of length {len(validation_data)}" if hasattr(validation_data, "__len__") else ""
        raise ValueError(
            f"validation_data must be a pair (X_val, y_val), got "
            f"{type(validation_data).__name__}{length}"
        )
    X_val, y_val = validation_data
    if X_val is None:
        raise ValueError("validation_data's X_val is None; pass (X_val, y_val)")
    n_rows = _n_rows(X_val)
    if n_rows is None:  # a scalar: the model's check of X_val explains what is wrong
        return X_val, y_val
    return X_val, check_target(y_val, n_rows, "y_val", numeric, allow_2d, x_name="X_val")


def _n_rows(data: Any) -> int | None:
    """The number of rows of an array-like, read from its shape (nothing is loaded)."""
    shape = getattr(data, "shape", None)
    if shape is not None:
        # A Dask array of unknown chunk sizes has NaN there: not known without reading.
        rows = shape[0] if len(shape) > 0 else None
        return int(rows) if isinstance(rows, numbers.Integral) else None
    try:
        return len(data)
    except TypeError:
        return None


def check_score_inputs(
    y: Any,
    n_samples: int,
    sample_weight: Any,
    classes: NDArray[Any] | None = None,
    allow_2d: bool = False,
) -> tuple[NDArray[Any], NDArray[np.floating] | None]:
    """``score``'s ``y`` and ``sample_weight``, checked against the ``n_samples`` rows of X.

    Without it, a ``y`` of another length meets the predictions in a NumPy
    broadcasting error, NaN or negative weights give a NaN or meaningless score,
    and string labels compared with a model's integer classes (or the reverse)
    silently score 0. ``classes`` is a classifier's ``classes_``; without it
    ``y`` must be numbers (a regressor's targets).
    """
    if y is not None and not allow_2d and np.ndim(y) == 2 and np.shape(y)[1] == 1:
        y = np.ravel(y)  # a column vector scores like its 1D form (fit warns about it)
    targets = check_target(y, n_samples, numeric=classes is None, allow_2d=allow_2d)
    if classes is not None:
        kinds = {_label_kind(targets), _label_kind(classes)}
        if kinds == {"number", "text"}:
            raise ValueError(
                f"y holds labels of dtype {targets.dtype}, but the model's classes are "
                f"{classes.tolist()} (dtype {classes.dtype}): no label could ever match; "
                "pass labels of the kind given to fit"
            )
    weights = check_sample_weight(sample_weight, n_samples, np.float64)
    return targets, weights


def _label_kind(labels: NDArray[Any]) -> str:
    kind = labels.dtype.kind
    return "number" if kind in "biuf" else "text" if kind in "US" else "other"


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
