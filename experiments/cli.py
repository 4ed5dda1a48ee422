"""
Command line of the training runs (``python experiments/run.py SETUP ...``).

.. autosummary::
    :nosignatures:

    main
    configs_from_args

::

    python experiments/run.py SETUP --lr LR --beta2 B2 [--optimizer adam|amsgrad|both]
        [--bias-correction on|off|both] [--runs N | --run K] [--epochs 150] [--batch-size 128]
        [--stop-after K] [--lr-schedule linear|inv-sqrt|constant] [--loss categorical|binary]
        [--seed S] [--cifar-centering on|off] [--data-dir D] [--results-dir R]
        [--backend c|jax] [--restart-corrupt]

The defaults are the blog's protocol; ``python experiments/run.py vgg --lr
0.001 --beta2 0.99`` trains run 0 of that cell for both optimizers, with and
without bias correction.  ``--backend jax`` runs the compiled functions as one
JAX program (:mod:`backends`) instead of Theano's C code.  ``experiments/run.py``
calls :func:`main` through ``errors.run_cli``, which turns an
:class:`errors.UserError` into one line on stderr and exit code 2.

Examples
--------
>>> from experiments.cli import main
>>> main(["logreg", "--lr", "0.001", "--beta2", "0.99", "--stop-after", "1"])  # doctest: +SKIP
"""
import argparse
import os

import backends
from errors import UserError
from experiments.config import LOSSES, LR_SCHEDULES, OPTIMIZERS, SETUPS, RunConfig

__all__ = ["main", "configs_from_args", "build_parser", "check_writable",
           "CIFAR_CENTERING_HELP"]

BOTH = "both"
CIFAR_CENTERING_HELP = ("CIFAR-10 setups: subtract the training images' per-pixel mean (on, "
                        "default: the protocol of the original's logs) or not (off: the "
                        "original's final commit); part of a run's identity and directory")


def build_parser(prog="run.py"):
    """The ``argparse`` parser of the training command line."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Train one cell of the Adam vs AMSGrad grid (resumable).")
    parser.add_argument("setup", metavar="SETUP", choices=SETUPS,
                        help="network and data set: %s" % ", ".join(SETUPS))
    parser.add_argument("--lr", type=float, required=True, help="initial learning rate (> 0)")
    parser.add_argument("--beta2", type=float, required=True, help="beta2, in (0, 1)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS + (BOTH,), default=BOTH,
                        help="default: both")
    parser.add_argument("--bias-correction", choices=("on", "off", BOTH), default=BOTH,
                        help="default: both")
    runs = parser.add_mutually_exclusive_group()
    runs.add_argument("--runs", type=int, default=1, metavar="N",
                      help="train runs 0..N-1 of each variant (default: 1)")
    runs.add_argument("--run", type=int, metavar="K", help="train only run K")
    parser.add_argument("--epochs", type=int, default=150,
                        help="length of the run and of the schedule (default: 150)")
    parser.add_argument("--batch-size", type=int, default=128, help="default: 128")
    parser.add_argument("--stop-after", type=int, metavar="K",
                        help="train only the first K epochs now; run again without it to "
                             "continue")
    parser.add_argument("--lr-schedule", choices=LR_SCHEDULES, default="linear",
                        help="linear: decay to 0 over --epochs (the blog's); inv-sqrt: "
                             "lr/sqrt(t), t in updates (the paper's); constant")
    parser.add_argument("--loss", choices=LOSSES, default="categorical",
                        help="categorical: mean cross-entropy (the blog's); binary: sum over "
                             "classes of binary cross-entropies (the reproduction study's)")
    parser.add_argument("--seed", type=int, default=0,
                        help="base seed; each run's seeds derive from (seed, run) (default: 0)")
    parser.add_argument("--cifar-centering", choices=("on", "off"), default="on",
                        help=CIFAR_CENTERING_HELP)
    parser.add_argument("--data-dir", metavar="D",
                        help="data directory (default: $AMSGRAD_DATA or the download cache)")
    parser.add_argument("--results-dir", metavar="R", default="results",
                        help="where runs are written (default: ./results)")
    parser.add_argument("--backend", choices=backends.BACKENDS, default="c",
                        help="what runs the compiled Theano functions: Theano's C code "
                             "(default) or one JAX program (CPU or GPU; needs jax); not part "
                             "of a run's identity, so a run can be resumed with the other")
    parser.add_argument("--restart-corrupt", action="store_true",
                        help="a run whose checkpoint is damaged (cut short, bytes changed) is "
                             "moved aside and trained again from epoch 0 instead of failing")
    return parser


def configs_from_args(args):
    """The runs a parsed command line asks for, run index outermost.

    Every variant's run 0 comes before any run 1, so the first comparable
    results arrive early.

    Raises
    ------
    errors.UserError
        For an invalid value (via :class:`RunConfig`) or a bad run count.
    """
    if args.run is not None:
        if args.run < 0:
            raise UserError("--run must be >= 0, got %d" % args.run)
        run_indices = [args.run]
    else:
        if args.runs < 1:
            raise UserError("--runs must be >= 1, got %d" % args.runs)
        run_indices = range(args.runs)
    optimizers = OPTIMIZERS if args.optimizer == BOTH else (args.optimizer,)
    corrections = {"on": (True,), "off": (False,), BOTH: (True, False)}[args.bias_correction]
    return [RunConfig(setup=args.setup, optimizer=optimizer, lr=args.lr, beta2=args.beta2,
                      bias_correction=correction, run=run, epochs=args.epochs,
                      batch_size=args.batch_size, lr_schedule=args.lr_schedule,
                      seed=args.seed, loss=args.loss,
                      cifar_centering=args.cifar_centering == "on")
            for run in run_indices for optimizer in optimizers for correction in corrections]


def check_writable(results_dir, option="--results-dir"):
    """Create ``results_dir`` if needed; raise errors.UserError when it cannot be written.

    ``option`` is the command-line option the messages name.
    """
    try:
        os.makedirs(results_dir, exist_ok=True)
    except OSError as exc:
        raise UserError("cannot create %s %s (%s); choose a writable directory"
                        % (option, results_dir, exc.strerror or exc))
    if not os.access(results_dir, os.W_OK | os.X_OK):
        raise UserError("%s %s is not writable; choose a writable directory"
                        % (option, results_dir))


def main(argv=None, prog="run.py"):
    """Train the runs a command line asks for; see the module docstring.

    Returns
    -------
    int
        0 (diverged runs are results, not errors)
    """
    args = build_parser(prog).parse_args(argv)
    if args.stop_after is not None and args.stop_after < 1:
        raise UserError("--stop-after must be >= 1, got %d" % args.stop_after)
    configs = configs_from_args(args)
    backends.check_backend(args.backend)
    check_writable(args.results_dir)
    # Imported here so that argument errors come back without Theano's start-up time.
    from experiments.training import check_run_dir, train_run
    # Every run directory is checked before any is touched: a conflict changes nothing.
    for config in configs:
        check_run_dir(config, args.results_dir)
    outcomes = [train_run(config, args.results_dir, data_dir=args.data_dir,
                          stop_after=args.stop_after, backend=args.backend,
                          restart_corrupt=args.restart_corrupt)
                for config in configs]
    for outcome in outcomes:
        print("%s: %s, %d epochs done" % (outcome.run_dir, outcome.status,
                                           outcome.epochs_done or 0))
    return 0
