"""
Several runs of a setup trained together as one JAX program (``--batch-runs K``).

.. autosummary::
    :nosignatures:

    train_batch

Runs whose configurations differ only in the learning rate, the run index
and the seed (:data:`VALUE_FIELDS`) compile to the same graph with other
values; :func:`experiments.config.group_configs` groups them, and :func:`train_batch` trains a
group as one :class:`backends.batched.RunBatch`: each run's training step
under ``jax.vmap``, every run keeping its own parameters, optimizer state,
batch-norm averages, dropout streams, data order (its own batch generator,
drawn as :func:`data.iterate_train_batches` draws it) and learning rate.
The optimizer, ``beta2``, bias correction, the schedule and the loss are
constants of the graph, so the blog's grid of a setup is 8 programs of 15
runs (3 learning rates x 5 runs).

Each run's results are what :func:`experiments.training.train_run` writes, in
the same directory: ``config.json``, ``history.json``, its checkpoint after
every epoch (so a killed process loses only the epoch in progress), its own
lock held while the batch trains it.  A run can be resumed alone or batched,
with either backend.  What differs from a run trained alone:

- the numbers, of convolutional networks only: XLA computes their batched
  convolutions as grouped ones, whose float32 sums may round differently
  (dense networks' runs are bit for bit the runs alone, whatever the batch's
  size: :func:`backends.jax_ops.per_run_dot`); tests/test_batch_training.py
  checks the curves against the runs trained alone;
- ``epoch_time`` is the batch's epoch (all runs' steps and validation);
- runs at different epochs (after an interruption) are brought level: the
  batch starts with the runs furthest behind, and the others join it when it
  reaches their epoch;
- a run whose training loss becomes NaN or infinite is marked ``diverged``
  after the epoch (its history and checkpoint keep the epoch before, as
  alone) and leaves the batch; the others go on.

Examples
--------
>>> from experiments.batched_training import train_batch
>>> from experiments.config import group_configs
>>> from experiments.grid import grid_configs
>>> groups = group_configs(grid_configs("logreg"))
>>> len(groups), len(groups[0])
(8, 15)
>>> outcomes = train_batch(groups[0], "results")   # doctest: +SKIP
"""
import contextlib
import os
import time

import compat  # noqa: F401  (Theano flags and Lasagne shims before lasagne)
import lasagne
import numpy as np
from tqdm import tqdm

import backends
import data
from experiments import runstore, setups
from experiments.config import VALUE_FIELDS, program_key
from experiments.runstore import RunLocked, run_lock
from experiments.training import (RunOutcome, _open_run, _Trainer, _write_new_config,
                                  validate)

__all__ = ["train_batch", "STEPS_PER_CALL", "MEMORY_FRACTION"]

#: Training steps per call of a network without convolutions: one ``lax.scan`` over
#: them, since such a step is short and the per-call overhead would be most of it.
STEPS_PER_CALL = 64
#: The share of the device's memory (the machine's, on a CPU) a batch may plan to use.
MEMORY_FRACTION = 0.5


def _available_memory():
    """Bytes the first JAX device has (the machine's memory for a CPU)."""
    import jax

    stats = getattr(jax.devices()[0], "memory_stats", lambda: None)()
    if stats and stats.get("bytes_limit"):
        return stats["bytes_limit"]
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _bytes_per_run(network, state, batch_size):
    """A generous estimate of one run's share of a batch's memory.

    Its shared values four times (the values, the updated ones, the gradients,
    temporaries) and every layer's output for a minibatch three times (kept
    for the backward pass, its gradient, a temporary), in float32.
    """
    state_bytes = sum(np.asarray(variable.get_value(borrow=True)).nbytes for variable in state)
    activations = sum(int(np.prod(layer.output_shape[1:]))
                      for layer in lasagne.layers.get_all_layers(network))
    return 4 * state_bytes + 3 * 4 * batch_size * activations


def _has_convolutions(network):
    return any(isinstance(layer, lasagne.layers.Conv2DLayer)
               for layer in lasagne.layers.get_all_layers(network))


def train_batch(configs, results_dir, data_dir=None, stop_after=None, dataset=None,
                build_model=None, progress=True, restart_corrupt=False, steps_per_call=None,
                max_runs=None):
    """Train runs that share a program together, each from its start or its last checkpoint.

    Parameters
    ----------
    configs : sequence of RunConfig
        The runs; they must share :func:`~experiments.config.program_key`
        (see :func:`experiments.config.group_configs`)
    results_dir, data_dir, stop_after, dataset, build_model, restart_corrupt
        As for :func:`experiments.training.train_run`
    progress : bool
        A progress bar per epoch of the batch, and one line per run and epoch
    steps_per_call : int or None
        Training steps per call of the batched program; by default
        :data:`STEPS_PER_CALL` for a network without convolutions and 1 for
        one with (on a CPU, XLA compiles convolutions in a loop's body to
        much slower code: bench/RESULTS.md)
    max_runs : int or None
        Train at most this many runs at a time; by default as many as an
        estimate of their memory lets fit into :data:`MEMORY_FRACTION` of the
        device's (the rest are trained in further batches)

    Returns
    -------
    list of RunOutcome
        In the order of ``configs``; ``busy`` for a run another process holds

    Raises
    ------
    ValueError
        For runs that do not share a program
    errors.UserError
        As :func:`experiments.training.train_run` does; also when JAX is missing
    """
    configs = list(configs)
    if len({program_key(config) for config in configs}) > 1:
        raise ValueError("the runs differ in more than %s; group them with group_configs"
                         % ", ".join(VALUE_FIELDS))
    backends.check_backend("jax")
    import jax  # here, not at the top: without JAX the check above is a user error

    say = tqdm.write if progress else (lambda line: None)
    with contextlib.ExitStack() as locks:
        to_train, outcomes = _lock_and_open(configs, results_dir, stop_after, say,
                                            restart_corrupt, locks)
        if to_train:
            setup = setups.get(to_train[0][0].setup)
            if dataset is None:
                dataset = setup.load(to_train[0][0], data_dir)
            for config, is_new in to_train:
                if is_new:
                    _write_new_config(config, config.run_dir(results_dir), dataset)
            trainers = [_Trainer(config, config.run_dir(results_dir), dataset,
                                 build_model or setup.build, "jax", say)
                        for config, _ in to_train]
            first = trainers[0]
            if max_runs is None:
                max_runs = max(1, int(MEMORY_FRACTION * _available_memory() // _bytes_per_run(
                    first.network, first.state, first.config.batch_size)))
            if steps_per_call is None:
                steps_per_call = 1 if _has_convolutions(first.network) else STEPS_PER_CALL
            last_epoch = first.config.epochs if stop_after is None else \
                min(stop_after, first.config.epochs)
            # The training set, once on the device: each run's minibatches are gathered there.
            sources = [jax.device_put(dataset.train_x), jax.device_put(dataset.train_y)]
            for start in range(0, len(trainers), max_runs):
                part = trainers[start:start + max_runs]
                histories = [trainer.restore(restart_corrupt) for trainer in part]
                trained = _BatchTraining(part, histories, sources, setup.flip_lr,
                                         steps_per_call, progress, say).train(last_epoch)
                outcomes.update(zip([trainer.config for trainer in part], trained))
    return [outcomes[config] for config in configs]


def _lock_and_open(configs, results_dir, stop_after, say, restart_corrupt, locks):
    """Lock and open every run (:func:`experiments.training._open_run`).

    Returns ``(config, is_new)`` of the runs to train, and the outcomes of the
    others (busy, or nothing to do).  The locks are held until ``locks`` (an
    ``ExitStack``) closes.
    """
    to_train, outcomes = [], {}
    for config in configs:
        run_dir = config.run_dir(results_dir)
        runstore.make_run_dir(run_dir)
        try:
            locks.enter_context(run_lock(run_dir))
        except RunLocked:
            say("%s: another process is training this run; skipping it" % run_dir)
            outcomes[config] = RunOutcome("busy", run_dir, None, 0)
            continue
        opened = _open_run(config, results_dir, stop_after, say, restart_corrupt)
        if opened[0] is None:
            outcomes[config] = opened[1]
        else:
            to_train.append((config, opened[2]))
    return to_train, outcomes


class _BatchTraining:
    """Runs' trainers (:class:`~experiments.training._Trainer`), trained as one batch."""

    def __init__(self, trainers, histories, sources, flip_lr, steps_per_call, progress, say):
        self.trainers, self.histories, self.sources = trainers, histories, sources
        self.dataset = trainers[0].dataset
        self.flip_lr, self.steps_per_call = flip_lr, max(1, int(steps_per_call))
        self.progress, self.say = progress, say
        self.first_epochs = [len(history["loss"]) for history in histories]
        self.batch, self.members = None, []  # members: indices of trainers, in batch order
        self.dropped_compile_seconds = 0.0  # of batches that all their runs left

    def train(self, last_epoch):
        """Train every run up to ``last_epoch``; their :class:`RunOutcome` in order."""
        outcomes = [None] * len(self.trainers)
        waiting = sorted(range(len(self.trainers)), key=lambda i: self.first_epochs[i])
        epoch = None
        while waiting or self.members:
            if not self.members:
                epoch = self.first_epochs[waiting[0]]
            if epoch >= last_epoch:
                break
            # Runs whose next epoch is this one join: the batch brings runs level.
            while waiting and self.first_epochs[waiting[0]] == epoch:
                self._join(waiting.pop(0))
            diverged = self._train_epoch(epoch)
            if epoch == self.first_epochs[self.members[0]]:
                self.say("%d runs: XLA compiled their batched program in %.1f s (first calls, "
                         "their run included)" % (len(self.members), self._xla_seconds()))
            for position in diverged:
                index = self.members[position]
                outcomes[index] = self._outcome(index, "diverged", epoch)
            self._leave(diverged)
            epoch += 1
        for index in range(len(self.trainers)):
            if outcomes[index] is None:
                status = "complete" if self.histories[index]["status"] == "complete" \
                    else "stopped"
                outcomes[index] = self._outcome(index, status, last_epoch)
        return outcomes

    def _outcome(self, index, status, epochs_done):
        trainer = self.trainers[index]
        outcome = RunOutcome(status, trainer.run_dir, epochs_done,
                             epochs_done - self.first_epochs[index])
        return outcome.with_compile_seconds(trainer.graph_seconds + self._xla_seconds())

    def _xla_seconds(self):
        # Each BatchedFunction times its calls that compiled (a new K compiles anew).
        current = 0.0 if self.batch is None else sum(
            sum(function.compile_seconds) for function in self.batch.functions)
        return self.dropped_compile_seconds + current

    def _join(self, index):
        from backends.batched import RunBatch

        functions = (self.trainers[index].train_fn, self.trainers[index].val_fn)
        if self.batch is None:
            self.batch = RunBatch([functions])
        else:
            self.batch.add(functions)
        self.members.append(index)

    def _leave(self, positions):
        if len(positions) == len(self.members):
            self.dropped_compile_seconds = self._xla_seconds()
            self.batch, self.members = None, []
        elif positions:
            self.batch.remove(positions)
            self.members = [index for position, index in enumerate(self.members)
                            if position not in positions]

    def _train_epoch(self, epoch):
        """One epoch of every member; the positions of the runs that diverged in it."""
        start = time.time()
        trainers = [self.trainers[index] for index in self.members]
        for trainer in trainers:
            trainer.set_rate(epoch)
        self.batch.reload([trainer.base_rate for trainer in trainers])
        losses, accuracies = self._train_steps(epoch, trainers)
        val_values = validate(
            lambda x, y: self.batch.functions[1](x, y, same_inputs=True), self.dataset)
        self.batch.write_back()
        seconds = time.time() - start
        diverged = []
        for position, (index, trainer) in enumerate(zip(self.members, trainers)):
            finite = np.isfinite(losses[:, position])
            if not finite.all():
                self.say("%s: the training loss became %s in epoch %d; marked diverged"
                         % (trainer.run_dir, losses[np.argmin(finite), position], epoch + 1))
                trainer.mark_diverged(self.histories[index], epoch)
                diverged.append(position)
                continue
            trainer.record_epoch(epoch, self.histories[index],
                                 (losses[:, position], accuracies[:, position]),
                                 val_values[:, position], seconds)
        return diverged

    def _train_steps(self, epoch, trainers):
        """Every member's minibatches of the epoch: their ``(losses, accuracies)``, (steps, K)."""
        config = trainers[0].config
        orders = [data.epoch_order(len(self.dataset.train_y), config.batch_size,
                                   trainer.batch_rng, self.flip_lr) for trainer in trainers]
        indices = np.stack([order for order, _ in orders], axis=1)
        flips = np.stack([flip for _, flip in orders], axis=1) if self.flip_lr else None
        steps, length = len(indices), min(self.steps_per_call, len(indices))
        values = []
        bar = tqdm(total=steps, disable=not self.progress, leave=False, unit="batch",
                   desc="%s %d runs epoch %d/%d" % (config.setup, len(trainers), epoch + 1,
                                                     config.epochs))
        with bar:
            for begin in range(0, steps, length):
                end = min(begin + length, steps)
                # The last call is padded to the same length: one program for every call.
                take = np.arange(begin, begin + length) % steps
                valid = np.arange(begin, begin + length) < end
                outputs = self.batch.functions[0].steps(
                    self.sources, indices[take], None if flips is None else flips[take], valid)
                values.append(np.stack(outputs)[:, :end - begin])
                bar.update(end - begin)
        losses, accuracies = np.concatenate(values, axis=1)
        return losses, accuracies
