#!/usr/bin/env python
"""A grid's runs per hour: trained one at a time against batched into one program.

    python bench/grid_throughput.py [SETUP] [--epochs 3] [--workers 2] [--data-dir D]
        [--full] [--json OUT] [-- GRID OPTIONS...]

Each contender is the real command (``experiments/grid.py``), timed as a whole
in a fresh results directory, so start-up, data loading, compilation,
checkpoints and histories are all counted:

- ``one at a time``: ``--backend c`` (Theano's C code, the default), one run
  per task, ``--workers`` processes;
- ``batched``: ``--backend jax``, the runs that share a program as one task
  (``--batch-runs`` default), ``--workers`` processes.

Each is run twice on the same directory: ``--stop-after 1`` (fixed costs F
plus one epoch e), then ``--stop-after EPOCHS`` (it resumes: F plus EPOCHS - 1
epochs).  So e = (second - first) / (EPOCHS - 2) and F = first - e, and the
whole grid (``--epochs`` of its runs, 150 by default) is projected at
F + 150 e.  ``--full`` also trains the batched grid to its end and reports the
time it took.  Options after ``--`` narrow the grid (``--lr 0.001 --runs 2``).

Prints a Markdown table: per contender the measured seconds, run-epochs per
hour, the projected (or measured) time of the whole grid and the ratio to
``one at a time`` (above 1: faster).
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GRID = os.path.join(REPO, "experiments", "grid.py")
CONTENDERS = {"one at a time": ["--backend", "c", "--batch-runs", "1"],
              "batched": ["--backend", "jax"]}


def grid_runs(setup, grid_options):
    """How many runs the narrowed grid has, and their epochs (from the grid's own options)."""
    sys.path.insert(0, REPO)
    from experiments.launch.grid import build_parser
    from experiments.launch.options import configs_from_args

    args = build_parser().parse_args([setup] + grid_options)
    configs = configs_from_args(args)
    return len(configs), configs[0].epochs


def timed(command, log):
    start = time.perf_counter()
    with open(log, "a") as stream:
        subprocess.run(command, check=True, stdout=stream, stderr=subprocess.STDOUT)
    return time.perf_counter() - start


def measure(name, setup, epochs, workers, data_dir, grid_options, full, scratch):
    """Seconds of the contender's two (or three) commands."""
    results = os.path.join(scratch, name.replace(" ", "_"))
    command = [sys.executable, GRID, setup, "--workers", str(workers), "--results-dir",
               results] + CONTENDERS[name] + grid_options
    if data_dir:
        command += ["--data-dir", data_dir]
    log = results + ".log"
    first = timed(command + ["--stop-after", "1"], log)
    second = timed(command + ["--stop-after", str(epochs)], log)
    measured = {"first": first, "second": second}
    if full and name == "batched":
        measured["rest"] = timed(command, log)
    shutil.rmtree(results)
    return measured


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    grid_options = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("setup", nargs="?", default="logreg")
    parser.add_argument("--epochs", type=int, default=3,
                        help="epochs measured per contender (>= 3; default 3)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data-dir")
    parser.add_argument("--full", action="store_true",
                        help="also train the batched grid to its end, timed")
    parser.add_argument("--json", metavar="OUT")
    args = parser.parse_args(argv)
    if args.epochs < 3:
        parser.error("--epochs must be >= 3")
    runs, grid_epochs = grid_runs(args.setup, grid_options)
    scratch = tempfile.mkdtemp(prefix="grid_throughput_")
    rows = []
    for name in CONTENDERS:
        measured = measure(name, args.setup, args.epochs, args.workers, args.data_dir,
                           grid_options, args.full, scratch)
        epoch = (measured["second"] - measured["first"]) / (args.epochs - 2)
        fixed = max(0.0, measured["first"] - epoch)
        projected = fixed + grid_epochs * epoch
        whole = measured["first"] + measured["second"] + measured.get("rest", 0.0)
        rows.append({"contender": name, "seconds": measured, "epoch_seconds": epoch,
                     "fixed_seconds": fixed, "projected_grid_seconds": projected,
                     "measured_grid_seconds": whole if "rest" in measured else None,
                     "run_epochs_per_hour": runs * 3600.0 / epoch})
    shutil.rmtree(scratch, ignore_errors=True)
    baseline = rows[0]["projected_grid_seconds"]
    print("%s grid: %d runs x %d epochs, %d workers, %s, %d cores, Python %s"
          % (args.setup, runs, grid_epochs, args.workers, platform.processor() or "cpu",
             os.cpu_count(), platform.python_version()))
    print()
    print("| contender | 1 epoch + fixed (s) | fixed (s) | one epoch of all runs (s) "
          "| run-epochs / hour | whole grid (min) | ratio |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        grid_seconds = row["measured_grid_seconds"] or row["projected_grid_seconds"]
        print("| %s | %.0f | %.0f | %.2f | %.0f | %.1f%s | %.1f |" % (
            row["contender"], row["seconds"]["first"], row["fixed_seconds"],
            row["epoch_seconds"], row["run_epochs_per_hour"], grid_seconds / 60,
            " (measured)" if row["measured_grid_seconds"] else " (projected)",
            baseline / row["projected_grid_seconds"]))
    if args.json:
        with open(args.json, "w") as stream:
            json.dump({"setup": args.setup, "runs": runs, "grid_epochs": grid_epochs,
                       "workers": args.workers, "grid_options": grid_options, "rows": rows},
                      stream, indent=1)


if __name__ == "__main__":
    main()
