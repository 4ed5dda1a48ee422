"""
Learning rate schedules.

.. autosummary::
    :nosignatures:

    epoch_learning_rate
    learning_rate_expression

The training function reads its learning rate from a shared variable that
:func:`epoch_learning_rate` sets before each epoch; for ``inv-sqrt`` the
function itself divides it by the square root of the update count
(:func:`learning_rate_expression`), so the rate changes with every update.

- ``linear`` (the blog's): ``lr * (1 - epoch / epochs)`` during epoch
  ``epoch`` = 0, 1, ...: lowered by ``lr / epochs`` after every epoch, reaching
  0 after the last.
- ``inv-sqrt`` (the paper's ``alpha / sqrt(t)``): ``lr / sqrt(t)`` at update
  ``t`` = 1, 2, ...
- ``constant``: ``lr`` throughout.

Examples
--------
>>> from experiments.schedule import epoch_learning_rate
>>> [epoch_learning_rate("linear", 0.001, epoch, 4, 100) for epoch in range(4)]
[0.001, 0.00075, 0.0005, 0.00025]
>>> epoch_learning_rate("inv-sqrt", 0.001, 1, 4, 100)  # first update of epoch 1 is t = 101
9.950371902099892e-05
"""
import math

import compat  # noqa: F401  (Theano flags before theano)
import numpy as np
import theano
import theano.tensor as T

__all__ = ["epoch_learning_rate", "learning_rate_expression"]


def epoch_learning_rate(schedule, lr, epoch, epochs, updates_per_epoch):
    """The learning rate of the first update of an epoch.

    Parameters
    ----------
    schedule : str
        ``linear``, ``inv-sqrt`` or ``constant``
    lr : float
        Initial learning rate
    epoch : int
        Epoch index, 0-based
    epochs : int
        Length of the schedule in epochs
    updates_per_epoch : int
        Minibatches per epoch (counts updates for ``inv-sqrt``)

    Returns
    -------
    float
        The rate; for ``linear`` and ``constant`` the rate of the whole epoch
    """
    if schedule == "linear":
        return lr * (1.0 - epoch / float(epochs))
    if schedule == "constant":
        return lr
    if schedule == "inv-sqrt":
        return lr / math.sqrt(epoch * updates_per_epoch + 1)
    raise ValueError("unknown learning rate schedule %r" % (schedule,))


def learning_rate_expression(schedule, base_rate):
    """The learning rate the optimizer sees, and the updates it needs.

    Parameters
    ----------
    schedule : str
        ``linear``, ``inv-sqrt`` or ``constant``
    base_rate : shared scalar
        The variable set by :func:`epoch_learning_rate`'s schedule
        (for ``inv-sqrt``: the initial rate, never changed)

    Returns
    -------
    rate : symbolic scalar
        ``base_rate``, or ``base_rate / sqrt(t)`` for ``inv-sqrt``
    updates : list of (shared variable, expression)
        For ``inv-sqrt``, the update counter's increment (the counter is part
        of the training function's state, so checkpoints keep it); else empty
    """
    if schedule in ("linear", "constant"):
        return base_rate, []
    if schedule == "inv-sqrt":
        # Counted in float64: exact for any realistic number of updates.
        updates_done = theano.shared(np.float64(0), name="lr_schedule.updates_done")
        t = updates_done + 1
        rate = T.cast(base_rate / T.sqrt(t), base_rate.dtype)
        return rate, [(updates_done, t)]
    raise ValueError("unknown learning rate schedule %r" % (schedule,))
