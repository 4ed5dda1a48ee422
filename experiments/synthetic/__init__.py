"""
The synthetic job: the synthetic convex experiments of Reddi et al.

.. autosummary::
    :nosignatures:

    job
    runner
    problems

``python experiments/run.py synthetic`` runs :func:`experiments.synthetic.job.main`:
the problems (:mod:`~experiments.synthetic.problems`, NumPy only: the online
and stochastic settings and their gradients) stepped by the optimizers
(:mod:`~experiments.synthetic.runner`, Theano's or JAX's compiled steps),
written to ``R/synthetic/`` through :mod:`experiments.store`.
"""
