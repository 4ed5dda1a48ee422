"""The batch normalization ops (ops/batch_norm.py) against float64 references.

The outputs against the definition written out channel by channel, the
gradients against the Jacobian written out as a matrix (and Theano's finite
differences), the layer's training pass against the elementwise graph the ops
replace; C code with and without OpenMP and the NumPy ``perform``; the JAX
backend's versions against the C code.
"""
import numpy as np
import pytest
import theano
import theano.tensor as T
from theano.compile.mode import Mode

import compat  # noqa: F401
import lasagne
import backends
from models.batch_norm import BatchNormLayer
from ops.batch_norm import BatchNormTrain, BatchNormTrainGrad

EPSILON = 1e-4
#: (batch, channels, rows, columns): one image, one value per image, one channel.
SHAPES = [(3, 4, 5, 6), (1, 3, 4, 2), (6, 2, 1, 1), (2, 1, 3, 9)]


def reference(x, gamma, beta, epsilon=EPSILON):
    """``(y, mean, inv_std)`` in float64 from the definition, channel by channel."""
    x = x.astype(np.float64)
    y, means, inv_stds = np.empty_like(x), [], []
    for c in range(x.shape[1]):
        values = x[:, c]
        mean = values.sum() / values.size
        inv_std = 1 / np.sqrt(((values - mean) ** 2).sum() / values.size + epsilon)
        y[:, c] = (values - mean) * inv_std * gamma[c] + beta[c]
        means.append(mean)
        inv_stds.append(inv_std)
    return y, np.array(means), np.array(inv_stds)


def reference_gradient(x, gamma, gy, gmean, ginv, epsilon=EPSILON):
    """``(gx, ggamma, gbeta)`` from the Jacobians of a channel's outputs, as matrices.

    With ``d = x - mean`` (a channel's M values): dy/dx = gamma s (I - 1/M) -
    gamma s^3 d d^T / M, dmean/dx = 1/M, ds/dx = -s^3 d / M; dy/dgamma = d s,
    dy/dbeta = 1.
    """
    x, gy = x.astype(np.float64), gy.astype(np.float64)
    _, means, inv_stds = reference(x, gamma, np.zeros_like(gamma), epsilon)
    gx = np.empty_like(x)
    ggamma, gbeta = np.empty(x.shape[1]), np.empty(x.shape[1])
    for c in range(x.shape[1]):
        d = x[:, c].ravel() - means[c]
        s, m = inv_stds[c], d.size
        jacobian = gamma[c] * s * (np.eye(m) - 1.0 / m) - gamma[c] * s ** 3 * np.outer(d, d) / m
        g = gy[:, c].ravel()
        gx[:, c] = (jacobian.T @ g + gmean[c] / m - ginv[c] * s ** 3 * d / m).reshape(
            x[:, c].shape)
        ggamma[c] = g @ (d * s)
        gbeta[c] = g.sum()
    return gx, ggamma, gbeta


def values(shape, dtype, seed=0):
    """x far from zero (mean 50, spread 3: a one-pass variance would lose digits) and the rest."""
    rng = np.random.RandomState(seed)
    channels = shape[1]
    return [(rng.randn(*shape) * 3 + 50).astype(dtype)] + [
        rng.randn(channels).astype(dtype) for _ in range(2)] + [
        rng.randn(*shape).astype(dtype)] + [rng.randn(channels).astype(dtype) for _ in range(2)]


def graph(dtype, openmp=True):
    """Inputs x, gamma, beta, gy, gmean, ginv; outputs y, mean, inv_std, gx, ggamma, gbeta."""
    x, gy = T.tensor4("x", dtype=dtype), T.tensor4("gy", dtype=dtype)
    gamma, beta, gmean, ginv = (T.vector(name, dtype=dtype)
                                for name in ("gamma", "beta", "gmean", "ginv"))
    y, mean, inv_std = BatchNormTrain(EPSILON, openmp=openmp)(x, gamma, beta)
    cost = (y * gy).sum() + (mean * gmean).sum() + (inv_std * ginv).sum()
    return [x, gamma, beta, gy, gmean, ginv], [y, mean, inv_std] + theano.grad(
        cost, [x, gamma, beta])


def compiled(dtype, mode, openmp=True):
    return theano.function(*graph(dtype, openmp), mode=mode)


@pytest.mark.parametrize("shape", SHAPES)
def test_c_code_and_numpy_match_the_float64_definition(shape):
    x, gamma, beta, gy, gmean, ginv = arguments = values(shape, "float64")
    expected = list(reference(x, gamma, beta)) + list(
        reference_gradient(x, gamma, gy, gmean, ginv))
    results = {"c openmp": compiled("float64", Mode(linker="c"))(*arguments),
               "c serial": compiled("float64", Mode(linker="c"), openmp=False)(*arguments),
               "numpy": compiled("float64", Mode(linker="py"))(*arguments)}
    names = ("y", "mean", "inv_std", "gx", "ggamma", "gbeta")
    for backend, result in results.items():
        for name, got, want in zip(names, result, expected):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12,
                                       err_msg="%s %s" % (backend, name))
    # Each channel's sums and each element are computed by one thread: OpenMP changes nothing.
    for a, b in zip(results["c openmp"], results["c serial"]):
        np.testing.assert_array_equal(a, b)


def test_float32_is_within_rounding_of_the_definition():
    arguments = values((16, 8, 9, 9), "float32", seed=1)
    x, gamma, beta, gy, gmean, ginv = arguments
    result = compiled("float32", Mode(linker="c"))(*arguments)
    assert all(value.dtype == np.float32 for value in result)
    gamma64, beta64 = gamma.astype(np.float64), beta.astype(np.float64)
    expected = list(reference(x, gamma64, beta64)) + list(reference_gradient(
        x, gamma64, gy, gmean.astype(np.float64), ginv.astype(np.float64)))
    for got, want in zip(result, expected):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6 * np.abs(want).max())


def test_gradient_passes_finite_differences():
    rng = np.random.RandomState(2)

    def all_outputs(x, gamma, beta):
        y, mean, inv_std = BatchNormTrain(EPSILON)(x, gamma, beta)
        return T.concatenate([y.flatten(), mean, inv_std])
    for shape in SHAPES[:3]:
        theano.gradient.verify_grad(
            all_outputs, [rng.randn(*shape) * 2 + 1, rng.randn(shape[1]), rng.randn(shape[1])],
            rng=rng, eps=1e-7)


def layer_outputs(layer, x, gy):
    """A training pass's output and its gradients with respect to x, beta and gamma."""
    y = lasagne.layers.get_output(layer, x)
    return [y] + theano.grad((y * gy).sum(), [x, layer.beta, layer.gamma])


def test_layer_matches_the_elementwise_graph_in_float32():
    """The layer's training pass (now the ops) against the graph it replaces, on Vgg's scale."""
    x, gy = T.tensor4("x"), T.tensor4("gy")
    layer = BatchNormLayer(lasagne.layers.InputLayer((None, 16, 8, 8)),
                           beta=lasagne.init.Normal(), gamma=lasagne.init.Normal())
    ours = backends.compile_function([x, gy], layer_outputs(layer, x, gy), backend="c")
    ops = [type(node.op) for node in ours.maker.fgraph.toposort()]
    assert BatchNormTrain in ops and BatchNormTrainGrad in ops
    # The same layer with a non-default axes spelling takes the elementwise graph.
    elementwise = BatchNormLayer(lasagne.layers.InputLayer((None, 16, 8, 8)), axes=(0, 3, 2),
                                 beta=layer.beta, gamma=layer.gamma)
    theirs = backends.compile_function([x, gy], layer_outputs(elementwise, x, gy), backend="c")
    assert not {BatchNormTrain, BatchNormTrainGrad} & {
        type(node.op) for node in theirs.maker.fgraph.toposort()}
    rng = np.random.RandomState(3)
    x_value = (rng.randn(32, 16, 8, 8) * 4 + 2).astype("float32")
    gy_value = rng.randn(32, 16, 8, 8).astype("float32")
    for got, want in zip(ours(x_value, gy_value), theirs(x_value, gy_value)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-5 * np.abs(want).max())


def test_layer_without_beta_or_gamma():
    x = T.tensor4("x", dtype="float64")
    for beta, gamma in ((None, lasagne.init.Constant(2.0)), (lasagne.init.Constant(0.5), None)):
        layer = BatchNormLayer(lasagne.layers.InputLayer((None, 3, 4, 4)), beta=beta,
                               gamma=gamma)
        fn = theano.function([x], lasagne.layers.get_output(layer, x))
        x_value = np.random.RandomState(4).randn(5, 3, 4, 4)
        expected, _, _ = reference(x_value, np.full(3, 2.0 if beta is None else 1.0),
                                   np.full(3, 0.0 if beta is None else 0.5))
        np.testing.assert_allclose(fn(x_value), expected, rtol=1e-10, atol=1e-12)


def test_non_contiguous_input():
    x = T.tensor4("x", dtype="float64")
    gamma, beta = np.array([1.5, -0.5]), np.array([0.25, 2.0])
    y, _, _ = BatchNormTrain(EPSILON)(x.dimshuffle(0, 3, 1, 2), gamma, beta)  # a transposed view
    fn = theano.function([x], [y, theano.grad((y ** 2).sum(), x)], mode=Mode(linker="c"))
    x_value = values((3, 4, 5, 2), "float64")[0]
    y_value, gx_value = fn(x_value)
    transposed = x_value.transpose(0, 3, 1, 2)
    expected_y = reference(transposed, gamma, beta)[0]
    np.testing.assert_allclose(y_value, expected_y, rtol=1e-12)
    expected_gx = reference_gradient(transposed, gamma, 2 * expected_y, np.zeros(2),
                                     np.zeros(2))[0]
    np.testing.assert_allclose(gx_value.transpose(0, 3, 1, 2), expected_gx, rtol=1e-9,
                               atol=1e-12)


def test_bad_arguments_are_refused():
    with pytest.raises(TypeError, match="4-D tensors and vectors"):
        BatchNormTrain()(T.matrix(), T.vector(), T.vector())
    with pytest.raises(TypeError, match="all float32 or all float64"):
        BatchNormTrain()(T.tensor4(), T.dvector(), T.vector())
    x, gamma = T.dtensor4("x"), T.dvector("gamma")
    fn = theano.function([x, gamma], BatchNormTrain()(x, gamma, gamma)[0],
                         mode=Mode(linker="c"))
    with pytest.raises(ValueError, match="one value per channel"):
        fn(np.zeros((2, 3, 2, 2)), np.zeros(4))


def test_jax_backend_matches_the_c_code():
    pytest.importorskip("jax", reason="JAX is not installed (%s)" % backends.JAX_INSTALL)
    for dtype, tolerance in (("float64", 1e-11), ("float32", 2e-5)):
        fns = {backend: backends.compile_function(*graph(dtype), backend=backend)
               for backend in ("c", "jax")}
        arguments = values((5, 3, 4, 6), dtype, seed=5)
        for c_value, jax_value in zip(fns["c"](*arguments), fns["jax"](*arguments)):
            assert jax_value.dtype == dtype
            np.testing.assert_allclose(jax_value, c_value, rtol=tolerance,
                                       atol=tolerance * np.abs(c_value).max())
