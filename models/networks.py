"""
The five networks of the original experiments, as Lasagne layer graphs.

Each builder takes the input shape ``(C, H, W)`` and the number of classes and
returns the output layer, a softmax over the classes:

.. autosummary::
    :nosignatures:

    logreg
    ffnn
    cifarnet
    small_vgg
    vgg

Random weights are drawn from ``lasagne.random.get_rng()`` (dropout masks are
seeded from it too), so ``lasagne.random.set_rng(np.random.RandomState(seed))``
before building makes a network reproducible.  A builder raises
:class:`errors.UserError` for an input shape it cannot take (images too small
for its pooling and unpadded convolutions) or a bad number of classes, before
it draws any weight.

Examples
--------
>>> import compat  # noqa: F401
>>> import lasagne
>>> from models.networks import cifarnet
>>> network = cifarnet((3, 32, 32), 10)
>>> network.output_shape
(None, 10)
>>> lasagne.layers.count_params(network)
623946
"""
import numbers

import compat  # noqa: F401  (Theano flags and Lasagne shims before lasagne)
from lasagne.init import Constant, HeNormal
from lasagne.layers import (DenseLayer, DropoutLayer, GlobalPoolLayer, InputLayer,
                            MaxPool2DLayer, NonlinearityLayer)
from lasagne.nonlinearities import rectify, softmax

from errors import UserError
from models.batch_norm import batch_norm
from models.conv import Conv2DLayer
from models.lrn import LocalResponseNormLayer

__all__ = ["logreg", "ffnn", "cifarnet", "small_vgg", "vgg", "MIN_IMAGE_SIZE"]

#: Smallest image height and width each network can take (see the builders' Notes).
MIN_IMAGE_SIZE = {"logreg": 1, "ffnn": 1, "cifarnet": 19, "small_vgg": 24, "vgg": 24}


def _input_layer(name, input_shape, num_classes):
    """Check the input shape and number of classes; return the input layer."""
    if (isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__len__")
            or len(input_shape) != 3
            or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0
                       for s in input_shape)):
        raise UserError("%s: input_shape must be (channels, height, width), three positive "
                        "integers, got %r" % (name, input_shape))
    if (isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral)
            or num_classes < 2):
        raise UserError("%s: num_classes must be an integer >= 2, got %r" % (name, num_classes))
    channels, height, width = (int(s) for s in input_shape)
    min_size = MIN_IMAGE_SIZE[name]
    if height < min_size or width < min_size:
        accepted = ", ".join("%s >= %dx%d" % (model, size, size)
                             for model, size in MIN_IMAGE_SIZE.items())
        raise UserError("%s cannot take %dx%d images (its pooling and unpadded convolutions "
                        "need at least %dx%d); choose a network that fits: %s"
                        % (name, height, width, min_size, min_size, accepted))
    return InputLayer((None, channels, height, width), name="input")


def logreg(input_shape, num_classes):
    """Multinomial logistic regression: one dense softmax layer.

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, H, W)`` of one input image
    num_classes : int
        Number of classes (>= 2)

    Returns
    -------
    lasagne.layers.Layer
        The output layer, class probabilities of shape ``(None, num_classes)``

    Notes
    -----
    Weights Glorot-uniform (Lasagne's default), bias 0.  The paper's MNIST
    logistic regression.
    """
    network = _input_layer("logreg", input_shape, num_classes)
    return DenseLayer(network, num_units=num_classes, b=Constant(0.), nonlinearity=softmax,
                      name="output")


def ffnn(input_shape, num_classes):
    """Feed-forward network with one hidden layer of 100 rectified linear units.

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, H, W)`` of one input image
    num_classes : int
        Number of classes (>= 2)

    Returns
    -------
    lasagne.layers.Layer
        The output layer, class probabilities of shape ``(None, num_classes)``

    Notes
    -----
    Lasagne's default initialization (Glorot-uniform weights, zero biases).
    The paper's MNIST network [1]_.

    References
    ----------
    .. [1] Reddi, Sashank J., Satyen Kale, and Sanjiv Kumar (2018):
           On the Convergence of Adam and Beyond. ICLR 2018.
    """
    network = _input_layer("ffnn", input_shape, num_classes)
    network = DenseLayer(network, num_units=100, nonlinearity=rectify, name="hidden")
    return DenseLayer(network, num_units=num_classes, nonlinearity=softmax, name="output")


def cifarnet(input_shape, num_classes):
    """The paper's CIFAR-10 convolutional network ("CIFARNET").

    Two blocks of convolution (64 filters of 6x6, unpadded, ReLU), local
    response normalization and 2x2 max-pooling, then dense layers of 384 and
    192 rectified units with dropout 0.5 between them, and a softmax layer.

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, H, W)`` of one input image, H and W at least 19
    num_classes : int
        Number of classes (>= 2)

    Returns
    -------
    lasagne.layers.Layer
        The output layer, class probabilities of shape ``(None, num_classes)``

    Notes
    -----
    All weights He-normal with the ReLU gain :math:`\\sqrt{2}`, biases 0.
    Local response normalization with Lasagne's defaults (``alpha=1e-4,
    k=2, beta=0.75, n=5``), Lasagne's layer computed by one op
    (:class:`models.lrn.LocalResponseNormLayer`).  623,946 parameters for CIFAR-10.

    A side of size s becomes ``((s - 5) // 2 - 5) // 2`` before the dense
    layers, which is at least 1 for s >= 19.
    """
    network = _input_layer("cifarnet", input_shape, num_classes)
    weights = HeNormal(gain='relu')
    for block in (1, 2):
        network = Conv2DLayer(network, num_filters=64, filter_size=6, pad=0, W=weights,
                              b=Constant(0.), nonlinearity=rectify, name="conv%d" % block)
        network = LocalResponseNormLayer(network, name="lrn%d" % block)
        network = MaxPool2DLayer(network, pool_size=2, name="pool%d" % block)
    network = DenseLayer(network, num_units=384, W=weights, b=Constant(0.),
                         nonlinearity=rectify, name="fc1")
    network = DropoutLayer(network, p=0.5, name="dropout")
    network = DenseLayer(network, num_units=192, W=weights, b=Constant(0.),
                         nonlinearity=rectify, name="fc2")
    return DenseLayer(network, num_units=num_classes, W=weights, b=Constant(0.),
                      nonlinearity=softmax, name="output")


def _conv_bn_relu(network, num_filters, filter_size, name, gain, pad=0):
    # A convolution without bias, batch normalization, then ReLU (Lasagne's batch_norm
    # moves the nonlinearity behind the normalization and drops the bias).
    network = Conv2DLayer(network, num_filters=num_filters, filter_size=filter_size, pad=pad,
                          W=HeNormal(gain=gain), nonlinearity=rectify, name=name)
    return batch_norm(network)


#: He-normal gains of the convolutions, as in the code that wrote the original logs:
#: small_vgg has always used ``HeNormal('relu')``; the vgg logs come from the first
#: commit, whose vgg used ``HeNormal()`` (gain 1; later commits switched to 'relu').
SMALL_VGG_GAIN = "relu"
VGG_GAIN = 1.0


def small_vgg(input_shape, num_classes):
    """A small VGG-style network with batch normalization and global average pooling.

    Three blocks of two 3x3 convolutions (32, 64 and 128 filters, padded to
    keep the size), each with batch normalization and ReLU, each block
    followed by 2x2 max-pooling and dropout 0.25; a 3x3 unpadded convolution
    of 512 filters (dropout 0.5), a 1x1 convolution of 512 filters (dropout
    0.5) and a 1x1 convolution of one filter per class, all with batch
    normalization and ReLU; global average pooling and softmax.

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, H, W)`` of one input image, H and W at least 24
    num_classes : int
        Number of classes (>= 2)

    Returns
    -------
    lasagne.layers.Layer
        The output layer, class probabilities of shape ``(None, num_classes)``

    Notes
    -----
    Convolution weights He-normal with the ReLU gain :math:`\\sqrt{2}`, as in
    every version of the original ``small_vgg`` (std :math:`\\sqrt{2 / fan_{in}}`);
    no convolution has a bias (batch normalization's :math:`\\beta` replaces
    it).  The 3x3 convolutions are padded by 1 pixel, which equals Lasagne's
    ``pad='same'`` and runs faster in Lasagne 0.1 ('same' computes a full
    convolution and crops it).

    A side of size s becomes ``s // 8 - 2`` after the unpadded convolution,
    which is at least 1 for s >= 24.
    """
    network = _input_layer("small_vgg", input_shape, num_classes)
    for block, num_filters in enumerate((32, 64, 128), start=1):
        for conv in (1, 2):
            network = _conv_bn_relu(network, num_filters, 3, "conv%d_%d" % (block, conv),
                                    SMALL_VGG_GAIN, pad=1)
        network = MaxPool2DLayer(network, pool_size=2, name="pool%d" % block)
        network = DropoutLayer(network, p=0.25, name="dropout%d" % block)
    network = _conv_bn_relu(network, 512, 3, "conv4", SMALL_VGG_GAIN)
    network = DropoutLayer(network, p=0.5, name="dropout4")
    network = _conv_bn_relu(network, 512, 1, "conv5", SMALL_VGG_GAIN)
    network = DropoutLayer(network, p=0.5, name="dropout5")
    network = _conv_bn_relu(network, num_classes, 1, "conv6", SMALL_VGG_GAIN)
    network = GlobalPoolLayer(network, name="global_pool")
    return NonlinearityLayer(network, nonlinearity=softmax, name="output")


def vgg(input_shape, num_classes):
    """The VGG-style network of the original experiments' code.

    Blocks of 3x3 convolutions padded by 1 (2x64, 2x128, 4x256 filters), each
    block followed by 2x2 max-pooling and dropout 0.25; a 3x3 unpadded
    convolution of 1024 filters and a 1x1 one of 1024 filters, each followed
    by dropout 0.5; a 1x1 convolution of one filter per class; global average
    pooling; a dense softmax layer.  All convolutions have ReLU and batch
    normalization, except the first of the 128-filter block, which has no
    batch normalization (as the original code has it).

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, H, W)`` of one input image, H and W at least 24
    num_classes : int
        Number of classes (>= 2)

    Returns
    -------
    lasagne.layers.Layer
        The output layer, class probabilities of shape ``(None, num_classes)``

    Notes
    -----
    Convolution weights He-normal with gain 1 (the original's ``HeNormal()``),
    the dense layer Glorot-uniform (Lasagne's default); biases 0, and none
    on the convolutions followed by batch normalization.  Gain 1 is right
    here although the original's final ``vgg`` uses the ReLU gain: the vgg
    logs carry the configuration format of the original's first commit (no
    ``l2`` or ``no_annealing`` keys), and that commit's ``vgg`` used gain 1
    (``reference/README.md``).  Do not "fix" it to match ``small_vgg``.

    A side of size s becomes ``s // 8 - 2`` after the unpadded convolution,
    which is at least 1 for s >= 24.
    """
    network = _input_layer("vgg", input_shape, num_classes)
    network = _conv_bn_relu(network, 64, 3, "conv1_1", VGG_GAIN, pad=1)
    network = _conv_bn_relu(network, 64, 3, "conv1_2", VGG_GAIN, pad=1)
    network = MaxPool2DLayer(network, pool_size=2, name="pool1")
    network = DropoutLayer(network, p=0.25, name="dropout1")
    network = Conv2DLayer(network, num_filters=128, filter_size=3, pad=1,
                          W=HeNormal(gain=VGG_GAIN), nonlinearity=rectify, name="conv2_1")
    network = _conv_bn_relu(network, 128, 3, "conv2_2", VGG_GAIN, pad=1)
    network = MaxPool2DLayer(network, pool_size=2, name="pool2")
    network = DropoutLayer(network, p=0.25, name="dropout2")
    for conv in (1, 2, 3, 4):
        network = _conv_bn_relu(network, 256, 3, "conv3_%d" % conv, VGG_GAIN, pad=1)
    network = MaxPool2DLayer(network, pool_size=2, name="pool3")
    network = DropoutLayer(network, p=0.25, name="dropout3")
    network = _conv_bn_relu(network, 1024, 3, "conv4", VGG_GAIN)
    network = DropoutLayer(network, p=0.5, name="dropout4")
    network = _conv_bn_relu(network, 1024, 1, "conv5", VGG_GAIN)
    network = DropoutLayer(network, p=0.5, name="dropout5")
    network = _conv_bn_relu(network, num_classes, 1, "conv6", VGG_GAIN)
    network = GlobalPoolLayer(network, name="global_pool")
    return DenseLayer(network, num_units=num_classes, nonlinearity=softmax, name="output")
