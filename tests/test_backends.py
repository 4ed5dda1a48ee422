"""The JAX backend against NumPy float64 references and against Theano's C backend.

Op by op: convolutions, pooling (ties included), the classifier ops and the
MRG31k3p generator are checked against hand-written float64 NumPy code (and
the generator against Theano's own Python and C code, bit for bit).  Network
by network: the same seeds on both backends give the same losses, gradients,
dropout masks, batch-norm averages and parameters after training steps,
within the tolerances stated at each test.  Also the backend choice's errors
and the NumPy 2 compatibility layer's pieces.  Slow tier: cifarnet, small_vgg, vgg.
"""
import os
import sys

import numpy as np
import pytest
import theano
import theano.tensor as T
from theano.graph.basic import Apply
from theano.graph.op import Op

import lasagne
import amsgrad
import backends
from errors import UserError

L = lasagne.layers


@pytest.fixture(scope="module")
def jax():
    return pytest.importorskip("jax", reason="JAX is not installed (%s)" % backends.JAX_INSTALL)


def both(inputs, outputs, updates=None):
    """The same graph compiled for the C and the JAX backend."""
    return (backends.compile_function(inputs, outputs, updates=updates, backend="c"),
            backends.compile_function(inputs, outputs, updates=updates, backend="jax"))


# -- the interface -----------------------------------------------------------------------

def test_unknown_backend_is_a_user_error():
    with pytest.raises(UserError, match="unknown backend 'cuda'; choose one of: c, jax"):
        backends.compile_function([], [], backend="cuda")


def test_missing_jax_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)  # import jax raises ImportError
    with pytest.raises(UserError, match="pip install jax==0.4.30 jaxlib==0.4.30"):
        backends.compile_function([], [], backend="jax")
    backends.check_backend("c")  # the C backend does not need JAX


class NoJaxOp(Op):
    """An op with a Python implementation only."""
    __props__ = ()

    def make_node(self, x):
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs, outputs):
        outputs[0][0] = inputs[0] * 2


def test_an_op_without_jax_implementation_is_named(jax):
    x = T.vector("x")
    with pytest.raises(UserError, match="JAX backend cannot run .*NoJaxOp"):
        backends.compile_function([x], NoJaxOp()(x), backend="jax")


def test_calling_convention_shared_state_and_compile_times(jax):
    x = T.vector("x")
    total = theano.shared(np.float32(0), name="total")
    rate = theano.shared(np.float32(1), name="rate")
    c_fn, jax_fn = both([x], [x.sum(), (x * rate).sum()], updates={total: total + x.sum() * rate})
    single = backends.compile_function([x], x.sum(), backend="jax")
    data = np.arange(3, dtype="float32")
    assert isinstance(single(data), np.ndarray) and single(data) == 3
    c_fn(data)
    outputs = jax_fn(data)  # reads the value the C function wrote
    assert isinstance(outputs, list) and [float(o) for o in outputs] == [3, 3]
    assert float(np.asarray(total.get_value())) == 6
    rate.set_value(np.float32(0))  # a value set between calls is used (a schedule's rate)
    jax_fn(data)
    assert float(np.asarray(total.get_value())) == 6
    total.set_value(np.float32(-1))
    c_fn(data)  # a NumPy value set after a JAX call serves the C backend too
    assert float(total.get_value()) == -1
    jax_fn(np.ones(5, "float32"))  # new shape: a new program
    assert len(jax_fn.fn.compile_seconds) == 2 and min(jax_fn.fn.compile_seconds) > 0
    assert {id(v) for v in jax_fn.get_shared()} == {id(total), id(rate)}


# -- convolutions ------------------------------------------------------------------------

def numpy_correlation(x, w, pads, stride, dilation):
    """Float64 correlation of NCHW images with OIHW kernels, and its two gradients."""
    x = np.pad(x, ((0, 0), (0, 0), pads[0], pads[1]))
    kh, kw = w.shape[2:]
    oh = (x.shape[2] - (kh - 1) * dilation[0] - 1) // stride[0] + 1
    ow = (x.shape[3] - (kw - 1) * dilation[1] - 1) // stride[1] + 1

    def patch(i, j):
        return (slice(None), slice(None),
                slice(i * dilation[0], i * dilation[0] + (oh - 1) * stride[0] + 1, stride[0]),
                slice(j * dilation[1], j * dilation[1] + (ow - 1) * stride[1] + 1, stride[1]))

    out = sum(np.einsum("nchw,oc->nohw", x[patch(i, j)], w[:, :, i, j])
              for i in range(kh) for j in range(kw))

    def gradients(top):
        gw = np.zeros_like(w)
        gx = np.zeros_like(x)
        for i in range(kh):
            for j in range(kw):
                gw[:, :, i, j] = np.einsum("nchw,nohw->oc", x[patch(i, j)], top)
                gx[patch(i, j)] += np.einsum("nohw,oc->nchw", top, w[:, :, i, j])
        return gx[:, :, pads[0][0]:x.shape[2] - pads[0][1],
                  pads[1][0]:x.shape[3] - pads[1][1]], gw

    return out, gradients


# (border_mode, its padding for a 3x2 kernel dilated by `dilation`, subsample, dilation)
CONVOLUTIONS = [
    ("valid", ((0, 0), (0, 0)), (1, 1), (1, 1)),
    ("full", ((2, 2), (1, 1)), (1, 1), (1, 1)),
    ("half", ((1, 1), (1, 1)), (1, 1), (1, 1)),
    ((2, 1), ((2, 2), (1, 1)), (2, 2), (1, 1)),
    ("valid", ((0, 0), (0, 0)), (2, 1), (2, 1)),
    ("half", ((2, 2), (1, 1)), (1, 1), (2, 1)),
]


@pytest.mark.parametrize("border_mode, pads, subsample, dilation", CONVOLUTIONS)
def test_convolution_and_its_gradients_match_numpy(jax, border_mode, pads, subsample, dilation):
    rng = np.random.RandomState(1)
    x_value = rng.randn(2, 3, 9, 8).astype("float32")
    w_value = rng.randn(4, 3, 3, 2).astype("float32")
    x, w, top = T.tensor4("x"), T.tensor4("w"), T.tensor4("top")
    # Lasagne's conv layers call conv2d, which flips the kernel (a true convolution)
    out = T.nnet.conv2d(x, w, border_mode=border_mode, subsample=subsample,
                        filter_dilation=dilation)
    expected, gradients = numpy_correlation(x_value.astype("float64"),
                                            w_value[:, :, ::-1, ::-1].astype("float64"),
                                            pads, subsample, dilation)
    top_value = rng.randn(*expected.shape).astype("float32")
    gx, gw = theano.grad((out * top).sum(), [x, w])
    f = backends.compile_function([x, w, top], [out, gx, gw], backend="jax")
    result, result_gx, result_gw = f(x_value, w_value, top_value)
    expected_gx, expected_gw = gradients(top_value.astype("float64"))
    # float32 sums of at most 24 products of unit normals: 1e-5 relative to the largest value
    for value, reference in [(result, expected), (result_gx, expected_gx),
                             (result_gw, expected_gw[:, :, ::-1, ::-1])]:
        assert value.shape == reference.shape
        np.testing.assert_allclose(value, reference, atol=1e-5 * np.abs(reference).max())


def test_corrmm_ops_match_numpy(jax):
    # The ops Theano's C backend lowers conv2d to (no kernel flip), applied directly.
    from theano.tensor.nnet.corr import CorrMM, CorrMM_gradInputs, CorrMM_gradWeights
    rng = np.random.RandomState(2)
    x_value = rng.randn(2, 3, 7, 6).astype("float32")
    w_value = rng.randn(5, 3, 3, 3).astype("float32")
    expected, gradients = numpy_correlation(x_value.astype("float64"), w_value.astype("float64"),
                                            ((1, 1), (1, 1)), (2, 2), (1, 1))
    top_value = rng.randn(*expected.shape).astype("float32")
    expected_gx, expected_gw = gradients(top_value.astype("float64"))
    x, w, top = T.tensor4("x"), T.tensor4("w"), T.tensor4("top")
    outputs = [CorrMM("half", (2, 2))(x, w),
               CorrMM_gradInputs("half", (2, 2))(w, top, x.shape[-2:]),
               CorrMM_gradWeights("half", (2, 2))(x, top, w.shape[-2:])]
    results = backends.compile_function([x, w, top], outputs, backend="jax")(
        x_value, w_value, top_value)
    for value, reference in zip(results, [expected, expected_gx, expected_gw]):
        np.testing.assert_allclose(value, reference, atol=1e-5 * np.abs(reference).max())


def test_c_backend_runs_convolutions_with_openmp():
    from theano.tensor.nnet import corr
    rng = np.random.RandomState(5)
    x_value = rng.randn(4, 3, 9, 9).astype("float32")
    w_value = rng.randn(5, 3, 3, 3).astype("float32")
    x, w = T.tensor4("x"), T.tensor4("w")
    out = T.nnet.conv2d(x, w, border_mode="half")
    outputs = [out] + theano.grad((out ** 2).sum(), [x, w])
    parallel = backends.compile_function([x, w], outputs, backend="c")
    serial = theano.function([x, w], outputs)
    ops = {type(node.op): node.op.openmp for node in parallel.maker.fgraph.toposort()
           if isinstance(node.op, (corr.CorrMM, corr.CorrMM_gradWeights,
                                   corr.CorrMM_gradInputs))}
    assert ops == {corr.CorrMM: True, corr.CorrMM_gradWeights: True,
                   corr.CorrMM_gradInputs: True}
    assert not any(getattr(node.op, "openmp", False)
                   for node in serial.maker.fgraph.toposort())
    # Same values (per-thread partial sums of the weight gradient: float32 rounding).
    for fast, slow in zip(parallel(x_value, w_value), serial(x_value, w_value)):
        np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-5 * np.abs(slow).max())


# -- pooling -----------------------------------------------------------------------------

def numpy_pool(x, ws, stride, pad, ignore_border, mode):
    """Theano's pooling in float64 loops: regions, padding and divisors as its Pool op."""
    size = x.shape[-2:]
    padded_size = [s + 2 * p for s, p in zip(size, pad)]
    if ignore_border:
        out = [(s - w) // st + 1 for s, w, st in zip(padded_size, ws, stride)]
    else:
        out = [(s - 1) // st + 1 if st >= w else max(0, (s - 1 - w + st) // st) + 1
               for s, w, st in zip(size, ws, stride)]
    fill = -np.inf if mode == "max" else 0.0  # a float: np.full would make ints
    padded = np.full(x.shape[:-2] + tuple(padded_size), fill)
    padded[..., pad[0]:pad[0] + size[0], pad[1]:pad[1] + size[1]] = x
    result = np.zeros(x.shape[:-2] + tuple(out))
    for r in range(out[0]):
        for c in range(out[1]):
            rows = [r * stride[0], min(r * stride[0] + ws[0], padded_size[0])]
            cols = [c * stride[1], min(c * stride[1] + ws[1], padded_size[1])]
            region = padded[..., rows[0]:rows[1], cols[0]:cols[1]]
            if mode == "max":
                result[..., r, c] = region.max(axis=(-2, -1))
            elif mode == "sum":
                result[..., r, c] = region.sum(axis=(-2, -1))
            elif mode == "average_inc_pad":
                result[..., r, c] = region.sum(axis=(-2, -1)) / region[0, 0].size
            else:  # average_exc_pad: divide by the elements inside the image
                inside = [(max(rows[0], pad[0]), min(rows[1], pad[0] + size[0])),
                          (max(cols[0], pad[1]), min(cols[1], pad[1] + size[1]))]
                count = (inside[0][1] - inside[0][0]) * (inside[1][1] - inside[1][0])
                result[..., r, c] = region.sum(axis=(-2, -1)) / count
    return result


def numpy_max_pool_grad(x, gz, ws, stride):
    """Theano's tie rule: every element equal to its window's maximum gets the gradient."""
    gx = np.zeros(x.shape)
    for r in range(gz.shape[-2]):
        for c in range(gz.shape[-1]):
            window = (Ellipsis, slice(r * stride[0], r * stride[0] + ws[0]),
                      slice(c * stride[1], c * stride[1] + ws[1]))
            region = x[window]
            top = region.max(axis=(-2, -1), keepdims=True)
            gx[window] += (region == top) * gz[..., r, c][..., None, None]
    return gx


POOLS = [  # ws, stride, pad, ignore_border
    ((2, 2), (2, 2), (0, 0), True),
    ((3, 3), (2, 2), (0, 0), True),
    ((3, 2), (1, 2), (1, 1), True),
    ((2, 2), (2, 2), (0, 0), False),
    ((3, 3), (2, 2), (0, 0), False),
]


@pytest.mark.parametrize("mode", ["max", "sum", "average_inc_pad", "average_exc_pad"])
@pytest.mark.parametrize("ws, stride, pad, ignore_border", POOLS)
def test_pooling_matches_numpy(jax, mode, ws, stride, pad, ignore_border):
    x_value = np.random.RandomState(3).randn(2, 3, 7, 9).astype("float32")
    x = T.tensor4("x")
    out = theano.tensor.signal.pool.pool_2d(x, ws=ws, ignore_border=ignore_border,
                                            stride=stride, pad=pad, mode=mode)
    result = backends.compile_function([x], out, backend="jax")(x_value)
    expected = numpy_pool(x_value.astype("float64"), ws, stride, pad, ignore_border, mode)
    np.testing.assert_allclose(result, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("ws, stride, pad, ignore_border", POOLS)
@pytest.mark.parametrize("mode", ["max", "average_inc_pad"])
def test_pooling_gradient_matches_c_backend(jax, mode, ws, stride, pad, ignore_border):
    # Integer-valued inputs: windows with tied maxima in every map.
    rng = np.random.RandomState(4)
    x_value = rng.randint(0, 3, (2, 3, 7, 9)).astype("float32")
    x, gz = T.tensor4("x"), T.tensor4("gz")
    out = theano.tensor.signal.pool.pool_2d(x, ws=ws, ignore_border=ignore_border,
                                            stride=stride, pad=pad, mode=mode)
    grad = theano.grad((out * gz).sum(), x)
    c_fn, jax_fn = both([x, gz], grad)
    shape = theano.function([x], out.shape)(x_value)
    gz_value = rng.randn(*shape).astype("float32")
    np.testing.assert_allclose(jax_fn(x_value, gz_value), c_fn(x_value, gz_value),
                               rtol=1e-6, atol=1e-6)
    if mode == "max" and pad == (0, 0) and ignore_border:
        expected = numpy_max_pool_grad(x_value.astype("float64"), gz_value, ws, stride)
        np.testing.assert_allclose(jax_fn(x_value, gz_value), expected, rtol=1e-6, atol=1e-6)



@pytest.mark.parametrize("ws, shape", [((2, 2), (3, 5, 9, 8)), ((2, 3), (2, 3, 7, 10)),
                                       ((3, 3), (1, 2, 6, 6))])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tiled_max_pool_gradient_matches_theano_and_numpy(ws, shape, dtype):
    from ops.max_pool_grad import TiledMaxPoolGrad
    from theano.compile.mode import Mode
    # Integer-valued inputs: tied maxima in most windows; a NaN, an inf and -0.0 gradients.
    rng = np.random.RandomState(6)
    x_value = rng.randint(0, 3, shape).astype(dtype)
    x_value[0, 0, 0, 0] = np.nan
    x, gz = T.tensor4("x", dtype=dtype), T.tensor4("gz", dtype=dtype)
    out = theano.tensor.signal.pool.pool_2d(x, ws=ws, ignore_border=True)
    gz_value = rng.randn(*theano.function([x], out.shape)(x_value)).astype(dtype)
    gz_value[0, 0, -1, -1], gz_value[-1, -1, 0, 0] = np.inf, -0.0
    grad = theano.grad((out * gz).sum(), x)
    c_fn = backends.compile_function([x, gz], grad, backend="c")
    assert any(isinstance(node.op, TiledMaxPoolGrad) for node in c_fn.maker.fgraph.toposort())
    theano_fn = theano.function([x, gz], grad)  # Theano's own MaxPoolGrad
    assert not any(isinstance(node.op, TiledMaxPoolGrad)
                   for node in theano_fn.maker.fgraph.toposort())
    z = theano.function([x], out)(x_value)
    z_var = T.tensor4("z", dtype=dtype)
    tiled = [theano.function([x, z_var, gz], TiledMaxPoolGrad(ws, openmp=openmp)(x, z_var, gz),
                             mode=Mode(linker=linker))(x_value, z, gz_value)
             for openmp, linker in [(True, "c"), (False, "c"), (False, "py")]]
    expected = theano_fn(x_value, gz_value)
    for result in [c_fn(x_value, gz_value)] + tiled:
        assert result.dtype == dtype
        np.testing.assert_array_equal(result, expected)  # bit for bit (NaN where NaN)
    finite = np.isfinite(x_value).all(axis=(-2, -1)) & np.isfinite(z).all(axis=(-2, -1))
    reference = numpy_max_pool_grad(x_value.astype("float64"), gz_value.astype("float64"),
                                    ws, ws)
    np.testing.assert_allclose(expected[finite], reference[finite])


def test_overlapping_or_padded_pooling_keeps_theanos_gradient():
    from ops.max_pool_grad import TiledMaxPoolGrad
    x = T.tensor4("x")
    for kwargs in [dict(ws=(3, 3), stride=(2, 2)), dict(ws=(2, 2), pad=(1, 1)),
                   dict(ws=(2, 2), ignore_border=False)]:
        out = theano.tensor.signal.pool.pool_2d(x, **dict(dict(ignore_border=True), **kwargs))
        fn = backends.compile_function([x], theano.grad(out.sum(), x), backend="c")
        ops = [type(node.op) for node in fn.maker.fgraph.toposort()]
        assert theano.tensor.signal.pool.MaxPoolGrad in ops and TiledMaxPoolGrad not in ops


def test_c_backend_runs_elementwise_ops_with_openmp():
    from backends.c_openmp import OpenMPElemwise
    from theano.tensor.elemwise import Elemwise
    # Above Theano's openmp_elemwise_minsize (200,000): contiguous, broadcast
    # and transposed (strided) loops, fused composites.
    rng = np.random.RandomState(7)
    a_value = rng.randn(64, 70, 50).astype("float32")
    b_value = rng.randn(70, 1).astype("float32")
    a, b = T.tensor3("a"), T.col("b")
    outputs = [T.exp(a) * 2 + b ** 0.75, (a.dimshuffle(2, 1, 0) + 1) ** 2,
               T.switch(a > 0, a, 0.1 * a).sum(axis=0), abs(a) + b]
    parallel = backends.compile_function([a, b], outputs, backend="c")
    serial = theano.function([a, b], outputs)
    elemwise = [node.op for node in parallel.maker.fgraph.toposort()
                if isinstance(node.op, Elemwise)]
    assert elemwise and all(type(op) is OpenMPElemwise and op.openmp for op in elemwise)
    assert not any(getattr(node.op, "openmp", False) for node in serial.maker.fgraph.toposort())
    for fast, slow in zip(parallel(a_value, b_value), serial(a_value, b_value)):
        np.testing.assert_array_equal(fast, slow)
    expected = np.exp(a_value.astype("float64")) * 2 + np.float64(1) * b_value ** 0.75
    np.testing.assert_allclose(parallel(a_value, b_value)[0], expected, rtol=1e-5)

# -- classifier ops ----------------------------------------------------------------------

@pytest.mark.parametrize("clip", [True, False], ids=["clipped", "fused"])
def test_softmax_crossentropy_and_gradients_match_numpy(jax, clip):
    # Clipped probabilities (the training loop's loss) go through SoftmaxWithBias,
    # CrossentropyCategorical1Hot(Grad) and SoftmaxGrad; unclipped ones are fused by
    # Theano into CrossentropySoftmaxArgmax1HotWithBias and its Dx op.
    rng = np.random.RandomState(5)
    x_value = rng.randn(6, 4).astype("float32")
    b_value = rng.randn(4).astype("float32")
    y_value = rng.randint(0, 4, 6).astype("int32")
    x, b, y = T.matrix("x"), T.vector("b"), T.ivector("y")
    probabilities = T.nnet.softmax(x + b)
    if clip:
        probabilities = T.clip(probabilities, 1e-7, 1 - 1e-7)
    loss = T.nnet.categorical_crossentropy(probabilities, y).mean()
    outputs = [loss, T.argmax(probabilities, axis=1)] + theano.grad(loss, [x, b])
    f = backends.compile_function([x, b, y], outputs, backend="jax")
    ops = {type(node.op).__name__ for node in f.maker.fgraph.apply_nodes}
    assert ("CrossentropyCategorical1HotGrad" in ops) == clip
    assert ("CrossentropySoftmax1HotWithBiasDx" in ops) != clip
    loss_value, argmax, gx, gb = f(x_value, b_value, y_value)

    z = x_value.astype("float64") + b_value
    softmax = np.exp(z - z.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    one_hot = np.eye(4)[y_value]
    np.testing.assert_allclose(loss_value, -np.log(softmax[np.arange(6), y_value]).mean(),
                               rtol=1e-6)
    np.testing.assert_array_equal(argmax, softmax.argmax(axis=1))
    expected_gx = (softmax - one_hot) / 6  # no probability is clipped here
    np.testing.assert_allclose(gx, expected_gx, atol=1e-7)
    np.testing.assert_allclose(gb, expected_gx.sum(axis=0), atol=1e-7)


# -- the random number generator -----------------------------------------------------------

@pytest.mark.parametrize("size", [(5,), (3, 7), (2 * 15360 + 17,)],
                         ids=["fewer-than-streams", "matrix", "several-per-stream"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("jump_ahead", [True, False], ids=["jump", "scan"])
def test_mrg_uniform_is_bit_exact(jax, size, dtype, jump_ahead, monkeypatch):
    from theano.sandbox.rng_mrg import MRG_RandomStream
    from backends.jax_ops import mrg_random
    monkeypatch.setattr(mrg_random, "MRG_JUMP_AHEAD", jump_ahead)
    # A size taken from an input's shape, as dropout's: symbolic, so 15360 streams
    # (and concrete while JAX traces, which needs static shapes).
    x = T.TensorType("float32", (False,) * len(size))("x")
    samples = {}
    for backend in backends.BACKENDS:
        stream = MRG_RandomStream(seed=1234)
        sample = stream.uniform(x.shape, dtype=dtype)
        f = backends.compile_function([x], sample, backend=backend)
        state = f.get_shared()[0]
        draws = [f(np.zeros(size, "float32")) for _ in range(3)]
        samples[backend] = draws, np.asarray(state.get_value())
    for c_draw, jax_draw in zip(samples["c"][0], samples["jax"][0]):
        assert c_draw.dtype == jax_draw.dtype == dtype
        np.testing.assert_array_equal(c_draw, jax_draw)
    np.testing.assert_array_equal(samples["c"][1], samples["jax"][1])
    draws = samples["jax"][0]
    assert not np.array_equal(draws[0], draws[1])  # the state moves on between calls
    assert 0 < draws[0].min() and draws[0].max() < 1


@pytest.mark.parametrize("method", ["mrg31k3p_uniform", "_mrg31k3p_uniform_scan"])
def test_mrg_uniform_matches_theano_python_reference(jax, method):
    from theano.sandbox.rng_mrg import mrg_next_value
    from backends.jax_ops import mrg_random
    from backends.jax_ops.mrg_random import NORM
    streams = np.random.RandomState(6).randint(1, 2 ** 30, (4, 6)).astype("int32")
    # float64: Theano's Python reference scales in float64 (float32 would round twice)
    state, sample = getattr(mrg_random, method)(streams, (2, 5), "float64")
    reference_state = streams.copy()
    reference = [mrg_next_value(reference_state[i % 4], reference_state[i % 4],
                                NORM=NORM["float64"], mask=0xFFFFFFFF, offset=0)
                 for i in range(10)]
    np.testing.assert_array_equal(np.asarray(sample).reshape(-1), np.float64(reference))
    np.testing.assert_array_equal(np.asarray(state), reference_state)


# -- networks: a few training steps on both backends ---------------------------------------

def train_steps(build, input_shape, backend, optimizer, bias_correction, steps,
                batch_size=8, learning_rate=0.001):
    """Losses, gradients at the start, all shared state after ``steps`` updates, param names."""
    lasagne.random.set_rng(np.random.RandomState(42))
    network = build()
    data = np.random.RandomState(7)
    inputs = data.rand(batch_size, *input_shape).astype("float32")
    targets = data.randint(0, 10, batch_size).astype("int32")
    x, y = T.tensor4("x"), T.ivector("y")
    prediction = L.get_output(network, x)
    loss = T.nnet.categorical_crossentropy(T.clip(prediction, 1e-7, 1 - 1e-7), y).mean()
    params = L.get_all_params(network, trainable=True)
    updates = getattr(amsgrad, optimizer)(loss, params, learning_rate=learning_rate,
                                          bias_correction=bias_correction)
    gradients = backends.compile_function([x, y], theano.grad(loss, params),
                                          backend=backend)(inputs, targets)
    train = backends.compile_function([x, y], loss, updates=updates, backend=backend)
    losses = [float(train(inputs, targets)) for _ in range(steps)]
    validate = backends.compile_function(
        [x, y], T.nnet.categorical_crossentropy(L.get_output(network, x, deterministic=True),
                                                y).mean(), backend=backend)
    losses.append(float(validate(inputs, targets)))
    state = {variable.name or str(i): np.asarray(variable.get_value())
             for i, variable in enumerate(train.get_shared())}
    return losses, gradients, state, {p.name for p in params}


def assert_backends_agree(build, input_shape, optimizer="amsgrad", bias_correction=True,
                          steps=3, learning_rate=0.001, **kwargs):
    c_losses, c_grads, c_state, params = train_steps(build, input_shape, "c", optimizer,
                                             bias_correction, steps,
                                             learning_rate=learning_rate, **kwargs)
    jax_losses, jax_grads, jax_state, _ = train_steps(build, input_shape, "jax", optimizer,
                                                   bias_correction, steps,
                                                   learning_rate=learning_rate, **kwargs)
    # Gradients at the same start: float32 sums in another order, 2e-5 of the largest.
    for c_grad, jax_grad in zip(c_grads, jax_grads):
        np.testing.assert_allclose(jax_grad, c_grad, atol=2e-5 * np.abs(c_grad).max())
    # The first loss (same parameters): float32 rounding only.  Later ones: Adam moves
    # every parameter by about +-learning_rate, and a near-zero gradient rounded to the
    # other sign moves it the other way, so the losses drift apart a little (1e-3).
    np.testing.assert_allclose(jax_losses[0], c_losses[0], rtol=1e-5)
    np.testing.assert_allclose(jax_losses[1:], c_losses[1:], rtol=1e-3)
    assert c_state.keys() == jax_state.keys()
    for name, c_value in c_state.items():
        jax_value = jax_state[name]
        if c_value.dtype.kind == "i":  # the dropout generator's state: identical
            np.testing.assert_array_equal(jax_value, c_value, err_msg=name)
            continue
        # Adam's steps are about +-learning_rate whatever the gradient's size, so a
        # near-zero gradient whose rounding differs moves a parameter the other way,
        # and deep networks (batch normalisation of small batches) amplify that in
        # the next gradients: measured on vgg and small_vgg after 3 steps, medians of
        # 2-3% of a step (parameters) or of the array's scale (Adam's moments, running
        # averages), single elements up to 2.8 steps or 34% of the scale.  A wrong
        # gradient or update moves the median by whole steps.
        difference = np.abs(jax_value - c_value)
        if name in params:
            assert difference.max() <= 2 * steps * learning_rate + 1e-6, name
            assert np.median(difference) <= 0.1 * learning_rate, name
        else:
            scale = np.abs(c_value).max() + 1e-8
            assert difference.max() <= 0.5 * scale, name
            assert np.median(difference) <= 0.05 * scale, name


def small_conv_net():
    """Every layer type of the five networks, at a small size."""
    from models import batch_norm
    from models.lrn import LocalResponseNormLayer
    network = L.InputLayer((None, 3, 16, 16))
    network = batch_norm(L.Conv2DLayer(network, 6, 3, pad=1,
                                       W=lasagne.init.HeNormal(gain="relu")))
    network = LocalResponseNormLayer(network)
    network = L.MaxPool2DLayer(network, 3, stride=2)
    network = L.Conv2DLayer(network, 8, 3)
    network = L.MaxPool2DLayer(network, 2)
    network = L.DropoutLayer(network, 0.5)
    network = L.GlobalPoolLayer(network)
    return L.DenseLayer(network, 10, nonlinearity=lasagne.nonlinearities.softmax)


@pytest.mark.parametrize("optimizer, bias_correction",
                         [("amsgrad", True), ("amsgrad", False), ("adam", True)])
def test_small_conv_net_trains_alike_on_both_backends(jax, optimizer, bias_correction):
    assert_backends_agree(small_conv_net, (3, 16, 16), optimizer, bias_correction)


NETWORKS = [
    pytest.param("logreg", (1, 28, 28), id="logreg"),
    pytest.param("ffnn", (1, 28, 28), id="ffnn"),
    pytest.param("cifarnet", (3, 32, 32), id="cifarnet", marks=pytest.mark.slow),
    pytest.param("small_vgg", (3, 32, 32), id="small_vgg", marks=pytest.mark.slow),
    pytest.param("vgg", (3, 32, 32), id="vgg", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name, input_shape", NETWORKS)
def test_network_trains_alike_on_both_backends(jax, name, input_shape):
    import models
    assert_backends_agree(lambda: models.build(name, input_shape, 10), input_shape,
                          batch_size=4 if name == "vgg" else 8)


# -- NumPy 2 compatibility layer (exercised for real on the GPU machine, bench/RESULTS.md) --

def test_numpy2_compat_is_a_no_op_under_numpy_1(monkeypatch):
    import importlib.metadata
    from compat import numpy2 as numpy2_compat
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "1.23.5")
    assert not numpy2_compat.needed() and numpy2_compat.install() is False
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "2.0.1")
    assert numpy2_compat.needed()


def test_numpy2_compat_aliases_and_stubs(monkeypatch):
    import types
    from compat import numpy2 as numpy2_compat
    fake = types.ModuleType("numpy_without_removed_names")
    for name in ("prod", "cumprod", "all", "any", "dtype", "asarray", "get_include"):
        setattr(fake, name, getattr(np, name))
    numpy2_compat._numpy_aliases(fake)
    assert fake.int is int and fake.complex is complex and fake.product is np.prod
    assert fake.cast["float32"](2).dtype == np.float32
    assert fake.sctype2char("float64") == np.dtype("float64").char == "d"
    for name in ("numpy.distutils", "numpy.distutils.misc_util", "numpy.distutils.__config__",
                 "numpy.distutils.system_info"):
        monkeypatch.setitem(sys.modules, name, None)  # so that the stubs go afterwards
        monkeypatch.delitem(sys.modules, name)
    numpy2_compat._numpy_distutils_stub(fake)
    import numpy.distutils.misc_util as misc_util  # the stub now
    assert misc_util.get_numpy_include_dirs() == [np.get_include()]
    assert sys.modules["numpy.distutils.__config__"].blas_opt_info == {}


def test_numpy2_compat_turns_theano_compiler_off(monkeypatch):
    from compat import numpy2 as numpy2_compat
    monkeypatch.setenv("THEANO_FLAGS", "floatX=float32")
    numpy2_compat._compiler_off()
    assert os.environ["THEANO_FLAGS"] == "cxx=,floatX=float32"
    numpy2_compat._compiler_off()  # idempotent; a user's own cxx= is kept
    assert os.environ["THEANO_FLAGS"] == "cxx=,floatX=float32"
