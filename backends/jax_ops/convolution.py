"""
JAX forms of Theano's convolutions and their gradients.

.. autosummary::
    :nosignatures:

    jax_funcify_Conv
    conv_padding

``CorrMM``, ``CorrMM_gradWeights``, ``CorrMM_gradInputs`` and their abstract
forms ``AbstractConv2d*`` (any number of spatial axes, groups, subsampling,
dilation, ``filter_flip``) through ``lax.conv_general_dilated``; the gradients
are its exact linear transposes (``jax.linear_transpose``), their missing
shapes computed by Theano's rules.
"""
import compat  # noqa: F401  (Theano's flags, set before theano is first imported)
import jax
import numpy as np
from jax import lax
from theano.link.jax.jax_dispatch import jax_funcify
from theano.tensor.nnet import abstract_conv, corr

__all__ = ["conv_padding"]


def conv_padding(border_mode, kernel_shape, dilation):
    """Theano's ``border_mode`` as explicit ``(low, high)`` padding per axis.

    Parameters
    ----------
    border_mode : str, int or tuple
        ``'valid'``, ``'full'``, ``'half'``, an int, or per axis an int or a pair
    kernel_shape : sequence of int
        The kernel's spatial shape
    dilation : sequence of int

    Returns
    -------
    list of (int, int)
    """
    dilated = [(k - 1) * d + 1 for k, d in zip(kernel_shape, dilation)]
    if border_mode == "valid":
        return [(0, 0)] * len(dilated)
    if border_mode == "full":
        return [(k - 1, k - 1) for k in dilated]
    if border_mode == "half":
        return [(k // 2, k // 2) for k in dilated]
    if isinstance(border_mode, (int, np.integer)):
        return [(int(border_mode), int(border_mode))] * len(dilated)
    return [(int(m[0]), int(m[1])) if isinstance(m, tuple) else (int(m), int(m))
            for m in border_mode]


def _correlate(image, kernel, op, flip):
    """Theano's correlation (convolution when ``flip``) of NC... images."""
    if getattr(op, "unshared", False):
        raise NotImplementedError("unshared convolution (%s)" % op)
    spatial = image.ndim - 2
    if flip:
        kernel = kernel[(slice(None), slice(None)) + (slice(None, None, -1),) * spatial]
    subsample = tuple(op.subsample) if op.subsample else (1,) * spatial
    dilation = tuple(op.filter_dilation) if op.filter_dilation else (1,) * spatial
    letters = "DHW"[-spatial:]
    return lax.conv_general_dilated(
        image, kernel, window_strides=subsample,
        padding=conv_padding(op.border_mode, kernel.shape[2:], dilation),
        rhs_dilation=dilation, feature_group_count=op.num_groups,
        dimension_numbers=("NC" + letters, "OI" + letters, "NC" + letters))


def _given_shape(shape_inputs):
    # CorrMM_grad* take the spatial shape as scalars, AbstractConv_grad* as a vector.
    if not shape_inputs:
        return None
    return tuple(int(s) for s in np.concatenate([np.asarray(v).reshape(-1)
                                                 for v in shape_inputs]))


def _kernel_shape(op, image_shape, top_shape, given):
    """Spatial kernel shape of a weight gradient (Theano's CorrMM_gradWeights rule)."""
    if given:
        return given
    dilation = op.filter_dilation or (1,) * len(top_shape)
    shape = []
    for axis, (size, top, d) in enumerate(zip(image_shape, top_shape, dilation)):
        if op.border_mode == "full":
            dilated = top - size + 1
        else:
            low, high = conv_padding(op.border_mode, (1,) * len(top_shape),
                                     dilation)[axis]  # explicit or valid
            dilated = size + low + high - (top - 1) * op.subsample[axis]
        shape.append((dilated - 1) // d + 1)
    return tuple(shape)


def _image_shape(op, kernel_shape, top_shape, given):
    """Spatial image shape of an input gradient (Theano's CorrMM_gradInputs rule)."""
    if given:
        return given
    dilation = op.filter_dilation or (1,) * len(top_shape)
    pads = conv_padding(op.border_mode, kernel_shape, dilation)
    return tuple((top - 1) * s + (k - 1) * d + 1 - low - high
                 for top, s, k, d, (low, high)
                 in zip(top_shape, op.subsample, kernel_shape, dilation, pads))


def _conv_forward(flip):
    def make(op):
        return lambda image, kernel: _correlate(image, kernel, op, flip(op))
    return make


def _conv_grad_weights(flip):
    def make(op):
        def grad_weights(image, top, *shape):
            groups = op.num_groups
            spatial = _kernel_shape(op, image.shape[2:], top.shape[2:], _given_shape(shape))
            kernel = jax.ShapeDtypeStruct(
                (top.shape[1], image.shape[1] // groups) + spatial, top.dtype)
            transpose = jax.linear_transpose(
                lambda k: _correlate(image, k, op, flip(op)), kernel)
            return transpose(top)[0]
        return grad_weights
    return make


def _conv_grad_inputs(flip):
    def make(op):
        def grad_inputs(kernel, top, *shape):
            spatial = _image_shape(op, kernel.shape[2:], top.shape[2:], _given_shape(shape))
            image = jax.ShapeDtypeStruct(
                (top.shape[0], kernel.shape[1] * op.num_groups) + spatial, top.dtype)
            transpose = jax.linear_transpose(
                lambda i: _correlate(i, kernel, op, flip(op)), image)
            return transpose(top)[0]
        return grad_inputs
    return make


def _no_flip(op):
    return False


def _filter_flip(op):
    return op.filter_flip


_CONV_OPS = [
    (corr.CorrMM, _conv_forward(_no_flip)),
    (corr.CorrMM_gradWeights, _conv_grad_weights(_no_flip)),
    (corr.CorrMM_gradInputs, _conv_grad_inputs(_no_flip)),
    (abstract_conv.AbstractConv, _conv_forward(_filter_flip)),
    (abstract_conv.AbstractConv_gradWeights, _conv_grad_weights(_filter_flip)),
    (abstract_conv.AbstractConv_gradInputs, _conv_grad_inputs(_filter_flip)),
]


def jax_funcify_Conv(op):
    """JAX function of a CorrMM* or AbstractConv* op (registered for each)."""
    for op_class, make in _CONV_OPS:
        if isinstance(op, op_class):
            return make(op)
    raise NotImplementedError(str(op))


for _op_class, _ in _CONV_OPS:
    jax_funcify.register(_op_class, jax_funcify_Conv)
