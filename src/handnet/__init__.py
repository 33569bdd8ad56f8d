"""handnet: neural networks whose every line of math is written by hand in NumPy."""

# The modules a user reaches as handnet.<name> (all NumPy only; handnet.plot, which
# needs matplotlib, and handnet.cluster, which needs dask, are imported on demand).
from . import (
    activations,
    conv,
    datasets,
    gradcheck,
    initializers,
    layers,
    losses,
    neural_net,
    normalization,
    optimizers,
    penalties,
    residual,
    schedules,
    training,
)
from .conv import AvgPool2D, Conv2D, GlobalAvgPool2D, MaxPool2D
from .exceptions import ConvergenceWarning, DivergenceError, ModelFileError, NotFittedError
from .io import load, save
from .layers import Activation, Dense, Dropout, Flatten, Layer, ReLU, Reshape, Sigmoid, Tanh
from .models import LogisticRegression, MLPClassifier, MLPRegressor, SoftmaxRegression
from .network import Sequential, build_network
from .neural_net import NeuralNetClassifier, NeuralNetRegressor
from .normalization import BatchNorm, LayerNorm
from .residual import Residual

__version__ = "0.1.0"

__all__ = [
    "Activation",
    "AvgPool2D",
    "BatchNorm",
    "Conv2D",
    "ConvergenceWarning",
    "Dense",
    "DivergenceError",
    "Dropout",
    "Flatten",
    "GlobalAvgPool2D",
    "Layer",
    "LayerNorm",
    "LogisticRegression",
    "MLPClassifier",
    "MLPRegressor",
    "MaxPool2D",
    "ModelFileError",
    "NeuralNetClassifier",
    "NeuralNetRegressor",
    "NotFittedError",
    "ReLU",
    "Reshape",
    "Residual",
    "Sequential",
    "Sigmoid",
    "SoftmaxRegression",
    "Tanh",
    "__version__",
    "activations",
    "build_network",
    "conv",
    "datasets",
    "gradcheck",
    "initializers",
    "layers",
    "load",
    "losses",
    "neural_net",
    "normalization",
    "optimizers",
    "penalties",
    "residual",
    "save",
    "schedules",
    "training",
]
