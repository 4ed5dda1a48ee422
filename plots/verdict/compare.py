"""
Reproduced runs of a cell against the original runs of the same cell: agree, differ, or cannot tell.

.. autosummary::
    :nosignatures:

    stack_curves
    distances
    Calibration
    calibrate
    Verdict
    judge
    held_out_rates

**The distance.**  Runs are arrays ``(runs, 4, E)``: the curves of
:data:`CURVES` over the first E epochs (runs stopped early are compared over
the epochs they have; the original runs over the same epochs).  At every
curve and epoch the difference of the two sides' means is divided by its
standard error, ``s * sqrt(1/n + 1/m)``, with ``s`` the pooled between-run
standard deviation of that cell at that epoch (n reproduced and m original
runs; with one reproduced run, the original's alone).  ``s`` is raised to
:func:`minimum_scale` where smaller: a *minimum meaningful difference*, so that
runs stuck at chance (loss ln 10, accuracy 0.1, whose runs may all end on the
same value) are not told apart by noise in the fourth decimal.  Each curve's
distance is the root mean square of its standardized differences over the
epochs; each of the five :data:`MEASURES` (final and best validation loss and
accuracy, final training loss) gives one more, its standardized difference.
The cell's statistic ``T`` is the largest of these nine: the verdict looks at
the whole curves and at the measures the blog's tables show, and the
threshold is one for the maximum, so the nine looks are paid for once.

**The thresholds** are not assumed from a distribution: they are calibrated
on the original runs of the setup (:func:`calibrate`).  Each original cell
gives a model of its runs, Gaussian with the cell's mean curves and the
covariance of its runs (a draw is the mean plus a random combination of the
runs' deviations from it: the correlations between epochs and curves are
kept).  From every cell of the setup, ``m`` "original" and ``n``
"reproduced" runs are drawn, again and again, and the statistic taken as
for real runs (the standard deviations estimated from the draws, as from
real runs).  ``differs``: ``T`` above the 95% point of those draws, pooled
over the setup's cells; the false-alarm rate stated beside a verdict is
measured on a second, independent set of draws.  ``agrees``: ``T`` at or below
the 10% point of the same draws with one curve of the reproduced runs
shifted by :data:`SHIFT` standard deviations (the curve that hides a shift
best): a cell with such a shift would be called ``agrees`` in at most 10% of
tries.  In between, or with too few runs or epochs to tell the two apart,
the verdict is ``inconclusive``.  Each cell's draws come from a generator
seeded by the seed, the numbers of runs and epochs and the cell's own runs
(a digest of their values), so the thresholds do not depend on the order of
the cells; the false-alarm rate is also measured cell by cell
(:attr:`Calibration.cell_false_alarm`: the lowest and highest).

**Cells not of one mode.**  A cell one of whose runs lies far from the
others (:func:`one_mode`: CifarNet's AMSGrad cell at lr 0.01 with one run of
five that escaped chance) has no Gaussian model: it is left out of the
calibration and judged by a permutation instead (:func:`permutation_judge`:
the statistic of every split of the pooled runs into n and m; ``differs``
where at most :data:`ALPHA` of the splits reach the observed one, otherwise
``inconclusive``: a permutation grants no ``agrees``).  :attr:`Verdict.rule`
says which rule judged a cell.  :func:`held_out_rates` measures the same
verdicts on original runs themselves (some runs of a cell held out as the
"reproduction", the others as the reference): the check that the Gaussian
model's rates hold for the real, non-Gaussian runs (``tests/test_compare.py``).

Examples
--------
>>> import numpy as np
>>> from plots.verdict.compare import calibrate, judge
>>> cells = [np.random.default_rng(k).normal(size=(5, 4, 10)) + 1 for k in range(3)]
>>> calibration = calibrate(cells, n=1, m=5, epochs=10)
>>> judge(cells[0][:1] + 10, cells[0], calibration).verdict
'differs'
"""
import dataclasses
import hashlib
import itertools
import math

import numpy as np

from experiments.records.curves import COMPARED, COMPARED_MEASURES, PROJECT
from experiments.records.curves import get as curve_of

__all__ = ["CURVES", "MEASURES", "ALPHA", "BETA", "SHIFT", "DRAWS", "stack_curves",
           "minimum_scale", "distances", "Calibration", "calibrate", "Verdict", "classify", "judge",
           "judge_runs", "held_out_rates", "one_mode", "permutation_judge", "ONE_MODE_WITHIN"]

#: The curves compared, in the order of the arrays' second axis: those the original runs
#: have (:data:`experiments.records.curves.COMPARED`).
CURVES = COMPARED
#: Measure -> (curve, ``final`` or ``best``, whether lower is better): the blog's table values
#: (:data:`experiments.records.curves.COMPARED_MEASURES`).
MEASURES = COMPARED_MEASURES
#: The false-alarm rate the ``differs`` threshold is calibrated to (over all nine distances).
ALPHA = 0.025
#: At most this share of cells shifted by SHIFT standard deviations may be called ``agrees``.
BETA = 0.10
#: The shift (in standard deviations of the cell, every epoch of one curve) an ``agrees`` rules out.
SHIFT = 6.0
#: Draws per original cell for a threshold (and as many again to measure its rate).
DRAWS = 200
#: The minimum meaningful difference: accuracies in absolute terms (3 of 10,000 validation
#: images), losses relative to their value (0.01%, e.g. 0.00023 at ln 10 = 2.3026).
MIN_ACCURACY_SCALE = 3e-4
MIN_LOSS_SCALE = 1e-4
#: Per curve of :data:`CURVES`, whether it is a loss (lower is better) rather than an accuracy.
_IS_LOSS = np.array([curve_of(name, PROJECT).lower_is_better for name in CURVES])[:, None]
#: A run farther than this many times the range of its cell's other runs (raised to the
#: minimum scale) from their median, on one of the MEASURES, makes the cell not of one mode
#: (:func:`one_mode`).  Of 5 Gaussian runs, one lies so far in about 1 cell in 700.
ONE_MODE_WITHIN = 10.0


def stack_curves(runs, epochs):
    """The curves of runs as an array ``(runs, 4, epochs)``, float64.

    Parameters
    ----------
    runs : list of dict or plots.verdict.results.Run
        Each a dict ``{curve: values}`` or anything with such a ``curves``
    epochs : int
        The first epochs taken (every run must have them)
    """
    stacked = [[np.asarray(getattr(run, "curves", run)[name][:epochs], dtype=np.float64)
                for name in CURVES] for run in runs]
    short = [len(curves[0]) for curves in stacked if len(curves[0]) < epochs]
    if short:
        raise ValueError("a run has %d epochs, %d compared" % (min(short), epochs))
    return np.array(stacked)


def minimum_scale(original):
    """The floor under the standard deviation, per curve and epoch: ``(4, E)``.

    Accuracies: :data:`MIN_ACCURACY_SCALE`; losses (the curves whose lower values are
    better) :data:`MIN_LOSS_SCALE` times the original mean's magnitude.
    """
    mean = np.abs(original.mean(axis=-3))
    return np.where(_IS_LOSS, MIN_LOSS_SCALE * mean, MIN_ACCURACY_SCALE)


def _measure_values(runs):
    """The five :data:`MEASURES` of every run: ``(..., runs, 5)``."""
    columns = []
    for curve, kind, lower_is_better in MEASURES.values():
        values = runs[..., CURVES.index(curve), :]
        if kind == "final":
            columns.append(values[..., -1])
        else:
            columns.append(values.min(axis=-1) if lower_is_better else values.max(axis=-1))
    return np.stack(columns, axis=-1)


def _measure_floor(cell):
    """The minimum scale of each of the MEASURES (at the last epoch): ``(5,)``."""
    floor = minimum_scale(cell)
    return np.array([floor[CURVES.index(curve), -1] for curve, _, _ in MEASURES.values()])


def one_mode(cell):
    """Whether every run of a cell ``(runs, 4, E)`` lies near the others on each measure.

    A run is far when its value is more than :data:`ONE_MODE_WITHIN` times
    the range of the other runs (at least the minimum scale) from their
    median.  A cell of fewer than 5 runs counts as one mode: with 2 or 3 other runs
    their range is too unsteady to tell a second mode (of 3 Gaussian runs, one lies 10
    ranges of the other two away on one measure in 1 cell in 6).
    """
    if len(cell) < 5:
        return True
    values, floor = _measure_values(cell), _measure_floor(cell)
    for run in range(len(cell)):
        others = np.delete(values, run, axis=0)
        median = np.median(others, axis=0)
        scale = np.maximum(others.max(axis=0) - others.min(axis=0), floor)
        if (np.abs(values[run] - median) > ONE_MODE_WITHIN * scale).any():
            return False
    return True


def _standardized(ours, theirs, floor):
    """(mean(ours) - mean(theirs)) / (pooled sd raised to ``floor``) / sqrt(1/n + 1/m).

    ``ours`` ``(..., n, K)``, ``theirs`` ``(..., m, K)``; NaN with one run a side.
    """
    n, m = ours.shape[-2], theirs.shape[-2]
    if n + m <= 2:
        return np.full(np.broadcast_shapes(ours.shape[:-2], theirs.shape[:-2])
                       + ours.shape[-1:], np.nan)
    squares = (((ours - ours.mean(axis=-2, keepdims=True)) ** 2).sum(axis=-2)
               + ((theirs - theirs.mean(axis=-2, keepdims=True)) ** 2).sum(axis=-2))
    scale = np.maximum(np.sqrt(squares / (n + m - 2)), floor)
    return (ours.mean(axis=-2) - theirs.mean(axis=-2)) / (scale * math.sqrt(1 / n + 1 / m))


def distances(reproduced, original):
    """The nine standardized distances of two sets of runs.

    Parameters
    ----------
    reproduced, original : numpy.ndarray
        ``(..., n, 4, E)`` and ``(..., m, 4, E)`` (:func:`stack_curves`)

    Returns
    -------
    numpy.ndarray
        ``(..., 9)``: per curve of :data:`CURVES` the root mean square over the
        epochs of the standardized differences, then per measure of
        :data:`MEASURES` its standardized difference (signed).
    """
    floor = minimum_scale(original)
    shape = reproduced.shape[:-2] + (-1,)
    z = _standardized(reproduced.reshape(shape), original.reshape(original.shape[:-2] + (-1,)),
                      floor.reshape(floor.shape[:-2] + (-1,)))
    z = z.reshape(z.shape[:-1] + reproduced.shape[-2:])
    curves = np.sqrt((z ** 2).mean(axis=-1))
    measure_floor = np.stack([floor[..., CURVES.index(curve), -1]
                              for curve, _, _ in MEASURES.values()], axis=-1)
    measures = _standardized(_measure_values(reproduced), _measure_values(original),
                             measure_floor)
    # Values the reproduced runs lack (null or NaN in a history) where the original's have
    # them: an infinite distance, never one skipped (which would let such runs agree).
    lacking = ~np.isfinite(reproduced).all(axis=-3) & np.isfinite(original).all(axis=-3)
    curves = np.where(lacking.any(axis=-1), np.inf, curves)
    measure_lacks = [lacking[..., CURVES.index(curve), -1] if kind == "final"
                     else lacking[..., CURVES.index(curve), :].any(axis=-1)
                     for curve, kind, _ in MEASURES.values()]
    measures = np.where(np.stack(measure_lacks, axis=-1), np.inf, measures)
    return np.concatenate([curves, measures], axis=-1)


#: The names of the nine distances, in the order of :func:`distances`.
DISTANCES = tuple("%s curve" % name for name in CURVES) + tuple(MEASURES)


def _statistic(reproduced, original):
    return np.nanmax(np.abs(distances(reproduced, original)), axis=-1)


def _draws(cell, count, rng):
    """``count`` draws of a cell's Gaussian model: the mean plus random combinations of
    the runs' deviations, scaled so that their covariance is the runs' sample covariance."""
    deviations = cell - cell.mean(axis=0)
    weights = rng.standard_normal(count + (len(cell),)) / math.sqrt(len(cell) - 1)
    # A sum of products run by run, not np.tensordot: a BLAS kernel picks its own order of
    # additions per CPU, so the thresholds' last digit (and report.csv) would follow the CPU.
    draws = np.broadcast_to(cell.mean(axis=0), count + cell.shape[1:]).copy()
    for run, deviation in enumerate(deviations):
        draws += weights[..., run, None, None] * deviation
    return draws


@dataclasses.dataclass(frozen=True)
class Calibration:
    """Thresholds of the statistic for n reproduced against m original runs over E epochs.

    Attributes
    ----------
    n, m, epochs : int
    differ_above : float
        ``T`` above this is ``differs`` (the 1 - ALPHA point under no difference)
    agree_below : float
        ``T`` at or below this is ``agrees`` (the BETA point with a SHIFT shift;
        never above ``differ_above``)
    false_alarm : float
        Measured share of same-experiment draws called ``differs``
    false_agreement : float
        Measured share of draws shifted by SHIFT sd (the worst curve) called ``agrees``
    cells : int
        Original cells the draws came from (those of one mode)
    cell_false_alarm : (float, float)
        The lowest and highest false-alarm rate of a single cell (the threshold
        is one for all cells of the setup)
    """
    n: int
    m: int
    epochs: int
    differ_above: float
    agree_below: float
    false_alarm: float
    false_agreement: float
    cells: int
    cell_false_alarm: tuple = (math.nan, math.nan)

    def text(self):
        return ("%d run%s against %d over %d epoch%s: false alarm %.1f%% (a cell's: "
                "%.1f-%.1f%%), a %g-sd shift called agrees %.1f%% (measured on %d draws from "
                "each of %d original cells)"
                % (self.n, "" if self.n == 1 else "s", self.m, self.epochs,
                   "" if self.epochs == 1 else "s", 100 * self.false_alarm,
                   100 * self.cell_false_alarm[0], 100 * self.cell_false_alarm[1], SHIFT,
                   100 * self.false_agreement, DRAWS, self.cells))


def _shifted(cell, reproduced):
    """The reproduced draws with one curve moved up by SHIFT sd of the cell: one per curve."""
    scale = np.maximum(cell.std(axis=0, ddof=1), minimum_scale(cell))
    for index in range(len(CURVES)):
        shifted = reproduced.copy()
        shifted[..., index, :] += SHIFT * scale[index]
        yield shifted


def _cell_rng(cell, seed, n, m, epochs, phase):
    """The generator of one cell's draws: from the seed, the numbers of runs and epochs, the
    phase (0: thresholds, 1: their rates) and a digest of the cell's values, so that no cell's
    draws depend on the cells before it."""
    digest = hashlib.sha256(np.ascontiguousarray(cell, dtype=np.float64).tobytes()).digest()
    return np.random.default_rng([seed, n, m, epochs, phase,
                                  int.from_bytes(digest[:8], "little")])


def _cell_statistics(cells, n, m, epochs, seed, phase):
    """Per cell, T of same-experiment draws and, per curve, of shifted draws."""
    same, shifted = [], [[] for _ in CURVES]
    for cell in cells:
        cell = cell[:, :, :epochs]
        draws = _draws(cell, (DRAWS, n + m), _cell_rng(cell, seed, n, m, epochs, phase))
        original, reproduced = draws[:, n:], draws[:, :n]
        same.append(_statistic(reproduced, original))
        for index, moved in enumerate(_shifted(cell, reproduced)):
            shifted[index].append(_statistic(moved, original))
    return same, [np.concatenate(values) for values in shifted]


def calibrate(cells, n, m, epochs, seed=0):
    """Thresholds for n reproduced against m original runs, from the original cells.

    Parameters
    ----------
    cells : list of numpy.ndarray
        The original runs of each cell of a setup, ``(runs, 4, E0)`` with E0 >= epochs;
        cells not of one mode (:func:`one_mode`) are left out, in any order
    n, m, epochs : int
    seed : int
        Seeds the draws (a report is the same every time it is written)

    Returns
    -------
    Calibration
    """
    cells = [cell for cell in cells if len(cell) >= 2 and one_mode(cell[:, :, :epochs])]
    same, shifted = _cell_statistics(cells, n, m, epochs, seed, 0)
    differ_above = float(np.quantile(np.concatenate(same), 1 - ALPHA))
    agree_below = min(differ_above, min(float(np.quantile(values, BETA)) for values in shifted))
    # The rates, measured on draws the thresholds were not taken from.
    same, shifted = _cell_statistics(cells, n, m, epochs, seed, 1)
    false_agreement = max(float(np.mean(values <= agree_below)) for values in shifted)
    per_cell = [float(np.mean(values > differ_above)) for values in same]
    return Calibration(n, m, epochs, differ_above, agree_below,
                       float(np.mean(np.concatenate(same) > differ_above)), false_agreement,
                       len(cells), (min(per_cell), max(per_cell)))


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The judgement of one cell.

    ``verdict`` is ``agrees``, ``differs`` or ``inconclusive``; ``statistic``
    the largest distance, ``largest`` its name (:data:`DISTANCES`), ``signed``
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
    statistic = _statistic(reproduced, original)
    return np.where(statistic > calibration.differ_above, "differs",
                    np.where(statistic <= calibration.agree_below, "agrees", "inconclusive"))


def judge(reproduced, original, calibration, permutation=None):
    """The verdict on reproduced runs ``(n, 4, E)`` against original runs ``(m, 4, E)``.

    ``calibration`` must be :func:`calibrate` d for the same n, m and E.
    ``permutation``: whether the original cell is judged by
    :func:`permutation_judge`; None: where ``original`` is not of one mode
    (:func:`one_mode`).  Decide it on all the cell's original runs where only
    some are given (runs held out of it).
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
    statistics = _statistic(ours, theirs)
    observed = float(np.nanmax(np.abs(values)))
    # Ties at the observed value (to rounding) count as reaching it.
    p = float(np.mean(statistics >= observed * (1 - 1e-9)))
    return Verdict("differs" if p <= ALPHA else "inconclusive", observed, DISTANCES[index],
                   float(values[index]), dict(zip(DISTANCES, map(float, values))), calibration,
                   "permutation", p, len(splits))


def judge_runs(runs, reference, cells, epochs, seed=0, calibration=None):
    """The verdict on runs against the reference runs of their cell, over the first epochs.

    What :func:`plots.verdict.findings.compare_cells` does for a cell, for runs held in
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
        Of n against r - n runs over ``epochs``; :func:`calibrate` d when None

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
