"""
Theano's C backend with OpenMP in its convolutions, elementwise ops and pooling gradients.

.. autosummary::
    :nosignatures:

    c_mode
    corrmm_openmp
    elemwise_openmp
    OpenMPElemwise
    tiled_maxpoolgrad

Theano's ``CorrMM`` ops parallelise their per-image loop (im2col and the
products) with OpenMP when built with ``openmp=True``, and so do its
elementwise ops, but both take that from the global ``openmp`` flag, and
Theano-PyMC 1.1's elementwise OpenMP C code does not compile (an unformatted
``{int(config.openmp_elemwise_minsize)}`` in a pragma).  :func:`c_mode` is
Theano's default mode plus three rewrites:

- :func:`corrmm_openmp` rebuilds the convolution ops with OpenMP (after the
  convolutions were lowered to ``CorrMM``, before the in-place rewrites);
- :func:`tiled_maxpoolgrad` replaces the gradient of max-pooling whose windows
  tile the input (the 2x2 pooling of the networks here) by
  :class:`ops.max_pool_grad.TiledMaxPoolGrad`, a direct C loop with OpenMP (Theano's own op takes
  ~20% of CifarNet's step);
- :func:`elemwise_openmp` replaces every elementwise op, after fusion and the
  in-place rewrites, by an :class:`OpenMPElemwise`, whose C code has the
  pragma fixed.  Loops run in parallel only from
  ``config.openmp_elemwise_minsize`` elements on (Theano's default 200,000),
  so small graphs stay serial.

All give the values of Theano's serial ops (each element is computed by one
thread); only the convolutions' weight gradients sum per-thread partial sums.
OpenMP's thread count is ``OMP_NUM_THREADS`` (a grid's workers set it to their
share of the cores).  Theano's ``Pool``/``MaxPoolGrad`` with ``openmp=True`` did
not pay (measured in ``bench/RESULTS.md``).

Examples
--------
>>> import compat  # noqa: F401
>>> import theano, theano.tensor as T
>>> from backends.c_openmp import c_mode
>>> x, w = T.tensor4("x"), T.tensor4("w")
>>> f = theano.function([x, w], T.nnet.conv2d(x, w), mode=c_mode())
>>> [node.op.openmp for node in f.maker.fgraph.toposort()]   # doctest: +SKIP
[True]
"""
import compat  # noqa: F401  (Theano's flags, set before theano is first imported)
from theano import config
from theano import tensor as T
from theano.compile.mode import get_default_mode
from theano.graph.opt import in2out, local_optimizer
from theano.tensor.elemwise import Elemwise
from theano.tensor.nnet import corr
from theano.tensor.signal import pool

from ops.max_pool_grad import TiledMaxPoolGrad

__all__ = ["c_mode", "corrmm_openmp", "elemwise_openmp", "OpenMPElemwise", "tiled_maxpoolgrad",
           "POSITION", "ELEMWISE_POSITION", "MAXPOOLGRAD_POSITION"]

_CORRMM_OPS = (corr.CorrMM, corr.CorrMM_gradWeights, corr.CorrMM_gradInputs)
#: Where the convolution rewrite runs in Theano's optimizer database:
#: after ``merge2`` (49), by which the convolutions are ``CorrMM`` ops, before
#: ``add_destroy_handler`` and the in-place rewrites (49.5 and later).
POSITION = 49.1
#: Where the elementwise rewrite runs: after fusion (49) and the in-place
#: rewrites (75), which build plain ``Elemwise`` ops, before ``merge3`` (100).
ELEMWISE_POSITION = 99
#: Where the pooling gradient rewrite runs: after the convolution lowering
#: (48.7), before elementwise fusion (49).
MAXPOOLGRAD_POSITION = 48.8


@local_optimizer(list(_CORRMM_OPS))
def corrmm_openmp(fgraph, node):
    """The same ``CorrMM*`` op, built with ``openmp=True``."""
    op = node.op
    if not isinstance(op, _CORRMM_OPS) or op.openmp:
        return False
    parallel = type(op)(border_mode=op.border_mode, subsample=op.subsample,
                        filter_dilation=op.filter_dilation, num_groups=op.num_groups,
                        unshared=op.unshared, openmp=True)
    # The gradients take their output's spatial shape as one argument (a pair).
    inputs = node.inputs if isinstance(op, corr.CorrMM) else (
        node.inputs[:2] + ([node.inputs[2:]] if len(node.inputs) > 2 else []))
    return parallel(*inputs, return_list=True)


class OpenMPElemwise(Elemwise):
    """``Elemwise`` whose OpenMP C code compiles (Theano-PyMC 1.1's does not).

    Theano-PyMC 1.1 writes the pragma of its contiguous loop as a plain string
    that still holds the f-string field ``{int(config.openmp_elemwise_minsize)}``;
    this class substitutes the number.  Each element is computed by one thread,
    so the values are those of the serial loop.
    """

    _BROKEN = "{int(config.openmp_elemwise_minsize)}"

    def __init__(self, scalar_op, inplace_pattern=None, name=None, nfunc_spec=None):
        super().__init__(scalar_op, inplace_pattern=inplace_pattern, name=name,
                         nfunc_spec=nfunc_spec, openmp=True)

    def c_code(self, node, nodename, inames, onames, sub):
        code = super().c_code(node, nodename, inames, onames, sub)
        return code.replace(self._BROKEN, str(int(config.openmp_elemwise_minsize)))

    def c_code_cache_version_apply(self, node):
        version = super().c_code_cache_version_apply(node)
        # The fixed pragma is new C code: keep it apart from cached modules.
        return version + (("pragma_fixed", 1),) if version else version


@local_optimizer([Elemwise])
def elemwise_openmp(fgraph, node):
    """The same elementwise op (in-place pattern included) as an :class:`OpenMPElemwise`."""
    op = node.op
    if type(op) is not Elemwise:
        return False
    parallel = OpenMPElemwise(op.scalar_op, inplace_pattern=dict(op.inplace_pattern),
                              name=op.name, nfunc_spec=op.nfunc_spec)
    return parallel(*node.inputs, return_list=True)


@local_optimizer([pool.MaxPoolGrad])
def tiled_maxpoolgrad(fgraph, node):
    """``MaxPoolGrad`` of 2-D windows that tile the input as a :class:`TiledMaxPoolGrad`.

    Theano's own op walks each window with indexed array access, serially (its
    OpenMP variant is slower still); this one is several times faster.
    """
    op = node.op
    if type(op) is not pool.MaxPoolGrad or op.ndim != 2 or not op.ignore_border:
        return False
    x, z, gz, ws, stride, pad = node.inputs
    if x.ndim != 4 or not all(isinstance(v, T.TensorConstant) for v in (ws, stride, pad)):
        return False
    ws, stride, pad = (tuple(int(v) for v in c.data) for c in (ws, stride, pad))
    if ws != stride or any(pad) or not x.dtype == z.dtype == gz.dtype:
        return False
    return [TiledMaxPoolGrad(ws)(x, z, gz)]


def c_mode(elemwise=True, tiled_pool_grad=True):
    """Theano's default mode with the rewrites of this module (the ``"c"`` backend's mode).

    Parameters
    ----------
    elemwise : bool
        Elementwise ops with OpenMP (:func:`elemwise_openmp`)
    tiled_pool_grad : bool
        :class:`TiledMaxPoolGrad` for max-pooling gradients of tiling windows
        (:func:`tiled_maxpoolgrad`)

    The convolutions always get OpenMP (:func:`corrmm_openmp`).
    """
    mode = get_default_mode().register((in2out(corrmm_openmp), POSITION))
    if tiled_pool_grad:
        mode = mode.register((in2out(tiled_maxpoolgrad), MAXPOOLGRAD_POSITION))
    if elemwise:
        mode = mode.register((in2out(elemwise_openmp), ELEMWISE_POSITION))
    return mode
