"""
A Theano graph evaluated node by node with JAX, for ``jax.jit`` to trace.

.. autosummary::
    :nosignatures:

    GraphProgram
    UnsupportedOpError
    is_tracer

:class:`GraphProgram` looks each node's JAX implementation up in Theano's
``jax_funcify`` dispatcher; the implementations are registered by
:mod:`backends.jax_ops` (Theano's ops) and :mod:`ops` (this project's), which
:mod:`backends.jax_linker` imports before it builds a program.  Nodes whose
inputs are all known while tracing (shapes and constants) run Theano's own
Python code instead, so shape arithmetic stays concrete.  This module is the
one evaluator: the linker runs whole graphs with it, and the elementwise ops'
fused scalar graphs (``Composite``) are run with it too.
"""
import compat  # noqa: F401  (Theano's flags, set before theano is first imported)
import jax
import numpy as np
from theano.graph.basic import Constant
from theano.link.jax.jax_dispatch import jax_funcify

__all__ = ["GraphProgram", "UnsupportedOpError", "is_tracer"]

try:  # public since JAX 0.1; a private fallback in case a later JAX drops the alias
    _Tracer = jax.core.Tracer
except AttributeError:
    from jax._src.core import Tracer as _Tracer


def is_tracer(value):
    """Whether ``value`` is only known when the program runs (not while tracing)."""
    return isinstance(value, _Tracer)


class UnsupportedOpError(NotImplementedError):
    """A graph holds an op that has no JAX implementation; ``op`` names it."""

    def __init__(self, op, reason):
        self.op = op
        super().__init__("no JAX implementation of the Theano op %s (%s)" % (op, reason))


def _concrete(value):
    return not is_tracer(value)


def _small(variable):
    # Shapes, sizes and scalars: cheap to compute in Python while tracing.
    return getattr(variable.type, "ndim", 0) <= 1


def _perform(node, values):
    """Run a node through Theano's Python implementation (concrete inputs)."""
    storage = {}
    for variable, value in zip(node.inputs, values):
        dtype = getattr(variable.type, "dtype", None)
        storage[variable] = [np.asarray(value, dtype=dtype) if dtype else value]
    for variable in node.outputs:
        storage[variable] = [None]
    compute = {variable: [True] for variable in node.inputs}
    compute.update({variable: [False] for variable in node.outputs})
    node.op.make_py_thunk(node, storage, compute, no_recycling=[])()
    return [storage[variable][0] for variable in node.outputs]


def _as_dtype(value, variable):
    """``value`` in the variable's Theano dtype (JAX's promotion rules differ)."""
    dtype = getattr(variable.type, "dtype", None)
    if dtype is None or not hasattr(value, "dtype") or value.dtype == dtype:
        return value
    return value.astype(dtype)


class GraphProgram:
    """A Theano graph as a Python function of JAX arrays, to be traced by ``jax.jit``.

    Parameters
    ----------
    fgraph : FunctionGraph
        The (optimised) graph

    Raises
    ------
    UnsupportedOpError
        When a node's op has no JAX implementation
    """

    def __init__(self, fgraph):
        self.inputs = list(fgraph.inputs)
        self.outputs = list(fgraph.outputs)
        self.steps = []
        for node in fgraph.toposort():
            try:
                implementation = jax_funcify(node.op)
            except NotImplementedError as exc:
                raise UnsupportedOpError(node.op, exc) from None
            self.steps.append((node, implementation))

    def __call__(self, *input_values):
        values = dict(zip(self.inputs, input_values))

        def value_of(variable):
            if variable in values:
                return values[variable]
            if isinstance(variable, Constant):
                return variable.data
            raise KeyError("the graph input %s has no value" % variable)

        for node, implementation in self.steps:
            arguments = [value_of(v) for v in node.inputs]
            if all(_small(v) for v in node.outputs) and all(map(_concrete, arguments)):
                results = _perform(node, arguments)
            else:
                results = implementation(*arguments)
                if len(node.outputs) == 1:
                    results = [results]
            for variable, value in zip(node.outputs, results):
                values[variable] = _as_dtype(value, variable)
        return [value_of(v) for v in self.outputs]
