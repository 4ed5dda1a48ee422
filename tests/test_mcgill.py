"""The reproduction study's Figure 2 (plots/mcgill.py), from small hand-made runs.

Every expected choice and number is worked out by hand here (losses are binary fractions,
so means are exact), never taken from the code under test.
"""
import json
import os

import numpy as np

from errors import run_cli
from experiments.records import setups
from experiments.records.config import RunConfig
from plots import make_figures
from plots.mcgill import choose_cells, draw_choices, draw_mcgill
from plots.verdict.results import Run, find_runs


def run(val_loss, optimizer="adam", lr=0.001, beta2=0.99, run_index=0, setup="logreg",
        status="complete", loss=None, protocol="mcgill", batch_size=128):
    """A Run of the mcgill protocol (or the blog's) with these curves (3 epochs when complete)."""
    schedule, loss_name = ("inv-sqrt", "binary") if protocol == "mcgill" else \
        ("linear", "categorical")
    config = RunConfig(setup=setup, optimizer=optimizer, lr=lr, beta2=beta2,
                       bias_correction=protocol != "mcgill", run=run_index, epochs=3,
                       batch_size=batch_size, lr_schedule=schedule, loss=loss_name)
    loss = list(loss) if loss is not None else [2 * value for value in val_loss]
    curves = {"val_loss": np.array(val_loss, dtype=float), "loss": np.array(loss, dtype=float),
              "acc": np.full(len(val_loss), 0.5), "val_acc": np.full(len(val_loss), 0.5)}
    return Run(config=config, curves=curves, status=status,
               source="%s/%s/run=%d" % (setup, config.cell_name, run_index))


def made_up_runs():
    """Cells with known mean final validation losses (the last value of each list):

    adam     lr=0.001  b2=0.99   0.3125, 0.375   mean 0.34375
    adam     lr=0.001  b2=0.999  0.25,   0.375   mean 0.3125   <- adam's choice
    adam     lr=0.01   b2=0.99   0.125,  diverged mean inf
    amsgrad  lr=0.001  b2=0.99   0.25,   0.5     mean 0.375    <- tie, the smaller beta2
    amsgrad  lr=0.001  b2=0.999  0.375,  0.375   mean 0.375
    amsgrad  lr=0.0001 b2=0.99   0.0625 (running: not final, not counted)
    amsgrad  lr=0.01   b2=0.99   0.0625 (blog protocol: not counted)
    """
    return [
        run([1, 0.5, 0.3125], beta2=0.99, run_index=0),
        run([1, 0.5, 0.375], beta2=0.99, run_index=1),
        run([1, 0.5, 0.25], beta2=0.999, run_index=0, loss=[1.0, 0.5, 0.25]),
        run([1, 0.5, 0.375], beta2=0.999, run_index=1, loss=[0.75, 0.25, 0.125]),
        run([1, 0.5, 0.125], lr=0.01, run_index=0),
        run([1, 0.5], lr=0.01, run_index=1, status="diverged"),
        run([1, 0.5, 0.25], "amsgrad", beta2=0.99, run_index=0),
        run([1, 0.5, 0.5], "amsgrad", beta2=0.99, run_index=1),
        run([1, 0.5, 0.375], "amsgrad", beta2=0.999, run_index=0),
        run([1, 0.5, 0.375], "amsgrad", beta2=0.999, run_index=1),
        run([1, 0.0625], "amsgrad", lr=0.0001, status="running"),
        run([1, 0.5, 0.0625], "amsgrad", lr=0.01, protocol="blog"),
    ]


def test_choice_per_optimizer_is_the_cell_of_lowest_mean_final_val_loss():
    runs = made_up_runs()
    choices = choose_cells(runs[::-1], "logreg")  # reading order does not matter
    assert list(choices) == ["adam", "amsgrad"]
    assert choices["adam"].summary() == {
        "lr": 0.001, "beta2": 0.999, "bias_correction": False, "epochs": 3, "batch_size": 128,
        "runs": 2, "mean_final_val_loss": 0.3125, "cells_compared": 3}
    assert choices["amsgrad"].summary() == {
        "lr": 0.001, "beta2": 0.99, "bias_correction": False, "epochs": 3, "batch_size": 128,
        "runs": 2, "mean_final_val_loss": 0.375, "cells_compared": 2}
    assert set(choices["adam"].runs) == set(runs[2:4])
    assert choose_cells(runs, "ffnn") == {}
    assert choose_cells([r for r in runs if r.config.optimizer == "adam"], "logreg").keys() \
        == {"adam"}


def test_figure_draws_mean_and_band_against_iterations():
    choices = choose_cells(made_up_runs(), "logreg")
    figure = draw_choices("logreg", choices)
    [ax] = figure.axes
    lines = {line.get_gid(): line for line in ax.get_lines()}
    adam = lines["adam_lr=0.001_b2=0.999_bc=off"]
    # MNIST: 50,000 training examples, batch 128: ceil(50000 / 128) = 391 updates per epoch.
    assert list(adam.get_xdata()) == [391, 782, 1173]
    # Training losses of the two runs: [1, .5, .25] and [.75, .25, .125].
    assert list(adam.get_ydata()) == [0.875, 0.375, 0.1875]
    assert adam.get_color() == "#1f4fb4"  # Adam blue
    amsgrad = lines["amsgrad_lr=0.001_b2=0.99_bc=off"]
    assert amsgrad.get_color() == "#c0221d"  # AMSGrad red
    assert list(amsgrad.get_ydata()) == [2.0, 1.0, 0.75]  # 2 x the val losses, averaged
    [band] = [c for c in ax.collections if c.get_gid() == "band adam_lr=0.001_b2=0.999_bc=off"]
    vertices = band.get_paths()[0].vertices
    assert {(x, y) for x, y in vertices} >= {(391, 0.75), (391, 1.0), (1173, 0.125),
                                             (1173, 0.25)}
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["Adam: β2=0.999, lr=0.001, mean of 2 runs",
                      "AMSGrad: β2=0.99, lr=0.001, mean of 2 runs"]
    assert ax.get_xlabel() == "iterations (updates of 128 examples)"


def test_draw_mcgill_writes_png_and_pdf_per_setup_with_mcgill_runs(tmp_path):
    runs = made_up_runs() + [run([1, 0.5, 0.25], setup="cifarnet", batch_size=100),
                             run([1, 0.5, 0.25], setup="ffnn", protocol="blog")]
    paths, choices = draw_mcgill(runs, str(tmp_path))
    assert paths == [str(tmp_path / name) for name in (
        "cifarnet_mcgill.png", "cifarnet_mcgill.pdf", "logreg_mcgill.png", "logreg_mcgill.pdf")]
    for path in paths:
        assert os.path.getsize(path) > 1000
    with open(paths[0], "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    assert {setup: {optimizer: (choice["lr"], choice["beta2"])
                    for optimizer, choice in chosen.items()}
            for setup, chosen in choices.items()} == {
        "cifarnet": {"adam": (0.001, 0.99)},
        "logreg": {"adam": (0.001, 0.999), "amsgrad": (0.001, 0.99)}}
    assert draw_mcgill(runs[-1:], str(tmp_path / "none")) == ([], {})
    assert not (tmp_path / "none").exists()


def test_cifar10_counts_its_own_updates_per_epoch():
    # CIFAR-10: 50,000 training images, batch 100: 500 updates per epoch.
    figure = draw_choices("cifarnet", choose_cells(
        [run([1, 0.5, 0.25], setup="cifarnet", batch_size=100)], "cifarnet"))
    [line] = figure.axes[0].get_lines()
    assert list(line.get_xdata()) == [500, 1000, 1500]


def test_training_examples_agree_with_the_data_split():
    from data.datasets import MNIST_VALIDATION_SIZE, OFFICIAL_SIZES
    assert setups.TRAIN_EXAMPLES == {
        "mnist": OFFICIAL_SIZES["mnist"][0] - MNIST_VALIDATION_SIZE,
        "fashion_mnist": OFFICIAL_SIZES["fashion_mnist"][0] - MNIST_VALIDATION_SIZE,
        "cifar10": OFFICIAL_SIZES["cifar10"][0]}


def write_run_dirs(results, made_runs):
    """The runs as run directories (config.json, history.json) under ``results``.

    A diverged run's history is what training writes: its finished epochs, then
    ``status: diverged`` and the epoch whose loss was not finite.
    """
    for made in made_runs:
        config = made.config
        run_dir = config.run_dir(str(results))
        os.makedirs(run_dir)
        with open(os.path.join(run_dir, "config.json"), "w") as handle:
            json.dump(config.to_dict(), handle)
        epochs = made.epochs_done
        history = {name: made.curves[name].tolist() for name in ("loss", "acc", "val_loss",
                                                                 "val_acc")}
        with open(os.path.join(run_dir, "history.json"), "w") as handle:
            json.dump(dict(history, lr=[config.lr] * epochs, epoch_time=[1.0] * epochs,
                           status=made.status, diverged_epoch=epochs + 1
                           if made.status == "diverged" else None), handle)


def test_make_figures_draws_the_mcgill_figure_and_links_it(tmp_path, capsys):
    results = tmp_path / "R"
    write_run_dirs(results, made_up_runs())
    out = tmp_path / "figures"
    assert run_cli(make_figures.main, ["--results-dir", str(results), "--out", str(out)],
                   prog="make_figures.py") == 0
    assert (out / "logreg_mcgill.png").is_file() and (out / "logreg_mcgill.pdf").is_file()
    assert "logreg_mcgill: adam beta2=0.999 lr=0.001; amsgrad beta2=0.99 lr=0.001" \
        in capsys.readouterr().out
    assert "[logreg_mcgill](logreg_mcgill.png)" in (out / "REPORT.md").read_text()


def test_a_setup_with_only_running_mcgill_runs_gets_no_figure(tmp_path):
    assert draw_mcgill([run([1, 0.5], status="running")], str(tmp_path)) == ([], {})


def diverged_grid():
    """Every mcgill cell of logreg diverged in epoch 3, after two finished epochs."""
    return [run([1, 0.5], optimizer, lr=lr, beta2=beta2, run_index=index, status="diverged")
            for optimizer in ("adam", "amsgrad") for lr in (0.01, 0.001)
            for beta2 in (0.99, 0.999) for index in (0, 1)]


def test_all_diverged_gives_no_figure_and_says_so(tmp_path, capsys):
    results, out = tmp_path / "R", tmp_path / "figures"
    write_run_dirs(results, diverged_grid())
    assert run_cli(make_figures.main, ["--results-dir", str(results), "--out", str(out)],
                   prog="make_figures.py") == 0
    assert not list(out.glob("*mcgill*"))
    assert "logreg_mcgill: no figure: adam: every cell has a diverged run; amsgrad: every " \
        "cell has a diverged run" in capsys.readouterr().out
    assert "logreg_mcgill" not in (out / "REPORT.md").read_text()


def test_an_optimizer_whose_cells_all_diverged_is_named_not_drawn(tmp_path):
    # Adam: every cell diverged; AMSGrad: one cell of two complete runs beside diverged ones.
    made = [r for r in diverged_grid() if r.config.optimizer == "adam"
            or r.config.lr == 0.01] + [
        run([1, 0.5, 0.25], "amsgrad", lr=0.001, beta2=0.999, run_index=0),
        run([1, 0.5, 0.5], "amsgrad", lr=0.001, beta2=0.999, run_index=1)]
    write_run_dirs(tmp_path / "R", made)
    runs, problems = find_runs(str(tmp_path / "R"))
    assert len(runs) == len(made) and not problems
    choices = choose_cells(runs, "logreg")
    assert choices["adam"] is None
    assert choices["amsgrad"].summary()["mean_final_val_loss"] == 0.375  # (0.25 + 0.5) / 2
    [ax] = draw_choices("logreg", choices).axes
    assert [line.get_gid() for line in ax.get_lines() if line.get_gid()] == [
        "amsgrad_lr=0.001_b2=0.999_bc=off"]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == [
        "Adam: every cell has a diverged run", "AMSGrad: β2=0.999, lr=0.001, mean of 2 runs"]
    paths, chosen = draw_mcgill(runs, str(tmp_path / "figures"))
    assert [os.path.basename(path) for path in paths] == ["logreg_mcgill.png",
                                                          "logreg_mcgill.pdf"]
    assert chosen["logreg"]["adam"] is None and chosen["logreg"]["amsgrad"]["beta2"] == 0.999
