"""
Learning rate schedules, one record each.

.. autosummary::
    :nosignatures:

    Schedule
    SCHEDULES
    get

- ``linear`` (the blog's): ``lr * (1 - epoch / epochs)`` during epoch
  ``epoch`` = 0, 1, ...: lowered by ``lr / epochs`` after every epoch, reaching
  0 after the last.
- ``inv-sqrt`` (the paper's ``alpha / sqrt(t)``): ``lr / sqrt(t)`` at update
  ``t`` = 1, 2, ...
- ``constant``: ``lr`` throughout.

A run's training function reads its rate from a shared variable (the *base
rate*) that the training loop sets before each epoch to
:meth:`Schedule.base_rate`; a schedule that decays per update divides it by
``sqrt(t)`` inside the function (:meth:`Schedule.expression`), so the rate
changes with every update.  The synthetic job takes its per-step rates from
:meth:`Schedule.update_rates`.  Theano is imported only by
:meth:`Schedule.expression`: the names can be listed and checked without it.

Examples
--------
>>> from experiments.records import schedule
>>> linear = schedule.get("linear")
>>> [linear.epoch_rate(0.001, epoch, 4, 100) for epoch in range(4)]
[0.001, 0.00075, 0.0005, 0.00025]
>>> schedule.get("inv-sqrt").epoch_rate(0.001, 1, 4, 100)  # first update of epoch 1: t = 101
9.950371902099892e-05
"""
import dataclasses
import math

import numpy as np

from errors import UserError

__all__ = ["Schedule", "SCHEDULES", "get", "per_update_names"]


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A learning rate schedule.

    Attributes
    ----------
    name : str
    help : str
        One line for the command lines' ``--help``
    decays_per_epoch : bool
        The base rate falls linearly to 0 over the run's epochs
    decays_per_update : bool
        The rate is the base rate over ``sqrt(t)``, ``t`` counted in updates
    """
    name: str
    help: str
    decays_per_epoch: bool = False
    decays_per_update: bool = False

    def base_rate(self, lr, epoch, epochs):
        """The base rate during epoch ``epoch`` (0-based) of ``epochs``."""
        return lr * (1.0 - epoch / float(epochs)) if self.decays_per_epoch else lr

    def epoch_rate(self, lr, epoch, epochs, updates_per_epoch):
        """The rate of the first update of an epoch (what ``history.json`` records)."""
        base = self.base_rate(lr, epoch, epochs)
        if self.decays_per_update:
            return base / math.sqrt(epoch * updates_per_epoch + 1)
        return base

    def update_rates(self, lr, first_update, count):
        """The rates (float64) of updates ``first_update, ..., first_update + count - 1``.

        For schedules that do not depend on the run's length (the synthetic job's).
        """
        if self.decays_per_epoch:
            raise UserError("--lr-schedule %s needs epochs; choose one of %s"
                            % (self.name, ", ".join(per_update_names())))
        if self.decays_per_update:
            return lr / np.sqrt(np.arange(first_update, first_update + count, dtype=np.float64))
        return np.full(count, lr, dtype=np.float64)

    def expression(self, base_rate):
        """The rate the optimizer sees, and the updates it needs.

        Parameters
        ----------
        base_rate : shared scalar
            The variable the training loop sets to :meth:`base_rate` before each epoch

        Returns
        -------
        rate : symbolic scalar
            ``base_rate``, or ``base_rate / sqrt(t)``
        updates : list of (shared variable, expression)
            For a per-update decay, the update counter's increment (the counter is
            part of the training function's state, so checkpoints keep it); else empty
        """
        if not self.decays_per_update:
            return base_rate, []
        import compat  # noqa: F401  (Theano's flags before theano)
        import theano
        import theano.tensor as T

        # Counted in float64: exact for any realistic number of updates.
        updates_done = theano.shared(np.float64(0), name="lr_schedule.updates_done")
        t = updates_done + 1
        return T.cast(base_rate / T.sqrt(t), base_rate.dtype), [(updates_done, t)]


#: The schedules by name, in the order the command lines list them.
SCHEDULES = {schedule.name: schedule for schedule in (
    Schedule("linear", "decay to 0 over --epochs (the blog's)", decays_per_epoch=True),
    Schedule("inv-sqrt", "lr/sqrt(t), t in updates (the paper's)", decays_per_update=True),
    Schedule("constant", "lr throughout"),
)}


def per_update_names():
    """Names of the schedules that do not need epochs."""
    return [name for name, schedule in SCHEDULES.items() if not schedule.decays_per_epoch]


def get(name):
    """The schedule of that name; errors.UserError listing the names otherwise."""
    try:
        return SCHEDULES[name]
    except (KeyError, TypeError):
        raise UserError("--lr-schedule must be one of %s, got %r"
                        % (", ".join(SCHEDULES), name)) from None
