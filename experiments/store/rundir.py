"""
Run directories: their files' names, the statuses of a run, ``config.json`` and provenance.

.. autosummary::
    :nosignatures:

    check_run_dir
    is_legacy
    legacy_note
    check_writable
    make_run_dir
    write_config
    saved_config
    provenance
    record_machine
    describe_machines

A run lives in ``R/SETUP/CELL/run=K/``
(:meth:`experiments.records.config.RunConfig.run_dir`); the names of its files
are here (:data:`CONFIG_FILE`, :data:`HISTORY_FILE`, :data:`CHECKPOINT_FILE`),
as are those of the synthetic job's directory (:data:`SYNTHETIC_DIR`).  Its
``config.json`` holds the :class:`~experiments.records.config.RunConfig`
fields, ``data`` (what the data set's content is and whether its files are
the official ones: :func:`experiments.store.datasource.describe_data`),
:func:`provenance` (``versions``, ``theano_flags``, ``threads``) and
``machines`` (per process that trained it, from which epoch, with which
backend on which machine: :func:`record_machine`).  A directory that holds
another run's ``config.json`` is refused (:func:`check_run_dir`).
"""
import importlib.metadata
import os
import platform
import sys

from errors import UserError
from experiments.records.config import RunConfig, UnknownFields, describe_differences
from experiments.store import machine
from experiments.store.atomic import read_json, write_json, writing
from experiments.store.threads import BLAS_THREAD_VARIABLES, available_cores

__all__ = ["CONFIG_FILE", "HISTORY_FILE", "CHECKPOINT_FILE", "SYNTHETIC_DIR",
           "SYNTHETIC_SUMMARY", "SYNTHETIC_TRAJECTORIES", "STATUSES", "FINISHED",
           "check_run_dir", "check_writable", "is_legacy", "legacy_note", "make_run_dir",
           "write_config", "saved_config", "provenance", "record_machine", "describe_machines"]

CONFIG_FILE, HISTORY_FILE, CHECKPOINT_FILE = "config.json", "history.json", "checkpoint.npz"
#: The synthetic experiment's directory inside a results directory (not a training setup),
#: and its files besides ``config.json``.
SYNTHETIC_DIR = "synthetic"
SYNTHETIC_SUMMARY, SYNTHETIC_TRAJECTORIES = "summary.json", "trajectories.json"
#: A run's ``status``; the :data:`FINISHED` ones are not trained again.
STATUSES = ("running", "complete", "diverged")
FINISHED = ("complete", "diverged")


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
    except UnknownFields as exc:
        raise UserError("%s's config.json %s; resume it with that version, or use another "
                        "--results-dir" % (run_dir, exc))
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
    ``{"first_epoch", "backend", "machine"`` (:func:`experiments.store.machine.describe_machine`),
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
