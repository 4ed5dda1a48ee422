"""
The curves a run records, one declaration each: stored, logged, reported, compared.

.. autosummary::
    :nosignatures:

    Curve
    register
    declared
    get
    train_names
    val_names
    history_names
    measures
    epoch_text
    STORED
    COMPARED
    COMPARED_MEASURES

A :class:`Curve` says everything the project does with one per-epoch list of
a run's ``history.json``: how the training computes it (a symbolic
expression of a minibatch, :mod:`experiments.records.metrics`, or a value the
training loop records once an epoch), whether the validation batches give it
too (``val_`` + its name), whether lower is better, which of its values the
report shows (final, best), how the per-epoch log line shows it, and whether
the original runs (``reference/original_runs.json``) have it.  The store
(:mod:`experiments.store.history`), the compiled functions
(:mod:`experiments.records.metrics`), the log line
(:mod:`experiments.training.life`), the verdict (:mod:`plots.verdict`) and the
report (:mod:`plots.report`, Markdown and CSV) all read these records.

Adding a curve is one :func:`register` call, from code or from a plug-in
module (:mod:`experiments.records.plugins`): new runs store it, a resumed run
records it from its next epoch on, the log line shows it, and the report
gives its final and best values per cell, in ``REPORT.md`` and
``report.csv``.  The verdict compares only the curves the original runs have
(:data:`COMPARED`): a curve they lack is reported, never compared.

Nothing here imports Theano: the verdict and the report read these records
without it (an expression is only called by :mod:`experiments.records.metrics`).

Examples
--------
>>> from experiments.records import curves
>>> curves.history_names()
('loss', 'acc', 'val_loss', 'val_acc', 'lr', 'epoch_time')
>>> curves.COMPARED
('loss', 'acc', 'val_loss', 'val_acc')
>>> list(curves.COMPARED_MEASURES)
['final_val_loss', 'best_val_loss', 'final_val_acc', 'best_val_acc', 'final_train_loss']

A curve the original runs lack, computed per minibatch (``expression`` takes a
:class:`experiments.records.metrics.MinibatchGraph`)::

    curves.register(curves.Curve("grad_norm", lower_is_better=True, validation=False,
                                 expression=gradient_norm))
"""
import dataclasses

from errors import UserError
from experiments.records import plugins

__all__ = ["Curve", "register", "declared", "get", "train_names", "val_names",
           "history_names", "measures", "epoch_text", "PROJECT", "STORED",
           "COMPARED", "COMPARED_MEASURES", "VALIDATION_PREFIX", "HISTORY_FIELDS"]

#: A validation curve's name is this and its curve's.
VALIDATION_PREFIX = "val_"
#: The keys of ``history.json`` that are not curves: no curve may take their names.
HISTORY_FIELDS = ("status", "diverged_epoch", "identity")
#: What a measure may take of a curve: its value after the last epoch, its best over all.
KINDS = ("final", "best")


@dataclasses.dataclass(frozen=True)
class Curve:
    """One per-epoch list of a run's history, and what the project does with it.

    Attributes
    ----------
    name : str
        Its key in ``history.json`` (the validation one: ``val_`` + it)
    lower_is_better : bool
        A loss (True: its best value is its lowest) or an accuracy (False);
        the verdict's minimum meaningful difference is relative for the first,
        absolute for the second
    expression : callable or None
        ``expression(graph) -> scalar`` for a
        :class:`experiments.records.metrics.MinibatchGraph`: the compiled
        training function returns it per minibatch and the history holds its
        epoch mean.  None: the project's expression of that name
        (:data:`experiments.records.metrics.EXPRESSIONS`), or, with
        ``per_minibatch`` False, none at all.  Not compared, not shown
    validation : bool
        Whether the validation function returns it too (``val_`` + name)
    per_minibatch : bool
        False for a value the training loop records itself once an epoch
        (the learning rate, the epoch's time)
    original : bool
        Whether the original runs (``reference/original_runs.json``) have it
        and its validation curve: the verdict compares only these (the
        project's; :func:`register` refuses it)
    train_measures, val_measures : tuple of str
        Which of ``final`` and ``best`` the report shows of the training and
        of the validation curve (``final_train_NAME``, ``best_val_NAME``)
    log : str or None
        How the per-epoch log line shows a value, with ``{name}`` and
        ``{value}`` (a ``str.format`` template); None: not shown
    """
    name: str
    lower_is_better: bool
    expression: object = dataclasses.field(default=None, repr=False, compare=False)
    validation: bool = True
    per_minibatch: bool = True
    original: bool = False
    train_measures: tuple = KINDS
    val_measures: tuple = KINDS
    log: str = "{name} {value:.4f}"

    def history_names(self):
        """Its lists in ``history.json``: the training one, then the validation one."""
        return (self.name,) + ((VALIDATION_PREFIX + self.name,) if self.validation else ())


#: The project's curves, in the order of ``history.json``'s lists.
PROJECT = (
    Curve("loss", lower_is_better=True, original=True, train_measures=("final",)),
    Curve("acc", lower_is_better=False, original=True, train_measures=()),
    Curve("lr", lower_is_better=False, validation=False, per_minibatch=False,
          train_measures=(), log="{name} {value:.3g}"),
    Curve("epoch_time", lower_is_better=True, validation=False, per_minibatch=False,
          train_measures=(), log="({value:.1f} s)"),
)
_CURVES = plugins.Registry("curve", records=PROJECT, reserved=HISTORY_FIELDS)


def register(curve):
    """Declare a curve: stored by new runs, logged, and reported.

    Raises
    ------
    errors.UserError
        When its name is taken (by a curve or a field of ``history.json``), is
        a validation curve's (``val_...``), it claims to be in the original
        runs (only the project's curves are), or it has no expression.
    """
    if not isinstance(curve, Curve):
        raise TypeError("register takes a Curve, got %r" % (curve,))
    if isinstance(curve.name, str) and curve.name.startswith(VALIDATION_PREFIX):
        raise UserError("curve %r: names beginning with %r are the validation curves'; "
                        "declare %r with validation=True" % (
                            curve.name, VALIDATION_PREFIX, curve.name[len(VALIDATION_PREFIX):]))
    if curve.original:
        raise UserError("curve %r: the original runs (reference/original_runs.json) have "
                        "only %s; declare it with original=False (it is reported, not "
                        "compared)" % (curve.name, ", ".join(COMPARED)))
    if not curve.per_minibatch or curve.expression is None:
        raise UserError("curve %r: give it an expression (a function of a minibatch's "
                        "MinibatchGraph, experiments.records.metrics): only the project's "
                        "curves are recorded otherwise" % (curve.name,))
    for kind in curve.train_measures + curve.val_measures:
        if kind not in KINDS:
            raise UserError("curve %r: a measure is one of %s, got %r"
                            % (curve.name, ", ".join(KINDS), kind))
    _CURVES.add(curve)


def declared():
    """Every curve, the project's first, in order of declaration (plug-ins loaded)."""
    _CURVES.names()
    return tuple(_CURVES.entries.values())


def get(name, records=None):
    """The curve of a history's list ``name`` (``val_X``: X's) among ``records`` (every
    declared curve by default); errors.UserError if none."""
    records = declared() if records is None else tuple(records)
    base = name[len(VALIDATION_PREFIX):] if name.startswith(VALIDATION_PREFIX) else name
    curve = next((curve for curve in records if curve.name == base), None)
    if curve is None or (base != name and not curve.validation):
        raise UserError("%r is no declared curve's list: one of %s" % (
            name, ", ".join(history_names(records))))
    return curve


def train_names(records=None):
    """The training function's outputs, in order: the curves computed per minibatch
    (the loss first: the optimizer minimises it)."""
    return tuple(curve.name for curve in (declared() if records is None else records)
                 if curve.per_minibatch)


def val_names(records=None):
    """The validation function's outputs, in order."""
    return tuple(curve.name for curve in (declared() if records is None else records)
                 if curve.per_minibatch and curve.validation)


def history_names(records=None):
    """The per-epoch lists of a new run's ``history.json``, in order: the training
    outputs, the validation outputs (``val_`` + name), the training loop's own."""
    records = declared() if records is None else tuple(records)
    return (train_names(records) + tuple(VALIDATION_PREFIX + name for name in val_names(records))
            + tuple(curve.name for curve in records if not curve.per_minibatch))


def measures(records=None):
    """The values the report shows per run: ``{measure: (history list, kind, lower is
    better)}``, the validation curves' first, then the training curves'.

    ``kind`` is ``final`` or ``best``; a measure is named ``KIND_val_NAME`` or
    ``KIND_train_NAME``.
    """
    records = declared() if records is None else tuple(records)
    found = {}
    for curve in records:
        if curve.validation:
            for kind in curve.val_measures:
                found["%s_val_%s" % (kind, curve.name)] = (
                    VALIDATION_PREFIX + curve.name, kind, curve.lower_is_better)
    for curve in records:
        for kind in curve.train_measures:
            found["%s_train_%s" % (kind, curve.name)] = (curve.name, kind, curve.lower_is_better)
    return found


def epoch_text(history):
    """The values of a history's last epoch, as the per-epoch log line shows them.

    Every declared list the history has, in :func:`history_names` order, by its
    curve's ``log`` template; a value not recorded (``null``) is ``-``.
    """
    records = declared()
    parts = []
    for name in history_names(records):
        curve = get(name, records)
        if curve.log is None or not history.get(name):
            continue
        value = history[name][-1]
        parts.append("%s -" % name if value is None else curve.log.format(name=name, value=value))
    return " ".join(parts)


#: The lists every ``history.json`` has (those of :data:`PROJECT`).
STORED = history_names(PROJECT)
#: The lists the verdict compares: those the original runs have, in this order.
COMPARED = history_names(curve for curve in PROJECT if curve.original)
#: The measures of :data:`COMPARED`: the blog's table values, which the verdict weighs too.
COMPARED_MEASURES = measures(curve for curve in PROJECT if curve.original)
