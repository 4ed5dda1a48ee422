"""
The optimizers: an update rule and how the runs use it, one record each.

.. autosummary::
    :nosignatures:

    Optimizer
    get
    names
    register
    ADAM_ARGUMENTS

An :class:`Optimizer` holds what the project needs to know about an update
rule: its builder in the style of ``lasagne.updates`` (a function, or
``"module:name"`` imported when a run builds its updates, so that the figures
and the report never import Theano), which :class:`~experiments.records.config.RunConfig`
fields it takes and under which keyword, which of those are values the
compiled program reads (runs that differ only in them train as one batch)
rather than constants compiled into it, and how the figures show it.

The project registers ``adam``, ``amsgrad`` and ``adamnc`` (:mod:`amsgrad`).
Others can be added with :func:`register`, from code, or for the command
lines and their workers by a plug-in module named in ``$AMSGRAD_PLUGINS``
(:mod:`experiments.records.plugins`)::

    # my_rules.py, on PYTHONPATH; AMSGRAD_PLUGINS=my_rules
    from experiments.records import optimizers

    optimizers.register(optimizers.Optimizer(
        "rmsprop", "lasagne.updates:rmsprop", "RMSProp", "#7b3fa0",
        arguments={"learning_rate": "lr", "rho": "beta2", "epsilon": "epsilon"}))

Examples
--------
>>> from experiments.records import optimizers
>>> optimizers.names()
('adam', 'amsgrad', 'adamnc')
>>> adamnc = optimizers.get("adamnc")
>>> adamnc.uses("beta2"), adamnc.constants
(False, ('beta1', 'epsilon'))
"""
import dataclasses
import importlib

from experiments.records import plugins

__all__ = ["Optimizer", "get", "names", "register", "ADAM_ARGUMENTS", "FIELDS"]

#: The RunConfig fields an update rule can take.
FIELDS = ("lr", "beta1", "beta2", "epsilon", "bias_correction")
#: The keywords of :func:`amsgrad.adam` and :func:`amsgrad.amsgrad`, and the fields they take.
ADAM_ARGUMENTS = {"learning_rate": "lr", "beta1": "beta1", "beta2": "beta2",
                  "epsilon": "epsilon", "bias_correction": "bias_correction"}
#: How much lighter (towards white) a run without bias correction is drawn, when the
#: record gives no ``light_colour``.
LIGHTEN = 0.55


def _lighter(colour, amount=LIGHTEN):
    red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return "#%02x%02x%02x" % tuple(round(c + (255 - c) * amount) for c in (red, green, blue))


@dataclasses.dataclass(frozen=True)
class Optimizer:
    """An update rule and how the runs use it.

    Attributes
    ----------
    name : str
        What ``RunConfig.optimizer``, ``--optimizer`` and run directories call it
    update : callable or str
        The builder, ``update(loss_or_grads, params, **keywords) -> OrderedDict``
        as in ``lasagne.updates``, or ``"module:name"`` of it (imported when
        first used); the updates must hold every shared variable the step
        changes (the checkpoint saves them)
    display_name : str
        Its name in figures and the report
    colour : str
        ``#rrggbb``, its runs' colour in figures
    arguments : dict of str -> str
        Builder keyword -> the :class:`~experiments.records.config.RunConfig` field it
        gets (one of :data:`FIELDS`); ``lr`` is required and gets the
        schedule's learning rate expression.  The fields it does not name are
        not used: a grid does not multiply its cells by their values
        (:func:`experiments.launch.options.expand`).  Stored as sorted pairs.
    values : tuple of str
        The fields whose value the compiled program reads rather than
        compiling in (default ``("lr",)``: the builder takes a symbolic
        learning rate); ``()`` if the builder needs Python numbers
    light_colour : str or None
        Colour of its runs without bias correction (if it uses it); default:
        ``colour`` lightened towards white
    """
    name: str
    update: object = dataclasses.field(repr=False)
    display_name: str
    colour: str
    arguments: object = dataclasses.field(default_factory=lambda: dict(ADAM_ARGUMENTS))
    values: tuple = ("lr",)
    light_colour: object = None

    def __post_init__(self):
        arguments = dict(self.arguments)
        unknown = sorted(set(arguments.values()) - set(FIELDS))
        if unknown or "lr" not in arguments.values():
            raise ValueError("optimizer %r: arguments must map builder keywords to fields "
                             "of %s, lr among them; got %r" % (self.name, FIELDS, arguments))
        if not set(self.values) <= set(arguments.values()):
            raise ValueError("optimizer %r: values %r must be fields it uses"
                             % (self.name, self.values))
        if not (callable(self.update) or (isinstance(self.update, str)
                                          and self.update.count(":") == 1)):
            raise ValueError("optimizer %r: update must be a function or 'module:name', got %r"
                             % (self.name, self.update))
        object.__setattr__(self, "arguments", tuple(sorted(arguments.items())))
        object.__setattr__(self, "values", tuple(self.values))

    def uses(self, field):
        """Whether the builder takes that RunConfig field."""
        return any(field == used for _, used in self.arguments)

    @property
    def constants(self):
        """The fields it uses that are constants of the compiled program, sorted."""
        return tuple(sorted({used for _, used in self.arguments} - set(self.values)))

    def colour_for(self, bias_correction):
        """Line colour of its runs: lighter without bias correction, if it has any."""
        if bias_correction or not self.uses("bias_correction"):
            return self.colour
        return self.light_colour or _lighter(self.colour)

    def builder(self):
        """The update builder (imports it the first time, for ``"module:name"``)."""
        if callable(self.update):
            return self.update
        module, name = self.update.split(":")
        return getattr(importlib.import_module(module), name)

    def updates(self, loss_or_grads, params, learning_rate, settings):
        """The builder's updates, its keywords taken from ``settings``.

        Parameters
        ----------
        loss_or_grads, params
            As for ``lasagne.updates``
        learning_rate : float or symbolic scalar
            What the ``lr`` field's keyword gets (a schedule's expression)
        settings : object
            Has the other fields it uses as attributes (a RunConfig)
        """
        keywords = {keyword: learning_rate if field == "lr" else getattr(settings, field)
                    for keyword, field in self.arguments}
        return self.builder()(loss_or_grads, params, **keywords)


_OPTIMIZERS = plugins.Registry("optimizer", (
    Optimizer("adam", "amsgrad:adam", "Adam", "#1f4fb4", light_colour="#8cb4ec"),
    Optimizer("amsgrad", "amsgrad:amsgrad", "AMSGrad", "#c0221d", light_colour="#f29b97"),
    # Reddi et al.'s ADAMNC: beta2_t = 1 - 1/t and no bias correction of its own.
    Optimizer("adamnc", "amsgrad:adamnc", "ADAMNC", "#2a8a3e",
              arguments={"learning_rate": "lr", "beta1": "beta1", "epsilon": "epsilon"}),
))


def register(optimizer):
    """Add an optimizer; errors.UserError when its name is registered already."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError("register takes an Optimizer, got %r" % (optimizer,))
    _OPTIMIZERS.add(optimizer)


def names():
    """The names of every optimizer, the project's first."""
    return _OPTIMIZERS.names()


def get(name):
    """The optimizer of that name; errors.UserError listing the names otherwise."""
    return _OPTIMIZERS.get(name)
