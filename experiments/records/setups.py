"""
The setups: which network trains on which data, one record each.

.. autosummary::
    :nosignatures:

    Setup
    get
    names
    register
    PLUGIN_VARIABLE
    TRAIN_EXAMPLES

A :class:`Setup` holds what the training loop needs to know about a setup:
its network builder (by name in :data:`models.MODELS`, or a function), its
data set, whether training images are flipped left-right, and the input
shape.  Nothing here imports Theano or the data: the builders and loaders
are looked up when a run starts.

Other setups can be added with :func:`register`, from code, or for command
lines and their worker processes by a plug-in module named in
``$AMSGRAD_PLUGINS`` (or its former name ``$AMSGRAD_SETUPS``,
:data:`PLUGIN_VARIABLE`; see :mod:`experiments.records.plugins`): the plug-ins are
imported the first time a registry is read, and register their setups when
imported.  A name can be registered once.  The tests register a tiny setup
that way.

Examples
--------
>>> from experiments.records import setups
>>> setups.get("cifarnet")
Setup(name='cifarnet', dataset='cifar10', network='cifarnet', flip_lr=True, input_shape=(3, 32, 32))
>>> setups.names()[:2]
('logreg', 'ffnn')
"""
import dataclasses

from errors import UserError
from experiments.records import plugins

__all__ = ["Setup", "get", "names", "register", "PLUGIN_VARIABLE", "TRAIN_EXAMPLES"]

#: Environment variable naming modules that register more setups when imported (the
#: former name; :data:`experiments.records.plugins.PLUGIN_VARIABLE` is read too).
PLUGIN_VARIABLE = plugins.LEGACY_VARIABLE


@dataclasses.dataclass(frozen=True)
class Setup:
    """A network and the data it trains on.

    Attributes
    ----------
    name : str
        What ``RunConfig.setup`` and the command lines call it
    dataset : str
        The data set, a name :func:`data.load_dataset` knows (unless
        ``load_data`` is given)
    network : str or None
        The builder's name in :data:`models.MODELS` (unless ``build_network``
        is given)
    flip_lr : bool
        Flip each training image left-right with probability 1/2
    input_shape : tuple of int
        ``(C, H, W)`` of one input
    load_data : callable or None
        ``load_data(config, data_dir) -> Dataset``, instead of
        :func:`data.load_dataset` (not shown in the repr)
    build_network : callable or None
        ``build_network(input_shape, num_classes) -> output layer``, instead of
        :func:`models.build` (not shown in the repr)
    """
    name: str
    dataset: str
    network: str
    flip_lr: bool
    input_shape: tuple
    load_data: object = dataclasses.field(default=None, repr=False, compare=False)
    build_network: object = dataclasses.field(default=None, repr=False, compare=False)

    def definition(self):
        """What a run records of this setup, to refuse continuing under a changed one.

        The fields, and the modules and names of a custom loader or builder.
        """
        def name(function):
            return None if function is None else "%s.%s" % (
                getattr(function, "__module__", "?"), getattr(function, "__qualname__", "?"))
        return {"dataset": self.dataset, "network": self.network, "flip_lr": bool(self.flip_lr),
                "input_shape": list(self.input_shape), "load_data": name(self.load_data),
                "build_network": name(self.build_network)}

    def load(self, config, data_dir=None):
        """The run's data set (``config.cifar_centering`` applies to CIFAR-10).

        A plug-in's loader is checked against the setup: errors.UserError when
        its inputs are not of ``input_shape`` or a label is not a class of the
        network (``0 <= label < num_classes``).
        """
        if self.load_data is None:
            import data
            return data.load_dataset(self.dataset, data_dir=data_dir,
                                     cifar_centering=config.cifar_centering)
        dataset = self.load_data(config, data_dir)
        self._check_dataset(dataset)
        return dataset

    def _check_dataset(self, dataset):
        # A label past the network's classes trains silently at accuracy 0 under JAX and
        # is an IndexError under C: say so before anything is compiled.
        for split in ("train", "val", "test"):
            x, y = getattr(dataset, split + "_x"), getattr(dataset, split + "_y")
            if tuple(x.shape[1:]) != tuple(self.input_shape) or len(x) != len(y):
                raise UserError("setup %r: its data's %s inputs are %s with %d labels, the "
                                "setup's input_shape is %s" % (self.name, split, x.shape,
                                                               len(y), tuple(self.input_shape)))
            if y.dtype.kind not in "iu" or (len(y) and (y.min() < 0
                                                        or y.max() >= dataset.num_classes)):
                raise UserError("setup %r: its data's %s labels must be integers from 0 to %d "
                                "(num_classes %d), got %s from %s to %s" % (
                                    self.name, split, dataset.num_classes - 1,
                                    dataset.num_classes, y.dtype, y.min(), y.max()))

    def build(self, input_shape, num_classes):
        """The network's output layer, its weights drawn from ``lasagne.random``."""
        if self.build_network is not None:
            return self.build_network(input_shape, num_classes)
        import models
        return models.build(self.network, input_shape, num_classes)


#: Training examples per data set, as :func:`data.load_dataset` splits them (MNIST and
#: Fashion-MNIST keep the last 10,000 training images for validation): what one epoch
#: goes through.  Here, not in :mod:`data`, so that the plots can count updates without
#: loading the data package.
TRAIN_EXAMPLES = {"mnist": 50000, "fashion_mnist": 50000, "cifar10": 50000}

_MNIST, _CIFAR = (1, 28, 28), (3, 32, 32)
# ``synthetic`` is the synthetic job's folder of the results directory.
_SETUPS = plugins.Registry("setup", reserved=("synthetic",), records=(
    Setup("logreg", "mnist", "logreg", flip_lr=False, input_shape=_MNIST),
    Setup("ffnn", "mnist", "ffnn", flip_lr=False, input_shape=_MNIST),
    Setup("cifarnet", "cifar10", "cifarnet", flip_lr=True, input_shape=_CIFAR),
    Setup("small_vgg", "cifar10", "small_vgg", flip_lr=True, input_shape=_CIFAR),
    Setup("vgg", "cifar10", "vgg", flip_lr=True, input_shape=_CIFAR),
))
_REGISTRY = _SETUPS.entries


def register(setup):
    """Add a setup; errors.UserError when its name is registered already."""
    if not isinstance(setup, Setup):
        raise TypeError("register takes a Setup, got %r" % (setup,))
    _SETUPS.add(setup)


def names():
    """The names of every setup, the project's five first."""
    return _SETUPS.names()


def get(name):
    """The setup of that name; errors.UserError listing the names otherwise."""
    return _SETUPS.get(name)
