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
    neural_net,
    optimizers,
    penalties,
    schedules,
    training,
)
from .exceptions import ConvergenceWarning, DivergenceError, ModelFileError, NotFittedError
from .io import load, save
from .layers import Activation, Dense, Dropout, Flatten, Layer, Reshape
from .models import LogisticRegression, MLPClassifier, MLPRegressor, SoftmaxRegression
from .network import Sequential, build_network
from .neural_net import NeuralNetClassifier, NeuralNetRegressor

__version__ = "0.1.0"

__all__ = [
    "Activation",
    "ConvergenceWarning",
    "Dense",
    "DivergenceError",
    "Dropout",
    "Flatten",
    "Layer",
    "LogisticRegression",
    "MLPClassifier",
    "MLPRegressor",
    "ModelFileError",
    "NeuralNetClassifier",
    "NeuralNetRegressor",
    "NotFittedError",
    "Reshape",
    "Sequential",
    "SoftmaxRegression",
    "__version__",
    "activations",
    "build_network",
    "datasets",
    "gradcheck",
    "initializers",
    "layers",
    "load",
    "losses",
    "neural_net",
    "optimizers",
    "penalties",
    "save",
    "schedules",
    "training",
]
