"""
Theano's C backend with OpenMP in its convolutions (``CorrMM`` and its gradients).

.. autosummary::
    :nosignatures:

    c_mode
    corrmm_openmp

Theano's ``CorrMM`` ops parallelise their per-image loop (im2col and the
products) with OpenMP when built with ``openmp=True``, but take that from the
global ``openmp`` flag, which also switches OpenMP on in Theano-PyMC 1.1's
elementwise ops, whose OpenMP C code does not compile (an unformatted
``{int(config.openmp_elemwise_minsize)}`` in a pragma).  :func:`c_mode` is
Theano's default mode plus one rewrite, :func:`corrmm_openmp`, that rebuilds
only the convolution ops with OpenMP, after the convolutions were lowered to
``CorrMM`` and before the in-place rewrites.  OpenMP's thread count is
``OMP_NUM_THREADS`` (a grid's workers set it to their share of the cores).

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
from theano.compile.mode import get_default_mode
from theano.graph.opt import in2out, local_optimizer
from theano.tensor.nnet import corr

__all__ = ["c_mode", "corrmm_openmp", "POSITION"]

_CORRMM_OPS = (corr.CorrMM, corr.CorrMM_gradWeights, corr.CorrMM_gradInputs)
#: Where the rewrite runs in Theano's optimizer database: after ``merge2`` (49),
#: by which the convolutions are ``CorrMM`` ops, before ``add_destroy_handler``
#: and the in-place rewrites (49.5 and later).
POSITION = 49.1


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


def c_mode():
    """Theano's default mode with :func:`corrmm_openmp` (the ``"c"`` backend's mode)."""
    return get_default_mode().register((in2out(corrmm_openmp), POSITION))
