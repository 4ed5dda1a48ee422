"""
A run's life, whoever takes its steps: lock, open, identity, restore, record, finish.

.. autosummary::
    :nosignatures:

    open_run
    RunLife
    RunOutcome
    progress_writer

Training a run alone (:func:`experiments.training.alone.train_run`) and in a batch
(:func:`experiments.training.batched.train_batch`) differ only in how the
steps are taken.  Everything else a run goes through is here, once::

    with open_run(config, results_dir, stop_after, say) as life:
        if life.outcome is not None:        # busy, finished, or at stop_after
            return life.outcome
        life.begin(dataset)                 # config.json of a new run
        life.restore(program)               # the checkpoint into the run's state
        for epoch in life.epochs():
            ...                             # the steps of the epoch
            life.record_epoch(epoch, train, val, seconds)   # or life.diverged(...)
        return life.finish()

The run's files go through :mod:`experiments.store` (layout, atomic
writes, the lock) and :mod:`experiments.store.checkpoint` (the state).  Damage is
handled when a run is opened: leftover temporary files of an interrupted
write are removed; a ``history.json`` that is not a valid history is rebuilt
from the checkpoint; a damaged checkpoint stops the run with a message, or
with ``restart_corrupt`` is moved aside to ``checkpoint.npz.corrupt`` (``.corrupt.2``,
... when that is taken) and the run trains again from epoch 0.
"""
import contextlib
import dataclasses
import os
from typing import Optional

import numpy as np
from tqdm import tqdm

import data
from errors import UserError
from experiments.records import curves, schedule, setups
from experiments.records.config import RunConfig, describe_differences
from experiments.store.atomic import (move_aside, remove_error_log, remove_stale_temporaries,
                                      write_json, writing)
from experiments.store.checkpoint import (CorruptCheckpoint, checkpoint_history, load_checkpoint,
                                          save_checkpoint, saved_history)
from experiments.store.history import (add_curves, history_curves, history_identity_problem,
                                       new_history, read_history)
from experiments.store.lock import RunLocked, run_lock
from experiments.store.rundir import (CHECKPOINT_FILE, FINISHED, HISTORY_FILE, check_run_dir,
                                      make_run_dir, record_machine, saved_config, write_config)

__all__ = ["open_run", "RunLife", "RunOutcome", "progress_writer"]


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """What training a run did.

    status : str
        ``complete``, ``diverged``, ``stopped`` (reached ``stop_after``, can be
        continued) or ``busy`` (another process holds the run's lock; nothing done)
    run_dir : str
        The run's directory
    epochs_done : int or None
        Finished epochs in the run's history (None when busy)
    epochs_trained : int
        Epochs trained by this call
    compile_seconds : float or None
        Seconds this call spent compiling the run's functions (for the JAX
        backend including XLA's compilations at the first calls, those calls'
        run included); None when it compiled nothing.  Not compared.
    """
    status: str
    run_dir: str
    epochs_done: Optional[int]
    epochs_trained: int
    compile_seconds: Optional[float] = dataclasses.field(default=None, compare=False)


def progress_writer(progress):
    """Where a run's lines go: above the progress bars, or nowhere."""
    return tqdm.write if progress else (lambda line: None)


@contextlib.contextmanager
def open_run(config, results_dir, stop_after=None, say=None, restart_corrupt=False):
    """Lock and open a run for the ``with`` block.

    Parameters
    ----------
    config : RunConfig
    results_dir : str
        The run lives in ``config.run_dir(results_dir)``
    stop_after : int or None
        The last epoch to train this time (None: the run's end)
    say : callable or None
        Takes the run's lines (:func:`progress_writer`); None: silent
    restart_corrupt : bool
        Move a damaged checkpoint aside and train the run again from epoch 0,
        instead of raising errors.UserError

    Yields
    ------
    RunLife
        Its ``outcome`` is set when there is nothing to train: ``busy``
        (another process holds the lock), or the run is finished or has
        reached ``stop_after``

    Raises
    ------
    errors.UserError
        When the directory cannot be written, holds another run, or its files
        are damaged beyond repair (see the module docstring)
    """
    say = say or (lambda line: None)
    run_dir = config.run_dir(results_dir)
    make_run_dir(run_dir)
    with contextlib.ExitStack() as lock:
        try:
            lock.enter_context(run_lock(run_dir))
        except RunLocked:
            say("%s: another process is training this run; skipping it" % run_dir)
            yield RunLife(config, run_dir, say, restart_corrupt,
                          outcome=RunOutcome("busy", run_dir, None, 0))
            return
        life = RunLife(config, run_dir, say, restart_corrupt)
        life.open(results_dir, stop_after)
        yield life
        if life.outcome is not None:  # the try ended well: an earlier one's error is history
            remove_error_log(run_dir)


class RunLife:
    """One run, locked: its files from opening to its outcome (see :func:`open_run`)."""

    def __init__(self, config, run_dir, say, restart_corrupt, outcome=None):
        self.config, self.run_dir, self.say = config, run_dir, say
        self.restart_corrupt = restart_corrupt
        self.outcome = outcome
        self.history_path = os.path.join(run_dir, HISTORY_FILE)
        self.checkpoint_path = os.path.join(run_dir, CHECKPOINT_FILE)
        self.schedule = schedule.get(config.lr_schedule)
        self.history, self.last_epoch, self.is_new = None, None, None
        self.first_epoch, self.program, self.batches_per_epoch = None, None, None

    # -- opening ------------------------------------------------------------------------

    def open(self, results_dir, stop_after):
        """Clean up, check and read the run; set ``outcome`` when there is nothing to train."""
        config, run_dir = self.config, self.run_dir
        for name in remove_stale_temporaries(run_dir):
            self.say("%s: removed %s, left by an interrupted write" % (run_dir, name))
        self.is_new = not check_run_dir(config, results_dir)
        self.history = self._checked_history(self._history_or_rebuilt())
        self.last_epoch = config.epochs if stop_after is None else min(stop_after, config.epochs)
        done = len(self.history["loss"])
        if self.history["status"] in FINISHED or done >= self.last_epoch:
            status = "stopped" if self.history["status"] == "running" else self.history["status"]
            self.say("%s: %s after %d epochs; nothing to do" % (run_dir, status, done))
            self.outcome = RunOutcome(status, run_dir, done, 0)

    def _history_or_rebuilt(self):
        # A damaged history.json is rebuilt from the checkpoint, which holds the same
        # history (the epochs it covers are the ones a resumed run trusts); with both
        # damaged, restart_corrupt trains the run again (the checkpoint is moved aside later).
        try:
            return read_history(self.history_path) or new_history()
        except UserError as exc:
            damage = exc
        if not os.path.exists(self.checkpoint_path):
            raise UserError("%s; there is no checkpoint to rebuild it from: delete it to train "
                            "this run from epoch 0" % damage)
        try:
            history = checkpoint_history(self.checkpoint_path, self._check_identity)
        except CorruptCheckpoint as exc:
            if self.restart_corrupt:
                self.say("%s, and %s; training the run again from epoch 0" % (damage, exc))
                return new_history()
            raise UserError("%s, and %s; run the same command with --restart-corrupt (or "
                            "delete both) to train this run from epoch 0" % (damage, exc))
        self._write_history(history)
        self.say("%s; rebuilt it from %s (%d epochs)" % (damage, self.checkpoint_path,
                                                         len(history["loss"])))
        return history

    def _checked_history(self, history):
        """``history`` if it is this run's and agrees with the checkpoint, else the
        checkpoint's (written to ``history.json``, said in one line)."""
        problem = history_identity_problem(history, self.config)
        done = len(history["loss"])
        if problem is None and history["status"] == "complete" and done != self.config.epochs:
            problem = "says complete after %d of %d epochs" % (done, self.config.epochs)
        if not os.path.exists(self.checkpoint_path):
            if problem:
                raise UserError("%s %s; put it back into its own run directory, or delete it "
                                "to train this run from epoch 0" % (self.history_path, problem))
            return history
        try:
            saved, identity = saved_history(self.checkpoint_path)
        except CorruptCheckpoint:
            return history  # restoring says what to do about it
        self._check_identity(identity)
        problem = problem or _disagreement(history, saved)
        if problem is None:
            return history
        self._write_history(saved)
        self.say("%s %s; rebuilt it from %s (%d epochs)" % (
            self.history_path, problem, self.checkpoint_path, len(saved["loss"])))
        return saved

    def _check_identity(self, identity):
        # The checkpoint's saved configuration against this run's, through RunConfig: a
        # field added since it was saved takes its default.  Checkpoints from before
        # checkpoints carried an identity have none: they are accepted.
        if identity is None:
            return
        try:
            differences = self.config.differences(RunConfig.from_dict(identity))
        except (AttributeError, TypeError, UserError) as exc:
            differences = {"identity": ("this run's", "unreadable (%s)" % exc)}
        if differences:
            raise UserError(
                "checkpoint %s was written by another run (%s); put it back into its own run "
                "directory, or delete it to train this run from epoch 0"
                % (self.checkpoint_path, describe_differences(differences)))

    # -- starting -----------------------------------------------------------------------

    def begin(self, dataset):
        """The data is loaded: write a new run's ``config.json`` (with the data's source
        and the setup's definition), or check a started run's against them.

        Raises
        ------
        errors.UserError
            When a started run recorded other data, or another definition of its setup
        """
        self.batches_per_epoch = data.num_batches(len(dataset.train_y), self.config.batch_size)
        source = getattr(dataset, "source", None)
        definition = setups.get(self.config.setup).definition()
        if self.is_new:
            write_config(self.config, self.run_dir, source, definition)
            return
        saved = saved_config(self.run_dir) or {}
        recorded = (saved.get("data") or {}).get("content")
        if recorded and source and source.get("content") != recorded:
            raise UserError(
                "%s was trained on data of content SHA-256 %s, but the data set now has %s; "
                "resume it on the data it started with, or delete the run directory to train "
                "it on this data" % (self.run_dir, recorded, source.get("content")))
        if saved.get("setup_definition") not in (None, definition):
            changed = sorted(key for key in definition
                             if saved["setup_definition"].get(key) != definition[key])
            raise UserError(
                "%s was trained with another definition of setup %s (%s: %s then, %s now); "
                "register the setup as it was, or train under another setup name" % (
                    self.run_dir, self.config.setup, ", ".join(changed),
                    [saved["setup_definition"].get(key) for key in changed],
                    [definition[key] for key in changed]))

    def restore(self, program):
        """Restore the checkpoint (if any) into ``program``'s state and batch generator.

        ``program`` has ``state`` (the shared variables, in graph order),
        ``batch_rng``, ``curves`` (the per-epoch lists it records) and
        ``backend`` (recorded with this machine in ``config.json``'s ``machines``).
        Returns the run's history so far.
        """
        self.program = program
        history = _kept(self._restored(program), self.history)
        # A curve declared since the history was written is recorded from now on.
        add_curves(history, program.curves)
        history.setdefault("identity", self.config.to_dict())
        self.history, self.first_epoch = history, len(history["loss"])
        record_machine(self.run_dir, program.backend, self.first_epoch)
        # history.json may lag the checkpoint by one epoch (killed between the two writes).
        self._write_history(history)
        return history

    def _restored(self, program):
        if not os.path.exists(self.checkpoint_path):
            return new_history(program.curves, self.config.to_dict())
        try:
            return load_checkpoint(self.checkpoint_path, program.state, program.batch_rng,
                                   check_identity=self._check_identity)
        except CorruptCheckpoint as exc:
            if not self.restart_corrupt:
                raise UserError("%s; run the same command with --restart-corrupt to move it "
                                "aside and train this run again from epoch 0" % exc)
            with writing(self.checkpoint_path + ".corrupt"):
                # A checkpoint moved aside before is kept: .corrupt.2, .corrupt.3, ...
                moved = move_aside(self.checkpoint_path, ".corrupt")
            self.say("%s; moved it to %s, training the run again from epoch 0" % (exc, moved))
            return new_history(program.curves, self.config.to_dict())

    # -- epochs -------------------------------------------------------------------------

    def epochs(self):
        """The 0-based numbers of the epochs to train."""
        return range(self.first_epoch, self.last_epoch)

    def base_rate(self, epoch):
        """The learning rate the schedule sets before ``epoch``'s (0-based) first update."""
        return self.schedule.base_rate(self.config.lr, epoch, self.config.epochs)

    def record_epoch(self, epoch, train, val, seconds):
        """Append a finished epoch to the history, write the checkpoint and the history.

        Parameters
        ----------
        epoch : int
            0-based
        train : dict of str -> sequence
            Each training output's values over the epoch's minibatches
        val : dict of str -> float
            Each validation output's mean over the validation batches
        seconds : float
            The epoch's wall time, validation included
        """
        config, history = self.config, self.history
        values = {name: np.mean(minibatches, dtype=np.float64)
                  for name, minibatches in train.items()}
        values.update(("val_" + name, mean) for name, mean in val.items())
        values["lr"] = self.schedule.epoch_rate(config.lr, epoch, config.epochs,
                                                self.batches_per_epoch)
        values["epoch_time"] = seconds
        for name in history_curves(history):
            value = values.get(name)
            history[name].append(None if value is None else float(value))
        if epoch + 1 == config.epochs:
            history["status"] = "complete"
        # The checkpoint first: it is what a resumed run trusts.
        with writing(self.checkpoint_path):
            save_checkpoint(self.checkpoint_path, self.program.state, self.program.batch_rng,
                            history, config.to_dict())
        self._write_history(history)
        self.say(self._epoch_line(epoch))

    def _epoch_line(self, epoch):
        config, history = self.config, self.history
        return "%s %s run=%d epoch %d/%d: %s" % (config.setup, config.cell_name, config.run,
                                                 epoch + 1, config.epochs,
                                                 curves.epoch_text(history))

    # -- the end ------------------------------------------------------------------------

    def diverged(self, epoch, loss, compile_seconds=None):
        """The training loss became ``loss`` (NaN or infinite) in ``epoch`` (0-based).

        Marks the run ``diverged``; the checkpoint and the history's lists keep
        the last finished epoch.  Returns the :class:`RunOutcome`.
        """
        self.say("%s: the training loss became %s in epoch %d; marked diverged"
                 % (self.run_dir, loss, epoch + 1))
        self.history.update(status="diverged", diverged_epoch=epoch + 1)
        self._write_history(self.history)
        self.outcome = RunOutcome("diverged", self.run_dir, epoch, epoch - self.first_epoch,
                                  compile_seconds)
        return self.outcome

    def finish(self, compile_seconds=None):
        """The outcome of a run trained up to its last epoch of this time."""
        status = "complete" if self.history["status"] == "complete" else "stopped"
        self.outcome = RunOutcome(status, self.run_dir, self.last_epoch,
                                  self.last_epoch - self.first_epoch, compile_seconds)
        return self.outcome

    def _write_history(self, history):
        with writing(self.history_path):
            write_json(self.history_path, history)


def _kept(restored, read):
    """``restored`` (the checkpoint's history) with what ``read`` (history.json's) has beside
    it: keys a newer version or a user wrote are kept, not dropped by a resume.  A list is a
    curve: cut or filled with ``null`` to the restored epochs."""
    done = len(restored["loss"])
    for key, value in (read or {}).items():
        if key not in restored:
            restored[key] = (value[:done] + [None] * (done - len(value))
                             if isinstance(value, list) else value)
    return restored


def _disagreement(history, saved):
    """How ``history`` (``history.json``) contradicts ``saved`` (the checkpoint's), or None.

    The checkpoint is written first, so ``history.json`` may lag it by one
    epoch (a process killed between the two writes); otherwise they hold the
    same epochs, and the history's status follows from them.
    """
    done, kept = len(history["loss"]), len(saved["loss"])
    if not kept - 1 <= done <= kept:
        return "holds %d epochs where the checkpoint has %d" % (done, kept)
    for name in history_curves(saved):
        if name != "epoch_time" and history.get(name, [])[:done] != saved[name][:done]:
            return "differs from the checkpoint in %r" % name
    if history["status"] == "complete" and saved["status"] != "complete":
        return "says complete after %d epochs, the checkpoint does not" % done
    return None
