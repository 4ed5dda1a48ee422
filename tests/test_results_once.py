"""Each run counts once in figures and report (plots/verdict/results.py's count_once).

A results directory can hold one run twice: its run directory and a packed copy
(``make_figures.py --pack`` into the results directory itself), two copies of a packed
file, a packed copy made before the run went on, or a packed copy of a run trained
again on other data (another history under the same config.json).  The runs here are
trained for real (test_grid.py's tiny setup) and packed and read by ``make_figures.py``.
"""
import os
import shutil

import pytest

import errors
import test_grid  # noqa: F401  (registers the tiny setup)
from experiments.training.alone import train_run
from plots import make_figures
from plots.verdict.results import find_runs
from test_training import tiny_dataset

CONFIGS = test_grid.narrow_configs()[:2]  # adam, bias correction on and off; 3 epochs


def configs(runs):
    return sorted(map(repr, (run.config for run in runs)))


def train(results, stop_after=None, dataset=None):
    for config in CONFIGS:
        train_run(config, str(results), stop_after=stop_after, dataset=dataset, progress=False)


def figures(argv, capsys):
    code = errors.run_cli(make_figures.main, [str(arg) for arg in argv], prog="make_figures.py")
    out, err = capsys.readouterr()
    assert code == 0, err
    return out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two complete runs, in their run directories."""
    results = tmp_path_factory.mktemp("trained")
    train(results)
    return results


def test_a_run_directory_and_its_packed_copy_beside_it_count_once(trained, tmp_path, capsys):
    results = tmp_path / "results"
    shutil.copytree(trained, results)
    figures(["--results-dir", results, "--pack", results], capsys)  # packs beside the runs
    assert len(list(results.glob("*.runs.json"))) == 1
    runs, problems = find_runs(str(results))
    assert configs(runs) == sorted(map(repr, CONFIGS))
    assert all(os.path.isdir(run.source) for run in runs)  # the directories are counted
    assert [p.reason.startswith("the same run as %s" % results) for p in problems] == [True] * 2
    out, err = figures(["--results-dir", results, "--out", tmp_path / "figures"], capsys)
    assert "make_figures.py: 2 runs," in out and err.count("counted once") == 2
    with open(tmp_path / "figures" / "REPORT.md") as f:
        assert "| 2 complete, 0 diverged |" in f.read()


def test_two_copies_of_a_packed_file_count_once(trained, tmp_path, capsys):
    packed = tmp_path / "packed"
    figures(["--results-dir", trained, "--pack", packed], capsys)
    (name,) = [path.name for path in packed.glob("*.runs.json")]
    shutil.copyfile(packed / name, packed / name.replace(".runs.json", " (copy).runs.json"))
    runs, problems = find_runs(str(packed))
    assert configs(runs) == sorted(map(repr, CONFIGS)) and len(problems) == 2
    assert all("counted once" in problem.reason for problem in problems)


def test_a_packed_copy_from_before_the_run_went_on_gives_way_to_the_run(tmp_path, capsys):
    results = tmp_path / "results"
    train(results, stop_after=1)
    figures(["--results-dir", results, "--pack", results], capsys)
    train(results)  # the runs go on to their 3 epochs; the packed copy keeps 1
    runs, problems = find_runs(str(results))
    assert configs(runs) == sorted(map(repr, CONFIGS))
    assert [(run.status, run.epochs_done) for run in runs] == [("complete", 3)] * 2
    assert all(os.path.isdir(run.source) for run in runs)
    assert [p.reason.endswith("(an older copy: 1 of its 3 epochs); counted once")
            for p in problems] == [True] * 2


def test_two_histories_of_one_run_are_a_conflict_and_neither_is_counted(trained, tmp_path,
                                                                         capsys):
    results, other = tmp_path / "results", tmp_path / "other"
    shutil.copytree(trained, results)
    # The first run trained again on other data: another history under the same config.json.
    train_run(CONFIGS[0], str(other), dataset=tiny_dataset(seed=1), progress=False)
    figures(["--results-dir", other, "--pack", results], capsys)
    runs, problems = find_runs(str(results))
    assert [run.config for run in runs] == [CONFIGS[1]]
    (problem,) = problems
    assert problem.path.endswith(".runs.json#0") and problem.reason.startswith(
        "holds another history of the run in %s" % CONFIGS[0].run_dir(str(results)))
    assert "neither is counted" in problem.reason
    out, err = figures(["--results-dir", results, "--out", tmp_path / "figures"], capsys)
    assert "make_figures.py: 1 runs," in out and err.count("neither is counted") == 1
