"""The local response normalization op (models/lrn.py) against float64 references.

The output against the formula written out in NumPy, the gradient against the
Jacobian derived by hand (and Theano's finite differences), both against
Lasagne 0.1's own layer, whose graph the op replaces; C code with and without
OpenMP and the NumPy ``perform``; the JAX backend's version against the C code.
"""
import numpy as np
import pytest
import theano
import theano.tensor as T
from theano.compile.mode import Mode

import compat  # noqa: F401
import lasagne
import backends
from models.lrn import LocalResponseNormLayer
from ops.lrn import LocalResponseNorm, LocalResponseNormGrad

LASAGNE = dict(alpha=1e-4, k=2.0, beta=0.75, n=5)
#: beta=0.75 takes the square-root path of the C code, other values pow().
PARAMETERS = [LASAGNE, dict(alpha=0.01, k=1.0, beta=0.6, n=3),
              dict(alpha=0.5, k=0.5, beta=0.75, n=1)]
#: (batch, channels, rows, columns): fewer channels than the window too.
SHAPES = [(3, 7, 5, 6), (2, 2, 4, 3), (1, 9, 1, 1)]


def reference(x, alpha, k, beta, n):
    """Output and scale, in float64, from the definition channel by channel."""
    x = x.astype(np.float64)
    half, scale = n // 2, np.empty_like(x)
    for c in range(x.shape[1]):
        window = x[:, max(0, c - half):c + half + 1]
        scale[:, c] = k + alpha * (window ** 2).sum(axis=1)
    return x / scale ** beta, scale


def reference_gradient(x, gy, alpha, k, beta, n):
    """gx_j = sum_i gy_i dy_i/dx_j, with dy_i/dx_j derived by hand, element by element.

    dy_i/dx_j = [i = j] s_i^-beta - 2 alpha beta x_i x_j s_i^(-beta-1) [j in window of i]
    (i, j: channels at the same image and position).
    """
    x, gy = x.astype(np.float64), gy.astype(np.float64)
    _, scale = reference(x, alpha, k, beta, n)
    gx = np.zeros_like(x)
    for i in range(x.shape[1]):
        for j in range(max(0, i - n // 2), min(x.shape[1], i + n // 2 + 1)):
            jacobian = -2 * alpha * beta * x[:, i] * x[:, j] * scale[:, i] ** (-beta - 1)
            if i == j:
                jacobian += scale[:, i] ** -beta
            gx[:, j] += gy[:, i] * jacobian
    return gx


def values(shape, dtype, seed=0):
    rng = np.random.RandomState(seed)
    # Large inputs so that the window sum matters next to k (CifarNet's conv outputs
    # reach tens).
    return (rng.randn(*shape) * 30).astype(dtype), rng.randn(*shape).astype(dtype)


def compiled(parameters, dtype, mode, openmp=True):
    x, gy = T.tensor4("x", dtype=dtype), T.tensor4("gy", dtype=dtype)
    y = LocalResponseNorm(openmp=openmp, **parameters)(x)
    return theano.function([x, gy], [y, theano.grad((y * gy).sum(), x)], mode=mode)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("parameters", PARAMETERS)
def test_c_code_and_numpy_match_the_float64_definition(shape, parameters):
    x_value, gy_value = values(shape, "float64")
    expected_y, _ = reference(x_value, **parameters)
    expected_gx = reference_gradient(x_value, gy_value, **parameters)
    results = {"c openmp": compiled(parameters, "float64", Mode(linker="c"))(x_value, gy_value),
               "c serial": compiled(parameters, "float64", Mode(linker="c"),
                                    openmp=False)(x_value, gy_value),
               "numpy": compiled(parameters, "float64", Mode(linker="py"))(x_value, gy_value)}
    for name, (y, gx) in results.items():
        np.testing.assert_allclose(y, expected_y, rtol=1e-13, atol=0, err_msg=name)
        np.testing.assert_allclose(gx, expected_gx, rtol=1e-11, atol=1e-13, err_msg=name)
    # Every element is computed by one thread in the same order: OpenMP changes nothing.
    for a, b in zip(results["c openmp"], results["c serial"]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("parameters", PARAMETERS[:2])
def test_float32_is_within_rounding_of_the_definition(parameters):
    x_value, gy_value = values((4, 6, 7, 7), "float32", seed=1)
    y, gx = compiled(parameters, "float32", Mode(linker="c"))(x_value, gy_value)
    assert y.dtype == gx.dtype == np.float32
    expected_y, _ = reference(x_value, **parameters)
    np.testing.assert_allclose(y, expected_y, rtol=2e-6, atol=1e-6)
    expected_gx = reference_gradient(x_value, gy_value, **parameters)
    np.testing.assert_allclose(gx, expected_gx, rtol=1e-5, atol=1e-5 * np.abs(expected_gx).max())


def test_gradient_passes_finite_differences():
    rng = np.random.RandomState(2)
    for parameters in PARAMETERS:
        theano.gradient.verify_grad(LocalResponseNorm(**parameters),
                                    [rng.randn(2, 4, 3, 3) * 3], rng=rng, eps=1e-7)


def test_layer_matches_lasagnes_layer_in_float32():
    """The same function (and gradient) as Lasagne 0.1's elementwise graph, on CifarNet's shape."""
    x = T.tensor4("x")
    l_in = lasagne.layers.InputLayer((None, 64, 27, 27), input_var=x)
    ours, theirs = (lasagne.layers.get_output(cls(l_in, **LASAGNE)) for cls in (
        LocalResponseNormLayer, lasagne.layers.LocalResponseNormalization2DLayer))
    gy = T.tensor4("gy")
    fn = backends.compile_function([x, gy], [ours, theirs] + theano.grad(
        (ours * gy).sum() + (theirs * gy).sum(), [x]), backend="c")
    ops = [type(node.op) for node in fn.maker.fgraph.toposort()]
    assert LocalResponseNorm in ops and LocalResponseNormGrad in ops
    x_value, gy_value = values((8, 64, 27, 27), "float32", seed=3)
    y_ours, y_theirs, _ = fn(x_value, gy_value)
    np.testing.assert_allclose(y_ours, y_theirs, rtol=1e-6, atol=1e-6)
    # The summed gradient of both outputs: twice Lasagne's if ours is the same.
    gx_theirs = theano.function([x, gy], theano.grad((theirs * gy).sum(), x))(x_value, gy_value)
    gx_ours = theano.function([x, gy], theano.grad((ours * gy).sum(), x))(x_value, gy_value)
    np.testing.assert_allclose(gx_ours, gx_theirs, rtol=1e-5,
                               atol=1e-6 * np.abs(gx_theirs).max())


def test_non_contiguous_input():
    x = T.tensor4("x", dtype="float64")
    y = LocalResponseNorm(**LASAGNE)(x.dimshuffle(0, 3, 1, 2))  # a transposed view
    fn = theano.function([x], [y, theano.grad(y.sum(), x)], mode=Mode(linker="c"))
    x_value = values((2, 5, 4, 6), "float64")[0]
    y_value, gx_value = fn(x_value)
    transposed = x_value.transpose(0, 3, 1, 2)
    np.testing.assert_allclose(y_value, reference(transposed, **LASAGNE)[0], rtol=1e-13)
    np.testing.assert_allclose(
        gx_value.transpose(0, 3, 1, 2),
        reference_gradient(transposed, np.ones_like(transposed), **LASAGNE), rtol=1e-11)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="odd window"):
        LocalResponseNorm(n=4)
    with pytest.raises(TypeError, match="4-D"):
        LocalResponseNorm()(T.matrix())
    with pytest.raises(TypeError, match="float32 or float64"):
        LocalResponseNorm()(T.tensor4(dtype="int32"))
    with pytest.raises(NotImplementedError, match="odd n"):  # Lasagne's own check
        LocalResponseNormLayer((None, 3, 4, 4), n=2)


def test_jax_backend_matches_the_c_code():
    pytest.importorskip("jax", reason="JAX is not installed (%s)" % backends.JAX_INSTALL)
    for dtype, tolerance in (("float64", 1e-12), ("float32", 2e-6)):
        x, gy = T.tensor4("x", dtype=dtype), T.tensor4("gy", dtype=dtype)
        for parameters in PARAMETERS[:2]:
            y = LocalResponseNorm(**parameters)(x)
            outputs = [y, theano.grad((y * gy).sum(), x)]
            c_fn, jax_fn = (backends.compile_function([x, gy], outputs, backend=backend)
                            for backend in ("c", "jax"))
            x_value, gy_value = values((3, 7, 5, 6), dtype, seed=4)
            for c_value, jax_value in zip(c_fn(x_value, gy_value), jax_fn(x_value, gy_value)):
                assert jax_value.dtype == dtype
                np.testing.assert_allclose(jax_value, c_value, rtol=tolerance,
                                           atol=tolerance * np.abs(c_value).max())
