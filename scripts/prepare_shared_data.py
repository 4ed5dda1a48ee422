#!/usr/bin/env python
"""Decode the shared CIFAR-10 look-alike (../shared/data/cifar10-jpeg) into the official python
layout, once, in a cache outside the repository, for the tests that train on CIFAR-10.

    python scripts/prepare_shared_data.py [OUT]

OUT defaults to $AMSGRAD_SHARED_CIFAR10, else ~/.cache/amsgrad-experiments/shared-cifar10; the
result is OUT/cifar-10-batches-py/.  Does nothing when that is already complete.  A damaged
archive is one line on stderr and exit code 2, and leaves nothing in OUT.
"""
import os
import shutil
import subprocess
import sys

from errors import UserError, run_cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("AMSGRAD_SHARED_DATA") or os.path.join(os.path.dirname(REPO), "shared", "data")
ARCHIVE = "cifar10-jpeg.tar.xz"
FILES = ["data_batch_%d" % k for k in range(1, 6)] + ["test_batch", "batches.meta"]


def default_out():
    return os.environ.get("AMSGRAD_SHARED_CIFAR10") or os.path.join(
        os.path.expanduser("~"), ".cache", "amsgrad-experiments", "shared-cifar10")


def main(argv):
    out = argv[0] if argv else default_out()
    batches = os.path.join(out, "cifar-10-batches-py")
    if all(os.path.exists(os.path.join(batches, f)) for f in FILES):
        print("shared CIFAR-10 look-alike already at", batches)
        return 0
    converter = os.path.join(SHARED, "cifar10-jpeg", "to_python_batches.py")
    if not os.path.exists(converter):
        print("no shared CIFAR-10 look-alike at %s; CIFAR-10 tests will skip" % converter)
        return 0
    # Convert into a temporary directory, then rename: an interrupted or failed
    # conversion leaves nothing that looks complete.
    tmp = out + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    converted = subprocess.run([sys.executable, converter, tmp], stderr=subprocess.PIPE,
                               text=True)
    if converted.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        lines = converted.stderr.strip().splitlines() or ["exit code %d" % converted.returncode]
        raise UserError("cannot convert %s (%s); nothing was written to %s: restore the "
                        "archive if it is damaged or cut short, then run this again"
                        % (os.path.join(os.path.dirname(converter), ARCHIVE), lines[-1], out))
    os.makedirs(out, exist_ok=True)
    os.replace(os.path.join(tmp, "cifar-10-batches-py"), batches)
    os.rmdir(tmp)
    print("wrote", batches)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, sys.argv[1:], prog="prepare_shared_data.py"))
