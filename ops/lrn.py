"""
Local response normalization across channels as one Theano op, with C code and a JAX form.

.. autosummary::
    :nosignatures:

    LocalResponseNorm
    LocalResponseNormGrad
    lrn_scale
    register_jax

Lasagne 0.1's ``LocalResponseNormalization2DLayer`` (CifarNet's) builds its
output from a dozen elementwise ops over a zero-padded copy of the squared
input, and Theano's gradient of that graph from a dozen more; on the CPU they
took about 40% of CifarNet's training step, mostly in ``pow``.
:class:`models.lrn.LocalResponseNormLayer` is that layer with the same
parameters and the same function,

.. math::
    y_c = x_c \\Big/ \\Big(k + \\alpha \\sum_{|j - c| \\le n/2} x_j^2\\Big)^\\beta,

computed by :class:`LocalResponseNorm` in one pass, and its gradient by
:class:`LocalResponseNormGrad` in two, both parallel over images and channels
with OpenMP.  The window sum is taken in Lasagne's order; for Lasagne's
``beta=0.75`` the power is ``sqrt(s) * sqrt(sqrt(s))`` (correctly rounded
square roots, within an ulp or two of ``pow``, several times faster), any
other ``beta`` uses ``pow``.  The JAX backend computes both ops with
``jax.numpy``: their JAX forms are here, registered by :func:`register_jax`.

Examples
--------
>>> import compat  # noqa: F401
>>> import numpy as np, theano, theano.tensor as T
>>> from ops.lrn import LocalResponseNorm
>>> x = T.tensor4("x")
>>> f = theano.function([x], LocalResponseNorm(alpha=1e-4, k=2, beta=0.75, n=5)(x))
>>> f(np.ones((1, 1, 1, 1), "float32")).round(4)
array([[[[0.5946]]]], dtype=float32)
"""
import compat  # noqa: F401  (Theano flags before theano)
import numpy as np
import theano.tensor as T
from theano.graph.basic import Apply
from theano.graph.op import OpenMPOp

__all__ = ["LocalResponseNorm", "LocalResponseNormGrad", "lrn_scale", "register_jax"]


def lrn_scale(x, alpha, k, n):
    """``k + alpha * sum of squares`` over each channel's window, in NumPy, as Lasagne sums it.

    Parameters
    ----------
    x : numpy.ndarray
        Input, ``(batch, channels, rows, columns)``
    alpha, k : float
        The layer's parameters, taken in ``x``'s dtype
    n : int
        Window of channels (odd)

    Returns
    -------
    numpy.ndarray
        The scale ``s``, of ``x``'s shape and dtype
    """
    half, channels = n // 2, x.shape[1]
    padded = np.zeros((x.shape[0], channels + 2 * half) + x.shape[2:], dtype=x.dtype)
    padded[:, half:half + channels] = x * x
    scale = np.full_like(x, k)
    for i in range(n):
        scale += x.dtype.type(alpha) * padded[:, i:i + channels]
    return scale


class _LocalResponseNormBase(OpenMPOp):
    """What the forward op and its gradient share: parameters, checks, C helpers."""

    __props__ = ("alpha", "k", "beta", "n")

    def __init__(self, alpha=1e-4, k=2, beta=0.75, n=5, openmp=True):
        super().__init__(openmp=openmp)
        self.alpha, self.k, self.beta, self.n = float(alpha), float(k), float(beta), int(n)
        if self.n < 1 or self.n % 2 == 0:
            raise ValueError("local response normalization needs an odd window n, got %d"
                             % self.n)

    def _tensor4(self, *values):
        values = [T.as_tensor_variable(v) for v in values]
        if any(v.ndim != 4 for v in values) or len({v.dtype for v in values}) != 1 \
                or values[0].dtype not in ("float32", "float64"):
            raise TypeError("%s takes 4-D float32 or float64 tensors of one dtype"
                            % type(self).__name__)
        return values

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[0]]

    def c_headers(self, **kwargs):
        return ["<cmath>", "<cstdlib>"] + super().c_headers(**kwargs)

    def c_code_cache_version(self):
        return (1, self.openmp)

    def _c_constants(self, dtype):
        # Python's repr of a float is exact as a C double literal; the cast rounds as NumPy does.
        power = ("(std::sqrt(s) * std::sqrt(std::sqrt(s)))" if self.beta == 0.75
                 else "std::pow(s, (npy_%s)%r)" % (dtype, self.beta))
        return dict(dtype="npy_" + dtype, alpha=repr(self.alpha), k=repr(self.k), half=self.n // 2,
                    power=power,
                    omp="#pragma omp parallel for schedule(static)" if self.openmp else "",
                    omp_region="#pragma omp parallel" if self.openmp else "",
                    omp_for="#pragma omp for schedule(static)" if self.openmp else "")


# Fills srow (a row of `plane` elements) with the scale s of channel c of image xb.
_SCALE_ROW = """
            const npy_intp lo = c < %(half)d ? 0 : c - %(half)d;
            const npy_intp hi = c + %(half)d >= channels ? channels - 1 : c + %(half)d;
            for (npy_intp p = 0; p < plane; p++) srow[p] = (%(dtype)s)%(k)s;
            for (npy_intp j = lo; j <= hi; j++) {
                const %(dtype)s *xj = xb + j * plane;
                for (npy_intp p = 0; p < plane; p++) srow[p] += (%(dtype)s)%(alpha)s * (xj[p] * xj[p]);
            }
"""


class LocalResponseNorm(_LocalResponseNormBase):
    """``y = x / (k + alpha * sum of x**2 over n channels) ** beta``, 4-D, channels on axis 1.

    Parameters
    ----------
    alpha, k, beta : float
        As in Lasagne's ``LocalResponseNormalization2DLayer``
    n : int
        Channels in each window (odd), centred on the output's channel; channels
        beyond the edges count as zeros
    openmp : bool
        Images and channels in parallel (``OMP_NUM_THREADS`` threads)
    """

    def make_node(self, x):
        (x,) = self._tensor4(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs, output_storage):
        (x,) = inputs
        scale = lrn_scale(x, self.alpha, self.k, self.n)
        output_storage[0][0] = x / scale ** x.dtype.type(self.beta)

    def grad(self, inputs, output_gradients):
        (x,) = inputs
        (gy,) = output_gradients
        return [LocalResponseNormGrad(self.alpha, self.k, self.beta, self.n,
                                      openmp=self.openmp)(x, gy)]

    def c_code(self, node, name, inputs, outputs, sub):
        (x,), (y,) = inputs, outputs
        values = dict(self._c_constants(node.inputs[0].dtype), x=x, y=y, fail=sub["fail"])
        values["scale_row"] = _SCALE_ROW % values
        return """
        {
        PyArrayObject *xc = PyArray_GETCONTIGUOUS(%(x)s);
        if (!xc) %(fail)s
        const npy_intp *dims = PyArray_DIMS(xc);
        Py_XDECREF(%(y)s);
        %(y)s = (PyArrayObject*) PyArray_EMPTY(4, (npy_intp*)dims, PyArray_TYPE(xc), 0);
        if (!%(y)s) { Py_DECREF(xc); %(fail)s }
        const npy_intp channels = dims[1], plane = dims[2] * dims[3];
        const npy_intp rows = dims[0] * channels;
        const %(dtype)s *xd = (const %(dtype)s*) PyArray_DATA(xc);
        %(dtype)s *yd = (%(dtype)s*) PyArray_DATA(%(y)s);
        %(omp)s
        for (npy_intp row = 0; row < rows; row++) {
            const npy_intp c = row %% channels;
            const %(dtype)s *xb = xd + (row - c) * plane;
            %(dtype)s *srow = yd + row * plane;  // the scale first, then the output
            %(scale_row)s
            const %(dtype)s *xrow = xb + c * plane;
            for (npy_intp p = 0; p < plane; p++) {
                const %(dtype)s s = srow[p];
                srow[p] = xrow[p] / %(power)s;
            }
        }
        Py_DECREF(xc);
        }
        """ % values


class LocalResponseNormGrad(_LocalResponseNormBase):
    """Gradient of :class:`LocalResponseNorm`: inputs ``x, gy``, output ``gx``.

    With ``s`` the scale and ``W(c)`` the window of channel ``c``:

    .. math::
        g_{x,c} = g_{y,c} s_c^{-\\beta} - 2 \\alpha \\beta x_c
                  \\sum_{i \\in W(c)} g_{y,i} x_i s_i^{-\\beta - 1}

    Parameters as :class:`LocalResponseNorm`; the C code works image by image
    (images in parallel), each thread with one image of scratch memory.
    """

    def make_node(self, x, gy):
        x, gy = self._tensor4(x, gy)
        return Apply(self, [x, gy], [x.type()])

    def perform(self, node, inputs, output_storage):
        x, gy = inputs
        scale = lrn_scale(x, self.alpha, self.k, self.n)
        gy_over_power = gy / scale ** x.dtype.type(self.beta)
        terms = gy_over_power * x / scale
        half, channels = self.n // 2, x.shape[1]
        window_sums = np.zeros_like(x)
        for c in range(channels):
            window_sums[:, c] = terms[:, max(0, c - half):c + half + 1].sum(axis=1)
        coefficient = x.dtype.type(2 * self.alpha * self.beta)
        output_storage[0][0] = gy_over_power - coefficient * x * window_sums

    def c_code(self, node, name, inputs, outputs, sub):
        (x, gy), (gx,) = inputs, outputs
        values = dict(self._c_constants(node.inputs[0].dtype), x=x, gy=gy, gx=gx,
                      fail=sub["fail"], coefficient=repr(2 * self.alpha * self.beta))
        values["scale_row"] = _SCALE_ROW % values
        return """
        {
        PyArrayObject *xc = PyArray_GETCONTIGUOUS(%(x)s);
        PyArrayObject *gyc = PyArray_GETCONTIGUOUS(%(gy)s);
        if (!xc || !gyc) { Py_XDECREF(xc); Py_XDECREF(gyc); %(fail)s }
        const npy_intp *dims = PyArray_DIMS(xc);
        const npy_intp *gdims = PyArray_DIMS(gyc);
        int bad = (dims[0] != gdims[0] || dims[1] != gdims[1] || dims[2] != gdims[2]
                   || dims[3] != gdims[3]);
        if (!bad) {
            Py_XDECREF(%(gx)s);
            %(gx)s = (PyArrayObject*) PyArray_EMPTY(4, (npy_intp*)dims, PyArray_TYPE(xc), 0);
        }
        if (bad || !%(gx)s) {
            Py_DECREF(xc); Py_DECREF(gyc);
            if (bad) PyErr_SetString(PyExc_ValueError,
                                     "LocalResponseNormGrad: x and gy differ in shape");
            %(fail)s
        }
        const npy_intp images = dims[0], channels = dims[1], plane = dims[2] * dims[3];
        const %(dtype)s *xd = (const %(dtype)s*) PyArray_DATA(xc);
        const %(dtype)s *gyd = (const %(dtype)s*) PyArray_DATA(gyc);
        %(dtype)s *gxd = (%(dtype)s*) PyArray_DATA(%(gx)s);
        int out_of_memory = 0;
        %(omp_region)s
        {
        // One image of terms gy x s^(-beta-1), and one row of their window sums.
        %(dtype)s *terms = (%(dtype)s*) malloc((channels + 1) * plane * sizeof(%(dtype)s));
        if (!terms) {
            out_of_memory = 1;
        }
        %(omp_for)s
        for (npy_intp image = 0; image < images; image++) {
            if (!terms) continue;
            const %(dtype)s *xb = xd + image * channels * plane;
            const %(dtype)s *gyb = gyd + image * channels * plane;
            %(dtype)s *gxb = gxd + image * channels * plane;
            %(dtype)s *sums = terms + channels * plane;
            for (npy_intp c = 0; c < channels; c++) {
                %(dtype)s *srow = gxb + c * plane;  // the scale first, then gy s^-beta
                %(scale_row)s
                const %(dtype)s *xrow = xb + c * plane, *gyrow = gyb + c * plane;
                %(dtype)s *trow = terms + c * plane;
                for (npy_intp p = 0; p < plane; p++) {
                    const %(dtype)s s = srow[p];
                    const %(dtype)s scaled = gyrow[p] / %(power)s;
                    srow[p] = scaled;
                    trow[p] = scaled * xrow[p] / s;
                }
            }
            for (npy_intp c = 0; c < channels; c++) {
                const npy_intp lo = c < %(half)d ? 0 : c - %(half)d;
                const npy_intp hi = c + %(half)d >= channels ? channels - 1 : c + %(half)d;
                for (npy_intp p = 0; p < plane; p++) sums[p] = 0;
                for (npy_intp j = lo; j <= hi; j++) {
                    const %(dtype)s *tj = terms + j * plane;
                    for (npy_intp p = 0; p < plane; p++) sums[p] += tj[p];
                }
                const %(dtype)s *xrow = xb + c * plane;
                %(dtype)s *gxrow = gxb + c * plane;
                for (npy_intp p = 0; p < plane; p++)
                    gxrow[p] -= (%(dtype)s)%(coefficient)s * xrow[p] * sums[p];
            }
        }
        free(terms);
        }
        Py_DECREF(xc); Py_DECREF(gyc);
        if (out_of_memory) {
            PyErr_NoMemory();
            %(fail)s
        }
        }
        """ % values


# -- the JAX forms ---------------------------------------------------------------------

def _window_sum(values, op, first=0):
    """Sum over each channel's window of ``op.n`` channels (zeros beyond the edges)."""
    import jax.numpy as jnp  # only here: JAX is optional

    half, channels = op.n // 2, values.shape[1]
    padded = jnp.pad(values, [(0, 0), (half, half)] + [(0, 0)] * (values.ndim - 2))
    total = first
    for i in range(op.n):  # in the C code's (and Lasagne's) order
        total = total + padded[:, i:i + channels]
    return total


def _lrn_scale(x, op):
    # k + alpha * x**2 summed over the window, with the op's constants in x's dtype
    return _window_sum(np.array(op.alpha, x.dtype) * (x * x), op,
                       first=np.array(op.k, x.dtype))


def _jax_local_response_norm(op):
    """``x / scale ** beta`` (see :class:`LocalResponseNorm`)."""
    def local_response_norm(x):
        return x / _lrn_scale(x, op) ** np.array(op.beta, x.dtype)

    return local_response_norm


def _jax_local_response_norm_grad(op):
    """The gradient formula of :class:`LocalResponseNormGrad`."""
    def local_response_norm_grad(x, gy):
        scale = _lrn_scale(x, op)
        scaled = gy / scale ** np.array(op.beta, x.dtype)
        return scaled - np.array(2 * op.alpha * op.beta, x.dtype) * x * _window_sum(
            scaled * x / scale, op)

    return local_response_norm_grad


def register_jax(jax_funcify):
    """Register both ops' JAX forms with Theano's ``jax_funcify`` dispatcher."""
    jax_funcify.register(LocalResponseNorm)(_jax_local_response_norm)
    jax_funcify.register(LocalResponseNormGrad)(_jax_local_response_norm_grad)
