"""
What a grid's worker process does: limit its BLAS threads, then train one run.

.. autosummary::
    :nosignatures:

    limit_blas_threads
    start_worker
    run_grid_task
    run_grid_batch
    RunFailed
    MissingPlugin

:func:`run_grid_task` is the task that :mod:`experiments.launch.grid` sends to a
local worker process or a Dask worker: it calls
:func:`experiments.training.alone.train_run` (the code ``experiments/run.py``
runs) with one :class:`~experiments.records.config.RunConfig` and returns a small
summary of what happened.  :func:`run_grid_batch` does the same for runs
trained together as one program
(:func:`experiments.training.batched.train_batch`).

A task that fails with anything but a user error (a bug, a plug-in's fault,
the environment's) keeps the traceback in each of its runs' ``error.log``
(:func:`experiments.store.atomic.write_error_log`) and raises :class:`RunFailed`,
one line the grid reports; a task that ends well removes its runs' logs.
A worker that does not know a setup or an optimizer its runs name (a Dask
worker started without the grid's ``$AMSGRAD_PLUGINS``) raises
:class:`MissingPlugin` before it reads any run directory.

This module imports nothing that loads NumPy: a local worker process runs
:func:`limit_blas_threads` first, and OpenBLAS reads its thread count only
once, when NumPy (or Theano's compiled code) loads it.

Examples
--------
>>> from experiments.records.config import RunConfig
>>> from experiments.launch.worker import run_grid_task
>>> config = RunConfig(setup="logreg", optimizer="adam", lr=0.001, beta2=0.99,
...                    bias_correction=True, run=0, epochs=1)
>>> run_grid_task(config, "/tmp/results")["status"]   # doctest: +SKIP
'complete'
"""
import contextlib
import os
import signal
import socket
import sys
import threading
import time
import traceback
import warnings

from errors import UserError  # imports no NumPy
from experiments.store.threads import BLAS_THREAD_VARIABLES

__all__ = ["limit_blas_threads", "start_worker", "run_grid_task", "run_grid_batch",
           "RunFailed", "MissingPlugin", "BUSY_POLL_SECONDS"]

#: How often a task that waits for a run another process holds tries its lock again.
BUSY_POLL_SECONDS = 2.0

# train_run seeds Lasagne's global generator before building the model: two runs
# in threads of one process (a Dask worker with --nthreads > 1) must not interleave.
_ONE_RUN_PER_PROCESS = threading.Lock()


class RunFailed(Exception):
    """A grid's task failed with something other than a user error.

    Its message is one line: the exception's type and first line, and where
    the traceback was kept.  (Raised instead of the exception itself, which
    may not pickle back to the grid, and whose message may be many lines.)
    """


class MissingPlugin(UserError):
    """A worker does not know a setup or an optimizer that its runs name.

    Its plug-in (named in ``$AMSGRAD_PLUGINS``) was not imported there: the
    grid stops at once with this one line rather than fail every run.  Not
    raised for a plug-in the worker imports and that fails: that is
    :func:`experiments.records.plugins.load`'s user error, the run's failure.
    """


def check_plugins(configs):
    """Raise :class:`MissingPlugin` when this process lacks a setup or optimizer of ``configs``.

    Parameters
    ----------
    configs : sequence of RunConfig
        Runs unpickled in this process (which checks no name: a RunConfig is
        checked when it is built, in the grid's process)
    """
    from experiments.records import optimizers, plugins, setups

    for config in configs:
        for kind, registry, name in (("setup", setups, config.setup),
                                     ("optimizer", optimizers, config.optimizer)):
            if name not in registry.names():
                raise MissingPlugin(
                    "the worker %s:%d lacks the plug-in that registers the %s %r (its $%s: "
                    "%s)" % (socket.gethostname(), os.getpid(), kind, name,
                             plugins.PLUGIN_VARIABLE,
                             ", ".join(plugins.module_names()) or "unset"))


def limit_blas_threads(threads):
    """Set the BLAS thread count of this process; call it before NumPy is imported.

    Parameters
    ----------
    threads : int
        Threads for OpenMP, OpenBLAS and MKL, and XLA's when 1 (the cores divided by the
        number of worker processes, so that workers do not oversubscribe them)

    Notes
    -----
    Called by :func:`start_worker`, the local process pool's ``initializer``.  When NumPy is
    already loaded the limit comes too late for it; a ``RuntimeWarning``
    says so instead of failing silently.
    """
    for name in BLAS_THREAD_VARIABLES:
        os.environ[name] = str(threads)
    if threads == 1:
        # The JAX backend's XLA has its own thread pool; one switch turns it off.
        os.environ["XLA_FLAGS"] = " ".join(filter(None, [
            os.environ.get("XLA_FLAGS"), "--xla_cpu_multi_thread_eigen=false"]))
    if "numpy" in sys.modules:
        warnings.warn("NumPy was loaded before the BLAS thread limit; its BLAS may use more "
                      "than %d threads (set OPENBLAS_NUM_THREADS yourself)" % threads,
                      RuntimeWarning)


def start_worker(threads, parent_pid):
    """A local worker process's start: :func:`limit_blas_threads`, and end with the grid.

    The grid's own clean-up stops its workers on Ctrl-C or an error; when the
    grid process is killed (``kill``, ``kill -9``, the session closing) it
    cannot, so on Linux the kernel is asked to send this process SIGTERM when
    its parent dies: a worker never trains on, orphaned, holding its run's lock
    and the cores.  Its current epoch is lost, as after any kill.
    """
    limit_blas_threads(threads)
    try:
        import ctypes
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return
    pr_set_pdeathsig = 1
    prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent_pid:  # the grid died before the request was made
        os.kill(os.getpid(), signal.SIGTERM)


def run_grid_task(config, results_dir, data_dir=None, wait_if_busy=False, backend="c",
                  restart_corrupt=False, stop_after=None):
    """Train one run of a grid with :func:`experiments.training.alone.train_run`.

    Parameters
    ----------
    config : RunConfig
        The run
    results_dir : str
        Root of the results (an absolute path: Dask workers have their own
        working directory)
    data_dir : str or None
        Where the data set is; ``data.load_dataset``'s default when None
    wait_if_busy : bool
        When another process holds the run's lock: False returns at once with
        status ``busy``; True waits until the lock is free (that process
        finished the run, or died and left it to resume) and then trains
        whatever is left
    backend : {'c', 'jax'}
        What runs the run's compiled functions
    restart_corrupt : bool
        Train a run whose checkpoint is damaged again from epoch 0 (see
        :func:`~experiments.training.alone.train_run`)
    stop_after : int or None
        Train only up to this epoch now (see :func:`~experiments.training.alone.train_run`)

    Returns
    -------
    dict
        ``status`` (``complete``, ``diverged``, ``stopped`` or ``busy``), ``run_dir``,
        ``epochs_done``, ``epochs_trained``, ``seconds`` (wall time of the
        task), ``val_loss`` and ``val_acc`` (last finished epoch's, or None),
        ``worker`` (``host:pid``), ``compile_seconds`` (None when nothing was
        trained)

    Raises
    ------
    errors.UserError
        As :func:`~experiments.training.alone.train_run` does.
    RunFailed
        For any other exception (not ``KeyboardInterrupt``); its traceback is
        in the run's ``error.log``
    """
    # Imported here, not at the top: see the module docstring.
    from experiments.training.alone import train_run

    check_plugins([config])
    start = time.time()
    with _ONE_RUN_PER_PROCESS, _failures_logged([config], results_dir):
        while True:
            outcome = train_run(config, results_dir, data_dir=data_dir, progress=False,
                                backend=backend, restart_corrupt=restart_corrupt,
                                stop_after=stop_after)
            if outcome.status != "busy" or not wait_if_busy:
                break
            time.sleep(BUSY_POLL_SECONDS)
    return _summary(outcome, time.time() - start)


@contextlib.contextmanager
def _failures_logged(configs, results_dir):
    """Turn an exception other than a user error into :class:`RunFailed`, its traceback
    kept in each run's error log."""
    try:
        yield
    except UserError:
        raise
    except Exception as exc:
        raise RunFailed(_log_failure(configs, results_dir, exc)) from None


def _log_failure(configs, results_dir, exc):
    """Write the traceback being handled into each run's error log; the one-line report."""
    from experiments.store.atomic import write_error_log

    lines = str(exc).strip().splitlines()
    what = type(exc).__name__ + (": " + lines[0] if lines else "")
    header = "%s failed on %s:%d at %s%s\n" % (
        ", ".join(config.run_dir(results_dir) for config in configs), socket.gethostname(),
        os.getpid(), time.strftime("%Y-%m-%d %H:%M:%S %z"),
        " (trained together as one batch)" if len(configs) > 1 else "")
    kept, lost = [], []
    for config in configs:
        try:
            kept.append(write_error_log(config.run_dir(results_dir),
                                        header + traceback.format_exc()))
        except OSError as error:
            lost.append("%s (%s)" % (config.run_dir(results_dir), error.strerror or error))
    if lost:  # the worker's own stderr is then the only place left for it
        traceback.print_exc()
        return "%s (its traceback could not be written into %s; see the worker's output)" % (
            what, ", ".join(lost))
    return "%s (traceback in %s)" % (
        what, kept[0] if len(kept) == 1 else "each run's %s" % os.path.basename(kept[0]))


def _summary(outcome, seconds):
    """The task's summary of a run's :class:`~experiments.training.life.RunOutcome` (a run that
    ended well has lost the error log of an earlier failed try: see ``open_run``)."""
    from experiments.store.history import read_history
    from experiments.store.rundir import HISTORY_FILE

    try:
        history = read_history(os.path.join(outcome.run_dir, HISTORY_FILE)) or {}
    except UserError:  # a busy run's, being written by its process: no curves to show
        history = {}
    val_loss, val_acc = history.get("val_loss") or [None], history.get("val_acc") or [None]
    return {"status": outcome.status, "run_dir": outcome.run_dir,
            "epochs_done": outcome.epochs_done, "epochs_trained": outcome.epochs_trained,
            "seconds": seconds, "val_loss": val_loss[-1], "val_acc": val_acc[-1],
            "worker": "%s:%d" % (socket.gethostname(), os.getpid()),
            "compile_seconds": outcome.compile_seconds}


def run_grid_batch(configs, results_dir, data_dir=None, restart_corrupt=False,
                   stop_after=None):
    """Train runs that share a program together (JAX backend), as one task.

    Parameters
    ----------
    configs : sequence of RunConfig
        Runs grouped by :func:`experiments.records.config.group_configs`
    results_dir, data_dir, restart_corrupt, stop_after
        As for :func:`run_grid_task`

    Returns
    -------
    list of dict
        Per run, in order, the summary :func:`run_grid_task` returns (``seconds``:
        the whole task's); ``busy`` for a run another process holds (the grid
        submits it again on its own, waiting for it)

    Raises
    ------
    errors.UserError, RunFailed
        As :func:`run_grid_task`; a failure of the batch is every run's (the
        grid then trains them one at a time)
    """
    from experiments.training.batched import train_batch

    check_plugins(configs)
    start = time.time()
    with _ONE_RUN_PER_PROCESS, _failures_logged(configs, results_dir):
        outcomes = train_batch(configs, results_dir, data_dir=data_dir, progress=False,
                               restart_corrupt=restart_corrupt, stop_after=stop_after)
    return [_summary(outcome, time.time() - start) for outcome in outcomes]
