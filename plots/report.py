"""
The reproduction report: reproduced runs against the original runs, cell by cell.

.. autosummary::
    :nosignatures:

    run_measures
    group_runs
    compare_cells
    pair_effects
    write_report

For every setup and cell, five measures per run (final and best validation
loss and accuracy, final training loss) are summarised as mean and standard
deviation over the runs and set next to the original runs' (with the
difference in pooled standard deviations, descriptive).  The verdict,
``agrees``, ``differs`` or ``inconclusive``, is :mod:`plots.compare` 's, over
the whole curves, against thresholds calibrated on the original runs of the
same setup and protocol; their error rates open the report, then the claims
of :mod:`plots.claims` on both sides.  :func:`write_report` writes
``REPORT.md`` and ``report.csv``.

Examples
--------
>>> from plots.results import find_runs, load_reference
>>> from plots.report import write_report
>>> runs, problems = find_runs("results")                      # doctest: +SKIP
>>> reference, _ = load_reference()                            # doctest: +SKIP
>>> write_report("figures", runs, reference, problems)          # doctest: +SKIP
('figures/REPORT.md', 'figures/report.csv')
"""
import collections
import csv
import dataclasses
import io
import math
import os

import numpy as np

from experiments.records import protocols
from experiments.store.atomic import atomic_write_bytes
from experiments.store.datasource import describe_data
from experiments.store.rundir import describe_machines
from plots import claims as claim_records
from plots import compare
from plots.compare import MEASURES  # measure -> (curve, final or best, lower is better)
from plots.results import figure_stem, group_key

__all__ = ["MEASURES", "AGREE_WITHIN", "MIN_POOLED_STD", "run_measures", "Group", "group_runs",
           "mean_std", "pooled_std", "effect_size", "CellComparison", "compare_cells",
           "pair_effects", "write_report"]

#: In the pair tables, a pair's difference counts as clear beyond this |d| (in pooled standard
#: deviations, or in those of the paired differences where the cells share their draws).
AGREE_WITHIN = 2.0
#: Pooled standard deviations below this are raised to it: the 4-decimal tables cannot show
#: smaller differences, and cells whose runs all end on the same value (stuck at ln 10) would
#: otherwise "differ" over float rounding.
MIN_POOLED_STD = 1e-4
_CELL_FIELDS = ("setup", "optimizer", "lr", "beta2", "bias_correction")


def _measure_name(measure):
    return (measure.replace("_", " ").replace("val", "validation").replace("acc", "accuracy")
            .replace("train", "training"))


def run_measures(run, epochs=None):
    """The five :data:`MEASURES` of a run, as a dict of floats.

    ``final``: the value after the last epoch done (or after epoch ``epochs``);
    ``best``: the lowest loss or highest accuracy over those epochs (NaN
    epochs ignored).
    """
    measures = {}
    for measure, (curve, kind, lower_is_better) in MEASURES.items():
        values = run.curves[curve][:epochs]
        if kind == "final":
            measures[measure] = float(values[-1]) if len(values) else math.nan
        elif np.isfinite(values).any():
            finite = values[np.isfinite(values)]
            measures[measure] = float(finite.min() if lower_is_better else finite.max())
        else:
            measures[measure] = math.nan
    return measures


@dataclasses.dataclass
class Group:
    """The runs of one cell under one protocol (equal :func:`plots.results.group_key`).

    Attributes
    ----------
    key : experiments.records.config.RunConfig
        The shared config, with ``run`` and ``seed`` 0
    finished : list of dict
        :func:`run_measures` of the complete runs whose measures are all finite
    diverged : int
        Runs with status ``diverged``, or complete with a non-finite measure
    running : int
        Runs still in progress (not in the statistics, unless compared early)
    finished_runs : list of plots.results.Run
        The runs of ``finished``
    stopped : list of plots.results.Run
        The runs in progress with at least one epoch done
    at_epoch : int or None
        Set when the measures are taken after this epoch of runs stopped early
        (:func:`compare_cells`), None when at the runs' end
    data : set of str
        What the runs were trained on (:func:`experiments.store.datasource.describe_data`)
    """
    key: object
    finished: list = dataclasses.field(default_factory=list)
    diverged: int = 0
    running: int = 0
    finished_runs: list = dataclasses.field(default_factory=list)
    stopped: list = dataclasses.field(default_factory=list)
    at_epoch: int = None
    data: set = dataclasses.field(default_factory=set)

    def values(self, measure):
        """The measure over the finished runs, as an array."""
        return np.array([measures[measure] for measures in self.finished], dtype=np.float64)

    @property
    def cell(self):
        return tuple(getattr(self.key, name) for name in _CELL_FIELDS[1:])


def group_runs(runs):
    """Sort runs into :class:`Group` s.

    Returns
    -------
    dict of RunConfig -> Group
        Ordered by setup, lr, beta2, bias correction (on first), optimizer.
    """
    groups = {}
    for run in runs:
        group = groups.setdefault(group_key(run.config), Group(group_key(run.config)))
        group.data.add(describe_data(run.config.dataset, run.data))
        measures = run_measures(run)
        if run.status == "running":
            group.running += 1
            if run.epochs_done:
                group.stopped.append(run)
        elif run.status == "diverged" or not all(map(math.isfinite, measures.values())):
            group.diverged += 1
        else:
            group.finished.append(measures)
            group.finished_runs.append(run)
    order = sorted(groups, key=lambda key: (key.setup, key.lr, key.beta2, not key.bias_correction,
                                            key.optimizer, key.epochs, repr(key)))
    return {key: groups[key] for key in order}


def mean_std(values):
    """Mean and sample standard deviation (n - 1 in the denominator; NaN for fewer than 2)."""
    values = np.asarray(values, dtype=np.float64)
    if not values.size:
        return math.nan, math.nan
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else math.nan


def pooled_std(a, b):
    """sqrt(((n_a - 1) s_a^2 + (n_b - 1) s_b^2) / (n_a + n_b - 2)); NaN when n_a + n_b <= 2."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    dof = a.size + b.size - 2
    if dof <= 0 or not a.size or not b.size:
        return math.nan
    squares = ((a - a.mean()) ** 2).sum() + ((b - b.mean()) ** 2).sum()
    return float(math.sqrt(squares / dof))


def effect_size(a, b):
    """``mean(a) - mean(b)``, and the same in units of the pooled std raised to MIN_POOLED_STD.

    NaN where a side is empty, and d is NaN where the pooled std is (one run a side).
    """
    difference, pooled = mean_std(a)[0] - mean_std(b)[0], pooled_std(a, b)
    if math.isnan(pooled):
        return difference, math.nan
    return difference, difference / max(pooled, MIN_POOLED_STD)


@dataclasses.dataclass
class CellComparison:
    """A reproduced group next to the original group of the same key.

    ``rows`` maps each measure to a dict with ``n, mean, std, original_n,
    original_mean, original_std, pooled_std, difference, d`` (NaN where there
    is nothing to compare: descriptive, the verdict is not taken from them);
    ``verdict`` is ``agrees``, ``differs``, ``inconclusive`` or ``n/a`` and
    ``reason`` says why; ``judged`` the :class:`plots.compare.Verdict` (None
    where there was nothing to judge).
    """
    group: Group
    original: object
    rows: dict
    verdict: str
    reason: str
    judged: object = None


def _protocol_text(config):
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
    same_cell = [key for key in same_setup
                 if tuple(getattr(key, name) for name in _CELL_FIELDS[1:]) == group.cell]
    if not same_cell:
        return "the original has no such cell"
    return "protocol differs from the original's (%s)" % _protocol_text(same_cell[0])


def _at_epoch(group, epoch, runs):
    """A group of ``runs``' measures after ``epoch``: runs stopped early compared there."""
    early = Group(group.key, diverged=group.diverged, at_epoch=epoch, data=group.data,
                  running=group.running - sum(run.status == "running" for run in runs))
    for run in runs:
        early.finished.append(run_measures(run, epoch))
        early.finished_runs.append(run)
    return early


def _protocol_fields(key):
    """The fields of a group key that are not the cell: equal for runs of one protocol."""
    return tuple((name, value) for name, value in dataclasses.asdict(key).items()
                 if name not in _CELL_FIELDS[1:])


def _original_cells(reference_groups, key, epochs):
    """The original runs of every cell of ``key``'s setup and protocol, ``(runs, 4, epochs)``
    each: what the thresholds are calibrated on."""
    protocol = _protocol_fields(key)
    return [compare.stack_curves(group.finished_runs, epochs)
            for other, group in reference_groups.items()
            if _protocol_fields(other) == protocol and len(group.finished_runs) >= 2
            and min(run.epochs_done for run in group.finished_runs) >= epochs]


def _judge(group, original, reference_groups, calibrations):
    """The :class:`plots.compare.Verdict` of a group against its original group."""
    epochs = group.at_epoch or group.key.epochs
    n, m = len(group.finished_runs), len(original.finished_runs)
    cache_key = (_protocol_fields(group.key), n, m, epochs)
    if cache_key not in calibrations:
        calibrations[cache_key] = compare.calibrate(
            _original_cells(reference_groups, group.key, epochs), n, m, epochs)
    return compare.judge(compare.stack_curves(group.finished_runs, epochs),
                         compare.stack_curves(original.finished_runs, epochs),
                         calibrations[cache_key])


def compare_cells(groups, reference_groups, calibrations=None):
    """Compare every reproduced group with the original group of the same key.

    Parameters
    ----------
    groups, reference_groups : dict of RunConfig -> Group
        From :func:`group_runs` of the reproduced and of the original runs
    calibrations : dict or None
        Filled with the :class:`plots.compare.Calibration` used, keyed by
        (protocol, n, m, epochs)

    Returns
    -------
    list of CellComparison
        In the order of ``groups``.  A group without finished runs whose runs
        were stopped early (``--stop-after``) is compared after the fewest
        epochs E any of them has done: its runs' and the original runs'
        curves over their first E epochs (``group.at_epoch``).  The verdict
        is :func:`plots.compare.judge` 's, against thresholds calibrated on
        the original cells of the same setup and protocol.
    """
    calibrations = {} if calibrations is None else calibrations
    comparisons = []
    for key, group in groups.items():
        original = reference_groups.get(key)
        if not group.finished and group.stopped:
            epoch = min(run.epochs_done for run in group.stopped)
            group = _at_epoch(group, epoch, group.stopped)
            if original is not None:
                original = _at_epoch(original, epoch, original.finished_runs)
        rows = {}
        for measure in MEASURES:
            ours = group.values(measure)
            theirs = original.values(measure) if original else np.array([])
            difference, d = effect_size(ours, theirs)
            rows[measure] = dict(zip(("n", "mean", "std"), (ours.size,) + mean_std(ours)))
            rows[measure].update(zip(("original_n", "original_mean", "original_std"),
                                     (theirs.size,) + mean_std(theirs)))
            rows[measure].update(pooled_std=pooled_std(ours, theirs), difference=difference, d=d)
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
        comparisons.append(CellComparison(group, original, rows, verdict, reason, judged))
    return comparisons


# -- pairs of cells --------------------------------------------------------------------------

def _better(measure, difference):
    """Whether ``difference`` (first minus second) favours the first."""
    return difference < 0 if MEASURES[measure][2] else difference > 0


def _pairs(cells, vary, first, second):
    """Pairs of cells equal but for field ``vary`` (values ``first``, ``second``), both finished.

    ``cells`` maps ``(optimizer, lr, beta2, bias_correction)`` to a Group.
    """
    index = ("optimizer", "lr", "beta2", "bias_correction").index(vary)
    pairs = []
    for cell, group in cells.items():
        if cell[index] != first:
            continue
        other = cells.get(cell[:index] + (second,) + cell[index + 1:])
        if other is not None and group.finished_runs and other.finished_runs:
            pairs.append((cell, group, other))
    return pairs


def _effects(pairs, measure):
    """Each pair's :func:`plots.claims.pair_difference` (first - second): paired run by run
    where the two cells share their draws."""
    return [claim_records.pair_difference(a, b, measure) for _, a, b in pairs]


def _paired_text(effects):
    paired = sum(is_paired for _, _, is_paired in effects)
    return "; paired run by run in %d" % paired if paired else ""


def _compare_pairs(pairs, measure, first_name, second_name):
    """Counts and effect sizes of ``first - second`` over pairs, as a sentence."""
    if not pairs:
        return "no pairs with finished runs on both sides"
    effects = _effects(pairs, measure)
    wins = sum(_better(measure, difference) for difference, _, _ in effects)
    clear_wins = sum(_better(measure, difference) and abs(d) > AGREE_WITHIN
                     for difference, d, _ in effects)
    clear_losses = sum(not _better(measure, difference) and abs(d) > AGREE_WITHIN
                       for difference, d, _ in effects)
    return ("%s better in %d of %d pairs (by > %g std: %s %d, %s %d); "
            "mean difference %s - %s %+.4f, median d %s%s"
            % (first_name, wins, len(pairs), AGREE_WITHIN, first_name, clear_wins, second_name,
               clear_losses, first_name, second_name,
               np.mean([difference for difference, _, _ in effects]),
               _median_text([d for _, d, _ in effects]), _paired_text(effects)))


def _median_text(ds):
    finite = [d for d in ds if math.isfinite(d)]
    return "%+.1f" % np.median(finite) if finite else "- (one run a side)"


def _cell_text(cell):
    """``optimizer lr=.. b2=.. bc=on|off`` of a full cell, without bc for a shorter tuple."""
    text = "%s lr=%g b2=%g" % cell[:3]
    return text + (" bc=%s" % ("on" if cell[3] else "off") if len(cell) > 3 else "")


def _bias_correction_effect(pairs, measure):
    """Size of on - off over pairs: mean and largest |difference|, counts."""
    if not pairs:
        return "no pairs with finished runs on both sides"
    effects = _effects(pairs, measure)
    largest = max(zip(pairs, effects), key=lambda item: abs(item[1][0]))
    on_better = sum(_better(measure, difference) for difference, _, _ in effects)
    clear = sum(abs(d) > AGREE_WITHIN for _, d, _ in effects)
    return ("on better in %d of %d pairs, d beyond ±%g in %d; mean absolute on - off %.4f, "
            "largest %+.4f (%s, d %s)%s"
            % (on_better, len(effects), AGREE_WITHIN, clear,
               np.mean([abs(difference) for difference, _, _ in effects]), largest[1][0],
               _cell_text(largest[0][0][:3]), _number(largest[1][1], "%+.1f"),
               _paired_text(effects)))


def pair_effects(cells):
    """Pair by pair, how much the optimizer and bias correction change each measure.

    The numbers behind the claims (:mod:`plots.claims`), with their effect
    sizes: per pair :func:`plots.claims.pair_difference`, paired run by run
    where the two cells share their draws.

    Parameters
    ----------
    cells : dict of (optimizer, lr, beta2, bias_correction) -> Group

    Returns
    -------
    list of (pair, measure, text)
        AMSGrad - Adam on each of :data:`MEASURES`, then bias correction
        on - off on the best validation loss and accuracy: in how many pairs
        the first is better, in how many by more than AGREE_WITHIN standard
        deviations, the mean difference and the median d.
    """
    optimizer_pairs = _pairs(cells, "optimizer", "amsgrad", "adam")
    bias_pairs = _pairs(cells, "bias_correction", True, False)
    rows = [("AMSGrad - Adam", measure, _compare_pairs(optimizer_pairs, measure, "AMSGrad",
                                                        "Adam")) for measure in MEASURES]
    rows += [("bias correction on - off", measure, _bias_correction_effect(bias_pairs, measure))
             for measure in ("best_val_loss", "best_val_acc")]
    return rows


# -- writing -----------------------------------------------------------------------------

def _number(value, form="%.4f"):
    return "-" if value is None or math.isnan(value) else form % value


def _mean_std_text(mean, std):
    if math.isnan(mean):
        return "-"
    return _number(mean) + ("" if math.isnan(std) else " (%s)" % _number(std))


def _runs_text(group):
    extra = [text % count for text, count in (("%d diverged", group.diverged),
                                              ("%d running", group.running)) if count]
    text = "%d" % len(group.finished)
    if group.at_epoch is not None:
        text += " after epoch %d" % group.at_epoch
    return text + (" (+%s)" % ", ".join(extra) if extra else "")


def _cell_rows(comparisons):
    header = (["optimizer", "lr", "b2", "bc", "runs"] + [_measure_name(m) for m in MEASURES]
              + ["verdict"])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for comparison in comparisons:
        key = comparison.group.key
        cells = [key.optimizer, "%g" % key.lr, "%g" % key.beta2,
                 "on" if key.bias_correction else "off", _runs_text(comparison.group)]
        for measure in MEASURES:
            row = comparison.rows[measure]
            text = _mean_std_text(row["mean"], row["std"])
            if comparison.original is not None:
                text += " vs %s, d %s" % (
                    _mean_std_text(row["original_mean"], row["original_std"]),
                    _number(row["d"], "%+.1f"))
            cells.append(text)
        cells.append("**%s**: %s" % (comparison.verdict, comparison.reason))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _protocol_sections(comparisons):
    """Comparisons split by setup and protocol (the key without the cell), in order."""
    sections = {}
    for comparison in comparisons:
        protocol = tuple(value for name, value in dataclasses.asdict(comparison.group.key).items()
                         if name not in _CELL_FIELDS[1:])
        sections.setdefault(protocol, []).append(comparison)
    return list(sections.values())


def _introduction(reference_groups, sources):
    original_runs = sorted({len(group.finished) for group in reference_groups.values()})
    original_epochs = sorted({key.epochs for key in reference_groups})
    return [
        "# Reproduction report: Experiments with AMSGrad", "",
        "Reproduced runs read from `%s`; original runs from `%s` (the logs published with the "
        "blog post: %s; %s runs per cell, %s epochs)." % (
            sources + (", ".join(sorted({key.setup for key in reference_groups})) or "none",
                       "/".join(map(str, original_runs)) or "0",
                       "/".join(map(str, original_epochs)) or "0")), "",
        "## How to read it", "",
        "- A *cell* is optimizer, learning rate (lr), beta2 (b2) and bias correction (bc); "
        "*runs* are its repetitions. Only runs that finished (status `complete`) enter the "
        "statistics; running and diverged runs are counted beside them. A cell whose runs were "
        "all stopped early (`--stop-after`) is compared *after epoch E*, the fewest epochs any "
        "of its runs has done, with the original runs' first E epochs.",
        "- *final*: the value after the last epoch; *best*: the lowest loss or highest accuracy "
        "over all epochs. Losses are mean cross-entropies, accuracies fractions; *better* "
        "means lower loss or higher accuracy.",
        "- Each measure reads `mean (std) vs original mean (std), d ±x.x`: mean and sample "
        "standard deviation (n - 1) over runs; d as below. `reference/summary.md` divides by n "
        "instead: its std is ours times sqrt((n-1)/n) (0.894 for 5 runs).",
        "- d = (reproduced mean - original mean) / pooled std, pooled std = "
        "sqrt(((n1-1) s1^2 + (n2-1) s2^2) / (n1+n2-2)), raised to %g where smaller "
        "(cells whose runs all end on the same value)." % MIN_POOLED_STD,
        "- d is descriptive; the verdict is not taken from it. The verdict "
        "(`plots/compare.py`) compares whole curves: at every epoch of the training and "
        "validation loss and accuracy, the difference of the means over its standard error "
        "(pooled between-run std, raised to a minimum meaningful difference of 3e-4 in "
        "accuracy and 0.01%% of a loss, times sqrt(1/n + 1/m)); per curve the root mean square "
        "over the epochs compared, and per measure above its standardized difference. The "
        "*largest distance* of these nine is held against thresholds calibrated on the "
        "original runs of the same setup (draws from each original cell's mean and "
        "covariance): **differs** above the point that same-experiment draws pass %g%% of the "
        "time (or when a reproduced run diverged: the original runs never did); **agrees** "
        "at or below the point that runs with one whole curve shifted by %g standard "
        "deviations stay under %g%% of the time; **inconclusive** in between; **n/a** when "
        "there is nothing to compare (no original cell of this protocol, too few runs). The "
        "error rates, measured, are in the table above." % (
            100 * compare.ALPHA, compare.SHIFT, 100 * compare.BETA),
        "- The claims are evaluated on the cells with finished runs, on both sides on the same "
        "cells. A *pair* is two cells that differ only in the optimizer (or only in bias "
        "correction); differences are AMSGrad - Adam (or on - off). Where both cells share "
        "their draws (common seeding: run K of both started from the same weights and saw the "
        "same data order; runs from before the `seeding` field are common), a pair is compared "
        "on the paired differences, run by run, over the runs both cells have, and d is their "
        "mean over their std; otherwise on the means, d in pooled std. The original's runs are "
        "independent draws (its `train.py` seeds nothing).", ""]


#: Cells listed in this order: those that differ first.
VERDICT_ORDER = ("differs", "inconclusive", "agrees", "n/a")


def _data_text(section):
    return "; ".join(sorted(set().union(*(c.group.data for c in section)))) or "-"


def _machines_text(section):
    # What trained the runs in the statistics: curves are the same only on the same machine.
    counts = collections.Counter(describe_machines(run.machines) for c in section
                                 for run in c.group.finished_runs + c.group.stopped)
    return "; ".join("%s (%d runs)" % item for item in sorted(counts.items())) or "-"


def _claim_cells(section, reference_groups):
    """``(reproduced cells, original cells)`` the claims are evaluated on: the same cells.

    The original's at the same epochs as the reproduced ones (cells compared
    early), and only of the same protocol: runs of another protocol (the
    study's schedule and loss, another length) have no original side.
    """
    cells = {c.group.cell: c.group for c in section if c.group.finished}
    original_cells = {c.original.cell: c.original for c in section
                      if c.original is not None and c.group.cell in cells}
    return cells, original_cells


def _claims_text(results):
    """``x of y`` claims that hold on one side, with how many cannot be told; ``-`` if none."""
    if not results:
        return "-"
    holds = sum(result.startswith("holds") for result in results)
    cannot = sum(result.startswith("cannot tell") for result in results)
    return "%d of %d" % (holds, len(results)) + (" (%d cannot tell)" % cannot if cannot else "")


def _error_rates(calibrations, reference_groups):
    """The table of the thresholds the verdicts used, with their error rates, measured."""
    lines = ["### The verdicts' error rates", "",
             "Measured for the numbers of runs and epochs compared here. *False alarm*: "
             "same-experiment runs called **differs**; *shift called agrees*: runs with one "
             "curve shifted by %g standard deviations called **agrees** (both on draws from "
             "the original cells' fitted models, independent of the thresholds'); *held out*: "
             "original runs held out of their own cell against its other runs, called "
             "**differs** (at most 2 held out, so against 3 or 4 runs, not 5)." % compare.SHIFT,
             "", "| setup | runs compared | epochs | differs above | agrees at or below | "
             "false alarm | shift called agrees | held out: called differs |",
             "|---|---|---|---|---|---|---|---|"]
    if not calibrations:
        return lines[:2] + ["No cell was judged.", ""]
    for (protocol, n, m, epochs), calibration in sorted(calibrations.items(),
                                                        key=lambda item: item[0][1:]):
        setup = dict(protocol)["setup"]
        key = next(key for key in reference_groups if _protocol_fields(key) == protocol)
        cells = _original_cells(reference_groups, key, epochs)
        runs = min(map(len, cells))
        cells = [cell[:runs] for cell in cells]
        held = min(n, 2, runs - 2)  # at least 2 runs left for a standard deviation
        rate = compare.held_out_rates(cells, held, epochs)["differs"] if held > 0 else math.nan
        lines.append("| %s | %d against %d | %d | %.2f | %.2f | %.1f%% | %.1f%% | %s |" % (
            setup, n, m, epochs, calibration.differ_above, calibration.agree_below,
            100 * calibration.false_alarm, 100 * calibration.false_agreement,
            "%.1f%% (%d against %d)" % (100 * rate, held, runs - held)
            if held > 0 else "- (too few original runs)"))
    return lines + [""]


def _claim_side(groups):
    """The cells of one side for the claims, and why they cannot be used (or None)."""
    cells = {group.cell: group for group in groups if group.finished}
    early = sorted({(group.at_epoch, group.key.epochs) for group in cells.values()
                    if group.at_epoch is not None})
    stopped = ("after epoch %d of %d" % early[0]) if early else None
    return cells, stopped


def _claim_results(comparisons, reference_groups):
    """Every claim of :data:`plots.claims.CLAIMS` per setup, decided on both sides.

    Returns
    -------
    list of (claim, setup, applies, original, reproduced)
        ``applies(key)``: whether a group key is of the claim's setup and
        protocol; ``original``, ``reproduced``: :func:`plots.claims.evaluate`
        's answers.  The original's runs are independent draws (never paired).
    """
    mcgill = protocols.get("mcgill")
    results = []
    for claim in claim_records.CLAIMS:
        for setup in claim.setups:
            def applies(key, claim=claim, setup=setup):
                if claim.protocol == "mcgill":
                    return key.setup == setup and mcgill.trained(key)
                return key.setup == setup and not key.protocol_name
            reproduced = _claim_side([c.group for c in comparisons if applies(c.group.key)])
            cells, stopped = _claim_side([group for key, group in reference_groups.items()
                                          if applies(key)])
            theirs = (claim_records.evaluate(claim, claim_records.independent(cells), stopped)
                      if cells or claim.protocol == "blog" else
                      "cannot tell: the original ran no runs of this protocol")
            results.append((claim, setup, applies, theirs,
                            claim_records.evaluate(claim, *reproduced)))
    return results


def _claims_table(results):
    """The claims on the original and reproduced runs (:func:`_claim_results`)."""
    lines = ["### The claims, on both sides", "",
             "Each claim of the blog post (per setup) and of the McGill study (under its own "
             "protocol), decided on the original runs and on the reproduced ones "
             "(`plots/claims.py`: what each looks at is in its cell). Pairs of cells are "
             "compared run by run (paired differences) where both cells share their draws "
             "(common seeding); the original's runs are independent draws.", "",
             "| source | setup | claim | original runs | reproduced runs |",
             "|---|---|---|---|---|"]
    for claim, setup, _, theirs, ours in results:
        lines.append("| %s | %s | %s | %s | %s |" % (claim.source, setup, claim.text, theirs,
                                                     ours))
    return lines + [""]


def _summary(comparisons, reference_groups, calibrations):
    """The opening table (one row per setup and protocol) and the cells that differ."""
    lines = ["| setup | protocol | data | runs | epochs | cells of the blog's grid: agree / "
             "differ / inconclusive / n/a / not run | claims that hold (table below): "
             "reproduced / original |", "|---|---|---|---|---|---|---|"]
    differ = []
    results = _claim_results(comparisons, reference_groups)
    for section in _protocol_sections(comparisons):
        key = section[0].group.key
        groups = [c.group for c in section]
        finished = sum(len(g.finished) for g in groups if g.at_epoch is None)
        early = sum(len(g.finished) for g in groups if g.at_epoch is not None)
        diverged, running = sum(g.diverged for g in groups), sum(g.running for g in groups)
        blog = protocols.get("blog") if not key.protocol_name else None
        runs = "%d complete, %d diverged" % (finished, diverged)
        if early:
            runs += ", %d stopped early" % early
        if running:
            runs += ", %d running" % running
        if blog:
            runs += " (of the blog's %d)" % (blog.cells() * blog.runs)
        epochs = sorted({g.at_epoch or key.epochs for g in groups if g.finished})
        epochs_text = "-" if not epochs else "%d" % key.epochs if epochs == [key.epochs] \
            else "%s of %d" % ("-".join(map(str, sorted({epochs[0], epochs[-1]}))), key.epochs)
        verdicts = [c.verdict for c in section]
        cells_text = "%d / %d / %d / %d / %s" % (
            verdicts.count("agrees"), verdicts.count("differs"),
            verdicts.count("inconclusive"), verdicts.count("n/a"),
            # Cells of other optimizers (ADAMNC, plug-ins) are not in the blog's grid.
            "%d" % (blog.cells() - sum(c.group.cell[0] in blog.optimizers for c in section))
            if blog else "-")
        applying = [result for result in results if result[2](key)]
        claims_text = ("-" if not applying else "%s / %s" % (
            _claims_text([result[4] for result in applying]),
            _claims_text([result[3] for result in applying])))
        lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            key.setup, "the blog's" if blog else _protocol_text(key), _data_text(section), runs,
            epochs_text, cells_text, claims_text))
        differ += [c for c in section if c.verdict in ("differs", "inconclusive")]
    lines += ["", "Original runs: the blog's logs, on the official data sets.", ""]
    lines += _error_rates(calibrations, reference_groups)
    lines += _claims_table(results)
    lines += ["### Cells that differ from the original, or cannot be told apart yet", ""]
    differ.sort(key=lambda c: VERDICT_ORDER.index(c.verdict))
    lines += ["- %s %s (runs: %s): **%s**, %s" % (c.group.key.setup, _cell_text(c.group.cell),
                                                  _runs_text(c.group), c.verdict, c.reason)
              for c in differ] or ["None."]
    return lines + [""]


def _setup_section(section, reference_groups, figures):
    """Cells table and claims of one setup and protocol."""
    protocol = section[0].group.key
    setup = protocol.setup
    lines = ["## %s" % setup, "", "Protocol: %s." % _protocol_text(protocol),
             "Data: %s." % _data_text(section), "Machines: %s." % _machines_text(section)]
    names = [os.path.basename(path) for path in figures if path.endswith(".png")]
    stem = figure_stem(protocol)
    # This protocol's figures (other protocols' names hold "="), and the reproduction
    # study's Figure 2 in the section of its protocol.
    mcgill = protocols.get("mcgill").trained(protocol)
    names = [name for name in names if (
        name.startswith(stem + "_") and "=" not in name[len(stem) + 1:]
        and not name.endswith("_mcgill.png")) or (mcgill and name == setup + "_mcgill.png")]
    if names:
        lines.append("Figures: %s." % ", ".join("[%s](%s)" % (name[:-4], name) for name in names))
    verdicts = [comparison.verdict for comparison in section]
    lines += ["", "### Cells", "", "%d cells: %d agree, %d differ, %d inconclusive, %d n/a." % (
        len(verdicts), verdicts.count("agrees"), verdicts.count("differs"),
        verdicts.count("inconclusive"), verdicts.count("n/a")), ""]
    lines += _cell_rows(sorted(section, key=lambda c: VERDICT_ORDER.index(c.verdict)))

    cells, original_cells = _claim_cells(section, reference_groups)
    lines += ["", "### Pair by pair", "",
              "Cells that differ only in the optimizer (or only in bias correction): in how many "
              "pairs the first is better, by more than %g standard deviations (pooled, or of the "
              "paired differences where the two cells share their draws), the mean difference "
              "and the median d." % AGREE_WITHIN]
    if original_cells:
        lines[-1] += " Original evaluated on the same %d cells (of %d reproduced)." % (
            len(original_cells), len(cells))
    theirs = pair_effects(claim_records.independent(original_cells)) if original_cells else None
    lines += ["", "| pair | measure | reproduced | original |", "|---|---|---|---|"]
    for index, (pair, measure, text) in enumerate(pair_effects(cells)):
        original = theirs[index][2] if theirs else "no original runs of this protocol"
        lines.append("| %s | %s | %s | %s |" % (pair, _measure_name(measure), text, original))
    return lines + [""]


def _synthetic_section(synthetic):
    lines = ["## Synthetic problem (Reddi et al.)", "",
             "The optimum is x = -1; Adam is expected near +1, AMSGrad near -1.", "",
             "| setting | optimizer | steps | final x | average regret |", "|---|---|---|---|---|"]
    for setting, optimizers in synthetic["summary"].items():
        for optimizer, values in optimizers.items():
            lines.append("| %s | %s | %d | %.4f | %.4g |" % (
                setting, optimizer, values["steps"], values["final_x"], values["avg_regret"]))
    lines.append("")
    for path in synthetic["figures"]:
        if path.endswith(".png"):
            lines.append("Figure: [%s](%s)" % (os.path.basename(path), os.path.basename(path)))
    return lines + [""]


def _markdown(comparisons, reference_groups, problems, figures, synthetic, sources,
              calibrations):
    lines = _introduction(reference_groups, sources)
    lines[2:2] = _summary(comparisons, reference_groups, calibrations)
    for section in _protocol_sections(comparisons):
        lines += _setup_section(section, reference_groups, figures)
    if synthetic:
        lines += _synthetic_section(synthetic)
    lines += ["## Skipped files", ""]
    lines += ["- `%s`: %s" % (problem.path, problem.reason) for problem in problems] or ["None."]
    return "\n".join(lines) + "\n"


def _judged_fields(judged):
    """The verdict's statistic and thresholds for ``report.csv`` (NaN where not judged)."""
    if judged is None:
        return dict(largest_distance=math.nan, largest="", differs_above=math.nan,
                    agrees_below=math.nan, false_alarm=math.nan)
    return dict(largest_distance=judged.statistic, largest=judged.largest,
                differs_above=judged.calibration.differ_above,
                agrees_below=judged.calibration.agree_below,
                false_alarm=judged.calibration.false_alarm)


def _csv_rows(comparisons):
    fields = ["setup", "optimizer", "lr", "beta2", "bias_correction", "epochs", "batch_size",
              "lr_schedule", "loss", "cifar_centering", "data", "at_epoch", "measure", "n",
              "diverged", "running", "mean", "std", "original_n", "original_mean",
              "original_std", "pooled_std", "difference", "d", "verdict", "reason",
              "largest_distance", "largest", "differs_above", "agrees_below",
              "false_alarm"]
    rows = []
    for comparison in comparisons:
        key, group = comparison.group.key, comparison.group
        for measure, row in comparison.rows.items():
            rows.append(dict(row, setup=key.setup, optimizer=key.optimizer, lr=key.lr,
                             beta2=key.beta2, bias_correction=key.bias_correction,
                             epochs=key.epochs, batch_size=key.batch_size,
                             lr_schedule=key.lr_schedule, loss=key.loss,
                             cifar_centering=key.cifar_centering,
                             data="; ".join(sorted(group.data)),
                             at_epoch="" if group.at_epoch is None else group.at_epoch,
                             measure=measure,
                             diverged=group.diverged, running=group.running,
                             verdict=comparison.verdict, reason=comparison.reason,
                             **_judged_fields(comparison.judged)))
    return fields, rows


def write_report(out_dir, runs, reference, problems=(), figures=(), synthetic=None,
                 sources=("results", "reference/original_runs.json")):
    """Write ``REPORT.md`` and ``report.csv`` to ``out_dir``.

    Parameters
    ----------
    out_dir : str
    runs : list of plots.results.Run
        The reproduced runs
    reference : dict of str -> list of plots.results.Run
        The original runs per setup (:func:`plots.results.load_reference`)
    problems : list of plots.results.Problem
        Skipped files, listed at the end of the report
    figures : list of str
        Paths of the figures written to ``out_dir`` (linked from the report)
    synthetic : dict or None
        ``{"summary": {setting: {optimizer: {"final_x", "avg_regret",
        "steps"}}}, "figures": [paths]}`` for the synthetic section
    sources : (str, str)
        The results directory and reference file, as named in the report

    Returns
    -------
    (str, str)
        The paths of ``REPORT.md`` and ``report.csv``

    Notes
    -----
    ``report.csv`` has one row per cell, protocol and measure, with the
    numbers of ``REPORT.md`` at full precision (empty where there is nothing),
    the data the runs were trained on and ``at_epoch`` (the epoch a cell of
    runs stopped early is compared after; empty: at the runs' end).
    """
    reference_groups = group_runs([run for runs_of_setup in reference.values()
                                   for run in runs_of_setup])
    calibrations = {}
    comparisons = compare_cells(group_runs(runs), reference_groups, calibrations)
    os.makedirs(out_dir, exist_ok=True)
    report_path = os.path.join(out_dir, "REPORT.md")
    csv_path = os.path.join(out_dir, "report.csv")
    # Atomic: a reader (or a second make_figures) never sees half a report.
    markdown = _markdown(comparisons, reference_groups, problems, figures, synthetic,
                         tuple(sources), calibrations)
    atomic_write_bytes(report_path, markdown.encode("utf-8"))
    fields, rows = _csv_rows(comparisons)
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        writer.writerow({name: "" if isinstance(value, float) and math.isnan(value) else value
                         for name, value in row.items()})
    atomic_write_bytes(csv_path, table.getvalue().encode("utf-8"))
    return report_path, csv_path
