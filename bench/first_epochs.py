#!/usr/bin/env python
"""The first epochs of one cell, trained as a run, against the original runs' band.

    python bench/first_epochs.py SETUP --lr LR --beta2 B2 --optimizer adam|amsgrad
        --bias-correction on|off [--epochs 1] [--runs 1] [--data-dir D]
        [--results-dir R] [--cifar-centering on|off] [--backend c|jax]

For checks too slow for the test suite (a Vgg epoch takes about 10 minutes on
two cores): trains runs 0..N-1 of the cell for ``--epochs`` epochs of the
150-epoch schedule with :func:`experiments.training.alone.train_run` (resumable, in
``--results-dir``, a temporary directory by default), then prints, per epoch
and curve, the original five runs' range, ours, and whether ours lies in that
range.  Results measured with it are recorded in ``reference/README.md``.
"""
import argparse
import json
import os
import sys
import tempfile


from errors import UserError, run_cli
from experiments.records import optimizers, setups
from experiments.records.config import RunConfig

REFERENCE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "reference",
                         "original_runs.json")
CURVES = ("loss", "acc", "val_loss", "val_acc")


def original_band(config, epochs):
    """{curve: [(low, high) per epoch]} of the original runs of ``config``'s cell.

    None for an uncentred CIFAR-10 run: the original centred its inputs.
    """
    if not config.cifar_centering:
        return None, 0
    with open(REFERENCE) as handle:
        runs = [run for run in json.load(handle).get(config.setup, [])
                if (run["optimizer"], run["lr"], run["beta2"], run["bias_correction"])
                == (config.optimizer, config.lr, config.beta2, config.bias_correction)]
    return {curve: [(min(run["curves"][curve][e] for run in runs),
                     max(run["curves"][curve][e] for run in runs)) for e in range(epochs)]
            for curve in CURVES} if runs else None, len(runs)


def table(config, histories, epochs):
    """Markdown lines: epoch, curve, the original range, ours per run, inside or not."""
    band, count = original_band(config, epochs)
    lines = ["| epoch | curve | original %d runs | %s | inside |" % (
        count, " | ".join("run %d" % run for run in sorted(histories))),
        "|---|---|---|%s---|" % ("---|" * len(histories))]
    for epoch in range(epochs):
        for curve in CURVES:
            ours = [histories[run][curve][epoch] for run in sorted(histories)]
            low, high = band[curve][epoch] if band else (float("nan"), float("nan"))
            inside = sum(low <= value <= high for value in ours)
            lines.append("| %d | %s | %.3f-%.3f | %s | %d of %d |" % (
                epoch + 1, curve, low, high, " | ".join("%.3f" % v for v in ours), inside,
                len(ours)))
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(prog="first_epochs.py", description=__doc__.split("\n")[0])
    parser.add_argument("setup", choices=setups.names())
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--beta2", type=float, required=True)
    parser.add_argument("--optimizer", choices=optimizers.names(), required=True)
    parser.add_argument("--bias-correction", choices=("on", "off"), required=True)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--cifar-centering", choices=("on", "off"), default="on")
    parser.add_argument("--data-dir")
    parser.add_argument("--results-dir")
    parser.add_argument("--backend", default="c")
    args = parser.parse_args(argv)
    if args.runs < 1 or not 1 <= args.epochs <= 150:
        raise UserError("--runs must be >= 1 and --epochs in 1..150")
    from experiments.training.alone import train_run

    results_dir = args.results_dir or tempfile.mkdtemp(prefix="first_epochs-")
    histories = {}
    for run in range(args.runs):
        config = RunConfig(setup=args.setup, optimizer=args.optimizer, lr=args.lr,
                           beta2=args.beta2, bias_correction=args.bias_correction == "on",
                           run=run, cifar_centering=args.cifar_centering == "on")
        outcome = train_run(config, results_dir, data_dir=args.data_dir,
                            stop_after=args.epochs, backend=args.backend)
        with open(os.path.join(outcome.run_dir, "history.json")) as handle:
            histories[run] = json.load(handle)
    print("%s %s, %s, first %d epochs (results in %s)"
          % (args.setup, config.cell_name, "centred" if config.cifar_centering
             else "not centred", args.epochs, results_dir))
    print("\n".join(table(config, histories, args.epochs)))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, sys.argv[1:], prog="first_epochs.py"))
