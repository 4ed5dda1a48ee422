"""
Lasagne 0.1's 2-D convolution layer, padded by the convolution instead of by a copy.

.. autosummary::
    :nosignatures:

    Conv2DLayer

Lasagne 0.1's ``Conv2DLayer`` with ``pad=p`` copies its input into a
zero-filled array ``2p`` larger (an ``Alloc`` and an ``IncSubtensor``, and a
``Subtensor`` of the gradient) and convolves that without padding.  Theano's
convolution pads on its own (``border_mode=(p, p)``; the C backend's ``CorrMM``
writes the zeros while it unrolls the image): the same sums of the same
products, so the same values bit for bit, without the copies, which took
about 5% of Vgg's training step.

Examples
--------
>>> import compat  # noqa: F401
>>> from models.conv import Conv2DLayer
>>> Conv2DLayer((None, 3, 32, 32), num_filters=8, filter_size=3, pad=1).output_shape
(None, 8, 32, 32)
"""
import compat  # noqa: F401  (Theano flags and Lasagne shims before lasagne)
import lasagne
import theano.tensor as T

__all__ = ["Conv2DLayer"]


class Conv2DLayer(lasagne.layers.Conv2DLayer):
    """Lasagne 0.1's ``Conv2DLayer``: same parameters, same output, integer padding in the op.

    No padding, ``pad='same'`` or ``'full'``, or a ``convolution`` other than
    Theano's ``conv2d`` keep Lasagne's own graph; see the module docstring.
    """

    def get_output_for(self, input, input_shape=None, **kwargs):
        if isinstance(self.pad, str) or not any(self.pad) \
                or self.convolution is not T.nnet.conv2d:
            return super().get_output_for(input, input_shape=input_shape, **kwargs)
        conved = self.convolution(input, self.W, input_shape=input_shape or self.input_shape,
                               filter_shape=self.get_W_shape(), border_mode=tuple(self.pad),
                               subsample=self.stride)
        if self.b is None:
            activation = conved
        elif self.untie_biases:
            activation = conved + self.b.dimshuffle('x', 0, 1, 2)
        else:
            activation = conved + self.b.dimshuffle('x', 0, 'x', 'x')
        return self.nonlinearity(activation)
