"""The claims table (plots/verdict/claims.py), on the original runs and on small made-up cells.

Expected outcomes are read off reference/original_runs.json independently (numpy on the
file) or set up by hand, never taken from the code under test.
"""
import collections
import json
import math
import types

import numpy as np
import pytest

from plots.verdict import cells as cell_records
from plots.verdict import claims, readings
from plots.verdict.cells import Cell
from plots.verdict.results import DEFAULT_REFERENCE


def cells_of(setup):
    """The original cells of a setup, as the claims read them (values, finished_runs)."""
    with open(DEFAULT_REFERENCE) as stream:
        runs = json.load(stream)[setup]
    by_cell = collections.defaultdict(list)
    for run in runs:
        by_cell[Cell(run["optimizer"], run["lr"], run["beta2"], run["bias_correction"])].append(
            {name: np.array(values) for name, values in run["curves"].items()})
    return {cell: fake_cell(curves) for cell, curves in by_cell.items()}


def fake_cell(curves):
    """A Group-like cell of runs given by their curves."""
    def values(measure):
        curve = {"final_val_loss": "val_loss", "best_val_loss": "val_loss",
                 "final_val_acc": "val_acc", "best_val_acc": "val_acc",
                 "final_train_loss": "loss"}[measure]
        pick = {"final": lambda v: v[-1], "best": np.min if "loss" in measure else np.max}[
            measure.split("_")[0]]
        return np.array([pick(run[curve]) for run in curves])
    return types.SimpleNamespace(values=values, finished_runs=[
        types.SimpleNamespace(curves=run) for run in curves])


def claim(function):
    return next(record for record in claims.CLAIMS if record.test is function)


def test_logreg_amsgrad_lower_validation_loss_in_all_pairs_with_lr_at_least_1e3():
    cells = cells_of("logreg")
    # by hand: the 8 pairs with lr >= 0.001 where AMSGrad's mean final validation loss is lower
    wins = sum(np.mean(cells[Cell("amsgrad", *key)].values("final_val_loss"))
               < np.mean(cells[Cell("adam", *key)].values("final_val_loss"))
               for key in [(lr, b2, bc) for lr in (0.01, 0.001) for b2 in (0.99, 0.999)
                           for bc in (True, False)])
    assert wins == 8
    text = claims.evaluate(claim(readings.amsgrad_lower_validation_loss_unless_lr_low), cells)
    assert text.startswith("holds: ") and "8 of 8 pairs with lr >= 0.001" in text


def test_the_studys_claim_does_not_hold_where_adam_is_lower_everywhere():
    """Six pairs in which AMSGrad ends 0.01 above Adam: the claim does not hold, plainly."""
    cells = {}
    for lr in (0.01, 0.001, 0.0001):
        for beta2 in (0.99, 0.999):
            for optimizer, offset in (("adam", 0.0), ("amsgrad", 0.01)):
                curve = np.array([1.0, 0.5 + lr]) + offset
                cells[Cell(optimizer, lr, beta2, False)] = fake_cell([dict(
                    loss=curve, val_loss=curve, acc=1 - curve, val_acc=1 - curve)])
    text = claims.evaluate(claim(readings.amsgrad_slightly_lower_loss), cells)
    # tuned: the lowest final validation loss, lr 0.0001 (ties in beta2 to the larger)
    assert text == ("does not hold: tuned by the lowest mean final validation loss: AMSGrad "
                    "amsgrad lr=0.0001 b2=0.999 bc=off, Adam adam lr=0.0001 b2=0.999 bc=off; "
                    "AMSGrad - Adam mean final validation loss +0.0100, training loss +0.0100 "
                    "(1 and 1 runs)")


def test_the_studys_claim_compares_each_optimizer_at_its_tuned_setting():
    """Adam lower than AMSGrad in 5 of 6 pairs, but AMSGrad's best cell (0.40) below Adam's best
    (0.45): the study compares tuned runs, so the claim holds (a majority over all pairs of
    cells, the old reading, says it does not)."""
    cells = {}
    for lr in (0.01, 0.001, 0.0001):
        for beta2 in (0.99, 0.999):
            adam, amsgrad = 0.5, 0.55
            if (lr, beta2) == (0.001, 0.99):
                adam, amsgrad = 0.45, 0.40
            for optimizer, final in (("adam", adam), ("amsgrad", amsgrad)):
                runs = [final - 0.01, final, final + 0.01]
                cells[Cell(optimizer, lr, beta2, False)] = fake_cell([dict(
                    loss=np.array([1.0, value]), val_loss=np.array([1.0, value]),
                    acc=np.array([0.0, 1 - value]), val_acc=np.array([0.0, 1 - value]))
                    for value in runs])
    text = claims.evaluate(claim(readings.amsgrad_slightly_lower_loss), cells)
    assert text.startswith("holds: tuned by the lowest mean final validation loss: AMSGrad "
                           "amsgrad lr=0.001 b2=0.99 bc=off, Adam adam lr=0.001 b2=0.99 bc=off; "
                           "AMSGrad - Adam mean final validation loss -0.0500")


def test_cannot_tell_without_runs_or_before_the_end():
    record = claim(readings.training_loss_near_zero)
    assert claims.evaluate(record, {}) == "cannot tell: not run"
    assert claims.evaluate(record, cells_of("vgg"), "after epoch 2 of 150") == (
        "cannot tell: runs stopped after epoch 2 of 150 (the claims are about the end of "
        "training)")
    # Vgg's original runs: the lowest mean final training loss, by hand
    lowest = min(np.mean(cell.values("final_train_loss")) for cell in cells_of("vgg").values())
    assert claims.evaluate(record, cells_of("vgg")) == (
        "holds: lowest mean final training loss %.4f" % lowest) and lowest < 0.01


def seeded_cell(finals, seeding, runs=None):
    """A cell whose runs (indices ``runs``, default 0, 1, ...) end at ``finals`` (validation
    and training loss alike), drawn with ``seeding`` (None: a config from before the field)."""
    cell = fake_cell([dict(loss=np.array([1.0, final]), val_loss=np.array([1.0, final]),
                           acc=np.array([0.0, 1 - final]), val_acc=np.array([0.0, 1 - final]))
                      for final in finals])
    for run, index in zip(cell.finished_runs, runs or range(len(finals))):
        run.config = types.SimpleNamespace(seed=0, run=index)
        if seeding is not None:
            run.config.seeding = seeding
    return cell


def test_cells_sharing_their_draws_are_compared_run_by_run():
    """Run 0 is an unlucky draw (final loss 0.5; runs 1-4: 0.3); AMSGrad ends 0.01 below Adam
    on every draw, but Adam's run 0 is missing (diverged).  Unpaired, AMSGrad's mean (0.49 +
    4 x 0.29) / 5 = 0.33 is above Adam's 0.30: the study's claim does not hold.  Where the
    cells share their draws (common seeding, or configs from before the field), the paired
    differences over runs 1-4 are all -0.01: it holds."""
    amsgrad = [0.49, 0.29, 0.29, 0.29, 0.29]
    adam = [0.3, 0.3, 0.3, 0.3]
    record = claim(readings.amsgrad_slightly_lower_loss)
    for seeding, expected, difference, runs in (
            ("common", "holds", -0.01, (4, 4)), (None, "holds", -0.01, (4, 4)),
            ("independent", "does not hold", 0.03, (5, 4))):
        cells = {Cell("amsgrad", 0.01, 0.99, False): seeded_cell(amsgrad, seeding),
                 Cell("adam", 0.01, 0.99, False): seeded_cell(adam, seeding, runs=[1, 2, 3, 4])}
        assert claims.evaluate(record, cells) == (
            "%s: tuned by the lowest mean final validation loss: AMSGrad amsgrad lr=0.01 "
            "b2=0.99 bc=off, Adam adam lr=0.01 b2=0.99 bc=off; AMSGrad - Adam mean final "
            "validation loss %+.4f, training loss %+.4f (%d and %d runs)" % (
                (expected, difference, difference) + runs)), seeding
        difference, d, is_paired = cell_records.pair_difference(*cells.values(),
                                                                "final_val_loss")
        if seeding == "independent":
            # 0.33 - 0.30; pooled std: squares 0.16^2 + 4 x 0.04^2 = 0.032 and 0, 7 dof
            assert not is_paired and difference == pytest.approx(0.03)
            assert d == pytest.approx(0.03 / math.sqrt(0.032 / 7))
        else:
            assert is_paired and difference == pytest.approx(-0.01)
            # differences all equal: std 0
            assert d == pytest.approx(-0.01 / cell_records.MIN_STD)
        # The original's runs are independent draws whatever their configs say.
        assert claims.evaluate(record, cell_records.independent(cells)).startswith(
            "does not hold")


# -- the claims read as written, on the original runs ----------------------------------------
# Each expected number is computed here with numpy on reference/original_runs.json.

def finals(cell, curve="loss"):
    return np.array([run.curves[curve][-1] for run in cell.finished_runs])


def test_cifarnet_high_lr_fails_on_the_training_loss_with_one_escaped_run():
    """The training-loss paragraph: 39 of the 40 lr 0.01 runs end at chance (2.3026 or 14.5);
    one AMSGrad run escaped.  The old reading (mean final validation accuracy of every lr 0.01
    cell below 0.2) said "does not hold": the escaped run lifts its cell to 0.223."""
    cells = cells_of("cifarnet")
    stuck = {optimizer: [int(np.sum(finals(cell) >= math.log(10) - 1e-3)) for key, cell in
                         cells.items() if key.lr == 0.01 and key.optimizer == optimizer]
             for optimizer in ("adam", "amsgrad")}
    assert sum(stuck["adam"]) == 20 and sum(stuck["amsgrad"]) == 19
    text = claims.evaluate(claim(readings.lr_001_fails), cells)
    assert text == ("holds: lr 0.01 runs whose final training loss is at or above chance "
                    "(ln 10): Adam 20 of 20, AMSGrad 19 of 20; escaped: amsgrad lr=0.01 b2=0.99 "
                    "bc=on (0.3251)")


def test_cifarnet_lowest_training_loss_is_adams_and_amsgrad_spreads_less():
    cells = cells_of("cifarnet")
    lowest = min((value, key) for key, cell in cells.items() for value in finals(cell))
    assert lowest[1].optimizer == "adam"
    spread = {key: np.std(finals(cell), ddof=1) / np.mean(finals(cell))
              for key, cell in cells.items() if key.lr == 0.001}
    lower = sum(spread[key] < spread[Cell("adam", key.lr, key.beta2, key.bias_correction)]
                for key in spread if key.optimizer == "amsgrad")
    assert lower == 3
    text = claims.evaluate(claim(readings.lowest_training_loss_adam_amsgrad_less_variance),
                           cells)
    assert text.startswith("holds: lowest final training loss of a single run: %.4f, adam "
                           % lowest[0]) and "lower in 3 of 4 lr 0.001 pairs (40 runs" in text


def test_cifarnet_validation_loss_diverges_in_the_cells_of_the_best_training_loss():
    """The old reading took every lr 0.001 cell, two of which (b2 0.999, bc off) end at a
    training loss near 0.45, not among the best, and said "does not hold"."""
    cells = cells_of("cifarnet")
    means = {key: np.mean(finals(cell)) for key, cell in cells.items()}
    best = [key for key, mean in means.items() if mean <= 3 * min(means.values())]
    assert len(best) == 6 and all(key.lr == 0.001 for key in best)
    ratios = [np.mean(finals(cells[key], "val_loss"))
              / np.mean([run.curves["val_loss"].min() for run in cells[key].finished_runs])
              for key in best]
    assert min(ratios) > 1.5
    text = claims.evaluate(claim(readings.validation_loss_diverges_where_training_loss_best),
                           cells)
    assert text.startswith("holds: 6 cells") and "over 1.5 in 6 of 6" in text


def test_vgg_bias_correction_is_read_on_the_training_loss():
    """The sentence stands in the training-loss paragraph: bias correction lowers the mean
    training loss over the epochs in 8 of 12 pairs (the old reading, the final validation
    loss, gave 11 of 12)."""
    cells = cells_of("vgg")
    area = {key: np.mean([run.curves["loss"].mean() for run in cell.finished_runs])
            for key, cell in cells.items()}
    helps = sum(area[key] < area[Cell(key.optimizer, key.lr, key.beta2, False)]
                for key in area if key.bias_correction)
    assert helps == 8
    text = claims.evaluate(claim(readings.bias_correction_mostly_helps), cells)
    assert text.startswith("holds: bias correction lower mean training loss over the epochs "
                           "in 8 of 12 pairs")


def test_vgg_similar_final_loss_leaves_out_the_too_low_lr():
    """lr 0.01 and 0.001 (the old reading took lr <= 0.001: the too-low 0.0001 in, 0.01 out)."""
    cells = cells_of("vgg")
    means = [np.mean(finals(cell)) for key, cell in cells.items() if key.lr >= 0.001]
    text = claims.evaluate(claim(readings.similar_final_loss_unless_lr_low), cells)
    assert text.startswith("holds: mean final training loss of the cells with lr > 0.0001: "
                           "%.4f-%.4f" % (min(means), max(means)))


def test_vgg_minimum_validation_loss_around_epochs_20_25():
    cells = cells_of("vgg")
    epochs = []
    for optimizer in ("adam", "amsgrad"):
        key = min((key for key in cells if key.optimizer == optimizer),
                  key=lambda key: np.mean([r.curves["val_loss"].min()
                                           for r in cells[key].finished_runs]))
        curve = np.mean([run.curves["val_loss"] for run in cells[key].finished_runs], axis=0)
        epochs.append(int(np.argmin(curve)) + 1)
    assert all(15 <= epoch <= 30 for epoch in epochs)
    text = claims.evaluate(claim(readings.similar_minimum_validation_loss_epochs_20_25), cells)
    assert text.startswith("holds") and "epoch %d)" % epochs[0] in text


def test_small_vgg_has_no_claims():
    """The post: "I won't interpret the results for these experiments"."""
    assert not [record for record in claims.CLAIMS if "small_vgg" in record.setups]


def test_every_claim_carries_its_sentence_and_reading():
    for record in claims.CLAIMS:
        assert record.quote and record.measure and record.cells and record.rule
        assert record.reading().count(";") >= 2


def _with_curves(cells, change):
    return {key: fake_cell([change({name: values for name, values in run.curves.items()})
                            for run in cell.finished_runs]) for key, cell in cells.items()}


def training_for_validation(cells):
    """Another measure: the training curves read as the validation curves, and back."""
    swap = {"loss": "val_loss", "val_loss": "loss", "acc": "val_acc", "val_acc": "acc"}
    return _with_curves(cells, lambda curves: {swap[name]: curves[name] for name in swap})


def training_accuracy_for_validation(cells):
    """Another measure: the training accuracy read as the validation accuracy."""
    return _with_curves(cells, lambda curves: dict(curves, val_acc=curves["acc"]))


def last_epoch_only(cells):
    """Another measure: the curves cut to their last epoch (final values, not the course)."""
    return _with_curves(cells, lambda curves: {name: values[-1:]
                                               for name, values in curves.items()})


def lr_001_for_00001(cells):
    """Other cells: lr 0.01 and 0.0001 swapped."""
    swap = {0.01: 0.0001, 0.0001: 0.01, 0.001: 0.001}
    return {Cell(key.optimizer, swap[key.lr], key.beta2, key.bias_correction): cell
            for key, cell in cells.items()}


def one_amsgrad_cell(cells):
    """Other cells: every AMSGrad cell replaced by the first one."""
    first = next(cell for key, cell in cells.items() if key.optimizer == "amsgrad")
    return {key: first if key.optimizer == "amsgrad" else cell for key, cell in cells.items()}


WRONG_READINGS = {
    readings.adam_lowest_training_loss: training_for_validation,
    readings.training_loss_reaches_02: training_for_validation,
    readings.amsgrad_lower_validation_loss_unless_lr_low: training_for_validation,
    readings.adam_single_lowest_validation_loss: training_for_validation,
    readings.accuracy_follows_losses: training_accuracy_for_validation,
    readings.amsgrad_not_more_robust: one_amsgrad_cell,
    readings.lr_001_fails: lr_001_for_00001,
    readings.lowest_training_loss_adam_amsgrad_less_variance: training_for_validation,
    readings.validation_loss_diverges_where_training_loss_best: training_for_validation,
    readings.lower_lr_generalises_better: training_for_validation,
    readings.tiny_margin_in_accuracy: training_for_validation,
    readings.best_accuracy_about_78: training_for_validation,
    readings.training_loss_near_zero: training_for_validation,
    readings.amsgrad_faster_late_unless_lr_low: lr_001_for_00001,
    readings.adam_overtakes_at_the_end: training_for_validation,
    readings.bias_correction_mostly_helps: last_epoch_only,
    readings.similar_final_loss_unless_lr_low: lr_001_for_00001,
    readings.amsgrad_lower_validation_loss_everywhere: training_for_validation,
    readings.similar_minimum_validation_loss_epochs_20_25: training_for_validation,
    readings.accuracy_inconclusive_best_adam_0001_099: training_for_validation,
    readings.lower_loss_not_better_accuracy: training_for_validation,
}


@pytest.mark.parametrize("record", [record for record in claims.CLAIMS
                                    if record.protocol == "blog"],
                         ids=lambda record: record.test.__name__)
def test_each_blog_claim_holds_as_read_and_not_on_a_wrong_reading(record):
    cells = cells_of(record.setups[0])
    assert claims.evaluate(record, cells).startswith("holds: ")
    wrong = WRONG_READINGS[record.test](cells)
    assert not claims.evaluate(record, wrong).startswith("holds"), WRONG_READINGS[record.test]
