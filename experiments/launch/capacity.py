"""
How many local worker processes this machine holds: its cores and its free memory.

.. autosummary::
    :nosignatures:

    available_memory
    fit_workers
    WORKER_MEMORY

A grid's local workers each train one run at a time with the cores divided
between them (:func:`experiments.store.threads.available_cores`); more
workers than cores only take turns on them, and more than the free memory
holds end in swapping or the kernel killing one.  :func:`fit_workers` lowers
``--workers`` to what the machine holds and says why, in one line.

Imports nothing but the standard library (the grid's module imports it
before its workers start; see :mod:`experiments.launch.worker`).
"""
from experiments.store.threads import available_cores

__all__ = ["available_memory", "fit_workers", "WORKER_MEMORY"]

#: Peak resident memory of one worker, in bytes: 400 MiB.  Measured on 2026-12-07 with
#: ``/usr/bin/time -v python experiments/run.py logreg --lr 0.001 --beta2 0.99
#: --optimizer adam --bias-correction on --epochs 1`` (train_run, the code a worker runs):
#: "Maximum resident set size" 400,076 kB (MNIST in float32, Theano and its compiled
#: functions).  logreg is the smallest setup; the others (CIFAR-10's inputs alone are
#: 0.7 GB) need more, so the cap is the least a machine needs, not a guarantee.
WORKER_MEMORY = 400 * 2**20


def available_memory(meminfo="/proc/meminfo"):
    """Bytes of memory available to new processes without swapping, or None where unknown.

    Parameters
    ----------
    meminfo : str
        Linux's ``/proc/meminfo``; its ``MemAvailable`` line is read

    Returns
    -------
    int or None
        None when the file or the line is missing (not Linux, a kernel before 3.14)
    """
    try:
        with open(meminfo) as lines:
            for line in lines:
                name, _, value = line.partition(":")
                if name == "MemAvailable":
                    return int(value.split()[0]) * 1024  # the kernel writes kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def fit_workers(requested):
    """The number of local workers to start: ``requested``, lowered to what the machine holds.

    Parameters
    ----------
    requested : int
        ``--workers``, at least 1

    Returns
    -------
    workers : int
        ``min(requested, cores, available memory // WORKER_MEMORY)``, at least 1
    notice : str or None
        One line saying how many and why when ``workers < requested``, else None
    """
    cores, memory = available_cores(), available_memory()
    room = None if memory is None else memory // WORKER_MEMORY
    workers = max(1, min(limit for limit in (requested, cores, room) if limit is not None))
    if workers == requested:
        return workers, None
    what = "%d core%s" % (cores, "s" if cores > 1 else "")
    if room is not None:
        what += " and %.1f GiB of memory available, room for %d worker%s of about %d MiB" % (
            memory / 2**30, room, "" if room == 1 else "s", WORKER_MEMORY // 2**20)
    return workers, ("--workers %d lowered to %d: this machine has %s; more workers would "
                     "only compete for them" % (requested, workers, what))
