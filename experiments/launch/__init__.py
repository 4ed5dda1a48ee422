"""
Launching: the command lines' options, and the processes that train their runs.

.. autosummary::
    :nosignatures:

    cli
    options
    grid
    capacity
    dask_client
    worker

``experiments/run.py`` trains the runs of one cell (:mod:`~experiments.launch.cli`),
``experiments/grid.py`` a setup's grid in local worker processes or on a Dask
cluster (:mod:`~experiments.launch.grid`; how many local workers fit in
:mod:`~experiments.launch.capacity`, its Dask client in
:mod:`~experiments.launch.dask_client`, its tasks in
:mod:`~experiments.launch.worker`); both read the run options of
:mod:`~experiments.launch.options` and train through :mod:`experiments.training`.
"""
