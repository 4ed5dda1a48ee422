"""
Which runs can share one batched program, and where each run's shared values sit in it.

.. autosummary::
    :nosignatures:

    shares_program
    group_by_program
    jit_function
    SlotLayout

Runs are tuples of Theano functions compiled for the JAX backend
(:func:`backends.compile_function` with ``backend="jax"``).  Two runs share a
program when their optimised graphs are the same computation and only the
values of their shared variables differ; :mod:`backends.batched` steps such
runs together, finding each run's values by the layout made here.
"""
import compat  # noqa: F401  (Theano's flags, set before theano is first imported)
import numpy as np
from theano.graph.basic import equal_computations

__all__ = ["shares_program", "group_by_program", "jit_function", "SlotLayout"]


def jit_function(function):
    """The :class:`backends.jax_linker._JitFunction` behind a compiled function."""
    jitted = getattr(function, "fn", None)
    if not hasattr(jitted, "program"):
        raise ValueError("%r is not compiled for the JAX backend; compile it with "
                         "backends.compile_function(..., backend='jax')" % (function,))
    return jitted


def _shared_inputs(function):
    """Per graph input: its shared variable, or None for an explicit input."""
    return [item.variable if item.implicit else None
            for item in function.maker.expanded_inputs]


def _value_signature(variable):
    value = variable.get_value(borrow=True)  # a NumPy or a JAX array
    return np.shape(value), str(value.dtype)


def shares_program(first, second):
    """Whether two compiled JAX functions run one program with different values.

    Parameters
    ----------
    first, second : theano functions
        Compiled by :func:`backends.compile_function` with ``backend="jax"``

    Returns
    -------
    bool
        True when their optimised graphs are the same computation (same ops,
        same constants, same input types), their shared variables hold
        values of the same shapes and dtypes, and they use the same matrix
        product precision: they can be stepped together in a :class:`RunBatch`.

    Raises
    ------
    ValueError
        For a function not compiled for the JAX backend
    """
    jit_first, jit_second = jit_function(first), jit_function(second)
    graph_first, graph_second = first.maker.fgraph, second.maker.fgraph
    if jit_first.precision != jit_second.precision or \
            len(graph_first.inputs) != len(graph_second.inputs) or \
            dict(graph_first.update_mapping or {}) != dict(graph_second.update_mapping or {}):
        return False
    for variable_first, variable_second in zip(_shared_inputs(first), _shared_inputs(second)):
        if (variable_first is None) != (variable_second is None):
            return False
        if variable_first is not None and \
                _value_signature(variable_first) != _value_signature(variable_second):
            return False
    return equal_computations(graph_first.outputs, graph_second.outputs,
                              in_xs=graph_first.inputs, in_ys=graph_second.inputs)


def group_by_program(runs):
    """Group runs (tuples of compiled JAX functions) that can share a :class:`RunBatch`.

    Parameters
    ----------
    runs : sequence of sequences of theano functions
        Each run's functions, in the same roles (e.g. ``(train_fn, val_fn)``)

    Returns
    -------
    list of lists of int
        Indices into ``runs``, in order of first appearance; the runs of one
        group share a program function by function (:func:`shares_program`)
    """
    groups = []
    for index, run in enumerate(runs):
        for group in groups:
            first = runs[group[0]]
            if len(first) == len(run) and all(map(shares_program, first, run)):
                group.append(index)
                break
        else:
            groups.append([index])
    return groups


class SlotLayout:
    """Where each function of a run finds its shared values among the batch's slots.

    A slot is one shared value of every run, numbered in the order the first
    run's functions list their shared variables (``get_shared()``, function
    by function).  Slots are keyed by storage, not by variable: a
    ``theano.clone`` of a shared variable (the batch-norm layer's running
    averages in a training pass) is another variable with the same storage,
    so the training function's clone and the validation function's original
    are one slot.
    """

    def __init__(self, functions):
        slots, self.inputs_slots = {}, []
        for function in functions:
            slot_of_input = []
            for variable in _shared_inputs(function):
                if variable is not None and id(variable.container) not in slots:
                    slots[id(variable.container)] = len(slots)
                slot_of_input.append(None if variable is None
                                     else slots[id(variable.container)])
            self.inputs_slots.append(slot_of_input)
        self.size = len(slots)

    def variables(self, functions):
        """A run's shared variables in slot order; ValueError if they are laid out otherwise."""
        variables = [None] * self.size
        for function, slot_of_input in zip(functions, self.inputs_slots):
            for slot, variable in zip(slot_of_input, _shared_inputs(function)):
                if slot is None:
                    continue
                if variables[slot] is None:
                    variables[slot] = variable
                elif variables[slot].container is not variable.container:
                    raise ValueError("a run's functions share their shared variables "
                                     "differently from the first run's")
        return variables
