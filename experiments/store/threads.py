"""
The thread counts a process computes with: what sets them and how many cores there are.

.. autosummary::
    :nosignatures:

    available_cores
    BLAS_THREAD_VARIABLES

Imports nothing but the standard library: a grid's worker process reads it
before NumPy is loaded (OpenBLAS reads its thread count once, when loaded),
and the run store records the counts in each run's ``config.json``.
"""
import os

__all__ = ["available_cores", "BLAS_THREAD_VARIABLES"]

#: The variables OpenMP, OpenBLAS and MKL read their thread counts from.
BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def available_cores():
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
