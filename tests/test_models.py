"""The networks and the batch normalization layer, against hand counts and float64 NumPy.

Fast tier: architecture (layer by layer, against specs written out here), parameter
counts derived by hand, initialization, input checks, batch normalization against
NumPy, every model's deterministic output against a NumPy forward pass, dropout,
and a few AMSGrad steps on a fixed batch for the small models.  Slow tier: the
same steps for the two VGG networks (their gradient graphs take minutes to compile).
"""
import lasagne
import numpy as np
import pytest
import theano
import theano.tensor as T
from lasagne.layers import (Conv2DLayer, DenseLayer, DropoutLayer, GlobalPoolLayer,
                            InputLayer, LocalResponseNormalization2DLayer, MaxPool2DLayer,
                            NonlinearityLayer)
from lasagne.nonlinearities import identity, rectify, softmax
from numpy.lib.stride_tricks import sliding_window_view

import models
from amsgrad import amsgrad
from errors import UserError
from models import BatchNormLayer, batch_norm

MNIST, CIFAR = (1, 28, 28), (3, 32, 32)
FLOAT_X = theano.config.floatX


def seeded(seed=0):
    lasagne.random.set_rng(np.random.RandomState(seed))


# --- architecture, written out from the issue (independent of models/networks.py) ---

def conv(filters, size, pad=0, bias=False, relu=False):
    return "conv%dx%d/p%d%s%s" % (filters, size, pad, "+b" if bias else "",
                                  "/relu" if relu else "")


def bn_relu(filters, size, pad=0):
    """A convolution under batch_norm(): no bias, normalization, then ReLU."""
    return [conv(filters, size, pad), "bn", "relu"]


def describe(layer):
    """One short string per layer, in the vocabulary of the specs above."""
    if isinstance(layer, Conv2DLayer):
        assert layer.nonlinearity in (identity, rectify)
        pad = layer.pad if isinstance(layer.pad, str) else layer.pad[0]
        assert layer.filter_size[0] == layer.filter_size[1] and layer.stride == (1, 1)
        pad = 1 if pad == "same" and layer.filter_size[0] == 3 else pad
        return conv(layer.num_filters, layer.filter_size[0], pad, layer.b is not None,
                    layer.nonlinearity is rectify)
    if isinstance(layer, DenseLayer):
        name = {rectify: "relu", softmax: "softmax", identity: ""}[layer.nonlinearity]
        return "dense%d%s/%s" % (layer.num_units, "+b" if layer.b is not None else "", name)
    if isinstance(layer, BatchNormLayer):
        assert layer.axes == (0, 2, 3) and layer.epsilon == 1e-4 and layer.alpha == 0.1
        return "bn"
    if isinstance(layer, NonlinearityLayer):
        return {rectify: "relu", softmax: "softmax"}[layer.nonlinearity]
    if isinstance(layer, MaxPool2DLayer):
        assert layer.pool_size == layer.stride and layer.ignore_border
        return "pool%d" % layer.pool_size[0]
    if isinstance(layer, DropoutLayer):
        assert layer.rescale
        return "dropout%g" % layer.p
    if isinstance(layer, LocalResponseNormalization2DLayer):
        return "lrn(%g,%g,%g,%d)" % (layer.alpha, layer.k, layer.beta, layer.n)
    if isinstance(layer, GlobalPoolLayer):
        assert layer.pool_function is T.mean
        return "global_mean"
    if isinstance(layer, InputLayer):
        return "input%s" % (layer.shape,)
    raise AssertionError("unexpected layer %r" % layer)


def vgg_block(filters, convs, dropout):
    layers = sum((bn_relu(filters, 3, pad=1) for _ in range(convs)), [])
    return layers + ["pool2", "dropout%g" % dropout]


SPECS = {
    "logreg": ["input(None, 1, 28, 28)", "dense10+b/softmax"],
    "ffnn": ["input(None, 1, 28, 28)", "dense100+b/relu", "dense10+b/softmax"],
    "cifarnet": (["input(None, 3, 32, 32)"]
                 + [conv(64, 6, bias=True, relu=True), "lrn(0.0001,2,0.75,5)", "pool2"] * 2
                 + ["dense384+b/relu", "dropout0.5", "dense192+b/relu", "dense10+b/softmax"]),
    "small_vgg": (["input(None, 3, 32, 32)"] + vgg_block(32, 2, 0.25) + vgg_block(64, 2, 0.25)
                  + vgg_block(128, 2, 0.25) + bn_relu(512, 3) + ["dropout0.5"]
                  + bn_relu(512, 1) + ["dropout0.5"] + bn_relu(10, 1)
                  + ["global_mean", "softmax"]),
    # The first convolution of the 128 block has its bias and ReLU and no batch norm.
    "vgg": (["input(None, 3, 32, 32)"] + vgg_block(64, 2, 0.25)
            + [conv(128, 3, pad=1, bias=True, relu=True)] + vgg_block(128, 1, 0.25)
            + vgg_block(256, 4, 0.25) + bn_relu(1024, 3) + ["dropout0.5"]
            + bn_relu(1024, 1) + ["dropout0.5"] + bn_relu(10, 1)
            + ["global_mean", "dense10+b/softmax"]),
}
SHAPE_OF = {"logreg": MNIST, "ffnn": MNIST, "cifarnet": CIFAR, "small_vgg": CIFAR,
            "vgg": CIFAR}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_architecture_is_the_specified_one(name):
    network = models.build(name, SHAPE_OF[name], 10)
    assert [describe(layer) for layer in lasagne.layers.get_all_layers(network)] == SPECS[name]
    assert network.output_shape == (None, 10)


# --- parameter counts, derived by hand ---

def n_conv(c_in, c_out, size, bias=True):
    return c_in * c_out * size * size + (c_out if bias else 0)


def n_dense(n_in, n_out):
    return n_in * n_out + n_out


def counts(weights, bn_channels):
    """(trainable, total): batch norm trains beta and gamma, keeps mean and inv_std."""
    bn = sum(bn_channels)
    return weights + 2 * bn, weights + 4 * bn


# cifarnet on 32x32: 32 -conv6-> 27 -pool-> 13 -conv6-> 8 -pool-> 4, so 64 * 4 * 4 inputs
# to the first dense layer; on 28x28: 28 -> 23 -> 11 -> 6 -> 3.
CIFARNET_CIFAR10 = (n_conv(3, 64, 6) + n_conv(64, 64, 6) + n_dense(64 * 4 * 4, 384)
                    + n_dense(384, 192) + n_dense(192, 10))
SMALL_VGG_BN = [32, 32, 64, 64, 128, 128, 512, 512, 10]
VGG_BN = [64, 64, 128, 256, 256, 256, 256, 1024, 1024, 10]  # not the first 128 conv
EXPECTED_COUNTS = {
    ("logreg", MNIST, 10): counts(n_dense(784, 10), []),
    ("logreg", CIFAR, 10): counts(n_dense(3072, 10), []),
    ("ffnn", MNIST, 10): counts(n_dense(784, 100) + n_dense(100, 10), []),
    ("ffnn", MNIST, 3): counts(n_dense(784, 100) + n_dense(100, 3), []),
    ("cifarnet", CIFAR, 10): counts(CIFARNET_CIFAR10, []),
    ("cifarnet", MNIST, 10): counts(n_conv(1, 64, 6) + n_conv(64, 64, 6) + n_dense(576, 384)
                                    + n_dense(384, 192) + n_dense(192, 10), []),
    ("small_vgg", CIFAR, 10): counts(
        sum(n_conv(c_in, c_out, 3, bias=False) for c_in, c_out in
            [(3, 32), (32, 32), (32, 64), (64, 64), (64, 128), (128, 128), (128, 512)])
        + n_conv(512, 512, 1, bias=False) + n_conv(512, 10, 1, bias=False), SMALL_VGG_BN),
    ("vgg", CIFAR, 10): counts(
        n_conv(3, 64, 3, bias=False) + n_conv(64, 64, 3, bias=False) + n_conv(64, 128, 3)
        + n_conv(128, 128, 3, bias=False) + n_conv(128, 256, 3, bias=False)
        + 3 * n_conv(256, 256, 3, bias=False) + n_conv(256, 1024, 3, bias=False)
        + n_conv(1024, 1024, 1, bias=False) + n_conv(1024, 10, 1, bias=False)
        + n_dense(10, 10), VGG_BN),
}


@pytest.mark.parametrize("name, input_shape, num_classes", sorted(EXPECTED_COUNTS))
def test_parameter_counts(name, input_shape, num_classes):
    network = models.build(name, input_shape, num_classes)
    trainable, total = EXPECTED_COUNTS[name, input_shape, num_classes]
    assert lasagne.layers.count_params(network, trainable=True) == trainable
    assert lasagne.layers.count_params(network) == total


def test_cifarnet_has_the_papers_parameter_count():
    assert CIFARNET_CIFAR10 == 623946  # the hand count above is the published one
    assert lasagne.layers.count_params(models.build("cifarnet", CIFAR, 10)) == 623946


# --- initialization ---

def test_weights_are_reproducible_from_lasagnes_rng():
    def values(seed):
        seeded(seed)
        return lasagne.layers.get_all_param_values(models.build("cifarnet", CIFAR, 10))

    first, again, other = values(1), values(1), values(2)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])


# Initialization of every weight layer, written from the original's definitions: cifarnet's
# and small_vgg's ``HeNormal('relu')`` (std sqrt(2 / fan_in)); the vgg of the first commit,
# which wrote the vgg logs, ``HeNormal()`` (gain 1); Lasagne's default Glorot-uniform
# (U(-a, a), a = sqrt(6 / (fan_in + fan_out))) for the dense layers that name no W.
RELU_GAIN = np.sqrt(2)
HE_RELU, HE_1, GLOROT = ("he", RELU_GAIN), ("he", 1.0), ("glorot", 1.0)
SMALL_VGG_CONVS = ["conv%d_%d" % (b, c) for b in (1, 2, 3) for c in (1, 2)] + [
    "conv4", "conv5", "conv6"]
VGG_CONVS = ["conv1_1", "conv1_2", "conv2_1", "conv2_2"] + [
    "conv3_%d" % c for c in (1, 2, 3, 4)] + ["conv4", "conv5", "conv6"]
INITIALIZATION = {
    "logreg": {"output": GLOROT},
    "ffnn": {"hidden": GLOROT, "output": GLOROT},
    "cifarnet": {name: HE_RELU for name in ("conv1", "conv2", "fc1", "fc2", "output")},
    "small_vgg": {name: HE_RELU for name in SMALL_VGG_CONVS},
    "vgg": dict({name: HE_1 for name in VGG_CONVS}, output=GLOROT),
}


def _fans(weights):
    if weights.ndim == 4:  # (out, in, h, w)
        receptive = np.prod(weights.shape[2:])
        return weights.shape[1] * receptive, weights.shape[0] * receptive
    return weights.shape  # dense: (in, out)


@pytest.mark.parametrize("name", sorted(INITIALIZATION))
def test_every_weight_layer_is_initialized_as_in_the_original(name):
    seeded(3)
    network = models.build(name, SHAPE_OF[name], 10)
    layers = [l for l in lasagne.layers.get_all_layers(network) if hasattr(l, "W")]
    assert sorted(l.name for l in layers) == sorted(INITIALIZATION[name])
    for layer in layers:
        kind, gain = INITIALIZATION[name][layer.name]
        weights = layer.W.get_value().astype(np.float64)
        fan_in, fan_out = _fans(weights)
        if kind == "he":
            expected_std = gain / np.sqrt(fan_in)
        else:
            limit = gain * np.sqrt(6.0 / (fan_in + fan_out))
            assert np.abs(weights).max() <= limit * (1 + 1e-6), layer.name
            expected_std = limit / np.sqrt(3)
        # The standard error of a sample standard deviation is at most std * sqrt(1 / n)
        # (normal: sqrt(1 / 2n)); 6 of them tell sqrt(2) from 1 for every layer here.
        assert abs(weights.std() / expected_std - 1) < 6 / np.sqrt(weights.size), layer.name
        assert abs(weights.mean()) < 6 * expected_std / np.sqrt(weights.size), layer.name
        if layer.b is not None:
            assert not layer.b.get_value().any(), layer.name
    for layer in lasagne.layers.get_all_layers(network):
        if isinstance(layer, BatchNormLayer):  # gamma 1, beta 0, averages at identity
            assert (layer.gamma.get_value() == 1).all() and not layer.beta.get_value().any()
            assert not layer.mean.get_value().any() and (layer.inv_std.get_value() == 1).all()


# --- bad input ---

def test_unknown_model_lists_the_accepted_names():
    with pytest.raises(UserError, match="unknown model 'resnet'.*logreg, ffnn, cifarnet, "
                                        "small_vgg, vgg"):
        models.build("resnet", CIFAR, 10)


def side_after(name, size):
    """Image side where the spatial part of the network ends, derived from the issue."""
    if name == "cifarnet":  # (conv 6x6 valid, pool 2) twice
        return ((size - 5) // 2 - 5) // 2
    if name in ("small_vgg", "vgg"):  # 'same' convs, three pools of 2, then a 3x3 valid conv
        return size // 2 // 2 // 2 - 2
    return size  # dense networks flatten any image


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_smallest_accepted_image_is_the_smallest_that_fits(name):
    smallest = min(size for size in range(1, 100) if side_after(name, size) >= 1)
    assert models.MIN_IMAGE_SIZE[name] == smallest
    network = models.build(name, (2, smallest, smallest + 3), 4)
    assert network.output_shape == (None, 4)
    assert all(all(s is None or s > 0 for s in layer.output_shape)
               for layer in lasagne.layers.get_all_layers(network))
    if smallest > 1:
        for shape in [(2, smallest - 1, smallest), (2, smallest, smallest - 1)]:
            with pytest.raises(UserError, match=r"%s cannot take .*need at least %dx%d.*"
                                                r"logreg >= 1x1.*vgg >= 24x24"
                                                % (name, smallest, smallest)):
                models.build(name, shape, 4)


@pytest.mark.parametrize("input_shape, num_classes, message", [
    ((28, 28), 10, "input_shape must be"),
    ((1, 28, 28, 1), 10, "input_shape must be"),
    ((1, 0, 28), 10, "input_shape must be"),
    ((1, 28.0, 28), 10, "input_shape must be"),
    ("1x28x28", 10, "input_shape must be"),
    (None, 10, "input_shape must be"),
    (MNIST, 1, "num_classes must be an integer >= 2"),
    (MNIST, 2.5, "num_classes must be an integer >= 2"),
    (MNIST, True, "num_classes must be an integer >= 2"),
])
def test_bad_shapes_and_class_counts_are_user_errors(input_shape, num_classes, message):
    with pytest.raises(UserError, match=message):
        models.build("ffnn", input_shape, num_classes)


def test_numpy_integers_are_accepted_and_errors_draw_no_weights():
    assert models.build("logreg", np.array(MNIST), np.int64(10)).output_shape == (None, 10)
    rng = np.random.RandomState(5)
    lasagne.random.set_rng(rng)
    key, position = rng.get_state()[1:3]
    with pytest.raises(UserError):
        models.build("vgg", (3, 16, 16), 10)
    assert rng.get_state()[2] == position and np.array_equal(rng.get_state()[1], key)
    models.build("logreg", MNIST, 10)  # whereas a build draws from it
    assert rng.get_state()[2] != position


# --- batch normalization against NumPy ---

def numpy_batch_norm(x, beta, gamma, mean=None, inv_std=None, epsilon=1e-4):
    """Float64 batch norm over all axes but the second; batch statistics if mean is None."""
    x = x.astype(np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    shape = [1, -1] + [1] * (x.ndim - 2)
    if mean is None:
        mean, inv_std = x.mean(axes), 1 / np.sqrt(x.var(axes) + epsilon)
    return ((x - mean.reshape(shape)) * (gamma * inv_std).reshape(shape)
            + beta.reshape(shape))


@pytest.fixture
def bn_layer():
    rng = np.random.RandomState(7)
    layer = BatchNormLayer(InputLayer((None, 3, 4, 5)))
    for param, value in [(layer.beta, rng.randn(3)), (layer.gamma, rng.rand(3) + 0.5),
                         (layer.mean, rng.randn(3)), (layer.inv_std, rng.rand(3) + 0.5)]:
        param.set_value(value.astype(FLOAT_X))
    x = (rng.randn(6, 3, 4, 5) * [[[[2.0]], [[0.5]], [[3.0]]]] + 1.5).astype(FLOAT_X)
    return layer, x


def test_batch_norm_training_pass_uses_batch_statistics_and_moves_averages(bn_layer):
    layer, x = bn_layer
    inputs = T.tensor4("x")
    train_fn = theano.function([inputs], lasagne.layers.get_output(layer, inputs))
    beta, gamma, mean, inv_std = (p.get_value().astype(np.float64)
                                  for p in (layer.beta, layer.gamma, layer.mean, layer.inv_std))
    batch = x.astype(np.float64)
    batch_mean, batch_inv_std = batch.mean((0, 2, 3)), 1 / np.sqrt(batch.var((0, 2, 3)) + 1e-4)

    np.testing.assert_allclose(train_fn(x), numpy_batch_norm(x, beta, gamma),
                               rtol=1e-4, atol=1e-5)
    # The default updates of the compiled function moved the layer's own averages.
    np.testing.assert_allclose(layer.mean.get_value(), 0.9 * mean + 0.1 * batch_mean, rtol=1e-5)
    np.testing.assert_allclose(layer.inv_std.get_value(), 0.9 * inv_std + 0.1 * batch_inv_std,
                               rtol=1e-5)
    train_fn(x)
    np.testing.assert_allclose(layer.mean.get_value(), 0.81 * mean + 0.19 * batch_mean,
                               rtol=1e-5)


def test_batch_norm_deterministic_pass_uses_and_keeps_the_averages(bn_layer):
    layer, x = bn_layer
    inputs = T.tensor4("x")
    val_fn = theano.function([inputs],
                             lasagne.layers.get_output(layer, inputs, deterministic=True))
    params = [p.get_value().astype(np.float64)
              for p in (layer.beta, layer.gamma, layer.mean, layer.inv_std)]
    np.testing.assert_allclose(val_fn(x), numpy_batch_norm(x, *params), rtol=1e-5, atol=1e-5)
    val_fn(x)
    assert np.array_equal(layer.mean.get_value(), params[2].astype(FLOAT_X))
    assert np.array_equal(layer.inv_std.get_value(), params[3].astype(FLOAT_X))


def test_batch_norm_averages_update_beside_optimizer_updates(bn_layer):
    # The training function also has the optimizer's updates: both must apply.
    layer, x = bn_layer
    inputs = T.tensor4("x")
    loss = T.sqr(lasagne.layers.get_output(layer, inputs) - 1).mean()
    params = lasagne.layers.get_all_params(layer, trainable=True)
    assert params == [layer.beta, layer.gamma]
    assert lasagne.layers.get_all_params(layer, trainable=False) == [layer.mean, layer.inv_std]
    beta, mean = layer.beta.get_value(), layer.mean.get_value()
    step = theano.function([inputs], loss, updates=amsgrad(loss, params, learning_rate=0.01))
    step(x)
    assert not np.allclose(layer.beta.get_value(), beta)
    batch_mean = x.astype(np.float64).mean((0, 2, 3))
    np.testing.assert_allclose(layer.mean.get_value(), 0.9 * mean + 0.1 * batch_mean, rtol=1e-5)


def test_theano_applies_default_updates_of_shared_variables():
    # The mechanism BatchNormLayer relies on, checked on its own.
    counter = theano.shared(np.float32(0))
    counter.default_update = counter + np.float32(2)
    fn = theano.function([], counter * 1)
    assert [fn(), fn()] == [0, 2] and counter.get_value() == 4
    theano.function([], counter * 1, no_default_updates=True)()
    assert counter.get_value() == 4


def test_batch_norm_wrapper_drops_the_bias_and_moves_the_nonlinearity():
    rng = np.random.RandomState(8)
    dense = DenseLayer(InputLayer((None, 5)), num_units=4, nonlinearity=rectify, name="fc")
    output = batch_norm(dense)
    assert dense.b is None and dense.nonlinearity is identity
    assert isinstance(output, NonlinearityLayer) and output.nonlinearity is rectify
    assert isinstance(output.input_layer, BatchNormLayer) and output.input_layer.name == "fc_bn"
    assert output.input_layer.axes == (0,)
    assert lasagne.layers.get_all_params(output, trainable=True) == [
        dense.W, output.input_layer.beta, output.input_layer.gamma]
    inputs = T.matrix("x")
    x = rng.randn(8, 5).astype(FLOAT_X)
    result = theano.function([inputs], lasagne.layers.get_output(output, inputs))(x)
    expected = np.maximum(numpy_batch_norm(x.astype(np.float64) @ dense.W.get_value(),
                                           np.zeros(4), np.ones(4)), 0)
    np.testing.assert_allclose(result, expected, rtol=1e-4, atol=1e-5)
    assert isinstance(batch_norm(DenseLayer((None, 5), 4, nonlinearity=identity)),
                      BatchNormLayer)


# --- the convolution layer that pads in the op ---

@pytest.mark.parametrize("pad, untie_biases", [(1, False), ((2, 1), True), (0, False)])
def test_conv_layer_equals_lasagnes_bit_for_bit_without_the_padding_copy(pad, untie_biases):
    from backends import compile_function
    from models.conv import Conv2DLayer as PaddingConv2DLayer
    seeded(11)
    x, gy = T.tensor4("x"), T.tensor4("gy")
    l_in = InputLayer((None, 5, 9, 8))
    theirs = Conv2DLayer(l_in, 6, 3, pad=pad, untie_biases=untie_biases, b=lasagne.init.Normal())
    ours = PaddingConv2DLayer(l_in, 6, 3, pad=pad, untie_biases=untie_biases, W=theirs.W,
                              b=theirs.b)
    assert ours.output_shape == theirs.output_shape
    functions = []
    for layer in (ours, theirs):
        y = lasagne.layers.get_output(layer, x)
        functions.append(compile_function(
            [x, gy], [y] + theano.grad((y * gy).sum(), [x, layer.W, layer.b]), backend="c"))
    ops = {type(node.op).__name__ for node in functions[0].maker.fgraph.toposort()}
    if pad != 0:
        assert not ops & {"Alloc", "IncSubtensor"}, ops  # no zero-padded copy
    rng = np.random.RandomState(12)
    x_value = rng.randn(7, 5, 9, 8).astype(FLOAT_X)
    gy_value = rng.randn(7, *ours.output_shape[1:]).astype(FLOAT_X)
    for got, want in zip(functions[0](x_value, gy_value), functions[1](x_value, gy_value)):
        np.testing.assert_array_equal(got, want)


# --- whole networks: deterministic forward pass against NumPy, dropout ---

def numpy_layer(layer, x):
    """Float64 NumPy version of one layer's deterministic output."""
    if isinstance(layer, Conv2DLayer):
        pad = (layer.filter_size[0] - 1) // 2 if layer.pad == "same" else layer.pad[0]
        x = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
        windows = sliding_window_view(x, layer.filter_size, axis=(2, 3))
        # Theano's conv2d flips the filters (a true convolution).
        weights = layer.W.get_value()[:, :, ::-1, ::-1].astype(np.float64)
        out = np.tensordot(windows, weights, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
        if layer.b is not None:
            out = out + layer.b.get_value()[None, :, None, None]
        return numpy_nonlinearity(layer.nonlinearity, out)
    if isinstance(layer, DenseLayer):
        out = x.reshape(len(x), -1) @ layer.W.get_value() + layer.b.get_value()
        return numpy_nonlinearity(layer.nonlinearity, out)
    if isinstance(layer, BatchNormLayer):
        return numpy_batch_norm(x, *(p.get_value().astype(np.float64) for p in
                                     (layer.beta, layer.gamma, layer.mean, layer.inv_std)))
    if isinstance(layer, NonlinearityLayer):
        return numpy_nonlinearity(layer.nonlinearity, x)
    if isinstance(layer, MaxPool2DLayer):
        n, c, h, w = x.shape
        x = x[:, :, :h // 2 * 2, :w // 2 * 2]
        return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
    if isinstance(layer, LocalResponseNormalization2DLayer):
        padded = np.pad(x ** 2, [(0, 0), (layer.n // 2, layer.n // 2), (0, 0), (0, 0)])
        sums = sum(padded[:, i:i + x.shape[1]] for i in range(layer.n))
        return x / (layer.k + layer.alpha * sums) ** layer.beta
    if isinstance(layer, GlobalPoolLayer):
        return x.mean(axis=(2, 3))
    if isinstance(layer, (DropoutLayer, InputLayer)):
        return x
    raise AssertionError("unexpected layer %r" % layer)


def numpy_nonlinearity(function, x):
    if function is rectify:
        return np.maximum(x, 0)
    if function is softmax:
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    assert function is identity
    return x


def random_batch_norm_statistics(network, rng):
    # Non-trivial running averages and scales, so the deterministic pass is tested.
    for layer in lasagne.layers.get_all_layers(network):
        if isinstance(layer, BatchNormLayer):
            size = layer.mean.get_value().shape
            layer.beta.set_value(rng.uniform(-0.5, 0.5, size).astype(FLOAT_X))
            layer.gamma.set_value(rng.uniform(0.5, 1.5, size).astype(FLOAT_X))
            layer.mean.set_value(rng.uniform(-0.5, 0.5, size).astype(FLOAT_X))
            layer.inv_std.set_value(rng.uniform(0.5, 2.0, size).astype(FLOAT_X))


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_deterministic_output_matches_numpy_and_is_a_probability(name):
    rng = np.random.RandomState(9)
    seeded(9)
    network = models.build(name, SHAPE_OF[name], 10)
    random_batch_norm_statistics(network, rng)
    x = rng.rand(3, *SHAPE_OF[name]).astype(FLOAT_X)
    inputs = T.tensor4("x")
    predict = theano.function([inputs],
                              lasagne.layers.get_output(network, inputs, deterministic=True))
    probabilities = predict(x)

    expected = x.astype(np.float64)
    for layer in lasagne.layers.get_all_layers(network):
        expected = numpy_layer(layer, expected)
    assert probabilities.dtype == FLOAT_X and probabilities.shape == (3, 10)
    assert (probabilities >= 0).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(probabilities, expected, rtol=1e-3, atol=1e-6)
    # Dropout off: the same input gives the same output again.
    assert np.array_equal(predict(x), probabilities)


def test_dropout_is_on_in_training_passes_only():
    seeded(10)
    network = models.build("cifarnet", CIFAR, 10)
    x = np.random.RandomState(10).rand(4, *CIFAR).astype(FLOAT_X)
    inputs = T.tensor4("x")
    hidden = next(l for l in lasagne.layers.get_all_layers(network) if l.name == "dropout")
    outputs = [lasagne.layers.get_output(hidden, inputs, deterministic=d) for d in (False, True)]
    train_fn, val_fn = (theano.function([inputs], out) for out in outputs)
    first, second, clean = train_fn(x), train_fn(x), val_fn(x)
    assert not np.array_equal(first, second)  # a new mask each call
    active = clean > 0
    dropped = (first == 0) & active
    assert 0.4 < dropped.sum() / active.sum() < 0.6  # p = 0.5 of the units
    np.testing.assert_allclose(first[active & ~dropped], 2 * clean[active & ~dropped],
                               rtol=1e-5)  # survivors rescaled by 1 / (1 - p)


# --- a few AMSGrad steps reduce the loss on a fixed batch ---

def fit_fixed_batch(name, steps=8, batch_size=8, learning_rate=0.003):
    """Train on one batch; return the losses before and after, and the network."""
    rng = np.random.RandomState(11)
    seeded(11)
    network = models.build(name, SHAPE_OF[name], 10)
    x = rng.rand(batch_size, *SHAPE_OF[name]).astype(FLOAT_X)
    y = rng.randint(0, 10, batch_size).astype("int32")
    inputs, targets = T.tensor4("x"), T.ivector("y")

    def loss(**kwargs):
        prediction = lasagne.layers.get_output(network, inputs, **kwargs)
        return T.nnet.categorical_crossentropy(T.clip(prediction, 1e-7, 1 - 1e-7),
                                               targets).mean()

    params = lasagne.layers.get_all_params(network, trainable=True)
    train_fn = theano.function([inputs, targets], loss(), updates=amsgrad(
        loss(), params, learning_rate=learning_rate))
    # The objective without dropout noise: dropout off, batch norm on batch statistics.
    objective = theano.function([inputs, targets],
                                loss(deterministic=True, batch_norm_use_averages=False))
    before = objective(x, y)
    for _ in range(steps):
        train_fn(x, y)
    return before, objective(x, y), network


def check_fit(name):
    before, after, network = fit_fixed_batch(name)
    assert np.isfinite(after) and after < 0.8 * before, (before, after)
    for layer in lasagne.layers.get_all_layers(network):
        if isinstance(layer, BatchNormLayer):  # the training function moved the averages
            assert np.abs(layer.mean.get_value()).max() > 0


@pytest.mark.parametrize("name", ["logreg", "ffnn", "cifarnet"])
def test_amsgrad_reduces_the_loss_on_a_fixed_batch(name):
    check_fit(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["small_vgg", "vgg"])
def test_amsgrad_reduces_the_loss_on_a_fixed_batch_vgg(name):
    check_fit(name)
