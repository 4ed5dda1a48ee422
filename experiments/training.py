"""
The training loop: one function trains one run, from its start or its last checkpoint.

.. autosummary::
    :nosignatures:

    train_run
    compile_functions
    validate
    RunOutcome

:func:`train_run` is the only code that trains: the command line
(``experiments/run.py``), grids and workers all call it with a
:class:`~experiments.config.RunConfig`.  The setup's record
(:mod:`experiments.setups`) gives the data, the network and the augmentation,
the schedule's record (:mod:`experiments.schedule`) the learning rate of each
epoch.  It writes the run's directory ``R/SETUP/CELL/run=K/`` through the run
store (:mod:`experiments.runstore`, which owns the layout):

- ``config.json``: the config's fields, plus ``data`` (the data set's
  ``source``: the SHA-256 of its decoded content and whether its files are the
  official ones, written once the data is loaded), ``versions`` (Python and
  package versions), ``theano_flags`` and ``threads`` (the OpenMP / BLAS
  thread variables and the cores available when the run started: results are
  bit-identical only at the same thread counts);
- ``history.json``: per finished epoch, the lists ``loss``, ``acc`` (means of
  the training minibatches' values, computed in the update's pass), ``val_loss``,
  ``val_acc`` (after the epoch, deterministic pass, mean over validation
  batches of 1024), ``lr`` (the learning rate of the epoch's first update) and
  ``epoch_time`` (seconds of wall time, validation included); ``status``
  (``running``, ``complete`` or ``diverged``) and ``diverged_epoch`` (the
  1-based number of the epoch in which the training loss became NaN or
  infinite, or null; the lists hold only the epochs before it);
- ``checkpoint.npz``: everything needed to continue (see
  :mod:`experiments.checkpoint`) and the run's configuration (its identity: a
  checkpoint is refused by any other run), written after every epoch;
- ``.lock``: held while a process trains the run.

A run resumed from its checkpoint produces exactly the curves of an
uninterrupted run (at the same thread counts): the checkpoint holds every
shared variable of the compiled functions and the batch generator's state,
and the model is rebuilt from the same seeds before they are restored.

Damage is handled when a run is opened: leftover temporary files of an
interrupted write are removed; a ``history.json`` that is not a valid history
is rebuilt from the checkpoint; a damaged checkpoint stops the run with a
message, or with ``restart_corrupt`` is moved aside to
``checkpoint.npz.corrupt`` and the run trains again from epoch 0.  A write
that fails (a full disk) stops the run with a message; the files of the last
finished epoch are kept, so the same command resumes once there is space.

Examples
--------
>>> from experiments.config import RunConfig
>>> from experiments.training import train_run
>>> config = RunConfig(setup="logreg", optimizer="amsgrad", lr=0.001, beta2=0.99,
...                    bias_correction=False, run=0)
>>> outcome = train_run(config, "results", stop_after=2)   # doctest: +SKIP
>>> outcome.status                                          # doctest: +SKIP
'stopped'
"""
import collections
import os
import time

import compat  # noqa: F401  (Theano flags and Lasagne shims before lasagne)
import lasagne
import numpy as np
import theano
import theano.tensor as T
from tqdm import tqdm

import amsgrad
import backends
import data
from errors import UserError
from experiments import runstore, schedule, setups
from experiments.checkpoint import (CorruptCheckpoint, checkpoint_history, load_checkpoint,
                                    save_checkpoint)
from experiments.config import RunConfig, describe_differences, run_seeds
from experiments.runstore import (CHECKPOINT_FILE, HISTORY_FILE, RunLocked, check_run_dir,
                                  read_history, run_lock, write_json, writing)

__all__ = ["train_run", "check_run_dir", "read_history", "compile_functions", "validate",
           "RunOutcome", "CLIP"]

#: Predictions are clipped to [CLIP, 1 - CLIP] before the logarithm, as in the original.
CLIP = 1e-7
VAL_BATCH_SIZE = 1024


class RunOutcome(collections.namedtuple("RunOutcome",
                                        "status run_dir epochs_done epochs_trained")):
    """What :func:`train_run` did.

    status : ``complete``, ``diverged``, ``stopped`` (reached ``stop_after``, can be
        continued) or ``busy`` (another process holds the run's lock; nothing done)
    run_dir : the run's directory
    epochs_done : finished epochs in the run's history
    epochs_trained : epochs trained by this call

    Also the attribute ``compile_seconds`` (not a field, so not compared): seconds
    this call spent compiling the training and validation functions (for the JAX
    backend including XLA's compilations at the first call of each batch shape,
    that call's run included), or None when it compiled nothing.
    """

    compile_seconds = None

    def with_compile_seconds(self, seconds):
        """This outcome, with ``compile_seconds`` set."""
        self.compile_seconds = seconds
        return self


def _loss_and_accuracy(prediction, targets, loss, num_classes):
    clipped = T.clip(prediction, CLIP, 1 - CLIP)
    if loss == "categorical":
        loss_expr = T.nnet.categorical_crossentropy(clipped, targets).mean()
    else:
        # The reproduction study's multiclass log-loss: a binary cross-entropy per class.
        one_hot = T.extra_ops.to_one_hot(targets, num_classes, dtype=theano.config.floatX)
        loss_expr = T.nnet.binary_crossentropy(clipped, one_hot).sum(axis=1).mean()
    accuracy = T.mean(T.eq(T.argmax(prediction, axis=1), targets), dtype=theano.config.floatX)
    return loss_expr, accuracy


def compile_functions(output_layer, config, num_classes, backend="c"):
    """Compile a run's training and validation functions.

    Parameters
    ----------
    output_layer : lasagne layer
        The network, ending in softmax probabilities
    config : RunConfig
        Optimizer, its constants, learning rate schedule and loss
    num_classes : int
    backend : {'c', 'jax'}
        What runs them (see :func:`backends.compile_function`)

    Returns
    -------
    train_fn : theano function
        ``train_fn(x, y) -> (loss, accuracy)`` of the minibatch, computed with
        the parameters before the update it applies
    val_fn : theano function
        ``val_fn(x, y) -> (loss, accuracy)``, deterministic pass, no update
    base_rate : shared scalar
        The learning rate the schedule sets before each epoch
    """
    input_layer = lasagne.layers.get_all_layers(output_layer)[0]
    inputs = T.TensorType(theano.config.floatX, (False,) * len(input_layer.shape))("inputs")
    targets = T.ivector("targets")

    train_prediction = lasagne.layers.get_output(output_layer, inputs, deterministic=False)
    train_loss, train_accuracy = _loss_and_accuracy(train_prediction, targets, config.loss,
                                                    num_classes)
    base_rate = theano.shared(np.asarray(config.lr, dtype=theano.config.floatX),
                              name="learning_rate")
    rate, schedule_updates = schedule.get(config.lr_schedule).expression(base_rate)
    params = lasagne.layers.get_all_params(output_layer, trainable=True)
    update_rule = getattr(amsgrad, config.optimizer)
    updates = update_rule(train_loss, params, learning_rate=rate, beta1=config.beta1,
                          beta2=config.beta2, epsilon=config.epsilon,
                          bias_correction=config.bias_correction)
    updates.update(schedule_updates)
    train_fn = backends.compile_function([inputs, targets], [train_loss, train_accuracy],
                                         updates=updates, backend=backend)

    val_prediction = lasagne.layers.get_output(output_layer, inputs, deterministic=True)
    val_loss, val_accuracy = _loss_and_accuracy(val_prediction, targets, config.loss, num_classes)
    val_fn = backends.compile_function([inputs, targets], [val_loss, val_accuracy],
                                       backend=backend)
    return train_fn, val_fn, base_rate


def _state_variables(*functions):
    # Every shared variable a function reads or updates, each once, in graph order:
    # rebuilding the same model gives the same order.
    seen, variables = set(), []
    for function in functions:
        for variable in function.get_shared():
            if id(variable) not in seen:
                seen.add(id(variable))
                variables.append(variable)
    return variables


def _history_or_rebuilt(config, history_path, checkpoint_path, say, restart_corrupt):
    # A damaged history.json is rebuilt from the checkpoint, which holds the same
    # history (the epochs it covers are the ones a resumed run trusts); with both
    # damaged, restart_corrupt trains the run again (the checkpoint is moved aside later).
    try:
        return read_history(history_path) or runstore.new_history()
    except UserError as exc:
        damage = exc
    if not os.path.exists(checkpoint_path):
        raise UserError("%s; there is no checkpoint to rebuild it from: delete it to train "
                        "this run from epoch 0" % damage)
    try:
        history = checkpoint_history(checkpoint_path, _identity_check(config, checkpoint_path))
    except CorruptCheckpoint as exc:
        if restart_corrupt:
            say("%s, and %s; training the run again from epoch 0" % (damage, exc))
            return runstore.new_history()
        raise UserError("%s, and %s; run the same command with --restart-corrupt (or delete "
                        "both) to train this run from epoch 0" % (damage, exc))
    with writing(history_path):
        write_json(history_path, history)
    say("%s; rebuilt it from %s (%d epochs)" % (damage, checkpoint_path, len(history["loss"])))
    return history


def validate(function, dataset):
    """The means of ``function(x, y)``'s outputs over the validation batches (1024 each).

    ``function`` is a validation function, or a batch's called on the same
    batches for every run (then each mean has one value per run).
    """
    batches = data.iterate_val_batches(dataset.val_x, dataset.val_y, VAL_BATCH_SIZE)
    values = np.array([function(x, y) for x, y in batches], dtype=np.float64)
    return values.mean(axis=0)


def _epoch_line(config, epoch, history):
    return ("%s %s run=%d epoch %d/%d: loss %.4f acc %.4f val_loss %.4f val_acc %.4f "
            "lr %.3g (%.1f s)" % (config.setup, config.cell_name, config.run, epoch + 1,
                                  config.epochs, history["loss"][-1], history["acc"][-1],
                                  history["val_loss"][-1], history["val_acc"][-1],
                                  history["lr"][-1], history["epoch_time"][-1]))


def train_run(config, results_dir, data_dir=None, stop_after=None, dataset=None,
              build_model=None, progress=True, backend="c", restart_corrupt=False):
    """Train one run from its start or its last checkpoint, up to its end or ``stop_after``.

    Parameters
    ----------
    config : RunConfig
        The run
    results_dir : str
        Root of the results; the run lives in ``config.run_dir(results_dir)``
    data_dir : str or None
        Where the data set is (``data.load_dataset``'s default when None);
        unused when ``dataset`` is given
    stop_after : int or None
        Stop once this many epochs of the ``config.epochs``-long schedule are
        done; calling again with a larger value (or None) continues the run
    dataset : data.Dataset or None
        The data to train on, already loaded; by default the setup's
        (:meth:`experiments.setups.Setup.load`)
    build_model : callable or None
        ``build_model(input_shape, num_classes) -> output layer``; by default
        the setup's network (:meth:`experiments.setups.Setup.build`)
    progress : bool
        Show a progress bar per epoch and print one line per epoch (and one
        with the compile time)
    backend : {'c', 'jax'}
        What runs the compiled functions (:func:`backends.compile_function`).
        An execution choice, not part of the run's identity: a run started
        with one backend can be continued with the other.
    restart_corrupt : bool
        When the run's checkpoint is damaged (cannot be read): move it aside
        to ``checkpoint.npz.corrupt`` and train the run again from epoch 0,
        instead of raising errors.UserError

    Returns
    -------
    RunOutcome

    Raises
    ------
    errors.UserError
        When the run directory cannot be written (also a full disk: the last
        finished epoch is kept), holds a run with a different configuration,
        its checkpoint is damaged (without ``restart_corrupt``), was written
        by another run or does not match the model; an unknown backend, or
        ``"jax"`` without JAX installed

    Notes
    -----
    A run whose history says ``complete`` or ``diverged`` is not trained
    again.  A run whose lock another process holds is skipped (status
    ``busy``), so several commands can work through the same grid.  Seeds come
    from :func:`experiments.config.run_seeds`.
    """
    backends.check_backend(backend)
    run_dir = config.run_dir(results_dir)
    runstore.make_run_dir(run_dir)
    say = tqdm.write if progress else (lambda line: None)
    try:
        with run_lock(run_dir):
            opened = _open_run(config, results_dir, stop_after, say, restart_corrupt)
            if opened[0] is None:
                return opened[1]  # nothing to do: the outcome
            history, last_epoch, is_new = opened
            setup = setups.get(config.setup)
            if dataset is None:
                dataset = setup.load(config, data_dir)
            if is_new:
                _write_new_config(config, run_dir, dataset)
            trainer = _Trainer(config, run_dir, dataset, build_model or setup.build, backend,
                               say)
            return trainer.train(last_epoch, setup.flip_lr, restart_corrupt, progress)
    except RunLocked:
        if progress:
            tqdm.write("%s: another process is training this run; skipping it" % run_dir)
        return RunOutcome("busy", run_dir, None, 0)


def _jit_seconds(*functions):
    # The JAX backend's functions time the calls that compiled (see backends.jax_linker).
    return sum(sum(getattr(function.fn, "compile_seconds", ())) for function in functions)


def _identity_check(config, checkpoint_path):
    # The checkpoint's saved configuration against this run's, through RunConfig: a
    # field added since it was saved takes its default.  Checkpoints from before
    # checkpoints carried an identity have none: they are accepted.
    def check(identity):
        if identity is None:
            return
        try:
            differences = config.differences(RunConfig.from_dict(identity))
        except (AttributeError, TypeError, UserError) as exc:
            differences = {"identity": ("this run's", "unreadable (%s)" % exc)}
        if differences:
            raise UserError(
                "checkpoint %s was written by another run (%s); put it back into its own run "
                "directory, or delete it to train this run from epoch 0"
                % (checkpoint_path, describe_differences(differences)))
    return check


def _restore(config, checkpoint_path, state, batch_rng, restart_corrupt, say):
    """The history of the checkpoint whose state is restored; a new one without checkpoint."""
    if not os.path.exists(checkpoint_path):
        return runstore.new_history()
    try:
        return load_checkpoint(checkpoint_path, state, batch_rng,
                               check_identity=_identity_check(config, checkpoint_path))
    except CorruptCheckpoint as exc:
        if not restart_corrupt:
            raise UserError("%s; run the same command with --restart-corrupt to move it aside "
                            "and train this run again from epoch 0" % exc)
        with writing(checkpoint_path + ".corrupt"):
            moved = runstore.move_aside(checkpoint_path, ".corrupt")
        say("%s; moved it to %s, training the run again from epoch 0" % (exc, moved))
        return runstore.new_history()


def _write_new_config(config, run_dir, dataset):
    # With the data's source: every number a run writes carries what it was computed on.
    runstore.write_config(config, run_dir, getattr(dataset, "source", None))


def _open_run(config, results_dir, stop_after, say, restart_corrupt):
    """Clean up, check and read a locked run: ``(history, last_epoch, is_new)`` to train.

    ``(None, outcome)`` when there is nothing to train.  A new run's
    ``config.json`` is written once its data is loaded (:func:`_write_new_config`).
    """
    run_dir = config.run_dir(results_dir)
    for name in runstore.remove_stale_temporaries(run_dir):
        say("%s: removed %s, left by an interrupted write" % (run_dir, name))
    has_config = check_run_dir(config, results_dir)
    history = _history_or_rebuilt(config, os.path.join(run_dir, HISTORY_FILE),
                                  os.path.join(run_dir, CHECKPOINT_FILE), say, restart_corrupt)
    last_epoch = config.epochs if stop_after is None else min(stop_after, config.epochs)
    done = len(history["loss"])
    if history["status"] in runstore.FINISHED or done >= last_epoch:
        status = "stopped" if history["status"] == "running" else history["status"]
        say("%s: %s after %d epochs; nothing to do" % (run_dir, status, done))
        return None, RunOutcome(status, run_dir, done, 0)
    return history, last_epoch, not has_config


class _Trainer:
    """A run's network and compiled functions, restored, trained epoch by epoch."""

    def __init__(self, config, run_dir, dataset, build_network, backend, say):
        self.config, self.run_dir, self.dataset, self.say = config, run_dir, dataset, say
        self.backend = backend
        self.schedule = schedule.get(config.lr_schedule)
        self.batches_per_epoch = data.num_batches(len(dataset.train_y), config.batch_size)
        self.history_path = os.path.join(run_dir, HISTORY_FILE)
        self.checkpoint_path = os.path.join(run_dir, CHECKPOINT_FILE)
        model_seed, batch_seed = run_seeds(config)
        lasagne.random.set_rng(np.random.RandomState(model_seed))
        self.network = network = build_network(dataset.input_shape, dataset.num_classes)
        compile_start = time.time()
        self.train_fn, self.val_fn, self.base_rate = compile_functions(
            network, config, dataset.num_classes, backend)
        self.graph_seconds = time.time() - compile_start
        say("%s: compiled in %.1f s (%s backend%s)" % (
            run_dir, self.graph_seconds, backend,
            "; XLA compiles at the first calls" if backend == "jax" else ""))
        self.state = _state_variables(self.train_fn, self.val_fn)
        self.batch_rng = np.random.RandomState(batch_seed)

    def compile_seconds(self):
        return self.graph_seconds + _jit_seconds(self.train_fn, self.val_fn)

    def _write_history(self, history):
        with writing(self.history_path):
            write_json(self.history_path, history)

    def restore(self, restart_corrupt):
        """Restore the checkpoint (if any) into the state; the run's history so far."""
        history = _restore(self.config, self.checkpoint_path, self.state, self.batch_rng,
                           restart_corrupt, self.say)
        # history.json may lag the checkpoint by one epoch (killed between the two writes).
        self._write_history(history)
        return history

    def train(self, last_epoch, flip_lr, restart_corrupt, progress):
        """Restore the checkpoint, train up to ``last_epoch``; the :class:`RunOutcome`."""
        history = self.restore(restart_corrupt)
        first_epoch = len(history["loss"])
        for epoch in range(first_epoch, last_epoch):
            start = time.time()
            batch_values = self._train_epoch(epoch, flip_lr, progress)
            if batch_values is None:  # the loss became NaN or infinite
                self.mark_diverged(history, epoch)
                outcome = RunOutcome("diverged", self.run_dir, epoch, epoch - first_epoch)
                return outcome.with_compile_seconds(self.compile_seconds())
            self.record_epoch(epoch, history, batch_values, validate(self.val_fn, self.dataset),
                              time.time() - start)
            if self.backend == "jax" and epoch == first_epoch:
                self.say("%s: XLA compiled in %.1f s (first calls, their run included)"
                         % (self.run_dir, _jit_seconds(self.train_fn, self.val_fn)))
        status = "complete" if history["status"] == "complete" else "stopped"
        outcome = RunOutcome(status, self.run_dir, last_epoch, last_epoch - first_epoch)
        return outcome.with_compile_seconds(self.compile_seconds())

    def set_rate(self, epoch):
        """Set the learning rate the schedule gives ``epoch`` (0-based) before its updates."""
        config = self.config
        self.base_rate.set_value(np.asarray(
            self.schedule.base_rate(config.lr, epoch, config.epochs), dtype=self.base_rate.dtype))

    def _train_epoch(self, epoch, flip_lr, progress):
        """One epoch's updates: ``(losses, accuracies)`` of its minibatches, None on divergence."""
        config, dataset = self.config, self.dataset
        self.set_rate(epoch)
        losses, accuracies, loss_sum = [], [], 0.0
        bar = tqdm(data.iterate_train_batches(dataset.train_x, dataset.train_y,
                                              config.batch_size, self.batch_rng, flip_lr=flip_lr),
                   total=self.batches_per_epoch,
                   disable=not progress, leave=False, unit="batch",
                   desc="%s %s run=%d epoch %d/%d" % (config.setup, config.cell_name,
                                                       config.run, epoch + 1, config.epochs))
        with bar:
            for inputs, targets in bar:
                loss, accuracy = self.train_fn(inputs, targets)
                if not np.isfinite(loss):
                    self.say("%s: the training loss became %s in epoch %d; marked diverged"
                             % (self.run_dir, loss, epoch + 1))
                    return None
                losses.append(loss)
                accuracies.append(accuracy)
                loss_sum += float(loss)
                if len(losses) % 20 == 0:  # formatting every batch would cost more than it shows
                    bar.set_postfix(loss="%.4f" % (loss_sum / len(losses)), refresh=False)
        return losses, accuracies

    def mark_diverged(self, history, epoch):
        """Record that the training loss stopped being finite in ``epoch`` (0-based).

        The checkpoint keeps the last finished epoch; the history's lists too.
        """
        history.update(status="diverged", diverged_epoch=epoch + 1)
        self._write_history(history)

    def record_epoch(self, epoch, history, batch_values, val_values, seconds):
        """Append a finished epoch to the history, write the checkpoint and the history.

        ``batch_values`` are ``(losses, accuracies)`` of the epoch's training
        minibatches, ``val_values`` the ``(loss, accuracy)`` means of the
        validation batches (:func:`validate`).
        """
        config = self.config
        lr = self.schedule.epoch_rate(config.lr, epoch, config.epochs, self.batches_per_epoch)
        train_values = tuple(np.mean(values, dtype=np.float64) for values in batch_values)
        for name, value in zip(runstore.CURVES,
                               train_values + tuple(val_values) + (lr, seconds)):
            history[name].append(float(value))
        if epoch + 1 == config.epochs:
            history["status"] = "complete"
        # The checkpoint first: it is what a resumed run trusts.
        with writing(self.checkpoint_path):
            save_checkpoint(self.checkpoint_path, self.state, self.batch_rng, history,
                            config.to_dict())
        self._write_history(history)
        self.say(_epoch_line(config, epoch, history))
