"""
What the synthetic job's steps can compute, checked before any is compiled.

.. autosummary::
    :nosignatures:

    check_simulation
    check_decay_rates
    check_gradients

The steps compute in float32 (or the job's ``--dtype``): a learning rate, a
decay rate or a gradient valid in float64 can be 0, 1 or infinite there.
Each check raises :class:`errors.UserError` naming the option to change.
"""
import math

import numpy as np

from errors import UserError
from experiments.records import config, schedule

__all__ = ["check_simulation", "check_decay_rates", "check_gradients"]


def check_simulation(steps, lr, lr_schedule):
    """Refuse a number of steps, or a learning rate and schedule, the steps cannot take."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps <= 0:
        raise UserError("the number of steps (--steps) must be a positive integer, got %r"
                        % (steps,))
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (
            math.isfinite(lr) and lr > 0):
        raise UserError("the learning rate (--lr) must be a finite number > 0, got %r" % (lr,))
    if config.float32_problem(lr):  # the rate is computed in floatX, float32, as in RunConfig
        raise UserError("the learning rate (--lr) %r %s; use a normal float32 number"
                        % (lr, config.float32_problem(lr)))
    schedule.get(lr_schedule).update_rates(lr, 1, 0)  # refuses an unknown schedule


def check_decay_rates(runs, dtype):
    """Refuse a beta1 or beta2 that is 1, or 0 or a subnormal, in ``dtype``."""
    # In float32 a decay rate just below 1 rounds to 1 (as RunConfig refuses), one just
    # above 0 to 0 or a subnormal.
    for run in runs:
        for name, value in (("--beta1", run.beta1), ("--beta2", run.beta2)):
            if np.dtype(dtype).type(value) >= 1:
                raise UserError("%s %r is 1 in %s, which the steps compute in; pass a value "
                                "below %.8g" % (name, value, dtype, np.nextafter(
                                    np.dtype(dtype).type(1), np.dtype(dtype).type(0))))
            problem = value > 0 and config.float32_problem(value, dtype)
            if problem:
                raise UserError("%s %r %s, which the steps compute in; pass 0 or a value of at "
                                "least %.3g" % (name, value, problem, np.finfo(dtype).tiny))


def check_gradients(problem, dtype="float32"):
    """Refuse a problem whose gradients the steps cannot hold in ``dtype``.

    The gradients (C of online-c) and their squares (Adam's second moment)
    must be normal numbers there: an infinite one makes every iterate NaN, or
    stops the steps.

    Raises
    ------
    errors.UserError
        Naming ``--c`` (the only gradient a user sets) and its largest value
    """
    for value in (problem.large, problem.small):
        square = value * value  # inf, not OverflowError, past float64's range
        trouble = config.float32_problem(value, dtype) or (
            config.float32_problem(square, dtype) and "squared (Adam's second moment) %s"
            % config.float32_problem(square, dtype))
        if trouble:
            raise UserError("C (--c) %r %s, which the steps compute in; use a value up to "
                            "%.3g" % (value, trouble, math.sqrt(np.finfo(dtype).max)))
