"""
The tests that decide the claims of :mod:`plots.verdict.claims`, one function per claim.

Each takes the cells of one side (:class:`plots.verdict.cells.Cell` -> its
runs, read as :mod:`plots.verdict.claims` describes) and returns ``(holds,
detail)``: whether the claim holds as its record's reading says, and the
numbers it looked at; it raises :class:`CannotTell` when the cells cannot
decide it.  Means are over runs.
"""
import dataclasses
import math

import numpy as np

from plots.verdict.cells import AGREE_WITHIN, effect_size, paired, pairs

__all__ = ["CannotTell", "CHANCE_LOSS"]

#: The cross-entropy of a uniform guess over 10 classes: a run ending at or above it has not
#: learnt (CifarNet's runs stuck at lr 0.01 end at 2.3026 or at 14.5, the clipped loss).
CHANCE_LOSS = math.log(10) - 1e-3


class CannotTell(Exception):
    """Raised by a claim's test when the cells given cannot decide it (the message: why)."""


def _mean(cell, measure):
    return float(np.mean(cell.values(measure)))


def _pairs(cells, lrs=None):
    """(amsgrad cell, adam cell) for every configuration both optimizers have (with an lr of
    ``lrs``, if given), each pair as :func:`plots.verdict.cells.paired` compares it."""
    found = [paired(amsgrad, adam)[:2] for cell, amsgrad, adam in pairs(cells)
             if lrs is None or cell.lr in lrs]
    if not found:
        raise CannotTell("no configuration run with both optimizers")
    return found


def _keyed_pairs(cells, lrs=None):
    """Like :func:`_pairs`, with the AMSGrad cell's key first."""
    found = [(cell,) + paired(amsgrad, adam)[:2] for cell, amsgrad, adam in pairs(cells)
             if lrs is None or cell.lr in lrs]
    if not found:
        raise CannotTell("no configuration run with both optimizers")
    return found


def _count(found, better):
    wins = sum(bool(better(amsgrad, adam)) for amsgrad, adam in found)
    return wins, len(found)


def _lower(measure):
    return lambda first, second: _mean(first, measure) < _mean(second, measure)


def _mean_curve(cell, curve):
    return np.mean([run.curves[curve] for run in cell.finished_runs], axis=0)


def _cell_name(key):
    return "%s lr=%g b2=%g bc=%s" % (key.optimizer, key.lr, key.beta2,
                                     "on" if key.bias_correction else "off")


def _at_lr(cells, lrs):
    chosen = {key: cell for key, cell in cells.items() if key.lr in lrs}
    if not chosen:
        raise CannotTell("lr %s not run" % " or ".join("%g" % lr for lr in lrs))
    return chosen


def _runs(cells):
    return sum(len(cell.finished_runs) for cell in cells.values())


# -- logreg ---------------------------------------------------------------------------------

def adam_lowest_training_loss(cells):
    wins, total = _count(_pairs(cells), _lower("final_train_loss"))
    return wins == 0, "AMSGrad lower final training loss in %d of %d configurations" % (
        wins, total)


def amsgrad_lower_validation_loss_unless_lr_low(cells):
    lrs = sorted({key.lr for key in cells})
    high = _pairs(cells, [lr for lr in lrs if lr >= 1e-3])
    wins, total = _count(high, _lower("final_val_loss"))
    low_wins, low_total = _count(_pairs(cells, [lr for lr in lrs if lr < 1e-3]),
                                 _lower("final_val_loss")) if min(lrs) < 1e-3 else (0, 0)
    return wins > total / 2, ("AMSGrad lower final validation loss in %d of %d pairs with "
                              "lr >= 0.001, %d of %d with lr 0.0001" % (
                                  wins, total, low_wins, low_total))


def adam_single_lowest_validation_loss(cells):
    best = min(cells, key=lambda key: _mean(cells[key], "best_val_loss"))
    curve = _mean_curve(cells[best], "val_loss")
    rival = min((key for key in cells if key.optimizer != best.optimizer),
                key=lambda key: _mean(cells[key], "best_val_loss"), default=None)
    if rival is None:
        raise CannotTell("one optimizer only")
    margin = _mean(cells[rival], "best_val_loss") - _mean(cells[best], "best_val_loss")
    rises = curve[-1] > curve.min()
    return best.optimizer == "adam" and rises, (
        "lowest best validation loss: %s, %.4f (by %.4f over %s), at epoch %d, final %.4f"
        % (_cell_name(best), _mean(cells[best], "best_val_loss"), margin, rival.optimizer,
           int(np.argmin(curve)) + 1, curve[-1]))


def accuracy_follows_losses(cells):
    found = _pairs(cells)
    same = sum((_mean(a, "final_val_loss") < _mean(b, "final_val_loss"))
               == (_mean(a, "final_val_acc") > _mean(b, "final_val_acc")) for a, b in found)
    return same >= 0.75 * len(found), (
        "the optimizer with the lower final validation loss has the higher final validation "
        "accuracy in %d of %d pairs" % (same, len(found)))


def amsgrad_not_more_robust(cells):
    spread = {}
    for optimizer in ("adam", "amsgrad"):
        means = [_mean(cell, "final_val_loss") for key, cell in cells.items()
                 if key.optimizer == optimizer]
        if len(means) < 2:
            raise CannotTell("fewer than 2 cells of %s" % optimizer)
        spread[optimizer] = max(means) - min(means)
    ratio = spread["amsgrad"] / spread["adam"] if spread["adam"] else np.inf
    return ratio >= 0.5, ("range of the cells' mean final validation loss: AMSGrad %.4f, "
                          "Adam %.4f" % (spread["amsgrad"], spread["adam"]))


def training_loss_reaches_02(cells):
    means = {key: _mean(cell, "final_train_loss") for key, cell in cells.items()}
    best, worst = min(means, key=means.get), max(means, key=means.get)
    return 0.19 <= means[best] <= 0.21 and means[worst] - means[best] > 0.05, (
        "mean final training loss %.4f (%s) to %.4f (%s)" % (
            means[best], _cell_name(best), means[worst], _cell_name(worst)))


# -- CifarNet -------------------------------------------------------------------------------

def lr_001_fails(cells):
    at = _at_lr(cells, [0.01])
    stuck, escaped = {}, []
    for key, cell in at.items():
        finals = cell.values("final_train_loss")
        stuck.setdefault(key.optimizer, [0, 0])
        stuck[key.optimizer][0] += int(np.sum(finals >= CHANCE_LOSS))
        stuck[key.optimizer][1] += finals.size
        escaped += ["%s (%.4f)" % (_cell_name(key), value) for value in finals
                    if value < CHANCE_LOSS]
    if set(stuck) != {"adam", "amsgrad"}:
        raise CannotTell("lr 0.01 not run with both optimizers")
    holds = all(count > total / 2 for count, total in stuck.values())
    return holds, ("lr 0.01 runs whose final training loss is at or above chance (ln 10): "
                   "Adam %d of %d, AMSGrad %d of %d; escaped: %s" % (
                       *stuck["adam"], *stuck["amsgrad"], ", ".join(escaped) or "none"))


def _relative_spread(cell):
    values = cell.values("final_train_loss")
    if values.size < 2:
        raise CannotTell("fewer than 2 runs in a cell: no spread")
    return float(np.std(values, ddof=1) / np.mean(values)), float(np.std(values, ddof=1))


def lowest_training_loss_adam_amsgrad_less_variance(cells):
    runs = [(value, key) for key, cell in cells.items()
            for value in cell.values("final_train_loss")]
    lowest, owner = min(runs, key=lambda item: item[0])
    found = _keyed_pairs(_at_lr(cells, [0.001]))
    relative = sum(_relative_spread(a)[0] < _relative_spread(b)[0] for _, a, b in found)
    absolute = sum(_relative_spread(a)[1] < _relative_spread(b)[1] for _, a, b in found)
    runs_used = sum(len(a.finished_runs) + len(b.finished_runs) for _, a, b in found)
    holds = owner.optimizer == "adam" and relative > len(found) / 2
    return holds, ("lowest final training loss of a single run: %.4f, %s (of %d runs); "
                   "AMSGrad's relative spread (std / mean) of the final training loss lower in "
                   "%d of %d lr 0.001 pairs (%d runs; by the std alone: %d of %d)" % (
                       lowest, _cell_name(owner), len(runs), relative, len(found), runs_used,
                       absolute, len(found)))


def _best_training_cells(cells):
    """The cells whose mean final training loss is within 3 x the lowest cell's."""
    means = {key: _mean(cell, "final_train_loss") for key, cell in cells.items()}
    lowest = min(means.values())
    return {key: cells[key] for key, mean in means.items() if mean <= 3 * lowest}, lowest


def validation_loss_diverges_where_training_loss_best(cells):
    best, lowest = _best_training_cells(cells)
    ratios = {key: _mean(cell, "final_val_loss") / _mean(cell, "best_val_loss")
              for key, cell in best.items()}
    rising = sum(ratio > 1.5 for ratio in ratios.values())
    return rising == len(ratios), (
        "%d cells with a mean final training loss within 3 x the lowest (%.4f); final over "
        "best validation loss %.2f-%.2f, over 1.5 in %d of %d" % (
            len(best), lowest, min(ratios.values()), max(ratios.values()), rising,
            len(ratios)))


def lower_lr_generalises_better(cells):
    lows = {key: cell for key, cell in cells.items() if key.lr == 0.0001}
    found = [(key, low, cells[dataclasses.replace(key, lr=0.001)]) for key, low in lows.items()
             if dataclasses.replace(key, lr=0.001) in cells]
    if not found:
        raise CannotTell("no cell run at both lr 0.0001 and lr 0.001")
    better = sum(_mean(low, "final_val_loss") < _mean(high, "final_val_loss")
                 for _, low, high in found)
    return better == len(found), (
        "lr 0.0001 lower mean final validation loss than lr 0.001 in %d of %d pairs (%.3f-%.3f "
        "against %.3f-%.3f)" % (better, len(found),
                                min(_mean(low, "final_val_loss") for _, low, _ in found),
                                max(_mean(low, "final_val_loss") for _, low, _ in found),
                                min(_mean(high, "final_val_loss") for _, _, high in found),
                                max(_mean(high, "final_val_loss") for _, _, high in found)))


def tiny_margin_in_accuracy(cells):
    found = _pairs(_at_lr(cells, [0.001, 0.0001]))
    differences = [_mean(a, "final_val_acc") - _mean(b, "final_val_acc") for a, b in found]
    wins = sum(difference > 0 for difference in differences)
    largest = max(map(abs, differences))
    return largest < 0.01 and 0 < wins < len(found), (
        "AMSGrad higher mean final validation accuracy in %d of %d pairs with lr 0.001 or "
        "0.0001, largest |difference| %.4f" % (wins, len(found), largest))


def best_accuracy_about_78(cells):
    best = {optimizer: max(_mean(cell, "best_val_acc") for key, cell in cells.items()
                           if key.optimizer == optimizer) for optimizer in ("adam", "amsgrad")}
    return all(0.76 <= value <= 0.80 for value in best.values()), (
        "best mean best validation accuracy: Adam %.3f, AMSGrad %.3f" % (
            best["adam"], best["amsgrad"]))


# -- Vgg ------------------------------------------------------------------------------------

def training_loss_near_zero(cells):
    lowest = min(_mean(cell, "final_train_loss") for cell in cells.values())
    return lowest < 0.01, "lowest mean final training loss %.4f" % lowest


def amsgrad_faster_late_unless_lr_low(cells):
    found = _pairs(cells, [lr for lr in {key.lr for key in cells} if lr >= 1e-3])
    late = sum(_mean_curve(a, "loss")[-50:].mean() < _mean_curve(b, "loss")[-50:].mean()
               for a, b in found)
    return late > len(found) / 2, ("AMSGrad lower mean training loss over the last 50 "
                                   "epochs in %d of %d pairs with lr >= 0.001" % (
                                       late, len(found)))


def adam_overtakes_at_the_end(cells):
    found = _pairs(cells)
    overtakes = 0
    for amsgrad, adam in found:
        gap = _mean_curve(adam, "loss") - _mean_curve(amsgrad, "loss")
        # Behind (higher) 10 epochs before the end, ahead (lower) at the end.
        overtakes += bool(gap[-11] > 0 > gap[-1])
    return overtakes >= len(found) / 3, (
        "Adam's mean training loss above AMSGrad's 10 epochs before the end and below it at "
        "the end in %d of %d pairs" % (overtakes, len(found)))


def bias_correction_mostly_helps(cells):
    found = [paired(on, off)[:2] for _, on, off in pairs(cells, "bias_correction", True, False)]
    if not found:
        raise CannotTell("no cell run both with and without bias correction")
    # How fast the training loss comes down: its mean over the epochs (the area under the curve).
    helps = sum(_mean_curve(on, "loss").mean() < _mean_curve(off, "loss").mean()
                for on, off in found)
    final = sum(_mean(on, "final_train_loss") < _mean(off, "final_train_loss")
                for on, off in found)
    return helps > len(found) / 2, (
        "bias correction lower mean training loss over the epochs in %d of %d pairs (at the "
        "last epoch: %d of %d)" % (helps, len(found), final, len(found)))


def similar_final_loss_unless_lr_low(cells):
    lowest_lr = min(key.lr for key in cells)
    rest = {key: cell for key, cell in cells.items() if key.lr > lowest_lr}
    if not rest:
        raise CannotTell("one learning rate only")
    finals = [_mean(cell, "final_train_loss") for cell in rest.values()]
    low = [_mean(cell, "final_train_loss") for key, cell in cells.items() if key.lr == lowest_lr]
    return max(finals) - min(finals) < 0.005, (
        "mean final training loss of the cells with lr > %g: %.4f-%.4f (lr %g: %.4f-%.4f)" % (
            lowest_lr, min(finals), max(finals), lowest_lr, min(low), max(low)))


def amsgrad_lower_validation_loss_everywhere(cells):
    wins, total = _count(_pairs(cells), _lower("final_val_loss"))
    return wins == total, "AMSGrad lower mean final validation loss in %d of %d pairs" % (
        wins, total)


def similar_minimum_validation_loss_epochs_20_25(cells):
    best = {}
    for optimizer in ("adam", "amsgrad"):
        own = [key for key in cells if key.optimizer == optimizer]
        if not own:
            raise CannotTell("no %s cell" % optimizer)
        best[optimizer] = min(own, key=lambda key: _mean(cells[key], "best_val_loss"))
    values = {optimizer: _mean(cells[key], "best_val_loss") for optimizer, key in best.items()}
    epochs = {optimizer: int(np.argmin(_mean_curve(cells[key], "val_loss"))) + 1
              for optimizer, key in best.items()}
    holds = (abs(values["adam"] - values["amsgrad"]) < 0.01
             and all(15 <= epoch <= 30 for epoch in epochs.values()))
    return holds, ("lowest mean best validation loss: Adam %.4f (%s, mean curve's minimum at "
                   "epoch %d), AMSGrad %.4f (%s, epoch %d)" % (
                       values["adam"], _cell_name(best["adam"]), epochs["adam"],
                       values["amsgrad"], _cell_name(best["amsgrad"]), epochs["amsgrad"]))


def accuracy_inconclusive_best_adam_0001_099(cells):
    best = max(cells, key=lambda key: _mean(cells[key], "final_val_acc"))
    found = _pairs(cells)
    wins, total = _count(found, lambda a, b: _mean(a, "final_val_acc")
                         > _mean(b, "final_val_acc"))
    # Clear: the two cells' difference beyond AGREE_WITHIN pooled standard deviations.
    clear = sum(abs(effect_size(a.values("final_val_acc"), b.values("final_val_acc"))[1])
                > AGREE_WITHIN for a, b in found)
    holds = ((best.optimizer, best.lr, best.beta2) == ("adam", 0.001, 0.99)
             and clear <= total / 2)
    return holds, ("highest mean final validation accuracy %.4f: %s; pairs apart by more than "
                   "%g pooled std: %d of %d (AMSGrad higher in %d of %d)" % (
                       _mean(cells[best], "final_val_acc"), _cell_name(best), AGREE_WITHIN,
                       clear, total, wins, total))


def lower_loss_not_better_accuracy(cells):
    found = [(a, b) for a, b in _pairs(cells)
             if _mean(a, "final_val_loss") < _mean(b, "final_val_loss")]
    if not found:
        raise CannotTell("AMSGrad's mean final validation loss is lower in no pair")
    higher = sum(_mean(a, "final_val_acc") > _mean(b, "final_val_acc") for a, b in found)
    return higher <= len(found) / 2, (
        "of the %d pairs where AMSGrad's mean final validation loss is lower, its mean final "
        "validation accuracy is higher in %d" % (len(found), higher))


# -- the McGill study -----------------------------------------------------------------------

def _tuned(cells, optimizer):
    """The optimizer's cell of lowest mean final validation loss (the study's choice of beta2
    and lr; :func:`plots.mcgill.choose_cells`), ties to the larger lr, then beta2."""
    own = [key for key in cells if key.optimizer == optimizer]
    if not own:
        raise CannotTell("no %s cell" % optimizer)
    return min(own, key=lambda key: (_mean(cells[key], "final_val_loss"), -key.lr, -key.beta2))


def amsgrad_slightly_lower_loss(cells):
    tuned = {optimizer: _tuned(cells, optimizer) for optimizer in ("amsgrad", "adam")}
    amsgrad, adam, _ = paired(cells[tuned["amsgrad"]], cells[tuned["adam"]])
    difference = {measure: _mean(amsgrad, measure) - _mean(adam, measure)
                  for measure in ("final_val_loss", "final_train_loss")}
    runs = len(amsgrad.finished_runs), len(adam.finished_runs)
    return difference["final_val_loss"] < 0, (
        "tuned by the lowest mean final validation loss: AMSGrad %s, Adam %s; AMSGrad - Adam "
        "mean final validation loss %+.4f, training loss %+.4f (%d and %d runs)" % (
            _cell_name(tuned["amsgrad"]), _cell_name(tuned["adam"]),
            difference["final_val_loss"], difference["final_train_loss"], *runs))
