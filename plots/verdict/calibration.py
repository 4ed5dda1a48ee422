"""
Thresholds of the distance, calibrated on the original runs of a setup by Monte Carlo draws.

.. autosummary::
    :nosignatures:

    Calibration
    calibrate

The thresholds of the statistic ``T`` (:func:`plots.verdict.distances.statistic`)
are not assumed from a distribution: they are calibrated
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
(:attr:`Calibration.cell_false_alarm`: the lowest and highest).  A cell not
of one mode (:func:`plots.verdict.distances.one_mode`) has no Gaussian model:
it is left out.

Examples
--------
>>> import numpy as np
>>> from plots.verdict.calibration import calibrate
>>> cells = [np.random.default_rng(k).normal(size=(5, 4, 10)) + 1 for k in range(3)]
>>> calibrate(cells, n=1, m=5, epochs=10).cells
3
"""
import dataclasses
import hashlib
import math

import numpy as np

from plots.verdict.distances import CURVES, minimum_scale, one_mode, statistic

__all__ = ["ALPHA", "BETA", "SHIFT", "DRAWS", "Calibration", "calibrate"]

#: The false-alarm rate the ``differs`` threshold is calibrated to (over all nine distances).
ALPHA = 0.025
#: At most this share of cells shifted by SHIFT standard deviations may be called ``agrees``.
BETA = 0.10
#: The shift (in standard deviations of the cell, every epoch of one curve) an ``agrees`` rules out.
SHIFT = 6.0
#: Draws per original cell for a threshold (and as many again to measure its rate).
DRAWS = 200


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
        same.append(statistic(reproduced, original))
        for index, moved in enumerate(_shifted(cell, reproduced)):
            shifted[index].append(statistic(moved, original))
    return same, [np.concatenate(values) for values in shifted]


def calibrate(cells, n, m, epochs, seed=0):
    """Thresholds for n reproduced against m original runs, from the original cells.

    Parameters
    ----------
    cells : list of numpy.ndarray
        The original runs of each cell of a setup, ``(runs, 4, E0)`` with E0 >= epochs;
        cells not of one mode (:func:`plots.verdict.distances.one_mode`) are left
        out, in any order
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

