"""
``python experiments/run.py synthetic``: the synthetic convex experiments of Reddi et al.

Adam, AMSGrad and ADAMNC (the builders of ``amsgrad.py``, through Theano;
``--optimizer`` names others, any registered one) on the
paper's online and stochastic linear problems over [-1, 1], and on the
Theorem 1 variant with a constant C (see :mod:`experiments.synthetic.problems`).
Each optimizer runs at a learning rate its theory supports unless ``--lr``
sets one for all (:data:`DEFAULT_LRS`): 0.001, the original's, for Adam and
AMSGrad; 1 for ADAMNC and Reddi et al.'s AMSGrad, whose step size is
:math:`\alpha / \sqrt{t}` (at 0.001 ADAMNC's iterate stays at 0.00 on both
problems, which reads as a failure it is not; at 1 it ends near -1).
It prints a table of the learning rate, the final iterate and the average regret
of every run, and writes ``RESULTS/synthetic/``:

- ``summary.json``: ``{setting: {optimizer: {"final_x", "avg_regret", "steps", "lr"}}}``,
  exact final values;
- ``trajectories.json``: ``{setting: {optimizer: {"step", "x", "loss", "avg_regret"}}}``,
  about 1000 points per run (values to 7 significant digits);
- ``config.json``: every option, the problems, versions and Theano flags;
- ``synthetic.png`` and ``synthetic.pdf``: the figure, drawn by the command line
  (``experiments/run.py``) with :func:`plots.synthetic.plot_synthetic`.

.. autosummary::
    :nosignatures:

    main
    build_parser
    make_runs
    format_table
    write_results

Examples
--------
From the repository root::

    python experiments/run.py synthetic                      # online and stochastic, 9e6 steps
    python experiments/run.py synthetic --setting online-c --c 3 --steps 1e6
    python experiments/run.py synthetic --backend jax        # the steps as one JAX program
"""
import argparse
import json
import os

import backends
from errors import UserError
from experiments.records import optimizers, schedule
from experiments.records.config import float32_problem
from experiments.store.atomic import atomic_write_bytes, write_json
from experiments.store.rundir import (CONFIG_FILE, SYNTHETIC_DIR, SYNTHETIC_SUMMARY,
                                      SYNTHETIC_TRAJECTORIES, provenance)
from experiments.synthetic.problems import (SETTINGS, online_c_problem, online_problem,
                                            stochastic_problem)
from experiments.synthetic.checks import check_gradients
from experiments.synthetic.runner import RunSpec, simulate

__all__ = ["main", "build_parser", "make_runs", "format_table", "write_results"]

#: --setting values beyond the single settings.
SETTING_GROUPS = {"both": ("online", "stochastic"), "all": SETTINGS}
#: The original code's decay rates (online and stochastic settings).
ORIGINAL_BETA1, ORIGINAL_BETA2 = 0.9, 0.99
#: The optimizers run when --optimizer is not given.
DEFAULT_OPTIMIZERS = ("adam", "amsgrad", "adamnc")
#: The learning rate of the optimizers whose step size is alpha / sqrt(t) (Reddi et al.'s
#: Theorems 4 and 5 bound the regret for any alpha; one of the order of the feasible set's
#: diameter, 2, moves the iterate across it); others run at DEFAULT_LR, the original's,
#: unless --lr is given.
DEFAULT_LRS = {"adamnc": 1.0, "amsgrad_reddi": 1.0}
DEFAULT_LR = 0.001
#: Digits kept in trajectories.json (float32 iterates carry about 7).
TRAJECTORY_DIGITS = 7


def _step_count(text):
    # Accept 9000000, 9_000_000 and 9e6; positivity is checked later (UserError).
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError("not a number: %r" % text)
    if not value.is_integer():
        raise argparse.ArgumentTypeError("not a whole number of steps: %r" % text)
    return int(value)


def build_parser():
    """The argument parser of ``run.py synthetic``."""
    parser = argparse.ArgumentParser(
        prog="run.py synthetic",
        description="Adam, AMSGrad and ADAMNC on the synthetic convex problems of Reddi et al. (2018): "
                    "online (1010x when t mod 101 = 1, else -10x), stochastic (1010x with "
                    "probability 0.01, else -10x) and online-c (Cx when t mod 3 = 1, else -x), "
                    "on [-1, 1] from x = 0.")
    parser.add_argument("--setting", default="both",
                        choices=list(SETTINGS) + list(SETTING_GROUPS),
                        help="problem(s) to run; both = online + stochastic (default), "
                             "all = the three")
    parser.add_argument("--optimizer", nargs="+", metavar="NAME",
                        default=list(DEFAULT_OPTIMIZERS),
                        help="registered optimizers to run: %s (default: %s)"
                             % (", ".join(optimizers.names()), " ".join(DEFAULT_OPTIMIZERS)))
    parser.add_argument("--steps", type=_step_count, default=9000000,
                        help="steps per run, e.g. 9e6 (default: 9000000, as the original)")
    parser.add_argument("--lr", type=float, default=None,
                        help="learning rate of every optimizer (default: each its own: %s, "
                             "others %g)" % (", ".join("%s %g" % item for item in DEFAULT_LRS.items()),
                                             DEFAULT_LR))
    parser.add_argument("--lr-schedule", choices=schedule.per_update_names(), default="constant",
                        help="constant (default) or inv-sqrt: lr / sqrt(t)")
    parser.add_argument("--beta1", type=float, default=None,
                        help="default: 0.9; 0 for online-c (Theorem 1)")
    parser.add_argument("--beta2", type=float, default=None,
                        help="default: 0.99; 1 / (1 + C^2) for online-c (Theorem 1)")
    parser.add_argument("--bias-correction", choices=("on", "off"), default="off",
                        help="Adam's bias correction, for every optimizer that has one "
                             "(default: off)")
    parser.add_argument("--seed", type=int, default=4711,
                        help="seed of the stochastic draws (default: 4711, the original's)")
    parser.add_argument("--probability", type=float, default=0.01,
                        help="stochastic: probability of the 1010x loss (default: 0.01)")
    parser.add_argument("--c", type=float, default=3.0,
                        help="online-c: the constant C > 2 (default: 3)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="type of the iterates and optimizer state (default: float32, "
                             "as the original)")
    parser.add_argument("--results-dir", default="results",
                        help="results root; writes RESULTS_DIR/synthetic/ (default: results)")
    parser.add_argument("--backend", choices=backends.BACKENDS, default="c",
                        help="what runs the compiled steps: Theano's C code (default, the "
                             "faster for these tiny steps) or one JAX program")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def make_runs(args):
    """The :class:`RunSpec` of every (setting, optimizer) the parsed ``args`` ask for.

    Raises
    ------
    errors.UserError
        For C <= 2, a C whose square or default beta2 is not a normal number in
        ``args.dtype``, a probability outside (0, 1) or a bad seed.
    """
    names = list(dict.fromkeys(args.optimizer))
    for name in names:
        optimizers.get(name)  # errors.UserError naming the registered ones
    runs = []
    for setting in SETTING_GROUPS.get(args.setting, (args.setting,)):
        if setting == "online":
            problem, betas = online_problem(), (ORIGINAL_BETA1, ORIGINAL_BETA2)
        elif setting == "stochastic":
            problem = stochastic_problem(args.probability, args.seed)
            betas = (ORIGINAL_BETA1, ORIGINAL_BETA2)
        else:
            problem = online_c_problem(args.c)
            check_gradients(problem, args.dtype)  # before C^2 is taken
            betas = (0.0, 1.0 / (1.0 + problem.large ** 2))  # Reddi et al., Theorem 1
            trouble = args.beta2 is None and float32_problem(betas[1], args.dtype)
            if trouble:
                raise UserError("C (--c) %r makes online-c's default --beta2, 1 / (1 + C^2) = "
                                "%.3g, which %s; pass --beta2 or a smaller C"
                                % (args.c, betas[1], trouble))
        beta1 = betas[0] if args.beta1 is None else args.beta1
        beta2 = betas[1] if args.beta2 is None else args.beta2
        runs += [RunSpec(problem, optimizer, beta1, beta2, run_lr(args, optimizer))
                 for optimizer in names]
    return runs


def run_lr(args, optimizer):
    """The learning rate ``optimizer`` runs at: ``--lr``, else its own default."""
    return args.lr if args.lr is not None else DEFAULT_LRS.get(optimizer, DEFAULT_LR)


def format_table(trajectories):
    """A text table: setting, optimizer, learning rate, final x, average regret, steps."""
    width = max([9] + [len(t.run.optimizer) for t in trajectories])
    lines = ["%-11s %-*s %8s %10s %14s %10s" % ("setting", width, "optimizer", "lr", "final x",
                                                 "avg regret", "steps")]
    for trajectory in trajectories:
        run = trajectory.run
        lines.append("%-11s %-*s %8g %+10.5f %14.6f %10d" % (
            run.problem.setting, width, run.optimizer, run.lr, trajectory.final_x,
            trajectory.final_avg_regret, trajectory.steps))
    return "\n".join(lines)


def _rounded(values):
    return [float("%.*g" % (TRAJECTORY_DIGITS, value)) for value in values]


def write_results(out_dir, args, trajectories):
    """Write summary.json, trajectories.json and config.json into ``out_dir``.

    Returns the paths written.
    """
    os.makedirs(out_dir, exist_ok=True)
    summary, curves, settings = {}, {}, {}
    for trajectory in trajectories:
        run = trajectory.run
        setting, optimizer = run.problem.setting, run.optimizer
        summary.setdefault(setting, {})[optimizer] = {
            "final_x": trajectory.final_x, "avg_regret": trajectory.final_avg_regret,
            "steps": trajectory.steps, "lr": run.lr}
        curves.setdefault(setting, {})[optimizer] = {
            "step": [int(t) for t in trajectory.step], "x": _rounded(trajectory.x),
            "loss": _rounded(trajectory.loss), "avg_regret": _rounded(trajectory.avg_regret)}
        problem = run.problem
        settings[setting] = {
            "large": problem.large, "small": problem.small, "period": problem.period,
            "probability": problem.probability, "seed": problem.seed,
            "optimum": problem.optimum, "beta1": run.beta1, "beta2": run.beta2}
    names = list(dict.fromkeys(args.optimizer))
    config = {
        "setup": "synthetic", "settings": settings, "optimizers": names,
        # lr: --lr, or null where each optimizer ran at its own (lrs)
        "steps": args.steps, "lr": args.lr, "lrs": {name: run_lr(args, name) for name in names},
        "lr_schedule": args.lr_schedule,
        "bias_correction": args.bias_correction == "on", "dtype": args.dtype,
        "epsilon": 1e-8, "x0": 0.0, "backend": args.backend, **provenance()}
    paths = [os.path.join(out_dir, name) for name in (
        SYNTHETIC_SUMMARY, SYNTHETIC_TRAJECTORIES, CONFIG_FILE)]
    write_json(paths[0], summary)
    # Compact: the trajectories are the bulk of the results.
    atomic_write_bytes(paths[1], (json.dumps(curves, separators=(",", ":")) + "\n").encode())
    write_json(paths[2], config)
    return paths


def main(argv=None, draw=None):
    """Run the synthetic experiments; return the exit code (0).

    ``draw(results_dir, out_dir)``, if given, draws the figure from what was
    written and returns the paths of its files (the command line passes
    :func:`plots.synthetic.plot_synthetic`: experiments know nothing of plotting).

    Raises
    ------
    errors.UserError
        For bad input (a non-positive step count or learning rate, C <= 2, a
        probability outside (0, 1), decay rates outside [0, 1)).
    """
    args = build_parser().parse_args(argv)
    runs = make_runs(args)
    trajectories = simulate(runs, args.steps, lr=DEFAULT_LR, lr_schedule=args.lr_schedule,
                            bias_correction=args.bias_correction == "on", dtype=args.dtype,
                            progress=not args.no_progress, backend=args.backend)
    out_dir = os.path.join(args.results_dir, SYNTHETIC_DIR)
    written = write_results(out_dir, args, trajectories)
    if draw is not None:
        written += draw(out_dir, out_dir)
    print(format_table(trajectories))
    print("wrote " + ", ".join(written))
    return 0
