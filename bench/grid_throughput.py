#!/usr/bin/env python
"""A grid's epoch, trained one run at a time against batched into one program.

    python bench/grid_throughput.py [SETUP] [--epochs 3] [--repeats 3] [--workers 2]
        [--data-dir D] [--full] [--json OUT] [-- GRID OPTIONS...]

Each contender is the real command (``experiments/grid.py``) in a fresh results
directory:

- ``one at a time``: ``--backend c`` (Theano's C code, the default), one run
  per task, ``--workers`` processes;
- ``batched``: ``--backend jax``, the runs that share a program as one task
  (``--batch-runs`` default), ``--workers`` processes.

Each trains ``--epochs`` epochs of every run (``--stop-after``).  The epochs
are timed directly: each run's ``history.json`` has its ``epoch_time`` (a
batch's epoch for batched runs, recorded by each of its runs), so one epoch of
the whole grid is the sum over tasks (a run, or a batch) of their epoch after
the first (which compiles), divided by the workers that ran them side by side.
The rest of the command's wall time is its fixed cost (start-up, data,
compilation, the first epoch's extra).  The contenders are interleaved (A B A B
...) ``--repeats`` times, so a load that comes and goes on the machine falls on
both; the table gives each figure's median and its spread (min-max), and the
ratios of the medians.  The whole grid (``--epochs`` of its runs, 150 by
default) is projected at fixed + epochs x epoch, which leaves out what each epoch
writes after it is timed (the runs' checkpoints and histories: about 8% of a
whole logreg grid); ``--full`` also trains the batched grid to its end once
and reports the time it took, all included.  Options after
``--`` narrow the grid (``--lr 0.001 --runs 2``).
"""
import argparse
import glob
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
sys.path.insert(0, REPO)
from experiments.store.machine import cpu_info  # noqa: E402  (the standard library only)


def grid_runs(setup, grid_options):
    """How many runs the narrowed grid has, and their epochs (from the grid's own options)."""
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


def task_epochs(results):
    """Each task's epoch times (a run's; a batch's once), from the runs' histories."""
    from experiments.records.config import RunConfig, program_key

    tasks = {}
    for path in glob.glob(os.path.join(results, "**", "history.json"), recursive=True):
        with open(os.path.join(os.path.dirname(path), "config.json")) as stream:
            config = RunConfig.from_dict(json.load(stream))
        with open(path) as stream:
            times = json.load(stream)["epoch_time"]
        # A batch's runs record the batch's times: one task per program and times.
        tasks[(program_key(config), tuple(times))] = times
    return list(tasks.values())


def measure(name, setup, epochs, workers, data_dir, grid_options, scratch):
    """One timed command of a contender: its grid epoch, fixed cost and wall time (s)."""
    results = tempfile.mkdtemp(prefix=name.replace(" ", "_") + "_", dir=scratch)
    command = [sys.executable, GRID, setup, "--workers", str(workers), "--results-dir",
               results, "--stop-after", str(epochs)] + CONTENDERS[name] + grid_options
    if data_dir:
        command += ["--data-dir", data_dir]
    wall = timed(command, results + ".log")
    tasks = task_epochs(results)
    shutil.rmtree(results)
    workers = min(workers, len(tasks))
    # A task's epoch: the median of its epochs after the first (which compiles).
    epoch = sum(median(times[1:]) for times in tasks) / workers
    return {"wall": wall, "epoch": epoch, "fixed": wall - epochs * epoch}


def full_grid(setup, workers, data_dir, grid_options, scratch):
    """Seconds the batched grid takes from nothing to its end."""
    results = tempfile.mkdtemp(prefix="full_", dir=scratch)
    command = [sys.executable, GRID, setup, "--workers", str(workers), "--results-dir",
               results] + CONTENDERS["batched"] + grid_options
    if data_dir:
        command += ["--data-dir", data_dir]
    seconds = timed(command, results + ".log")
    shutil.rmtree(results)
    return seconds


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def summary(values):
    return {"median": median(values), "min": min(values), "max": max(values),
            "values": values}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    grid_options = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("setup", nargs="?", default="logreg")
    parser.add_argument("--epochs", type=int, default=3,
                        help="epochs trained per command (>= 2: the first compiles; default 3)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="commands per contender, interleaved (default 3)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data-dir")
    parser.add_argument("--full", action="store_true",
                        help="also train the batched grid to its end once, timed")
    parser.add_argument("--json", metavar="OUT")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be >= 2")
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    runs, grid_epochs = grid_runs(args.setup, grid_options)
    scratch = tempfile.mkdtemp(prefix="grid_throughput_")
    measured = {name: [] for name in CONTENDERS}
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        for repeat in range(args.repeats):
            for name in CONTENDERS:
                measured[name].append(measure(name, args.setup, args.epochs, args.workers,
                                              args.data_dir, grid_options, scratch))
                print("%s, repeat %d: %s" % (name, repeat + 1, {
                    key: round(value, 2) for key, value in measured[name][-1].items()}),
                    file=sys.stderr)
        full = full_grid(args.setup, args.workers, args.data_dir, grid_options,
                         scratch) if args.full else None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    rows = []
    for name, commands in measured.items():
        epoch = summary([command["epoch"] for command in commands])
        fixed = summary([command["fixed"] for command in commands])
        rows.append({"contender": name, "epoch_seconds": epoch, "fixed_seconds": fixed,
                     "projected_grid_seconds": fixed["median"] + grid_epochs * epoch["median"],
                     "run_epochs_per_hour": runs * 3600.0 / epoch["median"]})
    baseline = rows[0]
    cpu = cpu_info()
    print("%s grid: %d runs x %d epochs, %d workers; %s (family %s, model %s), %d cores, "
          "Python %s; %s; %d interleaved commands of %d epochs per contender"
          % (args.setup, runs, grid_epochs, args.workers, cpu["model"], cpu["family"],
             cpu["number"], os.cpu_count(), platform.python_version(), started,
             args.repeats, args.epochs))
    print()
    print("| contender | one epoch of all runs (s), median [min-max] | fixed (s), median "
          "[min-max] | run-epochs / hour | whole grid (min, projected) | epoch ratio |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        epoch, fixed = row["epoch_seconds"], row["fixed_seconds"]
        print("| %s | %.2f [%.2f-%.2f] | %.0f [%.0f-%.0f] | %.0f | %.1f | %.2f |" % (
            row["contender"], epoch["median"], epoch["min"], epoch["max"], fixed["median"],
            fixed["min"], fixed["max"], row["run_epochs_per_hour"],
            row["projected_grid_seconds"] / 60,
            baseline["epoch_seconds"]["median"] / epoch["median"]))
    if full is not None:
        print()
        print("The batched grid trained to its end: %.1f min (measured, end to end)." % (full / 60))
    if args.json:
        with open(args.json, "w") as stream:
            json.dump({"setup": args.setup, "runs": runs, "grid_epochs": grid_epochs,
                       "workers": args.workers, "grid_options": grid_options,
                       "cpu": cpu, "started": started, "rows": rows,
                       "full_grid_seconds": full}, stream, indent=1)


if __name__ == "__main__":
    main()
