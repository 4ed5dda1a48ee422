"""
JAX forms of Theano's scalar and elementwise ops, their reductions and ``Dot``.

.. autosummary::
    :nosignatures:

    jax_funcify_ScalarOp
    run_dot

- a scalar op (``Composite`` included) becomes its elementwise JAX function,
  for ``Elemwise`` and for the scalar op alone; Theano's variadic ``Add``,
  ``Mul``, ``Maximum``, ``Minimum`` fold left to right as the C code does;
- ``CAReduce`` (sum, product, max, min, all, any) accumulates in Theano's
  ``acc_dtype``; ``Argmax`` and ``MaxAndArgmax`` over any set of axes;
- ``Dot`` through :func:`run_dot`, which computes a run's product alike alone
  and under ``jax.vmap`` (a batch of runs, :mod:`backends.batched`).
"""
import functools

import compat  # noqa: F401  (Theano's flags, set before theano is first imported)
import jax
import jax.numpy as jnp
from jax import lax
from theano.link.jax.jax_dispatch import jax_funcify
from theano.scalar import basic as scalar
from theano.tensor import basic as tensor
from theano.tensor.elemwise import CAReduce, Elemwise

from backends.jax_graph import GraphProgram

__all__ = ["run_dot", "ONEDNN_BATCHED_FLOPS"]


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


#: From how many flops XLA's CPU backend computes a batched float32 product (rank 3)
#: with oneDNN's kernel rather than its own (XLA's onednn_matmul_rewriter.cc,
#: ``ShouldRewrite``; a product of rank 2 goes to oneDNN only from 2**24).
ONEDNN_BATCHED_FLOPS = 2 ** 19


def _one_kernel_for_batches(x, y):
    """Whether a run's ``dot(x, y)`` is computed as a batched product (see :func:`run_dot`).

    On the CPU, for float32 matrices whose product is large enough that a batch
    of two of them is oneDNN's: then a run alone (padded to two) and any batch
    of runs get the same kernel.  Smaller products (a few microseconds) stay
    each run's own, as does everything on other platforms' batches.
    """
    if jax.default_backend() != "cpu" or jnp.ndim(x) != 2 or jnp.ndim(y) != 2 or \
            jnp.result_type(x, y) != jnp.float32:
        return False
    rows, inner = jnp.shape(x)
    flops = 2 * rows * inner * jnp.shape(y)[1]
    return 2 * flops >= ONEDNN_BATCHED_FLOPS


def _batched_product(x, y):
    """``x[k] @ y[k]`` for every k, as one product (a batched ``dot_general``)."""
    return lax.dot_general(x, y, (((2,), (1,)), ((0,), (0,))))


@jax.custom_batching.custom_vmap
def run_dot(x, y):
    """``jnp.dot(x, y)``, computed alike for a run alone and in a batch of runs.

    A batch of runs (:mod:`backends.batched`) maps each run's graph over a
    leading axis with ``jax.vmap``, where ``jnp.dot`` becomes one batched
    product.  XLA computes it with other kernels than a single product (on the
    CPU, oneDNN's batched kernel; a single product of this size is Eigen's),
    whose float32 sums round differently, so a run's numbers would depend on
    whether it was batched.  So on the CPU:

    - float32 matrices large enough (:data:`ONEDNN_BATCHED_FLOPS`, for a batch
      of two) are always a batched product: a run alone computes its product
      as a batch of two copies of itself and keeps the first, a batch of K
      runs as one batch of K (an operand all runs share is broadcast).
      oneDNN computes each member of a batch alike whatever the batch's size
      (tests/test_batched.py), so each run's product is the same bit for bit,
      alone or batched, for the price of a second copy alone;
    - smaller products, and vectors, are each run's own product: K products of
      the run's shapes in the batch (they cost microseconds).

    On other platforms (a GPU) a batch's products are one batched product and
    a run alone's the plain one: no copies and no unrolling, and a batched
    run agrees with the run alone within float32 rounding.

    Parameters
    ----------
    x, y : JAX arrays
        As for ``jnp.dot``

    Returns
    -------
    JAX array
        ``jnp.dot(x, y)``
    """
    if _one_kernel_for_batches(x, y):
        return _batched_product(jnp.stack([x, x]), jnp.stack([y, y]))[0]
    return jnp.dot(x, y)


@run_dot.def_vmap
def _run_dot_vmap(axis_size, in_batched, x, y):
    # The mapped axis of a batched operand is its first.
    x_batched, y_batched = in_batched
    x_run, y_run = (x[0] if x_batched else x), (y[0] if y_batched else y)
    if jax.default_backend() != "cpu":
        return jax.vmap(jnp.dot, in_axes=(0 if x_batched else None,
                                          0 if y_batched else None))(x, y), True
    if _one_kernel_for_batches(x_run, y_run):
        size = max(axis_size, 2)  # a batch of one is padded as a run alone is
        x = x if x_batched else x[None]
        y = y if y_batched else y[None]
        x = jnp.broadcast_to(x, (size,) + x.shape[1:]) if len(x) != size else x
        y = jnp.broadcast_to(y, (size,) + y.shape[1:]) if len(y) != size else y
        return _batched_product(x, y)[:axis_size], True
    products = [run_dot(x[k] if x_batched else x, y[k] if y_batched else y)
                for k in range(axis_size)]
    return jnp.stack(products), True


@jax_funcify.register(tensor.Dot)
def jax_funcify_Dot(op):
    return run_dot
