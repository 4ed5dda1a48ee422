"""
Cells of runs: the cell record, the runs of a cell, effect sizes and pairs of cells.

.. autosummary::
    :nosignatures:

    Cell
    run_measures
    Group
    group_runs
    mean_std
    pooled_std
    effect_size
    pairs
    paired
    pair_difference
    independent
    PairEffect
    pair_effects

A *cell* (:class:`Cell`) is optimizer, learning rate, beta2 and bias correction
within one setup and protocol; its runs are repetitions of one experiment
(:class:`Group`).  The report and the claims compare cells in two ways:

- **Effect sizes** (:func:`effect_size`, the one function both use): the
  difference of two sets of values, and that difference in standard
  deviations, pooled (independent draws) or of the paired differences (draws
  shared run by run), raised to :data:`MIN_STD`.
- **Pairs** (:func:`pairs`, the one pair finder): two cells equal but for one
  field (AMSGrad against Adam, bias correction on against off).  Where both
  cells' runs share their draws (``seeding == "common"``, and runs from
  before that field, with equal seed: run K of both cells started from the
  same weights and saw the same data order), :func:`paired` compares them on
  the run indices both cells have, i.e. on the paired differences run by run;
  otherwise (independent draws, such as the original's unseeded runs,
  :func:`independent`) on all runs of each, means compared independently.
  The mean of the paired differences is the difference of the means when both
  cells have the same runs; it differs when a run of one cell is missing
  (diverged, not finished), whose draw then leaves both sides.

Anything with ``values(measure)`` (a measure over the finished runs) and
``finished_runs`` (the runs, with ``curves``) is read as a cell's runs: a
:class:`Group`, or the cut of one that :func:`paired` returns.
"""
import dataclasses
import math

import numpy as np

from experiments.records.curves import measures as declared_measures
from experiments.store.datasource import describe_data
from plots.verdict.distances import MEASURES  # measure -> (curve, final or best, lower is better)
from plots.verdict.results import group_key

__all__ = ["Cell", "CELL_FIELDS", "MIN_STD", "AGREE_WITHIN", "run_measures", "Group",
           "group_runs", "mean_std", "pooled_std", "effect_size", "pairs", "paired",
           "pair_difference", "independent", "PairEffect", "pair_effects"]

#: Standard deviations below this are raised to it in :func:`effect_size`: the 4-decimal
#: tables cannot show smaller differences, and cells whose runs all end on the same value
#: (stuck at ln 10) would otherwise "differ" over float rounding.
MIN_STD = 1e-4
#: In the pair tables, a pair's difference counts as clear beyond this |d| (in pooled standard
#: deviations, or in those of the paired differences where the cells share their draws).
AGREE_WITHIN = 2.0


@dataclasses.dataclass(frozen=True, order=True)
class Cell:
    """A cell of a setup's grid: what an optimizer is run with besides the protocol.

    Every setting an optimizer takes from a run's config
    (:data:`experiments.records.optimizers.FIELDS`) is here but ``beta1`` and
    ``epsilon``, which are the protocol's.  Cells order as their fields do,
    in this order.

    Attributes
    ----------
    optimizer : str
    lr : float
    beta2 : float
    bias_correction : bool
    """
    optimizer: str
    lr: float
    beta2: float
    bias_correction: bool

    @classmethod
    def of(cls, config):
        """The cell of a run's config (:class:`experiments.records.config.RunConfig`)."""
        return cls(**{name: getattr(config, name) for name in CELL_FIELDS})


#: The fields of a :class:`Cell`, in order.
CELL_FIELDS = tuple(field.name for field in dataclasses.fields(Cell))


def run_measures(run, epochs=None):
    """The measures of a run the report shows, as a dict of floats.

    Those of every declared curve (:func:`experiments.records.curves.measures`):
    the five of :data:`plots.verdict.distances.MEASURES`, then those of the
    curves the original runs lack.  ``final``: the value after the last epoch
    done (or after epoch ``epochs``); ``best``: the lowest loss or highest
    accuracy over those epochs (NaN epochs ignored).  NaN for a curve the run
    did not record (declared after it ended).
    """
    measures = {}
    for measure, (curve, kind, lower_is_better) in declared_measures().items():
        values = run.curves.get(curve, np.array([]))[:epochs]
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
    """The runs of one cell under one protocol (equal :func:`plots.verdict.results.group_key`).

    Attributes
    ----------
    key : experiments.records.config.RunConfig
        The shared config, with ``run`` and ``seed`` 0
    finished : list of dict
        :func:`run_measures` of the complete runs whose compared measures
        (:data:`plots.verdict.distances.MEASURES`) are all finite
    diverged : int
        Runs with status ``diverged``, or complete with a non-finite compared measure
    running : int
        Runs still in progress (not in the statistics, unless compared early)
    finished_runs : list of plots.verdict.results.Run
        The runs of ``finished``
    stopped : list of plots.verdict.results.Run
        The runs in progress with at least one epoch done
    at_epoch : int or None
        Set when the measures are taken after this epoch of runs stopped early
        (:func:`plots.verdict.cell_comparisons.compare_cells`), None when at the runs' end
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
        return Cell.of(self.key)


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
        # Judged on the curves the verdict compares: a declared curve may be absent.
        elif run.status == "diverged" or not all(math.isfinite(measures[name])
                                                 for name in MEASURES):
            group.diverged += 1
        else:
            group.finished.append(measures)
            group.finished_runs.append(run)
    order = sorted(groups, key=lambda key: (key.setup, key.lr, key.beta2, not key.bias_correction,
                                            key.optimizer, key.epochs, repr(key)))
    return {key: groups[key] for key in order}


# -- effect sizes ----------------------------------------------------------------------------

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


def effect_size(a, b, is_paired=False):
    """``a - b``, and the same in standard deviations raised to :data:`MIN_STD`.

    Parameters
    ----------
    a, b : array_like
        Values of two sets of runs (of one measure)
    is_paired : bool
        Whether ``a[k]`` and ``b[k]`` share their draw (:func:`paired` cut
        both to the same runs): then the mean of the differences ``a - b``
        over their standard deviation; otherwise the difference of the means
        over the pooled standard deviation (:func:`pooled_std`)

    Returns
    -------
    (difference, d)
        Both NaN where a side is empty; d NaN where there is no standard
        deviation (one run a side, or one pair).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if not a.size or not b.size:
        return math.nan, math.nan
    if is_paired:
        differences = a - b
        difference = float(differences.mean())
        std = float(differences.std(ddof=1)) if differences.size > 1 else math.nan
    else:
        difference, std = float(a.mean()) - float(b.mean()), pooled_std(a, b)
    return difference, difference / max(std, MIN_STD) if math.isfinite(std) else math.nan


# -- pairs of cells --------------------------------------------------------------------------

def pairs(cells, field="optimizer", first="amsgrad", second="adam"):
    """Pairs of cells equal but for ``field`` (values ``first``, ``second``), both with runs.

    Parameters
    ----------
    cells : dict of Cell -> Group
        The cells of one setup and protocol (or anything read as a cell's runs)
    field : str
        One of :data:`CELL_FIELDS`: ``optimizer`` (AMSGrad against Adam by
        default) or ``bias_correction`` (``True`` against ``False``)
    first, second : object
        The values of ``field`` in the first and second cell of a pair

    Returns
    -------
    list of (Cell, first runs, second runs)
        One per cell whose ``field`` is ``first`` and whose twin with
        ``second`` is in ``cells``, both with finished runs; in the order of
        ``cells``.
    """
    found = []
    for cell, runs in cells.items():
        if getattr(cell, field) != first:
            continue
        twin = cells.get(dataclasses.replace(cell, **{field: second}))
        if twin is not None and runs.finished_runs and twin.finished_runs:
            found.append((cell, runs, twin))
    return found


class _Runs:
    """Some runs of a cell, as a cell is read: ``values(measure)``, ``finished_runs``."""

    def __init__(self, cell, indices, independent=False):
        self._cell, self._indices = cell, list(indices)
        self.finished_runs = [cell.finished_runs[index] for index in self._indices]
        self.independent = independent

    def values(self, measure):
        return np.asarray(self._cell.values(measure), dtype=np.float64)[self._indices]


def independent(cells):
    """The cells marked as independent draws, never paired (the original runs: its
    ``train.py`` seeds nothing, whatever their configs say)."""
    return {key: _Runs(cell, range(len(cell.finished_runs)), independent=True)
            for key, cell in cells.items()}


def _draw(run):
    """``(seed, run)`` of a run on common random numbers; None for an independent draw."""
    config = getattr(run, "config", None)
    if config is None or getattr(config, "seeding", "common") != "common":
        return None
    return config.seed, config.run


def paired(first, second):
    """``(first, second, is_paired)``: the two cells as a pair compares them.

    Where every run of both shares its draws with the same run index of the
    other cell (common seeding, equal seed), both are cut to the run indices
    they both have, in the same order: their means' difference is then the
    mean of the paired differences.  Otherwise both are returned whole.
    """
    if getattr(first, "independent", False) or getattr(second, "independent", False):
        return first, second, False
    draws = [[_draw(run) for run in cell.finished_runs] for cell in (first, second)]
    if any(None in side or len(set(side)) < len(side) for side in draws):
        return first, second, False
    common = [draw for draw in draws[0] if draw in set(draws[1])]
    if not common:
        return first, second, False
    return (_Runs(first, [draws[0].index(draw) for draw in common]),
            _Runs(second, [draws[1].index(draw) for draw in common]), True)


def pair_difference(first, second, measure):
    """``first - second`` on a measure, as :func:`paired` compares them.

    Returns
    -------
    (difference, d, is_paired)
        :func:`effect_size` of the two cells' values, paired run by run
        where they share their draws.
    """
    first, second, is_paired = paired(first, second)
    return effect_size(first.values(measure), second.values(measure), is_paired) + (is_paired,)


@dataclasses.dataclass(frozen=True)
class PairEffect:
    """What changing one field of a cell does to a measure, over the pairs of a setup.

    Differences are first minus second (AMSGrad - Adam, bias correction on -
    off), each pair's by :func:`pair_difference`; *better*: a lower loss or a
    higher accuracy.

    Attributes
    ----------
    field : str
        ``optimizer`` or ``bias_correction``
    measure : str
        One of :data:`plots.verdict.distances.MEASURES`
    pairs : int
        Pairs with finished runs on both sides; the numbers below are NaN,
        None or 0 where there are none
    better : int
        Pairs in which the first is better
    clear_better, clear_worse : int
        Pairs in which the first is better (worse) by more than
        :data:`AGREE_WITHIN` in |d|
    clear : int
        Pairs whose |d| is beyond :data:`AGREE_WITHIN` (either way)
    mean_difference, mean_absolute_difference : float
    median_d : float
        Over the pairs with a d (NaN where none has: one run a side)
    largest : Cell or None
        The first cell of the pair with the largest |difference|
    largest_difference, largest_d : float
        That pair's difference and d
    paired : int
        Pairs compared run by run (their cells share their draws)
    """
    field: str
    measure: str
    pairs: int
    better: int = 0
    clear_better: int = 0
    clear_worse: int = 0
    clear: int = 0
    mean_difference: float = math.nan
    mean_absolute_difference: float = math.nan
    median_d: float = math.nan
    largest: Cell = None
    largest_difference: float = math.nan
    largest_d: float = math.nan
    paired: int = 0


def _better(measure, difference):
    """Whether ``difference`` (first minus second) favours the first."""
    return difference < 0 if MEASURES[measure][2] else difference > 0


def _pair_effect(found, field, measure):
    if not found:
        return PairEffect(field, measure, 0)
    effects = [pair_difference(first, second, measure) for _, first, second in found]
    better = [_better(measure, difference) for difference, _, _ in effects]
    clear = [abs(d) > AGREE_WITHIN for _, d, _ in effects]
    finite = [d for _, d, _ in effects if math.isfinite(d)]
    largest = max(range(len(found)), key=lambda index: abs(effects[index][0]))
    return PairEffect(
        field, measure, len(found), better=sum(better),
        clear_better=sum(b and c for b, c in zip(better, clear)),
        clear_worse=sum(not b and c for b, c in zip(better, clear)), clear=sum(clear),
        mean_difference=float(np.mean([difference for difference, _, _ in effects])),
        mean_absolute_difference=float(np.mean([abs(difference)
                                                for difference, _, _ in effects])),
        median_d=float(np.median(finite)) if finite else math.nan,
        largest=found[largest][0], largest_difference=effects[largest][0],
        largest_d=effects[largest][1], paired=sum(is_paired for _, _, is_paired in effects))


#: The pairs of :func:`pair_effects`: AMSGrad - Adam on every measure, then bias correction
#: on - off on the best validation loss and accuracy.
PAIR_EFFECTS = ([("optimizer", "amsgrad", "adam", measure) for measure in MEASURES]
                + [("bias_correction", True, False, measure)
                   for measure in ("best_val_loss", "best_val_acc")])


def pair_effects(cells):
    """Pair by pair, how much the optimizer and bias correction change each measure.

    The numbers behind the claims (:mod:`plots.verdict.claims`), with their
    effect sizes: per pair :func:`pair_difference`, paired run by run where
    the two cells share their draws.

    Parameters
    ----------
    cells : dict of Cell -> Group

    Returns
    -------
    list of PairEffect
        One per entry of :data:`PAIR_EFFECTS`, in its order.
    """
    return [_pair_effect(pairs(cells, field, first, second), field, measure)
            for field, first, second, measure in PAIR_EFFECTS]
