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
from plots.verdict import claims
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
    text = claims.evaluate(claim(claims.amsgrad_lower_validation_loss_unless_lr_low), cells)
    assert text.startswith("holds: ") and "8 of 8 pairs with lr >= 0.001" in text


def test_the_studys_claim_does_not_hold_where_adam_is_lower_everywhere():
    """Six pairs in which AMSGrad ends 0.01 above Adam: the claim does not hold, plainly."""
    cells = {}
    for lr in (0.01, 0.001, 0.0001):
        for beta2 in (0.99, 0.999):
            for optimizer, offset in (("adam", 0.0), ("amsgrad", 0.01)):
                curve = np.array([1.0, 0.5]) + offset
                cells[Cell(optimizer, lr, beta2, False)] = fake_cell([dict(
                    loss=curve, val_loss=curve, acc=1 - curve, val_acc=1 - curve)])
    text = claims.evaluate(claim(claims.amsgrad_slightly_lower_loss), cells)
    assert text == ("does not hold: AMSGrad lower final validation loss in 0 of 6 pairs, "
                    "lower final training loss in 0 of 6")


def test_cannot_tell_without_runs_or_before_the_end():
    record = claim(claims.training_loss_near_zero)
    assert claims.evaluate(record, {}) == "cannot tell: not run"
    assert claims.evaluate(record, cells_of("vgg"), "after epoch 2 of 150") == \
        "cannot tell: runs stopped after epoch 2 of 150"
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
    record = claim(claims.amsgrad_slightly_lower_loss)
    for seeding, expected in (("common", "holds"), (None, "holds"),
                              ("independent", "does not hold")):
        cells = {Cell("amsgrad", 0.01, 0.99, False): seeded_cell(amsgrad, seeding),
                 Cell("adam", 0.01, 0.99, False): seeded_cell(adam, seeding, runs=[1, 2, 3, 4])}
        wins = 1 if expected == "holds" else 0
        assert claims.evaluate(record, cells) == (
            "%s: AMSGrad lower final validation loss in %d of 1 pairs, lower final training "
            "loss in %d of 1" % (expected, wins, wins)), seeding
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
