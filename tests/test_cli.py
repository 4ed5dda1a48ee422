"""The training command line (experiments/launch/cli.py, through experiments/run.py)."""
import contextlib
import json
import os
import subprocess
import sys

import pytest

from errors import UserError, run_cli
from experiments.launch import cli, options
from experiments.records.config import RunConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse(*argv):
    return cli.build_parser().parse_args(["logreg", "--lr", "0.001", "--beta2", "0.99"]
                                         + list(argv))


def test_defaults_are_the_blogs_protocol_for_all_four_variants():
    configs = options.configs_from_args(parse())
    assert [(c.optimizer, c.bias_correction) for c in configs] == [
        ("adam", True), ("adam", False), ("amsgrad", True), ("amsgrad", False)]
    for config in configs:
        assert (config.epochs, config.batch_size, config.lr_schedule, config.loss,
                config.beta1, config.epsilon, config.run) == (
            150, 128, "linear", "categorical", 0.9, 1e-8, 0)


def test_run_selection_puts_the_run_index_outermost():
    configs = options.configs_from_args(parse("--runs", "3", "--optimizer", "amsgrad"))
    assert [(c.run, c.bias_correction) for c in configs] == [
        (0, True), (0, False), (1, True), (1, False), (2, True), (2, False)]
    [config] = options.configs_from_args(parse("--run", "4", "--optimizer", "adam",
                                           "--bias-correction", "off", "--epochs", "7",
                                           "--lr-schedule", "inv-sqrt", "--seed", "3"))
    assert config == RunConfig(setup="logreg", optimizer="adam", lr=0.001, beta2=0.99,
                               bias_correction=False, run=4, epochs=7,
                               lr_schedule="inv-sqrt", seed=3)


def test_cifar_centering_option():
    def configs(setup, *argv):
        return options.configs_from_args(cli.build_parser().parse_args(
            [setup, "--lr", "0.001", "--beta2", "0.99"] + list(argv)))
    assert all(c.cifar_centering for c in configs("cifarnet") + configs("logreg"))
    assert not any(c.cifar_centering for c in configs("vgg", "--cifar-centering", "off"))
    with pytest.raises(UserError, match="applies to the CIFAR-10 setups only"):
        configs("logreg", "--cifar-centering", "off")


@pytest.mark.parametrize("argv, message", [
    (["--lr", "0"], "--lr must be a number > 0"),
    (["--lr", "-0.1"], "--lr must be a number > 0"),
    (["--lr", "nan"], "--lr must be a number > 0"),
    (["--beta2", "1"], "--beta2 must be a number in (0, 1)"),
    (["--beta2", "0"], "--beta2 must be a number in (0, 1)"),
    (["--epochs", "0"], "--epochs must be an integer >= 1"),
    (["--batch-size", "0"], "--batch-size must be an integer >= 1"),
    (["--runs", "0"], "--runs must be >= 1"),
    (["--run", "-1"], "--run must be an integer >= 0"),
    (["--stop-after", "0"], "--stop-after must be >= 1"),
    # Sizes past what a run can hold, refused before anything is allocated or written.
    (["--epochs", "1" + "0" * 400], "--epochs must be at most 100000"),
    (["--epochs", "1" + "0" * 250], "--epochs must be at most 100000"),
    (["--epochs", "100001"], "--epochs must be at most 100000"),
    (["--batch-size", "2000000000"], "--batch-size must be at most 50000 (the training "
                                     "examples of mnist)"),
    (["--batch-size", "50001"], "--batch-size must be at most 50000"),
])
def test_bad_values_exit_2_with_one_line(tmp_path, capsys, argv, message):
    results = tmp_path / "results"
    args = {"--lr": "0.001", "--beta2": "0.99"}
    rest = []
    for key, value in zip(argv[::2], argv[1::2]):
        if key in args:
            args[key] = value
        else:
            rest += [key, value]
    full = ["logreg", "--lr", args["--lr"], "--beta2", args["--beta2"],
            "--results-dir", str(results)] + rest
    assert run_cli(cli.main, full) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not results.exists()


def test_unknown_setup_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["resnet", "--lr", "0.001", "--beta2", "0.99"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'resnet'" in capsys.readouterr().err


def test_unwritable_results_dir(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    argv = ["logreg", "--lr", "0.001", "--beta2", "0.99", "--results-dir", str(blocker / "R")]
    assert run_cli(cli.main, argv) == 2
    assert "cannot create --results-dir" in capsys.readouterr().err


def test_conflicting_run_stops_the_command_before_any_run_starts(tmp_path, capsys):
    results = str(tmp_path)
    other = RunConfig(setup="logreg", optimizer="amsgrad", lr=0.001, beta2=0.99,
                      bias_correction=False, run=1, epochs=20)
    os.makedirs(other.run_dir(results))
    config_path = os.path.join(other.run_dir(results), "config.json")
    with open(config_path, "w") as f:
        json.dump(other.to_dict(), f)
    argv = ["logreg", "--lr", "0.001", "--beta2", "0.99", "--runs", "2",
            "--results-dir", results]
    assert run_cli(cli.main, argv) == 2
    err = capsys.readouterr().err
    assert "different configuration" in err and "epochs=20 there, 150 here" in err
    # Nothing written: not the conflicting run, not the runs that would have come first.
    assert json.load(open(config_path)) == other.to_dict()
    assert sorted(os.listdir(os.path.join(results, "logreg"))) == [other.cell_name]
    assert os.listdir(other.run_dir(results)) == ["config.json"]


def test_run_py_reports_errors_as_one_line_and_exit_2(tmp_path):
    completed = subprocess.run(
        [sys.executable, os.path.join(REPO, "experiments", "run.py"), "ffnn", "--lr", "0.001",
         "--beta2", "1.5", "--results-dir", str(tmp_path / "R")],
        capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    assert completed.stderr == "run.py: error: --beta2 must be a number in (0, 1), got 1.5\n"


def as_without_root_powers(argv):
    """``argv`` run so that file permissions hold: root reads and writes anything unless it
    drops the capabilities that let it (util-linux's setpriv)."""
    if os.geteuid() != 0:
        return argv
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", "--bounding-set=" + caps, "--inh-caps=" + caps] + argv


def test_a_read_only_run_directory_is_one_line_and_exit_2(tmp_path):
    config = RunConfig(setup="logreg", optimizer="adam", lr=0.01, beta2=0.99,
                       bias_correction=True, run=0, epochs=1)
    run_dir = config.run_dir(str(tmp_path))
    os.makedirs(run_dir)
    os.chmod(run_dir, 0o555)
    completed = subprocess.run(as_without_root_powers(
        [sys.executable, os.path.join(REPO, "experiments", "run.py"), "logreg", "--optimizer",
         "adam", "--lr", "0.01", "--beta2", "0.99", "--bias-correction", "on", "--epochs", "1",
         "--results-dir", str(tmp_path), "--data-dir", str(tmp_path / "no data needed")]),
        capture_output=True, text=True, timeout=300)
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr == ("run.py: error: cannot lock %s (Permission denied): a run "
                                "writes its directory; make it writable, or use another "
                                "--results-dir\n" % os.path.join(run_dir, ".lock"))
    assert os.listdir(run_dir) == []


def run_py(*argv):
    return subprocess.Popen([sys.executable, os.path.join(REPO, "experiments", "run.py")]
                            + list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def mnist_args(shared_data, results):
    if not os.path.isdir(os.path.join(shared_data, "mnist")):
        pytest.skip("MNIST not found in %s/mnist" % shared_data)
    return ["logreg", "--lr", "0.001", "--beta2", "0.99", "--optimizer", "amsgrad",
            "--bias-correction", "off", "--data-dir", shared_data, "--results-dir", results]


@pytest.mark.slow
def test_stop_after_then_continue_on_mnist(tmp_path, shared_data):
    results = str(tmp_path)
    args = mnist_args(shared_data, results)
    out, err = run_py(*args, "--stop-after", "1").communicate(timeout=600)
    assert "epoch 1/150: loss" in out and "val_acc" in out, err
    run_dir = os.path.join(results, "logreg", "amsgrad_lr=0.001_b2=0.99_bc=off", "run=0")
    assert out.strip().endswith("%s: stopped, 1 epochs done" % run_dir)
    out, err = run_py(*args, "--stop-after", "2").communicate(timeout=600)
    assert "epoch 2/150: loss" in out and "epoch 1/150: loss" not in out, err
    with open(os.path.join(run_dir, "history.json")) as f:
        history = json.load(f)
    assert len(history["loss"]) == 2 and history["status"] == "running"
    out, err = run_py(*args, "--stop-after", "2").communicate(timeout=600)
    assert "nothing to do" in out and "/150: loss" not in out, out  # nothing trained again


@pytest.mark.slow
def test_two_commands_on_one_results_dir_train_each_run_once(tmp_path, shared_data):
    args = mnist_args(shared_data, str(tmp_path)) + ["--runs", "2", "--stop-after", "2"]
    first, second = run_py(*args), run_py(*args)
    outputs = [process.communicate(timeout=600)[0] for process in (first, second)]
    assert first.returncode == second.returncode == 0
    epoch_lines = [line for out in outputs for line in out.splitlines()
                   if "/150: loss" in line]
    for run in (0, 1):
        for epoch in (1, 2):
            assert sum("run=%d epoch %d/150" % (run, epoch) in line
                       for line in epoch_lines) == 1


# ---------------------------------------------------------------- --backend

def test_backend_defaults_to_c_and_accepts_jax():
    assert parse().backend == "c" and parse("--backend", "jax").backend == "jax"


def test_backend_jax_without_jax_says_how_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)  # import jax raises ImportError
    results = tmp_path / "results"
    argv = ["logreg", "--lr", "0.001", "--beta2", "0.99", "--backend", "jax",
            "--results-dir", str(results)]
    assert run_cli(cli.main, argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install jax==" in err and "--backend c" in err
    assert not results.exists()  # refused before anything is written


# ---------------------------------------------------------------- float32 edge values

@pytest.mark.parametrize("option, value, message", [
    ("--lr", "1e-46", "--lr 1e-46 is 0 in float32, which the runs compute in; use a value "
                      "between 1.18e-38 and 3.4e+38"),
    ("--lr", "1e39", "--lr 1e+39 is infinite in float32, which the runs compute in; use a "
                     "value between 1.18e-38 and 3.4e+38"),
    ("--beta2", "0.99999999", "--beta2 0.99999999 is 1 in float32, which the runs compute in; "
                              "the largest value below 1 there is 0.99999994"),
])
def test_values_invalid_in_float32_are_refused(tmp_path, shared_data, capsys, option, value,
                                               message):
    # With the data at hand, a value that passed would train (and end "complete" or
    # "diverged"): the refusal must come first.
    results = tmp_path / "results"
    argv = mnist_args(shared_data, str(results)) + ["--epochs", "1"]
    argv[argv.index(option) + 1] = value
    assert run_cli(cli.main, argv) == 2
    assert capsys.readouterr().err == "run.py: error: %s\n" % message
    assert not results.exists()


def test_run_py_refuses_an_lr_that_is_0_in_float32(tmp_path, shared_data):
    argv = mnist_args(shared_data, str(tmp_path / "R")) + ["--epochs", "1"]
    argv[argv.index("--lr") + 1] = "1e-46"
    completed = subprocess.run(
        [sys.executable, os.path.join(REPO, "experiments", "run.py")] + argv,
        capture_output=True, text=True, timeout=300)
    assert completed.returncode == 2
    assert completed.stderr == ("run.py: error: --lr 1e-46 is 0 in float32, which the runs "
                                "compute in; use a value between 1.18e-38 and 3.4e+38\n")
    assert not (tmp_path / "R").exists()


# ---------------------------------------------------------------- --protocol

def mcgill_config(setup, optimizer, lr, beta2, epochs, run=0, **overrides):
    """A RunConfig of the reproduction study's protocol, written out field by field."""
    fields = dict(setup=setup, optimizer=optimizer, lr=lr, beta2=beta2, bias_correction=False,
                  run=run, epochs=epochs, batch_size=128, lr_schedule="inv-sqrt",
                  loss="binary", seed=0, beta1=0.9, epsilon=1e-8, cifar_centering=True)
    fields.update(overrides)
    return RunConfig(**fields)


def test_mcgill_protocol_takes_the_studys_defaults():
    def configs(setup):
        return options.configs_from_args(cli.build_parser().parse_args(
            [setup, "--lr", "0.001", "--beta2", "0.99", "--protocol", "mcgill"]))
    # MNIST: 50 epochs; CIFAR-10: 30; lr/sqrt(t), multiclass log-loss, no bias correction.
    assert configs("logreg") == [mcgill_config("logreg", "adam", 0.001, 0.99, 50),
                                 mcgill_config("logreg", "amsgrad", 0.001, 0.99, 50)]
    assert configs("ffnn") == [mcgill_config("ffnn", "adam", 0.001, 0.99, 50),
                               mcgill_config("ffnn", "amsgrad", 0.001, 0.99, 50)]
    assert configs("cifarnet") == [mcgill_config("cifarnet", "adam", 0.001, 0.99, 30),
                                   mcgill_config("cifarnet", "amsgrad", 0.001, 0.99, 30)]
    blog = options.configs_from_args(parse("--protocol", "blog"))
    assert blog == options.configs_from_args(parse())


def test_mcgill_grid_is_the_blogs_lrs_widened_and_beta2s_without_bias_correction():
    """The study's learning rates are not listed: the blog's, and 0.03 and 0.1 above them
    (the committed runs chose 0.01, the blog grid's edge)."""
    from experiments.launch import grid
    args = grid.build_parser().parse_args(["vgg", "--protocol", "mcgill", "--runs", "1"])
    expected = [mcgill_config("vgg", optimizer, lr, beta2, 30)
                for lr in (0.1, 0.03, 0.01, 0.001, 0.0001) for beta2 in (0.99, 0.999)
                for optimizer in ("adam", "amsgrad")]
    assert options.configs_from_args(args) == expected


def test_options_given_explicitly_win_over_the_protocol():
    [config] = options.configs_from_args(parse(
        "--protocol", "mcgill", "--optimizer", "amsgrad", "--bias-correction", "on",
        "--epochs", "7", "--lr-schedule", "constant", "--loss", "categorical",
        "--batch-size", "64"))
    assert config == RunConfig(setup="logreg", optimizer="amsgrad", lr=0.001, beta2=0.99,
                               bias_correction=True, epochs=7, batch_size=64,
                               lr_schedule="constant", loss="categorical")
    from experiments.launch import grid
    args = grid.build_parser().parse_args(["cifarnet", "--protocol", "mcgill", "--lr", "0.05",
                                           "--beta2", "0.9", "--run", "2", "--bias-correction",
                                           "both", "--optimizer", "adam"])
    assert options.configs_from_args(args) == [
        mcgill_config("cifarnet", "adam", 0.05, 0.9, 30, run=2, bias_correction=True),
        mcgill_config("cifarnet", "adam", 0.05, 0.9, 30, run=2)]


@pytest.mark.parametrize("command", ["run", "grid"])
def test_bad_protocol_exits_2_with_one_line(tmp_path, capsys, command):
    from experiments.launch import grid
    results = tmp_path / "results"
    argv = ["logreg", "--protocol", "paper", "--results-dir", str(results)]
    if command == "run":
        assert run_cli(cli.main, argv[:1] + ["--lr", "0.001", "--beta2", "0.99"] + argv[1:]) == 2
    else:
        assert run_cli(grid.main, argv, prog="grid.py") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--protocol must be one of blog, mcgill, got 'paper'" in err
    assert not results.exists()


def test_mcgill_protocol_without_epochs_for_the_data_set(monkeypatch):
    from experiments.records import setups
    fashion = setups.Setup("fashion_logreg", "fashion_mnist", "logreg", flip_lr=False,
                           input_shape=(1, 28, 28))
    monkeypatch.setitem(setups._REGISTRY, fashion.name, fashion)
    argv = ["fashion_logreg", "--lr", "0.001", "--beta2", "0.99", "--protocol", "mcgill"]
    with pytest.raises(UserError, match="--protocol mcgill has no --epochs for the data set "
                                        "fashion_mnist .*; pass --epochs"):
        options.configs_from_args(cli.build_parser().parse_args(argv))
    configs = options.configs_from_args(cli.build_parser().parse_args(argv + ["--epochs", "5"]))
    assert [config.epochs for config in configs] == [5, 5]


# -- --optimizer: registered names, both = the protocol's ------------------------------------

def test_optimizer_names_any_registered_one_and_both_is_the_protocols():
    from experiments.launch import grid
    from experiments.records import protocols
    configs = options.configs_from_args(parse("--optimizer", "adamnc", "amsgrad",
                                              "--bias-correction", "both"))
    # ADAMNC has no bias correction: one run, bc=off, where AMSGrad has two.
    assert [(c.optimizer, c.bias_correction) for c in configs] == [
        ("adamnc", False), ("amsgrad", True), ("amsgrad", False)]
    args = grid.build_parser().parse_args(["logreg", "--optimizer", "adamnc", "adam",
                                           "--runs", "1"])
    configs = options.configs_from_args(args)
    # The blog's grid: ADAMNC takes no beta2, so one cell per lr (beta2 the first value).
    assert [(c.optimizer, c.lr, c.beta2) for c in configs if c.optimizer == "adamnc"] == [
        ("adamnc", lr, 0.99) for lr in (0.01, 0.001, 0.0001)]
    assert len(configs) == 3 + 12
    for protocol in ("blog", "mcgill"):
        args = grid.build_parser().parse_args(["logreg", "--protocol", protocol, "--runs", "1"])
        configs = options.configs_from_args(args)
        assert {c.optimizer for c in configs} == {"adam", "amsgrad"}
        assert len(configs) == protocols.get(protocol).cells()
    # 2 optimizers x 3 lrs x 2 beta2 x bc on/off; McGill's: 2 x 5 lrs x 2 beta2, bc off.
    assert protocols.get("blog").cells() == 24 and protocols.get("mcgill").cells() == 20
    with_adamnc = protocols.Protocol(**dict(vars(protocols.get("blog")),
                                            optimizers=("adam", "amsgrad", "adamnc")))
    assert with_adamnc.cells() == 24 + 3


@pytest.mark.parametrize("names,message", [
    (["sgd"], "argument --optimizer: invalid choice: 'sgd' (choose from 'adam', 'amsgrad', "
              "'adamnc', 'amsgrad_pytorch', 'amsgrad_optax', 'amsgrad_reddi', 'both')"),
    (["both", "adamnc"], "--optimizer both stands for the protocol's optimizers (adam amsgrad)"),
])
def test_bad_optimizer_exits_2_with_one_line(tmp_path, capsys, names, message):
    argv = ["logreg", "--lr", "0.001", "--beta2", "0.99", "--results-dir", str(tmp_path / "R"),
            "--optimizer"] + names
    # argparse refuses an unregistered name itself (exit code 2, its usage line first)
    with pytest.raises(SystemExit) if names == ["sgd"] else contextlib.nullcontext():
        assert run_cli(cli.main, argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.strip().splitlines()[-1].count(message) == 1
    assert not (tmp_path / "R").exists()
