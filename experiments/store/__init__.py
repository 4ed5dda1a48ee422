"""
The store: the results layout of training runs, its paths, files and formats.

.. autosummary::
    :nosignatures:

    atomic
    lock
    rundir
    datasource
    packed
    history
    checkpoint
    machine
    threads

A run lives in ``R/SETUP/CELL/run=K/``
(:meth:`experiments.records.config.RunConfig.run_dir`):

- ``config.json`` (:data:`~experiments.store.rundir.CONFIG_FILE`): the
  :class:`~experiments.records.config.RunConfig` fields, ``data`` (what the
  data set's content is and whether its files are the official ones:
  :func:`~experiments.store.datasource.describe_data`),
  :func:`~experiments.store.rundir.provenance` (``versions``,
  ``theano_flags``, ``threads``) and ``machines`` (per process that trained
  it, from which epoch, with which backend on which machine:
  :func:`~experiments.store.rundir.record_machine`);
- ``history.json`` (:data:`~experiments.store.rundir.HISTORY_FILE`): per
  finished epoch the lists of :data:`~experiments.store.history.CURVES` (and of
  any curve declared besides: :mod:`experiments.records.curves`),
  ``status`` (one of :data:`~experiments.store.rundir.STATUSES`) and
  ``diverged_epoch`` (:mod:`~experiments.store.history`);
- ``checkpoint.npz`` (:data:`~experiments.store.rundir.CHECKPOINT_FILE`,
  format in :mod:`~experiments.store.checkpoint`);
- ``.lock`` (:data:`~experiments.store.lock.LOCK_FILE`): held by the process
  that trains the run (:mod:`~experiments.store.lock`);
- ``error.log`` (:data:`~experiments.store.atomic.ERROR_FILE`): only after the
  grid's last try of the run failed with something other than a user error:
  that failure's traceback; removed when the run's next try ends well.

The synthetic job writes ``R/synthetic/``
(:data:`~experiments.store.rundir.SYNTHETIC_DIR`): ``summary.json``,
``trajectories.json`` and ``config.json``.  ``make_figures.py --pack`` packs
a setup's runs into one file (:mod:`~experiments.store.packed`).

Training, the grid, the synthetic job, the report and the figures all read
and write through this package, every file atomically
(:mod:`~experiments.store.atomic`); it imports neither Theano nor plotting
code.  :mod:`~experiments.store.machine` and :mod:`~experiments.store.threads`
say what a process trains on, for the provenance.
"""
