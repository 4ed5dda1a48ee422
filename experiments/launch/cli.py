"""
Command line of the training runs (``python experiments/run.py SETUP ...``).

.. autosummary::
    :nosignatures:

    main
    build_parser

::

    python experiments/run.py SETUP --lr LR --beta2 B2 [--optimizer NAME ...|both]
        [--bias-correction on|off|both] [--runs N | --run K] [--protocol blog|mcgill]
        [--epochs 150] [--batch-size 128] [--stop-after K]
        [--lr-schedule linear|inv-sqrt|constant] [--loss categorical|binary]
        [--seed S] [--cifar-centering on|off] [--data-dir D] [--results-dir R]
        [--backend c|jax] [--batch-runs K] [--restart-corrupt]

The defaults are the blog's protocol; ``python experiments/run.py vgg --lr
0.001 --beta2 0.99`` trains run 0 of that cell for both optimizers, with and
without bias correction.  ``--protocol mcgill`` takes the defaults of the
reproduction study instead (:mod:`experiments.records.protocols`); options given
explicitly win.  ``--backend jax`` runs the compiled functions as one
JAX program (:mod:`backends`) instead of Theano's C code; there, the runs a
command line asks for that differ only in learning rate, run index or seed
(``--runs 5``, say) are trained together as one program
(:mod:`experiments.training.batched`; ``--batch-runs 1``: one at a time).  ``experiments/run.py``
calls :func:`main` through ``errors.run_cli``, which turns an
:class:`errors.UserError` into one line on stderr and exit code 2.

Examples
--------
>>> from experiments.launch.cli import main
>>> main(["logreg", "--lr", "0.001", "--beta2", "0.99", "--stop-after", "1"])  # doctest: +SKIP
"""
import argparse

import backends
from experiments.launch.options import add_run_options, configs_from_args, runs_per_batch
from experiments.store.rundir import check_run_dir, check_writable

__all__ = ["main", "build_parser"]


def build_parser(prog="run.py"):
    """The ``argparse`` parser of the training command line."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Train one cell of the Adam vs AMSGrad grid (resumable).")
    add_run_options(parser, many=False)
    return parser


def main(argv=None, prog="run.py"):
    """Train the runs a command line asks for; see the module docstring.

    Returns
    -------
    int
        0 (diverged runs are results, not errors)
    """
    args = build_parser(prog).parse_args(argv)
    configs = configs_from_args(args)
    backends.check_backend(args.backend)
    check_writable(args.results_dir)
    # Every run directory is checked before any is touched: a conflict changes nothing.
    for config in configs:
        check_run_dir(config, args.results_dir)
    batch_runs = runs_per_batch(args)
    # Imported here so that argument errors come back without Theano's start-up time.
    from experiments.records.config import group_configs
    from experiments.training.alone import train_run
    from experiments.training.batched import train_batch
    outcomes = []
    for group in group_configs(configs, batch_runs):
        if len(group) > 1:
            outcomes += train_batch(group, args.results_dir, data_dir=args.data_dir,
                                    stop_after=args.stop_after,
                                    restart_corrupt=args.restart_corrupt)
        else:
            outcomes.append(train_run(group[0], args.results_dir, data_dir=args.data_dir,
                                      stop_after=args.stop_after, backend=args.backend,
                                      restart_corrupt=args.restart_corrupt))
    for outcome in outcomes:
        print("%s: %s, %d epochs done" % (outcome.run_dir, outcome.status,
                                           outcome.epochs_done or 0))
    return 0
