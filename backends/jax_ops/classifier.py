"""
JAX forms of Theano's classifier ops: softmaxes and categorical crossentropies.

``Softmax``, ``SoftmaxWithBias``, ``SoftmaxGrad``, ``LogSoftmax``,
``CrossentropyCategorical1Hot`` and its gradient, and the fused forms Theano's
optimizer makes of a softmax classifier's loss,
``CrossentropySoftmaxArgmax1HotWithBias`` and
``CrossentropySoftmax1HotWithBiasDx``.
"""
import compat  # noqa: F401  (Theano's flags, set before theano is first imported)
import jax
import jax.numpy as jnp
from theano.link.jax.jax_dispatch import jax_funcify
from theano.tensor.nnet import nnet


def _softmax(x):
    e = jnp.exp(x - jnp.max(x, axis=1, keepdims=True))
    return e * (1 / jnp.sum(e, axis=1, keepdims=True))


@jax_funcify.register(nnet.Softmax)
def jax_funcify_Softmax(op):
    return _softmax


@jax_funcify.register(nnet.SoftmaxWithBias)
def jax_funcify_SoftmaxWithBias(op):
    return lambda x, b: _softmax(x + b[None, :])


@jax_funcify.register(nnet.SoftmaxGrad)
def jax_funcify_SoftmaxGrad(op):
    return lambda dy, sm: (dy - jnp.sum(dy * sm, axis=1, keepdims=True)) * sm


@jax_funcify.register(nnet.LogSoftmax)
def jax_funcify_LogSoftmax(op):
    return lambda x: jax.nn.log_softmax(x, axis=1)


def _rows(n):
    return jnp.arange(n)


@jax_funcify.register(nnet.CrossentropyCategorical1Hot)
def jax_funcify_CrossentropyCategorical1Hot(op):
    return lambda coding, one_of_n: -jnp.log(coding[_rows(coding.shape[0]), one_of_n])


@jax_funcify.register(nnet.CrossentropyCategorical1HotGrad)
def jax_funcify_CrossentropyCategorical1HotGrad(op):
    def crossentropy_grad(g_y, coding, one_of_n):
        rows = _rows(coding.shape[0])
        return jnp.zeros_like(coding).at[rows, one_of_n].set(-g_y / coding[rows, one_of_n])

    return crossentropy_grad


@jax_funcify.register(nnet.CrossentropySoftmaxArgmax1HotWithBias)
def jax_funcify_CrossentropySoftmaxArgmax1HotWithBias(op):
    def crossentropy_softmax(x, b, y_idx):
        row = x + b[None, :]
        am = jnp.argmax(row, axis=1)
        shifted = row - jnp.max(row, axis=1, keepdims=True)
        log_norm = jnp.log(jnp.sum(jnp.exp(shifted), axis=1))
        nll = log_norm - shifted[_rows(x.shape[0]), y_idx]
        return nll, _softmax(row), am.astype(y_idx.dtype)

    return crossentropy_softmax


@jax_funcify.register(nnet.CrossentropySoftmax1HotWithBiasDx)
def jax_funcify_CrossentropySoftmax1HotWithBiasDx(op):
    def crossentropy_softmax_dx(dy, sm, y_idx):
        dy = jnp.broadcast_to(jnp.reshape(dy, (-1,)), (sm.shape[0],))
        dx = dy[:, None] * sm
        return dx.at[_rows(sm.shape[0]), y_idx].add(-dy)

    return crossentropy_softmax_dx
