"""
The figure of the synthetic experiments, in the style of Reddi et al.'s Figure 1.

.. autosummary::
    :nosignatures:

    plot_synthetic

One column per setting: the average regret :math:`R_t / t` on top, the
iterate :math:`x_t` below, every optimizer run in each panel in its colour
(:mod:`experiments.records.optimizers`: Adam blue, AMSGrad red, ADAMNC green).  Reads what
``python experiments/run.py synthetic`` writes (``trajectories.json``,
``config.json``); imports matplotlib (Agg, without pyplot) and never Theano.

Examples
--------
>>> from plots.synthetic import plot_synthetic
>>> plot_synthetic("results/synthetic", "figures")  # doctest: +SKIP
['figures/synthetic.png', 'figures/synthetic.pdf']
"""
import os
import textwrap

from matplotlib.figure import Figure

from errors import UserError
from experiments.records import optimizers
from experiments.store.atomic import load_json
from experiments.store.rundir import CONFIG_FILE, SYNTHETIC_TRAJECTORIES
from plots.figures import colour, save_figure

__all__ = ["plot_synthetic"]

FIGURE_NAME = "synthetic"


def _colour(optimizer):
    # An optimizer no longer registered (its plug-in not loaded) is still drawn.
    return colour(optimizer, True) if optimizer in optimizers.names() else None


def _name(optimizer):
    return optimizers.get(optimizer).display_name if optimizer in optimizers.names() \
        else optimizer


def _lrs(config, optimizers_drawn):
    """Each optimizer's learning rate: ``lrs``, or (results of earlier versions) ``lr``."""
    lrs = config.get("lrs")
    if isinstance(lrs, dict):
        return lrs
    return {optimizer: config["lr"] for optimizer in optimizers_drawn}


def _label(optimizer, lrs):
    return "%s, lr %g" % (_name(optimizer), lrs[optimizer]) if optimizer in lrs \
        else _name(optimizer)


def _load(synthetic_dir, name):
    path = os.path.join(synthetic_dir, name)
    if not os.path.exists(path):
        raise UserError("%s not found; run `python experiments/run.py synthetic "
                        "--results-dir %s` first" % (path, os.path.dirname(synthetic_dir) or "."))
    try:
        return load_json(path)
    except ValueError as exc:
        raise UserError("%s %s; run the synthetic experiment again" % (path, exc))


#: Inches of the figure's width per setting (a column of two panels).
COLUMN_WIDTH = 4.5
#: Characters of the title per inch of the figure's width (matplotlib's default 12-point
#: title is about 7 points a character).
TITLE_CHARACTERS_PER_INCH = 9


def figure_title(names, rates, config, columns):
    """The figure's title: what is drawn, wrapped to the width of ``columns`` columns."""
    drawn = names[0] if len(names) < 2 else "%s and %s" % (", ".join(names[:-1]), names[-1])
    width = int(TITLE_CHARACTERS_PER_INCH * COLUMN_WIDTH * columns)
    return "\n".join(textwrap.wrap("%s on the synthetic problems of Reddi et al." % drawn,
                                   width) + textwrap.wrap(
        "(%s, %s, bias correction %s)" % ("lr=%g" % rates[0] if len(rates) == 1
                                          else "each at its lr", config["lr_schedule"],
                                          "on" if config["bias_correction"] else "off"), width))


def plot_synthetic(synthetic_dir, out_dir):
    """Draw the synthetic experiments' figure as PNG and PDF.

    Parameters
    ----------
    synthetic_dir : str
        The directory the experiment wrote (``RESULTS/synthetic``).
    out_dir : str
        Where to write ``synthetic.png`` and ``synthetic.pdf`` (created if needed).

    Returns
    -------
    list of str
        The paths written.

    Raises
    ------
    errors.UserError
        If ``synthetic_dir`` lacks the experiment's files.
    """
    curves = _load(synthetic_dir, SYNTHETIC_TRAJECTORIES)
    config = _load(synthetic_dir, CONFIG_FILE)
    settings = list(curves)
    lrs = _lrs(config, [optimizer for setting in settings for optimizer in curves[setting]])
    figure = Figure(figsize=(COLUMN_WIDTH * len(settings), 6.5), layout="constrained")
    axes = figure.subplots(2, len(settings), sharex="col", squeeze=False)
    for column, setting in enumerate(settings):
        regret_axes, x_axes = axes[:, column]
        for optimizer, curve in curves[setting].items():
            style = dict(color=_colour(optimizer), label=_label(optimizer, lrs), linewidth=1.2)
            regret_axes.plot(curve["step"], curve["avg_regret"], **style)
            x_axes.plot(curve["step"], curve["x"], **style)
        problem = config["settings"][setting]
        regret_axes.set_title("%s  (beta1=%g, beta2=%.4g)" % (setting, problem["beta1"],
                                                               problem["beta2"]))
        regret_axes.set_ylabel("average regret $R_t / t$")
        regret_axes.axhline(0, color="0.6", linewidth=0.8)
        x_axes.axhline(problem["optimum"], color="0.4", linestyle="--", linewidth=0.8,
                       label="$x^*$")
        x_axes.set_ylim(-1.08, 1.08)
        x_axes.set_ylabel("$x_t$")
        x_axes.set_xlabel("step $t$")
        x_axes.legend(loc="best")
    # The optimizers drawn, in their order in the results (one run may hold only ADAMNC).
    names = [_name(optimizer) for optimizer in dict.fromkeys(
        optimizer for setting in settings for optimizer in curves[setting])]
    figure.suptitle(figure_title(names, sorted(set(lrs.values())), config, len(settings)))

    return save_figure(figure, out_dir, FIGURE_NAME, dpi=150)
