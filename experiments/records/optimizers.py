"""
The optimizers: an update rule and how the runs use it, one record each.

.. autosummary::
    :nosignatures:

    Optimizer
    get
    names
    register
    ADAM_ARGUMENTS
    VARIANT_ARGUMENTS

An :class:`Optimizer` holds what the project needs to know about an update
rule: its builder in the style of ``lasagne.updates`` (a function, or
``"module:name"`` imported when a run builds its updates, so that the figures
and the report never import Theano), which :class:`~experiments.records.config.RunConfig`
fields it takes and under which keyword, which of those are values the
compiled program reads (runs that differ only in them train as one batch)
rather than constants compiled into it, and how the figures show it.

The project registers ``adam``, ``amsgrad`` and ``adamnc`` (:mod:`amsgrad`), and the
AMSGrad that PyTorch, Optax and Reddi et al.'s Algorithm 2 compute:
``amsgrad_pytorch``, ``amsgrad_optax`` and ``amsgrad_reddi`` (:mod:`amsgrad_variants`).
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
('adam', 'amsgrad', 'adamnc', 'amsgrad_pytorch', 'amsgrad_optax', 'amsgrad_reddi')
>>> adamnc = optimizers.get("adamnc")
>>> adamnc.uses("beta2"), adamnc.constants
(False, ('beta1', 'epsilon'))
"""
import dataclasses
import importlib
import importlib.util
import re

from errors import UserError
from experiments.records import plugins

__all__ = ["Optimizer", "get", "names", "register", "ADAM_ARGUMENTS", "VARIANT_ARGUMENTS",
           "FIELDS"]

#: The RunConfig fields an update rule can take.
FIELDS = ("lr", "beta1", "beta2", "epsilon", "bias_correction")
#: The keywords of :func:`amsgrad.adam` and :func:`amsgrad.amsgrad`, and the fields they take.
ADAM_ARGUMENTS = {"learning_rate": "lr", "beta1": "beta1", "beta2": "beta2",
                  "epsilon": "epsilon", "bias_correction": "bias_correction"}
#: The keywords of the AMSGrad variants of :mod:`amsgrad_variants` (no bias_correction).
VARIANT_ARGUMENTS = {"learning_rate": "lr", "beta1": "beta1", "beta2": "beta2",
                     "epsilon": "epsilon"}
#: How much lighter (towards white) a run without bias correction is drawn, when the
#: record gives no ``light_colour``.
LIGHTEN = 0.55
#: A colour as a record gives it: ``#rrggbb``.
COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
#: Names the optimizers' registry keeps: ``--optimizer both`` (:data:`experiments.launch.options.BOTH`).
RESERVED = ("both",)


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
        compiling in (default ``("lr",)``).  ``lr`` must be among them: the
        builder always gets the schedule's symbolic learning rate, which
        changes every epoch; the other fields it uses are Python numbers
    light_colour : str or None
        Colour of its runs without bias correction (if it uses it); default:
        ``colour`` lightened towards white

    Notes
    -----
    A record is checked when it is made: its name (see
    :meth:`experiments.records.plugins.Registry.check_name`, when registered), its
    colours, its fields, and for ``"module:name"`` that the module's package
    can be found (without importing it).  What can be known only when the
    builder runs is checked then, with an error naming the optimizer: that
    ``name`` exists in the module and can be called, and that every state
    variable of its updates holds a numeric array a checkpoint can save.
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
        if not set(self.values) <= set(arguments.values()) or "lr" not in self.values:
            raise ValueError("optimizer %r: values %r must be fields it uses, lr among them "
                             "(the schedule changes it every epoch)" % (self.name, self.values))
        for what in ("colour", "light_colour"):
            value = getattr(self, what)
            if not (value is None and what == "light_colour") and not (
                    isinstance(value, str) and COLOUR.fullmatch(value)):
                raise ValueError("optimizer %r: %s must be '#rrggbb', got %r"
                                 % (self.name, what, value))
        self._check_update()
        object.__setattr__(self, "arguments", tuple(sorted(arguments.items())))
        object.__setattr__(self, "values", tuple(self.values))

    def _check_update(self):
        if callable(self.update):
            return
        module, _, name = self.update.partition(":") if isinstance(self.update, str) else ("",) * 3
        if not (module and name.isidentifier()):
            raise ValueError("optimizer %r: update must be a function or 'module:name', got %r"
                             % (self.name, self.update))
        # The package alone: importing the module itself may import Theano, which the
        # figures and the report never do.
        package = module.split(".")[0]
        if not package.isidentifier() or importlib.util.find_spec(package) is None:
            raise ValueError("optimizer %r: update %r names module %s, whose package %s cannot "
                             "be found" % (self.name, self.update, module, package))

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
        try:
            builder = getattr(importlib.import_module(module), name)
        except Exception as exc:  # noqa: BLE001  (whatever the user's module raises)
            text = str(exc).splitlines()[0] if str(exc) else ""
            raise UserError("optimizer %r: its update %r cannot be imported: %s%s" % (
                self.name, self.update, type(exc).__name__, ": " + text if text else "")) from None
        if not callable(builder):
            raise UserError("optimizer %r: its update %r is not a function"
                            % (self.name, self.update))
        return builder

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
        updates = self.builder()(loss_or_grads, params, **keywords)
        self._check_state(updates)
        return updates

    def _check_state(self, updates):
        """errors.UserError unless every updated variable holds what a checkpoint saves."""
        # An OrderedDict, as Lasagne's builders return, or the (variable, update) pairs
        # theano.function takes as well: a list is checked too, not skipped.
        pairs = updates.items() if hasattr(updates, "items") else updates
        for variable, _ in pairs:
            value = variable.get_value(borrow=True) if hasattr(variable, "get_value") else None
            if not (hasattr(value, "dtype") and hasattr(value, "shape")
                    and value.dtype.kind in "biuf"):
                raise UserError(
                    "optimizer %r: its updates change %s (%s), which is not a numeric array: a "
                    "checkpoint could not save it, so its runs could not be resumed; keep the "
                    "update rule's state in numeric shared variables"
                    % (self.name, getattr(variable, "name", None) or type(variable).__name__,
                       type(value).__name__))


_OPTIMIZERS = plugins.Registry("optimizer", reserved=RESERVED, records=(
    Optimizer("adam", "amsgrad:adam", "Adam", "#1f4fb4", light_colour="#8cb4ec"),
    Optimizer("amsgrad", "amsgrad:amsgrad", "AMSGrad", "#c0221d", light_colour="#f29b97"),
    # Reddi et al.'s ADAMNC: beta2_t = 1 - 1/t and no bias correction of its own.
    Optimizer("adamnc", "amsgrad:adamnc", "ADAMNC", "#2a8a3e",
              arguments={"learning_rate": "lr", "beta1": "beta1", "epsilon": "epsilon"}),
    # The AMSGrad of other libraries and of the paper (amsgrad_variants.py); Keras 3's
    # Adam(amsgrad=True) is the blog's "amsgrad" with bias correction on.  None of them
    # has a bias correction switch.
    Optimizer("amsgrad_pytorch", "amsgrad_variants:amsgrad_pytorch", "AMSGrad (PyTorch)",
              "#e07b00", arguments=VARIANT_ARGUMENTS),
    Optimizer("amsgrad_optax", "amsgrad_variants:amsgrad_optax", "AMSGrad (Optax)",
              "#8a3ab9", arguments=VARIANT_ARGUMENTS),
    Optimizer("amsgrad_reddi", "amsgrad_variants:amsgrad_reddi", "AMSGrad (Reddi et al.)",
              "#6b4226", arguments=VARIANT_ARGUMENTS),
))


def register(optimizer):
    """Add an optimizer; errors.UserError when its name is registered already, or cannot
    be a folder and a command-line word of its own."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError("register takes an Optimizer, got %r" % (optimizer,))
    _OPTIMIZERS.add(optimizer)


def names():
    """The names of every optimizer, the project's first."""
    return _OPTIMIZERS.names()


def get(name):
    """The optimizer of that name; errors.UserError listing the names otherwise."""
    return _OPTIMIZERS.get(name)
