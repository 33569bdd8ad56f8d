"""handnet: neural networks whose every line of math is written by hand in NumPy."""

# The modules live in subpackages by role: the math in handnet.nn, the update rules
# in handnet.optim, the training loop in handnet.training, data in handnet.data,
# estimators in handnet.models, files in handnet.io, the command line in handnet.cli.
# The modules a user reaches as handnet.<name> are bound here (all NumPy only;
# handnet.plot, which needs matplotlib, and handnet.data.cluster, which needs dask,
# are imported on demand).
from . import _moved, datasets, gradcheck, training
from .exceptions import ConvergenceWarning, DivergenceError, ModelFileError, NotFittedError
from .io import load, save
from .models import (
    LogisticRegression,
    MLPClassifier,
    MLPRegressor,
    SoftmaxRegression,
    neural_net,
)
from .models.neural_net import NeuralNetClassifier, NeuralNetRegressor
from .nn import (
    activations,
    conv,
    initializers,
    layers,
    losses,
    normalization,
    penalties,
    residual,
)
from .nn.conv import AvgPool2D, Conv2D, GlobalAvgPool2D, MaxPool2D
from .nn.layers import Activation, Dense, Dropout, Flatten, Layer, ReLU, Reshape, Sigmoid, Tanh
from .nn.network import Sequential, build_network
from .nn.normalization import BatchNorm, LayerNorm
from .nn.residual import Residual
from .optim import optimizers, schedules

# The old flat paths (handnet.layers, handnet.optimizers, ...) stay importable.
_moved.install()

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
