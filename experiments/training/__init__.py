"""
Training: a run's life, and the two loops that drive it.

.. autosummary::
    :nosignatures:

    life
    alone
    batched

A run's life (:mod:`~experiments.training.life`: lock, open, identity
checks, restore, record an epoch, diverged, outcome) is the same whether the
run trains alone (:func:`experiments.training.alone.train_run`, Theano's C
code or one JAX program) or batched with runs that share its program
(:func:`experiments.training.batched.train_batch`, under ``jax.vmap``); each
loop supplies only the steps.  Runs are written through
:mod:`experiments.store`.
"""
