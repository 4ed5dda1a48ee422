#!/usr/bin/env python
"""Draw the blog's figures and write the reproduction report from a results directory.

    python plots/make_figures.py [--results-dir results] [--out figures] [--reference FILE]
    python plots/make_figures.py --results-dir results --pack DIR
    python plots/make_figures.py --results-dir results --compare adamnc amsgrad

For every setup with runs in the results directory: training and validation loss and
accuracy, one line per run, with the original runs' band where the original has the cell
(``SETUP_METRIC.png`` and ``.pdf``; ``SETUP_PROTOCOL_METRIC`` for runs of another protocol than
the blog's, e.g. ``logreg_epochs=5_loss.png``); for setups with runs of ``--protocol mcgill``, the
reproduction study's Figure 2 (``SETUP_mcgill.png`` and ``.pdf``, :mod:`plots.mcgill`); the
synthetic experiment's figure when
``RESULTS/synthetic/summary.json`` exists; ``REPORT.md`` and ``report.csv`` comparing the
runs with the original ones.  Files that cannot be read are listed (on stderr and in the
report) and skipped.  Every file is written atomically; ``--out`` must name a directory (it is
created if needed).

``--compare A B`` compares two optimizers (the project's or a plug-in's) on every setup and
protocol that has runs of both, in the report's section "Two optimizers compared" (in place of
Adam and ADAMNC against AMSGrad) and on stdout: the probability that a run of A beats one of B,
per matched cell, over the grid and at each one's tuned cell, with its interval and the
decision's error rate, measured (:mod:`plots.verdict.two_optimizers`).

``--pack DIR`` draws nothing: it writes the runs of the results directory as one
``SETUP[_PROTOCOL].runs.json`` per setup and protocol (every run's ``config.json`` and
``history.json``, no checkpoints) and copies ``synthetic/``; ``DIR`` then serves as
``--results-dir`` (the committed ``reproduction/histories`` is one).
"""
import argparse
import os
import sys


from tqdm import tqdm

from errors import UserError, run_cli
from experiments.records import optimizers, plugins
from experiments.store.atomic import atomic_write_bytes
from experiments.store.rundir import SYNTHETIC_SUMMARY, check_writable
from plots.figures import draw_setup
from plots.mcgill import draw_mcgill
from plots.report import write_report
from plots.report_sections import comparison_lines
from plots.verdict.findings import DEFAULT_COMPARISONS, find
from plots.verdict.results import (DEFAULT_REFERENCE, SYNTHETIC_DIR, Problem, figure_stem,
                                   find_runs, load_reference, pack_runs, read_synthetic_summary)

PROG = "make_figures.py"


def draw_synthetic(results_dir, out_dir, problems):
    """The synthetic section of the report, drawing its figure; None without synthetic results.

    Problems (an unreadable summary, a missing ``plots/synthetic.py``) are appended to
    ``problems``.
    """
    synthetic_dir = os.path.join(results_dir, SYNTHETIC_DIR)
    summary_path = os.path.join(synthetic_dir, SYNTHETIC_SUMMARY)
    if not os.path.isfile(summary_path):
        return None
    try:
        summary = read_synthetic_summary(summary_path)
    except ValueError as exc:
        problems.append(Problem(summary_path, "%s; skipped" % exc))
        return None
    try:
        from plots.synthetic import plot_synthetic
    except ModuleNotFoundError as exc:
        if exc.name != "plots.synthetic":
            raise
        problems.append(Problem(synthetic_dir, "plots/synthetic.py is missing; figure not drawn"))
        return {"summary": summary, "figures": []}
    try:
        figures = list(plot_synthetic(synthetic_dir, out_dir))
    except (UserError, OSError, ValueError) as exc:
        problems.append(Problem(synthetic_dir, "figure not drawn: %s" % exc))
        figures = []
    return {"summary": summary, "figures": figures}


def _shown(reference):
    # The default reference by its place in the repository: reports do not depend on the checkout.
    if os.path.abspath(reference) == DEFAULT_REFERENCE:
        return os.path.relpath(DEFAULT_REFERENCE, os.path.dirname(os.path.dirname(
            DEFAULT_REFERENCE)))
    return reference


def pack(results_dir, pack_dir):
    """``--pack``: the runs of ``results_dir`` packed into ``pack_dir``; the exit code.

    The synthetic experiment's files (``synthetic/``) are copied as they are.
    """
    runs, problems = find_runs(results_dir)
    for problem in problems:
        print("%s: warning: %s" % (PROG, problem), file=sys.stderr)
    unpackable = [run.source for run in runs if not os.path.isdir(run.source)]
    if unpackable:
        raise UserError("--pack reads run directories; %s holds packed runs already (%s)"
                        % (results_dir, unpackable[0]))
    check_writable(pack_dir, option="--pack")
    written = pack_runs(runs, pack_dir)
    synthetic_dir = os.path.join(results_dir, SYNTHETIC_DIR)
    if os.path.isdir(synthetic_dir):
        target = os.path.join(pack_dir, SYNTHETIC_DIR)
        os.makedirs(target, exist_ok=True)
        for name in sorted(os.listdir(synthetic_dir)):
            if name.endswith(".json"):
                with open(os.path.join(synthetic_dir, name), "rb") as stream:
                    atomic_write_bytes(os.path.join(target, name), stream.read())
                written.append(os.path.join(target, name))
    print("%s: %d runs packed: %s" % (PROG, len(runs), ", ".join(written)))
    return 0


def check_out_dir(out_dir):
    """Raise errors.UserError when ``out_dir`` (``--out``) is an existing file."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UserError("--out %s is a file, not a directory; name a directory (it is created "
                        "if needed)" % out_dir)


def main(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--results-dir", default="results",
                        help="results of experiments/run.py (default: results)")
    parser.add_argument("--out", default="figures",
                        help="where figures, REPORT.md and report.csv go (default: figures)")
    parser.add_argument("--reference", default=DEFAULT_REFERENCE,
                        help="the original runs' curves (default: reference/original_runs.json)")
    parser.add_argument("--pack", metavar="DIR",
                        help="instead of drawing: write the runs of --results-dir (run "
                             "directories) as one SETUP[_PROTOCOL].runs.json per setup and "
                             "protocol into DIR, with a copy of its synthetic/ results; DIR "
                             "then works as --results-dir")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"),
                        help="compare optimizers A and B (names of the project's or of a "
                             "plug-in's) on every setup with runs of both: in the report "
                             "and on stdout")
    args = parser.parse_args(argv)
    # A broken plug-in stops here, not as a skipped file per run it would have read.
    plugins.load()
    if args.compare:
        if args.compare[0] == args.compare[1]:
            raise UserError("--compare %s %s: name two different optimizers" % tuple(
                args.compare))
        for name in args.compare:
            optimizers.get(name)  # errors.UserError listing the registered names
    if args.pack:
        return pack(args.results_dir, args.pack)
    check_out_dir(args.out)
    runs, problems = find_runs(args.results_dir)
    reference, reference_problems = load_reference(args.reference)
    problems += reference_problems
    synthetic = draw_synthetic(args.results_dir, args.out, problems)
    for problem in problems:
        print("%s: warning: %s" % (PROG, problem), file=sys.stderr)
    if not runs and synthetic is None:
        raise UserError("no runs in %s%s: expected SETUP/OPTIMIZER_lr=LR_b2=B2_bc=on|off/run=K/"
                        "{config.json,history.json} or synthetic/summary.json; run "
                        "experiments/run.py first, or pass --results-dir"
                        % (args.results_dir, " (%d files skipped, listed above)" % len(problems)
                                             if problems else ""))
    check_writable(args.out, option="--out")
    figures = []
    by_stem = {}  # one set of figures per setup and protocol
    for run in runs:
        by_stem.setdefault(figure_stem(run.config), []).append(run)
    for stem in tqdm(sorted(by_stem), desc="figures", unit="setup", disable=None):
        setup = by_stem[stem][0].config.setup
        figures += draw_setup(setup, by_stem[stem], reference.get(setup, []), args.out, stem)
    # The reproduction study's Figure 2, for the setups with runs of --protocol mcgill.
    mcgill_figures, mcgill_choices = draw_mcgill(runs, args.out)
    figures += mcgill_figures
    for setup, chosen in mcgill_choices.items():
        print("%s: %s_mcgill: %s%s" % (
            PROG, setup, "" if any(chosen.values()) else "no figure: ", "; ".join(
                "%s beta2=%g lr=%g" % (optimizer, choice["beta2"], choice["lr"]) if choice
                else "%s: every cell has a diverged run" % optimizer
                for optimizer, choice in chosen.items())))
    optimizer_pairs = [tuple(args.compare)] if args.compare else DEFAULT_COMPARISONS
    figures += synthetic["figures"] if synthetic else []
    findings = find(runs, reference, figures, optimizer_pairs)
    report, table = write_report(args.out, runs, reference, problems, figures, synthetic,
                                 sources=(args.results_dir, _shown(args.reference)),
                                 optimizer_pairs=optimizer_pairs, findings=findings)
    if args.compare:
        compared = findings.optimizers_compared
        if not compared:
            print("%s: --compare: no setup has finished runs of both %s and %s"
                  % ((PROG,) + tuple(args.compare)))
        for each in compared:
            print("\n".join(comparison_lines(each)))
    print("%s: %d runs, %d figure files, %s, %s" % (PROG, len(runs), len(figures), report,
                                                   table))
    return 0


def command():
    """The ``amsgrad-figures`` console command: :func:`main` with one-line errors."""
    return run_cli(main, sys.argv[1:], prog="amsgrad-figures")


if __name__ == "__main__":
    sys.exit(run_cli(main, sys.argv[1:], prog=PROG))
