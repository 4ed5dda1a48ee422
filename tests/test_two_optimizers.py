"""Two optimizers compared (plots/verdict/two_optimizers.py) and ``make_figures.py --compare``.

On real runs (reference/original_runs.json): the same rule (Adam) at two learning rates, under
two names, differs by construction and must be found to; two sets of one optimizer's runs under
two names must not, at the decision's error rate measured on them.  End to end, a plug-in
optimizer (registered by a module file written here, a copy of Adam under another name)
against Adam through ``make_figures.py --compare`` in a subprocess.
"""
import collections
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from experiments.records import optimizers, plugins
from plots.verdict.cells import Cell
from plots.verdict.two_optimizers import compare_optimizers, probability_better
from test_claims import cells_of, fake_cell

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIGURES = os.path.join(REPO, "plots", "make_figures.py")
#: The most a decision may call a difference between exchangeable runs (measured).
MOST_FALSE_DIFFERENCES = 0.10


def test_probability_better_counts_every_pair_of_runs():
    # pairs (a, b): (1,3) win, (1,2) win, (2,3) win, (2,2) tie: 3.5 of 4
    assert probability_better([1, 2], [3, 2], lower_is_better=True) == 0.875
    assert probability_better([1, 2], [3, 2], lower_is_better=False) == 0.125


def renamed(cells, names):
    """Cells renamed: ``names(key)`` gives the new key, or None to leave the cell out."""
    found = {}
    for key, cell in cells.items():
        new = names(key)
        if new is not None:
            found[new] = cell
    return found


def test_the_same_rule_at_two_learning_rates_is_found_to_differ():
    """Adam at lr 0.001 ("fast") against Adam at lr 0.0001 ("slow") on logreg, matched on
    beta2 and bias correction: lr 0.001 ends at a lower final validation loss in every run
    (0.255-0.261 against 0.266-0.267), so P = 1, over the grid and at the tuned cells."""
    cells = renamed(cells_of("logreg"), lambda key: dataclasses.replace(
        key, optimizer={0.001: "fast", 0.0001: "slow"}[key.lr], lr=1.0)
        if key.optimizer == "adam" and key.lr != 0.01 else None)
    comparison = compare_optimizers(cells, "fast", "slow")
    assert comparison.grid.probability == 1.0 and comparison.grid.decision == "first"
    assert comparison.grid.cells == 4 and comparison.grid.runs == (20, 20)
    assert comparison.grid.error_rate <= MOST_FALSE_DIFFERENCES
    assert comparison.tuned[2].decision == "first"
    assert [estimate.decision for _, estimate in comparison.matched] == ["first"] * 4


def test_two_sets_of_one_optimizers_runs_under_two_names_do_not_differ():
    """Adam's runs 0-1 of every logreg cell as "adam_a", runs 2-4 as "adam_b": no difference
    found over the grid, and the decision's error rate, measured, is small."""
    halves = {}
    for key, cell in cells_of("logreg").items():
        if key.optimizer == "adam":
            runs = [run.curves for run in cell.finished_runs]
            halves[dataclasses.replace(key, optimizer="adam_a")] = fake_cell(runs[:2])
            halves[dataclasses.replace(key, optimizer="adam_b")] = fake_cell(runs[2:])
    comparison = compare_optimizers(halves, "adam_a", "adam_b")
    assert comparison.grid.decision == "none" and comparison.grid.runs == (24, 36)
    assert comparison.grid.error_rate <= MOST_FALSE_DIFFERENCES
    assert comparison.tuned[2].decision == "none"


def test_the_comparison_is_the_same_every_time():
    cells = cells_of("logreg")
    assert compare_optimizers(cells, "adam", "amsgrad") == compare_optimizers(
        cells, "adam", "amsgrad")


ADAM_TWIN_PLUGIN = '''\
from experiments.records import optimizers

optimizers.register(optimizers.Optimizer("adam_twin", "amsgrad:adam", "Adam's twin",
                                         "#555555"))
'''


def write_run(results, optimizer, lr, beta2, bias_correction, run, curves):
    """A finished run directory as experiments/run.py lays it out (3 epochs: not the blog's
    protocol, so there is no original to judge it against)."""
    from experiments.records.config import RunConfig
    config = RunConfig(setup="logreg", optimizer=optimizer, lr=lr, beta2=beta2,
                       bias_correction=bias_correction, run=run, seed=0,
                       seeding="independent", epochs=3)
    run_dir = config.run_dir(str(results))
    os.makedirs(run_dir)
    with open(os.path.join(run_dir, "config.json"), "w") as handle:
        json.dump(dict(config.to_dict(), versions={}, theano_flags="", data=None), handle)
    history = {name: [float(value) for value in curves[name][:3]]
               for name in ("loss", "acc", "val_loss", "val_acc")}
    with open(os.path.join(run_dir, "history.json"), "w") as handle:
        json.dump(dict(history, lr=[lr] * 3, epoch_time=[1.0] * 3, status="complete",
                       diverged_epoch=None), handle)


def test_compare_works_on_a_plugin_optimizer(tmp_path, monkeypatch):
    """A plug-in's copy of Adam ("adam_twin") against Adam, each with its own runs of the same
    cells (the original's logreg runs 0-1 and 2-4, first 3 epochs): ``--compare adam_twin
    adam`` finds no difference, says so on stdout and in the report's section."""
    (tmp_path / "adam_twin.py").write_text(ADAM_TWIN_PLUGIN)
    registry = plugins.Registry("optimizer", [optimizers.get(name)
                                              for name in ("adam", "amsgrad", "adamnc")])
    monkeypatch.setattr(optimizers, "_OPTIMIZERS", registry)
    monkeypatch.syspath_prepend(str(tmp_path))
    __import__("adam_twin")
    results = tmp_path / "R"
    for key, cell in cells_of("logreg").items():
        if key.optimizer == "adam" and key.lr == 0.001:
            for run, each in enumerate(cell.finished_runs):
                write_run(results, "adam" if run < 2 else "adam_twin", key.lr, key.beta2,
                          key.bias_correction, run, each.curves)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tmp_path), REPO] + ([os.environ["PYTHONPATH"]] if "PYTHONPATH" in os.environ
                                 else [])))
    env[plugins.PLUGIN_VARIABLE] = "adam_twin"
    done = subprocess.run([sys.executable, FIGURES, "--results-dir", str(results), "--out",
                           str(tmp_path / "out"), "--compare", "adam_twin", "adam"],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path),
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert "### adam_twin against adam: logreg" in done.stdout
    assert "Over the grid (4 matched cells): P(adam_twin beats adam)" in done.stdout
    assert "**no difference found** (error rate" in done.stdout
    report = (tmp_path / "out" / "REPORT.md").read_text()
    assert "## Two optimizers compared" in report and "### adam_twin against adam" in report
    # An optimizer nobody registered: one line, exit code 2.
    done = subprocess.run([sys.executable, FIGURES, "--results-dir", str(results), "--out",
                           str(tmp_path / "out"), "--compare", "adam", "nadam"],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path),
                          timeout=600)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "nadam" in done.stderr
