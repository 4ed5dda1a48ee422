"""
MNIST, Fashion-MNIST and CIFAR-10 for the experiments: download, verification,
cache, parsing, the original preprocessing and minibatches.

.. autosummary::
    :nosignatures:

    load_dataset
    Dataset
    iterate_train_batches
    iterate_val_batches
    num_batches
    default_data_dir

Modules: :mod:`data.download` (sources, checksums, the cache directory),
:mod:`data.idx` (MNIST's IDX files), :mod:`data.cifar10` (CIFAR-10's python
batches), :mod:`data.datasets` (finding files, preprocessing),
:mod:`data.batches` (minibatches).  ``python -m data NAME...`` downloads and
checks data sets ahead of time.  Nothing here imports Theano.

Examples
--------
>>> import numpy as np
>>> import data
>>> mnist = data.load_dataset("mnist", data_dir="~/data")         # doctest: +SKIP
>>> rng = np.random.RandomState(1)
>>> for inputs, targets in data.iterate_train_batches(
...         mnist.train_x, mnist.train_y, 128, rng):              # doctest: +SKIP
...     pass
"""
from data.batches import epoch_order, iterate_train_batches, iterate_val_batches, num_batches
from data.datasets import DATASETS, Dataset, DataWarning, load_dataset
from data.download import default_data_dir

__all__ = ["load_dataset", "Dataset", "DataWarning", "DATASETS", "iterate_train_batches",
           "epoch_order", "iterate_val_batches", "num_batches", "default_data_dir"]
