"""
A run's ``history.json``: its schema, and reading it back checked.

.. autosummary::
    :nosignatures:

    new_history
    history_curves
    add_curves
    read_history
    history_problem
    history_identity_problem
    curves_problem

Per finished epoch, the lists of :data:`CURVES` (and of any curve a run's
training declares besides), then ``status`` (one of
:data:`experiments.store.rundir.STATUSES`), ``diverged_epoch`` and, since
2026-12-05, ``identity`` (the run's configuration).

Examples
--------
>>> from experiments.store.history import history_problem, new_history
>>> history = new_history()
>>> sorted(history)
['acc', 'diverged_epoch', 'epoch_time', 'loss', 'lr', 'status', 'val_acc', 'val_loss']
>>> history_problem(dict(history, status="done"))
"status 'done' is not one of running, complete, diverged"
"""
import math
import numbers

from errors import UserError
from experiments.records.config import RunConfig, describe_differences
from experiments.records.curves import STORED
from experiments.store.atomic import read_json
from experiments.store.rundir import STATUSES

__all__ = ["CURVES", "new_history", "history_curves", "add_curves", "read_history",
           "history_problem", "history_identity_problem", "curves_problem"]

#: The per-epoch lists every ``history.json`` has, in this order: the project's curves
#: (:data:`experiments.records.curves.STORED`; a run records more when more are declared:
#: :func:`experiments.records.curves.history_names`).
CURVES = STORED


def new_history(curves=CURVES, identity=None):
    """The history of a run with no finished epoch, with the per-epoch lists ``curves``.

    ``identity``, the run's configuration (``RunConfig.to_dict()``), is kept as
    ``identity``: a history copied into another run's directory is refused
    there.  Histories written before 2026-12-05 have none.
    """
    history = {name: [] for name in curves}
    history.update(status="running", diverged_epoch=None)
    if identity is not None:
        history["identity"] = identity
    return history


def history_curves(history):
    """The names of a history's per-epoch lists, in its order."""
    return [name for name, value in history.items() if isinstance(value, list)]


def add_curves(history, curves):
    """Add the ``curves`` a history lacks, ``null`` for each epoch it already has.

    A curve declared after a run started is absent from its earlier epochs, not
    damage: a resumed run records it from its next epoch on.
    """
    done = len(history["loss"])
    for name in curves:
        history.setdefault(name, [None] * done)
    return history


def curves_problem(curves, names):
    """What makes ``curves`` (a dict of per-epoch lists) unusable, or None.

    Each of ``names`` must be a list of numbers (``null`` stands for a missing
    value), all of one length.
    """
    if not isinstance(curves, dict):
        return "a JSON %s, not an object" % type(curves).__name__
    for name in names:
        values = curves.get(name)
        if not isinstance(values, list) or not all(
                value is None or isinstance(value, numbers.Real) and not isinstance(value, bool)
                for value in values):
            return "%r is not a list of numbers" % name
    lengths = {name: len(curves[name]) for name in names}
    if len(set(lengths.values())) > 1:
        return "curves of unequal lengths %s, probably half-written" % lengths
    return None


def history_problem(history, curves=CURVES):
    """What makes a parsed ``history.json`` unusable, or None.

    ``curves`` must be there; any other list in it is a curve too (one
    declared after :data:`CURVES`) and is checked alike.
    """
    if not isinstance(history, dict):
        return "a JSON %s, not an object" % type(history).__name__
    if history.get("status") not in STATUSES:
        return "status %r is not one of %s" % (history.get("status"), ", ".join(STATUSES))
    diverged = history.get("diverged_epoch", None)
    if diverged is not None and not isinstance(diverged, int):
        return "diverged_epoch %r is not an epoch number" % (diverged,)
    extra = [name for name in history_curves(history) if name not in curves]
    return curves_problem(history, tuple(curves) + tuple(extra))


def history_identity_problem(history, config):
    """How a checked history shows it is not ``config``'s run's, or None.

    Histories name their run (``identity``) since 2026-12-05; an older one must
    at least have been trained at the run's learning rate (every schedule's
    first epoch has the rate ``lr``).
    """
    identity = history.get("identity")
    if identity is not None:
        try:
            differences = config.differences(RunConfig.from_dict(identity))
        except (AttributeError, TypeError, UserError) as exc:
            return "names an unreadable run (%s)" % exc
        return ("was written by another run (%s)" % describe_differences(differences)
                if differences else None)
    rates = history.get("lr") or [config.lr]
    if rates[0] is not None and not math.isclose(rates[0], config.lr, rel_tol=1e-6):
        return ("was written by another run (its first epoch's learning rate is %g, this "
                "run's %g)" % (rates[0], config.lr))
    return None


def read_history(path, curves=CURVES):
    """A run's ``history.json``, checked; None when it does not exist.

    Parameters
    ----------
    path : str
    curves : sequence of str
        The curves that must be there (the figures need only four)

    Raises
    ------
    errors.UserError
        When it is not valid JSON or not a run history (keys, types, lengths)
    """
    history = read_json(path)
    problem = None if history is None else history_problem(history, curves)
    if problem is not None:
        raise UserError("%s is not a run history (%s)" % (path, problem))
    return history
