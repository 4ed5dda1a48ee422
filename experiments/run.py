#!/usr/bin/env python
"""Run one experiment of "Experiments with AMSGrad".

    python experiments/run.py synthetic [--setting online|stochastic|both] ...
    python experiments/run.py SETUP --lr LR --beta2 B2 [...]   (logreg, ffnn, cifarnet, small_vgg, vgg)

``python experiments/run.py SETUP --help`` lists each one's options.
"""
import sys


from errors import run_cli


def main(argv=None):
    """Run the experiment the arguments name; the exit code (also the ``amsgrad-run`` command)."""
    prog = "amsgrad-run" if argv is None and sys.argv[0].endswith("amsgrad-run") else "run.py"
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "synthetic":
        from experiments.synthetic import main as synthetic_main
        from plots.synthetic import plot_synthetic  # the job's figure
        return run_cli(lambda job_argv: synthetic_main(job_argv, draw=plot_synthetic),
                       argv[1:], prog=prog + " synthetic")
    from experiments.cli import main as training_main
    return run_cli(lambda run_argv: training_main(run_argv, prog=prog), argv, prog=prog)


if __name__ == "__main__":
    sys.exit(main())
