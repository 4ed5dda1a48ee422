"""
Minibatches as in the original experiments.

.. autosummary::
    :nosignatures:

    iterate_train_batches
    epoch_order
    iterate_val_batches
    num_batches

Training: the examples are reshuffled every epoch; the last, partial batch is
filled up with randomly drawn training examples, so every batch has
``batch_size`` examples; for CIFAR-10 each image is flipped left-right with
probability 1/2.  Validation: in order, batches of 1024, the last one partial.

All randomness of an epoch (permutation, fill-up, flips) is drawn from the
given generator when :func:`iterate_train_batches` is called, so the generator's
state at the start of an epoch fixes the epoch, and its state afterwards does
not depend on how many batches were consumed.

Examples
--------
>>> import numpy as np
>>> from data.batches import iterate_train_batches, num_batches
>>> x = np.zeros((300, 1, 28, 28), np.float32); y = np.zeros(300, np.int32)
>>> rng = np.random.RandomState(42)
>>> sizes = [len(yb) for xb, yb in iterate_train_batches(x, y, 128, rng)]
>>> sizes, num_batches(300, 128)
([128, 128, 128], 3)
"""
import numbers

import numpy as np

from errors import UserError

__all__ = ["iterate_train_batches", "epoch_order", "iterate_val_batches", "num_batches"]


def _check_batch_size(batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
            or batch_size < 1:
        raise UserError("the batch size must be a whole number >= 1, got %r" % (batch_size,))


def _check_pair(x, y):
    if len(x) != len(y):
        raise ValueError("x has %d examples but y has %d" % (len(x), len(y)))


def num_batches(n, batch_size):
    """The number of minibatches of one epoch over ``n`` examples.

    Parameters
    ----------
    n : int
        Number of examples.
    batch_size : int
        Examples per batch.

    Returns
    -------
    int
        ``ceil(n / batch_size)``: the last batch may be partial (validation) or
        filled up (training).
    """
    _check_batch_size(batch_size)
    return -(-n // batch_size)


def _train_batches(x, y, order, flips, batch_size):
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        inputs = x[batch]  # fancy indexing copies, so flipping in place is safe
        if flips is not None:
            flip = flips[start:start + batch_size]
            inputs[flip] = inputs[flip, ..., ::-1]
        yield inputs, y[batch]


def iterate_train_batches(x, y, batch_size, rng, flip_lr=False):
    """The training minibatches of one epoch.

    Parameters
    ----------
    x : numpy.ndarray, shape (N, C, H, W)
        Inputs.
    y : numpy.ndarray, shape (N,)
        Targets.
    batch_size : int
        Examples per batch (128 in the original).
    rng : numpy.random.RandomState
        The source of every random draw of the epoch, all made by this call.
    flip_lr : bool
        Flip each image left-right (last axis) with probability 1/2
        (the original did for CIFAR-10).

    Returns
    -------
    iterator of (inputs, targets)
        ``num_batches(N, batch_size)`` batches of exactly ``batch_size``
        examples: a fresh permutation of all N, the last batch filled up with
        examples drawn uniformly (with replacement) from the whole training set.
        ``inputs`` are copies; ``x`` is never changed.

    Notes
    -----
    Draw order: ``rng.permutation(N)``, then ``rng.randint(0, N, fill)`` for the
    fill-up (when N is not a multiple of ``batch_size``), then, with
    ``flip_lr``, ``rng.random_sample(total) < 0.5``.
    """
    _check_pair(x, y)
    order, flips = epoch_order(len(x), batch_size, rng, flip_lr)
    return _train_batches(x, y, order.ravel(), None if flips is None else flips.ravel(),
                          batch_size)


def epoch_order(n, batch_size, rng, flip_lr=False):
    """The examples and flips of one epoch's training minibatches, drawn as
    :func:`iterate_train_batches` draws them.

    Parameters
    ----------
    n : int
        Number of training examples.
    batch_size : int
        Examples per batch.
    rng : numpy.random.RandomState
        The epoch's source of randomness (left in the state
        :func:`iterate_train_batches` leaves it in).
    flip_lr : bool
        Draw the left-right flips too.

    Returns
    -------
    order : numpy.ndarray of int, shape (num_batches(n, batch_size), batch_size)
        Row ``i``: the indices of batch ``i``'s examples.
    flips : numpy.ndarray of bool, same shape, or None
        Which of them are flipped (None without ``flip_lr``).
    """
    _check_batch_size(batch_size)
    if n == 0:
        raise ValueError("no training examples")
    order = rng.permutation(n)
    fill = -n % batch_size
    if fill:
        order = np.concatenate([order, rng.randint(0, n, size=fill)])
    flips = rng.random_sample(len(order)) < 0.5 if flip_lr else None
    shape = (-1, batch_size)
    return order.reshape(shape), None if flips is None else flips.reshape(shape)


def iterate_val_batches(x, y, batch_size=1024):
    """Validation minibatches: in order, the last one partial, no randomness.

    Parameters
    ----------
    x : numpy.ndarray, shape (N, ...)
        Inputs.
    y : numpy.ndarray, shape (N,)
        Targets.
    batch_size : int
        Examples per batch (1024 in the original).

    Yields
    ------
    inputs, targets : numpy.ndarray
        Views into ``x`` and ``y``.
    """
    _check_batch_size(batch_size)
    _check_pair(x, y)
    for start in range(0, len(x), batch_size):
        yield x[start:start + batch_size], y[start:start + batch_size]
