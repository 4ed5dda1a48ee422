"""
JAX implementations of the Theano ops the five networks need, one module a family.

Theano-PyMC 1.1 converts a graph to JAX through ``jax_funcify``, a
``functools.singledispatch`` that maps an op to a function of the op's input
values.  Importing this package registers implementations for the ops it lacks
or implements against an older JAX, family by family:

- :mod:`backends.jax_ops.elementwise`: scalar ops applied elementwise
  (``Elemwise``, ``Composite``), the reductions over them (``CAReduce``,
  ``Argmax``, ``MaxAndArgmax``) and ``Dot`` through
  :func:`~backends.jax_ops.elementwise.run_dot`, which computes a run's
  product alike alone and under ``jax.vmap`` (a batch of runs,
  :mod:`backends.batched`);
- :mod:`backends.jax_ops.indexing`: shapes, ``Reshape``, ``Assert`` and the
  (advanced) subtensors and their increments;
- :mod:`backends.jax_ops.convolution`: ``CorrMM``, ``CorrMM_gradWeights``,
  ``CorrMM_gradInputs`` and their abstract forms ``AbstractConv2d*`` through
  ``lax.conv_general_dilated``; the gradients are its exact linear transposes;
- :mod:`backends.jax_ops.pooling`: ``Pool``, ``MaxPoolGrad`` with Theano's tie
  rule, ``AveragePoolGrad``, through ``lax.reduce_window`` and strided slices;
- :mod:`backends.jax_ops.classifier`: ``SoftmaxWithBias``, ``SoftmaxGrad``,
  ``LogSoftmax``, ``CrossentropyCategorical1Hot(Grad)``,
  ``CrossentropySoftmaxArgmax1HotWithBias``, ``CrossentropySoftmax1HotWithBiasDx``;
- :mod:`backends.jax_ops.mrg_random`: ``mrg_uniform``, MRG31k3p ported
  bit-exactly, so that dropout masks of the JAX backend are those of the C
  backend;
- the project's own ops (local response normalization, batch normalization),
  whose JAX forms live beside their C code in :mod:`ops` and are registered
  here.

Several replace Theano-PyMC's own versions, which break on current JAX (scalar
ops: ``jnp.product``; ``IncSubtensor``: ``jax.ops.index_update``; ``CAReduce``,
``Reshape``, ``Shape_i``, ``Argmax``).

Every implementation is a pure function of JAX arrays, traced once into the
single ``jax.jit`` program of :mod:`backends.jax_linker` by
:class:`backends.jax_graph.GraphProgram`.  Shape arguments
(window sizes, reshape targets) arrive as concrete NumPy values there.
"""
import compat  # noqa: F401  (Theano's flags, set before theano is first imported)
import jax
from theano.link.jax.jax_dispatch import jax_funcify

import ops

# Theano's dtypes (int64 indices, float64 accumulators) are kept as they are:
# the JAX program computes in the same types as the C backend.
jax.config.update("jax_enable_x64", True)

# The project's own ops keep their JAX forms beside their C code (:mod:`ops`).
ops.register_jax(jax_funcify)

# Importing a family registers its ops with jax_funcify.
from backends.jax_ops import (  # noqa: E402,F401
    classifier, convolution, elementwise, indexing, mrg_random, pooling)
