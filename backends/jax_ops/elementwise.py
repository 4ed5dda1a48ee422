"""
JAX implementations of the Theano ops the five networks need.

Theano-PyMC 1.1 converts a graph to JAX through ``jax_funcify``, a
``functools.singledispatch`` that maps an op to a function of the op's input
values.  Importing this module registers implementations for the ops it lacks
or implements against an older JAX:

.. autosummary::
    :nosignatures:

    jax_funcify_Conv
    jax_funcify_Pool
    jax_funcify_MaxPoolGrad
    jax_funcify_AveragePoolGrad
    jax_funcify_mrg_uniform
    mrg31k3p_uniform
    per_run_dot

- convolutions (``CorrMM``, ``CorrMM_gradWeights``, ``CorrMM_gradInputs`` and
  their abstract forms ``AbstractConv2d*``) through ``lax.conv_general_dilated``;
  the gradients are its exact linear transposes;
- pooling (``Pool``, ``MaxPoolGrad`` with Theano's tie rule, ``AveragePoolGrad``)
  through ``lax.reduce_window`` and strided slices;
- the project's own ops (local response normalization, batch normalization),
  whose JAX forms live beside their C code in :mod:`ops` and are registered
  here;
- the classifier ops (``SoftmaxWithBias``, ``SoftmaxGrad``, ``LogSoftmax``,
  ``CrossentropyCategorical1Hot(Grad)``, ``CrossentropySoftmaxArgmax1HotWithBias``,
  ``CrossentropySoftmax1HotWithBiasDx``);
- ``mrg_uniform``, MRG31k3p ported bit-exactly, so that dropout masks of the
  JAX backend are those of the C backend;
- ``Dot`` through :func:`per_run_dot`, which under ``jax.vmap`` (a batch of
  runs, :mod:`backends.batched`) computes each run's product on its own;
- replacements for Theano-PyMC's own versions that break on current JAX
  (scalar ops: ``jnp.product``; ``IncSubtensor``: ``jax.ops.index_update``;
  ``CAReduce``, ``Reshape``, ``Shape_i``, ``Argmax``).

Every implementation is a pure function of JAX arrays, traced once into the
single ``jax.jit`` program of :mod:`backends.jax_linker` by
:class:`backends.jax_graph.GraphProgram`.  Shape arguments
(window sizes, reshape targets) arrive as concrete NumPy values there.

Examples
--------
>>> import compat  # noqa: F401
>>> import numpy as np
>>> from backends import jax_ops
>>> state = np.array([[12345] * 6], dtype="int32")
>>> new_state, sample = jax_ops.mrg31k3p_uniform(state, (3,), "float32")
>>> sample.shape
(3,)
"""
import functools

import compat  # noqa: F401  (Theano's flags, set before theano is first imported)
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from theano.compile.ops import Shape, Shape_i
from theano.link.jax.jax_dispatch import jax_funcify
from theano.sandbox.rng_mrg import mrg_uniform
from theano.scalar import basic as scalar
from theano.tensor import basic as tensor
from theano.tensor.elemwise import CAReduce, Elemwise
from theano.tensor.nnet import abstract_conv, corr, nnet
from theano.tensor.opt import Assert
from theano.tensor.signal import pool
from theano.tensor import subtensor

import ops
from backends.jax_graph import GraphProgram, is_tracer

__all__ = ["jax_funcify", "mrg31k3p_uniform", "per_run_dot", "conv_padding", "is_tracer"]

# Theano's dtypes (int64 indices, float64 accumulators) are kept as they are:
# the JAX program computes in the same types as the C backend.
jax.config.update("jax_enable_x64", True)

# The project's own ops keep their JAX forms beside their C code (:mod:`ops`).
ops.register_jax(jax_funcify)


# -- scalar and elementwise ops ---------------------------------------------------------

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


@jax.custom_batching.custom_vmap
def per_run_dot(x, y):
    """``jnp.dot(x, y)``; under ``jax.vmap``, one such product per batch element.

    A batch of runs (:mod:`backends.batched`) maps each run's graph over a
    leading axis.  ``jnp.dot`` would become one batched product there, which
    XLA computes with other kernels than a run's own product (on the CPU,
    oneDNN's for 2 runs or more, Eigen's for one run alone or a batch of 1,
    whose float32 sums round differently): so each run's product is computed
    on its own, with its own shapes, as the run alone computes it.  Nested
    maps unstack level by level.

    Parameters
    ----------
    x, y : JAX arrays
        As for ``jnp.dot``

    Returns
    -------
    JAX array
        ``jnp.dot(x, y)``
    """
    return jnp.dot(x, y)


@per_run_dot.def_vmap
def _per_run_dot_vmap(axis_size, in_batched, x, y):
    # The mapped axis of a batched operand is its first.
    x_batched, y_batched = in_batched
    products = [per_run_dot(x[k] if x_batched else x, y[k] if y_batched else y)
                for k in range(axis_size)]
    return jnp.stack(products), True


@jax_funcify.register(tensor.Dot)
def jax_funcify_Dot(op):
    return per_run_dot


# -- shapes and indexing ----------------------------------------------------------------

@jax_funcify.register(Shape)
def jax_funcify_Shape(op):
    # Shapes are static inside jax.jit: return them as NumPy values, so that
    # the shape arithmetic downstream stays concrete (see jax_linker).
    return lambda x: np.asarray(jnp.shape(x), dtype="int64")


@jax_funcify.register(Shape_i)
def jax_funcify_Shape_i(op):
    return lambda x: np.asarray(jnp.shape(x)[op.i], dtype="int64")


@jax_funcify.register(tensor.Reshape)
def jax_funcify_Reshape(op):
    return lambda x, shape: jnp.reshape(x, tuple(int(s) for s in np.asarray(shape)))


@jax_funcify.register(Assert)
def jax_funcify_Assert(op):
    # Shape assertions on concrete values were checked while tracing; a jitted
    # program cannot raise, so the others are dropped.
    def assert_(x, *conditions):
        for condition in conditions:
            if not is_tracer(condition) and not np.all(condition):
                raise AssertionError(op.msg)
        return x

    return assert_


def _index(idx_list, values):
    """Rebuild a Subtensor's index tuple from its idx_list and input values."""
    values = list(values)

    def convert(entry):
        if isinstance(entry, slice):
            return slice(convert(entry.start), convert(entry.stop), convert(entry.step))
        if entry is None or isinstance(entry, (int, np.integer)):
            return entry
        value = values.pop(0)
        return value if is_tracer(value) else int(value)

    return tuple(convert(entry) for entry in idx_list)


@jax_funcify.register(subtensor.Subtensor)
def jax_funcify_Subtensor(op):
    return lambda x, *indices: jnp.asarray(x)[_index(op.idx_list, indices)]


@jax_funcify.register(subtensor.IncSubtensor)
def jax_funcify_IncSubtensor(op):
    # x[index] = y or x[index] += y, functionally (was jax.ops.index_update/add).
    def inc_subtensor(x, y, *indices):
        at = jnp.asarray(x).at[_index(op.idx_list, indices)]
        return at.set(y) if op.set_instead_of_inc else at.add(y)

    return inc_subtensor


@jax_funcify.register(subtensor.AdvancedSubtensor1)
def jax_funcify_AdvancedSubtensor1(op):
    return lambda x, index: jnp.asarray(x)[jnp.asarray(index)]


@jax_funcify.register(subtensor.AdvancedIncSubtensor1)
def jax_funcify_AdvancedIncSubtensor1(op):
    def advanced_inc_subtensor1(x, y, index):
        at = jnp.asarray(x).at[jnp.asarray(index)]
        return at.set(y) if op.set_instead_of_inc else at.add(y)

    return advanced_inc_subtensor1


@jax_funcify.register(subtensor.AdvancedSubtensor)
def jax_funcify_AdvancedSubtensor(op):
    return lambda x, *indices: jnp.asarray(x)[tuple(indices)]


@jax_funcify.register(subtensor.AdvancedIncSubtensor)
def jax_funcify_AdvancedIncSubtensor(op):
    def advanced_inc_subtensor(x, y, *indices):
        at = jnp.asarray(x).at[tuple(indices)]
        return at.set(y) if op.set_instead_of_inc else at.add(y)

    return advanced_inc_subtensor


# -- convolutions ----------------------------------------------------------------------

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


# -- pooling ---------------------------------------------------------------------------

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


# -- classifier ops --------------------------------------------------------------------

def _softmax(x):
    e = jnp.exp(x - jnp.max(x, axis=1, keepdims=True))
    return e * (1 / jnp.sum(e, axis=1, keepdims=True))


@jax_funcify.register(nnet.Softmax)
def jax_funcify_Softmax(op):
    return _softmax


@jax_funcify.register(nnet.SoftmaxWithBias)
def jax_funcify_SoftmaxWithBias(op):
    return lambda x, b: _softmax(x + b[None, :])


@jax_funcify.register(nnet.SoftmaxGrad)
def jax_funcify_SoftmaxGrad(op):
    return lambda dy, sm: (dy - jnp.sum(dy * sm, axis=1, keepdims=True)) * sm


@jax_funcify.register(nnet.LogSoftmax)
def jax_funcify_LogSoftmax(op):
    return lambda x: jax.nn.log_softmax(x, axis=1)


def _rows(n):
    return jnp.arange(n)


@jax_funcify.register(nnet.CrossentropyCategorical1Hot)
def jax_funcify_CrossentropyCategorical1Hot(op):
    return lambda coding, one_of_n: -jnp.log(coding[_rows(coding.shape[0]), one_of_n])


@jax_funcify.register(nnet.CrossentropyCategorical1HotGrad)
def jax_funcify_CrossentropyCategorical1HotGrad(op):
    def crossentropy_grad(g_y, coding, one_of_n):
        rows = _rows(coding.shape[0])
        return jnp.zeros_like(coding).at[rows, one_of_n].set(-g_y / coding[rows, one_of_n])

    return crossentropy_grad


@jax_funcify.register(nnet.CrossentropySoftmaxArgmax1HotWithBias)
def jax_funcify_CrossentropySoftmaxArgmax1HotWithBias(op):
    def crossentropy_softmax(x, b, y_idx):
        row = x + b[None, :]
        am = jnp.argmax(row, axis=1)
        shifted = row - jnp.max(row, axis=1, keepdims=True)
        log_norm = jnp.log(jnp.sum(jnp.exp(shifted), axis=1))
        nll = log_norm - shifted[_rows(x.shape[0]), y_idx]
        return nll, _softmax(row), am.astype(y_idx.dtype)

    return crossentropy_softmax


@jax_funcify.register(nnet.CrossentropySoftmax1HotWithBiasDx)
def jax_funcify_CrossentropySoftmax1HotWithBiasDx(op):
    def crossentropy_softmax_dx(dy, sm, y_idx):
        dy = jnp.broadcast_to(jnp.reshape(dy, (-1,)), (sm.shape[0],))
        dx = dy[:, None] * sm
        return dx.at[_rows(sm.shape[0]), y_idx].add(-dy)

    return crossentropy_softmax_dx


# -- MRG31k3p random numbers -----------------------------------------------------------

M1, M2 = np.int32(2147483647), np.int32(2147462579)
MASK12, MASK13, MASK2, MULT2 = (np.int32(v) for v in (511, 16777215, 65535, 21069))
#: Scale from the integer sample to (0, 1), the C code's literal for each dtype.
NORM = {"float32": np.float32(4.6566126e-10), "float64": np.float64(4.656612873077392578125e-10)}


def _wrap(y, modulus):
    # The C code's 'if (y < 0 || y >= M) y -= M;' on int32, overflow included.
    return jnp.where((y < 0) | (y >= modulus), y - modulus, y)


def _mrg_step(state):
    """One step of every stream: new state (n, 6) and the integer sample (n,)."""
    x11, x12, x13, x21, x22, x23 = (state[:, i] for i in range(6))
    y1 = (((x12 & MASK12) << 22) + (x12 >> 9)
          + ((x13 & MASK13) << 7) + (x13 >> 24))
    y1 = _wrap(_wrap(y1, M1) + x13, M1)
    x13, x12, x11 = x12, x11, y1
    y1 = _wrap(((x21 & MASK2) << 15) + MULT2 * (x21 >> 16), M2)
    y2 = _wrap(((x23 & MASK2) << 15) + MULT2 * (x23 >> 16), M2)
    y2 = _wrap(_wrap(y2 + x23, M2) + y1, M2)
    x23, x22, x21 = x22, x21, y2
    sample = jnp.where(x11 <= x21, x11 - x21 + M1, x11 - x21)
    return jnp.stack([x11, x12, x13, x21, x22, x23], axis=1), sample


#: MRG31k3p's two linear recurrences as 3x3 matrices on a stream's state
#: ``(newest, middle, oldest)``: one step is ``state <- A @ state mod M``.
_A1 = ((0, 2 ** 22, 2 ** 7 + 1), (1, 0, 0), (0, 1, 0))
_A2 = ((2 ** 15, 0, 2 ** 15 + 1), (1, 0, 0), (0, 1, 0))


@functools.lru_cache(maxsize=64)
def _jump_matrices(steps):
    """``A1**k mod M1`` and ``A2**k mod M2`` for k = 1..steps, int64 arrays (steps, 3, 3)."""
    powers = []
    for matrix, modulus in ((_A1, int(M1)), (_A2, int(M2))):
        step, current, out = np.array(matrix, dtype=object), np.eye(3, dtype=object), []
        for _ in range(steps):
            current = step.dot(current) % modulus  # Python integers: no overflow
            out.append(current)
        powers.append(np.array(out, dtype=np.int64).reshape(steps, 3, 3))
    return powers


def _jump(matrices, state, modulus):
    """``matrices @ state mod modulus`` for every stream; int64 products below 2**62."""
    products = (matrices[:, None, :, :] * state[None, :, None, :]) % modulus
    return products.sum(axis=-1) % modulus


def mrg31k3p_uniform(rstate, size, dtype):
    """Uniform samples in (0, 1) from Theano's MRG31k3p streams, bit for bit.

    Element ``i`` of the (flattened) sample is the next number of stream
    ``i % n_streams``, as in Theano's ``mrg_uniform`` C code.  Instead of
    stepping every stream ``k`` times in sequence (``k`` small kernels on a
    GPU), the ``k``-th state is computed directly as ``A**k @ state mod M``
    (the recurrences are linear): all samples at once, the same integers.

    Parameters
    ----------
    rstate : int32 array (n_streams, 6)
        The streams' states
    size : sequence of int
        Shape of the sample
    dtype : {'float32', 'float64'}

    Returns
    -------
    new_rstate : int32 array (n_streams, 6)
    sample : array of ``size``
    """
    if str(dtype) not in NORM:
        raise NotImplementedError("mrg_uniform of dtype %s" % dtype)
    rstate = jnp.asarray(rstate, dtype="int32")
    size = tuple(int(s) for s in np.asarray(size).reshape(-1))
    n = int(np.prod(size, dtype="int64"))
    if n > M1:
        raise ValueError("rng_mrg does not support more than (2**31 - 1) samples")
    streams = rstate.shape[0]
    steps = -(-n // streams)
    if steps == 0:
        return rstate, jnp.zeros(size, dtype)
    powers1, powers2 = _jump_matrices(steps)
    state = rstate.astype("int64")
    first = _jump(jnp.asarray(powers1[:, :1]), state[:, :3], int(M1))[..., 0]  # (steps, n)
    second = _jump(jnp.asarray(powers2[:, :1]), state[:, 3:], int(M2))[..., 0]
    samples = jnp.where(first <= second, first - second + int(M1), first - second)
    # A stream advances once per sample it gives: the last step only the first 'used'.
    used = n - (steps - 1) * streams
    last = jnp.concatenate([_jump(jnp.asarray(powers1[steps - 1:]), state[:, :3], int(M1))[0],
                            _jump(jnp.asarray(powers2[steps - 1:]), state[:, 3:], int(M2))[0]],
                           axis=1)
    if steps > 1:
        before = jnp.concatenate(
            [_jump(jnp.asarray(powers1[steps - 2:steps - 1]), state[:, :3], int(M1))[0],
             _jump(jnp.asarray(powers2[steps - 2:steps - 1]), state[:, 3:], int(M2))[0]], axis=1)
    else:
        before = state
    new_state = jnp.where((jnp.arange(streams) < used)[:, None], last, before)
    flat = samples.reshape(-1)[:n]
    return (new_state.astype("int32"),
            (flat.astype("int32").astype(dtype) * NORM[str(dtype)]).reshape(size))


def _mrg31k3p_uniform_scan(rstate, size, dtype):
    """:func:`mrg31k3p_uniform` stepping the streams in sequence (the C code's way; tests)."""
    rstate = jnp.asarray(rstate, dtype="int32")
    size = tuple(int(s) for s in np.asarray(size).reshape(-1))
    n = int(np.prod(size, dtype="int64"))
    streams = rstate.shape[0]
    steps = -(-n // streams)

    def body(state, _):
        return _mrg_step(state)

    state, samples = lax.scan(body, rstate, None, length=steps - 1)
    last_state, last_sample = _mrg_step(state)
    used = n - (steps - 1) * streams
    new_state = jnp.where((jnp.arange(streams) < used)[:, None], last_state, state)
    flat = jnp.concatenate([samples.reshape(-1), last_sample[:used]])
    return new_state, (flat.astype(dtype) * NORM[str(dtype)]).reshape(size)


#: How ``mrg_uniform`` computes its samples: True jumps ahead
#: (:func:`mrg31k3p_uniform`), False steps the streams in sequence (``lax.scan``),
#: None (default) jumps on accelerators and steps on the CPU, the faster way on
#: each (int64 remainders are dear on a CPU; a scan's sequential steps on a GPU).
#: Both give the same numbers.
MRG_JUMP_AHEAD = None


@jax_funcify.register(mrg_uniform)
def jax_funcify_mrg_uniform(op):
    """MRG31k3p uniform sample (``mrg_uniform``), see :func:`mrg31k3p_uniform`."""
    def sample(rstate, size):
        jump = MRG_JUMP_AHEAD
        if jump is None:
            jump = jax.default_backend() != "cpu"
        function = mrg31k3p_uniform if jump else _mrg31k3p_uniform_scan
        return function(rstate, size, op.output_type.dtype)

    return sample
