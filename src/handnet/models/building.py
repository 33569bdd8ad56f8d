"""Building an estimator's network and its trainer from the hyperparameters.

``model`` below is the estimator (a :class:`~handnet.models.network_estimator._NetworkEstimator`,
typed loosely: that module imports this one).
"""

from __future__ import annotations

import copy
import itertools
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..nn.activations import get_activation
from ..nn.layers import Activation, Dense, Dropout, Layer
from ..nn.losses import Loss
from ..nn.network import Sequential
from ..nn.penalties import get_penalty
from ..optim.optimizers import get_optimizer
from ..optim.schedules import get_schedule
from ..training import Trainer


def _physical_memory() -> int | None:
    """The machine's memory in bytes, or ``None`` where the OS does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def check_network_size(model: Any, n_features: int, n_outputs: int, dtype: np.dtype[Any]) -> None:
    """Refuse layer sizes whose parameters cannot fit in memory, before allocating.

    Training holds about four copies of the parameters (values, gradients, an
    optimizer's state, the best epoch's); a network larger than the machine's
    memory would otherwise end in a ``MemoryError`` from deep inside NumPy, or
    in the system killing the process.
    """
    widths = [n_features, *model._hidden_layers(), n_outputs]
    n_parameters = sum((a + 1) * b for a, b in itertools.pairwise(widths))
    needed = 4 * n_parameters * np.dtype(dtype).itemsize
    available = _physical_memory()
    if available is not None and needed > available:
        raise ValueError(
            f"hidden_layer_sizes={getattr(model, 'hidden_layer_sizes', ())} with {n_features} "
            f"features make a network of {n_parameters:,} parameters, which needs about "
            f"{needed / 2**30:,.1f} GiB to train, more than this machine's "
            f"{available / 2**30:,.1f} GiB; use smaller layers"
        )


def dense_network(model: Any, n_features: int, n_outputs: int, dtype: np.dtype[Any]) -> Sequential:
    """``Dense -> activation [-> Dropout]`` per hidden layer, then a linear output layer."""
    check_network_size(model, n_features, n_outputs, dtype)
    rng = model._rng
    init = model.init
    if init == "auto":
        init = get_activation(model._hidden_activation()).initializer
    layers: list[Layer] = []
    n_inputs = n_features
    for width in model._hidden_layers():
        layers.append(Dense(n_inputs, width, init=init, random_state=rng, dtype=dtype))
        layers.append(Activation(model._hidden_activation()))
        if model._dropout_rate() > 0:
            layers.append(Dropout(model._dropout_rate(), random_state=rng))
        n_inputs = width
    if model._hidden_layers() and init == "zeros":
        _warn_dead_zeros(model._hidden_activation())
    # The output layer is linear: the loss applies the sigmoid/softmax to its logits.
    output_init = "xavier" if model._hidden_layers() and init == "zeros" else init
    layers.append(Dense(n_inputs, n_outputs, init=output_init, random_state=rng, dtype=dtype))
    return Sequential(layers)


def _warn_dead_zeros(activation: str) -> None:
    """Warn when zero hidden weights can never move: the activation's slope at 0 is 0.

    With all hidden weights 0 every hidden pre-activation is 0 (plus its bias), and
    the gradient of a hidden weight carries the activation's derivative there:
    for ReLU that is 0, so no hidden weight ever changes and the network stays a
    linear model of nothing (a constant). Smooth activations (tanh) still train,
    their units told apart by the output layer's random weights.
    """
    pair = get_activation(activation)
    slope = pair.backward(np.ones(1), np.zeros(1), pair.forward(np.zeros(1)))
    if float(slope[0]) == 0.0:
        warnings.warn(
            f"init='zeros' with hidden layers and activation={activation!r}: {activation}'s "
            "slope at 0 is 0, so no hidden weight will ever move from 0 and the network "
            "learns only a constant. Use init='auto' (the activation's own scheme) or "
            "'he'.",
            UserWarning,
            stacklevel=6,  # the user's fit: here, dense_network, the build, fit's steps
        )


def make_trainer(model: Any, network: Sequential, loss: Loss, callbacks: Sequence[Any]) -> Trainer:
    """The trainer of ``network``, with the model's optimizer, schedule and stopping rule."""
    # A user's optimizer or schedule object is trained as a copy: fitting must not
    # change the estimator's parameters (a schedule rewrites the optimizer's
    # learning_rate, ReduceOnPlateau keeps a scale), or a second fit would start
    # from the first one's decayed learning rate.
    optimizer = get_optimizer(copy.deepcopy(model._optimizer()), model._learning_rate())
    if not isinstance(model.optimizer, str):
        optimizer.reset()  # a user's object starts fresh for a fresh fit
    if optimizer.full_batch and network.draws_random_numbers(training=True):
        raise ValueError(
            "dropout needs a stochastic optimizer; L-BFGS is full-batch only and "
            "assumes the same function at every step"
        )
    return Trainer(
        network,
        loss,
        optimizer,
        model._rng,
        batch_size=None,  # set per fit from the data size
        schedule=get_schedule(copy.deepcopy(model.schedule), model.max_iter),
        penalty=get_penalty(model.penalty, model.alpha),
        clip_norm=model.clip_norm,
        tol=model.tol,
        n_iter_no_change=model.n_iter_no_change,
        shuffle=model.shuffle,
        callbacks=callbacks,
    )
