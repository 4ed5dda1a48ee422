"""
Several runs of a setup trained together as one JAX program (``--batch-runs K``).

.. autosummary::
    :nosignatures:

    train_batch

Runs whose configurations differ only in the learning rate, the run index
and the seed (:data:`VALUE_FIELDS`) compile to the same graph with other
values; :func:`experiments.records.config.group_configs` groups them, and
:func:`train_batch` trains a group as one :class:`backends.batched.RunBatch`: each
run's training step under ``jax.vmap``, every run keeping its own parameters, optimizer state,
batch-norm averages, dropout streams, data order (its own batch generator,
drawn as :func:`data.iterate_train_batches` draws it) and learning rate.
The optimizer, ``beta2``, bias correction, the schedule and the loss are
constants of the graph, so the blog's grid of a setup is 8 programs of 15
runs (3 learning rates x 5 runs).

Each run's results are what :func:`experiments.training.alone.train_run` writes, in
the same directory and through the same code (:mod:`experiments.training.life`):
``config.json``, ``history.json``, its checkpoint after every epoch (so a
killed process loses only the epoch in progress), its own lock held while the
batch trains it.  A run can be resumed alone or batched,
with either backend.  What differs from a run trained alone:

- the numbers, of convolutional networks (and anything on a GPU) only: XLA
  computes their batched convolutions as grouped ones, whose float32 sums may
  round differently (on the CPU, dense networks' runs are bit for bit the runs
  alone, whatever the batch's size: :func:`backends.jax_ops.elementwise.run_dot`,
  and :mod:`backends.batched` for what holds where);
  tests/test_batch_training.py checks the curves against the runs trained alone;
- ``epoch_time`` is the batch's epoch (all runs' steps and validation);
- runs at different epochs (after an interruption) are brought level: the
  batch starts with the runs furthest behind, and the others join it when it
  reaches their epoch;
- a run whose training loss becomes NaN or infinite is marked ``diverged``
  after the epoch (its history and checkpoint keep the epoch before, as
  alone) and leaves the batch; the others go on.

Examples
--------
>>> from experiments.training.batched import train_batch
>>> from experiments.records.config import group_configs
>>> from experiments.launch.grid import grid_configs
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
from experiments.records import curves, setups
from experiments.records.config import VALUE_FIELDS, program_key
from experiments.training.alone import RunProgram, validate
from experiments.training.life import open_run, progress_writer

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
        The runs; they must share :func:`~experiments.records.config.program_key`
        (see :func:`experiments.records.config.group_configs`)
    results_dir, data_dir, stop_after, dataset, build_model, restart_corrupt
        As for :func:`experiments.training.alone.train_run`
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
        As :func:`experiments.training.alone.train_run` does; also when JAX is missing
    """
    configs = list(configs)
    if len({program_key(config) for config in configs}) > 1:
        raise ValueError("the runs differ in more than %s; group them with group_configs"
                         % ", ".join(VALUE_FIELDS))
    backends.check_backend("jax")
    import jax  # here, not at the top: without JAX the check above is a user error

    say = progress_writer(progress)
    with contextlib.ExitStack() as opened:
        lives = [opened.enter_context(open_run(config, results_dir, stop_after, say,
                                               restart_corrupt)) for config in configs]
        to_train = [life for life in lives if life.outcome is None]
        if to_train:
            setup = setups.get(to_train[0].config.setup)
            if dataset is None:
                dataset = setup.load(to_train[0].config, data_dir)
            for life in to_train:
                life.begin(dataset)
            programs = [RunProgram(life.config, dataset, build_model or setup.build, "jax",
                                   say, life.run_dir) for life in to_train]
            first = programs[0]
            if max_runs is None:
                max_runs = max(1, int(MEMORY_FRACTION * _available_memory() // _bytes_per_run(
                    first.network, first.state, first.config.batch_size)))
            if steps_per_call is None:
                steps_per_call = 1 if _has_convolutions(first.network) else STEPS_PER_CALL
            # The training set, once on the device: each run's minibatches are gathered there,
            # as the bytes the inputs were made from where the data set has them.
            pixels = getattr(dataset, "train_pixels", None)
            sources = [jax.device_put(dataset.train_x if pixels is None else pixels.pixels),
                       jax.device_put(dataset.train_y)]
            scales = None if pixels is None else [(pixels.divisor, pixels.offset), None]
            for start in range(0, len(programs), max_runs):
                part = list(zip(to_train, programs))[start:start + max_runs]
                for life, program in part:
                    life.restore(program)
                _BatchTraining(part, dataset, sources, scales, setup.flip_lr, steps_per_call,
                               progress, say).train()
        return [life.outcome for life in lives]


class _BatchTraining:
    """Runs (each its :class:`~experiments.training.life.RunLife` and
    :class:`~experiments.training.alone.RunProgram`), trained as one batch."""

    def __init__(self, runs, dataset, sources, scales, flip_lr, steps_per_call, progress, say):
        self.lives = [life for life, _ in runs]
        self.programs = [program for _, program in runs]
        self.dataset, self.sources, self.scales = dataset, sources, scales
        self.flip_lr, self.steps_per_call = flip_lr, max(1, int(steps_per_call))
        self.progress, self.say = progress, say
        self.batch, self.members = None, []  # members: indices of runs, in batch order
        self.dropped_compile_seconds = 0.0  # of batches that all their runs left

    def train(self):
        """Train every run up to its last epoch of this time; each life gets its outcome."""
        waiting = sorted(range(len(self.lives)), key=lambda i: self.lives[i].first_epoch)
        last_epoch = self.lives[0].last_epoch
        epoch = None
        while waiting or self.members:
            if not self.members:
                epoch = self.lives[waiting[0]].first_epoch
            if epoch >= last_epoch:
                break
            # Runs whose next epoch is this one join: the batch brings runs level.
            joining = []
            while waiting and self.lives[waiting[0]].first_epoch == epoch:
                joining.append(waiting.pop(0))
            self._join(joining)
            diverged = self._train_epoch(epoch)
            if epoch == self.lives[self.members[0]].first_epoch:
                self.say("%d runs: XLA compiled their batched program in %.1f s (first calls, "
                         "their run included)" % (len(self.members), self._xla_seconds()))
            self._leave(diverged)
            epoch += 1
        for life, program in zip(self.lives, self.programs):
            if life.outcome is None:
                life.finish(program.graph_seconds + self._xla_seconds())

    def _xla_seconds(self):
        # Each BatchedFunction times its calls that compiled (a new K compiles anew).
        current = 0.0 if self.batch is None else sum(
            sum(function.compile_seconds) for function in self.batch.functions)
        return self.dropped_compile_seconds + current

    def _join(self, indices):
        from backends.batched import RunBatch

        functions = [(self.programs[index].train_fn, self.programs[index].val_fn)
                     for index in indices]
        if functions and self.batch is None:
            # All at once: stacked once, where one by one each would grow every slot.
            self.batch = RunBatch(functions)
        else:
            for run in functions:
                self.batch.add(run)
        self.members.extend(indices)

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
        members = [(self.lives[index], self.programs[index]) for index in self.members]
        for life, program in members:
            program.set_rate(life.base_rate(epoch))
        self.batch.reload([program.base_rate for _, program in members])
        train = self._train_steps(epoch, [program for _, program in members])
        val = validate(lambda x, y: self.batch.functions[1](x, y, same_inputs=True),
                       self.dataset)
        self.batch.write_back()
        seconds = time.time() - start
        diverged = []
        for position, (life, program) in enumerate(members):
            losses = train["loss"][:, position]
            finite = np.isfinite(losses)
            if not finite.all():
                life.diverged(epoch, losses[np.argmin(finite)],
                              program.graph_seconds + self._xla_seconds())
                diverged.append(position)
                continue
            life.record_epoch(epoch, {name: values[:, position] for name, values in train.items()},
                              dict(zip(curves.val_names(), val[:, position])), seconds)
        return diverged

    def _train_steps(self, epoch, programs):
        """Every member's minibatches of the epoch: each training output's values, by name,
        as (steps, K) arrays."""
        config = programs[0].config
        orders = [data.epoch_order(len(self.dataset.train_y), config.batch_size,
                                   program.batch_rng, self.flip_lr) for program in programs]
        indices = np.stack([order for order, _ in orders], axis=1)
        flips = np.stack([flip for _, flip in orders], axis=1) if self.flip_lr else None
        steps, length = len(indices), min(self.steps_per_call, len(indices))
        values = []
        bar = tqdm(total=steps, disable=not self.progress, leave=False, unit="batch",
                   desc="%s %d runs epoch %d/%d" % (config.setup, len(programs), epoch + 1,
                                                     config.epochs))
        with bar:
            for begin in range(0, steps, length):
                end = min(begin + length, steps)
                # The last call is padded to the same length: one program for every call.
                take = np.arange(begin, begin + length) % steps
                valid = np.arange(begin, begin + length) < end
                outputs = self.batch.functions[0].steps(
                    self.sources, indices[take], None if flips is None else flips[take], valid,
                    self.scales)
                values.append(np.stack(outputs)[:, :end - begin])
                bar.update(end - begin)
        return dict(zip(curves.train_names(), np.concatenate(values, axis=1)))
