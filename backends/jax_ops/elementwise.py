"""
JAX forms of Theano's scalar and elementwise ops, their reductions and ``Dot``.

.. autosummary::
    :nosignatures:

    jax_funcify_ScalarOp
    per_run_dot

- a scalar op (``Composite`` included) becomes its elementwise JAX function,
  for ``Elemwise`` and for the scalar op alone; Theano's variadic ``Add``,
  ``Mul``, ``Maximum``, ``Minimum`` fold left to right as the C code does;
- ``CAReduce`` (sum, product, max, min, all, any) accumulates in Theano's
  ``acc_dtype``; ``Argmax`` and ``MaxAndArgmax`` over any set of axes;
- ``Dot`` through :func:`per_run_dot`, which under ``jax.vmap`` (a batch of
  runs, :mod:`backends.batched`) computes each run's product on its own.
"""
import functools

import compat  # noqa: F401  (Theano's flags, set before theano is first imported)
import jax
import jax.numpy as jnp
from theano.link.jax.jax_dispatch import jax_funcify
from theano.scalar import basic as scalar
from theano.tensor import basic as tensor
from theano.tensor.elemwise import CAReduce, Elemwise

from backends.jax_graph import GraphProgram

__all__ = ["per_run_dot"]


def _scalar_function(op):
    """The elementwise JAX function of a Theano scalar op."""
    if isinstance(op, scalar.Composite):
        program = GraphProgram(op.fgraph)
        return lambda *args: program(*args)[0] if len(op.fgraph.outputs) == 1 \
            else tuple(program(*args))
    special = _SPECIAL_SCALAR.get(type(op))
    if special is not None:
        return special(op)
    spec = getattr(op, "nfunc_spec", None)
    if spec is None:
        raise NotImplementedError("no JAX implementation of the scalar op %s" % op)
    module = jnp
    if spec[0].startswith("scipy.special."):
        module, spec = jax.scipy.special, (spec[0][len("scipy.special."):],) + spec[1:]
    binary = getattr(module, spec[0])
    variadic = getattr(op, "nfunc_variadic", None)
    if variadic is None:
        return binary
    # Add, Mul, Maximum, Minimum take any number of inputs in Theano: fold them
    # left to right, as the C code does (Theano-PyMC called jnp.product here).
    return lambda *args: functools.reduce(binary, args)


def _clip(op):
    return lambda x, low, high: jnp.where(x < low, low, jnp.where(x > high, high, x))


def _switch(op):
    return lambda cond, a, b: jnp.where(cond, a, b)


def _cast(op):
    return lambda x: jnp.asarray(x).astype(op.o_type.dtype)


def _second(op):
    return lambda x, y: jnp.broadcast_to(y, jnp.shape(x))


_SPECIAL_SCALAR = {
    scalar.Clip: _clip,
    scalar.Switch: _switch,
    scalar.Cast: _cast,
    scalar.Second: _second,
    scalar.Identity: lambda op: (lambda x: x),
    scalar.Inv: lambda op: (lambda x: 1 / x),
}


def jax_funcify_ScalarOp(op):
    """JAX function of a scalar op, applied elementwise (registered for each kind)."""
    return _scalar_function(op)


# Theano-PyMC registers some scalar ops by their own class: override those too.
for _op_class in [scalar.ScalarOp, scalar.Composite] + list(_SPECIAL_SCALAR):
    jax_funcify.register(_op_class, jax_funcify_ScalarOp)


@jax_funcify.register(Elemwise)
def jax_funcify_Elemwise(op):
    return _scalar_function(op.scalar_op)


_REDUCTIONS = {
    scalar.Add: jnp.sum,
    scalar.Mul: jnp.prod,
    scalar.ScalarMaximum: jnp.max,
    scalar.ScalarMinimum: jnp.min,
    scalar.AND: jnp.all,
    scalar.OR: jnp.any,
}


@jax_funcify.register(CAReduce)
def jax_funcify_CAReduce(op):
    reduce = _REDUCTIONS.get(type(op.scalar_op))
    if reduce is None:
        raise NotImplementedError("no JAX implementation of the reduction %s" % op)
    acc_dtype = getattr(op, "acc_dtype", None)

    def careduce(x):
        axis = tuple(range(x.ndim)) if op.axis is None else tuple(op.axis)
        # Theano accumulates float32 sums in float64 (acc_dtype); so does this.
        if acc_dtype is not None:
            x = x.astype(acc_dtype)
        return reduce(x, axis=axis)

    return careduce


@jax_funcify.register(tensor.Argmax)
def jax_funcify_Argmax(op):
    def argmax(x):
        axes = tuple(range(x.ndim)) if op.axis is None else tuple(op.axis)
        kept = [i for i in range(x.ndim) if i not in axes]
        moved = jnp.transpose(x, kept + list(axes))
        flat = moved.reshape(moved.shape[:len(kept)] + (-1,))
        return jnp.argmax(flat, axis=-1).astype("int64")

    return argmax


@jax_funcify.register(tensor.MaxAndArgmax)
def jax_funcify_MaxAndArgmax(op):
    argmax = jax_funcify_Argmax(op)

    def max_and_argmax(x):
        axes = tuple(range(x.ndim)) if op.axis is None else tuple(op.axis)
        return jnp.max(x, axis=axes), argmax(x)

    return max_and_argmax


@jax.custom_batching.custom_vmap
def per_run_dot(x, y):
    """``jnp.dot(x, y)``; under ``jax.vmap``, one such product per batch element.

    A batch of runs (:mod:`backends.batched`) maps each run's graph over a
    leading axis.  ``jnp.dot`` would become one batched product there, which
    XLA computes with other kernels than a run's own product (on the CPU,
    oneDNN's for 2 runs or more, Eigen's for one run alone or a batch of 1,
    whose float32 sums round differently): so each run's product is computed
    on its own, with its own shapes, as the run alone computes it.  Nested
    maps unstack level by level.

    Parameters
    ----------
    x, y : JAX arrays
        As for ``jnp.dot``

    Returns
    -------
    JAX array
        ``jnp.dot(x, y)``
    """
    return jnp.dot(x, y)


@per_run_dot.def_vmap
def _per_run_dot_vmap(axis_size, in_batched, x, y):
    # The mapped axis of a batched operand is its first.
    x_batched, y_batched = in_batched
    products = [per_run_dot(x[k] if x_batched else x, y[k] if y_batched else y)
                for k in range(axis_size)]
    return jnp.stack(products), True


@jax_funcify.register(tensor.Dot)
def jax_funcify_Dot(op):
    return per_run_dot
