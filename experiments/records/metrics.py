"""
The curves' symbolic expressions: what the compiled functions return per minibatch.

.. autosummary::
    :nosignatures:

    MinibatchGraph
    EXPRESSIONS
    outputs

The curves themselves are declared in :mod:`experiments.records.curves`
(without Theano, so that the verdict and the report read them); a curve
computed per minibatch has an expression here (:data:`EXPRESSIONS`, the
project's, by name) or its own (``Curve.expression``, a plug-in's).  The
training function returns every such curve (computed with the parameters
before the update it applies), the validation function those with
``validation`` set; a run's history holds, per epoch, the mean of each over
the epoch's training minibatches under the curve's name, and over the
validation batches under ``val_`` + its name.  The first is the loss the
optimizer minimises.

Examples
--------
>>> from experiments.records import curves
>>> curves.train_names()
('loss', 'acc')
"""
import dataclasses

import compat  # noqa: F401  (Theano flags before theano)
import theano
import theano.tensor as T

from experiments.records import curves

__all__ = ["MinibatchGraph", "EXPRESSIONS", "CLIP", "outputs"]

#: Predictions are clipped to [CLIP, 1 - CLIP] before the logarithm, as in the original.
CLIP = 1e-7


@dataclasses.dataclass(frozen=True)
class MinibatchGraph:
    """What a curve's expression is made of, for one pass over a minibatch.

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


#: The expressions of the project's curves (:data:`experiments.records.curves.PROJECT`).
EXPRESSIONS = {"loss": _loss, "acc": _accuracy}


def outputs(graph, validation=False):
    """The expressions of the curves computed per minibatch for ``graph``, in the order
    of :func:`experiments.records.curves.train_names` (or ``val_names``)."""
    return [(curve.expression or EXPRESSIONS[curve.name])(graph)
            for curve in curves.declared()
            if curve.per_minibatch and (curve.validation or not validation)]
