"""Plug-ins (experiments/records/plugins.py) and the optimizer registry
(experiments/records/optimizers.py).

Fast tier: the registries in this process (a name registered twice, the record's checks,
nothing of Theano to read the records); real plug-in module files in ``tmp_path`` that
register a name twice, have a syntax error or raise, given to ``run.py``, ``grid.py``,
``make_figures.py`` and ``run.py synthetic`` in subprocesses: one line, exit code 2.
Slow tier: Lasagne's own ``rmsprop`` registered by a plug-in file and trained through
``run.py``, ``grid.py --backend jax`` and drawn by ``make_figures.py``, no project file
touched; a plug-in that fails only in the grid's worker processes.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from errors import UserError
from experiments.records import optimizers, plugins, setups

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(REPO, "tests")
RUN = os.path.join(REPO, "experiments", "run.py")
GRID = os.path.join(REPO, "experiments", "grid.py")
FIGURES = os.path.join(REPO, "plots", "make_figures.py")
TIMEOUT = 600

#: The whole of a plug-in that adds an update rule from outside the project.
RMSPROP_PLUGIN = '''\
from experiments.records import optimizers

optimizers.register(optimizers.Optimizer(
    "rmsprop", "lasagne.updates:rmsprop", "RMSProp", "#7b3fa0",
    arguments={"learning_rate": "lr", "rho": "beta2", "epsilon": "epsilon"}))
'''


def command(argv, plugin_dir, modules, variable=plugins.PLUGIN_VARIABLE, **extra):
    """Run a command line with the plug-ins ``modules`` (importable from ``plugin_dir``)."""
    env = {k: v for k, v in os.environ.items()
           if k not in (plugins.PLUGIN_VARIABLE, plugins.LEGACY_VARIABLE)}
    env.update(extra)
    env[variable] = ",".join(modules)
    env["PYTHONPATH"] = os.pathsep.join([str(plugin_dir), TESTS, REPO] + (
        [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return subprocess.run([sys.executable] + argv, capture_output=True, text=True, env=env,
                          cwd=str(plugin_dir), timeout=TIMEOUT)


def write_module(directory, name, source):
    (directory / (name + ".py")).write_text(source)
    return name


# ---------------------------------------------------------------- the registries

@pytest.fixture
def fresh_optimizers(monkeypatch):
    """The optimizer registry with the project's records only, restored afterwards."""
    registry = plugins.Registry("optimizer", [optimizers.get(name)
                                              for name in ("adam", "amsgrad", "adamnc")])
    monkeypatch.setattr(optimizers, "_OPTIMIZERS", registry)
    return registry


def test_registering_a_name_twice_names_both(fresh_optimizers):
    rule = optimizers.Optimizer("mine", "amsgrad:adam", "Mine", "#000000")
    optimizers.register(rule)
    optimizers.register(rule)  # the same record again: a module imported twice
    with pytest.raises(UserError, match="optimizer 'mine' is registered twice: by module "
                                        "test_plugins and by module test_plugins"):
        optimizers.register(optimizers.Optimizer("mine", "amsgrad:amsgrad", "Other", "#111111"))
    with pytest.raises(UserError, match="optimizer 'adam' is registered twice: by the project "
                                        "and by module test_plugins"):
        optimizers.register(optimizers.Optimizer("adam", "amsgrad:adam", "Adam", "#000000"))
    assert optimizers.get("adam").display_name == "Adam" and optimizers.get("mine") is rule


def test_registering_a_builtin_setup_again_is_refused(monkeypatch):
    registry = plugins.Registry("setup", [setups.get("logreg")])
    monkeypatch.setattr(setups, "_SETUPS", registry)
    flipped = setups.Setup("logreg", "mnist", "logreg", flip_lr=True, input_shape=(1, 28, 28))
    with pytest.raises(UserError, match="setup 'logreg' is registered twice: by the project"):
        setups.register(flipped)
    assert setups.get("logreg").flip_lr is False


def test_an_unknown_optimizer_lists_the_registered_ones():
    with pytest.raises(UserError, match=r"^optimizer must be one of adam, amsgrad, adamnc"):
        optimizers.get("sgd")


@pytest.mark.parametrize("kwargs,words", [
    (dict(arguments={"learning_rate": "lr", "rho": "beta3"}), "arguments must map"),
    (dict(arguments={"rho": "beta2"}), "lr among them"),
    (dict(arguments={"learning_rate": "lr"}, values=("beta2",)), "values"),
    (dict(update="lasagne.updates.rmsprop"), "'module:name'"),
    (dict(colour="red"), "colour must be '#rrggbb'"),
    (dict(light_colour="#fff"), "light_colour must be '#rrggbb'"),
    (dict(values=()), "lr among them"),
])
def test_a_bad_record_is_refused(kwargs, words):
    fields = dict(name="bad", update="amsgrad:adam", display_name="Bad", colour="#000000")
    fields.update(kwargs)
    with pytest.raises(ValueError, match=words):
        optimizers.Optimizer(**fields)


def test_the_records_say_what_they_use_and_what_is_compiled_in():
    adam, adamnc = optimizers.get("adam"), optimizers.get("adamnc")
    assert adam.constants == ("beta1", "beta2", "bias_correction", "epsilon")
    assert adamnc.constants == ("beta1", "epsilon")
    assert not adamnc.uses("beta2") and not adamnc.uses("bias_correction")
    # The blog's figures keep their colours; another rule's light shade is lighter.
    assert adam.colour_for(True) == "#1f4fb4" and adam.colour_for(False) == "#8cb4ec"
    assert adamnc.colour_for(False) == adamnc.colour  # it has no bias correction
    mine = optimizers.Optimizer("mine", "amsgrad:adam", "Mine", "#208020")
    light = mine.colour_for(False)
    assert all(int(light[i:i + 2], 16) > int(mine.colour[i:i + 2], 16) for i in (1, 3, 5))


def test_reading_the_records_never_loads_theano():
    code = ("import sys; from experiments.records import optimizers; "
            "from plots.figures import colour;"
            "[colour(n, b) for n in optimizers.names() for b in (True, False)];"
            "print(sorted(m for m in ('theano', 'lasagne', 'amsgrad') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


def test_the_reserved_words_are_the_command_lines_and_the_stores():
    from experiments.launch import options
    from experiments.store import rundir
    assert optimizers.RESERVED == (options.BOTH,)
    assert setups._SETUPS.reserved == (rundir.SYNTHETIC_DIR,)


def test_a_builder_that_cannot_be_imported_names_the_optimizer_on_first_use():
    # The package exists (so the record is accepted), its module does not.
    missing = optimizers.Optimizer("mine", "errors.rules:adam", "Mine", "#000000")
    with pytest.raises(UserError, match=r"^optimizer 'mine': its update 'errors.rules:adam' "
                                        r"cannot be imported: ModuleNotFoundError"):
        missing.builder()
    not_a_function = optimizers.Optimizer("mine", "errors:__doc__", "Mine", "#000000")
    with pytest.raises(UserError, match="is not a function"):
        not_a_function.builder()


def _random_state_rule(loss_or_grads, params, learning_rate, **keywords):
    """Adam, keeping a NumPy random stream among its state variables."""
    import theano
    import amsgrad
    updates = amsgrad.adam(loss_or_grads, params, learning_rate, **keywords)
    stream = theano.shared(np.random.RandomState(0), name="noise_state")
    updates[stream] = stream
    return updates


def test_an_update_rule_whose_state_a_checkpoint_cannot_save_is_refused():
    import theano
    import theano.tensor as T
    from experiments.records.config import RunConfig
    w = theano.shared(np.ones(3, dtype=theano.config.floatX), name="w")
    loss = T.sum(w ** 2)
    config = RunConfig(setup="logreg", optimizer="adam", lr=0.01, beta2=0.99,
                       bias_correction=True, run=0)
    adam = optimizers.get("adam")
    assert len(adam.updates(loss, [w], 0.01, config)) == 4  # w, t, m, v: all numeric arrays
    noisy = optimizers.Optimizer("noisy", _random_state_rule, "Noisy", "#000000")
    with pytest.raises(UserError, match=r"^optimizer 'noisy': its updates change noise_state "
                                        r"\(RandomState\), which is not a numeric array"):
        noisy.updates(loss, [w], 0.01, config)


def _dataset(labels, shape=(1, 2, 2), num_classes=10):
    from data import Dataset
    x = np.zeros((len(labels),) + shape, dtype=np.float32)
    y = np.asarray(labels, dtype=np.int32)
    return Dataset("toy", x, y, x, y, x, y, num_classes, shape)


@pytest.mark.parametrize("dataset,words", [
    (_dataset(range(10, 20)), r"labels must be integers from 0 to 9 \(num_classes 10\), got "
                              r"int32 from 10 to 19"),
    (_dataset([-1, 0]), "from -1 to 0"),
    (_dataset(range(10), shape=(1, 3, 3)), r"train inputs are \(10, 1, 3, 3\) with 10 labels, "
                                           r"the setup's input_shape is \(1, 2, 2\)"),
])
def test_a_plugin_setups_data_is_checked_against_its_network(dataset, words):
    from experiments.records.config import RunConfig
    toy = setups.Setup("toy", "toy", None, flip_lr=False, input_shape=(1, 2, 2),
                       load_data=lambda config, data_dir: dataset)
    config = RunConfig(setup="logreg", optimizer="adam", lr=0.01, beta2=0.99,
                       bias_correction=True, run=0)
    with pytest.raises(UserError, match="^setup 'toy': its data's .*" + words):
        toy.load(config)
    good = _dataset(range(10))
    assert setups.Setup("toy", "toy", None, False, (1, 2, 2),
                        load_data=lambda config, data_dir: good).load(config) is good


def test_the_builder_is_imported_when_first_used():
    import amsgrad
    assert optimizers.get("adamnc").builder() is amsgrad.adamnc


# ---------------------------------------------------------------- faulty plug-ins, for real

FAULTS = {
    "syntax": ("def register(:\n    pass\n",
               r"the plug-in {module} \(named in \$AMSGRAD_PLUGINS\) has a syntax error: "
               r"invalid syntax \(.*{module}\.py, line 1\)"),
    "raises": ("from experiments.records import optimizers\nraise RuntimeError('no GPU here')\n",
               r"the plug-in {module} \(named in \$AMSGRAD_PLUGINS\) failed while it was "
               r"imported: RuntimeError: no GPU here"),
    "missing": (None, r"\$AMSGRAD_PLUGINS names {module}, which cannot be imported"),
    "builtin setup": (
        "from experiments.records import setups\n"
        "setups.register(setups.Setup('logreg', 'mnist', 'logreg', flip_lr=True,\n"
        "                             input_shape=(1, 28, 28)))\n",
        r"setup 'logreg' is registered twice: by the project and by the plug-in {module}"),
    "builtin optimizer": (
        "from experiments.records import optimizers\n"
        "optimizers.register(optimizers.Optimizer('amsgrad', 'amsgrad:adam', 'A', '#000000'))\n",
        r"optimizer 'amsgrad' is registered twice: by the project and by the plug-in {module}"),
    # A name becomes a folder of --results-dir and a word of --optimizer / SETUP.
    "escaping name": (
        "from experiments.records import optimizers\n"
        "optimizers.register(optimizers.Optimizer('../../escape', 'amsgrad:adam', 'E', '#000000'))\n",
        r"optimizer '\.\./\.\./escape' \(registered by the plug-in {module}\) cannot be stored"),
    "name with a slash": (
        "from experiments.records import optimizers\n"
        "optimizers.register(optimizers.Optimizer('my/opt', 'amsgrad:adam', 'M', '#000000'))\n",
        r"optimizer 'my/opt' \(registered by the plug-in {module}\) cannot be stored"),
    "reserved name": (
        "from experiments.records import optimizers\n"
        "optimizers.register(optimizers.Optimizer('both', 'amsgrad:adam', 'B', '#000000'))\n",
        r"optimizer 'both' \(registered by the plug-in {module}\) is a word the project keeps"),
    "reserved setup": (
        "from experiments.records import setups\n"
        "setups.register(setups.Setup('synthetic', 'mnist', 'logreg', flip_lr=False,\n"
        "                             input_shape=(1, 28, 28)))\n",
        r"setup 'synthetic' \(registered by the plug-in {module}\) is a word the project keeps"),
    "unknown colour": (
        "from experiments.records import optimizers\n"
        "optimizers.register(optimizers.Optimizer('mine', 'amsgrad:adam', 'M', 'purple-ish'))\n",
        r"the plug-in {module} .* ValueError: optimizer 'mine': colour must be '#rrggbb', "
        r"got 'purple-ish'"),
    "named colour": (
        "from experiments.records import optimizers\n"
        "optimizers.register(optimizers.Optimizer('mine', 'amsgrad:adam', 'M', 'red'))\n",
        r"the plug-in {module} .* optimizer 'mine': colour must be '#rrggbb', got 'red'"),
    "missing builder module": (
        "from experiments.records import optimizers\n"
        "optimizers.register(optimizers.Optimizer('mine', 'no_such_rules:rule', 'M', '#000000'))\n",
        r"the plug-in {module} .* optimizer 'mine': update 'no_such_rules:rule' names module "
        r"no_such_rules, whose package no_such_rules cannot be found"),
    "constant learning rate": (
        "from experiments.records import optimizers\n"
        "optimizers.register(optimizers.Optimizer('mine', 'amsgrad:adam', 'M', '#000000',\n"
        "                                         values=()))\n",
        r"the plug-in {module} .* optimizer 'mine': values \(\) must be fields it uses, lr among"),
}
COMMANDS = {
    "run.py": [RUN, "logreg", "--lr", "0.01", "--beta2", "0.99", "--epochs", "1"],
    "grid.py": [GRID, "logreg", "--lr", "0.01", "--runs", "1", "--epochs", "1"],
    "make_figures.py": [FIGURES],
    "run.py synthetic": [RUN, "synthetic", "--steps", "10"],
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_faulty_plugin_is_one_line_and_exit_code_2(tmp_path, fault, name):
    import re
    source, pattern = FAULTS[fault]
    module = "faulty_" + fault.replace(" ", "_")
    if source is not None:
        write_module(tmp_path, module, source)
    done = command(COMMANDS[name] + ["--results-dir", str(tmp_path / "results")], tmp_path,
                   [module])
    prog = name.split()[0] if name != "run.py synthetic" else name
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr  # one line, no traceback
    assert re.match(r"%s: error: %s" % (re.escape(prog), pattern.format(module=module)),
                    done.stderr), done.stderr
    assert not (tmp_path / "results" / "logreg").exists()
    # Nothing written beside the results directory (a name like ../../escape would be).
    assert set(os.listdir(tmp_path)) <= {module + ".py", "__pycache__", "results"}


def test_the_former_variable_still_names_plugins(tmp_path):
    module = write_module(tmp_path, "old_style", "raise ValueError('read through the old name')")
    done = command([RUN, "logreg", "--lr", "0.01", "--beta2", "0.99"], tmp_path, [module],
                   variable=plugins.LEGACY_VARIABLE)
    assert done.returncode == 2
    assert "(named in $AMSGRAD_SETUPS) failed while it was imported: ValueError: read through " \
           "the old name" in done.stderr


# ---------------------------------------------------------------- an outside rule, end to end

def history(results, cell, run=0, setup="tiny"):
    with open(os.path.join(str(results), setup, cell, "run=%d" % run, "history.json")) as f:
        return json.load(f)


@pytest.mark.slow
def test_lasagnes_rmsprop_as_a_plugin_through_every_command(tmp_path):
    # The tiny setup comes from tests/test_grid.py, itself a plug-in; rmsprop from a file
    # written here: no project file is touched.
    plugin = write_module(tmp_path, "my_rules", RMSPROP_PLUGIN)
    modules = ["test_grid", plugin]
    alone, batched, figures = tmp_path / "alone", tmp_path / "batched", tmp_path / "figures"
    cell = "rmsprop_lr=0.01_b2=0.9_bc=off"
    done = command([RUN, "tiny", "--lr", "0.01", "--beta2", "0.9", "--optimizer", "rmsprop",
                    "--bias-correction", "off", "--epochs", "2", "--results-dir", str(alone)],
                   tmp_path, modules)
    assert done.returncode == 0, done.stderr
    done = command([GRID, "tiny", "--lr", "0.01", "0.001", "--beta2", "0.9", "--optimizer",
                    "rmsprop", "adam", "--bias-correction", "off", "--runs", "1", "--epochs",
                    "2", "--backend", "jax", "--results-dir", str(batched)], tmp_path, modules)
    assert done.returncode == 0, done.stderr
    assert "4 runs in the grid, 4 finished now (4 complete" in done.stdout

    ours, theirs = history(alone, cell), history(batched, cell)
    assert ours["status"] == theirs["status"] == "complete" and len(ours["loss"]) == 2
    # the C backend alone and the JAX batch agree to float32 rounding
    np.testing.assert_allclose(ours["loss"], theirs["loss"], rtol=1e-5)
    # ... and the rule is RMSProp, not Adam's: the same cell with adam trains otherwise
    adam = history(batched, "adam_lr=0.01_b2=0.9_bc=off")
    assert not np.allclose(adam["loss"], theirs["loss"], rtol=1e-3)
    saved = np.load(os.path.join(str(batched), "tiny", cell, "run=0", "checkpoint.npz"))
    assert not any(name.startswith("t ") or name == "t" for name in saved["names"])

    done = command([FIGURES, "--results-dir", str(batched), "--out", str(figures)], tmp_path,
                   modules)
    assert done.returncode == 0, done.stderr
    # the runs' 2 epochs are not the blog's protocol: tiny_epochs=2_loss.png
    (loss_png,) = [path for path in figures.glob("tiny_*loss.png") if "val_loss" not in path.name]
    assert loss_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = [row for row in (figures / "report.csv").read_text().splitlines()
            if row.startswith("tiny,rmsprop,")]
    assert len(rows) == 2 * 5  # two cells (lr), five measures


@pytest.mark.slow
def test_a_plugin_failing_in_the_grids_workers_ends_the_grid(tmp_path):
    # The grid's process imports it; its spawned worker processes fail to.
    module = write_module(tmp_path, "worker_fault", (
        "import multiprocessing\n"
        "if multiprocessing.current_process().name != 'MainProcess':\n"
        "    raise OSError('no licence on this node')\n"))
    done = command([GRID, "tiny", "--lr", "0.01", "--beta2", "0.99", "--runs", "1",
                    "--optimizer", "adam", "--bias-correction", "on", "--epochs", "1",
                    "--workers", "1", "--results-dir", str(tmp_path / "results")],
                   tmp_path, ["test_grid", module])
    assert done.returncode == 2, done.stderr
    assert "failed while it was imported: OSError: no licence on this node" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("grid.py: error: 1 of 1 runs failed")


def test_updates_given_as_pairs_are_checked_too():
    import theano
    import theano.tensor as T
    from experiments.records.config import RunConfig

    def as_pairs(loss_or_grads, params, learning_rate, **keywords):
        return list(_random_state_rule(loss_or_grads, params, learning_rate, **keywords).items())

    w = theano.shared(np.ones(3, dtype=theano.config.floatX), name="w")
    config = RunConfig(setup="logreg", optimizer="adam", lr=0.01, beta2=0.99,
                       bias_correction=True, run=0)
    noisy = optimizers.Optimizer("noisy", as_pairs, "Noisy", "#000000")
    with pytest.raises(UserError, match=r"its updates change noise_state \(RandomState\)"):
        noisy.updates(T.sum(w ** 2), [w], 0.01, config)
