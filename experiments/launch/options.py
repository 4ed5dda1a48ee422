"""
The options of the training command lines, defined once for ``run.py`` and ``grid.py``.

.. autosummary::
    :nosignatures:

    add_run_options
    configs_from_args
    expand

``run.py`` takes one value of ``--lr``, ``--beta2`` and ``--run``, the grid a
list of each (``many=True``); every other option is the same on both, and
:func:`configs_from_args` turns either command line into the same
:class:`~experiments.records.config.RunConfig` list, run index outermost.
``--protocol`` (:mod:`experiments.records.protocols`) gives the defaults of the
options the user leaves out: their ``argparse`` default is None, and
:func:`configs_from_args` fills in the protocol's value.  Values are
checked by :class:`RunConfig` (one message per bad value, naming the
option); :func:`errors.run_cli` turns that into one line and exit code 2.

Examples
--------
>>> import argparse
>>> from experiments.launch.options import add_run_options, configs_from_args
>>> parser = argparse.ArgumentParser()
>>> add_run_options(parser, many=False)
>>> args = parser.parse_args(["logreg", "--lr", "0.001", "--beta2", "0.99"])
>>> [config.cell_name for config in configs_from_args(args)]  # doctest: +NORMALIZE_WHITESPACE
['adam_lr=0.001_b2=0.99_bc=on', 'adam_lr=0.001_b2=0.99_bc=off',
 'amsgrad_lr=0.001_b2=0.99_bc=on', 'amsgrad_lr=0.001_b2=0.99_bc=off']
"""
import backends
from errors import UserError
from experiments.records import optimizers as optimizer_records
from experiments.records import protocols, schedule, setups
from experiments.records.config import LOSSES, SEEDINGS, RunConfig

__all__ = ["add_run_options", "configs_from_args", "runs_per_batch", "expand", "BOTH",
           "BLOG_LRS", "BLOG_BETA2S", "BLOG_RUNS"]

BOTH = "both"
#: The blog's grid: learning rates, beta2 values and number of runs per cell.
BLOG_LRS = protocols.get("blog").lrs
BLOG_BETA2S = protocols.get("blog").beta2s
BLOG_RUNS = protocols.get("blog").runs
_ON_OFF = {"on": (True,), "off": (False,), BOTH: (True, False)}


def _by_protocol(describe):
    """``default: blog: X; mcgill: Y``: what each protocol sets, for ``--help``."""
    return "default: " + "; ".join("%s: %s" % (name, describe(protocol))
                                   for name, protocol in protocols.PROTOCOLS.items())


def _grid_text(values):
    return " ".join(map(repr, values))


def _on_off_text(corrections):
    return next(name for name, values in _ON_OFF.items() if values == tuple(corrections))


def _add_cell_options(parser, many):
    setup_names = setups.names()
    parser.add_argument("setup", metavar="SETUP", choices=setup_names,
                        help="network and data set: %s" % ", ".join(setup_names))
    # Defaults that depend on --protocol are None here and resolved by configs_from_args,
    # so that an option given explicitly wins over the protocol.
    if many:
        parser.add_argument("--lr", type=float, nargs="+", metavar="LR",
                            help="initial learning rates (%s)"
                                 % _by_protocol(lambda protocol: _grid_text(protocol.lrs)))
        parser.add_argument("--beta2", type=float, nargs="+", metavar="B2",
                            help="beta2 values (%s)"
                                 % _by_protocol(lambda protocol: _grid_text(protocol.beta2s)))
    else:
        parser.add_argument("--lr", type=float, required=True,
                            help="initial learning rate (> 0)")
        parser.add_argument("--beta2", type=float, required=True, help="beta2, in (0, 1)")
    names = optimizer_records.names()
    parser.add_argument("--optimizer", choices=names + (BOTH,), default=[BOTH], nargs="+",
                        metavar="NAME",
                        help="registered optimizers: %s (plug-ins add more), or both: the "
                             "protocol's (%s)" % (", ".join(names), _by_protocol(
                                 lambda protocol: " ".join(protocol.optimizers))))
    parser.add_argument("--bias-correction", choices=tuple(_ON_OFF),
                        help=_by_protocol(lambda protocol: _on_off_text(
                            protocol.bias_corrections)))
    runs = parser.add_mutually_exclusive_group()
    default_runs = BLOG_RUNS if many else 1
    runs.add_argument("--runs", type=int, default=default_runs, metavar="N",
                      help="runs 0..N-1 of each cell (default: %d)" % default_runs)
    runs.add_argument("--run", type=int, nargs="+" if many else None, metavar="K",
                      help="only these runs" if many else "only run K")


def _add_protocol_options(parser):
    parser.add_argument("--protocol", metavar="{%s}" % ",".join(protocols.PROTOCOLS),
                        default=protocols.DEFAULT,
                        help="whose defaults the options marked 'default: blog: ...' take "
                             "(an option given explicitly wins): %s (default: %s)"
                             % ("; ".join("%s: %s" % (name, protocol.help)
                                          for name, protocol in protocols.PROTOCOLS.items()),
                                protocols.DEFAULT))
    parser.add_argument("--epochs", type=int,
                        help="length of each run and of its schedule (%s)"
                             % _by_protocol(protocols.Protocol.epochs_text))
    parser.add_argument("--batch-size", type=int, default=128, help="default: 128")
    parser.add_argument("--stop-after", type=int, metavar="K",
                        help="train only the first K epochs now; run again without it to "
                             "continue")
    parser.add_argument("--lr-schedule", choices=tuple(schedule.SCHEDULES),
                        help="; ".join("%s: %s" % (name, item.help)
                                       for name, item in schedule.SCHEDULES.items())
                             + " (%s)" % _by_protocol(lambda protocol: protocol.lr_schedule))
    parser.add_argument("--loss", choices=LOSSES,
                        help="categorical: mean cross-entropy (the blog's); binary: sum over "
                             "classes of binary cross-entropies (the reproduction study's) (%s)"
                             % _by_protocol(lambda protocol: protocol.loss))
    parser.add_argument("--seed", type=int, default=0,
                        help="base seed; each run's seeds derive from it (default: 0)")
    parser.add_argument("--seeding", choices=SEEDINGS, default=SEEDINGS[0],
                        help="independent (default): every run of every cell its own draw of "
                             "initial weights and data order, as in the original; common: run K "
                             "of every cell the same draw (common random numbers, for paired "
                             "comparisons); part of a run's identity and directory")
    parser.add_argument("--cifar-centering", choices=("on", "off"), default="on",
                        help="CIFAR-10 setups: subtract the training images' per-pixel mean "
                             "(on, default: the protocol of the original's logs) or not (off: "
                             "the original's final commit); part of a run's identity and "
                             "directory")


def _add_execution_options(parser):
    parser.add_argument("--data-dir", metavar="D",
                        help="data directory (default: $AMSGRAD_DATA or the download cache)")
    parser.add_argument("--results-dir", metavar="R", default="results",
                        help="where runs are written (default: ./results)")
    parser.add_argument("--backend", choices=backends.BACKENDS, default="c",
                        help="what runs the compiled Theano functions: Theano's C code "
                             "(default) or one JAX program (CPU or GPU; needs jax); not part "
                             "of a run's identity, so a run can be resumed with the other")
    parser.add_argument("--batch-runs", type=int, metavar="K",
                        help="with --backend jax: train up to K runs that differ only in lr, "
                             "run index or seed as one program (1: one run at a time; "
                             "default: all such runs, as many as fit in memory)")
    parser.add_argument("--restart-corrupt", action="store_true",
                        help="a run whose checkpoint is damaged (cut short, bytes changed) is "
                             "moved aside and trained again from epoch 0 instead of failing")


def add_run_options(parser, many):
    """Add the options that say which runs to train, and how, to an ``argparse`` parser.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    many : bool
        ``--lr``, ``--beta2`` and ``--run`` take lists (the grid, with the
        blog's values as defaults) instead of one value (``run.py``)
    """
    _add_cell_options(parser, many)
    _add_protocol_options(parser)
    _add_execution_options(parser)


def _unique(values):
    return list(dict.fromkeys(values))


def expand(setup, lrs, beta2s, optimizers, bias_corrections, runs, **protocol):
    """The RunConfigs of every combination, run index outermost, then lr, beta2, optimizer,
    bias correction (repeated values are dropped).

    ``protocol`` holds the other :class:`RunConfig` fields (epochs, batch_size,
    lr_schedule, loss, seed, seeding, cifar_centering).  Every cell's run 0 comes before
    any run 1, so the first comparable results arrive early.  An optimizer
    that does not use beta2 (:meth:`~experiments.records.optimizers.Optimizer.uses`)
    gets the first value only, one that does not use bias correction only
    ``bias_correction=False``: the grid has no copies of one run.
    """
    configs = []
    for run in _unique(runs):
        for lr in _unique(lrs):
            for index, beta2 in enumerate(_unique(beta2s)):
                for name in _unique(optimizers):
                    optimizer = optimizer_records.get(name)
                    if index and not optimizer.uses("beta2"):
                        continue
                    corrections = _unique(bias_corrections) \
                        if optimizer.uses("bias_correction") else [False]
                    configs += [RunConfig(setup=setup, optimizer=name, lr=lr, beta2=beta2,
                                          bias_correction=correction, run=run, **protocol)
                                for correction in corrections]
    return configs


def _optimizers(args, protocol):
    """``--optimizer``'s names, ``both`` (alone) standing for the protocol's."""
    names = args.optimizer if isinstance(args.optimizer, (list, tuple)) else [args.optimizer]
    if BOTH not in names:
        return names
    if len(names) > 1:
        raise UserError("--optimizer both stands for the protocol's optimizers (%s); give it "
                        "alone or name the optimizers" % " ".join(protocol.optimizers))
    return protocol.optimizers


def _run_indices(args):
    if args.run is not None:  # RunConfig checks each index
        return args.run if isinstance(args.run, list) else [args.run]
    if args.runs < 1:
        raise UserError("--runs must be >= 1, got %d" % args.runs)
    return range(args.runs)


def _given(value, default):
    return default if value is None else value


def configs_from_args(args):
    """The runs a parsed command line asks for (see :func:`expand` for the order).

    Options not given (None) take the value of ``--protocol``
    (:mod:`experiments.records.protocols`); the epochs depend on the setup's data set.

    Raises
    ------
    errors.UserError
        For an invalid value (via :class:`RunConfig`), an unknown protocol, a
        protocol without epochs for the setup's data set, a bad run count or
        ``--stop-after``.
    """
    if args.stop_after is not None and args.stop_after < 1:
        raise UserError("--stop-after must be >= 1, got %d" % args.stop_after)
    protocol = protocols.get(args.protocol)
    listed = lambda value: value if isinstance(value, (list, tuple)) else [value]  # noqa: E731
    epochs = args.epochs
    if epochs is None:
        epochs = protocol.epochs_for(setups.get(args.setup).dataset)
    corrections = protocol.bias_corrections if args.bias_correction is None \
        else _ON_OFF[args.bias_correction]
    return expand(args.setup, listed(_given(args.lr, protocol.lrs)),
                  listed(_given(args.beta2, protocol.beta2s)),
                  _optimizers(args, protocol),
                  corrections, _run_indices(args),
                  epochs=epochs, batch_size=args.batch_size,
                  lr_schedule=_given(args.lr_schedule, protocol.lr_schedule),
                  loss=_given(args.loss, protocol.loss), seed=args.seed,
                  seeding=args.seeding, cifar_centering=args.cifar_centering == "on")


def runs_per_batch(args):
    """How many runs a parsed command line trains as one program: an int, or None for all
    that can share one (the default with ``--backend jax``; 1 with ``--backend c``).

    Raises
    ------
    errors.UserError
        For a count below 1, or above 1 without ``--backend jax``.
    """
    if args.batch_runs is None:
        return None if args.backend == "jax" else 1
    if args.batch_runs < 1:
        raise UserError("--batch-runs must be >= 1, got %d" % args.batch_runs)
    if args.batch_runs > 1 and args.backend != "jax":
        raise UserError("--batch-runs %d needs --backend jax (runs are batched into one JAX "
                        "program)" % args.batch_runs)
    return args.batch_runs
