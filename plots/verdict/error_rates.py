"""
The verdicts' error rates: the thresholds the verdicts used, with their rates measured.

.. autosummary::
    :nosignatures:

    ErrorRate
    HeldOut
    error_rates

Per protocol and numbers of runs and epochs judged, the thresholds' rates
under the model (:class:`plots.verdict.calibration.Calibration`: draws from
the original cells' Gaussian models) and, measured on the original runs
themselves, the verdicts on runs held out of their own cell
(:func:`plots.verdict.compare.held_out_rates`); with the original cells not
of one mode, which are judged by permutation.
"""
import dataclasses

from plots.verdict import compare
from plots.verdict.calibration import calibrate
from plots.verdict.cell_comparisons import original_cells, protocol_fields
from plots.verdict.distances import one_mode, stack_curves

__all__ = ["HeldOut", "ErrorRate", "error_rates"]


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
    calibration : plots.verdict.calibration.Calibration
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


def error_rates(comparisons, reference_groups):
    """One :class:`ErrorRate` per protocol, numbers of runs and epochs judged, by n, m, E."""
    calibrations = {}
    for comparison in comparisons:
        if comparison.judged is not None:
            calibration = comparison.judged.calibration
            calibrations[(protocol_fields(comparison.group.key), calibration.n,
                          calibration.m, calibration.epochs)] = calibration
    rates = []
    for (protocol, n, m, epochs), calibration in sorted(calibrations.items(),
                                                        key=lambda item: item[0][1:]):
        keys = [key for key in reference_groups if protocol_fields(key) == protocol]
        cells = original_cells(reference_groups, keys[0], epochs)
        runs = min(map(len, cells))
        cells = [cell[:runs] for cell in cells]
        held_out = []
        for held in (1, 2):
            if runs - held < 2:  # at least 2 runs left for a standard deviation
                continue
            model = calibrate(cells, held, runs - held, epochs)
            held_out.append(HeldOut(held, runs - held, compare.held_out_rates(
                cells, held, epochs, calibration=model), model.false_alarm))
        permutation = [reference_groups[key].cell for key in keys
                       if len(reference_groups[key].finished_runs) >= 2
                       and not one_mode(stack_curves(
                           reference_groups[key].finished_runs, epochs))]
        rates.append(ErrorRate(dict(protocol)["setup"], calibration, held_out, permutation))
    return rates
