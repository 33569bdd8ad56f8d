"""The math of a network: what it computes and the derivative of each piece.

Each module holds a kind of building block, its forward math beside its
backward, and the registry that names them:

=================  ==========================================================
module             what it holds
=================  ==========================================================
``activations``    elementwise nonlinearities and their derivatives
``losses``         losses computed from logits, and ``dlogits``
``penalties``      terms added to the loss for the weights (L2)
``initializers``   the starting weights
``layers``         ``Layer`` (parameters, buffers, training mode), ``Dense``, ...
``conv``           ``Conv2D`` and the pooling layers, over ``(n, C, H, W)``
``normalization``  ``BatchNorm`` and ``LayerNorm``
``residual``       ``Residual``: ``x + f(x)``, the one non-sequential block
``network``        ``Sequential``: layers in order, parameters bound in one buffer
=================  ==========================================================

The update rules that use these gradients are in :mod:`handnet.optim`, the loop
that drives them in :mod:`handnet.training`.
"""
