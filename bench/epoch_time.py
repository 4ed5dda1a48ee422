#!/usr/bin/env python
"""Time per epoch of each setup, so users can plan their runs.

    python bench/epoch_time.py [--setups logreg ffnn ...] [--batches 5] [--json OUT]
        [--backend c|jax]

For each setup this compiles the same training and validation functions as a
run (``experiments.training.alone.compile_functions``, AMSGrad), times a few
minibatches of random data of the real shapes (the time per minibatch does not
depend on the values), and extrapolates to one epoch of the protocol: 391
training minibatches of 128 (50,000 examples) and 10 validation minibatches of
1024 (10,000 examples), for MNIST and CIFAR-10 alike.  Prints a table (the
median of the timed minibatches) with the machine's load before and after.
``--backend`` picks what runs the functions (:mod:`backends`); the compile
time of the JAX backend includes XLA's compilation at the first calls.
"""
import argparse
import os
import platform
import sys
import time


import compat  # noqa: F401  (Theano flags before theano)
import lasagne
import numpy as np
import theano

import backends
import data
import models
from step_time import write_rows
from experiments.records import setups
from experiments.records.config import RunConfig
from experiments.training.alone import VAL_BATCH_SIZE, compile_functions

#: Input shape (C, H, W) and number of classes of each data set.
NUM_CLASSES = 10
TRAIN_EXAMPLES, VAL_EXAMPLES, BATCH_SIZE = 50000, 10000, 128


def median_seconds(function, inputs, targets, repeats):
    function(inputs, targets)  # warm-up: first call allocates
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(inputs, targets)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def time_setup(setup, repeats, rng, backend="c"):
    input_shape, num_classes = setups.get(setup).input_shape, NUM_CLASSES
    lasagne.random.set_rng(rng)
    network = models.build(setup, input_shape, num_classes)
    config = RunConfig(setup=setup, optimizer="amsgrad", lr=0.001, beta2=0.99,
                       bias_correction=True)
    start = time.perf_counter()
    train_fn, val_fn, _ = compile_functions(network, config, num_classes, backend=backend)
    compile_seconds = time.perf_counter() - start

    def batch(size):
        return (rng.rand(size, *input_shape).astype(theano.config.floatX),
                rng.randint(0, num_classes, size).astype("int32"))

    train_batch = median_seconds(train_fn, *batch(BATCH_SIZE), repeats=repeats)
    val_batch = median_seconds(val_fn, *batch(VAL_BATCH_SIZE), repeats=max(1, repeats // 2))
    for function in (train_fn, val_fn):  # the JAX backend's first calls compile
        compile_seconds += sum(getattr(function.fn, "compile_seconds", ()))
    train_batches = data.num_batches(TRAIN_EXAMPLES, BATCH_SIZE)
    val_batches = data.num_batches(VAL_EXAMPLES, VAL_BATCH_SIZE)
    epoch = train_batches * train_batch + val_batches * val_batch
    return {"setup": setup, "backend": backend,
            "params": lasagne.layers.count_params(network, trainable=True),
            "compile_s": compile_seconds, "train_batch_s": train_batch,
            "val_batch_s": val_batch, "epoch_s": epoch, "run_150_h": 150 * epoch / 3600}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--setups", nargs="+", choices=setups.names(), default=list(setups.names()))
    parser.add_argument("--batches", type=int, default=5,
                        help="training minibatches timed per setup (after one warm-up)")
    parser.add_argument("--json", metavar="OUT", help="also write the rows as JSON")
    parser.add_argument("--backend", choices=backends.BACKENDS, default="c",
                        help="what runs the compiled functions (default: c)")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    rng = np.random.RandomState(0)
    backends.check_backend(args.backend)
    rows = [time_setup(setup, args.batches, rng, args.backend) for setup in args.setups]
    load_after = os.getloadavg()

    print("machine: %s, %d CPUs, backend %s, Theano device=%s floatX=%s blas=%s" % (
        platform.processor() or platform.machine(), os.cpu_count(), args.backend,
        theano.config.device, theano.config.floatX, theano.config.blas__ldflags or "(none)"))
    print("load average (1/5/15 min) before: %.2f %.2f %.2f, after: %.2f %.2f %.2f"
          % (load_before + load_after))
    header = ("setup", "params", "compile (s)", "train batch (s)", "val batch (s)", "epoch (s)",
              "150 epochs (h)")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| %s | %d | %.1f | %.4f | %.4f | %.1f | %.2f |" % (
            row["setup"], row["params"], row["compile_s"], row["train_batch_s"],
            row["val_batch_s"],
            row["epoch_s"], row["run_150_h"]))
    write_rows(args.json, load_before, load_after, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
