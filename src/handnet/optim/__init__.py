"""The update rules: how a gradient becomes a step.

=================  ==========================================================
module             what it holds
=================  ==========================================================
``optimizers``     ``Optimizer.step`` over (parameter, gradient) pairs, each
                   class calling one pure update function (SGD, Adam, L-BFGS, ...)
``schedules``      the learning rate as a function of the epoch
=================  ==========================================================
"""
