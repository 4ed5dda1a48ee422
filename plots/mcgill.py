"""
The reproduction study's Figure 2: training loss against iterations, Adam vs AMSGrad.

.. autosummary::
    :nosignatures:

    Choice
    choose_cells
    draw_choices
    draw_mcgill

The McGill reproduction study of Reddi et al. chose beta2 from {0.99, 0.999}
per optimizer by the lowest validation loss, and plotted the training loss
against iterations of Adam and AMSGrad at that beta2 (its Figure 2).  This
module does the same for every setup with finished runs of the ``mcgill``
protocol (``--protocol mcgill``: runs with lr/sqrt(t) and the multiclass
log-loss, :meth:`experiments.records.protocols.Protocol.trained`).

**The choice.**  A *cell* is the runs that differ only in run index and seed
(equal :func:`plots.verdict.results.group_key`: optimizer, lr, beta2, bias
correction and the rest of the protocol).  Per optimizer, the cell whose runs
have the lowest mean final validation loss is chosen; with a learning rate
grid that is the best (lr, beta2) pair, the study's grid search.  Only
finished runs count (``complete`` or ``diverged``: a running run's last value
is not final), and a diverged run's final validation loss counts as
infinite, so a cell with a diverged run is never chosen.  An optimizer whose
cells all have one gets no line but a legend entry that says so; a setup
where both do gets no figure (the command line says why).
Ties (equal means) go to the smaller beta2, then the smaller lr, then the
other fields of the cell in name order: the choice does not depend on the
order the runs were read in.  Cells of another length or batch size compete
too; keep one protocol per setup in a results directory.

**The figure.**  ``SETUP_mcgill.png`` and ``.pdf``: each chosen cell's
training loss (the mean of an epoch's minibatch losses) against iterations,
epoch k ending after k x the updates per epoch (the training examples of
:data:`experiments.records.setups.TRAIN_EXAMPLES` over the batch size, the last
batch filled up).  A line is the mean over the cell's runs, the light band
behind it spans the lowest to the highest run; Adam blue, AMSGrad red; the
legend gives the chosen beta2 and lr.  A data set whose size is not known
(a registered setup's own) is drawn against epochs.

Examples
--------
>>> from plots.verdict.results import find_runs
>>> from plots.mcgill import draw_mcgill
>>> runs, _ = find_runs("results")                              # doctest: +SKIP
>>> paths, choices = draw_mcgill(runs, "figures")               # doctest: +SKIP
>>> choices["logreg"]["amsgrad"]["beta2"]                       # doctest: +SKIP
0.99
"""
import dataclasses
import math
import warnings

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from experiments.records import optimizers, protocols, setups
from experiments.store.datasource import describe_data
from experiments.store.rundir import FINISHED
from plots.figures import colour, save_figure
from plots.verdict.results import group_key

__all__ = ["Choice", "choose_cells", "draw_choices", "draw_mcgill", "final_val_loss",
           "updates_per_epoch", "PROTOCOL"]

#: The protocol whose runs are drawn.
PROTOCOL = protocols.get("mcgill")


@dataclasses.dataclass(frozen=True, eq=False)
class Choice:
    """The cell chosen for one optimizer of a setup.

    Attributes
    ----------
    key : experiments.records.config.RunConfig
        The cell: its runs' configuration with run index and seed 0
    runs : tuple of plots.verdict.results.Run
        Its finished runs, in the order they were read
    mean_final_val_loss : float
        The mean of their final validation losses (infinite with a diverged run)
    cells_compared : int
        The optimizer's cells it was chosen from
    """
    key: object
    runs: tuple
    mean_final_val_loss: float
    cells_compared: int

    def summary(self):
        """The choice as a plain dict, for the report."""
        return {"lr": self.key.lr, "beta2": self.key.beta2,
                "bias_correction": self.key.bias_correction, "epochs": self.key.epochs,
                "batch_size": self.key.batch_size, "runs": len(self.runs),
                "mean_final_val_loss": self.mean_final_val_loss,
                "cells_compared": self.cells_compared}


def final_val_loss(run):
    """A finished run's last validation loss; infinite for a diverged run or a non-number."""
    if run.status == "diverged" or not run.epochs_done:
        return math.inf
    value = float(run.curves["val_loss"][-1])
    return value if math.isfinite(value) else math.inf


def _tie_break(key):
    # Smaller beta2, then smaller lr, then every field in name order (all of one type each).
    return (key.beta2, key.lr, tuple(sorted(key.to_dict().items())))


def choose_cells(runs, setup):
    """Per optimizer, the cell of lowest mean final validation loss among a setup's mcgill runs.

    Parameters
    ----------
    runs : list of plots.verdict.results.Run
        Runs of any setup, protocol and status; only the finished runs of
        ``setup`` trained with :data:`PROTOCOL`'s schedule and loss count
    setup : str

    Returns
    -------
    dict of str -> Choice or None
        By optimizer, in the registry's order (:func:`experiments.records.optimizers.names`);
        None for an optimizer whose cells all have a diverged run (or a final
        validation loss that is not a number); an optimizer without finished
        runs is left out (the dict may be empty)
    """
    cells = {}
    for run in runs:
        if (run.config.setup == setup and run.status in FINISHED
                and PROTOCOL.trained(run.config)):
            cells.setdefault(group_key(run.config), []).append(run)
    means = {key: float(np.mean([final_val_loss(run) for run in cell_runs]))
             for key, cell_runs in cells.items()}
    choices = {}
    for optimizer in optimizers.names():
        compared = [key for key in cells if key.optimizer == optimizer]
        candidates = [key for key in compared if math.isfinite(means[key])]
        if candidates:
            best = min(candidates, key=lambda key: (means[key], _tie_break(key)))
            choices[optimizer] = Choice(best, tuple(cells[best]), means[best], len(compared))
        elif compared:
            choices[optimizer] = None  # nothing to choose: no "lowest" among diverged cells
    return choices


def updates_per_epoch(config):
    """Updates in one epoch of a run; None when its data set's size is not known.

    ``ceil(training examples / batch size)``, as :func:`data.num_batches`
    counts them: the last batch is filled up.
    """
    examples = setups.TRAIN_EXAMPLES.get(config.dataset)
    return None if examples is None else -(-examples // config.batch_size)


def _band(runs):
    """(mean, lowest, highest) per epoch of the runs' training losses.

    Runs cut short (diverged) and values that are not finite leave gaps, not zeros.
    """
    length = max(run.epochs_done for run in runs)
    stacked = np.full((len(runs), length), np.nan)
    for row, run in zip(stacked, runs):
        losses = run.curves["loss"]
        row[:len(losses)] = np.where(np.isfinite(losses), losses, np.nan)
    with warnings.catch_warnings():  # an epoch no run finished: NaN, which is a gap
        warnings.simplefilter("ignore", RuntimeWarning)
        return (np.nanmean(stacked, axis=0), np.nanmin(stacked, axis=0),
                np.nanmax(stacked, axis=0))


def _label(optimizer, choice):
    key = choice.key
    return "%s: β2=%g, lr=%g%s, mean of %d run%s" % (
        optimizers.get(optimizer).display_name, key.beta2, key.lr,
        ", bias correction on" if key.bias_correction else "", len(choice.runs),
        "" if len(choice.runs) == 1 else "s")


def draw_choices(setup, choices):
    """The figure of a setup's chosen cells (see the module docstring).

    Parameters
    ----------
    setup : str
        Name in the title
    choices : dict of str -> Choice or None
        From :func:`choose_cells`, with one Choice at least

    Returns
    -------
    matplotlib.figure.Figure
        One panel; each mean line has the cell's name as ``gid``, each band
        ``"band " + cell name``.
    """
    figure = Figure(figsize=(7.0, 4.6), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    for optimizer in [name for name, choice in choices.items() if choice is None]:
        ax.plot([], [], linestyle="none", label="%s: every cell has a diverged run"
                % optimizers.get(optimizer).display_name)
    choices = {name: choice for name, choice in choices.items() if choice is not None}
    in_updates = all(updates_per_epoch(choice.key) for choice in choices.values())
    for optimizer, choice in choices.items():
        mean, lowest, highest = _band(choice.runs)
        epochs = np.arange(1, len(mean) + 1)
        x = epochs * updates_per_epoch(choice.key) if in_updates else epochs
        tint = colour(optimizer, True)
        ax.fill_between(x, lowest, highest, color=tint, alpha=0.2, linewidth=0,
                        gid="band " + choice.key.cell_name)
        ax.plot(x, mean, color=tint, linewidth=1.5, marker="." if len(x) == 1 else None,
                label=_label(optimizer, choice), gid=choice.key.cell_name)
    batch_sizes = sorted({choice.key.batch_size for choice in choices.values()})
    ax.set_xlabel("iterations (updates of %s examples)" % "/".join(map(str, batch_sizes))
                  if in_updates else "epochs (the data set's size is not known)")
    ax.set_ylabel("training loss (multiclass log-loss)")
    ax.grid(True, alpha=0.3)
    ax.legend(title="β2 and lr of the lowest validation loss; band: lowest to highest run",
              title_fontsize="small", fontsize="small")
    data = "; ".join(sorted({describe_data(run.config.dataset, run.data)
                             for choice in choices.values() for run in choice.runs}))
    ax.set_title("%s: Adam vs AMSGrad, lr/sqrt(t) (--protocol mcgill)\ntrained on %s"
                 % (setup, data), fontsize="medium")
    return figure


def draw_mcgill(runs, out_dir):
    """Choose the cells of every setup with finished mcgill runs and draw their figures.

    Parameters
    ----------
    runs : list of plots.verdict.results.Run
        Runs of any setup, protocol and status
    out_dir : str

    Returns
    -------
    paths : list of str
        ``out_dir/SETUP_mcgill.png`` and ``.pdf`` per setup drawn, setups in name order
    choices : dict
        ``{setup: {optimizer: Choice.summary() or None}}`` of the setups with
        finished mcgill runs; None where every cell of the optimizer has a
        diverged run.  A setup whose optimizers are all None gets no figure.
    """
    paths, chosen = [], {}
    for setup in sorted({run.config.setup for run in runs}):
        choices = choose_cells(runs, setup)
        if not choices:
            continue
        if any(choices.values()):
            paths += save_figure(draw_choices(setup, choices), out_dir, "%s_mcgill" % setup)
        chosen[setup] = {optimizer: choice and choice.summary()
                         for optimizer, choice in choices.items()}
    return paths, chosen
