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
    # The imports are inside run_cli: importing Theano (compat) can fail with a user error.
    if argv and argv[0] == "synthetic":
        def synthetic(job_argv):
            from experiments.synthetic.job import main as synthetic_main
            from plots.synthetic import plot_synthetic  # the job's figure
            return synthetic_main(job_argv, draw=plot_synthetic)
        return run_cli(synthetic, argv[1:], prog=prog + " synthetic")

    def training(run_argv):
        from experiments.launch.cli import main as training_main
        return training_main(run_argv, prog=prog)
    return run_cli(training, argv, prog=prog)


if __name__ == "__main__":
    sys.exit(main())
