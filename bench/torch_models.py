"""
The five networks of :mod:`models.networks` in PyTorch, for timing against them.

.. autosummary::
    :nosignatures:

    build
    train_step

Layer for layer the same shapes, parameters and operations as the Lasagne
networks (convolutions with or without bias, batch normalisation with
Lasagne's ``epsilon=1e-4`` and ``alpha=0.1``, local response normalisation,
max-pooling, dropout, global average pooling), trained with
``torch.optim.Adam(amsgrad=True)``.  Only for :mod:`bench`: the weights'
initialisation is PyTorch's, which changes no timing.  PyTorch is an optional,
benchmark-only dependency.

Examples
--------
>>> import torch_models            # doctest: +SKIP
>>> net = torch_models.build("cifarnet", (3, 32, 32), 10)   # doctest: +SKIP
>>> sum(p.numel() for p in net.parameters())  # doctest: +SKIP
623946
"""
import torch
from torch import nn

__all__ = ["build", "train_step", "make_optimizer"]


def _conv_bn_relu(in_channels, out_channels, size, pad=0):
    # Lasagne's batch_norm(): the convolution loses its bias, BN then ReLU.
    return [nn.Conv2d(in_channels, out_channels, size, padding=pad, bias=False),
            nn.BatchNorm2d(out_channels, eps=1e-4, momentum=0.1), nn.ReLU()]


def _lrn():
    # Lasagne divides by (k + alpha * sum of squares)^beta, PyTorch by
    # (k + alpha / n * sum)^beta: alpha scaled by n = 5.
    return nn.LocalResponseNorm(5, alpha=1e-4 * 5, beta=0.75, k=2)


def _logreg(channels, side, num_classes):
    return [nn.Flatten(), nn.Linear(channels * side * side, num_classes)]


def _ffnn(channels, side, num_classes):
    return [nn.Flatten(), nn.Linear(channels * side * side, 100), nn.ReLU(),
            nn.Linear(100, num_classes)]


def _cifarnet(channels, side, num_classes):
    layers = []
    for block in (1, 2):
        layers += [nn.Conv2d(channels if block == 1 else 64, 64, 6), nn.ReLU(), _lrn(),
                   nn.MaxPool2d(2)]
        side = (side - 5) // 2
    return layers + [nn.Flatten(), nn.Linear(64 * side * side, 384), nn.ReLU(), nn.Dropout(0.5),
                     nn.Linear(384, 192), nn.ReLU(), nn.Linear(192, num_classes)]


def _small_vgg(channels, side, num_classes):
    layers, previous = [], channels
    for filters in (32, 64, 128):
        layers += _conv_bn_relu(previous, filters, 3, 1) + _conv_bn_relu(filters, filters, 3, 1)
        layers += [nn.MaxPool2d(2), nn.Dropout(0.25)]
        previous = filters
    layers += _conv_bn_relu(128, 512, 3) + [nn.Dropout(0.5)]
    layers += _conv_bn_relu(512, 512, 1) + [nn.Dropout(0.5)]
    layers += _conv_bn_relu(512, num_classes, 1)
    return layers + [nn.AdaptiveAvgPool2d(1), nn.Flatten()]


def _vgg(channels, side, num_classes):
    layers = _conv_bn_relu(channels, 64, 3, 1) + _conv_bn_relu(64, 64, 3, 1)
    layers += [nn.MaxPool2d(2), nn.Dropout(0.25)]
    layers += [nn.Conv2d(64, 128, 3, padding=1), nn.ReLU()] + _conv_bn_relu(128, 128, 3, 1)
    layers += [nn.MaxPool2d(2), nn.Dropout(0.25)]
    for conv in range(4):
        layers += _conv_bn_relu(128 if conv == 0 else 256, 256, 3, 1)
    layers += [nn.MaxPool2d(2), nn.Dropout(0.25)]
    layers += _conv_bn_relu(256, 1024, 3) + [nn.Dropout(0.5)]
    layers += _conv_bn_relu(1024, 1024, 1) + [nn.Dropout(0.5)]
    layers += _conv_bn_relu(1024, num_classes, 1)
    return layers + [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(num_classes, num_classes)]


_BUILDERS = {"logreg": _logreg, "ffnn": _ffnn, "cifarnet": _cifarnet,
             "small_vgg": _small_vgg, "vgg": _vgg}


def build(name, input_shape, num_classes):
    """The network ``name`` as an ``nn.Sequential`` returning logits.

    Parameters
    ----------
    name : {'logreg', 'ffnn', 'cifarnet', 'small_vgg', 'vgg'}
    input_shape : tuple of int
        ``(C, H, W)``, with H == W
    num_classes : int

    Returns
    -------
    torch.nn.Sequential
    """
    channels, side, _ = input_shape
    return nn.Sequential(*_BUILDERS[name](channels, side, num_classes))


def make_optimizer(network, learning_rate=0.001, beta2=0.99):
    """AMSGrad as in the experiments: ``torch.optim.Adam(amsgrad=True)``."""
    return torch.optim.Adam(network.parameters(), lr=learning_rate, betas=(0.9, beta2),
                            eps=1e-8, amsgrad=True)


def train_step(network, optimizer, inputs, targets):
    """One update on a minibatch; returns the loss as a Python float (synchronising)."""
    optimizer.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(network(inputs), targets)
    loss.backward()
    optimizer.step()
    return float(loss)
