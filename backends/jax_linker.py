"""
Theano functions that run as one ``jax.jit`` program.

Theano-PyMC 1.1 ships a JAX linker (``theano.link.jax``, mode ``"JAX"``) that
no longer runs on current JAX: it passes ``static_argnums`` positionally to
``jax.jit``, turns shape sub-graphs into tracers, and jits each output
separately.  This module replaces it in project code, without touching
site-packages:

.. autosummary::
    :nosignatures:

    function
    jax_mode
    JAXLinker

- :class:`backends.jax_graph.GraphProgram` evaluates a Theano graph node by
  node in topological order, each node through ``jax_funcify`` (registered by
  :mod:`backends.jax_ops` and :mod:`ops`);
- :class:`JAXLinker` traces the whole graph into one ``jax.jit`` program whose
  arguments are the inputs and the shared variables; the shared variables
  that the function updates are *donated* and their new values (device
  arrays) go straight back into the shared variables' storage, so the
  optimizer's state stays on the device between calls;
- :func:`function` is ``theano.function`` with that linker and an optimizer
  without the C-only rewrites.

Shared variables that a JAX function updated hold JAX arrays afterwards:
``get_value()`` returns one (``np.asarray`` converts it), ``set_value`` works
as always.  Do not keep a ``get_value(borrow=True)`` result across calls: its
buffer is donated to the next call.

Examples
--------
>>> import compat  # noqa: F401
>>> import numpy as np
>>> import theano
>>> import theano.tensor as T
>>> from backends import jax_linker
>>> x = T.vector("x")
>>> total = theano.shared(np.float32(0), name="total")
>>> f = jax_linker.function([x], x.sum(), updates={total: total + x.sum()})
>>> float(f(np.ones(3, "float32")))
3.0
>>> float(total.get_value())
3.0
"""
import time
import warnings

import compat  # noqa: F401  (Theano's flags, set before theano is first imported)
import jax
import numpy as np
from theano.compile.function import function as theano_function
from theano.compile.mode import Mode
from theano.graph.optdb import Query
from theano.link.basic import Container, PerformLinker
from theano.link.utils import map_storage

from backends import jax_ops  # noqa: F401  (registers the JAX forms of Theano's ops)
from backends.jax_graph import GraphProgram, UnsupportedOpError

__all__ = ["function", "jax_mode", "GraphProgram", "JAXLinker", "UnsupportedOpError",
           "OPTIMIZER_EXCLUDES"]

#: Rewrites left out of the JAX mode's ``fast_run``: C-only ones (BLAS calls,
#: convolution lowering to CorrMM, which needs a C compiler) and the ones that
#: only help Theano's own C code (elementwise fusion, in-place ops): XLA fuses
#: and reuses buffers itself.
OPTIMIZER_EXCLUDES = ("cxx_only", "BlasOpt", "fusion", "inplace", "conv_opts",
                      "AbstractConvCheck")


class _JitFunction:
    """What the linker gives Theano's Function: runs the jitted program on the storage."""

    def __init__(self, fgraph, input_storage, output_storage, precision):
        self.program = GraphProgram(fgraph)
        self.input_storage, self.output_storage = input_storage, output_storage
        # fgraph.update_mapping: output index -> index of the input it updates
        self.updates = dict(fgraph.update_mapping or {})
        updated = set(self.updates.values())
        self.donated = [i for i in range(len(fgraph.inputs)) if i in updated]
        self.kept = [i for i in range(len(fgraph.inputs)) if i not in updated]
        self.precision = precision
        self.jitted = jax.jit(self._run, donate_argnums=0)
        # Theano's Function leaves the updates to us (they stay on the device).
        self.need_update_inputs = False
        self.allow_gc = False
        self.signatures = set()
        #: Seconds of each call that traced and compiled a new program (with its run).
        self.compile_seconds = []

    def _run(self, donated, kept):
        values = [None] * (len(donated) + len(kept))
        for i, value in zip(self.donated, donated):
            values[i] = value
        for i, value in zip(self.kept, kept):
            values[i] = value
        with jax.default_matmul_precision(self.precision):
            return self.program(*values)

    def __call__(self):
        values = [cell[0] for cell in self.input_storage]
        signature = tuple((np.shape(v), str(getattr(v, "dtype", type(v)))) for v in values)
        start = time.perf_counter()
        with warnings.catch_warnings():
            # On the CPU, XLA may decline to reuse a donated buffer; that is harmless.
            warnings.filterwarnings("ignore", message="Some donated buffers were not usable")
            outputs = self.jitted([values[i] for i in self.donated],
                                  [values[i] for i in self.kept])
        for out_index, in_index in self.updates.items():
            self.input_storage[in_index][0] = outputs[out_index]
        results = []
        for index, (cell, value) in enumerate(zip(self.output_storage, outputs)):
            cell[0] = value if index in self.updates else np.asarray(value)
            results.append(cell[0])
        if signature not in self.signatures:
            self.signatures.add(signature)
            self.compile_seconds.append(time.perf_counter() - start)
        return results


class JAXLinker(PerformLinker):
    """Links a FunctionGraph into one ``jax.jit`` program (see the module's docstring).

    Parameters
    ----------
    precision : str
        ``jax.default_matmul_precision`` for dot products and convolutions:
        ``"float32"`` (float32 throughout, as the C backend) or ``"tensorfloat32"``
        / ``"bfloat16"`` (faster on GPUs with tensor cores, less exact)
    """

    def __init__(self, precision="float32", allow_gc=None, schedule=None):
        super().__init__(allow_gc=allow_gc, schedule=schedule)
        self.precision = precision

    def accept(self, fgraph, no_recycling=None, profile=None):
        if self.fgraph is not None and self.fgraph is not fgraph:
            # A linker serves one graph; a mode reused for a second function makes
            # a new one with the same settings.
            return type(self)(self.precision, allow_gc=self.allow_gc).accept(
                fgraph, no_recycling, profile)
        return super().accept(fgraph, no_recycling, profile)

    def make_all(self, input_storage=None, output_storage=None, storage_map=None):
        fgraph = self.fgraph
        nodes = fgraph.toposort()
        input_storage, output_storage, storage_map = map_storage(
            fgraph, nodes, input_storage, output_storage, storage_map)
        fn = _JitFunction(fgraph, input_storage, output_storage, self.precision)
        fn.storage_map = storage_map
        return (fn,
                [Container(v, s) for v, s in zip(fgraph.inputs, input_storage)],
                [Container(v, s, readonly=True) for v, s in zip(fgraph.outputs, output_storage)],
                [fn], nodes)


def jax_mode(precision="float32"):
    """Theano's compilation mode for the JAX backend.

    Parameters
    ----------
    precision : str
        See :class:`JAXLinker`

    Returns
    -------
    theano.compile.mode.Mode
    """
    return Mode(JAXLinker(precision),
                Query(include=["fast_run"], exclude=list(OPTIMIZER_EXCLUDES)))


def function(inputs, outputs, updates=None, precision="float32", **kwargs):
    """``theano.function`` compiled into one JAX program.

    Parameters
    ----------
    inputs, outputs, updates
        As for ``theano.function``
    precision : str
        See :class:`JAXLinker`
    **kwargs
        Passed on to ``theano.function`` (``givens``, ``name``, ...), except ``mode``

    Returns
    -------
    theano.compile.function.types.Function
        Called like any Theano function; returns NumPy arrays.  Its ``fn``
        attribute has ``compile_seconds``: the duration of each call that
        traced and compiled a program for new input shapes.

    Raises
    ------
    UnsupportedOpError
        When the graph holds an op without a JAX implementation
    """
    if "mode" in kwargs:
        raise TypeError("function() sets the mode itself; got mode=%r" % (kwargs["mode"],))
    return theano_function(inputs, outputs, updates=updates, mode=jax_mode(precision),
                           **kwargs)
