"""
The AMSGrad that other libraries ship, and Reddi et al.'s own, as update builders
in the style of ``lasagne.updates``.

.. autosummary::
    :nosignatures:

    amsgrad_pytorch
    amsgrad_optax
    amsgrad_reddi

Every AMSGrad keeps the running maximum of a second moment estimate, but the
libraries do not agree on which estimate, nor on where epsilon goes.  With
:math:`m_t`, :math:`v_t` Adam's moment estimates and :math:`b_1 = 1 - \\beta_1^t`,
:math:`b_2 = 1 - \\beta_2^t` their bias corrections, the step is:

=====================  ====================================================================
:func:`amsgrad.amsgrad`  :math:`\\alpha \\sqrt{b_2} / b_1 \\cdot m_t / (\\sqrt{\\max_s v_s} + \\epsilon)`
                         (the blog's; Keras 3's ``Adam(amsgrad=True)`` is the same)
:func:`amsgrad_pytorch`  :math:`\\alpha / b_1 \\cdot m_t / (\\sqrt{\\max_s v_s} / \\sqrt{b_2} + \\epsilon)`
:func:`amsgrad_optax`    :math:`\\alpha / b_1 \\cdot m_t / (\\sqrt{\\max_s (v_s / (1 - \\beta_2^s))} + \\epsilon)`
:func:`amsgrad_reddi`    :math:`\\alpha / \\sqrt{t} \\cdot m_t / (\\sqrt{\\max_s v_s} + \\epsilon)`, with
                         :math:`\\beta_{1t} = \\beta_1 \\lambda^{t-1}`
=====================  ====================================================================

PyTorch's is the blog's with epsilon multiplied by :math:`\\sqrt{b_2}` (a
smaller epsilon in the first steps); Optax's keeps the maximum of the
bias-corrected estimates, which are large in the first steps, so its maximum
holds them.  PyTorch and Optax have no switch for the bias correction, and
neither builder here has one; Reddi et al.'s Algorithm 2 has no correction.
``tests/test_variants.py`` runs each against its library, step by step.

Each builder returns the parameters' updates, then one time step counter, then
``m``, ``v`` and ``v_hat`` per parameter, as :func:`amsgrad.amsgrad` does.

Examples
--------
>>> import compat  # noqa: F401
>>> import numpy as np
>>> import theano
>>> from amsgrad_variants import amsgrad_optax
>>> x = theano.shared(np.ones(3, dtype="float32"), name="x")
>>> updates = amsgrad_optax((x ** 2).sum(), [x], learning_rate=0.01)
>>> [variable.name for variable in updates]
['x', 't', 'x.m', 'x.v', 'x.v_hat']
"""
import compat  # noqa: F401  (Theano's flags, set before theano is first imported)
import numpy as np
import theano
import theano.tensor as T

from amsgrad import (_as_list, _check_arguments, _check_unit_interval, _floatx, _grads,
                     _moment_updates)

__all__ = ["amsgrad_pytorch", "amsgrad_optax", "amsgrad_reddi"]


def _float32_power_correction(beta):
    """``t -> 1 - beta**t`` with ``beta`` rounded to floatX, as Optax (and the blog) compute it."""
    one = np.asarray(1, dtype=theano.config.floatX)
    return lambda t: one - np.asarray(beta, theano.config.floatX) ** t


def _exact_correction(beta):
    """``t -> 1 - beta**t`` as ``-expm1(t log beta)``, ``log beta`` taken in float64.

    PyTorch computes its bias corrections in Python floats (float64); in
    float32, ``1 - beta**t`` would lose about 5 of its 7 digits to the
    cancellation at beta = 0.999.
    """
    log_beta = np.asarray(np.log(beta) if beta > 0 else -np.inf, theano.config.floatX)
    return lambda t: -T.expm1(t * log_beta)


def _check_variant(params, learning_rate, beta1, beta2, epsilon):
    # The blog's checks, without its bias_correction switch (these libraries have none).
    _check_arguments(params, learning_rate, beta1, beta2, epsilon, True)


def amsgrad_pytorch(loss_or_grads, params, learning_rate=0.001, beta1=0.9, beta2=0.999,
                    epsilon=1e-8):
    """AMSGrad updates as PyTorch's ``torch.optim.Adam(amsgrad=True)`` computes them

    The running maximum of the raw second moment estimates, as in
    :func:`amsgrad.amsgrad` with bias correction, but epsilon is added after the
    square root of the maximum is divided by :math:`\\sqrt{1 - \\beta_2^t}`.

    Parameters
    ----------
    loss_or_grads : symbolic expression or list of expressions
        A scalar loss expression, or a list of gradient expressions
    params : list of shared variables
        The variables to generate update expressions for
    learning_rate : float or symbolic scalar
        Learning rate :math:`\\alpha`; a shared variable (or any scalar
        expression) lets a schedule change it between calls
    beta1 : float
        Exponential decay rate for the first moment estimates, in [0, 1)
    beta2 : float
        Exponential decay rate for the second moment estimates, in [0, 1)
    epsilon : float
        Constant for numerical stability, > 0

    Returns
    -------
    OrderedDict
        A dictionary mapping each parameter and each state variable (the time
        step, ``m``, ``v`` and ``v_hat``) to its update expression

    Notes
    -----
    With gradient :math:`g_t` at step :math:`t = 1, 2, \\dots`:

    .. math::
        m_t &= \\beta_1 m_{t-1} + (1 - \\beta_1) g_t \\\\
        v_t &= \\beta_2 v_{t-1} + (1 - \\beta_2) g_t^2 \\\\
        \\hat{v}_t &= \\max(\\hat{v}_{t-1}, v_t) \\\\
        \\theta_t &= \\theta_{t-1} - \\frac{\\alpha}{1 - \\beta_1^t}
            \\frac{m_t}{\\sqrt{\\hat{v}_t} / \\sqrt{1 - \\beta_2^t} + \\epsilon}

    That is :func:`amsgrad.amsgrad`'s step with epsilon
    :math:`\\epsilon \\sqrt{1 - \\beta_2^t}`: 0.03 epsilon at the first step
    with :math:`\\beta_2 = 0.999`.  The bias corrections are computed as
    PyTorch does, to float32's precision (not from a float32 ``beta2``).
    PyTorch has no switch to turn the correction off; neither has this.

    References
    ----------
    .. [1] PyTorch, ``torch/optim/adam.py``, ``_single_tensor_adam`` (2.13.0).
    """
    params = _as_list(params)
    _check_variant(params, learning_rate, beta1, beta2, epsilon)
    first, second = _exact_correction(beta1), _exact_correction(beta2)

    def coefficients(t):
        return _floatx(learning_rate) / first(t), beta1, beta2

    return _moment_updates(params, _grads(loss_or_grads, params), coefficients, epsilon,
                           keep_maximum=True, second_correction=second)


def amsgrad_optax(loss_or_grads, params, learning_rate=0.001, beta1=0.9, beta2=0.999,
                  epsilon=1e-8):
    """AMSGrad updates as Optax's ``optax.amsgrad`` computes them

    The running maximum of the *bias-corrected* second moment estimates: the
    first corrected estimates are large (:math:`g_1^2` at the first step, where
    the raw one is :math:`(1 - \\beta_2) g_1^2`), and the maximum holds them.

    Parameters
    ----------
    loss_or_grads : symbolic expression or list of expressions
        A scalar loss expression, or a list of gradient expressions
    params : list of shared variables
        The variables to generate update expressions for
    learning_rate : float or symbolic scalar
        Learning rate :math:`\\alpha`; a shared variable (or any scalar
        expression) lets a schedule change it between calls
    beta1 : float
        Exponential decay rate for the first moment estimates, in [0, 1)
    beta2 : float
        Exponential decay rate for the second moment estimates, in [0, 1)
    epsilon : float
        Constant for numerical stability, > 0 (Optax's ``eps``; its
        ``eps_root`` is 0 here, its default)

    Returns
    -------
    OrderedDict
        A dictionary mapping each parameter and each state variable (the time
        step, ``m``, ``v`` and ``v_hat``, the maximum of the corrected
        estimates) to its update expression

    Notes
    -----
    With gradient :math:`g_t` at step :math:`t = 1, 2, \\dots`:

    .. math::
        m_t &= \\beta_1 m_{t-1} + (1 - \\beta_1) g_t \\\\
        v_t &= \\beta_2 v_{t-1} + (1 - \\beta_2) g_t^2 \\\\
        \\hat{v}_t &= \\max(\\hat{v}_{t-1}, v_t / (1 - \\beta_2^t)) \\\\
        \\theta_t &= \\theta_{t-1} - \\alpha \\frac{m_t / (1 - \\beta_1^t)}
            {\\sqrt{\\hat{v}_t} + \\epsilon}

    Optax computes :math:`1 - \\beta^t` in float32 from a float32 ``beta``
    (as :func:`amsgrad.amsgrad` does); so does this.  It has no switch to turn
    the correction off; neither has this.  Whether the maximum should be
    taken of the corrected estimates is discussed in Optax's issue 1389.

    References
    ----------
    .. [1] Optax, ``optax/_src/transform.py``, ``scale_by_amsgrad`` (0.2.3).
    """
    params = _as_list(params)
    _check_variant(params, learning_rate, beta1, beta2, epsilon)
    first, second = _float32_power_correction(beta1), _float32_power_correction(beta2)

    def coefficients(t):
        return _floatx(learning_rate) / first(t), beta1, beta2

    return _moment_updates(params, _grads(loss_or_grads, params), coefficients, epsilon,
                           keep_maximum=True, second_correction=second,
                           correct_before_maximum=True)


def amsgrad_reddi(loss_or_grads, params, learning_rate=0.001, beta1=0.9, beta2=0.999,
                  beta1_decay=0.999999, epsilon=1e-8):
    """AMSGrad updates as Reddi et al.'s Algorithm 2 states them

    No bias correction, the step size :math:`\\alpha / \\sqrt{t}` and a first
    moment decay rate :math:`\\beta_1 \\lambda^{t-1}` that shrinks, the choice
    of the paper's convergence result (Corollary 1), as :func:`amsgrad.adamnc`.

    Parameters
    ----------
    loss_or_grads : symbolic expression or list of expressions
        A scalar loss expression, or a list of gradient expressions
    params : list of shared variables
        The variables to generate update expressions for
    learning_rate : float or symbolic scalar
        :math:`\\alpha`, divided by :math:`\\sqrt{t}` here; a shared variable
        (or any scalar expression) lets a schedule change it
    beta1 : float
        Decay rate of the first moment estimates at the first step, in [0, 1)
    beta2 : float
        Exponential decay rate for the second moment estimates, in [0, 1)
    beta1_decay : float
        :math:`\\lambda`, in [0, 1) (also in float32): the first moment's decay
        rate at step t is :math:`\\beta_1 \\lambda^{t-1}`
    epsilon : float
        Constant for numerical stability, > 0, added to :math:`\\sqrt{\\hat{v}_t}`
        (the paper has none)

    Returns
    -------
    OrderedDict
        A dictionary mapping each parameter and each state variable (the time
        step, ``m``, ``v`` and ``v_hat``) to its update expression

    Notes
    -----
    With gradient :math:`g_t` at step :math:`t = 1, 2, \\dots`:

    .. math::
        \\beta_{1t} &= \\beta_1 \\lambda^{t-1}, \\quad \\alpha_t = \\alpha / \\sqrt{t} \\\\
        m_t &= \\beta_{1t} m_{t-1} + (1 - \\beta_{1t}) g_t \\\\
        v_t &= \\beta_2 v_{t-1} + (1 - \\beta_2) g_t^2 \\\\
        \\hat{v}_t &= \\max(\\hat{v}_{t-1}, v_t) \\\\
        \\theta_{t+1} &= \\theta_t - \\alpha_t m_t / (\\sqrt{\\hat{v}_t} + \\epsilon)

    The paper projects :math:`\\theta_{t+1}` onto the feasible set; an
    unconstrained parameter needs no projection (the synthetic problems clip
    to [-1, 1] for every optimizer).  No library ships this; the tests hold it
    against a float64 NumPy version of the equations.

    References
    ----------
    .. [1] Reddi, Sashank J., Satyen Kale, and Sanjiv Kumar (2018):
           On the Convergence of Adam and Beyond. ICLR 2018.
    """
    params = _as_list(params)
    _check_variant(params, learning_rate, beta1, beta2, epsilon)
    _check_unit_interval("beta1_decay", beta1_decay)
    if np.asarray(beta1_decay, theano.config.floatX) >= 1:
        raise ValueError("beta1_decay %r is 1 in %s, where the steps compute it"
                         % (beta1_decay, theano.config.floatX))
    float_x = theano.config.floatX

    def coefficients(t):
        one = np.asarray(1, dtype=float_x)
        beta1_t = np.asarray(beta1, float_x) * np.asarray(beta1_decay, float_x) ** (t - one)
        return _floatx(learning_rate) / T.sqrt(t), beta1_t, beta2

    return _moment_updates(params, _grads(loss_or_grads, params), coefficients, epsilon,
                           keep_maximum=True)
