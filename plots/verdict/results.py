"""
Reading the training runs of a results directory and the original runs' curves.

.. autosummary::
    :nosignatures:

    find_runs
    count_once
    pack_runs
    load_reference
    group_key
    read_synthetic_summary

A run is read from ``R/SETUP/OPTIMIZER_lr=LR_b2=B2_bc=on|off/run=K/``, its
``config.json`` and ``history.json``.  Whatever cannot be read (a half-written
JSON file, a directory that is not a run, a config that does not match its
directory) becomes a :class:`Problem` naming the file and why, and is skipped;
the caller reports the problems and goes on with the rest.  The original runs
(``reference/original_runs.json``) are read into the same :class:`Run` type, so
figures and report treat both alike.

Examples
--------
>>> from plots.verdict.results import find_runs, load_reference
>>> runs, problems = find_runs("results")                      # doctest: +SKIP
>>> reference, reference_problems = load_reference()           # doctest: +SKIP
>>> [run.config.cell_name for run in runs if run.config.setup == "logreg"]  # doctest: +SKIP
['adam_lr=0.001_b2=0.99_bc=on', ...]
"""
import dataclasses
import math
import os
from numbers import Real

import numpy as np

from errors import UserError
from experiments.records.config import RunConfig
from experiments.store.atomic import load_json
from experiments.records.curves import COMPARED
from experiments.store.history import (curves_problem, history_curves, history_identity_problem,
                                       history_problem)
from experiments.store.packed import PACKED_SUFFIX, read_packed, write_packed
from experiments.store.rundir import (CONFIG_FILE, HISTORY_FILE, SYNTHETIC_DIR, is_legacy,
                                      legacy_note)

__all__ = ["Run", "Problem", "find_runs", "count_once", "pack_runs", "figure_stem",
           "load_reference",
           "read_synthetic_summary", "group_key", "CURVES", "DEFAULT_REFERENCE", "SYNTHETIC_DIR"]

#: The per-epoch curves every run must have, in ``history.json`` and in the reference file:
#: those the figures draw and the verdict compares (:data:`experiments.records.curves.COMPARED`).
CURVES = COMPARED
#: The repository's ``reference/original_runs.json`` (this file is plots/verdict/results.py).
DEFAULT_REFERENCE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "reference", "original_runs.json")


@dataclasses.dataclass(frozen=True)
class Problem:
    """A file or directory that was skipped, and why."""
    path: str
    reason: str

    def __str__(self):
        return "%s: %s" % (self.path, self.reason)


@dataclasses.dataclass(frozen=True, eq=False)
class Run:
    """One run's configuration and curves.

    Attributes
    ----------
    config : experiments.records.config.RunConfig
    curves : dict of str -> numpy.ndarray
        ``loss``, ``acc``, ``val_loss``, ``val_acc`` and every other list of the
        history (``lr``, ``epoch_time``, a declared curve's), float64, one value
        per finished epoch (NaN where the file held ``NaN`` or ``null``)
    status : str
        ``running``, ``complete`` or ``diverged``
    source : str
        Where it was read from (a directory, or ``FILE#setup[index]``)
    data : dict or None
        What it was trained on: ``config.json``'s ``data``
        (:func:`experiments.store.datasource.describe_data`); None where not recorded
    machines : list or None
        What trained it: ``config.json``'s ``machines``
        (:func:`experiments.store.rundir.record_machine`); None where not recorded
    """
    config: RunConfig
    curves: dict
    status: str
    source: str
    data: dict = None
    machines: list = None

    @property
    def epochs_done(self):
        return len(self.curves["val_loss"])


def group_key(config):
    """The config of a run with the repetition index and seed set to 0.

    Runs with equal keys are repetitions of the same experiment: same setup,
    cell (optimizer, lr, beta2, bias correction) and protocol (epochs, batch
    size, schedule, loss, beta1, epsilon).  Statistics are taken over them, and
    a reproduced group is compared with the original group of equal key.  Runs
    on common random numbers (``seeding="common"``) are draws of the same
    experiment too: the key sets ``seeding`` to the default.
    """
    return dataclasses.replace(config, run=0, seed=0, seeding="independent")


def _arrays(curves, names=CURVES):
    """The named curves of a checked dict as float64 arrays (``null`` becomes NaN)."""
    return {name: np.array([math.nan if value is None else value for value in curves[name]],
                           dtype=np.float64) for name in names}


def _curves(curves, names=CURVES):
    """:func:`_arrays` of a dict checked first; ValueError saying what makes it unusable."""
    problem = curves_problem(curves, names)
    if problem is not None:
        raise ValueError(problem)
    return _arrays(curves, names)


class _Unreadable(Exception):
    def __init__(self, path, reason):
        super().__init__(path, reason)
        self.problem = Problem(path, reason + "; skipped")


def _config(values, path):
    """The RunConfig of config.json's ``values``; :class:`_Unreadable` naming ``path`` if none."""
    try:
        if not isinstance(values, dict):
            raise ValueError("is not a JSON object")
        return RunConfig.from_dict(values)
    except (ValueError, TypeError, UserError) as exc:
        # TypeError: a required field is missing; UserError: a value out of range.
        raise _Unreadable(path, str(exc))


def _run(config, values, history, source, history_path):
    """The :class:`Run` of a config and its history's contents, checked."""
    try:
        problem = history_problem(history, CURVES) or \
            history_identity_problem(history, config)
        if problem is not None:
            raise ValueError(problem)
        # Every list, checked just above: the report shows any declared curve.
        curves, status = _arrays(history, history_curves(history)), history["status"]
        done = len(curves["val_loss"])
        if done > config.epochs or (status == "complete" and done != config.epochs):
            raise ValueError("has %d epochs with status %r, config.json asks for %d"
                             % (done, status, config.epochs))
    except ValueError as exc:
        raise _Unreadable(history_path, str(exc))
    return Run(config=config, curves=curves, status=status, source=source,
               data=values.get("data"), machines=values.get("machines"))


def _read_run(run_dir):
    """The :class:`Run` in ``run_dir``; raises :class:`_Unreadable` naming the file otherwise."""
    config_path = os.path.join(run_dir, CONFIG_FILE)
    history_path = os.path.join(run_dir, HISTORY_FILE)
    for path in (config_path, history_path):
        if not os.path.isfile(path):
            raise _Unreadable(path, "missing (run not started yet, or not a run directory)")
    try:
        values = load_json(config_path)
    except ValueError as exc:
        raise _Unreadable(config_path, str(exc))
    config = _config(values, config_path)
    # The directory name is derived from the config, never parsed back: a run
    # whose directory does not match its config was moved or is foreign.
    expected = config.run_dir("")
    if "seeding" not in values:  # written before 2026-12-05 (common draws), without the suffix
        expected = dataclasses.replace(config, seeding="independent").run_dir("")
    actual = os.path.join(*os.path.normpath(run_dir).split(os.sep)[-3:])
    if expected != actual:
        if is_legacy(values, config):
            results_dir = os.path.dirname(os.path.dirname(os.path.dirname(run_dir)))
            raise _Unreadable(config_path, legacy_note(config, results_dir))
        raise _Unreadable(config_path, "describes %s, but lies in %s (moved or copied?)"
                          % (expected, actual))
    try:
        history = load_json(history_path)
    except ValueError as exc:
        raise _Unreadable(history_path, str(exc))
    return _run(config, values, history, run_dir, history_path)


def _read_packed(path):
    """The runs of a packed file and the problems of the entries that cannot be read."""
    try:
        entries = read_packed(path)
    except ValueError as exc:
        return [], [Problem(path, "%s; skipped" % exc)]
    runs, problems = [], []
    for index, (values, history) in enumerate(entries):
        source = "%s#%d" % (path, index)
        try:
            runs.append(_run(_config(values, source), values, history, source, source))
        except _Unreadable as exc:
            problems.append(exc.problem)
    return runs, problems


def pack_runs(runs, out_dir):
    """Write the runs read from run directories into one packed file per setup.

    Parameters
    ----------
    runs : list of Run
        From :func:`find_runs`; their ``config.json`` and ``history.json`` are
        read again from their directories (their ``source``)
    out_dir : str
        Gets ``SETUP.runs.json`` per setup and protocol (:func:`figure_stem`;
        :func:`experiments.store.packed.write_packed`), which :func:`find_runs`
        reads as it reads run directories

    Returns
    -------
    list of str
        The files written
    """
    by_name = {}
    for run in runs:
        by_name.setdefault(figure_stem(run.config), []).append(
            tuple(load_json(os.path.join(run.source, name))
                  for name in (CONFIG_FILE, HISTORY_FILE)))
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for name, entries in sorted(by_name.items()):
        paths.append(os.path.join(out_dir, name + PACKED_SUFFIX))
        write_packed(paths[-1], entries)
    return paths


def figure_stem(config):
    """``SETUP``, or ``SETUP_PROTOCOL`` for runs of another protocol than the blog's
    (:attr:`experiments.records.config.RunConfig.protocol_name`): names their files."""
    return "_".join(filter(None, (config.setup, config.protocol_name)))


def _entries(directory):
    """Sorted entries of ``directory`` except hidden files and lock files."""
    return sorted(name for name in os.listdir(directory)
                  if not name.startswith(".") and not name.endswith(".lock"))


def _same_curves(shorter, longer):
    """Whether ``longer``'s curves begin with ``shorter``'s, bit for bit (NaN equal to NaN)."""
    epochs = shorter.epochs_done
    return all(np.array_equal(shorter.curves[name], longer.curves[name][:epochs],
                              equal_nan=True) for name in CURVES)


def _one_of(first, second):
    """Of two readings of one run, the one to count, or None when their histories conflict.

    The same history (curves and status), or one that stopped where the other goes on
    (an older copy, e.g. packed before the run went on), is one run: the longer,
    else the one finished, else the first read, a run directory before a packed copy.
    """
    shorter, longer = sorted((first, second), key=lambda run: run.epochs_done)
    if not _same_curves(shorter, longer):
        return None
    if shorter.epochs_done < longer.epochs_done:
        return longer if shorter.status == "running" else None
    if first.status != second.status:
        finished = [run for run in (first, second) if run.status != "running"]
        return finished[0] if len(finished) == 1 else None
    return second if os.path.isdir(second.source) and not os.path.isdir(first.source) else first


def count_once(runs):
    """Each run once: runs of equal config (a run's identity) read from several places.

    A results directory can hold a run twice: its directory and a packed copy
    (``make_figures.py --pack`` into the results directory itself), or two
    copies of a packed file.  Counting both would weigh the run twice in every
    mean and figure.

    Returns
    -------
    runs : list of Run
        In the order read, one per config (see :func:`_one_of` for which)
    problems : list of Problem
        One per reading not counted: a copy of a counted run, or a different
        history of the same run (then no reading of that run is counted)
    """
    kept, problems, conflicts = {}, [], {}
    for run in runs:
        if run.config in conflicts:
            problems.append(Problem(run.source, "another history of the run %s also holds; "
                                                "not counted" % conflicts[run.config]))
            continue
        other = kept.get(run.config)
        if other is None:
            kept[run.config] = run
            continue
        chosen = _one_of(other, run)
        if chosen is None:
            del kept[run.config]
            conflicts[run.config] = other.source
            problems.append(Problem(run.source, "holds another history of the run in %s (same "
                                                "config.json): neither is counted; remove the "
                                                "wrong one" % other.source))
            continue
        dropped = run if chosen is other else other
        kept[run.config] = chosen
        problems.append(Problem(dropped.source, "the same run as %s%s; counted once" % (
            chosen.source, " (an older copy: %d of its %d epochs)"
            % (dropped.epochs_done, chosen.epochs_done)
            if dropped.epochs_done < chosen.epochs_done else "")))
    order = {id(run): index for index, run in enumerate(runs)}
    return sorted(kept.values(), key=lambda run: order[id(run)]), problems


def find_runs(results_dir):
    """Read every run in a results directory.

    Parameters
    ----------
    results_dir : str
        A directory laid out as ``SETUP/CELL/run=K/{config.json, history.json}``
        (``synthetic/`` is skipped: it is not a training setup), or holding
        ``SETUP.runs.json`` files of packed runs (:func:`pack_runs`), or both

    Returns
    -------
    runs : list of Run
        The runs that could be read, in directory order, each once
        (:func:`count_once`: a run directory and a packed copy of it are one run)
    problems : list of Problem
        Everything skipped, with the reason

    Raises
    ------
    errors.UserError
        If ``results_dir`` does not exist or is not a directory.
    """
    if os.path.exists(results_dir) and not os.path.isdir(results_dir):
        raise UserError("results directory %s is a file, not a directory; pass the directory "
                        "experiments/run.py wrote (--results-dir)" % results_dir)
    if not os.path.isdir(results_dir):
        raise UserError("results directory %s does not exist; train some runs first "
                        "(experiments/run.py) or pass --results-dir" % results_dir)
    runs, problems = [], []
    not_a_run = "not part of the results layout SETUP/CELL/run=K/; skipped"
    for setup in _entries(results_dir):
        setup_dir = os.path.join(results_dir, setup)
        if setup == SYNTHETIC_DIR:
            continue
        if setup.endswith(PACKED_SUFFIX) and os.path.isfile(setup_dir):
            packed_runs, packed_problems = _read_packed(setup_dir)
            runs += packed_runs
            problems += packed_problems
            continue
        if not os.path.isdir(setup_dir):
            problems.append(Problem(setup_dir, not_a_run))
            continue
        for cell in _entries(setup_dir):
            cell_dir = os.path.join(setup_dir, cell)
            if not os.path.isdir(cell_dir):
                problems.append(Problem(cell_dir, not_a_run))
                continue
            for run in _entries(cell_dir):
                run_dir = os.path.join(cell_dir, run)
                if not os.path.isdir(run_dir):
                    problems.append(Problem(run_dir, not_a_run))
                    continue
                try:
                    runs.append(_read_run(run_dir))
                except _Unreadable as exc:
                    problems.append(exc.problem)
    runs, repeated = count_once(runs)
    return runs, problems + repeated


def load_reference(path=DEFAULT_REFERENCE):
    """Read the original runs' curves.

    Parameters
    ----------
    path : str
        ``reference/original_runs.json`` of this repository by default; the
        format is ``{setup: [{"optimizer", "lr", "beta2", "bias_correction",
        "run", "epochs", "curves": {...}}, ...]}`` (see ``reference/README.md``)

    Returns
    -------
    reference : dict of str -> list of Run
        The original runs per setup, status ``complete``, with the original
        protocol (batch 128, linear decay, categorical cross-entropy, beta1 0.9,
        epsilon 1e-8; the defaults of :class:`experiments.records.config.RunConfig`)
    problems : list of Problem
        Entries that could not be read (or the whole file if it is missing)
    """
    try:
        contents = load_json(path)
        if not isinstance(contents, dict):
            raise ValueError("is not a JSON object {setup: [run, ...]}")
    except ValueError as exc:
        return {}, [Problem(path, "%s; figures and report go on without the original runs" % exc)]
    reference, problems = {}, []
    fields = ("optimizer", "lr", "beta2", "bias_correction", "run")
    for setup, entries in sorted(contents.items()):
        for index, entry in enumerate(entries if isinstance(entries, list) else [entries]):
            source = "%s#%s[%d]" % (path, setup, index)
            try:
                if not isinstance(entry, dict) or not isinstance(entry.get("curves"), dict):
                    raise ValueError("is not a run with 'curves'")
                curves = _curves(entry["curves"])
                config = RunConfig(setup=setup, epochs=len(curves["val_loss"]),
                                   **{name: entry[name] for name in fields})
            except (ValueError, KeyError, UserError) as exc:
                problems.append(Problem(source, "%s; skipped" % exc))
                continue
            reference.setdefault(setup, []).append(
                Run(config=config, curves=curves, status="complete", source=source))
    return reference, problems


def read_synthetic_summary(path):
    """The synthetic experiment's ``summary.json``, checked.

    Returns
    -------
    dict
        ``{setting: {optimizer: {"final_x": float, "avg_regret": float, "steps": int}}}``

    Raises
    ------
    ValueError
        Saying what is wrong with the file (half-written, another format).
    """
    summary = load_json(path)
    if not isinstance(summary, dict) or not summary:
        raise ValueError("is not a JSON object {setting: {optimizer: {...}}}")
    for setting, optimizers in summary.items():
        if not isinstance(optimizers, dict):
            raise ValueError("%r is not an object {optimizer: {...}}" % setting)
        for optimizer, values in optimizers.items():
            if not isinstance(values, dict) or not all(
                    isinstance(values.get(name), Real) and not isinstance(values.get(name), bool)
                    for name in ("final_x", "avg_regret", "steps")):
                raise ValueError("%s/%s lacks the numbers final_x, avg_regret, steps"
                                 % (setting, optimizer))
    return summary
