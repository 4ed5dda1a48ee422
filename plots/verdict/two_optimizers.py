"""
Any two optimizers compared on one setup and protocol: the probability that one beats the other.

.. autosummary::
    :nosignatures:

    probability_better
    Estimate
    OptimizerComparison
    compare_optimizers

After Bouthillier et al., "Accounting for Variance in Machine Learning
Benchmarks" (2021): the comparison is the probability that a run of the
first optimizer beats a run of the second on a measure (lower loss, higher
accuracy), ``P(A beats B)``, estimated over every pair of runs (ties count
one half), with a 95% percentile bootstrap interval (runs resampled within
each cell).  It is taken

- per *matched cell*: the two optimizers at the same lr, beta2 and bias
  correction;
- *over the grid*: the mean of the matched cells' probabilities;
- at each optimizer's *tuned* setting: its cell of the lowest mean final
  validation loss (as the McGill study chose its beta2 and lr).

The decision: a difference where it is both significant and meaningful (as
Bouthillier et al. decide): at most :data:`SIGNIFICANCE` of random re-splits
of the pooled runs into sides of the same sizes give a P as far from 1/2
(a permutation test: a percentile interval from 5 runs a side is too narrow
to decide by), and P is at least 3/4 (the first better) or at most 1/4 (the
second); otherwise ``no difference found``.  Its error rate is measured on
the runs themselves, not assumed: the pooled runs are split again at random
(:data:`RELABELS` times, seeded) and each split decided as the real one was;
the share decided as a difference is the rate at which the decision finds a
difference where the two sides are exchangeable.  At a tuned setting the rate
leaves out the tuning itself (the cells were chosen by the validation loss
they are compared on).  Optimizers are names: the project's, or a plug-in's
(:mod:`experiments.records.plugins`).

Examples
--------
>>> import numpy as np
>>> probability_better(np.array([0.1, 0.2]), np.array([0.3, 0.2]), lower_is_better=True)
0.875
"""
import dataclasses
import math

import numpy as np

from plots.verdict.distances import MEASURES

__all__ = ["RESAMPLES", "RELABELS", "LEVEL", "MEANINGFUL", "SIGNIFICANCE", "probability_better", "Estimate",
           "OptimizerComparison", "compare_optimizers"]

#: Bootstrap resamples per interval.
RESAMPLES = 1000
#: Random splits of the pooled runs that measure a decision's error rate.
RELABELS = 200
#: The interval's coverage.
LEVEL = 0.95
#: A difference is also meaningful only where P is at least this far from 1/2 (Bouthillier
#: et al.'s gamma = 0.75).
MEANINGFUL = 0.25
#: A difference is significant where at most this share of re-splits of the pooled runs
#: lies as far from 1/2.
SIGNIFICANCE = 0.05


def probability_better(first, second, lower_is_better):
    """P(a run of ``first`` beats a run of ``second``) over every pair of runs (ties 1/2).

    ``first`` and ``second`` are arrays of a measure over runs, ``(..., n)``
    and ``(..., m)``: leading axes (resamples) are kept.
    """
    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    a, b = first[..., :, None], second[..., None, :]
    wins = (a < b) if lower_is_better else (a > b)
    return (wins + 0.5 * (a == b)).mean(axis=(-2, -1))


def _resampled(values, rng, count):
    """``count`` bootstrap resamples of runs: ``(count, len(values))``."""
    return values[rng.integers(0, len(values), size=(count, len(values)))]


def _grid_probability(pairs, lower_is_better, rng, count):
    """The mean over matched cells of P, at each of ``count`` bootstrap resamples
    (``count`` 0: the estimate itself)."""
    if not count:
        return float(np.mean([probability_better(a, b, lower_is_better) for a, b in pairs]))
    return np.mean([probability_better(_resampled(a, rng, count), _resampled(b, rng, count),
                                       lower_is_better) for a, b in pairs], axis=0)


def _relabelled(pairs, rng, count):
    """``count`` random re-splits of each matched cell's pooled runs into sides of the same
    sizes: per cell ``(count, n)`` and ``(count, m)``."""
    split = []
    for a, b in pairs:
        pooled = np.concatenate([a, b])
        order = np.argsort(rng.random((count, len(pooled))), axis=1)
        split.append((pooled[order[:, :len(a)]], pooled[order[:, len(a):]]))
    return split


def _p_value(pairs, probability, lower_is_better, rng):
    """The share of random re-splits of the pooled runs whose grid P lies at least as far
    from 1/2 as ``probability`` (the observed split counted among them)."""
    split = _relabelled(pairs, rng, RELABELS)
    values = np.mean([probability_better(a, b, lower_is_better) for a, b in split], axis=0)
    far = np.abs(values - 0.5) >= abs(probability - 0.5) - 1e-12
    return (1 + int(far.sum())) / (RELABELS + 1)


def _decision(probability, p):
    if p > SIGNIFICANCE or abs(probability - 0.5) < MEANINGFUL:
        return "none"
    return "first" if probability > 0.5 else "second"


def _interval(pairs, lower_is_better, rng):
    draws = _grid_probability(pairs, lower_is_better, rng, RESAMPLES)
    tail = (1 - LEVEL) / 2
    return float(np.quantile(draws, tail)), float(np.quantile(draws, 1 - tail))


@dataclasses.dataclass(frozen=True)
class Estimate:
    """P(first beats second) with its interval, decision and measured error rate.

    Attributes
    ----------
    probability, low, high : float
        The estimate and its :data:`LEVEL` bootstrap interval
    p : float
        The share of random re-splits of the pooled runs whose P lies at least
        as far from 1/2
    decision : str
        ``first``, ``second`` (better) or ``none`` (no difference found)
    error_rate : float
        Share of random re-splits of the pooled runs decided as a difference
        (NaN where not measured)
    runs : (int, int)
        Runs of the first and of the second optimizer it rests on
    cells : int
        Matched cells it averages over (1 for a single pair of cells)
    """
    probability: float
    low: float
    high: float
    p: float
    decision: str
    error_rate: float
    runs: tuple
    cells: int


def _estimate(pairs, lower_is_better, rng, measure_error=True):
    probability = _grid_probability(pairs, lower_is_better, rng, 0)
    low, high = _interval(pairs, lower_is_better, rng)
    p = _p_value(pairs, probability, lower_is_better, rng)
    error_rate = math.nan
    if measure_error:
        called = 0
        for _ in range(RELABELS):
            split = [(a[0], b[0]) for a, b in _relabelled(pairs, rng, 1)]
            splits_p = _grid_probability(split, lower_is_better, rng, 0)
            called += _decision(splits_p, _p_value(split, splits_p, lower_is_better,
                                                   rng)) != "none"
        error_rate = called / RELABELS
    return Estimate(probability, low, high, p, _decision(probability, p), error_rate,
                    (sum(len(a) for a, _ in pairs), sum(len(b) for _, b in pairs)), len(pairs))


@dataclasses.dataclass(frozen=True)
class OptimizerComparison:
    """Two optimizers on one setup and protocol.

    Attributes
    ----------
    first, second : str
        The optimizers' names
    measure : str
        One of :data:`plots.verdict.distances.MEASURES`
    matched : list of (Cell, Estimate)
        Per matched cell (the first optimizer's cell), P with its interval;
        its error rate is not measured cell by cell (NaN)
    grid : Estimate or None
        Over the matched cells with at least 2 runs a side (None where none)
    tuned : (Cell, Cell, Estimate) or None
        Each optimizer's cell of the lowest mean final validation loss, and P
        between them (None where a side has no cell of 2 runs)
    too_few : int
        Matched cells left out of the grid: fewer than 2 runs a side
    """
    first: str
    second: str
    measure: str
    matched: list
    grid: object
    tuned: object
    too_few: int


def _tuned(cells, optimizer):
    own = [key for key, cell in cells.items()
           if key.optimizer == optimizer and len(cell.finished_runs) >= 2]
    if not own:
        return None
    return min(own, key=lambda key: (float(np.mean(cells[key].values("final_val_loss"))),
                                     -key.lr, -key.beta2))


def compare_optimizers(cells, first, second, measure="final_val_loss", seed=0):
    """P(first beats second) per matched cell, over the grid and at each one's tuned cell.

    Parameters
    ----------
    cells : dict of plots.verdict.cells.Cell -> plots.verdict.cells.Group
        The cells of one setup and protocol (anything read as a cell's runs)
    first, second : str
        Optimizer names
    measure : str
    seed : int
        Seeds the bootstrap and the re-splits (the same answer every time)

    Returns
    -------
    OptimizerComparison
    """
    lower_is_better = MEASURES[measure][2]
    rng = np.random.default_rng([seed, 2021])
    matched, pairs, too_few = [], [], 0
    for key, cell in cells.items():
        twin = cells.get(dataclasses.replace(key, optimizer=second))
        if key.optimizer != first or twin is None:
            continue
        a, b = cell.values(measure), twin.values(measure)
        if min(len(a), len(b)) < 2:
            too_few += 1
            continue
        matched.append((key, _estimate([(a, b)], lower_is_better, rng, measure_error=False)))
        pairs.append((a, b))
    grid = _estimate(pairs, lower_is_better, rng) if pairs else None
    tuned_first, tuned_second = _tuned(cells, first), _tuned(cells, second)
    tuned = None
    if tuned_first is not None and tuned_second is not None:
        tuned = (tuned_first, tuned_second, _estimate(
            [(cells[tuned_first].values(measure), cells[tuned_second].values(measure))],
            lower_is_better, rng))
    return OptimizerComparison(first, second, measure, matched, grid, tuned, too_few)
