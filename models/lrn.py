"""
Lasagne's local response normalization layer computed by one op (:mod:`ops.lrn`).

.. autosummary::
    :nosignatures:

    LocalResponseNormLayer

Examples
--------
>>> import compat  # noqa: F401
>>> import lasagne
>>> from models.lrn import LocalResponseNormLayer
>>> l_in = lasagne.layers.InputLayer((None, 8, 5, 5))
>>> LocalResponseNormLayer(l_in).output_shape
(None, 8, 5, 5)
"""
import compat  # noqa: F401  (Theano flags and Lasagne shims before lasagne)
from lasagne.layers import LocalResponseNormalization2DLayer

from ops.lrn import LocalResponseNorm

__all__ = ["LocalResponseNormLayer"]


class LocalResponseNormLayer(LocalResponseNormalization2DLayer):
    """Lasagne's ``LocalResponseNormalization2DLayer`` as one op and its gradient as another.

    Same parameters (``alpha=1e-4, k=2, beta=0.75, n=5``, ``n`` odd) and the
    same output up to rounding; see the module docstring.
    """

    def get_output_for(self, input, **kwargs):
        return LocalResponseNorm(self.alpha, self.k, self.beta, self.n)(input)
