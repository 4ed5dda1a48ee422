"""
The distance between two sets of runs of a cell: nine standardized differences, and their largest.

.. autosummary::
    :nosignatures:

    stack_curves
    minimum_scale
    distances
    statistic
    one_mode

Runs are arrays ``(runs, 4, E)``: the curves of
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
The cell's :func:`statistic` ``T`` is the largest of these nine: the verdict
(:mod:`plots.verdict.compare`) looks at the whole curves and at the measures
the blog's tables show, and the threshold (:mod:`plots.verdict.calibration`)
is one for the maximum, so the nine looks are paid for once.

:func:`one_mode` tells a cell one of whose runs lies far from the others
(CifarNet's AMSGrad cell at lr 0.01 with one run of five that escaped
chance): such a cell has no Gaussian model to calibrate on.

Examples
--------
>>> import numpy as np
>>> from plots.verdict.distances import distances
>>> original = np.random.default_rng(0).normal(size=(5, 4, 10)) + 1
>>> distances(original[:1] + 10, original).shape
(9,)
"""
import math

import numpy as np

from experiments.records.curves import COMPARED, COMPARED_MEASURES, PROJECT
from experiments.records.curves import get as curve_of

__all__ = ["CURVES", "MEASURES", "MIN_ACCURACY_SCALE", "MIN_LOSS_SCALE", "ONE_MODE_WITHIN",
           "DISTANCES", "stack_curves", "minimum_scale", "one_mode", "distances", "statistic"]

#: The curves compared, in the order of the arrays' second axis: those the original runs
#: have (:data:`experiments.records.curves.COMPARED`).
CURVES = COMPARED
#: Measure -> (curve, ``final`` or ``best``, whether lower is better): the blog's table values
#: (:data:`experiments.records.curves.COMPARED_MEASURES`).
MEASURES = COMPARED_MEASURES
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



def statistic(reproduced, original):
    """The statistic ``T``: the largest absolute distance of :func:`distances` (``(...)``)."""
    return np.nanmax(np.abs(distances(reproduced, original)), axis=-1)
