"""handnet: neural networks whose every line of math is written by hand in NumPy."""

from .exceptions import ConvergenceWarning, DivergenceError, ModelFileError, NotFittedError
from .io import load, save
from .layers import Activation, Dense, Dropout, Layer
from .models import LogisticRegression, MLPClassifier, MLPRegressor, SoftmaxRegression
from .network import Sequential

__version__ = "0.1.0"

__all__ = [
    "Activation",
    "ConvergenceWarning",
    "Dense",
    "DivergenceError",
    "Dropout",
    "Layer",
    "LogisticRegression",
    "MLPClassifier",
    "MLPRegressor",
    "ModelFileError",
    "NotFittedError",
    "Sequential",
    "SoftmaxRegression",
    "__version__",
    "load",
    "save",
]
