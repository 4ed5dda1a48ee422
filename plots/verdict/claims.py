"""
The claims of the blog post and of the McGill study, each a record with its reading and its test.

.. autosummary::
    :nosignatures:

    Claim
    CLAIMS
    evaluate

A claim carries the source's own sentence (:attr:`Claim.quote`, short; where
the post's wording is not at hand, :attr:`Claim.verbatim` is False and the
sentence is the project's paraphrase), the setups and the protocol it is about,
and its *reading*: what it measures, on which cells, with which rule, in words
a reader can check against the sentence.  Its test decides it on the cells of
one side (original or reproduced runs) as the reading says, and returns
whether it holds and the numbers it looked at.  Adding a claim is adding one
record to :data:`CLAIMS`.

A *cell* here is a :class:`plots.verdict.cells.Cell` mapped to its runs (a
:class:`plots.verdict.cells.Group`, or anything read as one: ``values(measure)``
gives a measure, :data:`plots.verdict.distances.MEASURES`, over its finished runs,
``finished_runs`` the runs, with ``curves``).  Means are over runs.  A claim
about the end of training cannot be decided from runs stopped early, nor from
a side without the cells it needs: :func:`evaluate` then says ``cannot tell``
and why.  A claim about run-to-run spread or about a few runs says in its
answer how many runs it was decided on.

Claims that compare two cells (AMSGrad against Adam, bias correction on
against off) find them with :func:`plots.verdict.cells.pairs` and compare them
as :func:`plots.verdict.cells.paired` does: run by run where both cells share
their draws, otherwise (the original's runs, independent draws) their means.
"""
import dataclasses

from plots.verdict import readings  # the tests, one function per claim
from plots.verdict.readings import CannotTell

__all__ = ["Claim", "CLAIMS", "evaluate"]


@dataclasses.dataclass(frozen=True)
class Claim:
    """One claim: the source's sentence, its reading, and ``test(cells) -> (holds, detail)``.

    Attributes
    ----------
    setups : tuple of str
    protocol : str
        ``blog`` or ``mcgill``
    source : str
    quote : str
        The source's sentence (shortened with "..."), or a paraphrase where
        ``verbatim`` is False
    measure, cells, rule : str
        The reading: what is measured, on which cells, and when it holds
    test : callable
        Raises :class:`CannotTell` when the cells cannot decide it
    verbatim : bool
    """
    setups: tuple
    protocol: str
    source: str
    quote: str
    measure: str
    cells: str
    rule: str
    test: object
    verbatim: bool = True

    @property
    def text(self):
        """The sentence as the report shows it: quoted, or marked as a paraphrase."""
        return '"%s"' % self.quote if self.verbatim else "%s (paraphrase)" % self.quote

    def reading(self):
        """What the test looks at, in words: measure; cells; rule."""
        return "%s; %s; %s" % (self.measure, self.cells, self.rule)


_BLOG, _STUDY = "the blog", "the McGill study"
_PAIRS = "each pair of cells equal but for the optimizer"


def _blog(setup, quote, measure, cells, rule, test, verbatim=True):
    return Claim((setup,), "blog", _BLOG, quote, measure, cells, rule, test, verbatim)


#: The claims, in the order of the report.  SmallVgg has none: the post does not interpret
#: its results ("I won't interpret the results for these experiments").
CLAIMS = (
    _blog("logreg", "Adam has the lowest final training loss in every configuration",
          "mean final training loss", _PAIRS, "Adam lower in every pair",
          readings.adam_lowest_training_loss, verbatim=False),
    _blog("logreg", "depending on the hyper-parameters, it reaches 0.2",
          "mean final training loss", "every cell",
          "the lowest cell in 0.19-0.21, and the cells more than 0.05 apart",
          readings.training_loss_reaches_02),
    _blog("logreg", "AMSGrad usually has the lower validation loss, unless the learning rate "
          "is too low", "mean final validation loss", _PAIRS + " with lr >= 0.001",
          "AMSGrad lower in more than half", readings.amsgrad_lower_validation_loss_unless_lr_low,
          verbatim=False),
    _blog("logreg", "Adam has the single lowest validation loss, by a tiny margin, and rises "
          "after it", "mean best validation loss, and its cell's mean curve", "every cell",
          "the lowest cell is Adam's and its mean curve ends above its minimum",
          readings.adam_single_lowest_validation_loss, verbatim=False),
    _blog("logreg", "accuracy follows the losses",
          "mean final validation loss and accuracy", _PAIRS,
          "the lower loss has the higher accuracy in at least 3/4 of the pairs",
          readings.accuracy_follows_losses, verbatim=False),
    _blog("logreg", "AMSGrad is not more robust to hyper-parameters than Adam (no clear "
          "winner)", "range of the cells' mean final validation loss", "every cell, per "
          "optimizer", "AMSGrad's range at least half of Adam's", readings.amsgrad_not_more_robust,
          verbatim=False),
    _blog("cifarnet", "We see that high learn rates fail to converge for both algorithms",
          "final training loss of each run (the training-loss paragraph)",
          "the runs of the lr 0.01 cells", "for each optimizer, more than half of its runs "
          "end at or above chance (ln 10 = 2.303); runs that escaped are named",
          readings.lr_001_fails),
    _blog("cifarnet", "Although the lowest train loss is achieved by ADAM, the runs using "
          "AMSGrad seem to have less variance",
          "final training loss: of single runs; its relative spread (std / mean) over a "
          "cell's runs", "every run; " + _PAIRS + " at lr 0.001 (the lr of the lowest loss)",
          "the lowest run is Adam's and AMSGrad's spread is lower in more than half of the "
          "pairs", readings.lowest_training_loss_adam_amsgrad_less_variance),
    _blog("cifarnet", "The validation loss diverges badly for the configurations that "
          "achieved the best training loss", "mean final over mean best validation loss",
          "the cells whose mean final training loss is within 3 x the lowest cell's",
          "over 1.5 in every such cell",
          readings.validation_loss_diverges_where_training_loss_best),
    _blog("cifarnet", "models trained with a lower learning rate generalise much better",
          "mean final validation loss", "each pair of cells equal but for lr (0.0001 against "
          "0.001)", "lr 0.0001 lower in every pair", readings.lower_lr_generalises_better),
    _blog("cifarnet", "ADAM or AMSGrad out-perform each other by a tiny margin",
          "mean final validation accuracy", _PAIRS + " with lr 0.001 or 0.0001 (lr 0.01 stays "
          "at chance)", "each optimizer higher in at least one pair, no pair apart by 0.01 "
          "or more", readings.tiny_margin_in_accuracy),
    _blog("cifarnet", "the best validation accuracy is about 78%, whichever optimizer",
          "mean best validation accuracy", "every cell, per optimizer",
          "each optimizer's highest cell in 0.76-0.80",
          readings.best_accuracy_about_78, verbatim=False),
    _blog("vgg", "the training loss gets near 0", "mean final training loss", "every cell",
          "the lowest cell below 0.01", readings.training_loss_near_zero, verbatim=False),
    _blog("vgg", "AMSGrad converges faster late in training, unless lr is too low",
          "mean training loss over the last 50 epochs", _PAIRS + " with lr >= 0.001",
          "AMSGrad lower in more than half",
          readings.amsgrad_faster_late_unless_lr_low, verbatim=False),
    _blog("vgg", "we see ADAM often overtaking AMSGrad in the final few epochs",
          "the mean training-loss curves", _PAIRS, "Adam above AMSGrad 10 epochs before the "
          "end and below at the end in at least a third of the pairs",
          readings.adam_overtakes_at_the_end),
    _blog("vgg", "Most of the time, using bias correction helps convergence",
          "mean training loss over the epochs (how fast it converges; the training-loss "
          "paragraph)", "each pair of cells equal but for bias correction",
          "on lower in more than half",
          readings.bias_correction_mostly_helps),
    _blog("vgg", "All variants ... (except when the learning rate is too low) converge to a "
          "similar final loss", "mean final training loss",
          "the cells above the lowest lr (0.01 and 0.001)", "within 0.005 of each other",
          readings.similar_final_loss_unless_lr_low),
    _blog("vgg", "AMSGrad's validation loss is lower in all configurations",
          "mean final validation loss", _PAIRS, "AMSGrad lower in every pair",
          readings.amsgrad_lower_validation_loss_everywhere, verbatim=False),
    _blog("vgg", "Both algorithms achieve a similar minimum validation loss (around epochs "
          "20-25)", "mean best validation loss, and the epoch of its cell's mean curve's "
          "minimum", "each optimizer's cell of the lowest mean best validation loss",
          "the two within 0.01, both minima at epochs 15-30",
          readings.similar_minimum_validation_loss_epochs_20_25),
    _blog("vgg", "quite inconclusive ... the best result ... ADAM with lr = 0.001 and b2=0.99",
          "mean final validation accuracy", "every cell; " + _PAIRS,
          "the highest cell is Adam lr 0.001 b2 0.99 (either bc), and at most half of the "
          "pairs apart by more than 2 pooled standard deviations",
          readings.accuracy_inconclusive_best_adam_0001_099),
    _blog("vgg", "the improvement in test loss does not translate to better test accuracy",
          "mean final validation loss and accuracy",
          "the pairs where AMSGrad's validation loss is lower",
          "AMSGrad's accuracy higher in at most half of them",
          readings.lower_loss_not_better_accuracy),
    Claim(("logreg", "ffnn", "cifarnet"), "mcgill", _STUDY, "AMSGrad has a slightly lower "
          "loss than ADAM", "mean final validation loss over runs", "each optimizer's tuned "
          "cell: its beta2 and lr of the lowest mean final validation loss (as the study "
          "chose)", "AMSGrad's tuned cell lower than Adam's",
          readings.amsgrad_slightly_lower_loss),
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
        return "cannot tell: runs stopped %s (the claims are about the end of training)" % (
            stopped_early)
    try:
        holds, detail = claim.test(cells)
    except CannotTell as exc:
        return "cannot tell: %s" % exc
    return "%s: %s" % ("holds" if holds else "does not hold", detail)
