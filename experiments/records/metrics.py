"""
The per-minibatch values a run's compiled functions return: one declaration per curve.

.. autosummary::
    :nosignatures:

    Metric
    METRICS
    train_names
    val_names
    history_curves
    outputs

A :class:`Metric` is a named symbolic expression of one minibatch.  The
training function returns every metric (computed with the parameters before
the update it applies), the validation function those with ``validation``
set; a run's history holds, per epoch, the mean of each over the epoch's
training minibatches under the metric's name, and over the validation
batches under ``val_`` + its name.  The first metric is the loss the
optimizer minimises.  Adding a curve is one entry of :data:`METRICS`:
histories written before it still read (the curve is absent there), and a
resumed run records it from its next epoch on (``null`` before: see
:func:`experiments.store.history.add_curves`).

Examples
--------
>>> from experiments.records import metrics
>>> metrics.train_names()
('loss', 'acc')
>>> metrics.history_curves()
('loss', 'acc', 'val_loss', 'val_acc', 'lr', 'epoch_time')
"""
import dataclasses
from typing import Callable

import compat  # noqa: F401  (Theano flags before theano)
import theano
import theano.tensor as T

__all__ = ["Metric", "MinibatchGraph", "METRICS", "CLIP", "train_names", "val_names",
           "history_curves", "RUN_CURVES", "outputs"]

#: Predictions are clipped to [CLIP, 1 - CLIP] before the logarithm, as in the original.
CLIP = 1e-7
#: Curves the training loop records itself, after the metrics' ones.
RUN_CURVES = ("lr", "epoch_time")


@dataclasses.dataclass(frozen=True)
class MinibatchGraph:
    """What a metric's expression is made of, for one pass over a minibatch.

    prediction : the network's softmax probabilities
    targets : the integer labels
    config : the run's :class:`~experiments.records.config.RunConfig` (its ``loss``)
    num_classes : int
    params : the trainable parameters (gradients of the loss, say)
    """
    prediction: object
    targets: object
    config: object
    num_classes: int
    params: tuple


@dataclasses.dataclass(frozen=True)
class Metric:
    """One value per minibatch, recorded as an epoch mean.

    name : str
        The training curve's name (``val_`` + it for validation)
    expression : callable
        ``expression(graph) -> scalar`` for a :class:`MinibatchGraph`
    validation : bool
        Whether the validation function returns it too
    """
    name: str
    expression: Callable
    validation: bool = True


def _loss(graph):
    clipped = T.clip(graph.prediction, CLIP, 1 - CLIP)
    if graph.config.loss == "categorical":
        return T.nnet.categorical_crossentropy(clipped, graph.targets).mean()
    # The reproduction study's multiclass log-loss: a binary cross-entropy per class.
    one_hot = T.extra_ops.to_one_hot(graph.targets, graph.num_classes,
                                     dtype=theano.config.floatX)
    return T.nnet.binary_crossentropy(clipped, one_hot).sum(axis=1).mean()


def _accuracy(graph):
    return T.mean(T.eq(T.argmax(graph.prediction, axis=1), graph.targets),
                  dtype=theano.config.floatX)


#: The metrics, in the order the compiled functions return them; the first is the loss.
METRICS = (
    Metric("loss", _loss),
    Metric("acc", _accuracy),
)


def train_names():
    """The names of the training function's outputs, in order."""
    return tuple(metric.name for metric in METRICS)


def val_names():
    """The names of the validation function's outputs, in order."""
    return tuple(metric.name for metric in METRICS if metric.validation)


def history_curves():
    """The per-epoch lists of a new run's ``history.json``, in order."""
    return train_names() + tuple("val_" + name for name in val_names()) + RUN_CURVES


def outputs(graph, validation=False):
    """The metrics' expressions for ``graph``, in the order of their names."""
    return [metric.expression(graph) for metric in METRICS
            if metric.validation or not validation]
