"""
The records of a run: what a run is, before anything trains or stores it.

.. autosummary::
    :nosignatures:

    config
    optimizers
    setups
    schedule
    curves
    metrics
    protocols
    plugins

A run's identity (:class:`~experiments.records.config.RunConfig`) and the
registries it names: the optimizers, the setups (data set and network), the
learning-rate schedules, the protocols (the blog's, the reproduction study's),
the curves a run records (stored, logged, reported, compared where the
original runs have them), their symbolic expressions (the metrics) and the
plug-ins that register more.  Only :mod:`~experiments.records.metrics` and a schedule's Theano
expression import Theano, so the figures and the report read these records
without it.
"""
