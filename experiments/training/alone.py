"""
The training loop: one function trains one run, from its start or its last checkpoint.

.. autosummary::
    :nosignatures:

    train_run
    compile_functions
    RunProgram
    validate
    state_variables

:func:`train_run` is the only code that trains: the command line
(``experiments/run.py``), grids and workers all call it with a
:class:`~experiments.records.config.RunConfig`.  The setup's record
(:mod:`experiments.records.setups`) gives the data, the network and the augmentation,
the schedule's record (:mod:`experiments.records.schedule`) the learning rate of each
epoch, the curves (:mod:`experiments.records.curves`, their expressions
:mod:`experiments.records.metrics`) the outputs of the compiled functions.  A run's
life (lock, open, identity, restore, record, finish) is
:mod:`experiments.training.life`'s, which this loop and the batched one
(:mod:`experiments.training.batched`) both drive; here only the steps are taken.
It writes the run's directory ``R/SETUP/CELL/run=K/`` through the run store
(:mod:`experiments.store`, which owns the layout):

- ``config.json``: the config's fields, plus ``data`` (the data set's
  ``source``: the SHA-256 of its decoded content and whether its files are the
  official ones, written once the data is loaded), ``versions`` (Python and
  package versions), ``theano_flags`` and ``threads`` (the OpenMP / BLAS
  thread variables and the cores available when the run started: results are
  bit-identical only at the same thread counts);
- ``history.json``: per finished epoch, the lists of the curves: ``loss``,
  ``acc`` (means of the training minibatches' values, computed in the update's
  pass), ``val_loss``, ``val_acc`` (after the epoch, deterministic pass, mean
  over validation batches of 1024); ``lr`` (the learning rate of the epoch's first update) and
  ``epoch_time`` (seconds of wall time, validation included); ``status``
  (``running``, ``complete`` or ``diverged``) and ``diverged_epoch`` (the
  1-based number of the epoch in which the training loss became NaN or
  infinite, or null; the lists hold only the epochs before it);
- ``checkpoint.npz``: everything needed to continue (see
  :mod:`experiments.store.checkpoint`) and the run's configuration (its identity: a
  checkpoint is refused by any other run), written after every epoch;
- ``.lock``: held while a process trains the run.

A run resumed from its checkpoint produces exactly the curves of an
uninterrupted run (at the same thread counts): the checkpoint holds every
shared variable of the compiled functions and the batch generator's state,
and the model is rebuilt from the same seeds before they are restored.

Damage is handled when a run is opened (:mod:`experiments.training.life`).  A write
that fails (a full disk) stops the run with a message; the files of the last
finished epoch are kept, so the same command resumes once there is space.

Examples
--------
>>> from experiments.records.config import RunConfig
>>> from experiments.training.alone import train_run
>>> config = RunConfig(setup="logreg", optimizer="amsgrad", lr=0.001, beta2=0.99,
...                    bias_correction=False, run=0)
>>> outcome = train_run(config, "results", stop_after=2)   # doctest: +SKIP
>>> outcome.status                                          # doctest: +SKIP
'stopped'
"""
import time

import compat  # noqa: F401  (Theano flags and Lasagne shims before lasagne)
import lasagne
import numpy as np
import theano
import theano.tensor as T
from tqdm import tqdm

import backends
import data
from experiments.records import curves, metrics, optimizers, schedule, setups
from experiments.records.config import run_seeds
from experiments.training.life import RunOutcome, open_run, progress_writer

__all__ = ["train_run", "compile_functions", "RunProgram", "validate", "state_variables",
           "RunOutcome", "VAL_BATCH_SIZE"]

VAL_BATCH_SIZE = 1024


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
        ``train_fn(x, y)`` -> the minibatch's values of the metrics named
        :func:`experiments.records.curves.train_names` (the loss first), computed with
        the parameters before the update it applies
    val_fn : theano function
        ``val_fn(x, y)`` -> the values named :func:`experiments.records.curves.val_names`,
        deterministic pass, no update
    base_rate : shared scalar
        The learning rate the schedule sets before each epoch
    """
    input_layer = lasagne.layers.get_all_layers(output_layer)[0]
    inputs = T.TensorType(theano.config.floatX, (False,) * len(input_layer.shape))("inputs")
    targets = T.ivector("targets")
    params = lasagne.layers.get_all_params(output_layer, trainable=True)

    def graph(deterministic):
        prediction = lasagne.layers.get_output(output_layer, inputs, deterministic=deterministic)
        return metrics.MinibatchGraph(prediction, targets, config, num_classes, tuple(params))

    train_outputs = metrics.outputs(graph(deterministic=False))
    base_rate = theano.shared(np.asarray(config.lr, dtype=theano.config.floatX),
                              name="learning_rate")
    rate, schedule_updates = schedule.get(config.lr_schedule).expression(base_rate)
    updates = optimizers.get(config.optimizer).updates(train_outputs[0], params, rate, config)
    updates.update(schedule_updates)
    train_fn = backends.compile_function([inputs, targets], train_outputs, updates=updates,
                                         backend=backend)
    val_fn = backends.compile_function([inputs, targets],
                                       metrics.outputs(graph(deterministic=True),
                                                       validation=True), backend=backend)
    return train_fn, val_fn, base_rate


def state_variables(*functions):
    """Every shared variable the functions read or update, each once, in graph order.

    Rebuilding the same model gives the same order: this is what a checkpoint holds.
    """
    seen, variables = set(), []
    for function in functions:
        for variable in function.get_shared():
            if id(variable) not in seen:
                seen.add(id(variable))
                variables.append(variable)
    return variables


def validate(function, dataset):
    """The means of ``function(x, y)``'s outputs over the validation batches (1024 each).

    ``function`` is a validation function, or a batch's called on the same
    batches for every run (then each mean has one value per run).
    """
    batches = data.iterate_val_batches(dataset.val_x, dataset.val_y, VAL_BATCH_SIZE)
    values = np.array([function(x, y) for x, y in batches], dtype=np.float64)
    return values.mean(axis=0)


def _jit_seconds(*functions):
    # The JAX backend's functions time the calls that compiled (see backends.jax_linker).
    return sum(sum(getattr(function.fn, "compile_seconds", ())) for function in functions)


class RunProgram:
    """A run's network, compiled functions and state, built from its seeds.

    Attributes
    ----------
    network : lasagne layer
    train_fn, val_fn, base_rate
        As :func:`compile_functions` returns them
    state : list of shared variables
        What a checkpoint holds (:func:`state_variables`)
    batch_rng : numpy.random.RandomState
        The run's data order (and flips)
    curves : tuple of str
        The per-epoch lists of its history (:func:`experiments.records.curves.history_names`)
    backend : str
        What runs its functions (recorded with the machine,
        :func:`experiments.store.rundir.record_machine`)
    graph_seconds : float
        Seconds it took to build and compile the graphs
    """

    def __init__(self, config, dataset, build_network, backend, say, label):
        self.config, self.backend = config, backend
        model_seed, batch_seed = run_seeds(config)
        lasagne.random.set_rng(np.random.RandomState(model_seed))
        self.network = build_network(dataset.input_shape, dataset.num_classes)
        start = time.time()
        self.train_fn, self.val_fn, self.base_rate = compile_functions(
            self.network, config, dataset.num_classes, backend)
        self.graph_seconds = time.time() - start
        say("%s: compiled in %.1f s (%s backend%s)" % (
            label, self.graph_seconds, backend,
            "; XLA compiles at the first calls" if backend == "jax" else ""))
        self.state = state_variables(self.train_fn, self.val_fn)
        self.batch_rng = np.random.RandomState(batch_seed)
        self.curves = curves.history_names()

    def compile_seconds(self):
        """Graph building and compiling, plus XLA's compilations at the first calls so far."""
        return self.graph_seconds + _jit_seconds(self.train_fn, self.val_fn)

    def set_rate(self, rate):
        """Set the base learning rate of the next updates."""
        self.base_rate.set_value(np.asarray(rate, dtype=self.base_rate.dtype))


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
        (:meth:`experiments.records.setups.Setup.load`)
    build_model : callable or None
        ``build_model(input_shape, num_classes) -> output layer``; by default
        the setup's network (:meth:`experiments.records.setups.Setup.build`)
    progress : bool
        Show a progress bar per epoch and print one line per epoch (and one
        with the compile time)
    backend : {'c', 'jax'}
        What runs the compiled functions (:func:`backends.compile_function`).
        An execution choice, not part of the run's identity: a run started
        with one backend can be continued with the other.
    restart_corrupt : bool
        When the run's checkpoint is damaged (cannot be read): move it aside
        to ``checkpoint.npz.corrupt`` (or ``.corrupt.2``, ... when taken) and
        train the run again from epoch 0,
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
    from :func:`experiments.records.config.run_seeds`.
    """
    backends.check_backend(backend)
    say = progress_writer(progress)
    with open_run(config, results_dir, stop_after, say, restart_corrupt) as life:
        if life.outcome is not None:
            return life.outcome
        setup = setups.get(config.setup)
        if dataset is None:
            dataset = setup.load(config, data_dir)
        life.begin(dataset)
        program = RunProgram(config, dataset, build_model or setup.build, backend, say,
                             life.run_dir)
        life.restore(program)
        for epoch in life.epochs():
            start = time.time()
            train = _train_epoch(program, life, epoch, setup.flip_lr, dataset, progress)
            if not np.isfinite(train["loss"][-1]):
                return life.diverged(epoch, train["loss"][-1], program.compile_seconds())
            val = dict(zip(curves.val_names(), validate(program.val_fn, dataset)))
            life.record_epoch(epoch, train, val, time.time() - start)
            if backend == "jax" and epoch == life.first_epoch:
                say("%s: XLA compiled in %.1f s (first calls, their run included)"
                    % (life.run_dir, _jit_seconds(program.train_fn, program.val_fn)))
        return life.finish(program.compile_seconds())


def _train_epoch(program, life, epoch, flip_lr, dataset, progress):
    """One epoch's updates: each training output's minibatch values, by name.

    Stops at the first minibatch whose loss is NaN or infinite (the last value).
    """
    config = program.config
    program.set_rate(life.base_rate(epoch))
    names = curves.train_names()
    values, loss_sum = {name: [] for name in names}, 0.0
    bar = tqdm(data.iterate_train_batches(dataset.train_x, dataset.train_y, config.batch_size,
                                          program.batch_rng, flip_lr=flip_lr),
               total=life.batches_per_epoch, disable=not progress, leave=False, unit="batch",
               desc="%s %s run=%d epoch %d/%d" % (config.setup, config.cell_name, config.run,
                                                   epoch + 1, config.epochs))
    with bar:
        for inputs, targets in bar:
            for name, value in zip(names, program.train_fn(inputs, targets)):
                values[name].append(value)
            loss = values["loss"][-1]
            if not np.isfinite(loss):
                break
            loss_sum += float(loss)
            if len(values["loss"]) % 20 == 0:  # formatting every batch would cost more
                bar.set_postfix(loss="%.4f" % (loss_sum / len(values["loss"])), refresh=False)
    return values
