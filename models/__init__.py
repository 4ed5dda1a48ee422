"""
The networks of the experiments, and the layers Lasagne 0.1 lacks.

.. autosummary::
    :nosignatures:

    build
    MODELS

``MODELS`` maps each setup's network name to its builder ``f(input_shape,
num_classes)`` in :mod:`models.networks`; :mod:`models.batch_norm` has
:class:`~models.batch_norm.BatchNormLayer` and
:func:`~models.batch_norm.batch_norm` (a training pass is one op with C code,
:mod:`ops.batch_norm`); :mod:`models.lrn` has CifarNet's local
response normalization as one op with C code,
:class:`~models.lrn.LocalResponseNormLayer`; :mod:`models.conv` has Lasagne's
convolution layer padded by the convolution op.

Examples
--------
>>> import compat  # noqa: F401
>>> import lasagne
>>> import numpy as np
>>> import models
>>> lasagne.random.set_rng(np.random.RandomState(0))  # weights are drawn from it
>>> network = models.build("ffnn", (1, 28, 28), 10)
>>> network.output_shape
(None, 10)
>>> sorted(models.MODELS)
['cifarnet', 'ffnn', 'logreg', 'small_vgg', 'vgg']
"""
from errors import UserError
from models.batch_norm import BatchNormLayer, batch_norm
from models.networks import MIN_IMAGE_SIZE, cifarnet, ffnn, logreg, small_vgg, vgg

__all__ = ["build", "MODELS", "MIN_IMAGE_SIZE", "BatchNormLayer", "batch_norm"]

#: Network name -> builder ``f(input_shape, num_classes)`` returning the output layer.
MODELS = {"logreg": logreg, "ffnn": ffnn, "cifarnet": cifarnet, "small_vgg": small_vgg,
          "vgg": vgg}


def build(name, input_shape, num_classes):
    """Build a network by name.

    Parameters
    ----------
    name : str
        One of ``MODELS``: logreg, ffnn, cifarnet, small_vgg, vgg
    input_shape : tuple of int
        ``(C, H, W)`` of one input image
    num_classes : int
        Number of classes (>= 2)

    Returns
    -------
    lasagne.layers.Layer
        The output layer: class probabilities of shape ``(None, num_classes)``

    Raises
    ------
    errors.UserError
        For an unknown name, or an input shape or number of classes the
        network cannot take (the message lists what is accepted)
    """
    if not isinstance(name, str) or name not in MODELS:
        raise UserError("unknown model %r; choose one of: %s" % (name, ", ".join(MODELS)))
    return MODELS[name](input_shape, num_classes)
