"""
The results layout of training runs: the one module that knows its paths, files and formats.

.. autosummary::
    :nosignatures:

    check_run_dir
    is_legacy
    legacy_note
    check_writable
    make_run_dir
    write_config
    saved_config
    record_machine
    describe_machines
    describe_data
    write_packed
    read_packed
    new_history
    history_curves
    add_curves
    read_history
    history_problem
    history_identity_problem
    curves_problem
    writing
    provenance
    atomic_write_bytes
    write_json
    read_json
    load_json
    remove_stale_temporaries
    write_error_log
    remove_error_log
    move_aside
    run_lock
    RunLocked

A run lives in ``R/SETUP/CELL/run=K/`` (:meth:`experiments.records.config.RunConfig.run_dir`):

- ``config.json`` (:data:`CONFIG_FILE`): the :class:`~experiments.records.config.RunConfig`
  fields, ``data`` (what the data set's content is and whether its files are the
  official ones: :func:`describe_data`), :func:`provenance` (``versions``,
  ``theano_flags``, ``threads``) and ``machines`` (per process that trained it, from
  which epoch, with which backend on which machine: :func:`record_machine`);
- ``history.json`` (:data:`HISTORY_FILE`): per finished epoch the lists of
  :data:`CURVES`, ``status`` (one of :data:`STATUSES`) and ``diverged_epoch``;
- ``checkpoint.npz`` (:data:`CHECKPOINT_FILE`, format in
  :mod:`experiments.checkpoint`);
- ``.lock`` (:data:`LOCK_FILE`): held by the process that trains the run;
- ``error.log`` (:data:`ERROR_FILE`): only after the grid's last try of the run
  failed with something other than a user error: that failure's traceback
  (:func:`write_error_log`); removed when the run's next try ends well.

The synthetic job writes ``R/synthetic/`` (:data:`SYNTHETIC_DIR`): ``summary.json``,
``trajectories.json`` and ``config.json``.  Training,
the grid, the synthetic job, the report and the figures all read and write
through this module; it imports neither Theano nor plotting code.

Every file is written atomically: into a temporary file in the same
directory, flushed to disk (``fsync``), then renamed over the old one with
``os.replace`` (and the directory synced), so a crash or ``kill -9`` leaves
either the old file or the new one, never a mix.  A ``kill -9`` during the
write can leave the temporary file (``.NAME.RANDOM.tmp``) behind;
:func:`remove_stale_temporaries` removes those of a directory.  Files are
created with mode 0666 less the umask, as ``open`` creates them.

Examples
--------
>>> from experiments import runstore
>>> history = runstore.new_history()
>>> sorted(history)
['acc', 'diverged_epoch', 'epoch_time', 'loss', 'lr', 'status', 'val_acc', 'val_loss']
>>> runstore.history_problem(dict(history, status="done"))
"status 'done' is not one of running, complete, diverged"
"""
import contextlib
import fcntl
import importlib.metadata
import json
import math
import numbers
import os
import platform
import re
import secrets
import sys

from errors import UserError
from experiments import machine
from experiments.records.config import RunConfig, describe_differences
from experiments.threads import BLAS_THREAD_VARIABLES, available_cores

__all__ = ["CONFIG_FILE", "HISTORY_FILE", "CHECKPOINT_FILE", "LOCK_FILE", "SYNTHETIC_DIR",
           "SYNTHETIC_SUMMARY", "SYNTHETIC_TRAJECTORIES",
           "CURVES", "STATUSES", "FINISHED", "check_run_dir",
           "check_writable", "is_legacy", "legacy_note",
           "make_run_dir", "write_config", "saved_config", "record_machine", "describe_machines",
           "describe_data", "KNOWN_CONTENTS", "write_packed",
           "read_packed", "PACKED_SUFFIX", "new_history", "history_curves", "add_curves",
           "read_history", "history_problem", "history_identity_problem",
           "curves_problem", "writing", "provenance", "atomic_write_bytes",
           "write_json", "read_json", "load_json", "remove_stale_temporaries", "move_aside",
           "run_lock", "RunLocked", "ERROR_FILE", "write_error_log", "remove_error_log"]

CONFIG_FILE, HISTORY_FILE, CHECKPOINT_FILE = "config.json", "history.json", "checkpoint.npz"
LOCK_FILE = ".lock"
#: The traceback of a run's last failed try (a bug, or the environment's fault).
ERROR_FILE = "error.log"
#: The synthetic experiment's directory inside a results directory (not a training setup),
#: and its files besides ``config.json``.
SYNTHETIC_DIR = "synthetic"
SYNTHETIC_SUMMARY, SYNTHETIC_TRAJECTORIES = "summary.json", "trajectories.json"
#: The per-epoch lists every ``history.json`` has, in this order (a run records more when
#: its training declares more: :func:`experiments.records.metrics.history_curves`).
CURVES = ("loss", "acc", "val_loss", "val_acc", "lr", "epoch_time")
#: A run's ``status``; the :data:`FINISHED` ones are not trained again.
STATUSES = ("running", "complete", "diverged")
FINISHED = ("complete", "diverged")

#: Names of the atomic writer's temporary files: ``.NAME.RANDOM.tmp`` (RANDOM as
#: ``secrets.token_hex`` or, before, ``tempfile.mkstemp`` made it).
_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{6,}\.tmp$")


# -- atomic files -----------------------------------------------------------------------

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


# -- the run lock -----------------------------------------------------------------------

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
    fd = os.open(os.path.join(run_dir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLocked(run_dir)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


# -- directories and config.json --------------------------------------------------------

def check_writable(results_dir, option="--results-dir"):
    """Create ``results_dir`` if needed; raise errors.UserError when it cannot be written.

    ``option`` is the command-line option the messages name.
    """
    try:
        os.makedirs(results_dir, exist_ok=True)
    except OSError as exc:
        raise UserError("cannot create %s %s (%s); choose a writable directory"
                        % (option, results_dir, exc.strerror or exc))
    if not os.access(results_dir, os.W_OK | os.X_OK):
        raise UserError("%s %s is not writable; choose a writable directory"
                        % (option, results_dir))


def make_run_dir(run_dir):
    """Create a run's directory; a user error saying what to do when that fails."""
    try:
        os.makedirs(run_dir, exist_ok=True)
    except OSError as exc:
        raise UserError("cannot create the run directory %s (%s); choose a writable "
                        "--results-dir" % (run_dir, exc.strerror or exc))


def _saved_config(run_dir, config_path):
    """The parsed ``config.json`` of a run directory (None if absent), checked to be an object."""
    unreadable = ("%s holds an unreadable config (%s); if it is this run's, delete %s (it is "
                  "written again, and the checkpoint is checked against this run), else use "
                  "another --results-dir")
    try:
        saved = read_json(config_path)
    except UserError as exc:
        raise UserError(unreadable % (run_dir, exc, config_path))
    if saved is not None and not isinstance(saved, dict):
        raise UserError(unreadable % (run_dir, "a JSON %s, not an object" % type(saved).__name__,
                                      config_path))
    try:
        return saved, None if saved is None else RunConfig.from_dict(saved)
    except (TypeError, UserError) as exc:
        raise UserError(unreadable % (run_dir, exc, config_path))


def check_run_dir(config, results_dir):
    """Check that the run's directory holds no run with another configuration.

    Returns
    -------
    bool
        Whether the directory already holds this run's ``config.json``

    Raises
    ------
    errors.UserError
        When it holds a different (or unreadable) configuration
    """
    run_dir = config.run_dir(results_dir)
    saved, theirs = _saved_config(run_dir, os.path.join(run_dir, CONFIG_FILE))
    if saved is None:
        return False
    differences = config.differences(theirs)
    if differences:
        hint = "; " + legacy_note(theirs, results_dir) if is_legacy(saved, theirs) else ""
        raise UserError(
            "%s holds a run with a different configuration (%s)%s; use another --results-dir "
            "or delete that run directory" % (run_dir, describe_differences(differences), hint))
    return True


def is_legacy(saved, config):
    """Whether a ``config.json`` (``saved``, parsed as ``config``) was written before a
    default changed: before CIFAR-10 inputs were centred (it has no ``cifar_centering``
    and is uncentred), or before runs were independent draws (no ``seeding``)."""
    return (not config.cifar_centering and "cifar_centering" not in saved) or \
        "seeding" not in saved


def legacy_note(config, results_dir):
    """What to do with a run written before a default changed (see :func:`is_legacy`).

    An uncentred small_vgg run also has the He gain 1 of that code, which no
    option reproduces, so it is no run of today's protocols.
    """
    if config.setup == "small_vgg" and not config.cifar_centering:
        return ("it was written by the code before 2026-11-30 (uncentred inputs, He gain 1), "
                "a protocol this version does not train: keep it in another results directory")
    kinds = []
    if not config.cifar_centering:
        kinds.append("uncentred (written before CIFAR-10 inputs were centred by default)")
    if config.seeding == "common":
        kinds.append("on common random numbers (written before runs were independent draws "
                     "by default, 2026-12-05)")
    return ("it is a run %s: rename its directory to %s to keep it as such"
            % (" and ".join(kinds), config.run_dir(results_dir)))


def _version(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def provenance():
    """What a result was computed with: package versions, Theano's flags, thread counts.

    ``theano_flags`` is read from Theano's configuration when Theano is loaded
    (as it is wherever something was trained), else empty.  Curves are
    identical bit for bit only with the same versions, backend and thread
    counts (sums split over another number of threads round differently).
    """
    theano = sys.modules.get("theano")
    flags = {} if theano is None else {
        name: str(getattr(theano.config, name))
        for name in ("floatX", "device", "mode", "optimizer", "blas__ldflags")}
    versions = {"python": platform.python_version()}
    for name, distribution in (("numpy", "numpy"), ("theano", "Theano-PyMC"),
                               ("lasagne", "Lasagne")):
        versions[name] = _version(distribution)
    threads = dict({name: os.environ.get(name) for name in BLAS_THREAD_VARIABLES},
                   cores=available_cores())
    return {"versions": versions, "theano_flags": flags, "threads": threads}


def write_config(config, run_dir, data_source=None, setup_definition=None):
    """Write the run's ``config.json``: its fields, :func:`provenance`, ``data`` and
    ``setup_definition``.

    ``data_source`` is the data set's ``source`` (:class:`data.Dataset`: what its
    content is, whether its files are the official ones), written as ``data``;
    ``setup_definition`` what the setup's record says
    (:meth:`experiments.records.setups.Setup.definition`): a resumed run is checked
    against both.
    """
    path = os.path.join(run_dir, CONFIG_FILE)
    with writing(path):
        write_json(path, dict(config.to_dict(), data=data_source,
                              setup_definition=setup_definition, **provenance()))


def saved_config(run_dir):
    """A run's ``config.json`` as written (a dict), or None when there is none."""
    saved = read_json(os.path.join(run_dir, CONFIG_FILE))
    return saved if isinstance(saved, dict) else None


def _same_session(a, b):
    return {k: v for k, v in a.items() if k != "first_epoch"} == \
        {k: v for k, v in b.items() if k != "first_epoch"}


def record_machine(run_dir, backend, first_epoch):
    """Add the machine this process trains the run on to ``config.json``'s ``machines``.

    Call it once per process that trains the run, before its first epoch
    (``first_epoch``, 0-based), holding the run's lock.  Each entry is
    ``{"first_epoch", "backend", "machine"`` (:func:`experiments.machine.describe_machine`),
    ``"versions", "theano_flags", "threads"}`` (:func:`provenance`): epoch ``e`` was trained
    as the last entry with ``first_epoch <= e`` says.  Entries from ``first_epoch``
    on are dropped (those epochs are trained again), and none is added when the
    last one says the same, so a run resumed on one machine keeps one entry.
    """
    path = os.path.join(run_dir, CONFIG_FILE)
    values = read_json(path)
    if not isinstance(values, dict):
        return  # written just before by write_config; gone only if removed meanwhile
    entry = dict(first_epoch=first_epoch, backend=backend,
                 machine=machine.describe_machine(backend), **provenance())
    machines = values.get("machines") if isinstance(values.get("machines"), list) else []
    kept = [old for old in machines if isinstance(old, dict)
            and isinstance(old.get("first_epoch"), int) and old["first_epoch"] < first_epoch]
    if kept and _same_session(kept[-1], entry):
        if kept == machines:
            return
    else:
        kept.append(entry)
    with writing(path):
        write_json(path, dict(values, machines=kept))


def describe_machines(machines):
    """What trained a run (``config.json``'s ``machines``), in words, for reports.

    E.g. ``"c backend on AMD EPYC (family 25 model 17), Theano's OpenBLAS 0.3.21
    core Cooperlake"``; several sessions are joined by ``"; from epoch N: "``.
    """
    if not isinstance(machines, list) or not machines:
        return "not recorded"
    texts = []
    for entry in machines:
        entry = entry if isinstance(entry, dict) else {}
        text = "%s backend on %s" % (entry.get("backend"),
                                     machine.machine_text(entry.get("machine"),
                                                          entry.get("backend")))
        if texts:
            text = "from epoch %s: %s" % ((entry.get("first_epoch") or 0) + 1, text)
        texts.append(text)
    return "; ".join(texts)


# -- the data a run was trained on ------------------------------------------------------

#: Contents known to this project: (data set, ``data.datasets.content_digest``) -> what it is.
#: MNIST's is that of the official files (the project's copy is pixel-exact, re-compressed);
#: the CIFAR-10 one is the look-alike the project's machines have (JPEG-derived images,
#: no internet to fetch the official ones), so that no result on it passes for official.
KNOWN_CONTENTS = {
    ("mnist", "52cd6c10ae77107af32269dd9d10ca19c1b749e83235a0c75e2f0729ebeaf141"):
        "the official MNIST content",
    ("cifar10", "d9da3685fc2496d7c2b242942d5eb7ffa3c34f63f391af5015bcf4b5fee02f57"):
        "a CIFAR-10 look-alike (JPEG-derived images, not the official ones)",
}


def describe_data(name, source):
    """What a :class:`data.Dataset`'s ``source`` says, in words, for reports and captions.

    Parameters
    ----------
    name : str
        The data set
    source : dict or None
        Its ``source`` (as recorded in a run's ``config.json``), or None

    Returns
    -------
    str
        E.g. ``"the official MNIST content (files re-compressed: their checksums differ)"``
    """
    if not source:
        return "%s, source not recorded" % name
    known = KNOWN_CONTENTS.get((name, source.get("content")))
    files = source.get("files")
    if known is None:
        text = "%s of unrecognised content (SHA-256 %s...)" % (name,
                                                              str(source.get("content"))[:12])
        return text + (", checksum-verified official files" if files == "official" else "")
    text = known
    if files == "other" and known.startswith("the official"):
        text += " (files re-compressed: their checksums differ)"
    return text


# -- packed runs ----------------------------------------------------------------------------

#: A packed file holds the config.json and history.json of many runs of one setup, one run
#: per line: ``SETUP`` + this suffix, beside other packed files (``make_figures.py --pack``).
PACKED_SUFFIX = ".runs.json"
PACKED_FORMAT = "amsgrad-experiments packed runs 1"


def write_packed(path, runs):
    """Write runs' ``config.json`` and ``history.json`` contents into one file, atomically.

    Parameters
    ----------
    path : str
        Ends with :data:`PACKED_SUFFIX`
    runs : sequence of (dict, dict)
        Each run's config and history, as read from its files
    """
    lines = [json.dumps({"config": config, "history": history}, sort_keys=True,
                        separators=(",", ":")) for config, history in runs]
    text = '{"format":%s,"runs":[\n%s\n]}\n' % (json.dumps(PACKED_FORMAT), ",\n".join(lines))
    atomic_write_bytes(path, text.encode("utf-8"))


def read_packed(path):
    """The ``(config, history)`` dicts of a file written by :func:`write_packed`.

    Raises
    ------
    ValueError
        Saying why the file is not a packed file (unchecked beyond its shape:
        the reader checks each run as it checks a run directory's files)
    """
    contents = load_json(path)
    if not isinstance(contents, dict) or contents.get("format") != PACKED_FORMAT or \
            not isinstance(contents.get("runs"), list):
        raise ValueError("is not a file of packed runs (%r)" % PACKED_FORMAT)
    runs = []
    for index, entry in enumerate(contents["runs"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict) or \
                not isinstance(entry.get("history"), dict):
            raise ValueError("run %d is not {config, history}" % index)
        runs.append((entry["config"], entry["history"]))
    return runs


# -- history.json -----------------------------------------------------------------------

def new_history(curves=CURVES, identity=None):
    """The history of a run with no finished epoch, with the per-epoch lists ``curves``.

    ``identity``, the run's configuration (``RunConfig.to_dict()``), is kept as
    ``identity``: a history copied into another run's directory is refused
    there.  Histories written before 2026-12-05 have none.
    """
    history = {name: [] for name in curves}
    history.update(status="running", diverged_epoch=None)
    if identity is not None:
        history["identity"] = identity
    return history


def history_curves(history):
    """The names of a history's per-epoch lists, in its order."""
    return [name for name, value in history.items() if isinstance(value, list)]


def add_curves(history, curves):
    """Add the ``curves`` a history lacks, ``null`` for each epoch it already has.

    A curve declared after a run started is absent from its earlier epochs, not
    damage: a resumed run records it from its next epoch on.
    """
    done = len(history["loss"])
    for name in curves:
        history.setdefault(name, [None] * done)
    return history


def curves_problem(curves, names):
    """What makes ``curves`` (a dict of per-epoch lists) unusable, or None.

    Each of ``names`` must be a list of numbers (``null`` stands for a missing
    value), all of one length.
    """
    if not isinstance(curves, dict):
        return "a JSON %s, not an object" % type(curves).__name__
    for name in names:
        values = curves.get(name)
        if not isinstance(values, list) or not all(
                value is None or isinstance(value, numbers.Real) and not isinstance(value, bool)
                for value in values):
            return "%r is not a list of numbers" % name
    lengths = {name: len(curves[name]) for name in names}
    if len(set(lengths.values())) > 1:
        return "curves of unequal lengths %s, probably half-written" % lengths
    return None


def history_problem(history, curves=CURVES):
    """What makes a parsed ``history.json`` unusable, or None.

    ``curves`` must be there; any other list in it is a curve too (one
    declared after :data:`CURVES`) and is checked alike.
    """
    if not isinstance(history, dict):
        return "a JSON %s, not an object" % type(history).__name__
    if history.get("status") not in STATUSES:
        return "status %r is not one of %s" % (history.get("status"), ", ".join(STATUSES))
    diverged = history.get("diverged_epoch", None)
    if diverged is not None and not isinstance(diverged, int):
        return "diverged_epoch %r is not an epoch number" % (diverged,)
    extra = [name for name in history_curves(history) if name not in curves]
    return curves_problem(history, tuple(curves) + tuple(extra))


def history_identity_problem(history, config):
    """How a checked history shows it is not ``config``'s run's, or None.

    Histories name their run (``identity``) since 2026-12-05; an older one must
    at least have been trained at the run's learning rate (every schedule's
    first epoch has the rate ``lr``).
    """
    identity = history.get("identity")
    if identity is not None:
        try:
            differences = config.differences(RunConfig.from_dict(identity))
        except (AttributeError, TypeError, UserError) as exc:
            return "names an unreadable run (%s)" % exc
        return ("was written by another run (%s)" % describe_differences(differences)
                if differences else None)
    rates = history.get("lr") or [config.lr]
    if rates[0] is not None and not math.isclose(rates[0], config.lr, rel_tol=1e-6):
        return ("was written by another run (its first epoch's learning rate is %g, this "
                "run's %g)" % (rates[0], config.lr))
    return None


def read_history(path, curves=CURVES):
    """A run's ``history.json``, checked; None when it does not exist.

    Parameters
    ----------
    path : str
    curves : sequence of str
        The curves that must be there (the figures need only four)

    Raises
    ------
    errors.UserError
        When it is not valid JSON or not a run history (keys, types, lengths)
    """
    history = read_json(path)
    problem = None if history is None else history_problem(history, curves)
    if problem is not None:
        raise UserError("%s is not a run history (%s)" % (path, problem))
    return history
