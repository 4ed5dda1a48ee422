"""
The reproduction report: reproduced runs against the original runs, cell by cell, written.

.. autosummary::
    :nosignatures:

    write_report
    markdown
    csv_rows

:func:`write_report` has :func:`plots.verdict.findings.find` compute the
report (the cells' numbers and verdicts against the original runs, the
verdicts' error rates, the claims on both sides, the pair effects) and writes
those :class:`plots.verdict.findings.Findings` as ``REPORT.md`` and
``report.csv``: everything here puts numbers found there into words and
tables, and computes nothing.

Examples
--------
>>> from plots.verdict.results import find_runs, load_reference
>>> from plots.report import write_report
>>> runs, problems = find_runs("results")                      # doctest: +SKIP
>>> reference, _ = load_reference()                            # doctest: +SKIP
>>> write_report("figures", runs, reference, problems)          # doctest: +SKIP
('figures/REPORT.md', 'figures/report.csv')
"""
import csv
import io
import math
import os

from experiments.store.atomic import atomic_write_bytes
from plots.verdict import compare, two_optimizers
from plots.verdict.cells import AGREE_WITHIN, MIN_STD
from plots.verdict.compare import MEASURES  # the compared measures: the original has them
from plots.verdict.findings import DEFAULT_COMPARISONS, find, protocol_text

__all__ = ["write_report", "markdown", "csv_rows", "pair_text", "comparison_lines"]


def _measure_name(measure):
    return (measure.replace("_", " ").replace("val", "validation").replace("acc", "accuracy")
            .replace("train", "training"))


def _number(value, form="%.4f"):
    return "-" if value is None or math.isnan(value) else form % value


def _mean_std_text(mean, std):
    if math.isnan(mean):
        return "-"
    return _number(mean) + ("" if math.isnan(std) else " (%s)" % _number(std))


def _cell_text(cell, bias_correction=True):
    """``optimizer lr=.. b2=.. bc=on|off`` of a cell, without bc if not ``bias_correction``."""
    text = "%s lr=%g b2=%g" % (cell.optimizer, cell.lr, cell.beta2)
    return text + (" bc=%s" % ("on" if cell.bias_correction else "off")
                   if bias_correction else "")


def _runs_text(group):
    extra = [text % count for text, count in (("%d diverged", group.diverged),
                                              ("%d running", group.running)) if count]
    text = "%d" % len(group.finished)
    if group.at_epoch is not None:
        text += " after epoch %d" % group.at_epoch
    return text + (" (+%s)" % ", ".join(extra) if extra else "")


# -- pairs of cells --------------------------------------------------------------------------

def _paired_text(effect):
    return "; paired run by run in %d" % effect.paired if effect.paired else ""


def _median_text(effect):
    return "- (one run a side)" if math.isnan(effect.median_d) else "%+.1f" % effect.median_d


def _optimizer_text(effect, first_name="AMSGrad", second_name="Adam"):
    """Counts and effect sizes of ``first - second`` over pairs, as a sentence."""
    return ("%s better in %d of %d pairs (by > %g std: %s %d, %s %d); "
            "mean difference %s - %s %+.4f, median d %s%s"
            % (first_name, effect.better, effect.pairs, AGREE_WITHIN, first_name,
               effect.clear_better, second_name, effect.clear_worse, first_name, second_name,
               effect.mean_difference, _median_text(effect), _paired_text(effect)))


def _bias_correction_text(effect):
    """Size of on - off over pairs: mean and largest |difference|, counts."""
    return ("on better in %d of %d pairs, d beyond ±%g in %d; mean absolute on - off %.4f, "
            "largest %+.4f (%s, d %s)%s"
            % (effect.better, effect.pairs, AGREE_WITHIN,
               effect.clear, effect.mean_absolute_difference,
               effect.largest_difference, _cell_text(effect.largest, bias_correction=False),
               _number(effect.largest_d, "%+.1f"), _paired_text(effect)))


#: The pair tables' first column, per field of a pair.
PAIR_NAMES = {"optimizer": "AMSGrad - Adam", "bias_correction": "bias correction on - off"}


def pair_text(effect):
    """A :class:`plots.verdict.cells.PairEffect` in words: in how many pairs the first is
    better, in how many by more than AGREE_WITHIN standard deviations, the mean difference
    and the median d (AMSGrad - Adam), or the largest difference (bias correction)."""
    if not effect.pairs:
        return "no pairs with finished runs on both sides"
    if effect.field == "optimizer":
        return _optimizer_text(effect)
    return _bias_correction_text(effect)


# -- REPORT.md -------------------------------------------------------------------------------

def _cell_rows(comparisons, measures):
    header = (["optimizer", "lr", "b2", "bc", "runs"] + [_measure_name(m) for m in measures]
              + ["verdict"])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for comparison in comparisons:
        key = comparison.group.key
        cells = [key.optimizer, "%g" % key.lr, "%g" % key.beta2,
                 "on" if key.bias_correction else "off", _runs_text(comparison.group)]
        for measure in measures:
            row = comparison.rows[measure]
            text = _mean_std_text(row["mean"], row["std"])
            if comparison.original is not None and measure in MEASURES:
                text += " vs %s, d %s" % (
                    _mean_std_text(row["original_mean"], row["original_std"]),
                    _number(row["d"], "%+.1f"))
            cells.append(text)
        cells.append("**%s**: %s" % (comparison.verdict, comparison.reason))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _introduction(findings, sources):
    lines = [
        "# Reproduction report: Experiments with AMSGrad", "",
        "Reproduced runs read from `%s`; original runs from `%s` (the logs published with the "
        "blog post: %s; %s runs per cell, %s epochs)." % (
            sources + (", ".join(findings.original_setups) or "none",
                       "/".join(map(str, findings.original_runs)) or "0",
                       "/".join(map(str, findings.original_epochs)) or "0")), "",
        "## How to read it", "",
        "- A *cell* is optimizer, learning rate (lr), beta2 (b2) and bias correction (bc); "
        "*runs* are its repetitions. Only runs that finished (status `complete`) enter the "
        "statistics; running and diverged runs are counted beside them. A cell whose runs were "
        "all stopped early (`--stop-after`) is compared *after epoch E*, the fewest epochs any "
        "of its runs has done, with the original runs' first E epochs.",
        "- *final*: the value after the last epoch; *best*: the lowest loss or highest accuracy "
        "over all epochs. Losses are mean cross-entropies, accuracies fractions; *better* "
        "means lower loss or higher accuracy.",
        "- Each measure reads `mean (std) vs original mean (std), d ±x.x`: mean and sample "
        "standard deviation (n - 1) over runs; d as below. `reference/summary.md` divides by n "
        "instead: its std is ours times sqrt((n-1)/n) (0.894 for 5 runs).",
        "- d = (reproduced mean - original mean) / pooled std, pooled std = "
        "sqrt(((n1-1) s1^2 + (n2-1) s2^2) / (n1+n2-2)), raised to %g where smaller "
        "(cells whose runs all end on the same value)." % MIN_STD,
        "- d is descriptive; the verdict is not taken from it. The verdict "
        "(`plots/verdict/compare.py`) compares whole curves: at every epoch of the training and "
        "validation loss and accuracy, the difference of the means over its standard error "
        "(pooled between-run std, raised to a minimum meaningful difference of 3e-4 in "
        "accuracy and 0.01%% of a loss, times sqrt(1/n + 1/m)); per curve the root mean square "
        "over the epochs compared, and per measure above its standardized difference. The "
        "*largest distance* of these nine is held against thresholds calibrated on the "
        "original runs of the same setup (draws from each original cell's mean and "
        "covariance): **differs** above the point that same-experiment draws pass %g%% of the "
        "time (or when a reproduced run diverged: the original runs never did); **agrees** "
        "at or below the point that runs with one whole curve shifted by %g standard "
        "deviations stay under %g%% of the time; **inconclusive** in between; **n/a** when "
        "there is nothing to compare (no original cell of this protocol, too few runs). The "
        "error rates, measured, are in the table above." % (
            100 * compare.ALPHA, compare.SHIFT, 100 * compare.BETA)]
    if findings.reported_only:
        lines.append(
            "- Curves the original runs lack, %s (declared in `experiments/records/curves.py`), "
            "are shown as measured but never compared: no original side, no verdict, no pairs. "
            "Their means and stds are over the runs that recorded them (n in `report.csv`); "
            "the verdict compares %s only." % (
                ", ".join("`%s`" % name for name in findings.reported_only),
                ", ".join("`%s`" % name for name in compare.CURVES)))
    lines += [
        "- The claims are evaluated on the cells with finished runs, on both sides on the same "
        "cells. A *pair* is two cells that differ only in the optimizer (or only in bias "
        "correction); differences are AMSGrad - Adam (or on - off). Where both cells share "
        "their draws (common seeding: run K of both started from the same weights and saw the "
        "same data order; runs from before the `seeding` field are common), a pair is compared "
        "on the paired differences, run by run, over the runs both cells have, and d is their "
        "mean over their std; otherwise on the means, d in pooled std. The original's runs are "
        "independent draws (its `train.py` seeds nothing).", ""]
    return lines


def _list_text(values):
    return "; ".join(values) or "-"


def _claims_text(tally):
    """``x of y`` claims that hold on one side, with how many cannot be told."""
    return "%d of %d" % (tally.holds, tally.total) + (
        " (%d cannot tell)" % tally.cannot_tell if tally.cannot_tell else "")


def _held_out_text(held_out):
    rates = held_out.rates
    return "%.1f%% / %.1f%% / %.1f%% against %d (model's false alarm: %.1f%%)" % (
        100 * rates["differs"], 100 * rates["inconclusive"], 100 * rates["agrees"],
        held_out.against, 100 * held_out.model_false_alarm)


def _error_rates(rates):
    """The table of the thresholds the verdicts used, with their error rates, measured on
    the model's draws and on the original runs held out of their own cells."""
    lines = ["### The verdicts' error rates", "",
             "Measured for the numbers of runs and epochs compared here. *False alarm*: "
             "same-experiment runs called **differs**, over all cells and for the cells with "
             "the lowest and the highest rate (the threshold is one for all cells of a setup); "
             "*shift called agrees*: runs with one curve shifted by %g standard deviations "
             "called **agrees** (both on draws from the original cells' fitted Gaussian "
             "models, independent of the thresholds' draws, which are seeded per cell and do "
             "not depend on the cells' order). *Held out*: measured on the original runs "
             "themselves: each run (each pair of runs) held out of its own cell and judged "
             "against the cell's other 4 (3) runs, as **differs / inconclusive / agrees**, "
             "beside the model's false-alarm rate for the same numbers of runs. An original "
             "cell one of whose runs lies far from the others (not of one mode) has no "
             "Gaussian model: it is left out of the thresholds and judged by permutation "
             "(never **agrees**; with 1 run against 4 or 5, never **differs**)." % compare.SHIFT,
             "", "| setup | runs compared | epochs | differs above | agrees at or below | "
             "false alarm (a cell's) | shift called agrees | held out: 1 run | held out: 2 runs "
             "| judged by permutation |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    if not rates:
        return lines[:2] + ["No cell was judged.", ""]
    for rate in rates:
        calibration = rate.calibration
        held = {held_out.held: _held_out_text(held_out) for held_out in rate.held_out}
        lines.append("| %s | %d against %d | %d | %.2f | %.2f | %.1f%% (%.1f-%.1f%%) | %.1f%% | "
                     "%s | %s | %s |" % (
                         rate.setup, calibration.n, calibration.m, calibration.epochs,
                         calibration.differ_above, calibration.agree_below,
                         100 * calibration.false_alarm, 100 * calibration.cell_false_alarm[0],
                         100 * calibration.cell_false_alarm[1],
                         100 * calibration.false_agreement,
                         held.get(1, "- (too few original runs)"),
                         held.get(2, "- (too few original runs)"),
                         _list_text([_cell_text(cell) for cell in rate.permutation_cells])))
    return lines + [""]


def _claims_table(results):
    """The claims on the original and reproduced runs, each with its reading."""
    lines = ["### The claims, on both sides", "",
             "Each claim of the blog post (per setup) and of the McGill study (under its own "
             "protocol), in the source's words (quoted; *paraphrase* where the post's wording "
             "is not at hand), with its reading: what is measured, on which cells, and when it "
             "holds (`plots/verdict/claims.py`, decided by `plots/verdict/readings.py`). "
             "Decided on the original runs and on the reproduced ones. Pairs of cells are "
             "compared run by run (paired differences) where both cells share their draws "
             "(common seeding); the original's runs are independent draws.", "",
             "| source | setup | claim | reading | original runs | reproduced runs |",
             "|---|---|---|---|---|---|"]
    for result in results:
        lines.append("| %s | %s | %s | %s | %s | %s |" % (
            result.claim.source, result.setup, result.claim.text, result.claim.reading(),
            result.original, result.reproduced))
    return lines + [""]


def _blog_findings(findings):
    """Per setup of the original runs, how many of the blog's claims its own runs bear out;
    the claims they do not bear out, as findings about the blog."""
    lines = ["| setup | the blog's claims that hold on its own runs |", "|---|---|"]
    for setup, tally in findings.original_claims.items():
        lines.append("| %s | %s |" % (setup, _claims_text(tally) if tally.total else
                                      "none made (the post: \"I won't interpret the results "
                                      "for these experiments\")"))
    failing = [result for result in findings.claims if result.claim.protocol == "blog"
               and result.original.startswith("does not hold")]
    lines += [""] + (["Read as written, these claims do not hold on the blog's own runs:"]
                     + ["- %s: %s: %s" % (result.setup, result.claim.text, result.original)
                        for result in failing] if failing else
                     ["Read as written, every claim of the blog holds on its own runs."])
    return lines + [""]


def _epochs_text(section):
    epochs, planned = section.epochs, section.protocol.epochs
    if not epochs:
        return "-"
    if epochs == [planned]:
        return "%d" % planned
    return "%s of %d" % ("-".join(map(str, sorted({epochs[0], epochs[-1]}))), planned)


def _summary_row(section, original_setups):
    runs = "%d complete, %d diverged" % (section.finished, section.diverged)
    if section.stopped_early:
        runs += ", %d stopped early" % section.stopped_early
    if section.running:
        runs += ", %d running" % section.running
    if section.blog_runs is not None:
        runs += (" (of the blog's %d)" % section.blog_runs
                 if section.protocol.setup in original_setups or not original_setups else
                 " (of %d in the blog's grid; the blog ran no %s)" % (
                     section.blog_runs, section.protocol.setup))
    verdicts = section.verdicts
    cells_text = "%d / %d / %d / %d / %s" % (
        verdicts["agrees"], verdicts["differs"], verdicts["inconclusive"], verdicts["n/a"],
        "-" if section.not_run is None else "%d" % section.not_run)
    claims_text = "-" if section.claims is None else "%s / %s" % tuple(
        map(_claims_text, section.claims))
    return "| %s | %s | %s | %s | %s | %s | %s |" % (
        section.protocol.setup,
        "the blog's" if section.blog_runs is not None else protocol_text(section.protocol),
        _list_text(section.data), runs, _epochs_text(section), cells_text, claims_text)


def _summary(findings):
    """The opening table (one row per setup and protocol) and the cells that differ."""
    lines = ["| setup | protocol | data | runs | epochs | cells of the blog's grid: agree / "
             "differ / inconclusive / n/a / not run | claims that hold (table below): "
             "reproduced / original |", "|---|---|---|---|---|---|---|"]
    lines += [_summary_row(section, findings.original_setups) for section in findings.sections]
    lines += ["", "Original runs: the blog's logs, on the official data sets."]
    lines += ["%s: compared after epoch %s with %s run a cell: the verdicts speak for the "
              "start of training only, not for its end, where the blog's claims are "
              "(cannot tell)." % (section.protocol.setup, _epochs_text(section),
                                  "/".join(sorted({"%d" % len(c.group.finished)
                                                   for c in section.comparisons})))
              for section in findings.sections if section.stopped_early]
    lines += [""] + _blog_findings(findings)
    lines += _error_rates(findings.error_rates)
    lines += _claims_table(findings.claims)
    lines += ["### Cells that differ from the original, or cannot be told apart yet", ""]
    lines += ["- %s %s (runs: %s): **%s**, %s" % (c.group.key.setup, _cell_text(c.group.cell),
                                                  _runs_text(c.group), c.verdict, c.reason)
              for c in findings.unsettled] or ["None."]
    return lines + [""]


def _setup_section(section, measures):
    """Cells table and pair table of one setup and protocol."""
    lines = ["## %s" % section.protocol.setup, "",
             "Protocol: %s." % protocol_text(section.protocol),
             "Data: %s." % _list_text(section.data),
             "Machines: %s." % _list_text(["%s (%d runs)" % item for item in section.machines])]
    if section.figures:
        lines.append("Figures: %s." % ", ".join("[%s](%s)" % (name[:-4], name)
                                                for name in section.figures))
    verdicts = section.verdicts
    lines += ["", "### Cells", "", "%d cells: %d agree, %d differ, %d inconclusive, %d n/a." % (
        len(section.comparisons), verdicts["agrees"], verdicts["differs"],
        verdicts["inconclusive"], verdicts["n/a"]), ""]
    lines += _cell_rows(section.by_verdict, measures)

    lines += ["", "### Pair by pair", "",
              "Cells that differ only in the optimizer (or only in bias correction): in how many "
              "pairs the first is better, by more than %g standard deviations (pooled, or of the "
              "paired differences where the two cells share their draws), the mean difference "
              "and the median d." % AGREE_WITHIN]
    if section.original_pairs is not None:
        lines[-1] += " Original evaluated on the same %d cells (of %d reproduced)." % (
            section.original_cells, section.cells)
    lines += ["", "| pair | measure | reproduced | original |", "|---|---|---|---|"]
    for index, effect in enumerate(section.pairs):
        original = (pair_text(section.original_pairs[index]) if section.original_pairs
                    else "no original runs of this protocol")
        lines.append("| %s | %s | %s | %s |" % (PAIR_NAMES[effect.field],
                                                _measure_name(effect.measure),
                                                pair_text(effect), original))
    return lines + [""]


def _estimate_text(estimate, first, second):
    decision = {"first": "%s better" % first, "second": "%s better" % second,
                "none": "no difference found"}[estimate.decision]
    text = "P(%s beats %s) %.2f [%.2f, %.2f], p %.3f: **%s**" % (
        first, second, estimate.probability, estimate.low, estimate.high, estimate.p, decision)
    if not math.isnan(estimate.error_rate):
        text += " (error rate %.1f%%, measured)" % (100 * estimate.error_rate)
    return text + "; %d against %d runs" % estimate.runs


def comparison_lines(compared):
    """One :class:`plots.verdict.findings.OptimizersCompared` in words: the grid, the tuned
    cells, and a table of the matched cells."""
    comparison, key = compared.comparison, compared.protocol
    first, second = comparison.first, comparison.second
    lines = ["### %s against %s: %s, %s, %s runs" % (
        first, second, key.setup, "the blog's protocol" if not key.protocol_name
        else protocol_text(key), compared.side), ""]
    if comparison.grid is not None:
        lines.append("- Over the grid (%d matched cells): %s." % (
            comparison.grid.cells, _estimate_text(comparison.grid, first, second)))
    else:
        lines.append("- Over the grid: cannot tell (no matched cell with 2 runs a side).")
    if comparison.too_few:
        lines.append("- %d matched cells left out: fewer than 2 runs a side." % comparison.too_few)
    if comparison.tuned is not None:
        tuned_first, tuned_second, estimate = comparison.tuned
        lines.append("- Tuned (each one's cell of the lowest mean final validation loss: %s; "
                     "%s): %s." % (_cell_text(tuned_first), _cell_text(tuned_second),
                                   _estimate_text(estimate, first, second)))
    if comparison.matched:
        lines += ["", "| lr | b2 | bc | P(%s beats %s) [interval] | p | decision |" % (
            first, second), "|---|---|---|---|---|---|"]
        for cell, estimate in comparison.matched:
            lines.append("| %g | %g | %s | %.2f [%.2f, %.2f] | %.3f | %s |" % (
                cell.lr, cell.beta2, "on" if cell.bias_correction else "off",
                estimate.probability, estimate.low, estimate.high, estimate.p,
                {"first": first, "second": second, "none": "-"}[estimate.decision]))
    return lines + [""]


def _optimizers_section(findings):
    if not findings.optimizers_compared:
        return []
    lines = ["## Two optimizers compared", "",
             "On the %s (`plots/verdict/two_optimizers.py`, after Bouthillier et al. 2021): P, "
             "the probability that a run of the first beats a run of the second (lower "
             "final validation loss; over every pair of runs, ties 1/2), with its %d%% "
             "bootstrap interval; per matched cell (same lr, b2, bc), over the grid (the mean "
             "of the matched cells'), and at each one's tuned cell. A difference is called "
             "where it is significant (p, the share of %d random re-splits of the pooled runs "
             "with a P as far from 1/2, at most %g) and meaningful (P at least %g or at most "
             "%g). The error rate is that decision's, measured on the runs themselves: the "
             "share of random re-splits of the pooled runs called a difference (at a tuned "
             "cell it leaves out the tuning itself)." % (
                 "setups that have both optimizers", 100 * two_optimizers.LEVEL,
                 two_optimizers.RELABELS, two_optimizers.SIGNIFICANCE,
                 0.5 + two_optimizers.MEANINGFUL, 0.5 - two_optimizers.MEANINGFUL), ""]
    for compared in findings.optimizers_compared:
        lines += comparison_lines(compared)
    return lines


def _synthetic_section(synthetic):
    lines = ["## Synthetic problem (Reddi et al.)", "",
             "The optimum is x = -1; Adam is expected near +1, AMSGrad near -1.", "",
             "| setting | optimizer | steps | final x | average regret |", "|---|---|---|---|---|"]
    for setting, optimizers in synthetic["summary"].items():
        for optimizer, values in optimizers.items():
            lines.append("| %s | %s | %d | %.4f | %.4g |" % (
                setting, optimizer, values["steps"], values["final_x"], values["avg_regret"]))
    lines.append("")
    for path in synthetic["figures"]:
        if path.endswith(".png"):
            lines.append("Figure: [%s](%s)" % (os.path.basename(path), os.path.basename(path)))
    return lines + [""]


def markdown(findings, problems=(), synthetic=None,
             sources=("results", "reference/original_runs.json")):
    """``REPORT.md`` of :class:`plots.verdict.findings.Findings` (see :func:`write_report`)."""
    lines = _introduction(findings, tuple(sources))
    lines[2:2] = _summary(findings)
    lines += _optimizers_section(findings)
    for section in findings.sections:
        lines += _setup_section(section, findings.measures)
    if synthetic:
        lines += _synthetic_section(synthetic)
    lines += ["## Skipped files", ""]
    lines += ["- `%s`: %s" % (problem.path, problem.reason) for problem in problems] or ["None."]
    return "\n".join(lines) + "\n"


# -- report.csv ------------------------------------------------------------------------------

#: The columns of ``report.csv``.
CSV_FIELDS = ["setup", "optimizer", "lr", "beta2", "bias_correction", "epochs", "batch_size",
              "lr_schedule", "loss", "cifar_centering", "data", "at_epoch", "measure", "n",
              "diverged", "running", "mean", "std", "original_n", "original_mean",
              "original_std", "pooled_std", "difference", "d", "verdict", "reason",
              "largest_distance", "largest", "differs_above", "agrees_below", "false_alarm"]


def _judged_fields(judged):
    """The verdict's statistic and thresholds for ``report.csv`` (NaN where not judged)."""
    if judged is None:
        return dict(largest_distance=math.nan, largest="", differs_above=math.nan,
                    agrees_below=math.nan, false_alarm=math.nan)
    return dict(largest_distance=judged.statistic, largest=judged.largest,
                differs_above=judged.calibration.differ_above,
                agrees_below=judged.calibration.agree_below,
                false_alarm=judged.calibration.false_alarm)


def csv_rows(findings):
    """The rows of ``report.csv``: one dict of :data:`CSV_FIELDS` per cell and measure."""
    rows = []
    for comparison in findings.comparisons:
        key, group = comparison.group.key, comparison.group
        for measure, row in comparison.rows.items():
            rows.append(dict(row, setup=key.setup, optimizer=key.optimizer, lr=key.lr,
                             beta2=key.beta2, bias_correction=key.bias_correction,
                             epochs=key.epochs, batch_size=key.batch_size,
                             lr_schedule=key.lr_schedule, loss=key.loss,
                             cifar_centering=key.cifar_centering,
                             data="; ".join(sorted(group.data)),
                             at_epoch="" if group.at_epoch is None else group.at_epoch,
                             measure=measure,
                             diverged=group.diverged, running=group.running,
                             verdict=comparison.verdict, reason=comparison.reason,
                             **_judged_fields(comparison.judged)))
    return rows


def write_report(out_dir, runs, reference, problems=(), figures=(), synthetic=None,
                 sources=("results", "reference/original_runs.json"),
                 optimizer_pairs=DEFAULT_COMPARISONS, findings=None):
    """Write ``REPORT.md`` and ``report.csv`` to ``out_dir``.

    Parameters
    ----------
    out_dir : str
    runs : list of plots.verdict.results.Run
        The reproduced runs
    reference : dict of str -> list of plots.verdict.results.Run
        The original runs per setup (:func:`plots.verdict.results.load_reference`)
    problems : list of plots.verdict.results.Problem
        Skipped files, listed at the end of the report
    figures : list of str
        Paths of the figures written to ``out_dir`` (linked from the report)
    synthetic : dict or None
        ``{"summary": {setting: {optimizer: {"final_x", "avg_regret",
        "steps"}}}, "figures": [paths]}`` for the synthetic section
    sources : (str, str)
        The results directory and reference file, as named in the report
    optimizer_pairs : list of (str, str)
        The optimizers compared two by two in the section "Two optimizers
        compared", where a setup has both
    findings : plots.verdict.findings.Findings or None
        Computed already (of the same runs, reference, figures and pairs); found here
        when None

    Returns
    -------
    (str, str)
        The paths of ``REPORT.md`` and ``report.csv``

    Notes
    -----
    ``report.csv`` has one row per cell, protocol and measure, with the
    numbers of ``REPORT.md`` at full precision (empty where there is nothing),
    the data the runs were trained on and ``at_epoch`` (the epoch a cell of
    runs stopped early is compared after; empty: at the runs' end).
    """
    findings = findings or find(runs, reference, figures, optimizer_pairs)
    os.makedirs(out_dir, exist_ok=True)
    report_path = os.path.join(out_dir, "REPORT.md")
    csv_path = os.path.join(out_dir, "report.csv")
    # Atomic: a reader (or a second make_figures) never sees half a report.
    atomic_write_bytes(report_path,
                       markdown(findings, problems, synthetic, sources).encode("utf-8"))
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for row in csv_rows(findings):
        writer.writerow({name: "" if isinstance(value, float) and math.isnan(value) else value
                         for name, value in row.items()})
    atomic_write_bytes(csv_path, table.getvalue().encode("utf-8"))
    return report_path, csv_path
