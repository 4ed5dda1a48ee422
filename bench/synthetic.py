#!/usr/bin/env python
"""Steps per second of the synthetic experiment: the original's per-step loop vs ours.

    python bench/synthetic.py [--steps 9e6] [--loop-steps 20000] [--steps-per-call 16 ...]
        [--backends c jax]

Both are measured in the same run, on the same four runs (Adam and AMSGrad on
the online and stochastic problems, the original's hyperparameters):

- per-step loop: as the original ``train_synthetic.py``, one compiled function
  per run (the ``amsgrad.py`` builders, projection onto [-1, 1]) called once
  per step from Python, reading x after each call; timed over ``--loop-steps``
  steps of each run and extrapolated to ``--steps``;
- unrolled: :func:`experiments.synthetic.runner.simulate`, all four runs,
  ``--steps`` steps, end to end (graph building, loading the compiled module,
  gradients, float64 bookkeeping); a ``--steps-per-call`` not compiled before
  is compiled first, untimed; on each of ``--backends`` (JAX compiles a new
  program per call of ``simulate``: its time includes that compilation).
"""
import argparse
import sys
import time

import numpy as np

import compat  # noqa: F401  (Theano's flags, before theano is imported)
import theano

import backends

from experiments.synthetic.problems import online_problem, stochastic_problem
from experiments.synthetic.runner import (
    STEPS_PER_CALL, RunSpec, build_step, compile_step_function, simulate)


def per_step_loop(run, steps, lr=0.001):
    """Steps per second of the original's loop, for one run."""
    step = build_step([run])
    train = compile_step_function(step)
    gradients = run.problem.gradient_stream().take(steps).astype(step.params[0].dtype)
    rate = np.asarray(lr, dtype=theano.config.floatX)
    x = step.params[0]
    train(gradients[0], rate)  # first call outside the timing
    x_values = []
    start = time.perf_counter()
    for g in gradients[1:]:
        train(g, rate)
        x_values.append(x.get_value())
    return (steps - 1) / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="bench/synthetic.py", description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=lambda s: int(float(s)), default=9000000,
                        help="steps per run for the unrolled version (default: 9e6)")
    parser.add_argument("--loop-steps", type=lambda s: int(float(s)), default=20000,
                        help="steps per run timed for the per-step loop (default: 20000)")
    parser.add_argument("--steps-per-call", type=int, nargs="+", default=[STEPS_PER_CALL],
                        help="steps per compiled call to measure (default: %d)" % STEPS_PER_CALL)
    parser.add_argument("--backends", choices=backends.BACKENDS, nargs="+", default=["c"],
                        help="backends of the unrolled version (default: c)")
    args = parser.parse_args(argv)

    runs = [RunSpec(problem, optimizer)
            for problem in (online_problem(), stochastic_problem())
            for optimizer in ("adam", "amsgrad")]
    print("synthetic experiment, 4 runs (online/stochastic x adam/amsgrad), %d steps each"
          % args.steps)
    print("%-28s %16s %22s" % ("version", "run-steps/s", "4 runs x %.3g steps" % args.steps))

    loop_rates = [per_step_loop(run, args.loop_steps) for run in runs]
    loop_seconds = sum(args.steps / rate for rate in loop_rates)
    print("%-28s %16.0f %20.0f s  (extrapolated from %d steps per run)"
          % ("per-step loop (original)", 4 * args.steps / loop_seconds, loop_seconds,
             args.loop_steps))

    for backend in args.backends:
        for steps_per_call in args.steps_per_call:
            kwargs = dict(steps_per_call=steps_per_call, progress=False, backend=backend)
            simulate(runs, steps_per_call, **kwargs)  # C: compiles the module (cached)
            start = time.perf_counter()
            simulate(runs, args.steps, **kwargs)
            seconds = time.perf_counter() - start
            print("%-28s %16.0f %20.1f s  (%.0fx)"
                  % ("unrolled %s, %d per call" % (backend, steps_per_call),
                     4 * args.steps / seconds, seconds, loop_seconds / seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
