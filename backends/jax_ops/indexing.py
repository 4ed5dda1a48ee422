"""
JAX forms of Theano's shape and indexing ops.

- ``Shape`` and ``Shape_i`` give NumPy values (shapes are static inside
  ``jax.jit``), ``Reshape`` takes a concrete target shape;
- ``Assert`` checks the conditions that are concrete while tracing and drops
  the others (a jitted program cannot raise);
- ``Subtensor``, ``AdvancedSubtensor(1)`` index; ``IncSubtensor`` and
  ``AdvancedIncSubtensor(1)`` set or add functionally (``.at[...]``, where
  Theano-PyMC called the removed ``jax.ops.index_update``).
"""
import compat  # noqa: F401  (Theano's flags, set before theano is first imported)
import jax.numpy as jnp
import numpy as np
from theano.compile.ops import Shape, Shape_i
from theano.link.jax.jax_dispatch import jax_funcify
from theano.tensor import basic as tensor
from theano.tensor import subtensor
from theano.tensor.opt import Assert

from backends.jax_graph import is_tracer


@jax_funcify.register(Shape)
def jax_funcify_Shape(op):
    # Shapes are static inside jax.jit: return them as NumPy values, so that
    # the shape arithmetic downstream stays concrete (see jax_linker).
    return lambda x: np.asarray(jnp.shape(x), dtype="int64")


@jax_funcify.register(Shape_i)
def jax_funcify_Shape_i(op):
    return lambda x: np.asarray(jnp.shape(x)[op.i], dtype="int64")


@jax_funcify.register(tensor.Reshape)
def jax_funcify_Reshape(op):
    return lambda x, shape: jnp.reshape(x, tuple(int(s) for s in np.asarray(shape)))


@jax_funcify.register(Assert)
def jax_funcify_Assert(op):
    # Shape assertions on concrete values were checked while tracing; a jitted
    # program cannot raise, so the others are dropped.
    def assert_(x, *conditions):
        for condition in conditions:
            if not is_tracer(condition) and not np.all(condition):
                raise AssertionError(op.msg)
        return x

    return assert_


def _index(idx_list, values):
    """Rebuild a Subtensor's index tuple from its idx_list and input values."""
    values = list(values)

    def convert(entry):
        if isinstance(entry, slice):
            return slice(convert(entry.start), convert(entry.stop), convert(entry.step))
        if entry is None or isinstance(entry, (int, np.integer)):
            return entry
        value = values.pop(0)
        return value if is_tracer(value) else int(value)

    return tuple(convert(entry) for entry in idx_list)


@jax_funcify.register(subtensor.Subtensor)
def jax_funcify_Subtensor(op):
    return lambda x, *indices: jnp.asarray(x)[_index(op.idx_list, indices)]


@jax_funcify.register(subtensor.IncSubtensor)
def jax_funcify_IncSubtensor(op):
    # x[index] = y or x[index] += y, functionally (was jax.ops.index_update/add).
    def inc_subtensor(x, y, *indices):
        at = jnp.asarray(x).at[_index(op.idx_list, indices)]
        return at.set(y) if op.set_instead_of_inc else at.add(y)

    return inc_subtensor


@jax_funcify.register(subtensor.AdvancedSubtensor1)
def jax_funcify_AdvancedSubtensor1(op):
    return lambda x, index: jnp.asarray(x)[jnp.asarray(index)]


@jax_funcify.register(subtensor.AdvancedIncSubtensor1)
def jax_funcify_AdvancedIncSubtensor1(op):
    def advanced_inc_subtensor1(x, y, index):
        at = jnp.asarray(x).at[jnp.asarray(index)]
        return at.set(y) if op.set_instead_of_inc else at.add(y)

    return advanced_inc_subtensor1


@jax_funcify.register(subtensor.AdvancedSubtensor)
def jax_funcify_AdvancedSubtensor(op):
    return lambda x, *indices: jnp.asarray(x)[tuple(indices)]


@jax_funcify.register(subtensor.AdvancedIncSubtensor)
def jax_funcify_AdvancedIncSubtensor(op):
    def advanced_inc_subtensor(x, y, *indices):
        at = jnp.asarray(x).at[tuple(indices)]
        return at.set(y) if op.set_instead_of_inc else at.add(y)

    return advanced_inc_subtensor
