"""
The reproduction report's findings: reproduced runs against the original runs, as numbers.

.. autosummary::
    :nosignatures:

    find
    Findings
    Section

:func:`find` computes the whole report into a :class:`Findings`: every cell
against the original cell of the same key
(:func:`plots.verdict.cell_comparisons.compare_cells`), the verdicts' error
rates measured on the original runs (:mod:`plots.verdict.error_rates`), the
claims of :mod:`plots.verdict.claims` decided on both sides
(:mod:`plots.verdict.claim_results`), any two optimizers compared
(:mod:`plots.verdict.two_optimizers`) and, per setup and protocol, a
:class:`Section`, where pair by pair :func:`plots.verdict.cells.pair_effects`
sizes what the optimizer and bias correction change.  :mod:`plots.report`
writes the findings as ``REPORT.md`` and ``report.csv`` without computing
anything more.

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
import os

from experiments.records import protocols
from experiments.records.curves import measures as declared_measures
from experiments.store.rundir import describe_machines
from plots.verdict import two_optimizers
from plots.verdict.cell_comparisons import compare_cells, protocol_fields
from plots.verdict.cells import group_runs, independent, pair_effects
from plots.verdict.claim_results import ClaimTally, applies, decide_claims, original_claims
from plots.verdict.distances import MEASURES
from plots.verdict.error_rates import error_rates
from plots.verdict.results import figure_stem

__all__ = ["VERDICT_ORDER", "DEFAULT_COMPARISONS", "OptimizersCompared", "Section", "Findings",
           "find"]

#: Cells listed in this order: those that differ first.
VERDICT_ORDER = ("differs", "inconclusive", "agrees", "n/a")
#: The optimizers the report compares, two by two, where a setup has both (``--compare A B``
#: names others).
DEFAULT_COMPARISONS = (("adam", "amsgrad"), ("adamnc", "amsgrad"))


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
        protocol = protocol_fields(section[0].group.key)
        reproduced = {c.group.cell: c.group for c in section if len(c.group.finished) >= 1
                      and c.group.at_epoch is None}
        original = {group.cell: group for key, group in reference_groups.items()
                    if protocol_fields(key) == protocol and group.finished}
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
    comparisons : list of plots.verdict.cell_comparisons.CellComparison
        In the order of the groups
    by_verdict : list of plots.verdict.cell_comparisons.CellComparison
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
        sections.setdefault(protocol_fields(comparison.group.key), []).append(comparison)
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
    applying = [result for result in claims if applies(result.claim, result.setup, key)]
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
    comparisons : list of plots.verdict.cell_comparisons.CellComparison
        Every reproduced cell, in the order of the groups
    sections : list of Section
        Per setup and protocol, in the order of their first cell
    unsettled : list of plots.verdict.cell_comparisons.CellComparison
        The cells that differ, then those inconclusive
    error_rates : list of plots.verdict.error_rates.ErrorRate
    claims : list of plots.verdict.claim_results.ClaimResult
    original_claims : dict of str -> plots.verdict.claim_results.ClaimTally
        Per setup of the original runs, its blog claims decided on them (a setup
        without claims, such as SmallVgg, maps to a tally of 0)
    optimizers_compared : list of OptimizersCompared
    original_setups : list of str
    original_runs, original_epochs : list of int
        The original's runs per cell and epochs (all values, sorted)
    measures : dict
        The measures of every cell, ``{measure: (curve, final or best, lower is
        better)}`` (:func:`experiments.records.curves.measures`): those the
        verdict compares first (:data:`plots.verdict.distances.MEASURES`)
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
    claims = decide_claims(comparisons, reference_groups)
    sections = [_section(section, claims, figures)
                for section in _protocol_sections(comparisons)]
    unsettled = [c for section in sections for c in section.comparisons
                 if c.verdict in ("differs", "inconclusive")]
    unsettled.sort(key=lambda c: VERDICT_ORDER.index(c.verdict))
    original_setups = sorted({key.setup for key in reference_groups})
    return Findings(
        comparisons=comparisons, sections=sections, unsettled=unsettled,
        error_rates=error_rates(comparisons, reference_groups), claims=claims,
        original_claims=original_claims(reference_groups, original_setups),
        optimizers_compared=_optimizer_comparisons(comparisons, reference_groups,
                                                   optimizer_pairs),
        original_setups=original_setups,
        original_runs=sorted({len(group.finished) for group in reference_groups.values()}),
        original_epochs=sorted({key.epochs for key in reference_groups}),
        measures=measures, reported_only=list(dict.fromkeys(
            curve for name, (curve, _, _) in measures.items() if name not in MEASURES)))
