"""handnet: neural networks whose every line of math is written by hand in NumPy."""

# The modules a user reaches as handnet.<name> (all NumPy only; handnet.plot, which
# needs matplotlib, and handnet.cluster, which needs dask, are imported on demand).
from . import (
    activations,
    datasets,
    gradcheck,
    initializers,
    layers,
    losses,
    optimizers,
    penalties,
    schedules,
    training,
)
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
    "activations",
    "datasets",
    "gradcheck",
    "initializers",
    "layers",
    "load",
    "losses",
    "optimizers",
    "penalties",
    "save",
    "schedules",
    "training",
]
