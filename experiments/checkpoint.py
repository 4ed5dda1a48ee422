"""
What a run keeps on disk: atomic writes, the checkpoint, and the run lock.

.. autosummary::
    :nosignatures:

    atomic_write_bytes
    write_json
    read_json
    save_checkpoint
    load_checkpoint
    run_lock
    RunLocked

Every file is written atomically: into a temporary file in the same
directory, flushed to disk (``fsync``), then renamed over the old one with
``os.replace`` (and the directory synced), so a crash or ``kill -9`` leaves
either the old file or the new one, never a mix.

A checkpoint is one ``.npz`` file holding the values of a list of Theano
shared variables (parameters, optimizer state, batch-norm statistics, the
dropout generators' states: everything the compiled functions read or
update), the state of the ``numpy.random.RandomState`` the training batches
draw from, and the history.  It is read back without pickle.

Examples
--------
>>> import numpy as np, theano
>>> from experiments.checkpoint import save_checkpoint, load_checkpoint
>>> w = theano.shared(np.ones(3, dtype="float32"), name="w")
>>> rng = np.random.RandomState(0)
>>> save_checkpoint("/tmp/doc_checkpoint.npz", [w], rng, {"loss": [0.5]})
>>> w.set_value(np.zeros(3, dtype="float32")); _ = rng.rand()
>>> load_checkpoint("/tmp/doc_checkpoint.npz", [w], rng)
{'loss': [0.5]}
>>> w.get_value(), rng.rand() == np.random.RandomState(0).rand()
(array([1., 1., 1.], dtype=float32), True)
"""
import contextlib
import fcntl
import io
import json
import os
import tempfile

import numpy as np

from errors import UserError

__all__ = ["atomic_write_bytes", "write_json", "read_json", "save_checkpoint",
           "load_checkpoint", "run_lock", "RunLocked"]


def _fsync_directory(directory):
    # The rename is only durable once the directory entry is on disk.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path, payload):
    """Replace ``path`` by ``payload`` (bytes) atomically and durably."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                                    suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(payload)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_path)
        raise
    _fsync_directory(directory)


def write_json(path, value):
    """Write ``value`` as indented JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(value, indent=1) + "\n").encode("utf-8"))


def read_json(path):
    """The JSON value in ``path``, or None when the file does not exist."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise UserError("%s is not valid JSON (%s); delete its run directory to start "
                        "that run over" % (path, exc))


def _describe(variable, index):
    return variable.name or "shared variable #%d" % index


def save_checkpoint(path, variables, batch_rng, history):
    """Write a checkpoint atomically.

    Parameters
    ----------
    path : str
        The checkpoint file (``.npz``)
    variables : list of shared variables
        Everything the run's compiled functions read or update, in an order
        that rebuilding the same model reproduces
    batch_rng : numpy.random.RandomState
        The generator the training batches draw from
    history : dict
        JSON-serialisable record of the finished epochs
    """
    kind, keys, position, has_gauss, cached_gaussian = batch_rng.get_state()
    arrays = {
        "names": np.array([_describe(v, i) for i, v in enumerate(variables)], dtype=str),
        "rng_kind": np.array(kind),
        "rng_keys": keys,
        "rng_position": np.array(position),
        "rng_has_gauss": np.array(has_gauss),
        "rng_cached_gaussian": np.array(cached_gaussian),
        "history": np.array(json.dumps(history)),
    }
    for index, variable in enumerate(variables):
        arrays["value_%d" % index] = variable.get_value(borrow=True)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path, variables, batch_rng):
    """Restore the shared variables and the generator from a checkpoint.

    Parameters
    ----------
    path : str
        A file written by :func:`save_checkpoint`
    variables : list of shared variables
        The same variables, in the same order, as when it was saved
    batch_rng : numpy.random.RandomState
        Set to the saved state

    Returns
    -------
    dict
        The saved history

    Raises
    ------
    errors.UserError
        When the file cannot be read or does not match the variables (number,
        names, shapes or dtypes); nothing is changed then.
    """
    def mismatch(what):
        return UserError("checkpoint %s does not match this run's model (%s); delete its "
                         "run directory to start that run over" % (path, what))

    try:
        with np.load(path, allow_pickle=False) as saved:
            contents = {key: saved[key] for key in saved.files}
    except (OSError, ValueError) as exc:
        raise UserError("cannot read checkpoint %s (%s); delete its run directory to start "
                        "that run over" % (path, exc))
    names = [str(name) for name in contents["names"]]
    if len(names) != len(variables):
        raise mismatch("%d saved variables, the model has %d" % (len(names), len(variables)))
    for index, (name, variable) in enumerate(zip(names, variables)):
        value = contents["value_%d" % index]
        current = variable.get_value(borrow=True)
        if name != _describe(variable, index):
            raise mismatch("variable %d is %r, saved %r" % (index, _describe(variable, index), name))
        if np.shape(value) != np.shape(current) or value.dtype != np.asarray(current).dtype:
            raise mismatch("%s has shape %s and dtype %s, saved %s and %s"
                           % (name, np.shape(current), np.asarray(current).dtype,
                              value.shape, value.dtype))
    # Everything checked: now change state.
    for index, variable in enumerate(variables):
        variable.set_value(contents["value_%d" % index])
    batch_rng.set_state((str(contents["rng_kind"]), contents["rng_keys"],
                         int(contents["rng_position"]), int(contents["rng_has_gauss"]),
                         float(contents["rng_cached_gaussian"])))
    return json.loads(str(contents["history"]))


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
    """
    fd = os.open(os.path.join(run_dir, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLocked(run_dir)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
