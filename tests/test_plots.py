"""Figures and reproduction report, from small fake result sets and the real reference curves.

Expected numbers are computed here by hand or from ``reference/summary.md`` (made from the
original logs independently of this code), never from the code under test.
"""
import csv
import dataclasses
import io
import json
import math
import os
import shutil
import re
import subprocess
import sys
import types

import numpy as np
import pytest
from matplotlib.colors import to_rgb

from errors import run_cli
from experiments.records.config import RunConfig
from plots import make_figures
from plots.figures import draw_metric, draw_setup
from plots.report import write_report
from plots.report_sections import pair_text
from plots.verdict.cells import group_runs, pair_effects
from plots.verdict.cell_comparisons import compare_cells
from plots.verdict.results import CURVES, DEFAULT_REFERENCE, Run, find_runs, load_reference

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def curves(val_loss, val_acc=None, loss=None, acc=None):
    """A history's four curves; the ones not given are derived from val_loss."""
    val_loss = list(val_loss)
    return {"val_loss": val_loss,
            "val_acc": list(val_acc) if val_acc is not None else [1 - v / 4 for v in val_loss],
            "loss": list(loss) if loss is not None else [v / 2 for v in val_loss],
            "acc": list(acc) if acc is not None else [1 - v / 8 for v in val_loss]}


def write_run(results, history, setup="logreg", optimizer="adam", lr=0.001, beta2=0.99,
              bias_correction=True, run=0, status="complete", epochs=None, data=None, seed=0,
              seeding="independent"):
    """Write a run as experiments/run.py lays it out; returns its directory."""
    config = RunConfig(setup=setup, optimizer=optimizer, lr=lr, beta2=beta2,
                       bias_correction=bias_correction, run=run, seed=seed, seeding=seeding,
                       epochs=epochs or len(history["val_loss"]))
    run_dir = config.run_dir(str(results))
    os.makedirs(run_dir)
    with open(os.path.join(run_dir, "config.json"), "w") as handle:
        json.dump(dict(config.to_dict(), versions={}, theano_flags="", data=data), handle)
    with open(os.path.join(run_dir, "history.json"), "w") as handle:
        json.dump(dict(history, lr=[lr] * len(history["val_loss"]),
                       epoch_time=[1.0] * len(history["val_loss"]), status=status,
                       diverged_epoch=None), handle)
    return run_dir


def write_reference(path, entries):
    """A reference file in the format of reference/original_runs.json."""
    contents = {}
    for setup, fields, history in entries:
        epochs = len(history["val_loss"])
        with_lr = dict(history, lr=[fields["lr"]] * epochs)
        contents.setdefault(setup, []).append(dict(fields, dataset="mnist", epochs=epochs,
                                                   curves=with_lr))
    with open(path, "w") as handle:
        json.dump(contents, handle)
    return str(path)


def cell(optimizer="adam", lr=0.001, beta2=0.99, bias_correction=True, run=0):
    return dict(optimizer=optimizer, lr=lr, beta2=beta2, bias_correction=bias_correction, run=run)


# -- reading ------------------------------------------------------------------------------

def test_find_runs_reads_good_runs_and_reports_bad_files(tmp_path):
    good = [write_run(tmp_path, curves([1.0, 0.5]), run=run) for run in (0, 1)]
    half = write_run(tmp_path, curves([1.0, 0.5]), run=2)
    with open(os.path.join(half, "history.json")) as handle:
        text = handle.read()
    with open(os.path.join(half, "history.json"), "w") as handle:
        handle.write(text[:len(text) // 2])
    unequal = write_run(tmp_path, dict(curves([1.0, 0.5]), acc=[0.5]), run=3)
    unknown_status = write_run(tmp_path, curves([1.0, 0.5]), run=4, status="paused")
    short = write_run(tmp_path, curves([1.0, 0.5]), run=5, epochs=3)  # "complete" after 2 of 3
    moved = write_run(tmp_path, curves([1.0, 0.5]), run=6)
    os.makedirs(os.path.dirname(moved.replace("lr=0.001", "lr=0.01")))
    os.rename(moved, moved.replace("lr=0.001", "lr=0.01"))
    moved = moved.replace("lr=0.001", "lr=0.01")
    started = os.path.join(tmp_path, "logreg", "adam_lr=0.001_b2=0.99_bc=on", "run=7")
    os.makedirs(started)
    bad_config = write_run(tmp_path, curves([1.0]), run=8)
    with open(os.path.join(bad_config, "config.json"), "w") as handle:
        json.dump({"setup": "logreg", "optimizer": "sgd", "lr": 0.001, "beta2": 0.99,
                   "bias_correction": True, "run": 8}, handle)
    (tmp_path / "notes.txt").write_text("foreign")
    (tmp_path / "logreg" / ".DS_Store").write_text("hidden, ignored")

    runs, problems = find_runs(str(tmp_path))

    assert sorted(run.source for run in runs) == sorted(good)
    assert [run.curves["val_loss"].tolist() for run in runs] == [[1.0, 0.5]] * 2
    reasons = {problem.path: problem.reason for problem in problems}
    assert set(reasons) == {
        os.path.join(half, "history.json"), os.path.join(unequal, "history.json"),
        os.path.join(unknown_status, "history.json"), os.path.join(short, "history.json"),
        os.path.join(moved, "config.json"), os.path.join(started, "config.json"),
        os.path.join(bad_config, "config.json"), str(tmp_path / "notes.txt")}
    assert "half-written" in reasons[os.path.join(half, "history.json")]
    assert "unequal lengths" in reasons[os.path.join(unequal, "history.json")]
    assert "'paused'" in reasons[os.path.join(unknown_status, "history.json")]
    assert "asks for 3" in reasons[os.path.join(short, "history.json")]
    assert "lies in logreg/adam_lr=0.01" in reasons[os.path.join(moved, "config.json")]
    assert "missing" in reasons[os.path.join(started, "config.json")]
    assert "optimizer" in reasons[os.path.join(bad_config, "config.json")]
    assert all(reason.endswith("skipped") for reason in reasons.values())


def test_load_reference_matches_the_file():
    reference, problems = load_reference()
    assert problems == []
    with open(DEFAULT_REFERENCE) as handle:
        raw = json.load(handle)
    assert {setup: len(runs) for setup, runs in reference.items()} == {
        setup: len(entries) for setup, entries in raw.items()}
    assert {setup: len(runs) for setup, runs in reference.items()} == {
        "logreg": 120, "cifarnet": 120, "small_vgg": 120, "vgg": 120}
    entry, run = raw["cifarnet"][17], reference["cifarnet"][17]
    assert (run.config.optimizer, run.config.lr, run.config.beta2, run.config.bias_correction,
            run.config.run, run.config.epochs) == (
        entry["optimizer"], entry["lr"], entry["beta2"], entry["bias_correction"], entry["run"],
        150)
    for name in ("loss", "acc", "val_loss", "val_acc"):
        assert run.curves[name].tolist() == entry["curves"][name]


# -- figures ------------------------------------------------------------------------------

def luminance(colour):
    red, green, blue = to_rgb(colour)
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def test_draw_metric_plots_every_run_and_the_original_band(tmp_path):
    # Panel lr=0.001: two Adam runs with bias correction, one AMSGrad without; lr=0.01: one Adam.
    adam_curves = [[2.0, 1.5, 1.2, 1.1, 1.0, 0.9, 0.85, 0.8, 0.78, 0.77],
                   [2.1, 1.6, 1.3, 1.2, 1.1, 1.0, 0.95, 0.9, 0.88, 0.86]]
    # The runs are of the original's protocol (11 epochs), stopped after 10 or fewer.
    adam_dirs = [write_run(tmp_path / "R", curves(values), run=run, epochs=11,
                           status="running") for run, values in enumerate(adam_curves)]
    amsgrad_dir = write_run(tmp_path / "R", curves([2.0, 1.0, 0.9, 0.8, 0.7, 0.6]),
                            optimizer="amsgrad", bias_correction=False, epochs=11,
                            status="running")
    write_run(tmp_path / "R", curves([3.0, 2.0, float("nan"), 1.0]), lr=0.01, epochs=11,
              status="running")
    original = [[2.2, 1.4, 1.25, 1.0, 1.05, 0.8, 0.9, 0.7, 0.75, 0.6, 0.5],
                [1.9, 1.7, 1.1, 1.15, 0.95, 0.95, 0.8, 0.85, 0.7, 0.65, 0.55],
                [2.0, 1.5, 1.2, 1.1, 1.0, 0.9, 0.85, 0.8, 0.78, 0.77, 0.52]]
    reference_file = write_reference(tmp_path / "original.json", [
        ("logreg", cell(run=run), curves(values)) for run, values in enumerate(original)])
    runs, problems = find_runs(str(tmp_path / "R"))
    reference, _ = load_reference(reference_file)
    assert problems == [] and len(runs) == 4

    figure = draw_metric("logreg", "val_loss", runs, reference["logreg"])

    axes = np.array(figure.axes[:4]).reshape(2, 2)  # rows lr 0.001, 0.01; columns full, zoom
    assert [ax.get_title() for ax in axes[:, 0]] == ["lr=0.001, β2=0.99", "lr=0.01, β2=0.99"]
    full, zoom = axes[0]
    for ax in (full, zoom):
        lines = {line.get_gid(): line for line in ax.lines}
        assert set(lines) == set(adam_dirs) | {amsgrad_dir}
        for run_dir, values in zip(adam_dirs, adam_curves):
            assert lines[run_dir].get_xdata().tolist() == list(range(1, 11))
            assert lines[run_dir].get_ydata().tolist() == values
        adam, amsgrad_off = lines[adam_dirs[0]].get_color(), lines[amsgrad_dir].get_color()
        assert to_rgb(adam)[2] > to_rgb(adam)[0] and to_rgb(amsgrad_off)[0] > to_rgb(amsgrad_off)[2]
        # The band: between the lowest and highest original run at every epoch, only where
        # the original has the cell (Adam with bias correction), behind the lines.
        (band,) = ax.collections
        assert band.get_gid() == "original adam_lr=0.001_b2=0.99_bc=on"
        assert band.get_zorder() < min(line.get_zorder() for line in ax.lines)
        assert to_rgb(band.get_facecolor()[0][:3]) == pytest.approx(to_rgb(adam))
        vertices = band.get_paths()[0].vertices
        lowest, highest = np.min(original, axis=0), np.max(original, axis=0)
        for x, y in vertices:
            epoch = int(round(x))
            assert y == pytest.approx(lowest[epoch - 1]) or y == pytest.approx(highest[epoch - 1])
        # drawn over the 10 epochs done, where the runs are compared
        assert sorted({round(x) for x, _ in vertices}) == list(range(1, 11))
    assert full.get_xlim() == (0.5, 10.5)
    assert "4 runs, 4-10 epochs of 11 run" in figure._suptitle.get_text()
    # Zoom: the last 20% (at least 2) of the 10 epochs done, y fitted to what is visible there.
    assert zoom.get_xlim() == (8.5, 10.5)
    visible = [0.78, 0.77, 0.88, 0.86] + list(lowest[8:10]) + list(highest[8:10])
    low, high = zoom.get_ylim()
    assert low < min(visible) and high > max(visible)
    assert high - low < 1.5 * (max(visible) - min(visible))
    # lr = 0.01: one running run, NaN left as a gap, no original cell there.
    (line,) = axes[1, 0].lines
    assert np.isnan(line.get_ydata()[2]) and line.get_ydata()[3] == 1.0
    assert len(axes[1, 0].collections) == 0
    labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert labels[:2] == ["Adam, bias correction on", "AMSGrad, bias correction off"]
    assert "original runs" in labels[2]


def test_lighter_colours_without_bias_correction(tmp_path):
    for optimizer in ("adam", "amsgrad"):
        for bias_correction in (True, False):
            write_run(tmp_path, curves([1.0, 0.5]), optimizer=optimizer,
                      bias_correction=bias_correction)
    runs, _ = find_runs(str(tmp_path))
    figure = draw_metric("logreg", "loss", runs)
    colours = {(run.config.optimizer, run.config.bias_correction): line.get_color()
               for run in runs for line in figure.axes[0].lines if line.get_gid() == run.source}
    for optimizer in ("adam", "amsgrad"):
        assert luminance(colours[optimizer, False]) > luminance(colours[optimizer, True]) + 0.15
    for bias_correction in (True, False):
        red, _, blue = to_rgb(colours["adam", bias_correction])
        assert blue > red + 0.2  # Adam blue
        red, _, blue = to_rgb(colours["amsgrad", bias_correction])
        assert red > blue + 0.2  # AMSGrad red


def test_draw_setup_writes_png_and_pdf(tmp_path):
    write_run(tmp_path / "R", curves([1.0, 0.5, 0.4]), setup="cifarnet")
    runs, _ = find_runs(str(tmp_path / "R"))
    paths = draw_setup("cifarnet", runs, [], str(tmp_path / "out"))
    assert sorted(os.path.basename(path) for path in paths) == sorted(
        "cifarnet_%s.%s" % (metric, kind) for metric in ("loss", "acc", "val_loss", "val_acc")
        for kind in ("png", "pdf"))
    for path in paths:
        with open(path, "rb") as handle:
            assert handle.read(5) in (b"\x89PNG\r", b"%PDF-")


# -- report -------------------------------------------------------------------------------

def two_point(final_val_loss, final_val_acc, final_loss):
    """Curves of 2 epochs whose best values are the final ones (first epoch worse)."""
    return curves([5.0, final_val_loss], [0.0, final_val_acc], [5.0, final_loss])


def read_csv(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_report_numbers_against_hand_computation(tmp_path):
    # Reproduced: Adam finals 0.5 and 0.7 (val loss), 0.80 and 0.84 (val acc), 0.3 and 0.3.
    # Original: 1.0 and 1.2, 0.81 and 0.83, 0.29 and 0.31.
    write_run(tmp_path / "R", two_point(0.5, 0.80, 0.3), run=0)
    write_run(tmp_path / "R", two_point(0.7, 0.84, 0.3), run=1)
    # AMSGrad cell: equal to the original's, so it agrees.
    write_run(tmp_path / "R", two_point(1.0, 0.9, 0.2), optimizer="amsgrad", run=0)
    write_run(tmp_path / "R", two_point(1.2, 0.8, 0.4), optimizer="amsgrad", run=1)
    reference_file = write_reference(tmp_path / "original.json", [
        ("logreg", cell(run=0), two_point(1.0, 0.81, 0.29)),
        ("logreg", cell(run=1), two_point(1.2, 0.83, 0.31)),
        ("logreg", cell("amsgrad", run=0), two_point(1.0, 0.9, 0.2)),
        ("logreg", cell("amsgrad", run=1), two_point(1.2, 0.8, 0.4))])
    runs, _ = find_runs(str(tmp_path / "R"))
    reference, _ = load_reference(reference_file)

    report, table = write_report(str(tmp_path / "out"), runs, reference)

    rows = {(row["optimizer"], row["measure"]): row for row in read_csv(table)}
    adam = rows["adam", "final_val_loss"]
    # mean 0.6, sample std sqrt(0.02) = 0.141421; original 1.1 (same std);
    # pooled sqrt((0.02 + 0.02) / 2) = 0.141421; d = -0.5 / 0.141421 = -3.5355
    assert float(adam["mean"]) == pytest.approx(0.6)
    assert float(adam["std"]) == pytest.approx(0.141421, abs=1e-6)
    assert float(adam["original_mean"]) == pytest.approx(1.1)
    assert float(adam["pooled_std"]) == pytest.approx(0.141421, abs=1e-6)
    assert float(adam["d"]) == pytest.approx(-3.5355, abs=1e-4)
    assert rows["adam", "best_val_loss"]["mean"] == adam["mean"]  # epoch 1 (5.0) is worse
    # val acc: 0.82 vs 0.82, d 0; train loss: std 0 against 0.014142 -> pooled 0.01, d 0
    assert float(rows["adam", "final_val_acc"]["d"]) == pytest.approx(0.0, abs=1e-9)
    assert float(rows["adam", "final_train_loss"]["pooled_std"]) == pytest.approx(0.01)
    # The verdict's largest distance: with 2 runs a side sqrt(1/2 + 1/2) = 1, so the final
    # validation loss's standardized difference is d (the curves' RMS over the 2 epochs, of
    # which the first is equal, is d / sqrt(2)); the verdict follows the thresholds.
    assert float(adam["largest_distance"]) == pytest.approx(3.5355, abs=1e-4)
    assert adam["largest"] == "final_val_loss"
    assert "largest distance final_val_loss -3.5 " in adam["reason"]
    for row in rows.values():
        distance = float(row["largest_distance"])
        expected = ("differs" if distance > float(row["differs_above"]) else "agrees"
                    if distance <= float(row["agrees_below"]) else "inconclusive")
        assert row["verdict"] == expected
    # AMSGrad's runs are the original's: distance 0
    assert float(rows["amsgrad", "final_val_loss"]["largest_distance"]) == pytest.approx(0)
    assert rows["amsgrad", "final_val_loss"]["verdict"] == "agrees"

    text = open(report).read()
    assert "0.6000 (0.1414) vs 1.1000 (0.1414), d -3.5" in text
    assert "**agrees**" in text
    assert "### The verdicts' error rates" in text  # the thresholds' error rates are stated
    assert "None." in text.split("## Skipped files")[1]


def test_pair_effects_against_hand_computation(tmp_path):
    # Two pairs (bias correction on, off). On: AMSGrad final val loss 0.4/0.6 vs Adam 0.5/0.7
    # (difference -0.1, pooled std 0.141421, d -0.7071); off: AMSGrad 0.9/0.9 vs Adam
    # 0.55/0.55 (difference +0.35, pooled std 0 -> raised to 1e-4, d +3500).
    # Val acc = 1 - val loss, and best = final (the first epoch is worse).  The two optimizers'
    # runs have different seeds: independent draws, compared unpaired.  All are on common
    # random numbers, so the cells of one seed share their draws run by run.
    values = {("adam", True): (0.5, 0.7), ("amsgrad", True): (0.4, 0.6),
              ("adam", False): (0.55, 0.55), ("amsgrad", False): (0.9, 0.9)}
    for (optimizer, bias_correction), finals in values.items():
        for run, final in enumerate(finals):
            write_run(tmp_path, two_point(final, 1 - final, final), optimizer=optimizer,
                      bias_correction=bias_correction, run=run,
                      seed=int(optimizer == "amsgrad"), seeding="common")
    runs, _ = find_runs(str(tmp_path))
    cells = {group.cell: group for group in group_runs(runs).values()}

    effects = {(effect.field, effect.measure): pair_text(effect)
               for effect in pair_effects(cells)}

    lower = effects["optimizer", "final_val_loss"]
    assert lower.startswith("AMSGrad better in 1 of 2 pairs (by > 2 std: AMSGrad 0, Adam 1)")
    # mean difference (-0.1 + 0.35) / 2 = +0.125; median d (-0.7071 + 3500) / 2 = 1749.65
    assert lower.endswith("mean difference AMSGrad - Adam +0.1250, median d +1749.6")
    accuracy = effects["optimizer", "final_val_acc"]
    assert accuracy.startswith("AMSGrad better in 1 of 2 pairs (by > 2 std: AMSGrad 0, Adam 1)")
    # Bias correction on - off: both cells of a pair have one seed, so they share their draws
    # and are compared run by run.  Adam: 0.5 - 0.55, 0.7 - 0.55 = -0.05, +0.15 (mean +0.05,
    # std 0.1414, d +0.35); AMSGrad: 0.4 - 0.9, 0.6 - 0.9 = -0.5, -0.3 (mean -0.4, d -2.83;
    # unpaired it would be -0.4 / pooled 0.1 = -4.0).
    bias = effects["bias_correction", "best_val_loss"]
    assert bias == ("on better in 1 of 2 pairs, d beyond ±2 in 1; mean absolute on - off "
                    "0.2250, largest -0.4000 (amsgrad lr=0.001 b2=0.99, d -2.8); paired run by "
                    "run in 2")


def parse_summary_md(path):
    """{(setup, optimizer, lr, beta2, bias_correction): {measure: (mean, std)}} from summary.md."""
    table, setup = {}, None
    columns = ("final_train_loss", "final_val_loss", "best_val_loss", "final_val_acc",
               "best_val_acc")
    for line in open(path):
        if line.startswith("## "):
            setup = line[3:].strip()
        elif re.match(r"\| (adam|amsgrad) \|", line):
            fields = [field.strip() for field in line.strip().strip("|").split("|")]
            key = (setup, fields[0], float(fields[1]), float(fields[2]), fields[3] == "True")
            table[key] = {name: tuple(map(float, re.findall(r"[-\d.]+", value)))
                          for name, value in zip(columns, fields[4:])}
    return table


def test_original_side_matches_reference_summary():
    """The original side of the report against reference/summary.md (std there divides by n)."""
    expected = parse_summary_md(os.path.join(REPO, "reference", "summary.md"))
    reference, _ = load_reference()
    groups = group_runs([run for runs in reference.values() for run in runs])
    comparisons = compare_cells(groups, groups)
    assert len(expected) == len(comparisons) == 96  # 4 setups x 24 cells, vgg included
    for comparison in comparisons:
        group = comparison.group
        assert len(group.finished) == 5 and group.diverged == group.running == 0
        key = group.key
        for measure, (mean, std) in expected[key.setup, key.optimizer, key.lr, key.beta2,
                                             key.bias_correction].items():
            row = comparison.rows[measure]
            assert row["original_mean"] == pytest.approx(mean, abs=5.1e-5)
            assert row["original_std"] * math.sqrt(4 / 5) == pytest.approx(std, abs=5.1e-5)


def test_copy_of_the_original_runs_agrees_everywhere(tmp_path):
    """Reproduced = original: every cell agrees with d = 0 and both claim columns are equal."""
    reference, _ = load_reference()
    for run in reference["logreg"]:
        write_run(tmp_path / "R", {name: run.curves[name].tolist() for name in run.curves},
                  **{name: getattr(run.config, name) for name in
                     ("optimizer", "lr", "beta2", "bias_correction", "run")})
    runs, problems = find_runs(str(tmp_path / "R"))
    assert problems == [] and len(runs) == 120

    report, table = write_report(str(tmp_path / "out"), runs, reference)

    rows = read_csv(table)
    assert len(rows) == 24 * 5
    assert {row["verdict"] for row in rows} == {"agrees"}
    assert {float(row["d"]) for row in rows} == {0.0}
    # The pair table: 7 rows, equal on both sides (the copies have no seeding field, so they
    # count as common draws and are paired run by run; the original's are not): the
    # numbers are equal where they do not depend on the pairing.
    pairs = [line for line in open(report)
             if line.startswith("| ") and line.count(" | ") == 3 and "measure" not in line]
    assert len(pairs) == 7
    for line in pairs:
        reproduced, original = line.strip().strip("|").strip().split(" | ")[2:]
        assert reproduced.split("(by > ")[0].split(", d beyond")[0] == \
            original.split("(by > ")[0].split(", d beyond")[0]
    claims = [line for line in open(report) if line.startswith("| the blog | logreg |")]
    assert len(claims) == 6
    for line in claims:
        original, reproduced = line.strip().strip("|").strip().split(" | ")[4:]
        assert original == reproduced and original.startswith("holds")
    assert "| 6 of 6 / 6 of 6 |" in open(report).read()


def test_diverged_running_and_other_protocols(tmp_path):
    write_run(tmp_path / "R", two_point(0.5, 0.8, 0.3), run=0)
    write_run(tmp_path / "R", curves([1.0, float("nan")]), run=1, status="diverged", epochs=2)
    write_run(tmp_path / "R", curves([1.0]), run=2, status="running", epochs=2)
    write_run(tmp_path / "R", two_point(0.5, 0.8, 0.3), optimizer="amsgrad", epochs=2)
    write_run(tmp_path / "R", curves([0.5, 0.4, 0.3]), optimizer="amsgrad", lr=0.01)
    reference_file = write_reference(tmp_path / "original.json", [
        ("logreg", cell(run=run), two_point(0.5, 0.8, 0.3)) for run in (0, 1)] + [
        ("logreg", cell("amsgrad", run=run), two_point(0.5, 0.8, 0.3)) for run in (0, 1)])
    runs, _ = find_runs(str(tmp_path / "R"))
    reference, _ = load_reference(reference_file)

    report, table = write_report(str(tmp_path / "out"), runs, reference)

    rows = {(row["optimizer"], row["lr"], row["measure"]): row for row in read_csv(table)}
    adam = rows["adam", "0.001", "final_val_loss"]
    assert (adam["n"], adam["diverged"], adam["running"]) == ("1", "1", "1")
    assert adam["verdict"] == "differs" and "diverged" in adam["reason"]
    # One run against two equal ones: pooled std 0, raised to 1e-4; d 0.
    amsgrad = rows["amsgrad", "0.001", "final_val_loss"]
    assert (amsgrad["verdict"], float(amsgrad["d"]), amsgrad["original_n"]) == ("agrees", 0.0, "2")
    lr01 = rows["amsgrad", "0.01", "final_val_loss"]
    assert lr01["verdict"] == "n/a" and "no such cell" in lr01["reason"]
    text = open(report).read()
    assert "| 1 (+1 diverged, 1 running) |" in text


def test_protocol_that_differs_from_the_original_is_not_compared(tmp_path):
    reference, _ = load_reference()
    write_run(tmp_path / "R", curves([1.0, 0.8, 0.7]), setup="cifarnet", run=0)
    write_run(tmp_path / "R", curves([1.1, 0.9, 0.6]), setup="cifarnet", run=1)
    runs, _ = find_runs(str(tmp_path / "R"))
    _, table = write_report(str(tmp_path / "out"), runs, reference)
    rows = read_csv(table)
    assert {row["verdict"] for row in rows} == {"n/a"}
    assert all("protocol differs from the original's (150 epochs" in row["reason"] for row in rows)
    assert all(row["original_n"] == "0" for row in rows)


def test_uncentred_cifar_runs_are_not_compared_with_the_centred_original(tmp_path):
    """The original's CIFAR-10 logs were made on centred inputs: an uncentred run is another
    protocol, and a run written before centring became the default (no cifar_centering in
    its config.json) is read as uncentred and pointed to its new directory."""
    reference, _ = load_reference()
    original = reference["vgg"][0]
    history = {name: original.curves[name].tolist() for name in original.curves}
    fields = {name: getattr(original.config, name)
              for name in ("optimizer", "lr", "beta2", "bias_correction", "run")}
    centred = write_run(tmp_path / "R", history, setup="vgg", **fields)
    uncentred_config = RunConfig(setup="vgg", cifar_centering=False, epochs=150, **fields)
    uncentred = uncentred_config.run_dir(str(tmp_path / "R"))
    shutil.copytree(centred, uncentred)
    with open(os.path.join(uncentred, "config.json"), "w") as handle:
        json.dump(uncentred_config.to_dict(), handle)
    legacy = tmp_path / "L" / os.path.relpath(centred, tmp_path / "R")
    shutil.copytree(centred, legacy)
    values = uncentred_config.to_dict()
    del values["cifar_centering"]
    with open(os.path.join(legacy, "config.json"), "w") as handle:
        json.dump(values, handle)

    runs, problems = find_runs(str(tmp_path / "R"))
    assert problems == [] and sorted(run.config.cifar_centering for run in runs) == [False, True]
    _, table = write_report(str(tmp_path / "out"), runs, reference)
    verdicts = {row["verdict"] for row in read_csv(table) if row["cifar_centering"] == "True"}
    assert verdicts == {"agrees"}
    other = [row for row in read_csv(table) if row["cifar_centering"] == "False"]
    assert other and {row["verdict"] for row in other} == {"n/a"}
    assert all(row["reason"].endswith("inputs centred)") for row in other)

    # The figures draw the original band behind the centred run only.
    for run in runs:
        figure = draw_metric("vgg", "loss", [run], reference["vgg"])
        assert len(figure.axes[0].collections) == int(run.config.cifar_centering)

    runs, problems = find_runs(str(tmp_path / "L"))
    assert runs == [] and len(problems) == 1
    assert "written before CIFAR-10 inputs were centred by default" in problems[0].reason
    assert problems[0].reason.split("rename its directory to ")[1].startswith(
        str(tmp_path / "L" / "vgg" / (uncentred_config.cell_name)))


# -- command line -------------------------------------------------------------------------

def test_empty_results_directory_exits_2(tmp_path, capsys):
    assert run_cli(make_figures.main, ["--results-dir", str(tmp_path), "--out",
                                       str(tmp_path / "out")], prog="make_figures.py") == 2
    error = capsys.readouterr().err
    assert error.startswith("make_figures.py: error: no runs in %s" % tmp_path)
    assert error.count("\n") == 1
    assert not os.path.exists(tmp_path / "out")


def test_only_unreadable_runs_exits_2_and_lists_them(tmp_path, capsys):
    run_dir = write_run(tmp_path, curves([1.0]))
    with open(os.path.join(run_dir, "history.json"), "w") as handle:
        handle.write('{"loss": [1.0, ')
    assert run_cli(make_figures.main, ["--results-dir", str(tmp_path), "--out",
                                       str(tmp_path / "out")], prog="make_figures.py") == 2
    error = capsys.readouterr().err
    assert "warning: %s" % os.path.join(run_dir, "history.json") in error
    assert "1 files skipped, listed above" in error


def test_missing_results_directory_exits_2(tmp_path, capsys):
    assert run_cli(make_figures.main, ["--results-dir", str(tmp_path / "nope")],
                   prog="make_figures.py") == 2
    assert "does not exist" in capsys.readouterr().err


def test_synthetic_section_and_figure(tmp_path, monkeypatch, capsys):
    synthetic_dir = tmp_path / "R" / "synthetic"
    synthetic_dir.mkdir(parents=True)
    summary = {"online": {"adam": {"final_x": 0.99, "avg_regret": 0.25, "steps": 1000},
                          "amsgrad": {"final_x": -0.98, "avg_regret": 0.01, "steps": 1000}}}
    (synthetic_dir / "summary.json").write_text(json.dumps(summary))
    calls = []

    def plot_synthetic(directory, out_dir):
        calls.append((directory, out_dir))
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, "synthetic.png")
        open(path, "wb").close()
        return [path]

    monkeypatch.setitem(sys.modules, "plots.synthetic",
                        types.SimpleNamespace(plot_synthetic=plot_synthetic))
    out = tmp_path / "out"
    assert make_figures.main(["--results-dir", str(tmp_path / "R"), "--out", str(out)]) == 0
    assert calls == [(str(synthetic_dir), str(out))]
    text = (out / "REPORT.md").read_text()
    assert "| online | adam | 1000 | 0.9900 | 0.25 |" in text
    assert "| online | amsgrad | 1000 | -0.9800 | 0.01 |" in text
    assert "[synthetic.png](synthetic.png)" in text

    # A half-written summary: reported, and with nothing else to draw, exit 2.
    (synthetic_dir / "summary.json").write_text('{"online": {"adam": ')
    assert run_cli(make_figures.main, ["--results-dir", str(tmp_path / "R"), "--out", str(out)],
                   prog="make_figures.py") == 2
    assert "summary.json: is not valid JSON" in capsys.readouterr().err


def test_script_draws_figures_and_report_without_theano(tmp_path):
    results = tmp_path / "R"
    for optimizer in ("adam", "amsgrad"):
        for run in range(2):
            write_run(results, curves([1.0, 0.7 + 0.1 * run, 0.6]), optimizer=optimizer, run=run,
                      setup="cifarnet")
    half = write_run(results, curves([1.0]), optimizer="amsgrad", run=2, setup="cifarnet")
    with open(os.path.join(half, "config.json"), "w") as handle:
        handle.write('{"setup": "cifarnet", "optim')
    out = tmp_path / "figs"
    # From another directory, as a script: the path fix must find the project.
    script = subprocess.run([sys.executable, os.path.join(REPO, "plots", "make_figures.py"),
                             "--results-dir", str(results), "--out", str(out)],
                            cwd=str(tmp_path), capture_output=True, text=True)
    assert script.returncode == 0, script.stderr
    assert os.path.join(half, "config.json") in script.stderr
    assert len(list(out.glob("cifarnet_*.png"))) == len(list(out.glob("cifarnet_*.pdf"))) == 4
    text = (out / "REPORT.md").read_text()
    # 3-epoch runs are not the blog's protocol: their files say so
    assert "[cifarnet_epochs=3_val_loss](cifarnet_epochs=3_val_loss.png)" in text
    assert "`%s`: is not valid JSON" % os.path.join(half, "config.json") in text
    imports = subprocess.run(
        [sys.executable, "-c", "import sys, plots.make_figures, plots.figures, plots.report, "
         "plots.verdict.results; print(sorted(m for m in sys.modules if m.split('.')[0] in "
         "('theano', 'lasagne')))"], capture_output=True, text=True, cwd=REPO)
    assert imports.stdout.strip() == "[]", imports.stderr


# -- faults -------------------------------------------------------------------------------

def test_out_naming_an_existing_file_exits_2(tmp_path, capsys):
    write_run(tmp_path / "R", curves([1.0, 0.8]))
    blocker = tmp_path / "figures"
    blocker.write_text("my notes")
    assert run_cli(make_figures.main, ["--results-dir", str(tmp_path / "R"), "--out",
                                       str(blocker)], prog="make_figures.py") == 2
    assert capsys.readouterr().err == (
        "make_figures.py: error: --out %s is a file, not a directory; name a directory (it "
        "is created if needed)\n" % blocker)
    assert blocker.read_text() == "my notes"


def test_results_dir_naming_a_file_exits_2(tmp_path, capsys):
    results = tmp_path / "results"
    results.write_text("")
    assert run_cli(make_figures.main, ["--results-dir", str(results), "--out",
                                       str(tmp_path / "out")], prog="make_figures.py") == 2
    assert capsys.readouterr().err == (
        "make_figures.py: error: results directory %s is a file, not a directory; pass the "
        "directory experiments/run.py wrote (--results-dir)\n" % results)
    assert not (tmp_path / "out").exists()


def test_an_interrupted_drawing_leaves_no_half_written_figure(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    results, out = tmp_path / "R", tmp_path / "figures"
    write_run(results, curves([1.0, 0.8]))
    runs, _ = find_runs(str(results))
    draw_setup("logreg", runs, [], str(out))
    complete = {path.name: path.read_bytes() for path in out.iterdir()}
    real_savefig = Figure.savefig

    def killed_half_way(figure, target, **kwargs):
        # Output renders, half of it reaches its destination, then the process is stopped.
        buffer = io.BytesIO()
        real_savefig(figure, buffer, **dict(kwargs, format=kwargs.get("format") or "png"))
        payload = buffer.getvalue()
        if isinstance(target, (str, os.PathLike)):
            with open(target, "wb") as handle:
                handle.write(payload[:len(payload) // 2])
        else:
            target.write(payload[:len(payload) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", killed_half_way)
    with pytest.raises(KeyboardInterrupt):
        draw_setup("logreg", runs, [], str(out))
    assert {path.name: path.read_bytes() for path in out.iterdir()} == complete


# -- runs stopped early, the opening table, packed runs --------------------------------------

#: config.json's data of a run on this project's copy of MNIST (official content, other files).
MNIST_COPY = {"content": "52cd6c10ae77107af32269dd9d10ca19c1b749e83235a0c75e2f0729ebeaf141",
              "files": "other"}


def early_runs(tmp_path):
    """Original: 2 runs of 4 epochs per cell; reproduced: run 0 stopped after epoch 2."""
    originals = [[2.0, 1.0, 0.5, 0.4], [2.2, 1.2, 0.6, 0.45]]
    reference_file = write_reference(tmp_path / "original.json", [
        ("logreg", cell(optimizer, run=run), curves(values))
        for optimizer in ("adam", "amsgrad") for run, values in enumerate(originals)])
    write_run(tmp_path / "R", curves([2.1, 1.1]), status="running", epochs=4, data=MNIST_COPY)
    write_run(tmp_path / "R", curves([2.1, 30.0]), optimizer="amsgrad", status="running",
              epochs=4, data=MNIST_COPY)
    return reference_file


def test_runs_stopped_early_are_compared_after_the_same_epoch_of_the_original(tmp_path):
    reference_file = early_runs(tmp_path)
    runs, _ = find_runs(str(tmp_path / "R"))
    reference, _ = load_reference(reference_file)

    report, table = write_report(str(tmp_path / "out"), runs, reference)

    rows = {(row["optimizer"], row["measure"]): row for row in read_csv(table)}
    adam, amsgrad = rows["adam", "final_val_loss"], rows["amsgrad", "final_val_loss"]
    # After epoch 2 the originals stand at 1.0 and 1.2: mean 1.1, std sqrt(0.02); ours
    # 1.1 (d 0) and 30.0: pooled std sqrt((0 + 0.02) / (1 + 2 - 2)), d = 28.9 / 0.141421.
    assert float(adam["original_mean"]) == pytest.approx(1.1)
    assert float(adam["d"]) == pytest.approx(0.0, abs=1e-9) and adam["verdict"] == "agrees"
    assert float(amsgrad["d"]) == pytest.approx(204.354, abs=1e-3)
    assert amsgrad["verdict"] == "differs"
    # best validation loss over the first 2 epochs: 1.1 and 2.1 against 1.0 and 1.2
    assert float(rows["amsgrad", "best_val_loss"]["mean"]) == pytest.approx(2.1)
    assert float(rows["amsgrad", "best_val_loss"]["original_mean"]) == pytest.approx(1.1)
    assert {row["at_epoch"] for row in rows.values()} == {"2"}
    assert "(after epoch 2 of 4)" in amsgrad["reason"]
    text = open(report).read()
    assert "| 1 after epoch 2 |" in text


def test_blog_grid_counts_cells_not_run(tmp_path):
    write_run(tmp_path / "R", curves([1.0, 0.9]), status="running", epochs=150)
    runs, _ = find_runs(str(tmp_path / "R"))
    report, _ = write_report(str(tmp_path / "out"), runs, {})
    row = [cell.strip() for cell in open(report).read().splitlines()[4].strip("|").split("|")]
    assert row[1] == "the blog's" and row[2] == "mnist, source not recorded"
    assert row[3] == "0 complete, 0 diverged, 1 stopped early (of the blog's 120)"
    # The blog's 6 logreg claims: the runs were stopped early, and no original was given.
    assert row[4:] == ["2 of 150", "0 / 0 / 0 / 1 / 23",
                       "0 of 6 (6 cannot tell) / 0 of 6 (6 cannot tell)"]


def test_report_opens_with_the_summary_and_the_cells_that_differ(tmp_path):
    reference_file = early_runs(tmp_path)
    runs, _ = find_runs(str(tmp_path / "R"))
    reference, _ = load_reference(reference_file)

    report, table = write_report(str(tmp_path / "out"), runs, reference)

    lines = open(report).read().splitlines()
    assert lines[0].startswith("# ") and lines[2].startswith("| setup | protocol | data |")
    row = [cell.strip() for cell in lines[4].strip("|").split("|")]
    assert row[0] == "logreg" and row[1].startswith("4 epochs, batch 128, linear")
    assert row[2] == "the official MNIST content (files re-compressed: their checksums differ)"
    # Two cells, one agrees, one differs (not the blog's 150-epoch grid: no "not run"); no
    # claim is about this protocol (neither the blog's nor the study's): "-".
    assert row[3] == "0 complete, 0 diverged, 2 stopped early"
    assert row[4:] == ["2 of 4", "1 / 1 / 0 / 0 / -", "-"]
    differ = lines[lines.index("### Cells that differ from the original, or cannot be told "
                               "apart yet") + 2]
    assert differ.startswith("- logreg amsgrad lr=0.001 b2=0.99 bc=on (runs: 1 after epoch 2): "
                             "**differs**, largest distance ")
    assert {row["data"] for row in read_csv(table)} == {
        "the official MNIST content (files re-compressed: their checksums differ)"}


def test_packed_runs_give_the_report_of_their_run_directories(tmp_path, capsys):
    reference_file = early_runs(tmp_path)
    write_run(tmp_path / "R", two_point(0.5, 0.8, 0.3), lr=0.01, data=MNIST_COPY)
    packed = str(tmp_path / "packed")
    assert run_cli(make_figures.main, ["--results-dir", str(tmp_path / "R"), "--pack", packed],
                   prog="make_figures.py") == 0
    # one file per setup and protocol: the 2-epoch run and the two 4-epoch ones
    assert sorted(os.listdir(packed)) == ["logreg_epochs=2.runs.json", "logreg_epochs=4.runs.json"]
    for source, out in ((str(tmp_path / "R"), "from_dirs"), (packed, "from_packed")):
        assert run_cli(make_figures.main, ["--results-dir", source, "--reference",
                                           reference_file, "--out", str(tmp_path / out)],
                       prog="make_figures.py") == 0
    from_dirs = open(tmp_path / "from_dirs" / "REPORT.md").read()
    from_packed = open(tmp_path / "from_packed" / "REPORT.md").read()
    assert from_packed.replace(packed, str(tmp_path / "R")) == from_dirs
    assert open(tmp_path / "from_dirs" / "report.csv").read() == \
        open(tmp_path / "from_packed" / "report.csv").read()


def test_a_packed_file_cut_short_is_reported_and_skipped(tmp_path, capsys):
    write_run(tmp_path / "R", two_point(0.5, 0.8, 0.3), data=MNIST_COPY)
    write_run(tmp_path / "R" / "other", two_point(0.5, 0.8, 0.3), setup="ffnn")
    packed = tmp_path / "packed"
    make_figures.main(["--results-dir", str(tmp_path / "R"), "--pack", str(packed)])
    make_figures.main(["--results-dir", str(tmp_path / "R" / "other"), "--pack", str(packed)])
    damaged = packed / "logreg_epochs=2.runs.json"
    damaged.write_bytes(damaged.read_bytes()[:-40])  # an interrupted copy
    runs, problems = find_runs(str(packed))
    assert [run.config.setup for run in runs] == ["ffnn"]
    assert len(problems) == 1 and problems[0].path == str(damaged)


def test_no_original_band_behind_runs_of_another_protocol(tmp_path):
    """The original ran 150 epochs, linear decay, categorical cross-entropy: runs of the
    study's protocol (inv-sqrt, binary loss, 50 epochs) or of another length get no band,
    even in a cell the original has."""
    original = [[2.0 - 0.1 * epoch for epoch in range(4)],
                [2.1 - 0.1 * epoch for epoch in range(4)]]
    reference_file = write_reference(tmp_path / "original.json", [
        ("logreg", cell(run=run), curves(values)) for run, values in enumerate(original)])
    reference, _ = load_reference(reference_file)
    same = RunConfig(setup="logreg", optimizer="adam", lr=0.001, beta2=0.99,
                     bias_correction=True, epochs=4)
    for config, banded in ((same, True),
                           (dataclasses.replace(same, lr_schedule="inv-sqrt", loss="binary"),
                            False),
                           (dataclasses.replace(same, epochs=5), False)):
        run = Run(config=config, curves={name: np.array([1.0, 0.9]) for name in CURVES},
                  status="running", source="x")
        figure = draw_metric("logreg", "val_loss", [run], reference["logreg"])
        assert bool(figure.axes[0].collections) == banded, config


def test_a_panel_at_chance_spans_at_least_the_minimum_meaningful_difference():
    """Accuracies of 0.0997-0.1003 (runs stuck at chance) are drawn on an axis of at least
    20 x 3e-4 = 0.006, not autoscaled to their noise; a loss at ln 10 on at least
    20 x 0.01% of it."""
    config = RunConfig(setup="cifarnet", optimizer="adam", lr=0.01, beta2=0.99,
                       bias_correction=True, epochs=2)
    run = Run(config=config, curves={"loss": np.array([2.3029, 2.3027]),
                                     "acc": np.array([0.0997, 0.1003]),
                                     "val_loss": np.array([2.3030, 2.3026]),
                                     "val_acc": np.array([0.1003, 0.0997])}, status="complete",
              source="x")
    for metric, span in (("val_acc", 0.006), ("loss", 20 * 1e-4 * 2.3029)):
        figure = draw_metric("cifarnet", metric, [run])
        for ax in figure.axes[:2]:
            low, high = ax.get_ylim()
            assert high - low >= span * (1 - 1e-9), (metric, ax.get_title())
        assert "1 run x 2 epochs" in figure._suptitle.get_text()


# -- optimizers beyond the blog's two --------------------------------------------------------

def test_other_optimizers_are_drawn_in_their_colour_and_have_no_original(tmp_path,
                                                                         monkeypatch):
    from experiments.records import optimizers, plugins
    registry = plugins.Registry("optimizer", [optimizers.get(name) for name in optimizers.names()])
    monkeypatch.setattr(optimizers, "_OPTIMIZERS", registry)
    optimizers.register(optimizers.Optimizer("mine", "amsgrad:adam", "Mine", "#208020"))
    reference_file = write_reference(tmp_path / "original.json", [
        ("logreg", cell("adam", run=run), curves([1.0 + run, 0.5])) for run in (0, 1)])
    for name in ("adam", "adamnc", "mine"):
        for run in (0, 1):
            write_run(tmp_path / "R", curves([1.0 + run, 0.5]), optimizer=name, run=run,
                      bias_correction=name == "adam")
    runs, problems = find_runs(str(tmp_path / "R"))
    assert problems == [] and len(runs) == 6
    figure = draw_metric("logreg", "loss", runs)
    colours = {line.get_gid(): line.get_color() for line in figure.axes[0].lines}
    by_optimizer = {run.config.optimizer: colours[run.source] for run in runs}
    # ADAMNC has no bias correction: its own colour; the plug-in's (Adam's arguments) without
    # it: lighter.
    assert by_optimizer["adam"] == "#1f4fb4" and by_optimizer["adamnc"] == "#2a8a3e"
    red, green, blue = to_rgb(by_optimizer["mine"])
    assert green > red + 0.1 and green > blue + 0.1
    assert luminance(by_optimizer["mine"]) > luminance("#208020") + 0.15
    labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert labels[:3] == ["Adam, bias correction on", "ADAMNC", "Mine, bias correction off"]

    reference, _ = load_reference(reference_file)
    _, table = write_report(str(tmp_path / "out"), runs, reference)
    rows = {(row["optimizer"], row["measure"]): row for row in read_csv(table)}
    assert rows["adam", "final_val_loss"]["verdict"] == "agrees"
    for name in ("adamnc", "mine"):
        row = rows[name, "final_val_loss"]
        assert row["verdict"] == "n/a" and row["reason"] == "the original ran no %s" % name
        assert float(row["mean"]) == pytest.approx(0.5)


def test_cells_of_other_optimizers_are_not_counted_in_the_blogs_grid(tmp_path):
    # Two Adam cells and one ADAMNC cell: 24 - 2 of the blog's cells are not run (ADAMNC's cell
    # is beside the grid, not in it; counting it as one of the 24 gave 21, and -3 for 27 cells).
    for optimizer, lr in (("adam", 0.001), ("adam", 0.01), ("adamnc", 0.001)):
        write_run(tmp_path / "R", curves([1.0, 0.9]), optimizer=optimizer, lr=lr,
                  status="running", epochs=150)
    runs, _ = find_runs(str(tmp_path / "R"))
    report, _ = write_report(str(tmp_path / "out"), runs, {})
    row = [cell.strip() for cell in open(report).read().splitlines()[4].strip("|").split("|")]
    assert row[1] == "the blog's" and row[5] == "0 / 0 / 0 / 3 / 22"
