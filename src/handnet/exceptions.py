"""The exceptions and warnings handnet raises."""

from __future__ import annotations


class NotFittedError(ValueError, AttributeError):
    """A model was used before ``fit`` (same bases as scikit-learn's, so either catch works)."""


class ConvergenceWarning(UserWarning):
    """Training stopped at ``max_iter`` before the loss met the ``tol`` criterion."""


class DivergenceError(FloatingPointError):
    """The loss or the parameters became non-finite during training.

    The model keeps the last finite parameters it had; the message names the
    likely cause (too large a learning rate, unscaled features).
    """


class ModelFileError(ValueError):
    """A model file is missing, corrupted, tampered with or of an unknown format."""
