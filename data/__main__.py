"""
Download and check data sets ahead of time (for example before going offline).

    python -m data [--data-dir D] [--offline] NAME [NAME ...]

NAME is ``mnist``, ``fashion_mnist``, ``cifar10`` or ``all``.  Each data set is
found in (or downloaded into) the data directory, checked and preprocessed as
the experiments will, and one line per data set says where it is and its sizes.
"""
import argparse
import os
import sys
import warnings

from data.datasets import DATASETS, find_files, load_dataset
from data.download import default_data_dir
from errors import run_cli

__all__ = ["main"]


def main(argv=None):
    """Load each named data set (downloading it when missing) and report it.

    Parameters
    ----------
    argv : list of str or None
        The arguments, ``sys.argv[1:]`` when None.
    """
    parser = argparse.ArgumentParser(prog="python -m data", description=__doc__.split("\n")[1])
    parser.add_argument("names", nargs="+", choices=DATASETS + ("all",), metavar="NAME",
                        help="data sets: %s, or all" % ", ".join(DATASETS))
    parser.add_argument("--data-dir", default=None,
                        help="data directory (default: $AMSGRAD_DATA or %s)" % default_data_dir())
    parser.add_argument("--offline", action="store_true",
                        help="use local files only, never download")
    args = parser.parse_args(argv)
    names = DATASETS if "all" in args.names else args.names
    for name in names:
        dataset = load_dataset(name, data_dir=args.data_dir, download=not args.offline)
        where = find_files(name, args.data_dir or default_data_dir())
        print("%s: train %d, val %d, test %d, inputs %s; %s" % (
            name, len(dataset.train_y), len(dataset.val_y), len(dataset.test_y),
            "x".join(map(str, dataset.input_shape)), os.path.commonpath(list(where.values()))))
    return 0


def _one_line_warning(message, category, filename, lineno, line=None):
    return "warning: %s\n" % message


if __name__ == "__main__":
    warnings.formatwarning = _one_line_warning
    sys.exit(run_cli(main, sys.argv[1:], prog="python -m data"))
