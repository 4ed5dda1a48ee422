"""
Compile Theano functions for a backend: Theano's own C code, or one JAX program.

.. autosummary::
    :nosignatures:

    compile_function
    check_backend
    BACKENDS

``compile_function`` takes the arguments of ``theano.function`` and a backend
name, and returns a function called exactly like one made by
``theano.function``.  ``"c"`` is Theano's C backend (its convolutions,
elementwise ops and max-pooling gradients with OpenMP,
:mod:`backends.c_openmp`), ``"jax"`` traces the whole
graph into one ``jax.jit`` program (:mod:`backends.jax_linker`, with the ops of
:mod:`backends.jax_ops`), which also runs on a GPU.  JAX is optional: this
package imports it only when the JAX backend is asked for.
:mod:`compat.numpy2` lets Theano and Lasagne import under NumPy 2
(where only the JAX backend runs), as on GPU machines with a current JAX.
:mod:`backends.batched` steps K runs compiled for the JAX backend, which
differ only in their values (learning rate, seeds, data), as one program
under ``jax.vmap``.

Examples
--------
>>> import compat  # noqa: F401
>>> import numpy as np
>>> import theano.tensor as T
>>> from backends import compile_function
>>> x = T.matrix("x")
>>> f = compile_function([x], T.nnet.softmax(x).sum(axis=1), backend="c")
>>> f(np.zeros((2, 3), "float32"))
array([1., 1.], dtype=float32)
"""
from errors import UserError

__all__ = ["compile_function", "check_backend", "BACKENDS", "JAX_INSTALL"]

#: The backend names compile_function accepts.
BACKENDS = ("c", "jax")
#: How to install the JAX backend's optional dependency (CPU build).
JAX_INSTALL = "pip install jax==0.4.30 jaxlib==0.4.30"


def check_backend(backend):
    """Check that ``backend`` is known and can run here.

    Raises
    ------
    errors.UserError
        For an unknown name, or ``"jax"`` without JAX installed or with one
        that fails to import (a jax/jaxlib version mismatch, say; the message
        says how to install it)
    """
    if backend not in BACKENDS:
        raise UserError("unknown backend %r; choose one of: %s" % (backend, ", ".join(BACKENDS)))
    if backend == "jax":
        try:
            import jax  # noqa: F401
        except ImportError:
            raise UserError("the JAX backend needs JAX, which is not installed; install it "
                            "with '%s' (CPU) or see https://jax.readthedocs.io for GPU "
                            "builds, or use --backend c" % JAX_INSTALL) from None
        except Exception as exc:  # noqa: BLE001  e.g. jaxlib's RuntimeError: versions differ
            raise UserError("JAX is installed but cannot be imported (%s: %s); reinstall it "
                            "with '%s' (jax and jaxlib of one version), or use --backend c"
                            % (type(exc).__name__, str(exc).strip().splitlines()[0]
                               if str(exc).strip() else "", JAX_INSTALL)) from None


def compile_function(inputs, outputs, updates=None, backend="c", **kwargs):
    """``theano.function(inputs, outputs, updates=updates, **kwargs)`` on a backend.

    Parameters
    ----------
    inputs : list of variables
        The function's explicit inputs
    outputs : variable or list of variables
        What it returns
    updates : dict or list of pairs, optional
        New values of shared variables, applied after each call
    backend : {'c', 'jax'}
        ``"c"``: Theano's C code (CPU; by default in the mode of
        :func:`backends.c_openmp.c_mode`).  ``"jax"``: one ``jax.jit`` program
        (CPU or GPU, wherever JAX runs); keyword ``precision`` picks the
        matrix product precision there (default ``"float32"``, see
        :class:`backends.jax_linker.JAXLinker`)
    **kwargs
        Passed on to ``theano.function``

    Returns
    -------
    callable
        Called as a Theano function: ``f(*input_values)`` returns the outputs
        as NumPy arrays and applies the updates; ``f.get_shared()`` lists its
        shared variables

    Raises
    ------
    errors.UserError
        For an unknown backend, a missing JAX, or an op the backend cannot run
        (the message names the op)
    """
    check_backend(backend)
    if backend == "c":
        import theano
        from backends.c_openmp import c_mode
        kwargs.setdefault("mode", c_mode())
        return theano.function(inputs, outputs, updates=updates, **kwargs)
    from backends import jax_linker
    try:
        return jax_linker.function(inputs, outputs, updates=updates, **kwargs)
    except jax_linker.UnsupportedOpError as exc:
        raise UserError("the JAX backend cannot run this model: %s; use --backend c"
                        % exc) from None
