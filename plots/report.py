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
``report.csv``: everything here and in the modules that write REPORT.md's
parts (:mod:`plots.report_summary`: how to read it, the summary, the error
rates and the claims; :mod:`plots.report_sections`: a section per setup, two
optimizers compared, the synthetic problem; :mod:`plots.report_words`: the
phrases both use) puts numbers found there into words and tables, and
computes nothing.

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
from plots.report_sections import optimizers_section, setup_section, synthetic_section
from plots.report_summary import introduction, summary
from plots.verdict.findings import DEFAULT_COMPARISONS, find

__all__ = ["write_report", "markdown", "csv_rows", "CSV_FIELDS"]


# -- REPORT.md -------------------------------------------------------------------------------

def markdown(findings, problems=(), synthetic=None,
             sources=("results", "reference/original_runs.json")):
    """``REPORT.md`` of :class:`plots.verdict.findings.Findings` (see :func:`write_report`)."""
    lines = introduction(findings, tuple(sources))
    lines[2:2] = summary(findings)
    lines += optimizers_section(findings)
    for section in findings.sections:
        lines += setup_section(section, findings.measures)
    if synthetic:
        lines += synthetic_section(synthetic)
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
