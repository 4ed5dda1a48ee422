"""
The run lock: one process trains a run at a time.

.. autosummary::
    :nosignatures:

    run_lock
    RunLocked

The process that trains a run holds ``.lock`` (:data:`LOCK_FILE`) in its
directory; a second one (another grid on the same results directory, say)
is told at once and trains something else meanwhile.
"""
import contextlib
import fcntl
import os

from errors import UserError

__all__ = ["LOCK_FILE", "run_lock", "RunLocked"]

LOCK_FILE = ".lock"


class RunLocked(Exception):
    """Another process holds the run's lock (it is training that run now)."""


@contextlib.contextmanager
def run_lock(run_dir):
    """Hold the exclusive lock of a run directory for the ``with`` block.

    Uses ``fcntl.flock`` on ``run_dir/.lock``: the kernel releases it when the
    process ends in any way (also ``kill -9``), so a stale lock cannot block
    a resumed run.

    Raises
    ------
    RunLocked
        At once (no waiting) when another process holds the lock.
    errors.UserError
        When the lock file cannot be opened (a read-only directory).
    """
    path = os.path.join(run_dir, LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # a read-only directory or disk, a .lock that is not a file
        raise UserError("cannot lock %s (%s): a run writes its directory; make it writable, "
                        "or use another --results-dir" % (path, exc.strerror or exc)) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLocked(run_dir)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
