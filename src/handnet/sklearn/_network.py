"""The drop-in's handnet network, built and initialised the way scikit-learn's MLP is."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from ..nn.initializers import sklearn_uniform
from ..nn.layers import Activation, Dense, Layer
from ..nn.network import Sequential
from ._params import _HIDDEN_ACTIVATIONS


def build_network(shapes: list[tuple[int, int]], activation: str, dtype: Any) -> Sequential:
    """Dense layers of the given weight shapes with the hidden activation between."""
    hidden = _HIDDEN_ACTIVATIONS[activation]
    layers: list[Layer] = []
    for position, (fan_in, fan_out) in enumerate(shapes):
        if position > 0 and hidden is not None:
            layers.append(Activation(hidden))
        layers.append(Dense(fan_in, fan_out, init="zeros", dtype=dtype))
    return Sequential(layers)


def dense_layers(network: Sequential) -> list[Dense]:
    """The network's :class:`~handnet.nn.layers.Dense` layers, in order."""
    return [layer for layer in network.layers if isinstance(layer, Dense)]


def initial_network(
    layer_units: list[int], activation: str, random_state: np.random.RandomState, dtype: Any
) -> Sequential:
    """A new network with weights *and biases* drawn as scikit-learn draws them.

    Layer by layer, weights then bias, from ``random_state``
    (:func:`~handnet.nn.initializers.sklearn_uniform`; factor 2 for the logistic
    activation, 6 otherwise): the same ``random_state`` gives scikit-learn's network.
    """
    factor = 2.0 if activation == "logistic" else 6.0
    shapes = list(itertools.pairwise(layer_units))
    network = build_network(shapes, activation, dtype)
    for layer in dense_layers(network):
        weights, bias = sklearn_uniform(
            layer.weights.shape[0], layer.weights.shape[1], random_state, dtype,
            factor=factor,
        )
        layer.weights[...] = weights
        layer.bias[...] = bias
    return network
