"""
The blog's figures: training and validation curves of every run of a setup.

.. autosummary::
    :nosignatures:

    draw_metric
    draw_setup
    save_figure

One figure per setup and curve (training loss, validation loss, training
accuracy, validation accuracy).  Rows are learning rates; each beta2 has two
columns, all epochs and a zoom on the last ones.  Every run is one line in
its optimizer's colour (Adam blue, AMSGrad red, ADAMNC green, a plug-in's
its own), the lighter shade without bias correction.  Behind them, in
the same colour, the band between the lowest and the highest of the original
runs of the same cell, where the original has that cell.

Figures are drawn on :class:`matplotlib.figure.Figure` objects with the Agg
canvas, never through ``pyplot``: nothing global, nothing shown.

Examples
--------
>>> from plots.verdict.results import find_runs, load_reference
>>> from plots.figures import draw_setup
>>> runs, _ = find_runs("results")                                   # doctest: +SKIP
>>> reference, _ = load_reference()                                  # doctest: +SKIP
>>> draw_setup("logreg", runs, reference.get("logreg", []), "figures")  # doctest: +SKIP
['figures/logreg_loss.png', 'figures/logreg_loss.pdf', ...]
"""
import io
import math
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from experiments.records import optimizers
from experiments.records.curves import get as curve_of
from experiments.store.atomic import atomic_write_bytes
from experiments.store.datasource import describe_data
from plots.verdict.distances import MIN_ACCURACY_SCALE, MIN_LOSS_SCALE
from plots.verdict.results import group_key

__all__ = ["draw_metric", "draw_setup", "save_figure", "colour", "METRIC_LABELS",
           "ZOOM_FRACTION"]

#: Curve name -> axis label, in the order the figures are drawn.
METRIC_LABELS = {
    "loss": "training loss (cross-entropy)",
    "val_loss": "validation loss (cross-entropy)",
    "acc": "training accuracy",
    "val_acc": "validation accuracy",
}
#: The zoom panels show the last this fraction of the epochs run so far (at least 2 epochs).
ZOOM_FRACTION = 0.2
#: A y-axis spans at least this many minimum meaningful differences
#: (:func:`plots.verdict.distances.minimum_scale`: 3e-4 in accuracy, 0.01% of a loss), so that
#: runs stuck at chance (accuracy 0.0997-0.1003) do not fill a panel with their noise.
MIN_SPAN_SCALES = 20


def colour(optimizer, bias_correction):
    """Line colour of a variant: the optimizer's (:mod:`experiments.records.optimizers`; Adam blue,
    AMSGrad red, ADAMNC green), lighter without bias correction."""
    return optimizers.get(optimizer).colour_for(bias_correction)


def _variant_label(optimizer, bias_correction):
    record = optimizers.get(optimizer)
    if not record.uses("bias_correction"):
        return record.display_name
    return "%s, bias correction %s" % (record.display_name, "on" if bias_correction else "off")


def _variant(config):
    return config.optimizer, config.bias_correction


def _variant_order(variant):
    # The registry's order: the project's optimizers first, then the plug-ins'.
    optimizer, bias_correction = variant
    return optimizers.names().index(optimizer), not bias_correction


def _finite_or_nan(values):
    # Infinite values (a diverged loss) would wreck the autoscaling; NaN leaves a gap.
    return np.where(np.isfinite(values), values, np.nan)


def _original_band(reference_runs, config, metric):
    """(epochs, lowest, highest, number of runs) of the original runs of ``config``'s cell.

    None where the original has no such cell, or ran it with another protocol:
    a band belongs only behind runs of its own cell *and* protocol (equal
    :func:`plots.verdict.results.group_key`: epochs, schedule, loss, batch size,
    CIFAR-10 centring, ...), as in the report; the study's runs
    (``--protocol mcgill``) or an uncentred run get no band.
    """
    key = group_key(config)
    curves = [run.curves[metric] for run in reference_runs if group_key(run.config) == key]
    if not curves:
        return None
    length = min(len(curve) for curve in curves)
    stacked = np.stack([curve[:length] for curve in curves])
    return (np.arange(1, length + 1), np.nanmin(stacked, axis=0), np.nanmax(stacked, axis=0),
            len(curves))


def _minimum_span(metric, values):
    """The smallest y span a panel of ``metric`` showing ``values`` may have."""
    if curve_of(metric).lower_is_better:  # a loss: its minimum span is relative
        return MIN_SPAN_SCALES * MIN_LOSS_SCALE * max(np.nanmax(np.abs(values)), 1e-3)
    return MIN_SPAN_SCALES * MIN_ACCURACY_SCALE


def _widen(ax, metric, series, first, last):
    """Widen ``ax``'s y limits to the minimum span around what it shows (epochs first..last)."""
    values = np.concatenate([y[(x >= first) & (x <= last)] for x, y in series] or [[]])
    values = values[np.isfinite(values)]
    if not values.size:
        return
    low, high = ax.get_ylim()
    span = _minimum_span(metric, values)
    if high - low < span:
        middle = (values.min() + values.max()) / 2
        ax.set_ylim(middle - span / 2, middle + span / 2)


def _zoom_limits(first, last, series):
    """y limits that fit every (x, y) series between epochs ``first`` and ``last``, or None."""
    values = [y[(x >= first) & (x <= last)] for x, y in series]
    values = np.concatenate(values) if values else np.array([])
    values = values[np.isfinite(values)]
    if not values.size:
        return None
    low, high = values.min(), values.max()
    pad = 0.05 * (high - low) or 0.01 * max(abs(high), 1e-3)
    return low - pad, high + pad


def draw_metric(setup, metric, runs, reference_runs=()):
    """Draw one curve of every run of a setup, with the original runs' bands.

    Parameters
    ----------
    setup : str
        Name in the title
    metric : str
        ``loss``, ``val_loss``, ``acc`` or ``val_acc``
    runs : list of plots.verdict.results.Run
        Runs of any status (running ones show the epochs done); those of
        other setups are left out
    reference_runs : list of plots.verdict.results.Run
        The original runs of the setup (may be empty)

    Returns
    -------
    matplotlib.figure.Figure
        Rows: learning rates, ascending; columns: for each beta2, ascending,
        all epochs then the last ones.  Each run's line has the run directory
        as ``gid``; each band is a ``fill_between`` collection with ``gid``
        ``"original " + cell name``.
    """
    runs = [run for run in runs if run.config.setup == setup]
    lrs = sorted({run.config.lr for run in runs})
    beta2s = sorted({run.config.beta2 for run in runs})
    figure = Figure(figsize=(3.6 * 2 * len(beta2s), 2.9 * len(lrs) + 1.2), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(lrs), 2 * len(beta2s), squeeze=False)
    variants_drawn, band_sizes = set(), set()
    for row, lr in enumerate(lrs):
        for column, beta2 in enumerate(beta2s):
            panel = [run for run in runs if (run.config.lr, run.config.beta2) == (lr, beta2)]
            full, zoom = axes[row, 2 * column], axes[row, 2 * column + 1]
            if not panel:
                for ax in (full, zoom):
                    ax.text(0.5, 0.5, "no runs", ha="center", va="center", transform=ax.transAxes)
                    ax.set_title("lr=%g, β2=%g" % (lr, beta2))
                continue
            variants_drawn |= _draw_panel(full, zoom, panel, metric, reference_runs, band_sizes)
            full.set_title("lr=%g, β2=%g" % (lr, beta2))
    _label(figure, axes, metric, variants_drawn, band_sizes)
    data = "; ".join(sorted({describe_data(run.config.dataset, run.data) for run in runs}))
    figure.suptitle("%s: %s, one line per run: %s\ntrained on %s" % (
        setup, METRIC_LABELS[metric], _runs_text(runs), data))
    return figure


def _runs_text(runs):
    """``120 runs x 150 epochs``, or ``24 runs, epochs 2 of 150 (compared there)``."""
    done = sorted({run.epochs_done for run in runs})
    planned = sorted({run.config.epochs for run in runs})
    text = "%d run%s" % (len(runs), "" if len(runs) == 1 else "s")
    done_text = "-".join(map(str, sorted({done[0], done[-1]}))) if done else "0"
    if done == planned:
        return text + " x %s epochs" % done_text
    return text + ", %s epochs of %s run (drawn and compared over those)" % (
        done_text, "/".join(map(str, planned)))


def _draw_panel(full, zoom, panel, metric, reference_runs, band_sizes):
    """The runs of one (lr, beta2) over the original bands, in full and zoomed; the variants drawn.

    Adds the sizes of the bands drawn to ``band_sizes``.
    """
    panel.sort(key=lambda run: (_variant_order(_variant(run.config)), run.config.run,
                                run.source))
    # x range of the full panel: the epochs done (the original's band is drawn over
    # those only: the runs are compared there); of the zoom: the last of them.
    done = max([1] + [run.epochs_done for run in panel])
    zoom_first = max(1, done - max(2, math.ceil(ZOOM_FRACTION * done)) + 1)
    series = []
    for variant in sorted({_variant(run.config) for run in panel}, key=_variant_order):
        config = next(run.config for run in panel if _variant(run.config) == variant)
        band = _original_band(reference_runs, config, metric)
        if band is None:
            continue
        epochs, lowest, highest, size = (part[:done] if index < 3 else part
                                          for index, part in enumerate(band))
        band_sizes.add(size)
        series += [(epochs, lowest), (epochs, highest)]
        for ax in (full, zoom):
            ax.fill_between(epochs, lowest, highest, color=colour(*variant), alpha=0.3,
                            linewidth=0, zorder=1, gid="original " + config.cell_name)
    for run in panel:
        epochs, values = np.arange(1, run.epochs_done + 1), _finite_or_nan(run.curves[metric])
        series.append((epochs, values))
        for ax in (full, zoom):
            ax.plot(epochs, values, color=colour(*_variant(run.config)), linewidth=1.0,
                    marker="." if run.epochs_done == 1 else None, zorder=2, gid=run.source)
    full.set_xlim(0.5, done + 0.5)
    zoom.set_xlim(zoom_first - 0.5, done + 0.5)
    zoom.set_title("zoom: epochs %d-%d" % (zoom_first, done))
    limits = _zoom_limits(zoom_first, done, series)
    if limits is not None:
        zoom.set_ylim(*limits)
    _widen(full, metric, series, 1, done)
    _widen(zoom, metric, series, zoom_first, done)
    return {_variant(run.config) for run in panel}


def _label(figure, axes, metric, variants_drawn, band_sizes):
    """Axis labels, grids and the legend (one entry per variant drawn, and the bands')."""
    for ax in axes[-1, :]:
        ax.set_xlabel("epoch")
    for ax in axes[:, 0::2].flat:
        ax.set_ylabel(METRIC_LABELS[metric])
    for ax in axes.flat:
        ax.grid(True, alpha=0.3)
    handles = [Line2D([], [], color=colour(*variant), label=_variant_label(*variant))
               for variant in sorted(variants_drawn, key=_variant_order)]
    if band_sizes:
        handles.append(Patch(color="0.6", alpha=0.4, label="original runs, lowest to highest of %s"
                             % "/".join(map(str, sorted(band_sizes)))))
    # One row of entries fits under four panel columns; two columns under fewer.
    figure.legend(handles=handles, loc="outside lower center",
                  ncol=len(handles) if axes.shape[1] >= 4 else 2)


def save_figure(figure, out_dir, stem, dpi=110):
    """Write ``figure`` as ``out_dir/stem.png`` and ``.pdf``; returns the two paths.

    ``dpi`` is the PNG's resolution (and the PDF's for raster parts).

    Each file is written atomically (rendered in memory, then
    :func:`experiments.store.atomic.atomic_write_bytes`): an interrupted call
    leaves the previous file or none, never half a figure.
    """
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for suffix in ("png", "pdf"):
        buffer = io.BytesIO()
        figure.savefig(buffer, format=suffix, dpi=dpi)
        paths.append(os.path.join(out_dir, "%s.%s" % (stem, suffix)))
        atomic_write_bytes(paths[-1], buffer.getvalue())
    return paths


def draw_setup(setup, runs, reference_runs, out_dir, stem=None):
    """Draw and save the four figures of a setup.

    Parameters
    ----------
    setup : str
    runs : list of plots.verdict.results.Run
        Runs of any setup (others than ``setup`` are left out), of one protocol
    reference_runs : list of plots.verdict.results.Run
        The original runs of this setup (may be empty)
    out_dir : str
    stem : str or None
        Start of the file names; ``setup`` by default (for the runs of the
        blog's protocol; :func:`plots.verdict.results.figure_stem`)

    Returns
    -------
    list of str
        ``out_dir/STEM_METRIC.png`` and ``.pdf`` for each curve of
        :data:`METRIC_LABELS`
    """
    paths = []
    for metric in METRIC_LABELS:
        paths += save_figure(draw_metric(setup, metric, runs, reference_runs), out_dir,
                             "%s_%s" % (stem or setup, metric))
    return paths
