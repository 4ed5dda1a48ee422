"""
The reproduction report's findings: reproduced runs against the original runs, as numbers.

.. autosummary::
    :nosignatures:

    compare_cells
    find
    Findings

For every setup and cell, five measures per run (final and best validation
loss and accuracy, final training loss) are summarised as mean and standard
deviation over the runs and set next to the original runs' (with the
difference in pooled standard deviations, descriptive); so are the final and
best values of any curve declared besides (:mod:`experiments.records.curves`),
which the original runs lack: reported, never compared.  The verdict,
``agrees``, ``differs`` or ``inconclusive``, is :mod:`plots.verdict.compare`
's, over the whole curves, against thresholds calibrated on the original runs
of the same setup and protocol; their error rates are measured on the original
runs; the claims of :mod:`plots.verdict.claims` are decided on both sides, and
pair by pair :func:`plots.verdict.cells.pair_effects` sizes what the optimizer
and bias correction change.  :func:`find` computes all of it into a
:class:`Findings`, which :mod:`plots.report` writes as ``REPORT.md`` and
``report.csv`` without computing anything more.

Examples
--------
>>> from plots.verdict.results import find_runs, load_reference
>>> from plots.verdict.findings import find
>>> runs, problems = find_runs("results")                      # doctest: +SKIP
>>> reference, _ = load_reference()                            # doctest: +SKIP
>>> [c.verdict for c in find(runs, reference).comparisons]     # doctest: +SKIP
['agrees', ...]
"""
import collections
import dataclasses
import math
import os

import numpy as np

from experiments.records import protocols
from experiments.records.curves import measures as declared_measures
from experiments.store.rundir import describe_machines
from plots.verdict import claims as claim_records
from plots.verdict import compare, two_optimizers
from plots.verdict.cells import (CELL_FIELDS, Cell, Group, effect_size, group_runs, independent,
                                 mean_std, pair_effects, pooled_std, run_measures)
from plots.verdict.compare import MEASURES
from plots.verdict.results import figure_stem

__all__ = ["VERDICT_ORDER", "DEFAULT_COMPARISONS", "OptimizersCompared", "CellComparison", "compare_cells", "protocol_text", "HeldOut",
           "ErrorRate",
           "ClaimResult", "ClaimTally", "Section", "Findings", "find"]

#: Cells listed in this order: those that differ first.
VERDICT_ORDER = ("differs", "inconclusive", "agrees", "n/a")
#: The optimizers the report compares, two by two, where a setup has both (``--compare A B``
#: names others).
DEFAULT_COMPARISONS = (("adam", "amsgrad"), ("adamnc", "amsgrad"))


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


def _protocol_fields(key):
    """The fields of a group key that are not the cell: equal for runs of one protocol."""
    return tuple((name, value) for name, value in dataclasses.asdict(key).items()
                 if name not in CELL_FIELDS)


def _original_cells(reference_groups, key, epochs):
    """The original runs of every cell of ``key``'s setup and protocol, ``(runs, 4, epochs)``
    each: what the thresholds are calibrated on."""
    protocol = _protocol_fields(key)
    return [compare.stack_curves(group.finished_runs, epochs)
            for other, group in reference_groups.items()
            if _protocol_fields(other) == protocol and len(group.finished_runs) >= 2
            and min(run.epochs_done for run in group.finished_runs) >= epochs]


def _judge(group, original, reference_groups, calibrations):
    """The :class:`plots.verdict.compare.Verdict` of a group against its original group;
    ``calibrations`` caches the thresholds per protocol, numbers of runs and epochs."""
    epochs = group.at_epoch or group.key.epochs
    n, m = len(group.finished_runs), len(original.finished_runs)
    cache_key = (_protocol_fields(group.key), n, m, epochs)
    if cache_key not in calibrations:
        calibrations[cache_key] = compare.calibrate(
            _original_cells(reference_groups, group.key, epochs), n, m, epochs)
    return compare.judge(compare.stack_curves(group.finished_runs, epochs),
                         compare.stack_curves(original.finished_runs, epochs),
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
        :class:`plots.verdict.compare.Calibration` of ``judged``).
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


# -- the verdicts' error rates ---------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class HeldOut:
    """Verdicts on original runs held out of their own cell, against its other runs.

    Attributes
    ----------
    held, against : int
        Runs held out, and the cell's other runs they are judged against
    rates : dict of str -> float
        Share of held-out sets per verdict (``agrees``, ``differs``, ``inconclusive``)
    model_false_alarm : float
        The model's false-alarm rate for the same numbers of runs and epochs
    """
    held: int
    against: int
    rates: dict
    model_false_alarm: float


@dataclasses.dataclass(frozen=True)
class ErrorRate:
    """The thresholds some verdicts used, with their error rates measured.

    Attributes
    ----------
    setup : str
    calibration : plots.verdict.compare.Calibration
        The thresholds, for n reproduced against m original runs over E epochs
        (with the model's rates: on draws from the original cells' Gaussian models)
    held_out : list of HeldOut
        Measured on the original runs themselves: 1 against r - 1 and 2 against
        r - 2 (r the runs per original cell; none with fewer than 4)
    permutation_cells : list of plots.verdict.cells.Cell
        The original cells not of one mode, judged by permutation
    """
    setup: str
    calibration: object
    held_out: list
    permutation_cells: list


def _error_rates(comparisons, reference_groups):
    """One :class:`ErrorRate` per protocol, numbers of runs and epochs judged, by n, m, E."""
    calibrations = {}
    for comparison in comparisons:
        if comparison.judged is not None:
            calibration = comparison.judged.calibration
            calibrations[(_protocol_fields(comparison.group.key), calibration.n,
                          calibration.m, calibration.epochs)] = calibration
    rates = []
    for (protocol, n, m, epochs), calibration in sorted(calibrations.items(),
                                                        key=lambda item: item[0][1:]):
        keys = [key for key in reference_groups if _protocol_fields(key) == protocol]
        cells = _original_cells(reference_groups, keys[0], epochs)
        runs = min(map(len, cells))
        cells = [cell[:runs] for cell in cells]
        held_out = []
        for held in (1, 2):
            if runs - held < 2:  # at least 2 runs left for a standard deviation
                continue
            model = compare.calibrate(cells, held, runs - held, epochs)
            held_out.append(HeldOut(held, runs - held, compare.held_out_rates(
                cells, held, epochs, calibration=model), model.false_alarm))
        permutation = [reference_groups[key].cell for key in keys
                       if len(reference_groups[key].finished_runs) >= 2
                       and not compare.one_mode(compare.stack_curves(
                           reference_groups[key].finished_runs, epochs))]
        rates.append(ErrorRate(dict(protocol)["setup"], calibration, held_out, permutation))
    return rates


# -- the claims ------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ClaimResult:
    """A claim of :data:`plots.verdict.claims.CLAIMS` on one setup, decided on both sides
    (:func:`plots.verdict.claims.evaluate` 's answers)."""
    claim: object
    setup: str
    original: str
    reproduced: str


@dataclasses.dataclass(frozen=True)
class ClaimTally:
    """Of some claims decided on one side: how many hold, of how many, how many cannot tell."""
    holds: int
    total: int
    cannot_tell: int

    @classmethod
    def of(cls, answers):
        return cls(sum(answer.startswith("holds") for answer in answers), len(answers),
                   sum(answer.startswith("cannot tell") for answer in answers))


def _applies(claim, setup, key):
    """Whether a group key is of the claim's setup and protocol."""
    if claim.protocol == "mcgill":
        return key.setup == setup and protocols.get("mcgill").trained(key)
    return key.setup == setup and not key.protocol_name


def _claim_side(groups):
    """The cells of one side for the claims, and why they cannot be used (or None)."""
    # The claims are about Adam and AMSGrad: other optimizers' cells (ADAMNC, plug-ins) are not
    # theirs.
    cells = {group.cell: group for group in groups if group.finished
             and group.cell.optimizer in ("adam", "amsgrad")}
    early = sorted({(group.at_epoch, group.key.epochs) for group in cells.values()
                    if group.at_epoch is not None})
    stopped = ("after epoch %d of %d" % early[0]) if early else None
    return cells, stopped


def _claim_results(comparisons, reference_groups):
    """Every claim per setup, decided on both sides; the original's runs are independent
    draws (never paired)."""
    results = []
    for claim in claim_records.CLAIMS:
        for setup in claim.setups:
            reproduced = _claim_side([c.group for c in comparisons
                                      if _applies(claim, setup, c.group.key)])
            cells, stopped = _claim_side([group for key, group in reference_groups.items()
                                          if _applies(claim, setup, key)])
            theirs = (claim_records.evaluate(claim, independent(cells), stopped)
                      if cells or claim.protocol == "blog" else
                      "cannot tell: the original ran no runs of this protocol")
            results.append(ClaimResult(claim, setup, theirs,
                                       claim_records.evaluate(claim, *reproduced)))
    return results


def _original_claims(reference_groups, setups):
    """Per setup of the original runs, its blog claims decided on them (all of them, also of
    setups no reproduced run has)."""
    tallies = {}
    for setup in setups:
        answers = []
        for claim in claim_records.CLAIMS:
            if claim.protocol == "blog" and setup in claim.setups:
                cells, stopped = _claim_side([group for key, group in reference_groups.items()
                                              if _applies(claim, setup, key)])
                answers.append(claim_records.evaluate(claim, independent(cells), stopped))
        tallies[setup] = ClaimTally.of(answers)
    return tallies


# -- two optimizers compared ----------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class OptimizersCompared:
    """A :class:`plots.verdict.two_optimizers.OptimizerComparison` of one setup and protocol.

    ``protocol`` is the group key of a cell of the section; ``side`` ``reproduced`` or
    ``original`` (the original's runs of the same protocol).
    """
    protocol: object
    side: str
    comparison: object


def _optimizer_comparisons(comparisons, reference_groups, pairs_of_optimizers):
    """Every pair of optimizers of ``pairs_of_optimizers`` on every setup and protocol with
    finished runs of both, on the reproduced runs and on the original's."""
    found = []
    for section in _protocol_sections(comparisons):
        protocol = _protocol_fields(section[0].group.key)
        reproduced = {c.group.cell: c.group for c in section if len(c.group.finished) >= 1
                      and c.group.at_epoch is None}
        original = {group.cell: group for key, group in reference_groups.items()
                    if _protocol_fields(key) == protocol and group.finished}
        for first, second in pairs_of_optimizers:
            for side, cells in (("reproduced", reproduced), ("original", original)):
                optimizers = {cell.optimizer for cell in cells}
                if first in optimizers and second in optimizers:
                    found.append(OptimizersCompared(
                        section[0].group.key, side,
                        two_optimizers.compare_optimizers(cells, first, second)))
    return found


# -- setups and protocols --------------------------------------------------------------------

@dataclasses.dataclass
class Section:
    """The cells of one setup under one protocol, and what is found about them.

    Attributes
    ----------
    protocol : experiments.records.config.RunConfig
        The group key of the first cell (its protocol fields are the section's)
    blog_runs : int or None
        The runs of the blog's grid, where the section's protocol is the blog's
    comparisons : list of CellComparison
        In the order of the groups
    by_verdict : list of CellComparison
        The same in :data:`VERDICT_ORDER`
    verdicts : dict of str -> int
        Cells per verdict of :data:`VERDICT_ORDER`
    finished, stopped_early, diverged, running : int
        Runs counted at their end, compared early, diverged, still running
    not_run : int or None
        Cells of the blog's grid without a group here (None for another protocol)
    epochs : list of int
        The epochs the cells with finished runs are compared after, sorted
    data, machines : list
        What the runs were trained on; what trained the runs in the statistics,
        as ``(description, runs)``; both sorted
    figures : list of str
        The file names of this section's figures
    claims : (ClaimTally, ClaimTally) or None
        The claims of this setup and protocol, reproduced and original side
    pairs, original_pairs : list of plots.verdict.cells.PairEffect
        On the reproduced cells with finished runs, and on the original runs of
        the same cells (None where the original has none)
    cells, original_cells : int
        How many cells each pair table is evaluated on
    """
    protocol: object
    blog_runs: object
    comparisons: list
    by_verdict: list
    verdicts: dict
    finished: int
    stopped_early: int
    diverged: int
    running: int
    not_run: object
    epochs: list
    data: list
    machines: list
    figures: list
    claims: object
    pairs: list
    original_pairs: object
    cells: int
    original_cells: int


def _protocol_sections(comparisons):
    """Comparisons split by setup and protocol (the key without the cell), in order."""
    sections = {}
    for comparison in comparisons:
        sections.setdefault(_protocol_fields(comparison.group.key), []).append(comparison)
    return list(sections.values())


def _figures(protocol, figures):
    """This protocol's figures (other protocols' names hold "="), and the reproduction
    study's Figure 2 in the section of its protocol."""
    names = [os.path.basename(path) for path in figures if path.endswith(".png")]
    stem = figure_stem(protocol)
    mcgill = protocols.get("mcgill").trained(protocol)
    return [name for name in names if (
        name.startswith(stem + "_") and "=" not in name[len(stem) + 1:]
        and not name.endswith("_mcgill.png"))
        or (mcgill and name == protocol.setup + "_mcgill.png")]


def _section(comparisons, claims, figures):
    key = comparisons[0].group.key
    groups = [c.group for c in comparisons]
    blog = protocols.get("blog") if not key.protocol_name else None
    verdicts = [c.verdict for c in comparisons]
    # What trained the runs in the statistics: curves are the same only on the same machine.
    machines = collections.Counter(describe_machines(run.machines) for group in groups
                                   for run in group.finished_runs + group.stopped)
    applying = [result for result in claims if _applies(result.claim, result.setup, key)]
    # The claims' cells: the original's at the same epochs as the reproduced ones (cells
    # compared early), and only of the same protocol.
    cells = {c.group.cell: c.group for c in comparisons if c.group.finished}
    original_cells = {c.original.cell: c.original for c in comparisons
                      if c.original is not None and c.group.cell in cells}
    return Section(
        protocol=key, blog_runs=blog.cells() * blog.runs if blog else None,
        comparisons=comparisons,
        by_verdict=sorted(comparisons, key=lambda c: VERDICT_ORDER.index(c.verdict)),
        verdicts={verdict: verdicts.count(verdict) for verdict in VERDICT_ORDER},
        finished=sum(len(g.finished) for g in groups if g.at_epoch is None),
        stopped_early=sum(len(g.finished) for g in groups if g.at_epoch is not None),
        diverged=sum(g.diverged for g in groups), running=sum(g.running for g in groups),
        # Cells of other optimizers (ADAMNC, plug-ins) are not in the blog's grid.
        not_run=(blog.cells() - sum(g.cell.optimizer in blog.optimizers for g in groups)
                 if blog else None),
        epochs=sorted({g.at_epoch or key.epochs for g in groups if g.finished}),
        data=sorted(set().union(*(g.data for g in groups))),
        machines=sorted(machines.items()), figures=_figures(key, figures),
        claims=(ClaimTally.of([result.reproduced for result in applying]),
                ClaimTally.of([result.original for result in applying])) if applying else None,
        pairs=pair_effects(cells),
        original_pairs=pair_effects(independent(original_cells)) if original_cells else None,
        cells=len(cells), original_cells=len(original_cells))


@dataclasses.dataclass
class Findings:
    """The whole report, computed.

    Attributes
    ----------
    comparisons : list of CellComparison
        Every reproduced cell, in the order of the groups
    sections : list of Section
        Per setup and protocol, in the order of their first cell
    unsettled : list of CellComparison
        The cells that differ, then those inconclusive
    error_rates : list of ErrorRate
    claims : list of ClaimResult
    original_claims : dict of str -> ClaimTally
        Per setup of the original runs, its blog claims decided on them (a setup
        without claims, such as SmallVgg, maps to a tally of 0)
    optimizers_compared : list of OptimizersCompared
    original_setups : list of str
    original_runs, original_epochs : list of int
        The original's runs per cell and epochs (all values, sorted)
    measures : dict
        The measures of every cell, ``{measure: (curve, final or best, lower is
        better)}`` (:func:`experiments.records.curves.measures`): those the
        verdict compares first (:data:`plots.verdict.compare.MEASURES`)
    reported_only : list of str
        The curves shown but not compared: the original runs lack them
    """
    comparisons: list
    sections: list
    unsettled: list
    error_rates: list
    claims: list
    original_claims: dict
    optimizers_compared: list
    original_setups: list
    original_runs: list
    original_epochs: list
    measures: dict
    reported_only: list


def find(runs, reference, figures=(), optimizer_pairs=DEFAULT_COMPARISONS):
    """Compute the report of reproduced runs against the original runs.

    Parameters
    ----------
    runs : list of plots.verdict.results.Run
        The reproduced runs
    reference : dict of str -> list of plots.verdict.results.Run
        The original runs per setup (:func:`plots.verdict.results.load_reference`)
    figures : list of str
        Paths of the figures drawn (each section names its own)
    optimizer_pairs : list of (str, str)
        The optimizers compared two by two (:mod:`plots.verdict.two_optimizers`)
        where a setup has both

    Returns
    -------
    Findings
    """
    measures = declared_measures()
    reference_groups = group_runs([run for runs_of_setup in reference.values()
                                   for run in runs_of_setup])
    comparisons = compare_cells(group_runs(runs), reference_groups)
    claims = _claim_results(comparisons, reference_groups)
    sections = [_section(section, claims, figures)
                for section in _protocol_sections(comparisons)]
    unsettled = [c for section in sections for c in section.comparisons
                 if c.verdict in ("differs", "inconclusive")]
    unsettled.sort(key=lambda c: VERDICT_ORDER.index(c.verdict))
    original_setups = sorted({key.setup for key in reference_groups})
    return Findings(
        comparisons=comparisons, sections=sections, unsettled=unsettled,
        error_rates=_error_rates(comparisons, reference_groups), claims=claims,
        original_claims=_original_claims(reference_groups, original_setups),
        optimizers_compared=_optimizer_comparisons(comparisons, reference_groups,
                                                   optimizer_pairs),
        original_setups=original_setups,
        original_runs=sorted({len(group.finished) for group in reference_groups.values()}),
        original_epochs=sorted({key.epochs for key in reference_groups}),
        measures=measures, reported_only=list(dict.fromkeys(
            curve for name, (curve, _, _) in measures.items() if name not in MEASURES)))
