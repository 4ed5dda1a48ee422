"""Runs trained as one batch (experiments/training/batched.py, --batch-runs) against the
same runs trained alone on the JAX backend.

The reference is :func:`experiments.training.alone.train_run` with ``backend="jax"``: the
same run, its own program, its own minibatches.  Measured with JAX 0.4.30 on the CPU:
for dense networks (logistic regression, here and on the real MNIST at batch sizes
1 to 4; a hidden layer with batch norm and dropout) the batched runs' histories and
checkpoints are bit for bit those of the runs alone; for CifarNet and SmallVgg
(convolutions, LRN, batch norm) XLA's grouped convolutions round some float32 sums
differently (tests/test_batched.py), so their curves agree within float32 rounding
(tolerances at :func:`assert_close_runs`).
"""
import json
import os
import types

import numpy as np
import pytest

import compat  # noqa: F401  (Theano flags before lasagne)
import models
from experiments.records import setups
from experiments.records.config import RunConfig, group_configs, program_key
from experiments.store.lock import run_lock
from experiments.training.alone import train_run
from experiments.training.life import RunOutcome
from test_training import tiny_config, tiny_dataset, tiny_logreg, tiny_net

pytest.importorskip("jax", reason="JAX is not installed")
from experiments.training.batched import train_batch  # noqa: E402

CURVES = ("loss", "acc", "val_loss", "val_acc", "lr")
RATES = (0.01, 0.003)


def configs(epochs=3, runs=(0, 1), **fields):
    """Runs that share a program: two learning rates x the run indices."""
    return [tiny_config(lr=lr, run=run, epochs=epochs, **fields) for run in runs for lr in RATES]


def history(results_dir, config):
    with open(os.path.join(config.run_dir(str(results_dir)), "history.json")) as stream:
        return json.load(stream)


def checkpoint(results_dir, config):
    """Every member of the run's checkpoint.npz (values, generator state, history)."""
    path = os.path.join(config.run_dir(str(results_dir)), "checkpoint.npz")
    with np.load(path, allow_pickle=False) as contents:
        return {name: contents[name] for name in contents.files}


def alone(results_dir, runs, dataset, build, **arguments):
    return [train_run(config, str(results_dir), dataset=dataset, build_model=build,
                      progress=False, backend="jax", **arguments) for config in runs]


def assert_same_runs(results_dir, other_dir, runs):
    """Bit for bit: every curve and every checkpointed value."""
    for config in runs:
        mine, theirs = history(results_dir, config), history(other_dir, config)
        assert mine["status"] == theirs["status"]
        for name in CURVES:
            assert mine[name] == theirs[name], (config.cell_name, name)
        arrays, other_arrays = checkpoint(results_dir, config), checkpoint(other_dir, config)
        assert sorted(arrays) == sorted(other_arrays)
        for name in arrays:
            if name != "history":  # its epoch times differ; its curves are compared above
                np.testing.assert_array_equal(arrays[name], other_arrays[name], err_msg=name)


@pytest.mark.parametrize("build", [tiny_logreg, tiny_net], ids=["logreg", "bn_dropout"])
def test_batched_runs_write_what_the_runs_alone_write(tmp_path, build):
    runs, dataset = configs(), tiny_dataset()
    alone(tmp_path / "alone", runs, dataset, build)
    outcomes = train_batch(runs, str(tmp_path / "batched"), dataset=dataset, build_model=build,
                           progress=False)
    assert [outcome.status for outcome in outcomes] == ["complete"] * len(runs)
    assert [outcome.epochs_trained for outcome in outcomes] == [3] * len(runs)
    assert all(outcome.compile_seconds > 0 for outcome in outcomes)
    assert_same_runs(tmp_path / "batched", tmp_path / "alone", runs)
    # The runs really differ (their own rates, seeds and data orders)
    losses = {tuple(history(tmp_path / "batched", config)["loss"]) for config in runs}
    assert len(losses) == len(runs)


def test_one_step_per_call_and_padded_calls_train_the_same(tmp_path):
    # 300 examples in batches of 32: 10 steps, so 4 per call pads the last call with 2.
    runs, dataset = configs(epochs=2), tiny_dataset()
    for steps in (1, 4, 64):
        train_batch(runs, str(tmp_path / str(steps)), dataset=dataset, build_model=tiny_net,
                    progress=False, steps_per_call=steps)
    assert_same_runs(tmp_path / "1", tmp_path / "4", runs)
    assert_same_runs(tmp_path / "1", tmp_path / "64", runs)


def test_a_batch_split_by_memory_trains_the_same(tmp_path):
    runs, dataset = configs(), tiny_dataset()
    train_batch(runs, str(tmp_path / "whole"), dataset=dataset, build_model=tiny_net,
                progress=False)
    train_batch(runs, str(tmp_path / "parts"), dataset=dataset, build_model=tiny_net,
                progress=False, max_runs=3)
    assert_same_runs(tmp_path / "parts", tmp_path / "whole", runs)


def test_the_memory_estimate_bounds_a_batch(tmp_path, monkeypatch):
    from experiments.training import batched

    runs, dataset = configs(epochs=1), tiny_dataset()
    network = tiny_logreg((1, 4, 4), 3)
    # tiny_logreg: 51 float32 values and their Adam states; 3 + 48 activations a minibatch
    one_run = batched._bytes_per_run(network, [], 32)
    assert one_run == 3 * 4 * 32 * (16 + 3)
    # Memory for two runs' estimate (and a bit): the four runs train as two batches of two.
    monkeypatch.setattr(batched, "_bytes_per_run", lambda *arguments: 1000)
    monkeypatch.setattr(batched, "_available_memory",
                        lambda: int(2.5 * 1000 / batched.MEMORY_FRACTION))
    train_batch(runs, str(tmp_path), dataset=dataset, build_model=tiny_logreg, progress=False)
    times = [tuple(history(tmp_path, config)["epoch_time"]) for config in runs]
    assert times[0] == times[1] and times[2] == times[3] and times[0] != times[2]


def test_a_gpu_reports_its_own_memory(monkeypatch):
    import jax

    from experiments.training import batched

    class Device:
        def memory_stats(self):
            return {"bytes_limit": 12345, "bytes_in_use": 0}

    monkeypatch.setattr(jax, "devices", lambda: [Device()])
    assert batched._available_memory() == 12345


def test_runs_resume_batched_or_alone(tmp_path):
    runs, dataset = configs(), tiny_dataset()
    alone(tmp_path / "alone", runs, dataset, tiny_net)
    # batched first, alone afterwards
    train_batch(runs, str(tmp_path / "then_alone"), dataset=dataset, build_model=tiny_net,
                progress=False, stop_after=1)
    assert history(tmp_path / "then_alone", runs[0])["status"] == "running"
    outcomes = alone(tmp_path / "then_alone", runs, dataset, tiny_net)
    assert [outcome.epochs_trained for outcome in outcomes] == [2] * len(runs)
    assert_same_runs(tmp_path / "then_alone", tmp_path / "alone", runs)
    # alone first, batched afterwards
    alone(tmp_path / "then_batched", runs, dataset, tiny_net, stop_after=2)
    outcomes = train_batch(runs, str(tmp_path / "then_batched"), dataset=dataset,
                           build_model=tiny_net, progress=False)
    assert [outcome.epochs_trained for outcome in outcomes] == [1] * len(runs)
    assert_same_runs(tmp_path / "then_batched", tmp_path / "alone", runs)


def test_runs_at_different_epochs_are_brought_level(tmp_path):
    runs, dataset = configs(epochs=4), tiny_dataset()
    alone(tmp_path / "alone", runs, dataset, tiny_net)
    # After an interruption: run 0 of each rate has 2 epochs, one run 1, one run none.
    results = tmp_path / "level"
    alone(results, runs[:2], dataset, tiny_net, stop_after=2)
    alone(results, runs[2:3], dataset, tiny_net, stop_after=1)
    outcomes = train_batch(runs, str(results), dataset=dataset, build_model=tiny_net,
                           progress=False)
    assert [outcome.epochs_trained for outcome in outcomes] == [2, 2, 3, 4]
    assert [outcome.status for outcome in outcomes] == ["complete"] * 4
    assert_same_runs(results, tmp_path / "alone", runs)
    # The batch started with the run furthest behind: it trained alone in the first
    # epoch, with one more run the second, all four in the last two.
    times = [history(results, config)["epoch_time"] for config in runs]
    assert times[3][0] not in times[2] and times[3][1] == times[2][1]
    assert times[3][2] == times[0][2] == times[1][2] == times[2][2]


def test_a_diverged_run_leaves_the_batch_and_the_others_go_on(tmp_path):
    # A rate of 1e37 overflows the logits in its first epoch.
    runs, dataset = configs() + [tiny_config(lr=1e37, run=2)], tiny_dataset()
    alone(tmp_path / "alone", runs, dataset, tiny_logreg)
    diverged_alone = history(tmp_path / "alone", runs[-1])
    assert diverged_alone["status"] == "diverged" and diverged_alone["diverged_epoch"] == 1
    outcomes = train_batch(runs, str(tmp_path / "batched"), dataset=dataset,
                           build_model=tiny_logreg, progress=False)
    assert [outcome.status for outcome in outcomes] == ["complete"] * 4 + ["diverged"]
    assert outcomes[-1].epochs_done == 0 and outcomes[-1].epochs_trained == 0
    diverged = history(tmp_path / "batched", runs[-1])
    assert diverged == dict(diverged_alone, epoch_time=[])
    assert not os.path.exists(os.path.join(runs[-1].run_dir(str(tmp_path / "batched")),
                                           "checkpoint.npz"))
    assert_same_runs(tmp_path / "batched", tmp_path / "alone", runs[:-1])


def test_a_run_another_process_holds_is_left_out(tmp_path):
    runs, dataset = configs(epochs=1), tiny_dataset()
    held = runs[1].run_dir(str(tmp_path))
    os.makedirs(held)
    with run_lock(held):
        outcomes = train_batch(runs, str(tmp_path), dataset=dataset, build_model=tiny_logreg,
                               progress=False)
    assert outcomes[1] == RunOutcome("busy", held, None, 0)
    assert [outcomes[i].status for i in (0, 2, 3)] == ["complete"] * 3
    assert sorted(os.listdir(held)) == [".lock"]


def test_finished_runs_are_not_trained_again(tmp_path):
    runs, dataset = configs(epochs=1), tiny_dataset()
    train_batch(runs, str(tmp_path), dataset=dataset, build_model=tiny_logreg, progress=False)
    before = [history(tmp_path, config) for config in runs]
    outcomes = train_batch(runs, str(tmp_path), dataset=dataset, build_model=tiny_logreg,
                           progress=False)
    assert [(outcome.status, outcome.epochs_trained) for outcome in outcomes] == \
        [("complete", 0)] * len(runs)
    assert [history(tmp_path, config) for config in runs] == before


def test_runs_that_differ_in_a_graph_constant_are_refused(tmp_path):
    runs = [tiny_config(), tiny_config(beta2=0.999)]
    with pytest.raises(ValueError, match="group them"):
        train_batch(runs, str(tmp_path), dataset=tiny_dataset(), build_model=tiny_logreg,
                    progress=False)
    assert not os.path.exists(runs[0].run_dir(str(tmp_path)))


def test_grouping_splits_on_every_graph_constant_and_keeps_order():
    from experiments.launch.grid import grid_configs

    grid = grid_configs("logreg")
    groups = group_configs(grid)
    assert len(groups) == 8 and all(len(group) == 15 for group in groups)
    for group in groups:
        assert len({(c.optimizer, c.beta2, c.bias_correction) for c in group}) == 1
        assert sorted({(c.lr, c.run) for c in group}) == sorted(
            (lr, run) for lr in (0.01, 0.001, 0.0001) for run in range(5))
        assert [grid.index(config) for config in group] == sorted(
            grid.index(config) for config in group)
    assert sum(map(len, group_configs(grid, 4))) == 120
    assert max(map(len, group_configs(grid, 4))) == 4
    assert program_key(grid[0]) != program_key(grid[1])
    assert program_key(tiny_config(seed=3, lr=0.5, run=7)) == program_key(tiny_config())
    assert program_key(tiny_config(epochs=4)) != program_key(tiny_config())


# ---------------------------------------------------------------- the real networks

def small_cifar(n_train=48, n_val=40, seed=0):
    rng = np.random.RandomState(seed)
    shape = (3, 32, 32)
    return types.SimpleNamespace(
        name="cifar10", train_x=rng.rand(n_train, *shape).astype("float32") - 0.5,
        train_y=rng.randint(0, 10, n_train).astype("int32"),
        val_x=rng.rand(n_val, *shape).astype("float32") - 0.5,
        val_y=rng.randint(0, 10, n_val).astype("int32"), num_classes=10, input_shape=shape)


def assert_close_runs(results_dir, other_dir, runs):
    """Within float32 rounding, amplified by a few Adam steps.

    Measured (2 epochs of 3 steps of 16 examples, 4 runs): training losses
    relative 7e-8 (CifarNet) and 6e-7 then 4e-5 (SmallVgg, whose batch norm of
    16 examples amplifies rounding; allowed 1e-5 in the first epoch, 1e-3
    after); validation losses 1e-7 and 1.2e-4; accuracies equal (allowed: one
    example).
    """
    for config in runs:
        mine, theirs = history(results_dir, config), history(other_dir, config)
        assert mine["status"] == theirs["status"] == "complete"
        np.testing.assert_allclose(mine["loss"][0], theirs["loss"][0], rtol=1e-5)
        for name in ("loss", "val_loss"):
            np.testing.assert_allclose(mine[name], theirs[name], rtol=1e-3, err_msg=name)
        for name in ("acc", "val_acc"):
            np.testing.assert_allclose(mine[name], theirs[name], atol=1.01 / 16, err_msg=name)
        assert mine["lr"] == theirs["lr"]


@pytest.mark.slow
@pytest.mark.parametrize("setup", ["cifarnet", "small_vgg"])
def test_cifar_networks_batched_match_the_runs_alone(tmp_path, setup):
    # Their own builder, the setup's flips (each run's own draws), two rates, two runs.
    runs = [tiny_config(setup=setup, lr=lr, run=run, epochs=2, batch_size=16)
            for run in (0, 1) for lr in (0.001, 0.0001)]
    dataset = small_cifar()

    def build(shape, classes):
        return models.build(setup, shape, classes)

    alone(tmp_path / "alone", runs, dataset, build)
    train_batch(runs, str(tmp_path / "batched"), dataset=dataset, build_model=build,
                progress=False)
    assert_close_runs(tmp_path / "batched", tmp_path / "alone", runs)
    # The runs' data orders and flips are their own: with independent seeding (the
    # default) no two runs of the batch end with the same generator state.
    states = [checkpoint(tmp_path / "batched", config)["rng_keys"] for config in runs]
    for i in range(len(states)):
        for j in range(i):
            assert not np.array_equal(states[i], states[j]), (runs[i], runs[j])


def mnist_logreg(lr, run=0):
    return RunConfig(setup="logreg", optimizer="amsgrad", lr=lr, beta2=0.99,
                     bias_correction=True, run=run, epochs=2)


@pytest.mark.slow
def test_logreg_on_real_mnist_batched_by_1_2_or_4_and_resumed_either_way_is_the_run_alone(
        tmp_path, shared_data):
    # Issue 22: at MNIST's shapes (128 x 784 x 10) a batched matrix product rounds otherwise
    # than a run's own, which the tiny data above does not show.
    runs = [mnist_logreg(0.01), mnist_logreg(0.003, run=1), mnist_logreg(0.001)]
    diverging = mnist_logreg(3e38)  # its weights overflow in its first epoch: the loss is NaN
    dataset = setups.get("logreg").load(runs[0], shared_data)
    reference = tmp_path / "alone"
    alone(reference, runs + [diverging], dataset, None)
    assert history(reference, diverging)["status"] == "diverged"
    # 4 runs, one diverging in the first epoch and leaving: 3 in the second.
    outcomes = train_batch(runs + [diverging], str(tmp_path / "four"), dataset=dataset,
                           progress=False)
    assert [outcome.status for outcome in outcomes] == ["complete"] * 3 + ["diverged"]
    assert history(tmp_path / "four", diverging) == dict(history(reference, diverging),
                                                         epoch_time=[])
    assert_same_runs(tmp_path / "four", reference, runs)
    # Batched, then alone: 2 runs for the first epoch, then one alone, one in a batch of 1.
    both_ways = tmp_path / "batched_then_alone"
    train_batch(runs[:2], str(both_ways), dataset=dataset, progress=False, stop_after=1)
    alone(both_ways, runs[:1], dataset, None)
    train_batch(runs[1:2], str(both_ways), dataset=dataset, progress=False)
    assert_same_runs(both_ways, reference, runs[:2])
    # Alone, then batched: run 2's first epoch alone; the batch trains a new run alone
    # (a batch of 1) in the first epoch, then both.
    both_ways = tmp_path / "alone_then_batched"
    alone(both_ways, runs[2:], dataset, None, stop_after=1)
    outcomes = train_batch(runs[::2], str(both_ways), dataset=dataset, progress=False)
    assert [outcome.epochs_trained for outcome in outcomes] == [2, 1]
    assert_same_runs(both_ways, reference, runs[::2])
    # The runs differ (rates, seeds, data orders): equal curves are not a coincidence.
    assert len({history(reference, config)["loss"][0] for config in runs}) == 3


def test_run_py_trains_its_runs_as_one_batch_with_the_jax_backend(tmp_path, capsys):
    import errors
    import test_grid  # noqa: F401  (registers the setup "tiny")
    from experiments.launch import cli

    argv = ["tiny", "--lr", "0.01", "--beta2", "0.99", "--runs", "3", "--optimizer",
            "amsgrad", "--bias-correction", "on", "--epochs", "2", "--results-dir",
            str(tmp_path)]
    assert errors.run_cli(cli.main, argv + ["--backend", "jax"], prog="run.py") == 0
    runs = [tiny_config(setup="tiny", lr=0.01, run=run, epochs=2, batch_size=128)
            for run in range(3)]
    times = {tuple(history(tmp_path, config)["epoch_time"]) for config in runs}
    assert len(times) == 1  # one batch: its epochs' times are every run's
    assert errors.run_cli(cli.main, argv + ["--batch-runs", "2"], prog="run.py") == 2
    assert "--batch-runs 2 needs --backend jax" in capsys.readouterr().err
