"""The update builders against an independent float64 NumPy implementation."""
from collections import OrderedDict

import numpy as np
import pytest
import theano
import theano.tensor as T

import amsgrad as update_rules
from amsgrad import adam, adamnc, amsgrad

STEPS = 200


def numpy_reference(grad_fn, x0, lrs, beta1, beta2, epsilon, bias_correction, use_max):
    """Adam / AMSGrad in float64, straight from the equations (not from amsgrad.py).

    ``lrs[t-1]`` is the learning rate of step t.  Returns the iterates and the
    denominators' second moment estimates (v_t for Adam, v_hat_t for AMSGrad).
    """
    x = np.array(x0, dtype=np.float64)
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    v_hat = np.zeros_like(x)
    xs, denominators = [], []
    for t, lr in enumerate(lrs, start=1):
        g = grad_fn(x, t)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_hat = np.maximum(v_hat, v)
        second = v_hat if use_max else v
        alpha = lr * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t) if bias_correction else lr
        x = x - alpha * m / (np.sqrt(second) + epsilon)
        xs.append(x.copy())
        denominators.append(second.copy())
    return np.array(xs), np.array(denominators)


# A fixed quadratic with per-coordinate curvature plus a deterministic, step-dependent
# perturbation, so gradients change sign and magnitude over the run.
A = np.array([0.5, 2.0, 8.0, 0.1, 1.0])
B = np.array([1.0, -2.0, 0.5, 3.0, -0.25])


def quadratic_grad(x, t):
    return A * (x - B) + 0.3 * np.sin(0.7 * t + np.arange(len(x)))


def theano_run(builder, lrs, beta1, beta2, epsilon, bias_correction, dtype="float32",
               shared_lr=False):
    """Run a builder on the same problem; gradients enter as an input, computed in float64."""
    x0 = np.linspace(-1, 1, len(A))
    param = theano.shared(x0.astype(dtype), name="x")
    grad = T.vector("g", dtype=dtype)
    lr = theano.shared(np.asarray(lrs[0], dtype=theano.config.floatX)) if shared_lr else lrs[0]
    updates = builder([grad], [param], learning_rate=lr, beta1=beta1, beta2=beta2,
                      epsilon=epsilon, bias_correction=bias_correction)
    step = theano.function([grad], [], updates=updates)
    xs = []
    for t in range(1, len(lrs) + 1):
        if shared_lr:
            lr.set_value(np.asarray(lrs[t - 1], dtype=theano.config.floatX))
        x = param.get_value().astype(np.float64)
        step(quadratic_grad(x, t).astype(dtype))
        xs.append(param.get_value().astype(np.float64))
    return np.array(xs), x0, param, updates


@pytest.mark.parametrize("builder,use_max", [(adam, False), (amsgrad, True)])
@pytest.mark.parametrize("bias_correction", [True, False])
@pytest.mark.parametrize("lr,beta2", [(0.01, 0.99), (0.001, 0.999), (0.1, 0.9)])
def test_matches_numpy_reference(builder, use_max, bias_correction, lr, beta2):
    lrs = [lr] * STEPS
    xs, x0, _, _ = theano_run(builder, lrs, 0.9, beta2, 1e-8, bias_correction)
    ref, _ = numpy_reference(quadratic_grad, x0, lrs, 0.9, beta2, 1e-8, bias_correction, use_max)
    # float32 state over 200 steps: relative error of a few float32 ulps per step
    np.testing.assert_allclose(xs, ref, rtol=2e-5, atol=2e-5 * lr * 10)


@pytest.mark.parametrize("builder,use_max", [(adam, False), (amsgrad, True)])
def test_bias_correction_switch_changes_first_step(builder, use_max):
    # With m_1 = (1-b1) g and v_1 = (1-b2) g^2, the first step is
    # lr * (1-b1)/sqrt(1-b2) * sign(g) without correction and lr * sign(g) with it.
    g = np.array([2.0, -3.0], dtype="float32")
    lr, b1, b2 = 0.01, 0.9, 0.999
    for bias_correction, expected in [(True, lr), (False, lr * (1 - b1) / np.sqrt(1 - b2))]:
        param = theano.shared(np.zeros(2, dtype="float32"))
        grad = T.vector("g")
        updates = builder([grad], [param], lr, b1, b2, 1e-8, bias_correction=bias_correction)
        theano.function([grad], [], updates=updates)(g)
        np.testing.assert_allclose(-param.get_value(), expected * np.sign(g), rtol=1e-5)


@pytest.mark.parametrize("builder,use_max", [(adam, False), (amsgrad, True)])
def test_schedule_through_shared_learning_rate(builder, use_max):
    # Linear decay to zero, as the experiments' schedule, changed between calls.
    lrs = list(np.linspace(0.05, 0.0, STEPS, endpoint=False))
    xs, x0, _, _ = theano_run(builder, lrs, 0.9, 0.99, 1e-8, True, shared_lr=True)
    ref, _ = numpy_reference(quadratic_grad, x0, lrs, 0.9, 0.99, 1e-8, True, use_max)
    np.testing.assert_allclose(xs, ref, rtol=2e-5, atol=1e-5)


@pytest.mark.parametrize("builder", [adam, amsgrad])
@pytest.mark.parametrize("shared_lr", [False, True])
def test_float32_stays_float32(builder, shared_lr):
    _, _, param, updates = theano_run(builder, [0.01] * 3, 0.9, 0.99, 1e-8, True,
                                      shared_lr=shared_lr)
    assert param.dtype == "float32"
    for variable, expression in updates.items():
        assert variable.dtype == "float32", variable
        assert expression.dtype == "float32", (variable, expression)


@pytest.mark.parametrize("builder", [adam, amsgrad])
def test_float64_learning_rate_expression_does_not_upcast(builder):
    param = theano.shared(np.ones(3, dtype="float32"))
    lr = T.constant(np.float64(0.01)) * 2  # a float64 expression
    updates = builder(T.sum(param ** 2), [param], learning_rate=lr)
    assert all(expr.dtype == "float32" for expr in updates.values())


@pytest.mark.parametrize("builder,use_max", [(adam, False), (amsgrad, True)])
def test_broadcastable_parameter_trains(builder, use_max):
    # A (1, n) bias broadcastable along its first axis: the blog listing's state
    # variables lost the pattern and Theano refused the update.
    bias = theano.shared(np.zeros((1, 3), dtype="float32"), broadcastable=(True, False))
    x = T.matrix("x")
    target = np.array([[1.0, -2.0, 0.5]] * 4, dtype="float32")
    loss = T.mean(T.sqr(x + bias - target))
    updates = builder(loss, [bias], learning_rate=0.1, bias_correction=True)
    for variable in updates:
        if variable is not bias and variable.ndim == 2:
            assert variable.broadcastable == (True, False)
    train = theano.function([x], loss, updates=updates)
    zeros = np.zeros((4, 3), dtype="float32")
    losses = [float(train(zeros)) for _ in range(100)]
    assert losses[-1] < 0.05 * losses[0]
    # loss = mean((b - c)^2), gradient 2 (b - c) / 3 per coordinate (4 equal rows)
    ref, _ = numpy_reference(lambda b, t: 2 * (b - target[0]) / 3, np.zeros(3), [0.1] * 100,
                             0.9, 0.999, 1e-8, True, use_max)
    np.testing.assert_allclose(bias.get_value()[0], ref[-1], rtol=1e-4, atol=1e-5)


def test_amsgrad_denominator_never_decreases_where_adams_does():
    # A large gradient followed by small ones: Adam's v_t decays, AMSGrad's v_hat_t keeps
    # the maximum, so its effective step size lr / sqrt(v_hat) never grows.
    grads = np.array([10.0] + [0.1] * 60 + [5.0] + [0.01] * 60)

    def grad_fn(x, t):
        return np.array([grads[t - 1]])

    lrs = [0.01] * len(grads)
    _, adam_v = numpy_reference(grad_fn, [0.0], lrs, 0.9, 0.99, 1e-8, False, use_max=False)
    assert np.any(np.diff(adam_v[:, 0]) < 0), "the sequence must make Adam's v_t decrease"

    param = theano.shared(np.zeros(1, dtype="float32"))
    g = T.vector("g")
    updates = amsgrad([g], [param], learning_rate=0.01, beta2=0.99, bias_correction=False)
    v_hat = [var for var in updates if var.name and var.name.endswith("v_hat")][0]
    step = theano.function([g], [], updates=updates)
    seen = []
    for value in grads:
        step(np.array([value], dtype="float32"))
        seen.append(float(v_hat.get_value()[0]))
    assert np.all(np.diff(seen) >= 0)
    # and it is the running maximum of Adam's v_t
    np.testing.assert_allclose(seen, np.maximum.accumulate(adam_v[:, 0]), rtol=1e-5)


def test_updates_are_ordered_dict_over_all_state():
    params = [theano.shared(np.zeros(2, dtype="float32"), name="w"),
              theano.shared(np.zeros((2, 2), dtype="float32"), name="W")]
    loss = sum(T.sum(p ** 2) for p in params)
    for builder, per_param in [(adam, 2), (amsgrad, 3)]:
        updates = builder(loss, params)
        assert isinstance(updates, OrderedDict)
        assert list(updates)[:2] == params
        # parameters + one step counter + per-parameter state
        assert len(updates) == len(params) + 1 + per_param * len(params)


@pytest.mark.parametrize("builder", [adam, amsgrad])
@pytest.mark.parametrize("kwargs,error,words", [
    (dict(beta1=1.0), ValueError, "beta1"),
    (dict(beta1=-0.1), ValueError, "beta1"),
    (dict(beta2=1.5), ValueError, "beta2"),
    (dict(beta2="0.99"), TypeError, "beta2"),
    (dict(learning_rate=-0.001), ValueError, "learning_rate"),
    (dict(learning_rate=float("nan")), ValueError, "learning_rate"),
    (dict(learning_rate="fast"), TypeError, "learning_rate"),
    (dict(epsilon=0.0), ValueError, "epsilon"),
    (dict(bias_correction="off"), TypeError, "bias_correction"),
])
def test_bad_arguments_name_the_argument(builder, kwargs, error, words):
    param = theano.shared(np.zeros(2, dtype="float32"))
    with pytest.raises(error, match=words):
        builder(T.sum(param ** 2), [param], **kwargs)


@pytest.mark.parametrize("builder", [adam, amsgrad])
def test_params_must_be_shared_variables(builder):
    x = T.vector("x")
    with pytest.raises(TypeError, match=r"params\[0\].*shared variable"):
        builder(T.sum(x ** 2), [x])
    param = theano.shared(np.zeros(2, dtype="float32"))
    with pytest.raises(TypeError, match="list of shared variables"):
        builder(T.sum(param ** 2), param)
    with pytest.raises(ValueError, match="2 gradient expressions for 1 parameters"):
        builder([param, param], [param])


# ---------------------------------------------------------------- ADAMNC

def adamnc_reference(grad_fn, x0, steps, lr, beta1, decay, epsilon):
    """Reddi et al.'s ADAMNC (Algorithm 3) in float64, from the paper's equations.

    beta1_t = beta1 * decay^(t-1), beta2_t = 1 - 1/t, alpha_t = lr / sqrt(t), with epsilon
    added to sqrt(v_t) as in Adam.  Returns the iterates after each step.
    """
    x = np.array(x0, dtype=np.float64)
    m, v, xs = np.zeros_like(x), np.zeros_like(x), []
    for t in range(1, steps + 1):
        g = grad_fn(x, t)
        beta1_t, beta2_t, alpha_t = beta1 * decay ** (t - 1), 1 - 1 / t, lr / np.sqrt(t)
        m = beta1_t * m + (1 - beta1_t) * g
        v = beta2_t * v + (1 - beta2_t) * g * g
        x = x - alpha_t * m / (np.sqrt(v) + epsilon)
        xs.append(x.copy())
    return np.array(xs)


def shaped_grad(shape):
    """A quadratic with per-element curvature and a step-dependent perturbation, any shape."""
    size = int(np.prod(shape))
    curvature = np.linspace(0.1, 8.0, size).reshape(shape)
    target = np.cos(np.arange(size)).reshape(shape) * 2

    def grad(x, t):
        return curvature * (x - target) + 0.3 * np.sin(0.7 * t + np.arange(size)).reshape(shape)
    return grad


ADAMNC_SHAPES = [((5,), None), ((3, 4), None), ((1, 4), (True, False)), ((), None)]
ADAMNC_STEPS = 150


def check_adamnc(builder, shape, broadcastable, lr, beta1, decay):
    """Run ``builder`` step by step against :func:`adamnc_reference`; AssertionError if apart."""
    grad_fn = shaped_grad(shape)
    x0 = np.linspace(-1, 1, int(np.prod(shape))).reshape(shape)
    param = theano.shared(x0.astype("float32"), name="x", broadcastable=broadcastable)
    grad = T.TensorType("float32", param.broadcastable)("g")
    updates = builder([grad], [param], learning_rate=lr, beta1=beta1, beta1_decay=decay,
                      epsilon=1e-8)
    step = theano.function([grad], [], updates=updates)
    xs = []
    for t in range(1, ADAMNC_STEPS + 1):
        step(grad_fn(param.get_value().astype(np.float64), t).astype("float32"))
        xs.append(param.get_value().astype(np.float64))
    ref = adamnc_reference(grad_fn, x0, ADAMNC_STEPS, lr, beta1, decay, 1e-8)
    np.testing.assert_allclose(np.array(xs), ref, rtol=2e-5, atol=2e-5 * lr * 10)
    return updates, param


@pytest.mark.parametrize("shape,broadcastable", ADAMNC_SHAPES)
@pytest.mark.parametrize("lr,beta1,decay", [(0.1, 0.9, 0.9), (0.01, 0.9, 0.99),
                                            (0.05, 0.5, 0.999999)])
def test_adamnc_matches_the_papers_update(shape, broadcastable, lr, beta1, decay):
    updates, param = check_adamnc(adamnc, shape, broadcastable, lr, beta1, decay)
    # The state a checkpoint saves: the step counter, m and v, shaped like the parameter.
    state = [variable for variable in updates if variable is not param]
    assert [variable.name for variable in state] == ["t", "x.m", "x.v"]
    for variable in state[1:]:
        assert variable.broadcastable == param.broadcastable
        assert variable.get_value().shape == param.get_value().shape
    assert float(state[0].get_value()) == ADAMNC_STEPS


def _broken_adamnc(which):
    """ADAMNC with one coefficient wrong, built on the real builder's core."""
    def builder(*args, **kwargs):
        core = update_rules._moment_updates

        def wrong_core(params, grads, coefficients, epsilon, keep_maximum):
            def wrong(t):
                alpha_t, beta1_t, beta2_t = coefficients(t)
                if which == "beta2_t":
                    beta2_t = 1 - 1 / (t + 1)
                elif which == "beta1_t":
                    beta1_t = beta1_t * kwargs["beta1_decay"]  # beta1 lambda^t
                elif which == "step size":
                    alpha_t = alpha_t / T.sqrt(t)  # lr / t
                return alpha_t, beta1_t, beta2_t
            return core(params, grads, wrong, epsilon, keep_maximum)

        update_rules._moment_updates = wrong_core
        try:
            return adamnc(*args, **kwargs)
        finally:
            update_rules._moment_updates = core
    return builder


@pytest.mark.parametrize("which", ["beta2_t", "beta1_t", "step size"])
@pytest.mark.parametrize("shape,broadcastable", ADAMNC_SHAPES[:3])
def test_adamnc_check_fails_on_a_broken_copy(which, shape, broadcastable):
    # The comparison above is sharp enough to see each coefficient wrong.
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        check_adamnc(_broken_adamnc(which), shape, broadcastable, 0.1, 0.9, 0.9)


def test_adamnc_second_moment_is_the_plain_average():
    grads = np.array([3.0, -1.0, 0.5, 2.0, -4.0])
    param = theano.shared(np.zeros(1, dtype="float32"), name="x")
    g = T.vector("g")
    updates = adamnc([g], [param], learning_rate=0.01)
    v = [variable for variable in updates if variable.name == "x.v"][0]
    step = theano.function([g], [], updates=updates)
    for t, value in enumerate(grads, start=1):
        step(np.array([value], dtype="float32"))
        assert float(v.get_value()[0]) == pytest.approx(np.mean(grads[:t] ** 2), rel=1e-6)


@pytest.mark.parametrize("kwargs,error,words", [
    (dict(beta1=1.0), ValueError, "beta1"),
    (dict(beta1_decay=1.0), ValueError, "beta1_decay"),
    (dict(beta1_decay=1 - 1e-9), ValueError, "beta1_decay .* is 1 in float32"),
    (dict(learning_rate=-0.1), ValueError, "learning_rate"),
    (dict(epsilon=0.0), ValueError, "epsilon"),
])
def test_adamnc_bad_arguments_name_the_argument(kwargs, error, words):
    param = theano.shared(np.zeros(2, dtype="float32"))
    with pytest.raises(error, match=words):
        adamnc(T.sum(param ** 2), [param], **kwargs)
