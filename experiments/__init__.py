"""
The experiments: one sub-package a job, each importing only from those before it.

.. autosummary::
    :nosignatures:

    records
    store
    training
    synthetic
    launch

:mod:`~experiments.records` says what a run is, :mod:`~experiments.store`
where and how its files are kept, :mod:`~experiments.training` trains it
(alone or batched), :mod:`~experiments.synthetic` is the synthetic job and
:mod:`~experiments.launch` the command lines' options and the grid's processes.
``experiments/run.py`` and ``experiments/grid.py`` are the command lines.
"""
