"""
The checkpoint of a run: every value its compiled functions need to continue, in one file.

.. autosummary::
    :nosignatures:

    save_checkpoint
    load_checkpoint
    checkpoint_history
    saved_history
    CorruptCheckpoint

A checkpoint is one ``.npz`` file holding the values of a list of Theano
shared variables (parameters, optimizer state, batch-norm statistics, the
dropout generators' states: everything the compiled functions read or
update), the state of the ``numpy.random.RandomState`` the training batches
draw from, and the history, and optionally the identity of the run that wrote it (a JSON
object: the run's configuration), so that it is not loaded into another run.
It is read back without pickle; a file cut short or with changed bytes (the
zip members carry CRC-32 checksums) raises :class:`CorruptCheckpoint`.  It is
written atomically by :func:`experiments.store.atomic.atomic_write_bytes`, which
also owns where it lies (:data:`experiments.store.rundir.CHECKPOINT_FILE`).

Examples
--------
>>> import compat  # noqa: F401  (Theano's flags before theano)
>>> import numpy as np, theano
>>> from experiments.store.checkpoint import save_checkpoint, load_checkpoint
>>> w = theano.shared(np.ones(3, dtype="float32"), name="w")
>>> rng = np.random.RandomState(0)
>>> save_checkpoint("/tmp/doc_checkpoint.npz", [w], rng, {"loss": [0.5]})
>>> w.set_value(np.zeros(3, dtype="float32")); _ = rng.rand()
>>> load_checkpoint("/tmp/doc_checkpoint.npz", [w], rng)
{'loss': [0.5]}
>>> w.get_value(), rng.rand() == np.random.RandomState(0).rand()
(array([1., 1., 1.], dtype=float32), True)
"""
import io
import json
import struct
import zipfile
import zlib

import numpy as np

from errors import UserError
from experiments.store.atomic import atomic_write_bytes

__all__ = ["save_checkpoint", "load_checkpoint", "checkpoint_history", "saved_history",
           "CorruptCheckpoint"]

#: What reading a damaged ``.npz`` raises, depending on where the damage is (the zip
#: structure, a member's CRC, a NumPy header, an array's size).
_DAMAGED_NPZ_ERRORS = (ValueError, KeyError, EOFError, RuntimeError, zipfile.BadZipFile,
                       struct.error, zlib.error)
_REQUIRED_MEMBERS = ("names", "rng_kind", "rng_keys", "rng_position", "rng_has_gauss",
                     "rng_cached_gaussian", "history")


def _describe(variable, index):
    return variable.name or "shared variable #%d" % index


class CorruptCheckpoint(UserError):
    """A checkpoint that cannot be read: cut short, or bytes changed on disk."""


def save_checkpoint(path, variables, batch_rng, history, identity=None):
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
    identity : dict or None
        JSON-serialisable identity of the run (its configuration), given back
        to :func:`load_checkpoint`'s ``check_identity``
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
    if identity is not None:
        arrays["identity"] = np.array(json.dumps(identity, sort_keys=True))
    for index, variable in enumerate(variables):
        arrays["value_%d" % index] = variable.get_value(borrow=True)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def _check_stored(path):
    """ValueError unless every member is stored as written: np.savez compresses nothing, so
    a member that inflates (a few MB growing to gigabytes) is not this project's."""
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            if member.compress_type != zipfile.ZIP_STORED or \
                    member.file_size != member.compress_size:
                raise ValueError("member %s inflates from %d to %d bytes; checkpoints are "
                                 "written uncompressed" % (member.filename, member.compress_size,
                                                           member.file_size))


def _read_checkpoint(path):
    # All members, read in full: reading a member to its end checks its CRC-32.
    try:
        _check_stored(path)
        with np.load(path, allow_pickle=False) as saved:
            contents = {key: saved[key] for key in saved.files}
        missing = sorted(set(_REQUIRED_MEMBERS) - set(contents))
        if missing:
            raise KeyError("no %s" % ", ".join(missing))
        history = json.loads(str(contents["history"]))
        identity = json.loads(str(contents["identity"])) if "identity" in contents else None
    except FileNotFoundError:
        raise
    except (PermissionError, MemoryError) as exc:
        # The file may be whole: not damage, and never a reason to move it aside.
        raise UserError("cannot read checkpoint %s (%s: %s); fix that and run the same command "
                        "again" % (path, type(exc).__name__, exc))
    except OSError as exc:
        if exc.errno is not None:  # EIO and the like: the disk, not the file's contents
            raise UserError("cannot read checkpoint %s (%s); fix that and run the same command "
                            "again" % (path, exc.strerror or exc))
        raise CorruptCheckpoint("cannot read checkpoint %s: it is damaged (%s: %s)"
                                % (path, type(exc).__name__, exc))
    except _DAMAGED_NPZ_ERRORS as exc:
        raise CorruptCheckpoint("cannot read checkpoint %s: it is damaged (%s: %s)"
                                % (path, type(exc).__name__, exc))
    return contents, history, identity


def saved_history(path):
    """The history and identity saved in a checkpoint, reading only those two members.

    Cheap enough to check every opened run against its checkpoint; the other
    members are read (and their CRC-32 checked) when the state is restored.

    Returns
    -------
    history : dict
    identity : dict or None

    Raises
    ------
    CorruptCheckpoint, errors.UserError
        As :func:`checkpoint_history`
    """
    try:
        _check_stored(path)
        with np.load(path, allow_pickle=False) as saved:
            history = json.loads(str(saved["history"]))
            identity = json.loads(str(saved["identity"])) if "identity" in saved.files else None
    except FileNotFoundError:
        raise
    except (PermissionError, MemoryError, OSError, *_DAMAGED_NPZ_ERRORS):
        _, history, identity = _read_checkpoint(path)  # raises, saying what is wrong
    return history, identity


def checkpoint_history(path, check_identity=None):
    """The history saved in a checkpoint, without restoring anything.

    ``check_identity`` is called as in :func:`load_checkpoint`.

    Raises
    ------
    CorruptCheckpoint
        When the file cannot be read
    errors.UserError
        When ``check_identity`` refuses it
    """
    _, history, identity = _read_checkpoint(path)
    if check_identity is not None:
        check_identity(identity)
    return history


def _check_variables(path, contents, variables):
    def mismatch(what):
        return UserError("checkpoint %s does not match this run's model (%s); delete its "
                         "run directory to start that run over" % (path, what))

    names = [str(name) for name in contents["names"]]
    if len(names) != len(variables):
        raise mismatch("%d saved variables, the model has %d" % (len(names), len(variables)))
    for index, (name, variable) in enumerate(zip(names, variables)):
        value = contents.get("value_%d" % index)
        if value is None:
            raise CorruptCheckpoint("cannot read checkpoint %s: it is damaged (no value_%d)"
                                    % (path, index))
        current = variable.get_value(borrow=True)
        if name != _describe(variable, index):
            raise mismatch("variable %d is %r, saved %r" % (index, _describe(variable, index), name))
        if np.shape(value) != np.shape(current) or value.dtype != np.asarray(current).dtype:
            raise mismatch("%s has shape %s and dtype %s, saved %s and %s"
                           % (name, np.shape(current), np.asarray(current).dtype,
                              value.shape, value.dtype))


def load_checkpoint(path, variables, batch_rng, check_identity=None):
    """Restore the shared variables and the generator from a checkpoint.

    Parameters
    ----------
    path : str
        A file written by :func:`save_checkpoint`
    variables : list of shared variables
        The same variables, in the same order, as when it was saved
    batch_rng : numpy.random.RandomState
        Set to the saved state
    check_identity : callable or None
        Called with the saved identity (None for a checkpoint saved without
        one) before anything changes; raises errors.UserError to refuse it

    Returns
    -------
    dict
        The saved history

    Raises
    ------
    CorruptCheckpoint
        When the file cannot be read (cut short, bytes changed)
    errors.UserError
        When it does not match the variables (number, names, shapes or
        dtypes) or ``check_identity`` refuses it; nothing is changed then.
    """
    try:
        contents, history, identity = _read_checkpoint(path)
    except FileNotFoundError as exc:
        raise UserError("cannot read checkpoint %s (%s)" % (path, exc.strerror))
    if check_identity is not None:
        check_identity(identity)
    _check_variables(path, contents, variables)
    # Everything checked: now change state.
    for index, variable in enumerate(variables):
        variable.set_value(contents["value_%d" % index])
    batch_rng.set_state((str(contents["rng_kind"]), contents["rng_keys"],
                         int(contents["rng_position"]), int(contents["rng_has_gauss"]),
                         float(contents["rng_cached_gaussian"])))
    return history
