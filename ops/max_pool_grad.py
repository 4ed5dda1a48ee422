"""
The gradient of 2-D max-pooling whose windows tile the input, as one op with C code.

.. autosummary::
    :nosignatures:

    TiledMaxPoolGrad

Theano's ``MaxPoolGrad`` walks each window with indexed array access, serially;
for windows that tile the input (the networks' 2x2 pooling) this op computes the
same values in one pass with OpenMP.  It has no JAX form: only the C backend's
mode puts it into a graph (:func:`backends.c_openmp.tiled_maxpoolgrad`), the
JAX backend differentiates ``Pool`` itself (:mod:`backends.jax_ops.pooling`).
"""
import compat  # noqa: F401  (Theano flags before theano)
import numpy as np
from theano import tensor as T
from theano.graph.basic import Apply
from theano.graph.op import OpenMPOp

__all__ = ["TiledMaxPoolGrad"]


class TiledMaxPoolGrad(OpenMPOp):
    """Gradient of 2-D max-pooling whose windows tile the input, in C with OpenMP.

    Inputs ``x, z, gz`` (the pooling's input, output and output gradient, 4-D);
    output ``gx`` of ``x``'s shape.  For windows that tile the input (stride equal
    to the window, no padding, ``ignore_border``) Theano's ``MaxPoolGrad`` adds
    ``gz`` to every input equal to its window's maximum (ties included) in a
    zeroed ``gx``; this op computes the same ``0 + gz`` or ``0`` per element, in
    one pass over contiguous rows, images and channels in parallel (each element
    written by one thread: the same values as serially).  Inputs beyond the
    last whole window get 0, as there.

    Parameters
    ----------
    ws : pair of int
        The window (and stride)
    """
    __props__ = ("ws",)

    def __init__(self, ws, openmp=True):
        super().__init__(openmp=openmp)
        self.ws = tuple(int(w) for w in ws)

    def make_node(self, x, z, gz):
        x, z, gz = (T.as_tensor_variable(v) for v in (x, z, gz))
        if not x.ndim == z.ndim == gz.ndim == 4 or not x.dtype == z.dtype == gz.dtype:
            raise TypeError("TiledMaxPoolGrad takes three 4-D tensors of one dtype")
        return Apply(self, [x, z, gz], [x.type()])

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[0]]

    def perform(self, node, inputs, output_storage):
        # NumPy version (Theano's Python mode): the same values as the C code.
        x, z, gz = inputs
        p, q = self.ws
        rows, cols = z.shape[2] * p, z.shape[3] * q
        z, gz = (a.repeat(p, axis=2).repeat(q, axis=3) for a in (z, gz))
        gx = np.zeros_like(x)
        gx[:, :, :rows, :cols] = np.where(x[:, :, :rows, :cols] == z, gz.dtype.type(0) + gz, 0)
        output_storage[0][0] = gx

    def c_code_cache_version(self):
        return (3, self.openmp)

    def c_code(self, node, name, inputs, outputs, sub):
        x, z, gz = inputs
        (gx,) = outputs
        p, q = self.ws
        dtype = "dtype_%s" % x
        fail = sub["fail"]
        omp = "#pragma omp parallel for schedule(static)" if self.openmp else ""
        return """
        {
        PyArrayObject *xc = PyArray_GETCONTIGUOUS(%(x)s);
        PyArrayObject *zc = PyArray_GETCONTIGUOUS(%(z)s);
        PyArrayObject *gzc = PyArray_GETCONTIGUOUS(%(gz)s);
        if (!xc || !zc || !gzc) {
            Py_XDECREF(xc); Py_XDECREF(zc); Py_XDECREF(gzc);
            %(fail)s
        }
        const npy_intp *dims = PyArray_DIMS(xc);
        const npy_intp *zdims = PyArray_DIMS(zc);
        int bad = (PyArray_DIMS(gzc)[0] != zdims[0] || PyArray_DIMS(gzc)[1] != zdims[1]
                   || PyArray_DIMS(gzc)[2] != zdims[2] || PyArray_DIMS(gzc)[3] != zdims[3]
                   || zdims[0] != dims[0] || zdims[1] != dims[1]
                   || zdims[2] != dims[2] / %(p)d || zdims[3] != dims[3] / %(q)d);
        if (!bad) {
            Py_XDECREF(%(gx)s);
            %(gx)s = (PyArrayObject*) PyArray_EMPTY(4, (npy_intp*)dims, PyArray_TYPE(xc), 0);
        }
        if (bad || !%(gx)s) {
            Py_DECREF(xc); Py_DECREF(zc); Py_DECREF(gzc);
            if (bad) PyErr_SetString(PyExc_ValueError, "TiledMaxPoolGrad: shapes do not match");
            %(fail)s
        }
        const npy_intp planes = dims[0] * dims[1], rows = dims[2], cols = dims[3];
        const npy_intp zrows = zdims[2], zcols = zdims[3];
        const %(dtype)s *xd = (const %(dtype)s*) PyArray_DATA(xc);
        const %(dtype)s *zd = (const %(dtype)s*) PyArray_DATA(zc);
        const %(dtype)s *gzd = (const %(dtype)s*) PyArray_DATA(gzc);
        %(dtype)s *gxd = (%(dtype)s*) PyArray_DATA(%(gx)s);
        %(omp)s
        for (npy_intp plane = 0; plane < planes; plane++) {
            for (npy_intp i = 0; i < rows; i++) {
                const %(dtype)s *xrow = xd + (plane * rows + i) * cols;
                %(dtype)s *gxrow = gxd + (plane * rows + i) * cols;
                const npy_intp zoff = (plane * zrows + i / %(p)d) * zcols;
                npy_intp j = 0;
                if (i < zrows * %(p)d) {
                    for (; j < zcols * %(q)d; j++) {
                        // As MaxPoolGrad: 0 + gz where the input equals the maximum.
                        gxrow[j] = (xrow[j] == zd[zoff + j / %(q)d])
                            ? (%(dtype)s)0 + gzd[zoff + j / %(q)d] : (%(dtype)s)0;
                    }
                }
                // Inputs beyond the last whole window: 0, as there.
                for (; j < cols; j++) gxrow[j] = 0;
            }
        }
        Py_DECREF(xc); Py_DECREF(zc); Py_DECREF(gzc);
        }
        """ % locals()
