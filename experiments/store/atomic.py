"""
Atomic files: every file of the results is written whole or not at all.

.. autosummary::
    :nosignatures:

    atomic_write_bytes
    write_json
    read_json
    load_json
    writing
    remove_stale_temporaries
    move_aside
    write_error_log
    remove_error_log

Every file is written atomically: into a temporary file in the same
directory, flushed to disk (``fsync``), then renamed over the old one with
``os.replace`` (and the directory synced), so a crash or ``kill -9`` leaves
either the old file or the new one, never a mix.  A ``kill -9`` during the
write can leave the temporary file (``.NAME.RANDOM.tmp``) behind;
:func:`remove_stale_temporaries` removes those of a directory.  Files are
created with mode 0666 less the umask, as ``open`` creates them.

A run's ``error.log`` (:data:`ERROR_FILE`) is written here too: only after the
grid's last try of the run failed with something other than a user error,
that failure's traceback (:func:`write_error_log`); removed when the run's
next try ends well.

Examples
--------
>>> import os, tempfile
>>> from experiments.store.atomic import read_json, write_json
>>> path = os.path.join(tempfile.mkdtemp(), "values.json")
>>> write_json(path, {"loss": [1.0]})
>>> read_json(path)
{'loss': [1.0]}
"""
import contextlib
import json
import os
import re
import secrets
import sys

from errors import UserError

__all__ = ["atomic_write_bytes", "write_json", "read_json", "load_json", "writing",
           "remove_stale_temporaries", "move_aside", "ERROR_FILE", "write_error_log",
           "remove_error_log"]

#: The traceback of a run's last failed try (a bug, or the environment's fault).
ERROR_FILE = "error.log"

#: Names of the atomic writer's temporary files: ``.NAME.RANDOM.tmp`` (RANDOM as
#: ``secrets.token_hex`` or, before, ``tempfile.mkstemp`` made it).
_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{6,}\.tmp$")


def _fsync_directory(directory):
    # The rename is only durable once the directory entry is on disk.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_temporary(directory, name):
    # Not tempfile.mkstemp: its files are mode 0600 whatever the umask; O_EXCL keeps
    # its guarantee of a new file of our own.
    while True:
        tmp_path = os.path.join(directory, ".%s.%s.tmp" % (name, secrets.token_hex(8)))
        try:
            return os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                           0o666), tmp_path
        except FileExistsError:
            continue


def atomic_write_bytes(path, payload):
    """Replace ``path`` by ``payload`` (bytes) atomically and durably.

    The new file gets mode 0666 less the process's umask (0644 under umask 022).
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = _create_temporary(directory, os.path.basename(path))
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


def remove_stale_temporaries(directory):
    """Remove the temporary files an interrupted :func:`atomic_write_bytes` left in ``directory``.

    Call it only while no other process writes there (e.g. holding the run's
    lock).  Returns the names removed.
    """
    removed = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if _TEMPORARY.match(name) and os.path.isfile(path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                removed.append(name)
    return removed


def move_aside(path, suffix=".corrupt"):
    """Rename ``path`` to ``path + suffix``, or ``path + suffix + ".2"``, ``".3"``, ... when taken.

    A file moved aside earlier is never overwritten: a run whose checkpoint is
    damaged twice keeps both.  Call it only while no other process moves files
    in that directory (e.g. holding the run's lock).  Returns the new path.
    """
    target, number = path + suffix, 1
    while os.path.lexists(target):
        number += 1
        target = "%s%s.%d" % (path, suffix, number)
    os.rename(path, target)
    _fsync_directory(os.path.dirname(os.path.abspath(path)))
    return target


def write_json(path, value):
    """Write ``value`` as indented JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(value, indent=1) + "\n").encode("utf-8"))


def load_json(path):
    """The JSON value in ``path``.

    Raises
    ------
    ValueError
        Saying why it cannot be had (missing, unreadable, not valid JSON), without
        the path: the readers of results (figures, report) list it beside
    """
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as exc:
        raise ValueError("cannot be read (%s)" % (exc.strerror or exc))
    except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError
        raise ValueError("is not valid JSON, probably half-written (%s)" % exc)
    except RecursionError:  # arrays or objects nested thousands deep: no file of ours
        raise ValueError("is not a file of this project (JSON nested deeper than %d levels)"
                         % sys.getrecursionlimit()) from None


def read_json(path):
    """The JSON value in ``path``, or None when the file does not exist.

    Raises
    ------
    errors.UserError
        When it cannot be read or is not valid JSON (e.g. cut short)
    """
    if not os.path.exists(path):
        return None
    try:
        return load_json(path)
    except ValueError as exc:
        # Callers say what to do: that depends on the file.
        raise UserError("%s %s" % (path, exc))


@contextlib.contextmanager
def writing(path):
    """Turn a failed write (full disk, quota, permissions) into a user error naming ``path``.

    The atomic writer keeps the file's previous version, so the run resumes
    from its last finished epoch once the cause is fixed.
    """
    try:
        yield
    except OSError as exc:
        raise UserError("cannot write %s (%s); the previous version is kept: free disk space "
                        "(or fix the permissions) and run the same command again to resume "
                        "from the last finished epoch" % (path, exc.strerror or exc))


def write_error_log(run_dir, text):
    """Keep the traceback of a run that failed in ``run_dir/error.log``, atomically.

    Parameters
    ----------
    run_dir : str
        The run's directory (created if missing: a run can fail before it exists)
    text : str
        What to keep, e.g. a header line and ``traceback.format_exc()``

    Returns
    -------
    str
        The file's path

    Raises
    ------
    OSError
        When it cannot be written
    """
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, ERROR_FILE)
    atomic_write_bytes(path, text.encode("utf-8", "replace"))
    return path


def remove_error_log(run_dir):
    """Remove the error log of a run whose try ended well (nothing when there is none)."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(run_dir, ERROR_FILE))
