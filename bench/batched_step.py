#!/usr/bin/env python
"""Training steps per second of K runs batched into one program, against K single-run calls.

    python bench/batched_step.py [--cases logreg=1,8,32 cifarnet=1,4] [--steps 10]
        [--warmup 2] [--json OUT]

For each setup and K, K runs are built as the experiments build them (their own
seeds and learning rates; :func:`experiments.training.alone.compile_functions` on the
JAX backend) and each gets its own random minibatch of 128 examples of the
real shapes.  Two contenders, timed in turns in the same run (see
:func:`step_time._interleaved_medians`):

- ``sequential``: the K runs' own training functions called one after another
  (K calls, as ``grid.py`` trains runs today, one step each);
- ``batched``: one call of :class:`backends.batched.RunBatch`'s training
  function, the K runs under ``jax.vmap`` in one program.

Prints a Markdown table: the median time of one step of all K runs, run-steps
per second (K / that time), the ratio to ``sequential`` (above 1: faster), and
the compile time (Theano's and XLA's, the first call included).
"""
import argparse
import os
import platform
import sys
import time


import compat  # noqa: F401  (Theano flags before theano)
import jax
import lasagne
import numpy as np

import models
from backends.batched import RunBatch
from step_time import (BATCH_SIZE, NUM_CLASSES,
                            _interleaved_medians, write_rows)
from experiments.records import setups
from experiments.records.config import RunConfig, run_seeds
from experiments.training.alone import compile_functions

LEARNING_RATES = (0.01, 0.001, 0.0001)
DEFAULT_CASES = ("logreg=1,8,32", "cifarnet=1,4")


def build_runs(setup, count):
    """``count`` runs of ``setup``: ``(train_fn, val_fn)`` each, and the seconds it took."""
    start, runs = time.perf_counter(), []
    for index in range(count):
        config = RunConfig(setup=setup, optimizer="amsgrad", beta2=0.99, bias_correction=True,
                           lr=LEARNING_RATES[index % len(LEARNING_RATES)], run=index)
        lasagne.random.set_rng(np.random.RandomState(run_seeds(config)[0]))
        network = models.build(setup, setups.get(setup).input_shape, NUM_CLASSES)
        runs.append(compile_functions(network, config, NUM_CLASSES, backend="jax")[:2])
    return runs, time.perf_counter() - start


def contenders(setup, count):
    """name -> (step of all ``count`` runs, compile seconds, first call included)."""
    runs, build_seconds = build_runs(setup, count)
    rng = np.random.RandomState(1)
    inputs = rng.rand(count, BATCH_SIZE, *setups.get(setup).input_shape).astype("float32")
    targets = rng.randint(0, NUM_CLASSES, (count, BATCH_SIZE)).astype("int32")

    def sequential():
        return [train(x, y) for (train, _), x, y in zip(runs, inputs, targets)]

    train = RunBatch(runs).functions[0]
    steps = {"sequential": sequential, "batched": lambda: train(inputs, targets)}
    compile_seconds = {}
    for name, step in steps.items():
        start = time.perf_counter()
        step()  # XLA compiles here
        compile_seconds[name] = time.perf_counter() - start + build_seconds
    return {name: (step, compile_seconds[name]) for name, step in steps.items()}


def parse_cases(cases):
    """``["logreg=1,8,32", ...]`` -> ``[("logreg", 1), ("logreg", 8), ...]``."""
    parsed = []
    for case in cases:
        setup, _, counts = case.partition("=")
        if setup not in setups.names() or not counts:
            raise SystemExit("error: --cases takes SETUP=K,K,...; got %r" % case)
        parsed.extend((setup, int(count)) for count in counts.split(","))
    return parsed


def print_table(rows):
    print("| setup | K | contender | step of K runs (ms) | run-steps/s | x sequential "
          "| compile + first call (s) |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        rate = row["runs"] / row["step_s"]
        print("| %s | %d | %s | %.2f | %s | %.2f | %.1f |" % (
            row["setup"], row["runs"], row["contender"], 1e3 * row["step_s"],
            "%.0f" % rate if rate >= 10 else "%.2f" % rate, row["speedup"], row["compile_s"]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES),
                        help="SETUP=K,K,... (default: %s)" % " ".join(DEFAULT_CASES))
    parser.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before them")
    parser.add_argument("--json", metavar="OUT", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    load_before, rows = os.getloadavg(), []
    for setup, count in parse_cases(args.cases):
        timed = contenders(setup, count)
        medians = _interleaved_medians({name: step for name, (step, _) in timed.items()},
                                       args.steps, args.warmup)
        for name, (_, compile_seconds) in timed.items():
            rows.append({"setup": setup, "runs": count, "contender": name,
                         "step_s": medians[name], "compile_s": compile_seconds,
                         "speedup": medians["sequential"] / medians[name]})
        print("%s K=%d: %s" % (setup, count, ", ".join(
            "%s %.1f ms" % (name, 1e3 * value) for name, value in medians.items())), flush=True)
    load_after = os.getloadavg()
    print("machine: %s, %d CPUs; numpy %s, jax %s (%s); batch %d, %d timed steps after %d "
          "warm-up" % (platform.processor() or platform.machine(), os.cpu_count(),
                       np.__version__, jax.__version__, jax.default_backend(), BATCH_SIZE,
                       args.steps, args.warmup))
    print("load average (1/5/15 min) before: %.2f %.2f %.2f, after: %.2f %.2f %.2f"
          % (load_before + load_after))
    print_table(rows)
    write_rows(args.json, load_before, load_after, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
