"""Copy Theano-PyMC and Lasagne from this Python's site-packages into a directory of their own.

The route to a GPU for machines that cannot run Python 3.11: a Python with
NumPy 2 and a CUDA build of JAX imports the two pure-Python packages from this
directory and the project from the checkout (``PYTHONPATH=.gpu_site:.``, from the
repository root), and ``compat`` loads Theano through
``compat/numpy2.py`` there (C compiler off, so only ``--backend jax``
runs).  Where Python 3.11 runs, ``make setup GPU=cuda12`` is the simpler route.

Usage (``make gpu-site`` runs it with ``.venv``'s Python)::

    .venv/bin/python scripts/gpu_site.py [DEST]      # DEST defaults to .gpu_site

The distributions' own file lists (their ``RECORD``) say what to copy: the
packages ``theano`` and ``lasagne`` and their ``.dist-info``.
An earlier copy in DEST is replaced.
"""
import argparse
import importlib.metadata
import os
import shutil
import sys

#: The distributions a NumPy 2 Python lacks (names on the package index) -> their package.
DISTRIBUTIONS = {"Theano-PyMC": "theano", "Lasagne": "lasagne"}


def site_files(name, package):
    """The files of an installed distribution's package and .dist-info, as (source, relative).

    Other top-level entries its wheel installs (Theano-PyMC's ``bin`` and
    ``tests``) stay behind: they would shadow other modules on PYTHONPATH.
    """
    try:
        distribution = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        sys.exit("error: %s is not installed in %s; run 'make setup' first"
                 % (name, sys.prefix))
    root = os.path.realpath(str(distribution.locate_file("")))
    for entry in distribution.files or ():
        source = os.path.realpath(str(distribution.locate_file(entry)))
        relative = os.path.relpath(source, root)
        top = relative.split(os.sep)[0]
        if (top == package or top.endswith(".dist-info")) and os.path.isfile(source):
            yield source, relative


def copy_site(destination, names=DISTRIBUTIONS):
    """Copy the distributions' files into ``destination``; return how many were copied."""
    files = [pair for name, package in names.items() for pair in site_files(name, package)]
    for top in sorted({relative.split(os.sep)[0] for _, relative in files}):
        shutil.rmtree(os.path.join(destination, top), ignore_errors=True)
    for source, relative in files:
        target = os.path.join(destination, relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(source, target)
    return len(files)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("destination", nargs="?", default=".gpu_site",
                        help="directory to put on PYTHONPATH (default: .gpu_site)")
    args = parser.parse_args(argv)
    count = copy_site(args.destination)
    print("copied %d files of %s into %s; on the GPU machine, from the repository root: PYTHONPATH=%s:. python3 ..."
          % (count, " and ".join(DISTRIBUTIONS), args.destination, args.destination))


if __name__ == "__main__":
    main()
