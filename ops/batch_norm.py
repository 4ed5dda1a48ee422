"""
Batch normalization of a training pass as one Theano op, with C code, and its gradient as another.

.. autosummary::
    :nosignatures:

    BatchNormTrain
    BatchNormTrainGrad
    batch_norm_train_reference
    register_jax

Built from Theano's elementwise ops and sums, a training pass of
:class:`models.batch_norm.BatchNormLayer` and its gradient are about fifteen
passes over the activations; on the CPU they took a third of Vgg's training
step.  :class:`BatchNormTrain` computes, per channel of a 4-D input
``(batch, channels, rows, columns)``, the batch's mean and (biased) variance
and the normalized, scaled and shifted output in two passes;
:class:`BatchNormTrainGrad` the gradients in two more.  Sums are taken in
float64 (as Theano's ``Sum`` does for float32), channels and images in
parallel with OpenMP.  The JAX backend computes both ops with ``jax.numpy``:
their JAX forms are here, registered by :func:`register_jax`.

Examples
--------
>>> import compat  # noqa: F401
>>> import numpy as np, theano, theano.tensor as T
>>> from ops.batch_norm import BatchNormTrain
>>> x, gamma, beta = T.tensor4("x"), T.vector("gamma"), T.vector("beta")
>>> y, mean, inv_std = BatchNormTrain(epsilon=1e-4)(x, gamma, beta)
>>> f = theano.function([x, gamma, beta], [mean, inv_std])
>>> value = np.arange(8, dtype="float32").reshape(2, 1, 2, 2)
>>> [a.round(4) for a in f(value, np.ones(1, "float32"), np.zeros(1, "float32"))]
[array([3.5], dtype=float32), array([0.4364], dtype=float32)]
"""
import compat  # noqa: F401  (Theano flags before theano)
import numpy as np
import theano.tensor as T
from theano.gradient import DisconnectedType
from theano.graph.basic import Apply
from theano.graph.op import OpenMPOp

__all__ = ["BatchNormTrain", "BatchNormTrainGrad", "batch_norm_train_reference",
           "register_jax"]

_AXES = (0, 2, 3)


def batch_norm_train_reference(x, gamma, beta, epsilon):
    """``(y, mean, inv_std)`` of a training pass, in NumPy with float64 sums.

    What :class:`BatchNormTrain`'s ``perform`` returns (its C code agrees up to
    rounding); results in ``x``'s dtype.
    """
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=_AXES)
    centred = x64 - mean[:, None, None]
    inv_std = 1.0 / np.sqrt((centred ** 2).mean(axis=_AXES) + epsilon)
    y = centred * (inv_std * gamma)[:, None, None] + beta[:, None, None]
    return y.astype(x.dtype), mean.astype(x.dtype), inv_std.astype(x.dtype)


# C++ helpers of both ops (identical text, so Theano includes it once per module).
# Sums over a row in float64 with eight accumulators: independent additions the
# compiler can vectorize, instead of one chain of dependent ones.
_SUPPORT_CODE = """
template <typename T>
static inline double bn_sum(const T *v, npy_intp n) {
    double a[8] = {0}, s = 0;
    npy_intp p = 0;
    for (; p + 8 <= n; p += 8)
        for (int k = 0; k < 8; k++) a[k] += (double)v[p + k];
    for (; p < n; p++) s += (double)v[p];
    for (int k = 0; k < 8; k++) s += a[k];
    return s;
}

template <typename T>
static inline double bn_dot(const T *v, double cv, const T *w, double cw, npy_intp n) {
    // sum of (v - cv) * (w - cw)
    double a[8] = {0}, s = 0;
    npy_intp p = 0;
    for (; p + 8 <= n; p += 8)
        for (int k = 0; k < 8; k++) a[k] += ((double)v[p + k] - cv) * ((double)w[p + k] - cw);
    for (; p < n; p++) s += ((double)v[p] - cv) * ((double)w[p] - cw);
    for (int k = 0; k < 8; k++) s += a[k];
    return s;
}
"""


class _BatchNormBase(OpenMPOp):
    """What the forward op and its gradient share: epsilon, checks, C helpers."""

    __props__ = ("epsilon",)

    def __init__(self, epsilon=1e-4, openmp=True):
        super().__init__(openmp=openmp)
        self.epsilon = float(epsilon)

    @staticmethod
    def _check(tensors, vectors):
        tensors = [T.as_tensor_variable(v) for v in tensors]
        vectors = [T.as_tensor_variable(v) for v in vectors]
        dtypes = {v.dtype for v in tensors + vectors}
        if any(v.ndim != 4 for v in tensors) or any(v.ndim != 1 for v in vectors) \
                or len(dtypes) != 1 or dtypes.pop() not in ("float32", "float64"):
            raise TypeError("batch normalization ops take 4-D tensors and vectors (one per "
                            "channel), all float32 or all float64")
        return tensors, vectors

    @staticmethod
    def _channel_vector(x):
        return T.TensorType(x.dtype, (False,))()

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[0], (shapes[0][1],), (shapes[0][1],)]

    def c_headers(self, **kwargs):
        return ["<cmath>", "<cstdlib>"] + super().c_headers(**kwargs)

    def c_support_code(self, **kwargs):
        return _SUPPORT_CODE

    def c_code_cache_version(self):
        return (2, self.openmp)

    def _c_values(self, node, sub, **names):
        return dict(names, dtype="npy_" + node.inputs[0].dtype, epsilon=repr(self.epsilon),
                    fail=sub["fail"],
                    omp="#pragma omp parallel for schedule(static)" if self.openmp else "")


# Shared C: contiguous copies of the inputs (listed in `inputs`), checks that the
# vectors have one value per channel, the outputs (a tensor like x and two vectors),
# and `scratch`: n_scratch float64 vectors of channels + 1 values, one after another.
_C_PROLOGUE = """
        const int n_in = %(n_in)d;
        PyArrayObject *in[%(n_in)d] = {%(inputs)s};
        PyArrayObject *c[%(n_in)d] = {0};
        int bad = 0;
        for (int i = 0; i < n_in; i++) {
            c[i] = PyArray_GETCONTIGUOUS(in[i]);
            if (!c[i]) bad = 1;
        }
        npy_intp images = 0, channels = 0, plane = 0;
        if (!bad) {
            const npy_intp *dims = PyArray_DIMS(c[0]);
            images = dims[0]; channels = dims[1]; plane = dims[2] * dims[3];
            for (int i = 1; i < n_in; i++) {
                const int ok = PyArray_NDIM(c[i]) == 1
                    ? PyArray_DIMS(c[i])[0] == channels
                    : (PyArray_DIMS(c[i])[0] == dims[0] && PyArray_DIMS(c[i])[1] == dims[1]
                       && PyArray_DIMS(c[i])[2] == dims[2] && PyArray_DIMS(c[i])[3] == dims[3]);
                if (!ok) {
                    PyErr_SetString(PyExc_ValueError, "%(op)s: the inputs' shapes do not "
                                    "match (vectors need one value per channel of x)");
                    bad = 1;
                    break;
                }
            }
        }
        if (!bad) {
            npy_intp vector_dims[1] = {channels};
            Py_XDECREF(%(out0)s); Py_XDECREF(%(out1)s); Py_XDECREF(%(out2)s);
            %(out0)s = (PyArrayObject*) PyArray_EMPTY(4, PyArray_DIMS(c[0]),
                                                      PyArray_TYPE(c[0]), 0);
            %(out1)s = (PyArrayObject*) PyArray_EMPTY(1, vector_dims, PyArray_TYPE(c[0]), 0);
            %(out2)s = (PyArrayObject*) PyArray_EMPTY(1, vector_dims, PyArray_TYPE(c[0]), 0);
            if (!%(out0)s || !%(out1)s || !%(out2)s) bad = 1;
        }
        double *scratch = NULL;
        if (!bad) {
            scratch = (double*) malloc(%(n_scratch)d * (channels + 1) * sizeof(double));
            if (!scratch) {
                PyErr_NoMemory();
                bad = 1;
            }
        }
        if (bad) {
            for (int i = 0; i < n_in; i++) Py_XDECREF(c[i]);
            %(fail)s
        }
        const double count = (double)(images * plane);
"""

_C_EPILOGUE = """
        free(scratch);
        for (int i = 0; i < n_in; i++) Py_DECREF(c[i]);
"""


class BatchNormTrain(_BatchNormBase):
    """Batch normalization with the batch's statistics: ``(y, mean, inv_std)``.

    For a 4-D input ``x`` normalized over axes 0, 2 and 3, per channel:

    .. math::
        \\mu = \\overline{x}, \\qquad s = 1 / \\sqrt{\\overline{(x - \\mu)^2} + \\epsilon},
        \\qquad y = (x - \\mu)\\, s\\, \\gamma + \\beta

    Parameters
    ----------
    epsilon : float
        Added to the variance before the square root
    openmp : bool
        Channels (statistics) and images (output) in parallel

    Notes
    -----
    Inputs ``x, gamma, beta`` (``gamma`` and ``beta`` one value per channel,
    all of one float dtype); outputs ``y`` like ``x``, ``mean`` and
    ``inv_std`` (:math:`\\mu` and :math:`s`) per channel.  The statistics are
    computed in float64 with two passes (mean, then the centred squares); the
    output from them in float64, rounded once.
    """

    def make_node(self, x, gamma, beta):
        (x,), (gamma, beta) = self._check([x], [gamma, beta])
        return Apply(self, [x, gamma, beta],
                     [x.type(), self._channel_vector(x), self._channel_vector(x)])

    def perform(self, node, inputs, output_storage):
        for storage, value in zip(output_storage,
                                  batch_norm_train_reference(*inputs, epsilon=self.epsilon)):
            storage[0] = value

    def L_op(self, inputs, outputs, output_gradients):
        x, gamma, _ = inputs
        # Outputs the cost does not depend on (the statistics feed only the
        # running averages' updates) contribute nothing.
        gy, gmean, ginv = [T.zeros_like(out) if isinstance(g.type, DisconnectedType) else g
                           for out, g in zip(outputs, output_gradients)]
        return BatchNormTrainGrad(self.epsilon, openmp=self.openmp)(
            x, gamma, outputs[1], outputs[2], gy, gmean, ginv)

    def c_code(self, node, name, inputs, outputs, sub):
        values = self._c_values(node, sub, y=outputs[0], mean=outputs[1], inv=outputs[2])
        prologue = _C_PROLOGUE % dict(values, n_in=3, n_scratch=2, inputs=", ".join(inputs),
                                      op="BatchNormTrain", out0=outputs[0], out1=outputs[1],
                                      out2=outputs[2])
        return """
        {
        %(prologue)s
        const %(dtype)s *xd = (const %(dtype)s*) PyArray_DATA(c[0]);
        const %(dtype)s *gammad = (const %(dtype)s*) PyArray_DATA(c[1]);
        const %(dtype)s *betad = (const %(dtype)s*) PyArray_DATA(c[2]);
        %(dtype)s *yd = (%(dtype)s*) PyArray_DATA(%(y)s);
        %(dtype)s *meand = (%(dtype)s*) PyArray_DATA(%(mean)s);
        %(dtype)s *invd = (%(dtype)s*) PyArray_DATA(%(inv)s);
        // Per channel in float64: scale = s gamma and shift = beta - mean scale.
        double *scale = scratch, *shift = scratch + channels + 1;
        %(omp)s
        for (npy_intp ch = 0; ch < channels; ch++) {
            double sum = 0, squares = 0;
            for (npy_intp image = 0; image < images; image++)
                sum += bn_sum(xd + (image * channels + ch) * plane, plane);
            const double mu = sum / count;
            for (npy_intp image = 0; image < images; image++) {
                const %(dtype)s *xrow = xd + (image * channels + ch) * plane;
                squares += bn_dot(xrow, mu, xrow, mu, plane);
            }
            const double inv = 1.0 / std::sqrt(squares / count + %(epsilon)s);
            scale[ch] = inv * (double)gammad[ch];
            shift[ch] = (double)betad[ch] - mu * scale[ch];
            meand[ch] = (%(dtype)s)mu;
            invd[ch] = (%(dtype)s)inv;
        }
        %(omp)s
        for (npy_intp row = 0; row < images * channels; row++) {
            const npy_intp ch = row %% channels;
            const double a = scale[ch], b = shift[ch];
            const %(dtype)s *xrow = xd + row * plane;
            %(dtype)s *yrow = yd + row * plane;
            for (npy_intp p = 0; p < plane; p++) yrow[p] = (%(dtype)s)((double)xrow[p] * a + b);
        }
        %(epilogue)s
        }
        """ % dict(values, prologue=prologue, epilogue=_C_EPILOGUE)


class BatchNormTrainGrad(_BatchNormBase):
    """Gradient of :class:`BatchNormTrain`: ``(gx, ggamma, gbeta)``.

    Inputs ``x, gamma, mean, inv_std`` (the forward op's input and statistics)
    and the gradients of its three outputs, ``gy, gmean, ginv``.  Per channel,
    with :math:`M` the values per channel, :math:`\\hat x = (x - \\mu) s` and
    sums over a channel:

    .. math::
        g_\\beta = \\sum g_y, \\qquad g_\\gamma = \\sum g_y \\hat x, \\qquad
        g_x = \\gamma s \\Big(g_y - \\frac{g_\\beta + \\hat x g_\\gamma}{M}\\Big)
              + \\frac{g_\\mu - s^2 g_s \\hat x}{M}

    Parameters as :class:`BatchNormTrain`.
    """

    def make_node(self, x, gamma, mean, inv_std, gy, gmean, ginv):
        (x, gy), (gamma, mean, inv_std, gmean, ginv) = self._check(
            [x, gy], [gamma, mean, inv_std, gmean, ginv])
        return Apply(self, [x, gamma, mean, inv_std, gy, gmean, ginv],
                     [x.type(), self._channel_vector(x), self._channel_vector(x)])

    def perform(self, node, inputs, output_storage):
        x, gamma, mean, inv_std, gy, gmean, ginv = [np.asarray(v, np.float64) for v in inputs]
        count = x.size // x.shape[1]
        channel = (slice(None), None, None)
        x_hat = (x - mean[channel]) * inv_std[channel]
        gbeta = gy.sum(axis=_AXES)
        ggamma = (gy * x_hat).sum(axis=_AXES)
        gx = (gamma * inv_std)[channel] * (gy - (gbeta[channel] + x_hat * ggamma[channel]) / count) \
            + (gmean[channel] - (inv_std ** 2 * ginv)[channel] * x_hat) / count
        dtype = node.outputs[0].dtype
        for storage, value in zip(output_storage, (gx, ggamma, gbeta)):
            storage[0] = value.astype(dtype)

    def c_code(self, node, name, inputs, outputs, sub):
        values = self._c_values(node, sub, gx=outputs[0], ggamma=outputs[1], gbeta=outputs[2])
        # The 4-D inputs first (x, gy), so that the prologue's c[0] is x and c[1] is gy.
        x, gamma, mean, inv_std, gy, gmean, ginv = inputs
        prologue = _C_PROLOGUE % dict(values, n_in=7, n_scratch=3, op="BatchNormTrainGrad",
                                      inputs=", ".join([x, gy, gamma, mean, inv_std, gmean,
                                                        ginv]),
                                      out0=outputs[0], out1=outputs[1], out2=outputs[2])
        return """
        {
        %(prologue)s
        const %(dtype)s *xd = (const %(dtype)s*) PyArray_DATA(c[0]);
        const %(dtype)s *gyd = (const %(dtype)s*) PyArray_DATA(c[1]);
        const %(dtype)s *gammad = (const %(dtype)s*) PyArray_DATA(c[2]);
        const %(dtype)s *meand = (const %(dtype)s*) PyArray_DATA(c[3]);
        const %(dtype)s *invd = (const %(dtype)s*) PyArray_DATA(c[4]);
        const %(dtype)s *gmeand = (const %(dtype)s*) PyArray_DATA(c[5]);
        const %(dtype)s *ginvd = (const %(dtype)s*) PyArray_DATA(c[6]);
        %(dtype)s *gxd = (%(dtype)s*) PyArray_DATA(%(gx)s);
        %(dtype)s *ggammad = (%(dtype)s*) PyArray_DATA(%(ggamma)s);
        %(dtype)s *gbetad = (%(dtype)s*) PyArray_DATA(%(gbeta)s);
        // Per channel in float64: gx = a gy + b (x - mean) + k.
        double *a = scratch, *b = a + channels + 1, *k = b + channels + 1;
        %(omp)s
        for (npy_intp ch = 0; ch < channels; ch++) {
            const double mu = meand[ch], inv = invd[ch];
            double sum_gy = 0, sum_gy_centred = 0;
            for (npy_intp image = 0; image < images; image++) {
                const npy_intp offset = (image * channels + ch) * plane;
                sum_gy += bn_sum(gyd + offset, plane);
                sum_gy_centred += bn_dot(gyd + offset, 0.0, xd + offset, mu, plane);
            }
            const double ggamma = inv * sum_gy_centred;
            a[ch] = inv * (double)gammad[ch];
            b[ch] = -inv * (a[ch] * ggamma + inv * inv * (double)ginvd[ch]) / count;
            k[ch] = ((double)gmeand[ch] - a[ch] * sum_gy) / count;
            ggammad[ch] = (%(dtype)s)ggamma;
            gbetad[ch] = (%(dtype)s)sum_gy;
        }
        %(omp)s
        for (npy_intp row = 0; row < images * channels; row++) {
            const npy_intp ch = row %% channels;
            const double ac = a[ch], bc = b[ch], kc = k[ch], mu = meand[ch];
            const %(dtype)s *xrow = xd + row * plane, *gyrow = gyd + row * plane;
            %(dtype)s *gxrow = gxd + row * plane;
            for (npy_intp p = 0; p < plane; p++)
                gxrow[p] = (%(dtype)s)(ac * (double)gyrow[p] + bc * ((double)xrow[p] - mu) + kc);
        }
        %(epilogue)s
        }
        """ % dict(values, prologue=prologue, epilogue=_C_EPILOGUE)


# -- the JAX forms ---------------------------------------------------------------------
# The statistics are summed in float64, as the C code sums them; the per-element
# arithmetic stays in the input's dtype.

def _per_channel(vector, dtype):
    return vector.astype(dtype)[None, :, None, None]


def _jax_batch_norm_train(op):
    """``(y, mean, inv_std)`` (see :class:`BatchNormTrain`)."""
    import jax.numpy as jnp  # only here: JAX is optional

    def batch_norm_train(x, gamma, beta):
        x64 = x.astype(jnp.float64)
        mean = jnp.mean(x64, axis=_AXES)
        variance = jnp.mean(jnp.square(x64 - _per_channel(mean, x64.dtype)), axis=_AXES)
        inv_std = 1 / jnp.sqrt(variance + op.epsilon)
        y = ((x - _per_channel(mean, x.dtype)) * _per_channel(inv_std * gamma, x.dtype)
             + _per_channel(beta, x.dtype))
        return y, mean.astype(x.dtype), inv_std.astype(x.dtype)

    return batch_norm_train


def _jax_batch_norm_train_grad(op):
    """The gradient formula of :class:`BatchNormTrainGrad`."""
    import jax.numpy as jnp

    def batch_norm_train_grad(x, gamma, mean, inv_std, gy, gmean, ginv):
        count = x.size // x.shape[1]
        centred = x - _per_channel(mean, x.dtype)
        gbeta = jnp.sum(gy.astype(jnp.float64), axis=_AXES)
        inv = inv_std.astype(jnp.float64)
        ggamma = inv * jnp.sum(gy.astype(jnp.float64) * centred.astype(jnp.float64),
                               axis=_AXES)
        a = inv * gamma
        b = -inv * (a * ggamma + inv * inv * ginv) / count
        k = (gmean - a * gbeta) / count
        gx = (_per_channel(a, x.dtype) * gy + _per_channel(b, x.dtype) * centred
              + _per_channel(k, x.dtype))
        return gx, ggamma.astype(x.dtype), gbeta.astype(x.dtype)

    return batch_norm_train_grad


def register_jax(jax_funcify):
    """Register both ops' JAX forms with Theano's ``jax_funcify`` dispatcher."""
    jax_funcify.register(BatchNormTrain)(_jax_batch_norm_train)
    jax_funcify.register(BatchNormTrainGrad)(_jax_batch_norm_train_grad)
