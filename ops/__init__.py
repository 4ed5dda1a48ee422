"""
The project's own Theano ops: each one's Python, C and JAX forms in one module.

.. autosummary::
    :nosignatures:

    register_jax

- :mod:`ops.lrn`: local response normalization across channels (CifarNet's) and
  its gradient;
- :mod:`ops.batch_norm`: a batch normalization training pass and its gradient;
- :mod:`ops.max_pool_grad`: the gradient of max-pooling with tiling windows (C
  backend only).

This is the layer between the environment (:mod:`compat`) and the backends:
it imports neither the backends nor the models.  Each op has a NumPy
``perform`` (Theano's Python fallback and the reference), C code (the ``c``
backend) and, where the JAX backend meets it, a JAX form that
:mod:`backends.jax_ops` registers through :func:`register_jax`; JAX itself is
imported only inside those forms.
"""
from ops import batch_norm, lrn

__all__ = ["register_jax"]


def register_jax(jax_funcify):
    """Register the JAX forms of every op that has one with Theano's ``jax_funcify``."""
    lrn.register_jax(jax_funcify)
    batch_norm.register_jax(jax_funcify)
