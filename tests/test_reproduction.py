"""The committed reproduction (reproduction/): its report is the one its histories give.

``reproduction/REPORT.md`` and ``report.csv`` were written by ``plots/make_figures.py``
from the packed histories in ``reproduction/histories/`` (see reproduction/README.md);
regenerating them from those files must give the committed files byte for byte, so the
report cannot drift from its data.  Also: every run there carries the data it was
trained on, and the README's figure exists.
"""
import os

import pytest

from plots import make_figures
from plots.results import find_runs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPRODUCTION = os.path.join(REPO, "reproduction")
HISTORIES = os.path.join("reproduction", "histories")  # as the report names it

pytestmark = pytest.mark.skipif(not os.path.isdir(os.path.join(REPO, HISTORIES)),
                                reason="no reproduction/histories in this checkout")


def read(path):
    with open(path, encoding="utf-8") as stream:
        return stream.read()


def test_report_regenerated_from_the_committed_histories_is_the_committed_report(
        tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the report names its sources as given, relative to the root
    assert make_figures.main(["--results-dir", HISTORIES, "--out", str(tmp_path)]) == 0
    for name in ("REPORT.md", "report.csv"):
        assert read(tmp_path / name) == read(os.path.join(REPRODUCTION, name)), name


def test_every_committed_run_says_what_data_it_was_trained_on():
    runs, problems = find_runs(os.path.join(REPO, HISTORIES))
    assert problems == [] and runs
    assert all(run.data and run.data.get("content") for run in runs)


def test_the_figures_the_readme_and_report_show_are_committed():
    report = read(os.path.join(REPRODUCTION, "REPORT.md"))
    readme = read(os.path.join(REPO, "README.md"))
    assert "reproduction/REPORT.md" in readme
    shown = [line.split("](")[1].rstrip(")") for line in readme.splitlines()
             if line.startswith("![")]
    assert shown and all(os.path.isfile(os.path.join(REPO, path)) for path in shown)
    for name in os.listdir(REPRODUCTION):
        if name.endswith(".png"):
            assert name in report, name
