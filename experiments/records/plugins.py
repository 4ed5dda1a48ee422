"""
Plug-ins: modules named in the environment that register setups and optimizers.

.. autosummary::
    :nosignatures:

    Registry
    load
    module_names
    PLUGIN_VARIABLE
    LEGACY_VARIABLE

A plug-in is any importable module that calls
:func:`experiments.records.setups.register` or :func:`experiments.records.optimizers.register`
when it is imported.  The command lines and their worker processes (local
or Dask) import the modules named in ``$AMSGRAD_PLUGINS``
(:data:`PLUGIN_VARIABLE`, comma-separated) and, as before, in
``$AMSGRAD_SETUPS`` (:data:`LEGACY_VARIABLE`): once per process, at the
first look-up in a registry, or earlier when a command line calls
:func:`load` itself so that a broken plug-in stops it before anything runs.

A plug-in that cannot be imported, has a syntax error or raises anything
while it is imported is an :class:`errors.UserError` naming the module and
the error (one line, exit code 2 from a command line); the same error is
raised again at every later look-up, so a registry is never read half
filled.  A name registered twice (a setup or an optimizer, the project's or a
plug-in's) is an error naming where each came from.

Nothing here imports Theano.
"""
import importlib
import os
import re
import sys

from errors import UserError

__all__ = ["Registry", "load", "module_names", "PLUGIN_VARIABLE", "LEGACY_VARIABLE"]

#: Environment variable naming the plug-in modules, comma-separated.
PLUGIN_VARIABLE = "AMSGRAD_PLUGINS"
#: Its former name (setups only then), still read.
LEGACY_VARIABLE = "AMSGRAD_SETUPS"

_state = {"loaded": False, "error": None, "importing": None}
#: What a registered name may be: it becomes a folder of the results directory and a word
#: of the command lines, so lower-case letters, digits, '_' and '-', a letter first.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,39}")


def module_names():
    """The plug-in modules the environment names, in order, each once."""
    names = []
    for variable in (PLUGIN_VARIABLE, LEGACY_VARIABLE):
        names += [name.strip() for name in os.environ.get(variable, "").split(",")
                  if name.strip()]
    return list(dict.fromkeys(names))


def _variables():
    return " or ".join("$" + variable for variable in (PLUGIN_VARIABLE, LEGACY_VARIABLE)
                       if os.environ.get(variable, "").strip())


def _failure(module, exc):
    if isinstance(exc, ImportError) and exc.name == module:
        return UserError("%s names %s, which cannot be imported (%s); check the name and "
                         "PYTHONPATH" % (_variables(), module, exc))
    if isinstance(exc, SyntaxError):
        where = "%s, line %s" % (exc.filename, exc.lineno)
        return UserError("the plug-in %s (named in %s) has a syntax error: %s (%s)"
                         % (module, _variables(), exc.msg, where))
    text = str(exc).splitlines()[0] if str(exc) else ""
    return UserError("the plug-in %s (named in %s) failed while it was imported: %s%s"
                     % (module, _variables(), type(exc).__name__, ": " + text if text else ""))


def load():
    """Import the plug-in modules, once per process.

    Raises
    ------
    errors.UserError
        When a module cannot be imported or raises while it is imported
        (also on every later call).
    """
    if _state["error"] is not None:
        raise _state["error"]
    if _state["loaded"]:
        return
    # Set first: the plug-ins import the registries, which call load() again.
    _state["loaded"] = True
    for module in module_names():
        _state["importing"] = module
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001  (anything a user's module raises)
            _state["error"] = exc if isinstance(exc, UserError) else _failure(module, exc)
            raise _state["error"] from None
        finally:
            _state["importing"] = None


def _origin():
    """Who is registering: the plug-in being imported, else the calling module."""
    if _state["importing"]:
        return "the plug-in %s" % _state["importing"]
    frame = sys._getframe(3)  # _origin <- Registry.add <- register <- the caller
    return "module %s" % frame.f_globals.get("__name__", "?")


class Registry:
    """Named records of one kind (setups, optimizers), filled by the project and plug-ins.

    Parameters
    ----------
    kind : str
        What the records are, for messages (``setup``, ``optimizer``)
    records : sequence
        The project's own, each with a ``name``
    reserved : sequence of str
        Names a record may not take: words the command lines or the results
        directory give a meaning of their own (``--optimizer both``, the
        ``synthetic`` folder)
    """

    def __init__(self, kind, records=(), reserved=()):
        self.kind = kind
        self.reserved = tuple(reserved)
        self.entries = {}
        self.origins = {}
        for record in records:
            self.entries[record.name] = record
            self.origins[record.name] = "the project"

    def add(self, record):
        """Register ``record``; errors.UserError when its name is taken by another record."""
        origin = _origin()
        self.check_name(record.name, origin)
        existing = self.entries.get(record.name)
        if existing is record:
            return  # the same module imported again under another name
        if existing is not None:
            raise UserError("%s %r is registered twice: by %s and by %s; give the new one "
                            "another name" % (self.kind, record.name,
                                              self.origins.get(record.name, "?"), origin))
        self.entries[record.name] = record
        self.origins[record.name] = origin

    def check_name(self, name, origin="the caller"):
        """errors.UserError unless ``name`` can be a folder and a command-line word of its own."""
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise UserError("%s %r (registered by %s) cannot be stored or named on a command "
                            "line: a name is 1 to 40 lower-case letters, digits, '_' or '-', "
                            "a letter first" % (self.kind, name, origin))
        if name in self.reserved:
            raise UserError("%s %r (registered by %s) is a word the project keeps for itself "
                            "(%s); give it another name" % (self.kind, name, origin,
                                                            ", ".join(self.reserved)))

    def names(self):
        """Every name, the project's first, in order of registration."""
        load()
        return tuple(self.entries)

    def get(self, name, what=None):
        """The record of that name; errors.UserError listing the names otherwise."""
        load()
        try:
            return self.entries[name]
        except (KeyError, TypeError):
            raise UserError("%s must be one of %s, got %r" % (
                what or self.kind, ", ".join(self.entries), name)) from None
