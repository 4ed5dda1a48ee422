"""
A reproduced cell against the original cell of the same key: both sides' numbers and the verdict.

.. autosummary::
    :nosignatures:

    CellComparison
    compare_cells
    protocol_text

For every cell, five measures per run (final and best validation loss and
accuracy, final training loss) are summarised as mean and standard deviation
over the runs and set next to the original runs' (with the difference in
pooled standard deviations, descriptive); so are the final and best values
of any curve declared besides (:mod:`experiments.records.curves`), which the
original runs lack: reported, never compared.  The verdict, ``agrees``,
``differs`` or ``inconclusive``, is :mod:`plots.verdict.compare` 's, over the
whole curves, against thresholds calibrated on the original runs of the same
setup and protocol (:func:`original_cells`).

Examples
--------
>>> from plots.verdict.cells import group_runs
>>> from plots.verdict.cell_comparisons import compare_cells
>>> from plots.verdict.results import find_runs, load_reference
>>> runs, problems = find_runs("results")                      # doctest: +SKIP
>>> reference, _ = load_reference()                            # doctest: +SKIP
>>> original = group_runs([run for r in reference.values() for run in r])  # doctest: +SKIP
>>> [c.verdict for c in compare_cells(group_runs(runs), original)]  # doctest: +SKIP
['agrees', ...]
"""
import dataclasses

import numpy as np

from experiments.records.curves import measures as declared_measures
from plots.verdict import compare
from plots.verdict.calibration import calibrate
from plots.verdict.cells import (CELL_FIELDS, Cell, Group, effect_size, mean_std, pooled_std,
                                 run_measures)
from plots.verdict.distances import MEASURES, stack_curves

__all__ = ["CellComparison", "compare_cells", "protocol_text", "protocol_fields",
           "original_cells"]


@dataclasses.dataclass
class CellComparison:
    """A reproduced group next to the original group of the same key.

    ``rows`` maps each measure (:attr:`Findings.measures`) to a dict with
    ``n, mean, std, original_n, original_mean, original_std, pooled_std,
    difference, d`` (NaN where there
    is nothing to compare: descriptive, the verdict is not taken from them);
    ``verdict`` is ``agrees``, ``differs``, ``inconclusive`` or ``n/a`` and
    ``reason`` says why; ``judged`` the :class:`plots.verdict.compare.Verdict`
    (None where there was nothing to judge).
    """
    group: Group
    original: object
    rows: dict
    verdict: str
    reason: str
    judged: object = None


def protocol_text(config):
    """The protocol of a group key in words (the report's and a verdict's reason)."""
    text = ("%d epochs, batch %d, %s learning rate schedule, %s cross-entropy, beta1 %g, "
            "epsilon %g" % (config.epochs, config.batch_size, config.lr_schedule, config.loss,
                            config.beta1, config.epsilon))
    if config.dataset == "cifar10":
        text += ", inputs %s" % ("centred" if config.cifar_centering else "not centred")
    return text


def _no_original_reason(group, reference_groups):
    same_setup = [key for key in reference_groups if key.setup == group.key.setup]
    if not same_setup:
        return "no original runs of %s" % group.key.setup
    if not any(key.optimizer == group.key.optimizer for key in same_setup):
        return "the original ran no %s" % group.key.optimizer
    same_cell = [key for key in same_setup if Cell.of(key) == group.cell]
    if not same_cell:
        return "the original has no such cell"
    return "protocol differs from the original's (%s)" % protocol_text(same_cell[0])


def _at_epoch(group, epoch, runs):
    """A group of ``runs``' measures after ``epoch``: runs stopped early compared there."""
    early = Group(group.key, diverged=group.diverged, at_epoch=epoch, data=group.data,
                  running=group.running - sum(run.status == "running" for run in runs))
    for run in runs:
        early.finished.append(run_measures(run, epoch))
        early.finished_runs.append(run)
    return early


def protocol_fields(key):
    """The fields of a group key that are not the cell: equal for runs of one protocol."""
    return tuple((name, value) for name, value in dataclasses.asdict(key).items()
                 if name not in CELL_FIELDS)


def original_cells(reference_groups, key, epochs):
    """The original runs of every cell of ``key``'s setup and protocol, ``(runs, 4, epochs)``
    each: what the thresholds are calibrated on."""
    protocol = protocol_fields(key)
    return [stack_curves(group.finished_runs, epochs)
            for other, group in reference_groups.items()
            if protocol_fields(other) == protocol and len(group.finished_runs) >= 2
            and min(run.epochs_done for run in group.finished_runs) >= epochs]


def _judge(group, original, reference_groups, calibrations):
    """The :class:`plots.verdict.compare.Verdict` of a group against its original group;
    ``calibrations`` caches the thresholds per protocol, numbers of runs and epochs."""
    epochs = group.at_epoch or group.key.epochs
    n, m = len(group.finished_runs), len(original.finished_runs)
    cache_key = (protocol_fields(group.key), n, m, epochs)
    if cache_key not in calibrations:
        calibrations[cache_key] = calibrate(
            original_cells(reference_groups, group.key, epochs), n, m, epochs)
    return compare.judge(stack_curves(group.finished_runs, epochs),
                         stack_curves(original.finished_runs, epochs),
                         calibrations[cache_key])


def _rows(group, original):
    """Per measure, both sides' numbers and their difference (descriptive).

    Every declared curve's measures: a curve the verdict does not compare is over
    the runs that recorded it (declared after some ran), and the original's side
    is empty (its runs lack it).
    """
    rows = {}
    for measure in declared_measures():
        ours = group.values(measure)
        theirs = original.values(measure) if original else np.array([])
        if measure not in MEASURES:
            ours, theirs = ours[np.isfinite(ours)], theirs[np.isfinite(theirs)]
        difference, d = effect_size(ours, theirs)
        rows[measure] = dict(zip(("n", "mean", "std"), (ours.size,) + mean_std(ours)))
        rows[measure].update(zip(("original_n", "original_mean", "original_std"),
                                 (theirs.size,) + mean_std(theirs)))
        rows[measure].update(pooled_std=pooled_std(ours, theirs), difference=difference, d=d)
    return rows


def compare_cells(groups, reference_groups):
    """Compare every reproduced group with the original group of the same key.

    Parameters
    ----------
    groups, reference_groups : dict of RunConfig -> Group
        From :func:`plots.verdict.cells.group_runs` of the reproduced and of
        the original runs

    Returns
    -------
    list of CellComparison
        In the order of ``groups``.  A group without finished runs whose runs
        were stopped early (``--stop-after``) is compared after the fewest
        epochs E any of them has done: its runs' and the original runs'
        curves over their first E epochs (``group.at_epoch``).  The verdict
        is :func:`plots.verdict.compare.judge` 's, against thresholds
        calibrated on the original cells of the same setup and protocol (the
        :class:`plots.verdict.calibration.Calibration` of ``judged``).
    """
    calibrations = {}
    comparisons = []
    for key, group in groups.items():
        original = reference_groups.get(key)
        if not group.finished and group.stopped:
            epoch = min(run.epochs_done for run in group.stopped)
            group = _at_epoch(group, epoch, group.stopped)
            if original is not None:
                original = _at_epoch(original, epoch, original.finished_runs)
        judged = None
        if original is None:
            verdict, reason = "n/a", _no_original_reason(group, reference_groups)
        elif group.diverged:
            verdict, reason = ("differs", "%d run(s) diverged, none of the original's did"
                               % group.diverged)
        elif not group.finished:
            verdict, reason = "n/a", "no finished runs yet"
        elif len(group.finished) + len(original.finished) <= 2:
            verdict, reason = "n/a", "too few runs for a standard deviation"
        else:
            judged = _judge(group, original, reference_groups, calibrations)
            verdict, reason = judged.verdict, judged.reason()
        if group.at_epoch is not None and verdict != "n/a":
            reason += " (after epoch %d of %d)" % (group.at_epoch, key.epochs)
        comparisons.append(CellComparison(group, original, _rows(group, original), verdict,
                                          reason, judged))
    return comparisons
