#!/usr/bin/env python
"""Time per training step and per epoch of each network on each backend, next to PyTorch.

    python bench/step_time.py [--setups cifarnet vgg ...] [--steps 10] [--warmup 2]
        [--backends c jax] [--no-torch] [--json OUT]

Measured in the same run on the same machine, the contenders' steps in turns
(so that other load on the cores slows all alike): for each setup, the experiments' own training function
(:func:`experiments.training.alone.compile_functions`: the network, AMSGrad, the
learning rate schedule) compiled for each backend (:mod:`backends`), and the
same network in PyTorch (:mod:`bench.torch_models`,
``torch.optim.Adam(amsgrad=True)``) when PyTorch is installed (optional,
benchmark-only: ``pip install torch``).  Random data of the real shapes, batch
128; every step returns the loss to Python, as the training loop does.  An
epoch is 391 steps (50,000 examples), training only.  Prints a Markdown table
with the median step time, the epoch extrapolated from it, the compile time and
the ratio to PyTorch's step time (below 1: faster than PyTorch), and the
machine's load before and after (other processes on the cores skew it).
"""
import argparse
import json
import os
import platform
import sys
import time


import compat  # noqa: F401  (Theano flags before theano)
import lasagne
import numpy as np

import backends
import data
import models
from experiments.records import setups
from experiments.records.config import RunConfig
from experiments.training.alone import compile_functions

BATCH_SIZE, NUM_CLASSES = 128, 10
EPOCH_STEPS = data.num_batches(50000, BATCH_SIZE)


def _interleaved_medians(steps_by_name, steps, warmup):
    """Median seconds per call of each step function, timed in turns.

    One call of each in turn, ``steps`` rounds: load from other processes on the
    cores then slows every contender alike instead of whichever ran at the time.
    """
    for step in steps_by_name.values():
        for _ in range(warmup):
            step()
    times = {name: [] for name in steps_by_name}
    for _ in range(steps):
        for name, step in steps_by_name.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(values)) for name, values in times.items()}


def _batch(shape, rng):
    return (rng.rand(BATCH_SIZE, *shape).astype("float32"),
            rng.randint(0, NUM_CLASSES, BATCH_SIZE).astype("int32"))


def backend_step(setup, backend):
    """``(step, compile seconds)``: one training step of ``setup`` on ``backend``."""
    shape = setups.get(setup).input_shape
    lasagne.random.set_rng(np.random.RandomState(0))
    network = models.build(setup, shape, NUM_CLASSES)
    config = RunConfig(setup=setup, optimizer="amsgrad", lr=0.001, beta2=0.99,
                       bias_correction=True)
    start = time.perf_counter()
    train_fn, _, _ = compile_functions(network, config, NUM_CLASSES, backend=backend)
    inputs, targets = _batch(shape, np.random.RandomState(1))
    train_fn(inputs, targets)  # the JAX backend compiles here
    return (lambda: train_fn(inputs, targets)), time.perf_counter() - start


def torch_step(setup):
    """``(step, first step's seconds)``: the same network's step in PyTorch (CPU)."""
    import torch

    import torch_models

    torch.manual_seed(0)
    shape = setups.get(setup).input_shape
    network = torch_models.build(setup, shape, NUM_CLASSES)
    optimizer = torch_models.make_optimizer(network)
    inputs, targets = (torch.from_numpy(a) for a in _batch(shape, np.random.RandomState(1)))
    targets = targets.long()
    network.train()

    def step():
        return torch_models.train_step(network, optimizer, inputs, targets)

    start = time.perf_counter()
    step()
    return step, time.perf_counter() - start


def import_torch():
    """The ``torch`` module, or None (saying so) when PyTorch is not installed."""
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed (pip install torch); timing without it")
        return None
    return torch


def write_rows(path, load_before, load_after, rows):
    """Write a table's rows and the load averages around them as JSON (nothing if no path)."""
    if path:
        with open(path, "w") as f:
            # NumPy scalars (a parameter count) as the Python numbers they hold
            json.dump({"load_before": load_before, "load_after": load_after, "rows": rows},
                      f, indent=1, default=lambda value: value.item())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--setups", nargs="+", choices=setups.names(), default=list(setups.names()))
    parser.add_argument("--backends", nargs="+", choices=backends.BACKENDS,
                        default=list(backends.BACKENDS))
    parser.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before them")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    parser.add_argument("--json", metavar="OUT", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    for backend in args.backends:
        backends.check_backend(backend)
    torch = None if args.no_torch else import_torch()
    with_torch = torch is not None

    load_before = os.getloadavg()
    rows = []
    for setup in args.setups:
        contenders = {name: backend_step(setup, name) for name in args.backends}
        if with_torch:
            contenders["pytorch"] = torch_step(setup)
        medians = _interleaved_medians({name: step for name, (step, _) in contenders.items()},
                                       args.steps, args.warmup)
        for name, (_, compile_seconds) in contenders.items():
            step = medians[name]
            rows.append({"setup": setup, "backend": name, "step_s": step,
                         "epoch_s": step * EPOCH_STEPS, "compile_s": compile_seconds,
                         "ratio_to_torch": step / medians["pytorch"] if with_torch else None})
            print("%s %s: %.1f ms/step" % (setup, name, 1e3 * step), flush=True)
    load_after = os.getloadavg()

    versions = "numpy %s" % np.__version__
    if with_torch:
        versions += ", torch %s (%d threads)" % (torch.__version__, torch.get_num_threads())
    if "jax" in args.backends:
        import jax
        versions += ", jax %s" % jax.__version__
    print("machine: %s, %d CPUs; %s; batch %d, %d timed steps after %d warm-up"
          % (platform.processor() or platform.machine(), os.cpu_count(), versions, BATCH_SIZE,
             args.steps, args.warmup))
    print("load average (1/5/15 min) before: %.2f %.2f %.2f, after: %.2f %.2f %.2f"
          % (load_before + load_after))
    print("| setup | backend | step (ms) | epoch (s) | compile / first step (s) | x PyTorch |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        ratio = "%.2f" % row["ratio_to_torch"] if row["ratio_to_torch"] is not None else "-"
        print("| %s | %s | %.1f | %.1f | %.1f | %s |" % (
            row["setup"], row["backend"], 1e3 * row["step_s"], row["epoch_s"],
            row["compile_s"], ratio))
    write_rows(args.json, load_before, load_after, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
