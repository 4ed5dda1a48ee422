"""Each AMSGrad variant against the library that ships it, and against a float64 referee.

The library's own optimizer (PyTorch's ``Adam(amsgrad=True)``, Optax's ``amsgrad``,
Keras 3's ``Adam(amsgrad=True)``) and the project's builder take the same stream of
gradients, step by step from step 1 to step 1,000, on parameters of several shapes;
their iterates must agree to float32 rounding.  The gradients of each parameter span
ten orders of magnitude, so that where epsilon sits and which estimate the maximum
keeps both show.  A float64 NumPy version of each variant's equations (written here
from the libraries' documented algorithms, not from amsgrad.py) referees both.

The libraries are the optional extra "conformance" (setup.py; .ci/run installs it);
without one, its tests skip and say which.  ``test_check_fails_against_another_library``
runs the same comparison with the builder of one variant against another variant's
library and requires it to fail: the check can tell the variants apart.
"""
import importlib
import importlib.util
import os

import numpy as np
import pytest
import theano
import theano.tensor as T

import amsgrad
import amsgrad_variants

STEPS = 1000
#: Shapes of the parameters updated together (a scalar, a vector, a matrix, a 3-d array).
SHAPES = [(), (7,), (3, 4), (2, 3, 5)]
#: (lr, beta1, beta2, epsilon) of the runs: the blog's, a faster one, and beta1 = 0.
SETTINGS = [(0.001, 0.9, 0.999, 1e-8), (0.01, 0.9, 0.99, 1e-8), (0.1, 0.0, 0.9, 1e-6)]
#: Float32's unit roundoff, and how many of them the comparison allows per unit of movement:
#: 256, 1.5e-5.  The worst agreeing pair measured (PyTorch's builder against PyTorch at the
#: blog's setting) needs about 100: 1 - beta2**t from a float32 beta2 (0.999 is 0.99900001)
#: is 1.3e-5 off, as the blog's, Keras's and Optax's steps compute it.  Two different
#: variants differ by more than 2e6 of them on this stream.
UNIT_ROUNDOFF = 2.0 ** -24
ROUNDOFFS = 256


# ------------------------------------------------------------------ the gradient stream

def gradient_stream(seed=0):
    """``STEPS`` float32 gradients per parameter: signs and sizes from 1e-9 to 10.

    Each element has its own scale (log-uniform over ten decades), and the stream has
    bursts (every 97th step is 30 times larger), so the maximum of the second moment
    changes hands over the run.
    """
    rng = np.random.default_rng(seed)
    stream = []
    for shape in SHAPES:
        scale = 10.0 ** rng.uniform(-9, 1, size=shape)
        noise = rng.standard_normal((STEPS,) + shape) + 0.3
        burst = np.where(np.arange(1, STEPS + 1) % 97 == 0, 30.0, 1.0).reshape(
            (STEPS,) + (1,) * len(shape))
        stream.append((scale * noise * burst).astype(np.float32))
    return stream


def initial_values():
    return [np.linspace(-1, 1, int(np.prod(shape))).reshape(shape).astype(np.float32)
            for shape in SHAPES]


# ------------------------------------------------------------------ the float64 referees

def referee(variant, grads, lr, beta1, beta2, epsilon, bias_correction=True,
            beta1_decay=0.999999):
    """Iterates of each variant in float64, straight from its equations; list per parameter
    of arrays ``(STEPS,) + shape``."""
    result = []
    for x0, g_all in zip(initial_values(), grads):
        x = x0.astype(np.float64)
        m, v, v_hat = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x)
        xs = []
        for t in range(1, STEPS + 1):
            g = g_all[t - 1].astype(np.float64)
            b1 = beta1 * beta1_decay ** (t - 1) if variant == "reddi" else beta1
            m = b1 * m + (1 - b1) * g
            v = beta2 * v + (1 - beta2) * g * g
            c1, c2 = 1 - beta1 ** t, 1 - beta2 ** t
            if variant == "blog":        # also Keras 3
                v_hat = np.maximum(v_hat, v)
                alpha = lr * np.sqrt(c2) / c1 if bias_correction else lr
                x = x - alpha * m / (np.sqrt(v_hat) + epsilon)
            elif variant == "pytorch":
                v_hat = np.maximum(v_hat, v)
                x = x - lr / c1 * m / (np.sqrt(v_hat) / np.sqrt(c2) + epsilon)
            elif variant == "optax":
                v_hat = np.maximum(v_hat, v / c2)
                x = x - lr * (m / c1) / (np.sqrt(v_hat) + epsilon)
            elif variant == "reddi":
                v_hat = np.maximum(v_hat, v)
                x = x - lr / np.sqrt(t) * m / (np.sqrt(v_hat) + epsilon)
            xs.append(x.copy())
        result.append(np.array(xs))
    return result


# ------------------------------------------------------------------ the project's builders

def run_builder(builder, grads, **keywords):
    """The builder's iterates on the stream, in float32 (Theano)."""
    params = [theano.shared(x0, name="p%d" % i) for i, x0 in enumerate(initial_values())]
    inputs = [T.TensorType("float32", (False,) * len(shape))("g%d" % i)
              for i, shape in enumerate(SHAPES)]
    updates = builder(inputs, params, **keywords)
    step = theano.function(inputs, [], updates=updates)
    xs = [[] for _ in SHAPES]
    for t in range(STEPS):
        step(*(g[t] for g in grads))
        for i, param in enumerate(params):
            xs[i].append(param.get_value().astype(np.float64))
    return [np.array(x) for x in xs]


# ------------------------------------------------------------------ the libraries

def _library(module):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pytest.skip("%s is not installed (the optional extra 'conformance': pip install -e "
                    "\".[conformance]\", see setup.py): %s" % (module, exc))


def run_pytorch(grads, lr, beta1, beta2, epsilon):
    torch = _library("torch")
    params = [torch.nn.Parameter(torch.from_numpy(x0.copy())) for x0 in initial_values()]
    optimizer = torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), eps=epsilon,
                                 amsgrad=True)
    xs = [[] for _ in SHAPES]
    for t in range(STEPS):
        for param, g in zip(params, grads):
            param.grad = torch.from_numpy(np.array(g[t]))
        optimizer.step()
        for i, param in enumerate(params):
            xs[i].append(param.detach().numpy().astype(np.float64))
    return [np.array(x) for x in xs]


def run_optax(grads, lr, beta1, beta2, epsilon):
    optax = _library("optax")
    import jax.numpy as jnp
    params = [jnp.asarray(x0) for x0 in initial_values()]
    optimizer = optax.amsgrad(lr, b1=beta1, b2=beta2, eps=epsilon)
    state = optimizer.init(params)
    xs = [[] for _ in SHAPES]
    for t in range(STEPS):
        updates, state = optimizer.update([jnp.asarray(g[t]) for g in grads], state, params)
        params = optax.apply_updates(params, updates)
        for i, param in enumerate(params):
            xs[i].append(np.asarray(param, dtype=np.float64))
    assert all(param.dtype == np.float32 for param in params)
    return [np.array(x) for x in xs]


def run_keras(grads, lr, beta1, beta2, epsilon):
    # Keras 3 on JAX (installed with the project); the backend is chosen at first import.
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = _library("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("keras was imported with backend %s; this test runs it on jax"
                    % keras.backend.backend())
    variables = [keras.Variable(x0.copy(), dtype="float32") for x0 in initial_values()]
    optimizer = keras.optimizers.Adam(learning_rate=lr, beta_1=beta1, beta_2=beta2,
                                      epsilon=epsilon, amsgrad=True)
    xs = [[] for _ in SHAPES]
    for t in range(STEPS):
        optimizer.apply_gradients([(g[t], variable) for g, variable in zip(grads, variables)])
        for i, variable in enumerate(variables):
            xs[i].append(np.asarray(variable.numpy(), dtype=np.float64))
    return [np.array(x) for x in xs]


#: variant -> (its builder with its keywords, the library run, the referee's variant name)
VARIANTS = {
    "pytorch": (amsgrad_variants.amsgrad_pytorch, {}, run_pytorch, "pytorch"),
    "optax": (amsgrad_variants.amsgrad_optax, {}, run_optax, "optax"),
    # Keras 3's Adam(amsgrad=True) is the blog's AMSGrad with bias correction.
    "keras": (amsgrad.amsgrad, {"bias_correction": True}, run_keras, "blog"),
}


# ------------------------------------------------------------------ the comparison

def mismatch(got, expected):
    """The largest error of ``got`` in units of the allowed float32 rounding.

    At step t an element may be off by ``ROUNDOFFS`` unit roundoffs of its distance
    travelled so far (the sum of the expected steps' sizes) plus its size: each step
    rounds a few times, relative to the step and to the parameter.  Returns the worst
    ratio over all steps and elements (<= 1: agreement).
    """
    worst = 0.0
    for x0, a, b in zip(initial_values(), got, expected):
        path = np.concatenate([x0[None].astype(np.float64), b])
        travelled = np.cumsum(np.abs(np.diff(path, axis=0)), axis=0)
        allowed = ROUNDOFFS * UNIT_ROUNDOFF * (travelled + np.abs(b)) + np.finfo(np.float32).tiny
        worst = max(worst, float(np.max(np.abs(a - b) / allowed)))
    return worst


@pytest.fixture(scope="module")
def grads():
    return gradient_stream()


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: "lr%g-b1%g-b2%g" % s[:3])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_builder_agrees_with_its_library(variant, setting, grads):
    builder, keywords, library, name = VARIANTS[variant]
    lr, beta1, beta2, epsilon = setting
    theirs = library(grads, *setting)
    ours = run_builder(builder, grads, learning_rate=lr, beta1=beta1, beta2=beta2,
                       epsilon=epsilon, **keywords)
    exact = referee(name, grads, *setting)
    assert mismatch(ours, theirs) <= 1, "builder vs %s" % variant
    # The referee agrees with both: each is float32 rounding away from the equations.
    assert mismatch(theirs, exact) <= 1, "%s vs the float64 referee" % variant
    assert mismatch(ours, exact) <= 1, "builder vs the float64 referee"


@pytest.mark.parametrize("bias_correction", [True, False])
@pytest.mark.parametrize("setting", SETTINGS[:2], ids=lambda s: "lr%g-b2%g" % (s[0], s[2]))
def test_blog_amsgrad_agrees_with_its_referee(setting, bias_correction, grads):
    # The blog's builder has the switch; its library (Keras) only the correction on.
    lr, beta1, beta2, epsilon = setting
    ours = run_builder(amsgrad.amsgrad, grads, learning_rate=lr, beta1=beta1, beta2=beta2,
                       epsilon=epsilon, bias_correction=bias_correction)
    assert mismatch(ours, referee("blog", grads, *setting, bias_correction)) <= 1


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: "lr%g-b1%g-b2%g" % s[:3])
def test_reddi_agrees_with_its_referee(setting, grads):
    # No library ships Algorithm 2; the float64 referee is its only check.
    lr, beta1, beta2, epsilon = setting
    ours = run_builder(amsgrad_variants.amsgrad_reddi, grads, learning_rate=lr, beta1=beta1,
                       beta2=beta2, epsilon=epsilon)
    assert mismatch(ours, referee("reddi", grads, *setting)) <= 1


#: (builder's variant, other library's variant): every pair of different algorithms.
CROSSED = [(a, b) for a in VARIANTS for b in VARIANTS
           if VARIANTS[a][3] != VARIANTS[b][3]] + [("reddi", b) for b in VARIANTS]


@pytest.mark.parametrize("ours,theirs", CROSSED)
def test_check_fails_against_another_library(ours, theirs, grads):
    # The comparison above, one variant's builder against another variant's library:
    # it must not pass, or it could not tell the variants apart.
    setting = SETTINGS[0]
    lr, beta1, beta2, epsilon = setting
    if ours == "reddi":
        builder, keywords = amsgrad_variants.amsgrad_reddi, {}
    else:
        builder, keywords = VARIANTS[ours][:2]
    library = VARIANTS[theirs][2](grads, *setting)
    got = run_builder(builder, grads, learning_rate=lr, beta1=beta1, beta2=beta2,
                      epsilon=epsilon, **keywords)
    assert mismatch(got, library) > 100  # not rounding: 100 times what rounding may do


def test_variants_differ_in_the_first_step():
    # One gradient g: the blog's (and Keras's) first step is lr * g / (|g| + eps / sqrt(1 -
    # beta2)), PyTorch's and Optax's lr * g / (|g| + eps), Reddi's
    # lr (1 - beta1) g / (sqrt(1 - beta2) |g| + eps).
    g = np.array([1e-7, 1.0], dtype=np.float32)
    lr, beta1, beta2, eps = 0.1, 0.9, 0.999, 1e-8
    first = {}
    for name, builder in [("blog", amsgrad.amsgrad), ("pytorch", amsgrad_variants.amsgrad_pytorch),
                          ("optax", amsgrad_variants.amsgrad_optax),
                          ("reddi", amsgrad_variants.amsgrad_reddi)]:
        param = theano.shared(np.zeros(2, dtype=np.float32))
        grad = T.vector("g")
        step = theano.function([grad], [], updates=builder([grad], [param], lr, beta1, beta2,
                                                           epsilon=eps))
        step(g)
        first[name] = -param.get_value().astype(np.float64)
    g64 = g.astype(np.float64)
    expected = {
        "blog": lr * g64 / (np.abs(g64) + eps / np.sqrt(1 - beta2)),
        "pytorch": lr * g64 / (np.abs(g64) + eps),
        "optax": lr * g64 / (np.abs(g64) + eps),
        "reddi": lr * (1 - beta1) * g64 / (np.sqrt(1 - beta2) * np.abs(g64) + eps),
    }
    for name in first:
        np.testing.assert_allclose(first[name], expected[name], rtol=1e-5, err_msg=name)


def test_the_readme_table_is_what_the_committed_runs_give():
    # The table's numbers are regenerated, not typed: `python scripts/variants_table.py`
    # prints it from reproduction/variants (agreement, synthetic runs, logreg runs) and
    # the blog's logreg grid in reproduction/histories.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location(
        "variants_table", os.path.join(root, "scripts", "variants_table.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with open(os.path.join(root, "README.md")) as stream:
        readme = stream.read().splitlines()
    lines = script.table()
    start = readme.index(lines[0])
    assert readme[start:start + len(lines)] == lines
    # The logreg column is measured for every variant, not "not measured".
    assert not any("not measured" in line for line in lines)
