"""
The claims decided on the reproduced runs and on the original's, setup by setup.

.. autosummary::
    :nosignatures:

    ClaimResult
    ClaimTally
    decide_claims
    original_claims

Every claim of :data:`plots.verdict.claims.CLAIMS`, per setup it is made on,
is decided by :func:`plots.verdict.claims.evaluate` on the cells of its
setup and protocol with finished runs (of Adam and AMSGrad), on both sides;
the original's runs are independent draws (never paired).
"""
import dataclasses

from experiments.records import protocols
from plots.verdict import claims as claim_records
from plots.verdict.cells import independent

__all__ = ["ClaimResult", "ClaimTally", "applies", "decide_claims", "original_claims"]


@dataclasses.dataclass(frozen=True)
class ClaimResult:
    """A claim of :data:`plots.verdict.claims.CLAIMS` on one setup, decided on both sides
    (:func:`plots.verdict.claims.evaluate` 's answers)."""
    claim: object
    setup: str
    original: str
    reproduced: str


@dataclasses.dataclass(frozen=True)
class ClaimTally:
    """Of some claims decided on one side: how many hold, of how many, how many cannot tell."""
    holds: int
    total: int
    cannot_tell: int

    @classmethod
    def of(cls, answers):
        return cls(sum(answer.startswith("holds") for answer in answers), len(answers),
                   sum(answer.startswith("cannot tell") for answer in answers))


def applies(claim, setup, key):
    """Whether a group key is of the claim's setup and protocol."""
    if claim.protocol == "mcgill":
        return key.setup == setup and protocols.get("mcgill").trained(key)
    return key.setup == setup and not key.protocol_name


def _claim_side(groups):
    """The cells of one side for the claims, and why they cannot be used (or None)."""
    # The claims are about Adam and AMSGrad: other optimizers' cells (ADAMNC, plug-ins) are not
    # theirs.
    cells = {group.cell: group for group in groups if group.finished
             and group.cell.optimizer in ("adam", "amsgrad")}
    early = sorted({(group.at_epoch, group.key.epochs) for group in cells.values()
                    if group.at_epoch is not None})
    stopped = ("after epoch %d of %d" % early[0]) if early else None
    return cells, stopped


def decide_claims(comparisons, reference_groups):
    """Every claim per setup, decided on both sides; the original's runs are independent
    draws (never paired)."""
    results = []
    for claim in claim_records.CLAIMS:
        for setup in claim.setups:
            reproduced = _claim_side([c.group for c in comparisons
                                      if applies(claim, setup, c.group.key)])
            cells, stopped = _claim_side([group for key, group in reference_groups.items()
                                          if applies(claim, setup, key)])
            theirs = (claim_records.evaluate(claim, independent(cells), stopped)
                      if cells or claim.protocol == "blog" else
                      "cannot tell: the original ran no runs of this protocol")
            results.append(ClaimResult(claim, setup, theirs,
                                       claim_records.evaluate(claim, *reproduced)))
    return results


def original_claims(reference_groups, setups):
    """Per setup of the original runs, its blog claims decided on them (all of them, also of
    setups no reproduced run has)."""
    tallies = {}
    for setup in setups:
        answers = []
        for claim in claim_records.CLAIMS:
            if claim.protocol == "blog" and setup in claim.setups:
                cells, stopped = _claim_side([group for key, group in reference_groups.items()
                                              if applies(claim, setup, key)])
                answers.append(claim_records.evaluate(claim, independent(cells), stopped))
        tallies[setup] = ClaimTally.of(answers)
    return tallies
