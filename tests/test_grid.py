"""The grid runner (experiments/grid.py: experiments/launch/grid.py, worker.py).

The grids here are narrow (2 to 4 runs of a few epochs) and train a tiny network on
small in-test arrays: the setup ``tiny`` (:data:`TINY`), which this module registers in
:mod:`experiments.records.setups` when imported; worker processes import it through
``$AMSGRAD_SETUPS`` (the ``tiny_setup`` fixture sets it, and the path to this module).
Every grid's curves are compared with the same runs trained directly in this process by
:func:`experiments.training.alone.train_run`.  Worker processes report through environment
variables what they did (which runs they built a model for, their BLAS thread count), and
can be made to pause in a chosen epoch of a chosen run (to be killed, or to hold its lock).

Fast tier: the grid's configs, bad input, a local grid (resuming, skipping, a failed run, BLAS
threads), a bug stopping the workers.  Slow tier (``-m slow``, subprocesses): two grid commands
on one results directory, a Dask scheduler with two workers one of which is killed, and one
real MNIST run against ``experiments/run.py``'s.
"""
import ctypes
import itertools
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import backends
import errors
from experiments.launch import capacity, dask_client, grid
from experiments.launch.worker import limit_blas_threads
from experiments.records import setups
from experiments.store.atomic import write_json
from experiments.training.alone import train_run
from test_training import curves, read, tiny_dataset, tiny_net

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(REPO, "tests")
GRID_SCRIPT = os.path.join(REPO, "experiments", "grid.py")
EPOCHS = 3
#: A narrow grid of four runs: both optimizers, with and without bias correction.
NARROW = ["tiny", "--lr", "0.01", "--beta2", "0.99", "--runs", "1", "--epochs", str(EPOCHS)]
#: How long a test waits for a worker before it fails.
TIMEOUT = 240


# ---------------------------------------------------------------- what the workers run

def _openblas_threads():
    """Threads of the OpenBLAS that NumPy loaded, asked from the library itself."""
    paths = {line.split()[-1] for line in open("/proc/self/maps") if "openblas" in line.lower()}
    for path in sorted(paths):
        library = ctypes.CDLL(path)
        for symbol in ("openblas_get_num_threads64_", "openblas_get_num_threads"):
            if hasattr(library, symbol):
                return getattr(library, symbol)()
    return None


def _pause_in_epoch(train_x, epoch):
    """Pause in the given (1-based) epoch of the run training on ``train_x``, once.

    The pause writes this process's id to ``$GRID_TEST_PAUSE_MARKER`` (created only if it
    does not exist: a resumed run does not pause again) and lasts until the file
    ``$GRID_TEST_RELEASE`` exists (or TIMEOUT seconds).
    """
    import data

    original = getattr(data.iterate_train_batches, "original", data.iterate_train_batches)
    epochs_seen = []

    def batches(x, *args, **kwargs):
        if x is train_x:
            epochs_seen.append(1)
        for index, batch in enumerate(original(x, *args, **kwargs)):
            if x is train_x and len(epochs_seen) == epoch and index == 2:
                try:
                    fd = os.open(os.environ["GRID_TEST_PAUSE_MARKER"],
                                 os.O_WRONLY | os.O_CREAT | os.O_EXCL)
                except FileExistsError:
                    pass
                else:
                    os.write(fd, str(os.getpid()).encode())
                    os.close(fd)
                    release = os.environ.get("GRID_TEST_RELEASE", "")
                    deadline = time.time() + TIMEOUT
                    while not os.path.exists(release) and time.time() < deadline:
                        time.sleep(0.05)
            yield batch

    batches.original = original
    data.iterate_train_batches = batches


def _load_tiny(config, data_dir=None):
    """The tiny setup's data: ``tiny_dataset()``, with the test hooks of the run.

    ``$GRID_TEST_PAUSE_RUN`` (``CELL/run=K``) and ``$GRID_TEST_PAUSE_EPOCH``: see
    :func:`_pause_in_epoch`.  ``$GRID_TEST_FAIL_RUN``: that run raises a RuntimeError (a
    bug), once the pause began if there is one.  Only in worker processes (a local pool's or
    Dask's, not a main process: this test's, or a grid command's, which loads the data once
    before it starts its workers).
    """
    dataset = tiny_dataset()
    name = _BUILDING[0] = "%s/run=%d" % (config.cell_name, config.run)
    if multiprocessing.current_process().name == "MainProcess":
        return dataset
    if os.environ.get("GRID_TEST_FAIL_RUN") == name:
        if os.environ.get("GRID_TEST_PAUSE_MARKER"):
            wait_for(lambda: os.path.exists(os.environ["GRID_TEST_PAUSE_MARKER"]), "the pause")
        raise RuntimeError("a bug in " + name)
    if os.environ.get("GRID_TEST_PAUSE_RUN") == name:
        _pause_in_epoch(dataset.train_x, int(os.environ["GRID_TEST_PAUSE_EPOCH"]))
    return dataset


def _build_tiny(input_shape, num_classes):
    """``tiny_net``; with ``$GRID_TEST_LOG``, a JSON line per model built (per run this
    process trains, resumes or tries to resume): run name, process id, OpenBLAS threads."""
    if os.environ.get("GRID_TEST_LOG"):
        with open(os.environ["GRID_TEST_LOG"], "a") as log:
            log.write(json.dumps({"run": _BUILDING[0], "pid": os.getpid(),
                                  "blas_threads": _openblas_threads()}) + "\n")
    return tiny_net(input_shape, num_classes)


#: The run whose model is built next in this process (its data is loaded just before).
_BUILDING = [None]
TINY = setups.Setup("tiny", dataset="tiny", network=None, flip_lr=False, input_shape=(1, 4, 4),
                    load_data=_load_tiny, build_network=_build_tiny)
setups.register(TINY)


@pytest.fixture(autouse=True)
def tiny_setup(monkeypatch):
    """Worker processes (local, Dask, subprocesses) import this module, which registers
    the tiny setup, through ``$AMSGRAD_SETUPS``; its hooks act there only."""
    monkeypatch.setenv(setups.PLUGIN_VARIABLE, "test_grid")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [TESTS, REPO] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))


# ---------------------------------------------------------------- helpers of the tests

def narrow_configs(epochs=EPOCHS):
    return grid.grid_configs("tiny", lrs=[0.01], beta2s=[0.99], runs=[0], epochs=epochs)


@pytest.fixture(scope="module")
def direct_curves(tmp_path_factory):
    """The narrow grid's curves, each run trained directly in this process."""
    results = str(tmp_path_factory.mktemp("direct"))
    found = {}
    for config in narrow_configs():
        outcome = train_run(config, results, progress=False)
        found[config] = curves(read(outcome.run_dir, "history.json"))
    return found


def check_curves(results_dir, expected):
    for config, expected_curves in expected.items():
        history = read(config.run_dir(str(results_dir)), "history.json")
        assert history["status"] == "complete" and len(history["loss"]) == EPOCHS
        assert curves(history) == expected_curves, config.cell_name  # exactly


def read_log(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f]


def run_name(config):
    return "%s/run=%d" % (config.cell_name, config.run)


def cli(argv, capsys):
    code = errors.run_cli(grid.main, argv, prog="grid.py")
    out, err = capsys.readouterr()
    return code, out, err


def wait_for(condition, what, processes=()):
    deadline = time.time() + TIMEOUT
    while not condition():
        for process in processes:
            assert process.poll() is None, "%s ended early (waiting for %s)" % (process.args, what)
        assert time.time() < deadline, "timed out waiting for " + what
        time.sleep(0.1)


def worker_environment(**variables):
    env = dict(os.environ, **variables)
    env["PYTHONPATH"] = os.pathsep.join([TESTS, REPO] + (
        [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def stop(processes):
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# ---------------------------------------------------------------- the grid's runs

def test_blog_grid_has_120_runs_run_index_outermost():
    configs = grid.grid_configs("vgg")
    assert len(configs) == len(set(configs)) == 120
    expected = itertools.product(range(5), [0.01, 0.001, 0.0001], [0.99, 0.999],
                                 ["adam", "amsgrad"], [True, False])
    assert [(c.run, c.lr, c.beta2, c.optimizer, c.bias_correction) for c in configs] == \
        list(expected)
    assert {(c.setup, c.epochs, c.batch_size, c.lr_schedule, c.seed, c.loss)
            for c in configs} == {("vgg", 150, 128, "linear", 0, "categorical")}


def test_grid_takes_the_cifar_centering_option():
    args = grid.build_parser().parse_args(["small_vgg", "--cifar-centering", "off"])
    assert args.cifar_centering == "off"
    configs = grid.grid_configs("small_vgg", cifar_centering=False)
    assert len(configs) == 120 and not any(c.cifar_centering for c in configs)
    assert all(c.cifar_centering for c in grid.grid_configs("small_vgg"))


def test_narrowed_grid_and_repeats():
    configs = grid.grid_configs("ffnn", lrs=[0.001, 0.001], beta2s=[0.999], runs=[3, 1, 3],
                                optimizers=["amsgrad"], bias_corrections=[False], epochs=7,
                                seed=2)
    assert [(c.run, c.lr, c.beta2, c.optimizer, c.bias_correction, c.epochs, c.seed)
            for c in configs] == [(3, 0.001, 0.999, "amsgrad", False, 7, 2),
                                  (1, 0.001, 0.999, "amsgrad", False, 7, 2)]


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("argv, message", [
    (["logreg", "--lr", "0"], "--lr must be a number > 0"),
    (["logreg", "--beta2", "0.99", "1"], "--beta2 must be a number in"),
    (["logreg", "--runs", "0"], "--runs must be >= 1"),
    (["logreg", "--run", "2", "-1"], "--run must be an integer >= 0"),
    (["logreg", "--epochs", "0"], "--epochs must be an integer >= 1"),
    (["logreg", "--workers", "0"], "--workers must be an integer >= 1"),
])
def test_bad_values_are_user_errors(argv, message, tmp_path, capsys):
    code, out, err = cli(argv + ["--results-dir", str(tmp_path / "R")], capsys)
    assert code == 2 and err.startswith("grid.py: error: ") and message in err
    assert len(err.strip().splitlines()) == 1
    assert not os.path.exists(tmp_path / "R" / "logreg")


def test_backend_jax_without_jax_stops_the_grid_before_it_starts(tmp_path, capsys,
                                                                 monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)  # import jax raises ImportError
    assert grid.build_parser().parse_args(["logreg"]).backend == "c"
    code, out, err = cli(["logreg", "--backend", "jax", "--results-dir", str(tmp_path / "R")],
                         capsys)
    assert code == 2 and "pip install jax==" in err and len(err.strip().splitlines()) == 1
    assert not os.path.exists(tmp_path / "R")


def test_grid_task_trains_on_the_backend_it_is_given(tmp_path, monkeypatch):
    pytest.importorskip("jax", reason="the JAX backend needs jax (pip install jax)")
    from experiments.launch.worker import run_grid_task
    compiled_on, compile_function = [], backends.compile_function

    def recording(*args, backend="c", **kwargs):
        compiled_on.append(backend)
        return compile_function(*args, backend=backend, **kwargs)
    monkeypatch.setattr(backends, "compile_function", recording)
    config = narrow_configs(epochs=1)[0]
    summary = run_grid_task(config, str(tmp_path), backend="jax")
    assert compiled_on == ["jax", "jax"]  # the training and the validation function
    assert summary["status"] == "complete" and summary["compile_seconds"] > 0
    line = grid._finished_line(config, summary, 1, 1)
    assert "compiled in %.1f s" % summary["compile_seconds"] in line
    expected = train_run(config, str(tmp_path / "c"), dataset=tiny_dataset(),
                         build_model=tiny_net, progress=False)
    jax_loss = read(summary["run_dir"], "history.json")["loss"]
    c_loss = read(expected.run_dir, "history.json")["loss"]
    assert compiled_on == ["jax", "jax", "c", "c"]
    assert np.allclose(jax_loss, c_loss, rtol=1e-3)


@pytest.mark.slow
def test_grid_with_jax_backend_workers(tmp_path, capsys):
    pytest.importorskip("jax", reason="the JAX backend needs jax (pip install jax)")
    argv = NARROW[:-1] + ["1", "--optimizer", "amsgrad", "--bias-correction", "on",
                          "--backend", "jax", "--results-dir", str(tmp_path / "R"),
                          "--workers", "1"]
    code, out, err = cli(argv, capsys)
    assert code == 0, err
    assert "compiled in" in out + err and "1 finished now (1 complete" in out


@pytest.mark.parametrize("argv", [["synthetic"], ["logreg", "--workers", "2", "--scheduler", "x"],
                                  ["logreg", "--runs", "2", "--run", "1"]])
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        grid.main(argv)
    assert exited.value.code == 2 and "usage: grid.py" in capsys.readouterr().err


def test_test_hook_is_not_in_the_help(capsys):
    with pytest.raises(SystemExit):
        grid.main(["--help"])
    help_text = capsys.readouterr().out
    assert "--scheduler" in help_text and "--workers" in help_text
    assert "problem" not in help_text


def test_unwritable_results_dir(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    code, _, err = cli(NARROW + ["--results-dir", str(blocker / "R")], capsys)
    assert code == 2 and "cannot create --results-dir" in err


def test_run_with_another_configuration_stops_the_grid_before_it_starts(tmp_path, capsys):
    other = grid.grid_configs("tiny", lrs=[0.01], beta2s=[0.99], runs=[0], epochs=5)[2]
    run_dir = other.run_dir(str(tmp_path))
    os.makedirs(run_dir)
    write_json(os.path.join(run_dir, "config.json"), other.to_dict())
    code, _, err = cli(NARROW + ["--results-dir", str(tmp_path)],
                       capsys)
    assert code == 2 and "different configuration (epochs=5 there, 3 here)" in err
    assert sorted(os.listdir(tmp_path / "tiny")) == [other.cell_name]


def test_scheduler_without_dask_says_how_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails
    code, _, err = cli(NARROW + ["--results-dir", str(tmp_path), "--scheduler", "tcp://x:1"],
                       capsys)
    assert code == 2 and "pip install 'dask[distributed]==" in err


def test_unreachable_scheduler(tmp_path, capsys, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(dask_client, "DASK_CONNECT_TIMEOUT", 1)
    code, _, err = cli(NARROW + ["--results-dir", str(tmp_path), "--scheduler",
                                 "tcp://127.0.0.1:1"], capsys)
    assert code == 2 and "cannot connect to the Dask scheduler at tcp://127.0.0.1:1" in err


def test_scheduler_that_is_an_http_server(tmp_path, capsys, monkeypatch):
    """An address that answers HTTP is one line and exit 2, not a client that reads
    ``HTTP/1.0`` as a 3 EiB message (or waits forever: the grid runs in a thread here)."""
    pytest.importorskip("distributed")
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = "tcp://127.0.0.1:%d" % server.server_address[1]
    monkeypatch.setattr(dask_client, "DASK_CONNECT_TIMEOUT", 2)
    ended = []
    command = threading.Thread(daemon=True, target=lambda: ended.append(cli(
        NARROW + ["--results-dir", str(tmp_path), "--scheduler", address], capsys)))
    try:
        command.start()
        command.join(60)
    finally:
        server.shutdown()
        server.server_close()
    assert ended, "the grid still waits on the HTTP server after 60 s"
    code, out, err = ended[0]
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("grid.py: error: %s is not a Dask scheduler: it sent nothing within "
                          "2 s of connecting" % address)
    assert not os.path.exists(tmp_path / "tiny")


def test_limit_blas_threads_warns_when_too_late(monkeypatch):
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    with pytest.warns(RuntimeWarning, match="NumPy was loaded before"):
        limit_blas_threads(3)  # NumPy is loaded in this process
    assert os.environ["OPENBLAS_NUM_THREADS"] == os.environ["OMP_NUM_THREADS"] == "3"


# ---------------------------------------------------------------- local processes

def test_local_grid_trains_resumes_skips_and_reports(tmp_path, capsys, monkeypatch,
                                                      direct_curves):
    results, log = tmp_path / "R", str(tmp_path / "log")
    monkeypatch.setenv("GRID_TEST_LOG", log)
    argv = NARROW + ["--results-dir", str(results), "--workers", "2"]
    interrupted, corrupt, *others = narrow_configs()
    # One run stopped after its first epoch, one with an unreadable checkpoint.
    train_run(interrupted, str(results), stop_after=1, progress=False)
    corrupt_dir = corrupt.run_dir(str(results))
    os.makedirs(corrupt_dir)
    write_json(os.path.join(corrupt_dir, "config.json"), corrupt.to_dict())
    write_json(os.path.join(corrupt_dir, "history.json"), {
        "loss": [1.0], "acc": [0.5], "val_loss": [1.0], "val_acc": [0.5], "lr": [0.01],
        "epoch_time": [1.0], "status": "running", "diverged_epoch": None})
    with open(os.path.join(corrupt_dir, "checkpoint.npz"), "wb") as f:
        f.write(b"not a checkpoint")
    os.remove(log)

    code, out, err = cli(argv, capsys)
    assert code == 2
    assert err.count("\n") == 1 and "1 of 4 runs failed: %s: cannot read checkpoint" % (
        os.path.abspath(corrupt_dir)) in err
    assert "%s run=0: failed: cannot read checkpoint" % corrupt.cell_name in out
    built = read_log(log)
    # (The corrupt run's model is built before its checkpoint is read.)
    assert sorted(entry["run"] for entry in built) == sorted(map(run_name, narrow_configs()))
    # Each worker's BLAS got cores // workers threads (NumPy's default would be all cores).
    assert {entry["blas_threads"] for entry in built} == {max(1, grid.available_cores() // 2)}
    assert "tiny %s run=0: complete, 3 epochs done (2 trained in" % interrupted.cell_name in out
    for config in others:
        assert "tiny %s run=0: complete, 3 epochs done (3 trained in" % config.cell_name in out
    assert sorted(line[:5] for line in out.splitlines() if line.startswith("[")) == [
        "[1/4]", "[2/4]", "[3/4]", "[4/4]"]

    # The user deletes the corrupt run as told: only that run is trained now.
    for name in os.listdir(corrupt_dir):
        os.remove(os.path.join(corrupt_dir, name))
    code, out, err = cli(argv, capsys)
    assert code == 0 and err == ""
    assert "3 of 4 runs already finished" in out
    assert [entry["run"] for entry in read_log(log)[len(built):]] == [run_name(corrupt)]
    assert "[4/4] tiny %s run=0: complete" % corrupt.cell_name in out
    assert "4 runs in the grid, 1 finished now (1 complete, 0 diverged)" in out
    check_curves(results, direct_curves)

    # Everything finished: nothing is trained, nothing changes.
    before = {c: open(os.path.join(c.run_dir(str(results)), "history.json")).read()
              for c in direct_curves}
    code, out, _ = cli(argv, capsys)
    assert code == 0 and "4 of 4 runs already finished" in out
    assert len(read_log(log)) == len(built) + 1
    assert before == {c: open(os.path.join(c.run_dir(str(results)), "history.json")).read()
                      for c in direct_curves}


def test_workers_are_capped_by_the_cores(tmp_path, capsys, monkeypatch, direct_curves):
    """``--workers 1000`` starts no more processes than cores (and memory for them), says so
    in one line on stderr, and trains the grid as one worker would."""
    log = str(tmp_path / "log")
    monkeypatch.setenv("GRID_TEST_LOG", log)
    cores = grid.available_cores()
    code, out, err = cli(NARROW + ["--results-dir", str(tmp_path / "R"), "--workers", "1000"],
                         capsys)
    assert code == 0 and err.count("\n") == 1, err
    assert err.startswith("--workers 1000 lowered to ") and \
        ("this machine has %d core%s and " % (cores, "s" if cores > 1 else "")) in err
    workers = int(err.split()[4].rstrip(":"))
    assert 1 <= workers <= cores
    built = read_log(log)
    assert len({entry["pid"] for entry in built}) <= workers
    assert {entry["blas_threads"] for entry in built} == {max(1, cores // workers)}
    check_curves(tmp_path / "R", direct_curves)


def test_workers_are_capped_by_the_free_memory(monkeypatch):
    """Workers the free memory (Linux's MemAvailable, read for real) has no room for are not
    started: here each would need ten times what is free, so one is, with the reason."""
    free = capacity.available_memory()
    if free is None:
        pytest.skip("no MemAvailable in /proc/meminfo here")
    with open("/proc/meminfo") as f:
        total = int(next(line for line in f if line.startswith("MemTotal:")).split()[1])
    assert 0 < free <= total * 1024
    monkeypatch.setattr(capacity, "WORKER_MEMORY", 10 * free)
    workers, notice = capacity.fit_workers(2)
    assert workers == 1
    assert notice.startswith("--workers 2 lowered to 1: this machine has ")
    assert "GiB of memory available, room for 0 workers of about %d MiB" % (
        10 * free // 2**20) in notice
    assert capacity.fit_workers(1) == (1, None)


def check_failed_run(config, results_dir, out, err, failed=1, total=4):
    """A grid's report of a run whose data loader raised: exit 2's one line, the console's
    line, and the traceback in the run's error.log."""
    run_dir = config.run_dir(str(results_dir))
    log = os.path.join(run_dir, "error.log")
    what = "RuntimeError: a bug in %s (traceback in %s)" % (run_name(config), log)
    assert err.count("\n") == 1 and err.startswith(
        "grid.py: error: %d of %d runs failed: " % (failed, total))
    assert "%s: %s" % (run_dir, what) in err
    assert "%s: failed: %s" % (run_name(config).replace("/", " "), what) in out
    text = open(log).read()
    assert text.startswith(run_dir + " failed on ") and "Traceback (most recent call last)" in text
    assert "in _load_tiny" in text and text.endswith("RuntimeError: a bug in %s\n" % (
        run_name(config)))


def test_a_bug_in_a_run_fails_it_and_the_others_finish(tmp_path, capsys, monkeypatch,
                                                       direct_curves):
    results = tmp_path / "R"
    argv = NARROW + ["--results-dir", str(results), "--workers", "2"]
    failing, *others = narrow_configs()
    monkeypatch.setenv("GRID_TEST_FAIL_RUN", run_name(failing))
    code, out, err = cli(argv, capsys)
    assert code == 2
    check_failed_run(failing, results, out, err)
    for config in others:
        assert "tiny %s run=0: complete, 3 epochs done (3 trained in" % config.cell_name in out
    check_curves(results, {config: direct_curves[config] for config in others})

    # Fixed, the same command trains the failed run (only), and its error log goes.
    monkeypatch.delenv("GRID_TEST_FAIL_RUN")
    code, out, err = cli(argv, capsys)
    assert code == 0 and err == "" and "3 of 4 runs already finished" in out
    assert "[4/4] tiny %s run=0: complete" % failing.cell_name in out
    assert not os.path.exists(os.path.join(failing.run_dir(str(results)), "error.log"))
    check_curves(results, direct_curves)


def test_ctrl_c_stops_the_runs_in_progress(tmp_path, monkeypatch):
    import threading

    held = narrow_configs()[0]
    marker = str(tmp_path / "held")
    for name, value in (("GRID_TEST_PAUSE_RUN", run_name(held)), ("GRID_TEST_PAUSE_EPOCH", "1"),
                        ("GRID_TEST_PAUSE_MARKER", marker)):
        monkeypatch.setenv(name, value)

    def interrupt():  # Ctrl-C, once the run is paused in its first epoch
        wait_for(lambda: os.path.exists(marker) and open(marker).read(), "the pause")
        os.kill(os.getpid(), signal.SIGINT)

    start = time.time()
    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        grid.run_grid([held], str(tmp_path), workers=2)
    assert time.time() - start < TIMEOUT / 2  # did not wait for the paused run
    with pytest.raises(ProcessLookupError):
        os.kill(int(open(marker).read()), 0)  # its worker was stopped and reaped
    # It stopped in its first epoch: nothing finished, it resumes from the start.
    assert read(held.run_dir(str(tmp_path)), "history.json")["loss"] == []


@pytest.mark.slow
def test_two_grid_commands_do_not_train_a_run_twice(tmp_path, direct_curves):
    results, log = str(tmp_path / "R"), str(tmp_path / "log")
    held, *others = narrow_configs()
    marker, release = str(tmp_path / "held"), str(tmp_path / "release")
    env = worker_environment(GRID_TEST_LOG=log, GRID_TEST_PAUSE_RUN=run_name(held),
                             GRID_TEST_PAUSE_EPOCH="1", GRID_TEST_PAUSE_MARKER=marker,
                             GRID_TEST_RELEASE=release)

    def start(name, workers):
        out = open(str(tmp_path / (name + ".out")), "w+")
        return out, subprocess.Popen(
            [sys.executable, GRID_SCRIPT] + NARROW + ["--results-dir", results, "--workers",
                                                      str(workers)],
            env=env, cwd=str(tmp_path), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)

    processes = []
    try:
        first_out, first = start("first", 1)
        processes.append(first)
        # The first command holds the first run's lock, paused in its first epoch ...
        wait_for(lambda: os.path.exists(marker) and open(marker).read(), "the held run",
                 processes)
        second_out, second = start("second", 2)
        processes.append(second)
        # ... while the second trains the three others, then waits for that run.
        wait_for(lambda: all(os.path.exists(os.path.join(c.run_dir(results), "history.json"))
                             and read(c.run_dir(results), "history.json")["status"] == "complete"
                             for c in others), "the second command's runs", processes)
        open(release, "w").close()
        assert first.wait(TIMEOUT) == 0 and second.wait(TIMEOUT) == 0
    finally:
        stop(processes)
    first_out.seek(0)
    second_out.seek(0)
    first_text, second_text = first_out.read(), second_out.read()

    built = read_log(log)
    assert sorted(entry["run"] for entry in built) == sorted(map(run_name, [held] + others))
    held_by = int(open(marker).read())
    assert [entry["pid"] for entry in built if entry["run"] == run_name(held)] == [held_by]
    assert "tiny %s run=0: another process is training it" % held.cell_name in second_text
    assert "tiny %s run=0: complete, 3 epochs done (0 trained in" % held.cell_name \
        in second_text
    for config in others:
        assert "tiny %s run=0: complete, 3 epochs done (0 trained in" % config.cell_name \
            in first_text
    # The second command ran two workers: one BLAS thread each on two cores.
    assert {e["blas_threads"] for e in built if e["pid"] != held_by} == {
        max(1, grid.available_cores() // 2)}
    check_curves(results, direct_curves)


# ---------------------------------------------------------------- Dask

def start_process(tmp_path, env, processes, name, command, out=None):
    """Start ``command`` in its own session (added to ``processes``); its output goes to
    ``tmp_path/NAME.out``, or to ``out`` with stderr piped."""
    process = subprocess.Popen(command, env=env, cwd=str(tmp_path),
                               stdout=out or open(str(tmp_path / (name + ".out")), "w"),
                               stderr=subprocess.PIPE if out else subprocess.STDOUT,
                               start_new_session=True, text=True)
    processes.append(process)
    return process


def start_dask_cluster(tmp_path, env, processes):
    """A Dask scheduler and two one-thread workers on 127.0.0.1; returns its address."""
    dask = os.path.join(os.path.dirname(sys.executable), "dask")
    scheduler_file = str(tmp_path / "scheduler.json")
    start_process(tmp_path, env, processes, "scheduler", [
        dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
        "--scheduler-file", scheduler_file])
    wait_for(lambda: os.path.exists(scheduler_file), "the scheduler", processes)
    with open(scheduler_file) as f:
        address = json.load(f)["address"]
    for name in ("worker1", "worker2"):
        start_process(tmp_path, env, processes, name, [
            dask, "worker", address, "--nthreads", "1", "--host", "127.0.0.1",
            "--no-dashboard", "--name", name])
    return address


@pytest.mark.slow
def test_dask_grid_survives_a_killed_worker(tmp_path, direct_curves):
    pytest.importorskip("distributed")
    results, log = str(tmp_path / "R"), str(tmp_path / "log")
    victim = narrow_configs()[1]
    marker = str(tmp_path / "victim")
    env = worker_environment(GRID_TEST_LOG=log, GRID_TEST_PAUSE_RUN=run_name(victim),
                             GRID_TEST_PAUSE_EPOCH="2", GRID_TEST_PAUSE_MARKER=marker)
    processes = []
    try:
        address = start_dask_cluster(tmp_path, env, processes)
        grid_command = start_process(tmp_path, env, processes, "grid", [
            sys.executable, GRID_SCRIPT] + NARROW + ["--results-dir", results,
                                                     "--scheduler", address])
        wait_for(lambda: os.path.exists(marker) and open(marker).read(), "the victim run",
                 processes)
        killed_pid = int(open(marker).read())
        assert len(read(victim.run_dir(results), "history.json")["loss"]) == 1
        os.kill(killed_pid, signal.SIGKILL)
        assert grid_command.wait(TIMEOUT) == 0
    finally:
        stop(processes)
    grid_text = open(str(tmp_path / "grid.out")).read()
    # What the scheduler, the workers and the grid said, shown when a check fails.
    logs = "\n".join("--- %s\n%s" % (path.name, path.read_text()[-6000:]) for path in (
        tmp_path / name for name in ("log", "grid.out", "scheduler.out", "worker1.out",
                                     "worker2.out")) if path.exists())

    built = read_log(log)
    runs = [entry["run"] for entry in built]
    assert sorted(runs) == sorted(map(run_name, narrow_configs() + [victim])), logs
    assert [entry["pid"] for entry in built if entry["run"] == run_name(victim)][0] == killed_pid
    assert killed_pid not in [e["pid"] for e in built if e["run"] == run_name(victim)][1:], logs
    # Every run is reported once; the victim's second attempt trained what was left.
    for config in narrow_configs():
        assert grid_text.count("tiny %s run=0: complete" % config.cell_name) == 1
    assert "tiny %s run=0: complete, 3 epochs done (2 trained in" % victim.cell_name \
        in grid_text
    check_curves(results, direct_curves)


def grid_on_dask(tmp_path, cluster_env, grid_env, results):
    """grid.py NARROW on a Dask cluster started with ``cluster_env`` (the grid itself with
    ``grid_env``), every process stopped afterwards: (the grid's process, stdout, stderr)."""
    processes = []
    try:
        address = start_dask_cluster(tmp_path, cluster_env, processes)
        grid_command = start_process(tmp_path, grid_env, processes, "grid", [
            sys.executable, GRID_SCRIPT] + NARROW + ["--results-dir", str(results),
                                                     "--scheduler", address],
            out=subprocess.PIPE)
        out, err = grid_command.communicate(timeout=TIMEOUT)
    finally:
        stop(processes)
    return grid_command, out, err


@pytest.mark.slow
def test_dask_grid_reports_a_bug_in_a_run_and_finishes_the_others(tmp_path, direct_curves):
    pytest.importorskip("distributed")
    results = tmp_path / "R"
    failing, *others = narrow_configs()
    env = worker_environment(GRID_TEST_FAIL_RUN=run_name(failing))
    grid_command, out, err = grid_on_dask(tmp_path, env, env, results)
    assert grid_command.returncode == 2, out + err
    check_failed_run(failing, results, out, err)
    for config in others:
        assert "tiny %s run=0: complete, 3 epochs done (3 trained in" % config.cell_name in out
    check_curves(results, {config: direct_curves[config] for config in others})


@pytest.mark.slow
def test_dask_worker_without_the_plugin_says_so(tmp_path):
    """Dask workers started without the grid's ``$AMSGRAD_PLUGINS`` do not know the setup its
    runs name: the grid stops with one line saying so, not one "unreadable config" per run
    (what a run begun earlier, whose config.json is there, was reported as)."""
    pytest.importorskip("distributed")
    results = str(tmp_path / "R")
    train_run(narrow_configs()[0], results, stop_after=1, progress=False)
    bare = {name: value for name, value in worker_environment().items()
            if name not in (setups.PLUGIN_VARIABLE, "AMSGRAD_SETUPS")}
    grid_command, out, err = grid_on_dask(tmp_path, bare, worker_environment(), results)
    assert grid_command.returncode == 2, out + err
    assert err.count("\n") == 1 and "unreadable" not in out + err, err
    assert err.startswith("grid.py: error: the worker ") and (
        "lacks the plug-in that registers the setup 'tiny' (its $AMSGRAD_PLUGINS: unset); "
        "start the workers with AMSGRAD_PLUGINS=test_grid as this command has") in err


# ---------------------------------------------------------------- the real data

@pytest.mark.slow
def test_grid_run_equals_run_py_on_mnist(tmp_path, shared_data):
    import data
    if not hasattr(data, "load_dataset"):
        pytest.skip("data.load_dataset is not there yet")
    common = ["--lr", "0.001", "--beta2", "0.99", "--epochs", "1", "--data-dir", shared_data]
    grid_command = [sys.executable, GRID_SCRIPT, "logreg", "--runs", "1", "--optimizer",
                    "amsgrad", "--bias-correction", "off", "--results-dir",
                    str(tmp_path / "grid")] + common
    run_command = [sys.executable, os.path.join(REPO, "experiments", "run.py"), "logreg",
                   "--optimizer", "amsgrad", "--bias-correction", "off", "--results-dir",
                   str(tmp_path / "run")] + common
    for command in (grid_command, run_command):
        subprocess.run(command, check=True, cwd=str(tmp_path), timeout=600,
                       stdout=subprocess.DEVNULL)
    config = grid.grid_configs("logreg", lrs=[0.001], beta2s=[0.99], runs=[0],
                               optimizers=["amsgrad"], bias_corrections=[False], epochs=1)[0]
    assert curves(read(config.run_dir(str(tmp_path / "grid")), "history.json")) == \
        curves(read(config.run_dir(str(tmp_path / "run")), "history.json"))
    assert np.isfinite(read(config.run_dir(str(tmp_path / "grid")), "history.json")["loss"][0])


# ---------------------------------------------------------------- faults

@pytest.mark.parametrize("option, value, message", [
    ("--lr", "1e-46", "--lr 1e-46 is 0 in float32"),
    ("--lr", "1e39", "--lr 1e+39 is infinite in float32"),
    ("--beta2", "0.99999999", "--beta2 0.99999999 is 1 in float32"),
])
def test_values_invalid_in_float32_stop_the_grid_before_it_starts(tmp_path, capsys, option,
                                                                   value, message):
    argv = NARROW + ["--results-dir", str(tmp_path / "R")]
    argv[argv.index(option) + 1] = value
    code, out, err = cli(argv, capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("grid.py: error: " + message)
    assert not (tmp_path / "R").exists()


def test_damaged_checkpoints_fail_their_runs_and_the_others_finish(tmp_path, capsys,
                                                                    direct_curves):
    from test_training import damage, snapshot

    results = tmp_path / "R"
    argv = NARROW + ["--results-dir", str(results), "--workers", "2"]
    truncated, flipped, *others = narrow_configs()
    damaged = {truncated: "truncated", flipped: "bit-flipped"}
    for config, how in damaged.items():
        train_run(config, str(results), stop_after=1, progress=False)
        damage(os.path.join(config.run_dir(str(results)), "checkpoint.npz"), how)
    before = {config: snapshot(config.run_dir(str(results))) for config in damaged}

    code, out, err = cli(argv, capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("grid.py: error: 2 of 4 runs failed: ")
    for config in damaged:
        checkpoint_path = os.path.join(config.run_dir(str(results)), "checkpoint.npz")
        assert "%s: cannot read checkpoint %s: it is damaged" % (
            config.run_dir(str(results)), checkpoint_path) in err
        assert "%s: failed: cannot read checkpoint" % run_name(config).replace("/", " ") in out
        assert snapshot(config.run_dir(str(results))) == before[config]  # nothing changed
    for config in others:  # trained to the end, as if nothing had happened beside them
        assert "tiny %s run=0: complete, 3 epochs done (3 trained in" % config.cell_name in out
    check_curves(results, {config: direct_curves[config] for config in others})

    # As told: the same command with --restart-corrupt trains those two from epoch 0.
    code, out, err = cli(argv + ["--restart-corrupt"], capsys)
    assert code == 0 and err == "" and "2 of 4 runs already finished" in out
    check_curves(results, direct_curves)


@pytest.mark.slow
def test_grid_batches_runs_that_share_a_program(tmp_path, capsys):
    # Two learning rates x two runs of each of the four programs (optimizer x bias
    # correction): four batches of four runs, each one task.
    pytest.importorskip("jax", reason="the JAX backend needs jax (pip install jax)")
    argv = ["tiny", "--lr", "0.01", "0.001", "--beta2", "0.99", "--runs", "2", "--epochs", "2",
            "--backend", "jax", "--results-dir", str(tmp_path / "R"), "--workers", "1"]
    code, out, err = cli(argv, capsys)
    assert code == 0, err
    assert "16 finished now (16 complete" in out
    configs = grid.grid_configs("tiny", lrs=[0.01, 0.001], beta2s=[0.99], runs=[0, 1], epochs=2)
    times = {}
    for config in configs:
        alone = train_run(config, str(tmp_path / "alone"), progress=False, backend="jax")
        history = read(config.run_dir(str(tmp_path / "R")), "history.json")
        assert curves(history) == curves(read(alone.run_dir, "history.json")), config
        times.setdefault((config.optimizer, config.bias_correction), set()).add(
            tuple(history["epoch_time"]))
    # A batch's runs share their epochs' wall times: one program trained them together.
    assert len(times) == 4 and all(len(epoch_times) == 1 for epoch_times in times.values())


@pytest.mark.slow
def test_a_bug_in_a_batch_fails_only_its_run(tmp_path, capsys, monkeypatch):
    # Two batches of two runs (one program); the first run of the first batch fails (its
    # data loader, which loads the batch's data), so the whole batch fails at first.
    pytest.importorskip("jax", reason="the JAX backend needs jax (pip install jax)")
    from experiments.records.config import group_configs

    results = tmp_path / "R"
    argv = ["tiny", "--lr", "0.01", "0.001", "--beta2", "0.99", "--optimizer", "adam",
            "--bias-correction", "on", "--runs", "2", "--epochs", "2", "--backend", "jax",
            "--batch-runs", "2", "--results-dir", str(results), "--workers", "1"]
    configs = grid.grid_configs("tiny", lrs=[0.01, 0.001], beta2s=[0.99], optimizers=["adam"],
                                bias_corrections=[True], runs=[0, 1], epochs=2)
    (failing, companion), other_batch = group_configs(configs, 2)
    monkeypatch.setenv("GRID_TEST_FAIL_RUN", run_name(failing))
    code, out, err = cli(argv, capsys)
    assert code == 2
    check_failed_run(failing, results, out, err)
    assert ("tiny %s run=%d and 1 more: their batch failed (RuntimeError: a bug in %s (traceback "
            "in each run's error.log)); training them one at a time" % (
                failing.cell_name, failing.run, run_name(failing))) in out
    # The batch's other run was trained alone, the other batch together: all as if alone.
    assert not os.path.exists(os.path.join(companion.run_dir(str(results)), "error.log"))
    for config in [companion] + list(other_batch):
        history = read(config.run_dir(str(results)), "history.json")
        assert history["status"] == "complete" and len(history["loss"]) == 2
        alone = train_run(config, str(tmp_path / "alone"), progress=False, backend="jax")
        assert curves(history) == curves(read(alone.run_dir, "history.json")), config


def test_batch_runs_needs_the_jax_backend(tmp_path, capsys):
    code, out, err = cli(NARROW + ["--batch-runs", "4", "--results-dir", str(tmp_path)], capsys)
    assert code == 2 and "--batch-runs 4 needs --backend jax" in err
    code, out, err = cli(NARROW + ["--batch-runs", "0", "--results-dir", str(tmp_path)], capsys)
    assert code == 2 and "--batch-runs must be >= 1" in err
    assert not os.listdir(str(tmp_path))


@pytest.mark.slow
def test_workers_end_when_the_grid_process_is_killed(tmp_path, direct_curves):
    results = str(tmp_path / "R")
    held = narrow_configs()[0]
    marker = str(tmp_path / "held")
    env = worker_environment(GRID_TEST_PAUSE_RUN=run_name(held), GRID_TEST_PAUSE_EPOCH="2",
                             GRID_TEST_PAUSE_MARKER=marker,
                             GRID_TEST_RELEASE=str(tmp_path / "never"))
    command = [sys.executable, GRID_SCRIPT] + NARROW + ["--results-dir", results]
    grid_process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: os.path.exists(marker) and open(marker).read(), "the paused run",
                 [grid_process])
        worker = int(open(marker).read())
        os.kill(grid_process.pid, signal.SIGKILL)  # the grid only: no clean-up of its own
        grid_process.wait()
        # Its worker, paused in the run, ends too (it would otherwise wait TIMEOUT seconds).
        wait_for(lambda: not os.path.exists("/proc/%d" % worker) or
                 open("/proc/%d/stat" % worker).read().split()[2] == "Z", "the worker's end")
    finally:
        stop([grid_process])
    # The run kept its first epoch, and the same command finishes the grid.
    assert len(read(held.run_dir(results), "history.json")["loss"]) == 1
    subprocess.run(command, env=worker_environment(), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=TIMEOUT)
    check_curves(results, direct_curves)
