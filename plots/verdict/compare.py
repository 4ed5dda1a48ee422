"""
Reproduced runs of a cell against the original runs of the same cell: agree, differ, or cannot tell.

.. autosummary::
    :nosignatures:

    Verdict
    judge
    judge_runs
    permutation_judge
    held_out_rates

A cell's runs are judged by the largest of nine distances to the original
runs (:mod:`plots.verdict.distances`: the whole curves and the five measures
of the blog's tables) against thresholds calibrated on the original runs of
the same setup (:mod:`plots.verdict.calibration`): ``differs`` above the
upper threshold, ``agrees`` at or below the lower one, ``inconclusive`` in
between, or with too few runs or epochs to tell the two apart.

**Cells not of one mode.**  A cell one of whose runs lies far from the
others (:func:`plots.verdict.distances.one_mode`: CifarNet's AMSGrad cell at
lr 0.01 with one run of five that escaped chance) has no Gaussian model: it
is left out of the calibration and judged by a permutation instead
(:func:`permutation_judge`: the statistic of every split of the pooled runs
into n and m; ``differs`` where at most
:data:`plots.verdict.calibration.ALPHA` of the splits reach the observed
one, otherwise ``inconclusive``: a permutation grants no ``agrees``).
:attr:`Verdict.rule` says which rule judged a cell.  :func:`held_out_rates`
measures the same verdicts on original runs themselves (some runs of a cell
held out as the "reproduction", the others as the reference): the check that
the Gaussian model's rates hold for the real, non-Gaussian runs
(``tests/test_compare.py``).

Examples
--------
>>> import numpy as np
>>> from plots.verdict.calibration import calibrate
>>> from plots.verdict.compare import judge
>>> cells = [np.random.default_rng(k).normal(size=(5, 4, 10)) + 1 for k in range(3)]
>>> calibration = calibrate(cells, n=1, m=5, epochs=10)
>>> judge(cells[0][:1] + 10, cells[0], calibration).verdict
'differs'
"""
import dataclasses
import itertools
import math

import numpy as np

from plots.verdict.calibration import ALPHA, Calibration, calibrate
from plots.verdict.distances import (CURVES, DISTANCES, distances, one_mode, stack_curves,
                                     statistic)

__all__ = ["Verdict", "classify", "judge", "judge_runs", "held_out_rates", "permutation_judge"]


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The judgement of one cell.

    ``verdict`` is ``agrees``, ``differs`` or ``inconclusive``; ``statistic``
    the largest distance, ``largest`` its name
    (:data:`plots.verdict.distances.DISTANCES`), ``signed``
    its value with its sign (reproduced minus original), ``distances`` all
    nine; ``calibration`` the thresholds it was judged by; ``rule``
    ``thresholds`` or, for an original cell not of one mode, ``permutation``,
    with ``p`` its p-value (NaN under the thresholds).
    """
    verdict: str
    statistic: float
    largest: str
    signed: float
    distances: dict
    calibration: Calibration
    rule: str = "thresholds"
    p: float = math.nan
    splits: int = 0

    def reason(self):
        calibration = self.calibration
        if self.rule == "permutation":
            return ("original cell not of one mode, judged by permutation: largest distance "
                    "%s %+.1f reached by %d of the %d splits of the pooled runs, p %.3f %s %g"
                    % (self.largest, self.signed, round(self.p * self.splits), self.splits,
                       self.p, "<=" if self.verdict == "differs" else ">", ALPHA))
        comparison = {"differs": "> %.1f" % calibration.differ_above,
                      "agrees": "<= %.1f" % calibration.agree_below}.get(
            self.verdict, "in (%.1f, %.1f]" % (calibration.agree_below,
                                               calibration.differ_above))
        return "largest distance %s %+.1f %s" % (self.largest, self.signed, comparison)

    def explain(self):
        """The verdict, its reason, all nine distances and the thresholds' error rates."""
        return "%s: %s; distances %s; %s" % (
            self.verdict, self.reason(),
            ", ".join("%s %+.1f" % item for item in self.distances.items()),
            self.calibration.text())


def classify(reproduced, original, calibration):
    """The verdicts of many comparisons at once: reproduced ``(..., n, 4, E)`` against
    original ``(..., m, 4, E)``; an array of ``agrees``, ``differs``, ``inconclusive``."""
    largest = statistic(reproduced, original)
    return np.where(largest > calibration.differ_above, "differs",
                    np.where(largest <= calibration.agree_below, "agrees", "inconclusive"))


def judge(reproduced, original, calibration, permutation=None):
    """The verdict on reproduced runs ``(n, 4, E)`` against original runs ``(m, 4, E)``.

    ``calibration`` must be :func:`plots.verdict.calibration.calibrate` d for the same n, m and E.
    ``permutation``: whether the original cell is judged by
    :func:`permutation_judge`; None: where ``original`` is not of one mode
    (:func:`plots.verdict.distances.one_mode`).  Decide it on all the cell's
    original runs where only some are given (runs held out of it).
    """
    values = distances(reproduced, original)
    if not np.isfinite(values).any():
        raise ValueError("one run a side: no standard deviation to compare with")
    if permutation is None:
        permutation = not one_mode(original)
    if permutation:
        return permutation_judge(reproduced, original, calibration)
    index = int(np.nanargmax(np.abs(values)))
    verdict = str(classify(reproduced, original, calibration))
    return Verdict(verdict, float(abs(values[index])), DISTANCES[index], float(values[index]),
                   dict(zip(DISTANCES, map(float, values))), calibration)


def permutation_judge(reproduced, original, calibration):
    """The verdict by permutation: the statistic of every split of the pooled runs into n
    "reproduced" and m "original" runs; ``differs`` where the share of splits at or above
    the observed statistic (the observed split among them) is at most ALPHA, otherwise
    ``inconclusive``.  With 1 run against 5 the smallest share is 1/6: never ``differs``."""
    values = distances(reproduced, original)
    index = int(np.nanargmax(np.abs(values)))
    pooled = np.concatenate([reproduced, original])
    n = len(reproduced)
    splits = list(itertools.combinations(range(len(pooled)), n))
    ours = np.stack([pooled[list(split)] for split in splits])
    theirs = np.stack([np.delete(pooled, list(split), axis=0) for split in splits])
    statistics = statistic(ours, theirs)
    observed = float(np.nanmax(np.abs(values)))
    # Ties at the observed value (to rounding) count as reaching it.
    p = float(np.mean(statistics >= observed * (1 - 1e-9)))
    return Verdict("differs" if p <= ALPHA else "inconclusive", observed, DISTANCES[index],
                   float(values[index]), dict(zip(DISTANCES, map(float, values))), calibration,
                   "permutation", p, len(splits))


def judge_runs(runs, reference, cells, epochs, seed=0, calibration=None):
    """The verdict on runs against the reference runs of their cell, over the first epochs.

    What :func:`plots.verdict.cell_comparisons.compare_cells` does for a cell, for runs held in
    memory (the slow tests' training runs): thresholds calibrated on
    ``cells`` for ``len(runs)`` against ``len(reference)`` runs, then
    :func:`judge`.

    Parameters
    ----------
    runs, reference : list of dict or plots.verdict.results.Run
        The runs judged and the reference runs of the same cell (each a dict
        ``{curve: values}``, e.g. a ``history.json``, or a Run), with at
        least ``epochs`` epochs
    cells : list of list
        The reference runs of every cell of the setup (``reference`` among
        them, or not): what the thresholds are calibrated on.  Any set of
        runs of one experiment per cell will do (original or recorded runs)
    epochs : int
    seed : int
    calibration : Calibration or None
        Of ``cells`` for these numbers of runs and epochs, if already made
        (judging several runs against one setup); made here when None

    Returns
    -------
    Verdict
        ``verdict`` and, in :meth:`Verdict.explain`, why
    """
    calibration = calibration or calibrate([stack_curves(cell, epochs) for cell in cells], len(runs),
                            len(reference), epochs, seed)
    return judge(stack_curves(runs, epochs), stack_curves(reference, epochs), calibration)


def held_out_rates(cells, n, epochs, shift=0.0, curve=None, seed=0, calibration=None):
    """Verdicts on original runs held out of their own cell, as shares of the cells.

    Parameters
    ----------
    cells : list of numpy.ndarray
        ``(runs, 4, E0)`` per cell of a setup, all with the same number of runs r
    n : int
        Runs held out as the "reproduction" (every choice of n of the r runs,
        in turn); the other r - n are the reference, against thresholds
        calibrated for n against r - n.  A cell not of one mode (all its r
        runs) is judged by permutation, as :func:`judge` judges it
    epochs : int
    shift : float
        Moves the held-out runs' ``curve`` (or every curve, if None) up by
        this many standard deviations of their cell (its r runs, per epoch)
    seed : int
    calibration : Calibration or None
        Of n against r - n runs over ``epochs``;
        :func:`plots.verdict.calibration.calibrate` d when None

    Returns
    -------
    dict of str -> float
        Per verdict, the share of (cell, held-out set) judged so
    """
    runs = len(cells[0])
    calibration = calibration or calibrate(cells, n, runs - n, epochs, seed)
    counts = dict.fromkeys(("agrees", "differs", "inconclusive"), 0)
    total = 0
    for cell in cells:
        cell = cell[:, :, :epochs]
        permutation = not one_mode(cell)
        scale = cell.std(axis=0, ddof=1)
        for held in itertools.combinations(range(runs), n):
            reproduced = cell[list(held)].copy()
            if shift:
                curves = range(len(CURVES)) if curve is None else [CURVES.index(curve)]
                for index in curves:
                    reproduced[:, index] += shift * scale[index]
            rest = cell[[run for run in range(runs) if run not in held]]
            counts[judge(reproduced, rest, calibration, permutation).verdict] += 1
            total += 1
    return {verdict: count / total for verdict, count in counts.items()}
