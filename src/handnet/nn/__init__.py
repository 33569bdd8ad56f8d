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
``conv``           ``Conv2D`` over ``(n, C, H, W)``: im2col (or by kernel rows) and GEMM
``im2col``         the convolution's geometry, padding, im2col/col2im, memory chunks
``im2row``         the convolution by kernel rows: whole image rows, shifted sums
``parallel``       threads over the samples of a batch, reused work buffers
``pooling``        ``MaxPool2D``, ``AvgPool2D``, ``GlobalAvgPool2D``
``normalization``  ``BatchNorm`` and ``LayerNorm``
``residual``       ``Residual``: ``x + f(x)``, the one non-sequential block
``network``        ``Sequential``: layers in order, parameters bound in one buffer
=================  ==========================================================

The update rules that use these gradients are in :mod:`handnet.optim`, the loop
that drives them in :mod:`handnet.training`.
"""
