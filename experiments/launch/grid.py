"""
The blog's grid for one setup, trained on this machine or on a Dask cluster.

.. autosummary::
    :nosignatures:

    grid_configs
    run_grid
    main

::

    python experiments/grid.py SETUP [--lr LR ...] [--beta2 B2 ...]
        [--optimizer NAME ...|both] [--bias-correction on|off|both]
        [--runs N | --run K ...] [--protocol blog|mcgill] [--epochs 150] [--batch-size 128]
        [--stop-after K] [--lr-schedule linear|inv-sqrt|constant] [--loss categorical|binary]
        [--seed S] [--cifar-centering on|off] [--workers N | --scheduler ADDRESS]
        [--results-dir R] [--data-dir D] [--backend c|jax] [--batch-runs K] [--restart-corrupt]

The grid of a setup is adam and amsgrad x beta2 {0.99, 0.999} x lr {0.01,
0.001, 0.0001} x bias correction {on, off} x runs 0-4: 120 runs
(``--optimizer`` names others: any registered optimizer, see
:mod:`experiments.records.optimizers`).  With
``--protocol mcgill`` (:mod:`experiments.records.protocols`), the reproduction
study's: the same lr and beta2 values without bias correction, 60 runs of
50 epochs (MNIST) or 30 (CIFAR-10) with lr/sqrt(t) and the multiclass
log-loss.  Each one is
a :class:`~experiments.records.config.RunConfig` trained by
:func:`experiments.training.alone.train_run`, the code behind
``experiments/run.py``, into the same results layout, so a grid's run and
the same run started by ``experiments/run.py`` are identical.  Finished runs
(``complete`` or ``diverged``) are skipped; interrupted ones resume from their
last checkpoint.

**Where the runs train.**  By default in ``--workers N`` local processes
(started with ``spawn``); N is lowered to the cores and what the free memory
holds, in one line on stderr (:func:`experiments.launch.capacity.fit_workers`),
and each one limits its BLAS to cores // N threads so that the workers do not
oversubscribe the cores.  With ``--scheduler ADDRESS`` the runs go to an
existing Dask distributed cluster (``dask scheduler`` and ``dask worker
ADDRESS`` processes; ``pip install 'dask[distributed]'``), one task per run,
through :mod:`experiments.launch.dask_client` (which first checks that the
address is a Dask scheduler).  The results and data directories
must then be the same paths on every machine (a shared file system), and
the project must be installed, and the plug-ins named in ``$AMSGRAD_PLUGINS``,
where the workers run (a worker that lacks one stops the grid).  Start the workers with
``--nthreads 1`` (a process trains one run at a time; use ``--nworkers`` for
several per machine); their nanny already sets the BLAS threads to 1.  A
run whose worker dies is rescheduled by Dask on another worker and resumes
from its checkpoint.

**Backend.**  ``--backend jax`` has every run's functions compiled into one
JAX program (:mod:`backends`) instead of Theano's C code; it is not part of a
run's identity.  The local workers share Theano's compile cache (compat's
``base_compiledir``, one directory per machine and Python): the first worker
compiles a model's C code, the others load it.  Each finished run's line says
how long its compilation took.

**Batches.**  With ``--backend jax`` the runs that differ only in learning
rate, run index or seed are trained together as one program, one task per
batch (:mod:`experiments.training.batched`): the blog's grid of a setup is 8
batches of 15 runs (optimizer, beta2 and bias correction are constants of the
graph, so they split the grid).  ``--batch-runs K`` caps a batch at K runs,
``--batch-runs 1`` trains one run per task as with the C backend.  A run that
another process holds leaves its batch and is waited for on its own, as above.

**Two commands on one results directory.**  A process holds a run's lock
(:func:`experiments.store.lock.run_lock`) while it trains it.  A run that
another process holds is put back at the end of the queue; once the other
runs are done, its task waits for the lock, then finds the run finished (or
resumes what the other process left).  So no run is trained twice at once,
and a command returns when all of its grid's runs are finished.

**Output.**  One progress bar (runs done / total, time left; on a terminal)
and one line per finished run.  A run that fails is reported in one line and
the others go on: a user error (a corrupt checkpoint, say) by its message,
anything else (a bug, a plug-in's or the environment's fault) by its type and
first line, with its traceback in the run's ``error.log``.  A batch that fails
is trained again one run at a time, so only its failing runs fail.  The
command then ends with exit code 2 and the list; a failed run is not
finished, so the same command tries it again (and removes its ``error.log``
once it ends well).  A worker process that dies, or a Dask task that kills
its workers too often, stops the grid instead (see ``Raises`` of
:func:`run_grid`).  ``--restart-corrupt`` trains the runs
whose checkpoint is damaged again from epoch 0 (the file is moved to
``checkpoint.npz.corrupt``, or ``.corrupt.2``, ... beside earlier ones).

Examples
--------
>>> from experiments.launch.grid import grid_configs, run_grid
>>> configs = grid_configs("logreg", lrs=[0.001], runs=[0], epochs=2)
>>> len(configs)
4
>>> summaries = run_grid(configs, "results", workers=2)   # doctest: +SKIP

From the shell, the same four runs, then the whole grid on a Dask cluster::

    python experiments/grid.py logreg --lr 0.001 --runs 1 --epochs 2 --workers 2
    python experiments/grid.py vgg --scheduler tcp://10.0.0.1:8786
"""
import argparse
import concurrent.futures
import contextlib
import functools
import multiprocessing
import os
import sys

# Nothing imported at the top may load NumPy: the local worker processes (spawned) set
# their BLAS thread count before NumPy loads (see experiments.launch.worker).
import backends  # imports no NumPy
from errors import UserError
from experiments.launch.capacity import fit_workers
from experiments.launch.dask_client import dask_cluster
from experiments.launch.worker import (MissingPlugin, RunFailed, run_grid_batch, run_grid_task,
                                       start_worker)
from experiments.store.threads import available_cores

__all__ = ["grid_configs", "run_grid", "main", "build_parser"]


def build_parser(prog="grid.py"):
    """The ``argparse`` parser of the grid's command line."""
    from experiments.launch.options import add_run_options

    parser = argparse.ArgumentParser(
        prog=prog, description="Train the blog's grid of a setup (resumable): adam and amsgrad "
        "(or the optimizers named) x beta2 x lr x bias correction x runs, locally or on a Dask "
        "cluster.")
    add_run_options(parser, many=True)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N",
                       help="local worker processes, each training one run at a time with "
                            "cores/N BLAS threads; lowered to the cores and what the free "
                            "memory holds, with a notice (default: 1)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="send the runs to this Dask scheduler (e.g. tcp://host:8786) "
                            "instead; results and data directories must be shared paths")
    return parser


def grid_configs(setup, lrs=None, beta2s=None, optimizers=None,
                 bias_corrections=(True, False), runs=None, **protocol):
    """The runs of a (narrowed) grid, run index outermost.

    Parameters
    ----------
    setup : str
        ``logreg``, ``ffnn``, ``cifarnet``, ``small_vgg``, ``vgg`` (or a registered one)
    lrs, beta2s : sequences of float
        Learning rates and beta2 values (repeats are dropped); the blog's by default
    optimizers : sequence of str
        Registered optimizers (:mod:`experiments.records.optimizers`); the blog's
        (adam, amsgrad) by default
    bias_corrections : sequence of bool
    runs : sequence of int
        Run indices; the blog's 0-4 by default
    **protocol
        The other :class:`~experiments.records.config.RunConfig` fields (``epochs``,
        ``batch_size``, ``lr_schedule``, ``loss``, ``seed``,
        ``cifar_centering``); the blog's protocol by default

    Returns
    -------
    list of RunConfig
        Every cell's run 0 before any run 1, so the first comparable results
        arrive early (:func:`experiments.launch.options.expand`).

    Raises
    ------
    errors.UserError
        For an invalid value; the message names the option.
    """
    from experiments.launch.options import BLOG_BETA2S, BLOG_LRS, BLOG_RUNS, expand
    from experiments.records import protocols

    if optimizers is None:
        optimizers = protocols.get("blog").optimizers
    return expand(setup, BLOG_LRS if lrs is None else lrs,
                  BLOG_BETA2S if beta2s is None else beta2s, optimizers, bias_corrections,
                  range(BLOG_RUNS) if runs is None else runs, **protocol)


def _task(configs, wait_if_busy, task_arguments):
    """``(function, keyword arguments)`` of the task that trains ``configs``.

    Several runs are one batch (:func:`run_grid_batch`); one run is
    :func:`run_grid_task`'s.  Either returns a list of summaries or one.
    """
    if len(configs) > 1:
        arguments = dict(task_arguments, configs=list(configs))
        del arguments["backend"]  # batches run on JAX
        return run_grid_batch, arguments
    return run_grid_task, dict(task_arguments, config=configs[0], wait_if_busy=wait_if_busy)


@contextlib.contextmanager
def _local_pool(workers, task_arguments):
    """``(submit, wait_first, lost_worker_errors)`` of a pool of local processes."""
    threads = max(1, available_cores() // workers)
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
        initializer=start_worker, initargs=(threads, os.getpid()))

    def submit(configs, wait_if_busy):
        function, arguments = _task(configs, wait_if_busy, task_arguments)
        return pool.submit(function, **arguments)

    def wait_first(futures):
        return concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_COMPLETED)

    try:
        yield submit, wait_first, (concurrent.futures.BrokenExecutor,)
    except BaseException:
        # Stop the runs in progress rather than wait hours for them: every finished epoch
        # is checkpointed and the kernel releases a killed process's run lock.  (No
        # public API for this before Python 3.14's terminate_workers.)
        processes = list((pool._processes or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join()
        raise
    finally:
        pool.shutdown(wait=True)


def _finished_runs(configs, results_dir):
    """Check every run directory before touching any; return the set of finished runs."""
    from experiments.store.history import read_history
    from experiments.store.rundir import FINISHED, HISTORY_FILE, check_run_dir

    finished = set()
    for config in configs:
        check_run_dir(config, results_dir)
        try:
            history = read_history(os.path.join(config.run_dir(results_dir), HISTORY_FILE))
        except UserError:
            continue  # its task rebuilds it from the checkpoint, or reports it
        if history and history["status"] in FINISHED:
            finished.add(config)
    return finished


def _run_name(config):
    return "%s %s run=%d" % (config.setup, config.cell_name, config.run)


def _finished_line(config, summary, done, total):
    from tqdm import tqdm

    line = "[%d/%d] %s: %s, %d epochs done (%d trained in %s on %s)" % (
        done, total, _run_name(config), summary["status"], summary["epochs_done"] or 0,
        summary["epochs_trained"], tqdm.format_interval(summary["seconds"]), summary["worker"])
    if summary.get("compile_seconds") is not None:
        line += ", compiled in %.1f s" % summary["compile_seconds"]
    if summary["val_loss"] is not None:
        line += ", val_loss %.4f val_acc %.4f" % (summary["val_loss"], summary["val_acc"])
    return line


def run_grid(configs, results_dir, data_dir=None, workers=1, scheduler=None, backend="c",
             restart_corrupt=False, stop_after=None, batch_runs=1):
    """Train runs in parallel, skipping finished ones and resuming interrupted ones.

    Parameters
    ----------
    configs : list of RunConfig
        The runs, e.g. from :func:`grid_configs`; started in this order
    results_dir : str
        Root of the results
    data_dir : str or None
        Where the data set is; ``data.load_dataset``'s default when None
    workers : int
        Local worker processes (ignored with ``scheduler``); lowered to what the
        machine holds (:func:`~experiments.launch.capacity.fit_workers`), with a
        line on stderr
    scheduler : str or None
        Address of a Dask scheduler to send the runs to instead
    backend : {'c', 'jax'}
        What runs each run's compiled functions (see
        :func:`experiments.training.alone.train_run`)
    restart_corrupt : bool
        Train runs whose checkpoint is damaged again from epoch 0 (see
        :func:`experiments.training.alone.train_run`); without it they fail
    stop_after : int or None
        Train each run only up to this epoch now (the same command without it
        continues them)
    batch_runs : int or None
        With ``backend="jax"``: train up to this many runs that share a
        program as one task (:func:`experiments.records.config.group_configs`); None:
        all of them.  1 (the default): one run per task.

    Returns
    -------
    dict
        Run directory -> summary (see :func:`~experiments.launch.worker.run_grid_task`)
        of each run this call trained or checked; runs finished before the
        call are not in it.

    Raises
    ------
    errors.UserError
        Before anything runs: bad arguments, an unwritable results directory,
        a run directory holding another configuration, missing data.  After
        all runs ended: the runs that failed, each with its one-line message
        (for an exception other than a user error: its type, first line and
        the path of the ``error.log`` that keeps its traceback).  Also, at
        once, when a worker process dies or Dask loses a run's workers too
        often (running the command again resumes), or a worker lacks the
        plug-in of a run's setup or optimizer (:class:`~experiments.launch.worker.MissingPlugin`).
    """
    from tqdm import tqdm

    results_dir = os.path.abspath(results_dir)
    data_dir = None if data_dir is None else os.path.abspath(data_dir)
    todo, done = _runs_to_train(configs, results_dir, data_dir, workers, scheduler, backend,
                                tqdm.write)
    if not todo:
        return {}
    from experiments.records.config import group_configs

    if batch_runs == 1:
        tasks = [(config,) for config in todo]
    elif backend != "jax":
        raise UserError("--batch-runs needs --backend jax (runs are batched into one JAX "
                        "program)")
    else:
        tasks = [tuple(group) for group in group_configs(todo, batch_runs)]
    task_arguments = dict(results_dir=results_dir, data_dir=data_dir, backend=backend,
                          restart_corrupt=restart_corrupt, stop_after=stop_after)
    if scheduler is None:
        workers, notice = fit_workers(workers)
        if notice:
            print(notice, file=sys.stderr)
        cluster = _local_pool(workers, task_arguments)
    else:
        cluster = dask_cluster(scheduler, functools.partial(_task, task_arguments=task_arguments),
                               _run_name, tqdm.write)
    # A bar only on a terminal (tqdm's disable=None); the numbered lines go to logs too.
    bar = tqdm(total=len(configs), initial=done, unit="run", disable=None,
               desc=" ".join(dict.fromkeys(config.setup for config in todo)))
    with bar, cluster as (submit, wait_first, lost_worker_errors):
        summaries, failures = _collect(tasks, submit, wait_first, lost_worker_errors,
                                       _Progress(bar, done, len(configs), results_dir))
    if failures:
        raise UserError("%d of %d runs failed: %s; fix that and run the same command again "
                        "(finished runs are skipped)"
                        % (len(failures), len(configs), "; ".join(failures)))
    return summaries


def _runs_to_train(configs, results_dir, data_dir, workers, scheduler, backend, say):
    """Check everything a grid needs before it starts; ``(runs to train, runs finished)``."""
    from experiments.records import setups
    from experiments.store.rundir import check_writable

    if scheduler is None and (not isinstance(workers, int) or workers < 1):
        raise UserError("--workers must be an integer >= 1, got %r" % (workers,))
    backends.check_backend(backend)  # here: a missing JAX stops the grid before any run
    check_writable(results_dir)
    finished = _finished_runs(configs, results_dir)
    todo = [config for config in configs if config not in finished]
    if finished:
        say("%d of %d runs already finished (complete or diverged); skipping them"
            % (len(finished), len(configs)))
    if todo and scheduler is None:
        # Loaded (downloaded, verified) once here: missing data stops the grid before
        # any worker starts, and the workers do not download it side by side.
        firsts = {(config.dataset, config.cifar_centering): config for config in todo}
        for config in firsts.values():
            setups.get(config.setup).load(config, data_dir)
    return todo, len(finished)


class _Progress:
    """The grid's bar and its numbered lines, one per run that ended."""

    def __init__(self, bar, done, total, results_dir):
        self.bar, self.done, self.total, self.results_dir = bar, done, total, results_dir

    def ended(self, config, summary=None, error=None):
        from tqdm import tqdm

        self.done += 1
        self.bar.update(1)
        if error is not None:
            tqdm.write("[%d/%d] %s: failed: %s" % (self.done, self.total, _run_name(config),
                                                   error))
            return "%s: %s" % (config.run_dir(self.results_dir), error)
        tqdm.write(_finished_line(config, summary, self.done, self.total))
        return None


def _collect(tasks, submit, wait_first, lost_worker_errors, progress):
    """Submit every task (a tuple of runs), resubmit busy runs, gather ``(summaries, failures)``.

    A batch that failed is submitted again as one task per run: the runs that
    can be trained alone are, and each failure is its own run's.
    """
    from tqdm import tqdm

    summaries, failures = {}, []
    pending = {submit(configs, False): configs for configs in tasks}
    while pending:
        for future in wait_first(pending).done:
            configs = pending.pop(future)
            results, error = _result(future, configs, lost_worker_errors)
            if error is not None and len(configs) > 1:
                tqdm.write("%s and %d more: their batch failed (%s); training them one at a "
                           "time" % (_run_name(configs[0]), len(configs) - 1, error))
                pending.update((submit((config,), False), (config,)) for config in configs)
                continue
            for config, summary in zip(configs, results or [None] * len(configs)):
                if error is None and summary["status"] == "busy":
                    tqdm.write("%s: another process is training it; waiting for it after "
                               "the other runs" % _run_name(config))
                    pending[submit((config,), True)] = (config,)
                    continue
                failure = progress.ended(config, summary, error)
                if failure is None:
                    summaries[summary["run_dir"]] = summary
                else:
                    failures.append(failure)
    return summaries, failures


def _result(future, configs, lost_worker_errors):
    """``(summaries, None)`` of a finished task or ``(None, error)`` of a failed one; raises
    to stop the grid when its workers are lost."""
    names = ", ".join(map(_run_name, configs))
    try:
        result = future.result()
        return (result if isinstance(result, list) else [result]), None
    except MissingPlugin as exc:  # every run sent to that worker would fail the same way
        raise UserError(_missing_plugin_advice(exc))
    except (UserError, RunFailed) as exc:
        return None, exc
    except lost_worker_errors as exc:
        raise UserError("the worker training %s died (%s: %s); finished epochs "
                        "are checkpointed, run the same command again to resume "
                        "(fewer workers%s need less memory)"
                        % (names, type(exc).__name__, exc,
                           " or a smaller --batch-runs" if len(configs) > 1 else ""))
    except ImportError as exc:  # unpickling the task itself: no run started
        raise UserError("a worker cannot import %s (%s); install the project "
                        "where the workers run (pip install -e .)" % (exc.name, exc))
    except Exception as exc:  # around the task (Dask's, say), not in it: no error log
        lines = str(exc).strip().splitlines()
        return None, type(exc).__name__ + (": " + lines[0] if lines else "")


def _missing_plugin_advice(exc):
    """What a worker's :class:`MissingPlugin` says, and what to start the workers with."""
    from experiments.records import plugins

    names = ",".join(plugins.module_names())
    if not names:  # registered by this command's own code: the workers cannot have it
        return "%s; this command names no plug-in in $%s" % (exc, plugins.PLUGIN_VARIABLE)
    return ("%s; start the workers with %s=%s as this command has, each module importable "
            "there (PYTHONPATH), then run the same command again"
            % (exc, plugins.PLUGIN_VARIABLE, names))


def main(argv=None, prog="grid.py"):
    """Train the grid a command line asks for; see the module docstring.

    Returns
    -------
    int
        0 (diverged runs are results, not errors)
    """
    from experiments.launch.options import configs_from_args, runs_per_batch

    args = build_parser(prog).parse_args(argv)
    configs = configs_from_args(args)
    if args.scheduler is None:
        # The local workers share this environment: a wrong one (Theano's compile cache,
        # flags) is one line here rather than one per run.
        import compat  # noqa: F401
    summaries = run_grid(configs, args.results_dir, data_dir=args.data_dir,
                         workers=1 if args.workers is None else args.workers,
                         scheduler=args.scheduler, backend=args.backend,
                         restart_corrupt=args.restart_corrupt, stop_after=args.stop_after,
                         batch_runs=runs_per_batch(args))
    statuses = [summary["status"] for summary in summaries.values()]
    stopped = statuses.count("stopped")
    print("%s: %d runs in the grid, %d finished now (%d complete, %d diverged)%s, results in %s"
          % (args.setup, len(configs), len(statuses) - stopped, statuses.count("complete"),
             statuses.count("diverged"),
             ", %d stopped at --stop-after %d" % (stopped, args.stop_after) if stopped else "",
             os.path.abspath(args.results_dir)))
    return 0
