#!/usr/bin/env python
"""Record the first epochs of ``ffnn`` on MNIST, the reference its regression test compares with.

    python tests/record_ffnn.py [--data-dir D] [--out tests/recorded/ffnn_mnist.json]

The original experiments published no ``ffnn`` curves, so the test compares a run of
this project with runs recorded by this project: runs 1..5 of two cells (different seeds
from the tested run 0), ``stop_after`` epochs of the 150-epoch schedule.  Together with
the test's independent check against the original ``logreg`` curves, this catches a
change in the network, the data, the loss or the loop.  Rerecord only after a change
that is meant to change the curves, and say why in the commit.
"""
import argparse
import json
import os
import sys
import tempfile


import compat  # noqa: F401
from experiments.records.config import RunConfig
from experiments.store.rundir import provenance
from experiments.training.alone import train_run

#: The recorded cell: the paper's MNIST setting (AMSGrad, no bias correction) and Adam.
CELLS = [("amsgrad", 0.001, 0.99, False), ("adam", 0.001, 0.99, False)]
RUNS = (1, 2, 3, 4, 5)
EPOCHS = 3
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "recorded", "ffnn_mnist.json")


def record(data_dir, results_dir):
    runs = []
    for optimizer, lr, beta2, bias_correction in CELLS:
        for run in RUNS:
            config = RunConfig(setup="ffnn", optimizer=optimizer, lr=lr, beta2=beta2,
                               bias_correction=bias_correction, run=run)
            outcome = train_run(config, results_dir, data_dir=data_dir, stop_after=EPOCHS)
            with open(os.path.join(outcome.run_dir, "history.json")) as f:
                history = json.load(f)
            runs.append({"optimizer": optimizer, "lr": lr, "beta2": beta2,
                         "bias_correction": bias_correction, "run": run, "epochs": EPOCHS,
                         "curves": {k: history[k] for k in ("loss", "acc", "val_loss",
                                                              "val_acc", "lr")}})
    return {"what": "ffnn on MNIST, recorded by tests/record_ffnn.py with this project "
                    "(not original data): the first epochs of the 150-epoch schedule",
            **provenance(), "runs": runs}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None, help="where MNIST is (default: the loader's)")
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as results_dir:
        recorded = record(args.data_dir, results_dir)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(recorded, f, indent=1)
        f.write("\n")
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
