"""
Update builders for Adam, AMSGrad and ADAMNC, in the style of ``lasagne.updates``.

Each builder takes a loss expression or a list of gradient expressions and a
list of parameters and returns an ordered dictionary of Theano updates:

.. autosummary::
    :nosignatures:

    adam
    amsgrad
    adamnc

``adam`` and ``amsgrad`` take the same arguments; ``bias_correction`` switches
Adam's correction of the initial bias of the moment estimates on or off, for
either method.  ``adamnc`` is Reddi et al.'s other algorithm: its decay rates
and step size change with the step (it takes no ``beta2`` and no
``bias_correction``).

The computation is that of the original repository's ``updates.py``, which
wrote the logs this port is compared with: with ``bias_correction=True`` the
step size is ``learning_rate * sqrt(1 - beta2**t) / (1 - beta1**t)``, else
(its ``else:`` branch) the plain ``learning_rate``; the optimizer state has
the parameter's ``broadcastable`` pattern.  The blog post "Experiments with
AMSGrad" (Korzeniowski, 2017) renders that code without its ``else:`` line
and without the ``broadcastable=`` continuation lines.  Read literally, that
listing would never apply the correction (the second assignment overwrites
it) and would fail with ``UnboundLocalError`` for ``bias_correction=False``;
the original runs did neither (their ``bias_correction=False`` runs take
about 3 times larger first steps at beta2 0.999, as this code does).

The dictionary's keys are every shared variable the step changes: the
parameters, then one time step counter and the moment estimates, so a
checkpoint that saves the values of all keys saves the whole optimizer state.

Examples
--------
>>> import compat  # noqa: F401
>>> import lasagne
>>> import theano
>>> import theano.tensor as T
>>> from amsgrad import amsgrad
>>> l_in = lasagne.layers.InputLayer((100, 20))
>>> l_out = lasagne.layers.DenseLayer(l_in, num_units=3,
...                                   nonlinearity=lasagne.nonlinearities.softmax)
>>> x, y = T.matrix('x'), T.ivector('y')
>>> loss = T.nnet.categorical_crossentropy(lasagne.layers.get_output(l_out, x), y).mean()
>>> params = lasagne.layers.get_all_params(l_out, trainable=True)
>>> updates = amsgrad(loss, params, learning_rate=0.001, bias_correction=False)
>>> train_fn = theano.function([x, y], loss, updates=updates)
"""
from collections import OrderedDict
import numbers

import compat  # noqa: F401  (Theano's flags, set before theano is first imported)
import numpy as np
import theano
import theano.tensor as T
from theano.graph.basic import Variable

__all__ = ["adam", "amsgrad", "adamnc"]


def _check_unit_interval(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError("%s must be a real number in [0, 1), got %r" % (name, value))
    if not 0 <= value < 1:
        raise ValueError("%s must be in [0, 1), got %r" % (name, value))


def _check_arguments(params, learning_rate, beta1, beta2, epsilon, bias_correction):
    _check_common(params, learning_rate, epsilon)
    _check_unit_interval("beta1", beta1)
    _check_unit_interval("beta2", beta2)
    if not isinstance(bias_correction, (bool, np.bool_)):
        # A string such as "off" would silently count as True.
        raise TypeError("bias_correction must be True or False, got %r" % (bias_correction,))


def _check_common(params, learning_rate, epsilon):
    for i, param in enumerate(params):
        if not isinstance(param, theano.compile.SharedVariable):
            raise TypeError("params[%d] must be a Theano shared variable (the optimizer "
                            "updates it in place), got %r of type %s"
                            % (i, param, type(param).__name__))
    if isinstance(learning_rate, numbers.Real) and not isinstance(learning_rate, bool):
        if not np.isfinite(learning_rate) or learning_rate < 0:
            raise ValueError("learning_rate must be a finite number >= 0, got %r"
                             % learning_rate)
    elif not isinstance(learning_rate, Variable):
        raise TypeError("learning_rate must be a number or a Theano scalar (e.g. a shared "
                        "variable for a schedule), got %r" % (learning_rate,))
    elif learning_rate.ndim != 0:
        raise TypeError("learning_rate must be a scalar, got a %d-d variable"
                        % learning_rate.ndim)
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real):
        raise TypeError("epsilon must be a real number > 0, got %r" % (epsilon,))
    if not epsilon > 0:
        raise ValueError("epsilon must be > 0, got %r" % epsilon)


def _grads(loss_or_grads, params):
    if isinstance(loss_or_grads, (list, tuple)):
        if len(loss_or_grads) != len(params):
            raise ValueError("got %d gradient expressions for %d parameters"
                             % (len(loss_or_grads), len(params)))
        return list(loss_or_grads)
    return theano.grad(loss_or_grads, params)


def _as_list(params):
    if isinstance(params, theano.compile.SharedVariable) or not hasattr(params, "__iter__"):
        raise TypeError("params must be a list of shared variables, got %r" % (params,))
    return list(params)


def _floatx(learning_rate):
    if isinstance(learning_rate, Variable):
        return T.cast(learning_rate, theano.config.floatX)
    return np.asarray(learning_rate, dtype=theano.config.floatX)


def _in_dtype(value, dtype):
    # A number becomes a constant of the parameter's dtype (a float64 constant would
    # upcast a float32 parameter's update); an expression of t is cast to it.
    if isinstance(value, Variable):
        return T.cast(value, dtype)
    return np.asarray(value, dtype=dtype)


def _moment_updates(params, grads, coefficients, epsilon, keep_maximum,
                    second_correction=None, correct_before_maximum=False):
    """The updates of an Adam-like rule.

    Parameters
    ----------
    params, grads : lists
        The parameters and their gradient expressions
    coefficients : callable
        ``coefficients(t) -> (alpha_t, beta1_t, beta2_t)`` given the floatX step
        counter ``t = 1, 2, ...`` of this step: numbers, or expressions of ``t``
    epsilon : float
        Added to the square root of the second moment
    keep_maximum : bool
        Divide by the running maximum of the second moment estimates
        (AMSGrad's ``v_hat``, one more state variable per parameter)
    second_correction : callable or None
        ``second_correction(t) -> c_t``: the second moment is divided by
        ``c_t`` (a bias correction such as ``1 - beta2**t``) in the
        denominator, so that epsilon is added to ``sqrt(v / c_t)``; None (the
        project's rules) folds any correction into ``alpha_t`` instead
    correct_before_maximum : bool
        With ``second_correction``: keep the maximum of the corrected
        estimates ``v_t / c_t`` (Optax) rather than correct the maximum of the
        raw ones (PyTorch)

    Returns
    -------
    OrderedDict
        The parameters' updates, then the step counter's, then the state's
        (per parameter ``m``, ``v`` and, with ``keep_maximum``, ``v_hat``)
    """
    float_x = theano.config.floatX
    t_prev = theano.shared(np.asarray(0, dtype=float_x), name="t")
    t = t_prev + np.asarray(1, dtype=float_x)
    alpha_t, beta1_t, beta2_t = coefficients(t)
    correction_t = None if second_correction is None else second_correction(t)

    updates = OrderedDict()
    state = []
    for param, g_t in zip(params, grads):
        dtype = param.dtype
        b1, b2, eps, one = (_in_dtype(v, dtype) for v in (beta1_t, beta2_t, epsilon, 1))
        value = param.get_value(borrow=True)

        def zeros(suffix):
            # Keep the parameter's broadcastable pattern, or the update of a
            # parameter such as a (1, n) bias would not type-check.
            return theano.shared(np.zeros(value.shape, dtype=dtype),
                                 broadcastable=param.broadcastable,
                                 name="%s.%s" % (param.name or "param", suffix))

        m_prev, v_prev = zeros("m"), zeros("v")
        m_t = b1 * m_prev + (one - b1) * g_t
        v_t = b2 * v_prev + (one - b2) * T.sqr(g_t)
        state += [(m_prev, m_t), (v_prev, v_t)]
        c_t = None if second_correction is None else T.cast(correction_t, dtype)
        v_seen = v_t / c_t if correct_before_maximum else v_t
        if keep_maximum:
            v_hat_prev = zeros("v_hat")
            v_hat_t = T.maximum(v_hat_prev, v_seen)
            state.append((v_hat_prev, v_hat_t))
        else:
            v_hat_t = v_seen
        root = T.sqrt(v_hat_t)
        if c_t is not None and not correct_before_maximum:
            root = root / T.sqrt(c_t)
        step = T.cast(alpha_t, dtype) * m_t / (root + eps)
        updates[param] = param - step

    updates[t_prev] = t
    updates.update(state)
    return updates


def _adam_like(loss_or_grads, params, learning_rate, beta1, beta2, epsilon,
               bias_correction, keep_maximum):
    """Adam's constant decay rates, with AMSGrad's maximum when ``keep_maximum``."""
    params = _as_list(params)
    _check_arguments(params, learning_rate, beta1, beta2, epsilon, bias_correction)
    grads = _grads(loss_or_grads, params)
    float_x = theano.config.floatX

    def coefficients(t):
        lr = _floatx(learning_rate)
        if not bias_correction:
            return lr, beta1, beta2
        one = np.asarray(1, dtype=float_x)
        return (lr * T.sqrt(one - np.asarray(beta2, float_x) ** t) / (
            one - np.asarray(beta1, float_x) ** t), beta1, beta2)

    return _moment_updates(params, grads, coefficients, epsilon, keep_maximum)


def adam(loss_or_grads, params, learning_rate=0.001, beta1=0.9, beta2=0.999,
         epsilon=1e-8, bias_correction=True):
    """Adam updates

    Adam updates implemented as in [1]_, with Lasagne's placement of epsilon.

    Parameters
    ----------
    loss_or_grads : symbolic expression or list of expressions
        A scalar loss expression, or a list of gradient expressions
    params : list of shared variables
        The variables to generate update expressions for
    learning_rate : float or symbolic scalar
        Learning rate; a shared variable (or any scalar expression) lets a
        schedule change it between calls of the compiled function
    beta1 : float
        Exponential decay rate for the first moment estimates, in [0, 1)
    beta2 : float
        Exponential decay rate for the second moment estimates, in [0, 1)
    epsilon : float
        Constant for numerical stability, > 0
    bias_correction : bool
        Whether to correct the moment estimates' bias towards zero in the
        first steps (see Notes)

    Returns
    -------
    OrderedDict
        A dictionary mapping each parameter and each state variable (the time
        step and the moment estimates) to its update expression

    Notes
    -----
    With gradient :math:`g_t` at step :math:`t = 1, 2, \\dots`:

    .. math::
        m_t &= \\beta_1 m_{t-1} + (1 - \\beta_1) g_t \\\\
        v_t &= \\beta_2 v_{t-1} + (1 - \\beta_2) g_t^2 \\\\
        \\theta_t &= \\theta_{t-1} - \\alpha_t m_t / (\\sqrt{v_t} + \\epsilon)

    where :math:`\\alpha_t = \\alpha \\sqrt{1 - \\beta_2^t} / (1 - \\beta_1^t)`
    with bias correction and :math:`\\alpha_t = \\alpha` without.

    References
    ----------
    .. [1] Kingma, Diederik, and Jimmy Ba (2014):
           Adam: A Method for Stochastic Optimization.
           arXiv preprint arXiv:1412.6980.
    """
    return _adam_like(loss_or_grads, params, learning_rate, beta1, beta2, epsilon,
                      bias_correction, keep_maximum=False)


def amsgrad(loss_or_grads, params, learning_rate=0.001, beta1=0.9, beta2=0.999,
            epsilon=1e-8, bias_correction=True):
    """AMSGrad updates

    AMSGrad updates implemented as in [1]_: Adam whose second moment estimate
    in the denominator is the running maximum of all estimates so far, so the
    effective step size never grows.

    Parameters
    ----------
    loss_or_grads : symbolic expression or list of expressions
        A scalar loss expression, or a list of gradient expressions
    params : list of shared variables
        The variables to generate update expressions for
    learning_rate : float or symbolic scalar
        Learning rate; a shared variable (or any scalar expression) lets a
        schedule change it between calls of the compiled function
    beta1 : float
        Exponential decay rate for the first moment estimates, in [0, 1)
    beta2 : float
        Exponential decay rate for the second moment estimates, in [0, 1)
    epsilon : float
        Constant for numerical stability, > 0
    bias_correction : bool
        Whether to scale the learning rate by Adam's bias correction (see Notes);
        the paper's algorithm has none

    Returns
    -------
    OrderedDict
        A dictionary mapping each parameter and each state variable (the time
        step, the moment estimates and their running maximum) to its update
        expression

    Notes
    -----
    With gradient :math:`g_t` at step :math:`t = 1, 2, \\dots`:

    .. math::
        m_t &= \\beta_1 m_{t-1} + (1 - \\beta_1) g_t \\\\
        v_t &= \\beta_2 v_{t-1} + (1 - \\beta_2) g_t^2 \\\\
        \\hat{v}_t &= \\max(\\hat{v}_{t-1}, v_t) \\\\
        \\theta_t &= \\theta_{t-1} - \\alpha_t m_t / (\\sqrt{\\hat{v}_t} + \\epsilon)

    where :math:`\\alpha_t = \\alpha \\sqrt{1 - \\beta_2^t} / (1 - \\beta_1^t)`
    with bias correction and :math:`\\alpha_t = \\alpha` without, as in the
    blog post [2]_.

    References
    ----------
    .. [1] Reddi, Sashank J., Satyen Kale, and Sanjiv Kumar (2018):
           On the Convergence of Adam and Beyond. ICLR 2018.
    .. [2] Korzeniowski, Filip (2017): Experiments with AMSGrad.
           https://fdlm.github.io/post/amsgrad/
    """
    return _adam_like(loss_or_grads, params, learning_rate, beta1, beta2, epsilon,
                      bias_correction, keep_maximum=True)


def adamnc(loss_or_grads, params, learning_rate=0.001, beta1=0.9, beta1_decay=0.999999,
           epsilon=1e-8):
    """ADAMNC updates

    ADAMNC updates implemented as in [1]_, Section 5 ("Extension: ADAMNC
    algorithm"), Algorithm 3: Adam with non-constant decay rates, here the
    choice of the paper's convergence result for it (Theorem 5 with
    :math:`\\beta_{1t} = \\beta_1 \\lambda^{t-1}`): the second moment estimate
    is the plain average of all squared gradients so far, the first moment's
    decay rate shrinks geometrically, and the step size decays as
    :math:`1/\\sqrt{t}`.  It converges without AMSGrad's running maximum.

    Parameters
    ----------
    loss_or_grads : symbolic expression or list of expressions
        A scalar loss expression, or a list of gradient expressions
    params : list of shared variables
        The variables to generate update expressions for
    learning_rate : float or symbolic scalar
        :math:`\\alpha`, divided by :math:`\\sqrt{t}` here (see Notes); a shared
        variable (or any scalar expression) lets a schedule change it
    beta1 : float
        Decay rate of the first moment estimates at the first step, in [0, 1)
    beta1_decay : float
        :math:`\\lambda` of the paper, in [0, 1) (also in float32): the first
        moment's decay rate at step t is :math:`\\beta_1 \\lambda^{t-1}`.  The
        default halves it after about 700,000 steps.
    epsilon : float
        Constant for numerical stability, > 0, added to :math:`\\sqrt{v_t}` as
        in :func:`adam`

    Returns
    -------
    OrderedDict
        A dictionary mapping each parameter and each state variable (the time
        step and the moment estimates ``m``, ``v``) to its update expression

    Notes
    -----
    With gradient :math:`g_t` at step :math:`t = 1, 2, \\dots` (Algorithm 3):

    .. math::
        \\beta_{1t} &= \\beta_1 \\lambda^{t-1}, \\quad \\beta_{2t} = 1 - 1/t,
            \\quad \\alpha_t = \\alpha / \\sqrt{t} \\\\
        m_t &= \\beta_{1t} m_{t-1} + (1 - \\beta_{1t}) g_t \\\\
        v_t &= \\beta_{2t} v_{t-1} + (1 - \\beta_{2t}) g_t^2
             = \\frac{1}{t} \\sum_{s \\le t} g_s^2 \\\\
        \\theta_{t+1} &= \\theta_t - \\alpha_t m_t / (\\sqrt{v_t} + \\epsilon)

    The paper projects :math:`\\theta_{t+1}` onto the feasible set (in the norm
    of :math:`\\sqrt{v_t}`) and has no :math:`\\epsilon`; an unconstrained
    parameter needs no projection.  There is no ``beta2``: :math:`\\beta_{2t}`
    is fixed by :math:`t`, and with it :math:`v_t` has no bias to correct, so
    there is no ``bias_correction`` either.  The coefficients are Theano
    expressions of the step counter ``t`` (floatX, exact up to 2**24 steps in
    float32), a state variable like the moment estimates.

    A run's learning rate schedule multiplies :math:`\\alpha`: with the
    ``constant`` schedule the step is the paper's :math:`\\alpha / \\sqrt{t}`;
    with ``inv-sqrt`` it is :math:`\\alpha / t`, with ``linear`` the linear decay
    times :math:`1 / \\sqrt{t}`.

    References
    ----------
    .. [1] Reddi, Sashank J., Satyen Kale, and Sanjiv Kumar (2018):
           On the Convergence of Adam and Beyond. ICLR 2018.
    """
    params = _as_list(params)
    _check_common(params, learning_rate, epsilon)
    _check_unit_interval("beta1", beta1)
    _check_unit_interval("beta1_decay", beta1_decay)
    if np.asarray(beta1_decay, theano.config.floatX) >= 1:
        raise ValueError("beta1_decay %r is 1 in %s, where the steps compute it"
                         % (beta1_decay, theano.config.floatX))
    grads = _grads(loss_or_grads, params)
    float_x = theano.config.floatX

    def coefficients(t):
        one = np.asarray(1, dtype=float_x)
        beta1_t = np.asarray(beta1, float_x) * np.asarray(beta1_decay, float_x) ** (t - one)
        return _floatx(learning_rate) / T.sqrt(t), beta1_t, one - one / t

    return _moment_updates(params, grads, coefficients, epsilon, keep_maximum=False)
