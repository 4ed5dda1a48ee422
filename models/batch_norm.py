"""
Batch normalization for Lasagne 0.1, with the semantics of later Lasagne.

Lasagne 0.1, the last release on PyPI, has no batch normalization; the
networks ``small_vgg`` and ``vgg`` need it.  The original experiments ran on
Lasagne's development version (0.2.dev, which has ``batch_norm``); this layer
and :func:`batch_norm` follow that version's semantics.

.. autosummary::
    :nosignatures:

    BatchNormLayer
    batch_norm

The running averages are non-trainable parameters of the layer.  A
non-deterministic pass gives them a Theano ``default_update``, so any
function compiled from that pass (the training function) updates them as a
side effect; a deterministic pass (validation) reads them and changes nothing.
A training pass over 4-D input normalized over all axes but the channels (the
networks' case) is computed by :class:`ops.batch_norm.BatchNormTrain`,
one op with C code, and its gradient by another; other passes by Theano's
elementwise ops and sums.

Examples
--------
>>> import compat  # noqa: F401
>>> import lasagne
>>> from models.batch_norm import batch_norm
>>> l_in = lasagne.layers.InputLayer((None, 3, 32, 32))
>>> l_conv = lasagne.layers.Conv2DLayer(l_in, num_filters=16, filter_size=3)
>>> l_bn = batch_norm(l_conv)
>>> [p.name for p in lasagne.layers.get_all_params(l_bn, trainable=True)]
['W', 'beta', 'gamma']
>>> [p.name for p in lasagne.layers.get_all_params(l_bn, trainable=False)]
['mean', 'inv_std']
"""
import compat  # noqa: F401  (Theano flags and Lasagne shims before lasagne)
import lasagne
import numpy as np
import theano
import theano.tensor as T
from lasagne import init

from ops.batch_norm import BatchNormTrain

__all__ = ["BatchNormLayer", "batch_norm"]


class BatchNormLayer(lasagne.layers.Layer):
    """Batch normalization layer [1]_.

    Normalizes its input to zero mean and unit variance over all axes but the
    channel axis (the second), then scales and shifts it by learned
    parameters:

    .. math::
        y = \\frac{x - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}} \\gamma + \\beta

    Parameters
    ----------
    incoming : a :class:`lasagne.layers.Layer` instance or a tuple
        The layer feeding into this layer, or the expected input shape
    axes : 'auto', int or tuple of int
        The axes to normalize over; 'auto' means all axes but the second
    epsilon : float
        Small constant added to the variance before the square root
    alpha : float
        Weight of the minibatch statistics in the exponential moving averages
        (see Notes)
    beta : initializer, array, shared variable or None
        The shift :math:`\\beta`; None for no shift
    gamma : initializer, array, shared variable or None
        The scale :math:`\\gamma`; None for no scale
    mean : initializer, array or shared variable
        The running mean :math:`\\mu` used in deterministic passes
    inv_std : initializer, array or shared variable
        The running inverse standard deviation :math:`1 / \\sqrt{\\sigma^2 +
        \\epsilon}` used in deterministic passes
    **kwargs
        Passed to :class:`lasagne.layers.Layer` (e.g. ``name``)

    Notes
    -----
    In a non-deterministic pass (``deterministic=False``, the default) the
    layer normalizes with the minibatch's mean and (biased) variance and
    updates the running averages:

    .. math::
        \\mu &\\leftarrow (1 - \\alpha) \\mu + \\alpha \\mu_B \\\\
        s &\\leftarrow (1 - \\alpha) s + \\alpha / \\sqrt{\\sigma_B^2 + \\epsilon}

    With ``deterministic=True`` it normalizes with the running averages and
    does not update them.  ``get_output`` also takes
    ``batch_norm_use_averages`` and ``batch_norm_update_averages`` to choose
    each behaviour separately.

    ``beta`` and ``gamma`` are trainable; ``mean`` and ``inv_std`` carry the
    tag ``trainable=False``, so ``get_all_params(layer, trainable=True)``
    leaves them out and ``get_all_params(layer)`` (a checkpoint) includes them.

    References
    ----------
    .. [1] Ioffe, Sergey and Szegedy, Christian (2015):
           Batch Normalization: Accelerating Deep Network Training by Reducing
           Internal Covariate Shift. http://arxiv.org/abs/1502.03167.
    """
    def __init__(self, incoming, axes='auto', epsilon=1e-4, alpha=0.1,
                 beta=init.Constant(0), gamma=init.Constant(1),
                 mean=init.Constant(0), inv_std=init.Constant(1), **kwargs):
        super(BatchNormLayer, self).__init__(incoming, **kwargs)
        if axes == 'auto':
            axes = (0,) + tuple(range(2, len(self.input_shape)))
        elif isinstance(axes, int):
            axes = (axes,)
        self.axes = tuple(axes)
        self.epsilon = epsilon
        self.alpha = alpha

        shape = [size for axis, size in enumerate(self.input_shape) if axis not in self.axes]
        if any(size is None for size in shape):
            raise ValueError("BatchNormLayer needs the size of every axis it does not "
                             "normalize over; got input shape %r and axes %r"
                             % (self.input_shape, self.axes))
        self.beta = None if beta is None else self.add_param(
            beta, shape, 'beta', trainable=True, regularizable=False)
        self.gamma = None if gamma is None else self.add_param(
            gamma, shape, 'gamma', trainable=True, regularizable=True)
        self.mean = self.add_param(mean, shape, 'mean', trainable=False, regularizable=False)
        self.inv_std = self.add_param(inv_std, shape, 'inv_std',
                                      trainable=False, regularizable=False)

    def get_output_for(self, input, deterministic=False, batch_norm_use_averages=None,
                       batch_norm_update_averages=None, **kwargs):
        use_averages = (deterministic if batch_norm_use_averages is None
                        else batch_norm_use_averages)
        update_averages = (not deterministic if batch_norm_update_averages is None
                           else batch_norm_update_averages)
        if update_averages:
            # Clones share the stored arrays; giving the clones (not the
            # parameters) a default update means only functions built from
            # this pass update the averages, not every function reading them.
            running = [theano.clone(p, share_inputs=False) for p in (self.mean, self.inv_std)]

        if not use_averages and input.ndim == 4 and self.axes == (0, 2, 3):
            # A training pass over images (the networks' case): one op, see ops.batch_norm.
            beta = self._channel_param(self.beta, 0, input.dtype)
            gamma = self._channel_param(self.gamma, 1, input.dtype)
            if update_averages:
                # Put the clones into the graph without changing the result, so
                # theano.function finds them and applies their default updates.
                beta = beta + T.cast(0 * running[0] + 0 * running[1], input.dtype)
            output, batch_mean, batch_inv_std = BatchNormTrain(self.epsilon)(input, gamma, beta)
        else:
            batch_mean = input.mean(self.axes)
            batch_inv_std = T.inv(T.sqrt(input.var(self.axes) + self.epsilon))
            if use_averages:
                mean, inv_std = self.mean, self.inv_std
            else:
                mean, inv_std = batch_mean, batch_inv_std
            if update_averages:
                mean += 0 * running[0]  # as in the fused case above
                inv_std += 0 * running[1]
            # Parameters hold the channel axis only: broadcast them over the others.
            param_axes = iter(range(input.ndim - len(self.axes)))
            pattern = ['x' if axis in self.axes else next(param_axes)
                       for axis in range(input.ndim)]
            beta = 0 if self.beta is None else self.beta.dimshuffle(pattern)
            gamma = 1 if self.gamma is None else self.gamma.dimshuffle(pattern)
            output = ((input - mean.dimshuffle(pattern)) * (gamma * inv_std.dimshuffle(pattern))
                      + beta)

        if update_averages:
            for clone, batch_value in zip(running, (batch_mean, batch_inv_std)):
                clone.default_update = self._moving_average(clone, batch_value)
        return output

    def _channel_param(self, param, fill, dtype):
        # beta or gamma as BatchNormTrain takes them: a vector of the input's dtype
        if param is None:
            return T.fill(self.mean, np.asarray(fill, dtype))
        return T.cast(param, dtype)

    def _moving_average(self, running, batch_value):
        average = (1 - self.alpha) * running + self.alpha * batch_value
        # The update must have the shared variable's exact type (dtype and
        # broadcastable pattern), or theano.function rejects it.
        return T.patternbroadcast(T.cast(average, running.dtype), running.broadcastable)


def batch_norm(layer, **kwargs):
    """Apply batch normalization to a layer's output, as later Lasagne does.

    Removes the layer's bias (the normalization's :math:`\\beta` takes its
    place), inserts a :class:`BatchNormLayer` after it and moves the layer's
    nonlinearity behind the normalization.

    Parameters
    ----------
    layer : a :class:`lasagne.layers.Layer` instance
        The layer to normalize; changed in place (bias removed, nonlinearity
        set to identity)
    **kwargs
        Passed to :class:`BatchNormLayer`

    Returns
    -------
    lasagne.layers.Layer
        The :class:`BatchNormLayer`, or a
        :class:`lasagne.layers.NonlinearityLayer` on top of it when ``layer``
        had a nonlinearity other than the identity

    Examples
    --------
    >>> import compat  # noqa: F401
    >>> import lasagne
    >>> from models.batch_norm import batch_norm
    >>> l_dense = lasagne.layers.DenseLayer((None, 10), num_units=5, name='fc')
    >>> l_out = batch_norm(l_dense)
    >>> type(l_out).__name__, l_out.input_layer.name, l_dense.b is None
    ('NonlinearityLayer', 'fc_bn', True)
    """
    nonlinearity = getattr(layer, 'nonlinearity', None)
    if nonlinearity is not None:
        layer.nonlinearity = lasagne.nonlinearities.identity
    if getattr(layer, 'b', None) is not None:
        del layer.params[layer.b]
        layer.b = None
    bn_name = kwargs.pop('name', None) or (layer.name and layer.name + '_bn')
    layer = BatchNormLayer(layer, name=bn_name, **kwargs)
    if nonlinearity is not None and nonlinearity is not lasagne.nonlinearities.identity:
        nonlin_name = bn_name and bn_name + '_nonlin'
        layer = lasagne.layers.NonlinearityLayer(layer, nonlinearity, name=nonlin_name)
    return layer
