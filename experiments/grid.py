#!/usr/bin/env python
"""Run the blog's grid for one setup, on this machine or on a Dask cluster.

    python experiments/grid.py SETUP [--lr LR ...] [--beta2 B2 ...] [...]
        [--workers N | --scheduler ADDRESS]

``python experiments/grid.py --help`` lists the options; :mod:`experiments.launch.grid`
says what the grid trains, where and how.
"""
import sys

# Nothing else at the top: the local worker processes (spawned) re-import this script
# (as __mp_main__) before they set their BLAS thread count.
from errors import run_cli


def _grid(argv):
    from experiments.launch.grid import main
    return main(argv)


def command():
    """The ``amsgrad-grid`` console command: the grid with one-line errors; the exit code."""
    return run_cli(_grid, sys.argv[1:], prog="amsgrad-grid")


if __name__ == "__main__":
    sys.exit(run_cli(_grid, sys.argv[1:], prog="grid.py"))
