"""
The sections of REPORT.md: a setup's cells and pairs, two optimizers compared, the synthetic.

.. autosummary::
    :nosignatures:

    setup_section
    pair_text
    optimizers_section
    comparison_lines
    synthetic_section

Words and tables of numbers found by :func:`plots.verdict.findings.find`;
nothing computed here.
"""
import math
import os

from plots.report_words import cell_text, list_text, runs_text
from plots.verdict import two_optimizers
from plots.verdict.cell_comparisons import protocol_text
from plots.verdict.cells import AGREE_WITHIN
from plots.verdict.distances import MEASURES  # the compared measures: the original has them

__all__ = ["setup_section", "pair_text", "PAIR_NAMES", "optimizers_section", "comparison_lines",
           "synthetic_section"]


def _measure_name(measure):
    return (measure.replace("_", " ").replace("val", "validation").replace("acc", "accuracy")
            .replace("train", "training"))


def _number(value, form="%.4f"):
    return "-" if value is None or math.isnan(value) else form % value


def _mean_std_text(mean, std):
    if math.isnan(mean):
        return "-"
    return _number(mean) + ("" if math.isnan(std) else " (%s)" % _number(std))


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
               effect.largest_difference, cell_text(effect.largest, bias_correction=False),
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


# -- a setup's section ------------------------------------------------------------------------

def _cell_rows(comparisons, measures):
    header = (["optimizer", "lr", "b2", "bc", "runs"] + [_measure_name(m) for m in measures]
              + ["verdict"])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for comparison in comparisons:
        key = comparison.group.key
        cells = [key.optimizer, "%g" % key.lr, "%g" % key.beta2,
                 "on" if key.bias_correction else "off", runs_text(comparison.group)]
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


def setup_section(section, measures):
    """Cells table and pair table of one setup and protocol."""
    lines = ["## %s" % section.protocol.setup, "",
             "Protocol: %s." % protocol_text(section.protocol),
             "Data: %s." % list_text(section.data),
             "Machines: %s." % list_text(["%s (%d runs)" % item for item in section.machines])]
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


# -- two optimizers compared ------------------------------------------------------------------

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
                     "%s): %s." % (cell_text(tuned_first), cell_text(tuned_second),
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


def optimizers_section(findings):
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


# -- the synthetic problem --------------------------------------------------------------------

def synthetic_section(synthetic):
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
