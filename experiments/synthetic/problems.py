"""
The synthetic convex problems of Reddi et al. (2018): linear losses on [-1, 1].

Every loss is :math:`f_t(x) = g_t x`, so its gradient :math:`g_t` does not
depend on :math:`x`; a problem is fully described by its gradient sequence:

.. autosummary::
    :nosignatures:

    online_problem
    stochastic_problem
    online_c_problem
    GradientStream
    original_stochastic_rng

Examples
--------
>>> from experiments.synthetic.problems import online_problem
>>> problem = online_problem()
>>> stream = problem.gradient_stream()
>>> stream.take(3), stream.take(100)[-2:]
(array([1010.,  -10.,  -10.]), array([ -10., 1010.]))
>>> problem.optimum
-1.0

No Theano here: the optimizers live in :mod:`experiments.synthetic.runner`.
"""
from dataclasses import dataclass
import math
import numbers

import numpy as np

from errors import UserError

__all__ = ["Problem", "GradientStream", "online_problem", "stochastic_problem",
           "online_c_problem", "original_stochastic_rng", "SETTINGS"]

#: The settings, by the name the command line and the results use.
SETTINGS = ("online", "stochastic", "online-c")


@dataclass(frozen=True)
class Problem:
    """A sequence of linear losses :math:`f_t(x) = g_t x` on [-1, 1].

    At step :math:`t = 1, 2, \\dots` the gradient is ``large`` either when
    ``t % period == 1`` (online) or with probability ``probability``
    (stochastic), and ``-small`` otherwise.

    Attributes
    ----------
    setting : str
        One of :data:`SETTINGS`.
    large, small : float
        The rare positive gradient and the magnitude of the common negative one.
    period : int or None
        Online problems: the period of the sequence.
    probability : float or None
        Stochastic problems: the probability of the large gradient.
    seed : int or None
        Stochastic problems: the seed of the draws (see :func:`original_stochastic_rng`).
    """
    setting: str
    large: float
    small: float
    period: int = None
    probability: float = None
    seed: int = None

    @property
    def mean_gradient(self):
        """Mean gradient over a period (online) or expected gradient (stochastic)."""
        if self.period is not None:
            return (self.large - (self.period - 1) * self.small) / self.period
        return self.probability * self.large - (1 - self.probability) * self.small

    @property
    def optimum(self):
        """The minimizer :math:`x^*` of the mean loss on [-1, 1] (-1 when the mean gradient is > 0)."""
        return -1.0 if self.mean_gradient > 0 else 1.0

    def gradient_stream(self):
        """A fresh :class:`GradientStream` starting at step 1."""
        return GradientStream(self)


class GradientStream:
    """The gradients of a :class:`Problem`, block after block, from step 1 on.

    ``take(n)`` returns the next ``n`` gradients as float64; the sequence does
    not depend on how it is cut into blocks.
    """

    def __init__(self, problem):
        self.problem = problem
        self.next_step = 1
        self._rng = (original_stochastic_rng(problem.seed)
                     if problem.probability is not None else None)

    def take(self, count):
        problem = self.problem
        if self._rng is not None:
            # binomial(1, p) as the original's Theano RandomStreams drew it, one per
            # step, with p as the float32 constant Theano made of it.
            probability = float(np.float32(problem.probability))
            is_large = self._rng.binomial(1, probability, size=count).astype(bool)
        else:
            steps = np.arange(self.next_step, self.next_step + count, dtype=np.int64)
            is_large = steps % problem.period == 1
        self.next_step += count
        return np.where(is_large, float(problem.large), -float(problem.small))


def original_stochastic_rng(seed):
    """The NumPy generator behind the original's stochastic draws.

    ``train_synthetic.py`` of the blog post seeded Theano's ``RandomStreams``
    with ``RandomState(seed).randint(999999)`` (seed 4711); ``RandomStreams``
    seeds each random variable with ``RandomState(that).randint(2 ** 30)`` and
    draws it with ``RandomState.binomial``. Theano-PyMC's ``RandomStream`` still
    does the same, so ``binomial(1, p, size=n)`` on the returned generator gives
    the original's first ``n`` draws.

    Parameters
    ----------
    seed : int
        The seed given on the command line (the original's 4711 by default).

    Returns
    -------
    numpy.random.RandomState
    """
    streams_seed = np.random.RandomState(seed).randint(999999)
    return np.random.RandomState(np.random.RandomState(streams_seed).randint(2 ** 30))


def _real(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise UserError("%s must be a finite number, got %r" % (name, value))
    return float(value)


def online_problem():
    """The paper's online problem: :math:`f_t(x) = 1010 x` when ``t % 101 == 1``, else :math:`-10 x`."""
    return Problem("online", large=1010.0, small=10.0, period=101)


def stochastic_problem(probability=0.01, seed=4711):
    """The paper's stochastic problem: :math:`1010 x` with probability ``probability``, else :math:`-10 x`.

    Parameters
    ----------
    probability : float
        In (0, 1); the paper's 0.01 makes the expected gradient 0.2 > 0, so
        :math:`x^* = -1`. Below 1/102 the optimum is +1 (see :attr:`Problem.optimum`).
    seed : int
        Seed of the draws, >= 0 (4711 is the original's).
    """
    probability = _real("the probability (--probability)", probability)
    if not 0 < probability < 1:
        raise UserError("the probability (--probability) must be in (0, 1), got %r; "
                        "the paper uses 0.01" % probability)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2 ** 32:
        raise UserError("the seed (--seed) must be an integer in [0, 2**32), got %r" % (seed,))
    return Problem("stochastic", large=1010.0, small=10.0, probability=probability, seed=int(seed))


def online_c_problem(c=3.0):
    """The variant with a constant C of Reddi et al.'s Theorem 1, used by a reproduction study.

    :math:`f_t(x) = C x` when ``t % 3 == 1``, else :math:`-x`; for C > 2 the
    optimum is :math:`x^* = -1`.  Theorem 1 makes Adam fail with
    :math:`\\beta_1 = 0` and :math:`\\beta_2 = 1 / (1 + C^2)`.

    Parameters
    ----------
    c : float
        The constant C, > 2.
    """
    c = _real("C (--c)", c)
    if not c > 2:
        raise UserError("C (--c) must be > 2 (for C <= 2 the optimum is not -1), got %r" % c)
    return Problem("online-c", large=c, small=1.0, period=3)
