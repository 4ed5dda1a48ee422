"""
The opening of REPORT.md: how to read it, the summary of every setup, the error rates, the claims.

.. autosummary::
    :nosignatures:

    introduction
    summary

Words and tables of numbers found by :func:`plots.verdict.findings.find`;
nothing computed here.
"""
from plots.report_words import cell_text, list_text, runs_text
from plots.verdict.calibration import ALPHA, BETA, SHIFT
from plots.verdict.cell_comparisons import protocol_text
from plots.verdict.cells import MIN_STD
from plots.verdict.distances import CURVES

__all__ = ["introduction", "summary"]


def introduction(findings, sources):
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
            100 * ALPHA, SHIFT, 100 * BETA)]
    if findings.reported_only:
        lines.append(
            "- Curves the original runs lack, %s (declared in `experiments/records/curves.py`), "
            "are shown as measured but never compared: no original side, no verdict, no pairs. "
            "Their means and stds are over the runs that recorded them (n in `report.csv`); "
            "the verdict compares %s only." % (
                ", ".join("`%s`" % name for name in findings.reported_only),
                ", ".join("`%s`" % name for name in CURVES)))
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
             "(never **agrees**; with 1 run against 4 or 5, never **differs**)." % SHIFT,
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
                         list_text([cell_text(cell) for cell in rate.permutation_cells])))
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
        list_text(section.data), runs, _epochs_text(section), cells_text, claims_text)


def summary(findings):
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
    lines += ["- %s %s (runs: %s): **%s**, %s" % (c.group.key.setup, cell_text(c.group.cell),
                                                  runs_text(c.group), c.verdict, c.reason)
              for c in findings.unsettled] or ["None."]
    return lines + [""]
