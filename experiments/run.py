#!/usr/bin/env python
"""Run one experiment of "Experiments with AMSGrad".

    python experiments/run.py synthetic [--setting online|stochastic|both] ...
    python experiments/run.py SETUP --lr LR --beta2 B2 [...]   (logreg, ffnn, cifarnet, small_vgg, vgg)

``python experiments/run.py SETUP --help`` lists each one's options.
"""
import os
import sys

# Run as a script, Python puts experiments/ first on the path; the project root is
# what the imports below need (also when the project is not installed).
_HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0]) == _HERE:
    sys.path[0] = os.path.dirname(_HERE)

from errors import run_cli  # noqa: E402


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "synthetic":
        from experiments.synthetic import main as synthetic_main
        from plots.synthetic import plot_synthetic  # the job's figure
        return run_cli(lambda job_argv: synthetic_main(job_argv, draw=plot_synthetic),
                       argv[1:], prog="run.py synthetic")
    from experiments.cli import main as training_main
    return run_cli(training_main, argv, prog="run.py")


if __name__ == "__main__":
    sys.exit(main())
