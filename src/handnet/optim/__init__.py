"""The update rules: how a gradient becomes a step.

=================  ==========================================================
module             what it holds
=================  ==========================================================
``base``           ``Optimizer``: per-parameter state, ``step``, checkpoint state
``optimizers``     the stepping rules (SGD, momentum, AdaGrad, RMSProp, Adam, ...),
                   each ``_update`` the formula of its docstring; ``OPTIMIZERS``
``lbfgs``          ``FullBatchOptimizer`` and ``LBFGS``: a line search over the full batch
``schedules``      the learning rate as a function of the epoch
=================  ==========================================================
"""
