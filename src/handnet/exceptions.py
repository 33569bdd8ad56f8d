"""The exceptions and warnings handnet raises."""

from __future__ import annotations

import sys
from typing import Any, TypeVar


class NotFittedError(ValueError, AttributeError):
    """A model was used before ``fit`` (same bases as scikit-learn's, so either catch works)."""


class ConvergenceWarning(UserWarning):
    """Training stopped before it converged.

    At ``max_iter`` before the loss met the ``tol`` criterion, or on a loss that
    oscillates instead of settling. Raised through :func:`sklearn_compatible`, so
    with scikit-learn imported it is also ``sklearn.exceptions.ConvergenceWarning``.
    """


class DivergenceError(FloatingPointError):
    """The loss or the parameters became non-finite during training.

    The model keeps the last finite parameters it had; the message names the
    likely cause (too large a learning rate, unscaled features).
    """


class ModelFileError(ValueError):
    """A model file is missing, corrupted, tampered with or of an unknown format."""


E = TypeVar("E", bound=BaseException)

_SKLEARN_TWINS: dict[type[BaseException], type[BaseException]] = {}


def _rebuild_compatible(
    cls: type[BaseException], args: tuple[Any, ...]
) -> BaseException:
    """Unpickle an exception made by :func:`sklearn_compatible` (in this process's terms)."""
    return sklearn_compatible(cls)(*args)


def sklearn_compatible(cls: type[E]) -> type[E]:
    """``cls``, or its twin that also subclasses scikit-learn's class of the same name.

    The twin is used only when ``sklearn.exceptions`` is already in
    ``sys.modules`` (the program imported scikit-learn); this function never
    imports it. The twin keeps ``cls``'s name and module, so messages and
    tracebacks read the same, and it pickles by rebuilding through this function
    (a process without scikit-learn gets the plain handnet class).

    Parameters
    ----------
    cls : exception or warning class
        A handnet class such as :class:`~handnet.exceptions.NotFittedError`.

    Returns
    -------
    type
        A subclass of ``cls`` (possibly ``cls`` itself).
    """
    module = sys.modules.get("sklearn.exceptions")
    sklearn_cls = getattr(module, cls.__name__, None) if module is not None else None
    if not isinstance(sklearn_cls, type) or issubclass(cls, sklearn_cls):
        return cls
    twin = _SKLEARN_TWINS.get(cls)
    if twin is None or not issubclass(twin, sklearn_cls):

        def __reduce__(self: BaseException) -> tuple[Any, ...]:
            return (_rebuild_compatible, (cls, self.args), self.__dict__ or None)

        twin = type(
            cls.__name__,
            (cls, sklearn_cls),
            {
                "__module__": cls.__module__,
                "__qualname__": cls.__qualname__,
                "__doc__": cls.__doc__,
                "__reduce__": __reduce__,
            },
        )
        _SKLEARN_TWINS[cls] = twin
    return twin  # type: ignore[return-value]
