"""
The claims of the blog post and of the McGill study, each a record with its test.

.. autosummary::
    :nosignatures:

    Claim
    CLAIMS
    evaluate

A claim names the setups and the protocol it is about, says what it claims in
the source's words (shortened), and has a function that decides it on the
cells of one side (original or reproduced runs): it returns whether the claim
holds and the numbers it looked at.  Adding a claim is adding one record to
:data:`CLAIMS`.

A *cell* here is a :class:`plots.verdict.cells.Cell` mapped to its runs (a
:class:`plots.verdict.cells.Group`, or anything read as one: ``values(measure)``
gives a measure, :data:`plots.verdict.compare.MEASURES`, over its finished runs,
``finished_runs`` the runs, with ``curves``).  Means are over runs.  A claim
about the end of training cannot be decided from runs stopped early, nor from
a side without the cells it needs: :func:`evaluate` then says ``cannot tell``
and why.

Claims that compare two cells (AMSGrad against Adam, bias correction on
against off) find them with :func:`plots.verdict.cells.pairs` and compare them
as :func:`plots.verdict.cells.paired` does: run by run where both cells share
their draws, otherwise (the original's runs, independent draws) their means.
"""
import dataclasses

import numpy as np

from plots.verdict.cells import paired, pairs

__all__ = ["Claim", "CLAIMS", "evaluate", "CannotTell"]


class CannotTell(Exception):
    """Raised by a claim's test when the cells given cannot decide it (the message: why)."""


@dataclasses.dataclass(frozen=True)
class Claim:
    """One claim: ``test(cells) -> (holds, detail)``; raises :class:`CannotTell`."""
    setups: tuple
    protocol: str
    source: str
    text: str
    test: object


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


def _count(found, better):
    wins = sum(bool(better(amsgrad, adam)) for amsgrad, adam in found)
    return wins, len(found)


def _lower(measure):
    return lambda first, second: _mean(first, measure) < _mean(second, measure)


def _mean_curve(cell, curve):
    return np.mean([run.curves[curve] for run in cell.finished_runs], axis=0)


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
        "lowest best validation loss: %s lr=%g b2=%g bc=%s, %.4f (by %.4f over %s), at "
        "epoch %d, final %.4f" % (best.optimizer, best.lr, best.beta2,
                                  "on" if best.bias_correction else "off",
                                  _mean(cells[best], "best_val_loss"), margin, rival.optimizer,
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


# -- CifarNet -------------------------------------------------------------------------------

def _at_lr(cells, lr):
    chosen = {key: cell for key, cell in cells.items() if key.lr == lr}
    if not chosen:
        raise CannotTell("lr %g not run" % lr)
    return chosen


def lr_001_fails(cells):
    accuracies = [_mean(cell, "final_val_acc") for cell in _at_lr(cells, 0.01).values()]
    return max(accuracies) < 0.2, "final validation accuracy of the lr 0.01 cells %.3f-%.3f" % (
        min(accuracies), max(accuracies))


def lr_0001_lowest_training_loss_adam_lowest(cells):
    best = min(cells, key=lambda key: _mean(cells[key], "final_train_loss"))
    at = _at_lr(cells, 0.001)
    spread = {optimizer: np.mean([np.std(cell.values("final_train_loss"), ddof=1)
                                  for key, cell in at.items() if key.optimizer == optimizer])
              for optimizer in ("adam", "amsgrad")}
    holds = best.lr == 0.001 and best.optimizer == "adam" and spread["amsgrad"] < spread["adam"]
    return holds, ("lowest final training loss: %s lr=%g (%.4f); its std over runs at lr "
                   "0.001: AMSGrad %.4f, Adam %.4f" % (
                       best.optimizer, best.lr, _mean(cells[best], "final_train_loss"),
                       spread["amsgrad"], spread["adam"]))


def lr_0001_validation_loss_diverges_accuracy_best(cells):
    at = _at_lr(cells, 0.001)
    rises = sum(_mean(cell, "final_val_loss") > 1.2 * _mean(cell, "best_val_loss")
                for cell in at.values())
    best = max(cells, key=lambda key: _mean(cells[key], "best_val_acc"))
    return rises == len(at) and best.lr == 0.001, (
        "lr 0.001 cells whose final validation loss is over 1.2 x their best: %d of %d; "
        "best validation accuracy at lr %g" % (rises, len(at), best.lr))


def best_accuracy_about_78(cells):
    best = {optimizer: max(_mean(cell, "best_val_acc") for key, cell in cells.items()
                           if key.optimizer == optimizer) for optimizer in ("adam", "amsgrad")}
    return all(0.76 <= value <= 0.80 for value in best.values()), (
        "best mean best validation accuracy: Adam %.3f, AMSGrad %.3f" % (
            best["adam"], best["amsgrad"]))


# -- Vgg and SmallVgg -----------------------------------------------------------------------

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


def bias_correction_mostly_helps(cells):
    found = [paired(on, off)[:2] for _, on, off in pairs(cells, "bias_correction", True, False)]
    if not found:
        raise CannotTell("no cell run both with and without bias correction")
    helps = sum(_mean(on, "final_val_loss") < _mean(off, "final_val_loss") for on, off in found)
    return helps > len(found) / 2, (
        "bias correction lower final validation loss in %d of %d pairs" % (helps, len(found)))


def similar_end_near_full_accuracy(cells):
    accuracies = [_mean(cell, "final_train_loss") for key, cell in cells.items()
                  if key.lr <= 0.001]
    train_acc = [float(np.mean([run.curves["acc"][-1] for run in cell.finished_runs]))
                 for key, cell in cells.items() if key.lr <= 0.001]
    if not train_acc:
        raise CannotTell("no cell with lr <= 0.001")
    return min(train_acc) >= 0.99, (
        "cells with lr <= 0.001: final training accuracy %.4f-%.4f, loss %.4f-%.4f" % (
            min(train_acc), max(train_acc), min(accuracies), max(accuracies)))


def amsgrad_lower_validation_loss_everywhere(cells):
    wins, total = _count(_pairs(cells), _lower("final_val_loss"))
    minima = [int(np.argmin(_mean_curve(a, "val_loss"))) + 1 for a, _ in _pairs(cells)]
    return wins == total, ("AMSGrad lower final validation loss in %d of %d configurations; "
                           "its minimum at epochs %d-%d" % (wins, total, min(minima),
                                                           max(minima)))


# -- the McGill study -----------------------------------------------------------------------

def amsgrad_slightly_lower_loss(cells):
    found = _pairs(cells)
    wins, total = _count(found, _lower("final_val_loss"))
    train, _ = _count(found, _lower("final_train_loss"))
    return wins > total / 2, ("AMSGrad lower final validation loss in %d of %d pairs, lower "
                              "final training loss in %d of %d" % (wins, total, train, total))


_BLOG, _STUDY = "the blog", "the McGill study"
#: The claims, in the order of the report.
CLAIMS = (
    Claim(("logreg",), "blog", _BLOG, "Adam has the lowest final training loss in every "
          "configuration", adam_lowest_training_loss),
    Claim(("logreg",), "blog", _BLOG, "AMSGrad usually has the lower validation loss, unless "
          "the learning rate is too low", amsgrad_lower_validation_loss_unless_lr_low),
    Claim(("logreg",), "blog", _BLOG, "Adam has the single lowest validation loss, by a tiny "
          "margin, and rises after it", adam_single_lowest_validation_loss),
    Claim(("logreg",), "blog", _BLOG, "accuracy follows the losses", accuracy_follows_losses),
    Claim(("logreg",), "blog", _BLOG, "AMSGrad is not more robust to hyper-parameters than "
          "Adam (no clear winner)", amsgrad_not_more_robust),
    Claim(("cifarnet",), "blog", _BLOG, "lr 0.01 fails to converge for both optimizers",
          lr_001_fails),
    Claim(("cifarnet",), "blog", _BLOG, "lr 0.001 gives the lowest training loss, the lowest "
          "by Adam, with less run-to-run variance for AMSGrad",
          lr_0001_lowest_training_loss_adam_lowest),
    Claim(("cifarnet",), "blog", _BLOG, "the validation loss of the lr 0.001 runs diverges "
          "while their validation accuracy is the best",
          lr_0001_validation_loss_diverges_accuracy_best),
    Claim(("cifarnet",), "blog", _BLOG, "the best validation accuracy is about 78%, "
          "whichever optimizer", best_accuracy_about_78),
    Claim(("vgg", "small_vgg"), "blog", _BLOG, "the training loss gets near 0",
          training_loss_near_zero),
    Claim(("vgg", "small_vgg"), "blog", _BLOG, "AMSGrad converges faster late in training, "
          "unless lr is too low", amsgrad_faster_late_unless_lr_low),
    Claim(("vgg", "small_vgg"), "blog", _BLOG, "bias correction mostly helps",
          bias_correction_mostly_helps),
    Claim(("vgg", "small_vgg"), "blog", _BLOG, "all variants end at a similar training loss "
          "and accuracy, near 100%", similar_end_near_full_accuracy),
    Claim(("vgg", "small_vgg"), "blog", _BLOG, "AMSGrad's validation loss is lower in all "
          "configurations, with a similar minimum", amsgrad_lower_validation_loss_everywhere),
    Claim(("logreg", "ffnn", "cifarnet"), "mcgill", _STUDY, "AMSGrad reaches a slightly "
          "lower loss than Adam", amsgrad_slightly_lower_loss),
)


def evaluate(claim, cells, stopped_early=None):
    """``holds``, ``does not hold`` or ``cannot tell: ...``, with the numbers looked at.

    Parameters
    ----------
    claim : Claim
    cells : dict of plots.verdict.cells.Cell -> plots.verdict.cells.Group
        The cells of one side with finished runs; empty: not run
    stopped_early : str or None
        Set (e.g. ``after epoch 2 of 150``) when the runs were stopped early:
        the claims are about the end of training
    """
    if not cells:
        return "cannot tell: not run"
    if stopped_early:
        return "cannot tell: runs stopped %s" % stopped_early
    try:
        holds, detail = claim.test(cells)
    except CannotTell as exc:
        return "cannot tell: %s" % exc
    return "%s: %s" % ("holds" if holds else "does not hold", detail)
