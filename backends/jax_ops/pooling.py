"""
JAX forms of Theano's pooling and its gradients.

.. autosummary::
    :nosignatures:

    jax_funcify_Pool
    jax_funcify_MaxPoolGrad
    jax_funcify_AveragePoolGrad

Max, sum and average pooling (padding and the partial windows of
``ignore_border=False`` included) through ``lax.reduce_window``; the gradient
of max pooling with Theano's tie rule through strided slices; the gradient of
sum and average pooling as the transpose of the (linear) pooling.
"""
import compat  # noqa: F401  (Theano's flags, set before theano is first imported)
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from theano.link.jax.jax_dispatch import jax_funcify
from theano.tensor.signal import pool


def _pool_geometry(shape, ws, stride, pad, ignore_border):
    """Output size and the padding (low, high) per pooled axis, as Theano's Pool."""
    out, pads = [], []
    for size, w, s, p in zip(shape, ws, stride, pad):
        padded = size + 2 * p
        if ignore_border:
            n = (padded - w) // s + 1
        elif s >= w:
            n = (size - 1) // s + 1
        else:
            n = max(0, (size - 1 - w + s) // s) + 1
        # extra high padding covers the partial windows of ignore_border=False
        extra = max(0, (n - 1) * s + w - padded)
        out.append(n)
        pads.append((p, p + extra))
    return out, pads


def _pool_arguments(x, ws, stride, pad, ignore_border):
    nd = len(ws)
    ws, stride, pad = (tuple(int(v) for v in np.asarray(a)) for a in (ws, stride, pad))
    out, pads = _pool_geometry(x.shape[-nd:], ws, stride, pad, ignore_border)
    lead = x.ndim - nd
    return dict(window_dimensions=(1,) * lead + ws, window_strides=(1,) * lead + stride,
                padding=[(0, 0)] * lead + pads), out


def _average_divisor(x, ws, stride, pad, ignore_border, mode):
    """Per output element, the number of elements Theano's average divides by."""
    nd = len(ws)
    args, _ = _pool_arguments(x, ws, stride, pad, ignore_border)
    ones = jnp.ones(x.shape[-nd:], x.dtype)
    if mode == "average_inc_pad":
        # explicit padding counts, the overhang of partial windows does not
        # (the padded image is all ones, so its padding is counted too)
        p = [int(v) for v in np.asarray(pad)]
        ones = jnp.ones([s + 2 * v for s, v in zip(x.shape[-nd:], p)], x.dtype)
        padding = [(0, high - low) for low, high in args["padding"][-nd:]]
    else:
        padding = args["padding"][-nd:]
    return lax.reduce_window(ones, np.array(0, x.dtype), lax.add,
                             args["window_dimensions"][-nd:], args["window_strides"][-nd:], padding)


def _pool(x, ws, stride, pad, ignore_border, mode):
    args, _ = _pool_arguments(x, ws, stride, pad, ignore_border)
    if mode == "max":
        return lax.reduce_window(x, np.array(-np.inf, x.dtype), lax.max, **args)
    total = lax.reduce_window(x, np.array(0, x.dtype), lax.add, **args)
    if mode == "sum":
        return total
    return total / _average_divisor(x, ws, stride, pad, ignore_border, mode)


@jax_funcify.register(pool.Pool)
def jax_funcify_Pool(op):
    """Max, sum and average pooling (``Pool``), padding and partial windows included."""
    return lambda x, ws, stride, pad: _pool(x, ws, stride, pad, op.ignore_border, op.mode)


@jax_funcify.register(pool.MaxPoolGrad)
def jax_funcify_MaxPoolGrad(op):
    """Gradient of max pooling with Theano's tie rule.

    Every input element equal to its window's maximum receives the window's
    gradient (not only the first, as in ``lax``'s own gradient), summed over
    the windows that contain it.
    """
    def max_pool_grad(x, maxout, gz, ws, stride, pad):
        nd = len(ws)
        args, out = _pool_arguments(x, ws, stride, pad, op.ignore_border)
        lead = x.ndim - nd
        window = args["window_dimensions"][lead:]
        strides = args["window_strides"][lead:]
        zero = np.array(0, gz.dtype)
        if window == strides and all(low == high == 0 for low, high in args["padding"]):
            # Windows tile the input (the usual 2x2 pooling): compare in a
            # (..., rows, window rows, cols, window cols) view, no scatter needed.
            covered = tuple(n * w for n, w in zip(out, window))
            blocks = x[(Ellipsis,) + tuple(slice(0, c) for c in covered)].reshape(
                x.shape[:lead] + sum(((n, w) for n, w in zip(out, window)), ()))
            spread = (Ellipsis,) + sum(((slice(None), None) for _ in out), ())
            gx = jnp.where(blocks == maxout[spread], gz[spread], zero).reshape(
                x.shape[:lead] + covered)
            return jnp.pad(gx, [(0, 0)] * lead + [(0, size - c) for size, c in
                                                  zip(x.shape[lead:], covered)])
        padded = jnp.pad(x, args["padding"], constant_values=-np.inf)
        gx = 0
        for offset in np.ndindex(*window):
            # the input elements at this offset of every window: a strided view
            stops = [o + (n - 1) * s + 1 for o, n, s in zip(offset, out, strides)]
            view = lax.slice(padded, (0,) * lead + offset, padded.shape[:lead] + tuple(stops),
                             (1,) * lead + strides)
            contribution = jnp.where(view == maxout, gz, zero)
            # back to the input's layout: zeros between and around the strided positions
            gx = gx + lax.pad(contribution, zero, [(0, 0, 0)] * lead + [
                (o, size - stop, s - 1)
                for o, stop, size, s in zip(offset, stops, padded.shape[lead:], strides)])
        return gx[(slice(None),) * lead + tuple(
            slice(low, low + size) for (low, _), size in
            zip(args["padding"][lead:], x.shape[lead:]))]

    return max_pool_grad


@jax_funcify.register(pool.AveragePoolGrad)
def jax_funcify_AveragePoolGrad(op):
    """Gradient of sum and average pooling: the transpose of the (linear) pooling."""
    def average_pool_grad(x, gz, ws, stride, pad):
        transpose = jax.linear_transpose(
            lambda v: _pool(v, ws, stride, pad, op.ignore_border, op.mode),
            jax.ShapeDtypeStruct(x.shape, gz.dtype))
        return transpose(gz)[0]

    return average_pool_grad
